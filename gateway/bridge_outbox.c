/* bridge_outbox.c: stanzas waiting for a component link (see the header). */
#include "gateway/bridge_outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/bridge.h"
#include "gateway/component_link.h"
#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/s2s_face.h"
#include "gateway/store.h"
#include "routing/routing.h"
#include "xmpp/jid.h"

#define COMP "bridge"
#define OUTBOX_PREFIX "xmpp-component:"
#define OUTBOX_S2S_PREFIX "xmpp-s2s:"
/* Per link: beyond it a stanza is bounced at once (the store is not a
 * place for unbounded growth while the server is away). */
#define OUTBOX_MAX 10000
/* How often a waiting link is looked at: the outbox learns of a new link
 * by looking (component_link has no event for it). */
#define OUTBOX_TICK_MS 200

typedef struct outbox_item {
    struct outbox_item *next;
    xml_node *st;
    int64_t store_id;   /* 0: not in the store */
    int64_t since_ms;   /* wall clock, as kept in the store */
} outbox_item;

typedef struct outbox_queue {
    struct outbox_queue *next;
    char domain[256];
    outbox_item *head, *tail;
    size_t n;
} outbox_queue;

/* A stanza handed to the S2S face, kept in the store until the face is
 * done with its pair of domains. */
typedef struct outbox_s2s {
    struct outbox_s2s *next;
    int64_t store_id;
    char from[256], to[256];
} outbox_s2s;

struct bridge_outbox {
    bridge *b;
    outbox_queue *queues;
    outbox_s2s *s2s, *s2s_tail;
    size_t n_s2s;
    uv_timer_t tick;
    int tick_live, tick_armed;
    uint64_t give_up_ms;
    size_t waiting;
};

static int64_t outbox_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void outbox_item_free(outbox_item *it)
{
    xml_node_free(it->st);
    free(it);
}

bridge_outbox *bridge_outbox_new(bridge *b)
{
    bridge_outbox *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->b = b;
    o->give_up_ms = cfg_get_uint(b->g->cfg, "component", "give_up") * 1000u;
    if (uv_timer_init(b->g->loop, &o->tick) != 0) {
        free(o);
        return NULL;
    }
    o->tick.data = o;
    o->tick_live = 1;
    return o;
}

static void outbox_drop_all(bridge_outbox *o)
{
    while (o->s2s) {
        outbox_s2s *k = o->s2s;
        o->s2s = k->next;
        free(k);
    }
    o->s2s_tail = NULL;
    o->n_s2s = 0;
    while (o->queues) {
        outbox_queue *q = o->queues;
        o->queues = q->next;
        while (q->head) {
            outbox_item *it = q->head;
            q->head = it->next;
            outbox_item_free(it);
        }
        free(q);
    }
    o->waiting = 0;
}

void bridge_outbox_stop(bridge_outbox *o)
{
    if (!o)
        return;
    for (outbox_queue *q = o->queues; q; q = q->next)
        if (q->n)
            log_info(COMP, NULL, "component %s: %zu stanzas wait in the store for the next start", q->domain,
                     q->n);
    if (o->n_s2s)
        log_info(COMP, NULL, "S2S: %zu stanzas not yet written stay in the store for the next start", o->n_s2s);
    outbox_drop_all(o);
    if (o->tick_live) {
        uv_close((uv_handle_t *)&o->tick, NULL);
        o->tick_live = 0;
    }
}

void bridge_outbox_free(bridge_outbox *o)
{
    if (!o)
        return;
    outbox_drop_all(o);
    free(o);
}

size_t bridge_outbox_waiting(const bridge_outbox *o)
{
    return o ? o->waiting : 0;
}

static outbox_queue *outbox_queue_for(bridge_outbox *o, const char *domain)
{
    for (outbox_queue *q = o->queues; q; q = q->next)
        if (strcmp(q->domain, domain) == 0)
            return q;
    outbox_queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    snprintf(q->domain, sizeof q->domain, "%s", domain);
    q->next = o->queues;
    o->queues = q;
    return q;
}

static void outbox_unstore(bridge_outbox *o, outbox_item *it)
{
    store *s = o->b->g->store;
    if (it->store_id && s && store_queue_remove(s, it->store_id) == STORE_ERR)
        log_warn(COMP, NULL, "store: cannot remove stanza %lld: %s", (long long)it->store_id, store_error(s));
    it->store_id = 0;
}

static void outbox_arm(bridge_outbox *o);

/* Writes st to the store's queue `dest`; its row, or 0 when it could not
 * be kept (logged: it then waits in memory only). */
