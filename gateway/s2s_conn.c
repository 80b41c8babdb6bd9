/* s2s_conn.c: one S2S connection on libuv (see s2s_conn.h). */
#include "gateway/s2s_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/log.h"
#include "gateway/net.h"

#define COMP "s2s"
/* A peer that does not read must not make us buffer without bound: more
 * than this waiting in the socket's write queue ends the connection. */
#define CONN_MAX_WRITE_QUEUE (16u * 1024u * 1024u)

/* One loop thread (DESIGN.md §4): alloc and read run back to back, so one
 * buffer for socket bytes and one for decrypted bytes serve everyone. */
static char conn_rbuf[65536];
static char conn_plain[65536];

static void conn_process(s2s_conn *c);
static void conn_finish(s2s_conn *c, const char *why);

static const char *conn_dir(const s2s_conn *c)
{
    return c->outgoing ? "s2s-out" : "s2s-in";
}

static void conn_set_reason(s2s_conn *c, const char *why)
{
    if (!c->reason[0] && why && *why)
        snprintf(c->reason, sizeof c->reason, "%s", why);
}

/* The machine's lines start with "s2s-in PEER: "; the log has a peer
 * column already. */
static const char *conn_log_text(const s2s_conn *c, const char *text)
{
    if (!text)
        return "";
    const char *k = conn_dir(c);
    size_t kl = strlen(k), pl = strlen(c->peer);
    if (strncmp(text, k, kl) == 0 && text[kl] == ' ' && strncmp(text + kl + 1, c->peer, pl) == 0 &&
        text[kl + 1 + pl] == ':' && text[kl + 2 + pl] == ' ')
        return text + kl + pl + 3;
    return text;
}

/* The socket is gone. A machine that did not get to close (a write
 * failed, a peer that did not read, the stop bound) is told now, so what
 * it still holds comes out: stanzas as BOUNCE (requeued or returned by
 * the owner), pending verifications as VERIFY_RESULT errors. */
static void conn_drain(s2s_conn *c)
{
    uint64_t now = uv_now(c->loop);
    if (c->in && s2s_in_get_state(c->in) != S2S_IN_CLOSED)
        s2s_in_eof(c->in, now);
    if (c->out && s2s_out_get_state(c->out) != S2S_OUT_CLOSED)
        s2s_out_eof(c->out, now);
    s2s_action a;
    while (c->in ? s2s_in_next_action(c->in, &a) : c->out ? s2s_out_next_action(c->out, &a) : 0) {
        if (a.kind == S2S_ACT_LOG)
            log_debug(COMP, c->peer, "%s: %s", conn_dir(c), conn_log_text(c, a.text));
        else if (a.kind != S2S_ACT_CLOSE && a.kind != S2S_ACT_START_TLS && c->hooks && c->hooks->on_action)
            c->hooks->on_action(c, &a);
        s2s_action_clear(&a);
    }
}

static void conn_free(s2s_conn *c)
{
    conn_drain(c);
    uint64_t secs = (uv_now(c->loop) - c->opened_ms) / 1000u;
    if (c->connected || !c->outgoing)
        log_info(COMP, c->peer,
                 "%s stream %s %s closed: %s (%llu s; stanzas in %llu out %llu; bytes in %llu out %llu)",
                 conn_dir(c), c->outgoing ? "to" : "from", c->domain[0] ? c->domain : "?",
                 c->reason[0] ? c->reason : "closed", (unsigned long long)secs,
                 (unsigned long long)c->stanzas_in, (unsigned long long)c->stanzas_out,
                 (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out);
    if (c->hooks && c->hooks->on_free)
        c->hooks->on_free(c);
    s2s_in_free(c->in);
    s2s_out_free(c->out);
    tls_conn_free(c->tlsc);
    free((char *)c->ocfg.from);
    free((char *)c->ocfg.to);
    free((char *)c->ocfg.secret);
    free(c);
}

static void conn_handle_closed(uv_handle_t *h)
{
    s2s_conn *c = h->data;
    if (--c->handles == 0)
        conn_free(c);
}

static void conn_close_tcp(s2s_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void conn_on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_close_tcp(req->data);
}

static void conn_on_timer(uv_timer_t *t);
static void conn_on_write(uv_stream_t *stream, int status);

/* Ends the connection: what was written still leaves (uv_shutdown waits
 * for pending writes, RFC 6120 §4.4 wants our </stream:stream> delivered),
 * bounded by a 2 s timer for a peer that does not read. */
static void conn_finish(s2s_conn *c, const char *why)
{
    if (c->finishing)
        return;
    c->finishing = 1;
    conn_set_reason(c, why);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    if (c->connected && !c->lost && c->tlsc && tls_conn_handshake_done(c->tlsc) &&
        !tls_conn_failed(c->tlsc)) {
        /* close_notify after our </stream:stream> (RFC 6120 §4.4 step 3) */
        psyc_buf out;
        psyc_buf_init(&out);
        tls_conn_close(c->tlsc);
        if (tls_conn_take_output(c->tlsc, &out) == TLS_OK && out.len) {
            c->bytes_out += out.len;
            if (net_write_buf((uv_stream_t *)&c->tcp, &out, conn_on_write) < 0)
                c->lost = 1;
        } else {
            psyc_buf_free(&out);
        }
    }
    if (c->connected && !c->lost) {
        c->sreq.data = c;
        if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, conn_on_shutdown) == 0) {
            uv_timer_start(&c->timer, conn_on_timer, 2000, 0);
            return;
        }
    }
    conn_close_tcp(c);
}

