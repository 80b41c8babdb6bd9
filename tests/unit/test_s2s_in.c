/*
 * test_s2s_in.c: the receiving S2S stream machine (xmpp/s2s_in.c), driven
 * by byte scripts and by the real Prosody 0.12 / ejabberd 23.01 transcripts
 * (tests/vectors/xmpp/transcripts/, from ../shared/xmpp-harness/transcripts/).
 * Our output is parsed back and compared element by element.
 */
#include "sm_util.h"

#include "dialback/dialback.h"

#define SECRET "gw-dialback-secret"
#define NS_DECL                                                                                    \
    "xmlns='jabber:server' xmlns:db='jabber:server:dialback' "                                     \
    "xmlns:stream='http://etherx.jabber.org/streams'"
#define PEER_HDR "<?xml version='1.0'?><stream:stream " NS_DECL " from='xmpp.test' to='gw.test' version='1.0'>"
#define MSG(from, to) "<message from='" from "' to='" to "' type='chat'><body>hi</body></message>"

typedef struct in_h {
    s2s_in *sm;
    s2s_in_config cfg;
    const char *domains[3];
    sm_col out;
    sm_acts acts;
    sm_ids ids;
    uint64_t now;
} in_h;

static void in_init(in_h *h, s2s_tls_policy tls, int tls_available, int peer_errors)
{
    memset(h, 0, sizeof *h);
    h->domains[0] = "gw.test";
    h->domains[1] = "conf.gw.test";
    h->cfg.domains = h->domains;
    h->cfg.ndomains = 2;
    h->cfg.secret = SECRET;
    h->cfg.secret_len = strlen(SECRET);
    h->cfg.tls = tls;
    h->cfg.tls_available = tls_available;
    h->cfg.peer_dialback_errors = peer_errors;
    h->cfg.peer = "192.0.2.1:40000";
    h->cfg.gen_id = sm_ids_fn;
    h->cfg.gen_id_ud = &h->ids;
    h->cfg.close_timeout_ms = 5000;
    h->sm = s2s_in_new(&h->cfg, 0);
    assert_non_null(h->sm);
    sm_col_init(&h->out);
}

static void in_pump(in_h *h)
{
    sm_col_take(&h->out, s2s_in_output(h->sm));
    while (h->acts.n < sizeof h->acts.v / sizeof h->acts.v[0] &&
           s2s_in_next_action(h->sm, &h->acts.v[h->acts.n]))
        h->acts.n++;
}

static size_t in_feed(in_h *h, const char *s)
{
    size_t n = s2s_in_feed(h->sm, s, strlen(s), h->now);
    in_pump(h);
    return n;
}

static void in_done(in_h *h)
{
    s2s_in_free(h->sm);
    sm_col_free(&h->out);
    sm_acts_clear(&h->acts);
}

/* Opens the stream and authenticates from -> to by dialback. */
static void in_auth(in_h *h, const char *from, const char *to)
{
    char buf[512];
    size_t before = sm_acts_count(&h->acts, S2S_ACT_VERIFY_KEY);
    snprintf(buf, sizeof buf, "<db:result from='%s' to='%s'>k3y</db:result>", from, to);
    in_feed(h, buf);
    assert_int_equal(sm_acts_count(&h->acts, S2S_ACT_VERIFY_KEY), before + 1);
    const s2s_action *v = sm_acts_find(&h->acts, S2S_ACT_VERIFY_KEY, before);
    assert_string_equal(v->key, "k3y");
    assert_string_equal(v->id, s2s_in_stream_id(h->sm));
    assert_int_equal(s2s_in_verify_result(h->sm, v->from, v->to, v->id, S2S_DB_VALID, NULL, h->now), 1);
    in_pump(h);
    assert_true(s2s_in_is_authenticated(h->sm, from, to));
    const xml_node *r = sm_col_last(&h->out);
    assert_true(xml_is(r, "result", XML_NS_DIALBACK));
    assert_string_equal(sm_attr(r, "type"), "valid");
    assert_string_equal(sm_attr(r, "from"), to);
    assert_string_equal(sm_attr(r, "to"), from);
}

static const s2s_action *last_close(const in_h *h)
{
    const s2s_action *c = sm_acts_find(&h->acts, S2S_ACT_CLOSE, 0);
    assert_non_null(c);
    assert_int_equal(sm_acts_count(&h->acts, S2S_ACT_CLOSE), 1);
    return c;
}

/* The stream error we sent, from our parsed output. */
static void assert_stream_error(const in_h *h, const char *cond)
{
    const xml_node *e = sm_col_find(&h->out, "error", XML_NS_STREAMS, 0);
    assert_non_null(e);
    assert_non_null(xml_child(e, cond, XML_NS_STREAM_ERRORS));
    assert_int_equal(h->out.v[h->out.n - 1].type, SM_CLOSE);
    assert_int_equal(s2s_in_get_state(h->sm), S2S_IN_CLOSED);
    assert_int_equal(last_close(h)->cond, xml_cond_from_name(cond));
    assert_true(sm_acts_count(&h->acts, S2S_ACT_LOG) > 0);
}

/* ---- transcript replay ------------------------------------------------------ */

/* The fake gw.test answered db:verify with its own random secret; our
 * machine must say "valid" for keys made with OUR secret, so the key in a
 * db:verify request is replaced by ours for the same from/to/id. */
