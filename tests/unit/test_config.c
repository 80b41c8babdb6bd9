/* test_config.c: the configuration parser (gateway/config.c): defaults, a
 * valid file, the shipped etc/psycgate.conf, and every error class with the
 * line number it is reported on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "gateway/config.h"
#include "gateway/log.h"

/* Parses text, expects exactly one error, on `line`, whose message contains
 * `needle`. */
static void expect_one_error_n(const char *text, size_t len, unsigned line, const char *needle)
{
    cfg *c = cfg_new();
    assert_non_null(c);
    int rc = cfg_parse_buffer(c, "t.conf", text, len);
    if (rc != -1 || cfg_error_count(c) != 1) {
        cfg_print_errors(c, stderr);
        fail_msg("expected one error on line %u for:\n%s", line, text);
    }
    const cfg_error *e = cfg_error_at(c, 0);
    assert_non_null(e);
    if (e->line != line || !strstr(e->msg, needle))
        fail_msg("got line %u '%s', wanted line %u containing '%s'", e->line, e->msg, line, needle);
    cfg_free(c);
}

static void expect_one_error(const char *text, unsigned line, const char *needle)
{
    expect_one_error_n(text, strlen(text), line, needle);
}

static void test_defaults(void **state)
{
    (void)state;
    cfg *c = cfg_new();
    assert_non_null(c);
    assert_string_equal(cfg_get_str(c, "gateway", "host"), "localhost");
    assert_string_equal(cfg_get_str(c, "gateway", "state_dir"), "./var");
    assert_int_equal(cfg_get_log_level(c, "gateway", "log_level"), LOG_LEVEL_INFO);
    assert_int_equal(cfg_get_uint(c, "psyc", "idle_timeout"), 600);
    assert_int_equal(cfg_get_uint(c, "psyc", "max_packet"), 8388608);
    const cfg_addr *a = NULL;
    assert_int_equal(cfg_get_addrs(c, "psyc", "listen", &a), 1);
    assert_int_equal(a[0].family, AF_INET);
    assert_string_equal(a[0].ip, "127.0.0.1");
    assert_int_equal(a[0].port, 4404);
    assert_false(cfg_is_set(c, "gateway", "host"));
    assert_int_equal(cfg_line_of(c, "gateway", "host"), 0);
    assert_int_equal(cfg_error_count(c), 0);

    /* An empty file, or one with only comments, is all defaults. */
    const char *text = "# nothing\n; still nothing\n\n   \n";
    assert_int_equal(cfg_parse_buffer(c, "t.conf", text, strlen(text)), 0);
    assert_string_equal(cfg_get_str(c, "gateway", "host"), "localhost");
    cfg_free(c);

    /* Getters that name no schema entry, or the wrong type, return nothing. */
    c = cfg_new();
    assert_null(cfg_get_str(c, "gateway", "nope"));
    assert_null(cfg_get_str(c, "psyc", "idle_timeout"));
    assert_int_equal(cfg_get_uint(c, "gateway", "host"), 0);
    assert_int_equal(cfg_get_addrs(c, "psyc", "nope", &a), 0);
    assert_null(a);
    cfg_free(c);
}

static void test_valid_file(void **state)
{
    (void)state;
    const char *text = "# a comment\r\n"
                       "; another\n"
                       "\n"
                       "[gateway]\n"
                       "  host   =   gw.example.org   # inline comment\n"
                       "state_dir=/var/lib/psyc#gate ; '#' inside a value stays\n"
                       "log_level = DEBUG\r\n"
                       "[ psyc ]   ; header comment\n"
                       "listen = 127.0.0.1:4404, [::1]:4405\t0.0.0.0:9404\n"
                       "idle_timeout = 0\n"
                       "max_packet = 1024\n"
                       "listen_tls = none # 0.0.0.0:9404 above would overlap the default\n";
    cfg *c = cfg_new();
    int rc = cfg_parse_buffer(c, "t.conf", text, strlen(text));
    if (rc != 0)
        cfg_print_errors(c, stderr);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg_get_str(c, "gateway", "host"), "gw.example.org");
    assert_string_equal(cfg_get_str(c, "gateway", "state_dir"), "/var/lib/psyc#gate");
    assert_int_equal(cfg_get_log_level(c, "gateway", "log_level"), LOG_LEVEL_DEBUG);
    assert_int_equal(cfg_get_uint(c, "psyc", "idle_timeout"), 0);
    assert_int_equal(cfg_get_uint(c, "psyc", "max_packet"), 1024);
    const cfg_addr *a = NULL;
    assert_int_equal(cfg_get_addrs(c, "psyc", "listen", &a), 3);
    assert_int_equal(a[0].family, AF_INET);
    assert_string_equal(a[0].ip, "127.0.0.1");
    assert_int_equal(a[0].port, 4404);
    assert_int_equal(a[1].family, AF_INET6);
    assert_string_equal(a[1].ip, "::1");
    assert_int_equal(a[1].port, 4405);
    assert_string_equal(a[2].ip, "0.0.0.0");
    assert_int_equal(a[2].port, 9404);
    char buf[64];
    assert_string_equal(cfg_addr_format(&a[1], buf, sizeof buf), "[::1]:4405");
    assert_string_equal(cfg_addr_format(&a[0], buf, sizeof buf), "127.0.0.1:4404");
    assert_true(cfg_is_set(c, "gateway", "host"));
    assert_int_equal(cfg_line_of(c, "gateway", "host"), 5);
    assert_int_equal(cfg_line_of(c, "psyc", "max_packet"), 11);
    cfg_free(c);

    /* Last line without LF. */
    c = cfg_new();
    text = "[psyc]\nidle_timeout = 42";
    assert_int_equal(cfg_parse_buffer(c, NULL, text, strlen(text)), 0);
    assert_int_equal(cfg_get_uint(c, "psyc", "idle_timeout"), 42);
    cfg_free(c);
}

