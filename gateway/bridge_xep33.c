/* bridge_xep33.c: XEP-0033 on the bridge's XMPP side (see bridge_xep33.h). */
#include "gateway/bridge_xep33.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/bridge.h"
#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/store.h"
#include "routing/routing.h"
#include "routing/xep33.h"

#define COMP "xep33"

/* XEP-0033 §2.3 leaves the cache time to us: a service found is trusted
 * an hour, its absence ten minutes (a server may get the module), and a
 * discovery that got no answer in 30 s counts as "none" until asked again. */
#define BX33_TTL_YES_MS (3600u * 1000u)
#define BX33_TTL_NO_MS (600u * 1000u)
#define BX33_ASK_MS (30u * 1000u)
#define BX33_MAX_SERVERS 1024
#define BX33_MAX_ITEMS 16
/* Recipients per stanza when the service does not say (ejabberd's
 * default for senders of other servers, which we are). */
#define BX33_DEFAULT_LIMIT 20u
#define BX33_ID_PREFIX "psycgate-x33-"

enum bx33_state { BX33_INFO, BX33_ITEMS, BX33_ITEM_INFO, BX33_YES, BX33_NO };

typedef struct bx33_server {
    struct bx33_server *next;
    char domain[256];    /* the recipients' server */
    char service[256];   /* its multicast service (BX33_YES) */
    char from[256];      /* our domain that asks */
    enum bx33_state state;
    xep33_limits lim;
    char id[64];         /* the query in flight */
    char items[BX33_MAX_ITEMS][256];
    unsigned waiting;    /* bit i: items[i] has not answered yet */
    uint64_t since_ms;   /* when this state began */
} bx33_server;

struct bridge_xep33 {
    bx33_server *servers; /* newest first */
    size_t n_servers;
    uint64_t seq;
    bridge_xep33_stats stats;
};

bridge_xep33 *bridge_xep33_new(void)
{
    return calloc(1, sizeof(bridge_xep33));
}

void bridge_xep33_free(bridge_xep33 *x)
{
    while (x && x->servers) {
        bx33_server *s = x->servers;
        x->servers = s->next;
        free(s);
    }
    free(x);
}

const bridge_xep33_stats *bridge_xep33_get_stats(const bridge_xep33 *x)
{
    return &x->stats;
}

/* The domain part of a JID (after '@', up to '/'), as a length. */
static const char *bx33_domain(const char *jid, size_t *len)
{
    size_t end = strcspn(jid, "/");
    const char *at = memchr(jid, '@', end);
    const char *d = at ? at + 1 : jid;
    *len = end - (size_t)(d - jid);
    return d;
}

static int bx33_send_query(bridge *b, bx33_server *s, const char *to, int items)
{
    xml_node *q = xep33_disco_query(s->from, to, s->id, items);
    if (!q)
        return -1;
    log_debug(COMP, to, "disco#%s query %s", items ? "items" : "info", s->id);
    return bridge_send_xmpp(b, q);
}

/* A new query id for s, and its state. */
static void bx33_next(bridge *b, bx33_server *s, enum bx33_state st)
{
    snprintf(s->id, sizeof s->id, BX33_ID_PREFIX "%llu", (unsigned long long)++b->x33->seq);
    s->state = st;
    s->since_ms = uv_now(b->g->loop);
}

static void bx33_conclude(bridge *b, bx33_server *s, const char *service, const char *why)
{
    s->id[0] = '\0';
    s->waiting = 0;
    s->since_ms = uv_now(b->g->loop);
    if (service) {
        s->state = BX33_YES;
        snprintf(s->service, sizeof s->service, "%s", service);
        log_info(COMP, s->domain, "XEP-0033 multicast service of %s: %s (up to %u recipients per presence, "
                 "%u per message)", s->domain, s->service, s->lim.presence, s->lim.message);
    } else {
        s->state = BX33_NO;
        s->service[0] = '\0';
        log_info(COMP, s->domain, "%s has no XEP-0033 multicast service (%s): one stanza per recipient",
                 s->domain, why);
    }
}

/* XEP-0033 §2.1: first ask the server itself. A service already known
 * stays in use (with its limits) while we ask again. */
