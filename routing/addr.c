/* addr.c: JID <-> uniform mapping (see addr.h for the grammar). */
#include "routing/addr.h"

#include <idna.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stringprep.h>

#include "xmpp/jid.h"

/* Longest name or host we build on either side. */
#define ADDR_PART_MAX 1023

/* ------------------------------------------------------------------ */
/* Small buffers                                                      */

/* A NUL-terminated copy of b's bytes; b keeps its length. */
static const char *addr_cstr(psyc_buf *b)
{
    if (psyc_buf_putc(b, '\0') != 0)
        return NULL;
    b->len--;
    return b->data;
}

static int addr_is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned addr_hex_val(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

static int addr_put_hex(psyc_buf *b, char lead, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char e[3] = {lead, hex[c >> 4], hex[c & 15]};
    return psyc_buf_append(b, e, 3);
}

/* ------------------------------------------------------------------ */
/* Names in a localpart (XEP-0106 escapes, strict: see addr.h)        */

/* Escaped everywhere; TRANSPORT mode adds '%'. */
static int addr_local_escaped(unsigned char c, addr_mode mode)
{
    return (c != '\0' && strchr(" \"&'/:<>@\\", c) != NULL) || (mode == ADDR_MODE_TRANSPORT && c == '%');
}

/* The entity prefixes that a person's name may not start with unescaped. */
static int addr_is_prefix(unsigned char c)
{
    return c == '*' || c == '$';
}

/* name -> localpart text. `person`: the first character is escaped when it
 * is an entity prefix. */
static int addr_name_to_local(const char *name, size_t n, addr_mode mode, int person, psyc_buf *out)
{
    /* XEP-0106 §4.3: an escaped localpart neither begins nor ends with \20. */
    if (n && (name[0] == ' ' || name[n - 1] == ' '))
        return ADDR_ERR_NAME;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        int rc = (addr_local_escaped(c, mode) || (person && i == 0 && addr_is_prefix(c)))
                     ? addr_put_hex(out, '\\', c)
                     : psyc_buf_putc(out, (char)c);
        if (rc != 0)
            return ADDR_ERR_NOMEM;
    }
    return ADDR_OK;
}

/* localpart text -> name; the exact inverse of addr_name_to_local. */
static int addr_local_to_name(const char *s, size_t n, addr_mode mode, int person, psyc_buf *out)
{
    if ((n >= 3 && memcmp(s, "\\20", 3) == 0) || (n >= 3 && memcmp(s + n - 3, "\\20", 3) == 0))
        return ADDR_ERR_NAME;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') {
            if (i + 2 >= n || !addr_is_hex(s[i + 1]) || !addr_is_hex(s[i + 2]))
                return ADDR_ERR_BACKSLASH;
            /* Lower-case hex only: the form addr_name_to_local writes (and
             * nodeprep case-folds a localpart anyway). */
            if ((s[i + 1] >= 'A' && s[i + 1] <= 'F') || (s[i + 2] >= 'A' && s[i + 2] <= 'F'))
                return ADDR_ERR_BACKSLASH;
            unsigned char v = (unsigned char)(addr_hex_val(s[i + 1]) << 4 | addr_hex_val(s[i + 2]));
            if (!addr_local_escaped(v, mode) && !(person && i == 0 && addr_is_prefix(v)))
                return ADDR_ERR_BACKSLASH;
            c = v;
            i += 2;
        } else if (addr_local_escaped(c, mode) && c != '%') {
            return ADDR_ERR_NAME; /* cannot occur in a prepared localpart */
        }
        if (psyc_buf_putc(out, (char)c) != 0)
            return ADDR_ERR_NOMEM;
    }
    return out->len ? ADDR_OK : ADDR_ERR_NAME;
}

/* ------------------------------------------------------------------ */
/* Names in a uniform (percent-encoding, lower-case hex)              */

static int addr_uni_safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("$&'()*+,-.:;_!?=~@", c) != NULL);
}

