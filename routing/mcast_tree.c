/* mcast_tree.c: a context's routes and their distribution tree (see
 * mcast.h). Routes are found by host through an open-addressing table
 * (linear probing, backward-shift deletion), so every operation is O(1)
 * plus the O(k) servers a change touches. */
#include <stdlib.h>
#include <string.h>

#include "routing/mcast.h"

typedef struct mc_node {
    char *host;
    int relay;
    size_t pos;     /* index in relays[] or others[] */
    size_t changed; /* 1 + index in changed[], 0 when not listed */
} mc_node;

typedef struct mc_vec {
    mc_node **v;
    size_t n, cap;
} mc_vec;

struct mc_tree {
    unsigned k;
    mc_vec relays;  /* heap order: the tree */
    mc_vec others;  /* direct children of the master */
    mc_vec changed; /* assignments to announce */
    const char **changed_hosts;
    size_t changed_hosts_cap;
    mc_node **slots; /* hash table by host */
    size_t n_slots, n_used;
};

static int mc_vec_push(mc_vec *v, mc_node *n)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 16;
        mc_node **nv = realloc(v->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = n;
    return 0;
}

static uint64_t mc_hash(const char *s)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* The slot holding host, or the empty slot where it would go. */
static size_t mc_slot(const mc_tree *t, const char *host)
{
    size_t mask = t->n_slots - 1, i = (size_t)mc_hash(host) & mask;
    while (t->slots[i] && strcmp(t->slots[i]->host, host) != 0)
        i = (i + 1) & mask;
    return i;
}

static mc_node *mc_find(const mc_tree *t, const char *host)
{
    return t->n_slots ? t->slots[mc_slot(t, host)] : NULL;
}

static int mc_table_grow(mc_tree *t)
{
    size_t n = t->n_slots ? 2 * t->n_slots : 64;
    mc_node **old = t->slots;
    size_t old_n = t->n_slots;
    t->slots = calloc(n, sizeof *t->slots);
    if (!t->slots) {
        t->slots = old;
        return -1;
    }
    t->n_slots = n;
    for (size_t i = 0; i < old_n; i++)
        if (old[i])
            t->slots[mc_slot(t, old[i]->host)] = old[i];
    free(old);
    return 0;
}

/* Linear-probing delete without tombstones: pull later entries of the
 * cluster back into the hole when their home slot allows it. */
static void mc_table_delete(mc_tree *t, size_t i)
{
    size_t mask = t->n_slots - 1, j = i;
    t->slots[i] = NULL;
    for (;;) {
        j = (j + 1) & mask;
        if (!t->slots[j])
            break;
        size_t home = (size_t)mc_hash(t->slots[j]->host) & mask;
        /* Move j into the hole unless its home lies cyclically in (i, j]. */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            t->slots[j] = NULL;
            i = j;
        }
    }
    t->n_used--;
}

mc_tree *mc_tree_new(unsigned k)
{
    mc_tree *t = calloc(1, sizeof *t);
    if (t)
        t->k = k ? k : MC_DEFAULT_FANOUT;
    return t;
}

void mc_tree_free(mc_tree *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_slots; i++)
        if (t->slots[i]) {
            free(t->slots[i]->host);
            free(t->slots[i]);
        }
    free(t->slots);
    free(t->relays.v);
    free(t->others.v);
    free(t->changed.v);
    free(t->changed_hosts);
    free(t);
}

static void mc_mark(mc_tree *t, mc_node *n)
{
    if (n && !n->changed && mc_vec_push(&t->changed, n) == 0)
        n->changed = t->changed.n;
}

static void mc_unmark(mc_tree *t, mc_node *n)
{
    if (!n->changed)
        return;
    size_t i = n->changed - 1;
    mc_node *last = t->changed.v[--t->changed.n];
    t->changed.v[i] = last;
    last->changed = i + 1;
    n->changed = 0;
}

/* The relay above heap position p, NULL for the master. */
static mc_node *mc_parent_of(const mc_tree *t, size_t p)
{
    return p < t->k ? NULL : t->relays.v[p / t->k - 1];
}

