/* test_tls.c: the TLS engine (gateway/tls.c) and our own certificate
 * (gateway/tls_cert.c), without sockets: a client and a server tls_conn
 * pump bytes into each other in memory.
 *
 * Every key and certificate is made here with the OpenSSL API in a
 * temporary directory (a test CA and leaves signed by it), so no private
 * key is committed. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gateway/config.h"
#include "gateway/log.h"
#include "gateway/tls.h"

/* ------------------------------------------------------------------ */
/* Fixtures: a test CA and certificates signed by it                  */

static char tmpdir[64];
static EVP_PKEY *ca_key;
static X509 *ca_cert;
static char ca_path[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void write_pem_x509(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

static void write_pem_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A certificate for `cn` with subjectAltName `san` (NULL: none), signed by
 * the test CA (or by itself when self_signed), valid from `from_days` to
 * `to_days` relative to now. Writes NAME.crt and NAME.key in tmpdir. */
static void make_cert(const char *name, const char *cn, const char *san, int self_signed, long from_days,
                      long to_days, char *cert_path, char *key_path)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    X509 *x = X509_new();
    assert_non_null(x);
    static long serial = 1000;
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
    X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"psycgate tests", -1, -1, 0);
    if (cn)
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509 *issuer = self_signed ? x : ca_cert;
    X509_set_issuer_name(x, X509_get_subject_name(issuer));
    add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth");
    if (san)
        add_ext(x, issuer, NID_subject_alt_name, san);
    assert_true(X509_sign(x, self_signed ? k : ca_key, EVP_sha256()) > 0);
    snprintf(cert_path, 256, "%s/%s.crt", tmpdir, name);
    snprintf(key_path, 256, "%s/%s.key", tmpdir, name);
    write_pem_x509(cert_path, x);
    write_pem_key(key_path, k);
    X509_free(x);
    EVP_PKEY_free(k);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_tls_XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    /* The test CA. */
    ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ca_cert = X509_new();
    if (!ca_key || !ca_cert)
        return -1;
    X509_set_version(ca_cert, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(ca_cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(ca_cert), -86400);
    X509_gmtime_adj(X509_getm_notAfter(ca_cert), 30L * 86400);
    X509_set_pubkey(ca_cert, ca_key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(ca_cert), "CN", MBSTRING_ASC,
                               (const unsigned char *)"psycgate test CA", -1, -1, 0);
    X509_set_issuer_name(ca_cert, X509_get_subject_name(ca_cert));
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, ca_cert, ca_cert, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(ca_cert, e, -1);
    X509_EXTENSION_free(e);
    e = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
    X509_add_ext(ca_cert, e, -1);
    X509_EXTENSION_free(e);
    if (X509_sign(ca_cert, ca_key, EVP_sha256()) <= 0)
        return -1;
    snprintf(ca_path, sizeof ca_path, "%s/ca.crt", tmpdir);
    FILE *f = fopen(ca_path, "w");
    if (!f)
        return -1;
    PEM_write_X509(f, ca_cert);
    fclose(f);
    /* Logs of tls_setup_from_config go nowhere unless a test looks. */
    log_set_level(LOG_LEVEL_ERROR);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Pumping two connections into each other                            */

typedef struct pair {
    tls_ctx *sctx, *cctx;
    tls_conn *s, *c;
    int s_done, c_done; /* feed returned 1 */
    int s_rc, c_rc;     /* last negative feed result */
} pair;

static tls_ctx *ctx_for(const char *cert, const char *key, const char *ca)
{
    tls_ctx_params p = {.certificate = cert, .key = key, .ca_file = ca};
    tls_ctx *t = NULL;
    char err[512];
    if (tls_ctx_new(&p, &t, err, sizeof err) != 0)
        fail_msg("tls_ctx_new: %s", err);
    return t;
}

/* Moves output from `from` into `to`, in chunks of at most `chunk` bytes.
 * Returns the number of bytes moved. */
static size_t move(tls_conn *from, tls_conn *to, size_t chunk, int *done, int *rc)
{
    psyc_buf b;
    psyc_buf_init(&b);
    assert_int_equal(tls_conn_take_output(from, &b), TLS_OK);
    size_t moved = b.len;
    for (size_t off = 0; off < b.len; off += chunk) {
        size_t n = b.len - off < chunk ? b.len - off : chunk;
        int r = tls_conn_feed(to, b.data + off, n);
        if (r == 1) {
            assert_int_equal(*done, 0); /* reported once */
            *done = 1;
        } else if (r < 0) {
            *rc = r;
            break;
        }
    }
    psyc_buf_free(&b);
    return moved;
}

static void pump(pair *p, size_t chunk)
{
    for (int i = 0; i < 100; i++) {
        size_t a = move(p->c, p->s, chunk, &p->s_done, &p->s_rc);
        size_t b = move(p->s, p->c, chunk, &p->c_done, &p->c_rc);
        if (a == 0 && b == 0)
            return;
    }
    fail_msg("pump did not settle");
}

static void pair_open(pair *p, const char *scert, const char *skey, const char *ccert, const char *ckey,
                      const char *host)
{
    memset(p, 0, sizeof *p);
    p->sctx = ctx_for(scert, skey, ca_path);
    p->cctx = ctx_for(ccert, ckey, ca_path);
    p->s = tls_conn_new_server(p->sctx);
    p->c = tls_conn_new_client(p->cctx, host);
    assert_non_null(p->s);
    assert_non_null(p->c);
    assert_true(tls_conn_is_server(p->s));
    assert_false(tls_conn_is_server(p->c));
    assert_true(tls_conn_output_pending(p->c) > 0); /* the ClientHello */
    pump(p, 1 << 20);
}

static void pair_close(pair *p)
{
    tls_conn_free(p->s);
    tls_conn_free(p->c);
    tls_ctx_free(p->sctx);
    tls_ctx_free(p->cctx);
}

/* Reads everything available from c into a new buffer. */
static void read_all(tls_conn *c, psyc_buf *out)
{
    char buf[4096];
    size_t got;
    while (tls_conn_read(c, buf, sizeof buf, &got) == TLS_OK && got)
        assert_int_equal(psyc_buf_append(out, buf, got), 0);
}

/* ------------------------------------------------------------------ */
/* Tests                                                              */

static void test_handshake_and_data(void **state)
{
    (void)state;
    char sc[256], sk[256], cc[256], ck[256];
    make_cert("server", "gw.example.org", "DNS:gw.example.org", 0, -1, 10, sc, sk);
    make_cert("client", "peer.example.net", "DNS:peer.example.net", 0, -1, 10, cc, ck);
    pair p;
    pair_open(&p, sc, sk, cc, ck, "gw.example.org");
    assert_int_equal(p.s_rc, 0);
    assert_int_equal(p.c_rc, 0);
    assert_true(p.s_done && p.c_done);
    assert_true(tls_conn_handshake_done(p.s));
    assert_true(tls_conn_handshake_done(p.c));
    assert_string_equal(tls_conn_version(p.s), "TLSv1.3");
    assert_string_equal(tls_conn_cipher(p.s), tls_conn_cipher(p.c));
    assert_string_equal(tls_conn_sni(p.s), "gw.example.org");
    assert_null(tls_conn_sni(p.c));

    /* Both sides verified each other (mutual, as S2S and PSYC peers do). */
    char buf[256];
    assert_true(tls_conn_peer_verified(p.c));
    assert_true(tls_conn_peer_verified(p.s));
    assert_string_equal(tls_conn_peer_verify_error(p.s, buf, sizeof buf), "");
    assert_true(tls_conn_peer_matches(p.s, "peer.example.net"));
    assert_true(tls_conn_peer_matches(p.c, "gw.example.org"));
    assert_non_null(strstr(tls_conn_peer_subject(p.s, buf, sizeof buf), "CN=peer.example.net"));

    /* Data both ways, including 1 MiB (many records). */
    assert_int_equal(tls_conn_write(p.c, ".\n", 2), TLS_OK);
    pump(&p, 1 << 20);
    psyc_buf got;
    psyc_buf_init(&got);
    read_all(p.s, &got);
    assert_int_equal(got.len, 2);
    assert_memory_equal(got.data, ".\n", 2);
    psyc_buf_reset(&got);

    size_t big = 1 << 20;
    char *data = malloc(big);
    assert_non_null(data);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)(i * 7 + (i >> 11));
    assert_int_equal(tls_conn_write(p.s, data, big), TLS_OK);
    /* Reads interleaved with moves, as a socket would deliver them. */
    for (int i = 0; i < 1000 && got.len < big; i++) {
        move(p.s, p.c, 1000, &p.c_done, &p.c_rc);
        read_all(p.c, &got);
        move(p.c, p.s, 1000, &p.s_done, &p.s_rc);
    }
    assert_int_equal(got.len, big);
    assert_memory_equal(got.data, data, big);
    free(data);

    /* close_notify: the reader sees TLS_CLOSED, not an error. */
    tls_conn_close(p.c);
    assert_int_equal(tls_conn_write(p.c, "x", 1), TLS_ERR);
    pump(&p, 1 << 20);
    size_t n;
    assert_int_equal(tls_conn_read(p.s, buf, sizeof buf, &n), TLS_CLOSED);
    assert_int_equal(n, 0);
    assert_false(tls_conn_failed(p.s));
    psyc_buf_free(&got);
    pair_close(&p);
}

static void test_write_before_handshake_and_small_chunks(void **state)
{
    (void)state;
    char sc[256], sk[256];
    make_cert("server2", "gw.example.org", "DNS:gw.example.org", 0, -1, 10, sc, sk);
    pair p;
    memset(&p, 0, sizeof p);
    p.sctx = ctx_for(sc, sk, ca_path);
    p.cctx = ctx_for(NULL, NULL, ca_path); /* a client without a certificate */
    assert_false(tls_ctx_can_serve(p.cctx));
    assert_true(tls_ctx_can_serve(p.sctx));
    p.s = tls_conn_new_server(p.sctx);
    p.c = tls_conn_new_client(p.cctx, "gw.example.org.");
    /* Queued until the handshake is done (DEPS.md §3 pitfall 4). */
    assert_int_equal(tls_conn_write(p.c, "|\n", 2), TLS_OK);
    assert_int_equal(tls_conn_write(p.s, ".\n", 2), TLS_OK);
    assert_false(tls_conn_handshake_done(p.c));
    assert_string_equal(tls_conn_version(p.c), "-");
    /* One byte at a time: the engine must resume anywhere. */
    pump(&p, 1);
    assert_true(p.s_done && p.c_done);
    psyc_buf a, b;
    psyc_buf_init(&a);
    psyc_buf_init(&b);
    read_all(p.s, &a);
    read_all(p.c, &b);
    assert_int_equal(a.len, 2);
    assert_memory_equal(a.data, "|\n", 2);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, ".\n", 2);
    psyc_buf_free(&a);
    psyc_buf_free(&b);

    /* The server saw no client certificate: nothing verified, nothing matches. */
    char buf[128];
    assert_false(tls_conn_peer_has_cert(p.s));
    assert_false(tls_conn_peer_verified(p.s));
    assert_false(tls_conn_peer_matches(p.s, "gw.example.org"));
    assert_string_equal(tls_conn_peer_verify_error(p.s, buf, sizeof buf), "no certificate");
    assert_string_equal(tls_conn_peer_subject(p.s, buf, sizeof buf), "-");
    char **names = NULL;
    assert_int_equal(tls_conn_peer_names(p.s, &names), 0);
    assert_null(names);
    /* The client checked the trailing-dot name against the certificate. */
    assert_true(tls_conn_peer_verified(p.c));
    pair_close(&p);
}

