/*
 * fuzz_config.c: libFuzzer target for the configuration parser
 * (gateway/config.c). Any bytes, parsed from memory, must give a verdict
 * without crashing, leaking or reading out of bounds, and the verdict must
 * be consistent with the error list and the getters.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *fuzz_sink(void)
{
    static FILE *sink;
    if (!sink)
        sink = fopen("/dev/null", "w");
    return sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cfg *c = cfg_new();
    if (!c)
        return 0;
    int rc = cfg_parse_buffer(c, "<fuzz>", (const char *)data, size);
    size_t n = cfg_error_count(c);
    if ((rc == 0) != (n == 0) && rc != -2)
        abort();
    for (size_t i = 0; i < n && i < CFG_MAX_ERRORS; i++) {
        const cfg_error *e = cfg_error_at(c, i);
        if (!e || !e->msg || e->line == 0)
            abort(); /* every in-memory error has a line */
    }
    if (fuzz_sink())
        cfg_print_errors(c, fuzz_sink());

    /* Getters always answer, whatever the file held. */
    const char *host = cfg_get_str(c, "gateway", "host");
    const char *dir = cfg_get_str(c, "gateway", "state_dir");
    if (!host || !*host || !dir || !*dir)
        abort();
    uint64_t idle = cfg_get_uint(c, "psyc", "idle_timeout");
    uint64_t maxp = cfg_get_uint(c, "psyc", "max_packet");
    if (idle > 7 * 86400 || maxp < 1024 || maxp > ((uint64_t)1 << 30))
        abort();
    log_level l = cfg_get_log_level(c, "gateway", "log_level");
    if (l < LOG_LEVEL_ERROR || l > LOG_LEVEL_DEBUG)
        abort();
    const cfg_addr *a = NULL;
    size_t na = cfg_get_addrs(c, "psyc", "listen", &a);
    if (na == 0 || na > CFG_MAX_LISTEN || !a)
        abort();
    for (size_t i = 0; i < na; i++) {
        char buf[80];
        cfg_addr tmp;
        const char *why;
        /* A listen address formats to text that parses back to itself. */
        if (a[i].port == 0 || cfg_addr_parse(cfg_addr_format(&a[i], buf, sizeof buf), &tmp, &why) != 0 ||
            tmp.port != a[i].port || strcmp(tmp.ip, a[i].ip) != 0)
            abort();
    }
    cfg_free(c);
    return 0;
}
