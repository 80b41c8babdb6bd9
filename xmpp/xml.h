/*
 * xml.h: the XML stream layer of the XMPP faces (DESIGN.md §3, §4).
 *
 *   bytes ─▶ xml_stream (libxml2 SAX2 push, hardened) ─▶ open / stanza / close events
 *   xml_node tree ─▶ xml_serialize ─▶ bytes
 *
 * No I/O and no global mutable state: bytes in, events and bytes out.
 *
 * The stanza model. Stanzas are trees of xml_node, one arena per tree
 * (a small stanza is one malloc), attributes in arrays in wire order,
 * names and namespace URIs as NUL-terminated strings (well-known ones point
 * to static strings, the rest are copied into the tree's arena, so a stanza
 * outlives the parser that produced it). libstrophe's xmpp_stanza_t was the
 * default model (DESIGN.md §1); it was measured against this one with
 * `psycgatectl xml bench` / bench_xml and lost (hash tables per element, one
 * malloc per string): see the issue note for the numbers. xmpp_stanza_t is
 * used only as the reference in the benchmark.
 *
 * Ownership: a tree belongs to whoever holds its root; xml_node_free(root)
 * releases every node, string and attribute of it at once. Nodes cannot be
 * freed one by one (xml_node_unlink() detaches; the memory goes with the root).
 *
 * Namespaces are resolved: every element carries its namespace URI (ns), not
 * the prefix it had on the wire. NULL ns means "no namespace"; for elements
 * on the content chain (see xml_serialize) NULL and the three content
 * namespaces jabber:client / jabber:server / jabber:component:accept all mean
 * "the stream's content namespace" (RFC 6120 §4.8.2).
 */
#ifndef PSYCGATE_XMPP_XML_H
#define PSYCGATE_XMPP_XML_H

#include <stddef.h>
#include <stdint.h>

#include "psyc/psyc.h" /* psyc_buf: the growable output buffer */

/* ------------------------------------------------------------------ */
/* Namespaces                                                          */

#define XML_NS_STREAMS "http://etherx.jabber.org/streams"       /* RFC 6120 §4.8.1 */
#define XML_NS_CLIENT "jabber:client"                           /* RFC 6120 §4.8.2 */
#define XML_NS_SERVER "jabber:server"
#define XML_NS_COMPONENT "jabber:component:accept"              /* XEP-0114 */
#define XML_NS_DIALBACK "jabber:server:dialback"                /* XEP-0220 */
#define XML_NS_DIALBACK_FEATURE "urn:xmpp:features:dialback"
#define XML_NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams" /* RFC 6120 §4.9.2 */
#define XML_NS_STANZA_ERRORS "urn:ietf:params:xml:ns:xmpp-stanzas" /* RFC 6120 §8.3 */
#define XML_NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"            /* RFC 6120 §5 */
#define XML_NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"          /* RFC 6120 §6 */
#define XML_NS_XML "http://www.w3.org/XML/1998/namespace"       /* xml:lang */

/* True for NULL and the three content namespaces (RFC 6120 §4.8.2, XEP-0114). */
int xml_ns_is_content(const char *ns);

/* ------------------------------------------------------------------ */
/* Trees                                                               */

typedef enum xml_node_type { XML_N_ELEMENT = 1, XML_N_TEXT = 2 } xml_node_type;

typedef struct xml_attr {
    const char *name;   /* local name */
    const char *ns;     /* namespace URI; NULL for unqualified attributes (almost all) */
    const char *value;  /* NUL-terminated (XML values cannot contain NUL) */
    size_t len;         /* value length in bytes */
    const char *prefix; /* wire prefix of a qualified attribute: a hint for the serializer, or NULL */
} xml_attr;

typedef struct xml_arena xml_arena;
typedef struct xml_node xml_node;

