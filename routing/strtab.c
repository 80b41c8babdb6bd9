/* strtab.c: string-keyed item table (see strtab.h). */
#include "routing/strtab.h"

#include <stdlib.h>
#include <string.h>

uint64_t strtab_hash(const char *s)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t strtab_slot(const strtab *t, const char *key)
{
    size_t mask = t->n_slots - 1, i = (size_t)strtab_hash(key) & mask;
    while (t->slot[i] && strcmp(t->key(t->slot[i]), key) != 0)
        i = (i + 1) & mask;
    return i;
}

void *strtab_get(const strtab *t, const char *key)
{
    return t->n_slots ? t->slot[strtab_slot(t, key)] : NULL;
}

int strtab_put(strtab *t, void *item)
{
    if ((t->n + 1) * 2 > t->n_slots) {
        size_t n = t->n_slots ? 2 * t->n_slots : 16;
        strtab grown = {calloc(n, sizeof(void *)), n, t->n, t->key};
        if (!grown.slot)
            return -1;
        for (size_t i = 0; i < t->n_slots; i++)
            if (t->slot[i])
                grown.slot[strtab_slot(&grown, t->key(t->slot[i]))] = t->slot[i];
        free(t->slot);
        *t = grown;
    }
    t->slot[strtab_slot(t, t->key(item))] = item;
    t->n++;
    return 0;
}

void *strtab_del(strtab *t, const char *key)
{
    if (!t->n_slots)
        return NULL;
    size_t mask = t->n_slots - 1, i = strtab_slot(t, key), j = i;
    void *item = t->slot[i];
    if (!item)
        return NULL;
    t->slot[i] = NULL;
    t->n--;
    /* Pull later entries of the cluster into the hole unless their home
     * slot lies cyclically in (i, j]. */
    for (;;) {
        j = (j + 1) & mask;
        if (!t->slot[j])
            break;
        size_t home = (size_t)strtab_hash(t->key(t->slot[j])) & mask;
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slot[i] = t->slot[j];
            t->slot[j] = NULL;
            i = j;
        }
    }
    return item;
}

void strtab_clear(strtab *t)
{
    free(t->slot);
    t->slot = NULL;
    t->n_slots = t->n = 0;
}

void strtab_each(const strtab *t, void (*fn)(void *ud, void *item), void *ud)
{
    for (size_t i = 0; i < t->n_slots; i++)
        if (t->slot[i])
            fn(ud, t->slot[i]);
}