static void conn_on_write(uv_stream_t *stream, int status)
{
    s2s_conn *c = stream->data;
    if (status < 0 && status != UV_ECANCELED && !c->finishing) {
        char why[128];
        snprintf(why, sizeof why, "write failed: %s", uv_strerror(status));
        c->lost = 1;
        conn_set_reason(c, why);
        if (c->in)
            s2s_in_eof(c->in, uv_now(c->loop));
        if (c->out)
            s2s_out_eof(c->out, uv_now(c->loop));
        conn_process(c);
        conn_finish(c, why);
    }
}

static psyc_buf *conn_output(s2s_conn *c)
{
    return c->in ? s2s_in_output(c->in) : c->out ? s2s_out_output(c->out) : NULL;
}

/* Machine output (through TLS when it is on), and whatever TLS itself has
 * to send (handshake, alerts), onto the socket. */
static void conn_flush(s2s_conn *c)
{
    if (c->finishing || !c->connected)
        return;
    psyc_buf *mo = conn_output(c);
    psyc_buf out;
    psyc_buf_init(&out);
    if (c->tlsc) {
        if (mo && mo->len) {
            int rc = tls_conn_write(c->tlsc, mo->data, mo->len);
            psyc_buf_reset(mo);
            if (rc == TLS_ERR_NOMEM) {
                c->lost = 1;
                conn_finish(c, "out of memory encrypting output");
                return;
            }
        }
        if (tls_conn_take_output(c->tlsc, &out) != TLS_OK) {
            psyc_buf_free(&out);
            c->lost = 1;
            conn_finish(c, "out of memory encrypting output");
            return;
        }
    } else if (mo && mo->len) {
        out = *mo; /* net_write_buf takes the memory and re-initialises mo */
        psyc_buf_init(mo);
    }
    if (out.len == 0) {
        psyc_buf_free(&out);
        return;
    }
    c->bytes_out += out.len;
    c->last_io_ms = uv_now(c->loop);
    int rc = net_write_buf((uv_stream_t *)&c->tcp, &out, conn_on_write);
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof why, "write failed: %s", uv_strerror(rc));
        c->lost = 1;
        conn_finish(c, why);
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > CONN_MAX_WRITE_QUEUE) {
        c->lost = 1;
        conn_finish(c, "peer does not read: output queue over limit");
    }
}

static void conn_arm_timer(s2s_conn *c)
{
    if (c->finishing)
        return;
    uint64_t d = c->in ? s2s_in_next_deadline(c->in)
                       : c->out ? s2s_out_next_deadline(c->out) : S2S_NO_DEADLINE;
    if (c->force_close_at && c->force_close_at < d)
        d = c->force_close_at;
    uint64_t now = uv_now(c->loop);
    if (d == S2S_NO_DEADLINE)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, conn_on_timer, d > now ? d - now : 0, 0);
}

