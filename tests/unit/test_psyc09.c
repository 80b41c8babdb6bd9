/*
 * test_psyc09.c: the classic PSYC 0.9 parser and renderer (PSYC.md §2.2,
 * §9) against tests/vectors/psyc/old-syntax-0.9 and psyced-0.9-captures:
 *  - every packet psyced wrote or read round-trips byte for byte;
 *  - the packet contents EXPECTED.txt describes;
 *  - one byte at a time (buffer moved on every call) == whole buffer;
 *  - limits, syntax errors, the blank-line rules;
 *  - renderer edge cases (lone "." body line, lists, continuations);
 *  - generated packets: parse09(render09(p)) == p, render is a fixpoint.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "psyc/psyc.h"
#include "helper_files.h"

#define OLD_DIR VECTORS_DIR "/psyc/old-syntax-0.9"
#define CAP_DIR VECTORS_DIR "/psyc/psyced-0.9-captures"

/* ------------------------------------------------------------------ */
/* files */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct names {
    char **v;
    size_t n;
} names;

static void names_add(names *ns, const char *path)
{
    ns->v = realloc(ns->v, (ns->n + 1) * sizeof *ns->v);
    assert_non_null(ns->v);
    ns->v[ns->n++] = strdup(path);
}

static void names_free(names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
    ns->v = NULL;
    ns->n = 0;
}

/* Adds dir/ *.psyc09 (sorted); with `recurse`, one level of subdirectories. */
static void collect(names *ns, const char *dir, int recurse)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    names local = {0};
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t l = strlen(e->d_name);
        if (l > 7 && strcmp(e->d_name + l - 7, ".psyc09") == 0)
            names_add(&local, path);
        else if (recurse) {
            DIR *sub = opendir(path);
            if (sub) {
                closedir(sub);
                names_add(&local, path); /* marker: a directory */
            }
        }
    }
    closedir(d);
    qsort(local.v, local.n, sizeof *local.v, cmp_str);
    for (size_t i = 0; i < local.n; i++) {
        size_t l = strlen(local.v[i]);
        if (l > 7 && strcmp(local.v[i] + l - 7, ".psyc09") == 0)
            names_add(ns, local.v[i]);
        else
            collect(ns, local.v[i], 0);
    }
    names_free(&local);
}

/* Every 0.9 file: the hand-written vectors, then the captures. */
static void all_vectors(names *ns)
{
    collect(ns, OLD_DIR, 0);
    collect(ns, CAP_DIR, 1);
    assert_int_equal(ns->n, 8 + 75);
}

static int is_o08(const char *path)
{
    return strstr(path, "/o08-") != NULL;
}

/* ------------------------------------------------------------------ */
/* Parsing a stream of packets */

typedef struct stream {
    psyc_packet *pk; /* deep copies */
    size_t n;
    size_t *end;     /* absolute end offset of each packet */
    psyc_buf rendered; /* render09 of every packet, concatenated */
    int render_rc;   /* first render09 error, 0 if none */
    int err;         /* parse error, 0 if none */
    size_t err_at;   /* absolute offset of the error line */
    size_t consumed; /* bytes in complete packets */
} stream;

static void stream_free(stream *s)
{
    for (size_t i = 0; i < s->n; i++)
        psyc_packet_free(&s->pk[i]);
    free(s->pk);
    free(s->end);
    psyc_buf_free(&s->rendered);
    memset(s, 0, sizeof *s);
}

static void stream_add(stream *s, const psyc_packet *p, size_t end)
{
    s->pk = realloc(s->pk, (s->n + 1) * sizeof *s->pk);
    s->end = realloc(s->end, (s->n + 1) * sizeof *s->end);
    assert_non_null(s->pk);
    assert_non_null(s->end);
    assert_int_equal(psyc_packet_copy(&s->pk[s->n], p), 0);
    s->end[s->n++] = end;
    int rc = psyc_render09(p, &s->rendered);
    if (rc && !s->render_rc)
        s->render_rc = rc;
}

/*
 * Parses buf as 0.9 packets. chunk == 0: the whole buffer in one call per
 * packet. chunk > 0: `chunk` more bytes per call, and the bytes of the
 * current packet are copied to a fresh allocation before every call, so a
 * view kept from an earlier call would be a use-after-free under ASan.
 */
static void parse_stream(const char *buf, size_t len, size_t chunk, const psyc_limits *lim, stream *s)
{
    psyc09_parser p;
    psyc_packet pkt;
    memset(s, 0, sizeof *s);
    psyc_buf_init(&s->rendered);
    psyc09_parser_init(&p, lim);
    psyc_packet_init(&pkt);

    if (chunk == 0) {
        size_t off = 0;
        for (;;) {
            size_t used = 0;
            int rc = psyc09_parse_packet(&p, buf + off, len - off, &pkt, &used);
            if (rc < 0) {
                s->err = rc;
                s->err_at = off + p.error_offset;
                break;
            }
            if (rc == 0)
                break;
            assert_true(used > 0 && used <= len - off);
            off += used;
            stream_add(s, &pkt, off);
        }
        s->consumed = off;
    } else {
        char *cur = NULL;
        size_t have = 0;  /* bytes of the current packet in cur */
        size_t start = 0; /* absolute offset of cur[0] */
        size_t fed = 0;
        while (fed < len) {
            size_t add = len - fed < chunk ? len - fed : chunk;
            char *nb = malloc(have + add);
            assert_non_null(nb);
            if (have)
                memcpy(nb, cur, have);
            memcpy(nb + have, buf + fed, add);
            free(cur);
            cur = nb;
            have += add;
            fed += add;
            for (;;) {
                size_t used = 0;
                int rc = psyc09_parse_packet(&p, cur, have, &pkt, &used);
                if (rc < 0) {
                    s->err = rc;
                    s->err_at = start + p.error_offset;
                    goto out;
                }
                if (rc == 0)
                    break;
                stream_add(s, &pkt, start + used);
                /* drop the packet: the rest moves to a new allocation */
                char *rest = malloc(have - used + 1);
                assert_non_null(rest);
                memcpy(rest, cur + used, have - used);
                free(cur);
                cur = rest;
                have -= used;
                start += used;
            }
        }
    out:
        free(cur);
        s->consumed = start;
    }
    psyc_packet_free(&pkt);
}

static void assert_streams_equal(const stream *a, const stream *b, const char *what)
{
    if (a->n != b->n || a->err != b->err || a->err_at != b->err_at || a->consumed != b->consumed ||
        a->render_rc != b->render_rc || a->rendered.len != b->rendered.len ||
        (a->rendered.len && memcmp(a->rendered.data, b->rendered.data, a->rendered.len) != 0))
        fail_msg("%s: whole: %zu packets err %d at %zu consumed %zu; pieces: %zu packets err %d at %zu consumed %zu",
                 what, a->n, a->err, a->err_at, a->consumed, b->n, b->err, b->err_at, b->consumed);
    for (size_t i = 0; i < a->n; i++)
        assert_int_equal(a->end[i], b->end[i]);
}

static void assert_str(psyc_str s, const char *expect)
{
    if (!psyc_str_eq_c(s, expect))
        fail_msg("got \"%.*s\" (%zu), expected \"%s\"", (int)s.len, s.ptr ? s.ptr : "", s.len, expect);
}

