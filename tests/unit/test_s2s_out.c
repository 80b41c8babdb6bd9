/*
 * test_s2s_out.c: the initiating S2S stream machine (xmpp/s2s_out.c):
 * replayed against what Prosody 0.12 and ejabberd 23.01 sent to the fake
 * gw.test (tests/vectors/xmpp/transcripts/), byte scripts for STARTTLS, SASL
 * EXTERNAL, dialback verdicts, multiplexing, verify mode and closing, and
 * two of our own gateways federating in-process (s2s_out <-> s2s_in in
 * both directions at once, with verify connections), which must not
 * deadlock.
 */
#include "sm_util.h"

#include "dialback/dialback.h"

#define SECRET "gw-dialback-secret"
#define NS_DECL                                                                                    \
    "xmlns='jabber:server' xmlns:db='jabber:server:dialback' "                                     \
    "xmlns:stream='http://etherx.jabber.org/streams'"
#define PEER_HDR_ID(id)                                                                            \
    "<?xml version='1.0'?><stream:stream " NS_DECL " from='xmpp.test' to='gw.test' id='" id        \
    "' version='1.0'>"
#define PEER_HDR PEER_HDR_ID("ID1")
#define FEAT(x) "<stream:features>" x "</stream:features>"
#define F_TLS "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
#define F_TLS_REQ "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
#define F_DB "<dialback xmlns='urn:xmpp:features:dialback'/>"
#define F_DBE "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
#define F_EXT "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>"
#define PROCEED "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"

typedef struct out_h {
    s2s_out *sm;
    s2s_out_config cfg;
    sm_col out;
    sm_acts acts;
    uint64_t now;
} out_h;

static void out_start(out_h *h)
{
    h->sm = s2s_out_new(&h->cfg, h->now);
    assert_non_null(h->sm);
    sm_col_init(&h->out);
}

static void out_cfg(out_h *h, s2s_out_mode mode, s2s_tls_policy tls, int have_cert)
{
    memset(h, 0, sizeof *h);
    h->cfg.from = "gw.test";
    h->cfg.to = "xmpp.test";
    h->cfg.secret = SECRET;
    h->cfg.secret_len = strlen(SECRET);
    h->cfg.mode = mode;
    h->cfg.tls = tls;
    h->cfg.tls_available = tls != S2S_TLS_NONE;
    h->cfg.have_cert = have_cert;
    h->cfg.peer = "198.51.100.7:5269";
    h->cfg.close_timeout_ms = 3000;
}

static void out_init(out_h *h, s2s_out_mode mode, s2s_tls_policy tls, int have_cert)
{
    out_cfg(h, mode, tls, have_cert);
    out_start(h);
}

static void out_pump(out_h *h)
{
    sm_col_take(&h->out, s2s_out_output(h->sm));
    while (h->acts.n < sizeof h->acts.v / sizeof h->acts.v[0] &&
           s2s_out_next_action(h->sm, &h->acts.v[h->acts.n]))
        h->acts.n++;
}

static size_t out_feed(out_h *h, const char *s)
{
    size_t n = s2s_out_feed(h->sm, s, strlen(s), h->now);
    out_pump(h);
    return n;
}

static void out_done(out_h *h)
{
    s2s_out_free(h->sm);
    sm_col_free(&h->out);
    sm_acts_clear(&h->acts);
}

static xml_node *msg(const char *from, const char *to)
{
    xml_node *m = sm_msg(from, to, "hi alice");
    assert_int_equal(xml_attr_set(m, "id", "m1"), 0);
    return m;
}

static const s2s_action *only(const out_h *h, s2s_action_kind k)
{
    if (sm_acts_count(&h->acts, k) != 1) {
        fprintf(stderr, "expected one %s among:\n", s2s_action_kind_name(k));
        sm_acts_dump(&h->acts);
    }
    assert_int_equal(sm_acts_count(&h->acts, k), 1);
    return sm_acts_find(&h->acts, k, 0);
}

/* s2s_out_send; a refused stanza stays the caller's (freed here). */
static s2s_send_result out_send(out_h *h, xml_node *st)
{
    s2s_send_result r = s2s_out_send(h->sm, st, h->now);
    if (r != S2S_SEND_OK)
        xml_node_free(st);
    return r;
}

/* ---- transcript replay ---------------------------------------------------------- */

