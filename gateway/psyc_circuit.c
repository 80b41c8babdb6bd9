/* psyc_circuit.c: a PSYC circuit on a libuv TCP handle (see psyc_circuit.h). */
#include "gateway/psyc_circuit.h"
#include "gateway/psyc_ack.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/psyc_face.h"
#include "gateway/psyc_out.h"

#define COMP "psyc"

/* Reads ask the link for at least this much space. */
#define CIRCUIT_READ_CHUNK 65536

/* Ciphertext of TLS circuits is read here and fed to the tls_conn at once.
 * libuv calls alloc and read back to back on the one loop thread
 * (DESIGN.md §4), so one buffer serves every circuit; plaintext still goes
 * straight into the link's buffer. */
static char circuit_tls_rbuf[65536];

static void circuit_set_reason(psyc_circuit *c, log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void circuit_set_reason(psyc_circuit *c, log_level level, const char *fmt, ...)
{
    if (c->reason[0])
        return; /* the first reason explains the close; later ones are consequences */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof c->reason, fmt, ap);
    va_end(ap);
    c->close_level = level;
}

static void circuit_handle_closed(uv_handle_t *h)
{
    psyc_circuit *c = h->data;
    if (--c->handles_open > 0)
        return;
    gw_circuit_unlink(c->gw, c);
    psyc_ack_circuit_gone(c->gw->acks, c);
    if (c->link_ready)
        psyc_link_free(&c->link);
    tls_conn_free(c->tls);
    free(c);
}

void psyc_circuit_close(psyc_circuit *c, log_level level, const char *reason)
{
    if (c->phase == PSYC_CIRCUIT_CLOSING)
        return;
    circuit_set_reason(c, level, "%s", reason);
    c->phase = PSYC_CIRCUIT_CLOSING;
    psyc_circuit_auth_cancel(c);
    psyc_out_circuit_gone(c->gw->psyc_out, c, c->reason);
    psyc_ack_circuit_gone(c->gw->acks, c);

    uint64_t ms = uv_now(c->gw->loop) - c->opened_ms;
    log_write(c->close_level, COMP, c->peer.text,
              "circuit %s%s%sclosed: %s (%s%s, %llu packets, %llu bytes in, %llu bytes out, %llu.%03llu s)",
              c->active ? "to " : "", c->active ? c->peer_host : "", c->active ? " " : "", c->reason,
              c->link_ready && c->link.syntax != PSYC_SYNTAX_UNKNOWN ? psyc_link_syntax_name(c->link.syntax)
              : c->tls                                               ? "TLS"
                                                                     : "unknown",
              c->tls && c->link_ready && c->link.syntax != PSYC_SYNTAX_UNKNOWN ? " over TLS" : "",
              c->link_ready ? (unsigned long long)c->link.packets_in : 0ULL,
              (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out,
              (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000));

    /* Closing cancels pending writes and the shutdown request; their
     * callbacks run (with UV_ECANCELED) before circuit_handle_closed. */
    uv_close((uv_handle_t *)&c->tcp, circuit_handle_closed);
    uv_close((uv_handle_t *)&c->timer, circuit_handle_closed);
}

/* Closes with the reason recorded earlier (graceful paths). */
static void circuit_close_recorded(psyc_circuit *c)
{
    psyc_circuit_close(c, c->close_level, c->reason[0] ? c->reason : "closed");
}

static void circuit_on_write(uv_stream_t *stream, int status)
{
    psyc_circuit *c = stream->data;
    if (status < 0 && status != UV_ECANCELED && c->phase != PSYC_CIRCUIT_CLOSING) {
        char why[128];
        snprintf(why, sizeof why, "write failed: %s", uv_strerror(status));
        psyc_circuit_close(c, LOG_LEVEL_INFO, why);
    }
}

/* Sends whatever the link has rendered; on a TLS circuit through the TLS
 * session, together with what TLS itself has to say (handshake, alerts,
 * close_notify when `close_notify` is set). */
static void circuit_flush_tls(psyc_circuit *c, int close_notify)
{
    if (c->phase == PSYC_CIRCUIT_CLOSING)
        return;
    psyc_buf out;
    psyc_link_take_output(&c->link, &out);
    if (c->tls) {
        int rc = out.len ? tls_conn_write(c->tls, out.data, out.len) : TLS_OK;
        psyc_buf_reset(&out);
        if (rc == TLS_ERR_NOMEM) {
            psyc_buf_free(&out);
            psyc_circuit_close(c, LOG_LEVEL_ERROR, "out of memory encrypting output");
            return;
        }
        /* TLS_ERR: the session failed; its reason is logged by the caller
         * and what TLS still has to send (an alert) goes out below. */
        if (close_notify)
            tls_conn_close(c->tls);
        if (tls_conn_take_output(c->tls, &out) != TLS_OK) {
            psyc_buf_free(&out);
            psyc_circuit_close(c, LOG_LEVEL_ERROR, "out of memory encrypting output");
            return;
        }
    }
    if (out.len == 0) {
        psyc_buf_free(&out);
        return;
    }
    c->bytes_out += out.len;
    int rc = net_write_buf((uv_stream_t *)&c->tcp, &out, circuit_on_write);
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof why, "write failed: %s", uv_strerror(rc));
        psyc_circuit_close(c, LOG_LEVEL_INFO, why);
        return;
    }
    /* A peer that does not read must not make us buffer without bound. */
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 4 * (size_t)c->gw->max_packet) {
        psyc_circuit_close(c, LOG_LEVEL_WARN, "peer does not read: output queue over limit");
    }
}

