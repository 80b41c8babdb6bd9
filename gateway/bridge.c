/* bridge.c: stanzas <-> packets between the faces (see bridge.h). */
#include "gateway/bridge.h"
#include "gateway/bridge_resource.h"
#include "gateway/bridge_xep33.h"
#include "gateway/digest_peer.h"
#include "gateway/bridge_outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/component_link.h"
#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/mcast_ctx.h"
#include "gateway/place_host.h"
#include "gateway/place_local.h"
#include "gateway/psyc_out.h"
#include "gateway/s2s_face.h"
#include "gateway/store.h"
#include "gateway/strlist.h"
#include "routing/routing.h"
#include "routing/subs.h"
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

/* The bare part of a JID (up to its '/') into out; "" for NULL. */
static void bridge_bare(const char *jid, char *out, size_t size)
{
    snprintf(out, size, "%.*s", jid ? (int)strcspn(jid, "/") : 0, jid ? jid : "");
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

/* Keeps the subscription state between the local (XMPP) and the remote
 * (PSYC) entity of a subscription stanza that crossed, in the store
 * (RFC 6121 Appendix A via routing/subs.h). */
static void bridge_note_subscription(bridge *b, const xml_node *st, int outbound)
{
    const char *type = xml_attr_get(st, "type");
    if (!b->g->store || strcmp(st->name, "presence") != 0 || !type ||
        (strncmp(type, "sub", 3) != 0 && strncmp(type, "unsub", 5) != 0))
        return;
    char local[1024], remote[1024];
    const char *l = xml_attr_get(st, outbound ? "from" : "to"), *r = xml_attr_get(st, outbound ? "to" : "from");
    bridge_bare(l, local, sizeof local);
    bridge_bare(r, remote, sizeof remote);
    int old = store_sub_get(b->g->store, local, remote);
    if (old < 0)
        return;
    unsigned next = subs_next((unsigned)old, type, outbound);
    if (next == (unsigned)old)
        return;
    char a[64], z[64];
    if (store_sub_set(b->g->store, local, remote, next) == STORE_OK)
        log_info(COMP, NULL, "subscription %s -> %s: %s, now %s (%s %s)", local, remote,
                 subs_name((unsigned)old, a, sizeof a), subs_name(next, z, sizeof z), type,
                 outbound ? "sent" : "received");
    else
        log_warn(COMP, NULL, "store: cannot keep the subscription %s -> %s: %s", local, remote,
                 store_error(b->g->store));
}

static void bridge_on_burst(void *ud, const char *from, const void *payload, size_t len, int changed,
                            const char *const *rcpt, size_t n);

static int bridge_fan_out_local(void *ud, const psyc_packet *p, const char *context, const char *peer);

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
    bridge_resource_init(&b->resources);
    if (bridge_register_init(b) != 0) {
        log_error(COMP, NULL, "out of memory");
        return -1;
    }
    b->replies = replies_new(0, 0);
    if (!b->replies) {
        log_error(COMP, NULL, "out of memory");
        return -1;
    }
    b->iq_timeout_ms = cfg_get_uint(g->cfg, "bridge", "iq_timeout") * 1000u;
    if (uv_timer_init(g->loop, &b->timer) != 0) {
        log_error(COMP, NULL, "cannot create the iq timer");
        return -1;
    }
    b->timer.data = b;
    b->timer_live = 1;
    b->pc = pc_new(0, 0, bridge_on_burst, b);
    if (!b->pc || uv_timer_init(g->loop, &b->pc_timer) != 0) {
        log_error(COMP, NULL, "cannot set up presence coalescing");
        return -1;
    }
    b->pc_timer.data = b;
    b->pc_timer_live = 1;
    mcast_ctx_set_deliver(g->mcast, '~', bridge_fan_out_local, b);
    b->x33 = bridge_xep33_new();
    if (!b->x33) {
        log_error(COMP, NULL, "out of memory");
        return -1;
    }
    b->outbox = bridge_outbox_new(b);
    if (!b->outbox) {
        log_error(COMP, NULL, "cannot set up the component outbox");
        return -1;
    }
    bridge_outbox_resume(b->outbox);
    log_info(COMP, NULL, "addresses: %s%s", b->transport[0] ? "transport mode under " : "natural mode",
             b->transport);
    return 0;
}

