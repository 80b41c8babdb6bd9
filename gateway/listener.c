/* listener.c: listening sockets of the PSYC face (see listener.h). */
#include "gateway/listener.h"

#include <string.h>

#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/net.h"
#include "gateway/psyc_circuit.h"

#define COMP "psyc"
#define LISTEN_BACKLOG 128

static void listener_on_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    if (status < 0) {
        log_warn(COMP, l->name, "incoming connection failed: %s", uv_strerror(status));
        return;
    }
    if (l->gw->stopping)
        return;
    uint64_t max = cfg_get_uint(l->gw->cfg, "gateway", "max_incoming");
    size_t incoming = 0;
    for (psyc_circuit *c = l->gw->circuits; c; c = c->next)
        incoming += !c->active;
    if (incoming >= max) {
        net_peer peer;
        net_accept_and_drop(server, &peer);
        log_warn(COMP, l->name, "refused a PSYC connection from %s: %zu incoming circuits open "
                 "([gateway] max_incoming)", peer.text, incoming);
        return;
    }
    psyc_circuit_accept(l->gw, server, l->tls);
}

int listener_start(struct listener *l, struct gw *g, const cfg_addr *addr, int tls)
{
    memset(l, 0, sizeof *l);
    l->gw = g;
    l->tls = tls;
    l->addr = *addr;
    cfg_addr_format(addr, l->name, sizeof l->name);

    struct sockaddr_storage ss;
    int rc = addr->family == AF_INET6 ? uv_ip6_addr(addr->ip, addr->port, (struct sockaddr_in6 *)&ss)
                                      : uv_ip4_addr(addr->ip, addr->port, (struct sockaddr_in *)&ss);
    if (rc < 0) {
        log_error(COMP, NULL, "cannot listen on %s: %s", l->name, uv_strerror(rc));
        return rc;
    }
    rc = uv_tcp_init(g->loop, &l->tcp);
    if (rc < 0) {
        log_error(COMP, NULL, "cannot listen on %s: %s", l->name, uv_strerror(rc));
        return rc;
    }
    l->tcp.data = l;
    l->open = 1;
    /* [::]:4404 next to 0.0.0.0:4404 must not collide: each listen entry
     * means exactly the address family it names. */
    unsigned flags = addr->family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
    rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, flags);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, listener_on_connection);
    if (rc < 0) {
        log_error(COMP, NULL, "cannot listen on %s: %s", l->name, uv_strerror(rc));
        return rc;
    }
    log_info(COMP, NULL, "listening on %s (%s)", l->name,
             tls ? "PSYC over TLS (PSYCS)"
                 : l->gw->tls ? "PSYC 0.9 and 1.0, TLS autodetected" : "PSYC 0.9 and 1.0");
    return 0;
}

void listener_close(struct listener *l)
{
    if (!l->open)
        return;
    l->open = 0;
    uv_close((uv_handle_t *)&l->tcp, NULL);
    log_info(COMP, NULL, "stopped listening on %s", l->name);
}
