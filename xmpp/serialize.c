/*
 * serialize.c: xml_node trees to bytes, stream header / close / error
 * writers. One pass over the tree, appending to a growable buffer; runs of
 * bytes that need no escaping are copied with memcpy.
 *
 * Namespaces relative to the stream (RFC 6120 §4.8): the stanza and its
 * content-namespace descendants carry no xmlns (they inherit the stream's
 * default namespace, whatever content namespace they were parsed in: this
 * is how a stanza crosses from a component stream to a server stream);
 * elements in a namespace the stream header declared a prefix for use it
 * (db:result on jabber:server streams, XEP-0220 §2.1); any other namespace
 * gets one xmlns='…' where it starts.
 */
#include "xmpp/xml_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 1024 /* built trees only; parsed ones are far shallower */
#define XML_NS_XMLNS "http://www.w3.org/2000/xmlns/"

enum { E_NOMEM = -1, E_INVALID = -2 };

/* Byte classes: 0 = copy as is; 1 = look closer (escape, drop, UTF-8). */
#define TXT(c) (uint8_t)((((c) < 0x20 && (c) != '\t' && (c) != '\n') || (c) >= 0x80 || (c) == '&' || \
                          (c) == '<' || (c) == '>'))
#define ATT(c) (uint8_t)(((c) < 0x20 || (c) >= 0x80 || (c) == '&' || (c) == '<' || (c) == '>' ||   \
                          (c) == '\'' || (c) == '"'))
#define R16(f, b)                                                                                  \
    f(b), f(b + 1), f(b + 2), f(b + 3), f(b + 4), f(b + 5), f(b + 6), f(b + 7), f(b + 8), f(b + 9), \
        f(b + 10), f(b + 11), f(b + 12), f(b + 13), f(b + 14), f(b + 15)
#define R256(f)                                                                                    \
    R16(f, 0), R16(f, 16), R16(f, 32), R16(f, 48), R16(f, 64), R16(f, 80), R16(f, 96), R16(f, 112), \
        R16(f, 128), R16(f, 144), R16(f, 160), R16(f, 176), R16(f, 192), R16(f, 208), R16(f, 224),  \
        R16(f, 240)
static const uint8_t text_cls[256] = {R256(TXT)};
static const uint8_t attr_cls[256] = {R256(ATT)};

typedef struct ser {
    psyc_buf *b;
    const xml_nsmap *map;
} ser;

static inline int put(psyc_buf *b, const char *p, size_t n)
{
    if (b->cap - b->len <= n && psyc_buf_reserve(b, n) != 0)
        return E_NOMEM;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

#define PUT_LIT(b, s) put((b), (s), sizeof(s) - 1)

/* Length of the valid UTF-8 sequence for an XML 1.0 Char at p (RFC 3629;
 * no surrogates, no U+FFFE/U+FFFF), or 0. */
static size_t utf8_char(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && p[1] < 0xa0)
            return 0; /* overlong */
        if (c == 0xed && p[1] >= 0xa0)
            return 0; /* surrogate */
        if (c == 0xef && p[1] == 0xbf && p[2] >= 0xbe)
            return 0; /* U+FFFE, U+FFFF */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && p[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xf4 && p[1] >= 0x90)
            return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

static int put_escaped(psyc_buf *b, const char *str, size_t n, int attr)
{
    const uint8_t *cls = attr ? attr_cls : text_cls;
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, start = 0;
    if (b->cap - b->len <= n && psyc_buf_reserve(b, n) != 0)
        return E_NOMEM;
    while (i < n) {
        unsigned char c = s[i];
        if (!cls[c]) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_char(s + i, n - i);
            if (l) {
                i += l;
                continue;
            }
        }
        if (put(b, str + start, i - start) != 0)
            return E_NOMEM;
        const char *rep = NULL;
        switch (c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '\'': rep = "&apos;"; break;
        case '"': rep = "&quot;"; break;
        case '\t': rep = "&#9;"; break;  /* attributes only */
        case '\n': rep = "&#10;"; break; /* attributes only */
        case '\r': rep = "&#13;"; break;
        default: break; /* not an XML Char or not UTF-8: dropped */
        }
        if (rep && put(b, rep, strlen(rep)) != 0)
            return E_NOMEM;
        start = ++i;
    }
    return put(b, str + start, i - start);
}

