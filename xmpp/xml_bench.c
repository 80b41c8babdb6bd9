/*
 * xml_bench.c: the stanza-model benchmark behind `make bench` (bench_xml)
 * and `psycgatectl xml bench`. Every variant sees the same bytes through the
 * same libxml2 options and the same 4 KB xmlParseChunk slices as
 * xml_stream_feed uses, so the ratios compare only what is built:
 *   bare     SAX2 push, depth counting (the floor any stanza model pays),
 *   own      xml_stream: arena trees, limits, pre-scan,
 *   strophe  libstrophe xmpp_stanza_t trees (the model DESIGN.md §1 names).
 * Serializers: xml_serialize and xmpp_stanza_to_text over the same stanzas.
 */
#include "xmpp/xml.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <strophe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLICE 4096u         /* = FEED_SLICE in stream.c */
#define KEEP_MAX 20000u     /* stanzas kept in memory for the serializer runs */
#define STROPHE_DEPTH 256u

/* CPU time of this process: the machines this runs on are shared and
 * noisy; wall time moved by 2x between identical runs here. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void quiet(void *ud, xmlErrorPtr e)
{
    (void)ud;
    (void)e;
}

static xmlParserCtxtPtr push_ctxt(xmlSAXHandler *sax, void *ud)
{
    sax->initialized = XML_SAX2_MAGIC;
    sax->serror = quiet;
    xmlParserCtxtPtr c = xmlCreatePushParserCtxt(sax, ud, NULL, 0, NULL);
    if (c) {
        xmlCtxtUseOptions(c, XML_PARSE_NONET | XML_PARSE_IGNORE_ENC);
        c->charset = XML_CHAR_ENCODING_UTF8;
    }
    return c;
}

static int push_all(xmlParserCtxtPtr c, const char *data, size_t len, size_t chunk)
{
    size_t step = chunk < SLICE ? chunk : SLICE;
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        if (xmlParseChunk(c, data + off, (int)n, 0) != 0)
            return -1;
    }
    return 0;
}

static void keep_best(xml_bench_result *r, double t, size_t stanzas, size_t bytes, int err)
{
    if (err)
        r->error = 1;
    if (r->seconds == 0 || t < r->seconds)
        r->seconds = t;
    r->stanzas = stanzas;
    r->bytes = bytes;
}

/* ---- bare SAX ------------------------------------------------------------ */

typedef struct bare {
    unsigned depth;
    size_t stanzas;
} bare;

static void bare_start(void *ud, const xmlChar *l, const xmlChar *p, const xmlChar *u, int nns,
                       const xmlChar **ns, int na, int nd, const xmlChar **at)
{
    (void)l, (void)p, (void)u, (void)nns, (void)ns, (void)na, (void)nd, (void)at;
    ((bare *)ud)->depth++;
}

static void bare_end(void *ud, const xmlChar *l, const xmlChar *p, const xmlChar *u)
{
    (void)l, (void)p, (void)u;
    bare *b = ud;
    if (--b->depth == 1)
        b->stanzas++;
}

static void bare_chars(void *ud, const xmlChar *c, int n)
{
    (void)ud, (void)c, (void)n;
}

void xml_bench_bare(const char *data, size_t len, size_t chunk, int runs, xml_bench_result *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < runs; i++) {
        xmlSAXHandler sax;
        memset(&sax, 0, sizeof sax);
        sax.startElementNs = bare_start;
        sax.endElementNs = bare_end;
        sax.characters = bare_chars;
        sax.cdataBlock = bare_chars;
        bare b = {0, 0};
        xmlParserCtxtPtr c = push_ctxt(&sax, &b);
        if (!c) {
            r->error = 1;
            return;
        }
        double t0 = now();
        int err = push_all(c, data, len, chunk);
        double t = now() - t0;
        xmlFreeParserCtxt(c);
        keep_best(r, t, b.stanzas, len, err);
    }
}

/* ---- own trees ------------------------------------------------------------- */

typedef struct own {
    size_t stanzas;
    xml_node **kept;
    size_t nkept;
    const char *content_ns;
} own;

