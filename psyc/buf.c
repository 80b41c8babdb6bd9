/* buf.c: byte views, the growable output buffer and the per-packet arena. */
#include "psyc/psyc.h"

#include <stdlib.h>
#include <string.h>

psyc_str psyc_str_c(const char *cstr)
{
    return (psyc_str){cstr, cstr ? strlen(cstr) : 0};
}

int psyc_str_eq(psyc_str a, psyc_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

int psyc_str_eq_c(psyc_str a, const char *cstr)
{
    return psyc_str_eq(a, psyc_str_c(cstr));
}

void psyc_buf_init(psyc_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void psyc_buf_free(psyc_buf *b)
{
    free(b->data);
    psyc_buf_init(b);
}

void psyc_buf_reset(psyc_buf *b)
{
    b->len = 0;
}

int psyc_buf_reserve(psyc_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return -1;
    size_t need = b->len + extra + 1; /* +1 keeps room for a NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *d = realloc(b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

int psyc_buf_append(psyc_buf *b, const void *p, size_t n)
{
    if (psyc_buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int psyc_buf_putc(psyc_buf *b, char c)
{
    return psyc_buf_append(b, &c, 1);
}

int psyc_buf_puts(psyc_buf *b, const char *s)
{
    return psyc_buf_append(b, s, strlen(s));
}

int psyc_buf_put_size(psyc_buf *b, size_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return psyc_buf_append(b, tmp + i, sizeof tmp - i);
}

/* Arena chunks are at least 4 KiB; a large request gets a chunk of its own
 * so a 1 MB value does not waste a default chunk. */
struct psyc_arena_chunk {
    psyc_arena_chunk *next;
    size_t used, cap;
    max_align_t align[]; /* payload */
};

#define ARENA_CHUNK 4096

void psyc_arena_init(psyc_arena *a)
{
    a->head = NULL;
}

void psyc_arena_free(psyc_arena *a)
{
    psyc_arena_chunk *c = a->head;
    while (c) {
        psyc_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

void *psyc_arena_alloc(psyc_arena *a, size_t n)
{
    size_t align = sizeof(max_align_t);
    size_t rounded = (n + align - 1) / align * align;
    if (rounded < n)
        return NULL;
    psyc_arena_chunk *c = a->head;
    if (!c || c->cap - c->used < rounded) {
        size_t cap = rounded > ARENA_CHUNK ? rounded : ARENA_CHUNK;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        if (a->head && rounded > ARENA_CHUNK) {
            /* keep the current chunk in front: it still has room */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = (char *)c->align + c->used;
    c->used += rounded;
    return p;
}

char *psyc_arena_dup(psyc_arena *a, const void *p, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *d = psyc_arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}
