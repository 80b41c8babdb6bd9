/*
 * tls_cert.c: our own certificate: where it lives ([tls] in the config),
 * a self-signed pair on first start so that `make run` has TLS without
 * any setup (issue 5, Transports), and one log line describing what was
 * loaded. See tls.h.
 */
#include "gateway/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gateway/log.h"

#define COMP "tls"

/* Ten years: a development certificate must not expire under a running
 * `make run` setup; production deployments configure a real one. */
#define TLS_SELF_SIGNED_DAYS 3650

static void cert_err(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void cert_err(char *err, size_t errsz, const char *fmt, ...)
{
    char why[160] = "";
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (last)
        ERR_error_string_n(last, why, sizeof why);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    if (why[0] && n >= 0 && (size_t)n < errsz)
        snprintf(err + n, errsz - (size_t)n, " (%s)", why);
}

static int cert_is_ip(const char *host)
{
    unsigned char bin[16];
    return inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1;
}

/* mkdir -p for the directory part of `path`; new directories get 0700
 * (the state directory holds private keys and secrets). */
static int cert_mkdirs_for(const char *path, char *err, size_t errsz)
{
    size_t n = strlen(path);
    char *d = malloc(n + 1);
    if (!d) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    memcpy(d, path, n + 1);
    char *slash = strrchr(d, '/');
    if (!slash || slash == d) {
        free(d);
        return 0; /* current or root directory */
    }
    *slash = '\0';
    for (char *p = d + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char keep = *p;
        *p = '\0';
        if (mkdir(d, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errsz, "cannot create directory %s: %s", d, strerror(errno));
            free(d);
            return -1;
        }
        if (keep == '\0')
            break;
        *p = keep;
    }
    struct stat st;
    if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errsz, "%s is not a directory", d);
        free(d);
        return -1;
    }
    free(d);
    return 0;
}

typedef int (*cert_pem_writer)(BIO *b, void *obj);

static int cert_write_key(BIO *b, void *obj)
{
    return PEM_write_bio_PrivateKey(b, obj, NULL, NULL, 0, NULL, NULL);
}

static int cert_write_x509(BIO *b, void *obj)
{
    return PEM_write_bio_X509(b, obj);
}

/* Writes obj as PEM to a new temporary file next to `path` with exactly
 * `mode` (the umask does not widen or narrow it). The name is returned in
 * tmp for the caller to rename once every file is written. */