static void replay_out(const char *file, const char *label, const char *peer, s2s_tls_policy tls,
                       s2s_out_mode mode, int bytewise)
{
    sm_transcript t;
    sm_transcript_load(&t, file);
    sm_col exp;
    sm_transcript_expected(&t, label, &exp);
    out_h h;
    out_cfg(&h, mode, tls, 0);
    h.cfg.to = peer;
    out_start(&h);
    char to[64];
    snprintf(to, sizeof to, "alice@%s", peer);
    if (mode == S2S_OUT_NORMAL) {
        /* Queued until the verdict: it must come out after it. */
        assert_int_equal(out_send(&h, msg("bot@gw.test", to)), S2S_SEND_OK);
    } else {
        const xml_node *v = sm_col_find(&exp, "verify", XML_NS_DIALBACK, 0);
        assert_non_null(v);
        assert_int_equal(s2s_out_verify(h.sm, sm_attr(v, "from"), sm_attr(v, "to"), sm_attr(v, "id"),
                                        xml_elem_text(v, NULL), 0),
                         0);
    }
    out_pump(&h);
    for (size_t i = 0; i < t.n; i++) {
        const sm_line *l = &t.v[i];
        if (strcmp(l->label, label) != 0)
            continue;
        if (l->dir == '-') {
            assert_int_equal(s2s_out_get_state(h.sm), S2S_OUT_TLS);
            s2s_out_tls_done(h.sm, 0);
            out_pump(&h);
        } else if (l->dir == '<') {
            size_t len = strlen(l->data);
            if (bytewise)
                for (size_t k = 0; k < len; k++)
                    s2s_out_feed(h.sm, l->data + k, 1, 0);
            else
                assert_int_equal(s2s_out_feed(h.sm, l->data, len, 0), len);
            out_pump(&h);
        }
    }
    char what[256];
    snprintf(what, sizeof what, "%s %s%s", file, label, bytewise ? " (byte by byte)" : "");
    sm_expect_same(&h.out, &exp, what);
    if (mode == S2S_OUT_NORMAL) {
        const s2s_action *a = only(&h, S2S_ACT_AUTHENTICATED);
        assert_string_equal(a->from, "gw.test");
        assert_string_equal(a->to, peer);
        assert_int_equal(a->method, S2S_AUTH_DIALBACK);
        assert_int_equal(s2s_out_queued(h.sm), 0);
    } else {
        const s2s_action *a = only(&h, S2S_ACT_VERIFY_RESULT);
        assert_int_equal(a->result, S2S_DB_VALID);
        assert_string_equal(a->from, peer);
        assert_string_equal(a->to, "gw.test");
        assert_int_equal(s2s_out_get_state(h.sm), S2S_OUT_CLOSING);
    }
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_BOUNCE), 0);
    sm_col_free(&exp);
    out_done(&h);
    sm_transcript_free(&t);
}

static void replay_both(const char *file, const char *out, const char *vfy, const char *peer,
                        s2s_tls_policy tls)
{
    for (int bw = 0; bw < 2; bw++) {
        if (out)
            replay_out(file, out, peer, tls, S2S_OUT_NORMAL, bw);
        replay_out(file, vfy, peer, tls, S2S_OUT_VERIFY, bw);
    }
}

static void test_replay_prosody(void **state)
{
    (void)state;
    /* The fake gw.test did not use the STARTTLS Prosody offered in the
     * plain runs: policy none there. */
    replay_both("s2s-plain.txt", "OUT3", "VFY2", "xmpp.test", S2S_TLS_NONE);
    replay_both("s2s-plain-fresh-gw-initiates.txt", "OUT1", "VFY3", "xmpp.test", S2S_TLS_NONE);
    replay_both("s2s-plain-peer-initiates-only.txt", NULL, "VFY2", "xmpp.test", S2S_TLS_NONE);
    replay_both("s2s-starttls-offered.txt", "OUT3", "VFY2", "xmpp.test", S2S_TLS_OPTIONAL);
    replay_both("s2s-starttls-required.txt", "OUT3", "VFY2", "xmpp.test", S2S_TLS_OPTIONAL);
}

static void test_replay_ejabberd(void **state)
{
    (void)state;
    /* ejabberd's features carry an empty <mechanisms/> before TLS and
     * EXTERNAL after it (we present no certificate here: dialback). */
    replay_both("ej-s2s-plain.txt", "OUT3", "VFY2", "ejab.test", S2S_TLS_NONE);
    replay_both("ej-s2s-starttls.txt", "OUT3", "VFY2", "ejab.test", S2S_TLS_OPTIONAL);
}

/* ---- STARTTLS ------------------------------------------------------------------------ */

/* RFC 6120 §5.4.3.3: plaintext after <proceed/> in the same read is not
 * consumed (a verdict there would be an injection). */
