/*
 * xml_tree.c: the stanza tree: one arena per tree, build, lookup, copy,
 * equality, free.
 *
 * Why not xmpp_stanza_t (DESIGN.md §1): libstrophe keeps attributes in a
 * hash table per element and mallocs every node, name and value; building
 * its trees cost ~1.8x the bare SAX parse here, the goal is 1.5x. An arena
 * per tree makes a stanza one malloc and one free, and attribute arrays
 * keep wire order (which the hash table loses).
 */
#include "xmpp/xml_int.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN8(x) (((x) + 7u) & ~(size_t)7u)
#define ROOT_OFFSET ALIGN8(sizeof(xml_arena))
#define CHUNK_MIN 4096u
#define CHUNK_MAX ((size_t)64 << 10)

struct xml_chunk {
    xml_chunk *next;
    size_t size;
};

xml_node *xml_root_new(xml_node_type type)
{
    char *block = malloc(XML_ARENA_FIRST);
    if (!block)
        return NULL;
    xml_arena *a = (xml_arena *)(void *)block;
    xml_node *n = (xml_node *)(void *)(block + ROOT_OFFSET);
    memset(n, 0, sizeof *n);
    n->type = type;
    n->arena = a;
    a->cur = block + ROOT_OFFSET + ALIGN8(sizeof *n);
    a->end = block + XML_ARENA_FIRST;
    a->more = NULL;
    a->next_size = CHUNK_MIN;
    return n;
}

void *xml_arena_alloc_slow(xml_arena *a, size_t n)
{
    size_t hdr = ALIGN8(sizeof(xml_chunk));
    if (n > SIZE_MAX - hdr - 8)
        return NULL;
    /* A large request gets a chunk of its own and the bump region stays
     * where it is (its free space is not wasted). */
    int own = n > a->next_size / 2;
    size_t size = own ? ALIGN8(n) : a->next_size;
    xml_chunk *c = malloc(hdr + size);
    if (!c)
        return NULL;
    c->size = size;
    c->next = a->more;
    a->more = c;
    char *data = (char *)c + hdr;
    if (own)
        return data;
    a->cur = data + ALIGN8(n);
    a->end = data + size;
    if (a->next_size < CHUNK_MAX)
        a->next_size *= 2;
    return data;
}

