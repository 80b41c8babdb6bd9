/*
 * s2s.h: XMPP stream state machines without sockets (DESIGN.md §4, issue 4):
 *
 *   s2s_in    a server-to-server stream another server opened to us
 *             (RFC 6120 receiving entity; XEP-0220 Receiving and
 *             Authoritative Server);
 *   s2s_out   a stream we open to another server (RFC 6120 initiating
 *             entity; XEP-0220 Initiating Server, or in verify mode the
 *             Receiving Server asking an Authoritative Server);
 *   comp      a XEP-0114 component connection to the local XMPP server,
 *             as the component (the client side).
 *
 * None of them touches a socket, a clock, DNS or TLS. The caller (gateway/)
 * feeds the bytes it read, writes the bytes the machine queued, runs the
 * actions it reports, and passes the time in (milliseconds, any monotonic
 * origin) where timeouts matter. One loop per connection:
 *
 *     n = s2s_in_feed(sm, buf, len, now);       // bytes read from the peer
 *     out = s2s_in_output(sm);                  // write out->data[0..len),
 *     ...                                       // then psyc_buf_reset(out)
 *     while (s2s_in_next_action(sm, &a)) {      // run every action
 *         switch (a.kind) { ... }
 *         s2s_action_clear(&a);                 // frees what was not taken
 *     }
 *     timer: s2s_in_next_deadline(sm) -> s2s_in_tick(sm, now)
 *
 * Write the output before running a START_TLS or CLOSE action: the bytes
 * before it (<proceed/>, <starttls/>, </stream:stream>) belong in plaintext,
 * before the TLS handshake, before the socket is closed.
 *
 * The three kinds are independent: an s2s_in never waits for an s2s_out
 * (dialback in both directions at once cannot deadlock, harness notes §2.6);
 * the caller links them: an S2S_ACT_VERIFY_KEY of an s2s_in becomes an
 * s2s_out_verify() on a stream to the authoritative server, whose
 * S2S_ACT_VERIFY_RESULT goes back through s2s_in_verify_result().
 */
#ifndef PSYCGATE_XMPP_S2S_H
#define PSYCGATE_XMPP_S2S_H

#include <stddef.h>
#include <stdint.h>

#include "psyc/psyc.h"
#include "xmpp/xml.h"

/* Longest stream id we generate or accept (ids are compared, not parsed). */
#define S2S_ID_MAX 64
#define S2S_NO_DEADLINE UINT64_MAX

/* ------------------------------------------------------------------ */
/* Shared types                                                        */

typedef enum s2s_tls_policy {
    S2S_TLS_NONE = 0, /* never offer or start TLS */
    S2S_TLS_OPTIONAL, /* offer / use it when the peer offers it */
    S2S_TLS_REQUIRED, /* nothing but STARTTLS before TLS (RFC 6120 §5.3.1) */
} s2s_tls_policy;

/* Writes a fresh stream id (NUL-terminated, at most S2S_ID_MAX bytes, XML
 * attribute-safe) into out. Injectable so tests get deterministic ids; the
 * default is 128 random bits in hex from OpenSSL's RAND_bytes. */
typedef void (*s2s_id_fn)(void *ud, char out[S2S_ID_MAX + 1]);

typedef enum s2s_db_result {
    S2S_DB_VALID = 1, /* type='valid' */
    S2S_DB_INVALID,   /* type='invalid' */
    S2S_DB_ERROR,     /* type='error', or no answer (timeout, stream gone) */
} s2s_db_result;

typedef enum s2s_auth_method {
    S2S_AUTH_DIALBACK = 1, /* XEP-0220 */
    S2S_AUTH_SASL_EXTERNAL, /* XEP-0178 */
    S2S_AUTH_CERT_DIALBACK, /* dialback signalling, identity from the TLS certificate */
    S2S_AUTH_HANDSHAKE,     /* XEP-0114 */
} s2s_auth_method;

