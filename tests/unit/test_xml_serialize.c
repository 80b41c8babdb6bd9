/*
 * test_xml_serialize.c: the stanza tree API and the serializer
 * (xmpp/xml_tree.c, xmpp/serialize.c, xmpp/xml_cond.c).
 *  - escaping in text and attributes, characters XML cannot carry dropped;
 *  - namespaces relative to the stream (content namespace, prefixes the
 *    header declares, one xmlns where the namespace changes, xmlns='');
 *  - stream header / close / error writers, condition names;
 *  - parse(serialize(tree)) == tree on generated stanzas.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmpp/xml.h"

static psyc_buf out;

static int setup(void **state)
{
    (void)state;
    psyc_buf_init(&out);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    psyc_buf_free(&out);
    return 0;
}

/* Serializes n with map into a fresh string. */
static const char *ser(const xml_node *n, const xml_nsmap *map)
{
    psyc_buf_reset(&out);
    assert_int_equal(xml_serialize(&out, n, map), 0);
    psyc_buf_putc(&out, '\0');
    return out.data;
}

static xml_nsmap server_map(void)
{
    xml_nsmap m;
    xml_nsmap_init(&m, XML_NS_SERVER);
    return m;
}

/* ---- tree API ---------------------------------------------------------------- */

static void test_build_and_read(void **state)
{
    (void)state;
    xml_node *m = xml_elem_new("message", XML_NS_SERVER);
    assert_non_null(m);
    assert_int_equal(xml_attr_set(m, "to", "b@x"), 0);
    assert_int_equal(xml_attr_set(m, "from", "a@y"), 0);
    assert_int_equal(xml_attr_set(m, "to", "c@x"), 0); /* replaced in place */
    assert_int_equal(m->nattrs, 2);
    assert_string_equal(m->attrs[0].name, "to");
    assert_string_equal(xml_attr_get(m, "to"), "c@x");
    assert_int_equal(xml_attr_set_ns(m, "lang", XML_NS_XML, "en", 2), 0);
    assert_null(xml_attr_get(m, "lang"));
    assert_string_equal(xml_attr_find(m, "lang", XML_NS_XML)->value, "en");
    assert_string_equal(xml_attr_find(m, "lang", NULL)->value, "en");
    for (int i = 0; i < 20; i++) { /* grows the attribute array */
        char name[8];
        snprintf(name, sizeof name, "a%d", i);
        assert_int_equal(xml_attr_set(m, name, name), 0);
    }
    assert_int_equal(m->nattrs, 23);
    assert_string_equal(xml_attr_get(m, "a19"), "a19");
    assert_int_equal(xml_attr_remove(m, "a0", NULL), 1);
    assert_int_equal(xml_attr_remove(m, "a0", NULL), 0);
    assert_int_equal(m->nattrs, 22);
    assert_string_equal(m->attrs[3].name, "a1");

    xml_node *body = xml_elem_add(m, "body", NULL);
    assert_non_null(body);
    assert_string_equal(body->ns, XML_NS_SERVER); /* inherited */
    assert_non_null(xml_text_add(body, "hel", 3));
    assert_non_null(xml_text_add(body, "lo", 2)); /* merged */
    assert_non_null(body->children);
    assert_null(body->children->next);
    size_t len;
    assert_string_equal(xml_elem_text(body, &len), "hello");
    assert_int_equal(len, 5);
    xml_node *x = xml_elem_add(m, "x", "urn:x");
    xml_node *y = xml_elem_add(x, "y", NULL);
    assert_string_equal(y->ns, "urn:x");
    xml_text_add(x, "a", 1);
    xml_elem_add(x, "z", NULL);
    xml_text_add(x, "b", 1);
    assert_string_equal(xml_elem_text(x, &len), "ab"); /* joined */
    assert_int_equal(len, 2);
    assert_string_equal(xml_elem_text(y, &len), "");
    assert_int_equal(len, 0);

    assert_ptr_equal(xml_child(m, "body", XML_NS_SERVER), body);
    assert_ptr_equal(xml_child(m, "body", NULL), body);
    assert_null(xml_child(m, "body", "urn:other"));
    assert_ptr_equal(xml_child(m, NULL, "urn:x"), x);
    assert_ptr_equal(xml_next(body, NULL, NULL), x);
    assert_null(xml_next(x, NULL, NULL));
    assert_true(xml_is(m, "message", NULL));
    assert_false(xml_is(m, "message", XML_NS_CLIENT));
    assert_int_equal(xml_node_count(m), 8);

    /* Copies are equal and independent. */
    xml_node *c = xml_node_copy(m);
    assert_true(xml_node_equal(m, c, 0));
    xml_attr_set(c, "to", "other");
    assert_false(xml_node_equal(m, c, 0));
    xml_node *d = xml_elem_new("wrapper", "urn:w");
    assert_non_null(xml_node_add_copy(d, m));
    assert_true(xml_node_equal(d->children, m, 0));
    xml_node_free(m);
    assert_string_equal(xml_attr_get(d->children, "to"), "c@x"); /* survives the original */

    /* Unlink: gone from the tree; freeing a non-root is a no-op. */
    xml_node *inner = d->children;
    xml_node_unlink(inner);
    assert_null(d->children);
    xml_node_free(inner);
    assert_int_equal(xml_node_count(d), 1);
    xml_node_free(d);
    xml_node_free(c);
    xml_node_free(NULL);
}

