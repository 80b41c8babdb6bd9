/* helper_stanza.h: stanzas from text and back, for the translation tests
 * (linked into each unit test; fails the running cmocka test on error). */
#ifndef TESTS_HELPER_STANZA_H
#define TESTS_HELPER_STANZA_H

#include "routing/translate.h"
#include "xmpp/xml.h"

/* A stanza from its text, as an S2S stream (jabber:server) delivers it. */
xml_node *ts_parse(const char *text);
/* Its serialization in a jabber:server stream (a static buffer). */
char *ts_text(const xml_node *n);

/* translate_from_xmpp of the stanza's text into p (initialised here);
 * fails the test unless it translates without a condition. */
void ts_to_packet(const addr_map *m, const char *stanza, psyc_packet *p);
/* Fail unless p's variable `name` (entity or routing) is `value`. */
void ts_expect_var(const psyc_packet *p, const char *name, const char *value);
void ts_expect_method(const psyc_packet *p, const char *method);
/* XMPP -> PSYC -> XMPP gives the stanza back, byte for byte on the wire. */
void ts_round_trip(const addr_map *m, const char *stanza);

#endif
