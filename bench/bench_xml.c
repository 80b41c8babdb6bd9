/*
 * bench_xml.c: XML stream layer throughput (`make bench`).
 * Generates 100 000 realistic stanzas in memory (xml_gen_stream: presence
 * with caps, chat messages, disco; keep-alives; ~30 MB) and runs, in the
 * same process, a bare libxml2 SAX push parse (the baseline), the own
 * xml_node stream parser, libstrophe xmpp_stanza_t trees from the same SAX
 * events, and both serializers. Ratios are against the bare run.
 * Issue 4 goals: own trees at most 1.5x the bare time; serializing at
 * least as fast as parsing.
 */
#include <stdio.h>
#include <stdlib.h>

#include "xmpp/xml.h"

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 100000;
    psyc_buf data, report;
    psyc_buf_init(&data);
    psyc_buf_init(&report);
    if (xml_gen_stream(&data, n, 1, XML_NS_SERVER) != 0) {
        fprintf(stderr, "bench_xml: out of memory\n");
        return 1;
    }
    int rc = 0;
    rc |= xml_bench_all(data.data, data.len, 4096, 5, &report);
    fwrite(report.data, 1, report.len, stdout);
    psyc_buf_free(&report);
    psyc_buf_free(&data);
    return rc ? 1 : 0;
}