static void test_proceed_injection(void **state)
{
    (void)state;
    out_h h;
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_OPTIONAL, 0);
    out_feed(&h, PEER_HDR FEAT(F_TLS F_DB));
    assert_true(xml_is(sm_col_last(&h.out), "starttls", XML_NS_TLS));
    const char *inj = PROCEED "<db:result from='xmpp.test' to='gw.test' type='valid'/>";
    assert_int_equal(out_feed(&h, inj), strlen(PROCEED));
    only(&h, S2S_ACT_START_TLS);
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_AUTHENTICATED), 0);
    assert_int_equal(s2s_out_get_state(h.sm), S2S_OUT_TLS);
    s2s_out_tls_done(h.sm, 0);
    out_pump(&h);
    assert_int_equal(sm_col_count(&h.out, SM_OPEN), 2); /* a new stream over TLS */
    assert_int_equal(h.out.v[h.out.n - 1].type, SM_OPEN);
    out_feed(&h, PEER_HDR_ID("ID2") FEAT(F_DB));
    const xml_node *r = sm_col_last(&h.out);
    assert_true(xml_is(r, "result", XML_NS_DIALBACK));
    char key[DB_KEY_HEX_LEN + 1];
    db_key_generate(SECRET, strlen(SECRET), "xmpp.test", "gw.test", "ID2", key);
    assert_string_equal(xml_elem_text(r, NULL), key); /* over the id of the TLS stream */
    assert_int_equal(s2s_out_tls_active(h.sm), 1);
    out_done(&h);
}

static void test_tls_required_quirks(void **state)
{
    (void)state;
    /* Required by us, not offered: <starttls/> anyway (Prosody's way). */
    out_h h;
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_REQUIRED, 0);
    out_feed(&h, PEER_HDR FEAT(F_DBE));
    assert_true(xml_is(sm_col_last(&h.out), "starttls", XML_NS_TLS));
    assert_int_equal(out_send(&h, msg("bot@gw.test", "alice@xmpp.test")), S2S_SEND_OK);
    /* Refused: we close; the queued stanza comes back. */
    out_feed(&h, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>");
    assert_int_equal(s2s_out_get_state(h.sm), S2S_OUT_CLOSED);
    const s2s_action *b = only(&h, S2S_ACT_BOUNCE);
    assert_non_null(b->stanza);
    assert_string_equal(b->stanza_error, "remote-server-timeout");
    assert_int_equal(only(&h, S2S_ACT_CLOSE)->clean, 1);
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_AUTH_FAILED), 1);
    out_done(&h);

    /* The peer requires TLS, we have none: give up, no dialback in clear. */
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
    out_feed(&h, PEER_HDR FEAT(F_TLS_REQ));
    assert_int_equal(s2s_out_get_state(h.sm), S2S_OUT_CLOSING);
    assert_null(sm_col_find(&h.out, "result", NULL, 0));
    out_done(&h);

    /* Offered but our policy is none: dialback in clear. */
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
    out_feed(&h, PEER_HDR FEAT(F_TLS F_DB));
    assert_non_null(sm_col_find(&h.out, "result", XML_NS_DIALBACK, 0));
    out_done(&h);
}

/* ---- SASL EXTERNAL (XEP-0178) -------------------------------------------------------------- */

static void to_tls(out_h *h)
{
    out_feed(h, PEER_HDR FEAT(F_TLS F_DBE));
    out_feed(h, PROCEED);
    s2s_out_tls_done(h->sm, 0);
    out_pump(h);
}

static void test_sasl_external(void **state)
{
    (void)state;
    out_h h;
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_OPTIONAL, 1);
    assert_int_equal(out_send(&h, msg("bot@gw.test", "alice@xmpp.test")), S2S_SEND_OK);
    to_tls(&h);
    out_feed(&h, PEER_HDR_ID("ID2") FEAT(F_EXT F_DBE));
    const xml_node *a = sm_col_last(&h.out);
    assert_true(xml_is(a, "auth", XML_NS_SASL));
    assert_string_equal(sm_attr(a, "mechanism"), "EXTERNAL");
    assert_string_equal(xml_elem_text(a, NULL), "Z3cudGVzdA=="); /* base64("gw.test") */
    /* Success and the restarted header in one read. */
    out_feed(&h, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" PEER_HDR_ID("ID3") FEAT(F_DBE));
    const s2s_action *au = only(&h, S2S_ACT_AUTHENTICATED);
    assert_int_equal(au->method, S2S_AUTH_SASL_EXTERNAL);
    assert_int_equal(sm_col_count(&h.out, SM_OPEN), 3);
    assert_null(sm_col_find(&h.out, "result", XML_NS_DIALBACK, 0)); /* no dialback needed */
    assert_true(xml_is(sm_col_last(&h.out), "message", NULL));
    assert_int_equal(s2s_out_get_state(h.sm), S2S_OUT_READY);
    out_done(&h);
}

static void test_sasl_external_failure(void **state)
{
    (void)state;
    out_h h;
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_OPTIONAL, 1);
    to_tls(&h);
    out_feed(&h, PEER_HDR_ID("ID2") FEAT(F_EXT F_DBE));
    out_feed(&h, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>");
    /* Falls back to dialback on the same stream (over ID2). */
    const xml_node *r = sm_col_last(&h.out);
    assert_true(xml_is(r, "result", XML_NS_DIALBACK));
    char key[DB_KEY_HEX_LEN + 1];
    db_key_generate(SECRET, strlen(SECRET), "xmpp.test", "gw.test", "ID2", key);
    assert_string_equal(xml_elem_text(r, NULL), key);
    out_feed(&h, "<db:result from='xmpp.test' to='gw.test' type='valid'/>");
    assert_int_equal(only(&h, S2S_ACT_AUTHENTICATED)->method, S2S_AUTH_DIALBACK);
    out_done(&h);

    /* Without a certificate EXTERNAL is not even tried. */
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_OPTIONAL, 0);
    to_tls(&h);
    out_feed(&h, PEER_HDR_ID("ID2") FEAT(F_EXT F_DBE));
    assert_true(xml_is(sm_col_last(&h.out), "result", XML_NS_DIALBACK));
    out_done(&h);
}

