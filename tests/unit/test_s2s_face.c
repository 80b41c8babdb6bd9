/*
 * test_s2s_face.c: two S2S faces (gateway/s2s_face.c, s2s_conn.c) in one
 * process and one libuv loop, federating over real loopback sockets:
 * a.test and b.test, each with its own dialback secret and listener,
 * finding each other through [dns] static routes (no DNS server is ever
 * asked), with STARTTLS required in both directions.
 *
 *   alice@a.test -> echo@b.test        a opens a stream to b, dialback;
 *                                      b verifies a's key by asking a
 *   echo@b.test -> alice@a.test        b's answer on b's own stream to a
 *                                      (b's key verified over a's stream)
 *   a answers <service-unavailable/>   (alice@a.test is no service) and
 *   b drops that error                 (errors are never answered)
 *
 * Then a stanza to a domain with a static route to a closed port bounces
 * with <remote-server-not-found/>. A second pair of faces with
 * certificates from a common CA authenticates by SASL EXTERNAL (XEP-0178)
 * in both directions instead of dialback. Both faces stop; the loop must run dry
 * (every handle closed; LSan checks the memory in the ASan build).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <uv.h>

#include "gateway/config.h"
#include "gateway/dns.h"
#include "gateway/log.h"
#include "gateway/s2s_face.h"
#include "gateway/tls.h"
#include "xmpp/xml.h"

static char tmpdir[64];
static FILE *log_file;
static char log_path[128];

/* A port nobody listens on right now (bind(0), then closed). */
static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static int log_has(const char *needle)
{
    fflush(log_file);
    FILE *f = fopen(log_path, "r");
    if (!f)
        return 0;
    char line[2048];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

typedef struct side {
    cfg *c;
    dns *d;
    s2s_face *f;
} side;

static void side_start(side *s, uv_loop_t *loop, tls_ctx *tls, const char *domain, uint16_t port,
                       const char *statics, const char *tls_section)
{
    char text[2048];
    snprintf(text, sizeof text,
             "[gateway]\nhost = %s\nstate_dir = %s/%s\n"
             "[s2s]\nlisten = 127.0.0.1:%u\ndomain = %s\ntls = required\nping_interval = 0\n"
             "give_up = 5\n"
             "[dns]\nserver = 127.0.0.1:9\nstatic = %s\ntimeout_ms = 200\ntries = 1\n%s",
             domain, tmpdir, domain, (unsigned)port, domain, statics, tls_section ? tls_section : "");
    s->c = cfg_new();
    assert_non_null(s->c);
    assert_int_equal(cfg_parse_buffer(s->c, "<test>", text, strlen(text)), 0);
    s->d = dns_new_from_cfg(loop, s->c);
    assert_non_null(s->d);
    assert_int_equal(s2s_face_start(loop, s->c, s->d, tls, &s->f), 0);
    assert_non_null(s->f);
}

static void side_stop(side *s)
{
    s2s_face_stop(s->f, "test over");
    dns_close(s->d);
}

static void side_free(side *s)
{
    s2s_face_free(s->f);
    cfg_free(s->c);
}

static xml_node *message(const char *from, const char *to, const char *body)
{
    xml_node *m = xml_elem_new("message", NULL);
    assert_non_null(m);
    assert_int_equal(xml_attr_set(m, "from", from), 0);
    assert_int_equal(xml_attr_set(m, "to", to), 0);
    assert_int_equal(xml_attr_set(m, "type", "chat"), 0);
    xml_node *b = xml_elem_add(m, "body", NULL);
    assert_non_null(b);
    assert_non_null(xml_text_add(b, body, strlen(body)));
    return m;
}

/* Runs the loop until every needle is in the log, or 15 s pass. */
typedef struct waiter {
    const char *const *needles;
    int done;
    uv_timer_t t;
    uint64_t end;
} waiter;

static void wait_tick(uv_timer_t *t)
{
    waiter *w = t->data;
    int all = 1;
    for (const char *const *n = w->needles; *n; n++)
        all = all && log_has(*n);
    if (all || uv_now(t->loop) > w->end) {
        w->done = all;
        uv_timer_stop(t);
        uv_stop(t->loop);
    }
}

static int run_until(uv_loop_t *loop, const char *const *needles)
{
    waiter w = {.needles = needles};
    uv_timer_init(loop, &w.t);
    w.t.data = &w;
    w.end = uv_now(loop) + 15000;
    uv_timer_start(&w.t, wait_tick, 50, 50);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&w.t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return w.done;
}

static void test_two_faces(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);

    char crt[128], key[128], err[256];
    snprintf(crt, sizeof crt, "%s/t.crt", tmpdir);
    snprintf(key, sizeof key, "%s/t.key", tmpdir);
    assert_int_equal(tls_cert_generate_self_signed("a.test", crt, key, err, sizeof err), 0);
    tls_ctx *tls = NULL;
    tls_ctx_params tp = {.certificate = crt, .key = key, .ca_file = crt};
    assert_int_equal(tls_ctx_new(&tp, &tls, err, sizeof err), 0);

    uint16_t pa = free_port(), pb = free_port(), dead = free_port();
    char sa[256], sb[256];
    snprintf(sa, sizeof sa, "b.test=127.0.0.1:%u, nowhere.test=127.0.0.1:%u", (unsigned)pb,
             (unsigned)dead);
    snprintf(sb, sizeof sb, "a.test=127.0.0.1:%u", (unsigned)pa);
    side a, b;
    side_start(&a, &loop, tls, "a.test", pa, sa, NULL);
    side_start(&b, &loop, tls, "b.test", pb, sb, NULL);

    assert_int_equal(s2s_face_send(a.f, message("alice@a.test/r", "echo@b.test", "hi")), 0);
    const char *round_trip[] = {
        "answered <message/> from alice@a.test/r to echo@b.test",
        "refused <message/> from echo@b.test to alice@a.test/r with <service-unavailable/>",
        "s2s-in: a.test -> b.test authenticated (dialback, TLSv1.3)",
        "s2s-in: b.test -> a.test authenticated (dialback, TLSv1.3)",
        "s2s-out: a.test -> b.test authenticated (dialback, TLSv1.3)",
        "s2s-out: b.test -> a.test authenticated (dialback, TLSv1.3)",
        NULL};
    assert_true(run_until(&loop, round_trip));

    /* A static route to a closed port: connect fails, the stanza returns
     * to its sender with <remote-server-not-found/>. */
    assert_int_equal(s2s_face_send(a.f, message("alice@a.test/r", "bob@nowhere.test", "x")), 0);
    const char *bounce[] = {"bounced <message/> from alice@a.test/r to bob@nowhere.test with "
                            "<remote-server-not-found/>",
                            NULL};
    assert_true(run_until(&loop, bounce));
    /* Not our domain in 'from': refused, never relayed. */
    assert_int_equal(s2s_face_send(a.f, message("mallory@evil.test", "echo@b.test", "x")), -1);

    side_stop(&a);
    side_stop(&b);
    tls_ctx_free(tls);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(s2s_face_conns(a.f) + s2s_face_conns(b.f), 0);
    assert_int_equal(s2s_face_links(a.f) + s2s_face_links(b.f), 0);
    assert_int_equal(uv_loop_close(&loop), 0); /* every handle closed */
    side_free(&a);
    side_free(&b);
}

