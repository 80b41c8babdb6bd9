/* translate_out.c: PSYC packet -> XMPP stanza (see translate.h). */
#include <string.h>

#include "routing/translate_int.h"

static int tr_is(psyc_str method, const char *base)
{
    return psyc_inherits(method, psyc_str_c(base));
}

static int tr_attr_str(xml_node *el, const char *name, psyc_str v)
{
    return xml_attr_set_ns(el, name, NULL, v.ptr, v.len) == 0 ? TRANSLATE_OK : TRANSLATE_ERR_NOMEM;
}

/* One address: `uni` (and the resource or nick `res`, may be empty) as a
 * JID into attribute `attr`. */
static int tr_out_jid(const addr_map *m, xml_node *el, const char *attr, psyc_str uni, psyc_str res)
{
    char ubuf[PSYC_UNIFORM_MAX + 1], rbuf[1024];
    if (!uni.ptr || uni.len > PSYC_UNIFORM_MAX || res.len >= sizeof rbuf)
        return TRANSLATE_ERR_ADDRESS;
    memcpy(ubuf, uni.ptr, uni.len);
    ubuf[uni.len] = '\0';
    if (res.len)
        memcpy(rbuf, res.ptr, res.len);
    rbuf[res.len] = '\0';
    psyc_buf jid;
    psyc_buf_init(&jid);
    int rc = addr_uniform_to_jid(m, ubuf, rbuf, &jid);
    rc = rc == ADDR_ERR_NOMEM ? TRANSLATE_ERR_NOMEM
         : rc != ADDR_OK      ? TRANSLATE_ERR_ADDRESS
                              : tr_attr_str(el, attr, (psyc_str){jid.data, jid.len});
    psyc_buf_free(&jid);
    return rc;
}

static int tr_is_place_uniform(psyc_str u)
{
    const char *slash = u.len > 7 ? memchr(u.ptr + 7, '/', u.len - 7) : NULL;
    return slash && slash + 1 < u.ptr + u.len && slash[1] == '@';
}

/* 'from': in a place's multicast the place and the speaker's _nick
 * (psyced's _source_relay is the speaker's uniform, PSYC.md §9); in a
 * person's presence multicast the person (_context); else _source.
 * 'to': _target, or the recipient the caller fans a multicast out to. */
static int tr_out_common(const addr_map *m, const psyc_packet *p, xml_node *el, const char *target)
{
    psyc_str ctx, none = {NULL, 0}, res = none, to;
    int rc;
    if (tr_get(p, "_context", &ctx)) {
        /* A place speaks as room/nick; a person's presence multicast as
         * the person, with the resource it came from. */
        if (tr_is_place_uniform(ctx))
            tr_get(p, "_nick", &res);
        else
            tr_get(p, "_resource_source", &res);
        rc = tr_out_jid(m, el, "from", ctx, res);
    } else {
        psyc_str src = none;
        tr_get(p, "_source", &src);
        tr_get(p, "_resource_source", &res);
        rc = tr_out_jid(m, el, "from", src, res);
    }
    if (rc != TRANSLATE_OK)
        return rc;
    res = none;
    if (!tr_get(p, "_target", &to))
        to = target ? psyc_str_c(target) : none;
    tr_get(p, "_resource_target", &res);
    return tr_out_jid(m, el, "to", to, res);
}

/* id and xml:lang, after 'type': attributes in the order clients write them. */
static int tr_out_tags(const psyc_packet *p, xml_node *el, int is_error)
{
    int rc = TRANSLATE_OK;
    psyc_str v;
    if (tr_get(p, is_error ? "_tag_relay" : "_tag", &v))
        rc = tr_attr_str(el, "id", v);
    if (rc == TRANSLATE_OK && is_error && !xml_attr_get(el, "id") && tr_get(p, "_tag_reply", &v))
        rc = tr_attr_str(el, "id", v); /* psyced's name for the same (PSYC.md §4.1) */
    if (rc == TRANSLATE_OK && tr_get(p, "_language", &v) &&
        xml_attr_set_ns(el, "lang", XML_NS_XML, v.ptr, v.len) != 0)
        rc = TRANSLATE_ERR_NOMEM;
    return rc;
}

