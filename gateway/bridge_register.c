/* bridge_register.c: registrations kept and answered (see bridge_register.h). */
#include "gateway/bridge_register.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/bridge.h"
#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/store.h"
#include "routing/register.h"
#include "routing/routing.h"
#include "xmpp/jid.h"

#define COMP "register"
#define REG_NS "reg" /* store namespace: bare JID -> nick */

typedef struct bridge_reg_entry {
    char *jid, *nick;
} bridge_reg_entry;

static const char *reg_key_jid(const void *item)
{
    return ((const bridge_reg_entry *)item)->jid;
}

static const char *reg_key_nick(const void *item)
{
    return ((const bridge_reg_entry *)item)->nick;
}

static const char *reg_nick_of(void *ud, const char *bare)
{
    bridge_reg_entry *e = strtab_get(&((bridge *)ud)->reg.by_jid, bare);
    return e ? e->nick : NULL;
}

static const char *reg_jid_of(void *ud, const char *nick)
{
    bridge_reg_entry *e = strtab_get(&((bridge *)ud)->reg.by_nick, nick);
    return e ? e->jid : NULL;
}

static void reg_entry_free(bridge_reg_entry *e)
{
    if (e) {
        free(e->jid);
        free(e->nick);
        free(e);
    }
}

static int reg_add(bridge_reg *r, const char *jid, const char *nick)
{
    bridge_reg_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->jid = strdup(jid)) || !(e->nick = strdup(nick)) || strtab_put(&r->by_jid, e) != 0) {
        reg_entry_free(e);
        return -1;
    }
    if (strtab_put(&r->by_nick, e) != 0) {
        strtab_del(&r->by_jid, jid);
        reg_entry_free(e);
        return -1;
    }
    r->n++;
    return 0;
}

static void reg_remove(bridge_reg *r, const char *jid)
{
    bridge_reg_entry *e = strtab_del(&r->by_jid, jid);
    if (e) {
        strtab_del(&r->by_nick, e->nick);
        reg_entry_free(e);
        r->n--;
    }
}

static void reg_load_one(void *ud, const char *key, const void *value, size_t len)
{
    bridge *b = ud;
    char nick[REGISTER_NICK_MAX + 1];
    if (len > REGISTER_NICK_MAX || register_nick_normalize(value, nick, sizeof nick) != 0 ||
        strtab_get(&b->reg.by_nick, nick) || reg_add(&b->reg, key, nick) != 0)
        log_warn(COMP, NULL, "store: registration of %s ignored (bad, duplicate or out of memory)", key);
}

int bridge_register_init(bridge *b)
{
    b->reg.by_jid = (strtab)STRTAB_INIT(reg_key_jid);
    b->reg.by_nick = (strtab)STRTAB_INIT(reg_key_nick);
    if (!b->transport[0])
        return 0;
    if (b->g->store)
        store_kv_each(b->g->store, REG_NS, reg_load_one, b);
    b->map.reg = (addr_registry){reg_nick_of, reg_jid_of, b};
    b->entity.registration = 1;
    log_info(COMP, NULL, "XEP-0077 on %s: %zu registered nicks%s", b->transport, b->reg.n,
             b->g->store ? "" : " (no store: registrations last until the gateway stops)");
    return 0;
}

static void reg_free_item(void *ud, void *item)
{
    (void)ud;
    reg_entry_free(item);
}

void bridge_register_cleanup(bridge *b)
{
    strtab_each(&b->reg.by_jid, reg_free_item, NULL);
    strtab_clear(&b->reg.by_jid);
    strtab_clear(&b->reg.by_nick);
    b->reg.n = 0;
}

/* Registers `nick` for `jid` (replacing its old nick): NULL, or the
 * stanza error condition. */
static const char *reg_set(bridge *b, const char *jid, const char *nick_in)
{
    char nick[REGISTER_NICK_MAX + 1];
    if (register_nick_normalize(nick_in, nick, sizeof nick) != 0)
        return "not-acceptable";
    bridge_reg_entry *owner = strtab_get(&b->reg.by_nick, nick);
    if (owner && strcmp(owner->jid, jid) == 0)
        return NULL; /* registered already, nothing changes */
    /* Taken, or a name of the gateway's own PSYC services. */
    if (owner || strcmp(nick, ROUTING_PSYC_ECHO_NICK) == 0)
        return "conflict";
    reg_remove(&b->reg, jid);
    if (reg_add(&b->reg, jid, nick) != 0)
        return "resource-constraint";
    if (b->g->store && store_kv_set(b->g->store, REG_NS, jid, nick, strlen(nick)) != STORE_OK)
        log_warn(COMP, NULL, "store: cannot keep the registration of %s: %s", jid, store_error(b->g->store));
    log_info(COMP, jid, "registered as psyc://%s/~%s", b->g->host, nick);
    return NULL;
}

xml_node *bridge_register_reply(bridge *b, const xml_node *st)
{
    const char *to = xml_attr_get(st, "to"), *nick = NULL;
    if (!b->transport[0] || !to || strcmp(to, b->transport) != 0)
        return NULL;
    register_op op = register_parse(st, &nick);
    if (op == REGISTER_NOT)
        return NULL;
    jid_t from = JID_INIT;
    if (jid_parse_cstr(&from, xml_attr_get(st, "from")) != JID_OK)
        return routing_error_reply(st, "jid-malformed");
    /* Users of other domains only: the transport's own addresses are
     * PSYC entities already. */
    xml_node *reply = NULL;
    const char *cond = NULL;
    if (!from.local || strcmp(from.domain, b->transport) == 0) {
        cond = "not-allowed";
    } else if (op == REGISTER_QUERY) {
        reply = register_form(st, reg_nick_of(b, from.bare));
    } else if (op == REGISTER_BAD) {
        cond = "not-acceptable"; /* XEP-0077 §3.1: a required field is missing */
    } else if (op == REGISTER_REMOVE) {
        if (!reg_nick_of(b, from.bare)) {
            cond = "registration-required"; /* XEP-0077 §3.2 */
        } else {
            reg_remove(&b->reg, from.bare);
            if (b->g->store && store_kv_del(b->g->store, REG_NS, from.bare) == STORE_ERR)
                log_warn(COMP, NULL, "store: cannot remove the registration of %s: %s", from.bare,
                         store_error(b->g->store));
            log_info(COMP, from.bare, "unregistered: back to psyc://%s/~%s", b->g->host, from.bare);
        }
    } else {
        cond = reg_set(b, from.bare, nick);
    }
    if (cond)
        log_info(COMP, from.bare, "registration refused: <%s/>", cond);
    if (cond)
        reply = routing_error_reply(st, cond);
    else if (!reply)
        reply = routing_entity_result(st);
    jid_free(&from);
    return reply;
}