/* RFC 6125 §6.4: which names a certificate proves. */
static void test_name_checks(void **state)
{
    (void)state;
    char sc[256], sk[256], cc[256], ck[256];
    make_cert("client3", "c.example.net", "DNS:c.example.net", 0, -1, 10, cc, ck);

    /* dNSName SANs, with a wildcard; the CN is ignored because SANs exist. */
    make_cert("names", "cn-only.example.org",
              "DNS:gw.example.org,DNS:*.wild.example.org,DNS:f*.partial.example.org,IP:192.0.2.1", 0,
              -1, 10, sc, sk);
    pair p;
    pair_open(&p, sc, sk, cc, ck, NULL);
    assert_true(tls_conn_peer_verified(p.c));
    assert_true(tls_conn_peer_matches(p.c, "gw.example.org"));
    assert_true(tls_conn_peer_matches(p.c, "GW.Example.ORG"));
    assert_true(tls_conn_peer_matches(p.c, "gw.example.org."));
    assert_true(tls_conn_peer_matches(p.c, "a.wild.example.org"));
    assert_false(tls_conn_peer_matches(p.c, "wild.example.org"));     /* * is one label, not zero */
    assert_false(tls_conn_peer_matches(p.c, "a.b.wild.example.org")); /* nor two */
    assert_false(tls_conn_peer_matches(p.c, "foo.partial.example.org")); /* no partial wildcards */
    assert_false(tls_conn_peer_matches(p.c, "cn-only.example.org"));  /* CN ignored with SANs */
    assert_false(tls_conn_peer_matches(p.c, "example.org"));
    assert_false(tls_conn_peer_matches(p.c, "gw.example.org.evil"));
    assert_false(tls_conn_peer_matches(p.c, ""));
    assert_false(tls_conn_peer_matches(p.c, NULL));
    assert_false(tls_conn_peer_matches(p.c, "."));
    char **names = NULL;
    size_t n = tls_conn_peer_names(p.c, &names);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "gw.example.org");
    assert_string_equal(names[1], "*.wild.example.org");
    assert_string_equal(names[2], "f*.partial.example.org");
    assert_null(names[3]);
    tls_names_free(names);
    pair_close(&p);

    /* No SAN at all: the CN counts (§6.4.4). */
    make_cert("cnonly", "cn.example.org", NULL, 0, -1, 10, sc, sk);
    pair_open(&p, sc, sk, cc, ck, "cn.example.org");
    assert_true(tls_conn_peer_verified(p.c));
    assert_true(tls_conn_peer_matches(p.c, "cn.example.org"));
    assert_false(tls_conn_peer_matches(p.c, "other.example.org"));
    n = tls_conn_peer_names(p.c, &names);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "cn.example.org");
    tls_names_free(names);
    pair_close(&p);

    /* A wildcard in a label other than the leftmost one never matches. */
    make_cert("midwild", "x", "DNS:a.*.example.org", 0, -1, 10, sc, sk);
    pair_open(&p, sc, sk, cc, ck, NULL);
    assert_false(tls_conn_peer_matches(p.c, "a.b.example.org"));
    pair_close(&p);

    /* Only a wildcard over a one-label suffix: never. */
    make_cert("tldwild", "x", "DNS:*.org", 0, -1, 10, sc, sk);
    pair_open(&p, sc, sk, cc, ck, NULL);
    assert_false(tls_conn_peer_matches(p.c, "example.org"));
    pair_close(&p);
}

