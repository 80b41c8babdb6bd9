/* test_dns_order.c: RFC 2782 ordering of SRV records (gateway/dns_order.c):
 * priorities, weights, zero weights, determinism under a pinned random
 * source, and the weight distribution over many seeded runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/dns.h"

/* A scripted source: returns the given values in turn (then repeats the
 * last), and counts the calls. */
typedef struct script {
    const uint32_t *v;
    size_t n, next, calls;
} script;

static uint32_t script_rand(void *ctx)
{
    script *s = ctx;
    s->calls++;
    uint32_t x = s->v[s->next < s->n ? s->next : s->n - 1];
    if (s->next < s->n)
        s->next++;
    return x;
}

/* A seeded generator (xorshift64*), for the statistical runs. */
static uint32_t xs_rand(void *ctx)
{
    uint64_t *s = ctx;
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (uint32_t)((*s * 0x2545f4914f6cdd1dull) >> 32);
}

/* The 32-bit value that dns_order_below maps to r in [0, range). */
static uint32_t pick_value(uint64_t r, uint64_t range)
{
    return (uint32_t)(((r << 32) + range - 1) / range);
}

static void expect_order(const size_t *got, const size_t *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("position %zu: got record %zu, want %zu", i, got[i], want[i]);
}

static void test_priorities(void **state)
{
    (void)state;
    /* Wire order 30, 10, 20, 10: lowest priority first whatever the weights. */
    const dns_srv_rr rr[] = {{30, 100, 1}, {10, 0, 2}, {20, 5, 3}, {10, 0, 4}};
    uint32_t zero = 0;
    script s = {&zero, 1, 0, 0};
    size_t order[4];
    assert_int_equal(dns_srv_order(rr, 4, script_rand, &s, order), 0);
    assert_int_equal(rr[order[0]].priority, 10);
    assert_int_equal(rr[order[1]].priority, 10);
    assert_int_equal(order[2], 2);
    assert_int_equal(order[3], 0);
    /* Single records per priority draw no random number at all. */
    const dns_srv_rr single[] = {{3, 1, 1}, {1, 1, 2}, {2, 1, 3}};
    s.calls = 0;
    assert_int_equal(dns_srv_order(single, 3, script_rand, &s, order), 0);
    const size_t want[] = {1, 2, 0};
    expect_order(order, want, 3);
    assert_int_equal(s.calls, 0);
    /* Nothing and one. */
    assert_int_equal(dns_srv_order(rr, 0, script_rand, &s, order), 0);
    assert_int_equal(dns_srv_order(rr, 1, script_rand, &s, order), 0);
    assert_int_equal(order[0], 0);
}

static void test_too_many(void **state)
{
    (void)state;
    dns_srv_rr rr[DNS_SRV_MAX + 1];
    memset(rr, 0, sizeof rr);
    size_t order[DNS_SRV_MAX + 1];
    uint64_t seed = 1;
    assert_int_equal(dns_srv_order(rr, DNS_SRV_MAX + 1, xs_rand, &seed, order), -1);
    assert_int_equal(dns_srv_order(rr, DNS_SRV_MAX, xs_rand, &seed, order), 0);
    /* A permutation. */
    int seen[DNS_SRV_MAX] = {0};
    for (size_t i = 0; i < DNS_SRV_MAX; i++)
        seen[order[i]]++;
    for (size_t i = 0; i < DNS_SRV_MAX; i++)
        assert_int_equal(seen[i], 1);
}

