/*
 * sm_util.h: helpers for the stream state machine tests (test_s2s_in.c,
 * test_s2s_out.c, test_component.c): parse what a machine wrote back into
 * events with xml_stream (ids are random, so elements are compared, not
 * bytes), load the harness transcripts (tests/vectors/xmpp/transcripts/), and
 * drain actions. Header-only (static inline) so that only these tests
 * carry it.
 */
#ifndef PSYCGATE_TESTS_SM_UTIL_H
#define PSYCGATE_TESTS_SM_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmpp/s2s.h"
#include "xmpp/xml.h"

/* ---- events of a written stream ------------------------------------------ */

enum { SM_OPEN = 'O', SM_ELEM = 'E', SM_CLOSE = 'C' };

typedef struct sm_ev {
    int type;
    xml_node *n; /* header element (copy) or stanza; NULL for close */
} sm_ev;

typedef struct sm_col {
    xml_stream *xs;
    sm_ev *v;
    size_t n, cap;
    int opened;
    xml_cond err;
} sm_col;

static inline void sm_col_push(sm_col *c, int type, xml_node *n)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->v = realloc(c->v, c->cap * sizeof *c->v);
        assert_non_null(c->v);
    }
    c->v[c->n++] = (sm_ev){type, n};
}

static inline void sm_col_on_open(void *ud, const xml_stream_header *h)
{
    sm_col *c = ud;
    c->opened = 1;
    sm_col_push(c, SM_OPEN, xml_node_copy(h->elem));
}

static inline void sm_col_on_stanza(void *ud, xml_node *st)
{
    sm_col_push(ud, SM_ELEM, st);
}

static inline void sm_col_on_close(void *ud)
{
    sm_col_push(ud, SM_CLOSE, NULL);
}

static inline void sm_col_init(sm_col *c)
{
    static const xml_stream_handler h = {sm_col_on_open, sm_col_on_stanza, sm_col_on_close};
    memset(c, 0, sizeof *c);
    c->xs = xml_stream_new(NULL, &h, c);
    assert_non_null(c->xs);
}

static inline void sm_col_feed_doc(sm_col *c, const char *p, size_t n)
{
    if (n == 0)
        return;
    xml_status st = xml_stream_feed(c->xs, p, n, NULL);
    if (st == XML_STREAM_ERROR && c->err == XML_COND_NONE) {
        const char *t = NULL;
        c->err = xml_stream_error(c->xs, &t);
        fprintf(stderr, "sm_col: our output is not a valid stream: %s (%s)\n", xml_cond_name(c->err),
                t ? t : "");
    }
}

/* Feeds written bytes; every "<?xml" (our header writer's and the fake
 * peer's first bytes; never inside content, where '<' is escaped) starts a
 * new document: the stream restarts of STARTTLS and SASL. */
static inline void sm_col_feed(sm_col *c, const char *p, size_t n)
{
    while (n > 0) {
        const char *x = NULL;
        for (size_t i = 0; i + 5 <= n; i++)
            if (memcmp(p + i, "<?xml", 5) == 0 && (i > 0 || c->opened)) {
                x = p + i;
                break;
            }
        if (!x) {
            sm_col_feed_doc(c, p, n);
            return;
        }
        sm_col_feed_doc(c, p, (size_t)(x - p));
        xml_stream_restart(c->xs);
        c->opened = 0;
        n -= (size_t)(x - p);
        p = x;
        sm_col_feed_doc(c, p, 5);
        p += 5;
        n -= 5;
    }
}

static inline void sm_col_free(sm_col *c)
{
    for (size_t i = 0; i < c->n; i++)
        xml_node_free(c->v[i].n);
    free(c->v);
    xml_stream_free(c->xs);
    memset(c, 0, sizeof *c);
}

/* Drains a psyc_buf into a collector. */
static inline void sm_col_take(sm_col *c, psyc_buf *out)
{
    sm_col_feed(c, out->data, out->len);
    psyc_buf_reset(out);
}

static inline const char *sm_attr(const xml_node *n, const char *name)
{
    const char *v = n ? xml_attr_get(n, name) : NULL;
    return v ? v : "";
}

