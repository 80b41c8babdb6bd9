/* place_muc.c: XMPP MUC rooms as PSYC places (see place_muc.h). */
#include "gateway/place_muc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/bridge.h"
#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/place_host.h"
#include "routing/muc.h"
#include "routing/place.h"
#include "routing/routing.h"
#include "routing/translate.h"

#define COMP "place"
#define PM_RESOURCE "psyc"

/* A PSYC member: joining (its burst is collected), in the burst (history
 * and subject to come), in, or leaving (until its own unavailable). */
enum { PM_JOINING, PM_BURST, PM_IN, PM_LEAVING };

typedef struct pm_member {
    char *uni, *nick, *jid; /* its uniform, nick, occupant JID */
    int state;
    char *want;             /* a nick change asked for */
    char **seen;            /* joining: the occupants' nicks the room showed */
    size_t n_seen, cap_seen;
} pm_member;

typedef struct pm_room {
    char *place; /* psyc://service/@room */
    char *jid;   /* room@service */
    char *name;
    pm_member *m;
    size_t n, cap;
    char *gone[8];  /* nicks our members just left with (their copies) */
    size_t gone_next;
    uint64_t copies_dropped;
} pm_room;

struct place_muc {
    gw *g;
    pm_room **v;
    size_t n, cap;
};

place_muc *place_muc_new(gw *g)
{
    place_muc *m = calloc(1, sizeof *m);
    if (m)
        m->g = g;
    return m;
}

static void member_free(pm_member *x)
{
    free(x->uni);
    free(x->nick);
    free(x->jid);
    free(x->want);
    place_list_free(x->seen, x->n_seen);
}

static void room_free(pm_room *r)
{
    for (size_t i = 0; i < r->n; i++)
        member_free(&r->m[i]);
    free(r->m);
    for (size_t i = 0; i < sizeof r->gone / sizeof r->gone[0]; i++)
        free(r->gone[i]);
    free(r->place);
    free(r->jid);
    free(r->name);
    free(r);
}

void place_muc_free(place_muc *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        room_free(m->v[i]);
    free(m->v);
    free(m);
}

static int pm_is_service(const place_muc *m, const char *host, size_t len)
{
    const char *const *d = NULL;
    size_t n = cfg_get_domains(m->g->cfg, "places", "muc", &d);
    for (size_t i = 0; i < n; i++)
        if (strlen(d[i]) == len && strncasecmp(d[i], host, len) == 0)
            return 1;
    return 0;
}

static pm_room *room_find(const place_muc *m, const char *place, const char *jid)
{
    for (size_t i = 0; i < m->n; i++)
        if ((place && strcmp(m->v[i]->place, place) == 0) || (jid && strcasecmp(m->v[i]->jid, jid) == 0))
            return m->v[i];
    return NULL;
}

static pm_member *member_by(pm_room *r, const char *uni, const char *jid, const char *nick)
{
    for (size_t i = 0; i < r->n; i++)
        if ((uni && strcmp(r->m[i].uni, uni) == 0) || (jid && strcmp(r->m[i].jid, jid) == 0) ||
            (nick && strcmp(r->m[i].nick, nick) == 0))
            return &r->m[i];
    return NULL;
}

static void member_remove(pm_room *r, pm_member *x)
{
    size_t i = (size_t)(x - r->m);
    member_free(x);
    memmove(&r->m[i], &r->m[i + 1], (r->n - i - 1) * sizeof *x);
    r->n--;
}

/* The member whose copy of the room's traffic is cast: the first in. */
static const pm_member *designated(const pm_room *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->m[i].state == PM_IN || r->m[i].state == PM_LEAVING)
            return &r->m[i];
    return NULL;
}

/* Casts p to every route of the room's members (once per server). */
static void pm_cast(place_muc *m, pm_room *r, const psyc_packet *p)
{
    char **routes = calloc(r->n ? r->n : 1, sizeof *routes);
    size_t n = 0;
    for (size_t i = 0; routes && i < r->n; i++) {
        psyc_uniform u;
        if (psyc_uniform_parse(&u, psyc_str_c(r->m[i].uni)) != PSYC_UNI_OK)
            continue;
        char root[PSYC_UNIFORM_MAX + 2];
        snprintf(root, sizeof root, "%.*s/", (int)u.root.len, u.root.ptr);
        int dup = 0;
        for (size_t k = 0; !dup && k < n; k++)
            dup = strcmp(routes[k], root) == 0;
        if (!dup && (routes[n] = strdup(root)))
            n++;
    }
    place_host_cast(m->g, r->place, routes, n, r->n, p);
    place_list_free(routes, n);
}

