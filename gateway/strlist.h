/* strlist.h: a growable list of owned strings, for collecting what a store
 * query or a walk yields before acting on it. */
#ifndef GATEWAY_STRLIST_H
#define GATEWAY_STRLIST_H

#include <stddef.h>

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

#define STRLIST_INIT {NULL, 0, 0}

/* Appends a copy of s. 0, or -1 when memory runs out (list unchanged). */
int strlist_push(strlist *l, const char *s);
/* Frees every string and the array; the list is empty again. */
void strlist_free(strlist *l);

#endif
