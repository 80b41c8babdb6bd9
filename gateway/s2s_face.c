/* s2s_face.c: the XMPP S2S face (see s2s_face.h). */
#include "gateway/s2s_face.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "gateway/log.h"
#include "gateway/net.h"
#include "gateway/s2s_conn.h"
#include "gateway/s2s_secret.h"
#include "routing/routing.h"
#include "xmpp/jid.h"
#include "xmpp/s2s.h"

#define COMP "s2s"
#define FACE_TICK_MS 1000u          /* give-up, ping and idle checks */
#define FACE_STOP_BOUND_MS 2000u    /* gw_stop: peers get this long to close */
#define FACE_MAX_QUEUE 1000u        /* stanzas per link waiting for DNS/connect */
#define FACE_PING_TIMEOUT_MAX_MS 60000u
#define FACE_DIALBACK_TIMEOUT_MS 30000u /* per db:result / db:verify (XEP-0220 has none) */
#define FACE_LOCAL_DEPTH_MAX 4      /* local answers to local senders: no loops */
#define LISTEN_BACKLOG 128

typedef struct face_listener {
    uv_tcp_t tcp;
    s2s_face *f;
    char name[64];
    int open;
} face_listener;

/* A db:verify to ask (XEP-0220 §2.1.2) once the link's stream exists. */
typedef struct face_verify {
    char *from, *to, *id, *key; /* from: our domain, to: the authoritative one */
} face_verify;

/* The outgoing side for one (our domain, remote domain): DNS, candidates,
 * the current connection, what waits for it. */
typedef struct face_link {
    struct face_link *prev, *next;
    s2s_face *f;
    char *from, *to;
    int verify_only;              /* a XEP-0220 §2.1.2 verify stream */
    dns_req *dreq;
    dns_candidate *cands;
    size_t ncands, next_cand;
    s2s_conn *conn;
    xml_node **q;                 /* stanzas waiting for a connected stream */
    size_t nq, capq;
    face_verify *v;
    size_t nv;
    uint64_t wait_since;          /* give-up clock; 0 while authenticated */
    int authenticated;
    int reconnects;               /* new streams after a loss, since the last success */
    int giving_up;
    char last_error[400];
    char ping_id[40];             /* outstanding XEP-0199 ping, "" none */
    uint64_t ping_sent, last_stanza;
} face_link;

struct s2s_face {
    uv_loop_t *loop;
    const cfg *cfg;
    dns *dns;
    tls_ctx *tls;
    const char *const *domains;   /* [s2s] domain, or host_only */
    size_t ndomains;
    const char *host_only[2];     /* { [gateway] host, NULL } */
    int *have_cert;               /* per domain: SASL EXTERNAL worth trying */
    char secret[S2S_SECRET_HEX_LEN + 1];
    s2s_tls_policy tlspol;
    uint64_t idle_ms, ping_ms, give_up_ms;
    face_listener *ls;
    size_t nls;
    s2s_conn *in;                 /* incoming connections */
    size_t nin, nout;
    face_link *links;
    size_t nlinks;
    uv_timer_t tick;
    int tick_live;
    int stopping;
    int local_depth;
    uint64_t ping_seq;
    s2s_face_local_fn local_fn;   /* who takes stanzas for our domains */
    void *local_ud;
};

static void link_try(face_link *l);
static void link_free(face_link *l);
static void face_local(s2s_face *f, xml_node *st, const char *domain);

static uint64_t face_now(const s2s_face *f)
{
    return uv_now(f->loop);
}

static int face_domain_index(const s2s_face *f, const char *d)
{
    for (size_t i = 0; d && i < f->ndomains; i++)
        if (strcmp(f->domains[i], d) == 0)
            return (int)i;
    return -1;
}


static const char *attr_or(const xml_node *st, const char *name)
{
    const char *v = st ? xml_attr_get(st, name) : NULL;
    return v ? v : "-";
}

/* ------------------------------------------------------------------ */
/* Returning stanzas to their senders                                  */

/* RFC 6120 §8.3: the stanza goes back to its sender as an error (which
 * itself travels like any stanza); an error is never answered. */
static void face_bounce(s2s_face *f, xml_node *st, const char *cond, const char *why)
{
    if (!st)
        return;
    if (f->stopping) {
        log_info(COMP, NULL, "dropped <%s/> from %s to %s: %s (shutting down)", st->name,
                 attr_or(st, "from"), attr_or(st, "to"), why ? why : cond);
        xml_node_free(st);
        return;
    }
    xml_node *err = routing_error_reply(st, cond);
    log_info(COMP, NULL, "bounced <%s/> from %s to %s with <%s/>: %s%s", st->name, attr_or(st, "from"),
             attr_or(st, "to"), cond, why ? why : "", err ? "" : " (not answered: an error or a result)");
    xml_node_free(st);
    if (err)
        s2s_face_send(f, err);
}