/* A unicast from the place to a member. */
static void pm_unicast(place_muc *m, pm_room *r, const pm_member *x, const char *method, psyc_packet *p)
{
    if (!psyc_packet_find_routing(p, "_context")) {
        psyc_packet_routing_c(p, "_source", r->place);
    }
    psyc_packet_routing_c(p, "_target", x->uni);
    if (method)
        psyc_packet_set_method(p, psyc_str_c(method));
    place_host_unicast(m->g, p);
}

/* ------------------------------------------------------------------ */
/* PSYC -> the room                                                      */

static xml_node *pm_stanza(const pm_room *r, const pm_member *x, const char *name, const char *nick,
                           const char *type)
{
    char to[2048];
    snprintf(to, sizeof to, nick ? "%s/%s" : "%s", r->jid, nick);
    xml_node *st = xml_elem_new(name, NULL);
    if (!st || xml_attr_set(st, "from", x->jid) || xml_attr_set(st, "to", to) ||
        (type && xml_attr_set(st, "type", type))) {
        xml_node_free(st);
        return NULL;
    }
    return st;
}

static void pm_presence(place_muc *m, const pm_room *r, const pm_member *x, const char *nick, const char *type,
                        const char *history)
{
    xml_node *st = pm_stanza(r, x, "presence", nick, type);
    if (st && !type) {
        xml_node *mx = xml_elem_add(st, "x", MUC_NS);
        xml_node *h = history && mx ? xml_elem_add(mx, "history", NULL) : NULL;
        if (h)
            xml_attr_set(h, "maxstanzas", history);
    }
    if (st)
        bridge_send_xmpp(m->g->bridge, st);
}

static char *pm_var(const psyc_packet *p, const char *name)
{
    psyc_str v;
    return psyc_packet_get(p, name, &v) && v.ptr ? strndup(v.ptr, v.len) : NULL;
}

static void pm_error(place_muc *m, pm_room *r, const char *to, const char *method, const char *text)
{
    psyc_packet e;
    psyc_packet_init(&e);
    psyc_packet_entity_c(&e, "_nick_place", r->name);
    psyc_packet_set_data(&e, psyc_str_c(text));
    pm_member tmp = {.uni = (char *)to};
    pm_unicast(m, r, &tmp, method, &e);
    psyc_packet_free(&e);
}

static void pm_enter(place_muc *m, pm_room *r, const char *src, const psyc_packet *p)
{
    char *nick = pm_var(p, "_nick_local");
    if (!nick)
        nick = pm_var(p, "_nick");
    char *hist = pm_var(p, "_amount_history");
    pm_member *x = member_by(r, src, NULL, NULL);
    if (!nick) {
        pm_error(m, r, src, "_error_place_enter_necessary_nick", "You need a nick to enter [_nick_place].");
    } else if (x && strcmp(x->nick, nick) != 0 && x->state == PM_IN) {
        free(x->want);
        x->want = strdup(nick); /* the room answers with 303 */
        pm_presence(m, r, x, nick, NULL, NULL);
    } else if (!x) {
        psyc_buf jid;
        psyc_buf_init(&jid);
        if (!place_grow(&r->m, &r->cap, r->n, sizeof *r->m) &&
            addr_uniform_to_jid(&m->g->bridge->map, src, PM_RESOURCE, &jid) == ADDR_OK && !psyc_buf_putc(&jid, '\0')) {
            pm_member nx = {strdup(src), strdup(nick), strdup(jid.data), PM_JOINING, NULL, NULL, 0, 0};
            if (nx.uni && nx.nick && nx.jid) {
                r->m[r->n++] = nx;
                log_info(COMP, NULL, "%s: %s enters the XMPP room %s as %s (occupant %s)", r->place, src, r->jid, nick,
                         nx.jid);
                pm_presence(m, r, &nx, nick, NULL, hist);
            } else {
                member_free(&nx);
            }
        } else {
            pm_error(m, r, src, "_error_illegal_uniform_source", "You have no XMPP address.");
        }
        psyc_buf_free(&jid);
    }
    free(nick);
    free(hist);
}

