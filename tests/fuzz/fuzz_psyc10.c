/*
 * fuzz_psyc10.c: the PSYC 1.0 parser and renderer.
 * Properties checked on every input (abort() on violation):
 *  - whole-buffer and chunked feeding (chunk sizes from the first byte,
 *    buffer reallocated between rounds) give the same packets and errors;
 *  - every accepted packet re-renders to exactly the bytes it came from,
 *    in normal and routing-only mode;
 *  - rendering a parsed packet as 0.9 and parsing that back never crashes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "psyc/psyc.h"

typedef struct result {
    psyc_buf rendered; /* concatenated re-renders */
    int last_rc;
    size_t packets;
} result;

static void cross_render09(const psyc_packet *pkt)
{
    psyc_buf b;
    psyc_buf_init(&b);
    if (psyc_render09(pkt, &b) == 0) {
        psyc09_parser p;
        psyc_packet back;
        size_t used;
        psyc09_parser_init(&p, NULL);
        psyc_packet_init(&back);
        (void)psyc09_parse_packet(&p, b.data, b.len, &back, &used);
        psyc_packet_free(&back);
    }
    psyc_buf_free(&b);
}

static void run(const uint8_t *data, size_t len, size_t chunk, unsigned flags, result *r, int cross)
{
    psyc_parser p;
    psyc_packet pkt;
    psyc_limits lim = {.max_packet = 1 << 16, .max_modifiers = 64, .max_value = 1 << 12};
    psyc_parser_init(&p, &lim, flags);
    psyc_packet_init(&pkt);
    psyc_buf_init(&r->rendered);
    r->packets = 0;
    size_t base = 0, have = chunk ? 0 : len;
    char *copy = NULL;
    int rc = 1;
    while (base < len) {
        size_t avail = have - base, used = 0;
        free(copy);
        copy = malloc(avail ? avail : 1);
        if (avail)
            memcpy(copy, data + base, avail);
        rc = psyc_parse_packet(&p, copy, avail, &pkt, &used);
        if (rc < 0)
            break;
        if (rc == 0) {
            if (have == len)
                break;
            have = have + chunk > len ? len : have + chunk;
            continue;
        }
        size_t before = r->rendered.len;
        if (psyc_render(&pkt, &r->rendered) != 0)
            abort();
        if (r->rendered.len - before != used || memcmp(r->rendered.data + before, copy, used) != 0)
            abort(); /* parse + render must be byte-identical */
        if (cross)
            cross_render09(&pkt);
        r->packets++;
        base += used;
    }
    r->last_rc = rc;
    free(copy);
    psyc_packet_free(&pkt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = 1 + data[0] % 17;
    for (unsigned flags = 0; flags <= PSYC_PARSE_ROUTING_ONLY; flags += PSYC_PARSE_ROUTING_ONLY) {
        result whole, pieces;
        run(data + 1, size - 1, 0, flags, &whole, flags == 0);
        run(data + 1, size - 1, chunk, flags, &pieces, 0);
        if (whole.last_rc != pieces.last_rc || whole.packets != pieces.packets ||
            whole.rendered.len != pieces.rendered.len ||
            (whole.rendered.len && memcmp(whole.rendered.data, pieces.rendered.data, whole.rendered.len) != 0))
            abort();
        psyc_buf_free(&whole.rendered);
        psyc_buf_free(&pieces.rendered);
    }
    return 0;
}
