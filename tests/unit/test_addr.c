/*
 * test_addr.c: JID <-> uniform mapping (routing/addr.h): the grammar's
 * examples both ways, every refusal, and the reversibility property on
 * generated addresses in both modes (unmap(map(x)) == x for normalised x).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "routing/addr.h"
#include "xmpp/jid.h"

static const addr_map natural = {.mode = ADDR_MODE_NATURAL};
static const addr_map transport = {.mode = ADDR_MODE_TRANSPORT, .gw_host = "gw.example.net", .transport = "psyc.example.org"};

/* Maps jid -> uniform and checks both the result and the way back. */
static void both_ways(const addr_map *m, const char *jid, const char *uniform, const char *res)
{
    psyc_buf u, r, j;
    psyc_buf_init(&u);
    psyc_buf_init(&r);
    psyc_buf_init(&j);
    int rc = addr_jid_to_uniform(m, jid, &u, &r);
    if (rc != 0)
        fail_msg("%s: %s", jid, addr_strerror(rc));
    psyc_buf_putc(&u, '\0');
    psyc_buf_putc(&r, '\0');
    assert_string_equal(u.data, uniform);
    assert_string_equal(r.data, res ? res : "");
    rc = addr_uniform_to_jid(m, u.data, r.data, &j);
    if (rc != 0)
        fail_msg("%s: %s", u.data, addr_strerror(rc));
    psyc_buf_putc(&j, '\0');
    assert_string_equal(j.data, jid);
    psyc_buf_free(&u);
    psyc_buf_free(&r);
    psyc_buf_free(&j);
}

static void uni_to_jid(const addr_map *m, const char *uniform, const char *res, const char *jid)
{
    psyc_buf j;
    psyc_buf_init(&j);
    int rc = addr_uniform_to_jid(m, uniform, res, &j);
    if (rc != 0)
        fail_msg("%s: %s", uniform, addr_strerror(rc));
    psyc_buf_putc(&j, '\0');
    assert_string_equal(j.data, jid);
    psyc_buf_free(&j);
}

static void jid_refused(const addr_map *m, const char *jid, int err)
{
    psyc_buf u;
    psyc_buf_init(&u);
    int rc = addr_jid_to_uniform(m, jid, &u, NULL);
    if (rc != err)
        fail_msg("%s: got %d (%s), want %d", jid, rc, addr_strerror(rc), err);
    assert_int_equal(u.len, 0);
    psyc_buf_free(&u);
}

static void uni_refused(const addr_map *m, const char *uniform, int err)
{
    psyc_buf j;
    psyc_buf_init(&j);
    int rc = addr_uniform_to_jid(m, uniform, NULL, &j);
    if (rc != err)
        fail_msg("%s: got %d (%s), want %d", uniform, rc, addr_strerror(rc), err);
    assert_int_equal(j.len, 0);
    psyc_buf_free(&j);
}

