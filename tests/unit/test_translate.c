/*
 * test_translate.c: stanza <-> packet translation (routing/translate.h):
 * the tables of PSYC.md §4.3-§4.5 one by one, XMPP -> PSYC -> XMPP round
 * trips (unknown payload included) in both address modes, psyced's own
 * packets, errors by keyword inheritance, and refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helper_files.h"
#include "helper_stanza.h"
#include "routing/translate.h"

static const addr_map natural = {.mode = ADDR_MODE_NATURAL};
static const addr_map transport = {.mode = ADDR_MODE_TRANSPORT, .gw_host = "gw.example.net", .transport = "psyc.example.org"};

#define parse ts_parse
#define text_of ts_text
#define to_packet ts_to_packet
#define expect_var ts_expect_var
#define expect_method ts_expect_method
#define round_trip ts_round_trip

static void expect_no_var(const psyc_packet *p, const char *name)
{
    psyc_str v;
    assert_false(psyc_packet_get(p, name, &v));
}

static void test_messages(void **state)
{
    (void)state;
    psyc_packet p;
    to_packet(&natural,
              "<message from='alice@a.example/home' to='bob@b.example' type='chat' id='m1'>"
              "<body>hi bob</body></message>",
              &p);
    expect_method(&p, "_message_private");
    expect_var(&p, "_source", "psyc://a.example/~alice");
    expect_var(&p, "_resource_source", "home");
    expect_var(&p, "_target", "psyc://b.example/~bob");
    expect_var(&p, "_tag", "m1");
    assert_true(psyc_str_eq_c(p.data, "hi bob"));
    expect_no_var(&p, "_jabber_XML");
    psyc_packet_free(&p);

    to_packet(&natural, "<message from='a@a.example' to='b@b.example'><body>/me waves</body></message>",
              &p);
    expect_method(&p, "_message_private_normal");
    expect_var(&p, "_action", "waves");
    assert_int_equal(p.data.len, 0);
    psyc_packet_free(&p);

    to_packet(&natural,
              "<message from='a@a.example' to='b@b.example' type='chat'>"
              "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
              &p);
    expect_method(&p, "_notice_typing_composing");
    expect_no_var(&p, "_jabber_XML");
    psyc_packet_free(&p);

    /* A groupchat message from an occupant: the place is the context. */
    to_packet(&natural,
              "<message from='*lobby@a.example/Zoe' to='b@b.example' type='groupchat'>"
              "<body>hello all</body></message>",
              &p);
    expect_method(&p, "_message_public");
    expect_var(&p, "_context", "psyc://a.example/@lobby");
    expect_var(&p, "_nick", "Zoe");
    expect_no_var(&p, "_source");
    psyc_packet_free(&p);

    to_packet(&natural,
              "<message from='b@b.example/x' to='*lobby@a.example' type='groupchat'>"
              "<subject>New topic</subject></message>",
              &p);
    expect_method(&p, "_request_set_topic");
    expect_var(&p, "_topic", "New topic");
    psyc_packet_free(&p);

    /* Unknown payload rides along as XML (DESIGN.md §3). */
    to_packet(&natural,
              "<message from='a@a.example' to='b@b.example' type='chat'><body>x</body>"
              "<html xmlns='http://jabber.org/protocol/xhtml-im'><body "
              "xmlns='http://www.w3.org/1999/xhtml'><b>x</b></body></html></message>",
              &p);
    expect_var(&p, "_jabber_XML",
               "<html xmlns='http://jabber.org/protocol/xhtml-im'><body "
               "xmlns='http://www.w3.org/1999/xhtml'><b>x</b></body></html>");
    psyc_packet_free(&p);
}