static void assert_mod(const psyc_modifier *m, char oper, const char *name, const char *value)
{
    assert_int_equal(m->oper, oper);
    assert_str(m->name, name);
    assert_str(m->value, value);
}

/* Field-by-field packet equality (PSYC_PKT_* flags the 0.9 syntax keeps). */
static void assert_packets_equal(const psyc_packet *a, const psyc_packet *b)
{
    unsigned keep = PSYC_PKT_HAS_DATA | PSYC_PKT_SEPARATOR | PSYC_PKT_NO_SEPARATOR;
    assert_int_equal(a->flags & keep, b->flags & keep);
    assert_int_equal(a->n_routing, b->n_routing);
    assert_int_equal(a->n_entity, b->n_entity);
    for (size_t i = 0; i < a->n_routing + a->n_entity; i++) {
        const psyc_modifier *x = i < a->n_routing ? &a->routing[i] : &a->entity[i - a->n_routing];
        const psyc_modifier *y = i < a->n_routing ? &b->routing[i] : &b->entity[i - a->n_routing];
        assert_int_equal(x->oper, y->oper);
        assert_true(psyc_str_eq(x->name, y->name));
        if (!psyc_str_eq(x->value, y->value))
            fail_msg("value of %.*s: \"%.*s\" vs \"%.*s\"", (int)x->name.len, x->name.ptr,
                     (int)x->value.len, x->value.ptr, (int)y->value.len, y->value.ptr);
    }
    assert_int_equal(a->method.ptr == NULL, b->method.ptr == NULL);
    assert_true(psyc_str_eq(a->method, b->method));
    assert_true(psyc_str_eq(a->data, b->data));
}

/* One packet from a C string; returns the parse result. */
static int parse_one(const char *text, const psyc_limits *lim, psyc_packet *out, size_t *used,
                     size_t *err_off)
{
    psyc09_parser p;
    psyc09_parser_init(&p, lim);
    int rc = psyc09_parse_packet(&p, text, strlen(text), out, used);
    if (err_off)
        *err_off = p.error_offset;
    return rc;
}

/* Whole and byte-by-byte agree on `text`; returns the whole result. */
static void check_both(const char *text, const psyc_limits *lim, stream *whole)
{
    stream bytes;
    parse_stream(text, strlen(text), 0, lim, whole);
    parse_stream(text, strlen(text), 1, lim, &bytes);
    assert_streams_equal(whole, &bytes, text);
    stream_free(&bytes);
}

static void assert_rc_at(const char *text, const psyc_limits *lim, int err, size_t at)
{
    stream s;
    check_both(text, lim, &s);
    if (s.err != err || s.err_at != at)
        fail_msg("\"%s\": err %d at %zu, expected %d at %zu", text, s.err, s.err_at, err, at);
    stream_free(&s);
}

/* Parses one packet, asserts it renders back byte for byte. */
static void assert_roundtrip(const char *text, psyc_packet *out)
{
    size_t used = 0;
    assert_int_equal(parse_one(text, NULL, out, &used, NULL), 1);
    assert_int_equal(used, strlen(text));
    psyc_buf b;
    psyc_buf_init(&b);
    assert_int_equal(psyc_render09(out, &b), 0);
    if (b.len != used || memcmp(b.data, text, used) != 0)
        fail_msg("round trip of \"%s\" gave \"%.*s\"", text, (int)b.len, b.data);
    psyc_buf_free(&b);
    stream s;
    check_both(text, NULL, &s);
    assert_int_equal(s.n, 1);
    stream_free(&s);
}

/* ------------------------------------------------------------------ */
/* (1) + (3): every vector round-trips; byte by byte == whole */

static void test_vectors_roundtrip(void **state)
{
    (void)state;
    names ns = {0};
    all_vectors(&ns);
    size_t files = 0, packets = 0;
    for (size_t i = 0; i < ns.n; i++) {
        if (is_o08(ns.v[i]))
            continue;
        size_t len;
        char *buf = tf_read_file(ns.v[i], &len);
        assert_non_null(buf);
        stream s;
        parse_stream(buf, len, 0, NULL, &s);
        if (s.err || s.consumed != len || s.render_rc)
            fail_msg("%s: err %d at %zu, consumed %zu of %zu, render %d", ns.v[i], s.err, s.err_at,
                     s.consumed, len, s.render_rc);
        if (s.rendered.len != len || memcmp(s.rendered.data, buf, len) != 0)
            fail_msg("%s: render09(parse09(file)) differs:\n%.*s", ns.v[i], (int)s.rendered.len,
                     s.rendered.data);
        files++;
        packets += s.n;
        stream_free(&s);
        free(buf);
    }
    /* o01 holds three packets, every other file one */
    assert_int_equal(files, ns.n - 1);
    assert_int_equal(packets, files + 2);
    names_free(&ns);
}

static void test_vectors_bytewise(void **state)
{
    (void)state;
    names ns = {0};
    all_vectors(&ns);
    for (size_t i = 0; i < ns.n; i++) {
        size_t len;
        char *buf = tf_read_file(ns.v[i], &len);
        assert_non_null(buf);
        stream whole;
        parse_stream(buf, len, 0, NULL, &whole);
        for (size_t chunk = 1; chunk <= 7; chunk += 2) {
            stream pieces;
            parse_stream(buf, len, chunk, NULL, &pieces);
            assert_streams_equal(&whole, &pieces, ns.v[i]);
            stream_free(&pieces);
        }
        /* the packets themselves, not only their renderings */
        stream bytes;
        parse_stream(buf, len, 1, NULL, &bytes);
        for (size_t k = 0; k < whole.n; k++)
            assert_packets_equal(&whole.pk[k], &bytes.pk[k]);
        stream_free(&bytes);
        stream_free(&whole);
        free(buf);
    }
    names_free(&ns);
}

/* All the captures of a scenario as one stream, as they crossed the wire
 * (well, both directions interleaved), and every prefix of it. */
static void test_capture_streams(void **state)
{
    (void)state;
    names ns = {0};
    collect(&ns, CAP_DIR, 1);
    psyc_buf all;
    psyc_buf_init(&all);
    for (size_t i = 0; i < ns.n; i++) {
        size_t len;
        char *buf = tf_read_file(ns.v[i], &len);
        assert_non_null(buf);
        assert_int_equal(psyc_buf_append(&all, buf, len), 0);
        free(buf);
    }
    stream whole, pieces;
    parse_stream(all.data, all.len, 0, NULL, &whole);
    assert_int_equal(whole.err, 0);
    assert_int_equal(whole.n, ns.n);
    assert_int_equal(whole.consumed, all.len);
    assert_int_equal(whole.rendered.len, all.len);
    assert_memory_equal(whole.rendered.data, all.data, all.len);
    parse_stream(all.data, all.len, 13, NULL, &pieces);
    assert_streams_equal(&whole, &pieces, "captures");
    stream_free(&pieces);
    /* a truncated stream: complete packets only, the tail waits */
    for (size_t cut = 1; cut < 600; cut += 37) {
        stream cutw;
        parse_stream(all.data, all.len - cut, 0, NULL, &cutw);
        parse_stream(all.data, all.len - cut, 5, NULL, &pieces);
        assert_streams_equal(&cutw, &pieces, "truncated captures");
        assert_int_equal(cutw.err, 0);
        assert_true(cutw.consumed <= all.len - cut);
        assert_true(cutw.n < whole.n);
        assert_int_equal(cutw.consumed, whole.end[cutw.n - 1]);
        stream_free(&pieces);
        stream_free(&cutw);
    }
    stream_free(&whole);
    psyc_buf_free(&all);
    names_free(&ns);
}

