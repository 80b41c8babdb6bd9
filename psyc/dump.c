/* dump.c: one text line per parse event, in the format of the vectors'
 * .expected files, so tests and `psycgatectl psyc dump` share one printer. */
#include "psyc/psyc.h"

#include <stdio.h>

int psyc_dump_escape(psyc_buf *out, psyc_str s)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        int rc;
        if (c == '\n')
            rc = psyc_buf_append(out, "\\n", 2);
        else if (c == '\t')
            rc = psyc_buf_append(out, "\\t", 2);
        else if (c == '\\')
            rc = psyc_buf_append(out, "\\\\", 2);
        else if (c < 0x20 || c >= 0x7f) {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            rc = psyc_buf_append(out, e, 4);
        } else
            rc = psyc_buf_putc(out, (char)c);
        if (rc)
            return PSYC_ERR_NOMEM;
    }
    return 0;
}

static int dump_value(psyc_buf *out, psyc_str v)
{
    if (psyc_buf_put_size(out, v.len) || psyc_buf_putc(out, ':') || psyc_dump_escape(out, v))
        return PSYC_ERR_NOMEM;
    return 0;
}

static int dump_list(psyc_buf *out, psyc_str value)
{
    psyc_list_parser lp;
    psyc_list_elem e;
    psyc_list_parser_init(&lp, value);
    for (;;) {
        int rc = psyc_list_next(&lp, &e);
        int err = 0;
        switch (rc) {
        case PSYC_LIST_TYPE:
            err = psyc_buf_puts(out, "  LIST_TYPE ") || psyc_buf_append(out, e.type.ptr, e.type.len);
            break;
        case PSYC_LIST_ELEM:
        case PSYC_LIST_TRUNCATED:
            err = psyc_buf_puts(out, rc == PSYC_LIST_ELEM ? "  LIST_ELEM" : "  LIST_ELEM_INCOMPLETE got");
            if (!err && e.type.len)
                err = psyc_buf_puts(out, " =") || psyc_buf_append(out, e.type.ptr, e.type.len);
            err = err || psyc_buf_putc(out, ' ') || dump_value(out, e.value);
            break;
        case PSYC_LIST_END:
            err = psyc_buf_puts(out, "  LIST_END");
            break;
        default:
            err = psyc_buf_puts(out, "  LIST_ERROR");
            break;
        }
        if (err || psyc_buf_putc(out, '\n'))
            return PSYC_ERR_NOMEM;
        if (rc != PSYC_LIST_TYPE && rc != PSYC_LIST_ELEM)
            return 0;
    }
}

static int dump_modifier(psyc_buf *out, const char *kind, const psyc_modifier *m)
{
    char op[4] = {' ', m->oper, ' ', 0};
    if (psyc_buf_puts(out, kind) || psyc_buf_puts(out, op) ||
        psyc_buf_append(out, m->name.ptr, m->name.len) || psyc_buf_putc(out, ' ') ||
        dump_value(out, m->value))
        return PSYC_ERR_NOMEM;
    if (m->flags == PSYC_MOD_BINARY) {
        char tail[48];
        snprintf(tail, sizeof tail, " [binary len=%zu]", m->value.len);
        if (psyc_buf_puts(out, tail))
            return PSYC_ERR_NOMEM;
    }
    if (psyc_buf_putc(out, '\n'))
        return PSYC_ERR_NOMEM;
    return psyc_var_is_list(m->name) ? dump_list(out, m->value) : 0;
}

static int dump_body(psyc_buf *out, psyc_str method, psyc_str data)
{
    if (psyc_buf_puts(out, "BODY ") || psyc_buf_append(out, method.ptr, method.len) ||
        psyc_buf_putc(out, ' ') || dump_value(out, data) || psyc_buf_putc(out, '\n'))
        return PSYC_ERR_NOMEM;
    return 0;
}

static int dump_complete(psyc_buf *out, int has_length, size_t length)
{
    if (has_length && (psyc_buf_puts(out, "CONTENTLEN ") || psyc_buf_put_size(out, length) ||
                       psyc_buf_putc(out, '\n')))
        return PSYC_ERR_NOMEM;
    return psyc_buf_puts(out, "COMPLETE\n") ? PSYC_ERR_NOMEM : 0;
}

int psyc_dump_event(psyc_buf *out, int type, const psyc_event *ev)
{
    switch (type) {
    case PSYC_EV_ROUTING: return dump_modifier(out, "ROUTING", &ev->mod);
    case PSYC_EV_ENTITY: return dump_modifier(out, "ENTITY", &ev->mod);
    case PSYC_EV_STATE_RESET: return psyc_buf_puts(out, "STATE_RESET\n") ? PSYC_ERR_NOMEM : 0;
    case PSYC_EV_STATE_RESYNC: return psyc_buf_puts(out, "STATE_RESYNC\n") ? PSYC_ERR_NOMEM : 0;
    case PSYC_EV_BODY: return dump_body(out, ev->method, ev->data);
    case PSYC_EV_CONTENT:
        if (psyc_buf_puts(out, "CONTENT ") || dump_value(out, ev->data) || psyc_buf_putc(out, '\n'))
            return PSYC_ERR_NOMEM;
        return 0;
    case PSYC_EV_COMPLETE: return dump_complete(out, ev->has_length, ev->content_length);
    default: return 0;
    }
}

int psyc_dump_packet(psyc_buf *out, const psyc_packet *p)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < p->n_routing; i++)
        rc = dump_modifier(out, "ROUTING", &p->routing[i]);
    if (!rc && p->state_op)
        rc = psyc_buf_puts(out, p->state_op == '=' ? "STATE_RESET\n" : "STATE_RESYNC\n") ? PSYC_ERR_NOMEM : 0;
    for (size_t i = 0; !rc && i < p->n_entity; i++)
        rc = dump_modifier(out, "ENTITY", &p->entity[i]);
    if (!rc && (p->flags & PSYC_PKT_OPAQUE)) {
        psyc_event ev = {.data = p->content};
        rc = psyc_dump_event(out, PSYC_EV_CONTENT, &ev);
    }
    if (!rc && p->method.ptr)
        rc = dump_body(out, p->method, p->data);
    if (!rc)
        rc = dump_complete(out, (p->flags & PSYC_PKT_CONTENT_LENGTH) != 0, p->content_length);
    return rc;
}
