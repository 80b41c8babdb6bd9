/* packet.c: the packet object (PSYC.md §1, DESIGN.md §3): routing and entity
 * modifiers, state operation, method, body; builders and lookups. */
#include "psyc/psyc.h"

#include <stdlib.h>
#include <string.h>

void psyc_limits_default(psyc_limits *l)
{
    l->max_packet = PSYC_DEFAULT_MAX_PACKET;
    l->max_modifiers = PSYC_DEFAULT_MAX_MODIFIERS;
    l->max_value = PSYC_DEFAULT_MAX_VALUE;
    l->max_name = PSYC_DEFAULT_MAX_NAME;
}

void psyc_limits_resolve(psyc_limits *dst, const psyc_limits *src)
{
    psyc_limits_default(dst);
    if (!src)
        return;
    if (src->max_packet)
        dst->max_packet = src->max_packet;
    if (src->max_modifiers)
        dst->max_modifiers = src->max_modifiers;
    if (src->max_value)
        dst->max_value = src->max_value;
    if (src->max_name)
        dst->max_name = src->max_name;
}

void psyc_packet_init(psyc_packet *p)
{
    memset(p, 0, sizeof *p);
    psyc_arena_init(&p->arena);
}

void psyc_packet_free(psyc_packet *p)
{
    free(p->routing);
    free(p->entity);
    psyc_arena_free(&p->arena);
    psyc_packet_init(p);
}

void psyc_packet_reset(psyc_packet *p)
{
    psyc_modifier *r = p->routing, *e = p->entity;
    size_t cr = p->cap_routing, ce = p->cap_entity;
    psyc_arena_free(&p->arena);
    psyc_packet_init(p);
    p->routing = r;
    p->cap_routing = cr;
    p->entity = e;
    p->cap_entity = ce;
}

int psyc_packet_push_modifier(psyc_packet *p, int routing, const psyc_modifier *m)
{
    psyc_modifier **arr = routing ? &p->routing : &p->entity;
    size_t *n = routing ? &p->n_routing : &p->n_entity;
    size_t *cap = routing ? &p->cap_routing : &p->cap_entity;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        psyc_modifier *na = realloc(*arr, nc * sizeof *na);
        if (!na)
            return PSYC_ERR_NOMEM;
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = *m;
    return 0;
}

/* Routing values end at LF on the wire and cannot be length-prefixed
 * (PSYC.md §1.1 item 1), so a builder refuses an LF in them. */
static int add_modifier(psyc_packet *p, int routing, char oper, psyc_str name, psyc_str value)
{
    if (!psyc_is_operator(oper) || !psyc_is_keyword(name))
        return PSYC_ERR_INVALID;
    if (routing && value.len && memchr(value.ptr, '\n', value.len))
        return PSYC_ERR_INVALID;
    psyc_modifier m = {.oper = oper, .flags = PSYC_MOD_AUTO};
    m.name.ptr = psyc_arena_dup(&p->arena, name.ptr, name.len);
    m.value.ptr = psyc_arena_dup(&p->arena, value.ptr, value.len);
    if (!m.name.ptr || !m.value.ptr)
        return PSYC_ERR_NOMEM;
    m.name.len = name.len;
    m.value.len = value.len;
    return psyc_packet_push_modifier(p, routing, &m);
}

int psyc_packet_add_routing(psyc_packet *p, char oper, psyc_str name, psyc_str value)
{
    return add_modifier(p, 1, oper, name, value);
}

int psyc_packet_add_entity(psyc_packet *p, char oper, psyc_str name, psyc_str value)
{
    return add_modifier(p, 0, oper, name, value);
}

int psyc_packet_routing_c(psyc_packet *p, const char *name, const char *value)
{
    return add_modifier(p, 1, ':', psyc_str_c(name), psyc_str_c(value));
}

int psyc_packet_entity_c(psyc_packet *p, const char *name, const char *value)
{
    return add_modifier(p, 0, ':', psyc_str_c(name), psyc_str_c(value));
}

int psyc_packet_set_method(psyc_packet *p, psyc_str method)
{
    if (!psyc_is_keyword(method))
        return PSYC_ERR_INVALID;
    char *m = psyc_arena_dup(&p->arena, method.ptr, method.len);
    if (!m)
        return PSYC_ERR_NOMEM;
    p->method = (psyc_str){m, method.len};
    return 0;
}

