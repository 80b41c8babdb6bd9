/* config.c: INI-like configuration file, schema-checked (see config.h). */
#include "gateway/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* ------------------------------------------------------------------ */
/* Schema: every key the daemon knows, its type and its default. A key
 * that is not here is an error in the file (DESIGN.md §7). Keep
 * etc/psycgate.conf in step with this table. */

typedef enum cfg_type {
    CFG_T_STR,       /* non-empty text without control characters */
    CFG_T_HOST,      /* DNS name or IPv4 literal, used in psyc://HOST/ */
    CFG_T_UINT,      /* decimal, within [min, max] */
    CFG_T_LOG_LEVEL, /* error | warn | info | debug */
    CFG_T_ADDRS,     /* list of ip:port, [ip6]:port (comma or blank separated) */
    CFG_T_SERVERS,   /* list of ip[:port], [ip6]:port, ip6 (port 53); may be empty */
    CFG_T_STATIC_ROUTES, /* DOMAIN=HOST[:PORT], comma separated; may be empty */
    CFG_T_PATH,      /* file name without control characters; may be empty */
    CFG_T_BOOL,      /* yes | no (also true/false, on/off, 1/0) */
    CFG_T_DOMAINS,   /* DNS names, comma or blank separated; may be empty */
    CFG_T_IP,        /* one numeric IPv4 or IPv6 address, no brackets */
    CFG_T_SECRET,    /* text without control characters; may be empty */
    CFG_T_CHOICE,    /* one of the comma-separated words in `choices` */
} cfg_type;

typedef struct cfg_key_def {
    const char *section;
    const char *key;
    cfg_type type;
    const char *def;
    uint64_t min, max; /* CFG_T_UINT; CFG_T_ADDRS: min 0 also allows `none` */
    const char *choices; /* CFG_T_CHOICE: "none,optional,required" */
} cfg_key_def;

static const cfg_key_def cfg_schema[] = {
    {"gateway", "host", CFG_T_HOST, "localhost", 0, 0, NULL},
    {"gateway", "state_dir", CFG_T_STR, "./var", 0, 0, NULL},
    {"gateway", "log_level", CFG_T_LOG_LEVEL, "info", 0, 0, NULL},
    /* Incoming connections each face serves at once (PSYC circuits, S2S
     * streams); more are accepted and closed at once. */
    {"gateway", "max_incoming", CFG_T_UINT, "4096", 1, 1000000, NULL},
    {"psyc", "listen", CFG_T_ADDRS, "127.0.0.1:4404", 1, 0, NULL},
    /* TLS from the first byte (PSYC.md §2.1: 9404 = PSYCS); `none`: off. */
    {"psyc", "listen_tls", CFG_T_ADDRS, "127.0.0.1:9404", 0, 0, NULL},
    /* 0 disables the timeout. Upper bound: one week. */
    {"psyc", "idle_timeout", CFG_T_UINT, "600", 0, 7 * 86400, NULL},
    /* Lower bound: psyced's greeting alone is ~600 bytes; upper: 1 GiB. */
    {"psyc", "max_packet", CFG_T_UINT, "8388608", 1024, (uint64_t)1 << 30, NULL},
    /* Syntax of the circuits we open (PSYC.md §2): psyced speaks 0.9. */
    {"psyc", "syntax", CFG_T_CHOICE, "0.9", 0, 0, "0.9,1.0"},
    /* A waiting packet is bounced after this many seconds (issue 6). */
    {"psyc", "give_up", CFG_T_UINT, "600", 1, 7 * 86400, NULL},
    /* Milliseconds a psycgate peer's acknowledgement may wait to cover
     * more packets (psyc/link.h "Acknowledged delivery"); 0: every turn. */
    {"psyc", "ack_delay", CFG_T_UINT, "0", 0, 60000, NULL},
    /* Peers (IPv4 or host names) that may send for any host (PSYC.md §5 rule 1). */
    {"psyc", "trusted", CFG_T_DOMAINS, "", 0, 0, NULL},
    /* [metrics]: Prometheus text over HTTP (gateway/metrics.h); none by default. */
    {"metrics", "listen", CFG_T_ADDRS, "none", 0, 0, NULL},
    /* [dns]: empty server = the system's resolver configuration. */
    {"dns", "server", CFG_T_SERVERS, "", 0, 0, NULL},
    {"dns", "static", CFG_T_STATIC_ROUTES, "", 0, 0, NULL},
    /* Per try and server; c-ares doubles it on every further round, so
     * 5 tries of 30 s would already be 15 minutes: keep both bounded. */
    {"dns", "timeout_ms", CFG_T_UINT, "2000", 10, 30000, NULL},
    {"dns", "tries", CFG_T_UINT, "2", 1, 5, NULL},
    /* [tls] (gateway/tls_cert.c). Empty certificate/key: the pair in
     * <state_dir>/tls/; empty ca_file: the system CA store. */
    {"tls", "certificate", CFG_T_PATH, "", 0, 0, NULL},
    {"tls", "key", CFG_T_PATH, "", 0, 0, NULL},
    {"tls", "ca_file", CFG_T_PATH, "", 0, 0, NULL},
    {"tls", "generate_self_signed", CFG_T_BOOL, "yes", 0, 0, NULL},
    /* [component]: XEP-0114 links to the local XMPP server, one per
     * domain, all to the same host:port with the same secret. No domain:
     * no component face. */
    {"component", "domain", CFG_T_DOMAINS, "", 0, 0, NULL},
    {"component", "host", CFG_T_IP, "127.0.0.1", 0, 0, NULL},
    {"component", "port", CFG_T_UINT, "5347", 1, 65535, NULL},
    {"component", "secret", CFG_T_SECRET, "", 0, 0, NULL},
    /* A stanza waiting for a component link is returned after this many
     * seconds (gateway/bridge_outbox.h). */
    {"component", "give_up", CFG_T_UINT, "600", 1, 7 * 86400, NULL},
    /* [s2s]: the XMPP server-to-server face (RFC 6120, XEP-0220). Empty
     * domain: [gateway] host. `listen = none`: no incoming streams. */
    {"s2s", "listen", CFG_T_ADDRS, "127.0.0.1:5269", 0, 0, NULL},
    {"s2s", "domain", CFG_T_DOMAINS, "", 0, 0, NULL},
    {"s2s", "tls", CFG_T_CHOICE, "optional", 0, 0, "none,optional,required"},
    {"s2s", "idle_timeout", CFG_T_UINT, "600", 0, 7 * 86400, NULL},
    {"s2s", "ping_interval", CFG_T_UINT, "120", 0, 86400, NULL},
    {"s2s", "give_up", CFG_T_UINT, "60", 1, 86400, NULL},
    /* [bridge]: empty transport = natural addresses (routing/addr.h). */
    {"bridge", "transport", CFG_T_DOMAINS, "", 0, 0, NULL},
    /* An iq sent to PSYC without an answer gets remote-server-timeout. */
    {"bridge", "iq_timeout", CFG_T_UINT, "30", 1, 3600, NULL},
    /* [multicast] (issue 7, gateway/mcast_ctx.h): context trees among
     * psycgates. enabled = no: per-recipient fan-out (the bench baseline);
     * fanout: children per tree node; history: packets kept per context
     * for resends. */
    {"multicast", "enabled", CFG_T_BOOL, "yes", 0, 0, NULL},
    {"multicast", "fanout", CFG_T_UINT, "8", 1, 1024, NULL},
    {"multicast", "history", CFG_T_UINT, "1024", 16, 1000000, NULL},
    /* Seconds between membership digests with peer psycgates
     * (gateway/digest_peer.h); 0 = none. */
    {"multicast", "digest_interval", CFG_T_UINT, "300", 0, 86400, NULL},
    /* [places] (issue 7, gateway/place_host.h): places we host. history:
     * messages a late joiner is shown; domain: a served domain whose JIDs
     * ROOM@domain name our places psyc://HOST/@ROOM (natural mode, where
     * our own host is the XMPP server's domain). */
    {"places", "history", CFG_T_UINT, "20", 0, 1000, NULL},
    {"places", "domain", CFG_T_DOMAINS, "", 0, 0, NULL},
    /* Seconds a member server's casts may wait for a circuit before its
     * members leave the place (netsplit, _notice_place_leave_netburp). */
    {"places", "netsplit", CFG_T_UINT, "120", 1, 86400, NULL},
    /* XMPP MUC services behind us whose rooms ROOM@SERVICE PSYC people join
     * as psyc://SERVICE/@ROOM (gateway/place_muc.h). */
    {"places", "muc", CFG_T_DOMAINS, "", 0, 0, NULL},
};

