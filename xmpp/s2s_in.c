/*
 * s2s_in.c: the receiving side of a server-to-server stream (RFC 6120
 * "receiving entity"), with XEP-0220 Server Dialback in its Receiving
 * Server role (db:result in, VERIFY_KEY out to the caller) and its
 * Authoritative Server role (db:verify in, answered with our secret),
 * STARTTLS (RFC 6120 §5) and SASL EXTERNAL (RFC 6120 §6, XEP-0178).
 *
 * States (s2s_in_state):
 *
 *   WAIT_HEADER --header--> OPEN --<starttls/>--> TLS --tls_done--> WAIT_HEADER
 *                            |  \--<auth/> ok-----------------------> WAIT_HEADER
 *                            |--s2s_in_close / invalid dialback--> CLOSING --peer close/timeout--> CLOSED
 *                            \--peer close / stream error / EOF -------------------------------> CLOSED
 *
 * Authentication is per domain pair (XEP-0220 §2.6 multiplexing): every
 * stanza's from/to domains must be a pair authenticated on this stream.
 */
#include "xmpp/s2s_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialback/dialback.h"

typedef enum pair_state { PAIR_PENDING = 1, PAIR_VALID } pair_state;

typedef struct in_pair {
    char *from, *to; /* normalised: the peer's domain, ours */
    pair_state state;
} in_pair;

struct s2s_in {
    s2s_base b;
    s2s_in_state state;

    /* configuration */
    char **domains;
    size_t ndomains;
    char *secret;
    size_t secret_len;
    s2s_tls_policy tls;
    int tls_available, peer_errors, cert_dialback;
    unsigned max_pairs;
    uint64_t auth_timeout, close_timeout, idle_timeout;
    s2s_id_fn gen_id;
    void *gen_id_ud;

    /* the current document (reset at every restart) */
    char id[S2S_ID_MAX + 1];
    char *hdr_from, *hdr_to; /* normalised header 'from' (or NULL) and 'to' */
    int version1;            /* the peer's header said version >= 1.0 */
    int header_sent;         /* our answer header went out for this document */
    int ext_offered;         /* SASL EXTERNAL in the features we sent */

    /* the connection */
    int tls_active, sasl_done;
    char **cert_names;
    size_t ncert;
    in_pair *pairs;
    size_t npairs, nvalid;

    int in_feed;
    uint64_t now, auth_deadline, close_deadline, last_activity;
};

/* ---- small helpers ------------------------------------------------------ */

static int served(const s2s_in *sm, const char *d)
{
    return s2s_domain_index(sm->domains, sm->ndomains, d) >= 0;
}

static in_pair *find_pair(s2s_in *sm, const char *from, const char *to)
{
    for (size_t i = 0; i < sm->npairs; i++)
        if (strcmp(sm->pairs[i].from, from) == 0 && strcmp(sm->pairs[i].to, to) == 0)
            return &sm->pairs[i];
    return NULL;
}

static void drop_pair(s2s_in *sm, in_pair *p)
{
    if (p->state == PAIR_VALID)
        sm->nvalid--;
    free(p->from);
    free(p->to);
    *p = sm->pairs[--sm->npairs];
}

/* RFC 6120 §5.4.3.3 / §6.4.6: what was negotiated before a restart that is
 * not authentication does not survive it; pending dialback requests were
 * tied to the old stream id. */
static void drop_pending(s2s_in *sm)
{
    for (size_t i = sm->npairs; i-- > 0;)
        if (sm->pairs[i].state == PAIR_PENDING)
            drop_pair(sm, &sm->pairs[i]);
}

static in_pair *add_pair(s2s_in *sm, const char *from, const char *to, pair_state st)
{
    in_pair *np = realloc(sm->pairs, (sm->npairs + 1) * sizeof *np);
    if (!np) {
        sm->b.nomem = 1;
        return NULL;
    }
    sm->pairs = np;
    in_pair *p = &np[sm->npairs];
    p->from = s2s_strdup(from);
    p->to = s2s_strdup(to);
    if (!p->from || !p->to) {
        free(p->from);
        free(p->to);
        sm->b.nomem = 1;
        return NULL;
    }
    p->state = st;
    sm->npairs++;
    if (st == PAIR_VALID)
        sm->nvalid++;
    return p;
}

static int cert_covers(const s2s_in *sm, const char *domain)
{
    for (size_t i = 0; domain && i < sm->ncert; i++)
        if (s2s_cert_name_match(sm->cert_names[i], domain))
            return 1;
    return 0;
}

static void write_db(s2s_in *sm, const char *name, const char *from, const char *to,
                     const char *id, const char *type, const char *stanza_error)
{
    xml_node *n = s2s_db_elem(name, from, to, id, type, NULL, stanza_error);
    if (!n) {
        sm->b.nomem = 1;
        return;
    }
    s2s_write_node(&sm->b, n);
    xml_node_free(n);
}

