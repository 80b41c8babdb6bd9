/* test_date.c: _date conversion and integer parsing (PSYC.md §1.3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "psyc/psyc.h"

#define S(x) psyc_str_c(x)

static void test_epoch(void **state)
{
    (void)state;
    assert_int_equal(PSYC_EPOCH, 1440444041LL);
    assert_int_equal(psyc_date_to_unix(0), PSYC_EPOCH);
    assert_int_equal(psyc_date_from_unix(PSYC_EPOCH), 0);
    /* 2026-01-01T00:00:00Z */
    assert_int_equal(psyc_date_from_unix(1767225600LL), 1767225600LL - 1440444041LL);
    assert_int_equal(psyc_date_to_unix(-PSYC_EPOCH), 0);
    assert_int_equal(psyc_date_to_unix(-1), PSYC_EPOCH - 1);
}

static void test_roundtrip(void **state)
{
    (void)state;
    static const int64_t v[] = {0, 1, -1, 86400, -86400, 326781559LL, INT64_MAX - PSYC_EPOCH,
                                INT64_MIN + PSYC_EPOCH, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        assert_int_equal(psyc_date_from_unix(psyc_date_to_unix(v[i])), v[i]);
        assert_int_equal(psyc_date_to_unix(psyc_date_from_unix(v[i])), v[i]);
    }
}

static void test_saturation(void **state)
{
    (void)state;
    assert_int_equal(psyc_date_to_unix(INT64_MAX), INT64_MAX);
    assert_int_equal(psyc_date_to_unix(INT64_MAX - PSYC_EPOCH + 1), INT64_MAX);
    assert_int_equal(psyc_date_to_unix(INT64_MAX - PSYC_EPOCH), INT64_MAX);
    assert_int_equal(psyc_date_to_unix(INT64_MIN), INT64_MIN + PSYC_EPOCH);
    assert_int_equal(psyc_date_from_unix(INT64_MIN), INT64_MIN);
    assert_int_equal(psyc_date_from_unix(INT64_MIN + PSYC_EPOCH - 1), INT64_MIN);
    assert_int_equal(psyc_date_from_unix(INT64_MIN + PSYC_EPOCH), INT64_MIN);
    assert_int_equal(psyc_date_from_unix(INT64_MAX), INT64_MAX - PSYC_EPOCH);
}

static void assert_parses(const char *s, int64_t want)
{
    int64_t v = 12345;
    assert_int_equal(psyc_parse_int64(S(s), &v), 0);
    assert_int_equal(v, want);
}

static void assert_rejects(psyc_str s)
{
    int64_t v = 12345;
    assert_int_equal(psyc_parse_int64(s, &v), PSYC_ERR_NUMBER);
    assert_int_equal(v, 12345); /* untouched on error */
}

static void test_parse_int64(void **state)
{
    (void)state;
    assert_parses("0", 0);
    assert_parses("-0", 0);
    assert_parses("+0", 0);
    assert_parses("7", 7);
    assert_parses("+42", 42);
    assert_parses("-42", -42);
    assert_parses("000123", 123);
    assert_parses("326781559", 326781559LL);
    assert_parses("9223372036854775807", INT64_MAX);
    assert_parses("-9223372036854775808", INT64_MIN);
    assert_parses("-9223372036854775807", INT64_MIN + 1);
    assert_parses("00000000000000000000009223372036854775807", INT64_MAX);
}

static void test_parse_int64_rejects(void **state)
{
    (void)state;
    assert_rejects(S(""));
    assert_rejects(PSYC_STR_NULL);
    assert_rejects(S("-"));
    assert_rejects(S("+"));
    assert_rejects(S("--1"));
    assert_rejects(S("+-1"));
    assert_rejects(S(" 1"));
    assert_rejects(S("1 "));
    assert_rejects(S("1\n"));
    assert_rejects(S("0x10"));
    assert_rejects(S("1e3"));
    assert_rejects(S("1.5"));
    assert_rejects(S("12a"));
    assert_rejects(S("9223372036854775808"));
    assert_rejects(S("-9223372036854775809"));
    assert_rejects(S("99999999999999999999"));
    assert_rejects(S("-99999999999999999999999999999999"));
    assert_rejects((psyc_str){"1\0002", 3});
}

static void test_parse_int64_view(void **state)
{
    (void)state;
    int64_t v = 0;
    /* only the view's bytes count */
    assert_int_equal(psyc_parse_int64((psyc_str){"123456", 3}, &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(psyc_parse_int64((psyc_str){"-1x", 2}, &v), 0);
    assert_int_equal(v, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epoch),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_saturation),
        cmocka_unit_test(test_parse_int64),
        cmocka_unit_test(test_parse_int64_rejects),
        cmocka_unit_test(test_parse_int64_view),
    };
    return cmocka_run_group_tests_name("date", tests, NULL, NULL);
}
