/* dns.c: c-ares driven by the libuv loop; SRV, A/AAAA and static routes
 * (see dns.h). */
#include "gateway/dns.h"

#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "gateway/log.h"

#define COMP "dns"

/* RFC 1035 §3.2.4 class IN, RFC 2782 type SRV (c-ares 1.18 keeps its own
 * ns_c_in / ns_t_srv names private). */
#define DNS_CLASS_IN 1
#define DNS_TYPE_SRV 33

/* One resolver socket that c-ares asked us to watch. */
typedef struct dns_sock {
    uv_poll_t poll;
    ares_socket_t fd;
    dns *d;
    struct dns_sock *next;
} dns_sock;

typedef enum dns_kind { DNS_KIND_SERVICE, DNS_KIND_ADDRS } dns_kind;

/* One host name whose A/AAAA a request looks up (an SRV target, the domain
 * itself, or the host of a static route). */
typedef struct dns_slot {
    dns_req *req;
    char host[DNS_NAME_MAX + 1];
    uint16_t port, priority, weight;
    int ares_status;
    dns_addr addrs[DNS_ADDRS_PER_HOST];
    size_t n_addrs;
} dns_slot;

struct dns_req {
    dns *d;
    dns_req *prev, *next; /* d->reqs: every request not yet freed */
    dns_req *done_next;   /* d->done_head: completed, callback not yet run */
    dns_kind kind;
    dns_service service;
    dns_origin origin;
    dns_status status;
    char domain[DNS_NAME_MAX + 1];
    char failed[DNS_NAME_MAX + 48]; /* the query that failed, for the log */
    int outstanding;      /* c-ares callbacks still to come */
    int completed;        /* on the done queue */
    int cancelled;        /* by dns_cancel: no callback */
    int delivering;       /* its callback is running */
    uint64_t started_ms;
    dns_slot *slots;
    size_t n_slots;
    dns_candidate *cands; /* result of a service lookup */
    size_t n_cands;
    dns_addr *addrs;      /* result of an address lookup */
    size_t n_addrs;
    dns_service_cb service_cb;
    dns_addrs_cb addrs_cb;
    void *arg;
};

struct dns {
    uv_loop_t *loop;
    ares_channel ch;
    uv_timer_t timer;     /* c-ares' next timeout */
    uv_timer_t defer;     /* runs callbacks of completed requests */
    int open_handles;     /* timers and polls not yet closed */
    int closing;
    dns_sock *socks;
    dns_req *reqs;
    dns_req *done_head, *done_tail;
    size_t n_pending;
    cfg_static_route *statics;
    size_t n_statics;
    dns_rand_fn rand;
    void *rand_ctx;
    uint64_t rng;         /* state of the default generator */
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                      */

const char *dns_strerror(dns_status st)
{
    switch (st) {
    case DNS_OK: return "ok";
    case DNS_ENOTFOUND: return "name or address not found";
    case DNS_ENOSERVICE: return "service not offered (SRV target \".\")";
    case DNS_ESERVFAIL: return "DNS server failure (SERVFAIL)";
    case DNS_ETIMEOUT: return "DNS timeout";
    case DNS_EREFUSED: return "DNS server refused or unreachable";
    case DNS_EBADNAME: return "not a valid DNS name";
    case DNS_ECANCELLED: return "cancelled";
    case DNS_ENOMEM: return "out of memory";
    case DNS_EFAIL: return "DNS error";
    }
    return "unknown DNS status";
}

const char *dns_service_name(dns_service s)
{
    return s == DNS_SVC_PSYC ? "psyc" : "xmpp-server";
}

uint16_t dns_service_port(dns_service s)
{
    return s == DNS_SVC_PSYC ? DNS_PORT_PSYC : DNS_PORT_XMPP_SERVER;
}

static dns_status dns_from_ares(int st)
{
    switch (st) {
    case ARES_SUCCESS: return DNS_OK;
    case ARES_ENODATA:
    case ARES_ENOTFOUND: return DNS_ENOTFOUND;
    case ARES_ESERVFAIL: return DNS_ESERVFAIL;
    case ARES_ETIMEOUT: return DNS_ETIMEOUT;
    case ARES_EREFUSED:
    case ARES_ECONNREFUSED: return DNS_EREFUSED;
    case ARES_EBADNAME: return DNS_EBADNAME;
    case ARES_ENOMEM: return DNS_ENOMEM;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION: return DNS_ECANCELLED;
    default: return DNS_EFAIL;
    }
}

/* splitmix64: enough to spread load over SRV weights; seeded from the
 * kernel so two gateways do not pick the same targets in lockstep. */
static uint32_t dns_default_rand(void *ctx)
{
    dns *d = ctx;
    uint64_t z = (d->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* Copies `in` into out as a lower-case DNS name without a trailing dot.
 * 1 if it is a usable name (labels of 1..63 letters, digits, '-' or '_',
 * 253 bytes at most) or an IP literal (*literal set), else 0 with a
 * printable excerpt in out for the log. */
static int dns_name_normalize(const char *in, char *out, int *literal)
{
    unsigned char bin[sizeof(struct in6_addr)];
    size_t n = strlen(in);
    *literal = 0;
    if (n && in[n - 1] == '.')
        n--;
    int ok = n > 0 && n <= DNS_NAME_MAX;
    size_t label = 0;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = in[i];
        if (ch == '.') {
            ok = label > 0;
            label = 0;
        } else {
            ok = ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '-' || ch == '_') &&
                 ++label <= 63;
        }
    }
    if (ok) {
        for (size_t i = 0; i < n; i++)
            out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] - 'A' + 'a') : in[i];
        out[n] = '\0';
        *literal = inet_pton(AF_INET, out, bin) == 1;
        return 1;
    }
    /* "::1" or "[::1]" */
    char ip[DNS_IP_MAX + 2];
    if (in[0] == '[' && n >= 2 && in[n - 1] == ']' && n - 2 < sizeof ip) {
        memcpy(ip, in + 1, n - 2);
        ip[n - 2] = '\0';
    } else if (n < sizeof ip) {
        memcpy(ip, in, n);
        ip[n] = '\0';
    } else {
        ip[0] = '\0';
    }
    if (ip[0] && inet_pton(AF_INET6, ip, bin) == 1) {
        /* Store the canonical text form. */
        inet_ntop(AF_INET6, bin, out, DNS_NAME_MAX + 1);
        *literal = 1;
        return 1;
    }
    snprintf(out, DNS_NAME_MAX + 1, "%.64s", in);
    return 0;
}

