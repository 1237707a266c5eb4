/* ag_log.h - leveled, human-readable logging to stderr.
 *
 * Lines look like `ts=2026-11-27T02:30:00.123Z level=info msg="..." key=value`, in the spirit of
 * Prometheus' logfmt output, so people and log shippers can both read them. Thread-safe.
 */
#ifndef AG_LOG_H
#define AG_LOG_H

typedef enum { AG_LOG_DEBUG = 0, AG_LOG_INFO, AG_LOG_WARN, AG_LOG_ERROR } ag_log_level_t;

void ag_log_set_level(ag_log_level_t lvl);
ag_log_level_t ag_log_get_level(void);
/* "debug", "info", "warn" or "error". */
const char *ag_log_level_name(ag_log_level_t lvl);
/* Parses "debug", "info", "warn", "error"; returns 0 or AG_EINVAL. */
int ag_log_parse_level(const char *s, ag_log_level_t *out);
/* `fmt` produces the rest of the line after `msg=`: callers pass a quoted message and optional
 * key=value pairs, e.g. ag_log(AG_LOG_INFO, "\"listening\" address=%s", addr). */
void ag_log(ag_log_level_t lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define AG_DEBUG(...) ag_log(AG_LOG_DEBUG, __VA_ARGS__)
#define AG_INFO(...) ag_log(AG_LOG_INFO, __VA_ARGS__)
#define AG_WARN(...) ag_log(AG_LOG_WARN, __VA_ARGS__)
#define AG_ERROR(...) ag_log(AG_LOG_ERROR, __VA_ARGS__)

#endif
