/* test_forecast.c - unit tests for the Holt-Winters model, the anomaly detector and the tiny
 * detector (daemon/forecast/hw.c, detect.c, tiny.c; contract: include/ag_forecast.h).
 *
 * Known answers on synthetic series with 5-minute samples (a daily and a weekly pattern plus
 * Gaussian noise from a fixed seed; FORECAST_SEED=<n> replays another): a pure seasonal signal is
 * forecast within a tolerance and its intervals widen with the horizon and cover about their
 * probability on noisy data; an injected spike scores near 1 while normal points score near 0;
 * a level shift alarms and is then adopted (scores go back down), and so is a variance burst and
 * a flatline; NaN, +-Inf, stale markers, a constant series, gaps, irregular and out-of-order
 * timestamps, huge values and a raw counter with resets never produce a NaN or out-of-range
 * score or forecast. State
 * round-trips: saving, loading and continuing gives bit-identical scores and bytes, and the
 * loaders reject truncated, flipped, versioned and out-of-range input without crashing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_buf.h"
#include "ag_err.h"
#include "ag_forecast.h"

#define STEP 300000LL                /* 5 minutes */
#define T0 1767571200000LL           /* Monday 2026-01-05 00:00:00 UTC */
#define DAY_STEPS 288
#define STALE_BITS 0x7ff0000000000002ULL

static uint64_t seed = 0x5eed0f0aecac7ULL;
static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_start(uint64_t tag) { rng_state = seed ^ (tag * 0xd1342543de82ef95ULL); }
static double unif(void) { return ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0; }
static double gauss(void) { return sqrt(-2 * log(unif())) * cos(2 * M_PI * unif()); }

static double from_bits(uint64_t u) { double v; memcpy(&v, &u, 8); return v; }
static uint64_t bits_of(double v) { uint64_t u; memcpy(&u, &v, 8); return u; }

/* A request-rate-like pattern: daily sine peak in the afternoon, lower at weekends. */
static double pattern(int64_t i)
{
    double day = (double)(i % DAY_STEPS) / DAY_STEPS;
    int dow = (int)((i / DAY_STEPS) % 7); /* 0 = Monday */
    double base = 1000 + 400 * sin(2 * M_PI * (day - 0.25));
    return dow >= 5 ? base * 0.7 : base;
}

static int64_t ts(int64_t i) { return T0 + i * STEP; }

static ag_detect_t *new_detector(void)
{
    ag_detect_config_t c;
    ag_detect_config_default(&c, STEP);
    ag_detect_t *d = NULL;
    assert_int_equal(ag_detect_new(&c, &d), AG_OK);
    return d;
}

static double step_score(ag_detect_t *d, int64_t t, double v)
{
    ag_detect_result_t r;
    ag_detect_step(d, t, v, &r);
    assert_false(isnan(r.score));
    assert_true(r.score >= 0 && r.score <= 1);
    assert_true(isfinite(r.forecast) && isfinite(r.sigma));
    return r.score;
}

/* ---- Holt-Winters ---------------------------------------------------------------------------- */

static void test_config(void **state)
{
    (void)state;
    ag_hw_config_t c;
    ag_hw_config_default(&c, STEP);
    assert_int_equal(c.day_buckets, 288);
    assert_int_equal(c.week_buckets, 168);
    assert_int_equal(ag_hw_config_check(&c, NULL), AG_OK);
    ag_hw_config_default(&c, 15000);
    assert_int_equal(c.day_buckets, 288);
    assert_int_equal(c.week_buckets, 168);
    ag_detect_config_t dc; /* the scoring model: finer weekly buckets, faster daily ones */
    ag_detect_config_default(&dc, STEP);
    assert_int_equal(dc.hw.week_buckets, 672);
    assert_int_equal(dc.fc.week_buckets, 168);
    assert_true(dc.hw.p.gamma_day > dc.fc.p.gamma_day);
    ag_hw_config_default(&c, 86400000);
    assert_int_equal(c.day_buckets, 0);
    assert_int_equal(c.week_buckets, 0);
    ag_hw_config_default(&c, 3600000);
    assert_int_equal(c.day_buckets, 24);
    assert_int_equal(c.week_buckets, 168);

    ag_hw_config_default(&c, STEP);
    ag_hw_config_t bad = c;
    bad.p.alpha = 1.5;
    ag_errmsg_t e;
    assert_int_equal(ag_hw_config_check(&bad, &e), AG_EINVAL);
    bad = c;
    bad.p.phi = NAN;
    assert_int_equal(ag_hw_config_check(&bad, NULL), AG_EINVAL);
    bad = c;
    bad.day_buckets = 1;
    assert_int_equal(ag_hw_config_check(&bad, NULL), AG_EINVAL);
    bad = c;
    bad.step_ms = 0;
    ag_hw_t *m = (ag_hw_t *)&bad;
    assert_int_equal(ag_hw_new(&bad, &m), AG_EINVAL);
    assert_null(m);
}

