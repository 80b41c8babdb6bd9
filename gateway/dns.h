/*
 * dns.h: finding peers in the DNS (DESIGN.md §4: "DNS (c-ares)").
 *
 * c-ares runs on the daemon's libuv loop: one uv_poll per resolver socket
 * (ARES_OPT_SOCK_STATE_CB) and one uv_timer for c-ares' own timeouts. No
 * network call blocks and there are no threads (c-ares does read the local
 * /etc/hosts before asking the DNS, so an admin's entry there still wins).
 *
 * A service lookup turns a domain into an ordered list of candidates
 * (host, address, port) to try one after the other:
 *   1. [dns] static route for the domain: its host and port, no SRV.
 *   2. An IP literal as domain: itself, default port.
 *   3. SRV _xmpp-server._tcp.DOMAIN (RFC 6120 §3.2.1) or _psyc._tcp.DOMAIN,
 *      ordered by RFC 2782 (priority, then weighted random), then the
 *      A/AAAA of every target. A single target "." means the service is
 *      decidedly not offered (RFC 2782, RFC 6120 §3.2.1): DNS_ENOSERVICE.
 *   4. Only when there is no SRV record (NXDOMAIN or NODATA): the A/AAAA
 *      of DOMAIN itself with the default port, 5269 or 4404 (RFC 6120
 *      §3.2.2). A failing SRV lookup (SERVFAIL, timeout, refused) is
 *      reported as an error: guessing then would route around an outage of
 *      the peer's DNS to a host that may not be the peer's server.
 *
 * For the caller that connects: try the candidates in order and stop at
 * the first that works. The list is complete: after SRV records were
 * found, do not try the domain's own A/AAAA when all targets fail (RFC 2782
 * "Usage rules" uses the plain address only "if no SRV records"). `host` is
 * where the bytes go; the peer's certificate is still checked against the
 * domain asked for, not the SRV target (RFC 6125; RFC 6120 §13.7.2).
 *
 * Callbacks: every request that is not cancelled gets its callback exactly
 * once, always from the loop (never from inside the dns_resolve_* call),
 * including DNS_ECANCELLED when dns_close runs first. The result and its
 * arrays are valid only during the callback. A request handle is invalid
 * once its callback has started or dns_cancel returned.
 */
#ifndef GATEWAY_DNS_H
#define GATEWAY_DNS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "gateway/config.h"

#define DNS_NAME_MAX 253        /* RFC 1035 §2.3.4, without the root dot */
#define DNS_IP_MAX 46           /* INET6_ADDRSTRLEN */
#define DNS_SRV_MAX 16          /* SRV records used per lookup; the rest ignored */
#define DNS_ADDRS_PER_HOST 8    /* addresses used per host name */
#define DNS_PORT_XMPP_SERVER 5269 /* RFC 6120 §3.2.2 fallback port */
#define DNS_PORT_PSYC 4404        /* PSYC.md §2 */

typedef struct dns dns;
typedef struct dns_req dns_req;

typedef enum dns_service {
    DNS_SVC_XMPP_SERVER = 0, /* _xmpp-server._tcp, default port 5269 */
    DNS_SVC_PSYC = 1,        /* _psyc._tcp, default port 4404 */
} dns_service;

typedef enum dns_status {
    DNS_OK = 0,
    DNS_ENOTFOUND = -1,  /* the name or its addresses do not exist (NXDOMAIN, NODATA) */
    DNS_ENOSERVICE = -2, /* SRV target "." : no such service at this domain */
    DNS_ESERVFAIL = -3,  /* the DNS server failed (SERVFAIL) */
    DNS_ETIMEOUT = -4,   /* no answer within timeout_ms and tries */
    DNS_EREFUSED = -5,   /* the server refused, or could not be reached */
    DNS_EBADNAME = -6,   /* not a valid DNS name */
    DNS_ECANCELLED = -7, /* dns_close ran before an answer */
    DNS_ENOMEM = -8,
    DNS_EFAIL = -9,      /* any other resolver error (bad reply, FORMERR, ...) */
} dns_status;

typedef enum dns_origin {
    DNS_FROM_SRV = 0,      /* SRV records */
    DNS_FROM_FALLBACK = 1, /* no SRV: the domain's own A/AAAA, default port */
    DNS_FROM_STATIC = 2,   /* a [dns] static route */
    DNS_FROM_LITERAL = 3,  /* the domain is an IP address */
} dns_origin;

/* One address; sa carries the port of the candidate (0 for address
 * lookups), ready for uv_tcp_connect. */