static void pm_talk(place_muc *m, pm_room *r, pm_member *x, const psyc_packet *p, int private)
{
    char *to = private ? pm_var(p, "_nick_target") : NULL;
    if (private && !to)
        return;
    xml_node *st = pm_stanza(r, x, "message", to, private ? "chat" : "groupchat");
    psyc_str action;
    xml_node *b = st ? xml_elem_add(st, "body", NULL) : NULL;
    if (b && psyc_packet_get(p, "_action", &action) && action.ptr) {
        xml_text_add(b, "/me ", 4);
        if (action.len)
            xml_text_add(b, action.ptr, action.len);
    } else if (b && p->data.ptr && p->data.len) {
        xml_text_add(b, p->data.ptr, p->data.len);
    }
    free(to);
    if (st)
        bridge_send_xmpp(m->g->bridge, st);
}

int place_muc_from_psyc(place_muc *m, const psyc_packet *p, const char *peer)
{
    const psyc_modifier *t = psyc_packet_find_routing(p, "_target"), *s = psyc_packet_find_routing(p, "_source");
    psyc_uniform u;
    if (!m || !t || !s || !p->method.ptr || psyc_packet_find_routing(p, "_context") ||
        psyc_uniform_parse(&u, t->value) != PSYC_UNI_OK || u.entity_type != '@' || !u.nick.len ||
        !pm_is_service(m, u.host.ptr, u.host.len) || !m->g->bridge)
        return 0;
    psyc_buf pl, sb;
    psyc_buf_init(&pl);
    psyc_buf_init(&sb);
    if (psyc_uniform_normalize(t->value, &pl) || psyc_buf_putc(&pl, '\0') || psyc_uniform_normalize(s->value, &sb) ||
        psyc_buf_putc(&sb, '\0')) {
        psyc_buf_free(&pl);
        psyc_buf_free(&sb);
        return 0;
    }
    const char *src = sb.data;
    pm_room *r = room_find(m, pl.data, NULL);
    int enter = psyc_inherits(p->method, PSYC_STR_LIT("_request_enter")) ||
                psyc_inherits(p->method, PSYC_STR_LIT("_request_context_enter")) ||
                psyc_inherits(p->method, PSYC_STR_LIT("_notice_place_enter"));
    if (!r && enter && !place_grow(&m->v, &m->cap, m->n, sizeof *m->v) && (r = calloc(1, sizeof *r))) {
        char jid[1024];
        snprintf(jid, sizeof jid, "%.*s@%.*s", (int)u.nick.len, u.nick.ptr, (int)u.host.len, u.host.ptr);
        r->place = strdup(pl.data);
        r->jid = strdup(jid);
        r->name = strndup(u.nick.ptr, u.nick.len);
        if (r->place && r->jid && r->name) {
            m->v[m->n++] = r;
        } else {
            room_free(r);
            r = NULL;
        }
    }
    log_info(COMP, peer, "%.*s from %s to %s (the XMPP room %s)", (int)p->method.len, p->method.ptr, src, pl.data,
             r ? r->jid : "-");
    pm_member *x = r ? member_by(r, src, NULL, NULL) : NULL;
    if (!r) {
        /* nothing: no such room known and not an enter */
    } else if (enter) {
        pm_enter(m, r, src, p);
    } else if (!x || x->state == PM_JOINING) {
        if (!psyc_inherits(p->method, PSYC_STR_LIT("_request_leave")) &&
            !psyc_inherits(p->method, PSYC_STR_LIT("_notice_place_leave")))
            pm_error(m, r, src, "_error_necessary_membership", "You need to enter [_nick_place] first.");
    } else if (psyc_inherits(p->method, PSYC_STR_LIT("_request_leave")) ||
               psyc_inherits(p->method, PSYC_STR_LIT("_request_context_leave")) ||
               psyc_inherits(p->method, PSYC_STR_LIT("_notice_place_leave"))) {
        x->state = PM_LEAVING;
        pm_presence(m, r, x, x->nick, "unavailable", NULL);
    } else if (psyc_inherits(p->method, PSYC_STR_LIT("_message_public"))) {
        pm_talk(m, r, x, p, 0);
    } else if (psyc_inherits(p->method, PSYC_STR_LIT("_message_private"))) {
        pm_talk(m, r, x, p, 1);
    } else if (psyc_inherits(p->method, PSYC_STR_LIT("_request_set_topic"))) {
        xml_node *st = pm_stanza(r, x, "message", NULL, "groupchat");
        char *topic = pm_var(p, "_topic");
        xml_node *sub = st ? xml_elem_add(st, "subject", NULL) : NULL;
        if (sub && topic && *topic)
            xml_text_add(sub, topic, strlen(topic));
        free(topic);
        if (st)
            bridge_send_xmpp(m->g->bridge, st);
    }
    psyc_buf_free(&pl);
    psyc_buf_free(&sb);
    return 1;
}

