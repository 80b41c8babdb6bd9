/* test_jid.c: JIDs (RFC 6122) and JID escaping (XEP-0106), xmpp/jid.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <idna.h>
#include <stringprep.h>

#include "xmpp/jid.h"

/* ------------------------------------------------------------------ */
/* helpers                                                            */

/* Parses in[0..len), expects success and the normalised full form `want`;
 * normalising that again must give the same JID (idempotence), and its
 * bare form must parse to the bare JID. */
static void check_ok_n(const char *in, size_t len, const char *want)
{
    jid_t j = JID_INIT, k = JID_INIT, b = JID_INIT;
    jid_err_t err = jid_parse(&j, in, len);
    if (err != JID_OK)
        fail_msg("'%s': %s", in, jid_strerror(err));
    if (strcmp(j.full, want) != 0)
        fail_msg("'%s': got '%s', want '%s'", in, j.full, want);
    assert_int_equal(j.full_len, strlen(j.full));
    assert_int_equal(jid_parse(&k, j.full, j.full_len), JID_OK);
    assert_string_equal(k.full, j.full);
    assert_true(jid_equal_full(&j, &k));
    assert_int_equal(jid_parse(&b, j.bare, j.bare_len), JID_OK);
    assert_true(jid_is_bare(&b));
    assert_true(jid_equal_bare(&b, &j));
    assert_true(j.local_len <= JID_PART_MAX && j.domain_len <= JID_PART_MAX &&
                j.resource_len <= JID_PART_MAX);
    jid_free(&j);
    jid_free(&k);
    jid_free(&b);
}

static void check_ok(const char *in, const char *want) { check_ok_n(in, strlen(in), want); }

static void check_err_n(const char *in, size_t len, jid_err_t want)
{
    jid_t j = JID_INIT;
    jid_err_t err = jid_parse(&j, in, len);
    if (err != want)
        fail_msg("'%s': got %d (%s), want %d (%s)", in, err, jid_strerror(err), want,
                 jid_strerror(want));
    assert_null(j.buf);
    assert_null(j.full);
    jid_free(&j);
}

static void check_err(const char *in, jid_err_t want) { check_err_n(in, strlen(in), want); }

static char *repeat(const char *unit, size_t times, const char *prefix, const char *suffix)
{
    size_t ul = strlen(unit), pl = strlen(prefix), sl = strlen(suffix);
    char *s = malloc(pl + ul * times + sl + 1);
    assert_non_null(s);
    memcpy(s, prefix, pl);
    for (size_t i = 0; i < times; i++)
        memcpy(s + pl + i * ul, unit, ul);
    memcpy(s + pl + ul * times, suffix, sl + 1);
    return s;
}

/* escape/unescape into a fresh buffer; returns the error, *out malloc'd */
static jid_err_t esc(const char *in, char **out)
{
    size_t n = strlen(in), size = JID_ESCAPE_BOUND(n), got = 0;
    *out = malloc(size);
    assert_non_null(*out);
    jid_err_t err = jid_escape_local(in, n, *out, size, &got);
    if (err == JID_OK)
        assert_int_equal(got, strlen(*out));
    return err;
}

static jid_err_t unesc(const char *in, char **out)
{
    size_t n = strlen(in), size = JID_UNESCAPE_BOUND(n), got = 0;
    *out = malloc(size);
    assert_non_null(*out);
    jid_err_t err = jid_unescape_local(in, n, *out, size, &got);
    if (err == JID_OK) {
        assert_int_equal(got, strlen(*out));
        assert_true(got <= n);
    }
    return err;
}

/* Fixed-seed xorshift64* so failures reproduce. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32) % n;
}

static void gen(char *buf, size_t cap, const char *const *pieces, size_t npieces, size_t maxp)
{
    size_t n = rnd((uint32_t)maxp + 1), len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *p = pieces[rnd((uint32_t)npieces)];
        size_t pl = strlen(p);
        if (len + pl + 1 > cap)
            break;
        memcpy(buf + len, p, pl + 1);
        len += pl;
    }
}

static void ascii_lower_str(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + 32);
}

static int is_ascii_str(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* parsing and normalisation                                          */

static void test_ascii_forms(void **state)
{
    (void)state;
    check_ok("example.com", "example.com");
    check_ok("Example.COM", "example.com");
    check_ok("example.com.", "example.com"); /* RFC 6122 §2.2: trailing dot stripped */
    check_ok("localhost", "localhost");
    check_ok("Alice@Example.COM/Home", "alice@example.com/Home");
    check_ok("alice@example.com", "alice@example.com");
    check_ok("example.com/res", "example.com/res");
    check_ok("a-b@a-b.c0m", "a-b@a-b.c0m");
    check_ok("a@123abc.x.123", "a@123abc.x.123");
    /* §2.1: the first '/' starts the resource, which may hold '@' and '/' */
    check_ok("alice@example.com/a b@c/d", "alice@example.com/a b@c/d");
    check_ok("a/b@c", "a/b@c");
    check_ok("example.com/@", "example.com/@");
    check_ok("a@b/ ", "a@b/ "); /* resourceprep allows U+0020 */
    check_ok("a%b!c#d$e*f+g=h?i^j_k`l{m|n}o~p@example.com",
             "a%b!c#d$e*f+g=h?i^j_k`l{m|n}o~p@example.com");
    /* XEP-0106 output is a valid localpart */
    check_ok("d\\27Artagnan@example.com", "d\\27artagnan@example.com");
}

