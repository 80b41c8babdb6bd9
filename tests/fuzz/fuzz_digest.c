/*
 * fuzz_digest.c: libFuzzer target for the membership digests' list format
 * (routing/digest.h), which a peer psycgate sends us. Properties, abort()
 * on a violation:
 *  - a list that parses renders and parses again to the same relations,
 *    and both have the same digest;
 *  - repairing a list against itself mirrored changes nothing (two sides
 *    that agree stay as they are), and against anything else terminates
 *    with changes that only set bits in DIGEST_BITS.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routing/digest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void digest_fuzz_check(int ok)
{
    if (!ok)
        abort();
}

static int digest_fuzz_same(digest_set *a, digest_set *b)
{
    digest_set_sort(a);
    digest_set_sort(b);
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i].local, b->v[i].local) || strcmp(a->v[i].remote, b->v[i].remote) ||
            a->v[i].state != b->v[i].state)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    digest_set s, again, mirror;
    digest_set_init(&s);
    digest_set_init(&again);
    digest_set_init(&mirror);
    if (digest_parse((const char *)data, size, &s) == 0) {
        psyc_buf b;
        psyc_buf_init(&b);
        digest_fuzz_check(digest_render(&s, &b) == 0);
        digest_fuzz_check(digest_parse(b.data ? b.data : "", b.len, &again) == 0);
        digest_fuzz_check(digest_fuzz_same(&s, &again));
        char d1[DIGEST_HEX_SIZE], d2[DIGEST_HEX_SIZE];
        digest_fuzz_check(digest_of(&s, d1) == 0 && digest_of(&again, d2) == 0 && strcmp(d1, d2) == 0);
        psyc_buf_free(&b);
        /* The peer's view of the same relations: nothing to repair. */
        for (size_t i = 0; i < s.n; i++)
            digest_fuzz_check(digest_set_add(&mirror, s.v[i].remote, s.v[i].local, digest_mirror(s.v[i].state)) == 0);
        digest_change *c = NULL;
        long n = digest_repair(&s, &mirror, &c);
        digest_fuzz_check(n == 0 && c == NULL);
        /* Against the list itself (not mirrored): changes stay in range. */
        n = digest_repair(&s, &again, &c);
        digest_fuzz_check(n >= 0);
        for (long i = 0; i < n; i++)
            digest_fuzz_check((c[i].new_state & ~(unsigned)DIGEST_BITS) == 0 && c[i].new_state != c[i].old_state);
        free(c);
    }
    digest_set_free(&s);
    digest_set_free(&again);
    digest_set_free(&mirror);
    return 0;
}
