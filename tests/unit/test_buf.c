/* test_buf.c - unit tests for storage/buf.c: growth, the sticky out-of-memory flag, and the
 * Prometheus-exact renderings of floats, timestamps and JSON strings. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_buf.h"

static void expect_float(double v, const char *want)
{
    ag_buf_t b = AG_BUF_INIT;
    ag_buf_float(&b, v);
    assert_true(ag_buf_ok(&b));
    if (strcmp(b.data, want) != 0) fail_msg("ag_buf_float(%.17g) = \"%s\", want \"%s\"", v, b.data, want);
    ag_buf_free(&b);
}

static void test_float_format(void **state)
{
    (void)state;
    expect_float(1, "1");
    expect_float(0.1, "0.1");
    expect_float(1e20, "100000000000000000000");
    expect_float(123456789.125, "123456789.125");
    /* Below a power of two the gap is half as wide: Go prints 16 digits here, not 17. */
    expect_float(ldexp(1, -1017), "7.120236347223045e-307");
    expect_float(1e-6, "0.000001");
    expect_float(1e21, "1e+21");
    expect_float(1e-7, "1e-07");
    expect_float(1.5e21, "1.5e+21");
    expect_float(-2.5e-8, "-2.5e-08");
    expect_float(0, "0");
    expect_float(-0.0, "-0");
    expect_float(NAN, "NaN");
    expect_float(INFINITY, "+Inf");
    expect_float(-INFINITY, "-Inf");
    expect_float(100, "100");
    expect_float(-1.5, "-1.5");
    expect_float(1234.5, "1234.5");
    expect_float(0.1 + 0.2, "0.30000000000000004");
    expect_float(0.000001234, "0.000001234");
    expect_float(9.999999e-7, "9.999999e-07");
    expect_float(1.7976931348623157e308, "1.7976931348623157e+308");
    expect_float(5e-324, "5e-324");
    expect_float(123456789012345678901.0, "123456789012345680000");
    expect_float(999999999999999999999.0, "1e+21"); /* rounds to 1e21 */
    expect_float(1e100, "1e+100");
    expect_float(2.5e-300, "2.5e-300");
    expect_float(1.0 / 3, "0.3333333333333333");
    expect_float(-1e-6, "-0.000001");
    expect_float(12345678.9, "12345678.9");
}

static void expect_ts(int64_t ms, const char *want)
{
    ag_buf_t b = AG_BUF_INIT;
    ag_buf_ts_seconds(&b, ms);
    assert_true(ag_buf_ok(&b));
    assert_string_equal(b.data, want);
    ag_buf_free(&b);
}

static void test_ts_seconds(void **state)
{
    (void)state;
    expect_ts(0, "0");
    expect_ts(12000, "12");
    expect_ts(1435781451781, "1435781451.781");
    /* Prometheus' MarshalTimestamp keeps the three digits, trailing zeros included. */
    expect_ts(1500, "1.500");
    expect_ts(1050, "1.050");
    expect_ts(1001, "1.001");
    expect_ts(-1500, "-1.500");
    expect_ts(-1, "-0.001");
    expect_ts(999, "0.999");
    expect_ts(INT64_MAX, "9223372036854775.807");
    expect_ts(INT64_MIN, "-9223372036854775.808");
    /* every digit count: seconds 10^k - 1, 10^k and 10^k + 1 against printf */
    int64_t p = 1;
    for (int k = 0; k <= 15; k++, p *= 10) {
        for (int64_t sec = p - 1; sec <= p + 1; sec++) {
            char want[32];
            snprintf(want, sizeof want, "%lld.250", (long long)sec);
            expect_ts(sec * 1000 + 250, want);
            snprintf(want, sizeof want, "%lld", (long long)sec);
            expect_ts(sec * 1000, want);
        }
    }
}

static void expect_json(const char *in, size_t n, const char *want)
{
    ag_buf_t b = AG_BUF_INIT;
    ag_buf_json_str(&b, in, n);
    assert_true(ag_buf_ok(&b));
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    ag_buf_free(&b);
}

#define JSON(lit, want) expect_json(lit, sizeof(lit) - 1, want)