static void own_stanza(void *ud, xml_node *st)
{
    own *o = ud;
    o->stanzas++;
    if (o->kept && o->nkept < KEEP_MAX)
        o->kept[o->nkept++] = st;
    else
        xml_node_free(st);
}

static void own_open(void *ud, const xml_stream_header *h)
{
    own *o = ud;
    o->content_ns = h->content_ns;
}

static int own_parse(const char *data, size_t len, size_t chunk, own *o, xml_stream **sp)
{
    xml_stream_handler h = {.open = own_open, .stanza = own_stanza};
    xml_stream *s = xml_stream_new(NULL, &h, o);
    if (!s)
        return -1;
    int err = 0;
    for (size_t off = 0; off < len && !err; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        err = xml_stream_feed(s, data + off, n, NULL) != XML_STREAM_OK;
    }
    if (sp)
        *sp = s;
    else
        xml_stream_free(s);
    return err ? -1 : 0;
}

void xml_bench_own(const char *data, size_t len, size_t chunk, int runs, xml_bench_result *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < runs; i++) {
        own o = {0};
        double t0 = now();
        int err = own_parse(data, len, chunk, &o, NULL);
        keep_best(r, now() - t0, o.stanzas, len, err);
    }
}

/* ---- libstrophe trees ------------------------------------------------------- */

typedef struct strophe {
    xmpp_ctx_t *ctx;
    xmpp_stanza_t *stack[STROPHE_DEPTH];
    unsigned depth;
    psyc_buf text, tmp;
    size_t stanzas;
    xmpp_stanza_t **kept;
    size_t nkept;
    int err;
} strophe;

static void st_flush(strophe *s)
{
    if (!s->text.len || s->depth < 2)
        return;
    xmpp_stanza_t *t = xmpp_stanza_new(s->ctx);
    if (!t || xmpp_stanza_set_text_with_size(t, s->text.data, s->text.len) != XMPP_EOK ||
        xmpp_stanza_add_child_ex(s->stack[s->depth - 1], t, 0) != XMPP_EOK)
        s->err = 1;
    s->text.len = 0;
}

static void st_start(void *ud, const xmlChar *l, const xmlChar *p, const xmlChar *u, int nns,
                     const xmlChar **ns, int na, int nd, const xmlChar **at)
{
    (void)p, (void)nns, (void)ns, (void)nd;
    strophe *s = ud;
    st_flush(s);
    s->depth++;
    if (s->depth < 2 || s->depth >= STROPHE_DEPTH)
        return;
    xmpp_stanza_t *el = xmpp_stanza_new(s->ctx);
    if (!el) {
        s->err = 1;
        return;
    }
    xmpp_stanza_set_name(el, (const char *)l);
    xmpp_stanza_t *parent = s->depth > 2 ? s->stack[s->depth - 1] : NULL;
    const char *pns = parent ? xmpp_stanza_get_ns(parent) : NULL;
    if (u && (!pns || strcmp(pns, (const char *)u) != 0))
        xmpp_stanza_set_ns(el, (const char *)u);
    for (int i = 0; i < na; i++, at += 5) {
        /* NUL-terminated value, "&#38;" back to "&" as in stream.c */
        s->tmp.len = 0;
        for (const xmlChar *v = at[3]; v < at[4];) {
            if (*v == '&' && at[4] - v >= 5 && memcmp(v, "&#38;", 5) == 0) {
                psyc_buf_putc(&s->tmp, '&');
                v += 5;
            } else {
                psyc_buf_putc(&s->tmp, (char)*v++);
            }
        }
        psyc_buf_putc(&s->tmp, '\0');
        char qname[256];
        const char *name = (const char *)at[0];
        if (at[1]) {
            strncpy(qname, (const char *)at[1], 100);
            qname[100] = '\0';
            strcat(qname, ":");
            strncat(qname, (const char *)at[0], 100);
            name = qname;
        }
        xmpp_stanza_set_attribute(el, name, s->tmp.data);
    }
    if (parent)
        xmpp_stanza_add_child_ex(parent, el, 0);
    s->stack[s->depth] = el;
}