static void test_seasonal_forecast(void **state)
{
    (void)state;
    ag_hw_config_t c;
    ag_hw_config_default(&c, STEP);
    ag_hw_t *m;
    assert_int_equal(ag_hw_new(&c, &m), AG_OK);
    ag_hw_forecast_t f;
    assert_int_equal(ag_hw_forecast(m, ts(0), 0.95, &f), AG_ENOTFOUND);
    int64_t n = 21 * DAY_STEPS;
    for (int64_t i = 0; i < n; i++) assert_int_equal(ag_hw_update(m, ts(i), pattern(i), 1, NULL), AG_OK);
    assert_int_equal(ag_hw_count(m), (uint64_t)n);
    assert_int_equal(ag_hw_last_time(m), ts(n - 1));
    /* one step and up to two days ahead, weekdays and the weekend: within 2% of the amplitude */
    double worst = 0;
    for (int64_t h = 1; h <= 2 * DAY_STEPS; h += 7) {
        assert_int_equal(ag_hw_forecast(m, ts(n - 1 + h), 0.95, &f), AG_OK);
        double err = fabs(f.mean - pattern(n - 1 + h));
        if (err > worst) worst = err;
        assert_true(f.lower <= f.mean && f.mean <= f.upper);
    }
    printf("test_forecast: seasonal forecast worst error %.2f (amplitude 400)\n", worst);
    assert_true(worst < 8.0);
    double yhat, sig;
    assert_int_equal(ag_hw_predict(m, ts(n), &yhat, &sig), AG_OK);
    assert_true(fabs(yhat - pattern(n)) < 4.0);
    printf("test_forecast: one-step sigma %.2f\n", sig);
    assert_true(sig > 0 && sig < 10);
    /* intervals widen with the horizon */
    ag_hw_forecast_t f1, f12, f288;
    ag_hw_forecast(m, ts(n), 0.95, &f1);
    ag_hw_forecast(m, ts(n + 11), 0.95, &f12);
    ag_hw_forecast(m, ts(n + 287), 0.95, &f288);
    assert_true(f1.upper - f1.lower < f12.upper - f12.lower);
    assert_true(f12.upper - f12.lower < f288.upper - f288.lower);
    assert_int_equal(ag_hw_forecast(m, ts(n), 1.0, &f), AG_EINVAL);
    assert_int_equal(ag_hw_forecast(m, ts(n), 0.0, &f), AG_EINVAL);
    /* far horizons stay finite */
    assert_int_equal(ag_hw_forecast(m, INT64_MAX, 0.99, &f), AG_OK);
    assert_true(isfinite(f.mean) && isfinite(f.lower) && isfinite(f.upper));
    ag_hw_free(m);
}

static void test_interval_coverage(void **state)
{
    (void)state;
    rng_start(2);
    ag_hw_config_t c;
    ag_hw_config_default(&c, STEP);
    ag_hw_t *m;
    assert_int_equal(ag_hw_new(&c, &m), AG_OK);
    int inside = 0, total = 0;
    for (int64_t i = 0; i < 21 * DAY_STEPS; i++) {
        double v = pattern(i) + 20 * gauss();
        if (i >= 14 * DAY_STEPS) {
            ag_hw_forecast_t f;
            assert_int_equal(ag_hw_forecast(m, ts(i), 0.9, &f), AG_OK);
            inside += v >= f.lower && v <= f.upper;
            total++;
        }
        ag_hw_update(m, ts(i), v, 1, NULL);
    }
    double cov = (double)inside / total;
    printf("test_forecast: 90%% interval coverage %.3f\n", cov);
    assert_true(cov > 0.82 && cov < 0.97);
    ag_hw_free(m);
}

