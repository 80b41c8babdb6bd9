/* net.c: libuv helpers (see net.h). */
#include "gateway/net.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int net_peer_from_sockaddr(const struct sockaddr *sa, net_peer *out)
{
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        out->family = AF_INET;
        out->port = ntohs(in->sin_port);
        uv_inet_ntop(AF_INET, &in->sin_addr, out->ip, sizeof out->ip);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        out->port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            /* A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; psyced
             * and DNS checks (PSYC.md §5) know them by the plain IPv4 form. */
            out->family = AF_INET;
            uv_inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], out->ip, sizeof out->ip);
        } else {
            out->family = AF_INET6;
            uv_inet_ntop(AF_INET6, &in6->sin6_addr, out->ip, sizeof out->ip);
        }
    } else {
        snprintf(out->text, sizeof out->text, "?");
        return UV_EAFNOSUPPORT;
    }
    if (out->family == AF_INET6)
        snprintf(out->text, sizeof out->text, "[%s]:%d", out->ip, out->port);
    else
        snprintf(out->text, sizeof out->text, "%s:%d", out->ip, out->port);
    return 0;
}

int net_tcp_peer(const uv_tcp_t *h, net_peer *out)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof ss;
    int rc = uv_tcp_getpeername(h, (struct sockaddr *)&ss, &len);
    if (rc < 0) {
        memset(out, 0, sizeof *out);
        snprintf(out->text, sizeof out->text, "?");
        return rc;
    }
    return net_peer_from_sockaddr((const struct sockaddr *)&ss, out);
}

int net_tcp_local(const uv_tcp_t *h, net_peer *out)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof ss;
    int rc = uv_tcp_getsockname(h, (struct sockaddr *)&ss, &len);
    if (rc < 0) {
        memset(out, 0, sizeof *out);
        snprintf(out->text, sizeof out->text, "?");
        return rc;
    }
    return net_peer_from_sockaddr((const struct sockaddr *)&ss, out);
}

typedef struct net_write_req {
    uv_write_t req;
    psyc_buf buf;
    net_write_cb cb;
} net_write_req;

static void net_write_done(uv_write_t *req, int status)
{
    net_write_req *w = (net_write_req *)req;
    net_write_cb cb = w->cb;
    uv_stream_t *stream = req->handle;
    psyc_buf_free(&w->buf);
    free(w);
    if (cb)
        cb(stream, status);
}

int net_write_buf(uv_stream_t *stream, psyc_buf *b, net_write_cb cb)
{
    if (b->len == 0) {
        psyc_buf_free(b);
        return 0;
    }
    net_write_req *w = malloc(sizeof *w);
    if (!w) {
        psyc_buf_free(b);
        return UV_ENOMEM;
    }
    w->buf = *b;
    w->cb = cb;
    psyc_buf_init(b);
    uv_buf_t ub = uv_buf_init(w->buf.data, (unsigned)w->buf.len);
    int rc = uv_write(&w->req, stream, &ub, 1, net_write_done);
    if (rc < 0) {
        psyc_buf_free(&w->buf);
        free(w);
    }
    return rc;
}

static void net_drop_closed(uv_handle_t *h)
{
    free(h);
}

void net_accept_and_drop(uv_stream_t *server, net_peer *peer)
{
    if (peer)
        snprintf(peer->text, sizeof peer->text, "-");
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t || uv_tcp_init(server->loop, t) != 0) {
        free(t);
        return;
    }
    if (uv_accept(server, (uv_stream_t *)t) == 0 && peer)
        net_tcp_peer(t, peer);
    uv_close((uv_handle_t *)t, net_drop_closed);
}