/* ------------------------------------------------------------------ */
/* (2) contents per EXPECTED.txt */

static void load(const char *dir, const char *file, stream *s, char **buf, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    *buf = tf_read_file(path, len);
    assert_non_null(*buf);
    parse_stream(*buf, *len, 0, NULL, s);
}

static void test_o01_greeting(void **state)
{
    (void)state;
    stream s;
    char *buf;
    size_t len;
    load(OLD_DIR, "o01-circuit-greeting.psyc09", &s, &buf, &len);
    assert_int_equal(s.err, 0);
    assert_int_equal(s.n, 3);

    /* 1: the empty packet "." */
    const psyc_packet *p = &s.pk[0];
    assert_int_equal(s.end[0], 2);
    assert_int_equal(p->n_routing + p->n_entity, 0);
    assert_null(p->method.ptr);
    assert_int_equal(p->flags & (PSYC_PKT_HAS_DATA | PSYC_PKT_SEPARATOR), 0);

    /* 2: _notice_circuit_established */
    p = &s.pk[1];
    assert_true(p->flags & PSYC_PKT_SEPARATOR);
    assert_int_equal(p->n_routing, 2);
    assert_mod(&p->routing[0], ':', "_source", "psyc://psyced.example.net/");
    assert_mod(&p->routing[1], ':', "_target_peer", "psyc://192.0.2.7:-33012/");
    assert_int_equal(p->n_entity, 2);
    assert_mod(&p->entity[0], ':', "_implementation", "psyced/1.0 psyclpc/4.0 Linux x86_64");
    assert_mod(&p->entity[1], ':', "_page_description", "http://www.psyc.eu/");
    assert_str(p->method, "_notice_circuit_established");
    assert_true(p->flags & PSYC_PKT_HAS_DATA);
    assert_str(p->data, "Hello [_target_peer].\nCircuit to [_source] running [_implementation] established.");

    /* 3: _status_circuit */
    p = &s.pk[2];
    assert_int_equal(p->n_routing, 1);
    assert_mod(&p->routing[0], ':', "_source", "psyc://psyced.example.net/");
    assert_int_equal(p->n_entity, 7);
    assert_mod(&p->entity[0], ':', "_available_hashes", "sha1;md5;http-digest;digest-md5");
    assert_mod(&p->entity[3], ':', "_understand_modules", "_context");
    assert_mod(&p->entity[6], ':', "_using_modules", "_context");
    assert_str(p->method, "_status_circuit");
    assert_str(p->data, "Available protocols: [_available_protocols].");
    assert_int_equal(s.end[2], len);

    stream_free(&s);
    free(buf);
}

static void test_o02_o03_o06(void **state)
{
    (void)state;
    stream s;
    char *buf;
    size_t len;
    load(OLD_DIR, "o02-message-private.psyc09", &s, &buf, &len);
    assert_int_equal(s.n, 1);
    const psyc_packet *p = &s.pk[0];
    assert_int_equal(p->n_routing, 2);
    assert_mod(&p->routing[0], ':', "_source", "psyc://gw.example.org/~alice");
    assert_mod(&p->routing[1], ':', "_target", "psyc://psyced.example.net/~bob");
    assert_int_equal(p->n_entity, 1);
    assert_mod(&p->entity[0], ':', "_nick", "alice");
    assert_str(p->method, "_message_private");
    assert_str(p->data, "hello bob");
    stream_free(&s);

    /* zero-copy: simple values, method and body are views into buf */
    psyc_packet pk;
    psyc_packet_init(&pk);
    size_t used;
    assert_int_equal(parse_one(buf, NULL, &pk, &used, NULL), 1);
    assert_true(pk.entity[0].value.ptr > buf && pk.entity[0].value.ptr < buf + len);
    assert_true(pk.method.ptr > buf && pk.method.ptr < buf + len);
    assert_true(pk.data.ptr > buf && pk.data.ptr < buf + len);
    psyc_packet_free(&pk);
    free(buf);

    load(OLD_DIR, "o03-context-message-public.psyc09", &s, &buf, &len);
    p = &s.pk[0];
    assert_int_equal(p->n_routing, 2);
    assert_mod(&p->routing[0], ':', "_context", "psyc://psyced.example.net/@welcome");
    assert_mod(&p->routing[1], ':', "_source_relay", "psyc://gw.example.org/~alice");
    assert_str(p->data, "hi all");
    stream_free(&s);
    free(buf);

    load(OLD_DIR, "o06-request-enter.psyc09", &s, &buf, &len);
    p = &s.pk[0];
    assert_int_equal(p->n_routing, 3);
    assert_mod(&p->routing[2], ':', "_tag", "0a1b2c");
    assert_str(p->method, "_request_enter");
    assert_false(p->flags & PSYC_PKT_HAS_DATA);
    stream_free(&s);
    free(buf);
}

static void test_o04_list_continuation(void **state)
{
    (void)state;
    stream s;
    char *buf;
    size_t len;
    load(OLD_DIR, "o04-list-and-continuation.psyc09", &s, &buf, &len);
    assert_int_equal(s.err, 0);
    assert_int_equal(s.n, 1);
    const psyc_packet *p = &s.pk[0];
    assert_int_equal(p->n_routing, 2);
    assert_int_equal(p->n_entity, 2);
    assert_mod(&p->entity[0], ':', "_list_members",
               "| psyc://psyced.example.net/~bob| psyc://gw.example.org/~alice");
    psyc_list_parser lp;
    psyc_list_elem e;
    psyc_list_parser_init(&lp, p->entity[0].value);
    assert_int_equal(psyc_list_next(&lp, &e), PSYC_LIST_ELEM);
    assert_str(e.value, "psyc://psyced.example.net/~bob");
    assert_int_equal(psyc_list_next(&lp, &e), PSYC_LIST_ELEM);
    assert_str(e.value, "psyc://gw.example.org/~alice");
    assert_int_equal(psyc_list_next(&lp, &e), PSYC_LIST_END);
    assert_mod(&p->entity[1], ':', "_description", "line one\nline two");
    assert_str(p->method, "_status_place_members");
    assert_false(p->flags & PSYC_PKT_HAS_DATA);
    stream_free(&s);
    free(buf);

    /* captures: two lists in a row, and single-element lists */
    load(CAP_DIR "/4-place", "15-out-_status_place_members.psyc09", &s, &buf, &len);
    p = &s.pk[0];
    assert_int_equal(p->n_entity, 3);
    assert_mod(&p->entity[0], ':', "_list_members", "| psyc://psyced.test/~alice| psyc://127.0.0.2/~gw");
    assert_mod(&p->entity[1], ':', "_list_members_nicks", "| alice| gw");
    assert_mod(&p->entity[2], ':', "_nick_place", "Lab");
    stream_free(&s);
    free(buf);

    load(CAP_DIR "/4-place", "08-out-_echo_place_enter.psyc09", &s, &buf, &len);
    p = &s.pk[0];
    assert_mod(&p->entity[2], ':', "_list_members_nicks", "| gw");
    assert_mod(&p->entity[3], ':', "_list_members", "| psyc://127.0.0.2/~gw");
    stream_free(&s);
    free(buf);
}

