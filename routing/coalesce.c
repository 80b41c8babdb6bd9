/* coalesce.c: presence broadcasts out of per-contact copies (see coalesce.h). */
#include "routing/coalesce.h"

#include <stdlib.h>
#include <string.h>

#include "routing/strtab.h"

/* ------------------------------------------------------------------ */
/* A set of owned strings                                             */

typedef strtab pc_set;

static const char *pc_str_key(const void *item)
{
    return item;
}

#define PC_SET_INIT STRTAB_INIT(pc_str_key)

static int pc_set_has(const pc_set *s, const char *key)
{
    return strtab_get(s, key) != NULL;
}

/* 1 added, 0 present already, -1 OOM. */
static int pc_set_add(pc_set *s, const char *key)
{
    if (strtab_get(s, key))
        return 0;
    char *copy = strdup(key);
    if (!copy || strtab_put(s, copy) != 0) {
        free(copy);
        return -1;
    }
    return 1;
}

static void pc_free_item(void *ud, void *item)
{
    (void)ud;
    free(item);
}

static void pc_set_clear(pc_set *s)
{
    strtab_each(s, pc_free_item, NULL);
    strtab_clear(s);
}

/* ------------------------------------------------------------------ */
/* Senders                                                            */

typedef struct pc_sender pc_sender;
struct pc_sender {
    char *from;
    /* The last broadcast and who has it. */
    unsigned char *last;
    size_t last_len;
    int has_last;
    pc_set had_last;
    /* The open burst. */
    int open;
    uint64_t opened_ms;
    unsigned char *payload;
    size_t len;
    char **rcpt; /* in arrival order, each once (rcpt_set) */
    size_t n_rcpt, cap_rcpt;
    pc_set rcpt_set;
    /* Least recently active first (lru_*), open bursts oldest first (open_*). */
    pc_sender *lru_prev, *lru_next, *open_prev, *open_next;
};

typedef struct pc_list {
    pc_sender *head, *tail;
} pc_list;

struct pc_coalescer {
    uint64_t window_ms;
    size_t max_senders, n_senders;
    pc_burst_fn cb;
    void *ud;
    strtab by_from;
    pc_list lru, opened;
    pc_stats stats;
};

#define PC_LINK(list, s, prev, next)                                                               \
    do {                                                                                           \
        (s)->prev = (list)->tail;                                                                  \
        (s)->next = NULL;                                                                          \
        if ((list)->tail)                                                                          \
            (list)->tail->next = (s);                                                              \
        else                                                                                       \
            (list)->head = (s);                                                                    \
        (list)->tail = (s);                                                                        \
    } while (0)
#define PC_UNLINK(list, s, prev, next)                                                             \
    do {                                                                                           \
        if ((s)->prev)                                                                             \
            (s)->prev->next = (s)->next;                                                           \
        else                                                                                       \
            (list)->head = (s)->next;                                                              \
        if ((s)->next)                                                                             \
            (s)->next->prev = (s)->prev;                                                           \
        else                                                                                       \
            (list)->tail = (s)->prev;                                                              \
        (s)->prev = (s)->next = NULL;                                                              \
    } while (0)

static const char *pc_sender_key(const void *s)
{
    return ((const pc_sender *)s)->from;
}

static pc_sender *pc_find(const pc_coalescer *pc, const char *from)
{
    return strtab_get(&pc->by_from, from);
}

static void pc_burst_clear(pc_sender *s)
{
    for (size_t i = 0; i < s->n_rcpt; i++)
        free(s->rcpt[i]);
    s->n_rcpt = 0;
    pc_set_clear(&s->rcpt_set);
    free(s->payload);
    s->payload = NULL;
    s->len = 0;
    s->open = 0;
}

/* Reports the open burst of s and makes it s's last broadcast. */
static void pc_close(pc_coalescer *pc, pc_sender *s)
{
    if (!s->open)
        return;
    PC_UNLINK(&pc->opened, s, open_prev, open_next);
    int changed = !s->has_last || s->last_len != s->len || memcmp(s->last, s->payload, s->len) != 0;
    pc->stats.bursts++;
    if (changed) {
        pc_set_clear(&s->had_last);
        free(s->last);
        s->last = s->payload;
        s->last_len = s->len;
        s->has_last = 1;
        s->payload = NULL;
        for (size_t i = 0; i < s->n_rcpt; i++)
            pc_set_add(&s->had_last, s->rcpt[i]); /* OOM: they get it again next time */
        pc->cb(pc->ud, s->from, s->last, s->last_len, 1, (const char *const *)s->rcpt, s->n_rcpt);
    } else {
        /* Only those who do not have it yet; keep their order. */
        size_t kept = 0;
        for (size_t i = 0; i < s->n_rcpt; i++) {
            if (pc_set_has(&s->had_last, s->rcpt[i])) {
                free(s->rcpt[i]);
                pc->stats.suppressed++;
            } else {
                pc_set_add(&s->had_last, s->rcpt[i]);
                s->rcpt[kept++] = s->rcpt[i];
            }
        }
        s->n_rcpt = kept;
        pc->stats.unchanged_bursts++;
        pc->cb(pc->ud, s->from, s->last, s->last_len, 0, (const char *const *)s->rcpt, s->n_rcpt);
    }
    pc_burst_clear(s);
}

