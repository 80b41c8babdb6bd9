/* metrics.c: the Prometheus text endpoint (see metrics.h). */
#include "gateway/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/net.h"

#define COMP "metrics"
#define METRICS_MAX_CONNS 16
#define METRICS_MAX_HEAD 4096
#define METRICS_TIMEOUT_MS 5000
#define METRICS_PREFIX "psycgate_"

typedef struct metrics_source {
    metrics_source_fn fn;
    void *ud;
} metrics_source;

typedef struct metrics_listener {
    uv_tcp_t tcp;
    metrics *m;
    char name[64];
    int open;
} metrics_listener;

typedef struct metrics_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct metrics_conn *next;
    metrics *m;
    char head[METRICS_MAX_HEAD];
    size_t len;
    int answered;
    int handles;
    net_peer peer;
} metrics_conn;

struct metrics {
    gw *g;
    metrics_listener *ls;
    size_t nls;
    metrics_source *src;
    size_t nsrc;
    metrics_conn *conns;
    size_t nconns;
    uint64_t requests;
    int stopping;
};

struct metrics_out {
    psyc_buf *buf;
    char last[96];   /* the metric whose lines are being written */
    int err;
};

/* ------------------------------------------------------------------ */
/* Exposition format                                                  */

const char *metrics_label(char *buf, size_t size, const char *name, const char *value)
{
    size_t n = (size_t)snprintf(buf, size, "%s=\"", name);
    for (const char *p = value ? value : ""; *p && n + 3 < size; p++) {
        if (*p == '\\' || *p == '"') {
            buf[n++] = '\\';
            buf[n++] = *p;
        } else if (*p == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
        } else {
            buf[n++] = *p;
        }
    }
    if (n + 2 <= size) {
        buf[n++] = '"';
        buf[n] = '\0';
    } else if (size) {
        buf[size - 1] = '\0';
    }
    return buf;
}

const char *metrics_label2(char *buf, size_t size, const char *n1, const char *v1, const char *n2, const char *v2)
{
    char a[300], b[300];
    snprintf(buf, size, "%s,%s", metrics_label(a, sizeof a, n1, v1), metrics_label(b, sizeof b, n2, v2));
    return buf;
}

static void metrics_sample(metrics_out *o, const char *type, const char *name, const char *help,
                           const char *labels, const char *value)
{
    if (strcmp(o->last, name) != 0) {
        snprintf(o->last, sizeof o->last, "%s", name);
        char h[512];
        snprintf(h, sizeof h, "# HELP " METRICS_PREFIX "%s %s\n# TYPE " METRICS_PREFIX "%s %s\n", name, help,
                 name, type);
        o->err |= psyc_buf_puts(o->buf, h);
    }
    o->err |= psyc_buf_puts(o->buf, METRICS_PREFIX);
    o->err |= psyc_buf_puts(o->buf, name);
    if (labels && labels[0]) {
        o->err |= psyc_buf_putc(o->buf, '{');
        o->err |= psyc_buf_puts(o->buf, labels);
        o->err |= psyc_buf_putc(o->buf, '}');
    }
    o->err |= psyc_buf_putc(o->buf, ' ');
    o->err |= psyc_buf_puts(o->buf, value);
    o->err |= psyc_buf_putc(o->buf, '\n');
}

void metrics_counter(metrics_out *o, const char *name, const char *help, const char *labels, uint64_t value)
{
    char v[32];
    snprintf(v, sizeof v, "%" PRIu64, value);
    metrics_sample(o, "counter", name, help, labels, v);
}

void metrics_gauge(metrics_out *o, const char *name, const char *help, const char *labels, int64_t value)
{
    char v[32];
    snprintf(v, sizeof v, "%" PRId64, value);
    metrics_sample(o, "gauge", name, help, labels, v);
}

int metrics_render(metrics *m, psyc_buf *out)
{
    metrics_out o = {.buf = out};
    for (size_t i = 0; m && i < m->nsrc; i++)
        m->src[i].fn(m->src[i].ud, &o);
    return o.err ? PSYC_ERR_NOMEM : 0;
}

