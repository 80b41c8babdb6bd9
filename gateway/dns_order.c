/* dns_order.c: RFC 2782 ordering of SRV records (see dns.h). Pure: no I/O,
 * no clock, the random source is a parameter, so tests can pin it. */
#include <stdint.h>

#include "gateway/dns.h"

/* Uniform in [0, n) from one 32-bit draw (multiply-shift; the bias is at
 * most n / 2^32, far below anything a weight of 16 bits can express). */
static uint32_t dns_order_below(dns_rand_fn rand, void *ctx, uint64_t n)
{
    return (uint32_t)(((uint64_t)rand(ctx) * n) >> 32);
}

int dns_srv_order(const dns_srv_rr *rr, size_t n, dns_rand_fn rand, void *rand_ctx, size_t *order)
{
    if (n > DNS_SRV_MAX)
        return -1;

    /* Stable sort of the indices by priority (insertion sort: n <= 16).
     * Stability keeps the wire order inside a priority, which makes the
     * weighted pick below a pure function of (records, random numbers). */
    size_t idx[DNS_SRV_MAX];
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && rr[idx[j - 1]].priority > rr[i].priority) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }

    size_t out = 0;
    for (size_t start = 0; start < n;) {
        size_t end = start + 1;
        while (end < n && rr[idx[end]].priority == rr[idx[start]].priority)
            end++;

        /* idx[start..end) is one priority; picked records are swapped to
         * the front of what is left, so idx[k..end) are the unpicked ones,
         * kept in wire order by shifting rather than swapping. */
        for (size_t k = start; k < end; k++) {
            size_t left = end - k;
            size_t pick = k; /* position in idx of the record chosen */
            if (left > 1) {
                uint64_t sum = 0;
                size_t zeros = 0;
                for (size_t j = k; j < end; j++) {
                    sum += rr[idx[j]].weight;
                    zeros += rr[idx[j]].weight == 0;
                }
                /* RFC 2782: "choose a uniform random number between 0 and
                 * the sum computed (inclusive)", with the weight-0 records
                 * placed first in the list (running sum 0). */
                uint64_t r = dns_order_below(rand, rand_ctx, sum + 1);
                if (r == 0 && zeros > 0) {
                    /* Lands on the zero-weight block; its inner order is
                     * "any order": pick one of them uniformly, so that
                     * all-zero records share the load. */
                    size_t z = zeros > 1 ? dns_order_below(rand, rand_ctx, zeros) : 0;
                    for (size_t j = k; j < end; j++) {
                        if (rr[idx[j]].weight == 0 && z-- == 0) {
                            pick = j;
                            break;
                        }
                    }
                } else {
                    uint64_t running = 0;
                    for (size_t j = k; j < end; j++) {
                        if (rr[idx[j]].weight == 0)
                            continue;
                        running += rr[idx[j]].weight;
                        if (running >= r) {
                            pick = j;
                            break;
                        }
                    }
                }
            }
            size_t chosen = idx[pick];
            for (size_t j = pick; j > k; j--)
                idx[j] = idx[j - 1];
            idx[k] = chosen;
            order[out++] = chosen;
        }
        start = end;
    }
    return 0;
}