static int addr_pct_encode(const char *s, size_t n, psyc_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc = addr_uni_safe(c) ? psyc_buf_putc(out, (char)c) : addr_put_hex(out, '%', c);
        if (rc != 0)
            return ADDR_ERR_NOMEM;
    }
    return ADDR_OK;
}

/* Accepts either case of hex and raw bytes (what another server wrote);
 * a NUL or a broken escape is refused. */
static int addr_pct_decode(const char *s, size_t n, psyc_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n || !addr_is_hex(s[i + 1]) || !addr_is_hex(s[i + 2]))
                return ADDR_ERR_UNIFORM;
            c = (unsigned char)(addr_hex_val(s[i + 1]) << 4 | addr_hex_val(s[i + 2]));
            i += 2;
        }
        if (c == '\0')
            return ADDR_ERR_UNIFORM;
        if (psyc_buf_putc(out, (char)c) != 0)
            return ADDR_ERR_NOMEM;
    }
    return out->len ? ADDR_OK : ADDR_ERR_NAME;
}

/* ------------------------------------------------------------------ */
/* Domains <-> hosts                                                  */

static int addr_is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* JID domain -> PSYC host: A-labels for IDN, no IPv6 literals. */
static int addr_domain_to_host(const char *domain, psyc_buf *out)
{
    if (domain[0] == '[')
        return ADDR_ERR_DOMAIN;
    if (addr_is_ascii(domain))
        return psyc_buf_puts(out, domain) ? ADDR_ERR_NOMEM : ADDR_OK;
    char *ace = NULL;
    if (idna_to_ascii_8z(domain, &ace, IDNA_USE_STD3_ASCII_RULES) != IDNA_SUCCESS) {
        free(ace);
        return ADDR_ERR_DOMAIN;
    }
    for (char *p = ace; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p | 0x20);
    int rc = psyc_buf_puts(out, ace) ? ADDR_ERR_NOMEM : ADDR_OK;
    free(ace);
    return rc;
}

/* PSYC host -> JID domain: A-labels back to Unicode (the JID's canonical
 * form here, see addr.h). */
static int addr_host_to_domain(const char *host, psyc_buf *out);

static int addr_host_to_domain_n(psyc_str host, psyc_buf *out)
{
    char buf[ADDR_PART_MAX + 1];
    if (host.len > ADDR_PART_MAX)
        return ADDR_ERR_DOMAIN;
    memcpy(buf, host.ptr, host.len);
    buf[host.len] = '\0';
    return addr_host_to_domain(buf, out);
}