/* Read the fields freely; change trees only through the functions below. */
struct xml_node {
    xml_node_type type;
    xml_node *parent, *next, *prev; /* siblings in document order */
    /* XML_N_ELEMENT */
    const char *name;        /* local name */
    const char *ns;          /* namespace URI or NULL */
    xml_attr *attrs;         /* nattrs attributes in wire order */
    uint32_t nattrs, attrs_cap;
    xml_node *children, *last_child;
    /* XML_N_TEXT: character data, unescaped, NUL-terminated */
    const char *text;
    size_t len;
    xml_arena *arena;        /* the tree's storage */
};

/* Building. Strings are copied into the tree; functions that allocate
 * return NULL / -1 when memory runs out (the tree stays valid). */
xml_node *xml_elem_new(const char *name, const char *ns);            /* a new tree */
/* Appends an element child; ns NULL = the parent's namespace. */
xml_node *xml_elem_add(xml_node *parent, const char *name, const char *ns);
/* Appends character data (merged into a directly preceding text child). */
xml_node *xml_text_add(xml_node *parent, const char *text, size_t len);
/* Sets an attribute (replacing one with the same name and ns). */
int xml_attr_set(xml_node *el, const char *name, const char *value);
int xml_attr_set_ns(xml_node *el, const char *name, const char *ns, const char *value, size_t len);
/* Removes an attribute; returns 1 when there was one. */
int xml_attr_remove(xml_node *el, const char *name, const char *ns);
/* Deep copies: as a new tree, or appended as the last child of parent. */
xml_node *xml_node_copy(const xml_node *src);
xml_node *xml_node_add_copy(xml_node *parent, const xml_node *src);
/* Detaches n from its parent (its memory stays with the old root). */
void xml_node_unlink(xml_node *n);
/* Frees a whole tree; n must be a root (parent == NULL). NULL is fine. */
void xml_node_free(xml_node *root);

/* Reading. In lookups, ns NULL matches any namespace. */
int xml_is(const xml_node *n, const char *name, const char *ns);     /* element with that name (and ns) */
const xml_attr *xml_attr_find(const xml_node *el, const char *name, const char *ns);
const char *xml_attr_get(const xml_node *el, const char *name);         /* unqualified attribute or NULL */
xml_node *xml_child(const xml_node *el, const char *name, const char *ns); /* first element child; name NULL = any */
xml_node *xml_next(const xml_node *after, const char *name, const char *ns); /* next element sibling matching */
/* Character data of an element's text children; "" when none. Several
 * text children are joined into the tree's arena (NULL on OOM). */
const char *xml_elem_text(const xml_node *el, size_t *len);
size_t xml_node_count(const xml_node *n); /* nodes in the subtree, n included */

/* Structural equality: names, namespaces, attributes (in order), text.
 * XML_EQ_CONTENT_NS: NULL and the content namespaces are equal along the
 * content chain (what a hop through another stream type changes). */
#define XML_EQ_CONTENT_NS 1u
int xml_node_equal(const xml_node *a, const xml_node *b, unsigned flags);

/* ------------------------------------------------------------------ */
/* Stream error conditions (RFC 6120 §4.9.3, in its order)             */

