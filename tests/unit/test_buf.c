/* test_buf.c - unit tests for storage/buf.c: growth, the sticky out-of-memory flag, and the
 * Prometheus-exact renderings of floats, timestamps and JSON strings. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_format),  cmocka_unit_test(test_float_shortest_random),  cmocka_unit_test(test_ts_seconds),
        cmocka_unit_test(test_json_str),      cmocka_unit_test(test_append_and_growth),
        cmocka_unit_test(test_oom_is_sticky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