static void test_o05_o07(void **state)
{
    (void)state;
    stream s;
    char *buf;
    size_t len;
    load(OLD_DIR, "o05-empty-packet-ping.psyc09", &s, &buf, &len);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.end[0], 2);
    assert_int_equal(s.pk[0].n_routing + s.pk[0].n_entity, 0);
    assert_null(s.pk[0].method.ptr);
    assert_true(s.pk[0].flags & PSYC_PKT_NO_SEPARATOR);
    stream_free(&s);
    free(buf);

    load(OLD_DIR, "o07-presence-context.psyc09", &s, &buf, &len);
    const psyc_packet *p = &s.pk[0];
    assert_int_equal(p->n_routing, 1);
    assert_int_equal(p->n_entity, 3);
    assert_mod(&p->entity[1], ':', "_degree_availability", "7");
    assert_mod(&p->entity[2], ':', "_description_presence", "");
    assert_non_null(p->entity[2].value.ptr);
    assert_str(p->method, "_notice_presence_here");
    stream_free(&s);
    free(buf);
}

static void test_o08_lone_dot(void **state)
{
    (void)state;
    stream s;
    char *buf;
    size_t len;
    load(OLD_DIR, "o08-INVALID-body-with-lone-dot-line.psyc09", &s, &buf, &len);
    assert_int_equal(s.n, 1);
    const psyc_packet *p = &s.pk[0];
    assert_int_equal(p->n_routing, 1);
    assert_int_equal(p->n_entity, 0);
    assert_str(p->method, "_message_private");
    assert_str(p->data, "first line");
    /* then "second" is read as a header line of the next packet */
    assert_int_equal(s.err, PSYC_ERR_METHOD_COMPACT);
    assert_int_equal(s.err_at, s.end[0]);
    assert_memory_equal(buf + s.err_at, "second\n", 7);
    stream_free(&s);

    /* error_offset is relative to the packet; the error is sticky */
    psyc09_parser pp;
    psyc_packet pk;
    size_t used;
    psyc09_parser_init(&pp, NULL);
    psyc_packet_init(&pk);
    assert_int_equal(psyc09_parse_packet(&pp, buf, len, &pk, &used), 1);
    assert_int_equal(psyc09_parse_packet(&pp, buf + used, len - used, &pk, &used), PSYC_ERR_METHOD_COMPACT);
    assert_int_equal(pp.error_offset, 0);
    assert_int_equal(psyc09_parse_packet(&pp, ".\n", 2, &pk, &used), PSYC_ERR_METHOD_COMPACT);
    psyc_packet_free(&pk);
    free(buf);
}

/* ------------------------------------------------------------------ */
/* parser rules beyond the vectors */

static void test_syntax_variants(void **state)
{
    (void)state;
    psyc_packet pk;
    psyc_packet_init(&pk);
    size_t used;

    /* SP instead of TAB (captures README), and a name with nothing after */
    assert_int_equal(parse_one(":_source psyc://x/~a\n\n:_nick\n-_foo\n_m\n.\n", NULL, &pk, &used, NULL), 1);
    assert_mod(&pk.routing[0], ':', "_source", "psyc://x/~a");
    assert_mod(&pk.entity[0], ':', "_nick", "");
    assert_mod(&pk.entity[1], '-', "_foo", "");

    /* only the first TAB/SP is the separator */
    assert_int_equal(parse_one("\n:_x\t\tfoo \n=_y  b\n.\n", NULL, &pk, &used, NULL), 1);
    assert_mod(&pk.entity[0], ':', "_x", "\tfoo ");
    assert_mod(&pk.entity[1], '=', "_y", " b");
    assert_null(pk.method.ptr);

    /* every glyph */
    assert_int_equal(parse_one("\n:_a\t1\n=_b\t2\n+_c\t3\n-_d\t4\n?_e\t5\n@_f\t6\n!_g\t7\n.\n", NULL, &pk, &used, NULL), 1);
    assert_int_equal(pk.n_entity, 7);
    assert_int_equal(pk.entity[4].oper, '?');
    assert_int_equal(pk.entity[6].oper, '!');

    /* continuation with SP, several lines, empty ones */
    assert_int_equal(parse_one("\n:_x\ta\n b\n\t\n\tc\n_m\n.\n", NULL, &pk, &used, NULL), 1);
    assert_mod(&pk.entity[0], ':', "_x", "a\nb\n\nc");

    /* an empty body line is a body; none is none */
    assert_int_equal(parse_one("_m\n\n.\n", NULL, &pk, &used, NULL), 1);
    assert_true(pk.flags & PSYC_PKT_HAS_DATA);
    assert_int_equal(pk.data.len, 0);
    assert_int_equal(parse_one("_m\n.\n", NULL, &pk, &used, NULL), 1);
    assert_false(pk.flags & PSYC_PKT_HAS_DATA);
    assert_int_equal(parse_one("_m\n\n\n.\n", NULL, &pk, &used, NULL), 1);
    assert_str(pk.data, "\n");
    /* in the body anything goes but "." */
    assert_int_equal(parse_one("_m\n:_x\ty\n_n\n..\n. \n\tz\n.\n", NULL, &pk, &used, NULL), 1);
    assert_str(pk.data, ":_x\ty\n_n\n..\n. \n\tz");
    assert_int_equal(used, strlen("_m\n:_x\ty\n_n\n..\n. \n\tz\n.\n"));

    /* further blank lines are ignored; each ends the open variable */
    assert_int_equal(parse_one(":_source\ts\n\n:_a\tb\n\n\n_m\n.\n", NULL, &pk, &used, NULL), 1);
    assert_int_equal(pk.n_routing, 1);
    assert_int_equal(pk.n_entity, 1);
    assert_rc_at(":_source\ts\n\n:_a\tb\n\n\tc\n.\n", NULL, PSYC_ERR_CONTINUATION, 19);

    /* two packets in one buffer, the second one incomplete */
    psyc09_parser p;
    psyc09_parser_init(&p, NULL);
    const char *two = ".\n_m\nbody";
    assert_int_equal(psyc09_parse_packet(&p, two, strlen(two), &pk, &used), 1);
    assert_int_equal(used, 2);
    assert_int_equal(psyc09_parse_packet(&p, two + 2, strlen(two) - 2, &pk, &used), 0);
    assert_int_equal(psyc09_parse_packet(&p, "_m\nbody\n.", 9, &pk, &used), 0);
    assert_int_equal(psyc09_parse_packet(&p, "_m\nbody\n.\n", 10, &pk, &used), 1);
    assert_str(pk.data, "body");

    psyc_packet_free(&pk);
}

