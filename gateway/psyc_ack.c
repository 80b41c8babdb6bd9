/* psyc_ack.c: taking counted packets once, acknowledging after the commit
 * (see psyc_ack.h). */
#include "gateway/psyc_ack.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/psyc_circuit.h"
#include "gateway/psyc_out.h"
#include "gateway/store.h"

#define COMP "psyc"
#define ACK_NS "psyc_in"

/* The mark of one sender queue: "<host> <epoch>". */
typedef struct ack_mark {
    struct ack_mark *next;
    char key[256 + 1 + PSYC_OUT_TAG_SIZE];
    uint64_t high;
} ack_mark;

/* An acknowledgement owed on a circuit, sent after the next commit. */
typedef struct ack_due {
    struct ack_due *next;
    psyc_circuit *c;
    char epoch[PSYC_OUT_TAG_SIZE];
    uint64_t n;
} ack_due;

struct psyc_ack {
    gw *g;
    ack_mark *marks;
    ack_due *due;       /* committed: to be sent */
    ack_due *waiting;   /* owed once the open transaction commits */
    int commit_pending; /* an after-commit callback is registered */
    uint64_t delay_ms;  /* [psyc] ack_delay */
    uv_timer_t timer;   /* sends `due` after delay_ms */
    int timer_live, timer_armed;
    uint64_t duplicates;
};

psyc_ack *psyc_ack_new(gw *g)
{
    psyc_ack *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->g = g;
    a->delay_ms = cfg_get_uint(g->cfg, "psyc", "ack_delay");
    if (uv_timer_init(g->loop, &a->timer) == 0) {
        a->timer.data = a;
        a->timer_live = 1;
    }
    return a;
}

static void ack_send_now(psyc_ack *a);

void psyc_ack_stop(psyc_ack *a)
{
    if (!a)
        return;
    ack_send_now(a); /* what is committed, before the circuits close */
    if (a->timer_live) {
        uv_close((uv_handle_t *)&a->timer, NULL);
        a->timer_live = 0;
    }
}

static void ack_list_free(ack_due *d)
{
    while (d) {
        ack_due *next = d->next;
        free(d);
        d = next;
    }
}

void psyc_ack_free(psyc_ack *a)
{
    if (!a)
        return;
    ack_list_free(a->waiting);
    while (a->marks) {
        ack_mark *m = a->marks;
        a->marks = m->next;
        free(m);
    }
    ack_list_free(a->due);
    free(a);
}

uint64_t psyc_ack_duplicates(const psyc_ack *a)
{
    return a ? a->duplicates : 0;
}

/* The mark for key, read from the store the first time. NULL on OOM. */
static ack_mark *ack_mark_for(psyc_ack *a, const char *key)
{
    for (ack_mark *m = a->marks; m; m = m->next)
        if (strcmp(m->key, key) == 0)
            return m;
    ack_mark *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    snprintf(m->key, sizeof m->key, "%s", key);
    void *v = NULL;
    size_t len = 0;
    if (a->g->store && store_kv_get(a->g->store, ACK_NS, key, &v, &len) == STORE_OK)
        m->high = strtoull(v, NULL, 10);
    free(v);
    m->next = a->marks;
    a->marks = m;
    return m;
}

/* The entry for (c, epoch) in *list, added if missing; NULL on OOM. */
static ack_due *ack_entry(ack_due **list, psyc_circuit *c, const char *epoch)
{
    ack_due *d = *list;
    while (d && !(d->c == c && strcmp(d->epoch, epoch) == 0))
        d = d->next;
    if (!d && (d = calloc(1, sizeof *d)) != NULL) {
        d->c = c;
        snprintf(d->epoch, sizeof d->epoch, "%s", epoch);
        d->next = *list;
        *list = d;
    }
    return d;
}

static void ack_send_now(psyc_ack *a)
{
    ack_due *d = a->due;
    a->due = NULL;
    for (ack_due *x = d; x; x = x->next) {
        if (!psyc_circuit_running(x->c))
            continue;
        char counter[64];
        snprintf(counter, sizeof counter, "%s:%" PRIu64, x->epoch, x->n);
        if (psyc_link_send_delivery_ack(&x->c->link, counter) == 0) {
            psyc_circuit_send(x->c, NULL); /* flush */
            log_debug(COMP, x->c->peer.text, "acknowledged %s", counter);
        } else {
            log_debug(COMP, x->c->peer.text, "cannot acknowledge %s on this circuit (%s)", counter,
                      psyc_link_delivery_acks(&x->c->link) ? "link error" : "the peer did not announce it");
        }
    }
    ack_list_free(d);
}

