/* test_uniform.c: uniforms (PSYC.md §3.1; libpsyc uniform_parse.c ported, §6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "psyc/psyc.h"

#define S(x) psyc_str_c(x)

/* Every valid uniform of the brief and PSYC.md §3.1, plus the shapes seen
 * in tests/vectors/psyc. */
static const char *const valid[] = {
    "psyc://foo.tld:4404d/@bar#baz",
    "psyc://foo:-1234d",
    "psyc://1234567890abcdef:g/~foo",
    "psyc://foo/",
    "psyc://foo",
    "psyc://host/~nick",
    "psyc://host/$svc",
    "psyc://192.0.2.7:-33012/",
    "psyc://127.0.0.2:4404/",
    "psyc://psyced.example.net/@welcome",
    "psyc://p5B084547.dip.t-dialin.net/@test",
    "psyc://host/~alice#_follow",
    "psyc://host:4404",
    "psyc://host:4404c/~a",
    "psyc://host:9404s/",
    "psyc://host:g",
    "psyc://host:0/",
    "psyc://host:-0/",
    "psyc://host:65535/",
    "psyc://host:-65535/",
    "psyc://host:04404/",
    "PSYC://Host.Example/~Alice",
    "psyc://h/~a:b/c.d;e=f?g!h@i~j$k%l&m'n(o)p*q+r,s-t",
    "psyc://h/@~@",
    "psyc://h/$$",
    "psyc://h/~n#$",
};

struct bad {
    const char *s;
    int err;
};

static const struct bad invalid[] = {
    {"psyc:host", PSYC_UNI_ERR_SLASHES},
    {"psyc:/host", PSYC_UNI_ERR_SLASHES},
    {"psyc:", PSYC_UNI_ERR_SLASHES},
    {"psyc://:123/", PSYC_UNI_ERR_HOST},
    {"psyc://", PSYC_UNI_ERR_HOST},
    {"psyc:///~foo", PSYC_UNI_ERR_HOST},
    {"psyc://ho_st/", PSYC_UNI_ERR_HOST},
    {"psyc://host#x", PSYC_UNI_ERR_HOST},
    {"psyc://[::1]/", PSYC_UNI_ERR_HOST},
    {"psyc://host:/~foo", PSYC_UNI_ERR_PORT},
    {"psyc://host:d/~foo", PSYC_UNI_ERR_PORT},
    {"psyc://host:", PSYC_UNI_ERR_PORT},
    {"psyc://host:-", PSYC_UNI_ERR_PORT},
    {"psyc://host:-/", PSYC_UNI_ERR_PORT},
    {"psyc://host:-g", PSYC_UNI_ERR_PORT},
    {"psyc://host:65536/", PSYC_UNI_ERR_PORT},
    {"psyc://host:-65536/", PSYC_UNI_ERR_PORT},
    {"psyc://host:99999999999999999999999/", PSYC_UNI_ERR_PORT},
    {"psyc://x:1g/~foo", PSYC_UNI_ERR_TRANSPORT},
    {"psyc://x:1x/", PSYC_UNI_ERR_TRANSPORT},
    {"psyc://x:1dd/", PSYC_UNI_ERR_TRANSPORT},
    {"psyc://x:1D/", PSYC_UNI_ERR_TRANSPORT},
    {"psyc://x:gg", PSYC_UNI_ERR_TRANSPORT},
    {"psyc://x:1d#c", PSYC_UNI_ERR_TRANSPORT},
    {"xmpp:user@host", PSYC_UNI_ERR_SCHEME},
    {"xmpp:user@host/res", PSYC_UNI_ERR_SCHEME},
    {"irc://irc.example.net/#chan", PSYC_UNI_ERR_SCHEME},
    {"mailto:a@b", PSYC_UNI_ERR_SCHEME},
    {"psycs://host/", PSYC_UNI_ERR_SCHEME},
    {"host/~foo", PSYC_UNI_ERR_SCHEME},
    {"", PSYC_UNI_ERR_SCHEME},
    {"psyc", PSYC_UNI_ERR_SCHEME}, /* fuzz: read past the end */
    {"PSYC", PSYC_UNI_ERR_SCHEME},
    {"psy", PSYC_UNI_ERR_SCHEME},
    {":", PSYC_UNI_ERR_SCHEME},
    {"://h/", PSYC_UNI_ERR_SCHEME},
    {"psyc://host/foo", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/_foo", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/#chan", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host//", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/~", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/@", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/$", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/~#x", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/~a b", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/~a\n", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/~a\"", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/~a<b", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/~a}", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/~a|b", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/~a`", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/~b\xc3\xa4r", PSYC_UNI_ERR_RESOURCE},
    {"psyc://host/~a#", PSYC_UNI_ERR_CHANNEL},
    {"psyc://host/~a#b#c", PSYC_UNI_ERR_CHANNEL},
    {"psyc://host/~a#b c", PSYC_UNI_ERR_CHANNEL},
};

static void test_valid(void **state)
{
    (void)state;
    psyc_buf b;
    psyc_buf_init(&b);
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        psyc_uniform u;
        int rc = psyc_uniform_parse(&u, S(valid[i]));
        if (rc != PSYC_UNI_OK)
            fail_msg("%s: %s", valid[i], psyc_uniform_strerror(rc));
        psyc_buf_reset(&b);
        assert_int_equal(psyc_uniform_render(&u, &b), 0);
        assert_int_equal(b.len, strlen(valid[i]));
        assert_memory_equal(b.data, valid[i], b.len);
    }
    psyc_buf_free(&b);
}