static char *with_our_key(const char *line)
{
    char *s = strdup(line);
    assert_non_null(s);
    if (!strstr(s, "<db:verify") || strstr(s, "type="))
        return s;
    char from[128] = "", to[128] = "", id[128] = "";
    const char *names[] = {"from=", "to=", "id="};
    char *vals[] = {from, to, id};
    for (int i = 0; i < 3; i++) {
        const char *p = strstr(s, names[i]);
        assert_non_null(p);
        p += strlen(names[i]);
        char q = *p++;
        const char *e = strchr(p, q);
        snprintf(vals[i], 128, "%.*s", (int)(e - p), p);
    }
    char key[DB_KEY_HEX_LEN + 1];
    assert_int_equal(db_key_generate(SECRET, strlen(SECRET), from, to, id, key), 0);
    char *gt = strchr(strstr(s, "<db:verify"), '>');
    char *end = strstr(s, "</db:verify>");
    assert_true(gt && end && end - gt - 1 == DB_KEY_HEX_LEN);
    memcpy(gt + 1, key, DB_KEY_HEX_LEN);
    return s;
}

static void replay_in(const char *file, const char *label, s2s_tls_policy tls, int bytewise,
                      size_t expect_stanzas)
{
    sm_transcript t;
    sm_transcript_load(&t, file);
    sm_col exp;
    sm_transcript_expected(&t, label, &exp);
    in_h h;
    in_init(&h, tls, tls != S2S_TLS_NONE, 0);
    s2s_in_free(h.sm);
    /* The ids gw.test gave, in order, so that ids in db:verify match. */
    for (size_t i = 0; i < exp.n && h.ids.n < 16; i++)
        if (exp.v[i].type == SM_OPEN && xml_attr_get(exp.v[i].n, "id"))
            h.ids.v[h.ids.n++] = xml_attr_get(exp.v[i].n, "id");
    h.sm = s2s_in_new(&h.cfg, 0);
    assert_non_null(h.sm);

    size_t stanzas = 0, verified = 0;
    for (size_t i = 0; i < t.n; i++) {
        const sm_line *l = &t.v[i];
        if (strcmp(l->label, label) != 0)
            continue;
        if (l->dir == '-') {
            s2s_in_tls_done(h.sm, NULL, 0, h.now);
            in_pump(&h);
            continue;
        }
        if (l->dir != '<')
            continue;
        char *data = with_our_key(l->data);
        size_t len = strlen(data);
        if (bytewise) {
            for (size_t k = 0; k < len; k++)
                assert_int_equal(s2s_in_feed(h.sm, data + k, 1, h.now), 1);
        } else {
            assert_int_equal(s2s_in_feed(h.sm, data, len, h.now), len);
        }
        free(data);
        in_pump(&h);
        /* Run the actions the way the gateway would. */
        for (size_t a = 0; a < h.acts.n; a++) {
            s2s_action *x = &h.acts.v[a];
            if (x->kind == S2S_ACT_VERIFY_KEY) {
                verified++;
                assert_string_equal(x->to, "gw.test");
                assert_int_equal(s2s_in_verify_result(h.sm, x->from, x->to, x->id, S2S_DB_VALID,
                                                      NULL, h.now),
                                 1);
            } else if (x->kind == S2S_ACT_STANZA) {
                stanzas++;
                assert_string_equal(x->to, "gw.test");
                assert_true(xml_is(x->stanza, "message", XML_NS_SERVER));
            }
        }
        sm_acts_clear(&h.acts);
        in_pump(&h);
    }
    char what[256];
    snprintf(what, sizeof what, "%s %s%s", file, label, bytewise ? " (byte by byte)" : "");
    sm_expect_same(&h.out, &exp, what);
    assert_int_equal(stanzas, expect_stanzas);
    (void)verified;
    sm_col_free(&exp);
    in_done(&h);
    sm_transcript_free(&t);
}

static void test_replay_prosody(void **state)
{
    (void)state;
    for (int bw = 0; bw < 2; bw++) {
        replay_in("s2s-plain.txt", "IN1", S2S_TLS_NONE, bw, 1);
        replay_in("s2s-plain-peer-initiates-only.txt", "IN1", S2S_TLS_NONE, bw, 1);
        replay_in("s2s-plain-fresh-gw-initiates.txt", "IN2", S2S_TLS_NONE, bw, 0);
        replay_in("s2s-starttls-offered.txt", "IN1", S2S_TLS_OPTIONAL, bw, 1);
        replay_in("s2s-starttls-required.txt", "IN1", S2S_TLS_REQUIRED, bw, 1);
    }
}

static void test_replay_ejabberd(void **state)
{
    (void)state;
    for (int bw = 0; bw < 2; bw++) {
        replay_in("ej-s2s-plain.txt", "IN1", S2S_TLS_NONE, bw, 1);
        replay_in("ej-s2s-plain.txt", "IN4", S2S_TLS_NONE, bw, 0); /* verify-only connection */
        replay_in("ej-s2s-starttls.txt", "IN1", S2S_TLS_OPTIONAL, bw, 1);
        replay_in("ej-s2s-starttls.txt", "IN4", S2S_TLS_OPTIONAL, bw, 0);
    }
}

/* ---- STARTTLS ------------------------------------------------------------------ */

static const xml_node *features(const in_h *h, size_t nth)
{
    const xml_node *f = sm_col_find(&h->out, "features", XML_NS_STREAMS, nth);
    assert_non_null(f);
    return f;
}