int bridge_has_face(bridge *b, const char *from)
{
    char domain[1024];
    jid_domain_of(from ? from : "", domain, sizeof domain);
    return bridge_component(b, domain) || s2s_face_serves(b->g->s2s, domain);
}

#define BRIDGE_MAX_PENDING 10000
#define BRIDGE_MAX_EXPIRED 1024

static void pending_free(bridge_pending *p)
{
    free(p->tag);
    free(p->requester);
    free(p->to);
    free(p);
}

static void bridge_arm(bridge *b);

/* A timeout error for a requester behind PSYC: the iq error as a packet
 * (_failure_unsuccessful_delivery_timeout with _tag_relay). Takes iq. */
static void bridge_timeout_to_psyc(bridge *b, xml_node *iq)
{
    psyc_packet p;
    psyc_packet_init(&p);
    if (translate_from_xmpp(&b->map, iq, &p, NULL) == TRANSLATE_OK)
        psyc_out_send(b->g->psyc_out, &p);
    psyc_packet_free(&p);
    xml_node_free(iq);
}

/* Unanswered requests get <remote-server-timeout/> (RFC 6120 §8.3.3.16):
 * the entity behind PSYC did not answer in time. */
static void bridge_expire(bridge *b, uint64_t now, int all)
{
    while (b->pending && (all || b->pending->deadline_ms <= now)) {
        bridge_pending *p = b->pending;
        b->pending = p->next;
        if (!b->pending)
            b->pending_tail = NULL;
        b->n_pending--;
        if (!all) {
            xml_node *iq = xml_elem_new("iq", NULL);
            xml_node *err = iq ? xml_elem_add(iq, "error", NULL) : NULL;
            if (err && !xml_attr_set(iq, "from", p->to) && !xml_attr_set(iq, "to", p->requester) &&
                !xml_attr_set(iq, "type", "error") && !xml_attr_set(iq, "id", p->tag) &&
                !xml_attr_set(err, "type", "wait") &&
                xml_elem_add(err, "remote-server-timeout", XML_NS_STANZA_ERRORS)) {
                log_info(COMP, NULL, "iq %s from %s to %s: no answer within %llu s: <remote-server-timeout/>",
                         p->tag, p->requester, p->to, (unsigned long long)(b->iq_timeout_ms / 1000u));
                b->stats.iq_timeouts++;
                if (p->psyc_requester)
                    bridge_timeout_to_psyc(b, iq);
                else
                    bridge_send_xmpp(b, iq);
            } else {
                xml_node_free(iq);
            }
            /* Remember it a while: its answer may still come (a late result,
             * or the give-up bounce of its packet), and the requester has
             * had its error already. */
            p->next = NULL;
            if (b->expired_tail)
                b->expired_tail->next = p;
            else
                b->expired = p;
            b->expired_tail = p;
            if (++b->n_expired > BRIDGE_MAX_EXPIRED) {
                bridge_pending *old = b->expired;
                b->expired = old->next;
                b->n_expired--;
                pending_free(old);
            }
            continue;
        }
        pending_free(p);
    }
}

static void bridge_on_timer(uv_timer_t *t)
{
    bridge *b = t->data;
    bridge_expire(b, uv_now(b->g->loop), 0);
    bridge_arm(b);
}

static void bridge_arm(bridge *b)
{
    if (!b->timer_live)
        return;
    if (!b->pending) {
        uv_timer_stop(&b->timer);
        return;
    }
    uint64_t now = uv_now(b->g->loop);
    uv_timer_start(&b->timer, bridge_on_timer, b->pending->deadline_ms > now ? b->pending->deadline_ms - now : 0,
                   0);
}

/* Notes an iq request that went to PSYC (one timeout for all: the list
 * stays in deadline order). */
static void bridge_pending_add(bridge *b, const char *tag, const char *requester, const char *to,
                               int psyc_requester)
{
    if (b->n_pending >= BRIDGE_MAX_PENDING)
        bridge_expire(b, b->pending->deadline_ms, 0); /* the oldest answers now */
    bridge_pending *p = calloc(1, sizeof *p);
    if (!p || !(p->tag = strdup(tag)) || !(p->requester = strdup(requester)) || !(p->to = strdup(to))) {
        if (p)
            pending_free(p);
        log_warn(COMP, NULL, "out of memory: iq %s from %s will not time out", tag, requester);
        return;
    }
    p->deadline_ms = uv_now(b->g->loop) + b->iq_timeout_ms;
    p->psyc_requester = psyc_requester;
    if (b->pending_tail)
        b->pending_tail->next = p;
    else
        b->pending = p;
    b->pending_tail = p;
    b->n_pending++;
    if (b->pending == p)
        bridge_arm(b);
}

