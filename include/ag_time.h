/* ag_time.h - parsing and formatting of the time and duration syntax Prometheus' HTTP API and
 * PromQL use. All times are int64 milliseconds since the Unix epoch. */
#ifndef AG_TIME_H
#define AG_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "ag_err.h"

#define AG_TIME_MIN_MS (INT64_MIN / 2) /* the range Prometheus' MinTime/MaxTime sentinels map to */
#define AG_TIME_MAX_MS (INT64_MAX / 2)

/* Milliseconds since the epoch, from CLOCK_REALTIME. */
int64_t ag_now_ms(void);

/* Parses a PromQL duration like prometheus/common's model.ParseDuration: units ms s m h d w y
 * (y = 365d) concatenated from longest to shortest, each at most once ("1h30m", "54s321ms";
 * "0s" and a bare "0" allowed; "1.5h", "1m1h", "5m5m", "" not). Durations over ~292 years fail
 * with "duration out of range". Returns 0 or AG_EINVAL with Prometheus' message
 * (`not a valid duration string: "1.5h"`). Zero is not rejected here; PromQL's parser does. */
int ag_parse_duration(const char *s, int64_t *ms, ag_errmsg_t *e);
/* An API duration parameter: a float number of seconds as Go's ParseFloat reads it ("15", "0.5",
 * "1e3", "-5"; NaN and Inf rejected) or a PromQL duration. Fractions of a millisecond are
 * truncated, as Prometheus' time.Duration -> milliseconds conversion does. Returns 0 or AG_EINVAL
 * (`cannot parse "abc" to a valid duration`). Sign checks (e.g. step > 0) are the caller's. */
int ag_parse_api_duration(const char *s, int64_t *ms, ag_errmsg_t *e);
/* An API time parameter: unix seconds as a float ("1435781451.781", fraction rounded to the
 * millisecond), RFC 3339 with optional fraction and Z or +hh:mm offset ("2015-07-01T20:10:51.781Z",
 * "...+02:00"), or the Go sentinels Prometheus' clients send for min and max time
 * ("-292273086-05-16T16:47:06Z", "292277026596-12-04T15:30:07.999999999Z"). Leniently, years
 * with a sign or more than four digits are accepted too. Results are clamped to
 * [AG_TIME_MIN_MS, AG_TIME_MAX_MS] (the sentinels and +-Inf land on the bounds). Returns 0 or
 * AG_EINVAL (`cannot parse "abc" to a valid timestamp`). */
int ag_parse_api_time(const char *s, int64_t *ms, ag_errmsg_t *e);
/* Formats a duration the way Prometheus' model.Duration.String() does ("1h30m", "5m", "0s",
 * "1s500ms"; years and weeks only when they divide the duration exactly: "90d", "8w", "366d").
 * Negative durations get a leading "-". `out` should hold 32 bytes (output is truncated to fit). */
void ag_format_duration(int64_t ms, char *out, int outlen);
/* Formats ms since the epoch as RFC 3339 UTC with millisecond precision when it has some
 * ("2026-11-27T10:00:00Z", "2026-11-27T10:00:00.250Z") into out (at least 32 bytes). */
void ag_rfc3339(int64_t ms, char *out, size_t outlen);

#endif
