/*
 * s2s_out.c: the initiating side of a server-to-server stream (RFC 6120
 * "initiating entity"): STARTTLS (§5), SASL EXTERNAL (§6, XEP-0178) or
 * XEP-0220 Server Dialback as Initiating Server (db:result out, verdict
 * in), db:verify requests for our own Receiving Server role (§2.1.2), and a
 * queue of stanzas per domain pair until that pair is authenticated.
 *
 * States (s2s_out_state):
 *
 *   WAIT_HEADER --1.0--> WAIT_FEATURES --starttls--> WAIT_PROCEED --proceed--> TLS --tls_done--> WAIT_HEADER
 *        |                    |--EXTERNAL--> WAIT_SASL --success--> WAIT_HEADER (restart)
 *        |                    |                        \--failure--> READY (dialback fallback)
 *        \--pre-1.0-----------+--dialback / nothing left to negotiate--> READY
 *   READY / any --s2s_out_close, verify mode done, invalid--> CLOSING --> CLOSED
 *
 * Interop quirks handled here (harness notes §2, §3): a peer header with
 * id='' or no id at all (the key is then made over ""), <starttls/> sent
 * without an offer when our policy requires TLS (as Prosody does), the
 * verdict echoing the key (Prosody) or empty (ejabberd), db:verify answers
 * on a dedicated verify stream (S2S_OUT_VERIFY) or on a normal one.
 */
#include "xmpp/s2s_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialback/dialback.h"

typedef enum out_pair_state {
    OP_WANTED = 1, /* waiting for the stream to be ready for db:result */
    OP_SENT,       /* db:result sent, waiting for the verdict */
    OP_VALID,
    OP_FAILED,     /* refused or timed out: not retried on this stream */
} out_pair_state;

typedef struct out_pair {
    char *from, *to; /* normalised: ours, the peer's */
    out_pair_state state;
    uint64_t deadline;
} out_pair;

typedef struct out_item {
    xml_node *stanza;
    size_t pair; /* index into pairs (pairs are never removed) */
} out_item;

typedef struct out_verify {
    char *from, *to, *id, *key;
    int sent;
    uint64_t deadline;
} out_verify;

struct s2s_out {
    s2s_base b;
    s2s_out_state state;

    /* configuration */
    char *from, *to;
    char *secret;
    size_t secret_len;
    s2s_out_mode mode;
    s2s_tls_policy tls;
    int tls_available, have_cert;
    unsigned max_queue, max_pairs;
    uint64_t neg_timeout, db_timeout, close_timeout, idle_timeout;

    /* the peer's current header and features */
    char *id;         /* the peer's stream id ("" when it sent none) */
    int db_ns;        /* its header declared jabber:server:dialback (XEP-0220 §2.5.1) */
    int feat_errors;  /* <dialback><errors/></dialback> (§2.5.2) */
    int dialback_ok;  /* dialback can run on this stream */

    int tls_active, sasl_done, sasl_failed;

    out_pair *pairs;
    size_t npairs;
    out_item *queue;
    size_t nqueue, qcap;
    out_verify *verifies;
    size_t nverify;

    int in_feed;
    uint64_t now, neg_deadline, close_deadline, last_activity;
};

/* ---- helpers ---------------------------------------------------------------- */

static out_pair *find_pair(s2s_out *sm, const char *from, const char *to)
{
    for (size_t i = 0; i < sm->npairs; i++)
        if (strcmp(sm->pairs[i].from, from) == 0 && strcmp(sm->pairs[i].to, to) == 0)
            return &sm->pairs[i];
    return NULL;
}

static out_pair *add_pair(s2s_out *sm, const char *from, const char *to)
{
    out_pair *np = realloc(sm->pairs, (sm->npairs + 1) * sizeof *np);
    if (!np) {
        sm->b.nomem = 1;
        return NULL;
    }
    sm->pairs = np;
    out_pair *p = &np[sm->npairs];
    p->from = s2s_strdup(from);
    p->to = s2s_strdup(to);
    if (!p->from || !p->to) {
        free(p->from);
        free(p->to);
        sm->b.nomem = 1;
        return NULL;
    }
    p->state = OP_WANTED;
    p->deadline = S2S_NO_DEADLINE;
    sm->npairs++;
    return p;
}

static void free_verify(out_verify *v)
{
    free(v->from);
    free(v->to);
    free(v->id);
    free(v->key);
}

/* Hands the queued stanzas of one pair (or all when pair is SIZE_MAX) back
 * to the caller: never dropped (XEP-0220 §2.1.1 says how to bounce them). */
static void bounce_queue(s2s_out *sm, size_t pair, const char *stanza_error)
{
    size_t keep = 0;
    for (size_t i = 0; i < sm->nqueue; i++) {
        out_item it = sm->queue[i];
        if (pair == SIZE_MAX || it.pair == pair)
            s2s_push_bounce(&sm->b, it.stanza, stanza_error);
        else
            sm->queue[keep++] = it;
    }
    sm->nqueue = keep;
}