static void ack_on_timer(uv_timer_t *t)
{
    psyc_ack *a = t->data;
    a->timer_armed = 0;
    ack_send_now(a);
}

/* After the commit: what was owed is due; sent now or after ack_delay. */
static void ack_committed(void *ud, int ok)
{
    psyc_ack *a = ud;
    a->commit_pending = 0;
    ack_due *w = a->waiting;
    a->waiting = NULL;
    /* A failed commit acknowledges nothing: the sender writes the packets
     * again and they are taken again. */
    for (ack_due *x = w; ok && x; x = x->next) {
        ack_due *d = ack_entry(&a->due, x->c, x->epoch);
        if (d && x->n > d->n)
            d->n = x->n;
    }
    ack_list_free(w);
    if (!a->due)
        return;
    if (a->delay_ms && a->timer_live) {
        if (!a->timer_armed && uv_timer_start(&a->timer, ack_on_timer, a->delay_ms, 0) == 0)
            a->timer_armed = 1;
        if (a->timer_armed)
            return;
    }
    ack_send_now(a);
}

/* Owes c an acknowledgement up to n of epoch (one per circuit and epoch,
 * the highest, after the commit). */
static void ack_owe(psyc_ack *a, psyc_circuit *c, const char *epoch, uint64_t n)
{
    ack_due *d = ack_entry(&a->waiting, c, epoch);
    if (!d)
        return; /* out of memory: the sender writes it again; we drop it then */
    if (n > d->n)
        d->n = n;
    if (!a->commit_pending) {
        a->commit_pending = 1;
        if (!a->g->store || store_after_commit(a->g->store, ack_committed, a) != STORE_OK)
            ack_committed(a, a->g->store == NULL);
    }
}

int psyc_ack_receive(psyc_ack *a, psyc_circuit *c, const psyc_packet *p)
{
    const psyc_modifier *m = psyc_packet_find_routing(p, PSYC_LINK_VAR_COUNTER_DELIVERY);
    if (!a || !m)
        return 1;
    char epoch[PSYC_OUT_TAG_SIZE], host[256];
    uint64_t n = 0;
    if (psyc_out_parse_counter(m->value, epoch, sizeof epoch, &n) != 0 ||
        psyc_link_auth_subject(p, host, sizeof host) != 1) {
        log_warn(COMP, c->peer.text, "malformed %s \"%.*s\": taken without deduplication",
                 PSYC_LINK_VAR_COUNTER_DELIVERY, (int)(m->value.len > 64 ? 64 : m->value.len), m->value.ptr);
        return 1;
    }
    char key[256 + 1 + PSYC_OUT_TAG_SIZE];
    snprintf(key, sizeof key, "%s %s", host, epoch);
    ack_mark *mark = ack_mark_for(a, key);
    if (!mark)
        return 1; /* out of memory: deliver rather than lose */
    if (n <= mark->high) {
        a->duplicates++;
        log_info(COMP, c->peer.text, "packet %s:%" PRIu64 " from %s taken before (up to %" PRIu64 "): dropped",
                 epoch, n, host, mark->high);
        ack_owe(a, c, epoch, mark->high);
        return 0;
    }
    mark->high = n;
    if (a->g->store) {
        char v[24];
        snprintf(v, sizeof v, "%" PRIu64, n);
        if (store_kv_set(a->g->store, ACK_NS, key, v, strlen(v)) != STORE_OK)
            log_warn(COMP, c->peer.text, "store: cannot keep the delivery mark of %s: %s", host,
                     store_error(a->g->store));
    }
    ack_owe(a, c, epoch, n);
    return 1;
}

static void ack_forget(ack_due **pp, psyc_circuit *c)
{
    while (*pp) {
        if ((*pp)->c == c) {
            ack_due *d = *pp;
            *pp = d->next;
            free(d);
        } else {
            pp = &(*pp)->next;
        }
    }
}

void psyc_ack_circuit_gone(psyc_ack *a, psyc_circuit *c)
{
    if (!a)
        return;
    ack_forget(&a->due, c);
    ack_forget(&a->waiting, c);
}
