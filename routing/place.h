/*
 * place.h: the state of one PSYC place we host (issue 7, DESIGN.md §5,
 * PSYC.md §4.2), and what it answers. Pure: no I/O, no clock (time is
 * passed in), so a room of thousands is tested in one process.
 *
 * The place is the master of its context: it keeps its members (uniform,
 * nick, and the route, i.e. the root of the member's server) and derives
 * the routes (servers with at least one member, with a count). The gateway
 * sends a context packet once per route; the receiving server fans it out
 * to its own members (PSYC.md §4.2 "two-level tree").
 *
 * Requests (unicast, _source = the member, _target = the place), by
 * keyword inheritance, psyced's names and the SPEC names (PSYC.md §4.2):
 *   _request_enter / _request_context_enter / _notice_place_enter /
 *   _notice_context_enter        enter; again with another _nick (or
 *                                _nick_local): a nick change;
 *                                _amount_history: at most that many
 *                                messages of history (psyced's name)
 *   _request_leave / _request_context_leave / _notice_place_leave /
 *   _notice_context_leave        leave
 *   _message_public              speak (cast to every member, also back to
 *                                the speaker: PSYC.md §9), kept in history
 *   _request_set_topic (_topic)  topic
 *   _message_private + _nick_target   a whisper through the place to one
 *                                member (XEP-0045 §7.5)
 *   _request_kick / _request_ban + _nick_target (_uniform_target for a ban
 *                                by address), _reason: the owner only
 *   _request_members             psyced's member listing; also the resync
 *                                a member server asks after a gap
 * What it sends (place_out, in this order for an enter):
 *   cast _notice_place_enter (_nick, _nick_place, _duty, _nick_lookalike)
 *   unicast _echo_place_enter (_nick, _nick_place, _list_members,
 *        _list_members_nicks, _duty, _topic, _uniform_owner,
 *        _amount_history = how many messages the place keeps)
 *   unicast history: _message_public with _context + _target + _time_place
 *   unicast _status_place_topic (_topic, possibly empty, _nick, _time_place)
 * and cast _message_public*, _notice_place_topic (_source_relay = the
 * place, as psyced), _notice_place_leave, _notice_place_leave_kick,
 * _notice_place_leave_ban, _notice_place_leave_netburp, _notice_place_nick
 * (_nick old, _nick_new). Every cast carries the routing variable
 * _counter, 1, 2, 3 ... per place; unicasts carry the last one, so a
 * member server sees gaps. Errors: _error_necessary_membership (psyced),
 * _error_duplicate_nick_place (nick taken), _error_forbidden_place_banned,
 * _error_forbidden_place_owner (not the owner), _error_unknown_name_user
 * (no such nick).
 *
 * Nicks are compared byte for byte: "Alice" and "alice" are two members
 * (issue 6). Such a pair is a lookalike (same after Nameprep: case folding
 * and NFKC); the enter notice of the second names the first in
 * _nick_lookalike.
 */
#ifndef PSYCGATE_ROUTING_PLACE_H
#define PSYCGATE_ROUTING_PLACE_H

#include <stddef.h>
#include <stdint.h>

#include "psyc/psyc.h"

#define PLACE_HISTORY_DEFAULT 20

typedef struct place_member {
    char *uni;   /* normalised uniform */
    char *nick;
    char *fold;  /* Nameprep(nick), for lookalikes */
    char *route; /* "psyc://host/" of its server */
} place_member;

typedef struct place_route {
    char *route;
    size_t members;
} place_route;

typedef struct place_msg {
    char *uni, *nick, *method, *body, *action;
    int64_t time;
} place_msg;

typedef struct place_room {
    char *uni;   /* psyc://HOST/@name */
    char *name;  /* _nick_place: the name as written in the uniform */
    char *owner; /* uniform of the owner, NULL until the first enter */
    char *topic, *topic_nick;
    int64_t topic_time;
    place_member *m;
    size_t n, cap;
    place_route *routes;
    size_t n_routes, cap_routes;
    char **bans;
    size_t n_bans;
    place_msg *hist; /* ring of hist_cap */
    size_t hist_cap, hist_n, hist_head;
    uint64_t counter;
    int dirty;       /* owner, topic or bans changed: save the state */
    /* _list_members and _list_members_nicks as every echo carries them,
     * kept up to date on enters (rebuilt after a leave or nick change),
     * so a join into a room of n costs one copy, not n list appends. */
    psyc_buf list_unis, list_nicks;
    int lists_ok;
} place_room;

typedef struct place_out {
    int cast;       /* 1: to the context (every route); 0: to its _target */
    psyc_packet p;
    char **routes;  /* a cast: the routes when it was made (a leaver's
                       server still gets its leave) */
    size_t n_routes;
} place_out;

typedef struct place_outs {
    place_out *v;
    size_t n, cap;
} place_outs;

void place_outs_free(place_outs *o);

/* A new place `uni` (psyc://host/@name, normalised) keeping `history`
 * messages for late joiners. NULL: bad uniform or out of memory. */
place_room *place_new(const char *uni, size_t history);
void place_free(place_room *pl);

/* Handles one packet for the place at time `now` (unix seconds): appends
 * what to send to `out`. 1 handled, 0 not a place request (nothing sent),
 * or a negative psyc_err. */
int place_handle(place_room *pl, const psyc_packet *in, int64_t now, place_outs *out);

/* The server `route` is lost: its members leave with
 * _notice_place_leave_netburp (PSYC.md §4.2), cast to the other routes.
 * Returns how many left. */
size_t place_route_lost(place_room *pl, const char *route, place_outs *out);

/* The member with that uniform, or NULL. */
const place_member *place_find(const place_room *pl, const char *uni);

/* The owner, topic and bans as a PSYC 1.0 packet in `out` (appended), and
 * back. 0 or a negative psyc_err. */
int place_state_save(const place_room *pl, psyc_buf *out);
int place_state_load(place_room *pl, const char *data, size_t len);

/* Room for one more element in a growable array *v of *cap elements of
 * `size` bytes holding n: 0, or -1 when memory runs out (unchanged). */
int place_grow(void *v, size_t *cap, size_t n, size_t size);

/* The elements of list variable `name` of p as new C strings (*out, a
 * malloc'ed array): their count, 0 when absent, (size_t)-1 on OOM. */
size_t place_list(const psyc_packet *p, const char *name, char ***out);
void place_list_free(char **v, size_t n);

/* Nameprep(nick) (malloc'ed), or a copy of nick when it has none: two
 * nicks with the same fold look alike (issue 6). NULL: out of memory. */
char *place_nick_fold(const char *nick);

#endif