static void circuit_flush(psyc_circuit *c)
{
    circuit_flush_tls(c, 0);
}

static void circuit_on_timer(uv_timer_t *t);

static void circuit_on_shutdown(uv_shutdown_t *req, int status)
{
    psyc_circuit *c = req->data;
    c->shutdown_pending = 0;
    if (c->phase == PSYC_CIRCUIT_CLOSING)
        return; /* cancelled by the close */
    /* Our last bytes are out and the peer has seen our FIN. If the peer
     * has hung up too (or the shutdown failed) there is nothing to wait for. */
    if (status < 0 || c->peer_eof)
        circuit_close_recorded(c);
}

/* Graceful close: send what is queued (a croak, say), shut our write side
 * and keep reading until the peer hangs up or the linger time runs out.
 * Closing at once could make the kernel answer unread input with a RST,
 * and the peer would lose the croak that tells it why. */
static void circuit_begin_close(psyc_circuit *c, log_level level, const char *reason)
{
    if (c->phase != PSYC_CIRCUIT_RUNNING)
        return;
    circuit_set_reason(c, level, "%s", reason);
    /* Nothing more is sent here: the queue looks for another circuit. */
    psyc_circuit_auth_cancel(c);
    psyc_out_circuit_gone(c->gw->psyc_out, c, reason);
    /* TLS: the croak, then close_notify, so the peer can tell our close
     * from a truncation attack (RFC 8446 §6.1). */
    circuit_flush_tls(c, 1);
    if (c->phase == PSYC_CIRCUIT_CLOSING)
        return;
    c->phase = PSYC_CIRCUIT_LINGER;
    c->shutdown_req.data = c;
    int rc = uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, circuit_on_shutdown);
    if (rc < 0) {
        circuit_close_recorded(c);
        return;
    }
    c->shutdown_pending = 1;
    uv_timer_start(&c->timer, circuit_on_timer, PSYC_CIRCUIT_LINGER_MS, 0);
}

static void circuit_on_timer(uv_timer_t *t)
{
    psyc_circuit *c = t->data;
    if (c->phase == PSYC_CIRCUIT_LINGER) {
        circuit_close_recorded(c);
        return;
    }
    if (c->phase != PSYC_CIRCUIT_RUNNING)
        return;
    if (c->connecting) {
        psyc_circuit_close(c, LOG_LEVEL_INFO, "connect timeout");
        return;
    }
    /* psyced quits silent circuits too (PSYC.md §5: call_out(#'quit, 90)
     * before the first packet); ours is one configurable limit. */
    psyc_link_close(&c->link, 0, "idle timeout (%llu s without input)",
                    (unsigned long long)(c->gw->idle_timeout_ms / 1000));
    circuit_begin_close(c, LOG_LEVEL_INFO, c->link.reason);
}