#define CFG_N_KEYS (sizeof cfg_schema / sizeof cfg_schema[0])

typedef struct cfg_value {
    int set;
    unsigned line;       /* where the value was set */
    unsigned seen_line;  /* first line naming the key, valid or not */
    char *str;
    uint64_t num;
    log_level level;
    int flag; /* CFG_T_BOOL */
    cfg_addr *addrs;
    size_t n_addrs;
    cfg_static_route *routes;
    size_t n_routes;
    char **names;    /* CFG_T_DOMAINS: lower case, NULL-terminated */
    size_t n_names;
} cfg_value;

struct cfg {
    char *name;
    cfg_value vals[CFG_N_KEYS];
    cfg_value defs[CFG_N_KEYS];
    cfg_error *errors;
    size_t n_stored, n_errors;
    int oom;
};

/* ------------------------------------------------------------------ */
/* Helpers                                                            */

static char *cfg_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void cfg_value_clear(cfg_value *v)
{
    free(v->str);
    free(v->addrs);
    free(v->routes);
    for (size_t i = 0; i < v->n_names; i++)
        free(v->names[i]);
    free(v->names);
    memset(v, 0, sizeof *v);
}

static void cfg_add_error(cfg *c, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void cfg_add_error(cfg *c, unsigned line, const char *fmt, ...)
{
    c->n_errors++;
    if (c->n_stored >= CFG_MAX_ERRORS)
        return;
    if (!c->errors) {
        c->errors = calloc(CFG_MAX_ERRORS, sizeof *c->errors);
        if (!c->errors) {
            c->oom = 1;
            return;
        }
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *msg = cfg_strndup(buf, strlen(buf));
    if (!msg) {
        c->oom = 1;
        return;
    }
    c->errors[c->n_stored].line = line;
    c->errors[c->n_stored].msg = msg;
    c->n_stored++;
}

/* Quotes a piece of the file for an error message: at most 60 bytes,
 * non-printable bytes as '?', so a message stays one readable line. */
static const char *cfg_quote(const char *s, size_t n, char *buf, size_t size)
{
    size_t max = size - 4;
    if (max > 60)
        max = 60;
    size_t i;
    for (i = 0; i < n && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[i] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
    }
    if (i < n) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

static int cfg_is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* The next item of a list value (PSYC listen addresses, DNS servers, static
 * routes, component domains): separators are ',' and blanks, items end at
 * any byte of `stops` and lose trailing blanks. NULL at the end. */
static const char *cfg_list_next(const char **cursor, const char *stops, size_t *len)
{
    const char *p = *cursor;
    while (*p == ',' || cfg_is_blank(*p))
        p++;
    if (!*p)
        return NULL;
    size_t n = strcspn(p, stops);
    *cursor = p + n;
    while (n && cfg_is_blank(p[n - 1]))
        n--;
    *len = n;
    return p;
}

static int cfg_is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.';
}

static int cfg_name_eq(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(s, name, n) == 0;
}

static int cfg_find_key(const char *section, size_t sn, const char *key, size_t kn)
{
    for (size_t i = 0; i < CFG_N_KEYS; i++)
        if (cfg_name_eq(section, sn, cfg_schema[i].section) &&
            cfg_name_eq(key, kn, cfg_schema[i].key))
            return (int)i;
    return -1;
}

static int cfg_section_known(const char *s, size_t n)
{
    for (size_t i = 0; i < CFG_N_KEYS; i++)
        if (cfg_name_eq(s, n, cfg_schema[i].section))
            return 1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Addresses                                                          */

static int cfg_parse_port(const char *s, uint16_t *out)
{
    if (!*s)
        return -1;
    unsigned long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > 65535)
            return -1;
    }
    if (v == 0)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int cfg_addr_parse(const char *s, cfg_addr *out, const char **why)
{
    const char *ip, *port;
    size_t iplen;
    memset(out, 0, sizeof *out);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close) {
            *why = "missing ']' after IPv6 address";
            return -1;
        }
        if (close[1] != ':') {
            *why = "expected ':PORT' after ']'";
            return -1;
        }
        ip = s + 1;
        iplen = (size_t)(close - ip);
        port = close + 2;
        out->family = AF_INET6;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon) {
            *why = "expected ADDRESS:PORT";
            return -1;
        }
        if (memchr(s, ':', (size_t)(colon - s))) {
            *why = "IPv6 addresses are written in brackets, as in [::1]:4404";
            return -1;
        }
        ip = s;
        iplen = (size_t)(colon - s);
        port = colon + 1;
        out->family = AF_INET;
    }
    if (iplen == 0 || iplen >= sizeof out->ip) {
        *why = "missing or overlong address";
        return -1;
    }
    memcpy(out->ip, ip, iplen);
    out->ip[iplen] = '\0';
    unsigned char bin[sizeof(struct in6_addr)];
    if (inet_pton(out->family, out->ip, bin) != 1) {
        *why = out->family == AF_INET6 ? "not a numeric IPv6 address"
                                       : "not a numeric IPv4 address (host names are not resolved here)";
        return -1;
    }
    if (cfg_parse_port(port, &out->port) != 0) {
        *why = "port must be a number from 1 to 65535";
        return -1;
    }
    return 0;
}

