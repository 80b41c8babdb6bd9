/* digest.c: membership digests and their repair (see digest.h). */
#include "routing/digest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

void digest_set_init(digest_set *s)
{
    memset(s, 0, sizeof *s);
}

void digest_set_free(digest_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].local);
        free(s->v[i].remote);
    }
    free(s->v);
    digest_set_init(s);
}

int digest_set_add(digest_set *s, const char *local, const char *remote, unsigned state)
{
    state &= DIGEST_BITS;
    if (!state)
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        digest_rel *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    digest_rel r = {strdup(local), strdup(remote), state};
    if (!r.local || !r.remote) {
        free(r.local);
        free(r.remote);
        return -1;
    }
    s->v[s->n++] = r;
    return 0;
}

unsigned digest_mirror(unsigned state)
{
    return (state & SUBS_TO ? SUBS_FROM : 0) | (state & SUBS_FROM ? SUBS_TO : 0) |
           (state & SUBS_PENDING_OUT ? SUBS_PENDING_IN : 0) | (state & SUBS_PENDING_IN ? SUBS_PENDING_OUT : 0);
}

static int digest_cmp_mine(const void *a, const void *b)
{
    const digest_rel *x = a, *y = b;
    int c = strcmp(x->local, y->local);
    return c ? c : strcmp(x->remote, y->remote);
}

/* The peer's relations keyed as mine would be: (their remote, their local). */
static int digest_cmp_theirs(const void *a, const void *b)
{
    const digest_rel *x = a, *y = b;
    int c = strcmp(x->remote, y->remote);
    return c ? c : strcmp(x->local, y->local);
}

/* Sorted, duplicates folded into one (the store has none; a peer's list
 * with duplicates is malformed, any one of them will do). */
static void digest_sort_by(digest_set *s, int (*cmp)(const void *, const void *))
{
    if (s->n < 2)
        return;
    qsort(s->v, s->n, sizeof *s->v, cmp);
    size_t w = 1;
    for (size_t i = 1; i < s->n; i++) {
        if (cmp(&s->v[w - 1], &s->v[i]) == 0) {
            free(s->v[i].local);
            free(s->v[i].remote);
            continue;
        }
        s->v[w++] = s->v[i];
    }
    s->n = w;
}

void digest_set_sort(digest_set *s)
{
    digest_sort_by(s, digest_cmp_mine);
}

typedef struct digest_line {
    const char *a, *b;
    unsigned state;
} digest_line;

static int digest_cmp_line(const void *x, const void *y)
{
    const digest_line *p = x, *q = y;
    int c = strcmp(p->a, q->a);
    return c ? c : strcmp(p->b, q->b);
}

int digest_of(const digest_set *s, char out[DIGEST_HEX_SIZE])
{
    digest_line *l = malloc((s->n ? s->n : 1) * sizeof *l);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned mdlen = 0;
    int ok = l && ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    size_t n = 0;
    for (size_t i = 0; ok && i < s->n; i++) {
        const digest_rel *r = &s->v[i];
        if (!(r->state & DIGEST_BITS))
            continue; /* a relation set to none is none */
        int mine_first = strcmp(r->local, r->remote) < 0;
        l[n++] = mine_first ? (digest_line){r->local, r->remote, r->state & DIGEST_BITS}
                            : (digest_line){r->remote, r->local, digest_mirror(r->state)};
    }
    if (ok)
        qsort(l, n, sizeof *l, digest_cmp_line);
    for (size_t i = 0; ok && i < n; i++) {
        char st[16];
        int len = snprintf(st, sizeof st, " %u\n", l[i].state);
        ok = EVP_DigestUpdate(ctx, l[i].a, strlen(l[i].a)) == 1 && EVP_DigestUpdate(ctx, " ", 1) == 1 &&
             EVP_DigestUpdate(ctx, l[i].b, strlen(l[i].b)) == 1 && EVP_DigestUpdate(ctx, st, (size_t)len) == 1;
    }
    ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == sizeof md;
    for (size_t i = 0; ok && i < sizeof md; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    EVP_MD_CTX_free(ctx);
    free(l);
    return ok ? 0 : -1;
}

int digest_render(const digest_set *s, psyc_buf *out)
{
    for (size_t i = 0; i < s->n; i++) {
        char st[16];
        if (!(s->v[i].state & DIGEST_BITS))
            continue;
        snprintf(st, sizeof st, " %u\n", s->v[i].state & DIGEST_BITS);
        if (psyc_buf_puts(out, s->v[i].local) || psyc_buf_putc(out, ' ') || psyc_buf_puts(out, s->v[i].remote) ||
            psyc_buf_puts(out, st))
            return -1;
    }
    return 0;
}

/* One "LOCAL REMOTE STATE" line (no LF) into s. */
static int digest_parse_line(const char *p, size_t len, digest_set *s)
{
    char line[2 * PSYC_UNIFORM_MAX + 32];
    if (len >= sizeof line)
        return -1;
    memcpy(line, p, len);
    line[len] = '\0';
    char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 || !sp2[1] || strchr(sp2 + 1, ' '))
        return -1;
    *sp1 = *sp2 = '\0';
    char *end;
    unsigned long st = strtoul(sp2 + 1, &end, 10);
    if (*end || st == 0 || (st & ~(unsigned long)DIGEST_BITS))
        return -1;
    return digest_set_add(s, line, sp1 + 1, (unsigned)st);
}

int digest_parse(const char *data, size_t len, digest_set *s)
{
    size_t i = 0;
    while (i < len) {
        const char *lf = memchr(data + i, '\n', len - i);
        size_t n = lf ? (size_t)(lf - (data + i)) : len - i;
        if (n && digest_parse_line(data + i, n, s) != 0)
            return -1;
        i += n + 1;
    }
    return 0;
}

/* Appends one change unless the state stays. */
static int digest_note(digest_change **out, size_t *n, size_t *cap, const char *local, const char *remote,
                       unsigned old_state, unsigned new_state)
{
    if (old_state == new_state)
        return 0;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        digest_change *v = realloc(*out, c * sizeof *v);
        if (!v)
            return -1;
        *out = v;
        *cap = c;
    }
    (*out)[(*n)++] = (digest_change){local, remote, old_state, new_state};
    return 0;
}

long digest_repair(digest_set *mine, digest_set *theirs, digest_change **out)
{
    *out = NULL;
    digest_sort_by(mine, digest_cmp_mine);
    digest_sort_by(theirs, digest_cmp_theirs);
    size_t i = 0, j = 0, n = 0, cap = 0;
    int bad = 0;
    while (!bad && (i < mine->n || j < theirs->n)) {
        int c;
        if (i == mine->n)
            c = 1;
        else if (j == theirs->n)
            c = -1;
        else {
            c = strcmp(mine->v[i].local, theirs->v[j].remote);
            if (!c)
                c = strcmp(mine->v[i].remote, theirs->v[j].local);
        }
        const digest_rel *m = c <= 0 ? &mine->v[i] : NULL, *t = c >= 0 ? &theirs->v[j] : NULL;
        unsigned old = m ? m->state : 0, from_peer = t ? digest_mirror(t->state & DIGEST_OWN) : 0;
        unsigned next = (old & DIGEST_OWN) | from_peer;
        bad = digest_note(out, &n, &cap, m ? m->local : t->remote, m ? m->remote : t->local, old, next) != 0;
        i += c <= 0;
        j += c >= 0;
    }
    if (bad) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return (long)n;
}