typedef enum xml_cond {
    XML_COND_NONE = 0,
    XML_COND_BAD_FORMAT,              /* §4.9.3.1 */
    XML_COND_BAD_NAMESPACE_PREFIX,    /* §4.9.3.2 */
    XML_COND_CONFLICT,                /* §4.9.3.3 */
    XML_COND_CONNECTION_TIMEOUT,      /* §4.9.3.4 */
    XML_COND_HOST_GONE,               /* §4.9.3.5 */
    XML_COND_HOST_UNKNOWN,            /* §4.9.3.6 */
    XML_COND_IMPROPER_ADDRESSING,     /* §4.9.3.7 */
    XML_COND_INTERNAL_SERVER_ERROR,   /* §4.9.3.8 */
    XML_COND_INVALID_FROM,            /* §4.9.3.9 */
    XML_COND_INVALID_NAMESPACE,       /* §4.9.3.10 */
    XML_COND_INVALID_XML,             /* §4.9.3.11 */
    XML_COND_NOT_AUTHORIZED,          /* §4.9.3.12 */
    XML_COND_NOT_WELL_FORMED,         /* §4.9.3.13 */
    XML_COND_POLICY_VIOLATION,        /* §4.9.3.14 */
    XML_COND_REMOTE_CONNECTION_FAILED,/* §4.9.3.15 */
    XML_COND_RESET,                   /* §4.9.3.16 */
    XML_COND_RESOURCE_CONSTRAINT,     /* §4.9.3.17 */
    XML_COND_RESTRICTED_XML,          /* §4.9.3.18 */
    XML_COND_SEE_OTHER_HOST,          /* §4.9.3.19 */
    XML_COND_SYSTEM_SHUTDOWN,         /* §4.9.3.20 */
    XML_COND_UNDEFINED_CONDITION,     /* §4.9.3.21 */
    XML_COND_UNSUPPORTED_ENCODING,    /* §4.9.3.22 */
    XML_COND_UNSUPPORTED_FEATURE,     /* §4.9.3.23 */
    XML_COND_UNSUPPORTED_STANZA_TYPE, /* §4.9.3.24 */
    XML_COND_UNSUPPORTED_VERSION,     /* §4.9.3.25 */
    XML_COND_COUNT
} xml_cond;

const char *xml_cond_name(xml_cond c);          /* "not-well-formed"; "" for NONE */
xml_cond xml_cond_from_name(const char *name);  /* XML_COND_NONE when unknown */
/* Reads a received <stream:error/>: its condition (UNDEFINED_CONDITION when
 * none is recognised) and its <text/> (NULL when absent). */
xml_cond xml_stream_error_parse(const xml_node *err, const char **text);

/* ------------------------------------------------------------------ */
/* Stream parser                                                       */

#define XML_DEFAULT_MAX_STANZA ((size_t)512 << 10)
#define XML_LIMIT_MAX_STANZA ((size_t)8 << 20) /* below libxml2's own 10 MB caps */
#define XML_DEFAULT_MAX_DEPTH 32u
#define XML_LIMIT_MAX_DEPTH 200u               /* below libxml2's 256 */
#define XML_DEFAULT_MAX_ATTRS 64u

typedef struct xml_stream_opts {
    size_t max_stanza;     /* bytes fed since the last stanza boundary (0: default) */
    unsigned max_depth;    /* element nesting in a stanza, the stanza element is 1 (0: default) */
    unsigned max_attrs;    /* attributes + namespace declarations per element (0: default) */
    const char *content_ns;/* required default namespace on the header; NULL: any */
} xml_stream_opts;

typedef struct xml_nsdecl {
    const char *prefix;    /* NULL for the default namespace */
    const char *uri;
} xml_nsdecl;

typedef struct xml_stream_header {
    const xml_node *elem;       /* <stream:stream> with its attributes, no children */
    const char *from, *to, *id, *version, *lang; /* attribute values or NULL (id may be "") */
    const char *content_ns;     /* default namespace declared on the header, or NULL */
    const char *stream_prefix;  /* prefix of the stream namespace as sent ("stream") */
    size_t nns;                 /* namespace declarations on the header */
    const xml_nsdecl *ns;
} xml_stream_header;

/* Event handlers; any may be NULL. They run inside xml_stream_feed() and
 * may call xml_stream_restart() / xml_stream_fail(), but never feed or free
 * the same stream. */
typedef struct xml_stream_handler {
    /* The stream header; hdr lives until the stream is restarted or freed. */
    void (*open)(void *ud, const xml_stream_header *hdr);
    /* One complete depth-1 element; the handler owns it (xml_node_free). */
    void (*stanza)(void *ud, xml_node *stanza);
    /* </stream:stream>: nothing after it is parsed. */
    void (*close)(void *ud);
} xml_stream_handler;

