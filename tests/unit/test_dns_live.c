/*
 * test_dns_live.c: gateway/dns.c against a real DNS server over real
 * sockets. The server is tests/dns/fakedns.py (python3-dnslib), started
 * here on 127.0.0.1 and a free port, authoritative for *.test only and
 * never recursive: no query of this test leaves the machine.
 *
 * Missing /usr/bin/python3 or python3-dnslib is a failure, not a skip
 * (scripts/install-deps installs both).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "gateway/config.h"
#include "gateway/dns.h"
#include "gateway/log.h"

#define PY "/usr/bin/python3"
#define FAKEDNS SOURCE_DIR "/tests/dns/fakedns.py"

/* The zone served for every test (see the expectations below). */
static const char table_json[] =
    "{\"zones\": [\"test\"],\n"
    " \"a\": {\"a.multi.test\": \"127.0.0.11\", \"b.multi.test\": \"127.0.0.12\",\n"
    "        \"w1.multi.test\": \"127.0.0.13\", \"w2.multi.test\": \"127.0.0.14\",\n"
    "        \"psyc1.test\": \"127.0.0.3\", \"plain.test\": \"127.0.0.4\",\n"
    "        \"nodata.test\": \"127.0.0.5\", \"broken.test\": \"127.0.0.6\",\n"
    "        \"dual.test\": \"127.0.0.7\", \"offered.test\": \"127.0.0.8\"},\n"
    " \"aaaa\": {\"b.multi.test\": \"::12\", \"dual.test\": \"::7\"},\n"
    " \"srv\": {\"_xmpp-server._tcp.multi.test\": [\"c.multi.test:5303:1:0\",\n"
    "              \"b.multi.test:5302:5:0\", \"w1.multi.test:5304:10:1\",\n"
    "              \"w2.multi.test:5305:10:1000\", \"a.multi.test:5301:20:0\"],\n"
    "          \"_psyc._tcp.psyc1.test\": \"psyc1.test:4405\",\n"
    "          \"_xmpp-server._tcp.off.test\": \".:0\",\n"
    "          \"_xmpp-server._tcp.tgtfail.test\": \"bad.tgtfail.test:5269\"},\n"
    " \"exists\": [\"_xmpp-server._tcp.nodata.test\", \"tgtfail.test\"],\n"
    " \"servfail\": [\"_xmpp-server._tcp.broken.test\", \"bad.tgtfail.test\"],\n"
    " \"drop\": [\"_xmpp-server._tcp.slow.test\", \"slowaddr.test\"]}\n";

static struct {
    pid_t pid;
    uint16_t port;
    char dir[64];
    char log[128];
    char servers[64];
} fk;

/* ------------------------------------------------------------------ */
/* The fake DNS server process                                         */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* fork + exec with stdout/stderr to `out`; the child dies with us
 * (PR_SET_PDEATHSIG), so a crashed test leaves no server behind. */
static pid_t spawn(char *const argv[], const char *out)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) {
        dup2(null, 0);
        close(null);
    }
    execv(argv[0], argv);
    _exit(127);
}

/* Waits for pid up to ms; its exit status, or -1 if it still runs. */
static int wait_exit(pid_t pid, unsigned ms)
{
    uint64_t end = now_ms() + ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 || now_ms() > end)
            return -1;
        usleep(10000);
    }
}

