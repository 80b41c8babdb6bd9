/*
 * xep33.h: Extended Stanza Addressing (XEP-0033) for the last hop of a
 * fan-out (issue 7): toward an XMPP server that advertises it (ejabberd's
 * mod_multicast), one stanza per server carries the address list instead
 * of one stanza per recipient. Pure functions over xml_node trees.
 */
#ifndef PSYCGATE_ROUTING_XEP33_H
#define PSYCGATE_ROUTING_XEP33_H

#include <stddef.h>

#include "xmpp/xml.h"

#define XEP33_NS "http://jabber.org/protocol/address"
/* XEP-0033 §8 suggests limits; servers may refuse longer lists. */
#define XEP33_MAX_ADDRESSES 100

typedef struct xep33_address {
    const char *type; /* "to", "cc", "bcc", "replyto", "replyroom", "noreply", "ofrom" */
    const char *jid;  /* may be NULL (uri/node forms) */
    int delivered;    /* delivered='true' */
} xep33_address;

/* The <addresses/> of a stanza: up to max entries into out (views into the
 * tree), the count in *n. Returns 1 when the stanza has an <addresses/>
 * element, 0 when not, -1 when it is malformed (an <address/> without
 * type, or more than max). */
int xep33_parse(const xml_node *stanza, xep33_address *out, size_t max, size_t *n);

/* A copy of `stanza` for `server` (the multicast service's JID, usually
 * the remote domain) carrying `n` recipients as type='to' addresses. The
 * stanza's 'from' is kept (XEP-0033 §4: a multicast service never changes
 * it), its 'to' becomes the service, any existing <addresses/> replaced.
 * NULL on OOM or when n is 0 or above XEP33_MAX_ADDRESSES. */
xml_node *xep33_build(const xml_node *stanza, const char *server, const char *const *recipients,
                      size_t n);

/* The copies a receiving multicast service makes (XEP-0033 §4.5): one per
 * address of type to/cc/bcc not yet delivered, 'to' set to it, bcc
 * addresses removed from every copy and every address marked delivered.
 * Returns the number of copies put into out (up to max); 0 when none or on
 * OOM (out is then empty). */
size_t xep33_expand(const xml_node *stanza, xml_node **out, size_t max);

/* ---- discovery (XEP-0033 §2): the server itself, or one of its disco
 * items (ejabberd's mod_multicast: multicast.SERVER), lists the feature. */

/* <iq type='get' from to id><query xmlns='disco#info' or '#items'/></iq>. */
xml_node *xep33_disco_query(const char *from, const char *to, const char *id, int items);

/* The most recipients a service takes in one stanza (XEP-0033 §8 and
 * XEP-0128: ejabberd advertises non-default limits as fields "message" and
 * "presence" of an extended-info form with FORM_TYPE XEP33_NS). */
typedef struct xep33_limits {
    unsigned message, presence;
} xep33_limits;

/* From an <iq type='result'/> to a disco#info query: 1 when it lists
 * XEP33_NS (and *lim updated from the form, fields not there left as
 * they are, "infinite" = XEP33_MAX_ADDRESSES), 0 when it does not, -1
 * when it is no disco#info result (an error, another payload). */
int xep33_disco_info(const xml_node *iq, xep33_limits *lim);

/* From a disco#items result: the items that may be a multicast service
 * (a bare domain JID, no node: XEP-0033 §2.2), views into the tree, up to
 * max. Returns how many. */
size_t xep33_disco_items(const xml_node *iq, const char **out, size_t max);

/* ---- receiving (the gateway as a multicast service, XEP-0033 §5) */

/* Whether `stanza` (to a multicast service of ours) may be expanded:
 * NULL when yes (*n = its undelivered to/cc/bcc addresses), else the
 * stanza error condition of XEP-0033 §8 for the answer: "bad-request"
 * (not a message or presence, no or a malformed <addresses/>, nothing
 * left to deliver), "not-acceptable" (more than XEP33_MAX_ADDRESSES),
 * "jid-malformed" (an address to deliver without a JID: we do not
 * deliver to URIs), "forbidden" (a recipient `ours` says is not ours:
 * we do not relay to other servers). */
const char *xep33_check(const xml_node *stanza, int (*ours)(void *ud, const char *jid), void *ud, size_t *n);

#endif