static void test_tls_none(void **state)
{
    (void)state;
    in_h h;
    in_init(&h, S2S_TLS_NONE, 0, 0);
    in_feed(&h, PEER_HDR);
    const xml_node *f = features(&h, 0);
    assert_null(xml_child(f, "starttls", XML_NS_TLS));
    assert_non_null(xml_child(xml_child(f, "dialback", XML_NS_DIALBACK_FEATURE), "errors", NULL));
    /* Prosody with s2s_require_encryption sends <starttls/> anyway (notes
     * §2.7): <failure/> and close. */
    in_feed(&h, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_non_null(sm_col_find(&h.out, "failure", XML_NS_TLS, 0));
    assert_int_equal(h.out.v[h.out.n - 1].type, SM_CLOSE);
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_START_TLS), 0);
    assert_int_equal(s2s_in_get_state(h.sm), S2S_IN_CLOSED);
    last_close(&h);
    in_done(&h);
}

static void test_tls_optional(void **state)
{
    (void)state;
    in_h h;
    in_init(&h, S2S_TLS_OPTIONAL, 1, 0);
    in_feed(&h, PEER_HDR);
    const xml_node *f = features(&h, 0);
    const xml_node *st = xml_child(f, "starttls", XML_NS_TLS);
    assert_non_null(st);
    assert_null(xml_child(st, "required", NULL));
    assert_non_null(xml_child(f, "dialback", XML_NS_DIALBACK_FEATURE));
    /* Dialback without TLS is allowed with an optional policy. */
    in_auth(&h, "xmpp.test", "gw.test");
    in_feed(&h, MSG("alice@xmpp.test/r", "bob@gw.test"));
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_STANZA), 1);
    /* No STARTTLS after authentication. */
    in_feed(&h, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_non_null(sm_col_find(&h.out, "failure", XML_NS_TLS, 0));
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_START_TLS), 0);
    in_done(&h);
}

static void test_tls_required(void **state)
{
    (void)state;
    for (int errs = 0; errs < 2; errs++) {
        in_h h;
        in_init(&h, S2S_TLS_REQUIRED, 1, errs);
        in_feed(&h, PEER_HDR);
        const xml_node *f = features(&h, 0);
        assert_non_null(xml_child(xml_child(f, "starttls", XML_NS_TLS), "required", NULL));
        assert_null(xml_child(f, "dialback", NULL));
        /* db:result before TLS: XEP-0220 §2.4 policy-violation. */
        in_feed(&h, "<db:result from='xmpp.test' to='gw.test'>k</db:result>");
        assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_VERIFY_KEY), 0);
        if (errs) {
            const xml_node *r = sm_col_last(&h.out);
            assert_true(xml_is(r, "result", XML_NS_DIALBACK));
            assert_string_equal(sm_attr(r, "type"), "error");
            assert_non_null(xml_child(xml_child(r, "error", NULL), "policy-violation", XML_NS_STANZA_ERRORS));
            assert_int_equal(s2s_in_get_state(h.sm), S2S_IN_OPEN);
            /* db:verify before TLS: a dialback error too, never a key answer. */
            in_feed(&h, "<db:verify from='xmpp.test' to='gw.test' id='x'>k</db:verify>");
            r = sm_col_last(&h.out);
            assert_true(xml_is(r, "verify", XML_NS_DIALBACK));
            assert_string_equal(sm_attr(r, "type"), "error");
        } else {
            assert_stream_error(&h, "policy-violation");
        }
        in_done(&h);
    }
}

/* RFC 6120 §5.4.3.3: what follows <starttls/> in the same read is not
 * consumed; the caller discards it. */
static void test_starttls_injection(void **state)
{
    (void)state;
    in_h h;
    in_init(&h, S2S_TLS_OPTIONAL, 1, 0);
    in_feed(&h, PEER_HDR);
    const char *starttls = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
    char buf[1024];
    snprintf(buf, sizeof buf, "%s<db:result from='evil.test' to='gw.test'>k</db:result>" MSG(
                                  "a@evil.test", "b@gw.test"),
             starttls);
    size_t n = in_feed(&h, buf);
    assert_int_equal(n, strlen(starttls));
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_START_TLS), 1);
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_VERIFY_KEY), 0);
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_STANZA), 0);
    assert_true(xml_is(sm_col_last(&h.out), "proceed", XML_NS_TLS));
    assert_int_equal(s2s_in_get_state(h.sm), S2S_IN_TLS);
    /* Plaintext during the handshake is refused too. */
    assert_int_equal(s2s_in_feed(h.sm, "<x/>", 4, 0), 0);
    /* After the handshake: a new stream, a new id, no STARTTLS offered. */
    const char *old = strdup(s2s_in_stream_id(h.sm));
    s2s_in_tls_done(h.sm, NULL, 0, 0);
    in_feed(&h, PEER_HDR);
    assert_string_not_equal(old, s2s_in_stream_id(h.sm));
    free((void *)old);
    const xml_node *f = features(&h, 1);
    assert_null(xml_child(f, "starttls", NULL));
    assert_null(xml_child(f, "mechanisms", NULL)); /* no certificate */
    assert_non_null(xml_child(f, "dialback", XML_NS_DIALBACK_FEATURE));
    assert_int_equal(s2s_in_tls_active(h.sm), 1);
    in_auth(&h, "xmpp.test", "gw.test");
    in_done(&h);
}

/* ---- SASL EXTERNAL ----------------------------------------------------------------- */

