/* place_local.c: our XMPP users in places (see place_local.h). */
#include "gateway/place_local.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/bridge.h"
#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/place_host.h"
#include "gateway/place_muc.h"
#include "gateway/psyc_out.h"
#include "routing/entity.h"
#include "routing/muc.h"
#include "routing/place.h"
#include "routing/routing.h"

#define COMP "place"

/* An occupant's state: waiting for the echo, in the join burst (history
 * and subject to come), or in. */
enum { PL_WAIT_ECHO = 1, PL_BURST = 2, PL_IN = 0 };

typedef struct pl_occ {
    char *jid;   /* full JID */
    char *uni;   /* its uniform */
    char *nick;
    char *room;  /* the room's bare JID as it addressed it */
    char *want;  /* a nick change asked for, until the place answers */
    int state;
} pl_occ;

typedef struct pl_member {
    char *uni, *nick;
} pl_member;

typedef struct pl_ctx {
    char *place;         /* normalised uniform */
    pl_occ *occ;
    size_t n_occ, cap_occ;
    pl_member *roster;   /* the place's members as it told us */
    size_t n_roster, cap_roster;
    uint64_t next;       /* the next _counter expected; 0: not known */
} pl_ctx;

struct place_local {
    gw *g;
    pl_ctx **v;
    size_t n, cap;
    uint64_t casts_in, stanzas_out, gaps;
};

/* ------------------------------------------------------------------ */
/* Bookkeeping                                                          */

static void occ_free(pl_occ *o)
{
    free(o->want);
    free(o->jid);
    free(o->uni);
    free(o->nick);
    free(o->room);
}

static void roster_clear(pl_ctx *c)
{
    for (size_t i = 0; i < c->n_roster; i++) {
        free(c->roster[i].uni);
        free(c->roster[i].nick);
    }
    c->n_roster = 0;
}

static void ctx_free(pl_ctx *c)
{
    for (size_t i = 0; i < c->n_occ; i++)
        occ_free(&c->occ[i]);
    free(c->occ);
    roster_clear(c);
    free(c->roster);
    free(c->place);
    free(c);
}

place_local *place_local_new(gw *g)
{
    place_local *pl = calloc(1, sizeof *pl);
    if (pl)
        pl->g = g;
    return pl;
}

void place_local_free(place_local *pl)
{
    if (!pl)
        return;
    for (size_t i = 0; i < pl->n; i++)
        ctx_free(pl->v[i]);
    free(pl->v);
    free(pl);
}

static pl_ctx *ctx_find(const place_local *pl, const char *place)
{
    for (size_t i = 0; i < pl->n; i++)
        if (strcmp(pl->v[i]->place, place) == 0)
            return pl->v[i];
    return NULL;
}

static pl_ctx *ctx_get(place_local *pl, const char *place)
{
    pl_ctx *c = ctx_find(pl, place);
    if (c)
        return c;
    if (place_grow(&pl->v, &pl->cap, pl->n, sizeof *pl->v))
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c || !(c->place = strdup(place))) {
        free(c);
        return NULL;
    }
    pl->v[pl->n++] = c;
    return c;
}

/* Forgets a context without occupants. */
static void ctx_gc(place_local *pl, pl_ctx *c)
{
    if (c->n_occ)
        return;
    for (size_t i = 0; i < pl->n; i++)
        if (pl->v[i] == c) {
            pl->v[i] = pl->v[--pl->n];
            ctx_free(c);
            return;
        }
}

static pl_occ *occ_find(pl_ctx *c, const char *jid)
{
    for (size_t i = 0; i < c->n_occ; i++)
        if (strcmp(c->occ[i].jid, jid) == 0)
            return &c->occ[i];
    return NULL;
}

static pl_occ *occ_add(pl_ctx *c, const char *jid, const char *uni, const char *nick, const char *room)
{
    if (place_grow(&c->occ, &c->cap_occ, c->n_occ, sizeof *c->occ))
        return NULL;
    pl_occ o = {strdup(jid), strdup(uni), strdup(nick), strdup(room), NULL, PL_WAIT_ECHO};
    if (!o.jid || !o.uni || !o.nick || !o.room) {
        occ_free(&o);
        return NULL;
    }
    c->occ[c->n_occ] = o;
    return &c->occ[c->n_occ++];
}