static void test_log_scale(void **state)
{
    (void)state;
    ag_hw_config_t c;
    ag_hw_config_default(&c, STEP);
    c.log_scale = true;
    ag_hw_t *m;
    assert_int_equal(ag_hw_new(&c, &m), AG_OK);
    for (int64_t i = 0; i < 14 * DAY_STEPS; i++)
        assert_int_equal(ag_hw_update(m, ts(i), pattern(i), 1, NULL), AG_OK);
    assert_int_equal(ag_hw_update(m, ts(14 * DAY_STEPS), 0.0, 1, NULL), AG_EINVAL);
    assert_int_equal(ag_hw_update(m, ts(14 * DAY_STEPS), -3.0, 1, NULL), AG_EINVAL);
    ag_hw_forecast_t f;
    assert_int_equal(ag_hw_forecast(m, ts(14 * DAY_STEPS), 0.95, &f), AG_OK);
    assert_true(fabs(f.mean - pattern(14 * DAY_STEPS)) < 10);
    assert_true(f.lower > 0 && f.lower <= f.mean && f.mean <= f.upper);
    ag_hw_free(m);
}

static void test_hw_rejects(void **state)
{
    (void)state;
    ag_hw_config_t c;
    ag_hw_config_default(&c, STEP);
    ag_hw_t *m;
    assert_int_equal(ag_hw_new(&c, &m), AG_OK);
    double yhat;
    assert_int_equal(ag_hw_predict(m, ts(0), &yhat, NULL), AG_ENOTFOUND);
    assert_int_equal(ag_hw_update(m, ts(0), NAN, 1, NULL), AG_EINVAL);
    assert_int_equal(ag_hw_update(m, ts(0), INFINITY, 1, NULL), AG_EINVAL);
    assert_int_equal(ag_hw_count(m), 0);
    assert_int_equal(ag_hw_update(m, ts(5), 1.0, 1, NULL), AG_OK);
    assert_int_equal(ag_hw_update(m, ts(5), 2.0, 1, NULL), AG_ECONFLICT);
    assert_int_equal(ag_hw_update(m, ts(4), 2.0, 1, NULL), AG_ECONFLICT);
    assert_int_equal(ag_hw_count(m), 1);
    /* opposite huge values: refused or learned, never a non-finite state */
    ag_hw_update(m, ts(6), 1e300, 1, NULL);
    ag_hw_update(m, ts(7), -1e300, 1, NULL);
    ag_hw_update(m, ts(8), DBL_MAX, 1, NULL);
    double sig;
    assert_int_equal(ag_hw_predict(m, ts(9), &yhat, &sig), AG_OK);
    assert_true(isfinite(yhat) && isfinite(sig));
    ag_hw_params_t p = ag_hw_config(m)->p;
    p.gamma_day = -1;
    assert_int_equal(ag_hw_set_params(m, &p), AG_EINVAL);
    p.gamma_day = 0.2;
    assert_int_equal(ag_hw_set_params(m, &p), AG_OK);
    assert_true(ag_hw_config(m)->p.gamma_day == 0.2);
    ag_hw_free(m);
    ag_hw_free(NULL);
}

/* ---- detector ---------------------------------------------------------------------------------- */

static void test_spike(void **state)
{
    (void)state;
    rng_start(3);
    ag_detect_t *d = new_detector();
    int64_t spike = 10 * DAY_STEPS + 123, dip = 12 * DAY_STEPS + 200;
    double max_normal = 0, sum_normal = 0;
    int nn = 0;
    for (int64_t i = 0; i < 14 * DAY_STEPS; i++) {
        double v = pattern(i) + 20 * gauss();
        if (i == spike) v += 400;
        if (i == dip) v -= 400;
        double s = step_score(d, ts(i), v);
        if (i == spike || i == dip) {
            printf("test_forecast: %s scores %.4f\n", i == spike ? "spike" : "dip", s);
            assert_true(s > 0.9);
        } else if (i > 8 * DAY_STEPS && (i < spike || i > spike + 2) && (i < dip || i > dip + 2)) {
            if (s > max_normal) max_normal = s;
            sum_normal += s;
            nn++;
        }
    }
    printf("test_forecast: normal points: mean score %.4f, max %.4f\n", sum_normal / nn, max_normal);
    assert_true(sum_normal / nn < 0.05);
    assert_true(max_normal < 0.5);
    ag_detect_free(d);
}

