/*
 * link.h: the protocol side of one PSYC circuit, without I/O (DESIGN.md §4:
 * "circuit state machine (greeting, authorization, ping, close) over
 * abstract byte I/O"). Included by psyc/psyc.h.
 *
 * Bytes in (psyc_link_received / psyc_link_feed), bytes out
 * (psyc_link_take_output), events to a callback, host checks to a second
 * callback, and a "close now" verdict with a reason. The libuv glue is
 * gateway/psyc_circuit.c; tests and fuzzers drive this without sockets.
 *
 * Accepting side (params.active = 0):
 *  - detects the syntax from the first byte (PSYC.md §2.1, §5): '.' 0.9,
 *    '|' 1.0, 0x16 TLS (PSYC_LINK_VERDICT_TLS: the caller starts a TLS
 *    server session with the bytes from psyc_link_start_tls and feeds the
 *    plaintext back; the link then detects '.' or '|' again, inside TLS),
 *    anything else: 0.9 `_error_syntax_initialization` croak and close;
 *  - waits for the peer's initial empty packet; on 0.9 answers with `.`,
 *    `_notice_circuit_established` and `_status_circuit` (PSYC.md §2.2,
 *    §9, captures 1-circuit-greeting/02..04), on 1.0 with `|` (§2.3 step 2).
 * Connecting side (params.active = 1, params.syntax 0.9 or 1.0):
 *  - psyc_link_init already queues the opening: 0.9 `.` and our
 *    `_notice_circuit_established` (what psyced sends when it connects,
 *    §9 "Greeting"), 1.0 `|` (§2.3 step 1);
 *  - waits for the peer's empty packet; 0.9 then sends `_status_circuit`
 *    and is ready; 1.0 sends `_request_authorization` for our host
 *    (§2.3 step 4, bytes as crafted/c02) and is ready on the matching
 *    `_status_authorization`.
 * Both sides:
 *  - answer later empty packets (pings) with an empty packet, at most once
 *    per PSYC_LINK_PONG_INTERVAL_MS (PSYC.md §2.2);
 *  - answer `_request_authorization` (1.0) with `_status_authorization` or
 *    `_error_invalid_uniform_source` / `_error_invalid_uniform_target`
 *    (§2.3 step 4);
 *  - authenticate the `_context` (else `_source`) host of every other
 *    packet for this circuit (PSYC.md §5): a host already authenticated or
 *    refused here is decided at once; otherwise the `authenticate` callback
 *    decides, possibly later (psyc_link_auth_result): meanwhile the link
 *    holds the packet and everything after it, in order. A refused packet
 *    gets `_error_rejected_relay_incoming` (§5 rule 4) unless it is itself
 *    an `_error`/`_failure`, and the circuit goes on;
 *  - hand circuit messages (no `_source`/`_context`, or the 0.9 greeting
 *    methods) to the callback as PSYC_LINK_EV_CIRCUIT, authenticated
 *    packets as PSYC_LINK_EV_PACKET;
 *  - on a parse error croak like psyced (empty routing header, then close).
 */
#ifndef PSYC_LINK_H
#define PSYC_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "psyc/psyc.h"

#define PSYC_LINK_PONG_INTERVAL_MS 120000u
/* Hosts remembered per circuit (authenticated or refused); the oldest
 * entry makes room for a new one. */
#define PSYC_LINK_MAX_HOSTS 64
#define PSYC_LINK_TAG_MAX 64

/* psyced's names (PSYC.md §5 rule 4, §2.3 step 4). */
#define PSYC_LINK_MC_REFUSED "_error_rejected_relay_incoming"
#define PSYC_LINK_TEXT_REFUSED "Your address [_host_IP] is not permitted to send as [_host]."

/* What psyc_link_received / psyc_link_feed / psyc_link_auth_result return. */
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
    PSYC_LINK_HOLD,       /* OPEN, but a host check is pending: input is buffered */
} psyc_link_state;

