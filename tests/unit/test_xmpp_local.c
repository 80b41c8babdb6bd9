/* test_xmpp_local.c: what the gateway answers as an XMPP server
 * (routing/xmpp_local.c): echo, XEP-0199 ping, <service-unavailable/>,
 * and the error replies used for bounces (RFC 6120 §8.3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "routing/routing.h"

#define D "gw.test"

static xml_node *stanza(const char *name, const char *from, const char *to, const char *type,
                        const char *id)
{
    xml_node *m = xml_elem_new(name, NULL);
    assert_non_null(m);
    if (from)
        assert_int_equal(xml_attr_set(m, "from", from), 0);
    if (to)
        assert_int_equal(xml_attr_set(m, "to", to), 0);
    if (type)
        assert_int_equal(xml_attr_set(m, "type", type), 0);
    if (id)
        assert_int_equal(xml_attr_set(m, "id", id), 0);
    return m;
}

static void add_body(xml_node *m, const char *text)
{
    xml_node *b = xml_elem_add(m, "body", NULL);
    assert_non_null(b);
    assert_non_null(xml_text_add(b, text, strlen(text)));
}

static const char *error_cond(const xml_node *r, const char **etype)
{
    const xml_node *e = xml_child(r, "error", NULL);
    assert_non_null(e);
    *etype = xml_attr_get(e, "type");
    const xml_node *c = xml_child(e, NULL, ROUTING_NS_STANZAS);
    assert_non_null(c);
    return c->name;
}

static void test_echo_first(void **state)
{
    (void)state;
    xml_node *m = stanza("message", "alice@xmpp.test/r", "echo@" D, "chat", "m1");
    add_body(m, "hi");
    const char *why = "x";
    xml_node *r = routing_xmpp_local(m, D, &why);
    assert_non_null(r);
    assert_null(why);
    assert_string_equal(xml_attr_get(r, "to"), "alice@xmpp.test/r");
    assert_string_equal(xml_elem_text(xml_child(r, "body", NULL), NULL), "echo: hi");
    xml_node_free(r);
    xml_node_free(m);
}

static void test_ping_domain_and_jid(void **state)
{
    (void)state;
    const char *tos[] = {D, "someone@" D, "someone@" D "/res", "GW.TEST"};
    for (size_t i = 0; i < sizeof tos / sizeof *tos; i++) {
        xml_node *iq = stanza("iq", "alice@xmpp.test/r", tos[i], "get", "p1");
        assert_non_null(xml_elem_add(iq, "ping", ROUTING_NS_PING));
        xml_node *r = routing_xmpp_local(iq, D, NULL);
        assert_non_null(r);
        assert_true(xml_is(r, "iq", NULL));
        assert_string_equal(xml_attr_get(r, "type"), "result");
        assert_string_equal(xml_attr_get(r, "id"), "p1");
        assert_string_equal(xml_attr_get(r, "to"), "alice@xmpp.test/r");
        assert_string_equal(xml_attr_get(r, "from"), tos[i]);
        assert_null(r->children);
        xml_node_free(r);
        xml_node_free(iq);
    }
    /* Not ours, not a get, or two payloads: no pong. */
    xml_node *iq = stanza("iq", "alice@xmpp.test", "other.test", "get", "p2");
    assert_non_null(xml_elem_add(iq, "ping", ROUTING_NS_PING));
    assert_null(routing_ping_reply(iq, D));
    xml_node_free(iq);
    iq = stanza("iq", "alice@xmpp.test", D, "set", "p3");
    assert_non_null(xml_elem_add(iq, "ping", ROUTING_NS_PING));
    assert_null(routing_ping_reply(iq, D));
    xml_node_free(iq);
    iq = stanza("iq", "alice@xmpp.test", D, "get", "p4");
    assert_non_null(xml_elem_add(iq, "ping", ROUTING_NS_PING));
    assert_non_null(xml_elem_add(iq, "query", "jabber:iq:version"));
    assert_null(routing_ping_reply(iq, D));
    xml_node_free(iq);
}