char *xml_arena_strndup(xml_arena *a, const char *s, size_t n)
{
    char *d = xml_arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Names in copies: static names are shared, others copied. */
static const char *dup_name(xml_arena *a, const char *s)
{
    if (!s || xml_name_is_static(s))
        return s;
    return xml_arena_strndup(a, s, strlen(s));
}

xml_node *xml_node_alloc(xml_arena *a, xml_node_type type)
{
    xml_node *n = xml_arena_alloc(a, sizeof *n);
    if (!n)
        return NULL;
    memset(n, 0, sizeof *n);
    n->type = type;
    n->arena = a;
    return n;
}

void xml_link_child(xml_node *parent, xml_node *child)
{
    child->parent = parent;
    child->next = NULL;
    child->prev = parent->last_child;
    if (parent->last_child)
        parent->last_child->next = child;
    else
        parent->children = child;
    parent->last_child = child;
}

void xml_node_free(xml_node *root)
{
    if (!root)
        return;
    xml_arena *a = root->arena;
    /* Only the node at the start of the first block owns the storage; a
     * detached subtree is freed with its original root. */
    if ((char *)root != (char *)a + ROOT_OFFSET)
        return;
    xml_chunk *c = a->more;
    while (c) {
        xml_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

int xml_ns_is_content(const char *ns)
{
    return !ns || strcmp(ns, XML_NS_SERVER) == 0 || strcmp(ns, XML_NS_CLIENT) == 0 ||
           strcmp(ns, XML_NS_COMPONENT) == 0;
}

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* ---- building ------------------------------------------------------ */

xml_node *xml_elem_new(const char *name, const char *ns)
{
    if (!name)
        return NULL;
    xml_node *n = xml_root_new(XML_N_ELEMENT);
    if (!n)
        return NULL;
    n->name = dup_name(n->arena, name);
    n->ns = dup_name(n->arena, ns);
    if (!n->name || (ns && !n->ns)) {
        xml_node_free(n);
        return NULL;
    }
    return n;
}

xml_node *xml_elem_add(xml_node *parent, const char *name, const char *ns)
{
    if (!parent || parent->type != XML_N_ELEMENT || !name)
        return NULL;
    xml_node *n = xml_node_alloc(parent->arena, XML_N_ELEMENT);
    if (!n)
        return NULL;
    n->name = dup_name(parent->arena, name);
    if (!ns || str_eq(ns, parent->ns))
        n->ns = parent->ns; /* same tree: share the string */
    else
        n->ns = dup_name(parent->arena, ns);
    if (!n->name || (ns && !n->ns))
        return NULL;
    xml_link_child(parent, n);
    return n;
}

xml_node *xml_text_append(xml_node *parent, const char *text, size_t len)
{
    xml_arena *a = parent->arena;
    xml_node *last = parent->last_child;
    if (last && last->type == XML_N_TEXT) {
        if (len > SIZE_MAX - last->len - 1)
            return NULL;
        char *t = xml_arena_alloc(a, last->len + len + 1);
        if (!t)
            return NULL;
        memcpy(t, last->text, last->len);
        if (len)
            memcpy(t + last->len, text, len);
        last->len += len;
        t[last->len] = '\0';
        last->text = t;
        return last;
    }
    if (len > SIZE_MAX - sizeof(xml_node) - 8)
        return NULL;
    /* Node and bytes in one allocation. */
    xml_node *n = xml_arena_alloc(a, ALIGN8(sizeof *n) + len + 1);
    if (!n)
        return NULL;
    memset(n, 0, sizeof *n);
    n->type = XML_N_TEXT;
    n->arena = a;
    char *t = (char *)n + ALIGN8(sizeof *n);
    if (len)
        memcpy(t, text, len);
    t[len] = '\0';
    n->text = t;
    n->len = len;
    xml_link_child(parent, n);
    return n;
}

/* Makes sure the bump region has `room` free bytes. */
static int arena_reserve(xml_arena *a, size_t room)
{
    if ((size_t)(a->end - a->cur) >= room)
        return 0;
    size_t hdr = ALIGN8(sizeof(xml_chunk));
    if (room > SIZE_MAX - hdr - 8)
        return -1;
    size_t size = room > a->next_size ? ALIGN8(room) : a->next_size;
    xml_chunk *c = malloc(hdr + size);
    if (!c)
        return -1;
    c->size = size;
    c->next = a->more;
    a->more = c;
    a->cur = (char *)c + hdr;
    a->end = a->cur + size;
    if (a->next_size < CHUNK_MAX)
        a->next_size *= 2;
    return 0;
}

xml_node *xml_text_piece(xml_node *parent, const char *text, size_t len)
{
    xml_arena *a = parent->arena;
    xml_node *last = parent->last_child;
    if (!last || last->type != XML_N_TEXT)
        return xml_text_append(parent, text, len);
    char *t = (char *)(uintptr_t)last->text; /* our own bytes */
    size_t have = last->len;
    if (len > SIZE_MAX / 2 - have - 1)
        return NULL;
    if (t + have + 1 != a->cur || (size_t)(a->end - a->cur) < len) {
        size_t want = have + len + 1;
        if (arena_reserve(a, 2 * want) != 0)
            return NULL;
        char *nt = a->cur;
        memcpy(nt, t, have);
        a->cur = nt + have + 1;
        t = nt;
        last->text = t;
    }
    memcpy(t + have, text, len);
    t[have + len] = '\0';
    a->cur += len;
    last->len = have + len;
    return last;
}

xml_node *xml_text_add(xml_node *parent, const char *text, size_t len)
{
    if (!parent || parent->type != XML_N_ELEMENT || (!text && len))
        return NULL;
    return xml_text_append(parent, text ? text : "", len);
}

static xml_attr *attr_slot(xml_node *el, const char *name, const char *ns)
{
    for (uint32_t i = 0; i < el->nattrs; i++) {
        xml_attr *at = &el->attrs[i];
        if (strcmp(at->name, name) == 0 && str_eq(at->ns, ns))
            return at;
    }
    return NULL;
}

int xml_attr_set_ns(xml_node *el, const char *name, const char *ns, const char *value, size_t len)
{
    if (!el || el->type != XML_N_ELEMENT || !name || (!value && len))
        return -1;
    xml_arena *a = el->arena;
    char *v = xml_arena_strndup(a, value ? value : "", len);
    if (!v)
        return -1;
    xml_attr *at = attr_slot(el, name, ns);
    if (at) {
        at->value = v;
        at->len = len;
        return 0;
    }
    if (el->nattrs == UINT32_MAX)
        return -1;
    if (el->nattrs == el->attrs_cap) {
        uint32_t cap = el->attrs_cap ? el->attrs_cap * 2 : 4;
        xml_attr *na = xml_arena_alloc(a, (size_t)cap * sizeof *na);
        if (!na)
            return -1;
        if (el->nattrs)
            memcpy(na, el->attrs, el->nattrs * sizeof *na);
        el->attrs = na;
        el->attrs_cap = cap;
    }
    at = &el->attrs[el->nattrs];
    at->name = dup_name(a, name);
    at->ns = dup_name(a, ns);
    at->prefix = NULL;
    at->value = v;
    at->len = len;
    if (!at->name || (ns && !at->ns))
        return -1;
    el->nattrs++;
    return 0;
}

int xml_attr_set(xml_node *el, const char *name, const char *value)
{
    return xml_attr_set_ns(el, name, NULL, value, value ? strlen(value) : 0);
}

int xml_attr_remove(xml_node *el, const char *name, const char *ns)
{
    if (!el || el->type != XML_N_ELEMENT || !name)
        return 0;
    xml_attr *at = attr_slot(el, name, ns);
    if (!at)
        return 0;
    size_t i = (size_t)(at - el->attrs);
    memmove(at, at + 1, (el->nattrs - i - 1) * sizeof *at);
    el->nattrs--;
    return 1;
}

void xml_node_unlink(xml_node *n)
{
    if (!n || !n->parent)
        return;
    xml_node *p = n->parent;
    if (n->prev)
        n->prev->next = n->next;
    else
        p->children = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        p->last_child = n->prev;
    n->parent = n->next = n->prev = NULL;
}

/* ---- copies -------------------------------------------------------- */

static int copy_into(xml_node *dst, const xml_node *src)
{
    xml_arena *a = dst->arena;
    dst->name = dup_name(a, src->name);
    dst->ns = dup_name(a, src->ns);
    if (!dst->name || (src->ns && !dst->ns))
        return -1;
    if (src->nattrs) {
        dst->attrs = xml_arena_alloc(a, src->nattrs * sizeof *dst->attrs);
        if (!dst->attrs)
            return -1;
        for (uint32_t i = 0; i < src->nattrs; i++) {
            const xml_attr *s = &src->attrs[i];
            xml_attr *d = &dst->attrs[i];
            d->name = dup_name(a, s->name);
            d->ns = dup_name(a, s->ns);
            d->prefix = dup_name(a, s->prefix);
            d->value = xml_arena_strndup(a, s->value, s->len);
            d->len = s->len;
            if (!d->name || !d->value || (s->ns && !d->ns) || (s->prefix && !d->prefix))
                return -1;
        }
        dst->nattrs = dst->attrs_cap = src->nattrs;
    }
    for (const xml_node *c = src->children; c; c = c->next) {
        if (c->type == XML_N_TEXT) {
            /* Appending would merge adjacent text nodes: keep them apart. */
            xml_node *t = xml_node_alloc(a, XML_N_TEXT);
            if (!t || !(t->text = xml_arena_strndup(a, c->text, c->len)))
                return -1;
            t->len = c->len;
            xml_link_child(dst, t);
        } else {
            xml_node *e = xml_node_alloc(a, XML_N_ELEMENT);
            if (!e)
                return -1;
            xml_link_child(dst, e);
            if (copy_into(e, c) != 0)
                return -1;
        }
    }
    return 0;
}

xml_node *xml_node_copy(const xml_node *src)
{
    if (!src)
        return NULL;
    xml_node *n = xml_root_new(src->type);
    if (!n)
        return NULL;
    int rc;
    if (src->type == XML_N_TEXT) {
        n->text = xml_arena_strndup(n->arena, src->text, src->len);
        n->len = src->len;
        rc = n->text ? 0 : -1;
    } else {
        rc = copy_into(n, src);
    }
    if (rc != 0) {
        xml_node_free(n);
        return NULL;
    }
    return n;
}

xml_node *xml_node_add_copy(xml_node *parent, const xml_node *src)
{
    if (!parent || parent->type != XML_N_ELEMENT || !src)
        return NULL;
    if (src->type == XML_N_TEXT) {
        xml_node *t = xml_node_alloc(parent->arena, XML_N_TEXT);
        if (!t || !(t->text = xml_arena_strndup(parent->arena, src->text, src->len)))
            return NULL;
        t->len = src->len;
        xml_link_child(parent, t);
        return t;
    }
    xml_node *e = xml_node_alloc(parent->arena, XML_N_ELEMENT);
    if (!e)
        return NULL;
    xml_link_child(parent, e);
    if (copy_into(e, src) != 0) {
        xml_node_unlink(e);
        return NULL;
    }
    return e;
}

/* ---- reading ------------------------------------------------------- */

int xml_is(const xml_node *n, const char *name, const char *ns)
{
    return n && n->type == XML_N_ELEMENT && (!name || str_eq(n->name, name)) &&
           (!ns || str_eq(n->ns, ns));
}

const xml_attr *xml_attr_find(const xml_node *el, const char *name, const char *ns)
{
    if (!el || el->type != XML_N_ELEMENT || !name)
        return NULL;
    for (uint32_t i = 0; i < el->nattrs; i++) {
        const xml_attr *at = &el->attrs[i];
        if (str_eq(at->name, name) && (ns ? str_eq(at->ns, ns) : 1))
            return at;
    }
    return NULL;
}

const char *xml_attr_get(const xml_node *el, const char *name)
{
    if (!el || el->type != XML_N_ELEMENT || !name)
        return NULL;
    for (uint32_t i = 0; i < el->nattrs; i++) {
        const xml_attr *at = &el->attrs[i];
        if (!at->ns && str_eq(at->name, name))
            return at->value;
    }
    return NULL;
}

xml_node *xml_next(const xml_node *after, const char *name, const char *ns)
{
    for (xml_node *c = after ? after->next : NULL; c; c = c->next)
        if (xml_is(c, name, ns))
            return c;
    return NULL;
}

xml_node *xml_child(const xml_node *el, const char *name, const char *ns)
{
    if (!el || el->type != XML_N_ELEMENT)
        return NULL;
    for (xml_node *c = el->children; c; c = c->next)
        if (xml_is(c, name, ns))
            return c;
    return NULL;
}

const char *xml_elem_text(const xml_node *el, size_t *len)
{
    size_t total = 0, count = 0;
    const xml_node *one = NULL;
    if (el && el->type == XML_N_ELEMENT) {
        for (const xml_node *c = el->children; c; c = c->next)
            if (c->type == XML_N_TEXT) {
                one = c;
                total += c->len;
                count++;
            }
    }
    if (count <= 1) {
        if (len)
            *len = one ? one->len : 0;
        return one ? one->text : "";
    }
    /* Joined text lives in the tree's arena (the tree is logically
     * unchanged: no node is added). */
    char *t = xml_arena_alloc(el->arena, total + 1);
    if (!t)
        return NULL;
    size_t off = 0;
    for (const xml_node *c = el->children; c; c = c->next)
        if (c->type == XML_N_TEXT) {
            memcpy(t + off, c->text, c->len);
            off += c->len;
        }
    t[off] = '\0';
    if (len)
        *len = off;
    return t;
}

size_t xml_node_count(const xml_node *n)
{
    if (!n)
        return 0;
    size_t c = 1;
    for (const xml_node *k = n->children; k; k = k->next)
        c += xml_node_count(k);
    return c;
}

static int equal(const xml_node *a, const xml_node *b, unsigned flags, int chain)
{
    if (a->type != b->type)
        return 0;
    if (a->type == XML_N_TEXT)
        return a->len == b->len && memcmp(a->text, b->text, a->len) == 0;
    if (strcmp(a->name, b->name) != 0)
        return 0;
    int content = (flags & XML_EQ_CONTENT_NS) && chain && xml_ns_is_content(a->ns) &&
                  xml_ns_is_content(b->ns);
    if (!content && !str_eq(a->ns, b->ns))
        return 0;
    if (a->nattrs != b->nattrs)
        return 0;
    for (uint32_t i = 0; i < a->nattrs; i++) {
        const xml_attr *x = &a->attrs[i], *y = &b->attrs[i];
        if (strcmp(x->name, y->name) != 0 || !str_eq(x->ns, y->ns) || x->len != y->len ||
            memcmp(x->value, y->value, x->len) != 0)
            return 0;
    }
    const xml_node *x = a->children, *y = b->children;
    for (; x && y; x = x->next, y = y->next)
        if (!equal(x, y, flags, content))
            return 0;
    return !x && !y;
}

int xml_node_equal(const xml_node *a, const xml_node *b, unsigned flags)
{
    if (!a || !b)
        return a == b;
    return equal(a, b, flags, 1);
}
