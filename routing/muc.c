/* muc.c: XEP-0045 <-> PSYC places (see muc.h). */
#include "routing/muc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "routing/place.h"
#include "routing/translate.h"

#define MUC_NS_DELAY "urn:xmpp:delay"

/* ------------------------------------------------------------------ */
/* XMPP -> PSYC                                                          */

static int muc_put(psyc_packet *p, const char *name, const char *v, size_t len)
{
    return psyc_packet_add_entity(p, ':', psyc_str_c(name), (psyc_str){v, len});
}

static int muc_addr(psyc_packet *p, const char *self, const char *room_uni, const char *method)
{
    return psyc_packet_routing_c(p, "_source", self) || psyc_packet_routing_c(p, "_target", room_uni) ||
           psyc_packet_set_method(p, psyc_str_c(method));
}

/* A groupchat or chat body: "/me x" is _action (PSYC.md §4.5). */
static int muc_body(psyc_packet *p, const xml_node *body)
{
    size_t len;
    const char *t = xml_elem_text(body, &len);
    if (!t)
        return -1;
    if (len > 4 && strncmp(t, "/me ", 4) == 0)
        return muc_put(p, "_action", t + 4, len - 4) || psyc_packet_set_data(p, PSYC_STR_LIT(""));
    return psyc_packet_set_data(p, (psyc_str){t, len});
}

static muc_req muc_fail(const char **cond, const char *c)
{
    *cond = c;
    return MUC_REQ_ERROR;
}

static muc_req muc_presence(const xml_node *st, const char *room_uni, const char *self, const char *to_nick,
                            psyc_packet *out, const char **cond)
{
    const char *type = xml_attr_get(st, "type");
    /* An error from the occupant's side: it is gone (a "ghost" occupant
     * would otherwise stay in the room for ever): it leaves. */
    if (type && (strcmp(type, "unavailable") == 0 || strcmp(type, "error") == 0))
        return muc_addr(out, self, room_uni, "_request_leave") ? muc_fail(cond, "internal-server-error")
                                                              : MUC_REQ_LEAVE;
    if (type)
        return MUC_REQ_NONE; /* subscriptions, probes: not for a room */
    if (!to_nick || !*to_nick)
        return muc_fail(cond, "jid-malformed"); /* XEP-0045 §7.2.1: a nick is required */
    /* _understand_roster: we keep the place's roster from its casts, so a
     * place of ours may leave the member list out of the echo when we
     * have members there already (routing/place.c pl_welcome). */
    if (muc_addr(out, self, room_uni, "_request_enter") || muc_put(out, "_nick", to_nick, strlen(to_nick)) ||
        muc_put(out, "_understand_roster", "1", 1))
        return muc_fail(cond, "internal-server-error");
    /* XEP-0045 §7.2.13 history limits: maxstanzas as psyced's
     * _amount_history (PSYC.md §4.5); maxchars='0' means none. */
    const xml_node *x = xml_child(st, "x", MUC_NS), *h = x ? xml_child(x, "history", NULL) : NULL;
    const char *ms = h ? xml_attr_get(h, "maxstanzas") : NULL, *mc = h ? xml_attr_get(h, "maxchars") : NULL;
    if (mc && strcmp(mc, "0") == 0)
        ms = "0";
    if (ms && strspn(ms, "0123456789") == strlen(ms) && *ms && muc_put(out, "_amount_history", ms, strlen(ms)))
        return muc_fail(cond, "internal-server-error");
    return MUC_REQ_ENTER;
}

