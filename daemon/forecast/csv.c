/* csv.c - the `timestamp,value` CSV reader of the offline tool (contract: include/ag_csv.h).
 *
 * Line-at-a-time and allocation-free: the caller splits lines (so a pipe of any length needs
 * constant memory) and the reader only remembers which columns hold the timestamp and the value.
 * Fields are parsed from (pointer, length) pairs and never rely on a terminating NUL, so the
 * fuzzer can hand over arbitrary bytes; numbers are copied into a small bounded buffer before
 * strtod, which needs one.
 */
#include "ag_csv.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void ag_csv_init(ag_csv_t *r)
{
    memset(r, 0, sizeof *r);
    r->ts_col = r->val_col = -1;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

static bool eq_nocase(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, size_t at, size_t count, unsigned *out)
{
    if (at + count > n) return false;
    unsigned v = 0;
    for (size_t i = 0; i < count; i++) {
        if (!isdigit((unsigned char)s[at + i])) return false;
        v = v * 10 + (unsigned)(s[at + i] - '0');
    }
    *out = v;
    return true;
}

static int parse_number(const char *s, size_t n, double *v)
{
    char tmp[128];
    if (n == 0 || n >= sizeof tmp) return AG_EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    /* strtod accepts hex floats, "infinity", "nan(...)" and leading spaces: be stricter */
    for (size_t i = 0; i < n; i++) {
        char c = tmp[i];
        if (!(isdigit((unsigned char)c) || c == '.' || c == '-' || c == '+' || c == 'e' ||
              c == 'E'))
            return AG_EINVAL;
    }
    char *end;
    errno = 0;
    double x = strtod(tmp, &end);
    if (end != tmp + n) return AG_EINVAL;
    if (errno == ERANGE && isinf(x)) return AG_EINVAL;
    *v = x;
    return AG_OK;
}

int ag_csv_parse_time(const char *s, size_t n, int64_t *ms)
{
    trim(&s, &n);
    unsigned Y, M, D, h, mi, sec;
    if (n >= 19 && digits(s, n, 0, 4, &Y) && s[4] == '-' && digits(s, n, 5, 2, &M) &&
        s[7] == '-' && digits(s, n, 8, 2, &D) && (s[10] == ' ' || s[10] == 'T') &&
        digits(s, n, 11, 2, &h) && s[13] == ':' && digits(s, n, 14, 2, &mi) && s[16] == ':' &&
        digits(s, n, 17, 2, &sec)) {
        static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || mi > 59 || sec > 60)
            return AG_EINVAL;
        bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
        if (M == 2 && D == 29 && !leap) return AG_EINVAL;
        size_t i = 19;
        int64_t frac_ms = 0;
        if (i < n && s[i] == '.') {
            size_t j = i + 1;
            int64_t scale = 100;
            while (j < n && isdigit((unsigned char)s[j])) {
                if (j - i > 9) return AG_EINVAL;
                frac_ms += (s[j] - '0') * scale;
                scale /= 10;
                j++;
            }
            if (j == i + 1) return AG_EINVAL;
            i = j;
        }
        if (i < n && s[i] == 'Z') i++;
        if (i != n) return AG_EINVAL;
        int64_t days = days_from_civil(Y, M, D);
        *ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + frac_ms;
        return AG_OK;
    }
    double x;
    if (parse_number(s, n, &x)) return AG_EINVAL;
    if (!(fabs(x) < 9.0e12)) return AG_EINVAL; /* about +-285000 years */
    *ms = (int64_t)llround(x * 1000.0);
    return AG_OK;
}

int ag_csv_parse_value(const char *s, size_t n, double *v)
{
    trim(&s, &n);
    if (eq_nocase(s, n, "nan")) {
        *v = NAN;
        return AG_OK;
    }
    if (eq_nocase(s, n, "inf") || eq_nocase(s, n, "+inf")) {
        *v = INFINITY;
        return AG_OK;
    }
    if (eq_nocase(s, n, "-inf")) {
        *v = -INFINITY;
        return AG_OK;
    }
    if (eq_nocase(s, n, "stale")) {
        uint64_t u = 0x7ff0000000000002ULL;
        memcpy(v, &u, sizeof *v);
        return AG_OK;
    }
    return parse_number(s, n, v);
}

