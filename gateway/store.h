/*
 * store.h: the gateway's durable state (DESIGN.md §6, issue 6 "Delivery
 * that loses nothing"): one SQLite file in the state directory holding the
 * outgoing queues of peers that cannot be reached now, subscriptions, and
 * counters. Behind this interface so a server database can replace it.
 *
 * Durability: WAL journal, synchronous=FULL. Writes go into one open
 * transaction that store_commit() ends, once per event-loop turn (group
 * commit: one fsync for everything a turn accepted, DEPS.md). Only after
 * the commit is a write durable; the callbacks registered with
 * store_after_commit() run then, so whoever acknowledges a message to its
 * sender does it after the commit, never before. A process killed before
 * the commit loses only what nobody was told about.
 *
 * Queues are per destination (a peer key such as "xmpp:example.org" or
 * "psyc:psyced.org"), first in, first out by insertion id; an item leaves
 * the queue when delivered (store_queue_remove) or given up.
 *
 * Single-threaded, like the loop that owns it (DESIGN.md §4).
 */
#ifndef GATEWAY_STORE_H
#define GATEWAY_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct store store;

enum {
    STORE_OK = 0,
    STORE_ERR = -1,     /* SQLite failed; store_error() says why */
    STORE_NOMEM = -2,
    STORE_NOTFOUND = -3,
};

/* Opens (creating if needed) the database file, in WAL mode with
 * synchronous=FULL; checks or creates the schema. 0, or -1 with a reason
 * in err. */
int store_open(const char *path, store **out, char *err, size_t errsz);
/* Commits what is pending, then closes. NULL is fine. */
void store_close(store *s);
/* The last SQLite error message ("" if none). */
const char *store_error(const store *s);

/* ------------------------------------------------------------------ */
/* Group commit                                                       */

/* Ends the open transaction (if any): everything written since the last
 * commit becomes durable, then the after-commit callbacks run in the order
 * they were registered. Returns the number of writes committed, or <0
 * (the writes are rolled back and the callbacks run with ok = 0). */
int store_commit(store *s);
/* 1 when writes are waiting for store_commit. */
int store_dirty(const store *s);
typedef void (*store_commit_cb)(void *ud, int ok);
/* Runs cb(ud, 1) after the next successful commit (at once, with ok = 1,
 * when nothing is pending). STORE_OK or STORE_NOMEM. */
int store_after_commit(store *s, store_commit_cb cb, void *ud);

/* ------------------------------------------------------------------ */
/* Queues                                                             */

typedef struct store_item {
    int64_t id;          /* insertion order; unique */
    char *dest;          /* peer key */
    char *origin;        /* who sent it (a JID or uniform): for bounces */
    int kind;            /* caller's tag (e.g. stanza or packet) */
    int64_t created_ms;  /* when it was accepted (wall clock, ms) */
    uint32_t attempts;   /* delivery attempts so far */
    void *data;          /* the message bytes */
    size_t len;
} store_item;

void store_item_clear(store_item *it);

/* Appends a message to dest's queue. *id (may be NULL) gets its id. */
int store_queue_push(store *s, const char *dest, const char *origin, int kind, const void *data,
                     size_t len, int64_t now_ms, int64_t *id);
/* Up to max items of dest's queue, oldest first, with id > after_id (0 for
 * the start). *n is how many were filled; free each with store_item_clear. */
int store_queue_peek(store *s, const char *dest, int64_t after_id, store_item *items, size_t max,
                     size_t *n);
/* Removes one item (delivered or given up). STORE_NOTFOUND if absent. */
int store_queue_remove(store *s, int64_t id);
/* Removes every item of dest's queue with an id <= id (acknowledged up to
 * there). The number removed, or <0. */
int store_queue_remove_upto(store *s, const char *dest, int64_t id);
/* Counts one more delivery attempt for the item. */
int store_queue_attempted(store *s, int64_t id);
/* Items in dest's queue (dest NULL: in all queues). <0 on error. */
int64_t store_queue_depth(store *s, const char *dest);
/* The oldest item accepted before `before_ms`, in any queue (for give-up
 * timers). STORE_NOTFOUND when there is none. */
int store_queue_oldest_before(store *s, int64_t before_ms, store_item *it);
/* Every destination with a non-empty queue, for resuming after a restart:
 * cb(ud, dest, depth) per destination, in order of their oldest item. */
int store_queue_destinations(store *s, void (*cb)(void *ud, const char *dest, int64_t depth),
                             void *ud);

/* Every item of every queue whose destination starts with `prefix`, each
 * queue oldest first, queues in order of their oldest item (resuming
 * after a restart). cb may remove the item it is given. STORE_OK, or an
 * error (the walk stops). */
int store_queue_each(store *s, const char *prefix, void (*cb)(void *ud, const store_item *it), void *ud);

/* ------------------------------------------------------------------ */
/* Subscriptions (RFC 6121 §3; PSYC friendship, PSYC.md §4.3)          */

/* Bits of a subscription state between a local and a remote entity. */
enum {
    STORE_SUB_TO = 1,          /* local receives remote's presence */
    STORE_SUB_FROM = 2,        /* remote receives local's presence */
    STORE_SUB_PENDING_OUT = 4, /* local asked, remote has not answered */
    STORE_SUB_PENDING_IN = 8,  /* remote asked, local has not answered */
};

/* Sets the state; 0 deletes the row. */
int store_sub_set(store *s, const char *local, const char *remote, unsigned state);
/* The state (0 when unknown). <0 on error. */
int store_sub_get(store *s, const char *local, const char *remote);
/* Every remote of `local` whose state has any of the bits in mask. */
int store_sub_each(store *s, const char *local, unsigned mask,
                   void (*cb)(void *ud, const char *remote, unsigned state), void *ud);

/* Every local entity whose state with `remote` has any of the bits in
 * mask (who of ours sees remote's presence: STORE_SUB_TO). */
int store_sub_each_remote(store *s, const char *remote, unsigned mask,
                          void (*cb)(void *ud, const char *local, unsigned state), void *ud);

/* Every remote entity with any stored relation, once each, sorted (the
 * membership digests walk them, gateway/digest_peer.c). */
int store_sub_remotes(store *s, void (*cb)(void *ud, const char *remote), void *ud);

/* ------------------------------------------------------------------ */
/* Counters (metrics that survive restarts)                           */

int store_counter_add(store *s, const char *name, int64_t delta);
/* The value (0 when never set) in *value. */
int store_counter_get(store *s, const char *name, int64_t *value);
/* Every counter, ordered by name (for the metrics). */
int store_counter_each(store *s, void (*cb)(void *ud, const char *name, int64_t value), void *ud);

/* ------------------------------------------------------------------ */
/* Key-value records: small durable state of one module, in a namespace
 * of its own ("reg" for registrations, "place:@room" for a place...), so
 * a module needs no schema change. Written in the turn's transaction like
 * everything else. */

int store_kv_set(store *s, const char *ns, const char *key, const void *value, size_t len);
/* STORE_NOTFOUND when absent. */
int store_kv_del(store *s, const char *ns, const char *key);
/* *value is malloc'ed, with a NUL after its len bytes (so text values are
 * C strings); STORE_NOTFOUND when absent. */
int store_kv_get(store *s, const char *ns, const char *key, void **value, size_t *len);
/* Every record of ns, ordered by key. */
int store_kv_each(store *s, const char *ns,
                  void (*cb)(void *ud, const char *key, const void *value, size_t len), void *ud);

#endif /* GATEWAY_STORE_H */