/* A port free for both UDP and TCP on 127.0.0.1. */
static int free_port(uint16_t *out)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        struct sockaddr_in a;
        socklen_t len = sizeof a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int t = socket(AF_INET, SOCK_STREAM, 0);
        if (t < 0)
            return -1;
        if (bind(t, (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(t, (struct sockaddr *)&a, &len) != 0) {
            close(t);
            return -1;
        }
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        int ok = u >= 0 && bind(u, (struct sockaddr *)&a, sizeof a) == 0;
        if (u >= 0)
            close(u);
        close(t);
        if (ok) {
            *out = ntohs(a.sin_port);
            return 0;
        }
    }
    return -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* How many lines of the server's query log contain `needle`. */
static int log_count(const char *needle)
{
    char *text = slurp(fk.log);
    int n = 0;
    if (text)
        for (const char *p = text; (p = strstr(p, needle)); p++)
            n++;
    free(text);
    return n;
}

static int group_teardown(void **state);

/* A failed setup cleans up itself: cmocka runs no teardown after it. */
static int setup_failed(void)
{
    group_teardown(NULL);
    return -1;
}

static int group_setup(void **state)
{
    (void)state;
    if (access(PY, X_OK) != 0) {
        fprintf(stderr, "FAIL: %s is missing; the DNS tests need it with python3-dnslib "
                        "(scripts/install-deps)\n", PY);
        return setup_failed();
    }
    snprintf(fk.dir, sizeof fk.dir, "/tmp/test_dns_live_XXXXXX");
    if (!mkdtemp(fk.dir)) {
        fprintf(stderr, "FAIL: mkdtemp: %s\n", strerror(errno));
        return setup_failed();
    }
    snprintf(fk.log, sizeof fk.log, "%s/fakedns.log", fk.dir);

    char *check[] = {PY, "-c", "import dnslib", NULL};
    pid_t pid = spawn(check, fk.log);
    if (pid < 0 || wait_exit(pid, 20000) != 0) {
        char *text = slurp(fk.log);
        fprintf(stderr, "FAIL: %s cannot import dnslib; install python3-dnslib "
                        "(scripts/install-deps)\n%s\n", PY, text ? text : "");
        free(text);
        return setup_failed();
    }

    char json[128], ready[128], port[16];
    snprintf(json, sizeof json, "%s/table.json", fk.dir);
    snprintf(ready, sizeof ready, "%s/ready", fk.dir);
    FILE *f = fopen(json, "w");
    if (!f || fputs(table_json, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "FAIL: cannot write %s\n", json);
        return setup_failed();
    }
    if (free_port(&fk.port) != 0) {
        fprintf(stderr, "FAIL: no free port on 127.0.0.1\n");
        return setup_failed();
    }
    snprintf(port, sizeof port, "%u", (unsigned)fk.port);
    snprintf(fk.servers, sizeof fk.servers, "127.0.0.1:%u", (unsigned)fk.port);
    char *argv[] = {PY, FAKEDNS, "--listen", "127.0.0.1", "--port", port,
                    "--json", json, "--ready-file", ready, NULL};
    fk.pid = spawn(argv, fk.log);
    if (fk.pid < 0) {
        fprintf(stderr, "FAIL: fork: %s\n", strerror(errno));
        return setup_failed();
    }
    /* Listening once the ready file exists (written after both sockets
     * are bound); bounded, and an early exit is reported with its log. */
    uint64_t end = now_ms() + 20000;
    while (access(ready, F_OK) != 0) {
        if (wait_exit(fk.pid, 0) >= 0 || now_ms() > end) {
            char *text = slurp(fk.log);
            fprintf(stderr, "FAIL: fakedns did not start on port %u:\n%s\n", (unsigned)fk.port,
                    text ? text : "");
            free(text);
            if (now_ms() > end) {
                kill(fk.pid, SIGKILL);
                wait_exit(fk.pid, 5000);
            }
            fk.pid = 0;
            return setup_failed();
        }
        usleep(20000);
    }
    log_set_level(LOG_LEVEL_DEBUG);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (fk.pid > 0) {
        kill(fk.pid, SIGTERM);
        if (wait_exit(fk.pid, 3000) < 0) {
            kill(fk.pid, SIGKILL);
            wait_exit(fk.pid, 3000);
        }
        fk.pid = 0;
    }
    if (!fk.dir[0])
        return 0;
    char path[160];
    const char *files[] = {"fakedns.log", "table.json", "ready", "ready.tmp"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", fk.dir, files[i]);
        unlink(path);
    }
    rmdir(fk.dir);
    fk.dir[0] = '\0';
    return 0;
}

/* ------------------------------------------------------------------ */
/* Running lookups                                                     */

#define MAX_SEEN 32

typedef struct outcome {
    int called;
    dns_status status;
    dns_origin origin;
    char domain[DNS_NAME_MAX + 1];
    size_t n;
    dns_candidate c[MAX_SEEN];
    dns_addr a[MAX_SEEN];
    uint64_t at_ms;
} outcome;

static void on_service(const dns_service_result *r, void *arg)
{
    outcome *o = arg;
    o->called++;
    o->status = r->status;
    o->origin = r->origin;
    o->at_ms = now_ms();
    snprintf(o->domain, sizeof o->domain, "%s", r->domain);
    o->n = r->n_candidates;
    if (r->status == DNS_OK)
        assert_true(r->n_candidates > 0);
    else
        assert_int_equal(r->n_candidates, 0);
    for (size_t i = 0; i < r->n_candidates && i < MAX_SEEN; i++)
        o->c[i] = r->candidates[i];
}

static void on_addrs(const dns_addrs_result *r, void *arg)
{
    outcome *o = arg;
    o->called++;
    o->status = r->status;
    o->at_ms = now_ms();
    snprintf(o->domain, sizeof o->domain, "%s", r->domain);
    o->n = r->n_addrs;
    for (size_t i = 0; i < r->n_addrs && i < MAX_SEEN; i++)
        o->a[i] = r->addrs[i];
}

static void on_guard(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

typedef struct waiter {
    outcome **os;
    size_t n;
    uint64_t deadline;
} waiter;

static int all_called(const waiter *w)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->os[i]->called == 0)
            return 0;
    return 1;
}

