/*
 * stream.c: the XMPP stream parser: libxml2 SAX2 push parsing of one endless
 * <stream:stream> document into header / stanza / close events.
 *
 * Hardening (RFC 6120 §11, §4.9.3):
 *  - libxml2 runs without NOENT, DTDLOAD, DTDATTR, HUGE, with NONET; a
 *    DOCTYPE, entity declaration, comment or processing instruction stops
 *    the stream with restricted-xml (§11.1) from the SAX callback, before
 *    libxml2 looks at what follows;
 *  - everything libxml2 reports as an error (undefined entity, bad UTF-8,
 *    NUL, mismatched tags, duplicate attributes, bad namespace syntax) is
 *    not-well-formed (§11.3, §4.9.3.13); an undeclared prefix is
 *    invalid-namespace (§4.9.3.10, the project's choice: the element ends
 *    up in no namespace); warnings (e.g. a relative namespace URI) pass;
 *  - the input is UTF-8 only (§11.6): encoding declarations are ignored and
 *    autodetection is off, so a BOM is U+FEFF before the root element, and
 *    other encodings fail as bad UTF-8;
 *  - limits give policy-violation (§4.9.3.14): bytes since the last stanza
 *    boundary, nesting depth, attributes per element. Bytes are handed to
 *    libxml2 in slices capped so that it never holds more than the stanza
 *    limit plus one byte, whatever the caller feeds at once;
 *  - libxml2's errors go to a structured handler of this context only;
 *    nothing is printed.
 *
 * Positions: libxml2's input->consumed + (cur - base) is the byte offset
 * just after the construct a callback reports (no encoding conversion
 * happens, so it counts input bytes). Stanza boundaries, the restart point
 * and the close point come from it.
 */
#include "xmpp/xml_int.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feed slice: libxml2's push parser was fastest with 4 KB chunks here
 * (DEPS.md §2: 16 KB chunks were slower). */
#define FEED_SLICE 4096u
/* The pre-scanner runs over up to this much at once (it is faster on
 * longer runs; the window stays in L2 for libxml2's copy after it). */
#define SCAN_WINDOW ((size_t)32 << 10)
#define NAME_CACHE 512u /* power of two; open addressing */

enum { ST_FRESH, ST_PARSING, ST_CLOSED, ST_FAILED };

typedef struct name_slot {
    const xmlChar *key; /* libxml2 dictionary string (stable while the ctxt lives) */
    const char *val;    /* static copy, or NULL: copy into the tree */
    size_t len;
} name_slot;

struct xml_stream {
    xmlParserCtxtPtr ctxt;
    xml_stream_handler h;
    void *ud;
    size_t max_stanza;
    uint32_t max_depth, max_attrs;
    char *content_ns;

    int state;
    int in_feed;
    int restart_req;   /* restart asked while feeding */
    unsigned depth;    /* libxml2 element depth: 1 = <stream:stream> */
    xml_node *stanza;  /* under construction */
    xml_node *cur;
    xml_node *header;  /* tree holding the header and its namespace list */
    xml_stream_header hdr;

    uint64_t pushed;   /* bytes of this document given to libxml2 */
    uint64_t boundary; /* end of the header / last stanza / keep-alive */
    uint64_t stop_pos; /* end of the last event delivered */
    xml_scan scan;

    xml_cond err;
    char errtext[128];
    name_slot cache[NAME_CACHE];
};

static uint64_t cur_pos(const xml_stream *s)
{
    xmlParserInputPtr in = s->ctxt ? s->ctxt->input : NULL;
    if (!in || !in->cur || !in->base)
        return s->pushed;
    return (uint64_t)in->consumed + (uint64_t)(in->cur - in->base);
}

/* Offset just after character data ch[0..n) that libxml2 reports: when ch
 * points into the input buffer that is exact (libxml2 moves input->cur
 * past the data before some characters() calls and after others). */
static uint64_t pos_after(const xml_stream *s, const xmlChar *ch, int n)
{
    xmlParserInputPtr in = s->ctxt ? s->ctxt->input : NULL;
    uintptr_t c = (uintptr_t)ch, b = in ? (uintptr_t)in->base : 0, e = in ? (uintptr_t)in->end : 0;
    if (b && e && c >= b && c + (uintptr_t)n <= e)
        return (uint64_t)in->consumed + (uint64_t)(c + (uintptr_t)n - b);
    return cur_pos(s);
}

