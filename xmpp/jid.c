/*
 * jid.c: JID parsing and normalisation (RFC 6122) and XEP-0106 escaping.
 *
 * Unicode work is libidn's (stringprep with the XMPP nodeprep/resourceprep
 * profiles and nameprep, IDNA2003 ToASCII for the label check); this file
 * does the splitting, the limits, the domain forms, the bookkeeping, and an
 * ASCII fast path. The fast path exists because every stanza carries two
 * JIDs and nearly all of them are ASCII: for ASCII input the three profiles
 * reduce to "lower-case and refuse a few bytes" (RFC 3454 tables B.2, C.1.1,
 * C.2.1 and the nodeprep extras), which tests/unit/test_jid.c checks
 * against libidn byte by byte.
 */
#include "xmpp/jid.h"

#include <arpa/inet.h>
#include <idna.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>

enum part { PART_LOCAL, PART_DOMAIN, PART_RESOURCE };

/* The error each failure maps to, per part. */
static const struct part_errs {
    jid_err_t empty, too_long, prohibited, unassigned, bidi;
} part_errs[3] = {
    [PART_LOCAL] = {JID_ERR_LOCAL_EMPTY, JID_ERR_LOCAL_TOO_LONG, JID_ERR_LOCAL_PROHIBITED,
                    JID_ERR_LOCAL_UNASSIGNED, JID_ERR_LOCAL_BIDI},
    [PART_DOMAIN] = {JID_ERR_DOMAIN_EMPTY, JID_ERR_DOMAIN_TOO_LONG, JID_ERR_DOMAIN_PROHIBITED,
                     JID_ERR_DOMAIN_UNASSIGNED, JID_ERR_DOMAIN_BIDI},
    /* The resource is prepared with AllowUnassigned (see prep_unicode), so
     * "unassigned" cannot happen there; if libidn ever said so it would be
     * a bug on one side, hence INTERNAL. */
    [PART_RESOURCE] = {JID_ERR_RESOURCE_EMPTY, JID_ERR_RESOURCE_TOO_LONG,
                       JID_ERR_RESOURCE_PROHIBITED, JID_ERR_INTERNAL, JID_ERR_RESOURCE_BIDI},
};

/* Scratch space for one parse, on the stack (about 7 KiB; the daemon is
 * one loop thread with a normal stack), so that parsing allocates nothing
 * but the result and libidn's own temporaries. */
typedef struct prep_ctx {
    char work[JID_INPUT_PART_MAX + 1];
    char local[JID_PART_MAX + 1];
    char domain[JID_PART_MAX + 1];
    char resource[JID_PART_MAX + 1];
    size_t local_len, domain_len, resource_len;
} prep_ctx;

/* ------------------------------------------------------------------ */
/* UTF-8                                                              */

/* Decodes the sequence at s[i]: its length, or 0 when it is not
 * well-formed UTF-8 per RFC 3629 (overlong forms, surrogates, code points
 * above U+10FFFF and truncated sequences are all refused). */
static size_t utf8_next(const unsigned char *s, size_t len, size_t i, uint32_t *cp)
{
    unsigned char c = s[i];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0; /* continuation byte, C0/C1 overlong lead, F5..FF */
    }
    if (len - i < n)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[i + k] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i + k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

/* JID_OK, JID_ERR_NUL or JID_ERR_UTF8 for s[0..len). */
static jid_err_t check_text(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (u[i] == 0)
            return JID_ERR_NUL;
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = utf8_next(u, len, i, &cp);
        if (n == 0)
            return JID_ERR_UTF8;
        i += n;
    }
    return JID_OK;
}

static int is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* stringprep through libidn                                          */