static void test_json_str(void **state)
{
    (void)state;
    JSON("", "\"\"");
    JSON("up", "\"up\"");
    JSON("a\"b\\c", "\"a\\\"b\\\\c\"");
    JSON("l1\nl2\r\tx", "\"l1\\nl2\\r\\tx\"");
    JSON("\x01\x1f", "\"\\u0001\\u001f\"");
    JSON("nul\0byte", "\"nul\\u0000byte\"");
    JSON("/<>&\x7f", "\"/<>&\x7f\"");
    JSON("caf\xc3\xa9 \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\""); /* valid UTF-8 */
    JSON("\xff", "\"\xef\xbf\xbd\"");
    JSON("a\xe2\x82", "\"a\xef\xbf\xbd\xef\xbf\xbd\"");      /* truncated sequence */
    JSON("\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\"");       /* overlong */
    JSON("\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* surrogate */
    JSON("\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* > U+10FFFF */
    JSON("\xef\xbf\xbd", "\"\xef\xbf\xbd\""); /* a real U+FFFD passes through */
}

static void test_append_and_growth(void **state)
{
    (void)state;
    ag_buf_t b = AG_BUF_INIT;
    for (int i = 0; i < 1000; i++) ag_buf_putc(&b, (char)('a' + i % 26));
    assert_true(ag_buf_ok(&b));
    assert_int_equal(b.len, 1000);
    assert_int_equal(b.data[1000], 0);
    assert_int_equal(b.data[27], 'b');
    ag_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    ag_buf_puts(&b, "x=");
    ag_buf_printf(&b, "%d-%s", 42, "y");
    assert_string_equal(b.data, "x=42-y");
    char big[5000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ag_buf_printf(&b, "%s!", big);
    assert_int_equal(b.len, 6 + 4999 + 1);
    assert_int_equal(b.data[b.len - 1], '!');
    ag_buf_reset(&b);
    ag_buf_put_u64be(&b, 0x0102030405060708ULL);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.data, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    ag_buf_append(&b, "", 0);
    assert_int_equal(b.len, 8);
    size_t len = 0;
    char *p = ag_buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 8);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(p);
    ag_buf_free(&b);

    ag_buf_t e = AG_BUF_INIT;
    assert_null(ag_buf_steal(&e, &len));
    assert_int_equal(len, 0);
}

static void test_oom_is_sticky(void **state)
{
    (void)state;
    ag_buf_t b = AG_BUF_INIT;
    ag_buf_puts(&b, "abc");
    /* A reservation that cannot succeed sets the flag... */
    assert_false(ag_buf_reserve(&b, SIZE_MAX - 2));
    assert_false(ag_buf_ok(&b));
    /* ...and later appends are ignored. */
    ag_buf_puts(&b, "def");
    ag_buf_printf(&b, "%d", 1);
    ag_buf_float(&b, 1.5);
    ag_buf_json_str(&b, "x", 1);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.data, "abc");
    assert_false(ag_buf_reserve(&b, 1));
    /* A reset starts over. */
    ag_buf_reset(&b);
    assert_true(ag_buf_ok(&b));
    ag_buf_puts(&b, "ok");
    assert_string_equal(b.data, "ok");
    ag_buf_free(&b);
}

/* The shortest digits, checked two ways on 300,000 doubles (random bit patterns, integers,
 * values with few decimals, rates): the rendering reads back as the same double, and no
 * rendering with one digit fewer does (a shorter one found by rounding the digits down or up
 * would read back too). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_float_shortest_random(void **state)
{
    (void)state;
    char buf[64];
    for (int i = 0; i < 300000; i++) {
        double v;
        uint64_t r = rng();
        switch (i % 4) {
        case 0: memcpy(&v, &r, sizeof v); break;
        case 1: v = (double)(int64_t)(r >> (r & 63)) ; break;
        case 2: v = (double)(int64_t)(r % 10000000) / 100.0; break;
        default: v = (double)(r % 1000000) / 7.0 / 15.0; break;
        }
        if (isnan(v) || isinf(v) || v == 0) continue;
        ag_buf_t b = AG_BUF_INIT;
        ag_buf_float(&b, v);
        assert_true(ag_buf_ok(&b));
        if (strtod(b.data, NULL) != v) fail_msg("%.17g rendered as %s", v, b.data);
        /* Count the significant digits of the rendering. */
        int nd = 0, lead = 1;
        for (const char *q = b.data; *q && *q != 'e'; q++) {
            if (*q < '0' || *q > '9') continue;
            if (lead && *q == '0') continue;
            lead = 0;
            nd++;
        }
        /* Trailing zeros of an integer rendering are not significant. */
        if (!strchr(b.data, '.') && !strchr(b.data, 'e'))
            for (const char *q = b.data + strlen(b.data) - 1; q > b.data && *q == '0'; q--) nd--;
        if (nd > 1) {
            snprintf(buf, sizeof buf, "%.*e", nd - 2, v);
            if (strtod(buf, NULL) == v) fail_msg("%.17g rendered as %s but %s is shorter", v, b.data, buf);
        }
        ag_buf_free(&b);
    }
}