static int64_t outbox_store(bridge_outbox *o, const char *dest, const xml_node *st, int64_t since_ms)
{
    store *s = o->b->g->store;
    int64_t id = 0;
    if (!s)
        return 0;
    psyc_buf bytes;
    psyc_buf_init(&bytes);
    const char *from = xml_attr_get(st, "from");
    if (xml_serialize(&bytes, st, NULL) != 0 ||
        store_queue_push(s, dest, from ? from : "", 0, bytes.data, bytes.len, since_ms, &id) != STORE_OK) {
        log_warn(COMP, NULL, "store: cannot keep a stanza for %s (%s); it waits in memory only", dest,
                 store_error(s));
        id = 0;
    }
    psyc_buf_free(&bytes);
    return id;
}

/* Appends; store_id -1: write it to the store now. */
static int outbox_keep(bridge_outbox *o, const char *domain, xml_node *st, int64_t store_id, int64_t since_ms)
{
    outbox_queue *q = outbox_queue_for(o, domain);
    outbox_item *it = q && q->n < OUTBOX_MAX ? calloc(1, sizeof *it) : NULL;
    if (!it)
        return -1;
    it->st = st;
    it->since_ms = since_ms;
    it->store_id = store_id > 0 ? store_id : 0;
    if (store_id < 0) {
        char dest[300];
        snprintf(dest, sizeof dest, OUTBOX_PREFIX "%s", domain);
        it->store_id = outbox_store(o, dest, st, since_ms);
    }
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->n++;
    o->waiting++;
    outbox_arm(o);
    return 0;
}

/* Returns a stanza to its sender through the bridge (an error stanza
 * becomes a PSYC error like any other); errors are never answered. */
static void outbox_bounce(bridge_outbox *o, const char *domain, xml_node *st, const char *why)
{
    xml_node *err = routing_error_reply(st, "recipient-unavailable");
    log_info(COMP, NULL, "component %s: <%s/> from %s to %s %s: %s", domain, st->name,
             xml_attr_get(st, "from") ? xml_attr_get(st, "from") : "-",
             xml_attr_get(st, "to") ? xml_attr_get(st, "to") : "-",
             err ? "returned as <recipient-unavailable/>" : "dropped (an error or result is not answered)", why);
    xml_node_free(st);
    if (err)
        bridge_from_xmpp(o->b, err, domain);
}

/* Sends what waits on q while its link is up; gives up on what waited too
 * long. */
static void outbox_run_queue(bridge_outbox *o, outbox_queue *q, int64_t now)
{
    component_link *l = NULL;
    for (size_t i = 0; i < o->b->g->n_components; i++)
        if (strcmp(o->b->g->components[i].domain, q->domain) == 0)
            l = &o->b->g->components[i];
    if (l && l->linked && q->head)
        log_info(COMP, l->peer, "component %s linked again: sending %zu waiting stanzas", q->domain, q->n);
    while (q->head) {
        outbox_item *it = q->head;
        int due = l && l->linked;
        if (!due && now - it->since_ms < (int64_t)o->give_up_ms)
            break;
        q->head = it->next;
        if (!q->head)
            q->tail = NULL;
        q->n--;
        o->waiting--;
        outbox_unstore(o, it);
        xml_node *st = it->st;
        it->st = NULL;
        outbox_item_free(it);
        if (due) {
            component_link_send(l, st);
        } else {
            char why[160];
            snprintf(why, sizeof why, "the component link was down for [component] give_up = %llu s",
                     (unsigned long long)(o->give_up_ms / 1000u));
            outbox_bounce(o, q->domain, st, why);
        }
    }
}

/* Rows of S2S stanzas whose pair the face is done with leave the store
 * (written to an authenticated stream, or bounced by the face). */
static void outbox_run_s2s(bridge_outbox *o)
{
    store *s = o->b->g->store;
    for (outbox_s2s **pp = &o->s2s; *pp;) {
        outbox_s2s *k = *pp;
        if (s2s_face_pair_busy(o->b->g->s2s, k->from, k->to)) {
            pp = &k->next;
            continue;
        }
        if (s && store_queue_remove(s, k->store_id) == STORE_ERR)
            log_warn(COMP, NULL, "store: cannot remove S2S stanza %lld: %s", (long long)k->store_id,
                     store_error(s));
        *pp = k->next;
        if (o->s2s_tail == k)
            o->s2s_tail = NULL;
        free(k);
        o->n_s2s--;
    }
    if (!o->s2s_tail)
        for (outbox_s2s *k = o->s2s; k; k = k->next)
            o->s2s_tail = k;
}

