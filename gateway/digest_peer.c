/* digest_peer.c: membership digests with peer psycgates (see digest_peer.h). */
#include "gateway/digest_peer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "gateway/bridge.h"
#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/psyc_out.h"
#include "gateway/store.h"
#include "routing/digest.h"
#include "routing/routing.h"

#define COMP "digest"
#define DP_PEERS_NS "digest-peers" /* key: a host known to be a psycgate */
#define DP_REQUEST "_request_context_digest"
#define DP_LIST_REQUEST "_request_context_digest_list"
#define DP_LIST_NOTICE "_notice_context_digest_list"

struct digest_peer {
    gw *g;
    uv_timer_t timer;
    int timer_live;
    uint64_t interval_ms;
};

static void dp_on_timer(uv_timer_t *t)
{
    digest_peer_run(t->data);
}

digest_peer *digest_peer_new(gw *g)
{
    digest_peer *d = calloc(1, sizeof *d);
    if (!d) {
        log_error(COMP, NULL, "out of memory");
        return NULL;
    }
    d->g = g;
    d->interval_ms = cfg_get_uint(g->cfg, "multicast", "digest_interval") * 1000u;
    if (d->interval_ms && g->store && uv_timer_init(g->loop, &d->timer) == 0) {
        d->timer.data = d;
        d->timer_live = 1;
        uv_timer_start(&d->timer, dp_on_timer, d->interval_ms, d->interval_ms);
        log_info(COMP, NULL, "membership digests with peer psycgates every %llu s",
                 (unsigned long long)(d->interval_ms / 1000u));
    }
    return d;
}

void digest_peer_stop(digest_peer *d)
{
    if (d && d->timer_live) {
        uv_close((uv_handle_t *)&d->timer, NULL);
        d->timer_live = 0;
    }
}

void digest_peer_free(digest_peer *d)
{
    free(d);
}


/* ---- our side of the relations with one host ---------------------- */

/* A JID as a uniform (NUL-terminated in out); 0 or -1. */
static int dp_uniform(digest_peer *d, const char *jid, psyc_buf *out)
{
    psyc_buf_reset(out);
    return addr_jid_to_uniform(&d->g->bridge->map, jid, out, NULL) == ADDR_OK && psyc_buf_putc(out, '\0') == 0 ? 0
                                                                                                             : -1;
}

/* 1 when `uniform` lives on `host`. */
static int dp_on_host(const char *uniform, const char *host)
{
    psyc_uniform u;
    return psyc_uniform_parse(&u, psyc_str_c(uniform)) == PSYC_UNI_OK && u.host.len == strlen(host) &&
           strncasecmp(u.host.ptr, host, u.host.len) == 0;
}

/* An indexed remote: its JID, its uniform and that uniform's host. */
typedef struct dp_remote {
    char *jid, *uni;
    char host[256];
} dp_remote;

typedef struct dp_remotes {
    digest_peer *d;
    dp_remote *v;
    size_t n, cap;
    psyc_buf uni;
} dp_remotes;

static void dp_remote_one(void *ud, const char *jid)
{
    dp_remotes *r = ud;
    psyc_uniform u;
    if (dp_uniform(r->d, jid, &r->uni) != 0 || psyc_uniform_parse(&u, psyc_str_c(r->uni.data)) != PSYC_UNI_OK ||
        !u.host.len || u.host.len >= sizeof r->v->host)
        return;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        dp_remote *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return; /* out of memory: that one is left out this round */
        r->v = v;
        r->cap = cap;
    }
    dp_remote *e = &r->v[r->n];
    snprintf(e->host, sizeof e->host, "%.*s", (int)u.host.len, u.host.ptr);
    e->jid = strdup(jid);
    e->uni = strdup(r->uni.data);
    if (!e->jid || !e->uni) {
        free(e->jid);
        free(e->uni);
        return;
    }
    r->n++;
}

static int dp_by_host(const void *a, const void *b)
{
    return strcasecmp(((const dp_remote *)a)->host, ((const dp_remote *)b)->host);
}

/* Every remote with a stored relation, grouped by host (sorted). */
static void dp_remotes_load(digest_peer *d, dp_remotes *r)
{
    memset(r, 0, sizeof *r);
    r->d = d;
    psyc_buf_init(&r->uni);
    store_sub_remotes(d->g->store, dp_remote_one, r);
    psyc_buf_free(&r->uni);
    if (r->n > 1)
        qsort(r->v, r->n, sizeof *r->v, dp_by_host);
}

static void dp_remotes_free(dp_remotes *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].jid);
        free(r->v[i].uni);
    }
    free(r->v);
}

typedef struct dp_rows {
    digest_peer *d;
    digest_set *set;
    const char *remote; /* its uniform */
    psyc_buf local;
} dp_rows;

static void dp_row(void *ud, const char *local, unsigned state)
{
    dp_rows *r = ud;
    if (dp_uniform(r->d, local, &r->local) == 0)
        digest_set_add(r->set, r->local.data, r->remote, state);
}