static muc_req muc_message(const xml_node *st, const char *room_uni, const char *self, const char *to_nick,
                           psyc_packet *out, const char **cond)
{
    const char *type = xml_attr_get(st, "type");
    const xml_node *body = xml_child(st, "body", NULL), *subject = xml_child(st, "subject", NULL);
    if (type && strcmp(type, "error") == 0)
        return muc_addr(out, self, room_uni, "_request_leave") ? muc_fail(cond, "internal-server-error")
                                                              : MUC_REQ_LEAVE; /* a ghost, as above */
    int group = type && strcmp(type, "groupchat") == 0;
    if (group && to_nick && *to_nick)
        return muc_fail(cond, "bad-request"); /* groupchat to an occupant, XEP-0045 §7.5 */
    if (!group && (!to_nick || !*to_nick))
        return muc_fail(cond, "bad-request"); /* psyced: _failure_unsupported_function_whisper */
    if (!group) {
        if (!body)
            return MUC_REQ_NONE; /* chat states to an occupant are not relayed */
        if (muc_addr(out, self, room_uni, "_message_private") || muc_put(out, "_nick_target", to_nick, strlen(to_nick)) ||
            muc_body(out, body))
            return muc_fail(cond, "internal-server-error");
        return MUC_REQ_PRIVATE;
    }
    if (body) {
        if (muc_addr(out, self, room_uni, "_message_public") || muc_body(out, body))
            return muc_fail(cond, "internal-server-error");
        return MUC_REQ_PUBLIC;
    }
    if (subject) {
        size_t len;
        const char *t = xml_elem_text(subject, &len);
        if (!t || muc_addr(out, self, room_uni, "_request_set_topic") || muc_put(out, "_topic", t, len))
            return muc_fail(cond, "internal-server-error");
        return MUC_REQ_TOPIC;
    }
    return MUC_REQ_NONE;
}

/* XEP-0045 §8.2 kick (role none by nick), §9.1 ban (affiliation outcast
 * by jid; a nick is taken too). */
static muc_req muc_admin(const addr_map *m, const xml_node *st, const char *room_uni, const char *self,
                         psyc_packet *out, const char **cond)
{
    const char *type = xml_attr_get(st, "type"), *id = xml_attr_get(st, "id");
    const xml_node *q = xml_child(st, "query", MUC_NS_ADMIN);
    const xml_node *item = q ? xml_child(q, "item", NULL) : NULL;
    if (!type || strcmp(type, "set") != 0 || !item)
        return q ? muc_fail(cond, "feature-not-implemented") : MUC_REQ_NONE;
    const char *role = xml_attr_get(item, "role"), *aff = xml_attr_get(item, "affiliation");
    const char *nick = xml_attr_get(item, "nick"), *jid = xml_attr_get(item, "jid");
    int kick = role && strcmp(role, "none") == 0, ban = aff && strcmp(aff, "outcast") == 0;
    if (!kick && !ban)
        return muc_fail(cond, "feature-not-implemented");
    if (muc_addr(out, self, room_uni, ban ? "_request_ban" : "_request_kick") ||
        (id && psyc_packet_routing_c(out, "_tag", id)))
        return muc_fail(cond, "internal-server-error");
    if (nick && muc_put(out, "_nick_target", nick, strlen(nick)))
        return muc_fail(cond, "internal-server-error");
    if (ban && jid) {
        psyc_buf u;
        psyc_buf_init(&u);
        int ok = addr_jid_to_uniform(m, jid, &u, NULL) == ADDR_OK && !muc_put(out, "_uniform_target", u.data, u.len);
        psyc_buf_free(&u);
        if (!ok)
            return muc_fail(cond, "jid-malformed");
    } else if (!nick) {
        return muc_fail(cond, "bad-request");
    }
    const xml_node *reason = xml_child(item, "reason", NULL);
    size_t len;
    const char *r = reason ? xml_elem_text(reason, &len) : NULL;
    if (r && len && muc_put(out, "_reason", r, len))
        return muc_fail(cond, "internal-server-error");
    return ban ? MUC_REQ_BAN : MUC_REQ_KICK;
}

xml_node *muc_disco_info(const xml_node *iq, const char *name)
{
    static const char *const features[] = {MUC_NS, "muc_nonanonymous", "muc_open", "muc_public",
                                           "muc_unmoderated", "muc_unsecured", "muc_persistent"};
    const char *type = xml_attr_get(iq, "type"), *from = xml_attr_get(iq, "from"), *to = xml_attr_get(iq, "to");
    const xml_node *q = xml_child(iq, "query", "http://jabber.org/protocol/disco#info");
    if (strcmp(iq->name, "iq") != 0 || !type || strcmp(type, "get") != 0 || !q || !from || !to ||
        xml_attr_get(q, "node"))
        return NULL;
    xml_node *r = xml_elem_new("iq", NULL);
    xml_node *rq = r ? xml_elem_add(r, "query", "http://jabber.org/protocol/disco#info") : NULL;
    xml_node *id = rq ? xml_elem_add(rq, "identity", NULL) : NULL;
    const char *iqid = xml_attr_get(iq, "id");
    int bad = !id || xml_attr_set(r, "from", to) || xml_attr_set(r, "to", from) || xml_attr_set(r, "type", "result") ||
              (iqid && xml_attr_set(r, "id", iqid)) || xml_attr_set(id, "category", "conference") ||
              xml_attr_set(id, "type", "text") || xml_attr_set(id, "name", name);
    for (size_t i = 0; !bad && i < sizeof features / sizeof features[0]; i++) {
        xml_node *f = xml_elem_add(rq, "feature", NULL);
        bad = !f || xml_attr_set(f, "var", features[i]);
    }
    if (bad) {
        xml_node_free(r);
        return NULL;
    }
    return r;
}