static void test_shipped_config(void **state)
{
    (void)state;
    cfg *c = cfg_new();
    int rc = cfg_parse_file(c, SOURCE_DIR "/etc/psycgate.conf");
    if (rc != 0)
        cfg_print_errors(c, stderr);
    assert_int_equal(rc, 0);
    /* The shipped file documents the defaults by setting them. */
    cfg *d = cfg_new();
    assert_string_equal(cfg_get_str(c, "gateway", "host"), cfg_get_str(d, "gateway", "host"));
    assert_string_equal(cfg_get_str(c, "gateway", "state_dir"), cfg_get_str(d, "gateway", "state_dir"));
    assert_int_equal(cfg_get_log_level(c, "gateway", "log_level"), cfg_get_log_level(d, "gateway", "log_level"));
    assert_int_equal(cfg_get_uint(c, "psyc", "idle_timeout"), cfg_get_uint(d, "psyc", "idle_timeout"));
    assert_int_equal(cfg_get_uint(c, "psyc", "max_packet"), cfg_get_uint(d, "psyc", "max_packet"));
    const cfg_addr *a, *b;
    assert_int_equal(cfg_get_addrs(c, "psyc", "listen", &a), cfg_get_addrs(d, "psyc", "listen", &b));
    assert_string_equal(a[0].ip, b[0].ip);
    assert_int_equal(a[0].port, b[0].port);
    /* Every schema key is present in the shipped file. */
    assert_true(cfg_is_set(c, "gateway", "host"));
    assert_true(cfg_is_set(c, "gateway", "state_dir"));
    assert_true(cfg_is_set(c, "gateway", "log_level"));
    assert_true(cfg_is_set(c, "psyc", "listen"));
    assert_true(cfg_is_set(c, "psyc", "idle_timeout"));
    assert_true(cfg_is_set(c, "psyc", "max_packet"));
    cfg_free(d);
    cfg_free(c);
}

static void test_error_syntax(void **state)
{
    (void)state;
    expect_one_error("[gateway]\nhost localhost\n", 2, "expected 'key = value'");
    expect_one_error("[gateway\nhost = a\n", 1, "without ']'");
    expect_one_error("[]\n", 1, "invalid section name");
    expect_one_error("[gate way]\n", 1, "invalid section name");
    expect_one_error("[gateway] junk\nhost = a\n", 1, "unexpected text after section header");
    expect_one_error("[gateway]\n= value\n", 2, "missing key name");
    expect_one_error("[gateway]\nho st = a\n", 2, "invalid key name");
    expect_one_error("\n\nhost = a\n[gateway]\n", 3, "outside of any [section]");
    static const char nul[] = "[gateway]\nhost = a\n\nhost\0 = b\n";
    expect_one_error_n(nul, sizeof nul - 1, 4, "NUL byte");
}

static void test_error_unknown(void **state)
{
    (void)state;
    expect_one_error("[gateway]\nhost = a\n[xmpp]\n", 3, "unknown section [xmpp]");
    /* Keys of an unknown section are not reported one by one. */
    expect_one_error("[nope]\na = 1\nb = 2\n[psyc]\nidle_timeout = 3\n", 1, "unknown section [nope]");
    expect_one_error("[gateway]\nhost = a\nhots = b\n", 3, "unknown key 'hots' in section [gateway]");
    /* A key of another section. */
    expect_one_error("[psyc]\nhost = a\n", 2, "unknown key 'host' in section [psyc]");
    /* Names are case-sensitive. */
    expect_one_error("[Gateway]\n", 1, "unknown section [Gateway]");
}

static void test_error_duplicate(void **state)
{
    (void)state;
    expect_one_error("[psyc]\nidle_timeout = 1\n\nidle_timeout = 2\n", 4, "duplicate key 'idle_timeout' (first set on line 2)");
    /* Across two headers of the same section. */
    expect_one_error("[psyc]\nmax_packet = 2048\n[gateway]\n[psyc]\nmax_packet = 4096\n", 5, "first set on line 2");
    /* An invalid first value still counts as the first occurrence. */
    cfg *c = cfg_new();
    const char *text = "[psyc]\nidle_timeout = x\nidle_timeout = 5\n";
    assert_int_equal(cfg_parse_buffer(c, "t", text, strlen(text)), -1);
    assert_int_equal(cfg_error_count(c), 2);
    assert_int_equal(cfg_error_at(c, 0)->line, 2);
    assert_int_equal(cfg_error_at(c, 1)->line, 3);
    assert_non_null(strstr(cfg_error_at(c, 1)->msg, "duplicate"));
    cfg_free(c);
}

