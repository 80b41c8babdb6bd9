/*
 * net.h: small libuv helpers shared by the TCP faces: peer addresses as
 * text, and writes that own their buffer.
 */
#ifndef GATEWAY_NET_H
#define GATEWAY_NET_H

#include <uv.h>

#include "psyc/psyc.h"

typedef struct net_peer {
    int family;    /* AF_INET / AF_INET6 (IPv4-mapped IPv6 is reported as AF_INET) */
    char ip[48];   /* numeric, no brackets */
    int port;
    char text[64]; /* "1.2.3.4:5" or "[::1]:5": the peer column of the log */
} net_peer;

/* 0, or a negative libuv error. */
int net_peer_from_sockaddr(const struct sockaddr *sa, net_peer *out);
int net_tcp_peer(const uv_tcp_t *h, net_peer *out);
int net_tcp_local(const uv_tcp_t *h, net_peer *out);

/* Called once per net_write with the libuv status (0, UV_ECANCELED when the
 * handle was closed first, or another error). */
typedef void (*net_write_cb)(uv_stream_t *stream, int status);

/* Writes b's bytes and takes its memory (b is left empty, re-initialised).
 * An empty buffer writes nothing and returns 0 without calling cb.
 * 0, or a negative libuv error (cb not called; b freed). */
int net_write_buf(uv_stream_t *stream, psyc_buf *b, net_write_cb cb);

/* Accepts the pending connection on `server` and closes it at once, so a
 * full face neither serves it nor leaves it in the listen backlog. *peer
 * (may be NULL) names it for the log ("-" when unknown). */
void net_accept_and_drop(uv_stream_t *server, net_peer *peer);

#endif /* GATEWAY_NET_H */
