/* test_echo.c: the echo service of the core boundary (routing/echo.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "routing/routing.h"

#define NS_COMP "jabber:component:accept"

/* <message from to [type] [id]><body>body</body></message>; NULL attrs and
 * body left out. */
static xml_node *msg(const char *from, const char *to, const char *type, const char *id,
                     const char *body)
{
    xml_node *m = xml_elem_new("message", NS_COMP);
    assert_non_null(m);
    if (from)
        assert_int_equal(xml_attr_set(m, "from", from), 0);
    if (to)
        assert_int_equal(xml_attr_set(m, "to", to), 0);
    if (type)
        assert_int_equal(xml_attr_set(m, "type", type), 0);
    if (id)
        assert_int_equal(xml_attr_set(m, "id", id), 0);
    if (body) {
        xml_node *b = xml_elem_add(m, "body", NULL);
        assert_non_null(b);
        assert_non_null(xml_text_add(b, body, strlen(body)));
    }
    return m;
}

static void expect_no_reply(xml_node *m, const char *domain)
{
    xml_node *r = routing_echo(m, domain);
    assert_null(r);
    xml_node_free(m);
}

static void test_echo_answers(void **state)
{
    (void)state;
    xml_node *m = msg("alice@xmpp.test/phone", "echo@psyc.xmpp.test", "chat", "m1", "hello <&>");
    xml_node *r = routing_echo(m, "psyc.xmpp.test");
    assert_non_null(r);
    assert_true(xml_is(r, "message", NULL));
    assert_null(r->ns); /* the content namespace of whatever stream sends it */
    assert_string_equal(xml_attr_get(r, "from"), "echo@psyc.xmpp.test");
    assert_string_equal(xml_attr_get(r, "to"), "alice@xmpp.test/phone");
    assert_string_equal(xml_attr_get(r, "type"), "chat");
    assert_string_equal(xml_attr_get(r, "id"), "m1");
    size_t len = 0;
    const char *t = xml_elem_text(xml_child(r, "body", NULL), &len);
    assert_string_equal(t, "echo: hello <&>");
    assert_int_equal(len, strlen("echo: hello <&>"));
    xml_node_free(r);
    xml_node_free(m);

    /* No type, no id: none in the reply; a resource and upper case in the
     * address still reach the service (JIDs are compared normalised). */
    m = msg("bob@example.org", "Echo@PSYC.xmpp.test/x", NULL, NULL, "hi");
    r = routing_echo(m, "psyc.xmpp.test");
    assert_non_null(r);
    assert_null(xml_attr_get(r, "type"));
    assert_null(xml_attr_get(r, "id"));
    assert_string_equal(xml_attr_get(r, "from"), "Echo@PSYC.xmpp.test/x");
    assert_string_equal(xml_elem_text(xml_child(r, "body", NULL), NULL), "echo: hi");
    xml_node_free(r);
    xml_node_free(m);

    m = msg("bob@example.org", "echo@psyc.xmpp.test", "headline", NULL, "news");
    r = routing_echo(m, "psyc.xmpp.test");
    assert_non_null(r);
    xml_node_free(r);
    xml_node_free(m);
}

static void test_echo_ignores(void **state)
{
    (void)state;
    const char *d = "psyc.xmpp.test";
    /* Someone else, another domain, no local part. */
    expect_no_reply(msg("a@x.test", "bob@psyc.xmpp.test", "chat", NULL, "x"), d);
    expect_no_reply(msg("a@x.test", "echo@other.test", "chat", NULL, "x"), d);
    expect_no_reply(msg("a@x.test", "psyc.xmpp.test", "chat", NULL, "x"), d);
    /* Errors and groupchat: never answered (loops). */
    expect_no_reply(msg("a@x.test", "echo@psyc.xmpp.test", "error", NULL, "x"), d);
    expect_no_reply(msg("a@x.test", "echo@psyc.xmpp.test", "groupchat", NULL, "x"), d);
    expect_no_reply(msg("a@x.test", "echo@psyc.xmpp.test", "bogus", NULL, "x"), d);
    /* Nothing to echo, nobody to answer. */
    expect_no_reply(msg("a@x.test", "echo@psyc.xmpp.test", "chat", NULL, NULL), d);
    expect_no_reply(msg("a@x.test", "echo@psyc.xmpp.test", "chat", NULL, ""), d);
    expect_no_reply(msg(NULL, "echo@psyc.xmpp.test", "chat", NULL, "x"), d);
    expect_no_reply(msg("a@@x", "echo@psyc.xmpp.test", "chat", NULL, "x"), d);
    expect_no_reply(msg("a@x.test", NULL, "chat", NULL, "x"), d);

    /* Not a message; a body in another namespace only. */
    xml_node *p = xml_elem_new("presence", NS_COMP);
    assert_non_null(p);
    assert_int_equal(xml_attr_set(p, "from", "a@x.test"), 0);
    assert_int_equal(xml_attr_set(p, "to", "echo@psyc.xmpp.test"), 0);
    expect_no_reply(p, d);
    xml_node *m = msg("a@x.test", "echo@psyc.xmpp.test", "chat", NULL, NULL);
    xml_node *b = xml_elem_add(m, "body", "http://www.w3.org/1999/xhtml");
    assert_non_null(b);
    assert_non_null(xml_text_add(b, "x", 1));
    expect_no_reply(m, d);

    assert_null(routing_echo(NULL, d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_answers),
        cmocka_unit_test(test_echo_ignores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