static void circuit_restart_idle(psyc_circuit *c)
{
    if (c->gw->idle_timeout_ms)
        uv_timer_start(&c->timer, circuit_on_timer, c->gw->idle_timeout_ms, 0);
}

static void circuit_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    psyc_circuit *c = h->data;
    if (c->tls) {
        buf->base = circuit_tls_rbuf;
        buf->len = sizeof circuit_tls_rbuf;
        return;
    }
    size_t avail = 0;
    char *p = psyc_link_read_space(&c->link, CIRCUIT_READ_CHUNK, &avail);
    /* NULL/0 makes libuv report UV_ENOBUFS to circuit_on_read. */
    buf->base = p;
    buf->len = p ? avail : 0;
}

/* One line per TLS session: version, cipher, and who the peer's
 * certificate says it is (PSYC host authentication, PSYC.md §5 rule 3,
 * is decided per packet later from tls_conn_peer_matches). */
static void circuit_tls_established(psyc_circuit *c)
{
    char subject[256], why[160];
    const char *sni = tls_conn_sni(c->tls);
    tls_conn_peer_subject(c->tls, subject, sizeof subject);
    if (!tls_conn_peer_has_cert(c->tls)) {
        log_info(COMP, c->peer.text, "TLS established: %s %s, SNI %s, no peer certificate",
                 tls_conn_version(c->tls), tls_conn_cipher(c->tls), sni ? sni : "-");
        return;
    }
    log_info(COMP, c->peer.text, "TLS established: %s %s, SNI %s, peer certificate %s (%s%s)",
             tls_conn_version(c->tls), tls_conn_cipher(c->tls), sni ? sni : "-", subject,
             tls_conn_peer_verified(c->tls) ? "verified" : "not verified: ",
             tls_conn_peer_verified(c->tls) ? "" : tls_conn_peer_verify_error(c->tls, why, sizeof why));
}

static void circuit_read_start(psyc_circuit *c);

/* After the link has seen input or a host verdict: send its answers, close
 * on its verdict, and stop reading while it holds packets for a host check
 * (PSYC.md §5: the circuit's packets wait, in order). */
static void circuit_after_link(psyc_circuit *c, int verdict)
{
    circuit_flush(c);
    if (c->phase != PSYC_CIRCUIT_RUNNING)
        return;
    if (verdict == PSYC_LINK_VERDICT_CLOSE) {
        circuit_begin_close(c, c->link.error ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, c->link.reason);
        return;
    }
    if (c->link.state == PSYC_LINK_HOLD) {
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = 0;
        }
    } else if (!c->reading && !c->peer_eof) {
        circuit_read_start(c);
    }
}

/* Ciphertext from the socket: through TLS, then the plaintext into the
 * link, then whatever both have to answer back out. n == 0: only what the
 * TLS session already holds (after a host check held the link). */
static void circuit_tls_input(psyc_circuit *c, const char *data, size_t n)
{
    int rc = n ? tls_conn_feed(c->tls, data, n) : 0;
    if (rc < 0) {
        /* The alert TLS queued tells the peer; the log tells us. */
        circuit_begin_close(c, LOG_LEVEL_WARN, tls_conn_error(c->tls));
        return;
    }
    if (rc == 1)
        circuit_tls_established(c);

    int verdict = PSYC_LINK_VERDICT_GO_ON;
    for (;;) {
        size_t avail = 0, got = 0;
        char *space = psyc_link_read_space(&c->link, CIRCUIT_READ_CHUNK, &avail);
        if (!space) {
            psyc_circuit_close(c, LOG_LEVEL_ERROR, "out of memory buffering input");
            return;
        }
        rc = tls_conn_read(c->tls, space, avail, &got);
        if (rc == TLS_CLOSED) {
            circuit_flush(c);
            circuit_begin_close(c, LOG_LEVEL_INFO, "peer closed the TLS session");
            return;
        }
        if (rc < 0) {
            circuit_begin_close(c, LOG_LEVEL_WARN, tls_conn_error(c->tls));
            return;
        }
        if (got == 0)
            break;
        verdict = psyc_link_received(&c->link, got, uv_now(c->gw->loop));
        if (verdict != PSYC_LINK_VERDICT_GO_ON || c->link.state == PSYC_LINK_HOLD)
            break; /* inside TLS the link never asks for TLS again: it closes;
                      held: the rest stays in the TLS session until resumed */
    }
    circuit_after_link(c, verdict);
}

