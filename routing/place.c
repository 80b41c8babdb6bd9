/* place.c: one hosted PSYC place (see place.h). */
#include "routing/place.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

void place_outs_free(place_outs *o)
{
    for (size_t i = 0; i < o->n; i++) {
        psyc_packet_free(&o->v[i].p);
        for (size_t k = 0; k < o->v[i].n_routes; k++)
            free(o->v[i].routes[k]);
        free(o->v[i].routes);
    }
    free(o->v);
    o->v = NULL;
    o->n = o->cap = 0;
}

int place_grow(void *v, size_t *cap, size_t n, size_t size)
{
    void **arr = v;
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 8;
    void *nv = realloc(*arr, c * size);
    if (!nv)
        return -1;
    *arr = nv;
    *cap = c;
    return 0;
}

size_t place_list(const psyc_packet *p, const char *name, char ***out)
{
    psyc_str v;
    *out = NULL;
    if (!psyc_packet_get(p, name, &v) || !v.ptr)
        return 0;
    psyc_list_parser lp;
    psyc_list_elem e;
    size_t n = 0, cap = 0;
    char **a = NULL;
    psyc_list_parser_init(&lp, v);
    for (psyc_list_rc r; (r = psyc_list_next(&lp, &e)) != PSYC_LIST_END && r != PSYC_LIST_ERROR;) {
        if (r != PSYC_LIST_ELEM && r != PSYC_LIST_TRUNCATED)
            continue;
        if (place_grow(&a, &cap, n, sizeof *a) || !(a[n] = strndup(e.value.ptr, e.value.len))) {
            place_list_free(a, n);
            return (size_t)-1;
        }
        n++;
    }
    *out = a;
    return n;
}

void place_list_free(char **v, size_t n)
{
    for (size_t i = 0; v && n != (size_t)-1 && i < n; i++)
        free(v[i]);
    free(v);
}

static psyc_packet *pl_out(place_outs *o, int cast)
{
    if (place_grow(&o->v, &o->cap, o->n, sizeof *o->v))
        return NULL;
    place_out *x = &o->v[o->n++];
    memset(x, 0, sizeof *x);
    x->cast = cast;
    psyc_packet_init(&x->p);
    return &x->p;
}

/* A variable of `p` (entity first) as a new C string; NULL when absent. */
static char *pl_var(const psyc_packet *p, const char *name)
{
    psyc_str v;
    if (!psyc_packet_get(p, name, &v) || !v.ptr)
        return NULL;
    char *s = malloc(v.len + 1);
    if (s) {
        memcpy(s, v.ptr, v.len);
        s[v.len] = '\0';
    }
    return s;
}

/* The normalised uniform of `v` as a new C string, NULL when it is none. */
static char *pl_norm(psyc_str v)
{
    psyc_buf b;
    psyc_buf_init(&b);
    char *s = NULL;
    if (psyc_uniform_normalize(v, &b) == 0 && psyc_buf_putc(&b, '\0') == 0)
        s = strdup(b.data);
    psyc_buf_free(&b);
    return s;
}

char *place_nick_fold(const char *nick)
{
    char *f = NULL;
    if (stringprep_profile(nick, &f, "Nameprep", 0) == STRINGPREP_OK)
        return f;
    free(f);
    return strdup(nick);
}

static int pl_is(psyc_str method, const char *base)
{
    return psyc_inherits(method, psyc_str_c(base));
}

static int pl_set(psyc_packet *p, const char *name, const char *value)
{
    return value ? psyc_packet_entity_c(p, name, value) : 0;
}

static int pl_set_int(psyc_packet *p, const char *name, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return psyc_packet_entity_c(p, name, buf);
}

/* A cast of the context: _source_relay, _context, _counter (PSYC.md §4.2;
 * psyced writes _source_relay then _context, §9). */
