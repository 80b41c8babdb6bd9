/*
 * render09.c: renders a packet in psyced's classic PSYC 0.9 syntax
 * (PSYC.md §2.2), the inverse of parse09.c:
 *
 *   <oper><name>\t<value>\n     routing modifiers
 *   \n                          blank line (when needed, see below)
 *   <oper><name>\t<value>\n     entity modifiers; "\n" in a value -> "\n\t"
 *   <oper>\t<elem>\n            second and later elements of a list variable
 *   _method\n  body\n  .\n
 *
 * render09(parse09(x)) == x for every packet psyced writes (the vectors and
 * captures), and parse09(render09(p)) == p for every packet render09
 * accepts; tests/unit/test_psyc09.c checks both.
 */
#include "psyc/psyc.h"
#include "psyc/psyc09_int.h"

#include <string.h>

/* Value with TAB continuation lines: "\n" -> "\n\t" (psyced render.i:
 * replace(val, "\n", "\n\t")). */
static int psyc09_put_value(psyc_buf *out, psyc_str v)
{
    size_t i = 0;
    while (i < v.len) {
        const char *lf = memchr(v.ptr + i, '\n', v.len - i);
        size_t end = lf ? (size_t)(lf - v.ptr) + 1 : v.len;
        if (psyc_buf_append(out, v.ptr + i, end - i))
            return PSYC_ERR_NOMEM;
        if (lf && psyc_buf_putc(out, '\t'))
            return PSYC_ERR_NOMEM;
        i = end;
    }
    return 0;
}

static int psyc09_put_line(psyc_buf *out, char oper, psyc_str name, psyc_str value)
{
    if (psyc_buf_putc(out, oper) || psyc_buf_append(out, name.ptr, name.len) ||
        psyc_buf_putc(out, '\t'))
        return PSYC_ERR_NOMEM;
    int rc = psyc09_put_value(out, value);
    if (rc)
        return rc;
    return psyc_buf_putc(out, '\n') ? PSYC_ERR_NOMEM : 0;
}

/* A list variable (psyc_var_is_list) holds a 1.0 list value (§1.3); 0.9
 * writes its first element on the named line and each further one on an
 * unnamed `<oper>\t<elem>` line (§2.2, captures 4-place/15). 0.9 has no
 * element types: a typed list cannot be expressed. */
static int psyc09_put_list(psyc_buf *out, const psyc_modifier *m)
{
    psyc_list_parser lp;
    psyc_list_elem e;
    int first = 1;
    psyc_list_parser_init(&lp, m->value);
    for (;;) {
        psyc_list_rc lrc = psyc_list_next(&lp, &e);
        if (lrc == PSYC_LIST_END)
            break;
        if (lrc == PSYC_LIST_TYPE)
            return PSYC_ERR_UNRENDERABLE;
        if (lrc != PSYC_LIST_ELEM)
            return PSYC_ERR_INVALID; /* malformed list value */
        if (e.type.len)
            return PSYC_ERR_UNRENDERABLE;
        int rc = psyc09_put_line(out, m->oper, first ? m->name : PSYC_STR_NULL, e.value);
        if (rc)
            return rc;
        first = 0;
    }
    /* the empty list: the named line with nothing after the TAB */
    return first ? psyc09_put_line(out, m->oper, m->name, PSYC_STR_NULL) : 0;
}

static int psyc09_put_modifier(psyc_buf *out, const psyc_modifier *m, int routing)
{
    if (!psyc_is_operator(m->oper) || !psyc_is_keyword(m->name))
        return PSYC_ERR_INVALID;
    /* Routing values cannot hold LF (PSYC.md §1.1 item 1); parse09 refuses
     * continued routing values, so this keeps the two in step. */
    if (routing && m->value.len && memchr(m->value.ptr, '\n', m->value.len))
        return PSYC_ERR_INVALID;
    if (psyc_var_is_list(m->name))
        return psyc09_put_list(out, m);
    return psyc09_put_line(out, m->oper, m->name, m->value);
}

