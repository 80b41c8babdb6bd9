/* place_host.c: the places we host (see place_host.h). */
#include "gateway/place_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/mcast_ctx.h"
#include "gateway/place_local.h"
#include "gateway/place_muc.h"
#include "gateway/psyc_out.h"
#include "gateway/store.h"
#include "routing/place.h"
#include "routing/routing.h"

#define COMP "place"
#define PH_STORE_NS "place"

struct place_host {
    gw *g;
    size_t history;
    uint64_t netsplit_ms;       /* [places] netsplit */
    uv_timer_t timer;           /* looks for lost routes */
    int timer_live;
    place_room **v;
    size_t n, cap;
    routing_entity_item *items; /* place_host_items */
    char **item_jids;
    size_t n_items;
};

static place_room *ph_find(const place_host *h, const char *uni)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->v[i]->uni, uni) == 0)
            return h->v[i];
    return NULL;
}

static place_room *ph_add(place_host *h, const char *uni)
{
    if (place_grow(&h->v, &h->cap, h->n, sizeof *h->v))
        return NULL;
    place_room *pl = place_new(uni, h->history);
    if (pl)
        h->v[h->n++] = pl;
    return pl;
}

static void ph_load_one(void *ud, const char *key, const void *value, size_t len)
{
    place_host *h = ud;
    place_room *pl = ph_find(h, key) ? NULL : ph_add(h, key);
    if (pl && place_state_load(pl, value, len) != 0)
        log_warn(COMP, NULL, "place %s: its stored state does not parse; it starts empty", key);
}

#define PH_TICK_MS 1000

static void ph_on_timer(uv_timer_t *t);

place_host *place_host_new(gw *g)
{
    place_host *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->g = g;
    h->history = (size_t)cfg_get_uint(g->cfg, "places", "history");
    h->netsplit_ms = cfg_get_uint(g->cfg, "places", "netsplit") * 1000u;
    if (g->store)
        store_kv_each(g->store, PH_STORE_NS, ph_load_one, h);
    if (uv_timer_init(g->loop, &h->timer) == 0) {
        h->timer.data = h;
        h->timer_live = 1;
        uv_timer_start(&h->timer, ph_on_timer, PH_TICK_MS, PH_TICK_MS);
    }
    log_info(COMP, NULL, "hosting %zu places from the store; history %zu messages", h->n, h->history);
    return h;
}

void place_host_stop(place_host *h)
{
    if (h && h->timer_live) {
        uv_close((uv_handle_t *)&h->timer, NULL);
        h->timer_live = 0;
    }
}

static void ph_items_free(place_host *h)
{
    for (size_t i = 0; i < h->n_items; i++)
        free(h->item_jids[i]);
    free(h->item_jids);
    free(h->items);
    h->item_jids = NULL;
    h->items = NULL;
    h->n_items = 0;
}

void place_host_free(place_host *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        place_free(h->v[i]);
    free(h->v);
    ph_items_free(h);
    free(h);
}

const routing_entity_item *place_host_items(place_host *h, const char *domain, int plain, size_t *n)
{
    ph_items_free(h);
    *n = 0;
    h->items = calloc(h->n ? h->n : 1, sizeof *h->items);
    h->item_jids = calloc(h->n ? h->n : 1, sizeof *h->item_jids);
    if (!h->items || !h->item_jids)
        return NULL;
    for (size_t i = 0; i < h->n; i++) {
        size_t len = strlen(h->v[i]->name) + strlen(domain) + 3;
        char *jid = malloc(len);
        if (!jid)
            break;
        snprintf(jid, len, "%s%s@%s", plain ? "" : "*", h->v[i]->name, domain);
        h->item_jids[h->n_items] = jid;
        h->items[h->n_items] = (routing_entity_item){jid, h->v[i]->name};
        h->n_items++;
    }
    *n = h->n_items;
    return h->items;
}

/* Sends one cast of a context to its routes (the servers with members,
 * PSYC.md §4.2), our own host by the local fan-out: through the context's
 * distribution tree among psycgates (gateway/mcast_ctx.h: psyced routes
 * get one direct copy, psycgates a tree of fan-out k), or, without
 * gateway/mcast_ctx, one copy per route. The one place where a cast
 * leaves. */