typedef enum xml_status {
    XML_STREAM_OK = 0,      /* all bytes consumed */
    XML_STREAM_RESTART = 1, /* xml_stream_restart() was called by a handler */
    XML_STREAM_CLOSED = 2,  /* the peer closed the stream */
    XML_STREAM_ERROR = -1,  /* stream error: xml_stream_error() */
} xml_status;

typedef struct xml_stream xml_stream;

/* NULL opts: defaults. NULL when memory runs out. */
xml_stream *xml_stream_new(const xml_stream_opts *opts, const xml_stream_handler *h, void *ud);
void xml_stream_free(xml_stream *s);

/*
 * Feeds bytes, split anywhere. Returns
 *  - XML_STREAM_OK: everything was consumed (*used = len);
 *  - XML_STREAM_RESTART: a handler asked for a restart; *used = bytes up to
 *    and including the element that asked. The rest belongs to the next
 *    document: feed it again (after SASL), or drop it (after STARTTLS
 *    <proceed/>: plaintext after it is an injection, RFC 6120 §5.4.3.3);
 *  - XML_STREAM_CLOSED: </stream:stream> was read (*used = bytes up to it);
 *    later feeds return CLOSED and consume nothing;
 *  - XML_STREAM_ERROR: a stream error; the parser is dead until restarted.
 * used may be NULL.
 */
xml_status xml_stream_feed(xml_stream *s, const void *data, size_t len, size_t *used);

/* Starts a new document (RFC 6120 §4.3.3 restart after STARTTLS/SASL).
 * From a handler: parsing stops after the current event and feed returns
 * XML_STREAM_RESTART. Otherwise: the next feed starts the new document.
 * Also clears a previous error or close. */
void xml_stream_restart(xml_stream *s);

/* From a handler (or between feeds): raise a stream error; the parser stops
 * and feed returns XML_STREAM_ERROR with this condition. text may be NULL. */
void xml_stream_fail(xml_stream *s, xml_cond cond, const char *text);

/* The stream error, or XML_COND_NONE; *text (if text) is a short reason. */
xml_cond xml_stream_error(const xml_stream *s, const char **text);

/* The current header (NULL before it arrived / after a restart). */
const xml_stream_header *xml_stream_get_header(const xml_stream *s);

/* ------------------------------------------------------------------ */
/* Serializer                                                          */

#define XML_NSMAP_MAX 8

/* The namespace context of an outgoing stream: its content (default)
 * namespace and the prefixes its header declares. The header writer and the
 * serializer use the same map, so what the serializer relies on is declared. */
typedef struct xml_nsmap {
    const char *content_ns;     /* default namespace, or NULL */
    unsigned n;
    xml_nsdecl decl[XML_NSMAP_MAX];
} xml_nsmap;

/* content_ns plus stream: → XML_NS_STREAMS, and db: → XML_NS_DIALBACK on
 * jabber:server streams (XEP-0220 §2.1: dialback elements are prefixed). */
void xml_nsmap_init(xml_nsmap *m, const char *content_ns);
/* Adds a prefix declaration; -1 when full or the prefix is taken. */
int xml_nsmap_add(xml_nsmap *m, const char *prefix, const char *uri);

/*
 * Appends n and its subtree to out. With a map, elements on the content
 * chain (the stanza and descendants whose ns is NULL or a content namespace,
 * up to the first element in another namespace) are written in the map's
 * content namespace without xmlns; elements in a namespace the map has a
 * prefix for are written with that prefix (db:result); other namespace
 * changes get one xmlns='…' where they happen. With map NULL, the output is
 * standalone (the root carries its xmlns).
 *
 * Escaping: & < > in text (and CR as &#13; so it survives line-end
 * normalisation); & < > ' " in attributes plus TAB/LF/CR as character
 * references (attribute-value normalisation, XML 1.0 §3.3.3). Characters XML
 * 1.0 does not allow (C0 controls other than TAB/LF/CR, U+FFFE, U+FFFF,
 * surrogates) and bytes that are not UTF-8 are DROPPED: a PSYC message with
 * one stray control byte still goes out, minus that byte.
 *
 * Returns 0; -1 when memory runs out; -2 for a name that cannot be written
 * (empty, or with a character that would break markup). On failure out is
 * back at its old length.
 */
