/*
 * gw.h: the daemon core: one libuv loop (DESIGN.md §4: one event loop
 * thread), its listeners, its circuits, and a clean stop on SIGINT/SIGTERM
 * (stop listening, close circuits, let the loop run dry, exit 0).
 */
#ifndef GATEWAY_GW_H
#define GATEWAY_GW_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gateway/config.h"
#include "gateway/dns.h"
#include "gateway/tls.h"

typedef struct listener listener;
typedef struct psyc_circuit psyc_circuit;
typedef struct component_link component_link;
typedef struct bridge bridge;
typedef struct psyc_out psyc_out;
typedef struct s2s_face s2s_face;

typedef struct gw {
    uv_loop_t *loop;
    const cfg *cfg;

    /* Settings read once from cfg. */
    const char *host;         /* [gateway] host */
    uint64_t idle_timeout_ms; /* [psyc] idle_timeout * 1000; 0 = none */
    size_t max_packet;        /* [psyc] max_packet */
    char implementation[400]; /* _implementation of our 0.9 greeting */

    tls_ctx *tls;             /* our certificate and trust anchors; NULL: no TLS */
    bridge *bridge;           /* stanzas <-> packets between the faces */
    struct store *store;      /* <state_dir>/psycgate.db: what waits survives a restart */
    uv_check_t commit;        /* group commit: once per loop turn (DESIGN.md §6) */
    int commit_live;
    dns *dns;                 /* the one resolver ([dns]); closed by gw_stop */

    listener *listeners;
    size_t n_listeners;

    psyc_circuit *circuits;   /* doubly linked, owned */
    size_t n_circuits;
    uint64_t circuits_total;

    psyc_out *psyc_out;       /* outgoing PSYC circuits and queues (psyc_out.c) */
    struct mcast_ctx *mcast;  /* context trees among psycgates (mcast_ctx.c, issue 7) */
    struct psyc_ack *acks;    /* counted packets taken once (psyc_ack.c) */
    psyc_circuit *delivering; /* the circuit whose packet is being delivered, or NULL */
    struct place_host *place_host;   /* places we host (place_host.c, issue 7) */
    struct place_local *place_local; /* our XMPP users in places (place_local.c) */
    struct place_muc *place_muc;     /* XMPP MUC rooms as places (place_muc.c) */
    struct digest_peer *digest;      /* membership digests with peers (digest_peer.c, issue 7) */
    struct metrics *metrics;  /* [metrics] listen: Prometheus text (metrics.c) */
    uint64_t started_ms;      /* uv_now at gw_start */

    component_link *components; /* one XEP-0114 link per [component] domain */
    size_t n_components;        /* initialised entries of components[] */

    s2s_face *s2s;              /* the XMPP S2S face ([s2s]); NULL before start */

    uv_signal_t signals[3];   /* SIGINT, SIGTERM, SIGHUP */
    int n_signals;            /* initialised handles in signals[] */
    int stopping;
} gw;

/* Reads the settings; no handles yet. 0 or a negative libuv error. */
int gw_init(gw *g, uv_loop_t *loop, const cfg *c);
/* Opens the listeners and signal handlers. 0, or <0 after logging why
 * (what was opened is closed again by gw_stop). */
int gw_start(gw *g);
/* Stops listening, closes every circuit and the signal handlers; the loop
 * then runs out of handles. Idempotent. */
void gw_stop(gw *g, const char *why);
/* Frees what outlives the handles (call after the loop has run dry). */
void gw_cleanup(gw *g);

/* Whole daemon life: loop, start, run, stop, cleanup. Returns the process
 * exit code: 0 after a clean stop, 1 if starting failed. */
int gw_run(const cfg *c);

/* Used by the circuit code. */
void gw_circuit_link(gw *g, psyc_circuit *c);
void gw_circuit_unlink(gw *g, psyc_circuit *c);

#endif /* GATEWAY_GW_H */