/* The client expects one host, the certificate names another: the
 * handshake completes (dialback may still follow), but it is not verified. */
static void test_wrong_name(void **state)
{
    (void)state;
    char sc[256], sk[256], cc[256], ck[256];
    make_cert("wrong-s", "gw.example.org", "DNS:gw.example.org", 0, -1, 10, sc, sk);
    make_cert("wrong-c", "c.example.net", "DNS:c.example.net", 0, -1, 10, cc, ck);
    pair p;
    pair_open(&p, sc, sk, cc, ck, "other.example.org");
    assert_true(p.c_done);
    assert_false(tls_conn_peer_verified(p.c));
    char buf[160];
    assert_non_null(strstr(tls_conn_peer_verify_error(p.c, buf, sizeof buf), "does not match other.example.org"));
    assert_false(tls_conn_peer_matches(p.c, "other.example.org"));
    /* The chain itself is fine: the name it does carry matches. */
    assert_true(tls_conn_peer_matches(p.c, "gw.example.org"));
    pair_close(&p);

    /* IP literal as the expected host: checked against IP SANs, no SNI. */
    make_cert("ip-s", "x", "IP:192.0.2.7", 0, -1, 10, sc, sk);
    pair_open(&p, sc, sk, cc, ck, "192.0.2.7");
    assert_true(tls_conn_peer_verified(p.c));
    assert_null(tls_conn_sni(p.s));
    pair_close(&p);
    pair_open(&p, sc, sk, cc, ck, "192.0.2.8");
    assert_false(tls_conn_peer_verified(p.c));
    pair_close(&p);
}

