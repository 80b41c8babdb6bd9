/*
 * bridge.h: the core wired to the faces (issue 6, DESIGN.md §3): XMPP
 * stanzas become PSYC packets and back, so people on both sides talk.
 *
 *   component link / S2S face ──stanza──▶ bridge_from_xmpp
 *        local services (echo, the domain's disco/version/last/ping)
 *        else routing/translate ──packet──▶ psyc_out (circuit to the _target's host)
 *   PSYC face (after host authentication) ──packet──▶ bridge_from_psyc
 *        _target on our host (not ~echo) ──translate──▶ stanza
 *   bridge_send_xmpp: on the component link of the stanza's 'from' domain,
 *        else on the S2S face when we serve that domain there.
 *
 * Addresses (routing/addr.h): natural (user@host = psyc://host/~user)
 * unless [bridge] transport names the domain T under which PSYC people
 * live as nick%host@T (transport mode; XMPP users then appear on our PSYC
 * host as psyc://HOST/~user@domain). Every hop is one log line.
 */
#ifndef GATEWAY_BRIDGE_H
#define GATEWAY_BRIDGE_H

#include <stdint.h>
#include <uv.h>

#include "psyc/psyc.h"
#include "routing/addr.h"
#include "routing/coalesce.h"
#include "gateway/bridge_register.h"
#include "routing/entity.h"
#include "routing/replies.h"
#include "xmpp/xml.h"

typedef struct gw gw;

typedef struct bridge_stats {
    uint64_t xmpp_in, psyc_in;     /* taken from each side */
    uint64_t to_psyc, to_xmpp;     /* sent on after translation */
    uint64_t local_answers;        /* echo, disco, version, ping */
    uint64_t refused;              /* answered with an error */
    uint64_t iq_timeouts;          /* requests answered with <remote-server-timeout/> */
    uint64_t presence_multicasts;  /* broadcasts sent as one context packet per host */
    uint64_t presence_copies_saved;/* stanzas those multicasts replaced */
    uint64_t presence_fanout;      /* stanzas made from received multicasts */
} bridge_stats;

/* An iq request sent to PSYC (or, psyc_requester, from PSYC to XMPP),
 * until its answer comes or it times out. */
typedef struct bridge_pending {
    struct bridge_pending *next;
    char *tag, *requester, *to;
    uint64_t deadline_ms;
    int psyc_requester;            /* asked from PSYC: the timeout goes back as a packet */
} bridge_pending;

typedef struct bridge {
    gw *g;
    addr_map map;
    char transport[254];           /* [bridge] transport, "" = natural mode */
    routing_entity entity;
    replies *replies;              /* answers back to the resource that asked */
    bridge_pending *pending, *pending_tail; /* oldest first */
    size_t n_pending;
    bridge_pending *expired, *expired_tail; /* timed out: late answers are dropped */
    size_t n_expired;
    uint64_t iq_timeout_ms;        /* [bridge] iq_timeout */
    uv_timer_t timer;              /* the first pending deadline */
    int timer_live;
    pc_coalescer *pc;              /* presence copies -> one broadcast (issue 7) */
    struct bridge_outbox *outbox;  /* stanzas waiting for a component link */
    uv_timer_t pc_timer;           /* closes presence bursts */
    int pc_timer_live;
    bridge_reg reg;                /* XEP-0077 nicks (gateway/bridge_register.h) */
    strtab resources;              /* users' last clients (gateway/bridge_resource.h) */
    struct bridge_xep33 *x33;      /* XEP-0033 discovery cache (gateway/bridge_xep33.h) */
    bridge_stats stats;
} bridge;

/* Reads [bridge]; checks that a transport domain is one we serve (a
 * [component] domain or an [s2s] domain). 0, or -1 after logging why. */
int bridge_init(bridge *b, gw *g);

/* Closes the timer (with gw_stop); pending requests are dropped (logged). */
void bridge_stop(bridge *b);
/* Frees what bridge_init allocated (after the loop ran dry). */
void bridge_cleanup(bridge *b);

/* A stanza for one of our XMPP domains (`domain`), from the component link
 * or the S2S face. Takes it. */
void bridge_from_xmpp(bridge *b, xml_node *stanza, const char *domain);

/* A packet that passed host authentication. 1 when the bridge took it (its
 * _target is an XMPP entity behind our host), 0 when it is routing's
 * (our PSYC services, other hosts, multicasts). */
int bridge_from_psyc(bridge *b, const psyc_packet *p, const char *peer);

/* Sends a stanza toward XMPP by its 'from' domain (takes it). 0 sent or
 * queued, -1 no face for that domain (logged, dropped). */
int bridge_send_xmpp(bridge *b, xml_node *stanza);

/* 1 when a stanza from `jid` has a face to leave by: its domain is one of
 * our [component] domains or an [s2s] domain we serve. */
int bridge_has_face(bridge *b, const char *jid);

#endif