const char *cfg_addr_format(const cfg_addr *a, char *buf, size_t size)
{
    if (a->family == AF_INET6)
        snprintf(buf, size, "[%s]:%u", a->ip, (unsigned)a->port);
    else
        snprintf(buf, size, "%s:%u", a->ip, (unsigned)a->port);
    return buf;
}

/* ------------------------------------------------------------------ */
/* [dns]: resolver addresses and static routes                        */

/* Parses one resolver address: "1.2.3.4", "1.2.3.4:53", "::1", "[::1]" or
 * "[::1]:5353". The port defaults to 53. 0 ok, -1 with *why set. */
static int cfg_server_parse(const char *s, cfg_addr *out, const char **why)
{
    const char *colon = strchr(s, ':');
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close && close[1] == '\0') {
            /* "[ip6]" without a port */
            char tmp[64];
            size_t n = (size_t)(close - s - 1);
            if (n == 0 || n >= sizeof tmp - 8) {
                *why = "missing or overlong address";
                return -1;
            }
            snprintf(tmp, sizeof tmp, "[%.*s]:53", (int)n, s + 1);
            return cfg_addr_parse(tmp, out, why);
        }
        return cfg_addr_parse(s, out, why);
    }
    if (colon && strchr(colon + 1, ':')) {
        /* A bare IPv6 address (two colons or more): no port possible. */
        char tmp[64];
        if (strlen(s) >= sizeof tmp - 8) {
            *why = "missing or overlong address";
            return -1;
        }
        snprintf(tmp, sizeof tmp, "[%s]:53", s);
        return cfg_addr_parse(tmp, out, why);
    }
    if (!colon) {
        char tmp[64];
        if (strlen(s) >= sizeof tmp - 4) {
            *why = "missing or overlong address";
            return -1;
        }
        snprintf(tmp, sizeof tmp, "%s:53", s);
        return cfg_addr_parse(tmp, out, why);
    }
    return cfg_addr_parse(s, out, why);
}

/* "[dns] server": numeric resolver addresses, comma or blank separated; an
 * empty value means the system's resolver configuration. */
/* A list of numeric addresses (listen addresses, DNS servers): at most
 * `max`, each parsed by `parse`, none twice. `noun` names an item in the
 * errors ("address", "server"). An empty list is left to the caller. */
static int cfg_parse_addr_list(const char *s, cfg_value *v, size_t max,
                               int (*parse)(const char *, cfg_addr *, const char **),
                               const char *noun, char *why, size_t whysz)
{
    cfg_addr *addrs = NULL;
    size_t count = 0;
    const char *cursor = s, *p;
    size_t len;
    while ((p = cfg_list_next(&cursor, ", \t", &len)) != NULL) {
        char item[96], q[80];
        const char *reason = NULL;
        if (count == max)
            snprintf(why, whysz, "more than %zu %ss", max, noun);
        else if (len >= sizeof item)
            snprintf(why, whysz, "%s too long", noun);
        if (count == max || len >= sizeof item)
            goto fail;
        memcpy(item, p, len);
        item[len] = '\0';
        if (!addrs && !(addrs = calloc(max, sizeof *addrs)))
            return -2;
        if (parse(item, &addrs[count], &reason) != 0) {
            snprintf(why, whysz, "bad %s '%s': %s", noun, cfg_quote(item, len, q, sizeof q), reason);
            goto fail;
        }
        for (size_t j = 0; j < count; j++) {
            if (addrs[j].family == addrs[count].family && addrs[j].port == addrs[count].port &&
                strcmp(addrs[j].ip, addrs[count].ip) == 0) {
                snprintf(why, whysz, "%s '%s' listed twice", noun, cfg_quote(item, len, q, sizeof q));
                goto fail;
            }
        }
        count++;
    }
    v->addrs = addrs;
    v->n_addrs = count;
    return 0;
fail:
    free(addrs);
    return -1;
}