/* ------------------------------------------------------------------ */
/* The room -> PSYC                                                      */

static int has_code(const xml_node *st, const char *code)
{
    const xml_node *x = xml_child(st, "x", MUC_NS_USER);
    for (const xml_node *c = x ? xml_child(x, "status", NULL) : NULL; c; c = xml_next(c, "status", NULL))
        if (xml_attr_get(c, "code") && strcmp(xml_attr_get(c, "code"), code) == 0)
            return 1;
    return 0;
}

static int pm_gone(const pm_room *r, const char *nick)
{
    for (size_t i = 0; i < sizeof r->gone / sizeof r->gone[0]; i++)
        if (r->gone[i] && strcmp(r->gone[i], nick) == 0)
            return 1;
    return 0;
}

/* A cast about member x (relay x's uniform) of the room's stanza. */
static void pm_cast_as(place_muc *m, pm_room *r, const pm_member *x, const xml_node *st)
{
    psyc_packet p;
    psyc_packet_init(&p);
    if (muc_from_room(st, r->place, x->uni, &p) == 1)
        pm_cast(m, r, &p);
    psyc_packet_free(&p);
}

/* The joiner saw its self-presence: the echo with the occupants it saw. */
static void pm_echo(place_muc *m, pm_room *r, pm_member *x, const xml_node *self)
{
    psyc_buf unis, nicks;
    psyc_buf_init(&unis);
    psyc_buf_init(&nicks);
    for (size_t i = 0; i < x->n_seen; i++) {
        const pm_member *o = member_by(r, NULL, NULL, x->seen[i]);
        psyc_list_append(&unis, psyc_str_c(o ? o->uni : r->place));
        psyc_list_append(&nicks, psyc_str_c(x->seen[i]));
    }
    psyc_list_append(&unis, psyc_str_c(x->uni));
    psyc_list_append(&nicks, psyc_str_c(x->nick));
    const xml_node *mx = xml_child(self, "x", MUC_NS_USER), *item = mx ? xml_child(mx, "item", NULL) : NULL;
    const char *aff = item ? xml_attr_get(item, "affiliation") : NULL;
    psyc_packet e;
    psyc_packet_init(&e);
    psyc_packet_entity_c(&e, "_nick", x->nick);
    psyc_packet_entity_c(&e, "_nick_place", r->name);
    psyc_packet_add_entity(&e, ':', PSYC_STR_LIT("_list_members"), (psyc_str){unis.data, unis.len});
    psyc_packet_add_entity(&e, ':', PSYC_STR_LIT("_list_members_nicks"), (psyc_str){nicks.data, nicks.len});
    psyc_packet_entity_c(&e, "_duty", aff && strcmp(aff, "owner") == 0 ? "owner" : "member");
    if (has_code(self, "170"))
        psyc_packet_entity_c(&e, "_amount_history", "1");
    psyc_packet_set_data(&e, PSYC_STR_LIT("[_nick] enters [_nick_place]."));
    log_info(COMP, NULL, "%s: %s is in the XMPP room with %zu others: _echo_place_enter", r->place, x->uni, x->n_seen);
    pm_cast_as(m, r, x, self); /* the others see it enter (it is still joining: not itself) */
    pm_unicast(m, r, x, "_echo_place_enter", &e);
    psyc_packet_free(&e);
    psyc_buf_free(&unis);
    psyc_buf_free(&nicks);
    place_list_free(x->seen, x->n_seen);
    x->seen = NULL;
    x->n_seen = x->cap_seen = 0;
    x->state = PM_BURST;
}