static void test_blank_line_rules(void **state)
{
    (void)state;
    psyc_packet pk;
    psyc_packet_init(&pk);
    size_t used;

    /* no blank line: split by psyced's routing table (PSYC.md §4.1) */
    assert_roundtrip(":_source\ta\n:_tag\tt\n:_target_peer\tp\n:_nick\tb\n_m\nx\n.\n", &pk);
    assert_true(pk.flags & PSYC_PKT_NO_SEPARATOR);
    assert_int_equal(pk.n_routing, 3);
    assert_mod(&pk.routing[1], ':', "_tag", "t");
    assert_mod(&pk.routing[2], ':', "_target_peer", "p");
    assert_int_equal(pk.n_entity, 1);
    assert_mod(&pk.entity[0], ':', "_nick", "b");
    /* interleaved: the split keeps each side's order; rendered routing first */
    assert_int_equal(parse_one(":_nick\tb\n:_source\ta\n:_x\tc\n:_tag\tt\n.\n", NULL, &pk, &used, NULL), 1);
    assert_mod(&pk.routing[0], ':', "_source", "a");
    assert_mod(&pk.routing[1], ':', "_tag", "t");
    assert_mod(&pk.entity[0], ':', "_nick", "b");
    assert_mod(&pk.entity[1], ':', "_x", "c");
    assert_roundtrip(":_source\ta\n:_tag\tt\n:_nick\tb\n:_x\tc\n.\n", &pk);

    /* with one, everything before it is routing, whatever its name */
    assert_roundtrip(":_nick\tb\n\n:_source\ta\n_m\n.\n", &pk);
    assert_true(pk.flags & PSYC_PKT_SEPARATOR);
    assert_mod(&pk.routing[0], ':', "_nick", "b");
    assert_mod(&pk.entity[0], ':', "_source", "a");

    /* psyced's croak: an empty header (captures README) */
    assert_roundtrip("\n_error_invalid_method_compact\nCompact methods undefined as yet.\n.\n", &pk);
    assert_int_equal(pk.n_routing + pk.n_entity, 0);
    assert_roundtrip("\n.\n", &pk);
    assert_roundtrip(".\n", &pk);
    assert_roundtrip("_m\n.\n", &pk);
    assert_roundtrip(":_nick\tb\n_m\n.\n", &pk);
    assert_roundtrip(":_source\ta\n.\n", &pk);
    assert_roundtrip(":_foo\ta\n\n.\n", &pk);

    /* a continued value before the blank line: routing values cannot hold
     * LF, so it is an error once the variable turns out to be routing */
    assert_rc_at(":_source\ta\n\tb\n\n.\n", NULL, PSYC_ERR_INVALID, 11);
    assert_rc_at(":_source\ta\n\tb\n.\n", NULL, PSYC_ERR_INVALID, 11);
    assert_rc_at(":_foo\ta\n:_bar\tb\n\tb\n\tc\n\n_m\n.\n", NULL, PSYC_ERR_INVALID, 16);
    assert_int_equal(parse_one(":_foo\ta\n\tb\n_m\n.\n", NULL, &pk, &used, NULL), 1);
    assert_mod(&pk.entity[0], ':', "_foo", "a\nb");
    assert_int_equal(pk.n_routing, 0);
    /* list continuations are fine there: no LF */
    assert_roundtrip(":_list_understand_modules\t_state\n:\t_context\n\n_request_features\n.\n", &pk);
    assert_mod(&pk.routing[0], ':', "_list_understand_modules", "| _state| _context");

    psyc_packet_free(&pk);
}

static void test_lists(void **state)
{
    (void)state;
    psyc_packet pk;
    psyc_packet_init(&pk);
    size_t used;

    /* an element continued with TAB holds LF: length-prefixed in 1.0 form */
    assert_roundtrip("\n:_list_x\tA\n\tB\n:\tC\n=_list_y\ta|b\n=\t\n=\t\n_m\n.\n", &pk);
    assert_mod(&pk.entity[0], ':', "_list_x", "|3 A\nB| C");
    assert_mod(&pk.entity[1], '=', "_list_y", "|3 a|b||");

    /* the empty list, and a list starting with an empty element */
    assert_roundtrip("\n:_list_x\t\n:_list\t\n:\tb\n.\n", &pk);
    assert_mod(&pk.entity[0], ':', "_list_x", "");
    assert_mod(&pk.entity[1], ':', "_list", "|| b");
    assert_int_equal(parse_one("\n:_list_x\n.\n", NULL, &pk, &used, NULL), 1);
    assert_mod(&pk.entity[0], ':', "_list_x", "");

    /* a list continuation makes any variable a list (psyced listAppend);
     * the continuation's own glyph is ignored, as psyced does */
    assert_int_equal(parse_one("\n:_foo\tA\n=\tB\n: C\n.\n", NULL, &pk, &used, NULL), 1);
    assert_mod(&pk.entity[0], ':', "_foo", "| A| B| C");
    /* not _list: rendered as a plain value, stable from then on */
    psyc_buf b;
    psyc_buf_init(&b);
    assert_int_equal(psyc_render09(&pk, &b), 0);
    psyc_buf_putc(&b, '\0');
    assert_string_equal(b.data, "\n:_foo\t| A| B| C\n.\n");
    psyc_buf_free(&b);

    /* _list_ is a prefix match at `_` only */
    assert_int_equal(parse_one("\n:_listen\ta\n:_list_x\ta\n.\n", NULL, &pk, &used, NULL), 1);
    assert_mod(&pk.entity[0], ':', "_listen", "a");
    assert_mod(&pk.entity[1], ':', "_list_x", "| a");

    psyc_packet_free(&pk);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    /* psyced croaks _error_invalid_method_compact for all of these */
    assert_rc_at("second\n.\n", NULL, PSYC_ERR_METHOD_COMPACT, 0);
    assert_rc_at(":_a\tb\nSecond2\n.\n", NULL, PSYC_ERR_METHOD_COMPACT, 6);
    assert_rc_at("%_foo\tbar\n.\n", NULL, PSYC_ERR_SYNTAX09, 0);
    assert_rc_at("this is not psyc\n.\n", NULL, PSYC_ERR_SYNTAX09, 0);
    assert_rc_at(".foo\n", NULL, PSYC_ERR_SYNTAX09, 0);
    assert_rc_at("|\n", NULL, PSYC_ERR_SYNTAX09, 0);
    /* method must be a keyword */
    assert_rc_at(":_a\tb\n\n_message-private\nhi\n.\n", NULL, PSYC_ERR_METHOD, 7);
    assert_rc_at("_m \n.\n", NULL, PSYC_ERR_METHOD, 0);
    /* variable lines */
    assert_rc_at(":_foo-bar\tx\n.\n", NULL, PSYC_ERR_MOD_TAB, 0);
    assert_rc_at(":\n.\n", NULL, PSYC_ERR_MOD_NAME, 0);
    assert_rc_at(":%x\ty\n.\n", NULL, PSYC_ERR_MOD_NAME, 0);
    /* continuations without a variable */
    assert_rc_at("\tfoo\n.\n", NULL, PSYC_ERR_CONTINUATION, 0);
    assert_rc_at(" foo\n.\n", NULL, PSYC_ERR_CONTINUATION, 0);
    assert_rc_at(":\tfoo\n.\n", NULL, PSYC_ERR_CONTINUATION, 0);
    assert_rc_at(":_a\tb\n_m\n.\n\tc\n.\n", NULL, PSYC_ERR_CONTINUATION, 11);
    /* a line is judged when it is complete */
    assert_rc_at("second", NULL, 0, 0);
}