/* The plain listener saw 0x16 (PSYC.md §2.1: TLS autodetected on 4404):
 * from here on this circuit is TLS, starting with the bytes already read. */
static void circuit_start_tls(psyc_circuit *c)
{
    c->tls = tls_conn_new_server(c->gw->tls);
    psyc_buf first;
    psyc_buf_init(&first);
    if (!c->tls || psyc_link_start_tls(&c->link, &first) != 0) {
        psyc_buf_free(&first);
        psyc_circuit_close(c, LOG_LEVEL_ERROR, "out of memory starting TLS");
        return;
    }
    log_debug(COMP, c->peer.text, "TLS ClientHello on a plain port: starting TLS");
    circuit_tls_input(c, first.data, first.len);
    psyc_buf_free(&first);
}

static void circuit_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    psyc_circuit *c = s->data;
    if (c->phase == PSYC_CIRCUIT_CLOSING || nread == 0)
        return;

    if (nread < 0) {
        if (nread == UV_EOF) {
            c->peer_eof = 1;
            uv_read_stop(s);
            c->reading = 0;
            if (c->phase == PSYC_CIRCUIT_LINGER) {
                if (!c->shutdown_pending)
                    circuit_close_recorded(c);
                return; /* circuit_on_shutdown closes once our bytes are out */
            }
            circuit_begin_close(c, LOG_LEVEL_INFO, "peer closed the connection");
            return;
        }
        char why[128];
        if (nread == UV_ECONNRESET)
            snprintf(why, sizeof why, "connection reset by peer");
        else
            snprintf(why, sizeof why, "read error: %s", uv_strerror((int)nread));
        psyc_circuit_close(c, LOG_LEVEL_INFO, why);
        return;
    }

    if (c->bytes_in == 0 && nread > 0)
        c->first_byte = (unsigned char)buf->base[0];
    c->bytes_in += (uint64_t)nread;
    if (c->phase == PSYC_CIRCUIT_LINGER)
        return; /* draining: the verdict is given, input no longer counts */

    circuit_restart_idle(c);
    if (c->tls) {
        circuit_tls_input(c, buf->base, (size_t)nread);
        return;
    }
    int verdict = psyc_link_received(&c->link, (size_t)nread, uv_now(c->gw->loop));
    if (verdict == PSYC_LINK_VERDICT_TLS) {
        circuit_start_tls(c);
        return;
    }
    circuit_after_link(c, verdict);
}

static void circuit_read_start(psyc_circuit *c)
{
    int rc = uv_read_start((uv_stream_t *)&c->tcp, circuit_on_alloc, circuit_on_read);
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof why, "cannot read: %s", uv_strerror(rc));
        psyc_circuit_close(c, LOG_LEVEL_WARN, why);
        return;
    }
    c->reading = 1;
}

int psyc_circuit_running(const psyc_circuit *c)
{
    return c->phase == PSYC_CIRCUIT_RUNNING && c->link_ready && !c->connecting;
}

int psyc_circuit_send(psyc_circuit *c, const psyc_packet *p)
{
    if (!psyc_circuit_running(c))
        return PSYC_ERR_INVALID;
    int rc = p ? psyc_link_send(&c->link, p) : 0;
    if (rc == 0 && p)
        c->packets_out++;
    circuit_flush(c);
    return rc;
}

