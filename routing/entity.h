/*
 * entity.h: the gateway as an XMPP entity (issue 6 "The gateway as an XMPP
 * entity"): what its own address (the served domain) answers. Pure: the
 * clock is passed in.
 *
 *   XEP-0030 disco#info   identity gateway/psyc and the features below;
 *                         a node we do not have: <item-not-found/>
 *   XEP-0030 disco#items  the places the gateway hosts (given by the caller)
 *   XEP-0092 version      name, version, and the OS when configured
 *   XEP-0012 last         for a server: seconds since it started (§5)
 *   XEP-0199 ping         an empty result
 *   XEP-0077 register     listed when `registration` is set (the gateway
 *                         answers it, routing/register.h)
 */
#ifndef PSYCGATE_ROUTING_ENTITY_H
#define PSYCGATE_ROUTING_ENTITY_H

#include <stdint.h>

#include "xmpp/xml.h"

#define ENTITY_NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define ENTITY_NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define ENTITY_NS_VERSION "jabber:iq:version"
#define ENTITY_NS_LAST "jabber:iq:last"
#define ENTITY_NS_PING "urn:xmpp:ping"
#define ENTITY_NS_REGISTER "jabber:iq:register" /* XEP-0077, routing/register.h */

typedef struct routing_entity_item {
    const char *jid;
    const char *name; /* may be NULL */
} routing_entity_item;

typedef struct routing_entity {
    const char *name;    /* software name, "psycgate" */
    const char *version; /* its version */
    const char *os;      /* XEP-0092 <os/>; NULL: not disclosed (§3, privacy) */
    uint64_t boot_ms;    /* when the gateway started (any monotonic origin) */
    const routing_entity_item *items; /* hosted places for disco#items */
    size_t n_items;
    int registration;    /* XEP-0077 is answered (by the caller): listed in disco#info */
} routing_entity;

/* <iq type='result' from=to to=from id=id/>, the empty answer to `iq`;
 * NULL when memory ran out. */
xml_node *routing_entity_result(const xml_node *iq);

/* The answer to `iq` when it is a get to the entity (its 'to' has no
 * local part) for one of the protocols above; the reply goes from the
 * 'to' to the 'from', with the same id. NULL when the iq is none of them
 * (the caller answers with an error then) or memory ran out. */
xml_node *routing_entity_answer(const xml_node *iq, const routing_entity *e, uint64_t now_ms);

#endif
