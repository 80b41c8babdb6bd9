/*
 * xml_scan.c: counts attributes per start tag before libxml2 parses it
 * (see xml_int.h for why). Resumable at any byte: the state carries over
 * between calls, so the count does not depend on how input is split.
 *
 * Only start tags matter: text and end tags are skipped to the next '<'.
 * With SSE2 (every x86-64), 32 bytes are classified at once into bit masks
 * of '<' '>' '=' and quotes; inside a start tag a prefix XOR over the quote
 * bits marks attribute values, so the tag end and its '=' come out of the
 * masks without a branch per byte. Elsewhere (and for the last bytes of an
 * input) a table-driven byte loop does the same.
 */
#include "xmpp/xml_int.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum {
    S_TEXT = 0, /* character data or an end tag: looking for '<' */
    S_LT,       /* after '<' */
    S_TAG,      /* inside a start tag, outside quotes */
    S_SQ,       /* inside a '...' attribute value */
    S_DQ,       /* inside a "..." attribute value */
    S_BANG,     /* after "<!": CDATA section or not */
    S_CDATA,    /* inside <![CDATA[ ... ]]> */
    S_PI,       /* inside <? ... ?> (the XML declaration; PIs are refused later) */
    S_DEAD,     /* after a comment or DOCTYPE start: libxml2 refuses the
                 * stream when it gets there, nothing after is parsed */
};

static const char cdata_open[] = "[CDATA["; /* after "<!" */

/* Byte classes for the byte loop, and per state the classes it stops at. */
enum { C_LT = 1, C_GT = 2, C_EQ = 4, C_SQ = 8, C_DQ = 16, C_RB = 32, C_QM = 64 };
#define CLS(c)                                                                                     \
    (uint8_t)((c) == '<'    ? C_LT                                                                \
              : (c) == '>'  ? C_GT                                                                \
              : (c) == '='  ? C_EQ                                                                \
              : (c) == '\'' ? C_SQ                                                                \
              : (c) == '"'  ? C_DQ                                                                \
              : (c) == ']'  ? C_RB                                                                \
              : (c) == '?'  ? C_QM                                                                \
                            : 0)
#define R16(b)                                                                                     \
    CLS(b), CLS(b + 1), CLS(b + 2), CLS(b + 3), CLS(b + 4), CLS(b + 5), CLS(b + 6), CLS(b + 7),    \
        CLS(b + 8), CLS(b + 9), CLS(b + 10), CLS(b + 11), CLS(b + 12), CLS(b + 13), CLS(b + 14),   \
        CLS(b + 15)
static const uint8_t cls[256] = {R16(0),   R16(16),  R16(32),  R16(48),  R16(64),  R16(80),
                                 R16(96),  R16(112), R16(128), R16(144), R16(160), R16(176),
                                 R16(192), R16(208), R16(224), R16(240)};
static const uint8_t stop[] = {
    [S_TEXT] = C_LT, [S_TAG] = C_LT | C_GT | C_EQ | C_SQ | C_DQ, [S_SQ] = C_SQ, [S_DQ] = C_DQ,
    [S_CDATA] = C_RB | C_GT, [S_PI] = C_QM | C_GT,
};

void xml_scan_init(xml_scan *sc)
{
    sc->state = S_TEXT;
    sc->match = 0;
    sc->nattrs = 0;
}

/* The byte after '<'; advances *i past what it consumed. */
static inline unsigned after_lt(xml_scan *sc, unsigned char c, size_t *i)
{
    switch (c) {
    case '/': /* end tag: nothing to count up to the next '<' */
        (*i)++;
        return S_TEXT;
    case '!':
        sc->match = 0;
        (*i)++;
        return S_BANG;
    case '?':
        sc->match = 0;
        (*i)++;
        return S_PI;
    default: /* this byte starts the name: not consumed */
        sc->nattrs = 0;
        return S_TAG;
    }
}

/* One special byte (class c) in state *st. Returns 1 when the tag gets
 * more than max_attrs attributes. */
static inline int step(xml_scan *sc, unsigned *st, uint8_t c, uint32_t max_attrs)
{
    switch (*st) {
    case S_TEXT:
        *st = S_LT;
        break;
    case S_TAG:
        if (c == C_EQ)
            return ++sc->nattrs > max_attrs;
        *st = c == C_SQ ? S_SQ : c == C_DQ ? S_DQ : c == C_GT ? S_TEXT : S_LT;
        break;
    case S_SQ:
    case S_DQ:
        *st = S_TAG;
        break;
    case S_CDATA: /* until "]]>" */
        if (c == C_RB)
            sc->match = sc->match < 2 ? (uint8_t)(sc->match + 1) : 2;
        else if (sc->match == 2)
            *st = S_TEXT;
        else
            sc->match = 0;
        break;
    case S_PI: /* until "?>" */
        if (c == C_QM)
            sc->match = 1;
        else if (sc->match == 1)
            *st = S_TEXT;
        break;
    default:
        break;
    }
    return 0;
}

#if defined(__SSE2__)
/* The POPCNT instruction is not in the x86-64 baseline (the libgcc call
 * showed up in profiles). */
static inline unsigned popcount32(uint32_t x)
{
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0fu;
    return (x * 0x01010101u) >> 24;
}

/* Offset of the k-th (1-based) set bit of m. */
static unsigned nth_bit(uint32_t m, unsigned k)
{
    while (--k)
        m &= m - 1;
    return (unsigned)__builtin_ctz(m);
}

static inline uint32_t mask_of(__m128i lo, __m128i hi, char c)
{
    __m128i v = _mm_set1_epi8(c);
    return (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(lo, v)) |
           (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(hi, v)) << 16;
}

