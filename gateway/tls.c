/* tls.c: the TLS engine over memory BIOs (see tls.h; DEPS.md §3). */
#include "gateway/tls.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* TLS 1.2 suites with forward secrecy only ((EC)DHE key exchange), AEAD
 * first. psyced refuses the rest (PSYC.md §5 `tls_bad_cipher`), and so do
 * we. TLS 1.3 suites are all forward-secret; OpenSSL's default set stays. */
#define TLS_CIPHERS_12                                                                              \
    "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:ECDHE+AES:DHE+AES:"                       \
    "!aNULL:!eNULL:!MD5:!DSS:!PSK:!SRP:!CAMELLIA:!ARIA"

/* Passed to X509_check_host everywhere: no "f*.example.org" (RFC 6125
 * §6.4.3 allows it as a MAY; RFC 9525 removed it), and a wildcard never
 * spans labels (OpenSSL's default). */
#define TLS_HOST_FLAGS X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS

/* Session id context: required on a server that asks for client
 * certificates, or OpenSSL refuses resumption attempts with an error
 * instead of a full handshake. */
static const unsigned char tls_sid_ctx[] = "psycgate";

struct tls_ctx {
    SSL_CTX *server;
    SSL_CTX *client;
    int has_cert;
};

typedef enum tls_state {
    TLS_ST_HANDSHAKE = 0,
    TLS_ST_OPEN,
    TLS_ST_CLOSED, /* close_notify received or sent: no more plaintext */
    TLS_ST_FAILED,
} tls_state;

struct tls_conn {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
    int server;
    tls_state state;
    int peer_closed;   /* close_notify received */
    int sent_close;    /* close_notify queued */
    int done_reported; /* tls_conn_feed returned 1 */
    char *host;        /* client: the expected name (DNS name or IP literal) */
    psyc_buf pending;  /* plaintext written before the handshake completed */

    /* Filled by the verify callback: chain errors apart from the name
     * check, which tls_conn_peer_matches does itself for any name. */
    int verify_ran;
    int chain_err, chain_depth;
    int name_err;

    char error[256];
};

/* ------------------------------------------------------------------ */
/* Errors                                                             */

/* OpenSSL's reason for the last failure on this thread, drained from its
 * error queue ("" when it is empty). */
static void tls_ssl_reason(char *buf, size_t size)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e; /* the last one is the most specific in OpenSSL 3 */
    if (!last) {
        buf[0] = '\0';
        return;
    }
    const char *r = ERR_reason_error_string(last);
    if (r)
        snprintf(buf, size, "%s", r);
    else
        ERR_error_string_n(last, buf, size);
}

static void tls_set_err(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void tls_set_err(char *err, size_t errsz, const char *fmt, ...)
{
    if (!err || !errsz)
        return;
    char why[160];
    tls_ssl_reason(why, sizeof why);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    if (why[0] && n >= 0 && (size_t)n < errsz)
        snprintf(err + n, errsz - (size_t)n, ": %s", why);
}

static void tls_fail(tls_conn *c, const char *what, int ssl_err)
{
    char why[160];
    tls_ssl_reason(why, sizeof why);
    if (!why[0]) {
        if (ssl_err == SSL_ERROR_SYSCALL || ssl_err == SSL_ERROR_ZERO_RETURN)
            snprintf(why, sizeof why, "unexpected end of the TLS stream");
        else
            snprintf(why, sizeof why, "SSL error %d", ssl_err);
    }
    if (c->state != TLS_ST_FAILED)
        snprintf(c->error, sizeof c->error, "%s: %s", what, why);
    c->state = TLS_ST_FAILED;
}

/* ------------------------------------------------------------------ */
/* Context                                                            */

/* Runs for every certificate of the peer's chain. Records the verdict and
 * lets the handshake go on: what an unverified peer may do is decided
 * above TLS (dialback, DNS check), see tls.h. */
static int tls_verify_cb(int ok, X509_STORE_CTX *xs)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    tls_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    if (!c)
        return ok;
    c->verify_ran = 1;
    if (!ok) {
        int e = X509_STORE_CTX_get_error(xs);
        if (e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH) {
            if (!c->name_err)
                c->name_err = e;
        } else if (c->chain_err == X509_V_OK) {
            c->chain_err = e;
            c->chain_depth = X509_STORE_CTX_get_error_depth(xs);
        }
    }
    return 1;
}

