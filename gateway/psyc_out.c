/* psyc_out.c: outgoing PSYC circuits and their queues (see psyc_out.h). */
#include "gateway/psyc_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/rand.h>

#include "gateway/bridge.h"
#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/psyc_circuit.h"
#include "gateway/store.h"
#include "routing/routing.h"

#define COMP "psyc"

static void out_try_next(psyc_peer *p);
static void out_resolve(psyc_peer *p);
static void out_on_retry(uv_timer_t *t);

static void out_item_free(psyc_out_item *it)
{
    psyc_packet_free(&it->pkt);
    free(it);
}

void psyc_out_tag(char *buf)
{
    unsigned char r[8];
    if (RAND_bytes(r, sizeof r) != 1) {
        /* Only a correlation token (PSYC.md §4.1 _tag), not a secret. */
        static unsigned counter;
        unsigned v = ++counter;
        memcpy(r, &v, sizeof v);
        memcpy(r + 4, &v, sizeof v);
    }
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(buf + 2 * i, 3, "%02x", r[i]);
}

psyc_out *psyc_out_new(gw *g)
{
    psyc_out *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->g = g;
    /* psyced opens 0.9 circuits unless built with USE_SPYC (PSYC.md §2.1). */
    o->syntax = cfg_get_choice(g->cfg, "psyc", "syntax") == 1 ? PSYC_SYNTAX_10 : PSYC_SYNTAX_09;
    o->give_up_ms = cfg_get_uint(g->cfg, "psyc", "give_up") * 1000u;
    return o;
}

static void out_timer_closed(uv_handle_t *h)
{
    psyc_peer *p = h->data;
    free(p->cands);
    free(p);
}

/* Written but not acknowledged: to be written again, first (the peer
 * drops what it already took, by its counter). */
static void out_requeue_unacked(psyc_peer *p)
{
    if (!p->unacked)
        return;
    p->unacked_tail->next = p->head;
    p->head = p->unacked;
    if (!p->tail)
        p->tail = p->unacked_tail;
    p->n_queued += p->n_unacked;
    p->resent += p->n_unacked;
    p->unacked = p->unacked_tail = NULL;
    p->n_unacked = 0;
}

/* At shutdown: what waits stays in the store for the next start; only
 * what the store could not take is lost (and said so). */
static void out_drop_queue(psyc_peer *p, const char *why)
{
    out_requeue_unacked(p);
    size_t kept = 0;
    for (psyc_out_item *it = p->head; it; it = it->next)
        kept += it->store_id != 0;
    if (kept)
        log_info(COMP, p->name, "%s: %zu queued packets stay in the store for the next start", why, kept);
    if (p->n_queued > kept)
        log_warn(COMP, p->name, "dropping %zu queued packets that are not in the store: %s",
                 p->n_queued - kept, why);
    p->dropped += p->n_queued - kept;
    p->out->dropped_total += p->n_queued - kept;
    while (p->head) {
        psyc_out_item *it = p->head;
        p->head = it->next;
        out_item_free(it);
    }
    p->tail = NULL;
    p->n_queued = 0;
}

void psyc_out_stop(psyc_out *o)
{
    if (!o || o->stopping)
        return;
    o->stopping = 1;
    for (psyc_peer *p = o->peers; p; p = p->next) {
        if (p->req) {
            dns_cancel(p->req);
            p->req = NULL;
        }
        if (p->circuit && p->circuit->out_peer == p)
            p->circuit->out_peer = NULL;
        p->circuit = NULL;
        out_drop_queue(p, "gateway shutting down");
    }
    for (psyc_circuit *c = o->g->circuits; c; c = c->next)
        c->out_peer = NULL;
    /* Each peer is freed once its timer handle is closed. */
    psyc_peer *p = o->peers;
    o->peers = NULL;
    while (p) {
        psyc_peer *next = p->next;
        uv_timer_stop(&p->retry);
        p->timer_live = 0;
        uv_close((uv_handle_t *)&p->retry, out_timer_closed);
        p = next;
    }
}

void psyc_out_free(psyc_out *o)
{
    if (!o)
        return;
    /* psyc_out_stop handed every peer to its timer's close callback. */
    free(o);
}

/* ------------------------------------------------------------------ */
/* Peers                                                              */

static psyc_peer *out_find(psyc_out *o, const char *host, int port)
{
    for (psyc_peer *p = o->peers; p; p = p->next)
        if (p->port == port && strcmp(p->host, host) == 0)
            return p;
    return NULL;
}

/* The epoch of the queue to this peer (psyc/link.h): kept in the store
 * so counters continue across restarts; a new one for a new store, so a
 * peer never mistakes our fresh counters for ones it has seen. */