/* ------------------------------------------------------------------ */
/* (4) limits */

static void test_limits(void **state)
{
    (void)state;
    char *buf;
    size_t len;
    char path[1024];
    snprintf(path, sizeof path, "%s/o02-message-private.psyc09", OLD_DIR);
    buf = tf_read_file(path, &len);
    assert_non_null(buf);
    /* :_source\t...\n is 38 bytes, :_target\t...\n 40, "\n" 1 */

    psyc_limits lim = {0};
    lim.max_modifiers = 2;
    assert_rc_at(buf, &lim, PSYC_ERR_TOO_MANY, 79);
    lim.max_modifiers = 3;
    assert_rc_at(buf, &lim, 0, 0);

    memset(&lim, 0, sizeof lim);
    lim.max_value = 8;
    assert_rc_at(buf, &lim, PSYC_ERR_VALUE_TOO_LONG, 0);
    lim.max_value = 30;
    assert_rc_at(buf, &lim, 0, 0);
    /* continued values count as a whole ("a\nbcd" is 5 bytes) */
    lim.max_value = 4;
    assert_rc_at("\n:_x\ta\n\tbcd\n.\n", &lim, PSYC_ERR_VALUE_TOO_LONG, 7);
    assert_rc_at("\n:_x\ta\n\tbc\n.\n", &lim, 0, 0);
    assert_rc_at("\n:_list_x\ta\n:\tbcd\n.\n", &lim, PSYC_ERR_VALUE_TOO_LONG, 12);
    /* and so do body lines */
    assert_rc_at("_m\nabcd\nabcde\n.\n", &lim, PSYC_ERR_VALUE_TOO_LONG, 8);

    memset(&lim, 0, sizeof lim);
    lim.max_name = 6;
    assert_rc_at(buf, &lim, PSYC_ERR_NAME_TOO_LONG, 0);
    lim.max_name = 7;
    assert_rc_at(":_abcdef\tx\n_abcdef\n.\n", &lim, 0, 0);
    lim.max_name = 6;
    assert_rc_at(":_abcde\tx\n_abcdefg\n.\n", &lim, PSYC_ERR_NAME_TOO_LONG, 10);

    memset(&lim, 0, sizeof lim);
    lim.max_packet = 50; /* the second line crosses it */
    assert_rc_at(buf, &lim, PSYC_ERR_TOO_LARGE, 38);
    lim.max_packet = len; /* exactly fits */
    assert_rc_at(buf, &lim, 0, 0);
    lim.max_packet = len - 1; /* the final ".\n" crosses it */
    assert_rc_at(buf, &lim, PSYC_ERR_TOO_LARGE, len - 2);
    /* an endless line is cut off at max_packet + 1 bytes */
    lim.max_packet = 64;
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[0] = ':';
    big[1] = '_';
    big[2] = 'x';
    big[3] = '\t';
    big[sizeof big - 1] = '\0';
    assert_rc_at(big, &lim, PSYC_ERR_TOO_LARGE, 0);
    /* max_packet is per packet: many small packets are fine */
    lim.max_packet = 4;
    assert_rc_at(".\n.\n.\n_m\n.\n", &lim, PSYC_ERR_TOO_LARGE, 9);
    lim.max_packet = 5;
    assert_rc_at(".\n.\n.\n_m\n.\n", &lim, 0, 0);

    /* a whole file with small limits, any chunking: same outcome */
    memset(&lim, 0, sizeof lim);
    lim.max_packet = 100;
    lim.max_value = 20;
    stream whole, pieces;
    parse_stream(buf, len, 0, &lim, &whole);
    for (size_t chunk = 1; chunk < 12; chunk++) {
        parse_stream(buf, len, chunk, &lim, &pieces);
        assert_streams_equal(&whole, &pieces, "limits");
        stream_free(&pieces);
    }
    stream_free(&whole);
    free(buf);
}

/* ------------------------------------------------------------------ */
/* (5) renderer */

static void render_expect(const psyc_packet *p, int rc, const char *expect)
{
    psyc_buf b;
    psyc_buf_init(&b);
    assert_int_equal(psyc_buf_puts(&b, "prefix"), 0);
    int got = psyc_render09(p, &b);
    if (got != rc)
        fail_msg("render09: %d, expected %d", got, rc);
    if (rc) {
        /* nothing appended */
        assert_int_equal(b.len, 6);
        assert_memory_equal(b.data, "prefix", 6);
    } else {
        assert_int_equal(b.len, 6 + strlen(expect));
        if (memcmp(b.data + 6, expect, strlen(expect)) != 0)
            fail_msg("render09 gave \"%.*s\", expected \"%s\"", (int)b.len - 6, b.data + 6, expect);
    }
    psyc_buf_free(&b);
}

static void test_render_lone_dot(void **state)
{
    (void)state;
    static const char *const bad[] = {".", "a\n.", ".\nb", "a\n.\nb", "\n.\n"};
    static const char *const good[] = {"..", ". ", " .", "a.\n.b", "", "\n"};
    psyc_packet p;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        psyc_packet_init(&p);
        assert_int_equal(psyc_packet_routing_c(&p, "_source", "psyc://x/~a"), 0);
        assert_int_equal(psyc_packet_set_method(&p, psyc_str_c("_message_private")), 0);
        assert_int_equal(psyc_packet_set_data(&p, psyc_str_c(bad[i])), 0);
        render_expect(&p, PSYC_ERR_UNRENDERABLE, NULL);
        psyc_packet_free(&p);
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        psyc_packet_init(&p);
        assert_int_equal(psyc_packet_set_method(&p, psyc_str_c("_m")), 0);
        assert_int_equal(psyc_packet_set_data(&p, psyc_str_c(good[i])), 0);
        char expect[64];
        snprintf(expect, sizeof expect, "\n_m\n%s\n.\n", good[i]);
        render_expect(&p, 0, expect);
        psyc_packet_free(&p);
    }
}

