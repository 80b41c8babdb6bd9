/*
 * test_xep33.c: XEP-0033 address lists (routing/xep33.h): one stanza per
 * server with the recipients, and the copies a multicast service makes
 * (bcc removed, addresses marked delivered, 'from' kept).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "routing/xep33.h"

static void keep(void *ud, xml_node *st)
{
    *(xml_node **)ud = st;
}

static xml_node *parse(const char *text)
{
    static const char open[] = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                               "xmlns='jabber:server'>";
    xml_node *st = NULL;
    xml_stream_handler h = {.stanza = keep};
    xml_stream *s = xml_stream_new(NULL, &h, &st);
    assert_int_equal(xml_stream_feed(s, open, sizeof open - 1, NULL), XML_STREAM_OK);
    assert_int_equal(xml_stream_feed(s, text, strlen(text), NULL), XML_STREAM_OK);
    xml_stream_free(s);
    assert_non_null(st);
    return st;
}

static const char *text_of(const xml_node *n)
{
    static char buf[2048];
    psyc_buf b;
    psyc_buf_init(&b);
    xml_nsmap map;
    xml_nsmap_init(&map, XML_NS_SERVER);
    assert_int_equal(xml_serialize(&b, n, &map), 0);
    snprintf(buf, sizeof buf, "%.*s", (int)b.len, b.data);
    psyc_buf_free(&b);
    return buf;
}

static void test_build(void **state)
{
    (void)state;
    xml_node *st = parse("<presence from='alice@a.example/r' to='x@b.example'><show>away</show></presence>");
    const char *rcpt[] = {"bob@b.example", "carol@b.example"};
    xml_node *m = xep33_build(st, "b.example", rcpt, 2);
    assert_string_equal(text_of(m),
                        "<presence from='alice@a.example/r' to='b.example'><show>away</show>"
                        "<addresses xmlns='http://jabber.org/protocol/address'>"
                        "<address type='to' jid='bob@b.example'/>"
                        "<address type='to' jid='carol@b.example'/></addresses></presence>");
    xep33_address a[4];
    size_t n;
    assert_int_equal(xep33_parse(m, a, 4, &n), 1);
    assert_int_equal(n, 2);
    assert_string_equal(a[1].jid, "carol@b.example");
    assert_int_equal(xep33_parse(st, a, 4, &n), 0);
    assert_int_equal(xep33_parse(m, a, 1, &n), -1); /* more than max */
    assert_null(xep33_build(st, "b.example", rcpt, 0));
    xml_node_free(m);
    xml_node_free(st);
}

static void test_expand(void **state)
{
    (void)state;
    xml_node *st = parse("<message from='alice@a.example/r' to='multicast.b.example'><body>hi</body>"
                         "<addresses xmlns='http://jabber.org/protocol/address'>"
                         "<address type='to' jid='bob@b.example'/>"
                         "<address type='cc' jid='carol@b.example'/>"
                         "<address type='bcc' jid='dave@b.example'/>"
                         "<address type='to' jid='eve@c.example' delivered='true'/>"
                         "<address type='replyto' jid='list@a.example'/>"
                         "</addresses></message>");
    xml_node *out[8];
    size_t n = xep33_expand(st, out, 8);
    assert_int_equal(n, 3);
    assert_string_equal(xml_attr_get(out[0], "to"), "bob@b.example");
    assert_string_equal(xml_attr_get(out[2], "to"), "dave@b.example");
    /* Every copy: from unchanged, no bcc, targets marked delivered. */
    assert_string_equal(text_of(out[2]),
                        "<message from='alice@a.example/r' to='dave@b.example'><body>hi</body>"
                        "<addresses xmlns='http://jabber.org/protocol/address'>"
                        "<address type='to' jid='bob@b.example' delivered='true'/>"
                        "<address type='cc' jid='carol@b.example' delivered='true'/>"
                        "<address type='to' jid='eve@c.example' delivered='true'/>"
                        "<address type='replyto' jid='list@a.example'/></addresses></message>");
    for (size_t i = 0; i < n; i++)
        xml_node_free(out[i]);
    xml_node_free(st);
    st = parse("<message from='a@a.example' to='b.example'><addresses "
               "xmlns='http://jabber.org/protocol/address'><address jid='x@b.example'/></addresses></message>");
    xep33_address a[2];
    size_t na;
    assert_int_equal(xep33_parse(st, a, 2, &na), -1); /* no type */
    assert_int_equal(xep33_expand(st, out, 8), 0);
    xml_node_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_expand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
