/*
 * s2s_common.c: the parts the stream machines (s2s_in.c, s2s_out.c,
 * component.c) share: action queue, output, log lines, domain names, ids,
 * base64, certificate name matching and dialback elements.
 */
#include "xmpp/s2s_int.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmpp/jid.h"

char *s2s_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* ---- actions ------------------------------------------------------------ */

void s2s_action_clear(s2s_action *a)
{
    if (!a)
        return;
    free(a->from);
    free(a->to);
    free(a->id);
    free(a->key);
    free(a->text);
    xml_node_free(a->stanza);
    memset(a, 0, sizeof *a);
}

const char *s2s_action_kind_name(s2s_action_kind k)
{
    static const char *const names[] = {
        [S2S_ACT_NONE] = "NONE",
        [S2S_ACT_START_TLS] = "START_TLS",
        [S2S_ACT_VERIFY_KEY] = "VERIFY_KEY",
        [S2S_ACT_VERIFY_RESULT] = "VERIFY_RESULT",
        [S2S_ACT_STANZA] = "STANZA",
        [S2S_ACT_AUTHENTICATED] = "AUTHENTICATED",
        [S2S_ACT_AUTH_FAILED] = "AUTH_FAILED",
        [S2S_ACT_BOUNCE] = "BOUNCE",
        [S2S_ACT_CLOSE] = "CLOSE",
        [S2S_ACT_LOG] = "LOG",
    };
    if ((unsigned)k >= sizeof names / sizeof names[0])
        return "?";
    return names[k];
}

int s2s_push(s2s_base *b, const s2s_action *a)
{
    if (b->qhead + b->qn == b->qcap) {
        if (b->qhead > 0) { /* slide the live part to the front */
            memmove(b->q, b->q + b->qhead, b->qn * sizeof *b->q);
            b->qhead = 0;
        }
        if (b->qn == b->qcap) {
            size_t cap = b->qcap ? b->qcap * 2 : 8;
            s2s_action *nq = realloc(b->q, cap * sizeof *nq);
            if (!nq)
                goto oom;
            b->q = nq;
            b->qcap = cap;
        }
    }
    s2s_action c = *a;
    c.from = s2s_strdup(a->from);
    c.to = s2s_strdup(a->to);
    c.id = s2s_strdup(a->id);
    c.key = s2s_strdup(a->key);
    c.text = s2s_strdup(a->text);
    if ((a->from && !c.from) || (a->to && !c.to) || (a->id && !c.id) || (a->key && !c.key) ||
        (a->text && !c.text)) {
        s2s_action_clear(&c); /* frees the stanza too */
        b->nomem = 1;
        return -1;
    }
    b->q[b->qhead + b->qn++] = c;
    return 0;
oom:
    xml_node_free(a->stanza);
    b->nomem = 1;
    return -1;
}

int s2s_pop(s2s_base *b, s2s_action *out)
{
    if (b->qn == 0) {
        memset(out, 0, sizeof *out);
        return 0;
    }
    *out = b->q[b->qhead++];
    if (--b->qn == 0)
        b->qhead = 0;
    return 1;
}

/* Peer-controlled text in log lines: no control characters. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

void s2s_log(s2s_base *b, const char *fmt, ...)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg, "%s %s: ", b->kind, b->peer ? b->peer : "-");
    if (n < 0 || (size_t)n >= sizeof msg)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    sanitize(msg);
    s2s_action a = {.kind = S2S_ACT_LOG, .text = msg};
    s2s_push(b, &a);
}

void s2s_log_stream_error(s2s_base *b, xml_cond cond, char *text, size_t size, const char *fmt, va_list ap)
{
    vsnprintf(text, size, fmt, ap);
    s2s_log(b, "stream error <%s/>: %s", xml_cond_name(cond), text);
}

void s2s_push_close(s2s_base *b, xml_cond cond, int remote, int clean, const char *reason)
{
    s2s_action a = {.kind = S2S_ACT_CLOSE, .cond = cond, .cond_remote = remote, .clean = clean,
                    .text = (char *)reason};
    s2s_push(b, &a);
}

void s2s_push_auth(s2s_base *b, const char *from, const char *to, s2s_auth_method m)
{
    s2s_action a = {.kind = S2S_ACT_AUTHENTICATED, .from = (char *)from, .to = (char *)to,
                    .method = m};
    s2s_push(b, &a);
}

void s2s_push_bounce(s2s_base *b, xml_node *stanza, const char *stanza_error)
{
    s2s_action a = {.kind = S2S_ACT_BOUNCE, .stanza = stanza,
                    .stanza_error = s2s_stanza_error_name(stanza_error)};
    if (!a.stanza_error)
        a.stanza_error = s2s_stanza_error_name("internal-server-error");
    s2s_push(b, &a);
}

/* ---- base ----------------------------------------------------------------- */

