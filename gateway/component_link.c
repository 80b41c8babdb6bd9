/* component_link.c: a XEP-0114 component link on libuv (see component_link.h). */
#include "gateway/component_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/config.h"
#include "gateway/log.h"
#include "gateway/net.h"

#define COMP "comp"

/* XEP-0114 §3 has no timeout of its own; a server that answers neither our
 * header nor our handshake within this is treated as gone. */
#define COMPONENT_HANDSHAKE_TIMEOUT_MS 20000u

/* libuv calls alloc and read back to back on the one loop thread
 * (DESIGN.md §4), so one buffer serves every link. */
static char component_rbuf[65536];

static void link_process(component_link *l);
static void link_connect(component_link *l);

/* The machine's log lines start with "comp PEER: " (s2s_log); the log
 * already has a peer column, so that prefix is dropped. */
static const char *link_log_text(const component_link *l, const char *text)
{
    size_t pl = strlen(l->peer);
    if (!text)
        return "";
    if (strncmp(text, "comp ", 5) == 0 && strncmp(text + 5, l->peer, pl) == 0 &&
        text[5 + pl] == ':' && text[6 + pl] == ' ')
        return text + 7 + pl;
    return text;
}

static void link_handle_closed(uv_handle_t *h)
{
    component_link *l = h->data;
    if (h == (uv_handle_t *)&l->tcp)
        l->tcp_live = 0;
    l->handles_open--;
}

static void link_on_retry(uv_timer_t *t)
{
    component_link *l = t->data;
    if (l->stopping)
        return;
    /* The previous connection's handle is closed in the next loop turn; the
     * backoff is at least 1 s, so this wait is only a safeguard. */
    if (l->tcp_live) {
        uv_timer_start(&l->retry, link_on_retry, 10, 0);
        return;
    }
    link_connect(l);
}

/* 1 while a connection (connecting, handshaking or linked) is current. */
static int link_connected(const component_link *l)
{
    return l->tcp_live && !uv_is_closing((const uv_handle_t *)&l->tcp);
}

/* Ends the current connection and, unless stopping, schedules the next
 * attempt. The first reason wins: later calls for the same connection (a
 * cancelled write after the close, say) do nothing. */
static void link_drop(component_link *l, const char *reason)
{
    if (!link_connected(l))
        return;
    int was_linked = l->linked;
    l->linked = 0;
    comp_free(l->sm);
    l->sm = NULL;
    uv_close((uv_handle_t *)&l->tcp, link_handle_closed);
    if (l->timers_live)
        uv_timer_stop(&l->deadline);
    if (l->stopping) {
        log_info(COMP, l->peer, "component %s link closed: %s", l->domain, reason);
        return;
    }
    uint32_t delay = l->backoff_ms;
    log_warn(COMP, l->peer, "component %s %s: %s; reconnecting in %u s", l->domain,
             was_linked ? "link lost" : "link failed", reason, (unsigned)(delay / 1000u));
    /* Exponential backoff, 1 s .. 60 s: a server that is down for long is
     * not hammered, one that restarts is found again quickly. */
    l->backoff_ms = delay >= COMPONENT_BACKOFF_MAX_MS / 2 ? COMPONENT_BACKOFF_MAX_MS : delay * 2;
    if (l->timers_live)
        uv_timer_start(&l->retry, link_on_retry, delay, 0);
}

static void link_on_write(uv_stream_t *stream, int status)
{
    component_link *l = stream->data;
    if (status < 0 && status != UV_ECANCELED) {
        char why[128];
        snprintf(why, sizeof why, "write failed: %s", uv_strerror(status));
        link_drop(l, why);
    }
}

/* Writes what the stream machine has queued. */
static void link_flush(component_link *l)
{
    if (!l->sm || !link_connected(l))
        return;
    psyc_buf *out = comp_output(l->sm);
    if (out->len == 0)
        return;
    int rc = net_write_buf((uv_stream_t *)&l->tcp, out, link_on_write);
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof why, "write failed: %s", uv_strerror(rc));
        link_drop(l, why);
    }
}

static void link_on_deadline(uv_timer_t *t)
{
    component_link *l = t->data;
    if (!l->sm)
        return;
    comp_tick(l->sm, uv_now(l->loop));
    link_process(l);
}

static void link_arm_deadline(component_link *l)
{
    uint64_t d = comp_next_deadline(l->sm), now = uv_now(l->loop);
    if (d == S2S_NO_DEADLINE)
        uv_timer_stop(&l->deadline);
    else
        uv_timer_start(&l->deadline, link_on_deadline, d > now ? d - now : 0, 0);
}