static jid_err_t map_stringprep_rc(int rc, enum part p)
{
    switch (rc) {
    case STRINGPREP_OK:
        return JID_OK;
    case STRINGPREP_TOO_SMALL_BUFFER:
        /* The buffer always has room for 1023 bytes (or the input, if
         * longer), so "too small" means the prepared part is too long. */
        return part_errs[p].too_long;
    case STRINGPREP_CONTAINS_UNASSIGNED:
        return part_errs[p].unassigned;
    case STRINGPREP_CONTAINS_PROHIBITED:
        return part_errs[p].prohibited;
    case STRINGPREP_BIDI_BOTH_L_AND_RAL:
    case STRINGPREP_BIDI_LEADTRAIL_NOT_RAL:
    case STRINGPREP_BIDI_CONTAINS_PROHIBITED:
        return part_errs[p].bidi;
    case STRINGPREP_ICONV_ERROR:
        return JID_ERR_UTF8;
    case STRINGPREP_MALLOC_ERROR:
        return JID_ERR_NOMEM;
    default:
        return JID_ERR_INTERNAL;
    }
}

/*
 * Prepares in[0..len) (non-ASCII, len <= JID_INPUT_PART_MAX, no NUL) with
 * the profile of part p into out (JID_PART_MAX + 1 bytes).
 *
 * libidn's stringprep() works in place on a NUL-terminated buffer and fails
 * with TOO_SMALL_BUFFER when the result does not fit; a buffer of
 * max(len + 1, 1024) bytes therefore turns the 1023-byte limit of RFC 6122
 * §2.1 into that error whenever the input itself fits in 1023 bytes.
 *
 * Flags: localpart and domainpart are identities, so they follow the
 * "stored strings" rule of RFC 3454 §7 (no unassigned code points; what
 * Unicode 3.2 did not know could gain a case mapping later). The resource
 * follows the "queries" rule: resources are not stored identities, and MUC
 * nicknames and client resources routinely carry emoji, which postdate
 * Unicode 3.2.
 *
 * Stringprep is meant to be idempotent; rather than trust that for every
 * odd input, the result is prepared once more and must come out unchanged
 * (else JID_ERR_UNSTABLE). This makes "normalising a normalised JID changes
 * nothing" hold by construction; it costs a second pass on non-ASCII parts
 * only.
 */
static jid_err_t prep_unicode(prep_ctx *ctx, enum part p, const char *in, size_t len, char *out,
                              size_t *out_len)
{
    const Stringprep_profile *profile;
    Stringprep_profile_flags flags = STRINGPREP_NO_UNASSIGNED;
    switch (p) {
    case PART_LOCAL:
        profile = stringprep_xmpp_nodeprep;
        break;
    case PART_DOMAIN:
        profile = stringprep_nameprep;
        break;
    default:
        profile = stringprep_xmpp_resourceprep;
        flags = (Stringprep_profile_flags)0;
        break;
    }

    size_t size = len + 1 > JID_PART_MAX + 1 ? len + 1 : JID_PART_MAX + 1;
    memcpy(ctx->work, in, len);
    ctx->work[len] = '\0';
    jid_err_t err = map_stringprep_rc(stringprep(ctx->work, size, flags, profile), p);
    if (err != JID_OK)
        return err;
    size_t n = strlen(ctx->work);
    if (n > JID_PART_MAX)
        return part_errs[p].too_long;
    memcpy(out, ctx->work, n + 1);

    /* Fixed-point check (see above). */
    memcpy(ctx->work, out, n + 1);
    if (stringprep(ctx->work, JID_PART_MAX + 1, flags, profile) != STRINGPREP_OK ||
        strcmp(ctx->work, out) != 0)
        return JID_ERR_UNSTABLE;
    *out_len = n;
    return JID_OK;
}

/* ASCII nodeprep (RFC 6122 App. A): B.2 maps A-Z to a-z; C.1.1 (space),
 * C.2.1 (controls, DEL) and the nodeprep extras " & ' / : < > @ are
 * prohibited. Nothing else in ASCII is mapped, prohibited or unassigned. */