static void test_level_shift(void **state)
{
    (void)state;
    rng_start(4);
    ag_detect_t *d = new_detector();
    int64_t at = 9 * DAY_STEPS + 100;
    double first_alarm = -1, late_max = 0;
    for (int64_t i = 0; i < 12 * DAY_STEPS; i++) {
        double v = pattern(i) + 20 * gauss() + (i >= at ? 150 : 0);
        double s = step_score(d, ts(i), v);
        if (i >= at && i < at + 24 && s >= 0.5 && first_alarm < 0) first_alarm = (double)(i - at);
        if (i >= at + DAY_STEPS && s > late_max) late_max = s;
    }
    printf("test_forecast: level shift alarmed after %.0f steps; max score a day later %.3f\n",
           first_alarm, late_max);
    assert_true(first_alarm >= 0);
    assert_true(late_max < 0.5); /* adopted */
    ag_detect_free(d);
}

static void test_variance_and_flatline(void **state)
{
    (void)state;
    rng_start(5);
    ag_detect_t *d = new_detector();
    int64_t var_at = 9 * DAY_STEPS, var_end = var_at + 48;
    int64_t flat_at = 11 * DAY_STEPS + 50, flat_end = flat_at + 36;
    double var_max = 0, flat_max = 0, stuck = 0;
    for (int64_t i = 0; i < 13 * DAY_STEPS; i++) {
        double noise = 20 * gauss();
        double v = pattern(i) + (i >= var_at && i < var_end ? 5 * noise : noise);
        if (i == flat_at) stuck = v;
        if (i >= flat_at && i < flat_end) v = stuck;
        double s = step_score(d, ts(i), v);
        if (i >= var_at && i < var_end && s > var_max) var_max = s;
        if (i >= flat_at && i < flat_end && s > flat_max) flat_max = s;
    }
    assert_true(var_max > 0.6);
    assert_true(flat_max > 0.6);
    ag_detect_free(d);
}

static void test_never_nan(void **state)
{
    (void)state;
    rng_start(6);
    ag_detect_t *d = new_detector();
    ag_tiny_t tiny;
    ag_tiny_init(&tiny);
    const double specials[] = {NAN, INFINITY, -INFINITY, from_bits(STALE_BITS), from_bits(0xfff8deadbeef0001ULL),
                               1e300, -1e300, DBL_MAX, -DBL_MAX, 5e-324, -0.0, 0.0};
    int64_t t = T0;
    for (int64_t i = 0; i < 6 * DAY_STEPS; i++) {
        double v;
        uint64_t k = rnd() % 100;
        if (k < 3) v = specials[rnd() % (sizeof specials / sizeof specials[0])];
        else if (i > 2 * DAY_STEPS && i < 3 * DAY_STEPS) v = 42.0; /* constant stretch */
        else v = pattern(i) + 20 * gauss();
        /* irregular steps, some gaps, a few out-of-order or repeated timestamps */
        uint64_t g = rnd() % 200;
        if (g == 0) t += 3 * 86400000LL;
        else if (g == 1) t -= STEP;
        else if (g == 2) t += 0;
        else t += STEP + (int64_t)(rnd() % 60000) - 30000;
        step_score(d, t, v);
        double ts_score = ag_tiny_step(&tiny, t, v);
        assert_true(ts_score >= 0 && ts_score <= 1);
        ag_hw_forecast_t f;
        if (ag_hw_forecast(ag_detect_model(d), t + 3600000, 0.95, &f) == AG_OK)
            assert_true(isfinite(f.mean) && isfinite(f.lower) && isfinite(f.upper));
    }
    ag_detect_free(d);

    /* a constant series from the start, then a tiny change, then huge values */
    d = new_detector();
    ag_tiny_init(&tiny);
    for (int64_t i = 0; i < 3 * DAY_STEPS; i++) {
        double v = i < 2 * DAY_STEPS ? 7.0 : i < 2 * DAY_STEPS + 10 ? 7.0000001 : (i % 2 ? 1e308 : -1e308);
        double s = step_score(d, ts(i), v);
        if (i > DAY_STEPS && i < 2 * DAY_STEPS) assert_true(s < 0.5);
        double s2 = ag_tiny_step(&tiny, ts(i), v);
        assert_true(s2 >= 0 && s2 <= 1);
    }
    ag_detect_free(d);
    ag_detect_free(NULL);

    /* a raw counter with resets (the daemon models rates, but a counter must not break it) */
    d = new_detector();
    ag_tiny_init(&tiny);
    double counter = 0;
    for (int64_t i = 0; i < 4 * DAY_STEPS; i++) {
        counter = i % 500 == 499 ? 0 : counter + 1e9 * (1 + 0.1 * gauss());
        step_score(d, ts(i), counter);
        double s2 = ag_tiny_step(&tiny, ts(i), counter);
        assert_true(s2 >= 0 && s2 <= 1);
    }
    ag_detect_free(d);

    /* refused samples */
    d = new_detector();
    ag_detect_result_t r;
    assert_int_equal(ag_detect_step(d, ts(0), NAN, &r), AG_EINVAL);
    assert_true(r.score == 0);
    assert_int_equal(ag_detect_step(d, ts(1), 1, &r), AG_OK);
    assert_int_equal(ag_detect_step(d, ts(1), 1, &r), AG_ECONFLICT);
    assert_int_equal(ag_detect_step(d, ts(0), 1, &r), AG_ECONFLICT);
    assert_true(r.score == 0);
    ag_detect_free(d);
}