/* The reason of a CLOSE action, for the log line. */
static void link_close_reason(const s2s_action *a, char *buf, size_t size)
{
    if (a->cond != XML_COND_NONE)
        snprintf(buf, size, "stream error <%s/>%s%s%s", xml_cond_name(a->cond),
                 a->cond_remote ? " from the server" : "", a->text ? ": " : "",
                 a->text ? a->text : "");
    else
        snprintf(buf, size, "%s", a->text && *a->text ? a->text : "stream closed");
}

/* Writes the output, then runs every action the machine reported. */
static void link_process(component_link *l)
{
    while (l->sm) {
        link_flush(l);
        s2s_action a;
        if (!l->sm || !comp_next_action(l->sm, &a))
            break;
        switch (a.kind) {
        case S2S_ACT_LOG:
            log_info(COMP, l->peer, "component %s: %s", l->domain, link_log_text(l, a.text));
            break;
        case S2S_ACT_AUTHENTICATED:
            /* XEP-0114 §3: the empty <handshake/> means the server accepted
             * us; from now on it routes the domain's stanzas here. */
            l->linked = 1;
            l->links++;
            l->backoff_ms = COMPONENT_BACKOFF_MIN_MS;
            log_info(COMP, l->peer, "component %s linked to %s", l->domain, l->peer);
            break;
        case S2S_ACT_STANZA: {
            xml_node *st = a.stanza;
            a.stanza = NULL;
            if (l->on_stanza)
                l->on_stanza(l, st, l->ud);
            else
                xml_node_free(st);
            break;
        }
        case S2S_ACT_BOUNCE:
            log_warn(COMP, l->peer, "component %s: dropped <%s/> to %s (%s)", l->domain,
                     a.stanza ? a.stanza->name : "?",
                     a.stanza && xml_attr_get(a.stanza, "to") ? xml_attr_get(a.stanza, "to") : "-",
                     a.stanza_error ? a.stanza_error : "not sent");
            break;
        case S2S_ACT_CLOSE: {
            char why[300];
            link_close_reason(&a, why, sizeof why);
            s2s_action_clear(&a);
            link_flush(l); /* </stream:stream> before the socket goes */
            link_drop(l, why);
            return;
        }
        default:
            /* TLS and dialback actions do not occur on a component stream. */
            log_debug(COMP, l->peer, "component %s: ignored action %s", l->domain,
                      s2s_action_kind_name(a.kind));
            break;
        }
        s2s_action_clear(&a);
    }
    if (l->sm)
        link_arm_deadline(l);
}

static void link_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(component_rbuf, sizeof component_rbuf);
}

static void link_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    component_link *l = stream->data;
    if (!l->sm)
        return;
    if (nread > 0) {
        comp_feed(l->sm, buf->base, (size_t)nread, uv_now(l->loop));
        link_process(l);
        return;
    }
    if (nread == 0)
        return;
    char why[128];
    if (nread == UV_EOF)
        snprintf(why, sizeof why, "connection closed by the server");
    else
        snprintf(why, sizeof why, "read failed: %s", uv_strerror((int)nread));
    /* Let the machine log and bounce what it held, but the socket's fate
     * is the better reason for the log. */
    comp_eof(l->sm, uv_now(l->loop));
    s2s_action a;
    while (comp_next_action(l->sm, &a)) {
        if (a.kind == S2S_ACT_LOG)
            log_info(COMP, l->peer, "component %s: %s", l->domain, link_log_text(l, a.text));
        else if (a.kind == S2S_ACT_BOUNCE)
            log_warn(COMP, l->peer, "component %s: dropped <%s/> (%s)", l->domain,
                     a.stanza ? a.stanza->name : "?", a.stanza_error ? a.stanza_error : "not sent");
        s2s_action_clear(&a);
    }
    link_drop(l, why);
}

static void link_on_connect(uv_connect_t *req, int status)
{
    component_link *l = req->data;
    if (status == UV_ECANCELED || !link_connected(l))
        return; /* closed while connecting (stop) */
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof why, "connect failed: %s", uv_strerror(status));
        link_drop(l, why);
        return;
    }
    comp_config cc = {
        .domain = l->domain,
        .secret = l->secret,
        .secret_len = strlen(l->secret),
        .handshake_timeout_ms = COMPONENT_HANDSHAKE_TIMEOUT_MS,
        .peer = l->peer,
    };
    l->sm = comp_new(&cc, uv_now(l->loop));
    if (!l->sm) {
        /* link_drop needs sm or a live handle; the handle is live. */
        link_drop(l, "out of memory (or unusable domain/secret)");
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&l->tcp, link_alloc, link_on_read);
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof why, "cannot read: %s", uv_strerror(rc));
        link_drop(l, why);
        return;
    }
    log_info(COMP, l->peer, "component %s connected, sending handshake (XEP-0114)", l->domain);
    link_process(l); /* our stream header */
}