static int cfg_parse_servers(const char *s, cfg_value *v, char *why, size_t whysz)
{
    return cfg_parse_addr_list(s, v, CFG_MAX_DNS_SERVERS, cfg_server_parse, "server", why, whysz);
}

/* A DNS name as used in JIDs and uniforms after IDNA (RFC 1035 §2.3.4:
 * labels of 1..63 bytes, 253 bytes in all; letters, digits, '-'). */
static int cfg_dns_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-';
        if (!ok || (ch == '-' && label == 0) || ++label > 63)
            return 0;
    }
    return label > 0 && s[n - 1] != '-';
}

/* All digits and dots must be an IPv4 address (no top-level domain is
 * numeric), so "1.2.3.999" is refused rather than looked up in the DNS. */
static int cfg_numeric_ok(const char *s, size_t n)
{
    char ip[16];
    struct in_addr a;
    if (strspn(s, "0123456789.") < n)
        return 1;
    if (n >= sizeof ip)
        return 0;
    memcpy(ip, s, n);
    ip[n] = '\0';
    return inet_pton(AF_INET, ip, &a) == 1;
}

static void cfg_lower_copy(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] - 'A' + 'a') : src[i];
    dst[n] = '\0';
}

/* One "DOMAIN=HOST[:PORT]" item (blanks around '=' allowed). HOST is a DNS
 * name, an IPv4 address or a bracketed IPv6 address. 0 ok, -1 with why. */
static int cfg_static_route_parse(const char *s, size_t n, cfg_static_route *r, char *why,
                                  size_t whysz)
{
    char q[80];
    const char *eq = memchr(s, '=', n);
    if (!eq) {
        snprintf(why, whysz, "bad static route '%s': expected DOMAIN=HOST[:PORT]",
                 cfg_quote(s, n, q, sizeof q));
        return -1;
    }
    size_t dn = (size_t)(eq - s);
    while (dn && cfg_is_blank(s[dn - 1]))
        dn--;
    const char *h = eq + 1;
    size_t hn = n - (size_t)(h - s);
    while (hn && cfg_is_blank(*h))
        h++, hn--;
    if (!cfg_dns_name_ok(s, dn)) {
        snprintf(why, whysz, "bad static route '%s': the domain is not a DNS name",
                 cfg_quote(s, n, q, sizeof q));
        return -1;
    }
    memset(r, 0, sizeof *r);
    cfg_lower_copy(r->domain, s, dn);

    /* Split HOST and the optional PORT. */
    const char *hostp = h, *portp = NULL;
    size_t hostn = hn, portn = 0;
    if (hn && h[0] == '[') {
        const char *close = memchr(h, ']', hn);
        if (!close) {
            snprintf(why, whysz, "bad static route '%s': missing ']'", cfg_quote(s, n, q, sizeof q));
            return -1;
        }
        hostp = h + 1;
        hostn = (size_t)(close - hostp);
        size_t rest = hn - (size_t)(close + 1 - h);
        if (rest) {
            if (close[1] != ':') {
                snprintf(why, whysz, "bad static route '%s': expected ':PORT' after ']'",
                         cfg_quote(s, n, q, sizeof q));
                return -1;
            }
            portp = close + 2;
            portn = rest - 1;
        }
        char ip[64];
        unsigned char bin[sizeof(struct in6_addr)];
        if (hostn == 0 || hostn >= sizeof ip) {
            snprintf(why, whysz, "bad static route '%s': bad IPv6 address", cfg_quote(s, n, q, sizeof q));
            return -1;
        }
        memcpy(ip, hostp, hostn);
        ip[hostn] = '\0';
        if (inet_pton(AF_INET6, ip, bin) != 1) {
            snprintf(why, whysz, "bad static route '%s': not a numeric IPv6 address",
                     cfg_quote(s, n, q, sizeof q));
            return -1;
        }
    } else {
        const char *colon = memchr(h, ':', hn);
        if (colon) {
            hostn = (size_t)(colon - h);
            portp = colon + 1;
            portn = hn - hostn - 1;
            if (memchr(portp, ':', portn)) {
                snprintf(why, whysz, "bad static route '%s': IPv6 addresses are written in brackets",
                         cfg_quote(s, n, q, sizeof q));
                return -1;
            }
        }
        if (!cfg_dns_name_ok(hostp, hostn) || !cfg_numeric_ok(hostp, hostn)) {
            snprintf(why, whysz, "bad static route '%s': host is not a DNS name or IPv4 address",
                     cfg_quote(s, n, q, sizeof q));
            return -1;
        }
    }
    cfg_lower_copy(r->host, hostp, hostn);
    if (portp) {
        char port[8];
        if (portn == 0 || portn >= sizeof port) {
            snprintf(why, whysz, "bad static route '%s': port must be a number from 1 to 65535",
                     cfg_quote(s, n, q, sizeof q));
            return -1;
        }
        memcpy(port, portp, portn);
        port[portn] = '\0';
        if (cfg_parse_port(port, &r->port) != 0) {
            snprintf(why, whysz, "bad static route '%s': port must be a number from 1 to 65535",
                     cfg_quote(s, n, q, sizeof q));
            return -1;
        }
    }
    return 0;
}

