/*
 * strtab.h: a table of items found by a string key that each item holds
 * (open addressing, linear probing, backward-shift deletion: no
 * tombstones, so a table with steady adds and removes never degrades).
 * Used where routing/ keeps per-host or per-sender state for thousands of
 * peers (mcast_tree.c, coalesce.c). The table does not own the items.
 */
#ifndef PSYCGATE_ROUTING_STRTAB_H
#define PSYCGATE_ROUTING_STRTAB_H

#include <stddef.h>
#include <stdint.h>

typedef const char *(*strtab_key_fn)(const void *item);

typedef struct strtab {
    void **slot;
    size_t n_slots, n;
    strtab_key_fn key;
} strtab;

#define STRTAB_INIT(keyfn) {NULL, 0, 0, (keyfn)}

uint64_t strtab_hash(const char *s);
/* The item with this key, or NULL. */
void *strtab_get(const strtab *t, const char *key);
/* Adds an item whose key is not in the table yet. 0, or -1 when growing
 * the table ran out of memory (nothing changed). */
int strtab_put(strtab *t, void *item);
/* Removes and returns the item with this key (NULL when absent). */
void *strtab_del(strtab *t, const char *key);
/* Frees the slots (not the items); the table is empty and usable again. */
void strtab_clear(strtab *t);
/* Calls fn for every item (order unspecified); fn must not change t. */
void strtab_each(const strtab *t, void (*fn)(void *ud, void *item), void *ud);

#endif
