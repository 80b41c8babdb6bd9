/*
 * fuzz_muc.c: libFuzzer target for the XEP-0045 <-> PSYC place translation
 * (routing/muc.h): stanzas an occupant sends to a room, stanzas an XMPP MUC
 * room sends to our PSYC members, and the place's packets shown to an
 * occupant. The first byte picks the side (bit 0: XMPP bytes as stanzas of
 * a jabber:component:accept stream; else PSYC 1.0 packets) and the
 * occupant's state (bit 1: joining). Properties, abort() on a violation:
 *  - a request that is neither NONE nor ERROR gives a packet with a method
 *    and our _source/_target; ERROR names a condition;
 *  - a room's stanza that casts gives a packet with _context;
 *  - every stanza a packet becomes serializes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routing/muc.h"
#include "xmpp/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUC_FUZZ_PLACE "psyc://example.org/@room"
#define MUC_FUZZ_SELF "psyc://example.net/~alice"

static const addr_map muc_fuzz_map = {.mode = ADDR_MODE_NATURAL};

static void muc_fuzz_check(int ok)
{
    if (!ok)
        abort();
}

static void muc_fuzz_stanza(void *ud, xml_node *st)
{
    (void)ud;
    psyc_packet p;
    psyc_packet_init(&p);
    const char *cond = NULL;
    const char *to = xml_attr_get(st, "to");
    const char *slash = to ? strchr(to, '/') : NULL;
    muc_req r = muc_request(&muc_fuzz_map, st, MUC_FUZZ_PLACE, MUC_FUZZ_SELF, slash ? slash + 1 : NULL, &p, &cond);
    if (r == MUC_REQ_ERROR)
        muc_fuzz_check(cond != NULL);
    else if (r != MUC_REQ_NONE)
        muc_fuzz_check(p.method.ptr != NULL && psyc_packet_find_routing(&p, "_source") != NULL);
    psyc_packet_free(&p);
    psyc_packet_init(&p);
    if (muc_from_room(st, MUC_FUZZ_PLACE, MUC_FUZZ_SELF, &p) == 1)
        muc_fuzz_check(p.method.ptr != NULL && psyc_packet_find_routing(&p, "_context") != NULL);
    psyc_packet_free(&p);
    xml_node_free(muc_disco_info(st, "room"));
    xml_node_free(st);
}

static void muc_fuzz_xmpp(const uint8_t *data, size_t size)
{
    static const char open[] = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                               "xmlns='jabber:component:accept'>";
    xml_stream_handler h = {.stanza = muc_fuzz_stanza};
    xml_stream *s = xml_stream_new(NULL, &h, NULL);
    if (!s)
        return;
    if (xml_stream_feed(s, open, sizeof open - 1, NULL) == XML_STREAM_OK)
        xml_stream_feed(s, data, size, NULL);
    xml_stream_free(s);
}

static void muc_fuzz_psyc(const uint8_t *data, size_t size, int joining)
{
    muc_view v = {.map = &muc_fuzz_map, .room = "*room@example.org", .to = "alice@example.net/home",
                  .self = MUC_FUZZ_SELF, .nick = "alice", .joining = joining};
    psyc_parser parser;
    psyc_parser_init(&parser, NULL, 0);
    const char *buf = (const char *)data;
    for (int n = 0; size > 0 && n < 32; n++) {
        psyc_packet p;
        psyc_packet_init(&p);
        size_t used = 0;
        int rc = psyc_parse_packet(&parser, buf, size, &p, &used);
        if (rc == 1) {
            muc_stanzas out = {0};
            int k = muc_to_xmpp(&v, &p, &out);
            muc_fuzz_check(k >= -1 && (k < 0 || (size_t)k <= out.n));
            for (size_t i = 0; i < out.n; i++) {
                psyc_buf b;
                psyc_buf_init(&b);
                muc_fuzz_check(xml_serialize(&b, out.v[i], NULL) == 0);
                psyc_buf_free(&b);
            }
            muc_stanzas_free(&out);
        }
        psyc_packet_free(&p);
        if (rc != 1 || used == 0 || used > size)
            break;
        buf += used;
        size -= used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 32768)
        return 0;
    if (data[0] & 1)
        muc_fuzz_xmpp(data + 1, size - 1);
    else
        muc_fuzz_psyc(data + 1, size - 1, (data[0] & 2) != 0);
    return 0;
}