static void out_load_epoch(psyc_out *o, psyc_peer *p)
{
    void *v = NULL;
    size_t len = 0;
    if (o->store && store_kv_get(o->store, "psyc_epoch", p->name, &v, &len) == STORE_OK &&
        len > 0 && len < sizeof p->epoch) {
        memcpy(p->epoch, v, len + 1);
    } else {
        psyc_out_tag(p->epoch);
        if (o->store && store_kv_set(o->store, "psyc_epoch", p->name, p->epoch, strlen(p->epoch)) != STORE_OK)
            log_warn(COMP, p->name, "store: cannot keep the delivery epoch: %s", store_error(o->store));
    }
    free(v);
}

static psyc_peer *out_peer_new(psyc_out *o, const char *host, int port)
{
    psyc_peer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->out = o;
    snprintf(p->host, sizeof p->host, "%s", host);
    p->port = port;
    if (port)
        snprintf(p->name, sizeof p->name, "%s:%d", host, port);
    else
        snprintf(p->name, sizeof p->name, "%s", host);
    p->syntax = o->syntax;
    p->backoff_ms = PSYC_OUT_BACKOFF_MIN_MS;
    out_load_epoch(o, p);
    if (uv_timer_init(o->g->loop, &p->retry) < 0) {
        free(p);
        return NULL;
    }
    p->retry.data = p;
    p->timer_live = 1;
    p->next = o->peers;
    o->peers = p;
    return p;
}

/* Wall-clock milliseconds: the store's timestamps outlive the process. */
static int64_t out_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The item left the queue (written, given up): not to be resumed. */
static void out_unstore(psyc_out *o, psyc_out_item *it)
{
    if (it->store_id && o->store && store_queue_remove(o->store, it->store_id) == STORE_ERR)
        log_warn(COMP, NULL, "store: cannot remove packet %lld: %s", (long long)it->store_id,
                 store_error(o->store));
    it->store_id = 0;
}

/* Writes a packet with its _counter_delivery (its row in the store, so
 * counters grow along the queue: the store's ids are never reused). */
static int out_send_counted(psyc_peer *p, psyc_out_item *it)
{
    char counter[64];
    snprintf(counter, sizeof counter, "%s:%lld", p->epoch, (long long)it->store_id);
    psyc_packet c;
    psyc_packet_init(&c);
    int rc = psyc_packet_copy(&c, &it->pkt);
    if (rc == 0)
        rc = psyc_packet_routing_c(&c, PSYC_LINK_VAR_COUNTER_DELIVERY, counter);
    if (rc == 0)
        rc = psyc_circuit_send(p->circuit, &c);
    psyc_packet_free(&c);
    return rc;
}

/* Sends what waits while the circuit can take it. */
static void out_flush(psyc_peer *p)
{
    /* Wait until we know whether the peer acknowledges (a packet written
     * without a counter cannot be taken back into the store). */
    if (p->circuit && !psyc_link_delivery_known(&p->circuit->link) && !p->delivery_forced)
        return;
    while (p->head && p->circuit && psyc_circuit_running(p->circuit) &&
           psyc_link_can_send(&p->circuit->link)) {
        psyc_out_item *it = p->head;
        p->head = it->next;
        if (!p->head)
            p->tail = NULL;
        p->n_queued--;
        if (it->store_id > 0 && psyc_link_delivery_acks(&p->circuit->link)) {
            if (out_send_counted(p, it) == 0) {
                it->next = NULL;
                if (p->unacked_tail)
                    p->unacked_tail->next = it;
                else
                    p->unacked = it;
                p->unacked_tail = it;
                p->n_unacked++;
                p->sent++;
                continue;
            }
        }
        int rc = psyc_circuit_send(p->circuit, &it->pkt);
        out_unstore(p->out, it);
        if (rc < 0) {
            p->dropped++;
            p->out->dropped_total++;
            log_warn(COMP, p->name, "packet %.*s not sent: %s", (int)(it->pkt.method.len > 80 ? 80 : it->pkt.method.len),
                     it->pkt.method.ptr ? it->pkt.method.ptr : "", psyc_strerror(rc));
        } else {
            p->sent++;
        }
        out_item_free(it);
    }
}

/* The packet could not wait: tell its sender (PSYC.md §4.4: delivery
 * failures come back as unicast to the original source). A sender on our
 * own host is an XMPP user behind the bridge: the failure goes to it there,
 * from the entity it wrote to, so its client shows the error on that chat. */
