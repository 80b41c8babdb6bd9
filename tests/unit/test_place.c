/* test_place.c: one hosted place (routing/place.h): enter/leave with
 * psyced's names and packets (PSYC.md §4.2, §9 captures 4-place), casts
 * with _counter and routes, history, topic, nick change, whisper,
 * kick/ban by the owner, netburp, lookalike nicks (issue 6), the durable
 * state, and a room of 5000 members. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "routing/place.h"

#define PLACE "psyc://b.test/@lab"
#define ALICE "psyc://a.test/~alice"
#define BOB "psyc://a.test/~bob"
#define CAROL "psyc://b.test/~carol"

static void req(psyc_packet *p, const char *method, const char *src, const char *nick)
{
    psyc_packet_init(p);
    assert_int_equal(psyc_packet_routing_c(p, "_source", src), 0);
    assert_int_equal(psyc_packet_routing_c(p, "_target", PLACE), 0);
    if (nick)
        assert_int_equal(psyc_packet_entity_c(p, "_nick", nick), 0);
    assert_int_equal(psyc_packet_set_method(p, psyc_str_c(method)), 0);
}

/* Sends one request; the outputs stay in *o (freed by the caller). */
static int run(place_room *pl, place_outs *o, const char *method, const char *src, const char *nick, const char *body)
{
    psyc_packet p;
    req(&p, method, src, nick);
    if (body)
        assert_int_equal(psyc_packet_set_data(&p, psyc_str_c(body)), 0);
    int rc = place_handle(pl, &p, 1795578462, o);
    psyc_packet_free(&p);
    return rc;
}

static const char *var(const psyc_packet *p, const char *name, char *buf, size_t size)
{
    psyc_str v;
    if (!psyc_packet_get(p, name, &v) || !v.ptr)
        return NULL;
    snprintf(buf, size, "%.*s", (int)v.len, v.ptr);
    return buf;
}

static void assert_method(const place_out *o, int cast, const char *method)
{
    assert_int_equal(o->cast, cast);
    char m[128];
    snprintf(m, sizeof m, "%.*s", (int)o->p.method.len, o->p.method.ptr);
    assert_string_equal(m, method);
}

static void assert_var(const psyc_packet *p, const char *name, const char *want)
{
    char b[4096];
    const char *v = var(p, name, b, sizeof b);
    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(v, want);
}

static void test_enter_leave(void **state)
{
    (void)state;
    place_room *pl = place_new(PLACE, 5);
    assert_non_null(pl);
    assert_string_equal(pl->name, "lab");
    place_outs o = {0};
    /* psyced's joiner (capture 07): _request_enter with _nick. */
    assert_int_equal(run(pl, &o, "_request_enter", ALICE, "Alice", NULL), 1);
    assert_int_equal(o.n, 3);
    assert_method(&o.v[0], 1, "_notice_place_enter");
    assert_var(&o.v[0].p, "_source_relay", ALICE);
    assert_var(&o.v[0].p, "_context", PLACE);
    assert_var(&o.v[0].p, "_counter", "1");
    assert_var(&o.v[0].p, "_nick", "Alice");
    assert_var(&o.v[0].p, "_duty", "owner");
    assert_int_equal(o.v[0].n_routes, 1);
    assert_string_equal(o.v[0].routes[0], "psyc://a.test/");
    assert_method(&o.v[1], 0, "_echo_place_enter");
    assert_var(&o.v[1].p, "_target", ALICE);
    assert_var(&o.v[1].p, "_source", PLACE);
    assert_var(&o.v[1].p, "_list_members", "| " ALICE);
    assert_var(&o.v[1].p, "_list_members_nicks", "| Alice");
    assert_var(&o.v[1].p, "_nick_place", "lab");
    assert_var(&o.v[1].p, "_amount_history", "5");
    assert_var(&o.v[1].p, "_uniform_owner", ALICE);
    assert_method(&o.v[2], 0, "_status_place_topic");
    assert_var(&o.v[2].p, "_topic", "");
    assert_string_equal(pl->owner, ALICE);
    assert_true(pl->dirty);
    place_outs_free(&o);

    /* The SPEC name, another server: a second route. */
    assert_int_equal(run(pl, &o, "_request_context_enter", CAROL, "carol", NULL), 1);
    assert_int_equal(o.n, 3);
    assert_var(&o.v[0].p, "_duty", "member");
    assert_int_equal(o.v[0].n_routes, 2);
    assert_var(&o.v[1].p, "_list_members", "| " ALICE "| " CAROL);
    place_outs_free(&o);
    /* Same host as alice: still two routes, three members. */
    assert_int_equal(run(pl, &o, "_request_enter", BOB, "bob", NULL), 1);
    place_outs_free(&o);
    assert_int_equal(pl->n, 3);
    assert_int_equal(pl->n_routes, 2);

    /* A nick taken. */
    assert_int_equal(run(pl, &o, "_request_enter", "psyc://c.test/~x", "bob", NULL), 1);
    assert_int_equal(o.n, 1);
    assert_method(&o.v[0], 0, "_error_duplicate_nick_place");
    place_outs_free(&o);

    /* Leaving with psyced's _notice_place_leave: the cast still goes to
     * the leaver's server (capture 18), then the route is gone. */
    assert_int_equal(run(pl, &o, "_notice_place_leave", CAROL, NULL, NULL), 1);
    assert_int_equal(o.n, 1);
    assert_method(&o.v[0], 1, "_notice_place_leave");
    assert_var(&o.v[0].p, "_nick", "carol");
    assert_int_equal(o.v[0].n_routes, 2);
    assert_int_equal(pl->n_routes, 1);
    place_outs_free(&o);
    /* Leaving again: not in. */
    assert_int_equal(run(pl, &o, "_request_leave", CAROL, NULL, NULL), 1);
    assert_method(&o.v[0], 0, "_echo_place_leave_invalid");
    place_outs_free(&o);
    /* Not a place request: left alone. */
    assert_int_equal(run(pl, &o, "_request_version", CAROL, NULL, NULL), 0);
    assert_int_equal(run(pl, &o, "_error_unknown_name_user", CAROL, NULL, NULL), 0);
    assert_int_equal(o.n, 0);
    place_free(pl);
}