typedef enum psyc_link_event {
    PSYC_LINK_EV_SYNTAX,   /* syntax detected (link->syntax); packet NULL */
    PSYC_LINK_EV_GREETING, /* the peer's initial empty packet; our answer is queued */
    PSYC_LINK_EV_PING,     /* empty packet; `arg` says whether a pong was queued */
    PSYC_LINK_EV_PACKET,   /* an authenticated packet for routing (views valid during the call) */
    PSYC_LINK_EV_CIRCUIT,  /* a circuit message (greeting parts, authorization, croak) */
    PSYC_LINK_EV_REFUSED,  /* packet refused: host not authenticated (link->last_host) */
    PSYC_LINK_EV_READY,    /* we may send packets now (psyc_link_can_send) */
    PSYC_LINK_EV_NOT_AUTHORIZED, /* the peer refused our _request_authorization on a
                                    circuit it opened (ours is closed instead) */
} psyc_link_event;

typedef struct psyc_link psyc_link;
typedef void (*psyc_link_event_fn)(void *ctx, psyc_link *link, psyc_link_event ev,
                                   const psyc_packet *packet, int arg);

/* Verdicts of the authenticate callback and psyc_link_auth_result. */
enum {
    PSYC_LINK_AUTH_REFUSE = 0,
    PSYC_LINK_AUTH_ACCEPT = 1,
    PSYC_LINK_AUTH_PENDING = 2, /* the caller calls psyc_link_auth_result later,
                                   never from inside the callback */
};
/* Is `host` (lower case) allowed to send on this circuit? NULL callback:
 * every host is refused. `why` (size whysz) may receive a reason. */
typedef int (*psyc_link_auth_fn)(void *ctx, psyc_link *link, const char *host, char *why,
                                 size_t whysz);

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
    int delivery_acks;          /* 1: announce acknowledged delivery (see
                                   PSYC_LINK_VAR_UNDERSTAND_DELIVERY) */
    /* Connecting side only: */
    int active;                 /* 1: we opened this circuit */
    psyc_syntax syntax;         /* PSYC_SYNTAX_09 or _10 */
    const char *peer_host;      /* the host we connect to: _uniform_target (1.0) */
    const char *auth_tag;       /* _tag of our _request_authorization (1.0; random) */
    psyc_link_event_fn on_event;
    psyc_link_auth_fn authenticate;
    void *ctx;
} psyc_link_params;

typedef struct psyc_link_host {
    char *name;
    int ok;
} psyc_link_host;

struct psyc_link {
    psyc_link_state state;
    psyc_syntax syntax;
    char *host, *implementation, *peer_ip, *peer_host;
    int peer_port, peer_v6;
    int tls;            /* inside TLS (from the start, or after psyc_link_start_tls) */
    int tls_autodetect;
    int active;
    psyc_limits limits;
    psyc_link_event_fn on_event;
    psyc_link_auth_fn authenticate;
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
    uint64_t refused;  /* packets refused by host authentication */

    /* Host authentication (PSYC.md §5). */
    psyc_link_host hosts[PSYC_LINK_MAX_HOSTS];
    size_t n_hosts, next_host;
    char held_host[256];  /* HOLD: the host being checked */
    char last_host[256];  /* host of the last refused packet (EV_REFUSED) */
    char last_why[160];   /* why it was refused */
    int fresh_verdict;    /* psyc_link_auth_result just decided the held host */

    /* Our side may send (0.9: greeted; 1.0: authorization granted). */
    int can_send;
    char tag[PSYC_LINK_TAG_MAX + 1]; /* pending _request_authorization tag, "" if none */
    char auth_target[256];           /* its _uniform_target host */
    int auth_refused;                /* the peer refused it: never ready here */

    int acks;          /* we announce acknowledged delivery */
    int peer_acks;     /* the peer announced it */
    int peer_status;   /* 0.9: the peer's _status_circuit arrived (what it
                          announces is known) */

