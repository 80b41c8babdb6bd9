/*
 * config.h: the daemon's configuration file (DESIGN.md §7: one INI-like
 * file, every key documented with its default, `psycgate --check-config`).
 *
 * Syntax, one statement per line:
 *   [section]
 *   key = value          # comment      (also ';'; inline only after blanks)
 * Blank lines and lines starting with '#' or ';' are ignored; CR before LF is
 * tolerated. Every key and section must be known (a typo is an error with
 * file:line, not a silently ignored setting); a key may appear only once.
 *
 * Known keys (defaults in the schema in config.c, documented in
 * etc/psycgate.conf):
 *   [gateway] host, state_dir, log_level
 *   [psyc]    listen, listen_tls, idle_timeout, max_packet, syntax
 *   [dns]     server, static, timeout_ms, tries
 *   [tls]     certificate, key, ca_file, generate_self_signed
 *   [component] domain, host, port, secret
 *   [s2s]     listen, domain, tls, idle_timeout, ping_interval, give_up
 *
 * Getters return the configured value or the documented default, so callers
 * never see "unset".
 */
#ifndef GATEWAY_CONFIG_H
#define GATEWAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gateway/log.h"

/* A numeric listen address: "127.0.0.1:4404" or "[::1]:4404". */
typedef struct cfg_addr {
    int family;      /* AF_INET or AF_INET6 */
    char ip[48];     /* numeric, without brackets */
    uint16_t port;
} cfg_addr;

typedef struct cfg_error {
    unsigned line;   /* 1-based; 0 when the error is about the whole file */
    char *msg;
} cfg_error;

typedef struct cfg cfg;

#define CFG_MAX_ERRORS 100     /* further errors are counted, not stored */
#define CFG_MAX_LISTEN 32      /* addresses per listen key */
#define CFG_MAX_FILE ((size_t)1 << 20)
#define CFG_MAX_DNS_SERVERS 8      /* [dns] server */
#define CFG_MAX_STATIC_ROUTES 64   /* [dns] static */

/* One "[dns] static" route, DOMAIN=HOST[:PORT]: lookups for DOMAIN skip the
 * DNS (SRV) and go to HOST (gateway/dns.h). */
typedef struct cfg_static_route {
    char domain[254]; /* lower case DNS name */
    char host[254];   /* lower case DNS name, IPv4, or IPv6 without brackets */
    uint16_t port;    /* 0: the default port of the service looked up */
} cfg_static_route;

cfg *cfg_new(void);
void cfg_free(cfg *c);

/* Parses a whole file image. `name` labels error messages (a path, or
 * "<memory>"). Call once per cfg. Returns 0 when valid, -1 when at least
 * one error was recorded (see cfg_error_*), -2 when memory ran out. */
int cfg_parse_buffer(cfg *c, const char *name, const char *data, size_t len);
/* Reads `path` (at most CFG_MAX_FILE bytes) and parses it. Same results;
 * an unreadable file is an error at line 0. */
int cfg_parse_file(cfg *c, const char *path);

size_t cfg_error_count(const cfg *c); /* every error, stored or not */
const cfg_error *cfg_error_at(const cfg *c, size_t i); /* i < stored count, else NULL */
/* Prints "name:line: message" per error to f; returns the number printed. */
size_t cfg_print_errors(const cfg *c, FILE *f);

/* Typed getters. `section`/`key` must name a schema entry of that type;
 * anything else is a programming error and returns NULL / 0 / defaults. */
const char *cfg_get_str(const cfg *c, const char *section, const char *key);
uint64_t cfg_get_uint(const cfg *c, const char *section, const char *key);
log_level cfg_get_log_level(const cfg *c, const char *section, const char *key);
/* A yes/no key: 1 or 0. */
int cfg_get_bool(const cfg *c, const char *section, const char *key);
/* Number of addresses; *out points into c (valid until cfg_free). */
size_t cfg_get_addrs(const cfg *c, const char *section, const char *key, const cfg_addr **out);
/* [dns] server: resolver addresses (port 53 unless given); 0 = the
 * system's resolver configuration. *out points into c. */
size_t cfg_get_servers(const cfg *c, const char *section, const char *key, const cfg_addr **out);
/* [dns] static: the routes, in file order; *out points into c. */
size_t cfg_get_static_routes(const cfg *c, const char *section, const char *key,
                             const cfg_static_route **out);
/* [component] domain: the domains (lower case), *out NULL-terminated and
 * pointing into c; 0 when none is configured. */
size_t cfg_get_domains(const cfg *c, const char *section, const char *key, const char *const **out);
/* A key with a fixed set of words ([s2s] tls, [psyc] syntax): the index of
 * the configured word in the schema's list (cfg_get_str gives the word). */
unsigned cfg_get_choice(const cfg *c, const char *section, const char *key);
/* 1 if the key was set in the file (rather than defaulted). */
int cfg_is_set(const cfg *c, const char *section, const char *key);
/* Line where the key was set, 0 if defaulted. */
unsigned cfg_line_of(const cfg *c, const char *section, const char *key);

/* "127.0.0.1:4404" / "[::1]:4404" into buf; returns buf. */
const char *cfg_addr_format(const cfg_addr *a, char *buf, size_t size);
/* Parses one address in the forms above; 0 ok, -1 with *why set. */
int cfg_addr_parse(const char *s, cfg_addr *out, const char **why);

#endif /* GATEWAY_CONFIG_H */
