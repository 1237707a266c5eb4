/* test_time.c - unit tests for storage/time.c: PromQL and API durations, API timestamps (float
 * seconds, RFC 3339 with offsets, Prometheus' min/max sentinels) and duration formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ag_time.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

static void dur_ok(const char *s, int64_t want)
{
    int64_t ms = -12345;
    ag_errmsg_t e = {{0}, -1};
    int rc = ag_parse_duration(s, &ms, &e);
    if (rc != AG_OK) fail_msg("ag_parse_duration(\"%s\") failed: %s", s, e.msg);
    if (ms != want) fail_msg("ag_parse_duration(\"%s\") = %lld, want %lld", s, (long long)ms, (long long)want);
}

static void dur_bad(const char *s, const char *msg)
{
    int64_t ms = 0;
    ag_errmsg_t e = {{0}, -1};
    if (ag_parse_duration(s, &ms, &e) != AG_EINVAL) fail_msg("ag_parse_duration(\"%s\") succeeded", s);
    if (msg) assert_string_equal(e.msg, msg);
}

static void test_durations(void **state)
{
    (void)state;
    dur_ok("1h30m", 90 * MIN);
    dur_ok("5m", 5 * MIN);
    dur_ok("1d", DAY);
    dur_ok("1w", 7 * DAY);
    dur_ok("1y", 365 * DAY);
    dur_ok("54s321ms", 54321);
    dur_ok("0s", 0);
    dur_ok("0", 0);
    dur_ok("1ms", 1);
    dur_ok("2y3w4d5h6m7s8ms", 2 * 365 * DAY + 3 * 7 * DAY + 4 * DAY + 5 * HOUR + 6 * MIN + 7 * SEC + 8);
    dur_ok("90m", 90 * MIN);
    dur_ok("007s", 7 * SEC);
    dur_ok("292y", 292 * 365 * DAY);
    dur_bad("1.5h", "not a valid duration string: \"1.5h\"");
    dur_bad("", "empty duration string");
    dur_bad("h", NULL);
    dur_bad("1m1h", "not a valid duration string: \"1m1h\"");
    dur_bad("5m5m", NULL);
    dur_bad("1h 30m", NULL);
    dur_bad("-5m", NULL);
    dur_bad("5", NULL);
    dur_bad("5mm", NULL);
    dur_bad("1hms", NULL);
    dur_bad("1H", NULL);
    dur_bad("1ms1s", NULL);
    dur_bad("300y", "duration out of range");
    dur_bad("99999999999999999999999s", "duration out of range");
}

static void api_dur_ok(const char *s, int64_t want)
{
    int64_t ms = -12345;
    ag_errmsg_t e = {{0}, -1};
    int rc = ag_parse_api_duration(s, &ms, &e);
    if (rc != AG_OK) fail_msg("ag_parse_api_duration(\"%s\") failed: %s", s, e.msg);
    if (ms != want) fail_msg("ag_parse_api_duration(\"%s\") = %lld, want %lld", s, (long long)ms, (long long)want);
}

static void api_dur_bad(const char *s, const char *msg)
{
    int64_t ms = 0;
    ag_errmsg_t e = {{0}, -1};
    if (ag_parse_api_duration(s, &ms, &e) != AG_EINVAL) fail_msg("ag_parse_api_duration(\"%s\") succeeded", s);
    if (msg) assert_string_equal(e.msg, msg);
}

static void test_api_durations(void **state)
{
    (void)state;
    api_dur_ok("15", 15 * SEC);
    api_dur_ok("0.5", 500);
    api_dur_ok("1e3", 1000 * SEC);
    api_dur_ok("1.0005", 1000); /* truncated, like time.Duration -> milliseconds */
    api_dur_ok("-5", -5 * SEC);
    api_dur_ok("+2.5", 2500);
    api_dur_ok(".25", 250);
    api_dur_ok("0x1p4", 16 * SEC); /* Go's ParseFloat takes hex floats */
    api_dur_ok("1_000", 1000 * SEC);
    api_dur_ok("5m", 5 * MIN);
    api_dur_ok("1h30m", 90 * MIN);
    api_dur_ok("0", 0);
    api_dur_bad("abc", "cannot parse \"abc\" to a valid duration");
    api_dur_bad("", "cannot parse \"\" to a valid duration");
    api_dur_bad("NaN", "cannot parse \"NaN\" to a valid duration");
    api_dur_bad("Inf", "cannot parse \"Inf\" to a valid duration. It overflows int64");
    api_dur_bad("-inf", "cannot parse \"-inf\" to a valid duration. It overflows int64");
    api_dur_bad("1e10", "cannot parse \"1e10\" to a valid duration. It overflows int64");
    api_dur_bad("1.5h", NULL);
    api_dur_bad("0x10", NULL);
    api_dur_bad(" 15", NULL);
    api_dur_bad("1__0", NULL);
    api_dur_bad("a\"b", "cannot parse \"a\\\"b\" to a valid duration");
}

static void time_ok(const char *s, int64_t want)
{
    int64_t ms = -12345;
    ag_errmsg_t e = {{0}, -1};
    int rc = ag_parse_api_time(s, &ms, &e);
    if (rc != AG_OK) fail_msg("ag_parse_api_time(\"%s\") failed: %s", s, e.msg);
    if (ms != want) fail_msg("ag_parse_api_time(\"%s\") = %lld, want %lld", s, (long long)ms, (long long)want);
}