static jid_err_t ascii_nodeprep(const char *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= 0x20 || c == 0x7F)
            return JID_ERR_LOCAL_PROHIBITED;
        switch (c) {
        case '"':
        case '&':
        case '\'':
        case '/':
        case ':':
        case '<':
        case '>':
        case '@':
            return JID_ERR_LOCAL_PROHIBITED;
        default:
            break;
        }
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    out[len] = '\0';
    return JID_OK;
}

/* ASCII resourceprep (RFC 6122 App. B): no case mapping; only C.2.1
 * (controls and DEL) is prohibited, so space, '@' and '/' are fine. */
static jid_err_t ascii_resourceprep(const char *in, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c == 0x7F)
            return JID_ERR_RESOURCE_PROHIBITED;
        out[i] = (char)c;
    }
    out[len] = '\0';
    return JID_OK;
}

/* Localpart or resourcepart: in[0..len) was checked for NUL and UTF-8. */
static jid_err_t prep_simple(prep_ctx *ctx, enum part p, const char *in, size_t len, char *out,
                             size_t *out_len)
{
    if (len == 0)
        return part_errs[p].empty;
    if (len > JID_INPUT_PART_MAX)
        return part_errs[p].too_long;
    if (is_ascii(in, len)) {
        if (len > JID_PART_MAX)
            return part_errs[p].too_long;
        jid_err_t err = p == PART_LOCAL ? ascii_nodeprep(in, len, out)
                                        : ascii_resourceprep(in, len, out);
        if (err == JID_OK)
            *out_len = len;
        return err;
    }
    jid_err_t err = prep_unicode(ctx, p, in, len, out, out_len);
    /* All of it may have been mapped to nothing (B.1: soft hyphen, ZWJ,
     * variation selectors...): an empty part is not a part. */
    if (err == JID_OK && *out_len == 0)
        return part_errs[p].empty;
    return err;
}

/* ------------------------------------------------------------------ */
/* Domainpart (RFC 6122 §2.2)                                         */

/* IDNA2003 (RFC 3490 §3.1 req. 1) label separators other than '.', as
 * UTF-8: U+3002 IDEOGRAPHIC FULL STOP, U+FF0E FULLWIDTH FULL STOP, U+FF61
 * HALFWIDTH IDEOGRAPHIC FULL STOP. Returns 1 when s[0..2] is one. */
static int is_wide_dot(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    return (u[0] == 0xE3 && u[1] == 0x80 && u[2] == 0x82) ||
           (u[0] == 0xEF && u[1] == 0xBC && u[2] == 0x8E) ||
           (u[0] == 0xEF && u[1] == 0xBD && u[2] == 0xA1);
}

/* Length of the label separator at in[i] (1 or 3), or 0. */
static size_t dot_at(const char *in, size_t len, size_t i)
{
    if (in[i] == '.')
        return 1;
    if (len - i >= 3 && is_wide_dot(in + i))
        return 3;
    return 0;
}

/* "[IPv6]" (RFC 3986 IP-literal without IPvFuture), normalised to the
 * inet_ntop form (lower-case hex, longest zero run compressed), so that
 * [0:0::1] and [::1] are one address. */
static jid_err_t prep_ipv6(prep_ctx *ctx, const char *in, size_t len)
{
    char tmp[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;
    if (len < 3 || in[len - 1] != ']' || len - 2 > INET6_ADDRSTRLEN)
        return JID_ERR_DOMAIN_IP;
    memcpy(tmp, in + 1, len - 2);
    tmp[len - 2] = '\0';
    if (inet_pton(AF_INET6, tmp, &a) != 1)
        return JID_ERR_DOMAIN_IP;
    if (!inet_ntop(AF_INET6, &a, tmp, sizeof tmp))
        return JID_ERR_INTERNAL;
    size_t n = strlen(tmp);
    ctx->domain[0] = '[';
    memcpy(ctx->domain + 1, tmp, n);
    ctx->domain[n + 1] = ']';
    ctx->domain[n + 2] = '\0';
    ctx->domain_len = n + 2;
    return JID_OK;
}

/* STD3 host name rules for an ASCII label (RFC 3490 §4.1 step 3, which
 * RFC 6122 §2.2 requires): letters, digits, hyphen; no leading or trailing
 * hyphen; 1..63 octets. Appends the lower-cased label to ctx->domain. */
static jid_err_t ascii_label(prep_ctx *ctx, const char *in, size_t len)
{
    if (len > 63)
        return JID_ERR_DOMAIN_LABEL_TOO_LONG;
    if (in[0] == '-' || in[len - 1] == '-')
        return JID_ERR_DOMAIN_LABEL_CHARS;
    if (ctx->domain_len + len > JID_PART_MAX)
        return JID_ERR_DOMAIN_TOO_LONG;
    char *o = ctx->domain + ctx->domain_len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + ('a' - 'A'));
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return JID_ERR_DOMAIN_LABEL_CHARS;
        o[i] = (char)c;
    }
    ctx->domain_len += len;
    return JID_OK;
}