static void set_text(xml_stream *s, const char *msg)
{
    size_t i = 0;
    for (; msg && msg[i] && i < sizeof s->errtext - 1; i++) {
        unsigned char c = (unsigned char)msg[i];
        /* Readable in logs whatever the peer put in names. */
        s->errtext[i] = c < 0x20 || c == 0x7f ? ' ' : c >= 0x80 ? '?' : (char)c;
    }
    while (i > 0 && s->errtext[i - 1] == ' ')
        i--;
    s->errtext[i] = '\0';
}

static void failv(xml_stream *s, xml_cond cond, const char *fmt, va_list ap)
{
    if (s->state == ST_FAILED)
        return; /* the first error is the one that counts */
    char msg[160];
    vsnprintf(msg, sizeof msg, fmt, ap);
    s->err = cond;
    set_text(s, msg);
    s->state = ST_FAILED;
    s->restart_req = 0;
    if (s->in_feed && s->ctxt)
        xmlStopParser(s->ctxt);
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void fail(xml_stream *s, xml_cond cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    failv(s, cond, fmt, ap);
    va_end(ap);
}

static int live(const xml_stream *s)
{
    return s->state == ST_PARSING && !s->restart_req;
}

/* ---- names ---------------------------------------------------------- */

/* Name or namespace URI for a tree in arena a. Dictionary strings are
 * looked up once per stream in the static table; the answer is cached by
 * pointer. Only dictionary-owned pointers are cached: their bytes cannot
 * change while the ctxt lives, and the cache dies with it. */
static const char *intern(xml_stream *s, xml_arena *a, const xmlChar *p)
{
    uint32_t i = (uint32_t)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) >> 40) & (NAME_CACHE - 1);
    name_slot *sl = NULL;
    /* Linear probing over a few slots; a full neighbourhood (a peer
     * inventing names) just means no caching for that name. */
    for (unsigned k = 0; k < 8; k++) {
        name_slot *c = &s->cache[(i + k) & (NAME_CACHE - 1)];
        if (c->key == p) {
            sl = c;
            break;
        }
        if (!c->key) {
            size_t len = strlen((const char *)p);
            if (xmlDictOwns(s->ctxt->dict, p) != 1)
                return xml_arena_strndup(a, (const char *)p, len);
            c->key = p;
            c->len = len;
            c->val = xml_name_static((const char *)p, len);
            sl = c;
            break;
        }
    }
    if (!sl) {
        size_t len = strlen((const char *)p);
        const char *st = xml_name_static((const char *)p, len);
        return st ? st : xml_arena_strndup(a, (const char *)p, len);
    }
    if (sl->val)
        return sl->val;
    return xml_arena_strndup(a, (const char *)p, sl->len);
}

/* libxml2 without NOENT hands "&amp;" (and &#38;, &#x26;) in attribute
 * values over as the five bytes "&#38;", to be re-parsed by a tree
 * builder; every other reference arrives decoded. Undo that one. */
static char *attr_value(xml_arena *a, const xmlChar *v, const xmlChar *end, size_t *len)
{
    size_t n = (size_t)(end - v);
    const char *src = (const char *)v;
    const char *amp = memchr(src, '&', n);
    if (!amp) {
        *len = n;
        return xml_arena_strndup(a, src, n);
    }
    char *d = xml_arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    size_t o = 0, i = 0;
    while (i < n) {
        if (src[i] == '&' && n - i >= 5 && memcmp(src + i, "&#38;", 5) == 0) {
            d[o++] = '&';
            i += 5;
        } else {
            d[o++] = src[i++];
        }
    }
    d[o] = '\0';
    *len = o;
    return d;
}

static int set_attrs(xml_stream *s, xml_node *el, int n, const xmlChar **at)
{
    if (n <= 0)
        return 0;
    xml_arena *a = el->arena;
    el->attrs = xml_arena_alloc(a, (size_t)n * sizeof *el->attrs);
    if (!el->attrs)
        return -1;
    for (int i = 0; i < n; i++, at += 5) {
        xml_attr *d = &el->attrs[i];
        /* at: localname, prefix, URI, value, end */
        if (at[1] && !at[2]) {
            fail(s, XML_COND_INVALID_NAMESPACE, "undeclared prefix %s", (const char *)at[1]);
            return -1;
        }
        d->name = intern(s, a, at[0]);
        d->prefix = at[1] ? intern(s, a, at[1]) : NULL;
        d->ns = at[2] ? intern(s, a, at[2]) : NULL;
        d->value = attr_value(a, at[3], at[4], &d->len);
        if (!d->name || !d->value || (at[1] && !d->prefix) || (at[2] && !d->ns))
            return -1;
        el->nattrs = (uint32_t)i + 1;
    }
    el->attrs_cap = el->nattrs;
    return 0;
}

