/*
 * fuzz_uniform.c: libFuzzer target for uniforms (PSYC.md §3.1), templates
 * (§2.2) and keyword matching (§4.4). Checks properties, not just crashes:
 *  - a valid uniform renders back byte for byte, its normal form is valid,
 *    no longer than the input, and normalizing again changes nothing;
 *  - a template expanded with a lookup that knows nothing is unchanged;
 *  - inherits(kw, base) implies matches(base, kw); a typed name inherits
 *    from its type family.
 * abort() on any violation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "psyc/psyc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void psyc_fuzz_check(int ok)
{
    if (!ok)
        abort();
}

static int psyc_fuzz_same(const psyc_buf *b, psyc_str s)
{
    return b->len == s.len && (s.len == 0 || memcmp(b->data, s.ptr, s.len) == 0);
}

static void psyc_fuzz_uniform(psyc_str in)
{
    psyc_uniform u;
    int rc = psyc_uniform_parse(&u, in);
    psyc_buf out, n1, n2;
    psyc_buf_init(&out);
    psyc_buf_init(&n1);
    psyc_buf_init(&n2);

    int nrc = psyc_uniform_normalize(in, &n1);
    if (rc != PSYC_UNI_OK) {
        psyc_fuzz_check(rc < 0 && rc >= PSYC_UNI_ERR_TOO_LONG);
        psyc_fuzz_check(nrc == rc && n1.len == 0);
        psyc_fuzz_check(psyc_uniform_strerror(rc) != NULL);
        goto done;
    }
    /* views stay inside the input */
    psyc_fuzz_check(u.full.ptr == in.ptr && u.full.len == in.len);
    psyc_fuzz_check(u.root.len <= in.len && u.host.len > 0);
    psyc_fuzz_check((u.resource.len == 0) == (u.entity_type == 0));
    psyc_fuzz_check(u.port_num >= -65535 && u.port_num <= 65535);

    psyc_fuzz_check(psyc_uniform_render(&u, &out) == 0);
    psyc_fuzz_check(psyc_fuzz_same(&out, in));

    psyc_fuzz_check(nrc == 0 && n1.len <= in.len);
    psyc_str ns = {n1.data, n1.len};
    psyc_uniform nu;
    psyc_fuzz_check(psyc_uniform_parse(&nu, ns) == PSYC_UNI_OK);
    psyc_fuzz_check(nu.entity_type == u.entity_type && nu.transport == u.transport &&
                    nu.slash == u.slash && nu.nick.len == u.nick.len &&
                    nu.channel.len == u.channel.len);
    psyc_fuzz_check(psyc_uniform_normalize(ns, &n2) == 0);
    psyc_fuzz_check(psyc_fuzz_same(&n2, ns));

done:
    psyc_buf_free(&out);
    psyc_buf_free(&n1);
    psyc_buf_free(&n2);
}

static int psyc_fuzz_lookup_none(void *ctx, psyc_str name, psyc_str *value)
{
    (void)ctx;
    (void)name;
    (void)value;
    return 0;
}

/* Knows names of odd length; the value is the name itself, or empty for
 * names ending in a digit, so both growth and shrinking are exercised. */
static int psyc_fuzz_lookup_some(void *ctx, psyc_str name, psyc_str *value)
{
    size_t *calls = ctx;
    (*calls)++;
    psyc_fuzz_check(psyc_is_keyword(name));
    if (name.len % 2 == 0)
        return 0;
    unsigned char last = (unsigned char)name.ptr[name.len - 1];
    *value = (last >= '0' && last <= '9') ? PSYC_STR_NULL : name;
    return 1;
}

static void psyc_fuzz_text(psyc_str in)
{
    psyc_buf out;
    psyc_buf_init(&out);
    psyc_fuzz_check(psyc_text_expand(in, psyc_fuzz_lookup_none, NULL, &out) == 0);
    psyc_fuzz_check(psyc_fuzz_same(&out, in));

    /* each substitution removes a "[name]" and inserts at most the name */
    psyc_buf_reset(&out);
    size_t calls = 0;
    psyc_fuzz_check(psyc_text_expand(in, psyc_fuzz_lookup_some, &calls, &out) == 0);
    psyc_fuzz_check(out.len <= in.len);
    psyc_fuzz_check(calls <= in.len / 3);
    psyc_buf_free(&out);
}

static void psyc_fuzz_keywords(psyc_str a, psyc_str b)
{
    int inh = psyc_inherits(a, b);
    int mat = psyc_matches(b, a);
    psyc_fuzz_check(inh == 0 || inh == 1);
    psyc_fuzz_check(mat == 0 || mat == 1);
    if (inh)
        psyc_fuzz_check(mat);
    psyc_fuzz_check(psyc_matches(a, a) == (a.len > 0 && a.ptr[0] == '_'));

    psyc_str t = psyc_var_type(a);
    if (t.len)
        psyc_fuzz_check(psyc_inherits(a, t));
    (void)psyc_is_keyword(a);

    int64_t v;
    if (psyc_parse_int64(a, &v) == 0) {
        (void)psyc_date_from_unix(psyc_date_to_unix(v));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    psyc_str in = {(const char *)data, size};
    psyc_fuzz_uniform(in);
    psyc_fuzz_text(in);

    size_t half = size / 2;
    psyc_str a = {(const char *)data, half};
    psyc_str b = {(const char *)data + half, size - half};
    psyc_fuzz_keywords(a, b);
    psyc_fuzz_keywords(b, a);
    return 0;
}