static void test_weights_pinned(void **state)
{
    (void)state;
    /* One priority, weights 10, 60, 30 (sum 100, running sums 10, 70, 100). */
    const dns_srv_rr rr[] = {{0, 10, 1}, {0, 60, 2}, {0, 30, 3}};
    size_t order[3];

    /* r = 0 and no zero weight: the first record (running sum 10 >= 0). */
    uint32_t v1[] = {pick_value(0, 101), pick_value(0, 91)};
    script s = {v1, 2, 0, 0};
    dns_srv_order(rr, 3, script_rand, &s, order);
    const size_t w1[] = {0, 1, 2};
    expect_order(order, w1, 3);
    assert_int_equal(s.calls, 2); /* two picks with 2+ left, the last is forced */

    /* r = 11 selects record 1 (running 70); then of {10, 30} (sum 40),
     * r = 40 selects record 2 (running 40). */
    uint32_t v2[] = {pick_value(11, 101), pick_value(40, 41)};
    s = (script){v2, 2, 0, 0};
    dns_srv_order(rr, 3, script_rand, &s, order);
    const size_t w2[] = {1, 2, 0};
    expect_order(order, w2, 3);

    /* Boundaries: r = 10 is still record 0, r = 71 is record 2. */
    uint32_t v3[] = {pick_value(10, 101), pick_value(0, 91)};
    s = (script){v3, 2, 0, 0};
    dns_srv_order(rr, 3, script_rand, &s, order);
    assert_int_equal(order[0], 0);
    uint32_t v4[] = {pick_value(71, 101), pick_value(0, 71)};
    s = (script){v4, 2, 0, 0};
    dns_srv_order(rr, 3, script_rand, &s, order);
    const size_t w4[] = {2, 0, 1};
    expect_order(order, w4, 3);

    /* The largest draw lands on the last record. */
    uint32_t v5[] = {UINT32_MAX};
    s = (script){v5, 1, 0, 0};
    dns_srv_order(rr, 3, script_rand, &s, order);
    assert_int_equal(order[0], 2);
}

static void test_zero_weights(void **state)
{
    (void)state;
    size_t order[4];

    /* Weight 0 next to 50: only r = 0 (chance 1/51) picks the zero one. */
    const dns_srv_rr mix[] = {{5, 50, 1}, {5, 0, 2}};
    uint32_t v0[] = {pick_value(0, 51)};
    script s = {v0, 1, 0, 0};
    dns_srv_order(mix, 2, script_rand, &s, order);
    const size_t want0[] = {1, 0};
    expect_order(order, want0, 2);
    uint32_t v1[] = {pick_value(1, 51)};
    s = (script){v1, 1, 0, 0};
    dns_srv_order(mix, 2, script_rand, &s, order);
    const size_t want1[] = {0, 1};
    expect_order(order, want1, 2);

    /* All zero: sum 0, r is 0, then a uniform pick among the zeros. */
    const dns_srv_rr zeros[] = {{1, 0, 1}, {1, 0, 2}, {1, 0, 3}};
    uint32_t v2[] = {0, pick_value(2, 3), 0, pick_value(0, 2)};
    s = (script){v2, 4, 0, 0};
    dns_srv_order(zeros, 3, script_rand, &s, order);
    const size_t want2[] = {2, 0, 1};
    expect_order(order, want2, 3);

    /* Two zeros and a weight 1: r = 0 picks among the zeros, r = 1 the one. */
    const dns_srv_rr two[] = {{0, 0, 1}, {0, 1, 2}, {0, 0, 3}};
    uint32_t v3[] = {pick_value(1, 2), 0, pick_value(1, 2)};
    s = (script){v3, 3, 0, 0};
    dns_srv_order(two, 3, script_rand, &s, order);
    const size_t want3[] = {1, 2, 0};
    expect_order(order, want3, 3);
}

static void test_deterministic(void **state)
{
    (void)state;
    const dns_srv_rr rr[] = {{10, 5, 1}, {10, 5, 2}, {20, 0, 3}, {10, 90, 4}, {20, 0, 5}, {0, 0, 6}};
    size_t a[6], b[6];
    uint64_t s1 = 0x1234567887654321ull, s2 = 0x1234567887654321ull;
    for (int run = 0; run < 100; run++) {
        dns_srv_order(rr, 6, xs_rand, &s1, a);
        dns_srv_order(rr, 6, xs_rand, &s2, b);
        expect_order(a, b, 6);
        /* Always priority 0, then the three of 10, then the two of 20. */
        assert_int_equal(a[0], 5);
        for (int i = 1; i <= 3; i++)
            assert_int_equal(rr[a[i]].priority, 10);
        for (int i = 4; i <= 5; i++)
            assert_int_equal(rr[a[i]].priority, 20);
    }
}

