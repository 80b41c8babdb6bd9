/*
 * jid.h: XMPP addresses (RFC 6122) and JID escaping (XEP-0106).
 *
 * A JID is [ localpart "@" ] domainpart [ "/" resourcepart ]. Parsing splits
 * on the separators first (RFC 6122 §2.1: the first '/' starts the resource,
 * the first '@' before it ends the localpart), then prepares each part on its
 * own: nodeprep (RFC 6122 App. A), nameprep per label with the IDNA2003
 * ToASCII/UseSTD3ASCIIRules check (§2.2), resourceprep (App. B), all through
 * libidn's stringprep (RFC 3454, Unicode 3.2 tables). Every part is 1..1023
 * bytes after preparation. What comes out is the normalised form: two JIDs
 * are the same address exactly when their normalised strings are equal.
 *
 * Policy choices (details in jid.c):
 *  - localpart and domainpart refuse code points unassigned in Unicode 3.2
 *    (RFC 3454 §7 "stored strings": they are identities); the resourcepart
 *    allows them ("queries"), since MUC nicknames and client resources
 *    carry emoji, which Unicode 3.2 predates.
 *  - domainpart: one trailing dot (or IDNA dot U+3002/U+FF0E/U+FF61) is
 *    stripped; labels are nameprep'd and must pass IDNA2003 ToASCII with
 *    UseSTD3ASCIIRules (letters, digits, inner hyphens, <= 63 octets in ACE
 *    form); the Unicode form is kept, A-labels ("xn--...") stay as written.
 *    "[IPv6]" is normalised to inet_ntop's text; an all-numeric domain must
 *    be a dotted-quad IPv4 address.
 *  - parts longer than JID_INPUT_PART_MAX bytes are refused before any
 *    Unicode work.
 *
 * No I/O and no global state (DESIGN.md §4); the functions are reentrant.
 */
#ifndef PSYCGATE_XMPP_JID_H
#define PSYCGATE_XMPP_JID_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 6122 §2.1: each part at most 1023 bytes (after preparation). */
#define JID_PART_MAX 1023
/* Longest normalised full JID: three parts plus '@' and '/'. */
#define JID_FULL_MAX (3 * JID_PART_MAX + 2)
/* Hardening: a part longer than this on input is refused before any
 * Unicode processing (it could only shrink to 1023 bytes through
 * mapped-to-nothing characters; bounding it bounds the stringprep work). */
#define JID_INPUT_PART_MAX 4096

typedef enum jid_err {
    JID_OK = 0,
    JID_ERR_NOMEM,
    JID_ERR_EMPTY,              /* empty input */
    JID_ERR_NUL,                /* a NUL byte in the input */
    JID_ERR_UTF8,               /* not well-formed UTF-8 (RFC 3629) */
    JID_ERR_LOCAL_EMPTY,        /* "@domain": '@' with nothing before it */
    JID_ERR_LOCAL_TOO_LONG,     /* > 1023 bytes after nodeprep */
    JID_ERR_LOCAL_PROHIBITED,   /* nodeprep prohibited output (space " & ' / : < > @, controls...) */
    JID_ERR_LOCAL_UNASSIGNED,   /* code point unassigned in Unicode 3.2 */
    JID_ERR_LOCAL_BIDI,         /* RFC 3454 §6 bidi rule */
    JID_ERR_DOMAIN_EMPTY,
    JID_ERR_DOMAIN_TOO_LONG,
    JID_ERR_DOMAIN_PROHIBITED,
    JID_ERR_DOMAIN_UNASSIGNED,
    JID_ERR_DOMAIN_BIDI,
    JID_ERR_DOMAIN_LABEL_EMPTY,    /* "a..b", ".a", "a.." */
    JID_ERR_DOMAIN_LABEL_TOO_LONG, /* ToASCII form longer than 63 octets */
    JID_ERR_DOMAIN_LABEL_CHARS,    /* not letters/digits/hyphen, or leading/trailing '-' */
    JID_ERR_DOMAIN_IP,             /* malformed [IPv6] literal or dotted-decimal IPv4 */
    JID_ERR_RESOURCE_EMPTY,     /* "x/": '/' with nothing after it */
    JID_ERR_RESOURCE_TOO_LONG,
    JID_ERR_RESOURCE_PROHIBITED,
    JID_ERR_RESOURCE_BIDI,
    JID_ERR_UNSTABLE,           /* preparing the prepared part changed it again */
    JID_ERR_ESCAPE_SPACE,       /* XEP-0106: escaped localpart may not begin/end with \20 */
    JID_ERR_BUFFER,             /* caller's output buffer too small */
    JID_ERR_INTERNAL,           /* unexpected libidn result */
    JID_ERR_COUNT_              /* number of codes, not an error */
} jid_err_t;

/* A short English reason ("localpart contains a character prohibited by
 * nodeprep"); never NULL, also for unknown values. */
const char *jid_strerror(jid_err_t err);