static int cert_write_tmp(const char *path, mode_t mode, cert_pem_writer w, void *obj, char *tmp,
                          size_t tmpsz, char *err, size_t errsz)
{
    if ((size_t)snprintf(tmp, tmpsz, "%s.tmp.%ld", path, (long)getpid()) >= tmpsz) {
        snprintf(err, errsz, "path too long: %s", path);
        return -1;
    }
    /* O_EXCL: never write a key through a link someone placed there. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, errsz, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    int ok = fchmod(fd, mode) == 0;
    BIO *b = ok ? BIO_new_fd(fd, BIO_NOCLOSE) : NULL;
    ok = b && w(b, obj) == 1 && BIO_flush(b) == 1;
    BIO_free(b);
    ok = ok && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = 0;
    if (!ok) {
        cert_err(err, errsz, "cannot write %s", tmp);
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int cert_add_ext(X509 *x, int nid, void *value, int critical)
{
    return X509_add1_ext_i2d(x, nid, value, critical, 0) == 1;
}

/* Builds the certificate. Extensions are built as structures, not from
 * "DNS:%s" text, so no host string can inject a second name. */
static X509 *cert_make(EVP_PKEY *pk, const char *host)
{
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    GENERAL_NAMES *sans = GENERAL_NAMES_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    X509_EXTENSION *ski = NULL;
    int ok = x && serial && sans && gn && bc && ku && eku;

    /* A random positive 127-bit serial (RFC 5280 §4.1.2.2: at most 20
     * octets; unpredictable serials are CA/B practice). */
    ok = ok && X509_set_version(x, X509_VERSION_3) && BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
         BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x));
    /* An hour of slack for peers whose clocks run slow. */
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
         X509_time_adj_ex(X509_getm_notAfter(x), TLS_SELF_SIGNED_DAYS, 0, NULL) && X509_set_pubkey(x, pk);
    X509_NAME *name = ok ? X509_get_subject_name(x) : NULL;
    ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)host, -1, -1, 0) &&
         X509_set_issuer_name(x, name);

    /* subjectAltName: what RFC 6125 peers check (never the CN when a SAN
     * is present). */
    if (ok && cert_is_ip(host)) {
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host);
        ok = ip != NULL;
        if (ok)
            GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
    } else if (ok) {
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
        ok = dns && ASN1_STRING_set(dns, host, (int)strlen(host));
        if (ok)
            GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
        else
            ASN1_IA5STRING_free(dns);
    }
    if (ok) {
        ok = sk_GENERAL_NAME_push(sans, gn) > 0;
        if (ok)
            gn = NULL; /* owned by sans now */
    }
    ok = ok && cert_add_ext(x, NID_subject_alt_name, sans, 0);

    /* An end-entity certificate, used as server (PSYC accept, S2S in) and
     * as client (PSYC connect, S2S out: XEP-0178). */
    if (bc)
        bc->ca = 0;
    ok = ok && cert_add_ext(x, NID_basic_constraints, bc, 1);
    ok = ok && ASN1_BIT_STRING_set_bit(ku, 0, 1) && cert_add_ext(x, NID_key_usage, ku, 1); /* digitalSignature */
    ok = ok && sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) > 0 &&
         sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)) > 0 &&
         cert_add_ext(x, NID_ext_key_usage, eku, 0);
    if (ok) {
        X509V3_CTX v3;
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        ski = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_key_identifier, "hash");
        ok = ski && X509_add_ext(x, ski, -1);
    }
    ok = ok && X509_sign(x, pk, EVP_sha256()) > 0;

    X509_EXTENSION_free(ski);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    ASN1_BIT_STRING_free(ku);
    BASIC_CONSTRAINTS_free(bc);
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(sans);
    BN_free(serial);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

int tls_cert_generate_self_signed(const char *host, const char *cert_path, const char *key_path,
                                  char *err, size_t errsz)
{
    ERR_clear_error();
    if (!host || !host[0] || strlen(host) > 253) {
        snprintf(err, errsz, "no valid host name for the certificate");
        return -1;
    }
    if (cert_mkdirs_for(cert_path, err, errsz) != 0 || cert_mkdirs_for(key_path, err, errsz) != 0)
        return -1;

    /* P-256: fast to generate and to use, understood by every TLS 1.2+
     * stack the gateway talks to (Prosody, ejabberd, psyced's OpenSSL). */
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!pk) {
        cert_err(err, errsz, "cannot generate a P-256 key");
        return -1;
    }
    X509 *x = cert_make(pk, host);
    if (!x) {
        cert_err(err, errsz, "cannot build the certificate for %s", host);
        EVP_PKEY_free(pk);
        return -1;
    }
    char key_tmp[4096], cert_tmp[4096];
    int rc = cert_write_tmp(key_path, 0600, cert_write_key, pk, key_tmp, sizeof key_tmp, err, errsz);
    if (rc == 0) {
        rc = cert_write_tmp(cert_path, 0644, cert_write_x509, x, cert_tmp, sizeof cert_tmp, err, errsz);
        if (rc != 0)
            unlink(key_tmp);
    }
    /* Key first: a certificate never appears without its key. */
    if (rc == 0 && rename(key_tmp, key_path) != 0) {
        snprintf(err, errsz, "cannot rename %s to %s: %s", key_tmp, key_path, strerror(errno));
        unlink(key_tmp);
        unlink(cert_tmp);
        rc = -1;
    }
    if (rc == 0 && rename(cert_tmp, cert_path) != 0) {
        snprintf(err, errsz, "cannot rename %s to %s: %s", cert_tmp, cert_path, strerror(errno));
        unlink(cert_tmp);
        unlink(key_path);
        rc = -1;
    }
    X509_free(x);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return rc;
}