/* ---- Differential test against the old algorithm ------------------------------------------------
 * The reference is the rendering before Schubfach: integers below 2^53 printed as they are, other
 * values searched with "%.*e" and strtod, here linearly over the precision (the old code searched
 * binary). ref_digits(a, from, ...) searches from `from` digits up and returns the first precision
 * whose correctly rounded digits read back as a. */
static int ref_digits(double a, int from, char *digits, int *exp10)
{
    char tmp[40];
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
        for (int p = from; p <= 17; p++) {
            snprintf(tmp, sizeof tmp, "%.*e", p - 1, a);
            if (strtod(tmp, NULL) == a) break;
        }
        const char *q = tmp;
        for (; *q && *q != 'e'; q++)
            if (*q >= '0' && *q <= '9') digits[nd++] = *q;
        *exp10 = atoi(q + 1);
    }
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    return nd;
}

/* Prometheus' text for finite non-zero v from the reference digits. */
static void ref_float(double v, int from, char *out)
{
    char d[24];
    int e;
    double a = fabs(v);
    int nd = ref_digits(a, from, d, &e);
    char *o = out;
    if (v < 0) *o++ = '-';
    if (a < 1e-6 || a >= 1e21) {
        *o++ = d[0];
        if (nd > 1) o += sprintf(o, ".%s", d + 1);
        sprintf(o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        return;
    }
    if (e < 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -e - 1; i++) *o++ = '0';
        strcpy(o, d);
        return;
    }
    for (int i = 0; i <= e || i < nd; i++) {
        if (i == e + 1) *o++ = '.';
        *o++ = i < nd ? d[i] : '0';
    }
    *o = 0;
}

/* Significant digits of a rendering: no leading zeros, no trailing zeros of an integer. */
static int sig_digits(const char *s)
{
    int nd = 0, zeros = 0, lead = 1;
    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9') continue;
        if (lead && *s == '0') continue;
        lead = 0;
        nd++;
        zeros = *s == '0' ? zeros + 1 : 0;
    }
    return nd - zeros;
}

static long diff_checked, diff_full, pow2_shorter;

/* Compares ag_buf_float(v) with the reference. `full` runs the linear search from one digit.
 * Otherwise it starts at n - 1 digits, n those of ag_buf_float's output: when the rounding
 * interval is symmetric (v not a power of two) the correctly rounded p-digit decimal only gets
 * closer to v as p grows, so if n - 1 digits do not read back no fewer do, and the answer is the
 * same as from one digit; a too long, too short or wrong output still shows as a difference. */
static void diff_one(double v, bool full)
{
    if (isnan(v) || isinf(v) || v == 0) return;
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    if ((bits & (((uint64_t)1 << 52) - 1)) == 0) full = true; /* powers of two: asymmetric */
    ag_buf_t b = AG_BUF_INIT;
    ag_buf_float(&b, v);
    assert_true(ag_buf_ok(&b));
    int n = sig_digits(b.data);
    char want[64];
    ref_float(v, full || n < 2 ? 1 : n - 1, want);
    if ((bits & (((uint64_t)1 << 52) - 1)) == 0 && strcmp(b.data, want) != 0) {
        /* Below a power of two the gap is half as wide, and the shortest digits (Go's choice)
         * may be shorter than the old search's correctly rounded ones: they must read back and
         * be shorter. */
        if (strtod(b.data, NULL) != v || n >= sig_digits(want))
            fail_msg("ag_buf_float(%a = %.17g) = \"%s\", the old way gives \"%s\"", v, v, b.data, want);
        pow2_shorter++;
    } else if (strcmp(b.data, want) != 0) {
        fail_msg("ag_buf_float(%a = %.17g) = \"%s\", the old way gives \"%s\"", v, v, b.data, want);
    }
    ag_buf_free(&b);
    diff_checked++;
    diff_full += full;
}

