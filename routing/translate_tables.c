/* translate_tables.c: the mapping tables both directions read (see
 * translate.h for the grammar they implement). */
#include <string.h>

#include "routing/translate_int.h"

const tr_presence_row tr_presence_table[] = {
    {NULL, "_here", "7"},
    {"chat", "_here_talkative", "8"},
    {"dnd", "_here_busy", "6"},
    {"away", "_away", "3"},
    {"xa", "_absent_vacation", "2"},
    {"unavailable", "_absent", "1"},
};
const size_t tr_presence_rows = sizeof tr_presence_table / sizeof tr_presence_table[0];

const char *const tr_chat_states[] = {"active", "composing", "paused", "inactive", "gone"};
const size_t tr_chat_state_count = sizeof tr_chat_states / sizeof tr_chat_states[0];

/* RFC 6121 §3; PSYC.md §4.3. */
const tr_subscription_row tr_subscription_table[] = {
    {"subscribe", "_request_friendship"},
    {"subscribed", "_notice_friendship_established"},
    {"unsubscribe", "_notice_friendship_removed_request"},
    {"unsubscribed", "_notice_friendship_removed"},
};
const size_t tr_subscription_rows = sizeof tr_subscription_table / sizeof tr_subscription_table[0];

int tr_is_content(const xml_node *n, const char *name)
{
    return n && n->type == XML_N_ELEMENT && strcmp(n->name, name) == 0 && xml_ns_is_content(n->ns);
}

int tr_nomem(int rc)
{
    return rc == PSYC_ERR_NOMEM ? TRANSLATE_ERR_NOMEM : (rc ? TRANSLATE_ERR_INVALID : TRANSLATE_OK);
}

int tr_put(psyc_packet *p, int routing, const char *name, const char *value, size_t len)
{
    psyc_str n = psyc_str_c(name), v = {value, len};
    return tr_nomem(routing ? psyc_packet_add_routing(p, ':', n, v) : psyc_packet_add_entity(p, ':', n, v));
}

int tr_get(const psyc_packet *p, const char *name, psyc_str *v)
{
    return psyc_packet_get(p, name, v) && v->ptr;
}

int tr_text_child(xml_node *el, const char *name, const char *ns, psyc_str text)
{
    xml_node *c = xml_elem_add(el, name, ns);
    if (!c || (text.len && !xml_text_add(c, text.ptr, text.len)))
        return TRANSLATE_ERR_NOMEM;
    return TRANSLATE_OK;
}