/* A stanza for the joiner during its burst: collected, or unicast. */
static void pm_burst(place_muc *m, pm_room *r, pm_member *x, const xml_node *st, const char *nick)
{
    const char *type = xml_attr_get(st, "type");
    if (strcmp(st->name, "presence") == 0 && !type && nick) {
        if (has_code(st, "110")) {
            pm_echo(m, r, x, st);
        } else if (!place_grow(&x->seen, &x->cap_seen, x->n_seen, sizeof *x->seen) &&
                   (x->seen[x->n_seen] = strdup(nick))) {
            x->n_seen++;
        }
        return;
    }
    psyc_packet p;
    psyc_packet_init(&p);
    if (strcmp(st->name, "message") == 0 && xml_child(st, "subject", NULL) && !xml_child(st, "body", NULL)) {
        /* the end of the burst (XEP-0045 §7.2.15) */
        if (muc_from_room(st, r->place, r->place, &p) == 1) {
            psyc_packet q;
            psyc_packet_init(&q);
            psyc_str v;
            psyc_packet_entity_c(&q, "_nick_place", r->name);
            if (psyc_packet_get(&p, "_topic", &v) && v.ptr)
                psyc_packet_add_entity(&q, ':', PSYC_STR_LIT("_topic"), v);
            if (psyc_packet_get(&p, "_nick", &v) && v.ptr)
                psyc_packet_add_entity(&q, ':', PSYC_STR_LIT("_nick"), v);
            pm_unicast(m, r, x, "_status_place_topic", &q);
            psyc_packet_free(&q);
        }
        x->state = PM_IN;
    } else if (muc_from_room(st, r->place, r->place, &p) == 1) {
        /* history: unicast within the context (PSYC.md §4.1) */
        pm_unicast(m, r, x, NULL, &p);
    }
    psyc_packet_free(&p);
}

/* Our member's own presence (110): a nick change or its leave. */
static void pm_self_change(place_muc *m, pm_room *r, pm_member *x, const xml_node *st)
{
    const char *type = xml_attr_get(st, "type");
    if (!type || strcmp(type, "unavailable") != 0)
        return; /* the presence under a new nick: the 303 said it */
    pm_cast_as(m, r, x, st);
    if (has_code(st, "303")) {
        const xml_node *mx = xml_child(st, "x", MUC_NS_USER), *item = mx ? xml_child(mx, "item", NULL) : NULL;
        const char *nn = item ? xml_attr_get(item, "nick") : NULL;
        char *dup = nn ? strdup(nn) : NULL;
        if (dup) {
            free(r->gone[r->gone_next]);
            r->gone[r->gone_next] = x->nick;
            r->gone_next = (r->gone_next + 1) % (sizeof r->gone / sizeof r->gone[0]);
            x->nick = dup;
        }
        free(x->want);
        x->want = NULL;
        return;
    }
    log_info(COMP, NULL, "%s: %s left the XMPP room", r->place, x->uni);
    free(r->gone[r->gone_next]);
    r->gone[r->gone_next] = x->nick;
    x->nick = NULL;
    r->gone_next = (r->gone_next + 1) % (sizeof r->gone / sizeof r->gone[0]);
    member_remove(r, x);
}

