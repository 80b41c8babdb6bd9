/* bridge.c: stanzas <-> packets between the faces (see bridge.h). */
#include "gateway/bridge.h"

#include <stdio.h>
#include <string.h>

#include "gateway/component_link.h"
#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/psyc_out.h"
#include "gateway/s2s_face.h"
#include "routing/routing.h"
#include "routing/translate.h"

#ifndef PSYCGATE_VERSION
#define PSYCGATE_VERSION "0.0.0"
#endif

#define COMP "bridge"

static const char *attr_or(const xml_node *n, const char *name)
{
    const char *v = xml_attr_get(n, name);
    return v ? v : "-";
}

/* The domain part of a JID: after the first '@' (if any), up to '/'. */
static void jid_domain_of(const char *jid, char *out, size_t size)
{
    const char *slash = strchr(jid, '/');
    size_t end = slash ? (size_t)(slash - jid) : strlen(jid);
    const char *at = memchr(jid, '@', end);
    const char *d = at ? at + 1 : jid;
    size_t n = end - (size_t)(d - jid);
    if (n >= size)
        n = size - 1;
    memcpy(out, d, n);
    out[n] = '\0';
}

static component_link *bridge_component(bridge *b, const char *domain)
{
    for (size_t i = 0; i < b->g->n_components; i++)
        if (strcmp(b->g->components[i].domain, domain) == 0)
            return &b->g->components[i];
    return NULL;
}

int bridge_init(bridge *b, gw *g)
{
    memset(b, 0, sizeof *b);
    b->g = g;
    const char *const *t = NULL;
    size_t nt = cfg_get_domains(g->cfg, "bridge", "transport", &t);
    if (nt > 1) {
        log_error(COMP, NULL, "[bridge] transport names %zu domains; one transport domain at most", nt);
        return -1;
    }
    b->map.mode = ADDR_MODE_NATURAL;
    if (nt == 1) {
        snprintf(b->transport, sizeof b->transport, "%s", t[0]);
        const char *const *comp = NULL;
        size_t nc = cfg_get_domains(g->cfg, "component", "domain", &comp);
        int served = 0;
        for (size_t i = 0; i < nc; i++)
            served |= strcmp(comp[i], b->transport) == 0;
        const char *const *s2s = NULL;
        size_t ns = cfg_get_domains(g->cfg, "s2s", "domain", &s2s);
        for (size_t i = 0; i < ns; i++)
            served |= strcmp(s2s[i], b->transport) == 0;
        if (ns == 0)
            served |= strcmp(g->host, b->transport) == 0; /* [s2s] domain defaults to host */
        if (!served) {
            log_error(COMP, NULL,
                      "[bridge] transport = %s is neither a [component] domain nor an [s2s] domain",
                      b->transport);
            return -1;
        }
        b->map.mode = ADDR_MODE_TRANSPORT;
        b->map.transport = b->transport;
        b->map.gw_host = g->host;
    }
    b->entity = (routing_entity){.name = "psycgate", .version = PSYCGATE_VERSION,
                                 .boot_ms = uv_now(g->loop)};
    b->replies = replies_new(0, 0);
    if (!b->replies) {
        log_error(COMP, NULL, "out of memory");
        return -1;
    }
    log_info(COMP, NULL, "addresses: %s%s", b->transport[0] ? "transport mode under " : "natural mode",
             b->transport);
    return 0;
}

/* 1 when a stanza from `from` has a face to leave by. */
static int bridge_has_face(bridge *b, const char *from)
{
    char domain[1024];
    jid_domain_of(from ? from : "", domain, sizeof domain);
    return bridge_component(b, domain) || s2s_face_serves(b->g->s2s, domain);
}

void bridge_cleanup(bridge *b)
{
    replies_free(b->replies);
    b->replies = NULL;
}

int bridge_send_xmpp(bridge *b, xml_node *st)
{
    const char *from = xml_attr_get(st, "from");
    char domain[1024];
    jid_domain_of(from ? from : "", domain, sizeof domain);
    component_link *l = bridge_component(b, domain);
    if (l)
        return component_link_send(l, st);
    if (s2s_face_serves(b->g->s2s, domain))
        return s2s_face_send(b->g->s2s, st);
    log_warn(COMP, NULL, "<%s/> from %s to %s dropped: %s is neither a component domain nor an S2S domain "
             "of ours", st->name, attr_or(st, "from"), attr_or(st, "to"), domain);
    xml_node_free(st);
    return -1;
}

