/*
 * place_muc.h: XMPP MUC rooms as PSYC places (issue 7, second part): PSYC
 * people join the room ROOM@SERVICE of an XMPP MUC service behind us as
 * the place psyc://SERVICE/@ROOM, for each SERVICE in [places] muc.
 *
 * We are the place's master. Each PSYC member becomes an occupant of the
 * room with its own JID (its uniform mapped by routing/addr.h, resource
 * "psyc"), so the XMPP side sees real occupants. The room then sends every
 * stanza once per occupant; we cast ONE copy per route (the servers with
 * members, PSYC.md §4.2): only the copy to the first member in the room is
 * cast, the others are dropped (counted). The joiner's own burst is
 * turned into psyced's packets: _echo_place_enter (the occupants it saw),
 * history (_message_public with _context + _target + _time_place) and
 * _status_place_topic (routing/muc.h muc_from_room for the casts). A
 * member whose server is lost (a netsplit, [places] netsplit) leaves the
 * room.
 */
#ifndef GATEWAY_PLACE_MUC_H
#define GATEWAY_PLACE_MUC_H

#include "psyc/psyc.h"
#include "xmpp/xml.h"

typedef struct gw gw;
typedef struct place_muc place_muc;

place_muc *place_muc_new(gw *g);
void place_muc_free(place_muc *m);

/* A request to psyc://SERVICE/@ROOM for a SERVICE in [places] muc. 1
 * taken, 0 not ours. */
int place_muc_from_psyc(place_muc *m, const psyc_packet *p, const char *peer);

/* A stanza from a bridged room (ROOM@SERVICE/...) to one of our PSYC
 * members' occupant JIDs. 1 taken, 0 not ours. */
int place_muc_from_xmpp(place_muc *m, const xml_node *st);

/* Once a second (from the place host's timer): members whose server is
 * lost (place_host_route_lost) leave the room. */
void place_muc_tick(place_muc *m);

#endif
