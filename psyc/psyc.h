/*
 * psyc.h: the PSYC codec. Parses and renders PSYC 1.0 ("spyc", `|`-terminated,
 * libpsyc grammar) and classic PSYC 0.9 (`.`-terminated, psyced's default);
 * uniforms, keyword inheritance, [_var] templates, _date conversion.
 *
 * No I/O, no global state: bytes in, events/packets out (DESIGN.md §4).
 * Protocol references are to ../shared/PSYC.md (section numbers in comments).
 */
#ifndef PSYC_PSYC_H
#define PSYC_PSYC_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ */
/* Basic types                                                        */

/* A byte range that does not own its bytes (zero-copy view). */
typedef struct psyc_str {
    const char *ptr;
    size_t len;
} psyc_str;

#define PSYC_STR_NULL ((psyc_str){NULL, 0})
#define PSYC_STR_LIT(s) ((psyc_str){(s), sizeof(s) - 1})
psyc_str psyc_str_c(const char *cstr);
int psyc_str_eq(psyc_str a, psyc_str b);
int psyc_str_eq_c(psyc_str a, const char *cstr);

/* Growable output buffer used by every renderer. */
typedef struct psyc_buf {
    char *data;
    size_t len, cap;
} psyc_buf;

void psyc_buf_init(psyc_buf *b);
void psyc_buf_free(psyc_buf *b);
void psyc_buf_reset(psyc_buf *b); /* len = 0, keeps memory */
/* All appenders return 0, or -1 when memory runs out (buffer unchanged). */
int psyc_buf_reserve(psyc_buf *b, size_t extra);
int psyc_buf_append(psyc_buf *b, const void *p, size_t n);
int psyc_buf_putc(psyc_buf *b, char c);
int psyc_buf_puts(psyc_buf *b, const char *s);
int psyc_buf_put_size(psyc_buf *b, size_t v); /* decimal */

/* Arena: owned storage for copied strings of one packet. Chunks are freed
 * together; pointers stay valid until psyc_arena_free. */
typedef struct psyc_arena_chunk psyc_arena_chunk;
typedef struct psyc_arena {
    psyc_arena_chunk *head;
} psyc_arena;

void psyc_arena_init(psyc_arena *a);
void psyc_arena_free(psyc_arena *a);
/* Copies n bytes (NUL-terminated copy, n excludes the NUL). NULL on OOM. */
char *psyc_arena_dup(psyc_arena *a, const void *p, size_t n);
void *psyc_arena_alloc(psyc_arena *a, size_t n);

/* ------------------------------------------------------------------ */
/* Errors (negative) shared by the 1.0 and 0.9 parsers.               */
/* The first seven keep libpsyc's numbers (PSYC.md §1.1) so traces
 * compare directly with the vectors' .expected files.                */

typedef enum psyc_err {
    PSYC_ERR_LENGTH = -2,        /* content-length line not digits + LF */
    PSYC_ERR_MOD_NAME = -3,      /* operator without a keyword name */
    PSYC_ERR_MOD_TAB = -4,       /* name not followed by TAB (or SP len TAB) */
    PSYC_ERR_MOD_LEN = -5,       /* binary length malformed */
    PSYC_ERR_MOD_NL = -6,        /* value not followed by LF */
    PSYC_ERR_METHOD = -7,        /* method not a keyword + LF */
    PSYC_ERR_END = -8,           /* packet not terminated by `|\n` where required */
    PSYC_ERR_CONTENT_SHORT = -20, /* content length smaller than what was parsed (crafted/e10) */
    PSYC_ERR_NUMBER = -21,       /* numeric overflow in a length */
    PSYC_ERR_TOO_LARGE = -22,    /* packet larger than limits.max_packet */
    PSYC_ERR_TOO_MANY = -23,     /* more modifiers than limits.max_modifiers */
    PSYC_ERR_VALUE_TOO_LONG = -24, /* value longer than limits.max_value */
    PSYC_ERR_NAME_TOO_LONG = -25, /* keyword longer than limits.max_name */
    PSYC_ERR_NOMEM = -26,
    PSYC_ERR_SYNTAX09 = -30,     /* 0.9: line is neither var, method, continuation nor `.` */
    PSYC_ERR_METHOD_COMPACT = -31, /* 0.9: method not starting with `_` (psyced's _error_invalid_method_compact) */
    PSYC_ERR_CONTINUATION = -32, /* 0.9: continuation line with nothing to continue */
    PSYC_ERR_UNRENDERABLE = -40, /* renderer: cannot express this packet in this syntax */
    PSYC_ERR_INVALID = -41,      /* builder/renderer: illegal name, LF in a routing value, ... */
} psyc_err;