int s2s_base_init(s2s_base *b, const char *kind, const char *peer, const char *content_ns,
                  size_t max_stanza, const xml_stream_handler *h, void *ud)
{
    memset(b, 0, sizeof *b);
    b->kind = kind;
    psyc_buf_init(&b->out);
    xml_nsmap_init(&b->map, content_ns);
    if (peer && !(b->peer = s2s_strdup(peer)))
        return -1;
    xml_stream_opts o = {.max_stanza = max_stanza, .content_ns = content_ns};
    b->xs = xml_stream_new(&o, h, ud);
    return b->xs ? 0 : -1;
}

void s2s_base_free(s2s_base *b)
{
    xml_stream_free(b->xs);
    psyc_buf_free(&b->out);
    for (size_t i = 0; i < b->qn; i++)
        s2s_action_clear(&b->q[b->qhead + i]);
    free(b->q);
    free(b->peer);
    memset(b, 0, sizeof *b);
}

/* ---- output ----------------------------------------------------------------- */

static int wrote(s2s_base *b, int rc)
{
    if (rc != 0)
        b->nomem = 1;
    return rc == 0 ? 0 : -1;
}

int s2s_write(s2s_base *b, const char *s)
{
    return wrote(b, psyc_buf_puts(&b->out, s));
}

int s2s_write_node(s2s_base *b, const xml_node *n)
{
    int rc = xml_serialize(&b->out, n, &b->map);
    if (rc == -2) /* a name that cannot be written: never from our own builders */
        return -1;
    return wrote(b, rc);
}

int s2s_write_header(s2s_base *b, const char *from, const char *to, const char *id,
                     const char *version)
{
    xml_stream_attrs a = {.from = from, .to = to, .id = id, .version = version};
    return wrote(b, xml_write_stream_open(&b->out, &b->map, &a));
}

int s2s_write_error_close(s2s_base *b, xml_cond cond, const char *text)
{
    int rc = 0;
    if (cond != XML_COND_NONE)
        rc = xml_write_stream_error(&b->out, cond, text);
    if (rc == 0)
        rc = xml_write_stream_close(&b->out);
    return wrote(b, rc);
}

/* ---- names ------------------------------------------------------------------ */

char *s2s_domain_norm(const char *s)
{
    if (!s || !*s)
        return NULL;
    jid_t j = JID_INIT;
    if (jid_parse_cstr(&j, s) != JID_OK)
        return NULL;
    char *d = NULL;
    if (!j.local && !j.resource)
        d = s2s_strdup(j.domain);
    jid_free(&j);
    return d;
}

char *s2s_jid_domain(const char *s)
{
    if (!s || !*s)
        return NULL;
    jid_t j = JID_INIT;
    if (jid_parse_cstr(&j, s) != JID_OK)
        return NULL;
    char *d = s2s_strdup(j.domain);
    jid_free(&j);
    return d;
}

int s2s_domain_index(char *const *list, size_t n, const char *d)
{
    if (!d)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], d) == 0)
            return (int)i;
    return -1;
}

int s2s_cert_name_match(const char *pattern, const char *domain)
{
    if (!pattern || !domain)
        return 0;
    if (strcmp(pattern, domain) == 0)
        return 1;
    /* RFC 6125 §6.4.3: the wildcard is the whole leftmost label and
     * matches exactly one label, never the bare parent domain. */
    if (pattern[0] != '*' || pattern[1] != '.' || !pattern[2])
        return 0;
    const char *dot = strchr(domain, '.');
    return dot && dot != domain && strcmp(dot + 1, pattern + 2) == 0;
}

void s2s_gen_id(s2s_id_fn fn, void *ud, char out[S2S_ID_MAX + 1])
{
    out[0] = '\0';
    if (fn) {
        fn(ud, out);
        out[S2S_ID_MAX] = '\0';
        if (out[0])
            return;
    }
    unsigned char r[16];
    if (RAND_bytes(r, sizeof r) != 1) {
        /* No entropy from OpenSSL: the id must still differ per stream;
         * its secrecy is not what dialback relies on (the key is). */
        for (size_t i = 0; i < sizeof r; i++)
            r[i] = (unsigned char)(rand() & 0xff);
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof r; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[2 * sizeof r] = '\0';
}

int s2s_version_ge_1(const char *v)
{
    /* RFC 6120 §4.7.5: "major.minor", each an integer; no version = 0.9. */
    if (!v || *v < '0' || *v > '9')
        return 0;
    unsigned long major = 0;
    for (; *v >= '0' && *v <= '9'; v++) {
        major = major * 10 + (unsigned long)(*v - '0');
        if (major > 1000)
            break;
    }
    return major >= 1;
}

/* ---- base64 ------------------------------------------------------------------ */

char *s2s_b64_encode(const char *s, size_t n)
{
    if (n > (size_t)1 << 20)
        return NULL;
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out)
        return NULL;
    int len = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    if (len < 0) {
        free(out);
        return NULL;
    }
    out[len] = '\0';
    return out;
}

