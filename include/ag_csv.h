/* ag_csv.h - the reader for `timestamp,value` CSV files used by the offline tool `augur`.
 *
 * One line at a time (the caller owns I/O and line splitting), so the reader works on a pipe of
 * any length with constant memory and reports exactly where input went wrong: every error message
 * starts with "line N:" (1-based) and ag_errmsg_t.offset is the byte offset of the problem within
 * that line.
 *
 * Format: a header naming the columns, then one row per line. The header must contain the
 * columns `timestamp` and `value` (any order, case-insensitive, surrounding spaces ignored);
 * other columns are allowed and ignored, so the tool's own output can be read back. Fields are
 * not quoted (a double quote is an error). A trailing '\r' (CRLF files) is removed. Blank lines
 * (empty or only spaces) are skipped anywhere, so a trailing blank line is fine; a file with no
 * header at all is an error (ag_csv_finish).
 *
 * Timestamps: `YYYY-MM-DD HH:MM:SS` (also with 'T' instead of the space, an optional fraction of
 * up to 9 digits and an optional trailing 'Z'; always UTC), or unix seconds as a decimal number
 * (optionally fractional, e.g. 1700000000 or 1700000000.25). Values: decimal or exponent
 * notation as strtod reads it, plus NaN, Inf, +Inf, -Inf (any case) and `stale` (the Prometheus
 * stale marker bits). Anything else, including an empty field, is an error.
 */
#ifndef AG_CSV_H
#define AG_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ag_err.h"

#define AG_CSV_MAX_COLS 64

typedef struct ag_csv {
    long line;       /* lines consumed so far */
    bool have_header;
    int ncols;       /* columns in the header */
    int ts_col, val_col;
} ag_csv_t;

/* One data row. ts/val point into the caller's line (valid until it changes) and are the fields
 * exactly as written (without the surrounding spaces), for verbatim copying. */
typedef struct ag_csv_row {
    int64_t t_ms;
    double v;
    const char *ts, *val;
    size_t ts_len, val_len;
} ag_csv_row_t;

void ag_csv_init(ag_csv_t *r);
/* Consumes one line s[0..n) without its '\n' (a trailing '\r' is ignored). Returns 1 and fills
 * *row for a data row, 0 for the header or a blank line, AG_EINVAL with "line N: ..." in *e for
 * a bad header, a wrong column count, a bad timestamp or a bad value. The reader stays usable
 * after an error (the bad line is skipped). */
int ag_csv_line(ag_csv_t *r, const char *s, size_t n, ag_csv_row_t *row, ag_errmsg_t *e);
/* At the end of input: AG_EINVAL ("line N: missing header ...") when no header was seen. */
int ag_csv_finish(const ag_csv_t *r, ag_errmsg_t *e);

/* The timestamp syntax above, to milliseconds. AG_EINVAL when malformed or out of range. */
int ag_csv_parse_time(const char *s, size_t n, int64_t *ms);
/* The value syntax above. AG_EINVAL when malformed. */
int ag_csv_parse_value(const char *s, size_t n, double *v);

#endif