static void occ_remove(pl_ctx *c, size_t i)
{
    occ_free(&c->occ[i]);
    c->occ[i] = c->occ[--c->n_occ];
}

static int roster_set(pl_ctx *c, const char *uni, const char *nick)
{
    for (size_t i = 0; i < c->n_roster; i++)
        if (strcasecmp(c->roster[i].uni, uni) == 0) {
            char *n = strdup(nick);
            if (!n)
                return -1;
            free(c->roster[i].nick);
            c->roster[i].nick = n;
            return 0;
        }
    if (place_grow(&c->roster, &c->cap_roster, c->n_roster, sizeof *c->roster))
        return -1;
    pl_member m = {strdup(uni), strdup(nick)};
    if (!m.uni || !m.nick) {
        free(m.uni);
        free(m.nick);
        return -1;
    }
    c->roster[c->n_roster++] = m;
    return 0;
}

static void roster_del(pl_ctx *c, const char *uni)
{
    for (size_t i = 0; i < c->n_roster; i++)
        if (strcasecmp(c->roster[i].uni, uni) == 0) {
            free(c->roster[i].uni);
            free(c->roster[i].nick);
            c->roster[i] = c->roster[--c->n_roster];
            return;
        }
}

/* The place's member list (_list_members, _list_members_nicks) as the
 * roster. */
static void roster_from(pl_ctx *c, const psyc_packet *p)
{
    char **unis = NULL, **nicks = NULL;
    size_t nu = place_list(p, "_list_members", &unis), nn = place_list(p, "_list_members_nicks", &nicks);
    if (nu != (size_t)-1 && nn != (size_t)-1 && (nu || nn)) {
        roster_clear(c);
        for (size_t i = 0; i < nu && i < nn; i++)
            if (roster_set(c, unis[i], nicks[i]) != 0)
                break;
    }
    place_list_free(unis, nu);
    place_list_free(nicks, nn);
}

/* ------------------------------------------------------------------ */
/* PSYC -> our occupants                                                 */

static void var_c(const psyc_packet *p, const char *name, char *buf, size_t size)
{
    psyc_str v;
    buf[0] = '\0';
    if (psyc_packet_get(p, name, &v) && v.ptr)
        snprintf(buf, size, "%.*s", (int)v.len, v.ptr);
}

/* Translates p for one occupant and sends what comes out. */
static size_t pl_show(place_local *pl, const pl_occ *o, const psyc_packet *p)
{
    /* An error while joining, or about a nick change (XEP-0045 §7.6: a
     * presence error from room/new nick), is a presence error. */
    int change = o->want && (psyc_inherits(p->method, PSYC_STR_LIT("_error")) ||
                             psyc_inherits(p->method, PSYC_STR_LIT("_failure")));
    muc_view v = {.map = &pl->g->bridge->map, .room = o->room, .to = o->jid, .self = o->uni,
                  .nick = change ? o->want : o->nick, .joining = o->state == PL_WAIT_ECHO || change};
    muc_stanzas out = {0};
    if (muc_to_xmpp(&v, p, &out) < 0)
        log_warn(COMP, NULL, "%.*s for %s: out of memory translating it", (int)p->method.len, p->method.ptr, o->jid);
    size_t n = out.n;
    for (size_t i = 0; i < out.n; i++) {
        bridge_send_xmpp(pl->g->bridge, out.v[i]);
        out.v[i] = NULL;
    }
    muc_stanzas_free(&out);
    pl->stanzas_out += n;
    return n;
}

/* Sends a request to a place: ours directly, others over PSYC. */
static void pl_send(place_local *pl, const psyc_packet *p)
{
    const psyc_modifier *t = psyc_packet_find_routing(p, "_target");
    if (t && routing_psyc_is_local(t->value, pl->g->host)) {
        if (!place_host_from_psyc(pl->g->place_host, p, NULL))
            log_info(COMP, NULL, "%.*s to %.*s: no such place here", (int)p->method.len, p->method.ptr,
                     (int)t->value.len, t->value.ptr);
        return;
    }
    psyc_out_send(pl->g->psyc_out, p);
}

/* A gap in the casts: ask the place for its members (psyced's
 * _request_members, PSYC.md §9 capture 14) and show the difference. */
