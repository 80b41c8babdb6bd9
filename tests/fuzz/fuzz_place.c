/*
 * fuzz_place.c: libFuzzer target for a hosted place (routing/place.h),
 * which takes whatever PSYC packets other servers send to @room: enters,
 * leaves, messages, nick changes, kicks, bans, topics, listings, from any
 * source. The input is a sequence of PSYC 1.0 packets, handled in order;
 * the first byte picks the history size. Properties, abort() on a
 * violation:
 *  - every packet to send has a method; a cast names its routes, a
 *    unicast has a _target;
 *  - the saved state (owner, topic, bans) loads into a new place and saves
 *    again to the same bytes;
 *  - the raw input given as a saved state is taken or refused, never a
 *    crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routing/place.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PLACE_FUZZ_UNI "psyc://example.org/@room"

static void place_fuzz_check(int ok)
{
    if (!ok)
        abort();
}

static void place_fuzz_outs(const place_outs *o)
{
    for (size_t i = 0; i < o->n; i++) {
        const place_out *x = &o->v[i];
        place_fuzz_check(x->p.method.ptr && x->p.method.len > 0);
        if (x->cast)
            place_fuzz_check(x->n_routes == 0 || x->routes != NULL);
        else
            place_fuzz_check(psyc_packet_find_routing(&x->p, "_target") != NULL);
    }
}

static void place_fuzz_roundtrip(const place_room *pl)
{
    psyc_buf a, b;
    psyc_buf_init(&a);
    psyc_buf_init(&b);
    place_fuzz_check(place_state_save(pl, &a) == 0);
    place_room *copy = place_new(PLACE_FUZZ_UNI, 4);
    place_fuzz_check(copy != NULL);
    place_fuzz_check(place_state_load(copy, a.data ? a.data : "", a.len) == 0);
    place_fuzz_check(place_state_save(copy, &b) == 0);
    place_fuzz_check(a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0));
    place_free(copy);
    psyc_buf_free(&a);
    psyc_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    place_room *pl = place_new(PLACE_FUZZ_UNI, data[0] % 8);
    place_fuzz_check(pl != NULL);
    const char *buf = (const char *)data + 1;
    size_t left = size - 1, packets = 0;
    psyc_parser parser;
    psyc_parser_init(&parser, NULL, 0);
    while (left > 0 && packets < 64) {
        psyc_packet p;
        psyc_packet_init(&p);
        size_t used = 0;
        int rc = psyc_parse_packet(&parser, buf, left, &p, &used);
        if (rc == 1) {
            place_outs outs = {0};
            place_handle(pl, &p, 1764000000 + (int64_t)packets, &outs);
            place_fuzz_outs(&outs);
            place_outs_free(&outs);
        }
        psyc_packet_free(&p);
        if (rc != 1 || used == 0 || used > left)
            break;
        buf += used;
        left -= used;
        packets++;
    }
    place_fuzz_roundtrip(pl);
    place_free(pl);
    /* The input as a stored state: taken or refused. */
    place_room *st = place_new(PLACE_FUZZ_UNI, 4);
    place_fuzz_check(st != NULL);
    place_state_load(st, (const char *)data + 1, size - 1);
    place_free(st);
    return 0;
}
