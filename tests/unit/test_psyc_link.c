/* test_psyc_link.c: the PSYC circuit machine (psyc/link.c): both sides of
 * the greeting, the 1.0 authorization exchange byte for byte against the
 * crafted vectors (PSYC.md §2.3, crafted/c02, c03), host authentication
 * with held packets (PSYC.md §5), and the pure rules of link_auth.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "psyc/psyc.h"
#include "tests/unit/helper_files.h"

#define CRAFTED VECTORS_DIR "/psyc/crafted/"

typedef struct rec {
    char events[64][160]; /* "PACKET _message_private", "REFUSED evil.test", ... */
    size_t n;
    int auth_answer;      /* what the authenticate callback returns */
    size_t auth_calls;
    char auth_host[256];
} rec;

static const char *ev_name(psyc_link_event ev)
{
    switch (ev) {
    case PSYC_LINK_EV_SYNTAX: return "SYNTAX";
    case PSYC_LINK_EV_GREETING: return "GREETING";
    case PSYC_LINK_EV_PING: return "PING";
    case PSYC_LINK_EV_PACKET: return "PACKET";
    case PSYC_LINK_EV_CIRCUIT: return "CIRCUIT";
    case PSYC_LINK_EV_REFUSED: return "REFUSED";
    case PSYC_LINK_EV_READY: return "READY";
    case PSYC_LINK_EV_NOT_AUTHORIZED: return "NOT_AUTHORIZED";
    }
    return "?";
}

static void on_event(void *ctx, psyc_link *l, psyc_link_event ev, const psyc_packet *p, int arg)
{
    rec *r = ctx;
    (void)arg;
    if (r->n >= 64)
        return;
    if (ev == PSYC_LINK_EV_REFUSED)
        snprintf(r->events[r->n++], 160, "REFUSED %.100s", l->last_host);
    else if (p && p->method.ptr)
        snprintf(r->events[r->n++], 160, "%s %.*s", ev_name(ev), (int)p->method.len, p->method.ptr);
    else
        snprintf(r->events[r->n++], 160, "%s", ev_name(ev));
}

static int on_auth(void *ctx, psyc_link *l, const char *host, char *why, size_t whysz)
{
    rec *r = ctx;
    (void)l;
    r->auth_calls++;
    snprintf(r->auth_host, sizeof r->auth_host, "%s", host);
    snprintf(why, whysz, "test");
    return r->auth_answer;
}

static void link_open_acks(psyc_link *l, rec *r, int active, psyc_syntax syntax, const char *host,
                           const char *peer_host, int acks)
{
    memset(r, 0, sizeof *r);
    psyc_link_params p = {
        .host = host,
        .implementation = "psycgate/test",
        .peer_ip = "192.0.2.7",
        .peer_port = 4404,
        .active = active,
        .syntax = syntax,
        .peer_host = peer_host,
        .auth_tag = "9f2c41d07a",
        .delivery_acks = acks,
        .on_event = on_event,
        .authenticate = on_auth,
        .ctx = r,
    };
    assert_int_equal(psyc_link_init(l, &p), 0);
}

static void link_open(psyc_link *l, rec *r, int active, psyc_syntax syntax, const char *host,
                      const char *peer_host)
{
    link_open_acks(l, r, active, syntax, host, peer_host, 0);
}

static char *take(psyc_link *l, size_t *len)
{
    psyc_buf out;
    psyc_link_take_output(l, &out);
    *len = out.len;
    char *s = malloc(out.len + 1);
    assert_non_null(s);
    if (out.len)
        memcpy(s, out.data, out.len);
    s[out.len] = '\0';
    psyc_buf_free(&out);
    return s;
}

static void expect_output(psyc_link *l, const char *want)
{
    size_t n = 0;
    char *got = take(l, &n);
    assert_string_equal(got, want);
    free(got);
}

static int feed(psyc_link *l, const char *s)
{
    return psyc_link_feed(l, s, strlen(s), 0);
}