/* Short English reason for a code, e.g. "modifier name missing". */
const char *psyc_strerror(int code);

/* Limits enforced by both parsers; zero fields take the defaults below. */
typedef struct psyc_limits {
    size_t max_packet;    /* bytes per packet, all included */
    size_t max_modifiers; /* routing + entity modifiers per packet */
    size_t max_value;     /* bytes per modifier value (and per 0.9 line) */
    size_t max_name;      /* bytes per keyword (variable or method name) */
} psyc_limits;

#define PSYC_DEFAULT_MAX_PACKET ((size_t)8 << 20)
#define PSYC_DEFAULT_MAX_MODIFIERS 1024
#define PSYC_DEFAULT_MAX_VALUE ((size_t)4 << 20)
#define PSYC_DEFAULT_MAX_NAME 256

void psyc_limits_default(psyc_limits *l);
/* dst = the defaults, overridden by every non-zero field of src (src may be NULL). */
void psyc_limits_resolve(psyc_limits *dst, const psyc_limits *src);

/* ------------------------------------------------------------------ */
/* Syntax detection (PSYC.md §2.1, §5)                                */

typedef enum psyc_syntax {
    PSYC_SYNTAX_UNKNOWN = 0,
    PSYC_SYNTAX_09,  /* first byte `.` */
    PSYC_SYNTAX_10,  /* first byte `|` */
    PSYC_SYNTAX_TLS, /* first byte 0x16: TLS ClientHello */
} psyc_syntax;

psyc_syntax psyc_detect_syntax(unsigned char first_byte);

/* ------------------------------------------------------------------ */
/* Packet object                                                      */

enum {
    PSYC_MOD_AUTO = 0,   /* renderer decides (length if > 9 bytes or LF, PSYC.md §1.1) */
    PSYC_MOD_BINARY = 1, /* render with `SP len` */
    PSYC_MOD_TEXT = 2,   /* render without length (forced to binary if it holds LF) */
};

typedef struct psyc_modifier {
    char oper;     /* ':' '=' '+' '-' '?' '@' '!' */
    uint8_t flags; /* PSYC_MOD_* */
    psyc_str name;
    psyc_str value;
} psyc_modifier;

enum {
    PSYC_PKT_HAS_DATA = 1 << 0,          /* data present (possibly empty): "m\n\n|" vs "m\n|" */
    PSYC_PKT_CONTENT_LENGTH = 1 << 1,    /* render an explicit content length */
    PSYC_PKT_NO_CONTENT_LENGTH = 1 << 2, /* never render one unless framing needs it */
    PSYC_PKT_SEPARATOR = 1 << 3,         /* the content/separator line is present even if content is empty */
    PSYC_PKT_NO_SEPARATOR = 1 << 4,      /* 0.9: packet had no blank line between routing and entity */
    PSYC_PKT_OPAQUE = 1 << 5,            /* routing-only parse: `content` holds the raw content */
};

typedef struct psyc_packet {
    psyc_modifier *routing;
    size_t n_routing, cap_routing;
    psyc_modifier *entity;
    size_t n_entity, cap_entity;
    char state_op;         /* 0, '=' (reset) or '?' (resync) */
    psyc_str method;       /* ptr == NULL: no method */
    psyc_str data;         /* body */
    psyc_str content;      /* PSYC_PKT_OPAQUE only */
    size_t content_length; /* as on the wire when PSYC_PKT_CONTENT_LENGTH came from a parse */
    unsigned flags;        /* PSYC_PKT_* */
    psyc_arena arena;      /* owned copies (builders, 0.9 unescaping) */
} psyc_packet;

void psyc_packet_init(psyc_packet *p);
void psyc_packet_free(psyc_packet *p);
void psyc_packet_reset(psyc_packet *p); /* empty again, keeps array memory */

/* Builders: copy name and value into the packet's arena.
 * Return 0, PSYC_ERR_INVALID (bad operator/name, LF in a routing value) or
 * PSYC_ERR_NOMEM. */
int psyc_packet_add_routing(psyc_packet *p, char oper, psyc_str name, psyc_str value);
int psyc_packet_add_entity(psyc_packet *p, char oper, psyc_str name, psyc_str value);
int psyc_packet_set_method(psyc_packet *p, psyc_str method);
int psyc_packet_set_data(psyc_packet *p, psyc_str data);
/* Convenience for C strings. */
int psyc_packet_routing_c(psyc_packet *p, const char *name, const char *value);
int psyc_packet_entity_c(psyc_packet *p, const char *name, const char *value);

