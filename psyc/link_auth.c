/* link_auth.c: the pure rules of PSYC host authentication (PSYC.md §5),
 * shared by the circuit machine (link.c) and the gateway's host checks. */
#include "psyc/link.h"

#include <string.h>
#include <strings.h>

static void auth_lower(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] - 'A' + 'a') : src[i];
    dst[n] = '\0';
}

int psyc_link_auth_subject(const psyc_packet *p, char *host, size_t hostsz)
{
    /* psyced: t = _context || _source (parse.i deliver, spyc dispatch.i). */
    const psyc_modifier *m = psyc_packet_find_routing(p, "_context");
    if (!m)
        m = psyc_packet_find_routing(p, "_source");
    if (!m)
        return 0;
    psyc_uniform u;
    int rc = psyc_uniform_parse(&u, m->value);
    if (rc != PSYC_UNI_OK)
        return rc;
    if (!psyc_str_eq_c(u.scheme, "psyc") || u.host.len == 0)
        return PSYC_UNI_ERR_SCHEME;
    if (u.host.len >= hostsz)
        return PSYC_UNI_ERR_TOO_LONG;
    auth_lower(host, u.host.ptr, u.host.len);
    return 1;
}

int psyc_link_is_circuit_message(const psyc_packet *p)
{
    /* PSYC.md §2.3 step 5: neither _source nor _target is a circuit
     * message; a packet with only _target comes "from the sending root"
     * (§4.1) but has no sender to check or answer, so it stays on the
     * circuit too. The 0.9 greeting packets carry the peer's root as
     * _source but speak about the circuit (§2.2). */
    if (!psyc_packet_find_routing(p, "_source") && !psyc_packet_find_routing(p, "_context"))
        return 1;
    if (p->method.ptr && (psyc_str_eq_c(p->method, "_notice_circuit_established") ||
                          psyc_str_eq_c(p->method, "_status_circuit")))
        return 1;
    return 0;
}

psyc_auth_decision psyc_auth_decide(const psyc_auth_facts *f)
{
    /* Rule 1: a trusted circuit may speak for any host (psyced's
     * PSYC_TRUSTWORTHY_HOSTS). */
    if (f->circuit_trusted)
        return PSYC_AUTH_ACCEPT_TRUSTED;
    /* An IP literal needs no lookup: it is the peer or it is not. */
    if (f->host && f->peer_ip && strcasecmp(f->host, f->peer_ip) == 0)
        return PSYC_AUTH_ACCEPT_LITERAL;
    /* Rule 3: TLS with a certificate naming the host. */
    if (f->tls_match)
        return PSYC_AUTH_ACCEPT_TLS;
    /* Rule 4: the forward lookup decides. */
    return PSYC_AUTH_NEED_DNS;
}

/* "::ffff:1.2.3.4" -> "1.2.3.4": the same peer however the socket saw it. */
static const char *auth_unmap(const char *ip)
{
    if (strncasecmp(ip, "::ffff:", 7) == 0 && strchr(ip + 7, '.'))
        return ip + 7;
    return ip;
}

int psyc_auth_dns_match(const char *peer_ip, const char *const *ips, size_t n)
{
    if (!peer_ip || !peer_ip[0])
        return 0;
    const char *peer = auth_unmap(peer_ip);
    for (size_t i = 0; i < n; i++)
        if (ips[i] && strcasecmp(auth_unmap(ips[i]), peer) == 0)
            return 1;
    return 0;
}

int psyc_auth_listed(const char *name, const char *const *list, size_t n)
{
    if (!name || !name[0])
        return 0;
    for (size_t i = 0; i < n; i++)
        if (list[i] && strcasecmp(auth_unmap(list[i]), auth_unmap(name)) == 0)
            return 1;
    return 0;
}
