/* translate_in.c: XMPP stanza -> PSYC packet (see translate.h). */
#include <stdio.h>
#include <string.h>

#include "routing/translate_int.h"

typedef struct tr_in {
    const addr_map *m;
    const xml_node *st;
    psyc_packet *p;
    const char *cond; /* stanza error for the sender when we fail */
    int from_room;    /* 'from' is a place occupant: _context + _nick */
    int to_room;      /* 'to' is a place */
    const xml_node *used[4]; /* children translated into variables */
    size_t n_used;
} tr_in;

/* A place uniform: psyc://host/@room (PSYC.md §3.1). */
static int tr_is_place(const psyc_buf *u)
{
    for (size_t i = 8; i + 1 < u->len; i++)
        if (u->data[i] == '/')
            return u->data[i + 1] == '@';
    return 0;
}

/* Maps one address attribute. `from`: the sender (_source, or _context and
 * _nick for an occupant); else the recipient (_target, and its resource,
 * an occupant's nick too, in _resource_target: psyced's _nick_target
 * names the entity an error is about, PSYC.md §4.4). */
static int tr_in_address(tr_in *t, const char *jid, int from)
{
    psyc_buf u, r;
    psyc_buf_init(&u);
    psyc_buf_init(&r);
    int rc = addr_jid_to_uniform(t->m, jid, &u, &r);
    if (rc == ADDR_ERR_NOMEM) {
        rc = TRANSLATE_ERR_NOMEM;
    } else if (rc != ADDR_OK) {
        t->cond = from ? "jid-malformed" : "item-not-found";
        rc = TRANSLATE_ERR_ADDRESS;
    } else {
        int place = tr_is_place(&u);
        if (from && place && r.len) {
            t->from_room = 1;
            rc = tr_put(t->p, 1, "_context", u.data, u.len);
            if (rc == TRANSLATE_OK)
                rc = tr_put(t->p, 0, "_nick", r.data, r.len);
        } else {
            t->to_room = !from && place;
            rc = tr_put(t->p, 1, from ? "_source" : "_target", u.data, u.len);
            const char *rv = from ? "_resource_source" : "_resource_target";
            if (rc == TRANSLATE_OK && r.len)
                rc = tr_put(t->p, 0, rv, r.data, r.len);
        }
    }
    psyc_buf_free(&u);
    psyc_buf_free(&r);
    return rc;
}

static int tr_in_common(tr_in *t, int is_error)
{
    const char *from = xml_attr_get(t->st, "from"), *to = xml_attr_get(t->st, "to");
    if (!from || !to) {
        t->cond = "jid-malformed";
        return TRANSLATE_ERR_ADDRESS;
    }
    int rc = tr_in_address(t, from, 1);
    if (rc == TRANSLATE_OK)
        rc = tr_in_address(t, to, 0);
    const char *id = xml_attr_get(t->st, "id");
    if (rc == TRANSLATE_OK && id)
        rc = tr_put(t->p, 1, is_error ? "_tag_relay" : "_tag", id, strlen(id));
    const xml_attr *lang = xml_attr_find(t->st, "lang", XML_NS_XML);
    if (rc == TRANSLATE_OK && lang)
        rc = tr_put(t->p, 0, "_language", lang->value, lang->len);
    return rc;
}

static void tr_in_use(tr_in *t, const xml_node *n)
{
    if (n && t->n_used < sizeof t->used / sizeof t->used[0])
        t->used[t->n_used++] = n;
}

static int tr_in_is_used(const tr_in *t, const xml_node *n)
{
    for (size_t i = 0; i < t->n_used; i++)
        if (t->used[i] == n)
            return 1;
    return 0;
}

/* Every element child not turned into a variable, serialized standalone
 * (each with its own xmlns), goes into _jabber_XML (DESIGN.md §3). */
static int tr_in_payload(tr_in *t)
{
    psyc_buf xml;
    psyc_buf_init(&xml);
    int rc = TRANSLATE_OK;
    for (const xml_node *c = t->st->children; c && rc == TRANSLATE_OK; c = c->next) {
        if (c->type != XML_N_ELEMENT || tr_in_is_used(t, c))
            continue;
        int sr = xml_serialize(&xml, c, NULL);
        rc = sr == -1 ? TRANSLATE_ERR_NOMEM : sr ? TRANSLATE_ERR_INVALID : TRANSLATE_OK;
    }
    if (rc == TRANSLATE_OK && xml.len)
        rc = tr_put(t->p, 0, "_jabber_XML", xml.data, xml.len);
    psyc_buf_free(&xml);
    return rc;
}