static psyc_packet *pl_cast(place_room *pl, place_outs *o, const char *method, const char *relay)
{
    psyc_packet *p = pl_out(o, 1);
    place_out *x = p ? &o->v[o->n - 1] : NULL;
    if (x && pl->n_routes && !(x->routes = calloc(pl->n_routes, sizeof *x->routes)))
        return NULL;
    for (size_t i = 0; x && i < pl->n_routes; i++)
        if ((x->routes[x->n_routes] = strdup(pl->routes[i].route)))
            x->n_routes++;
    char cnt[24];
    snprintf(cnt, sizeof cnt, "%llu", (unsigned long long)++pl->counter);
    if (!p || psyc_packet_routing_c(p, "_source_relay", relay) || psyc_packet_routing_c(p, "_context", pl->uni) ||
        psyc_packet_routing_c(p, "_counter", cnt) || psyc_packet_set_method(p, psyc_str_c(method)))
        return NULL;
    return p;
}

/* A unicast from the place to `target`. */
static psyc_packet *pl_unicast(place_outs *o, const char *from, const char *method, const char *target)
{
    psyc_packet *p = pl_out(o, 0);
    if (!p || psyc_packet_routing_c(p, "_target", target) || psyc_packet_routing_c(p, "_source", from) ||
        psyc_packet_set_method(p, psyc_str_c(method)))
        return NULL;
    return p;
}

static int pl_error(place_room *pl, place_outs *o, const char *method, const char *target, const psyc_packet *in,
                    const char *text)
{
    psyc_packet *p = pl_unicast(o, pl->uni, method, target);
    psyc_str tag;
    if (!p || pl_set(p, "_nick_place", pl->name))
        return PSYC_ERR_NOMEM;
    if (psyc_packet_get(in, "_tag", &tag) && tag.ptr &&
        psyc_packet_add_routing(p, ':', PSYC_STR_LIT("_tag_relay"), tag))
        return PSYC_ERR_NOMEM;
    return psyc_packet_set_data(p, psyc_str_c(text)) ? PSYC_ERR_NOMEM : 1;
}

/* ------------------------------------------------------------------ */
/* Members and routes                                                   */

static place_member *pl_find(const place_room *pl, const char *uni)
{
    for (size_t i = 0; i < pl->n; i++)
        if (strcmp(pl->m[i].uni, uni) == 0)
            return &pl->m[i];
    return NULL;
}

const place_member *place_find(const place_room *pl, const char *uni)
{
    return pl_find(pl, uni);
}

static place_member *pl_find_nick(const place_room *pl, const char *nick)
{
    for (size_t i = 0; i < pl->n; i++)
        if (strcmp(pl->m[i].nick, nick) == 0)
            return &pl->m[i];
    return NULL;
}

/* Another member whose nick looks like `fold` but is not `nick`. */
static const place_member *pl_lookalike(const place_room *pl, const char *nick, const char *fold)
{
    for (size_t i = 0; i < pl->n; i++)
        if (strcmp(pl->m[i].fold, fold) == 0 && strcmp(pl->m[i].nick, nick) != 0)
            return &pl->m[i];
    return NULL;
}

static void pl_route_add(place_room *pl, const char *route, int delta)
{
    for (size_t i = 0; i < pl->n_routes; i++) {
        if (strcmp(pl->routes[i].route, route) != 0)
            continue;
        pl->routes[i].members += (size_t)delta;
        if (pl->routes[i].members == 0) {
            free(pl->routes[i].route);
            pl->routes[i] = pl->routes[--pl->n_routes];
        }
        return;
    }
    if (delta <= 0)
        return;
    if (place_grow(&pl->routes, &pl->cap_routes, pl->n_routes, sizeof *pl->routes))
        return;
    char *s = strdup(route);
    if (s)
        pl->routes[pl->n_routes++] = (place_route){s, 1};
}

/* "psyc://host[:port]/" of a uniform. */
static char *pl_route_of(const char *uni)
{
    psyc_uniform u;
    if (psyc_uniform_parse(&u, psyc_str_c(uni)) != PSYC_UNI_OK)
        return NULL;
    char *r = malloc(u.root.len + 2);
    if (r) {
        memcpy(r, u.root.ptr, u.root.len);
        r[u.root.len] = '/';
        r[u.root.len + 1] = '\0';
    }
    return r;
}

static void pl_member_free(place_member *m)
{
    free(m->uni);
    free(m->nick);
    free(m->fold);
    free(m->route);
}