static void pl_resync(place_local *pl, pl_ctx *c, uint64_t got, uint64_t want)
{
    pl->gaps++;
    log_info(COMP, NULL, "%s: cast #%llu came where #%llu was due: asking the place for its members", c->place,
             (unsigned long long)got, (unsigned long long)want);
    if (!c->n_occ)
        return;
    psyc_packet r;
    psyc_packet_init(&r);
    if (!psyc_packet_routing_c(&r, "_source", c->occ[0].uni) && !psyc_packet_routing_c(&r, "_target", c->place) &&
        !psyc_packet_set_method(&r, PSYC_STR_LIT("_request_members")))
        pl_send(pl, &r);
    psyc_packet_free(&r);
}

/* A synthetic notice (enter or leave of `uni` as `nick`) for the
 * occupants in, from a resync. */
static void pl_synth(place_local *pl, pl_ctx *c, const char *method, const char *uni, const char *nick)
{
    psyc_packet n;
    psyc_packet_init(&n);
    if (!psyc_packet_routing_c(&n, "_source_relay", uni) && !psyc_packet_routing_c(&n, "_context", c->place) &&
        !psyc_packet_entity_c(&n, "_nick", nick) && !psyc_packet_set_method(&n, psyc_str_c(method)))
        for (size_t i = 0; i < c->n_occ; i++)
            if (c->occ[i].state == PL_IN)
                pl_show(pl, &c->occ[i], &n);
    psyc_packet_free(&n);
}

static void pl_members_answer(place_local *pl, pl_ctx *c, const psyc_packet *p)
{
    /* Who left and who came while we missed casts. */
    pl_ctx fresh = {0};
    roster_from(&fresh, p);
    for (size_t i = 0; i < c->n_roster; i++) {
        int still = 0;
        for (size_t k = 0; !still && k < fresh.n_roster; k++)
            still = strcasecmp(fresh.roster[k].uni, c->roster[i].uni) == 0;
        if (!still)
            pl_synth(pl, c, "_notice_place_leave", c->roster[i].uni, c->roster[i].nick);
    }
    for (size_t k = 0; k < fresh.n_roster; k++) {
        int known = 0;
        for (size_t i = 0; !known && i < c->n_roster; i++)
            known = strcasecmp(fresh.roster[k].uni, c->roster[i].uni) == 0 &&
                    strcmp(fresh.roster[k].nick, c->roster[i].nick) == 0;
        if (!known)
            pl_synth(pl, c, "_notice_place_enter", fresh.roster[k].uni, fresh.roster[k].nick);
    }
    roster_clear(c);
    free(c->roster);
    c->roster = fresh.roster;
    c->n_roster = fresh.n_roster;
    c->cap_roster = fresh.cap_roster;
    char cnt[24];
    var_c(p, "_counter", cnt, sizeof cnt);
    if (cnt[0])
        c->next = strtoull(cnt, NULL, 10) + 1;
}

static int is(const psyc_packet *p, const char *base)
{
    return psyc_inherits(p->method, psyc_str_c(base));
}

/* A cast of the place: to every occupant that is in (one stanza each). */
static void pl_cast_in(place_local *pl, pl_ctx *c, const psyc_packet *p, const char *peer)
{
    char cnt[24], relay[PSYC_UNIFORM_MAX + 1], nick[1024];
    var_c(p, "_counter", cnt, sizeof cnt);
    var_c(p, "_source_relay", relay, sizeof relay);
    var_c(p, "_nick", nick, sizeof nick);
    if (cnt[0]) {
        uint64_t n = strtoull(cnt, NULL, 10);
        if (c->next && n < c->next) {
            log_info(COMP, peer, "%s: cast #%llu again (#%llu due): dropped", c->place, (unsigned long long)n,
                     (unsigned long long)c->next);
            return;
        }
        if (c->next && n > c->next)
            pl_resync(pl, c, n, c->next);
        c->next = n + 1;
    }
    pl->casts_in++;
    size_t sent = 0, to = 0;
    for (size_t i = 0; i < c->n_occ; i++) {
        pl_occ *o = &c->occ[i];
        if (o->state == PL_BURST)
            o->state = PL_IN; /* a place without a topic sends none (psyced) */
        if (o->state != PL_IN)
            continue;
        sent += pl_show(pl, o, p);
        to++;
    }
    log_info(COMP, peer, "%s: %.*s #%s of %s -> %zu stanzas to %zu occupants here", c->place, (int)p->method.len,
             p->method.ptr, cnt[0] ? cnt : "-", relay, sent, to);
    /* The place's roster, and our occupants who are out now. */
    if (is(p, "_notice_place_enter") || is(p, "_notice_context_enter")) {
        roster_set(c, relay, nick);
    } else if (is(p, "_notice_place_nick")) {
        char nn[1024];
        var_c(p, "_nick_new", nn, sizeof nn);
        roster_set(c, relay, nn);
        for (size_t i = 0; i < c->n_occ; i++)
            if (strcasecmp(c->occ[i].uni, relay) == 0) {
                char *d = strdup(nn);
                if (d) {
                    free(c->occ[i].nick);
                    c->occ[i].nick = d;
                }
                free(c->occ[i].want);
                c->occ[i].want = NULL;
            }
    } else if (is(p, "_notice_place_leave") || is(p, "_notice_context_leave")) {
        roster_del(c, relay);
        for (size_t i = 0; i < c->n_occ;)
            if (strcasecmp(c->occ[i].uni, relay) == 0 && c->occ[i].state == PL_IN) {
                log_info(COMP, peer, "%s: %s is out (%.*s)", c->place, c->occ[i].jid, (int)p->method.len,
                         p->method.ptr);
                occ_remove(c, i);
            } else {
                i++;
            }
        ctx_gc(pl, c);
    }
}

