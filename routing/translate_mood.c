/* translate_mood.c: XEP-0107 user mood <-> PSYC (see translate.h).
 *
 * PSYC's own mood is _degree_mood, one digit (PSYC.md §1.3 "_degree"),
 * on psyced's scale (share.c "mood2mc"): 0 unspecified, 1 dead, 2 angry,
 * 3 sad, 4 moody, 5 okay, 6 good, 7 happy, 8 bright, 9 nirvana. psyced
 * renders that scale to XEP-0107 with one name per degree ("mood2jabber":
 * depressed, angry, sad, moody, neutral, interested, happy, excited,
 * invincible); we use the same names for a packet that has only a degree.
 * XEP-0107 has some 80 moods, so the degree alone loses the exact one; the
 * name rides in _description_mood and the free text (<text/>) in
 * _text_mood. Every XEP-0107 mood below is placed on psyced's scale by
 * what it says about how one feels (1 down and out ... 9 on top of the
 * world), the psyced names on their own degree.
 */
#include <string.h>

#include "routing/translate_int.h"

#define TR_NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event" /* XEP-0060 §7.1.2 */

static const struct {
    const char *name;
    char degree;
} tr_moods[] = {
    /* 1: down and out */
    {"depressed", '1'}, {"dejected", '1'}, {"grieving", '1'}, {"humiliated", '1'}, {"hurt", '1'},
    {"lonely", '1'}, {"lost", '1'}, {"sick", '1'}, {"weak", '1'},
    /* 2: angry */
    {"angry", '2'}, {"annoyed", '2'}, {"cranky", '2'}, {"disgusted", '2'}, {"envious", '2'},
    {"frustrated", '2'}, {"grumpy", '2'}, {"indignant", '2'}, {"jealous", '2'}, {"mean", '2'},
    {"offended", '2'}, {"outraged", '2'},
    /* 3: sad, worried, unwell */
    {"sad", '3'}, {"afraid", '3'}, {"anxious", '3'}, {"ashamed", '3'}, {"bored", '3'}, {"cold", '3'},
    {"confused", '3'}, {"disappointed", '3'}, {"dismayed", '3'}, {"embarrassed", '3'}, {"guilty", '3'},
    {"hungry", '3'}, {"nervous", '3'}, {"remorseful", '3'}, {"shocked", '3'}, {"sleepy", '3'},
    {"stressed", '3'}, {"thirsty", '3'}, {"tired", '3'}, {"worried", '3'},
    /* 4: moody, unsettled */
    {"moody", '4'}, {"cautious", '4'}, {"crazy", '4'}, {"distracted", '4'}, {"humbled", '4'},
    {"intoxicated", '4'}, {"restless", '4'}, {"sarcastic", '4'}, {"shy", '4'},
    /* 5: okay */
    {"neutral", '5'}, {"amazed", '5'}, {"calm", '5'}, {"contemplative", '5'}, {"hot", '5'},
    {"serious", '5'}, {"surprised", '5'}, {"undefined", '5'},
    /* 6: good */
    {"interested", '6'}, {"contented", '6'}, {"creative", '6'}, {"curious", '6'}, {"grateful", '6'},
    {"hopeful", '6'}, {"impressed", '6'}, {"playful", '6'}, {"relaxed", '6'}, {"relieved", '6'},
    {"satisfied", '6'}, {"spontaneous", '6'}, {"thankful", '6'},
    /* 7: happy */
    {"happy", '7'}, {"amorous", '7'}, {"aroused", '7'}, {"confident", '7'}, {"flirtatious", '7'},
    {"in_love", '7'}, {"lucky", '7'}, {"proud", '7'},
    /* 8: bright */
    {"excited", '8'}, {"brave", '8'}, {"in_awe", '8'}, {"strong", '8'},
    /* 9: on top of the world */
    {"invincible", '9'},
};
#define TR_MOODS (sizeof tr_moods / sizeof tr_moods[0])

/* psyced's name for each degree (0: no mood). */
static const char *const tr_mood_of_degree[10] = {NULL,    "depressed", "angry", "sad",     "moody",
                                                  "neutral", "interested", "happy", "excited", "invincible"};

