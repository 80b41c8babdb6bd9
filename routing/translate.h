/*
 * translate.h: XMPP stanzas <-> PSYC packets (issue 6 "Translation",
 * DESIGN.md §3: inside the gateway every message is a PSYC packet; XMPP is
 * an edge format). Pure functions over routing/addr.h: no I/O, no clock.
 *
 * Addresses: 'from' -> _source, 'to' -> _target through addr_map; a JID's
 * resource rides in _resource_source / _resource_target, except for a MUC
 * occupant sending (*room@host/nick), where the place is _context and the
 * occupant's nick is _nick (PSYC.md §3.2). (_nick_target is not used: in
 * psyced's errors it names the entity the error is about.)
 * The stanza 'id' is _tag (errors and iq results: _tag_relay, the PSYC 1.0
 * name, PSYC.md §4.1), xml:lang is _language.
 *
 * Messages (PSYC.md §4.4, §4.5):
 *   chat                      <-> _message_private
 *   normal / no type          <-> _message_private_normal
 *   headline                  <-> _message_private_headline
 *   groupchat                 <-> _message_public
 *   groupchat, only <subject> <-> _request_set_topic (to a room) /
 *                                 _notice_place_topic (from a room), _topic
 *   body "/me TEXT"           <-> _action = TEXT and an empty body
 *   only a chat state         <-> _notice_typing_{active,composing,paused,inactive,gone}
 * Every other child (subject, thread, XHTML-IM, receipts, delay, unknown
 * extensions) is kept verbatim in _jabber_XML, psyced's name for raw XML,
 * and put back after <body/> at the far XMPP edge ("InnerXML", DESIGN.md §3),
 * so nothing a client sent is dropped.
 *
 * Presence (PSYC.md §4.3; the show <-> method pairs of psyced's
 * jabber.textdb, which unlike its jabber2avail table round-trip):
 *   (no show)  <-> _notice_presence_here             _degree_availability 7
 *   chat       <-> _notice_presence_here_talkative   8
 *   dnd        <-> _notice_presence_here_busy        6
 *   away       <-> _notice_presence_away             3
 *   xa         <-> _notice_presence_absent_vacation  2
 *   unavailable<-> _notice_presence_absent           1
 *   with a XEP-0203 <delay/>: _status_presence_* instead of _notice_*
 *   <status/> <-> _description_presence, <priority/> <-> _degree_priority,
 *   XEP-0107 mood (in the presence) <-> _degree_mood (psyced's 0-9 scale),
 *   _description_mood (the XEP-0107 name), _text_mood (translate_mood.c);
 *   a mood published over PEP (XEP-0163) <-> _notice_mood
 *   probe <-> _request_status_person
 * Subscriptions: subscribe <-> _request_friendship, subscribed <->
 * _notice_friendship_established, unsubscribed <-> _notice_friendship_removed,
 * unsubscribe <-> _notice_friendship_removed_request (inherits
 * _notice_friendship_removed, so psyced understands it).
 *
 * IQ (PSYC.md §4.5, translate_iq.c): version, last activity, ping, vCard
 * and disco gets and results in psyced's methods (_request_version /
 * _status_version ...), errors as the method of their condition, any other
 * iq as psyced's _jabber_iq_{get,set,result,error}; the children always in
 * _jabber_XML too, so a psycgate at the far end restores the iq exactly.
 * The id is _tag (requests) or _tag_relay and psyced's _tag_reply (answers).
 *
 * Errors (RFC 6120 §8.3): a message, presence or iq of type 'error' becomes
 * the PSYC method of its condition (translate_error_method), the <text/>
 * its body (an iq error keeps its children in _jabber_XML and goes back as
 * an iq error); back, the method is matched by keyword inheritance
 * (translate_error_condition), so _failure_unsuccessful_delivery_death still
 * finds recipient-unavailable.
 */
#ifndef PSYCGATE_ROUTING_TRANSLATE_H
#define PSYCGATE_ROUTING_TRANSLATE_H

#include "psyc/psyc.h"
#include "routing/addr.h"
#include "xmpp/xml.h"

typedef enum translate_result {
    TRANSLATE_OK = 0,
    TRANSLATE_IGNORE = 1,            /* nothing to send, and nothing to answer */
    TRANSLATE_ERR_NOMEM = -1,
    TRANSLATE_ERR_ADDRESS = -2,      /* 'from'/'to' (_source/_target) missing or unmappable */
    TRANSLATE_ERR_UNSUPPORTED = -3,  /* a kind we do not translate (yet) */
    TRANSLATE_ERR_INVALID = -4,      /* malformed: e.g. a message type we do not know */
} translate_result;

const char *translate_strerror(int rc);

/* XMPP -> PSYC: fills `out` (initialised, empty). On an error, `cond` (if
 * not NULL) names the stanza error to answer the sender with (RFC 6120
 * §8.3.3), NULL when it must not be answered (an error stanza). */
int translate_from_xmpp(const addr_map *m, const xml_node *stanza, psyc_packet *out,
                        const char **cond);

/* PSYC -> XMPP: a new stanza in the content namespace (ns NULL) in *out.
 * [_var] templates in the body are expanded first (PSYC.md §2.2). */
int translate_to_xmpp(const addr_map *m, const psyc_packet *p, xml_node **out);
/* The same for a multicast without _target (a presence or place context,
 * PSYC.md §4.2): `target` is the uniform of the local recipient the caller
 * fans it out to (a packet's own _target wins). */
int translate_to_xmpp_for(const addr_map *m, const psyc_packet *p, const char *target, xml_node **out);

/* A one-to-one presence packet made into the context multicast psyced
 * sends (PSYC.md §9): _source becomes _context and _source_relay, _target
 * and _resource_target go; the rest is copied. `out` must be initialised
 * (and is freed by the caller also on failure). 0 or a negative psyc_err. */
int translate_as_multicast(const psyc_packet *in, psyc_packet *out);

/* Stanza error condition <-> PSYC method (see the table in translate_err.c).
 * translate_error_method: "_failure_unavailable_service" for
 * "service-unavailable", a _error_/_failure_ method made from the name for
 * conditions without a psyced counterpart, never NULL. */
const char *translate_error_method(const char *cond, const char *type);
/* The condition for a method of the _error / _failure family (by keyword
 * inheritance), "undefined-condition" when nothing closer matches, and
 * *type the RFC 6120 §8.3.2 error type to use. */
const char *translate_error_condition(psyc_str method, const char **type);

#endif