static int addr_host_to_domain(const char *host, psyc_buf *out)
{
    int has_ace = strncmp(host, "xn--", 4) == 0 || strstr(host, ".xn--") != NULL;
    char *uni = NULL, *ace = NULL;
    /* Only a faithful A-label becomes Unicode: one that ToASCII gives back
     * unchanged. Anything else ("xn--" with broken Punycode) stays as
     * written, which is still a valid domain. */
    if (has_ace && idna_to_unicode_8z8z(host, &uni, IDNA_USE_STD3_ASCII_RULES) == IDNA_SUCCESS &&
        idna_to_ascii_8z(uni, &ace, IDNA_USE_STD3_ASCII_RULES) == IDNA_SUCCESS &&
        strcasecmp(ace, host) == 0)
        host = uni;
    int rc = psyc_buf_puts(out, host) ? ADDR_ERR_NOMEM : ADDR_OK;
    free(uni);
    free(ace);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Errors                                                             */

const char *addr_strerror(int err)
{
    switch (err) {
    case ADDR_OK: return "ok";
    case ADDR_ERR_NOMEM: return "out of memory";
    case ADDR_ERR_JID: return "not a valid JID";
    case ADDR_ERR_UNIFORM: return "not a valid PSYC uniform";
    case ADDR_ERR_BACKSLASH: return "backslash in the localpart that is not an escape";
    case ADDR_ERR_PORT: return "a uniform with a port or transport has no JID in this mode";
    case ADDR_ERR_CHANNEL: return "a uniform with a #channel has no JID";
    case ADDR_ERR_DOMAIN: return "domain has no PSYC host form (IPv6 literal or bad IDN)";
    case ADDR_ERR_NAME: return "name is empty or makes no valid JID localpart";
    case ADDR_ERR_HOST: return "not a valid PSYC host after '%'";
    }
    return "unknown error";
}

static int addr_from_jid_err(jid_err_t e)
{
    return e == JID_ERR_NOMEM ? ADDR_ERR_NOMEM : ADDR_ERR_NAME;
}

/* ------------------------------------------------------------------ */
/* Entities                                                           */

/* Localpart of an entity (prefix and escaped name) -> uniform resource
 * ("~name", "@room", "$svc"), percent-encoded. */
static int addr_put_entity_from_local(const char *local, size_t n, addr_mode mode, psyc_buf *out)
{
    char type = '~';
    int person = 1;
    if (n && (local[0] == '*' || local[0] == '$')) {
        type = local[0] == '*' ? '@' : '$';
        person = 0;
        local++;
        n--;
    }
    psyc_buf name;
    psyc_buf_init(&name);
    int rc = addr_local_to_name(local, n, mode, person, &name);
    if (rc == ADDR_OK)
        rc = psyc_buf_putc(out, type) ? ADDR_ERR_NOMEM : addr_pct_encode(name.data, name.len, out);
    psyc_buf_free(&name);
    return rc;
}

/* Uniform resource (type char + percent-encoded nick) -> localpart text. */
static int addr_put_local_from_entity(char type, psyc_str nick, addr_mode mode, psyc_buf *out)
{
    psyc_buf name;
    psyc_buf_init(&name);
    int rc = addr_pct_decode(nick.ptr, nick.len, &name);
    if (rc == ADDR_OK && type != '~' && psyc_buf_putc(out, type == '@' ? '*' : '$') != 0)
        rc = ADDR_ERR_NOMEM;
    if (rc == ADDR_OK)
        rc = addr_name_to_local(name.data, name.len, mode, type == '~', out);
    psyc_buf_free(&name);
    return rc;
}

static int addr_put_root(const char *host, size_t n, psyc_buf *out)
{
    if (psyc_buf_puts(out, "psyc://") || psyc_buf_append(out, host, n) || psyc_buf_putc(out, '/'))
        return ADDR_ERR_NOMEM;
    return ADDR_OK;
}

/* ------------------------------------------------------------------ */
/* JID -> uniform                                                     */

static int addr_natural_from_jid(const jid_t *j, psyc_buf *out)
{
    psyc_buf host;
    psyc_buf_init(&host);
    int rc = addr_domain_to_host(j->domain, &host);
    if (rc == ADDR_OK)
        rc = addr_put_root(host.data, host.len, out);
    psyc_buf_free(&host);
    if (rc == ADDR_OK && j->local)
        rc = addr_put_entity_from_local(j->local, j->local_len, ADDR_MODE_NATURAL, out);
    return rc;
}

/* nick%host@T, %host@T, nick@T, T (TRANSPORT mode). */
static int addr_transport_from_jid(const addr_map *m, const jid_t *j, psyc_buf *out)
{
    const char *pct = j->local ? memchr(j->local, '%', j->local_len) : NULL;
    if (!pct) {
        /* On our host a person's name with an '@' means an XMPP user
         * (psyc://G/~user@domain), so such a name cannot be an entity of
         * ours: refused rather than mapped onto somebody else. */
        if (j->local && j->local[0] != '*' && j->local[0] != '$' && strstr(j->local, "\\40"))
            return ADDR_ERR_NAME;
        int rc = addr_put_root(m->gw_host, strlen(m->gw_host), out);
        if (rc == ADDR_OK && j->local)
            rc = addr_put_entity_from_local(j->local, j->local_len, ADDR_MODE_TRANSPORT, out);
        return rc;
    }
    /* The host after the first '%' (a name writes its own '%' as \25). */
    size_t left = (size_t)(pct - j->local);
    psyc_buf host;
    psyc_buf_init(&host);
    int rc = addr_local_to_name(pct + 1, j->local_len - left - 1, ADDR_MODE_TRANSPORT, 0, &host);
    if (rc == ADDR_OK)
        rc = addr_put_root(host.data, host.len, out);
    psyc_buf_free(&host);
    if (rc == ADDR_ERR_BACKSLASH || rc == ADDR_ERR_NAME)
        rc = ADDR_ERR_HOST;
    if (rc == ADDR_OK && left)
        rc = addr_put_entity_from_local(j->local, left, ADDR_MODE_TRANSPORT, out);
    return rc;
}

/* A user of another XMPP domain, seen from PSYC in TRANSPORT mode:
 * psyc://G/~LOCAL@DOMAIN, both parts percent-encoded as they are; the
 * server itself is psyc://G/~@DOMAIN. */
static int addr_user_from_jid(const addr_map *m, const jid_t *j, psyc_buf *out)
{
    int rc = addr_put_root(m->gw_host, strlen(m->gw_host), out);
    if (rc == ADDR_OK && j->local && m->reg.nick_of) {
        /* A registered user is psyc://G/~NICK (addr_registry). */
        psyc_buf bare;
        psyc_buf_init(&bare);
        const char *nick = NULL;
        if (psyc_buf_append(&bare, j->local, j->local_len) || psyc_buf_putc(&bare, '@') ||
            psyc_buf_append(&bare, j->domain, j->domain_len) || !addr_cstr(&bare))
            rc = ADDR_ERR_NOMEM;
        else
            nick = m->reg.nick_of(m->reg.ud, bare.data);
        psyc_buf_free(&bare);
        if (nick) {
            return psyc_buf_putc(out, '~') != 0 ? ADDR_ERR_NOMEM : addr_pct_encode(nick, strlen(nick), out);
        }
    }
    if (rc == ADDR_OK && psyc_buf_putc(out, '~') != 0)
        rc = ADDR_ERR_NOMEM;
    if (rc == ADDR_OK && j->local)
        rc = addr_pct_encode(j->local, j->local_len, out);
    if (rc == ADDR_OK && psyc_buf_putc(out, '@') != 0)
        rc = ADDR_ERR_NOMEM;
    if (rc == ADDR_OK)
        rc = addr_pct_encode(j->domain, j->domain_len, out);
    return rc;
}

int addr_jid_to_uniform(const addr_map *m, const char *jid, psyc_buf *uniform, psyc_buf *resource)
{
    jid_t j = JID_INIT;
    jid_err_t je = jid_parse_cstr(&j, jid);
    if (je != JID_OK)
        return je == JID_ERR_NOMEM ? ADDR_ERR_NOMEM : ADDR_ERR_JID;
    psyc_buf raw;
    psyc_buf_init(&raw);
    int rc;
    if (m->mode == ADDR_MODE_NATURAL)
        rc = addr_natural_from_jid(&j, &raw);
    else if (strcmp(j.domain, m->transport) == 0)
        rc = addr_transport_from_jid(m, &j, &raw);
    else
        rc = addr_user_from_jid(m, &j, &raw);
    /* The canonical form (default port dropped, lower case); this also
     * checks that what we built is a uniform at all. */
    size_t mark = uniform->len;
    if (rc == ADDR_OK) {
        int nr = psyc_uniform_normalize((psyc_str){raw.data, raw.len}, uniform);
        if (nr == PSYC_ERR_NOMEM)
            rc = ADDR_ERR_NOMEM;
        else if (nr != 0)
            rc = m->mode == ADDR_MODE_TRANSPORT && j.local && memchr(j.local, '%', j.local_len)
                     ? ADDR_ERR_HOST
                     : ADDR_ERR_NAME;
    }
    if (rc == ADDR_OK && resource && j.resource &&
        psyc_buf_append(resource, j.resource, j.resource_len) != 0) {
        uniform->len = mark;
        rc = ADDR_ERR_NOMEM;
    }
    psyc_buf_free(&raw);
    jid_free(&j);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Uniform -> JID                                                     */

/* Builds the JID from its parts (prepared as jid_parse would) into out. */
static int addr_put_jid(psyc_buf *local, const char *domain, const char *resource, psyc_buf *out)
{
    const char *l = NULL;
    if (local && local->len && !(l = addr_cstr(local)))
        return ADDR_ERR_NOMEM;
    jid_t j = JID_INIT;
    jid_err_t je = jid_from_parts(&j, l, domain, resource && *resource ? resource : NULL);
    if (je != JID_OK)
        return addr_from_jid_err(je);
    int rc = psyc_buf_append(out, j.full, j.full_len) ? ADDR_ERR_NOMEM : ADDR_OK;
    jid_free(&j);
    return rc;
}

static int addr_xmpp_to_jid(const char *addr, const char *resource, psyc_buf *out)
{
    jid_t j = JID_INIT;
    jid_err_t je = jid_parse_cstr(&j, addr);
    if (je != JID_OK)
        return je == JID_ERR_NOMEM ? ADDR_ERR_NOMEM : ADDR_ERR_UNIFORM;
    int rc;
    if (resource && *resource) {
        jid_t r = JID_INIT;
        je = jid_from_parts(&r, j.local, j.domain, resource);
        rc = je != JID_OK ? addr_from_jid_err(je)
                          : (psyc_buf_append(out, r.full, r.full_len) ? ADDR_ERR_NOMEM : ADDR_OK);
        jid_free(&r);
    } else {
        rc = psyc_buf_append(out, j.full, j.full_len) ? ADDR_ERR_NOMEM : ADDR_OK;
    }
    jid_free(&j);
    return rc;
}

/* psyc://G/~LOCAL@DOMAIN (TRANSPORT): a user of another XMPP domain. */
static int addr_user_to_jid(const psyc_buf *name, const char *at, const char *resource, psyc_buf *out)
{
    psyc_buf local, domain;
    psyc_buf_init(&local);
    psyc_buf_init(&domain);
    size_t left = (size_t)(at - name->data);
    int rc = psyc_buf_append(&local, name->data, left) || psyc_buf_append(&domain, at + 1, name->len - left - 1)
                 ? ADDR_ERR_NOMEM
                 : ADDR_OK;
    const char *d = rc == ADDR_OK ? addr_cstr(&domain) : NULL;
    if (rc == ADDR_OK && !d)
        rc = ADDR_ERR_NOMEM;
    if (rc == ADDR_OK && (!domain.len || memchr(d, '@', domain.len)))
        rc = ADDR_ERR_NAME;
    if (rc == ADDR_OK)
        rc = addr_put_jid(&local, d, resource, out);
    psyc_buf_free(&local);
    psyc_buf_free(&domain);
    return rc;
}

static const char *addr_last_at(const psyc_buf *s)
{
    for (size_t i = s->len; i-- > 0;)
        if (s->data[i] == '@')
            return s->data + i;
    return NULL;
}

static int addr_uniform_to_jid_parsed(const addr_map *m, const psyc_uniform *u, const char *resource,
                                      psyc_buf *out)
{
    if (u->channel.len)
        return ADDR_ERR_CHANNEL;
    psyc_buf local, domain;
    psyc_buf_init(&local);
    psyc_buf_init(&domain);
    int rc = ADDR_OK;
    const char *d = NULL;
    int has_port = u->port.len || u->transport;
    if (m->mode == ADDR_MODE_NATURAL) {
        if (has_port)
            rc = ADDR_ERR_PORT;
        if (rc == ADDR_OK)
            rc = addr_host_to_domain_n(u->host, &domain);
        if (rc == ADDR_OK && u->entity_type)
            rc = addr_put_local_from_entity(u->entity_type, u->nick, ADDR_MODE_NATURAL, &local);
        d = domain.data;
    } else if (!has_port && psyc_str_eq_c(u->host, m->gw_host)) {
        /* A person on our host whose name holds an '@' is an XMPP user
         * (psyc://G/~user@domain, raw or %40: a natural-mode gateway
         * writes the same name either way). */
        psyc_buf name;
        psyc_buf_init(&name);
        const char *at = NULL;
        if (u->entity_type == '~' && addr_pct_decode(u->nick.ptr, u->nick.len, &name) == ADDR_OK)
            at = addr_last_at(&name);
        const char *reg = NULL;
        if (!at && u->entity_type == '~' && m->reg.jid_of && name.len && addr_cstr(&name))
            reg = m->reg.jid_of(m->reg.ud, name.data); /* a registered nick */
        if (reg) {
            rc = addr_xmpp_to_jid(reg, resource, out);
            psyc_buf_free(&name);
            goto done;
        }
        if (at) {
            rc = addr_user_to_jid(&name, at, resource, out);
            psyc_buf_free(&name);
            goto done;
        }
        psyc_buf_free(&name);
        if (u->entity_type)
            rc = addr_put_local_from_entity(u->entity_type, u->nick, ADDR_MODE_TRANSPORT, &local);
        d = m->transport;
    } else {
        /* PREFIX NAME % HOST[:PORT[T]] @ T */
        if (u->entity_type)
            rc = addr_put_local_from_entity(u->entity_type, u->nick, ADDR_MODE_TRANSPORT, &local);
        if (rc == ADDR_OK && psyc_buf_putc(&local, '%') != 0)
            rc = ADDR_ERR_NOMEM;
        psyc_str hostspec = {u->root.ptr + 7, u->root.len - 7}; /* after "psyc://" */
        if (rc == ADDR_OK)
            rc = addr_name_to_local(hostspec.ptr, hostspec.len, ADDR_MODE_TRANSPORT, 0, &local);
        d = m->transport;
    }
    if (rc == ADDR_OK && !d)
        rc = ADDR_ERR_NOMEM;
    if (rc == ADDR_OK) {
        if (m->mode == ADDR_MODE_NATURAL && !addr_cstr(&domain))
            rc = ADDR_ERR_NOMEM;
        else
            rc = addr_put_jid(&local, m->mode == ADDR_MODE_NATURAL ? domain.data : d, resource, out);
    }
done:
    psyc_buf_free(&local);
    psyc_buf_free(&domain);
    return rc;
}

int addr_uniform_to_jid(const addr_map *m, const char *uniform, const char *resource, psyc_buf *jid)
{
    if (strncmp(uniform, "xmpp:", 5) == 0)
        return addr_xmpp_to_jid(uniform + 5, resource, jid);
    psyc_buf norm;
    psyc_buf_init(&norm);
    int nr = psyc_uniform_normalize(psyc_str_c(uniform), &norm);
    if (nr != 0) {
        psyc_buf_free(&norm);
        return nr == PSYC_ERR_NOMEM ? ADDR_ERR_NOMEM : ADDR_ERR_UNIFORM;
    }
    psyc_uniform u;
    int rc = psyc_uniform_parse(&u, (psyc_str){norm.data, norm.len}) == PSYC_UNI_OK
                 ? addr_uniform_to_jid_parsed(m, &u, resource, jid)
                 : ADDR_ERR_UNIFORM;
    psyc_buf_free(&norm);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Lookalikes                                                         */

int addr_resource_lookalike(const char *a, const char *b)
{
    if (strcmp(a, b) == 0)
        return 0;
    /* Nameprep = case folding (RFC 3454 B.2) + NFKC, and it lets ASCII
     * punctuation and unassigned code points (emoji) through. */
    char *fa = NULL, *fb = NULL;
    int same = stringprep_profile(a, &fa, "Nameprep", 0) == STRINGPREP_OK &&
               stringprep_profile(b, &fb, "Nameprep", 0) == STRINGPREP_OK && strcmp(fa, fb) == 0;
    free(fa);
    free(fb);
    return same;
}