/* Names we write must not break markup: ASCII letters, digits, . _ - and
 * valid UTF-8 beyond ASCII; not starting with a digit, '.' or '-'. */
static int name_ok(const char *name)
{
    if (!name || !*name)
        return 0;
    if (xml_name_is_static(name))
        return 1;
    const unsigned char *p = (const unsigned char *)name;
    if ((*p >= '0' && *p <= '9') || *p == '.' || *p == '-')
        return 0;
    size_t n = strlen(name);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t l = utf8_char(p + i, n - i);
            if (!l)
                return 0;
            i += l;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '_' || c == '-') {
            i++;
        } else {
            return 0;
        }
    }
    return 1;
}

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Prefix the stream header declared for uri, or NULL. */
static const char *map_prefix(const xml_nsmap *m, const char *uri)
{
    if (!m || !uri)
        return NULL;
    for (unsigned i = 0; i < m->n; i++)
        if (m->decl[i].prefix && str_eq(m->decl[i].uri, uri))
            return m->decl[i].prefix;
    return NULL;
}

static int map_has_prefix(const xml_nsmap *m, const char *prefix)
{
    for (unsigned i = 0; m && i < m->n; i++)
        if (m->decl[i].prefix && strcmp(m->decl[i].prefix, prefix) == 0)
            return 1;
    return 0;
}

/* Prefixes declared on one element for its qualified attributes. */
typedef struct local_decl {
    const char *prefix, *uri;
    char buf[16];
} local_decl;

static int reserved_prefix(const char *p)
{
    return (p[0] == 'x' || p[0] == 'X') && (p[1] == 'm' || p[1] == 'M') && (p[2] == 'l' || p[2] == 'L');
}

static const char *local_by_uri(const local_decl *d, size_t n, const char *uri)
{
    for (size_t i = 0; i < n; i++)
        if (str_eq(d[i].uri, uri))
            return d[i].prefix;
    return NULL;
}

static int local_has_prefix(const local_decl *d, size_t n, const char *prefix)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(d[i].prefix, prefix) == 0)
            return 1;
    return 0;
}

/* Picks prefixes for attributes in namespaces the map does not cover:
 * the wire prefix when it is free, else ns1, ns2, ... */
static int plan_attr_prefixes(const ser *st, const xml_node *el, local_decl *d, size_t *nd)
{
    unsigned gen = 1;
    for (uint32_t i = 0; i < el->nattrs; i++) {
        const xml_attr *at = &el->attrs[i];
        if (!at->ns || strcmp(at->ns, XML_NS_XML) == 0 || strcmp(at->ns, XML_NS_XMLNS) == 0 ||
            map_prefix(st->map, at->ns) ||
            local_by_uri(d, *nd, at->ns))
            continue;
        local_decl *ld = &d[*nd];
        const char *p = at->prefix;
        if (!p || !name_ok(p) || reserved_prefix(p) || map_has_prefix(st->map, p) ||
            local_has_prefix(d, *nd, p)) {
            do {
                snprintf(ld->buf, sizeof ld->buf, "ns%u", gen++);
            } while (map_has_prefix(st->map, ld->buf) || local_has_prefix(d, *nd, ld->buf));
            p = ld->buf;
        }
        ld->prefix = p;
        ld->uri = at->ns;
        (*nd)++;
    }
    return 0;
}

static int write_attr(psyc_buf *b, const char *pfx, const char *name, const char *v, size_t len)
{
    if (put(b, " ", 1) != 0)
        return E_NOMEM;
    if (pfx && (put(b, pfx, strlen(pfx)) != 0 || put(b, ":", 1) != 0))
        return E_NOMEM;
    if (put(b, name, strlen(name)) != 0 || put(b, "='", 2) != 0 || put_escaped(b, v, len, 1) != 0 ||
        put(b, "'", 1) != 0)
        return E_NOMEM;
    return 0;
}

