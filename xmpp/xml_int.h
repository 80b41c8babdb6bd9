/*
 * xml_int.h: internals shared by the files of the XML stream layer
 * (arena, static names, the attribute pre-scanner). Not a public API.
 */
#ifndef PSYCGATE_XMPP_XML_INT_H
#define PSYCGATE_XMPP_XML_INT_H

#include <stddef.h>
#include <stdint.h>

#include "xmpp/xml.h"

/* ---- arena: one per tree ------------------------------------------ */

/* Size of a tree's first block (arena header, root node, then bump space):
 * a presence with caps or a chat message fits, so a typical stanza costs
 * one malloc. */
#define XML_ARENA_FIRST 2048

typedef struct xml_chunk xml_chunk;
struct xml_arena {
    char *cur, *end;   /* bump region */
    xml_chunk *more;   /* further chunks, freed with the tree */
    size_t next_size;  /* size of the next chunk */
};

/* A new tree: one block with the arena and a zeroed root node. */
xml_node *xml_root_new(xml_node_type type);
void *xml_arena_alloc_slow(xml_arena *a, size_t n);

static inline void *xml_arena_alloc(xml_arena *a, size_t n)
{
    /* Everything is 8-aligned: nodes and attribute arrays need it, strings
     * do not mind. */
    uintptr_t p = ((uintptr_t)a->cur + 7u) & ~(uintptr_t)7u;
    if (p <= (uintptr_t)a->end && n <= (size_t)((uintptr_t)a->end - p)) {
        a->cur = (char *)(p + n);
        return (void *)p;
    }
    return xml_arena_alloc_slow(a, n);
}

/* Copies n bytes plus a NUL. */
char *xml_arena_strndup(xml_arena *a, const char *s, size_t n);

/* A zeroed node of the given type in a's tree (not linked). */
xml_node *xml_node_alloc(xml_arena *a, xml_node_type type);
/* Links child as the last child of parent. */
void xml_link_child(xml_node *parent, xml_node *child);
/* A text child with a copy of text, or appended to a last text child. */
xml_node *xml_text_append(xml_node *parent, const char *text, size_t len);
/* The same for text that arrives in pieces (the parser): the last text
 * child grows in place while its bytes are the arena's newest, else moves
 * to room for twice its size, so n pieces cost O(total). */
xml_node *xml_text_piece(xml_node *parent, const char *text, size_t len);

/* ---- well-known names ---------------------------------------------- */

/* The static copy of a well-known element/attribute name or namespace URI
 * equal to s, or NULL. Trees may point at these without copying. */
const char *xml_name_static(const char *s, size_t len);
/* True when p is one of those static strings (copies can share it). */
int xml_name_is_static(const char *p);
/* For tests: the table is sorted (binary search relies on it). */
int xml_names_sorted(void);

/* ---- pre-scanner ---------------------------------------------------- */

/*
 * libxml2 2.9 checks duplicate attributes (and namespace declarations) of
 * one start tag pairwise: 50 000 attributes in a 490 KB tag cost 0.57 s of
 * CPU, all before any callback could count them. So the bytes are scanned
 * before libxml2 sees them: a small quote-aware tag tokenizer counts '='
 * outside quoted values in each start tag (one per attribute or namespace
 * declaration in well-formed XML; in malformed XML libxml2 stops at the
 * first fault, before its pairwise check). Comments, PIs and the DOCTYPE
 * are skipped or end the scan: libxml2 rejects them on its own when it
 * reaches them (restricted-xml) and nothing after them is parsed.
 */
typedef struct xml_scan {
    uint8_t state;
    uint8_t match;     /* progress through a terminator or a "<![CDATA[" prefix */
    uint32_t nattrs;   /* '=' seen in the current start tag */
} xml_scan;

void xml_scan_init(xml_scan *sc);
/* Scans p[0..n). Returns n, or the offset of the byte at which a start tag
 * exceeds max_attrs. */
size_t xml_scan_run(xml_scan *sc, const char *p, size_t n, uint32_t max_attrs);

#endif
