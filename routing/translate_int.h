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

#endif