static void test_error_values(void **state)
{
    (void)state;
    expect_one_error("[psyc]\nidle_timeout = ten\n", 2, "[psyc] idle_timeout: expected a non-negative decimal number");
    expect_one_error("[psyc]\nidle_timeout = -1\n", 2, "non-negative");
    expect_one_error("[psyc]\nidle_timeout = 604801\n", 2, "between 0 and 604800");
    expect_one_error("[psyc]\nmax_packet = 1023\n", 2, "between 1024 and 1073741824");
    expect_one_error("[psyc]\nmax_packet = 99999999999999999999999\n", 2, "too large");
    expect_one_error("[psyc]\nmax_packet =\n", 2, "empty value");
    expect_one_error("[psyc]\nmax_packet = # only a comment\n", 2, "empty value");
    expect_one_error("[gateway]\nlog_level = loud\n", 2, "log level must be");
    expect_one_error("[gateway]\nhost = gw_1.example\n", 2, "DNS name or IPv4");
    expect_one_error("[gateway]\nhost = a b\n", 2, "DNS name or IPv4");
    expect_one_error("[gateway]\nhost = .example\n", 2, "badly delimited");
    expect_one_error("[gateway]\nhost = a..b\n", 2, "badly delimited");
    expect_one_error("[gateway]\nstate_dir = a\001b\n", 2, "control character");
    expect_one_error("[psyc]\nlisten = ::1:4404\n", 2, "in brackets");
    expect_one_error("[psyc]\nlisten = [::1:4404\n", 2, "missing ']'");
    expect_one_error("[psyc]\nlisten = [::1]4404\n", 2, "expected ':PORT'");
    expect_one_error("[psyc]\nlisten = 127.0.0.1\n", 2, "expected ADDRESS:PORT");
    expect_one_error("[psyc]\nlisten = localhost:4404\n", 2, "not a numeric IPv4");
    expect_one_error("[psyc]\nlisten = [fe80::zz]:4404\n", 2, "not a numeric IPv6");
    expect_one_error("[psyc]\nlisten = 127.0.0.1:0\n", 2, "port must be");
    expect_one_error("[psyc]\nlisten = 127.0.0.1:65536\n", 2, "port must be");
    expect_one_error("[psyc]\nlisten = 127.0.0.1:44a\n", 2, "port must be");
    expect_one_error("[psyc]\nlisten = 127.0.0.1:4404, 127.0.0.1:4404\n", 2, "listed twice");
    expect_one_error("[psyc]\nlisten = , ,\n", 2, "no address given");

    char text[2048] = "[psyc]\nlisten =";
    for (int i = 0; i < CFG_MAX_LISTEN + 1; i++) {
        char item[32];
        snprintf(item, sizeof item, " 127.0.0.1:%d", 1000 + i);
        strcat(text, item);
    }
    strcat(text, "\n");
    expect_one_error(text, 2, "more than");
}

static void test_error_many(void **state)
{
    (void)state;
    /* All errors are reported, in file order, each with its own line. */
    const char *text = "top = 1\n"             /* 1: outside a section */
                       "[gateway]\n"
                       "host = ok.example\n"
                       "colour = blue\n"       /* 4: unknown key */
                       "[psyc]\n"
                       "idle_timeout = soon\n" /* 6: bad number */
                       "garbage\n"             /* 7: syntax */
                       "[other]\n";            /* 8: unknown section */
    cfg *c = cfg_new();
    assert_int_equal(cfg_parse_buffer(c, "many.conf", text, strlen(text)), -1);
    assert_int_equal(cfg_error_count(c), 5);
    unsigned want[] = {1, 4, 6, 7, 8};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(cfg_error_at(c, i)->line, want[i]);
    assert_null(cfg_error_at(c, 5));
    /* Valid keys next to the errors are still taken. */
    assert_string_equal(cfg_get_str(c, "gateway", "host"), "ok.example");

    /* Printed as FILE:LINE: message, one per line. */
    char out[4096];
    FILE *f = fmemopen(out, sizeof out, "w");
    assert_non_null(f);
    assert_int_equal(cfg_print_errors(c, f), 5);
    fclose(f);
    assert_non_null(strstr(out, "many.conf:1: key 'top' outside of any [section]\n"));
    assert_non_null(strstr(out, "many.conf:4: unknown key 'colour' in section [gateway]\n"));
    assert_non_null(strstr(out, "many.conf:8: unknown section [other]\n"));
    cfg_free(c);

    /* A flood of errors is counted in full but stored up to the cap. */
    size_t n = CFG_MAX_ERRORS + 50;
    char *big = malloc(n * 8 + 1);
    assert_non_null(big);
    big[0] = '\0';
    for (size_t i = 0; i < n; i++)
        strcat(big, "oops!!\n");
    c = cfg_new();
    assert_int_equal(cfg_parse_buffer(c, "big", big, strlen(big)), -1);
    assert_int_equal(cfg_error_count(c), n);
    assert_non_null(cfg_error_at(c, CFG_MAX_ERRORS - 1));
    assert_null(cfg_error_at(c, CFG_MAX_ERRORS));
    assert_int_equal(cfg_error_at(c, CFG_MAX_ERRORS - 1)->line, CFG_MAX_ERRORS);
    f = fmemopen(out, sizeof out, "w");
    cfg_print_errors(c, f);
    fclose(f);
    cfg_free(c);
    free(big);
}

