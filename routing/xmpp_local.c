/* xmpp_local.c: what the gateway answers as an XMPP server (see routing.h). */
#include "routing/routing.h"

#include <string.h>

#include "xmpp/jid.h"

/* RFC 6120 §8.3.3: the error type each condition is defined with. */
static const char *error_type_of(const char *cond)
{
    if (strcmp(cond, "remote-server-timeout") == 0 || strcmp(cond, "resource-constraint") == 0 ||
        strcmp(cond, "policy-violation") == 0)
        return "wait";
    if (strcmp(cond, "bad-request") == 0 || strcmp(cond, "jid-malformed") == 0 ||
        strcmp(cond, "not-acceptable") == 0)
        return "modify";
    return "cancel";
}

static int is_stanza(const xml_node *st)
{
    return st && st->type == XML_N_ELEMENT && xml_ns_is_content(st->ns) &&
           (strcmp(st->name, "message") == 0 || strcmp(st->name, "presence") == 0 ||
            strcmp(st->name, "iq") == 0);
}

xml_node *routing_error_reply(const xml_node *stanza, const char *condition)
{
    if (!is_stanza(stanza) || !condition || !*condition)
        return NULL;
    const char *type = xml_attr_get(stanza, "type");
    const char *from = xml_attr_get(stanza, "from");
    const char *to = xml_attr_get(stanza, "to");
    const char *id = xml_attr_get(stanza, "id");
    int iq = strcmp(stanza->name, "iq") == 0;
    if (!from || (type && strcmp(type, "error") == 0) || (iq && type && strcmp(type, "result") == 0))
        return NULL;
    xml_node *r = xml_elem_new(stanza->name, NULL);
    if (!r)
        return NULL;
    int ok = xml_attr_set(r, "type", "error") == 0 && xml_attr_set(r, "to", from) == 0 &&
             (!to || xml_attr_set(r, "from", to) == 0) && (!id || xml_attr_set(r, "id", id) == 0);
    if (ok && !iq)
        for (const xml_node *c = stanza->children; c && ok; c = c->next)
            if (c->type == XML_N_ELEMENT && !xml_is(c, "error", NULL))
                ok = xml_node_add_copy(r, c) != NULL;
    xml_node *e = ok ? xml_elem_add(r, "error", NULL) : NULL;
    ok = e && xml_attr_set(e, "type", error_type_of(condition)) == 0 &&
         xml_elem_add(e, condition, ROUTING_NS_STANZAS) != NULL;
    if (!ok) {
        xml_node_free(r);
        return NULL;
    }
    return r;
}

/* The domain part of a JID, normalised, compared with `domain`. */
static int jid_at_domain(const char *s, const char *domain, int *is_echo)
{
    jid_t j = JID_INIT;
    if (!s || jid_parse_cstr(&j, s) != JID_OK)
        return 0;
    int ok = strcmp(j.domain, domain) == 0;
    if (is_echo)
        *is_echo = ok && j.local && strcmp(j.local, ROUTING_ECHO_LOCAL) == 0;
    jid_free(&j);
    return ok;
}

/* The one element child of an iq (RFC 6120 §8.2.3: a get has exactly one). */
static const xml_node *iq_payload(const xml_node *iq)
{
    const xml_node *p = NULL;
    for (const xml_node *c = iq->children; c; c = c->next) {
        if (c->type != XML_N_ELEMENT)
            continue;
        if (p)
            return NULL;
        p = c;
    }
    return p;
}

xml_node *routing_ping_reply(const xml_node *stanza, const char *domain)
{
    if (!is_stanza(stanza) || !domain || strcmp(stanza->name, "iq") != 0)
        return NULL;
    const char *type = xml_attr_get(stanza, "type");
    const char *from = xml_attr_get(stanza, "from");
    const char *to = xml_attr_get(stanza, "to");
    const xml_node *p = iq_payload(stanza);
    if (!type || strcmp(type, "get") != 0 || !from || !to || !p ||
        !xml_is(p, "ping", ROUTING_NS_PING) || !jid_at_domain(to, domain, NULL))
        return NULL;
    xml_node *r = xml_elem_new("iq", NULL);
    const char *id = xml_attr_get(stanza, "id");
    if (!r || xml_attr_set(r, "type", "result") != 0 || xml_attr_set(r, "from", to) != 0 ||
        xml_attr_set(r, "to", from) != 0 || (id && xml_attr_set(r, "id", id) != 0)) {
        xml_node_free(r);
        return NULL;
    }
    return r;
}

xml_node *routing_xmpp_local(const xml_node *stanza, const char *domain, const char **why)
{
    static const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    if (!is_stanza(stanza) || !domain) {
        *why = "not a stanza";
        return NULL;
    }
    xml_node *r = routing_echo(stanza, domain);
    if (!r)
        r = routing_ping_reply(stanza, domain);
    if (r)
        return r;
    const char *type = xml_attr_get(stanza, "type");
    if (type && strcmp(type, "error") == 0) {
        *why = "an error stanza is never answered";
        return NULL;
    }
    if (strcmp(stanza->name, "presence") == 0) {
        *why = "no presence service";
        return NULL;
    }
    if (strcmp(stanza->name, "iq") == 0) {
        if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)) {
            *why = "an iq result is not answered";
            return NULL;
        }
    } else {
        int echo = 0;
        if (jid_at_domain(xml_attr_get(stanza, "to"), domain, &echo) && echo) {
            *why = "the echo service answers only messages with a body";
            return NULL;
        }
    }
    r = routing_error_reply(stanza, "service-unavailable");
    if (!r)
        *why = "cannot build the error reply";
    return r;
}
