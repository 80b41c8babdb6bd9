/* psyc_link.c: protocol side of one PSYC circuit (see psyc_link.h). */
#include "gateway/psyc_link.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* psyced's texts, so peers and their users see familiar messages
 * (PSYC.md §2.1, §2.2; captures README). */
#define TEXT_SYNTAX_INIT_09 "The old protocol begins with a dot on a line by itself."
#define TEXT_SYNTAX_INIT_10 "The new protocol begins with a pipe on a line by itself."
#define TEXT_METHOD_COMPACT "Compact methods undefined as yet."

static char *link_strdup(const char *s)
{
    size_t n = strlen(s ? s : "");
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s ? s : "", n + 1);
    return d;
}

const char *psyc_link_syntax_name(psyc_syntax s)
{
    switch (s) {
    case PSYC_SYNTAX_09:
        return "PSYC 0.9";
    case PSYC_SYNTAX_10:
        return "PSYC 1.0";
    case PSYC_SYNTAX_TLS:
        return "TLS";
    default:
        return "unknown";
    }
}

int psyc_link_init(psyc_link *l, const psyc_link_params *params)
{
    memset(l, 0, sizeof *l);
    l->state = PSYC_LINK_DETECT;
    l->syntax = PSYC_SYNTAX_UNKNOWN;
    l->host = link_strdup(params->host ? params->host : "localhost");
    l->implementation = link_strdup(params->implementation ? params->implementation : "psycgate");
    l->peer_ip = link_strdup(params->peer_ip);
    l->peer_port = params->peer_port;
    l->peer_v6 = params->peer_v6;
    l->tls = params->tls;
    l->tls_autodetect = params->tls_autodetect;
    l->on_event = params->on_event;
    l->ctx = params->ctx;
    psyc_limits_default(&l->limits);
    if (params->max_packet)
        l->limits.max_packet = params->max_packet;
    psyc_buf_init(&l->in);
    psyc_buf_init(&l->out);
    psyc_packet_init(&l->pkt);
    psyc09_parser_init(&l->p09, &l->limits);
    psyc_parser_init(&l->p10, &l->limits, 0);
    if (!l->host || !l->implementation || !l->peer_ip) {
        psyc_link_free(l);
        return PSYC_ERR_NOMEM;
    }
    return 0;
}

void psyc_link_free(psyc_link *l)
{
    free(l->host);
    free(l->implementation);
    free(l->peer_ip);
    l->host = l->implementation = l->peer_ip = NULL;
    psyc_buf_free(&l->in);
    psyc_buf_free(&l->out);
    psyc_packet_free(&l->pkt);
}

void psyc_link_take_output(psyc_link *l, psyc_buf *out)
{
    *out = l->out;
    psyc_buf_init(&l->out);
}

static void link_vclose(psyc_link *l, int error, const char *fmt, va_list ap)
{
    if (l->state == PSYC_LINK_CLOSED)
        return; /* the first reason is the one that matters */
    l->state = PSYC_LINK_CLOSED;
    l->error = error;
    vsnprintf(l->reason, sizeof l->reason, fmt, ap);
}