static void mc_mark_children(mc_tree *t, size_t p)
{
    size_t first = (size_t)t->k * (p + 1);
    for (size_t j = first; j < first + t->k && j < t->relays.n; j++)
        mc_mark(t, t->relays.v[j]);
}

int mc_tree_add(mc_tree *t, const char *host, int relay)
{
    if (mc_find(t, host))
        return 0;
    if ((t->n_used + 1) * 2 > t->n_slots && mc_table_grow(t) != 0)
        return -1;
    mc_node *n = calloc(1, sizeof *n);
    if (!n || !(n->host = strdup(host))) {
        free(n);
        return -1;
    }
    n->relay = relay;
    mc_vec *v = relay ? &t->relays : &t->others;
    n->pos = v->n;
    if (mc_vec_push(v, n) != 0) {
        free(n->host);
        free(n);
        return -1;
    }
    t->slots[mc_slot(t, host)] = n;
    t->n_used++;
    mc_mark(t, n);
    if (relay)
        mc_mark(t, mc_parent_of(t, n->pos)); /* it has one child more */
    return 1;
}

int mc_tree_remove(mc_tree *t, const char *host)
{
    if (!t->n_slots)
        return 0;
    size_t slot = mc_slot(t, host);
    mc_node *f = t->slots[slot];
    if (!f)
        return 0;
    mc_table_delete(t, slot);
    if (!f->relay) {
        mc_node *last = t->others.v[--t->others.n];
        t->others.v[f->pos] = last;
        last->pos = f->pos;
    } else {
        /* Heap delete: the last relay takes f's place; f's parent, f's
         * children, the moved relay and its old parent get new assignments. */
        size_t p = f->pos, last_pos = t->relays.n - 1;
        mc_node *last = t->relays.v[last_pos];
        mc_mark(t, mc_parent_of(t, p));
        if (last != f) {
            mc_mark(t, mc_parent_of(t, last_pos));
            t->relays.v[p] = last;
            last->pos = p;
            mc_mark(t, last);
        }
        t->relays.n--;
        mc_mark_children(t, p);
    }
    /* Last: the marking above may have listed f itself (as the parent of
     * the relay that moved). */
    mc_unmark(t, f);
    free(f->host);
    free(f);
    return 1;
}

int mc_tree_has(const mc_tree *t, const char *host)
{
    return mc_find(t, host) != NULL;
}

size_t mc_tree_size(const mc_tree *t)
{
    return t->relays.n + t->others.n;
}

const char *mc_tree_parent(const mc_tree *t, const char *host, int *found)
{
    mc_node *n = mc_find(t, host);
    *found = n != NULL;
    if (!n || !n->relay)
        return NULL;
    mc_node *p = mc_parent_of(t, n->pos);
    return p ? p->host : NULL;
}

size_t mc_tree_children(const mc_tree *t, const char *host, const char **out, size_t max)
{
    size_t count = 0, first;
    if (!host) {
        first = 0;
        for (size_t i = 0; i < t->others.n; i++, count++)
            if (count < max)
                out[count] = t->others.v[i]->host;
    } else {
        mc_node *n = mc_find(t, host);
        if (!n || !n->relay)
            return 0;
        first = (size_t)t->k * (n->pos + 1);
    }
    for (size_t j = first; j < first + t->k && j < t->relays.n; j++, count++)
        if (count < max)
            out[count] = t->relays.v[j]->host;
    return count;
}

size_t mc_tree_take_changes(mc_tree *t, const char *const **hosts)
{
    size_t n = t->changed.n;
    if (n > t->changed_hosts_cap) {
        const char **nh = realloc(t->changed_hosts, n * sizeof *nh);
        if (!nh) {
            *hosts = NULL;
            return 0; /* the changes stay listed for the next call */
        }
        t->changed_hosts = nh;
        t->changed_hosts_cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        t->changed_hosts[i] = t->changed.v[i]->host;
        t->changed.v[i]->changed = 0;
    }
    t->changed.n = 0;
    *hosts = t->changed_hosts;
    return n;
}
