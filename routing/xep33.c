/* xep33.c: XEP-0033 address lists (see xep33.h). */
#include "routing/xep33.h"

#include <string.h>

static xml_node *xep33_find(const xml_node *stanza)
{
    return xml_child(stanza, "addresses", XEP33_NS);
}

int xep33_parse(const xml_node *stanza, xep33_address *out, size_t max, size_t *n)
{
    *n = 0;
    const xml_node *as = xep33_find(stanza);
    if (!as)
        return 0;
    for (const xml_node *a = xml_child(as, "address", XEP33_NS); a; a = xml_next(a, "address", XEP33_NS)) {
        const char *type = xml_attr_get(a, "type");
        if (!type || *n == max)
            return -1;
        const char *d = xml_attr_get(a, "delivered");
        out[*n] = (xep33_address){type, xml_attr_get(a, "jid"), d && strcmp(d, "true") == 0};
        (*n)++;
    }
    return 1;
}

/* A copy without its <addresses/>. */
static xml_node *xep33_copy_bare(const xml_node *stanza)
{
    xml_node *c = xml_node_copy(stanza);
    xml_node *as = c ? xep33_find(c) : NULL;
    if (as)
        xml_node_unlink(as);
    return c;
}

xml_node *xep33_build(const xml_node *stanza, const char *server, const char *const *recipients, size_t n)
{
    if (n == 0 || n > XEP33_MAX_ADDRESSES)
        return NULL;
    xml_node *c = xep33_copy_bare(stanza);
    xml_node *as = c ? xml_elem_add(c, "addresses", XEP33_NS) : NULL;
    int bad = !as || xml_attr_set(c, "to", server) != 0;
    for (size_t i = 0; !bad && i < n; i++) {
        xml_node *a = xml_elem_add(as, "address", NULL);
        bad = !a || xml_attr_set(a, "type", "to") || xml_attr_set(a, "jid", recipients[i]);
    }
    if (bad) {
        xml_node_free(c);
        return NULL;
    }
    return c;
}

static int xep33_is_target(const char *type)
{
    return strcmp(type, "to") == 0 || strcmp(type, "cc") == 0 || strcmp(type, "bcc") == 0;
}

/* The address list every copy carries: bcc dropped (§4.5: "the bcc
 * addresses MUST be removed"), all marked delivered. */
static int xep33_copy_list(const xml_node *src, xml_node *dst_stanza)
{
    xml_node *as = xml_elem_add(dst_stanza, "addresses", XEP33_NS);
    if (!as)
        return -1;
    for (const xml_node *a = xml_child(src, "address", XEP33_NS); a; a = xml_next(a, "address", XEP33_NS)) {
        const char *type = xml_attr_get(a, "type");
        if (type && strcmp(type, "bcc") == 0)
            continue;
        xml_node *c = xml_node_add_copy(as, a);
        if (!c || (type && xep33_is_target(type) && xml_attr_set(c, "delivered", "true")))
            return -1;
    }
    return 0;
}

size_t xep33_expand(const xml_node *stanza, xml_node **out, size_t max)
{
    const xml_node *as = xep33_find(stanza);
    size_t n = 0;
    if (!as)
        return 0;
    for (const xml_node *a = xml_child(as, "address", XEP33_NS); a && n < max; a = xml_next(a, "address", XEP33_NS)) {
        const char *type = xml_attr_get(a, "type"), *jid = xml_attr_get(a, "jid"), *d = xml_attr_get(a, "delivered");
        if (!type || !jid || !xep33_is_target(type) || (d && strcmp(d, "true") == 0))
            continue;
        xml_node *c = xep33_copy_bare(stanza);
        if (!c || xml_attr_set(c, "to", jid) || xep33_copy_list(as, c)) {
            xml_node_free(c);
            while (n)
                xml_node_free(out[--n]);
            return 0;
        }
        out[n++] = c;
    }
    return n;
}

/* ---- discovery ------------------------------------------------------ */

#define XEP33_NS_INFO "http://jabber.org/protocol/disco#info"
#define XEP33_NS_ITEMS "http://jabber.org/protocol/disco#items"
#define XEP33_NS_DATA "jabber:x:data"

xml_node *xep33_disco_query(const char *from, const char *to, const char *id, int items)
{
    xml_node *iq = xml_elem_new("iq", NULL);
    if (!iq || xml_attr_set(iq, "type", "get") || xml_attr_set(iq, "from", from) || xml_attr_set(iq, "to", to) ||
        xml_attr_set(iq, "id", id) || !xml_elem_add(iq, "query", items ? XEP33_NS_ITEMS : XEP33_NS_INFO)) {
        xml_node_free(iq);
        return NULL;
    }
    return iq;
}