void psyc_circuit_auth_done(psyc_circuit *c, const char *host, int accept, const char *why)
{
    if (c->phase != PSYC_CIRCUIT_RUNNING || !c->link_ready)
        return;
    int verdict = psyc_link_auth_result(&c->link, host, accept, why, uv_now(c->gw->loop));
    if (c->tls && verdict == PSYC_LINK_VERDICT_GO_ON && c->link.state != PSYC_LINK_HOLD) {
        /* Plaintext that arrived behind the held packet is still inside
         * the TLS session: take it now, in order. */
        circuit_flush(c);
        circuit_tls_input(c, NULL, 0);
        return;
    }
    circuit_after_link(c, verdict);
}

/* Views for the log: at most `max` bytes of a value. */
static int circuit_len(psyc_str s, int max)
{
    return s.len > (size_t)max ? max : (int)s.len;
}

/* Where a packet comes from: _source for unicast, _source_relay and
 * _context for multicast (PSYC.md §4.1, §9). */
static void circuit_log_packet(psyc_circuit *c, const char *what, const psyc_packet *p)
{
    const psyc_modifier *src = psyc_packet_find_routing(p, "_source");
    const psyc_modifier *relay = psyc_packet_find_routing(p, "_source_relay");
    const psyc_modifier *context = psyc_packet_find_routing(p, "_context");
    const psyc_modifier *target = psyc_packet_find_routing(p, "_target");
    psyc_str none = PSYC_STR_LIT("-");
    psyc_str method = p->method.ptr ? p->method : PSYC_STR_LIT("(state change)");
    psyc_str s = src ? src->value : relay ? relay->value : none;
    psyc_str t = target ? target->value : context ? context->value : none;
    log_debug(COMP, c->peer.text, "%s %.*s source %.*s %s %.*s (%zu routing, %zu entity, %zu body bytes)", what,
              circuit_len(method, 128), method.ptr, circuit_len(s, 256), s.ptr,
              target ? "target" : context ? "context" : "target", circuit_len(t, 256), t.ptr, p->n_routing,
              p->n_entity, p->data.len);
}

static void circuit_on_link_event(void *ctx, psyc_link *link, psyc_link_event ev,
                                  const psyc_packet *p, int answered)
{
    psyc_circuit *c = ctx;
    switch (ev) {
    case PSYC_LINK_EV_SYNTAX:
        log_debug(COMP, c->peer.text, "syntax: %s%s", psyc_link_syntax_name(link->syntax),
                  c->tls ? " (inside TLS)" : "");
        break;
    case PSYC_LINK_EV_GREETING:
        log_info(COMP, c->peer.text, "circuit established (%s%s%s%s)", psyc_link_syntax_name(link->syntax),
                 c->tls ? " over TLS" : "", c->active ? ", ours to " : "", c->active ? c->peer_host : "");
        break;
    case PSYC_LINK_EV_PING:
        log_debug(COMP, c->peer.text, "ping: %s",
                  answered ? "answered" : "not answered (once per 120 s, PSYC.md 2.2)");
        break;
    case PSYC_LINK_EV_CIRCUIT:
        circuit_log_packet(c, "packet", p);
        if (p->method.ptr && psyc_str_eq_c(p->method, PSYC_LINK_MC_STATUS_DELIVERY))
            psyc_out_delivery_acked(c->gw->psyc_out, c, p);
        else if (p->method.ptr && psyc_str_eq_c(p->method, "_status_circuit"))
            psyc_out_circuit_known(c->gw->psyc_out, c);
        if (p->method.ptr && (psyc_inherits(p->method, PSYC_STR_LIT("_error")) ||
                              psyc_inherits(p->method, PSYC_STR_LIT("_failure")))) {
            /* A croak (PSYC.md §2.3 step 6) or a refused authorization:
             * its text says why; psyced closes right after a croak. */
            psyc_buf text;
            psyc_buf_init(&text);
            if (psyc_text_expand_packet(p->data, p, &text) != 0)
                psyc_buf_reset(&text);
            log_warn(COMP, c->peer.text, "peer says %.*s: %.*s", circuit_len(p->method, 128), p->method.ptr,
                     (int)(text.len > 400 ? 400 : text.len), text.data ? text.data : "");
            psyc_buf_free(&text);
        }
        break;
    case PSYC_LINK_EV_PACKET:
        circuit_log_packet(c, "packet", p);
        /* The core boundary: every authenticated packet goes to routing/,
         * once (a psycgate peer may write it again after a loss). */
        if (psyc_ack_receive(c->gw->acks, c, p)) {
            psyc_circuit *outer = c->gw->delivering;
            c->gw->delivering = c;
            psyc_face_deliver(c->gw, c, p);
            c->gw->delivering = outer;
        }
        break;
    case PSYC_LINK_EV_REFUSED: {
        psyc_str method = p->method.ptr ? p->method : PSYC_STR_LIT("(state change)");
        log_warn(COMP, c->peer.text, "refused %.*s: source host %s is not authenticated for %s (%s)%s",
                 circuit_len(method, 128), method.ptr, link->last_host, c->peer.ip, link->last_why,
                 psyc_inherits(method, PSYC_STR_LIT("_error")) || psyc_inherits(method, PSYC_STR_LIT("_failure"))
                     ? ", not answered"
                     : psyc_inherits(method, PSYC_STR_LIT("_request_authorization"))
                         ? ", answered _error_invalid_uniform_source"
                         : ", answered " PSYC_LINK_MC_REFUSED);
        break;
    }
    case PSYC_LINK_EV_NOT_AUTHORIZED:
        log_warn(COMP, c->peer.text, "peer refused our authorization on its circuit (%.*s)",
                 circuit_len(p->method, 128), p->method.ptr);
        psyc_out_circuit_gone(c->gw->psyc_out, c, "peer refused our authorization");
        break;
    case PSYC_LINK_EV_READY:
        log_debug(COMP, c->peer.text, "ready to send (%s)", psyc_link_syntax_name(link->syntax));
        psyc_out_circuit_ready(c->gw->psyc_out, c);
        break;
    }
}