static void outbox_on_tick(uv_timer_t *t)
{
    bridge_outbox *o = t->data;
    o->tick_armed = 0;
    int64_t now = outbox_wall_ms();
    for (outbox_queue *q = o->queues; q; q = q->next)
        outbox_run_queue(o, q, now);
    outbox_run_s2s(o);
    outbox_arm(o);
}

static void outbox_arm(bridge_outbox *o)
{
    if ((o->waiting || o->n_s2s) && o->tick_live && !o->tick_armed &&
        uv_timer_start(&o->tick, outbox_on_tick, OUTBOX_TICK_MS, 0) == 0)
        o->tick_armed = 1;
}

int bridge_outbox_send(bridge_outbox *o, component_link *l, xml_node *st)
{
    outbox_queue *q = NULL;
    for (outbox_queue *x = o ? o->queues : NULL; x; x = x->next)
        if (strcmp(x->domain, l->domain) == 0)
            q = x;
    if (!o || (l->linked && (!q || !q->head)))
        return component_link_send(l, st);
    if (!o->tick_live) {
        /* Shutting down: the link goes too. */
        return component_link_send(l, st);
    }
    if (outbox_keep(o, l->domain, st, -1, outbox_wall_ms()) != 0) {
        outbox_bounce(o, l->domain, st, "too many stanzas wait for the component link");
        return -1;
    }
    if (o->waiting == 1 || o->waiting % 100 == 0)
        log_info(COMP, l->peer, "component %s not linked: %zu stanzas wait for it", l->domain, o->waiting);
    return 0;
}

/* ------------------------------------------------------------------ */
/* S2S: kept until written                                             */

/* Tracks row store_id for the pair of st (-1: writes st to the store now). */
static void outbox_track_s2s(bridge_outbox *o, const xml_node *st, int64_t store_id)
{
    store *s = o->b->g->store;
    outbox_s2s *k = calloc(1, sizeof *k);
    if (!k || !s || jid_domain_cstr(xml_attr_get(st, "from"), k->from, sizeof k->from) != 0 ||
        jid_domain_cstr(xml_attr_get(st, "to"), k->to, sizeof k->to) != 0) {
        free(k); /* the face refuses it (and says why) */
        return;
    }
    k->store_id = store_id;
    if (store_id < 0) {
        char dest[600];
        snprintf(dest, sizeof dest, OUTBOX_S2S_PREFIX "%s %s", k->from, k->to);
        if (!(k->store_id = outbox_store(o, dest, st, outbox_wall_ms()))) {
            free(k);
            return;
        }
    }
    if (o->s2s_tail)
        o->s2s_tail->next = k;
    else
        o->s2s = k;
    o->s2s_tail = k;
    o->n_s2s++;
    outbox_arm(o);
}

int bridge_outbox_send_s2s(bridge_outbox *o, xml_node *st)
{
    if (o && o->tick_live)
        outbox_track_s2s(o, st, -1);
    return s2s_face_send(o ? o->b->g->s2s : NULL, st);
}

/* ------------------------------------------------------------------ */
/* Resuming                                                           */

static void outbox_take_first(void *ud, xml_node *n)
{
    xml_node **first = ud;
    if (!*first)
        *first = n;
    else
        xml_node_free(n);
}

typedef struct outbox_resuming {
    bridge_outbox *o;
    int s2s;      /* the queues walked: S2S or component */
    size_t total;
} outbox_resuming;

static void outbox_resume_one(void *ud, const store_item *it)
{
    outbox_resuming *r = ud;
    bridge_outbox *o = r->o;
    xml_node *st = NULL;
    int ok = xml_parse_fragment(it->data, it->len, outbox_take_first, &st) == 0 && st;
    if (ok && r->s2s) {
        outbox_track_s2s(o, st, it->id);
        s2s_face_send(o->b->g->s2s, st);
    } else if (ok) {
        ok = outbox_keep(o, it->dest + strlen(OUTBOX_PREFIX), st, it->id, it->created_ms) == 0;
    }
    if (!ok) {
        log_warn(COMP, NULL, "store: stanza %lld for %s cannot be resumed; removed", (long long)it->id, it->dest);
        xml_node_free(st);
        store_queue_remove(o->b->g->store, it->id);
        return;
    }
    r->total++;
}

size_t bridge_outbox_resume(bridge_outbox *o)
{
    store *s = o ? o->b->g->store : NULL;
    if (!s)
        return 0;
    outbox_resuming r = {.o = o};
    store_queue_each(s, OUTBOX_PREFIX, outbox_resume_one, &r);
    r.s2s = 1;
    store_queue_each(s, OUTBOX_S2S_PREFIX, outbox_resume_one, &r);
    if (r.total)
        log_info(COMP, NULL, "resuming %zu stanzas for component links and S2S kept in the store", r.total);
    return r.total;
}