/* The <query xmlns=ns/> of an <iq type='result'/>, or NULL. */
static const xml_node *xep33_result_query(const xml_node *iq, const char *ns)
{
    const char *type = xml_attr_get(iq, "type");
    if (!xml_is(iq, "iq", NULL) || !type || strcmp(type, "result") != 0)
        return NULL;
    return xml_child(iq, "query", ns);
}

/* The text of a form field's first <value/> into out ("" when none). */
static void xep33_field_value(const xml_node *field, char *out, size_t size)
{
    const xml_node *v = xml_child(field, "value", XEP33_NS_DATA);
    size_t len = 0;
    const char *t = v ? xml_elem_text(v, &len) : NULL;
    if (!t || len >= size)
        len = 0;
    memcpy(out, t ? t : "", len);
    out[len] = '\0';
}

/* A limit field's value: a count, or "infinite" (capped by what we send). */
static int xep33_limit_value(const char *v, unsigned *out)
{
    if (strcmp(v, "infinite") == 0) {
        *out = XEP33_MAX_ADDRESSES;
        return 0;
    }
    unsigned n = 0;
    if (!*v)
        return -1;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || n > 100000)
            return -1;
        n = n * 10 + (unsigned)(*v - '0');
    }
    *out = n;
    return 0;
}

/* XEP-0128: the fields of the form whose hidden FORM_TYPE is XEP33_NS. */
static void xep33_form_limits(const xml_node *q, xep33_limits *lim)
{
    for (const xml_node *x = xml_child(q, "x", XEP33_NS_DATA); x; x = xml_next(x, "x", XEP33_NS_DATA)) {
        char v[64];
        int ours = 0;
        for (const xml_node *f = xml_child(x, "field", XEP33_NS_DATA); f; f = xml_next(f, "field", XEP33_NS_DATA)) {
            const char *var = xml_attr_get(f, "var");
            xep33_field_value(f, v, sizeof v);
            if (var && strcmp(var, "FORM_TYPE") == 0)
                ours = strcmp(v, XEP33_NS) == 0;
        }
        for (const xml_node *f = xml_child(x, "field", XEP33_NS_DATA); ours && f;
             f = xml_next(f, "field", XEP33_NS_DATA)) {
            const char *var = xml_attr_get(f, "var");
            xep33_field_value(f, v, sizeof v);
            if (var && strcmp(var, "message") == 0)
                (void)xep33_limit_value(v, &lim->message);
            else if (var && strcmp(var, "presence") == 0)
                (void)xep33_limit_value(v, &lim->presence);
        }
    }
}

int xep33_disco_info(const xml_node *iq, xep33_limits *lim)
{
    const xml_node *q = xep33_result_query(iq, XEP33_NS_INFO);
    if (!q)
        return -1;
    int found = 0;
    for (const xml_node *f = xml_child(q, "feature", XEP33_NS_INFO); f && !found;
         f = xml_next(f, "feature", XEP33_NS_INFO)) {
        const char *var = xml_attr_get(f, "var");
        found = var && strcmp(var, XEP33_NS) == 0;
    }
    if (found)
        xep33_form_limits(q, lim);
    return found;
}

size_t xep33_disco_items(const xml_node *iq, const char **out, size_t max)
{
    const xml_node *q = xep33_result_query(iq, XEP33_NS_ITEMS);
    size_t n = 0;
    for (const xml_node *it = q ? xml_child(q, "item", XEP33_NS_ITEMS) : NULL; it && n < max;
         it = xml_next(it, "item", XEP33_NS_ITEMS)) {
        const char *jid = xml_attr_get(it, "jid");
        if (jid && *jid && !strpbrk(jid, "@/") && !xml_attr_get(it, "node"))
            out[n++] = jid;
    }
    return n;
}

/* ---- receiving ------------------------------------------------------ */

const char *xep33_check(const xml_node *stanza, int (*ours)(void *ud, const char *jid), void *ud, size_t *n)
{
    *n = 0;
    const char *type = xml_attr_get(stanza, "type");
    const xml_node *as = xep33_find(stanza);
    if (!(xml_is(stanza, "message", NULL) || xml_is(stanza, "presence", NULL)) ||
        (type && strcmp(type, "error") == 0) || !as)
        return "bad-request"; /* §3: message and presence only */
    size_t count = 0;
    for (const xml_node *a = xml_child(as, "address", XEP33_NS); a; a = xml_next(a, "address", XEP33_NS)) {
        const char *t = xml_attr_get(a, "type"), *jid = xml_attr_get(a, "jid"), *d = xml_attr_get(a, "delivered");
        if (!t)
            return "bad-request";
        if (++count > XEP33_MAX_ADDRESSES)
            return "not-acceptable";
        if (!xep33_is_target(t) || (d && strcmp(d, "true") == 0))
            continue;
        if (!jid)
            return "jid-malformed";
        if (!ours(ud, jid))
            return "forbidden";
        (*n)++;
    }
    return *n ? NULL : "bad-request";
}
