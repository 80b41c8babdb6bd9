/*
 * mcast.h: multicast distribution for one context (issue 7, DESIGN.md §5,
 * PSYC.md §4.2). Pure logic, no I/O, no clock: the gateway sends what these
 * functions decide, and tests run thousands of simulated servers in one
 * process.
 *
 * The master of a context (the server that owns it) keeps its routes: the
 * servers with at least one member, never those servers' members. Routes
 * that can relay (psycgate) form a tree with fan-out at most k under the
 * master; routes that cannot (psyced, PSYC.md §4.2: it has no relaying)
 * get their copy straight from the master.
 *
 * The tree (mc_tree) is a k-ary heap over the relays in join order: the
 * master's children are positions 0..k-1, position i's children are
 * k(i+1) .. k(i+1)+k-1. A route that leaves or fails is replaced by the
 * last one (as in a heap delete), so one change touches O(k) servers, not
 * the whole tree. Every server whose parent or children changed is
 * reported (mc_tree_take_changes) so the master can tell it: a server
 * accepts a context's packets only from the master or from the parent the
 * master assigned it, which is how a relayed packet is authenticated
 * (PSYC.md §5 checks the circuit against the context's host).
 *
 * Order and loss (mc_seq): the master numbers the context's packets
 * (_counter, PSYC.md §4.1); each receiver delivers them in that order,
 * drops duplicates, holds early ones and reports the gap, which it fills
 * by asking the master (which keeps a history) for the missing counters.
 * Packets a dead relay swallowed are recovered this way, none delivered
 * twice.
 */
#ifndef PSYCGATE_ROUTING_MCAST_H
#define PSYCGATE_ROUTING_MCAST_H

#include <stddef.h>
#include <stdint.h>

#define MC_DEFAULT_FANOUT 8

/* ------------------------------------------------------------------ */
/* The master's view: routes and tree                                 */

typedef struct mc_tree mc_tree;

/* k: fan-out, at least 1 (0 gives MC_DEFAULT_FANOUT). NULL on OOM. */
mc_tree *mc_tree_new(unsigned k);
void mc_tree_free(mc_tree *t);

/* Adds a route (a server with members); `relay`: it can forward (a
 * psycgate). 1 added, 0 it was there already, -1 out of memory. */
int mc_tree_add(mc_tree *t, const char *host, int relay);
/* Removes a route (no members left, or its link failed). 1 removed, 0 it
 * was not there. */
int mc_tree_remove(mc_tree *t, const char *host);
int mc_tree_has(const mc_tree *t, const char *host);
/* Every route (relays in heap order, then the others), up to max into
 * out; returns how many there are. Valid until the next change. */
size_t mc_tree_routes(const mc_tree *t, const char **out, size_t max);
/* 1 when host is a route that relays (in the tree), 0 otherwise. */
int mc_tree_is_relay(const mc_tree *t, const char *host);
size_t mc_tree_size(const mc_tree *t); /* routes, relays and others */

/* The parent the master assigns to `host`: NULL for the master itself (a
 * direct copy). *found = 0 when host is no route. */
const char *mc_tree_parent(const mc_tree *t, const char *host, int *found);
/* Children of `host` (NULL: the master's first hop: its k relays and every
 * non-relay route). Up to max into out; returns how many there are. */
size_t mc_tree_children(const mc_tree *t, const char *host, const char **out, size_t max);

/* The routes whose parent or children changed since the last call (and
 * that are still routes), each once: the master sends them their new
 * assignment. The array is valid until the next change. */
size_t mc_tree_take_changes(mc_tree *t, const char *const **hosts);

/* ------------------------------------------------------------------ */
/* A receiver's order: deliver in counter order, exactly once          */

typedef struct mc_seq {
    uint64_t next;   /* the counter to deliver next */
    size_t window;   /* early packets held at most */
    void **held;     /* ring: held[c % window] for counters next+1 .. next+window */
    uint64_t *held_counter;
    uint64_t dups, gaps;
} mc_seq;

typedef enum mc_seq_result {
    MC_SEQ_DELIVERED = 0, /* delivered (with any held ones that follow it) */
    MC_SEQ_DUPLICATE,     /* already delivered or already held: dropped */
    MC_SEQ_HELD,          /* early: held; counters next .. c-1 are missing */
    MC_SEQ_TOO_EARLY,     /* beyond the window: not held (ask for next .. c) */
} mc_seq_result;

/* next: the first counter this receiver must deliver (its join point).
 * window 0 gives 1024. -1 on OOM. */
int mc_seq_init(mc_seq *s, uint64_t next, size_t window);
/* Frees the ring; held packets are passed to drop (may be NULL). */
void mc_seq_free(mc_seq *s, void (*drop)(void *ud, void *pkt), void *ud);

typedef void (*mc_deliver_fn)(void *ud, uint64_t counter, void *pkt);
/* Offers packet `c`. DELIVERED: deliver ran for c and every consecutive
 * held packet after it; DUPLICATE: the caller still owns pkt; HELD: the
 * receiver owns it now; TOO_EARLY: the caller owns it. */
mc_seq_result mc_seq_offer(mc_seq *s, uint64_t c, void *pkt, mc_deliver_fn deliver, void *ud);
/* The first missing counter at or after next that is not held, and how
 * many follow it unheld up to `upto` (exclusive): what to ask the master
 * for after HELD or TOO_EARLY, or when a heartbeat says the master is at
 * `upto`. 0 when nothing is missing. */
uint64_t mc_seq_missing(const mc_seq *s, uint64_t upto, uint64_t *first);
/* The master no longer holds the counters before `upto` (its history
 * moved on): deliver what is held below it, skip the rest, then whatever
 * held packets follow. Returns how many counters were skipped (lost). */
uint64_t mc_seq_skip(mc_seq *s, uint64_t upto, mc_deliver_fn deliver, void *ud);

#endif