static void st_end(void *ud, const xmlChar *l, const xmlChar *p, const xmlChar *u)
{
    (void)l, (void)p, (void)u;
    strophe *s = ud;
    st_flush(s);
    if (s->depth == 2) {
        s->stanzas++;
        if (s->kept && s->nkept < KEEP_MAX)
            s->kept[s->nkept++] = s->stack[2];
        else
            xmpp_stanza_release(s->stack[2]);
    }
    s->depth--;
}

static void st_chars(void *ud, const xmlChar *c, int n)
{
    strophe *s = ud;
    if (s->depth >= 2)
        psyc_buf_append(&s->text, c, (size_t)n);
}

static int strophe_parse(const char *data, size_t len, size_t chunk, strophe *s)
{
    xmlSAXHandler sax;
    memset(&sax, 0, sizeof sax);
    sax.startElementNs = st_start;
    sax.endElementNs = st_end;
    sax.characters = st_chars;
    sax.cdataBlock = st_chars;
    xmlParserCtxtPtr c = push_ctxt(&sax, s);
    if (!c)
        return -1;
    int err = push_all(c, data, len, chunk);
    xmlFreeParserCtxt(c);
    return err || s->err ? -1 : 0;
}

void xml_bench_strophe(const char *data, size_t len, size_t chunk, int runs, xml_bench_result *r)
{
    memset(r, 0, sizeof *r);
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
    if (!ctx) {
        r->error = 1;
        return;
    }
    for (int i = 0; i < runs; i++) {
        strophe *s = calloc(1, sizeof *s);
        if (!s) {
            r->error = 1;
            break;
        }
        s->ctx = ctx;
        double t0 = now();
        int err = strophe_parse(data, len, chunk, s);
        keep_best(r, now() - t0, s->stanzas, len, err);
        psyc_buf_free(&s->text);
        psyc_buf_free(&s->tmp);
        free(s);
    }
    xmpp_ctx_free(ctx);
}

/* ---- serializers ------------------------------------------------------------- */

void xml_bench_serialize(const char *data, size_t len, int runs, xml_bench_result *r,
                         xml_bench_result *sr)
{
    memset(r, 0, sizeof *r);
    memset(sr, 0, sizeof *sr);
    own o = {0};
    strophe *s = calloc(1, sizeof *s);
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
    o.kept = calloc(KEEP_MAX, sizeof *o.kept);
    if (s)
        s->kept = calloc(KEEP_MAX, sizeof *s->kept);
    xml_stream *stream = NULL;
    if (!s || !ctx || !o.kept || !s->kept) {
        r->error = sr->error = 1;
        goto out;
    }
    s->ctx = ctx;
    if (own_parse(data, len, len ? len : 1, &o, &stream) != 0)
        r->error = 1;
    if (strophe_parse(data, len, len ? len : 1, s) != 0)
        sr->error = 1;

    xml_nsmap map;
    xml_nsmap_init(&map, o.content_ns ? o.content_ns : XML_NS_SERVER);
    psyc_buf out;
    psyc_buf_init(&out);
    for (int i = 0; i < runs; i++) {
        size_t bytes = 0;
        int err = 0;
        double t0 = now();
        for (size_t k = 0; k < o.nkept; k++) {
            psyc_buf_reset(&out); /* one stanza per write, buffer reused */
            err |= xml_serialize(&out, o.kept[k], &map) != 0;
            bytes += out.len;
        }
        keep_best(r, now() - t0, o.nkept, bytes, err);

        bytes = 0;
        err = 0;
        t0 = now();
        for (size_t k = 0; k < s->nkept; k++) {
            char *buf;
            size_t n;
            err |= xmpp_stanza_to_text(s->kept[k], &buf, &n) != XMPP_EOK;
            if (buf)
                xmpp_free(ctx, buf);
            bytes += n;
        }
        keep_best(sr, now() - t0, s->nkept, bytes, err);
    }
    psyc_buf_free(&out);
out:
    if (o.kept)
        for (size_t k = 0; k < o.nkept; k++)
            xml_node_free(o.kept[k]);
    free(o.kept);
    if (s) {
        if (s->kept)
            for (size_t k = 0; k < s->nkept; k++)
                xmpp_stanza_release(s->kept[k]);
        free(s->kept);
        psyc_buf_free(&s->text);
        psyc_buf_free(&s->tmp);
        free(s);
    }
    xml_stream_free(stream);
    if (ctx)
        xmpp_ctx_free(ctx);
}