static void test_error_file(void **state)
{
    (void)state;
    cfg *c = cfg_new();
    assert_int_equal(cfg_parse_file(c, "/nonexistent/psycgate.conf"), -1);
    assert_int_equal(cfg_error_count(c), 1);
    assert_int_equal(cfg_error_at(c, 0)->line, 0);
    assert_non_null(strstr(cfg_error_at(c, 0)->msg, "cannot open"));
    char out[512];
    FILE *f = fmemopen(out, sizeof out, "w");
    cfg_print_errors(c, f);
    fclose(f);
    assert_non_null(strstr(out, "/nonexistent/psycgate.conf: cannot open"));
    cfg_free(c);

    /* From a real file, lines are counted the same way. */
    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *w = fdopen(fd, "w");
    fputs("[gateway]\nhost = a\n\n[psyc]\nlisten = nowhere\n", w);
    fclose(w);
    c = cfg_new();
    assert_int_equal(cfg_parse_file(c, path), -1);
    assert_int_equal(cfg_error_at(c, 0)->line, 5);
    cfg_free(c);
    remove(path);
}

static void test_addr_parse(void **state)
{
    (void)state;
    cfg_addr a;
    const char *why = NULL;
    assert_int_equal(cfg_addr_parse("[2001:db8::1]:9404", &a, &why), 0);
    assert_int_equal(a.family, AF_INET6);
    assert_string_equal(a.ip, "2001:db8::1");
    assert_int_equal(a.port, 9404);
    assert_int_equal(cfg_addr_parse("10.0.0.1:1", &a, &why), 0);
    assert_int_equal(a.port, 1);
    assert_int_equal(cfg_addr_parse("10.0.0.256:1", &a, &why), -1);
    assert_non_null(why);
    assert_int_equal(cfg_addr_parse(":4404", &a, &why), -1);
    assert_int_equal(cfg_addr_parse("[]:4404", &a, &why), -1);
    assert_int_equal(cfg_addr_parse("1.2.3.4:", &a, &why), -1);
}

static void test_log_level_names(void **state)
{
    (void)state;
    log_level l;
    assert_int_equal(log_level_parse("error", &l), 0);
    assert_int_equal(l, LOG_LEVEL_ERROR);
    assert_int_equal(log_level_parse("Warn", &l), 0);
    assert_int_equal(l, LOG_LEVEL_WARN);
    assert_int_equal(log_level_parse("warning", &l), 0);
    assert_int_equal(l, LOG_LEVEL_WARN);
    assert_int_equal(log_level_parse("info", &l), 0);
    assert_int_equal(l, LOG_LEVEL_INFO);
    assert_int_equal(log_level_parse("debug", &l), 0);
    assert_int_equal(l, LOG_LEVEL_DEBUG);
    assert_int_equal(log_level_parse("trace", &l), -1);
    assert_string_equal(log_level_name(LOG_LEVEL_WARN), "warn");

    /* One event, one line: control characters are escaped. */
    char out[1024];
    FILE *f = fmemopen(out, sizeof out, "w");
    log_set_stream(f);
    log_set_level(LOG_LEVEL_INFO);
    log_debug("test", "1.2.3.4:5", "hidden");
    log_info("test", "1.2.3.4:5", "two\nlines\tand \x01");
    log_set_stream(NULL);
    fclose(f);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, " info  test 1.2.3.4:5 two\\nlines\\tand \\x01\n"));
    assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
}

