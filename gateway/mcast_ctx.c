/* mcast_ctx.c: context distribution among psycgates (see mcast_ctx.h):
 * the master's trees and history, the relays' forwarding, the receivers'
 * order, over psyc_out. The decisions are routing/mcast.h's. */
#include "gateway/mcast_ctx.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "gateway/psyc_circuit.h"
#include "gateway/psyc_out.h"
#include "routing/mcast.h"
#include "routing/routing.h"
#include "routing/strtab.h"

#define COMP "mcast"

#define MCX_POLL_MS 200      /* link checks and repeated resend requests */
/* A new route gets direct copies this long before it joins the tree:
 * they travel on the circuit that also carries the master's unicasts to
 * it (a place's join burst: echo, history, subject, PSYC.md §4.2), so the
 * burst and the first casts arrive in the order they were sent. */
#define MCX_YOUNG_MS 1000
#define MCX_ASK_AGAIN_MS 500 /* a resend request unanswered this long is repeated */
#define MCX_ROOT_MAX 300
#define MCX_MAX_CHILDREN 1024
/* Early packets a receiver holds per context (16 bytes each, for every
 * remote context it follows); beyond it they are asked for again. */
#define MCX_SEQ_WINDOW 128

static const char MCX_RELAY_VAR[] = "_context_relay";
static const char MCX_TREE_MC[] = "_notice_context_tree";
static const char MCX_RESEND_MC[] = "_request_context_resend";
static const char MCX_RESYNC_MC[] = "_notice_context_resync";

/* One peer link's counters and health (key: its root uniform). */
typedef struct mcx_link {
    char *root;
    uint64_t pkts, bytes;
    int up;   /* its psyc_out circuit was ready at the last poll */
    int gate; /* a psycgate (can relay) as far as we know */
    const void *circuit;  /* that circuit (with its opening time: a */
    uint64_t circuit_ms;  /* new one means the peer may have restarted) */
} mcx_link;

/* The counter from which a route receives a context's packets: resends
 * never reach back before it (what was sent while it was no route was
 * not for its members). */
typedef struct mcx_join {
    char *root;
    uint64_t at;
    uint64_t promote_ms; /* a young route: direct copies until then (0: settled) */
} mcx_join;

static const char *mcx_join_key(const void *j)
{
    return ((const mcx_join *)j)->root;
}

static void mcx_join_free(void *ud, void *item)
{
    (void)ud;
    mcx_join *j = item;
    free(j->root);
    free(j);
}

/* One context, as master (ours) or as receiver/relay (someone else's). */
typedef struct mcx_ctx {
    char *uniform;
    char type; /* '~' or '@' */
    int ours;
    uint64_t pkts, bytes; /* copies we sent for it, on all links */
    /* master */
    mc_tree *tree;
    strtab joins;             /* mcx_join per route: its first counter */
    uint64_t next;            /* the next counter we assign (from 1) */
    psyc_packet *hist;        /* ring: counted packets, hist_c[i] says which */
    uint64_t *hist_c;
    size_t hist_cap;          /* grows by doubling up to [multicast] history */
    /* receiver and relay */
    mc_seq seq;
    int seq_live;
    uint64_t highest;         /* highest counter seen */
    char parent[MCX_ROOT_MAX];/* the parent the master assigned ("": none yet) */
    char **children;          /* where we forward */
    size_t n_children;
    uint64_t asked_first, asked_ms;
} mcx_ctx;

struct mcast_ctx {
    gw *g;
    int enabled;
    unsigned fanout;
    size_t history;
    char self_root[MCX_ROOT_MAX];
    strtab ctxs, links;
    uv_timer_t timer;
    int timer_live;
    uv_signal_t sig;
    int sig_live;
    int stopped;
    psyc_buf scratch;
    mcast_deliver_fn deliver[2]; /* '~', '@' */
    void *deliver_ud[2];
    mcast_stats stats;
};

static const char *mcx_ctx_key(const void *c)
{
    return ((const mcx_ctx *)c)->uniform;
}

static const char *mcx_link_key(const void *l)
{
    return ((const mcx_link *)l)->root;
}

static int mcx_type_index(char type)
{
    return type == '~' ? 0 : type == '@' ? 1 : -1;
}

