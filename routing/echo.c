/* echo.c: the echo service of the core boundary (see routing.h). */
#include "routing/routing.h"

#include <stdlib.h>
#include <string.h>

#include "xmpp/jid.h"

#define ECHO_PREFIX "echo: "

/* RFC 6120 §8.2.3 / RFC 6121 §5.2.2: the message types a person sends. */
static int echo_type_ok(const char *type)
{
    return !type || strcmp(type, "normal") == 0 || strcmp(type, "chat") == 0 ||
           strcmp(type, "headline") == 0;
}

/* 1 when `to` names echo@domain (the resource does not matter). */
static int echo_addressed(const char *to, const char *domain)
{
    jid_t j = JID_INIT;
    if (!to || jid_parse_cstr(&j, to) != JID_OK)
        return 0;
    int ok = j.local && strcmp(j.local, ROUTING_ECHO_LOCAL) == 0 && strcmp(j.domain, domain) == 0;
    jid_free(&j);
    return ok;
}

static int echo_from_ok(const char *from)
{
    jid_t j = JID_INIT;
    if (!from || jid_parse_cstr(&j, from) != JID_OK)
        return 0;
    jid_free(&j);
    return 1;
}

xml_node *routing_echo(const xml_node *stanza, const char *domain)
{
    if (!stanza || !domain || !xml_is(stanza, "message", NULL) ||
        !xml_ns_is_content(stanza->ns))
        return NULL;
    const char *type = xml_attr_get(stanza, "type");
    const char *to = xml_attr_get(stanza, "to");
    const char *from = xml_attr_get(stanza, "from");
    if (!echo_type_ok(type) || !echo_addressed(to, domain) || !echo_from_ok(from))
        return NULL;
    /* The body in the content namespace (not e.g. an XHTML-IM <body/>). */
    const xml_node *body = NULL;
    for (const xml_node *b = xml_child(stanza, "body", NULL); b; b = xml_next(b, "body", NULL))
        if (xml_ns_is_content(b->ns)) {
            body = b;
            break;
        }
    if (!body)
        return NULL;
    size_t len = 0;
    const char *text = xml_elem_text(body, &len);
    if (!text || len == 0)
        return NULL;

    xml_node *reply = xml_elem_new("message", NULL);
    if (!reply)
        return NULL;
    const char *id = xml_attr_get(stanza, "id");
    xml_node *rb = NULL;
    int ok = xml_attr_set(reply, "from", to) == 0 && xml_attr_set(reply, "to", from) == 0 &&
             (!type || xml_attr_set(reply, "type", type) == 0) &&
             (!id || xml_attr_set(reply, "id", id) == 0) &&
             (rb = xml_elem_add(reply, "body", NULL)) != NULL &&
             xml_text_add(rb, ECHO_PREFIX, strlen(ECHO_PREFIX)) != NULL &&
             xml_text_add(rb, text, len) != NULL;
    if (!ok) {
        xml_node_free(reply);
        return NULL;
    }
    return reply;
}
