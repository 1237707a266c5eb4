/* test_scaler.c - unit tests for the predictive scaler and the reactive baseline
 * (daemon/forecast/scaler.c): replica arithmetic, bounds, stabilisation, a daily load seen
 * coming before it arrives, NaN handling, save/load, and the HPA's tolerance, scale-up limit and
 * scale-down window. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_scaler.h"

#define MIN_MS 60000LL
#define DAY_MS 86400000LL
#define T0 1767571200000LL /* Monday 2026-01-05 00:00 UTC */

static ag_scaler_policy_t policy(void)
{
    ag_scaler_policy_t p;
    ag_scaler_policy_default(&p);
    p.capacity = 100;
    p.target = 0.5; /* 50 load per replica */
    p.interval_ms = MIN_MS;
    p.lead_ms = 10 * MIN_MS;
    p.stabilization_ms = 5 * MIN_MS;
    p.min_replicas = 2;
    p.max_replicas = 40;
    return p;
}

static void test_policy_check(void **state)
{
    (void)state;
    ag_scaler_policy_t p = policy();
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_scaler_policy_check(&p, &e), AG_OK);
    p.min_replicas = 50;
    assert_int_equal(ag_scaler_policy_check(&p, &e), AG_EINVAL);
    assert_non_null(strstr(e.msg, "min_replicas"));
    p = policy();
    p.capacity = 0;
    assert_int_equal(ag_scaler_policy_check(&p, &e), AG_EINVAL);
    p = policy();
    p.target = 1.5;
    assert_int_equal(ag_scaler_policy_check(&p, &e), AG_EINVAL);
    p = policy();
    p.confidence = 1;
    assert_int_equal(ag_scaler_policy_check(&p, &e), AG_EINVAL);
    ag_scaler_t *s = NULL;
    assert_int_equal(ag_scaler_new(&p, NULL, &s), AG_EINVAL);
    assert_null(s);
}

/* Constant load: replicas = ceil(load / 50), clamped; a drop waits for the window. */
static void test_constant_and_stabilisation(void **state)
{
    (void)state;
    ag_scaler_policy_t p = policy();
    ag_scaler_t *s;
    assert_int_equal(ag_scaler_new(&p, NULL, &s), AG_OK);
    ag_scaler_result_t r;
    int64_t t = T0;
    for (int i = 0; i < 2 * 1440; i++, t += MIN_MS) assert_int_equal(ag_scaler_step(s, t, 475, &r), 0);
    printf("test_scaler: constant 475: raw %u peak %.2f\n", r.raw, r.peak);
    assert_int_equal(r.raw, 10); /* 475 / 50 = 9.5 -> 10 (the bound is barely above 475) */
    assert_int_equal(r.desired, 10);
    assert_true(r.peak >= 475);
    /* the load halves (after two days, so it is not the first day of the daily season): raw
     * follows once the detector adopts the new level, desired only after the 5-minute window */
    int first_down = -1;
    int first_raw = -1;
    for (int i = 0; i < 60; i++, t += MIN_MS) {
        assert_int_equal(ag_scaler_step(s, t, 237, &r), 0);
        if (first_raw < 0 && r.raw < 10) first_raw = i;
        if (first_down < 0 && r.desired < 10) first_down = i;
    }
    printf("test_scaler: after the drop raw fell at minute %d, desired at %d\n", first_raw,
           first_down);
    assert_true(first_raw >= 0 && first_down >= first_raw + 5);
    assert_true(r.desired < 10 && r.desired >= 5);
    /* bounds */
    for (int i = 0; i < 30; i++, t += MIN_MS) ag_scaler_step(s, t, 1e6, &r);
    assert_int_equal(r.desired, 40);
    /* NaN keeps the last recommendation; an old timestamp changes nothing */
    assert_int_equal(ag_scaler_step(s, t, NAN, &r), 0);
    assert_int_equal(r.desired, 40);
    assert_int_equal(ag_scaler_step(s, t - 5 * MIN_MS, 10, &r), AG_ECONFLICT);
    assert_int_equal(r.desired, 40);
    ag_scaler_free(s);
}