/* Bits above position pos. */
#define ABOVE(pos) ((pos) >= 31 ? 0u : ~0u << ((pos) + 1))

/* Runs over whole 32-byte blocks while the state is text, tag or value.
 * Returns the offset reached; *over set at the offending '='. */
static size_t simd(xml_scan *sc, const unsigned char *u, size_t i, size_t n, unsigned *stp,
                   uint32_t max_attrs, int *over)
{
    unsigned st = *stp;
    while (n - i >= 32 && (st == S_TEXT || st == S_TAG || st == S_SQ || st == S_DQ)) {
        __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)(u + i));
        __m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(u + i + 16));
        uint32_t mlt = mask_of(lo, hi, '<'), mgt = mask_of(lo, hi, '>'), meq = mask_of(lo, hi, '=');
        uint32_t msq = mask_of(lo, hi, '\''), mdq = mask_of(lo, hi, '"');
        uint32_t above = ~0u; /* bits not yet visited */
        size_t next = i + 32; /* where the next block starts */
        for (;;) {
            uint32_t ev, eqs = 0;
            unsigned pos;
            if (st == S_TEXT) {
                ev = mlt & above;
                if (!ev)
                    break;
                pos = (unsigned)__builtin_ctz(ev);
                size_t j = i + pos + 1;
                if (j == n) { /* '<' ends the input */
                    st = S_LT;
                    next = n;
                    break;
                }
                st = after_lt(sc, u[j], &j);
                if (st == S_BANG || st == S_PI || j - i >= 32) {
                    next = j; /* continue from there */
                    break;
                }
                above = ~0u << (j - i);
                continue;
            }
            if (st == S_SQ || st == S_DQ) {
                ev = (st == S_SQ ? msq : mdq) & above;
                if (!ev)
                    break;
                pos = (unsigned)__builtin_ctz(ev);
                st = S_TAG;
                above = ABOVE(pos);
                continue;
            }
            /* S_TAG */
            uint32_t q = (msq | mdq) & above;
            if (!((msq & above) && (mdq & above))) {
                /* One quote type in the rest of the block (the usual
                 * case): a prefix XOR of the quote bits marks the bytes
                 * inside values (opening quote included). */
                uint32_t inq = q;
                inq ^= inq << 1;
                inq ^= inq << 2;
                inq ^= inq << 4;
                inq ^= inq << 8;
                inq ^= inq << 16;
                uint32_t out = ~inq & above;
                ev = (mgt | mlt) & out;
                eqs = meq & out & (ev ? (ev & -ev) - 1u : ~0u);
                if (!ev && (inq & 0x80000000u))
                    st = (msq & above) ? S_SQ : S_DQ; /* a value goes on */
            } else {
                /* Both quote types: up to the first special byte. */
                ev = (mlt | mgt | msq | mdq) & above;
                eqs = meq & above & (ev ? (ev & -ev) - 1u : ~0u);
            }
            if (eqs) {
                unsigned k = popcount32(eqs);
                if (sc->nattrs + k > max_attrs) {
                    pos = nth_bit(eqs, max_attrs - sc->nattrs + 1);
                    sc->nattrs = max_attrs + 1;
                    *over = 1;
                    *stp = S_TAG;
                    return i + pos;
                }
                sc->nattrs += k;
            }
            if (!ev)
                break;
            pos = (unsigned)__builtin_ctz(ev);
            uint32_t bit = 1u << pos;
            above = ABOVE(pos);
            if (msq & bit) {
                st = S_SQ;
            } else if (mdq & bit) {
                st = S_DQ;
            } else if (mgt & bit) {
                st = S_TEXT;
            } else { /* '<' inside a tag: malformed, libxml2 will say so */
                size_t j = i + pos + 1;
                if (j == n) {
                    st = S_LT;
                    next = n;
                    break;
                }
                st = after_lt(sc, u[j], &j);
                if (st == S_BANG || st == S_PI || j - i >= 32) {
                    next = j;
                    break;
                }
                above = ~0u << (j - i);
            }
        }
        i = next;
    }
    *stp = st;
    return i;
}
#endif

size_t xml_scan_run(xml_scan *sc, const char *p, size_t n, uint32_t max_attrs)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0;
    unsigned st = sc->state;
    while (i < n) {
#if defined(__SSE2__)
        if (n - i >= 32 && (st == S_TEXT || st == S_TAG || st == S_SQ || st == S_DQ)) {
            int over = 0;
            i = simd(sc, u, i, n, &st, max_attrs, &over);
            if (over) {
                sc->state = (uint8_t)st;
                return i;
            }
            if (i >= n)
                break;
        }
#endif
        unsigned char c = u[i];
        if (st == S_DEAD)
            break;
        if (st == S_LT) {
            st = after_lt(sc, c, &i);
            continue;
        }
        if (st == S_BANG) {
            if (c == (unsigned char)cdata_open[sc->match]) {
                i++;
                if (++sc->match == sizeof cdata_open - 1) {
                    st = S_CDATA;
                    sc->match = 0;
                }
            } else {
                st = S_DEAD;
            }
            continue;
        }
        uint8_t k = cls[c] & stop[st];
        if (k) {
            if (step(sc, &st, k, max_attrs)) {
                sc->state = (uint8_t)st;
                return i;
            }
        } else if (st == S_CDATA || st == S_PI) {
            sc->match = 0; /* breaks a partial "]]>" / "?>" */
        }
        i++;
    }
    sc->state = (uint8_t)st;
    return n;
}