static void expect_events(const rec *r, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n && i < r->n; i++)
        assert_string_equal(r->events[i], want[i]);
    assert_int_equal(r->n, n);
}

/* The connecting side of 0.9: `.` and our notice at once, `_status_circuit`
 * only after the peer's `.` (PSYC.md §9, captures 1-circuit-greeting). */
static void test_active_09(void **state)
{
    (void)state;
    psyc_link l;
    rec r;
    link_open(&l, &r, 1, PSYC_SYNTAX_09, "gw.example.org", "psyced.example.net");
    size_t n = 0;
    char *out = take(&l, &n);
    assert_true(strncmp(out, ".\n:_source\tpsyc://gw.example.org/\n:_target_peer\tpsyc://192.0.2.7:4404/\n", 70) == 0);
    assert_non_null(strstr(out, "\n_notice_circuit_established\n"));
    assert_null(strstr(out, "_status_circuit"));
    free(out);
    assert_false(psyc_link_can_send(&l));
    assert_int_equal(feed(&l, ".\n"), PSYC_LINK_VERDICT_GO_ON);
    out = take(&l, &n);
    assert_true(strncmp(out, ":_source\tpsyc://gw.example.org/\n\n", 33) == 0);
    assert_non_null(strstr(out, "\n_status_circuit\n"));
    free(out);
    assert_true(psyc_link_can_send(&l));
    /* The rest of the peer's greeting stays on the circuit. */
    assert_int_equal(feed(&l, ":_source\tpsyc://psyced.example.net/\n\n_notice_circuit_established\nHi.\n.\n"), 0);
    const char *want[] = {"GREETING", "READY", "CIRCUIT _notice_circuit_established"};
    expect_events(&r, want, 3);
    assert_int_equal(r.auth_calls, 0);
    psyc_link_free(&l);
}

/* The connecting side of 1.0 sends `|`, then, after the peer's `|`, the
 * request of crafted/c02 byte for byte, and is ready on c03. */
static void test_active_10_authorization(void **state)
{
    (void)state;
    psyc_link l;
    rec r;
    link_open(&l, &r, 1, PSYC_SYNTAX_10, "gw.example.org", "psyced.example.net");
    expect_output(&l, "|\n");
    assert_int_equal(feed(&l, "|\n"), 0);
    size_t n = 0;
    char *c02 = tf_read_file(CRAFTED "c02-request-authorization.psyc", &n);
    assert_non_null(c02);
    expect_output(&l, c02);
    free(c02);
    assert_false(psyc_link_can_send(&l));
    /* An answer with another tag is not ours. */
    assert_int_equal(feed(&l, ":_tag_relay\tx\n\n_status_authorization\n|\n"), 0);
    assert_false(psyc_link_can_send(&l));
    char *c03 = tf_read_file(CRAFTED "c03-status-authorization.psyc", &n);
    assert_non_null(c03);
    assert_int_equal(psyc_link_feed(&l, c03, n, 0), 0);
    free(c03);
    assert_true(psyc_link_can_send(&l));
    const char *want[] = {"GREETING", "CIRCUIT _status_authorization", "CIRCUIT _status_authorization",
                          "READY _status_authorization"};
    expect_events(&r, want, 4);
    psyc_link_free(&l);
}

/* A refused request closes our circuit: we cannot send on it. */
static void test_active_10_refused(void **state)
{
    (void)state;
    psyc_link l;
    rec r;
    link_open(&l, &r, 1, PSYC_SYNTAX_10, "gw.example.org", "psyced.example.net");
    feed(&l, "|\n");
    assert_int_equal(feed(&l, ":_tag_relay\t9f2c41d07a\n\n_error_invalid_uniform_source\nNo.\n|\n"),
                     PSYC_LINK_VERDICT_CLOSE);
    assert_non_null(strstr(l.reason, "_error_invalid_uniform_source"));
    psyc_link_free(&l);
}

