/*
 * test_digest.c: membership digests (routing/digest.h): both sides compute
 * the same digest for the same relations, the list survives the wire, and
 * one exchange of lists repairs any desync by the ownership rule (a
 * randomized test over many corrupted pairs of stores).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "routing/digest.h"

#define A1 "psyc://a.example/~alice"
#define A2 "psyc://a.example/~anna"
#define B1 "psyc://b.example/~bob"
#define B2 "psyc://b.example/~bea"

static void test_mirror(void **state)
{
    (void)state;
    assert_int_equal(digest_mirror(SUBS_TO), SUBS_FROM);
    assert_int_equal(digest_mirror(SUBS_FROM | SUBS_PENDING_OUT), SUBS_TO | SUBS_PENDING_IN);
    for (unsigned s = 0; s < 16; s++)
        assert_int_equal(digest_mirror(digest_mirror(s)), s);
}

/* The same relations as each side stores them give the same digest. */
static void test_digest_both_sides(void **state)
{
    (void)state;
    digest_set a, b;
    digest_set_init(&a);
    digest_set_init(&b);
    assert_int_equal(digest_set_add(&a, A1, B1, SUBS_TO | SUBS_FROM), 0);
    assert_int_equal(digest_set_add(&a, A2, B1, SUBS_TO | SUBS_PENDING_IN), 0);
    assert_int_equal(digest_set_add(&a, A1, B2, 0), 0); /* none: not kept */
    assert_int_equal(a.n, 2);
    assert_int_equal(digest_set_add(&b, B1, A2, SUBS_FROM | SUBS_PENDING_OUT), 0);
    assert_int_equal(digest_set_add(&b, B1, A1, SUBS_TO | SUBS_FROM), 0);
    char da[DIGEST_HEX_SIZE], db[DIGEST_HEX_SIZE];
    assert_int_equal(digest_of(&a, da), 0);
    assert_int_equal(digest_of(&b, db), 0);
    assert_int_equal(strlen(da), 64);
    assert_string_equal(da, db);
    b.v[0].state = SUBS_FROM;
    assert_int_equal(digest_of(&b, db), 0);
    assert_string_not_equal(da, db);
    digest_set_free(&a);
    digest_set_free(&b);
}

static void test_wire(void **state)
{
    (void)state;
    digest_set a, back;
    digest_set_init(&a);
    digest_set_init(&back);
    assert_int_equal(digest_set_add(&a, A1, B1, 3), 0);
    assert_int_equal(digest_set_add(&a, A2, B2, 4), 0);
    psyc_buf w;
    psyc_buf_init(&w);
    assert_int_equal(digest_render(&a, &w), 0);
    assert_int_equal(w.len, strlen(A1 " " B1 " 3\n" A2 " " B2 " 4\n"));
    assert_memory_equal(w.data, A1 " " B1 " 3\n" A2 " " B2 " 4\n", w.len);
    assert_int_equal(digest_parse(w.data, w.len, &back), 0);
    assert_int_equal(back.n, 2);
    assert_string_equal(back.v[1].remote, B2);
    assert_int_equal(back.v[1].state, 4);
    static const char *const bad[] = {"a b", "a b 0", "a b 16", "a b c", "a  b 1", " a b 1", "a b 1 x", "a b -1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        digest_set x;
        digest_set_init(&x);
        assert_int_equal(digest_parse(bad[i], strlen(bad[i]), &x), -1);
        digest_set_free(&x);
    }
    psyc_buf_free(&w);
    digest_set_free(&a);
    digest_set_free(&back);
}

/* Applies repairs to a set (what digest_peer.c does to the store). */
static void apply(digest_set *s, const digest_change *c, long n)
{
    for (long k = 0; k < n; k++) {
        size_t i = 0;
        while (i < s->n && !(strcmp(s->v[i].local, c[k].local) == 0 && strcmp(s->v[i].remote, c[k].remote) == 0))
            i++;
        if (i < s->n)
            s->v[i].state = c[k].new_state;
        else
            assert_int_equal(digest_set_add(s, c[k].local, c[k].remote, c[k].new_state), 0);
    }
}