char *s2s_b64_decode(const char *s, size_t n, size_t *outlen)
{
    if (n % 4 != 0 || n > (size_t)1 << 20)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/' || (c == '=' && i >= n - 2);
        if (!ok || (i == n - 2 && c == '=' && s[n - 1] != '='))
            return NULL;
    }
    char *out = malloc(n / 4 * 3 + 1);
    if (!out)
        return NULL;
    int len = n ? EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n) : 0;
    if (len < 0) {
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    if (n >= 1 && s[n - 1] == '=')
        len--;
    if (n >= 2 && s[n - 2] == '=')
        len--;
    out[len] = '\0';
    if (outlen)
        *outlen = (size_t)len;
    return out;
}

/* ---- elements ------------------------------------------------------------------ */

/* RFC 6120 §8.3.3 conditions with their usual error types; the last one is
 * XEP-0220 §2.4's addition. */
static const struct {
    const char *name, *type;
} stanza_errors[] = {
    {"bad-request", "modify"},          {"conflict", "cancel"},
    {"feature-not-implemented", "cancel"}, {"forbidden", "auth"},
    {"gone", "cancel"},                 {"internal-server-error", "cancel"},
    {"item-not-found", "cancel"},       {"jid-malformed", "modify"},
    {"not-acceptable", "modify"},       {"not-allowed", "cancel"},
    {"not-authorized", "auth"},         {"policy-violation", "modify"},
    {"recipient-unavailable", "wait"},  {"redirect", "modify"},
    {"registration-required", "auth"},  {"remote-server-not-found", "cancel"},
    {"remote-server-timeout", "wait"},  {"resource-constraint", "wait"},
    {"service-unavailable", "cancel"},  {"subscription-required", "auth"},
    {"undefined-condition", "cancel"},  {"unexpected-request", "wait"},
    {"remote-connection-failed", "cancel"},
};

static int stanza_error_index(const char *cond)
{
    if (!cond)
        return -1;
    for (size_t i = 0; i < sizeof stanza_errors / sizeof stanza_errors[0]; i++)
        if (strcmp(stanza_errors[i].name, cond) == 0)
            return (int)i;
    return -1;
}

const char *s2s_stanza_error_name(const char *cond)
{
    int i = stanza_error_index(cond);
    return i < 0 ? NULL : stanza_errors[i].name;
}

int s2s_add_stanza_error(xml_node *parent, const char *cond)
{
    int i = stanza_error_index(cond);
    if (i < 0)
        i = stanza_error_index("undefined-condition");
    /* The <error/> child is in the content namespace (XEP-0220 §2.4:
     * "implicitly qualified by the 'jabber:server' namespace"). */
    xml_node *err = xml_elem_add(parent, "error", XML_NS_SERVER);
    if (!err || xml_attr_set(err, "type", stanza_errors[i].type) != 0 ||
        !xml_elem_add(err, stanza_errors[i].name, XML_NS_STANZA_ERRORS))
        return -1;
    return 0;
}

xml_node *s2s_elem(const char *name, const char *ns, const char *text)
{
    xml_node *n = xml_elem_new(name, ns);
    if (n && text && *text && !xml_text_add(n, text, strlen(text))) {
        xml_node_free(n);
        return NULL;
    }
    return n;
}

xml_node *s2s_db_elem(const char *name, const char *from, const char *to, const char *id,
                      const char *type, const char *text, const char *stanza_error)
{
    xml_node *n = s2s_elem(name, XML_NS_DIALBACK, text);
    if (!n)
        return NULL;
    if ((from && xml_attr_set(n, "from", from) != 0) || (to && xml_attr_set(n, "to", to) != 0) ||
        (id && xml_attr_set(n, "id", id) != 0) || (type && xml_attr_set(n, "type", type) != 0) ||
        (stanza_error && s2s_add_stanza_error(n, stanza_error) != 0)) {
        xml_node_free(n);
        return NULL;
    }
    return n;
}

const char *s2s_db_error_cond(const xml_node *el)
{
    xml_node *err = xml_child(el, "error", NULL);
    if (!err)
        return NULL;
    for (xml_node *c = err->children; c; c = c->next)
        if (xml_is(c, NULL, XML_NS_STANZA_ERRORS) && strcmp(c->name, "text") != 0)
            return c->name;
    return NULL;
}

const char *s2s_text(const xml_node *el)
{
    const char *t = xml_elem_text(el, NULL);
    return t ? t : "";
}
