/*
 * fuzz_s2s_in.c: libFuzzer target for the receiving S2S stream machine
 * (xmpp/s2s_in.c). Input: one config byte, one seed byte, then the bytes
 * a peer sends. They are fed in chunks of pseudo-random size; every action
 * is run the way the gateway would (VERIFY_KEY answered valid / invalid /
 * error or left pending, START_TLS completed with or without certificate
 * names, STANZA freed), with ticks and closes in between. Checks, abort()
 * on violation:
 *  - feed never reports more bytes consumed than it was given, and fewer
 *    only right after a START_TLS;
 *  - what the machine writes is always a well-formed XMPP stream (parsed
 *    back with xml_stream; our headers start new documents);
 *  - a STANZA action always comes with a stanza and both domains, and
 *    only for a pair s2s_in_is_authenticated() agrees with;
 *  - exactly one CLOSE, after which the machine is CLOSED and silent.
 * Config byte: bits 0-1 TLS policy, bit 2 peer understands dialback
 * errors, bit 3 cert_dialback, bit 4 certificate names after TLS, bit 5
 * small stanza limit, bit 6 graceful close half-way, bit 7 byte by byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmpp/s2s.h"
#include "xmpp/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond)
        abort();
}

static uint32_t next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Our output, parsed back: must never be a stream error. */
typedef struct out_check {
    xml_stream *xs;
    int opened;
} out_check;

static void oc_open(void *ud, const xml_stream_header *h)
{
    (void)h;
    ((out_check *)ud)->opened = 1;
}

static void oc_stanza(void *ud, xml_node *st)
{
    (void)ud;
    xml_node_free(st);
}

static void oc_feed_doc(out_check *oc, const char *p, size_t n)
{
    if (n)
        check(xml_stream_feed(oc->xs, p, n, NULL) != XML_STREAM_ERROR);
}

static void oc_feed(out_check *oc, psyc_buf *b)
{
    const char *p = b->data;
    size_t n = b->len;
    while (n > 0) {
        size_t i = 0;
        for (; i + 5 <= n; i++)
            if (memcmp(p + i, "<?xml", 5) == 0 && (i > 0 || oc->opened))
                break;
        if (i + 5 > n) {
            oc_feed_doc(oc, p, n);
            break;
        }
        oc_feed_doc(oc, p, i);
        xml_stream_restart(oc->xs);
        oc->opened = 0;
        oc_feed_doc(oc, p + i, 5);
        p += i + 5;
        n -= i + 5;
    }
    psyc_buf_reset(b);
}