/* A cast copied to one member (a place with [multicast] enabled = no:
 * the bench's per-recipient baseline): _context, _counter and _target.
 * Shown to that occupant like a cast; the roster follows the notices. */
static void pl_member_copy_in(place_local *pl, pl_ctx *c, const psyc_packet *p, const char *target, const char *peer)
{
    char relay[PSYC_UNIFORM_MAX + 1], nick[1024];
    var_c(p, "_source_relay", relay, sizeof relay);
    var_c(p, "_nick", nick, sizeof nick);
    size_t sent = 0;
    for (size_t i = 0; i < c->n_occ;) {
        pl_occ *o = &c->occ[i];
        if (strcasecmp(o->uni, target) != 0 || o->state != PL_IN) {
            i++;
            continue;
        }
        sent += pl_show(pl, o, p);
        if ((is(p, "_notice_place_leave") || is(p, "_notice_context_leave")) && strcasecmp(relay, target) == 0) {
            occ_remove(c, i);
            continue;
        }
        i++;
    }
    if (is(p, "_notice_place_enter") || is(p, "_notice_context_enter"))
        roster_set(c, relay, nick);
    else if (is(p, "_notice_place_leave") || is(p, "_notice_context_leave"))
        roster_del(c, relay);
    pl->casts_in++;
    log_debug(COMP, peer, "%s: %.*s copy for %s -> %zu stanzas", c->place, (int)p->method.len, p->method.ptr, target,
              sent);
    ctx_gc(pl, c);
}

static void pl_unicast_in(place_local *pl, pl_ctx *c, const psyc_packet *p, const char *target, const char *peer);

/* An echo without the member list (we said _understand_roster and have
 * members there): the list from the roster we keep, then as any echo. */
static void pl_echo_from_roster(place_local *pl, pl_ctx *c, const psyc_packet *p, const char *target, const char *peer)
{
    psyc_packet full;
    psyc_packet_init(&full);
    psyc_buf unis, nicks;
    psyc_buf_init(&unis);
    psyc_buf_init(&nicks);
    int rc = psyc_packet_copy(&full, p);
    for (size_t i = 0; !rc && i < c->n_roster; i++)
        rc = psyc_list_append(&unis, psyc_str_c(c->roster[i].uni)) ||
             psyc_list_append(&nicks, psyc_str_c(c->roster[i].nick));
    if (!rc)
        rc = psyc_packet_add_entity(&full, ':', PSYC_STR_LIT("_list_members"), (psyc_str){unis.data, unis.len}) ||
             psyc_packet_add_entity(&full, ':', PSYC_STR_LIT("_list_members_nicks"), (psyc_str){nicks.data, nicks.len});
    if (rc)
        log_warn(COMP, peer, "%s: out of memory filling in the member list", c->place);
    pl_unicast_in(pl, c, rc ? p : &full, target, peer);
    psyc_packet_free(&full);
    psyc_buf_free(&unis);
    psyc_buf_free(&nicks);
}