typedef enum s2s_action_kind {
    S2S_ACT_NONE = 0,
    /* Write the output, stop reading plaintext (whatever followed in the
     * chunk was NOT consumed and must be discarded: RFC 6120 §5.4.3.3),
     * run the TLS handshake (server side for s2s_in, client side for
     * s2s_out), then call s2s_*_tls_done() or s2s_*_tls_failed(). */
    S2S_ACT_START_TLS,
    /* s2s_in: ask the authoritative server of `from` whether `key` is valid
     * for (from, to, id): s2s_out_verify(to, from, id, key) on a stream
     * from `to` to `from`; then s2s_in_verify_result(from, to, id, ...). */
    S2S_ACT_VERIFY_KEY,
    /* s2s_out (any mode): the answer to an s2s_out_verify(): `from` is the
     * authoritative domain, `to` ours, `id` the id of the stream that
     * asked; result VALID / INVALID / ERROR (ERROR also when the stream
     * ended or timed out first). */
    S2S_ACT_VERIFY_RESULT,
    /* A stanza from an authenticated domain pair: from/to are the
     * (normalised) domains of its 'from' and 'to'; `stanza` passes to the
     * caller (set a.stanza = NULL before s2s_action_clear). */
    S2S_ACT_STANZA,
    /* The pair from -> to is authenticated on this stream (method says
     * how). s2s_in: the peer may send from `from` to `to`; s2s_out: we may
     * send (queued stanzas are already written); comp: handshake done,
     * from = our component domain, to = NULL. */
    S2S_ACT_AUTHENTICATED,
    /* s2s_out: the pair from -> to was refused (result INVALID or ERROR);
     * its queued stanzas follow as S2S_ACT_BOUNCE. */
    S2S_ACT_AUTH_FAILED,
    /* A stanza this stream took but could not send (pair refused, stream
     * closed, timeout): `stanza` passes to the caller, who resends it on
     * another stream or returns it to its sender with the stanza error
     * `stanza_error` (RFC 6120 §8.3.3; XEP-0220 §2.1.1). */
    S2S_ACT_BOUNCE,
    /* The stream is over: write the output, then close the connection.
     * cond: the stream error (NONE for none), cond_remote: it came from the
     * peer; clean: both sides sent </stream:stream> (RFC 6120 §4.4). */
    S2S_ACT_CLOSE,
    /* One log line (text), with the peer and the reason. */
    S2S_ACT_LOG,
} s2s_action_kind;

typedef struct s2s_action {
    s2s_action_kind kind;
    char *from, *to;          /* domains (see the kinds) */
    char *id;                 /* VERIFY_KEY, VERIFY_RESULT: stream id */
    char *key;                /* VERIFY_KEY: the dialback key */
    char *text;               /* LOG line; CLOSE / AUTH_FAILED reason; may be NULL */
    xml_node *stanza;         /* STANZA, BOUNCE: owned by the action until taken */
    const char *stanza_error; /* BOUNCE: stanza error condition name (static) */
    s2s_db_result result;     /* VERIFY_RESULT, AUTH_FAILED */
    s2s_auth_method method;   /* AUTHENTICATED */
    xml_cond cond;            /* CLOSE */
    int cond_remote;          /* CLOSE */
    int clean;                /* CLOSE */
} s2s_action;

/* Frees the strings and a stanza still in the action; zeroes it. */
void s2s_action_clear(s2s_action *a);
const char *s2s_action_kind_name(s2s_action_kind k); /* "STANZA" ... */

/* ------------------------------------------------------------------ */
/* Receiving stream (s2s_in)                                           */

typedef enum s2s_in_state {
    S2S_IN_WAIT_HEADER = 0, /* before the peer's header (also after a restart) */
    S2S_IN_OPEN,            /* header answered; negotiating and/or authenticated */
    S2S_IN_TLS,             /* <proceed/> sent, the caller runs the handshake */
    S2S_IN_CLOSING,         /* our </stream:stream> sent; reading until the peer's (XEP-0190) */
    S2S_IN_CLOSED,          /* over; the CLOSE action is queued */
} s2s_in_state;

