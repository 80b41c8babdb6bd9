/* test_keyword.c: keywords, inheritance, matching, type families
 * (PSYC.md §1.3, §4.4; libpsyc test_match.c and var_type.c ported, §6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "psyc/psyc.h"

#define S(x) psyc_str_c(x)

static void test_is_keyword(void **state)
{
    (void)state;
    assert_true(psyc_is_keyword(S("_message_private")));
    assert_true(psyc_is_keyword(S("_")));
    assert_true(psyc_is_keyword(S("2")));
    assert_true(psyc_is_keyword(S("Abc_09_z")));
    assert_false(psyc_is_keyword(S("")));
    assert_false(psyc_is_keyword(PSYC_STR_NULL));
    assert_false(psyc_is_keyword(S("_foo bar")));
    assert_false(psyc_is_keyword(S("_foo-bar")));
    assert_false(psyc_is_keyword(S("_foo\n")));
    assert_false(psyc_is_keyword(S("_f\xc3\xbc")));
    /* an embedded NUL is not a keyword char */
    assert_false(psyc_is_keyword((psyc_str){"_a\0b", 4}));
}

static void test_is_operator(void **state)
{
    (void)state;
    const char *ops = ":=+-?@!";
    for (const char *o = ops; *o; o++)
        assert_true(psyc_is_operator(*o));
    for (int c = 0; c < 256; c++) {
        int expect = c != 0 && memchr(ops, c, 7) != NULL;
        assert_int_equal(psyc_is_operator((char)c), expect);
    }
}

/* libpsyc test/test_match.c, first half: psyc_matches. */
static void test_matches_libpsyc(void **state)
{
    (void)state;
    psyc_str lon = S("_failure_unsuccessful_delivery_death");
    assert_int_equal(psyc_matches(S("_failure_delivery"), lon), 1);
    assert_int_equal(psyc_matches(S("_failure"), lon), 1);
    assert_int_equal(psyc_matches(S("_unsuccessful"), lon), 1);
    assert_int_equal(psyc_matches(S("_fail"), lon), 0);
    assert_int_equal(psyc_matches(S("_truthahn"), lon), 0);
}

static void test_matches_edges(void **state)
{
    (void)state;
    psyc_str lon = S("_failure_unsuccessful_delivery_death");
    assert_int_equal(psyc_matches(lon, lon), 1);
    assert_int_equal(psyc_matches(S("_failure_unsuccessful_delivery_deaths"), lon), 0);
    assert_int_equal(psyc_matches(S("_failure_unsuccessful_delivery_dearh"), lon), 0);
    /* order matters */
    assert_int_equal(psyc_matches(S("_delivery_failure"), lon), 0);
    assert_int_equal(psyc_matches(S("_death"), lon), 1);
    assert_int_equal(psyc_matches(S("_failure_death"), lon), 1);
    /* a component must be whole: no prefix or suffix matches */
    assert_int_equal(psyc_matches(S("_deliver"), lon), 0);
    assert_int_equal(psyc_matches(S("_eath"), lon), 0);
    /* each component of kw is used once */
    assert_int_equal(psyc_matches(S("_death_death"), S("_death_x_y_z_w")), 0);
    assert_int_equal(psyc_matches(S("_a_a"), S("_a_b_a")), 1);
    /* "_" selects everything (the root of all keywords) */
    assert_int_equal(psyc_matches(S("_"), lon), 1);
    /* compact or empty keywords never match */
    assert_int_equal(psyc_matches(S("failure"), lon), 0);
    assert_int_equal(psyc_matches(S("_failure"), S("failure_x")), 0);
    assert_int_equal(psyc_matches(S(""), lon), 0);
    assert_int_equal(psyc_matches(lon, S("")), 0);
    assert_int_equal(psyc_matches(PSYC_STR_NULL, PSYC_STR_NULL), 0);
    /* views need not be NUL-terminated */
    psyc_str sel = {"_failure_xyz", 8};
    assert_int_equal(psyc_matches(sel, lon), 1);
}

