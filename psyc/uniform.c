/*
 * uniform.c: PSYC uniforms (PSYC.md §3.1)
 *
 *   psyc://HOST[:PORT[TRANSPORT]][/RESOURCE[#CHANNEL]]
 *   HOST      = 1*( ALNUM / "." / "-" )
 *   PORT      = [ "-" ] 1*DIGIT     ; negative = unconnectable peer port
 *   TRANSPORT = "c" / "d" / "s" / "g" ; "g" (GNUnet) only without a port
 *   RESOURCE  = ( "~" / "@" / "$" ) NAME
 *   CHANNEL   = NAME
 *   NAME      = 1*( ALPHA / %x24-3B / "_" / "!" / "?" / "=" / "@" / "~" )
 *               ; %x24-3B is "$" to ";": $ % & ' ( ) * + , - . / 0-9 : ;
 *
 * This follows libpsyc's parser (PSYC.md §3.1) and is stricter in three
 * places, because a gateway forwards what it accepts:
 *  - a resource must start with an entity type char and have a nick
 *    ("psyc://h/x", "psyc://h/~" and "psyc://h/#c" are invalid);
 *  - a `#` must be followed by a channel name;
 *  - a port's magnitude must be <= 65535 (psyced's negative peer ports,
 *    even with its off-by-256 bug, stay in range: PSYC.md §9).
 * The scheme is matched case-insensitively (as libpsyc does); any other
 * scheme, such as xmpp:, is PSYC_UNI_ERR_SCHEME: those are opaque strings
 * to the caller, not psyc uniforms.
 *
 * Everything is a view into the input; nothing allocates except the
 * psyc_buf given to render/normalize.
 */
#include "psyc/psyc.h"

#include <string.h>

#define PSYC_DEFAULT_PORT 4404 /* PSYC.md §3.1: omitted when default */
#define PSYC_PORT_MAX 65535

static int psyc_uni_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int psyc_uni_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int psyc_uni_host_char(unsigned char c)
{
    return psyc_uni_alpha(c) || psyc_uni_digit(c) || c == '.' || c == '-';
}

/* RFC 2396 opaque_part as libpsyc takes it (PSYC.md §3.1). `#` (0x23) is
 * just below "$" (0x24), so it always ends the resource. */
static int psyc_uni_name_char(unsigned char c)
{
    return psyc_uni_alpha(c) || (c >= '$' && c <= ';') || c == '_' || c == '!' ||
           c == '?' || c == '=' || c == '@' || c == '~';
}

static int psyc_uni_entity_char(unsigned char c)
{
    return c == '~' || c == '@' || c == '$';
}

static int psyc_uni_transport_char(unsigned char c)
{
    return c == 'c' || c == 'd' || c == 's' || c == 'g';
}

static char psyc_uni_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static psyc_str psyc_uni_view(const char *base, size_t from, size_t to)
{
    return (psyc_str){base + from, to - from};
}

