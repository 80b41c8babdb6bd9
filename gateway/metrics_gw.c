/* metrics_gw.c: the gateway's metric sources (see metrics_gw.h). Each
 * metric's samples are written together, as the text format wants. */
#include "gateway/metrics_gw.h"

#include <stdio.h>
#include <string.h>

#include "gateway/bridge.h"
#include "gateway/bridge_outbox.h"
#include "gateway/component_link.h"
#include "gateway/gw.h"
#include "gateway/mcast_ctx.h"
#include "gateway/metrics.h"
#include "gateway/psyc_ack.h"
#include "gateway/psyc_circuit.h"
#include "gateway/psyc_out.h"
#include "gateway/s2s_face.h"
#include "gateway/store.h"

#ifndef PSYCGATE_VERSION
#define PSYCGATE_VERSION "0.0.0"
#endif

static void mg_gateway(void *ud, metrics_out *o)
{
    gw *g = ud;
    char l[300];
    metrics_gauge(o, "info", "Version and PSYC host of this gateway (always 1).",
                  metrics_label2(l, sizeof l, "version", PSYCGATE_VERSION, "host", g->host), 1);
    metrics_gauge(o, "uptime_seconds", "Seconds since start.", NULL,
                  (int64_t)((uv_now(g->loop) - g->started_ms) / 1000u));
    size_t in = 0, out = 0;
    for (psyc_circuit *c = g->circuits; c; c = c->next)
        c->active ? out++ : in++;
    metrics_gauge(o, "psyc_circuits", "Open PSYC circuits by direction.",
                  metrics_label(l, sizeof l, "direction", "in"), (int64_t)in);
    metrics_gauge(o, "psyc_circuits", "", metrics_label(l, sizeof l, "direction", "out"), (int64_t)out);
    metrics_counter(o, "psyc_circuits_accepted_total", "PSYC circuits accepted since start.", NULL,
                    g->circuits_total);
}

/* Per open circuit: the link's traffic (reset when it reconnects). */
static void mg_circuits(void *ud, metrics_out *o)
{
    gw *g = ud;
    char l[300];
    static const struct {
        const char *name, *help;
        size_t off;
    } m[] = {
        {"psyc_circuit_bytes_in", "Bytes received on an open PSYC circuit.", offsetof(psyc_circuit, bytes_in)},
        {"psyc_circuit_bytes_out", "Bytes sent on an open PSYC circuit.", offsetof(psyc_circuit, bytes_out)},
        {"psyc_circuit_packets_out", "Packets sent on an open PSYC circuit.", offsetof(psyc_circuit, packets_out)},
    };
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++)
        for (psyc_circuit *c = g->circuits; c; c = c->next)
            metrics_counter(o, m[k].name, m[k].help,
                            metrics_label2(l, sizeof l, "peer", c->peer.text, "host",
                                           c->active ? c->peer_host : (c->out_peer ? c->out_peer->host : "")),
                            *(const uint64_t *)((const char *)c + m[k].off));
}

/* Per PSYC peer host: the outgoing queue and acknowledged delivery. */
static void mg_peers(void *ud, metrics_out *o)
{
    gw *g = ud;
    if (!g->psyc_out)
        return;
    char l[300];
    static const struct {
        const char *name, *help;
        size_t off;
        int gauge_size;
    } m[] = {
        {"psyc_peer_queued", "Packets waiting for a circuit to the peer.", offsetof(psyc_peer, n_queued), 1},
        {"psyc_peer_unacknowledged", "Packets written to a psycgate peer, not yet acknowledged.",
         offsetof(psyc_peer, n_unacked), 1},
        {"psyc_peer_sent_total", "Packets written to the peer.", offsetof(psyc_peer, sent), 0},
        {"psyc_peer_acknowledged_total", "Packets the peer acknowledged (psycgate peers).",
         offsetof(psyc_peer, acked), 0},
        {"psyc_peer_resent_total", "Unacknowledged packets written again after a lost circuit.",
         offsetof(psyc_peer, resent), 0},
        {"psyc_peer_dropped_total", "Packets given up or refused (bounced to their senders).",
         offsetof(psyc_peer, dropped), 0},
    };
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++)
        for (psyc_peer *p = g->psyc_out->peers; p; p = p->next) {
            metrics_label(l, sizeof l, "peer", p->name);
            const char *field = (const char *)p + m[k].off;
            if (m[k].gauge_size)
                metrics_gauge(o, m[k].name, m[k].help, l, (int64_t)*(const size_t *)field);
            else
                metrics_counter(o, m[k].name, m[k].help, l, *(const uint64_t *)field);
        }
    for (psyc_peer *p = g->psyc_out->peers; p; p = p->next)
        metrics_gauge(o, "psyc_peer_ready", "1 when a circuit to the peer can take packets.",
                      metrics_label(l, sizeof l, "peer", p->name), p->state == PSYC_PEER_READY);
    metrics_counter(o, "psyc_duplicates_dropped_total",
                    "Counted packets from psycgate peers dropped because they were taken before.", NULL,
                    psyc_ack_duplicates(g->acks));
}