static void test_equal_content_ns(void **state)
{
    (void)state;
    xml_node *a = xml_elem_new("message", XML_NS_CLIENT);
    xml_node *b = xml_elem_new("message", XML_NS_SERVER);
    xml_node *fa = xml_elem_add(a, "forwarded", "urn:xmpp:forward:0");
    xml_node *fb = xml_elem_add(b, "forwarded", "urn:xmpp:forward:0");
    xml_elem_add(xml_elem_add(a, "body", NULL), "b", NULL);
    xml_elem_add(xml_elem_add(b, "body", NULL), "b", NULL);
    assert_false(xml_node_equal(a, b, 0));
    assert_true(xml_node_equal(a, b, XML_EQ_CONTENT_NS));
    /* Below a foreign element, jabber:client is data, not the stream's. */
    xml_elem_add(fa, "message", XML_NS_CLIENT);
    xml_elem_add(fb, "message", XML_NS_SERVER);
    assert_false(xml_node_equal(a, b, XML_EQ_CONTENT_NS));
    xml_node_free(a);
    xml_node_free(b);
}

/* ---- escaping ------------------------------------------------------------------ */

static void test_escape_text(void **state)
{
    (void)state;
    xml_node *b = xml_elem_new("body", NULL);
    static const char t[] = "a<b>c&d]]>e\"f'g\th\ni\rj";
    xml_text_add(b, t, sizeof t - 1);
    assert_string_equal(ser(b, NULL), "<body>a&lt;b&gt;c&amp;d]]&gt;e\"f'g\th\ni&#13;j</body>");
    xml_node_free(b);
}

static void test_escape_attr(void **state)
{
    (void)state;
    xml_node *m = xml_elem_new("m", NULL);
    static const char v[] = "<&>\"'\t\n\r";
    xml_attr_set_ns(m, "a", NULL, v, sizeof v - 1);
    assert_string_equal(ser(m, NULL), "<m a='&lt;&amp;&gt;&quot;&apos;&#9;&#10;&#13;'/>");
    xml_node_free(m);
}

static void test_invalid_chars_dropped(void **state)
{
    (void)state;
    static const char bad[] = "a\x01"
                              "b\x1f"
                              "c\x7f"       /* DEL is an XML Char: kept */
                              "d\xff"
                              "e\xc0\x80"   /* overlong */
                              "f\xed\xa0\x80" /* surrogate */
                              "g\xef\xbf\xbe" /* U+FFFE */
                              "h\xef\xbf\xbf" /* U+FFFF */
                              "i\xf4\x90\x80\x80" /* > U+10FFFF */
                              "j\xe2\x82" /* truncated */
                              "k\xc3\xa9\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xef\xbf\xbd" /* valid: kept */
                              "\0z";
    xml_node *b = xml_elem_new("b", NULL);
    xml_text_add(b, bad, sizeof bad - 1);
    xml_attr_set_ns(b, "v", NULL, bad, sizeof bad - 1);
    const char *s = ser(b, NULL);
    static const char clean[] = "abc\x7f"
                                "defghij\x82k\xc3\xa9\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xef\xbf\xbdz";
    (void)clean;
    /* Every byte sequence that is left must be a valid XML Char: parse it. */
    psyc_buf doc;
    psyc_buf_init(&doc);
    psyc_buf_puts(&doc, "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:server'>");
    psyc_buf_puts(&doc, s);
    xml_stream *st = xml_stream_new(NULL, NULL, NULL);
    assert_int_equal(xml_stream_feed(st, doc.data, doc.len, NULL), XML_STREAM_OK);
    xml_stream_free(st);
    psyc_buf_free(&doc);
    assert_non_null(strstr(s, "abc\x7f" "def"));
    assert_non_null(strstr(s, "k\xc3\xa9\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xef\xbf\xbdz"));
    assert_null(strchr(s, '\x01'));
    assert_null(strchr(s, '\xff'));
    xml_node_free(b);
}

