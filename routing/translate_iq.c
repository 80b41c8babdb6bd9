/* translate_iq.c: iq in psyced's own terms (PSYC.md §4.5, psyced's
 * jabber/mixin_parse.c and jabber.textdb), both directions.
 *
 *   jabber:iq:version   get <-> _request_version
 *                       result <-> _status_version (_version_description =
 *                       <name/>, _version = <version/>)
 *   jabber:iq:last      get <-> _request_description_time
 *                       result <-> _status_description_time (_time_idle =
 *                       seconds); psyced's server answers _status_time_boot
 *                       (_time_boot_duration), read the same way
 *   urn:xmpp:ping       get <-> _request_ping; the empty result <-> _echo_ping
 *   vcard-temp          get <-> _request_description_vCard
 *                       result <-> _status_description_person (_name = FN,
 *                       _nick = NICKNAME, _page = URL); psyced's
 *                       _status_description_vCard is read the same way
 *   disco#info          get <-> _request_list_feature (node: _target_fragment,
 *                       psyced's textdb also reads _node)
 *                       result <-> _notice_list_feature[_person|_server|
 *                       _place|_newsfeed] by the identity's category, with
 *                       _name, _identity (its type) and _list_feature
 *   disco#items         get <-> _request_list_item; result <-> _notice_list_item
 *                       with _list_item (the items' JIDs)
 *
 * The whole iq content still rides in _jabber_XML, so a psycgate at the far
 * end restores the stanza exactly; psyced, which ignores that variable,
 * reads the variables. Only when a packet has no _jabber_XML (psyced's own)
 * is the child built from the variables here.
 */
#include <stdio.h>
#include <string.h>

#include "routing/translate_int.h"

#define TR_NS_VERSION "jabber:iq:version"
#define TR_NS_LAST "jabber:iq:last"
#define TR_NS_PING "urn:xmpp:ping"
#define TR_NS_VCARD "vcard-temp"
#define TR_NS_INFO "http://jabber.org/protocol/disco#info"
#define TR_NS_ITEMS "http://jabber.org/protocol/disco#items"

typedef enum tr_iq_proto { TR_IQ_VERSION, TR_IQ_LAST, TR_IQ_PING, TR_IQ_VCARD, TR_IQ_INFO, TR_IQ_ITEMS } tr_iq_proto;

static const struct {
    const char *ns, *el, *request, *answer;
} tr_iq_protos[] = {
    [TR_IQ_VERSION] = {TR_NS_VERSION, "query", "_request_version", "_status_version"},
    [TR_IQ_LAST] = {TR_NS_LAST, "query", "_request_description_time", "_status_description_time"},
    [TR_IQ_PING] = {TR_NS_PING, "ping", "_request_ping", "_echo_ping"},
    [TR_IQ_VCARD] = {TR_NS_VCARD, "vCard", "_request_description_vCard", "_status_description_person"},
    [TR_IQ_INFO] = {TR_NS_INFO, "query", "_request_list_feature", "_notice_list_feature"},
    [TR_IQ_ITEMS] = {TR_NS_ITEMS, "query", "_request_list_item", "_notice_list_item"},
};
#define TR_IQ_PROTOS (sizeof tr_iq_protos / sizeof tr_iq_protos[0])

/* Methods read on the way out, psyced's variants included; matched by
 * keyword inheritance, the longest wins (_status_version_agent is a
 * _status_version, _request_list_feature_node a _request_list_feature). */
static const struct {
    const char *method;
    tr_iq_proto proto;
    int answer;
} tr_iq_methods[] = {
    {"_request_version", TR_IQ_VERSION, 0},
    {"_status_version", TR_IQ_VERSION, 1},
    {"_request_description_time", TR_IQ_LAST, 0},
    {"_status_description_time", TR_IQ_LAST, 1},
    {"_status_time_boot", TR_IQ_LAST, 1},
    {"_request_ping", TR_IQ_PING, 0},
    {"_echo_ping", TR_IQ_PING, 1},
    {"_request_description_vCard", TR_IQ_VCARD, 0},
    {"_status_description_person", TR_IQ_VCARD, 1},
    {"_status_description_vCard", TR_IQ_VCARD, 1},
    {"_request_list_feature", TR_IQ_INFO, 0},
    {"_notice_list_feature", TR_IQ_INFO, 1},
    {"_request_list_item", TR_IQ_ITEMS, 0},
    {"_notice_list_item", TR_IQ_ITEMS, 1},
};

/* disco#info identity category <-> psyced's method suffix (jabber.textdb). */
static const struct {
    const char *category, *suffix;
} tr_iq_categories[] = {
    {"account", "_person"}, {"server", "_server"}, {"conference", "_place"}, {"headline", "_newsfeed"},
};

/* vcard-temp element <-> profile variable. */
static const struct {
    const char *el, *var;
} tr_iq_vcard[] = {{"FN", "_name"}, {"NICKNAME", "_nick"}, {"URL", "_page"}};