static int tr_in_text_var(tr_in *t, const xml_node *el, const char *var)
{
    size_t len;
    const char *text = xml_elem_text(el, &len);
    if (!text)
        return TRANSLATE_ERR_NOMEM;
    tr_in_use(t, el);
    return tr_put(t->p, 0, var, text, len);
}

static int tr_in_method(tr_in *t, const char *method)
{
    return tr_nomem(psyc_packet_set_method(t->p, psyc_str_c(method)));
}

/* <message type='error'/> and <presence type='error'/>: the condition's
 * method, the <text/> as body. Never answered (RFC 6120 §8.3.1). */
static int tr_in_error(tr_in *t)
{
    const xml_node *err = xml_child(t->st, "error", NULL);
    const char *cond = NULL, *text = NULL;
    size_t text_len = 0;
    for (const xml_node *c = err ? err->children : NULL; c; c = c->next) {
        if (c->type != XML_N_ELEMENT || !c->ns || strcmp(c->ns, XML_NS_STANZA_ERRORS) != 0)
            continue;
        if (strcmp(c->name, "text") == 0)
            text = xml_elem_text(c, &text_len);
        else if (!cond)
            cond = c->name;
    }
    int rc = tr_in_method(t, translate_error_method(cond, err ? xml_attr_get(err, "type") : NULL));
    if (rc == TRANSLATE_OK && text_len)
        rc = tr_nomem(psyc_packet_set_data(t->p, (psyc_str){text, text_len}));
    return rc;
}

static const xml_node *tr_in_chat_state(const xml_node *st)
{
    for (const xml_node *c = st->children; c; c = c->next) {
        if (c->type != XML_N_ELEMENT || !c->ns || strcmp(c->ns, TR_NS_CHATSTATES) != 0)
            continue;
        for (size_t i = 0; i < tr_chat_state_count; i++)
            if (strcmp(c->name, tr_chat_states[i]) == 0)
                return c;
    }
    return NULL;
}

static int tr_in_message(tr_in *t, const char *type)
{
    const char *method;
    if (!type || strcmp(type, "normal") == 0)
        method = "_message_private_normal";
    else if (strcmp(type, "chat") == 0)
        method = "_message_private";
    else if (strcmp(type, "headline") == 0)
        method = "_message_private_headline";
    else if (strcmp(type, "groupchat") == 0)
        method = "_message_public";
    else {
        t->cond = "bad-request";
        return TRANSLATE_ERR_INVALID;
    }
    const xml_node *body = NULL, *subject = NULL;
    for (const xml_node *c = t->st->children; c; c = c->next) {
        if (!body && tr_is_content(c, "body"))
            body = c;
        else if (!subject && tr_is_content(c, "subject"))
            subject = c;
    }
    int rc = TRANSLATE_OK;
    if (body) {
        size_t len;
        const char *text = xml_elem_text(body, &len);
        if (!text)
            return TRANSLATE_ERR_NOMEM;
        tr_in_use(t, body);
        /* "/me TEXT" is an action (psyced mixin_parse.c, PSYC.md §4.5). */
        if (len > 4 && memcmp(text, "/me ", 4) == 0)
            rc = tr_put(t->p, 0, "_action", text + 4, len - 4);
        else
            rc = tr_nomem(psyc_packet_set_data(t->p, (psyc_str){text, len}));
    } else if (strcmp(method, "_message_public") == 0 && subject) {
        method = t->to_room ? "_request_set_topic" : "_notice_place_topic";
        rc = tr_in_text_var(t, subject, "_topic");
    } else if (tr_mood_pep(t->st)) {
        /* A XEP-0107 mood published over PEP (XEP-0163 §4.3): a mood is no
         * availability, so not a _notice_presence (whose receivers read
         * _degree_availability), but a notice of its own; the event stays
         * in the payload. */
        method = "_notice_mood";
        rc = tr_mood_in(t->p, tr_mood_pep(t->st));
    } else if (xml_child(t->st, "received", TR_NS_RECEIPTS)) {
        /* A delivery receipt (XEP-0184 §5) is PSYC's delivery echo of the
         * message it names (psyced's _message_echo_private, PSYC.md §4.4;
         * captures 2-message-private/09). The element stays in the payload,
         * so an XMPP receiver gets it back as sent. */
        const char *id = xml_attr_get(xml_child(t->st, "received", TR_NS_RECEIPTS), "id");
        method = "_message_echo_private";
        if (id)
            rc = tr_put(t->p, 1, "_tag_relay", id, strlen(id));
    } else {
        const xml_node *cs = tr_in_chat_state(t->st);
        if (cs) {
            tr_in_use(t, cs);
            static const char *const typing[] = {"_notice_typing_active", "_notice_typing_composing",
                                                 "_notice_typing_paused", "_notice_typing_inactive",
                                                 "_notice_typing_gone"};
            for (size_t i = 0; i < tr_chat_state_count; i++)
                if (strcmp(cs->name, tr_chat_states[i]) == 0)
                    method = typing[i];
        }
    }
    if (rc == TRANSLATE_OK)
        rc = tr_in_payload(t);
    return rc == TRANSLATE_OK ? tr_in_method(t, method) : rc;
}