/* "psyc://host[:port]/" of a uniform, lower-case host. 0 or -1. */
static int mcx_root_of(psyc_str uniform, char *out, size_t size)
{
    psyc_uniform u;
    if (!uniform.ptr || psyc_uniform_parse(&u, uniform) != PSYC_UNI_OK || !u.host.len)
        return -1;
    int n = snprintf(out, size, "psyc://%.*s%s%.*s/", (int)u.host.len, u.host.ptr, u.port.len ? ":" : "",
                     (int)u.port.len, u.port.ptr);
    if (n < 0 || (size_t)n >= size)
        return -1;
    for (char *c = out + 7; *c && *c != ':' && *c != '/'; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return 0;
}

/* Same host (the port is not compared: one gateway per host). */
static int mcx_same_host(const char *root_a, const char *root_b)
{
    size_t la = strcspn(root_a + 7, ":/"), lb = strcspn(root_b + 7, ":/");
    return la == lb && strncasecmp(root_a + 7, root_b + 7, la) == 0;
}

/* ------------------------------------------------------------------ */
/* Links and counters                                                 */

static mcx_link *mcx_link_get(mcast_ctx *m, const char *root)
{
    mcx_link *l = strtab_get(&m->links, root);
    if (l)
        return l;
    l = calloc(1, sizeof *l);
    if (!l || !(l->root = strdup(root)) || strtab_put(&m->links, l) != 0) {
        if (l)
            free(l->root);
        free(l);
        return NULL;
    }
    return l;
}

/* The psyc_out queue of a link (read only: its circuit tells whether the
 * link is up), or NULL when psyc_out has none. */
static const psyc_peer *mcx_peer_of(const mcast_ctx *m, const char *root)
{
    psyc_uniform u;
    if (!m->g->psyc_out || psyc_uniform_parse(&u, psyc_str_c(root)) != PSYC_UNI_OK)
        return NULL;
    for (const psyc_peer *p = m->g->psyc_out->peers; p; p = p->next)
        if (strlen(p->host) == u.host.len && strncasecmp(p->host, u.host.ptr, u.host.len) == 0 &&
            (long)p->port == (u.port.len ? u.port_num : 0))
            return p;
    return NULL;
}

/* THE switch between "every route is psyced-like" and trees: 1 when the
 * route's server can relay (a psycgate). */
static int mcx_route_relays(const mcast_ctx *m, const char *root)
{
    char host[MCX_ROOT_MAX];
    snprintf(host, sizeof host, "%.*s", (int)strcspn(root + 7, ":/"), root + 7);
    return psyc_out_peer_acks(m->g->psyc_out, host) == 1;
}

/* Counts p (its PSYC 1.0 size) on the link to `root` and for ctx. */
static void mcx_count(mcast_ctx *m, mcx_ctx *ctx, const char *root, const psyc_packet *p)
{
    psyc_buf_reset(&m->scratch);
    size_t bytes = psyc_render(p, &m->scratch) == 0 ? m->scratch.len : 0;
    mcx_link *l = mcx_link_get(m, root);
    if (l) {
        l->pkts++;
        l->bytes += bytes;
    }
    if (ctx) {
        ctx->pkts++;
        ctx->bytes += bytes;
    }
}

/* Sends p toward `root` (via: by that root; else by its _target), counted. */
static void mcx_send(mcast_ctx *m, mcx_ctx *ctx, const char *root, const psyc_packet *p, int via)
{
    mcx_count(m, ctx, root, p);
    if (via)
        psyc_out_send_via(m->g->psyc_out, psyc_str_c(root), p);
    else
        psyc_out_send(m->g->psyc_out, p);
}

/* ------------------------------------------------------------------ */
/* Packets                                                            */

static int mcx_ours_var(psyc_str name)
{
    return psyc_str_eq_c(name, "_context") || psyc_str_eq_c(name, "_target") || psyc_str_eq_c(name, "_counter") ||
           psyc_str_eq_c(name, "_source") || psyc_str_eq_c(name, MCX_RELAY_VAR);
}

/* out = p with a new routing header: the (name, value) pairs in head
 * (NULL-terminated), then p's routing modifiers but ours (_context,
 * _target, _counter, _source, _context_relay, which 0.9 may have put
 * among the entity ones). 0 or -1. */
static int mcx_rebuild(psyc_packet *out, const psyc_packet *p, const char *const *head)
{
    psyc_packet_init(out);
    int rc = 0;
    for (size_t i = 0; !rc && head[i]; i += 2)
        rc = psyc_packet_routing_c(out, head[i], head[i + 1]);
    for (size_t i = 0; !rc && i < p->n_routing; i++)
        if (!mcx_ours_var(p->routing[i].name))
            rc = psyc_packet_add_routing(out, p->routing[i].oper, p->routing[i].name, p->routing[i].value);
    for (size_t i = 0; !rc && i < p->n_entity; i++)
        if (!psyc_str_eq_c(p->entity[i].name, MCX_RELAY_VAR))
            rc = psyc_packet_add_entity(out, p->entity[i].oper, p->entity[i].name, p->entity[i].value);
    if (!rc && p->method.ptr)
        rc = psyc_packet_set_method(out, p->method);
    if (!rc && (p->flags & PSYC_PKT_HAS_DATA))
        rc = psyc_packet_set_data(out, p->data);
    if (rc) {
        psyc_packet_free(out);
        psyc_packet_init(out);
        return -1;
    }
    return 0;
}

/* A decimal variable of p (entity, else routing). 1 and *c, or 0. */
static int mcx_get_number(const psyc_packet *p, const char *name, uint64_t *c)
{
    psyc_str v;
    if (!psyc_packet_get(p, name, &v) || !v.ptr || !v.len || v.len > 19)
        return 0;
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            return 0;
        n = n * 10 + (uint64_t)(v.ptr[i] - '0');
    }
    *c = n;
    return 1;
}

static int mcx_get_counter(const psyc_packet *p, uint64_t *c)
{
    return mcx_get_number(p, "_counter", c);
}

/* ------------------------------------------------------------------ */
/* Contexts                                                           */

static mcx_ctx *mcx_find(const mcast_ctx *m, const char *uniform)
{
    return strtab_get(&m->ctxs, uniform);
}

static void mcx_drop_held(void *ud, void *pkt)
{
    (void)ud;
    psyc_packet_free(pkt);
    free(pkt);
}

static void mcx_free_children(mcx_ctx *c)
{
    for (size_t i = 0; i < c->n_children; i++)
        free(c->children[i]);
    free(c->children);
    c->children = NULL;
    c->n_children = 0;
}

static void mcx_ctx_free(void *ud, void *item)
{
    (void)ud;
    mcx_ctx *c = item;
    mc_tree_free(c->tree);
    strtab_each(&c->joins, mcx_join_free, NULL);
    strtab_clear(&c->joins);
    for (size_t i = 0; c->hist && i < c->hist_cap; i++)
        psyc_packet_free(&c->hist[i]);
    free(c->hist);
    free(c->hist_c);
    if (c->seq_live)
        mc_seq_free(&c->seq, mcx_drop_held, NULL);
    mcx_free_children(c);
    free(c->uniform);
    free(c);
}

/* The context (created when absent). NULL: no such uniform, or OOM. */
static mcx_ctx *mcx_get(mcast_ctx *m, const char *uniform)
{
    mcx_ctx *c = mcx_find(m, uniform);
    if (c)
        return c;
    psyc_uniform u;
    if (psyc_uniform_parse(&u, psyc_str_c(uniform)) != PSYC_UNI_OK || mcx_type_index(u.entity_type) < 0)
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c || !(c->uniform = strdup(uniform))) {
        free(c);
        return NULL;
    }
    c->type = u.entity_type;
    c->ours = routing_psyc_is_local(psyc_str_c(uniform), m->g->host);
    c->next = 1;
    if (c->ours) {
        c->tree = mc_tree_new(m->fanout);
        c->joins = (strtab)STRTAB_INIT(mcx_join_key);
    }
    if ((c->ours && !c->tree) || strtab_put(&m->ctxs, c) != 0) {
        mcx_ctx_free(m, c);
        return NULL;
    }
    return c;
}

/* ------------------------------------------------------------------ */
/* Master: tree assignments                                           */