static void test_unicode_forms(void **state)
{
    (void)state;
    /* B.2 case folding: ß -> ss */
    check_ok("Straße@example.com", "strasse@example.com");
    /* Greek: capital and final sigma both fold to σ */
    check_ok("ΣΑΣ@example.com", "σασ@example.com");
    check_ok("σας@example.com", "σασ@example.com");
    /* NFKC: fullwidth letters become ASCII (and then lower case) */
    check_ok("ＡＢＣ@example.com", "abc@example.com");
    check_ok("user@ｅｘａｍｐｌｅ．ｃｏｍ", "user@example.com"); /* U+FF0E is a dot */
    /* Cyrillic and an IDN domain */
    check_ok("ПРИВЕТ@ПРИМЕР.РФ", "привет@пример.рф");
    /* Chinese everywhere; U+3002 IDEOGRAPHIC FULL STOP separates labels */
    check_ok("用户@例子。中国/资源", "用户@例子.中国/资源");
    check_ok("a@example.com。", "a@example.com");
    /* resourceprep: NFKC but no case folding */
    check_ok("a@b/ＡＢＣ", "a@b/ABC");
    check_ok("a@b/ﬁ", "a@b/fi");
    check_ok("a@b/Ünïcödé", "a@b/Ünïcödé");
    /* B.1: mapped to nothing */
    check_ok("a\xC2\xAD" "b@example.com", "ab@example.com");
    /* İ folds to i + U+0307 (expands) */
    check_ok("İ@example.com", "i\xCC\x87@example.com");
    /* IDN labels keep their Unicode (nameprep'd) form; A-labels stay */
    check_ok("a@Bücher.example", "a@bücher.example");
    check_ok("a@xn--bcher-kva.example", "a@xn--bcher-kva.example");
    /* right-to-left only: fine */
    check_ok("שלום@example.com", "שלום@example.com");
    /* the resource may carry code points unassigned in Unicode 3.2 */
    check_ok("room@muc.example/😀 nick", "room@muc.example/😀 nick");
    /* fullwidth digits normalise to an IPv4 address */
    check_ok("a@１.２.３.４", "a@1.2.3.4");
    check_ok("a@1。2。3。4", "a@1.2.3.4");
}

static void test_ip_literals(void **state)
{
    (void)state;
    check_ok("a@[::1]", "a@[::1]");
    check_ok("a@[0:0:0:0:0:0:0:1]/r", "a@[::1]/r");
    check_ok("[2001:DB8::1]", "[2001:db8::1]");
    check_ok("a@[::ffff:192.0.2.1]", "a@[::ffff:192.0.2.1]");
    check_ok("a@192.0.2.1/r", "a@192.0.2.1/r");
    check_ok("192.0.2.1.", "192.0.2.1");
    check_err("a@[::1", JID_ERR_DOMAIN_IP);
    check_err("a@[::1]x", JID_ERR_DOMAIN_IP);
    check_err("a@[]", JID_ERR_DOMAIN_IP);
    check_err("a@[zz]", JID_ERR_DOMAIN_IP);
    check_err("a@[192.0.2.1]", JID_ERR_DOMAIN_IP);  /* RFC 3986: v4 not bracketed */
    check_err("a@[fe80::1%eth0]", JID_ERR_DOMAIN_IP); /* no zone ids */
    check_err("a@999.1.1.1", JID_ERR_DOMAIN_IP);
    check_err("a@1.2.3", JID_ERR_DOMAIN_IP);
    check_err("a@01.2.3.4", JID_ERR_DOMAIN_IP);
    check_err("a@123", JID_ERR_DOMAIN_IP);
    check_err("a@1.2.3.4.5", JID_ERR_DOMAIN_IP);
}

static void test_structure_errors(void **state)
{
    (void)state;
    check_err("", JID_ERR_EMPTY);
    check_err("@example.com", JID_ERR_LOCAL_EMPTY);
    check_err("@", JID_ERR_LOCAL_EMPTY);
    check_err("a@", JID_ERR_DOMAIN_EMPTY);
    check_err("a@/r", JID_ERR_DOMAIN_EMPTY);
    check_err("/r", JID_ERR_DOMAIN_EMPTY);
    check_err("/", JID_ERR_DOMAIN_EMPTY);
    check_err("a@b/", JID_ERR_RESOURCE_EMPTY);
    check_err("b/", JID_ERR_RESOURCE_EMPTY);
    check_err("a@.", JID_ERR_DOMAIN_EMPTY);
    check_err(".", JID_ERR_DOMAIN_EMPTY);
    check_err("。", JID_ERR_DOMAIN_EMPTY);
    /* parts that prepare to nothing */
    check_err("\xC2\xAD@example.com", JID_ERR_LOCAL_EMPTY);
    check_err("a@b/\xE2\x80\x8B", JID_ERR_RESOURCE_EMPTY); /* ZWSP, B.1 */
    check_err("a@\xC2\xAD.com", JID_ERR_DOMAIN_LABEL_EMPTY);
}