/* Our answer header (RFC 6120 §4.7: from = the domain asked for, to = the
 * peer, a fresh id; version only when the peer sent one, §4.7.5). */
static void write_header(s2s_in *sm)
{
    if (sm->header_sent)
        return;
    if (!sm->id[0])
        s2s_gen_id(sm->gen_id, sm->gen_id_ud, sm->id);
    s2s_write_header(&sm->b, sm->hdr_to, sm->hdr_from, sm->id, sm->version1 ? "1.0" : NULL);
    sm->header_sent = 1;
}

static void set_closed(s2s_in *sm)
{
    sm->state = S2S_IN_CLOSED;
}

/* A stream error we raise (RFC 6120 §4.9.1): our header first if the peer
 * has not had one yet (§4.9.1.1), the error, the close tag; then the
 * connection goes. Nothing the peer sends afterwards is processed: the
 * peer broke the protocol. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void fail(s2s_in *sm, xml_cond cond, const char *fmt, ...)
{
    if (sm->state == S2S_IN_CLOSED)
        return;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    s2s_log_stream_error(&sm->b, cond, text, sizeof text, fmt, ap);
    va_end(ap);
    if (sm->state != S2S_IN_TLS) {
        if (sm->state != S2S_IN_CLOSING) {
            write_header(sm);
            s2s_write_error_close(&sm->b, cond, NULL);
        }
    }
    s2s_push_close(&sm->b, cond, 0, 0, text);
    set_closed(sm);
    if (sm->in_feed)
        xml_stream_fail(sm->b.xs, cond, text);
}

/* Graceful close (XEP-0190 §3, RFC 6120 §4.4): our close tag (after a
 * stream error when cond is set), then keep reading until the peer's. */
static void begin_close(s2s_in *sm, xml_cond cond, const char *text)
{
    if (sm->state == S2S_IN_CLOSING || sm->state == S2S_IN_CLOSED)
        return;
    if (sm->state == S2S_IN_TLS) { /* no plaintext may go out now */
        s2s_push_close(&sm->b, cond, 0, 0, text);
        set_closed(sm);
        return;
    }
    write_header(sm);
    s2s_write_error_close(&sm->b, cond, text);
    sm->state = S2S_IN_CLOSING;
    sm->close_deadline = s2s_deadline(sm->now, sm->close_timeout);
    s2s_log(&sm->b, "closing%s%s: %s", cond ? " with " : "", cond ? xml_cond_name(cond) : "",
            text ? text : "");
}

/* Out of memory somewhere: nothing reliable can be said any more. */
static void check_nomem(s2s_in *sm)
{
    if (sm->b.nomem && sm->state != S2S_IN_CLOSED) {
        sm->b.nomem = 0;
        fail(sm, XML_COND_RESOURCE_CONSTRAINT, "out of memory");
    }
}

/* ---- features ------------------------------------------------------------ */

static int starttls_possible(const s2s_in *sm)
{
    /* Never after authentication: a TLS restart would throw away what was
     * authenticated (RFC 6120 §5.3.1: TLS comes first). */
    return !sm->tls_active && sm->tls_available && sm->tls != S2S_TLS_NONE && sm->nvalid == 0;
}

static int dialback_allowed(const s2s_in *sm)
{
    return sm->tls_active || sm->tls != S2S_TLS_REQUIRED;
}

/* RFC 6120 §4.3.2: features after every header of a version 1.0 stream. */
static void write_features(s2s_in *sm)
{
    xml_node *f = xml_elem_new("features", XML_NS_STREAMS);
    int ok = f != NULL;
    if (ok && starttls_possible(sm)) {
        xml_node *st = xml_elem_add(f, "starttls", XML_NS_TLS);
        ok = st && (sm->tls != S2S_TLS_REQUIRED || xml_elem_add(st, "required", XML_NS_TLS));
    }
    sm->ext_offered = 0;
    /* XEP-0178 §3: EXTERNAL when the certificate covers the 'from'. */
    if (ok && sm->tls_active && !sm->sasl_done && cert_covers(sm, sm->hdr_from)) {
        xml_node *m = xml_elem_add(f, "mechanisms", XML_NS_SASL);
        xml_node *m1 = m ? xml_elem_add(m, "mechanism", XML_NS_SASL) : NULL;
        ok = m1 && xml_text_add(m1, "EXTERNAL", 8);
        sm->ext_offered = ok;
    }
    /* XEP-0220 §2.5.2: dialback with error handling. With TLS required,
     * not before TLS (only <starttls><required/></starttls> then). */
    if (ok && dialback_allowed(sm)) {
        xml_node *d = xml_elem_add(f, "dialback", XML_NS_DIALBACK_FEATURE);
        ok = d && xml_elem_add(d, "errors", XML_NS_DIALBACK_FEATURE);
    }
    if (ok)
        s2s_write_node(&sm->b, f);
    else
        sm->b.nomem = 1;
    xml_node_free(f);
}

/* ---- parser events ---------------------------------------------------------- */

