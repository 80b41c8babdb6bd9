/*
 * test_register.c: XEP-0077 registration stanzas (routing/register.h):
 * nick validation, what an iq asks, the form with and without a
 * registration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helper_stanza.h"
#include "routing/register.h"

static void test_nicks(void **state)
{
    (void)state;
    char out[REGISTER_NICK_MAX + 1];
    assert_int_equal(register_nick_normalize("Bobby_2-x", out, sizeof out), 0);
    assert_string_equal(out, "bobby_2-x");
    static const char *const bad[] = {"", "2bob", "_bob", "bo b", "bob@x", "b%c", "bøb", "a.b", "~bob",
                                      "abcdefghijklmnopqrstuvwxyz0123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (register_nick_normalize(bad[i], out, sizeof out) != -1)
            fail_msg("'%s' accepted", bad[i]);
        assert_string_equal(out, "");
    }
    assert_int_equal(register_nick_normalize("abcdefghijklmnopqrstuvwxyz012345", out, sizeof out), 0);
    assert_int_equal(register_nick_normalize(NULL, out, sizeof out), -1);
    assert_int_equal(register_nick_normalize("bob", out, 3), -1); /* no room for the NUL */
}

static register_op op_of(const char *iq, const char **nick)
{
    xml_node *st = ts_parse(iq);
    static char keep[64];
    const char *n = NULL;
    register_op op = register_parse(st, &n);
    keep[0] = '\0';
    if (n)
        strncpy(keep, n, sizeof keep - 1);
    *nick = keep;
    xml_node_free(st);
    return op;
}

#define IQ(type, q) "<iq from='bob@example.org/l' to='psyc.example.org' type='" type "' id='r1'>" q "</iq>"

static void test_parse(void **state)
{
    (void)state;
    const char *nick;
    assert_int_equal(op_of(IQ("get", "<query xmlns='jabber:iq:register'/>"), &nick), REGISTER_QUERY);
    assert_int_equal(op_of(IQ("set", "<query xmlns='jabber:iq:register'><nick>Bobby</nick></query>"), &nick),
                     REGISTER_SET);
    assert_string_equal(nick, "Bobby");
    assert_int_equal(op_of(IQ("set", "<query xmlns='jabber:iq:register'><remove/></query>"), &nick),
                     REGISTER_REMOVE);
    /* §3.1: the required field missing or empty. */
    assert_int_equal(op_of(IQ("set", "<query xmlns='jabber:iq:register'><username>b</username></query>"), &nick),
                     REGISTER_BAD);
    assert_int_equal(op_of(IQ("set", "<query xmlns='jabber:iq:register'><nick/></query>"), &nick), REGISTER_BAD);
    /* Not ours. */
    assert_int_equal(op_of(IQ("get", "<query xmlns='jabber:iq:version'/>"), &nick), REGISTER_NOT);
    assert_int_equal(op_of(IQ("result", "<query xmlns='jabber:iq:register'/>"), &nick), REGISTER_NOT);
    assert_int_equal(op_of("<iq to='psyc.example.org' type='get' id='x'><query xmlns='jabber:iq:register'/></iq>",
                           &nick),
                     REGISTER_NOT);
    assert_int_equal(op_of("<message from='a@b' to='c'><query xmlns='jabber:iq:register'/></message>", &nick),
                     REGISTER_NOT);
}

static void test_form(void **state)
{
    (void)state;
    xml_node *st = ts_parse(IQ("get", "<query xmlns='jabber:iq:register'/>"));
    xml_node *r = register_form(st, NULL);
    const char *t = ts_text(r);
    assert_non_null(strstr(t, "<iq from='psyc.example.org' to='bob@example.org/l' type='result' id='r1'>"
                              "<query xmlns='jabber:iq:register'><instructions>"));
    assert_non_null(strstr(t, "</instructions><nick/></query></iq>"));
    xml_node_free(r);
    /* §3.1 Example 3: registered already, the data it has. */
    r = register_form(st, "bobby");
    assert_non_null(strstr(ts_text(r), "</instructions><registered/><nick>bobby</nick></query></iq>"));
    xml_node_free(r);
    xml_node_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nicks),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
