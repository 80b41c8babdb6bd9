/*
 * keyword.c: PSYC keywords (PSYC.md §4.4): syntax, inheritance at `_`
 * boundaries, libpsyc's component matching, and variable type families
 * (PSYC.md §1.3).
 *
 * Keywords are compared byte-wise: PSYC keywords are case-sensitive ASCII.
 */
#include "psyc/psyc.h"

#include <string.h>

static int psyc_is_kw_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

int psyc_is_keyword(psyc_str s)
{
    if (s.len == 0 || s.ptr == NULL)
        return 0;
    for (size_t i = 0; i < s.len; i++)
        if (!psyc_is_kw_char((unsigned char)s.ptr[i]))
            return 0;
    return 1;
}

/* The glyphs of PSYC.md §1.2. */
int psyc_is_operator(char c)
{
    switch (c) {
    case ':': case '=': case '+': case '-': case '?': case '@': case '!':
        return 1;
    default:
        return 0;
    }
}

/* Both sides must be long-form keywords (leading `_`), as in libpsyc's
 * match.c: a compact or empty keyword inherits from nothing. */
static int psyc_is_long_kw(psyc_str s)
{
    return s.len > 0 && s.ptr != NULL && s.ptr[0] == '_';
}

int psyc_inherits(psyc_str kw, psyc_str base)
{
    if (!psyc_is_long_kw(kw) || !psyc_is_long_kw(base) || base.len > kw.len)
        return 0;
    if (memcmp(kw.ptr, base.ptr, base.len) != 0)
        return 0;
    /* A bare prefix is not inheritance: "_failures" is not a "_failure"
     * (PSYC.md §4.4, families inherit only at `_` boundaries). */
    return kw.len == base.len || kw.ptr[base.len] == '_';
}

/* Length of the `_`-component starting at s[pos] (up to the next `_` or end). */
static size_t psyc_component_len(psyc_str s, size_t pos)
{
    const char *u = memchr(s.ptr + pos, '_', s.len - pos);
    return u ? (size_t)(u - (s.ptr + pos)) : s.len - pos;
}

/*
 * libpsyc's psyc_matches (PSYC.md §4.4, §6 test_match.c): each component
 * of `sel`, in order, must equal a later component of `kw`; components of
 * `kw` may be skipped. So "_failure_delivery" and "_unsuccessful" match
 * "_failure_unsuccessful_delivery_death", "_fail" and "_truthahn" do not.
 * As in libpsyc, a selector as long as the keyword matches only if equal,
 * and a longer one never does.
 */
int psyc_matches(psyc_str sel, psyc_str kw)
{
    if (!psyc_is_long_kw(sel) || !psyc_is_long_kw(kw) || sel.len > kw.len)
        return 0;
    if (sel.len == kw.len)
        return memcmp(sel.ptr, kw.ptr, sel.len) == 0;

    size_t sp = 1, kp = 1; /* skip the leading `_` of each */
    while (sp < sel.len) {
        size_t sl = psyc_component_len(sel, sp);
        int found = 0;
        while (kp < kw.len) {
            size_t kl = psyc_component_len(kw, kp);
            int eq = kl == sl && memcmp(sel.ptr + sp, kw.ptr + kp, sl) == 0;
            kp += kl + 1; /* past the component and its `_` */
            if (eq) {
                found = 1;
                break;
            }
        }
        if (!found)
            return 0;
        sp += sl + 1;
    }
    return 1;
}

/* The type families of PSYC.md §1.3 (libpsyc variable.c list as given in
 * the brief), kept as read-only data. */
static const psyc_str psyc_var_types[] = {
    PSYC_STR_LIT("_amount"), PSYC_STR_LIT("_color"),    PSYC_STR_LIT("_date"),
    PSYC_STR_LIT("_degree"), PSYC_STR_LIT("_dict"),     PSYC_STR_LIT("_entity"),
    PSYC_STR_LIT("_flag"),   PSYC_STR_LIT("_language"), PSYC_STR_LIT("_list"),
    PSYC_STR_LIT("_nick"),   PSYC_STR_LIT("_page"),     PSYC_STR_LIT("_struct"),
    PSYC_STR_LIT("_time"),   PSYC_STR_LIT("_uniform"),
};

psyc_str psyc_var_type(psyc_str name)
{
    for (size_t i = 0; i < sizeof psyc_var_types / sizeof psyc_var_types[0]; i++)
        if (psyc_inherits(name, psyc_var_types[i]))
            return psyc_var_types[i];
    return (psyc_str){"", 0};
}