int place_muc_from_xmpp(place_muc *m, const xml_node *st)
{
    const char *from = xml_attr_get(st, "from"), *to = xml_attr_get(st, "to");
    if (!m || !from || !to || !m->n)
        return 0;
    char bare[1024];
    const char *slash = strchr(from, '/');
    snprintf(bare, sizeof bare, "%.*s", slash ? (int)(slash - from) : (int)strlen(from), from);
    const char *nick = slash ? slash + 1 : NULL;
    pm_room *r = room_find(m, NULL, bare);
    pm_member *x = r ? member_by(r, NULL, to, NULL) : NULL;
    if (!x)
        return 0;
    const char *type = xml_attr_get(st, "type");
    if (type && strcmp(type, "error") == 0) {
        /* refused (a nick in use, a ban ...): the error to the member */
        const xml_node *e = xml_child(st, "error", NULL), *c = e ? xml_child(e, NULL, NULL) : NULL;
        const char *method = translate_error_method(c ? c->name : "undefined-condition", xml_attr_get(e, "type"));
        if (c && strcmp(c->name, "conflict") == 0)
            method = "_error_duplicate_nick_place";
        log_info(COMP, NULL, "%s: the XMPP room refused %s: %s", r->place, x->uni, method);
        char uni[PSYC_UNIFORM_MAX + 1];
        snprintf(uni, sizeof uni, "%s", x->uni);
        if (x->state == PM_JOINING)
            member_remove(r, x);
        else if (x->want) {
            free(x->want);
            x->want = NULL;
        }
        pm_error(m, r, uni, method, "The room refused it.");
        return 1;
    }
    if (x->state == PM_JOINING || x->state == PM_BURST) {
        pm_burst(m, r, x, st, nick);
        return 1;
    }
    int self = nick && strcmp(st->name, "presence") == 0 && has_code(st, "110");
    if (strcmp(st->name, "message") == 0 && type && strcmp(type, "chat") == 0 && nick) {
        /* a private message through the room, to this member only */
        psyc_packet p;
        psyc_packet_init(&p);
        const xml_node *b = xml_child(st, "body", NULL);
        size_t len = 0;
        const char *text = b ? xml_elem_text(b, &len) : NULL;
        if (text && !psyc_packet_routing_c(&p, "_source_relay", r->place) &&
            !psyc_packet_routing_c(&p, "_context", r->place) && !psyc_packet_entity_c(&p, "_nick", nick) &&
            !psyc_packet_set_data(&p, (psyc_str){text, len}))
            pm_unicast(m, r, x, "_message_private", &p);
        psyc_packet_free(&p);
        return 1;
    }
    /* Our members' own presence changes are cast from their own copy
     * (status 110), as that member; other copies of them are not. */
    if (self) {
        pm_self_change(m, r, x, st);
        return 1;
    }
    const pm_member *d = designated(r);
    const xml_node *mx = xml_child(st, "x", MUC_NS_USER), *item = mx ? xml_child(mx, "item", NULL) : NULL;
    const char *nn = item ? xml_attr_get(item, "nick") : NULL;
    int ours = strcmp(st->name, "presence") == 0 && nick &&
               (member_by(r, NULL, NULL, nick) || (nn && member_by(r, NULL, NULL, nn)) || pm_gone(r, nick));
    if (d == x && !ours) {
        psyc_packet p;
        psyc_packet_init(&p);
        if (muc_from_room(st, r->place, r->place, &p) == 1)
            pm_cast(m, r, &p);
        psyc_packet_free(&p);
    } else {
        r->copies_dropped++;
        log_debug(COMP, NULL, "%s: <%s/> from %s to %s: not cast (a copy, or about our own member; %llu so far)",
                  r->place, st->name, from, to, (unsigned long long)r->copies_dropped);
    }
    return 1;
}

void place_muc_tick(place_muc *m)
{
    for (size_t i = 0; m && i < m->n; i++) {
        pm_room *r = m->v[i];
        for (size_t k = 0; k < r->n; k++) {
            pm_member *x = &r->m[k];
            psyc_uniform u;
            if (x->state == PM_LEAVING || psyc_uniform_parse(&u, psyc_str_c(x->uni)) != PSYC_UNI_OK)
                continue;
            char root[PSYC_UNIFORM_MAX + 2];
            snprintf(root, sizeof root, "%.*s/", (int)u.root.len, u.root.ptr);
            const char *why = place_host_route_lost(m->g->place_host, root);
            if (!why)
                continue;
            log_info(COMP, root, "%s: %s unreachable (%s): %s leaves the XMPP room %s (netsplit)", r->place, root,
                     why, x->uni, r->jid);
            x->state = PM_LEAVING;
            pm_presence(m, r, x, x->nick, "unavailable", NULL);
        }
    }
}
