/* ag_time.h - parsing and formatting of the time and duration syntax Prometheus' HTTP API and
 * PromQL use. All times are int64 milliseconds since the Unix epoch. */
#ifndef AG_TIME_H
#define AG_TIME_H

#include <stdint.h>

#include "ag_err.h"

#define AG_TIME_MIN_MS INT64_MIN / 2 /* the range Prometheus' MinTime/MaxTime sentinels map to */
#define AG_TIME_MAX_MS INT64_MAX / 2

/* Milliseconds since the epoch, from CLOCK_REALTIME. */
int64_t ag_now_ms(void);

/* Parses a PromQL duration: units ms s m h d w y concatenated from longest to shortest, each at
 * most once ("1h30m", "54s321ms", "0s" allowed, "1.5h" not). Returns 0 or AG_EINVAL. */
int ag_parse_duration(const char *s, int64_t *ms, ag_errmsg_t *e);
/* An API duration parameter: a float number of seconds ("15", "0.5", "1e3") or a PromQL
 * duration. Rounds to milliseconds. Returns 0 or AG_EINVAL. */
int ag_parse_api_duration(const char *s, int64_t *ms, ag_errmsg_t *e);
/* An API time parameter: unix seconds as a float ("1435781451.781"), RFC 3339 with optional
 * fraction and offset ("2015-07-01T20:10:51.781Z", "...+02:00"), or the Go sentinels
 * Prometheus' clients send for min and max time. Returns 0 or AG_EINVAL. */
int ag_parse_api_time(const char *s, int64_t *ms, ag_errmsg_t *e);
/* Formats a duration the way Prometheus prints one ("1h30m", "5m", "0s"). `out` should hold 32
 * bytes. */
void ag_format_duration(int64_t ms, char *out, int outlen);

#endif
