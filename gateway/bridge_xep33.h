/*
 * bridge_xep33.h: Extended Stanza Addressing (XEP-0033) on the XMPP side
 * of the bridge (issue 7, DESIGN.md §5).
 *
 * Sending: the last hop of a fan-out (one received PSYC multicast, N local
 * recipients) goes, per XMPP server of the recipients, as one stanza with
 * an <addresses/> list to that server's multicast service when it has one
 * (ejabberd's mod_multicast: multicast.SERVER), else as N stanzas. Support
 * is discovered per server (XEP-0033 §2: disco#info on the server, else
 * disco#items and disco#info on each item) and cached with a TTL (§2.3);
 * until the answer comes, or when there is none, stanzas go one each.
 *
 * Receiving: the gateway's domains advertise the feature (routing/entity.c);
 * a message or presence to one of them with <addresses/> is expanded
 * (XEP-0033 §5: one copy per to/cc/bcc, bcc removed from every copy, all
 * marked delivered, 'from' never changed) and each copy takes the
 * bridge's normal path. We do not relay: every recipient must be an
 * address of ours (§8 <forbidden/> otherwise).
 */
#ifndef GATEWAY_BRIDGE_XEP33_H
#define GATEWAY_BRIDGE_XEP33_H

#include <stddef.h>
#include <stdint.h>

#include "xmpp/xml.h"

typedef struct bridge bridge;
typedef struct bridge_xep33 bridge_xep33;

typedef struct bridge_xep33_stats {
    uint64_t stanzas;      /* XEP-0033 stanzas sent to multicast services */
    uint64_t recipients;   /* recipients they carried */
    uint64_t single;       /* stanzas sent one per recipient by bridge_xep33_fanout */
    uint64_t expanded;     /* XEP-0033 stanzas received and expanded */
    uint64_t refused;      /* XEP-0033 stanzas received and refused */
} bridge_xep33_stats;

bridge_xep33 *bridge_xep33_new(void);
void bridge_xep33_free(bridge_xep33 *x);
const bridge_xep33_stats *bridge_xep33_get_stats(const bridge_xep33 *x);

/* Sends copies of `tmpl` (a message or presence; its 'to' is replaced,
 * everything else kept) to the `n` JIDs: per XMPP server one XEP-0033
 * stanza per service limit to its multicast service when it has one,
 * else one stanza per JID. Starts discovery for servers not known yet.
 * Returns how many recipients were addressed (n unless out of memory). */
size_t bridge_xep33_fanout(bridge *b, const xml_node *tmpl, const char *const *jids, size_t n);

/* A stanza that came from XMPP for our `domain`: 1 when it was ours (the
 * answer to one of our discovery queries, or a XEP-0033 stanza to our
 * domain, then expanded or refused) and is consumed (freed), 0 when the
 * bridge goes on with it. */
int bridge_xep33_from_xmpp(bridge *b, xml_node *st, const char *domain);

#endif