static void test_talk_history_topic(void **state)
{
    (void)state;
    place_room *pl = place_new(PLACE, 2);
    place_outs o = {0};
    run(pl, &o, "_request_enter", ALICE, "Alice", NULL);
    place_outs_free(&o);
    /* A non-member speaks: psyced's error (capture 26). */
    assert_int_equal(run(pl, &o, "_message_public", BOB, NULL, "hi"), 1);
    assert_method(&o.v[0], 0, "_error_necessary_membership");
    assert_var(&o.v[0].p, "_nick_place", "lab");
    place_outs_free(&o);
    /* A member: cast back to everyone, the speaker too (§9); her own nick,
     * not one she claims. */
    const char *texts[] = {"one", "two", "three?"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(run(pl, &o, i == 2 ? "_message_public_question" : "_message_public", ALICE, "Mallory",
                             texts[i]),
                         1);
        assert_int_equal(o.n, 1);
        assert_method(&o.v[0], 1, i == 2 ? "_message_public_question" : "_message_public");
        assert_var(&o.v[0].p, "_nick", "Alice");
        assert_var(&o.v[0].p, "_source_relay", ALICE);
        char c[8];
        snprintf(c, sizeof c, "%d", i + 2);
        assert_var(&o.v[0].p, "_counter", c);
        place_outs_free(&o);
    }
    assert_int_equal(run(pl, &o, "_request_set_topic", ALICE, NULL, NULL), 1);
    place_outs_free(&o);
    psyc_packet t;
    req(&t, "_request_set_topic", ALICE, NULL);
    psyc_packet_entity_c(&t, "_topic", "science!");
    assert_int_equal(place_handle(pl, &t, 1795578500, &o), 1);
    psyc_packet_free(&t);
    assert_method(&o.v[0], 1, "_notice_place_topic");
    assert_var(&o.v[0].p, "_source_relay", PLACE); /* capture 16 */
    assert_var(&o.v[0].p, "_topic", "science!");
    place_outs_free(&o);

    /* A late joiner: enter cast, echo, the last 2 messages, the topic. */
    assert_int_equal(run(pl, &o, "_request_enter", BOB, "bob", NULL), 1);
    assert_int_equal(o.n, 5);
    assert_method(&o.v[0], 1, "_notice_place_enter");
    assert_method(&o.v[1], 0, "_echo_place_enter");
    assert_var(&o.v[1].p, "_topic", "science!");
    assert_method(&o.v[2], 0, "_message_public");
    assert_string_equal(o.v[2].p.data.ptr, "two");
    assert_var(&o.v[2].p, "_context", PLACE);
    assert_var(&o.v[2].p, "_target", BOB);
    assert_var(&o.v[2].p, "_time_place", "1795578462");
    assert_method(&o.v[3], 0, "_message_public_question");
    assert_method(&o.v[4], 0, "_status_place_topic");
    assert_var(&o.v[4].p, "_topic", "science!");
    assert_var(&o.v[4].p, "_nick", "Alice");
    assert_var(&o.v[4].p, "_time_place", "1795578500");
    place_outs_free(&o);

    /* A joiner that wants one message of history (_amount_history). */
    psyc_packet e;
    req(&e, "_request_enter", CAROL, "carol");
    psyc_packet_entity_c(&e, "_amount_history", "1");
    assert_int_equal(place_handle(pl, &e, 0, &o), 1);
    psyc_packet_free(&e);
    assert_int_equal(o.n, 4);
    assert_method(&o.v[2], 0, "_message_public_question");
    assert_method(&o.v[3], 0, "_status_place_topic");
    place_outs_free(&o);

    /* Whisper through the place (XEP-0045 §7.5). */
    psyc_packet w;
    req(&w, "_message_private", BOB, NULL);
    psyc_packet_entity_c(&w, "_nick_target", "Alice");
    psyc_packet_set_data(&w, PSYC_STR_LIT("psst"));
    assert_int_equal(place_handle(pl, &w, 0, &o), 1);
    assert_int_equal(o.n, 1);
    assert_method(&o.v[0], 0, "_message_private");
    assert_var(&o.v[0].p, "_context", PLACE);
    assert_var(&o.v[0].p, "_target", ALICE);
    assert_var(&o.v[0].p, "_source_relay", BOB);
    assert_var(&o.v[0].p, "_nick", "bob");
    place_outs_free(&o);
    psyc_packet_free(&w);
    req(&w, "_message_private", BOB, NULL);
    psyc_packet_entity_c(&w, "_nick_target", "nobody");
    place_handle(pl, &w, 0, &o);
    assert_method(&o.v[0], 0, "_error_unknown_name_user");
    place_outs_free(&o);
    psyc_packet_free(&w);

    /* Nick change: enter again with another nick. */
    assert_int_equal(run(pl, &o, "_request_enter", BOB, "robert", NULL), 1);
    assert_int_equal(o.n, 1);
    assert_method(&o.v[0], 1, "_notice_place_nick");
    assert_var(&o.v[0].p, "_nick", "bob");
    assert_var(&o.v[0].p, "_nick_new", "robert");
    place_outs_free(&o);
    assert_string_equal(place_find(pl, BOB)->nick, "robert");
    /* The same nick again (XMPP's presence updates): only the welcome. */
    assert_int_equal(run(pl, &o, "_request_enter", BOB, "robert", NULL), 1);
    assert_method(&o.v[0], 0, "_echo_place_enter");
    place_outs_free(&o);
    place_free(pl);
}