static void conn_on_timer(uv_timer_t *t)
{
    s2s_conn *c = t->data;
    if (c->finishing) { /* the shutdown bound: the peer does not read */
        conn_close_tcp(c);
        return;
    }
    uint64_t now = uv_now(c->loop);
    if (c->force_close_at && now >= c->force_close_at) {
        c->lost = 1;
        conn_finish(c, c->reason[0] ? c->reason : "gateway shutting down");
        return;
    }
    if (c->in)
        s2s_in_tick(c->in, now);
    else if (c->out)
        s2s_out_tick(c->out, now);
    conn_process(c);
}

/* START_TLS (RFC 6120 §5.4.3.3): <proceed/> is already written (server)
 * or read (client); from here the socket carries TLS only. */
static void conn_start_tls(s2s_conn *c)
{
    uint64_t now = uv_now(c->loop);
    c->tlsc = c->tls ? (c->outgoing ? tls_conn_new_client(c->tls, c->domain) : tls_conn_new_server(c->tls))
                     : NULL;
    if (!c->tlsc) {
        log_warn(COMP, c->peer, "%s: cannot start TLS (no TLS context or out of memory)", conn_dir(c));
        if (c->in)
            s2s_in_tls_failed(c->in, now);
        else
            s2s_out_tls_failed(c->out, now);
    }
}

static void conn_tls_established(s2s_conn *c)
{
    char subject[256], why[256];
    tls_conn_peer_subject(c->tlsc, subject, sizeof subject);
    int verified = c->outgoing ? tls_conn_peer_matches(c->tlsc, c->domain) : tls_conn_peer_verified(c->tlsc);
    log_info(COMP, c->peer, "%s: TLS established (%s, %s), peer certificate %s: %s%s", conn_dir(c),
             tls_conn_version(c->tlsc), tls_conn_cipher(c->tlsc), subject,
             verified ? "verified" : "not verified: ",
             verified ? "" : (c->outgoing && tls_conn_peer_verified(c->tlsc)
                                  ? "it does not name the domain"
                                  : tls_conn_peer_verify_error(c->tlsc, why, sizeof why)));
    uint64_t now = uv_now(c->loop);
    if (c->in) {
        /* XEP-0178: a verified certificate's names allow SASL EXTERNAL;
         * none (self-signed, say) leaves dialback (XEP-0220). */
        char **names = NULL;
        size_t n = tls_conn_peer_names(c->tlsc, &names);
        s2s_in_tls_done(c->in, (const char *const *)names, n, now);
        tls_names_free(names);
    } else {
        /* Dialback still proves the peer through its DNS (XEP-0220 §1);
         * an unverified certificate is logged, not fatal. */
        s2s_out_tls_done(c->out, now);
    }
}

static void conn_lost(s2s_conn *c, const char *why)
{
    if (c->finishing)
        return;
    c->lost = 1;
    /* "Mid-handshake" in the log: nothing was authenticated yet. */
    char state[64] = "";
    if (!c->auth[0])
        snprintf(state, sizeof state, " during stream negotiation");
    char r[sizeof c->reason];
    snprintf(r, sizeof r, "%s%s", why, state);
    conn_set_reason(c, r);
    uint64_t now = uv_now(c->loop);
    if (c->in)
        s2s_in_eof(c->in, now);
    if (c->out)
        s2s_out_eof(c->out, now);
    conn_process(c);
    conn_finish(c, r);
}

static size_t conn_feed(s2s_conn *c, const char *data, size_t n)
{
    uint64_t now = uv_now(c->loop);
    return c->in ? s2s_in_feed(c->in, data, n, now) : s2s_out_feed(c->out, data, n, now);
}