static int tls_ctx_setup(SSL_CTX *s, const tls_ctx_params *p, int server, char *err, size_t errsz)
{
    if (!SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION)) {
        tls_set_err(err, errsz, "cannot require TLS 1.2");
        return -1;
    }
    if (!SSL_CTX_set_cipher_list(s, TLS_CIPHERS_12)) {
        tls_set_err(err, errsz, "cannot set the cipher list");
        return -1;
    }
    SSL_CTX_set_dh_auto(s, 1);
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
    /* Idle circuits and streams give their read/write buffers back. */
    SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
    /* No resumption, so that every verdict about the peer's certificate
     * comes from the chain of this handshake (tls.h). */
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    if (server) {
        SSL_CTX_set_num_tickets(s, 0);
        if (!SSL_CTX_set_session_id_context(s, tls_sid_ctx, sizeof tls_sid_ctx - 1)) {
            tls_set_err(err, errsz, "cannot set the session id context");
            return -1;
        }
    }
    /* Ask for the peer's certificate on both sides (S2S peers and PSYC
     * circuits authenticate with theirs, XEP-0178, PSYC.md §5), but do not
     * fail without one: tls_verify_cb always lets the handshake go on. */
    SSL_CTX_set_verify(s, SSL_VERIFY_PEER, tls_verify_cb);

    if (p->certificate) {
        if (SSL_CTX_use_certificate_chain_file(s, p->certificate) != 1) {
            tls_set_err(err, errsz, "cannot load certificate %s", p->certificate);
            return -1;
        }
        if (!p->key || SSL_CTX_use_PrivateKey_file(s, p->key, SSL_FILETYPE_PEM) != 1) {
            if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
                tls_set_err(err, errsz, "private key %s does not match certificate %s", p->key,
                            p->certificate);
            else
                tls_set_err(err, errsz, "cannot load private key %s", p->key ? p->key : "(none)");
            return -1;
        }
        if (SSL_CTX_check_private_key(s) != 1) {
            tls_set_err(err, errsz, "private key %s does not match certificate %s", p->key,
                        p->certificate);
            return -1;
        }
    }
    return 0;
}

int tls_ctx_new(const tls_ctx_params *p, tls_ctx **out, char *err, size_t errsz)
{
    *out = NULL;
    if (err && errsz)
        err[0] = '\0';
    ERR_clear_error();
    tls_ctx *t = calloc(1, sizeof *t);
    if (!t) {
        tls_set_err(err, errsz, "out of memory");
        return -1;
    }
    t->server = SSL_CTX_new(TLS_server_method());
    t->client = SSL_CTX_new(TLS_client_method());
    if (!t->server || !t->client) {
        tls_set_err(err, errsz, "cannot create an SSL context");
        tls_ctx_free(t);
        return -1;
    }
    if (tls_ctx_setup(t->server, p, 1, err, errsz) != 0 ||
        tls_ctx_setup(t->client, p, 0, err, errsz) != 0) {
        tls_ctx_free(t);
        return -1;
    }
    /* One trust store for both sides. */
    X509_STORE *store = SSL_CTX_get_cert_store(t->server);
    int ok;
    if (p->ca_file && p->ca_file[0])
        ok = SSL_CTX_load_verify_locations(t->server, p->ca_file, NULL);
    else
        ok = SSL_CTX_set_default_verify_paths(t->server);
    if (ok != 1) {
        if (p->ca_file && p->ca_file[0])
            tls_set_err(err, errsz, "cannot load CA file %s", p->ca_file);
        else
            tls_set_err(err, errsz, "cannot load the system CA store");
        tls_ctx_free(t);
        return -1;
    }
    SSL_CTX_set1_cert_store(t->client, store);
    t->has_cert = p->certificate != NULL;
    ERR_clear_error();
    *out = t;
    return 0;
}

void tls_ctx_free(tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->server);
    SSL_CTX_free(t->client);
    free(t);
}

int tls_ctx_can_serve(const tls_ctx *t)
{
    return t && t->has_cert;
}

/* ------------------------------------------------------------------ */
/* Connection                                                         */

static tls_conn *tls_conn_new(SSL_CTX *s, int server)
{
    tls_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->server = server;
    psyc_buf_init(&c->pending);
    c->ssl = SSL_new(s);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        SSL_free(c->ssl);
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        free(c);
        return NULL;
    }
    /* An empty input BIO means "wait for the socket" (WANT_READ), not EOF. */
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_app_data(c->ssl, c);
    return c;
}