static void on_open(void *ud, const xml_stream_header *h)
{
    s2s_in *sm = ud;
    if (sm->state != S2S_IN_WAIT_HEADER)
        return;
    free(sm->hdr_from);
    free(sm->hdr_to);
    sm->hdr_from = sm->hdr_to = NULL;
    sm->header_sent = 0;
    sm->ext_offered = 0;
    /* RFC 6120 §4.3.3 / §4.7.3: a new id for every (re)started stream. */
    s2s_gen_id(sm->gen_id, sm->gen_id_ud, sm->id);
    sm->version1 = s2s_version_ge_1(h->version);
    sm->state = S2S_IN_OPEN;

    /* 'to' names one of our domains (RFC 6120 §4.7.2, §4.9.3.6). */
    char *to = s2s_domain_norm(h->to);
    if (!to || !served(sm, to)) {
        free(to);
        fail(sm, XML_COND_HOST_UNKNOWN, "stream to '%s' which we do not serve", h->to ? h->to : "");
        return;
    }
    sm->hdr_to = to;
    /* 'from' is optional for servers (RFC 6120 §4.7.1 says SHOULD); when
     * present it must be a domain name. Prosody and ejabberd send it; the
     * 'id' on their initiating headers is empty or missing: not ours to
     * check (harness notes §2.1, §3). */
    if (h->from) {
        sm->hdr_from = s2s_domain_norm(h->from);
        if (!sm->hdr_from) {
            fail(sm, XML_COND_INVALID_FROM, "stream from '%s' is not a domain", h->from);
            return;
        }
    }
    if (!sm->version1 && sm->tls == S2S_TLS_REQUIRED) {
        /* Pre-1.0 streams have no features, so no STARTTLS (§4.7.5). */
        fail(sm, XML_COND_UNSUPPORTED_VERSION, "version 1.0 needed for STARTTLS");
        return;
    }
    write_header(sm);
    if (sm->version1)
        write_features(sm);
    if (sm->auth_deadline == S2S_NO_DEADLINE && sm->nvalid == 0)
        sm->auth_deadline = s2s_deadline(sm->now, sm->auth_timeout);
    s2s_log(&sm->b, "stream %s -> %s id=%s%s%s", sm->hdr_from ? sm->hdr_from : "?", sm->hdr_to,
            sm->id, sm->version1 ? "" : " (pre-1.0)", sm->tls_active ? " (TLS)" : "");
}

/* <starttls/> (RFC 6120 §5.4.2). Also when we did not offer it: Prosody
 * with s2s_require_encryption sends it anyway (harness notes §2.7); we
 * proceed when we can, else <failure/> and close (§5.4.2.2). */
static void on_starttls(s2s_in *sm)
{
    if (!starttls_possible(sm)) {
        s2s_log(&sm->b, "STARTTLS refused (%s)",
                sm->tls_active ? "TLS already active"
                : sm->nvalid   ? "stream already authenticated"
                               : "no TLS here");
        s2s_write(&sm->b, "<failure xmlns='" XML_NS_TLS "'/></stream:stream>");
        s2s_push_close(&sm->b, XML_COND_NONE, 0, 0, "STARTTLS refused");
        set_closed(sm);
        xml_stream_fail(sm->b.xs, XML_COND_UNSUPPORTED_FEATURE, "STARTTLS refused");
        return;
    }
    s2s_write(&sm->b, "<proceed xmlns='" XML_NS_TLS "'/>");
    sm->state = S2S_IN_TLS;
    /* §5.4.3.3: TLS starts right after the '>' of <proceed/>: stop here;
     * anything after <starttls/> in the same read is not consumed. */
    xml_stream_restart(sm->b.xs);
    s2s_action a = {.kind = S2S_ACT_START_TLS};
    s2s_push(&sm->b, &a);
}

static void sasl_failure(s2s_in *sm, const char *cond, const char *why)
{
    char buf[160];
    snprintf(buf, sizeof buf, "<failure xmlns='" XML_NS_SASL "'><%s/></failure>", cond);
    s2s_write(&sm->b, buf);
    s2s_log(&sm->b, "SASL EXTERNAL failed <%s/>: %s", cond, why);
    /* No second try with the same certificate: the peer can still fall
     * back to dialback on this stream (what Prosody does). */
    sm->ext_offered = 0;
}

/* <auth mechanism='EXTERNAL'>base64(authzid) or '='</auth> (RFC 6120
 * §6.4.2, XEP-0178 §3). */
