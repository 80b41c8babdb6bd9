/* test_psyc_route.c: the PSYC half of the core boundary
 * (routing/psyc_route.c, routing/psyc_echo.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "routing/routing.h"

static void pkt(psyc_packet *p, const char *source, const char *target, const char *context, const char *tag,
                const char *method, const char *body)
{
    psyc_packet_init(p);
    if (source)
        assert_int_equal(psyc_packet_routing_c(p, "_source", source), 0);
    if (target)
        assert_int_equal(psyc_packet_routing_c(p, "_target", target), 0);
    if (context)
        assert_int_equal(psyc_packet_routing_c(p, "_context", context), 0);
    if (tag)
        assert_int_equal(psyc_packet_routing_c(p, "_tag", tag), 0);
    if (method)
        assert_int_equal(psyc_packet_set_method(p, psyc_str_c(method)), 0);
    if (body)
        assert_int_equal(psyc_packet_set_data(p, psyc_str_c(body)), 0);
}

static void expect_routing(const psyc_packet *p, const char *name, const char *value)
{
    const psyc_modifier *m = psyc_packet_find_routing(p, name);
    if (!value) {
        assert_null(m);
        return;
    }
    assert_non_null(m);
    assert_int_equal(m->value.len, strlen(value));
    assert_memory_equal(m->value.ptr, value, m->value.len);
}

static int route(const psyc_packet *in, int trusted, psyc_packet *out, const char **why)
{
    routing_psyc_env env = {.host = "b.test", .circuit_trusted = trusted};
    psyc_packet_init(out);
    return routing_psyc(in, &env, out, why);
}

static void test_echo(void **state)
{
    (void)state;
    psyc_packet in, out;
    const char *why = NULL;
    pkt(&in, "psyc://a.test/~alice", "psyc://B.Test/~Echo", NULL, "t1", "_message_private", "hello");
    assert_int_equal(route(&in, 0, &out, &why), ROUTING_PSYC_ANSWER);
    assert_string_equal(why, "echo");
    expect_routing(&out, "_source", "psyc://b.test/~echo");
    expect_routing(&out, "_target", "psyc://a.test/~alice");
    expect_routing(&out, "_tag_relay", "t1");
    assert_true(psyc_str_eq_c(out.method, "_message_private"));
    assert_true(psyc_str_eq_c(out.data, "echo: hello"));
    /* It renders in both syntaxes (what psyc_out sends). */
    psyc_buf b;
    psyc_buf_init(&b);
    assert_int_equal(psyc_render09(&out, &b), 0);
    assert_string_equal(b.data, ":_target\tpsyc://a.test/~alice\n:_source\tpsyc://b.test/~echo\n"
                                ":_tag_relay\tt1\n\n:_nick\techo\n_message_private\necho: hello\n.\n");
    psyc_buf_free(&b);
    psyc_packet_free(&out);
    psyc_packet_free(&in);

    /* A kind of _message_private is answered too; the echo stays plain. */
    pkt(&in, "psyc://a.test/~alice", "psyc://b.test/~echo", NULL, NULL, "_message_private_question", "ok?");
    psyc_packet_init(&out);
    assert_int_equal(routing_psyc_echo(&in, "b.test", &out), 1);
    assert_true(psyc_str_eq_c(out.method, "_message_private"));
    psyc_packet_free(&in);
    psyc_packet_free(&out);
}

static void test_not_echo(void **state)
{
    (void)state;
    psyc_packet in, out;
    psyc_packet_init(&out);
    /* Other hosts, other nicks, places, channels, other methods. */
    const char *targets[] = {"psyc://c.test/~echo", "psyc://b.test/~echoes", "psyc://b.test/@echo",
                             "psyc://b.test/~echo#x"};
    for (size_t i = 0; i < 4; i++) {
        pkt(&in, "psyc://a.test/~alice", targets[i], NULL, NULL, "_message_private", "x");
        assert_int_equal(routing_psyc_echo(&in, "b.test", &out), 0);
        psyc_packet_free(&in);
    }
    pkt(&in, "psyc://a.test/~alice", "psyc://b.test/~echo", NULL, NULL, "_message_public", "x");
    assert_int_equal(routing_psyc_echo(&in, "b.test", &out), 0);
    psyc_packet_free(&in);
    pkt(&in, NULL, "psyc://b.test/~echo", NULL, NULL, "_message_private", "x");
    assert_int_equal(routing_psyc_echo(&in, "b.test", &out), 0);
    psyc_packet_free(&in);
    assert_int_equal(out.n_routing, 0);
    psyc_packet_free(&out);
}

/* PSYC.md §4.4: an unknown local entity gets _error_unknown_name_user;
 * errors and failures are never answered. */