tls_conn *tls_conn_new_server(tls_ctx *t)
{
    if (!t)
        return NULL;
    ERR_clear_error();
    tls_conn *c = tls_conn_new(t->server, 1);
    if (c)
        SSL_set_accept_state(c->ssl);
    return c;
}

static int tls_is_ip_literal(const char *s)
{
    unsigned char bin[16];
    return inet_pton(AF_INET, s, bin) == 1 || inet_pton(AF_INET6, s, bin) == 1;
}

/* Drives the handshake. Returns 1 when it completed now, 0 to go on, <0. */
static int tls_handshake(tls_conn *c);

tls_conn *tls_conn_new_client(tls_ctx *t, const char *host)
{
    if (!t)
        return NULL;
    ERR_clear_error();
    tls_conn *c = tls_conn_new(t->client, 0);
    if (!c)
        return NULL;
    SSL_set_connect_state(c->ssl);
    if (host && host[0]) {
        size_t n = strlen(host);
        if (host[n - 1] == '.')
            n--; /* "example.org." names the same host; certificates never carry the dot */
        c->host = malloc(n + 1);
        if (!c->host) {
            tls_conn_free(c);
            return NULL;
        }
        memcpy(c->host, host, n);
        c->host[n] = '\0';
        int ok;
        if (tls_is_ip_literal(c->host)) {
            /* RFC 6066 §3: no IP literals in SNI; the check is on IP SANs. */
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host);
        } else {
            SSL_set_hostflags(c->ssl, TLS_HOST_FLAGS);
            ok = SSL_set_tlsext_host_name(c->ssl, c->host) && SSL_set1_host(c->ssl, c->host);
        }
        if (!ok) {
            tls_conn_free(c);
            return NULL;
        }
    }
    /* Produces the ClientHello. */
    if (tls_handshake(c) < 0) {
        tls_conn_free(c);
        return NULL;
    }
    return c;
}

void tls_conn_free(tls_conn *c)
{
    if (!c)
        return;
    SSL_free(c->ssl); /* frees rbio and wbio */
    psyc_buf_free(&c->pending);
    free(c->host);
    free(c);
}

/* Sends the plaintext queued during the handshake. */
static int tls_flush_pending(tls_conn *c)
{
    size_t off = 0;
    while (off < c->pending.len) {
        size_t w = 0;
        ERR_clear_error();
        int r = SSL_write_ex(c->ssl, c->pending.data + off, c->pending.len - off, &w);
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                break; /* a memory BIO never blocks writes; only a read can unblock this */
            tls_fail(c, "TLS write failed", e);
            return TLS_ERR;
        }
        off += w;
    }
    if (off) {
        memmove(c->pending.data, c->pending.data + off, c->pending.len - off);
        c->pending.len -= off;
    }
    return TLS_OK;
}

static int tls_handshake(tls_conn *c)
{
    if (c->state != TLS_ST_HANDSHAKE)
        return 0;
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->state = TLS_ST_OPEN;
        if (tls_flush_pending(c) < 0)
            return TLS_ERR;
        return 1;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    tls_fail(c, "TLS handshake failed", e);
    return TLS_ERR;
}

int tls_conn_feed(tls_conn *c, const void *data, size_t n)
{
    if (c->state == TLS_ST_FAILED)
        return TLS_ERR;
    const char *p = data;
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        int w = BIO_write(c->rbio, p, chunk);
        if (w <= 0) {
            ERR_clear_error();
            snprintf(c->error, sizeof c->error, "out of memory buffering TLS input");
            c->state = TLS_ST_FAILED;
            return TLS_ERR_NOMEM;
        }
        p += w;
        n -= (size_t)w;
    }
    int h = tls_handshake(c);
    if (h < 0)
        return h;
    if (c->state == TLS_ST_OPEN && !c->done_reported) {
        c->done_reported = 1;
        return 1;
    }
    return TLS_OK;
}

int tls_conn_read(tls_conn *c, void *buf, size_t cap, size_t *got)
{
    *got = 0;
    if (c->state == TLS_ST_FAILED)
        return TLS_ERR;
    if (c->peer_closed)
        return TLS_CLOSED;
    if (c->state == TLS_ST_HANDSHAKE) {
        int h = tls_handshake(c);
        if (h < 0)
            return h;
        if (c->state == TLS_ST_HANDSHAKE)
            return TLS_OK;
    }
    if (cap == 0)
        return TLS_OK;
    ERR_clear_error();
    int r = SSL_read_ex(c->ssl, buf, cap, got);
    if (r == 1) {
        /* A read may unblock a write that wanted one (post-handshake
         * messages); the output is taken by the caller. */
        if (c->pending.len && tls_flush_pending(c) < 0)
            return TLS_ERR;
        return TLS_OK;
    }
    *got = 0;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return TLS_OK;
    if (e == SSL_ERROR_ZERO_RETURN) {
        c->peer_closed = 1;
        c->state = TLS_ST_CLOSED;
        return TLS_CLOSED;
    }
    tls_fail(c, "TLS read failed", e);
    return TLS_ERR;
}

