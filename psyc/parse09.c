/*
 * parse09.c: psyced's classic PSYC 0.9 syntax (PSYC.md §2.2, §9), parsed
 * into the same packet model as PSYC 1.0.
 *
 * The syntax is line based: every line ends in LF, a line that is exactly
 * "." ends the packet.
 *
 *   <glyph><name>\t<value>   variable (glyph one of `: = + - ? @ !`);
 *                            psyced also takes SP instead of TAB, and
 *                            `<glyph><name>` alone as an empty value
 *   \t<text> or SP<text>     continues the previous value ("\n" + text)
 *   <glyph>\t<value>         empty name: one more element of a list
 *   (empty line)             the first one ends the routing modifiers
 *   _method                  then every line up to "." is the body
 *
 * Buffer contract (psyc.h): `buf` always starts at the current packet and
 * only grows until the packet completes, but may move between calls. So
 * nothing that points into `buf` survives a call: between calls the parser
 * keeps offsets and a few flags (the offset of the first unparsed line, the
 * resume point of the LF search, the line machine's state), which are enough
 * to check every line once, as it completes. The packet is built ("materi-
 * alised") from a buffer that cannot move under it: on the fly when the
 * whole packet arrives in one call (the usual case on a socket), otherwise
 * by one more pass over the complete packet in the call that completes it.
 * So the work stays linear whatever the chunking (each line is checked as
 * it completes, never rescanned by later calls, and built once), and as
 * both passes run the same line machine, feeding one byte at a time gives
 * exactly the packets and errors of the whole buffer.
 *
 * Limits (psyc_limits): max_name bounds variable and method names;
 * max_value bounds a value as it is on the wire (its lines joined, one byte
 * per line break or further list element; the stored list form adds a few
 * bytes per element) and each body line; max_modifiers counts variable
 * lines (list elements are not modifiers); max_packet counts every byte up
 * to and including the "." line.
 *
 * Errors are decided per complete line, in line order, except that a line
 * reaching past limits.max_packet is PSYC_ERR_TOO_LARGE as soon as the
 * packet holds max_packet + 1 bytes; a complete line that crosses the limit
 * gets the same error, so the outcome does not depend on the chunking.
 */
#include "psyc/psyc.h"
#include "psyc/psyc09_int.h"

#include <string.h>

/* p->state: phase in the low bits, flags above. */
enum {
    PH_ROUTING = 0, /* before the blank line (or no blank line at all) */
    PH_ENTITY = 1,  /* after the blank line */
    PH_BODY = 2,    /* after the method line */
    ST_PHASE = 3,
    ST_SEP = 1 << 2,       /* the blank line was seen */
    ST_VAR = 1 << 3,       /* a variable is open: continuations extend it */
    ST_VAR_TABLE = 1 << 4, /* ... and its name is in the routing table */
    ST_DATA = 1 << 5,      /* at least one body line */
};

/* psyced's shared_memory("routing") (PSYC.md §4.1) and _target_peer, which
 * psyced sends before the blank line of its greeting (§2.2). */
#define R(s) PSYC_STR_LIT(s)
static const psyc_str psyc09_routing_vars[] = {
    R("_amount_fragments"), R("_context"), R("_count"), R("_counter"), R("_fragment"),
    R("_length"), R("_source"), R("_source_identification"), R("_source_relay"),
    R("_source_relay_relay"), R("_tag"), R("_tag_relay"), R("_tag_reply"), R("_target"),
    R("_target_forward"), R("_target_peer"), R("_target_relay"), R("_understand_modules"),
    R("_using_modules"),
};
#undef R

int psyc09_is_routing_var(psyc_str name)
{
    size_t n = sizeof psyc09_routing_vars / sizeof psyc09_routing_vars[0];
    for (size_t i = 0; i < n; i++)
        if (psyc_str_eq(name, psyc09_routing_vars[i]))
            return 1;
    return 0;
}

static int psyc09_is_kwchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static size_t psyc09_kw_span(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && psyc09_is_kwchar(s[i]))
        i++;
    return i;
}

/* ------------------------------------------------------------------ */
/* Materialising: builds `out` while the line machine runs over a buffer
 * that stays put for the whole pass. A variable is pushed when it ends
 * (next variable, blank line, method or "."), because continuation lines
 * may still extend it. */

typedef struct psyc09_mat {
    psyc_packet *out;
    psyc_buf elem;     /* current element/value when it spans lines */
    psyc_buf list;     /* list form of the elements before the current one */
    int active;        /* a variable is open */
    int routing;       /* it came before the blank line */
    int multi;         /* current element is in `elem`, not `cur` */
    int listed;        /* list continuations were seen: value in list form */
    char oper;
    psyc_str name;
    psyc_str cur;      /* current element/value as a view into buf */
    size_t body_start; /* offset of the first body line */
} psyc09_mat;