static void test_invalid_names_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "a b", "a<b", "1x", "-x", "a:b", "a'b", "a\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        xml_node *n = xml_elem_new(bad[i], NULL);
        psyc_buf_reset(&out);
        psyc_buf_puts(&out, "keep");
        assert_int_equal(xml_serialize(&out, n, NULL), -2);
        assert_int_equal(out.len, 4); /* unchanged */
        xml_node_free(n);
        n = xml_elem_new("ok", NULL);
        xml_attr_set(n, bad[i], "v");
        assert_int_equal(xml_serialize(&out, n, NULL), -2);
        assert_int_equal(out.len, 4);
        xml_node_free(n);
    }
    xml_node *n = xml_elem_new("x", NULL);
    xml_attr_set(n, "xmlns", "urn:sneaky"); /* would be a declaration */
    assert_int_equal(xml_serialize(&out, n, NULL), -2);
    xml_node_free(n);
    n = xml_elem_new("x", NULL);
    xml_attr_set_ns(n, "p", "http://www.w3.org/2000/xmlns/", "u", 1);
    assert_int_equal(xml_serialize(&out, n, NULL), -2);
    xml_node_free(n);
    n = xml_elem_new("\xc3\xa9l\xc3\xa9ment", NULL); /* non-ASCII names are fine */
    assert_string_equal(ser(n, NULL), "<\xc3\xa9l\xc3\xa9ment/>");
    xml_node_free(n);
}

/* ---- namespaces ---------------------------------------------------------------- */

static void test_ns_content(void **state)
{
    (void)state;
    xml_nsmap sm = server_map();
    xml_nsmap cm;
    xml_nsmap_init(&cm, XML_NS_COMPONENT);
    xml_node *m = xml_elem_new("message", XML_NS_CLIENT);
    xml_attr_set(m, "to", "b@x");
    xml_node *body = xml_elem_add(m, "body", NULL);
    xml_text_add(body, "hi", 2);
    xml_elem_add(m, "active", "http://jabber.org/protocol/chatstates");
    xml_node *c = xml_elem_add(m, "c", "urn:c");
    xml_elem_add(c, "d", NULL);
    xml_elem_add(c, "e", "urn:e");
    /* Any content namespace becomes the stream's; one xmlns per change. */
    const char *want = "<message to='b@x'><body>hi</body>"
                       "<active xmlns='http://jabber.org/protocol/chatstates'/>"
                       "<c xmlns='urn:c'><d/><e xmlns='urn:e'/></c></message>";
    assert_string_equal(ser(m, &sm), want);
    assert_string_equal(ser(m, &cm), want);
    /* Standalone: the root says what it is. */
    assert_string_equal(ser(m, NULL),
                        "<message xmlns='jabber:client' to='b@x'><body>hi</body>"
                        "<active xmlns='http://jabber.org/protocol/chatstates'/>"
                        "<c xmlns='urn:c'><d/><e xmlns='urn:e'/></c></message>");
    xml_node_free(m);

    /* NULL namespace: the content namespace on the content chain ... */
    m = xml_elem_new("iq", NULL);
    xml_elem_add(m, "query", "urn:q");
    assert_string_equal(ser(m, &sm), "<iq><query xmlns='urn:q'/></iq>");
    /* ... and no namespace below a foreign element. */
    xml_node *q = m->children;
    xml_node *none = xml_elem_add(q, "none", "urn:tmp");
    none->ns = NULL;
    assert_string_equal(ser(m, &sm), "<iq><query xmlns='urn:q'><none xmlns=''/></query></iq>");
    xml_node_free(m);

    /* A forwarded jabber:client message keeps its namespace (XEP-0297). */
    m = xml_elem_new("message", XML_NS_SERVER);
    xml_node *f = xml_elem_add(m, "forwarded", "urn:xmpp:forward:0");
    xml_node *inner = xml_elem_add(f, "message", XML_NS_CLIENT);
    xml_elem_add(inner, "body", NULL);
    assert_string_equal(ser(m, &sm), "<message><forwarded xmlns='urn:xmpp:forward:0'>"
                                     "<message xmlns='jabber:client'><body/></message></forwarded></message>");
    xml_node_free(m);
}