static void test_natural_grammar(void **state)
{
    (void)state;
    both_ways(&natural, "bob@remote.org", "psyc://remote.org/~bob", NULL);
    both_ways(&natural, "*room@remote.org", "psyc://remote.org/@room", NULL);
    both_ways(&natural, "*room@remote.org/Nick", "psyc://remote.org/@room", "Nick");
    both_ways(&natural, "$weather@remote.org", "psyc://remote.org/$weather", NULL);
    both_ways(&natural, "remote.org", "psyc://remote.org/", NULL);
    both_ways(&natural, "alice@example.org/laptop", "psyc://example.org/~alice", "laptop");
    /* XEP-0106 escapes become the characters; percent-encoding where the
     * uniform cannot hold them. */
    both_ways(&natural, "d\\27artagnan@remote.org", "psyc://remote.org/~d'artagnan", NULL);
    both_ways(&natural, "a\\20b@remote.org", "psyc://remote.org/~a%20b", NULL);
    both_ways(&natural, "a\\40b@remote.org", "psyc://remote.org/~a@b", NULL);
    both_ways(&natural, "a\\5cb@remote.org", "psyc://remote.org/~a%5cb", NULL);
    both_ways(&natural, "a%b@remote.org", "psyc://remote.org/~a%25b", NULL);
    both_ways(&natural, "caf\xc3\xa9@remote.org", "psyc://remote.org/~caf%c3%a9", NULL);
    /* A person whose name starts with an entity prefix. */
    both_ways(&natural, "\\2astar@remote.org", "psyc://remote.org/~*star", NULL);
    both_ways(&natural, "\\24cash@remote.org", "psyc://remote.org/~$cash", NULL);
    both_ways(&natural, "a*b@remote.org", "psyc://remote.org/~a*b", NULL);
    /* IDN: A-label in PSYC, Unicode in the JID. */
    both_ways(&natural, "bob@b\xc3\xbc" "cher.example", "psyc://xn--bcher-kva.example/~bob", NULL);
    /* Upper case is folded on both sides (nodeprep; psyced's lowercase policy). */
    uni_to_jid(&natural, "PSYC://Remote.ORG/~Bob", NULL, "bob@remote.org");
    uni_to_jid(&natural, "psyc://remote.org/~a%40b", NULL, "a\\40b@remote.org");
    uni_to_jid(&natural, "psyc://remote.org:4404/~bob", NULL, "bob@remote.org");
    uni_to_jid(&natural, "psyc://remote.org", NULL, "remote.org");
    uni_to_jid(&natural, "psyc://remote.org/@room", "Zoe", "*room@remote.org/Zoe");
    /* xmpp: uniforms (from gateways, PSYC.md §3.1) are JIDs already. */
    uni_to_jid(&natural, "xmpp:u@h.example/res", NULL, "u@h.example/res");
    uni_to_jid(&natural, "xmpp:u@h.example/res", "other", "u@h.example/other");
}

static void test_transport_grammar(void **state)
{
    (void)state;
    both_ways(&transport, "nick%psyced.org@psyc.example.org", "psyc://psyced.org/~nick", NULL);
    both_ways(&transport, "*room%psyced.org@psyc.example.org/Zoe", "psyc://psyced.org/@room", "Zoe");
    both_ways(&transport, "$svc%psyced.org@psyc.example.org", "psyc://psyced.org/$svc", NULL);
    both_ways(&transport, "%psyced.org@psyc.example.org", "psyc://psyced.org/", NULL);
    both_ways(&transport, "nick%psyced.org\\3a4405@psyc.example.org", "psyc://psyced.org:4405/~nick",
              NULL);
    both_ways(&transport, "nick%psyced.org\\3a4405s@psyc.example.org",
              "psyc://psyced.org:4405s/~nick", NULL);
    both_ways(&transport, "a\\25b%psyced.org@psyc.example.org", "psyc://psyced.org/~a%25b", NULL);
    /* Entities hosted on the gateway itself, and the gateway. */
    both_ways(&transport, "echo@psyc.example.org", "psyc://gw.example.net/~echo", NULL);
    both_ways(&transport, "*lobby@psyc.example.org", "psyc://gw.example.net/@lobby", NULL);
    both_ways(&transport, "psyc.example.org", "psyc://gw.example.net/", NULL);
    /* Users of the XMPP server (any other domain) appear on the gateway. */
    both_ways(&transport, "alice@example.org/phone", "psyc://gw.example.net/~alice@example.org",
              "phone");
    both_ways(&transport, "d\\27artagnan@example.org", "psyc://gw.example.net/~d%5c27artagnan@example.org",
              NULL);
    both_ways(&transport, "a%b@example.org", "psyc://gw.example.net/~a%25b@example.org", NULL);
    both_ways(&transport, "example.org", "psyc://gw.example.net/~@example.org", NULL);
    uni_to_jid(&transport, "psyc://psyced.org:4404/~nick", NULL, "nick%psyced.org@psyc.example.org");
    /* A natural-mode gateway may write the user's '@' as %40. */
    uni_to_jid(&transport, "psyc://gw.example.net/~alice%40example.org", "r", "alice@example.org/r");
    /* The gateway host with a port is another server. */
    uni_to_jid(&transport, "psyc://gw.example.net:4405/~x", NULL,
               "x%gw.example.net\\3a4405@psyc.example.org");
}

/* A two-entry registry (XEP-0077 nicks, routing/register.h). */
static const char *reg_nick_of(void *ud, const char *bare)
{
    (void)ud;
    return strcmp(bare, "bob@example.org") == 0 ? "bobby" : NULL;
}