/* The iq's payload element: its first element child that is no <error/>. */
static const xml_node *tr_iq_child(const xml_node *iq)
{
    for (const xml_node *c = iq->children; c; c = c->next)
        if (c->type == XML_N_ELEMENT && !tr_is_content(c, "error"))
            return c;
    return NULL;
}

static int tr_iq_proto_of(const xml_node *child)
{
    for (size_t i = 0; child && child->ns && i < TR_IQ_PROTOS; i++)
        if (strcmp(child->ns, tr_iq_protos[i].ns) == 0 && strcmp(child->name, tr_iq_protos[i].el) == 0)
            return (int)i;
    return -1;
}

static int tr_iq_text_var(psyc_packet *p, const xml_node *parent, const char *el, const char *var)
{
    const xml_node *c = xml_child(parent, el, parent->ns);
    size_t len;
    const char *text = c ? xml_elem_text(c, &len) : NULL;
    if (c && !text)
        return TRANSLATE_ERR_NOMEM;
    return text && len ? tr_put(p, 0, var, text, len) : TRANSLATE_OK;
}

static int tr_iq_attr_var(psyc_packet *p, const xml_node *el, const char *attr, const char *var)
{
    const char *v = xml_attr_get(el, attr);
    return v ? tr_put(p, 0, var, v, strlen(v)) : TRANSLATE_OK;
}

/* Every `el` child's attribute `attr` as one PSYC list variable. */
static int tr_iq_list_var(psyc_packet *p, const xml_node *q, const char *el, const char *attr, const char *var)
{
    psyc_buf list;
    psyc_buf_init(&list);
    int rc = TRANSLATE_OK;
    for (const xml_node *c = xml_child(q, el, q->ns); c && rc == TRANSLATE_OK; c = xml_next(c, el, q->ns)) {
        const char *v = xml_attr_get(c, attr);
        if (v && psyc_list_append(&list, psyc_str_c(v)) != 0)
            rc = TRANSLATE_ERR_NOMEM;
    }
    if (rc == TRANSLATE_OK && list.len)
        rc = tr_put(p, 0, var, list.data, list.len);
    psyc_buf_free(&list);
    return rc;
}

/* Variables of an answer; *method may get a more specific name. */
static int tr_iq_answer_vars(psyc_packet *p, tr_iq_proto proto, const xml_node *q, char *method, size_t size)
{
    int rc = TRANSLATE_OK;
    const xml_node *id;
    switch (proto) {
    case TR_IQ_VERSION:
        rc = tr_iq_text_var(p, q, "name", "_version_description");
        return rc ? rc : tr_iq_text_var(p, q, "version", "_version");
    case TR_IQ_LAST:
        return tr_iq_attr_var(p, q, "seconds", "_time_idle");
    case TR_IQ_VCARD:
        for (size_t i = 0; rc == TRANSLATE_OK && i < sizeof tr_iq_vcard / sizeof tr_iq_vcard[0]; i++)
            rc = tr_iq_text_var(p, q, tr_iq_vcard[i].el, tr_iq_vcard[i].var);
        return rc;
    case TR_IQ_INFO:
        id = xml_child(q, "identity", q->ns);
        for (size_t i = 0; id && i < sizeof tr_iq_categories / sizeof tr_iq_categories[0]; i++) {
            const char *cat = xml_attr_get(id, "category");
            if (cat && strcmp(cat, tr_iq_categories[i].category) == 0)
                snprintf(method, size, "%s%s", tr_iq_protos[proto].answer, tr_iq_categories[i].suffix);
        }
        if (id)
            rc = tr_iq_attr_var(p, id, "name", "_name");
        if (id && rc == TRANSLATE_OK)
            rc = tr_iq_attr_var(p, id, "type", "_identity");
        return rc ? rc : tr_iq_list_var(p, q, "feature", "var", "_list_feature");
    case TR_IQ_ITEMS:
        return tr_iq_list_var(p, q, "item", "jid", "_list_item");
    case TR_IQ_PING:
        break;
    }
    return rc;
}

int tr_iq_in(psyc_packet *p, const xml_node *iq, int request, char *method, size_t size)
{
    const char *type = xml_attr_get(iq, "type");
    const xml_node *child = tr_iq_child(iq);
    int proto = tr_iq_proto_of(child);
    if (request) {
        /* Only gets have psyced names (a set crosses as _jabber_iq_set). */
        if (proto < 0 || strcmp(type, "get") != 0)
            return TRANSLATE_IGNORE;
        snprintf(method, size, "%s", tr_iq_protos[proto].request);
        const char *node = xml_attr_get(child, "node");
        return node ? tr_put(p, 0, "_target_fragment", node, strlen(node)) : TRANSLATE_OK;
    }
    /* An empty result answers a ping (XEP-0199 §4) or a set: between two
     * psycgates both come back as the same empty result. */
    if (!child) {
        snprintf(method, size, "%s", tr_iq_protos[TR_IQ_PING].answer);
        return TRANSLATE_OK;
    }
    if (proto < 0)
        return TRANSLATE_IGNORE;
    snprintf(method, size, "%s", tr_iq_protos[proto].answer);
    return tr_iq_answer_vars(p, (tr_iq_proto)proto, child, method, size);
}