/* ---- persistence --------------------------------------------------------------------------------- */

static void feed(ag_detect_t *d, int64_t from, int64_t to, uint64_t tag, double *scores)
{
    rng_start(tag);
    for (int64_t i = from; i < to; i++) {
        double v = pattern(i) + 20 * gauss() + (i % 997 == 0 ? 300 : 0) + (i > 8 * DAY_STEPS ? 100 : 0);
        if (i % 1301 == 0) v = from_bits(STALE_BITS);
        ag_detect_result_t r;
        ag_detect_step(d, ts(i), v, &r);
        if (scores) scores[i - from] = r.score;
    }
}

static void test_detect_save_load(void **state)
{
    (void)state;
    ag_detect_t *a = new_detector();
    feed(a, 0, 10 * DAY_STEPS, 7, NULL);
    ag_buf_t b1 = AG_BUF_INIT, b2 = AG_BUF_INIT;
    assert_int_equal(ag_detect_save(a, &b1), AG_OK);
    ag_detect_t *b = NULL;
    ag_errmsg_t e;
    assert_int_equal(ag_detect_load((const uint8_t *)b1.data, b1.len, &b, &e), AG_OK);
    assert_int_equal(ag_detect_save(b, &b2), AG_OK);
    assert_int_equal(b1.len, b2.len);
    assert_memory_equal(b1.data, b2.data, b1.len);
    /* both continue bit-identically */
    int64_t n = 3 * DAY_STEPS;
    double *sa = malloc(n * sizeof *sa), *sb = malloc(n * sizeof *sb);
    assert_non_null(sa);
    assert_non_null(sb);
    feed(a, 10 * DAY_STEPS, 13 * DAY_STEPS, 8, sa);
    feed(b, 10 * DAY_STEPS, 13 * DAY_STEPS, 8, sb);
    for (int64_t i = 0; i < n; i++) assert_true(bits_of(sa[i]) == bits_of(sb[i]));
    ag_buf_reset(&b1);
    ag_buf_reset(&b2);
    ag_detect_save(a, &b1);
    ag_detect_save(b, &b2);
    assert_int_equal(b1.len, b2.len);
    assert_memory_equal(b1.data, b2.data, b1.len);
    printf("test_forecast: detector state %zu bytes\n", b1.len);

    /* every truncation fails cleanly; byte flips fail or load a model that still works */
    const uint8_t *p = (const uint8_t *)b1.data;
    for (size_t len = 0; len < b1.len; len += (len < 200 ? 1 : 97)) {
        ag_detect_t *x = (ag_detect_t *)&e;
        int rc = ag_detect_load(p, len, &x, &e);
        assert_true(rc == AG_ECORRUPT || rc == AG_EUNSUPPORTED);
        assert_null(x);
    }
    uint8_t *copy = malloc(b1.len);
    assert_non_null(copy);
    rng_start(9);
    for (int k = 0; k < 2000; k++) {
        memcpy(copy, p, b1.len);
        size_t at = (size_t)(rnd() % (k < 1000 ? 400 : b1.len));
        copy[at] ^= (uint8_t)(1u << (rnd() % 8));
        ag_detect_t *x = NULL;
        int rc = ag_detect_load(copy, b1.len, &x, NULL);
        if (rc == AG_OK) {
            for (int64_t i = 0; i < 50; i++) step_score(x, ts(13 * DAY_STEPS + i), pattern(i));
            ag_detect_free(x);
        } else {
            assert_true(rc == AG_ECORRUPT || rc == AG_EUNSUPPORTED);
            assert_null(x);
        }
    }
    /* a future version is refused as such */
    memcpy(copy, p, b1.len);
    copy[4] = 99;
    ag_detect_t *x = NULL;
    assert_int_equal(ag_detect_load(copy, b1.len, &x, &e), AG_EUNSUPPORTED);
    /* trailing bytes */
    ag_buf_append(&b1, "x", 1);
    assert_int_equal(ag_detect_load((const uint8_t *)b1.data, b1.len, &x, &e), AG_ECORRUPT);
    assert_null(x);
    free(copy);
    free(sa);
    free(sb);
    ag_buf_free(&b1);
    ag_buf_free(&b2);
    ag_detect_free(a);
    ag_detect_free(b);
}

