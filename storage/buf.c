/* buf.c - the growable byte buffer of ag_buf.h, plus the Prometheus-exact renderings of floats,
 * timestamps and JSON strings that the HTTP API and the exposition writer append to it.
 *
 * Out of memory is sticky: once an allocation fails the buffer sets `oom` and ignores every
 * further append, so writers check ag_buf_ok() once at the end.
 */
#include "ag_buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ag_buf_free(ag_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->oom = false;
}

void ag_buf_reset(ag_buf_t *b)
{
    b->len = 0;
    b->oom = false; /* a reset buffer starts over, including after a failed append */
    if (b->data) b->data[0] = 0;
}

bool ag_buf_reserve(ag_buf_t *b, size_t extra)
{
    if (b->oom) return false;
    if (extra > SIZE_MAX - b->len - 1) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + extra + 1; /* + the NUL terminator */
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void ag_buf_append(ag_buf_t *b, const void *p, size_t n)
{
    if (!ag_buf_reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void ag_buf_puts(ag_buf_t *b, const char *s)
{
    ag_buf_append(b, s, strlen(s));
}

void ag_buf_putc(ag_buf_t *b, char c)
{
    ag_buf_append(b, &c, 1);
}

void ag_buf_printf(ag_buf_t *b, const char *fmt, ...)
{
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true; /* an encoding error: treat like a failed write */
        return;
    }
    if (!ag_buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ag_buf_put_u64be(ag_buf_t *b, uint64_t v)
{
    unsigned char tmp[8];
    for (int i = 7; i >= 0; i--) {
        tmp[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    ag_buf_append(b, tmp, sizeof tmp);
}

/* Decodes one UTF-8 sequence at s[0..n) (n >= 1). Returns its length, or 0 when the bytes at s
 * do not start a well-formed sequence (overlong forms, surrogates and values above U+10FFFF are
 * ill-formed). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    return len;
}

void ag_buf_json_str(ag_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    ag_buf_putc(b, '"');
    size_t i = 0;
    while (i < n && !b->oom) {
        /* Copy the longest run that needs no escaping in one go. */
        size_t start = i;
        while (i < n && u[i] >= 0x20 && u[i] < 0x80 && u[i] != '"' && u[i] != '\\') i++;
        if (i > start) ag_buf_append(b, s + start, i - start);
        if (i >= n) break;
        unsigned c = u[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            ag_buf_append(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            if (c == '\n') {
                ag_buf_append(b, "\\n", 2);
            } else if (c == '\r') {
                ag_buf_append(b, "\\r", 2);
            } else if (c == '\t') {
                ag_buf_append(b, "\\t", 2);
            } else {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                ag_buf_append(b, esc, 6);
            }
            i++;
        } else {
            size_t l = utf8_seq_len(u + i, n - i);
            if (l == 0) {
                ag_buf_append(b, "\xef\xbf\xbd", 3); /* U+FFFD for one invalid byte */
                i++;
            } else {
                ag_buf_append(b, s + i, l);
                i += l;
            }
        }
    }
    ag_buf_putc(b, '"');
}

/* The shortest decimal digits that round-trip to v (v finite and non-zero; sign ignored).
 * Writes the digits (no dot, no sign) to `digits` (at least 18 bytes) and returns their count;
 * *exp10 receives the decimal exponent of the first digit, so v = 0.d1d2d3... * 10^(exp10+1). */
/* The shortest decimal digits that read back as v (what Go's strconv picks), and the power of
 * ten of the first digit. The correctly rounded p-digit decimal only gets closer to v as p grows,
 * so "p digits read back" is monotonic in p and a binary search over 1..17 finds the shortest
 * with about four format-and-parse rounds instead of up to seventeen. Integers below 2^53 are
 * exact and skip the search. */
static int shortest_digits(double v, char *digits, int *exp10)
{
    char tmp[40], best[40];
    double a = fabs(v);
    int nd = 0;
    if (a < 9007199254740992.0 && a == floor(a)) {
        uint64_t n = (uint64_t)a;
        char r[24];
        int k = 0;
        while (n) {
            r[k++] = (char)('0' + n % 10);
            n /= 10;
        }
        for (int i = 0; i < k; i++) digits[i] = r[k - 1 - i];
        nd = k;
        *exp10 = k - 1;
    } else {
        snprintf(best, sizeof best, "%.16e", a);
        int lo = 1, hi = 17; /* 17 digits always read back */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            snprintf(tmp, sizeof tmp, "%.*e", mid - 1, a);
            if (strtod(tmp, NULL) == a) {
                hi = mid;
                memcpy(best, tmp, sizeof best);
            } else {
                lo = mid + 1;
            }
        }
        /* best is "d.ddddde[+-]XX" or "de[+-]XX". */
        const char *q = best;
        for (; *q && *q != 'e'; q++)
            if (*q >= '0' && *q <= '9') digits[nd++] = *q;
        *exp10 = (*q == 'e') ? atoi(q + 1) : 0;
    }
    while (nd > 1 && digits[nd - 1] == '0') nd--; /* "%.*e" may pad with zeros */
    digits[nd] = 0;
    return nd;
}

void ag_buf_float_style(ag_buf_t *b, double v, ag_float_style_t style)
{
    if (isnan(v)) {
        ag_buf_append(b, "NaN", 3);
        return;
    }
    if (isinf(v)) {
        ag_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == 0) {
        ag_buf_puts(b, signbit(v) ? "-0" : "0");
        return;
    }
    char d[24];
    int e;
    int nd = shortest_digits(v, d, &e);
    char out[400];
    size_t o = 0;
    if (v < 0) out[o++] = '-';
    double a = fabs(v);
    bool expo = style == AG_FLOAT_GO_G   ? (e < -4 || e >= 6)
                : style == AG_FLOAT_GO_F ? false
                                         : (a < 1e-6 || a >= 1e21);
    if (expo) {
        /* Go's 'e' format: d[.ddd]e±XX with at least two exponent digits. */
        out[o++] = d[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, d + 1, (size_t)nd - 1);
            o += (size_t)nd - 1;
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    } else {
        int dp = e + 1; /* digits before the decimal point */
        if (dp <= 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -dp; i++) out[o++] = '0';
            memcpy(out + o, d, (size_t)nd);
            o += (size_t)nd;
        } else if (dp >= nd) {
            memcpy(out + o, d, (size_t)nd);
            o += (size_t)nd;
            for (int i = nd; i < dp; i++) out[o++] = '0';
        } else {
            memcpy(out + o, d, (size_t)dp);
            o += (size_t)dp;
            out[o++] = '.';
            memcpy(out + o, d + dp, (size_t)(nd - dp));
            o += (size_t)(nd - dp);
        }
    }
    ag_buf_append(b, out, o);
}

void ag_buf_float(ag_buf_t *b, double v) { ag_buf_float_style(b, v, AG_FLOAT_PROMETHEUS); }

void ag_buf_ts_seconds(ag_buf_t *b, int64_t ms)
{
    /* Prometheus' MarshalTimestamp: seconds, then "." and the three-digit millisecond remainder
     * (zero padded, trailing zeros kept) when it is not zero. */
    char out[32];
    size_t o = 0;
    uint64_t u = (uint64_t)ms;
    if (ms < 0) {
        out[o++] = '-';
        u = 0 - u;
    }
    uint64_t frac = u % 1000;
    o += (size_t)snprintf(out + o, sizeof out - o, "%llu", (unsigned long long)(u / 1000));
    if (frac) o += (size_t)snprintf(out + o, sizeof out - o, ".%03u", (unsigned)frac);
    ag_buf_append(b, out, o);
}

char *ag_buf_steal(ag_buf_t *b, size_t *len)
{
    char *p = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->oom = false;
    return p;
}