/* _jabber_XML back into children of el. A payload that does not parse is
 * dropped (the rest of the stanza still goes out): it came from another
 * server, and a broken extension must not cost the user the message. */
typedef struct tr_payload {
    xml_node *parent;
    int oom;
} tr_payload;

static void tr_payload_stanza(void *ud, xml_node *n)
{
    tr_payload *t = ud;
    if (!xml_node_add_copy(t->parent, n))
        t->oom = 1;
    xml_node_free(n);
}

static int tr_out_payload(const psyc_packet *p, xml_node *el)
{
    psyc_str xml;
    if (!tr_get(p, "_jabber_XML", &xml) || xml.len == 0)
        return TRANSLATE_OK;
    tr_payload t = {el, 0};
    xml_node *mark = el->last_child;
    int rc = xml_parse_fragment(xml.ptr, xml.len, tr_payload_stanza, &t);
    if (rc == -2)
        return TRANSLATE_ERR_NOMEM;
    if (rc != 0) {
        /* Take back what a broken payload had added. */
        while (el->last_child != mark)
            xml_node_unlink(el->last_child);
    }
    return t.oom ? TRANSLATE_ERR_NOMEM : TRANSLATE_OK;
}

static int tr_out_body(const psyc_packet *p, xml_node *el)
{
    psyc_str action;
    psyc_buf body;
    psyc_buf_init(&body);
    int rc = TRANSLATE_OK;
    if (tr_get(p, "_action", &action)) {
        if (psyc_buf_puts(&body, "/me ") || psyc_buf_append(&body, action.ptr, action.len) ||
            (p->data.len && psyc_buf_putc(&body, ' ')))
            rc = TRANSLATE_ERR_NOMEM;
    }
    /* [_var] templates (PSYC.md §2.2) are expanded: XMPP has none. */
    if (rc == TRANSLATE_OK && p->data.len &&
        psyc_text_expand_packet(p->data, p, &body) == PSYC_ERR_NOMEM)
        rc = TRANSLATE_ERR_NOMEM;
    if (rc == TRANSLATE_OK && body.len)
        rc = tr_text_child(el, "body", NULL, (psyc_str){body.data, body.len});
    psyc_buf_free(&body);
    return rc;
}

static int tr_out_error(const psyc_packet *p, xml_node *el)
{
    const char *type = NULL;
    const char *cond = translate_error_condition(p->method, &type);
    xml_node *err = xml_elem_add(el, "error", NULL);
    if (!err || xml_attr_set(err, "type", type) != 0 || !xml_elem_add(err, cond, XML_NS_STANZA_ERRORS))
        return TRANSLATE_ERR_NOMEM;
    if (!p->data.len)
        return TRANSLATE_OK;
    psyc_buf text;
    psyc_buf_init(&text);
    int rc = psyc_text_expand_packet(p->data, p, &text) == PSYC_ERR_NOMEM
                 ? TRANSLATE_ERR_NOMEM
                 : tr_text_child(err, "text", XML_NS_STANZA_ERRORS, (psyc_str){text.data, text.len});
    psyc_buf_free(&text);
    return rc;
}

/* Marker for tr_out_kind: the <show/> comes from _degree_availability. */
static const char TR_SHOW_FROM_DEGREE[] = "(degree)";

/* _degree_availability (PSYC.md §4.3) -> <show/>: NULL for "here" (and
 * for a missing or unknown degree), "unavailable" for 0 and 1. */
static const char *tr_show_from_degree(const psyc_packet *p)
{
    psyc_str d;
    if (!tr_get(p, "_degree_availability", &d) || d.len != 1 || d.ptr[0] < '0' || d.ptr[0] > '9')
        return NULL;
    static const char *const shows[10] = {"unavailable", "unavailable", "xa", "away", "dnd",
                                          "dnd", "dnd", NULL, "chat", "chat"};
    return shows[d.ptr[0] - '0'];
}