/* ---- SAX callbacks ---------------------------------------------------- */

static void open_stream(xml_stream *s, const xmlChar *localname, const xmlChar *prefix,
                        const xmlChar *uri, int nns, const xmlChar **ns, int nattrs,
                        const xmlChar **attrs)
{
    /* RFC 6120 §4.8.1: the root is <stream/> qualified by the stream
     * namespace, else invalid-namespace (§4.9.3.10); this is also where a
     * stanza sent before any header ends up. */
    if (!uri || strcmp((const char *)uri, XML_NS_STREAMS) != 0) {
        fail(s, XML_COND_INVALID_NAMESPACE, "root element <%s/> is not in the stream namespace",
             (const char *)localname);
        return;
    }
    if (strcmp((const char *)localname, "stream") != 0) {
        fail(s, XML_COND_BAD_FORMAT, "root element is <%s/>, not <stream/>", (const char *)localname);
        return;
    }
    /* §4.8.5: the stream namespace is declared with a prefix (the content
     * namespace is the default one); no prefix: bad-namespace-prefix. Any
     * prefix is accepted (§4.8.5 makes accepting only "stream" optional). */
    if (!prefix) {
        fail(s, XML_COND_BAD_NAMESPACE_PREFIX, "stream namespace declared without a prefix");
        return;
    }
    const char *dflt = NULL;
    for (int i = 0; i < nns; i++)
        if (!ns[2 * i])
            dflt = (const char *)ns[2 * i + 1];
    /* §4.8.2: the content namespace is not the stream namespace, and
     * (when the caller says which) the one this kind of stream uses. */
    if (dflt && strcmp(dflt, XML_NS_STREAMS) == 0) {
        fail(s, XML_COND_INVALID_NAMESPACE, "content namespace is the stream namespace");
        return;
    }
    if (s->content_ns && (!dflt || strcmp(dflt, s->content_ns) != 0)) {
        fail(s, XML_COND_INVALID_NAMESPACE, "content namespace %s, expected %s", dflt ? dflt : "(none)",
             s->content_ns);
        return;
    }

    xml_node *h = xml_root_new(XML_N_ELEMENT);
    if (!h) {
        fail(s, XML_COND_RESOURCE_CONSTRAINT, "out of memory");
        return;
    }
    s->header = h;
    xml_arena *a = h->arena;
    h->name = intern(s, a, localname);
    h->ns = intern(s, a, uri);
    xml_nsdecl *decl = nns > 0 ? xml_arena_alloc(a, (size_t)nns * sizeof *decl) : NULL;
    if (!h->name || !h->ns || (nns > 0 && !decl) || set_attrs(s, h, nattrs, attrs) != 0) {
        fail(s, XML_COND_RESOURCE_CONSTRAINT, "out of memory");
        return;
    }
    xml_stream_header *hd = &s->hdr;
    memset(hd, 0, sizeof *hd);
    for (int i = 0; i < nns; i++) {
        decl[i].prefix = ns[2 * i] ? intern(s, a, ns[2 * i]) : NULL;
        decl[i].uri = intern(s, a, ns[2 * i + 1]);
        if (!decl[i].uri || (ns[2 * i] && !decl[i].prefix)) {
            fail(s, XML_COND_RESOURCE_CONSTRAINT, "out of memory");
            return;
        }
        if (!decl[i].prefix)
            hd->content_ns = decl[i].uri;
    }
    hd->elem = h;
    hd->ns = decl;
    hd->nns = (size_t)nns;
    hd->stream_prefix = intern(s, a, prefix);
    hd->from = xml_attr_get(h, "from");
    hd->to = xml_attr_get(h, "to");
    hd->id = xml_attr_get(h, "id");
    hd->version = xml_attr_get(h, "version");
    const xml_attr *lang = xml_attr_find(h, "lang", XML_NS_XML);
    hd->lang = lang ? lang->value : NULL;
    if (!hd->stream_prefix) {
        fail(s, XML_COND_RESOURCE_CONSTRAINT, "out of memory");
        return;
    }

    /* libxml2 reports a start tag before it steps over the closing '>'. */
    uint64_t pos = cur_pos(s);
    xmlParserInputPtr in = s->ctxt->input;
    if (in && in->cur && in->end && in->cur < in->end && in->cur[0] == '>')
        pos += 1;
    s->boundary = s->stop_pos = pos;
    if (s->h.open)
        s->h.open(s->ud, hd);
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
                     int nns, const xmlChar **ns, int nattrs, int ndefaulted,
                     const xmlChar **attrs)
{
    xml_stream *s = ctx;
    (void)ndefaulted; /* no DTD, so never any */
    if (!live(s))
        return;
    /* libxml2 hands over a start tag it could not finish (an attribute
     * it choked on) and complains afterwards; a complete tag ends at the
     * current '>' or "/>". */
    xmlParserInputPtr in = s->ctxt->input;
    if (!in || !in->cur || (in->cur[0] != '>' && !(in->cur[0] == '/' && in->cur[1] == '>'))) {
        fail(s, XML_COND_NOT_WELL_FORMED, "malformed start tag <%s>", (const char *)localname);
        return;
    }
    s->depth++;
    if ((unsigned)nattrs + (unsigned)nns > s->max_attrs) {
        fail(s, XML_COND_POLICY_VIOLATION, "more than %u attributes on <%s/>", s->max_attrs,
             (const char *)localname);
        return;
    }
    if (s->depth == 1) {
        open_stream(s, localname, prefix, uri, nns, ns, nattrs, attrs);
        return;
    }
    if (s->depth - 1 > s->max_depth) {
        fail(s, XML_COND_POLICY_VIOLATION, "elements nested deeper than %u", s->max_depth);
        return;
    }
    if (prefix && !uri) {
        fail(s, XML_COND_INVALID_NAMESPACE, "undeclared prefix %s", (const char *)prefix);
        return;
    }
    xml_node *el;
    if (s->depth == 2) {
        el = xml_root_new(XML_N_ELEMENT);
        s->stanza = el;
    } else {
        el = xml_node_alloc(s->cur->arena, XML_N_ELEMENT);
        if (el)
            xml_link_child(s->cur, el);
    }
    if (!el) {
        fail(s, XML_COND_RESOURCE_CONSTRAINT, "out of memory");
        return;
    }
    s->cur = el;
    el->name = intern(s, el->arena, localname);
    el->ns = uri ? intern(s, el->arena, uri) : NULL;
    if (!el->name || (uri && !el->ns) || set_attrs(s, el, nattrs, attrs) != 0)
        fail(s, XML_COND_RESOURCE_CONSTRAINT, "out of memory");
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
    xml_stream *s = ctx;
    (void)localname;
    (void)prefix;
    (void)uri;
    if (!live(s))
        return;
    if (s->depth <= 1) { /* </stream:stream> (RFC 6120 §4.4) */
        s->depth = 0;
        s->stop_pos = cur_pos(s);
        s->state = ST_CLOSED;
        xmlStopParser(s->ctxt);
        if (s->h.close)
            s->h.close(s->ud);
        return;
    }
    if (s->depth > 2) {
        s->depth--;
        s->cur = s->cur->parent;
        return;
    }
    s->depth = 1;
    uint64_t pos = cur_pos(s);
    if (pos - s->boundary > s->max_stanza) {
        fail(s, XML_COND_POLICY_VIOLATION, "stanza larger than %zu bytes", s->max_stanza);
        return;
    }
    s->boundary = s->stop_pos = pos;
    xml_node *st = s->stanza;
    s->stanza = s->cur = NULL;
    if (s->h.stanza)
        s->h.stanza(s->ud, st);
    else
        xml_node_free(st);
}

