/*
 * mcast_ctx.h: context distribution among psycgates (issue 7, DESIGN.md
 * §5, PSYC.md §4.2): the libuv side of routing/mcast.h.
 *
 * A context (a person's presence psyc://H/~nick, a place psyc://H/@room)
 * has a master: the gateway of host H. The master keeps the context's
 * routes (root uniforms "psyc://host[:port]/" of the servers with members,
 * never their members) and sends each packet
 *   - to psyced and other non-relaying routes: one direct copy each, the
 *     plain context multicast psyced knows (`_context`, no `_target`, no
 *     `_counter`, no tree packets: psyced cannot relay, PSYC.md §4.2);
 *   - to psycgate routes: down a tree of fan-out [multicast] fanout (k,
 *     default 8): the master sends to at most k children, each relay
 *     forwards to the children the master assigned it. Every copy carries
 *     `_counter` (PSYC.md §4.1), numbered per context by the master.
 * Each receiving gateway delivers a context's packets in `_counter` order,
 * exactly once (routing/mcast.h mc_seq), to the deliver callback of the
 * context's entity type, which fans out to its local members.
 *
 * Wire format (psycgate peers only; names are ours, psyced never sees
 * them):
 *   data, master -> child:      :_context CTX  :_counter N  <the packet>
 *   data, relay -> child:       :_source psyc://RELAY/  :_context_relay CTX
 *                               :_counter N  <the packet without _context>
 *       A relayed copy speaks with the relay's own `_source`, so the
 *       child's PSYC.md §5 host check authenticates the relay's circuit
 *       (a `_context` of another host would be refused there); the child
 *       accepts it only when RELAY is the parent the master assigned.
 *   tree assignment, master -> each psycgate route whose place changed:
 *       :_context CTX  :_target psyc://CHILD/   ("unicast within a
 *       context", PSYC.md §4.1)  _notice_context_tree  with
 *       _uniform_parent (root uniform of the parent; the master's own root
 *       when the master sends directly), _list_children (root uniforms
 *       the child forwards to), _counter (the next counter the master will
 *       send: the child's join point).
 *   resend request, receiver -> master (a gap it detected, PSYC.md §1.2
 *   `?` = state resync: the packet carries the `?` state operator):
 *       :_source psyc://RECEIVER/  :_target CTX  ?  _request_context_resend
 *       with _counter (first missing) and _amount_resend (how many).
 *   resent data, master -> receiver: :_context CTX :_target psyc://RECEIVER/
 *       :_counter N <the packet>. Counters the master no longer holds
 *       (history [multicast] history packets), or sent before the
 *       receiver became a route (not for its members), are answered with
 *       _notice_context_resync (_counter = the first it may have): the
 *       receiver skips to it (counted, logged).
 *
 * Repair: the master polls its psyc_out peers of relaying routes; a relay
 * whose circuit is gone (psyc_out: circuit lost, retrying) is moved out of
 * the tree (it stays a direct route: psyc_out queues its copies), the tree
 * repair (mc_tree, O(k)) re-parents the relays below it and the master
 * announces the new assignments at once. Packets the dead relay swallowed
 * are found as gaps by the re-parented receivers and resent by the master.
 *
 * Metrics: per link (peer root) and per context, packets and bytes sent
 * (bytes = the PSYC 1.0 rendering), forwarded, delivered, duplicates,
 * gaps, resends. Logged on SIGUSR1 and at stop, one line per link and
 * per context ("mcast: link ... " / "mcast: context ...").
 */
#ifndef GATEWAY_MCAST_CTX_H
#define GATEWAY_MCAST_CTX_H

#include <stddef.h>
#include <stdint.h>

#include "psyc/psyc.h"

typedef struct gw gw;
typedef struct mcast_ctx mcast_ctx;

/* Called once per packet of a context, in the master's order, exactly
 * once on this gateway: fan out to the local members. `p` is the packet as
 * a plain context multicast (`_context` = context, no `_target`, no
 * `_counter`), valid during the call. `peer` names where it came from (for
 * the log). Returns 1 when it took the packet; 0 lets the caller's other
 * handlers have a packet that came without `_counter` (from psyced: not
 * ordered here); for numbered packets the result is only logged. */
typedef int (*mcast_deliver_fn)(void *ud, const psyc_packet *p, const char *context, const char *peer);