static double from_bits(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static void diff_around(double v)
{
    diff_one(v, true);
    diff_one(-v, true);
    double lo = v, hi = v;
    for (int i = 0; i < 3; i++) {
        lo = nextafter(lo, 0);
        hi = nextafter(hi, INFINITY);
        diff_one(lo, true);
        diff_one(hi, true);
    }
}

static void test_float_vs_old(void **state)
{
    (void)state;
    char t[32];
    diff_checked = diff_full = pow2_shorter = 0;
    /* Every binade: its power of two and neighbours (covers every exponent's table entry). */
    for (int e = -1074; e <= 1023; e++) diff_around(ldexp(1, e));
    for (int e = -323; e <= 308; e++) {
        snprintf(t, sizeof t, "1e%d", e);
        diff_around(strtod(t, NULL));
        snprintf(t, sizeof t, "5e%d", e);
        diff_around(strtod(t, NULL));
    }
    diff_around(DBL_MIN);
    diff_around(DBL_MAX);
    diff_around(DBL_TRUE_MIN);
    diff_around(nextafter(DBL_MIN, 0)); /* the largest subnormal */
    for (uint64_t c = 1; c <= 3000; c++) diff_one(from_bits(c), true); /* the smallest subnormals */
    for (int i = 0; i < 2000000; i++) {
        uint64_t r = rng(), r2 = rng();
        double v;
        switch (i % 8) {
        case 0: v = from_bits(r); break;                                  /* any bits */
        case 1: v = from_bits((r >> 12) | (uint64_t)(1023 - 60 + r2 % 120) << 52); break; /* 2^±60 */
        case 2: v = from_bits(r & (((uint64_t)1 << 52) - 1)); break;      /* subnormal */
        case 3: v = (double)(int64_t)(r >> (r & 63)); break;             /* integers, also > 2^53 */
        case 4: v = (double)(r % 1000000000) / pow(10, 1 + (int)(r2 % 6)); break; /* 1-6 decimals */
        case 5: v = (double)(r % 100000000) / (double)(r2 % 1000000 + 1); break;  /* ratios */
        case 6: v = (double)(r % 1000000) / (double)(r2 % 3600 + 1) / 60.0; break; /* rate() */
        default: v = (double)r / (double)r2 * pow(10, (int)(r % 40) - 20); break;
        }
        diff_one(v, (i >> 3) % 128 == 0); /* a sample of each kind with the full search */
    }
    assert_true(diff_checked > 2000000);
    assert_true(pow2_shorter > 0 && pow2_shorter < 200);
    print_message("compared %ld doubles with the old rendering, %ld of them with the full linear search\n",
                  diff_checked, diff_full);
}

/* ag_buf_sample_json writes in place what the piecewise calls write, for every kind of value
 * (the exponent forms, -0, NaN, +-Inf, subnormals, three-digit exponents) and timestamp. */
static void test_sample_json(void **state)
{
    (void)state;
    static const double fixed[] = {0.0, -0.0, 1.0, -1.5, 1e-7, 1e21, 123456789012345678901.0,
                                   5e-324, 1.7976931348623157e308, -2.5e-310, 0.1, 1e-6,
                                   9.999999999999999e20, NAN, INFINITY, -INFINITY};
    static const int64_t times[] = {0, 1500, -1500, 1795816740000, -1, INT64_MAX, INT64_MIN, 999};
    ag_buf_t fast = AG_BUF_INIT, slow = AG_BUF_INIT;
    for (int i = 0; i < 200000; i++) {
        double v;
        uint64_t r = rng();
        if (i < (int)(sizeof fixed / sizeof fixed[0])) v = fixed[i];
        else if (i % 2) memcpy(&v, &r, sizeof v);
        else v = (double)(int64_t)(r % 100000000) / 100.0;
        int64_t t = i % 3 ? times[i % 8] : (int64_t)r;
        ag_buf_reset(&fast);
        ag_buf_reset(&slow);
        ag_buf_sample_json(&fast, t, v);
        ag_buf_putc(&slow, '[');
        ag_buf_ts_seconds(&slow, t);
        ag_buf_puts(&slow, ",\"");
        ag_buf_float(&slow, v);
        ag_buf_puts(&slow, "\"]");
        assert_true(ag_buf_ok(&fast) && ag_buf_ok(&slow));
        assert_int_equal(fast.len, slow.len);
        assert_memory_equal(fast.data, slow.data, slow.len);
        assert_int_equal(fast.data[fast.len], 0);
    }
    ag_buf_free(&fast);
    ag_buf_free(&slow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_format),  cmocka_unit_test(test_float_shortest_random),  cmocka_unit_test(test_float_vs_old),  cmocka_unit_test(test_ts_seconds),  cmocka_unit_test(test_sample_json),
        cmocka_unit_test(test_json_str),      cmocka_unit_test(test_append_and_growth),
        cmocka_unit_test(test_oom_is_sticky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