muc_req muc_request(const addr_map *m, const xml_node *st, const char *room_uni, const char *self,
                    const char *to_nick, psyc_packet *out, const char **cond)
{
    *cond = NULL;
    if (strcmp(st->name, "presence") == 0)
        return muc_presence(st, room_uni, self, to_nick, out, cond);
    if (strcmp(st->name, "message") == 0)
        return muc_message(st, room_uni, self, to_nick, out, cond);
    if (strcmp(st->name, "iq") == 0 && (!to_nick || !*to_nick))
        return muc_admin(m, st, room_uni, self, out, cond);
    return MUC_REQ_NONE;
}

/* ------------------------------------------------------------------ */
/* PSYC -> XMPP                                                          */

void muc_stanzas_free(muc_stanzas *s)
{
    for (size_t i = 0; i < s->n; i++)
        xml_node_free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

static int muc_push(muc_stanzas *s, xml_node *n)
{
    if (!n)
        return -1;
    if (place_grow(&s->v, &s->cap, s->n, sizeof *s->v)) {
        xml_node_free(n);
        return -1;
    }
    s->v[s->n++] = n;
    return 0;
}

/* Pushes a stanza unless building it failed: 1, or -1 (st freed). */
static int muc_emit(muc_stanzas *out, xml_node *st, int bad)
{
    if (bad || !st) {
        xml_node_free(st);
        return -1;
    }
    return muc_push(out, st) ? -1 : 1;
}

/* A variable as a C string into buf ("" when absent); 1 when present. */
static int muc_var(const psyc_packet *p, const char *name, char *buf, size_t size)
{
    psyc_str v;
    buf[0] = '\0';
    if (!psyc_packet_get(p, name, &v) || !v.ptr)
        return 0;
    snprintf(buf, size, "%.*s", (int)v.len, v.ptr);
    return 1;
}

/* A new stanza from room[/nick] to the occupant. */
static xml_node *muc_stanza(const muc_view *v, const char *name, const char *nick, const char *type)
{
    xml_node *st = xml_elem_new(name, NULL);
    char from[3072];
    if (nick && *nick)
        snprintf(from, sizeof from, "%s/%s", v->room, nick);
    else
        snprintf(from, sizeof from, "%s", v->room);
    if (!st || xml_attr_set(st, "from", from) || xml_attr_set(st, "to", v->to) ||
        (type && xml_attr_set(st, "type", type))) {
        xml_node_free(st);
        return NULL;
    }
    return st;
}

static int muc_text(xml_node *parent, const char *name, const char *ns, const char *text, size_t len)
{
    xml_node *c = xml_elem_add(parent, name, ns);
    return !c || (len && !xml_text_add(c, text, len)) ? -1 : 0;
}

static int muc_status(xml_node *x, const char *code)
{
    xml_node *s = xml_elem_add(x, "status", NULL);
    return !s || xml_attr_set(s, "code", code) ? -1 : 0;
}

typedef struct muc_item {
    const char *uni;       /* member uniform: its real JID (non-anonymous room) */
    const char *aff, *role;
    const char *new_nick;  /* 303 */
    const char *actor, *reason;
    const char *codes[4];
} muc_item;

/* <presence from=room/nick> <x muc#user><item .../><status/>...</x> */
static xml_node *muc_presence_of(const muc_view *v, const char *nick, const char *type, const muc_item *it,
                                 const char *status_text)
{
    xml_node *st = muc_stanza(v, "presence", nick, type);
    xml_node *x = st ? xml_elem_add(st, "x", MUC_NS_USER) : NULL;
    xml_node *item = x ? xml_elem_add(x, "item", NULL) : NULL;
    int bad = !item || xml_attr_set(item, "affiliation", it->aff) || xml_attr_set(item, "role", it->role);
    if (!bad && it->uni) {
        psyc_buf jid;
        psyc_buf_init(&jid);
        int self = v->self && strcmp(it->uni, v->self) == 0;
        if (self)
            bad = xml_attr_set(item, "jid", v->to);
        else if (addr_uniform_to_jid(v->map, it->uni, NULL, &jid) == ADDR_OK && !psyc_buf_putc(&jid, '\0'))
            bad = xml_attr_set(item, "jid", jid.data);
        psyc_buf_free(&jid);
    }
    if (!bad && it->new_nick)
        bad = xml_attr_set(item, "nick", it->new_nick);
    if (!bad && it->actor && *it->actor) {
        xml_node *a = xml_elem_add(item, "actor", NULL);
        bad = !a || xml_attr_set(a, "nick", it->actor);
    }
    if (!bad && it->reason && *it->reason)
        bad = muc_text(item, "reason", NULL, it->reason, strlen(it->reason));
    for (size_t i = 0; !bad && i < 4 && it->codes[i]; i++)
        bad = muc_status(x, it->codes[i]);
    if (!bad && status_text && *status_text)
        bad = muc_text(st, "status", NULL, status_text, strlen(status_text));
    if (bad) {
        xml_node_free(st);
        return NULL;
    }
    return st;
}

static int muc_is(const psyc_packet *p, const char *base)
{
    return psyc_inherits(p->method, psyc_str_c(base));
}

/* The relay (speaker) of a context packet, "" when none. */
static void muc_relay(const psyc_packet *p, char *buf, size_t size)
{
    const psyc_modifier *r = psyc_packet_find_routing(p, "_source_relay");
    if (!r)
        r = psyc_packet_find_routing(p, "_source");
    snprintf(buf, size, "%.*s", r ? (int)r->value.len : 0, r ? r->value.ptr : "");
}

static int muc_is_self(const muc_view *v, const char *uni)
{
    return v->self && strcasecmp(uni, v->self) == 0;
}

/* Owner: affiliation owner, role moderator; everyone else a participant. */
static void muc_roles(muc_item *it, int owner)
{
    it->aff = owner ? "owner" : "none";
    it->role = owner ? "moderator" : "participant";
}

/* XEP-0082 date-time of a unix time. */
static void muc_stamp(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, size, "1970-01-01T00:00:00Z");
}