typedef struct pending {
    char *from, *to, *id;
} pending;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t conf = data[0];
    uint32_t rng = 0x9e3779b9u ^ ((uint32_t)data[1] << 8 | data[1]);
    data += 2;
    size -= 2;

    static const char *const domains[] = {"gw.test", "conf.gw.test"};
    static const char *const names[] = {"xmpp.test", "*.xmpp.test", "ejab.test"};
    s2s_tls_policy pol = (s2s_tls_policy)(conf & 3) == 3 ? S2S_TLS_OPTIONAL : (s2s_tls_policy)(conf & 3);
    s2s_in_config cfg = {
        .domains = domains,
        .ndomains = 2,
        .secret = "fuzz-secret",
        .secret_len = 11,
        .tls = pol,
        .tls_available = pol != S2S_TLS_NONE,
        .peer_dialback_errors = (conf >> 2) & 1,
        .cert_dialback = (conf >> 3) & 1,
        .max_stanza = (conf & 0x20) ? 256 : 0,
        .max_pairs = 4,
        .auth_timeout_ms = 30000,
        .close_timeout_ms = 1000,
        .idle_timeout_ms = 60000,
        .peer = "fuzz",
    };
    s2s_in *sm = s2s_in_new(&cfg, 0);
    check(sm != NULL);
    static const xml_stream_handler oh = {oc_open, oc_stanza, NULL};
    out_check oc = {0};
    oc.xs = xml_stream_new(NULL, &oh, &oc);
    check(oc.xs != NULL);

    pending pend[8];
    size_t npend = 0;
    int closes = 0, closed_checked = 0;
    uint64_t now = 0;
    size_t off = 0;
    int in_tls = 0;
    while (off < size || npend > 0) {
        /* Feed a chunk. */
        if (off < size && !in_tls) {
            size_t n = (conf & 0x80) ? 1 : 1 + next(&rng) % 97;
            if (n > size - off)
                n = size - off;
            size_t used = s2s_in_feed(sm, data + off, n, now);
            check(used <= n);
            if (used < n)
                check(s2s_in_get_state(sm) == S2S_IN_TLS);
            /* After START_TLS the rest would be discarded; here it plays
             * the part of what arrives over TLS. */
            off += used < n && s2s_in_get_state(sm) == S2S_IN_TLS ? used : n;
        } else if (off >= size && npend == 0) {
            break;
        }
        uint32_t r = next(&rng);
        if ((conf & 0x40) && off > size / 2 && (r & 7) == 0)
            s2s_in_close(sm, (r >> 3) & 1 ? XML_COND_SYSTEM_SHUTDOWN : XML_COND_NONE, "fuzz", now);
        if ((r & 15) == 1) {
            now += (r >> 4) % 40000;
            s2s_in_tick(sm, now);
        }
        /* Run the actions. */
        s2s_action a;
        while (s2s_in_next_action(sm, &a)) {
            switch (a.kind) {
            case S2S_ACT_START_TLS:
                in_tls = 1;
                break;
            case S2S_ACT_VERIFY_KEY:
                check(a.from && a.to && a.id && a.key);
                if (npend < 8) {
                    pend[npend].from = a.from;
                    pend[npend].to = a.to;
                    pend[npend].id = a.id;
                    a.from = a.to = a.id = NULL;
                    npend++;
                }
                break;
            case S2S_ACT_STANZA:
                check(a.stanza && a.from && a.to);
                check(s2s_in_is_authenticated(sm, a.from, a.to));
                break;
            case S2S_ACT_CLOSE:
                closes++;
                check(s2s_in_get_state(sm) == S2S_IN_CLOSED);
                break;
            default:
                break;
            }
            s2s_action_clear(&a);
        }
        if (in_tls) {
            in_tls = 0;
            if (s2s_in_get_state(sm) == S2S_IN_TLS) {
                if ((r >> 8) % 8 == 0)
                    s2s_in_tls_failed(sm, now);
                else
                    s2s_in_tls_done(sm, names, (conf & 0x10) ? 3 : 0, now);
            }
        }
        /* Answer (or not yet) one pending verification. */
        if (npend > 0 && ((r >> 12) % 3 != 0 || off >= size)) {
            size_t k = (r >> 16) % npend;
            s2s_db_result res = (s2s_db_result)(1 + (r >> 20) % 3);
            static const char *const conds[] = {NULL, "remote-server-timeout", "bogus-cond"};
            s2s_in_verify_result(sm, pend[k].from, pend[k].to, (r >> 24) % 5 ? pend[k].id : "stale",
                                 res, conds[(r >> 26) % 3], now);
            free(pend[k].from);
            free(pend[k].to);
            free(pend[k].id);
            pend[k] = pend[--npend];
        }
        if (s2s_in_get_state(sm) == S2S_IN_CLOSED && !closed_checked) {
            closed_checked = 1;
            oc_feed(&oc, s2s_in_output(sm));
            /* Closed: consumes nothing more, writes nothing more. */
            check(s2s_in_feed(sm, "<a/>", 4, now) == 4);
            check(s2s_in_output(sm)->len == 0);
        }
        oc_feed(&oc, s2s_in_output(sm));
    }
    s2s_in_eof(sm, now);
    s2s_action a;
    while (s2s_in_next_action(sm, &a)) {
        closes += a.kind == S2S_ACT_CLOSE;
        s2s_action_clear(&a);
    }
    check(closes == 1);
    oc_feed(&oc, s2s_in_output(sm));
    for (size_t k = 0; k < npend; k++) {
        free(pend[k].from);
        free(pend[k].to);
        free(pend[k].id);
    }
    xml_stream_free(oc.xs);
    s2s_in_free(sm);
    return 0;
}