/* A delivery echo as a XEP-0184 receipt for the message it names: the
 * <received/> it came with (in the payload), else one made from
 * _tag_relay; without either it names no message and is not translated. */
static int tr_out_receipt(const psyc_packet *p, xml_node *el)
{
    psyc_str xml, tag;
    int has_payload = tr_get(p, "_jabber_XML", &xml) && xml.len;
    if (has_payload)
        return TRANSLATE_OK; /* tr_out_payload puts it back */
    if (!tr_get(p, "_tag_relay", &tag) || tag.len == 0)
        return TRANSLATE_ERR_UNSUPPORTED;
    xml_node *r = xml_elem_add(el, "received", TR_NS_RECEIPTS);
    return r && xml_attr_set_ns(r, "id", NULL, tag.ptr, tag.len) == 0 ? TRANSLATE_OK : TRANSLATE_ERR_NOMEM;
}

/* Which stanza a method makes: name, type, and what goes inside. */
typedef enum tr_kind {
    TR_MESSAGE,  /* body, payload */
    TR_TYPING,   /* a chat state element */
    TR_TOPIC,    /* <subject/> from _topic */
    TR_PRESENCE, /* show/status/priority, payload */
    TR_PLAIN,    /* probe, subscriptions: payload only */
    TR_ERROR,
    TR_IQ,       /* _jabber_iq_<type>: payload only */
    TR_RECEIPT,  /* a delivery echo: <received/> (XEP-0184) */
    TR_PSYC_IQ,  /* psyced's requests and answers (translate_iq.c) */
    TR_MOOD,     /* _notice_mood: a XEP-0107 PEP notification */
} tr_kind;

static int tr_out_kind(psyc_str method, tr_kind *kind, const char **name, const char **type,
                       const char **extra)
{
    *name = "message";
    *type = NULL;
    *extra = NULL;
    static const char *const iq_types[] = {"get", "set", "result", "error"};
    for (size_t i = 0; i < 4; i++) {
        char m[32] = "_jabber_iq_";
        strcat(m, iq_types[i]);
        if (psyc_str_eq_c(method, m)) {
            *kind = TR_IQ;
            *name = "iq";
            *type = iq_types[i];
            return TRANSLATE_OK;
        }
    }
    if (tr_is(method, "_notice_mood")) {
        *kind = TR_MOOD;
        *type = "headline"; /* XEP-0163 §4.3 notifications */
    } else if (tr_is(method, "_error") || tr_is(method, "_failure")) {
        *kind = TR_ERROR;
        *type = "error";
    } else if (tr_is(method, "_message_echo_private")) {
        *kind = TR_RECEIPT; /* no type: XEP-0184 §5 examples send receipts typeless */
    } else if (tr_is(method, "_message_private_normal")) {
        *kind = TR_MESSAGE;
    } else if (tr_is(method, "_message_private_headline")) {
        *kind = TR_MESSAGE;
        *type = "headline";
    } else if (tr_is(method, "_message_private")) {
        *kind = TR_MESSAGE;
        *type = "chat";
    } else if (tr_is(method, "_message_public")) {
        *kind = TR_MESSAGE;
        *type = "groupchat";
    } else if (tr_is(method, "_request_set_topic") || tr_is(method, "_notice_place_topic") ||
               tr_is(method, "_status_place_topic")) {
        *kind = TR_TOPIC;
        *type = "groupchat";
    } else if (tr_is(method, "_notice_typing")) {
        *kind = TR_TYPING;
        *extra = "active";
        for (size_t i = 0; i < tr_chat_state_count; i++) {
            char m[40] = "_notice_typing_";
            strcat(m, tr_chat_states[i]);
            if (tr_is(method, m))
                *extra = tr_chat_states[i];
        }
    } else if (tr_is(method, "_notice_presence") || tr_is(method, "_status_presence")) {
        *kind = TR_PRESENCE;
        *name = "presence";
        /* The longest suffix that the method inherits: _here_busy_x is busy. */
        const char *rest = method.ptr + strlen("_notice_presence");
        psyc_str suffix = {rest, method.len - strlen("_notice_presence")};
        size_t best = 0;
        *extra = NULL;
        for (size_t i = 0; i < tr_presence_rows; i++) {
            psyc_str s = psyc_str_c(tr_presence_table[i].suffix);
            if (s.len > best && psyc_inherits(suffix, s)) {
                best = s.len;
                *extra = tr_presence_table[i].show;
            }
        }
        if (!best) /* plain _notice_presence: the degree says how present */
            *extra = TR_SHOW_FROM_DEGREE;
        if (*extra && strcmp(*extra, "unavailable") == 0) {
            *type = "unavailable";
            *extra = NULL;
        }
    } else if (tr_is(method, "_status_person")) {
        /* psyced's answer to a probe (_status_person_present, captures
         * 3-friendship-presence/16): the degree says how present. */
        *kind = TR_PRESENCE;
        *name = "presence";
        *extra = TR_SHOW_FROM_DEGREE;
        if (tr_is(method, "_status_person_absent"))
            *type = "unavailable", *extra = NULL;
    } else if (tr_is(method, "_request_status_person")) {
        *kind = TR_PLAIN;
        *name = "presence";
        *type = "probe";
    } else {
        size_t best = 0;
        for (size_t i = 0; i < tr_subscription_rows; i++) {
            psyc_str s = psyc_str_c(tr_subscription_table[i].method);
            if (s.len > best && psyc_inherits(method, s)) {
                best = s.len;
                *type = tr_subscription_table[i].type;
            }
        }
        /* psyced's variants: _status_friendship_established answers a
         * request that was already granted. */
        if (!best && tr_is(method, "_status_friendship_established"))
            *type = "subscribed", best = 1;
        if (!best)
            return TRANSLATE_ERR_UNSUPPORTED;
        *kind = TR_PLAIN;
        *name = "presence";
    }
    return TRANSLATE_OK;
}