static void test_render_values(void **state)
{
    (void)state;
    psyc_packet p;
    psyc_packet_init(&p);
    /* built packet (no blank-line flag): blank line before entity vars */
    assert_int_equal(psyc_packet_routing_c(&p, "_target", "psyc://x/~b"), 0);
    assert_int_equal(psyc_packet_entity_c(&p, "_description", "line one\nline two\n"), 0);
    assert_int_equal(psyc_packet_entity_c(&p, "_empty", ""), 0);
    assert_int_equal(psyc_packet_entity_c(&p, "_list_members", "| a| b c|3 d|e|1 \n|"), 0);
    assert_int_equal(psyc_packet_entity_c(&p, "_list_none", ""), 0);
    assert_int_equal(psyc_packet_add_entity(&p, '=', psyc_str_c("_list_one"), psyc_str_c("| x\ty")), 0);
    render_expect(&p, 0,
                  ":_target\tpsyc://x/~b\n\n"
                  ":_description\tline one\n\tline two\n\t\n"
                  ":_empty\t\n"
                  ":_list_members\ta\n:\tb c\n:\td|e\n:\t\n\t\n:\t\n"
                  ":_list_none\t\n"
                  "=_list_one\tx\ty\n"
                  ".\n");
    psyc_packet_free(&p);

    /* no blank line when nothing needs it */
    psyc_packet_init(&p);
    assert_int_equal(psyc_packet_routing_c(&p, "_source", "psyc://x/"), 0);
    render_expect(&p, 0, ":_source\tpsyc://x/\n.\n");
    /* ... but a routing name outside psyced's table needs it */
    assert_int_equal(psyc_packet_routing_c(&p, "_foo", "y"), 0);
    render_expect(&p, 0, ":_source\tpsyc://x/\n:_foo\ty\n\n.\n");
    psyc_packet_free(&p);

    /* NO_SEPARATOR keeps it out unless the split by name needs it */
    psyc_packet_init(&p);
    assert_int_equal(psyc_packet_routing_c(&p, "_source", "s"), 0);
    assert_int_equal(psyc_packet_entity_c(&p, "_nick", "n"), 0);
    assert_int_equal(psyc_packet_set_method(&p, psyc_str_c("_m")), 0);
    p.flags |= PSYC_PKT_NO_SEPARATOR;
    render_expect(&p, 0, ":_source\ts\n:_nick\tn\n_m\n.\n");
    assert_int_equal(psyc_packet_entity_c(&p, "_tag", "t"), 0);
    render_expect(&p, 0, ":_source\ts\n\n:_nick\tn\n:_tag\tt\n_m\n.\n");
    psyc_packet_free(&p);

    /* SEPARATOR forces it */
    psyc_packet_init(&p);
    p.flags |= PSYC_PKT_SEPARATOR;
    render_expect(&p, 0, "\n.\n");
    p.flags = 0;
    render_expect(&p, 0, ".\n");
    psyc_packet_free(&p);
}

static void test_render_errors(void **state)
{
    (void)state;
    psyc_packet p;
    psyc_modifier m = {.oper = ':', .name = PSYC_STR_LIT("_source"), .value = PSYC_STR_LIT("a\nb")};

    /* LF in a routing value */
    psyc_packet_init(&p);
    assert_int_equal(psyc_packet_push_modifier(&p, 1, &m), 0);
    render_expect(&p, PSYC_ERR_INVALID, NULL);
    psyc_packet_free(&p);

    /* bad operator or name */
    psyc_packet_init(&p);
    m = (psyc_modifier){.oper = '%', .name = PSYC_STR_LIT("_x"), .value = PSYC_STR_LIT("v")};
    assert_int_equal(psyc_packet_push_modifier(&p, 0, &m), 0);
    render_expect(&p, PSYC_ERR_INVALID, NULL);
    psyc_packet_free(&p);
    psyc_packet_init(&p);
    m = (psyc_modifier){.oper = ':', .name = PSYC_STR_LIT(""), .value = PSYC_STR_LIT("v")};
    assert_int_equal(psyc_packet_push_modifier(&p, 0, &m), 0);
    render_expect(&p, PSYC_ERR_INVALID, NULL);
    psyc_packet_free(&p);

    /* typed or malformed lists */
    psyc_packet_init(&p);
    assert_int_equal(psyc_packet_entity_c(&p, "_list_x", "_uniform| psyc://a/| psyc://b/"), 0);
    render_expect(&p, PSYC_ERR_UNRENDERABLE, NULL);
    psyc_packet_free(&p);
    psyc_packet_init(&p);
    assert_int_equal(psyc_packet_entity_c(&p, "_list_x", "|=_color blue"), 0);
    render_expect(&p, PSYC_ERR_UNRENDERABLE, NULL);
    psyc_packet_free(&p);
    psyc_packet_init(&p);
    assert_int_equal(psyc_packet_entity_c(&p, "_list_x", "|9 abc"), 0);
    render_expect(&p, PSYC_ERR_INVALID, NULL);
    psyc_packet_free(&p);

    /* 1.0-only packets */
    psyc_packet_init(&p);
    assert_int_equal(psyc_packet_routing_c(&p, "_context", "psyc://x/@p"), 0);
    p.flags |= PSYC_PKT_OPAQUE;
    p.content = psyc_str_c(":_nick\tx\n_m\n");
    render_expect(&p, PSYC_ERR_UNRENDERABLE, NULL);
    p.flags &= ~(unsigned)PSYC_PKT_OPAQUE;
    p.state_op = '?';
    render_expect(&p, PSYC_ERR_UNRENDERABLE, NULL);
    psyc_packet_free(&p);

    /* methods: a compact method cannot be sent, a body needs a method */
    psyc_packet_init(&p);
    assert_int_equal(psyc_packet_set_method(&p, psyc_str_c("message")), 0);
    render_expect(&p, PSYC_ERR_UNRENDERABLE, NULL);
    psyc_packet_free(&p);
    psyc_packet_init(&p);
    assert_int_equal(psyc_packet_set_data(&p, psyc_str_c("hi")), 0);
    render_expect(&p, PSYC_ERR_INVALID, NULL);
    p.method = psyc_str_c("_a b"); /* not a keyword */
    render_expect(&p, PSYC_ERR_INVALID, NULL);
    psyc_packet_free(&p);
}

/* ------------------------------------------------------------------ */
/* (6) property: parse09(render09(p)) == p */

static uint64_t rng_state;