int psyc_packet_set_data(psyc_packet *p, psyc_str data)
{
    char *d = psyc_arena_dup(&p->arena, data.ptr, data.len);
    if (!d)
        return PSYC_ERR_NOMEM;
    p->data = (psyc_str){d, data.len};
    p->flags |= PSYC_PKT_HAS_DATA;
    return 0;
}

static const psyc_modifier *find(const psyc_modifier *arr, size_t n, const char *name)
{
    psyc_str key = psyc_str_c(name);
    for (size_t i = n; i-- > 0;)
        if (psyc_str_eq(arr[i].name, key))
            return &arr[i];
    return NULL;
}

const psyc_modifier *psyc_packet_find_routing(const psyc_packet *p, const char *name)
{
    return find(p->routing, p->n_routing, name);
}

const psyc_modifier *psyc_packet_find_entity(const psyc_packet *p, const char *name)
{
    return find(p->entity, p->n_entity, name);
}

int psyc_packet_get(const psyc_packet *p, const char *name, psyc_str *value)
{
    const psyc_modifier *m = psyc_packet_find_entity(p, name);
    if (!m)
        m = psyc_packet_find_routing(p, name);
    if (!m)
        return 0;
    *value = m->value;
    return 1;
}

static int copy_str(psyc_arena *a, psyc_str *s)
{
    if (!s->ptr)
        return 0;
    char *d = psyc_arena_dup(a, s->ptr, s->len);
    if (!d)
        return PSYC_ERR_NOMEM;
    s->ptr = d;
    return 0;
}

static int copy_mods(psyc_packet *dst, int routing, const psyc_modifier *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        psyc_modifier m = src[i];
        if (copy_str(&dst->arena, &m.name) || copy_str(&dst->arena, &m.value))
            return PSYC_ERR_NOMEM;
        int rc = psyc_packet_push_modifier(dst, routing, &m);
        if (rc)
            return rc;
    }
    return 0;
}

int psyc_packet_copy(psyc_packet *dst, const psyc_packet *src)
{
    psyc_packet_init(dst);
    dst->state_op = src->state_op;
    dst->method = src->method;
    dst->data = src->data;
    dst->content = src->content;
    dst->content_length = src->content_length;
    dst->flags = src->flags;
    if (copy_mods(dst, 1, src->routing, src->n_routing) ||
        copy_mods(dst, 0, src->entity, src->n_entity) ||
        copy_str(&dst->arena, &dst->method) || copy_str(&dst->arena, &dst->data) ||
        copy_str(&dst->arena, &dst->content)) {
        psyc_packet_free(dst);
        return PSYC_ERR_NOMEM;
    }
    return 0;
}

const char *psyc_strerror(int code)
{
    switch (code) {
    case 0: return "ok";
    case PSYC_ERR_LENGTH: return "content length is not digits followed by LF";
    case PSYC_ERR_MOD_NAME: return "modifier without a variable name";
    case PSYC_ERR_MOD_TAB: return "variable name not followed by TAB";
    case PSYC_ERR_MOD_LEN: return "malformed binary value length";
    case PSYC_ERR_MOD_NL: return "value not followed by LF";
    case PSYC_ERR_METHOD: return "method is not a keyword followed by LF";
    case PSYC_ERR_END: return "packet not terminated by |";
    case PSYC_ERR_CONTENT_SHORT: return "content length smaller than the content";
    case PSYC_ERR_NUMBER: return "number too large";
    case PSYC_ERR_TOO_LARGE: return "packet exceeds the size limit";
    case PSYC_ERR_TOO_MANY: return "too many modifiers";
    case PSYC_ERR_VALUE_TOO_LONG: return "value exceeds the size limit";
    case PSYC_ERR_NAME_TOO_LONG: return "keyword exceeds the size limit";
    case PSYC_ERR_NOMEM: return "out of memory";
    case PSYC_ERR_SYNTAX09: return "line is neither variable, method, continuation nor end";
    case PSYC_ERR_METHOD_COMPACT: return "method does not start with _";
    case PSYC_ERR_CONTINUATION: return "continuation line without a variable";
    case PSYC_ERR_UNRENDERABLE: return "packet cannot be expressed in this syntax";
    case PSYC_ERR_INVALID: return "invalid packet field";
    default: return "unknown error";
    }
}

psyc_syntax psyc_detect_syntax(unsigned char first_byte)
{
    switch (first_byte) {
    case '.': return PSYC_SYNTAX_09;
    case '|': return PSYC_SYNTAX_10;
    case 0x16: return PSYC_SYNTAX_TLS;
    default: return PSYC_SYNTAX_UNKNOWN;
    }
}