static void test_dns_section(void **state)
{
    (void)state;
    /* Defaults: system resolver, no static routes, 2000 ms, 2 tries. */
    cfg *c = cfg_new();
    const cfg_addr *a = NULL;
    const cfg_static_route *r = NULL;
    assert_int_equal(cfg_get_servers(c, "dns", "server", &a), 0);
    assert_int_equal(cfg_get_static_routes(c, "dns", "static", &r), 0);
    assert_int_equal(cfg_get_uint(c, "dns", "timeout_ms"), 2000);
    assert_int_equal(cfg_get_uint(c, "dns", "tries"), 2);
    /* Getters of the wrong type answer nothing. */
    assert_int_equal(cfg_get_servers(c, "psyc", "listen", &a), 0);
    assert_null(a);
    assert_int_equal(cfg_get_static_routes(c, "dns", "server", &r), 0);
    assert_null(r);
    assert_int_equal(cfg_get_addrs(c, "dns", "server", &a), 0);
    cfg_free(c);

    /* Empty values are allowed for server and static (and mean "none"). */
    const char *text = "[dns]\nserver =\nstatic = # nothing\n";
    c = cfg_new();
    assert_int_equal(cfg_parse_buffer(c, "t.conf", text, strlen(text)), 0);
    assert_int_equal(cfg_get_servers(c, "dns", "server", &a), 0);
    assert_true(cfg_is_set(c, "dns", "server"));
    cfg_free(c);

    text = "[dns]\n"
           "server = 127.0.0.1:35353, [::1]:5353 10.0.0.1\t::2 [fe80::1]\n"
           "static = Example.ORG=xmpp.example.net:5270, b.test = 1.2.3.4:5270,"
           " v6.test=[2001:db8::1]:4404 , noport.test=[::1], name.test=Host.Test\n"
           "timeout_ms = 10\n"
           "tries = 5\n";
    c = cfg_new();
    int rc = cfg_parse_buffer(c, "t.conf", text, strlen(text));
    if (rc != 0)
        cfg_print_errors(c, stderr);
    assert_int_equal(rc, 0);
    assert_int_equal(cfg_get_servers(c, "dns", "server", &a), 5);
    char buf[64];
    assert_string_equal(cfg_addr_format(&a[0], buf, sizeof buf), "127.0.0.1:35353");
    assert_string_equal(cfg_addr_format(&a[1], buf, sizeof buf), "[::1]:5353");
    assert_string_equal(cfg_addr_format(&a[2], buf, sizeof buf), "10.0.0.1:53");
    assert_string_equal(cfg_addr_format(&a[3], buf, sizeof buf), "[::2]:53");
    assert_string_equal(cfg_addr_format(&a[4], buf, sizeof buf), "[fe80::1]:53");
    assert_int_equal(cfg_get_static_routes(c, "dns", "static", &r), 5);
    assert_string_equal(r[0].domain, "example.org");
    assert_string_equal(r[0].host, "xmpp.example.net");
    assert_int_equal(r[0].port, 5270);
    assert_string_equal(r[1].domain, "b.test");
    assert_string_equal(r[1].host, "1.2.3.4");
    assert_string_equal(r[2].host, "2001:db8::1");
    assert_int_equal(r[2].port, 4404);
    assert_string_equal(r[3].host, "::1");
    assert_int_equal(r[3].port, 0);
    assert_string_equal(r[4].host, "host.test");
    assert_int_equal(r[4].port, 0);
    assert_int_equal(cfg_get_uint(c, "dns", "timeout_ms"), 10);
    assert_int_equal(cfg_get_uint(c, "dns", "tries"), 5);
    cfg_free(c);

    /* The shipped file sets every [dns] key to its default. */
    c = cfg_new();
    assert_int_equal(cfg_parse_file(c, SOURCE_DIR "/etc/psycgate.conf"), 0);
    assert_true(cfg_is_set(c, "dns", "server"));
    assert_true(cfg_is_set(c, "dns", "static"));
    assert_true(cfg_is_set(c, "dns", "timeout_ms"));
    assert_true(cfg_is_set(c, "dns", "tries"));
    assert_int_equal(cfg_get_servers(c, "dns", "server", &a), 0);
    assert_int_equal(cfg_get_static_routes(c, "dns", "static", &r), 0);
    assert_int_equal(cfg_get_uint(c, "dns", "timeout_ms"), 2000);
    assert_int_equal(cfg_get_uint(c, "dns", "tries"), 2);
    cfg_free(c);
}

static void test_dns_errors(void **state)
{
    (void)state;
    expect_one_error("[dns]\nserver = ns.example.org\n", 2, "[dns] server: bad server 'ns.example.org'");
    expect_one_error("[dns]\nserver = 127.0.0.1:0\n", 2, "port must be");
    expect_one_error("[dns]\nserver = [::1\n", 2, "missing ']'");
    expect_one_error("[dns]\nserver = 1.2.3.4, 1.2.3.4:53\n", 2, "listed twice");
    expect_one_error("[dns]\nserver = 1.1.1.1 1.1.1.2 1.1.1.3 1.1.1.4 1.1.1.5 1.1.1.6 1.1.1.7 "
                     "1.1.1.8 1.1.1.9\n", 2, "more than 8 servers");
    expect_one_error("[dns]\nstatic = example.org\n", 2, "expected DOMAIN=HOST[:PORT]");
    expect_one_error("[dns]\nstatic = =host:1\n", 2, "the domain is not a DNS name");
    expect_one_error("[dns]\nstatic = a_b.org=host:1\n", 2, "the domain is not a DNS name");
    expect_one_error("[dns]\nstatic = -a.org=host:1\n", 2, "the domain is not a DNS name");
    expect_one_error("[dns]\nstatic = a.org=\n", 2, "host is not a DNS name or IPv4");
    expect_one_error("[dns]\nstatic = a.org=1.2.3.999\n", 2, "host is not a DNS name or IPv4");
    expect_one_error("[dns]\nstatic = a.org=h..x\n", 2, "host is not a DNS name or IPv4");
    expect_one_error("[dns]\nstatic = a.org=host:0\n", 2, "port must be");
    expect_one_error("[dns]\nstatic = a.org=host:70000\n", 2, "port must be");
    expect_one_error("[dns]\nstatic = a.org=host:\n", 2, "port must be");
    expect_one_error("[dns]\nstatic = a.org=::1\n", 2, "written in brackets");
    expect_one_error("[dns]\nstatic = a.org=[::1\n", 2, "missing ']'");
    expect_one_error("[dns]\nstatic = a.org=[::1]5\n", 2, "expected ':PORT'");
    expect_one_error("[dns]\nstatic = a.org=[1.2.3.4]\n", 2, "not a numeric IPv6");
    expect_one_error("[dns]\nstatic = a.org=h:1, A.org=g:2\n", 2, "static route for 'a.org' given twice");
    expect_one_error("[dns]\ntimeout_ms = 9\n", 2, "between 10 and 30000");
    expect_one_error("[dns]\ntimeout_ms = 30001\n", 2, "between 10 and 30000");
    expect_one_error("[dns]\ntries = 0\n", 2, "between 1 and 5");
    expect_one_error("[dns]\ntries = 6\n", 2, "between 1 and 5");
    expect_one_error("[dns]\ntries =\n", 2, "empty value");
    expect_one_error("[dns]\nresolver = 1.2.3.4\n", 2, "unknown key 'resolver' in section [dns]");

    /* A 64-character label is one too many (RFC 1035 §2.3.4). */
    char text[256];
    char label[65];
    memset(label, 'a', 64);
    label[64] = '\0';
    snprintf(text, sizeof text, "[dns]\nstatic = x.org=%s.org\n", label);
    expect_one_error(text, 2, "host is not a DNS name");
    label[63] = '\0';
    snprintf(text, sizeof text, "[dns]\nstatic = x.org=%s.org\n", label);
    cfg *c = cfg_new();
    assert_int_equal(cfg_parse_buffer(c, "t.conf", text, strlen(text)), 0);
    cfg_free(c);

    /* At most CFG_MAX_STATIC_ROUTES routes. */
    char *big = malloc(CFG_MAX_STATIC_ROUTES * 24 + 64);
    assert_non_null(big);
    strcpy(big, "[dns]\nstatic =");
    for (int i = 0; i <= CFG_MAX_STATIC_ROUTES; i++)
        sprintf(big + strlen(big), " d%d.test=h:%d,", i, i + 1);
    strcat(big, "\n");
    expect_one_error(big, 2, "more than 64 static routes");
    free(big);
}

