/*
 * xml_cmd.c: psycgatectl xml check|bench|gen: the XMPP stream parser on
 * captured or generated streams.
 *
 *   xml check FILE   one line per event (open, stanza, restart, close) or
 *                    the stream error; exit 1 on a stream error. Restarts
 *                    after <proceed/>/<starttls/> (TLS) and <success/>
 *                    (SASL) as the state machines do (RFC 6120 §5.4.3.3,
 *                    §6.4.6), so decrypted captures parse whole.
 *   xml bench [-n RUNS] [-c CHUNK] FILE
 *                    bare libxml2 SAX vs own trees vs libstrophe trees,
 *                    serializers; ratios against the bare run.
 *   xml gen N [SEED] a generated stream of N stanzas on stdout.
 */
#include "ctl/ctl.h"
#include "xmpp/xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_CHUNK 4096

typedef struct check {
    xml_stream *s;
    xml_nsmap map;
    size_t stanzas;
    int restart;
} check;

static void put_value(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
}

static void on_open(void *ud, const xml_stream_header *h)
{
    check *c = ud;
    xml_nsmap_init(&c->map, h->content_ns);
    printf("open");
    const char *names[] = {"from", "to", "id", "version", "xml:lang", "xmlns"};
    const char *vals[] = {h->from, h->to, h->id, h->version, h->lang, h->content_ns};
    for (int i = 0; i < 6; i++)
        if (vals[i]) {
            printf(" %s=", names[i]);
            put_value(vals[i]);
        }
    putchar('\n');
}

static void on_stanza(void *ud, xml_node *st)
{
    check *c = ud;
    c->stanzas++;
    const char *pfx = NULL;
    for (unsigned i = 0; i < c->map.n; i++)
        if (st->ns && strcmp(c->map.decl[i].uri, st->ns) == 0)
            pfx = c->map.decl[i].prefix;
    if (pfx)
        printf("%s:", pfx);
    put_value(st->name);
    static const char *const attrs[] = {"from", "to", "type", "id"};
    for (int i = 0; i < 4; i++) {
        const char *v = xml_attr_get(st, attrs[i]);
        if (v) {
            printf(" %s=", attrs[i]);
            put_value(v);
        }
    }
    if (!pfx && !xml_ns_is_content(st->ns)) {
        printf(" xmlns=");
        put_value(st->ns);
    }
    putchar('\n');
    /* Where the stream layer's users restart (RFC 6120 §5.4.3.3, §6.4.6). */
    if (xml_is(st, "proceed", XML_NS_TLS) || xml_is(st, "starttls", XML_NS_TLS) ||
        xml_is(st, "success", XML_NS_SASL)) {
        xml_stream_restart(c->s);
        c->restart = 1;
    }
    xml_node_free(st);
}

static void on_close(void *ud)
{
    (void)ud;
    printf("close\n");
}

static int xml_check(const char *path)
{
    size_t len;
    char *data = ctl_read_file(path, &len);
    if (!data)
        return 2;
    check c = {0};
    xml_stream_handler h = {.open = on_open, .stanza = on_stanza, .close = on_close};
    c.s = xml_stream_new(NULL, &h, &c);
    if (!c.s) {
        free(data);
        fprintf(stderr, "psycgatectl: out of memory\n");
        return 2;
    }
    int rc = 0;
    size_t off = 0;
    while (off < len) {
        size_t n = len - off < CHECK_CHUNK ? len - off : CHECK_CHUNK, used = 0;
        xml_status st = xml_stream_feed(c.s, data + off, n, &used);
        if (st == XML_STREAM_ERROR) {
            const char *text;
            xml_cond cond = xml_stream_error(c.s, &text);
            printf("error %s: %s (after %zu stanzas)\n", xml_cond_name(cond), text, c.stanzas);
            rc = 1;
            break;
        }
        if (st == XML_STREAM_CLOSED)
            break;
        if (st == XML_STREAM_RESTART)
            printf("restart\n"); /* the rest of the chunk starts the new document */
        off += used;
    }
    xml_stream_free(c.s);
    free(data);
    return rc;
}

static int xml_bench(int argc, char **argv)
{
    int runs = 5;
    size_t chunk = 4096;
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            chunk = (size_t)strtoul(argv[++i], NULL, 10);
        else
            path = argv[i];
    }
    if (!path || runs < 1 || chunk < 1) {
        fprintf(stderr, "usage: psycgatectl xml bench [-n RUNS] [-c CHUNK] FILE\n");
        return 2;
    }
    size_t len;
    char *data = ctl_read_file(path, &len);
    if (!data)
        return 2;
    psyc_buf report;
    psyc_buf_init(&report);
    int rc = xml_bench_all(data, len, chunk, runs, &report);
    fwrite(report.data, 1, report.len, stdout);
    psyc_buf_free(&report);
    free(data);
    return rc ? 1 : 0;
}

static int xml_gen(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: psycgatectl xml gen N [SEED]\n");
        return 2;
    }
    size_t n = (size_t)strtoul(argv[0], NULL, 10);
    uint32_t seed = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1;
    psyc_buf out;
    psyc_buf_init(&out);
    int rc = xml_gen_stream(&out, n, seed, XML_NS_SERVER);
    if (rc == 0 && fwrite(out.data, 1, out.len, stdout) != out.len)
        rc = -1;
    psyc_buf_free(&out);
    return rc ? 1 : 0;
}

int ctl_xml(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[0], "check") == 0) {
        int rc = 0;
        for (int i = 1; i < argc; i++) {
            if (argc > 2)
                printf("# %s\n", argv[i]);
            int r = xml_check(argv[i]);
            if (r > rc)
                rc = r;
        }
        return rc;
    }
    if (argc >= 1 && strcmp(argv[0], "bench") == 0)
        return xml_bench(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "gen") == 0)
        return xml_gen(argc - 1, argv + 1);
    fprintf(stderr, "usage: psycgatectl xml check FILE... | bench [-n RUNS] [-c CHUNK] FILE | gen N [SEED]\n");
    return 2;
}