/* Tells `host` its parent and children for ctx (`_notice_context_tree`). */
static void mcx_notice_tree(mcast_ctx *m, mcx_ctx *ctx, const char *host)
{
    int found = 0;
    const char *parent = mc_tree_parent(ctx->tree, host, &found);
    const char *kids[MCX_MAX_CHILDREN];
    size_t n = mc_tree_is_relay(ctx->tree, host) ? mc_tree_children(ctx->tree, host, kids, MCX_MAX_CHILDREN) : 0;
    if (n > MCX_MAX_CHILDREN)
        n = MCX_MAX_CHILDREN;
    psyc_buf list;
    psyc_buf_init(&list);
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++)
        rc = psyc_list_append(&list, psyc_str_c(kids[i]));
    char next[24];
    snprintf(next, sizeof next, "%llu", (unsigned long long)ctx->next);
    psyc_packet p;
    psyc_packet_init(&p);
    if (!rc)
        rc = psyc_packet_routing_c(&p, "_context", ctx->uniform) || psyc_packet_routing_c(&p, "_target", host) ||
             psyc_packet_routing_c(&p, "_counter", next) ||
             psyc_packet_entity_c(&p, "_uniform_parent", parent ? parent : m->self_root) ||
             psyc_packet_add_entity(&p, ':', PSYC_STR_LIT("_list_children"),
                                    (psyc_str){list.data ? list.data : "", list.len}) ||
             psyc_packet_set_method(&p, psyc_str_c(MCX_TREE_MC));
    if (!rc) {
        m->stats.tree_notices++;
        log_debug(COMP, host, "%s: parent %s, %zu children, next counter %s", ctx->uniform,
                  parent ? parent : "(we, the master)", n, next);
        mcx_send(m, ctx, host, &p, 0);
    } else {
        log_warn(COMP, host, "%s: out of memory building a tree assignment", ctx->uniform);
    }
    psyc_packet_free(&p);
    psyc_buf_free(&list);
}

/* Announces every changed assignment (relays only: psyced gets none). */
static void mcx_announce(mcast_ctx *m, mcx_ctx *ctx)
{
    const char *const *hosts = NULL;
    size_t n = mc_tree_take_changes(ctx->tree, &hosts);
    for (size_t i = 0; i < n; i++)
        if (mc_tree_is_relay(ctx->tree, hosts[i]))
            mcx_notice_tree(m, ctx, hosts[i]);
}

/* ------------------------------------------------------------------ */
/* Receiver: order and delivery                                       */

typedef struct mcx_delivery {
    mcast_ctx *m;
    mcx_ctx *ctx;
    const char *peer;
} mcx_delivery;

static int mcx_deliver_now(mcast_ctx *m, mcx_ctx *ctx, const psyc_packet *p, const char *peer)
{
    int t = mcx_type_index(ctx->type);
    if (t < 0 || !m->deliver[t])
        return 0;
    m->stats.delivered++;
    return m->deliver[t](m->deliver_ud[t], p, ctx->uniform, peer);
}

static void mcx_on_ordered(void *ud, uint64_t counter, void *pkt)
{
    mcx_delivery *d = ud;
    (void)counter;
    mcx_deliver_now(d->m, d->ctx, pkt, d->peer);
    psyc_packet_free(pkt);
    free(pkt);
}

/* Asks the master for the counters we miss (the first unheld run below
 * `upto`), unless we asked for the same just now. */
static void mcx_ask(mcast_ctx *m, mcx_ctx *ctx, uint64_t upto, int force)
{
    uint64_t first = 0, n = mc_seq_missing(&ctx->seq, upto, &first);
    uint64_t now = uv_now(m->g->loop);
    if (!n || (!force && first == ctx->asked_first && now - ctx->asked_ms < MCX_ASK_AGAIN_MS))
        return;
    if (n > m->history)
        n = m->history;
    ctx->asked_first = first;
    ctx->asked_ms = now;
    char f[24], a[24];
    snprintf(f, sizeof f, "%llu", (unsigned long long)first);
    snprintf(a, sizeof a, "%llu", (unsigned long long)n);
    char root[MCX_ROOT_MAX];
    if (mcx_root_of(psyc_str_c(ctx->uniform), root, sizeof root) != 0)
        return;
    psyc_packet p;
    psyc_packet_init(&p);
    /* PSYC.md §1.2: `?` asks for a state resync; 0.9 cannot carry it (the
     * method says the same there). */
    const psyc_peer *peer = mcx_peer_of(m, root);
    if ((peer ? peer->syntax : m->g->psyc_out->syntax) == PSYC_SYNTAX_10)
        p.state_op = '?';
    if (psyc_packet_routing_c(&p, "_source", m->self_root) || psyc_packet_routing_c(&p, "_target", ctx->uniform) ||
        psyc_packet_routing_c(&p, "_counter", f) || psyc_packet_entity_c(&p, "_amount_resend", a) ||
        psyc_packet_set_method(&p, psyc_str_c(MCX_RESEND_MC))) {
        psyc_packet_free(&p);
        return;
    }
    m->stats.gaps++;
    log_info(COMP, ctx->uniform, "gap: asking the master for counters %s..%llu", f,
             (unsigned long long)(first + n - 1));
    mcx_send(m, ctx, root, &p, 0);
    psyc_packet_free(&p);
}

/* A numbered packet of ctx (p: as received). forward: it came down the
 * tree (not a resend), so our children get it too. */
static void mcx_data(mcast_ctx *m, mcx_ctx *ctx, const psyc_packet *p, uint64_t c, int forward, const char *peer)
{
    char cs[24];
    snprintf(cs, sizeof cs, "%llu", (unsigned long long)c);
    if (forward && ctx->n_children) {
        const char *head[] = {"_source", m->self_root, MCX_RELAY_VAR, ctx->uniform, "_counter", cs, NULL};
        psyc_packet fw;
        if (mcx_rebuild(&fw, p, head) == 0)
            for (size_t i = 0; i < ctx->n_children; i++) {
                m->stats.forwarded++;
                mcx_send(m, ctx, ctx->children[i], &fw, 1);
            }
        psyc_packet_free(&fw);
    }
    if (!ctx->seq_live) {
        if (mc_seq_init(&ctx->seq, c, MCX_SEQ_WINDOW) != 0)
            return;
        ctx->seq_live = 1;
    }
    if (c > ctx->highest)
        ctx->highest = c;
    psyc_packet *own = malloc(sizeof *own);
    const char *head[] = {"_context", ctx->uniform, NULL};
    if (!own || mcx_rebuild(own, p, head) != 0) {
        free(own);
        return;
    }
    mcx_delivery d = {m, ctx, peer};
    switch (mc_seq_offer(&ctx->seq, c, own, mcx_on_ordered, &d)) {
    case MC_SEQ_DELIVERED:
        break;
    case MC_SEQ_DUPLICATE:
        m->stats.duplicates++;
        log_debug(COMP, peer, "%s #%s: duplicate, dropped", ctx->uniform, cs);
        mcx_drop_held(NULL, own);
        break;
    case MC_SEQ_HELD:
        mcx_ask(m, ctx, c, 0);
        break;
    case MC_SEQ_TOO_EARLY:
        mcx_drop_held(NULL, own);
        mcx_ask(m, ctx, c + 1, 0);
        break;
    }
}