static void test_unknown_local(void **state)
{
    (void)state;
    psyc_packet in, out;
    const char *why = NULL;
    pkt(&in, "psyc://a.test/~alice", "psyc://b.test/~nobody", NULL, "t9", "_message_private", "hi");
    assert_int_equal(route(&in, 0, &out, &why), ROUTING_PSYC_ANSWER);
    assert_true(psyc_str_eq_c(out.method, "_error_unknown_name_user"));
    expect_routing(&out, "_source", "psyc://b.test/");
    expect_routing(&out, "_target", "psyc://a.test/~alice");
    expect_routing(&out, "_tag_relay", "t9");
    const psyc_modifier *nick = psyc_packet_find_entity(&out, "_nick_target");
    assert_non_null(nick);
    assert_true(psyc_str_eq_c(nick->value, "nobody"));
    psyc_packet_free(&in);
    psyc_packet_free(&out);

    const char *errs[] = {"_error_unknown_name_user", "_failure_unsuccessful_delivery", "_failure"};
    for (size_t i = 0; i < 3; i++) {
        pkt(&in, "psyc://a.test/~alice", "psyc://b.test/~nobody", NULL, NULL, errs[i], "x");
        assert_int_equal(route(&in, 0, &out, &why), ROUTING_PSYC_DROP);
        assert_int_equal(out.n_routing, 0);
        psyc_packet_free(&in);
        psyc_packet_free(&out);
    }
    /* Not even an error to ~echo. */
    pkt(&in, "psyc://a.test/~alice", "psyc://b.test/~echo", NULL, NULL, "_error_x", "x");
    assert_int_equal(route(&in, 0, &out, &why), ROUTING_PSYC_DROP);
    psyc_packet_free(&in);
    psyc_packet_free(&out);
}

static void test_relay(void **state)
{
    (void)state;
    psyc_packet in, out;
    const char *why = NULL;
    /* Our own user speaking out: forwarded. */
    pkt(&in, "psyc://b.test/~tester", "psyc://c.test/~echo", NULL, NULL, "_message_private", "x");
    assert_int_equal(route(&in, 0, &out, &why), ROUTING_PSYC_FORWARD);
    psyc_packet_free(&in);
    psyc_packet_free(&out);
    /* A foreign sender through us: only for a trusted circuit. */
    pkt(&in, "psyc://a.test/~alice", "psyc://c.test/~echo", NULL, NULL, "_message_private", "x");
    assert_int_equal(route(&in, 1, &out, &why), ROUTING_PSYC_FORWARD);
    psyc_packet_free(&out);
    assert_int_equal(route(&in, 0, &out, &why), ROUTING_PSYC_ANSWER);
    assert_true(psyc_str_eq_c(out.method, "_failure_unsupported_relay"));
    expect_routing(&out, "_target", "psyc://a.test/~alice");
    psyc_packet_free(&in);
    psyc_packet_free(&out);
}

static void test_drops(void **state)
{
    (void)state;
    psyc_packet in, out;
    const char *why = NULL;
    pkt(&in, NULL, NULL, "psyc://a.test/@room", NULL, "_message_public", "x");
    assert_int_equal(route(&in, 0, &out, &why), ROUTING_PSYC_DROP);
    assert_non_null(strstr(why, "multicast"));
    psyc_packet_free(&in);
    psyc_packet_free(&out);
    pkt(&in, "psyc://a.test/~alice", NULL, NULL, NULL, "_request_version", NULL);
    assert_int_equal(route(&in, 0, &out, &why), ROUTING_PSYC_DROP);
    psyc_packet_free(&in);
    psyc_packet_free(&out);
    pkt(&in, "psyc://a.test/~alice", "psyc://b.test/", NULL, NULL, "_request_version", NULL);
    assert_int_equal(route(&in, 0, &out, &why), ROUTING_PSYC_DROP);
    assert_int_equal(out.n_routing, 0);
    psyc_packet_free(&in);
    psyc_packet_free(&out);
    pkt(&in, "psyc://a.test/~alice", "xmpp:bob@x.test", NULL, NULL, "_message_private", "x");
    assert_int_equal(route(&in, 0, &out, &why), ROUTING_PSYC_ANSWER);
    assert_true(psyc_str_eq_c(out.method, "_error_illegal_uniform"));
    psyc_packet_free(&in);
    psyc_packet_free(&out);
    assert_true(routing_psyc_is_local(PSYC_STR_LIT("psyc://B.TEST:4405/~x"), "b.test"));
    assert_false(routing_psyc_is_local(PSYC_STR_LIT("psyc://b.test.evil/~x"), "b.test"));
    assert_false(routing_psyc_is_local(PSYC_STR_LIT("xmpp:b.test"), "b.test"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),          cmocka_unit_test(test_not_echo),
        cmocka_unit_test(test_unknown_local), cmocka_unit_test(test_relay),
        cmocka_unit_test(test_drops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