typedef struct mcast_stats {
    uint64_t sent_direct;   /* master: copies to non-relaying routes */
    uint64_t sent_tree;     /* master: copies to its tree children */
    uint64_t forwarded;     /* relay: copies to our children */
    uint64_t delivered;     /* receiver: packets given to the deliver callback */
    uint64_t duplicates;    /* receiver: dropped, already delivered */
    uint64_t gaps;          /* receiver: resend requests sent */
    uint64_t resent;        /* master: packets resent on request */
    uint64_t lost;          /* receiver: counters skipped (before we joined, or beyond the history) */
    uint64_t refused;       /* packets from a sender that is neither master nor parent */
    uint64_t repairs;       /* master: relays routed around */
    uint64_t tree_notices;  /* master: assignments sent */
} mcast_stats;

/* Reads [multicast] (enabled, fanout, history). NULL on OOM (logged). */
mcast_ctx *mcast_ctx_new(gw *g);
/* Closes the timer and signal handle; logs the counters. Idempotent. */
void mcast_ctx_stop(mcast_ctx *m);
/* After the loop ran dry. NULL is fine. */
void mcast_ctx_free(mcast_ctx *m);

/* 1 when [multicast] enabled = yes (the default). When 0, callers that
 * can reach each recipient one to one (the bridge's presence) do so, for
 * the bench's per-recipient baseline; mcast_ctx_send still works and
 * sends one direct copy per route (no tree, no counter). */
int mcast_ctx_enabled(const mcast_ctx *m);

/* The local fan-out for contexts whose entity type is `type` ('~' persons:
 * the bridge's presence fan-out; '@' places: the place host's). */
void mcast_ctx_set_deliver(mcast_ctx *m, char type, mcast_deliver_fn fn, void *ud);

/* Master side. `context` is our own uniform (psyc://OURHOST/~x or /@x);
 * `route` is a root uniform "psyc://host[:port]/" (a path is ignored).
 * Adding a route that is there, or removing one that is not, is a no-op.
 * 0, or -1 (out of memory or not our context; logged). */
int mcast_ctx_route_add(mcast_ctx *m, const char *context, const char *route);
int mcast_ctx_route_remove(mcast_ctx *m, const char *context, const char *route);
/* Makes the context's routes exactly these n (adds the missing ones,
 * removes the others): the subscribers' hosts of a presence broadcast.
 * 0 or -1 as above. */
int mcast_ctx_route_set(mcast_ctx *m, const char *context, const char *const *routes, size_t n);
/* How many routes the context has (0 for an unknown context). */
size_t mcast_ctx_route_count(const mcast_ctx *m, const char *context);

/* Sends one packet of `context` to all its routes: p is a context
 * multicast (its `_context` is replaced by `context`; `_target` and
 * `_counter` are removed). The master numbers it, keeps it in the history
 * for resends, and sends the copies described above. Local members are
 * not the manager's business (the caller delivers to them). 0, or -1 (not
 * our context / out of memory; logged). */
int mcast_ctx_send(mcast_ctx *m, const char *context, const psyc_packet *p);

/* Receive entry (from the bridge's PSYC entry, before anything else): 1
 * when the packet was ours (a context data packet for a context not ours,
 * relayed data, a tree assignment, a resend request or a resync) and was
 * consumed: forwarded to our children, ordered, delivered through the
 * deliver callback, or dropped with a log line; 0 when it is someone
 * else's (unicast, or a context of an entity type without a callback). */
int mcast_ctx_receive(mcast_ctx *m, const psyc_packet *p, const char *peer);

const mcast_stats *mcast_ctx_stats(const mcast_ctx *m);
/* A metrics source (gateway/metrics.h): the totals, per link and per
 * context; ud is the mcast_ctx. */
struct metrics_out;
void mcast_ctx_metrics(void *ud, struct metrics_out *o);
/* Logs the per-link and per-context counters (SIGUSR1 does it too). */
void mcast_ctx_log_metrics(mcast_ctx *m);

/* Counts a unicast copy on its link (the bench's per-recipient baseline
 * goes through psyc_out_send directly; this keeps its per-link counters
 * comparable). `context` names what it belongs to (may be NULL). */
void mcast_ctx_count_unicast(mcast_ctx *m, const char *context, const psyc_packet *p);

#endif /* GATEWAY_MCAST_CTX_H */