/* `_notice_context_tree` from the master: our parent and children. */
static void mcx_on_tree(mcast_ctx *m, mcx_ctx *ctx, const psyc_packet *p, const char *peer)
{
    psyc_str parent = PSYC_STR_NULL, kids = PSYC_STR_NULL;
    psyc_packet_get(p, "_uniform_parent", &parent);
    psyc_packet_get(p, "_list_children", &kids);
    char root[MCX_ROOT_MAX];
    if (mcx_root_of(parent, root, sizeof root) != 0)
        root[0] = '\0';
    snprintf(ctx->parent, sizeof ctx->parent, "%s", root);
    mcx_free_children(ctx);
    psyc_list_parser lp;
    psyc_list_elem e;
    psyc_list_rc rc;
    psyc_list_parser_init(&lp, kids);
    size_t cap = 0;
    while (kids.ptr && (rc = psyc_list_next(&lp, &e)) != PSYC_LIST_END && rc != PSYC_LIST_ERROR) {
        if (rc != PSYC_LIST_ELEM || mcx_root_of(e.value, root, sizeof root) != 0 || ctx->n_children >= MCX_MAX_CHILDREN)
            continue;
        if (ctx->n_children == cap) {
            size_t nc = cap ? 2 * cap : 8;
            char **v = realloc(ctx->children, nc * sizeof *v);
            if (!v)
                break;
            ctx->children = v;
            cap = nc;
        }
        if (!(ctx->children[ctx->n_children] = strdup(root)))
            break;
        ctx->n_children++;
    }
    uint64_t next = 0;
    int has_next = mcx_get_counter(p, &next);
    log_info(COMP, peer, "%s: tree assignment: parent %s, %zu children, master's next counter %llu", ctx->uniform,
             ctx->parent[0] ? ctx->parent : "-", ctx->n_children, (unsigned long long)next);
    if (!has_next)
        return;
    if (!ctx->seq_live) {
        if (mc_seq_init(&ctx->seq, next, MCX_SEQ_WINDOW) == 0)
            ctx->seq_live = 1;
    } else if (next > ctx->seq.next) {
        /* Re-parented: what was sent before this went the old way. */
        if (next - 1 > ctx->highest)
            ctx->highest = next - 1;
        mcx_ask(m, ctx, next, 1);
    }
}

/* `_notice_context_resync`: the master no longer has the counters before
 * `_counter`. */
static void mcx_on_resync(mcast_ctx *m, mcx_ctx *ctx, const psyc_packet *p, const char *peer)
{
    uint64_t upto;
    if (!ctx->seq_live || !mcx_get_counter(p, &upto))
        return;
    mcx_delivery d = {m, ctx, peer};
    uint64_t lost = mc_seq_skip(&ctx->seq, upto, mcx_on_ordered, &d);
    m->stats.lost += lost;
    if (lost)
        log_info(COMP, peer, "%s: skipped %llu counters up to %llu: before we joined, or beyond the master's history",
                 ctx->uniform, (unsigned long long)lost, (unsigned long long)upto);
}

/* ------------------------------------------------------------------ */
/* Master: history and resends                                        */

static psyc_packet *mcx_hist(mcx_ctx *ctx, uint64_t c)
{
    if (!ctx->hist_cap)
        return NULL;
    size_t i = (size_t)(c % ctx->hist_cap);
    return ctx->hist_c[i] == c && c ? &ctx->hist[i] : NULL;
}

/* Keeps packet c (counted) in the history: the ring starts small and
 * doubles up to [multicast] history, so it always holds the last
 * min(c, history) counters and a quiet context costs little. */
static void mcx_hist_put(mcast_ctx *m, mcx_ctx *ctx, uint64_t c, const psyc_packet *p)
{
    if (c > ctx->hist_cap && ctx->hist_cap < m->history) {
        size_t cap = ctx->hist_cap ? 2 * ctx->hist_cap : 16;
        if (cap > m->history)
            cap = m->history;
        psyc_packet *h = calloc(cap, sizeof *h);
        uint64_t *hc = calloc(cap, sizeof *hc);
        if (h && hc) {
            for (size_t i = 0; i < cap; i++)
                psyc_packet_init(&h[i]);
            for (size_t i = 0; i < ctx->hist_cap; i++)
                if (ctx->hist_c[i]) { /* moves the views and the arena */
                    h[ctx->hist_c[i] % cap] = ctx->hist[i];
                    hc[ctx->hist_c[i] % cap] = ctx->hist_c[i];
                }
            free(ctx->hist);
            free(ctx->hist_c);
            ctx->hist = h;
            ctx->hist_c = hc;
            ctx->hist_cap = cap;
        } else {
            free(h);
            free(hc);
        }
    }
    if (!ctx->hist_cap)
        return;
    size_t i = (size_t)(c % ctx->hist_cap);
    psyc_packet_free(&ctx->hist[i]);
    ctx->hist_c[i] = psyc_packet_copy(&ctx->hist[i], p) == 0 ? c : 0;
}

/* The route of ctx on the host of `root` (the port is not compared: a
 * `_source` names our peer without it) into out. 1 found, 0 not. */
static int mcx_route_by_host(const mcx_ctx *ctx, const char *root, char *out, size_t size)
{
    if (mc_tree_has(ctx->tree, root))
        return 1;
    size_t n = mc_tree_size(ctx->tree);
    const char **all = malloc((n ? n : 1) * sizeof *all);
    int found = 0;
    if (all) {
        mc_tree_routes(ctx->tree, all, n);
        for (size_t i = 0; !found && i < n; i++)
            if (mcx_same_host(all[i], root)) {
                snprintf(out, size, "%s", all[i]);
                found = 1;
            }
    }
    free(all);
    return found;
}