static void test_local_prohibited(void **state)
{
    (void)state;
    /* the nodeprep extras (RFC 6122 App. A.5) and spaces */
    static const char *const bad[] = {
        "a\"b@x", "a&b@x", "a'b@x", "a:b@x", "a<b@x", "a>b@x", "a b@x", " @x",
        "a\tb@x", "a\x01" "b@x", "a\x7f" "b@x", "a\x1f@x",
        "a\xC2\xA0" "b@x",         /* U+00A0 NO-BREAK SPACE (C.1.2) */
        "a\xE3\x80\x80" "b@x",     /* U+3000 IDEOGRAPHIC SPACE */
        "a\xEF\xBC\xA0" "b@x",     /* U+FF20 FULLWIDTH @ -> '@' after NFKC */
        "\xEF\xB9\xAB" "b@x",      /* U+FE6B SMALL COMMERCIAL AT */
        "a\xEF\xBC\x8F" "b@x",     /* U+FF0F FULLWIDTH SOLIDUS -> '/' */
        "a\xC2\x85" "b@x",         /* U+0085 NEL (C.2.2) */
        "a\xE2\x80\x8E" "b@x",     /* U+200E LRM (C.8) */
        "a\xEE\x80\x80" "b@x",     /* U+E000 private use (C.3) */
        "a\xEF\xBF\xBE" "b@x",     /* U+FFFE non-character (C.4) */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_err(bad[i], JID_ERR_LOCAL_PROHIBITED);

    /* '@' and '/' cannot reach the localpart through jid_parse (they
     * split), but they can through jid_from_parts */
    jid_t j = JID_INIT;
    assert_int_equal(jid_from_parts(&j, "a@b", "x", NULL), JID_ERR_LOCAL_PROHIBITED);
    assert_int_equal(jid_from_parts(&j, "a/b", "x", NULL), JID_ERR_LOCAL_PROHIBITED);
    assert_int_equal(jid_from_parts(&j, "a b", "x", NULL), JID_ERR_LOCAL_PROHIBITED);
}

static void test_resource_prohibited(void **state)
{
    (void)state;
    check_err("a@b/x\ty", JID_ERR_RESOURCE_PROHIBITED);
    check_err("a@b/x\x7f", JID_ERR_RESOURCE_PROHIBITED);
    check_err("a@b/\n", JID_ERR_RESOURCE_PROHIBITED);
    check_err("a@b/x\xE1\x9A\x80y", JID_ERR_RESOURCE_PROHIBITED); /* U+1680, C.1.2 */
    /* NFKC runs before the prohibition check: U+00A0 becomes a space,
     * which resources allow */
    check_ok("a@b/x\xC2\xA0y", "a@b/x y");
    check_err("a@b/x\xE2\x80\x8Ey", JID_ERR_RESOURCE_PROHIBITED); /* C.8 */
}

static void test_domain_errors(void **state)
{
    (void)state;
    check_err("a@exa mple.com", JID_ERR_DOMAIN_LABEL_CHARS);
    check_err("a@-x.com", JID_ERR_DOMAIN_LABEL_CHARS);
    check_err("a@x-.com", JID_ERR_DOMAIN_LABEL_CHARS);
    check_err("a@ex_ample.com", JID_ERR_DOMAIN_LABEL_CHARS);
    check_err("a@b@c", JID_ERR_DOMAIN_LABEL_CHARS);
    check_err("a@x\xE2\x92\x88y.com", JID_ERR_DOMAIN_LABEL_CHARS); /* U+2488 -> "1." */
    check_err("a@xn--\xC3\xBC.com", JID_ERR_DOMAIN_LABEL_CHARS);  /* ACE prefix + non-ASCII */
    check_err("a@\xEF\xBC\xBB::1\xEF\xBC\xBD", JID_ERR_DOMAIN_LABEL_CHARS); /* fullwidth [ ] */
    check_err("a@example..com", JID_ERR_DOMAIN_LABEL_EMPTY);
    check_err("a@.example.com", JID_ERR_DOMAIN_LABEL_EMPTY);
    check_err("a@example.com..", JID_ERR_DOMAIN_LABEL_EMPTY);
    check_err("a@example.com.\xE3\x80\x82", JID_ERR_DOMAIN_LABEL_EMPTY);
    char *l64 = repeat("a", 64, "a@", ".com");
    check_err(l64, JID_ERR_DOMAIN_LABEL_TOO_LONG);
    free(l64);
    char *l63 = repeat("a", 63, "a@", ".com");
    check_ok(l63, l63);
    free(l63);
    /* 60 × ü: 60 code points, but its ACE form ("xn--" + punycode) is
     * longer than 63 octets */
    char *u60 = repeat("ü", 60, "a@", ".com");
    check_err(u60, JID_ERR_DOMAIN_LABEL_TOO_LONG);
    free(u60);
    check_err("a@x\xC2\xA0y.com", JID_ERR_DOMAIN_LABEL_CHARS);  /* U+00A0 -> space */
    check_err("a@x\xEE\x80\x80y.com", JID_ERR_DOMAIN_PROHIBITED); /* U+E000, C.3 */
    check_err("a@x\xE1\x9A\x80y.com", JID_ERR_DOMAIN_PROHIBITED); /* U+1680, C.1.2 */
    check_err("a@x\xC8\xA1y.com", JID_ERR_DOMAIN_UNASSIGNED);   /* U+0221 */
    check_err("a@\xD7\x90" "a.com", JID_ERR_DOMAIN_BIDI);       /* alef + Latin */
}

static void test_bidi_and_unassigned(void **state)
{
    (void)state;
    check_err("\xD7\x90" "a@x", JID_ERR_LOCAL_BIDI);   /* RAL and L */
    check_err("\xD7\x90" "1@x", JID_ERR_LOCAL_BIDI);   /* RAL not last */
    check_err("a@b/\xD7\x90" "a", JID_ERR_RESOURCE_BIDI);
    check_err("\xC8\xA1@x", JID_ERR_LOCAL_UNASSIGNED); /* U+0221, new in Unicode 4.0 */
    check_err("\xF0\x9F\x98\x80@x", JID_ERR_LOCAL_UNASSIGNED); /* emoji */
    check_ok("a@b/\xC8\xA1", "a@b/\xC8\xA1");          /* resources allow them */
}

static void test_utf8_and_nul(void **state)
{
    (void)state;
    check_err("\xC3@x", JID_ERR_UTF8);             /* truncated */
    check_err("\xC0\xAF@x", JID_ERR_UTF8);         /* overlong '/' */
    check_err("\xE0\x80\xAF@x", JID_ERR_UTF8);     /* overlong, 3 bytes */
    check_err("\xED\xA0\x80@x", JID_ERR_UTF8);     /* surrogate */
    check_err("\xF4\x90\x80\x80@x", JID_ERR_UTF8); /* > U+10FFFF */
    check_err("\xFF@x", JID_ERR_UTF8);
    check_err("\x80@x", JID_ERR_UTF8);
    check_err("a@b/\xC3", JID_ERR_UTF8);
    check_err("a@b\xE2\x82", JID_ERR_UTF8);
    check_err_n("a\0b@x", 5, JID_ERR_NUL);
    check_err_n("a@b/\0", 5, JID_ERR_NUL);
    check_err_n("a@b\0", 4, JID_ERR_NUL);
}

static void test_length_limits(void **state)
{
    (void)state;
    char *s;
    /* localpart: 1023 ok, 1024 not */
    s = repeat("a", 1023, "", "@example.com");
    check_ok(s, s);
    free(s);
    s = repeat("a", 1024, "", "@example.com");
    check_err(s, JID_ERR_LOCAL_TOO_LONG);
    free(s);
    /* the limit applies after nodeprep: İ (2 bytes) becomes 3 bytes */
    s = repeat("İ", 341, "", "@x");
    char *folded = repeat("i\xCC\x87", 341, "", "@x");
    check_ok(s, folded);
    free(folded);
    free(s);
    s = repeat("İ", 342, "", "@x");
    check_err(s, JID_ERR_LOCAL_TOO_LONG);
    free(s);
    /* ... and mapped-to-nothing input may exceed 1023 bytes */
    s = repeat("a", 1022, "", "\xC2\xAD@x");
    jid_t j = JID_INIT;
    assert_int_equal(jid_parse_cstr(&j, s), JID_OK);
    assert_int_equal(j.local_len, 1022);
    jid_free(&j);
    free(s);
    /* hardening cap on raw input */
    s = repeat("a", JID_INPUT_PART_MAX + 1, "", "@x");
    check_err(s, JID_ERR_LOCAL_TOO_LONG);
    free(s);

    /* resourcepart */
    s = repeat("R", 1023, "a@b/", "");
    check_ok(s, s);
    free(s);
    s = repeat("R", 1024, "a@b/", "");
    check_err(s, JID_ERR_RESOURCE_TOO_LONG);
    free(s);
    /* U+FDFA: 3 bytes in, 33 bytes after NFKC */
    s = repeat("\xEF\xB7\xBA", 31, "a@b/", "");
    assert_int_equal(jid_parse_cstr(&j, s), JID_OK);
    assert_int_equal(j.resource_len, 1023);
    jid_free(&j);
    free(s);
    s = repeat("\xEF\xB7\xBA", 32, "a@b/", "");
    check_err(s, JID_ERR_RESOURCE_TOO_LONG);
    free(s);
    s = repeat("é", 512, "a@b/", "");
    check_err(s, JID_ERR_RESOURCE_TOO_LONG);
    free(s);
    s = repeat("é", 511, "a@b/", "x");
    check_ok(s, s);
    free(s);

    /* domainpart: 16 labels of 63 octets and 15 dots are 1023 bytes */
    char label[64];
    memset(label, 'd', 63);
    label[63] = '\0';
    char dom[1100] = "";
    for (int i = 0; i < 16; i++) {
        if (i)
            strcat(dom, ".");
        strcat(dom, label);
    }
    assert_int_equal(strlen(dom), 1023);
    check_ok(dom, dom);
    char *with_dot = repeat("", 0, dom, ".");
    check_ok(with_dot, dom); /* the stripped dot does not count */
    free(with_dot);
    /* 15 × 63 + 62 + ".a": 1024 bytes */
    dom[strlen(dom) - 1] = '\0';
    strcat(dom, ".a");
    assert_int_equal(strlen(dom), 1024);
    check_err(dom, JID_ERR_DOMAIN_TOO_LONG);

    /* all three at their maximum: 3071 bytes */
    dom[strlen(dom) - 2] = '\0'; /* back to 1022 bytes ... */
    strcat(dom, "x");            /* ... and 1023 */
    assert_int_equal(strlen(dom), 1023);
    char *full = malloc(JID_FULL_MAX + 1);
    assert_non_null(full);
    memset(full, 'l', 1023);
    full[1023] = '@';
    memcpy(full + 1024, dom, 1023);
    full[2047] = '/';
    memset(full + 2048, 'r', 1023);
    full[JID_FULL_MAX] = '\0';
    assert_int_equal(jid_parse_cstr(&j, full), JID_OK);
    assert_int_equal(j.full_len, JID_FULL_MAX);
    assert_string_equal(j.full, full);
    jid_free(&j);
    free(full);
}

/* ------------------------------------------------------------------ */
/* comparison, construction, ownership                                */

static void test_compare(void **state)
{
    (void)state;
    jid_t a = JID_INIT, b = JID_INIT, c = JID_INIT, d = JID_INIT, e = JID_INIT, z = JID_INIT,
          z2 = JID_INIT;
    assert_int_equal(jid_parse_cstr(&a, "Foo@Example.com/Res"), JID_OK);
    assert_int_equal(jid_parse_cstr(&b, "foo@EXAMPLE.COM./Res"), JID_OK);
    assert_int_equal(jid_parse_cstr(&c, "foo@example.com/res"), JID_OK);
    assert_int_equal(jid_parse_cstr(&d, "foo@example.com"), JID_OK);
    assert_int_equal(jid_parse_cstr(&e, "example.com"), JID_OK);
    assert_true(jid_equal_full(&a, &b));
    assert_true(jid_equal_bare(&a, &b));
    /* resources keep case: distinct occupants (issue 6's lookalikes) */
    assert_false(jid_equal_full(&a, &c));
    assert_true(jid_equal_bare(&a, &c));
    assert_false(jid_equal_full(&a, &d));
    assert_true(jid_equal_bare(&a, &d));
    assert_true(jid_equal_full(&d, &d));
    assert_false(jid_equal_bare(&d, &e));
    assert_false(jid_is_bare(&a));
    assert_true(jid_is_bare(&d));
    assert_true(jid_equal_full(&z, &z2));
    assert_false(jid_equal_bare(&z, &d));
    assert_false(jid_equal_full(&d, &z));
    jid_free(&a);
    jid_free(&b);
    jid_free(&c);
    jid_free(&d);
    jid_free(&e);

    /* Unicode equivalents compare equal after preparation */
    static const char *const same[][2] = {
        {"ΣΑΣ@example.com", "σας@example.com"},
        {"Straße@example.com", "STRASSE@example.com"},
        {"ＡＢＣ@ｅｘａｍｐｌｅ．ｃｏｍ", "abc@example.com"},
        {"ПРИВЕТ@пример.рф", "привет@ПРИМЕР.РФ"},
        {"a@[::1]", "a@[0::1]"},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        assert_int_equal(jid_parse_cstr(&a, same[i][0]), JID_OK);
        assert_int_equal(jid_parse_cstr(&b, same[i][1]), JID_OK);
        assert_true(jid_equal_full(&a, &b));
        jid_free(&a);
        jid_free(&b);
    }
}

static void test_parts_copy_bare(void **state)
{
    (void)state;
    jid_t a = JID_INIT, b = JID_INIT, c = JID_INIT;
    assert_int_equal(jid_from_parts(&a, "Alice", "Example.com.", "Home"), JID_OK);
    assert_string_equal(a.full, "alice@example.com/Home");
    assert_string_equal(a.bare, "alice@example.com");
    assert_string_equal(a.local, "alice");
    assert_string_equal(a.domain, "example.com");
    assert_string_equal(a.resource, "Home");
    assert_int_equal(a.local_len, 5);
    assert_int_equal(a.domain_len, 11);
    assert_int_equal(a.resource_len, 4);
    assert_int_equal(jid_parse_cstr(&b, "alice@example.com/Home"), JID_OK);
    assert_true(jid_equal_full(&a, &b));
    jid_free(&b);

    assert_int_equal(jid_copy(&b, &a), JID_OK);
    jid_free(&a); /* the copy is independent */
    assert_string_equal(b.full, "alice@example.com/Home");
    assert_int_equal(jid_to_bare(&c, &b), JID_OK);
    assert_string_equal(c.full, "alice@example.com");
    assert_null(c.resource);
    assert_true(jid_equal_bare(&b, &c));
    jid_free(&b);
    jid_free(&c);
    jid_free(&c); /* idempotent */

    assert_int_equal(jid_from_parts(&a, NULL, "x", "r/s@t"), JID_OK);
    assert_string_equal(a.full, "x/r/s@t");
    assert_null(a.local);
    jid_free(&a);
    assert_int_equal(jid_from_parts(&a, "", "x", NULL), JID_ERR_LOCAL_EMPTY);
    assert_int_equal(jid_from_parts(&a, NULL, "x", ""), JID_ERR_RESOURCE_EMPTY);
    assert_int_equal(jid_from_parts(&a, NULL, "", NULL), JID_ERR_DOMAIN_EMPTY);
    assert_int_equal(jid_from_parts(&a, NULL, NULL, NULL), JID_ERR_DOMAIN_EMPTY);
    assert_int_equal(jid_from_parts(&a, NULL, "a@b", NULL), JID_ERR_DOMAIN_LABEL_CHARS);
    assert_int_equal(jid_from_parts(&a, NULL, "x/y", NULL), JID_ERR_DOMAIN_LABEL_CHARS);
    assert_int_equal(jid_from_parts(&a, "\xC3", "x", NULL), JID_ERR_UTF8);
    assert_null(a.buf);

    /* copies of "no JID" are "no JID" */
    jid_t z = JID_INIT;
    assert_int_equal(jid_copy(&a, &z), JID_OK);
    assert_null(a.buf);
    assert_int_equal(jid_to_bare(&a, &z), JID_OK);
    assert_null(a.buf);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int i = 0; i < JID_ERR_COUNT_; i++) {
        const char *s = jid_strerror((jid_err_t)i);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, "unknown JID error");
        for (int k = 0; k < i; k++)
            assert_string_not_equal(s, jid_strerror((jid_err_t)k));
    }
    assert_string_equal(jid_strerror((jid_err_t)9999), "unknown JID error");
}