static int write_elem(const ser *st, const xml_node *el, const char *dflt, int chain, int depth)
{
    psyc_buf *b = st->b;
    if (depth > MAX_DEPTH || !name_ok(el->name))
        return E_INVALID;
    /* On the content chain, NULL and the content namespaces become the
     * stream's (RFC 6120 §4.8.2). */
    int content = chain && st->map && xml_ns_is_content(el->ns);
    const char *ns = content ? st->map->content_ns : el->ns;
    const char *pfx = content ? NULL : map_prefix(st->map, ns);
    const char *child_dflt = dflt;
    int rc;

    if (put(b, "<", 1) != 0)
        return E_NOMEM;
    if (pfx && (put(b, pfx, strlen(pfx)) != 0 || put(b, ":", 1) != 0))
        return E_NOMEM;
    if (put(b, el->name, strlen(el->name)) != 0)
        return E_NOMEM;
    if (!pfx && !str_eq(ns, dflt)) {
        /* xmlns='' undeclares the default namespace (XML-NAMES §6.2). */
        if ((rc = write_attr(b, NULL, "xmlns", ns ? ns : "", ns ? strlen(ns) : 0)) != 0)
            return rc;
        child_dflt = ns;
    }
    if (el->nattrs) {
        local_decl stackd[8], *d = stackd;
        size_t nd = 0;
        int qualified = 0;
        for (uint32_t i = 0; i < el->nattrs; i++)
            qualified |= el->attrs[i].ns != NULL;
        if (qualified) {
            if (el->nattrs > 8 && !(d = malloc(el->nattrs * sizeof *d)))
                return E_NOMEM;
            plan_attr_prefixes(st, el, d, &nd);
            for (size_t i = 0; i < nd; i++)
                if ((rc = write_attr(b, "xmlns", d[i].prefix, d[i].uri, strlen(d[i].uri))) != 0)
                    break;
        }
        rc = 0;
        for (uint32_t i = 0; i < el->nattrs && rc == 0; i++) {
            const xml_attr *at = &el->attrs[i];
            const char *ap = NULL;
            if (!name_ok(at->name)) {
                rc = E_INVALID;
                break;
            }
            if (at->ns) {
                if (strcmp(at->ns, XML_NS_XMLNS) == 0)
                    rc = E_INVALID; /* XML-NAMES §3: reserved for declarations */
                else if (strcmp(at->ns, XML_NS_XML) == 0)
                    ap = "xml";
                else if (!(ap = map_prefix(st->map, at->ns)))
                    ap = local_by_uri(d, nd, at->ns);
            } else if (strcmp(at->name, "xmlns") == 0) {
                rc = E_INVALID; /* would read as a namespace declaration */
                break;
            }
            if (rc == 0)
                rc = write_attr(b, ap, at->name, at->value, at->len);
        }
        if (d != stackd)
            free(d);
        if (rc != 0)
            return rc;
    }
    if (!el->children)
        return PUT_LIT(b, "/>");
    if (put(b, ">", 1) != 0)
        return E_NOMEM;
    for (const xml_node *c = el->children; c; c = c->next) {
        if (c->type == XML_N_TEXT)
            rc = put_escaped(b, c->text, c->len, 0);
        else
            rc = write_elem(st, c, child_dflt, content, depth + 1);
        if (rc != 0)
            return rc;
    }
    if (put(b, "</", 2) != 0)
        return E_NOMEM;
    if (pfx && (put(b, pfx, strlen(pfx)) != 0 || put(b, ":", 1) != 0))
        return E_NOMEM;
    if (put(b, el->name, strlen(el->name)) != 0)
        return E_NOMEM;
    return put(b, ">", 1);
}

int xml_serialize(psyc_buf *out, const xml_node *n, const xml_nsmap *map)
{
    if (!out || !n)
        return E_INVALID;
    size_t mark = out->len;
    ser st = {out, map};
    int rc;
    if (n->type == XML_N_TEXT)
        rc = put_escaped(out, n->text, n->len, 0);
    else
        rc = write_elem(&st, n, map ? map->content_ns : NULL, 1, 0);
    if (rc != 0)
        out->len = mark;
    return rc;
}