static uint32_t rnd(void)
{
    /* xorshift64*: fixed seed, same packets on every run */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static size_t rnd_below(size_t n)
{
    return rnd() % n;
}

static const char *const ROUTING_NAMES[] = {"_source", "_target", "_context", "_source_relay",
                                            "_tag", "_tag_relay", "_target_peer", "_count"};

/* a keyword starting with `prefix`, never a routing-table or list name */
static void rnd_name(char *out, size_t cap, const char *prefix)
{
    static const char kw[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    size_t extra = rnd_below(12);
    for (size_t i = 0; i < extra && n + 1 < cap; i++)
        out[n++] = kw[rnd_below(sizeof kw - 1)];
    out[n] = '\0';
}

/* bytes; `lf` allows LF; never a lone "." line when `nodot` */
static size_t rnd_bytes(char *out, size_t cap, int lf)
{
    static const char common[] = "ab .|\t_:=\n";
    size_t n = rnd_below(cap < 24 ? cap : 24);
    for (size_t i = 0; i < n; i++) {
        char c = rnd_below(3) ? common[rnd_below(sizeof common - 1)] : (char)(rnd_below(255) + 1);
        if (rnd_below(50) == 0)
            c = '\0';
        if (c == '\n' && !lf)
            c = 'n';
        out[i] = c;
    }
    return n;
}

static int has_lone_dot(const char *d, size_t n)
{
    size_t i = 0;
    while (i <= n) {
        const char *lf = memchr(d + i, '\n', n - i);
        size_t end = lf ? (size_t)(lf - d) : n;
        if (end - i == 1 && d[i] == '.')
            return 1;
        if (!lf)
            break;
        i = end + 1;
    }
    return 0;
}

static void rnd_modifier(psyc_packet *p, int routing, int by_name)
{
    static const char ops[] = ":=+-?@!";
    char name[32], val[64];
    char oper = ops[rnd_below(7)];
    int list = rnd_below(4) == 0;
    if (routing && (by_name || rnd_below(2)))
        snprintf(name, sizeof name, "%s", ROUTING_NAMES[rnd_below(8)]);
    else if (list)
        rnd_name(name, sizeof name, rnd_below(2) ? "_list_" : "_list");
    else
        rnd_name(name, sizeof name, "_v");
    if (routing && !by_name && rnd_below(3) == 0)
        rnd_name(name, sizeof name, "_r"); /* needs the blank line */
    if (!psyc_var_is_list(psyc_str_c(name)))
        list = 0;

    psyc_buf v;
    psyc_buf_init(&v);
    if (list) {
        /* 0..4 elements; a single empty element is not expressible (it reads
         * back as the empty list) */
        size_t n = rnd_below(5);
        for (size_t i = 0; i < n; i++) {
            size_t l = rnd_bytes(val, sizeof val, !routing);
            if (n == 1 && l == 0)
                val[l++] = 'e';
            assert_int_equal(psyc_list_append(&v, (psyc_str){val, l}), 0);
        }
    } else {
        size_t l = rnd_bytes(val, sizeof val, !routing);
        assert_int_equal(psyc_buf_append(&v, val, l), 0);
    }
    psyc_str name_s = psyc_str_c(name), value = {v.data ? v.data : "", v.len};
    int rc = routing ? psyc_packet_add_routing(p, oper, name_s, value)
                     : psyc_packet_add_entity(p, oper, name_s, value);
    assert_int_equal(rc, 0);
    psyc_buf_free(&v);
}

static void rnd_packet(psyc_packet *p)
{
    psyc_packet_init(p);
    /* NO_SEPARATOR: names that the split by name puts back in place */
    int by_name = rnd_below(3) == 0;
    p->flags = by_name ? PSYC_PKT_NO_SEPARATOR : PSYC_PKT_SEPARATOR;
    size_t nr = rnd_below(4), ne = rnd_below(5);
    for (size_t i = 0; i < nr; i++)
        rnd_modifier(p, 1, by_name);
    for (size_t i = 0; i < ne; i++)
        rnd_modifier(p, 0, by_name);
    if (rnd_below(4)) {
        char m[32];
        rnd_name(m, sizeof m, "_");
        assert_int_equal(psyc_packet_set_method(p, psyc_str_c(m)), 0);
        if (rnd_below(3)) {
            char d[256];
            size_t n = 0;
            size_t lines = rnd_below(4);
            for (size_t i = 0; i < lines; i++)
                n += rnd_bytes(d + n, 60, 1);
            if (has_lone_dot(d, n))
                n = 0;
            assert_int_equal(psyc_packet_set_data(p, (psyc_str){d, n}), 0);
        }
    }
}

static void test_property_roundtrip(void **state)
{
    (void)state;
    rng_state = 0x9E3779B97F4A7C15ULL;
    psyc_buf r1, r2;
    psyc_buf_init(&r1);
    psyc_buf_init(&r2);
    for (int iter = 0; iter < 5000; iter++) {
        psyc_packet gen, back;
        rnd_packet(&gen);
        psyc_buf_reset(&r1);
        int rc = psyc_render09(&gen, &r1);
        if (rc)
            fail_msg("iteration %d: render09 failed %d", iter, rc);

        size_t used = 0;
        psyc09_parser p;
        psyc09_parser_init(&p, NULL);
        psyc_packet_init(&back);
        rc = psyc09_parse_packet(&p, r1.data, r1.len, &back, &used);
        if (rc != 1)
            fail_msg("iteration %d: parse09 gave %d at %zu of:\n%.*s", iter, rc, p.error_offset,
                     (int)r1.len, r1.data);
        assert_int_equal(used, r1.len);
        assert_packets_equal(&gen, &back);

        psyc_buf_reset(&r2);
        assert_int_equal(psyc_render09(&back, &r2), 0);
        assert_int_equal(r1.len, r2.len);
        assert_memory_equal(r1.data, r2.data, r1.len);

        /* and in pieces, from a moving buffer */
        if (iter % 10 == 0) {
            stream whole, pieces;
            parse_stream(r1.data, r1.len, 0, NULL, &whole);
            parse_stream(r1.data, r1.len, 1 + (size_t)iter % 5, NULL, &pieces);
            assert_streams_equal(&whole, &pieces, "property");
            assert_int_equal(pieces.n, 1);
            assert_packets_equal(&gen, &pieces.pk[0]);
            stream_free(&whole);
            stream_free(&pieces);
        }
        psyc_packet_free(&back);
        psyc_packet_free(&gen);
    }
    psyc_buf_free(&r1);
    psyc_buf_free(&r2);
}

/* A 1 MB packet fed 64 bytes at a time: the parser resumes where it left
 * off (a rescan from the packet start would be quadratic and time out). */
static void test_large_incremental(void **state)
{
    (void)state;
    psyc_buf in;
    psyc_buf_init(&in);
    assert_int_equal(psyc_buf_puts(&in, ":_source\tpsyc://x/~a\n\n:_description\tfirst"), 0);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(psyc_buf_puts(&in, "\n\tcontinued line of a long value"), 0);
    assert_int_equal(psyc_buf_puts(&in, "\n_message_private\n"), 0);
    while (in.len < ((size_t)1 << 20))
        assert_int_equal(psyc_buf_puts(&in, "a body line of a large message, long enough to matter\n"), 0);
    assert_int_equal(psyc_buf_puts(&in, ".\n"), 0);

    psyc09_parser p;
    psyc_packet pkt;
    size_t used = 0;
    psyc09_parser_init(&p, NULL);
    psyc_packet_init(&pkt);
    size_t len = 0;
    int rc = 0;
    while (rc == 0 && len < in.len) {
        len = len + 64 < in.len ? len + 64 : in.len;
        rc = psyc09_parse_packet(&p, in.data, len, &pkt, &used);
    }
    assert_int_equal(rc, 1);
    assert_int_equal(used, in.len);
    assert_int_equal(pkt.entity[0].value.len, 5 + 2000 * 31);
    psyc_buf out;
    psyc_buf_init(&out);
    assert_int_equal(psyc_render09(&pkt, &out), 0);
    assert_int_equal(out.len, in.len);
    assert_memory_equal(out.data, in.data, in.len);
    psyc_buf_free(&out);
    psyc_packet_free(&pkt);
    psyc_buf_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_roundtrip),
        cmocka_unit_test(test_vectors_bytewise),
        cmocka_unit_test(test_capture_streams),
        cmocka_unit_test(test_o01_greeting),
        cmocka_unit_test(test_o02_o03_o06),
        cmocka_unit_test(test_o04_list_continuation),
        cmocka_unit_test(test_o05_o07),
        cmocka_unit_test(test_o08_lone_dot),
        cmocka_unit_test(test_syntax_variants),
        cmocka_unit_test(test_blank_line_rules),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_render_lone_dot),
        cmocka_unit_test(test_render_values),
        cmocka_unit_test(test_render_errors),
        cmocka_unit_test(test_property_roundtrip),
        cmocka_unit_test(test_large_incremental),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