static const char *reg_jid_of(void *ud, const char *nick)
{
    (void)ud;
    return strcmp(nick, "bobby") == 0 ? "bob@example.org" : NULL;
}

static void test_registered(void **state)
{
    (void)state;
    addr_map reg = transport;
    reg.reg = (addr_registry){reg_nick_of, reg_jid_of, NULL};
    both_ways(&reg, "bob@example.org/laptop", "psyc://gw.example.net/~bobby", "laptop");
    both_ways(&reg, "bob@example.org", "psyc://gw.example.net/~bobby", NULL);
    /* Case folded on the way in (psyced lower-cases uniforms). */
    uni_to_jid(&reg, "psyc://gw.example.net/~BobBy", NULL, "bob@example.org");
    /* Everybody else as before. */
    both_ways(&reg, "alice@example.org", "psyc://gw.example.net/~alice@example.org", NULL);
    both_ways(&reg, "echo@psyc.example.org", "psyc://gw.example.net/~echo", NULL);
    both_ways(&reg, "nick%psyced.org@psyc.example.org", "psyc://psyced.org/~nick", NULL);
    /* The user's long form still reaches the user. */
    uni_to_jid(&reg, "psyc://gw.example.net/~bob@example.org", NULL, "bob@example.org");
}

static void test_refusals(void **state)
{
    (void)state;
    jid_refused(&natural, "a@b@c", ADDR_ERR_JID);
    jid_refused(&natural, "", ADDR_ERR_JID);
    /* A backslash that is no escape of ours: two JIDs would share a uniform. */
    jid_refused(&natural, "a\\b@remote.org", ADDR_ERR_BACKSLASH);
    jid_refused(&natural, "a\\2ab@remote.org", ADDR_ERR_BACKSLASH); /* \2a only first */
    jid_refused(&natural, "*\\2ab@remote.org", ADDR_ERR_BACKSLASH); /* not for places */
    jid_refused(&natural, "a\\25b@remote.org", ADDR_ERR_BACKSLASH); /* \25 only in transport */
    jid_refused(&natural, "a\\@remote.org", ADDR_ERR_BACKSLASH);
    jid_refused(&natural, "*@remote.org", ADDR_ERR_NAME);
    jid_refused(&natural, "bob@[::1]", ADDR_ERR_DOMAIN);
    jid_refused(&transport, "x%bad_host@psyc.example.org", ADDR_ERR_HOST);
    jid_refused(&transport, "x%@psyc.example.org", ADDR_ERR_HOST);
    jid_refused(&transport, "x%a%b@psyc.example.org", ADDR_ERR_HOST);
    jid_refused(&transport, "a\\40b@psyc.example.org", ADDR_ERR_NAME); /* would be user a@b */

    uni_refused(&natural, "psyc:remote.org/~bob", ADDR_ERR_UNIFORM);
    uni_refused(&natural, "irc://x/y", ADDR_ERR_UNIFORM);
    uni_refused(&natural, "psyc://remote.org:4405/~bob", ADDR_ERR_PORT);
    uni_refused(&natural, "psyc://remote.org/~bob#follow", ADDR_ERR_CHANNEL);
    uni_refused(&natural, "psyc://remote.org/~a%2", ADDR_ERR_UNIFORM);
    uni_refused(&natural, "psyc://remote.org/~a%00b", ADDR_ERR_UNIFORM);
    uni_refused(&natural, "psyc://remote.org/~%20x", ADDR_ERR_NAME); /* XEP-0106: no leading \20 */
    uni_refused(&natural, "psyc://remote.org/~a%01b", ADDR_ERR_NAME);
    uni_refused(&natural, "xmpp:@x", ADDR_ERR_UNIFORM);
    uni_refused(&transport, "psyc://gw.example.net/~a@", ADDR_ERR_NAME);
    uni_refused(&transport, "psyc://gw.example.net/~@", ADDR_ERR_NAME);
    assert_string_equal(addr_strerror(ADDR_ERR_PORT),
                        "a uniform with a port or transport has no JID in this mode");
    assert_string_equal(addr_strerror(12345), "unknown error");
}