/* Polls every millisecond (callbacks run from the resolver's own timer,
 * so a blocking UV_RUN_ONCE could sleep until the next far timer). */
static void on_tick(uv_timer_t *t)
{
    waiter *w = t->data;
    if (all_called(w) || now_ms() >= w->deadline)
        uv_stop(t->loop);
}

/* Runs the loop until every outcome has its callback, at most ms. */
static void run_until(uv_loop_t *loop, outcome **os, size_t n, unsigned ms)
{
    waiter w = {os, n, now_ms() + ms};
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    tick.data = &w;
    uv_timer_start(&tick, on_tick, 1, 1);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < n; i++)
        if (os[i]->called != 1)
            fail_msg("lookup %zu: %d callbacks within %u ms", i, os[i]->called, ms);
}

static void run_one(uv_loop_t *loop, outcome *o, unsigned ms)
{
    run_until(loop, &o, 1, ms);
}

static uint32_t rand_zero(void *ctx)
{
    (void)ctx;
    return 0;
}

static uint32_t rand_max(void *ctx)
{
    (void)ctx;
    return UINT32_MAX;
}

static dns *new_resolver(uv_loop_t *loop, unsigned timeout_ms, dns_rand_fn rnd)
{
    dns_options o;
    memset(&o, 0, sizeof o);
    o.servers = fk.servers;
    o.timeout_ms = timeout_ms;
    o.tries = 2;
    o.rand = rnd;
    dns *d = dns_new(loop, &o);
    assert_non_null(d);
    return d;
}