/* A label with non-ASCII characters: nameprep it, then check that IDNA2003
 * ToASCII with UseSTD3ASCIIRules succeeds on it (RFC 6122 §2.2), which
 * also bounds the label to 63 octets in its ACE form. The nameprep'd
 * Unicode form (not the ACE form) is what the JID keeps, as RFC 6122 asks
 * for comparison (errata 2801: nameprep, then compare bytes). */
static jid_err_t unicode_label(prep_ctx *ctx, const char *in, size_t len)
{
    char label[JID_PART_MAX + 1];
    size_t n;
    jid_err_t err = prep_unicode(ctx, PART_DOMAIN, in, len, label, &n);
    if (err != JID_OK)
        return err;
    if (n == 0)
        return JID_ERR_DOMAIN_LABEL_EMPTY; /* all of it mapped to nothing */

    /* ToASCII output is at least as long as the label in code points, so
     * more than 63 code points can never fit; this bounds the array. */
    uint32_t ucs4[64];
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        if (count == 63)
            return JID_ERR_DOMAIN_LABEL_TOO_LONG;
        size_t k = utf8_next((const unsigned char *)label, n, i, &ucs4[count]);
        if (k == 0)
            return JID_ERR_INTERNAL; /* libidn wrote invalid UTF-8 */
        i += k;
        count++;
    }
    char ace[64]; /* idna_to_ascii_4i writes at most 63 octets + NUL */
    switch (idna_to_ascii_4i(ucs4, count, ace, IDNA_USE_STD3_ASCII_RULES)) {
    case IDNA_SUCCESS:
        break;
    case IDNA_CONTAINS_NON_LDH:
    case IDNA_CONTAINS_MINUS:
    case IDNA_CONTAINS_ACE_PREFIX: /* "xn--" + non-ASCII is no valid label */
        return JID_ERR_DOMAIN_LABEL_CHARS;
    case IDNA_INVALID_LENGTH:
    case IDNA_PUNYCODE_ERROR: /* punycode output would exceed 59 octets */
        return JID_ERR_DOMAIN_LABEL_TOO_LONG;
    case IDNA_STRINGPREP_ERROR:
        return JID_ERR_DOMAIN_PROHIBITED;
    case IDNA_MALLOC_ERROR:
        return JID_ERR_NOMEM;
    default:
        return JID_ERR_INTERNAL;
    }
    if (ctx->domain_len + n > JID_PART_MAX)
        return JID_ERR_DOMAIN_TOO_LONG;
    memcpy(ctx->domain + ctx->domain_len, label, n);
    ctx->domain_len += n;
    return JID_OK;
}

/* A domain made only of digits and dots is meant as an IPv4 address
 * (RFC 1123 §2.1: a host name's top label is never all-numeric), so it
 * must be a valid dotted quad; "1.2.3" or "999.1.1.1" are refused rather
 * than treated as host names. The check runs on the normalised form so
 * that "１.２.３.４" and "1。2。3。4" end up exactly where "1.2.3.4" does. */
