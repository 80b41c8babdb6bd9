/*
 * text.c: [_var] template expansion (PSYC.md §2.2: bodies are templates
 * filled in by the receiver, as libpsyc's psyc_text and psyced's psyctext).
 *
 * Rules:
 *  - `[` NAME `]` with NAME a keyword (1*[A-Za-z0-9_], PSYC.md §4.4) is a
 *    placeholder; the lookup decides whether it is replaced.
 *  - Anything else stays verbatim: a `[` without `]`, `[]`, or a `[` whose
 *    contents are not a keyword. Scanning then resumes right after that `[`,
 *    so "[[_a]" still expands the inner "[_a]".
 *  - Substituted values are copied as they are and never expanded again, so
 *    a peer cannot make one variable pull in others (or loop).
 */
#include "psyc/psyc.h"

#include <string.h>

static int psyc_text_kw_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

int psyc_text_expand(psyc_str tmpl, psyc_text_lookup lookup, void *ctx, psyc_buf *out)
{
    size_t start_len = out->len;
    size_t pos = 0;  /* next unscanned byte */
    size_t copy = 0; /* start of the verbatim run not yet written */

    if (tmpl.len == 0)
        return 0;
    while (pos < tmpl.len) {
        const char *open = memchr(tmpl.ptr + pos, '[', tmpl.len - pos);
        if (!open)
            break;
        size_t o = (size_t)(open - tmpl.ptr);
        size_t n = o + 1;
        while (n < tmpl.len && psyc_text_kw_char((unsigned char)tmpl.ptr[n]))
            n++;
        if (n == o + 1 || n >= tmpl.len || tmpl.ptr[n] != ']') {
            pos = o + 1; /* not a placeholder: keep the `[` verbatim */
            continue;
        }
        psyc_str name = {tmpl.ptr + o + 1, n - o - 1};
        psyc_str value = PSYC_STR_NULL;
        pos = n + 1;
        if (!lookup || lookup(ctx, name, &value) != 1)
            continue; /* unknown: the placeholder stays verbatim */
        if (psyc_buf_append(out, tmpl.ptr + copy, o - copy) != 0 ||
            (value.len && psyc_buf_append(out, value.ptr, value.len) != 0))
            goto nomem;
        copy = pos;
    }
    if (psyc_buf_append(out, tmpl.ptr + copy, tmpl.len - copy) != 0)
        goto nomem;
    return 0;

nomem:
    out->len = start_len;
    if (out->data)
        out->data[start_len] = '\0';
    return PSYC_ERR_NOMEM;
}

/* Longest variable name looked up in a packet; longer placeholders stay
 * verbatim (far beyond PSYC_DEFAULT_MAX_NAME, which the parsers enforce). */
#define PSYC_TEXT_NAME_MAX 1024

static int psyc_text_packet_lookup(void *ctx, psyc_str name, psyc_str *value)
{
    const psyc_packet *p = ctx;
    char cname[PSYC_TEXT_NAME_MAX + 1];

    if (name.len > PSYC_TEXT_NAME_MAX)
        return 0;
    memcpy(cname, name.ptr, name.len);
    cname[name.len] = '\0';
    return psyc_packet_get(p, cname, value) == 1;
}

int psyc_text_expand_packet(psyc_str tmpl, const psyc_packet *p, psyc_buf *out)
{
    /* The lookup only reads the packet; the cast drops const for the
     * generic void *ctx. */
    return psyc_text_expand(tmpl, psyc_text_packet_lookup, (void *)(uintptr_t)p, out);
}
