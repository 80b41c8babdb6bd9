/*
 * replies.h: which XMPP client an answer from PSYC belongs to. A PSYC
 * answer names its request by _tag_relay (PSYC.md §4.1) and is addressed to
 * a person, not to one of its XMPP resources; an error to a bare JID is
 * dropped by the receiving server (RFC 6121 §8.5.2.1.1). So the bridge
 * notes, per stanza id it sends to PSYC, the full JID that sent it and the
 * JID it went to, and puts both back on the answer. A bounded ring: the
 * oldest notes go first, and notes older than the time to live are not
 * used. Pure (time passed in).
 */
#ifndef PSYCGATE_ROUTING_REPLIES_H
#define PSYCGATE_ROUTING_REPLIES_H

#include <stddef.h>
#include <stdint.h>

typedef struct replies replies;

/* max: notes kept (0: 4096); ttl_ms: how long one is good (0: 5 min). */
replies *replies_new(size_t max, uint64_t ttl_ms);
void replies_free(replies *r);

/* `tag` (the stanza id) was sent by `from` (a full JID) to `to`. 0, or -1
 * on OOM (then the answer simply goes to the bare JID). */
int replies_note(replies *r, const char *tag, const char *from, const char *to, uint64_t now_ms);

/* The note for an answer with `tag` addressed to `to` (bare or full JID of
 * the original sender): 1 and *from (the full JID) and *orig_to, or 0.
 * The pointers stay valid until the next replies_note. */
int replies_find(const replies *r, const char *tag, const char *to, const char **from,
                 const char **orig_to, uint64_t now_ms);

#endif