static void conn_tls_input(s2s_conn *c, const char *data, size_t n)
{
    int rc = tls_conn_feed(c->tlsc, data, n);
    if (rc < 0) {
        char why[300];
        snprintf(why, sizeof why, "%s", tls_conn_error(c->tlsc));
        if (!tls_conn_handshake_done(c->tlsc)) {
            log_warn(COMP, c->peer, "%s: %s", conn_dir(c), why);
            conn_set_reason(c, why);
            if (c->in)
                s2s_in_tls_failed(c->in, uv_now(c->loop));
            else
                s2s_out_tls_failed(c->out, uv_now(c->loop));
            conn_process(c); /* the alert goes out, then the CLOSE */
        } else {
            conn_flush(c);
            conn_lost(c, why);
        }
        return;
    }
    if (rc == 1)
        conn_tls_established(c);
    while (!c->finishing && c->tlsc) {
        size_t got = 0;
        rc = tls_conn_read(c->tlsc, conn_plain, sizeof conn_plain, &got);
        if (rc == TLS_CLOSED) {
            conn_process(c);
            conn_lost(c, "peer ended the TLS session");
            return;
        }
        if (rc < 0) {
            char why[300];
            snprintf(why, sizeof why, "%s", tls_conn_error(c->tlsc));
            conn_flush(c);
            conn_lost(c, why);
            return;
        }
        if (got == 0)
            break;
        conn_feed(c, conn_plain, got);
        conn_process(c);
    }
    conn_process(c);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(conn_rbuf, sizeof conn_rbuf);
}

static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    s2s_conn *c = stream->data;
    if (c->finishing || nread == 0)
        return;
    if (nread < 0) {
        char why[128];
        if (nread == UV_EOF)
            snprintf(why, sizeof why, "connection closed by the peer");
        else
            snprintf(why, sizeof why, "read failed: %s", uv_strerror((int)nread));
        conn_lost(c, why);
        return;
    }
    size_t n = (size_t)nread;
    c->bytes_in += n;
    c->last_io_ms = uv_now(c->loop);
    if (c->tlsc) {
        conn_tls_input(c, buf->base, n);
        return;
    }
    size_t used = conn_feed(c, buf->base, n);
    conn_process(c);
    if (used < n && c->tlsc)
        /* RFC 6120 §5.4.3.3, CVE-2011-0411: bytes sent before the
         * handshake by whoever could write into the TCP stream. */
        log_warn(COMP, c->peer, "%s: dropped %zu plaintext bytes that followed STARTTLS", conn_dir(c),
                 n - used);
}

static const char *conn_method_name(s2s_auth_method m)
{
    switch (m) {
    case S2S_AUTH_DIALBACK:
        return "dialback";
    case S2S_AUTH_SASL_EXTERNAL:
        return "SASL EXTERNAL";
    case S2S_AUTH_CERT_DIALBACK:
        return "certificate (dialback without dialing back)";
    default:
        return "handshake";
    }
}

/* Writes the output, then runs every action the machine reported. */
static void conn_process(s2s_conn *c)
{
    if (c->depth)
        return; /* the outer call drains the rest */
    c->depth++;
    while (!c->finishing) {
        conn_flush(c);
        if (c->finishing)
            break;
        s2s_action a;
        int got = c->in ? s2s_in_next_action(c->in, &a) : c->out ? s2s_out_next_action(c->out, &a) : 0;
        if (!got)
            break;
        switch (a.kind) {
        case S2S_ACT_LOG:
            log_info(COMP, c->peer, "%s: %s", conn_dir(c), conn_log_text(c, a.text));
            break;
        case S2S_ACT_START_TLS:
            conn_start_tls(c);
            break;
        case S2S_ACT_CLOSE: {
            char why[300];
            if (a.cond != XML_COND_NONE)
                snprintf(why, sizeof why, "stream error <%s/>%s%s%s", xml_cond_name(a.cond),
                         a.cond_remote ? " from the peer" : " sent", a.text ? ": " : "",
                         a.text ? a.text : "");
            else
                snprintf(why, sizeof why, "%s%s", a.text && *a.text ? a.text : "stream closed",
                         a.clean ? " (clean close, XEP-0190)" : "");
            /* A close we asked for (idle, shutdown) keeps our reason;
             * the log still says whether the peer closed its side too. */
            if (c->reason[0] && a.clean && !strstr(c->reason, "clean close")) {
                size_t rl = strlen(c->reason);
                snprintf(c->reason + rl, sizeof c->reason - rl, " (clean close, XEP-0190)");
            }
            conn_flush(c);
            s2s_action_clear(&a);
            conn_finish(c, why);
            continue;
        }
        case S2S_ACT_AUTHENTICATED:
            snprintf(c->auth, sizeof c->auth, "%s, %s", conn_method_name(a.method),
                     c->tlsc ? tls_conn_version(c->tlsc) : "no TLS");
            if (c->in && !c->domain[0] && a.from)
                snprintf(c->domain, sizeof c->domain, "%s", a.from);
            log_info(COMP, c->peer, "%s: %s -> %s authenticated (%s)", conn_dir(c), a.from ? a.from : "?",
                     a.to ? a.to : "?", c->auth);
            if (c->hooks->on_action)
                c->hooks->on_action(c, &a);
            break;
        case S2S_ACT_STANZA:
            c->stanzas_in++;
            /* fall through */
        default:
            if (c->in && !c->domain[0] && s2s_in_peer_domain(c->in))
                snprintf(c->domain, sizeof c->domain, "%s", s2s_in_peer_domain(c->in));
            if (c->hooks->on_action)
                c->hooks->on_action(c, &a);
            break;
        }
        s2s_action_clear(&a);
    }
    c->depth--;
    if (!c->finishing) {
        if (c->in && !c->domain[0] && s2s_in_peer_domain(c->in))
            snprintf(c->domain, sizeof c->domain, "%s", s2s_in_peer_domain(c->in));
        conn_arm_timer(c);
    }
}