int psyc_uniform_parse(psyc_uniform *u, psyc_str s)
{
    const char *p = s.ptr;
    size_t n = s.len, i = 0;

    memset(u, 0, sizeof *u);
    u->full = s;
    if (n > PSYC_UNIFORM_MAX)
        return PSYC_UNI_ERR_TOO_LONG;
    if (n == 0 || p == NULL)
        return PSYC_UNI_ERR_SCHEME;

    /* scheme ":" (a string without a colon has no scheme at all) */
    while (i < n && p[i] != ':')
        i++;
    if (i == n || i != 4 || psyc_uni_lower(p[0]) != 'p' || psyc_uni_lower(p[1]) != 's' ||
        psyc_uni_lower(p[2]) != 'y' || psyc_uni_lower(p[3]) != 'c')
        return PSYC_UNI_ERR_SCHEME;
    u->scheme = psyc_uni_view(p, 0, 4);
    i++;

    /* "//" */
    if (n - i < 2 || p[i] != '/' || p[i + 1] != '/')
        return PSYC_UNI_ERR_SLASHES;
    i += 2;

    /* HOST */
    size_t h = i;
    while (i < n && psyc_uni_host_char((unsigned char)p[i]))
        i++;
    if (i == h || (i < n && p[i] != ':' && p[i] != '/'))
        return PSYC_UNI_ERR_HOST;
    u->host = psyc_uni_view(p, h, i);

    /* ":" [PORT] [TRANSPORT] */
    if (i < n && p[i] == ':') {
        size_t ps = ++i;
        int neg = 0;
        long num = 0;
        if (i < n && p[i] == '-') {
            neg = 1;
            i++;
        }
        size_t ds = i;
        while (i < n && psyc_uni_digit((unsigned char)p[i])) {
            num = num * 10 + (p[i] - '0');
            if (num > PSYC_PORT_MAX)
                return PSYC_UNI_ERR_PORT;
            i++;
        }
        if (i == ds) {
            /* No digits: only a bare "g" is allowed ("psyc://key:g/"). */
            if (neg || i >= n || p[i] != 'g')
                return PSYC_UNI_ERR_PORT;
        } else {
            u->port = psyc_uni_view(p, ps, i);
            u->port_num = neg ? -num : num;
        }
        if (i < n && p[i] != '/') {
            if (!psyc_uni_transport_char((unsigned char)p[i]))
                return PSYC_UNI_ERR_TRANSPORT;
            /* GNUnet addresses by key, it takes no port (PSYC.md §3.1). */
            if (p[i] == 'g' && u->port.len)
                return PSYC_UNI_ERR_TRANSPORT;
            u->transport = p[i++];
            if (i < n && p[i] != '/')
                return PSYC_UNI_ERR_TRANSPORT;
        }
    }
    u->root = psyc_uni_view(p, 0, i);
    if (i == n)
        return PSYC_UNI_OK;

    /* "/" [RESOURCE ["#" CHANNEL]] */
    u->slash = 1;
    i++;
    if (i == n)
        return PSYC_UNI_OK;
    if (!psyc_uni_entity_char((unsigned char)p[i]))
        return PSYC_UNI_ERR_RESOURCE;
    size_t r = i++;
    while (i < n && psyc_uni_name_char((unsigned char)p[i]))
        i++;
    if (i == r + 1 || (i < n && p[i] != '#'))
        return PSYC_UNI_ERR_RESOURCE;
    u->resource = psyc_uni_view(p, r, i);
    u->entity_type = p[r];
    u->nick = psyc_uni_view(p, r + 1, i);
    if (i == n)
        return PSYC_UNI_OK;

    size_t c = ++i;
    while (i < n && psyc_uni_name_char((unsigned char)p[i]))
        i++;
    if (i == c || i != n)
        return PSYC_UNI_ERR_CHANNEL;
    u->channel = psyc_uni_view(p, c, i);
    return PSYC_UNI_OK;
}

const char *psyc_uniform_strerror(int code)
{
    switch (code) {
    case PSYC_UNI_OK: return "ok";
    case PSYC_UNI_ERR_SCHEME: return "not a psyc: uniform";
    case PSYC_UNI_ERR_SLASHES: return "scheme not followed by //";
    case PSYC_UNI_ERR_HOST: return "invalid host";
    case PSYC_UNI_ERR_PORT: return "invalid port";
    case PSYC_UNI_ERR_TRANSPORT: return "invalid transport";
    case PSYC_UNI_ERR_RESOURCE: return "invalid resource";
    case PSYC_UNI_ERR_CHANNEL: return "invalid channel";
    case PSYC_UNI_ERR_TOO_LONG: return "uniform too long";
    case PSYC_ERR_INVALID: return "parts do not form a valid uniform";
    case PSYC_ERR_NOMEM: return "out of memory";
    default: return "unknown uniform error";
    }
}

/* Appends a signed port number in decimal (psyc_buf_put_size is unsigned). */
static int psyc_uni_put_port(psyc_buf *out, long num)
{
    if (num < 0) {
        if (psyc_buf_putc(out, '-') != 0)
            return -1;
        /* |num| <= PSYC_PORT_MAX here: negation cannot overflow. */
        return psyc_buf_put_size(out, (size_t)-num);
    }
    return psyc_buf_put_size(out, (size_t)num);
}

/* Drops what was appended since `mark` (used on error: out unchanged). */
static void psyc_uni_rollback(psyc_buf *out, size_t mark)
{
    out->len = mark;
    if (out->data)
        out->data[mark] = '\0';
}

/*
 * Render also accepts hand-built parts (the router composes uniforms):
 * an empty scheme means "psyc", an empty `port` with a non-zero port_num is
 * printed from port_num, and an empty `resource` is made from entity_type +
 * nick. The result is re-parsed, so render never emits an invalid uniform.
 */