void psyc_link_close(psyc_link *l, int error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    link_vclose(l, error, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Output                                                             */

static int link_render(psyc_link *l, const psyc_packet *p)
{
    if (l->syntax == PSYC_SYNTAX_10)
        return psyc_render(p, &l->out);
    return psyc_render09(p, &l->out);
}

/* An empty packet: the greeting selector / ping / pong (`.` or `|`). */
static int link_send_empty(psyc_link *l)
{
    psyc_packet p;
    psyc_packet_init(&p);
    int rc = link_render(l, &p);
    psyc_packet_free(&p);
    return rc;
}

int psyc_link_render_croak(psyc_syntax syntax, const char *method, const char *text, psyc_buf *out)
{
    psyc_packet p;
    psyc_packet_init(&p);
    /* psyced writes croaks without a content length (spyc/circuit.c croak);
     * the text never holds "\n|\n", so none is needed. */
    p.flags |= PSYC_PKT_NO_CONTENT_LENGTH;
    int rc = psyc_packet_set_method(&p, psyc_str_c(method));
    if (rc == 0)
        rc = psyc_packet_set_data(&p, psyc_str_c(text));
    if (rc == 0)
        rc = syntax == PSYC_SYNTAX_10 ? psyc_render(&p, out) : psyc_render09(&p, out);
    psyc_packet_free(&p);
    return rc;
}

/* Queues a croak and gives the CLOSED verdict (psyced: croak() then
 * disconnect, PSYC.md §2.3 step 6; captures README). */
static void link_croak(psyc_link *l, psyc_syntax syntax, const char *method, const char *text,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void link_croak(psyc_link *l, psyc_syntax syntax, const char *method, const char *text,
                       const char *fmt, ...)
{
    if (l->state == PSYC_LINK_CLOSED)
        return;
    psyc_link_render_croak(syntax, method, text, &l->out);
    va_list ap;
    va_start(ap, fmt);
    link_vclose(l, 1, fmt, ap);
    va_end(ap);
}

/* psyc://HOST/ for _source (PSYC.md §3.1). */
static int link_self_uniform(const psyc_link *l, psyc_buf *b)
{
    psyc_buf_reset(b);
    if (psyc_buf_puts(b, "psyc://") || psyc_buf_puts(b, l->host) || psyc_buf_putc(b, '/'))
        return PSYC_ERR_NOMEM;
    return 0;
}

/* psyc://IP:-PORT/ for _target_peer: a negative port marks the peer's
 * ephemeral source port, which cannot be connected to (PSYC.md §2.2). */
static int link_peer_uniform(const psyc_link *l, psyc_buf *b)
{
    char tmp[96];
    if (l->peer_v6)
        snprintf(tmp, sizeof tmp, "psyc://[%s]:-%d/", l->peer_ip, l->peer_port);
    else
        snprintf(tmp, sizeof tmp, "psyc://%s:-%d/", l->peer_ip, l->peer_port);
    psyc_buf_reset(b);
    return psyc_buf_puts(b, tmp) ? PSYC_ERR_NOMEM : 0;
}

/* The accepting side's 0.9 greeting, after the peer's `.` (PSYC.md §2.2,
 * §9; captures 1-circuit-greeting/02..04). psyced holds nothing back when
 * it accepts, so all three packets go at once. */
static int link_greet09(psyc_link *l)
{
    const char *proto = l->peer_v6 ? "PSYC/0.9 TCP IP/6" : "PSYC/0.9 TCP IP/4";
    psyc_buf self, peer;
    psyc_buf_init(&self);
    psyc_buf_init(&peer);
    psyc_packet p;
    psyc_packet_init(&p);

    int rc = link_self_uniform(l, &self);
    if (rc == 0)
        rc = link_peer_uniform(l, &peer);
    if (rc == 0)
        rc = link_send_empty(l);

    /* _notice_circuit_established: the peer learns our name and how we see it. */
    if (rc == 0)
        rc = psyc_packet_routing_c(&p, "_source", self.data);
    if (rc == 0)
        rc = psyc_packet_routing_c(&p, "_target_peer", peer.data);
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_implementation", l->implementation);
    if (rc == 0)
        rc = psyc_packet_set_method(&p, PSYC_STR_LIT("_notice_circuit_established"));
    if (rc == 0)
        rc = psyc_packet_set_data(
            &p, PSYC_STR_LIT("Hello [_target_peer].\nCircuit to [_source] running [_implementation] established."));
    if (rc == 0)
        rc = psyc_render09(&p, &l->out);

    /* _status_circuit: what we speak. Only what this build really does:
     * UTF-8, 0.9 over TCP, the _context module (PSYC.md §4.2). */
    if (rc == 0) {
        psyc_packet_reset(&p);
        rc = psyc_packet_routing_c(&p, "_source", self.data);
    }
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_available_characters", "UTF-8");
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_available_protocols", proto);
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_understand_modules", "_context");
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_using_characters", "UTF-8");
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_using_protocols", proto);
    if (rc == 0)
        rc = psyc_packet_entity_c(&p, "_using_modules", "_context");
    if (rc == 0)
        rc = psyc_packet_set_method(&p, PSYC_STR_LIT("_status_circuit"));
    if (rc == 0)
        rc = psyc_packet_set_data(&p, PSYC_STR_LIT("Available protocols: [_available_protocols]."));
    if (rc == 0)
        rc = psyc_render09(&p, &l->out);

    psyc_packet_free(&p);
    psyc_buf_free(&self);
    psyc_buf_free(&peer);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Input                                                              */

static int link_packet_is_empty(const psyc_packet *p)
{
    return p->n_routing == 0 && p->n_entity == 0 && p->method.ptr == NULL && p->data.len == 0 &&
           p->state_op == 0;
}

static void link_emit(psyc_link *l, psyc_link_event ev, const psyc_packet *p, int answered)
{
    if (l->on_event)
        l->on_event(l->ctx, l, ev, p, answered);
}

static void link_handle_packet(psyc_link *l, const psyc_packet *p, uint64_t now_ms)
{
    int empty = link_packet_is_empty(p);

    if (l->state == PSYC_LINK_GREET) {
        /* The first packet must be the empty one that selected the syntax
         * (0.9: `.` alone, PSYC.md §2.1; 1.0: exactly `|\n`, §2.3 step 2). */
        if (!empty) {
            if (l->syntax == PSYC_SYNTAX_10)
                link_croak(l, PSYC_SYNTAX_10, "_error_syntax_initialization", TEXT_SYNTAX_INIT_10,
                           "first packet is not the empty greeting packet");
            else
                link_croak(l, PSYC_SYNTAX_09, "_error_syntax_initialization", TEXT_SYNTAX_INIT_09,
                           "first packet is not the empty greeting packet");
            return;
        }
        int rc = l->syntax == PSYC_SYNTAX_09 ? link_greet09(l) : link_send_empty(l);
        if (rc < 0) {
            psyc_link_close(l, 1, "cannot render greeting: %s", psyc_strerror(rc));
            return;
        }
        l->state = PSYC_LINK_OPEN;
        link_emit(l, PSYC_LINK_EV_GREETING, p, 1);
        return;
    }

    l->packets_in++;
    if (empty) {
        /* A ping. psyced answers at most once per 120 s per circuit
         * (PSYC.md §2.2, parse.i case '.'); a peer cannot make us echo a
         * flood. A `.` after variable lines is a state change, not a ping
         * (o05), and arrives here as a non-empty packet. */
        int answer = !l->ponged || now_ms - l->last_pong_ms >= PSYC_LINK_PONG_INTERVAL_MS;
        if (answer) {
            int rc = link_send_empty(l);
            if (rc < 0) {
                psyc_link_close(l, 1, "cannot render pong: %s", psyc_strerror(rc));
                return;
            }
            l->ponged = 1;
            l->last_pong_ms = now_ms;
        }
        link_emit(l, PSYC_LINK_EV_PING, p, answer);
        return;
    }
    link_emit(l, PSYC_LINK_EV_PACKET, p, 0);
}

static void link_parse_error(psyc_link *l, int rc, size_t offset)
{
    const char *what = psyc_strerror(rc);
    psyc_syntax s = l->syntax;

    if (l->state == PSYC_LINK_GREET) {
        link_croak(l, s, "_error_syntax_initialization",
                   s == PSYC_SYNTAX_10 ? TEXT_SYNTAX_INIT_10 : TEXT_SYNTAX_INIT_09,
                   "bad greeting: %s (%d) at byte %zu", what, rc, offset);
        return;
    }
    if (rc == PSYC_ERR_METHOD_COMPACT || rc == PSYC_ERR_SYNTAX09) {
        /* psyced answers a line without glyph or '_' this way and closes
         * (captures README; PSYC.md §2.2, §2.3 step 7). */
        link_croak(l, s, "_error_invalid_method_compact", TEXT_METHOD_COMPACT,
                   "parse error: %s (%d) at byte %zu of packet %llu", what, rc, offset,
                   (unsigned long long)l->packets_in + 1);
        return;
    }
    if (rc == PSYC_ERR_NOMEM) {
        psyc_link_close(l, 1, "out of memory while parsing");
        return;
    }
    char text[160];
    snprintf(text, sizeof text, "Your packet could not be parsed: %s.", what);
    link_croak(l, s, "_error_invalid_syntax", text, "parse error: %s (%d) at byte %zu of packet %llu",
               what, rc, offset, (unsigned long long)l->packets_in + 1);
}

char *psyc_link_read_space(psyc_link *l, size_t want, size_t *avail)
{
    /* Drop consumed packets before growing: this moves only the tail of a
     * partial packet, and only once per completed packet. */
    if (l->in_start > 0) {
        size_t rest = l->in.len - l->in_start;
        if (rest)
            memmove(l->in.data, l->in.data + l->in_start, rest);
        l->in.len = rest;
        l->in_start = 0;
    }
    if (psyc_buf_reserve(&l->in, want) != 0) {
        *avail = 0;
        return NULL;
    }
    /* psyc_buf keeps one byte for a NUL terminator. */
    *avail = l->in.cap - l->in.len - 1;
    return l->in.data + l->in.len;
}

static void link_process(psyc_link *l, uint64_t now_ms)
{
    while (l->state != PSYC_LINK_CLOSED && l->state != PSYC_LINK_TLS_START &&
           l->in.len > l->in_start) {
        const char *b = l->in.data + l->in_start;
        size_t avail = l->in.len - l->in_start;

        if (l->state == PSYC_LINK_DETECT) {
            unsigned char first = (unsigned char)b[0];
            l->syntax = psyc_detect_syntax(first);
            switch (l->syntax) {
            case PSYC_SYNTAX_09:
            case PSYC_SYNTAX_10:
                l->state = PSYC_LINK_GREET;
                link_emit(l, PSYC_LINK_EV_SYNTAX, NULL, 0);
                continue;
            case PSYC_SYNTAX_TLS:
                /* PSYC.md §2.1, §5: TLS is autodetected on 4404 (a TLS
                 * record starts with 0x16). No croak in either refusal: a
                 * TLS peer could not read one. */
                link_emit(l, PSYC_LINK_EV_SYNTAX, NULL, 0);
                if (l->tls)
                    psyc_link_close(l, 1, "TLS record inside TLS");
                else if (!l->tls_autodetect)
                    psyc_link_close(l, 1, "TLS not available on this circuit");
                else
                    l->state = PSYC_LINK_TLS_START; /* the caller takes over the bytes */
                return;
            default:
                /* psyced's reaction to anything else (PSYC.md §2.1). */
                link_croak(l, PSYC_SYNTAX_09, "_error_syntax_initialization", TEXT_SYNTAX_INIT_09,
                           "unknown protocol: first byte 0x%02x is not '.', '|' or TLS", first);
                return;
            }
        }

        size_t used = 0;
        int rc = l->syntax == PSYC_SYNTAX_10
                     ? psyc_parse_packet(&l->p10, b, avail, &l->pkt, &used)
                     : psyc09_parse_packet(&l->p09, b, avail, &l->pkt, &used);
        if (rc < 0) {
            size_t off = l->syntax == PSYC_SYNTAX_10 ? l->p10.error_offset : l->p09.error_offset;
            link_parse_error(l, rc, off);
            return;
        }
        if (rc == 0) {
            /* The parsers enforce max_packet themselves; this bounds what we
             * buffer even if a parser waits for a terminator it never gets. */
            if (avail > l->limits.max_packet)
                link_parse_error(l, PSYC_ERR_TOO_LARGE, avail);
            return;
        }
        if (used == 0 || used > avail) {
            psyc_link_close(l, 1, "internal error: parser consumed %zu of %zu bytes", used, avail);
            return;
        }
        link_handle_packet(l, &l->pkt, now_ms);
        l->in_start += used;
    }
    if (l->in_start == l->in.len)
        l->in_start = l->in.len = 0;
}

static int link_verdict(const psyc_link *l)
{
    if (l->state == PSYC_LINK_CLOSED)
        return PSYC_LINK_VERDICT_CLOSE;
    if (l->state == PSYC_LINK_TLS_START)
        return PSYC_LINK_VERDICT_TLS;
    return PSYC_LINK_VERDICT_GO_ON;
}

int psyc_link_start_tls(psyc_link *l, psyc_buf *ciphertext)
{
    if (l->state != PSYC_LINK_TLS_START)
        return 0;
    size_t n = l->in.len - l->in_start;
    if (psyc_buf_append(ciphertext, l->in.data + l->in_start, n) != 0) {
        psyc_link_close(l, 1, "out of memory starting TLS");
        return PSYC_ERR_NOMEM;
    }
    /* From here on the link sees the plaintext inside TLS, which begins
     * with its own '.' or '|' (PSYC.md §2.1: 9404 speaks old syntax). */
    l->in.len = l->in_start = 0;
    l->state = PSYC_LINK_DETECT;
    l->syntax = PSYC_SYNTAX_UNKNOWN;
    l->tls = 1;
    return 0;
}

int psyc_link_received(psyc_link *l, size_t n, uint64_t now_ms)
{
    if (l->state == PSYC_LINK_CLOSED)
        return PSYC_LINK_VERDICT_CLOSE;
    if (n > l->in.cap - l->in.len - (l->in.cap ? 1 : 0)) {
        psyc_link_close(l, 1, "internal error: more bytes committed than reserved");
        return PSYC_LINK_VERDICT_CLOSE;
    }
    l->in.len += n;
    link_process(l, now_ms);
    return link_verdict(l);
}

int psyc_link_feed(psyc_link *l, const void *data, size_t n, uint64_t now_ms)
{
    if (l->state == PSYC_LINK_CLOSED)
        return PSYC_LINK_VERDICT_CLOSE;
    size_t avail = 0;
    char *space = psyc_link_read_space(l, n, &avail);
    if (!space || avail < n) {
        psyc_link_close(l, 1, "out of memory buffering input");
        return 1;
    }
    if (n)
        memcpy(space, data, n);
    return psyc_link_received(l, n, now_ms);
}