static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        psyc_uniform u;
        int rc = psyc_uniform_parse(&u, S(invalid[i].s));
        if (rc != invalid[i].err)
            fail_msg("%s: got %d (%s), want %d", invalid[i].s, rc, psyc_uniform_strerror(rc),
                     invalid[i].err);
        psyc_buf b;
        psyc_buf_init(&b);
        assert_int_equal(psyc_uniform_normalize(S(invalid[i].s), &b), invalid[i].err);
        assert_int_equal(b.len, 0);
        psyc_buf_free(&b);
    }
}

static void test_embedded_nul_and_null(void **state)
{
    (void)state;
    psyc_uniform u;
    assert_int_equal(psyc_uniform_parse(&u, (psyc_str){"psyc://h/~a\0b", 13}), PSYC_UNI_ERR_RESOURCE);
    assert_int_equal(psyc_uniform_parse(&u, PSYC_STR_NULL), PSYC_UNI_ERR_SCHEME);
    /* a view: bytes after len are not part of the uniform */
    assert_int_equal(psyc_uniform_parse(&u, (psyc_str){"psyc://h/~a b", 11}), PSYC_UNI_OK);
    assert_int_equal(u.nick.len, 1);
}

static void test_too_long(void **state)
{
    (void)state;
    char s[PSYC_UNIFORM_MAX + 2];
    memcpy(s, "psyc://h/~", 10);
    memset(s + 10, 'a', sizeof s - 10);
    psyc_uniform u;
    assert_int_equal(psyc_uniform_parse(&u, (psyc_str){s, PSYC_UNIFORM_MAX}), PSYC_UNI_OK);
    assert_int_equal(psyc_uniform_parse(&u, (psyc_str){s, PSYC_UNIFORM_MAX + 1}), PSYC_UNI_ERR_TOO_LONG);
    psyc_buf b;
    psyc_buf_init(&b);
    assert_int_equal(psyc_uniform_normalize((psyc_str){s, PSYC_UNIFORM_MAX + 1}, &b), PSYC_UNI_ERR_TOO_LONG);
    psyc_buf_free(&b);
}

static void assert_view(psyc_str v, const char *want)
{
    if (!want) {
        assert_int_equal(v.len, 0);
        return;
    }
    if (v.len != strlen(want) || memcmp(v.ptr, want, v.len) != 0)
        fail_msg("view '%.*s' != '%s'", (int)v.len, v.ptr ? v.ptr : "", want);
}