/* ------------------------------------------------------------------ */
/* Incoming connections                                                */

static face_link *face_find_link(s2s_face *f, const char *from, const char *to, int verify_only)
{
    for (face_link *l = f->links; l; l = l->next)
        if (!l->giving_up && l->verify_only == verify_only && strcmp(l->from, from) == 0 &&
            strcmp(l->to, to) == 0)
            return l;
    return NULL;
}

/* A VERIFY_RESULT reaches the s2s_in that asked (by its stream id). */
static void face_verify_answer(s2s_face *f, const char *auth, const char *ours, const char *id,
                               s2s_db_result r, const char *cond)
{
    for (s2s_conn *c = f->in; c; c = c->next)
        if (s2s_conn_verify_result(c, auth, ours, id, r, cond))
            return;
    log_debug(COMP, NULL, "dialback verdict for %s -> %s id=%s: the stream that asked is gone", auth,
              ours, id ? id : "-");
}

static face_link *link_new(s2s_face *f, const char *from, const char *to, int verify_only);

static void link_add_verify(face_link *l, const char *ours, const char *auth, const char *id, const char *key)
{
    face_verify *nv = realloc(l->v, (l->nv + 1) * sizeof *nv);
    if (nv) {
        l->v = nv;
        face_verify *v = &nv[l->nv];
        *v = (face_verify){strdup(ours), strdup(auth), strdup(id), strdup(key)};
        if (v->from && v->to && v->id && v->key) {
            l->nv++;
            return;
        }
        free(v->from);
        free(v->to);
        free(v->id);
        free(v->key);
    }
    face_verify_answer(l->f, auth, ours, id, S2S_DB_ERROR, "internal-server-error");
}

/* VERIFY_KEY (XEP-0220 §2.1.2): ask the authoritative server `auth`
 * whether `key` is its key for (ours, auth, id): over a stream we already
 * have to it (Prosody does the same), or over a verify-only one. */
static void face_verify_key(s2s_face *f, const char *auth, const char *ours, const char *id, const char *key)
{
    face_link *l = face_find_link(f, ours, auth, 0);
    if (l && l->conn && l->conn->out && s2s_conn_ready(l->conn) &&
        s2s_conn_verify(l->conn, ours, auth, id, key) == 0)
        return;
    if (!l || (l->conn && l->conn->out))
        l = face_find_link(f, ours, auth, 1);
    if (l && l->conn && l->conn->out) {
        if (s2s_conn_ready(l->conn) && s2s_conn_verify(l->conn, ours, auth, id, key) == 0)
            return;
        l = NULL; /* closing: a new verify stream */
    }
    if (!l)
        l = link_new(f, ours, auth, 1);
    if (!l) {
        face_verify_answer(f, auth, ours, id, S2S_DB_ERROR, "internal-server-error");
        return;
    }
    link_add_verify(l, ours, auth, id, key);
}

