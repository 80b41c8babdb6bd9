/*
 * s2s_conn.h: one XMPP server-to-server TCP connection (issue 5, "XMPP S2S
 * face"), plaintext and after STARTTLS encrypted, driving one stream
 * machine of xmpp/s2s.h: an s2s_in for a connection a peer opened to us,
 * an s2s_out for one we open.
 *
 * The connection moves bytes (socket <-> TLS <-> machine), runs START_TLS
 * (RFC 6120 §5.4.3.3: plaintext after <starttls/> or <proceed/> in the
 * same read is dropped, never fed to TLS or the new stream), the machine's
 * timers, LOG lines and CLOSE; every other action (STANZA, VERIFY_KEY,
 * VERIFY_RESULT, AUTHENTICATED, AUTH_FAILED, BOUNCE) goes to the owner
 * (gateway/s2s_face.c) through hooks. It logs one line when the stream is
 * opened, when it is authenticated (method, TLS version) and when it
 * closes (reason, stanza and byte counters).
 *
 * Memory: a connection is freed only from its libuv close callback, after
 * hooks->on_free; until then every pointer to it stays valid, also during
 * the callbacks it makes.
 */
#ifndef GATEWAY_S2S_CONN_H
#define GATEWAY_S2S_CONN_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "gateway/tls.h"
#include "xmpp/s2s.h"

typedef struct s2s_conn s2s_conn;

typedef struct s2s_conn_hooks {
    /* An action for the owner; it may take a->stanza (set it to NULL). */
    void (*on_action)(s2s_conn *c, s2s_action *a);
    /* Outgoing: the TCP connection is up and c->out exists. */
    void (*on_connected)(s2s_conn *c);
    /* The connection is over (c->reason says why; c->connected: it was
     * up at some point; c->lost: it ended without a clean close). Called
     * once, right before c is freed. */
    void (*on_free)(s2s_conn *c);
} s2s_conn_hooks;

struct s2s_conn {
    s2s_conn *prev, *next;  /* the owner's list */
    void *owner;            /* the owner's object for this connection */
    uv_loop_t *loop;
    tls_ctx *tls;
    const s2s_conn_hooks *hooks;
    int outgoing;

    s2s_in *in;             /* incoming connections */
    s2s_out *out;           /* outgoing ones, once connected */
    s2s_out_config ocfg;    /* for the s2s_out made at connect (strings owned) */
    tls_conn *tlsc;

    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_timer_t timer;       /* the machine's next deadline, and the stop bound */
    uv_shutdown_t sreq;
    int handles;            /* handles not yet closed (tcp, timer) */
    int finishing;          /* closing the handles */
    int connected;          /* TCP up at some point */
    int lost;               /* ended without a clean close (EOF, RST, error, timeout) */
    int depth;              /* re-entrancy of process() */
    uint64_t force_close_at; /* gw stopping: close at this time at the latest; 0 none */

    char peer[64];          /* "127.0.0.2:35270": the log's peer column */
    char domain[256];       /* the peer's domain ("" until an incoming header names it) */
    char reason[300];       /* why the connection ended */
    char auth[200];         /* how the stream was authenticated, for the log */
    uint64_t opened_ms, last_io_ms;
    uint64_t bytes_in, bytes_out, stanzas_in, stanzas_out;
};

/* Accepts a connection from `server` with an s2s_in made from cfg (its
 * peer field is set here). NULL when accept or memory failed (logged). */
s2s_conn *s2s_conn_accept(uv_stream_t *server, tls_ctx *tls, const s2s_in_config *icfg,
                          const s2s_conn_hooks *hooks, void *owner);
/* Connects to sa (peer text in `peer`) and, once connected, starts an
 * s2s_out from cfg (copied). NULL when the socket could not even be
 * created (logged); otherwise the outcome arrives through the hooks. */
s2s_conn *s2s_conn_connect(uv_loop_t *loop, tls_ctx *tls, const struct sockaddr *sa, const char *peer,
                           const s2s_out_config *ocfg, const s2s_conn_hooks *hooks, void *owner);

/* Outgoing, connected: sends a stanza (s2s_out_send; taken on S2S_SEND_OK). */
s2s_send_result s2s_conn_send(s2s_conn *c, xml_node *stanza);
/* Outgoing, connected: a db:verify request (s2s_out_verify). 0 or -1. */
int s2s_conn_verify(s2s_conn *c, const char *from, const char *to, const char *id, const char *key);
/* Incoming: the verdict for one of its VERIFY_KEY actions. 1 if matched. */
int s2s_conn_verify_result(s2s_conn *c, const char *from, const char *to, const char *id,
                           s2s_db_result r, const char *cond);

/* Graceful close (XEP-0190): </stream:stream>, then wait for the peer's
 * (the machine's close timeout). */
void s2s_conn_close(s2s_conn *c, const char *why);
/* The gateway stops: graceful close, but the socket goes after at most
 * bound_ms whether the peer answered or not. */
void s2s_conn_stop(s2s_conn *c, const char *why, uint64_t bound_ms);
/* Ends the connection now (a dead peer): sends our close if the stream is
 * open, closes the socket, records why. */
void s2s_conn_abort(s2s_conn *c, const char *why);

/* 1 while the stream is usable for sending (connected, not closing). */
int s2s_conn_ready(const s2s_conn *c);

#endif