static void out_bounce(psyc_out *o, const psyc_packet *pkt, const char *why)
{
    const psyc_modifier *src = psyc_packet_find_routing(pkt, "_source");
    const psyc_modifier *dst = psyc_packet_find_routing(pkt, "_target");
    int local = src && routing_psyc_is_local(src->value, o->g->host);
    char from[PSYC_UNIFORM_MAX + 1];
    if (local && dst)
        snprintf(from, sizeof from, "%.*s", (int)dst->value.len, dst->value.ptr);
    else
        snprintf(from, sizeof from, "psyc://%s/", o->g->host);
    char text[1200];
    snprintf(text, sizeof text, "Your message to [_uniform_target] could not be delivered: %.1100s.", why);
    psyc_packet b;
    psyc_packet_init(&b);
    if (routing_psyc_bounce(pkt, from, "_failure_unsuccessful_delivery", text, &b) == 1) {
        const psyc_modifier *t = psyc_packet_find_routing(&b, "_target");
        log_info(COMP, NULL, "bouncing _failure_unsuccessful_delivery to %.*s: %s", t ? (int)t->value.len : 1,
                 t ? t->value.ptr : "-", why);
        if (!local)
            psyc_out_send(o, &b);
        else if (!o->g->bridge || !bridge_from_psyc(o->g->bridge, &b, NULL))
            log_info(COMP, NULL, "the bounce has no XMPP sender to go to; dropped");
    }
    psyc_packet_free(&b);
}

/* Bounces what waited longer than [psyc] give_up; returns when the next
 * waiting packet is due (UINT64_MAX when none waits). */
static uint64_t out_give_up(psyc_peer *p)
{
    uint64_t now = uv_now(p->out->g->loop);
    while (p->head && now - p->head->queued_ms >= p->out->give_up_ms) {
        psyc_out_item *it = p->head;
        p->head = it->next;
        if (!p->head)
            p->tail = NULL;
        p->n_queued--;
        p->dropped++;
        p->out->dropped_total++;
        char why[1024];
        snprintf(why, sizeof why, "no circuit to %.272s for %llu s (%.400s)", p->name,
                 (unsigned long long)((now - it->queued_ms) / 1000u),
                 p->last_error[0] ? p->last_error : "never reached");
        log_warn(COMP, p->name, "giving up on %.*s after %llu s", (int)(it->pkt.method.len > 80 ? 80 : it->pkt.method.len),
                 it->pkt.method.ptr ? it->pkt.method.ptr : "", (unsigned long long)((now - it->queued_ms) / 1000u));
        out_bounce(p->out, &it->pkt, why);
        out_unstore(p->out, it);
        out_item_free(it);
    }
    return p->head ? p->head->queued_ms + p->out->give_up_ms - now : UINT64_MAX;
}

/* Writes a waiting packet to the store (PSYC 1.0 bytes); 0 when it could
 * not be (it then waits in memory only, and the log says so). */
static int64_t out_store(psyc_peer *p, const psyc_packet *pkt)
{
    store *st = p->out->store;
    if (!st)
        return 0;
    psyc_buf b;
    psyc_buf_init(&b);
    int64_t id = 0;
    const psyc_modifier *src = psyc_packet_find_routing(pkt, "_source");
    char origin[PSYC_UNIFORM_MAX + 1];
    snprintf(origin, sizeof origin, "%.*s", src ? (int)src->value.len : 0, src ? src->value.ptr : "");
    char dest[300];
    snprintf(dest, sizeof dest, "psyc:%s", p->name);
    if (psyc_render(pkt, &b) != 0 ||
        store_queue_push(st, dest, origin, 0, b.data, b.len, out_wall_ms(), &id) != STORE_OK) {
        log_warn(COMP, p->name, "store: cannot keep a waiting packet (%s); it waits in memory only",
                 store_error(st)[0] ? store_error(st) : "cannot render it");
        id = 0;
    }
    psyc_buf_free(&b);
    return id;
}

static int out_enqueue_item(psyc_peer *p, const psyc_packet *pkt, int64_t store_id, uint64_t queued_ms);

static int out_enqueue(psyc_peer *p, const psyc_packet *pkt)
{
    return out_enqueue_item(p, pkt, -1, uv_now(p->out->g->loop));
}

