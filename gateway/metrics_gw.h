/*
 * metrics_gw.h: what the gateway exposes on the metrics endpoint
 * (gateway/metrics.h): per PSYC peer (queue, unacknowledged, sent,
 * acknowledged, written again, dropped), per open circuit (bytes and
 * packets), per component link, the S2S face, the bridge's counters, the
 * store's queues and its persistent counters (XEP-0033, digests ...).
 */
#ifndef GATEWAY_METRICS_GW_H
#define GATEWAY_METRICS_GW_H

typedef struct gw gw;
typedef struct metrics metrics;

/* Registers the gateway's sources with m. 0 or -1 (OOM). */
int metrics_gw_register(metrics *m, gw *g);

#endif
