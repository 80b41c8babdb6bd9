/* link.c: protocol side of one PSYC circuit (see link.h). */
#include "psyc/link.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* psyced's texts, so peers and their users see familiar messages
 * (PSYC.md §2.1, §2.2; captures README). */
#define TEXT_SYNTAX_INIT_09 "The old protocol begins with a dot on a line by itself."
#define TEXT_SYNTAX_INIT_10 "The new protocol begins with a pipe on a line by itself."
#define TEXT_METHOD_COMPACT "Compact methods undefined as yet."

static char *link_strdup(const char *s)
{
    size_t n = strlen(s ? s : "");
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s ? s : "", n + 1);
    return d;
}

const char *psyc_link_syntax_name(psyc_syntax s)
{
    switch (s) {
    case PSYC_SYNTAX_09:
        return "PSYC 0.9";
    case PSYC_SYNTAX_10:
        return "PSYC 1.0";
    case PSYC_SYNTAX_TLS:
        return "TLS";
    default:
        return "unknown";
    }
}

static int link_greet_active(psyc_link *l);

int psyc_link_init(psyc_link *l, const psyc_link_params *params)
{
    memset(l, 0, sizeof *l);
    l->state = PSYC_LINK_DETECT;
    l->syntax = PSYC_SYNTAX_UNKNOWN;
    l->host = link_strdup(params->host ? params->host : "localhost");
    l->implementation = link_strdup(params->implementation ? params->implementation : "psycgate");
    l->peer_ip = link_strdup(params->peer_ip);
    l->peer_port = params->peer_port;
    l->peer_v6 = params->peer_v6;
    l->tls = params->tls;
    l->tls_autodetect = params->tls_autodetect;
    l->acks = params->delivery_acks;
    l->active = params->active;
    l->peer_host = link_strdup(params->peer_host ? params->peer_host : params->peer_ip);
    l->on_event = params->on_event;
    l->authenticate = params->authenticate;
    l->ctx = params->ctx;
    psyc_limits_default(&l->limits);
    if (params->max_packet)
        l->limits.max_packet = params->max_packet;
    psyc_buf_init(&l->in);
    psyc_buf_init(&l->out);
    psyc_packet_init(&l->pkt);
    psyc09_parser_init(&l->p09, &l->limits);
    psyc_parser_init(&l->p10, &l->limits, 0);
    if (!l->host || !l->implementation || !l->peer_ip || !l->peer_host) {
        psyc_link_free(l);
        return PSYC_ERR_NOMEM;
    }
    if (l->active) {
        if (params->syntax != PSYC_SYNTAX_09 && params->syntax != PSYC_SYNTAX_10) {
            psyc_link_free(l);
            return PSYC_ERR_INVALID;
        }
        /* We chose the syntax; no detection. The tag of our
         * _request_authorization comes from the caller (random). */
        l->syntax = params->syntax;
        l->state = PSYC_LINK_GREET;
        snprintf(l->tag, sizeof l->tag, "%s", params->auth_tag ? params->auth_tag : "");
        int rc = link_greet_active(l);
        if (rc < 0) {
            psyc_link_free(l);
            return rc;
        }
    }
    return 0;
}

void psyc_link_free(psyc_link *l)
{
    free(l->host);
    free(l->implementation);
    free(l->peer_ip);
    free(l->peer_host);
    l->host = l->implementation = l->peer_ip = l->peer_host = NULL;
    for (size_t i = 0; i < l->n_hosts; i++)
        free(l->hosts[i].name);
    l->n_hosts = 0;
    psyc_buf_free(&l->in);
    psyc_buf_free(&l->out);
    psyc_packet_free(&l->pkt);
}

void psyc_link_take_output(psyc_link *l, psyc_buf *out)
{
    *out = l->out;
    psyc_buf_init(&l->out);
}

static void link_vclose(psyc_link *l, int error, const char *fmt, va_list ap)
{
    if (l->state == PSYC_LINK_CLOSED)
        return; /* the first reason is the one that matters */
    l->state = PSYC_LINK_CLOSED;
    l->error = error;
    vsnprintf(l->reason, sizeof l->reason, fmt, ap);
}