static int pl_lists_add(place_room *pl, const place_member *m)
{
    return psyc_list_append(&pl->list_unis, psyc_str_c(m->uni)) ||
           psyc_list_append(&pl->list_nicks, psyc_str_c(m->nick));
}

static place_member *pl_insert(place_room *pl, const char *uni, const char *nick)
{
    if (place_grow(&pl->m, &pl->cap, pl->n, sizeof *pl->m))
        return NULL;
    place_member m = {strdup(uni), strdup(nick), place_nick_fold(nick), pl_route_of(uni)};
    if (!m.uni || !m.nick || !m.fold || !m.route) {
        pl_member_free(&m);
        return NULL;
    }
    pl_route_add(pl, m.route, 1);
    pl->m[pl->n] = m;
    if (pl->lists_ok && pl_lists_add(pl, &m))
        pl->lists_ok = 0;
    return &pl->m[pl->n++];
}

/* Removes a member; the order of the others is kept (the member list a
 * joiner sees stays in order of arrival). */
static void pl_remove(place_room *pl, place_member *m)
{
    size_t i = (size_t)(m - pl->m);
    pl->lists_ok = 0;
    pl_route_add(pl, m->route, -1);
    pl_member_free(m);
    memmove(&pl->m[i], &pl->m[i + 1], (pl->n - i - 1) * sizeof *m);
    pl->n--;
}