static void test_unrouted_iq_and_message(void **state)
{
    (void)state;
    xml_node *iq = stanza("iq", "alice@xmpp.test/r", D, "get", "v1");
    assert_non_null(xml_elem_add(iq, "query", "jabber:iq:version"));
    xml_node *r = routing_xmpp_local(iq, D, NULL);
    assert_non_null(r);
    const char *etype = NULL;
    assert_string_equal(error_cond(r, &etype), "service-unavailable");
    assert_string_equal(etype, "cancel");
    assert_string_equal(xml_attr_get(r, "type"), "error");
    assert_string_equal(xml_attr_get(r, "id"), "v1");
    assert_string_equal(xml_attr_get(r, "to"), "alice@xmpp.test/r");
    assert_string_equal(xml_attr_get(r, "from"), D);
    assert_null(xml_child(r, "query", NULL)); /* an iq error carries no payload */
    xml_node_free(r);
    xml_node_free(iq);

    xml_node *m = stanza("message", "alice@xmpp.test/r", "nobody@" D, "chat", "m2");
    add_body(m, "anyone?");
    r = routing_xmpp_local(m, D, NULL);
    assert_non_null(r);
    assert_string_equal(error_cond(r, &etype), "service-unavailable");
    assert_non_null(xml_child(r, "body", NULL)); /* a message keeps its payload */
    xml_node_free(r);
    xml_node_free(m);
}

static void test_dropped(void **state)
{
    (void)state;
    const char *why = NULL;
    /* presence: silently ignored */
    xml_node *p = stanza("presence", "alice@xmpp.test/r", "nobody@" D, NULL, NULL);
    assert_null(routing_xmpp_local(p, D, &why));
    assert_non_null(why);
    xml_node_free(p);
    /* errors are never answered (RFC 6120 §8.3.1) */
    xml_node *e = stanza("message", "alice@xmpp.test/r", "nobody@" D, "error", "x");
    assert_null(routing_xmpp_local(e, D, &why));
    assert_null(routing_error_reply(e, "service-unavailable"));
    xml_node_free(e);
    e = stanza("iq", "alice@xmpp.test/r", D, "error", "x");
    assert_null(routing_xmpp_local(e, D, &why));
    xml_node_free(e);
    /* iq results: our own pings' answers and the like */
    xml_node *res = stanza("iq", "xmpp.test", D, "result", "psycgate-ping-1");
    assert_null(routing_xmpp_local(res, D, &why));
    assert_null(routing_error_reply(res, "service-unavailable"));
    xml_node_free(res);
    /* a chat state to the echo JID: the JID exists, nothing to say */
    xml_node *cs = stanza("message", "alice@xmpp.test/r", "echo@" D, "chat", NULL);
    assert_non_null(xml_elem_add(cs, "composing", "http://jabber.org/protocol/chatstates"));
    assert_null(routing_xmpp_local(cs, D, &why));
    xml_node_free(cs);
    /* no 'from': nobody to answer */
    xml_node *nf = stanza("iq", NULL, D, "get", "x");
    assert_null(routing_xmpp_local(nf, D, &why));
    xml_node_free(nf);
}

static void test_bounce_types(void **state)
{
    (void)state;
    xml_node *m = stanza("message", "echo@" D, "alice@xmpp.test/r", "chat", "b1");
    add_body(m, "echo: x");
    const char *etype = NULL;
    xml_node *r = routing_error_reply(m, "remote-server-timeout");
    assert_string_equal(error_cond(r, &etype), "remote-server-timeout");
    assert_string_equal(etype, "wait");
    assert_string_equal(xml_attr_get(r, "to"), "echo@" D);
    assert_string_equal(xml_attr_get(r, "from"), "alice@xmpp.test/r");
    xml_node_free(r);
    r = routing_error_reply(m, "remote-server-not-found");
    assert_string_equal(error_cond(r, &etype), "remote-server-not-found");
    assert_string_equal(etype, "cancel");
    xml_node_free(r);
    xml_node_free(m);
    /* the error itself never bounces */
    xml_node *e = stanza("presence", "a@" D, "b@xmpp.test", "error", NULL);
    assert_null(routing_error_reply(e, "remote-server-not-found"));
    xml_node_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_first),
        cmocka_unit_test(test_ping_domain_and_jid),
        cmocka_unit_test(test_unrouted_iq_and_message),
        cmocka_unit_test(test_dropped),
        cmocka_unit_test(test_bounce_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