typedef struct s2s_in_config {
    const char *const *domains; /* the domains we serve (normalised by s2s_in_new) */
    size_t ndomains;
    const char *secret;         /* our dialback secret: answers db:verify (XEP-0185) */
    size_t secret_len;
    s2s_tls_policy tls;
    int tls_available;          /* the caller can run a server TLS handshake */
    /* The peer understands dialback errors (XEP-0220 §2.4): a refused
     * db:result gets type='error' instead of type='invalid' / a stream
     * error, and other pairs on the stream live on. Also settable later
     * (s2s_in_set_peer_dialback_errors), e.g. from the features of our
     * own stream to that peer (s2s_out_peer_dialback_errors). */
    int peer_dialback_errors;
    /* Accept a db:result for a domain the verified peer certificate covers
     * without dialing back ("dialback without dialing back", XEP-0344 §2.3). */
    int cert_dialback;
    size_t max_stanza;          /* 0: XML_DEFAULT_MAX_STANZA */
    unsigned max_pairs;         /* domain pairs (pending + valid) per stream; 0: 64 */
    uint64_t auth_timeout_ms;   /* header to first authenticated pair; 0: none */
    uint64_t close_timeout_ms;  /* wait for the peer's </stream:stream>; 0: 10 s */
    uint64_t idle_timeout_ms;   /* close an idle authenticated stream (XEP-0190); 0: never */
    const char *peer;           /* for log lines ("192.0.2.7:41234"); copied; may be NULL */
    s2s_id_fn gen_id;           /* NULL: random */
    void *gen_id_ud;
} s2s_in_config;

typedef struct s2s_in s2s_in;

/* NULL when memory runs out or the config is unusable (no domain, a
 * domain that is not a valid domain name, TLS required without TLS). */
s2s_in *s2s_in_new(const s2s_in_config *cfg, uint64_t now_ms);
void s2s_in_free(s2s_in *sm);

/* Bytes read from the peer. Returns how many were consumed: len, except
 * after a START_TLS action (the rest is plaintext injection, to be
 * discarded). In the TLS and CLOSED states nothing is consumed. */
size_t s2s_in_feed(s2s_in *sm, const void *data, size_t len, uint64_t now_ms);
/* Bytes to send; the caller writes them and resets the buffer. */
psyc_buf *s2s_in_output(s2s_in *sm);
/* 1 and *out filled, or 0 when there is none. */
int s2s_in_next_action(s2s_in *sm, s2s_action *out);

/* After S2S_ACT_START_TLS: the handshake succeeded. names: the domains the
 * peer's certificate was verified for (PKIX + RFC 6125 by the caller;
 * "*.example.org" wildcards allowed), n may be 0 (no or untrusted
 * certificate: dialback only). The peer then sends a new header. */
void s2s_in_tls_done(s2s_in *sm, const char *const *names, size_t n, uint64_t now_ms);
void s2s_in_tls_failed(s2s_in *sm, uint64_t now_ms);

/* The answer to an S2S_ACT_VERIFY_KEY (from = the peer's domain, to = ours,
 * id = as in the action). error_cond: for S2S_DB_ERROR, the dialback error
 * condition to report (XEP-0220 §2.4: "remote-server-not-found",
 * "remote-connection-failed", "remote-server-timeout"); NULL gives
 * remote-server-not-found. Returns 1 when it matched a pending request,
 * 0 when not (stale: stream restarted or closed; dropped, XEP-0220 §2.1.2). */
int s2s_in_verify_result(s2s_in *sm, const char *from, const char *to, const char *id,
                         s2s_db_result result, const char *error_cond, uint64_t now_ms);
void s2s_in_set_peer_dialback_errors(s2s_in *sm, int supported);

/* Graceful close (XEP-0190, RFC 6120 §4.4): with a stream error when cond
 * is not NONE. Stanzas the peer sends until its own close still arrive. */
void s2s_in_close(s2s_in *sm, xml_cond cond, const char *text, uint64_t now_ms);
/* The connection is gone (EOF or error). */
void s2s_in_eof(s2s_in *sm, uint64_t now_ms);
/* Timeouts; call at s2s_in_next_deadline() or later. */
void s2s_in_tick(s2s_in *sm, uint64_t now_ms);
uint64_t s2s_in_next_deadline(const s2s_in *sm);

