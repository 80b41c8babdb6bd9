/*
 * bench_presence.c: presence offload at the origin gateway (`make bench`),
 * issue 7 scenario (a) in one process: a user with 1000 contacts spread over
 * 50 servers changes presence, and the XMPP server hands the component link
 * 1000 copies (only 'to' differs; each carries caps, as real clients do).
 *   unicast:   every copy translated and rendered as one PSYC packet (what
 *              a gateway without offload sends: 1000 packets);
 *   multicast: the copies go through the coalescer (routing/coalesce.c),
 *              each server's group becomes one context multicast
 *              (translate_as_multicast): 50 packets.
 * Reported for both, in the same run: packets and bytes the origin sends,
 * the largest number of copies of this one change on one link (link
 * stress), and the CPU time at the origin; then the ratios. Fan-out at the
 * receiving gateways and latency need the loopback federation (not here).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "routing/coalesce.h"
#include "routing/translate.h"

#define CONTACTS 1000
#define SERVERS 50

static const addr_map bench_map = {.mode = ADDR_MODE_NATURAL};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void keep_one(void *ud, xml_node *n)
{
    xml_node **out = ud;
    if (!*out)
        *out = n;
    else
        xml_node_free(n);
}

static xml_node *parse(const char *text, size_t len)
{
    xml_node *out = NULL;
    xml_parse_fragment(text, len, keep_one, &out);
    return out;
}

typedef struct tally {
    size_t packets, bytes, per_link[SERVERS];
} tally;

/* Render and count one packet for server index `srv`. */
static void count(tally *t, const psyc_packet *p, int srv)
{
    psyc_buf out;
    psyc_buf_init(&out);
    if (psyc_render(p, &out) == 0) {
        t->packets++;
        t->bytes += out.len;
        t->per_link[srv]++;
    }
    psyc_buf_free(&out);
}

static size_t max_link(const tally *t)
{
    size_t m = 0;
    for (int i = 0; i < SERVERS; i++)
        m = t->per_link[i] > m ? t->per_link[i] : m;
    return m;
}

static const char presence_fmt[] =
    "<presence from='alice@a.example/laptop' to='c%d@s%d.example'><show>away</show>"
    "<status>out for lunch</status><priority>5</priority>"
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://example.org/client' "
    "ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>";

/* The multicast path: the coalescer hands us one burst. */
typedef struct mc_ctx {
    tally t;
} mc_ctx;

static void on_burst(void *ud, const char *from, const void *payload, size_t len, int changed,
                     const char *const *rcpt, size_t n)
{
    mc_ctx *c = ud;
    (void)from;
    (void)changed;
    xml_node *tmpl = parse(payload, len);
    int seen[SERVERS] = {0};
    for (size_t i = 0; i < n; i++) {
        int srv = atoi(strstr(rcpt[i], "@s") + 2);
        if (seen[srv]++)
            continue;
        xml_node *st = xml_node_copy(tmpl);
        xml_attr_set(st, "to", rcpt[i]);
        psyc_packet p, mc;
        psyc_packet_init(&p);
        psyc_packet_init(&mc);
        if (translate_from_xmpp(&bench_map, st, &p, NULL) == TRANSLATE_OK && translate_as_multicast(&p, &mc) == 0)
            count(&c->t, &mc, srv);
        psyc_packet_free(&mc);
        psyc_packet_free(&p);
        xml_node_free(st);
    }
    xml_node_free(tmpl);
}

int main(void)
{
    static char copies[CONTACTS][512];
    static size_t lens[CONTACTS];
    for (int i = 0; i < CONTACTS; i++)
        lens[i] = (size_t)snprintf(copies[i], sizeof copies[i], presence_fmt, i, i % SERVERS);
    size_t xmpp_bytes = 0;
    for (int i = 0; i < CONTACTS; i++)
        xmpp_bytes += lens[i];

    double best_uni = 1e9, best_mc = 1e9;
    tally uni = {0};
    mc_ctx mcx;
    for (int run = 0; run < 5; run++) {
        /* unicast: one packet per copy */
        memset(&uni, 0, sizeof uni);
        double t0 = now_s();
        for (int i = 0; i < CONTACTS; i++) {
            xml_node *st = parse(copies[i], lens[i]);
            psyc_packet p;
            psyc_packet_init(&p);
            if (translate_from_xmpp(&bench_map, st, &p, NULL) == TRANSLATE_OK)
                count(&uni, &p, i % SERVERS);
            psyc_packet_free(&p);
            xml_node_free(st);
        }
        double t = now_s() - t0;
        best_uni = t < best_uni ? t : best_uni;

        /* multicast: coalesce, one packet per server */
        memset(&mcx, 0, sizeof mcx);
        t0 = now_s();
        pc_coalescer *pc = pc_new(50, 0, on_burst, &mcx);
        for (int i = 0; i < CONTACTS; i++) {
            xml_node *st = parse(copies[i], lens[i]);
            const char *to = xml_attr_get(st, "to");
            char rcpt[64];
            snprintf(rcpt, sizeof rcpt, "%s", to);
            xml_attr_remove(st, "to", NULL);
            psyc_buf payload;
            psyc_buf_init(&payload);
            xml_serialize(&payload, st, NULL);
            pc_feed(pc, "alice@a.example/laptop", rcpt, payload.data, payload.len, 1000);
            psyc_buf_free(&payload);
            xml_node_free(st);
        }
        pc_tick(pc, 2000);
        pc_free(pc);
        t = now_s() - t0;
        best_mc = t < best_mc ? t : best_mc;
    }
    printf("one presence change, %d contacts on %d servers (%zu bytes of XMPP in)\n", CONTACTS, SERVERS,
           xmpp_bytes);
    printf("  unicast    %5zu packets %8zu bytes  link stress %3zu  %7.2f ms at the origin\n", uni.packets,
           uni.bytes, max_link(&uni), best_uni * 1e3);
    printf("  multicast  %5zu packets %8zu bytes  link stress %3zu  %7.2f ms at the origin\n", mcx.t.packets,
           mcx.t.bytes, max_link(&mcx.t), best_mc * 1e3);
    printf("  multicast/unicast: packets %.3f, bytes %.3f, CPU %.2f\n",
           (double)mcx.t.packets / (double)uni.packets, (double)mcx.t.bytes / (double)uni.bytes,
           best_mc / best_uni);
    return uni.packets == CONTACTS && mcx.t.packets == SERVERS ? 0 : 1;
}
