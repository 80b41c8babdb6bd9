/* list.c: PSYC list values as libpsyc's parser reads them (PSYC.md §1.3):
 *   list = [ default-type ] *( "|" elem )
 *   elem = [ "=" type [ ":" length ] ] [ length ] [ SP value ]
 * A value without a length runs to the next "|"; one with a length is
 * exactly that many bytes and may hold "|" or LF. */
#include "psyc/psyc.h"

#include <string.h>

/* LIST_BAD: the default type was reported; the next call reports the
 * error after it, so traces match libpsyc's (vector err-02-list). */
enum { LIST_START, LIST_AT_BAR, LIST_BAD, LIST_DONE };

int psyc_var_is_list(psyc_str name)
{
    static const char prefix[] = "_list";
    size_t n = sizeof prefix - 1;
    if (name.len < n || memcmp(name.ptr, prefix, n) != 0)
        return 0;
    return name.len == n || name.ptr[n] == '_';
}

void psyc_list_parser_init(psyc_list_parser *lp, psyc_str value)
{
    lp->value = value;
    lp->pos = 0;
    lp->state = LIST_START;
}

static int is_kwchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static size_t span_kw(const psyc_list_parser *lp, size_t at)
{
    size_t i = at;
    while (i < lp->value.len && is_kwchar(lp->value.ptr[i]))
        i++;
    return i - at;
}

/* Reads a decimal length at lp->pos; -1 when absent or too large. */
static int read_len(psyc_list_parser *lp, size_t *out)
{
    size_t v = 0, start = lp->pos;
    while (lp->pos < lp->value.len && lp->value.ptr[lp->pos] >= '0' && lp->value.ptr[lp->pos] <= '9') {
        size_t d = (size_t)(lp->value.ptr[lp->pos] - '0');
        if (v > (SIZE_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        lp->pos++;
    }
    if (lp->pos == start)
        return -1;
    *out = v;
    return 0;
}

static psyc_list_rc fail(psyc_list_parser *lp)
{
    lp->state = LIST_DONE;
    return PSYC_LIST_ERROR;
}

static psyc_list_rc parse_elem(psyc_list_parser *lp, psyc_list_elem *elem)
{
    const char *v = lp->value.ptr;
    size_t end = lp->value.len;
    size_t len = 0;
    int has_len = 0;

    lp->pos++; /* the "|" */
    elem->type = PSYC_STR_NULL;
    elem->value = (psyc_str){v + lp->pos, 0};
    elem->has_length = 0;

    if (lp->pos < end && v[lp->pos] == '=') {
        size_t n = span_kw(lp, lp->pos + 1);
        if (n == 0)
            return fail(lp);
        elem->type = (psyc_str){v + lp->pos + 1, n};
        lp->pos += 1 + n;
        if (lp->pos < end && v[lp->pos] == ':') {
            lp->pos++;
            if (read_len(lp, &len) != 0)
                return fail(lp);
            has_len = 1;
        }
    } else if (lp->pos < end && v[lp->pos] >= '0' && v[lp->pos] <= '9') {
        if (read_len(lp, &len) != 0)
            return fail(lp);
        has_len = 1;
    }

    if (lp->pos == end || v[lp->pos] == '|') {
        if (has_len && len > 0)
            return fail(lp); /* a length promises a value */
    } else if (v[lp->pos] == ' ') {
        lp->pos++;
        if (has_len) {
            elem->has_length = 1;
            if (len > end - lp->pos) {
                elem->value = (psyc_str){v + lp->pos, end - lp->pos};
                lp->pos = end;
                lp->state = LIST_DONE;
                return PSYC_LIST_TRUNCATED;
            }
            elem->value = (psyc_str){v + lp->pos, len};
            lp->pos += len;
            if (lp->pos < end && v[lp->pos] != '|')
                return fail(lp);
        } else {
            const char *bar = memchr(v + lp->pos, '|', end - lp->pos);
            size_t stop = bar ? (size_t)(bar - v) : end;
            elem->value = (psyc_str){v + lp->pos, stop - lp->pos};
            lp->pos = stop;
        }
    } else {
        return fail(lp);
    }
    lp->state = lp->pos == end ? LIST_DONE : LIST_AT_BAR;
    return PSYC_LIST_ELEM;
}

psyc_list_rc psyc_list_next(psyc_list_parser *lp, psyc_list_elem *elem)
{
    const char *v = lp->value.ptr;
    switch (lp->state) {
    case LIST_START:
        if (lp->value.len == 0) {
            lp->state = LIST_DONE;
            return PSYC_LIST_END;
        }
        if (v[0] != '|') {
            size_t n = span_kw(lp, 0);
            if (n == 0)
                return fail(lp);
            elem->type = (psyc_str){v, n};
            elem->value = PSYC_STR_NULL;
            elem->has_length = 0;
            lp->pos = n;
            if (lp->pos == lp->value.len)
                lp->state = LIST_DONE;
            else if (v[lp->pos] == '|')
                lp->state = LIST_AT_BAR;
            else
                lp->state = LIST_BAD;
            return PSYC_LIST_TYPE;
        }
        return parse_elem(lp, elem);
    case LIST_AT_BAR:
        return parse_elem(lp, elem);
    case LIST_BAD:
        return fail(lp);
    default:
        return PSYC_LIST_END;
    }
}

int psyc_list_append(psyc_buf *out, psyc_str elem)
{
    int needs_len = (elem.len && (memchr(elem.ptr, '|', elem.len) || memchr(elem.ptr, '\n', elem.len)));
    if (psyc_buf_putc(out, '|'))
        return PSYC_ERR_NOMEM;
    if (elem.len == 0)
        return 0;
    if (needs_len && psyc_buf_put_size(out, elem.len))
        return PSYC_ERR_NOMEM;
    if (psyc_buf_putc(out, ' ') || psyc_buf_append(out, elem.ptr, elem.len))
        return PSYC_ERR_NOMEM;
    return 0;
}
