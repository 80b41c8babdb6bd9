/* replies.c: answers back to the XMPP resource that asked (see replies.h). */
#include "routing/replies.h"

#include <stdlib.h>
#include <string.h>

typedef struct replies_note_s {
    char *tag, *from, *to;
    uint64_t at;
} replies_note_t;

struct replies {
    replies_note_t *ring;
    size_t max, next;
    uint64_t ttl_ms;
};

replies *replies_new(size_t max, uint64_t ttl_ms)
{
    replies *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->max = max ? max : 4096;
    r->ttl_ms = ttl_ms ? ttl_ms : 5 * 60 * 1000;
    r->ring = calloc(r->max, sizeof *r->ring);
    if (!r->ring) {
        free(r);
        return NULL;
    }
    return r;
}

static void replies_clear(replies_note_t *n)
{
    free(n->tag);
    free(n->from);
    free(n->to);
    memset(n, 0, sizeof *n);
}

void replies_free(replies *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->max; i++)
        replies_clear(&r->ring[i]);
    free(r->ring);
    free(r);
}

int replies_note(replies *r, const char *tag, const char *from, const char *to, uint64_t now_ms)
{
    replies_note_t *n = &r->ring[r->next];
    replies_clear(n);
    n->tag = strdup(tag);
    n->from = strdup(from);
    n->to = strdup(to);
    if (!n->tag || !n->from || !n->to) {
        replies_clear(n);
        return -1;
    }
    n->at = now_ms;
    r->next = (r->next + 1) % r->max;
    return 0;
}

/* a and b name the same account: equal up to the end of a's bare part. */
static int replies_same_bare(const char *full, const char *jid)
{
    size_t bare = strcspn(full, "/");
    return strncmp(full, jid, bare) == 0 && (jid[bare] == '\0' || jid[bare] == '/');
}

int replies_find(const replies *r, const char *tag, const char *to, const char **from,
                 const char **orig_to, uint64_t now_ms)
{
    /* Newest first: a client reusing an id gets the latest request's note. */
    for (size_t k = 0; k < r->max; k++) {
        const replies_note_t *n = &r->ring[(r->next + r->max - 1 - k) % r->max];
        if (!n->tag)
            break;
        if (now_ms - n->at > r->ttl_ms)
            break; /* everything older is older still */
        if (strcmp(n->tag, tag) == 0 && replies_same_bare(n->from, to)) {
            *from = n->from;
            *orig_to = n->to;
            return 1;
        }
    }
    return 0;
}
