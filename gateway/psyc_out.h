/*
 * psyc_out.h: outgoing PSYC packets (issue 5, "PSYC face"). A packet for
 * psyc://HOST[:PORT]/... goes to the circuit to that host:
 *  - an incoming circuit from that host, when the host is authenticated on
 *    it and we may send there (psyced uses both directions, PSYC.md §9;
 *    on 1.0 we first ask `_request_authorization`, §2.3 step 4),
 *  - else our own: DNS `_psyc._tcp` SRV (or the A/AAAA with port 4404;
 *    `[dns] static` routes first; with an explicit port, the A/AAAA with
 *    it), candidates in order, in `[psyc] syntax`.
 * Until the circuit is ready the packets wait in a bounded queue per host
 * (PSYC_OUT_MAX_QUEUE; beyond it they are dropped, counted, and bounced to
 * their sender with `_failure_unsuccessful_delivery`, PSYC.md §4.4). A
 * circuit that fails or is lost while packets wait is retried after 1 s,
 * 2 s, 4 s ... at most 60 s; a packet that waited [psyc] give_up seconds is
 * bounced the same way, with the reason (a sender behind the bridge gets it
 * as an XMPP error from the JID it wrote to). A packet that must wait is
 * also written to the store (gateway/store.h, committed at the end of the
 * loop turn) and removed from it once written to a circuit or given up, so
 * a stop or a crash does not lose it: psyc_out_resume() queues it again at
 * the next start. Every state change is logged with the peer and the
 * reason.
 *
 * Toward another psycgate a written packet is not done yet: it carries
 * `_counter_delivery` and stays (in memory and in the store) until the
 * peer's `_status_delivery` says it took it durably; a circuit lost before
 * that gives it back to the head of the queue, and the peer drops what it
 * already had (gateway/psyc_ack.h). So between two psycgates a crash of
 * either side loses and duplicates nothing that was committed.
 */
#ifndef GATEWAY_PSYC_OUT_H
#define GATEWAY_PSYC_OUT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gateway/dns.h"
#include "psyc/psyc.h"

#define PSYC_OUT_MAX_QUEUE 10000
/* A random _tag (16 hex digits and NUL) for _request_authorization. */
#define PSYC_OUT_TAG_SIZE 17
#define PSYC_OUT_BACKOFF_MIN_MS 1000u
#define PSYC_OUT_BACKOFF_MAX_MS 60000u
/* How long a ready 0.9 circuit waits for the peer's _status_circuit. */
#define PSYC_OUT_KNOWN_WAIT_MS 2000u

typedef struct gw gw;
typedef struct psyc_circuit psyc_circuit;
typedef struct psyc_out psyc_out;
typedef struct psyc_peer psyc_peer;

typedef struct psyc_out_item {
    struct psyc_out_item *next;
    uint64_t queued_ms; /* uv_now when it started to wait */
    int64_t store_id;   /* its row in the store's queue, 0 when not stored */
    psyc_packet pkt;    /* owned copy */
} psyc_out_item;

typedef enum psyc_peer_state {
    PSYC_PEER_IDLE = 0,   /* nothing to do, no circuit */
    PSYC_PEER_RESOLVING,  /* DNS lookup running */
    PSYC_PEER_CONNECTING, /* our circuit is connecting or greeting */
    PSYC_PEER_READY,      /* a circuit is ready: packets go out at once */
    PSYC_PEER_BACKOFF,    /* waiting to retry */
} psyc_peer_state;

struct psyc_peer {
    psyc_peer *next;
    psyc_out *out;
    char host[256];           /* lower case */
    int port;                 /* 0: SRV / default 4404 */
    char name[272];           /* host[:port], for the log */
    psyc_peer_state state;
    psyc_syntax syntax;       /* what we speak to it: [psyc] syntax, or 0.9 after a
                                 peer refused 1.0 (deployed psyceds speak 0.9 only) */

    psyc_out_item *head, *tail;
    size_t n_queued;
    /* Written to a psycgate peer, kept (in memory and store) until it
     * acknowledges them (psyc/link.h "Acknowledged delivery"), in the order
     * written; back to the head of the queue if the circuit is lost. */
    psyc_out_item *unacked, *unacked_tail;
    size_t n_unacked;
    char epoch[PSYC_OUT_TAG_SIZE]; /* names this queue in _counter_delivery */

    psyc_circuit *circuit;    /* the circuit we send on (own or reused), or NULL */
    dns_req *req;
    dns_candidate *cands;
    size_t n_cands, next_cand;

    uv_timer_t retry;
    int timer_live;
    uint32_t backoff_ms;
    char last_error[400];

    uint64_t sent, dropped, attempts;
    uint64_t acked, resent;   /* acknowledged by the peer; written again after a loss */
    int delivery_forced;      /* the peer never said whether it acknowledges:
                                 send without (see psyc_link_delivery_known) */
};

struct psyc_out {
    gw *g;
    psyc_peer *peers;
    psyc_syntax syntax;       /* [psyc] syntax of circuits we open */
    uint64_t give_up_ms;      /* [psyc] give_up: a waiting packet is bounced after it */
    struct store *store;      /* waiting packets are kept there too (gw's); may be NULL */
    int stopping;
    uint64_t dropped_total;
};

void psyc_out_tag(char *buf);

/* NULL when out of memory. */
psyc_out *psyc_out_new(gw *g);
/* Cancels lookups and timers, drops what waits (logged), detaches from
 * circuits. Before the circuits and the resolver are closed. */
void psyc_out_stop(psyc_out *o);
/* Frees everything (after the loop has run the close callbacks). */
void psyc_out_free(psyc_out *o);

/* After a restart: the packets the store still holds go back into their
 * queues (oldest first), with the time they have already waited. Returns
 * how many. */
size_t psyc_out_resume(psyc_out *o);

/* Sends p (copied if it must wait) towards the host of its _target.
 * 0, or a negative psyc_err when p has no usable psyc: _target (logged). */
int psyc_out_send(psyc_out *o, const psyc_packet *p);
/* The same toward the host (and port) of `via`, any uniform there: for a
 * context multicast, which has no _target (PSYC.md §4.2). */
int psyc_out_send_via(psyc_out *o, psyc_str via, const psyc_packet *p);

/* From the circuits: ready to send; lost; `host` authenticated on c. */
void psyc_out_circuit_ready(psyc_out *o, psyc_circuit *c);
void psyc_out_circuit_gone(psyc_out *o, psyc_circuit *c, const char *reason);
void psyc_out_host_authenticated(psyc_out *o, psyc_circuit *c, const char *host);
/* c's peer said what it announces (0.9 `_status_circuit`): what waited
 * for that goes out. */
void psyc_out_circuit_known(psyc_out *o, psyc_circuit *c);
/* The peer's `_status_delivery` on c: its queue's packets up to the
 * counter are taken; they leave memory and the store. */
void psyc_out_delivery_acked(psyc_out *o, psyc_circuit *c, const psyc_packet *ack);
/* 1 when packets to `host` go with acknowledged delivery, i.e. its
 * circuit is up and the peer is a psycgate (it can relay, issue 7);
 * 0 when not, or not known yet (no circuit so far). */
int psyc_out_peer_acks(psyc_out *o, const char *host);

/* "<epoch>:<n>" of a _counter_delivery value: 0, or -1 when malformed. */
int psyc_out_parse_counter(psyc_str v, char *epoch, size_t epochsz, uint64_t *n);

#endif /* GATEWAY_PSYC_OUT_H */