/* Closes d and checks that nothing is left on the loop. */
static void finish(uv_loop_t *loop, dns *d)
{
    dns_close(d);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void expect_cand(const outcome *o, size_t i, const char *host, const char *ip, unsigned port)
{
    if (i >= o->n)
        fail_msg("candidate %zu missing (%zu candidates)", i, o->n);
    const dns_candidate *c = &o->c[i];
    if (strcmp(c->host, host) != 0 || strcmp(c->addr.ip, ip) != 0 || c->port != port)
        fail_msg("candidate %zu: got %s %s:%u, want %s %s:%u", i, c->host, c->addr.ip,
                 (unsigned)c->port, host, ip, port);
    /* The socket address carries the same IP and port. */
    char buf[64];
    unsigned sport;
    if (c->addr.family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&c->addr.sa;
        assert_int_equal(in->sin_family, AF_INET);
        inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        sport = ntohs(in->sin_port);
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&c->addr.sa;
        assert_int_equal(in6->sin6_family, AF_INET6);
        inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
        sport = ntohs(in6->sin6_port);
    }
    assert_string_equal(buf, ip);
    assert_int_equal(sport, port);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */

static void test_srv_order_and_targets(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* rand_zero: in priority 10, r = 0 picks w1 (first on the wire); with
     * rand_max, r = 1001 lands on w2. */
    for (int pass = 0; pass < 2; pass++) {
        dns *d = new_resolver(&loop, 1000, pass ? rand_max : rand_zero);
        outcome o;
        memset(&o, 0, sizeof o);
        assert_non_null(dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "Multi.Test.", on_service, &o));
        run_one(&loop, &o, 5000);
        assert_int_equal(o.status, DNS_OK);
        assert_int_equal(o.origin, DNS_FROM_SRV);
        assert_string_equal(o.domain, "multi.test");
        /* c.multi.test (priority 1) has no address and is skipped; b has
         * an A and an AAAA, in the order c-ares sorted them (RFC 6724). */
        assert_int_equal(o.n, 5);
        assert_string_equal(o.c[0].host, "b.multi.test");
        assert_string_equal(o.c[1].host, "b.multi.test");
        int v4first = o.c[0].addr.family == AF_INET;
        expect_cand(&o, v4first ? 0 : 1, "b.multi.test", "127.0.0.12", 5302);
        expect_cand(&o, v4first ? 1 : 0, "b.multi.test", "::12", 5302);
        assert_int_equal(o.c[0].priority, 5);
        if (pass == 0) {
            expect_cand(&o, 2, "w1.multi.test", "127.0.0.13", 5304);
            expect_cand(&o, 3, "w2.multi.test", "127.0.0.14", 5305);
        } else {
            expect_cand(&o, 2, "w2.multi.test", "127.0.0.14", 5305);
            expect_cand(&o, 3, "w1.multi.test", "127.0.0.13", 5304);
        }
        assert_int_equal(o.c[2].priority, 10);
        expect_cand(&o, 4, "a.multi.test", "127.0.0.11", 5301);
        assert_int_equal(o.c[4].priority, 20);
        assert_int_equal(dns_pending(d), 0);
        dns_close(d);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    assert_int_equal(uv_loop_close(&loop), 0);

    /* PSYC: _psyc._tcp */
    uv_loop_init(&loop);
    dns *d = new_resolver(&loop, 1000, NULL);
    outcome o;
    memset(&o, 0, sizeof o);
    dns_resolve_service(d, DNS_SVC_PSYC, "psyc1.test", on_service, &o);
    run_one(&loop, &o, 5000);
    assert_int_equal(o.status, DNS_OK);
    assert_int_equal(o.origin, DNS_FROM_SRV);
    assert_int_equal(o.n, 1);
    expect_cand(&o, 0, "psyc1.test", "127.0.0.3", 4405);
    finish(&loop, d);
    assert_true(log_count("query _psyc._tcp.psyc1.test. SRV") >= 1);
}

static void test_fallback(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    dns *d = new_resolver(&loop, 1000, NULL);
    outcome nx_x, nx_p, nodata;
    memset(&nx_x, 0, sizeof nx_x);
    memset(&nx_p, 0, sizeof nx_p);
    memset(&nodata, 0, sizeof nodata);
    /* NXDOMAIN for the SRV name: the domain's A, default ports. */
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "plain.test", on_service, &nx_x);
    dns_resolve_service(d, DNS_SVC_PSYC, "plain.test", on_service, &nx_p);
    /* NODATA (the SRV name exists, without SRV records): the same. */
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "nodata.test", on_service, &nodata);
    outcome *all[] = {&nx_x, &nx_p, &nodata};
    run_until(&loop, all, 3, 5000);
    assert_int_equal(nx_x.status, DNS_OK);
    assert_int_equal(nx_x.origin, DNS_FROM_FALLBACK);
    assert_int_equal(nx_x.n, 1);
    expect_cand(&nx_x, 0, "plain.test", "127.0.0.4", 5269);
    assert_int_equal(nx_p.status, DNS_OK);
    assert_int_equal(nx_p.origin, DNS_FROM_FALLBACK);
    expect_cand(&nx_p, 0, "plain.test", "127.0.0.4", 4404);
    assert_int_equal(nodata.status, DNS_OK);
    assert_int_equal(nodata.origin, DNS_FROM_FALLBACK);
    expect_cand(&nodata, 0, "nodata.test", "127.0.0.5", 5269);
    assert_true(log_count("query _xmpp-server._tcp.nodata.test. SRV udp -> NOERROR []") >= 1);

    /* Nothing at all: not found, after both the SRV and the A/AAAA. */
    outcome none;
    memset(&none, 0, sizeof none);
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "missing.test", on_service, &none);
    run_one(&loop, &none, 5000);
    assert_int_equal(none.status, DNS_ENOTFOUND);
    assert_true(log_count("query missing.test. A") >= 1);
    finish(&loop, d);
}