/* store_id -1: store it now; 0 or a row: as given (resumed packets). */
static int out_enqueue_item(psyc_peer *p, const psyc_packet *pkt, int64_t store_id, uint64_t queued_ms)
{
    if (p->n_queued + p->n_unacked >= PSYC_OUT_MAX_QUEUE) {
        p->dropped++;
        p->out->dropped_total++;
        log_warn(COMP, p->name, "queue full (%d packets): packet %.*s dropped (%llu dropped so far)",
                 PSYC_OUT_MAX_QUEUE, (int)(pkt->method.len > 80 ? 80 : pkt->method.len),
                 pkt->method.ptr ? pkt->method.ptr : "", (unsigned long long)p->dropped);
        out_bounce(p->out, pkt, "queue full");
        return PSYC_ERR_TOO_LARGE;
    }
    psyc_out_item *it = calloc(1, sizeof *it);
    if (!it)
        return PSYC_ERR_NOMEM;
    if (psyc_packet_copy(&it->pkt, pkt) != 0) {
        free(it);
        return PSYC_ERR_NOMEM;
    }
    it->queued_ms = queued_ms;
    it->store_id = store_id < 0 ? out_store(p, pkt) : store_id;
    if (p->tail)
        p->tail->next = it;
    else
        p->head = it;
    p->tail = it;
    p->n_queued++;
    return 0;
}

static void out_set_circuit(psyc_peer *p, psyc_circuit *c)
{
    if (p->circuit && p->circuit != c && p->circuit->out_peer == p)
        p->circuit->out_peer = NULL;
    p->circuit = c;
    if (c && !c->out_peer)
        c->out_peer = p;
}

/* An incoming circuit on which `host` is authenticated (psyced reuses the
 * peer's circuit, PSYC.md §9 "Both circuits are used"), or NULL. */
static psyc_circuit *out_find_incoming(psyc_out *o, const char *host)
{
    for (psyc_circuit *c = o->g->circuits; c; c = c->next) {
        if (c->active || !psyc_circuit_running(c) || !c->link_ready || c->link.auth_refused)
            continue;
        if (c->link.state != PSYC_LINK_OPEN && c->link.state != PSYC_LINK_HOLD)
            continue;
        if (psyc_link_host_authenticated(&c->link, host))
            return c;
    }
    return NULL;
}

/* Uses circuit c of the peer's host: ready now, or after our
 * `_request_authorization` on 1.0 (PSYC.md §2.3 step 4). */
static int out_use_incoming(psyc_peer *p, psyc_circuit *c)
{
    if (!psyc_link_can_send(&c->link)) {
        char tag[PSYC_OUT_TAG_SIZE];
        psyc_out_tag(tag);
        if (psyc_link_request_authorization(&c->link, p->host, tag) < 0)
            return 0;
        psyc_circuit_send(c, NULL); /* flush the request */
        log_info(COMP, c->peer.text, "asking %s for authorization to send on its circuit (tag %s)", p->name,
                 c->link.tag);
    }
    out_set_circuit(p, c);
    if (psyc_link_can_send(&c->link)) {
        p->state = PSYC_PEER_READY;
        p->delivery_forced = 0;
        if (!psyc_link_delivery_known(&c->link) && p->timer_live)
            uv_timer_start(&p->retry, out_on_retry, PSYC_OUT_KNOWN_WAIT_MS, 0);
        log_info(COMP, c->peer.text, "sending to %s on its own circuit to us (%s)", p->name,
                 psyc_link_syntax_name(c->link.syntax));
    } else {
        p->state = PSYC_PEER_CONNECTING;
    }
    return 1;
}

static void out_on_retry(uv_timer_t *t)
{
    psyc_peer *p = t->data;
    if (!p->out->stopping && p->state == PSYC_PEER_READY && p->circuit &&
        !psyc_link_delivery_known(&p->circuit->link)) {
        /* A 0.9 peer that sent no _status_circuit: not a psycgate. */
        log_info(COMP, p->name, "no _status_circuit from the peer: sending without acknowledgements");
        p->delivery_forced = 1;
        out_flush(p);
        return;
    }
    if (p->out->stopping || p->state != PSYC_PEER_BACKOFF)
        return;
    out_give_up(p);
    if (!p->head) {
        p->state = PSYC_PEER_IDLE;
        return;
    }
    log_info(COMP, p->name, "retrying (%zu packets waiting)", p->n_queued);
    out_resolve(p);
}