int tls_conn_write(tls_conn *c, const void *data, size_t n)
{
    if (c->state == TLS_ST_FAILED || c->sent_close)
        return TLS_ERR;
    if (n == 0)
        return TLS_OK;
    if (c->state == TLS_ST_HANDSHAKE || c->pending.len) {
        /* Keep the order: behind whatever is queued already. */
        if (psyc_buf_append(&c->pending, data, n) != 0)
            return TLS_ERR_NOMEM;
        return c->state == TLS_ST_HANDSHAKE ? TLS_OK : tls_flush_pending(c);
    }
    const char *p = data;
    while (n > 0) {
        size_t w = 0;
        ERR_clear_error();
        int r = SSL_write_ex(c->ssl, p, n, &w);
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return psyc_buf_append(&c->pending, p, n) == 0 ? TLS_OK : TLS_ERR_NOMEM;
            tls_fail(c, "TLS write failed", e);
            return TLS_ERR;
        }
        p += w;
        n -= w;
    }
    return TLS_OK;
}

size_t tls_conn_output_pending(const tls_conn *c)
{
    return BIO_ctrl_pending(c->wbio);
}

int tls_conn_take_output(tls_conn *c, psyc_buf *out)
{
    size_t n = BIO_ctrl_pending(c->wbio);
    while (n > 0) {
        int chunk = n > INT_MAX / 2 ? INT_MAX / 2 : (int)n;
        if (psyc_buf_reserve(out, (size_t)chunk) != 0)
            return TLS_ERR_NOMEM;
        int r = BIO_read(c->wbio, out->data + out->len, chunk);
        if (r <= 0)
            break;
        out->len += (size_t)r;
        n -= (size_t)r;
    }
    return TLS_OK;
}

void tls_conn_close(tls_conn *c)
{
    /* SSL_shutdown after a fatal error is forbidden (SSL_shutdown(3)), and
     * before the handshake there is no session to close. */
    if (c->state == TLS_ST_FAILED || c->state == TLS_ST_HANDSHAKE || c->sent_close)
        return;
    c->sent_close = 1;
    ERR_clear_error();
    SSL_shutdown(c->ssl); /* queues close_notify; we do not wait for the peer's */
    ERR_clear_error();
    if (c->state == TLS_ST_OPEN)
        c->state = TLS_ST_CLOSED;
}

/* ------------------------------------------------------------------ */
/* State                                                              */

int tls_conn_is_server(const tls_conn *c)
{
    return c->server;
}

int tls_conn_handshake_done(const tls_conn *c)
{
    return c->state == TLS_ST_OPEN || (c->state == TLS_ST_CLOSED && SSL_is_init_finished(c->ssl));
}

int tls_conn_failed(const tls_conn *c)
{
    return c->state == TLS_ST_FAILED;
}

const char *tls_conn_error(const tls_conn *c)
{
    return c->error;
}

const char *tls_conn_version(const tls_conn *c)
{
    return tls_conn_handshake_done(c) ? SSL_get_version(c->ssl) : "-";
}

const char *tls_conn_cipher(const tls_conn *c)
{
    const char *s = tls_conn_handshake_done(c) ? SSL_get_cipher_name(c->ssl) : NULL;
    return s ? s : "-";
}

const char *tls_conn_sni(const tls_conn *c)
{
    return c->server ? SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

int tls_conn_peer_has_cert(const tls_conn *c)
{
    return SSL_get0_peer_certificate(c->ssl) != NULL;
}

const char *tls_conn_peer_subject(const tls_conn *c, char *buf, size_t size)
{
    if (!size)
        return buf;
    snprintf(buf, size, "-");
    X509 *x = SSL_get0_peer_certificate(c->ssl);
    if (!x)
        return buf;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return buf;
    /* RFC 2253 order and escaping, but UTF-8 kept readable; the log
     * escapes control characters itself. */
    unsigned long flags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
    if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, flags) >= 0) {
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        if (n > 0 && p) {
            size_t len = (size_t)n < size - 1 ? (size_t)n : size - 1;
            memcpy(buf, p, len);
            buf[len] = '\0';
        }
    }
    BIO_free(b);
    ERR_clear_error();
    return buf;
}