static void test_errors_no_fallback(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    dns *d = new_resolver(&loop, 1000, NULL);
    outcome sf, off, tgt;
    memset(&sf, 0, sizeof sf);
    memset(&off, 0, sizeof off);
    memset(&tgt, 0, sizeof tgt);
    /* SERVFAIL on the SRV name: an error, and no A query for the domain. */
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "broken.test", on_service, &sf);
    /* Target "." : the service is not offered. */
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "off.test", on_service, &off);
    /* The only SRV target fails with SERVFAIL: that error, not "not found". */
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "tgtfail.test", on_service, &tgt);
    outcome *all[] = {&sf, &off, &tgt};
    run_until(&loop, all, 3, 8000);
    assert_int_equal(sf.status, DNS_ESERVFAIL);
    assert_int_equal(sf.n, 0);
    assert_true(log_count("query _xmpp-server._tcp.broken.test. SRV udp -> SERVFAIL") >= 1);
    assert_int_equal(log_count("query broken.test. A"), 0);
    assert_int_equal(log_count("query broken.test. AAAA"), 0);
    assert_int_equal(off.status, DNS_ENOSERVICE);
    assert_int_equal(log_count("query off.test. A"), 0);
    assert_int_equal(tgt.status, DNS_ESERVFAIL);
    assert_int_equal(log_count("query tgtfail.test. A"), 0);
    finish(&loop, d);
}