/* On the peer's circuit a refusal only means we cannot send there. */
static void test_passive_10_request_refused(void **state)
{
    (void)state;
    psyc_link l;
    rec r;
    link_open(&l, &r, 0, 0, "gw.example.org", NULL);
    feed(&l, "|\n");
    expect_output(&l, "|\n");
    assert_int_equal(psyc_link_request_authorization(&l, "psyced.example.net", "t1"), 0);
    expect_output(&l, ":_tag\tt1\n\n:_uniform_source\tpsyc://gw.example.org/\n"
                      ":_uniform_target\tpsyc://psyced.example.net/\n_request_authorization\n|\n");
    /* One request at a time. */
    assert_int_equal(psyc_link_request_authorization(&l, "psyced.example.net", "t2"), 0);
    expect_output(&l, "");
    assert_int_equal(feed(&l, ":_tag_relay\tt1\n\n_error_invalid_uniform_source\nNo.\n|\n"), 0);
    assert_int_equal(l.state, PSYC_LINK_OPEN);
    assert_false(psyc_link_can_send(&l));
    assert_int_equal(psyc_link_request_authorization(&l, "psyced.example.net", "t3"), PSYC_ERR_INVALID);
    const char *want[] = {"SYNTAX", "GREETING", "CIRCUIT _error_invalid_uniform_source",
                          "NOT_AUTHORIZED _error_invalid_uniform_source"};
    expect_events(&r, want, 4);
    psyc_link_free(&l);
}

/* The accepting side answers c02 with exactly c03 when the source host
 * authenticates, and with the psyced errors otherwise (PSYC.md §2.3). */
static void test_passive_10_answers(void **state)
{
    (void)state;
    size_t n02 = 0, n03 = 0;
    char *c02 = tf_read_file(CRAFTED "c02-request-authorization.psyc", &n02);
    char *c03 = tf_read_file(CRAFTED "c03-status-authorization.psyc", &n03);
    assert_non_null(c02);
    assert_non_null(c03);

    psyc_link l;
    rec r;
    link_open(&l, &r, 0, 0, "psyced.example.net", NULL);
    r.auth_answer = PSYC_LINK_AUTH_ACCEPT;
    feed(&l, "|\n");
    expect_output(&l, "|\n");
    assert_int_equal(psyc_link_feed(&l, c02, n02, 0), 0);
    expect_output(&l, c03);
    assert_string_equal(r.auth_host, "gw.example.org");
    assert_true(psyc_link_host_authenticated(&l, "GW.example.org"));
    psyc_link_free(&l);

    link_open(&l, &r, 0, 0, "psyced.example.net", NULL);
    r.auth_answer = PSYC_LINK_AUTH_REFUSE;
    feed(&l, "|\n");
    expect_output(&l, "|\n");
    assert_int_equal(psyc_link_feed(&l, c02, n02, 0), 0);
    expect_output(&l, ":_tag_relay\t9f2c41d07a\n\n:_uniform_source\tpsyc://gw.example.org/\n"
                      ":_uniform_target\tpsyc://psyced.example.net/\n_error_invalid_uniform_source\n|\n");
    psyc_link_free(&l);

    /* Not for us: the target error, without asking about the source. */
    link_open(&l, &r, 0, 0, "other.example.net", NULL);
    r.auth_answer = PSYC_LINK_AUTH_ACCEPT;
    feed(&l, "|\n");
    expect_output(&l, "|\n");
    assert_int_equal(psyc_link_feed(&l, c02, n02, 0), 0);
    size_t n = 0;
    char *out = take(&l, &n);
    assert_non_null(strstr(out, "\n_error_invalid_uniform_target\n"));
    free(out);
    assert_int_equal(r.auth_calls, 0);
    psyc_link_free(&l);
    free(c02);
    free(c03);
}

#define EVIL_MSG ":_source\tpsyc://evil.test/~x\n:_target\tpsyc://gw.test/~echo\n\n_message_private\nhi\n.\n"
#define GOOD_MSG ":_source\tpsyc://good.test/~y\n:_target\tpsyc://gw.test/~echo\n\n_message_private\nyo\n.\n"