/* A unicast from the place to one of our uniforms. */
static void pl_unicast_in(place_local *pl, pl_ctx *c, const psyc_packet *p, const char *target, const char *peer)
{
    if ((is(p, "_echo_place_enter") || is(p, "_echo_context_enter")) && c->n_roster &&
        !psyc_packet_find_entity(p, "_list_members")) {
        pl_echo_from_roster(pl, c, p, target, peer);
        return;
    }
    if (psyc_packet_find_routing(p, "_context") && psyc_packet_find_routing(p, "_counter") &&
        !is(p, "_echo_place_enter") && !is(p, "_echo_context_enter")) {
        pl_member_copy_in(pl, c, p, target, peer);
        return;
    }
    int echo = is(p, "_echo_place_enter") || is(p, "_echo_context_enter");
    int burst = echo || is(p, "_status_place_topic") || (is(p, "_message_public") && psyc_packet_find_routing(p, "_context"));
    int error = is(p, "_error") || is(p, "_failure");
    if (echo) {
        roster_from(c, p);
        char cnt[24];
        var_c(p, "_counter", cnt, sizeof cnt);
        if (cnt[0])
            c->next = strtoull(cnt, NULL, 10) + 1;
    }
    if (is(p, "_status_place_members")) {
        pl_members_answer(pl, c, p);
        return;
    }
    size_t sent = 0;
    for (size_t i = 0; i < c->n_occ;) {
        pl_occ *o = &c->occ[i];
        if (strcasecmp(o->uni, target) != 0) {
            i++;
            continue;
        }
        int want = burst ? (echo ? o->state == PL_WAIT_ECHO : o->state == PL_BURST) : error || o->state == PL_IN;
        if (want)
            sent += pl_show(pl, o, p);
        if (want && echo)
            o->state = PL_BURST;
        else if (want && is(p, "_status_place_topic"))
            o->state = PL_IN;
        /* Refused, or not in the place: the occupant is gone. */
        if (want && error && o->want) {
            free(o->want); /* the nick change was refused */
            o->want = NULL;
        }
        if (want && ((error && o->state == PL_WAIT_ECHO) || is(p, "_echo_place_leave"))) {
            log_info(COMP, peer, "%s: %s is out (%.*s)", c->place, o->jid, (int)p->method.len, p->method.ptr);
            occ_remove(c, i);
            continue;
        }
        i++;
    }
    log_info(COMP, peer, "%s: %.*s to %s -> %zu stanzas", c->place, (int)p->method.len, p->method.ptr, target, sent);
    ctx_gc(pl, c);
}

int place_local_from_psyc(place_local *pl, const psyc_packet *p, const char *peer)
{
    if (!pl || !p->method.ptr)
        return 0;
    const psyc_modifier *ctxm = psyc_packet_find_routing(p, "_context");
    const psyc_modifier *t = psyc_packet_find_routing(p, "_target");
    const psyc_modifier *s = psyc_packet_find_routing(p, "_source");
    psyc_str place = ctxm ? ctxm->value : s && t ? s->value : PSYC_STR_NULL;
    psyc_uniform u;
    if (!place.ptr || psyc_uniform_parse(&u, place) != PSYC_UNI_OK || u.entity_type != '@')
        return 0;
    psyc_buf nb;
    psyc_buf_init(&nb);
    pl_ctx *c = NULL;
    if (psyc_uniform_normalize(place, &nb) == 0 && psyc_buf_putc(&nb, '\0') == 0)
        c = ctx_find(pl, nb.data);
    psyc_buf_free(&nb);
    if (!c)
        return 0;
    if (t) {
        char target[PSYC_UNIFORM_MAX + 1];
        snprintf(target, sizeof target, "%.*s", (int)t->value.len, t->value.ptr);
        pl_unicast_in(pl, c, p, target, peer);
    } else {
        pl_cast_in(pl, c, p, peer);
    }
    return 1;
}

int place_local_deliver(void *ud, const psyc_packet *p, const char *context, const char *peer)
{
    (void)context;
    return place_local_from_psyc(ud, p, peer);
}

/* ------------------------------------------------------------------ */
/* XMPP -> places                                                        */

/* Our [places] domain named `domain`? */
static int pl_is_places_domain(const place_local *pl, const char *domain)
{
    const char *const *d = NULL;
    size_t n = cfg_get_domains(pl->g->cfg, "places", "domain", &d);
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(d[i], domain) == 0)
            return 1;
    return 0;
}