static void test_kick_ban_netburp(void **state)
{
    (void)state;
    place_room *pl = place_new(PLACE, 0);
    place_outs o = {0};
    run(pl, &o, "_request_enter", ALICE, "Alice", NULL);
    run(pl, &o, "_request_enter", BOB, "bob", NULL);
    run(pl, &o, "_request_enter", CAROL, "carol", NULL);
    place_outs_free(&o);
    psyc_packet k;
    /* Not the owner. */
    req(&k, "_request_kick", BOB, NULL);
    psyc_packet_entity_c(&k, "_nick_target", "carol");
    place_handle(pl, &k, 0, &o);
    assert_method(&o.v[0], 0, "_error_forbidden_place_owner");
    place_outs_free(&o);
    psyc_packet_free(&k);
    /* The owner kicks carol: her server gets the cast, the owner the echo. */
    req(&k, "_request_kick", ALICE, NULL);
    psyc_packet_entity_c(&k, "_nick_target", "carol");
    psyc_packet_entity_c(&k, "_reason", "too loud");
    psyc_packet_routing_c(&k, "_tag", "iq1");
    assert_int_equal(place_handle(pl, &k, 0, &o), 1);
    psyc_packet_free(&k);
    assert_int_equal(o.n, 2);
    assert_method(&o.v[0], 1, "_notice_place_leave_kick");
    assert_var(&o.v[0].p, "_source_relay", CAROL);
    assert_var(&o.v[0].p, "_nick_actor", "Alice");
    assert_var(&o.v[0].p, "_reason", "too loud");
    assert_int_equal(o.v[0].n_routes, 2);
    assert_method(&o.v[1], 0, "_echo_place_kick");
    assert_var(&o.v[1].p, "_tag_relay", "iq1");
    place_outs_free(&o);
    assert_null(place_find(pl, CAROL));
    /* A kicked member may come back; a banned one may not. */
    req(&k, "_request_ban", ALICE, NULL);
    psyc_packet_entity_c(&k, "_uniform_target", "psyc://A.TEST/~bob");
    place_handle(pl, &k, 0, &o);
    psyc_packet_free(&k);
    assert_method(&o.v[0], 1, "_notice_place_leave_ban");
    assert_var(&o.v[0].p, "_nick", "bob");
    place_outs_free(&o);
    assert_int_equal(run(pl, &o, "_request_enter", BOB, "bob", NULL), 1);
    assert_method(&o.v[0], 0, "_error_forbidden_place_banned");
    place_outs_free(&o);

    /* State: owner, topic and bans survive, members do not. */
    psyc_buf b;
    psyc_buf_init(&b);
    assert_int_equal(place_state_save(pl, &b), 0);
    place_room *again = place_new(PLACE, 0);
    assert_int_equal(place_state_load(again, b.data, b.len), 0);
    psyc_buf_free(&b);
    assert_string_equal(again->owner, ALICE);
    assert_int_equal(again->n_bans, 1);
    assert_string_equal(again->bans[0], BOB);
    assert_int_equal(run(again, &o, "_request_enter", BOB, "bob", NULL), 1);
    assert_method(&o.v[0], 0, "_error_forbidden_place_banned");
    place_outs_free(&o);
    /* The owner enters later: still the owner. */
    run(again, &o, "_request_enter", CAROL, "carol", NULL);
    assert_var(&o.v[0].p, "_duty", "member");
    place_outs_free(&o);
    place_free(again);

    /* Netsplit: carol's server is gone; alice's stays. */
    run(pl, &o, "_request_enter", CAROL, "carol", NULL);
    place_outs_free(&o);
    assert_int_equal(place_route_lost(pl, "psyc://b.test/", &o), 1);
    assert_method(&o.v[0], 1, "_notice_place_leave_netburp");
    assert_int_equal(o.v[0].n_routes, 1);
    assert_string_equal(o.v[0].routes[0], "psyc://a.test/");
    assert_int_equal(pl->n, 1);
    assert_int_equal(pl->n_routes, 1);
    place_outs_free(&o);
    place_free(pl);
}