static void bx33_discover(bridge *b, bx33_server *s)
{
    if (!s->service[0])
        s->lim = (xep33_limits){BX33_DEFAULT_LIMIT, BX33_DEFAULT_LIMIT};
    bx33_next(b, s, BX33_INFO);
    if (bx33_send_query(b, s, s->domain, 0) != 0)
        bx33_conclude(b, s, NULL, "cannot ask it");
}

/* The service for `domain` when one is known; starts or restarts
 * discovery when the cache has nothing fresh. */
static const bx33_server *bx33_lookup(bridge *b, const char *domain, size_t dlen, const char *from)
{
    bridge_xep33 *x = b->x33;
    bx33_server *s = x->servers;
    while (s && !(strlen(s->domain) == dlen && strncmp(s->domain, domain, dlen) == 0))
        s = s->next;
    uint64_t now = uv_now(b->g->loop);
    if (!s) {
        if (dlen >= sizeof s->domain)
            return NULL;
        if (x->n_servers >= BX33_MAX_SERVERS) { /* the oldest entry goes */
            bx33_server **pp = &x->servers;
            while ((*pp)->next)
                pp = &(*pp)->next;
            free(*pp);
            *pp = NULL;
            x->n_servers--;
        }
        s = calloc(1, sizeof *s);
        if (!s)
            return NULL;
        memcpy(s->domain, domain, dlen);
        s->next = x->servers;
        x->servers = s;
        x->n_servers++;
        snprintf(s->from, sizeof s->from, "%s", from);
        bx33_discover(b, s);
    } else {
        uint64_t age = now - s->since_ms;
        if ((s->state == BX33_YES && age > BX33_TTL_YES_MS) || (s->state == BX33_NO && age > BX33_TTL_NO_MS)) {
            snprintf(s->from, sizeof s->from, "%s", from);
            bx33_discover(b, s);
        } else if (s->state < BX33_YES && age > BX33_ASK_MS) {
            bx33_conclude(b, s, NULL, "no answer to discovery");
        }
    }
    return s->state == BX33_YES || (s->state != BX33_NO && s->service[0]) ? s : NULL;
}

/* One copy of tmpl to `to`. */
static int bx33_single(bridge *b, const xml_node *tmpl, const char *to)
{
    xml_node *st = xml_node_copy(tmpl);
    if (!st || xml_attr_set(st, "to", to) != 0) {
        xml_node_free(st);
        return 0;
    }
    b->x33->stats.single++;
    bridge_send_xmpp(b, st);
    return 1;
}

/* Durable counters (the store's, like the other metrics that survive
 * restarts). */
static void bx33_count(bridge *b, const char *name, int64_t n)
{
    if (b->g->store)
        store_counter_add(b->g->store, name, n);
}

/* The recipients of one server, in `limit`-sized XEP-0033 stanzas.
 * Returns how many were addressed. */
static size_t bx33_multicast(bridge *b, const bx33_server *s, const xml_node *tmpl, const char *const *rcpt,
                             size_t n)
{
    unsigned limit = xml_is(tmpl, "message", NULL) ? s->lim.message : s->lim.presence;
    if (limit == 0 || limit > XEP33_MAX_ADDRESSES)
        limit = XEP33_MAX_ADDRESSES;
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < limit ? n - done : limit;
        xml_node *m = k > 1 ? xep33_build(tmpl, s->service, rcpt + done, k) : NULL;
        if (!m) {
            for (size_t i = 0; i < k; i++)
                bx33_single(b, tmpl, rcpt[done + i]);
        } else {
            b->x33->stats.stanzas++;
            b->x33->stats.recipients += k;
            bx33_count(b, "xep33_stanzas", 1);
            bx33_count(b, "xep33_recipients", (int64_t)k);
            log_info(COMP, s->service, "<%s/> from %s -> one XEP-0033 stanza to %s for %zu recipients "
                     "(so far %llu stanzas for %llu recipients)", tmpl->name,
                     xml_attr_get(tmpl, "from") ? xml_attr_get(tmpl, "from") : "-", s->service, k,
                     (unsigned long long)b->x33->stats.stanzas, (unsigned long long)b->x33->stats.recipients);
            bridge_send_xmpp(b, m);
        }
        done += k;
    }
    return n;
}

typedef struct bx33_rcpt {
    const char *jid, *domain;
    size_t dlen;
} bx33_rcpt;