static void test_hw_save_load(void **state)
{
    (void)state;
    ag_hw_config_t c;
    ag_hw_config_default(&c, STEP);
    ag_hw_t *a, *b = NULL, *cl = NULL;
    assert_int_equal(ag_hw_new(&c, &a), AG_OK);
    ag_buf_t buf = AG_BUF_INIT;
    /* an empty model round-trips too */
    assert_int_equal(ag_hw_save(a, &buf), AG_OK);
    size_t used = 0;
    assert_int_equal(ag_hw_load((const uint8_t *)buf.data, buf.len, &used, &b, NULL), AG_OK);
    assert_int_equal(used, buf.len);
    ag_hw_free(b);
    rng_start(10);
    for (int64_t i = 0; i < 9 * DAY_STEPS; i++) ag_hw_update(a, ts(i), pattern(i) + 20 * gauss(), 1, NULL);
    ag_buf_reset(&buf);
    assert_int_equal(ag_hw_save(a, &buf), AG_OK);
    printf("test_forecast: Holt-Winters state %zu bytes\n", buf.len);
    assert_int_equal(ag_hw_load((const uint8_t *)buf.data, buf.len, &used, &b, NULL), AG_OK);
    assert_int_equal(ag_hw_clone(a, &cl), AG_OK);
    for (int64_t i = 9 * DAY_STEPS; i < 10 * DAY_STEPS; i++) {
        double v = pattern(i) + 20 * gauss(), ra, rb, rc;
        ag_hw_update(a, ts(i), v, 1, &ra);
        ag_hw_update(b, ts(i), v, 1, &rb);
        ag_hw_update(cl, ts(i), v, 1, &rc);
        assert_true(bits_of(ra) == bits_of(rb) && bits_of(ra) == bits_of(rc));
    }
    ag_hw_forecast_t fa, fb;
    ag_hw_forecast(a, ts(10 * DAY_STEPS + 50), 0.95, &fa);
    ag_hw_forecast(b, ts(10 * DAY_STEPS + 50), 0.95, &fb);
    assert_true(bits_of(fa.mean) == bits_of(fb.mean) && bits_of(fa.upper) == bits_of(fb.upper));
    /* corrupt input */
    ag_errmsg_t e;
    ag_hw_t *x;
    assert_int_equal(ag_hw_load((const uint8_t *)buf.data, 10, NULL, &x, &e), AG_ECORRUPT);
    assert_null(x);
    uint8_t *copy = malloc(buf.len);
    assert_non_null(copy);
    memcpy(copy, buf.data, buf.len);
    memcpy(copy + 14, "\xff\xff\xff\xff", 4); /* day buckets: huge */
    assert_int_equal(ag_hw_load(copy, buf.len, NULL, &x, &e), AG_ECORRUPT);
    memcpy(copy, buf.data, buf.len);
    uint64_t nan = 0x7ff8000000000000ULL;
    memcpy(copy + buf.len - 13, &nan, 8); /* a season value: NaN */
    assert_int_equal(ag_hw_load(copy, buf.len, NULL, &x, &e), AG_ECORRUPT);
    assert_null(x);
    assert_int_equal(ag_hw_load(NULL, 0, NULL, &x, &e), AG_ECORRUPT);
    free(copy);
    ag_buf_free(&buf);
    ag_hw_free(a);
    ag_hw_free(b);
    ag_hw_free(cl);
}

/* ---- tiny detector ------------------------------------------------------------------------------ */

