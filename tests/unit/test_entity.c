/*
 * test_entity.c: the gateway's own XMPP answers (routing/entity.h):
 * disco#info/#items, version, last activity, ping, and what it leaves to
 * the caller.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "helper_stanza.h"
#include "routing/entity.h"

static const routing_entity_item places[] = {{"*lobby@gw.example", "Lobby"}, {"*dev@gw.example", NULL}};
static const routing_entity entity = {.name = "psycgate", .version = "1.2.3", .boot_ms = 5000, .items = places, .n_items = 2};

/* Answer to `iq` serialized, or "" for no answer. */
static const char *answer(const char *iq, uint64_t now)
{
    static char buf[2048];
    xml_node *in = ts_parse(iq);
    xml_node *r = routing_entity_answer(in, &entity, now);
    snprintf(buf, sizeof buf, "%s", r ? ts_text(r) : "");
    xml_node_free(r);
    xml_node_free(in);
    return buf;
}

static void test_disco(void **state)
{
    (void)state;
    assert_string_equal(
        answer("<iq from='a@x.example/r' to='gw.example' type='get' id='d1'>"
               "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>", 0),
        "<iq from='gw.example' to='a@x.example/r' type='result' id='d1'>"
        "<query xmlns='http://jabber.org/protocol/disco#info'>"
        "<identity category='gateway' type='psyc' name='PSYC gateway'/>"
        "<feature var='http://jabber.org/protocol/disco#info'/>"
        "<feature var='http://jabber.org/protocol/disco#items'/>"
        "<feature var='jabber:iq:version'/><feature var='jabber:iq:last'/>"
        "<feature var='urn:xmpp:ping'/><feature var='http://jabber.org/protocol/address'/></query></iq>");
    assert_string_equal(
        answer("<iq from='a@x.example/r' to='gw.example' type='get' id='d2'>"
               "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>", 0),
        "<iq from='gw.example' to='a@x.example/r' type='result' id='d2'>"
        "<query xmlns='http://jabber.org/protocol/disco#items'>"
        "<item jid='*lobby@gw.example' name='Lobby'/><item jid='*dev@gw.example'/></query></iq>");
    assert_string_equal(
        answer("<iq from='a@x.example/r' to='gw.example' type='get' id='d3'>"
               "<query xmlns='http://jabber.org/protocol/disco#info' node='x'/></iq>", 0),
        "<iq type='error' to='a@x.example/r' from='gw.example' id='d3'><error type='cancel'>"
        "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
}

static void test_version_last_ping(void **state)
{
    (void)state;
    assert_string_equal(answer("<iq from='a@x.example/r' to='gw.example' type='get' id='v'>"
                               "<query xmlns='jabber:iq:version'/></iq>", 0),
                        "<iq from='gw.example' to='a@x.example/r' type='result' id='v'>"
                        "<query xmlns='jabber:iq:version'><name>psycgate</name>"
                        "<version>1.2.3</version></query></iq>");
    /* XEP-0012 §5: a server answers with its uptime. */
    assert_string_equal(answer("<iq from='a@x.example/r' to='gw.example' type='get' id='l'>"
                               "<query xmlns='jabber:iq:last'/></iq>", 5000 + 3723999),
                        "<iq from='gw.example' to='a@x.example/r' type='result' id='l'>"
                        "<query xmlns='jabber:iq:last' seconds='3723'/></iq>");
    assert_string_equal(answer("<iq from='x.example' to='gw.example' type='get' id='p'>"
                               "<ping xmlns='urn:xmpp:ping'/></iq>", 0),
                        "<iq from='gw.example' to='x.example' type='result' id='p'/>");
}

static void test_not_ours(void **state)
{
    (void)state;
    /* To a user, a set, a result, unknown namespaces, no from: the caller's. */
    assert_string_equal(answer("<iq from='a@x.example' to='u@gw.example' type='get' id='1'>"
                               "<query xmlns='jabber:iq:version'/></iq>", 0), "");
    assert_string_equal(answer("<iq from='a@x.example' to='gw.example/res' type='get' id='1'>"
                               "<query xmlns='jabber:iq:version'/></iq>", 0), "");
    assert_string_equal(answer("<iq from='a@x.example' to='gw.example' type='set' id='1'>"
                               "<query xmlns='jabber:iq:version'/></iq>", 0), "");
    assert_string_equal(answer("<iq from='a@x.example' to='gw.example' type='result' id='1'/>", 0), "");
    assert_string_equal(answer("<iq from='a@x.example' to='gw.example' type='get' id='1'>"
                               "<query xmlns='urn:example:unknown'/></iq>", 0), "");
    assert_string_equal(answer("<iq to='gw.example' type='get' id='1'>"
                               "<query xmlns='jabber:iq:version'/></iq>", 0), "");
    assert_string_equal(answer("<message from='a@x.example' to='gw.example'><body>x</body></message>", 0),
                        "");
}

/* XEP-0077 §4: a gateway that takes registrations lists jabber:iq:register. */
static void test_registration_feature(void **state)
{
    (void)state;
    routing_entity e = entity;
    e.registration = 1;
    xml_node *in = ts_parse("<iq from='a@x.example/r' to='gw.example' type='get' id='d1'>"
                            "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    xml_node *r = routing_entity_answer(in, &e, 0);
    assert_non_null(r);
    assert_non_null(strstr(ts_text(r), "<feature var='jabber:iq:register'/></query>"));
    xml_node_free(r);
    /* The empty result the gateway acknowledges a registration with. */
    r = routing_entity_result(in);
    assert_string_equal(ts_text(r), "<iq from='gw.example' to='a@x.example/r' type='result' id='d1'/>");
    xml_node_free(r);
    xml_node_free(in);
    assert_null(strstr(answer("<iq from='a@x.example/r' to='gw.example' type='get' id='d1'>"
                              "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>", 0),
                       "jabber:iq:register"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disco),
        cmocka_unit_test(test_version_last_ping),
        cmocka_unit_test(test_not_ours),
        cmocka_unit_test(test_registration_feature),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