typedef struct muc_nick {
    const char *nick;
    size_t idx; /* in the member list */
    char *fold;
} muc_nick;

static int muc_by_fold(const void *a, const void *b)
{
    return strcmp(((const muc_nick *)a)->fold, ((const muc_nick *)b)->fold);
}

/* The XEP-0045 §7.2 burst: others first, then the self-presence. */
static int muc_burst(const muc_view *v, const psyc_packet *p, muc_stanzas *out)
{
    char **unis = NULL, **nicks = NULL;
    size_t nu = place_list(p, "_list_members", &unis), nn = place_list(p, "_list_members_nicks", &nicks);
    char owner[PSYC_UNIFORM_MAX + 1], duty[32], hist[32], mynick[1024];
    muc_var(p, "_uniform_owner", owner, sizeof owner);
    muc_var(p, "_duty", duty, sizeof duty);
    muc_var(p, "_amount_history", hist, sizeof hist);
    muc_var(p, "_nick", mynick, sizeof mynick);
    size_t n = nu < nn ? nu : nn;
    int rc = 0, added = 0;
    if (nu == (size_t)-1 || nn == (size_t)-1) {
        n = 0;
        rc = -1;
    }
    /* Lookalikes: sort by Nameprep, neighbours with the same fold. */
    muc_nick *by = n ? calloc(n, sizeof *by) : NULL;
    const char **look = n ? calloc(n, sizeof *look) : NULL;
    if (n && (!by || !look))
        rc = -1;
    for (size_t i = 0; !rc && i < n; i++) {
        by[i] = (muc_nick){nicks[i], i, place_nick_fold(nicks[i])};
        if (!by[i].fold)
            rc = -1;
    }
    if (!rc && n) {
        qsort(by, n, sizeof *by, muc_by_fold);
        for (size_t i = 0; i < n; i++) {
            const char *other = i > 0 && strcmp(by[i - 1].fold, by[i].fold) == 0   ? by[i - 1].nick
                                : i + 1 < n && strcmp(by[i + 1].fold, by[i].fold) == 0 ? by[i + 1].nick
                                                                                       : NULL;
            if (other && strcmp(other, by[i].nick) != 0)
                look[by[i].idx] = other;
        }
    }
    for (size_t i = 0; !rc && i < n; i++) {
        if (muc_is_self(v, unis[i]) && strcmp(nicks[i], mynick) == 0)
            continue;
        muc_item it = {.uni = unis[i]};
        muc_roles(&it, owner[0] && strcasecmp(owner, unis[i]) == 0);
        char status[1200];
        if (look[i])
            snprintf(status, sizeof status, "lookalike of %s", look[i]);
        rc = muc_push(out, muc_presence_of(v, nicks[i], NULL, &it, look[i] ? status : NULL));
        added += !rc;
    }
    if (!rc) {
        muc_item it = {.uni = v->self, .codes = {"100", "110"}};
        muc_roles(&it, strcmp(duty, "owner") == 0);
        if (atoi(hist) > 0)
            it.codes[2] = "170";
        rc = muc_push(out, muc_presence_of(v, mynick, NULL, &it, NULL));
        added += !rc;
    }
    for (size_t i = 0; by && i < n; i++)
        free(by[i].fold);
    free(by);
    free(look);
    place_list_free(unis, nu);
    place_list_free(nicks, nn);
    return rc ? -1 : added;
}