static int bx33_by_domain(const void *a, const void *b)
{
    const bx33_rcpt *x = a, *y = b;
    size_t n = x->dlen < y->dlen ? x->dlen : y->dlen;
    int c = strncmp(x->domain, y->domain, n);
    return c ? c : (x->dlen > y->dlen) - (x->dlen < y->dlen);
}

size_t bridge_xep33_fanout(bridge *b, const xml_node *tmpl, const char *const *jids, size_t n)
{
    if (n == 0)
        return 0;
    bx33_rcpt *r = calloc(n, sizeof *r);
    const char **list = calloc(n, sizeof *list);
    size_t sent = 0;
    if (!r || !list || !b->x33) { /* out of memory: one each, as far as it goes */
        for (size_t i = 0; i < n; i++)
            sent += (size_t)bx33_single(b, tmpl, jids[i]);
        free(r);
        free(list);
        return sent;
    }
    for (size_t i = 0; i < n; i++) {
        r[i].jid = jids[i];
        r[i].domain = bx33_domain(jids[i], &r[i].dlen);
    }
    qsort(r, n, sizeof *r, bx33_by_domain);
    const char *from = xml_attr_get(tmpl, "from");
    size_t flen = 0;
    const char *fdom = from ? bx33_domain(from, &flen) : "";
    char our[256];
    snprintf(our, sizeof our, "%.*s", (int)flen, fdom);
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i; j < n && bx33_by_domain(&r[i], &r[j]) == 0; j++)
            list[j - i] = r[j].jid;
        /* A server with one recipient gains nothing: not even asked. */
        const bx33_server *s = j - i > 1 && our[0] ? bx33_lookup(b, r[i].domain, r[i].dlen, our) : NULL;
        if (s) {
            sent += bx33_multicast(b, s, tmpl, list, j - i);
        } else {
            for (size_t k = 0; k < j - i; k++)
                sent += (size_t)bx33_single(b, tmpl, list[k]);
        }
    }
    free(r);
    free(list);
    return sent;
}

/* ---- discovery answers --------------------------------------------- */

