/* gw.c: the daemon core (see gw.h). */
#include "gateway/gw.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "gateway/bridge.h"
#include "gateway/digest_peer.h"
#include "gateway/place_host.h"
#include "gateway/place_local.h"
#include "gateway/place_muc.h"
#include "gateway/mcast_ctx.h"
#include "gateway/component_link.h"
#include "gateway/listener.h"
#include "gateway/log.h"
#include "gateway/psyc_circuit.h"
#include "gateway/psyc_out.h"
#include "gateway/psyc_ack.h"
#include "gateway/metrics.h"
#include "gateway/metrics_gw.h"
#include "gateway/s2s_face.h"
#include "gateway/store.h"
#include "routing/routing.h"

#ifndef PSYCGATE_VERSION
#define PSYCGATE_VERSION "0.0.0"
#endif

#define COMP "main"

int gw_init(gw *g, uv_loop_t *loop, const cfg *c)
{
    memset(g, 0, sizeof *g);
    g->loop = loop;
    g->cfg = c;
    g->host = cfg_get_str(c, "gateway", "host");
    g->idle_timeout_ms = cfg_get_uint(c, "psyc", "idle_timeout") * 1000u;
    g->max_packet = (size_t)cfg_get_uint(c, "psyc", "max_packet");

    /* Same shape as psyced's "<version> <driver> <os> <arch>" (PSYC.md §2.2). */
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(g->implementation, sizeof g->implementation, "psycgate/%s libuv/%s %s/%s %s",
                 PSYCGATE_VERSION, uv_version_string(), u.sysname, u.release, u.machine);
    else
        snprintf(g->implementation, sizeof g->implementation, "psycgate/%s libuv/%s",
                 PSYCGATE_VERSION, uv_version_string());
    return 0;
}

void gw_circuit_link(gw *g, psyc_circuit *c)
{
    c->prev = NULL;
    c->next = g->circuits;
    if (g->circuits)
        g->circuits->prev = c;
    g->circuits = c;
    g->n_circuits++;
}

void gw_circuit_unlink(gw *g, psyc_circuit *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        g->circuits = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    g->n_circuits--;
}