void place_host_cast(gw *g, const char *ctx, char *const *routes, size_t n, size_t members, const psyc_packet *p)
{
    size_t remote = 0;
    int local = 0;
    /* Trees for contexts on our own host; an XMPP MUC room we serve under
     * its own service host (gateway/place_muc.c) goes one copy per route. */
    int tree = g->mcast && routing_psyc_is_local(psyc_str_c(ctx), g->host);
    const char **rr = tree ? calloc(n ? n : 1, sizeof *rr) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (routing_psyc_is_local(psyc_str_c(routes[i]), g->host)) {
            local = 1;
            continue;
        }
        if (rr)
            rr[remote] = routes[i];
        else
            psyc_out_send_via(g->psyc_out, psyc_str_c(routes[i]), p);
        remote++;
    }
    if (rr) {
        /* The routes as they are at this cast (a member who just left
         * still gets its leave notice), then the cast down the tree. */
        if (mcast_ctx_route_set(g->mcast, ctx, rr, remote) != 0 || mcast_ctx_send(g->mcast, ctx, p) != 0)
            log_error(COMP, NULL, "%s: the cast %.*s could not be sent down the tree", ctx, (int)p->method.len,
                      p->method.ptr);
        free(rr);
    } else if (tree && n) {
        log_error(COMP, NULL, "%s: out of memory: the cast %.*s is lost", ctx, (int)p->method.len, p->method.ptr);
    }
    const psyc_modifier *c = psyc_packet_find_routing(p, "_counter");
    log_info(COMP, NULL, "%s: cast %.*s #%.*s -> %zu routes%s (%zu members)", ctx, (int)p->method.len, p->method.ptr,
             c ? (int)c->value.len : 1, c ? c->value.ptr : "-", remote, local ? " and our own occupants" : "",
             members);
    if (local && g->place_local)
        place_local_from_psyc(g->place_local, p, NULL);
}

/* [multicast] enabled = no: the per-recipient baseline of `make bench`
 * (what an XMPP MUC service does over S2S): one copy of the cast per
 * member, with its _target; our own occupants get the cast once. */
static void place_cast_per_member(place_host *h, const place_room *pl, const place_out *o)
{
    gw *g = h->g;
    int local = 0;
    size_t sent = 0;
    psyc_str relay = PSYC_STR_NULL;
    int leave = psyc_inherits(o->p.method, PSYC_STR_LIT("_notice_place_leave"));
    if (leave)
        psyc_packet_get(&o->p, "_source_relay", &relay);
    for (size_t i = 0; i <= pl->n; i++) {
        /* the members, and a leaver (no member any more) for its notice */
        char uni[PSYC_UNIFORM_MAX + 1];
        if (i < pl->n) {
            snprintf(uni, sizeof uni, "%s", pl->m[i].uni);
        } else {
            if (!leave || !relay.ptr)
                break;
            snprintf(uni, sizeof uni, "%.*s", relay.len > PSYC_UNIFORM_MAX ? 0 : (int)relay.len, relay.ptr);
            if (place_find(pl, uni))
                break; /* still a member: it had its copy */
        }
        if (routing_psyc_is_local(psyc_str_c(uni), g->host)) {
            local = 1;
            continue;
        }
        psyc_packet c;
        psyc_packet_init(&c);
        if (psyc_packet_copy(&c, &o->p) == 0 && psyc_packet_routing_c(&c, "_target", uni) == 0) {
            mcast_ctx_count_unicast(g->mcast, pl->uni, &c);
            psyc_out_send(g->psyc_out, &c);
            sent++;
        }
        psyc_packet_free(&c);
    }
    log_info(COMP, NULL, "%s: cast %.*s -> %zu copies, one per member ([multicast] enabled = no)%s", pl->uni,
             (int)o->p.method.len, o->p.method.ptr, sent, local ? " and our own occupants" : "");
    if (local && g->place_local)
        place_local_from_psyc(g->place_local, &o->p, NULL);
}

static void place_cast(place_host *h, const place_room *pl, const place_out *o)
{
    if (h->g->mcast && !mcast_ctx_enabled(h->g->mcast)) {
        place_cast_per_member(h, pl, o);
        return;
    }
    place_host_cast(h->g, pl->uni, o->routes, o->n_routes, pl->n, &o->p);
}

void place_host_unicast(gw *g, const psyc_packet *p)
{
    const psyc_modifier *t = psyc_packet_find_routing(p, "_target");
    if (t && routing_psyc_is_local(t->value, g->host)) {
        if (!g->place_local || !place_local_from_psyc(g->place_local, p, NULL))
            log_info(COMP, NULL, "%.*s to %.*s: no such occupant here; dropped", (int)p->method.len, p->method.ptr,
                     (int)t->value.len, t->value.ptr);
        return;
    }
    mcast_ctx_count_unicast(g->mcast, NULL, p); /* per-link counters (the bench) */
    psyc_out_send(g->psyc_out, p);
}

static void ph_save(place_host *h, place_room *pl)
{
    if (!pl->dirty || !h->g->store)
        return;
    psyc_buf b;
    psyc_buf_init(&b);
    if (place_state_save(pl, &b) != 0 || store_kv_set(h->g->store, PH_STORE_NS, pl->uni, b.data, b.len) != STORE_OK)
        log_warn(COMP, NULL, "%s: cannot keep its owner, topic and bans in the store", pl->uni);
    else
        pl->dirty = 0;
    psyc_buf_free(&b);
}

