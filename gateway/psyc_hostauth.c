/* psyc_hostauth.c: host authentication of a circuit's packets (PSYC.md §5)
 * on the daemon's resources: [psyc] trusted, the peer's TLS certificate,
 * and a forward DNS lookup through g->dns. The rules themselves are pure
 * (psyc/link_auth.c: psyc_auth_decide, psyc_auth_dns_match); the link
 * remembers every verdict for its circuit and holds the packets in order
 * while a lookup runs. */
#include <stdio.h>
#include <string.h>

#include "gateway/log.h"
#include "gateway/psyc_circuit.h"
#include "gateway/psyc_face.h"
#include "gateway/psyc_out.h"

#define COMP "psyc"

/* A host name in [psyc] trusted that authenticates on a circuit makes the
 * circuit trusted: that peer may then send for any host (rule 1). */
static void hostauth_accepted(psyc_circuit *c, const char *host, const char *how)
{
    log_info(COMP, c->peer.text, "host %s authenticated (%s)", host, how);
    if (!c->trusted && psyc_face_host_trusted(c->gw, host)) {
        c->trusted = 1;
        log_info(COMP, c->peer.text, "circuit trusted: %s is in [psyc] trusted", host);
    }
}

static void hostauth_on_addrs(const dns_addrs_result *res, void *arg)
{
    psyc_circuit *c = arg;
    c->auth_req = NULL;
    if (res->status == DNS_ECANCELLED)
        return; /* the circuit or the resolver is closing */
    char host[256], why[400];
    snprintf(host, sizeof host, "%s", c->auth_host);
    int ok = 0;
    if (res->status != DNS_OK) {
        snprintf(why, sizeof why, "DNS lookup of %s failed: %s", host, dns_strerror(res->status));
    } else {
        const char *ips[DNS_ADDRS_PER_HOST * 2];
        size_t n = 0;
        for (size_t i = 0; i < res->n_addrs && n < sizeof ips / sizeof ips[0]; i++)
            ips[n++] = res->addrs[i].ip;
        ok = psyc_auth_dns_match(c->peer.ip, ips, n);
        if (ok)
            snprintf(why, sizeof why, "DNS: %s has address %s", host, c->peer.ip);
        else
            snprintf(why, sizeof why, "DNS: %s does not resolve to %s (%zu addresses, first %s)", host, c->peer.ip,
                     res->n_addrs, res->n_addrs ? res->addrs[0].ip : "-");
    }
    if (ok)
        hostauth_accepted(c, host, why);
    psyc_circuit_auth_done(c, host, ok ? PSYC_LINK_AUTH_ACCEPT : PSYC_LINK_AUTH_REFUSE, why);
    if (ok && psyc_circuit_running(c))
        psyc_out_host_authenticated(c->gw->psyc_out, c, host);
}

int psyc_circuit_authenticate(void *ctx, psyc_link *link, const char *host, char *why, size_t whysz)
{
    psyc_circuit *c = ctx;
    (void)link;
    psyc_auth_facts f = {
        .host = host,
        .peer_ip = c->peer.ip,
        .circuit_trusted = c->trusted,
        .tls_match = c->tls && tls_conn_handshake_done(c->tls) && tls_conn_peer_matches(c->tls, host),
    };
    switch (psyc_auth_decide(&f)) {
    case PSYC_AUTH_ACCEPT_TRUSTED:
        snprintf(why, whysz, "peer %s is trusted", c->peer.ip);
        log_debug(COMP, c->peer.text, "host %s accepted: %s", host, why);
        return PSYC_LINK_AUTH_ACCEPT;
    case PSYC_AUTH_ACCEPT_LITERAL:
        snprintf(why, whysz, "the host is the peer's address");
        hostauth_accepted(c, host, why);
        psyc_out_host_authenticated(c->gw->psyc_out, c, host);
        return PSYC_LINK_AUTH_ACCEPT;
    case PSYC_AUTH_ACCEPT_TLS:
        snprintf(why, whysz, "TLS certificate names %s", host);
        hostauth_accepted(c, host, why);
        psyc_out_host_authenticated(c->gw->psyc_out, c, host);
        return PSYC_LINK_AUTH_ACCEPT;
    case PSYC_AUTH_NEED_DNS:
        break;
    }
    if (!c->gw->dns) {
        snprintf(why, whysz, "no resolver to check %s", host);
        return PSYC_LINK_AUTH_REFUSE;
    }
    snprintf(c->auth_host, sizeof c->auth_host, "%s", host);
    c->auth_req = dns_resolve_addrs(c->gw->dns, host, hostauth_on_addrs, c);
    if (!c->auth_req) {
        snprintf(why, whysz, "cannot start a DNS lookup of %s", host);
        return PSYC_LINK_AUTH_REFUSE;
    }
    log_debug(COMP, c->peer.text, "checking host %s: DNS lookup, packets held", host);
    return PSYC_LINK_AUTH_PENDING;
}

void psyc_circuit_auth_cancel(psyc_circuit *c)
{
    if (c->auth_req) {
        dns_cancel(c->auth_req);
        c->auth_req = NULL;
    }
}
