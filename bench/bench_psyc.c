/*
 * bench_psyc.c: PSYC codec throughput (`make bench`).
 * For presence-, chat- and profile-sized packets (the packet classes of
 * libpsyc's benchmark, PSYC.md §7) and for binary bodies of 1 KB .. 1 MB:
 *  - tokenize: psyc_parse_next events only (what libpsyc's test_psyc_speed measures),
 *  - packet:   psyc_parse_packet into a packet object,
 *  - render:   psyc_render of that packet,
 *  - 0.9:      psyc09_parse_packet of the same packet rendered as 0.9,
 *  - baseline: one memchr pass counting LFs over the same bytes, measured
 *              in the same run; ratios are against it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "psyc/psyc.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile size_t sink;

/* Runs fn until at least 0.2 s have passed; returns ns per call. */
#define MEASURE(result, body)                                                                          \
    do {                                                                                               \
        long iters = 0, batch = 1;                                                                     \
        double t0 = now(), t;                                                                          \
        for (;;) {                                                                                     \
            for (long k = 0; k < batch; k++) {                                                         \
                body;                                                                                  \
            }                                                                                          \
            iters += batch;                                                                            \
            t = now() - t0;                                                                            \
            if (t > 0.2)                                                                               \
                break;                                                                                 \
            batch *= 2;                                                                                \
        }                                                                                              \
        (result) = t * 1e9 / (double)iters;                                                            \
    } while (0)

static size_t count_lines(const char *b, size_t n)
{
    size_t c = 0;
    const char *p = b, *end = b + n;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        c++;
        p++;
    }
    return c;
}

static size_t tokenize(const char *b, size_t n)
{
    psyc_parser p;
    psyc_event ev;
    psyc_parser_init(&p, NULL, 0);
    size_t events = 0;
    int rc;
    while ((rc = psyc_parse_next(&p, b, n, &ev)) > 0) {
        events++;
        if (rc == PSYC_EV_COMPLETE)
            break;
    }
    return events;
}

static void bench_one(const char *label, psyc_packet *pkt)
{
    psyc_buf wire, wire09, out;
    psyc_buf_init(&wire);
    psyc_buf_init(&wire09);
    psyc_buf_init(&out);
    if (psyc_render(pkt, &wire) != 0) {
        fprintf(stderr, "bench: cannot render %s\n", label);
        exit(1);
    }
    int has09 = psyc_render09(pkt, &wire09) == 0;
    psyc_packet parsed;
    psyc_packet_init(&parsed);
    psyc_parser parser;
    size_t used;

    double base_ns, tok_ns, pkt_ns, render_ns, p09_ns = 0;
    MEASURE(base_ns, sink += count_lines(wire.data, wire.len));
    MEASURE(tok_ns, sink += tokenize(wire.data, wire.len));
    MEASURE(pkt_ns, {
        psyc_parser_init(&parser, NULL, 0);
        sink += (size_t)psyc_parse_packet(&parser, wire.data, wire.len, &parsed, &used);
    });
    psyc_parser_init(&parser, NULL, 0);
    psyc_parse_packet(&parser, wire.data, wire.len, &parsed, &used);
    MEASURE(render_ns, {
        psyc_buf_reset(&out);
        psyc_render(&parsed, &out);
        sink += out.len;
    });
    if (has09) {
        psyc09_parser p09;
        MEASURE(p09_ns, {
            psyc09_parser_init(&p09, NULL);
            sink += (size_t)psyc09_parse_packet(&p09, wire09.data, wire09.len, &parsed, &used);
        });
    }
    printf("%-22s %8zu B  tokenize %9.1f ns (%5.1fx memchr)  packet %9.1f ns  render %9.1f ns  "
           "0.9 parse %9.1f ns  memchr %8.1f ns  %7.0f MB/s\n",
           label, wire.len, tok_ns, tok_ns / base_ns, pkt_ns, render_ns, p09_ns, base_ns,
           (double)wire.len / tok_ns * 1e3);
    psyc_packet_free(&parsed);
    psyc_buf_free(&wire);
    psyc_buf_free(&wire09);
    psyc_buf_free(&out);
}

int main(void)
{
    psyc_packet p;

    /* The three small packets have the shapes of libpsyc's own benchmark
     * packets (PSYC.md §7: presence 81 B, chat 119 B, user profile 185 B),
     * so ns/packet compares with its published tokenizer figures. */

    /* presence: a person context multicast */
    psyc_packet_init(&p);
    psyc_packet_routing_c(&p, "_context", "psyc://example.org/~alice1");
    psyc_packet_add_entity(&p, '=', PSYC_STR_LIT("_degree_availability"), PSYC_STR_LIT("4"));
    psyc_packet_set_method(&p, PSYC_STR_LIT("_notice_presence"));
    p.flags |= PSYC_PKT_NO_CONTENT_LENGTH;
    bench_one("presence", &p);
    psyc_packet_free(&p);

    /* chat message */
    psyc_packet_init(&p);
    psyc_packet_routing_c(&p, "_source", "psyc://example.org/~alice1");
    psyc_packet_routing_c(&p, "_target", "psyc://example.net/~bob");
    psyc_packet_set_method(&p, PSYC_STR_LIT("_message"));
    psyc_packet_set_data(&p, PSYC_STR_LIT("Are you there, Bob? It is me, Alice!"));
    p.flags |= PSYC_PKT_NO_CONTENT_LENGTH;
    bench_one("chat", &p);
    psyc_packet_free(&p);

    /* user profile: entity variables only, no routing */
    psyc_packet_init(&p);
    psyc_packet_entity_c(&p, "_name", "Alice Liddell Example");
    psyc_packet_entity_c(&p, "_title_job", "Engineer");
    psyc_packet_entity_c(&p, "_country", "U");
    psyc_packet_entity_c(&p, "_address_street", "1 Rabbit Hole");
    psyc_packet_entity_c(&p, "_address_code_postal", "12345");
    psyc_packet_entity_c(&p, "_address_city", "Oxford");
    psyc_packet_entity_c(&p, "_page", "http://example.org");
    for (size_t i = 0; i < p.n_entity; i++)
        p.entity[i].flags = PSYC_MOD_TEXT;
    psyc_packet_set_method(&p, PSYC_STR_LIT("_profile_user"));
    p.flags |= PSYC_PKT_NO_CONTENT_LENGTH | PSYC_PKT_SEPARATOR;
    bench_one("profile", &p);
    psyc_packet_free(&p);

    /* binary bodies: the cost must not grow with the size (length-framed) */
    static const size_t sizes[] = {1024, 65536, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char *body = malloc(sizes[i]);
        for (size_t k = 0; k < sizes[i]; k++)
            body[k] = (char)(k * 7 + 1);
        psyc_packet_init(&p);
        psyc_packet_routing_c(&p, "_source", "psyc://example.org/~alice");
        psyc_packet_set_method(&p, PSYC_STR_LIT("_notice_file"));
        psyc_packet_set_data(&p, (psyc_str){body, sizes[i]});
        char label[48];
        snprintf(label, sizeof label, "binary body %zu KB", sizes[i] / 1024);
        bench_one(label, &p);
        psyc_packet_free(&p);
        free(body);
    }
    return 0;
}
