/*
 * date.c: `_date` values (PSYC.md §1.3): on the wire, seconds relative to
 * PSYC_EPOCH (unix time 1440444041). Values come from peers, so every
 * conversion saturates instead of overflowing (signed overflow is UB).
 */
#include "psyc/psyc.h"

int64_t psyc_date_to_unix(int64_t wire)
{
    /* PSYC_EPOCH > 0: only the upper end can overflow. */
    if (wire > INT64_MAX - PSYC_EPOCH)
        return INT64_MAX;
    return wire + PSYC_EPOCH;
}

int64_t psyc_date_from_unix(int64_t unix_time)
{
    if (unix_time < INT64_MIN + PSYC_EPOCH)
        return INT64_MIN;
    return unix_time - PSYC_EPOCH;
}

/*
 * [+-]1*DIGIT, nothing else (no blanks, no hex). Accumulates towards the
 * negative side so INT64_MIN parses without overflow, checking each step
 * before it happens.
 */
int psyc_parse_int64(psyc_str s, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    int64_t acc = 0;

    if (s.len == 0 || s.ptr == NULL)
        return PSYC_ERR_NUMBER;
    if (s.ptr[0] == '-' || s.ptr[0] == '+') {
        neg = s.ptr[0] == '-';
        i = 1;
    }
    if (i == s.len)
        return PSYC_ERR_NUMBER;
    for (; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < '0' || c > '9')
            return PSYC_ERR_NUMBER;
        int d = c - '0';
        if (acc < (INT64_MIN + d) / 10)
            return PSYC_ERR_NUMBER;
        acc = acc * 10 - d;
    }
    if (!neg) {
        if (acc == INT64_MIN)
            return PSYC_ERR_NUMBER;
        acc = -acc;
    }
    *out = acc;
    return 0;
}
