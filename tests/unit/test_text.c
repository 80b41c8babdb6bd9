/* test_text.c: [_var] templates (PSYC.md §2.2; libpsyc test_text.c ported, §6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "psyc/psyc.h"

#define S(x) psyc_str_c(x)

static int lookup_foobar(void *ctx, psyc_str name, psyc_str *value)
{
    (void)ctx;
    (void)name;
    *value = S("Foo Bar");
    return 1;
}

static int lookup_empty(void *ctx, psyc_str name, psyc_str *value)
{
    (void)ctx;
    (void)name;
    *value = PSYC_STR_NULL;
    return 1;
}

static int lookup_none(void *ctx, psyc_str name, psyc_str *value)
{
    (void)ctx;
    (void)name;
    (void)value;
    return 0;
}

/* name=value pairs in a NULL-terminated array; counts calls. */
struct table {
    const char *const *pairs;
    int calls;
};

static int lookup_table(void *ctx, psyc_str name, psyc_str *value)
{
    struct table *t = ctx;
    t->calls++;
    for (const char *const *p = t->pairs; *p; p += 2)
        if (psyc_str_eq_c(name, p[0])) {
            *value = S(p[1]);
            return 1;
        }
    return 0;
}

static void expect(psyc_str tmpl, psyc_text_lookup fn, void *ctx, const char *want)
{
    psyc_buf b;
    psyc_buf_init(&b);
    assert_int_equal(psyc_text_expand(tmpl, fn, ctx, &b), 0);
    assert_int_equal(b.len, strlen(want));
    if (b.len)
        assert_memory_equal(b.data, want, b.len);
    psyc_buf_free(&b);
}

static const char *const vars[] = {
    "_nick", "alice",
    "_target_peer", "psyc://192.0.2.7:-33012/",
    "_source", "psyc://psyced.example.net/",
    "_implementation", "psyced 0.99",
    "_x", "[_nick]",
    "_empty", "",
    NULL,
};

/* libpsyc test/test_text.c */
static void test_libpsyc(void **state)
{
    (void)state;
    psyc_str t = S("Hello [_foo] & [_bar]!");
    expect(t, lookup_foobar, NULL, "Hello Foo Bar & Foo Bar!");
    expect(t, lookup_empty, NULL, "Hello  & !");
    expect(t, lookup_none, NULL, "Hello [_foo] & [_bar]!");
    expect(t, NULL, NULL, "Hello [_foo] & [_bar]!");
}

/* The greeting body of PSYC.md §2.2. */
static void test_greeting(void **state)
{
    (void)state;
    struct table t = {vars, 0};
    expect(S("Hello [_target_peer].\nCircuit to [_source] running [_implementation] established.\n"),
           lookup_table, &t,
           "Hello psyc://192.0.2.7:-33012/.\nCircuit to psyc://psyced.example.net/ running psyced 0.99 established.\n");
    assert_int_equal(t.calls, 3);
}

static void test_verbatim(void **state)
{
    (void)state;
    struct table t = {vars, 0};
    expect(S(""), lookup_table, &t, "");
    expect(S("no placeholders"), lookup_table, &t, "no placeholders");
    expect(S("[_unknown] stays"), lookup_table, &t, "[_unknown] stays");
    expect(S("unclosed [_nick"), lookup_table, &t, "unclosed [_nick");
    expect(S("["), lookup_table, &t, "[");
    expect(S("]"), lookup_table, &t, "]");
    expect(S("[]"), lookup_table, &t, "[]");
    expect(S("[ _nick]"), lookup_table, &t, "[ _nick]");
    expect(S("[_nick ]"), lookup_table, &t, "[_nick ]");
    expect(S("[_ni-ck]"), lookup_table, &t, "[_ni-ck]");
    expect(S("[_nick\n]"), lookup_table, &t, "[_nick\n]");
    expect(S("a [b c] d"), lookup_table, &t, "a [b c] d");
    assert_int_equal(t.calls, 1); /* only [_unknown] reached the lookup */
}

static void test_substitution_edges(void **state)
{
    (void)state;
    struct table t = {vars, 0};
    expect(S("[_nick]"), lookup_table, &t, "alice");
    expect(S("[_nick][_nick]"), lookup_table, &t, "alicealice");
    expect(S("x[_nick]y"), lookup_table, &t, "xalicey");
    expect(S("[[_nick]]"), lookup_table, &t, "[alice]");
    expect(S("[_nick [_nick]"), lookup_table, &t, "[_nick alice");
    expect(S("[[[_nick"), lookup_table, &t, "[[[_nick");
    expect(S("[_empty]!"), lookup_table, &t, "!");
    expect(S("<[_unknown]|[_nick]>"), lookup_table, &t, "<[_unknown]|alice>");
    /* values are not expanded again */
    expect(S("[_x]"), lookup_table, &t, "[_nick]");
    /* names need not start with `_`: the lookup decides */
    expect(S("[nick]"), lookup_table, &t, "[nick]");
}

static void test_appends(void **state)
{
    (void)state;
    struct table t = {vars, 0};
    psyc_buf b;
    psyc_buf_init(&b);
    assert_int_equal(psyc_buf_puts(&b, "> "), 0);
    assert_int_equal(psyc_text_expand(S("hi [_nick]"), lookup_table, &t, &b), 0);
    assert_string_equal(b.data, "> hi alice");
    psyc_buf_free(&b);
}

static void test_view_not_terminated(void **state)
{
    (void)state;
    struct table t = {vars, 0};
    /* the view ends before "]": the placeholder is unclosed */
    psyc_str v = {"[_nick]", 6};
    expect(v, lookup_table, &t, "[_nick");
    psyc_str w = {"[_nick]tail", 7};
    expect(w, lookup_table, &t, "alice");
}

static void test_packet(void **state)
{
    (void)state;
    psyc_packet p;
    psyc_packet_init(&p);
    assert_int_equal(psyc_packet_routing_c(&p, "_source", "psyc://psyced.example.net/~bob"), 0);
    assert_int_equal(psyc_packet_routing_c(&p, "_nick", "routing-nick"), 0);
    assert_int_equal(psyc_packet_entity_c(&p, "_nick", "bob"), 0);
    assert_int_equal(psyc_packet_entity_c(&p, "_action", "waves"), 0);
    assert_int_equal(psyc_packet_entity_c(&p, "_action", "smiles"), 0);

    psyc_buf b;
    psyc_buf_init(&b);
    assert_int_equal(psyc_text_expand_packet(S("[_nick] ([_source]) [_action] [_missing]"), &p, &b), 0);
    /* entity before routing, later modifiers win */
    assert_string_equal(b.data, "bob (psyc://psyced.example.net/~bob) smiles [_missing]");

    /* an absurdly long name is never looked up, it stays verbatim */
    psyc_buf_reset(&b);
    char tmpl[2100];
    tmpl[0] = '[';
    memset(tmpl + 1, 'a', 2000);
    tmpl[2001] = ']';
    assert_int_equal(psyc_text_expand_packet((psyc_str){tmpl, 2002}, &p, &b), 0);
    assert_int_equal(b.len, 2002);
    assert_memory_equal(b.data, tmpl, 2002);

    psyc_buf_free(&b);
    psyc_packet_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libpsyc),
        cmocka_unit_test(test_greeting),
        cmocka_unit_test(test_verbatim),
        cmocka_unit_test(test_substitution_edges),
        cmocka_unit_test(test_appends),
        cmocka_unit_test(test_view_not_terminated),
        cmocka_unit_test(test_packet),
    };
    return cmocka_run_group_tests_name("text", tests, NULL, NULL);
}