static void link_connect(component_link *l)
{
    l->attempts++;
    int rc = uv_tcp_init(l->loop, &l->tcp);
    if (rc < 0) {
        log_error(COMP, l->peer, "component %s: cannot create a socket: %s; retrying in %u s",
                  l->domain, uv_strerror(rc), (unsigned)(l->backoff_ms / 1000u));
        uv_timer_start(&l->retry, link_on_retry, l->backoff_ms, 0);
        return;
    }
    l->tcp.data = l;
    l->tcp_live = 1;
    l->handles_open++;
    l->connect_req.data = l;
    log_debug(COMP, l->peer, "component %s connecting (attempt %llu)", l->domain,
              (unsigned long long)l->attempts);
    rc = uv_tcp_connect(&l->connect_req, &l->tcp, (const struct sockaddr *)&l->addr, link_on_connect);
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof why, "connect failed: %s", uv_strerror(rc));
        link_drop(l, why);
    }
}

int component_link_init(component_link *l, uv_loop_t *loop, const char *domain, const char *host,
                        uint16_t port, const char *secret, component_stanza_fn on_stanza, void *ud)
{
    memset(l, 0, sizeof *l);
    l->loop = loop;
    l->on_stanza = on_stanza;
    l->ud = ud;
    l->backoff_ms = COMPONENT_BACKOFF_MIN_MS;
    cfg_addr a = {.port = port};
    int rc;
    if (strchr(host, ':')) {
        a.family = AF_INET6;
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&l->addr);
    } else {
        a.family = AF_INET;
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&l->addr);
    }
    if (rc < 0 || strlen(host) >= sizeof a.ip)
        return rc < 0 ? rc : UV_EINVAL;
    memcpy(a.ip, host, strlen(host) + 1);
    cfg_addr_format(&a, l->peer, sizeof l->peer);
    l->domain = strdup(domain);
    l->secret = strdup(secret);
    if (!l->domain || !l->secret) {
        component_link_cleanup(l);
        return UV_ENOMEM;
    }
    return 0;
}

int component_link_start(component_link *l)
{
    int rc = uv_timer_init(l->loop, &l->deadline);
    if (rc < 0)
        return rc;
    rc = uv_timer_init(l->loop, &l->retry);
    if (rc < 0) {
        uv_close((uv_handle_t *)&l->deadline, NULL);
        return rc;
    }
    l->deadline.data = l->retry.data = l;
    l->timers_live = 1;
    l->handles_open += 2;
    link_connect(l);
    return 0;
}

int component_link_send(component_link *l, xml_node *stanza)
{
    if (!l->sm || l->stopping) {
        log_warn(COMP, l->peer, "component %s: not connected, dropped <%s/>", l->domain,
                 stanza ? stanza->name : "?");
        xml_node_free(stanza);
        return -1;
    }
    s2s_send_result r = comp_send(l->sm, stanza, uv_now(l->loop));
    if (r != S2S_SEND_OK) {
        log_warn(COMP, l->peer, "component %s: the stream refused <%s/> (%d)", l->domain,
                 stanza ? stanza->name : "?", (int)r);
        xml_node_free(stanza);
        link_process(l);
        return -1;
    }
    link_process(l);
    return 0;
}

void component_link_stop(component_link *l, const char *why)
{
    if (l->stopping)
        return;
    l->stopping = 1;
    if (l->sm && l->linked) {
        /* XEP-0114 streams end like any stream (RFC 6120 §4.4): say so
         * before the socket goes, so the server logs a clean close. */
        comp_close(l->sm, XML_COND_NONE, NULL, uv_now(l->loop));
        link_flush(l);
    }
    link_drop(l, why);
    if (l->timers_live) {
        uv_close((uv_handle_t *)&l->deadline, link_handle_closed);
        uv_close((uv_handle_t *)&l->retry, link_handle_closed);
        l->timers_live = 0;
    }
}

void component_link_cleanup(component_link *l)
{
    comp_free(l->sm);
    l->sm = NULL;
    free(l->domain);
    free(l->secret);
    l->domain = l->secret = NULL;
}
