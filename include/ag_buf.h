/* ag_buf.h - a growable byte buffer with a sticky out-of-memory flag.
 *
 * Used to build HTTP response bodies, JSON, exposition text and label encodings. Appends never
 * fail loudly: on allocation failure the buffer sets `oom` and ignores further appends, so a
 * writer checks once at the end (`ag_buf_ok`). The buffer owns `data`; ag_buf_free releases it,
 * ag_buf_steal hands ownership to the caller. `data` is always NUL terminated when non-NULL.
 */
#ifndef AG_BUF_H
#define AG_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ag_buf {
    char *data;
    size_t len;
    size_t cap;
    bool oom;
} ag_buf_t;

#define AG_BUF_INIT {NULL, 0, 0, false}

void ag_buf_free(ag_buf_t *b);
void ag_buf_reset(ag_buf_t *b);              /* len = 0 and oom cleared, memory kept */
bool ag_buf_reserve(ag_buf_t *b, size_t extra); /* false (and oom set) on failure */
void ag_buf_append(ag_buf_t *b, const void *p, size_t n);
void ag_buf_puts(ag_buf_t *b, const char *s);
void ag_buf_putc(ag_buf_t *b, char c);
void ag_buf_printf(ag_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ag_buf_put_u64be(ag_buf_t *b, uint64_t v);
/* Appends `s` (n bytes) as a JSON string literal, quotes included: escapes `"` and `\`, writes
 * \n \r \t and \u00XX for other control characters, passes valid UTF-8 through, and replaces
 * each invalid UTF-8 byte by U+FFFD so the output is always valid JSON. */
void ag_buf_json_str(ag_buf_t *b, const char *s, size_t n);
/* Appends a float formatted the way Prometheus does in JSON and exposition text: shortest
 * round-trip digits, fixed notation unless |v| < 1e-6 or |v| >= 1e21, and NaN, +Inf, -Inf. */
typedef enum {
    AG_FLOAT_PROMETHEUS, /* Prometheus' JSON and exposition text: exponent when |v| < 1e-6 or >= 1e21 */
    AG_FLOAT_GO_G,       /* Go's fmt %v (PromQL's String()): exponent when the exponent is < -4 or >= 6 */
    AG_FLOAT_GO_F,       /* Go's FormatFloat(v, 'f', -1, 64): never an exponent (count_values) */
} ag_float_style_t;
/* Shortest round-trip digits in the given style; NaN, +Inf, -Inf and -0 as Go prints them. */
void ag_buf_float_style(ag_buf_t *b, double v, ag_float_style_t style);
void ag_buf_float(ag_buf_t *b, double v);
/* Appends a millisecond timestamp as unix seconds the way Prometheus' MarshalTimestamp does:
 * "12", "12.500", "12.345", "-1.500" (three decimals, zero padded, only when not whole). */
void ag_buf_ts_seconds(ag_buf_t *b, int64_t ms);
/* Appends one sample as the HTTP API writes it, [<ts_seconds>,"<float>"] (AG_FLOAT_PROMETHEUS),
 * with one reservation for all of it. */
void ag_buf_sample_json(ag_buf_t *b, int64_t ms, double v);
static inline bool ag_buf_ok(const ag_buf_t *b) { return !b->oom; }
/* Transfers ownership of the bytes to the caller (may be NULL when empty) and resets `b`, oom
 * included: check ag_buf_ok() first. */
char *ag_buf_steal(ag_buf_t *b, size_t *len);

#endif