/* [tls] and [psyc] listen_tls (gateway/tls_cert.c, PSYC.md §2.1). */
static void test_tls_section(void **state)
{
    (void)state;
    cfg *c = cfg_new();
    assert_non_null(c);
    /* Defaults: TLS on 9404, our pair in the state directory, the system
     * CA store, a self-signed pair generated on first start. */
    assert_string_equal(cfg_get_str(c, "tls", "certificate"), "");
    assert_string_equal(cfg_get_str(c, "tls", "key"), "");
    assert_string_equal(cfg_get_str(c, "tls", "ca_file"), "");
    assert_int_equal(cfg_get_bool(c, "tls", "generate_self_signed"), 1);
    const cfg_addr *a = NULL;
    assert_int_equal(cfg_get_addrs(c, "psyc", "listen_tls", &a), 1);
    assert_string_equal(a[0].ip, "127.0.0.1");
    assert_int_equal(a[0].port, 9404);
    /* Wrong types answer nothing. */
    assert_int_equal(cfg_get_bool(c, "tls", "certificate"), 0);
    assert_int_equal(cfg_get_bool(c, "tls", "nope"), 0);
    assert_null(cfg_get_str(c, "tls", "generate_self_signed"));
    cfg_free(c);

    const char *text = "[tls]\n"
                       "certificate = /etc/psycgate/tls/gw.crt\n"
                       "key = /etc/psycgate/tls/gw.key  # comment\n"
                       "ca_file = /etc/ssl/certs/ca-certificates.crt\n"
                       "generate_self_signed = No\n"
                       "[psyc]\n"
                       "listen_tls = [::1]:9404, 127.0.0.1:9405\n";
    c = cfg_new();
    int rc = cfg_parse_buffer(c, "t.conf", text, strlen(text));
    if (rc != 0)
        cfg_print_errors(c, stderr);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg_get_str(c, "tls", "certificate"), "/etc/psycgate/tls/gw.crt");
    assert_string_equal(cfg_get_str(c, "tls", "key"), "/etc/psycgate/tls/gw.key");
    assert_string_equal(cfg_get_str(c, "tls", "ca_file"), "/etc/ssl/certs/ca-certificates.crt");
    assert_int_equal(cfg_get_bool(c, "tls", "generate_self_signed"), 0);
    assert_int_equal(cfg_get_addrs(c, "psyc", "listen_tls", &a), 2);
    assert_int_equal(a[0].family, AF_INET6);
    assert_int_equal(a[1].port, 9405);
    assert_int_equal(cfg_line_of(c, "tls", "generate_self_signed"), 5);
    cfg_free(c);

    /* Empty paths are the defaults, written out; `none` turns TLS
     * listening off; every spelling of yes and no. */
    static const struct {
        const char *v;
        int want;
    } bools[] = {{"yes", 1}, {"YES", 1}, {"true", 1}, {"on", 1}, {"1", 1},
                 {"no", 0},  {"False", 0}, {"off", 0}, {"0", 0}};
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        char t[256];
        snprintf(t, sizeof t,
                 "[tls]\ncertificate =\nkey =   \nca_file = # system store\ngenerate_self_signed = %s\n"
                 "[psyc]\nlisten_tls = none\n",
                 bools[i].v);
        c = cfg_new();
        assert_int_equal(cfg_parse_buffer(c, "t.conf", t, strlen(t)), 0);
        assert_int_equal(cfg_get_bool(c, "tls", "generate_self_signed"), bools[i].want);
        assert_string_equal(cfg_get_str(c, "tls", "certificate"), "");
        assert_string_equal(cfg_get_str(c, "tls", "ca_file"), "");
        assert_true(cfg_is_set(c, "tls", "key"));
        assert_int_equal(cfg_get_addrs(c, "psyc", "listen_tls", &a), 0);
        cfg_free(c);
    }

    /* The shipped file documents the [tls] defaults by setting them. */
    c = cfg_new();
    assert_int_equal(cfg_parse_file(c, SOURCE_DIR "/etc/psycgate.conf"), 0);
    assert_true(cfg_is_set(c, "psyc", "listen_tls"));
    assert_true(cfg_is_set(c, "tls", "certificate"));
    assert_true(cfg_is_set(c, "tls", "key"));
    assert_true(cfg_is_set(c, "tls", "ca_file"));
    assert_true(cfg_is_set(c, "tls", "generate_self_signed"));
    assert_string_equal(cfg_get_str(c, "tls", "certificate"), "");
    assert_string_equal(cfg_get_str(c, "tls", "key"), "");
    assert_string_equal(cfg_get_str(c, "tls", "ca_file"), "");
    assert_int_equal(cfg_get_bool(c, "tls", "generate_self_signed"), 1);
    assert_int_equal(cfg_get_addrs(c, "psyc", "listen_tls", &a), 1);
    assert_int_equal(a[0].port, 9404);
    cfg_free(c);
}