/* The answer to a pending request came: it no longer times out. 1 when
 * (tag, requester) was pending. */
static int bridge_pending_done(bridge *b, const char *tag, const char *requester)
{
    for (bridge_pending **pp = &b->pending, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
        bridge_pending *p = *pp;
        if (strcmp(p->tag, tag) == 0 && strcmp(p->requester, requester) == 0) {
            *pp = p->next;
            if (b->pending_tail == p)
                b->pending_tail = prev;
            b->n_pending--;
            pending_free(p);
            bridge_arm(b);
            return 1;
        }
    }
    return 0;
}

/* 1 when (tag, requester) timed out before: its answer is late. */
static int bridge_expired(const bridge *b, const char *tag, const char *requester)
{
    for (const bridge_pending *p = b->expired; p; p = p->next)
        if (strcmp(p->tag, tag) == 0 && strcmp(p->requester, requester) == 0)
            return 1;
    return 0;
}

/* A PSYC error about an iq request (e.g. the give-up bounce) translates to
 * an error <message/>; the requester waits for an <iq type='error'/> with
 * its id (RFC 6120 §8.2.3). Returns the iq (st is freed), or st itself
 * when it is no such error or memory ran out. */
static xml_node *bridge_as_iq_error(xml_node *st)
{
    const char *type = xml_attr_get(st, "type");
    xml_node *err = xml_child(st, "error", NULL);
    if (strcmp(st->name, "message") != 0 || !type || strcmp(type, "error") != 0 || !err)
        return st;
    xml_node *iq = xml_elem_new("iq", NULL);
    static const char *const attrs[] = {"from", "to", "type", "id"};
    int bad = !iq;
    for (size_t i = 0; !bad && i < 4; i++)
        bad = xml_attr_get(st, attrs[i]) && xml_attr_set(iq, attrs[i], xml_attr_get(st, attrs[i])) != 0;
    if (bad || !xml_node_add_copy(iq, err)) {
        xml_node_free(iq);
        return st;
    }
    xml_node_free(st);
    return iq;
}

void bridge_stop(bridge *b)
{
    if (b->n_pending)
        log_info(COMP, NULL, "stopping: %zu iq requests still wait for an answer from PSYC", b->n_pending);
    bridge_expire(b, 0, 1);
    if (b->timer_live) {
        uv_close((uv_handle_t *)&b->timer, NULL);
        b->timer_live = 0;
    }
    /* Open presence bursts go out now (into the queues and the store). */
    pc_free(b->pc);
    b->pc = NULL;
    if (b->pc_timer_live) {
        uv_close((uv_handle_t *)&b->pc_timer, NULL);
        b->pc_timer_live = 0;
    }
    bridge_outbox_stop(b->outbox);
}

void bridge_cleanup(bridge *b)
{
    pc_free(b->pc);
    b->pc = NULL;
    bridge_expire(b, 0, 1);
    while (b->expired) {
        bridge_pending *p = b->expired;
        b->expired = p->next;
        pending_free(p);
    }
    b->expired_tail = NULL;
    b->n_expired = 0;
    replies_free(b->replies);
    bridge_register_cleanup(b);
    bridge_resource_clear(&b->resources);
    b->replies = NULL;
    bridge_xep33_free(b->x33);
    b->x33 = NULL;
    bridge_outbox_free(b->outbox);
    b->outbox = NULL;
}