/* Certificates that do not chain to the CA, or are out of date. */
static void test_untrusted(void **state)
{
    (void)state;
    char sc[256], sk[256], cc[256], ck[256], buf[160];
    make_cert("ok-c", "c.example.net", "DNS:c.example.net", 0, -1, 10, cc, ck);

    make_cert("selfsigned", "gw.example.org", "DNS:gw.example.org", 1, -1, 10, sc, sk);
    pair p;
    pair_open(&p, sc, sk, cc, ck, "gw.example.org");
    assert_true(p.c_done && p.s_done); /* never fails the handshake */
    assert_true(tls_conn_peer_has_cert(p.c));
    assert_false(tls_conn_peer_verified(p.c));
    assert_false(tls_conn_peer_matches(p.c, "gw.example.org"));
    assert_non_null(strstr(tls_conn_peer_verify_error(p.c, buf, sizeof buf), "self-signed"));
    char **names = NULL;
    assert_int_equal(tls_conn_peer_names(p.c, &names), 0);
    pair_close(&p);

    make_cert("expired", "gw.example.org", "DNS:gw.example.org", 0, -10, -1, sc, sk);
    pair_open(&p, sc, sk, cc, ck, "gw.example.org");
    assert_false(tls_conn_peer_verified(p.c));
    assert_false(tls_conn_peer_matches(p.c, "gw.example.org"));
    assert_non_null(strstr(tls_conn_peer_verify_error(p.c, buf, sizeof buf), "expired"));
    pair_close(&p);

    make_cert("future", "gw.example.org", "DNS:gw.example.org", 0, 2, 10, sc, sk);
    pair_open(&p, sc, sk, cc, ck, "gw.example.org");
    assert_false(tls_conn_peer_verified(p.c));
    assert_non_null(strstr(tls_conn_peer_verify_error(p.c, buf, sizeof buf), "not yet valid"));
    pair_close(&p);
}