static void test_repair_rule(void **state)
{
    (void)state;
    digest_set a, b;
    digest_set_init(&a);
    digest_set_init(&b);
    /* a says alice sees bob and bob sees alice; b lost bob's side of it
     * (FROM, b's authority) and has a stale pending-out. */
    assert_int_equal(digest_set_add(&a, A1, B1, SUBS_TO | SUBS_FROM), 0);
    assert_int_equal(digest_set_add(&b, B1, A1, SUBS_TO | SUBS_PENDING_OUT), 0);
    /* only on b's side: bea sees anna (anna's bit, a's authority). */
    assert_int_equal(digest_set_add(&b, B2, A2, SUBS_TO), 0);
    digest_change *c;
    long n = digest_repair(&a, &b, &c);
    assert_int_equal(n, 1); /* alice no longer sees bob: bob's side says so */
    assert_string_equal(c[0].local, A1);
    assert_string_equal(c[0].remote, B1);
    assert_int_equal(c[0].old_state, SUBS_TO | SUBS_FROM);
    assert_int_equal(c[0].new_state, SUBS_FROM);
    apply(&a, c, n);
    free(c);
    n = digest_repair(&b, &a, &c);
    assert_int_equal(n, 2);
    /* (sorted: ~bea before ~bob) bea no longer sees anna; bob sees alice
     * (a's FROM), nothing pending on a's side */
    assert_string_equal(c[0].local, B2);
    assert_int_equal(c[0].new_state, 0);
    assert_string_equal(c[1].local, B1);
    assert_int_equal(c[1].new_state, SUBS_TO);
    apply(&b, c, n);
    free(c);
    char da[DIGEST_HEX_SIZE], db[DIGEST_HEX_SIZE];
    assert_int_equal(digest_of(&a, da), 0);
    assert_int_equal(digest_of(&b, db), 0);
    assert_string_equal(da, db);
    digest_set_free(&a);
    digest_set_free(&b);
}

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* The state one side holds for (local, remote), 0 when none. */
static unsigned state_of(const digest_set *s, const char *local, const char *remote)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].local, local) == 0 && strcmp(s->v[i].remote, remote) == 0)
            return s->v[i].state;
    return 0;
}

/* Random relations between 8 people on each host, stored consistently on
 * both sides, then each side corrupted at random (bits flipped, rows lost,
 * rows made up); one exchange later both agree, and no side lost a bit it
 * owns. */
static void test_random_desync(void **state)
{
    (void)state;
    enum { PEOPLE = 8, ROUNDS = 300 };
    char an[PEOPLE][40], bn[PEOPLE][40];
    for (int i = 0; i < PEOPLE; i++) {
        snprintf(an[i], sizeof an[i], "psyc://a.example/~a%d", i);
        snprintf(bn[i], sizeof bn[i], "psyc://b.example/~b%d", i);
    }
    uint32_t seed = 0x9e3779b9u;
    size_t desynced = 0;
    for (int round = 0; round < ROUNDS; round++) {
        digest_set a, b;
        digest_set_init(&a);
        digest_set_init(&b);
        for (int i = 0; i < PEOPLE; i++)
            for (int j = 0; j < PEOPLE; j++) {
                unsigned truth = rnd(&seed) % 3 ? 0 : rnd(&seed) & DIGEST_BITS;
                unsigned sa = truth, sb = digest_mirror(truth);
                /* corruption, on either side, about one relation in five */
                if (rnd(&seed) % 10 == 0)
                    sa ^= rnd(&seed) & DIGEST_BITS;
                if (rnd(&seed) % 10 == 0)
                    sb ^= rnd(&seed) & DIGEST_BITS;
                assert_int_equal(digest_set_add(&a, an[i], bn[j], sa), 0);
                assert_int_equal(digest_set_add(&b, bn[j], an[i], sb), 0);
            }
        char da[DIGEST_HEX_SIZE], db[DIGEST_HEX_SIZE];
        assert_int_equal(digest_of(&a, da), 0);
        assert_int_equal(digest_of(&b, db), 0);
        if (strcmp(da, db) != 0) {
            desynced++;
            digest_set a0, b0; /* as they were: the owned bits must stay */
            digest_set_init(&a0);
            digest_set_init(&b0);
            for (size_t i = 0; i < a.n; i++)
                assert_int_equal(digest_set_add(&a0, a.v[i].local, a.v[i].remote, a.v[i].state), 0);
            for (size_t i = 0; i < b.n; i++)
                assert_int_equal(digest_set_add(&b0, b.v[i].local, b.v[i].remote, b.v[i].state), 0);
            /* b's list goes to a, a repairs; a's list goes back, b repairs */
            digest_change *c;
            long n = digest_repair(&a, &b, &c);
            assert_true(n >= 0);
            apply(&a, c, n);
            free(c);
            n = digest_repair(&b, &a, &c);
            assert_true(n >= 0);
            apply(&b, c, n);
            free(c);
            assert_int_equal(digest_of(&a, da), 0);
            assert_int_equal(digest_of(&b, db), 0);
            assert_string_equal(da, db);
            for (int i = 0; i < PEOPLE; i++)
                for (int j = 0; j < PEOPLE; j++) {
                    unsigned x = state_of(&a, an[i], bn[j]), y = state_of(&b, bn[j], an[i]);
                    assert_int_equal(x, digest_mirror(y));
                    assert_int_equal(x & DIGEST_OWN, state_of(&a0, an[i], bn[j]) & DIGEST_OWN);
                    assert_int_equal(y & DIGEST_OWN, state_of(&b0, bn[j], an[i]) & DIGEST_OWN);
                }
            /* a second exchange finds nothing to do */
            n = digest_repair(&a, &b, &c);
            assert_int_equal(n, 0);
            free(c);
            digest_set_free(&a0);
            digest_set_free(&b0);
        }
        digest_set_free(&a);
        digest_set_free(&b);
    }
    assert_true(desynced > ROUNDS / 2); /* the test did exercise repairs */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mirror),
        cmocka_unit_test(test_digest_both_sides),
        cmocka_unit_test(test_wire),
        cmocka_unit_test(test_repair_rule),
        cmocka_unit_test(test_random_desync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
