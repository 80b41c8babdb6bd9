/*
 * tls.h: TLS for every face of the gateway, over OpenSSL 3 memory BIOs.
 *
 * The engine never touches a socket (DEPS.md §3): the caller moves bytes.
 *
 *     socket bytes ──▶ tls_conn_feed()  ─▶ [SSL] ─▶ tls_conn_read()  ──▶ protocol
 *     socket write ◀── tls_conn_take_output() ◀─ [SSL] ◀─ tls_conn_write() ◀── protocol
 *
 * The driving loop, the same for a circuit, an S2S stream or a test that
 * pumps two tls_conn into each other:
 *
 *   on socket data:  tls_conn_feed(c, data, n);          (<0: failed, see below)
 *                    while (tls_conn_read(c, buf, cap, &got) == TLS_OK && got)
 *                        deliver(buf, got);
 *                    write tls_conn_take_output(c, &out) to the socket
 *   to send:         tls_conn_write(c, data, n);         (queued until the handshake is done)
 *                    write tls_conn_take_output(c, &out) to the socket
 *
 * Take the output after EVERY call (feed, read, write, close): handshake
 * messages, TLS 1.3 session tickets, KeyUpdate answers and alerts are
 * produced while reading (DEPS.md §3 pitfall 3). The output after a
 * failure holds the alert that tells the peer why; sending it is polite,
 * not required.
 *
 * TLS from the first byte (PSYC 9404, autodetect on 4404, PSYC.md §2.1,
 * §5): create the tls_conn before reading, feed everything.
 *
 * STARTTLS mid-stream (XMPP, RFC 6120 §5.4): the stream code writes
 * <proceed/> (server) or reads it (client) in plaintext; from then on the
 * socket carries TLS only. The CALLER MUST DROP every plaintext byte that
 * arrived after <starttls/> (server) or after <proceed/> (client) in the
 * same read: those bytes were sent before the handshake by whoever could
 * inject into the TCP stream, and must never reach SSL or the new stream's
 * parser (CVE-2011-0411 class, DEPS.md §3 pitfall 1). Then create the
 * tls_conn (client: tls_conn_new_client, whose ClientHello is already in
 * the output; server: tls_conn_new_server) and feed only bytes read after
 * that point. After the handshake start a NEW XML parser on the plaintext.
 *
 * Peer certificates (RFC 6125, XEP-0178, PSYC.md §5): both sides ask for
 * the peer's certificate and verify its chain against the CA file or the
 * system store, but never fail the handshake over it: an S2S peer without
 * a valid certificate may still use dialback, a PSYC peer DNS or trust. The
 * verdict is read after the handshake with tls_conn_peer_verified() and
 * tls_conn_peer_matches(). Session resumption is off on both sides, so the
 * verdict always comes from the chain presented in this handshake.
 *
 * Protocol: TLS 1.2 and 1.3 only; for TLS 1.2 only (EC)DHE cipher suites
 * with AEAD or CBC+SHA2/SHA1, so every session has forward secrecy (psyced
 * refuses others: PSYC.md §2.3 step 1, §5 `tls_bad_cipher`); no
 * renegotiation (a CPU-exhaustion lever, and nothing here needs it).
 *
 * One event loop thread (DESIGN.md §4): a tls_ctx and its tls_conns must
 * not be used from several threads at once.
 */
#ifndef GATEWAY_TLS_H
#define GATEWAY_TLS_H

#include <stddef.h>
#include <stdio.h>

#include "gateway/config.h"
#include "psyc/psyc.h"

typedef struct tls_ctx tls_ctx;
typedef struct tls_conn tls_conn;

enum {
    TLS_OK = 0,
    TLS_CLOSED = 1,     /* tls_conn_read: the peer sent close_notify; no more data */
    TLS_ERR = -1,       /* fatal: the session is dead; tls_conn_error() says why */
    TLS_ERR_NOMEM = -2, /* out of memory (the session is dead too) */
};

/* ------------------------------------------------------------------ */
/* Context: our credentials and trust anchors, shared by connections. */

typedef struct tls_ctx_params {
    const char *certificate; /* PEM file: our certificate, then its intermediates.
                                NULL: no certificate (client use only; a server
                                handshake then fails) */
    const char *key;         /* PEM private key matching `certificate` */
    const char *ca_file;     /* PEM bundle of trusted CAs; NULL or "": the system
                                store (SSL_CTX_set_default_verify_paths) */
} tls_ctx_params;

/* Builds the server and the client SSL_CTX. 0, or -1 with a reason in err
 * (file that cannot be read, key that does not match the certificate, ...). */
int tls_ctx_new(const tls_ctx_params *p, tls_ctx **out, char *err, size_t errsz);
/* Frees the context. Connections keep a reference of their own, so this
 * may be called while some are still open. NULL is fine. */