static void on_auth(s2s_in *sm, const xml_node *st)
{
    const char *mech = xml_attr_get(st, "mechanism");
    if (!sm->ext_offered || !mech || strcmp(mech, "EXTERNAL") != 0) {
        sasl_failure(sm, "invalid-mechanism", mech ? mech : "no mechanism");
        return;
    }
    const char *b64 = s2s_text(st);
    char *authzid = NULL;
    if (*b64 && strcmp(b64, "=") != 0) {
        size_t n = 0;
        char *raw = s2s_b64_decode(b64, strlen(b64), &n);
        if (!raw || strlen(raw) != n) {
            free(raw);
            sasl_failure(sm, "incorrect-encoding", "bad base64");
            return;
        }
        authzid = s2s_domain_norm(raw);
        free(raw);
        if (!authzid) {
            sasl_failure(sm, "invalid-authzid", "authzid is not a domain");
            return;
        }
    } else if (sm->hdr_from) {
        authzid = s2s_strdup(sm->hdr_from);
        if (!authzid) {
            sm->b.nomem = 1;
            return;
        }
    } else {
        sasl_failure(sm, "invalid-authzid", "no authzid and no stream 'from'");
        return;
    }
    if (sm->hdr_from && strcmp(authzid, sm->hdr_from) != 0) {
        sasl_failure(sm, "invalid-authzid", "authzid differs from the stream 'from'");
        free(authzid);
        return;
    }
    if (!cert_covers(sm, authzid)) {
        sasl_failure(sm, "not-authorized", "certificate does not cover the domain");
        free(authzid);
        return;
    }
    in_pair *p = find_pair(sm, authzid, sm->hdr_to);
    if (p && p->state == PAIR_PENDING) {
        drop_pair(sm, p); /* a dialback in flight for it is moot now */
        p = NULL;
    }
    if (!p && !add_pair(sm, authzid, sm->hdr_to, PAIR_VALID)) {
        free(authzid);
        return;
    }
    s2s_write(&sm->b, "<success xmlns='" XML_NS_SASL "'/>");
    s2s_log(&sm->b, "SASL EXTERNAL %s -> %s", authzid, sm->hdr_to);
    s2s_push_auth(&sm->b, authzid, sm->hdr_to, S2S_AUTH_SASL_EXTERNAL);
    free(authzid);
    sm->sasl_done = 1;
    sm->auth_deadline = S2S_NO_DEADLINE;
    sm->last_activity = sm->now;
    /* §6.4.6: both sides restart the stream; the rest of this read (the
     * peer's new header, if it was that quick) feeds the new document. */
    drop_pending(sm);
    sm->state = S2S_IN_WAIT_HEADER;
    xml_stream_restart(sm->b.xs);
}

/* A refused db:result (XEP-0220 §2.4): a dialback error if the peer
 * understands them, else what RFC 3920 did: a stream error. */
static void db_refuse(s2s_in *sm, const char *from, const char *to, const char *stanza_error,
                      xml_cond cond, const char *why)
{
    if (sm->peer_errors) {
        write_db(sm, "result", to, from, NULL, "error", stanza_error);
        s2s_log(&sm->b, "dialback %s -> %s refused <%s/>: %s", from, to, stanza_error, why);
        return;
    }
    fail(sm, cond, "dialback %s -> %s: %s", from, to, why);
}

static void db_valid(s2s_in *sm, in_pair *p, s2s_auth_method m)
{
    p->state = PAIR_VALID;
    sm->nvalid++;
    sm->auth_deadline = S2S_NO_DEADLINE;
    sm->last_activity = sm->now;
    write_db(sm, "result", p->to, p->from, NULL, "valid", NULL);
    s2s_log(&sm->b, "dialback %s -> %s valid", p->from, p->to);
    s2s_push_auth(&sm->b, p->from, p->to, m);
}

/* XEP-0220 §2.2.1: "invalid" means spoofing. Without dialback errors the
 * stream must close (type='invalid', then our close tag); with them,
 * <forbidden/> keeps the other pairs (§2.1.2, last paragraph). */
static void db_invalid(s2s_in *sm, const char *from, const char *to)
{
    s2s_log(&sm->b, "dialback %s -> %s INVALID key (spoofing?)", from, to);
    if (sm->peer_errors) {
        write_db(sm, "result", to, from, NULL, "error", "forbidden");
        return;
    }
    write_db(sm, "result", to, from, NULL, "invalid", NULL);
    begin_close(sm, XML_COND_NONE, "dialback key invalid");
}

