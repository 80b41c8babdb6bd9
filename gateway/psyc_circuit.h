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
#include "gateway/psyc_link.h"
#include "gateway/tls.h"

/* How long a closing circuit waits for the peer to read our last packet
 * and hang up before we cut the connection. */
#define PSYC_CIRCUIT_LINGER_MS 2000

typedef enum psyc_circuit_phase {
    PSYC_CIRCUIT_RUNNING = 0,
    PSYC_CIRCUIT_LINGER,  /* output flushed and write side shut; draining input */
    PSYC_CIRCUIT_CLOSING, /* handles closing; freed when both are closed */
} psyc_circuit_phase;

struct psyc_circuit {
    uv_tcp_t tcp;
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
};

/* Accepts one pending connection from `server`; tls: the listener is a
 * listen_tls one (TLS from the first byte). 0 or a negative libuv error. */
int psyc_circuit_accept(gw *g, uv_stream_t *server, int tls);
/* Closes at once (shutdown, fatal errors). The first reason given sticks. */
void psyc_circuit_close(psyc_circuit *c, log_level level, const char *reason);

#endif /* GATEWAY_PSYC_CIRCUIT_H */