static void psyc09_mat_init(psyc09_mat *m, psyc_packet *out)
{
    memset(m, 0, sizeof *m);
    m->out = out;
    psyc_buf_init(&m->elem);
    psyc_buf_init(&m->list);
}

static void psyc09_mat_free(psyc09_mat *m)
{
    psyc_buf_free(&m->elem);
    psyc_buf_free(&m->list);
}

static psyc_str psyc09_mat_elem(const psyc09_mat *m)
{
    return m->multi ? (psyc_str){m->elem.data, m->elem.len} : m->cur;
}

static void psyc09_mat_open(psyc09_mat *m, int routing, char oper, psyc_str name, psyc_str value)
{
    m->active = 1;
    m->routing = routing;
    m->multi = 0;
    m->listed = 0;
    m->oper = oper;
    m->name = name;
    m->cur = value;
    m->elem.len = 0;
    m->list.len = 0;
}

/* TAB continuation (§2.2): "\n" + the line without its first char,
 * appended to the current value (or list element). */
static int psyc09_mat_continue(psyc09_mat *m, psyc_str text)
{
    if (!m->multi) {
        m->elem.len = 0;
        if (psyc_buf_append(&m->elem, m->cur.ptr, m->cur.len))
            return PSYC_ERR_NOMEM;
        m->multi = 1;
    }
    if (psyc_buf_putc(&m->elem, '\n') || psyc_buf_append(&m->elem, text.ptr, text.len))
        return PSYC_ERR_NOMEM;
    return 0;
}

/* `<glyph>\t<value>`: the previous variable becomes a list (§2.2, §9);
 * elements are kept in 1.0 list form (§1.3) so both syntaxes share one
 * packet model. */
static int psyc09_mat_list(psyc09_mat *m, psyc_str value)
{
    int rc = psyc_list_append(&m->list, psyc09_mat_elem(m));
    if (rc)
        return rc;
    m->listed = 1;
    m->multi = 0;
    m->cur = value;
    return 0;
}

static int psyc09_mat_close(psyc09_mat *m)
{
    if (!m->active)
        return 0;
    m->active = 0;
    psyc_modifier mod = {.oper = m->oper, .flags = PSYC_MOD_AUTO, .name = m->name};
    psyc_str v = psyc09_mat_elem(m);
    if (m->listed || psyc_var_is_list(m->name)) {
        if (!m->listed && v.len == 0) {
            /* `:_list_x\t` alone is the empty list, as psyced's conclude()
             * reads it and as render09 writes it. */
            mod.value = v;
        } else {
            int rc = psyc_list_append(&m->list, v);
            if (rc)
                return rc;
            char *d = psyc_arena_dup(&m->out->arena, m->list.data, m->list.len);
            if (!d)
                return PSYC_ERR_NOMEM;
            mod.value = (psyc_str){d, m->list.len};
        }
    } else if (m->multi) {
        char *d = psyc_arena_dup(&m->out->arena, m->elem.data, m->elem.len);
        if (!d)
            return PSYC_ERR_NOMEM;
        mod.value = (psyc_str){d, m->elem.len};
    } else {
        mod.value = v; /* zero-copy */
    }
    return psyc_packet_push_modifier(m->out, m->routing, &mod);
}

/* Without a blank line psyced's parser does not know which variables are
 * routing ones either; it decides by name (§2.2, §4.1). Everything was
 * pushed as routing; move the others, in order, to the entity list. */
static int psyc09_mat_split_by_name(psyc_packet *out)
{
    size_t keep = 0;
    for (size_t i = 0; i < out->n_routing; i++) {
        psyc_modifier mod = out->routing[i];
        if (psyc09_is_routing_var(mod.name)) {
            out->routing[keep++] = mod;
        } else {
            int rc = psyc_packet_push_modifier(out, 0, &mod);
            if (rc)
                return rc;
        }
    }
    out->n_routing = keep;
    return 0;
}

/* The "." line at `off` ends the packet. */
static int psyc09_mat_finish(psyc09_mat *m, const psyc09_parser *p, const char *buf, size_t off)
{
    int rc = psyc09_mat_close(m);
    if (rc)
        return rc;
    psyc_packet *out = m->out;
    if (p->state & ST_DATA) {
        /* Body lines are joined with "\n": exactly the bytes on the wire
         * from the first body line to the LF before ".", so a view. */
        out->data = (psyc_str){buf + m->body_start, off - 1 - m->body_start};
        out->flags |= PSYC_PKT_HAS_DATA;
    }
    if (p->state & ST_SEP) {
        out->flags |= PSYC_PKT_SEPARATOR;
        return 0;
    }
    out->flags |= PSYC_PKT_NO_SEPARATOR;
    return psyc09_mat_split_by_name(out);
}