static void test_presence(void **state)
{
    (void)state;
    static const struct {
        const char *show, *method, *degree;
    } rows[] = {
        {NULL, "_notice_presence_here", "7"},
        {"chat", "_notice_presence_here_talkative", "8"},
        {"dnd", "_notice_presence_here_busy", "6"},
        {"away", "_notice_presence_away", "3"},
        {"xa", "_notice_presence_absent_vacation", "2"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char st[300];
        snprintf(st, sizeof st, "<presence from='a@a.example/r' to='b@b.example'>%s%s%s"
                 "<status>at work</status><priority>5</priority></presence>",
                 rows[i].show ? "<show>" : "", rows[i].show ? rows[i].show : "",
                 rows[i].show ? "</show>" : "");
        psyc_packet p;
        to_packet(&natural, st, &p);
        expect_method(&p, rows[i].method);
        expect_var(&p, "_degree_availability", rows[i].degree);
        expect_var(&p, "_description_presence", "at work");
        expect_var(&p, "_degree_priority", "5");
        psyc_packet_free(&p);
        round_trip(&natural, st);
    }
    psyc_packet p;
    to_packet(&natural, "<presence from='a@a.example/r' to='b@b.example' type='unavailable'/>", &p);
    expect_method(&p, "_notice_presence_absent");
    expect_var(&p, "_degree_availability", "1");
    psyc_packet_free(&p);
    to_packet(&natural, "<presence from='a@a.example' to='b@b.example' type='probe'/>", &p);
    expect_method(&p, "_request_status_person");
    psyc_packet_free(&p);
    to_packet(&natural,
              "<presence from='a@a.example/r' to='b@b.example'><show>away</show>"
              "<delay xmlns='urn:xmpp:delay' stamp='2026-11-25T07:00:00Z'/></presence>",
              &p);
    expect_method(&p, "_status_presence_away");
    psyc_packet_free(&p);
    static const char *const subs[][2] = {{"subscribe", "_request_friendship"},
                                          {"subscribed", "_notice_friendship_established"},
                                          {"unsubscribe", "_notice_friendship_removed_request"},
                                          {"unsubscribed", "_notice_friendship_removed"}};
    for (size_t i = 0; i < 4; i++) {
        char st[200];
        snprintf(st, sizeof st, "<presence from='a@a.example' to='b@b.example' type='%s'/>", subs[i][0]);
        to_packet(&natural, st, &p);
        expect_method(&p, subs[i][1]);
        psyc_packet_free(&p);
        round_trip(&natural, st);
    }
}

static void test_round_trips(void **state)
{
    (void)state;
    static const char *const stanzas[] = {
        "<message from='alice@a.example/home' to='bob@b.example/phone' type='chat' id='x1' "
        "xml:lang='en'><body>hi &amp; &lt;bye&gt;</body>"
        "<active xmlns='http://jabber.org/protocol/chatstates'/>"
        "<request xmlns='urn:xmpp:receipts'/></message>",
        "<message from='a@a.example' to='b@b.example'><body>plain</body><thread>t1</thread></message>",
        "<message from='a@a.example' to='b@b.example' type='headline'><body>news</body>"
        "<subject>s</subject></message>",
        "<message from='a@a.example' to='b@b.example' type='chat'><body>/me dances</body></message>",
        "<message from='a@a.example' to='b@b.example' type='chat'>"
        "<gone xmlns='http://jabber.org/protocol/chatstates'/></message>",
        "<message from='*room@a.example/Nick' to='b@b.example/r' type='groupchat'>"
        "<body>hey</body><delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/></message>",
        "<message from='b@b.example/r' to='*room@a.example' type='groupchat'><body>hey</body></message>",
        "<message from='*room@a.example/Nick' to='b@b.example/r' type='groupchat'>"
        "<subject>topic</subject></message>",
        "<presence from='a@a.example/r' to='b@b.example'><show>dnd</show><status>busy</status>"
        "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>",
        "<presence from='a@a.example/r' to='b@b.example' type='unavailable'><status>bye</status></presence>",
        "<presence from='a@a.example/r' to='b@b.example'><show>xa</show>"
        "<mood xmlns='http://jabber.org/protocol/mood'><happy/><text>yay</text></mood></presence>",
        /* iq crosses whole: requests, results, errors */
        "<iq from='a@a.example/r' to='b@b.example' type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>",
        "<iq from='b@b.example' to='a@a.example/r' type='result' id='v1'><vCard xmlns='vcard-temp'>"
        "<FN>Bob</FN><NICKNAME>bobby</NICKNAME></vCard></iq>",
        "<iq from='a@a.example/r' to='b@b.example/x' type='set' id='s1'><query xmlns='urn:example'>"
        "<item a='1'/></query></iq>",
        "<iq from='b@b.example/x' to='a@a.example/r' type='error' id='s1'><query xmlns='urn:example'/>"
        "<error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "</error></iq>",
        "<iq from='b@b.example/x' to='a@a.example/r' type='result' id='p1'/>",
        /* XEP-0184 receipts are PSYC delivery echoes */
        "<message from='b@b.example/x' to='a@a.example/r' id='r1'>"
        "<received xmlns='urn:xmpp:receipts' id='m1'/></message>",
    };
    for (size_t i = 0; i < sizeof stanzas / sizeof stanzas[0]; i++) {
        round_trip(&natural, stanzas[i]);
    }
    /* Transport mode: the same messages between local users and PSYC
     * people under the component domain. */
    round_trip(&transport,
               "<message from='alice@example.org/home' to='nick%psyced.org@psyc.example.org' "
               "type='chat'><body>hello psyc</body></message>");
    round_trip(&transport,
               "<presence from='nick%psyced.org@psyc.example.org' to='alice@example.org'>"
               "<show>chat</show></presence>");
}

static void test_receipts(void **state)
{
    (void)state;
    psyc_packet p;
    to_packet(&natural, "<message from='b@b.example/x' to='a@a.example/r' id='r1'>"
                        "<received xmlns='urn:xmpp:receipts' id='m1'/></message>", &p);
    expect_method(&p, "_message_echo_private");
    expect_var(&p, "_tag_relay", "m1");
    psyc_packet_free(&p);
    /* A delivery echo from PSYC that names the message becomes a receipt. */
    psyc_packet_init(&p);
    psyc_packet_routing_c(&p, "_source", "psyc://psyced.org/~bob");
    psyc_packet_routing_c(&p, "_target", "psyc://psyced.org/~carol");
    psyc_packet_routing_c(&p, "_tag_relay", "m7");
    psyc_packet_set_method(&p, psyc_str_c("_message_echo_private"));
    psyc_packet_set_data(&p, psyc_str_c("hello carol"));
    xml_node *st = NULL;
    assert_int_equal(translate_to_xmpp(&natural, &p, &st), TRANSLATE_OK);
    assert_string_equal(text_of(st), "<message from='bob@psyced.org' to='carol@psyced.org'>"
                                     "<received xmlns='urn:xmpp:receipts' id='m7'/></message>");
    xml_node_free(st);
    psyc_packet_free(&p);
}

/* A presence made into a context multicast and fanned out to one
 * subscriber comes out as the original stanza to that subscriber. */
static void test_multicast(void **state)
{
    (void)state;
    psyc_packet p, mc;
    to_packet(&natural,
              "<presence from='alice@a.example/home' to='bob@b.example'><show>away</show></presence>", &p);
    psyc_packet_init(&mc);
    assert_int_equal(translate_as_multicast(&p, &mc), 0);
    expect_var(&mc, "_context", "psyc://a.example/~alice");
    expect_var(&mc, "_source_relay", "psyc://a.example/~alice");
    expect_no_var(&mc, "_target");
    expect_no_var(&mc, "_source");
    expect_method(&mc, "_notice_presence_away");
    xml_node *st = NULL;
    assert_int_equal(translate_to_xmpp_for(&natural, &mc, "psyc://b.example/~carol", &st), TRANSLATE_OK);
    assert_string_equal(text_of(st), "<presence from='alice@a.example/home' to='carol@b.example'>"
                                     "<show>away</show></presence>");
    xml_node_free(st);
    psyc_packet_free(&mc);
    psyc_packet_free(&p);
}

static void test_iq(void **state)
{
    (void)state;
    psyc_packet p;
    to_packet(&natural,
              "<iq from='a@a.example/r' to='b@b.example' type='get' id='v1'>"
              "<query xmlns='jabber:iq:version'/></iq>",
              &p);
    /* psyced's name for it (translate_iq.c, tested in test_translate_iq.c),
     * the iq content kept whole. */
    expect_method(&p, "_request_version");
    expect_var(&p, "_tag", "v1");
    expect_var(&p, "_jabber_XML", "<query xmlns='jabber:iq:version'/>");
    psyc_packet_free(&p);
    to_packet(&natural, "<iq from='b@b.example' to='a@a.example/r' type='result' id='v1'/>", &p);
    expect_method(&p, "_echo_ping");
    expect_var(&p, "_tag_relay", "v1");
    expect_var(&p, "_tag_reply", "v1");
    expect_no_var(&p, "_tag");
    psyc_packet_free(&p);
    /* What psyced has no name for crosses as _jabber_iq_<type>. */
    to_packet(&natural,
              "<iq from='a@a.example/r' to='b@b.example/x' type='get' id='q1'>"
              "<query xmlns='urn:example'/></iq>",
              &p);
    expect_method(&p, "_jabber_iq_get");
    expect_var(&p, "_tag", "q1");
    psyc_packet_free(&p);
}

static void test_errors(void **state)
{
    (void)state;
    psyc_packet p;
    to_packet(&natural,
              "<message from='b@b.example' to='a@a.example' type='error' id='m1'><error type='cancel'>"
              "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
              "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>nobody home</text></error></message>",
              &p);
    expect_method(&p, "_failure_unavailable_service");
    expect_var(&p, "_tag_relay", "m1");
    assert_true(psyc_str_eq_c(p.data, "nobody home"));
    xml_node *back = NULL;
    assert_int_equal(translate_to_xmpp(&natural, &p, &back), TRANSLATE_OK);
    assert_string_equal(text_of(back),
                        "<message from='b@b.example' to='a@a.example' type='error' id='m1'>"
                        "<error type='cancel'><service-unavailable "
                        "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
                        "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>nobody home</text></error></message>");
    xml_node_free(back);
    psyc_packet_free(&p);

    /* psyced's methods find their condition by keyword inheritance. */
    const char *type = NULL;
    assert_string_equal(translate_error_condition(psyc_str_c("_error_unknown_name_user"), &type),
                        "item-not-found");
    assert_string_equal(type, "cancel");
    assert_string_equal(
        translate_error_condition(psyc_str_c("_failure_unsuccessful_delivery_death"), &type),
        "recipient-unavailable");
    assert_string_equal(type, "wait");
    assert_string_equal(translate_error_condition(psyc_str_c("_error_illegal_uniform"), NULL),
                        "jid-malformed");
    assert_string_equal(translate_error_condition(psyc_str_c("_error_whatever"), &type),
                        "undefined-condition");
    assert_string_equal(type, "modify");
    assert_string_equal(translate_error_condition(psyc_str_c("_failure_x"), &type), "undefined-condition");
    assert_string_equal(type, "cancel");
    assert_string_equal(translate_error_method("remote-server-timeout", "wait"),
                        "_failure_unsuccessful_delivery_timeout");
    assert_string_equal(translate_error_method("made-up", "modify"), "_error");
    assert_string_equal(translate_error_method(NULL, "wait"), "_failure");
    /* Every condition of the table survives the trip. */
    static const char *const conds[] = {"bad-request", "conflict", "feature-not-implemented",
                                        "forbidden", "gone", "internal-server-error",
                                        "item-not-found", "jid-malformed", "not-acceptable",
                                        "not-allowed", "not-authorized", "policy-violation",
                                        "recipient-unavailable", "redirect", "registration-required",
                                        "remote-server-not-found", "remote-server-timeout",
                                        "resource-constraint", "service-unavailable",
                                        "subscription-required", "unexpected-request"};
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++)
        assert_string_equal(translate_error_condition(psyc_str_c(translate_error_method(conds[i], NULL)),
                                                      NULL),
                            conds[i]);
}