int tr_iq_method(psyc_str method, int *answer)
{
    size_t best = 0;
    int proto = -1;
    for (size_t i = 0; i < sizeof tr_iq_methods / sizeof tr_iq_methods[0]; i++) {
        psyc_str m = psyc_str_c(tr_iq_methods[i].method);
        if (m.len > best && psyc_inherits(method, m)) {
            best = m.len;
            proto = (int)tr_iq_methods[i].proto;
            *answer = tr_iq_methods[i].answer;
        }
    }
    return proto;
}

static int tr_iq_attr(xml_node *el, const char *name, psyc_str v)
{
    return xml_attr_set_ns(el, name, NULL, v.ptr, v.len) == 0 ? TRANSLATE_OK : TRANSLATE_ERR_NOMEM;
}

/* One element per list element of `var`, the element in attribute `attr`. */
static int tr_iq_list_out(const psyc_packet *p, const char *var, xml_node *q, const char *el, const char *attr)
{
    psyc_str v;
    if (!tr_get(p, var, &v))
        return TRANSLATE_OK;
    psyc_list_parser lp;
    psyc_list_elem e;
    psyc_list_rc lrc;
    psyc_list_parser_init(&lp, v);
    while ((lrc = psyc_list_next(&lp, &e)) != PSYC_LIST_END && lrc != PSYC_LIST_ERROR) {
        if (lrc != PSYC_LIST_ELEM || !e.value.len)
            continue;
        xml_node *c = xml_elem_add(q, el, NULL);
        if (!c || tr_iq_attr(c, attr, e.value) != TRANSLATE_OK)
            return TRANSLATE_ERR_NOMEM;
    }
    return TRANSLATE_OK;
}

static int tr_iq_info_out(const psyc_packet *p, xml_node *q)
{
    /* The category by psyced's method suffix; a person's account by default. */
    const char *category = "account";
    for (size_t i = 0; i < sizeof tr_iq_categories / sizeof tr_iq_categories[0]; i++) {
        char m[64];
        snprintf(m, sizeof m, "%s%s", tr_iq_protos[TR_IQ_INFO].answer, tr_iq_categories[i].suffix);
        if (psyc_inherits(p->method, psyc_str_c(m)))
            category = tr_iq_categories[i].category;
    }
    psyc_str v;
    xml_node *id = xml_elem_add(q, "identity", NULL);
    if (!id || xml_attr_set(id, "category", category) != 0)
        return TRANSLATE_ERR_NOMEM;
    int rc = tr_iq_attr(id, "type", tr_get(p, "_identity", &v) ? v : psyc_str_c("registered"));
    if (rc == TRANSLATE_OK && tr_get(p, "_name", &v))
        rc = tr_iq_attr(id, "name", v);
    return rc ? rc : tr_iq_list_out(p, "_list_feature", q, "feature", "var");
}

int tr_iq_out(const psyc_packet *p, int proto, int answer, xml_node *iq)
{
    if (proto == TR_IQ_PING && answer)
        return TRANSLATE_OK; /* the pong is an empty result (XEP-0199 §4) */
    xml_node *q = xml_elem_add(iq, tr_iq_protos[proto].el, tr_iq_protos[proto].ns);
    if (!q)
        return TRANSLATE_ERR_NOMEM;
    psyc_str v;
    int rc = TRANSLATE_OK;
    if (!answer) {
        if ((proto == TR_IQ_INFO || proto == TR_IQ_ITEMS) &&
            (tr_get(p, "_target_fragment", &v) || tr_get(p, "_node", &v)))
            rc = tr_iq_attr(q, "node", v);
        return rc;
    }
    switch ((tr_iq_proto)proto) {
    case TR_IQ_VERSION:
        /* XEP-0092 §2: <name/> and <version/> are required. */
        rc = tr_text_child(q, "name", NULL, tr_get(p, "_version_description", &v) ? v : psyc_str_c("psyced"));
        return rc ? rc : tr_text_child(q, "version", NULL, tr_get(p, "_version", &v) ? v : psyc_str_c(""));
    case TR_IQ_LAST:
        if (tr_get(p, "_time_idle", &v) || tr_get(p, "_time_boot_duration", &v))
            rc = tr_iq_attr(q, "seconds", v);
        return rc;
    case TR_IQ_VCARD:
        for (size_t i = 0; rc == TRANSLATE_OK && i < sizeof tr_iq_vcard / sizeof tr_iq_vcard[0]; i++)
            if (tr_get(p, tr_iq_vcard[i].var, &v) && v.len)
                rc = tr_text_child(q, tr_iq_vcard[i].el, NULL, v);
        return rc;
    case TR_IQ_INFO:
        return tr_iq_info_out(p, q);
    case TR_IQ_ITEMS:
        return tr_iq_list_out(p, "_list_item", q, "item", "jid");
    case TR_IQ_PING:
        break;
    }
    return rc;
}
