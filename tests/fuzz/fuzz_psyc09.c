/*
 * fuzz_psyc09.c: the PSYC 0.9 parser and renderer (PSYC.md §2.2).
 * The input is a stream of 0.9 packets. Properties checked on every input
 * (abort() on violation):
 *  - whole-buffer and chunked feeding give the same packets (compared by
 *    their renderings and sizes) and the same error at the same offset.
 *    Chunk sizes, and small limits for half the inputs, come from the first
 *    byte (which is parsed as well); the chunked buffer is reallocated on every call, so a view kept
 *    across calls is a use-after-free under ASan;
 *  - every parsed packet renders (PSYC_ERR_UNRENDERABLE tolerated), the
 *    rendering parses back as exactly one packet, and that renders to the
 *    same bytes again: render09 o parse09 is a fixpoint after one round.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "psyc/psyc.h"

typedef struct run09 {
    psyc_buf trace; /* per packet: its size, render09's result and bytes */
    int rc;         /* last parse result */
    size_t err_at;  /* absolute offset of the error line */
    size_t consumed;
} run09;

static void check_fixpoint(const psyc_buf *r1)
{
    psyc09_parser p;
    psyc_packet back;
    psyc_buf r2;
    size_t used = 0;
    psyc09_parser_init(&p, NULL);
    psyc_packet_init(&back);
    psyc_buf_init(&r2);
    if (psyc09_parse_packet(&p, r1->data, r1->len, &back, &used) != 1 || used != r1->len)
        abort();
    if (psyc_render09(&back, &r2) != 0)
        abort();
    if (r2.len != r1->len || memcmp(r2.data, r1->data, r1->len) != 0)
        abort();
    psyc_packet_free(&back);
    psyc_buf_free(&r2);
}

static void record(run09 *r, const psyc_packet *pkt, size_t used, int check)
{
    psyc_buf b;
    psyc_buf_init(&b);
    int rc = psyc_render09(pkt, &b);
    /* parse09 never produces what render09 calls invalid (e.g. LF in a
     * routing value); lone-dot bodies cannot come out of it either */
    if (rc != 0 && rc != PSYC_ERR_UNRENDERABLE)
        abort();
    if (rc == 0 && check)
        check_fixpoint(&b);
    char head[64];
    int n = 0;
    size_t u = used;
    do {
        head[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    head[n++] = rc ? '!' : ':';
    if (psyc_buf_append(&r->trace, head, (size_t)n) || psyc_buf_append(&r->trace, b.data, b.len))
        abort();
    psyc_buf_free(&b);
}

static void run(const uint8_t *data, size_t len, const psyc_limits *lim, int chunked, run09 *r)
{
    psyc09_parser p;
    psyc_packet pkt;
    psyc09_parser_init(&p, lim);
    psyc_packet_init(&pkt);
    psyc_buf_init(&r->trace);
    r->rc = 0;
    r->err_at = 0;

    uint32_t x = data[0];
    size_t maxc = 1 + data[0] % 17;
    size_t base = 0;                  /* start of the current packet */
    size_t have = chunked ? 0 : len;  /* bytes fed so far */
    char *cur = NULL;                 /* chunked: copy of data[base, have) */
    for (;;) {
        size_t avail = have - base, used = 0;
        const char *buf = chunked ? cur : (const char *)data + base;
        int rc = psyc09_parse_packet(&p, buf, avail, &pkt, &used);
        r->rc = rc;
        if (rc < 0) {
            r->err_at = base + p.error_offset;
            break;
        }
        if (rc == 1) {
            if (used == 0 || used > avail)
                abort();
            record(r, &pkt, used, !chunked);
            base += used;
            if (chunked) {
                /* keep the rest of the buffer, at a new address */
                char *rest = malloc(have - base + 1);
                if (!rest)
                    abort();
                memcpy(rest, cur + used, have - base);
                free(cur);
                cur = rest;
            }
            continue;
        }
        if (have == len)
            break; /* incomplete tail */
        x = x * 1103515245u + 12345u;
        size_t add = 1 + (x >> 16) % maxc;
        if (add > len - have)
            add = len - have;
        char *grown = malloc(avail + add);
        if (!grown)
            abort();
        if (avail)
            memcpy(grown, cur, avail);
        memcpy(grown + avail, data + have, add);
        free(cur);
        cur = grown;
        have += add;
    }
    r->consumed = base;
    free(cur);
    psyc_packet_free(&pkt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    psyc_limits lim = {.max_packet = 1 << 16, .max_modifiers = 64, .max_value = 1 << 12, .max_name = 64};
    if (data[0] & 1) {
        /* Small limits, so every limit is hit at some chunking. Chosen by
         * the low bit, so that inputs starting with a plausible first byte
         * (`=`, `_`, `+`, TAB ...) get them and the first line still parses. */
        size_t k = data[0] >> 1;
        lim.max_packet = 16 + (k & 0x3f) * 4;
        lim.max_modifiers = 1 + (k & 3);
        lim.max_value = 4 + (k & 0x1c);
        lim.max_name = 3 + (k & 7);
    }
    run09 whole, pieces;
    run(data, size, &lim, 0, &whole);
    run(data, size, &lim, 1, &pieces);
    if (whole.rc != pieces.rc || whole.err_at != pieces.err_at || whole.consumed != pieces.consumed ||
        whole.trace.len != pieces.trace.len ||
        (whole.trace.len && memcmp(whole.trace.data, pieces.trace.data, whole.trace.len) != 0))
        abort();
    psyc_buf_free(&whole.trace);
    psyc_buf_free(&pieces.trace);
    return 0;
}