static double daily(int64_t t)
{
    double h = (double)(t % DAY_MS) / 3600000.0;
    return 100 + 900 / (1 + exp(-(h - 8) * 3)); /* a morning ramp around 08:00 */
}

/* After a week of a daily ramp the scaler asks for the replicas before the load arrives. */
static void test_daily_ramp_seen_ahead(void **state)
{
    (void)state;
    ag_scaler_policy_t p = policy();
    ag_scaler_t *s;
    assert_int_equal(ag_scaler_new(&p, NULL, &s), AG_OK);
    ag_scaler_result_t r;
    int64_t t = T0;
    for (; t < T0 + 8 * DAY_MS; t += MIN_MS) ag_scaler_step(s, t, daily(t), &r);
    /* the next morning: at each minute compare with what the load will need a lead time later */
    int ahead = 0, n = 0;
    for (; t < T0 + 8 * DAY_MS + 10 * 3600000LL; t += MIN_MS) {
        ag_scaler_step(s, t, daily(t), &r);
        double later = daily(t + p.lead_ms);
        uint32_t need_later = (uint32_t)ceil(later / 50 - 1e-9);
        double h = (double)(t % DAY_MS) / 3600000.0;
        if (h >= 6.5 && h <= 9) {
            n++;
            ahead += r.desired >= need_later;
        }
    }
    printf("test_scaler: during the ramp, desired covered the load a lead time later in %d of %d "
           "minutes\n", ahead, n);
    assert_true(ahead >= n * 9 / 10);
    /* save and load continue identically */
    ag_buf_t b = AG_BUF_INIT;
    assert_int_equal(ag_scaler_save(s, &b), 0);
    ag_scaler_t *l = NULL;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_scaler_load((const uint8_t *)b.data, b.len, &p, &l, &e), 0);
    for (int i = 0; i < 200; i++, t += MIN_MS) {
        ag_scaler_result_t r1, r2;
        ag_scaler_step(s, t, daily(t), &r1);
        ag_scaler_step(l, t, daily(t), &r2);
        assert_int_equal(r1.desired, r2.desired);
        assert_true(r1.peak == r2.peak);
    }
    /* corrupt input is refused */
    ag_scaler_t *bad = NULL;
    assert_int_not_equal(ag_scaler_load((const uint8_t *)b.data, b.len - 1, &p, &bad, &e), 0);
    assert_null(bad);
    b.data[0] ^= 1;
    assert_int_not_equal(ag_scaler_load((const uint8_t *)b.data, b.len, &p, &bad, &e), 0);
    assert_null(bad);
    ag_buf_free(&b);
    ag_scaler_free(l);
    ag_scaler_free(s);
}

static void test_hpa(void **state)
{
    (void)state;
    ag_scaler_policy_t p = policy();
    p.interval_ms = 15000;
    ag_hpa_t h;
    ag_hpa_init(&h, &p, 10);
    /* within the 10% tolerance nothing changes */
    assert_int_equal(ag_hpa_step(&h, T0, 520, 10), 10);
    /* up: at most double or +4 per sync */
    assert_int_equal(ag_hpa_step(&h, T0 + 15000, 5000, 10), 20);
    assert_int_equal(ag_hpa_step(&h, T0 + 30000, 5000, 20), 40);
    /* down: held by the window's largest recommendation, then follows */
    uint32_t d = 0;
    int64_t t = T0 + 45000;
    int steps = 0;
    for (; steps < 40; steps++, t += 15000) {
        d = ag_hpa_step(&h, t, 500, 40);
        if (d < 40) break;
    }
    assert_true(steps >= 18); /* 5 minutes of 15 s syncs */
    assert_int_equal(d, 10);
    ag_hpa_init(&h, &p, 0);
    assert_int_equal(ag_hpa_step(&h, T0, 260, 0), 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_check),
        cmocka_unit_test(test_constant_and_stabilisation),
        cmocka_unit_test(test_daily_ramp_seen_ahead),
        cmocka_unit_test(test_hpa),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