/* "[dns] static": comma separated DOMAIN=HOST[:PORT] items; may be empty. */
static int cfg_parse_static_routes(const char *s, cfg_value *v, char *why, size_t whysz)
{
    cfg_static_route *routes = NULL;
    size_t count = 0;
    const char *cursor = s, *p;
    size_t len;
    while ((p = cfg_list_next(&cursor, ",", &len)) != NULL) {
        if (count == CFG_MAX_STATIC_ROUTES) {
            snprintf(why, whysz, "more than %d static routes", CFG_MAX_STATIC_ROUTES);
            free(routes);
            return -1;
        }
        if (!routes) {
            routes = calloc(CFG_MAX_STATIC_ROUTES, sizeof *routes);
            if (!routes)
                return -2;
        }
        if (cfg_static_route_parse(p, len, &routes[count], why, whysz) != 0) {
            free(routes);
            return -1;
        }
        for (size_t j = 0; j < count; j++) {
            if (strcmp(routes[j].domain, routes[count].domain) == 0) {
                /* %.64s: the reason must fit the error line; the domain is
                 * still recognisable */
                snprintf(why, whysz, "static route for '%.64s' given twice", routes[count].domain);
                free(routes);
                return -1;
            }
        }
        count++;
    }
    v->routes = routes;
    v->n_routes = count;
    return 0;
}

/* ------------------------------------------------------------------ */
/* [component]: domains and the server's address                      */

#define CFG_MAX_DOMAINS 64

/* "[component] domain": DNS names, comma or blank separated, lower-cased,
 * each once; empty means no component link. */
static int cfg_parse_domains(const char *s, cfg_value *v, char *why, size_t whysz)
{
    char **names = NULL;
    size_t count = 0;
    const char *cursor = s, *p;
    size_t len;
    while ((p = cfg_list_next(&cursor, ", \t", &len)) != NULL) {
        char q[80];
        if (count == CFG_MAX_DOMAINS) {
            snprintf(why, whysz, "more than %d domains", CFG_MAX_DOMAINS);
            goto fail;
        }
        if (!cfg_dns_name_ok(p, len)) {
            snprintf(why, whysz, "'%s' is not a DNS name", cfg_quote(p, len, q, sizeof q));
            goto fail;
        }
        if (!names) {
            names = calloc(CFG_MAX_DOMAINS + 1, sizeof *names);
            if (!names)
                return -2;
        }
        names[count] = malloc(len + 1);
        if (!names[count]) {
            for (size_t j = 0; j < count; j++)
                free(names[j]);
            free(names);
            return -2;
        }
        cfg_lower_copy(names[count], p, len);
        for (size_t j = 0; j < count; j++) {
            if (strcmp(names[j], names[count]) == 0) {
                snprintf(why, whysz, "domain '%.64s' listed twice", names[count]);
                count++;
                goto fail;
            }
        }
        count++;
    }
    v->names = names;
    v->n_names = count;
    return 0;
fail:
    for (size_t j = 0; j < count; j++)
        free(names[j]);
    free(names);
    return -1;
}

/* "[component] host": numeric only, so connecting needs no DNS (the XMPP
 * server is local, XEP-0114 §2). */
static int cfg_parse_ip(const char *s, cfg_value *v, char *why, size_t whysz)
{
    unsigned char bin[sizeof(struct in6_addr)];
    if (strlen(s) >= sizeof(((cfg_addr *)0)->ip) ||
        (inet_pton(AF_INET, s, bin) != 1 && inet_pton(AF_INET6, s, bin) != 1)) {
        snprintf(why, whysz, "expected a numeric IPv4 or IPv6 address (no brackets, no host name)");
        return -1;
    }
    v->str = cfg_strndup(s, strlen(s));
    return v->str ? 0 : -2;
}

/* ------------------------------------------------------------------ */
/* [tls] types: paths and yes/no                                      */

static int cfg_parse_path_or_bool(const cfg_key_def *d, const char *s, cfg_value *v, char *why,
                                  size_t whysz)
{
    size_t n = strlen(s);
    if (d->type == CFG_T_BOOL) {
        static const char *const yes[] = {"yes", "true", "on", "1"};
        static const char *const no[] = {"no", "false", "off", "0"};
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
            if (strcasecmp(s, yes[i]) == 0) {
                v->flag = 1;
                return 0;
            }
            if (strcasecmp(s, no[i]) == 0) {
                v->flag = 0;
                return 0;
            }
        }
        snprintf(why, whysz, "expected yes or no");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            snprintf(why, whysz, "control character in value");
            return -1;
        }
    /* An empty path is kept as "", so getters never return NULL. */
    v->str = cfg_strndup(s, n);
    return v->str ? 0 : -2;
}

/* One word out of d->choices, compared exactly: "Optional" is as much a
 * typo as "optinal". v->num is its index in the list. */