static s2s_conn *conn_new(uv_loop_t *loop, tls_ctx *tls, const s2s_conn_hooks *hooks, void *owner,
                          int outgoing)
{
    s2s_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    c->tls = tls;
    c->hooks = hooks;
    c->owner = owner;
    c->outgoing = outgoing;
    c->opened_ms = c->last_io_ms = uv_now(loop);
    if (uv_timer_init(loop, &c->timer) < 0) {
        free(c);
        return NULL;
    }
    c->timer.data = c;
    c->handles = 1;
    if (uv_tcp_init(loop, &c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->timer, conn_handle_closed); /* frees c */
        return NULL;
    }
    c->tcp.data = c;
    c->handles = 2;
    return c;
}

s2s_conn *s2s_conn_accept(uv_stream_t *server, tls_ctx *tls, const s2s_in_config *icfg,
                          const s2s_conn_hooks *hooks, void *owner)
{
    s2s_conn *c = conn_new(server->loop, tls, hooks, owner, 0);
    if (!c) {
        log_error(COMP, NULL, "out of memory accepting an S2S connection");
        return NULL;
    }
    int rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    net_peer p;
    if (rc == 0)
        rc = net_tcp_peer(&c->tcp, &p);
    if (rc < 0) {
        log_warn(COMP, NULL, "cannot accept an S2S connection: %s", uv_strerror(rc));
        c->hooks = NULL;
        conn_finish(c, "accept failed");
        return NULL;
    }
    snprintf(c->peer, sizeof c->peer, "%s", p.text);
    c->connected = 1;
    s2s_in_config ic = *icfg;
    ic.peer = c->peer;
    c->in = s2s_in_new(&ic, uv_now(c->loop));
    if (!c->in) {
        log_error(COMP, c->peer, "s2s-in: cannot start a stream (out of memory or bad configuration)");
        c->hooks = NULL;
        c->lost = 1;
        conn_finish(c, "cannot start a stream");
        return NULL;
    }
    rc = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read);
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof why, "cannot read: %s", uv_strerror(rc));
        c->lost = 1;
        conn_finish(c, why);
        return c;
    }
    log_info(COMP, c->peer, "s2s-in: incoming connection");
    conn_process(c);
    return c;
}

static void conn_on_connect(uv_connect_t *req, int status)
{
    s2s_conn *c = req->data;
    if (c->finishing)
        return;
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof why, "connect failed: %s", uv_strerror(status));
        log_info(COMP, c->peer, "s2s-out to %s: %s", c->domain, why);
        conn_finish(c, why);
        return;
    }
    c->connected = 1;
    c->opened_ms = c->last_io_ms = uv_now(c->loop);
    s2s_out_config oc = c->ocfg;
    oc.peer = c->peer;
    c->out = s2s_out_new(&oc, uv_now(c->loop));
    if (!c->out) {
        c->lost = 1;
        conn_finish(c, "cannot start a stream (out of memory or bad configuration)");
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read);
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof why, "cannot read: %s", uv_strerror(rc));
        c->lost = 1;
        conn_finish(c, why);
        return;
    }
    log_info(COMP, c->peer, "s2s-out: connected to %s (%s -> %s%s)", c->domain, oc.from, oc.to,
             oc.mode == S2S_OUT_VERIFY ? ", to verify dialback keys" : "");
    if (c->hooks->on_connected)
        c->hooks->on_connected(c);
    conn_process(c);
}