void tls_ctx_free(tls_ctx *ctx);
/* 1 if the context has a certificate and can run server handshakes. */
int tls_ctx_can_serve(const tls_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Connection                                                         */

/* Accepting side (PSYC listeners; XMPP after sending <proceed/>).
 * NULL when memory runs out. */
tls_conn *tls_conn_new_server(tls_ctx *ctx);
/* Connecting side. `host` (may be NULL) is the name we expect the server
 * to prove: sent as SNI (RFC 6066: DNS names only, not IP literals) and
 * checked by tls_conn_peer_verified(). The ClientHello is in the output on
 * return: take it and write it. NULL when memory runs out or the handshake
 * cannot even start (tls_conn_new_client never returns a failed conn). */
tls_conn *tls_conn_new_client(tls_ctx *ctx, const char *host);
/* Frees the SSL object, its BIOs and every buffer. NULL is fine. */
void tls_conn_free(tls_conn *c);

/* Ciphertext read from the socket; advances the handshake. Returns TLS_OK
 * (0), 1 if the handshake completed during this call (once per session),
 * or TLS_ERR / TLS_ERR_NOMEM. Plaintext that came with it is read with
 * tls_conn_read. */
int tls_conn_feed(tls_conn *c, const void *data, size_t n);

/* Decrypted bytes, up to cap. TLS_OK with *got > 0: data; TLS_OK with
 * *got == 0: nothing more until more ciphertext is fed (also during the
 * handshake); TLS_CLOSED: the peer ended the session with close_notify;
 * TLS_ERR: a protocol error or an alert from the peer. */
int tls_conn_read(tls_conn *c, void *buf, size_t cap, size_t *got);

/* Plaintext to send. Before the handshake completes it is queued and sent
 * right after it (DEPS.md §3 pitfall 4). TLS_OK, TLS_ERR (the session is
 * failed or closed), or TLS_ERR_NOMEM. */
int tls_conn_write(tls_conn *c, const void *data, size_t n);

/* Appends all pending ciphertext to out. TLS_OK or TLS_ERR_NOMEM (nothing
 * is lost then: call again later). */
int tls_conn_take_output(tls_conn *c, psyc_buf *out);
/* Bytes of ciphertext waiting to be taken. */
size_t tls_conn_output_pending(const tls_conn *c);

/* Queues close_notify (we will send nothing more). After a failure or
 * before the handshake completes nothing is sent. Take the output after. */
void tls_conn_close(tls_conn *c);

/* ------------------------------------------------------------------ */
/* State, after or during the handshake                               */

int tls_conn_is_server(const tls_conn *c);
int tls_conn_handshake_done(const tls_conn *c);
int tls_conn_failed(const tls_conn *c);
/* Why the session failed ("" while it has not). Includes OpenSSL's reason,
 * e.g. "TLS handshake failed: wrong version number". */
const char *tls_conn_error(const tls_conn *c);

/* "TLSv1.3", "TLS_AES_256_GCM_SHA384"; "-" before the handshake. */
const char *tls_conn_version(const tls_conn *c);
const char *tls_conn_cipher(const tls_conn *c);
/* The server name the client asked for with SNI (server side), or NULL. */
const char *tls_conn_sni(const tls_conn *c);

/* 1 if the peer presented a certificate. */
int tls_conn_peer_has_cert(const tls_conn *c);
/* Subject of the peer's certificate, RFC 2253 style ("CN=a.example,O=X"),
 * or "-" when there is none. Returns buf. */
const char *tls_conn_peer_subject(const tls_conn *c, char *buf, size_t size);

/* 1 if the handshake is done, the peer presented a certificate, and its
 * chain verified against our trust anchors (validity dates included). On
 * the client side with a `host`, the certificate must also match that host
 * (RFC 6125, as tls_conn_peer_matches). */
int tls_conn_peer_verified(const tls_conn *c);
/* Why tls_conn_peer_verified() is 0, e.g. "no certificate",
 * "unable to get local issuer certificate (depth 0)",
 * "certificate does not match gw.example.org"; "" when it is 1. */
const char *tls_conn_peer_verify_error(const tls_conn *c, char *buf, size_t size);

/* RFC 6125 check of the peer's certificate for `domain` (an A-label DNS
 * name; a trailing dot is ignored): 1 if the chain verified (as above,
 * ignoring the client-side `host`) and the certificate names `domain`:
 *  - the dNSName subjectAltNames (§6.4.1), compared case-insensitively;
 *  - the subject CN only if there is no dNSName SAN at all (§6.4.4);
 *  - a wildcard only as the whole leftmost label, matching exactly one
 *    label: "*.example.org" matches "a.example.org", not "example.org",
 *    "a.b.example.org" or, as "f*.example.org", anything (§6.4.3).
 * Used by SASL EXTERNAL (XEP-0178 §3.1) and PSYC host authentication
 * (PSYC.md §5, rule 3). */
int tls_conn_peer_matches(const tls_conn *c, const char *domain);

/* The DNS identities of a verified peer certificate: its dNSName SANs, or
 * its subject CN when there are none (wildcards included as written).
 * Returns the count and a NULL-terminated array in *names (free with
 * tls_names_free), 0 and NULL when the chain did not verify or memory ran
 * out. For xmpp's s2s_in_tls_done(names, n). */
size_t tls_conn_peer_names(const tls_conn *c, char ***names);
void tls_names_free(char **names);

/* ------------------------------------------------------------------ */
/* Our own certificate (gateway/tls_cert.c)                           */

/* Writes a new P-256 key (mode 0600) and a self-signed X.509 v3
 * certificate for `host` (subjectAltName DNS:host, or IP:host for an IPv4
 * literal; serverAuth and clientAuth; ten years) to the two paths,
 * creating missing directories (mode 0700). Each file is written under a
 * temporary name and renamed into place. 0, or -1 with a reason in err. */
int tls_cert_generate_self_signed(const char *host, const char *cert_path, const char *key_path,
                                  char *err, size_t errsz);

/* What the daemon does at start: resolves [tls] certificate/key (empty =
 * <state_dir>/tls/psycgate.crt, .key), generates a self-signed pair when
 * both files are missing and [tls] generate_self_signed is yes, loads
 * them with [tls] ca_file, logs one line about our certificate, and warns
 * if it does not name [gateway] host or has expired. 0 and *out, or -1
 * after logging why. */
int tls_setup_from_config(const cfg *c, tls_ctx **out);

/* For --check-config: the same checks without writing anything. Prints
 * problems (and what would be generated) to f. 0 if the daemon would
 * start its TLS layer, -1 if not. */
int tls_check_config(const cfg *c, FILE *f);

#endif /* GATEWAY_TLS_H */