static int all_space(const xmlChar *c, int n)
{
    for (int i = 0; i < n; i++)
        if (c[i] != ' ' && c[i] != '\t' && c[i] != '\n' && c[i] != '\r')
            return 0;
    return 1;
}

static void on_chars(void *ctx, const xmlChar *c, int n)
{
    xml_stream *s = ctx;
    if (!live(s) || n <= 0)
        return;
    if (s->depth >= 2) {
        if (!xml_text_piece(s->cur, (const char *)c, (size_t)n))
            fail(s, XML_COND_RESOURCE_CONSTRAINT, "out of memory");
        return;
    }
    if (s->depth == 1) {
        /* Between stanzas only whitespace keep-alives (RFC 6120 §4.6.1). */
        if (all_space(c, n))
            s->boundary = pos_after(s, c, n);
        else
            fail(s, XML_COND_BAD_FORMAT, "character data between stanzas");
    }
}

static void on_comment(void *ctx, const xmlChar *v)
{
    (void)v;
    fail(ctx, XML_COND_RESTRICTED_XML, "comment"); /* RFC 6120 §11.1 */
}

static void on_pi(void *ctx, const xmlChar *target, const xmlChar *data)
{
    (void)data;
    fail(ctx, XML_COND_RESTRICTED_XML, "processing instruction %s", (const char *)target);
}

