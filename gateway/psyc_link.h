/*
 * psyc_link.h: the protocol side of one PSYC circuit, without I/O.
 *
 * Bytes in (psyc_link_received / psyc_link_feed), bytes out
 * (psyc_link_take_output), events to a callback, and a "close now" verdict
 * with a reason. The libuv glue is gateway/psyc_circuit.c; keeping the
 * decisions here means they can be driven by tests and fuzzers without
 * sockets (DESIGN.md §4: the circuit state machine runs over abstract byte
 * I/O).
 *
 * What it does in this slice (accepting side):
 *  - detects the syntax from the first byte (PSYC.md §2.1, §5):
 *    '.' PSYC 0.9, '|' PSYC 1.0, 0x16 TLS (PSYC_LINK_VERDICT_TLS: the
 *    caller starts a TLS server session with the bytes from
 *    psyc_link_start_tls and feeds the plaintext back; the link then detects
 *    '.' or '|' again, inside TLS), anything else: 0.9
 *    `_error_syntax_initialization` croak and close;
 *  - waits for the peer's initial empty packet; on 0.9 answers with `.`,
 *    `_notice_circuit_established` and `_status_circuit` (PSYC.md §2.2, §9,
 *    captures 1-circuit-greeting/02..04), on 1.0 with `|` (PSYC.md §2.3
 *    step 2);
 *  - answers later empty packets (pings) with an empty packet, at most once
 *    per PSYC_LINK_PONG_INTERVAL_MS (psyced parse.i, PSYC.md §2.2, o05);
 *  - hands every other packet to the callback;
 *  - on a parse error croaks like psyced (empty routing header, then close).
 */
#ifndef GATEWAY_PSYC_LINK_H
#define GATEWAY_PSYC_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "psyc/psyc.h"

#define PSYC_LINK_PONG_INTERVAL_MS 120000u

/* What psyc_link_received / psyc_link_feed return. */
enum {
    PSYC_LINK_VERDICT_GO_ON = 0,
    PSYC_LINK_VERDICT_CLOSE = 1, /* CLOSED: write the pending output, then close */
    PSYC_LINK_VERDICT_TLS = 2,   /* TLS_START: call psyc_link_start_tls */
};

typedef enum psyc_link_state {
    PSYC_LINK_DETECT = 0, /* nothing received yet */
    PSYC_LINK_GREET,      /* syntax known; waiting for the peer's initial empty packet */
    PSYC_LINK_OPEN,       /* greeted: packets flow */
    PSYC_LINK_CLOSED,     /* verdict given: flush output, then close; input ignored */
    PSYC_LINK_TLS_START,  /* first byte 0x16: waiting for psyc_link_start_tls */
} psyc_link_state;

typedef enum psyc_link_event {
    PSYC_LINK_EV_SYNTAX,   /* syntax detected (link->syntax); packet NULL */
    PSYC_LINK_EV_GREETING, /* the peer's initial empty packet; our greeting is queued */
    PSYC_LINK_EV_PING,     /* empty packet; `answered` says whether a pong was queued */
    PSYC_LINK_EV_PACKET,   /* any other packet (views valid during the call only) */
} psyc_link_event;

typedef struct psyc_link psyc_link;
typedef void (*psyc_link_event_fn)(void *ctx, psyc_link *link, psyc_link_event ev,
                                   const psyc_packet *packet, int answered);

typedef struct psyc_link_params {
    const char *host;           /* our PSYC host name: _source psyc://HOST/ */
    const char *implementation; /* _implementation value in the 0.9 greeting */
    const char *peer_ip;        /* numeric, without brackets */
    int peer_port;
    int peer_v6;                /* 1 if the peer address is IPv6 */
    size_t max_packet;          /* 0: PSYC_DEFAULT_MAX_PACKET */
    int tls;                    /* 1: the bytes fed are already TLS plaintext (9404) */
    int tls_autodetect;         /* 1: the caller can start TLS on a first byte 0x16
                                   (PSYC.md §2.1); 0: such a circuit is closed */
    psyc_link_event_fn on_event;
    void *ctx;
} psyc_link_params;

struct psyc_link {
    psyc_link_state state;
    psyc_syntax syntax;
    char *host, *implementation, *peer_ip;
    int peer_port, peer_v6;
    int tls;            /* inside TLS (from the start, or after psyc_link_start_tls) */
    int tls_autodetect;
    psyc_limits limits;
    psyc_link_event_fn on_event;
    void *ctx;

    psyc_buf in;       /* received bytes; in.data + in_start = start of the current packet */
    size_t in_start;
    psyc09_parser p09;
    psyc_parser p10;
    psyc_packet pkt;

    psyc_buf out;      /* rendered bytes waiting to be written */

    int ponged;
    uint64_t last_pong_ms;
    uint64_t packets_in;

    int error;         /* 1 if the close verdict is a protocol error (log as warning) */
    char reason[256];  /* why the link is CLOSED */
};

/* 0, or PSYC_ERR_NOMEM. */
int psyc_link_init(psyc_link *l, const psyc_link_params *params);
void psyc_link_free(psyc_link *l);

/* Zero-copy input: space for at least `want` bytes (fewer only when memory
 * is short; NULL when none); then psyc_link_received(n) commits n of them. */
char *psyc_link_read_space(psyc_link *l, size_t want, size_t *avail);
/* Processes newly received bytes. Returns PSYC_LINK_VERDICT_GO_ON (0),
 * _CLOSE (1) when the link is CLOSED: write the pending output, then close
 * (l->reason says why), or _TLS (2) when the peer opened with a TLS record
 * (only with params.tls_autodetect): call psyc_link_start_tls. */
int psyc_link_received(psyc_link *l, size_t n, uint64_t now_ms);
/* Copying convenience for tests: same result as received(). */
int psyc_link_feed(psyc_link *l, const void *data, size_t n, uint64_t now_ms);

/* After PSYC_LINK_VERDICT_TLS: appends the bytes received so far (the
 * start of the peer's ClientHello) to *ciphertext for the TLS session and
 * resets the link to detect the syntax again, this time of the plaintext
 * inside TLS (a second 0x16 there closes the circuit). 0, or
 * PSYC_ERR_NOMEM (the link is then CLOSED). */
int psyc_link_start_tls(psyc_link *l, psyc_buf *ciphertext);

/* Moves the pending output into *out (which must be empty/initialised). */
void psyc_link_take_output(psyc_link *l, psyc_buf *out);

/* Gives the CLOSED verdict from outside (idle timeout, shutdown). No bytes
 * are queued. */
void psyc_link_close(psyc_link *l, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *psyc_link_syntax_name(psyc_syntax s);

/* Renders a psyced-style croak: no routing header, method, text, end
 * (PSYC.md §2.3 step 6; for 0.9 captures README "empty-header packet").
 * 0 or a negative psyc_err. */
int psyc_link_render_croak(psyc_syntax syntax, const char *method, const char *text, psyc_buf *out);

#endif /* GATEWAY_PSYC_LINK_H */