static void mcx_on_resend(mcast_ctx *m, mcx_ctx *ctx, const psyc_packet *p, const char *peer)
{
    const psyc_modifier *src = psyc_packet_find_routing(p, "_source");
    char root[MCX_ROOT_MAX];
    uint64_t first, n = 1;
    if (!src || mcx_root_of(src->value, root, sizeof root) != 0 || !mcx_get_counter(p, &first))
        return;
    if (!mcx_route_by_host(ctx, root, root, sizeof root)) {
        /* Only members' servers see a context's packets. */
        m->stats.refused++;
        log_info(COMP, peer, "%s: resend request from %s refused: not a route of it", ctx->uniform, root);
        return;
    }
    mcx_get_number(p, "_amount_resend", &n);
    if (n > m->history)
        n = m->history;
    uint64_t end = first + n > ctx->next ? ctx->next : first + n;
    uint64_t oldest = ctx->next > m->history ? ctx->next - m->history : 1;
    const mcx_join *j = strtab_get(&ctx->joins, root);
    if (j && j->at > oldest)
        oldest = j->at; /* before it joined: not for it */
    char cs[24];
    if (first < oldest) {
        psyc_packet rs;
        psyc_packet_init(&rs);
        snprintf(cs, sizeof cs, "%llu", (unsigned long long)oldest);
        if (!psyc_packet_routing_c(&rs, "_context", ctx->uniform) && !psyc_packet_routing_c(&rs, "_target", root) &&
            !psyc_packet_routing_c(&rs, "_counter", cs) && !psyc_packet_set_method(&rs, psyc_str_c(MCX_RESYNC_MC)))
            mcx_send(m, ctx, root, &rs, 0);
        psyc_packet_free(&rs);
        first = oldest;
    }
    size_t sent = 0;
    for (uint64_t c = first; c < end; c++) {
        psyc_packet *h = mcx_hist(ctx, c);
        if (!h)
            continue;
        snprintf(cs, sizeof cs, "%llu", (unsigned long long)c);
        const char *head[] = {"_context", ctx->uniform, "_target", root, "_counter", cs, NULL};
        psyc_packet out;
        if (mcx_rebuild(&out, h, head) == 0) {
            mcx_send(m, ctx, root, &out, 0);
            sent++;
        }
        psyc_packet_free(&out);
    }
    m->stats.resent += sent;
    log_info(COMP, peer, "%s: resent %zu packets to %s on its request", ctx->uniform, sent, root);
}

/* ------------------------------------------------------------------ */
/* Repair: links that went down or came up                           */

/* Moves `root` in or out of the tree of every context of ours that has
 * it as a route, and announces the new assignments. */
static void mcx_retree(mcast_ctx *m, const char *root, int relay)
{
    size_t moved = 0;
    for (size_t i = 0; i < m->ctxs.n_slots; i++) {
        mcx_ctx *c = m->ctxs.slot[i];
        if (!c || !c->ours || !mc_tree_has(c->tree, root) || mc_tree_is_relay(c->tree, root) == relay)
            continue;
        mc_tree_remove(c->tree, root);
        if (mc_tree_add(c->tree, root, relay) < 0)
            log_error(COMP, root, "%s: out of memory: the route is dropped", c->uniform);
        mcx_announce(m, c);
        if (!relay) /* it forwards to nobody now (it learns when it is back) */
            mcx_notice_tree(m, c, root);
        moved++;
    }
    if (moved && !relay) {
        m->stats.repairs += moved;
        log_warn(COMP, root, "link lost: routed around it in %zu contexts (it gets direct copies, queued)", moved);
    } else if (moved) {
        log_info(COMP, root, "psycgate reachable: relays again in %zu contexts", moved);
    }
}

/* The link to `root` came back on a new circuit between two polls: the
 * peer may have restarted and forgotten its assignments; tell it again. */
static void mcx_reannounce(mcast_ctx *m, const char *root)
{
    size_t n = 0;
    for (size_t i = 0; i < m->ctxs.n_slots; i++) {
        mcx_ctx *c = m->ctxs.slot[i];
        if (c && c->ours && mc_tree_is_relay(c->tree, root)) {
            mcx_notice_tree(m, c, root);
            n++;
        }
    }
    if (n)
        log_info(COMP, root, "new circuit: its tree assignments sent again (%zu contexts)", n);
}

static void mcx_poll_link(void *ud, void *item)
{
    mcast_ctx *m = ud;
    mcx_link *l = item;
    const psyc_peer *p = mcx_peer_of(m, l->root);
    int up = p && p->circuit && p->state == PSYC_PEER_READY;
    int gate = up && mcx_route_relays(m, l->root);
    int renewed = up && l->up && (l->circuit != p->circuit || l->circuit_ms != p->circuit->opened_ms);
    if (up) {
        l->circuit = p->circuit;
        l->circuit_ms = p->circuit->opened_ms;
    }
    if (renewed && gate && l->gate)
        mcx_reannounce(m, l->root);
    if (l->up && !up) {
        l->up = 0;
        if (l->gate)
            mcx_retree(m, l->root, 0);
    } else if (up && (!l->up || gate != l->gate)) {
        l->up = 1;
        l->gate = gate;
        if (gate)
            mcx_retree(m, l->root, 1);
    }
}

/* Receivers with a gap that stayed: ask again. */
static void mcx_poll_gaps(mcast_ctx *m)
{
    for (size_t i = 0; i < m->ctxs.n_slots; i++) {
        mcx_ctx *c = m->ctxs.slot[i];
        if (c && !c->ours && c->seq_live && c->highest >= c->seq.next)
            mcx_ask(m, c, c->highest + 1, 0);
    }
}

typedef struct mcx_young {
    mcast_ctx *m;
    mcx_ctx *c;
    uint64_t now;
    int moved;
} mcx_young;

static void mcx_poll_young_join(void *ud, void *item)
{
    mcx_young *y = ud;
    mcx_join *j = item;
    if (!j->promote_ms || y->now < j->promote_ms)
        return;
    j->promote_ms = 0;
    mcx_link *l = mcx_link_get(y->m, j->root);
    if (!l || !l->gate || !l->up || !mc_tree_has(y->c->tree, j->root) || mc_tree_is_relay(y->c->tree, j->root))
        return; /* the link poll moves it when it comes up */
    mc_tree_remove(y->c->tree, j->root);
    if (mc_tree_add(y->c->tree, j->root, 1) < 0)
        log_error(COMP, j->root, "%s: out of memory: the route is dropped", y->c->uniform);
    y->moved++;
}

/* Young routes that settled join the tree (MCX_YOUNG_MS). */
static void mcx_poll_young(mcast_ctx *m)
{
    uint64_t now = uv_now(m->g->loop);
    for (size_t i = 0; i < m->ctxs.n_slots; i++) {
        mcx_ctx *c = m->ctxs.slot[i];
        if (!c || !c->ours)
            continue;
        mcx_young y = {m, c, now, 0};
        strtab_each(&c->joins, mcx_poll_young_join, &y);
        if (y.moved)
            mcx_announce(m, c);
    }
}

static void mcx_on_timer(uv_timer_t *t)
{
    mcast_ctx *m = t->data;
    strtab_each(&m->links, mcx_poll_link, m);
    mcx_poll_young(m);
    mcx_poll_gaps(m);
}

static void mcx_on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    mcast_ctx_log_metrics(s->data);
}

/* ------------------------------------------------------------------ */
/* API                                                                */