static void on_subset(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
    (void)name;
    (void)ext;
    (void)sys;
    fail(ctx, XML_COND_RESTRICTED_XML, "document type declaration");
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *pub,
                           const xmlChar *sys, xmlChar *content)
{
    (void)name;
    (void)type;
    (void)pub;
    (void)sys;
    (void)content;
    fail(ctx, XML_COND_RESTRICTED_XML, "entity declaration");
}

static void on_reference(void *ctx, const xmlChar *name)
{
    fail(ctx, XML_COND_RESTRICTED_XML, "entity reference &%s;", (const char *)name);
}

static xmlEntityPtr no_entity(void *ctx, const xmlChar *name)
{
    (void)ctx;
    (void)name;
    return NULL; /* only the predefined entities exist (libxml2 checks them first) */
}

static void on_error(void *ctx, xmlErrorPtr e)
{
    xml_stream *s = ctx;
    if (!e || e->level == XML_ERR_WARNING || e->code == XML_ERR_USER_STOP)
        return;
    xml_cond cond = XML_COND_NOT_WELL_FORMED;
    if (e->domain == XML_FROM_NAMESPACE && e->code == XML_NS_ERR_UNDEFINED_NAMESPACE)
        cond = XML_COND_INVALID_NAMESPACE;
    else if (e->code == XML_ERR_NO_MEMORY)
        cond = XML_COND_RESOURCE_CONSTRAINT;
    fail(s, cond, "%s", e->message ? e->message : "XML error");
}

/* ---- document lifecycle ------------------------------------------------ */

static void drop_document(xml_stream *s)
{
    if (s->ctxt) {
        xmlFreeParserCtxt(s->ctxt);
        s->ctxt = NULL;
    }
    xml_node_free(s->header);
    s->header = NULL;
    xml_node_free(s->stanza);
    s->stanza = s->cur = NULL;
    s->depth = 0;
}

static int new_document(xml_stream *s)
{
    drop_document(s);
    memset(s->cache, 0, sizeof s->cache);
    s->pushed = s->boundary = s->stop_pos = 0;
    s->restart_req = 0;
    s->err = XML_COND_NONE;
    s->errtext[0] = '\0';
    xml_scan_init(&s->scan);

    xmlSAXHandler sax;
    memset(&sax, 0, sizeof sax);
    sax.initialized = XML_SAX2_MAGIC;
    sax.startElementNs = on_start;
    sax.endElementNs = on_end;
    sax.characters = on_chars;
    sax.ignorableWhitespace = on_chars;
    sax.cdataBlock = on_chars; /* CDATA is text */
    sax.comment = on_comment;
    sax.processingInstruction = on_pi;
    sax.internalSubset = on_subset;
    sax.externalSubset = on_subset;
    sax.entityDecl = on_entity_decl;
    sax.reference = on_reference;
    sax.getEntity = no_entity;
    sax.getParameterEntity = no_entity;
    sax.serror = on_error;

    xmlInitParser(); /* idempotent */
    s->ctxt = xmlCreatePushParserCtxt(&sax, s, NULL, 0, NULL);
    if (!s->ctxt)
        return -1;
    /* Never NOENT, DTDLOAD, DTDATTR, HUGE: nothing loads, nothing expands,
     * libxml2's own caps stay on. IGNORE_ENC: UTF-8 only (RFC 6120 §11.6). */
    xmlCtxtUseOptions(s->ctxt, XML_PARSE_NONET | XML_PARSE_IGNORE_ENC);
    /* Skip encoding autodetection from the first bytes (which would switch
     * to UTF-16 on "<\0" and report conversion errors globally). */
    s->ctxt->charset = XML_CHAR_ENCODING_UTF8;
    s->state = ST_PARSING;
    return 0;
}

