/*
 * component.c: XEP-0114 Jabber Component Protocol, the component's side.
 *
 *   WAIT_HEADER --server header (id)--> WAIT_HANDSHAKE --<handshake/>--> READY
 *        \------------- stream error / close / timeout ------------------> CLOSED
 *   READY --comp_close--> CLOSING --peer close / timeout--> CLOSED
 *
 * Our header is in jabber:component:accept with to = our domain (§3); the
 * server answers with a header carrying the stream id and no features
 * (Prosody and ejabberd alike, harness notes §1). We send
 * <handshake>hex(SHA-1(id || secret))</handshake>; an empty <handshake/>
 * means accepted, a <not-authorized/> stream error means refused (§3).
 * Then stanzas go both ways; the server checks their addresses.
 */
#include "xmpp/s2s_int.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct comp_stream {
    s2s_base b;
    comp_state state;
    char *domain;
    char *secret;
    size_t secret_len;
    unsigned max_queue;
    uint64_t hs_timeout, close_timeout;
    xml_node **queue; /* stanzas sent before the handshake completed */
    size_t nq, qcap;
    int in_feed;
    int no_id; /* the header had no id: only a stream error may follow */
    uint64_t now, hs_deadline, close_deadline;
};

int comp_handshake_digest(const char *stream_id, const char *secret, size_t secret_len,
                          char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, stream_id, strlen(stream_id)) == 1 &&
             EVP_DigestUpdate(ctx, secret, secret_len) == 1 &&
             EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 20;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 20; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[40] = '\0';
    return 0;
}

static void bounce_all(comp_stream *c, const char *stanza_error)
{
    for (size_t i = 0; i < c->nq; i++)
        s2s_push_bounce(&c->b, c->queue[i], stanza_error);
    c->nq = 0;
}

