/* mcast_seq.c: delivery in counter order, exactly once (see mcast.h). */
#include <stdlib.h>

#include "routing/mcast.h"

int mc_seq_init(mc_seq *s, uint64_t next, size_t window)
{
    s->next = next;
    s->window = window ? window : 1024;
    s->dups = s->gaps = 0;
    s->held = calloc(s->window, sizeof *s->held);
    s->held_counter = calloc(s->window, sizeof *s->held_counter);
    if (!s->held || !s->held_counter) {
        free(s->held);
        free(s->held_counter);
        s->held = NULL;
        s->held_counter = NULL;
        return -1;
    }
    return 0;
}

void mc_seq_free(mc_seq *s, void (*drop)(void *ud, void *pkt), void *ud)
{
    for (size_t i = 0; s->held && i < s->window; i++)
        if (s->held[i] && drop)
            drop(ud, s->held[i]);
    free(s->held);
    free(s->held_counter);
    s->held = NULL;
    s->held_counter = NULL;
}

static int mc_seq_is_held(const mc_seq *s, uint64_t c)
{
    size_t i = (size_t)(c % s->window);
    return s->held[i] && s->held_counter[i] == c;
}

/* Delivers the held packets that follow next without a gap. */
static void mc_seq_drain(mc_seq *s, mc_deliver_fn deliver, void *ud)
{
    while (mc_seq_is_held(s, s->next)) {
        size_t i = (size_t)(s->next % s->window);
        void *p = s->held[i];
        s->held[i] = NULL;
        deliver(ud, s->next++, p);
    }
}

mc_seq_result mc_seq_offer(mc_seq *s, uint64_t c, void *pkt, mc_deliver_fn deliver, void *ud)
{
    if (c < s->next || (c > s->next && c - s->next <= s->window && mc_seq_is_held(s, c))) {
        s->dups++;
        return MC_SEQ_DUPLICATE;
    }
    if (c > s->next) {
        /* Slots hold next+1 .. next+window, each counter in its own slot. */
        if (c - s->next > s->window)
            return MC_SEQ_TOO_EARLY;
        size_t i = (size_t)(c % s->window);
        s->held[i] = pkt;
        s->held_counter[i] = c;
        s->gaps++;
        return MC_SEQ_HELD;
    }
    deliver(ud, s->next++, pkt);
    mc_seq_drain(s, deliver, ud);
    return MC_SEQ_DELIVERED;
}

uint64_t mc_seq_missing(const mc_seq *s, uint64_t upto, uint64_t *first)
{
    *first = s->next;
    uint64_t n = 0;
    /* next itself is never held; count the unheld run from it. */
    for (uint64_t c = s->next; c < upto && (c == s->next || !mc_seq_is_held(s, c)); c++)
        n++;
    return n;
}

uint64_t mc_seq_skip(mc_seq *s, uint64_t upto, mc_deliver_fn deliver, void *ud)
{
    uint64_t lost = 0;
    while (s->next < upto) {
        if (mc_seq_is_held(s, s->next)) {
            size_t i = (size_t)(s->next % s->window);
            void *p = s->held[i];
            s->held[i] = NULL;
            deliver(ud, s->next, p);
        } else {
            lost++;
        }
        s->next++;
    }
    mc_seq_drain(s, deliver, ud);
    return lost;
}
