/* test_muc.c: XEP-0045 <-> PSYC places (routing/muc.h): an occupant's
 * stanzas as requests, and what the place (routing/place.h) sends as the
 * stanzas XEP-0045 shows: the §7.2 join burst in order with 110/100/170,
 * history with <delay/>, subject, groupchat, whisper, nick change (303),
 * kick (307), ban (301), errors, lookalike nicks (issue 6), and the burst
 * of a room with 5000 occupants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "routing/muc.h"
#include "routing/place.h"

#define PLACE "psyc://b.test/@lab"
#define ROOM "*lab@b.test"
#define ALICE "psyc://a.test/~alice"
#define BOB "psyc://a.test/~bob"

static const addr_map natural = {.mode = ADDR_MODE_NATURAL};

static void keep(void *ud, xml_node *n)
{
    xml_node **out = ud;
    if (*out)
        xml_node_free(n);
    else
        *out = n;
}

static xml_node *parse(const char *xml)
{
    xml_node *out = NULL;
    assert_int_equal(xml_parse_fragment(xml, strlen(xml), keep, &out), 0);
    assert_non_null(out);
    return out;
}

static char *var(const psyc_packet *p, const char *name)
{
    static char buf[2048];
    psyc_str v;
    if (!psyc_packet_get(p, name, &v) || !v.ptr)
        return NULL;
    snprintf(buf, sizeof buf, "%.*s", (int)v.len, v.ptr);
    return buf;
}

static muc_req request(const char *xml, const char *nick, psyc_packet *p, const char **cond)
{
    xml_node *st = parse(xml);
    psyc_packet_init(p);
    muc_req k = muc_request(&natural, st, PLACE, ALICE, nick, p, cond);
    xml_node_free(st);
    return k;
}

static void assert_method(const psyc_packet *p, const char *m)
{
    assert_int_equal(p->method.len, strlen(m));
    assert_memory_equal(p->method.ptr, m, p->method.len);
}

static void test_requests(void **state)
{
    (void)state;
    psyc_packet p;
    const char *cond;
    assert_int_equal(request("<presence from='alice@a.test/x' to='*lab@b.test/Al'><x xmlns='" MUC_NS "'/></presence>",
                             "Al", &p, &cond),
                     MUC_REQ_ENTER);
    assert_method(&p, "_request_enter");
    assert_string_equal(var(&p, "_source"), ALICE);
    assert_string_equal(var(&p, "_target"), PLACE);
    assert_string_equal(var(&p, "_nick"), "Al");
    psyc_packet_free(&p);
    /* XEP-0045 §7.2.13 history limits as psyced's _amount_history */
    assert_int_equal(request("<presence to='*lab@b.test/Al'><x xmlns='" MUC_NS "'><history maxstanzas='3'/></x>"
                             "</presence>",
                             "Al", &p, &cond),
                     MUC_REQ_ENTER);
    assert_string_equal(var(&p, "_amount_history"), "3");
    psyc_packet_free(&p);
    assert_int_equal(request("<presence to='*lab@b.test/Al'><x xmlns='" MUC_NS "'><history maxchars='0'/></x>"
                             "</presence>",
                             "Al", &p, &cond),
                     MUC_REQ_ENTER);
    assert_string_equal(var(&p, "_amount_history"), "0");
    psyc_packet_free(&p);
    /* an error from the occupant's side: a ghost leaves */
    assert_int_equal(request("<presence type='error' to='*lab@b.test/Al'/>", "Al", &p, &cond), MUC_REQ_LEAVE);
    psyc_packet_free(&p);
    assert_int_equal(request("<message type='error' to='*lab@b.test/Al'/>", "Al", &p, &cond), MUC_REQ_LEAVE);
    psyc_packet_free(&p);
    assert_int_equal(request("<presence to='*lab@b.test'/>", NULL, &p, &cond), MUC_REQ_ERROR);
    assert_string_equal(cond, "jid-malformed");
    psyc_packet_free(&p);
    assert_int_equal(request("<presence type='unavailable' to='*lab@b.test/Al'/>", "Al", &p, &cond), MUC_REQ_LEAVE);
    assert_method(&p, "_request_leave");
    psyc_packet_free(&p);
    assert_int_equal(request("<presence type='subscribe' to='*lab@b.test'/>", NULL, &p, &cond), MUC_REQ_NONE);
    psyc_packet_free(&p);
    assert_int_equal(request("<message type='groupchat' to='*lab@b.test'><body>hi all</body></message>", NULL, &p,
                             &cond),
                     MUC_REQ_PUBLIC);
    assert_method(&p, "_message_public");
    assert_memory_equal(p.data.ptr, "hi all", 6);
    psyc_packet_free(&p);
    assert_int_equal(request("<message type='groupchat' to='*lab@b.test'><body>/me waves</body></message>", NULL, &p,
                             &cond),
                     MUC_REQ_PUBLIC);
    assert_string_equal(var(&p, "_action"), "waves");
    psyc_packet_free(&p);
    assert_int_equal(request("<message type='groupchat' to='*lab@b.test'><subject>news</subject></message>", NULL,
                             &p, &cond),
                     MUC_REQ_TOPIC);
    assert_method(&p, "_request_set_topic");
    assert_string_equal(var(&p, "_topic"), "news");
    psyc_packet_free(&p);
    assert_int_equal(request("<message type='chat' to='*lab@b.test/Bob'><body>psst</body></message>", "Bob", &p,
                             &cond),
                     MUC_REQ_PRIVATE);
    assert_method(&p, "_message_private");
    assert_string_equal(var(&p, "_nick_target"), "Bob");
    psyc_packet_free(&p);
    assert_int_equal(request("<message type='groupchat' to='*lab@b.test/Bob'><body>x</body></message>", "Bob", &p,
                             &cond),
                     MUC_REQ_ERROR);
    assert_string_equal(cond, "bad-request");
    psyc_packet_free(&p);
    assert_int_equal(request("<iq type='set' id='k1' to='*lab@b.test'><query xmlns='" MUC_NS_ADMIN
                             "'><item nick='Bob' role='none'><reason>spam</reason></item></query></iq>",
                             NULL, &p, &cond),
                     MUC_REQ_KICK);
    assert_method(&p, "_request_kick");
    assert_string_equal(var(&p, "_nick_target"), "Bob");
    assert_string_equal(var(&p, "_reason"), "spam");
    assert_string_equal(var(&p, "_tag"), "k1");
    psyc_packet_free(&p);
    assert_int_equal(request("<iq type='set' id='b1' to='*lab@b.test'><query xmlns='" MUC_NS_ADMIN
                             "'><item affiliation='outcast' jid='bob@a.test'/></query></iq>",
                             NULL, &p, &cond),
                     MUC_REQ_BAN);
    assert_string_equal(var(&p, "_uniform_target"), BOB);
    psyc_packet_free(&p);
}