/* Packets as psyced sends them become the stanzas of PSYC.md §4.5. */
static void test_from_psyced(void **state)
{
    (void)state;
    psyc_packet p;
    psyc_packet_init(&p);
    psyc_packet_routing_c(&p, "_source", "psyc://psyced.org/~bob");
    psyc_packet_routing_c(&p, "_target", "psyc://gw.example.net/~alice@example.org");
    psyc_packet_entity_c(&p, "_nick", "Bob");
    psyc_packet_set_method(&p, psyc_str_c("_message_private"));
    psyc_packet_set_data(&p, psyc_str_c("Hello [_nick], I am [_nick]."));
    xml_node *st = NULL;
    assert_int_equal(translate_to_xmpp(&transport, &p, &st), TRANSLATE_OK);
    assert_string_equal(text_of(st),
                        "<message from='bob%psyced.org@psyc.example.org' "
                        "to='alice@example.org' type='chat'><body>Hello Bob, I am Bob.</body></message>");
    xml_node_free(st);
    psyc_packet_free(&p);

    psyc_packet_init(&p);
    psyc_packet_routing_c(&p, "_source", "psyc://psyced.org/~bob");
    psyc_packet_routing_c(&p, "_target", "psyc://gw.example.net/~alice@example.org");
    psyc_packet_entity_c(&p, "_description_presence", "coding");
    psyc_packet_set_method(&p, psyc_str_c("_status_presence_here_busy"));
    assert_int_equal(translate_to_xmpp(&transport, &p, &st), TRANSLATE_OK);
    assert_string_equal(text_of(st),
                        "<presence from='bob%psyced.org@psyc.example.org' to='alice@example.org'>"
                        "<show>dnd</show><status>coding</status></presence>");
    xml_node_free(st);
    psyc_packet_free(&p);

    psyc_packet_init(&p);
    psyc_packet_routing_c(&p, "_source", "psyc://psyced.org/~bob");
    psyc_packet_routing_c(&p, "_target", "psyc://gw.example.net/~alice@example.org");
    psyc_packet_set_method(&p, psyc_str_c("_notice_friendship_removed_implied"));
    assert_int_equal(translate_to_xmpp(&transport, &p, &st), TRANSLATE_OK);
    assert_string_equal(xml_attr_get(st, "type"), "unsubscribed");
    xml_node_free(st);
    psyc_packet_free(&p);

    /* A broken payload is dropped, the message still goes out. */
    psyc_packet_init(&p);
    psyc_packet_routing_c(&p, "_source", "psyc://psyced.org/~bob");
    psyc_packet_routing_c(&p, "_target", "psyc://psyced.org/~carol");
    psyc_packet_entity_c(&p, "_jabber_XML", "<unclosed><x/>");
    psyc_packet_set_method(&p, psyc_str_c("_message_private"));
    psyc_packet_set_data(&p, psyc_str_c("still here"));
    assert_int_equal(translate_to_xmpp(&natural, &p, &st), TRANSLATE_OK);
    assert_string_equal(text_of(st), "<message from='bob@psyced.org' to='carol@psyced.org' type='chat'>"
                                     "<body>still here</body></message>");
    xml_node_free(st);
    psyc_packet_free(&p);
}