static inline int sm_streq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static inline void sm_describe(const sm_ev *e, char *buf, size_t size)
{
    if (e->type == SM_CLOSE) {
        snprintf(buf, size, "</stream:stream>");
    } else if (e->type == SM_OPEN) {
        snprintf(buf, size, "<stream from='%s' to='%s' version='%s' id=%s>", sm_attr(e->n, "from"),
                 sm_attr(e->n, "to"), sm_attr(e->n, "version"),
                 xml_attr_get(e->n, "id") ? "yes" : "no");
    } else {
        int k = snprintf(buf, size, "<%s xmlns='%s' type='%s' from='%s' to='%s' id='%s'>:",
                         e->n->name, e->n->ns ? e->n->ns : "", sm_attr(e->n, "type"),
                         sm_attr(e->n, "from"), sm_attr(e->n, "to"), sm_attr(e->n, "id"));
        for (const xml_node *ch = e->n->children; ch && k > 0 && (size_t)k < size; ch = ch->next)
            if (ch->type == XML_N_ELEMENT)
                k += snprintf(buf + k, size - (size_t)k, " %s", ch->name);
    }
}

/* Same kind of answer: event types, element names and namespaces, the
 * from/to/type/id attributes, child element names (features, errors). */
static inline int sm_ev_same(const sm_ev *a, const sm_ev *b)
{
    if (a->type != b->type)
        return 0;
    if (a->type == SM_CLOSE)
        return 1;
    static const char *const attrs[] = {"from", "to", "type", "id", "version"};
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
        if (!sm_streq(xml_attr_get(a->n, attrs[i]), xml_attr_get(b->n, attrs[i])))
            return 0;
    if (a->type == SM_OPEN)
        return (xml_attr_get(a->n, "id") != NULL) == (xml_attr_get(b->n, "id") != NULL);
    if (!sm_streq(a->n->name, b->n->name) || !sm_streq(a->n->ns, b->n->ns))
        return 0;
    const xml_node *x = xml_child(a->n, NULL, NULL), *y = xml_child(b->n, NULL, NULL);
    for (; x && y; x = xml_next(x, NULL, NULL), y = xml_next(y, NULL, NULL))
        if (!sm_streq(x->name, y->name) || !sm_streq(x->ns, y->ns))
            return 0;
    return !x && !y;
}

static inline void sm_col_dump(const sm_col *c, const char *title)
{
    char buf[512];
    fprintf(stderr, "  %s (%zu events):\n", title, c->n);
    for (size_t i = 0; i < c->n; i++) {
        sm_describe(&c->v[i], buf, sizeof buf);
        fprintf(stderr, "    %zu %s\n", i, buf);
    }
}

static inline void sm_expect_same(const sm_col *ours, const sm_col *exp, const char *what)
{
    int same = ours->n == exp->n && ours->err == XML_COND_NONE;
    for (size_t i = 0; same && i < ours->n; i++)
        same = sm_ev_same(&ours->v[i], &exp->v[i]);
    if (!same) {
        fprintf(stderr, "%s: our answers differ from the transcript\n", what);
        sm_col_dump(ours, "ours");
        sm_col_dump(exp, "transcript");
        fail();
    }
}

/* ---- transcripts ------------------------------------------------------------ */

typedef struct sm_line {
    char label[16];
    char dir; /* '<' received by gw.test, '>' sent by it, '-' TLS established */
    char *data;
} sm_line;

typedef struct sm_transcript {
    sm_line *v;
    size_t n;
} sm_transcript;