/* Garbage gives a handshake error with a reason, never a crash; a failed
 * session refuses everything afterwards. */
static void test_garbage(void **state)
{
    (void)state;
    char sc[256], sk[256];
    make_cert("garbage-s", "gw.example.org", "DNS:gw.example.org", 0, -1, 10, sc, sk);
    tls_ctx *t = ctx_for(sc, sk, ca_path);

    static const struct {
        const char *data;
        size_t len;
    } inputs[] = {
        {"\x16\x03\x01\x00\x05hello", 10}, /* what test_psyc_listener.py sends */
        {"GET / HTTP/1.0\r\n\r\n", 18},
        {".\n:_source\tpsyc://a/\n.\n", 24},
        {"\x16\x03\x01\x00\xff", 5}, /* a record header announcing more, then nothing */
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        tls_conn *s = tls_conn_new_server(t);
        assert_non_null(s);
        int rc = tls_conn_feed(s, inputs[i].data, inputs[i].len);
        if (i == 3) {
            /* An incomplete record is not an error yet: it waits. */
            assert_int_equal(rc, TLS_OK);
            assert_false(tls_conn_failed(s));
            tls_conn_free(s);
            continue;
        }
        if (rc != TLS_ERR)
            fail_msg("input %zu: feed gave %d", i, rc);
        assert_true(tls_conn_failed(s));
        assert_non_null(strstr(tls_conn_error(s), "TLS handshake failed: "));
        /* An alert for the peer is waiting. */
        psyc_buf out;
        psyc_buf_init(&out);
        assert_int_equal(tls_conn_take_output(s, &out), TLS_OK);
        assert_true(out.len == 0 || (unsigned char)out.data[0] == 0x15);
        psyc_buf_free(&out);
        size_t got;
        char buf[16];
        assert_int_equal(tls_conn_feed(s, "x", 1), TLS_ERR);
        assert_int_equal(tls_conn_read(s, buf, sizeof buf, &got), TLS_ERR);
        assert_int_equal(tls_conn_write(s, "x", 1), TLS_ERR);
        tls_conn_close(s); /* no SSL_shutdown after a fatal error */
        tls_conn_free(s);
    }

    /* Pseudo-random bytes in both directions, after a valid ClientHello. */
    uint32_t seed = 12345;
    for (int round = 0; round < 50; round++) {
        tls_conn *s = tls_conn_new_server(t);
        tls_conn *c = tls_conn_new_client(t, "gw.example.org");
        psyc_buf hello;
        psyc_buf_init(&hello);
        tls_conn_take_output(c, &hello);
        char junk[512];
        size_t n = 1 + (size_t)(round * 37 % (int)sizeof junk);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            junk[i] = (char)(seed >> 16);
        }
        if (round % 2) {
            /* A valid hello, then junk. */
            tls_conn_feed(s, hello.data, hello.len);
            tls_conn_feed(s, junk, n);
        } else {
            /* Junk where the server's answer should be. */
            tls_conn_feed(c, junk, n);
        }
        char buf[64];
        size_t got;
        tls_conn_read(s, buf, sizeof buf, &got);
        tls_conn_read(c, buf, sizeof buf, &got);
        psyc_buf_free(&hello);
        tls_conn_free(s);
        tls_conn_free(c);
    }
    tls_ctx_free(t);
}

