/*
 * parse.c: the PSYC 1.0 parser (PSYC.md §1.1), an explicit state machine in
 * the style of a resumable tokenizer.
 *
 * Determinism rule: every step decides only from bytes that are present, and
 * returns PSYC_EV_MORE without changing state when the decision needs a byte
 * that is not. Every bound (packet size, content length, value size) is
 * checked against the bytes that would be needed, never against what
 * happens to be buffered. So one byte at a time and the whole buffer at once
 * give the same events and the same error at the same offset.
 */
#include "psyc/psyc.h"

#include <string.h>

enum part {
    P_ROUTING,       /* at the start of a routing-header line */
    P_CONTENT_FIRST, /* at the first content line: `=\n` / `?\n` state op */
    P_ENTITY,        /* at the start of an entity line or the method */
    P_BIN_NL,        /* after a binary value: its LF */
    P_DATA,          /* after the method line */
    P_DATA_NL,       /* after length-framed data: its LF */
    P_END,           /* at `|\n` */
    P_FAILED,
};

enum { NEED_MORE = -1000 }; /* internal: not an error, wait for bytes */

/* Byte classes for the hot loops: one table lookup instead of a chain of
 * comparisons per byte. */
enum { C_KW = 1, C_OP = 2, C_DIGIT = 4 };

