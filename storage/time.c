/* time.c - parsing and formatting of the time and duration syntax of Prometheus' HTTP API and
 * PromQL (see ag_time.h), following Prometheus 2.42 (web/api/v1/api.go parseTime/parseDuration,
 * prometheus/common model.ParseDuration and model.Duration.String).
 */
#include "ag_time.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int64_t ag_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes s as a Go %q-style quoted string into out (truncating long input), for messages. */
static void quote_for_msg(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, n = strlen(s);
    if (outlen < 8) {
        if (outlen) out[0] = 0;
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 6 >= outlen - 1) break;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c == '\t') {
            out[o++] = '\\';
            out[o++] = 't';
        } else if (c == '\r') {
            out[o++] = '\\';
            out[o++] = 'r';
        } else if (c < 0x20 || c == 0x7f) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c; /* UTF-8 passes through; the JSON writer repairs invalid bytes */
        }
    }
    out[o++] = '"';
    out[o] = 0;
}

/* Go's strconv.ParseFloat(s, 64) for a whole string: decimal or hexadecimal (with a p exponent)
 * floating point syntax, optional sign, underscores between digits, "inf", "infinity" and "nan"
 * in any case. Returns 0 on success, 1 on a syntax error, 2 when the value overflows. */
static int go_parse_float(const char *s, double *out)
{
    size_t n = strlen(s), i = 0;
    if (n == 0) return 1;
    bool neg = false;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i = 1;
    }
    const char *r = s + i;
    if (strcasecmp(r, "inf") == 0 || strcasecmp(r, "infinity") == 0) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    if (i == 0 && strcasecmp(r, "nan") == 0) {
        *out = NAN;
        return 0;
    }
    bool hex = false;
    if (n - i >= 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        hex = true;
        i += 2;
    }
    bool digits = false, dot = false, underscores = false;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '_') {
            underscores = true;
        } else if (c == '.') {
            if (dot) break;
            dot = true;
        } else if ((c >= '0' && c <= '9') ||
                   (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))) {
            digits = true;
        } else {
            break;
        }
    }
    if (!digits) return 1;
    char expc = hex ? 'p' : 'e';
    if (i < n && (s[i] | 0x20) == expc) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || s[i] < '0' || s[i] > '9') return 1;
        for (; i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'); i++)
            if (s[i] == '_') underscores = true;
    } else if (hex) {
        return 1; /* a hexadecimal mantissa requires a p exponent */
    }
    if (i != n) return 1;
    if (underscores) {
        /* Go's underscoreOK: an underscore must sit between digits (or after a base prefix). */
        size_t j = (s[0] == '+' || s[0] == '-') ? 1 : 0;
        char saw = '^';
        if (hex) {
            j += 2;
            saw = '0';
        }
        for (; j < n; j++) {
            char c = s[j];
            bool dig = (c >= '0' && c <= '9') ||
                       (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')));
            if (dig) {
                saw = '0';
            } else if (c == '_') {
                if (saw != '0') return 1;
                saw = '_';
            } else {
                if (saw == '_') return 1;
                saw = '!';
            }
        }
        if (saw == '_') return 1;
    }
    char buf[512];
    if (n >= sizeof buf) {
        /* Very long numbers: strtod copes with them directly when there are no underscores. */
        if (underscores) return 1;
        *out = strtod(s, NULL);
    } else {
        size_t o = 0;
        for (size_t j = 0; j < n; j++)
            if (s[j] != '_') buf[o++] = s[j];
        buf[o] = 0;
        *out = strtod(buf, NULL);
    }
    if (isinf(*out)) return 2; /* underflow to zero is not an error in Go */
    return 0;
}

/* Unit table of model.ParseDuration, longest first. */
static const struct {
    const char *name;
    int64_t ms;
} duration_units[] = {
    {"y", 1000LL * 60 * 60 * 24 * 365}, {"w", 1000LL * 60 * 60 * 24 * 7},
    {"d", 1000LL * 60 * 60 * 24},       {"h", 1000LL * 60 * 60},
    {"m", 1000LL * 60},                 {"s", 1000},
    {"ms", 1},
};