/* Every candidate failed (or the lookup did): wait, then start over. */
static void out_backoff(psyc_peer *p, const char *reason)
{
    p->circuit = NULL;
    if (p->out->stopping)
        return;
    if (reason != p->last_error)
        snprintf(p->last_error, sizeof p->last_error, "%s", reason);
    reason = p->last_error;
    if (!p->head) {
        p->state = PSYC_PEER_IDLE;
        log_info(COMP, p->name, "no circuit: %s; nothing waits, reconnecting on demand", reason);
        return;
    }
    uint64_t due = out_give_up(p);
    if (!p->head) {
        p->state = PSYC_PEER_IDLE;
        log_info(COMP, p->name, "no circuit: %s; nothing waits any more, reconnecting on demand", reason);
        return;
    }
    uint32_t delay = p->backoff_ms;
    /* 1 s .. 60 s, doubling: a peer that is down is not hammered, one that
     * comes back is found again soon (as the component links do). */
    p->backoff_ms = delay >= PSYC_OUT_BACKOFF_MAX_MS / 2 ? PSYC_OUT_BACKOFF_MAX_MS : delay * 2;
    /* Wake up for the first give-up too (it retries early then, harmless). */
    if (due < delay)
        delay = (uint32_t)due;
    p->state = PSYC_PEER_BACKOFF;
    log_warn(COMP, p->name, "no circuit: %s; %zu packets wait, retrying in %u s", reason, p->n_queued,
             (unsigned)(delay / 1000u));
    if (p->timer_live)
        uv_timer_start(&p->retry, out_on_retry, delay, 0);
}

static void out_try_next(psyc_peer *p)
{
    while (p->next_cand < p->n_cands) {
        const dns_candidate *cand = &p->cands[p->next_cand++];
        p->attempts++;
        log_info(COMP, p->name, "connecting to %s:%u (%s, %s, attempt %llu)", cand->addr.ip, cand->port,
                 cand->host, psyc_link_syntax_name(p->syntax), (unsigned long long)p->attempts);
        psyc_circuit *c = psyc_circuit_connect(p->out->g, (const struct sockaddr *)&cand->addr.sa, p->host,
                                               p->syntax, p);
        if (c) {
            p->state = PSYC_PEER_CONNECTING;
            p->circuit = c;
            return;
        }
    }
    out_backoff(p, p->last_error[0] ? p->last_error : "no candidate could be connected");
}

static void out_take_candidates(psyc_peer *p, const dns_candidate *c, size_t n)
{
    free(p->cands);
    p->cands = NULL;
    p->n_cands = p->next_cand = 0;
    if (n == 0)
        return;
    p->cands = calloc(n, sizeof *p->cands);
    if (!p->cands)
        return;
    memcpy(p->cands, c, n * sizeof *c);
    p->n_cands = n;
}

static void out_on_service(const dns_service_result *res, void *arg)
{
    psyc_peer *p = arg;
    p->req = NULL;
    if (res->status == DNS_ECANCELLED || p->out->stopping)
        return;
    if (res->status != DNS_OK) {
        char why[400];
        snprintf(why, sizeof why, "DNS lookup of _psyc._tcp.%s failed: %s", p->host, dns_strerror(res->status));
        out_backoff(p, why);
        return;
    }
    out_take_candidates(p, res->candidates, res->n_candidates);
    p->last_error[0] = '\0';
    out_try_next(p);
}

static void out_on_addrs(const dns_addrs_result *res, void *arg)
{
    psyc_peer *p = arg;
    p->req = NULL;
    if (res->status == DNS_ECANCELLED || p->out->stopping)
        return;
    if (res->status != DNS_OK) {
        char why[400];
        snprintf(why, sizeof why, "DNS lookup of %s failed: %s", p->host, dns_strerror(res->status));
        out_backoff(p, why);
        return;
    }
    /* An explicit port in the uniform: every address with that port. */
    dns_candidate *c = calloc(res->n_addrs, sizeof *c);
    if (!c) {
        out_backoff(p, "out of memory");
        return;
    }
    for (size_t i = 0; i < res->n_addrs; i++) {
        memcpy(c[i].host, p->host, sizeof c[i].host < sizeof p->host ? sizeof c[i].host - 1 : sizeof p->host - 1);
        c[i].port = (uint16_t)p->port;
        c[i].addr = res->addrs[i];
        if (c[i].addr.family == AF_INET)
            ((struct sockaddr_in *)&c[i].addr.sa)->sin_port = htons((uint16_t)p->port);
        else
            ((struct sockaddr_in6 *)&c[i].addr.sa)->sin6_port = htons((uint16_t)p->port);
    }
    out_take_candidates(p, c, res->n_addrs);
    free(c);
    p->last_error[0] = '\0';
    out_try_next(p);
}

/* Finds a circuit: an incoming one from the host, else a DNS lookup and
 * our own. */
static void out_resolve(psyc_peer *p)
{
    psyc_out *o = p->out;
    if (!p->port) {
        psyc_circuit *in = out_find_incoming(o, p->host);
        if (in && out_use_incoming(p, in)) {
            out_flush(p);
            return;
        }
    }
    if (!o->g->dns) {
        out_backoff(p, "no resolver");
        return;
    }
    p->state = PSYC_PEER_RESOLVING;
    p->req = p->port ? dns_resolve_addrs(o->g->dns, p->host, out_on_addrs, p)
                     : dns_resolve_service(o->g->dns, DNS_SVC_PSYC, p->host, out_on_service, p);
    if (!p->req)
        out_backoff(p, "cannot start a DNS lookup");
}

