/*
 * xml_names.c: well-known XMPP element/attribute names and namespace URIs.
 *
 * The stream parser points tree names at these static strings instead of
 * copying them into every stanza (most names in real traffic are on this
 * list), and comparisons against them can start with a pointer compare.
 * Fixed-width rows in one array: "is this pointer static" is a range check.
 * Keep the rows sorted by byte value (a unit test checks it).
 */
#include "xmpp/xml_int.h"

#include <string.h>

#define NAME_W 40

static const char names[][NAME_W] = {
    "abort",
    "acknowledged",
    "active",
    "actor",
    "address",
    "addresses",
    "affiliation",
    "after",
    "ask",
    "auth",
    "bad-request",
    "before",
    "body",
    "by",
    "c",
    "category",
    "challenge",
    "code",
    "composing",
    "conflict",
    "continue",
    "count",
    "data",
    "decline",
    "delay",
    "desc",
    "destroy",
    "dialback",
    "displayed",
    "error",
    "errors",
    "eu.siacs.conversations.axolotl",
    "event",
    "ext",
    "failure",
    "feature",
    "feature-not-implemented",
    "features",
    "field",
    "first",
    "forbidden",
    "forwarded",
    "from",
    "gone",
    "group",
    "handshake",
    "hash",
    "history",
    "html",
    "http://etherx.jabber.org/streams",
    "http://jabber.org/protocol/address",
    "http://jabber.org/protocol/caps",
    "http://jabber.org/protocol/chatstates",
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/disco#items",
    "http://jabber.org/protocol/muc",
    "http://jabber.org/protocol/muc#admin",
    "http://jabber.org/protocol/muc#owner",
    "http://jabber.org/protocol/muc#user",
    "http://jabber.org/protocol/nick",
    "http://jabber.org/protocol/pubsub",
    "http://jabber.org/protocol/pubsub#event",
    "http://jabber.org/protocol/rsm",
    "http://jabber.org/protocol/xhtml-im",
    "http://www.w3.org/1999/xhtml",
    "http://www.w3.org/XML/1998/namespace",
    "id",
    "identity",
    "inactive",
    "index",
    "instructions",
    "internal-server-error",
    "invite",
    "iq",
    "item",
    "item-not-found",
    "items",
    "jabber:client",
    "jabber:component:accept",
    "jabber:iq:last",
    "jabber:iq:private",
    "jabber:iq:register",
    "jabber:iq:roster",
    "jabber:iq:version",
    "jabber:server",
    "jabber:server:dialback",
    "jabber:x:conference",
    "jabber:x:data",
    "jabber:x:delay",
    "jabber:x:oob",
    "jid",
    "jid-malformed",
    "lang",
    "last",
    "markable",
    "max",
    "maxchars",
    "maxstanzas",
    "mechanism",
    "mechanisms",
    "message",
    "name",
    "nick",
    "no-copy",
    "no-permanent-store",
    "no-store",
    "node",
    "not-acceptable",
    "not-allowed",
    "not-authorized",
    "option",
    "origin-id",
    "os",
    "parent",
    "password",
    "paused",
    "photo",
    "ping",
    "policy-violation",
    "presence",
    "priority",
    "private",
    "proceed",
    "publish",
    "query",
    "reason",
    "received",
    "recipient-unavailable",
    "redirect",
    "registration-required",
    "remote-server-not-found",
    "remote-server-timeout",
    "replace",
    "reply",
    "reported",
    "request",
    "required",
    "resource-constraint",
    "response",
    "result",
    "retract",
    "role",
    "seconds",
    "sent",
    "service-unavailable",
    "set",
    "show",
    "since",
    "stamp",
    "stanza-id",
    "starttls",
    "status",
    "store",
    "stream",
    "subject",
    "subscribe",
    "subscription",
    "subscription-required",
    "success",
    "text",
    "thread",
    "time",
    "title",
    "to",
    "type",
    "tzo",
    "undefined-condition",
    "unexpected-request",
    "url",
    "urn:ietf:params:xml:ns:xmpp-bind",
    "urn:ietf:params:xml:ns:xmpp-sasl",
    "urn:ietf:params:xml:ns:xmpp-session",
    "urn:ietf:params:xml:ns:xmpp-stanzas",
    "urn:ietf:params:xml:ns:xmpp-streams",
    "urn:ietf:params:xml:ns:xmpp-tls",
    "urn:xmpp:attention:0",
    "urn:xmpp:avatar:data",
    "urn:xmpp:avatar:metadata",
    "urn:xmpp:blocking",
    "urn:xmpp:bob",
    "urn:xmpp:carbons:2",
    "urn:xmpp:chat-markers:0",
    "urn:xmpp:csi:0",
    "urn:xmpp:delay",
    "urn:xmpp:eme:0",
    "urn:xmpp:features:dialback",
    "urn:xmpp:forward:0",
    "urn:xmpp:hints",
    "urn:xmpp:idle:1",
    "urn:xmpp:jingle:1",
    "urn:xmpp:mam:2",
    "urn:xmpp:message-correct:0",
    "urn:xmpp:omemo:2",
    "urn:xmpp:ping",
    "urn:xmpp:receipts",
    "urn:xmpp:reply:0",
    "urn:xmpp:sid:0",
    "urn:xmpp:sm:3",
    "urn:xmpp:styling:0",
    "urn:xmpp:time",
    "utc",
    "value",
    "var",
    "vcard-temp",
    "vcard-temp:x:update",
    "ver",
    "verify",
    "version",
    "x",
};

#define NNAMES (sizeof names / sizeof names[0])

const char *xml_name_static(const char *s, size_t len)
{
    if (len >= NAME_W)
        return NULL;
    size_t lo = 0, hi = NNAMES;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strncmp(names[mid], s, len);
        if (c == 0)
            c = names[mid][len] == '\0' ? 0 : 1;
        if (c == 0)
            return names[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int xml_name_is_static(const char *p)
{
    /* Integer compare: p usually points into some other object. */
    uintptr_t base = (uintptr_t)(const void *)names, q = (uintptr_t)(const void *)p;
    return q >= base && q < base + sizeof names;
}

int xml_names_sorted(void)
{
    for (size_t i = 1; i < NNAMES; i++)
        if (strcmp(names[i - 1], names[i]) >= 0)
            return 0;
    return 1;
}
