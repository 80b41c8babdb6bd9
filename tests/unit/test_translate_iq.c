/*
 * test_translate_iq.c: iq and XEP-0107 mood in psyced's terms
 * (routing/translate_iq.c, routing/translate_mood.c): each protocol's
 * request and answer both ways, psyced's own packets (no _jabber_XML) into
 * stanzas, exact round trips between two psycgates, iq errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "helper_stanza.h"
#include "routing/translate.h"

static const addr_map natural = {.mode = ADDR_MODE_NATURAL};
static const addr_map transport = {.mode = ADDR_MODE_TRANSPORT, .gw_host = "gw.example.net", .transport = "psyc.example.org"};

#define to_packet ts_to_packet
#define expect_var ts_expect_var
#define expect_method ts_expect_method

/* XMPP -> PSYC (method, one variable) -> XMPP, the stanza exactly back. */
static void check_in(const addr_map *m, const char *stanza, const char *method, const char *var, const char *value)
{
    psyc_packet p;
    to_packet(m, stanza, &p);
    expect_method(&p, method);
    if (var)
        expect_var(&p, var, value);
    psyc_packet_free(&p);
    ts_round_trip(m, stanza);
}

static void test_requests_in(void **state)
{
    (void)state;
    static const struct {
        const char *child, *method;
    } gets[] = {
        {"<query xmlns='jabber:iq:version'/>", "_request_version"},
        {"<query xmlns='jabber:iq:last'/>", "_request_description_time"},
        {"<ping xmlns='urn:xmpp:ping'/>", "_request_ping"},
        {"<vCard xmlns='vcard-temp'/>", "_request_description_vCard"},
        {"<query xmlns='http://jabber.org/protocol/disco#info'/>", "_request_list_feature"},
        {"<query xmlns='http://jabber.org/protocol/disco#items'/>", "_request_list_item"},
    };
    for (size_t i = 0; i < sizeof gets / sizeof gets[0]; i++) {
        char st[512];
        snprintf(st, sizeof st, "<iq from='a@a.example/r' to='b@b.example/x' type='get' id='g%zu'>%s</iq>", i,
                 gets[i].child);
        check_in(&natural, st, gets[i].method, "_jabber_XML", gets[i].child);
        char tag[8];
        snprintf(tag, sizeof tag, "g%zu", i);
        psyc_packet p;
        to_packet(&transport, st + 0, &p); /* any address mode: the same method */
        psyc_packet_free(&p);
        to_packet(&natural, st, &p);
        expect_var(&p, "_tag", tag);
        psyc_packet_free(&p);
    }
    /* A disco node is psyced's _target_fragment. */
    check_in(&natural,
             "<iq from='a@a.example/r' to='b@b.example' type='get' id='n1'>"
             "<query xmlns='http://jabber.org/protocol/disco#info' node='urn:x'/></iq>",
             "_request_list_feature", "_target_fragment", "urn:x");
    /* A set psyced has no name for: whole, as before. */
    check_in(&natural,
             "<iq from='a@a.example/r' to='b@b.example/x' type='set' id='s1'>"
             "<query xmlns='jabber:iq:version'/></iq>",
             "_jabber_iq_set", "_tag", "s1");
}

static void test_answers_in(void **state)
{
    (void)state;
    psyc_packet p;
    static const char version[] = "<iq from='b@b.example/x' to='a@a.example/r' type='result' id='v1'>"
                                  "<query xmlns='jabber:iq:version'><name>Psi</name><version>1.5</version>"
                                  "<os>Linux</os></query></iq>";
    check_in(&natural, version, "_status_version", "_version", "1.5");
    to_packet(&natural, version, &p);
    expect_var(&p, "_version_description", "Psi");
    expect_var(&p, "_tag_relay", "v1");
    expect_var(&p, "_tag_reply", "v1");
    psyc_packet_free(&p);

    check_in(&natural,
             "<iq from='b@b.example' to='a@a.example/r' type='result' id='l1'>"
             "<query xmlns='jabber:iq:last' seconds='42'/></iq>",
             "_status_description_time", "_time_idle", "42");
    check_in(&natural, "<iq from='b@b.example/x' to='a@a.example/r' type='result' id='p1'/>", "_echo_ping",
             "_tag_relay", "p1");

    static const char vcard[] = "<iq from='b@b.example' to='a@a.example/r' type='result' id='c1'>"
                                "<vCard xmlns='vcard-temp'><FN>Bob Builder</FN><NICKNAME>bob</NICKNAME>"
                                "<URL>http://bob.example/</URL><BDAY>1970-01-01</BDAY></vCard></iq>";
    check_in(&natural, vcard, "_status_description_person", "_name", "Bob Builder");
    to_packet(&natural, vcard, &p);
    expect_var(&p, "_page", "http://bob.example/");
    expect_var(&p, "_nick", "bob");
    psyc_packet_free(&p);

    static const char info[] = "<iq from='b@b.example/x' to='a@a.example/r' type='result' id='d1'>"
                               "<query xmlns='http://jabber.org/protocol/disco#info'>"
                               "<identity category='account' type='registered' name='Bob'/>"
                               "<feature var='jabber:iq:version'/><feature var='urn:xmpp:ping'/></query></iq>";
    check_in(&natural, info, "_notice_list_feature_person", "_identity", "registered");
    to_packet(&natural, info, &p);
    expect_var(&p, "_name", "Bob");
    expect_var(&p, "_list_feature", "| jabber:iq:version| urn:xmpp:ping");
    psyc_packet_free(&p);
    check_in(&natural,
             "<iq from='b.example' to='a@a.example/r' type='result' id='d2'>"
             "<query xmlns='http://jabber.org/protocol/disco#items'><item jid='*r@b.example' name='R'/>"
             "<item jid='c@b.example'/></query></iq>",
             "_notice_list_item", "_list_item", "| *r@b.example| c@b.example");
    /* Transport mode, a PSYC person's answer to a local user. */
    check_in(&transport,
             "<iq from='bob%psyced.org@psyc.example.org' to='alice@example.org/home' type='result' id='v2'>"
             "<query xmlns='jabber:iq:version'><name>psyced</name><version>0.99</version></query></iq>",
             "_status_version", "_source", "psyc://psyced.org/~bob");
}