static void test_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *stanza;
        int rc;
        const char *cond;
    } rows[] = {
        {"<iq from='a@a.example' to='b@b.example' type='get'><query xmlns='urn:example'/></iq>",
         TRANSLATE_ERR_INVALID, "bad-request"},
        {"<iq from='a@a.example' to='b@b.example' type='result'/>", TRANSLATE_ERR_INVALID, NULL},
        {"<iq from='a@a.example' to='b@b.example' type='other' id='1'/>", TRANSLATE_ERR_INVALID, NULL},
        {"<foo from='a@a.example' to='b@b.example'/>", TRANSLATE_ERR_UNSUPPORTED, NULL},
        {"<message from='a@a.example' to='b@b.example' type='weird'><body>x</body></message>",
         TRANSLATE_ERR_INVALID, "bad-request"},
        {"<message to='b@b.example'><body>x</body></message>", TRANSLATE_ERR_ADDRESS, "jid-malformed"},
        {"<message from='a@a.example' to='b@[::1]'><body>x</body></message>", TRANSLATE_ERR_ADDRESS,
         "item-not-found"},
        {"<message from='a@a.example' to='b@[::1]' type='error'><error type='cancel'/></message>",
         TRANSLATE_ERR_ADDRESS, NULL},
        {"<presence from='a@a.example' to='b@b.example'><show>sleeping</show></presence>",
         TRANSLATE_ERR_INVALID, NULL},
        {"<presence from='a@a.example' to='b@b.example' type='weird'/>", TRANSLATE_IGNORE, NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        xml_node *st = parse(rows[i].stanza);
        psyc_packet p;
        psyc_packet_init(&p);
        const char *cond = "unset";
        int rc = translate_from_xmpp(&natural, st, &p, &cond);
        if (rc != rows[i].rc)
            fail_msg("%s: %s", rows[i].stanza, translate_strerror(rc));
        if (rows[i].cond)
            assert_string_equal(cond, rows[i].cond);
        else
            assert_null(cond);
        assert_null(p.method.ptr);
        psyc_packet_free(&p);
        xml_node_free(st);
    }
    psyc_packet p;
    psyc_packet_init(&p);
    xml_node *st = NULL;
    psyc_packet_routing_c(&p, "_source", "psyc://psyced.org/~bob");
    psyc_packet_set_method(&p, psyc_str_c("_message_private"));
    assert_int_equal(translate_to_xmpp(&natural, &p, &st), TRANSLATE_ERR_ADDRESS); /* no _target */
    psyc_packet_routing_c(&p, "_target", "psyc://psyced.org/~carol");
    psyc_packet_set_method(&p, psyc_str_c("_request_do_something"));
    assert_int_equal(translate_to_xmpp(&natural, &p, &st), TRANSLATE_ERR_UNSUPPORTED);
    assert_null(st);
    psyc_packet_free(&p);
}

