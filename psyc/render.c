/*
 * render.c: the PSYC 1.0 renderer with libpsyc's length rules (PSYC.md §1.1):
 * a modifier gets `SP len` when its value is longer than 9 bytes or holds
 * LF; the content gets a length when the data is longer than 9 bytes, when
 * any modifier has one, or when the data would be cut short by a `|` line.
 * A parsed packet keeps the choices it arrived with (PSYC_MOD_TEXT/BINARY,
 * PSYC_PKT_[NO_]CONTENT_LENGTH) so parse + render is byte-identical; a
 * choice that would make the packet unparseable is overridden.
 */
#include "psyc/psyc.h"

#include <string.h>

#define MODIFIER_SIZE_THRESHOLD 9
#define CONTENT_SIZE_THRESHOLD 9

static size_t digits(size_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static int has_lf(psyc_str s)
{
    return s.len && memchr(s.ptr, '\n', s.len) != NULL;
}

/* Would "\n" + s + "\n" contain a line that is exactly "|"? Then a
 * length-less parser would end the packet inside s. */
static int has_bar_line(psyc_str s)
{
    if (s.len == 0)
        return 0;
    if (s.ptr[0] == '|' && (s.len == 1 || s.ptr[1] == '\n'))
        return 1;
    const char *p = s.ptr, *end = s.ptr + s.len;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        p++;
        if (p < end && *p == '|' && (p + 1 == end || p[1] == '\n'))
            return 1;
    }
    return 0;
}

static int modifier_is_binary(const psyc_modifier *m)
{
    switch (m->flags) {
    case PSYC_MOD_BINARY: return 1;
    case PSYC_MOD_TEXT: return has_lf(m->value);
    default: return m->value.len > MODIFIER_SIZE_THRESHOLD || has_lf(m->value);
    }
}

static size_t modifier_size(const psyc_modifier *m, int binary)
{
    size_t n = 1 + m->name.len + 1 + m->value.len + 1; /* op name TAB value LF */
    if (binary)
        n += 1 + digits(m->value.len);
    return n;
}

static int valid_modifier(const psyc_modifier *m, int routing)
{
    if (!psyc_is_operator(m->oper) || !psyc_is_keyword(m->name))
        return 0;
    return !(routing && has_lf(m->value));
}

static void put(char **w, const void *p, size_t n)
{
    if (n)
        memcpy(*w, p, n);
    *w += n;
}

static void put_size(char **w, size_t v)
{
    size_t n = digits(v);
    for (size_t i = n; i-- > 0;) {
        (*w)[i] = (char)('0' + v % 10);
        v /= 10;
    }
    *w += n;
}

static void put_modifier(char **w, const psyc_modifier *m, int binary)
{
    *(*w)++ = m->oper;
    put(w, m->name.ptr, m->name.len);
    if (binary) {
        *(*w)++ = ' ';
        put_size(w, m->value.len);
    }
    *(*w)++ = '\t';
    put(w, m->value.ptr, m->value.len);
    *(*w)++ = '\n';
}

int psyc_render(const psyc_packet *p, psyc_buf *out)
{
    size_t routing_size = 0, content = 0;
    int any_binary = 0;

    for (size_t i = 0; i < p->n_routing; i++) {
        if (!valid_modifier(&p->routing[i], 1))
            return PSYC_ERR_INVALID;
        routing_size += modifier_size(&p->routing[i], 0);
    }

    int opaque = (p->flags & PSYC_PKT_OPAQUE) != 0;
    int has_method = p->method.ptr != NULL;
    int has_data = has_method && (p->flags & PSYC_PKT_HAS_DATA);
    if (has_method && !psyc_is_keyword(p->method))
        return PSYC_ERR_INVALID;
    if (p->state_op && p->state_op != '=' && p->state_op != '?')
        return PSYC_ERR_INVALID;

    if (opaque) {
        content = p->content.len;
    } else {
        if (p->state_op)
            content += 2;
        for (size_t i = 0; i < p->n_entity; i++) {
            if (!valid_modifier(&p->entity[i], 0))
                return PSYC_ERR_INVALID;
            int bin = modifier_is_binary(&p->entity[i]);
            any_binary |= bin;
            content += modifier_size(&p->entity[i], bin);
        }
        if (has_method)
            content += p->method.len + 1 + (has_data ? p->data.len + 1 : 0);
    }

    int with_content = opaque || content > 0 || (p->flags & (PSYC_PKT_SEPARATOR | PSYC_PKT_CONTENT_LENGTH));
    int with_length;
    if (opaque) {
        with_length = (p->flags & PSYC_PKT_CONTENT_LENGTH) != 0;
    } else {
        int framing = has_data && has_bar_line(p->data);
        if (p->flags & PSYC_PKT_CONTENT_LENGTH)
            with_length = 1;
        else if (p->flags & PSYC_PKT_NO_CONTENT_LENGTH)
            with_length = framing;
        else
            with_length = framing || any_binary || (has_data && p->data.len > CONTENT_SIZE_THRESHOLD);
    }

    size_t total = routing_size + 2;
    if (with_content)
        total += (with_length ? digits(content) : 0) + 1 + content;
    if (psyc_buf_reserve(out, total))
        return PSYC_ERR_NOMEM;

    char *w = out->data + out->len;
    for (size_t i = 0; i < p->n_routing; i++)
        put_modifier(&w, &p->routing[i], 0);
    if (with_content) {
        if (with_length)
            put_size(&w, content);
        *w++ = '\n';
        if (opaque) {
            put(&w, p->content.ptr, p->content.len);
        } else {
            if (p->state_op) {
                *w++ = p->state_op;
                *w++ = '\n';
            }
            for (size_t i = 0; i < p->n_entity; i++)
                put_modifier(&w, &p->entity[i], modifier_is_binary(&p->entity[i]));
            if (has_method) {
                put(&w, p->method.ptr, p->method.len);
                *w++ = '\n';
                if (has_data) {
                    put(&w, p->data.ptr, p->data.len);
                    *w++ = '\n';
                }
            }
        }
    }
    *w++ = '|';
    *w++ = '\n';
    out->len = (size_t)(w - out->data);
    out->data[out->len] = '\0';
    return 0;
}