static int dns_addr_from_sockaddr(const struct sockaddr *sa, uint16_t port, dns_addr *out)
{
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&out->sa;
        memcpy(in, sa, sizeof *in);
        in->sin_port = htons(port);
        inet_ntop(AF_INET, &in->sin_addr, out->ip, sizeof out->ip);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->sa;
        memcpy(in6, sa, sizeof *in6);
        in6->sin6_port = htons(port);
        inet_ntop(AF_INET6, &in6->sin6_addr, out->ip, sizeof out->ip);
    } else {
        return -1;
    }
    out->family = sa->sa_family;
    return 0;
}

/* A numeric address (IPv6 without brackets) into out. */
static int dns_addr_from_ip(const char *ip, uint16_t port, dns_addr *out)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &in->sin_addr) == 1)
        in->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1)
        in6->sin6_family = AF_INET6;
    else
        return -1;
    return dns_addr_from_sockaddr((struct sockaddr *)&ss, port, out);
}

static int dns_is_ip(const char *s)
{
    unsigned char bin[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, bin) == 1 || inet_pton(AF_INET6, s, bin) == 1;
}

static const cfg_static_route *dns_static_find(const dns *d, const char *domain)
{
    for (size_t i = 0; i < d->n_statics; i++)
        if (strcmp(d->statics[i].domain, domain) == 0)
            return &d->statics[i];
    return NULL;
}

/* ------------------------------------------------------------------ */
/* c-ares on libuv: sockets and timeouts                              */

static void dns_free(dns *d)
{
    free(d->statics);
    free(d);
    ares_library_cleanup();
}

static void dns_on_handle_closed(uv_handle_t *h)
{
    dns *d = h->data;
    if (--d->open_handles == 0 && d->closing)
        dns_free(d);
}

static void dns_on_sock_closed(uv_handle_t *h)
{
    dns_sock *s = h->data;
    dns *d = s->d;
    free(s);
    if (--d->open_handles == 0 && d->closing)
        dns_free(d);
}

static void dns_on_timer(uv_timer_t *t);

/* Arms the timer for c-ares' next deadline (a retry or a timeout). Called
 * after every query sent and every ares_process_fd. */
