/*
 * bench_translate.c: the cost of the bridge's translation (`make bench`).
 * 50 000 generated stanzas (xml_gen_stream: presence with caps, chat
 * messages with chat states, disco iqs; natural addresses), best of 3 runs,
 * all in one process:
 *   xml      the baseline: parse into xml_node trees (what every stanza
 *            costs anyway on the way in);
 *   to_psyc  parse + translate_from_xmpp + render PSYC 1.0;
 *   psyc     parsing those PSYC packets (the baseline on the way back);
 *   to_xmpp  PSYC parse + translate_to_xmpp + serialize.
 * Ratios: to_psyc / xml and to_xmpp / psyc, i.e. what translation adds to
 * reading the message at all.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "routing/translate.h"

static const addr_map bench_map = {.mode = ADDR_MODE_NATURAL};

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct bench_ctx {
    int translate;       /* 0: parse only */
    psyc_buf *packets;   /* rendered packets (to_psyc), NULL: not kept */
    size_t stanzas, translated;
} bench_ctx;

static void bench_stanza(void *ud, xml_node *st)
{
    bench_ctx *c = ud;
    c->stanzas++;
    if (c->translate) {
        psyc_packet p;
        psyc_packet_init(&p);
        if (translate_from_xmpp(&bench_map, st, &p, NULL) == TRANSLATE_OK) {
            psyc_buf out;
            psyc_buf_init(&out);
            if (psyc_render(&p, &out) == 0) {
                c->translated++;
                if (c->packets)
                    psyc_buf_append(c->packets, out.data, out.len);
            }
            psyc_buf_free(&out);
        }
        psyc_packet_free(&p);
    }
    xml_node_free(st);
}

static double bench_xml_run(const psyc_buf *data, bench_ctx *c)
{
    xml_stream_handler h = {.stanza = bench_stanza};
    xml_stream *s = xml_stream_new(NULL, &h, c);
    double t0 = bench_now();
    for (size_t off = 0; off < data->len; off += 4096) {
        size_t n = data->len - off < 4096 ? data->len - off : 4096;
        if (xml_stream_feed(s, data->data + off, n, NULL) != XML_STREAM_OK)
            break;
    }
    double t = bench_now() - t0;
    xml_stream_free(s);
    return t;
}

/* Parses every packet of `psyc`; with `translate`, turns each into a
 * stanza and serializes it. Returns the time, *n the packets. */
static double bench_psyc_run(const psyc_buf *psyc, int translate, size_t *n, size_t *ok)
{
    psyc_parser parser;
    psyc_parser_init(&parser, NULL, 0);
    psyc_packet p;
    psyc_packet_init(&p);
    xml_nsmap map;
    xml_nsmap_init(&map, XML_NS_SERVER);
    psyc_buf out;
    psyc_buf_init(&out);
    *n = *ok = 0;
    double t0 = bench_now();
    size_t off = 0, used;
    while (off < psyc->len && psyc_parse_packet(&parser, psyc->data + off, psyc->len - off, &p, &used) == 1) {
        off += used;
        (*n)++;
        if (translate) {
            xml_node *st = NULL;
            if (translate_to_xmpp(&bench_map, &p, &st) == TRANSLATE_OK) {
                psyc_buf_reset(&out);
                if (xml_serialize(&out, st, &map) == 0)
                    (*ok)++;
                xml_node_free(st);
            }
        }
    }
    double t = bench_now() - t0;
    psyc_buf_free(&out);
    psyc_packet_free(&p);
    return t;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 50000;
    psyc_buf data, packets;
    psyc_buf_init(&data);
    psyc_buf_init(&packets);
    if (xml_gen_stream(&data, n, 7, XML_NS_SERVER) != 0) {
        fprintf(stderr, "bench_translate: out of memory\n");
        return 1;
    }
    double best_xml = 1e9, best_to_psyc = 1e9, best_psyc = 1e9, best_to_xmpp = 1e9;
    size_t stanzas = 0, translated = 0, npk = 0, nok = 0;
    for (int run = 0; run < 3; run++) {
        bench_ctx a = {0, NULL, 0, 0}, b = {1, run == 0 ? &packets : NULL, 0, 0};
        double t = bench_xml_run(&data, &a);
        best_xml = t < best_xml ? t : best_xml;
        t = bench_xml_run(&data, &b);
        best_to_psyc = t < best_to_psyc ? t : best_to_psyc;
        stanzas = b.stanzas;
        translated = b.translated;
        size_t x, y;
        t = bench_psyc_run(&packets, 0, &x, &y);
        best_psyc = t < best_psyc ? t : best_psyc;
        t = bench_psyc_run(&packets, 1, &npk, &nok);
        best_to_xmpp = t < best_to_xmpp ? t : best_to_xmpp;
    }
    printf("%zu stanzas (%.1f MB), %zu translated to PSYC (%.1f MB of PSYC 1.0), %zu back to XMPP\n",
           stanzas, (double)data.len / 1e6, translated, (double)packets.len / 1e6, nok);
    printf("  xml      parse only               %8.1f ms  %7.0f stanzas/s  (baseline)\n", best_xml * 1e3,
           (double)stanzas / best_xml);
    printf("  to_psyc  parse+translate+render   %8.1f ms  %7.0f stanzas/s  %.2fx the xml baseline\n",
           best_to_psyc * 1e3, (double)stanzas / best_to_psyc, best_to_psyc / best_xml);
    printf("  psyc     parse only               %8.1f ms  %7.0f packets/s  (baseline)\n", best_psyc * 1e3,
           (double)npk / best_psyc);
    printf("  to_xmpp  parse+translate+serialize %7.1f ms  %7.0f packets/s  %.2fx the psyc baseline\n",
           best_to_xmpp * 1e3, (double)npk / best_to_xmpp, best_to_xmpp / best_psyc);
    psyc_buf_free(&data);
    psyc_buf_free(&packets);
    return translated && nok ? 0 : 1;
}
