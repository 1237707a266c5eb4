/* test_csv.c - unit tests for the timestamp,value CSV reader (daemon/forecast/csv.c).
 *
 * Known answers for both timestamp forms (calendar dates checked against unix seconds, leap
 * days, fractions, 'T' and 'Z'), the value forms (decimals, exponents, NaN, Inf, stale), header
 * variants (column order, case, extra columns, spaces), CRLF line ends and blank lines; and the
 * errors: missing header, bad timestamp, non-numeric or empty value, wrong column count, quotes,
 * empty input - each with "line N:" and the byte offset of the bad field.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ag_csv.h"
#include "ag_err.h"

static int feed(ag_csv_t *r, const char *line, ag_csv_row_t *row, ag_errmsg_t *e)
{
    e->msg[0] = 0;
    e->offset = -2;
    return ag_csv_line(r, line, strlen(line), row, e);
}

static bool starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static void test_times(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(ag_csv_parse_time("1970-01-01 00:00:00", 19, &ms), AG_OK);
    assert_true(ms == 0);
    assert_int_equal(ag_csv_parse_time("2026-01-05 00:00:00", 19, &ms), AG_OK);
    assert_true(ms == 1767571200000LL);
    assert_int_equal(ag_csv_parse_time("2024-02-29T23:59:59Z", 20, &ms), AG_OK);
    assert_true(ms == 1709251199000LL);
    assert_int_equal(ag_csv_parse_time("2024-02-29 23:59:59.25", 22, &ms), AG_OK);
    assert_true(ms == 1709251199250LL);
    assert_int_equal(ag_csv_parse_time("1969-12-31 23:59:59", 19, &ms), AG_OK);
    assert_true(ms == -1000);
    assert_int_equal(ag_csv_parse_time("1767571200", 10, &ms), AG_OK);
    assert_true(ms == 1767571200000LL);
    assert_int_equal(ag_csv_parse_time(" 1767571200.5 ", 14, &ms), AG_OK);
    assert_true(ms == 1767571200500LL);
    const char *bad[] = {"", "2023-02-29 00:00:00", "2026-13-01 00:00:00", "2026-01-32 00:00:00",
                         "2026-01-05 24:00:00", "2026-01-05 00:60:00", "2026-01-05", "2026-01-05 00:00",
                         "2026-01-05 00:00:00x", "2026-01-05 00:00:00.", "abc", "0x10", "1e400",
                         "nan", "inf", "2026/01/05 00:00:00", "1 2", "2026-01-05 00:00:00.1234567890"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (ag_csv_parse_time(bad[i], strlen(bad[i]), &ms) != AG_EINVAL) fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void test_values(void **state)
{
    (void)state;
    double v;
    assert_int_equal(ag_csv_parse_value("12.5", 4, &v), AG_OK);
    assert_true(v == 12.5);
    assert_int_equal(ag_csv_parse_value("-1e3", 4, &v), AG_OK);
    assert_true(v == -1000);
    assert_int_equal(ag_csv_parse_value("NaN", 3, &v), AG_OK);
    assert_true(isnan(v));
    assert_int_equal(ag_csv_parse_value("+Inf", 4, &v), AG_OK);
    assert_true(isinf(v) && v > 0);
    assert_int_equal(ag_csv_parse_value("-inf", 4, &v), AG_OK);
    assert_true(isinf(v) && v < 0);
    assert_int_equal(ag_csv_parse_value("stale", 5, &v), AG_OK);
    uint64_t u;
    memcpy(&u, &v, 8);
    assert_true(u == 0x7ff0000000000002ULL);
    assert_int_equal(ag_csv_parse_value("1e308", 5, &v), AG_OK);
    const char *bad[] = {"", " ", "abc", "1.2.3", "0x1p3", "12abc", "infinity", "nan(1)", "1e999", "--1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (ag_csv_parse_value(bad[i], strlen(bad[i]), &v) != AG_EINVAL) fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void test_file(void **state)
{
    (void)state;
    ag_csv_t r;
    ag_csv_row_t row;
    ag_errmsg_t e;
    ag_csv_init(&r);
    assert_int_equal(feed(&r, "timestamp,value\r", &row, &e), 0);
    assert_int_equal(feed(&r, "2026-01-05 00:00:00,14.8058\r", &row, &e), 1);
    assert_true(row.t_ms == 1767571200000LL && row.v == 14.8058);
    assert_int_equal(row.ts_len, 19);
    assert_memory_equal(row.ts, "2026-01-05 00:00:00", 19);
    assert_int_equal(row.val_len, 7);
    assert_memory_equal(row.val, "14.8058", 7);
    assert_int_equal(feed(&r, "", &row, &e), 0);   /* blank lines */
    assert_int_equal(feed(&r, "  \r", &row, &e), 0);
    assert_int_equal(feed(&r, "1767571500, 3 ", &row, &e), 1);
    assert_true(row.t_ms == 1767571500000LL && row.v == 3);
    assert_int_equal(row.val_len, 1);
    assert_int_equal(ag_csv_finish(&r, &e), AG_OK);
    assert_int_equal(r.line, 5);

    /* column order, case, extra columns (the tool's own output reads back) */
    ag_csv_init(&r);
    assert_int_equal(feed(&r, "Value , TIMESTAMP,anomaly_score", &row, &e), 0);
    assert_int_equal(feed(&r, "7,1767571200,0.5", &row, &e), 1);
    assert_true(row.v == 7 && row.t_ms == 1767571200000LL);
}