mcast_ctx *mcast_ctx_new(gw *g)
{
    mcast_ctx *m = calloc(1, sizeof *m);
    if (!m) {
        log_error(COMP, NULL, "out of memory");
        return NULL;
    }
    m->g = g;
    m->enabled = cfg_get_bool(g->cfg, "multicast", "enabled");
    m->fanout = (unsigned)cfg_get_uint(g->cfg, "multicast", "fanout");
    m->history = (size_t)cfg_get_uint(g->cfg, "multicast", "history");
    if (!m->fanout)
        m->fanout = MC_DEFAULT_FANOUT;
    if (m->history < 16)
        m->history = 16;
    snprintf(m->self_root, sizeof m->self_root, "psyc://%s/", g->host);
    m->ctxs = (strtab)STRTAB_INIT(mcx_ctx_key);
    m->links = (strtab)STRTAB_INIT(mcx_link_key);
    psyc_buf_init(&m->scratch);
    if (uv_timer_init(g->loop, &m->timer) == 0) {
        m->timer.data = m;
        m->timer_live = 1;
        uv_timer_start(&m->timer, mcx_on_timer, MCX_POLL_MS, MCX_POLL_MS);
        uv_unref((uv_handle_t *)&m->timer);
    }
    if (uv_signal_init(g->loop, &m->sig) == 0) {
        m->sig.data = m;
        m->sig_live = 1;
        uv_signal_start(&m->sig, mcx_on_signal, SIGUSR1);
        uv_unref((uv_handle_t *)&m->sig);
    }
    log_info(COMP, NULL, "context multicast %s (fan-out %u, history %zu packets per context)",
             m->enabled ? "by trees among psycgates" : "off: per-recipient fan-out", m->fanout, m->history);
    return m;
}

void mcast_ctx_stop(mcast_ctx *m)
{
    if (!m || m->stopped)
        return;
    m->stopped = 1;
    mcast_ctx_log_metrics(m);
    if (m->timer_live)
        uv_close((uv_handle_t *)&m->timer, NULL);
    if (m->sig_live)
        uv_close((uv_handle_t *)&m->sig, NULL);
    m->timer_live = m->sig_live = 0;
}

static void mcx_link_free(void *ud, void *item)
{
    (void)ud;
    mcx_link *l = item;
    free(l->root);
    free(l);
}

void mcast_ctx_free(mcast_ctx *m)
{
    if (!m)
        return;
    strtab_each(&m->ctxs, mcx_ctx_free, m);
    strtab_clear(&m->ctxs);
    strtab_each(&m->links, mcx_link_free, m);
    strtab_clear(&m->links);
    psyc_buf_free(&m->scratch);
    free(m);
}

int mcast_ctx_enabled(const mcast_ctx *m)
{
    return m && m->enabled;
}

void mcast_ctx_set_deliver(mcast_ctx *m, char type, mcast_deliver_fn fn, void *ud)
{
    int t = mcx_type_index(type);
    if (m && t >= 0) {
        m->deliver[t] = fn;
        m->deliver_ud[t] = ud;
    }
}

/* Our context by uniform (created), or NULL after logging. */
static mcx_ctx *mcx_master(mcast_ctx *m, const char *context)
{
    mcx_ctx *c = mcx_get(m, context);
    if (!c || !c->ours) {
        log_warn(COMP, NULL, "%s: %s", context, c ? "not a context of ours" : "no such context (or out of memory)");
        return NULL;
    }
    return c;
}

int mcast_ctx_route_add(mcast_ctx *m, const char *context, const char *route)
{
    char root[MCX_ROOT_MAX];
    mcx_ctx *c = mcx_master(m, context);
    if (!c || mcx_root_of(psyc_str_c(route), root, sizeof root) != 0)
        return -1;
    if (mc_tree_has(c->tree, root) || mcx_same_host(root, m->self_root))
        return 0;
    mcx_link *l = mcx_link_get(m, root);
    int gate = m->enabled && l && l->gate && mcx_route_relays(m, root);
    int relay = 0; /* young: see MCX_YOUNG_MS */
    mcx_join *j = calloc(1, sizeof *j);
    if (!j || !(j->root = strdup(root)) || strtab_put(&c->joins, j) != 0 || mc_tree_add(c->tree, root, relay) < 0) {
        if (j && j->root && strtab_get(&c->joins, root) == j)
            strtab_del(&c->joins, root);
        if (j)
            mcx_join_free(NULL, j);
        log_error(COMP, root, "%s: out of memory adding the route", context);
        return -1;
    }
    j->at = c->next;
    j->promote_ms = gate ? uv_now(m->g->loop) + MCX_YOUNG_MS : 0;
    log_debug(COMP, root, "%s: route added (%s), %zu routes", context, gate ? "direct, then relay" : "direct",
              mc_tree_size(c->tree));
    return 0;
}

int mcast_ctx_route_remove(mcast_ctx *m, const char *context, const char *route)
{
    char root[MCX_ROOT_MAX];
    mcx_ctx *c = mcx_find(m, context);
    if (!c || !c->ours || mcx_root_of(psyc_str_c(route), root, sizeof root) != 0)
        return c && !c->ours ? -1 : 0;
    mcx_join *j = strtab_del(&c->joins, root);
    if (j)
        mcx_join_free(NULL, j);
    if (mc_tree_remove(c->tree, root))
        log_debug(COMP, root, "%s: route removed, %zu routes", context, mc_tree_size(c->tree));
    return 0;
}

typedef struct mcx_root {
    char root[MCX_ROOT_MAX];
} mcx_root;

static const char *mcx_root_key(const void *r)
{
    return ((const mcx_root *)r)->root;
}

int mcast_ctx_route_set(mcast_ctx *m, const char *context, const char *const *routes, size_t n)
{
    mcx_ctx *c = mcx_master(m, context);
    if (!c)
        return -1;
    /* The new set by root, then removals first (a route that stays keeps
     * its place in the tree), then additions: O(routes). */
    size_t have = mc_tree_size(c->tree);
    mcx_root *want = calloc(n ? n : 1, sizeof *want);
    const char **old = malloc((have ? have : 1) * sizeof *old);
    char **drop = calloc(have ? have : 1, sizeof *drop);
    strtab set = STRTAB_INIT(mcx_root_key);
    int rc = want && old && drop ? 0 : -1;
    for (size_t j = 0; !rc && j < n; j++)
        if (mcx_root_of(psyc_str_c(routes[j]), want[j].root, sizeof want[j].root) == 0 &&
            !strtab_get(&set, want[j].root))
            rc = strtab_put(&set, &want[j]);
    size_t n_drop = 0;
    if (!rc)
        mc_tree_routes(c->tree, old, have);
    for (size_t i = 0; !rc && i < have; i++)
        if (!strtab_get(&set, old[i]) && (drop[n_drop] = strdup(old[i])))
            n_drop++;
    for (size_t i = 0; i < n_drop; i++) {
        mcast_ctx_route_remove(m, context, drop[i]);
        free(drop[i]);
    }
    for (size_t j = 0; !rc && j < n; j++)
        rc |= mcast_ctx_route_add(m, context, routes[j]);
    strtab_clear(&set);
    free(want);
    free(drop);
    free(old);
    return rc ? -1 : 0;
}