/* PSYC.md §5: a pending check holds the packet and everything behind it,
 * in order; the verdict is remembered for the circuit. */
static void test_hold_and_refuse(void **state)
{
    (void)state;
    psyc_link l;
    rec r;
    link_open(&l, &r, 0, 0, "gw.test", NULL);
    r.auth_answer = PSYC_LINK_AUTH_PENDING;
    feed(&l, ".\n");
    size_t n = 0;
    free(take(&l, &n));
    r.n = 0;
    assert_int_equal(feed(&l, EVIL_MSG EVIL_MSG ".\n"), 0);
    assert_int_equal(l.state, PSYC_LINK_HOLD);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.auth_calls, 1);
    assert_string_equal(r.auth_host, "evil.test");
    /* More input while held is only buffered. */
    assert_int_equal(feed(&l, GOOD_MSG), 0);
    assert_int_equal(r.n, 0);
    /* A verdict for another host changes nothing. */
    assert_int_equal(psyc_link_auth_result(&l, "good.test", PSYC_LINK_AUTH_ACCEPT, "x", 0), 0);
    assert_int_equal(l.state, PSYC_LINK_HOLD);

    assert_int_equal(psyc_link_auth_result(&l, "EVIL.test", PSYC_LINK_AUTH_REFUSE, "DNS says no", 0), 0);
    /* The second evil packet is refused from the table; good.test is asked. */
    assert_int_equal(l.state, PSYC_LINK_HOLD);
    assert_string_equal(r.auth_host, "good.test");
    assert_int_equal(r.auth_calls, 2);
    assert_int_equal(psyc_link_auth_result(&l, "good.test", PSYC_LINK_AUTH_ACCEPT, "ok", 0), 0);
    assert_int_equal(l.state, PSYC_LINK_OPEN);
    const char *want[] = {"REFUSED evil.test", "REFUSED evil.test", "PING", "PACKET _message_private"};
    expect_events(&r, want, 4);
    assert_int_equal(l.refused, 2);

    char *out = take(&l, &n);
    const char *err = ":_source\tpsyc://gw.test/\n:_target\tpsyc://evil.test/~x\n\n:_host_IP\t192.0.2.7\n"
                      ":_host\tevil.test\n_error_rejected_relay_incoming\n"
                      "Your address [_host_IP] is not permitted to send as [_host].\n.\n";
    char want_out[1024];
    snprintf(want_out, sizeof want_out, "%s%s.\n", err, err);
    assert_string_equal(out, want_out);
    free(out);
    psyc_link_free(&l);
}

/* An error or failure is refused silently; the circuit goes on. */
static void test_refused_error_not_answered(void **state)
{
    (void)state;
    psyc_link l;
    rec r;
    link_open(&l, &r, 0, 0, "gw.test", NULL);
    r.auth_answer = PSYC_LINK_AUTH_REFUSE;
    feed(&l, "|\n");
    size_t n = 0;
    free(take(&l, &n));
    assert_int_equal(feed(&l, ":_source\tpsyc://evil.test/\n:_target\tpsyc://gw.test/~a\n\n_failure_x\n|\n"), 0);
    char *out = take(&l, &n);
    assert_int_equal(n, 0);
    free(out);
    assert_int_equal(l.state, PSYC_LINK_OPEN);
    /* A _source that is no psyc: uniform is refused without asking. */
    r.auth_calls = 0;
    assert_int_equal(feed(&l, ":_source\txmpp:a@b\n:_target\tpsyc://gw.test/~a\n\n_message_private\n|\n"), 0);
    assert_int_equal(r.auth_calls, 0);
    out = take(&l, &n);
    assert_non_null(strstr(out, "_error_rejected_relay_incoming"));
    free(out);
    psyc_link_free(&l);
}