/* An error answer to a stanza we cannot carry (never to an error). */
static void bridge_refuse(bridge *b, const xml_node *st, const char *cond, const char *why)
{
    xml_node *err = routing_error_reply(st, cond);
    log_info(COMP, NULL, "refused <%s/> from %s to %s with <%s/>: %s", st->name, attr_or(st, "from"),
             attr_or(st, "to"), cond, why);
    if (err) {
        b->stats.refused++;
        bridge_send_xmpp(b, err);
    }
}

static int bridge_local_services(bridge *b, const xml_node *st, const char *domain)
{
    xml_node *reply = routing_echo(st, domain);
    if (!reply)
        reply = routing_entity_answer(st, &b->entity, uv_now(b->g->loop));
    if (!reply)
        reply = routing_ping_reply(st, domain);
    if (!reply)
        return 0;
    b->stats.local_answers++;
    log_info(COMP, NULL, "<%s/> from %s to %s answered by the gateway", st->name, attr_or(st, "from"),
             attr_or(st, "to"));
    bridge_send_xmpp(b, reply);
    return 1;
}

static psyc_str bridge_var(const psyc_packet *p, const char *name)
{
    psyc_str v = {NULL, 0};
    if (!psyc_packet_get(p, name, &v) || !v.ptr)
        v = PSYC_STR_LIT("-");
    return v;
}

void bridge_from_xmpp(bridge *b, xml_node *st, const char *domain)
{
    b->stats.xmpp_in++;
    if (bridge_local_services(b, st, domain)) {
        xml_node_free(st);
        return;
    }
    psyc_packet p;
    psyc_packet_init(&p);
    const char *cond = NULL;
    int rc = translate_from_xmpp(&b->map, st, &p, &cond);
    if (rc == TRANSLATE_OK) {
        psyc_str src = bridge_var(&p, "_source"), ctx = bridge_var(&p, "_context");
        psyc_str target = bridge_var(&p, "_target");
        /* We speak for our own host only: a packet from elsewhere would be
         * refused by its receiver's host check (PSYC.md §5). */
        int ours = routing_psyc_is_local(src.ptr[0] == '-' ? ctx : src, b->g->host);
        if (routing_psyc_is_local(target, b->g->host)) {
            bridge_refuse(b, st, "service-unavailable", "no such entity on this gateway");
        } else if (!ours) {
            bridge_refuse(b, st, "not-allowed",
                          "its sender has no uniform on our PSYC host (natural addresses need "
                          "[bridge] transport for senders of other domains)");
        } else {
            log_info(COMP, NULL, "<%s/> from %s to %s -> %.*s to %.*s", st->name, attr_or(st, "from"),
                     attr_or(st, "to"), (int)p.method.len, p.method.ptr, (int)target.len, target.ptr);
            b->stats.to_psyc++;
            /* The answer will come to the person; note which client asked. */
            const char *id = xml_attr_get(st, "id"), *from = xml_attr_get(st, "from");
            if (id && from && strchr(from, '/'))
                replies_note(b->replies, id, from, attr_or(st, "to"), uv_now(b->g->loop));
            psyc_out_send(b->g->psyc_out, &p);
        }
    } else if (rc == TRANSLATE_IGNORE) {
        log_debug(COMP, NULL, "<%s/> from %s to %s: nothing to translate", st->name, attr_or(st, "from"),
                  attr_or(st, "to"));
    } else if (cond) {
        bridge_refuse(b, st, cond, translate_strerror(rc));
    } else {
        log_info(COMP, NULL, "<%s/> type=%s from %s to %s dropped: %s", st->name, attr_or(st, "type"),
                 attr_or(st, "from"), attr_or(st, "to"), translate_strerror(rc));
    }
    psyc_packet_free(&p);
    xml_node_free(st);
}

