/*
 * register.h: XEP-0077 in-band registration with the gateway (issue 6
 * "The gateway as an XMPP entity"). In transport mode a user of another
 * XMPP domain appears on our PSYC host as psyc://HOST/~user@domain; one
 * who registers a nick appears as psyc://HOST/~NICK instead (routing/addr.h
 * addr_registry), the name a psyced user can type. Pure: the gateway keeps
 * the registrations (gateway/bridge_register.c).
 *
 *   get  <query xmlns='jabber:iq:register'/>     -> the form: <instructions/>
 *        and <nick/>, with <registered/> and the nick when registered (§3.1)
 *   set  <query><nick>N</nick></query>           -> registers N (§3.1)
 *   set  <query><remove/></query>                -> unregisters (§3.2)
 *
 * A nick is a PSYC person's name psyced accepts: 1-32 letters, digits,
 * '_' and '-', starting with a letter; compared and kept in lower case
 * (psyced lower-cases uniforms, PSYC.md §3.1).
 */
#ifndef PSYCGATE_ROUTING_REGISTER_H
#define PSYCGATE_ROUTING_REGISTER_H

#include <stddef.h>

#include "xmpp/xml.h"

#define REGISTER_NS "jabber:iq:register"
#define REGISTER_NICK_MAX 32

/* The nick in lower case into out (size > REGISTER_NICK_MAX); 0, or -1
 * when it is no valid nick (then out is ""). */
int register_nick_normalize(const char *nick, char *out, size_t size);

typedef enum register_op {
    REGISTER_NOT = 0, /* not a registration iq */
    REGISTER_QUERY,   /* get: wants the form */
    REGISTER_SET,     /* set with a <nick/> */
    REGISTER_REMOVE,  /* set with <remove/> */
    REGISTER_BAD,     /* set without a nick: <not-acceptable/> (§3.1) */
} register_op;

/* What an iq to the gateway's own domain asks; for REGISTER_SET, *nick is
 * the <nick/> text as sent (in the iq's memory). */
register_op register_parse(const xml_node *iq, const char **nick);

/* The form answering a REGISTER_QUERY (`nick`: the current registration
 * or NULL), from the iq's 'to' to its 'from', same id; NULL: no memory.
 * A set or remove is acknowledged with routing_entity_result (entity.h). */
xml_node *register_form(const xml_node *iq, const char *nick);

#endif
