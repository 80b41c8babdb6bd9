/*
 * xml_gen.c: generated XMPP traffic for the benchmark (`make bench`,
 * `psycgatectl xml gen`) and random stanzas for property tests. The
 * realistic mix follows DEPS.md §2: 50 % presence with caps, 35 % chat
 * messages with body/thread/chat state/origin-id, 15 % disco, whitespace
 * keep-alives in between, ~300 bytes a stanza.
 */
#include "xmpp/xml.h"

#include <stdio.h>
#include <string.h>

static uint32_t next(uint32_t *s)
{
    /* xorshift32: deterministic per seed, no global state */
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static uint32_t pick(uint32_t *s, uint32_t n)
{
    return next(s) % n;
}

#define PICK(s, arr) (arr)[pick((s), (uint32_t)(sizeof(arr) / sizeof((arr)[0])))]

static const char *const users[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace",
                                    "heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy"};
static const char *const domains[] = {"example.org", "xmpp.example.net", "jabber.example.com",
                                      "chat.example.de", "im.example.fr"};
static const char *const resources[] = {"Conversations.x7Kq", "gajim.4FD2A1", "Dino.b91c",
                                        "Psi+.home", "mobile", "laptop"};
static const char *const caps_nodes[] = {"http://conversations.im", "https://gajim.org",
                                         "https://dino.im", "http://psi-plus.com"};
static const char *const shows[] = {"away", "chat", "dnd", "xa"};
static const char *const statuses[] = {"Be right back", "At work", "Sleeping", "In a meeting",
                                       "Available for chat", "On the phone"};
static const char *const bodies[] = {
    "Hello! Are you coming to the meeting later today?",
    "Sure, see you at 3pm in the usual room.",
    "Did you read the draft I sent yesterday? I added a section on federation & multicast.",
    "Ça va? Let's meet at the café near the station — 10 minutes.",
    "ok",
    "I think 2 < 3 and 5 > 4, so the patch is right :)",
    "Bitte ruf mich zurück, wenn du Zeit hast.",
    "The build is green again; the flaky test was a race in the timer code.",
};
static const char *const chatstates[] = {"active", "composing", "paused", "inactive"};
static const char *const features[] = {
    "http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
    "http://jabber.org/protocol/caps", "urn:xmpp:ping", "urn:xmpp:receipts",
    "http://jabber.org/protocol/chatstates", "urn:xmpp:time", "jabber:iq:version"};

static int put(psyc_buf *b, const char *s)
{
    return psyc_buf_puts(b, s);
}

static int jid(psyc_buf *b, uint32_t *r, int full)
{
    char tmp[160];
    if (full)
        snprintf(tmp, sizeof tmp, "%s%u@%s/%s", PICK(r, users), pick(r, 1000), PICK(r, domains),
                 PICK(r, resources));
    else
        snprintf(tmp, sizeof tmp, "%s%u@%s", PICK(r, users), pick(r, 1000), PICK(r, domains));
    return put(b, tmp);
}

static int hex(psyc_buf *b, uint32_t *r, int n)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < n; i++)
        if (psyc_buf_putc(b, digits[pick(r, 16)]) != 0)
            return -1;
    return 0;
}

static int b64(psyc_buf *b, uint32_t *r, int n)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < n; i++)
        if (psyc_buf_putc(b, digits[pick(r, 64)]) != 0)
            return -1;
    return put(b, "=");
}

static int presence(psyc_buf *b, uint32_t *r)
{
    int rc = put(b, "<presence from='") || jid(b, r, 1) || put(b, "' to='") || jid(b, r, 0) || put(b, "'");
    if (pick(r, 10) == 0)
        return rc | put(b, " type='unavailable'/>");
    rc |= put(b, ">");
    if (pick(r, 2)) {
        rc |= put(b, "<show>") || put(b, PICK(r, shows)) || put(b, "</show><status>") ||
              put(b, PICK(r, statuses)) || put(b, "</status>");
    }
    char prio[32];
    snprintf(prio, sizeof prio, "<priority>%u</priority>", pick(r, 50));
    rc |= put(b, prio);
    rc |= put(b, "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='") ||
          put(b, PICK(r, caps_nodes)) || put(b, "' ver='") || b64(b, r, 27) || put(b, "'/>");
    rc |= put(b, "<x xmlns='vcard-temp:x:update'><photo>") || hex(b, r, 40) || put(b, "</photo></x>");
    return rc | put(b, "</presence>");
}

static int message(psyc_buf *b, uint32_t *r)
{
    int rc = put(b, "<message from='") || jid(b, r, 1) || put(b, "' to='") || jid(b, r, 0) ||
             put(b, "' type='chat' id='") || hex(b, r, 16) || put(b, "' xml:lang='en'>");
    int body = pick(r, 5) != 0;
    if (body) {
        /* Markup characters arrive escaped (RFC 6120 §11.5 / XML 1.0 §2.4). */
        const char *t = PICK(r, bodies);
        rc |= put(b, "<body>");
        for (; *t; t++) {
            if (*t == '&')
                rc |= put(b, "&amp;");
            else if (*t == '<')
                rc |= put(b, "&lt;");
            else if (*t == '>')
                rc |= put(b, "&gt;");
            else
                rc |= psyc_buf_putc(b, *t);
        }
        rc |= put(b, "</body><thread>") || hex(b, r, 24) || put(b, "</thread>");
    }
    rc |= put(b, "<") || put(b, body ? "active" : PICK(r, chatstates)) ||
          put(b, " xmlns='http://jabber.org/protocol/chatstates'/>");
    rc |= put(b, "<origin-id xmlns='urn:xmpp:sid:0' id='") || hex(b, r, 8) || put(b, "-") || hex(b, r, 4) ||
          put(b, "-") || hex(b, r, 12) || put(b, "'/>");
    if (body && pick(r, 2))
        rc |= put(b, "<request xmlns='urn:xmpp:receipts'/>");
    return rc | put(b, "</message>");
}