static void dns_rearm(dns *d)
{
    struct timeval tv;
    if (d->closing || !d->ch)
        return;
    if (!ares_timeout(d->ch, NULL, &tv)) {
        uv_timer_stop(&d->timer);
        return;
    }
    /* Round up: firing a millisecond early would only spin once more. */
    uint64_t ms = (uint64_t)tv.tv_sec * 1000u + ((uint64_t)tv.tv_usec + 999u) / 1000u;
    uv_timer_start(&d->timer, dns_on_timer, ms, 0);
}

static void dns_on_timer(uv_timer_t *t)
{
    dns *d = t->data;
    ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_rearm(d);
}

static void dns_on_poll(uv_poll_t *p, int status, int events)
{
    dns_sock *s = p->data;
    dns *d = s->d;
    ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
    if (status < 0) {
        /* Let c-ares find the error on the socket itself and fail over. */
        rfd = wfd = s->fd;
    } else {
        if (events & UV_READABLE)
            rfd = s->fd;
        if (events & UV_WRITABLE)
            wfd = s->fd;
    }
    /* May close this very socket through dns_on_sock_state; s stays
     * allocated until its close callback, but is not used again here. */
    ares_process_fd(d->ch, rfd, wfd);
    dns_rearm(d);
}

/* Stops watching before c-ares closes the fd, so epoll never holds a
 * descriptor number that a new socket may reuse. */
static void dns_sock_close(dns_sock *s)
{
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, dns_on_sock_closed);
}

/* ARES_OPT_SOCK_STATE_CB: c-ares tells which sockets to watch for what;
 * (0, 0) means it is about to close the socket. */
static void dns_on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    dns *d = data;
    dns_sock **pp = &d->socks;
    while (*pp && (*pp)->fd != fd)
        pp = &(*pp)->next;
    dns_sock *s = *pp;

    if (!readable && !writable) {
        if (s) {
            *pp = s->next;
            dns_sock_close(s);
        }
        return;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) {
            /* The query on it will time out; nothing better to do. */
            log_error(COMP, NULL, "out of memory watching a resolver socket");
            return;
        }
        int rc = uv_poll_init_socket(d->loop, &s->poll, fd);
        if (rc < 0) {
            log_error(COMP, NULL, "cannot watch resolver socket %d: %s", (int)fd, uv_strerror(rc));
            free(s);
            return;
        }
        s->fd = fd;
        s->d = d;
        s->poll.data = s;
        s->next = d->socks;
        d->socks = s;
        d->open_handles++;
    }
    int rc = uv_poll_start(&s->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                           dns_on_poll);
    if (rc < 0)
        log_error(COMP, NULL, "cannot poll resolver socket %d: %s", (int)fd, uv_strerror(rc));
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */

dns *dns_new(uv_loop_t *loop, const dns_options *opt)
{
    dns_options none;
    if (!opt) {
        memset(&none, 0, sizeof none);
        opt = &none;
    }
    dns *d = calloc(1, sizeof *d);
    if (!d) {
        log_error(COMP, NULL, "out of memory");
        return NULL;
    }
    d->loop = loop;
    if (opt->n_statics) {
        d->statics = calloc(opt->n_statics, sizeof *d->statics);
        if (!d->statics) {
            free(d);
            log_error(COMP, NULL, "out of memory");
            return NULL;
        }
        memcpy(d->statics, opt->statics, opt->n_statics * sizeof *d->statics);
        d->n_statics = opt->n_statics;
    }
    if (opt->rand) {
        d->rand = opt->rand;
        d->rand_ctx = opt->rand_ctx;
    } else {
        if (getrandom(&d->rng, sizeof d->rng, GRND_NONBLOCK) != (ssize_t)sizeof d->rng)
            d->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32);
        d->rand = dns_default_rand;
        d->rand_ctx = d;
    }

    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        log_error(COMP, NULL, "c-ares init failed: %s", ares_strerror(rc));
        free(d->statics);
        free(d);
        return NULL;
    }

    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.sock_state_cb = dns_on_sock_state;
    o.sock_state_cb_data = d;
    o.timeout = (int)(opt->timeout_ms ? opt->timeout_ms : 2000);
    o.tries = (int)(opt->tries ? opt->tries : 2);
    /* /etc/hosts, then the DNS: an admin's hosts entry still wins. */
    o.lookups = (char *)"fb";
    /* No search list: federation names are always absolute, and a search
     * domain from resolv.conf would send "peer.example.corp.lan" queries
     * to whoever serves corp.lan. */
    o.domains = NULL;
    o.ndomains = 0;
    /* Hand SERVFAIL and REFUSED answers to us instead of retrying them on
     * the next server: c-ares 1.18 would then end the query as "could not
     * contact DNS servers" and the log could not say SERVFAIL. A recursive
     * resolver's SERVFAIL almost always means the peer's own DNS is broken,
     * which another resolver would not repair. Timeouts and unreachable
     * servers still fail over. */
    o.flags = ARES_FLAG_NOCHECKRESP;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
               ARES_OPT_DOMAINS | ARES_OPT_FLAGS;
    rc = ares_init_options(&d->ch, &o, mask);
    if (rc != ARES_SUCCESS) {
        log_error(COMP, NULL, "c-ares channel: %s", ares_strerror(rc));
        free(d->statics);
        free(d);
        ares_library_cleanup();
        return NULL;
    }
    const char *servers = opt->servers && *opt->servers ? opt->servers : NULL;
    if (servers) {
        rc = ares_set_servers_ports_csv(d->ch, servers);
        if (rc != ARES_SUCCESS) {
            log_error(COMP, NULL, "bad DNS server list '%s': %s", servers, ares_strerror(rc));
            ares_destroy(d->ch);
            free(d->statics);
            free(d);
            ares_library_cleanup();
            return NULL;
        }
    }
    uv_timer_init(loop, &d->timer);
    uv_timer_init(loop, &d->defer);
    d->timer.data = d;
    d->defer.data = d;
    d->open_handles = 2;
    log_info(COMP, NULL, "resolver ready: servers %s, timeout %d ms, %d tries, %zu static routes",
             servers ? servers : "from the system", o.timeout, o.tries, d->n_statics);
    return d;
}

dns *dns_new_from_cfg(uv_loop_t *loop, const cfg *c)
{
    const cfg_addr *servers = NULL;
    size_t ns = cfg_get_servers(c, "dns", "server", &servers);
    char csv[CFG_MAX_DNS_SERVERS * 64 + 1] = "";
    for (size_t i = 0; i < ns; i++) {
        char one[64];
        cfg_addr_format(&servers[i], one, sizeof one);
        if (i)
            strcat(csv, ",");
        strcat(csv, one);
    }
    dns_options o;
    memset(&o, 0, sizeof o);
    o.servers = csv;
    o.timeout_ms = (unsigned)cfg_get_uint(c, "dns", "timeout_ms");
    o.tries = (unsigned)cfg_get_uint(c, "dns", "tries");
    o.n_statics = cfg_get_static_routes(c, "dns", "static", &o.statics);
    return dns_new(loop, &o);
}