/* XEP-0030 disco#items of a [places] domain (or the transport domain):
 * the places we host. 1 when answered. */
static int pl_disco(place_local *pl, const xml_node *st, const char *domain)
{
    const char *to = xml_attr_get(st, "to");
    const bridge *b = pl->g->bridge;
    int plain = pl_is_places_domain(pl, domain);
    if (!to || strchr(to, '@') || strchr(to, '/') || strcmp(st->name, "iq") != 0 ||
        !xml_child(st, "query", ENTITY_NS_DISCO_ITEMS) || (!plain && strcasecmp(domain, b->transport) != 0))
        return 0;
    /* The bridge's own items (if any), then our places. */
    size_t np = 0;
    const routing_entity_item *places = place_host_items(pl->g->place_host, domain, plain, &np);
    routing_entity e = b->entity;
    routing_entity_item *all = calloc(e.n_items + np + 1, sizeof *all);
    if (!all)
        return 0;
    if (e.n_items)
        memcpy(all, e.items, e.n_items * sizeof *all);
    if (np)
        memcpy(all + e.n_items, places, np * sizeof *all);
    e.items = all;
    e.n_items += np;
    xml_node *reply = routing_entity_answer(st, &e, uv_now(pl->g->loop));
    free(all);
    if (!reply)
        return 0;
    log_info(COMP, NULL, "disco#items from %s to %s: %zu places", xml_attr_get(st, "from"), to, np);
    bridge_send_xmpp(pl->g->bridge, reply);
    return 1;
}

static void pl_refuse(place_local *pl, const xml_node *st, const char *cond, const char *why)
{
    xml_node *err = routing_error_reply(st, cond);
    log_info(COMP, NULL, "<%s/> from %s to %s refused with <%s/>: %s", st->name, xml_attr_get(st, "from"),
             xml_attr_get(st, "to"), cond, why);
    if (err)
        bridge_send_xmpp(pl->g->bridge, err);
}

/* The place a room JID names, into place (normalised uniform): ROOM@D for
 * a [places] domain D, else whatever routing/addr.h maps to a place. */
static int pl_place_of(place_local *pl, const char *bare, const char *domain, psyc_buf *place)
{
    if (pl_is_places_domain(pl, domain)) {
        const char *at = strchr(bare, '@');
        if (!at || at == bare)
            return 0;
        psyc_buf raw;
        psyc_buf_init(&raw);
        int ok = !psyc_buf_puts(&raw, "psyc://") && !psyc_buf_puts(&raw, pl->g->host) && !psyc_buf_puts(&raw, "/@") &&
                 !psyc_buf_append(&raw, bare, (size_t)(at - bare)) &&
                 psyc_uniform_normalize((psyc_str){raw.data, raw.len}, place) == 0;
        psyc_buf_free(&raw);
        return ok;
    }
    psyc_buf u;
    psyc_buf_init(&u);
    psyc_uniform pu;
    int ok = addr_jid_to_uniform(&pl->g->bridge->map, bare, &u, NULL) == ADDR_OK &&
             psyc_uniform_parse(&pu, (psyc_str){u.data, u.len}) == PSYC_UNI_OK && pu.entity_type == '@' &&
             psyc_uniform_normalize((psyc_str){u.data, u.len}, place) == 0;
    psyc_buf_free(&u);
    return ok;
}

