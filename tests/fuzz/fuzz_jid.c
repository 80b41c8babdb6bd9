/*
 * fuzz_jid.c: libFuzzer target for JIDs (RFC 6122) and XEP-0106 escaping
 * (xmpp/jid.h). Checks properties, not just crashes; abort() on violation:
 *  - a JID that parses renders to a string that parses to the same JID
 *    (normalisation is idempotent), every part is 1..1023 bytes, its bare
 *    form parses to the same bare JID, and rebuilding it from its parts,
 *    copying it and taking its bare JID agree with it;
 *  - for ASCII input, the localpart and resourcepart equal what libidn's
 *    nodeprep/resourceprep make of them (the ASCII fast path is exact);
 *  - unescape(escape(x)) == x, escape(unescape(escape(x))) == escape(x),
 *    and unescaping arbitrary input never fails on valid UTF-8 and never
 *    grows it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stringprep.h>

#include "xmpp/jid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond)
        abort();
}

static int part_ok(const char *p, size_t len)
{
    return p == NULL ? len == 0 : (len >= 1 && len <= JID_PART_MAX && strlen(p) == len);
}

/* The ASCII fast path against libidn, for one raw part. */
static void cross_check(const char *raw, size_t len, const char *prepared,
                        const Stringprep_profile *profile, int flags)
{
    char buf[JID_PART_MAX + 1];
    if (len > JID_PART_MAX)
        return;
    memcpy(buf, raw, len);
    buf[len] = '\0';
    int rc = stringprep(buf, sizeof buf, (Stringprep_profile_flags)flags, profile);
    check(rc == STRINGPREP_OK);
    check(strcmp(buf, prepared) == 0);
}

static void check_jid(const char *s, size_t len)
{
    jid_t j = JID_INIT, k = JID_INIT;
    if (jid_parse(&j, s, len) != JID_OK) {
        check(j.buf == NULL);
        return;
    }
    check(part_ok(j.local, j.local_len));
    check(part_ok(j.domain, j.domain_len));
    check(part_ok(j.resource, j.resource_len));
    check(j.full_len == strlen(j.full) && j.bare_len == strlen(j.bare));
    check(j.full_len <= JID_FULL_MAX);

    /* idempotence */
    check(jid_parse(&k, j.full, j.full_len) == JID_OK);
    check(strcmp(k.full, j.full) == 0 && jid_equal_full(&j, &k));
    jid_free(&k);

    /* bare(x) parses, to the bare JID */
    check(jid_parse(&k, j.bare, j.bare_len) == JID_OK);
    check(jid_is_bare(&k) && jid_equal_bare(&j, &k) && strcmp(k.full, j.bare) == 0);
    jid_free(&k);
    check(jid_to_bare(&k, &j) == JID_OK);
    check(strcmp(k.full, j.bare) == 0);
    jid_free(&k);

    /* parts and copies */
    check(jid_from_parts(&k, j.local, j.domain, j.resource) == JID_OK);
    check(jid_equal_full(&j, &k));
    jid_free(&k);
    check(jid_copy(&k, &j) == JID_OK);
    check(jid_equal_full(&j, &k) && k.buf != j.buf);
    jid_free(&k);

    /* ASCII fast path == libidn */
    int ascii = 1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            ascii = 0;
    if (ascii) {
        const char *slash = memchr(s, '/', len);
        size_t head = slash ? (size_t)(slash - s) : len;
        const char *at = memchr(s, '@', head);
        if (at)
            cross_check(s, (size_t)(at - s), j.local, stringprep_xmpp_nodeprep,
                        STRINGPREP_NO_UNASSIGNED);
        if (slash)
            cross_check(slash + 1, len - head - 1, j.resource, stringprep_xmpp_resourceprep, 0);
    }
    jid_free(&j);
}

static void check_escaping(const char *s, size_t len)
{
    size_t esize = JID_ESCAPE_BOUND(len);
    char *e = malloc(esize), *u = malloc(esize), *e2 = malloc(esize);
    if (!e || !u || !e2)
        abort();
    size_t el, ul, e2l;
    if (jid_escape_local(s, len, e, esize, &el) == JID_OK) {
        check(el == strlen(e) && el <= 3 * len);
        check(jid_unescape_local(e, el, u, esize, &ul) == JID_OK);
        check(ul == len && memcmp(u, s, len) == 0);
        check(jid_escape_local(u, ul, e2, esize, &e2l) == JID_OK);
        check(e2l == el && memcmp(e2, e, el) == 0);
    }
    jid_err_t err = jid_unescape_local(s, len, u, esize, &ul);
    if (err == JID_OK) {
        check(ul <= len && ul == strlen(u));
        /* escaping the result always works (a \20 at the ends is never
         * decoded, so no leading/trailing space can appear unless the
         * input had one) and is stable under another round */
        if (jid_escape_local(u, ul, e, esize, &el) == JID_OK) {
            check(jid_unescape_local(e, el, e2, esize, &e2l) == JID_OK);
            check(e2l == ul && memcmp(e2, u, ul) == 0);
        } else {
            check(ul > 0 && (u[0] == ' ' || u[ul - 1] == ' '));
        }
    } else {
        check(err == JID_ERR_UTF8 || err == JID_ERR_NUL);
    }
    free(e);
    free(u);
    free(e2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    check_jid(s, size);
    check_escaping(s, size);
    return 0;
}
