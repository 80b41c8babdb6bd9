/*
 * place_host.h: the places this gateway hosts, psyc://HOST/@name (issue 7,
 * DESIGN.md §5, PSYC.md §4.2). The libuv side of routing/place.h.
 *
 * A place is created by its first enter (psyced does the same), keeps its
 * owner (the first who entered), topic and bans in the store (key-value
 * namespace "place", key = the place's uniform) and its members in memory.
 * As master of the context it keeps ROUTES, the servers with members, and
 * never other servers' members: every cast goes once to each route
 * (place_cast), and a member on our own host is served by the local
 * fan-out (gateway/place_local.h) directly. Unicasts (the echo, history,
 * errors) go to their _target's host.
 *
 * Requests come from psyced and psycgate servers (bridge_from_psyc), and
 * from our own XMPP users through place_local without a network hop.
 *
 * Netsplit: a route whose casts have waited for a circuit longer than
 * [places] netsplit seconds is lost; its members leave with
 * _notice_place_leave_netburp, cast to the other routes.
 */
#ifndef GATEWAY_PLACE_HOST_H
#define GATEWAY_PLACE_HOST_H

#include <stddef.h>

#include "psyc/psyc.h"
#include "routing/entity.h"

typedef struct gw gw;
typedef struct place_host place_host;

/* Reads [places] history; loads the places kept in the store. NULL on OOM. */
place_host *place_host_new(gw *g);
/* Closes its timer (with gw_stop). */
void place_host_stop(place_host *h);
void place_host_free(place_host *h);

/* A packet whose _target is a place on our host (and no _context): a
 * request to it. 1 taken (answered or dropped with a log line), 0 not ours. */
int place_host_from_psyc(place_host *h, const psyc_packet *p, const char *peer);

/* One cast of context `ctx` (with `members`, for the log) to these n
 * routes (root uniforms): once each, our own host by the local fan-out
 * (gateway/place_local.h). The one place where casts leave. */
void place_host_cast(gw *g, const char *ctx, char *const *routes, size_t n, size_t members, const psyc_packet *p);
/* A unicast from a place: to our own occupants directly, else out. */
void place_host_unicast(gw *g, const psyc_packet *p);

/* Why `route` (a root uniform) counts as lost (its packets waited for a
 * circuit longer than [places] netsplit), or NULL when it does not. */
const char *place_host_route_lost(const place_host *h, const char *route);

/* The places as disco#items (XEP-0030) under `domain`: ROOM@domain when
 * `plain`, else *ROOM@domain (psyced's place prefix). The array and its
 * strings stay valid until the next call. */
const routing_entity_item *place_host_items(place_host *h, const char *domain, int plain, size_t *n);

#endif