static void tls_with_cert(in_h *h, const char *const *names, size_t n)
{
    in_feed(h, PEER_HDR);
    in_feed(h, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_int_equal(s2s_in_get_state(h->sm), S2S_IN_TLS);
    s2s_in_tls_done(h->sm, names, n, h->now);
    in_feed(h, PEER_HDR);
}

static void test_sasl_external_success(void **state)
{
    (void)state;
    const char *auths[] = {"Z3cudGVzdA==" /* wrong: gw.test */, "eG1wcC50ZXN0" /* xmpp.test */, "="};
    for (int k = 1; k < 3; k++) {
        in_h h;
        in_init(&h, S2S_TLS_REQUIRED, 1, 0);
        const char *names[] = {"XMPP.test", "*.xmpp.test"};
        tls_with_cert(&h, names, 2);
        const xml_node *m = xml_child(features(&h, 1), "mechanisms", XML_NS_SASL);
        assert_non_null(m);
        assert_string_equal(xml_elem_text(xml_child(m, "mechanism", NULL), NULL), "EXTERNAL");
        char buf[1024];
        /* The peer's restarted header may come in the same read. */
        snprintf(buf, sizeof buf,
                 "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>%s</auth>" PEER_HDR,
                 auths[k]);
        in_feed(&h, buf);
        assert_non_null(sm_col_find(&h.out, "success", XML_NS_SASL, 0));
        const s2s_action *a = sm_acts_find(&h.acts, S2S_ACT_AUTHENTICATED, 0);
        assert_non_null(a);
        assert_int_equal(a->method, S2S_AUTH_SASL_EXTERNAL);
        assert_string_equal(a->from, "xmpp.test");
        assert_string_equal(a->to, "gw.test");
        /* Restarted: third header, features without SASL. */
        assert_int_equal(sm_col_count(&h.out, SM_OPEN), 3);
        const xml_node *f = features(&h, 2);
        assert_null(xml_child(f, "mechanisms", NULL));
        assert_null(xml_child(f, "starttls", NULL));
        in_feed(&h, MSG("alice@xmpp.test/r", "bob@gw.test"));
        assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_STANZA), 1);
        in_done(&h);
    }
}

static void test_sasl_external_failure(void **state)
{
    (void)state;
    /* Certificate for another domain: EXTERNAL is not offered; asking
     * anyway fails, and the stream stays for dialback. */
    in_h h;
    in_init(&h, S2S_TLS_REQUIRED, 1, 0);
    const char *other[] = {"other.test", "*.test.xmpp"};
    tls_with_cert(&h, other, 2);
    assert_null(xml_child(features(&h, 1), "mechanisms", NULL));
    in_feed(&h, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
    const xml_node *fl = sm_col_find(&h.out, "failure", XML_NS_SASL, 0);
    assert_non_null(fl);
    assert_non_null(xml_child(fl, "invalid-mechanism", NULL));
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_AUTHENTICATED), 0);
    in_auth(&h, "xmpp.test", "gw.test"); /* dialback fallback */
    in_done(&h);

    /* Offered, but the authzid is another domain than the stream's. */
    in_init(&h, S2S_TLS_REQUIRED, 1, 0);
    const char *names[] = {"xmpp.test", "gw.test"};
    tls_with_cert(&h, names, 2);
    in_feed(&h, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>Z3cudGVzdA==</auth>");
    fl = sm_col_find(&h.out, "failure", XML_NS_SASL, 0);
    assert_non_null(xml_child(fl, "invalid-authzid", NULL));
    /* Bad base64, and a second try, are refused as well. */
    in_feed(&h, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>!!</auth>");
    assert_non_null(sm_col_find(&h.out, "failure", XML_NS_SASL, 1));
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_AUTHENTICATED), 0);
    assert_int_equal(s2s_in_get_state(h.sm), S2S_IN_OPEN);
    in_done(&h);
}

