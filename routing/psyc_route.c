/* psyc_route.c: where an authenticated PSYC packet goes (see routing.h). */
#include "routing/routing.h"

#include <string.h>
#include <strings.h>

int routing_psyc_is_local(psyc_str uniform, const char *host)
{
    psyc_uniform u;
    if (!host || psyc_uniform_parse(&u, uniform) != PSYC_UNI_OK || !psyc_str_eq_c(u.scheme, "psyc"))
        return 0;
    return u.host.len == strlen(host) && strncasecmp(u.host.ptr, host, u.host.len) == 0;
}

static int route_is_error(const psyc_packet *p)
{
    return p->method.ptr && (psyc_inherits(p->method, PSYC_STR_LIT("_error")) ||
                             psyc_inherits(p->method, PSYC_STR_LIT("_failure")));
}

int routing_psyc_bounce(const psyc_packet *in, const char *source, const char *mc, const char *text,
                        psyc_packet *out)
{
    const psyc_modifier *src = psyc_packet_find_routing(in, "_source");
    if (!src || route_is_error(in))
        return 0;
    const psyc_modifier *target = psyc_packet_find_routing(in, "_target");
    const psyc_modifier *tag = psyc_packet_find_routing(in, "_tag");
    int rc = psyc_packet_add_routing(out, ':', PSYC_STR_LIT("_target"), src->value);
    if (rc == 0)
        rc = psyc_packet_add_routing(out, ':', PSYC_STR_LIT("_source"), psyc_str_c(source));
    if (rc == 0 && tag)
        rc = psyc_packet_add_routing(out, ':', PSYC_STR_LIT("_tag_relay"), tag->value);
    /* Which entity it was about: the sender's client shows "[_nick_target]"
     * (psyced's textdb convention for delivery errors). */
    if (rc == 0 && target) {
        psyc_uniform u;
        psyc_str nick = target->value;
        if (psyc_uniform_parse(&u, target->value) == PSYC_UNI_OK && u.nick.len)
            nick = u.nick;
        rc = psyc_packet_add_entity(out, ':', PSYC_STR_LIT("_nick_target"), nick);
        if (rc == 0)
            rc = psyc_packet_add_entity(out, ':', PSYC_STR_LIT("_uniform_target"), target->value);
    }
    if (rc == 0)
        rc = psyc_packet_set_method(out, psyc_str_c(mc));
    if (rc == 0)
        rc = psyc_packet_set_data(out, psyc_str_c(text));
    return rc < 0 ? rc : 1;
}

/* psyc://HOST/ into buf (size n); 0, or -1 when it does not fit. */
static int route_root(const char *host, char *buf, size_t n)
{
    size_t len = strlen(host);
    if (len + 9 > n)
        return -1;
    memcpy(buf, "psyc://", 7);
    memcpy(buf + 7, host, len);
    buf[7 + len] = '/';
    buf[8 + len] = '\0';
    return 0;
}

static int route_answer(const psyc_packet *in, const char *source, const char *mc, const char *text,
                        psyc_packet *out, const char **why, const char *reason)
{
    int rc = routing_psyc_bounce(in, source, mc, text, out);
    if (rc < 0)
        return rc;
    *why = rc ? reason : "an error or failure is never answered";
    return rc ? ROUTING_PSYC_ANSWER : ROUTING_PSYC_DROP;
}

int routing_psyc(const psyc_packet *in, const routing_psyc_env *env, psyc_packet *out,
                 const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    char root[300];
    if (!env || !env->host || route_root(env->host, root, sizeof root) < 0) {
        *why = "no host";
        return ROUTING_PSYC_DROP;
    }
    if (psyc_packet_find_routing(in, "_context")) {
        /* A context multicast is fanned out to local members (PSYC.md
         * §4.2); with none, psyced drops it silently, and so do we. */
        *why = "multicast: no local members of the context";
        return ROUTING_PSYC_DROP;
    }
    const psyc_modifier *target = psyc_packet_find_routing(in, "_target");
    const psyc_modifier *source = psyc_packet_find_routing(in, "_source");
    if (!source) {
        *why = "no _source to answer";
        return ROUTING_PSYC_DROP;
    }
    if (!target) {
        *why = "for our root entity: nothing to do";
        return ROUTING_PSYC_DROP;
    }
    psyc_uniform tu;
    if (psyc_uniform_parse(&tu, target->value) != PSYC_UNI_OK || !psyc_str_eq_c(tu.scheme, "psyc"))
        return route_answer(in, root, "_error_illegal_uniform", "[_uniform_target] is not a valid uniform.",
                            out, why, "target is not a psyc: uniform");

    if (routing_psyc_is_local(target->value, env->host)) {
        if (tu.resource.len == 0) {
            /* Our root entity (psyc://HOST/) has no services yet. */
            *why = "for our root entity: nothing to do";
            return ROUTING_PSYC_DROP;
        }
        int rc = routing_psyc_echo(in, env->host, out);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            *why = "echo";
            return ROUTING_PSYC_ANSWER;
        }
        if (route_is_error(in)) {
            *why = "an error or failure for a local entity: nothing to deliver it to";
            return ROUTING_PSYC_DROP;
        }
        return route_answer(in, root, "_error_unknown_name_user", "No such entity: [_nick_target].", out,
                            why, "unknown local target");
    }

    /* Not ours: a relay. psyced relays only for trusted circuits (PSYC.md
     * §5 rule 1, "RELAYING permitted"); our own users (a sender on our host,
     * authenticated as such) may always send out. */
    if (env->circuit_trusted || routing_psyc_is_local(source->value, env->host)) {
        *why = "relay to the target's host";
        return ROUTING_PSYC_FORWARD;
    }
    return route_answer(in, root, "_failure_unsupported_relay",
                        "Relaying to [_uniform_target] is not permitted.", out, why, "relay refused");
}