/* Zero-copy variants used by parsers: store the views as given. */
int psyc_packet_push_modifier(psyc_packet *p, int routing, const psyc_modifier *m);

/* Lookup: the last modifier of that name (later ones win), or NULL. */
const psyc_modifier *psyc_packet_find_routing(const psyc_packet *p, const char *name);
const psyc_modifier *psyc_packet_find_entity(const psyc_packet *p, const char *name);
/* Entity first, then routing; returns 1 and sets *value when found. */
int psyc_packet_get(const psyc_packet *p, const char *name, psyc_str *value);

/* Deep copy into dst (initialised by the call); dst owns everything. */
int psyc_packet_copy(psyc_packet *dst, const psyc_packet *src);

/* ------------------------------------------------------------------ */
/* PSYC 1.0 parser (PSYC.md §1.1): incremental, resumable, zero-copy. */
/*
 * Contract: `buf` given to psyc_parse_next always begins at the start of the
 * current packet and holds at least every byte given before (the caller
 * appends, may move the whole buffer, and drops bytes only after a
 * PSYC_EV_COMPLETE, when psyc_parser_consumed() bytes may be discarded).
 * Feeding one byte at a time yields exactly the events of the whole buffer.
 * Event views point into `buf` and stay valid while its bytes do.
 */

enum {
    PSYC_PARSE_ROUTING_ONLY = 1 << 0, /* content as one opaque PSYC_EV_CONTENT (§1.4) */
};

typedef enum psyc_event_type {
    PSYC_EV_MORE = 0,      /* need more bytes (not an error) */
    PSYC_EV_ROUTING = 1,   /* ev.mod */
    PSYC_EV_STATE_RESET,   /* `=\n` */
    PSYC_EV_STATE_RESYNC,  /* `?\n` */
    PSYC_EV_ENTITY,        /* ev.mod */
    PSYC_EV_BODY,          /* ev.method, ev.data (has_data) */
    PSYC_EV_CONTENT,       /* routing-only: ev.data = raw content */
    PSYC_EV_COMPLETE,      /* packet ended; ev.content_length, ev.has_length */
} psyc_event_type;

typedef struct psyc_event {
    psyc_modifier mod;
    psyc_str method;
    psyc_str data;
    int has_data;
    int has_length;        /* COMPLETE/CONTENT: explicit content length */
    size_t content_length;
    int has_separator;     /* COMPLETE: the content line was present */
} psyc_event;

typedef struct psyc_parser {
    psyc_limits limits;
    unsigned flags;
    int part;             /* internal state (parse.c) */
    size_t pos;           /* offset of the next unparsed byte in the packet */
    size_t content_start; /* offset of the first content byte */
    size_t content_len;   /* explicit content length, if has_length */
    size_t scan_hint;     /* bytes before this offset hold no terminator (resume point) */
    size_t method_off, method_len;
    size_t n_mods;
    size_t consumed;      /* size of the packet last completed */
    int has_length;
    int has_separator;
    int error;            /* sticky error code, 0 if none */
    size_t error_offset;  /* byte offset of the error within the packet */
} psyc_parser;

void psyc_parser_init(psyc_parser *p, const psyc_limits *limits, unsigned flags);
/* >0: an event (psyc_event_type), 0: need more bytes, <0: psyc_err (sticky). */
int psyc_parse_next(psyc_parser *p, const char *buf, size_t len, psyc_event *ev);
/* Bytes of the packet just completed (valid after PSYC_EV_COMPLETE). The
 * parser is ready for the next packet, which starts at buf + consumed. */
size_t psyc_parser_consumed(const psyc_parser *p);

/*
 * Packet-level 1.0 parse: collects events into `out` (zero-copy: views into
 * buf). Returns 1 and *used = packet size when a packet is complete, 0 when
 * more bytes are needed (call again with the same packet start and more
 * bytes: the parser resumes, it does not rescan), <0 on error.
 * `out` is reset at the start of each packet.
 */
int psyc_parse_packet(psyc_parser *p, const char *buf, size_t len, psyc_packet *out, size_t *used);

/* ------------------------------------------------------------------ */
/* PSYC 0.9 parser (PSYC.md §2.2): line framing, `.` terminator.      */
/* Same buffer contract as the 1.0 parser. Values with TAB-continued
 * lines and `:\t` list continuations are unescaped into out->arena;
 * everything else is a view into buf. A list variable's elements are
 * stored as a 1.0 list value (see psyc_list_*), so one packet model
 * serves both syntaxes. */