static void test_wildcard_cert(void **state)
{
    (void)state;
    /* RFC 6125 §6.4.3: *.xmpp.test covers conf.xmpp.test, not xmpp.test
     * and not a.b.xmpp.test. */
    const char *names[] = {"*.xmpp.test"};
    const char *hdr = "<?xml version='1.0'?><stream:stream " NS_DECL
                      " from='conf.xmpp.test' to='gw.test' version='1.0'>";
    in_h h;
    in_init(&h, S2S_TLS_OPTIONAL, 1, 0);
    in_feed(&h, PEER_HDR);
    in_feed(&h, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    s2s_in_tls_done(h.sm, names, 1, 0);
    in_feed(&h, hdr);
    assert_non_null(xml_child(features(&h, 1), "mechanisms", XML_NS_SASL));
    in_done(&h);

    in_init(&h, S2S_TLS_OPTIONAL, 1, 0);
    tls_with_cert(&h, names, 1); /* from='xmpp.test' */
    assert_null(xml_child(features(&h, 1), "mechanisms", NULL));
    in_done(&h);
}

/* ---- dialback ------------------------------------------------------------------------ */

static void open_stream(in_h *h)
{
    in_feed(h, PEER_HDR);
    assert_int_equal(s2s_in_get_state(h->sm), S2S_IN_OPEN);
}

static void test_dialback_invalid(void **state)
{
    (void)state;
    for (int errs = 0; errs < 2; errs++) {
        in_h h;
        in_init(&h, S2S_TLS_NONE, 0, errs);
        open_stream(&h);
        in_feed(&h, "<db:result from='xmpp.test' to='gw.test'>bad</db:result>");
        const s2s_action *v = sm_acts_find(&h.acts, S2S_ACT_VERIFY_KEY, 0);
        assert_non_null(v);
        assert_int_equal(s2s_in_verify_result(h.sm, "xmpp.test", "gw.test", v->id, S2S_DB_INVALID, NULL, 0), 1);
        in_pump(&h);
        assert_false(s2s_in_is_authenticated(h.sm, "xmpp.test", "gw.test"));
        const xml_node *r = sm_col_find(&h.out, "result", XML_NS_DIALBACK, 0);
        assert_non_null(r);
        if (errs) {
            /* XEP-0220 §2.1.2: <forbidden/>, the stream lives on. */
            assert_string_equal(sm_attr(r, "type"), "error");
            assert_non_null(xml_child(xml_child(r, "error", NULL), "forbidden", XML_NS_STANZA_ERRORS));
            assert_int_equal(s2s_in_get_state(h.sm), S2S_IN_OPEN);
            in_auth(&h, "conf.xmpp.test", "gw.test");
        } else {
            /* §2.2.1: type='invalid', then the stream is closed. */
            assert_string_equal(sm_attr(r, "type"), "invalid");
            assert_int_equal(h.out.v[h.out.n - 1].type, SM_CLOSE);
            assert_int_equal(s2s_in_get_state(h.sm), S2S_IN_CLOSING);
        }
        /* A second answer for the same request matches nothing. */
        assert_int_equal(s2s_in_verify_result(h.sm, "xmpp.test", "gw.test", v->id, S2S_DB_VALID, NULL, 0), 0);
        in_done(&h);
    }
}

static void test_dialback_error(void **state)
{
    (void)state;
    for (int errs = 0; errs < 2; errs++) {
        in_h h;
        in_init(&h, S2S_TLS_NONE, 0, errs);
        open_stream(&h);
        in_feed(&h, "<db:result from='xmpp.test' to='gw.test'>k</db:result>");
        const s2s_action *v = sm_acts_find(&h.acts, S2S_ACT_VERIFY_KEY, 0);
        /* Could not reach the authoritative server: always a dialback
         * error, never a stream error (XEP-0220 §2.4). */
        assert_int_equal(s2s_in_verify_result(h.sm, v->from, v->to, v->id, S2S_DB_ERROR,
                                              "remote-server-timeout", 0),
                         1);
        in_pump(&h);
        const xml_node *r = sm_col_last(&h.out);
        assert_true(xml_is(r, "result", XML_NS_DIALBACK));
        assert_string_equal(sm_attr(r, "type"), "error");
        assert_string_equal(sm_attr(r, "from"), "gw.test");
        assert_string_equal(sm_attr(r, "to"), "xmpp.test");
        const xml_node *e = xml_child(r, "error", NULL);
        assert_string_equal(sm_attr(e, "type"), "wait");
        assert_non_null(xml_child(e, "remote-server-timeout", XML_NS_STANZA_ERRORS));
        assert_int_equal(s2s_in_get_state(h.sm), S2S_IN_OPEN);
        /* It may try again. */
        in_auth(&h, "xmpp.test", "gw.test");
        in_done(&h);
    }
}

static void test_dialback_unknown_target(void **state)
{
    (void)state;
    for (int errs = 0; errs < 2; errs++) {
        in_h h;
        in_init(&h, S2S_TLS_NONE, 0, errs);
        open_stream(&h);
        in_feed(&h, "<db:result from='xmpp.test' to='nope.test'>k</db:result>");
        assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_VERIFY_KEY), 0);
        if (errs) {
            const xml_node *r = sm_col_last(&h.out);
            assert_string_equal(sm_attr(r, "type"), "error");
            assert_string_equal(sm_attr(r, "from"), "nope.test"); /* XEP-0220 §2.4 */
            assert_non_null(xml_child(xml_child(r, "error", NULL), "item-not-found", XML_NS_STANZA_ERRORS));
            assert_int_equal(s2s_in_get_state(h.sm), S2S_IN_OPEN);
        } else {
            assert_stream_error(&h, "host-unknown");
        }
        in_done(&h);
    }
}

/* XEP-0220 §2.6: several sender and target domains over one stream. */
static void test_two_domains_one_stream(void **state)
{
    (void)state;
    in_h h;
    in_init(&h, S2S_TLS_NONE, 0, 1);
    open_stream(&h);
    /* Both requests in flight at once, answered out of order. */
    in_feed(&h, "<db:result from='xmpp.test' to='gw.test'>k1</db:result>"
                "<db:result from='conf.xmpp.test' to='conf.gw.test'>k2</db:result>");
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_VERIFY_KEY), 2);
    const s2s_action *v2 = sm_acts_find(&h.acts, S2S_ACT_VERIFY_KEY, 1);
    assert_string_equal(v2->from, "conf.xmpp.test");
    assert_string_equal(v2->to, "conf.gw.test");
    assert_int_equal(s2s_in_verify_result(h.sm, v2->from, v2->to, v2->id, S2S_DB_VALID, NULL, 0), 1);
    in_pump(&h);
    in_feed(&h, MSG("room@conf.xmpp.test/n", "x@conf.gw.test"));
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_STANZA), 1);
    const s2s_action *v1 = sm_acts_find(&h.acts, S2S_ACT_VERIFY_KEY, 0);
    assert_int_equal(s2s_in_verify_result(h.sm, v1->from, v1->to, v1->id, S2S_DB_VALID, NULL, 0), 1);
    in_pump(&h);
    in_feed(&h, MSG("alice@xmpp.test/r", "bob@gw.test") MSG("room@conf.xmpp.test/n", "x@conf.gw.test"));
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_STANZA), 3);
    const s2s_action *s = sm_acts_find(&h.acts, S2S_ACT_STANZA, 1);
    assert_string_equal(s->from, "xmpp.test");
    assert_string_equal(s->to, "gw.test");
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_AUTHENTICATED), 2);
    /* A pair that was not authenticated (xmpp.test -> conf.gw.test) is
     * refused although both domains are authenticated in other pairs. */
    in_feed(&h, MSG("alice@xmpp.test/r", "x@conf.gw.test"));
    assert_stream_error(&h, "invalid-from");
    in_done(&h);
}

