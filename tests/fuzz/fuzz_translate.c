/*
 * fuzz_translate.c: libFuzzer target for stanza <-> packet translation
 * (routing/translate.h). The first byte picks the address mode (bit 0)
 * and the direction (bit 1): XMPP bytes parsed as stanzas of a jabber:server
 * stream, or PSYC 1.0 bytes parsed as packets. Properties, abort() on a
 * violation:
 *  - a stanza that translates to a packet translates back to a stanza,
 *    and that stanza translates to a packet with the same method;
 *  - every refusal leaves the packet empty; an error stanza is never
 *    answered (no condition);
 *  - any parsed packet translates or is refused cleanly (payload XML in
 *    _jabber_XML included), and the stanza it gives serializes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routing/translate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const addr_map tr_fuzz_maps[2] = {
    {.mode = ADDR_MODE_NATURAL},
    {.mode = ADDR_MODE_TRANSPORT, .gw_host = "gw.example.net", .transport = "psyc.example.org"},
};

static void tr_fuzz_check(int ok)
{
    if (!ok)
        abort();
}

static void tr_fuzz_stanza(void *ud, xml_node *st)
{
    const addr_map *m = ud;
    psyc_packet p, p2;
    psyc_packet_init(&p);
    psyc_packet_init(&p2);
    const char *cond = NULL;
    int rc = translate_from_xmpp(m, st, &p, &cond);
    const char *type = xml_attr_get(st, "type");
    if (type && strcmp(type, "error") == 0)
        tr_fuzz_check(cond == NULL);
    if (rc != TRANSLATE_OK) {
        tr_fuzz_check(p.method.ptr == NULL && p.n_routing == 0 && p.n_entity == 0);
    } else {
        xml_node *back = NULL;
        tr_fuzz_check(translate_to_xmpp(m, &p, &back) == TRANSLATE_OK && back);
        rc = translate_from_xmpp(m, back, &p2, NULL);
        tr_fuzz_check(rc == TRANSLATE_OK && psyc_str_eq(p.method, p2.method));
        xml_node_free(back);
    }
    psyc_packet_free(&p);
    psyc_packet_free(&p2);
    xml_node_free(st);
}

static void tr_fuzz_xmpp(const addr_map *m, const uint8_t *data, size_t size)
{
    static const char open[] = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                               "xmlns='jabber:server'>";
    xml_stream_handler h = {.stanza = tr_fuzz_stanza};
    xml_stream *s = xml_stream_new(NULL, &h, (void *)m);
    if (!s)
        return;
    if (xml_stream_feed(s, open, sizeof open - 1, NULL) == XML_STREAM_OK)
        xml_stream_feed(s, data, size, NULL);
    xml_stream_free(s);
}

static void tr_fuzz_psyc(const addr_map *m, const uint8_t *data, size_t size)
{
    psyc_parser parser;
    psyc_parser_init(&parser, NULL, 0);
    psyc_packet p;
    psyc_packet_init(&p);
    size_t used = 0;
    if (psyc_parse_packet(&parser, (const char *)data, size, &p, &used) == 1) {
        xml_node *st = NULL;
        int rc = translate_to_xmpp(m, &p, &st);
        tr_fuzz_check((rc == TRANSLATE_OK) == (st != NULL));
        if (st) {
            psyc_buf b;
            psyc_buf_init(&b);
            xml_nsmap map;
            xml_nsmap_init(&map, XML_NS_SERVER);
            tr_fuzz_check(xml_serialize(&b, st, &map) == 0);
            psyc_buf_free(&b);
            xml_node_free(st);
        }
    }
    psyc_packet_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    const addr_map *m = &tr_fuzz_maps[data[0] & 1];
    if (data[0] & 2)
        tr_fuzz_psyc(m, data + 1, size - 1);
    else
        tr_fuzz_xmpp(m, data + 1, size - 1);
    return 0;
}