static void test_errors(void **state)
{
    (void)state;
    ag_csv_t r;
    ag_csv_row_t row;
    ag_errmsg_t e;

    ag_csv_init(&r);
    assert_int_equal(feed(&r, "2026-01-05 00:00:00,1", &row, &e), AG_EINVAL);
    assert_true(starts(e.msg, "line 1: missing header"));
    assert_int_equal(ag_csv_finish(&r, &e), AG_EINVAL);
    assert_true(strstr(e.msg, "missing header") != NULL);

    ag_csv_init(&r);
    assert_int_equal(ag_csv_finish(&r, &e), AG_EINVAL); /* empty input */
    assert_true(starts(e.msg, "line 1: missing header"));

    ag_csv_init(&r);
    assert_int_equal(feed(&r, "timestamp,value", &row, &e), 0);
    assert_int_equal(feed(&r, "2026-01-05 00:00:00,1", &row, &e), 1);
    assert_int_equal(feed(&r, "2026-01-05 25:00:00,1", &row, &e), AG_EINVAL);
    assert_true(starts(e.msg, "line 3: bad timestamp \"2026-01-05 25:00:00\""));
    assert_int_equal(e.offset, 0);
    assert_int_equal(feed(&r, "2026-01-05 00:10:00,abc", &row, &e), AG_EINVAL);
    assert_true(starts(e.msg, "line 4: bad value \"abc\""));
    assert_int_equal(e.offset, 20);
    assert_int_equal(feed(&r, "2026-01-05 00:10:00,", &row, &e), AG_EINVAL);
    assert_true(starts(e.msg, "line 5: bad value"));
    assert_int_equal(feed(&r, "2026-01-05 00:10:00,1,2", &row, &e), AG_EINVAL);
    assert_true(starts(e.msg, "line 6: 3 columns, the header has 2"));
    assert_int_equal(feed(&r, "\"2026-01-05 00:10:00\",1", &row, &e), AG_EINVAL);
    assert_true(starts(e.msg, "line 7: quoted"));
    assert_int_equal(e.offset, 0);
    /* still usable after errors */
    assert_int_equal(feed(&r, "2026-01-05 00:15:00,2", &row, &e), 1);
    assert_int_equal(ag_csv_finish(&r, &e), AG_OK);

    /* too many columns; control bytes in messages are printable */
    ag_csv_init(&r);
    char many[300];
    memset(many, ',', 200);
    many[200] = 0;
    assert_int_equal(feed(&r, many, &row, &e), AG_EINVAL);
    assert_true(starts(e.msg, "line 1: more than"));
    assert_int_equal(feed(&r, "time\x01stamp,value", &row, &e), AG_EINVAL);
    for (const char *p = e.msg; *p; p++) assert_true(*p >= 0x20 && *p < 0x7f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