/* ------------------------------------------------------------------ */
/* The line machine. Returns 1 at the "." line, 0 to go on, <0 an error
 * (p->error_offset set). m == NULL: check only. */

static int psyc09_fail(psyc09_parser *p, int code, size_t offset)
{
    p->error = code;
    p->error_offset = offset;
    return code;
}

/* Ends the open variable. */
static int psyc09_close(psyc09_parser *p, psyc09_mat *m)
{
    p->state &= ~(ST_VAR | ST_VAR_TABLE);
    return m ? psyc09_mat_close(m) : 0;
}

static int psyc09_grow_value(psyc09_parser *p, size_t add, size_t off)
{
    if (add > p->limits.max_value - p->value_len)
        return psyc09_fail(p, PSYC_ERR_VALUE_TOO_LONG, off);
    p->value_len += add;
    return 0;
}

static int psyc09_line(psyc09_parser *p, const char *buf, size_t off, size_t eol, psyc09_mat *m)
{
    const char *s = buf + off;
    size_t n = eol - off;
    int rc;

    if ((p->state & ST_PHASE) == PH_BODY) {
        if (n == 1 && s[0] == '.') {
            if (m && (rc = psyc09_mat_finish(m, p, buf, off)))
                return psyc09_fail(p, rc, off);
            return 1;
        }
        if (n > p->limits.max_value)
            return psyc09_fail(p, PSYC_ERR_VALUE_TOO_LONG, off);
        if (m && !(p->state & ST_DATA))
            m->body_start = off;
        p->state |= ST_DATA;
        return 0;
    }

    if (n == 0) {
        /* The first blank line ends the routing modifiers; psyced ignores
         * further ones (parse.i), and so do we. Either way it ends the
         * open variable. */
        if ((rc = psyc09_close(p, m)))
            return psyc09_fail(p, rc, off);
        if (!(p->state & ST_SEP)) {
            /* Now every variable so far is routing, and routing values
             * cannot hold LF (PSYC.md §1.1 item 1; psyc_packet_add_routing
             * refuses it too): blame the first continuation line. */
            if (p->lf_routing)
                return psyc09_fail(p, PSYC_ERR_INVALID, p->lf_routing - 1);
            p->state = (p->state & ~ST_PHASE) | PH_ENTITY | ST_SEP;
        }
        return 0;
    }

    char c = s[0];
    if (n == 1 && c == '.') {
        /* end of a packet without a method */
        if (m && (rc = psyc09_mat_finish(m, p, buf, off)))
            return psyc09_fail(p, rc, off);
        return 1;
    }

    if (c == '\t' || c == ' ') {
        /* value continuation; psyced prefers TAB and takes SP (parse.i) */
        if (!(p->state & ST_VAR))
            return psyc09_fail(p, PSYC_ERR_CONTINUATION, off);
        if ((p->state & ST_PHASE) == PH_ROUTING) {
            /* Before the blank line the variable is routing if the name is
             * in the table, or if a blank line follows after all. */
            if (p->state & ST_VAR_TABLE)
                return psyc09_fail(p, PSYC_ERR_INVALID, off);
            if (!p->lf_routing)
                p->lf_routing = off + 1;
        }
        if ((rc = psyc09_grow_value(p, n, off)))
            return rc;
        if (m && (rc = psyc09_mat_continue(m, (psyc_str){s + 1, n - 1})))
            return psyc09_fail(p, rc, off);
        return 0;
    }

    if (psyc_is_operator(c)) {
        size_t k = psyc09_kw_span(s + 1, n - 1);
        size_t at = 1 + k;
        psyc_str value = {s + n, 0};
        if (at < n) {
            if (s[at] != '\t' && s[at] != ' ')
                return psyc09_fail(p, k ? PSYC_ERR_MOD_TAB : PSYC_ERR_MOD_NAME, off);
            value = (psyc_str){s + at + 1, n - at - 1};
        }
        if (k == 0) {
            /* `<glyph>\t<value>`: list continuation (§2.2). Its glyph is
             * not stored: psyced's listAppend() ignores it as well. */
            if (at == n)
                return psyc09_fail(p, PSYC_ERR_MOD_NAME, off);
            if (!(p->state & ST_VAR))
                return psyc09_fail(p, PSYC_ERR_CONTINUATION, off);
            if ((rc = psyc09_grow_value(p, 1 + value.len, off)))
                return rc;
            if (m && (rc = psyc09_mat_list(m, value)))
                return psyc09_fail(p, rc, off);
            return 0;
        }
        psyc_str name = {s + 1, k};
        if (k > p->limits.max_name)
            return psyc09_fail(p, PSYC_ERR_NAME_TOO_LONG, off);
        if ((rc = psyc09_close(p, m)))
            return psyc09_fail(p, rc, off);
        if (p->n_mods >= p->limits.max_modifiers)
            return psyc09_fail(p, PSYC_ERR_TOO_MANY, off);
        p->n_mods++;
        if (value.len > p->limits.max_value)
            return psyc09_fail(p, PSYC_ERR_VALUE_TOO_LONG, off);
        p->value_len = value.len;
        p->state |= ST_VAR;
        if (psyc09_is_routing_var(name))
            p->state |= ST_VAR_TABLE;
        if (m)
            psyc09_mat_open(m, !(p->state & ST_SEP), c, name, value);
        return 0;
    }

    if (c == '_') {
        /* the method (§2.2): psyced requires legal_keyword() */
        if (psyc09_kw_span(s, n) != n)
            return psyc09_fail(p, PSYC_ERR_METHOD, off);
        if (n > p->limits.max_name)
            return psyc09_fail(p, PSYC_ERR_NAME_TOO_LONG, off);
        if ((rc = psyc09_close(p, m)))
            return psyc09_fail(p, rc, off);
        if (m)
            m->out->method = (psyc_str){s, n};
        p->state = (p->state & ~ST_PHASE) | PH_BODY;
        return 0;
    }

    /* Anything else: psyced croaks _error_invalid_method_compact for every
     * such line (EXPECTED.txt o08, captures README). We tell a would-be
     * compact method (a bare keyword, like o08's "second") from junk. */
    return psyc09_fail(p, psyc09_kw_span(s, n) == n ? PSYC_ERR_METHOD_COMPACT : PSYC_ERR_SYNTAX09, off);
}