/* ---- dialback verdicts --------------------------------------------------------------------------- */

static void test_dialback_invalid(void **state)
{
    (void)state;
    out_h h;
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
    assert_int_equal(out_send(&h, msg("bot@gw.test", "alice@xmpp.test")), S2S_SEND_OK);
    assert_int_equal(out_send(&h, msg("bot2@gw.test", "bob@xmpp.test")), S2S_SEND_OK);
    out_feed(&h, PEER_HDR FEAT(F_DBE));
    out_feed(&h, "<db:result from='xmpp.test' to='gw.test' type='invalid'/>");
    const s2s_action *f = only(&h, S2S_ACT_AUTH_FAILED);
    assert_int_equal(f->result, S2S_DB_INVALID);
    /* XEP-0220 §2.1.1: returned with internal-server-error, in order. */
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_BOUNCE), 2);
    const s2s_action *b = sm_acts_find(&h.acts, S2S_ACT_BOUNCE, 0);
    assert_string_equal(b->stanza_error, "internal-server-error");
    assert_string_equal(sm_attr(b->stanza, "from"), "bot@gw.test");
    assert_null(sm_col_find(&h.out, "message", NULL, 0));
    assert_int_equal(s2s_out_get_state(h.sm), S2S_OUT_CLOSING);
    assert_int_equal(out_send(&h, msg("bot@gw.test", "alice@xmpp.test")), S2S_SEND_CLOSED);
    out_done(&h);
}

static void test_dialback_error(void **state)
{
    (void)state;
    out_h h;
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
    out_feed(&h, PEER_HDR FEAT(F_DBE));
    assert_int_equal(out_send(&h, msg("bot@gw.test", "alice@xmpp.test")), S2S_SEND_OK);
    out_feed(&h, "<db:result from='xmpp.test' to='gw.test' type='error'><error type='cancel'>"
                 "<remote-connection-failed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>");
    const s2s_action *f = only(&h, S2S_ACT_AUTH_FAILED);
    assert_int_equal(f->result, S2S_DB_ERROR);
    assert_string_equal(f->text, "remote-connection-failed");
    assert_string_equal(only(&h, S2S_ACT_BOUNCE)->stanza_error, "remote-server-timeout");
    /* Non-fatal for the stream (§2.4). The same pair is not retried here. */
    assert_int_equal(s2s_out_get_state(h.sm), S2S_OUT_READY);
    assert_int_equal(out_send(&h, msg("bot@gw.test", "alice@xmpp.test")), S2S_SEND_NO_PAIR);
    /* Unsolicited and untyped verdicts are ignored (XEP-0220 §4.1). */
    out_feed(&h, "<db:result from='xmpp.test' to='gw.test' type='valid'/>"
                 "<db:result from='evil.test' to='gw.test' type='valid'/>"
                 "<db:result from='xmpp.test' to='gw.test'>k</db:result>");
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_AUTHENTICATED), 0);
    out_done(&h);
}

/* Prosody sends id='' and ejabberd no id on streams they *initiate*; a
 * receiving peer doing the same must still get a key (over ""). */
