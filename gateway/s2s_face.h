/*
 * s2s_face.h: the XMPP server-to-server face (issue 5; RFC 6120, XEP-0220,
 * XEP-0178, XEP-0190, XEP-0199) on real sockets.
 *
 * Receiving: listeners on [s2s] listen; each accepted connection is an
 * s2s_conn with an s2s_in for our domains. A dialback key it must check
 * (VERIFY_KEY) is asked of the authoritative server over an outgoing
 * stream to it: an existing one (as Prosody does) or a verify-only one.
 * Stanzas go to routing (routing_xmpp_local); answers leave on OUR
 * outgoing stream to the sender's domain (an S2S stream carries stanzas
 * one way only, RFC 6120 §4.1).
 *
 * Initiating: s2s_face_send() is the one entry for "send this stanza to
 * the remote domain in its 'to'". One outgoing link per (our domain,
 * remote domain): DNS SRV _xmpp-server._tcp (gateway/dns.h), candidates
 * in order, STARTTLS per [s2s] tls, SASL EXTERNAL when our certificate
 * names our domain and is not self-signed, else dialback with XEP-0185
 * keys from the persistent secret (gateway/s2s_secret.h). Stanzas wait in
 * the link (during DNS and connect) or in the machine (during
 * negotiation); after [s2s] give_up seconds without an authenticated
 * stream, or when the pair is refused, each goes back to its sender as a
 * stanza error (remote-server-not-found when DNS or every connect failed,
 * remote-server-timeout on timeout; errors are never bounced). A stream
 * lost (EOF, RST) with stanzas still queued is replaced once by a new
 * stream before they bounce.
 *
 * Liveness: an authenticated outgoing stream silent for ping_interval gets
 * a XEP-0199 ping; no answer within min(ping_interval, 60 s) closes it. An
 * outgoing stream without stanzas for idle_timeout is closed (XEP-0190);
 * incoming ones are closed by their machine after idle_timeout.
 */
#ifndef GATEWAY_S2S_FACE_H
#define GATEWAY_S2S_FACE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gateway/config.h"
#include "gateway/dns.h"
#include "gateway/tls.h"
#include "xmpp/xml.h"

typedef struct s2s_face s2s_face;

/* Reads [s2s] (and [gateway] host, state_dir, [tls] certificate), loads or
 * creates the dialback secret, opens the listeners. 0, or -1 after logging
 * why. *out is set as soon as the face holds handles (also on a failure
 * then): the caller stops and frees it. dns and tls (may be NULL: no TLS)
 * stay owned by the caller and must outlive s2s_face_stop. */
int s2s_face_start(uv_loop_t *loop, const cfg *c, dns *d, tls_ctx *tls, s2s_face **out);

/* Who takes the stanzas for our domains (the core: gateway/bridge.c); it
 * owns each stanza. Without one, routing_xmpp_local answers (echo, ping,
 * <service-unavailable/>). The callee may call s2s_face_send. */
typedef void (*s2s_face_local_fn)(void *ud, xml_node *stanza, const char *domain);
void s2s_face_set_local(s2s_face *f, s2s_face_local_fn fn, void *ud);
/* 1 when `domain` (lower case) is one of ours on this face. */
int s2s_face_serves(const s2s_face *f, const char *domain);

/* Sends a stanza to the domain of its 'to' (takes it in every case).
 * A 'to' at one of our domains is delivered locally (routing). 0 when
 * taken for delivery, -1 when it was refused or bounced (logged). */
int s2s_face_send(s2s_face *f, xml_node *stanza);

/* Closes the listeners, cancels DNS, drops what is queued (logged), and
 * closes every stream (XEP-0190, the socket goes after at most 2 s), so
 * the loop runs dry. Call before dns_close. Idempotent; NULL is fine. */
void s2s_face_stop(s2s_face *f, const char *why);
/* Frees the face after the loop ran dry. NULL is fine. */
void s2s_face_free(s2s_face *f);

/* For status and tests. */
size_t s2s_face_links(const s2s_face *f);
/* 1 while stanzas from `from` to `to` (domains) may still wait in the
 * face: its link is not authenticated yet, or holds a queue; 0 once what
 * was sent for the pair is written to an authenticated stream, or was
 * returned to its sender (the link failed), or went elsewhere. */
int s2s_face_pair_busy(const s2s_face *f, const char *from, const char *to);
size_t s2s_face_conns(const s2s_face *f);

#endif
