/* xml_fragment.c: elements from a standalone serialization (see xml.h). */
#include "xmpp/xml.h"

int xml_parse_fragment(const void *data, size_t len, void (*each)(void *ud, xml_node *el), void *ud)
{
    /* A stream header gives the elements a document to live in; each
     * carries its own xmlns (xml_serialize with no map writes it). */
    static const char open[] = "<stream:stream xmlns='jabber:server' "
                               "xmlns:stream='http://etherx.jabber.org/streams'>";
    xml_stream_handler h = {.stanza = each};
    xml_stream *s = xml_stream_new(NULL, &h, ud);
    if (!s)
        return -2;
    int ok = xml_stream_feed(s, open, sizeof open - 1, NULL) == XML_STREAM_OK &&
             xml_stream_feed(s, data, len, NULL) == XML_STREAM_OK;
    xml_stream_free(s);
    return ok ? 0 : -1;
}
