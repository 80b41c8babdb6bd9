/*
 * muc.h: XEP-0045 multi-user chat <-> PSYC places (issue 7, PSYC.md §4.2,
 * §4.5, §9). Pure: stanzas and packets in, stanzas and packets out.
 *
 * The member side of a place: an XMPP occupant's stanzas to a room become
 * requests to the place (routing/place.h names them), and what the place
 * sends becomes the stanzas XEP-0045 shows that occupant:
 *
 *   presence to room/nick           -> _request_enter, _nick (again with
 *                                      another nick: a nick change),
 *                                      _amount_history (<history/>)
 *   presence unavailable, or an error from the occupant (a ghost)
 *                                   -> _request_leave
 *   groupchat <body/> ("/me x")     -> _message_public (_action x)
 *   groupchat with only <subject/>  -> _request_set_topic, _topic
 *   chat to room/nick               -> _message_private, _nick_target
 *   muc#admin item role='none' nick -> _request_kick, _nick_target, _reason
 *   muc#admin item affiliation='outcast' jid (or nick)
 *                                   -> _request_ban, _uniform_target
 *
 *   _echo_place_enter     the join burst in XEP-0045 §7.2 order: every
 *                         other occupant's presence (§7.2.4), then the
 *                         self-presence with 110 (§7.2.5), 100 (the room
 *                         shows real JIDs, §7.2.6) and 170 when the place
 *                         keeps history (_amount_history > 0, §7.2.13).
 *                         History (_message_public with _target and
 *                         _time_place: <delay/>, XEP-0203) and the subject
 *                         (_status_place_topic) follow as their own
 *                         packets, in that order, from the place.
 *   _notice_place_enter   occupant presence; _duty owner = affiliation
 *                         owner, role moderator, else none/participant
 *   _notice_place_leave*  unavailable; _kick 307, _ban 301 (outcast),
 *                         110 for oneself (§8.2, §9.1)
 *   _notice_place_nick    unavailable with 303 and the new nick, then the
 *                         presence under the new nick (§7.6)
 *   _message_public*      groupchat from room/nick
 *   _message_private      chat from room/nick with <x muc#user/> (§7.5)
 *   _notice_place_topic,
 *   _status_place_topic   groupchat <subject/> (§8.1, §7.2.15)
 *   _echo_place_kick/_ban iq result to the owner's request
 *   _error* / _failure*   presence error while joining, iq error when it
 *                         answers an iq (_tag_relay), else message error
 *
 * Lookalike nicks (issue 6): nicks are never case-folded, so "Alice" and
 * "alice" are two occupants. An occupant whose nick looks like another's
 * (same Nameprep) is shown with <status>lookalike of OTHER</status> in its
 * presence (the burst computes it from the member list; a notice carries
 * the place's _nick_lookalike).
 */
#ifndef PSYCGATE_ROUTING_MUC_H
#define PSYCGATE_ROUTING_MUC_H

#include <stddef.h>

#include "psyc/psyc.h"
#include "routing/addr.h"
#include "xmpp/xml.h"

#define MUC_NS "http://jabber.org/protocol/muc"
#define MUC_NS_USER "http://jabber.org/protocol/muc#user"
#define MUC_NS_ADMIN "http://jabber.org/protocol/muc#admin"

typedef enum muc_req {
    MUC_REQ_NONE = 0, /* not a MUC stanza we translate */
    MUC_REQ_ENTER,
    MUC_REQ_LEAVE,
    MUC_REQ_PUBLIC,
    MUC_REQ_TOPIC,
    MUC_REQ_PRIVATE,
    MUC_REQ_KICK,
    MUC_REQ_BAN,
    MUC_REQ_ERROR,    /* answer the sender with *cond */
} muc_req;

/* A stanza from an occupant (uniform `self`) to the room `place`;
 * `to_nick` is the resource of its 'to' (NULL or "" for the bare room).
 * Fills `out` (initialised, empty) with _source = self, _target = place.
 * Returns the kind; for MUC_REQ_ERROR *cond names the stanza error. */
muc_req muc_request(const addr_map *m, const xml_node *st, const char *place, const char *self,
                    const char *to_nick, psyc_packet *out, const char **cond);

/* XEP-0030 disco#info of a room (XEP-0045 §6.4): identity conference/text
 * named `name`, the MUC feature and the room's fixed configuration
 * (non-anonymous, open, public, unmoderated, unsecured, persistent). NULL
 * when `iq` is no such query (or memory ran out). */
xml_node *muc_disco_info(const xml_node *iq, const char *name);

/* One local occupant: what the place's packets become for it. */
typedef struct muc_view {
    const addr_map *map; /* member uniforms -> real JIDs */
    const char *room;    /* the room's bare JID as the occupant addressed it */
    const char *to;      /* the occupant's full JID */
    const char *self;    /* the occupant's uniform */
    const char *nick;    /* the nick it asked for (errors while joining) */
    int joining;         /* no echo yet: errors are presence errors */
} muc_view;

typedef struct muc_stanzas {
    xml_node **v;
    size_t n, cap;
} muc_stanzas;

void muc_stanzas_free(muc_stanzas *s);

/* Appends the stanzas packet `p` becomes for the occupant. Returns how
 * many were added (0: nothing to show), or -1 when memory ran out. */
int muc_to_xmpp(const muc_view *v, const psyc_packet *p, muc_stanzas *out);

/*
 * An XMPP MUC room as a PSYC place (psyc://SERVICE/@ROOM for the room
 * ROOM@SERVICE; the gateway is that place's master and its PSYC members
 * are occupants of the room): a stanza the room sent to one of them, as
 * the cast every route gets (_source_relay `relay`, _context room_uni):
 *   groupchat <body/>        _message_public (_nick, _action, _time_place
 *                            from a XEP-0203 <delay/>)
 *   groupchat <subject/>     _notice_place_topic (_topic, _nick)
 *   presence                 _notice_place_enter (_nick)
 *   unavailable              _notice_place_leave; 303 _notice_place_nick
 *                            (_nick_new), 307 _leave_kick, 301 _leave_ban
 * 1 built into `out` (initialised, empty), 0 nothing to cast, -1 OOM.
 */
int muc_from_room(const xml_node *st, const char *room_uni, const char *relay, psyc_packet *out);

#endif
