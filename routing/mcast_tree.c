/* mcast_tree.c: a context's routes and their distribution tree (see
 * mcast.h). Routes are found by host through a strtab, so every operation
 * is O(1) plus the O(k) servers a change touches. */
#include <stdlib.h>
#include <string.h>

#include "routing/mcast.h"
#include "routing/strtab.h"

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
    strtab by_host;
};

static const char *mc_node_key(const void *n)
{
    return ((const mc_node *)n)->host;
}

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

static mc_node *mc_find(const mc_tree *t, const char *host)
{
    return strtab_get(&t->by_host, host);
}

mc_tree *mc_tree_new(unsigned k)
{
    mc_tree *t = calloc(1, sizeof *t);
    if (t) {
        t->k = k ? k : MC_DEFAULT_FANOUT;
        t->by_host = (strtab)STRTAB_INIT(mc_node_key);
    }
    return t;
}

void mc_tree_free(mc_tree *t)
{
    if (!t)
        return;
    mc_vec *lists[2] = {&t->relays, &t->others};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < lists[l]->n; i++) {
            free(lists[l]->v[i]->host);
            free(lists[l]->v[i]);
        }
    strtab_clear(&t->by_host);
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
    mc_node *n = calloc(1, sizeof *n);
    if (!n || !(n->host = strdup(host))) {
        free(n);
        return -1;
    }
    n->relay = relay;
    mc_vec *v = relay ? &t->relays : &t->others;
    n->pos = v->n;
    if (strtab_put(&t->by_host, n) != 0 || mc_vec_push(v, n) != 0) {
        strtab_del(&t->by_host, host);
        free(n->host);
        free(n);
        return -1;
    }
    mc_mark(t, n);
    if (relay)
        mc_mark(t, mc_parent_of(t, n->pos)); /* it has one child more */
    return 1;
}

int mc_tree_remove(mc_tree *t, const char *host)
{
    mc_node *f = strtab_del(&t->by_host, host);
    if (!f)
        return 0;
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

size_t mc_tree_routes(const mc_tree *t, const char **out, size_t max)
{
    size_t count = 0;
    const mc_vec *lists[2] = {&t->relays, &t->others};
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; i < lists[l]->n; i++, count++)
            if (count < max)
                out[count] = lists[l]->v[i]->host;
    return count;
}

int mc_tree_is_relay(const mc_tree *t, const char *host)
{
    mc_node *n = mc_find(t, host);
    return n && n->relay;
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