int psyc_circuit_accept(gw *g, uv_stream_t *server, int tls)
{
    psyc_circuit *c = calloc(1, sizeof *c);
    if (!c)
        return UV_ENOMEM;
    c->gw = g;
    c->close_level = LOG_LEVEL_INFO;
    int rc = uv_tcp_init(g->loop, &c->tcp);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->tcp.data = c;
    c->handles_open = 1;
    gw_circuit_link(g, c);

    rc = uv_timer_init(g->loop, &c->timer);
    if (rc == 0) {
        c->timer.data = c;
        c->handles_open = 2;
    }
    if (rc == 0)
        rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc < 0) {
        log_warn(COMP, NULL, "accept failed: %s", uv_strerror(rc));
        c->phase = PSYC_CIRCUIT_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, circuit_handle_closed);
        if (c->handles_open == 2)
            uv_close((uv_handle_t *)&c->timer, circuit_handle_closed);
        return rc;
    }

    net_tcp_peer(&c->tcp, &c->peer);
    net_tcp_local(&c->tcp, &c->local);
    c->opened_ms = uv_now(g->loop);
    g->circuits_total++;
    /* PSYC packets are small and interactive: do not wait for Nagle. */
    uv_tcp_nodelay(&c->tcp, 1);

    log_info(COMP, c->peer.text, "circuit open (accepted on %s%s)", c->local.text, tls ? ", TLS" : "");

    psyc_link_params params = {
        .host = g->host,
        .implementation = g->implementation,
        .peer_ip = c->peer.ip,
        .peer_port = c->peer.port,
        .peer_v6 = c->peer.family == AF_INET6,
        .max_packet = g->max_packet,
        .tls = tls,
        .tls_autodetect = g->tls != NULL,
        .delivery_acks = 1,
        .on_event = circuit_on_link_event,
        .authenticate = psyc_circuit_authenticate,
        .ctx = c,
    };
    c->trusted = psyc_face_peer_trusted(g, c->peer.ip);
    rc = psyc_link_init(&c->link, &params);
    if (rc < 0) {
        psyc_circuit_close(c, LOG_LEVEL_ERROR, "out of memory");
        return UV_ENOMEM;
    }
    c->link_ready = 1;
    if (tls) {
        c->tls = tls_conn_new_server(g->tls);
        if (!c->tls) {
            psyc_circuit_close(c, LOG_LEVEL_ERROR, "out of memory starting TLS");
            return UV_ENOMEM;
        }
    }

    circuit_read_start(c);
    if (!c->reading)
        return UV_EIO;
    circuit_restart_idle(c);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Outgoing circuits (issue 5: psyc_out opens them)                    */

