/* psyc_face.c: authenticated PSYC packets to routing/, its answers out
 * (see psyc_face.h). */
#include "gateway/psyc_face.h"

#include "gateway/bridge.h"
#include "gateway/log.h"
#include "gateway/psyc_circuit.h"
#include "gateway/psyc_out.h"
#include "routing/routing.h"

#define COMP "psyc"

static int face_listed(gw *g, const char *name)
{
    const char *const *list = NULL;
    size_t n = cfg_get_domains(g->cfg, "psyc", "trusted", &list);
    return psyc_auth_listed(name, list, n);
}

int psyc_face_peer_trusted(gw *g, const char *ip)
{
    return face_listed(g, ip);
}

int psyc_face_host_trusted(gw *g, const char *host)
{
    return face_listed(g, host);
}

static int face_len(psyc_str s)
{
    return s.len > 256 ? 256 : (int)s.len;
}

void psyc_face_deliver(gw *g, psyc_circuit *c, const psyc_packet *p)
{
    /* XMPP entities behind our host are the bridge's (issue 6). */
    if (g->bridge && bridge_from_psyc(g->bridge, p, c->peer.text))
        return;
    routing_psyc_env env = {.host = g->host, .circuit_trusted = c->trusted};
    psyc_packet out;
    psyc_packet_init(&out);
    const char *why = "";
    int v = routing_psyc(p, &env, &out, &why);
    psyc_str method = p->method.ptr ? p->method : PSYC_STR_LIT("(state change)");
    const psyc_modifier *src = psyc_packet_find_routing(p, "_source");
    psyc_str source = src ? src->value : PSYC_STR_LIT("-");
    const psyc_modifier *dst = psyc_packet_find_routing(p, "_target");
    psyc_str target = dst ? dst->value : PSYC_STR_LIT("-");
    log_debug(COMP, c->peer.text, "deliver %.*s from %.*s to %.*s: \"%.*s\"", face_len(method), method.ptr,
              face_len(source), source.ptr, face_len(target), target.ptr, (int)(p->data.len > 200 ? 200 : p->data.len),
              p->data.ptr ? p->data.ptr : "");
    switch (v) {
    case ROUTING_PSYC_ANSWER: {
        const psyc_modifier *t = psyc_packet_find_routing(&out, "_target");
        log_info(COMP, c->peer.text, "%.*s from %.*s: %s: answering %.*s to %.*s", face_len(method), method.ptr,
                 face_len(source), source.ptr, why, face_len(out.method), out.method.ptr,
                 t ? face_len(t->value) : 1, t ? t->value.ptr : "-");
        psyc_out_send(g->psyc_out, &out);
        break;
    }
    case ROUTING_PSYC_FORWARD: {
        const psyc_modifier *t = psyc_packet_find_routing(p, "_target");
        log_info(COMP, c->peer.text, "%.*s from %.*s: %s %.*s", face_len(method), method.ptr, face_len(source),
                 source.ptr, why, t ? face_len(t->value) : 1, t ? t->value.ptr : "-");
        psyc_out_send(g->psyc_out, p);
        break;
    }
    case ROUTING_PSYC_DROP:
        log_debug(COMP, c->peer.text, "%.*s from %.*s: dropped: %s", face_len(method), method.ptr,
                  face_len(source), source.ptr, why);
        break;
    default:
        log_error(COMP, c->peer.text, "%.*s from %.*s: routing failed: %s", face_len(method), method.ptr,
                  face_len(source), source.ptr, psyc_strerror(v));
        break;
    }
    psyc_packet_free(&out);
}
