/* buf.c - the growable byte buffer of ag_buf.h, plus the Prometheus-exact renderings of floats,
 * timestamps and JSON strings that the HTTP API and the exposition writer append to it.
 *
 * Out of memory is sticky: once an allocation fails the buffer sets `oom` and ignores every
 * further append, so writers check ag_buf_ok() once at the end.
 *
 * Floats get the shortest decimal digits that read back as the same double, the nearest such
 * when several have that length (Go's strconv.FormatFloat(v, 'f'/'e', -1, 64)). Integers below
 * 2^53 are printed directly; everything else goes through Schubfach (R. Giulietti, "The Schubfach
 * way to render doubles", 2020, written here from the paper): one 64x128-bit multiplication
 * each for v and its two rounding bounds scaled by 10^-k, then at most four integer comparisons
 * pick the shortest candidate, with no loop over precision and no snprintf/strtod. The table of
 * 617 128-bit powers of ten is computed at first use with exact big-integer arithmetic
 * (pthread_once), which also verifies the floor-log approximations. The previous method, a binary
 * search over precision with "%.*e" and strtod, remains as the fallback for the few powers of
 * two where it printed a longer string than the true shortest (kept for byte-identical output),
 * and in case the table self-check ever failed.
 */
#include "ag_buf.h"

#include <math.h>
#include <pthread.h>
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

/* ---- Shortest round-trip digits (Schubfach) -------------------------------------------------
 *
 * v = c * 2^q with c < 2^53. Every real in the rounding interval R = [v - u/2, v + u'/2] (u, u'
 * the gaps to v's neighbours; bounds included when c is even, as strtod breaks ties to even)
 * reads back as v. Following Giulietti's Schubfach, pick k = floor(log10(|R|)) so that the
 * interval, measured in units of 10^k, is between 1 and 10 wide: it then holds at least one
 * integer and at most one multiple of ten. With vb, vbl, vbr = 4 * (v, lower, upper bound) / 10^k
 * rounded to odd (exact enough for every comparison below), s = floor(v / 10^k) and:
 *   - if exactly one of the multiples of ten around s lies in R, it is the unique shortest;
 *   - else if exactly one of s, s+1 lies in R, it is the unique candidate of that length;
 *   - else both do and the one nearer v wins (ties to even, as "%.*e" rounds).
 * 10^-k comes as g = floor(10^-k * 2^-r) + 1 in [2^125, 2^126]: these 617 values are computed at
 * first use with exact big-integer arithmetic (p10_init), which also checks the floor-log
 * approximations used below; should a check fail, the snprintf/strtod search is used instead. */

#define P10_MIN (-292) /* g is needed for 10^e, e = -k in [-292, 324] */
#define P10_MAX 324

typedef struct {
    uint64_t hi, lo; /* g = hi * 2^64 + lo */
} p10_t;

static p10_t p10_tab[P10_MAX - P10_MIN + 1];
static bool p10_ok;
static pthread_once_t p10_once = PTHREAD_ONCE_INIT;

/* floor(e * log2(10)) for |e| <= 1233 via floor(log2(10) * 2^19) = 1741647; checked at init. */
static inline int flog2pow10(int e) { return (int)(((int64_t)e * 1741647) >> 19); }
/* floor(q * log10(2)) via floor(log10(2) * 2^41) = 661971961083; checked at init. */
static inline int flog10pow2(int q) { return (int)(((int64_t)q * 661971961083LL) >> 41); }
/* floor(log10(3/4 * 2^q)) = floor(q * log10(2) - log10(4/3)), log10(4/3) * 2^41 ~ 274743187321;
 * used only for powers of two, all of which the unit tests render and compare. */
static inline int flog10_3q_pow2(int q) { return (int)(((int64_t)q * 661971961083LL - 274743187321LL) >> 41); }

/* Unsigned big integers for p10_init: little-endian 32-bit words. 2^(126 + 970) is the biggest. */
typedef struct {
    uint32_t w[40];
    int n;
} big_t;

static void big_set_pow2(big_t *x, int p)
{
    memset(x, 0, sizeof *x);
    x->w[p / 32] = (uint32_t)1 << (p % 32);
    x->n = p / 32 + 1;
}

static void big_mul_small(big_t *x, uint32_t m)
{
    uint64_t carry = 0;
    for (int i = 0; i < x->n; i++) {
        uint64_t t = (uint64_t)x->w[i] * m + carry;
        x->w[i] = (uint32_t)t;
        carry = t >> 32;
    }
    if (carry) x->w[x->n++] = (uint32_t)carry;
}