static void test_tiny(void **state)
{
    (void)state;
    assert_true(sizeof(ag_tiny_t) <= 64);
    rng_start(11);
    ag_tiny_t s;
    ag_tiny_init(&s);
    double max_normal = 0, spike_s = 0, shift_s = 0, late = 0, flat = 0;
    int64_t n = 3000;
    for (int64_t i = 0; i < n; i++) {
        double v = 50 + 2 * gauss();
        if (i >= 1500) v += 20;     /* level shift */
        if (i == 1000) v += 40;     /* spike */
        if (i >= 2500 && i < 2520) v = 70.123; /* stuck */
        double sc = ag_tiny_step(&s, ts(i), v);
        assert_true(sc >= 0 && sc <= 1);
        if (i == 1000) spike_s = sc;
        else if (i >= 1500 && i < 1510 && sc > shift_s) shift_s = sc;
        else if (i >= 2500 && i < 2520 && sc > flat) flat = sc;
        else if (i >= 1700 && i < 2500 && sc > late) late = sc;
        else if (i > 200 && i < 1000 && sc > max_normal) max_normal = sc;
    }
    printf("test_forecast: tiny: spike %.3f shift %.3f flat %.3f normal max %.3f after shift %.3f\n",
           spike_s, shift_s, flat, max_normal, late);
    assert_true(spike_s > 0.8);
    assert_true(shift_s > 0.5);
    assert_true(flat > 0.5);
    assert_true(max_normal < 0.5);
    assert_true(late < 0.5);
    /* NaN, Inf, stale and old timestamps change nothing */
    ag_tiny_t before = s;
    assert_true(ag_tiny_step(&s, ts(n), NAN) == 0);
    assert_true(ag_tiny_step(&s, ts(n), INFINITY) == 0);
    assert_true(ag_tiny_step(&s, ts(n - 5), 1.0) == 0);
    assert_memory_equal(&before, &s, sizeof s);
    /* save, load, continue identically */
    uint8_t buf[AG_TINY_SAVED_SIZE];
    ag_tiny_save(&s, buf);
    ag_tiny_t l;
    assert_int_equal(ag_tiny_load(buf, sizeof buf, &l), AG_OK);
    for (int64_t i = n; i < n + 500; i++) {
        double v = 70 + 2 * gauss();
        assert_true(bits_of(ag_tiny_step(&s, ts(i), v)) == bits_of(ag_tiny_step(&l, ts(i), v)));
    }
    assert_memory_equal(&s, &l, sizeof s);
    /* validation */
    assert_int_equal(ag_tiny_load(buf, sizeof buf - 1, &l), AG_ECORRUPT);
    uint8_t bad[AG_TINY_SAVED_SIZE];
    memcpy(bad, buf, sizeof bad);
    bad[0] = 7;
    assert_int_equal(ag_tiny_load(bad, sizeof bad, &l), AG_EUNSUPPORTED);
    memcpy(bad, buf, sizeof bad);
    memset(bad + 16, 0xff, 8); /* mean: NaN */
    assert_int_equal(ag_tiny_load(bad, sizeof bad, &l), AG_ECORRUPT);
    memcpy(bad, buf, sizeof bad);
    bad[60] = 1; /* padding */
    assert_int_equal(ag_tiny_load(bad, sizeof bad, &l), AG_ECORRUPT);
    memcpy(bad, buf, sizeof bad);
    bad[55] = 0x80; /* p_eq negative */
    assert_int_equal(ag_tiny_load(bad, sizeof bad, &l), AG_ECORRUPT);
}

/* Counter mode: a steadily growing counter is quiet, a burst in its rate scores, a reset is
 * skipped, a stuck counter is a flatline, and a "counter" that keeps dropping is demoted. */
static void test_tiny_counter(void **state)
{
    (void)state;
    rng_start(12);
    ag_tiny_t s;
    ag_tiny_init(&s);
    double c = 1e9, max_normal = 0, burst = 0, reset = 0, after_reset = 0, stuck = 0;
    for (int64_t i = 0; i < 3000; i++) {
        double inc = 150 + 10 * gauss(); /* 10/s at 15 s steps */
        if (i >= 1000 && i < 1005) inc *= 4;
        if (i >= 2500 && i < 2530) inc = 0;
        c += inc;
        if (i == 2000) c = 37; /* restart */
        double sc = i & 1 ? ag_tiny_step(&s, ts(i), c) : ag_tiny_step_counter(&s, ts(i), c);
        assert_true(sc >= 0 && sc <= 1);
        assert_true(s.flags & AG_TINY_COUNTER);
        if (i >= 1000 && i < 1005 && sc > burst) burst = sc;
        else if (i == 2000) reset = sc;
        else if (i > 2000 && i < 2400 && sc > after_reset) after_reset = sc;
        else if (i >= 2500 && i < 2530 && sc > stuck) stuck = sc;
        else if (i > 200 && i < 1000 && sc > max_normal) max_normal = sc;
    }
    printf("test_forecast: tiny counter: burst %.3f reset %.3f after %.3f stuck %.3f normal %.3f\n",
           burst, reset, after_reset, stuck, max_normal);
    assert_true(burst > 0.8);
    assert_true(reset == 0);
    assert_true(after_reset < 0.5);
    assert_true(stuck > 0.5);
    assert_true(max_normal < 0.5);
    /* Save and load keep the mode and the meter. */
    uint8_t buf[AG_TINY_SAVED_SIZE];
    ag_tiny_save(&s, buf);
    ag_tiny_t l;
    assert_int_equal(ag_tiny_load(buf, sizeof buf, &l), AG_OK);
    assert_memory_equal(&s, &l, sizeof s);
    /* A gauge named like a counter (a sine): demoted after a few drops, then quiet. */
    ag_tiny_t d;
    ag_tiny_init(&d);
    double worst = 0;
    for (int64_t i = 0; i < 2000; i++) {
        double sc = ag_tiny_step_counter(&d, ts(i), 50 + 10 * sin((double)i / 10));
        if (i > 300 && sc > worst) worst = sc;
    }
    assert_true(d.flags & AG_TINY_DEMOTED);
    assert_false(d.flags & AG_TINY_COUNTER);
    assert_true(worst < 0.5);
    ag_tiny_save(&d, buf);
    assert_int_equal(ag_tiny_load(buf, sizeof buf, &l), AG_OK);
    assert_true(l.flags & AG_TINY_DEMOTED);
    buf[1] |= AG_TINY_COUNTER; /* both modes at once */
    assert_int_equal(ag_tiny_load(buf, sizeof buf, &l), AG_ECORRUPT);
}