int ag_parse_duration(const char *s, int64_t *ms, ag_errmsg_t *e)
{
    char q[96];
    if (strcmp(s, "0") == 0) { /* model.ParseDuration allows 0 without a unit */
        *ms = 0;
        return AG_OK;
    }
    if (s[0] == 0) return ag_errmsg_set(e, AG_EINVAL, 0, "empty duration string");
    size_t i = 0, n = strlen(s);
    int last = -1;
    int64_t total_ns = 0;
    bool overflow = false;
    while (i < n) {
        size_t d0 = i;
        int64_t v = 0;
        bool big = false;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (v > (INT64_MAX - 9) / 10) big = true;
            else v = v * 10 + (s[i] - '0');
            i++;
        }
        if (i == d0 || i >= n) goto invalid;
        int unit;
        if (s[i] == 'm' && i + 1 < n && s[i + 1] == 's') {
            unit = 6;
            i += 2;
        } else {
            const char *units = "ywdhms";
            const char *p = strchr(units, s[i]);
            if (!p) goto invalid;
            unit = (int)(p - units);
            i++;
        }
        if (unit <= last) goto invalid;
        last = unit;
        /* The overflow rule of model.ParseDuration, which works in nanoseconds. */
        int64_t mult = duration_units[unit].ms;
        if (big || v > INT64_MAX / mult / 1000000) {
            overflow = true;
            continue;
        }
        int64_t add = v * mult * 1000000;
        if (__builtin_add_overflow(total_ns, add, &total_ns)) overflow = true;
    }
    if (overflow) return ag_errmsg_set(e, AG_EINVAL, 0, "duration out of range");
    *ms = total_ns / 1000000;
    return AG_OK;
invalid:
    quote_for_msg(s, q, sizeof q);
    return ag_errmsg_set(e, AG_EINVAL, (long)i, "not a valid duration string: %s", q);
}

int ag_parse_api_duration(const char *s, int64_t *ms, ag_errmsg_t *e)
{
    char q[96];
    double d;
    quote_for_msg(s, q, sizeof q);
    if (go_parse_float(s, &d) == 0) {
        if (isnan(d)) return ag_errmsg_set(e, AG_EINVAL, 0, "cannot parse %s to a valid duration", q);
        double ns = d * 1e9;
        if (ns >= 9223372036854775808.0 || ns < -9223372036854775808.0)
            return ag_errmsg_set(e, AG_EINVAL, 0,
                                 "cannot parse %s to a valid duration. It overflows int64", q);
        /* time.Duration(ns) truncates, and so does the conversion to milliseconds. */
        *ms = (int64_t)ns / 1000000;
        return AG_OK;
    }
    if (ag_parse_duration(s, ms, NULL) == AG_OK) return AG_OK;
    return ag_errmsg_set(e, AG_EINVAL, 0, "cannot parse %s to a valid duration", q);
}

static int64_t clamp_ms(int64_t v)
{
    if (v < AG_TIME_MIN_MS) return AG_TIME_MIN_MS;
    if (v > AG_TIME_MAX_MS) return AG_TIME_MAX_MS;
    return v;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). Valid for
 * |y| < 2^50 or so, which the caller guarantees. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Reads exactly `width` digits (or 1..width when !fixed) at s[*i]. */
static bool read_num(const char *s, size_t *i, int width, bool fixed, int *out)
{
    int v = 0, k = 0;
    while (k < width && s[*i + (size_t)k] >= '0' && s[*i + (size_t)k] <= '9') {
        v = v * 10 + (s[*i + (size_t)k] - '0');
        k++;
    }
    if (k == 0 || (fixed && k != width)) return false;
    *i += (size_t)k;
    *out = v;
    return true;
}

/* RFC 3339 with optional fraction (up to nanoseconds; more digits are ignored as Go does) and a
 * Z or +hh:mm offset, like Go's time.Parse(time.RFC3339Nano, s). As an extension, years may have
 * a sign or more than four digits; such far-away times clamp to AG_TIME_MIN_MS/AG_TIME_MAX_MS. */
static bool parse_rfc3339(const char *s, int64_t *ms)
{
    size_t i = 0;
    bool yneg = false;
    if (s[0] == '-' || s[0] == '+') {
        yneg = s[0] == '-';
        i = 1;
    }
    size_t y0 = i;
    int64_t year = 0;
    bool ybig = false;
    while (s[i] >= '0' && s[i] <= '9') {
        if (year > 100000000000000LL) ybig = true; /* beyond any representable millisecond */
        else year = year * 10 + (s[i] - '0');
        i++;
    }
    if (i - y0 < 4) return false;
    if (yneg) year = -year;
    int mon, day, hour, min, sec;
    if (s[i++] != '-' || !read_num(s, &i, 2, true, &mon)) return false;
    if (s[i++] != '-' || !read_num(s, &i, 2, true, &day)) return false;
    if (s[i++] != 'T' || !read_num(s, &i, 2, false, &hour)) return false;
    if (s[i++] != ':' || !read_num(s, &i, 2, true, &min)) return false;
    if (s[i++] != ':' || !read_num(s, &i, 2, true, &sec)) return false;
    int64_t nsec = 0;
    if ((s[i] == '.' || s[i] == ',') && s[i + 1] >= '0' && s[i + 1] <= '9') {
        i++;
        int k = 0;
        while (s[i] >= '0' && s[i] <= '9') {
            if (k < 9) {
                nsec = nsec * 10 + (s[i] - '0');
                k++;
            }
            i++;
        }
        for (; k < 9; k++) nsec *= 10;
    }
    int64_t off = 0;
    if (s[i] == 'Z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        int sign = s[i] == '-' ? -1 : 1, oh, om;
        i++;
        if (!read_num(s, &i, 2, true, &oh) || s[i++] != ':' || !read_num(s, &i, 2, true, &om))
            return false;
        if (oh > 23 || om > 59) return false;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return false;
    }
    if (s[i] != 0) return false;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mon < 1 || mon > 12 || hour > 23 || min > 59 || sec > 59) return false;
    int dim = mdays[mon - 1] + (mon == 2 && is_leap(year));
    if (day < 1 || day > dim) return false;
    if (ybig || year > 300000000000LL || year < -300000000000LL) {
        *ms = yneg ? AG_TIME_MIN_MS : AG_TIME_MAX_MS;
        return true;
    }
    int64_t days = days_from_civil(year, mon, day);
    int64_t secs, msv;
    if (__builtin_mul_overflow(days, (int64_t)86400, &secs) ||
        __builtin_add_overflow(secs, (int64_t)(hour * 3600 + min * 60 + sec) - off, &secs) ||
        __builtin_mul_overflow(secs, (int64_t)1000, &msv) ||
        __builtin_add_overflow(msv, nsec / 1000000, &msv)) {
        *ms = year < 1970 ? AG_TIME_MIN_MS : AG_TIME_MAX_MS;
        return true;
    }
    *ms = clamp_ms(msv);
    return true;
}

