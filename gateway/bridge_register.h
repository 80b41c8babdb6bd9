/*
 * bridge_register.h: XEP-0077 registration on the transport domain
 * (routing/register.h), kept in the store (namespace "reg": bare JID ->
 * nick) and in two tables the address mapping asks (routing/addr.h
 * addr_registry): a registered user is psyc://HOST/~NICK both ways.
 */
#ifndef GATEWAY_BRIDGE_REGISTER_H
#define GATEWAY_BRIDGE_REGISTER_H

#include "routing/strtab.h"
#include "xmpp/xml.h"

struct bridge;

typedef struct bridge_reg {
    strtab by_jid, by_nick; /* bridge_reg_entry, the same items in both */
    size_t n;
} bridge_reg;

/* Transport mode only: loads the registrations from the store and hooks
 * them into the bridge's address map; marks the entity as registering
 * (disco#info lists jabber:iq:register). 0, or -1 out of memory. */
int bridge_register_init(struct bridge *b);
/* The answer to a jabber:iq:register iq to the transport domain (the
 * registration done), or NULL when `st` is none (or memory ran out). */
xml_node *bridge_register_reply(struct bridge *b, const xml_node *st);
void bridge_register_cleanup(struct bridge *b);

#endif
