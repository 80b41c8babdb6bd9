/*
 * fuzz_psyc_link.c: the PSYC circuit state machine (psyc/link.c)
 * fed arbitrary bytes in chunks, as a peer would send them, on the
 * accepting or (by the first byte) the connecting side, with host checks
 * that accept, refuse or stay pending until after the chunk.
 * Properties: never crashes or leaks; once closed it stays closed; every
 * byte it answers with parses as complete packets of the circuit's syntax
 * (a greeting, pong, croak, authorization or refusal must never be
 * malformed).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "psyc/psyc.h"

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

/* Host checks: decided by the host's length, so one input always takes
 * the same path. */
static int on_auth(void *ctx, psyc_link *link, const char *host, char *why, size_t whysz)
{
    (void)ctx;
    (void)link;
    (void)why;
    (void)whysz;
    return (int)(strlen(host) % 3); /* REFUSE, ACCEPT, PENDING */
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
        .active = (data[0] & 0x40) != 0,
        .syntax = (data[0] & 0x80) ? PSYC_SYNTAX_10 : PSYC_SYNTAX_09,
        .peer_host = "psyced.example.net",
        .auth_tag = "f00d",
        .on_event = on_event,
        .authenticate = on_auth,
        .ctx = &events,
    };
    if (psyc_link_init(&link, &params) != 0)
        return 0;
    size_t chunk = 1 + data[0] % 64;
    uint64_t now = 0;
    int closed = 0;
    psyc_buf out;
    psyc_buf_init(&out);
    psyc_link_take_output(&link, &out);
    check_output(link.syntax, &out);
    psyc_buf_free(&out);
    for (size_t off = 1; off < size && !closed; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        closed = psyc_link_feed(&link, data + off, n, now);
        /* A pending lookup ends between chunks, accepted or not. */
        while (!closed && link.state == PSYC_LINK_HOLD) {
            char host[256];
            memcpy(host, link.held_host, sizeof host);
            closed = psyc_link_auth_result(&link, host, (int)(off & 1), "fuzz", now);
        }
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
