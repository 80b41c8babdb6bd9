/*
 * digest_peer.h: membership digests with peer psycgates (issue 7,
 * "Membership consistency"; the rule is in routing/digest.h).
 *
 * Every [multicast] digest_interval seconds (0 = never), for every peer
 * host we share subscriptions with and know to be a psycgate (it
 * acknowledges our packets, or it sent us a digest once; remembered in the
 * store), we send from our root to its root:
 *
 *   _request_context_digest       _digest_relations (hex SHA-256),
 *                                 _amount_relations
 * the peer compares with its own; when they differ it answers
 *   _request_context_digest_list  its relations with us in the body
 * we repair our side from it and answer with ours (after the repair)
 *   _notice_context_digest_list   and the peer repairs its side.
 *
 * So one exchange, started by either side, ends any desync. Every repaired
 * relation is one log line and counted in the store's counters
 * ("digest_repairs" and "digest_repairs:HOST"); matches and mismatches are
 * counted as "digest_matches", "digest_mismatches".
 *
 * Which relations: every row of the store's subscription table (local
 * JID, remote JID), walked by remote (store_sub_remotes) and grouped by
 * the remote's PSYC host.
 */
#ifndef GATEWAY_DIGEST_PEER_H
#define GATEWAY_DIGEST_PEER_H

#include <stdint.h>

#include "psyc/psyc.h"

typedef struct gw gw;
typedef struct digest_peer digest_peer;

/* Reads [multicast] digest_interval and starts the timer. NULL when out
 * of memory (logged). */
digest_peer *digest_peer_new(gw *g);
/* Closes the timer (with gw_stop). NULL is fine. */
void digest_peer_stop(digest_peer *d);
/* After the loop ran dry. NULL is fine. */
void digest_peer_free(digest_peer *d);


/* A packet from PSYC: 1 when it was one of ours (taken, answered), 0 when
 * not. */
int digest_peer_from_psyc(digest_peer *d, const psyc_packet *p, const char *peer);

/* One round now (also what the timer does). */
void digest_peer_run(digest_peer *d);

#endif