/* Splits s[0..n) at commas into at most AG_CSV_MAX_COLS fields; returns the count or -1. */
static int split(const char *s, size_t n, const char **f, size_t *fl)
{
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ',') {
            if (k == AG_CSV_MAX_COLS) return -1;
            f[k] = s + start;
            fl[k] = i - start;
            k++;
            start = i + 1;
        }
    }
    return k;
}

static void clip_text(char *out, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        out[k++] = isprint((unsigned char)s[i]) ? s[i] : '?';
    out[k] = 0;
}

int ag_csv_line(ag_csv_t *r, const char *s, size_t n, ag_csv_row_t *row, ag_errmsg_t *e)
{
    r->line++;
    if (n && s[n - 1] == '\r') n--;
    const char *f[AG_CSV_MAX_COLS];
    size_t fl[AG_CSV_MAX_COLS];
    {
        const char *t = s;
        size_t tn = n;
        trim(&t, &tn);
        if (tn == 0) return 0;
    }
    const char *q = memchr(s, '"', n);
    if (q)
        return ag_errmsg_set(e, AG_EINVAL, (long)(q - s), "line %ld: quoted fields are not supported",
                             r->line);
    int k = split(s, n, f, fl);
    if (k < 0)
        return ag_errmsg_set(e, AG_EINVAL, 0, "line %ld: more than %d columns", r->line,
                             AG_CSV_MAX_COLS);
    if (!r->have_header) {
        int tc = -1, vc = -1;
        for (int i = 0; i < k; i++) {
            const char *x = f[i];
            size_t xn = fl[i];
            trim(&x, &xn);
            if (tc < 0 && eq_nocase(x, xn, "timestamp")) tc = i;
            else if (vc < 0 && eq_nocase(x, xn, "value")) vc = i;
        }
        if (tc < 0 || vc < 0) {
            char shown[48];
            clip_text(shown, sizeof shown, s, n);
            return ag_errmsg_set(e, AG_EINVAL, 0,
                                 "line %ld: missing header: expected columns \"timestamp,value\", "
                                 "got \"%s\"", r->line, shown);
        }
        r->have_header = true;
        r->ncols = k;
        r->ts_col = tc;
        r->val_col = vc;
        return 0;
    }
    if (k != r->ncols)
        return ag_errmsg_set(e, AG_EINVAL, 0, "line %ld: %d columns, the header has %d", r->line,
                             k, r->ncols);
    const char *ts = f[r->ts_col], *val = f[r->val_col];
    size_t tsn = fl[r->ts_col], valn = fl[r->val_col];
    trim(&ts, &tsn);
    trim(&val, &valn);
    char shown[48];
    if (ag_csv_parse_time(ts, tsn, &row->t_ms)) {
        clip_text(shown, sizeof shown, ts, tsn);
        return ag_errmsg_set(e, AG_EINVAL, (long)(ts - s),
                             "line %ld: bad timestamp \"%s\" (want YYYY-MM-DD HH:MM:SS or unix "
                             "seconds)", r->line, shown);
    }
    if (ag_csv_parse_value(val, valn, &row->v)) {
        clip_text(shown, sizeof shown, val, valn);
        return ag_errmsg_set(e, AG_EINVAL, (long)(val - s), "line %ld: bad value \"%s\" (not a number)",
                             r->line, shown);
    }
    row->ts = ts;
    row->ts_len = tsn;
    row->val = val;
    row->val_len = valn;
    return 1;
}

int ag_csv_finish(const ag_csv_t *r, ag_errmsg_t *e)
{
    if (!r->have_header)
        return ag_errmsg_set(e, AG_EINVAL, -1,
                             "line %ld: missing header: expected \"timestamp,value\" (empty input)",
                             r->line + 1);
    return AG_OK;
}