static jid_err_t check_numeric(const prep_ctx *ctx)
{
    for (size_t i = 0; i < ctx->domain_len; i++) {
        char c = ctx->domain[i];
        if (c != '.' && (c < '0' || c > '9'))
            return JID_OK;
    }
    struct in_addr a;
    char tmp[INET_ADDRSTRLEN];
    if (ctx->domain_len >= sizeof tmp)
        return JID_ERR_DOMAIN_IP;
    memcpy(tmp, ctx->domain, ctx->domain_len);
    tmp[ctx->domain_len] = '\0';
    /* glibc's inet_pton takes exactly four decimal octets, no leading
     * zeros, so the accepted text is already canonical. */
    if (inet_pton(AF_INET, tmp, &a) != 1)
        return JID_ERR_DOMAIN_IP;
    return JID_OK;
}

static jid_err_t prep_domain(prep_ctx *ctx, const char *in, size_t len)
{
    ctx->domain_len = 0;
    /* RFC 6122 §2.2: a final label separator is stripped (one; "a.." keeps
     * an empty label and fails below). */
    if (len >= 1 && in[len - 1] == '.')
        len -= 1;
    else if (len >= 3 && is_wide_dot(in + len - 3))
        len -= 3;
    if (len == 0)
        return JID_ERR_DOMAIN_EMPTY;
    if (len > JID_INPUT_PART_MAX)
        return JID_ERR_DOMAIN_TOO_LONG;
    if (in[0] == '[')
        return prep_ipv6(ctx, in, len);

    size_t i = 0;
    for (;;) {
        size_t start = i, dl = 0;
        while (i < len && (dl = dot_at(in, len, i)) == 0)
            i++;
        size_t llen = i - start;
        if (llen == 0)
            return JID_ERR_DOMAIN_LABEL_EMPTY;
        if (ctx->domain_len > 0) {
            if (ctx->domain_len + 1 > JID_PART_MAX)
                return JID_ERR_DOMAIN_TOO_LONG;
            ctx->domain[ctx->domain_len++] = '.';
        }
        jid_err_t err = is_ascii(in + start, llen) ? ascii_label(ctx, in + start, llen)
                                                  : unicode_label(ctx, in + start, llen);
        if (err != JID_OK)
            return err;
        if (i == len)
            break;
        i += dl; /* a separator followed by the end is an empty last label */
        if (i == len)
            return JID_ERR_DOMAIN_LABEL_EMPTY;
    }
    ctx->domain[ctx->domain_len] = '\0';
    return check_numeric(ctx);
}

/* ------------------------------------------------------------------ */
/* jid_t                                                              */

/* Builds *out from prepared parts (local/resource NULL when absent). */
static jid_err_t assemble(jid_t *out, const char *l, size_t ll, const char *d, size_t dl,
                          const char *r, size_t rl)
{
    size_t bare_len = (l ? ll + 1 : 0) + dl;
    size_t full_len = bare_len + (r ? rl + 1 : 0);
    size_t size = (full_len + 1) + (bare_len + 1) + (l ? ll + 1 : 0) + (dl + 1) + (r ? rl + 1 : 0);
    char *buf = malloc(size);
    if (!buf)
        return JID_ERR_NOMEM;
    char *p = buf;

    jid_t j = JID_INIT;
    j.buf = buf;
    j.buf_size = size;

    /* full */
    j.full = p;
    if (l) {
        memcpy(p, l, ll);
        p += ll;
        *p++ = '@';
    }
    memcpy(p, d, dl);
    p += dl;
    if (r) {
        *p++ = '/';
        memcpy(p, r, rl);
        p += rl;
    }
    *p++ = '\0';
    j.full_len = full_len;

    /* bare: a prefix of full */
    j.bare = p;
    memcpy(p, j.full, bare_len);
    p += bare_len;
    *p++ = '\0';
    j.bare_len = bare_len;

    if (l) {
        j.local = p;
        memcpy(p, l, ll);
        p += ll;
        *p++ = '\0';
        j.local_len = ll;
    }
    j.domain = p;
    memcpy(p, d, dl);
    p += dl;
    *p++ = '\0';
    j.domain_len = dl;
    if (r) {
        j.resource = p;
        memcpy(p, r, rl);
        p += rl;
        *p++ = '\0';
        j.resource_len = rl;
    }
    *out = j;
    return JID_OK;
}