static int cfg_parse_choice(const cfg_key_def *d, const char *s, cfg_value *v, char *why,
                            size_t whysz)
{
    size_t n = strlen(s), len;
    const char *cursor = d->choices, *p;
    for (uint64_t i = 0; (p = cfg_list_next(&cursor, ",", &len)) != NULL; i++) {
        if (len == n && memcmp(p, s, n) == 0) {
            v->num = i;
            v->str = cfg_strndup(s, n);
            return v->str ? 0 : -2;
        }
    }
    snprintf(why, whysz, "expected one of: %s", d->choices);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Values                                                             */

/* Parses `s` (NUL-terminated, trimmed) for key d into v.
 * 0 ok, -1 invalid (why filled), -2 out of memory. */
static int cfg_parse_value(const cfg_key_def *d, const char *s, cfg_value *v, char *why,
                           size_t whysz)
{
    if (d->type == CFG_T_PATH || d->type == CFG_T_BOOL || d->type == CFG_T_SECRET)
        return cfg_parse_path_or_bool(d, s, v, why, whysz);
    if (d->type == CFG_T_DOMAINS)
        return cfg_parse_domains(s, v, why, whysz);
    size_t n = strlen(s);
    if (n == 0 && d->type != CFG_T_SERVERS && d->type != CFG_T_STATIC_ROUTES) {
        snprintf(why, whysz, "empty value");
        return -1;
    }
    switch (d->type) {
    case CFG_T_PATH:
    case CFG_T_BOOL:
    case CFG_T_SECRET:
    case CFG_T_DOMAINS:
        break; /* parsed above */
    case CFG_T_IP:
        return cfg_parse_ip(s, v, why, whysz);
    case CFG_T_STR:
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
                snprintf(why, whysz, "control character in value");
                return -1;
            }
        break;
    case CFG_T_HOST: {
        /* The host goes into uniforms (psyc://HOST/, PSYC.md §3.1) and, later,
         * into DNS checks by peers (PSYC.md §5): a plain DNS name or IPv4. */
        if (n > 253) {
            snprintf(why, whysz, "host name longer than 253 bytes");
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            char ch = s[i];
            int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';
            if (!ok) {
                snprintf(why, whysz, "host must be a DNS name or IPv4 address (letters, digits, '-', '.')");
                return -1;
            }
        }
        if (s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || s[n - 1] == '-' || strstr(s, "..")) {
            snprintf(why, whysz, "host name has an empty or badly delimited label");
            return -1;
        }
        break;
    }
    case CFG_T_UINT: {
        uint64_t val = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9') {
                snprintf(why, whysz, "expected a non-negative decimal number");
                return -1;
            }
            unsigned dgt = (unsigned)(s[i] - '0');
            if (val > (UINT64_MAX - dgt) / 10) {
                snprintf(why, whysz, "number too large");
                return -1;
            }
            val = val * 10 + dgt;
        }
        if (val < d->min || val > d->max) {
            snprintf(why, whysz, "must be between %llu and %llu", (unsigned long long)d->min,
                     (unsigned long long)d->max);
            return -1;
        }
        v->num = val;
        return 0;
    }
    case CFG_T_LOG_LEVEL:
        if (log_level_parse(s, &v->level) != 0) {
            snprintf(why, whysz, "log level must be error, warn, info or debug");
            return -1;
        }
        return 0;
    case CFG_T_ADDRS: {
        if (d->min == 0 && strcmp(s, "none") == 0)
            return 0; /* no address: the listener is off */
        int rc = cfg_parse_addr_list(s, v, CFG_MAX_LISTEN, cfg_addr_parse, "address", why, whysz);
        if (rc == 0 && v->n_addrs == 0) {
            snprintf(why, whysz, "no address given");
            return -1;
        }
        return rc;
    }
    case CFG_T_SERVERS:
        return cfg_parse_servers(s, v, why, whysz);
    case CFG_T_STATIC_ROUTES:
        return cfg_parse_static_routes(s, v, why, whysz);
    case CFG_T_CHOICE:
        return cfg_parse_choice(d, s, v, why, whysz);
    }
    v->str = cfg_strndup(s, n);
    return v->str ? 0 : -2;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */

cfg *cfg_new(void)
{
    cfg *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    for (size_t i = 0; i < CFG_N_KEYS; i++) {
        char why[160];
        /* Defaults go through the same validation as file values, so a
         * default that the parser would reject is caught by every test. */
        if (cfg_parse_value(&cfg_schema[i], cfg_schema[i].def, &c->defs[i], why, sizeof why) != 0) {
            cfg_free(c);
            return NULL;
        }
    }
    return c;
}

void cfg_free(cfg *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CFG_N_KEYS; i++) {
        cfg_value_clear(&c->vals[i]);
        cfg_value_clear(&c->defs[i]);
    }
    for (size_t i = 0; i < c->n_stored; i++)
        free(c->errors[i].msg);
    free(c->errors);
    free(c->name);
    free(c);
}

/* ------------------------------------------------------------------ */
/* Parser                                                             */

typedef struct cfg_parse_state {
    const char *section; /* view into the buffer; NULL before the first header */
    size_t section_len;
    int section_known;
} cfg_parse_state;