typedef struct psyc09_parser {
    psyc_limits limits;
    size_t pos;          /* resume offset (start of the next unparsed line) */
    int state;           /* internal */
    size_t scan;         /* internal: resume offset of the LF search in the current line */
    size_t value_len;    /* internal: wire length of the variable being continued */
    size_t lf_routing;   /* internal: 1 + offset of a continuation before the blank line, 0 if none */
    size_t n_mods;
    int error;
    size_t error_offset;
} psyc09_parser;

void psyc09_parser_init(psyc09_parser *p, const psyc_limits *limits);
/* 1 complete (*used = bytes), 0 need more, <0 error (p->error_offset set). */
int psyc09_parse_packet(psyc09_parser *p, const char *buf, size_t len, psyc_packet *out, size_t *used);

/* ------------------------------------------------------------------ */
/* Renderers                                                          */

/* PSYC 1.0 with the length rules of PSYC.md §1.1 (always the TAB).
 * Appends to out. 0 or <0 (PSYC_ERR_INVALID, PSYC_ERR_NOMEM). */
int psyc_render(const psyc_packet *p, psyc_buf *out);
/* PSYC 0.9: `:` lines, TAB continuation, `:\t` list elements, `.` end.
 * PSYC_ERR_UNRENDERABLE if the body holds a line that is exactly "."
 * (psyced censors such bodies: PSYC.md §2.2) or a binary-only construct. */
int psyc_render09(const psyc_packet *p, psyc_buf *out);

/* ------------------------------------------------------------------ */
/* Event traces (the format of the vectors' .expected files, PSYC.md §6):
 *   ROUTING <op> <name> <len>:<value>     ENTITY ... [binary len=N]
 *   STATE_RESET / STATE_RESYNC            BODY <method> <len>:<data>
 *   CONTENT <len>:<data>                  CONTENTLEN N, COMPLETE
 * with "  LIST_*" lines under list variables; values escaped \n \t \\ \xNN.
 * Used by `psycgatectl psyc dump` and the vector tests. */
int psyc_dump_escape(psyc_buf *out, psyc_str s);
int psyc_dump_event(psyc_buf *out, int event_type, const psyc_event *ev);
/* The events a parse of p would give (for 0.9 packets, which have no event API). */
int psyc_dump_packet(psyc_buf *out, const psyc_packet *p);

/* ------------------------------------------------------------------ */
/* Lists (PSYC.md §1.3): list = [type] *("|" elem);
 * elem = ["=" type [":" len]] [len] [SP value]                       */

typedef struct psyc_list_parser {
    psyc_str value;
    size_t pos;
    int state;
} psyc_list_parser;

typedef enum psyc_list_rc {
    PSYC_LIST_ERROR = -1,  /* syntax error (elem.* undefined) */
    PSYC_LIST_END = 0,     /* no more elements */
    PSYC_LIST_TYPE = 1,    /* default type in elem.type */
    PSYC_LIST_ELEM = 2,    /* elem.type (may be empty), elem.value */
    PSYC_LIST_TRUNCATED = 3, /* element length runs past the value; elem.value = what is there */
} psyc_list_rc;

typedef struct psyc_list_elem {
    psyc_str type;
    psyc_str value;
    int has_length;
} psyc_list_elem;

void psyc_list_parser_init(psyc_list_parser *lp, psyc_str value);
psyc_list_rc psyc_list_next(psyc_list_parser *lp, psyc_list_elem *elem);
/* Appends one element in canonical form: "| v" or "|len v" when v holds `|` or LF. */
int psyc_list_append(psyc_buf *out, psyc_str elem);
/* 1 if the name is a list variable: "_list" or "_list_..." */
int psyc_var_is_list(psyc_str name);

/* ------------------------------------------------------------------ */
/* Keywords (PSYC.md §4.4)                                            */

int psyc_is_keyword(psyc_str s); /* 1*[A-Za-z0-9_] */
int psyc_is_operator(char c);    /* : = + - ? @ ! */
/* 1 if `kw` is `base` or inherits from it at a `_` boundary:
 * psyc_inherits("_failure_unsuccessful_delivery", "_failure") == 1,
 * psyc_inherits("_failures", "_failure") == 0. */