/* ------------------------------------------------------------------ */
/* the ASCII fast path against libidn                                 */

/* libidn's verdict on one part: 1 and the prepared text, or 0. */
static int libidn_prep(const char *in, const Stringprep_profile *profile, int flags, char *out)
{
    strcpy(out, in);
    return stringprep(out, 1024, (Stringprep_profile_flags)flags, profile) == STRINGPREP_OK;
}

static void cross_check_ascii(const char *s)
{
    char want[1024];
    jid_t j = JID_INIT;

    /* localpart vs nodeprep */
    int ok = libidn_prep(s, stringprep_xmpp_nodeprep, STRINGPREP_NO_UNASSIGNED, want);
    jid_err_t err = jid_from_parts(&j, s, "x", NULL);
    if (ok != (err == JID_OK) || (ok && strcmp(j.local, want) != 0))
        fail_msg("local '%s': libidn %d '%s', jid %s", s, ok, ok ? want : "",
                 jid_strerror(err));
    jid_free(&j);

    /* resourcepart vs resourceprep */
    ok = libidn_prep(s, stringprep_xmpp_resourceprep, 0, want);
    err = jid_from_parts(&j, NULL, "x", s);
    if (ok != (err == JID_OK) || (ok && strcmp(j.resource, want) != 0))
        fail_msg("resource '%s': libidn %d, jid %s", s, ok, jid_strerror(err));
    jid_free(&j);

    /* one domain label vs ToASCII with UseSTD3ASCIIRules; a '.' or a
     * purely numeric label is outside this comparison (label split,
     * all-numeric rule) */
    if (strchr(s, '.') || strspn(s, "0123456789") == strlen(s))
        return;
    char dom[64 + 8];
    snprintf(dom, sizeof dom, "%s.test", s);
    char *ace = NULL;
    ok = idna_to_ascii_8z(dom, &ace, IDNA_USE_STD3_ASCII_RULES) == IDNA_SUCCESS;
    if (ok)
        ascii_lower_str(ace); /* ToASCII leaves ASCII labels' case alone */
    err = jid_from_parts(&j, NULL, dom, NULL);
    if (ok != (err == JID_OK) || (ok && strcmp(j.domain, ace) != 0))
        fail_msg("domain '%s': libidn %d, jid %s", dom, ok, jid_strerror(err));
    jid_free(&j);
    free(ace);
}