/* A spike during the first day (the detector still warming up, so it is learned) must not turn
 * into an opposite weekly correction: 1-minute data, 5 samples per daily bucket visit. */
static void test_first_day_spike_forecast(void **state)
{
    (void)state;
    ag_detect_config_t c;
    ag_detect_config_default(&c, 60000);
    ag_detect_t *d;
    assert_int_equal(ag_detect_new(&c, &d), AG_OK);
    rng_start(21);
    double worst = 0;
    for (int64_t i = 0; i < 240; i++) {
        int64_t t = T0 + i * 60000;
        ag_detect_result_t r;
        ag_detect_step(d, t, i == 120 ? 250 : 50 + gauss(), &r);
        ag_hw_forecast_t f;
        if (i > 121 && ag_hw_forecast(ag_detect_forecaster(d), t + 600000, 0.95, &f) == AG_OK &&
            fabs(f.mean - 50) > worst)
            worst = fabs(f.mean - 50);
    }
    printf("test_forecast: first-day spike: worst 10-minute forecast error after it %.2f\n", worst);
    assert_true(worst < 5);
    ag_detect_free(d);
}

/* A counter that rarely moves (an error counter) does not alarm on each increment, but a burst
 * of increments does. */
static void test_tiny_sparse_counter(void **state)
{
    (void)state;
    ag_tiny_t s;
    ag_tiny_init(&s);
    s.flags = AG_TINY_COUNTER;
    double c = 0, normal = 0, burst = 0;
    for (int64_t i = 0; i < 2400; i++) {
        if (i % 37 == 0) c += 1;
        if (i >= 2000 && i < 2020) c += 500;
        double sc = ag_tiny_step(&s, ts(i), c);
        if (i > 200 && i < 2000 && sc > normal) normal = sc;
        if (i >= 2000 && i < 2040 && sc > burst) burst = sc;
    }
    printf("test_forecast: sparse counter: increments max %.3f, burst %.3f\n", normal, burst);
    assert_true(normal < 0.5);
    assert_true(burst >= 0.5);
}

int main(void)
{
    const char *env = getenv("FORECAST_SEED");
    if (env && *env) seed = strtoull(env, NULL, 0);
    printf("test_forecast: seed 0x%016" PRIx64 " (FORECAST_SEED=0x%016" PRIx64 " reproduces)\n", seed, seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_seasonal_forecast),
        cmocka_unit_test(test_interval_coverage),
        cmocka_unit_test(test_log_scale),
        cmocka_unit_test(test_hw_rejects),
        cmocka_unit_test(test_spike),
        cmocka_unit_test(test_level_shift),
        cmocka_unit_test(test_variance_and_flatline),
        cmocka_unit_test(test_never_nan),
        cmocka_unit_test(test_detect_save_load),
        cmocka_unit_test(test_hw_save_load),
        cmocka_unit_test(test_tiny),
        cmocka_unit_test(test_tiny_counter),
        cmocka_unit_test(test_tiny_sparse_counter),
        cmocka_unit_test(test_first_day_spike_forecast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