size_t dns_pending(const dns *d)
{
    return d ? d->n_pending : 0;
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */

/* Takes r off d->reqs (idempotent). */
static void dns_req_unlink(dns_req *r)
{
    dns *d = r->d;
    if (r->prev)
        r->prev->next = r->next;
    else if (d->reqs == r)
        d->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void dns_req_free(dns_req *r)
{
    dns_req_unlink(r);
    free(r->slots);
    free(r->cands);
    free(r->addrs);
    free(r);
}

static dns_req *dns_req_new(dns *d, dns_kind kind, void *arg)
{
    dns_req *r = calloc(1, sizeof *r);
    if (!r) {
        log_error(COMP, NULL, "out of memory for a lookup");
        return NULL;
    }
    r->d = d;
    r->kind = kind;
    r->arg = arg;
    r->started_ms = uv_now(d->loop);
    r->next = d->reqs;
    if (d->reqs)
        d->reqs->prev = r;
    d->reqs = r;
    d->n_pending++;
    return r;
}

/* Runs the callback of r with `status` (its own, or DNS_ECANCELLED), then
 * frees r. r has already left the done queue. */
static void dns_req_deliver(dns_req *r, dns_status status)
{
    dns *d = r->d;
    r->delivering = 1;
    d->n_pending--;
    /* Off the list first: the callback may run dns_close, whose sweep
     * must not see r again. */
    dns_req_unlink(r);
    if (r->kind == DNS_KIND_SERVICE) {
        dns_service_result res;
        memset(&res, 0, sizeof res);
        res.status = status;
        res.service = r->service;
        res.origin = r->origin;
        res.domain = r->domain;
        if (status == DNS_OK) {
            res.candidates = r->cands;
            res.n_candidates = r->n_cands;
        }
        r->service_cb(&res, r->arg);
    } else {
        dns_addrs_result res;
        memset(&res, 0, sizeof res);
        res.status = status;
        res.domain = r->domain;
        if (status == DNS_OK) {
            res.addrs = r->addrs;
            res.n_addrs = r->n_addrs;
        }
        r->addrs_cb(&res, r->arg);
    }
    dns_req_free(r);
}

static void dns_on_defer(uv_timer_t *t)
{
    dns *d = t->data;
    /* A callback may start lookups (queued behind) or close d (which
     * empties the queue itself). */
    while (!d->closing && d->done_head) {
        dns_req *r = d->done_head;
        d->done_head = r->done_next;
        if (!d->done_head)
            d->done_tail = NULL;
        r->done_next = NULL;
        r->completed = 0;
        dns_req_deliver(r, r->status);
    }
}

static void dns_log_result(const dns_req *r)
{
    uint64_t ms = uv_now(r->d->loop) - r->started_ms;
    const char *what = r->kind == DNS_KIND_SERVICE ? dns_service_name(r->service) : "addresses";
    if (r->status == DNS_EBADNAME) {
        log_warn(COMP, NULL, "'%s' %s: %s", r->domain, what, dns_strerror(r->status));
        return;
    }
    if (r->status != DNS_OK) {
        log_warn(COMP, NULL, "%s %s: %s%s%s (%llu ms)", r->domain, what, dns_strerror(r->status),
                 r->failed[0] ? " on " : "", r->failed, (unsigned long long)ms);
        return;
    }
    char list[256] = "";
    size_t n = r->kind == DNS_KIND_SERVICE ? r->n_cands : r->n_addrs;
    size_t len = 0;
    for (size_t i = 0; i < n && i < 4 && len < sizeof list; i++) {
        if (r->kind == DNS_KIND_SERVICE) {
            const dns_candidate *c = &r->cands[i];
            len += (size_t)snprintf(list + len, sizeof list - len,
                                    c->addr.family == AF_INET6 ? "%s%s [%s]:%u" : "%s%s %s:%u",
                                    i ? ", " : "", c->host, c->addr.ip, (unsigned)c->port);
        } else {
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
                                    r->addrs[i].ip);
        }
    }
    static const char *const origins[] = {"SRV", "A/AAAA fallback", "static route", "IP literal"};
    log_info(COMP, NULL, "%s %s: %zu %s by %s: %s%s (%llu ms)", r->domain, what, n,
             r->kind == DNS_KIND_SERVICE ? "candidates" : "addresses",
             r->kind == DNS_KIND_SERVICE ? origins[r->origin] : "A/AAAA", list, n > 4 ? ", ..." : "",
             (unsigned long long)ms);
}

/* The result of r is final: queue its callback for the loop (never run it
 * from inside c-ares or from inside dns_resolve_*). */
static void dns_req_finish(dns_req *r, dns_status status)
{
    dns *d = r->d;
    r->status = status;
    r->completed = 1;
    if (d->done_tail)
        d->done_tail->done_next = r;
    else
        d->done_head = r;
    d->done_tail = r;
    dns_log_result(r);
    uv_timer_start(&d->defer, dns_on_defer, 0, 0);
}

/* Builds the result from the slots once every address lookup is back. */
static void dns_req_assemble(dns_req *r)
{
    size_t total = 0;
    for (size_t i = 0; i < r->n_slots; i++)
        total += r->slots[i].n_addrs;
    if (total == 0) {
        /* Nothing to connect to: report the most telling failure, a server
         * problem over a plain "not found". */
        dns_status st = DNS_ENOTFOUND;
        for (size_t i = 0; i < r->n_slots; i++) {
            dns_status s = dns_from_ares(r->slots[i].ares_status);
            if (s != DNS_OK && s != DNS_ENOTFOUND) {
                st = s;
                snprintf(r->failed, sizeof r->failed, "A/AAAA %s", r->slots[i].host);
                break;
            }
        }
        if (st == DNS_ENOTFOUND && r->n_slots == 1)
            snprintf(r->failed, sizeof r->failed, "A/AAAA %s", r->slots[0].host);
        dns_req_finish(r, st);
        return;
    }
    if (r->kind == DNS_KIND_SERVICE) {
        r->cands = calloc(total, sizeof *r->cands);
        if (!r->cands) {
            dns_req_finish(r, DNS_ENOMEM);
            return;
        }
        for (size_t i = 0; i < r->n_slots; i++) {
            const dns_slot *s = &r->slots[i];
            for (size_t j = 0; j < s->n_addrs; j++) {
                dns_candidate *c = &r->cands[r->n_cands++];
                memcpy(c->host, s->host, sizeof c->host);
                c->port = s->port;
                c->priority = s->priority;
                c->weight = s->weight;
                c->addr = s->addrs[j];
            }
        }
    } else {
        r->addrs = calloc(total, sizeof *r->addrs);
        if (!r->addrs) {
            dns_req_finish(r, DNS_ENOMEM);
            return;
        }
        for (size_t i = 0; i < r->n_slots; i++)
            for (size_t j = 0; j < r->slots[i].n_addrs; j++)
                r->addrs[r->n_addrs++] = r->slots[i].addrs[j];
    }
    dns_req_finish(r, DNS_OK);
}

/* After a c-ares callback of r: free a cancelled request once nothing is
 * outstanding; assemble a finished one. During dns_close, do nothing:
 * dns_close sweeps every request itself. */
static void dns_req_settle(dns_req *r)
{
    if (r->outstanding > 0)
        return;
    if (r->cancelled) {
        dns_req_free(r);
        return;
    }
    if (r->d->closing || r->completed)
        return;
    dns_req_assemble(r);
}

static void dns_on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    dns_slot *s = arg;
    dns_req *r = s->req;
    (void)timeouts;
    s->ares_status = status;
    if (status == ARES_SUCCESS && res) {
        for (struct ares_addrinfo_node *n = res->nodes; n && s->n_addrs < DNS_ADDRS_PER_HOST;
             n = n->ai_next) {
            dns_addr a;
            if (dns_addr_from_sockaddr(n->ai_addr, s->port, &a) != 0)
                continue;
            int dup = 0;
            for (size_t i = 0; i < s->n_addrs && !dup; i++)
                dup = strcmp(s->addrs[i].ip, a.ip) == 0;
            if (!dup)
                s->addrs[s->n_addrs++] = a;
        }
    }
    if (res)
        ares_freeaddrinfo(res);
    if (!r->cancelled && !r->d->closing)
        log_debug(COMP, NULL, "answer A/AAAA %s: %zu addresses%s%s", s->host, s->n_addrs,
                  status == ARES_SUCCESS ? "" : ", ", status == ARES_SUCCESS ? "" : ares_strerror(status));
    r->outstanding--;
    dns_req_settle(r);
}

