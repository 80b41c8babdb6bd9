/*
 * bridge_resource.h: the resource each XMPP user of ours was last seen
 * available with (from the presence that crossed to PSYC). PSYC has no
 * resources: psyced asks a person's software version (_request_version)
 * of the person, while XEP-0092 asks a client, and a bare JID is answered
 * by the user's server (RFC 6120 §10.5.4: mostly <service-unavailable/>).
 * Such requests go to the client we last saw instead.
 */
#ifndef GATEWAY_BRIDGE_RESOURCE_H
#define GATEWAY_BRIDGE_RESOURCE_H

#include "psyc/psyc.h"
#include "routing/strtab.h"
#include "xmpp/xml.h"

struct bridge;

/* An empty table of them. */
void bridge_resource_init(strtab *t);
/* A presence from one of our XMPP users: available notes its full JID,
 * unavailable forgets it. */
void bridge_resource_note(strtab *t, const xml_node *st);
/* For a request that asks a client (psyced's _request_version) without a
 * _resource_target, to a user whose client we know: a copy of p with
 * that resource. A psycgate's request (with _jabber_XML) is the XMPP
 * requester's own and goes where it was addressed. The copy goes into
 * out (initialised by the call). 1 when made, 0 when
 * p goes as it is. */
int bridge_resource_direct(struct bridge *b, const psyc_packet *p, psyc_packet *out);
void bridge_resource_clear(strtab *t);

#endif
