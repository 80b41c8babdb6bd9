/* test_replies.c: answers from PSYC go back to the resource that asked
 * (routing/replies.h): matching by tag and account, newest first, the
 * time to live, the ring bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "routing/replies.h"

static void test_replies(void **state)
{
    (void)state;
    replies *r = replies_new(3, 1000);
    const char *from, *to;
    assert_int_equal(replies_find(r, "m1", "alice@a.example", &from, &to, 0), 0);
    replies_note(r, "m1", "alice@a.example/phone", "bob%b.example@psyc.a.example", 100);
    replies_note(r, "m1", "carol@a.example/pc", "x@y", 110); /* same id, other account */
    assert_int_equal(replies_find(r, "m1", "alice@a.example", &from, &to, 200), 1);
    assert_string_equal(from, "alice@a.example/phone");
    assert_string_equal(to, "bob%b.example@psyc.a.example");
    assert_int_equal(replies_find(r, "m1", "alice@a.example/other", &from, &to, 200), 1);
    assert_int_equal(replies_find(r, "m1", "alice@a.exampl", &from, &to, 200), 0);
    assert_int_equal(replies_find(r, "m2", "alice@a.example", &from, &to, 200), 0);
    /* Newest first for a reused id. */
    replies_note(r, "m1", "alice@a.example/laptop", "z@y", 300);
    assert_int_equal(replies_find(r, "m1", "alice@a.example", &from, &to, 400), 1);
    assert_string_equal(from, "alice@a.example/laptop");
    /* Too old. */
    assert_int_equal(replies_find(r, "m1", "carol@a.example", &from, &to, 1200), 0);
    /* The ring forgets the oldest. */
    replies_note(r, "m3", "d@a.example/1", "q@y", 310);
    replies_note(r, "m4", "e@a.example/1", "q@y", 320);
    assert_int_equal(replies_find(r, "m1", "carol@a.example", &from, &to, 400), 0);
    assert_int_equal(replies_find(r, "m3", "d@a.example", &from, &to, 400), 1);
    replies_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_replies)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
