/*
 * place_local.h: our XMPP users in places, hosted here or on any PSYC
 * server (issue 7, XEP-0045 over PSYC places, PSYC.md §4.2 slave side).
 *
 * Room addresses: *ROOM@HOST (natural) or *ROOM%HOST@T (transport) name
 * psyc://HOST/@ROOM (routing/addr.h); ROOM@D for a [places] domain D
 * names our own psyc://OURHOST/@ROOM (in natural mode our host is the XMPP
 * server's own domain, so local users need another domain to reach the
 * places we host). disco#items to D (or to T) lists our places (XEP-0030).
 *
 * Per place we keep OUR occupants only (full JID, uniform, nick, the room
 * JID they used), and the place's roster as the place told it. Stanzas
 * become requests (routing/muc.h) sent to the place; one context packet
 * from the place becomes one stanza per local occupant (local fan-out):
 * the two-level tree of PSYC.md §4.2, one copy per server.
 *
 * Order and gaps: casts carry _counter; a gap (a counter skipped) asks the
 * place for its members (_request_members) and the answer is turned into
 * the presences our occupants missed.
 */
#ifndef GATEWAY_PLACE_LOCAL_H
#define GATEWAY_PLACE_LOCAL_H

#include "psyc/psyc.h"
#include "xmpp/xml.h"

typedef struct gw gw;
typedef struct place_local place_local;

place_local *place_local_new(gw *g);
void place_local_free(place_local *pl);

/* A stanza from XMPP for one of our domains. 1 when it was for a room (or
 * a [places] domain) and was handled (the caller still frees it), 0 when
 * it is the bridge's. */
int place_local_from_xmpp(place_local *pl, const xml_node *st, const char *domain);

/* A packet of a place our occupants are in (a cast, or a unicast from the
 * place to one of them). 1 taken, 0 not ours. */
int place_local_from_psyc(place_local *pl, const psyc_packet *p, const char *peer);

/* The same with the signature of mcast_deliver_fn (gateway/mcast_ctx.h),
 * for '@' contexts once casts go down distribution trees. */
int place_local_deliver(void *ud, const psyc_packet *p, const char *context, const char *peer);

#endif
