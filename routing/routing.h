/*
 * routing.h: the core boundary (issue 5, "The core boundary"). Everything a
 * face receives is handed here; what routing wants sent comes back as a
 * stanza for the face to send on the same link. Pure: no I/O, no clock,
 * no global state, so every rule is unit-testable (DESIGN.md §4).
 *
 * For now the only service is the echo that proves the paths: a message to
 * echo@<served domain> is answered.
 */
#ifndef PSYCGATE_ROUTING_H
#define PSYCGATE_ROUTING_H

#include "psyc/psyc.h"
#include "xmpp/xml.h"

/* The local part of the echo service's JID. */
#define ROUTING_ECHO_LOCAL "echo"

/*
 * The echo service. `stanza` arrived for `domain` (a domain we serve,
 * normalised: lower case). Returns a new tree to send back, or NULL when
 * the stanza is not for the echo service or must not be answered:
 *
 *   answered: <message/> whose 'to' is echo@domain (any resource), with a
 *             'from' that is a valid JID and a non-empty <body/>, of type
 *             normal, chat or headline (or no type);
 *   reply:    <message from=(the 'to' it was sent to) to=(its 'from')
 *             type=(same) id=(same)><body>echo: TEXT</body></message>,
 *             elements in the stream's content namespace (ns NULL).
 *
 * Errors and groupchat are never answered: answering an error could loop
 * between two echoes (RFC 6120 §8.3.1), and a groupchat echo would be
 * reflected by the room again. NULL also when memory runs out.
 */
xml_node *routing_echo(const xml_node *stanza, const char *domain);

/* ------------------------------------------------------------------ */
/* PSYC packets (routing/psyc_route.c, psyc_echo.c): every packet that   */
/* passed host authentication on a circuit comes here.                   */

/* The nick of the PSYC echo service: psyc://HOST/~echo. */
#define ROUTING_PSYC_ECHO_NICK "echo"

typedef struct routing_psyc_env {
    const char *host;    /* our PSYC host ([gateway] host) */
    int circuit_trusted; /* it came on a circuit of a [psyc] trusted peer */
} routing_psyc_env;

typedef enum routing_psyc_verdict {
    ROUTING_PSYC_DROP = 0, /* nothing to send; `why` says why */
    ROUTING_PSYC_ANSWER,   /* send `out`, a new packet, towards its _target */
    ROUTING_PSYC_FORWARD,  /* relay the packet itself towards its _target */
} routing_psyc_verdict;

/*
 * Decides what to do with an authenticated packet `in`. For ANSWER, `out`
 * (initialised by the caller, empty) receives the answer. Rules:
 *   _context (multicast): no local members yet: DROP (PSYC.md §4.2);
 *   no _target or our root as _target, or no _source: DROP;
 *   _target on our host: the echo (routing_psyc_echo), else
 *     `_error_unknown_name_user` (PSYC.md §4.4) to the _source;
 *   _target elsewhere: FORWARD if the sender is on our own host or the
 *     circuit is trusted (psyced relays only for trusted peers, §5 rule 1),
 *     else `_failure_unsupported_relay` (§4.4) to the _source.
 * An `_error`/`_failure` packet is never answered (two peers would bounce
 * errors at each other). Returns the verdict, or a negative psyc_err.
 */
int routing_psyc(const psyc_packet *in, const routing_psyc_env *env, psyc_packet *out,
                 const char **why);

/*
 * The PSYC echo service: a `_message_private` (or a kind of it) to
 * psyc://HOST/~echo from a `_source` is answered with `_message_private`,
 * `_source` psyc://HOST/~echo, `_target` the sender, `_tag_relay` = its
 * `_tag`, `_nick` echo, body "echo: TEXT". 1 answered into `out`, 0 not
 * for the echo (out untouched), or a negative psyc_err.
 */
int routing_psyc_echo(const psyc_packet *in, const char *host, psyc_packet *out);

/* 1 if `uniform` is a psyc: uniform on `host` (case-insensitive; the port
 * is not compared: one gateway per host). */
int routing_psyc_is_local(psyc_str uniform, const char *host);

/* A `mc` error or failure about `in` from `source` back to in's _source
 * (with _tag_relay), for routing and for the outgoing queue's bounces.
 * 1 built, 0 not to be answered (in is an error/failure or has no
 * _source), or a negative psyc_err. */
int routing_psyc_bounce(const psyc_packet *in, const char *source, const char *mc, const char *text,
                        psyc_packet *out);

/* ------------------------------------------------------------------ */
/* Local XMPP answers of the S2S face (routing/xmpp_local.c)           */

#define ROUTING_NS_PING "urn:xmpp:ping"                         /* XEP-0199 */
#define ROUTING_NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas" /* RFC 6120 §8.3 */

/*
 * The error reply to `stanza` (RFC 6120 §8.3.1): same element name, from
 * and to swapped, same id, type='error', and
 * <error type=T><CONDITION xmlns=ROUTING_NS_STANZAS/></error> with T the
 * type RFC 6120 §8.3.3 gives the condition (wait for remote-server-timeout,
 * resource-constraint; cancel otherwise). A message or presence keeps its
 * payload (the sender sees what failed, §8.3.1 allows it); an iq does not.
 * NULL when the stanza must not be answered with an error: it is an error
 * itself (§8.3.1: never answer an error with an error, or two servers
 * bounce forever), it has no 'from', it is an iq result, or memory ran out.
 */
xml_node *routing_error_reply(const xml_node *stanza, const char *condition);

/* XEP-0199 §4.2/§4.3: an <iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>
 * to `domain` or to any JID at it gets <iq type='result'/> from the 'to'
 * it was sent to. NULL for anything else. */
xml_node *routing_ping_reply(const xml_node *stanza, const char *domain);

/*
 * What the gateway answers, as an XMPP server of `domain`, to a stanza an
 * S2S peer delivered to it. Returns the reply to send (to the stanza's
 * sender), or NULL with *why saying why nothing is sent:
 *   1. the echo service (routing_echo), then the XEP-0199 ping;
 *   2. no service: an iq get/set or a message gets <service-unavailable/>
 *      (RFC 6120 §8.3.3.19, §10.5.3), except a message to the echo JID that
 *      the echo does not answer (a chat state, a groupchat): that JID
 *      exists, so it is dropped;
 *   3. presence, iq results and errors are dropped (never answer an error,
 *      RFC 6120 §8.3.1; presence to an unknown JID is silently ignored,
 *      RFC 6121 §4.3, §8.5.2).
 */
xml_node *routing_xmpp_local(const xml_node *stanza, const char *domain, const char **why);

#endif
