/*
 * test_coalesce.c: presence broadcasts out of per-contact copies
 * (routing/coalesce.h): one burst per broadcast, unchanged presence not
 * re-sent except to new recipients, ordering per sender, windows, the
 * memory bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "routing/coalesce.h"

typedef struct burst {
    char from[64], payload[64];
    int changed;
    size_t n;
    char first[64], last[64];
} burst;

static burst bursts[16];
static size_t n_bursts;

static void on_burst(void *ud, const char *from, const void *payload, size_t len, int changed,
                     const char *const *rcpt, size_t n)
{
    (void)ud;
    assert_true(n_bursts < 16);
    burst *b = &bursts[n_bursts++];
    snprintf(b->from, sizeof b->from, "%s", from);
    snprintf(b->payload, sizeof b->payload, "%.*s", (int)len, (const char *)payload);
    b->changed = changed;
    b->n = n;
    snprintf(b->first, sizeof b->first, "%s", n ? rcpt[0] : "");
    snprintf(b->last, sizeof b->last, "%s", n ? rcpt[n - 1] : "");
}

static void feed_contacts(pc_coalescer *pc, const char *from, const char *payload, int first, int count,
                          uint64_t now)
{
    for (int i = first; i < first + count; i++) {
        char to[64];
        snprintf(to, sizeof to, "c%d@s%d.example", i, i % 50);
        assert_int_equal(pc_feed(pc, from, to, payload, strlen(payload), now), 0);
    }
}

static void test_one_broadcast(void **state)
{
    (void)state;
    n_bursts = 0;
    pc_coalescer *pc = pc_new(50, 0, on_burst, NULL);
    feed_contacts(pc, "alice@example.org/home", "<show>away</show>", 0, 1000, 1000);
    assert_int_equal(n_bursts, 0); /* still open */
    assert_int_equal(pc_next_deadline(pc), 1050);
    pc_tick(pc, 1049);
    assert_int_equal(n_bursts, 0);
    pc_tick(pc, 1050);
    assert_int_equal(n_bursts, 1);
    assert_int_equal(bursts[0].n, 1000);
    assert_true(bursts[0].changed);
    assert_string_equal(bursts[0].first, "c0@s0.example");
    assert_string_equal(bursts[0].last, "c999@s49.example");
    assert_int_equal(pc_next_deadline(pc), PC_NO_DEADLINE);

    /* The same presence again (the server re-broadcasts on reconnect): nothing
     * new to send; one contact more: only that one. */
    feed_contacts(pc, "alice@example.org/home", "<show>away</show>", 0, 1001, 2000);
    pc_tick(pc, 3000);
    assert_int_equal(n_bursts, 2);
    assert_false(bursts[1].changed);
    assert_int_equal(bursts[1].n, 1);
    assert_string_equal(bursts[1].first, "c1000@s0.example");
    pc_stats st;
    pc_get_stats(pc, &st);
    assert_int_equal(st.copies, 2001);
    assert_int_equal(st.bursts, 2);
    assert_int_equal(st.unchanged_bursts, 1);
    assert_int_equal(st.suppressed, 1000);

    /* A change goes to everyone. */
    feed_contacts(pc, "alice@example.org/home", "<show>dnd</show>", 0, 1001, 4000);
    pc_tick(pc, 5000);
    assert_int_equal(n_bursts, 3);
    assert_true(bursts[2].changed);
    assert_int_equal(bursts[2].n, 1001);
    pc_free(pc);
}

static void test_order_and_interleaving(void **state)
{
    (void)state;
    n_bursts = 0;
    pc_coalescer *pc = pc_new(50, 0, on_burst, NULL);
    /* Two senders interleaved in one window: two bursts. */
    for (int i = 0; i < 10; i++) {
        char to[32];
        snprintf(to, sizeof to, "c%d@x.example", i);
        pc_feed(pc, "alice@example.org/a", to, "A", 1, 100);
        pc_feed(pc, "bob@example.org/b", to, "B", 1, 100);
    }
    /* Duplicate copies to one recipient count once. */
    pc_feed(pc, "bob@example.org/b", "c0@x.example", "B", 1, 101);
    /* alice changes within the window: her first burst closes first. */
    pc_feed(pc, "alice@example.org/a", "c0@x.example", "A2", 2, 120);
    assert_int_equal(n_bursts, 1);
    assert_string_equal(bursts[0].from, "alice@example.org/a");
    assert_string_equal(bursts[0].payload, "A");
    assert_int_equal(bursts[0].n, 10);
    pc_tick(pc, 150);
    assert_int_equal(n_bursts, 2);
    assert_string_equal(bursts[1].from, "bob@example.org/b");
    assert_int_equal(bursts[1].n, 10);
    /* pc_free reports what is still open. */
    pc_free(pc);
    assert_int_equal(n_bursts, 3);
    assert_string_equal(bursts[2].payload, "A2");
}

static void test_window_and_memory(void **state)
{
    (void)state;
    n_bursts = 0;
    pc_coalescer *pc = pc_new(10, 2, on_burst, NULL);
    pc_feed(pc, "a@x/1", "c@y", "P", 1, 0);
    pc_feed(pc, "a@x/1", "d@y", "P", 1, 11); /* after the window: a new burst (unchanged) */
    assert_int_equal(n_bursts, 1);
    pc_tick(pc, 30);
    assert_int_equal(n_bursts, 2);
    assert_false(bursts[1].changed);
    assert_int_equal(bursts[1].n, 1);
    /* At most two senders remembered: a third pushes out the least recent. */
    pc_feed(pc, "b@x/1", "c@y", "Q", 1, 40);
    pc_feed(pc, "c@x/1", "c@y", "R", 1, 40);
    pc_tick(pc, 60);
    pc_feed(pc, "a@x/1", "c@y", "P", 1, 70); /* forgotten: counts as changed */
    pc_tick(pc, 90);
    assert_int_equal(n_bursts, 5);
    assert_true(bursts[4].changed);
    assert_int_equal(bursts[4].n, 1);
    /* pc_forget: the next broadcast is new again. */
    pc_forget(pc, "a@x/1");
    pc_feed(pc, "a@x/1", "c@y", "P", 1, 100);
    pc_tick(pc, 200);
    assert_true(bursts[5].changed);
    pc_free(pc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_broadcast),
        cmocka_unit_test(test_order_and_interleaving),
        cmocka_unit_test(test_window_and_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