/* ------------------------------------------------------------------ */
/* From the configuration                                             */

typedef struct cert_paths {
    char cert[4096];
    char key[4096];
} cert_paths;

static int cert_resolve(const cfg *c, cert_paths *p)
{
    const char *dir = cfg_get_str(c, "gateway", "state_dir");
    const char *cert = cfg_get_str(c, "tls", "certificate");
    const char *key = cfg_get_str(c, "tls", "key");
    int n1 = cert && cert[0] ? snprintf(p->cert, sizeof p->cert, "%s", cert)
                             : snprintf(p->cert, sizeof p->cert, "%s/tls/psycgate.crt", dir);
    int n2 = key && key[0] ? snprintf(p->key, sizeof p->key, "%s", key)
                           : snprintf(p->key, sizeof p->key, "%s/tls/psycgate.key", dir);
    return n1 > 0 && (size_t)n1 < sizeof p->cert && n2 > 0 && (size_t)n2 < sizeof p->key ? 0 : -1;
}

static int cert_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void cert_time(const ASN1_TIME *t, char *buf, size_t size)
{
    struct tm tm;
    if (t && ASN1_TIME_to_tm(t, &tm) == 1)
        strftime(buf, size, "%Y-%m-%d", &tm);
    else
        snprintf(buf, size, "?");
}

static void cert_name(const X509_NAME *n, char *buf, size_t size)
{
    snprintf(buf, size, "-");
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *p = NULL;
        long len = BIO_get_mem_data(b, &p);
        if (len > 0 && p)
            snprintf(buf, size, "%.*s", (int)len, p);
    }
    BIO_free(b);
}

/* Describes our certificate: one info line, plus a warning for each
 * problem a peer would see. Returns 0, or -1 when it cannot be read. */
static int cert_describe(const char *path, const char *host, int generated, FILE *f)
{
    BIO *b = BIO_new_file(path, "r");
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!x) {
        ERR_clear_error();
        return -1;
    }
    char subject[256], issuer[256], until[32], fp[3 * EVP_MAX_MD_SIZE + 1] = "";
    cert_name(X509_get_subject_name(x), subject, sizeof subject);
    cert_name(X509_get_issuer_name(x), issuer, sizeof issuer);
    cert_time(X509_get0_notAfter(x), until, sizeof until);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (X509_digest(x, EVP_sha256(), md, &mdlen) == 1)
        for (unsigned i = 0; i < mdlen; i++)
            snprintf(fp + 3 * i, sizeof fp - 3 * i, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
    int self = X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0;

    if (f) {
        fprintf(f, "tls: certificate %s: %s%s, valid until %s\n", path, subject,
                self ? " (self-signed)" : "", until);
    } else {
        log_info(COMP, NULL, "%s certificate %s: subject %s, issuer %s, valid until %s, SHA-256 %s",
                 generated ? "generated self-signed" : "loaded", path, subject,
                 self ? "itself" : issuer, until, fp);
    }

    /* What peers will check (PSYC.md §5 rule 3; XEP-0178). */
    int named = cert_is_ip(host) ? X509_check_ip_asc(x, host, 0) == 1
                                 : X509_check_host(x, host, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
    if (!named) {
        if (f)
            fprintf(f, "tls: warning: %s does not name [gateway] host %s\n", path, host);
        else
            log_warn(COMP, NULL, "certificate %s does not name our host %s: peers cannot authenticate us by certificate",
                     path, host);
    }
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        if (f)
            fprintf(f, "tls: warning: %s expired on %s\n", path, until);
        else
            log_warn(COMP, NULL, "certificate %s expired on %s: peers will refuse it", path, until);
    }
    X509_free(x);
    ERR_clear_error();
    return 0;
}

