/*
 * psyc_circuit.h: one PSYC circuit on a TCP connection: libuv glue around
 * psyc_link (the protocol decisions), with the idle timer, the one-line
 * log per event and a graceful close that lets a croak reach the peer.
 *
 * TLS (PSYC.md §2.1, §5): on a listen_tls socket the circuit is TLS from
 * the first byte; on a plain one psyc_link detects a first byte 0x16 and
 * the circuit switches to TLS. Either way the socket carries ciphertext
 * and psyc_link sees only plaintext: reads go socket -> tls_conn ->
 * psyc_link, writes psyc_link -> tls_conn -> socket.
 */
#ifndef GATEWAY_PSYC_CIRCUIT_H
#define GATEWAY_PSYC_CIRCUIT_H

#include <uv.h>

#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/net.h"
#include "psyc/psyc.h"
#include "gateway/tls.h"

/* How long a closing circuit waits for the peer to read our last packet
 * and hang up before we cut the connection. */
#define PSYC_CIRCUIT_LINGER_MS 2000
/* How long an outgoing circuit may take to connect. */
#define PSYC_CIRCUIT_CONNECT_TIMEOUT_MS 20000

typedef enum psyc_circuit_phase {
    PSYC_CIRCUIT_RUNNING = 0,
    PSYC_CIRCUIT_LINGER,  /* output flushed and write side shut; draining input */
    PSYC_CIRCUIT_CLOSING, /* handles closing; freed when both are closed */
} psyc_circuit_phase;

typedef struct psyc_peer psyc_peer;

struct psyc_circuit {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_timer_t timer; /* idle timeout, then linger timeout */
    uv_shutdown_t shutdown_req;
    gw *gw;
    psyc_circuit *prev, *next;

    net_peer peer;
    net_peer local;
    psyc_link link;
    int link_ready;

    tls_conn *tls;    /* NULL while the circuit is plaintext */

    psyc_circuit_phase phase;
    int handles_open;
    int peer_eof;
    int shutdown_pending;

    log_level close_level;
    char reason[256];

    uint64_t opened_ms;
    uint64_t bytes_in, bytes_out;
    int first_byte;   /* the peer's first byte (before TLS); meaningful once bytes_in > 0 */
    uint64_t packets_out;

    /* Outgoing circuits (gateway/psyc_out.c). */
    int active;            /* we opened it */
    int connecting;        /* uv_tcp_connect pending */
    psyc_syntax syntax;    /* active: the syntax we speak */
    char peer_host[256];   /* active: the host we connected to */
    psyc_peer *out_peer;   /* the outgoing queue this circuit serves, or NULL */

    /* Host authentication (PSYC.md §5; gateway/psyc_hostauth.c). */
    int trusted;           /* the peer is a [psyc] trusted one: any source host */
    int reading;           /* uv_read_start active */
    dns_req *auth_req;     /* pending forward lookup */
    char auth_host[256];   /* the host it is for */
};

/* Accepts one pending connection from `server`; tls: the listener is a
 * listen_tls one (TLS from the first byte). 0 or a negative libuv error. */
int psyc_circuit_accept(gw *g, uv_stream_t *server, int tls);
/* Closes at once (shutdown, fatal errors). The first reason given sticks. */
void psyc_circuit_close(psyc_circuit *c, log_level level, const char *reason);

/* Opens an outgoing circuit to `sa` (with port) for `peer_host` in
 * `syntax` (PSYC.md §2: we send the initial empty packet). The circuit
 * reports to psyc_out: ready, or gone. NULL (after logging) on failure. */
psyc_circuit *psyc_circuit_connect(gw *g, const struct sockaddr *sa, const char *peer_host,
                                   psyc_syntax syntax, psyc_peer *owner);
/* Renders p in the circuit's syntax and sends it. 0 or a negative psyc_err
 * (the packet is not sent; the circuit goes on). */
int psyc_circuit_send(psyc_circuit *c, const psyc_packet *p);
/* 1 while the circuit runs (not closing). */
int psyc_circuit_running(const psyc_circuit *c);
/* The verdict of a host check that the authenticate callback left
 * pending: resumes the held packets (gateway/psyc_hostauth.c). */
void psyc_circuit_auth_done(psyc_circuit *c, const char *host, int accept, const char *why);
/* The PSYC.md §5 host check of the link (psyc_link_auth_fn). */
int psyc_circuit_authenticate(void *ctx, psyc_link *link, const char *host, char *why, size_t whysz);
/* Cancels a pending host check (the circuit closes). */
void psyc_circuit_auth_cancel(psyc_circuit *c);

#endif /* GATEWAY_PSYC_CIRCUIT_H */
