/*
 * digest.h: membership digests between two gateways (issue 7, DESIGN.md §5
 * "Membership consistency"). For a person's presence context the
 * membership is the subscription state between our users and the people
 * of a peer host, kept on BOTH gateways (gateway/store.h store_sub_*,
 * routing/subs.h): a relation stored here as (local L, remote R, state S)
 * is stored there as (R, L, mirror(S)). Periodically each side sends a
 * digest of its relations with a peer; when the digests differ the two
 * exchange their lists and each repairs its own side (gateway/digest_peer.c).
 *
 * Repair rule (the side that owns a person is authoritative for what is
 * about that person): a side is the authority for the bits FROM (who of
 * the other host sees ITS entity's presence) and PENDING_IN (requests
 * waiting for ITS entity's answer); it takes TO and PENDING_OUT from the
 * peer's FROM and PENDING_IN. A relation one side lacks counts as state 0
 * there. One exchange (list there, list back) leaves both sides mirror
 * images of each other, and never changes a bit of the side that owns it.
 *
 * Entities are PSYC uniforms (psyc://host/~nick): both gateways name them
 * the same way whatever their XMPP address mode. Pure: no I/O.
 */
#ifndef PSYCGATE_ROUTING_DIGEST_H
#define PSYCGATE_ROUTING_DIGEST_H

#include <stddef.h>

#include "psyc/psyc.h"
#include "routing/subs.h"

#define DIGEST_OWN (SUBS_FROM | SUBS_PENDING_IN)
#define DIGEST_BITS (SUBS_TO | SUBS_FROM | SUBS_PENDING_OUT | SUBS_PENDING_IN)
#define DIGEST_HEX_SIZE 65 /* SHA-256 in hex and NUL */

/* One relation as one side stores it. */
typedef struct digest_rel {
    char *local, *remote;
    unsigned state;
} digest_rel;

typedef struct digest_set {
    digest_rel *v;
    size_t n, cap;
} digest_set;

void digest_set_init(digest_set *s);
void digest_set_free(digest_set *s);
/* Adds a copy (state 0 or bits outside DIGEST_BITS: ignored / masked).
 * 0, or -1 out of memory. */
int digest_set_add(digest_set *s, const char *local, const char *remote, unsigned state);
/* Sorted by (local, remote); duplicates folded into one. */
void digest_set_sort(digest_set *s);

/* The state as the other side stores it: TO <-> FROM, PENDING_OUT <-> PENDING_IN. */
unsigned digest_mirror(unsigned state);

/* The digest of a set: hex SHA-256 over its relations in a form both
 * sides produce alike (each as "A B S" with A the smaller uniform and S
 * the state as A's side stores it, sorted). 0, or -1 out of memory. */
int digest_of(const digest_set *s, char out[DIGEST_HEX_SIZE]);

/* The list on the wire (a packet body): "LOCAL REMOTE STATE\n" per
 * relation. 0, or -1 out of memory. */
int digest_render(const digest_set *s, psyc_buf *out);
/* Parses a list into s (appended). 0, or -1 when a line is malformed or
 * memory runs out (s then holds what came before). */
int digest_parse(const char *data, size_t len, digest_set *s);

typedef struct digest_change {
    const char *local, *remote; /* views into the sets given */
    unsigned old_state, new_state;
} digest_change;

/* What `mine` must become given `theirs` (the peer's list, in its own
 * terms: its local is my remote): every relation in either, by the rule
 * above. Sorts both sets. The changes (new != old) in *out (malloc'ed;
 * free it; NULL when none); returns how many, or -1 out of memory. */
long digest_repair(digest_set *mine, digest_set *theirs, digest_change **out);

#endif