int place_host_from_psyc(place_host *h, const psyc_packet *p, const char *peer)
{
    if (h && h->g->place_muc && place_muc_from_psyc(h->g->place_muc, p, peer))
        return 1; /* an XMPP MUC room as a place */
    const psyc_modifier *t = psyc_packet_find_routing(p, "_target");
    psyc_uniform u;
    if (!h || !t || !p->method.ptr || psyc_packet_find_routing(p, "_context") ||
        !routing_psyc_is_local(t->value, h->g->host) || psyc_uniform_parse(&u, t->value) != PSYC_UNI_OK ||
        u.entity_type != '@' || !u.nick.len || u.channel.len)
        return 0;
    psyc_buf nb;
    psyc_buf_init(&nb);
    if (psyc_uniform_normalize(t->value, &nb) != 0 || psyc_buf_putc(&nb, '\0') != 0) {
        psyc_buf_free(&nb);
        return 0;
    }
    place_room *pl = ph_find(h, nb.data);
    int enter = psyc_inherits(p->method, PSYC_STR_LIT("_request_enter")) ||
                psyc_inherits(p->method, PSYC_STR_LIT("_request_context_enter")) ||
                psyc_inherits(p->method, PSYC_STR_LIT("_notice_place_enter"));
    if (!pl && enter) {
        pl = ph_add(h, nb.data);
        if (pl)
            log_info(COMP, peer, "%s: created by its first enter", nb.data);
    }
    const psyc_modifier *s = psyc_packet_find_routing(p, "_source");
    psyc_str src = s ? s->value : PSYC_STR_LIT("-");
    if (!pl) {
        log_info(COMP, peer, "%.*s from %.*s to %s: no such place (none entered it yet)", (int)p->method.len,
                 p->method.ptr, (int)src.len, src.ptr, nb.data);
        psyc_buf_free(&nb);
        return 0; /* routing answers _error_unknown_name_user */
    }
    psyc_buf_free(&nb);
    place_outs outs = {0};
    int rc = place_handle(pl, p, (int64_t)time(NULL), &outs);
    log_info(COMP, peer, "%.*s from %.*s to %s -> %zu packets%s", (int)p->method.len, p->method.ptr, (int)src.len,
             src.ptr, pl->uni, outs.n, rc < 0 ? " (out of memory)" : rc == 0 ? " (not a place request; dropped)" : "");
    for (size_t i = 0; i < outs.n; i++) {
        if (outs.v[i].cast)
            place_cast(h, pl, &outs.v[i]);
        else
            place_host_unicast(h->g, &outs.v[i].p);
    }
    place_outs_free(&outs);
    ph_save(h, pl);
    return 1;
}

/* ------------------------------------------------------------------ */
/* Netsplits (PSYC.md §4.2): a route whose packets have waited for a
 * circuit longer than [places] netsplit is lost; its members leave with
 * _notice_place_leave_netburp. (An idle route without a circuit is not
 * lost: nothing waits for it.) */

/* The peer psyc_out keeps for route "psyc://host[:port]/", or NULL. */
static const psyc_peer *ph_peer(const place_host *h, const char *route)
{
    psyc_uniform u;
    if (psyc_uniform_parse(&u, psyc_str_c(route)) != PSYC_UNI_OK)
        return NULL;
    for (const psyc_peer *p = h->g->psyc_out->peers; p; p = p->next)
        if (strlen(p->host) == u.host.len && strncasecmp(p->host, u.host.ptr, u.host.len) == 0 &&
            (p->port == u.port_num || (!u.port_num && p->port == 4404) || (!p->port && u.port_num == 4404)))
            return p;
    return NULL;
}

/* The peer of a remote route whose packets have waited for a circuit
 * longer than [places] netsplit, or NULL. */
static const psyc_peer *ph_lost(const place_host *h, const char *route, uint64_t now)
{
    const psyc_peer *p = routing_psyc_is_local(psyc_str_c(route), h->g->host) ? NULL : ph_peer(h, route);
    return p && p->state != PSYC_PEER_READY && p->head && now - p->head->queued_ms >= h->netsplit_ms ? p : NULL;
}

const char *place_host_route_lost(const place_host *h, const char *route)
{
    const psyc_peer *p = h && h->g->psyc_out && h->netsplit_ms ? ph_lost(h, route, uv_now(h->g->loop)) : NULL;
    return !p ? NULL : p->last_error[0] ? p->last_error : "no circuit";
}

static void ph_on_timer(uv_timer_t *t)
{
    place_host *h = t->data;
    uint64_t now = uv_now(h->g->loop);
    if (!h->g->psyc_out || !h->netsplit_ms)
        return;
    if (h->g->place_muc)
        place_muc_tick(h->g->place_muc);
    for (size_t i = 0; i < h->n; i++) {
        place_room *pl = h->v[i];
        for (size_t r = 0; r < pl->n_routes;) {
            char route[PSYC_UNIFORM_MAX + 1];
            snprintf(route, sizeof route, "%s", pl->routes[r].route);
            const psyc_peer *p = ph_lost(h, route, now);
            if (!p) {
                r++;
                continue;
            }
            place_outs outs = {0};
            size_t gone = place_route_lost(pl, route, &outs);
            log_info(COMP, route, "%s: %s unreachable for %llu s (%s): %zu members leave (netburp)", pl->uni, route,
                     (unsigned long long)((now - p->head->queued_ms) / 1000u),
                     p->last_error[0] ? p->last_error : "no circuit", gone);
            for (size_t k = 0; k < outs.n; k++)
                place_cast(h, pl, &outs.v[k]);
            place_outs_free(&outs);
            r = 0; /* the routes changed */
        }
    }
}