static void test_empty_or_missing_id(void **state)
{
    (void)state;
    const char *hdrs[] = {
        "<?xml version='1.0'?><stream:stream " NS_DECL " from='xmpp.test' to='gw.test' id='' version='1.0'>",
        "<?xml version='1.0'?><stream:stream " NS_DECL " from='xmpp.test' to='gw.test' version='1.0'>",
    };
    for (int i = 0; i < 2; i++) {
        out_h h;
        out_init(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
        out_feed(&h, hdrs[i]);
        out_feed(&h, FEAT(F_DB));
        char key[DB_KEY_HEX_LEN + 1];
        db_key_generate(SECRET, strlen(SECRET), "xmpp.test", "gw.test", "", key);
        assert_string_equal(xml_elem_text(sm_col_last(&h.out), NULL), key);
        assert_string_equal(s2s_out_stream_id(h.sm), "");
        assert_true(sm_acts_count(&h.acts, S2S_ACT_LOG) >= 1);
        out_done(&h);
    }
}

/* XEP-0220 §2.6: sender multiplexing always, target multiplexing only
 * with <errors/>. */
static void test_multiplexing(void **state)
{
    (void)state;
    out_h h;
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
    /* Before the features: another target cannot be promised. */
    assert_int_equal(out_send(&h, msg("bot@gw.test", "x@conf.xmpp.test")), S2S_SEND_NO_PAIR);
    assert_int_equal(out_send(&h, msg("bot@conf.gw.test", "alice@xmpp.test")), S2S_SEND_OK);
    out_feed(&h, PEER_HDR FEAT(F_DB));
    /* Two db:result, one per sender domain. */
    const xml_node *r0 = sm_col_find(&h.out, "result", XML_NS_DIALBACK, 0);
    const xml_node *r1 = sm_col_find(&h.out, "result", XML_NS_DIALBACK, 1);
    assert_string_equal(sm_attr(r0, "from"), "gw.test");
    assert_string_equal(sm_attr(r1, "from"), "conf.gw.test");
    assert_int_equal(s2s_out_authenticate(h.sm, "gw.test", "conf.xmpp.test", 0), S2S_SEND_NO_PAIR);
    out_feed(&h, "<db:result from='xmpp.test' to='conf.gw.test' type='valid'/>");
    assert_true(xml_is(sm_col_last(&h.out), "message", NULL));
    assert_true(s2s_out_is_authenticated(h.sm, "conf.gw.test", "xmpp.test"));
    assert_false(s2s_out_is_authenticated(h.sm, "gw.test", "xmpp.test"));
    out_done(&h);

    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
    out_feed(&h, PEER_HDR FEAT(F_DBE));
    assert_int_equal(s2s_out_peer_dialback_errors(h.sm), 1);
    assert_int_equal(out_send(&h, msg("bot@gw.test", "x@conf.xmpp.test")), S2S_SEND_OK);
    out_pump(&h);
    const xml_node *r = sm_col_last(&h.out);
    assert_string_equal(sm_attr(r, "to"), "conf.xmpp.test");
    char key[DB_KEY_HEX_LEN + 1];
    db_key_generate(SECRET, strlen(SECRET), "conf.xmpp.test", "gw.test", "ID1", key);
    assert_string_equal(xml_elem_text(r, NULL), key);
    out_feed(&h, "<db:result from='conf.xmpp.test' to='gw.test' type='valid'/>");
    assert_true(xml_is(sm_col_last(&h.out), "message", NULL));
    /* Bad stanzas are refused without being taken. */
    xml_node *bad = xml_elem_new("message", NULL);
    assert_int_equal(s2s_out_send(h.sm, bad, 0), S2S_SEND_BAD);
    xml_node_free(bad);
    out_done(&h);
}

/* ---- verify mode and db:verify ---------------------------------------------------------------------- */

static void test_verify_mode(void **state)
{
    (void)state;
    out_h h;
    out_init(&h, S2S_OUT_VERIFY, S2S_TLS_NONE, 0);
    assert_int_equal(s2s_out_verify(h.sm, "gw.test", "xmpp.test", "S1", "k1", 0), 0);
    assert_int_equal(s2s_out_verify(h.sm, "gw.test", "xmpp.test", "S2", "k2", 0), 0);
    assert_int_equal(out_send(&h, msg("bot@gw.test", "alice@xmpp.test")), S2S_SEND_NO_PAIR);
    out_feed(&h, PEER_HDR FEAT(F_TLS F_DB));
    assert_null(sm_col_find(&h.out, "result", NULL, 0));
    const xml_node *v = sm_col_find(&h.out, "verify", XML_NS_DIALBACK, 1);
    assert_string_equal(sm_attr(v, "id"), "S2");
    assert_string_equal(xml_elem_text(v, NULL), "k2");
    /* Answers in any order; an unsolicited one is ignored. */
    out_feed(&h, "<db:verify from='xmpp.test' to='gw.test' id='S9' type='valid'/>"
                 "<db:verify from='xmpp.test' to='gw.test' id='S2' type='invalid'/>");
    const s2s_action *a = only(&h, S2S_ACT_VERIFY_RESULT);
    assert_string_equal(a->id, "S2");
    assert_string_equal(a->from, "xmpp.test");
    assert_string_equal(a->to, "gw.test");
    assert_int_equal(a->result, S2S_DB_INVALID);
    assert_int_equal(s2s_out_get_state(h.sm), S2S_OUT_READY);
    out_feed(&h, "<db:verify from='xmpp.test' to='gw.test' id='S1' type='valid'>k1</db:verify>");
    assert_int_equal(sm_acts_count(&h.acts, S2S_ACT_VERIFY_RESULT), 2);
    assert_int_equal(sm_acts_find(&h.acts, S2S_ACT_VERIFY_RESULT, 1)->result, S2S_DB_VALID);
    /* Done: closes by itself (XEP-0220 §2.1.2). */
    assert_int_equal(s2s_out_get_state(h.sm), S2S_OUT_CLOSING);
    assert_int_equal(h.out.v[h.out.n - 1].type, SM_CLOSE);
    out_feed(&h, "</stream:stream>");
    assert_int_equal(only(&h, S2S_ACT_CLOSE)->clean, 1);
    out_done(&h);
}

static void test_verify_timeout_and_loss(void **state)
{
    (void)state;
    out_h h;
    out_cfg(&h, S2S_OUT_VERIFY, S2S_TLS_NONE, 0);
    h.cfg.dialback_timeout_ms = 2000;
    out_start(&h);
    out_feed(&h, PEER_HDR FEAT(F_DB));
    assert_int_equal(s2s_out_verify(h.sm, "gw.test", "xmpp.test", "S1", "k1", 100), 0);
    assert_int_equal(s2s_out_next_deadline(h.sm), 2100);
    s2s_out_tick(h.sm, 2100);
    out_pump(&h);
    assert_int_equal(only(&h, S2S_ACT_VERIFY_RESULT)->result, S2S_DB_ERROR);
    assert_int_equal(s2s_out_get_state(h.sm), S2S_OUT_CLOSING);
    out_done(&h);

    /* The connection drops with a request pending: an error answer. */
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
    out_feed(&h, PEER_HDR FEAT(F_DB));
    assert_int_equal(s2s_out_verify(h.sm, "gw.test", "xmpp.test", "S1", "k1", 0), 0);
    out_pump(&h);
    assert_true(xml_is(sm_col_last(&h.out), "verify", XML_NS_DIALBACK));
    s2s_out_eof(h.sm, 0);
    out_pump(&h);
    assert_int_equal(only(&h, S2S_ACT_VERIFY_RESULT)->result, S2S_DB_ERROR);
    assert_int_equal(only(&h, S2S_ACT_AUTH_FAILED)->result, S2S_DB_ERROR);
    assert_int_equal(only(&h, S2S_ACT_CLOSE)->clean, 0);
    out_done(&h);
}

/* ---- closing (XEP-0190) --------------------------------------------------------------------------- */

static void test_close(void **state)
{
    (void)state;
    out_h h;
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
    out_feed(&h, PEER_HDR FEAT(F_DBE));
    out_feed(&h, "<db:result from='xmpp.test' to='gw.test' type='valid'/>");
    assert_int_equal(out_send(&h, msg("bot@gw.test", "alice@xmpp.test")), S2S_SEND_OK);
    assert_int_equal(s2s_out_authenticate(h.sm, "conf.gw.test", "xmpp.test", 0), S2S_SEND_OK);
    assert_int_equal(out_send(&h, msg("bot@conf.gw.test", "alice@xmpp.test")), S2S_SEND_OK);
    assert_int_equal(s2s_out_verify(h.sm, "gw.test", "xmpp.test", "S1", "k1", 0), 0);
    s2s_out_close(h.sm, XML_COND_NONE, "idle", 1000);
    out_pump(&h);
    assert_int_equal(h.out.v[h.out.n - 1].type, SM_CLOSE);
    /* The stanza waiting for conf.gw.test comes back: never dropped. */
    assert_string_equal(only(&h, S2S_ACT_BOUNCE)->stanza_error, "remote-server-timeout");
    assert_int_equal(s2s_out_next_deadline(h.sm), 4000);
    /* The peer still answers the verify before closing: reported. */
    out_feed(&h, "<db:verify from='xmpp.test' to='gw.test' id='S1' type='valid'/>");
    assert_int_equal(only(&h, S2S_ACT_VERIFY_RESULT)->result, S2S_DB_VALID);
    s2s_out_tick(h.sm, 4000);
    out_pump(&h);
    assert_int_equal(only(&h, S2S_ACT_CLOSE)->clean, 0);
    out_done(&h);

    /* The peer closes first with stanzas queued: they come back. */
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
    assert_int_equal(out_send(&h, msg("bot@gw.test", "alice@xmpp.test")), S2S_SEND_OK);
    out_feed(&h, PEER_HDR FEAT(F_DBE) "</stream:stream>");
    assert_int_equal(only(&h, S2S_ACT_BOUNCE)->kind, S2S_ACT_BOUNCE);
    assert_int_equal(only(&h, S2S_ACT_CLOSE)->clean, 1);
    assert_int_equal(h.out.v[h.out.n - 1].type, SM_CLOSE);
    out_done(&h);

    /* A stream error from the peer. */
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
    out_feed(&h, PEER_HDR "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                          "</stream:error></stream:stream>");
    const s2s_action *c = only(&h, S2S_ACT_CLOSE);
    assert_int_equal(c->cond, XML_COND_HOST_UNKNOWN);
    assert_int_equal(c->cond_remote, 1);
    out_done(&h);
}

static void test_pre_1_0_and_timeouts(void **state)
{
    (void)state;
    /* A peer without version: dialback right away (RFC 6120 §4.7.5). */
    out_h h;
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_OPTIONAL, 0);
    out_feed(&h, "<?xml version='1.0'?><stream:stream " NS_DECL " from='xmpp.test' id='old'>");
    assert_true(xml_is(sm_col_last(&h.out), "result", XML_NS_DIALBACK));
    out_done(&h);

    out_cfg(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
    h.cfg.negotiation_timeout_ms = 5000;
    h.cfg.dialback_timeout_ms = 7000;
    out_start(&h);
    assert_int_equal(s2s_out_next_deadline(h.sm), 5000);
    out_feed(&h, PEER_HDR FEAT(F_DB));
    assert_int_equal(s2s_out_next_deadline(h.sm), 7000);
    assert_int_equal(out_send(&h, msg("bot@gw.test", "alice@xmpp.test")), S2S_SEND_OK);
    s2s_out_tick(h.sm, 7000);
    out_pump(&h);
    assert_string_equal(only(&h, S2S_ACT_AUTH_FAILED)->text, "dialback timeout");
    assert_string_equal(only(&h, S2S_ACT_BOUNCE)->stanza_error, "remote-server-timeout");
    out_done(&h);

    out_cfg(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
    h.cfg.negotiation_timeout_ms = 5000;
    out_start(&h);
    s2s_out_tick(h.sm, 5000);
    out_pump(&h);
    assert_int_equal(only(&h, S2S_ACT_CLOSE)->cond, XML_COND_CONNECTION_TIMEOUT);
    out_done(&h);

    /* Garbage from the peer. */
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
    out_feed(&h, PEER_HDR "<message><</message>");
    assert_int_equal(only(&h, S2S_ACT_CLOSE)->cond, XML_COND_NOT_WELL_FORMED);
    out_done(&h);
}

/* ---- two gateways, in-process --------------------------------------------------------------------- */

/* One TCP connection: an s2s_out of one server talking to an s2s_in of
 * the other. */
typedef struct fed_conn {
    s2s_out *o;
    s2s_in *i;
    int o_tls, i_tls; /* START_TLS seen on each side */
    int used;
} fed_conn;

typedef struct gw {
    const char *domain;
    const char *secret;
    const char *domains[1];
} gw;

typedef struct fed {
    gw g[2];
    fed_conn l[8];
    size_t nl;
    size_t delivered[2]; /* stanzas delivered to g[k] */
    size_t auth_out[2];  /* AUTHENTICATED on g[k]'s outgoing stream */
    s2s_tls_policy tls;
} fed;

static int gw_of(const fed *f, const char *domain)
{
    return strcmp(domain, f->g[0].domain) == 0 ? 0 : 1;
}

static fed_conn *fed_connect(fed *f, int from, s2s_out_mode mode)
{
    assert_true(f->nl < 8);
    fed_conn *l = &f->l[f->nl++];
    memset(l, 0, sizeof *l);
    int to = 1 - from;
    s2s_out_config oc = {.from = f->g[from].domain, .to = f->g[to].domain, .secret = f->g[from].secret,
                         .secret_len = strlen(f->g[from].secret), .mode = mode, .tls = f->tls,
                         .tls_available = f->tls != S2S_TLS_NONE};
    s2s_in_config ic = {.domains = f->g[to].domains, .ndomains = 1, .secret = f->g[to].secret,
                        .secret_len = strlen(f->g[to].secret), .tls = f->tls,
                        .tls_available = f->tls != S2S_TLS_NONE};
    l->o = s2s_out_new(&oc, 0);
    l->i = s2s_in_new(&ic, 0);
    assert_non_null(l->o);
    assert_non_null(l->i);
    l->used = 1;
    return l;
}

static int fed_step(fed *f)
{
    int moved = 0;
    for (size_t k = 0; k < f->nl; k++) {
        fed_conn *l = &f->l[k];
        if (!l->used)
            continue;
        psyc_buf *ob = s2s_out_output(l->o), *ib = s2s_in_output(l->i);
        if (ob->len && !l->i_tls) {
            s2s_in_feed(l->i, ob->data, ob->len, 0);
            psyc_buf_reset(ob);
            moved = 1;
        }
        if (ib->len && !l->o_tls) {
            s2s_out_feed(l->o, ib->data, ib->len, 0);
            psyc_buf_reset(ib);
            moved = 1;
        }
        if (l->o_tls && l->i_tls) { /* both sides in the handshake: done */
            l->o_tls = l->i_tls = 0;
            s2s_in_tls_done(l->i, NULL, 0, 0);
            s2s_out_tls_done(l->o, 0);
            moved = 1;
        }
        s2s_action a;
        while (s2s_in_next_action(l->i, &a)) {
            moved = 1;
            if (a.kind == S2S_ACT_START_TLS) {
                l->i_tls = 1;
            } else if (a.kind == S2S_ACT_VERIFY_KEY) {
                /* Dial back the authoritative server on a new connection. */
                int me = gw_of(f, a.to);
                fed_conn *v = fed_connect(f, me, S2S_OUT_VERIFY);
                l = &f->l[k]; /* f->l does not move, but be explicit */
                assert_int_equal(s2s_out_verify(v->o, a.to, a.from, a.id, a.key, 0), 0);
            } else if (a.kind == S2S_ACT_STANZA) {
                f->delivered[gw_of(f, a.to)]++;
            }
            s2s_action_clear(&a);
        }
        while (s2s_out_next_action(l->o, &a)) {
            moved = 1;
            if (a.kind == S2S_ACT_START_TLS) {
                l->o_tls = 1;
            } else if (a.kind == S2S_ACT_VERIFY_RESULT) {
                /* Back to the incoming stream that asked (by id). */
                int hit = 0;
                for (size_t j = 0; j < f->nl; j++)
                    if (f->l[j].used)
                        hit += s2s_in_verify_result(f->l[j].i, a.from, a.to, a.id, a.result, NULL, 0);
                assert_int_equal(hit, 1);
            } else if (a.kind == S2S_ACT_AUTHENTICATED) {
                f->auth_out[gw_of(f, a.from)]++;
            }
            assert_int_not_equal(a.kind, S2S_ACT_BOUNCE);
            assert_int_not_equal(a.kind, S2S_ACT_AUTH_FAILED);
            s2s_action_clear(&a);
        }
    }
    return moved;
}

static void fed_run(s2s_tls_policy tls)
{
    fed f;
    memset(&f, 0, sizeof f);
    f.tls = tls;
    f.g[0] = (gw){"gw.test", "secret-A", {"gw.test"}};
    f.g[1] = (gw){"psyc.example", "secret-B", {"psyc.example"}};
    f.g[0].domains[0] = f.g[0].domain;
    f.g[1].domains[0] = f.g[1].domain;
    /* Both open at once and send before anything is authenticated. */
    fed_conn *a = fed_connect(&f, 0, S2S_OUT_NORMAL);
    fed_conn *b = fed_connect(&f, 1, S2S_OUT_NORMAL);
    assert_int_equal(s2s_out_send(a->o, sm_msg("x@gw.test", "y@psyc.example", "1"), 0), S2S_SEND_OK);
    assert_int_equal(s2s_out_send(b->o, sm_msg("y@psyc.example", "x@gw.test", "2"), 0), S2S_SEND_OK);
    assert_int_equal(s2s_out_send(b->o, sm_msg("z@psyc.example", "x@gw.test", "3"), 0), S2S_SEND_OK);
    int rounds = 0;
    while (fed_step(&f))
        assert_true(++rounds < 100);
    assert_int_equal(f.auth_out[0], 1);
    assert_int_equal(f.auth_out[1], 1);
    assert_int_equal(f.delivered[1], 1);
    assert_int_equal(f.delivered[0], 2);
    assert_int_equal(f.nl, 4); /* two streams, two verify connections */
    for (size_t k = 2; k < f.nl; k++) { /* verify connections closed cleanly */
        assert_int_equal(s2s_out_get_state(f.l[k].o), S2S_OUT_CLOSED);
        assert_int_equal(s2s_in_get_state(f.l[k].i), S2S_IN_CLOSED);
    }
    assert_int_equal(s2s_in_tls_active(a->i), tls != S2S_TLS_NONE);
    for (size_t k = 0; k < f.nl; k++) {
        s2s_out_free(f.l[k].o);
        s2s_in_free(f.l[k].i);
    }
}

static void test_federation_loopback(void **state)
{
    (void)state;
    fed_run(S2S_TLS_NONE);
    fed_run(S2S_TLS_REQUIRED);
}

static void test_vanish_mid_stanza(void **state)
{
    (void)state;
    out_h h;
    out_init(&h, S2S_OUT_NORMAL, S2S_TLS_NONE, 0);
    assert_int_equal(out_send(&h, msg("bot@gw.test", "alice@xmpp.test")), S2S_SEND_OK);
    out_feed(&h, PEER_HDR "<stream:features><dialback xmlns='urn:xmpp:features:dial");
    out_done(&h); /* queued stanza, partial element: all freed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_prosody),
        cmocka_unit_test(test_replay_ejabberd),
        cmocka_unit_test(test_proceed_injection),
        cmocka_unit_test(test_tls_required_quirks),
        cmocka_unit_test(test_sasl_external),
        cmocka_unit_test(test_sasl_external_failure),
        cmocka_unit_test(test_dialback_invalid),
        cmocka_unit_test(test_dialback_error),
        cmocka_unit_test(test_empty_or_missing_id),
        cmocka_unit_test(test_multiplexing),
        cmocka_unit_test(test_verify_mode),
        cmocka_unit_test(test_verify_timeout_and_loss),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_pre_1_0_and_timeouts),
        cmocka_unit_test(test_federation_loopback),
        cmocka_unit_test(test_vanish_mid_stanza),
    };
    return cmocka_run_group_tests_name("s2s_out", tests, NULL, NULL);
}