int psyc_uniform_render(const psyc_uniform *u, psyc_buf *out)
{
    size_t mark = out->len;
    int rc = 0;

    if (u->scheme.len)
        rc |= psyc_buf_append(out, u->scheme.ptr, u->scheme.len);
    else
        rc |= psyc_buf_puts(out, "psyc");
    rc |= psyc_buf_puts(out, "://");
    if (u->host.len)
        rc |= psyc_buf_append(out, u->host.ptr, u->host.len);
    if (u->port.len || u->port_num || u->transport) {
        rc |= psyc_buf_putc(out, ':');
        if (u->port.len)
            rc |= psyc_buf_append(out, u->port.ptr, u->port.len);
        else if (u->port_num)
            rc |= psyc_uni_put_port(out, u->port_num);
        if (u->transport)
            rc |= psyc_buf_putc(out, u->transport);
    }
    int has_res = u->resource.len || (u->entity_type && u->nick.len);
    if (u->slash || has_res || u->channel.len)
        rc |= psyc_buf_putc(out, '/');
    if (u->resource.len) {
        rc |= psyc_buf_append(out, u->resource.ptr, u->resource.len);
    } else if (has_res) {
        rc |= psyc_buf_putc(out, u->entity_type);
        rc |= psyc_buf_append(out, u->nick.ptr, u->nick.len);
    }
    if (u->channel.len) {
        rc |= psyc_buf_putc(out, '#');
        rc |= psyc_buf_append(out, u->channel.ptr, u->channel.len);
    }
    if (rc != 0) {
        psyc_uni_rollback(out, mark);
        return PSYC_ERR_NOMEM;
    }

    psyc_uniform check;
    if (psyc_uniform_parse(&check, (psyc_str){out->data + mark, out->len - mark}) != PSYC_UNI_OK) {
        psyc_uni_rollback(out, mark);
        return PSYC_ERR_INVALID;
    }
    return 0;
}

static int psyc_uni_put_lower(psyc_buf *out, psyc_str s)
{
    if (psyc_buf_reserve(out, s.len) != 0)
        return -1;
    for (size_t i = 0; i < s.len; i++)
        out->data[out->len + i] = psyc_uni_lower(s.ptr[i]);
    out->len += s.len;
    out->data[out->len] = '\0';
    return 0;
}

/*
 * Canonical form, for comparing uniforms (PSYC.md §3.1):
 *  - scheme, host and nick lower-cased: psyced lower-cases the uniforms it
 *    receives ("lowercase policy"), so Alice and alice are one entity. The
 *    channel keeps its case (it names a keyword-like sub-context).
 *  - the port is written as a plain decimal number (leading zeros dropped,
 *    "-0" becomes "0"), and the default port 4404 is dropped when no
 *    transport letter follows it ("Default port 4404 is omitted"). With a
 *    transport letter it stays: "psyc://h:4404d" says UDP, "psyc://h" not.
 *    A negative port is a different (unconnectable) address and stays.
 *  - "psyc://h" and "psyc://h/" stay distinct: the first is the protocol
 *    root used in circuit negotiation, the second the server entity.
 *  - entity type, resource and channel are otherwise kept as they are.
 * normalize(normalize(x)) == normalize(x).
 */
int psyc_uniform_normalize(psyc_str s, psyc_buf *out)
{
    psyc_uniform u;
    int rc = psyc_uniform_parse(&u, s);
    if (rc != PSYC_UNI_OK)
        return rc;

    size_t mark = out->len;
    int err = 0;
    err |= psyc_uni_put_lower(out, u.scheme);
    err |= psyc_buf_puts(out, "://");
    err |= psyc_uni_put_lower(out, u.host);
    int default_port = u.port.len && u.port_num == PSYC_DEFAULT_PORT && !u.transport;
    if ((u.port.len && !default_port) || u.transport) {
        err |= psyc_buf_putc(out, ':');
        if (u.port.len)
            err |= psyc_uni_put_port(out, u.port_num);
        if (u.transport)
            err |= psyc_buf_putc(out, u.transport);
    }
    if (u.slash)
        err |= psyc_buf_putc(out, '/');
    if (u.entity_type) {
        err |= psyc_buf_putc(out, u.entity_type);
        err |= psyc_uni_put_lower(out, u.nick);
    }
    if (u.channel.len) {
        err |= psyc_buf_putc(out, '#');
        err |= psyc_buf_append(out, u.channel.ptr, u.channel.len);
    }
    if (err) {
        psyc_uni_rollback(out, mark);
        return PSYC_ERR_NOMEM;
    }
    return 0;
}