/* Prepares the three raw parts (local/resource NULL when absent). */
static jid_err_t prep_parts(jid_t *out, const char *l, size_t ll, const char *d, size_t dl,
                            const char *r, size_t rl)
{
    prep_ctx c, *ctx = &c;
    jid_err_t err = JID_OK;
    if (l)
        err = prep_simple(ctx, PART_LOCAL, l, ll, ctx->local, &ctx->local_len);
    if (err == JID_OK)
        err = prep_domain(ctx, d, dl);
    if (err == JID_OK && r)
        err = prep_simple(ctx, PART_RESOURCE, r, rl, ctx->resource, &ctx->resource_len);
    if (err == JID_OK)
        err = assemble(out, l ? ctx->local : NULL, l ? ctx->local_len : 0, ctx->domain,
                       ctx->domain_len, r ? ctx->resource : NULL, r ? ctx->resource_len : 0);
    return err;
}

jid_err_t jid_parse(jid_t *out, const char *s, size_t len)
{
    *out = (jid_t)JID_INIT;
    if (len == 0)
        return JID_ERR_EMPTY;
    jid_err_t err = check_text(s, len);
    if (err != JID_OK)
        return err;

    /* RFC 6122 §2.1: split on the separators before any preparation (so
     * that e.g. U+FE6B SMALL COMMERCIAL AT, which NFKC turns into '@',
     * cannot move a boundary). The first '/' starts the resource, which
     * may itself contain '@' and '/'; the first '@' before it ends the
     * localpart. */
    const char *slash = memchr(s, '/', len);
    size_t head = slash ? (size_t)(slash - s) : len;
    const char *at = memchr(s, '@', head);

    const char *l = NULL, *r = NULL;
    size_t ll = 0, rl = 0;
    const char *d = s;
    size_t dl = head;
    if (at) {
        l = s;
        ll = (size_t)(at - s);
        d = at + 1;
        dl = head - ll - 1;
        if (ll == 0)
            return JID_ERR_LOCAL_EMPTY;
    }
    if (dl == 0)
        return JID_ERR_DOMAIN_EMPTY;
    if (slash) {
        r = slash + 1;
        rl = len - head - 1;
        if (rl == 0)
            return JID_ERR_RESOURCE_EMPTY;
    }
    return prep_parts(out, l, ll, d, dl, r, rl);
}

jid_err_t jid_parse_cstr(jid_t *out, const char *s)
{
    return jid_parse(out, s, strlen(s));
}

int jid_domain_cstr(const char *s, char *out, size_t size)
{
    jid_t j = JID_INIT;
    if (!s || jid_parse_cstr(&j, s) != JID_OK)
        return -1;
    int ok = j.domain_len < size;
    if (ok)
        memcpy(out, j.domain, j.domain_len + 1);
    jid_free(&j);
    return ok ? 0 : -1;
}

jid_err_t jid_from_parts(jid_t *out, const char *local, const char *domain, const char *resource)
{
    *out = (jid_t)JID_INIT;
    if (!domain)
        return JID_ERR_DOMAIN_EMPTY;
    size_t ll = local ? strlen(local) : 0;
    size_t dl = strlen(domain);
    size_t rl = resource ? strlen(resource) : 0;
    /* Same checks as jid_parse, part by part (NUL cannot occur here). */
    jid_err_t err = JID_OK;
    if (local && (err = check_text(local, ll)) != JID_OK)
        return err;
    if ((err = check_text(domain, dl)) != JID_OK)
        return err;
    if (resource && (err = check_text(resource, rl)) != JID_OK)
        return err;
    if (local && ll == 0)
        return JID_ERR_LOCAL_EMPTY;
    if (dl == 0)
        return JID_ERR_DOMAIN_EMPTY;
    if (resource && rl == 0)
        return JID_ERR_RESOURCE_EMPTY;
    /* A domain with '@' or '/' fails the label rules anyway; a localpart
     * with them fails nodeprep. Nothing is re-split. */
    return prep_parts(out, local, ll, domain, dl, resource, rl);
}

