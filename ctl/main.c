/* main.c: psycgatectl command dispatch. */
#include "ctl/ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: psycgatectl <group> <command> [args]\n"
          "  psyc check [--syntax 0.9|1.0] [--routing-only] FILE...\n"
          "                           parse, re-render and compare every packet\n"
          "  psyc dump [--syntax 0.9|1.0] [--routing-only] FILE\n"
          "                           one line per parse event\n"
          "  psyc bench [-n N] [--routing-only] FILE\n"
          "                           parse FILE N times; ns/packet and MB/s\n"
          "  jid normalize JID        print the normalised JID (RFC 6122)\n"
          "  jid escape|unescape LOCALPART\n"
          "                           XEP-0106 JID escaping of a localpart\n"
          "  xml check FILE...        parse XMPP streams: one line per stanza, or the stream error\n"
          "  xml bench [-n RUNS] [-c CHUNK] FILE\n"
          "                           stanza trees vs bare libxml2 SAX vs libstrophe; serializers\n"
          "  xml gen N [SEED]         write a generated stream of N stanzas to stdout\n",
          f);
}

char *ctl_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "psycgatectl: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        fprintf(stderr, "psycgatectl: %s: read failed\n", path);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "psyc") == 0)
        return ctl_psyc(argc - 2, argv + 2);
    if (strcmp(argv[1], "xml") == 0)
        return ctl_xml(argc - 2, argv + 2);
    if (strcmp(argv[1], "jid") == 0)
        return ctl_jid(argc - 2, argv + 2);
    fprintf(stderr, "psycgatectl: unknown command group '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