static void test_ascii_fast_path_matches_libidn(void **state)
{
    (void)state;
    char s[16];
    for (int c = 1; c < 128; c++) {
        snprintf(s, sizeof s, "x%cy", c);
        cross_check_ascii(s);
        snprintf(s, sizeof s, "%c", c);
        cross_check_ascii(s);
        snprintf(s, sizeof s, "%cA", c);
        cross_check_ascii(s);
    }
    for (int n = 0; n < 3000; n++) {
        size_t len = 1 + rnd(12);
        for (size_t i = 0; i < len; i++)
            s[i] = (char)(1 + rnd(127));
        s[len] = '\0';
        cross_check_ascii(s);
    }
}

/* ------------------------------------------------------------------ */
/* XEP-0106                                                           */

/* XEP-0106 §5.1 "JID Examples": user input and escaped localpart (domain
 * @example.com dropped). `ours` is set where our escaping differs from
 * the table: rows 9-11 escape a backslash that is not followed by an
 * escape code, which §4.3 says MUST NOT happen ("foo\bar is not
 * modified"); the XEP contradicts itself and we follow the normative
 * rules. Unescaping either form gives the user input back. */
static const struct {
    const char *user, *table, *ours;
} xep_examples[] = {
    {"space cadet", "space\\20cadet", NULL},
    {"call me \"ishmael\"", "call\\20me\\20\\22ishmael\\22", NULL},
    {"at&t guy", "at\\26t\\20guy", NULL},
    {"d'artagnan", "d\\27artagnan", NULL},
    {"/.fanboy", "\\2f.fanboy", NULL},
    {"::foo::", "\\3a\\3afoo\\3a\\3a", NULL},
    {"<foo>", "\\3cfoo\\3e", NULL},
    {"user@host", "user\\40host", NULL},
    {"c:\\net", "c\\3a\\5cnet", "c\\3a\\net"},
    {"c:\\\\net", "c\\3a\\5c\\5cnet", "c\\3a\\\\net"},
    {"c:\\cool stuff", "c\\3a\\5ccool\\20stuff", "c\\3a\\cool\\20stuff"},
    {"c:\\5commas", "c\\3a\\5c5commas", NULL},
};