int xml_serialize(psyc_buf *out, const xml_node *n, const xml_nsmap *map);

/* Parses elements written standalone (xml_serialize with map NULL, e.g. a
 * payload carried in a PSYC variable) and hands each complete top-level
 * element to `each`, which owns it. 0, -1 when the bytes are not
 * well-formed (elements handed over before that stay with the callee), or
 * -2 when memory for the parser ran out. The same hardening and limits as a stream. */
int xml_parse_fragment(const void *data, size_t len, void (*each)(void *ud, xml_node *el), void *ud);

typedef struct xml_stream_attrs {
    const char *from, *to, *id, *version, *lang; /* each written when not NULL */
} xml_stream_attrs;

/* <?xml version='1.0'?><stream:stream xmlns='…' xmlns:stream='…' … > */
int xml_write_stream_open(psyc_buf *out, const xml_nsmap *map, const xml_stream_attrs *a);
/* </stream:stream> */
int xml_write_stream_close(psyc_buf *out);
/* <stream:error><COND xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>[<text …>text</text>]</stream:error>
 * (RFC 6120 §4.9.2); text may be NULL. */
int xml_write_stream_error(psyc_buf *out, xml_cond cond, const char *text);
/* The same as a tree, to add an application condition or the host of
 * <see-other-host/> before serializing it. */
xml_node *xml_stream_error_new(xml_cond cond, const char *text);

/* ------------------------------------------------------------------ */
/* Benchmark and test support (xml_gen.c, xml_bench.c)                 */

/* Appends a stream header (content_ns) and n realistic stanzas: 50 %
 * presence with caps, 35 % message with body/thread/chat state/origin-id,
 * 15 % disco iq, whitespace keep-alives between some. No closing tag. */
int xml_gen_stream(psyc_buf *out, size_t n, uint32_t seed, const char *content_ns);
/* A random stanza for property tests: nested elements, attributes (some
 * qualified), text with markup characters and non-ASCII, namespaces. */
xml_node *xml_gen_stanza(uint32_t *rng);

typedef struct xml_bench_result {
    double seconds;  /* best run */
    size_t stanzas;  /* per run */
    size_t bytes;    /* per run (input bytes; output bytes for serializers) */
    int error;       /* nonzero when the run failed */
} xml_bench_result;

/* Each parses data in `chunk`-byte feeds, `runs` times, keeping the best:
 *  bare:     libxml2 SAX2 push, same options, depth counting only;
 *  own:      xml_stream into xml_node trees (freed at once);
 *  strophe:  libstrophe xmpp_stanza_t trees built from the same SAX events.
 * serialize: xml_serialize over the stanzas of data (kept in memory) with the
 *            map of their content namespace; strophe_text: xmpp_stanza_to_text. */
void xml_bench_bare(const char *data, size_t len, size_t chunk, int runs, xml_bench_result *r);
void xml_bench_own(const char *data, size_t len, size_t chunk, int runs, xml_bench_result *r);
void xml_bench_strophe(const char *data, size_t len, size_t chunk, int runs, xml_bench_result *r);
void xml_bench_serialize(const char *data, size_t len, int runs, xml_bench_result *r,
                         xml_bench_result *strophe_text);
/* Runs all of the above and appends a report (MB/s, stanzas/s, each time
 * as a ratio to the bare run of the same process). Returns 0, or -1 when a
 * run failed (the report says which). */
int xml_bench_all(const char *data, size_t len, size_t chunk, int runs, psyc_buf *report);

#endif