/* openssl(1) makes a CA and a certificate it issued for each domain. */
static void make_ca_certs(void)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && exec >openssl.log 2>&1 && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj '/CN=psycgate test CA' -keyout ca.key -out ca.crt "
             "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign && "
             "for d in a.test b.test; do "
             "printf 'subjectAltName=DNS:%%s\\nextendedKeyUsage=serverAuth,clientAuth\\n' $d >$d.ext && "
             "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=$d "
             "-keyout $d.key -out $d.csr && "
             "openssl x509 -req -in $d.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
             "-extfile $d.ext -out $d.crt || exit 1; done",
             tmpdir);
    assert_int_equal(system(cmd), 0);
}

static tls_ctx *ctx_for(const char *domain)
{
    char crt[128], key[128], ca[128], err[256];
    snprintf(crt, sizeof crt, "%s/%s.crt", tmpdir, domain);
    snprintf(key, sizeof key, "%s/%s.key", tmpdir, domain);
    snprintf(ca, sizeof ca, "%s/ca.crt", tmpdir);
    tls_ctx *t = NULL;
    tls_ctx_params tp = {.certificate = crt, .key = key, .ca_file = ca};
    assert_int_equal(tls_ctx_new(&tp, &t, err, sizeof err), 0);
    return t;
}

/* XEP-0178: certificates from a CA both trust: SASL EXTERNAL both ways,
 * no dialback at all. */
static void test_sasl_external(void **state)
{
    (void)state;
    make_ca_certs();
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    tls_ctx *ta = ctx_for("a.test"), *tb = ctx_for("b.test");
    uint16_t pa = free_port(), pb = free_port();
    char sa[128], sb[128], tlsa[512], tlsb[512];
    snprintf(sa, sizeof sa, "b.test=127.0.0.1:%u", (unsigned)pb);
    snprintf(sb, sizeof sb, "a.test=127.0.0.1:%u", (unsigned)pa);
    snprintf(tlsa, sizeof tlsa, "[tls]\ncertificate = %s/a.test.crt\nkey = %s/a.test.key\nca_file = %s/ca.crt\n",
             tmpdir, tmpdir, tmpdir);
    snprintf(tlsb, sizeof tlsb, "[tls]\ncertificate = %s/b.test.crt\nkey = %s/b.test.key\nca_file = %s/ca.crt\n",
             tmpdir, tmpdir, tmpdir);
    side a, b;
    side_start(&a, &loop, ta, "a.test", pa, sa, tlsa);
    side_start(&b, &loop, tb, "b.test", pb, sb, tlsb);
    assert_int_equal(s2s_face_send(a.f, message("carol@a.test/r", "echo@b.test", "ext")), 0);
    const char *done[] = {
        "serving a.test over S2S (SASL EXTERNAL with our certificate, else dialback)",
        "answered <message/> from carol@a.test/r to echo@b.test",
        "refused <message/> from echo@b.test to carol@a.test/r with <service-unavailable/>",
        "s2s-out: a.test -> b.test authenticated (SASL EXTERNAL, TLSv1.3)",
        "s2s-in: a.test -> b.test authenticated (SASL EXTERNAL, TLSv1.3)",
        "s2s-out: b.test -> a.test authenticated (SASL EXTERNAL, TLSv1.3)",
        "s2s-in: b.test -> a.test authenticated (SASL EXTERNAL, TLSv1.3)",
        NULL};
    assert_true(run_until(&loop, done));
    side_stop(&a);
    side_stop(&b);
    tls_ctx_free(ta);
    tls_ctx_free(tb);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    side_free(&a);
    side_free(&b);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/psycgate-face-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(log_path, sizeof log_path, "%s/log", tmpdir);
    log_file = fopen(log_path, "w");
    if (!log_file)
        return -1;
    log_set_stream(log_file);
    log_set_level(LOG_LEVEL_DEBUG);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    log_set_stream(NULL);
    fclose(log_file);
    if (getenv("S2S_TEST_DUMP")) {
        char cmd[200];
        snprintf(cmd, sizeof cmd, "cat '%s'", log_path);
        if (system(cmd) != 0)
            return -1;
    }
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_faces),
        cmocka_unit_test(test_sasl_external),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