typedef struct dns_addr {
    int family; /* AF_INET or AF_INET6 */
    char ip[DNS_IP_MAX];
    struct sockaddr_storage sa;
} dns_addr;

/* One place to connect to, in the order to try. */
typedef struct dns_candidate {
    char host[DNS_NAME_MAX + 1]; /* SRV target / the domain / the static host */
    uint16_t port;
    uint16_t priority, weight;   /* from the SRV record; 0 otherwise */
    dns_addr addr;
} dns_candidate;

typedef struct dns_service_result {
    dns_status status;
    dns_service service;
    dns_origin origin;            /* meaningful when status == DNS_OK */
    const char *domain;           /* as asked, lower case */
    const dns_candidate *candidates;
    size_t n_candidates;          /* > 0 exactly when status == DNS_OK */
} dns_service_result;

typedef struct dns_addrs_result {
    dns_status status;
    const char *domain;
    const dns_addr *addrs;        /* every A and AAAA (port 0) */
    size_t n_addrs;               /* > 0 exactly when status == DNS_OK */
} dns_addrs_result;

typedef void (*dns_service_cb)(const dns_service_result *res, void *arg);
typedef void (*dns_addrs_cb)(const dns_addrs_result *res, void *arg);

/* A source of uniform 32-bit random numbers (RFC 2782 weights). */
typedef uint32_t (*dns_rand_fn)(void *ctx);

typedef struct dns_options {
    /* c-ares server list "ip:port,[ip6]:port"; NULL or "" = the system's
     * resolver configuration. */
    const char *servers;
    unsigned timeout_ms;                 /* 0 = 2000 */
    unsigned tries;                      /* 0 = 2 */
    const cfg_static_route *statics;     /* copied */
    size_t n_statics;
    dns_rand_fn rand;                    /* NULL = internal generator seeded by getrandom */
    void *rand_ctx;
} dns_options;

/* Creates the resolver on `loop`. NULL after logging why (bad server list,
 * c-ares failure, out of memory). */
dns *dns_new(uv_loop_t *loop, const dns_options *opt);
/* The same from the [dns] section of a configuration. */
dns *dns_new_from_cfg(uv_loop_t *loop, const cfg *c);

/* Cancels every pending request (their callbacks run now, inside this
 * call, with DNS_ECANCELLED), destroys the c-ares channel and closes every
 * handle; the memory goes once the loop has run the close callbacks. d is
 * invalid afterwards (a second call before the loop runs is harmless).
 * NULL is ok. Call it before freeing whatever those callbacks touch. */
void dns_close(dns *d);

/* Candidates for `service` at `domain` (see the top of this file).
 * Returns a handle for dns_cancel, or NULL (and no callback) when out of
 * memory or when the resolver is closing. */
dns_req *dns_resolve_service(dns *d, dns_service service, const char *domain, dns_service_cb cb,
                             void *arg);

/* Every A and AAAA address of `domain` (a [dns] static route with an IP
 * host answers with that IP; an IP literal answers itself). For PSYC host
 * authentication: does the peer's address belong to the name it claims
 * (PSYC.md §5)? Same return convention as dns_resolve_service. */
dns_req *dns_resolve_addrs(dns *d, const char *domain, dns_addrs_cb cb, void *arg);

/* The callback of r will not run. Queries already sent finish in the
 * background and are discarded. */
void dns_cancel(dns_req *r);

/* Requests whose callback has not run yet (for status and tests). */
size_t dns_pending(const dns *d);

const char *dns_strerror(dns_status st);
const char *dns_service_name(dns_service s); /* "xmpp-server" | "psyc" */
uint16_t dns_service_port(dns_service s);    /* 5269 | 4404 */

/* ------------------------------------------------------------------ */
/* RFC 2782 ordering, pure (no I/O; the random source is passed in). */

typedef struct dns_srv_rr {
    uint16_t priority, weight, port;
} dns_srv_rr;

/* Writes into order[0..n-1] the indices of rr[] in the order to try them:
 * ascending priority; within one priority repeatedly a weighted random
 * pick (RFC 2782, the Weight field): with S the sum of the weights not yet
 * picked, a number r uniform in [0, S] selects the first record, zero
 * weights first, whose running sum is >= r. Records of weight 0 together
 * come next only with chance 1/(S+1) each round, and when all that remain
 * weigh 0 they are picked uniformly (RFC 2782 allows "any order").
 * rand is called only when a priority has two or more records left.
 * 0 on success, -1 when n > DNS_SRV_MAX. */
int dns_srv_order(const dns_srv_rr *rr, size_t n, dns_rand_fn rand, void *rand_ctx, size_t *order);

#endif /* GATEWAY_DNS_H */