static void test_parts(void **state)
{
    (void)state;
    psyc_uniform u;
    const char *s = "psyc://foo.tld:4404d/@bar#baz";
    assert_int_equal(psyc_uniform_parse(&u, S(s)), PSYC_UNI_OK);
    assert_ptr_equal(u.full.ptr, s);
    assert_int_equal(u.full.len, strlen(s));
    assert_view(u.scheme, "psyc");
    assert_view(u.host, "foo.tld");
    assert_view(u.port, "4404");
    assert_int_equal(u.port_num, 4404);
    assert_int_equal(u.transport, 'd');
    assert_view(u.root, "psyc://foo.tld:4404d");
    assert_int_equal(u.slash, 1);
    assert_view(u.resource, "@bar");
    assert_int_equal(u.entity_type, '@');
    assert_view(u.nick, "bar");
    assert_view(u.channel, "baz");

    assert_int_equal(psyc_uniform_parse(&u, S("psyc://foo:-1234d")), PSYC_UNI_OK);
    assert_view(u.port, "-1234");
    assert_int_equal(u.port_num, -1234);
    assert_int_equal(u.transport, 'd');
    assert_view(u.root, "psyc://foo:-1234d");
    assert_int_equal(u.slash, 0);
    assert_view(u.resource, NULL);
    assert_int_equal(u.entity_type, 0);

    assert_int_equal(psyc_uniform_parse(&u, S("psyc://1234567890abcdef:g/~foo")), PSYC_UNI_OK);
    assert_view(u.host, "1234567890abcdef");
    assert_view(u.port, NULL);
    assert_int_equal(u.port_num, 0);
    assert_int_equal(u.transport, 'g');
    assert_view(u.root, "psyc://1234567890abcdef:g");
    assert_int_equal(u.entity_type, '~');
    assert_view(u.nick, "foo");

    assert_int_equal(psyc_uniform_parse(&u, S("psyc://foo/")), PSYC_UNI_OK);
    assert_view(u.root, "psyc://foo");
    assert_int_equal(u.slash, 1);
    assert_view(u.resource, NULL);
    assert_view(u.nick, NULL);
    assert_view(u.channel, NULL);
    assert_int_equal(u.entity_type, 0);
    assert_int_equal(u.transport, 0);

    assert_int_equal(psyc_uniform_parse(&u, S("psyc://host/$svc")), PSYC_UNI_OK);
    assert_int_equal(u.entity_type, '$');
    assert_view(u.resource, "$svc");
    assert_view(u.nick, "svc");

    assert_int_equal(psyc_uniform_parse(&u, S("psyc://192.0.2.7:-33012/")), PSYC_UNI_OK);
    assert_view(u.host, "192.0.2.7");
    assert_int_equal(u.port_num, -33012);
    assert_view(u.root, "psyc://192.0.2.7:-33012");
}

static void expect_norm(const char *in, const char *want)
{
    psyc_buf b;
    psyc_buf_init(&b);
    int rc = psyc_uniform_normalize(S(in), &b);
    if (rc != 0)
        fail_msg("%s: %s", in, psyc_uniform_strerror(rc));
    if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
        fail_msg("normalize(%s) = %.*s, want %s", in, (int)b.len, b.data, want);
    psyc_buf_free(&b);
}

static void test_normalize(void **state)
{
    (void)state;
    expect_norm("PSYC://Host.Example/~Alice", "psyc://host.example/~alice");
    expect_norm("Psyc://HOST:4404/@Lab#Follow", "psyc://host/@lab#Follow");
    expect_norm("psyc://host:4404", "psyc://host");
    expect_norm("psyc://host:4404/", "psyc://host/");
    expect_norm("psyc://host:04404/", "psyc://host/");
    expect_norm("psyc://host:4404d/~a", "psyc://host:4404d/~a");
    expect_norm("psyc://host:4404c/~a", "psyc://host:4404c/~a");
    expect_norm("psyc://host:-4404/", "psyc://host:-4404/");
    expect_norm("psyc://host:4405/", "psyc://host:4405/");
    expect_norm("psyc://host:00080/", "psyc://host:80/");
    expect_norm("psyc://host:-0/", "psyc://host:0/");
    expect_norm("psyc://host:-033012/", "psyc://host:-33012/");
    expect_norm("psyc://KEY:g/$Svc", "psyc://key:g/$svc");
    expect_norm("psyc://host", "psyc://host");
    expect_norm("psyc://host/", "psyc://host/");
    expect_norm("psyc://192.0.2.7:-33012/", "psyc://192.0.2.7:-33012/");

    /* appends, and leaves out alone on error */
    psyc_buf b;
    psyc_buf_init(&b);
    assert_int_equal(psyc_buf_puts(&b, "x "), 0);
    assert_int_equal(psyc_uniform_normalize(S("psyc://A/"), &b), 0);
    assert_string_equal(b.data, "x psyc://a/");
    assert_int_equal(psyc_uniform_normalize(S("psyc://A:/"), &b), PSYC_UNI_ERR_PORT);
    assert_string_equal(b.data, "x psyc://a/");
    psyc_buf_free(&b);
}