xml_stream *xml_stream_new(const xml_stream_opts *opts, const xml_stream_handler *h, void *ud)
{
    xml_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    xml_stream_opts o = {0};
    if (opts)
        o = *opts;
    s->max_stanza = o.max_stanza ? o.max_stanza : XML_DEFAULT_MAX_STANZA;
    if (s->max_stanza > XML_LIMIT_MAX_STANZA)
        s->max_stanza = XML_LIMIT_MAX_STANZA;
    s->max_depth = o.max_depth ? o.max_depth : XML_DEFAULT_MAX_DEPTH;
    if (s->max_depth > XML_LIMIT_MAX_DEPTH)
        s->max_depth = XML_LIMIT_MAX_DEPTH;
    s->max_attrs = o.max_attrs ? o.max_attrs : XML_DEFAULT_MAX_ATTRS;
    if (o.content_ns && !(s->content_ns = strdup(o.content_ns))) {
        free(s);
        return NULL;
    }
    if (h)
        s->h = *h;
    s->ud = ud;
    s->state = ST_FRESH;
    return s;
}

void xml_stream_free(xml_stream *s)
{
    if (!s)
        return;
    drop_document(s);
    free(s->content_ns);
    free(s);
}

void xml_stream_restart(xml_stream *s)
{
    if (s->in_feed) {
        s->restart_req = 1;
        if (s->ctxt)
            xmlStopParser(s->ctxt); /* no further events from this feed */
    } else {
        s->state = ST_FRESH;
    }
}

void xml_stream_fail(xml_stream *s, xml_cond cond, const char *text)
{
    fail(s, cond == XML_COND_NONE ? XML_COND_UNDEFINED_CONDITION : cond, "%s", text ? text : "");
}

xml_cond xml_stream_error(const xml_stream *s, const char **text)
{
    if (text)
        *text = s->errtext;
    return s->state == ST_FAILED ? s->err : XML_COND_NONE;
}

const xml_stream_header *xml_stream_get_header(const xml_stream *s)
{
    return s->header && s->state != ST_FRESH ? &s->hdr : NULL;
}

xml_status xml_stream_feed(xml_stream *s, const void *data, size_t len, size_t *used)
{
    size_t dummy;
    if (!used)
        used = &dummy;
    *used = 0;
    if (s->in_feed)
        return XML_STREAM_ERROR; /* re-entered from a handler: refused */
    if (s->state == ST_FRESH && new_document(s) != 0) {
        s->state = ST_PARSING; /* so fail() records it */
        fail(s, XML_COND_RESOURCE_CONSTRAINT, "out of memory");
    }
    if (s->state == ST_FAILED)
        return XML_STREAM_ERROR;
    if (s->state == ST_CLOSED)
        return XML_STREAM_CLOSED;

    const char *p = data;
    uint64_t base = s->pushed;
    size_t off = 0;
    s->in_feed = 1;
    while (off < len && live(s)) {
        size_t n = len - off;
        if (n > SCAN_WINDOW)
            n = SCAN_WINDOW;
        /* Never more than max_stanza + 1 bytes past the boundary in libxml2. */
        uint64_t room = s->boundary + s->max_stanza + 1 - s->pushed;
        if (n > room)
            n = (size_t)room;
        size_t ok = xml_scan_run(&s->scan, p + off, n, s->max_attrs);
        for (size_t done = 0; done < ok && live(s);) {
            size_t k = ok - done < FEED_SLICE ? ok - done : FEED_SLICE;
            xmlParseChunk(s->ctxt, p + off + done, (int)k, 0);
            s->pushed += k;
            done += k;
            /* Safety net: a fatal error that did not reach on_error. */
            if (live(s) && (s->ctxt->instate == XML_PARSER_EOF || !s->ctxt->wellFormed))
                fail(s, XML_COND_NOT_WELL_FORMED, "XML error");
        }
        if (!live(s))
            break;
        if (ok < n) {
            fail(s, XML_COND_POLICY_VIOLATION, "more than %u attributes in a start tag", s->max_attrs);
            break;
        }
        off += n;
        if (s->pushed - s->boundary > s->max_stanza)
            fail(s, XML_COND_POLICY_VIOLATION, "stanza larger than %zu bytes", s->max_stanza);
    }
    s->in_feed = 0;

    if (s->restart_req) {
        *used = (size_t)(s->stop_pos - base);
        s->restart_req = 0;
        s->state = ST_FRESH; /* the next feed starts the new document */
        return XML_STREAM_RESTART;
    }
    if (s->state == ST_FAILED) {
        xml_node_free(s->stanza);
        s->stanza = s->cur = NULL;
        return XML_STREAM_ERROR;
    }
    if (s->state == ST_CLOSED) {
        *used = (size_t)(s->stop_pos - base);
        return XML_STREAM_CLOSED;
    }
    *used = len;
    return XML_STREAM_OK;
}
