/* psyc_cmd.c: `psycgatectl psyc check|dump|bench`, the codec on files. */
#include "ctl/ctl.h"
#include "psyc/psyc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct opts {
    psyc_syntax syntax; /* UNKNOWN: detect per file */
    unsigned flags;     /* PSYC_PARSE_ROUTING_ONLY */
    long iterations;
    int first_file;     /* index into argv */
} opts;

/* One parser for either syntax; both take a buffer that starts at the
 * current packet. */
typedef struct packet_stream {
    psyc_syntax syntax;
    psyc_parser p10;
    psyc09_parser p09;
} packet_stream;

static void stream_init(packet_stream *s, psyc_syntax syntax, unsigned flags)
{
    s->syntax = syntax;
    psyc_parser_init(&s->p10, NULL, flags);
    psyc09_parser_init(&s->p09, NULL);
}

static int stream_next(packet_stream *s, const char *buf, size_t len, psyc_packet *pkt, size_t *used)
{
    if (s->syntax == PSYC_SYNTAX_09)
        return psyc09_parse_packet(&s->p09, buf, len, pkt, used);
    return psyc_parse_packet(&s->p10, buf, len, pkt, used);
}

static size_t stream_error_offset(const packet_stream *s)
{
    return s->syntax == PSYC_SYNTAX_09 ? s->p09.error_offset : s->p10.error_offset;
}

static int render_as(psyc_syntax syntax, const psyc_packet *pkt, psyc_buf *out)
{
    return syntax == PSYC_SYNTAX_09 ? psyc_render09(pkt, out) : psyc_render(pkt, out);
}

static int parse_opts(int argc, char **argv, opts *o, int allow_n)
{
    o->syntax = PSYC_SYNTAX_UNKNOWN;
    o->flags = 0;
    o->iterations = 100000;
    int i = 0;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--routing-only") == 0) {
            o->flags |= PSYC_PARSE_ROUTING_ONLY;
        } else if (strcmp(argv[i], "--syntax") == 0 && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(v, "0.9") == 0)
                o->syntax = PSYC_SYNTAX_09;
            else if (strcmp(v, "1.0") == 0)
                o->syntax = PSYC_SYNTAX_10;
            else {
                fprintf(stderr, "psycgatectl: --syntax takes 0.9 or 1.0\n");
                return -1;
            }
        } else if (allow_n && strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            char *end;
            o->iterations = strtol(argv[++i], &end, 10);
            if (*end || o->iterations <= 0) {
                fprintf(stderr, "psycgatectl: -n takes a positive number\n");
                return -1;
            }
        } else {
            fprintf(stderr, "psycgatectl: unknown option %s\n", argv[i]);
            return -1;
        }
    }
    o->first_file = i;
    if (i == argc) {
        fprintf(stderr, "psycgatectl: no FILE given\n");
        return -1;
    }
    return 0;
}

/* A circuit's first byte names its syntax (PSYC.md §2.1); a file of
 * captured packets may start mid-stream with a modifier line, and then its
 * name decides: *.psyc09 is 0.9, anything else 1.0. */
static psyc_syntax file_syntax(const opts *o, const char *path, const char *buf, size_t len)
{
    if (o->syntax != PSYC_SYNTAX_UNKNOWN)
        return o->syntax;
    psyc_syntax s = len ? psyc_detect_syntax((unsigned char)buf[0]) : PSYC_SYNTAX_UNKNOWN;
    if (s == PSYC_SYNTAX_09 || s == PSYC_SYNTAX_10)
        return s;
    size_t n = strlen(path);
    return n >= 7 && strcmp(path + n - 7, ".psyc09") == 0 ? PSYC_SYNTAX_09 : PSYC_SYNTAX_10;
}

/* A _list value that does not parse is an error of the packet, even though
 * the framing is fine (vector err-02-list). Returns the bad modifier. */