static void test_errors_in(void **state)
{
    (void)state;
    static const char err[] = "<iq from='b@b.example/x' to='a@a.example/r' type='error' id='e1'>"
                              "<query xmlns='jabber:iq:version'/><error type='cancel'>"
                              "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                              "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no</text></error></iq>";
    check_in(&natural, err, "_failure_unavailable_service", "_tag_relay", "e1");
    psyc_packet p;
    to_packet(&natural, err, &p);
    expect_var(&p, "_tag_reply", "e1");
    assert_true(psyc_str_eq_c(p.data, "no"));
    psyc_packet_free(&p);
}

/* A packet as psyced sends it: no _jabber_XML. */
static void psyced_packet(psyc_packet *p, const char *method, const char *const *vars)
{
    psyc_packet_init(p);
    psyc_packet_routing_c(p, "_source", "psyc://psyced.org/~bob");
    psyc_packet_routing_c(p, "_target", "psyc://gw.example.net/~alice@example.org");
    for (size_t i = 0; vars && vars[i]; i += 2) {
        if (strncmp(vars[i], "_tag", 4) == 0)
            psyc_packet_routing_c(p, vars[i], vars[i + 1]);
        else
            psyc_packet_entity_c(p, vars[i], vars[i + 1]);
    }
    psyc_packet_set_method(p, psyc_str_c(method));
}

static void check_out(const char *method, const char *const *vars, const char *want)
{
    psyc_packet p;
    psyced_packet(&p, method, vars);
    xml_node *st = NULL;
    assert_int_equal(translate_to_xmpp(&transport, &p, &st), TRANSLATE_OK);
    assert_string_equal(ts_text(st), want);
    xml_node_free(st);
    psyc_packet_free(&p);
}

#define FROM_BOB "<iq from='bob%psyced.org@psyc.example.org' to='alice@example.org' "