/* Held packets come out the same when fed one byte at a time. */
static void test_hold_bytewise(void **state)
{
    (void)state;
    psyc_link l;
    rec r;
    link_open(&l, &r, 0, 0, "gw.test", NULL);
    r.auth_answer = PSYC_LINK_AUTH_PENDING;
    const char *in = ".\n" GOOD_MSG GOOD_MSG;
    for (size_t i = 0; in[i]; i++)
        assert_int_equal(psyc_link_feed(&l, in + i, 1, 0), 0);
    assert_int_equal(l.state, PSYC_LINK_HOLD);
    assert_int_equal(psyc_link_auth_result(&l, "good.test", PSYC_LINK_AUTH_ACCEPT, "ok", 0), 0);
    const char *want[] = {"SYNTAX", "GREETING", "READY", "PACKET _message_private", "PACKET _message_private"};
    expect_events(&r, want, 5);
    assert_int_equal(r.auth_calls, 1);
    psyc_link_free(&l);
}

/* The pure rules (PSYC.md §5). */
static void test_auth_rules(void **state)
{
    (void)state;
    psyc_auth_facts f = {.host = "a.test", .peer_ip = "192.0.2.7"};
    assert_int_equal(psyc_auth_decide(&f), PSYC_AUTH_NEED_DNS);
    f.tls_match = 1;
    assert_int_equal(psyc_auth_decide(&f), PSYC_AUTH_ACCEPT_TLS);
    f.circuit_trusted = 1;
    assert_int_equal(psyc_auth_decide(&f), PSYC_AUTH_ACCEPT_TRUSTED);
    psyc_auth_facts lit = {.host = "192.0.2.7", .peer_ip = "192.0.2.7"};
    assert_int_equal(psyc_auth_decide(&lit), PSYC_AUTH_ACCEPT_LITERAL);
    lit.host = "192.0.2.8";
    assert_int_equal(psyc_auth_decide(&lit), PSYC_AUTH_NEED_DNS);

    const char *ips[] = {"127.0.0.9", "::1", "192.0.2.7"};
    assert_true(psyc_auth_dns_match("192.0.2.7", ips, 3));
    assert_true(psyc_auth_dns_match("::ffff:192.0.2.7", ips, 3));
    assert_false(psyc_auth_dns_match("127.0.0.1", ips, 3));
    assert_false(psyc_auth_dns_match("127.0.0.1", ips, 0));
    assert_true(psyc_auth_listed("Relay.Test", (const char *const[]){"x", "relay.test"}, 2));
    assert_false(psyc_auth_listed("relay.test", NULL, 0));

    psyc_packet p;
    psyc_packet_init(&p);
    char host[256];
    assert_int_equal(psyc_link_auth_subject(&p, host, sizeof host), 0);
    assert_true(psyc_link_is_circuit_message(&p));
    psyc_packet_routing_c(&p, "_source", "psyc://Src.Test/~a");
    assert_int_equal(psyc_link_auth_subject(&p, host, sizeof host), 1);
    assert_string_equal(host, "src.test");
    assert_false(psyc_link_is_circuit_message(&p));
    psyc_packet_routing_c(&p, "_context", "psyc://ctx.test:4405/@room");
    assert_int_equal(psyc_link_auth_subject(&p, host, sizeof host), 1);
    assert_string_equal(host, "ctx.test");
    psyc_packet_reset(&p);
    psyc_packet_routing_c(&p, "_source", "not a uniform");
    assert_true(psyc_link_auth_subject(&p, host, sizeof host) < 0);
    psyc_packet_reset(&p);
    psyc_packet_routing_c(&p, "_source", "psyc://peer.test/");
    psyc_packet_set_method(&p, PSYC_STR_LIT("_status_circuit"));
    assert_true(psyc_link_is_circuit_message(&p));
    psyc_packet_free(&p);
}

/* Sending: only when open; a 0.9 body line "." is refused, nothing half
 * rendered is left. */