/* Starts the A/AAAA lookups of every slot. A lookup may complete inside
 * ares_getaddrinfo (an IP target, /etc/hosts), hence the extra count held
 * while sending. */
static void dns_req_lookup_slots(dns_req *r)
{
    dns *d = r->d;
    r->outstanding++;
    for (size_t i = 0; i < r->n_slots; i++) {
        struct ares_addrinfo_hints hints;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        r->slots[i].req = r;
        r->outstanding++;
        log_debug(COMP, NULL, "query A/AAAA %s", r->slots[i].host);
        ares_getaddrinfo(d->ch, r->slots[i].host, NULL, &hints, dns_on_addrinfo, &r->slots[i]);
    }
    r->outstanding--;
    dns_rearm(d);
    dns_req_settle(r);
}

/* One slot (the domain itself, or a static host) for r. */
static int dns_req_one_slot(dns_req *r, const char *host, uint16_t port)
{
    r->slots = calloc(1, sizeof *r->slots);
    if (!r->slots)
        return -1;
    r->n_slots = 1;
    snprintf(r->slots[0].host, sizeof r->slots[0].host, "%s", host);
    r->slots[0].port = port;
    return 0;
}

static void dns_on_srv(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    dns_req *r = arg;
    (void)timeouts;
    r->outstanding--;
    if (r->cancelled || r->d->closing) {
        dns_req_settle(r);
        return;
    }
    char qname[DNS_NAME_MAX + 32];
    snprintf(qname, sizeof qname, "_%s._tcp.%s", dns_service_name(r->service), r->domain);

    struct ares_srv_reply *srv = NULL;
    if (status == ARES_SUCCESS) {
        int pst = ares_parse_srv_reply(abuf, alen, &srv);
        if (pst != ARES_SUCCESS) {
            /* ENODATA: an answer without SRV records (a CNAME only, say) */
            status = pst;
            srv = NULL;
        }
    }
    if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
        /* RFC 6120 §3.2.2 and PSYC's default port: no SRV record at all,
         * so the domain itself is the server. */
        log_debug(COMP, NULL, "answer SRV %s: %s; falling back to A/AAAA of %s port %u", qname,
                  status == ARES_ENOTFOUND ? "NXDOMAIN" : "NODATA", r->domain,
                  (unsigned)dns_service_port(r->service));
        r->origin = DNS_FROM_FALLBACK;
        if (dns_req_one_slot(r, r->domain, dns_service_port(r->service)) != 0) {
            dns_req_finish(r, DNS_ENOMEM);
            return;
        }
        dns_req_lookup_slots(r);
        return;
    }
    if (status != ARES_SUCCESS) {
        /* SERVFAIL, timeout, refused: the domain may well have SRV records
         * we cannot see; do not guess (see dns.h). */
        snprintf(r->failed, sizeof r->failed, "SRV %s", qname);
        dns_req_finish(r, dns_from_ares(status));
        return;
    }

    dns_srv_rr rr[DNS_SRV_MAX];
    char hosts[DNS_SRV_MAX][DNS_NAME_MAX + 1];
    size_t n = 0, dots = 0, skipped = 0;
    for (struct ares_srv_reply *p = srv; p; p = p->next) {
        int literal;
        if (p->host[0] == '\0' || strcmp(p->host, ".") == 0) {
            /* c-ares renders the root name as "" */
            dots++;
            continue;
        }
        if (n == DNS_SRV_MAX || p->port == 0 || !dns_name_normalize(p->host, hosts[n], &literal)) {
            skipped++;
            continue;
        }
        rr[n].priority = p->priority;
        rr[n].weight = p->weight;
        rr[n].port = p->port;
        n++;
    }
    ares_free_data(srv);
    log_debug(COMP, NULL, "answer SRV %s: %zu records%s%s", qname, n + dots + skipped,
              dots ? ", target \".\"" : "", skipped ? ", some unusable" : "");
    if (n == 0) {
        snprintf(r->failed, sizeof r->failed, "SRV %s", qname);
        /* RFC 2782: 'A Target of "." means that the service is decidedly
         * not available at this domain.' */
        dns_req_finish(r, dots ? DNS_ENOSERVICE : DNS_EFAIL);
        return;
    }
    size_t order[DNS_SRV_MAX];
    dns_srv_order(rr, n, r->d->rand, r->d->rand_ctx, order);
    r->slots = calloc(n, sizeof *r->slots);
    if (!r->slots) {
        dns_req_finish(r, DNS_ENOMEM);
        return;
    }
    r->n_slots = n;
    r->origin = DNS_FROM_SRV;
    for (size_t i = 0; i < n; i++) {
        dns_slot *s = &r->slots[i];
        memcpy(s->host, hosts[order[i]], sizeof s->host);
        s->port = rr[order[i]].port;
        s->priority = rr[order[i]].priority;
        s->weight = rr[order[i]].weight;
    }
    dns_req_lookup_slots(r);
}