static void big_div_small(big_t *x, uint32_t d) /* x = floor(x / d) */
{
    uint64_t rem = 0;
    for (int i = x->n - 1; i >= 0; i--) {
        uint64_t t = (rem << 32) | x->w[i];
        x->w[i] = (uint32_t)(t / d);
        rem = t % d;
    }
    while (x->n > 0 && x->w[x->n - 1] == 0) x->n--;
}

static int big_bitlen(const big_t *x)
{
    if (x->n == 0) return 0;
    uint32_t top = x->w[x->n - 1];
    int b = 0;
    while (top) {
        b++;
        top >>= 1;
    }
    return (x->n - 1) * 32 + b;
}

/* floor(x / 2^r) for r >= 0, or x * 2^-r for r < 0; the result must be below 2^128. */
static unsigned __int128 big_shift(const big_t *x, int r)
{
    unsigned __int128 acc = 0;
    if (r < 0) {
        for (int i = x->n - 1; i >= 0; i--) acc = (acc << 32) | x->w[i];
        return acc << -r;
    }
    for (int bit = r + 127; bit >= r; bit--) {
        int i = bit / 32;
        acc <<= 1;
        if (i < x->n) acc |= (x->w[i] >> (bit % 32)) & 1;
    }
    return acc;
}

static void p10_store(int e, unsigned __int128 g)
{
    p10_tab[e - P10_MIN].hi = (uint64_t)(g >> 64);
    p10_tab[e - P10_MIN].lo = (uint64_t)g;
}

static void p10_init(void)
{
    /* exact floor(e * log2(10)) for e in [-324, 324]: 10^m has bitlen(10^m) bits and, m > 0,
     * is not a power of two, so floor(m log2 10) = bitlen - 1 and floor(-m log2 10) = -bitlen. */
    static int ex[2 * 324 + 2];
    int *E = ex + 324;
    bool ok = true;
    big_t x;
    big_set_pow2(&x, 0); /* x = 10^e */
    for (int e = 0; e <= 324; e++) {
        int bl = big_bitlen(&x);
        E[e] = bl - 1;
        if (e > 0) E[-e] = -bl;
        int r = E[e] - 125; /* g = floor(10^e / 2^r) + 1 */
        p10_store(e, big_shift(&x, r) + 1);
        big_mul_small(&x, 10);
    }
    for (int m = 1; m <= -P10_MIN; m++) { /* g = floor(2^(bitlen(10^m) + 125) / 10^m) + 1 */
        big_set_pow2(&x, -E[-m] + 125);
        int left = m;
        for (; left >= 9; left -= 9) big_div_small(&x, 1000000000u); /* floor(floor(a/b)/c) = floor(a/bc) */
        uint32_t d = 1;
        while (left-- > 0) d *= 10;
        big_div_small(&x, d);
        p10_store(-m, big_shift(&x, 0) + 1);
    }
    for (int e = -324; e <= 324; e++) ok = ok && flog2pow10(e) == E[e];
    /* k = floor(q log10 2) iff 10^k <= 2^q < 10^(k+1) iff k log2 10 <= q < (k+1) log2 10; for
     * j != 0, j log2 10 is irrational, so j log2 10 <= q iff E[j] < q and q < j log2 10 iff
     * q <= E[j]. */
    for (int q = -1074; q <= 971; q++) {
        int k = flog10pow2(q);
        if (k < -324 || k > 323) {
            ok = false;
            break;
        }
        ok = ok && (k == 0 ? q >= 0 : E[k] < q) && (k == -1 ? q < 0 : q <= E[k + 1]);
        /* the scaled c << h must fit in 64 bits: h in [2, 5] */
        int h = q + flog2pow10(-k) + 2;
        ok = ok && h >= 2 && h <= 5;
    }
    for (int e = P10_MIN; e <= P10_MAX; e++) {
        const p10_t *p = &p10_tab[e - P10_MIN];
        ok = ok && p->hi >= ((uint64_t)1 << 61) && p->hi <= ((uint64_t)1 << 62);
    }
    p10_ok = ok;
}

/* Round-to-odd of x' = g * cp / 2^127, an over-estimate of the exact x = cp * 2^(q-h) / 10^k by
 * less than 2^-64 (g is 10^-k * 2^-r rounded up, relative error < 2^-125, and x < 2^61). It looks
 * at x' to 63 fractional bits only, that is at floor(g * cp / 2^64): an integer x then comes out
 * exact, and a non-integer x is never within 2^-63 of an integer (Giulietti's lemma), so the
 * result is floor(x), with the lowest bit set when x is not an integer. */