static void test_xep0106_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof xep_examples / sizeof xep_examples[0]; i++) {
        const char *want = xep_examples[i].ours ? xep_examples[i].ours : xep_examples[i].table;
        char *e, *u, *u2;
        assert_int_equal(esc(xep_examples[i].user, &e), JID_OK);
        if (strcmp(e, want) != 0)
            fail_msg("row %zu: escape('%s') = '%s', want '%s'", i + 1, xep_examples[i].user,
                     e, want);
        /* unescape: the table's form and ours */
        assert_int_equal(unesc(xep_examples[i].table, &u), JID_OK);
        assert_string_equal(u, xep_examples[i].user);
        assert_int_equal(unesc(e, &u2), JID_OK);
        assert_string_equal(u2, xep_examples[i].user);
        /* both are valid localparts, unchanged by nodeprep */
        jid_t j = JID_INIT;
        assert_int_equal(jid_from_parts(&j, e, "example.com", NULL), JID_OK);
        assert_string_equal(j.local, e);
        jid_free(&j);
        assert_int_equal(jid_from_parts(&j, xep_examples[i].table, "example.com", NULL), JID_OK);
        assert_string_equal(j.local, xep_examples[i].table);
        jid_free(&j);
        free(e);
        free(u);
        free(u2);
    }
}

static void check_escape(const char *in, const char *want)
{
    char *e, *u;
    assert_int_equal(esc(in, &e), JID_OK);
    if (strcmp(e, want) != 0)
        fail_msg("escape('%s') = '%s', want '%s'", in, e, want);
    assert_int_equal(unesc(e, &u), JID_OK);
    assert_string_equal(u, in);
    free(e);
    free(u);
}

static void check_unescape(const char *in, const char *want)
{
    char *u;
    assert_int_equal(unesc(in, &u), JID_OK);
    if (strcmp(u, want) != 0)
        fail_msg("unescape('%s') = '%s', want '%s'", in, u, want);
    free(u);
}

static void test_xep0106_rules(void **state)
{
    (void)state;
    /* §4.3: partial sequences and sequences for other characters are not
     * modified by escaping or unescaping */
    static const char *const untouched[] = {"\\2plus\\2is\\4", "foo\\bar", "foob\\41r",
                                            "\\", "a\\", "\\5", "%", "\\zz", "\\2"};
    for (size_t i = 0; i < sizeof untouched / sizeof untouched[0]; i++) {
        check_escape(untouched[i], untouched[i]);
        check_unescape(untouched[i], untouched[i]);
    }
}