static void gw_on_signal(uv_signal_t *s, int signum)
{
    gw *g = s->data;
    if (signum == SIGHUP) {
        log_warn(COMP, NULL, "SIGHUP: configuration reload is not implemented yet; ignored");
        return;
    }
    gw_stop(g, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static int gw_start_signal(gw *g, int signum)
{
    uv_signal_t *s = &g->signals[g->n_signals];
    int rc = uv_signal_init(g->loop, s);
    if (rc < 0)
        return rc;
    g->n_signals++;
    s->data = g;
    return uv_signal_start(s, gw_on_signal, signum);
}

/* The core boundary (issue 5, issue 6): every stanza the server routes to
 * one of our component domains, and every stanza an S2S peer sends to one
 * of our S2S domains, goes to the bridge. */
static void gw_on_component_stanza(component_link *l, xml_node *stanza, void *ud)
{
    gw *g = ud;
    bridge_from_xmpp(g->bridge, stanza, l->domain);
}

/* After the loop's I/O callbacks of one turn: one transaction (one fsync)
 * for everything the turn wrote (DESIGN.md §6 "group commit"). */
static void gw_on_check(uv_check_t *h)
{
    gw *g = h->data;
    if (g->store && store_dirty(g->store) && store_commit(g->store) < 0)
        log_error(COMP, NULL, "store: commit failed: %s", store_error(g->store));
}

/* The store lives in the state directory (created 0700 by the S2S face for
 * the dialback secret). */
static int gw_open_store(gw *g)
{
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/psycgate.db", cfg_get_str(g->cfg, "gateway", "state_dir"));
    if (store_open(path, &g->store, err, sizeof err) != 0) {
        log_error(COMP, NULL, "store: %s", err);
        return -1;
    }
    int rc = uv_check_init(g->loop, &g->commit);
    if (rc == 0) {
        g->commit.data = g;
        g->commit_live = 1;
        rc = uv_check_start(&g->commit, gw_on_check);
    }
    if (rc < 0) {
        log_error(COMP, NULL, "store: cannot start the commit handle: %s", uv_strerror(rc));
        return -1;
    }
    log_info(COMP, NULL, "store %s open (WAL, synchronous=FULL)", path);
    return 0;
}

static void gw_on_s2s_stanza(void *ud, xml_node *stanza, const char *domain)
{
    gw *g = ud;
    bridge_from_xmpp(g->bridge, stanza, domain);
}

/* One XEP-0114 link per [component] domain, all to the same server. */
static int gw_start_components(gw *g)
{
    const char *const *domains = NULL;
    size_t n = cfg_get_domains(g->cfg, "component", "domain", &domains);
    if (n == 0)
        return 0;
    g->components = calloc(n, sizeof *g->components);
    if (!g->components) {
        log_error(COMP, NULL, "out of memory");
        return UV_ENOMEM;
    }
    const char *host = cfg_get_str(g->cfg, "component", "host");
    uint16_t port = (uint16_t)cfg_get_uint(g->cfg, "component", "port");
    const char *secret = cfg_get_str(g->cfg, "component", "secret");
    for (size_t i = 0; i < n; i++) {
        int rc = component_link_init(&g->components[i], g->loop, domains[i], host, port, secret,
                                     gw_on_component_stanza, g);
        if (rc < 0) {
            log_error(COMP, NULL, "component %s: cannot set up the link: %s", domains[i],
                      uv_strerror(rc));
            return rc;
        }
        g->n_components = i + 1;
        rc = component_link_start(&g->components[i]);
        if (rc < 0) {
            log_error(COMP, NULL, "component %s: cannot start the link: %s", domains[i],
                      uv_strerror(rc));
            return rc;
        }
    }
    return 0;
}

int gw_start(gw *g)
{
    g->started_ms = uv_now(g->loop);
    const cfg_addr *addrs = NULL, *tls_addrs = NULL;
    size_t n = cfg_get_addrs(g->cfg, "psyc", "listen", &addrs);
    size_t n_tls = cfg_get_addrs(g->cfg, "psyc", "listen_tls", &tls_addrs);

    /* Signals first: a SIGTERM during startup still stops us cleanly. */
    int rc = gw_start_signal(g, SIGINT);
    if (rc == 0)
        rc = gw_start_signal(g, SIGTERM);
    if (rc == 0)
        rc = gw_start_signal(g, SIGHUP);
    if (rc < 0) {
        log_error(COMP, NULL, "cannot install signal handlers: %s", uv_strerror(rc));
        return rc;
    }

    /* Our certificate before any listener: a TLS peer may come first. A
     * TLS listener without it cannot work, so that is fatal; without one
     * the gateway runs plaintext only and says so. */
    if (tls_setup_from_config(g->cfg, &g->tls) != 0) {
        if (n_tls) {
            log_error(COMP, NULL, "TLS is not available, so [psyc] listen_tls cannot be served");
            return -1;
        }
        log_warn(COMP, NULL, "TLS is not available: TLS circuits will be refused");
    }

    /* One resolver for every face: S2S peers, PSYC peers, host checks. */
    g->dns = dns_new_from_cfg(g->loop, g->cfg);
    if (!g->dns)
        return -1;
    /* PSYC packets for other hosts: found circuits or opened ones. */
    g->psyc_out = psyc_out_new(g);
    g->acks = psyc_ack_new(g);
    if (!g->psyc_out || !g->acks) {
        log_error(COMP, NULL, "out of memory");
        return UV_ENOMEM;
    }

    g->listeners = calloc(n + n_tls > 0 ? n + n_tls : 1, sizeof *g->listeners);
    if (!g->listeners) {
        log_error(COMP, NULL, "out of memory");
        return UV_ENOMEM;
    }
    for (size_t i = 0; i < n + n_tls; i++) {
        int tls = i >= n;
        g->n_listeners = i + 1;
        rc = listener_start(&g->listeners[i], g, tls ? &tls_addrs[i - n] : &addrs[i], tls);
        if (rc < 0)
            return rc;
    }
    /* The S2S face needs TLS and DNS, both set up above. */
    if (s2s_face_start(g->loop, g->cfg, g->dns, g->tls, &g->s2s) != 0)
        return -1;
    s2s_face_set_local(g->s2s, gw_on_s2s_stanza, g);
    if (gw_open_store(g) != 0)
        return -1;
    g->psyc_out->store = g->store;
    rc = gw_start_components(g);
    if (rc < 0)
        return rc;
    /* Context distribution (issue 7): before the bridge, which delivers through it. */
    g->mcast = mcast_ctx_new(g);
    if (!g->mcast)
        return UV_ENOMEM;
    /* Last: it checks its transport domain against the faces. */
    g->bridge = calloc(1, sizeof *g->bridge);
    if (!g->bridge) {
        log_error(COMP, NULL, "out of memory");
        return UV_ENOMEM;
    }
    if (bridge_init(g->bridge, g) != 0)
        return -1;
    /* Places we host and our users in places (issue 7): beside the bridge. */
    g->place_host = place_host_new(g);
    g->place_local = place_local_new(g);
    g->place_muc = place_muc_new(g);
    if (!g->place_host || !g->place_local || !g->place_muc) {
        log_error(COMP, NULL, "out of memory");
        return UV_ENOMEM;
    }
    /* Places' casts arrive through their distribution trees too. */
    mcast_ctx_set_deliver(g->mcast, '@', place_local_deliver, g->place_local);
    g->digest = digest_peer_new(g); /* membership digests (issue 7) */
    if (!g->digest)
        return UV_ENOMEM;
    /* Last: what waited when we stopped goes out again. */
    psyc_out_resume(g->psyc_out);
    if (metrics_start(g, &g->metrics) != 0 || metrics_gw_register(g->metrics, g) != 0)
        return -1;
    return 0;
}

void gw_stop(gw *g, const char *why)
{
    if (g->stopping)
        return;
    g->stopping = 1;
    log_info(COMP, NULL, "stopping (%s): closing %zu listeners, %zu circuits and %zu component links",
             why, g->n_listeners, g->n_circuits, g->n_components);
    for (size_t i = 0; i < g->n_listeners; i++)
        listener_close(&g->listeners[i]);
    metrics_stop(g->metrics);
    if (g->bridge)
        bridge_stop(g->bridge);
    place_host_stop(g->place_host);
    mcast_ctx_stop(g->mcast); /* after the bridge's last bursts, before psyc_out */
    digest_peer_stop(g->digest);
    if (g->commit_live) {
        uv_close((uv_handle_t *)&g->commit, NULL);
        g->commit_live = 0;
    }
    /* What this turn took is committed and acknowledged while the
     * circuits are still open, so peers do not write it again. */
    if (g->store && store_dirty(g->store) && store_commit(g->store) < 0)
        log_error(COMP, NULL, "store: commit failed: %s", store_error(g->store));
    psyc_ack_stop(g->acks);
    /* Before the circuits: their closing must not start reconnects. */
    psyc_out_stop(g->psyc_out);
    /* psyc_circuit_close unlinks only in its close callback, so walking the
     * list while closing is safe. */
    for (psyc_circuit *c = g->circuits; c; c = c->next)
        psyc_circuit_close(c, LOG_LEVEL_INFO, "gateway shutting down");
    for (size_t i = 0; i < g->n_components; i++)
        component_link_stop(&g->components[i], "gateway shutting down");
    s2s_face_stop(g->s2s, "gateway shutting down");
    /* After the faces: pending lookups get DNS_ECANCELLED callbacks now,
     * while whatever they point to still exists. */
    dns_close(g->dns);
    g->dns = NULL;
    for (int i = 0; i < g->n_signals; i++)
        uv_close((uv_handle_t *)&g->signals[i], NULL);
    g->n_signals = 0;
}

void gw_cleanup(gw *g)
{
    /* Circuits hold their own reference to the SSL_CTX; all are gone by now. */
    psyc_out_free(g->psyc_out);
    g->psyc_out = NULL;
    mcast_ctx_free(g->mcast);
    g->mcast = NULL;
    psyc_ack_free(g->acks);
    g->acks = NULL;
    place_muc_free(g->place_muc);
    g->place_muc = NULL;
    place_local_free(g->place_local);
    g->place_local = NULL;
    place_host_free(g->place_host);
    g->place_host = NULL;
    digest_peer_free(g->digest);
    g->digest = NULL;
    metrics_free(g->metrics);
    g->metrics = NULL;
    store_close(g->store); /* commits what the last turn wrote */
    g->store = NULL;
    tls_ctx_free(g->tls);
    g->tls = NULL;
    free(g->listeners);
    g->listeners = NULL;
    g->n_listeners = 0;
    for (size_t i = 0; i < g->n_components; i++)
        component_link_cleanup(&g->components[i]);
    free(g->components);
    g->components = NULL;
    g->n_components = 0;
    s2s_face_free(g->s2s); /* its streams are closed: the loop ran dry */
    g->s2s = NULL;
    if (g->bridge)
        bridge_cleanup(g->bridge);
    free(g->bridge);
    g->bridge = NULL;
}

static void gw_close_stray(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int gw_run(const cfg *c)
{
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    if (rc < 0) {
        log_error(COMP, NULL, "cannot create event loop: %s", uv_strerror(rc));
        return 1;
    }
    gw g;
    gw_init(&g, &loop, c);

    int exit_code = 0;
    rc = gw_start(&g);
    if (rc < 0) {
        exit_code = 1;
        gw_stop(&g, "startup failed");
    } else {
        log_info(COMP, NULL, "psycgate %s running as psyc://%s/ (%s)", PSYCGATE_VERSION, g.host,
                 g.implementation);
    }
    uv_run(&loop, UV_RUN_DEFAULT);

    if (uv_loop_close(&loop) == UV_EBUSY) {
        /* Should not happen: every handle is closed by gw_stop. Close
         * anything left so the loop (and LSan) end clean. */
        log_error(COMP, NULL, "handles left open at exit; closing them");
        uv_walk(&loop, gw_close_stray, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    gw_cleanup(&g);
    if (exit_code == 0)
        log_info(COMP, NULL, "stopped (%llu circuits served)", (unsigned long long)g.circuits_total);
    return exit_code;
}