int metrics_request_wanted(const char *head, size_t len)
{
    static const char *const paths[] = {"GET /metrics", "GET /"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(paths[i]);
        if (len > n && memcmp(head, paths[i], n) == 0 && (head[n] == ' ' || head[n] == '?'))
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* HTTP                                                               */

static void conn_closed(uv_handle_t *h)
{
    metrics_conn *c = h->data;
    if (--c->handles > 0)
        return;
    metrics *m = c->m;
    for (metrics_conn **pp = &m->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    m->nconns--;
    free(c);
}

static void conn_close(metrics_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void conn_written(uv_stream_t *s, int status)
{
    (void)status;
    conn_close(s->data);
}

static void conn_answer(metrics_conn *c)
{
    c->answered = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    psyc_buf body, out;
    psyc_buf_init(&body);
    psyc_buf_init(&out);
    int wanted = metrics_request_wanted(c->head, c->len);
    int err = 0;
    if (wanted)
        err = metrics_render(c->m, &body);
    else
        err = psyc_buf_puts(&body, "not found: the metrics are at /metrics\n");
    char hdr[200];
    snprintf(hdr, sizeof hdr,
             "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
             err ? "500 Internal Server Error" : wanted ? "200 OK" : "404 Not Found", err ? 0 : body.len);
    err = psyc_buf_puts(&out, hdr) || (!err && body.len && psyc_buf_append(&out, body.data, body.len));
    psyc_buf_free(&body);
    c->m->requests++;
    log_debug(COMP, c->peer.text, "%s", wanted ? "metrics requested" : "request for something else: 404");
    if (err || net_write_buf((uv_stream_t *)&c->tcp, &out, conn_written) != 0) {
        psyc_buf_free(&out);
        conn_close(c);
    }
}

static void conn_alloc(uv_handle_t *h, size_t want, uv_buf_t *buf)
{
    (void)want;
    metrics_conn *c = h->data;
    buf->base = c->head + c->len;
    buf->len = sizeof c->head - 1 - c->len;
}

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    metrics_conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->head[c->len] = '\0';
    /* The head ends with an empty line; a full buffer is answered too. */
    if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n") || c->len >= sizeof c->head - 1)
        conn_answer(c);
}

static void conn_timeout(uv_timer_t *t)
{
    metrics_conn *c = t->data;
    log_debug(COMP, c->peer.text, "no request within %d ms: closed", METRICS_TIMEOUT_MS);
    conn_close(c);
}

static void metrics_on_connection(uv_stream_t *server, int status)
{
    metrics_listener *l = server->data;
    metrics *m = l->m;
    if (status < 0 || m->stopping)
        return;
    if (m->nconns >= METRICS_MAX_CONNS) {
        net_peer peer;
        net_accept_and_drop(server, &peer);
        log_warn(COMP, l->name, "refused %s: %d metrics requests already open", peer.text, METRICS_MAX_CONNS);
        return;
    }
    metrics_conn *c = calloc(1, sizeof *c);
    /* Neither init allocates (libuv creates the socket on accept). */
    if (!c || uv_tcp_init(m->g->loop, &c->tcp) != 0 || uv_timer_init(m->g->loop, &c->timer) != 0) {
        free(c);
        net_accept_and_drop(server, NULL);
        return;
    }
    c->m = m;
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = m->conns;
    m->conns = c;
    m->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    net_tcp_peer(&c->tcp, &c->peer);
    uv_timer_start(&c->timer, conn_timeout, METRICS_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read) != 0)
        conn_close(c);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */

static int metrics_listen(metrics *m, metrics_listener *l, const cfg_addr *a)
{
    struct sockaddr_storage ss;
    cfg_addr_format(a, l->name, sizeof l->name);
    l->m = m;
    int rc = a->family == AF_INET6 ? uv_ip6_addr(a->ip, a->port, (struct sockaddr_in6 *)&ss)
                                   : uv_ip4_addr(a->ip, a->port, (struct sockaddr_in *)&ss);
    if (rc == 0)
        rc = uv_tcp_init(m->g->loop, &l->tcp);
    if (rc == 0) {
        l->tcp.data = l;
        l->open = 1;
        rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, a->family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    }
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 16, metrics_on_connection);
    if (rc < 0) {
        log_error(COMP, NULL, "cannot listen for metrics on %s: %s", l->name, uv_strerror(rc));
        return rc;
    }
    log_info(COMP, NULL, "metrics at http://%s/metrics (Prometheus text format)", l->name);
    return 0;
}

int metrics_start(gw *g, metrics **out)
{
    metrics *m = *out = calloc(1, sizeof *m);
    if (!m)
        return -1;
    m->g = g;
    const cfg_addr *addrs = NULL;
    size_t n = cfg_get_addrs(g->cfg, "metrics", "listen", &addrs);
    m->ls = calloc(n ? n : 1, sizeof *m->ls);
    if (!m->ls)
        return -1;
    for (size_t i = 0; i < n; i++) {
        m->nls = i + 1;
        if (metrics_listen(m, &m->ls[i], &addrs[i]) != 0)
            return -1; /* gw_stop closes what is open */
    }
    return 0;
}

int metrics_add_source(metrics *m, metrics_source_fn fn, void *ud)
{
    metrics_source *s = realloc(m->src, (m->nsrc + 1) * sizeof *s);
    if (!s)
        return -1;
    m->src = s;
    m->src[m->nsrc++] = (metrics_source){fn, ud};
    return 0;
}

void metrics_stop(metrics *m)
{
    if (!m || m->stopping)
        return;
    m->stopping = 1;
    for (size_t i = 0; i < m->nls; i++)
        if (m->ls[i].open) {
            m->ls[i].open = 0;
            uv_close((uv_handle_t *)&m->ls[i].tcp, NULL);
        }
    for (metrics_conn *c = m->conns; c; c = c->next)
        conn_close(c);
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    free(m->ls);
    free(m->src);
    free(m);
}