s2s_in_state s2s_in_get_state(const s2s_in *sm);
const char *s2s_in_stream_id(const s2s_in *sm);   /* current id; "" before the header */
const char *s2s_in_peer_domain(const s2s_in *sm); /* header 'from' (normalised) or NULL */
int s2s_in_tls_active(const s2s_in *sm);
/* 1 when from -> to is authenticated on this stream. */
int s2s_in_is_authenticated(const s2s_in *sm, const char *from, const char *to);

/* ------------------------------------------------------------------ */
/* Initiating stream (s2s_out)                                         */

typedef enum s2s_out_state {
    S2S_OUT_WAIT_HEADER = 0, /* our header sent; waiting for the peer's */
    S2S_OUT_WAIT_FEATURES,   /* version 1.0: waiting for <stream:features/> */
    S2S_OUT_WAIT_PROCEED,    /* <starttls/> sent */
    S2S_OUT_TLS,             /* <proceed/> read, the caller runs the handshake */
    S2S_OUT_WAIT_SASL,       /* <auth mechanism='EXTERNAL'/> sent */
    S2S_OUT_READY,           /* negotiated: dialback, verifies, stanzas */
    S2S_OUT_CLOSING,         /* our </stream:stream> sent */
    S2S_OUT_CLOSED,
} s2s_out_state;

typedef enum s2s_out_mode {
    S2S_OUT_NORMAL = 0, /* authenticate from -> to and carry stanzas */
    S2S_OUT_VERIFY,     /* only db:verify requests; closes after the last answer */
} s2s_out_mode;

typedef struct s2s_out_config {
    const char *from;         /* our domain (header 'from', Sender Domain) */
    const char *to;           /* the peer's domain (header 'to', Target Domain) */
    const char *secret;       /* our dialback secret: keys for db:result (XEP-0185) */
    size_t secret_len;
    s2s_out_mode mode;
    s2s_tls_policy tls;
    int tls_available;        /* the caller can run a client TLS handshake */
    int have_cert;            /* we present a certificate for `from`: SASL EXTERNAL when offered */
    size_t max_stanza;        /* 0: XML_DEFAULT_MAX_STANZA */
    unsigned max_queue;       /* stanzas queued before authentication; 0: 1000 */
    unsigned max_pairs;       /* 0: 64 */
    uint64_t negotiation_timeout_ms; /* header..READY; 0: none */
    uint64_t dialback_timeout_ms;    /* per db:result / db:verify; 0: none */
    uint64_t close_timeout_ms;       /* 0: 10 s */
    uint64_t idle_timeout_ms;        /* 0: never */
    const char *peer;         /* for log lines; copied; may be NULL */
} s2s_out_config;

typedef struct s2s_out s2s_out;

/* Queues our stream header. NULL on OOM or an unusable config. */
s2s_out *s2s_out_new(const s2s_out_config *cfg, uint64_t now_ms);
void s2s_out_free(s2s_out *sm);

size_t s2s_out_feed(s2s_out *sm, const void *data, size_t len, uint64_t now_ms);
psyc_buf *s2s_out_output(s2s_out *sm);
int s2s_out_next_action(s2s_out *sm, s2s_action *out);

/* After S2S_ACT_START_TLS: handshake done (the peer's certificate checked
 * by the caller against cfg->to); a new header is queued. */
void s2s_out_tls_done(s2s_out *sm, uint64_t now_ms);
void s2s_out_tls_failed(s2s_out *sm, uint64_t now_ms);

typedef enum s2s_send_result {
    S2S_SEND_OK = 0,        /* taken: written, or queued until its pair is authenticated */
    S2S_SEND_BAD = -1,      /* not taken: no valid 'from' / 'to' */
    S2S_SEND_NO_PAIR = -2,  /* not taken: that pair cannot be negotiated on this stream
                               (XEP-0220 §2.6: target multiplexing needs <errors/>;
                               verify mode; refused before) */
    S2S_SEND_CLOSED = -3,   /* not taken: the stream is closing or closed */
    S2S_SEND_FULL = -4,     /* not taken: max_queue reached */
} s2s_send_result;

