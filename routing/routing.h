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

#endif