static void test_render_built(void **state)
{
    (void)state;
    psyc_buf b;
    psyc_buf_init(&b);
    psyc_uniform u;
    memset(&u, 0, sizeof u);
    u.host = S("example.org");
    u.entity_type = '~';
    u.nick = S("bob");
    assert_int_equal(psyc_uniform_render(&u, &b), 0);
    assert_string_equal(b.data, "psyc://example.org/~bob");

    psyc_buf_reset(&b);
    u.port_num = -33012;
    u.transport = 'd';
    u.channel = S("_follow");
    assert_int_equal(psyc_uniform_render(&u, &b), 0);
    assert_string_equal(b.data, "psyc://example.org:-33012d/~bob#_follow");

    psyc_buf_reset(&b);
    memset(&u, 0, sizeof u);
    u.host = S("example.org");
    u.slash = 1;
    assert_int_equal(psyc_uniform_render(&u, &b), 0);
    assert_string_equal(b.data, "psyc://example.org/");

    /* invalid parts: nothing written */
    psyc_buf_reset(&b);
    assert_int_equal(psyc_buf_puts(&b, "keep"), 0);
    memset(&u, 0, sizeof u);
    assert_int_equal(psyc_uniform_render(&u, &b), PSYC_ERR_INVALID); /* no host */
    u.host = S("bad host");
    assert_int_equal(psyc_uniform_render(&u, &b), PSYC_ERR_INVALID);
    u.host = S("h");
    u.entity_type = '~';
    u.nick = S("a b");
    assert_int_equal(psyc_uniform_render(&u, &b), PSYC_ERR_INVALID);
    u.nick = PSYC_STR_NULL;
    u.entity_type = 0;
    u.channel = S("c"); /* a channel needs a resource */
    assert_int_equal(psyc_uniform_render(&u, &b), PSYC_ERR_INVALID);
    u.channel = PSYC_STR_NULL;
    u.scheme = S("xmpp");
    assert_int_equal(psyc_uniform_render(&u, &b), PSYC_ERR_INVALID);
    assert_string_equal(b.data, "keep");
    assert_int_equal(b.len, 4);
    psyc_buf_free(&b);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int c = PSYC_UNI_ERR_TOO_LONG; c <= PSYC_UNI_OK; c++) {
        const char *m = psyc_uniform_strerror(c);
        assert_non_null(m);
        assert_true(strlen(m) > 0);
    }
    assert_string_equal(psyc_uniform_strerror(PSYC_UNI_ERR_PORT), "invalid port");
    assert_non_null(psyc_uniform_strerror(12345));
}

/* ---- property test ------------------------------------------------- */

/* xorshift64*, fixed seed: the same uniforms on every run. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static size_t rng_below(uint64_t *s, size_t n)
{
    return (size_t)(rng_next(s) % n);
}

static void rng_run(uint64_t *s, psyc_buf *b, const char *set, size_t min, size_t max)
{
    size_t n = min + rng_below(s, max - min + 1);
    size_t k = strlen(set);
    for (size_t i = 0; i < n; i++)
        psyc_buf_putc(b, set[rng_below(s, k)]);
}

#define HOST_SET "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-"
/* every name char of PSYC.md §3.1 */
#define NAME_SET "abcxyzABCXYZ$%&'()*+,-./0123456789:;_!?=@~"