/* <db:result from=O to=R>key</db:result>: step 1 of XEP-0220 (§2.2.1). */
static void on_db_result(s2s_in *sm, const xml_node *st)
{
    if (xml_attr_get(st, "type")) {
        /* A verdict on a stream we did not open: unsolicited (XEP-0220
         * §4.1); acting on it would let anyone pick our identity. */
        s2s_log(&sm->b, "ignored unsolicited db:result type='%s'", xml_attr_get(st, "type"));
        return;
    }
    const char *rfrom = xml_attr_get(st, "from"), *rto = xml_attr_get(st, "to");
    if (!rfrom || !rto) {
        fail(sm, XML_COND_IMPROPER_ADDRESSING, "db:result without from/to");
        return;
    }
    char *from = s2s_domain_norm(rfrom), *to = s2s_domain_norm(rto);
    const char *key = s2s_text(st);
    if (!from) {
        fail(sm, XML_COND_INVALID_FROM, "db:result from '%s' is not a domain", rfrom);
    } else if (!to || !served(sm, to)) {
        /* The error's 'from' is the domain asked for, as given (§2.4). */
        db_refuse(sm, from, rto, "item-not-found", XML_COND_HOST_UNKNOWN, "not a domain we serve");
    } else if (!dialback_allowed(sm)) {
        db_refuse(sm, from, to, "policy-violation", XML_COND_POLICY_VIOLATION, "TLS required first");
    } else {
        in_pair *p = find_pair(sm, from, to);
        if (p && p->state == PAIR_VALID) {
            write_db(sm, "result", to, from, NULL, "valid", NULL); /* already: say so again */
        } else if (p) {
            s2s_log(&sm->b, "duplicate db:result %s -> %s while verifying", from, to);
        } else if (sm->npairs >= sm->max_pairs) {
            db_refuse(sm, from, to, "resource-constraint", XML_COND_RESOURCE_CONSTRAINT,
                      "too many domain pairs on one stream");
        } else if (!(p = add_pair(sm, from, to, PAIR_PENDING))) {
            /* nomem */
        } else if (sm->cert_dialback && sm->tls_active && cert_covers(sm, from)) {
            db_valid(sm, p, S2S_AUTH_CERT_DIALBACK);
        } else if (!*key || strlen(key) > 1024) {
            drop_pair(sm, p);
            db_invalid(sm, from, to);
        } else {
            s2s_action a = {.kind = S2S_ACT_VERIFY_KEY, .from = from, .to = to, .id = sm->id,
                            .key = (char *)key};
            s2s_push(&sm->b, &a);
            s2s_log(&sm->b, "dialback %s -> %s: verifying key with %s", from, to, from);
        }
    }
    free(from);
    free(to);
}

/* <db:verify from=R to=O id=I>key</db:verify>: we are the Authoritative
 * Server (XEP-0220 §2.2.2). Also on a stream already authenticated for
 * other purposes (Prosody reuses its stream, harness notes §2.6) and on a
 * stream that does nothing else (ejabberd, notes §3). */
static void on_db_verify(s2s_in *sm, const xml_node *st)
{
    if (xml_attr_get(st, "type")) {
        s2s_log(&sm->b, "ignored unsolicited db:verify type='%s'", xml_attr_get(st, "type"));
        return;
    }
    const char *rfrom = xml_attr_get(st, "from"), *rto = xml_attr_get(st, "to");
    const char *id = xml_attr_get(st, "id");
    if (!rfrom || !rto) {
        fail(sm, XML_COND_IMPROPER_ADDRESSING, "db:verify without from/to");
        return;
    }
    if (!id)
        id = "";
    char *from = s2s_domain_norm(rfrom), *to = s2s_domain_norm(rto);
    if (!from) {
        fail(sm, XML_COND_INVALID_FROM, "db:verify from '%s' is not a domain", rfrom);
    } else if (!to || !served(sm, to)) {
        /* Not a stream error: the stream may carry other pairs (§2.2.2). */
        write_db(sm, "verify", rto, from, id, "error", "item-not-found");
        s2s_log(&sm->b, "db:verify for '%s' which we do not serve", rto);
    } else if (!dialback_allowed(sm)) {
        write_db(sm, "verify", to, from, id, "error", "policy-violation");
        s2s_log(&sm->b, "db:verify %s -> %s before TLS refused", from, to);
    } else {
        /* The key was made for receiving = from, originating = to. */
        int ok = db_key_verify(sm->secret, sm->secret_len, from, to, id, s2s_text(st));
        write_db(sm, "verify", to, from, id, ok ? "valid" : "invalid", NULL);
        s2s_log(&sm->b, "db:verify %s asks about our key for %s id=%s: %s", from, to, id,
                ok ? "valid" : "INVALID");
    }
    free(from);
    free(to);
}