int psyc_inherits(psyc_str kw, psyc_str base);
/* libpsyc's psyc_matches: every `_`-component of `sel` is equal to some
 * component of `kw`, in order: ("_failure_delivery",
 * "_failure_unsuccessful_delivery_death") matches, and so does
 * "_unsuccessful" (libpsyc test_match.c). 1 match, 0 not. */
int psyc_matches(psyc_str sel, psyc_str kw);
/* Variable type families (PSYC.md §1.3): returns the family name such as
 * "_date" for "_date_birth", or an empty psyc_str when untyped. */
psyc_str psyc_var_type(psyc_str name);

/* ------------------------------------------------------------------ */
/* Templates: [_var] expansion (PSYC.md §2.2)                         */

/* Called for each [_name]; return 1 and set *value if known, 0 to keep the
 * placeholder verbatim. */
typedef int (*psyc_text_lookup)(void *ctx, psyc_str name, psyc_str *value);
/* Both return 0, or PSYC_ERR_NOMEM (out unchanged). Values are not expanded again. */
int psyc_text_expand(psyc_str tmpl, psyc_text_lookup lookup, void *ctx, psyc_buf *out);
/* Expands with the packet's variables (entity first, then routing). */
int psyc_text_expand_packet(psyc_str tmpl, const psyc_packet *p, psyc_buf *out);

/* ------------------------------------------------------------------ */
/* _date (PSYC.md §1.3): wire value = unix time - PSYC_EPOCH.         */

#define PSYC_EPOCH 1440444041LL
int64_t psyc_date_to_unix(int64_t wire);
int64_t psyc_date_from_unix(int64_t unix_time);
/* Parses an optionally signed decimal integer; 0 ok, PSYC_ERR_NUMBER on overflow or junk. */
int psyc_parse_int64(psyc_str s, int64_t *out);

/* ------------------------------------------------------------------ */
/* Uniforms (PSYC.md §3.1)                                            */
/* psyc://HOST[:PORT[TRANSPORT]][/RESOURCE[#CHANNEL]]                 */

typedef enum psyc_uniform_err {
    PSYC_UNI_OK = 0,
    PSYC_UNI_ERR_SCHEME = -1,
    PSYC_UNI_ERR_SLASHES = -2,
    PSYC_UNI_ERR_HOST = -3,
    PSYC_UNI_ERR_PORT = -4,
    PSYC_UNI_ERR_TRANSPORT = -5,
    PSYC_UNI_ERR_RESOURCE = -6,
    PSYC_UNI_ERR_CHANNEL = -7,
    PSYC_UNI_ERR_TOO_LONG = -8,
} psyc_uniform_err;

typedef struct psyc_uniform {
    psyc_str full;      /* the whole input */
    psyc_str scheme;    /* "psyc" */
    psyc_str host;
    psyc_str port;      /* digits with optional leading '-', empty if none */
    long port_num;      /* 0 when absent; negative for ephemeral peer ports */
    char transport;     /* 0, 'c' TCP, 'd' UDP, 's' TLS, 'g' GNUnet */
    psyc_str root;      /* "psyc://host[:port[t]]" */
    int slash;          /* 1 if a '/' follows the root: "psyc://h/" (entity) vs "psyc://h" */
    psyc_str resource;  /* after the '/' up to '#', with the type char; empty for root */
    char entity_type;   /* '~' person, '@' place, '$' service, 0 for the root */
    psyc_str nick;      /* resource without the type char */
    psyc_str channel;   /* after '#', empty if none */
} psyc_uniform;

#define PSYC_UNIFORM_MAX 1024

/* Parses s (views into s). Returns PSYC_UNI_OK or a negative psyc_uniform_err. */
int psyc_uniform_parse(psyc_uniform *u, psyc_str s);
const char *psyc_uniform_strerror(int code);
/* Renders the parsed parts back (render(parse(x)) == x for valid x).
 * 0, PSYC_ERR_INVALID (parts do not form a valid uniform; out unchanged)
 * or PSYC_ERR_NOMEM. */
int psyc_uniform_render(const psyc_uniform *u, psyc_buf *out);
/* Canonical form: lower-case scheme, host and nick (psyced's lowercase
 * policy, PSYC.md §3.1), default port 4404 without transport dropped.
 * 0, a negative psyc_uniform_err (out unchanged) or PSYC_ERR_NOMEM. */
int psyc_uniform_normalize(psyc_str s, psyc_buf *out);

/* The circuit state machine (greeting, authorization, ping, close). */
#include "psyc/link.h"

#endif /* PSYC_PSYC_H */