static void gen_uniform(uint64_t *s, psyc_buf *b)
{
    static const char *const schemes[] = {"psyc", "PSYC", "Psyc"};
    psyc_buf_puts(b, schemes[rng_below(s, 3)]);
    psyc_buf_puts(b, "://");
    switch (rng_below(s, 4)) {
    case 0: { /* dotted quad */
        char ip[20];
        snprintf(ip, sizeof ip, "%u.%u.%u.%u", (unsigned)rng_below(s, 256), (unsigned)rng_below(s, 256),
                 (unsigned)rng_below(s, 256), (unsigned)rng_below(s, 256));
        psyc_buf_puts(b, ip);
        break;
    }
    case 1:
        psyc_buf_puts(b, "psyced.example.net");
        break;
    default:
        rng_run(s, b, HOST_SET, 1, 40);
    }

    char port[16];
    switch (rng_below(s, 6)) {
    case 0: case 1:
        break; /* no port */
    case 2:
        psyc_buf_puts(b, ":4404");
        break;
    case 3: /* negative ephemeral port, as psyced reports peers (PSYC.md §2.2) */
        snprintf(port, sizeof port, ":-%u", 1024 + (unsigned)rng_below(s, 64512));
        psyc_buf_puts(b, port);
        break;
    case 4: /* any port, sometimes with a leading zero */
        snprintf(port, sizeof port, ":%s%u", rng_below(s, 8) ? "" : "0", (unsigned)rng_below(s, 65536));
        psyc_buf_puts(b, port);
        break;
    default: /* GNUnet: transport without a port */
        psyc_buf_puts(b, ":g");
        break;
    }
    if (b->data[b->len - 1] != 'g' && memchr(b->data + 7, ':', b->len - 7) && rng_below(s, 2))
        psyc_buf_putc(b, "cds"[rng_below(s, 3)]);

    switch (rng_below(s, 4)) {
    case 0:
        return; /* protocol root */
    case 1:
        psyc_buf_putc(b, '/');
        return; /* root entity */
    default:
        break;
    }
    psyc_buf_putc(b, '/');
    psyc_buf_putc(b, "~@$"[rng_below(s, 3)]);
    rng_run(s, b, NAME_SET, 1, 30);
    if (rng_below(s, 3) == 0) {
        psyc_buf_putc(b, '#');
        rng_run(s, b, NAME_SET, 1, 12);
    }
}

static void test_property_roundtrip(void **state)
{
    (void)state;
    uint64_t seed = 0x5053594331303434ULL; /* "PSYC1044" */
    psyc_buf in, out, n1, n2;
    psyc_buf_init(&in);
    psyc_buf_init(&out);
    psyc_buf_init(&n1);
    psyc_buf_init(&n2);
    size_t with_port = 0, with_channel = 0, negative = 0;

    for (int i = 0; i < 5000; i++) {
        psyc_buf_reset(&in);
        gen_uniform(&seed, &in);
        psyc_str x = {in.data, in.len};

        psyc_uniform u;
        int rc = psyc_uniform_parse(&u, x);
        if (rc != PSYC_UNI_OK)
            fail_msg("#%d %s: %s", i, in.data, psyc_uniform_strerror(rc));
        with_port += u.port.len > 0;
        with_channel += u.channel.len > 0;
        negative += u.port_num < 0;

        psyc_buf_reset(&out);
        assert_int_equal(psyc_uniform_render(&u, &out), 0);
        if (out.len != in.len || memcmp(out.data, in.data, in.len) != 0)
            fail_msg("#%d render(parse(%s)) = %s", i, in.data, out.data);

        psyc_buf_reset(&n1);
        psyc_buf_reset(&n2);
        assert_int_equal(psyc_uniform_normalize(x, &n1), 0);
        assert_int_equal(psyc_uniform_normalize((psyc_str){n1.data, n1.len}, &n2), 0);
        if (n1.len != n2.len || memcmp(n1.data, n2.data, n1.len) != 0)
            fail_msg("#%d normalize not idempotent: %s -> %s -> %s", i, in.data, n1.data, n2.data);
        assert_true(n1.len <= in.len);

        /* the normal form is lower-case where it should be */
        psyc_uniform nu;
        assert_int_equal(psyc_uniform_parse(&nu, (psyc_str){n1.data, n1.len}), PSYC_UNI_OK);
        for (size_t k = 0; k < nu.host.len; k++)
            assert_false(nu.host.ptr[k] >= 'A' && nu.host.ptr[k] <= 'Z');
        for (size_t k = 0; k < nu.nick.len; k++)
            assert_false(nu.nick.ptr[k] >= 'A' && nu.nick.ptr[k] <= 'Z');
        assert_memory_equal(nu.scheme.ptr, "psyc", 4);
        assert_int_equal(nu.entity_type, u.entity_type);
        assert_int_equal(nu.transport, u.transport);
        assert_int_equal(nu.slash, u.slash);
        if (!(u.port_num == 4404 && !u.transport))
            assert_int_equal(nu.port_num, u.port_num);
        else
            assert_int_equal(nu.port.len, 0);
    }
    /* the generator covers what it claims to */
    assert_true(with_port > 1000);
    assert_true(with_channel > 500);
    assert_true(negative > 500);

    psyc_buf_free(&in);
    psyc_buf_free(&out);
    psyc_buf_free(&n1);
    psyc_buf_free(&n2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_embedded_nul_and_null),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_parts),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_render_built),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_property_roundtrip),
    };
    return cmocka_run_group_tests_name("uniform", tests, NULL, NULL);
}
