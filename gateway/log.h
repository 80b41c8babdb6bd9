/*
 * log.h: one line per event on stderr (DESIGN.md §7: "one line per event
 * with peer and reason").
 *
 *   2026-11-25T04:10:00.123Z info  psyc 127.0.0.1:54321 circuit open
 *   <ISO-8601 UTC time>      level comp peer            message
 *
 * The peer column is "-" when an event has no peer. Control characters in
 * the message (a method name or reason taken from the wire, say) are escaped
 * so that one event can never span two lines.
 *
 * The level and the stream are process-wide settings of the daemon
 * (gateway/ is the only place where global mutable state may live,
 * DESIGN.md §4).
 */
#ifndef GATEWAY_LOG_H
#define GATEWAY_LOG_H

#include <stdio.h>

typedef enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
} log_level;

/* Events above this level are dropped. Default: LOG_LEVEL_INFO. */
void log_set_level(log_level level);
log_level log_get_level(void);
int log_enabled(log_level level);

/* Where lines go; NULL restores stderr. */
void log_set_stream(FILE *stream);

/* "error" | "warn" | "info" | "debug" (case-insensitive; "warning" too).
 * 0 and *out set, or -1 when the name is unknown. */
int log_level_parse(const char *name, log_level *out);
const char *log_level_name(log_level level);

/* component: short module name ("main", "psyc", "config", ...);
 * peer: "ip:port" or NULL. */
void log_write(log_level level, const char *component, const char *peer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_error(comp, peer, ...) log_write(LOG_LEVEL_ERROR, (comp), (peer), __VA_ARGS__)
#define log_warn(comp, peer, ...) log_write(LOG_LEVEL_WARN, (comp), (peer), __VA_ARGS__)
#define log_info(comp, peer, ...) log_write(LOG_LEVEL_INFO, (comp), (peer), __VA_ARGS__)
#define log_debug(comp, peer, ...)                                                                  \
    do {                                                                                            \
        if (log_enabled(LOG_LEVEL_DEBUG))                                                           \
            log_write(LOG_LEVEL_DEBUG, (comp), (peer), __VA_ARGS__);                                \
    } while (0)

#endif /* GATEWAY_LOG_H */
