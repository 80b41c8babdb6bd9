/*
 * psyc09_int.h: internals shared by the PSYC 0.9 parser (parse09.c) and
 * renderer (render09.c). Not part of the public API (DESIGN.md §4).
 */
#ifndef PSYC_PSYC09_INT_H
#define PSYC_PSYC09_INT_H

#include "psyc/psyc.h"

/* 1 if `name` is in psyced's routing table (PSYC.md §4.1, plus the
 * greeting's _target_peer). A 0.9 packet without the blank line is split
 * into routing and entity modifiers by this table, so the parser and the
 * renderer must agree on it exactly. */
int psyc09_is_routing_var(psyc_str name);

#endif /* PSYC_PSYC09_INT_H */