static void test_send(void **state)
{
    (void)state;
    psyc_link l;
    rec r;
    link_open(&l, &r, 0, 0, "gw.test", NULL);
    psyc_packet p;
    psyc_packet_init(&p);
    psyc_packet_routing_c(&p, "_target", "psyc://b.test/~x");
    psyc_packet_set_method(&p, PSYC_STR_LIT("_message_private"));
    psyc_packet_set_data(&p, PSYC_STR_LIT("a\n.\nb"));
    assert_int_equal(psyc_link_send(&l, &p), PSYC_ERR_INVALID);
    feed(&l, ".\n");
    size_t n = 0;
    free(take(&l, &n));
    assert_int_equal(psyc_link_send(&l, &p), PSYC_ERR_UNRENDERABLE);
    expect_output(&l, "");
    psyc_packet_set_data(&p, PSYC_STR_LIT("ok"));
    assert_int_equal(psyc_link_send(&l, &p), 0);
    expect_output(&l, ":_target\tpsyc://b.test/~x\n\n_message_private\nok\n.\n");
    psyc_packet_free(&p);
    psyc_link_free(&l);
}

/* Moves what each side wrote to the other until both are quiet. */
static void pump(psyc_link *a, psyc_link *b)
{
    for (int round = 0; round < 10; round++) {
        size_t na = 0, nb = 0;
        char *oa = take(a, &na), *ob = take(b, &nb);
        if (na)
            psyc_link_feed(b, oa, na, 0);
        if (nb)
            psyc_link_feed(a, ob, nb, 0);
        free(oa);
        free(ob);
        if (!na && !nb)
            return;
    }
    fail_msg("links never went quiet");
}

/* Acknowledged delivery (link.h) is on only when both sides announce it,
 * in either syntax; a side that does not (psyced) never sees it, and
 * `_status_delivery` goes as a circuit message. */
static void test_delivery_acks_negotiated(void **state)
{
    (void)state;
    for (int syn = 0; syn < 2; syn++) {
        psyc_syntax syntax = syn ? PSYC_SYNTAX_10 : PSYC_SYNTAX_09;
        for (int combo = 0; combo < 3; combo++) {
            int acks_a = combo != 1, acks_b = combo != 2;
            psyc_link a, b;
            rec ra, rb;
            link_open_acks(&a, &ra, 1, syntax, "a.example", "b.example", acks_a);
            link_open_acks(&b, &rb, 0, PSYC_SYNTAX_09, "b.example", "a.example", acks_b);
            ra.auth_answer = rb.auth_answer = PSYC_LINK_AUTH_ACCEPT;
            pump(&a, &b);
            assert_true(psyc_link_can_send(&a));
            int both = acks_a && acks_b;
            assert_int_equal(psyc_link_delivery_acks(&a), both);
            assert_int_equal(psyc_link_delivery_acks(&b), both);
            if (both) {
                assert_int_equal(psyc_link_send_delivery_ack(&b, "00ff:42"), 0);
                size_t n = 0;
                char *out = take(&b, &n);
                assert_non_null(strstr(out, ":_counter_delivery\t00ff:42\n_status_delivery\n"));
                rb.n = 0;
                ra.n = 0;
                psyc_link_feed(&a, out, n, 0);
                free(out);
                const char *want[] = {"CIRCUIT _status_delivery"};
                expect_events(&ra, want, 1);
            } else {
                assert_int_equal(psyc_link_send_delivery_ack(&b, "00ff:42"), PSYC_ERR_INVALID);
            }
            psyc_link_free(&a);
            psyc_link_free(&b);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_active_09),
        cmocka_unit_test(test_active_10_authorization),
        cmocka_unit_test(test_active_10_refused),
        cmocka_unit_test(test_passive_10_answers),
        cmocka_unit_test(test_passive_10_request_refused),
        cmocka_unit_test(test_hold_and_refuse),
        cmocka_unit_test(test_refused_error_not_answered),
        cmocka_unit_test(test_hold_bytewise),
        cmocka_unit_test(test_auth_rules),
        cmocka_unit_test(test_send),
        cmocka_unit_test(test_delivery_acks_negotiated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
