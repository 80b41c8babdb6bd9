/*
 * s2s_int.h: what s2s_in.c, s2s_out.c and component.c share (s2s_common.c):
 * the action queue, the output buffer with its namespace map, log lines,
 * domain names, ids, base64, certificate names and dialback elements.
 * Not a public API.
 */
#ifndef PSYCGATE_XMPP_S2S_INT_H
#define PSYCGATE_XMPP_S2S_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "xmpp/s2s.h"

#define S2S_DEFAULT_CLOSE_TIMEOUT_MS 10000u
#define S2S_DEFAULT_MAX_PAIRS 64u
#define S2S_DEFAULT_MAX_QUEUE 1000u

/* Deadline arithmetic that cannot wrap: now + 0 means "no timeout". */
static inline uint64_t s2s_deadline(uint64_t now, uint64_t timeout)
{
    if (timeout == 0)
        return S2S_NO_DEADLINE;
    return now > S2S_NO_DEADLINE - timeout ? S2S_NO_DEADLINE - 1 : now + timeout;
}

static inline uint64_t s2s_min_deadline(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* What every stream machine has: parser, output, actions, log prefix. */
typedef struct s2s_base {
    xml_stream *xs;
    psyc_buf out;
    xml_nsmap map;      /* our side of the stream: content ns + stream: (+ db:) */
    s2s_action *q;      /* FIFO of actions: q[head .. head+n) */
    size_t qhead, qn, qcap;
    char *peer;         /* for log lines, or NULL */
    const char *kind;   /* "s2s-in", "s2s-out", "comp" */
    int nomem;          /* an allocation failed: the stream is closed */
} s2s_base;

int s2s_base_init(s2s_base *b, const char *kind, const char *peer, const char *content_ns,
                  size_t max_stanza, const xml_stream_handler *h, void *ud);
void s2s_base_free(s2s_base *b);

/* Queues a copy of a (strings duplicated, stanza moved); 0 or -1 (OOM, and
 * then the stanza is freed). */
int s2s_push(s2s_base *b, const s2s_action *a);
int s2s_pop(s2s_base *b, s2s_action *out);
/* LOG action: "<kind> <peer>: <formatted text>". */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void s2s_log(s2s_base *b, const char *fmt, ...);
/* The common start of every machine's fail(): formats the reason into
 * text[size] and logs "stream error <cond/>: reason" (RFC 6120 §4.9). */
void s2s_log_stream_error(s2s_base *b, xml_cond cond, char *text, size_t size, const char *fmt, va_list ap);
void s2s_push_close(s2s_base *b, xml_cond cond, int remote, int clean, const char *reason);
void s2s_push_auth(s2s_base *b, const char *from, const char *to, s2s_auth_method m);
void s2s_push_bounce(s2s_base *b, xml_node *stanza, const char *stanza_error);

/* Output. Each returns 0 or -1 (OOM, recorded in b->nomem). */
int s2s_write(s2s_base *b, const char *s);
int s2s_write_node(s2s_base *b, const xml_node *n);
int s2s_write_header(s2s_base *b, const char *from, const char *to, const char *id,
                     const char *version);
/* <stream:error>…</stream:error></stream:stream> (RFC 6120 §4.9.1.1). */
int s2s_write_error_close(s2s_base *b, xml_cond cond, const char *text);

/* Domains. A normalised copy (malloc) of a bare domain name (RFC 6122
 * nameprep; no localpart or resource), or NULL when it is not one. */
char *s2s_domain_norm(const char *s);
/* The normalised domainpart of a JID (malloc), or NULL when malformed. */
char *s2s_jid_domain(const char *jid);
/* Index of d in list, or -1. */
int s2s_domain_index(char *const *list, size_t n, const char *d);
/* RFC 6125 §6.4.3: "*.example.org" matches exactly one leftmost label. */
int s2s_cert_name_match(const char *pattern, const char *domain);

void s2s_gen_id(s2s_id_fn fn, void *ud, char out[S2S_ID_MAX + 1]);

/* Base64 (RFC 4648) for SASL (RFC 6120 §6.4.2). Results are malloc'd and
 * NUL-terminated; decode returns NULL for invalid input. */
char *s2s_b64_encode(const char *s, size_t n);
char *s2s_b64_decode(const char *s, size_t n, size_t *outlen);

/* Dialback elements (XEP-0220 §2): <db:NAME from to [id] [type]>[text]</db:NAME>
 * with an <error type=…><COND xmlns=stanzas/></error> child when
 * stanza_error is not NULL (XEP-0220 §2.4). NULL on OOM. */
xml_node *s2s_db_elem(const char *name, const char *from, const char *to, const char *id,
                      const char *type, const char *text, const char *stanza_error);
/* The stanza error condition in a received type='error' element, or NULL. */
const char *s2s_db_error_cond(const xml_node *el);
/* Our static copy of a known stanza error condition name (RFC 6120 §8.3.3),
 * or NULL for an unknown one. */
const char *s2s_stanza_error_name(const char *cond);
/* <error type=T><COND/></error> appended to parent; 0 or -1. */
int s2s_add_stanza_error(xml_node *parent, const char *cond);
/* A simple element with one namespace and optional text (NULL on OOM). */
xml_node *s2s_elem(const char *name, const char *ns, const char *text);
/* Element text or "" (never NULL unless OOM). */
const char *s2s_text(const xml_node *el);
/* Duplicate a string or NULL (NULL in, NULL out). */
char *s2s_strdup(const char *s);
/* Is the 'version' of a header 1.0 or higher (RFC 6120 §4.7.5)? */
int s2s_version_ge_1(const char *version);

#endif