static void pair_failed(s2s_out *sm, out_pair *p, s2s_db_result r, const char *why,
                        const char *stanza_error)
{
    p->state = OP_FAILED;
    p->deadline = S2S_NO_DEADLINE;
    s2s_action a = {.kind = S2S_ACT_AUTH_FAILED, .from = p->from, .to = p->to, .result = r,
                    .text = (char *)why};
    s2s_push(&sm->b, &a);
    bounce_queue(sm, (size_t)(p - sm->pairs), stanza_error);
}

static void verify_answer(s2s_out *sm, size_t i, s2s_db_result r)
{
    out_verify *v = &sm->verifies[i];
    s2s_action a = {.kind = S2S_ACT_VERIFY_RESULT, .from = v->to, .to = v->from, .id = v->id,
                    .result = r};
    s2s_push(&sm->b, &a);
    free_verify(v);
    sm->verifies[i] = sm->verifies[--sm->nverify];
}

/* The end: what is still waiting goes back to the caller, then CLOSE. */
static void finish(s2s_out *sm, xml_cond cond, int remote, int clean, const char *reason)
{
    for (size_t i = 0; i < sm->npairs; i++)
        if (sm->pairs[i].state == OP_WANTED || sm->pairs[i].state == OP_SENT)
            pair_failed(sm, &sm->pairs[i], S2S_DB_ERROR, reason, "remote-server-timeout");
    bounce_queue(sm, SIZE_MAX, "remote-server-timeout");
    /* XEP-0220 §2.1.2: pending requests on a closed stream count as errors. */
    while (sm->nverify)
        verify_answer(sm, sm->nverify - 1, S2S_DB_ERROR);
    s2s_push_close(&sm->b, cond, remote, clean, reason);
    sm->state = S2S_OUT_CLOSED;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void fail(s2s_out *sm, xml_cond cond, const char *fmt, ...)
{
    if (sm->state == S2S_OUT_CLOSED)
        return;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    s2s_log_stream_error(&sm->b, cond, text, sizeof text, fmt, ap);
    va_end(ap);
    if (sm->state != S2S_OUT_TLS && sm->state != S2S_OUT_CLOSING)
        s2s_write_error_close(&sm->b, cond, NULL);
    finish(sm, cond, 0, 0, text);
    if (sm->in_feed)
        xml_stream_fail(sm->b.xs, cond, text);
}

/* XEP-0190 / RFC 6120 §4.4: our close tag, then read until the peer's.
 * Stanzas not yet sent can no longer be: they go back to the caller now;
 * verify answers may still arrive and are still reported. */
static void begin_close(s2s_out *sm, xml_cond cond, const char *why)
{
    if (sm->state == S2S_OUT_CLOSING || sm->state == S2S_OUT_CLOSED)
        return;
    if (sm->state == S2S_OUT_TLS) {
        finish(sm, cond, 0, 0, why);
        return;
    }
    s2s_log(&sm->b, "closing: %s", why ? why : "");
    s2s_write_error_close(&sm->b, cond, NULL);
    for (size_t i = 0; i < sm->npairs; i++)
        if (sm->pairs[i].state == OP_WANTED || sm->pairs[i].state == OP_SENT)
            pair_failed(sm, &sm->pairs[i], S2S_DB_ERROR, "stream closing", "remote-server-timeout");
    bounce_queue(sm, SIZE_MAX, "remote-server-timeout");
    sm->state = S2S_OUT_CLOSING;
    sm->close_deadline = s2s_deadline(sm->now, sm->close_timeout);
}

static void check_nomem(s2s_out *sm)
{
    if (sm->b.nomem && sm->state != S2S_OUT_CLOSED) {
        sm->b.nomem = 0;
        fail(sm, XML_COND_RESOURCE_CONSTRAINT, "out of memory");
    }
}

static void write_header(s2s_out *sm)
{
    /* RFC 6120 §4.7: no id from the initiating side; XEP-0220 §2.5.1: the
     * dialback namespace is declared (xml_nsmap_init does it). */
    s2s_write_header(&sm->b, sm->from, sm->to, NULL, "1.0");
}

static void write_stanza(s2s_out *sm, xml_node *st)
{
    s2s_write_node(&sm->b, st);
    xml_node_free(st);
    sm->last_activity = sm->now;
}

/* Stanzas of pairs that became valid leave in their queued order. */
static void flush_queue(s2s_out *sm)
{
    if (sm->state != S2S_OUT_READY)
        return;
    size_t keep = 0;
    for (size_t i = 0; i < sm->nqueue; i++) {
        out_item it = sm->queue[i];
        if (sm->pairs[it.pair].state == OP_VALID)
            write_stanza(sm, it.stanza);
        else
            sm->queue[keep++] = it;
    }
    sm->nqueue = keep;
}

/* Step 1 of XEP-0220 (§2.1.1): <db:result from to>key</db:result>, the key
 * per XEP-0185 over the peer's stream id. */
static void send_db_result(s2s_out *sm, out_pair *p)
{
    char key[DB_KEY_HEX_LEN + 1];
    if (db_key_generate(sm->secret, sm->secret_len, p->to, p->from, sm->id, key) != 0) {
        pair_failed(sm, p, S2S_DB_ERROR, "key generation failed", "internal-server-error");
        return;
    }
    xml_node *n = s2s_db_elem("result", p->from, p->to, NULL, NULL, key, NULL);
    if (!n) {
        sm->b.nomem = 1;
        return;
    }
    s2s_write_node(&sm->b, n);
    xml_node_free(n);
    p->state = OP_SENT;
    p->deadline = s2s_deadline(sm->now, sm->db_timeout);
    s2s_log(&sm->b, "dialback %s -> %s: key sent (stream id '%s')", p->from, p->to, sm->id);
}

static void send_db_verify(s2s_out *sm, out_verify *v)
{
    xml_node *n = s2s_db_elem("verify", v->from, v->to, v->id, NULL, v->key, NULL);
    if (!n) {
        sm->b.nomem = 1;
        return;
    }
    s2s_write_node(&sm->b, n);
    xml_node_free(n);
    v->sent = 1;
    v->deadline = s2s_deadline(sm->now, sm->db_timeout);
}

static void verify_mode_done(s2s_out *sm)
{
    /* XEP-0220 §2.1.2: a verify-only stream SHOULD close after the answer. */
    if (sm->mode == S2S_OUT_VERIFY && sm->nverify == 0 && sm->state == S2S_OUT_READY)
        begin_close(sm, XML_COND_NONE, "verification done");
}

/* Negotiation is over: dialback for the pairs that want it, verify
 * requests, stanzas of pairs already valid (SASL). */
static void go_ready(s2s_out *sm)
{
    sm->state = S2S_OUT_READY;
    sm->neg_deadline = S2S_NO_DEADLINE;
    sm->last_activity = sm->now;
    for (size_t i = 0; i < sm->npairs && sm->state == S2S_OUT_READY; i++) {
        out_pair *p = &sm->pairs[i];
        if (p->state != OP_WANTED)
            continue;
        if (!sm->dialback_ok)
            pair_failed(sm, p, S2S_DB_ERROR, "peer offers no dialback", "remote-server-not-found");
        else if (strcmp(p->to, sm->to) != 0 && !sm->feat_errors)
            /* §2.6.2: no target multiplexing without dialback errors. */
            pair_failed(sm, p, S2S_DB_ERROR, "target multiplexing needs dialback errors",
                        "remote-server-not-found");
        else
            send_db_result(sm, p);
    }
    for (size_t i = 0; i < sm->nverify;) {
        if (!sm->dialback_ok) {
            verify_answer(sm, i, S2S_DB_ERROR);
            continue;
        }
        if (!sm->verifies[i].sent)
            send_db_verify(sm, &sm->verifies[i]);
        i++;
    }
    flush_queue(sm);
    /* A verify stream waits for its requests (s2s_out_verify may come
     * later); a normal one whose every pair failed is of no use. */
    int usable = sm->mode == S2S_OUT_VERIFY || sm->nverify > 0;
    for (size_t i = 0; i < sm->npairs; i++)
        usable |= sm->pairs[i].state != OP_FAILED;
    if (!usable)
        begin_close(sm, XML_COND_NONE, "nothing can be authenticated");
}

/* ---- parser events --------------------------------------------------------- */

static void on_open(void *ud, const xml_stream_header *h)
{
    s2s_out *sm = ud;
    if (sm->state != S2S_OUT_WAIT_HEADER)
        return;
    free(sm->id);
    /* RFC 6120 §4.7.3 wants an id; a peer that sends none (or '') still
     * gets dialback, over the empty id (harness notes §2.1, §3). */
    sm->id = s2s_strdup(h->id ? h->id : "");
    if (!sm->id) {
        sm->b.nomem = 1;
        return;
    }
    if (!h->id || !*h->id)
        s2s_log(&sm->b, "peer sent %s stream id", h->id ? "an empty" : "no");
    if (strlen(sm->id) > 1024) {
        fail(sm, XML_COND_POLICY_VIOLATION, "stream id longer than 1024 bytes");
        return;
    }
    if (h->from) {
        char *f = s2s_domain_norm(h->from);
        if (!f || strcmp(f, sm->to) != 0)
            s2s_log(&sm->b, "peer answers as '%s', we asked for '%s'", h->from, sm->to);
        free(f);
    }
    sm->db_ns = 0;
    for (size_t i = 0; i < h->nns; i++)
        if (h->ns[i].uri && strcmp(h->ns[i].uri, XML_NS_DIALBACK) == 0)
            sm->db_ns = 1;
    if (s2s_version_ge_1(h->version)) {
        sm->state = S2S_OUT_WAIT_FEATURES;
        return;
    }
    /* Pre-1.0 peer (RFC 6120 §4.7.5): no features, so no STARTTLS. */
    if (sm->tls == S2S_TLS_REQUIRED && !sm->tls_active) {
        begin_close(sm, XML_COND_NONE, "peer has no STARTTLS (pre-1.0 stream), TLS required");
        return;
    }
    sm->dialback_ok = sm->db_ns;
    go_ready(sm);
}

static void on_features(s2s_out *sm, const xml_node *f)
{
    const xml_node *st = xml_child(f, "starttls", XML_NS_TLS);
    int tls_required = st && xml_child(st, "required", XML_NS_TLS);
    const xml_node *mechs = xml_child(f, "mechanisms", XML_NS_SASL);
    int external = 0;
    for (const xml_node *m = xml_child(mechs, "mechanism", XML_NS_SASL); m;
         m = xml_next(m, "mechanism", XML_NS_SASL))
        external |= strcmp(s2s_text(m), "EXTERNAL") == 0;
    const xml_node *db = xml_child(f, "dialback", XML_NS_DIALBACK_FEATURE);
    sm->feat_errors = db && xml_child(db, "errors", XML_NS_DIALBACK_FEATURE);
    sm->dialback_ok = db || sm->db_ns;

    int can_tls = !sm->tls_active && sm->tls_available && sm->tls != S2S_TLS_NONE;
    if (can_tls && (st || sm->tls == S2S_TLS_REQUIRED)) {
        if (!st) /* what Prosody does with s2s_require_encryption (notes §2.7) */
            s2s_log(&sm->b, "peer does not offer STARTTLS; trying anyway (TLS required)");
        s2s_write(&sm->b, "<starttls xmlns='" XML_NS_TLS "'/>");
        sm->state = S2S_OUT_WAIT_PROCEED;
        return;
    }
    if (tls_required && !sm->tls_active) {
        begin_close(sm, XML_COND_NONE, "peer requires TLS, which we cannot do");
        return;
    }
    /* XEP-0178 §3: EXTERNAL preferred when offered and we have a cert. */
    if (sm->mode == S2S_OUT_NORMAL && external && sm->have_cert && sm->tls_active &&
        !sm->sasl_done && !sm->sasl_failed) {
        char *b64 = s2s_b64_encode(sm->from, strlen(sm->from));
        if (!b64) {
            sm->b.nomem = 1;
            return;
        }
        s2s_write(&sm->b, "<auth xmlns='" XML_NS_SASL "' mechanism='EXTERNAL'>");
        s2s_write(&sm->b, b64);
        s2s_write(&sm->b, "</auth>");
        free(b64);
        sm->state = S2S_OUT_WAIT_SASL;
        return;
    }
    go_ready(sm);
}

static void on_proceed(s2s_out *sm)
{
    sm->state = S2S_OUT_TLS;
    /* RFC 6120 §5.4.3.3: TLS starts after the '>' of <proceed/>. */
    xml_stream_restart(sm->b.xs);
    s2s_action a = {.kind = S2S_ACT_START_TLS};
    s2s_push(&sm->b, &a);
}

static void on_sasl_answer(s2s_out *sm, const xml_node *st)
{
    if (xml_is(st, "success", XML_NS_SASL)) {
        sm->sasl_done = 1;
        out_pair *p = find_pair(sm, sm->from, sm->to);
        if (!p)
            p = add_pair(sm, sm->from, sm->to);
        if (!p)
            return;
        p->state = OP_VALID;
        p->deadline = S2S_NO_DEADLINE;
        s2s_log(&sm->b, "SASL EXTERNAL %s -> %s", sm->from, sm->to);
        s2s_push_auth(&sm->b, sm->from, sm->to, S2S_AUTH_SASL_EXTERNAL);
        /* RFC 6120 §6.4.6: restart; the queue waits for the new features. */
        sm->state = S2S_OUT_WAIT_HEADER;
        xml_stream_restart(sm->b.xs);
        write_header(sm);
        return;
    }
    /* <failure/> (RFC 6120 §6.4.5): fall back to dialback if we can. */
    const xml_node *c = st->children;
    while (c && c->type != XML_N_ELEMENT)
        c = c->next;
    s2s_log(&sm->b, "SASL EXTERNAL refused <%s/>%s", c ? c->name : "?",
            sm->dialback_ok ? ", trying dialback" : "");
    sm->sasl_failed = 1;
    if (sm->dialback_ok)
        go_ready(sm);
    else
        begin_close(sm, XML_COND_NONE, "SASL EXTERNAL refused and no dialback");
}

/* The verdict on one of our db:result (XEP-0220 §2.1.1). */
static void on_db_result(s2s_out *sm, const xml_node *st)
{
    const char *type = xml_attr_get(st, "type");
    char *from = s2s_domain_norm(xml_attr_get(st, "from"));
    char *to = s2s_domain_norm(xml_attr_get(st, "to"));
    out_pair *p = from && to ? find_pair(sm, to, from) : NULL;
    if (!type || !p || p->state != OP_SENT) {
        /* Untyped: a request we cannot take on our outgoing stream (no
         * XEP-0288). Typed but not asked: unsolicited (§4.1). */
        s2s_log(&sm->b, "ignored %s db:result from=%s to=%s", type ? "unsolicited" : "untyped",
                from ? from : "?", to ? to : "?");
    } else if (strcmp(type, "valid") == 0) {
        p->state = OP_VALID;
        p->deadline = S2S_NO_DEADLINE;
        s2s_log(&sm->b, "dialback %s -> %s valid", p->from, p->to);
        s2s_push_auth(&sm->b, p->from, p->to, S2S_AUTH_DIALBACK);
        flush_queue(sm);
    } else if (strcmp(type, "invalid") == 0) {
        s2s_log(&sm->b, "dialback %s -> %s INVALID", p->from, p->to);
        pair_failed(sm, p, S2S_DB_INVALID, "dialback invalid", "internal-server-error");
        /* The receiving server will close; nothing more for any pair. */
        begin_close(sm, XML_COND_NONE, "dialback invalid");
    } else {
        const char *cond = s2s_db_error_cond(st);
        s2s_log(&sm->b, "dialback %s -> %s error <%s/>", p->from, p->to, cond ? cond : "?");
        /* §2.4: not fatal for the stream; queued stanzas bounce with
         * remote-server-timeout. */
        pair_failed(sm, p, S2S_DB_ERROR, cond ? cond : "dialback error", "remote-server-timeout");
    }
    free(from);
    free(to);
}

/* The Authoritative Server's answer to one of our db:verify (§2.1.2). */
static void on_db_verify(s2s_out *sm, const xml_node *st)
{
    const char *type = xml_attr_get(st, "type"), *id = xml_attr_get(st, "id");
    char *from = s2s_domain_norm(xml_attr_get(st, "from"));
    char *to = s2s_domain_norm(xml_attr_get(st, "to"));
    size_t i = 0;
    for (; type && from && to && i < sm->nverify; i++) {
        out_verify *v = &sm->verifies[i];
        if (v->sent && strcmp(v->to, from) == 0 && strcmp(v->from, to) == 0 &&
            (!id || strcmp(v->id, id) == 0))
            break;
    }
    if (!type || !from || !to || i == sm->nverify) {
        s2s_log(&sm->b, "ignored %s db:verify from=%s to=%s id=%s", type ? "unsolicited" : "untyped",
                from ? from : "?", to ? to : "?", id ? id : "");
    } else {
        s2s_db_result r = strcmp(type, "valid") == 0     ? S2S_DB_VALID
                          : strcmp(type, "invalid") == 0 ? S2S_DB_INVALID
                                                         : S2S_DB_ERROR;
        s2s_log(&sm->b, "db:verify %s id=%s: %s", from, sm->verifies[i].id, type);
        verify_answer(sm, i, r);
        sm->last_activity = sm->now;
        verify_mode_done(sm);
    }
    free(from);
    free(to);
}

static void on_stanza(void *ud, xml_node *st)
{
    s2s_out *sm = ud;
    if (xml_is(st, "error", XML_NS_STREAMS)) {
        const char *text = NULL;
        xml_cond cond = xml_stream_error_parse(st, &text);
        s2s_log(&sm->b, "peer sent stream error <%s/>%s%s", xml_cond_name(cond), text ? ": " : "",
                text ? text : "");
        if (sm->state != S2S_OUT_CLOSING)
            s2s_write(&sm->b, "</stream:stream>");
        finish(sm, cond, 1, 0, text ? text : xml_cond_name(cond));
        xml_stream_fail(sm->b.xs, cond, "peer stream error");
        xml_node_free(st);
        return;
    }
    switch (sm->state) {
    case S2S_OUT_WAIT_FEATURES:
        if (xml_is(st, "features", XML_NS_STREAMS))
            on_features(sm, st);
        else
            fail(sm, XML_COND_POLICY_VIOLATION, "<%s/> instead of stream features", st->name);
        break;
    case S2S_OUT_WAIT_PROCEED:
        if (xml_is(st, "proceed", XML_NS_TLS)) {
            on_proceed(sm);
        } else if (xml_is(st, "failure", XML_NS_TLS)) {
            /* §5.4.2.2: the peer closes the stream after <failure/>. */
            begin_close(sm, XML_COND_NONE, "STARTTLS refused by the peer");
        } else {
            fail(sm, XML_COND_POLICY_VIOLATION, "<%s/> instead of <proceed/>", st->name);
        }
        break;
    case S2S_OUT_WAIT_SASL:
        if (xml_is(st, "success", XML_NS_SASL) || xml_is(st, "failure", XML_NS_SASL))
            on_sasl_answer(sm, st);
        else
            fail(sm, XML_COND_POLICY_VIOLATION, "<%s/> instead of a SASL answer", st->name);
        break;
    case S2S_OUT_READY:
    case S2S_OUT_CLOSING:
        if (xml_is(st, "result", XML_NS_DIALBACK) && sm->state == S2S_OUT_READY)
            on_db_result(sm, st);
        else if (xml_is(st, "verify", XML_NS_DIALBACK))
            on_db_verify(sm, st);
        else
            /* Streams are one-way without XEP-0288: stanzas for us come
             * on the peer's own stream to us. */
            s2s_log(&sm->b, "ignored <%s/> on our outgoing stream", st->name);
        break;
    default:
        break;
    }
    xml_node_free(st);
}

static void on_close(void *ud)
{
    s2s_out *sm = ud;
    if (sm->state == S2S_OUT_CLOSED)
        return;
    if (sm->state != S2S_OUT_CLOSING)
        s2s_write(&sm->b, "</stream:stream>");
    s2s_log(&sm->b, "stream closed by the peer");
    finish(sm, XML_COND_NONE, 0, 1, "closed");
}

/* ---- public API ------------------------------------------------------------- */

s2s_out *s2s_out_new(const s2s_out_config *cfg, uint64_t now_ms)
{
    if (!cfg || !cfg->secret || (cfg->tls == S2S_TLS_REQUIRED && !cfg->tls_available))
        return NULL;
    s2s_out *sm = calloc(1, sizeof *sm);
    if (!sm)
        return NULL;
    static const xml_stream_handler h = {on_open, on_stanza, on_close};
    if (s2s_base_init(&sm->b, "s2s-out", cfg->peer, XML_NS_SERVER, cfg->max_stanza, &h, sm) != 0 ||
        !(sm->from = s2s_domain_norm(cfg->from)) || !(sm->to = s2s_domain_norm(cfg->to)) ||
        !(sm->secret = malloc(cfg->secret_len + 1)) || !(sm->id = s2s_strdup(""))) {
        s2s_out_free(sm);
        return NULL;
    }
    memcpy(sm->secret, cfg->secret, cfg->secret_len);
    sm->secret[cfg->secret_len] = '\0';
    sm->secret_len = cfg->secret_len;
    sm->mode = cfg->mode;
    sm->tls = cfg->tls;
    sm->tls_available = cfg->tls_available;
    sm->have_cert = cfg->have_cert;
    sm->max_queue = cfg->max_queue ? cfg->max_queue : S2S_DEFAULT_MAX_QUEUE;
    sm->max_pairs = cfg->max_pairs ? cfg->max_pairs : S2S_DEFAULT_MAX_PAIRS;
    sm->neg_timeout = cfg->negotiation_timeout_ms;
    sm->db_timeout = cfg->dialback_timeout_ms;
    sm->close_timeout = cfg->close_timeout_ms ? cfg->close_timeout_ms : S2S_DEFAULT_CLOSE_TIMEOUT_MS;
    sm->idle_timeout = cfg->idle_timeout_ms;
    sm->now = sm->last_activity = now_ms;
    sm->neg_deadline = s2s_deadline(now_ms, sm->neg_timeout);
    sm->close_deadline = S2S_NO_DEADLINE;
    if (sm->mode == S2S_OUT_NORMAL && !add_pair(sm, sm->from, sm->to)) {
        s2s_out_free(sm);
        return NULL;
    }
    write_header(sm);
    if (sm->b.nomem) {
        s2s_out_free(sm);
        return NULL;
    }
    sm->state = S2S_OUT_WAIT_HEADER;
    return sm;
}

void s2s_out_free(s2s_out *sm)
{
    if (!sm)
        return;
    s2s_base_free(&sm->b);
    for (size_t i = 0; i < sm->npairs; i++) {
        free(sm->pairs[i].from);
        free(sm->pairs[i].to);
    }
    free(sm->pairs);
    for (size_t i = 0; i < sm->nqueue; i++)
        xml_node_free(sm->queue[i].stanza);
    free(sm->queue);
    for (size_t i = 0; i < sm->nverify; i++)
        free_verify(&sm->verifies[i]);
    free(sm->verifies);
    if (sm->secret)
        memset(sm->secret, 0, sm->secret_len);
    free(sm->secret);
    free(sm->from);
    free(sm->to);
    free(sm->id);
    free(sm);
}

size_t s2s_out_feed(s2s_out *sm, const void *data, size_t len, uint64_t now_ms)
{
    sm->now = now_ms;
    if (sm->state == S2S_OUT_TLS)
        return 0;
    if (sm->state == S2S_OUT_CLOSED)
        return len;
    const char *p = data;
    size_t off = 0;
    while (off < len) {
        size_t used = 0;
        sm->in_feed = 1;
        xml_status st = xml_stream_feed(sm->b.xs, p + off, len - off, &used);
        sm->in_feed = 0;
        off += used;
        if (st == XML_STREAM_OK || st == XML_STREAM_CLOSED)
            break;
        if (st == XML_STREAM_RESTART) {
            if (sm->state == S2S_OUT_TLS) {
                check_nomem(sm);
                return off; /* RFC 6120 §5.4.3.3: plaintext after <proceed/> is discarded */
            }
            continue; /* after SASL <success/>: the peer's new header may follow */
        }
        if (sm->state != S2S_OUT_CLOSED) {
            const char *text = NULL;
            xml_cond cond = xml_stream_error(sm->b.xs, &text);
            fail(sm, cond, "%s", text && *text ? text : "XML error");
        }
        break;
    }
    check_nomem(sm);
    return len;
}

psyc_buf *s2s_out_output(s2s_out *sm)
{
    return &sm->b.out;
}

int s2s_out_next_action(s2s_out *sm, s2s_action *out)
{
    return s2s_pop(&sm->b, out);
}

void s2s_out_tls_done(s2s_out *sm, uint64_t now_ms)
{
    sm->now = now_ms;
    if (sm->state != S2S_OUT_TLS)
        return;
    sm->tls_active = 1;
    sm->state = S2S_OUT_WAIT_HEADER;
    write_header(sm); /* §5.4.3.3: a new stream over TLS */
    s2s_log(&sm->b, "TLS established");
    check_nomem(sm);
}

void s2s_out_tls_failed(s2s_out *sm, uint64_t now_ms)
{
    sm->now = now_ms;
    if (sm->state == S2S_OUT_CLOSED)
        return;
    s2s_log(&sm->b, "TLS handshake failed");
    finish(sm, XML_COND_NONE, 0, 0, "TLS handshake failed");
}

/* Can a new pair from -> to run on this stream (XEP-0220 §2.6)? */
static int pair_allowed(const s2s_out *sm, const char *from, const char *to)
{
    (void)from; /* sender multiplexing needs no negotiation (§2.6.1) */
    if (sm->mode != S2S_OUT_NORMAL || sm->npairs >= sm->max_pairs)
        return 0;
    if (sm->state == S2S_OUT_READY && !sm->dialback_ok)
        return 0;
    /* Target multiplexing (§2.6.2) only after the peer said <errors/>. */
    return strcmp(to, sm->to) == 0 || (sm->state == S2S_OUT_READY && sm->feat_errors);
}

static s2s_send_result want_pair(s2s_out *sm, const char *from, const char *to, out_pair **pp)
{
    out_pair *p = find_pair(sm, from, to);
    if (!p) {
        if (!pair_allowed(sm, from, to))
            return S2S_SEND_NO_PAIR;
        if (!(p = add_pair(sm, from, to)))
            return S2S_SEND_FULL;
        if (sm->state == S2S_OUT_READY)
            send_db_result(sm, p);
    }
    *pp = p;
    return p->state == OP_FAILED ? S2S_SEND_NO_PAIR : S2S_SEND_OK;
}

s2s_send_result s2s_out_send(s2s_out *sm, xml_node *stanza, uint64_t now_ms)
{
    sm->now = now_ms;
    if (sm->state == S2S_OUT_CLOSING || sm->state == S2S_OUT_CLOSED)
        return S2S_SEND_CLOSED;
    if (!stanza || stanza->type != XML_N_ELEMENT)
        return S2S_SEND_BAD;
    char *from = s2s_jid_domain(xml_attr_get(stanza, "from"));
    char *to = s2s_jid_domain(xml_attr_get(stanza, "to"));
    s2s_send_result r = S2S_SEND_BAD;
    out_pair *p = NULL;
    if (from && to)
        r = want_pair(sm, from, to, &p);
    free(from);
    free(to);
    if (r != S2S_SEND_OK) {
        check_nomem(sm);
        return r;
    }
    if (p->state == OP_VALID && sm->state == S2S_OUT_READY) {
        write_stanza(sm, stanza);
    } else if (sm->nqueue >= sm->max_queue) {
        return S2S_SEND_FULL;
    } else {
        if (sm->nqueue == sm->qcap) {
            size_t cap = sm->qcap ? sm->qcap * 2 : 16;
            out_item *nq = realloc(sm->queue, cap * sizeof *nq);
            if (!nq)
                return S2S_SEND_FULL;
            sm->queue = nq;
            sm->qcap = cap;
        }
        sm->queue[sm->nqueue++] = (out_item){stanza, (size_t)(p - sm->pairs)};
    }
    check_nomem(sm);
    return S2S_SEND_OK;
}

s2s_send_result s2s_out_authenticate(s2s_out *sm, const char *from, const char *to, uint64_t now_ms)
{
    sm->now = now_ms;
    if (sm->state == S2S_OUT_CLOSING || sm->state == S2S_OUT_CLOSED)
        return S2S_SEND_CLOSED;
    char *f = s2s_domain_norm(from), *t = s2s_domain_norm(to);
    out_pair *p = NULL;
    s2s_send_result r = f && t ? want_pair(sm, f, t, &p) : S2S_SEND_BAD;
    free(f);
    free(t);
    check_nomem(sm);
    return r;
}

int s2s_out_verify(s2s_out *sm, const char *from, const char *to, const char *id, const char *key,
                   uint64_t now_ms)
{
    sm->now = now_ms;
    if (sm->state == S2S_OUT_CLOSING || sm->state == S2S_OUT_CLOSED || !id || !key)
        return -1;
    char *f = s2s_domain_norm(from), *t = s2s_domain_norm(to);
    out_verify *nv = f && t ? realloc(sm->verifies, (sm->nverify + 1) * sizeof *nv) : NULL;
    if (!nv) {
        free(f);
        free(t);
        return -1;
    }
    sm->verifies = nv;
    out_verify *v = &nv[sm->nverify];
    *v = (out_verify){.from = f, .to = t, .id = s2s_strdup(id), .key = s2s_strdup(key),
                      .deadline = S2S_NO_DEADLINE};
    if (!v->id || !v->key) {
        free_verify(v);
        return -1;
    }
    sm->nverify++;
    if (sm->state == S2S_OUT_READY) {
        if (sm->dialback_ok) {
            send_db_verify(sm, v);
        } else {
            verify_answer(sm, sm->nverify - 1, S2S_DB_ERROR);
            verify_mode_done(sm);
        }
    }
    check_nomem(sm);
    return 0;
}

void s2s_out_close(s2s_out *sm, xml_cond cond, const char *text, uint64_t now_ms)
{
    sm->now = now_ms;
    begin_close(sm, cond, text);
    check_nomem(sm);
}

void s2s_out_eof(s2s_out *sm, uint64_t now_ms)
{
    sm->now = now_ms;
    if (sm->state == S2S_OUT_CLOSED)
        return;
    s2s_log(&sm->b, "connection lost");
    finish(sm, XML_COND_NONE, 0, 0, "connection lost");
}

void s2s_out_tick(s2s_out *sm, uint64_t now_ms)
{
    sm->now = now_ms;
    switch (sm->state) {
    case S2S_OUT_CLOSED:
        return;
    case S2S_OUT_CLOSING:
        if (now_ms >= sm->close_deadline) {
            s2s_log(&sm->b, "peer did not close its stream in time");
            finish(sm, XML_COND_NONE, 0, 0, "close timeout");
        }
        return;
    case S2S_OUT_READY:
        for (size_t i = 0; i < sm->npairs; i++) {
            out_pair *p = &sm->pairs[i];
            if (p->state == OP_SENT && now_ms >= p->deadline) {
                s2s_log(&sm->b, "dialback %s -> %s: no verdict in time", p->from, p->to);
                pair_failed(sm, p, S2S_DB_ERROR, "dialback timeout", "remote-server-timeout");
            }
        }
        for (size_t i = 0; i < sm->nverify;) {
            if (sm->verifies[i].sent && now_ms >= sm->verifies[i].deadline)
                verify_answer(sm, i, S2S_DB_ERROR);
            else
                i++;
        }
        verify_mode_done(sm);
        if (sm->state == S2S_OUT_READY && sm->idle_timeout && sm->nqueue == 0 &&
            now_ms >= s2s_deadline(sm->last_activity, sm->idle_timeout))
            begin_close(sm, XML_COND_NONE, "idle"); /* XEP-0190 */
        break;
    default:
        if (now_ms >= sm->neg_deadline)
            fail(sm, XML_COND_CONNECTION_TIMEOUT, "stream negotiation timed out");
        break;
    }
    check_nomem(sm);
}

uint64_t s2s_out_next_deadline(const s2s_out *sm)
{
    uint64_t d = S2S_NO_DEADLINE;
    switch (sm->state) {
    case S2S_OUT_CLOSED:
        return d;
    case S2S_OUT_CLOSING:
        return sm->close_deadline;
    case S2S_OUT_READY:
        for (size_t i = 0; i < sm->npairs; i++)
            if (sm->pairs[i].state == OP_SENT)
                d = s2s_min_deadline(d, sm->pairs[i].deadline);
        for (size_t i = 0; i < sm->nverify; i++)
            if (sm->verifies[i].sent)
                d = s2s_min_deadline(d, sm->verifies[i].deadline);
        if (sm->idle_timeout && sm->nqueue == 0)
            d = s2s_min_deadline(d, s2s_deadline(sm->last_activity, sm->idle_timeout));
        return d;
    default:
        return sm->neg_deadline;
    }
}

s2s_out_state s2s_out_get_state(const s2s_out *sm)
{
    return sm->state;
}

const char *s2s_out_stream_id(const s2s_out *sm)
{
    return sm->id ? sm->id : "";
}

int s2s_out_tls_active(const s2s_out *sm)
{
    return sm->tls_active;
}

int s2s_out_peer_dialback_errors(const s2s_out *sm)
{
    return sm->feat_errors;
}

int s2s_out_is_authenticated(const s2s_out *sm, const char *from, const char *to)
{
    char *f = s2s_domain_norm(from), *t = s2s_domain_norm(to);
    int ok = 0;
    for (size_t i = 0; f && t && i < sm->npairs; i++)
        ok |= sm->pairs[i].state == OP_VALID && strcmp(sm->pairs[i].from, f) == 0 &&
              strcmp(sm->pairs[i].to, t) == 0;
    free(f);
    free(t);
    return ok;
}

size_t s2s_out_queued(const s2s_out *sm)
{
    return sm->nqueue;
}