static void test_lookalikes(void **state)
{
    (void)state;
    assert_int_equal(addr_resource_lookalike("Alice", "alice"), 1);
    assert_int_equal(addr_resource_lookalike("alice", "alice"), 0);
    assert_int_equal(addr_resource_lookalike("alice", "bob"), 0);
    assert_int_equal(addr_resource_lookalike("Stra\xc3\x9f" "e", "strasse"), 1); /* ß folds to ss */
    assert_int_equal(addr_resource_lookalike("\xef\xbc\xa1lice", "alice"), 1);    /* fullwidth A */
    assert_int_equal(addr_resource_lookalike("a b", "A B"), 1);
    assert_int_equal(addr_resource_lookalike("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x81"), 0);
    /* Distinct resources stay distinct JIDs (never folded). */
    psyc_buf r1, r2, u;
    psyc_buf_init(&r1);
    psyc_buf_init(&r2);
    psyc_buf_init(&u);
    assert_int_equal(addr_uniform_to_jid(&natural, "psyc://h.example/@room", "Alice", &r1), 0);
    assert_int_equal(addr_uniform_to_jid(&natural, "psyc://h.example/@room", "alice", &r2), 0);
    assert_false(r1.len == r2.len && memcmp(r1.data, r2.data, r1.len) == 0);
    psyc_buf_free(&r1);
    psyc_buf_free(&r2);
    psyc_buf_free(&u);
}

/* ------------------------------------------------------------------ */
/* Properties                                                         */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* A random name: letters, digits, the characters the escapes exist for,
 * prefixes, percent, and some UTF-8. */
static void random_name(char *out, size_t cap)
{
    static const char *const atoms[] = {"a", "b", "z", "0", "9", "-", ".", "_", "*", "$", "%",
                                        "'", "&", "@", ":", "/", "<", ">", "\"", "\\", " ",
                                        "~", "!", "=", "?", "#", "\xc3\xa9", "\xe2\x82\xac",
                                        "\xf0\x9f\x98\x80", "+", "(", ")", ","};
    size_t n = 1 + rnd() % 12, len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *a = atoms[rnd() % (sizeof atoms / sizeof atoms[0])];
        if (len + strlen(a) + 1 >= cap)
            break;
        strcpy(out + len, a);
        len += strlen(a);
    }
}

/* PSYC side first: a person/place/service name on some host, mapped to a
 * JID and back must give the same (normalised) uniform. */
static void check_uniform_roundtrip(const addr_map *m, const char *uniform)
{
    psyc_buf j, u, n;
    psyc_buf_init(&j);
    psyc_buf_init(&u);
    psyc_buf_init(&n);
    if (psyc_uniform_normalize(psyc_str_c(uniform), &n) != 0)
        fail_msg("generator made an invalid uniform %s", uniform);
    psyc_buf_putc(&n, '\0');
    int rc = addr_uniform_to_jid(m, uniform, NULL, &j);
    if (rc == 0) {
        psyc_buf_putc(&j, '\0');
        rc = addr_jid_to_uniform(m, j.data, &u, NULL);
        if (rc != 0)
            fail_msg("%s -> %s -> %s", uniform, j.data, addr_strerror(rc));
        psyc_buf_putc(&u, '\0');
        if (strcmp(u.data, n.data) != 0)
            fail_msg("%s -> %s -> %s", n.data, j.data, u.data);
    } else if (rc != ADDR_ERR_NAME) {
        /* Only names that make no localpart (NUL-free but e.g. a leading
         * space) may be refused. */
        fail_msg("%s refused: %s", uniform, addr_strerror(rc));
    }
    psyc_buf_free(&j);
    psyc_buf_free(&u);
    psyc_buf_free(&n);
}