static const psyc_modifier *bad_list(const psyc_packet *pkt)
{
    for (int r = 0; r < 2; r++) {
        const psyc_modifier *m = r ? pkt->entity : pkt->routing;
        size_t n = r ? pkt->n_entity : pkt->n_routing;
        for (size_t i = 0; i < n; i++) {
            if (!psyc_var_is_list(m[i].name))
                continue;
            psyc_list_parser lp;
            psyc_list_elem e;
            int rc;
            psyc_list_parser_init(&lp, m[i].value);
            while ((rc = psyc_list_next(&lp, &e)) == PSYC_LIST_TYPE || rc == PSYC_LIST_ELEM)
                ;
            if (rc == PSYC_LIST_ERROR)
                return &m[i];
        }
    }
    return NULL;
}

/* Checks one file; prints "ok FILE" or "error FILE: byte N: REASON". */
static int check_file(const opts *o, const char *path)
{
    size_t len;
    char *buf = ctl_read_file(path, &len);
    if (!buf) {
        printf("error %s: byte 0: cannot read file\n", path);
        return 1;
    }
    psyc_syntax syntax = file_syntax(o, path, buf, len);
    packet_stream s;
    stream_init(&s, syntax, o->flags);
    psyc_packet pkt;
    psyc_buf out;
    psyc_packet_init(&pkt);
    psyc_buf_init(&out);
    size_t base = 0, packets = 0;
    int status = 0;
    while (base < len) {
        size_t used = 0;
        int rc = stream_next(&s, buf + base, len - base, &pkt, &used);
        if (rc < 0) {
            printf("error %s: byte %zu: %s\n", path, base + stream_error_offset(&s), psyc_strerror(rc));
            status = 1;
            break;
        }
        if (rc == 0) {
            printf("error %s: byte %zu: incomplete packet (%zu bytes without an end)\n", path, base, len - base);
            status = 1;
            break;
        }
        const psyc_modifier *bad = bad_list(&pkt);
        if (bad) {
            printf("error %s: byte %zu: malformed list value in %.*s\n", path,
                   (size_t)(bad->value.ptr - buf), (int)bad->name.len, bad->name.ptr);
            status = 1;
            break;
        }
        psyc_buf_reset(&out);
        rc = render_as(syntax, &pkt, &out);
        if (rc < 0) {
            printf("error %s: byte %zu: cannot re-render: %s\n", path, base, psyc_strerror(rc));
            status = 1;
            break;
        }
        if (out.len != used || memcmp(out.data, buf + base, used) != 0) {
            size_t k = 0;
            while (k < used && k < out.len && out.data[k] == buf[base + k])
                k++;
            printf("error %s: byte %zu: re-rendered packet differs\n", path, base + k);
            status = 1;
            break;
        }
        packets++;
        base += used;
    }
    if (status == 0 && packets == 0) {
        printf("error %s: byte 0: no packet\n", path);
        status = 1;
    }
    if (status == 0)
        printf("ok %s\n", path);
    psyc_buf_free(&out);
    psyc_packet_free(&pkt);
    free(buf);
    return status;
}

static int cmd_check(int argc, char **argv)
{
    opts o;
    if (parse_opts(argc, argv, &o, 0) != 0)
        return 2;
    int status = 0;
    for (int i = o.first_file; i < argc; i++)
        status |= check_file(&o, argv[i]);
    return status;
}

static void print_buf(psyc_buf *b)
{
    if (b->len)
        fwrite(b->data, 1, b->len, stdout);
    psyc_buf_reset(b);
}

/* 1.0: the parser's own events. */
static int dump_events10(const opts *o, const char *buf, size_t len, psyc_buf *out, size_t *packets)
{
    psyc_parser p;
    psyc_parser_init(&p, NULL, o->flags);
    size_t base = 0;
    for (;;) {
        psyc_event ev;
        int rc = psyc_parse_next(&p, buf + base, len - base, &ev);
        if (rc < 0) {
            printf("ERROR %d at byte %zu: %s\n", rc, base + p.error_offset, psyc_strerror(rc));
            return 1;
        }
        if (rc == PSYC_EV_MORE) {
            if (base < len) {
                printf("INCOMPLETE (%zu bytes unparsed)\n", len - base);
                return 1;
            }
            return 0;
        }
        psyc_dump_event(out, rc, &ev);
        print_buf(out);
        if (rc == PSYC_EV_COMPLETE) {
            (*packets)++;
            base += psyc_parser_consumed(&p);
        }
    }
}

