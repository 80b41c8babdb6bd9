/*
 * fuzz_psyc_link.c: the PSYC circuit state machine (gateway/psyc_link.c)
 * fed arbitrary bytes in chunks, as a peer would send them.
 * Properties: never crashes or leaks; once closed it stays closed; every
 * byte it answers with parses as complete packets of the circuit's syntax
 * (a greeting, pong or croak must never be malformed).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/psyc_link.h"

static void on_event(void *ctx, psyc_link *link, psyc_link_event ev, const psyc_packet *packet, int answered)
{
    (void)link;
    (void)ev;
    (void)packet;
    (void)answered;
    (*(size_t *)ctx)++;
}

static void check_output(psyc_syntax syntax, const psyc_buf *out)
{
    if (syntax != PSYC_SYNTAX_09 && syntax != PSYC_SYNTAX_10)
        return;
    psyc_packet pkt;
    psyc_packet_init(&pkt);
    size_t base = 0;
    while (base < out->len) {
        size_t used = 0;
        int rc;
        if (syntax == PSYC_SYNTAX_09) {
            psyc09_parser p;
            psyc09_parser_init(&p, NULL);
            rc = psyc09_parse_packet(&p, out->data + base, out->len - base, &pkt, &used);
        } else {
            psyc_parser p;
            psyc_parser_init(&p, NULL, 0);
            rc = psyc_parse_packet(&p, out->data + base, out->len - base, &pkt, &used);
        }
        if (rc != 1)
            abort();
        base += used;
    }
    psyc_packet_free(&pkt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t events = 0;
    psyc_link link;
    psyc_link_params params = {
        .host = "gw.example.org",
        .implementation = "psycgate/fuzz",
        .peer_ip = "192.0.2.7",
        .peer_port = 33012,
        .max_packet = 4096,
        .on_event = on_event,
        .ctx = &events,
    };
    if (psyc_link_init(&link, &params) != 0)
        return 0;
    size_t chunk = 1 + data[0] % 64;
    uint64_t now = 0;
    int closed = 0;
    psyc_buf out;
    psyc_buf_init(&out);
    for (size_t off = 1; off < size && !closed; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        closed = psyc_link_feed(&link, data + off, n, now);
        now += 50000; /* crosses the pong interval now and then */
        psyc_link_take_output(&link, &out);
        check_output(link.syntax, &out);
        psyc_buf_free(&out);
    }
    if (closed && link.state != PSYC_LINK_CLOSED)
        abort();
    psyc_link_free(&link);
    return 0;
}