/* XMPP side first: a valid JID that maps must come back as itself. */
static void check_jid_roundtrip(const addr_map *m, const char *jid_in)
{
    jid_t jn = JID_INIT;
    if (jid_parse_cstr(&jn, jid_in) != JID_OK)
        return; /* the generator may make invalid JIDs: nothing to map */
    psyc_buf u, r, j;
    psyc_buf_init(&u);
    psyc_buf_init(&r);
    psyc_buf_init(&j);
    int rc = addr_jid_to_uniform(m, jn.full, &u, &r);
    if (rc == 0) {
        psyc_buf_putc(&u, '\0');
        psyc_buf_putc(&r, '\0');
        rc = addr_uniform_to_jid(m, u.data, r.data, &j);
        if (rc != 0)
            fail_msg("%s -> %s -> %s", jn.full, u.data, addr_strerror(rc));
        psyc_buf_putc(&j, '\0');
        if (strcmp(j.data, jn.full) != 0)
            fail_msg("%s -> %s -> %s", jn.full, u.data, j.data);
    } else if (rc != ADDR_ERR_BACKSLASH && rc != ADDR_ERR_HOST && rc != ADDR_ERR_NAME) {
        fail_msg("%s refused: %s", jn.full, addr_strerror(rc));
    }
    psyc_buf_free(&u);
    psyc_buf_free(&r);
    psyc_buf_free(&j);
    jid_free(&jn);
}

static void test_property_uniform_first(void **state)
{
    (void)state;
    static const char *const hosts[] = {"psyced.org", "gw.example.net", "a.test",
                                        "xn--bcher-kva.example", "gw.example.net:4405",
                                        "h.test:4405s"};
    static const char types[] = {'~', '@', '$'};
    char name[64], pct[256], uni[400];
    int mapped = 0;
    for (int i = 0; i < 5000; i++) {
        random_name(name, sizeof name);
        /* percent-encode the name the way a sender might (both hex cases) */
        size_t k = 0;
        for (const unsigned char *p = (const unsigned char *)name; *p && k + 4 < sizeof pct; p++) {
            int safe = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                       strchr("$&'()*+,-.:;_!?=~@", *p);
            if (safe && *p != 0)
                pct[k++] = (char)*p;
            else
                k += (size_t)snprintf(pct + k, sizeof pct - k, rnd() & 1 ? "%%%02x" : "%%%02X", *p);
        }
        pct[k] = '\0';
        const char *host = hosts[rnd() % (sizeof hosts / sizeof hosts[0])];
        snprintf(uni, sizeof uni, "psyc://%s/%c%s", host, types[rnd() % 3], pct);
        const addr_map *m = (i & 1) ? &transport : &natural;
        if (m == &natural && strchr(host, ':'))
            m = &transport;
        check_uniform_roundtrip(m, uni);
        mapped++;
    }
    assert_int_equal(mapped, 5000);
}

static void test_property_jid_first(void **state)
{
    (void)state;
    static const char *const domains[] = {"remote.org", "psyc.example.org", "example.org",
                                          "b\xc3\xbc" "cher.example"};
    char name[64], local[300], jid[400];
    for (int i = 0; i < 5000; i++) {
        random_name(name, sizeof name);
        /* Sometimes a well-formed escaped localpart, sometimes raw text. */
        const char *l = name;
        if (rnd() & 1) {
            psyc_buf b;
            psyc_buf_init(&b);
            const addr_map *m = (i & 2) ? &transport : &natural;
            char uni[400];
            snprintf(uni, sizeof uni, "psyc://remote.org/~x");
            (void)uni;
            /* escape as the mapping would (via a uniform round) */
            char pct[256];
            size_t k = 0;
            for (const unsigned char *p = (const unsigned char *)name; *p && k + 4 < sizeof pct; p++)
                k += (size_t)snprintf(pct + k, sizeof pct - k, "%%%02x", *p);
            pct[k] = '\0';
            snprintf(uni, sizeof uni, "psyc://psyced.org/~%s", pct);
            if (addr_uniform_to_jid(m, uni, NULL, &b) == 0) {
                psyc_buf_putc(&b, '\0');
                snprintf(local, sizeof local, "%s", b.data);
                char *at = strrchr(local, '@');
                if (at)
                    *at = '\0';
                l = local;
            }
            psyc_buf_free(&b);
        }
        const char *d = domains[rnd() % (sizeof domains / sizeof domains[0])];
        int res = rnd() % 3;
        snprintf(jid, sizeof jid, "%s@%s%s%s", l, d, res ? "/" : "", res == 1 ? "Res" : res ? name : "");
        check_jid_roundtrip(&natural, jid);
        check_jid_roundtrip(&transport, jid);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_natural_grammar),
        cmocka_unit_test(test_transport_grammar),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_registered),
        cmocka_unit_test(test_lookalikes),
        cmocka_unit_test(test_property_uniform_first),
        cmocka_unit_test(test_property_jid_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