static void test_tls_errors(void **state)
{
    (void)state;
    expect_one_error("[tls]\ngenerate_self_signed = maybe\n", 2, "[tls] generate_self_signed: expected yes or no");
    expect_one_error("[tls]\ngenerate_self_signed =\n", 2, "expected yes or no");
    expect_one_error("[tls]\nca_file = a\001b\n", 2, "control character");
    expect_one_error("[tls]\nkeyfile = x\n", 2, "unknown key 'keyfile' in section [tls]");
    expect_one_error("[tls]\nca_file = a\nca_file = b\n", 3, "duplicate key 'ca_file'");
    /* One of the pair alone would be matched with the generated default
     * of the other. */
    expect_one_error("[tls]\n\ncertificate = /x.crt\n", 3, "certificate and key must be set together");
    expect_one_error("[tls]\nkey = /x.key\ncertificate =\n", 2, "certificate and key must be set together");
    /* Listeners that could never both be bound. */
    expect_one_error("[psyc]\nlisten = 127.0.0.1:4404\nlisten_tls = 127.0.0.1:4404\n", 3,
                     "listen_tls: 127.0.0.1:4404 overlaps 127.0.0.1:4404");
    expect_one_error("[psyc]\nlisten = 0.0.0.0:9000\nlisten_tls = 127.0.0.1:9000\n", 3, "overlaps 0.0.0.0:9000");
    expect_one_error("[psyc]\nlisten_tls = [::]:9000\nlisten = [::1]:9000\n", 2, "overlaps [::1]:9000");
    /* Against the default listen_tls, reported where listen is set. */
    expect_one_error("[psyc]\n\nlisten = 127.0.0.1:9404\n", 3, "listen_tls: 127.0.0.1:9404 overlaps");
    /* Different families or ports do not collide. */
    cfg *c = cfg_new();
    const char *ok = "[psyc]\nlisten = 0.0.0.0:9000, [::]:9001\nlisten_tls = [::1]:9000, 127.0.0.1:9001\n";
    assert_int_equal(cfg_parse_buffer(c, "t.conf", ok, strlen(ok)), 0);
    cfg_free(c);
    /* `none` only alone, and only where listening may be off. */
    expect_one_error("[psyc]\nlisten_tls = none, 127.0.0.1:9405\n", 2, "bad address 'none'");
    expect_one_error("[psyc]\nlisten = none\n", 2, "bad address 'none'");
    expect_one_error("[psyc]\nlisten_tls =\n", 2, "empty value");
}

/* [component]: absent by default; a list of domains; host/port/secret. */
static void test_component_section(void **state)
{
    (void)state;
    const char *const *d = NULL;
    cfg *c = cfg_new();
    assert_non_null(c);
    assert_int_equal(cfg_parse_buffer(c, "t.conf", "", 0), 0);
    assert_int_equal(cfg_get_domains(c, "component", "domain", &d), 0);
    assert_non_null(d);
    assert_null(d[0]);
    assert_string_equal(cfg_get_str(c, "component", "host"), "127.0.0.1");
    assert_int_equal(cfg_get_uint(c, "component", "port"), 5347);
    assert_string_equal(cfg_get_str(c, "component", "secret"), "");
    cfg_free(c);

    const char *text = "[component]\n"
                       "domain = PSYC.example.org, echo.example.org  chat.example.org\n"
                       "host = ::1\n"
                       "port = 15347\n"
                       "secret = s3cr3t #x\n";
    c = cfg_new();
    assert_non_null(c);
    if (cfg_parse_buffer(c, "t.conf", text, strlen(text)) != 0) {
        cfg_print_errors(c, stderr);
        fail();
    }
    assert_int_equal(cfg_get_domains(c, "component", "domain", &d), 3);
    assert_string_equal(d[0], "psyc.example.org");
    assert_string_equal(d[1], "echo.example.org");
    assert_string_equal(d[2], "chat.example.org");
    assert_null(d[3]);
    assert_string_equal(cfg_get_str(c, "component", "host"), "::1");
    assert_int_equal(cfg_get_uint(c, "component", "port"), 15347);
    assert_string_equal(cfg_get_str(c, "component", "secret"), "s3cr3t");
    cfg_free(c);

    /* A secret without a domain is harmless (an example left half on). */
    c = cfg_new();
    assert_non_null(c);
    text = "[component]\nsecret = x\n";
    assert_int_equal(cfg_parse_buffer(c, "t.conf", text, strlen(text)), 0);
    assert_int_equal(cfg_get_domains(c, "component", "domain", &d), 0);
    cfg_free(c);
}

