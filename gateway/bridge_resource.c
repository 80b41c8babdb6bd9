/* bridge_resource.c: last available resource per user (see bridge_resource.h). */
#include "gateway/bridge_resource.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/bridge.h"
#include "xmpp/jid.h"

/* At most this many users are remembered (a bound on memory). */
#define BRIDGE_RESOURCE_MAX 100000

typedef struct bridge_res {
    char *bare, *full;
} bridge_res;

static void res_free(bridge_res *r)
{
    if (r) {
        free(r->bare);
        free(r->full);
        free(r);
    }
}

static const char *res_key(const void *item)
{
    return ((const bridge_res *)item)->bare;
}

void bridge_resource_init(strtab *t)
{
    *t = (strtab)STRTAB_INIT(res_key);
}

void bridge_resource_note(strtab *t, const xml_node *st)
{
    const char *type = xml_attr_get(st, "type");
    if (strcmp(st->name, "presence") != 0 || (type && strcmp(type, "unavailable") != 0))
        return;
    jid_t j = JID_INIT;
    if (jid_parse_cstr(&j, xml_attr_get(st, "from")) != JID_OK)
        return;
    bridge_res *old = strtab_get(t, j.bare);
    if (j.resource && !type && (!old || strcmp(old->full, j.full) != 0)) {
        bridge_res *r = calloc(1, sizeof *r);
        if (r && (r->bare = strdup(j.bare)) && (r->full = strdup(j.full)) &&
            (old || t->n < BRIDGE_RESOURCE_MAX)) {
            res_free(strtab_del(t, j.bare));
            if (strtab_put(t, r) != 0)
                res_free(r);
        } else {
            res_free(r);
        }
    } else if (type && old && (!j.resource || strcmp(old->full, j.full) == 0)) {
        res_free(strtab_del(t, j.bare));
    }
    jid_free(&j);
}

int bridge_resource_direct(bridge *b, const psyc_packet *p, psyc_packet *out)
{
    psyc_str v;
    if (!p->method.ptr || !psyc_inherits(p->method, PSYC_STR_LIT("_request_version")) ||
        psyc_packet_get(p, "_resource_target", &v) || psyc_packet_get(p, "_jabber_XML", &v) ||
        !psyc_packet_get(p, "_target", &v) ||
        v.len > PSYC_UNIFORM_MAX)
        return 0;
    char uni[PSYC_UNIFORM_MAX + 1];
    memcpy(uni, v.ptr, v.len);
    uni[v.len] = '\0';
    psyc_buf jid;
    psyc_buf_init(&jid);
    const bridge_res *r = NULL;
    if (addr_uniform_to_jid(&b->map, uni, NULL, &jid) == ADDR_OK && psyc_buf_putc(&jid, '\0') == 0)
        r = strtab_get(&b->resources, jid.data);
    psyc_buf_free(&jid);
    if (!r)
        return 0;
    const char *res = strchr(r->full, '/') + 1;
    if (psyc_packet_copy(out, p) != 0 || psyc_packet_entity_c(out, "_resource_target", res) != 0) {
        psyc_packet_free(out);
        return 0;
    }
    return 1;
}

static void res_free_item(void *ud, void *item)
{
    (void)ud;
    res_free(item);
}

void bridge_resource_clear(strtab *t)
{
    strtab_each(t, res_free_item, NULL);
    strtab_clear(t);
}