/* Common start of both lookups: the name check, static routes and IP
 * literals, which need no query. 1 when r is already finished. */
static int dns_req_shortcut(dns_req *r, const char *domain, uint16_t default_port)
{
    int literal;
    if (!dns_name_normalize(domain, r->domain, &literal)) {
        dns_req_finish(r, DNS_EBADNAME);
        return 1;
    }
    const char *host = r->domain;
    uint16_t port = default_port;
    const cfg_static_route *st = dns_static_find(r->d, r->domain);
    if (st) {
        r->origin = DNS_FROM_STATIC;
        host = st->host;
        if (st->port && r->kind == DNS_KIND_SERVICE)
            port = st->port;
        literal = dns_is_ip(host);
        log_debug(COMP, NULL, "%s: static route to %s port %u", r->domain, host, (unsigned)port);
    } else if (literal) {
        r->origin = DNS_FROM_LITERAL;
    }
    if (literal) {
        dns_addr a;
        if (dns_addr_from_ip(host, port, &a) != 0) {
            dns_req_finish(r, DNS_EBADNAME);
            return 1;
        }
        if (r->kind == DNS_KIND_SERVICE) {
            r->cands = calloc(1, sizeof *r->cands);
            if (!r->cands) {
                dns_req_finish(r, DNS_ENOMEM);
                return 1;
            }
            snprintf(r->cands[0].host, sizeof r->cands[0].host, "%s", host);
            r->cands[0].port = port;
            r->cands[0].addr = a;
            r->n_cands = 1;
        } else {
            r->addrs = calloc(1, sizeof *r->addrs);
            if (!r->addrs) {
                dns_req_finish(r, DNS_ENOMEM);
                return 1;
            }
            r->addrs[0] = a;
            r->n_addrs = 1;
        }
        dns_req_finish(r, DNS_OK);
        return 1;
    }
    if (st) {
        /* A static route to a host name: its A/AAAA, no SRV. */
        if (dns_req_one_slot(r, host, port) != 0) {
            dns_req_finish(r, DNS_ENOMEM);
            return 1;
        }
        dns_req_lookup_slots(r);
        return 1;
    }
    return 0;
}