static const unsigned char byte_class[256] = {
    /* C_KW: [A-Za-z0-9_], C_OP: : = + - ? @ !, C_DIGIT: [0-9] */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 0, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 2, 0, 0, 2, 0, 2,
    2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

static inline int is_kwchar(unsigned char c)
{
    return byte_class[c] & C_KW;
}

static inline int is_digit(unsigned char c)
{
    return byte_class[c] & C_DIGIT;
}

static inline int is_oper(unsigned char c)
{
    return byte_class[c] & C_OP;
}

static void reset_packet_state(psyc_parser *p)
{
    p->part = P_ROUTING;
    p->pos = 0;
    p->content_start = 0;
    p->content_len = 0;
    p->scan_hint = 0;
    p->method_off = p->method_len = 0;
    p->n_mods = 0;
    p->has_length = 0;
    p->has_separator = 0;
}

void psyc_parser_init(psyc_parser *p, const psyc_limits *limits, unsigned flags)
{
    memset(p, 0, sizeof *p);
    psyc_limits_resolve(&p->limits, limits);
    p->flags = flags;
    reset_packet_state(p);
}

size_t psyc_parser_consumed(const psyc_parser *p)
{
    return p->consumed;
}

static int fail(psyc_parser *p, int code, size_t offset)
{
    p->part = P_FAILED;
    p->error = code;
    p->error_offset = offset;
    return code;
}

/* The hard end for a token that starts inside the content: with an explicit
 * length nothing may pass the content end; in any case nothing may pass the
 * packet limit (minus the 2-byte terminator). */
static size_t content_bound(const psyc_parser *p)
{
    size_t lim = p->limits.max_packet;
    if (p->has_length && p->content_start + p->content_len < lim)
        lim = p->content_start + p->content_len;
    return lim;
}

/* Why the search for a byte stopped at `bound`: outside the content if the
 * content length set the bound, else outside the packet limit. */
static int bound_error(const psyc_parser *p, size_t bound)
{
    if (p->has_length && bound == p->content_start + p->content_len && bound < p->limits.max_packet)
        return PSYC_ERR_CONTENT_SHORT;
    return PSYC_ERR_TOO_LARGE;
}

/*
 * Finds the next LF at or after `from`, not at or beyond `bound`.
 * Returns its offset, NEED_MORE, or a negative psyc_err.
 */
static long find_lf(const psyc_parser *p, const char *buf, size_t len, size_t from, size_t bound,
                    size_t value_limit)
{
    size_t stop = bound;
    int by_value = 0;
    if (value_limit != SIZE_MAX && from + value_limit + 1 < stop) {
        stop = from + value_limit + 1; /* the LF may sit right after max bytes */
        by_value = 1;
    }
    size_t avail = len < stop ? len : stop;
    if (from < avail) {
        const char *nl = memchr(buf + from, '\n', avail - from);
        if (nl)
            return nl - buf;
    }
    if (len < stop)
        return NEED_MORE;
    return by_value ? PSYC_ERR_VALUE_TOO_LONG : bound_error(p, bound);
}

/* Keyword at `at`: returns its length (0 if none), or NEED_MORE when the
 * keyword runs to the end of the bytes present, or an error. */
static long scan_keyword(const psyc_parser *p, const char *buf, size_t len, size_t at, size_t bound)
{
    size_t name_end = at + p->limits.max_name + 1; /* first byte that makes it too long */
    size_t stop = len < bound ? len : bound;
    if (name_end < stop)
        stop = name_end;
    size_t i = at;
    while (i < stop && is_kwchar((unsigned char)buf[i]))
        i++;
    if (i < stop)
        return (long)(i - at);
    if (i == name_end)
        return PSYC_ERR_NAME_TOO_LONG;
    if (i == bound)
        return bound_error(p, bound);
    return NEED_MORE;
}

static int count_modifier(psyc_parser *p)
{
    if (p->n_mods >= p->limits.max_modifiers)
        return PSYC_ERR_TOO_MANY;
    p->n_mods++;
    return 0;
}

/* Decimal number of at most 19 digits (fits in size_t on 64-bit and is
 * checked on 32-bit), ending at the first non-digit. */
static long scan_number(const char *buf, size_t len, size_t at, size_t bound, size_t *value)
{
    size_t i = at, v = 0;
    while (i < len && i < bound && is_digit((unsigned char)buf[i])) {
        size_t d = (size_t)(buf[i] - '0');
        if (v > (SIZE_MAX - d) / 10)
            return PSYC_ERR_NUMBER;
        v = v * 10 + d;
        i++;
    }
    if (i == bound)
        return PSYC_ERR_TOO_LARGE;
    if (i == len)
        return NEED_MORE;
    *value = v;
    return (long)(i - at);
}

/*
 * One modifier line at p->pos: `op name TAB value LF`, or in the entity
 * header also `op name SP len TAB <len bytes>` (its LF is P_BIN_NL's).
 * Fills ev->mod; returns 0, NEED_MORE or an error.
 */
static int parse_modifier(psyc_parser *p, const char *buf, size_t len, int entity, psyc_event *ev,
                          int *binary)
{
    size_t bound = entity ? content_bound(p) : p->limits.max_packet;
    size_t at = p->pos;
    long n = scan_keyword(p, buf, len, at + 1, bound);
    if (n < 0)
        return (int)n;
    if (n == 0)
        return PSYC_ERR_MOD_NAME;
    size_t after = at + 1 + (size_t)n;
    psyc_modifier m = {.oper = buf[at], .name = {buf + at + 1, (size_t)n}};
    *binary = 0;
    if (buf[after] == '\t') {
        long nl = find_lf(p, buf, len, after + 1, bound, p->limits.max_value);
        if (nl < 0)
            return (int)nl;
        m.value = (psyc_str){buf + after + 1, (size_t)nl - after - 1};
        m.flags = PSYC_MOD_TEXT;
        p->pos = (size_t)nl + 1;
    } else if (buf[after] == ' ' && entity) {
        size_t vlen = 0;
        long d = scan_number(buf, len, after + 1, bound, &vlen);
        if (d == PSYC_ERR_TOO_LARGE)
            return bound_error(p, bound);
        if (d < 0)
            return (int)d;
        size_t tab = after + 1 + (size_t)d;
        /* a leading zero would not survive re-rendering: refuse it, so every
         * accepted packet renders back to its own bytes */
        if (d == 0 || buf[tab] != '\t' || (d > 1 && buf[after + 1] == '0'))
            return PSYC_ERR_MOD_LEN;
        if (vlen > p->limits.max_value)
            return PSYC_ERR_VALUE_TOO_LONG;
        size_t vstart = tab + 1;
        if (vstart >= bound || vlen >= bound - vstart) /* value + its LF must fit */
            return bound_error(p, bound);
        if (len < vstart + vlen)
            return NEED_MORE;
        m.value = (psyc_str){buf + vstart, vlen};
        m.flags = PSYC_MOD_BINARY;
        p->pos = vstart + vlen;
        *binary = 1;
    } else {
        return PSYC_ERR_MOD_TAB;
    }
    int rc = count_modifier(p);
    if (rc)
        return rc;
    ev->mod = m;
    return 0;
}

/* Routing header line, content-length line, or the terminator. */
static int step_routing(psyc_parser *p, const char *buf, size_t len, psyc_event *ev)
{
    if (p->pos >= len)
        return NEED_MORE;
    unsigned char c = (unsigned char)buf[p->pos];
    if (is_oper(c)) {
        int binary;
        int rc = parse_modifier(p, buf, len, 0, ev, &binary);
        return rc ? rc : PSYC_EV_ROUTING;
    }
    if (is_digit(c)) {
        size_t n = 0;
        long d = scan_number(buf, len, p->pos, p->limits.max_packet, &n);
        if (d < 0)
            return (int)d;
        if (buf[p->pos + (size_t)d] != '\n' || (d > 1 && c == '0'))
            return PSYC_ERR_LENGTH;
        size_t start = p->pos + (size_t)d + 1;
        if (n > p->limits.max_packet || start + n + 2 > p->limits.max_packet)
            return PSYC_ERR_TOO_LARGE;
        p->has_length = 1;
        p->content_len = n;
        p->content_start = start;
        p->has_separator = 1;
        p->pos = start;
        p->part = P_CONTENT_FIRST;
        return 0;
    }
    if (c == '\n') {
        p->has_separator = 1;
        p->content_start = ++p->pos;
        p->part = P_CONTENT_FIRST;
        return 0;
    }
    p->part = P_END; /* no content: routing header then `|\n` (00-no-content) */
    return 0;
}

/*
 * Finds the content end when there is no length: the first `|\n` that
 * starts a line at or after `from` (the LF before it belongs to the last
 * content line). Returns the offset of the `|`, NEED_MORE or an error.
 */
static long find_terminator(psyc_parser *p, const char *buf, size_t len, size_t from)
{
    size_t bound = p->limits.max_packet;
    if (from + 2 <= len && buf[from] == '|' && buf[from + 1] == '\n')
        return (long)from;
    size_t i = from > p->scan_hint ? from : p->scan_hint;
    size_t avail = len < bound ? len : bound;
    while (i + 2 < avail) {
        const char *nl = memchr(buf + i, '\n', avail - 2 - i);
        if (!nl)
            break;
        size_t k = (size_t)(nl - buf);
        if (buf[k + 1] == '|' && buf[k + 2] == '\n')
            return (long)k + 1;
        i = k + 1;
    }
    if (len >= bound)
        return PSYC_ERR_TOO_LARGE;
    /* the last two bytes may begin a terminator: rescan only those */
    p->scan_hint = len >= 2 && len - 2 > i ? len - 2 : i;
    if (p->scan_hint < from)
        p->scan_hint = from;
    return NEED_MORE;
}

static int step_content_first(psyc_parser *p, const char *buf, size_t len, psyc_event *ev)
{
    size_t cs = p->content_start;
    if (p->flags & PSYC_PARSE_ROUTING_ONLY) {
        size_t end;
        if (p->has_length) {
            end = cs + p->content_len;
            if (len < end)
                return NEED_MORE;
        } else {
            long t = find_terminator(p, buf, len, cs);
            if (t < 0)
                return (int)t;
            end = (size_t)t;
        }
        ev->data = (psyc_str){buf + cs, end - cs};
        ev->has_length = p->has_length;
        ev->content_length = p->content_len;
        p->pos = end;
        p->part = P_END;
        return PSYC_EV_CONTENT;
    }
    if (p->has_length && p->pos == cs + p->content_len) {
        p->part = P_END;
        return 0;
    }
    if (p->pos >= len)
        return NEED_MORE;
    char c = buf[p->pos];
    if (c == '=' || c == '?') {
        if (p->pos + 1 >= len)
            return NEED_MORE;
        if (buf[p->pos + 1] == '\n') {
            if (p->has_length && p->pos + 2 > cs + p->content_len)
                return PSYC_ERR_CONTENT_SHORT;
            p->pos += 2;
            p->part = P_ENTITY;
            return c == '=' ? PSYC_EV_STATE_RESET : PSYC_EV_STATE_RESYNC;
        }
    }
    p->part = P_ENTITY;
    return 0;
}

static int step_entity(psyc_parser *p, const char *buf, size_t len, psyc_event *ev)
{
    if (p->has_length && p->pos == p->content_start + p->content_len) {
        p->part = P_END;
        return 0;
    }
    if (p->pos >= len)
        return NEED_MORE;
    unsigned char c = (unsigned char)buf[p->pos];
    if (is_oper(c)) {
        int binary;
        int rc = parse_modifier(p, buf, len, 1, ev, &binary);
        if (rc)
            return rc;
        if (binary)
            p->part = P_BIN_NL;
        return PSYC_EV_ENTITY;
    }
    if (c == '|' && !p->has_length) {
        p->part = P_END; /* entity modifiers without a method (00-no-body) */
        return 0;
    }
    if (!is_kwchar(c))
        return PSYC_ERR_METHOD;
    size_t bound = content_bound(p);
    long n = scan_keyword(p, buf, len, p->pos, bound);
    if (n < 0)
        return (int)n;
    if (buf[p->pos + (size_t)n] != '\n')
        return PSYC_ERR_METHOD;
    p->method_off = p->pos;
    p->method_len = (size_t)n;
    p->pos += (size_t)n + 1;
    p->part = P_DATA;
    return 0;
}

static int step_data(psyc_parser *p, const char *buf, size_t len, psyc_event *ev)
{
    ev->method = (psyc_str){buf + p->method_off, p->method_len};
    ev->data = (psyc_str){buf + p->pos, 0};
    ev->has_data = 0;
    if (p->has_length) {
        size_t end = p->content_start + p->content_len;
        if (p->pos == end) {
            p->part = P_END;
            return PSYC_EV_BODY;
        }
        /* data = everything up to the LF that is the last content byte */
        if (len < end - 1)
            return NEED_MORE;
        ev->data.len = end - 1 - p->pos;
        ev->has_data = 1;
        p->pos = end - 1;
        p->part = P_DATA_NL;
        return PSYC_EV_BODY;
    }
    long t = find_terminator(p, buf, len, p->pos);
    if (t < 0)
        return (int)t;
    if ((size_t)t > p->pos) {
        ev->data.len = (size_t)t - 1 - p->pos;
        ev->has_data = 1;
    }
    p->pos = (size_t)t;
    p->part = P_END;
    return PSYC_EV_BODY;
}

static int step_end(psyc_parser *p, const char *buf, size_t len, psyc_event *ev)
{
    if (p->pos >= len)
        return NEED_MORE;
    if (buf[p->pos] != '|')
        return PSYC_ERR_END;
    if (p->pos + 2 > p->limits.max_packet)
        return PSYC_ERR_TOO_LARGE;
    if (p->pos + 1 >= len)
        return NEED_MORE;
    if (buf[p->pos + 1] != '\n')
        return PSYC_ERR_END;
    memset(ev, 0, sizeof *ev);
    ev->has_length = p->has_length;
    ev->content_length = p->content_len;
    ev->has_separator = p->has_separator;
    p->consumed = p->pos + 2;
    reset_packet_state(p);
    return PSYC_EV_COMPLETE;
}

int psyc_parse_next(psyc_parser *p, const char *buf, size_t len, psyc_event *ev)
{
    if (p->part == P_FAILED)
        return p->error;
    for (;;) {
        size_t at = p->pos;
        int rc;
        switch (p->part) {
        case P_ROUTING: rc = step_routing(p, buf, len, ev); break;
        case P_CONTENT_FIRST: rc = step_content_first(p, buf, len, ev); break;
        case P_ENTITY: rc = step_entity(p, buf, len, ev); break;
        case P_BIN_NL:
        case P_DATA_NL:
            if (p->pos >= len)
                return PSYC_EV_MORE;
            if (buf[p->pos] != '\n')
                return fail(p, p->part == P_BIN_NL ? PSYC_ERR_MOD_NL : PSYC_ERR_END, p->pos);
            p->pos++;
            p->part = p->part == P_BIN_NL ? P_ENTITY : P_END;
            continue;
        case P_DATA: rc = step_data(p, buf, len, ev); break;
        case P_END: rc = step_end(p, buf, len, ev); break;
        default: return p->error;
        }
        if (rc == NEED_MORE)
            return PSYC_EV_MORE;
        if (rc < 0)
            return fail(p, rc, at);
        if (rc > 0)
            return rc;
    }
}

int psyc_parse_packet(psyc_parser *p, const char *buf, size_t len, psyc_packet *out, size_t *used)
{
    /* Re-derive views from the packet start on every call (the caller may
     * have moved the buffer), but keep scan_hint: a body is never rescanned. */
    size_t hint = p->scan_hint;
    if (p->part == P_FAILED)
        return p->error;
    reset_packet_state(p);
    p->scan_hint = hint;
    psyc_packet_reset(out);
    for (;;) {
        psyc_event ev;
        int rc = psyc_parse_next(p, buf, len, &ev);
        switch (rc) {
        case PSYC_EV_MORE:
            return 0;
        case PSYC_EV_ROUTING:
        case PSYC_EV_ENTITY:
            if (psyc_packet_push_modifier(out, rc == PSYC_EV_ROUTING, &ev.mod))
                return fail(p, PSYC_ERR_NOMEM, p->pos);
            break;
        case PSYC_EV_STATE_RESET: out->state_op = '='; break;
        case PSYC_EV_STATE_RESYNC: out->state_op = '?'; break;
        case PSYC_EV_BODY:
            out->method = ev.method;
            out->data = ev.data;
            if (ev.has_data)
                out->flags |= PSYC_PKT_HAS_DATA;
            break;
        case PSYC_EV_CONTENT:
            out->content = ev.data;
            out->flags |= PSYC_PKT_OPAQUE;
            break;
        case PSYC_EV_COMPLETE:
            out->content_length = ev.content_length;
            out->flags |= ev.has_length ? PSYC_PKT_CONTENT_LENGTH : PSYC_PKT_NO_CONTENT_LENGTH;
            if (ev.has_separator)
                out->flags |= PSYC_PKT_SEPARATOR;
            *used = p->consumed;
            return 1;
        default:
            return rc;
        }
    }
}