static char *conn_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

s2s_conn *s2s_conn_connect(uv_loop_t *loop, tls_ctx *tls, const struct sockaddr *sa, const char *peer,
                           const s2s_out_config *ocfg, const s2s_conn_hooks *hooks, void *owner)
{
    s2s_conn *c = conn_new(loop, tls, hooks, owner, 1);
    if (!c) {
        log_error(COMP, peer, "out of memory opening an S2S connection");
        return NULL;
    }
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    snprintf(c->domain, sizeof c->domain, "%s", ocfg->to);
    c->ocfg = *ocfg;
    c->ocfg.from = conn_strdup(ocfg->from);
    c->ocfg.to = conn_strdup(ocfg->to);
    char *sec = ocfg->secret ? malloc(ocfg->secret_len + 1) : NULL;
    if (sec) {
        memcpy(sec, ocfg->secret, ocfg->secret_len);
        sec[ocfg->secret_len] = '\0';
    }
    c->ocfg.secret = sec;
    c->ocfg.peer = NULL;
    c->creq.data = c;
    int rc = (!c->ocfg.from || !c->ocfg.to || (ocfg->secret && !sec))
                 ? UV_ENOMEM
                 : uv_tcp_connect(&c->creq, &c->tcp, sa, conn_on_connect);
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof why, "connect failed: %s", uv_strerror(rc));
        log_info(COMP, c->peer, "s2s-out to %s: %s", c->domain, why);
        conn_finish(c, why); /* on_free reports it from the loop */
    }
    return c;
}

s2s_send_result s2s_conn_send(s2s_conn *c, xml_node *stanza)
{
    if (!c->out || c->finishing)
        return S2S_SEND_CLOSED;
    s2s_send_result r = s2s_out_send(c->out, stanza, uv_now(c->loop));
    if (r == S2S_SEND_OK)
        c->stanzas_out++;
    conn_process(c);
    return r;
}

int s2s_conn_verify(s2s_conn *c, const char *from, const char *to, const char *id, const char *key)
{
    if (!c->out || c->finishing)
        return -1;
    int rc = s2s_out_verify(c->out, from, to, id, key, uv_now(c->loop));
    conn_process(c);
    return rc;
}

int s2s_conn_verify_result(s2s_conn *c, const char *from, const char *to, const char *id,
                           s2s_db_result r, const char *cond)
{
    if (!c->in || c->finishing)
        return 0;
    int m = s2s_in_verify_result(c->in, from, to, id, r, cond, uv_now(c->loop));
    if (m)
        conn_process(c);
    return m;
}

void s2s_conn_close(s2s_conn *c, const char *why)
{
    if (c->finishing)
        return;
    conn_set_reason(c, why);
    if (!c->connected) {
        conn_finish(c, why);
        return;
    }
    uint64_t now = uv_now(c->loop);
    if (c->in)
        s2s_in_close(c->in, XML_COND_NONE, why, now);
    else if (c->out)
        s2s_out_close(c->out, XML_COND_NONE, why, now);
    conn_process(c);
}

void s2s_conn_stop(s2s_conn *c, const char *why, uint64_t bound_ms)
{
    if (c->finishing)
        return;
    c->force_close_at = uv_now(c->loop) + bound_ms;
    s2s_conn_close(c, why);
    if (!c->finishing)
        conn_arm_timer(c);
}

void s2s_conn_abort(s2s_conn *c, const char *why)
{
    if (c->finishing)
        return;
    conn_set_reason(c, why);
    if (c->connected) {
        uint64_t now = uv_now(c->loop);
        if (c->in)
            s2s_in_close(c->in, XML_COND_NONE, why, now);
        else if (c->out)
            s2s_out_close(c->out, XML_COND_NONE, why, now);
        conn_flush(c);
        c->lost = 1;
        if (c->in)
            s2s_in_eof(c->in, now);
        else if (c->out)
            s2s_out_eof(c->out, now);
    }
    conn_process(c);
    conn_finish(c, why);
}

int s2s_conn_ready(const s2s_conn *c)
{
    return c->out && !c->finishing && s2s_out_get_state(c->out) < S2S_OUT_CLOSING;
}