static int disco(psyc_buf *b, uint32_t *r)
{
    int rc = put(b, "<iq from='") || jid(b, r, 1) || put(b, "' to='") || jid(b, r, 1) || put(b, "' id='") ||
             hex(b, r, 12);
    if (pick(r, 2))
        return rc | put(b, "' type='get'><query xmlns='http://jabber.org/protocol/disco#info' node='") ||
               put(b, PICK(r, caps_nodes)) || put(b, "#") || b64(b, r, 27) || put(b, "'/></iq>");
    rc |= put(b, "' type='result'><query xmlns='http://jabber.org/protocol/disco#info'>"
                 "<identity category='client' type='phone' name='Conversations'/>");
    int n = 3 + (int)pick(r, 5);
    for (int i = 0; i < n; i++)
        rc |= put(b, "<feature var='") || put(b, features[i]) || put(b, "'/>");
    return rc | put(b, "</query></iq>");
}

int xml_gen_stream(psyc_buf *out, size_t n, uint32_t seed, const char *content_ns)
{
    xml_nsmap map;
    xml_nsmap_init(&map, content_ns ? content_ns : XML_NS_SERVER);
    xml_stream_attrs a = {.from = "example.org", .to = "psyc.example.net", .id = "gen-1",
                          .version = "1.0", .lang = "en"};
    if (xml_write_stream_open(out, &map, &a) != 0)
        return -1;
    uint32_t r = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = pick(&r, 100);
        int rc = k < 50 ? presence(out, &r) : k < 85 ? message(out, &r) : disco(out, &r);
        if (rc == 0 && pick(&r, 10) == 0)
            rc = put(out, pick(&r, 2) ? " " : "\n"); /* keep-alive (RFC 6120 §4.6.1) */
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ---- random stanzas ---------------------------------------------------- */

static const char *const rnd_names[] = {"message", "presence", "iq", "body", "x", "item", "c",
                                        "query", "feature", "data", "a-b", "n.m", "_u", "ü"};
static const char *const rnd_ns[] = {XML_NS_SERVER, XML_NS_CLIENT, "urn:example:a", "urn:example:b",
                                     XML_NS_DIALBACK, "http://jabber.org/protocol/caps"};
static const char *const rnd_attrs[] = {"from", "to", "id", "type", "node", "ver", "x", "a1"};
/* Pieces of text: markup characters, CR/TAB/LF, non-ASCII, "]]>". */
static const char *const rnd_text[] = {"hi", " ", "<", ">", "&", "'", "\"", "\t", "\n", "\r",
                                       "]]>", "é", "→", "😀", "&amp;", "x=y", "  ", "中文"};

static int rnd_string(uint32_t *r, char *buf, size_t cap)
{
    size_t len = 0;
    int n = 1 + (int)pick(r, 6);
    for (int i = 0; i < n; i++) {
        const char *p = PICK(r, rnd_text);
        size_t l = strlen(p);
        if (len + l >= cap)
            break;
        memcpy(buf + len, p, l);
        len += l;
    }
    buf[len] = '\0';
    return (int)len;
}

static int rnd_attrs_on(xml_node *el, uint32_t *r)
{
    int n = (int)pick(r, 5);
    char v[128];
    for (int i = 0; i < n; i++) {
        int len = rnd_string(r, v, sizeof v);
        int rc;
        switch (pick(r, 8)) {
        case 0:
            rc = xml_attr_set_ns(el, "lang", XML_NS_XML, v, (size_t)len);
            break;
        case 1:
            rc = xml_attr_set_ns(el, PICK(r, rnd_attrs), "urn:example:attr", v, (size_t)len);
            break;
        default:
            rc = xml_attr_set_ns(el, PICK(r, rnd_attrs), NULL, v, (size_t)len);
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int rnd_children(xml_node *el, uint32_t *r, int depth)
{
    int n = depth > 4 ? 0 : (int)pick(r, 4);
    char t[128];
    for (int i = 0; i < n; i++) {
        if (pick(r, 3) == 0) {
            int len = rnd_string(r, t, sizeof t);
            if (len > 0 && !xml_text_add(el, t, (size_t)len))
                return -1;
            continue;
        }
        const char *ns = pick(r, 2) ? NULL : PICK(r, rnd_ns);
        xml_node *c = xml_elem_add(el, PICK(r, rnd_names), ns);
        if (!c || rnd_attrs_on(c, r) != 0 || rnd_children(c, r, depth + 1) != 0)
            return -1;
    }
    return 0;
}

xml_node *xml_gen_stanza(uint32_t *rng)
{
    static const char *const roots[] = {"message", "presence", "iq", "result", "verify"};
    const char *name = PICK(rng, roots);
    const char *ns = name[0] == 'r' || name[0] == 'v' ? XML_NS_DIALBACK
                     : pick(rng, 4) == 0            ? XML_NS_CLIENT
                                                    : XML_NS_SERVER;
    xml_node *st = xml_elem_new(name, ns);
    if (!st || rnd_attrs_on(st, rng) != 0 || rnd_children(st, rng, 1) != 0) {
        xml_node_free(st);
        return NULL;
    }
    return st;
}