static void circuit_on_connect(uv_connect_t *req, int status)
{
    psyc_circuit *c = req->data;
    c->connecting = 0;
    if (c->phase == PSYC_CIRCUIT_CLOSING)
        return; /* closed while connecting (shutdown); already logged */
    if (status < 0) {
        char why[160];
        snprintf(why, sizeof why, "connect failed: %s", uv_strerror(status));
        psyc_circuit_close(c, LOG_LEVEL_INFO, why);
        return;
    }
    gw *g = c->gw;
    net_tcp_local(&c->tcp, &c->local);
    uv_tcp_nodelay(&c->tcp, 1);
    /* PSYC.md §2.3: the tag of our _request_authorization is random. */
    char tag[PSYC_OUT_TAG_SIZE];
    psyc_out_tag(tag);
    psyc_link_params params = {
        .host = g->host,
        .implementation = g->implementation,
        .peer_ip = c->peer.ip,
        .peer_port = c->peer.port,
        .peer_v6 = c->peer.family == AF_INET6,
        .max_packet = g->max_packet,
        .active = 1,
        .syntax = c->syntax,
        .peer_host = c->peer_host,
        .auth_tag = tag,
        .delivery_acks = 1,
        .on_event = circuit_on_link_event,
        .authenticate = psyc_circuit_authenticate,
        .ctx = c,
    };
    int rc = psyc_link_init(&c->link, &params);
    if (rc < 0) {
        psyc_circuit_close(c, LOG_LEVEL_ERROR, "out of memory");
        return;
    }
    c->link_ready = 1;
    log_info(COMP, c->peer.text, "circuit open (connected to %s from %s, %s)", c->peer_host, c->local.text,
             psyc_link_syntax_name(c->syntax));
    circuit_read_start(c);
    if (c->phase != PSYC_CIRCUIT_RUNNING)
        return;
    circuit_restart_idle(c);
    circuit_flush(c); /* our opening: `.` + notice, or `|` (PSYC.md §2) */
}

psyc_circuit *psyc_circuit_connect(gw *g, const struct sockaddr *sa, const char *peer_host,
                                   psyc_syntax syntax, psyc_peer *owner)
{
    psyc_circuit *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->gw = g;
    c->close_level = LOG_LEVEL_INFO;
    c->active = 1;
    c->syntax = syntax;
    c->out_peer = owner;
    snprintf(c->peer_host, sizeof c->peer_host, "%s", peer_host);
    net_peer_from_sockaddr(sa, &c->peer);
    int rc = uv_tcp_init(g->loop, &c->tcp);
    if (rc < 0) {
        free(c);
        log_warn(COMP, NULL, "cannot open a circuit to %s: %s", peer_host, uv_strerror(rc));
        return NULL;
    }
    c->tcp.data = c;
    c->handles_open = 1;
    gw_circuit_link(g, c);
    rc = uv_timer_init(g->loop, &c->timer);
    if (rc == 0) {
        c->timer.data = c;
        c->handles_open = 2;
        c->connect_req.data = c;
        rc = uv_tcp_connect(&c->connect_req, &c->tcp, sa, circuit_on_connect);
    }
    if (rc < 0) {
        log_warn(COMP, c->peer.text, "cannot connect to %s: %s", peer_host, uv_strerror(rc));
        c->out_peer = NULL; /* the caller hears it from the NULL */
        c->phase = PSYC_CIRCUIT_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, circuit_handle_closed);
        if (c->handles_open == 2)
            uv_close((uv_handle_t *)&c->timer, circuit_handle_closed);
        return NULL;
    }
    c->connecting = 1;
    c->opened_ms = uv_now(g->loop);
    g->circuits_total++;
    c->trusted = psyc_face_peer_trusted(g, c->peer.ip);
    uv_timer_start(&c->timer, circuit_on_timer, PSYC_CIRCUIT_CONNECT_TIMEOUT_MS, 0);
    return c;
}