dns_req *dns_resolve_service(dns *d, dns_service service, const char *domain, dns_service_cb cb,
                             void *arg)
{
    if (!d || d->closing || !cb || !domain)
        return NULL;
    dns_req *r = dns_req_new(d, DNS_KIND_SERVICE, arg);
    if (!r)
        return NULL;
    r->service = service;
    r->service_cb = cb;
    if (dns_req_shortcut(r, domain, dns_service_port(service)))
        return r;

    /* RFC 6120 §3.2.1 / RFC 2782: _Service._Proto.Name */
    char qname[DNS_NAME_MAX + 32];
    snprintf(qname, sizeof qname, "_%s._tcp.%s", dns_service_name(service), r->domain);
    log_debug(COMP, NULL, "query SRV %s", qname);
    r->outstanding++;
    ares_query(d->ch, qname, DNS_CLASS_IN, DNS_TYPE_SRV, dns_on_srv, r);
    dns_rearm(d);
    return r;
}

dns_req *dns_resolve_addrs(dns *d, const char *domain, dns_addrs_cb cb, void *arg)
{
    if (!d || d->closing || !cb || !domain)
        return NULL;
    dns_req *r = dns_req_new(d, DNS_KIND_ADDRS, arg);
    if (!r)
        return NULL;
    r->addrs_cb = cb;
    if (dns_req_shortcut(r, domain, 0))
        return r;
    if (dns_req_one_slot(r, r->domain, 0) != 0) {
        dns_req_finish(r, DNS_ENOMEM);
        return r;
    }
    dns_req_lookup_slots(r);
    return r;
}

void dns_cancel(dns_req *r)
{
    if (!r || r->delivering || r->cancelled)
        return;
    dns *d = r->d;
    r->cancelled = 1;
    d->n_pending--;
    if (r->completed) {
        /* Off the done queue, then gone. */
        dns_req **pp = &d->done_head;
        dns_req *prev = NULL;
        while (*pp && *pp != r) {
            prev = *pp;
            pp = &(*pp)->done_next;
        }
        if (*pp) {
            *pp = r->done_next;
            if (d->done_tail == r)
                d->done_tail = prev;
        }
        r->completed = 0;
    }
    if (r->outstanding == 0)
        dns_req_free(r);
    /* else: freed by dns_req_settle when c-ares reports back. */
}

void dns_close(dns *d)
{
    if (!d || d->closing)
        return;
    d->closing = 1;
    size_t pending = d->n_pending;
    /* Ends every query (their callbacks see ARES_EDESTRUCTION and only
     * count down) and closes the sockets through dns_on_sock_state. */
    if (d->ch) {
        ares_destroy(d->ch);
        d->ch = NULL;
    }
    while (d->socks) {
        dns_sock *s = d->socks;
        d->socks = s->next;
        dns_sock_close(s);
    }
    d->done_head = d->done_tail = NULL;
    /* Every request left gets its callback exactly once. A callback may
     * cancel other requests (freed here or right away) but start none. */
    while (d->reqs) {
        dns_req *r = d->reqs;
        r->completed = 0;
        r->done_next = NULL;
        if (r->cancelled)
            dns_req_free(r);
        else
            dns_req_deliver(r, DNS_ECANCELLED);
    }
    uv_close((uv_handle_t *)&d->timer, dns_on_handle_closed);
    uv_close((uv_handle_t *)&d->defer, dns_on_handle_closed);
    log_info(COMP, NULL, "resolver closed (%zu lookups cancelled)", pending);
}