size_t mcast_ctx_route_count(const mcast_ctx *m, const char *context)
{
    const mcx_ctx *c = mcx_find(m, context);
    return c && c->tree ? mc_tree_size(c->tree) : 0;
}

int mcast_ctx_send(mcast_ctx *m, const char *context, const psyc_packet *p)
{
    mcx_ctx *c = mcx_master(m, context);
    if (!c)
        return -1;
    size_t n_routes = mc_tree_size(c->tree);
    if (!n_routes)
        return 0;
    const char **kids = malloc(n_routes * sizeof *kids);
    psyc_packet plain, counted;
    const char *plain_head[] = {"_context", context, NULL};
    if (!kids || mcx_rebuild(&plain, p, plain_head) != 0) {
        free(kids);
        log_error(COMP, NULL, "%s: out of memory sending %.*s", context, (int)p->method.len, p->method.ptr);
        return -1;
    }
    psyc_packet_init(&counted);
    char cs[24] = "";
    if (m->enabled) {
        mcx_announce(m, c);
        uint64_t n = c->next++;
        snprintf(cs, sizeof cs, "%llu", (unsigned long long)n);
        const char *head[] = {"_context", context, "_counter", cs, NULL};
        if (mcx_rebuild(&counted, p, head) == 0)
            mcx_hist_put(m, c, n, &counted);
    }
    /* The first hop: every direct route and the tree's top k. */
    size_t nk = mc_tree_children(c->tree, NULL, kids, n_routes);
    size_t tree = 0, direct = 0;
    for (size_t i = 0; i < nk && i < n_routes; i++) {
        mcx_link *l = mcx_link_get(m, kids[i]);
        int numbered = m->enabled && counted.method.ptr && (mc_tree_is_relay(c->tree, kids[i]) || (l && l->gate));
        mcx_send(m, c, kids[i], numbered ? &counted : &plain, 1);
        if (mc_tree_is_relay(c->tree, kids[i]))
            tree++;
        else
            direct++;
    }
    m->stats.sent_tree += tree;
    m->stats.sent_direct += direct;
    log_info(COMP, NULL, "%s #%s: %.*s to %zu routes: %zu copies down the tree, %zu direct", context,
             cs[0] ? cs : "-", (int)p->method.len, p->method.ptr, n_routes, tree, direct);
    psyc_packet_free(&plain);
    psyc_packet_free(&counted);
    free(kids);
    return 0;
}

/* A root uniform without a path: psyc://host[:port]/ (our own?). */
static int mcx_is_our_root(const mcast_ctx *m, psyc_str uniform)
{
    psyc_uniform u;
    return psyc_uniform_parse(&u, uniform) == PSYC_UNI_OK && !u.entity_type && !u.resource.len &&
           routing_psyc_is_local(uniform, m->g->host);
}

static mcx_ctx *mcx_remote(mcast_ctx *m, psyc_str uniform)
{
    char ctx[PSYC_UNIFORM_MAX + 1];
    if (uniform.len > PSYC_UNIFORM_MAX)
        return NULL;
    snprintf(ctx, sizeof ctx, "%.*s", (int)uniform.len, uniform.ptr);
    mcx_ctx *c = mcx_get(m, ctx);
    return c && !c->ours ? c : NULL;
}

int mcast_ctx_receive(mcast_ctx *m, const psyc_packet *p, const char *peer)
{
    if (!m || !p->method.ptr)
        return 0;
    const psyc_modifier *ctxm = psyc_packet_find_routing(p, "_context");
    const psyc_modifier *target = psyc_packet_find_routing(p, "_target");
    const psyc_modifier *src = psyc_packet_find_routing(p, "_source");
    psyc_str relayed = PSYC_STR_NULL;
    uint64_t c = 0;
    /* Our counters come from psycgates only: a psyced place numbers its
     * casts with its own _counter, which is the place's business
     * (gateway/place_local.c), not an order we can repair. */
    int counted = mcx_get_counter(p, &c) && m->g->delivering &&
                  psyc_link_delivery_acks(&m->g->delivering->link);

    /* A receiver asks us, the master, for what it missed. */
    if (psyc_str_eq_c(p->method, MCX_RESEND_MC)) {
        if (!target || !src || !routing_psyc_is_local(target->value, m->g->host))
            return 0;
        char ctx[PSYC_UNIFORM_MAX + 1];
        snprintf(ctx, sizeof ctx, "%.*s", target->value.len > PSYC_UNIFORM_MAX ? 0 : (int)target->value.len,
                 target->value.ptr);
        mcx_ctx *mc = mcx_find(m, ctx);
        if (mc && mc->ours)
            mcx_on_resend(m, mc, p, peer);
        return 1;
    }

    /* Down the tree from a relay: accepted from the assigned parent only. */
    if (src && !ctxm && psyc_packet_get(p, MCX_RELAY_VAR, &relayed) && relayed.ptr) {
        mcx_ctx *rc = mcx_remote(m, relayed);
        char root[MCX_ROOT_MAX];
        if (!rc || !counted || mcx_root_of(src->value, root, sizeof root) != 0) {
            log_info(COMP, peer, "relayed %.*s for %.*s dropped: malformed or a context of ours", (int)p->method.len,
                     p->method.ptr, (int)relayed.len, relayed.ptr);
            return 1;
        }
        if (!rc->parent[0] || !mcx_same_host(rc->parent, root)) {
            m->stats.refused++;
            log_info(COMP, peer, "%s #%llu from %s refused: the master assigned us %s", rc->uniform,
                     (unsigned long long)c, root, rc->parent[0] ? rc->parent : "no parent yet");
            return 1;
        }
        mcx_data(m, rc, p, c, 1, peer);
        return 1;
    }
    if (!ctxm || routing_psyc_is_local(ctxm->value, m->g->host))
        return 0;

    /* From the master, for our root: assignments, resends, resyncs. */
    if (target) {
        if (!mcx_is_our_root(m, target->value))
            return 0; /* unicast within a context to one of ours (psyced's history) */
        mcx_ctx *rc = mcx_remote(m, ctxm->value);
        if (!rc)
            return 1;
        if (psyc_str_eq_c(p->method, MCX_TREE_MC))
            mcx_on_tree(m, rc, p, peer);
        else if (psyc_str_eq_c(p->method, MCX_RESYNC_MC))
            mcx_on_resync(m, rc, p, peer);
        else if (counted)
            mcx_data(m, rc, p, c, 0, peer);
        return 1;
    }

    /* A multicast from the master itself. */
    psyc_uniform u;
    if (psyc_uniform_parse(&u, ctxm->value) != PSYC_UNI_OK || mcx_type_index(u.entity_type) < 0 ||
        !m->deliver[mcx_type_index(u.entity_type)])
        return 0;
    if (!counted) {
        /* psyced (or a psycgate with multicast off): no order to keep. */
        char ctx[PSYC_UNIFORM_MAX + 1];
        snprintf(ctx, sizeof ctx, "%.*s", ctxm->value.len > PSYC_UNIFORM_MAX ? 0 : (int)ctxm->value.len,
                 ctxm->value.ptr);
        mcx_ctx tmp = {.uniform = ctx, .type = u.entity_type};
        return mcx_deliver_now(m, &tmp, p, peer);
    }
    mcx_ctx *rc = mcx_remote(m, ctxm->value);
    if (rc)
        mcx_data(m, rc, p, c, 1, peer);
    return 1;
}