/* Sends (or queues) a stanza; on S2S_SEND_OK it belongs to the machine.
 * The pair is the domains of its 'from' and 'to'; a new pair starts its
 * own dialback on this stream where XEP-0220 §2.6 allows. */
s2s_send_result s2s_out_send(s2s_out *sm, xml_node *stanza, uint64_t now_ms);
/* Starts authenticating a pair without a stanza (same rules). */
s2s_send_result s2s_out_authenticate(s2s_out *sm, const char *from, const char *to, uint64_t now_ms);
/* Queues <db:verify from=from to=to id=id>key</db:verify> (XEP-0220
 * §2.1.2): from = our domain, to = the authoritative domain (this stream's
 * peer), id and key as the S2S_ACT_VERIFY_KEY gave them. The answer comes
 * as S2S_ACT_VERIFY_RESULT. 0, or -1 (closed, bad arguments, OOM). */
int s2s_out_verify(s2s_out *sm, const char *from, const char *to, const char *id, const char *key,
                   uint64_t now_ms);

void s2s_out_close(s2s_out *sm, xml_cond cond, const char *text, uint64_t now_ms);
void s2s_out_eof(s2s_out *sm, uint64_t now_ms);
void s2s_out_tick(s2s_out *sm, uint64_t now_ms);
uint64_t s2s_out_next_deadline(const s2s_out *sm);

s2s_out_state s2s_out_get_state(const s2s_out *sm);
const char *s2s_out_stream_id(const s2s_out *sm); /* the peer's id ("" if none) */
int s2s_out_tls_active(const s2s_out *sm);
/* The peer advertised <dialback><errors/></dialback> (XEP-0220 §2.5.2). */
int s2s_out_peer_dialback_errors(const s2s_out *sm);
int s2s_out_is_authenticated(const s2s_out *sm, const char *from, const char *to);
size_t s2s_out_queued(const s2s_out *sm); /* stanzas waiting for authentication */

/* ------------------------------------------------------------------ */
/* XEP-0114 component, client side (comp)                              */

typedef enum comp_state {
    COMP_WAIT_HEADER = 0, /* our header sent */
    COMP_WAIT_HANDSHAKE,  /* <handshake>digest</handshake> sent */
    COMP_READY,           /* stanzas both ways */
    COMP_CLOSING,
    COMP_CLOSED,
} comp_state;

typedef struct comp_config {
    const char *domain;       /* the component's domain (header 'to') */
    const char *secret;       /* shared secret with the server */
    size_t secret_len;
    size_t max_stanza;        /* 0: XML_DEFAULT_MAX_STANZA */
    unsigned max_queue;       /* stanzas sent before the handshake completed; 0: 1000 */
    uint64_t handshake_timeout_ms; /* 0: none */
    uint64_t close_timeout_ms;     /* 0: 10 s */
    const char *peer;
} comp_config;

typedef struct comp_stream comp_stream;

comp_stream *comp_new(const comp_config *cfg, uint64_t now_ms);
void comp_free(comp_stream *c);
size_t comp_feed(comp_stream *c, const void *data, size_t len, uint64_t now_ms);
psyc_buf *comp_output(comp_stream *c);
int comp_next_action(comp_stream *c, s2s_action *out);
/* Sends (or queues until the handshake) a stanza; S2S_SEND_OK = taken. */
s2s_send_result comp_send(comp_stream *c, xml_node *stanza, uint64_t now_ms);
void comp_close(comp_stream *c, xml_cond cond, const char *text, uint64_t now_ms);
void comp_eof(comp_stream *c, uint64_t now_ms);
void comp_tick(comp_stream *c, uint64_t now_ms);
uint64_t comp_next_deadline(const comp_stream *c);
comp_state comp_get_state(const comp_stream *c);

/* hex(SHA-1(stream_id || secret)) into out (XEP-0114 §3). 0 or -1. */
int comp_handshake_digest(const char *stream_id, const char *secret, size_t secret_len,
                          char out[41]);

#endif