static void cfg_parse_line(cfg *c, cfg_parse_state *st, unsigned lineno, const char *s, size_t n)
{
    char q[80];

    if (memchr(s, '\0', n)) {
        cfg_add_error(c, lineno, "NUL byte in line");
        return;
    }
    if (n && s[n - 1] == '\r')
        n--;
    while (n && cfg_is_blank(*s))
        s++, n--;
    while (n && cfg_is_blank(s[n - 1]))
        n--;
    if (n == 0 || s[0] == '#' || s[0] == ';')
        return;

    if (s[0] == '[') {
        /* "[name]" with an optional trailing comment. */
        const char *close = memchr(s, ']', n);
        if (!close) {
            cfg_add_error(c, lineno, "section header without ']': '%s'", cfg_quote(s, n, q, sizeof q));
            st->section = NULL;
            st->section_known = 1; /* keys after a broken header: not reported again */
            return;
        }
        const char *name = s + 1;
        size_t nl = (size_t)(close - name);
        while (nl && cfg_is_blank(*name))
            name++, nl--;
        while (nl && cfg_is_blank(name[nl - 1]))
            nl--;
        const char *rest = close + 1;
        size_t rn = n - (size_t)(rest - s);
        while (rn && cfg_is_blank(*rest))
            rest++, rn--;
        if (rn && rest[0] != '#' && rest[0] != ';') {
            cfg_add_error(c, lineno, "unexpected text after section header: '%s'",
                          cfg_quote(rest, rn, q, sizeof q));
        }
        int valid = nl > 0;
        for (size_t i = 0; i < nl; i++)
            if (!cfg_is_name_char(name[i]))
                valid = 0;
        if (!valid) {
            cfg_add_error(c, lineno, "invalid section name '%s'", cfg_quote(name, nl, q, sizeof q));
            st->section = NULL;
            st->section_known = 1;
            return;
        }
        st->section = name;
        st->section_len = nl;
        st->section_known = cfg_section_known(name, nl);
        if (!st->section_known) {
            /* One error for the section; its keys are skipped silently
             * rather than reported one by one. */
            cfg_add_error(c, lineno, "unknown section [%s]", cfg_quote(name, nl, q, sizeof q));
        }
        return;
    }

    const char *eq = memchr(s, '=', n);
    if (!eq) {
        cfg_add_error(c, lineno, "expected 'key = value' or '[section]', got '%s'",
                      cfg_quote(s, n, q, sizeof q));
        return;
    }
    const char *key = s;
    size_t kn = (size_t)(eq - s);
    while (kn && cfg_is_blank(key[kn - 1]))
        kn--;
    if (kn == 0) {
        cfg_add_error(c, lineno, "missing key name before '='");
        return;
    }
    for (size_t i = 0; i < kn; i++) {
        if (!cfg_is_name_char(key[i])) {
            cfg_add_error(c, lineno, "invalid key name '%s'", cfg_quote(key, kn, q, sizeof q));
            return;
        }
    }
    if (!st->section) {
        if (st->section_known) /* after a broken header: already reported */
            return;
        cfg_add_error(c, lineno, "key '%s' outside of any [section]", cfg_quote(key, kn, q, sizeof q));
        return;
    }
    if (!st->section_known)
        return;

    const char *val = eq + 1;
    size_t vn = n - (size_t)(val - s);
    while (vn && cfg_is_blank(*val))
        val++, vn--;
    /* Inline comment: '#' or ';' preceded by a blank (or at the start of the
     * value), so values may still contain those characters. */
    for (size_t i = 0; i < vn; i++) {
        if ((val[i] == '#' || val[i] == ';') && (i == 0 || cfg_is_blank(val[i - 1]))) {
            vn = i;
            break;
        }
    }
    while (vn && cfg_is_blank(val[vn - 1]))
        vn--;

    int idx = cfg_find_key(st->section, st->section_len, key, kn);
    if (idx < 0) {
        char qs[80];
        cfg_add_error(c, lineno, "unknown key '%s' in section [%s]", cfg_quote(key, kn, q, sizeof q),
                      cfg_quote(st->section, st->section_len, qs, sizeof qs));
        return;
    }
    cfg_value *v = &c->vals[idx];
    if (v->seen_line) {
        cfg_add_error(c, lineno, "duplicate key '%s' (first set on line %u)", cfg_schema[idx].key,
                      v->seen_line);
        return;
    }
    v->seen_line = lineno;

    char *text = cfg_strndup(val, vn);
    if (!text) {
        c->oom = 1;
        return;
    }
    char why[256];
    cfg_value nv;
    memset(&nv, 0, sizeof nv);
    int rc = cfg_parse_value(&cfg_schema[idx], text, &nv, why, sizeof why);
    free(text);
    if (rc == -2) {
        c->oom = 1;
        return;
    }
    if (rc != 0) {
        cfg_add_error(c, lineno, "[%s] %s: %s", cfg_schema[idx].section, cfg_schema[idx].key, why);
        return;
    }
    nv.set = 1;
    nv.line = lineno;
    nv.seen_line = lineno;
    *v = nv;
}

/* 0.0.0.0 / :: : binds every address of its family, so it collides with
 * any other address on the same port (listener.c binds IPv6 v6-only). */
static int cfg_addr_is_any(const cfg_addr *a)
{
    return strcmp(a->ip, "0.0.0.0") == 0 || strcmp(a->ip, "::") == 0;
}

/* Checks between keys, after the whole file is read; errors point at the
 * line of the second key involved. */
static void cfg_validate(cfg *c)
{
    int ic = cfg_find_key("tls", 3, "certificate", 11), ik = cfg_find_key("tls", 3, "key", 3);
    const cfg_value *vc = &c->vals[ic], *vk = &c->vals[ik];
    int has_c = vc->set && vc->str[0], has_k = vk->set && vk->str[0];
    if (has_c != has_k) {
        /* One alone would pair an operator's file with the generated
         * default of the other. */
        cfg_add_error(c, has_c ? vc->line : vk->line,
                      "[tls] certificate and key must be set together (or both left empty)");
    }

    /* A port given to both PSYC listeners could never be bound twice. */
    int il = cfg_find_key("psyc", 4, "listen", 6), it = cfg_find_key("psyc", 4, "listen_tls", 10);
    const cfg_value *vl = c->vals[il].set ? &c->vals[il] : &c->defs[il];
    const cfg_value *vt = c->vals[it].set ? &c->vals[it] : &c->defs[it];
    for (size_t i = 0; i < vt->n_addrs; i++) {
        for (size_t j = 0; j < vl->n_addrs; j++) {
            const cfg_addr *a = &vt->addrs[i], *b = &vl->addrs[j];
            if (a->family == b->family && a->port == b->port &&
                (strcmp(a->ip, b->ip) == 0 || cfg_addr_is_any(a) || cfg_addr_is_any(b))) {
                char ba[64], bb[64];
                cfg_add_error(c, c->vals[it].set ? c->vals[it].line : c->vals[il].line,
                              "[psyc] listen_tls: %s overlaps %s in [psyc] listen",
                              cfg_addr_format(a, ba, sizeof ba), cfg_addr_format(b, bb, sizeof bb));
                return;
            }
        }
    }

    /* XEP-0114 §3: the handshake needs the shared secret; without one every
     * link would be refused by the server. */
    int idom = cfg_find_key("component", 9, "domain", 6), isec = cfg_find_key("component", 9, "secret", 6);
    const cfg_value *vd = &c->vals[idom], *vs = &c->vals[isec];
    if (vd->set && vd->n_names > 0 && !(vs->set && vs->str[0]))
        cfg_add_error(c, vd->line, "[component] domain needs [component] secret");
}

int cfg_parse_buffer(cfg *c, const char *name, const char *data, size_t len)
{
    free(c->name);
    c->name = cfg_strndup(name ? name : "<memory>", strlen(name ? name : "<memory>"));
    if (!c->name)
        return -2;

    cfg_parse_state st = {NULL, 0, 0};
    unsigned lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *line = data + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        if (lineno < UINT32_MAX)
            lineno++;
        cfg_parse_line(c, &st, lineno, line, n);
        if (c->oom)
            return -2;
        pos += n + (nl ? 1 : 0);
    }
    if (!c->oom)
        cfg_validate(c);
    if (c->oom)
        return -2;
    return c->n_errors ? -1 : 0;
}