/* The blank line. psyced always writes it before entity variables and
 * the method; parse09 records whether it was there (PSYC_PKT_SEPARATOR /
 * PSYC_PKT_NO_SEPARATOR). Without it the parser splits the variables by
 * name (psyc09_is_routing_var), so it is needed whenever that split would
 * come out differently. */
static int psyc09_needs_separator(const psyc_packet *p)
{
    if (p->flags & PSYC_PKT_SEPARATOR)
        return 1;
    for (size_t i = 0; i < p->n_routing; i++)
        if (!psyc09_is_routing_var(p->routing[i].name))
            return 1;
    for (size_t i = 0; i < p->n_entity; i++)
        if (psyc09_is_routing_var(p->entity[i].name))
            return 1;
    if (p->flags & PSYC_PKT_NO_SEPARATOR)
        return 0;
    return p->n_entity > 0 || p->method.ptr != NULL;
}

/* A body line that is exactly "." would end the packet early (EXPECTED.txt
 * o08); psyced censors such bodies (PSYC.md §2.2), we refuse them. */
static int psyc09_has_dot_line(psyc_str d)
{
    size_t i = 0;
    for (;;) {
        const char *lf = d.len > i ? memchr(d.ptr + i, '\n', d.len - i) : NULL;
        size_t end = lf ? (size_t)(lf - d.ptr) : d.len;
        if (end - i == 1 && d.ptr[i] == '.')
            return 1;
        if (!lf)
            return 0;
        i = end + 1;
    }
}

static int psyc09_render_all(const psyc_packet *p, psyc_buf *out)
{
    int rc;
    int has_data = (p->flags & PSYC_PKT_HAS_DATA) || p->data.len;

    /* What 0.9 cannot carry: routing-only opaque content, 1.0 state
     * operations (§1.1 item 3), methods that are not `_`-keywords (psyced
     * reads those as compact methods and croaks) and lone-dot body lines. */
    if (p->flags & PSYC_PKT_OPAQUE || p->state_op)
        return PSYC_ERR_UNRENDERABLE;
    if (p->method.ptr) {
        if (!psyc_is_keyword(p->method))
            return PSYC_ERR_INVALID;
        if (p->method.ptr[0] != '_')
            return PSYC_ERR_UNRENDERABLE;
    } else if (has_data) {
        return PSYC_ERR_INVALID; /* a body needs a method */
    }
    if (has_data && psyc09_has_dot_line(p->data))
        return PSYC_ERR_UNRENDERABLE;

    for (size_t i = 0; i < p->n_routing; i++)
        if ((rc = psyc09_put_modifier(out, &p->routing[i], 1)))
            return rc;
    if (psyc09_needs_separator(p) && psyc_buf_putc(out, '\n'))
        return PSYC_ERR_NOMEM;
    for (size_t i = 0; i < p->n_entity; i++)
        if ((rc = psyc09_put_modifier(out, &p->entity[i], 0)))
            return rc;
    if (p->method.ptr) {
        if (psyc_buf_append(out, p->method.ptr, p->method.len) || psyc_buf_putc(out, '\n'))
            return PSYC_ERR_NOMEM;
        /* Body lines go out as they are: data joined with "\n" is the wire
         * form (parse09 keeps it as a view for the same reason). */
        if (has_data && (psyc_buf_append(out, p->data.ptr, p->data.len) || psyc_buf_putc(out, '\n')))
            return PSYC_ERR_NOMEM;
    }
    return psyc_buf_append(out, ".\n", 2) ? PSYC_ERR_NOMEM : 0;
}

int psyc_render09(const psyc_packet *p, psyc_buf *out)
{
    size_t start = out->len;
    int rc = psyc09_render_all(p, out);
    if (rc) {
        out->len = start; /* nothing appended on error */
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}