/* ---- report ---------------------------------------------------------------- */

static int line(psyc_buf *out, const char *label, const xml_bench_result *r, double base_s)
{
    char tmp[256];
    if (r->error || r->seconds <= 0) {
        snprintf(tmp, sizeof tmp, "%-22s FAILED\n", label);
        psyc_buf_puts(out, tmp);
        return -1;
    }
    double mbs = (double)r->bytes / r->seconds / 1e6;
    double kst = (double)r->stanzas / r->seconds / 1e3;
    if (base_s > 0)
        snprintf(tmp, sizeof tmp, "%-22s %8.1f MB/s %9.0f k stanzas/s   time %.2fx bare\n", label, mbs,
                 kst, r->seconds / base_s);
    else
        snprintf(tmp, sizeof tmp, "%-22s %8.1f MB/s %9.0f k stanzas/s\n", label, mbs, kst);
    return psyc_buf_puts(out, tmp);
}

static void merge(xml_bench_result *best, const xml_bench_result *r)
{
    keep_best(best, r->seconds, r->stanzas, r->bytes, r->error);
}

int xml_bench_all(const char *data, size_t len, size_t chunk, int runs, psyc_buf *report)
{
    xml_bench_result rb = {0}, ro = {0}, st = {0}, ser, sttext, one;
    char tmp[256];
    /* Interleaved, best of each: a slow phase of the machine hits all. */
    for (int i = 0; i < runs; i++) {
        xml_bench_bare(data, len, chunk, 1, &one);
        merge(&rb, &one);
        xml_bench_own(data, len, chunk, 1, &one);
        merge(&ro, &one);
        xml_bench_strophe(data, len, chunk, 1, &one);
        merge(&st, &one);
    }
    xml_bench_serialize(data, len, runs, &ser, &sttext);
    snprintf(tmp, sizeof tmp, "input %.1f MB, %zu stanzas, %zu-byte feeds, best of %d\n",
             (double)len / 1e6, rb.stanzas, chunk, runs);
    psyc_buf_puts(report, tmp);
    int rc = 0;
    rc |= line(report, "bare libxml2 SAX", &rb, rb.seconds);
    rc |= line(report, "own xml_node trees", &ro, rb.seconds);
    rc |= line(report, "libstrophe trees", &st, rb.seconds);
    if (!ro.error && !rb.error && ro.stanzas != rb.stanzas) {
        snprintf(tmp, sizeof tmp, "stanza count differs: own %zu, bare %zu\n", ro.stanzas, rb.stanzas);
        psyc_buf_puts(report, tmp);
        rc = -1;
    }
    rc |= line(report, "xml_serialize", &ser, 0);
    rc |= line(report, "xmpp_stanza_to_text", &sttext, 0);
    if (!ser.error && !rb.error && ser.seconds > 0 && rb.seconds > 0) {
        double ser_mbs = (double)ser.bytes / ser.seconds / 1e6;
        double bare_mbs = (double)rb.bytes / rb.seconds / 1e6;
        double own_mbs = (double)ro.bytes / ro.seconds / 1e6;
        snprintf(tmp, sizeof tmp,
                 "goals: own/bare time %.2fx (<= 1.50x: %s); serialize %.2fx the own parse speed "
                 "(>= 1: %s)\n",
                 ro.seconds / rb.seconds, ro.seconds / rb.seconds <= 1.5 ? "met" : "MISSED",
                 ser_mbs / own_mbs, ser_mbs >= own_mbs ? "met" : "MISSED");
        (void)bare_mbs;
        psyc_buf_puts(report, tmp);
    }
    return rc ? -1 : 0;
}