void psyc_link_close(psyc_link *l, int error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    link_vclose(l, error, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Output                                                             */

static int link_render(psyc_link *l, const psyc_packet *p)
{
    if (l->syntax == PSYC_SYNTAX_10)
        return psyc_render(p, &l->out);
    return psyc_render09(p, &l->out);
}

/* An empty packet: the greeting selector / ping / pong (`.` or `|`). */
static int link_send_empty(psyc_link *l)
{
    psyc_packet p;
    psyc_packet_init(&p);
    int rc = link_render(l, &p);
    psyc_packet_free(&p);
    return rc;
}

int psyc_link_render_croak(psyc_syntax syntax, const char *method, const char *text, psyc_buf *out)
{
    psyc_packet p;
    psyc_packet_init(&p);
    /* psyced writes croaks without a content length (spyc/circuit.c croak);
     * the text never holds "\n|\n", so none is needed. */
    p.flags |= PSYC_PKT_NO_CONTENT_LENGTH;
    int rc = psyc_packet_set_method(&p, psyc_str_c(method));
    if (rc == 0)
        rc = psyc_packet_set_data(&p, psyc_str_c(text));
    if (rc == 0)
        rc = syntax == PSYC_SYNTAX_10 ? psyc_render(&p, out) : psyc_render09(&p, out);
    psyc_packet_free(&p);
    return rc;
}

/* Queues a croak and gives the CLOSED verdict (psyced: croak() then
 * disconnect, PSYC.md §2.3 step 6; captures README). */
static void link_croak(psyc_link *l, psyc_syntax syntax, const char *method, const char *text,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void link_croak(psyc_link *l, psyc_syntax syntax, const char *method, const char *text,
                       const char *fmt, ...)
{
    if (l->state == PSYC_LINK_CLOSED)
        return;
    psyc_link_render_croak(syntax, method, text, &l->out);
    va_list ap;
    va_start(ap, fmt);
    link_vclose(l, 1, fmt, ap);
    va_end(ap);
}

/* psyc://HOST/ for _source (PSYC.md §3.1). */
static int link_self_uniform(const psyc_link *l, psyc_buf *b)
{
    psyc_buf_reset(b);
    if (psyc_buf_puts(b, "psyc://") || psyc_buf_puts(b, l->host) || psyc_buf_putc(b, '/'))
        return PSYC_ERR_NOMEM;
    return 0;
}

/* _target_peer: how we see the peer. Accepting: psyc://IP:-PORT/, the
 * negative port marking the peer's ephemeral source port, which cannot be
 * connected to (PSYC.md §2.2). Connecting: psyc://IP:PORT/, where we
 * connected (captures 1-circuit-greeting/08). */
static int link_peer_uniform(const psyc_link *l, psyc_buf *b)
{
    char tmp[96];
    const char *sign = l->active ? "" : "-";
    if (l->peer_v6)
        snprintf(tmp, sizeof tmp, "psyc://[%s]:%s%d/", l->peer_ip, sign, l->peer_port);
    else
        snprintf(tmp, sizeof tmp, "psyc://%s:%s%d/", l->peer_ip, sign, l->peer_port);
    psyc_buf_reset(b);
    return psyc_buf_puts(b, tmp) ? PSYC_ERR_NOMEM : 0;
}

/* 0.9 `_notice_circuit_established`: the peer learns our name and how we
 * see it (PSYC.md §2.2; captures 1-circuit-greeting/03, 08). */
static int link_notice09(psyc_link *l)
{
    psyc_buf self, peer;
    psyc_buf_init(&self);
    psyc_buf_init(&peer);
    psyc_packet p;
    psyc_packet_init(&p);
    int rc = link_self_uniform(l, &self);
    if (rc == 0)
        rc = link_peer_uniform(l, &peer);
    if (rc == 0)
        rc = psyc_packet_routing_c(&p, "_source", self.data);
    if (rc == 0)
        rc = psyc_packet_routing_c(&p, "_target_peer", peer.data);
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_implementation", l->implementation);
    if (rc == 0)
        rc = psyc_packet_set_method(&p, PSYC_STR_LIT("_notice_circuit_established"));
    if (rc == 0)
        rc = psyc_packet_set_data(
            &p, PSYC_STR_LIT("Hello [_target_peer].\nCircuit to [_source] running [_implementation] established."));
    if (rc == 0)
        rc = psyc_render09(&p, &l->out);
    psyc_packet_free(&p);
    psyc_buf_free(&self);
    psyc_buf_free(&peer);
    return rc;
}

/* Our acknowledged-delivery announcement (link.h), when configured. */
static int link_announce_delivery(psyc_link *l, psyc_packet *p)
{
    if (!l->acks)
        return 0;
    return psyc_packet_entity_c(p, PSYC_LINK_VAR_UNDERSTAND_DELIVERY, PSYC_LINK_MC_STATUS_DELIVERY);
}

int psyc_link_delivery_acks(const psyc_link *l)
{
    return l->acks && l->peer_acks;
}

int psyc_link_delivery_known(const psyc_link *l)
{
    return !l->acks || l->peer_acks || l->syntax == PSYC_SYNTAX_10 || l->peer_status;
}

int psyc_link_send_delivery_ack(psyc_link *l, const char *counter)
{
    if (!psyc_link_delivery_acks(l))
        return PSYC_ERR_INVALID;
    psyc_packet p;
    psyc_packet_init(&p);
    int rc = psyc_packet_entity_c(&p, PSYC_LINK_VAR_COUNTER_DELIVERY, counter);
    if (rc == 0)
        rc = psyc_packet_set_method(&p, PSYC_STR_LIT(PSYC_LINK_MC_STATUS_DELIVERY));
    if (rc == 0)
        rc = psyc_link_send(l, &p);
    psyc_packet_free(&p);
    return rc;
}

/* 0.9 `_status_circuit`: what we speak. Only what this build really does:
 * UTF-8, 0.9 over TCP, the _context module (PSYC.md §2.2, §4.2). */
static int link_status09(psyc_link *l)
{
    const char *proto = l->peer_v6 ? "PSYC/0.9 TCP IP/6" : "PSYC/0.9 TCP IP/4";
    psyc_buf self;
    psyc_buf_init(&self);
    psyc_packet p;
    psyc_packet_init(&p);
    int rc = link_self_uniform(l, &self);
    if (rc == 0)
        rc = psyc_packet_routing_c(&p, "_source", self.data);
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_available_characters", "UTF-8");
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_available_protocols", proto);
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_understand_modules", "_context");
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_using_characters", "UTF-8");
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_using_protocols", proto);
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_using_modules", "_context");
    if (rc == 0)
        rc = link_announce_delivery(l, &p);
    if (rc == 0)
        rc = psyc_packet_set_method(&p, PSYC_STR_LIT("_status_circuit"));
    if (rc == 0)
        rc = psyc_packet_set_data(&p, PSYC_STR_LIT("Available protocols: [_available_protocols]."));
    if (rc == 0)
        rc = psyc_render09(&p, &l->out);
    psyc_packet_free(&p);
    psyc_buf_free(&self);
    return rc;
}

/* The accepting side's 0.9 greeting, after the peer's `.` (PSYC.md §2.2,
 * §9; captures 1-circuit-greeting/02..04). psyced holds nothing back when
 * it accepts, so all three packets go at once. */
static int link_greet09(psyc_link *l)
{
    int rc = link_send_empty(l);
    if (rc == 0)
        rc = link_notice09(l);
    if (rc == 0)
        rc = link_status09(l);
    return rc;
}

/* The connecting side's opening (PSYC.md §9 "Greeting": psyced sends `.`
 * and `_notice_circuit_established` at once and `_status_circuit` after
 * the peer's greeting; §2.3 step 1: `|`). */
static int link_greet_active(psyc_link *l)
{
    int rc = link_send_empty(l);
    if (rc == 0 && l->syntax == PSYC_SYNTAX_09)
        rc = link_notice09(l);
    return rc;
}

/* Renders a packet whose modifiers and content go without lengths, as
 * psyced's sender_verification writes them (crafted/c02, c03): the values
 * are uniforms and tags, never holding LF or "\n|\n". */
static int link_render_plain(psyc_link *l, psyc_packet *p)
{
    p->flags |= PSYC_PKT_NO_CONTENT_LENGTH;
    for (size_t i = 0; i < p->n_routing; i++)
        p->routing[i].flags = PSYC_MOD_TEXT;
    for (size_t i = 0; i < p->n_entity; i++)
        p->entity[i].flags = PSYC_MOD_TEXT;
    return link_render(l, p);
}

/* psyc://HOST/ of a host name (the root uniform, PSYC.md §3.1). */
static int link_root_uniform(const char *host, psyc_buf *b)
{
    psyc_buf_reset(b);
    if (psyc_buf_puts(b, "psyc://") || psyc_buf_puts(b, host) || psyc_buf_putc(b, '/'))
        return PSYC_ERR_NOMEM;
    return 0;
}

int psyc_link_request_authorization(psyc_link *l, const char *target_host, const char *tag)
{
    if (l->syntax != PSYC_SYNTAX_10 || (l->state != PSYC_LINK_OPEN && l->state != PSYC_LINK_HOLD))
        return PSYC_ERR_INVALID;
    if (l->can_send)
        return 0;
    if (l->auth_refused)
        return PSYC_ERR_INVALID;
    if (l->tag[0] && l->auth_target[0])
        return 0; /* one request at a time; its answer makes us ready */
    snprintf(l->tag, sizeof l->tag, "%s", tag && tag[0] ? tag : "0");
    snprintf(l->auth_target, sizeof l->auth_target, "%s", target_host ? target_host : l->peer_host);
    psyc_buf self, peer;
    psyc_buf_init(&self);
    psyc_buf_init(&peer);
    psyc_packet p;
    psyc_packet_init(&p);
    /* PSYC.md §2.3 step 4 (crafted/c02): _tag, then _uniform_source = our
     * root, _uniform_target = the peer's root. */
    int rc = link_self_uniform(l, &self);
    if (rc == 0)
        rc = link_root_uniform(l->auth_target, &peer);
    if (rc == 0)
        rc = psyc_packet_routing_c(&p, "_tag", l->tag);
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_uniform_source", self.data);
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_uniform_target", peer.data);
    if (rc == 0)
        rc = link_announce_delivery(l, &p);
    if (rc == 0)
        rc = psyc_packet_set_method(&p, PSYC_STR_LIT("_request_authorization"));
    if (rc == 0)
        rc = link_render_plain(l, &p);
    psyc_packet_free(&p);
    psyc_buf_free(&self);
    psyc_buf_free(&peer);
    return rc;
}

int psyc_link_can_send(const psyc_link *l)
{
    return l->can_send && (l->state == PSYC_LINK_OPEN || l->state == PSYC_LINK_HOLD);
}

int psyc_link_send(psyc_link *l, const psyc_packet *p)
{
    if (l->state != PSYC_LINK_OPEN && l->state != PSYC_LINK_HOLD)
        return PSYC_ERR_INVALID;
    size_t before = l->out.len;
    int rc = link_render(l, p);
    if (rc < 0 && l->out.data) {
        l->out.len = before; /* nothing half-rendered goes out */
        l->out.data[before] = '\0';
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Host table (PSYC.md §5 rule 2: "already authenticated on this circuit") */

static void link_lower(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < size; i++)
        dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] - 'A' + 'a') : src[i];
    dst[i] = '\0';
}

/* 1 accepted, 0 refused, -1 unknown. */
static int link_host_lookup(const psyc_link *l, const char *host)
{
    for (size_t i = 0; i < l->n_hosts; i++)
        if (strcmp(l->hosts[i].name, host) == 0)
            return l->hosts[i].ok;
    return -1;
}

static void link_host_remember(psyc_link *l, const char *host, int ok)
{
    for (size_t i = 0; i < l->n_hosts; i++)
        if (strcmp(l->hosts[i].name, host) == 0) {
            l->hosts[i].ok = ok;
            return;
        }
    char *name = link_strdup(host);
    if (!name)
        return; /* not remembered: asked again next time */
    size_t slot;
    if (l->n_hosts < PSYC_LINK_MAX_HOSTS) {
        slot = l->n_hosts++;
    } else {
        slot = l->next_host;
        l->next_host = (l->next_host + 1) % PSYC_LINK_MAX_HOSTS;
        free(l->hosts[slot].name);
    }
    l->hosts[slot].name = name;
    l->hosts[slot].ok = ok;
}

int psyc_link_host_authenticated(const psyc_link *l, const char *host)
{
    char h[256];
    link_lower(h, sizeof h, host ? host : "");
    return link_host_lookup(l, h) == 1;
}

/* ------------------------------------------------------------------ */
/* Input                                                              */

static int link_packet_is_empty(const psyc_packet *p)
{
    return p->n_routing == 0 && p->n_entity == 0 && p->method.ptr == NULL && p->data.len == 0 &&
           p->state_op == 0;
}

static void link_emit(psyc_link *l, psyc_link_event ev, const psyc_packet *p, int arg)
{
    if (l->on_event)
        l->on_event(l->ctx, l, ev, p, arg);
}

static int link_method_is(const psyc_packet *p, const char *base)
{
    return p->method.ptr && psyc_inherits(p->method, psyc_str_c(base));
}

/* Copies a routing variable (if present) to the answer under `as`. */
static int link_copy_routing(psyc_packet *dst, const psyc_packet *src, const char *name, const char *as)
{
    const psyc_modifier *m = psyc_packet_find_routing(src, name);
    if (!m)
        return 0;
    return psyc_packet_add_routing(dst, ':', psyc_str_c(as), m->value);
}

/* _error_rejected_relay_incoming for a packet whose host did not
 * authenticate (PSYC.md §5 rule 4, psyced's text and variables). Sent to
 * the packet's _source on this circuit, with _tag_relay (§4.1 tagging
 * rule). psyced closes the circuit here; we keep it: one bad packet from
 * a relay must not cut the other senders on the same circuit. */
static void link_refuse(psyc_link *l, const psyc_packet *p, const char *host)
{
    l->refused++;
    snprintf(l->last_host, sizeof l->last_host, "%s", host);
    link_emit(l, PSYC_LINK_EV_REFUSED, p, 0);
    /* Never answer an error or failure: two refusing peers would loop. */
    if (link_method_is(p, "_error") || link_method_is(p, "_failure"))
        return;
    psyc_buf self;
    psyc_buf_init(&self);
    psyc_packet e;
    psyc_packet_init(&e);
    int rc = link_self_uniform(l, &self);
    if (rc == 0)
        rc = psyc_packet_routing_c(&e, "_source", self.data);
    if (rc == 0)
        rc = link_copy_routing(&e, p, "_source", "_target");
    if (rc == 0)
        rc = link_copy_routing(&e, p, "_tag", "_tag_relay");
    if (rc == 0)
        rc = psyc_packet_entity_c(&e, "_host_IP", l->peer_ip);
    if (rc == 0)
        rc = psyc_packet_entity_c(&e, "_host", host);
    if (rc == 0)
        rc = psyc_packet_set_method(&e, psyc_str_c(PSYC_LINK_MC_REFUSED));
    if (rc == 0)
        rc = psyc_packet_set_data(&e, psyc_str_c(PSYC_LINK_TEXT_REFUSED));
    if (rc == 0)
        rc = psyc_link_send(l, &e);
    if (rc < 0)
        psyc_link_close(l, 1, "cannot render %s: %s", PSYC_LINK_MC_REFUSED, psyc_strerror(rc));
    psyc_packet_free(&e);
    psyc_buf_free(&self);
}

/* The host a packet or an authorization request speaks for: 1 known (in
 * host), 0 none, -1 unusable. */
static int link_uniform_host(psyc_str v, char *host, size_t hostsz)
{
    psyc_uniform u;
    if (psyc_uniform_parse(&u, v) != PSYC_UNI_OK || !psyc_str_eq_c(u.scheme, "psyc") ||
        u.host.len == 0 || u.host.len >= hostsz)
        return -1;
    char tmp[256];
    memcpy(tmp, u.host.ptr, u.host.len);
    tmp[u.host.len] = '\0';
    link_lower(host, hostsz, tmp);
    return 1;
}

/* Decides `host` for this circuit: 1 accept, 0 refuse, 2 pending (the
 * link is in HOLD and the packet must be parsed again later). */
static int link_check_host(psyc_link *l, const char *host)
{
    int known = link_host_lookup(l, host);
    if (known >= 0) {
        /* The held packet keeps the reason of the check just finished. */
        if (!l->fresh_verdict)
            snprintf(l->last_why, sizeof l->last_why, "%s earlier on this circuit",
                     known ? "authenticated" : "refused");
        l->fresh_verdict = 0;
        return known;
    }
    char why[160] = "";
    int v = l->authenticate ? l->authenticate(l->ctx, l, host, why, sizeof why) : PSYC_LINK_AUTH_REFUSE;
    if (v == PSYC_LINK_AUTH_PENDING) {
        snprintf(l->held_host, sizeof l->held_host, "%s", host);
        l->state = PSYC_LINK_HOLD;
        return 2;
    }
    snprintf(l->last_why, sizeof l->last_why, "%s", why[0] ? why : v ? "accepted" : "not authenticated");
    link_host_remember(l, host, v == PSYC_LINK_AUTH_ACCEPT);
    return v == PSYC_LINK_AUTH_ACCEPT;
}

/* 1.0 `_request_authorization` from the peer (PSYC.md §2.3 step 4):
 * `_status_authorization` echoing the uniforms with `_tag_relay`, if the
 * target is us and the source host authenticates here; else
 * `_error_invalid_uniform_target` / `_error_invalid_uniform_source`.
 * Returns 2 when the source host check is pending. */
static int link_answer_authorization(psyc_link *l, const psyc_packet *p)
{
    const psyc_modifier *src = psyc_packet_find_entity(p, "_uniform_source");
    const psyc_modifier *dst = psyc_packet_find_entity(p, "_uniform_target");
    char shost[256] = "", thost[256] = "";
    const char *mc = "_status_authorization";
    if (!dst || link_uniform_host(dst->value, thost, sizeof thost) != 1 ||
        strcasecmp(thost, l->host) != 0) {
        mc = "_error_invalid_uniform_target";
    } else if (!src || link_uniform_host(src->value, shost, sizeof shost) != 1) {
        mc = "_error_invalid_uniform_source";
    } else {
        int ok = link_check_host(l, shost);
        if (ok == 2)
            return 2;
        if (!ok) {
            mc = "_error_invalid_uniform_source";
            snprintf(l->last_host, sizeof l->last_host, "%s", shost);
            l->refused++;
            link_emit(l, PSYC_LINK_EV_REFUSED, p, 0);
        }
    }
    psyc_packet a;
    psyc_packet_init(&a);
    int rc = link_copy_routing(&a, p, "_tag", "_tag_relay");
    if (rc == 0 && src)
        rc = psyc_packet_add_entity(&a, ':', PSYC_STR_LIT("_uniform_source"), src->value);
    if (rc == 0 && dst)
        rc = psyc_packet_add_entity(&a, ':', PSYC_STR_LIT("_uniform_target"), dst->value);
    /* Only to a peer that announced it: psyced's answer stays c03. */
    if (rc == 0 && l->peer_acks && strcmp(mc, "_status_authorization") == 0)
        rc = link_announce_delivery(l, &a);
    if (rc == 0)
        rc = psyc_packet_set_method(&a, psyc_str_c(mc));
    if (rc == 0)
        rc = link_render_plain(l, &a);
    if (rc < 0)
        psyc_link_close(l, 1, "cannot render %s: %s", mc, psyc_strerror(rc));
    psyc_packet_free(&a);
    return 1;
}

/* The peer's answer to our _request_authorization (matched by _tag_relay). */
static void link_authorization_answer(psyc_link *l, const psyc_packet *p)
{
    const psyc_modifier *relay = psyc_packet_find_routing(p, "_tag_relay");
    if (!l->tag[0] || !relay || !psyc_str_eq_c(relay->value, l->tag))
        return; /* not ours, or a stale answer: nothing to do */
    l->tag[0] = '\0';
    if (link_method_is(p, "_status_authorization")) {
        l->can_send = 1;
        link_emit(l, PSYC_LINK_EV_READY, p, 0);
        return;
    }
    /* Refused: we cannot send here. On our own circuit that is its end;
     * on the peer's circuit the peer may still send to us. */
    l->auth_refused = 1;
    if (l->active)
        psyc_link_close(l, 1, "peer refused our authorization: %.*s",
                        (int)(p->method.len > 80 ? 80 : p->method.len), p->method.ptr);
    else
        link_emit(l, PSYC_LINK_EV_NOT_AUTHORIZED, p, 0);
}

/* Returns 2 when the packet must wait (HOLD), else 1. */
static int link_handle_circuit_message(psyc_link *l, const psyc_packet *p)
{
    if (psyc_packet_find_entity(p, PSYC_LINK_VAR_UNDERSTAND_DELIVERY))
        l->peer_acks = 1;
    if (link_method_is(p, "_status_circuit"))
        l->peer_status = 1;
    if (l->syntax == PSYC_SYNTAX_10 && link_method_is(p, "_request_authorization")) {
        int rc = link_answer_authorization(l, p);
        if (rc == 2)
            return 2;
        link_emit(l, PSYC_LINK_EV_CIRCUIT, p, 0);
        return 1;
    }
    link_emit(l, PSYC_LINK_EV_CIRCUIT, p, 0);
    if (l->syntax == PSYC_SYNTAX_10 && psyc_packet_find_routing(p, "_tag_relay") &&
        (link_method_is(p, "_status_authorization") || link_method_is(p, "_error")))
        link_authorization_answer(l, p);
    return 1;
}

/* 1 consumed, 2 held (parse the same bytes again after the host check). */
static int link_handle_packet(psyc_link *l, const psyc_packet *p, uint64_t now_ms)
{
    int empty = link_packet_is_empty(p);

    if (l->state == PSYC_LINK_GREET) {
        /* The first packet must be the empty one that selected the syntax
         * (0.9: `.` alone, PSYC.md §2.1; 1.0: exactly `|\n`, §2.3 step 2). */
        if (!empty) {
            if (l->syntax == PSYC_SYNTAX_10)
                link_croak(l, PSYC_SYNTAX_10, "_error_syntax_initialization", TEXT_SYNTAX_INIT_10,
                           "first packet is not the empty greeting packet");
            else
                link_croak(l, PSYC_SYNTAX_09, "_error_syntax_initialization", TEXT_SYNTAX_INIT_09,
                           "first packet is not the empty greeting packet");
            return 1;
        }
        int rc;
        if (!l->active)
            rc = l->syntax == PSYC_SYNTAX_09 ? link_greet09(l) : link_send_empty(l);
        else
            rc = l->syntax == PSYC_SYNTAX_09 ? link_status09(l) : 0;
        if (rc < 0) {
            psyc_link_close(l, 1, "cannot render greeting: %s", psyc_strerror(rc));
            return 1;
        }
        l->state = PSYC_LINK_OPEN;
        link_emit(l, PSYC_LINK_EV_GREETING, p, 1);
        if (l->syntax == PSYC_SYNTAX_09) {
            /* 0.9 has no sender verification: greeted is ready (§5). */
            l->can_send = 1;
            link_emit(l, PSYC_LINK_EV_READY, p, 0);
        } else if (l->active) {
            char tag[PSYC_LINK_TAG_MAX + 1];
            snprintf(tag, sizeof tag, "%s", l->tag);
            l->tag[0] = '\0';
            rc = psyc_link_request_authorization(l, l->peer_host, tag);
            if (rc < 0)
                psyc_link_close(l, 1, "cannot render _request_authorization: %s", psyc_strerror(rc));
        }
        return 1;
    }

    if (empty) {
        l->packets_in++;
        /* A ping. psyced answers at most once per 120 s per circuit
         * (PSYC.md §2.2, parse.i case '.'); a peer cannot make us echo a
         * flood. A `.` after variable lines is a state change, not a ping
         * (o05), and arrives here as a non-empty packet. */
        int answer = !l->ponged || now_ms - l->last_pong_ms >= PSYC_LINK_PONG_INTERVAL_MS;
        if (answer) {
            int rc = link_send_empty(l);
            if (rc < 0) {
                psyc_link_close(l, 1, "cannot render pong: %s", psyc_strerror(rc));
                return 1;
            }
            l->ponged = 1;
            l->last_pong_ms = now_ms;
        }
        link_emit(l, PSYC_LINK_EV_PING, p, answer);
        return 1;
    }

    if (psyc_link_is_circuit_message(p)) {
        int rc = link_handle_circuit_message(l, p);
        if (rc != 2)
            l->packets_in++;
        return rc;
    }

    char host[256];
    int found = psyc_link_auth_subject(p, host, sizeof host);
    int ok;
    if (found < 0) {
        /* A _source/_context that is no psyc: uniform cannot be checked
         * against this circuit (PSYC.md §5), so it is not accepted. */
        snprintf(l->last_why, sizeof l->last_why, "source is not a psyc: uniform");
        snprintf(host, sizeof host, "(invalid uniform)");
        ok = 0;
    } else {
        ok = link_check_host(l, host);
        if (ok == 2)
            return 2;
    }
    l->packets_in++;
    if (ok)
        link_emit(l, PSYC_LINK_EV_PACKET, p, 0);
    else
        link_refuse(l, p, host);
    return 1;
}

static void link_parse_error(psyc_link *l, int rc, size_t offset)
{
    const char *what = psyc_strerror(rc);
    psyc_syntax s = l->syntax;

    if (l->state == PSYC_LINK_GREET) {
        link_croak(l, s, "_error_syntax_initialization",
                   s == PSYC_SYNTAX_10 ? TEXT_SYNTAX_INIT_10 : TEXT_SYNTAX_INIT_09,
                   "bad greeting: %s (%d) at byte %zu", what, rc, offset);
        return;
    }
    if (rc == PSYC_ERR_METHOD_COMPACT || rc == PSYC_ERR_SYNTAX09) {
        /* psyced answers a line without glyph or '_' this way and closes
         * (captures README; PSYC.md §2.2, §2.3 step 7). */
        link_croak(l, s, "_error_invalid_method_compact", TEXT_METHOD_COMPACT,
                   "parse error: %s (%d) at byte %zu of packet %llu", what, rc, offset,
                   (unsigned long long)l->packets_in + 1);
        return;
    }
    if (rc == PSYC_ERR_NOMEM) {
        psyc_link_close(l, 1, "out of memory while parsing");
        return;
    }
    char text[160];
    snprintf(text, sizeof text, "Your packet could not be parsed: %s.", what);
    link_croak(l, s, "_error_invalid_syntax", text, "parse error: %s (%d) at byte %zu of packet %llu",
               what, rc, offset, (unsigned long long)l->packets_in + 1);
}

char *psyc_link_read_space(psyc_link *l, size_t want, size_t *avail)
{
    /* Drop consumed packets before growing: this moves only the tail of a
     * partial packet, and only once per completed packet. */
    if (l->in_start > 0) {
        size_t rest = l->in.len - l->in_start;
        if (rest)
            memmove(l->in.data, l->in.data + l->in_start, rest);
        l->in.len = rest;
        l->in_start = 0;
    }
    if (psyc_buf_reserve(&l->in, want) != 0) {
        *avail = 0;
        return NULL;
    }
    /* psyc_buf keeps one byte for a NUL terminator. */
    *avail = l->in.cap - l->in.len - 1;
    return l->in.data + l->in.len;
}

static void link_process(psyc_link *l, uint64_t now_ms)
{
    while (l->state != PSYC_LINK_CLOSED && l->state != PSYC_LINK_TLS_START &&
           l->state != PSYC_LINK_HOLD && l->in.len > l->in_start) {
        const char *b = l->in.data + l->in_start;
        size_t avail = l->in.len - l->in_start;

        if (l->state == PSYC_LINK_DETECT) {
            unsigned char first = (unsigned char)b[0];
            l->syntax = psyc_detect_syntax(first);
            switch (l->syntax) {
            case PSYC_SYNTAX_09:
            case PSYC_SYNTAX_10:
                l->state = PSYC_LINK_GREET;
                link_emit(l, PSYC_LINK_EV_SYNTAX, NULL, 0);
                continue;
            case PSYC_SYNTAX_TLS:
                /* PSYC.md §2.1, §5: TLS is autodetected on 4404 (a TLS
                 * record starts with 0x16). No croak in either refusal: a
                 * TLS peer could not read one. */
                link_emit(l, PSYC_LINK_EV_SYNTAX, NULL, 0);
                if (l->tls)
                    psyc_link_close(l, 1, "TLS record inside TLS");
                else if (!l->tls_autodetect)
                    psyc_link_close(l, 1, "TLS not available on this circuit");
                else
                    l->state = PSYC_LINK_TLS_START; /* the caller takes over the bytes */
                return;
            default:
                /* psyced's reaction to anything else (PSYC.md §2.1). */
                link_croak(l, PSYC_SYNTAX_09, "_error_syntax_initialization", TEXT_SYNTAX_INIT_09,
                           "unknown protocol: first byte 0x%02x is not '.', '|' or TLS", first);
                return;
            }
        }

        size_t used = 0;
        int rc = l->syntax == PSYC_SYNTAX_10
                     ? psyc_parse_packet(&l->p10, b, avail, &l->pkt, &used)
                     : psyc09_parse_packet(&l->p09, b, avail, &l->pkt, &used);
        if (rc < 0) {
            size_t off = l->syntax == PSYC_SYNTAX_10 ? l->p10.error_offset : l->p09.error_offset;
            link_parse_error(l, rc, off);
            return;
        }
        if (rc == 0) {
            /* The parsers enforce max_packet themselves; this bounds what we
             * buffer even if a parser waits for a terminator it never gets. */
            if (avail > l->limits.max_packet)
                link_parse_error(l, PSYC_ERR_TOO_LARGE, avail);
            return;
        }
        if (used == 0 || used > avail) {
            psyc_link_close(l, 1, "internal error: parser consumed %zu of %zu bytes", used, avail);
            return;
        }
        if (link_handle_packet(l, &l->pkt, now_ms) == 2)
            return; /* HOLD: these bytes are parsed again after the host check */
        l->in_start += used;
    }
    if (l->in_start == l->in.len)
        l->in_start = l->in.len = 0;
}

static int link_verdict(const psyc_link *l)
{
    if (l->state == PSYC_LINK_CLOSED)
        return PSYC_LINK_VERDICT_CLOSE;
    if (l->state == PSYC_LINK_TLS_START)
        return PSYC_LINK_VERDICT_TLS;
    return PSYC_LINK_VERDICT_GO_ON;
}

int psyc_link_start_tls(psyc_link *l, psyc_buf *ciphertext)
{
    if (l->state != PSYC_LINK_TLS_START)
        return 0;
    size_t n = l->in.len - l->in_start;
    if (psyc_buf_append(ciphertext, l->in.data + l->in_start, n) != 0) {
        psyc_link_close(l, 1, "out of memory starting TLS");
        return PSYC_ERR_NOMEM;
    }
    /* From here on the link sees the plaintext inside TLS, which begins
     * with its own '.' or '|' (PSYC.md §2.1: 9404 speaks old syntax). */
    l->in.len = l->in_start = 0;
    l->state = PSYC_LINK_DETECT;
    l->syntax = PSYC_SYNTAX_UNKNOWN;
    l->tls = 1;
    return 0;
}

int psyc_link_received(psyc_link *l, size_t n, uint64_t now_ms)
{
    if (l->state == PSYC_LINK_CLOSED)
        return PSYC_LINK_VERDICT_CLOSE;
    if (n > l->in.cap - l->in.len - (l->in.cap ? 1 : 0)) {
        psyc_link_close(l, 1, "internal error: more bytes committed than reserved");
        return PSYC_LINK_VERDICT_CLOSE;
    }
    l->in.len += n;
    link_process(l, now_ms);
    return link_verdict(l);
}

int psyc_link_auth_result(psyc_link *l, const char *host, int accept, const char *why,
                          uint64_t now_ms)
{
    char h[256];
    link_lower(h, sizeof h, host ? host : "");
    if (l->state != PSYC_LINK_HOLD || strcmp(h, l->held_host) != 0)
        return link_verdict(l);
    snprintf(l->last_why, sizeof l->last_why, "%s", why && why[0] ? why : accept ? "accepted" : "not authenticated");
    link_host_remember(l, h, accept == PSYC_LINK_AUTH_ACCEPT);
    l->fresh_verdict = 1;
    l->held_host[0] = '\0';
    l->state = PSYC_LINK_OPEN;
    link_process(l, now_ms);
    return link_verdict(l);
}

int psyc_link_feed(psyc_link *l, const void *data, size_t n, uint64_t now_ms)
{
    if (l->state == PSYC_LINK_CLOSED)
        return PSYC_LINK_VERDICT_CLOSE;
    size_t avail = 0;
    char *space = psyc_link_read_space(l, n, &avail);
    if (!space || avail < n) {
        psyc_link_close(l, 1, "out of memory buffering input");
        return 1;
    }
    if (n)
        memcpy(space, data, n);
    return psyc_link_received(l, n, now_ms);
}