static int tr_out_presence(const psyc_packet *p, xml_node *el, const char *show)
{
    psyc_str v;
    int rc = TRANSLATE_OK;
    if (show)
        rc = tr_text_child(el, "show", NULL, psyc_str_c(show));
    /* psyced sends an empty _description_presence with every absence
     * (captures 3-friendship-presence/19): no text, no <status/>. */
    if (rc == TRANSLATE_OK && tr_get(p, "_description_presence", &v) && v.len)
        rc = tr_text_child(el, "status", NULL, v);
    if (rc == TRANSLATE_OK && tr_get(p, "_degree_priority", &v))
        rc = tr_text_child(el, "priority", NULL, v);
    return rc;
}

int translate_to_xmpp(const addr_map *m, const psyc_packet *p, xml_node **out)
{
    return translate_to_xmpp_for(m, p, NULL, out);
}

int translate_to_xmpp_for(const addr_map *m, const psyc_packet *p, const char *target, xml_node **out)
{
    *out = NULL;
    if (!p->method.ptr)
        return TRANSLATE_ERR_UNSUPPORTED;
    tr_kind kind;
    const char *name, *type, *extra;
    psyc_str payload;
    int has_payload = tr_get(p, "_jabber_XML", &payload) && payload.len;
    int iq_answer = 0, proto = tr_iq_method(p->method, &iq_answer), rc = TRANSLATE_OK;
    if (proto >= 0) {
        kind = TR_PSYC_IQ;
        name = "iq";
        type = iq_answer ? "result" : "get";
        extra = NULL;
    } else {
        rc = tr_out_kind(p->method, &kind, &name, &type, &extra);
    }
    if (rc != TRANSLATE_OK)
        return rc;
    /* An error with a payload was an iq error (translate_in.c keeps none
     * for other errors): it goes back as one, <error/> and all. */
    int iq_error = kind == TR_ERROR && has_payload;
    if (iq_error)
        name = "iq";
    if (extra == TR_SHOW_FROM_DEGREE) {
        extra = tr_show_from_degree(p);
        if (extra && strcmp(extra, "unavailable") == 0) {
            type = "unavailable";
            extra = NULL;
        }
    }
    psyc_str ctx;
    if (kind == TR_TYPING && tr_get(p, "_context", &ctx))
        type = "groupchat";
    else if (kind == TR_TYPING)
        type = "chat";
    xml_node *el = xml_elem_new(name, NULL);
    if (!el)
        return TRANSLATE_ERR_NOMEM;
    rc = tr_out_common(m, p, el, target);
    if (rc == TRANSLATE_OK && type && xml_attr_set(el, "type", type) != 0)
        rc = TRANSLATE_ERR_NOMEM;
    int answer = kind == TR_ERROR || (kind == TR_IQ && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0)) ||
                 (kind == TR_PSYC_IQ && iq_answer);
    if (rc == TRANSLATE_OK)
        rc = tr_out_tags(p, el, answer);
    if (rc == TRANSLATE_OK) {
        psyc_str topic = {NULL, 0};
        switch (kind) {
        case TR_MESSAGE:
            rc = tr_out_body(p, el);
            break;
        case TR_TYPING:
            rc = xml_elem_add(el, extra, TR_NS_CHATSTATES) ? TRANSLATE_OK : TRANSLATE_ERR_NOMEM;
            break;
        case TR_TOPIC:
            tr_get(p, "_topic", &topic);
            rc = tr_text_child(el, "subject", NULL, topic);
            break;
        case TR_PRESENCE:
            rc = tr_out_presence(p, el, extra);
            break;
        case TR_PLAIN:
        case TR_IQ:
        case TR_MOOD:
            break;
        case TR_PSYC_IQ:
            if (!has_payload) /* psyced's own: the child from its variables */
                rc = tr_iq_out(p, proto, iq_answer, el);
            break;
        case TR_RECEIPT:
            rc = tr_out_receipt(p, el);
            break;
        case TR_ERROR:
            if (!iq_error)
                rc = tr_out_error(p, el);
            break;
        }
    }
    if (rc == TRANSLATE_OK && (kind != TR_ERROR || iq_error))
        rc = tr_out_payload(p, el);
    if (rc == TRANSLATE_OK && iq_error && !xml_child(el, "error", NULL))
        rc = tr_out_error(p, el); /* the payload did not parse */
    if (rc == TRANSLATE_OK && kind == TR_PRESENCE)
        rc = tr_mood_out_presence(p, el);
    if (rc == TRANSLATE_OK && kind == TR_MOOD)
        rc = tr_mood_out_pep(p, el);
    if (rc != TRANSLATE_OK) {
        xml_node_free(el);
        return rc;
    }
    *out = el;
    return TRANSLATE_OK;
}

int translate_as_multicast(const psyc_packet *in, psyc_packet *out)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < in->n_routing; i++) {
        const psyc_modifier *m = &in->routing[i];
        if (psyc_str_eq_c(m->name, "_target"))
            continue;
        if (psyc_str_eq_c(m->name, "_source")) {
            rc = psyc_packet_add_routing(out, ':', PSYC_STR_LIT("_context"), m->value);
            if (rc == 0)
                rc = psyc_packet_add_routing(out, ':', PSYC_STR_LIT("_source_relay"), m->value);
            continue;
        }
        rc = psyc_packet_add_routing(out, m->oper, m->name, m->value);
    }
    for (size_t i = 0; rc == 0 && i < in->n_entity; i++) {
        const psyc_modifier *m = &in->entity[i];
        if (!psyc_str_eq_c(m->name, "_resource_target"))
            rc = psyc_packet_add_entity(out, m->oper, m->name, m->value);
    }
    if (rc == 0 && in->method.ptr)
        rc = psyc_packet_set_method(out, in->method);
    if (rc == 0 && in->data.ptr)
        rc = psyc_packet_set_data(out, in->data);
    return rc;
}