/*
 * A normalised JID. The value owns one heap block (`buf`) holding five
 * NUL-terminated strings: full, bare, local, domain, resource. The struct
 * itself may be copied around by value (all pointers point into `buf`, not
 * into the struct), but exactly one copy may be passed to jid_free; use
 * jid_copy for an independent second value.
 *
 * Fields are read-only for callers. `local` and `resource` are NULL when
 * the part is absent (never empty strings). A jid_t set to JID_INIT (or
 * zeroed) is "no JID": all pointers NULL; jid_free on it is a no-op.
 */
typedef struct jid {
    char *buf;            /* owned */
    size_t buf_size;
    const char *full;     /* "local@domain/resource" */
    const char *bare;     /* "local@domain" */
    const char *local;    /* NULL when absent */
    const char *domain;
    const char *resource; /* NULL when absent */
    size_t full_len, bare_len, local_len, domain_len, resource_len;
} jid_t;

#define JID_INIT {.buf = NULL}

/* Parses and normalises s[0..len) (not necessarily NUL-terminated). On
 * success *out holds the JID; on error *out is JID_INIT. *out is
 * overwritten without being freed. */
jid_err_t jid_parse(jid_t *out, const char *s, size_t len);
jid_err_t jid_parse_cstr(jid_t *out, const char *s);
/* The normalised domain of the JID s into out (size bytes with the NUL):
 * 0, or -1 when s is NULL, no valid JID, or its domain does not fit. */
int jid_domain_cstr(const char *s, char *out, size_t size);

/* Builds a JID from separate parts (NULL = absent; "" = present but empty,
 * which is an error), preparing each as jid_parse would. Unlike building a
 * string and parsing it, a '@' or '/' in `local` is reported as prohibited
 * rather than silently moving the split. */
jid_err_t jid_from_parts(jid_t *out, const char *local, const char *domain,
                         const char *resource);

/* Independent copy / the bare JID (resource dropped) of src. dst is
 * overwritten without being freed; dst may not alias src. */
jid_err_t jid_copy(jid_t *dst, const jid_t *src);
jid_err_t jid_to_bare(jid_t *dst, const jid_t *src);

void jid_free(jid_t *j);

static inline bool jid_is_bare(const jid_t *j) { return j->resource == NULL; }

/* Comparison of normalised forms (RFC 6122 §2: compare after preparation).
 * Bare: localpart and domainpart equal, resources ignored. Full: also the
 * resources (absent == absent; resourceprep keeps case, so "Home" and
 * "home" differ). Two JID_INIT values are equal; JID_INIT equals nothing
 * else. */
bool jid_equal_bare(const jid_t *a, const jid_t *b);
bool jid_equal_full(const jid_t *a, const jid_t *b);

/*
 * XEP-0106 JID escaping of a localpart. Both work on the unescaped/escaped
 * string as bytes, write a NUL-terminated result into out[0..out_size) and
 * store its length (without the NUL) in *out_len when out_len is not NULL.
 * The input must be UTF-8 without NUL (JID_ERR_UTF8, JID_ERR_NUL); a too
 * small buffer gives JID_ERR_BUFFER. An empty input gives an empty output.
 *
 * Escaping (XEP-0106 §3.2, §4.1 rule 7, §4.2 step 3): each of
 *   space " & ' / : < > @   becomes  \20 \22 \26 \27 \2f \3a \3c \3e \40,
 * and a backslash becomes \5c only when it is followed by two characters
 * that (ignoring ASCII case) spell one of the ten escape codes 20 22 26 27
 * 2f 3a 3c 3e 40 5c; every other backslash is left alone (§4.3: "\2plus",
 * "foo\bar" are not modified). Matching those codes case-insensitively
 * means nodeprep's case folding of the escaped localpart cannot turn a
 * literal "\2F" into an escape of '/'. A leading or trailing space cannot
 * be escaped (§3.2 note: \20 may not start or end an escaped localpart):
 * JID_ERR_ESCAPE_SPACE.
 *
 * Unescaping (§3.3, §4.1 rule 3): exactly the ten lower-case sequences
 * \20 \22 \26 \27 \2f \3a \3c \3e \40 \5c are decoded, left to right,
 * without rescanning the output; anything else (partial or unknown
 * sequences, upper-case hex) is copied unchanged, and so is a \20 at the
 * very start or end, which §4.1 rule 6 says is not an escape. Unescaping
 * never fails on valid input and never makes the string longer.
 *
 * unescape(escape(x)) == x for every x that escape accepts. escape is the
 * inverse on its image: escape(unescape(y)) == y exactly when y is in the
 * canonical escaped form (some y, like "\5cbar" or "\20x", are not; their
 * canonical forms are "\bar" and "\5c20x"). Callers mapping foreign names
 * to JIDs (routing/) should compare the round trip after nodeprep: NFKC can
 * manufacture a backslash sequence from fullwidth forms.
 */
#define JID_ESCAPE_BOUND(len) (3 * (len) + 1)
#define JID_UNESCAPE_BOUND(len) ((len) + 1)

jid_err_t jid_escape_local(const char *in, size_t len, char *out, size_t out_size,
                           size_t *out_len);
jid_err_t jid_unescape_local(const char *in, size_t len, char *out, size_t out_size,
                             size_t *out_len);

#endif