static int muc_enter(const muc_view *v, const psyc_packet *p, muc_stanzas *out)
{
    char relay[PSYC_UNIFORM_MAX + 1], nick[1024], duty[32], look[1024], status[1200];
    muc_relay(p, relay, sizeof relay);
    muc_var(p, "_nick", nick, sizeof nick);
    muc_var(p, "_duty", duty, sizeof duty);
    int lk = muc_var(p, "_nick_lookalike", look, sizeof look) && look[0];
    snprintf(status, sizeof status, "lookalike of %s", look);
    muc_item it = {.uni = relay};
    muc_roles(&it, strcmp(duty, "owner") == 0);
    if (muc_is_self(v, relay))
        it.codes[0] = "110";
    return muc_push(out, muc_presence_of(v, nick, NULL, &it, lk ? status : NULL)) ? -1 : 1;
}

static int muc_leave(const muc_view *v, const psyc_packet *p, muc_stanzas *out)
{
    char relay[PSYC_UNIFORM_MAX + 1], nick[1024], actor[1024], reason[2048];
    muc_relay(p, relay, sizeof relay);
    muc_var(p, "_nick", nick, sizeof nick);
    muc_var(p, "_nick_actor", actor, sizeof actor);
    muc_var(p, "_reason", reason, sizeof reason);
    int ban = muc_is(p, "_notice_place_leave_ban"), kick = muc_is(p, "_notice_place_leave_kick");
    muc_item it = {.uni = relay, .aff = ban ? "outcast" : "none", .role = "none", .actor = actor, .reason = reason};
    size_t k = 0;
    if (ban)
        it.codes[k++] = "301";
    if (kick)
        it.codes[k++] = "307";
    if (muc_is_self(v, relay))
        it.codes[k++] = "110";
    const char *why = muc_is(p, "_notice_place_leave_netburp") ? "netsplit" : NULL;
    return muc_push(out, muc_presence_of(v, nick, "unavailable", &it, why)) ? -1 : 1;
}

static int muc_nick_change(const muc_view *v, const psyc_packet *p, muc_stanzas *out)
{
    char relay[PSYC_UNIFORM_MAX + 1], old[1024], nick[1024];
    muc_relay(p, relay, sizeof relay);
    muc_var(p, "_nick", old, sizeof old);
    muc_var(p, "_nick_new", nick, sizeof nick);
    int self = muc_is_self(v, relay);
    muc_item it = {.uni = relay, .new_nick = nick, .codes = {"303", self ? "110" : NULL}};
    muc_roles(&it, 0);
    if (muc_push(out, muc_presence_of(v, old, "unavailable", &it, NULL)))
        return -1;
    muc_item now = {.uni = relay, .codes = {self ? "110" : NULL}};
    muc_roles(&now, 0);
    return muc_push(out, muc_presence_of(v, nick, NULL, &now, NULL)) ? -1 : 2;
}

