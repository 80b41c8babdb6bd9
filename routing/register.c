/* register.c: XEP-0077 registration stanzas (see register.h). */
#include "routing/register.h"

#include <string.h>

#include "routing/entity.h"

static int register_is_letter(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int register_nick_normalize(const char *nick, char *out, size_t size)
{
    size_t n = nick ? strlen(nick) : 0;
    if (size)
        out[0] = '\0';
    if (n == 0 || n > REGISTER_NICK_MAX || n >= size || !register_is_letter((unsigned char)nick[0]))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)nick[i];
        if (!register_is_letter(c) && !(c >= '0' && c <= '9') && c != '_' && c != '-') {
            out[0] = '\0';
            return -1;
        }
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    out[n] = '\0';
    return 0;
}

register_op register_parse(const xml_node *iq, const char **nick)
{
    const char *type = xml_attr_get(iq, "type");
    const xml_node *q = xml_is(iq, "iq", NULL) ? xml_child(iq, "query", REGISTER_NS) : NULL;
    if (!q || !type || !xml_attr_get(iq, "from"))
        return REGISTER_NOT;
    if (strcmp(type, "get") == 0)
        return REGISTER_QUERY;
    if (strcmp(type, "set") != 0)
        return REGISTER_NOT;
    if (xml_child(q, "remove", REGISTER_NS))
        return REGISTER_REMOVE;
    const xml_node *n = xml_child(q, "nick", REGISTER_NS);
    const char *text = n ? xml_elem_text(n, NULL) : NULL;
    if (!text || !*text)
        return REGISTER_BAD;
    *nick = text;
    return REGISTER_SET;
}

xml_node *register_form(const xml_node *iq, const char *nick)
{
    static const char instructions[] =
        "Choose a nick: PSYC users will see you as psyc://<this gateway's host>/~nick and can write to you "
        "there. 1-32 letters, digits, _ or -, beginning with a letter.";
    xml_node *r = routing_entity_result(iq);
    xml_node *q = r ? xml_elem_add(r, "query", REGISTER_NS) : NULL;
    xml_node *ins = q ? xml_elem_add(q, "instructions", NULL) : NULL;
    int bad = !ins || !xml_text_add(ins, instructions, sizeof instructions - 1);
    /* §3.1: an entity already registered gets <registered/> and its data. */
    if (!bad && nick)
        bad = !xml_elem_add(q, "registered", NULL);
    xml_node *n = bad ? NULL : xml_elem_add(q, "nick", NULL);
    if (!n || (nick && !xml_text_add(n, nick, strlen(nick)))) {
        xml_node_free(r);
        return NULL;
    }
    return r;
}