int bridge_send_xmpp(bridge *b, xml_node *st)
{
    const char *from = xml_attr_get(st, "from");
    char domain[1024];
    jid_domain_of(from ? from : "", domain, sizeof domain);
    component_link *l = bridge_component(b, domain);
    if (l)
        return bridge_outbox_send(b->outbox, l, st);
    if (s2s_face_serves(b->g->s2s, domain))
        return bridge_outbox_send_s2s(b->outbox, st);
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
    xml_node *reply = bridge_register_reply(b, st);
    if (!reply)
        reply = routing_echo(st, domain);
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

/* ------------------------------------------------------------------ */
/* Presence offload (issue 7, DESIGN.md §5): the N copies the XMPP server
 * sends for one broadcast become one context multicast per PSYC host that
 * has subscribers; the receiving gateway fans out to its own. */

static void bridge_keep_first(void *ud, xml_node *n)
{
    xml_node **out = ud;
    if (!*out)
        *out = n;
    else
        xml_node_free(n);
}

/* One stanza back from its standalone serialization. */
static xml_node *bridge_parse_one(const void *data, size_t len)
{
    xml_node *out = NULL;
    xml_parse_fragment(data, len, bridge_keep_first, &out);
    return out;
}

/* store_sub_each* callback: collects the JIDs. */
static void bridge_collect(void *ud, const char *jid, unsigned state)
{
    (void)state;
    strlist_push(ud, jid); /* out of memory: that one is not reached */
}

static int bridge_same_bare(const char *a, const char *b)
{
    size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
    return la == lb && strncmp(a, b, la) == 0;
}

/* The PSYC host (root uniform) an XMPP address maps to, into out. */
static int bridge_host_of(bridge *b, const char *jid, char *out, size_t size)
{
    psyc_buf u;
    psyc_buf_init(&u);
    int ok = addr_jid_to_uniform(&b->map, jid, &u, NULL) == ADDR_OK;
    psyc_uniform pu;
    if (ok)
        ok = psyc_uniform_parse(&pu, (psyc_str){u.data, u.len}) == PSYC_UNI_OK;
    if (ok)
        snprintf(out, size, "%.*s/", (int)pu.root.len, pu.root.ptr);
    psyc_buf_free(&u);
    return ok;
}

/* Sends one copy of the broadcast to `to` the one-to-one way. */
static void bridge_presence_unicast(bridge *b, const xml_node *tmpl, const char *to)
{
    xml_node *st = xml_node_copy(tmpl);
    if (!st || xml_attr_set(st, "to", to) != 0) {
        xml_node_free(st);
        return;
    }
    psyc_packet p;
    psyc_packet_init(&p);
    if (translate_from_xmpp(&b->map, st, &p, NULL) == TRANSLATE_OK) {
        b->stats.to_psyc++;
        mcast_ctx_count_unicast(b->g->mcast, NULL, &p); /* per-link counters, both modes */
        psyc_out_send(b->g->psyc_out, &p);
    }
    psyc_packet_free(&p);
    xml_node_free(st);
}

static void bridge_on_burst(void *ud, const char *from, const void *payload, size_t len, int changed,
                            const char *const *rcpt, size_t n)
{
    bridge *b = ud;
    if (n == 0) {
        log_debug(COMP, NULL, "presence of %s unchanged: not sent again", from);
        return;
    }
    xml_node *tmpl = bridge_parse_one(payload, len);
    if (!tmpl) {
        log_warn(COMP, NULL, "presence of %s: cannot rebuild the broadcast; dropped", from);
        return;
    }
    /* Who of the other side may see this sender's presence, by host. */
    strlist subs = STRLIST_INIT, mc_hosts = STRLIST_INIT;
    /* [multicast] enabled = no: every copy one to one (the bench baseline). */
    int mc_on = mcast_ctx_enabled(b->g->mcast) || !b->g->mcast, mc_state = 0;
    psyc_packet mc;
    psyc_packet_init(&mc);
    char bare[1024];
    bridge_bare(from, bare, sizeof bare);
    if (changed && b->g->store)
        store_sub_each(b->g->store, bare, STORE_SUB_FROM, bridge_collect, &subs);
    /* Each address's PSYC host once ("" when it has none). */
    typedef char bridge_host[300];
    bridge_host *rh = calloc(n, sizeof *rh), *sh = calloc(subs.n ? subs.n : 1, sizeof *sh);
    int *done = calloc(n, sizeof *done);
    if (!rh || !sh || !done) {
        /* Out of memory: every copy goes one to one rather than not at all. */
        for (size_t i = 0; i < n; i++)
            bridge_presence_unicast(b, tmpl, rcpt[i]);
        n = 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!bridge_host_of(b, rcpt[i], rh[i], sizeof rh[i]))
            rh[i][0] = '\0';
    for (size_t k = 0; rh && sh && done && k < subs.n; k++)
        if (!bridge_host_of(b, subs.v[k], sh[k], sizeof sh[k]))
            sh[k][0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (done[i])
            continue;
        if (!rh[i][0]) {
            bridge_presence_unicast(b, tmpl, rcpt[i]);
            continue;
        }
        const char *host = rh[i];
        /* This host's recipients in the burst, and its subscribers. */
        size_t in_burst = 0, subscribers = 0, covered = 0;
        for (size_t k = i; k < n; k++)
            if (!done[k] && strcmp(rh[k], host) == 0) {
                done[k] = 2; /* in this group */
                in_burst++;
            }
        for (size_t s2 = 0; s2 < subs.n; s2++) {
            if (strcmp(sh[s2], host) != 0)
                continue;
            subscribers++;
            for (size_t k = i; k < n; k++)
                if (done[k] == 2 && bridge_same_bare(rcpt[k], subs.v[s2])) {
                    covered++;
                    break;
                }
        }
        /* A broadcast reaches every subscriber there: one multicast, and
         * the other side fans out. Anything less (a directed presence, a
         * recipient we hold no subscription for) goes one to one. */
        int multicast = mc_on && changed && subscribers > 0 && covered == subscribers && in_burst == subscribers;
        int sent = 0;
        if (multicast && mc_state == 0) {
            /* The context packet is the same for every host: built once. */
            xml_node *st = xml_node_copy(tmpl);
            psyc_packet p;
            psyc_packet_init(&p);
            mc_state = st && xml_attr_set(st, "to", rcpt[i]) == 0 &&
                               translate_from_xmpp(&b->map, st, &p, NULL) == TRANSLATE_OK &&
                               translate_as_multicast(&p, &mc) == 0
                           ? 1
                           : -1;
            psyc_packet_free(&p);
            xml_node_free(st);
        }
        if (multicast && mc_state == 1) {
            b->stats.presence_multicasts++;
            b->stats.presence_copies_saved += in_burst - 1;
            log_info(COMP, NULL, "presence of %s -> one %.*s multicast to %s for %zu subscribers", from,
                     (int)mc.method.len, mc.method.ptr, host, in_burst);
            /* The hosts become the routes of the person's context
             * (gateway/mcast_ctx.h: a tree among psycgates). */
            if (b->g->mcast)
                strlist_push(&mc_hosts, host);
            else
                psyc_out_send_via(b->g->psyc_out, psyc_str_c(host), &mc);
            sent = 1;
        }
        for (size_t k = i; k < n; k++) {
            if (done[k] == 2 && !sent)
                bridge_presence_unicast(b, tmpl, rcpt[k]);
            if (done[k] == 2)
                done[k] = 1;
        }
    }
    const psyc_modifier *ctx = mc_hosts.n ? psyc_packet_find_routing(&mc, "_context") : NULL;
    if (ctx) {
        char person[PSYC_UNIFORM_MAX + 1];
        snprintf(person, sizeof person, "%.*s", (int)ctx->value.len, ctx->value.ptr);
        b->stats.to_psyc++;
        mcast_ctx_route_set(b->g->mcast, person, (const char *const *)mc_hosts.v, mc_hosts.n);
        mcast_ctx_send(b->g->mcast, person, &mc);
    }
    psyc_packet_free(&mc);
    strlist_free(&mc_hosts);
    free(rh);
    free(sh);
    free(done);
    strlist_free(&subs);
    xml_node_free(tmpl);
}

static void bridge_pc_arm(bridge *b);

static void bridge_on_pc_timer(uv_timer_t *t)
{
    bridge *b = t->data;
    pc_tick(b->pc, uv_now(b->g->loop));
    bridge_pc_arm(b);
}

static void bridge_pc_arm(bridge *b)
{
    if (!b->pc_timer_live)
        return;
    uint64_t due = pc_next_deadline(b->pc), now = uv_now(b->g->loop);
    if (due == PC_NO_DEADLINE)
        uv_timer_stop(&b->pc_timer);
    else
        uv_timer_start(&b->pc_timer, bridge_on_pc_timer, due > now ? due - now : 0, 0);
}

/* A presence broadcast copy (available or unavailable, from a client's
 * full JID) goes to the coalescer instead of straight out. 1 when taken. */
static int bridge_coalesce(bridge *b, const xml_node *st)
{
    const char *type = xml_attr_get(st, "type"), *from = xml_attr_get(st, "from");
    const char *to = xml_attr_get(st, "to");
    if (!b->pc || !b->g->store || strcmp(st->name, "presence") != 0 || !from || !to || !strchr(from, '/') ||
        (type && strcmp(type, "unavailable") != 0))
        return 0;
    xml_node *c = xml_node_copy(st);
    psyc_buf payload;
    psyc_buf_init(&payload);
    int ok = c && (xml_attr_remove(c, "to", NULL), xml_attr_remove(c, "id", NULL),
                   xml_serialize(&payload, c, NULL) == 0);
    if (ok)
        pc_feed(b->pc, from, to, payload.data, payload.len, uv_now(b->g->loop));
    psyc_buf_free(&payload);
    xml_node_free(c);
    if (ok)
        bridge_pc_arm(b);
    return ok;
}

/* A presence multicast for a person on another host: one stanza to each
 * of our users who sees that person's presence (the store's TO bit). The
 * deliver callback of gateway/mcast_ctx.h for '~' contexts: it runs once
 * per packet, in the person's order. */
static int bridge_fan_out_local(void *ud, const psyc_packet *p, const char *context, const char *peer)
{
    bridge *b = ud;
    (void)context;
    const psyc_modifier *ctx = psyc_packet_find_routing(p, "_context");
    psyc_uniform u;
    if (!ctx || psyc_packet_find_routing(p, "_target") || !b->g->store || !p->method.ptr ||
        !(psyc_inherits(p->method, PSYC_STR_LIT("_notice_presence")) ||
          psyc_inherits(p->method, PSYC_STR_LIT("_status_presence"))) ||
        psyc_uniform_parse(&u, ctx->value) != PSYC_UNI_OK || u.entity_type != '~' ||
        routing_psyc_is_local(ctx->value, b->g->host))
        return 0;
    /* The person as an XMPP address (translated once toward itself). */
    xml_node *probe = NULL;
    char ctxs[PSYC_UNIFORM_MAX + 1];
    snprintf(ctxs, sizeof ctxs, "%.*s", (int)ctx->value.len, ctx->value.ptr);
    if (translate_to_xmpp_for(&b->map, p, ctxs, &probe) != TRANSLATE_OK)
        return 0;
    char remote[1024];
    const char *f = attr_or(probe, "from");
    bridge_bare(f, remote, sizeof remote);
    int face = bridge_has_face(b, f);
    xml_node_free(probe);
    if (!face)
        return 0;
    strlist locals = STRLIST_INIT;
    store_sub_each_remote(b->g->store, remote, STORE_SUB_TO, bridge_collect, &locals);
    /* One stanza translated toward the first subscriber is the template
     * for all (only 'to' differs): bridge_xep33_fanout sends it as one
     * XEP-0033 stanza per XMPP server with a multicast service, else one
     * stanza per subscriber. */
    xml_node *tmpl = NULL;
    for (size_t i = 0; !tmpl && i < locals.n; i++) {
        psyc_buf lu;
        psyc_buf_init(&lu);
        if (addr_jid_to_uniform(&b->map, locals.v[i], &lu, NULL) != ADDR_OK || psyc_buf_putc(&lu, '\0') != 0 ||
            translate_to_xmpp_for(&b->map, p, lu.data, &tmpl) != TRANSLATE_OK)
            tmpl = NULL;
        psyc_buf_free(&lu);
    }
    size_t sent = tmpl ? bridge_xep33_fanout(b, tmpl, (const char *const *)locals.v, locals.n) : 0;
    xml_node_free(tmpl);
    b->stats.psyc_in++;
    b->stats.presence_fanout += sent;
    log_info(COMP, peer, "%.*s multicast of %s -> %zu stanzas to our subscribers", (int)p->method.len,
             p->method.ptr, remote, sent);
    strlist_free(&locals);
    return 1;
}

/* Context packets (trees, relays, resends) go through the distribution
 * manager, which orders them and calls bridge_fan_out_local. */
static int bridge_fan_out(bridge *b, const psyc_packet *p, const char *peer)
{
    if (b->g->mcast)
        return mcast_ctx_receive(b->g->mcast, p, peer);
    return bridge_fan_out_local(b, p, NULL, peer);
}

void bridge_from_xmpp(bridge *b, xml_node *st, const char *domain)
{
    b->stats.xmpp_in++;
    /* Rooms and the places we host (issue 7, gateway/place_local.h). */
    if (place_local_from_xmpp(b->g->place_local, st, domain)) {
        xml_node_free(st);
        return;
    }
    bridge_resource_note(&b->resources, st);
    if (bridge_xep33_from_xmpp(b, st, domain))
        return;
    if (bridge_local_services(b, st, domain) || bridge_coalesce(b, st)) {
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
            const char *type = xml_attr_get(st, "type");
            if (id && from && strcmp(st->name, "iq") == 0 && type &&
                (strcmp(type, "get") == 0 || strcmp(type, "set") == 0))
                bridge_pending_add(b, id, from, attr_or(st, "to"), 0);
            /* An answer to a request from PSYC: no timeout for it now; one
             * after it is dropped (the requester had its error). */
            if (id && strcmp(st->name, "iq") == 0 && type &&
                (strcmp(type, "result") == 0 || strcmp(type, "error") == 0) &&
                !bridge_pending_done(b, id, attr_or(st, "to")) && bridge_expired(b, id, attr_or(st, "to")))
                log_info(COMP, NULL, "iq %s from %s to %s dropped: it came after the requester's timeout", id,
                         attr_or(st, "from"), attr_or(st, "to"));
            else
                psyc_out_send(b->g->psyc_out, &p);
            bridge_note_subscription(b, st, 1);
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
    if (digest_peer_from_psyc(b->g->digest, p, peer)) /* membership digests (issue 7) */
        return 1;
    if (bridge_fan_out(b, p, peer))
        return 1;
    /* Requests to our places, and places' packets for our occupants. */
    if (place_host_from_psyc(b->g->place_host, p, peer) || place_local_from_psyc(b->g->place_local, p, peer))
        return 1;
    const psyc_modifier *t = psyc_packet_find_routing(p, "_target");
    if (!t || !p->method.ptr || !routing_psyc_is_local(t->value, b->g->host))
        return 0;
    psyc_packet direct;
    if (bridge_resource_direct(b, p, &direct)) {
        /* To the client we last saw (gateway/bridge_resource.h). */
        int taken = bridge_from_psyc(b, &direct, peer);
        psyc_packet_free(&direct);
        return taken;
    }
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
    if (!relay) /* psyced answers with _tag_reply (PSYC.md §4.5), routing or not */
        relay = psyc_packet_find_routing(p, "_tag_reply");
    if (!relay)
        relay = psyc_packet_find_entity(p, "_tag_reply");
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
    if (rc == TRANSLATE_OK && relay) {
        char tag[256];
        snprintf(tag, sizeof tag, "%.*s", (int)relay->value.len, relay->value.ptr);
        if (bridge_pending_done(b, tag, attr_or(st, "to"))) {
            st = bridge_as_iq_error(st);
        } else if (bridge_expired(b, tag, attr_or(st, "to"))) {
            log_info(COMP, peer, "%.*s to %s for iq %s dropped: it came after the requester's timeout",
                     (int)p->method.len, p->method.ptr, attr_or(st, "to"), tag);
            xml_node_free(st);
            return 1;
        }
    }
    if (rc == TRANSLATE_OK) {
        log_info(COMP, peer, "%.*s from %.*s to %.*s -> <%s/> from %s to %s", (int)p->method.len,
                 p->method.ptr, (int)src.len, src.ptr, (int)t->value.len, t->value.ptr, st->name,
                 attr_or(st, "from"), attr_or(st, "to"));
        b->stats.to_xmpp++;
        bridge_note_subscription(b, st, 0);
        /* A request from PSYC times out like ours (bridge_expire). */
        const char *type = xml_attr_get(st, "type"), *id = xml_attr_get(st, "id");
        if (id && strcmp(st->name, "iq") == 0 && type && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0))
            bridge_pending_add(b, id, attr_or(st, "from"), attr_or(st, "to"), 1);
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
