/*
 * listener.h: one listening TCP socket of the PSYC face ([psyc] listen,
 * with TLS autodetected, or [psyc] listen_tls, TLS from the first byte).
 * Each accepted connection becomes a psyc_circuit.
 */
#ifndef GATEWAY_LISTENER_H
#define GATEWAY_LISTENER_H

#include <uv.h>

#include "gateway/config.h"

struct gw;

struct listener {
    uv_tcp_t tcp;
    struct gw *gw;
    cfg_addr addr;
    char name[64]; /* "127.0.0.1:4404" */
    int open;      /* handle initialised and not yet closed */
    int tls;       /* a listen_tls socket */
};

/* Binds and listens. 0, or a negative libuv error (logged); the handle is
 * closed again by listener_close in either case. */
int listener_start(struct listener *l, struct gw *g, const cfg_addr *addr, int tls);
/* Stops accepting; the memory must stay valid until the loop ran dry. */
void listener_close(struct listener *l);

#endif /* GATEWAY_LISTENER_H */