/* message / presence / iq (RFC 6120 §8; §4.9.3 for the refusals). */
static void on_content(s2s_in *sm, xml_node *st)
{
    if (sm->nvalid == 0) {
        if (sm->state == S2S_IN_CLOSING)
            s2s_log(&sm->b, "dropped <%s/> from an unauthenticated peer while closing", st->name);
        else
            fail(sm, XML_COND_NOT_AUTHORIZED, "<%s/> before authentication", st->name);
        xml_node_free(st);
        return;
    }
    const char *rfrom = xml_attr_get(st, "from"), *rto = xml_attr_get(st, "to");
    char *from = s2s_jid_domain(rfrom), *to = s2s_jid_domain(rto);
    xml_cond cond = XML_COND_NONE;
    const char *why = NULL;
    /* §8.1.1.1 / §8.1.2.1: between servers both addresses are mandatory. */
    if (!rfrom || !rto) {
        cond = XML_COND_IMPROPER_ADDRESSING, why = "stanza without from/to";
    } else if (!from) {
        cond = XML_COND_INVALID_FROM, why = "malformed 'from'";
    } else if (!to) {
        cond = XML_COND_IMPROPER_ADDRESSING, why = "malformed 'to'";
    } else if (!served(sm, to)) {
        cond = XML_COND_HOST_UNKNOWN, why = "'to' is not a domain we serve";
    } else {
        in_pair *p = find_pair(sm, from, to);
        if (!p || p->state != PAIR_VALID)
            cond = XML_COND_INVALID_FROM, why = "domain pair not authenticated on this stream";
    }
    if (cond != XML_COND_NONE) {
        if (sm->state == S2S_IN_CLOSING)
            s2s_log(&sm->b, "dropped <%s/> from=%s to=%s while closing: %s", st->name,
                    rfrom ? rfrom : "", rto ? rto : "", why);
        else
            fail(sm, cond, "<%s/> from=%s to=%s: %s", st->name, rfrom ? rfrom : "", rto ? rto : "",
                 why);
        xml_node_free(st);
    } else {
        sm->last_activity = sm->now;
        s2s_action a = {.kind = S2S_ACT_STANZA, .from = from, .to = to, .stanza = st};
        s2s_push(&sm->b, &a);
    }
    free(from);
    free(to);
}

static void on_peer_error(s2s_in *sm, const xml_node *st)
{
    const char *text = NULL;
    xml_cond cond = xml_stream_error_parse(st, &text);
    s2s_log(&sm->b, "peer sent stream error <%s/>%s%s", xml_cond_name(cond), text ? ": " : "",
            text ? text : "");
    if (sm->state == S2S_IN_OPEN)
        s2s_write(&sm->b, "</stream:stream>");
    s2s_push_close(&sm->b, cond, 1, 0, text);
    set_closed(sm);
    xml_stream_fail(sm->b.xs, cond, "peer stream error");
}

static int is_content(const xml_node *st)
{
    return xml_is(st, "message", NULL) || xml_is(st, "presence", NULL) || xml_is(st, "iq", NULL);
}

static void on_stanza(void *ud, xml_node *st)
{
    s2s_in *sm = ud;
    if (sm->state != S2S_IN_OPEN && sm->state != S2S_IN_CLOSING) {
        xml_node_free(st);
        return;
    }
    if (xml_is(st, "error", XML_NS_STREAMS)) {
        on_peer_error(sm, st);
    } else if (is_content(st) && st->ns && strcmp(st->ns, XML_NS_SERVER) == 0) {
        on_content(sm, st); /* takes st */
        return;
    } else if (sm->state == S2S_IN_CLOSING) {
        /* Our close tag is out: nothing more can be answered (§4.4). */
        s2s_log(&sm->b, "ignored <%s/> while closing", st->name);
    } else if (xml_is(st, "starttls", XML_NS_TLS)) {
        on_starttls(sm);
    } else if (xml_is(st, "auth", XML_NS_SASL)) {
        on_auth(sm, st);
    } else if (xml_is(st, NULL, XML_NS_SASL)) {
        sasl_failure(sm, "aborted", st->name);
    } else if (xml_is(st, "result", XML_NS_DIALBACK)) {
        on_db_result(sm, st);
    } else if (xml_is(st, "verify", XML_NS_DIALBACK)) {
        on_db_verify(sm, st);
    } else if (is_content(st)) {
        fail(sm, XML_COND_INVALID_NAMESPACE, "<%s xmlns='%s'/> on a jabber:server stream", st->name,
             st->ns ? st->ns : "");
    } else if (sm->nvalid == 0) {
        fail(sm, XML_COND_NOT_AUTHORIZED, "<%s/> before authentication", st->name);
    } else {
        fail(sm, XML_COND_UNSUPPORTED_STANZA_TYPE, "<%s xmlns='%s'/>", st->name, st->ns ? st->ns : "");
    }
    xml_node_free(st);
}

/* The peer's </stream:stream> (RFC 6120 §4.4). */
static void on_close(void *ud)
{
    s2s_in *sm = ud;
    if (sm->state == S2S_IN_CLOSED)
        return;
    if (sm->state == S2S_IN_OPEN)
        s2s_write(&sm->b, "</stream:stream>");
    s2s_log(&sm->b, "stream closed by the peer");
    s2s_push_close(&sm->b, XML_COND_NONE, 0, 1, "closed");
    set_closed(sm);
}

/* ---- public API -------------------------------------------------------------- */

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

