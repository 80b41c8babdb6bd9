/* entity.c: the gateway's own XMPP answers (see entity.h). */
#include "routing/entity.h"

#include <stdio.h>
#include <string.h>

#include "routing/routing.h"

/* What disco#info advertises: exactly what routing_entity_answer answers
 * (XEP-0030 §3.1: a feature listed must be supported). */
static const char *const entity_features[] = {
    ENTITY_NS_DISCO_INFO, ENTITY_NS_DISCO_ITEMS, ENTITY_NS_VERSION, ENTITY_NS_LAST, ENTITY_NS_PING,
    "http://jabber.org/protocol/address", /* XEP-0033 §2.1: gateway/bridge_xep33.c expands */
};

xml_node *routing_entity_result(const xml_node *iq)
{
    xml_node *r = xml_elem_new("iq", NULL);
    const char *from = xml_attr_get(iq, "from"), *to = xml_attr_get(iq, "to"), *id = xml_attr_get(iq, "id");
    if (!r || xml_attr_set(r, "from", to) || xml_attr_set(r, "to", from) || xml_attr_set(r, "type", "result") ||
        (id && xml_attr_set(r, "id", id))) {
        xml_node_free(r);
        return NULL;
    }
    return r;
}

static int entity_text_child(xml_node *parent, const char *name, const char *text)
{
    xml_node *c = xml_elem_add(parent, name, NULL);
    return c && xml_text_add(c, text, strlen(text)) ? 0 : -1;
}

static xml_node *entity_disco_info(const xml_node *iq, const routing_entity *e)
{
    xml_node *r = routing_entity_result(iq);
    xml_node *q = r ? xml_elem_add(r, "query", ENTITY_NS_DISCO_INFO) : NULL;
    xml_node *id = q ? xml_elem_add(q, "identity", NULL) : NULL;
    int bad = !id || xml_attr_set(id, "category", "gateway") || xml_attr_set(id, "type", "psyc") ||
              xml_attr_set(id, "name", "PSYC gateway");
    size_t n = sizeof entity_features / sizeof entity_features[0];
    for (size_t i = 0; !bad && i <= n; i++) {
        /* XEP-0077 §4: registration, where the gateway takes it. */
        if (i == n && !e->registration)
            break;
        xml_node *f = xml_elem_add(q, "feature", NULL);
        bad = !f || xml_attr_set(f, "var", i < n ? entity_features[i] : ENTITY_NS_REGISTER);
    }
    if (bad) {
        xml_node_free(r);
        return NULL;
    }
    return r;
}

static xml_node *entity_disco_items(const xml_node *iq, const routing_entity *e)
{
    xml_node *r = routing_entity_result(iq);
    xml_node *q = r ? xml_elem_add(r, "query", ENTITY_NS_DISCO_ITEMS) : NULL;
    int bad = !q;
    for (size_t i = 0; !bad && i < e->n_items; i++) {
        xml_node *it = xml_elem_add(q, "item", NULL);
        bad = !it || xml_attr_set(it, "jid", e->items[i].jid) ||
              (e->items[i].name && xml_attr_set(it, "name", e->items[i].name));
    }
    if (bad) {
        xml_node_free(r);
        return NULL;
    }
    return r;
}

static xml_node *entity_version(const xml_node *iq, const routing_entity *e)
{
    xml_node *r = routing_entity_result(iq);
    xml_node *q = r ? xml_elem_add(r, "query", ENTITY_NS_VERSION) : NULL;
    if (!q || entity_text_child(q, "name", e->name) || entity_text_child(q, "version", e->version) ||
        (e->os && entity_text_child(q, "os", e->os))) {
        xml_node_free(r);
        return NULL;
    }
    return r;
}

static xml_node *entity_last(const xml_node *iq, const routing_entity *e, uint64_t now_ms)
{
    char secs[24];
    snprintf(secs, sizeof secs, "%llu",
             (unsigned long long)(now_ms > e->boot_ms ? (now_ms - e->boot_ms) / 1000 : 0));
    xml_node *r = routing_entity_result(iq);
    xml_node *q = r ? xml_elem_add(r, "query", ENTITY_NS_LAST) : NULL;
    if (!q || xml_attr_set(q, "seconds", secs)) {
        xml_node_free(r);
        return NULL;
    }
    return r;
}

xml_node *routing_entity_answer(const xml_node *iq, const routing_entity *e, uint64_t now_ms)
{
    const char *type = xml_attr_get(iq, "type"), *to = xml_attr_get(iq, "to");
    if (!xml_is(iq, "iq", NULL) || !xml_ns_is_content(iq->ns) || !type || !to || !xml_attr_get(iq, "from"))
        return NULL;
    /* The entity is the bare domain; users and rooms answer for themselves. */
    if (strchr(to, '@') || strchr(to, '/'))
        return NULL;
    const xml_node *q = NULL;
    for (const xml_node *c = iq->children; c && !q; c = c->next)
        if (c->type == XML_N_ELEMENT)
            q = c;
    if (!q || !q->ns)
        return NULL;
    int get = strcmp(type, "get") == 0;
    if (strcmp(q->ns, ENTITY_NS_PING) == 0 && strcmp(q->name, "ping") == 0 && get)
        return routing_entity_result(iq);
    if (!get || strcmp(q->name, "query") != 0)
        return NULL;
    if (strcmp(q->ns, ENTITY_NS_DISCO_INFO) == 0 || strcmp(q->ns, ENTITY_NS_DISCO_ITEMS) == 0) {
        /* No nodes here (XEP-0030 §3.1, §4.1): a node is not found. */
        if (xml_attr_get(q, "node"))
            return routing_error_reply(iq, "item-not-found");
        return strcmp(q->ns, ENTITY_NS_DISCO_INFO) == 0 ? entity_disco_info(iq, e) : entity_disco_items(iq, e);
    }
    if (strcmp(q->ns, ENTITY_NS_VERSION) == 0)
        return entity_version(iq, e);
    if (strcmp(q->ns, ENTITY_NS_LAST) == 0)
        return entity_last(iq, e, now_ms);
    return NULL;
}
