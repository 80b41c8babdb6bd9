/*
 * main.c: psycgate, the XMPP <-> PSYC federation gateway daemon.
 *
 *   psycgate [-c FILE] [-f] [-v]... [--log-level LEVEL]
 *   psycgate --check-config [-c FILE]
 *   psycgate --version
 *
 * It runs in the foreground and logs to stderr, one line per event
 * (DESIGN.md §7); supervisors (systemd, runit, `make run`) handle the rest.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/config.h"
#include "gateway/gw.h"
#include "gateway/log.h"
#include "gateway/s2s_secret.h"
#include "gateway/tls.h"

#ifndef PSYCGATE_VERSION
#define PSYCGATE_VERSION "0.0.0"
#endif

enum { OPT_CHECK = 256, OPT_VERSION, OPT_LOG_LEVEL };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: psycgate [-c FILE] [-f] [-v]... [--log-level LEVEL]\n"
            "       psycgate --check-config [-c FILE]\n"
            "       psycgate --version\n"
            "\n"
            "  -c, --config FILE     configuration file (default: built-in defaults)\n"
            "      --check-config    parse the configuration, report errors with line\n"
            "                        numbers, exit 0 if it is valid, 1 if not\n"
            "  -f, --foreground      stay in the foreground (the default and only mode)\n"
            "  -v, --verbose         log more (once: debug)\n"
            "      --log-level LEVEL error | warn | info | debug (overrides the file)\n"
            "      --version         print the version and exit\n"
            "  -h, --help            this text\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"foreground", no_argument, NULL, 'f'},
        {"verbose", no_argument, NULL, 'v'},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL;
    int check_only = 0, verbose = 0, have_level = 0;
    log_level cli_level = LOG_LEVEL_INFO;

    int opt;
    while ((opt = getopt_long(argc, argv, "c:fvh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'f':
            break;
        case 'v':
            verbose++;
            break;
        case OPT_CHECK:
            check_only = 1;
            break;
        case OPT_LOG_LEVEL:
            if (log_level_parse(optarg, &cli_level) != 0) {
                fprintf(stderr, "psycgate: unknown log level '%s' (error, warn, info, debug)\n", optarg);
                return 2;
            }
            have_level = 1;
            break;
        case OPT_VERSION:
            printf("psycgate %s\n", PSYCGATE_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "psycgate: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    cfg *c = cfg_new();
    if (!c) {
        fprintf(stderr, "psycgate: out of memory\n");
        return 1;
    }
    int rc = config_path ? cfg_parse_file(c, config_path) : 0;
    if (rc == -2) {
        fprintf(stderr, "psycgate: out of memory reading the configuration\n");
        cfg_free(c);
        return 1;
    }
    if (rc != 0) {
        cfg_print_errors(c, stderr);
        fprintf(stderr, "psycgate: %zu error%s in %s\n", cfg_error_count(c),
                cfg_error_count(c) == 1 ? "" : "s", config_path);
        cfg_free(c);
        return 1;
    }
    if (check_only) {
        /* The certificate, key and CA file too: a typo there would only
         * show when the daemon starts. Nothing is written. */
        const cfg_addr *tls_addrs = NULL;
        if (tls_check_config(c, stderr) != 0) {
            /* Fatal at start only when a TLS listener needs it (gw.c). */
            if (cfg_get_addrs(c, "psyc", "listen_tls", &tls_addrs) > 0) {
                fprintf(stderr, "psycgate: the [tls] files are not usable, and [psyc] listen_tls needs them\n");
                cfg_free(c);
                return 1;
            }
            fprintf(stderr, "psycgate: warning: TLS will be off (the [tls] files are not usable)\n");
        }
        /* The dialback secret: the daemon refuses a world-readable one. */
        char serr[512] = "";
        if (s2s_secret_check(cfg_get_str(c, "gateway", "state_dir"), serr, sizeof serr) < 0) {
            fprintf(stderr, "psycgate: %s\n", serr);
            cfg_free(c);
            return 1;
        }
        if (config_path)
            printf("%s: configuration OK\n", config_path);
        else
            printf("no configuration file given: the built-in defaults are used\n");
        cfg_free(c);
        return 0;
    }

    /* Command line over file over default. */
    log_level level = have_level ? cli_level : cfg_get_log_level(c, "gateway", "log_level");
    if (verbose)
        level = LOG_LEVEL_DEBUG;
    log_set_level(level);

    /* A peer that hangs up while we write must give EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);

    if (!config_path)
        log_info("main", NULL, "no -c given: using built-in defaults");
    else
        log_info("main", NULL, "configuration %s loaded", config_path);

    int code = gw_run(c);
    cfg_free(c);
    return code;
}