/* ---- stanza checks (RFC 6120 §4.9.3) ------------------------------------------------- */

static void test_forged_from(void **state)
{
    (void)state;
    in_h h;
    in_init(&h, S2S_TLS_NONE, 0, 0);
    open_stream(&h);
    in_auth(&h, "xmpp.test", "gw.test");
    in_feed(&h, MSG("mallory@evil.test", "bob@gw.test") MSG("alice@xmpp.test", "bob@gw.test"));
    assert_stream_error(&h, "invalid-from");
    /* Nothing after the error is processed. */
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_STANZA), 0);
    const s2s_action *c = last_close(&h);
    assert_int_equal(c->cond_remote, 0);
    assert_int_equal(c->clean, 0);
    in_done(&h);
}

static void test_stanza_before_auth(void **state)
{
    (void)state;
    in_h h;
    in_init(&h, S2S_TLS_NONE, 0, 0);
    open_stream(&h);
    in_feed(&h, MSG("alice@xmpp.test", "bob@gw.test"));
    assert_stream_error(&h, "not-authorized");
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_STANZA), 0);
    in_done(&h);
}

static void test_unknown_to(void **state)
{
    (void)state;
    in_h h;
    in_init(&h, S2S_TLS_NONE, 0, 0);
    open_stream(&h);
    in_auth(&h, "xmpp.test", "gw.test");
    in_feed(&h, MSG("alice@xmpp.test", "bob@elsewhere.test"));
    assert_stream_error(&h, "host-unknown");
    in_done(&h);

    /* A stanza without 'to' between servers: improper-addressing. */
    in_init(&h, S2S_TLS_NONE, 0, 0);
    open_stream(&h);
    in_auth(&h, "xmpp.test", "gw.test");
    in_feed(&h, "<presence from='alice@xmpp.test/r'/>");
    assert_stream_error(&h, "improper-addressing");
    in_done(&h);
}

static void test_header_errors(void **state)
{
    (void)state;
    /* A 'to' we do not serve: our header first, then the error (RFC 6120
     * §4.9.1.1, §4.9.3.6). */
    in_h h;
    in_init(&h, S2S_TLS_NONE, 0, 0);
    in_feed(&h, "<?xml version='1.0'?><stream:stream " NS_DECL " from='xmpp.test' to='other.test' version='1.0'>");
    assert_int_equal(h.out.v[0].type, SM_OPEN);
    assert_null(xml_attr_get(h.out.v[0].n, "from"));
    assert_stream_error(&h, "host-unknown");
    in_done(&h);

    /* Wrong content namespace: invalid-namespace, also after a header. */
    in_init(&h, S2S_TLS_NONE, 0, 0);
    in_feed(&h, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                "xmlns:stream='http://etherx.jabber.org/streams' to='gw.test' version='1.0'>");
    assert_int_equal(h.out.v[0].type, SM_OPEN);
    assert_stream_error(&h, "invalid-namespace");
    in_done(&h);

    /* Not XML at all. */
    in_init(&h, S2S_TLS_NONE, 0, 0);
    open_stream(&h);
    in_feed(&h, "<message><</message>");
    assert_stream_error(&h, "not-well-formed");
    in_done(&h);

    /* A stanza in jabber:client on a server stream. */
    in_init(&h, S2S_TLS_NONE, 0, 0);
    open_stream(&h);
    in_auth(&h, "xmpp.test", "gw.test");
    in_feed(&h, "<message xmlns='jabber:client' from='a@xmpp.test' to='b@gw.test'/>");
    assert_stream_error(&h, "invalid-namespace");
    in_done(&h);

    /* An unknown element after authentication. */
    in_init(&h, S2S_TLS_NONE, 0, 0);
    open_stream(&h);
    in_auth(&h, "xmpp.test", "gw.test");
    in_feed(&h, "<foo xmlns='urn:example'/>");
    assert_stream_error(&h, "unsupported-stanza-type");
    in_done(&h);
}

static void test_pre_1_0_peer(void **state)
{
    (void)state;
    /* RFC 6120 §4.7.5: no version, no features; dialback still works. */
    in_h h;
    in_init(&h, S2S_TLS_OPTIONAL, 1, 0);
    in_feed(&h, "<?xml version='1.0'?><stream:stream " NS_DECL " from='xmpp.test' to='gw.test'>");
    assert_int_equal(h.out.n, 1);
    assert_null(xml_attr_get(h.out.v[0].n, "version"));
    in_auth(&h, "xmpp.test", "gw.test");
    in_done(&h);

    in_init(&h, S2S_TLS_REQUIRED, 1, 0);
    in_feed(&h, "<?xml version='1.0'?><stream:stream " NS_DECL " from='xmpp.test' to='gw.test'>");
    assert_stream_error(&h, "unsupported-version");
    in_done(&h);
}

/* ---- authoritative role ------------------------------------------------------------------- */