static inline uint64_t rop(const p10_t *g, uint64_t cp)
{
    unsigned __int128 m = (unsigned __int128)g->hi * cp + (uint64_t)(((unsigned __int128)g->lo * cp) >> 64);
    return (uint64_t)(m >> 63) | ((((uint64_t)m & (((uint64_t)1 << 63) - 1)) + (((uint64_t)1 << 63) - 1)) >> 63);
}

/* "00" .. "99": two digits per division. */
static const char two_digits[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* The number of decimal digits of n (1 for 0). */
static inline int dec_len(uint64_t n)
{
    static const uint64_t pow10[20] = {1ULL,
                                       10ULL,
                                       100ULL,
                                       1000ULL,
                                       10000ULL,
                                       100000ULL,
                                       1000000ULL,
                                       10000000ULL,
                                       100000000ULL,
                                       1000000000ULL,
                                       10000000000ULL,
                                       100000000000ULL,
                                       1000000000000ULL,
                                       10000000000000ULL,
                                       100000000000000ULL,
                                       1000000000000000ULL,
                                       10000000000000000ULL,
                                       100000000000000000ULL,
                                       1000000000000000000ULL,
                                       10000000000000000000ULL};
    int bits = 64 - __builtin_clzll(n | 1);
    int d = (bits * 1233) >> 12; /* floor(log10(2^bits)), then one more when n reaches it */
    return d + (d < 20 && n >= pow10[d]) + (n == 0);
}

/* Writes the nd = dec_len(n) digits of n to dst, two per division, from the last one. */
static inline void put_dec(char *dst, uint64_t n, int nd)
{
    char *end = dst + nd;
    while (n >= 100) {
        end -= 2;
        memcpy(end, two_digits + 2 * (n % 100), 2);
        n /= 100;
    }
    if (n >= 10) memcpy(end - 2, two_digits + 2 * n, 2);
    else end[-1] = (char)('0' + n);
}

/* Writes the decimal digits of n > 0 (without trailing zeros) and sets *exp10 to the power of
 * ten of the first one, given n * 10^e. */
static int put_digits(uint64_t n, int e, char *digits, int *exp10)
{
    while (n % 10000 == 0) {
        n /= 10000;
        e += 4;
    }
    while (n % 10 == 0) {
        n /= 10;
        e++;
    }
    int nd = dec_len(n);
    put_dec(digits, n, nd);
    digits[nd] = 0;
    *exp10 = e + nd - 1;
    return nd;
}

/* The old way, kept as the fallback: a binary search over precision with "%.*e" and strtod
 * (for a symmetric rounding interval "p digits read back" is monotonic in p). */
static int shortest_digits_slow(double a, char *digits, int *exp10)
{
    char tmp[40], best[40];
    int nd = 0;
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
    while (nd > 1 && digits[nd - 1] == '0') nd--; /* "%.*e" may pad with zeros */
    digits[nd] = 0;
    return nd;
}

/* The shortest decimal digits that read back as v (v finite and non-zero; sign ignored), the
 * nearest to v among those (what Go's strconv picks). Writes the digits (no dot, no sign, no
 * trailing zeros) to `digits` (at least 18 bytes) and returns their count; *exp10 receives the
 * power of ten of the first digit. Integers below 2^53 are exact and just printed. */
static int shortest_digits(double v, char *digits, int *exp10)
{
    double a = fabs(v);
    if (a < 9007199254740992.0 && a == floor(a)) return put_digits((uint64_t)a, 0, digits, exp10);
    pthread_once(&p10_once, p10_init);
    if (!p10_ok) return shortest_digits_slow(a, digits, exp10);

    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    uint64_t frac = bits & (((uint64_t)1 << 52) - 1);
    int be = (int)(bits >> 52);
    uint64_t c = be ? frac | ((uint64_t)1 << 52) : frac;
    int q = be ? be - 1075 : -1074;
    uint64_t out = c & 1; /* odd c: the bounds themselves read back as the even neighbour */
    uint64_t cb = c << 2, cbr = cb + 2, cbl;
    int k;
    if (frac != 0 || be <= 1) {
        cbl = cb - 2;
        k = flog10pow2(q);
    } else { /* a power of two: the gap below is half the gap above */
        cbl = cb - 1;
        k = flog10_3q_pow2(q);
    }
    int h = q + flog2pow10(-k) + 2; /* 2..5: cbr << h < 2^61 */
    const p10_t *g = &p10_tab[-k - P10_MIN];
    uint64_t vb = rop(g, cb << h), vbl = rop(g, cbl << h), vbr = rop(g, cbr << h);

    uint64_t s = vb >> 2, d;
    uint64_t sp10 = s / 10 * 10, tp10 = sp10 + 10;
    bool upin = vbl + out <= sp10 << 2, wpin = (tp10 << 2) + out <= vbr;
    if (upin != wpin) {
        d = upin ? sp10 : tp10;
    } else {
        uint64_t t = s + 1;
        bool uin = vbl + out <= s << 2, win = (t << 2) + out <= vbr;
        if (uin != win) {
            d = uin ? s : t;
        } else {
            uint64_t mid = (s + t) << 1; /* 4 * (s + 1/2) */
            d = vb < mid || (vb == mid && (s & 1) == 0) ? s : t;
        }
    }
    /* A power of two has the gap below half as wide as the gap above; the interval above takes
     * that into account, so the digits may lie above v and be shorter than the correctly rounded
     * ones of the same length (Go's strconv, i.e. Prometheus, prints these too). */
    return put_digits(d, k, digits, exp10);
}

/* v in the given style into out, which has room for FLOAT_MAX_BYTES (AG_FLOAT_GO_F) or
 * FLOAT_SHORT_BYTES (the exponent styles: at most a sign, 17 digits, a point and "e-308", or 21
 * digits, or "0." and 6 zeros before 17 digits); returns the length. */
#define FLOAT_MAX_BYTES 400
#define FLOAT_SHORT_BYTES 32
static size_t float_fmt(char *out, double v, ag_float_style_t style)
{
    if (isnan(v)) {
        memcpy(out, "NaN", 3);
        return 3;
    }
    if (isinf(v)) {
        memcpy(out, v > 0 ? "+Inf" : "-Inf", 4);
        return 4;
    }
    if (v == 0) {
        if (signbit(v)) {
            memcpy(out, "-0", 2);
            return 2;
        }
        out[0] = '0';
        return 1;
    }
    char d[24];
    int e;
    int nd = shortest_digits(v, d, &e);
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
        unsigned x = (unsigned)(e < 0 ? -e : e);
        out[o++] = 'e';
        out[o++] = e < 0 ? '-' : '+';
        if (x >= 100) out[o++] = (char)('0' + x / 100);
        out[o++] = (char)('0' + x / 10 % 10);
        out[o++] = (char)('0' + x % 10);
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
    return o;
}

void ag_buf_float_style(ag_buf_t *b, double v, ag_float_style_t style)
{
    char out[FLOAT_MAX_BYTES];
    ag_buf_append(b, out, float_fmt(out, v, style));
}

void ag_buf_float(ag_buf_t *b, double v) { ag_buf_float_style(b, v, AG_FLOAT_PROMETHEUS); }

/* Prometheus' MarshalTimestamp: seconds, then "." and the three-digit millisecond remainder
 * (zero padded, trailing zeros kept) when it is not zero. out has room for 32; returns the
 * length. */
static size_t ts_fmt(char *out, int64_t ms)
{
    size_t o = 0;
    uint64_t u = (uint64_t)ms;
    if (ms < 0) {
        out[o++] = '-';
        u = 0 - u;
    }
    unsigned frac = (unsigned)(u % 1000);
    uint64_t sec = u / 1000; /* written for every sample of every answer: no printf */
    int nd = dec_len(sec);
    put_dec(out + o, sec, nd);
    o += (size_t)nd;
    if (frac) {
        out[o++] = '.';
        out[o++] = (char)('0' + frac / 100);
        out[o++] = (char)('0' + frac / 10 % 10);
        out[o++] = (char)('0' + frac % 10);
    }
    return o;
}

void ag_buf_ts_seconds(ag_buf_t *b, int64_t ms)
{
    char out[32];
    ag_buf_append(b, out, ts_fmt(out, ms));
}

void ag_buf_sample_json(ag_buf_t *b, int64_t ms, double v)
{
    /* One reservation for the whole [<ts>,"<value>"], written in place. */
    if (!ag_buf_reserve(b, 32 + FLOAT_SHORT_BYTES + 8)) return;
    char *p = b->data + b->len, *start = p;
    *p++ = '[';
    p += ts_fmt(p, ms);
    *p++ = ',';
    *p++ = '"';
    p += float_fmt(p, v, AG_FLOAT_PROMETHEUS);
    *p++ = '"';
    *p++ = ']';
    b->len += (size_t)(p - start);
    b->data[b->len] = 0;
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
