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
