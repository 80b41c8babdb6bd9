/*
 * coalesce.h: presence fan-out offload (issue 7 "Presence offload",
 * DESIGN.md §5). The local XMPP server sends one presence stanza per
 * contact when a user's presence changes; on the component face the copies
 * of one broadcast differ only in 'to' (and 'id'). The coalescer recognises
 * them (same sender, same payload, within one burst window) and reports the
 * broadcast once with all its recipients, so the gateway sends one context
 * multicast instead of N stanzas. It also remembers each sender's last
 * broadcast payload: a broadcast that did not change it reports
 * changed = 0 and lists only the recipients that had not received it yet,
 * so unchanged presence is not re-sent over the network (the seed measured
 * 59.76 % of presence stanzas as duplicates) while a new contact still gets
 * it. Probes are not presence broadcasts and are not fed here.
 *
 * Pure: the caller passes the time in and runs pc_tick at pc_next_deadline.
 */
#ifndef PSYCGATE_ROUTING_COALESCE_H
#define PSYCGATE_ROUTING_COALESCE_H

#include <stddef.h>
#include <stdint.h>

#define PC_NO_DEADLINE UINT64_MAX
#define PC_DEFAULT_WINDOW_MS 50

typedef struct pc_coalescer pc_coalescer;

/* One broadcast: `from` (full JID of the sender), the payload (the stanza
 * without 'to' and 'id', in a canonical form chosen by the caller),
 * `changed` = it differs from the sender's previous broadcast, and the
 * recipients (bare or full JIDs as the server addressed them) that need
 * it: all of them when changed, else those that had not received this
 * payload. n may be 0 (nothing to send). Pointers valid during the call. */
typedef void (*pc_burst_fn)(void *ud, const char *from, const void *payload, size_t len, int changed,
                            const char *const *recipients, size_t n);

/* window_ms: how long after the first copy a burst stays open (0: the
 * default). max_senders bounds the memory of last payloads (0: 100000;
 * the least recently active sender is forgotten first). NULL on OOM. */
pc_coalescer *pc_new(uint64_t window_ms, size_t max_senders, pc_burst_fn cb, void *ud);
/* Reports every open burst, then frees. */
void pc_free(pc_coalescer *pc);

/* One copy. A copy with another payload from the same sender closes the
 * sender's open burst first (presence is ordered per sender). 0, or -1 on
 * OOM (the copy is then reported alone, at once, as changed). */
int pc_feed(pc_coalescer *pc, const char *from, const char *to, const void *payload, size_t len,
            uint64_t now_ms);
/* The sender went offline for good or unsubscribed everyone: forget its
 * last payload (its next broadcast counts as changed). */
void pc_forget(pc_coalescer *pc, const char *from);
/* Closes bursts whose window has passed. */
void pc_tick(pc_coalescer *pc, uint64_t now_ms);
uint64_t pc_next_deadline(const pc_coalescer *pc);

/* Counters for metrics: copies fed, broadcasts reported, recipients
 * suppressed because they had the payload already. */
typedef struct pc_stats {
    uint64_t copies, bursts, unchanged_bursts, suppressed;
} pc_stats;
void pc_get_stats(const pc_coalescer *pc, pc_stats *out);

#endif