/* libpsyc test/test_match.c, second half, with psyc_inherits(kw, base). */
static void test_inherits_libpsyc(void **state)
{
    (void)state;
    psyc_str lon = S("_failure_unsuccessful_delivery_death");
    assert_int_equal(psyc_inherits(lon, S("_failure_delivery")), 0);
    assert_int_equal(psyc_inherits(lon, S("_failure_unsuccessful")), 1);
    assert_int_equal(psyc_inherits(lon, S("_fail")), 0);
}

static void test_inherits_edges(void **state)
{
    (void)state;
    assert_int_equal(psyc_inherits(S("_failure_unsuccessful_delivery"), S("_failure")), 1);
    assert_int_equal(psyc_inherits(S("_failure"), S("_failure")), 1);
    assert_int_equal(psyc_inherits(S("_failures"), S("_failure")), 0);
    assert_int_equal(psyc_inherits(S("_failure"), S("_failure_x")), 0);
    assert_int_equal(psyc_inherits(S("_error_illegal_uniform"), S("_error")), 1);
    assert_int_equal(psyc_inherits(S("_error_illegal_uniform"), S("_failure")), 0);
    assert_int_equal(psyc_inherits(S("_message_private"), S("_message")), 1);
    assert_int_equal(psyc_inherits(S("_message_echo_public"), S("_message_echo")), 1);
    assert_int_equal(psyc_inherits(S("message_private"), S("message")), 0);
    assert_int_equal(psyc_inherits(S(""), S("")), 0);
    assert_int_equal(psyc_inherits(S("_x"), S("")), 0);
    assert_int_equal(psyc_inherits(PSYC_STR_NULL, S("_x")), 0);
    /* case-sensitive */
    assert_int_equal(psyc_inherits(S("_Failure_x"), S("_failure")), 0);
}

/* Inheritance implies matching (the base's components lead the keyword). */
static void test_inherits_implies_matches(void **state)
{
    (void)state;
    static const char *const kws[] = {
        "_", "__", "_a", "_a_", "_a_b", "_a__b", "_ab", "_a_b_c", "_b_a", "_a_b_",
    };
    size_t n = sizeof kws / sizeof kws[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (psyc_inherits(S(kws[i]), S(kws[j])))
                assert_int_equal(psyc_matches(S(kws[j]), S(kws[i])), 1);
}

static void assert_type(const char *name, const char *family)
{
    psyc_str t = psyc_var_type(S(name));
    if (!family) {
        assert_int_equal(t.len, 0);
        return;
    }
    assert_int_equal(t.len, strlen(family));
    assert_memory_equal(t.ptr, family, t.len);
}

/* libpsyc test/var_type.c plus every family of PSYC.md §1.3. */
static void test_var_type(void **state)
{
    (void)state;
    assert_type("_list_foo", "_list");
    assert_type("_color_red", "_color");
    assert_type("_last", NULL);
    assert_type("_colorful", NULL);
    assert_type("_", NULL);
    assert_type("", NULL);

    static const char *const families[] = {
        "_amount", "_color", "_date", "_degree", "_dict", "_entity", "_flag",
        "_language", "_list", "_nick", "_page", "_struct", "_time", "_uniform",
    };
    char buf[64];
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        assert_type(families[i], families[i]);
        snprintf(buf, sizeof buf, "%s_x", families[i]);
        assert_type(buf, families[i]);
        snprintf(buf, sizeof buf, "%sx", families[i]);
        assert_type(buf, NULL);
    }
    assert_type("_date_birth", "_date");
    assert_type("_degree_availability", "_degree");
    assert_type("_nick_place", "_nick");
    assert_type("_uniform_source", "_uniform");
    assert_type("_source", NULL);
    assert_type("_def", NULL);     /* libpsyc-only family, not ours */
    assert_type("_table_x", NULL); /* ditto */
    assert_type("_Date", NULL);
    assert_type("date_x", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_keyword),
        cmocka_unit_test(test_is_operator),
        cmocka_unit_test(test_matches_libpsyc),
        cmocka_unit_test(test_matches_edges),
        cmocka_unit_test(test_inherits_libpsyc),
        cmocka_unit_test(test_inherits_edges),
        cmocka_unit_test(test_inherits_implies_matches),
        cmocka_unit_test(test_var_type),
    };
    return cmocka_run_group_tests_name("keyword", tests, NULL, NULL);
}