static int tr_in_presence(tr_in *t, const char *type)
{
    if (type && strcmp(type, "probe") == 0)
        return tr_in_method(t, "_request_status_person");
    for (size_t i = 0; type && i < tr_subscription_rows; i++)
        if (strcmp(type, tr_subscription_table[i].type) == 0) {
            int rc = tr_in_payload(t);
            return rc == TRANSLATE_OK ? tr_in_method(t, tr_subscription_table[i].method) : rc;
        }
    if (type && strcmp(type, "unavailable") != 0)
        return TRANSLATE_IGNORE; /* unknown presence types are ignored (RFC 6121 §4.7.1) */

    /* The first <show/>, <status/> and <priority/> become variables; more
     * (e.g. <status/> in other languages) ride in the payload. */
    const xml_node *show = NULL, *delay = NULL, *status = NULL, *prio = NULL, *mood = NULL;
    int rc = TRANSLATE_OK;
    for (const xml_node *c = t->st->children; c && rc == TRANSLATE_OK; c = c->next) {
        if (!show && !type && tr_is_content(c, "show"))
            show = c;
        else if (!delay && xml_is(c, "delay", TR_NS_DELAY))
            delay = c; /* stays in the payload: its stamp comes back unchanged */
        else if (!status && tr_is_content(c, "status"))
            rc = tr_in_text_var(t, status = c, "_description_presence");
        else if (!prio && tr_is_content(c, "priority"))
            rc = tr_in_text_var(t, prio = c, "_degree_priority");
        else if (!mood && xml_is(c, "mood", TR_NS_MOOD))
            rc = tr_mood_in(t->p, mood = c); /* stays in the payload too */
    }
    const char *show_text = type ? "unavailable" : NULL;
    if (show) {
        show_text = xml_elem_text(show, NULL);
        if (!show_text)
            return TRANSLATE_ERR_NOMEM;
        tr_in_use(t, show);
    }
    const tr_presence_row *row = NULL;
    for (size_t i = 0; i < tr_presence_rows && !row; i++)
        if ((!show_text && !tr_presence_table[i].show) ||
            (show_text && tr_presence_table[i].show && strcmp(show_text, tr_presence_table[i].show) == 0))
            row = &tr_presence_table[i];
    if (!row) {
        /* RFC 6121 §4.7.2.1: show has four values; anything else is an
         * error we report rather than guess at. */
        t->cond = "bad-request";
        return TRANSLATE_ERR_INVALID;
    }
    char method[64];
    strcpy(method, delay ? "_status_presence" : "_notice_presence");
    strcat(method, row->suffix);
    if (rc == TRANSLATE_OK)
        rc = tr_put(t->p, 0, "_degree_availability", row->degree, strlen(row->degree));
    if (rc == TRANSLATE_OK)
        rc = tr_in_payload(t);
    return rc == TRANSLATE_OK ? tr_in_method(t, method) : rc;
}

