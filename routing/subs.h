/*
 * subs.h: presence subscription state between a local entity (the XMPP
 * user behind the gateway) and a remote one (across PSYC), as RFC 6121 §3
 * and Appendix A define it, driven by the subscription stanzas that cross
 * the bridge in either direction. The bits are gateway/store.h's
 * STORE_SUB_* (TO: local sees remote's presence, FROM: remote sees local's,
 * PENDING_OUT / PENDING_IN: a request waits). Pure.
 */
#ifndef PSYCGATE_ROUTING_SUBS_H
#define PSYCGATE_ROUTING_SUBS_H

enum {
    SUBS_TO = 1,
    SUBS_FROM = 2,
    SUBS_PENDING_OUT = 4,
    SUBS_PENDING_IN = 8,
};

/* The state after a presence of `type` (subscribe, subscribed, unsubscribe,
 * unsubscribed) that the local entity sent (outbound = 1) or received
 * (outbound = 0). Anything else leaves the state as it is. */
unsigned subs_next(unsigned state, const char *type, int outbound);

/* "both", "to", "from", "none", plus " +pending-out" / " +pending-in"
 * (RFC 6121 §2.1.2.5 names), into buf; returns buf. */
const char *subs_name(unsigned state, char *buf, unsigned size);

#endif