static void test_static_routes(void **state)
{
    (void)state;
    /* Through the configuration, as the daemon does it. */
    char text[512];
    snprintf(text, sizeof text,
             "[dns]\nserver = %s\ntimeout_ms = 1000\ntries = 2\n"
             "static = static.test=127.0.0.9:5999, Static2.test = plain.test:6000,"
             " static3.test=[::1], static4.test=localhost\n",
             fk.servers);
    cfg *c = cfg_new();
    assert_non_null(c);
    if (cfg_parse_buffer(c, "t.conf", text, strlen(text)) != 0) {
        cfg_print_errors(c, stderr);
        fail_msg("config rejected");
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    dns *d = dns_new_from_cfg(&loop, c);
    assert_non_null(d);
    outcome s1, s2, s3, s4, s5, a1;
    memset(&s1, 0, sizeof s1);
    memset(&s2, 0, sizeof s2);
    memset(&s3, 0, sizeof s3);
    memset(&s4, 0, sizeof s4);
    memset(&s5, 0, sizeof s5);
    memset(&a1, 0, sizeof a1);
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "static.test", on_service, &s1);
    /* The callback never runs inside the call, even with no query. */
    assert_int_equal(s1.called, 0);
    dns_resolve_service(d, DNS_SVC_PSYC, "STATIC2.test", on_service, &s2);
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "static3.test", on_service, &s3);
    dns_resolve_service(d, DNS_SVC_PSYC, "static3.test", on_service, &s4);
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "static4.test", on_service, &s5);
    dns_resolve_addrs(d, "static.test", on_addrs, &a1);
    outcome *all[] = {&s1, &s2, &s3, &s4, &s5, &a1};
    run_until(&loop, all, 6, 5000);
    assert_int_equal(s1.status, DNS_OK);
    assert_int_equal(s1.origin, DNS_FROM_STATIC);
    assert_int_equal(s1.n, 1);
    expect_cand(&s1, 0, "127.0.0.9", "127.0.0.9", 5999);
    /* A host name in a static route: its A, the route's port, no SRV. */
    assert_int_equal(s2.status, DNS_OK);
    assert_int_equal(s2.origin, DNS_FROM_STATIC);
    expect_cand(&s2, 0, "plain.test", "127.0.0.4", 6000);
    /* No port: the service's default. */
    expect_cand(&s3, 0, "::1", "::1", 5269);
    expect_cand(&s4, 0, "::1", "::1", 4404);
    /* localhost comes from /etc/hosts or c-ares itself, never the DNS. */
    assert_int_equal(s5.status, DNS_OK);
    assert_string_equal(s5.c[0].host, "localhost");
    assert_int_equal(s5.c[0].port, 5269);
    assert_int_equal(a1.status, DNS_OK);
    assert_int_equal(a1.n, 1);
    assert_string_equal(a1.a[0].ip, "127.0.0.9");
    finish(&loop, d);
    cfg_free(c);
    assert_int_equal(log_count("static"), 0);
    assert_int_equal(log_count("localhost"), 0);
}

static void test_timeout_bounded(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* 100 ms, 2 tries, one server: c-ares gives up after 100 + 200 ms. */
    dns *d = new_resolver(&loop, 100, NULL);
    outcome o, a;
    memset(&o, 0, sizeof o);
    memset(&a, 0, sizeof a);
    uint64_t t0 = now_ms();
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "slow.test", on_service, &o);
    dns_resolve_addrs(d, "slowaddr.test", on_addrs, &a);
    outcome *all[] = {&o, &a};
    run_until(&loop, all, 2, 5000);
    assert_int_equal(o.status, DNS_ETIMEOUT);
    assert_int_equal(a.status, DNS_ETIMEOUT);
    uint64_t took = o.at_ms - t0;
    if (took < 100 || took > 2000)
        fail_msg("SRV timeout after %llu ms, expected about 300", (unsigned long long)took);
    /* No fallback after a timeout either. */
    assert_int_equal(log_count("query slow.test. A"), 0);
    assert_true(log_count("query _xmpp-server._tcp.slow.test. SRV udp -> DROPPED") >= 2);
    finish(&loop, d);
}

static void test_addrs(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    dns *d = new_resolver(&loop, 1000, NULL);
    outcome dual, miss, lit4, lit6;
    memset(&dual, 0, sizeof dual);
    memset(&miss, 0, sizeof miss);
    memset(&lit4, 0, sizeof lit4);
    memset(&lit6, 0, sizeof lit6);
    dns_resolve_addrs(d, "dual.test", on_addrs, &dual);
    dns_resolve_addrs(d, "nowhere.test", on_addrs, &miss);
    dns_resolve_addrs(d, "192.0.2.1", on_addrs, &lit4);
    dns_resolve_addrs(d, "[2001:DB8::1]", on_addrs, &lit6);
    outcome *all[] = {&dual, &miss, &lit4, &lit6};
    run_until(&loop, all, 4, 5000);
    assert_int_equal(dual.status, DNS_OK);
    assert_int_equal(dual.n, 2);
    int v4 = dual.a[0].family == AF_INET ? 0 : 1;
    assert_string_equal(dual.a[v4].ip, "127.0.0.7");
    assert_string_equal(dual.a[1 - v4].ip, "::7");
    assert_int_equal(dual.a[1 - v4].family, AF_INET6);
    assert_int_equal(miss.status, DNS_ENOTFOUND);
    assert_int_equal(miss.n, 0);
    assert_int_equal(lit4.status, DNS_OK);
    assert_string_equal(lit4.a[0].ip, "192.0.2.1");
    assert_int_equal(lit6.status, DNS_OK);
    assert_string_equal(lit6.domain, "2001:db8::1");
    assert_string_equal(lit6.a[0].ip, "2001:db8::1");
    finish(&loop, d);
}

