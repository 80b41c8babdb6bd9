/* translate_int.h: what translate_in.c and translate_out.c share. */
#ifndef PSYCGATE_ROUTING_TRANSLATE_INT_H
#define PSYCGATE_ROUTING_TRANSLATE_INT_H

#include "routing/translate.h"

#define TR_NS_CHATSTATES "http://jabber.org/protocol/chatstates" /* XEP-0085 */
#define TR_NS_DELAY "urn:xmpp:delay"                             /* XEP-0203 */
#define TR_NS_RECEIPTS "urn:xmpp:receipts"                       /* XEP-0184 */

/* Presence: XMPP <show/> (NULL = none) <-> method suffix and degree
 * (PSYC.md §4.3). The unavailable row has show "unavailable". */
typedef struct tr_presence_row {
    const char *show;
    const char *suffix; /* after _notice_presence / _status_presence */
    const char *degree;
} tr_presence_row;

extern const tr_presence_row tr_presence_table[];
extern const size_t tr_presence_rows;

/* The five XEP-0085 states. */
extern const char *const tr_chat_states[];
extern const size_t tr_chat_state_count;

/* Subscription types <-> friendship methods. */
typedef struct tr_subscription_row {
    const char *type;
    const char *method;
} tr_subscription_row;

extern const tr_subscription_row tr_subscription_table[];
extern const size_t tr_subscription_rows;

/* 1 when n is an element `name` in a content namespace (jabber:client,
 * jabber:server, jabber:component:accept or none). */
int tr_is_content(const xml_node *n, const char *name);

/* Small helpers both directions use (translate_tables.c). */
int tr_nomem(int psyc_rc); /* a psyc_err as a translate_result */
int tr_put(psyc_packet *p, int routing, const char *name, const char *value, size_t len);
int tr_get(const psyc_packet *p, const char *name, psyc_str *v); /* 1 when set */
int tr_text_child(xml_node *el, const char *name, const char *ns, psyc_str text);

/* iq in psyced's terms (translate_iq.c). tr_iq_in: the method for an iq
 * get (`request`) or result into method[size], its variables into p;
 * TRANSLATE_IGNORE when psyced has no name for it (it then crosses as
 * _jabber_iq_*). tr_iq_method: the protocol a method asks or answers
 * (-1: none), *answer 1 for answers. tr_iq_out: the iq's child built from
 * the variables (for packets without _jabber_XML). */
int tr_iq_in(psyc_packet *p, const xml_node *iq, int request, char *method, size_t size);
int tr_iq_method(psyc_str method, int *answer);
int tr_iq_out(const psyc_packet *p, int proto, int answer, xml_node *iq);

/* XEP-0107 mood (translate_mood.c). tr_mood_in: _degree_mood,
 * _description_mood and _text_mood from a <mood/> element; tr_mood_pep:
 * the <mood/> of a PEP notification message (XEP-0163 §4.3), or NULL;
 * tr_mood_out_*: a <mood/> from those variables into a presence, or a PEP
 * event into a message (nothing when one came back from the payload). */
#define TR_NS_MOOD "http://jabber.org/protocol/mood"
int tr_mood_in(psyc_packet *p, const xml_node *mood);
const xml_node *tr_mood_pep(const xml_node *message);
int tr_mood_out_presence(const psyc_packet *p, xml_node *presence);
int tr_mood_out_pep(const psyc_packet *p, xml_node *message);

#endif
