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

#include "helper_stanza.h"
#include "routing/xep33.h"

static void test_build(void **state)
{
    (void)state;
    xml_node *st = ts_parse("<presence from='alice@a.example/r' to='x@b.example'><show>away</show></presence>");
    const char *rcpt[] = {"bob@b.example", "carol@b.example"};
    xml_node *m = xep33_build(st, "b.example", rcpt, 2);
    assert_string_equal(ts_text(m),
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
    xml_node *st = ts_parse("<message from='alice@a.example/r' to='multicast.b.example'><body>hi</body>"
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
    assert_string_equal(ts_text(out[2]),
                        "<message from='alice@a.example/r' to='dave@b.example'><body>hi</body>"
                        "<addresses xmlns='http://jabber.org/protocol/address'>"
                        "<address type='to' jid='bob@b.example' delivered='true'/>"
                        "<address type='cc' jid='carol@b.example' delivered='true'/>"
                        "<address type='to' jid='eve@c.example' delivered='true'/>"
                        "<address type='replyto' jid='list@a.example'/></addresses></message>");
    for (size_t i = 0; i < n; i++)
        xml_node_free(out[i]);
    xml_node_free(st);
    st = ts_parse("<message from='a@a.example' to='b.example'><addresses "
               "xmlns='http://jabber.org/protocol/address'><address jid='x@b.example'/></addresses></message>");
    xep33_address a[2];
    size_t na;
    assert_int_equal(xep33_parse(st, a, 2, &na), -1); /* no type */
    assert_int_equal(xep33_expand(st, out, 8), 0);
    xml_node_free(st);
}

/* XEP-0033 §2: ejabberd's answers, as mod_multicast sends them. */
static void test_discovery(void **state)
{
    (void)state;
    xml_node *q = xep33_disco_query("gw.example", "b.example", "x33-1", 1);
    assert_string_equal(ts_text(q), "<iq type='get' from='gw.example' to='b.example' id='x33-1'>"
                                    "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
    xml_node_free(q);
    xep33_limits lim = {20, 20};
    xml_node *st = ts_parse("<iq type='result' from='b.example' to='gw.example' id='x33-1'>"
                         "<query xmlns='http://jabber.org/protocol/disco#info'>"
                         "<identity category='server' type='im'/>"
                         "<feature var='http://jabber.org/protocol/disco#info'/></query></iq>");
    assert_int_equal(xep33_disco_info(st, &lim), 0);
    xml_node_free(st);
    st = ts_parse("<iq type='result' from='multicast.b.example' to='gw.example' id='x33-2'>"
               "<query xmlns='http://jabber.org/protocol/disco#info'>"
               "<identity category='service' type='multicast' name='Multicast'/>"
               "<feature var='http://jabber.org/protocol/address'/>"
               "<x xmlns='jabber:x:data' type='result'>"
               "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/address</value></field>"
               "<field var='presence'><value>50</value></field>"
               "<field var='message'><value>infinite</value></field></x>"
               "<x xmlns='jabber:x:data' type='result'>"
               "<field var='FORM_TYPE' type='hidden'><value>urn:other</value></field>"
               "<field var='presence'><value>3</value></field></x></query></iq>");
    assert_int_equal(xep33_disco_info(st, &lim), 1);
    assert_int_equal(lim.presence, 50);
    assert_int_equal(lim.message, XEP33_MAX_ADDRESSES);
    xml_node_free(st);
    st = ts_parse("<iq type='error' from='b.example' to='gw.example' id='x33-1'>"
               "<query xmlns='http://jabber.org/protocol/disco#info'/><error type='cancel'/></iq>");
    assert_int_equal(xep33_disco_info(st, &lim), -1);
    xml_node_free(st);
    st = ts_parse("<iq type='result' from='b.example' to='gw.example' id='x33-3'>"
               "<query xmlns='http://jabber.org/protocol/disco#items'>"
               "<item jid='conference.b.example'/><item jid='b.example' node='announce'/>"
               "<item jid='bot@b.example'/><item jid='multicast.b.example' name='Multicast'/>"
               "</query></iq>");
    const char *items[4];
    assert_int_equal(xep33_disco_items(st, items, 4), 2);
    assert_string_equal(items[0], "conference.b.example");
    assert_string_equal(items[1], "multicast.b.example");
    assert_int_equal(xep33_disco_items(st, items, 1), 1);
    xml_node_free(st);
}

/* Recipients on gw.example are ours; anything else would be a relay. */
static int ours(void *ud, const char *jid)
{
    (void)ud;
    const char *at = strchr(jid, '@');
    return strcmp(at ? at + 1 : jid, "gw.example") == 0;
}

static void test_check(void **state)
{
    (void)state;
    static const struct {
        const char *stanza, *cond;
        size_t n;
    } cases[] = {
        {"<message from='a@b.example' to='gw.example'><addresses xmlns='http://jabber.org/protocol/address'>"
         "<address type='to' jid='x@gw.example'/><address type='bcc' jid='y@gw.example'/>"
         "<address type='to' jid='z@c.example' delivered='true'/><address type='noreply'/>"
         "</addresses></message>", NULL, 2},
        {"<message from='a@b.example' to='gw.example'><body/></message>", "bad-request", 0},
        {"<iq type='get' from='a@b.example' to='gw.example'><addresses xmlns='http://jabber.org/protocol/address'>"
         "<address type='to' jid='x@gw.example'/></addresses></iq>", "bad-request", 0},
        {"<presence from='a@b.example' to='gw.example'><addresses xmlns='http://jabber.org/protocol/address'>"
         "<address type='to' jid='x@c.example'/></addresses></presence>", "forbidden", 0},
        {"<presence from='a@b.example' to='gw.example'><addresses xmlns='http://jabber.org/protocol/address'>"
         "<address type='cc' uri='mailto:x@c.example'/></addresses></presence>", "jid-malformed", 0},
        {"<presence from='a@b.example' to='gw.example'><addresses xmlns='http://jabber.org/protocol/address'>"
         "<address jid='x@gw.example'/></addresses></presence>", "bad-request", 0},
        {"<presence from='a@b.example' to='gw.example'><addresses xmlns='http://jabber.org/protocol/address'>"
         "<address type='to' jid='x@gw.example' delivered='true'/></addresses></presence>", "bad-request", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        xml_node *st = ts_parse(cases[i].stanza);
        size_t n = 99;
        const char *cond = xep33_check(st, ours, NULL, &n);
        if (cases[i].cond)
            assert_string_equal(cond, cases[i].cond);
        else
            assert_null(cond);
        if (!cases[i].cond)
            assert_int_equal(n, cases[i].n);
        xml_node_free(st);
    }
    /* More than XEP33_MAX_ADDRESSES: not-acceptable (§8). */
    xml_node *st = ts_parse("<message from='a@b.example' to='gw.example'><body>x</body></message>");
    const char *many[XEP33_MAX_ADDRESSES];
    for (size_t i = 0; i < XEP33_MAX_ADDRESSES; i++)
        many[i] = "x@gw.example";
    xml_node *m = xep33_build(st, "gw.example", many, XEP33_MAX_ADDRESSES);
    size_t n;
    assert_null(xep33_check(m, ours, NULL, &n));
    assert_int_equal(n, XEP33_MAX_ADDRESSES);
    xml_node *extra = xml_elem_add(xml_child(m, "addresses", XEP33_NS), "address", NULL);
    assert_int_equal(xml_attr_set(extra, "type", "cc"), 0);
    assert_int_equal(xml_attr_set(extra, "jid", "y@gw.example"), 0);
    assert_string_equal(xep33_check(m, ours, NULL, &n), "not-acceptable");
    xml_node_free(m);
    xml_node_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_expand),
        cmocka_unit_test(test_discovery),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