static bx33_server *bx33_by_id(bridge_xep33 *x, const char *id)
{
    for (bx33_server *s = x->servers; s; s = s->next)
        if (s->id[0] && strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

static void bx33_on_info(bridge *b, bx33_server *s, const xml_node *iq, const char *from)
{
    int rc = xep33_disco_info(iq, &s->lim);
    if (s->state == BX33_INFO) {
        if (rc == 1) {
            bx33_conclude(b, s, s->domain, NULL);
            return;
        }
        /* §2.2: not the server itself; perhaps one of its services. */
        bx33_next(b, s, BX33_ITEMS);
        if (bx33_send_query(b, s, s->domain, 1) != 0)
            bx33_conclude(b, s, NULL, "cannot ask for its items");
        return;
    }
    for (unsigned i = 0; i < BX33_MAX_ITEMS; i++) {
        if (!(s->waiting & (1u << i)) || strcmp(s->items[i], from) != 0)
            continue;
        s->waiting &= ~(1u << i);
        if (rc == 1) {
            bx33_conclude(b, s, from, NULL);
            return;
        }
    }
    if (!s->waiting)
        bx33_conclude(b, s, NULL, "neither the server nor its items advertise " XEP33_NS);
}

static void bx33_on_items(bridge *b, bx33_server *s, const xml_node *iq)
{
    const char *items[BX33_MAX_ITEMS];
    size_t n = xep33_disco_items(iq, items, BX33_MAX_ITEMS), k = 0;
    char copy[BX33_MAX_ITEMS][256];
    for (size_t i = 0; i < n; i++) /* never ourselves: we would multicast to us */
        if (strcmp(items[i], s->domain) != 0 && !bridge_has_face(b, items[i]) && strlen(items[i]) < 256)
            snprintf(copy[k++], sizeof copy[0], "%s", items[i]);
    if (k == 0) {
        bx33_conclude(b, s, NULL, "its disco#info does not list " XEP33_NS " and it has no items to ask");
        return;
    }
    bx33_next(b, s, BX33_ITEM_INFO);
    s->waiting = 0;
    for (size_t i = 0; i < k; i++) {
        memcpy(s->items[i], copy[i], sizeof copy[i]);
        if (bx33_send_query(b, s, s->items[i], 0) == 0)
            s->waiting |= 1u << i;
    }
    if (!s->waiting)
        bx33_conclude(b, s, NULL, "cannot ask its items");
}

/* An answer (result or error) to one of our queries. */
static void bx33_on_answer(bridge *b, const xml_node *iq)
{
    const char *id = xml_attr_get(iq, "id"), *from = xml_attr_get(iq, "from");
    bx33_server *s = bx33_by_id(b->x33, id);
    if (!s || !from) {
        log_debug(COMP, from, "late or unknown discovery answer %s dropped", id);
        return;
    }
    if (s->state == BX33_INFO || s->state == BX33_ITEMS) {
        if (strcmp(from, s->domain) != 0)
            return; /* not from whom we asked */
        const char *type = xml_attr_get(iq, "type");
        if (s->state == BX33_INFO)
            bx33_on_info(b, s, iq, from);
        else if (strcmp(type, "error") == 0)
            bx33_conclude(b, s, NULL, "its disco#items failed");
        else
            bx33_on_items(b, s, iq);
    } else if (s->state == BX33_ITEM_INFO) {
        bx33_on_info(b, s, iq, from);
    }
}

/* ---- receiving ------------------------------------------------------ */

static int bx33_ours(void *ud, const char *jid)
{
    return bridge_has_face(ud, jid);
}

static void bx33_expand(bridge *b, xml_node *st)
{
    size_t n = 0;
    const char *cond = xep33_check(st, bx33_ours, b, &n);
    const char *from = xml_attr_get(st, "from");
    if (cond) {
        b->x33->stats.refused++;
        bx33_count(b, "xep33_refused", 1);
        log_info(COMP, from, "XEP-0033 <%s/> from %s to %s refused with <%s/>", st->name, from ? from : "-",
                 xml_attr_get(st, "to"), cond);
        xml_node *err = routing_error_reply(st, cond);
        if (err)
            bridge_send_xmpp(b, err);
        xml_node_free(st);
        return;
    }
    xml_node **out = calloc(n, sizeof *out);
    size_t k = out ? xep33_expand(st, out, n) : 0;
    if (k == 0) {
        log_warn(COMP, from, "out of memory expanding a XEP-0033 <%s/> from %s: dropped", st->name,
                 from ? from : "-");
    } else {
        b->x33->stats.expanded++;
        bx33_count(b, "xep33_expanded", 1);
        log_info(COMP, from, "XEP-0033 <%s/> from %s to %s expanded to %zu recipients", st->name,
                 from ? from : "-", xml_attr_get(st, "to"), k);
    }
    xml_node_free(st);
    /* Each copy takes the normal path (presence copies meet the
     * coalescer there and leave as one multicast per PSYC host). */
    for (size_t i = 0; i < k; i++) {
        char domain[256];
        size_t dlen;
        const char *d = bx33_domain(xml_attr_get(out[i], "to"), &dlen);
        snprintf(domain, sizeof domain, "%.*s", (int)dlen, d);
        bridge_from_xmpp(b, out[i], domain);
    }
    free(out);
}

/* 1 when st has addresses left to deliver (or is malformed: refused). */
static int bx33_pending(const xml_node *st)
{
    xep33_address a[XEP33_MAX_ADDRESSES];
    size_t n;
    int rc = xep33_parse(st, a, XEP33_MAX_ADDRESSES, &n);
    for (size_t i = 0; rc == 1 && i < n; i++)
        if (!a[i].delivered && (strcmp(a[i].type, "to") == 0 || strcmp(a[i].type, "cc") == 0 ||
                                strcmp(a[i].type, "bcc") == 0))
            return 1;
    return rc < 0;
}

int bridge_xep33_from_xmpp(bridge *b, xml_node *st, const char *domain)
{
    if (!b->x33)
        return 0;
    const char *id = xml_attr_get(st, "id"), *type = xml_attr_get(st, "type"), *to = xml_attr_get(st, "to");
    if (xml_is(st, "iq", NULL) && id && type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0) &&
        strncmp(id, BX33_ID_PREFIX, sizeof BX33_ID_PREFIX - 1) == 0) {
        bx33_on_answer(b, st);
        xml_node_free(st);
        return 1;
    }
    /* Addressed to the service (our bare domain), with something left to
     * deliver; copies we made carry every address as delivered. */
    if (!to || strcmp(to, domain) != 0 || xml_is(st, "iq", NULL) || !bx33_pending(st))
        return 0;
    bx33_expand(b, st);
    return 1;
}
