/* log.h — leveled, one-line-per-event logging to stderr.
 *
 * Level comes from SKYWIRE_LOG_LEVEL (debug|info|warn|error; default info).
 * Every line: "<RFC3339 UTC ms> <LEVEL> <component>: <message>\n". Control characters in the
 * message (e.g. from untrusted input) are escaped so one event is always one line.
 * Never pass secret keys to these functions. Thread-safe. */
#ifndef SW_LOG_H
#define SW_LOG_H

enum sw_log_level { SW_LOG_DEBUG = 0, SW_LOG_INFO, SW_LOG_WARN, SW_LOG_ERROR };

/* Sets the component name (borrowed; must outlive logging) and reads SKYWIRE_LOG_LEVEL. */
void sw_log_init(const char *component);
void sw_log_set_level(enum sw_log_level level);
/* Parses "debug"/"info"/"warn"/"error"; returns 0 or SW_EINVAL. */
int sw_log_parse_level(const char *s, enum sw_log_level *out);
int sw_log_enabled(enum sw_log_level level);

void sw_log(enum sw_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sw_log_debug(...) do { if (sw_log_enabled(SW_LOG_DEBUG)) sw_log(SW_LOG_DEBUG, __VA_ARGS__); } while (0)
#define sw_log_info(...)  sw_log(SW_LOG_INFO, __VA_ARGS__)
#define sw_log_warn(...)  sw_log(SW_LOG_WARN, __VA_ARGS__)
#define sw_log_error(...) sw_log(SW_LOG_ERROR, __VA_ARGS__)

#endif