int tr_mood_in(psyc_packet *p, const xml_node *mood)
{
    const char *name = NULL;
    const xml_node *text = NULL;
    for (const xml_node *c = mood->children; c; c = c->next) {
        if (c->type != XML_N_ELEMENT || !c->ns || strcmp(c->ns, TR_NS_MOOD) != 0)
            continue;
        if (strcmp(c->name, "text") == 0)
            text = c;
        else if (!name)
            name = c->name;
    }
    char degree = '0';
    for (size_t i = 0; name && i < TR_MOODS; i++)
        if (strcmp(name, tr_moods[i].name) == 0)
            degree = tr_moods[i].degree;
    /* An empty <mood/> retracts the mood (XEP-0107 §2): degree 0. */
    int rc = tr_put(p, 0, "_degree_mood", &degree, 1);
    if (rc == TRANSLATE_OK && name)
        rc = tr_put(p, 0, "_description_mood", name, strlen(name));
    size_t len = 0;
    const char *t = text ? xml_elem_text(text, &len) : "";
    if (!t)
        return TRANSLATE_ERR_NOMEM;
    return rc == TRANSLATE_OK && len ? tr_put(p, 0, "_text_mood", t, len) : rc;
}

const xml_node *tr_mood_pep(const xml_node *message)
{
    const xml_node *ev = xml_child(message, "event", TR_NS_PUBSUB_EVENT);
    const xml_node *items = ev ? xml_child(ev, "items", TR_NS_PUBSUB_EVENT) : NULL;
    const char *node = items ? xml_attr_get(items, "node") : NULL;
    if (!node || strcmp(node, TR_NS_MOOD) != 0)
        return NULL;
    const xml_node *item = xml_child(items, "item", TR_NS_PUBSUB_EVENT);
    return item ? xml_child(item, "mood", TR_NS_MOOD) : NULL;
}

/* 1 when the packet says something about a mood. */
static int tr_mood_has(const psyc_packet *p)
{
    psyc_str v;
    return tr_get(p, "_degree_mood", &v) || tr_get(p, "_description_mood", &v);
}

/* <mood/> from the variables into parent. */
static int tr_mood_build(const psyc_packet *p, xml_node *parent)
{
    psyc_str name = {NULL, 0}, deg, text;
    char buf[32];
    if (tr_get(p, "_description_mood", &name)) {
        /* Only the names XEP-0107 defines make an element. */
        int known = 0;
        for (size_t i = 0; i < TR_MOODS && !known; i++)
            known = psyc_str_eq_c(name, tr_moods[i].name);
        if (!known)
            name.ptr = NULL;
    }
    if (!name.ptr && tr_get(p, "_degree_mood", &deg) && deg.len && deg.ptr[0] >= '0' && deg.ptr[0] <= '9' &&
        tr_mood_of_degree[deg.ptr[0] - '0'])
        name = psyc_str_c(tr_mood_of_degree[deg.ptr[0] - '0']);
    xml_node *m = xml_elem_add(parent, "mood", TR_NS_MOOD);
    if (!m)
        return TRANSLATE_ERR_NOMEM;
    if (name.ptr) {
        if (name.len >= sizeof buf)
            return TRANSLATE_ERR_INVALID;
        memcpy(buf, name.ptr, name.len);
        buf[name.len] = '\0';
        if (!xml_elem_add(m, buf, NULL))
            return TRANSLATE_ERR_NOMEM;
        /* XEP-0107 §2: <text/> only with a mood. */
        if (tr_get(p, "_text_mood", &text) && text.len)
            return tr_text_child(m, "text", NULL, text);
    }
    return TRANSLATE_OK;
}

int tr_mood_out_presence(const psyc_packet *p, xml_node *presence)
{
    if (!tr_mood_has(p) || xml_child(presence, "mood", TR_NS_MOOD))
        return TRANSLATE_OK;
    psyc_str deg;
    /* psyced's "unspecified" says nothing: no element. */
    if (!tr_get(p, "_description_mood", &deg) && tr_get(p, "_degree_mood", &deg) && psyc_str_eq_c(deg, "0"))
        return TRANSLATE_OK;
    return tr_mood_build(p, presence);
}

int tr_mood_out_pep(const psyc_packet *p, xml_node *message)
{
    if (xml_child(message, "event", TR_NS_PUBSUB_EVENT))
        return TRANSLATE_OK; /* the payload brought it back */
    xml_node *ev = xml_elem_add(message, "event", TR_NS_PUBSUB_EVENT);
    xml_node *items = ev ? xml_elem_add(ev, "items", NULL) : NULL;
    xml_node *item = items ? xml_elem_add(items, "item", NULL) : NULL;
    if (!item || xml_attr_set(items, "node", TR_NS_MOOD) != 0)
        return TRANSLATE_ERR_NOMEM;
    return tr_mood_build(p, item);
}