    int error;         /* 1 if the close verdict is a protocol error (log as warning) */
    char reason[256];  /* why the link is CLOSED */
};

/*
 * Acknowledged delivery between psycgates (issue 6: "kill -9 at any moment
 * loses nothing acknowledged"). PSYC itself has no acknowledgements
 * (PSYC.md §5 "Reliability / packet ids": specified, never implemented),
 * so a packet written into a circuit whose peer dies is gone. Two
 * psycgates therefore add, and only to each other:
 *  - an entity variable `_understand_delivery` (value `_status_delivery`)
 *    in the 0.9 `_status_circuit` and in the 1.0 `_request_authorization`
 *    / `_status_authorization`, which psyced ignores (it reads only the
 *    variables it knows there, PSYC.md §2.2, §2.3 step 4);
 *  - on each packet, the routing variable `_counter_delivery` =
 *    "<epoch>:<n>": n increases along one sender's queue toward one peer,
 *    epoch names that queue (a new one if the sender's store is lost);
 *  - the circuit message `_status_delivery` with `_counter_delivery` =
 *    "<epoch>:<n>": everything up to n of that queue is durably taken.
 * A routing variable psyced does not know would be refused on 1.0
 * ("illegal varname in routing header", §2.3 step 5), which is why none
 * of this is sent before the peer announced it.
 */
#define PSYC_LINK_VAR_UNDERSTAND_DELIVERY "_understand_delivery"
#define PSYC_LINK_VAR_COUNTER_DELIVERY "_counter_delivery"
#define PSYC_LINK_MC_STATUS_DELIVERY "_status_delivery"

/* 1 when both sides announced acknowledged delivery on this circuit. */
int psyc_link_delivery_acks(const psyc_link *l);
/* 1 once the peer's announcements are known: on 1.0 with the
 * authorization exchange, on 0.9 with the peer's `_status_circuit` (which
 * psyced and psycgate send in their greeting, PSYC.md §2.2). A sender that
 * wants acknowledged delivery waits for it before its first packet. */
int psyc_link_delivery_known(const psyc_link *l);
/* Queues `_status_delivery` for counter "<epoch>:<n>" (a circuit message). */
int psyc_link_send_delivery_ack(psyc_link *l, const char *counter);

/* 0, or PSYC_ERR_NOMEM / PSYC_ERR_INVALID (active without a 0.9/1.0 syntax). */
int psyc_link_init(psyc_link *l, const psyc_link_params *params);
void psyc_link_free(psyc_link *l);

/* Zero-copy input: space for at least `want` bytes (fewer only when memory
 * is short; NULL when none); then psyc_link_received(n) commits n of them. */
char *psyc_link_read_space(psyc_link *l, size_t want, size_t *avail);
/* Processes newly received bytes. Returns PSYC_LINK_VERDICT_GO_ON (0),
 * _CLOSE (1) when the link is CLOSED: write the pending output, then close
 * (l->reason says why), or _TLS (2) when the peer opened with a TLS record
 * (only with params.tls_autodetect): call psyc_link_start_tls. While a host
 * check is pending (state HOLD) bytes are only buffered; the caller should
 * stop reading until psyc_link_auth_result. */
int psyc_link_received(psyc_link *l, size_t n, uint64_t now_ms);
/* Copying convenience for tests: same result as received(). */
int psyc_link_feed(psyc_link *l, const void *data, size_t n, uint64_t now_ms);

/* The answer to an authenticate callback that returned PENDING for `host`:
 * remembers it for this circuit and processes the held input. Returns a
 * verdict as psyc_link_received. A result for another host than the one
 * held is ignored. */
int psyc_link_auth_result(psyc_link *l, const char *host, int accept, const char *why,
                          uint64_t now_ms);
/* 1 if `host` (any case) is authenticated on this circuit. */
int psyc_link_host_authenticated(const psyc_link *l, const char *host);