/* An answer to one of our XEP-0199 pings: it clears the link's alarm. */
static int face_ping_answer(s2s_face *f, const xml_node *st, const char *from_dom, const char *to_dom)
{
    const char *type = xml_attr_get(st, "type"), *id = xml_attr_get(st, "id");
    if (!xml_is(st, "iq", NULL) || !type || !id ||
        (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
        return 0;
    for (face_link *l = f->links; l; l = l->next)
        if (l->ping_id[0] && strcmp(l->ping_id, id) == 0 && strcmp(l->to, from_dom) == 0 &&
            strcmp(l->from, to_dom) == 0) {
            log_debug(COMP, l->conn ? l->conn->peer : NULL, "ping %s -> %s answered (%s) in %llu ms",
                      l->from, l->to, type, (unsigned long long)(face_now(f) - l->ping_sent));
            l->ping_id[0] = '\0';
            return 1;
        }
    return 0;
}

static void in_on_action(s2s_conn *c, s2s_action *a)
{
    s2s_face *f = c->owner;
    switch (a->kind) {
    case S2S_ACT_STANZA: {
        xml_node *st = a->stanza;
        a->stanza = NULL;
        if (face_ping_answer(f, st, a->from, a->to)) {
            xml_node_free(st);
            break;
        }
        face_local(f, st, a->to);
        break;
    }
    case S2S_ACT_VERIFY_KEY:
        /* XEP-0220 §2.4: our own stream to that peer tells whether it
         * understands dialback errors (<errors/> in its features). */
        for (face_link *l = f->links; l; l = l->next)
            if (l->conn && l->conn->out && strcmp(l->to, a->from) == 0 &&
                s2s_out_peer_dialback_errors(l->conn->out)) {
                s2s_in_set_peer_dialback_errors(c->in, 1);
                break;
            }
        if (f->stopping)
            s2s_conn_verify_result(c, a->from, a->to, a->id, S2S_DB_ERROR, "remote-server-timeout");
        else
            face_verify_key(f, a->from, a->to, a->id, a->key);
        break;
    default:
        break;
    }
}

static void in_on_free(s2s_conn *c)
{
    s2s_face *f = c->owner;
    if (c->prev)
        c->prev->next = c->next;
    else
        f->in = c->next;
    if (c->next)
        c->next->prev = c->prev;
    f->nin--;
}

static const s2s_conn_hooks in_hooks = {.on_action = in_on_action, .on_free = in_on_free};

static void face_on_connection(uv_stream_t *server, int status)
{
    face_listener *fl = server->data;
    s2s_face *f = fl->f;
    if (status < 0) {
        log_warn(COMP, fl->name, "incoming S2S connection failed: %s", uv_strerror(status));
        return;
    }
    if (f->stopping)
        return;
    uint64_t max = cfg_get_uint(f->cfg, "gateway", "max_incoming");
    if (f->nin >= max) {
        net_peer peer;
        net_accept_and_drop(server, &peer);
        log_warn(COMP, fl->name, "refused an S2S connection from %s: %zu incoming streams open "
                 "([gateway] max_incoming)", peer.text, f->nin);
        return;
    }
    s2s_in_config ic = {
        .domains = f->domains,
        .ndomains = f->ndomains,
        .secret = f->secret,
        .secret_len = strlen(f->secret),
        .tls = f->tlspol,
        .tls_available = f->tls && tls_ctx_can_serve(f->tls),
        /* The peer has this long to authenticate a first pair; a dialback
         * verification against its DNS may take most of it. */
        .auth_timeout_ms = f->give_up_ms,
        .idle_timeout_ms = f->idle_ms,
    };
    s2s_conn *c = s2s_conn_accept(server, f->tls, &ic, &in_hooks, f);
    if (!c)
        return;
    c->prev = NULL;
    c->next = f->in;
    if (f->in)
        f->in->prev = c;
    f->in = c;
    f->nin++;
}

/* ------------------------------------------------------------------ */
/* Local delivery (the core boundary)                                  */

static void face_local(s2s_face *f, xml_node *st, const char *domain)
{
    if (f->local_depth >= FACE_LOCAL_DEPTH_MAX) {
        log_warn(COMP, NULL, "dropped <%s/> from %s to %s: local answer loop", st->name,
                 attr_or(st, "from"), attr_or(st, "to"));
        xml_node_free(st);
        return;
    }
    f->local_depth++;
    if (f->local_fn) {
        f->local_fn(f->local_ud, st, domain);
        f->local_depth--;
        return;
    }
    const char *why = NULL;
    xml_node *reply = routing_xmpp_local(st, domain, &why);
    if (reply) {
        const xml_node *ec = xml_child(reply, "error", NULL);
        log_info(COMP, NULL, "%s <%s/> from %s to %s%s%s", ec ? "refused" : "answered", st->name,
                 attr_or(st, "from"), attr_or(st, "to"), ec ? " with <service-unavailable/>" : "",
                 ec ? ": no such service" : "");
        s2s_face_send(f, reply);
    } else {
        log_debug(COMP, NULL, "dropped <%s/> type=%s from %s to %s: %s", st->name, attr_or(st, "type"),
                  attr_or(st, "from"), attr_or(st, "to"), why ? why : "-");
    }
    xml_node_free(st);
    f->local_depth--;
}

/* ------------------------------------------------------------------ */
/* Outgoing links                                                      */

static void link_drop_pending(face_link *l, const char *stanza_cond, const char *verify_cond,
                              const char *why)
{
    /* Detach first: bouncing may send (and queue) on other links. */
    xml_node **q = l->q;
    size_t nq = l->nq;
    face_verify *v = l->v;
    size_t nv = l->nv;
    l->q = NULL;
    l->nq = l->capq = 0;
    l->v = NULL;
    l->nv = 0;
    for (size_t i = 0; i < nq; i++)
        face_bounce(l->f, q[i], stanza_cond, why);
    for (size_t i = 0; i < nv; i++) {
        face_verify_answer(l->f, v[i].to, v[i].from, v[i].id, S2S_DB_ERROR, verify_cond);
        free(v[i].from);
        free(v[i].to);
        free(v[i].id);
        free(v[i].key);
    }
    free(q);
    free(v);
}

/* The link cannot deliver: everything waiting goes back, then the link
 * goes (or, with a connection, once that has closed). */
static void link_fail(face_link *l, const char *stanza_cond, const char *verify_cond, const char *why)
{
    log_warn(COMP, l->conn ? l->conn->peer : NULL, "s2s-out %s -> %s failed: %s (%zu stanzas, %zu verifications waiting)",
             l->from, l->to, why, l->nq, l->nv);
    l->giving_up = 1;
    if (l->dreq) {
        dns_cancel(l->dreq);
        l->dreq = NULL;
    }
    link_drop_pending(l, stanza_cond, verify_cond, why);
    if (l->conn)
        s2s_conn_abort(l->conn, why);
    else
        link_free(l);
}

static void link_free(face_link *l)
{
    s2s_face *f = l->f;
    if (l->dreq)
        dns_cancel(l->dreq);
    for (size_t i = 0; i < l->nq; i++)
        xml_node_free(l->q[i]);
    for (size_t i = 0; i < l->nv; i++) {
        free(l->v[i].from);
        free(l->v[i].to);
        free(l->v[i].id);
        free(l->v[i].key);
    }
    if (l->prev)
        l->prev->next = l->next;
    else
        f->links = l->next;
    if (l->next)
        l->next->prev = l->prev;
    f->nlinks--;
    free(l->q);
    free(l->v);
    free(l->cands);
    free(l->from);
    free(l->to);
    free(l);
}

static int link_enqueue(face_link *l, xml_node *st)
{
    if (l->nq >= FACE_MAX_QUEUE)
        return -1;
    if (l->nq == l->capq) {
        size_t cap = l->capq ? 2 * l->capq : 8;
        xml_node **nq = realloc(l->q, cap * sizeof *nq);
        if (!nq)
            return -1;
        l->q = nq;
        l->capq = cap;
    }
    l->q[l->nq++] = st;
    return 0;
}

static void out_on_action(s2s_conn *c, s2s_action *a)
{
    face_link *l = c->owner;
    s2s_face *f = l->f;
    switch (a->kind) {
    case S2S_ACT_AUTHENTICATED:
        l->authenticated = 1;
        l->last_error[0] = '\0';
        l->wait_since = 0;
        l->reconnects = 0;
        l->last_stanza = face_now(f);
        break;
    case S2S_ACT_AUTH_FAILED:
        log_warn(COMP, c->peer, "s2s-out: %s -> %s not authenticated: %s", a->from ? a->from : "?",
                 a->to ? a->to : "?", a->text ? a->text : "dialback failed");
        snprintf(l->last_error, sizeof l->last_error, "%s: %s", c->peer, a->text ? a->text : "dialback failed");
        break;
    case S2S_ACT_BOUNCE: {
        xml_node *st = a->stanza;
        a->stanza = NULL;
        /* A lost stream (EOF, RST) gets one successor before its stanzas
         * bounce: the peer may just have restarted. */
        if (!f->stopping && c->lost && !l->giving_up && l->reconnects < 1 && link_enqueue(l, st) == 0)
            break;
        face_bounce(f, st, a->stanza_error ? a->stanza_error : "remote-server-timeout",
                    c->reason[0] ? c->reason : l->last_error[0] ? l->last_error : "stream closed");
        break;
    }
    case S2S_ACT_VERIFY_RESULT:
        face_verify_answer(f, a->from, a->to, a->id, a->result,
                           a->result == S2S_DB_ERROR ? (c->lost ? "remote-connection-failed"
                                                                : "remote-server-timeout")
                                                     : NULL);
        break;
    default:
        break;
    }
}

/* The TCP connection is up: what waited in the link moves into the
 * machine (which holds it until its pair is authenticated). */
static void out_on_connected(s2s_conn *c)
{
    face_link *l = c->owner;
    xml_node **q = l->q;
    size_t nq = l->nq;
    l->q = NULL;
    l->nq = l->capq = 0;
    for (size_t i = 0; i < nq; i++) {
        s2s_send_result r = s2s_conn_send(c, q[i]);
        if (r == S2S_SEND_OK)
            continue;
        if (r == S2S_SEND_CLOSED && link_enqueue(l, q[i]) == 0)
            continue;
        face_bounce(l->f, q[i], r == S2S_SEND_FULL ? "resource-constraint" : "remote-server-not-found",
                    "the stream refused it");
    }
    free(q);
    face_verify *v = l->v;
    size_t nv = l->nv;
    l->v = NULL;
    l->nv = 0;
    for (size_t i = 0; i < nv; i++) {
        if (s2s_conn_verify(c, v[i].from, v[i].to, v[i].id, v[i].key) != 0)
            face_verify_answer(l->f, v[i].to, v[i].from, v[i].id, S2S_DB_ERROR, "remote-connection-failed");
        free(v[i].from);
        free(v[i].to);
        free(v[i].id);
        free(v[i].key);
    }
    free(v);
}

static void out_on_free(s2s_conn *c)
{
    face_link *l = c->owner;
    s2s_face *f = l->f;
    l->conn = NULL;
    f->nout--;
    l->authenticated = 0;
    l->ping_id[0] = '\0';
    if (f->stopping || l->giving_up) {
        link_drop_pending(l, "remote-server-timeout", "remote-server-timeout", c->reason);
        link_free(l);
        return;
    }
    if (!c->connected) {
        snprintf(l->last_error, sizeof l->last_error, "%s: %s", c->peer, c->reason);
        link_try(l); /* the next candidate */
        return;
    }
    if (l->nq == 0 && l->nv == 0) {
        link_free(l);
        return;
    }
    if (c->lost) {
        if (l->reconnects >= 1) {
            link_fail(l, "remote-server-not-found", "remote-connection-failed", c->reason);
            return;
        }
        l->reconnects++;
        log_info(COMP, c->peer, "s2s-out %s -> %s lost (%s); new stream for %zu queued stanzas", l->from,
                 l->to, c->reason, l->nq);
    }
    /* A closed stream with stanzas that came while it closed: a new one. */
    l->wait_since = face_now(f);
    l->next_cand = 0;
    link_try(l);
}

static const s2s_conn_hooks out_hooks = {
    .on_action = out_on_action, .on_connected = out_on_connected, .on_free = out_on_free};

/* Connects to the next candidate (RFC 6120 §3.2.1: in order, first that
 * works); none left: the domain is unreachable. */
static void link_try(face_link *l)
{
    s2s_face *f = l->f;
    int fi = face_domain_index(f, l->from);
    while (l->next_cand < l->ncands) {
        const dns_candidate *cand = &l->cands[l->next_cand++];
        char peer[96];
        if (cand->addr.family == AF_INET6)
            snprintf(peer, sizeof peer, "[%s]:%u", cand->addr.ip, (unsigned)cand->port);
        else
            snprintf(peer, sizeof peer, "%s:%u", cand->addr.ip, (unsigned)cand->port);
        s2s_out_config oc = {
            .from = l->from,
            .to = l->to,
            .secret = f->secret,
            .secret_len = strlen(f->secret),
            .mode = l->verify_only ? S2S_OUT_VERIFY : S2S_OUT_NORMAL,
            .tls = f->tls ? f->tlspol : S2S_TLS_NONE,
            .tls_available = f->tls != NULL,
            .have_cert = fi >= 0 && f->have_cert[fi],
            .negotiation_timeout_ms = f->give_up_ms,
            .dialback_timeout_ms = FACE_DIALBACK_TIMEOUT_MS,
        };
        log_info(COMP, peer, "s2s-out %s -> %s: connecting to %s (%s)%s", l->from, l->to, cand->host,
                 peer, l->verify_only ? " to verify a dialback key" : "");
        l->conn = s2s_conn_connect(f->loop, f->tls, (const struct sockaddr *)&cand->addr.sa, peer, &oc,
                                   &out_hooks, l);
        if (l->conn) {
            f->nout++;
            return;
        }
    }
    char why[700];
    snprintf(why, sizeof why, "no server of %s reachable (last: %s)", l->to,
             l->last_error[0] ? l->last_error : "none");
    link_fail(l, "remote-server-not-found", "remote-connection-failed", why);
}

static void link_on_dns(const dns_service_result *res, void *arg)
{
    face_link *l = arg;
    l->dreq = NULL;
    if (res->status == DNS_ECANCELLED)
        return;
    if (res->status != DNS_OK) {
        char why[700];
        snprintf(why, sizeof why, "DNS for %s: %s", l->to, dns_strerror(res->status));
        link_fail(l, "remote-server-not-found", "remote-server-not-found", why);
        return;
    }
    free(l->cands);
    l->cands = malloc(res->n_candidates * sizeof *l->cands);
    if (!l->cands) {
        l->ncands = 0;
        link_fail(l, "remote-server-not-found", "remote-server-not-found", "out of memory");
        return;
    }
    memcpy(l->cands, res->candidates, res->n_candidates * sizeof *l->cands);
    l->ncands = res->n_candidates;
    l->next_cand = 0;
    log_debug(COMP, NULL, "s2s-out %s -> %s: %zu candidates", l->from, l->to, l->ncands);
    link_try(l);
}

static face_link *link_new(s2s_face *f, const char *from, const char *to, int verify_only)
{
    face_link *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->f = f;
    l->from = strdup(from);
    l->to = strdup(to);
    l->verify_only = verify_only;
    l->wait_since = l->last_stanza = face_now(f);
    if (!l->from || !l->to) {
        free(l->from);
        free(l->to);
        free(l);
        return NULL;
    }
    l->next = f->links;
    if (f->links)
        f->links->prev = l;
    f->links = l;
    f->nlinks++;
    /* RFC 6120 §3.2: SRV _xmpp-server._tcp, then the domain itself. */
    l->dreq = dns_resolve_service(f->dns, DNS_SVC_XMPP_SERVER, to, link_on_dns, l);
    if (!l->dreq) {
        /* No callback will come: fail from the next tick, not inside the
         * caller (which is about to queue on l). */
        snprintf(l->last_error, sizeof l->last_error, "DNS resolver unavailable");
        l->wait_since = 1; /* the tick gives up at once */
    }
    return l;
}

static int link_send(face_link *l, xml_node *st)
{
    if (l->conn && s2s_conn_ready(l->conn)) {
        s2s_send_result r = s2s_conn_send(l->conn, st);
        if (r == S2S_SEND_OK) {
            l->last_stanza = face_now(l->f);
            return 0;
        }
        if (r != S2S_SEND_CLOSED) {
            face_bounce(l->f, st, r == S2S_SEND_FULL ? "resource-constraint" : "remote-server-not-found",
                        r == S2S_SEND_FULL ? "queue full" : "the pair cannot be authenticated");
            return -1;
        }
    }
    if (link_enqueue(l, st) != 0) {
        face_bounce(l->f, st, "resource-constraint", "too many stanzas waiting");
        return -1;
    }
    if (!l->conn && !l->dreq && l->ncands && l->next_cand >= l->ncands) {
        l->next_cand = 0; /* a link left idle after a close: dial again */
        link_try(l);
    }
    return 0;
}

int s2s_face_send(s2s_face *f, xml_node *st)
{
    char to[1024], from[1024];
    if (!st)
        return -1;
    if (jid_domain_cstr(xml_attr_get(st, "to"), to, sizeof to) != 0 ||
        jid_domain_cstr(xml_attr_get(st, "from"), from, sizeof from) != 0) {
        log_warn(COMP, NULL, "dropped <%s/> from %s to %s: no valid 'from' and 'to'", st->name,
                 attr_or(st, "from"), attr_or(st, "to"));
        xml_node_free(st);
        return -1;
    }
    if (face_domain_index(f, to) >= 0) {
        face_local(f, st, to);
        return 0;
    }
    if (face_domain_index(f, from) < 0) {
        /* We speak only for our own domains (RFC 6120 §13.5: no open relay). */
        log_warn(COMP, NULL, "dropped <%s/> from %s to %s: %s is not our domain", st->name,
                 attr_or(st, "from"), attr_or(st, "to"), from);
        xml_node_free(st);
        return -1;
    }
    if (f->stopping) {
        face_bounce(f, st, "remote-server-timeout", "shutting down");
        return -1;
    }
    face_link *l = face_find_link(f, from, to, 0);
    if (!l) {
        /* XEP-0220 §2.6: another of our domains may join an authenticated
         * stream to the same peer; the machine says whether it can. */
        for (face_link *o = f->links; o; o = o->next)
            if (!o->verify_only && !o->giving_up && o->authenticated && strcmp(o->to, to) == 0 &&
                o->conn && s2s_conn_ready(o->conn) && s2s_conn_send(o->conn, st) == S2S_SEND_OK) {
                o->last_stanza = face_now(f);
                return 0;
            }
        l = link_new(f, from, to, 0);
    }
    if (!l) {
        face_bounce(f, st, "internal-server-error", "out of memory");
        return -1;
    }
    return link_send(l, st);
}

/* ------------------------------------------------------------------ */
/* Timers: give-up, XEP-0199 ping, idle (XEP-0190)                     */

static void link_ping(face_link *l, uint64_t now)
{
    s2s_face *f = l->f;
    xml_node *iq = xml_elem_new("iq", NULL);
    snprintf(l->ping_id, sizeof l->ping_id, "psycgate-ping-%llu", (unsigned long long)++f->ping_seq);
    if (!iq || xml_attr_set(iq, "type", "get") != 0 || xml_attr_set(iq, "from", l->from) != 0 ||
        xml_attr_set(iq, "to", l->to) != 0 || xml_attr_set(iq, "id", l->ping_id) != 0 ||
        !xml_elem_add(iq, "ping", ROUTING_NS_PING)) {
        xml_node_free(iq);
        l->ping_id[0] = '\0';
        return;
    }
    l->ping_sent = now;
    log_debug(COMP, l->conn->peer, "s2s-out %s -> %s silent: XEP-0199 ping", l->from, l->to);
    if (s2s_conn_send(l->conn, iq) != S2S_SEND_OK) {
        xml_node_free(iq);
        l->ping_id[0] = '\0';
    }
}

/* Each action changes the link so that it does not trigger again, and may
 * free links (bounces travel): the walk restarts after every action. */
static int face_tick_link(s2s_face *f, face_link *l, uint64_t now)
{
    uint64_t ping_to = f->ping_ms < FACE_PING_TIMEOUT_MAX_MS ? f->ping_ms : FACE_PING_TIMEOUT_MAX_MS;
    if (l->giving_up)
        return 0;
    if (!l->authenticated && l->wait_since && (!l->verify_only || !l->conn) &&
        (l->wait_since == 1 || now - l->wait_since >= f->give_up_ms)) {
        char why[700];
        int dns_gone = l->wait_since == 1;
        if (dns_gone)
            snprintf(why, sizeof why, "%s", l->last_error);
        else
            snprintf(why, sizeof why, "no authenticated stream within %llu s%s%s",
                     (unsigned long long)(f->give_up_ms / 1000u), l->last_error[0] ? "; last: " : "",
                     l->last_error);
        link_fail(l, dns_gone ? "remote-server-not-found" : "remote-server-timeout",
                  dns_gone ? "remote-server-not-found" : "remote-server-timeout", why);
        return 1;
    }
    s2s_conn *c = l->conn;
    if (!l->authenticated || !c || !s2s_conn_ready(c))
        return 0;
    if (l->ping_id[0] && now - l->ping_sent >= ping_to) {
        char why[128];
        snprintf(why, sizeof why, "no answer to XEP-0199 ping within %llu s",
                 (unsigned long long)(ping_to / 1000u));
        l->ping_id[0] = '\0';
        log_warn(COMP, c->peer, "s2s-out %s -> %s: %s; closing", l->from, l->to, why);
        s2s_conn_abort(c, why);
        return 1;
    }
    if (f->idle_ms && !l->ping_id[0] && l->nq == 0 && now - l->last_stanza >= f->idle_ms) {
        s2s_conn_close(c, "idle"); /* XEP-0190 */
        return 1;
    }
    if (f->ping_ms && !l->ping_id[0] && now - c->last_io_ms >= f->ping_ms) {
        link_ping(l, now);
        return 1;
    }
    return 0;
}

static void face_on_tick(uv_timer_t *t)
{
    s2s_face *f = t->data;
    uint64_t now = face_now(f);
again:
    for (face_link *l = f->links; l; l = l->next)
        if (face_tick_link(f, l, now))
            goto again;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                      */

/* SASL EXTERNAL (XEP-0178) is worth offering only with a certificate that
 * names the domain and that a peer can verify: not a self-signed one. */
static int face_cert_usable_for(const cfg *c, const char *domain)
{
    const char *path = cfg_get_str(c, "tls", "certificate");
    char buf[4096];
    if (!path || !*path) {
        snprintf(buf, sizeof buf, "%s/tls/psycgate.crt", cfg_get_str(c, "gateway", "state_dir"));
        path = buf;
    }
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    if (!x)
        return 0;
    int ok = X509_check_host(x, domain, 0, 0, NULL) == 1 &&
             X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) != 0;
    X509_free(x);
    return ok;
}

static int face_listen(s2s_face *f, face_listener *fl, const cfg_addr *a)
{
    fl->f = f;
    cfg_addr_format(a, fl->name, sizeof fl->name);
    struct sockaddr_storage ss;
    int rc = a->family == AF_INET6 ? uv_ip6_addr(a->ip, a->port, (struct sockaddr_in6 *)&ss)
                                   : uv_ip4_addr(a->ip, a->port, (struct sockaddr_in *)&ss);
    if (rc == 0)
        rc = uv_tcp_init(f->loop, &fl->tcp);
    if (rc == 0) {
        fl->open = 1;
        fl->tcp.data = fl;
        rc = uv_tcp_bind(&fl->tcp, (const struct sockaddr *)&ss, a->family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    }
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&fl->tcp, LISTEN_BACKLOG, face_on_connection);
    if (rc < 0) {
        log_error(COMP, NULL, "cannot listen for S2S on %s: %s", fl->name, uv_strerror(rc));
        return rc;
    }
    log_info(COMP, NULL, "listening for XMPP S2S on %s (TLS %s)", fl->name,
             f->tlspol == S2S_TLS_NONE ? "off" : f->tlspol == S2S_TLS_REQUIRED ? "required" : "optional");
    return 0;
}

void s2s_face_set_local(s2s_face *f, s2s_face_local_fn fn, void *ud)
{
    f->local_fn = fn;
    f->local_ud = ud;
}

int s2s_face_serves(const s2s_face *f, const char *domain)
{
    return f && face_domain_index(f, domain) >= 0;
}

int s2s_face_start(uv_loop_t *loop, const cfg *c, dns *d, tls_ctx *tls, s2s_face **out)
{
    *out = NULL;
    s2s_face *f = calloc(1, sizeof *f);
    if (!f) {
        log_error(COMP, NULL, "out of memory");
        return -1;
    }
    f->loop = loop;
    f->cfg = c;
    f->dns = d;
    f->tls = tls;
    f->ndomains = cfg_get_domains(c, "s2s", "domain", &f->domains);
    if (f->ndomains == 0) {
        f->host_only[0] = cfg_get_str(c, "gateway", "host");
        f->domains = f->host_only;
        f->ndomains = 1;
    }
    static const s2s_tls_policy pols[] = {S2S_TLS_NONE, S2S_TLS_OPTIONAL, S2S_TLS_REQUIRED};
    unsigned ch = cfg_get_choice(c, "s2s", "tls");
    f->tlspol = ch < 3 ? pols[ch] : S2S_TLS_OPTIONAL;
    f->idle_ms = cfg_get_uint(c, "s2s", "idle_timeout") * 1000u;
    f->ping_ms = cfg_get_uint(c, "s2s", "ping_interval") * 1000u;
    f->give_up_ms = cfg_get_uint(c, "s2s", "give_up") * 1000u;

    const cfg_addr *addrs = NULL;
    size_t n = cfg_get_addrs(c, "s2s", "listen", &addrs);
    if (f->tlspol == S2S_TLS_REQUIRED && !(tls && tls_ctx_can_serve(tls))) {
        log_error(COMP, NULL, "[s2s] tls = required, but TLS is not available (see [tls])");
        free(f);
        return -1;
    }
    char err[512];
    int created = 0;
    if (s2s_secret_load(cfg_get_str(c, "gateway", "state_dir"), f->secret, &created, err, sizeof err) != 0) {
        log_error(COMP, NULL, "dialback secret: %s", err);
        free(f);
        return -1;
    }
    if (created)
        log_info(COMP, NULL, "created a new dialback secret in %s/%s", cfg_get_str(c, "gateway", "state_dir"),
                 S2S_SECRET_FILE);
    f->have_cert = calloc(f->ndomains, sizeof *f->have_cert);
    f->ls = calloc(n ? n : 1, sizeof *f->ls);
    if (!f->have_cert || !f->ls || uv_timer_init(loop, &f->tick) != 0) {
        log_error(COMP, NULL, "out of memory");
        free(f->have_cert);
        free(f->ls);
        free(f);
        return -1;
    }
    *out = f; /* handles from here on: the caller stops and frees */
    f->tick.data = f;
    f->tick_live = 1;
    uv_timer_start(&f->tick, face_on_tick, FACE_TICK_MS, FACE_TICK_MS);
    for (size_t i = 0; i < f->ndomains; i++) {
        f->have_cert[i] = tls && face_cert_usable_for(c, f->domains[i]);
        log_info(COMP, NULL, "serving %s over S2S (%s)", f->domains[i],
                 f->have_cert[i] ? "SASL EXTERNAL with our certificate, else dialback"
                                 : "dialback; our certificate does not name it or is self-signed");
    }
    for (size_t i = 0; i < n; i++) {
        f->nls = i + 1;
        if (face_listen(f, &f->ls[i], &addrs[i]) != 0)
            return -1;
    }
    return 0;
}

void s2s_face_stop(s2s_face *f, const char *why)
{
    if (!f || f->stopping)
        return;
    f->stopping = 1;
    log_info(COMP, NULL, "stopping the S2S face (%s): %zu incoming and %zu outgoing streams", why,
             f->nin, f->nout);
    for (size_t i = 0; i < f->nls; i++)
        if (f->ls[i].open) {
            f->ls[i].open = 0;
            uv_close((uv_handle_t *)&f->ls[i].tcp, NULL);
            log_info(COMP, NULL, "stopped listening for XMPP S2S on %s", f->ls[i].name);
        }
    if (f->tick_live) {
        f->tick_live = 0;
        uv_close((uv_handle_t *)&f->tick, NULL);
    }
    face_link *next;
    for (face_link *l = f->links; l; l = next) {
        next = l->next;
        if (l->dreq) {
            dns_cancel(l->dreq);
            l->dreq = NULL;
        }
        if (l->nq)
            log_info(COMP, NULL, "s2s-out %s -> %s: dropping %zu queued stanzas (shutting down)", l->from,
                     l->to, l->nq);
        link_drop_pending(l, "remote-server-timeout", "remote-server-timeout", "shutting down");
        if (l->conn)
            s2s_conn_stop(l->conn, "gateway shutting down", FACE_STOP_BOUND_MS);
        else
            link_free(l);
    }
    s2s_conn *cn;
    for (s2s_conn *c = f->in; c; c = cn) {
        cn = c->next;
        s2s_conn_stop(c, "gateway shutting down", FACE_STOP_BOUND_MS);
    }
}

void s2s_face_free(s2s_face *f)
{
    if (!f)
        return;
    while (f->links)
        link_free(f->links);
    OPENSSL_cleanse(f->secret, sizeof f->secret);
    free(f->have_cert);
    free(f->ls);
    free(f);
}

int s2s_face_pair_busy(const s2s_face *f, const char *from, const char *to)
{
    if (!f)
        return 0;
    if (f->stopping)
        return 1; /* what waits is dropped, not written: keep it */
    for (const face_link *l = f->links; l; l = l->next)
        if (!l->verify_only && !l->giving_up && strcmp(l->from, from) == 0 && strcmp(l->to, to) == 0)
            return !l->authenticated || l->nq > 0 || !l->conn || !s2s_conn_ready(l->conn);
    return 0;
}

size_t s2s_face_links(const s2s_face *f)
{
    return f ? f->nlinks : 0;
}

size_t s2s_face_conns(const s2s_face *f)
{
    return f ? f->nin + f->nout : 0;
}