/* 0.9 has no event API: print the events a parse of each packet means. */
static int dump_packets09(const char *buf, size_t len, psyc_buf *out, size_t *packets)
{
    psyc09_parser p;
    psyc_packet pkt;
    psyc09_parser_init(&p, NULL);
    psyc_packet_init(&pkt);
    size_t base = 0;
    int status = 0;
    while (base < len) {
        size_t used = 0;
        int rc = psyc09_parse_packet(&p, buf + base, len - base, &pkt, &used);
        if (rc < 0) {
            printf("ERROR %d at byte %zu: %s\n", rc, base + p.error_offset, psyc_strerror(rc));
            status = 1;
            break;
        }
        if (rc == 0) {
            printf("INCOMPLETE (%zu bytes unparsed)\n", len - base);
            status = 1;
            break;
        }
        psyc_dump_packet(out, &pkt);
        print_buf(out);
        (*packets)++;
        base += used;
    }
    psyc_packet_free(&pkt);
    return status;
}

static int cmd_dump(int argc, char **argv)
{
    opts o;
    if (parse_opts(argc, argv, &o, 0) != 0)
        return 2;
    const char *path = argv[o.first_file];
    size_t len;
    char *buf = ctl_read_file(path, &len);
    if (!buf)
        return 1;
    psyc_buf out;
    psyc_buf_init(&out);
    size_t packets = 0;
    psyc_syntax syntax = file_syntax(&o, path, buf, len);
    int status = syntax == PSYC_SYNTAX_09 ? dump_packets09(buf, len, &out, &packets)
                                          : dump_events10(&o, buf, len, &out, &packets);
    printf("# syntax=%s packets=%zu\n", syntax == PSYC_SYNTAX_09 ? "0.9" : "1.0", packets);
    psyc_buf_free(&out);
    free(buf);
    return status;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmd_bench(int argc, char **argv)
{
    opts o;
    if (parse_opts(argc, argv, &o, 1) != 0)
        return 2;
    const char *path = argv[o.first_file];
    size_t len;
    char *buf = ctl_read_file(path, &len);
    if (!buf)
        return 1;
    psyc_syntax syntax = file_syntax(&o, path, buf, len);
    packet_stream s;
    psyc_packet pkt;
    psyc_packet_init(&pkt);
    size_t packets = 0;
    int status = 0;
    double t0 = now_seconds();
    for (long it = 0; it < o.iterations && status == 0; it++) {
        stream_init(&s, syntax, o.flags);
        size_t base = 0;
        while (base < len) {
            size_t used = 0;
            if (stream_next(&s, buf + base, len - base, &pkt, &used) != 1) {
                fprintf(stderr, "psycgatectl: %s does not parse completely\n", path);
                status = 1;
                break;
            }
            packets++;
            base += used;
        }
    }
    double secs = now_seconds() - t0;
    if (status == 0 && packets > 0) {
        double bytes = (double)len * (double)o.iterations;
        printf("%s: %zu packets in %.3f s: %.1f ns/packet, %.1f MB/s (%s%s)\n", path, packets, secs,
               secs * 1e9 / (double)packets, bytes / secs / 1e6, syntax == PSYC_SYNTAX_09 ? "0.9" : "1.0",
               o.flags & PSYC_PARSE_ROUTING_ONLY ? ", routing-only" : "");
    }
    psyc_packet_free(&pkt);
    free(buf);
    return status;
}

int ctl_psyc(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "psycgatectl psyc: check, dump or bench\n");
        return 2;
    }
    if (strcmp(argv[0], "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(argv[0], "dump") == 0)
        return cmd_dump(argc - 1, argv + 1);
    if (strcmp(argv[0], "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
    fprintf(stderr, "psycgatectl psyc: unknown command '%s'\n", argv[0]);
    return 2;
}