/* The relations of the remotes v[0..n) (all on one host) into out. */
static void dp_rows_of(digest_peer *d, const dp_remote *v, size_t n, digest_set *out)
{
    dp_rows r = {d, out, NULL, {NULL, 0, 0}};
    psyc_buf_init(&r.local);
    for (size_t i = 0; i < n; i++) {
        r.remote = v[i].uni;
        store_sub_each_remote(d->g->store, v[i].jid, DIGEST_BITS, dp_row, &r);
    }
    psyc_buf_free(&r.local);
}

/* Our relations with the people of `host`. */
static void dp_collect(digest_peer *d, const char *host, digest_set *out)
{
    dp_remotes r;
    dp_remotes_load(d, &r);
    for (size_t i = 0; i < r.n; i++)
        if (strcasecmp(r.v[i].host, host) == 0)
            dp_rows_of(d, &r.v[i], 1, out);
    dp_remotes_free(&r);
}

/* ---- packets -------------------------------------------------------- */

static void dp_send(digest_peer *d, const char *host, const char *method, const digest_set *set)
{
    char src[300], dst[300], digest[DIGEST_HEX_SIZE], amount[32];
    snprintf(src, sizeof src, "psyc://%s/", d->g->host);
    snprintf(dst, sizeof dst, "psyc://%s/", host);
    snprintf(amount, sizeof amount, "%zu", set->n);
    psyc_packet p;
    psyc_packet_init(&p);
    psyc_buf body;
    psyc_buf_init(&body);
    int list = strcmp(method, DP_REQUEST) != 0;
    int bad = psyc_packet_routing_c(&p, "_source", src) || psyc_packet_routing_c(&p, "_target", dst) ||
              psyc_packet_entity_c(&p, "_amount_relations", amount) ||
              psyc_packet_set_method(&p, psyc_str_c(method));
    if (!bad && !list)
        bad = digest_of(set, digest) || psyc_packet_entity_c(&p, "_digest_relations", digest);
    if (!bad && list)
        bad = digest_render(set, &body) || psyc_packet_set_data(&p, (psyc_str){body.data ? body.data : "", body.len});
    if (bad)
        log_warn(COMP, dst, "out of memory: no %s to %s", method, dst);
    else {
        log_debug(COMP, dst, "%s to %s (%zu relations)", method, dst, set->n);
        psyc_out_send(d->g->psyc_out, &p);
    }
    psyc_buf_free(&body);
    psyc_packet_free(&p);
}

static int dp_known(digest_peer *d, const char *host)
{
    void *v = NULL;
    size_t len;
    int rc = store_kv_get(d->g->store, DP_PEERS_NS, host, &v, &len);
    free(v);
    return rc == STORE_OK;
}

void digest_peer_run(digest_peer *d)
{
    if (!d || !d->g->store || !d->g->bridge || d->g->stopping)
        return;
    dp_remotes r;
    dp_remotes_load(d, &r);
    size_t asked = 0;
    for (size_t i = 0, j; i < r.n; i = j) {
        for (j = i + 1; j < r.n && dp_by_host(&r.v[i], &r.v[j]) == 0; j++)
            ;
        const char *h = r.v[i].host;
        if (routing_psyc_is_local(psyc_str_c(r.v[i].uni), d->g->host))
            continue;
        /* Only psycgates know the method; psyced would answer an error. */
        if (psyc_out_peer_acks(d->g->psyc_out, h) == 1 && !dp_known(d, h))
            store_kv_set(d->g->store, DP_PEERS_NS, h, "1", 1);
        if (!dp_known(d, h))
            continue;
        digest_set mine;
        digest_set_init(&mine);
        dp_rows_of(d, &r.v[i], j - i, &mine);
        dp_send(d, h, DP_REQUEST, &mine);
        digest_set_free(&mine);
        asked++;
    }
    if (asked)
        log_debug(COMP, NULL, "digest round: asked %zu peer psycgates", asked);
    dp_remotes_free(&r);
}

/* A uniform as a JID (NUL-terminated in out); 0 or -1. */
static int dp_jid(digest_peer *d, const char *uniform, psyc_buf *out)
{
    psyc_buf_reset(out);
    return addr_uniform_to_jid(&d->g->bridge->map, uniform, NULL, out) == ADDR_OK && psyc_buf_putc(out, '\0') == 0
               ? 0
               : -1;
}

static void dp_count(digest_peer *d, const char *name, const char *host, int64_t n)
{
    char key[300];
    store_counter_add(d->g->store, name, n);
    snprintf(key, sizeof key, "%s:%s", name, host);
    store_counter_add(d->g->store, key, n);
}

