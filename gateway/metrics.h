/*
 * metrics.h: counters for the admin (DESIGN.md §7 "Metrics: Prometheus text
 * on a local HTTP port"; the project's standard "metrics: counters per link
 * and per context"). `[metrics] listen` names the addresses (none by
 * default; the shipped config uses 127.0.0.1:9470); any HTTP GET of
 * /metrics there gets the text exposition format 0.0.4 of every source,
 * anything else a 404. One request per connection, answered at once from
 * the loop's memory (no locks: the loop is single-threaded, DESIGN.md §4).
 *
 * Modules register a source that writes their samples with
 * metrics_counter / metrics_gauge, each metric's samples together (the
 * format wants a metric's lines in one group).
 */
#ifndef GATEWAY_METRICS_H
#define GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "psyc/psyc.h"

typedef struct gw gw;
typedef struct metrics metrics;
typedef struct metrics_out metrics_out;

typedef void (*metrics_source_fn)(void *ud, metrics_out *o);

/* Reads [metrics] listen and starts listening (logged). 0, or -1 when out
 * of memory or an address cannot be bound (logged); *out is set either
 * way when allocated: metrics_stop and metrics_free clean up. */
int metrics_start(gw *g, metrics **out);
/* Adds a source (called in order of registration). 0 or -1 (OOM). */
int metrics_add_source(metrics *m, metrics_source_fn fn, void *ud);
/* Closes the listeners and open connections. */
void metrics_stop(metrics *m);
/* After the loop ran dry. NULL is fine. */
void metrics_free(metrics *m);

/* The exposition text of every source into out (for the HTTP answer and
 * the tests). 0 or PSYC_ERR_NOMEM. */
int metrics_render(metrics *m, psyc_buf *out);

/* One sample. `name` without the psycgate_ prefix; help is written once
 * per name; labels is NULL or label="value" pairs made with
 * metrics_label (values escaped). */
void metrics_counter(metrics_out *o, const char *name, const char *help, const char *labels, uint64_t value);
void metrics_gauge(metrics_out *o, const char *name, const char *help, const char *labels, int64_t value);
/* name="value" with the value escaped as the format requires (\\, \", \n),
 * into buf; returns buf. */
const char *metrics_label(char *buf, size_t size, const char *name, const char *value);
/* Two labels: a="x",b="y". */
const char *metrics_label2(char *buf, size_t size, const char *n1, const char *v1, const char *n2, const char *v2);

/* 1 when an HTTP request head asks for the metrics ("GET /metrics" or
 * "GET /", any query, HTTP/1.x); 0 otherwise. Pure, for the tests. */
int metrics_request_wanted(const char *head, size_t len);

#endif
