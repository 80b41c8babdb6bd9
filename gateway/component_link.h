/*
 * component_link.h: the component face (issue 5): one outgoing TCP
 * connection to the local XMPP server per served domain, speaking XEP-0114
 * (Jabber Component Protocol) as the component through the comp_stream
 * state machine of xmpp/s2s.h.
 *
 *   idle --connect--> connecting --TCP up--> handshaking --<handshake/>--> linked
 *     ^                                                                     |
 *     +---- retry timer (1 s, 2 s, 4 s ... 60 s) <---- loss / refusal -----+
 *
 * The server address is numeric (config), so no DNS is involved. Each state
 * change is one log line with the server as the peer; "component DOMAIN
 * linked to HOST:PORT" marks a working link. A lost or refused link is
 * retried with exponential backoff from 1 s to 60 s (reset once linked).
 */
#ifndef GATEWAY_COMPONENT_LINK_H
#define GATEWAY_COMPONENT_LINK_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "xmpp/s2s.h"

#define COMPONENT_BACKOFF_MIN_MS 1000u
#define COMPONENT_BACKOFF_MAX_MS 60000u

typedef struct component_link component_link;

/* A stanza the server sent us (from/to stamped by the server, XEP-0114
 * §3). The callee owns it. It may call component_link_send. */
typedef void (*component_stanza_fn)(component_link *l, xml_node *stanza, void *ud);

struct component_link {
    uv_loop_t *loop;
    char *domain;                 /* the component domain (lower case) */
    char *secret;
    struct sockaddr_storage addr; /* the XMPP server's component port */
    char peer[64];                /* "127.0.0.1:5347" / "[::1]:5347" */
    component_stanza_fn on_stanza;
    void *ud;

    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_timer_t deadline;          /* comp_next_deadline */
    uv_timer_t retry;             /* backoff before the next connect */
    int tcp_live;                 /* tcp initialised and its close not yet completed */
    int timers_live;              /* deadline and retry initialised, not closed */
    int handles_open;             /* handles whose close callback is pending or not closed */

    comp_stream *sm;              /* NULL while not connected */
    int linked;                   /* handshake accepted on the current connection */
    int stopping;
    uint32_t backoff_ms;          /* delay before the next reconnect */
    uint64_t attempts, links;     /* connects started, handshakes accepted */
};

/* Fills l (no handles yet). host: numeric IPv4 or IPv6. 0, or a negative
 * libuv error (bad address, out of memory). */
int component_link_init(component_link *l, uv_loop_t *loop, const char *domain, const char *host,
                        uint16_t port, const char *secret, component_stanza_fn on_stanza, void *ud);
/* Starts the timers and the first connect. 0 or a negative libuv error. */
int component_link_start(component_link *l);
/* Sends a stanza on the link (takes it in every case). 0 when taken by the
 * stream (written, or queued until the handshake), -1 when dropped: not
 * connected, or refused by the stream (logged). */
int component_link_send(component_link *l, xml_node *stanza);
/* Ends the link for good: </stream:stream> if connected, then every handle
 * is closed (the loop runs dry). Idempotent. */
void component_link_stop(component_link *l, const char *why);
/* Frees what l holds; after the loop has run dry (or if never started). */
void component_link_cleanup(component_link *l);

#endif /* GATEWAY_COMPONENT_LINK_H */