static void test_literals_and_bad_names(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    dns *d = new_resolver(&loop, 1000, NULL);
    outcome lit, bad, empty, longn;
    memset(&lit, 0, sizeof lit);
    memset(&bad, 0, sizeof bad);
    memset(&empty, 0, sizeof empty);
    memset(&longn, 0, sizeof longn);
    dns_resolve_service(d, DNS_SVC_PSYC, "127.0.0.1", on_service, &lit);
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "bad..name", on_service, &bad);
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "", on_service, &empty);
    char name[300];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, name, on_service, &longn);
    assert_int_equal(lit.called + bad.called + empty.called + longn.called, 0);
    assert_int_equal(dns_pending(d), 4);
    outcome *all[] = {&lit, &bad, &empty, &longn};
    run_until(&loop, all, 4, 5000);
    assert_int_equal(lit.status, DNS_OK);
    assert_int_equal(lit.origin, DNS_FROM_LITERAL);
    expect_cand(&lit, 0, "127.0.0.1", "127.0.0.1", 4404);
    assert_int_equal(bad.status, DNS_EBADNAME);
    assert_int_equal(empty.status, DNS_EBADNAME);
    assert_int_equal(longn.status, DNS_EBADNAME);
    assert_int_equal(log_count("bad..name"), 0);
    assert_int_equal(log_count("_tcp.127.0.0.1"), 0);
    finish(&loop, d);
}

static void test_cancel_and_close(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    dns *d = new_resolver(&loop, 100, NULL);
    /* Cancelled while the query is out: no callback, nothing leaks. */
    outcome c1, c2, keep;
    memset(&c1, 0, sizeof c1);
    memset(&c2, 0, sizeof c2);
    memset(&keep, 0, sizeof keep);
    dns_req *r1 = dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "slow.test", on_service, &c1);
    /* Cancelled after its result is known but before the callback ran. */
    dns_req *r2 = dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "127.0.0.2", on_service, &c2);
    dns_resolve_service(d, DNS_SVC_PSYC, "127.0.0.3", on_service, &keep);
    assert_int_equal(dns_pending(d), 3);
    dns_cancel(r1);
    dns_cancel(r2);
    assert_int_equal(dns_pending(d), 1);
    run_one(&loop, &keep, 2000);
    /* Give the cancelled query time to time out in the background. */
    uv_timer_t wait;
    int expired = 0;
    uv_timer_init(&loop, &wait);
    wait.data = &expired;
    uv_timer_start(&wait, on_guard, 600, 0);
    while (!expired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wait, NULL);
    assert_int_equal(c1.called, 0);
    assert_int_equal(c2.called, 0);

    /* Closing with lookups in flight: each callback once, cancelled. */
    outcome p1, p2, p3;
    memset(&p1, 0, sizeof p1);
    memset(&p2, 0, sizeof p2);
    memset(&p3, 0, sizeof p3);
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "slow.test", on_service, &p1);
    dns_resolve_addrs(d, "slowaddr.test", on_addrs, &p2);
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "inflight.test", on_service, &p3);
    dns_close(d);
    assert_int_equal(p1.called, 1);
    assert_int_equal(p1.status, DNS_ECANCELLED);
    assert_int_equal(p2.called, 1);
    assert_int_equal(p2.status, DNS_ECANCELLED);
    assert_int_equal(p3.called, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* Closing an idle resolver. */
    uv_loop_init(&loop);
    finish(&loop, new_resolver(&loop, 100, NULL));
    dns_close(NULL);
}