static void test_ns_prefixes(void **state)
{
    (void)state;
    xml_nsmap sm = server_map();
    xml_nsmap cm;
    xml_nsmap_init(&cm, XML_NS_COMPONENT);
    /* db:result on jabber:server streams (XEP-0220 §2.1). */
    xml_node *r = xml_elem_new("result", XML_NS_DIALBACK);
    xml_attr_set(r, "from", "a");
    xml_attr_set(r, "to", "b");
    xml_text_add(r, "key", 3);
    assert_string_equal(ser(r, &sm), "<db:result from='a' to='b'>key</db:result>");
    /* No db prefix on a component stream: an xmlns instead. */
    assert_string_equal(ser(r, &cm), "<result xmlns='jabber:server:dialback' from='a' to='b'>key</result>");
    xml_node_free(r);

    /* stream:features / stream:error, children in their own namespaces. */
    xml_node *f = xml_elem_new("features", XML_NS_STREAMS);
    xml_elem_add(f, "starttls", XML_NS_TLS);
    xml_node *d = xml_elem_add(f, "dialback", "urn:xmpp:features:dialback");
    xml_elem_add(d, "errors", NULL);
    assert_string_equal(ser(f, &sm), "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
                                     "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
                                     "</stream:features>");
    xml_node_free(f);

    /* Qualified attributes: xml:, a map prefix, or a local declaration
     * (the wire prefix when it is free, else a generated one). */
    xml_node *m = xml_elem_new("message", XML_NS_SERVER);
    xml_attr_set_ns(m, "lang", XML_NS_XML, "en", 2);
    xml_attr_set_ns(m, "k", XML_NS_DIALBACK, "1", 1);
    xml_attr_set_ns(m, "a", "urn:a", "2", 1);
    xml_attr_set_ns(m, "b", "urn:b", "3", 1);
    m->attrs[2].prefix = "pa";
    m->attrs[3].prefix = "db"; /* taken by the stream: not reused */
    assert_string_equal(ser(m, &sm), "<message xmlns:pa='urn:a' xmlns:ns1='urn:b' xml:lang='en' db:k='1' "
                                     "pa:a='2' ns1:b='3'/>");
    xml_node_free(m);

    /* nsmap rules. */
    xml_nsmap t;
    xml_nsmap_init(&t, XML_NS_SERVER);
    assert_int_equal(t.n, 2);
    assert_int_equal(xml_nsmap_add(&t, "db", "urn:x"), -1);      /* prefix taken */
    assert_int_equal(xml_nsmap_add(&t, "x", XML_NS_DIALBACK), -1); /* uri has one */
    assert_int_equal(xml_nsmap_add(&t, "xmlfoo", "urn:x"), -1);  /* reserved */
    assert_int_equal(xml_nsmap_add(&t, "c", XML_NS_CLIENT), -1); /* content ns */
    assert_int_equal(xml_nsmap_add(&t, "x", "urn:x"), 0);
}

/* ---- stream framing ---------------------------------------------------------------- */