static int pl_banned(const place_room *pl, const char *uni)
{
    for (size_t i = 0; i < pl->n_bans; i++)
        if (strcmp(pl->bans[i], uni) == 0)
            return 1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Life                                                                  */

place_room *place_new(const char *uni, size_t history)
{
    psyc_uniform u;
    if (psyc_uniform_parse(&u, psyc_str_c(uni)) != PSYC_UNI_OK || u.entity_type != '@' || !u.nick.len)
        return NULL;
    place_room *pl = calloc(1, sizeof *pl);
    if (!pl)
        return NULL;
    psyc_buf_init(&pl->list_unis);
    psyc_buf_init(&pl->list_nicks);
    pl->uni = strdup(uni);
    pl->name = malloc(u.nick.len + 1);
    pl->hist_cap = history;
    pl->hist = history ? calloc(history, sizeof *pl->hist) : NULL;
    if (!pl->uni || !pl->name || (history && !pl->hist)) {
        place_free(pl);
        return NULL;
    }
    memcpy(pl->name, u.nick.ptr, u.nick.len);
    pl->name[u.nick.len] = '\0';
    return pl;
}

static void pl_msg_free(place_msg *m)
{
    free(m->uni);
    free(m->nick);
    free(m->method);
    free(m->body);
    free(m->action);
    memset(m, 0, sizeof *m);
}

void place_free(place_room *pl)
{
    if (!pl)
        return;
    for (size_t i = 0; i < pl->n; i++)
        pl_member_free(&pl->m[i]);
    free(pl->m);
    for (size_t i = 0; i < pl->n_routes; i++)
        free(pl->routes[i].route);
    free(pl->routes);
    for (size_t i = 0; i < pl->n_bans; i++)
        free(pl->bans[i]);
    free(pl->bans);
    for (size_t i = 0; i < pl->hist_cap; i++)
        pl_msg_free(&pl->hist[i]);
    free(pl->hist);
    psyc_buf_free(&pl->list_unis);
    psyc_buf_free(&pl->list_nicks);
    free(pl->uni);
    free(pl->name);
    free(pl->owner);
    free(pl->topic);
    free(pl->topic_nick);
    free(pl);
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

static const char *pl_duty(const place_room *pl, const char *uni)
{
    return pl->owner && strcmp(pl->owner, uni) == 0 ? "owner" : "member";
}

static int pl_members_lists(place_room *pl, psyc_packet *p)
{
    int rc = 0;
    if (!pl->lists_ok) {
        psyc_buf_reset(&pl->list_unis);
        psyc_buf_reset(&pl->list_nicks);
        for (size_t i = 0; !rc && i < pl->n; i++)
            rc = pl_lists_add(pl, &pl->m[i]);
        pl->lists_ok = !rc;
    }
    if (!rc)
        rc = psyc_packet_add_entity(p, ':', PSYC_STR_LIT("_list_members"),
                                    (psyc_str){pl->list_unis.data, pl->list_unis.len}) ||
             psyc_packet_add_entity(p, ':', PSYC_STR_LIT("_list_members_nicks"),
                                    (psyc_str){pl->list_nicks.data, pl->list_nicks.len});
    return rc ? PSYC_ERR_NOMEM : 0;
}

static int pl_counter_var(const place_room *pl, psyc_packet *p)
{
    char cnt[24];
    snprintf(cnt, sizeof cnt, "%llu", (unsigned long long)pl->counter);
    return psyc_packet_routing_c(p, "_counter", cnt);
}

/* Members of the place on one server. */
static size_t pl_route_members(const place_room *pl, const char *route)
{
    for (size_t i = 0; i < pl->n_routes; i++)
        if (strcmp(pl->routes[i].route, route) == 0)
            return pl->routes[i].members;
    return 0;
}

/* The echo, the history and the topic for one who entered (PSYC.md §9:
 * psyced sends _echo_place_enter, then _status_place_topic). The echo
 * lists the members, except to a psycgate that keeps the roster from the
 * casts (`_understand_roster` in its enter) and already has members here:
 * it fills the list in itself, so a join costs one small echo instead of
 * a copy of the whole member list (a burst of n joins: O(n), not O(n²)
 * bytes). */
static int pl_welcome(place_room *pl, const place_member *m, size_t want, int roster_kept, place_outs *o)
{
    psyc_packet *p = pl_unicast(o, pl->uni, "_echo_place_enter", m->uni);
    int lists = !roster_kept || pl_route_members(pl, m->route) < 2;
    if (!p || pl_counter_var(pl, p) || pl_set(p, "_nick", m->nick) || pl_set(p, "_nick_place", pl->name) ||
        (lists ? pl_members_lists(pl, p) : pl_set_int(p, "_amount_members", pl->n)) ||
        pl_set(p, "_duty", pl_duty(pl, m->uni)) || pl_set(p, "_topic", pl->topic) ||
        pl_set(p, "_uniform_owner", pl->owner) ||
        pl_set_int(p, "_amount_history", pl->hist_cap) ||
        psyc_packet_set_data(p, PSYC_STR_LIT("[_nick] enters [_nick_place].")))
        return PSYC_ERR_NOMEM;
    size_t show = want < pl->hist_n ? want : pl->hist_n;
    for (size_t k = pl->hist_n - show; k < pl->hist_n; k++) {
        const place_msg *h = &pl->hist[(pl->hist_head + pl->hist_cap - pl->hist_n + k) % pl->hist_cap];
        /* _context + _target: unicast within the context (PSYC.md §4.1) */
        p = pl_out(o, 0);
        if (!p || psyc_packet_routing_c(p, "_source_relay", h->uni) || psyc_packet_routing_c(p, "_context", pl->uni) ||
            psyc_packet_routing_c(p, "_target", m->uni) || pl_set(p, "_nick", h->nick) ||
            pl_set(p, "_nick_place", pl->name) || pl_set_int(p, "_time_place", (uint64_t)h->time) ||
            pl_set(p, "_action", h->action) || psyc_packet_set_method(p, psyc_str_c(h->method)) ||
            psyc_packet_set_data(p, psyc_str_c(h->body ? h->body : "")))
            return PSYC_ERR_NOMEM;
    }
    /* Always a topic, even an empty one: XEP-0045 §7.2.15 ends the join
     * with the subject. */
    p = pl_unicast(o, pl->uni, "_status_place_topic", m->uni);
    if (!p || pl_set(p, "_nick_place", pl->name) || pl_set(p, "_topic", pl->topic ? pl->topic : "") ||
        pl_set(p, "_nick", pl->topic_nick) ||
        (pl->topic && pl_set_int(p, "_time_place", (uint64_t)pl->topic_time)) ||
        psyc_packet_set_data(p, PSYC_STR_LIT("Topic by [_nick]: [_topic]")))
        return PSYC_ERR_NOMEM;
    return 1;
}

static int pl_nick_change(place_room *pl, place_member *m, const char *nick, place_outs *o)
{
    char *fold = place_nick_fold(nick), *dup = strdup(nick);
    psyc_packet *p = fold && dup ? pl_cast(pl, o, "_notice_place_nick", m->uni) : NULL;
    if (!p || pl_set(p, "_nick", m->nick) || pl_set(p, "_nick_new", nick) || pl_set(p, "_nick_place", pl->name) ||
        psyc_packet_set_data(p, PSYC_STR_LIT("[_nick] is now known as [_nick_new]."))) {
        free(fold);
        free(dup);
        return PSYC_ERR_NOMEM;
    }
    free(m->nick);
    free(m->fold);
    m->nick = dup;
    m->fold = fold;
    pl->lists_ok = 0;
    return 1;
}

static int pl_enter(place_room *pl, const char *src, const psyc_packet *in, place_outs *o)
{
    char *nick = pl_var(in, "_nick_local");
    if (!nick)
        nick = pl_var(in, "_nick");
    if (!nick) {
        /* psyced's joiners always name themselves; else the uniform's nick */
        psyc_uniform u;
        if (psyc_uniform_parse(&u, psyc_str_c(src)) == PSYC_UNI_OK && u.nick.len)
            nick = strndup(u.nick.ptr, u.nick.len);
    }
    if (!nick || !*nick) {
        free(nick);
        return pl_error(pl, o, "_error_place_enter_necessary_nick", src, in, "You need a nick to enter [_nick_place].");
    }
    int rc;
    /* The joiner's history limit (psyced's _amount_history, XEP-0045
     * §7.2.13 maxstanzas); none given: all we keep. */
    psyc_str hv;
    int64_t want = -1;
    if (!psyc_packet_get(in, "_amount_history", &hv) || !hv.ptr || psyc_parse_int64(hv, &want) != 0 || want < 0)
        want = (int64_t)pl->hist_cap;
    place_member *m = pl_find(pl, src), *other = pl_find_nick(pl, nick);
    psyc_str rk;
    int roster_kept = psyc_packet_get(in, "_understand_roster", &rk) && rk.ptr != NULL;
    if (pl_banned(pl, src)) {
        rc = pl_error(pl, o, "_error_forbidden_place_banned", src, in, "You are banned from [_nick_place].");
    } else if (other && other != m) {
        rc = pl_error(pl, o, "_error_duplicate_nick_place", src, in, "The nick is in use in [_nick_place].");
    } else if (m && strcmp(m->nick, nick) != 0) {
        rc = pl_nick_change(pl, m, nick, o);
    } else if (m) {
        rc = pl_welcome(pl, m, (size_t)want, roster_kept, o); /* entered again (XMPP sends every presence) */
    } else {
        char *fold = place_nick_fold(nick);
        const place_member *look = fold ? pl_lookalike(pl, nick, fold) : NULL;
        char *look_nick = look ? strdup(look->nick) : NULL;
        free(fold);
        m = pl_insert(pl, src, nick);
        if (m && !pl->owner) {
            pl->owner = strdup(src);
            pl->dirty = 1;
        }
        psyc_packet *p = m ? pl_cast(pl, o, "_notice_place_enter", src) : NULL;
        rc = !p || pl_set(p, "_nick", m->nick) || pl_set(p, "_nick_place", pl->name) ||
                     pl_set(p, "_duty", pl_duty(pl, src)) || pl_set(p, "_nick_lookalike", look_nick) ||
                     psyc_packet_set_data(p, PSYC_STR_LIT("[_nick] enters [_nick_place]."))
                 ? PSYC_ERR_NOMEM
                 : pl_welcome(pl, m, (size_t)want, roster_kept, o);
        free(look_nick);
    }
    free(nick);
    return rc;
}

static int pl_leave_cast(place_room *pl, place_member *m, const char *method, const char *actor, const char *reason,
                         place_outs *o)
{
    psyc_packet *p = pl_cast(pl, o, method, m->uni);
    if (!p || pl_set(p, "_nick", m->nick) || pl_set(p, "_nick_place", pl->name) || pl_set(p, "_nick_actor", actor) ||
        pl_set(p, "_reason", reason) || psyc_packet_set_data(p, PSYC_STR_LIT("[_nick] leaves [_nick_place].")))
        return PSYC_ERR_NOMEM;
    pl_remove(pl, m);
    return 1;
}

static int pl_leave(place_room *pl, const char *src, const psyc_packet *in, place_outs *o)
{
    place_member *m = pl_find(pl, src);
    if (m)
        return pl_leave_cast(pl, m, "_notice_place_leave", NULL, NULL, o);
    /* psyced's answer to a leave from one who is not in: no cast. */
    return pl_error(pl, o, "_echo_place_leave_invalid", src, in, "You are not in [_nick_place].");
}

static void pl_history_add(place_room *pl, const place_member *m, const psyc_packet *in, int64_t now)
{
    if (!pl->hist_cap)
        return;
    place_msg *h = &pl->hist[pl->hist_head];
    pl_msg_free(h);
    *h = (place_msg){strdup(m->uni), strdup(m->nick), strndup(in->method.ptr, in->method.len),
                     in->data.ptr ? strndup(in->data.ptr, in->data.len) : NULL, pl_var(in, "_action"), now};
    pl->hist_head = (pl->hist_head + 1) % pl->hist_cap;
    if (pl->hist_n < pl->hist_cap)
        pl->hist_n++;
}

static int pl_public(place_room *pl, const char *src, const psyc_packet *in, int64_t now, place_outs *o)
{
    const place_member *m = pl_find(pl, src);
    if (!m)
        return pl_error(pl, o, "_error_necessary_membership", src, in, "You need to enter [_nick_place] first.");
    char method[128];
    snprintf(method, sizeof method, "%.*s", (int)in->method.len, in->method.ptr);
    psyc_packet *p = pl_cast(pl, o, method, m->uni);
    psyc_str v;
    if (!p || pl_set(p, "_nick", m->nick) || pl_set(p, "_nick_place", pl->name))
        return PSYC_ERR_NOMEM;
    if (psyc_packet_get(in, "_action", &v) && v.ptr && psyc_packet_add_entity(p, ':', PSYC_STR_LIT("_action"), v))
        return PSYC_ERR_NOMEM;
    if (in->data.ptr && psyc_packet_set_data(p, in->data))
        return PSYC_ERR_NOMEM;
    pl_history_add(pl, m, in, now);
    return 1;
}

static int pl_topic(place_room *pl, const char *src, const psyc_packet *in, int64_t now, place_outs *o)
{
    const place_member *m = pl_find(pl, src);
    if (!m)
        return pl_error(pl, o, "_error_necessary_membership", src, in, "You need to enter [_nick_place] first.");
    char *topic = pl_var(in, "_topic"), *nick = strdup(m->nick);
    if (!topic)
        topic = in->data.ptr ? strndup(in->data.ptr, in->data.len) : strdup(""); /* none: cleared */
    if (!topic || !nick) {
        free(topic);
        free(nick);
        return PSYC_ERR_NOMEM;
    }
    free(pl->topic);
    free(pl->topic_nick);
    pl->topic = topic;
    pl->topic_nick = nick;
    pl->topic_time = now;
    pl->dirty = 1;
    /* psyced relays a topic as the place itself (PSYC.md §9, capture 16) */
    psyc_packet *p = pl_cast(pl, o, "_notice_place_topic", pl->uni);
    if (!p || pl_set(p, "_nick_place", pl->name) || pl_set(p, "_topic", topic) || pl_set(p, "_nick", nick) ||
        psyc_packet_set_data(p, PSYC_STR_LIT("New topic in [_nick_place] by [_nick]: [_topic]")))
        return PSYC_ERR_NOMEM;
    return 1;
}

static int pl_whisper(place_room *pl, const char *src, const psyc_packet *in, place_outs *o)
{
    const place_member *m = pl_find(pl, src);
    if (!m)
        return pl_error(pl, o, "_error_necessary_membership", src, in, "You need to enter [_nick_place] first.");
    char *to = pl_var(in, "_nick_target");
    const place_member *t = to ? pl_find_nick(pl, to) : NULL;
    free(to);
    if (!t)
        return pl_error(pl, o, "_error_unknown_name_user", src, in, "No such nick in [_nick_place].");
    psyc_packet *p = pl_out(o, 0);
    psyc_str v;
    if (!p || psyc_packet_routing_c(p, "_source_relay", m->uni) || psyc_packet_routing_c(p, "_context", pl->uni) ||
        psyc_packet_routing_c(p, "_target", t->uni) || pl_set(p, "_nick", m->nick) ||
        pl_set(p, "_nick_place", pl->name) || psyc_packet_set_method(p, in->method))
        return PSYC_ERR_NOMEM;
    if (psyc_packet_get(in, "_action", &v) && v.ptr && psyc_packet_add_entity(p, ':', PSYC_STR_LIT("_action"), v))
        return PSYC_ERR_NOMEM;
    return in->data.ptr && psyc_packet_set_data(p, in->data) ? PSYC_ERR_NOMEM : 1;
}

/* Kick or ban (XEP-0045 §8.2, §9.1), by the owner only. */
static int pl_expel(place_room *pl, const char *src, const psyc_packet *in, int ban, place_outs *o)
{
    const place_member *actor = pl_find(pl, src);
    if (!pl->owner || strcmp(pl->owner, src) != 0)
        return pl_error(pl, o, "_error_forbidden_place_owner", src, in, "Only the owner of [_nick_place] may do that.");
    char *nick = pl_var(in, "_nick_target"), *who = NULL;
    psyc_str tu;
    if (ban && psyc_packet_get(in, "_uniform_target", &tu) && tu.ptr)
        who = pl_norm(tu);
    place_member *t = nick ? pl_find_nick(pl, nick) : who ? pl_find(pl, who) : NULL;
    free(nick);
    if (!t && !who)
        return pl_error(pl, o, "_error_unknown_name_user", src, in, "No such nick in [_nick_place].");
    if (ban && !who)
        who = strdup(t->uni);
    if (ban && who && !pl_banned(pl, who)) {
        char **b = realloc(pl->bans, (pl->n_bans + 1) * sizeof *b);
        if (b) {
            pl->bans = b;
            pl->bans[pl->n_bans++] = who;
            who = NULL;
            pl->dirty = 1;
        }
    }
    free(who);
    char *reason = pl_var(in, "_reason");
    int rc = t ? pl_leave_cast(pl, t, ban ? "_notice_place_leave_ban" : "_notice_place_leave_kick",
                               actor ? actor->nick : NULL, reason, o)
               : 1;
    free(reason);
    if (rc < 0)
        return rc;
    psyc_packet *p = pl_unicast(o, pl->uni, ban ? "_echo_place_ban" : "_echo_place_kick", src);
    psyc_str tag;
    if (!p || pl_set(p, "_nick_place", pl->name) ||
        (psyc_packet_get(in, "_tag", &tag) && tag.ptr && psyc_packet_add_routing(p, ':', PSYC_STR_LIT("_tag_relay"), tag)))
        return PSYC_ERR_NOMEM;
    return 1;
}

static int pl_members(place_room *pl, const char *src, const psyc_packet *in, place_outs *o)
{
    psyc_packet *p = pl_unicast(o, pl->uni, "_status_place_members", src);
    psyc_str tag;
    if (!p || pl_counter_var(pl, p) || pl_members_lists(pl, p) || pl_set(p, "_nick_place", pl->name) ||
        (psyc_packet_get(in, "_tag", &tag) && tag.ptr && psyc_packet_add_routing(p, ':', PSYC_STR_LIT("_tag_relay"), tag)) ||
        psyc_packet_set_data(p, PSYC_STR_LIT("In [_nick_place]: [_list_members_nicks].")))
        return PSYC_ERR_NOMEM;
    return 1;
}

int place_handle(place_room *pl, const psyc_packet *in, int64_t now, place_outs *out)
{
    const psyc_modifier *s = psyc_packet_find_routing(in, "_source");
    psyc_str mc = in->method;
    if (!s || !mc.ptr || psyc_packet_find_routing(in, "_context"))
        return 0;
    /* Errors about what we sent are not requests (never answer an error). */
    if (pl_is(mc, "_error") || pl_is(mc, "_failure"))
        return 0;
    char *src = pl_norm(s->value);
    if (!src)
        return 0;
    int rc = 0;
    if (pl_is(mc, "_request_enter") || pl_is(mc, "_request_context_enter") || pl_is(mc, "_notice_place_enter") ||
        pl_is(mc, "_notice_context_enter"))
        rc = pl_enter(pl, src, in, out);
    else if (pl_is(mc, "_request_leave") || pl_is(mc, "_request_context_leave") ||
             pl_is(mc, "_notice_place_leave") || pl_is(mc, "_notice_context_leave"))
        rc = pl_leave(pl, src, in, out);
    else if (pl_is(mc, "_message_public"))
        rc = pl_public(pl, src, in, now, out);
    else if (pl_is(mc, "_request_set_topic"))
        rc = pl_topic(pl, src, in, now, out);
    else if (pl_is(mc, "_message_private"))
        rc = pl_whisper(pl, src, in, out);
    else if (pl_is(mc, "_request_kick"))
        rc = pl_expel(pl, src, in, 0, out);
    else if (pl_is(mc, "_request_ban"))
        rc = pl_expel(pl, src, in, 1, out);
    else if (pl_is(mc, "_request_members"))
        rc = pl_members(pl, src, in, out);
    free(src);
    return rc;
}

size_t place_route_lost(place_room *pl, const char *route, place_outs *out)
{
    size_t gone = 0;
    for (size_t i = 0; i < pl->n;) {
        if (strcmp(pl->m[i].route, route) != 0) {
            i++;
            continue;
        }
        if (pl_leave_cast(pl, &pl->m[i], "_notice_place_leave_netburp", NULL, NULL, out) < 0)
            break;
        /* Not to the lost server itself. */
        place_out *x = &out->v[out->n - 1];
        for (size_t k = 0; k < x->n_routes; k++)
            if (strcmp(x->routes[k], route) == 0) {
                free(x->routes[k]);
                x->routes[k] = x->routes[--x->n_routes];
                break;
            }
        gone++;
    }
    return gone;
}

/* ------------------------------------------------------------------ */
/* Durable state: a PSYC 1.0 packet (our own codec does the escaping).  */

int place_state_save(const place_room *pl, psyc_buf *out)
{
    psyc_packet p;
    psyc_packet_init(&p);
    psyc_buf bans;
    psyc_buf_init(&bans);
    int rc = pl_set(&p, "_uniform_owner", pl->owner) || pl_set(&p, "_topic", pl->topic) ||
             pl_set(&p, "_nick", pl->topic_nick) || (pl->topic && pl_set_int(&p, "_time_place", (uint64_t)pl->topic_time));
    for (size_t i = 0; !rc && i < pl->n_bans; i++)
        rc = psyc_list_append(&bans, psyc_str_c(pl->bans[i]));
    if (!rc && bans.len)
        rc = psyc_packet_add_entity(&p, ':', PSYC_STR_LIT("_list_banned"), (psyc_str){bans.data, bans.len});
    if (!rc)
        rc = psyc_packet_set_method(&p, PSYC_STR_LIT("_state_place")) || psyc_render(&p, out);
    psyc_buf_free(&bans);
    psyc_packet_free(&p);
    return rc ? PSYC_ERR_NOMEM : 0;
}

int place_state_load(place_room *pl, const char *data, size_t len)
{
    psyc_parser ps;
    psyc_parser_init(&ps, NULL, 0);
    psyc_packet p;
    psyc_packet_init(&p);
    size_t used = 0;
    int rc = psyc_parse_packet(&ps, data, len, &p, &used);
    if (rc != 1) {
        psyc_packet_free(&p);
        return rc < 0 ? rc : PSYC_ERR_INVALID;
    }
    free(pl->owner);
    free(pl->topic);
    free(pl->topic_nick);
    pl->owner = pl_var(&p, "_uniform_owner");
    pl->topic = pl_var(&p, "_topic");
    pl->topic_nick = pl_var(&p, "_nick");
    psyc_str v;
    int64_t t = 0;
    if (psyc_packet_get(&p, "_time_place", &v) && v.ptr && psyc_parse_int64(v, &t) == 0)
        pl->topic_time = t;
    char **bans = NULL;
    size_t nb = place_list(&p, "_list_banned", &bans);
    if (nb != (size_t)-1) {
        place_list_free(pl->bans, pl->n_bans);
        pl->bans = bans;
        pl->n_bans = nb;
    }
    psyc_packet_free(&p);
    return 0;
}