/* An error packet back to the sender of p (never for an error). */
static void bridge_bounce_psyc(bridge *b, const psyc_packet *p, const char *mc, const char *text)
{
    psyc_packet out;
    psyc_packet_init(&out);
    const psyc_modifier *t = psyc_packet_find_routing(p, "_target");
    char source[PSYC_UNIFORM_MAX + 1];
    snprintf(source, sizeof source, "%.*s", t ? (int)t->value.len : 0, t ? t->value.ptr : "");
    if (routing_psyc_bounce(p, source, mc, text, &out) == 1) {
        b->stats.refused++;
        psyc_out_send(b->g->psyc_out, &out);
    }
    psyc_packet_free(&out);
}

int bridge_from_psyc(bridge *b, const psyc_packet *p, const char *peer)
{
    const psyc_modifier *t = psyc_packet_find_routing(p, "_target");
    if (!t || !p->method.ptr || !routing_psyc_is_local(t->value, b->g->host))
        return 0;
    /* Our root and our own PSYC services stay with routing. */
    psyc_uniform u;
    if (psyc_uniform_parse(&u, t->value) != PSYC_UNI_OK || !u.entity_type ||
        (u.entity_type == '~' && psyc_str_eq_c(u.nick, ROUTING_PSYC_ECHO_NICK)))
        return 0;
    psyc_str src = bridge_var(p, "_source");
    xml_node *st = NULL;
    int rc = translate_to_xmpp(&b->map, p, &st);
    if (rc == TRANSLATE_OK && !bridge_has_face(b, xml_attr_get(st, "from"))) {
        /* Its sender's domain is not one we speak for on XMPP: not ours
         * to deliver; routing answers (an unknown user of this host). */
        xml_node_free(st);
        return 0;
    }
    b->stats.psyc_in++;
    const psyc_modifier *relay = psyc_packet_find_routing(p, "_tag_relay");
    if (rc == TRANSLATE_OK && relay) {
        /* An answer: to the client that asked, and an error from the JID
         * it asked (clients match errors by id and 'from'). */
        char tag[256];
        const char *full, *orig_to;
        snprintf(tag, sizeof tag, "%.*s", (int)relay->value.len, relay->value.ptr);
        if (replies_find(b->replies, tag, attr_or(st, "to"), &full, &orig_to, uv_now(b->g->loop))) {
            const char *type = xml_attr_get(st, "type");
            int bad = xml_attr_set(st, "to", full) != 0;
            if (!bad && type && strcmp(type, "error") == 0)
                bad = xml_attr_set(st, "from", orig_to) != 0;
            if (bad)
                log_warn(COMP, peer, "out of memory addressing an answer; it goes to the bare JID");
        }
    }
    if (rc == TRANSLATE_OK) {
        log_info(COMP, peer, "%.*s from %.*s to %.*s -> <%s/> from %s to %s", (int)p->method.len,
                 p->method.ptr, (int)src.len, src.ptr, (int)t->value.len, t->value.ptr, st->name,
                 attr_or(st, "from"), attr_or(st, "to"));
        b->stats.to_xmpp++;
        bridge_send_xmpp(b, st);
    } else if (rc == TRANSLATE_ERR_ADDRESS) {
        log_info(COMP, peer, "%.*s from %.*s to %.*s: no XMPP address for it", (int)p->method.len,
                 p->method.ptr, (int)src.len, src.ptr, (int)t->value.len, t->value.ptr);
        bridge_bounce_psyc(b, p, "_error_unknown_name_user", "No such user here.");
    } else if (psyc_inherits(p->method, PSYC_STR_LIT("_request")) ||
               (psyc_inherits(p->method, PSYC_STR_LIT("_message")) &&
                !psyc_inherits(p->method, PSYC_STR_LIT("_message_echo")))) {
        /* A request or message nobody will see gets an answer; notices,
         * status updates and psyced's delivery echoes (_message_echo_*)
         * we cannot express are dropped (logged). */
        log_info(COMP, peer, "%.*s from %.*s: not translated to XMPP", (int)p->method.len, p->method.ptr,
                 (int)src.len, src.ptr);
        bridge_bounce_psyc(b, p, "_error_unsupported_method", "This gateway does not translate that method.");
    } else {
        log_debug(COMP, peer, "%.*s from %.*s: not translated to XMPP, dropped", (int)p->method.len,
                  p->method.ptr, (int)src.len, src.ptr);
    }
    return 1;
}