static void test_from_psyced(void **state)
{
    (void)state;
    /* Requests: psyced/jabber.textdb's stanzas (the ping as XEP-0199 has it). */
    check_out("_request_version", (const char *[]){"_tag", "77", NULL},
              FROM_BOB "type='get' id='77'><query xmlns='jabber:iq:version'/></iq>");
    check_out("_request_ping", (const char *[]){"_tag", "p", NULL},
              FROM_BOB "type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>");
    check_out("_request_description_time", (const char *[]){"_tag", "t", NULL},
              FROM_BOB "type='get' id='t'><query xmlns='jabber:iq:last'/></iq>");
    check_out("_request_description_vCard", (const char *[]){"_tag", "c", NULL},
              FROM_BOB "type='get' id='c'><vCard xmlns='vcard-temp'/></iq>");
    check_out("_request_list_feature_node", (const char *[]){"_tag", "d", "_node", "urn:n", NULL},
              FROM_BOB "type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info' node='urn:n'/></iq>");
    check_out("_request_list_item", (const char *[]){"_tag", "i", NULL},
              FROM_BOB "type='get' id='i'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
    /* Answers, by _tag_relay (psyc-vectors/crafted/c15) or psyced's _tag_reply. */
    check_out("_status_version",
              (const char *[]){"_tag_relay", "77", "_version", "1.0", "_version_description", "psyced", NULL},
              FROM_BOB "type='result' id='77'><query xmlns='jabber:iq:version'><name>psyced</name>"
                       "<version>1.0</version></query></iq>");
    check_out("_status_version_agent", (const char *[]){"_tag_reply", "78", "_version", "0.99", NULL},
              FROM_BOB "type='result' id='78'><query xmlns='jabber:iq:version'><name>psyced</name>"
                       "<version>0.99</version></query></iq>");
    check_out("_echo_ping", (const char *[]){"_tag_reply", "p", NULL}, FROM_BOB "type='result' id='p'/>");
    check_out("_status_description_time", (const char *[]){"_tag_reply", "t", "_time_idle", "12", NULL},
              FROM_BOB "type='result' id='t'><query xmlns='jabber:iq:last' seconds='12'/></iq>");
    check_out("_status_time_boot", (const char *[]){"_tag_reply", "t", "_time_boot_duration", "99", NULL},
              FROM_BOB "type='result' id='t'><query xmlns='jabber:iq:last' seconds='99'/></iq>");
    check_out("_status_description_person", (const char *[]){"_tag_reply", "c", "_name", "Bob B", "_nick", "bob", NULL},
              FROM_BOB "type='result' id='c'><vCard xmlns='vcard-temp'><FN>Bob B</FN><NICKNAME>bob</NICKNAME>"
                       "</vCard></iq>");
    check_out("_notice_list_feature_person",
              (const char *[]){"_tag_reply", "d", "_name", "bob", "_identity", "registered", "_list_feature",
                               "| jabber:iq:version| vcard-temp", NULL},
              FROM_BOB "type='result' id='d'><query xmlns='http://jabber.org/protocol/disco#info'>"
                       "<identity category='account' type='registered' name='bob'/>"
                       "<feature var='jabber:iq:version'/><feature var='vcard-temp'/></query></iq>");
    check_out("_notice_list_item", (const char *[]){"_tag_reply", "i", "_list_item", "| x@y.example", NULL},
              FROM_BOB "type='result' id='i'><query xmlns='http://jabber.org/protocol/disco#items'>"
                       "<item jid='x@y.example'/></query></iq>");
    /* psyced's iq error (jabber.textdb _error_unsupported_method): an error
     * message the bridge turns into the iq error its requester waits for. */
    check_out("_error_unsupported_method", (const char *[]){"_tag_reply", "q", NULL},
              "<message from='bob%psyced.org@psyc.example.org' to='alice@example.org' type='error' id='q'>"
              "<error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
              "</error></message>");
}

#define MOOD_NS "http://jabber.org/protocol/mood"
#define PEP(item)                                                                                             \
    "<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='" MOOD_NS "'>" item "</items></event>"

static void test_mood(void **state)
{
    (void)state;
    psyc_packet p;
    /* PEP notification (XEP-0107 §2, XEP-0163 §4.3) <-> _notice_mood. */
    static const char pep[] = "<message from='a@a.example' to='b@b.example' type='headline' id='m1'>" PEP(
        "<item id='x'><mood xmlns='" MOOD_NS "'><annoyed/><text>traffic</text></mood></item>") "</message>";
    check_in(&natural, pep, "_notice_mood", "_degree_mood", "2");
    to_packet(&natural, pep, &p);
    expect_var(&p, "_description_mood", "annoyed");
    expect_var(&p, "_text_mood", "traffic");
    psyc_packet_free(&p);
    /* A retraction: no mood, degree 0. */
    check_in(&natural,
             "<message from='a@a.example' to='b@b.example' type='headline'>" PEP(
                 "<item id='x'><mood xmlns='" MOOD_NS "'/></item>") "</message>",
             "_notice_mood", "_degree_mood", "0");
    /* Other PEP nodes stay headlines. */
    check_in(&natural,
             "<message from='a@a.example' to='b@b.example' type='headline'>"
             "<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:avatar:metadata'/>"
             "</event></message>",
             "_message_private_headline", NULL, NULL);
    /* Mood in a presence (psyced's jabber.textdb puts it there). */
    check_in(&natural,
             "<presence from='a@a.example/r' to='b@b.example'><mood xmlns='" MOOD_NS "'><in_love/></mood>"
             "</presence>",
             "_notice_presence_here", "_degree_mood", "7");

    /* psyced's side: a degree only, psyced's name for it. */
    check_out("_notice_presence_here", (const char *[]){"_degree_availability", "7", "_degree_mood", "8", NULL},
              "<presence from='bob%psyced.org@psyc.example.org' to='alice@example.org'>"
              "<mood xmlns='" MOOD_NS "'><excited/></mood></presence>");
    check_out("_notice_presence_here", (const char *[]){"_degree_availability", "7", "_degree_mood", "0", NULL},
              "<presence from='bob%psyced.org@psyc.example.org' to='alice@example.org'/>");
    check_out("_notice_mood",
              (const char *[]){"_degree_mood", "3", "_description_mood", "tired", "_text_mood", "long day", NULL},
              "<message from='bob%psyced.org@psyc.example.org' to='alice@example.org' type='headline'>" PEP(
                  "<item><mood xmlns='" MOOD_NS "'><tired/><text>long day</text></mood></item>") "</message>");
    /* A name XEP-0107 does not define: the degree's. */
    check_out("_notice_mood", (const char *[]){"_degree_mood", "1", "_description_mood", "<evil/>", NULL},
              "<message from='bob%psyced.org@psyc.example.org' to='alice@example.org' type='headline'>" PEP(
                  "<item><mood xmlns='" MOOD_NS "'><depressed/></mood></item>") "</message>");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_in), cmocka_unit_test(test_answers_in),
        cmocka_unit_test(test_errors_in),   cmocka_unit_test(test_from_psyced),
        cmocka_unit_test(test_mood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