/* Real psyced traffic (psyc-vectors/psyced-0.9-captures, PSYC.md §9)
 * becomes the stanzas a user of the gateway host should see. Multicasts
 * (no _target) are fanned out to psyc://127.0.0.2/~gw, as the router will. */
static void test_psyced_captures(void **state)
{
    (void)state;
    static const struct {
        const char *file, *want; /* want NULL: not translated (routing's business) */
    } rows[] = {
        {"2-message-private/08-in-_message_private.psyc09",
         "<message from='gw@127.0.0.2' to='alice@psyced.test' type='chat'>"
         "<body>hello alice, this is gw</body></message>"},
        {"2-message-private/09-out-_message_echo_private.psyc09", NULL},
        {"3-friendship-presence/13-out-_notice_presence_away_manual.psyc09",
         "<presence from='alice@psyced.test' to='gw@127.0.0.2'><show>away</show>"
         "<status>gone fishing</status></presence>"},
        {"3-friendship-presence/11-out-_request_friendship_implied.psyc09",
         "<presence from='alice@psyced.test' to='gw@127.0.0.2' type='subscribe'/>"},
        {"3-friendship-presence/16-out-_status_person_present.psyc09",
         "<presence from='alice@psyced.test' to='gw@127.0.0.2'/>"},
        {"3-friendship-presence/19-out-_notice_presence_absent.psyc09",
         "<presence from='alice@psyced.test' to='gw@127.0.0.2' type='unavailable'/>"},
        {"4-place/11-out-_message_public.psyc09",
         "<message from='*lab@psyced.test/alice' to='gw@127.0.0.2' type='groupchat'>"
         "<body>hello room from alice</body></message>"},
        {"4-place/16-out-_notice_place_topic.psyc09",
         "<message from='*lab@psyced.test/alice' to='gw@127.0.0.2' type='groupchat'>"
         "<subject>lab topic by alice</subject></message>"},
        {"4-place/26-out-_error_necessary_membership.psyc09",
         "<message from='*lab@psyced.test' to='gw@127.0.0.2' type='error'><error type='modify'>"
         "<undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>You need to enter Lab first.</text></error></message>"},
        {"1-circuit-greeting/05-in-_notice_circuit_established.psyc09", NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/psyc/psyced-0.9-captures/%s", VECTORS_DIR, rows[i].file);
        size_t len;
        char *bytes = tf_read_file(path, &len);
        if (!bytes)
            fail_msg("cannot read %s", path);
        psyc09_parser parser;
        psyc09_parser_init(&parser, NULL);
        psyc_packet p;
        psyc_packet_init(&p);
        size_t used;
        assert_int_equal(psyc09_parse_packet(&parser, bytes, len, &p, &used), 1);
        xml_node *st = NULL;
        int rc = translate_to_xmpp_for(&natural, &p, "psyc://127.0.0.2/~gw", &st);
        if (rows[i].want) {
            if (rc != TRANSLATE_OK)
                fail_msg("%s: %s", rows[i].file, translate_strerror(rc));
            assert_string_equal(text_of(st), rows[i].want);
        } else {
            assert_int_equal(rc, TRANSLATE_ERR_UNSUPPORTED);
        }
        xml_node_free(st);
        psyc_packet_free(&p);
        free(bytes);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages),   cmocka_unit_test(test_presence),
        cmocka_unit_test(test_round_trips), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_iq),         cmocka_unit_test(test_receipts),
        cmocka_unit_test(test_multicast),
        cmocka_unit_test(test_from_psyced), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_psyced_captures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