/* After PSYC_LINK_VERDICT_TLS: appends the bytes received so far (the
 * start of the peer's ClientHello) to *ciphertext for the TLS session and
 * resets the link to detect the syntax again, this time of the plaintext
 * inside TLS (a second 0x16 there closes the circuit). 0, or
 * PSYC_ERR_NOMEM (the link is then CLOSED). */
int psyc_link_start_tls(psyc_link *l, psyc_buf *ciphertext);

/* 1 when packets with our host's _source may be sent (EV_READY was given). */
int psyc_link_can_send(const psyc_link *l);
/* Renders p in the circuit's syntax into the output. 0, or a negative
 * psyc_err (PSYC_ERR_UNRENDERABLE: a 0.9 body line "."; PSYC_ERR_INVALID:
 * the link is not open). */
int psyc_link_send(psyc_link *l, const psyc_packet *p);
/* 1.0: asks the peer to accept our host as a source (PSYC.md §2.3 step 4),
 * on `target_host` (the peer's host: _uniform_target), with `tag` (a
 * random token). Done by the connecting side itself; the
 * accepting side calls it to send on a circuit the peer opened. EV_READY
 * follows the peer's `_status_authorization`. 0 or a negative psyc_err. */
int psyc_link_request_authorization(psyc_link *l, const char *target_host, const char *tag);

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

/* ------------------------------------------------------------------ */
/* Pure helpers of host authentication (PSYC.md §5), also used by the  */
/* gateway's authenticate callback.                                     */

/* The host that must be authenticated for p: that of `_context`, else of
 * `_source` (psyced parse.i/dispatch.i: t = _context || _source), lower
 * case into host (size hostsz). 1 found, 0 the packet has neither (a
 * circuit message), <0 the uniform does not parse (a psyc_uniform_err)
 * or is not psyc:. */
int psyc_link_auth_subject(const psyc_packet *p, char *host, size_t hostsz);
/* 1 if p is a circuit message: no `_source` and no `_context`, or one of
 * the 0.9 greeting methods `_notice_circuit_established`, `_status_circuit`
 * (PSYC.md §2.2, §2.3 step 5). */
int psyc_link_is_circuit_message(const psyc_packet *p);

/* What is known about a claimed host when a packet names it. */
typedef struct psyc_auth_facts {
    const char *host;        /* claimed host, lower case */
    const char *peer_ip;     /* the circuit's peer address, numeric */
    int circuit_trusted;     /* the peer IP, or a host authenticated on this circuit, is
                                in [psyc] trusted */
    int tls_match;           /* TLS on, peer certificate verified and names host (rule 3) */
} psyc_auth_facts;

typedef enum psyc_auth_decision {
    PSYC_AUTH_ACCEPT_TRUSTED = 1, /* rule 1: trusted circuit (psyced PSYC_TRUSTWORTHY_HOSTS) */
    PSYC_AUTH_ACCEPT_LITERAL,     /* the host is the peer's IP address itself */
    PSYC_AUTH_ACCEPT_TLS,         /* rule 3: certificate names the host */
    PSYC_AUTH_NEED_DNS,           /* rule 4: forward lookup must contain the peer IP */
} psyc_auth_decision;

/* The decision before any lookup (rule 2, "already authenticated", is the
 * link's own host table). */
psyc_auth_decision psyc_auth_decide(const psyc_auth_facts *f);
/* Rule 4: 1 if `peer_ip` is among ips[0..n-1] (numeric, as inet_ntop
 * writes them; IPv4-mapped IPv6 counts as IPv4). */
int psyc_auth_dns_match(const char *peer_ip, const char *const *ips, size_t n);
/* 1 if `name` (host or IP) is in the list (case-insensitive). */
int psyc_auth_listed(const char *name, const char *const *list, size_t n);

#endif /* PSYC_LINK_H */