static void pc_sender_free(pc_sender *s)
{
    pc_burst_clear(s);
    free(s->rcpt);
    pc_set_clear(&s->had_last);
    free(s->last);
    free(s->from);
    free(s);
}

static void pc_evict(pc_coalescer *pc, pc_sender *s)
{
    pc_close(pc, s);
    PC_UNLINK(&pc->lru, s, lru_prev, lru_next);
    strtab_del(&pc->by_from, s->from);
    pc->n_senders--;
    pc_sender_free(s);
}

pc_coalescer *pc_new(uint64_t window_ms, size_t max_senders, pc_burst_fn cb, void *ud)
{
    pc_coalescer *pc = calloc(1, sizeof *pc);
    if (!pc)
        return NULL;
    pc->window_ms = window_ms ? window_ms : PC_DEFAULT_WINDOW_MS;
    pc->max_senders = max_senders ? max_senders : 100000;
    pc->cb = cb;
    pc->ud = ud;
    pc->by_from = (strtab)STRTAB_INIT(pc_sender_key);
    return pc;
}

void pc_free(pc_coalescer *pc)
{
    if (!pc)
        return;
    while (pc->opened.head)
        pc_close(pc, pc->opened.head);
    while (pc->lru.head)
        pc_evict(pc, pc->lru.head);
    strtab_clear(&pc->by_from);
    free(pc);
}

static pc_sender *pc_sender_get(pc_coalescer *pc, const char *from)
{
    pc_sender *s = pc_find(pc, from);
    if (s) {
        PC_UNLINK(&pc->lru, s, lru_prev, lru_next);
        PC_LINK(&pc->lru, s, lru_prev, lru_next);
        return s;
    }
    if (pc->n_senders >= pc->max_senders && pc->lru.head)
        pc_evict(pc, pc->lru.head);
    s = calloc(1, sizeof *s);
    if (!s || !(s->from = strdup(from)) || strtab_put(&pc->by_from, s) != 0) {
        if (s)
            free(s->from);
        free(s);
        return NULL;
    }
    s->had_last = (pc_set)PC_SET_INIT;
    s->rcpt_set = (pc_set)PC_SET_INIT;
    pc->n_senders++;
    PC_LINK(&pc->lru, s, lru_prev, lru_next);
    return s;
}

static int pc_add_rcpt(pc_sender *s, const char *to)
{
    int added = pc_set_add(&s->rcpt_set, to);
    if (added <= 0)
        return added; /* the same recipient twice in a burst: once */
    if (s->n_rcpt == s->cap_rcpt) {
        size_t cap = s->cap_rcpt ? 2 * s->cap_rcpt : 8;
        char **n = realloc(s->rcpt, cap * sizeof *n);
        if (!n)
            return -1;
        s->rcpt = n;
        s->cap_rcpt = cap;
    }
    if (!(s->rcpt[s->n_rcpt] = strdup(to)))
        return -1;
    s->n_rcpt++;
    return 1;
}

int pc_feed(pc_coalescer *pc, const char *from, const char *to, const void *payload, size_t len,
            uint64_t now_ms)
{
    pc->stats.copies++;
    pc_tick(pc, now_ms);
    pc_sender *s = pc_sender_get(pc, from);
    if (s && s->open && (s->len != len || memcmp(s->payload, payload, len) != 0))
        pc_close(pc, s); /* a new presence from the same sender: the old burst is over */
    if (s && !s->open) {
        s->payload = malloc(len ? len : 1);
        if (s->payload) {
            memcpy(s->payload, payload, len);
            s->len = len;
            s->open = 1;
            s->opened_ms = now_ms;
            PC_LINK(&pc->opened, s, open_prev, open_next);
        }
    }
    if (!s || !s->open || pc_add_rcpt(s, to) < 0) {
        /* Out of memory: this copy goes out on its own rather than never. */
        const char *one[1] = {to};
        pc->cb(pc->ud, from, payload, len, 1, one, 1);
        return -1;
    }
    return 0;
}

void pc_forget(pc_coalescer *pc, const char *from)
{
    pc_sender *s = pc_find(pc, from);
    if (s)
        pc_evict(pc, s);
}

void pc_tick(pc_coalescer *pc, uint64_t now_ms)
{
    /* One window for all: bursts close in the order they opened. */
    while (pc->opened.head && now_ms >= pc->opened.head->opened_ms + pc->window_ms)
        pc_close(pc, pc->opened.head);
}

uint64_t pc_next_deadline(const pc_coalescer *pc)
{
    return pc->opened.head ? pc->opened.head->opened_ms + pc->window_ms : PC_NO_DEADLINE;
}

void pc_get_stats(const pc_coalescer *pc, pc_stats *out)
{
    *out = pc->stats;
}
