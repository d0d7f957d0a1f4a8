#include "common/log.h"
#include "common/clock.h"
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_component = "skywire";
static volatile int log_level = SW_LOG_INFO;

static const char *const level_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

int sw_log_parse_level(const char *s, enum sw_log_level *out)
{
    static const char *const names[] = { "debug", "info", "warn", "error" };
    for (int i = 0; i < 4; i++) {
        if (s && strcasecmp(s, names[i]) == 0) {
            *out = (enum sw_log_level)i;
            return SW_OK;
        }
    }
    if (s && strcasecmp(s, "warning") == 0) {
        *out = SW_LOG_WARN;
        return SW_OK;
    }
    return SW_EINVAL;
}

void sw_log_init(const char *component)
{
    enum sw_log_level lvl;
    const char *env = getenv("SKYWIRE_LOG_LEVEL");
    if (component)
        log_component = component;
    if (env && *env) {
        if (sw_log_parse_level(env, &lvl) == SW_OK)
            log_level = lvl;
        else
            sw_log(SW_LOG_WARN, "SKYWIRE_LOG_LEVEL=\"%s\" is not debug|info|warn|error; using info", env);
    }
}

void sw_log_set_level(enum sw_log_level level) { log_level = level; }

int sw_log_enabled(enum sw_log_level level) { return (int)level >= log_level; }

/* Copies src into dst escaping control characters so a message stays on one line. */
static void escape_line(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)src; *p && o + 5 < cap; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", *p);
        } else {
            dst[o++] = (char)*p;
        }
    }
    dst[o] = '\0';
}

void sw_log(enum sw_log_level level, const char *fmt, ...)
{
    char raw[2048], msg[4096], stamp[40];
    int64_t unix_ms;
    time_t secs;
    struct tm tm;
    va_list ap;

    if (!sw_log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    escape_line(msg, sizeof(msg), raw);

    unix_ms = sw_unix_ms();
    secs = (time_t)(unix_ms / 1000);
    gmtime_r(&secs, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per line: stdio locks the stream, so lines never interleave. */
    fprintf(stderr, "%s.%03dZ %-5s %s: %s\n", stamp, (int)(unix_ms % 1000),
            level_names[level], log_component, msg);
}