int cfg_parse_file(cfg *c, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        free(c->name);
        c->name = cfg_strndup(path, strlen(path));
        cfg_add_error(c, 0, "cannot open: %s", strerror(errno));
        return c->oom || !c->name ? -2 : -1;
    }
    char *buf = malloc(CFG_MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        return -2;
    }
    size_t n = fread(buf, 1, CFG_MAX_FILE + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr || n > CFG_MAX_FILE) {
        free(buf);
        free(c->name);
        c->name = cfg_strndup(path, strlen(path));
        if (rerr)
            cfg_add_error(c, 0, "read error");
        else
            cfg_add_error(c, 0, "file larger than %zu bytes", CFG_MAX_FILE);
        return c->oom || !c->name ? -2 : -1;
    }
    int rc = cfg_parse_buffer(c, path, buf, n);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Errors and getters                                                 */

size_t cfg_error_count(const cfg *c)
{
    return c->n_errors;
}

const cfg_error *cfg_error_at(const cfg *c, size_t i)
{
    return i < c->n_stored ? &c->errors[i] : NULL;
}

size_t cfg_print_errors(const cfg *c, FILE *f)
{
    const char *name = c->name ? c->name : "<config>";
    for (size_t i = 0; i < c->n_stored; i++) {
        if (c->errors[i].line)
            fprintf(f, "%s:%u: %s\n", name, c->errors[i].line, c->errors[i].msg);
        else
            fprintf(f, "%s: %s\n", name, c->errors[i].msg);
    }
    if (c->n_errors > c->n_stored)
        fprintf(f, "%s: ... and %zu more errors\n", name, c->n_errors - c->n_stored);
    return c->n_stored;
}

static const cfg_value *cfg_lookup(const cfg *c, const char *section, const char *key, cfg_type type)
{
    int idx = cfg_find_key(section, strlen(section), key, strlen(key));
    /* A getter that names no schema entry (or the wrong type) is a bug in
     * the caller; host names are strings too. */
    if (idx < 0)
        return NULL;
    cfg_type have = cfg_schema[idx].type;
    if (have != type &&
        !(type == CFG_T_STR && (have == CFG_T_HOST || have == CFG_T_PATH || have == CFG_T_IP ||
                                have == CFG_T_SECRET || have == CFG_T_CHOICE)))
        return NULL;
    return c->vals[idx].set ? &c->vals[idx] : &c->defs[idx];
}

const char *cfg_get_str(const cfg *c, const char *section, const char *key)
{
    const cfg_value *v = cfg_lookup(c, section, key, CFG_T_STR);
    return v ? v->str : NULL;
}

uint64_t cfg_get_uint(const cfg *c, const char *section, const char *key)
{
    const cfg_value *v = cfg_lookup(c, section, key, CFG_T_UINT);
    return v ? v->num : 0;
}

log_level cfg_get_log_level(const cfg *c, const char *section, const char *key)
{
    const cfg_value *v = cfg_lookup(c, section, key, CFG_T_LOG_LEVEL);
    return v ? v->level : LOG_LEVEL_INFO;
}

size_t cfg_get_addrs(const cfg *c, const char *section, const char *key, const cfg_addr **out)
{
    const cfg_value *v = cfg_lookup(c, section, key, CFG_T_ADDRS);
    *out = v ? v->addrs : NULL;
    return v ? v->n_addrs : 0;
}

int cfg_is_set(const cfg *c, const char *section, const char *key)
{
    int idx = cfg_find_key(section, strlen(section), key, strlen(key));
    return idx >= 0 && c->vals[idx].set;
}

unsigned cfg_line_of(const cfg *c, const char *section, const char *key)
{
    int idx = cfg_find_key(section, strlen(section), key, strlen(key));
    return idx >= 0 && c->vals[idx].set ? c->vals[idx].line : 0;
}

/* Getters for the [dns] types. They look the key up themselves rather than
 * through cfg_lookup, whose type check knows only the older types. */
static const cfg_value *cfg_lookup_type(const cfg *c, const char *section, const char *key,
                                        cfg_type type)
{
    int idx = cfg_find_key(section, strlen(section), key, strlen(key));
    if (idx < 0 || cfg_schema[idx].type != type)
        return NULL;
    return c->vals[idx].set ? &c->vals[idx] : &c->defs[idx];
}

size_t cfg_get_servers(const cfg *c, const char *section, const char *key, const cfg_addr **out)
{
    const cfg_value *v = cfg_lookup_type(c, section, key, CFG_T_SERVERS);
    *out = v ? v->addrs : NULL;
    return v ? v->n_addrs : 0;
}

size_t cfg_get_static_routes(const cfg *c, const char *section, const char *key,
                             const cfg_static_route **out)
{
    const cfg_value *v = cfg_lookup_type(c, section, key, CFG_T_STATIC_ROUTES);
    *out = v ? v->routes : NULL;
    return v ? v->n_routes : 0;
}

int cfg_get_bool(const cfg *c, const char *section, const char *key)
{
    const cfg_value *v = cfg_lookup(c, section, key, CFG_T_BOOL);
    return v ? v->flag : 0;
}

size_t cfg_get_domains(const cfg *c, const char *section, const char *key, const char *const **out)
{
    const cfg_value *v = cfg_lookup_type(c, section, key, CFG_T_DOMAINS);
    static const char *const none[] = {NULL};
    *out = v && v->names ? (const char *const *)v->names : none;
    return v ? v->n_names : 0;
}

unsigned cfg_get_choice(const cfg *c, const char *section, const char *key)
{
    const cfg_value *v = cfg_lookup(c, section, key, CFG_T_CHOICE);
    return v ? (unsigned)v->num : 0;
}