static void test_authoritative_verify(void **state)
{
    (void)state;
    char key[DB_KEY_HEX_LEN + 1];
    assert_int_equal(db_key_generate(SECRET, strlen(SECRET), "xmpp.test", "gw.test", "S1", key), 0);
    in_h h;
    in_init(&h, S2S_TLS_NONE, 0, 0);
    open_stream(&h);
    char buf[512];
    snprintf(buf, sizeof buf, "<db:verify from='xmpp.test' to='gw.test' id='S1'>%s</db:verify>", key);
    in_feed(&h, buf);
    const xml_node *r = sm_col_last(&h.out);
    assert_true(xml_is(r, "verify", XML_NS_DIALBACK));
    assert_string_equal(sm_attr(r, "type"), "valid");
    assert_string_equal(sm_attr(r, "from"), "gw.test");
    assert_string_equal(sm_attr(r, "to"), "xmpp.test");
    assert_string_equal(sm_attr(r, "id"), "S1");
    /* Another id: invalid. */
    snprintf(buf, sizeof buf, "<db:verify from='xmpp.test' to='gw.test' id='S2'>%s</db:verify>", key);
    in_feed(&h, buf);
    assert_string_equal(sm_attr(sm_col_last(&h.out), "type"), "invalid");
    /* A domain we do not serve: item-not-found, not a stream error. */
    in_feed(&h, "<db:verify from='xmpp.test' to='zzz.test' id='S1'>00</db:verify>");
    r = sm_col_last(&h.out);
    assert_string_equal(sm_attr(r, "type"), "error");
    assert_non_null(xml_child(xml_child(r, "error", NULL), "item-not-found", XML_NS_STANZA_ERRORS));
    /* A verdict nobody asked for on this stream is ignored (XEP-0220 §4.1). */
    in_feed(&h, "<db:result from='xmpp.test' to='gw.test' type='valid'/>"
                "<db:verify from='xmpp.test' to='gw.test' id='S1' type='valid'/>");
    assert_false(s2s_in_is_authenticated(h.sm, "xmpp.test", "gw.test"));
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_AUTHENTICATED), 0);
    assert_int_equal(s2s_in_get_state(h.sm), S2S_IN_OPEN);
    /* A stale answer (other stream id) matches nothing. */
    in_feed(&h, "<db:result from='xmpp.test' to='gw.test'>k</db:result>");
    assert_int_equal(s2s_in_verify_result(h.sm, "xmpp.test", "gw.test", "old-id", S2S_DB_VALID, NULL, 0), 0);
    assert_false(s2s_in_is_authenticated(h.sm, "xmpp.test", "gw.test"));
    in_done(&h);
}

static void test_cert_dialback(void **state)
{
    (void)state;
    in_h h;
    in_init(&h, S2S_TLS_REQUIRED, 1, 0);
    s2s_in_free(h.sm);
    h.cfg.cert_dialback = 1;
    h.sm = s2s_in_new(&h.cfg, 0);
    const char *names[] = {"xmpp.test"};
    tls_with_cert(&h, names, 1);
    in_feed(&h, "<db:result from='xmpp.test' to='gw.test'>k</db:result>");
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_VERIFY_KEY), 0);
    const s2s_action *a = sm_acts_find(&h.acts, S2S_ACT_AUTHENTICATED, 0);
    assert_non_null(a);
    assert_int_equal(a->method, S2S_AUTH_CERT_DIALBACK);
    /* Another domain still needs a real dialback. */
    in_feed(&h, "<db:result from='conf.xmpp.test' to='gw.test'>k</db:result>");
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_VERIFY_KEY), 1);
    in_done(&h);
}

/* ---- closing (XEP-0190, RFC 6120 §4.4) ------------------------------------------------------ */

static void test_close_delivers_late_stanzas(void **state)
{
    (void)state;
    in_h h;
    in_init(&h, S2S_TLS_NONE, 0, 0);
    open_stream(&h);
    in_auth(&h, "xmpp.test", "gw.test");
    s2s_in_close(h.sm, XML_COND_NONE, NULL, 100);
    in_pump(&h);
    assert_int_equal(h.out.v[h.out.n - 1].type, SM_CLOSE);
    assert_int_equal(s2s_in_get_state(h.sm), S2S_IN_CLOSING);
    assert_int_equal(s2s_in_next_deadline(h.sm), 5100);
    size_t out_before = h.out.n;
    /* The peer had these in flight: they still arrive. */
    in_feed(&h, MSG("alice@xmpp.test/r", "bob@gw.test") "<presence from='alice@xmpp.test/r' to='bob@gw.test'/>");
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_STANZA), 2);
    /* Nothing is written after our close tag, not even for a forgery. */
    in_feed(&h, MSG("m@evil.test", "bob@gw.test") "<db:verify from='xmpp.test' to='gw.test' id='x'>k</db:verify>");
    assert_int_equal(h.out.n, out_before);
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_STANZA), 2);
    in_feed(&h, "</stream:stream>");
    const s2s_action *c = last_close(&h);
    assert_int_equal(c->clean, 1);
    assert_int_equal(s2s_in_get_state(h.sm), S2S_IN_CLOSED);
    in_done(&h);

    /* The peer never closes: CLOSE after the timeout, not clean. */
    in_init(&h, S2S_TLS_NONE, 0, 0);
    open_stream(&h);
    s2s_in_close(h.sm, XML_COND_SYSTEM_SHUTDOWN, "bye", 0);
    in_pump(&h);
    assert_non_null(xml_child(sm_col_find(&h.out, "error", XML_NS_STREAMS, 0), "system-shutdown", NULL));
    s2s_in_tick(h.sm, 4999);
    in_pump(&h);
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_CLOSE), 0);
    s2s_in_tick(h.sm, 5000);
    in_pump(&h);
    assert_int_equal(last_close(&h)->clean, 0);
    in_done(&h);
}