static void test_xep0106_more(void **state)
{
    (void)state;
    /* §4.2 step 3 and §5.6 (IMPS): backslashes before escape codes */
    check_escape("\\3and\\2is\\5cool", "\\5c3and\\2is\\5c5cool");
    check_escape("here's_a_wild_&_/cr%zy/_address", "here\\27s_a_wild_\\26_\\2fcr%zy\\2f_address");
    check_escape("here's_a_wild_&_/cr%zy/_address_for:<wv>(\"IMPS\")",
                 "here\\27s_a_wild_\\26_\\2fcr%zy\\2f_address_for\\3a\\3cwv\\3e(\\22IMPS\\22)");
    check_escape("", "");
    check_escape("a b", "a\\20b");
    check_escape("\\20", "\\5c20");
    check_escape("\\5c", "\\5c5c");
    /* case-insensitive backslash rule: nodeprep folds "\2F" to "\2f" */
    check_escape("\\2F", "\\5c2F");
    check_escape("\\5C", "\\5c5C");
    check_escape("ü@ü", "ü\\40ü");

    /* unescaping: only the ten exact lower-case codes */
    check_unescape("\\2F", "\\2F");
    check_unescape("\\5C", "\\5C");
    check_unescape("\\41", "\\41");
    check_unescape("\\5c\\5c", "\\\\");
    check_unescape("\\5c27", "\\27"); /* no rescanning */
    check_unescape("\\\\27", "\\'");
    /* §4.1 rule 6: \20 at either end is no escape */
    check_unescape("\\20abc", "\\20abc");
    check_unescape("abc\\20", "abc\\20");
    check_unescape("\\20", "\\20");
    check_unescape("a\\20b", "a b");
    check_unescape("a\\20\\20b", "a  b");
    /* what the JID carries after nodeprep's case folding still unescapes
     * to the (folded) input */
    check_unescape("\\5c2f", "\\2f");

    /* errors */
    char *e;
    assert_int_equal(esc(" a", &e), JID_ERR_ESCAPE_SPACE);
    free(e);
    assert_int_equal(esc("a ", &e), JID_ERR_ESCAPE_SPACE);
    free(e);
    assert_int_equal(esc(" ", &e), JID_ERR_ESCAPE_SPACE);
    free(e);
    assert_int_equal(esc("\xC3", &e), JID_ERR_UTF8);
    free(e);
    assert_int_equal(unesc("a\xED\xA0\x80", &e), JID_ERR_UTF8);
    free(e);
    char out[8];
    assert_int_equal(jid_escape_local("a\0b", 3, out, sizeof out, NULL), JID_ERR_NUL);
    assert_int_equal(jid_unescape_local("a\0b", 3, out, sizeof out, NULL), JID_ERR_NUL);
    /* buffers: "a b" needs 5 + 1 */
    assert_int_equal(jid_escape_local("a b", 3, out, 5, NULL), JID_ERR_BUFFER);
    assert_int_equal(jid_escape_local("a b", 3, out, 6, NULL), JID_OK);
    assert_string_equal(out, "a\\20b");
    assert_int_equal(jid_escape_local("ab", 2, out, 2, NULL), JID_ERR_BUFFER);
    assert_int_equal(jid_escape_local("", 0, out, 0, NULL), JID_ERR_BUFFER);
    assert_int_equal(jid_unescape_local("ab", 2, out, 2, NULL), JID_ERR_BUFFER);
    assert_int_equal(jid_unescape_local("ab", 2, out, 3, NULL), JID_OK);
}

/* Pieces for generated unescaped strings: every escaped character,
 * backslashes with hex digits in both cases, and multi-byte UTF-8. */
static const char *const raw_pieces[] = {
    " ", "\"", "&", "'", "/", ":", "<", ">", "@", "\\", "\\", "\\", "2", "0", "5",
    "c", "C", "f", "F", "3", "a", "A", "e", "E", "4", "7", "6", "x", "é", "中", "\\20", "\\5c",
    "\\2f", "\\5C", "\\2F", "\\3a", "\\40",
};
/* Pieces for generated escaped strings. */
static const char *const esc_pieces[] = {
    "\\20", "\\22", "\\26", "\\27", "\\2f", "\\3a", "\\3c", "\\3e", "\\40", "\\5c", "\\",
    "\\2F", "\\5C", "2", "0", "5", "c", "f", "a", "x", "é", "中",
};