static inline void sm_transcript_load(sm_transcript *t, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/xmpp/transcripts/%s", VECTORS_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fprintf(stderr, "cannot open %s\n", path);
    assert_non_null(f);
    memset(t, 0, sizeof *t);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        size_t i = 0;
        while (i < 15 && ((line[i] >= 'A' && line[i] <= 'Z') || (line[i] >= '0' && line[i] <= '9')))
            i++;
        if (i == 0 || (size_t)len < i + 3 || line[i] != line[i + 1] ||
            (line[i] != '<' && line[i] != '>' && line[i] != '-'))
            continue;
        t->v = realloc(t->v, (t->n + 1) * sizeof *t->v);
        assert_non_null(t->v);
        sm_line *l = &t->v[t->n++];
        memcpy(l->label, line, i);
        l->label[i] = '\0';
        l->dir = line[i];
        l->data = strdup(line + i + 3);
        assert_non_null(l->data);
    }
    free(line);
    fclose(f);
    assert_true(t->n > 0);
}

static inline void sm_transcript_free(sm_transcript *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].data);
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* What gw.test sent on one connection, as events. */
static inline void sm_transcript_expected(const sm_transcript *t, const char *label, sm_col *exp)
{
    sm_col_init(exp);
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].dir == '>' && strcmp(t->v[i].label, label) == 0)
            sm_col_feed(exp, t->v[i].data, strlen(t->v[i].data));
    assert_int_equal(exp->err, XML_COND_NONE);
}

/* ---- actions ------------------------------------------------------------------ */

typedef struct sm_acts {
    s2s_action v[256];
    size_t n;
} sm_acts;

static inline void sm_acts_clear(sm_acts *a)
{
    for (size_t i = 0; i < a->n; i++)
        s2s_action_clear(&a->v[i]);
    a->n = 0;
}

static inline size_t sm_acts_count(const sm_acts *a, s2s_action_kind k)
{
    size_t c = 0;
    for (size_t i = 0; i < a->n; i++)
        c += a->v[i].kind == k;
    return c;
}

static inline const s2s_action *sm_acts_find(const sm_acts *a, s2s_action_kind k, size_t nth)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].kind == k && nth-- == 0)
            return &a->v[i];
    return NULL;
}

static inline void sm_acts_dump(const sm_acts *a)
{
    for (size_t i = 0; i < a->n; i++) {
        const s2s_action *x = &a->v[i];
        fprintf(stderr, "  %s from=%s to=%s id=%s cond=%s text=%s\n", s2s_action_kind_name(x->kind),
                x->from ? x->from : "", x->to ? x->to : "", x->id ? x->id : "",
                xml_cond_name(x->cond), x->text ? x->text : "");
    }
}

/* Ids handed out in order (deterministic streams). */
typedef struct sm_ids {
    const char *v[16];
    size_t n, next;
} sm_ids;

static inline void sm_ids_fn(void *ud, char out[S2S_ID_MAX + 1])
{
    sm_ids *ids = ud;
    if (ids->next < ids->n)
        snprintf(out, S2S_ID_MAX + 1, "%s", ids->v[ids->next++]);
    else
        snprintf(out, S2S_ID_MAX + 1, "test-id-%zu", ids->next++);
}

/* A stanza for sending: <NAME from to [type]><body>BODY</body></NAME>. */
static inline xml_node *sm_msg(const char *from, const char *to, const char *body)
{
    xml_node *m = xml_elem_new("message", NULL);
    assert_non_null(m);
    assert_int_equal(xml_attr_set(m, "from", from), 0);
    assert_int_equal(xml_attr_set(m, "to", to), 0);
    assert_int_equal(xml_attr_set(m, "type", "chat"), 0);
    xml_node *b = xml_elem_add(m, "body", NULL);
    assert_non_null(b);
    assert_non_null(xml_text_add(b, body, strlen(body)));
    return m;
}

/* The last element event of a collector, or NULL. */
static inline const xml_node *sm_col_last(const sm_col *c)
{
    for (size_t i = c->n; i-- > 0;)
        if (c->v[i].type == SM_ELEM)
            return c->v[i].n;
    return NULL;
}

static inline const xml_node *sm_col_find(const sm_col *c, const char *name, const char *ns, size_t nth)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].type == SM_ELEM && xml_is(c->v[i].n, name, ns) && nth-- == 0)
            return c->v[i].n;
    return NULL;
}

static inline size_t sm_col_count(const sm_col *c, int type)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        k += c->v[i].type == type;
    return k;
}

#endif
