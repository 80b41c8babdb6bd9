/*
 * fuzz_xml_stream.c: the XMPP stream parser and the serializer.
 * Input: byte 0 seeds the chunk sizes, byte 1 picks limits, the rest is
 * the stream. Properties checked on every input (abort() on violation):
 *  - no crash, leak or undefined behaviour (ASan/UBSan);
 *  - fed whole and fed in chunks of 1..64 bytes, the events (headers,
 *    stanzas as serialized, restarts, close) are the same, and so is the
 *    end state, except that malformed input may already be an error in
 *    one run while the other still waits for bytes (libxml2's push parser
 *    decides "incomplete or broken" from what it has; more input or the
 *    size limit ends the wait), and that a limit (policy-violation) may
 *    strike in one run before libxml2 decided the bytes were broken;
 *  - every stanza serializes, and the serialization parsed inside a
 *    synthetic stream gives exactly one stanza equal to it (content
 *    namespaces aside), whose serialization is the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmpp/xml.h"

typedef struct run {
    xml_stream *s;
    psyc_buf log;
    xml_nsmap map;
    char content[256]; /* content namespace of the current header, if usable */
    int has_content;
    size_t events; /* log length before the end state */
} run;

static const xml_stream_opts wide = {.max_stanza = XML_LIMIT_MAX_STANZA,
                                     .max_depth = XML_LIMIT_MAX_DEPTH,
                                     .max_attrs = 100000};

typedef struct one {
    xml_node *st;
    size_t n;
} one;

static void keep_first(void *ud, xml_node *st)
{
    one *o = ud;
    if (o->n++ == 0)
        o->st = st;
    else
        xml_node_free(st);
}

/* parse(serialize(st)) == st, and serialize is a fixpoint. */
static void roundtrip(const run *r, const xml_node *st, const psyc_buf *ser)
{
    psyc_buf doc;
    psyc_buf_init(&doc);
    psyc_buf_puts(&doc, "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                        "xmlns:db='jabber:server:dialback'");
    if (r->has_content) {
        psyc_buf_puts(&doc, " xmlns='");
        psyc_buf_puts(&doc, r->content);
        psyc_buf_puts(&doc, "'");
    }
    psyc_buf_puts(&doc, ">");
    psyc_buf_append(&doc, ser->data, ser->len);
    one o = {0};
    xml_stream_handler h = {.stanza = keep_first};
    xml_stream *s = xml_stream_new(&wide, &h, &o);
    if (!s || xml_stream_feed(s, doc.data, doc.len, NULL) != XML_STREAM_OK || o.n != 1)
        abort();
    if (!xml_node_equal(st, o.st, XML_EQ_CONTENT_NS))
        abort();
    psyc_buf again;
    psyc_buf_init(&again);
    if (xml_serialize(&again, o.st, &r->map) != 0 || again.len != ser->len ||
        memcmp(again.data, ser->data, ser->len) != 0)
        abort();
    psyc_buf_free(&again);
    xml_node_free(o.st);
    xml_stream_free(s);
    psyc_buf_free(&doc);
}

static void on_open(void *ud, const xml_stream_header *h)
{
    run *r = ud;
    /* Only a content namespace is "the stream's" for the serializer; with
     * any other default the stanzas are written with explicit xmlns. */
    r->has_content = h->content_ns && xml_ns_is_content(h->content_ns);
    if (r->has_content)
        strcpy(r->content, h->content_ns);
    xml_nsmap_init(&r->map, r->has_content ? r->content : NULL);
    psyc_buf_puts(&r->log, "O ");
    psyc_buf_puts(&r->log, h->content_ns ? h->content_ns : "-");
    psyc_buf_putc(&r->log, '\n');
}

static void on_stanza(void *ud, xml_node *st)
{
    run *r = ud;
    psyc_buf ser;
    psyc_buf_init(&ser);
    if (xml_serialize(&ser, st, &r->map) != 0)
        abort(); /* parsed trees are always writable */
    roundtrip(r, st, &ser);
    psyc_buf_append(&r->log, ser.data, ser.len);
    psyc_buf_putc(&r->log, '\n');
    psyc_buf_free(&ser);
    if (xml_is(st, "starttls", XML_NS_TLS) || xml_is(st, "proceed", XML_NS_TLS) ||
        xml_is(st, "success", XML_NS_SASL))
        xml_stream_restart(r->s);
    xml_node_free(st);
}

static void on_close(void *ud)
{
    psyc_buf_puts(&((run *)ud)->log, "C\n");
}

/* Feeds everything, continuing after restarts; appends the end state. */
static void feed_all(run *r, const uint8_t *d, size_t n, uint8_t seed, int chunked)
{
    uint32_t x = seed | 0x100u;
    size_t off = 0;
    xml_status st = XML_STREAM_OK;
    while (off < n) {
        size_t k = n - off;
        if (chunked) {
            x = x * 1103515245u + 12345u;
            size_t c = 1 + (x >> 16) % 64;
            if (k > c)
                k = c;
        }
        size_t used = 0;
        st = xml_stream_feed(r->s, d + off, k, &used);
        if (st == XML_STREAM_ERROR || st == XML_STREAM_CLOSED)
            break;
        if (st == XML_STREAM_RESTART)
            psyc_buf_puts(&r->log, "R\n");
        if (used > k)
            abort();
        off += used;
    }
    r->events = r->log.len;
    psyc_buf_puts(&r->log, st == XML_STREAM_ERROR ? "E " : "S ");
    psyc_buf_puts(&r->log, xml_cond_name(xml_stream_error(r->s, NULL)));
}

static void run_once(run *r, const uint8_t *d, size_t n, uint8_t seed, uint8_t flags, int chunked)
{
    static const xml_stream_opts small = {.max_stanza = 512, .max_depth = 4, .max_attrs = 8};
    xml_stream_opts o = flags & 1 ? small : (xml_stream_opts){0};
    if (flags & 2)
        o.content_ns = XML_NS_SERVER;
    xml_stream_handler h = {.open = on_open, .stanza = on_stanza, .close = on_close};
    memset(r, 0, sizeof *r);
    psyc_buf_init(&r->log);
    r->s = xml_stream_new(&o, &h, r);
    if (!r->s)
        abort();
    feed_all(r, d, n, seed, chunked);
    xml_stream_free(r->s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    run whole, pieces;
    run_once(&whole, data + 2, size - 2, data[0], data[1], 0);
    run_once(&pieces, data + 2, size - 2, data[0], data[1], 1);
    if (whole.events != pieces.events || memcmp(whole.log.data, pieces.log.data, whole.events) != 0)
        abort();
    const char *we = whole.log.data + whole.events, *pe = pieces.log.data + pieces.events;
    size_t wl = whole.log.len - whole.events, pl = pieces.log.len - pieces.events;
    if (we[0] == pe[0] && (wl != pl || memcmp(we, pe, wl) != 0) && !strstr(we, "policy-violation") &&
        !strstr(pe, "policy-violation"))
        abort(); /* same kind of end, different condition */
    psyc_buf_free(&whole.log);
    psyc_buf_free(&pieces.log);
    return 0;
}