static void test_peer_closes(void **state)
{
    (void)state;
    in_h h;
    in_init(&h, S2S_TLS_NONE, 0, 0);
    open_stream(&h);
    in_auth(&h, "xmpp.test", "gw.test");
    in_feed(&h, MSG("alice@xmpp.test/r", "bob@gw.test") "</stream:stream><garbage");
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_STANZA), 1);
    assert_int_equal(h.out.v[h.out.n - 1].type, SM_CLOSE); /* we answered the close */
    assert_int_equal(last_close(&h)->clean, 1);
    in_done(&h);

    /* A stream error from the peer. */
    in_init(&h, S2S_TLS_NONE, 0, 0);
    open_stream(&h);
    in_feed(&h, "<stream:error><host-gone xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    const s2s_action *c = last_close(&h);
    assert_int_equal(c->cond, XML_COND_HOST_GONE);
    assert_int_equal(c->cond_remote, 1);
    in_done(&h);
}

static void test_timeouts(void **state)
{
    (void)state;
    in_h h;
    in_init(&h, S2S_TLS_NONE, 0, 0);
    s2s_in_free(h.sm);
    h.cfg.auth_timeout_ms = 1000;
    h.cfg.idle_timeout_ms = 60000;
    h.sm = s2s_in_new(&h.cfg, 0);
    open_stream(&h);
    assert_int_equal(s2s_in_next_deadline(h.sm), 1000);
    s2s_in_tick(h.sm, 1000);
    in_pump(&h);
    assert_stream_error(&h, "connection-timeout");
    in_done(&h);

    in_init(&h, S2S_TLS_NONE, 0, 0);
    s2s_in_free(h.sm);
    h.cfg.auth_timeout_ms = 1000;
    h.cfg.idle_timeout_ms = 60000;
    h.sm = s2s_in_new(&h.cfg, 0);
    open_stream(&h);
    h.now = 500;
    in_auth(&h, "xmpp.test", "gw.test");
    h.now = 10000;
    in_feed(&h, MSG("alice@xmpp.test/r", "bob@gw.test"));
    assert_int_equal(s2s_in_next_deadline(h.sm), 70000);
    s2s_in_tick(h.sm, 69999);
    assert_int_equal(s2s_in_get_state(h.sm), S2S_IN_OPEN);
    s2s_in_tick(h.sm, 70000); /* idle: graceful close (XEP-0190) */
    in_pump(&h);
    assert_int_equal(s2s_in_get_state(h.sm), S2S_IN_CLOSING);
    in_done(&h);
}

/* A peer vanishing in the middle of a stanza: nothing leaks (ASan). */
static void test_vanish_mid_stanza(void **state)
{
    (void)state;
    in_h h;
    in_init(&h, S2S_TLS_NONE, 0, 0);
    open_stream(&h);
    in_auth(&h, "xmpp.test", "gw.test");
    in_feed(&h, "<message from='alice@xmpp.test' to='bob@gw.test'><body>half a mess");
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_STANZA), 0);
    s2s_in_eof(h.sm, 0);
    in_pump(&h);
    assert_int_equal(last_close(&h)->clean, 0);
    in_done(&h);

    /* And without even telling the machine. */
    in_init(&h, S2S_TLS_NONE, 0, 0);
    in_feed(&h, PEER_HDR "<db:result from='xmpp.test' to='gw.test'>k</db:result><message><body>x");
    in_done(&h);
}

static void test_bad_config(void **state)
{
    (void)state;
    const char *bad[] = {"not a domain!"};
    s2s_in_config c = {.domains = bad, .ndomains = 1, .secret = "s", .secret_len = 1};
    assert_null(s2s_in_new(&c, 0));
    const char *ok[] = {"gw.test"};
    c.domains = ok;
    c.tls = S2S_TLS_REQUIRED; /* without a TLS layer */
    assert_null(s2s_in_new(&c, 0));
    c.tls = S2S_TLS_NONE;
    s2s_in *sm = s2s_in_new(&c, 0);
    assert_non_null(sm);
    /* Random ids by default: different per stream. */
    s2s_in *sm2 = s2s_in_new(&c, 0);
    const char *hdr = PEER_HDR;
    s2s_in_feed(sm, hdr, strlen(hdr), 0);
    s2s_in_feed(sm2, hdr, strlen(hdr), 0);
    assert_int_equal(strlen(s2s_in_stream_id(sm)), 32);
    assert_string_not_equal(s2s_in_stream_id(sm), s2s_in_stream_id(sm2));
    s2s_in_free(sm);
    s2s_in_free(sm2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_prosody),
        cmocka_unit_test(test_replay_ejabberd),
        cmocka_unit_test(test_tls_none),
        cmocka_unit_test(test_tls_optional),
        cmocka_unit_test(test_tls_required),
        cmocka_unit_test(test_starttls_injection),
        cmocka_unit_test(test_sasl_external_success),
        cmocka_unit_test(test_sasl_external_failure),
        cmocka_unit_test(test_wildcard_cert),
        cmocka_unit_test(test_dialback_invalid),
        cmocka_unit_test(test_dialback_error),
        cmocka_unit_test(test_dialback_unknown_target),
        cmocka_unit_test(test_two_domains_one_stream),
        cmocka_unit_test(test_forged_from),
        cmocka_unit_test(test_stanza_before_auth),
        cmocka_unit_test(test_unknown_to),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_pre_1_0_peer),
        cmocka_unit_test(test_authoritative_verify),
        cmocka_unit_test(test_cert_dialback),
        cmocka_unit_test(test_close_delivers_late_stanzas),
        cmocka_unit_test(test_peer_closes),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_vanish_mid_stanza),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests_name("s2s_in", tests, NULL, NULL);
}