static void time_bad(const char *s)
{
    int64_t ms = 0;
    ag_errmsg_t e = {{0}, -1};
    if (ag_parse_api_time(s, &ms, &e) != AG_EINVAL) fail_msg("ag_parse_api_time(\"%s\") succeeded", s);
    char want[200];
    snprintf(want, sizeof want, "cannot parse \"%s\" to a valid timestamp", s);
    assert_string_equal(e.msg, want);
}

static void test_api_times(void **state)
{
    (void)state;
    /* Float seconds, the fraction rounded to milliseconds. */
    time_ok("1435781451.781", 1435781451781);
    time_ok("1435781451", 1435781451000);
    time_ok("1700000000.123", 1700000000123);
    time_ok("0", 0);
    time_ok("4", 4000);
    time_ok("-1.5", -1500);
    time_ok("1.0006", 1001); /* rounded, not truncated */
    time_ok("1.0004", 1000);
    time_ok("1e3", 1000000);
    /* RFC 3339, with fractions and offsets. */
    time_ok("2015-07-01T20:10:51.781Z", 1435781451781);
    time_ok("2015-07-01T20:10:51Z", 1435781451000);
    time_ok("2015-07-01T22:10:51.781+02:00", 1435781451781);
    time_ok("2015-07-01T15:40:51.781-04:30", 1435781451781);
    time_ok("2015-07-01T20:10:51.7819999Z", 1435781451781); /* digits past ms truncate */
    time_ok("2015-07-01T20:10:51.5Z", 1435781451500);
    time_ok("2015-07-01T20:10:51,5Z", 1435781451500);
    time_ok("1970-01-01T00:00:00Z", 0);
    time_ok("1969-12-31T23:59:59.999Z", -1);
    time_ok("2024-02-29T00:00:00Z", 1709164800000);
    time_ok("0000-01-01T00:00:00Z", -62167219200000);
    time_ok("10000-01-01T00:00:00Z", 253402300800000); /* lenient: five-digit year */
    /* Prometheus' MinTime/MaxTime as its clients send them, and other far-away times. */
    time_ok("-292273086-05-16T16:47:06Z", AG_TIME_MIN_MS);
    time_ok("292277026596-12-04T15:30:07.999999999Z", AG_TIME_MAX_MS);
    time_ok("99999999999-01-01T00:00:00Z", AG_TIME_MAX_MS);
    time_ok("-99999999999-01-01T00:00:00Z", AG_TIME_MIN_MS);
    time_ok("1e300", AG_TIME_MAX_MS);
    time_ok("-Inf", AG_TIME_MIN_MS);
    time_ok("+Inf", AG_TIME_MAX_MS);
    time_bad("abc");
    time_bad("");
    time_bad("NaN");
    time_bad("2015-02-29T00:00:00Z");
    time_bad("2015-07-01 20:10:51Z");
    time_bad("2015-07-01T20:10:51");
    time_bad("2015-07-01T24:00:00Z");
    time_bad("2015-07-01T20:60:00Z");
    time_bad("2015-13-01T20:00:00Z");
    time_bad("2015-07-01T20:10:51.Z");
    time_bad("2015-07-01T20:10:51+0200");
    time_bad("2015-07-01t20:10:51Z");
    time_bad("2015-07-01T20:10:51z");
    time_bad("2015-7-01T20:10:51Z");
    time_bad("15-07-01T20:10:51Z");
    time_bad("2015-07-01T20:10:51Zjunk");
}

static void fmt_dur(int64_t ms, const char *want)
{
    char out[32];
    ag_format_duration(ms, out, sizeof out);
    assert_string_equal(out, want);
}

static void test_format_duration(void **state)
{
    (void)state;
    fmt_dur(0, "0s");
    fmt_dur(90 * MIN, "1h30m");
    fmt_dur(5 * MIN, "5m");
    fmt_dur(DAY, "1d");
    fmt_dur(7 * DAY, "1w");
    fmt_dur(365 * DAY, "1y");
    fmt_dur(1500, "1s500ms");
    fmt_dur(1, "1ms");
    fmt_dur(90 * DAY, "90d");   /* weeks only when exact */
    fmt_dur(56 * DAY, "8w");
    fmt_dur(366 * DAY, "366d"); /* years only when exact */
    fmt_dur(730 * DAY, "2y");
    fmt_dur(DAY + HOUR + MIN + SEC + 1, "1d1h1m1s1ms");
    fmt_dur(-5 * MIN, "-5m");
    char small[4];
    ag_format_duration(90 * MIN, small, sizeof small);
    assert_string_equal(small, "1h3");
}

static void test_round_trip(void **state)
{
    (void)state;
    const int64_t values[] = {1, 999, 1000, 61 * SEC, 90 * MIN, 25 * HOUR, 8 * DAY, 365 * DAY, 400 * DAY};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char out[32];
        int64_t back = 0;
        ag_format_duration(values[i], out, sizeof out);
        assert_int_equal(ag_parse_duration(out, &back, NULL), AG_OK);
        assert_int_equal(back, values[i]);
    }
}

static void test_now(void **state)
{
    (void)state;
    int64_t now = ag_now_ms();
    assert_true(now > 1600000000000LL); /* after 2020 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),      cmocka_unit_test(test_api_durations),
        cmocka_unit_test(test_api_times),      cmocka_unit_test(test_format_duration),
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
