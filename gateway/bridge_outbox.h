/*
 * bridge_outbox.h: stanzas for the local XMPP server wait here while the
 * component link of their domain is down (Prosody restarting, psycgate
 * just started), instead of being dropped: issue 6, "a stanza or packet
 * accepted from a peer is delivered, or in the store, or bounced to its
 * sender".
 *
 * A waiting stanza is kept in memory and in the store (queue
 * "xmpp-component:DOMAIN", committed with the loop turn that took the PSYC
 * packet, so the packet's acknowledgement (gateway/psyc_ack.h) covers it);
 * it goes out, in order, once the link is up again, and leaves the store
 * when written (S2S stanzas likewise, see bridge_outbox_send_s2s). After
 * [component] give_up seconds it is returned to its
 * sender as <recipient-unavailable/> (which the bridge translates back to
 * PSYC like any error). At the next start the store's rows wait again.
 */
#ifndef GATEWAY_BRIDGE_OUTBOX_H
#define GATEWAY_BRIDGE_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "xmpp/xml.h"

typedef struct bridge bridge;
typedef struct component_link component_link;
typedef struct bridge_outbox bridge_outbox;

/* NULL when out of memory or the timer cannot be made (logged). */
bridge_outbox *bridge_outbox_new(bridge *b);
/* Closes the timer; waiting stanzas stay in the store (logged). */
void bridge_outbox_stop(bridge_outbox *o);
void bridge_outbox_free(bridge_outbox *o);

/* Sends st on l now when l is linked and nothing waits before it, else
 * keeps it. Takes st. 0, or -1 when it was dropped (logged). */
int bridge_outbox_send(bridge_outbox *o, component_link *l, xml_node *st);
/* A stanza for the S2S face (takes it): kept in the store (queue
 * "xmpp-s2s:FROM TO") until the face is done with its pair of domains
 * (s2s_face_pair_busy: written to an authenticated stream, or bounced),
 * so a crash before that sends it again at the next start (at least once:
 * the remote server has no acknowledgement for us). Returns what
 * s2s_face_send returns. */
int bridge_outbox_send_s2s(bridge_outbox *o, xml_node *st);
/* After a restart: the store's waiting stanzas wait again. How many. */
size_t bridge_outbox_resume(bridge_outbox *o);
/* Stanzas waiting now (all links). */
size_t bridge_outbox_waiting(const bridge_outbox *o);

#endif