/* Chain verdict without the client-side name check. */
static int tls_chain_ok(const tls_conn *c)
{
    if (!tls_conn_handshake_done(c) || !SSL_get0_peer_certificate(c->ssl) || !c->verify_ran)
        return 0;
    if (c->chain_err != X509_V_OK)
        return 0;
    long r = SSL_get_verify_result(c->ssl);
    return r == X509_V_OK || r == X509_V_ERR_HOSTNAME_MISMATCH || r == X509_V_ERR_IP_ADDRESS_MISMATCH;
}

int tls_conn_peer_verified(const tls_conn *c)
{
    return tls_chain_ok(c) && !c->name_err;
}

const char *tls_conn_peer_verify_error(const tls_conn *c, char *buf, size_t size)
{
    if (!size)
        return buf;
    buf[0] = '\0';
    if (!tls_conn_handshake_done(c))
        snprintf(buf, size, "handshake not done");
    else if (!SSL_get0_peer_certificate(c->ssl))
        snprintf(buf, size, "no certificate");
    else if (c->chain_err != X509_V_OK)
        snprintf(buf, size, "%s (depth %d)", X509_verify_cert_error_string(c->chain_err),
                 c->chain_depth);
    else if (!tls_chain_ok(c))
        snprintf(buf, size, "%s", X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
    else if (c->name_err)
        snprintf(buf, size, "certificate does not match %s", c->host ? c->host : "the expected host");
    return buf;
}

int tls_conn_peer_matches(const tls_conn *c, const char *domain)
{
    if (!domain || !domain[0] || !tls_chain_ok(c))
        return 0;
    char name[256];
    size_t n = strlen(domain);
    if (domain[n - 1] == '.')
        n--;
    if (n == 0 || n >= sizeof name)
        return 0;
    memcpy(name, domain, n);
    name[n] = '\0';
    X509 *x = SSL_get0_peer_certificate(c->ssl);
    /* X509_check_host implements RFC 6125 §6.4: dNSName SANs; the CN only
     * when there is no dNSName SAN; wildcards only as the leftmost label
     * (never over an IDN A-label or a public suffix of one label). */
    int r = X509_check_host(x, name, n, TLS_HOST_FLAGS, NULL);
    ERR_clear_error();
    return r == 1;
}

void tls_names_free(char **names)
{
    if (!names)
        return;
    for (char **p = names; *p; p++)
        free(*p);
    free(names);
}

static int tls_names_add(char ***names, size_t *n, const unsigned char *s, int len)
{
    if (len <= 0 || memchr(s, '\0', (size_t)len))
        return 0; /* an embedded NUL is a forgery attempt, never a name */
    char **grown = realloc(*names, (*n + 2) * sizeof **names);
    if (!grown)
        return -1;
    *names = grown;
    char *d = malloc((size_t)len + 1);
    if (!d)
        return -1;
    memcpy(d, s, (size_t)len);
    d[len] = '\0';
    grown[(*n)++] = d;
    grown[*n] = NULL;
    return 0;
}

size_t tls_conn_peer_names(const tls_conn *c, char ***out)
{
    *out = NULL;
    if (!tls_chain_ok(c))
        return 0;
    X509 *x = SSL_get0_peer_certificate(c->ssl);
    char **names = NULL;
    size_t n = 0;
    int oom = 0;
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int have_dns = 0;
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && !oom; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type != GEN_DNS)
            continue;
        have_dns = 1;
        oom = tls_names_add(&names, &n, ASN1_STRING_get0_data(g->d.dNSName),
                            ASN1_STRING_length(g->d.dNSName)) != 0;
    }
    GENERAL_NAMES_free(sans);
    if (!have_dns && !oom) {
        /* RFC 6125 §6.4.4: the CN only without dNSName SANs. */
        X509_NAME *subj = X509_get_subject_name(x);
        int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
        if (i >= 0) {
            unsigned char *utf8 = NULL;
            int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)));
            if (len > 0)
                oom = tls_names_add(&names, &n, utf8, len) != 0;
            OPENSSL_free(utf8);
        }
    }
    ERR_clear_error();
    if (oom) {
        tls_names_free(names);
        return 0;
    }
    *out = names;
    return n;
}