jid_err_t jid_copy(jid_t *dst, const jid_t *src)
{
    if (!src->buf) {
        *dst = (jid_t)JID_INIT;
        return JID_OK;
    }
    return assemble(dst, src->local, src->local_len, src->domain, src->domain_len, src->resource,
                    src->resource_len);
}

jid_err_t jid_to_bare(jid_t *dst, const jid_t *src)
{
    if (!src->buf) {
        *dst = (jid_t)JID_INIT;
        return JID_OK;
    }
    return assemble(dst, src->local, src->local_len, src->domain, src->domain_len, NULL, 0);
}

void jid_free(jid_t *j)
{
    free(j->buf);
    *j = (jid_t)JID_INIT;
}

/* The normalised string determines the parts uniquely: neither a prepared
 * localpart nor a domainpart can contain '@' or '/', so comparing the bare
 * or full strings compares the parts. */
bool jid_equal_bare(const jid_t *a, const jid_t *b)
{
    if (!a->buf || !b->buf)
        return !a->buf && !b->buf;
    return a->bare_len == b->bare_len && memcmp(a->bare, b->bare, a->bare_len) == 0;
}

bool jid_equal_full(const jid_t *a, const jid_t *b)
{
    if (!a->buf || !b->buf)
        return !a->buf && !b->buf;
    return a->full_len == b->full_len && memcmp(a->full, b->full, a->full_len) == 0;
}

/* ------------------------------------------------------------------ */
/* XEP-0106                                                           */

/* The ten escape codes of XEP-0106 §3.2, in the order of their
 * characters. CASE IS SIGNIFICANT for unescaping (§3.1). */
static const char escape_chars[10] = {' ', '"', '&', '\'', '/', ':', '<', '>', '@', '\\'};
static const char escape_codes[10][2] = {{'2', '0'}, {'2', '2'}, {'2', '6'}, {'2', '7'},
                                         {'2', 'f'}, {'3', 'a'}, {'3', 'c'}, {'3', 'e'},
                                         {'4', '0'}, {'5', 'c'}};

static char ascii_lower(char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
}

/* Index of the code spelled by a, b (exact when fold == 0, ignoring ASCII
 * case otherwise), or -1. */
static int code_index(char a, char b, int fold)
{
    if (fold) {
        a = ascii_lower(a);
        b = ascii_lower(b);
    }
    for (int k = 0; k < 10; k++)
        if (escape_codes[k][0] == a && escape_codes[k][1] == b)
            return k;
    return -1;
}

static int char_index(char c)
{
    for (int k = 0; k < 9; k++) /* the backslash is handled by the caller */
        if (escape_chars[k] == c)
            return k;
    return -1;
}

jid_err_t jid_escape_local(const char *in, size_t len, char *out, size_t out_size,
                           size_t *out_len)
{
    jid_err_t err = check_text(in, len);
    if (err != JID_OK)
        return err;
    /* §3.2 note and §4.1 rule 6: \20 may not be first or last. */
    if (len > 0 && (in[0] == ' ' || in[len - 1] == ' '))
        return JID_ERR_ESCAPE_SPACE;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        int k = char_index(c);
        /* §4.1 rule 7 / §4.2 step 3: a backslash is escaped when what
         * follows would otherwise read as an escape; §4.3: otherwise it
         * stays. Case-insensitive here, see jid.h. */
        if (k < 0 && c == '\\' && len - i > 2 && code_index(in[i + 1], in[i + 2], 1) >= 0)
            k = 9;
        size_t need = k >= 0 ? 3 : 1;
        if (o + need + 1 > out_size)
            return JID_ERR_BUFFER;
        if (k >= 0) {
            out[o++] = '\\';
            out[o++] = escape_codes[k][0];
            out[o++] = escape_codes[k][1];
        } else {
            out[o++] = c;
        }
    }
    if (o >= out_size)
        return JID_ERR_BUFFER;
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return JID_OK;
}