/* A callback that starts another lookup, and one that closes the resolver:
 * both from inside the loop, as the daemon's code will. */
typedef struct chain {
    dns *d;
    outcome first, second;
    int close_in_cb;
} chain;

static void on_chain_second(const dns_service_result *r, void *arg)
{
    chain *ch = arg;
    on_service(r, &ch->second);
    if (ch->close_in_cb)
        dns_close(ch->d);
}

static void on_chain_first(const dns_service_result *r, void *arg)
{
    chain *ch = arg;
    on_service(r, &ch->first);
    assert_non_null(dns_resolve_service(ch->d, DNS_SVC_PSYC, "plain.test", on_chain_second, ch));
}

static void test_reentrancy(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    chain ch;
    memset(&ch, 0, sizeof ch);
    ch.d = new_resolver(&loop, 1000, NULL);
    ch.close_in_cb = 1;
    dns_resolve_service(ch.d, DNS_SVC_XMPP_SERVER, "psyc1.test", on_chain_first, &ch);
    outcome *all[] = {&ch.first, &ch.second};
    run_until(&loop, all, 2, 5000);
    /* psyc1.test has no _xmpp-server SRV: its A, port 5269. */
    assert_int_equal(ch.first.status, DNS_OK);
    expect_cand(&ch.first, 0, "psyc1.test", "127.0.0.3", 5269);
    assert_int_equal(ch.second.status, DNS_OK);
    expect_cand(&ch.second, 0, "plain.test", "127.0.0.4", 4404);
    /* The resolver was closed inside the last callback. */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_no_search_domains(void **state)
{
    (void)state;
    /* A search list from the environment (or resolv.conf) must not turn a
     * failed lookup into queries for other names. */
    setenv("LOCALDOMAIN", "search.invalid", 1);
    uv_loop_t loop;
    uv_loop_init(&loop);
    dns *d = new_resolver(&loop, 1000, NULL);
    unsetenv("LOCALDOMAIN");
    outcome o;
    memset(&o, 0, sizeof o);
    dns_resolve_service(d, DNS_SVC_XMPP_SERVER, "gone.test", on_service, &o);
    run_one(&loop, &o, 5000);
    assert_int_equal(o.status, DNS_ENOTFOUND);
    finish(&loop, d);
    assert_true(log_count("query gone.test. A") >= 1);
    assert_int_equal(log_count("search.invalid"), 0);
}

static void test_server_config(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    /* IPv6 and default-port forms reach c-ares in a form it accepts. */
    const char *text = "[dns]\nserver = [::1]:5353, 127.0.0.1, ::1\n";
    cfg *c = cfg_new();
    assert_int_equal(cfg_parse_buffer(c, "t.conf", text, strlen(text)), 0);
    dns *d = dns_new_from_cfg(&loop, c);
    assert_non_null(d);
    finish(&loop, d);
    cfg_free(c);
    /* A list c-ares refuses is an error at start, not a silent default. */
    uv_loop_init(&loop);
    dns_options o;
    memset(&o, 0, sizeof o);
    o.servers = "not an address";
    assert_null(dns_new(&loop, &o));
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_srv_order_and_targets),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_errors_no_fallback),
        cmocka_unit_test(test_static_routes),
        cmocka_unit_test(test_timeout_bounded),
        cmocka_unit_test(test_addrs),
        cmocka_unit_test(test_literals_and_bad_names),
        cmocka_unit_test(test_cancel_and_close),
        cmocka_unit_test(test_reentrancy),
        cmocka_unit_test(test_no_search_domains),
        cmocka_unit_test(test_server_config),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