static void test_escape_properties(void **state)
{
    (void)state;
    char x[256], lx[256], buf[JID_ESCAPE_BOUND(256)], ubuf[JID_ESCAPE_BOUND(256)],
        ebuf[JID_ESCAPE_BOUND(256)];
    size_t n_ok = 0, n_space = 0;
    for (int it = 0; it < 20000; it++) {
        gen(x, sizeof x, raw_pieces, sizeof raw_pieces / sizeof raw_pieces[0], 24);
        size_t xl = strlen(x), el, ul;
        jid_err_t err = jid_escape_local(x, xl, buf, sizeof buf, &el);
        if (xl > 0 && (x[0] == ' ' || x[xl - 1] == ' ')) {
            assert_int_equal(err, JID_ERR_ESCAPE_SPACE);
            n_space++;
            continue;
        }
        assert_int_equal(err, JID_OK);
        n_ok++;
        /* unescape(escape(x)) == x */
        assert_int_equal(jid_unescape_local(buf, el, ubuf, sizeof ubuf, &ul), JID_OK);
        if (ul != xl || memcmp(ubuf, x, xl) != 0)
            fail_msg("unescape(escape('%s')) = '%s' via '%s'", x, ubuf, buf);
        /* escape(unescape(e)) == e for e in escaped form */
        assert_int_equal(jid_escape_local(ubuf, ul, ebuf, sizeof ebuf, NULL), JID_OK);
        if (strcmp(ebuf, buf) != 0)
            fail_msg("escape(unescape('%s')) = '%s'", buf, ebuf);
        /* the escaped form has none of the nine disallowed characters and
         * does not begin or end with \20 */
        assert_null(strpbrk(buf, " \"&'/:<>@"));
        assert_false(strncmp(buf, "\\20", 3) == 0);
        assert_false(el >= 3 && strcmp(buf + el - 3, "\\20") == 0);
        /* ... and is a valid localpart (when non-empty); nodeprep's case
         * folding commutes with unescaping for ASCII input */
        if (xl > 0) {
            jid_t j = JID_INIT;
            assert_int_equal(jid_from_parts(&j, buf, "example.com", NULL), JID_OK);
            if (is_ascii_str(x)) {
                strcpy(lx, x);
                ascii_lower_str(lx);
                assert_int_equal(
                    jid_unescape_local(j.local, j.local_len, ubuf, sizeof ubuf, &ul), JID_OK);
                if (strcmp(ubuf, lx) != 0)
                    fail_msg("unescape(nodeprep(escape('%s'))) = '%s'", x, ubuf);
            }
            jid_free(&j);
        }
    }
    assert_true(n_ok > 10000 && n_space > 100);

    /* arbitrary escaped-looking strings: unescaping never fails or grows,
     * and escaping its result is a fixed point of escape∘unescape */
    size_t canonical = 0;
    for (int it = 0; it < 20000; it++) {
        gen(x, sizeof x, esc_pieces, sizeof esc_pieces / sizeof esc_pieces[0], 16);
        size_t xl = strlen(x), ul, el;
        assert_int_equal(jid_unescape_local(x, xl, ubuf, sizeof ubuf, &ul), JID_OK);
        assert_true(ul <= xl);
        jid_err_t err = jid_escape_local(ubuf, ul, ebuf, sizeof ebuf, &el);
        assert_int_equal(err, JID_OK); /* \20 at the ends is never decoded */
        if (el == xl && memcmp(ebuf, x, xl) == 0)
            canonical++;
        char u2[sizeof ubuf], e2[sizeof ebuf];
        size_t u2l;
        assert_int_equal(jid_unescape_local(ebuf, el, u2, sizeof u2, &u2l), JID_OK);
        assert_true(u2l == ul && memcmp(u2, ubuf, ul) == 0);
        assert_int_equal(jid_escape_local(u2, u2l, e2, sizeof e2, NULL), JID_OK);
        assert_string_equal(e2, ebuf);
    }
    assert_true(canonical > 1000);
}

/* Random JIDs: whatever parses is a fixed point of normalisation. */
static void test_jid_properties(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "a", "B", "z", "0", "-", ".", ".", "@", "@", "/", "/", " ", "_", "ß", "Σ", "ς", "Ａ",
        "．", "。", "中", "é", "e\xCC\x81", "\xC2\xAD", "İ", "xn--", "[", "]", ":", "1",
        "\\20", "\xD7\x90", "😀", "ﬁ",
    };
    char s[256];
    size_t parsed = 0;
    for (int it = 0; it < 20000; it++) {
        gen(s, sizeof s, pieces, sizeof pieces / sizeof pieces[0], 12);
        jid_t j = JID_INIT, k = JID_INIT;
        if (jid_parse_cstr(&j, s) != JID_OK)
            continue;
        parsed++;
        assert_int_equal(jid_parse(&k, j.full, j.full_len), JID_OK);
        if (strcmp(k.full, j.full) != 0)
            fail_msg("'%s' -> '%s' -> '%s'", s, j.full, k.full);
        jid_free(&k);
        assert_int_equal(jid_from_parts(&k, j.local, j.domain, j.resource), JID_OK);
        assert_true(jid_equal_full(&j, &k));
        jid_free(&k);
        assert_int_equal(jid_parse(&k, j.bare, j.bare_len), JID_OK);
        assert_true(jid_equal_bare(&j, &k));
        jid_free(&k);
        jid_free(&j);
    }
    assert_true(parsed > 1000);
}

/* The domain alone, normalised, as the faces route by it. */
static void test_domain_cstr(void **state)
{
    (void)state;
    char d[64];
    assert_int_equal(jid_domain_cstr("Alice@Example.ORG/Res", d, sizeof d), 0);
    assert_string_equal(d, "example.org");
    assert_int_equal(jid_domain_cstr("example.net", d, sizeof d), 0);
    assert_string_equal(d, "example.net");
    assert_int_equal(jid_domain_cstr("@nodomain", d, sizeof d), -1);
    assert_int_equal(jid_domain_cstr(NULL, d, sizeof d), -1);
    assert_int_equal(jid_domain_cstr("a@example.org", d, 5), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii_forms),
        cmocka_unit_test(test_unicode_forms),
        cmocka_unit_test(test_ip_literals),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_local_prohibited),
        cmocka_unit_test(test_resource_prohibited),
        cmocka_unit_test(test_domain_errors),
        cmocka_unit_test(test_bidi_and_unassigned),
        cmocka_unit_test(test_utf8_and_nul),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_parts_copy_bare),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_ascii_fast_path_matches_libidn),
        cmocka_unit_test(test_xep0106_table),
        cmocka_unit_test(test_xep0106_rules),
        cmocka_unit_test(test_xep0106_more),
        cmocka_unit_test(test_escape_properties),
        cmocka_unit_test(test_jid_properties),
        cmocka_unit_test(test_domain_cstr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