/* Repairs our side from the peer's list (already checked). */
static void dp_repair(digest_peer *d, const char *host, const char *peer_uni, digest_set *mine, digest_set *theirs)
{
    digest_change *c = NULL;
    long n = digest_repair(mine, theirs, &c);
    if (n < 0) {
        log_warn(COMP, peer_uni, "out of memory comparing relations with %s", peer_uni);
        return;
    }
    long done = 0;
    psyc_buf lj, rj;
    psyc_buf_init(&lj);
    psyc_buf_init(&rj);
    for (long i = 0; i < n; i++) {
        char a[64], z[64];
        if (dp_jid(d, c[i].local, &lj) != 0 || dp_jid(d, c[i].remote, &rj) != 0 ||
            store_sub_set(d->g->store, lj.data, rj.data, c[i].new_state) != STORE_OK) {
            log_warn(COMP, peer_uni, "cannot repair %s -> %s", c[i].local, c[i].remote);
            continue;
        }
        done++;
        log_info(COMP, peer_uni, "digest repair: subscription %s -> %s was %s, now %s (as %s says)", lj.data,
                 rj.data, subs_name(c[i].old_state, a, sizeof a), subs_name(c[i].new_state, z, sizeof z),
                 peer_uni);
    }
    psyc_buf_free(&lj);
    psyc_buf_free(&rj);
    free(c);
    int64_t total = 0;
    char key[300];
    if (done)
        dp_count(d, "digest_repairs", host, done);
    snprintf(key, sizeof key, "digest_repairs:%s", host);
    store_counter_get(d->g->store, key, &total);
    log_info(COMP, peer_uni, "digest with %s: %ld relations repaired (%lld with it so far)", peer_uni, done,
             (long long)total);
}

/* The peer's list, keeping only relations between its people and ours. */
static int dp_their_list(digest_peer *d, const psyc_packet *p, const char *host, digest_set *theirs)
{
    digest_set all;
    digest_set_init(&all);
    int rc = digest_parse(p->data.ptr ? p->data.ptr : "", p->data.len, &all);
    for (size_t i = 0; rc == 0 && i < all.n; i++)
        if (dp_on_host(all.v[i].local, host) && dp_on_host(all.v[i].remote, d->g->host))
            rc = digest_set_add(theirs, all.v[i].local, all.v[i].remote, all.v[i].state);
    digest_set_free(&all);
    return rc;
}

int digest_peer_from_psyc(digest_peer *d, const psyc_packet *p, const char *peer)
{
    if (!d || !p->method.ptr)
        return 0;
    int req = psyc_str_eq_c(p->method, DP_REQUEST), list_req = psyc_str_eq_c(p->method, DP_LIST_REQUEST);
    if (!req && !list_req && !psyc_str_eq_c(p->method, DP_LIST_NOTICE))
        return 0;
    const psyc_modifier *src = psyc_packet_find_routing(p, "_source"), *dst = psyc_packet_find_routing(p, "_target");
    psyc_uniform u;
    if (!src || !dst || !routing_psyc_is_local(dst->value, d->g->host) || !d->g->store || !d->g->bridge ||
        psyc_uniform_parse(&u, src->value) != PSYC_UNI_OK || u.entity_type || u.host.len >= 256) {
        log_info(COMP, peer, "%.*s dropped: not from a peer's root to ours, or no store", (int)p->method.len,
                 p->method.ptr);
        return 1;
    }
    char host[256], peer_uni[300];
    snprintf(host, sizeof host, "%.*s", (int)u.host.len, u.host.ptr);
    snprintf(peer_uni, sizeof peer_uni, "psyc://%s/", host);
    if (!dp_known(d, host))
        store_kv_set(d->g->store, DP_PEERS_NS, host, "1", 1);
    digest_set mine, theirs;
    digest_set_init(&mine);
    digest_set_init(&theirs);
    dp_collect(d, host, &mine);
    if (req) {
        psyc_str their = {NULL, 0};
        char ours[DIGEST_HEX_SIZE] = "";
        psyc_packet_get(p, "_digest_relations", &their);
        if (digest_of(&mine, ours) == 0 && their.ptr && psyc_str_eq_c(their, ours)) {
            log_info(COMP, peer_uni, "digest with %s: our %zu relations agree", peer_uni, mine.n);
            dp_count(d, "digest_matches", host, 1);
        } else {
            log_info(COMP, peer_uni, "digest with %s differs (we have %zu relations): sending our list", peer_uni,
                     mine.n);
            dp_count(d, "digest_mismatches", host, 1);
            dp_send(d, host, DP_LIST_REQUEST, &mine);
        }
    } else if (dp_their_list(d, p, host, &theirs) != 0) {
        log_info(COMP, peer_uni, "%.*s from %s dropped: malformed list", (int)p->method.len, p->method.ptr,
                 peer_uni);
    } else {
        dp_repair(d, host, peer_uni, &mine, &theirs);
        if (list_req) { /* our list after the repair: the peer repairs its side */
            digest_set_free(&mine);
            digest_set_init(&mine);
            dp_collect(d, host, &mine);
            dp_send(d, host, DP_LIST_NOTICE, &mine);
        }
    }
    digest_set_free(&mine);
    digest_set_free(&theirs);
    return 1;
}