s2s_in *s2s_in_new(const s2s_in_config *cfg, uint64_t now_ms)
{
    if (!cfg || cfg->ndomains == 0 || !cfg->domains || !cfg->secret ||
        (cfg->tls == S2S_TLS_REQUIRED && !cfg->tls_available))
        return NULL;
    s2s_in *sm = calloc(1, sizeof *sm);
    if (!sm)
        return NULL;
    static const xml_stream_handler h = {on_open, on_stanza, on_close};
    int ok = s2s_base_init(&sm->b, "s2s-in", cfg->peer, XML_NS_SERVER, cfg->max_stanza, &h, sm) == 0;
    sm->domains = ok ? calloc(cfg->ndomains, sizeof *sm->domains) : NULL;
    ok = ok && sm->domains;
    for (size_t i = 0; ok && i < cfg->ndomains; i++) {
        ok = (sm->domains[i] = s2s_domain_norm(cfg->domains[i])) != NULL;
        sm->ndomains = i + 1;
    }
    sm->secret = ok ? malloc(cfg->secret_len + 1) : NULL;
    if (!ok || !sm->secret) {
        s2s_in_free(sm);
        return NULL;
    }
    memcpy(sm->secret, cfg->secret, cfg->secret_len);
    sm->secret[cfg->secret_len] = '\0';
    sm->secret_len = cfg->secret_len;
    sm->tls = cfg->tls;
    sm->tls_available = cfg->tls_available;
    sm->peer_errors = cfg->peer_dialback_errors;
    sm->cert_dialback = cfg->cert_dialback;
    sm->max_pairs = cfg->max_pairs ? cfg->max_pairs : S2S_DEFAULT_MAX_PAIRS;
    sm->auth_timeout = cfg->auth_timeout_ms;
    sm->close_timeout = cfg->close_timeout_ms ? cfg->close_timeout_ms : S2S_DEFAULT_CLOSE_TIMEOUT_MS;
    sm->idle_timeout = cfg->idle_timeout_ms;
    sm->gen_id = cfg->gen_id;
    sm->gen_id_ud = cfg->gen_id_ud;
    sm->now = sm->last_activity = now_ms;
    sm->close_deadline = S2S_NO_DEADLINE;
    /* The peer has auth_timeout from the connection on, header included. */
    sm->auth_deadline = s2s_deadline(now_ms, sm->auth_timeout);
    sm->state = S2S_IN_WAIT_HEADER;
    return sm;
}

void s2s_in_free(s2s_in *sm)
{
    if (!sm)
        return;
    s2s_base_free(&sm->b);
    free_list(sm->domains, sm->ndomains);
    free_list(sm->cert_names, sm->ncert);
    while (sm->npairs)
        drop_pair(sm, &sm->pairs[0]);
    free(sm->pairs);
    if (sm->secret)
        memset(sm->secret, 0, sm->secret_len);
    free(sm->secret);
    free(sm->hdr_from);
    free(sm->hdr_to);
    free(sm);
}

size_t s2s_in_feed(s2s_in *sm, const void *data, size_t len, uint64_t now_ms)
{
    sm->now = now_ms;
    if (sm->state == S2S_IN_TLS)
        return 0; /* plaintext during the handshake: not ours to read */
    if (sm->state == S2S_IN_CLOSED)
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
            if (sm->state == S2S_IN_TLS) {
                check_nomem(sm);
                return off; /* RFC 6120 §5.4.3.3: the rest is discarded */
            }
            continue; /* SASL restart: the rest belongs to the new document */
        }
        /* XML_STREAM_ERROR: ours (already handled) or the parser's. */
        if (sm->state != S2S_IN_CLOSED) {
            const char *text = NULL;
            xml_cond cond = xml_stream_error(sm->b.xs, &text);
            fail(sm, cond, "%s", text && *text ? text : "XML error");
        }
        break;
    }
    check_nomem(sm);
    return len;
}

psyc_buf *s2s_in_output(s2s_in *sm)
{
    return &sm->b.out;
}

int s2s_in_next_action(s2s_in *sm, s2s_action *out)
{
    return s2s_pop(&sm->b, out);
}

void s2s_in_tls_done(s2s_in *sm, const char *const *names, size_t n, uint64_t now_ms)
{
    sm->now = now_ms;
    if (sm->state != S2S_IN_TLS)
        return;
    free_list(sm->cert_names, sm->ncert);
    sm->cert_names = NULL;
    sm->ncert = 0;
    if (n && names && (sm->cert_names = calloc(n, sizeof *sm->cert_names))) {
        for (size_t i = 0; i < n; i++) {
            const char *nm = names[i];
            if (!nm)
                continue;
            int wild = nm[0] == '*' && nm[1] == '.';
            char *d = s2s_domain_norm(wild ? nm + 2 : nm);
            if (!d)
                continue; /* not a domain name: cannot match anything */
            if (wild) {
                size_t wl = strlen(d) + 3;
                char *w = malloc(wl);
                if (w)
                    snprintf(w, wl, "*.%s", d);
                free(d);
                d = w;
            }
            if (d)
                sm->cert_names[sm->ncert++] = d;
        }
    }
    sm->tls_active = 1;
    sm->header_sent = 0;
    sm->id[0] = '\0';
    drop_pending(sm);
    sm->state = S2S_IN_WAIT_HEADER;
    s2s_log(&sm->b, "TLS established, certificate names: %zu", sm->ncert);
}