/* Over many seeded runs, the first pick follows the weights: record i comes
 * first with chance w_i / (S + 1), plus 1/(S + 1) for the first record when
 * there is no zero weight; zero weights share 1/(S + 1). */
static void test_statistics(void **state)
{
    (void)state;
    enum { RUNS = 200000 };
    uint64_t seed = 42;
    size_t order[4];

    const dns_srv_rr rr[] = {{0, 10, 1}, {0, 60, 2}, {0, 30, 3}};
    unsigned first[3] = {0};
    for (int i = 0; i < RUNS; i++) {
        dns_srv_order(rr, 3, xs_rand, &seed, order);
        first[order[0]]++;
    }
    const double expect[3] = {11.0 / 101, 60.0 / 101, 30.0 / 101};
    for (int i = 0; i < 3; i++) {
        double got = (double)first[i] / RUNS;
        if (got < expect[i] - 0.01 || got > expect[i] + 0.01)
            fail_msg("record %d first in %.4f of runs, expected %.4f", i, got, expect[i]);
    }

    /* Zero weights: 1/101 together; each of the two half of that. */
    const dns_srv_rr z[] = {{0, 0, 1}, {0, 100, 2}, {0, 0, 3}};
    unsigned zf[3] = {0};
    for (int i = 0; i < RUNS; i++) {
        dns_srv_order(z, 3, xs_rand, &seed, order);
        zf[order[0]]++;
    }
    double pz = (double)(zf[0] + zf[2]) / RUNS;
    if (pz < 0.5 / 101 || pz > 2.0 / 101)
        fail_msg("zero weights first in %.5f of runs, expected about %.5f", pz, 1.0 / 101);
    assert_true(zf[0] > 0 && zf[2] > 0);
    if (zf[0] > 2 * zf[2] + 50 || zf[2] > 2 * zf[0] + 50)
        fail_msg("zero-weight records unevenly picked: %u vs %u", zf[0], zf[2]);

    /* All-zero records are spread evenly. */
    const dns_srv_rr all0[] = {{7, 0, 1}, {7, 0, 2}, {7, 0, 3}, {7, 0, 4}};
    unsigned af[4] = {0};
    for (int i = 0; i < RUNS; i++) {
        dns_srv_order(all0, 4, xs_rand, &seed, order);
        af[order[0]]++;
    }
    for (int i = 0; i < 4; i++) {
        double got = (double)af[i] / RUNS;
        if (got < 0.24 || got > 0.26)
            fail_msg("all-zero record %d first in %.4f of runs, expected 0.25", i, got);
    }

    /* Second place follows the weights of what is left: after 60 went
     * first, 10 and 30 compete as 11:30 out of 41. */
    unsigned second[3] = {0}, n60 = 0;
    for (int i = 0; i < RUNS; i++) {
        dns_srv_order(rr, 3, xs_rand, &seed, order);
        if (order[0] == 1) {
            n60++;
            second[order[1]]++;
        }
    }
    double p10 = (double)second[0] / n60;
    if (p10 < 11.0 / 41 - 0.015 || p10 > 11.0 / 41 + 0.015)
        fail_msg("after the 60, the 10 came second in %.4f of runs, expected %.4f", p10, 11.0 / 41);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priorities),     cmocka_unit_test(test_too_many),
        cmocka_unit_test(test_weights_pinned), cmocka_unit_test(test_zero_weights),
        cmocka_unit_test(test_deterministic),  cmocka_unit_test(test_statistics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