/* An iq: version, last activity, ping, vCard and disco in psyced's
 * methods (translate_iq.c), any other as psyced's _jabber_iq_<type>; its
 * children always in _jabber_XML (PSYC.md §4.5), so the far XMPP edge
 * gets it back unchanged. The id is _tag on requests and _tag_relay on
 * answers (PSYC.md §4.1). */
static int tr_in_iq(tr_in *t, const char *type)
{
    static const char *const types[] = {"get", "set", "result", "error"};
    static const char *const methods[] = {"_jabber_iq_get", "_jabber_iq_set", "_jabber_iq_result",
                                          "_jabber_iq_error"};
    size_t i = 0;
    while (i < 4 && (!type || strcmp(type, types[i]) != 0))
        i++;
    int request = i < 2;
    if (i == 4 || !xml_attr_get(t->st, "id")) {
        /* RFC 6120 §8.2.3: an iq has an id and one of the four types. */
        t->cond = "bad-request";
        return TRANSLATE_ERR_INVALID;
    }
    int rc = tr_in_common(t, !request);
    /* psyced reads an answer's id as _tag_reply (PSYC.md §4.5). */
    const char *id = xml_attr_get(t->st, "id");
    if (rc == TRANSLATE_OK && !request)
        rc = tr_put(t->p, 1, "_tag_reply", id, strlen(id));
    if (rc == TRANSLATE_OK && i == 3) {
        /* An error is the method of its condition, as for messages; the
         * payload (the <error/> included) brings the iq back whole. */
        rc = tr_in_error(t);
        return rc == TRANSLATE_OK ? tr_in_payload(t) : rc;
    }
    /* Gets and results psyced has a name for cross in its terms
     * (translate_iq.c), the rest as _jabber_iq_<type>. */
    char method[64];
    snprintf(method, sizeof method, "%s", methods[i]);
    if (rc == TRANSLATE_OK && i != 1) {
        int ir = tr_iq_in(t->p, t->st, request, method, sizeof method);
        if (ir < 0)
            rc = ir;
    }
    if (rc == TRANSLATE_OK)
        rc = tr_in_payload(t);
    return rc == TRANSLATE_OK ? tr_in_method(t, method) : rc;
}

int translate_from_xmpp(const addr_map *m, const xml_node *stanza, psyc_packet *out, const char **cond)
{
    tr_in t = {.m = m, .st = stanza, .p = out};
    const char *type = xml_attr_get(stanza, "type");
    int is_error = type && strcmp(type, "error") == 0;
    int rc;
    if (stanza->type != XML_N_ELEMENT || !xml_ns_is_content(stanza->ns)) {
        rc = TRANSLATE_ERR_UNSUPPORTED;
    } else if (strcmp(stanza->name, "iq") == 0) {
        rc = tr_in_iq(&t, type);
        /* Only a request is answered with an error (RFC 6120 §8.2.3). */
        if (rc < 0 && !(type && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)))
            t.cond = NULL;
    } else if (strcmp(stanza->name, "message") != 0 && strcmp(stanza->name, "presence") != 0) {
        rc = TRANSLATE_ERR_UNSUPPORTED;
    } else {
        rc = tr_in_common(&t, is_error);
        if (rc == TRANSLATE_OK && is_error)
            rc = tr_in_error(&t);
        else if (rc == TRANSLATE_OK && stanza->name[0] == 'm')
            rc = tr_in_message(&t, type);
        else if (rc == TRANSLATE_OK)
            rc = tr_in_presence(&t, type);
    }
    /* Errors are never answered (RFC 6120 §8.3.1), nor is presence. */
    if (is_error || (stanza->type == XML_N_ELEMENT && strcmp(stanza->name, "presence") == 0))
        t.cond = NULL;
    if (cond)
        *cond = rc < 0 ? t.cond : NULL;
    if (rc != TRANSLATE_OK)
        psyc_packet_reset(out);
    return rc;
}

const char *translate_strerror(int rc)
{
    switch (rc) {
    case TRANSLATE_OK: return "ok";
    case TRANSLATE_IGNORE: return "nothing to translate";
    case TRANSLATE_ERR_NOMEM: return "out of memory";
    case TRANSLATE_ERR_ADDRESS: return "address cannot be mapped";
    case TRANSLATE_ERR_UNSUPPORTED: return "not translated";
    case TRANSLATE_ERR_INVALID: return "malformed stanza or packet";
    }
    return "unknown error";
}