/* Runs the line machine over every complete line from p->pos on. */
static int psyc09_run(psyc09_parser *p, const char *buf, size_t len, psyc09_mat *m, size_t *used)
{
    for (;;) {
        size_t off = p->pos;
        size_t from = p->scan > off ? p->scan : off;
        const char *lf = from < len ? memchr(buf + from, '\n', len - from) : NULL;
        if (!lf) {
            if (len > p->limits.max_packet)
                return psyc09_fail(p, PSYC_ERR_TOO_LARGE, off);
            p->scan = len; /* resume the LF search here next time */
            return 0;
        }
        size_t eol = (size_t)(lf - buf);
        if (eol >= p->limits.max_packet) /* this line's LF is byte max_packet + 1 or later */
            return psyc09_fail(p, PSYC_ERR_TOO_LARGE, off);
        int rc = psyc09_line(p, buf, off, eol, m);
        if (rc < 0)
            return rc;
        p->pos = p->scan = eol + 1;
        if (rc == 1) {
            *used = eol + 1;
            return 1;
        }
    }
}

static void psyc09_reset_packet(psyc09_parser *p)
{
    p->pos = 0;
    p->state = 0;
    p->scan = 0;
    p->value_len = 0;
    p->lf_routing = 0;
    p->n_mods = 0;
}

void psyc09_parser_init(psyc09_parser *p, const psyc_limits *limits)
{
    memset(p, 0, sizeof *p);
    psyc_limits_resolve(&p->limits, limits);
    psyc09_reset_packet(p);
}

int psyc09_parse_packet(psyc09_parser *p, const char *buf, size_t len, psyc_packet *out, size_t *used)
{
    if (p->error)
        return p->error; /* sticky: the stream is out of sync */

    psyc09_mat m;
    /* Nothing of this packet was checked in an earlier call: build `out`
     * on the fly (if the packet does not complete, the next call rebuilds
     * it, since then `buf` may have moved). */
    int fresh = p->pos == 0;
    size_t n = 0;
    if (fresh) {
        psyc_packet_reset(out);
        psyc09_mat_init(&m, out);
    }
    int rc = psyc09_run(p, buf, len, fresh ? &m : NULL, &n);
    if (rc == 1 && !fresh) {
        /* The packet was checked line by line over several calls; build it
         * from the buffer it is complete in. Same machine, fresh state: it
         * cannot fail but for memory. */
        psyc09_parser q;
        size_t n2 = 0;
        psyc09_parser_init(&q, &p->limits);
        psyc_packet_reset(out);
        psyc09_mat_init(&m, out);
        int rc2 = psyc09_run(&q, buf, n, &m, &n2);
        if (rc2 != 1) {
            rc = psyc09_fail(p, rc2 < 0 ? rc2 : PSYC_ERR_NOMEM, q.error_offset);
        }
        fresh = 1; /* m to free */
    }
    if (fresh)
        psyc09_mat_free(&m);
    if (rc == 1) {
        *used = n;
        psyc09_reset_packet(p);
    }
    return rc;
}