static void finish(comp_stream *c, xml_cond cond, int remote, int clean, const char *reason)
{
    bounce_all(c, "remote-server-timeout");
    s2s_push_close(&c->b, cond, remote, clean, reason);
    c->state = COMP_CLOSED;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void fail(comp_stream *c, xml_cond cond, const char *fmt, ...)
{
    if (c->state == COMP_CLOSED)
        return;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    s2s_log_stream_error(&c->b, cond, text, sizeof text, fmt, ap);
    va_end(ap);
    if (c->state != COMP_CLOSING)
        s2s_write_error_close(&c->b, cond, NULL);
    finish(c, cond, 0, 0, text);
    if (c->in_feed)
        xml_stream_fail(c->b.xs, cond, text);
}

static void begin_close(comp_stream *c, xml_cond cond, const char *why)
{
    if (c->state == COMP_CLOSING || c->state == COMP_CLOSED)
        return;
    s2s_log(&c->b, "closing: %s", why ? why : "");
    s2s_write_error_close(&c->b, cond, NULL);
    bounce_all(c, "remote-server-timeout");
    c->state = COMP_CLOSING;
    c->close_deadline = s2s_deadline(c->now, c->close_timeout);
}

static void check_nomem(comp_stream *c)
{
    if (c->b.nomem && c->state != COMP_CLOSED) {
        c->b.nomem = 0;
        fail(c, XML_COND_RESOURCE_CONSTRAINT, "out of memory");
    }
}

static void on_open(void *ud, const xml_stream_header *h)
{
    comp_stream *c = ud;
    if (c->state != COMP_WAIT_HEADER)
        return;
    /* XEP-0114 §3: the handshake is over the id; without one there is no
     * way to authenticate. */
    if (!h->id || !*h->id) {
        /* Prosody 0.12 refuses an unknown component domain with an id-less
         * header followed by <host-unknown/>: wait for that stream error,
         * so the log names the real reason (on_stanza). */
        c->no_id = 1;
        c->state = COMP_WAIT_HANDSHAKE;
        return;
    }
    if (h->from && strcmp(h->from, c->domain) != 0)
        s2s_log(&c->b, "server answers as '%s', we are '%s'", h->from, c->domain);
    char digest[41];
    if (comp_handshake_digest(h->id, c->secret, c->secret_len, digest) != 0) {
        fail(c, XML_COND_INTERNAL_SERVER_ERROR, "SHA-1 failed");
        return;
    }
    s2s_write(&c->b, "<handshake>");
    s2s_write(&c->b, digest);
    s2s_write(&c->b, "</handshake>");
    c->state = COMP_WAIT_HANDSHAKE;
}

static int is_content(const xml_node *st)
{
    return xml_is(st, "message", NULL) || xml_is(st, "presence", NULL) || xml_is(st, "iq", NULL);
}

static void on_content(comp_stream *c, xml_node *st)
{
    char *from = s2s_jid_domain(xml_attr_get(st, "from"));
    char *to = s2s_jid_domain(xml_attr_get(st, "to"));
    if (!from || !to) {
        /* The server stamps both (XEP-0114 §3): a stanza without them has
         * no sender to answer and no recipient here. */
        s2s_log(&c->b, "dropped <%s/> without a valid from/to", st->name);
        xml_node_free(st);
    } else {
        s2s_action a = {.kind = S2S_ACT_STANZA, .from = from, .to = to, .stanza = st};
        s2s_push(&c->b, &a);
    }
    free(from);
    free(to);
}

static void on_stanza(void *ud, xml_node *st)
{
    comp_stream *c = ud;
    if (xml_is(st, "error", XML_NS_STREAMS)) {
        const char *text = NULL;
        xml_cond cond = xml_stream_error_parse(st, &text);
        s2s_log(&c->b, "server sent stream error <%s/>%s%s%s", xml_cond_name(cond),
                c->state == COMP_WAIT_HANDSHAKE ? " (handshake refused)" : "", text ? ": " : "",
                text ? text : "");
        if (c->state != COMP_CLOSING)
            s2s_write(&c->b, "</stream:stream>");
        finish(c, cond, 1, 0, text ? text : xml_cond_name(cond));
        xml_stream_fail(c->b.xs, cond, "peer stream error");
    } else if (c->no_id) {
        fail(c, XML_COND_INVALID_XML, "server sent no stream id");
    } else if (c->state == COMP_WAIT_HANDSHAKE && xml_is(st, "handshake", XML_NS_COMPONENT)) {
        c->state = COMP_READY;
        c->hs_deadline = S2S_NO_DEADLINE;
        s2s_log(&c->b, "handshake accepted for %s", c->domain);
        s2s_push_auth(&c->b, c->domain, NULL, S2S_AUTH_HANDSHAKE);
        for (size_t i = 0; i < c->nq; i++) {
            s2s_write_node(&c->b, c->queue[i]);
            xml_node_free(c->queue[i]);
        }
        c->nq = 0;
    } else if (is_content(st) && st->ns && strcmp(st->ns, XML_NS_COMPONENT) == 0 &&
               (c->state == COMP_READY || c->state == COMP_CLOSING)) {
        on_content(c, st); /* takes st; also while closing (XEP-0190) */
        return;
    } else if (is_content(st) && c->state == COMP_WAIT_HANDSHAKE) {
        fail(c, XML_COND_NOT_AUTHORIZED, "<%s/> before the handshake", st->name);
    } else {
        s2s_log(&c->b, "ignored <%s/>", st->name);
    }
    xml_node_free(st);
}

static void on_close(void *ud)
{
    comp_stream *c = ud;
    if (c->state == COMP_CLOSED)
        return;
    if (c->state != COMP_CLOSING)
        s2s_write(&c->b, "</stream:stream>");
    s2s_log(&c->b, "stream closed by the server");
    finish(c, XML_COND_NONE, 0, 1, "closed");
}

comp_stream *comp_new(const comp_config *cfg, uint64_t now_ms)
{
    if (!cfg || !cfg->domain || !*cfg->domain || !cfg->secret)
        return NULL;
    comp_stream *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    static const xml_stream_handler h = {on_open, on_stanza, on_close};
    if (s2s_base_init(&c->b, "comp", cfg->peer, XML_NS_COMPONENT, cfg->max_stanza, &h, c) != 0 ||
        !(c->domain = s2s_domain_norm(cfg->domain)) || !(c->secret = malloc(cfg->secret_len + 1))) {
        comp_free(c);
        return NULL;
    }
    memcpy(c->secret, cfg->secret, cfg->secret_len);
    c->secret[cfg->secret_len] = '\0';
    c->secret_len = cfg->secret_len;
    c->max_queue = cfg->max_queue ? cfg->max_queue : S2S_DEFAULT_MAX_QUEUE;
    c->hs_timeout = cfg->handshake_timeout_ms;
    c->close_timeout = cfg->close_timeout_ms ? cfg->close_timeout_ms : S2S_DEFAULT_CLOSE_TIMEOUT_MS;
    c->now = now_ms;
    c->hs_deadline = s2s_deadline(now_ms, c->hs_timeout);
    c->close_deadline = S2S_NO_DEADLINE;
    /* XEP-0114 §3: no version, no from; to = the component's domain. */
    s2s_write_header(&c->b, NULL, c->domain, NULL, NULL);
    if (c->b.nomem) {
        comp_free(c);
        return NULL;
    }
    c->state = COMP_WAIT_HEADER;
    return c;
}

void comp_free(comp_stream *c)
{
    if (!c)
        return;
    s2s_base_free(&c->b);
    for (size_t i = 0; i < c->nq; i++)
        xml_node_free(c->queue[i]);
    free(c->queue);
    if (c->secret)
        memset(c->secret, 0, c->secret_len);
    free(c->secret);
    free(c->domain);
    free(c);
}

size_t comp_feed(comp_stream *c, const void *data, size_t len, uint64_t now_ms)
{
    c->now = now_ms;
    if (c->state == COMP_CLOSED)
        return len;
    size_t used = 0;
    c->in_feed = 1;
    xml_status st = xml_stream_feed(c->b.xs, data, len, &used);
    c->in_feed = 0;
    if (st == XML_STREAM_ERROR && c->state != COMP_CLOSED) {
        const char *text = NULL;
        xml_cond cond = xml_stream_error(c->b.xs, &text);
        fail(c, cond, "%s", text && *text ? text : "XML error");
    }
    check_nomem(c);
    return len;
}

psyc_buf *comp_output(comp_stream *c)
{
    return &c->b.out;
}

int comp_next_action(comp_stream *c, s2s_action *out)
{
    return s2s_pop(&c->b, out);
}

s2s_send_result comp_send(comp_stream *c, xml_node *stanza, uint64_t now_ms)
{
    c->now = now_ms;
    if (c->state == COMP_CLOSING || c->state == COMP_CLOSED)
        return S2S_SEND_CLOSED;
    if (!stanza || stanza->type != XML_N_ELEMENT)
        return S2S_SEND_BAD;
    if (c->state == COMP_READY) {
        s2s_write_node(&c->b, stanza);
        xml_node_free(stanza);
        check_nomem(c);
        return S2S_SEND_OK;
    }
    if (c->nq >= c->max_queue)
        return S2S_SEND_FULL;
    if (c->nq == c->qcap) {
        size_t cap = c->qcap ? c->qcap * 2 : 16;
        xml_node **nq = realloc(c->queue, cap * sizeof *nq);
        if (!nq)
            return S2S_SEND_FULL;
        c->queue = nq;
        c->qcap = cap;
    }
    c->queue[c->nq++] = stanza;
    return S2S_SEND_OK;
}

void comp_close(comp_stream *c, xml_cond cond, const char *text, uint64_t now_ms)
{
    c->now = now_ms;
    begin_close(c, cond, text);
    check_nomem(c);
}

void comp_eof(comp_stream *c, uint64_t now_ms)
{
    c->now = now_ms;
    if (c->state == COMP_CLOSED)
        return;
    s2s_log(&c->b, "connection lost");
    finish(c, XML_COND_NONE, 0, 0, "connection lost");
}

void comp_tick(comp_stream *c, uint64_t now_ms)
{
    c->now = now_ms;
    if (c->state == COMP_CLOSING && now_ms >= c->close_deadline) {
        s2s_log(&c->b, "server did not close its stream in time");
        finish(c, XML_COND_NONE, 0, 0, "close timeout");
    } else if ((c->state == COMP_WAIT_HEADER || c->state == COMP_WAIT_HANDSHAKE) &&
               now_ms >= c->hs_deadline) {
        fail(c, XML_COND_CONNECTION_TIMEOUT, "handshake timed out");
    }
    check_nomem(c);
}

uint64_t comp_next_deadline(const comp_stream *c)
{
    switch (c->state) {
    case COMP_WAIT_HEADER:
    case COMP_WAIT_HANDSHAKE:
        return c->hs_deadline;
    case COMP_CLOSING:
        return c->close_deadline;
    default:
        return S2S_NO_DEADLINE;
    }
}

comp_state comp_get_state(const comp_stream *c)
{
    return c->state;
}