/* groupchat (or chat, for a whisper) from room/nick. */
static int muc_talk(const muc_view *v, const psyc_packet *p, int private, muc_stanzas *out)
{
    char nick[1024], when[32];
    muc_var(p, "_nick", nick, sizeof nick);
    xml_node *st = muc_stanza(v, "message", nick, private ? "chat" : "groupchat");
    psyc_str action;
    int bad = !st;
    if (!bad && psyc_packet_get(p, "_action", &action) && action.ptr) {
        xml_node *b = xml_elem_add(st, "body", NULL);
        bad = !b || !xml_text_add(b, "/me ", 4) || (action.len && !xml_text_add(b, action.ptr, action.len));
    } else if (!bad) {
        bad = muc_text(st, "body", NULL, p->data.ptr ? p->data.ptr : "", p->data.ptr ? p->data.len : 0);
    }
    if (!bad && private)
        bad = !xml_elem_add(st, "x", MUC_NS_USER);
    /* History (unicast within the context, PSYC.md §4.1): XEP-0203 delay. */
    if (!bad && !private && psyc_packet_find_routing(p, "_target") && muc_var(p, "_time_place", when, sizeof when)) {
        char stamp[40];
        muc_stamp(atoll(when), stamp, sizeof stamp);
        xml_node *d = xml_elem_add(st, "delay", MUC_NS_DELAY);
        bad = !d || xml_attr_set(d, "stamp", stamp) || xml_attr_set(d, "from", v->room);
    }
    return muc_emit(out, st, bad);
}

static int muc_subject(const muc_view *v, const psyc_packet *p, muc_stanzas *out)
{
    char nick[1024];
    psyc_str topic = {"", 0};
    muc_var(p, "_nick", nick, sizeof nick);
    psyc_packet_get(p, "_topic", &topic);
    xml_node *st = muc_stanza(v, "message", nick, "groupchat");
    return muc_emit(out, st, !st || muc_text(st, "subject", NULL, topic.ptr ? topic.ptr : "", topic.ptr ? topic.len : 0));
}

