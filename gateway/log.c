/* log.c: one line per event (see log.h). */
#include "gateway/log.h"

#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static log_level log_current = LOG_LEVEL_INFO;
static FILE *log_stream; /* NULL = stderr */

static const char *const log_names[] = {"error", "warn", "info", "debug"};

void log_set_level(log_level level)
{
    if (level < LOG_LEVEL_ERROR)
        level = LOG_LEVEL_ERROR;
    if (level > LOG_LEVEL_DEBUG)
        level = LOG_LEVEL_DEBUG;
    log_current = level;
}

log_level log_get_level(void)
{
    return log_current;
}

int log_enabled(log_level level)
{
    return level <= log_current;
}

void log_set_stream(FILE *stream)
{
    log_stream = stream;
}

int log_level_parse(const char *name, log_level *out)
{
    if (!name)
        return -1;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, log_names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *out = LOG_LEVEL_WARN;
        return 0;
    }
    return -1;
}

const char *log_level_name(log_level level)
{
    if (level < LOG_LEVEL_ERROR || level > LOG_LEVEL_DEBUG)
        return "?";
    return log_names[level];
}

/* Appends s to line[*pos..cap), escaping bytes that would break the
 * one-line-per-event rule or a terminal. Truncates silently at cap. */
static void log_put_escaped(char *line, size_t *pos, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s && *pos + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n') {
            line[(*pos)++] = '\\';
            line[(*pos)++] = 'n';
        } else if (c == '\t') {
            line[(*pos)++] = '\\';
            line[(*pos)++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            line[(*pos)++] = '\\';
            line[(*pos)++] = 'x';
            line[(*pos)++] = hex[c >> 4];
            line[(*pos)++] = hex[c & 15];
        } else {
            line[(*pos)++] = (char)c;
        }
    }
}

void log_write(log_level level, const char *component, const char *peer, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;

    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);

    char line[4096];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000L, log_level_name(level),
                     component ? component : "-");
    size_t pos = n > 0 ? (size_t)n : 0;
    if (pos >= sizeof line)
        pos = sizeof line - 1;
    log_put_escaped(line, &pos, sizeof line, peer && *peer ? peer : "-");
    if (pos + 1 < sizeof line)
        line[pos++] = ' ';
    log_put_escaped(line, &pos, sizeof line, msg);
    line[pos++] = '\n';

    /* One fwrite per event: lines from one process never interleave. */
    FILE *f = log_stream ? log_stream : stderr;
    fwrite(line, 1, pos, f);
    fflush(f);
}