int ag_parse_api_time(const char *s, int64_t *ms, ag_errmsg_t *e)
{
    char q[96];
    double t;
    if (go_parse_float(s, &t) == 0 && !isnan(t)) {
        /* Prometheus: whole seconds, plus the fraction rounded to milliseconds. Values beyond the
         * sentinel range (including infinities) clamp to it. */
        if (t >= 9.2e15 || t <= -9.2e15) {
            *ms = t > 0 ? AG_TIME_MAX_MS : AG_TIME_MIN_MS;
            return AG_OK;
        }
        /* Exactly Go's arithmetic: s, f := math.Modf(t); f = math.Round(f*1000)/1000;
         * time.Unix(int64(s), int64(f*1e9)), then milliseconds. */
        double whole = trunc(t);
        double fr = round((t - whole) * 1000) / 1000;
        int64_t sec = (int64_t)whole, nsec = (int64_t)(fr * 1e9);
        if (nsec < 0 || nsec >= 1000000000) {
            int64_t k = nsec / 1000000000;
            sec += k;
            nsec -= k * 1000000000;
            if (nsec < 0) {
                nsec += 1000000000;
                sec--;
            }
        }
        *ms = clamp_ms(sec * 1000 + nsec / 1000000);
        return AG_OK;
    }
    /* The exact strings Go prints for Prometheus' MinTime and MaxTime (what its clients send). */
    if (strcmp(s, "-292273086-05-16T16:47:06Z") == 0) {
        *ms = AG_TIME_MIN_MS;
        return AG_OK;
    }
    if (strcmp(s, "292277026596-12-04T15:30:07.999999999Z") == 0) {
        *ms = AG_TIME_MAX_MS;
        return AG_OK;
    }
    if (parse_rfc3339(s, ms)) return AG_OK;
    quote_for_msg(s, q, sizeof q);
    return ag_errmsg_set(e, AG_EINVAL, 0, "cannot parse %s to a valid timestamp", q);
}

void ag_format_duration(int64_t ms, char *out, int outlen)
{
    if (outlen <= 0) return;
    if (ms == 0) {
        snprintf(out, (size_t)outlen, "0s");
        return;
    }
    char tmp[64];
    size_t o = 0;
    uint64_t u = (uint64_t)ms;
    if (ms < 0) {
        tmp[o++] = '-';
        u = 0 - u;
    }
    for (size_t k = 0; k < sizeof duration_units / sizeof duration_units[0]; k++) {
        uint64_t mult = (uint64_t)duration_units[k].ms;
        /* Years and weeks only when they divide the rest exactly ("90d", not "12w6d"). */
        if (k < 2 && u % mult != 0) continue;
        uint64_t v = u / mult;
        if (v > 0) {
            o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%llu%s", (unsigned long long)v,
                                  duration_units[k].name);
            u -= v * mult;
        }
    }
    snprintf(out, (size_t)outlen, "%s", tmp);
}

void ag_rfc3339(int64_t ms, char *out, size_t outlen)
{
    int64_t sec = ms / 1000, frac = ms % 1000;
    if (frac < 0) frac += 1000, sec--;
    time_t tt = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        snprintf(out, outlen, "1970-01-01T00:00:00Z");
        return;
    }
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac) snprintf(out, outlen, "%s.%03dZ", base, (int)frac);
    else snprintf(out, outlen, "%sZ", base);
}