/* Issue 6: nicks differing only in case are two members, and the second
 * is flagged. */
static void test_lookalike(void **state)
{
    (void)state;
    place_room *pl = place_new(PLACE, 0);
    place_outs o = {0};
    run(pl, &o, "_request_enter", ALICE, "Alice", NULL);
    place_outs_free(&o);
    assert_int_equal(run(pl, &o, "_request_enter", BOB, "alice", NULL), 1);
    assert_method(&o.v[0], 1, "_notice_place_enter");
    assert_var(&o.v[0].p, "_nick_lookalike", "Alice");
    place_outs_free(&o);
    assert_int_equal(pl->n, 2);
    run(pl, &o, "_request_enter", CAROL, "carol", NULL);
    assert_var(&o.v[0].p, "_nick_lookalike", NULL);
    place_outs_free(&o);
    char *f = place_nick_fold("ALICE");
    assert_string_equal(f, "alice");
    free(f);
    place_free(pl);
}

/* 5000 members on 50 servers: routes stay 50, the last joiner's echo
 * lists everyone, a message is one cast to 50 routes. Bounded work, no
 * timing assertions. */
static void test_big_room(void **state)
{
    (void)state;
    place_room *pl = place_new(PLACE, 20);
    place_outs o = {0};
    char uni[64], nick[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(uni, sizeof uni, "psyc://h%d.test/~u%d", i % 50, i);
        snprintf(nick, sizeof nick, "u%d", i);
        assert_int_equal(run(pl, &o, "_request_enter", uni, nick, NULL), 1);
        if (i < 4999)
            place_outs_free(&o);
    }
    assert_int_equal(pl->n, 5000);
    assert_int_equal(pl->n_routes, 50);
    assert_method(&o.v[1], 0, "_echo_place_enter");
    psyc_str list;
    assert_true(psyc_packet_get(&o.v[1].p, "_list_members_nicks", &list));
    size_t bars = 0;
    for (size_t i = 0; i < list.len; i++)
        bars += list.ptr[i] == '|';
    assert_int_equal(bars, 5000);
    place_outs_free(&o);
    assert_int_equal(run(pl, &o, "_message_public", "psyc://h7.test/~u7", NULL, "hello all"), 1);
    assert_int_equal(o.n, 1);
    assert_int_equal(o.v[0].n_routes, 50);
    assert_var(&o.v[0].p, "_counter", "5001");
    place_outs_free(&o);
    place_free(pl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enter_leave),       cmocka_unit_test(test_talk_history_topic),
        cmocka_unit_test(test_kick_ban_netburp),  cmocka_unit_test(test_lookalike),
        cmocka_unit_test(test_big_room),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