static void test_stream_writers(void **state)
{
    (void)state;
    xml_nsmap sm = server_map();
    xml_stream_attrs a = {.from = "gw.test", .to = "xmpp.test", .id = "i'd", .version = "1.0", .lang = "en"};
    psyc_buf_reset(&out);
    assert_int_equal(xml_write_stream_open(&out, &sm, &a), 0);
    psyc_buf_putc(&out, '\0');
    assert_string_equal(out.data, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                                  "xmlns:stream='http://etherx.jabber.org/streams' "
                                  "xmlns:db='jabber:server:dialback' from='gw.test' to='xmpp.test' "
                                  "id='i&apos;d' version='1.0' xml:lang='en'>");
    xml_nsmap cm;
    xml_nsmap_init(&cm, XML_NS_COMPONENT);
    xml_stream_attrs ca = {.to = "psyc.example.org"};
    psyc_buf_reset(&out);
    assert_int_equal(xml_write_stream_open(&out, &cm, &ca), 0);
    psyc_buf_putc(&out, '\0');
    assert_string_equal(out.data, "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                                  "xmlns:stream='http://etherx.jabber.org/streams' to='psyc.example.org'>");
    psyc_buf_reset(&out);
    assert_int_equal(xml_write_stream_close(&out), 0);
    psyc_buf_putc(&out, '\0');
    assert_string_equal(out.data, "</stream:stream>");

    psyc_buf_reset(&out);
    assert_int_equal(xml_write_stream_error(&out, XML_COND_HOST_UNKNOWN, "no <such> host"), 0);
    psyc_buf_putc(&out, '\0');
    assert_string_equal(out.data, "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                                  "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no &lt;such&gt; host</text>"
                                  "</stream:error>");
    psyc_buf_reset(&out);
    assert_int_equal(xml_write_stream_error(&out, XML_COND_NOT_WELL_FORMED, NULL), 0);
    psyc_buf_putc(&out, '\0');
    assert_string_equal(out.data,
                        "<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");

    /* see-other-host carries the host as content (RFC 6120 §4.9.3.19). */
    xml_node *e = xml_stream_error_new(XML_COND_SEE_OTHER_HOST, NULL);
    xml_text_add(e->children, "other.example:5269", 18);
    assert_string_equal(ser(e, &sm), "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
                                     "other.example:5269</see-other-host></stream:error>");
    xml_node_free(e);

    /* The whole round trip through the parser. */
    psyc_buf doc;
    psyc_buf_init(&doc);
    xml_write_stream_open(&doc, &sm, &a);
    xml_write_stream_error(&doc, XML_COND_POLICY_VIOLATION, "too big");
    xml_write_stream_close(&doc);
    xml_stream *s = xml_stream_new(NULL, NULL, NULL);
    assert_int_equal(xml_stream_feed(s, doc.data, doc.len, NULL), XML_STREAM_CLOSED);
    const xml_stream_header *h = xml_stream_get_header(s);
    assert_string_equal(h->id, "i'd");
    assert_string_equal(h->lang, "en");
    xml_stream_free(s);
    psyc_buf_free(&doc);
}

static void test_conditions(void **state)
{
    (void)state;
    for (int c = 1; c < XML_COND_COUNT; c++) {
        const char *name = xml_cond_name((xml_cond)c);
        assert_true(strlen(name) > 0);
        assert_int_equal(xml_cond_from_name(name), c);
    }
    assert_string_equal(xml_cond_name(XML_COND_NOT_WELL_FORMED), "not-well-formed");
    assert_string_equal(xml_cond_name(XML_COND_INVALID_NAMESPACE), "invalid-namespace");
    assert_string_equal(xml_cond_name(XML_COND_NONE), "");
    assert_int_equal(xml_cond_from_name("xml-not-well-formed"), XML_COND_NOT_WELL_FORMED);
    assert_int_equal(xml_cond_from_name("bogus"), XML_COND_NONE);
    assert_int_equal(xml_cond_from_name(NULL), XML_COND_NONE);

    /* Reading received errors. */
    xml_node *e = xml_stream_error_new(XML_COND_CONFLICT, "replaced");
    xml_elem_add(e, "app", "urn:app"); /* application condition: ignored */
    const char *text;
    assert_int_equal(xml_stream_error_parse(e, &text), XML_COND_CONFLICT);
    assert_string_equal(text, "replaced");
    xml_node_free(e);
    e = xml_elem_new("error", XML_NS_STREAMS);
    xml_elem_add(e, "made-up", XML_NS_STREAM_ERRORS);
    assert_int_equal(xml_stream_error_parse(e, &text), XML_COND_UNDEFINED_CONDITION);
    assert_null(text);
    xml_node_free(e);
}

/* ---- property: parse(serialize(tree)) == tree --------------------------------------- */

typedef struct one {
    xml_node *st;
    size_t n;
    int closed;
} one;

static void keep_one(void *ud, xml_node *st)
{
    one *o = ud;
    if (o->n++ == 0)
        o->st = st;
    else
        xml_node_free(st);
}

static xml_node *reparse(const char *content_ns, const char *bytes, size_t len)
{
    psyc_buf doc;
    psyc_buf_init(&doc);
    psyc_buf_puts(&doc, "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                        "xmlns:db='jabber:server:dialback'");
    if (content_ns) {
        psyc_buf_puts(&doc, " xmlns='");
        psyc_buf_puts(&doc, content_ns);
        psyc_buf_puts(&doc, "'");
    }
    psyc_buf_puts(&doc, ">");
    psyc_buf_append(&doc, bytes, len);
    one o = {0};
    xml_stream_handler h = {.stanza = keep_one};
    xml_stream *s = xml_stream_new(NULL, &h, &o);
    xml_status st = xml_stream_feed(s, doc.data, doc.len, NULL);
    const char *why = "";
    if (st != XML_STREAM_OK)
        fail_msg("reparse: %s %s in %.*s", xml_cond_name(xml_stream_error(s, &why)), why, (int)doc.len, doc.data);
    assert_int_equal(o.n, 1);
    xml_stream_free(s);
    psyc_buf_free(&doc);
    return o.st;
}

static void test_roundtrip_property(void **state)
{
    (void)state;
    uint32_t rng = 4242;
    static const char *const streams[] = {XML_NS_SERVER, XML_NS_CLIENT, XML_NS_COMPONENT};
    for (int i = 0; i < 3000; i++) {
        xml_node *t = xml_gen_stanza(&rng);
        assert_non_null(t);
        const char *cns = streams[i % 3];
        xml_nsmap map;
        xml_nsmap_init(&map, cns);
        psyc_buf_reset(&out);
        assert_int_equal(xml_serialize(&out, t, &map), 0);
        xml_node *back = reparse(cns, out.data, out.len);
        if (!xml_node_equal(t, back, XML_EQ_CONTENT_NS))
            fail_msg("round trip %d differs: %.*s", i, (int)out.len, out.data);
        /* The serialization is a fixpoint. */
        psyc_buf again;
        psyc_buf_init(&again);
        assert_int_equal(xml_serialize(&again, back, &map), 0);
        assert_int_equal(again.len, out.len);
        assert_memory_equal(again.data, out.data, out.len);
        psyc_buf_free(&again);
        xml_node_free(back);

        /* Standalone too: exact namespaces, inside a stream without a
         * default namespace. */
        psyc_buf_reset(&out);
        assert_int_equal(xml_serialize(&out, t, NULL), 0);
        back = reparse(NULL, out.data, out.len);
        assert_true(xml_node_equal(t, back, 0));
        xml_node_free(back);

        /* Copies compare equal. */
        xml_node *c = xml_node_copy(t);
        assert_true(xml_node_equal(t, c, 0));
        xml_node_free(c);
        xml_node_free(t);
    }
}

static void test_generated_stream_parses(void **state)
{
    (void)state;
    psyc_buf g;
    psyc_buf_init(&g);
    assert_int_equal(xml_gen_stream(&g, 2000, 3, XML_NS_SERVER), 0);
    one o = {0};
    xml_stream_handler h = {.stanza = keep_one};
    xml_stream *s = xml_stream_new(NULL, &h, &o);
    assert_int_equal(xml_stream_feed(s, g.data, g.len, NULL), XML_STREAM_OK);
    assert_int_equal(o.n, 2000);
    xml_node_free(o.st);
    xml_stream_free(s);
    psyc_buf_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_read),
        cmocka_unit_test(test_equal_content_ns),
        cmocka_unit_test(test_escape_text),
        cmocka_unit_test(test_escape_attr),
        cmocka_unit_test(test_invalid_chars_dropped),
        cmocka_unit_test(test_invalid_names_refused),
        cmocka_unit_test(test_ns_content),
        cmocka_unit_test(test_ns_prefixes),
        cmocka_unit_test(test_stream_writers),
        cmocka_unit_test(test_conditions),
        cmocka_unit_test(test_roundtrip_property),
        cmocka_unit_test(test_generated_stream_parses),
    };
    return cmocka_run_group_tests_name("xml_serialize", tests, setup, teardown);
}