size_t psyc_out_resume(psyc_out *o);

/* The peer (host and port) a packet goes to, created on first use; NULL
 * (logged) when its _target is no usable psyc: uniform. */
static psyc_peer *out_peer_for_uniform(psyc_out *o, const psyc_packet *pkt, const psyc_str *via, int *err)
{
    psyc_uniform u;
    if (!via || psyc_uniform_parse(&u, *via) != PSYC_UNI_OK || !psyc_str_eq_c(u.scheme, "psyc") ||
        u.host.len == 0 || u.host.len > 253 || u.port_num < 0 || u.port_num > 65535 ||
        (u.transport && u.transport != 'c')) {
        log_warn(COMP, NULL, "cannot send %.*s: no usable psyc: _target (TCP only)",
                 (int)(pkt->method.len > 80 ? 80 : pkt->method.len), pkt->method.ptr ? pkt->method.ptr : "");
        *err = PSYC_ERR_INVALID;
        return NULL;
    }
    char host[256];
    for (size_t i = 0; i < u.host.len; i++) {
        char ch = u.host.ptr[i];
        host[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    host[u.host.len] = '\0';
    /* The default port is no port: one queue for psyc://h/ and psyc://h:4404/. */
    int port = (u.port_num == DNS_PORT_PSYC) ? 0 : (int)u.port_num;

    psyc_peer *p = out_find(o, host, port);
    if (!p && !(p = out_peer_new(o, host, port)))
        *err = PSYC_ERR_NOMEM;
    return p;
}

static psyc_peer *out_peer_for(psyc_out *o, const psyc_packet *pkt, int *err)
{
    const psyc_modifier *t = psyc_packet_find_routing(pkt, "_target");
    return out_peer_for_uniform(o, pkt, t ? &t->value : NULL, err);
}

static int out_send_to_peer(psyc_peer *p, const psyc_packet *pkt);

int psyc_out_send(psyc_out *o, const psyc_packet *pkt)
{
    if (o->stopping)
        return PSYC_ERR_INVALID;
    int err = 0;
    psyc_peer *p = out_peer_for(o, pkt, &err);
    return p ? out_send_to_peer(p, pkt) : err;
}

int psyc_out_send_via(psyc_out *o, psyc_str via, const psyc_packet *pkt)
{
    if (o->stopping)
        return PSYC_ERR_INVALID;
    int err = 0;
    psyc_peer *p = out_peer_for_uniform(o, pkt, &via, &err);
    return p ? out_send_to_peer(p, pkt) : err;
}

static int out_send_to_peer(psyc_peer *p, const psyc_packet *pkt)
{
    if (p->state == PSYC_PEER_READY && !p->head && p->circuit && psyc_link_can_send(&p->circuit->link) &&
        !psyc_link_delivery_acks(&p->circuit->link)) {
        int rc = psyc_circuit_send(p->circuit, pkt);
        if (rc == 0)
            p->sent++;
        return rc;
    }
    int rc = out_enqueue(p, pkt);
    if (rc < 0)
        return rc;
    if (p->state == PSYC_PEER_IDLE)
        out_resolve(p);
    else if (p->state == PSYC_PEER_READY)
        out_flush(p);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Resuming what the store kept                                       */

/* One stored packet back into its queue, with the time it already waited. */
static int out_resume_item(psyc_out *o, const store_item *it, int64_t wall_now)
{
    psyc_parser parser;
    psyc_parser_init(&parser, NULL, 0);
    psyc_packet pkt;
    psyc_packet_init(&pkt);
    size_t used = 0;
    int rc = psyc_parse_packet(&parser, it->data, it->len, &pkt, &used) == 1 ? 0 : -1;
    psyc_peer *p = NULL;
    int err = 0;
    /* The queue it was in names the peer (a multicast has no _target). */
    char via[300];
    snprintf(via, sizeof via, "psyc://%s/", it->dest + 5);
    psyc_str v = psyc_str_c(via);
    if (rc == 0 && (p = out_peer_for_uniform(o, &pkt, &v, &err)) != NULL) {
        uint64_t now = uv_now(o->g->loop);
        uint64_t age = wall_now > it->created_ms ? (uint64_t)(wall_now - it->created_ms) : 0;
        rc = out_enqueue_item(p, &pkt, it->id, age < now ? now - age : 0);
    } else {
        rc = -1;
    }
    psyc_packet_free(&pkt);
    if (rc != 0) {
        log_warn(COMP, NULL, "store: packet %lld for %s cannot be resumed; removed", (long long)it->id,
                 it->dest);
        store_queue_remove(o->store, it->id);
    }
    return rc == 0;
}

/* Counts what comes back per peer, for one log line each. */
typedef struct out_resuming {
    psyc_out *o;
    int64_t wall_now;
    char dest[300];
    size_t n, total;
} out_resuming;

static void out_resume_log(out_resuming *r)
{
    if (r->n)
        log_info(COMP, r->dest + 5, "resuming %zu packets kept in the store", r->n);
    r->total += r->n;
    r->n = 0;
}

static void out_resume_one(void *ud, const store_item *it)
{
    out_resuming *r = ud;
    if (strcmp(r->dest, it->dest) != 0) {
        out_resume_log(r);
        snprintf(r->dest, sizeof r->dest, "%s", it->dest);
    }
    r->n += (size_t)out_resume_item(r->o, it, r->wall_now);
}

size_t psyc_out_resume(psyc_out *o)
{
    if (!o->store)
        return 0;
    out_resuming r = {.o = o, .wall_now = out_wall_ms()};
    store_queue_each(o->store, "psyc:", out_resume_one, &r);
    out_resume_log(&r);
    /* Start every peer that has something to send. */
    for (psyc_peer *p = o->peers; p; p = p->next)
        if (p->head && p->state == PSYC_PEER_IDLE)
            out_resolve(p);
    return r.total;
}

/* ------------------------------------------------------------------ */
/* Circuit events                                                     */

static psyc_peer *out_peer_of(psyc_out *o, psyc_circuit *c)
{
    if (c->out_peer)
        return c->out_peer;
    for (psyc_peer *p = o->peers; p; p = p->next)
        if (p->circuit == c)
            return p;
    return NULL;
}

void psyc_out_circuit_ready(psyc_out *o, psyc_circuit *c)
{
    if (!o || o->stopping)
        return;
    psyc_peer *p = out_peer_of(o, c);
    if (!p || p->circuit != c)
        return;
    p->state = PSYC_PEER_READY;
    p->backoff_ms = PSYC_OUT_BACKOFF_MIN_MS;
    p->delivery_forced = 0;
    log_info(COMP, c->peer.text, "circuit to %s ready (%s%s), %zu packets waiting", p->name,
             psyc_link_syntax_name(c->link.syntax), c->active ? "" : ", the peer's circuit", p->n_queued);
    if (!psyc_link_delivery_known(&c->link) && p->timer_live)
        uv_timer_start(&p->retry, out_on_retry, PSYC_OUT_KNOWN_WAIT_MS, 0);
    out_flush(p);
}

void psyc_out_circuit_known(psyc_out *o, psyc_circuit *c)
{
    if (!o || o->stopping)
        return;
    psyc_peer *p = out_peer_of(o, c);
    if (!p || p->circuit != c || p->state != PSYC_PEER_READY)
        return;
    if (p->timer_live)
        uv_timer_stop(&p->retry);
    out_flush(p);
}

void psyc_out_circuit_gone(psyc_out *o, psyc_circuit *c, const char *reason)
{
    if (!o || o->stopping)
        return;
    psyc_peer *p = out_peer_of(o, c);
    c->out_peer = NULL;
    if (!p || p->circuit != c)
        return;
    p->circuit = NULL;
    if (p->n_unacked)
        log_info(COMP, c->peer.text, "%zu packets to %s were not acknowledged: they go again", p->n_unacked,
                 p->name);
    out_requeue_unacked(p);
    if (o->stopping)
        return;
    if (p->state == PSYC_PEER_CONNECTING && c->active && c->syntax == PSYC_SYNTAX_10 && c->bytes_in > 0 &&
        c->first_byte != '|' && p->syntax == PSYC_SYNTAX_10 && p->next_cand > 0) {
        /* The peer answered in another syntax and closed: psyced 0.99
         * croaks _error_syntax_initialization (a 0.9 packet, first byte
         * LF) at our `|` (PSYC.md §9). Speak 0.9 to this host from now on,
         * starting with the same candidate. A 1.0 peer that vanishes
         * mid-greeting (first byte `|`) is just retried. */
        log_warn(COMP, c->peer.text, "%s refused PSYC 1.0 (%s); falling back to 0.9 for it", p->name, reason);
        p->syntax = PSYC_SYNTAX_09;
        p->next_cand--;
        out_try_next(p);
        return;
    }
    if (p->state == PSYC_PEER_CONNECTING && c->active) {
        /* Not ready yet: the next candidate (RFC 2782 order), then backoff. */
        snprintf(p->last_error, sizeof p->last_error, "%s", reason);
        log_info(COMP, c->peer.text, "circuit to %s failed: %s", p->name, reason);
        out_try_next(p);
        return;
    }
    log_info(COMP, c->peer.text, "circuit to %s lost: %s", p->name, reason);
    if (p->head) {
        /* Reconnect at once (another circuit may exist), backoff after. */
        p->state = PSYC_PEER_IDLE;
        out_resolve(p);
    } else {
        p->state = PSYC_PEER_IDLE;
    }
}

void psyc_out_host_authenticated(psyc_out *o, psyc_circuit *c, const char *host)
{
    if (!o || o->stopping)
        return;
    /* Packets that wait for this host (our circuit is down or still
     * coming up) can take the peer's circuit now. */
    psyc_peer *p = out_find(o, host, 0);
    if (!p || !p->head || p->state == PSYC_PEER_READY || p->state == PSYC_PEER_CONNECTING || c->active ||
        !psyc_circuit_running(c) || c->link.auth_refused)
        return;
    if (p->req) {
        dns_cancel(p->req);
        p->req = NULL;
    }
    if (p->timer_live)
        uv_timer_stop(&p->retry);
    if (!out_use_incoming(p, c)) {
        out_backoff(p, "cannot use the peer's circuit");
        return;
    }
    out_flush(p);
}

/* ------------------------------------------------------------------ */
/* Acknowledged delivery (psyc/link.h)                                 */

int psyc_out_parse_counter(psyc_str v, char *epoch, size_t epochsz, uint64_t *n)
{
    const char *colon = v.ptr ? memchr(v.ptr, ':', v.len) : NULL;
    if (!colon || colon == v.ptr || (size_t)(colon - v.ptr) >= epochsz)
        return -1;
    size_t elen = (size_t)(colon - v.ptr);
    for (size_t i = 0; i < elen; i++) {
        char ch = v.ptr[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return -1;
    }
    const char *d = colon + 1, *end = v.ptr + v.len;
    if (d == end || end - d > 19)
        return -1;
    uint64_t x = 0;
    for (; d < end; d++) {
        if (*d < '0' || *d > '9')
            return -1;
        x = x * 10 + (uint64_t)(*d - '0');
    }
    memcpy(epoch, v.ptr, elen);
    epoch[elen] = '\0';
    *n = x;
    return 0;
}

void psyc_out_delivery_acked(psyc_out *o, psyc_circuit *c, const psyc_packet *ack)
{
    if (!o || o->stopping)
        return;
    const psyc_modifier *m = psyc_packet_find_entity(ack, PSYC_LINK_VAR_COUNTER_DELIVERY);
    char epoch[PSYC_OUT_TAG_SIZE];
    uint64_t n = 0;
    psyc_peer *p = out_peer_of(o, c);
    if (!m || psyc_out_parse_counter(m->value, epoch, sizeof epoch, &n) != 0) {
        log_warn(COMP, c->peer.text, "%s without a valid %s: ignored", PSYC_LINK_MC_STATUS_DELIVERY,
                 PSYC_LINK_VAR_COUNTER_DELIVERY);
        return;
    }
    if (!p || strcmp(epoch, p->epoch) != 0) {
        log_debug(COMP, c->peer.text, "acknowledgement %s:%llu is for no queue of ours on this circuit", epoch,
                  (unsigned long long)n);
        return;
    }
    size_t done = 0;
    while (p->unacked && p->unacked->store_id <= (int64_t)n) {
        psyc_out_item *it = p->unacked;
        p->unacked = it->next;
        if (!p->unacked)
            p->unacked_tail = NULL;
        p->n_unacked--;
        out_item_free(it);
        done++;
    }
    p->acked += done;
    if (o->store && done) {
        char dest[300];
        snprintf(dest, sizeof dest, "psyc:%s", p->name);
        if (store_queue_remove_upto(o->store, dest, (int64_t)n) < 0)
            log_warn(COMP, p->name, "store: cannot remove acknowledged packets: %s", store_error(o->store));
    }
    log_debug(COMP, c->peer.text, "%s acknowledged %zu packets up to %llu (%zu still unacknowledged)", p->name,
              done, (unsigned long long)n, p->n_unacked);
}

int psyc_out_peer_acks(psyc_out *o, const char *host)
{
    psyc_peer *p = o ? out_find(o, host, 0) : NULL;
    return p && p->circuit && psyc_circuit_running(p->circuit) && psyc_link_delivery_acks(&p->circuit->link);
}