static void cert_check_key_mode(const char *key, FILE *f)
{
    struct stat st;
    if (stat(key, &st) != 0 || !(st.st_mode & 077))
        return;
    if (f)
        fprintf(f, "tls: warning: private key %s is readable by others (mode %03o)\n", key,
                (unsigned)(st.st_mode & 0777));
    else
        log_warn(COMP, NULL, "private key %s is readable by others (mode %03o); chmod 600 it", key,
                 (unsigned)(st.st_mode & 0777));
}

int tls_setup_from_config(const cfg *c, tls_ctx **out)
{
    *out = NULL;
    cert_paths p;
    if (cert_resolve(c, &p) != 0) {
        log_error(COMP, NULL, "certificate or key path too long");
        return -1;
    }
    const char *host = cfg_get_str(c, "gateway", "host");
    int have_cert = cert_exists(p.cert), have_key = cert_exists(p.key);
    int generated = 0;
    char err[512];

    if (!have_cert && !have_key) {
        if (!cfg_get_bool(c, "tls", "generate_self_signed")) {
            log_error(COMP, NULL, "certificate %s and key %s do not exist, and [tls] generate_self_signed = no",
                      p.cert, p.key);
            return -1;
        }
        if (tls_cert_generate_self_signed(host, p.cert, p.key, err, sizeof err) != 0) {
            log_error(COMP, NULL, "cannot generate a self-signed certificate: %s", err);
            return -1;
        }
        generated = 1;
    } else if (!have_cert || !have_key) {
        /* Generating would overwrite the half that exists: an operator's
         * key or certificate is never replaced behind their back. */
        log_error(COMP, NULL, "%s exists but %s does not; not generating a new pair over it",
                  have_cert ? p.cert : p.key, have_cert ? p.key : p.cert);
        return -1;
    }

    const char *ca = cfg_get_str(c, "tls", "ca_file");
    tls_ctx_params params = {.certificate = p.cert, .key = p.key, .ca_file = ca};
    if (tls_ctx_new(&params, out, err, sizeof err) != 0) {
        log_error(COMP, NULL, "%s", err);
        return -1;
    }
    cert_describe(p.cert, host, generated, NULL);
    cert_check_key_mode(p.key, NULL);
    log_info(COMP, NULL, "trusting %s for peer certificates", ca && ca[0] ? ca : "the system CA store");
    return 0;
}

int tls_check_config(const cfg *c, FILE *f)
{
    cert_paths p;
    if (cert_resolve(c, &p) != 0) {
        fprintf(f, "tls: certificate or key path too long\n");
        return -1;
    }
    const char *host = cfg_get_str(c, "gateway", "host");
    int have_cert = cert_exists(p.cert), have_key = cert_exists(p.key);
    if (!have_cert && !have_key) {
        if (!cfg_get_bool(c, "tls", "generate_self_signed")) {
            fprintf(f, "tls: certificate %s and key %s do not exist, and [tls] generate_self_signed = no\n",
                    p.cert, p.key);
            return -1;
        }
        fprintf(f, "tls: %s and %s do not exist yet: a self-signed pair for %s will be generated at start\n",
                p.cert, p.key, host);
        /* The CA setting is still checked. */
        tls_ctx_params params = {.ca_file = cfg_get_str(c, "tls", "ca_file")};
        tls_ctx *t = NULL;
        char err[512];
        if (tls_ctx_new(&params, &t, err, sizeof err) != 0) {
            fprintf(f, "tls: %s\n", err);
            return -1;
        }
        tls_ctx_free(t);
        return 0;
    }
    if (!have_cert || !have_key) {
        fprintf(f, "tls: %s exists but %s does not\n", have_cert ? p.cert : p.key,
                have_cert ? p.key : p.cert);
        return -1;
    }
    tls_ctx_params params = {.certificate = p.cert, .key = p.key, .ca_file = cfg_get_str(c, "tls", "ca_file")};
    tls_ctx *t = NULL;
    char err[512];
    if (tls_ctx_new(&params, &t, err, sizeof err) != 0) {
        fprintf(f, "tls: %s\n", err);
        return -1;
    }
    tls_ctx_free(t);
    cert_describe(p.cert, host, 0, f);
    cert_check_key_mode(p.key, f);
    return 0;
}