jid_err_t jid_unescape_local(const char *in, size_t len, char *out, size_t out_size,
                             size_t *out_len)
{
    jid_err_t err = check_text(in, len);
    if (err != JID_OK)
        return err;
    if (out_size < len + 1) /* output never exceeds input */
        return JID_ERR_BUFFER;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (in[i] == '\\' && len - i > 2) {
            int k = code_index(in[i + 1], in[i + 2], 0);
            /* §4.1 rule 6: a \20 at either end is not an escape (rule 3:
             * leave what is not an escape alone). */
            if (k == 0 && (i == 0 || i + 3 == len))
                k = -1;
            if (k >= 0) {
                out[o++] = escape_chars[k];
                i += 3;
                continue;
            }
        }
        out[o++] = in[i++];
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return JID_OK;
}

/* ------------------------------------------------------------------ */

const char *jid_strerror(jid_err_t err)
{
    switch (err) {
    case JID_OK: return "ok";
    case JID_ERR_NOMEM: return "out of memory";
    case JID_ERR_EMPTY: return "empty JID";
    case JID_ERR_NUL: return "NUL byte in input";
    case JID_ERR_UTF8: return "invalid UTF-8";
    case JID_ERR_LOCAL_EMPTY: return "empty localpart before '@'";
    case JID_ERR_LOCAL_TOO_LONG: return "localpart longer than 1023 bytes after nodeprep";
    case JID_ERR_LOCAL_PROHIBITED: return "localpart contains a character prohibited by nodeprep";
    case JID_ERR_LOCAL_UNASSIGNED: return "localpart contains a code point unassigned in Unicode 3.2";
    case JID_ERR_LOCAL_BIDI: return "localpart violates the stringprep bidi rules";
    case JID_ERR_DOMAIN_EMPTY: return "empty domainpart";
    case JID_ERR_DOMAIN_TOO_LONG: return "domainpart longer than 1023 bytes after nameprep";
    case JID_ERR_DOMAIN_PROHIBITED: return "domainpart contains a character prohibited by nameprep";
    case JID_ERR_DOMAIN_UNASSIGNED: return "domainpart contains a code point unassigned in Unicode 3.2";
    case JID_ERR_DOMAIN_BIDI: return "domainpart label violates the stringprep bidi rules";
    case JID_ERR_DOMAIN_LABEL_EMPTY: return "empty label in domainpart";
    case JID_ERR_DOMAIN_LABEL_TOO_LONG: return "domainpart label longer than 63 octets (ACE form)";
    case JID_ERR_DOMAIN_LABEL_CHARS: return "domainpart label is not letters, digits and inner hyphens";
    case JID_ERR_DOMAIN_IP: return "malformed IP address in domainpart";
    case JID_ERR_RESOURCE_EMPTY: return "empty resourcepart after '/'";
    case JID_ERR_RESOURCE_TOO_LONG: return "resourcepart longer than 1023 bytes after resourceprep";
    case JID_ERR_RESOURCE_PROHIBITED: return "resourcepart contains a character prohibited by resourceprep";
    case JID_ERR_RESOURCE_BIDI: return "resourcepart violates the stringprep bidi rules";
    case JID_ERR_UNSTABLE: return "part changes when prepared twice";
    case JID_ERR_ESCAPE_SPACE: return "localpart cannot begin or end with a space (XEP-0106 \\20)";
    case JID_ERR_BUFFER: return "output buffer too small";
    case JID_ERR_INTERNAL: return "internal error in stringprep";
    case JID_ERR_COUNT_: break;
    }
    return "unknown JID error";
}