const mcast_stats *mcast_ctx_stats(const mcast_ctx *m)
{
    return &m->stats;
}

static void mcx_log_link(void *ud, void *item)
{
    (void)ud;
    const mcx_link *l = item;
    log_info(COMP, l->root, "mcast: link %s packets %llu bytes %llu", l->root, (unsigned long long)l->pkts,
             (unsigned long long)l->bytes);
}

static void mcx_log_ctx(void *ud, void *item)
{
    (void)ud;
    const mcx_ctx *c = item;
    log_info(COMP, NULL, "mcast: context %s packets %llu bytes %llu routes %zu next %llu delivered-upto %llu",
             c->uniform, (unsigned long long)c->pkts, (unsigned long long)c->bytes,
             c->tree ? mc_tree_size(c->tree) : 0, (unsigned long long)c->next,
             (unsigned long long)(c->seq_live ? c->seq.next : 0));
}

void mcast_ctx_log_metrics(mcast_ctx *m)
{
    const mcast_stats *s = &m->stats;
    log_info(COMP, NULL,
             "mcast: totals sent_tree %llu sent_direct %llu forwarded %llu delivered %llu duplicates %llu gaps %llu "
             "resent %llu lost %llu refused %llu repairs %llu tree_notices %llu",
             (unsigned long long)s->sent_tree, (unsigned long long)s->sent_direct, (unsigned long long)s->forwarded,
             (unsigned long long)s->delivered, (unsigned long long)s->duplicates, (unsigned long long)s->gaps,
             (unsigned long long)s->resent, (unsigned long long)s->lost, (unsigned long long)s->refused,
             (unsigned long long)s->repairs, (unsigned long long)s->tree_notices);
    strtab_each(&m->links, mcx_log_link, NULL);
    strtab_each(&m->ctxs, mcx_log_ctx, NULL);
}

void mcast_ctx_count_unicast(mcast_ctx *m, const char *context, const psyc_packet *p)
{
    const psyc_modifier *t = psyc_packet_find_routing(p, "_target");
    char root[MCX_ROOT_MAX];
    if (m && t && mcx_root_of(t->value, root, sizeof root) == 0)
        mcx_count(m, context ? mcx_find(m, context) : NULL, root, p);
}

/* ------------------------------------------------------------------ */
/* Metrics (gateway/metrics.h): totals, per link, per context          */

typedef struct mcx_metric {
    metrics_out *o;
    int which;
} mcx_metric;

static void mcx_metric_link(void *ud, void *item)
{
    mcx_metric *mm = ud;
    const mcx_link *l = item;
    char lab[300];
    metrics_label(lab, sizeof lab, "link", l->root);
    if (mm->which == 0)
        metrics_counter(mm->o, "mcast_link_packets_total", "Context packets sent on a link (to a peer root).", lab,
                        l->pkts);
    else
        metrics_counter(mm->o, "mcast_link_bytes_total", "Bytes of those packets (PSYC 1.0 size).", lab, l->bytes);
}

static void mcx_metric_ctx(void *ud, void *item)
{
    mcx_metric *mm = ud;
    const mcx_ctx *c = item;
    char lab[PSYC_UNIFORM_MAX + 32];
    metrics_label(lab, sizeof lab, "context", c->uniform);
    if (mm->which == 0)
        metrics_counter(mm->o, "mcast_context_packets_total", "Packets this gateway sent for a context.", lab, c->pkts);
    else if (mm->which == 1)
        metrics_counter(mm->o, "mcast_context_bytes_total", "Bytes of those packets (PSYC 1.0 size).", lab, c->bytes);
    else
        metrics_gauge(mm->o, "mcast_context_routes", "Routes (servers with members) of a context we master.", lab,
                      c->tree ? (int64_t)mc_tree_size(c->tree) : 0);
}

void mcast_ctx_metrics(void *ud, metrics_out *o)
{
    mcast_ctx *m = ud;
    const mcast_stats *s = &m->stats;
    static const struct {
        const char *name, *help;
        size_t off;
    } t[] = {
        {"mcast_sent_tree_total", "Master: copies to its tree children.", offsetof(mcast_stats, sent_tree)},
        {"mcast_sent_direct_total", "Master: copies to routes that cannot relay (psyced).",
         offsetof(mcast_stats, sent_direct)},
        {"mcast_forwarded_total", "Relay: copies to our children.", offsetof(mcast_stats, forwarded)},
        {"mcast_delivered_total", "Receiver: packets fanned out locally, in order.", offsetof(mcast_stats, delivered)},
        {"mcast_duplicates_total", "Receiver: packets dropped as already delivered.",
         offsetof(mcast_stats, duplicates)},
        {"mcast_gaps_total", "Receiver: resend requests for missing counters.", offsetof(mcast_stats, gaps)},
        {"mcast_resent_total", "Master: packets resent on request.", offsetof(mcast_stats, resent)},
        {"mcast_lost_total", "Receiver: counters skipped (before joining, or beyond the history).",
         offsetof(mcast_stats, lost)},
        {"mcast_refused_total", "Packets from neither the master nor the assigned parent.",
         offsetof(mcast_stats, refused)},
        {"mcast_repairs_total", "Master: relays routed around.", offsetof(mcast_stats, repairs)},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        metrics_counter(o, t[i].name, t[i].help, NULL, *(const uint64_t *)((const char *)s + t[i].off));
    for (int w = 0; w < 2; w++) {
        mcx_metric mm = {o, w};
        strtab_each(&m->links, mcx_metric_link, &mm);
    }
    for (int w = 0; w < 3; w++) {
        mcx_metric mm = {o, w};
        strtab_each(&m->ctxs, mcx_metric_ctx, &mm);
    }
}