static void test_component_errors(void **state)
{
    (void)state;
    expect_one_error("[component]\ndomain = a.test\n", 2, "needs [component] secret");
    expect_one_error("[component]\nsecret =\ndomain = a.test\n", 3, "needs [component] secret");
    expect_one_error("[component]\ndomain = a..test\nsecret = x\n", 2, "not a DNS name");
    expect_one_error("[component]\ndomain = a.test, A.test\nsecret = x\n", 2, "listed twice");
    expect_one_error("[component]\nhost = localhost\n", 2, "numeric IPv4 or IPv6");
    expect_one_error("[component]\nhost = [::1]\n", 2, "numeric IPv4 or IPv6");
    expect_one_error("[component]\nport = 0\n", 2, "between 1 and 65535");
    expect_one_error("[component]\nport = 65536\n", 2, "between 1 and 65535");
    expect_one_error("[component]\nsecret = a\x01b\n", 2, "control character");
    expect_one_error("[component]\ndomain = a.test\ndomain = b.test\nsecret = x\n", 3,
                     "duplicate key");
}

/* Keys with a fixed set of words: exact match, index and word both
 * available, defaults from the schema. */
static void test_choice_keys(void **state)
{
    (void)state;
    cfg *c = cfg_new();
    assert_int_equal(cfg_parse_buffer(c, "<t>", "", 0), 0);
    assert_string_equal(cfg_get_str(c, "s2s", "tls"), "optional");
    assert_int_equal(cfg_get_choice(c, "s2s", "tls"), 1);
    assert_string_equal(cfg_get_str(c, "psyc", "syntax"), "0.9");
    assert_int_equal(cfg_get_choice(c, "psyc", "syntax"), 0);
    cfg_free(c);
    c = cfg_new();
    const char *text = "[s2s]\ntls = required\n[psyc]\nsyntax = 1.0\n";
    assert_int_equal(cfg_parse_buffer(c, "<t>", text, strlen(text)), 0);
    assert_int_equal(cfg_get_choice(c, "s2s", "tls"), 2);
    assert_string_equal(cfg_get_str(c, "s2s", "tls"), "required");
    assert_int_equal(cfg_get_choice(c, "psyc", "syntax"), 1);
    cfg_free(c);
    expect_one_error("[s2s]\ntls = Optional\n", 2, "expected one of: none,optional,required");
    expect_one_error("[s2s]\ntls = option\n", 2, "expected one of");
    expect_one_error("[s2s]\ntls =\n", 2, "empty value");
    expect_one_error("[psyc]\nsyntax = 1\n", 2, "expected one of: 0.9,1.0");
}

/* [psyc] trusted: peers that may send for any host (PSYC.md §5 rule 1);
 * IPv4 and host names, lower-cased, empty by default. */
static void test_psyc_trusted(void **state)
{
    (void)state;
    cfg *c = cfg_new();
    const char *const *list = NULL;
    assert_int_equal(cfg_parse_buffer(c, "<t>", "", 0), 0);
    assert_int_equal(cfg_get_domains(c, "psyc", "trusted", &list), 0);
    cfg_free(c);
    c = cfg_new();
    const char *text = "[psyc]\ntrusted = 192.0.2.7, Relay.Example.ORG 127.0.0.1\n";
    assert_int_equal(cfg_parse_buffer(c, "<t>", text, strlen(text)), 0);
    assert_int_equal(cfg_get_domains(c, "psyc", "trusted", &list), 3);
    assert_string_equal(list[0], "192.0.2.7");
    assert_string_equal(list[1], "relay.example.org");
    assert_string_equal(list[2], "127.0.0.1");
    cfg_free(c);
    c = cfg_new();
    text = "[psyc]\ntrusted =\n";
    assert_int_equal(cfg_parse_buffer(c, "<t>", text, strlen(text)), 0);
    assert_int_equal(cfg_get_domains(c, "psyc", "trusted", &list), 0);
    cfg_free(c);
    expect_one_error("[psyc]\ntrusted = bad_name\n", 2, "is not a DNS name");
    expect_one_error("[psyc]\ntrusted = a.test a.test\n", 2, "listed twice");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_shipped_config),   cmocka_unit_test(test_error_syntax),
        cmocka_unit_test(test_error_unknown),    cmocka_unit_test(test_error_duplicate),
        cmocka_unit_test(test_error_values),     cmocka_unit_test(test_error_many),
        cmocka_unit_test(test_error_file),       cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_log_level_names),
        cmocka_unit_test(test_dns_section),      cmocka_unit_test(test_dns_errors),
        cmocka_unit_test(test_tls_section),      cmocka_unit_test(test_tls_errors),
        cmocka_unit_test(test_component_section), cmocka_unit_test(test_component_errors),
        cmocka_unit_test(test_choice_keys),
        cmocka_unit_test(test_psyc_trusted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