int place_local_from_xmpp(place_local *pl, const xml_node *st, const char *domain)
{
    if (!pl || !pl->g->bridge)
        return 0;
    if (pl_disco(pl, st, domain) || (pl->g->place_muc && place_muc_from_xmpp(pl->g->place_muc, st)))
        return 1;
    const char *to = xml_attr_get(st, "to"), *from = xml_attr_get(st, "from");
    /* Rooms are *ROOM@... (psyced's place prefix, routing/addr.h) or on a
     * [places] domain: anything else is the bridge's, without a lookup. */
    if (!to || !from || (to[0] != '*' && !pl_is_places_domain(pl, domain)))
        return 0;
    char bare[1024];
    const char *slash = strchr(to, '/');
    snprintf(bare, sizeof bare, "%.*s", slash ? (int)(slash - to) : (int)strlen(to), to);
    const char *nick = slash ? slash + 1 : NULL;
    psyc_buf place;
    psyc_buf_init(&place);
    if (!pl_place_of(pl, bare, domain, &place) || psyc_buf_putc(&place, '\0') != 0) {
        psyc_buf_free(&place);
        return 0;
    }
    /* The occupant: one of our users (we speak for our own host only). */
    psyc_buf self;
    psyc_buf_init(&self);
    int ok = addr_jid_to_uniform(&pl->g->bridge->map, from, &self, NULL) == ADDR_OK && psyc_buf_putc(&self, '\0') == 0;
    if (!ok || !routing_psyc_is_local(psyc_str_c(self.data), pl->g->host)) {
        pl_refuse(pl, st, "not-allowed", "its sender has no uniform on our PSYC host");
        psyc_buf_free(&self);
        psyc_buf_free(&place);
        return 1;
    }
    psyc_packet p;
    psyc_packet_init(&p);
    const char *cond = NULL;
    muc_req k = muc_request(&pl->g->bridge->map, st, place.data, self.data, nick, &p, &cond);
    pl_ctx *c = ctx_find(pl, place.data);
    pl_occ *o = c ? occ_find(c, from) : NULL;
    int send = 1;
    switch (k) {
    case MUC_REQ_NONE: {
        psyc_uniform pu;
        char name[256] = "";
        if (psyc_uniform_parse(&pu, psyc_str_c(place.data)) == PSYC_UNI_OK)
            snprintf(name, sizeof name, "%.*s", (int)pu.nick.len, pu.nick.ptr);
        xml_node *info = !nick ? muc_disco_info(st, name) : NULL;
        if (info) {
            log_info(COMP, NULL, "disco#info from %s to %s: a room", from, to);
            bridge_send_xmpp(pl->g->bridge, info);
        } else if (strcmp(st->name, "iq") == 0) {
            pl_refuse(pl, st, "feature-not-implemented", "the gateway's rooms answer no such iq");
        }
        send = 0;
        break;
    }
    case MUC_REQ_ERROR:
        pl_refuse(pl, st, cond, "not a request a place understands");
        send = 0;
        break;
    case MUC_REQ_ENTER:
        if (o && o->state != PL_WAIT_ECHO && strcmp(o->nick, nick) == 0) {
            send = 0; /* a presence update: the place has nothing to do with it */
            break;
        }
        if (!o) {
            c = c ? c : ctx_get(pl, place.data);
            o = c ? occ_add(c, from, self.data, nick, bare) : NULL;
            if (!o) {
                pl_refuse(pl, st, "resource-constraint", "out of memory");
                send = 0;
            }
        } else {
            char *d = strdup(nick); /* the nick asked for (errors name it) */
            if (o->state == PL_WAIT_ECHO) {
                free(o->nick);
                o->nick = d;
            } else {
                free(o->want);
                o->want = d;
            }
        }
        break;
    case MUC_REQ_LEAVE:
        if (!o) {
            send = 0; /* not in: nothing to leave */
            break;
        }
        /* Another session of the same user stays: only this one goes. */
        for (size_t i = 0; send && i < c->n_occ; i++)
            if (&c->occ[i] != o && strcmp(c->occ[i].uni, o->uni) == 0)
                send = 0;
        if (!send) {
            psyc_packet n;
            psyc_packet_init(&n);
            if (!psyc_packet_routing_c(&n, "_source_relay", o->uni) && !psyc_packet_routing_c(&n, "_context", c->place) &&
                !psyc_packet_entity_c(&n, "_nick", o->nick) &&
                !psyc_packet_set_method(&n, PSYC_STR_LIT("_notice_place_leave")))
                pl_show(pl, o, &n);
            psyc_packet_free(&n);
            occ_remove(c, (size_t)(o - c->occ));
            ctx_gc(pl, c);
        }
        break;
    default:
        if (!o || o->state != PL_IN) {
            /* XEP-0045 §7.4: not an occupant */
            pl_refuse(pl, st, "not-acceptable", "its sender is not in the room");
            send = 0;
        }
        break;
    }
    if (send) {
        log_info(COMP, NULL, "<%s/> from %s to %s -> %.*s to %s", st->name, from, to, (int)p.method.len, p.method.ptr,
                 place.data);
        pl_send(pl, &p);
    }
    psyc_packet_free(&p);
    psyc_buf_free(&self);
    psyc_buf_free(&place);
    return 1;
}