/* ---- stream framing ----------------------------------------------------- */

void xml_nsmap_init(xml_nsmap *m, const char *content_ns)
{
    memset(m, 0, sizeof *m);
    m->content_ns = content_ns;
    /* RFC 6120 §4.8.5: the stream namespace with the prefix "stream". */
    m->decl[m->n++] = (xml_nsdecl){"stream", XML_NS_STREAMS};
    /* XEP-0220 §2.1: dialback elements are qualified by a prefix declared
     * on the header of jabber:server streams. */
    if (content_ns && strcmp(content_ns, XML_NS_SERVER) == 0)
        m->decl[m->n++] = (xml_nsdecl){"db", XML_NS_DIALBACK};
}

int xml_nsmap_add(xml_nsmap *m, const char *prefix, const char *uri)
{
    if (!prefix || !uri || !name_ok(prefix) || reserved_prefix(prefix) || m->n >= XML_NSMAP_MAX ||
        map_has_prefix(m, prefix) || map_prefix(m, uri) || xml_ns_is_content(uri))
        return -1;
    m->decl[m->n++] = (xml_nsdecl){prefix, uri};
    return 0;
}

int xml_write_stream_open(psyc_buf *out, const xml_nsmap *map, const xml_stream_attrs *a)
{
    size_t mark = out->len;
    int rc = PUT_LIT(out, "<?xml version='1.0'?><stream:stream");
    if (rc == 0 && map && map->content_ns)
        rc = write_attr(out, NULL, "xmlns", map->content_ns, strlen(map->content_ns));
    if (rc == 0 && !map_prefix(map, XML_NS_STREAMS))
        rc = write_attr(out, "xmlns", "stream", XML_NS_STREAMS, strlen(XML_NS_STREAMS));
    for (unsigned i = 0; rc == 0 && map && i < map->n; i++) {
        const xml_nsdecl *d = &map->decl[i];
        if (!d->prefix || !name_ok(d->prefix))
            continue;
        rc = write_attr(out, "xmlns", d->prefix, d->uri, strlen(d->uri));
    }
    if (a) {
        const char *names[] = {"from", "to", "id", "version"};
        const char *vals[] = {a->from, a->to, a->id, a->version};
        for (int i = 0; rc == 0 && i < 4; i++)
            if (vals[i])
                rc = write_attr(out, NULL, names[i], vals[i], strlen(vals[i]));
        if (rc == 0 && a->lang)
            rc = write_attr(out, "xml", "lang", a->lang, strlen(a->lang));
    }
    if (rc == 0)
        rc = put(out, ">", 1);
    if (rc != 0)
        out->len = mark;
    return rc;
}

int xml_write_stream_close(psyc_buf *out)
{
    return PUT_LIT(out, "</stream:stream>");
}

xml_node *xml_stream_error_new(xml_cond cond, const char *text)
{
    if (cond <= XML_COND_NONE || cond >= XML_COND_COUNT)
        cond = XML_COND_UNDEFINED_CONDITION;
    xml_node *err = xml_elem_new("error", XML_NS_STREAMS);
    if (!err || !xml_elem_add(err, xml_cond_name(cond), XML_NS_STREAM_ERRORS)) {
        xml_node_free(err);
        return NULL;
    }
    if (text) {
        xml_node *t = xml_elem_add(err, "text", XML_NS_STREAM_ERRORS);
        if (!t || !xml_text_add(t, text, strlen(text))) {
            xml_node_free(err);
            return NULL;
        }
    }
    return err;
}

int xml_write_stream_error(psyc_buf *out, xml_cond cond, const char *text)
{
    xml_node *err = xml_stream_error_new(cond, text);
    if (!err)
        return E_NOMEM;
    xml_nsmap m;
    xml_nsmap_init(&m, NULL);
    int rc = xml_serialize(out, err, &m);
    xml_node_free(err);
    return rc;
}