/* Errors the place sends; a few get the condition XEP-0045 names. */
static const char *muc_condition(psyc_str method, const char **type)
{
    static const struct {
        const char *method, *cond, *type;
    } t[] = {
        {"_error_necessary_membership", "not-acceptable", "modify"}, /* §7.4 */
        {"_error_place_enter_necessary_nick", "jid-malformed", "modify"},
        {"_error_forbidden", "forbidden", "auth"},                     /* §7.2.7, §8.2 */
        {"_error_duplicate", "conflict", "cancel"},                    /* §7.2.8 */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (psyc_inherits(method, psyc_str_c(t[i].method))) {
            *type = t[i].type;
            return t[i].cond;
        }
    return translate_error_condition(method, type);
}

static int muc_error(const muc_view *v, const psyc_packet *p, muc_stanzas *out)
{
    const char *type = NULL, *cond = muc_condition(p->method, &type);
    char tag[256];
    int iq = muc_var(p, "_tag_relay", tag, sizeof tag);
    const char *name = iq ? "iq" : v->joining ? "presence" : "message";
    xml_node *st = muc_stanza(v, name, v->joining && !iq ? v->nick : NULL, "error");
    xml_node *e = st ? xml_elem_add(st, "error", NULL) : NULL;
    int bad = !e || xml_attr_set(e, "type", type) || !xml_elem_add(e, cond, XML_NS_STANZA_ERRORS) ||
              (iq && xml_attr_set(st, "id", tag));
    if (!bad && p->data.ptr && p->data.len) {
        psyc_buf text;
        psyc_buf_init(&text);
        bad = psyc_text_expand_packet(p->data, p, &text) != 0 ||
              muc_text(e, "text", XML_NS_STANZA_ERRORS, text.data, text.len);
        psyc_buf_free(&text);
    }
    return muc_emit(out, st, bad);
}

static int muc_iq_result(const muc_view *v, const psyc_packet *p, muc_stanzas *out)
{
    char tag[256];
    if (!muc_var(p, "_tag_relay", tag, sizeof tag))
        return 0;
    xml_node *st = muc_stanza(v, "iq", NULL, "result");
    return muc_emit(out, st, !st || xml_attr_set(st, "id", tag));
}

int muc_to_xmpp(const muc_view *v, const psyc_packet *p, muc_stanzas *out)
{
    if (!p->method.ptr)
        return 0;
    if (muc_is(p, "_error") || muc_is(p, "_failure"))
        return muc_error(v, p, out);
    if (muc_is(p, "_echo_place_enter") || muc_is(p, "_echo_context_enter"))
        return muc_burst(v, p, out);
    if (muc_is(p, "_notice_place_enter") || muc_is(p, "_notice_context_enter"))
        return muc_enter(v, p, out);
    if (muc_is(p, "_notice_place_leave") || muc_is(p, "_notice_context_leave"))
        return muc_leave(v, p, out);
    if (muc_is(p, "_echo_place_leave")) {
        /* Not in the place (any more): the client is out. */
        muc_item it = {.uni = v->self, .aff = "none", .role = "none", .codes = {"110"}};
        return muc_push(out, muc_presence_of(v, v->nick, "unavailable", &it, NULL)) ? -1 : 1;
    }
    if (muc_is(p, "_notice_place_nick"))
        return muc_nick_change(v, p, out);
    if (muc_is(p, "_message_public"))
        return muc_talk(v, p, 0, out);
    if (muc_is(p, "_message_private") && psyc_packet_find_routing(p, "_context"))
        return muc_talk(v, p, 1, out);
    if (muc_is(p, "_notice_place_topic") || muc_is(p, "_status_place_topic"))
        return muc_subject(v, p, out);
    if (muc_is(p, "_echo_place_kick") || muc_is(p, "_echo_place_ban"))
        return muc_iq_result(v, p, out);
    return 0;
}

/* ------------------------------------------------------------------ */
/* An XMPP MUC room seen as a place (issue 7, second part)              */

/* XEP-0082 date-time to unix seconds; -1 when it is none. */
static int64_t muc_unstamp(const char *stamp)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!stamp || sscanf(stamp, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                         &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

int muc_from_room(const xml_node *st, const char *room_uni, const char *relay, psyc_packet *out)
{
    const char *from = xml_attr_get(st, "from"), *type = xml_attr_get(st, "type");
    const char *slash = from ? strchr(from, '/') : NULL;
    const char *nick = slash ? slash + 1 : NULL;
    const char *method = NULL;
    const xml_node *body = xml_child(st, "body", NULL), *subject = xml_child(st, "subject", NULL);
    const xml_node *x = xml_child(st, "x", MUC_NS_USER), *item = x ? xml_child(x, "item", NULL) : NULL;
    int codes = 0; /* 1: 303, 2: 307, 4: 301 */
    for (const xml_node *c = x ? xml_child(x, "status", NULL) : NULL; c; c = xml_next(c, "status", NULL)) {
        const char *code = xml_attr_get(c, "code");
        codes |= !code ? 0 : !strcmp(code, "303") ? 1 : !strcmp(code, "307") ? 2 : !strcmp(code, "301") ? 4 : 0;
    }
    if (strcmp(st->name, "message") == 0 && type && strcmp(type, "groupchat") == 0)
        method = body ? "_message_public" : subject ? "_notice_place_topic" : NULL;
    else if (strcmp(st->name, "presence") == 0 && nick && !type)
        method = "_notice_place_enter";
    else if (strcmp(st->name, "presence") == 0 && nick && type && strcmp(type, "unavailable") == 0)
        method = codes & 1   ? "_notice_place_nick"
                 : codes & 4 ? "_notice_place_leave_ban"
                 : codes & 2 ? "_notice_place_leave_kick"
                             : "_notice_place_leave";
    if (!method)
        return 0;
    int bad = psyc_packet_routing_c(out, "_source_relay", relay) || psyc_packet_routing_c(out, "_context", room_uni) ||
              psyc_packet_set_method(out, psyc_str_c(method)) || (nick && psyc_packet_entity_c(out, "_nick", nick));
    if (!bad && body) {
        bad = muc_body(out, body);
        const xml_node *d = xml_child(st, "delay", MUC_NS_DELAY);
        int64_t t = d ? muc_unstamp(xml_attr_get(d, "stamp")) : -1;
        char tb[24];
        snprintf(tb, sizeof tb, "%lld", (long long)t);
        if (!bad && t >= 0)
            bad = psyc_packet_entity_c(out, "_time_place", tb);
    } else if (!bad && subject) {
        size_t len;
        const char *t = xml_elem_text(subject, &len);
        bad = !t || muc_put(out, "_topic", t, len);
    } else if (!bad && (codes & 1) && item && xml_attr_get(item, "nick")) {
        bad = psyc_packet_entity_c(out, "_nick_new", xml_attr_get(item, "nick"));
    }
    return bad ? -1 : 1;
}