static void mg_bridge(void *ud, metrics_out *o)
{
    gw *g = ud;
    bridge *b = g->bridge;
    if (!b)
        return;
    static const struct {
        const char *name, *help;
        size_t off;
    } m[] = {
        {"bridge_xmpp_in_total", "Stanzas taken from the XMPP faces.", offsetof(bridge_stats, xmpp_in)},
        {"bridge_psyc_in_total", "Packets taken for XMPP entities.", offsetof(bridge_stats, psyc_in)},
        {"bridge_to_psyc_total", "Stanzas sent on as PSYC packets.", offsetof(bridge_stats, to_psyc)},
        {"bridge_to_xmpp_total", "Packets sent on as stanzas.", offsetof(bridge_stats, to_xmpp)},
        {"bridge_local_answers_total", "Echo, disco, version, last, ping answered by the gateway.",
         offsetof(bridge_stats, local_answers)},
        {"bridge_refused_total", "Stanzas or packets answered with an error.", offsetof(bridge_stats, refused)},
        {"bridge_iq_timeouts_total", "Requests answered with a timeout error.", offsetof(bridge_stats, iq_timeouts)},
        {"presence_multicasts_total", "Presence broadcasts sent as one context packet per host.",
         offsetof(bridge_stats, presence_multicasts)},
        {"presence_copies_saved_total", "Presence stanzas those multicasts replaced (fan-out saved).",
         offsetof(bridge_stats, presence_copies_saved)},
        {"presence_fanout_total", "Stanzas made from received presence multicasts.",
         offsetof(bridge_stats, presence_fanout)},
    };
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++)
        metrics_counter(o, m[k].name, m[k].help, NULL, *(const uint64_t *)((const char *)&b->stats + m[k].off));
    metrics_gauge(o, "component_waiting", "Stanzas waiting for a component link that is down.", NULL,
                  (int64_t)bridge_outbox_waiting(b->outbox));
}

static void mg_xmpp(void *ud, metrics_out *o)
{
    gw *g = ud;
    char l[300];
    for (size_t i = 0; i < g->n_components; i++)
        metrics_gauge(o, "component_linked", "1 while the component link of the domain is up.",
                      metrics_label(l, sizeof l, "domain", g->components[i].domain), g->components[i].linked);
    for (size_t i = 0; i < g->n_components; i++)
        metrics_counter(o, "component_connects_total", "Connects started to the XMPP server.",
                        metrics_label(l, sizeof l, "domain", g->components[i].domain), g->components[i].attempts);
    for (size_t i = 0; i < g->n_components; i++)
        metrics_counter(o, "component_links_total", "Handshakes the XMPP server accepted.",
                        metrics_label(l, sizeof l, "domain", g->components[i].domain), g->components[i].links);
    metrics_gauge(o, "s2s_links", "Outgoing S2S links (domain pairs).", NULL, (int64_t)s2s_face_links(g->s2s));
    metrics_gauge(o, "s2s_streams", "Open S2S streams, both directions.", NULL, (int64_t)s2s_face_conns(g->s2s));
}

static void mg_store_counter(void *ud, const char *name, int64_t value)
{
    char l[300];
    metrics_counter(ud, "store_counter_total", "Counters kept in the store across restarts (by name).",
                    metrics_label(l, sizeof l, "name", name), value < 0 ? 0 : (uint64_t)value);
}

static void mg_store(void *ud, metrics_out *o)
{
    gw *g = ud;
    if (!g->store)
        return;
    metrics_gauge(o, "store_queued", "Messages in the store's queues (waiting or unacknowledged).", NULL,
                  store_queue_depth(g->store, NULL));
    store_counter_each(g->store, mg_store_counter, o);
}

int metrics_gw_register(metrics *m, gw *g)
{
    int rc = metrics_add_source(m, mg_gateway, g);
    rc |= metrics_add_source(m, mg_circuits, g);
    rc |= metrics_add_source(m, mg_peers, g);
    rc |= metrics_add_source(m, mg_bridge, g);
    rc |= metrics_add_source(m, mg_xmpp, g);
    rc |= metrics_add_source(m, mg_store, g);
    if (g->mcast)
        rc |= metrics_add_source(m, mcast_ctx_metrics, g->mcast);
    return rc ? -1 : 0;
}