/* XEP-0045 §6.4: the room's disco#info. */
static void test_disco_info(void **state)
{
    (void)state;
    xml_node *iq = parse("<iq type='get' id='d1' from='alice@a.test/pc' to='*lab@b.test'>"
                         "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    xml_node *r = muc_disco_info(iq, "lab");
    assert_non_null(r);
    assert_string_equal(xml_attr_get(r, "type"), "result");
    assert_string_equal(xml_attr_get(r, "id"), "d1");
    assert_string_equal(xml_attr_get(r, "from"), "*lab@b.test");
    const xml_node *q = xml_child(r, "query", NULL), *id = xml_child(q, "identity", NULL);
    assert_string_equal(xml_attr_get(id, "category"), "conference");
    assert_string_equal(xml_attr_get(xml_child(q, "feature", NULL), "var"), MUC_NS);
    xml_node_free(r);
    xml_node_free(iq);
    iq = parse("<iq type='get' from='a@a.test/x' to='*lab@b.test'><query xmlns='jabber:iq:version'/></iq>");
    assert_null(muc_disco_info(iq, "lab"));
    xml_node_free(iq);
}

/* An XMPP MUC room as a place: its stanzas as the casts. */
static void room_cast(const char *xml, const char *method, const char *nick)
{
    xml_node *st = parse(xml);
    psyc_packet p;
    psyc_packet_init(&p);
    assert_int_equal(muc_from_room(st, "psyc://conf.a.test/@r", "psyc://conf.a.test/@r", &p), method ? 1 : 0);
    if (method) {
        assert_method(&p, method);
        assert_string_equal(var(&p, "_context"), "psyc://conf.a.test/@r");
        if (nick)
            assert_string_equal(var(&p, "_nick"), nick);
    }
    psyc_packet_free(&p);
    xml_node_free(st);
}

static void test_from_room(void **state)
{
    (void)state;
    room_cast("<message type='groupchat' from='r@conf.a.test/Al'><body>hi</body></message>", "_message_public", "Al");
    room_cast("<message type='groupchat' from='r@conf.a.test/Al'><subject>t</subject></message>", "_notice_place_topic",
              "Al");
    room_cast("<presence from='r@conf.a.test/Al'/>", "_notice_place_enter", "Al");
    room_cast("<presence type='unavailable' from='r@conf.a.test/Al'/>", "_notice_place_leave", "Al");
    room_cast("<presence type='unavailable' from='r@conf.a.test/Al'><x xmlns='" MUC_NS_USER
              "'><item nick='Bo'/><status code='303'/></x></presence>",
              "_notice_place_nick", "Al");
    room_cast("<presence type='unavailable' from='r@conf.a.test/Al'><x xmlns='" MUC_NS_USER
              "'><status code='307'/></x></presence>",
              "_notice_place_leave_kick", "Al");
    room_cast("<presence type='unavailable' from='r@conf.a.test/Al'><x xmlns='" MUC_NS_USER
              "'><status code='301'/></x></presence>",
              "_notice_place_leave_ban", "Al");
    room_cast("<message type='chat' from='r@conf.a.test/Al'><body>x</body></message>", NULL, NULL);
    /* history: XEP-0203 delay as _time_place, /me as _action */
    xml_node *st = parse("<message type='groupchat' from='r@conf.a.test/Al'><body>/me waves</body>"
                         "<delay xmlns='urn:xmpp:delay' stamp='2026-11-25T03:47:42Z'/></message>");
    psyc_packet p;
    psyc_packet_init(&p);
    assert_int_equal(muc_from_room(st, "psyc://conf.a.test/@r", "psyc://b.test/~bob", &p), 1);
    assert_string_equal(var(&p, "_time_place"), "1795578462");
    assert_string_equal(var(&p, "_action"), "waves");
    assert_string_equal(var(&p, "_source_relay"), "psyc://b.test/~bob");
    psyc_packet_free(&p);
    xml_node_free(st);
}

/* What the place sends (routing/place.c), through muc_to_xmpp, for the
 * occupant `who` (full JID `to`). */
static void show(const place_outs *o, const char *who, const char *to, const char *nick, muc_stanzas *out)
{
    muc_view v = {.map = &natural, .room = ROOM, .to = to, .self = who, .nick = nick};
    for (size_t i = 0; i < o->n; i++) {
        char target[256] = "";
        psyc_str t;
        if (psyc_packet_get(&o->v[i].p, "_target", &t))
            snprintf(target, sizeof target, "%.*s", (int)t.len, t.ptr);
        if (o->v[i].cast || strcmp(target, who) == 0)
            assert_true(muc_to_xmpp(&v, &o->v[i].p, out) >= 0);
    }
}

static int has_code(const xml_node *st, const char *code)
{
    const xml_node *x = xml_child(st, "x", MUC_NS_USER);
    for (const xml_node *s = x ? xml_child(x, "status", NULL) : NULL; s; s = xml_next(s, "status", NULL))
        if (strcmp(xml_attr_get(s, "code"), code) == 0)
            return 1;
    return 0;
}

static const xml_node *item_of(const xml_node *st)
{
    const xml_node *x = xml_child(st, "x", MUC_NS_USER);
    return x ? xml_child(x, "item", NULL) : NULL;
}

static void enter(place_room *pl, const char *uni, const char *nick, place_outs *o)
{
    psyc_packet p;
    psyc_packet_init(&p);
    psyc_packet_routing_c(&p, "_source", uni);
    psyc_packet_routing_c(&p, "_target", PLACE);
    psyc_packet_entity_c(&p, "_nick", nick);
    psyc_packet_set_method(&p, PSYC_STR_LIT("_request_enter"));
    assert_int_equal(place_handle(pl, &p, 1795578462, o), 1);
    psyc_packet_free(&p);
}

static void say(place_room *pl, const char *uni, const char *text, place_outs *o)
{
    psyc_packet p;
    psyc_packet_init(&p);
    psyc_packet_routing_c(&p, "_source", uni);
    psyc_packet_routing_c(&p, "_target", PLACE);
    psyc_packet_set_method(&p, PSYC_STR_LIT("_message_public"));
    psyc_packet_set_data(&p, psyc_str_c(text));
    assert_int_equal(place_handle(pl, &p, 1795578462, o), 1);
    psyc_packet_free(&p);
}

/* XEP-0045 §7.2: others' presence, self-presence (110, 100, 170), history
 * with <delay/>, subject; lookalikes flagged. */
static void test_join_burst(void **state)
{
    (void)state;
    place_room *pl = place_new(PLACE, 10);
    place_outs o = {0};
    enter(pl, "psyc://c.test/~carol", "Alice", &o);
    place_outs_free(&o);
    say(pl, "psyc://c.test/~carol", "earlier", &o);
    place_outs_free(&o);
    enter(pl, BOB, "bob", &o);
    place_outs_free(&o);
    enter(pl, ALICE, "alice", &o);
    muc_stanzas s = {0};
    /* Carried to alice: the cast of her own enter is not shown to her by
     * the gateway (it waits for the echo), so skip it here too. */
    place_outs mine = o;
    mine.v++;
    mine.n--;
    show(&mine, ALICE, "alice@a.test/pc", "alice", &s);
    assert_int_equal(s.n, 5);
    assert_string_equal(s.v[0]->name, "presence");
    assert_string_equal(xml_attr_get(s.v[0], "from"), ROOM "/Alice");
    assert_string_equal(xml_attr_get(s.v[0], "to"), "alice@a.test/pc");
    assert_string_equal(xml_attr_get(item_of(s.v[0]), "affiliation"), "owner");
    assert_string_equal(xml_attr_get(item_of(s.v[0]), "role"), "moderator");
    assert_string_equal(xml_attr_get(item_of(s.v[0]), "jid"), "carol@c.test");
    /* issue 6: Alice and alice are two occupants, both flagged */
    size_t len;
    assert_string_equal(xml_elem_text(xml_child(s.v[0], "status", NULL), &len), "lookalike of alice");
    assert_string_equal(xml_attr_get(s.v[1], "from"), ROOM "/bob");
    assert_null(xml_child(s.v[1], "status", NULL));
    assert_string_equal(xml_attr_get(item_of(s.v[1]), "role"), "participant");
    /* self-presence last among the presences */
    assert_string_equal(xml_attr_get(s.v[2], "from"), ROOM "/alice");
    assert_true(has_code(s.v[2], "110"));
    assert_true(has_code(s.v[2], "100"));
    assert_true(has_code(s.v[2], "170"));
    assert_string_equal(xml_attr_get(item_of(s.v[2]), "jid"), "alice@a.test/pc");
    /* history, then the subject */
    assert_string_equal(s.v[3]->name, "message");
    assert_string_equal(xml_attr_get(s.v[3], "type"), "groupchat");
    assert_string_equal(xml_attr_get(s.v[3], "from"), ROOM "/Alice");
    assert_string_equal(xml_elem_text(xml_child(s.v[3], "body", NULL), &len), "earlier");
    const xml_node *d = xml_child(s.v[3], "delay", "urn:xmpp:delay");
    assert_non_null(d);
    assert_string_equal(xml_attr_get(d, "stamp"), "2026-11-25T03:47:42Z");
    assert_non_null(xml_child(s.v[4], "subject", NULL));
    assert_null(xml_child(s.v[4], "body", NULL));
    muc_stanzas_free(&s);

    /* bob sees alice come in, flagged from the notice */
    show(&(place_outs){o.v, 1, 1}, BOB, "bob@a.test/x", "bob", &s);
    assert_int_equal(s.n, 1);
    assert_string_equal(xml_attr_get(s.v[0], "from"), ROOM "/alice");
    assert_false(has_code(s.v[0], "110"));
    assert_string_equal(xml_elem_text(xml_child(s.v[0], "status", NULL), &len), "lookalike of Alice");
    muc_stanzas_free(&s);
    place_outs_free(&o);

    /* groupchat */
    say(pl, BOB, "hello", &o);
    show(&o, ALICE, "alice@a.test/pc", "alice", &s);
    assert_int_equal(s.n, 1);
    assert_string_equal(xml_attr_get(s.v[0], "from"), ROOM "/bob");
    assert_null(xml_child(s.v[0], "delay", NULL));
    muc_stanzas_free(&s);
    place_outs_free(&o);
    place_free(pl);
}

static void test_changes(void **state)
{
    (void)state;
    place_room *pl = place_new(PLACE, 0);
    place_outs o = {0};
    muc_stanzas s = {0};
    size_t len;
    enter(pl, ALICE, "alice", &o);
    enter(pl, BOB, "bob", &o);
    place_outs_free(&o);
    /* nick change: 303 with the new nick, then the new presence */
    enter(pl, BOB, "robert", &o);
    show(&o, BOB, "bob@a.test/x", "bob", &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(xml_attr_get(s.v[0], "type"), "unavailable");
    assert_string_equal(xml_attr_get(s.v[0], "from"), ROOM "/bob");
    assert_true(has_code(s.v[0], "303"));
    assert_true(has_code(s.v[0], "110"));
    assert_string_equal(xml_attr_get(item_of(s.v[0]), "nick"), "robert");
    assert_string_equal(xml_attr_get(s.v[1], "from"), ROOM "/robert");
    assert_null(xml_attr_get(s.v[1], "type"));
    muc_stanzas_free(&s);
    place_outs_free(&o);
    /* whisper */
    psyc_packet p;
    psyc_packet_init(&p);
    psyc_packet_routing_c(&p, "_source", ALICE);
    psyc_packet_routing_c(&p, "_target", PLACE);
    psyc_packet_entity_c(&p, "_nick_target", "robert");
    psyc_packet_set_method(&p, PSYC_STR_LIT("_message_private"));
    psyc_packet_set_data(&p, PSYC_STR_LIT("psst"));
    place_handle(pl, &p, 0, &o);
    psyc_packet_free(&p);
    show(&o, BOB, "bob@a.test/x", "robert", &s);
    assert_int_equal(s.n, 1);
    assert_string_equal(xml_attr_get(s.v[0], "type"), "chat");
    assert_string_equal(xml_attr_get(s.v[0], "from"), ROOM "/alice");
    assert_non_null(xml_child(s.v[0], "x", MUC_NS_USER));
    muc_stanzas_free(&s);
    place_outs_free(&o);
    /* kick by the owner: 307 (and 110 for the kicked), iq result */
    psyc_packet_init(&p);
    psyc_packet_routing_c(&p, "_source", ALICE);
    psyc_packet_routing_c(&p, "_target", PLACE);
    psyc_packet_routing_c(&p, "_tag", "k1");
    psyc_packet_entity_c(&p, "_nick_target", "robert");
    psyc_packet_set_method(&p, PSYC_STR_LIT("_request_kick"));
    place_handle(pl, &p, 0, &o);
    psyc_packet_free(&p);
    show(&o, BOB, "bob@a.test/x", "robert", &s);
    assert_int_equal(s.n, 1);
    assert_true(has_code(s.v[0], "307"));
    assert_true(has_code(s.v[0], "110"));
    assert_string_equal(xml_attr_get(item_of(s.v[0]), "role"), "none");
    assert_string_equal(xml_attr_get(xml_child(item_of(s.v[0]), "actor", NULL), "nick"), "alice");
    muc_stanzas_free(&s);
    show(&o, ALICE, "alice@a.test/pc", "alice", &s);
    assert_int_equal(s.n, 2);
    assert_false(has_code(s.v[0], "110"));
    assert_string_equal(s.v[1]->name, "iq");
    assert_string_equal(xml_attr_get(s.v[1], "type"), "result");
    assert_string_equal(xml_attr_get(s.v[1], "id"), "k1");
    muc_stanzas_free(&s);
    place_outs_free(&o);
    /* an error while joining: a presence error from room/nick */
    enter(pl, "psyc://c.test/~x", "alice", &o);
    muc_view v = {.map = &natural, .room = ROOM, .to = "x@c.test/r", .self = "psyc://c.test/~x", .nick = "alice",
                  .joining = 1};
    assert_int_equal(muc_to_xmpp(&v, &o.v[0].p, &s), 1);
    assert_string_equal(s.v[0]->name, "presence");
    assert_string_equal(xml_attr_get(s.v[0], "type"), "error");
    assert_string_equal(xml_attr_get(s.v[0], "from"), ROOM "/alice");
    assert_non_null(xml_child(xml_child(s.v[0], "error", NULL), "conflict", NULL));
    assert_string_equal(xml_elem_text(xml_child(xml_child(s.v[0], "error", NULL), "text", NULL), &len),
                        "The nick is in use in lab.");
    muc_stanzas_free(&s);
    place_outs_free(&o);
    place_free(pl);
}

/* A room of 5000: the burst is 5000 presences, self last, then subject. */
static void test_big_burst(void **state)
{
    (void)state;
    place_room *pl = place_new(PLACE, 0);
    place_outs o = {0};
    char uni[64], nick[32];
    for (int i = 0; i < 4999; i++) {
        snprintf(uni, sizeof uni, "psyc://h%d.test/~u%d", i % 50, i);
        snprintf(nick, sizeof nick, i == 17 ? "Alice" : "u%d", i);
        enter(pl, uni, nick, &o);
        place_outs_free(&o);
    }
    enter(pl, ALICE, "alice", &o);
    place_outs mine = {o.v + 1, o.n - 1, 0};
    muc_stanzas s = {0};
    show(&mine, ALICE, "alice@a.test/pc", "alice", &s);
    assert_int_equal(s.n, 5001);
    for (size_t i = 0; i < 4999; i++)
        assert_false(has_code(s.v[i], "110"));
    assert_true(has_code(s.v[4999], "110"));
    assert_non_null(xml_child(s.v[5000], "subject", NULL));
    size_t len;
    assert_string_equal(xml_elem_text(xml_child(s.v[17], "status", NULL), &len), "lookalike of alice");
    muc_stanzas_free(&s);
    place_outs_free(&o);
    place_free(pl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_disco_info),
        cmocka_unit_test(test_from_room),
        cmocka_unit_test(test_join_burst),
        cmocka_unit_test(test_changes),
        cmocka_unit_test(test_big_burst),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