static void test_ctx_errors(void **state)
{
    (void)state;
    char sc[256], sk[256], oc[256], ok[256], err[512];
    make_cert("ctx-a", "a.example.org", "DNS:a.example.org", 0, -1, 10, sc, sk);
    make_cert("ctx-b", "b.example.org", "DNS:b.example.org", 0, -1, 10, oc, ok);
    tls_ctx *t = NULL;
    tls_ctx_params p = {.certificate = "/nonexistent/x.crt", .key = sk};
    assert_int_equal(tls_ctx_new(&p, &t, err, sizeof err), -1);
    assert_null(t);
    assert_non_null(strstr(err, "cannot load certificate /nonexistent/x.crt"));
    p = (tls_ctx_params){.certificate = sc, .key = ok}; /* another certificate's key */
    assert_int_equal(tls_ctx_new(&p, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "does not match"));
    p = (tls_ctx_params){.certificate = sc, .key = sk, .ca_file = "/nonexistent/ca.pem"};
    assert_int_equal(tls_ctx_new(&p, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot load CA file"));
    /* The system store. */
    p = (tls_ctx_params){.certificate = sc, .key = sk, .ca_file = ""};
    assert_int_equal(tls_ctx_new(&p, &t, err, sizeof err), 0);
    tls_ctx_free(t);
    tls_ctx_free(NULL);
    tls_conn_free(NULL);
    assert_null(tls_conn_new_server(NULL));
}

/* Self-signed generation: files, modes, SAN; usable for a verified session
 * by a peer that pins the certificate. */
static void test_self_signed(void **state)
{
    (void)state;
    char cert[256], key[256], err[512];
    snprintf(cert, sizeof cert, "%s/gen/deeper/tls/psycgate.crt", tmpdir);
    snprintf(key, sizeof key, "%s/gen/deeper/tls/psycgate.key", tmpdir);
    assert_int_equal(tls_cert_generate_self_signed("gw.example.org", cert, key, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(cert, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/gen/deeper/tls", tmpdir);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    FILE *f = fopen(cert, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    assert_int_equal(X509_check_host(x, "gw.example.org", 0, 0, NULL), 1);
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(sans);
    assert_int_equal(sk_GENERAL_NAME_num(sans), 1);
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, 0);
    assert_int_equal(g->type, GEN_DNS);
    assert_string_equal((const char *)ASN1_STRING_get0_data(g->d.dNSName), "gw.example.org");
    GENERAL_NAMES_free(sans);
    assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0), 1);
    assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0), 1);
    assert_int_equal(X509_cmp_current_time(X509_get0_notAfter(x)), 1);
    X509_free(x);
    /* No temporary file is left behind. */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", key, (long)getpid());
    assert_int_not_equal(stat(tmp, &st), 0);

    /* A peer that trusts exactly this certificate verifies the session. */
    pair p;
    memset(&p, 0, sizeof p);
    p.sctx = ctx_for(cert, key, NULL);
    p.cctx = ctx_for(NULL, NULL, cert);
    p.s = tls_conn_new_server(p.sctx);
    p.c = tls_conn_new_client(p.cctx, "gw.example.org");
    pump(&p, 1 << 20);
    assert_true(p.c_done);
    assert_true(tls_conn_peer_verified(p.c));
    assert_true(tls_conn_peer_matches(p.c, "gw.example.org"));
    pair_close(&p);

    /* An IPv4 host gets an IP SAN. */
    snprintf(cert, sizeof cert, "%s/gen/ip.crt", tmpdir);
    snprintf(key, sizeof key, "%s/gen/ip.key", tmpdir);
    assert_int_equal(tls_cert_generate_self_signed("192.0.2.9", cert, key, err, sizeof err), 0);
    f = fopen(cert, "r");
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_int_equal(X509_check_ip_asc(x, "192.0.2.9", 0), 1);
    X509_free(x);

    /* Where no directory can be made, a reason and no crash. */
    assert_int_equal(tls_cert_generate_self_signed("gw.example.org", "/proc/nope/x.crt", "/proc/nope/x.key",
                                                   err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot create directory"));
    assert_int_equal(tls_cert_generate_self_signed("", cert, key, err, sizeof err), -1);
}

static cfg *cfg_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static cfg *cfg_text(const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cfg *c = cfg_new();
    assert_non_null(c);
    if (cfg_parse_buffer(c, "t.conf", text, strlen(text)) != 0) {
        cfg_print_errors(c, stderr);
        fail_msg("config did not parse:\n%s", text);
    }
    return c;
}

/* What the daemon does at start, from [tls] and [gateway]. */
static void test_setup_from_config(void **state)
{
    (void)state;
    char out[8192];
    FILE *logf = fmemopen(out, sizeof out, "w");
    assert_non_null(logf);
    log_set_stream(logf);
    log_set_level(LOG_LEVEL_INFO);

    /* Default paths in the state directory, generated once, loaded after. */
    cfg *c = cfg_text("[gateway]\nhost = gw.test\nstate_dir = %s/state\n", tmpdir);
    tls_ctx *t = NULL;
    assert_int_equal(tls_setup_from_config(c, &t), 0);
    assert_non_null(t);
    assert_true(tls_ctx_can_serve(t));
    tls_ctx_free(t);
    char cert[256], key[256];
    snprintf(cert, sizeof cert, "%s/state/tls/psycgate.crt", tmpdir);
    snprintf(key, sizeof key, "%s/state/tls/psycgate.key", tmpdir);
    struct stat st1, st2;
    assert_int_equal(stat(cert, &st1), 0);
    assert_int_equal(stat(key, &st2), 0);
    assert_int_equal(st2.st_mode & 0777, 0600);
    assert_int_equal(tls_check_config(c, logf), 0);
    assert_int_equal(tls_setup_from_config(c, &t), 0); /* loads, does not regenerate */
    tls_ctx_free(t);
    assert_int_equal(stat(cert, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);
    cfg_free(c);

    /* A configured pair that names another host: loaded, with a warning. */
    char sc[256], sk[256];
    make_cert("cfg-pair", "elsewhere.example.org", "DNS:elsewhere.example.org", 0, -1, 10, sc, sk);
    chmod(sk, 0644);
    c = cfg_text("[gateway]\nhost = gw.test\n[tls]\ncertificate = %s\nkey = %s\nca_file = %s\n"
                 "generate_self_signed = no\n",
                 sc, sk, ca_path);
    assert_int_equal(tls_setup_from_config(c, &t), 0);
    tls_ctx_free(t);
    cfg_free(c);

    /* Missing files, generation off: an error with both paths. */
    c = cfg_text("[gateway]\nstate_dir = %s/empty\n[tls]\ngenerate_self_signed = no\n", tmpdir);
    assert_int_equal(tls_setup_from_config(c, &t), -1);
    assert_null(t);
    assert_int_equal(tls_check_config(c, logf), -1);
    cfg_free(c);

    /* Half a pair: never generated over. */
    char half[256];
    snprintf(half, sizeof half, "%s/half/tls", tmpdir);
    c = cfg_text("[gateway]\nstate_dir = %s/half\n", tmpdir);
    snprintf(cert, sizeof cert, "%s/half/tls/psycgate.crt", tmpdir);
    snprintf(key, sizeof key, "%s/half/tls/psycgate.key", tmpdir);
    assert_int_equal(tls_cert_generate_self_signed("gw.test", cert, key, half, sizeof half), 0);
    assert_int_equal(unlink(key), 0);
    assert_int_equal(tls_setup_from_config(c, &t), -1);
    assert_int_equal(tls_check_config(c, logf), -1);
    assert_int_equal(stat(key, &st1), -1);
    cfg_free(c);

    log_set_stream(NULL);
    fclose(logf);
    log_set_level(LOG_LEVEL_ERROR);
    assert_non_null(strstr(out, "generated self-signed certificate"));
    assert_non_null(strstr(out, "subject CN=gw.test"));
    assert_non_null(strstr(out, "loaded certificate"));
    assert_non_null(strstr(out, "does not name our host gw.test"));
    assert_non_null(strstr(out, "is readable by others (mode 644)"));
    assert_non_null(strstr(out, "generate_self_signed = no"));
    assert_non_null(strstr(out, "not generating a new pair over it"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_write_before_handshake_and_small_chunks),
        cmocka_unit_test(test_name_checks),
        cmocka_unit_test(test_wrong_name),
        cmocka_unit_test(test_untrusted),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_ctx_errors),
        cmocka_unit_test(test_self_signed),
        cmocka_unit_test(test_setup_from_config),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