void s2s_in_tls_failed(s2s_in *sm, uint64_t now_ms)
{
    sm->now = now_ms;
    if (sm->state == S2S_IN_CLOSED)
        return;
    s2s_log(&sm->b, "TLS handshake failed");
    s2s_push_close(&sm->b, XML_COND_NONE, 0, 0, "TLS handshake failed");
    set_closed(sm);
}

int s2s_in_verify_result(s2s_in *sm, const char *from, const char *to, const char *id,
                         s2s_db_result result, const char *error_cond, uint64_t now_ms)
{
    sm->now = now_ms;
    if (sm->state != S2S_IN_OPEN || !id || strcmp(id, sm->id) != 0)
        return 0;
    char *f = s2s_domain_norm(from), *t = s2s_domain_norm(to);
    in_pair *p = f && t ? find_pair(sm, f, t) : NULL;
    int matched = p && p->state == PAIR_PENDING;
    if (matched) {
        if (result == S2S_DB_VALID) {
            db_valid(sm, p, S2S_AUTH_DIALBACK);
        } else if (result == S2S_DB_INVALID) {
            drop_pair(sm, p);
            db_invalid(sm, f, t);
        } else {
            /* XEP-0220 §2.4: an error while verifying is not the peer's
             * fault: always a dialback error (non-fatal for the stream). */
            const char *cond = s2s_stanza_error_name(error_cond);
            if (!cond)
                cond = "remote-server-not-found";
            drop_pair(sm, p);
            write_db(sm, "result", t, f, NULL, "error", cond);
            s2s_log(&sm->b, "dialback %s -> %s failed <%s/>", f, t, cond);
        }
    }
    free(f);
    free(t);
    check_nomem(sm);
    return matched;
}

void s2s_in_set_peer_dialback_errors(s2s_in *sm, int supported)
{
    sm->peer_errors = supported != 0;
}

void s2s_in_close(s2s_in *sm, xml_cond cond, const char *text, uint64_t now_ms)
{
    sm->now = now_ms;
    begin_close(sm, cond, text);
    check_nomem(sm);
}

void s2s_in_eof(s2s_in *sm, uint64_t now_ms)
{
    sm->now = now_ms;
    if (sm->state == S2S_IN_CLOSED)
        return;
    s2s_log(&sm->b, "connection lost%s", sm->state == S2S_IN_CLOSING ? " while closing" : "");
    s2s_push_close(&sm->b, XML_COND_NONE, 0, 0, "connection lost");
    set_closed(sm);
}

void s2s_in_tick(s2s_in *sm, uint64_t now_ms)
{
    sm->now = now_ms;
    switch (sm->state) {
    case S2S_IN_CLOSING:
        if (now_ms >= sm->close_deadline) {
            s2s_log(&sm->b, "peer did not close its stream in time");
            s2s_push_close(&sm->b, XML_COND_NONE, 0, 0, "close timeout");
            set_closed(sm);
        }
        break;
    case S2S_IN_WAIT_HEADER:
    case S2S_IN_OPEN:
    case S2S_IN_TLS:
        if (sm->nvalid == 0 && now_ms >= sm->auth_deadline) {
            fail(sm, XML_COND_CONNECTION_TIMEOUT, "not authenticated in time");
        } else if (sm->state == S2S_IN_OPEN && sm->nvalid > 0 && sm->idle_timeout &&
                   now_ms >= s2s_deadline(sm->last_activity, sm->idle_timeout)) {
            begin_close(sm, XML_COND_NONE, "idle"); /* XEP-0190 */
        }
        break;
    case S2S_IN_CLOSED:
        break;
    }
    check_nomem(sm);
}

uint64_t s2s_in_next_deadline(const s2s_in *sm)
{
    switch (sm->state) {
    case S2S_IN_CLOSING:
        return sm->close_deadline;
    case S2S_IN_CLOSED:
        return S2S_NO_DEADLINE;
    default:
        if (sm->nvalid == 0)
            return sm->auth_deadline;
        if (sm->state == S2S_IN_OPEN && sm->idle_timeout)
            return s2s_deadline(sm->last_activity, sm->idle_timeout);
        return S2S_NO_DEADLINE;
    }
}

s2s_in_state s2s_in_get_state(const s2s_in *sm)
{
    return sm->state;
}

const char *s2s_in_stream_id(const s2s_in *sm)
{
    return sm->id;
}

const char *s2s_in_peer_domain(const s2s_in *sm)
{
    return sm->hdr_from;
}

int s2s_in_tls_active(const s2s_in *sm)
{
    return sm->tls_active;
}

int s2s_in_is_authenticated(const s2s_in *sm, const char *from, const char *to)
{
    char *f = s2s_domain_norm(from), *t = s2s_domain_norm(to);
    int ok = 0;
    for (size_t i = 0; f && t && i < sm->npairs; i++)
        ok |= sm->pairs[i].state == PAIR_VALID && strcmp(sm->pairs[i].from, f) == 0 &&
              strcmp(sm->pairs[i].to, t) == 0;
    free(f);
    free(t);
    return ok;
}
