/* functions.c - the PromQL function library as pure math (contract: include/ag_pqfunc.h).
 *
 * Range functions (rate, increase, delta, irate, idelta, deriv, predict_linear, holt_winters,
 * resets, changes, *_over_time), per-value functions (math, clamp, round, trigonometry, date
 * parts) and the quantile helpers used by quantile(), quantile_over_time() and
 * histogram_quantile(). Every function follows Prometheus 2.42's promql/functions.go and
 * promql/quantile.go in semantics and in floating-point operation order (e.g. extrapolatedRate
 * applies the counter zero-point clamp BEFORE the extrapolation threshold test, as 2.42 does;
 * later Prometheus versions swapped that order). Nothing here keeps state.
 *
 * Bit-exactness with Go: exp, ln/log2/log10, the trigonometric and the hyperbolic functions
 * come from gomath.c (include/ag_gomath.h), which follows Go's own algorithms, so they round
 * like Prometheus (the trig results match trig_functions.test bit for bit; log2(10) is one ulp
 * below that file's literal, which Prometheus itself only checks to 1e-6). asinh, acosh, atanh
 * and sqrt use C's libm (sqrt is exact in both; the other three differed from Prometheus in the
 * last bit for 0-2 % of arguments, measured).
 *
 * One exception to "allocates nothing": quantile_over_time copies the window to sort it, on
 * the stack up to 256 samples and with malloc beyond (no output if that fails).
 */
#include "ag_pqfunc.h"

#include "ag_gomath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Keep a*b+c as two roundings (Go does not fuse on amd64); clang honours this, GCC in ISO C
 * mode already defaults to -ffp-contract=off. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- Go math helpers ------------------------------------------------------------------- */

/* Go's math.Max: +Inf wins over NaN, NaN otherwise propagates, +0 beats -0. */
static double go_max(double x, double y)
{
    if ((isinf(x) && x > 0) || (isinf(y) && y > 0))
        return INFINITY;
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == 0 && x == y)
        return signbit(x) ? y : x;
    return x > y ? x : y;
}

/* Go's math.Min: -Inf wins over NaN, NaN otherwise propagates, -0 beats +0. */
static double go_min(double x, double y)
{
    if ((isinf(x) && x < 0) || (isinf(y) && y < 0))
        return -INFINITY;
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == 0 && x == y)
        return signbit(x) ? x : y;
    return x < y ? x : y;
}

/* time.Duration(ms).Seconds() as Go computes it: whole seconds + nanosecond remainder / 1e9. */
static double duration_seconds(int64_t ms)
{
    int64_t sec = ms / 1000;
    int64_t nsec = (ms % 1000) * 1000000;
    return (double)sec + (double)nsec / 1e9;
}

/* A PromQL name and its enum value, for both function tables. */
typedef struct fn_name {
    const char *name;
    int fn;
} fn_name_t;

/* The enum value of `name` in table t[0..n), 0 when absent. */
static int fn_lookup(const fn_name_t *t, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(t[i].name, name) == 0) return t[i].fn;
    return 0;
}

/* ---- range functions ------------------------------------------------------------------- */

static const fn_name_t range_names[] = {
    {"rate", AG_RF_RATE},
    {"increase", AG_RF_INCREASE},
    {"delta", AG_RF_DELTA},
    {"irate", AG_RF_IRATE},
    {"idelta", AG_RF_IDELTA},
    {"deriv", AG_RF_DERIV},
    {"resets", AG_RF_RESETS},
    {"changes", AG_RF_CHANGES},
    {"avg_over_time", AG_RF_AVG_OVER_TIME},
    {"min_over_time", AG_RF_MIN_OVER_TIME},
    {"max_over_time", AG_RF_MAX_OVER_TIME},
    {"sum_over_time", AG_RF_SUM_OVER_TIME},
    {"count_over_time", AG_RF_COUNT_OVER_TIME},
    {"stddev_over_time", AG_RF_STDDEV_OVER_TIME},
    {"stdvar_over_time", AG_RF_STDVAR_OVER_TIME},
    {"last_over_time", AG_RF_LAST_OVER_TIME},
    {"present_over_time", AG_RF_PRESENT_OVER_TIME},
    {"quantile_over_time", AG_RF_QUANTILE_OVER_TIME},
    {"predict_linear", AG_RF_PREDICT_LINEAR},
    {"holt_winters", AG_RF_HOLT_WINTERS},
    {"predict_hw", AG_RF_PREDICT_HW},
    {"predict_hw_lower", AG_RF_PREDICT_HW_LOWER},
    {"predict_hw_upper", AG_RF_PREDICT_HW_UPPER},
    {"anomaly_score_hw", AG_RF_ANOMALY_SCORE_HW},
};

ag_range_fn_t ag_range_fn_lookup(const char *name)
{
    return (ag_range_fn_t)fn_lookup(range_names, sizeof range_names / sizeof range_names[0], name);
}

/* The extrapolation half of 2.42's extrapolatedRate: `result` is last - first plus the counter
 * corrections, over n >= 2 samples from (first_t, first_v) to last_t. */
/* The factor extrapolate() multiplies by, from the durations it derives (Prometheus' order of
 * operations, so the result is bit for bit its own). */
static double extrapolation_factor(double duration_to_start, double duration_to_end,
                                   double sampled_interval, double avg_between, int64_t range_ms,
                                   bool is_rate)
{
    double threshold = avg_between * 1.1;
    double extrapolate_to = sampled_interval;
    if (duration_to_start < threshold)
        extrapolate_to += duration_to_start;
    else
        extrapolate_to += avg_between / 2;
    if (duration_to_end < threshold)
        extrapolate_to += duration_to_end;
    else
        extrapolate_to += avg_between / 2;

    double factor = extrapolate_to / sampled_interval;
    if (is_rate)
        factor /= duration_seconds(range_ms);
    return factor;
}

/* A range query over regular samples puts its windows at the same offsets from their samples
 * step after step, so the durations and the factor (five divisions) repeat: the last ones are
 * kept per thread, keyed by every integer they derive from. */
typedef struct xcache {
    bool valid, is_rate;
    int64_t to_start, to_end, interval, range_ms;
    size_t n;
    double duration_to_start, sampled_interval, factor;
    double zero_ratio; /* 2 * duration_to_start / sampled_interval (see extrapolate) */
} xcache_t;
static _Thread_local xcache_t xcache;

/* Fills the cache for a window whose integers differ from the cached ones. */
static __attribute__((noinline)) void xcache_fill(xcache_t *c, int64_t to_start, int64_t to_end,
                                                  int64_t interval, size_t n, int64_t range_ms,
                                                  bool is_rate)
{
    double duration_to_start = (double)to_start / 1000;
    double duration_to_end = (double)to_end / 1000;
    double sampled_interval = (double)interval / 1000;
    double avg_between = sampled_interval / (double)(n - 1);
    *c = (xcache_t){true, is_rate, to_start, to_end, interval, range_ms, n, duration_to_start,
                    sampled_interval,
                    extrapolation_factor(duration_to_start, duration_to_end, sampled_interval,
                                         avg_between, range_ms, is_rate),
                    2 * duration_to_start / sampled_interval};
}

/* A counter extrapolated back to zero inside the window (see extrapolate). */
static __attribute__((noinline)) double extrapolate_zero(const xcache_t *c, double result,
                                                         double first_v, int64_t to_end, size_t n,
                                                         int64_t range_ms, bool is_rate)
{
    double duration_to_zero = c->sampled_interval * (first_v / result);
    if (!(duration_to_zero < c->duration_to_start)) return result * c->factor;
    double duration_to_end = (double)to_end / 1000;
    double avg_between = c->sampled_interval / (double)(n - 1);
    return result * extrapolation_factor(duration_to_zero, duration_to_end, c->sampled_interval,
                                         avg_between, range_ms, is_rate);
}

/* Whether the cache holds the window with these integers (range and kind checked apart). */
static inline bool xcache_hit(const xcache_t *c, int64_t to_start, int64_t to_end,
                              int64_t interval, size_t n)
{
    return c->valid && !((uint64_t)(to_start ^ c->to_start) | (uint64_t)(to_end ^ c->to_end) |
                         (uint64_t)(interval ^ c->interval) | (uint64_t)(n ^ c->n));
}

/* The cached factor applied to the window's raw result. A counter whose first value is at
 * least twice what reaching zero at the window's start would need (first_v / result >= 2 *
 * duration_to_start / sampled_interval, a margin no rounding can cross) does not reach zero
 * inside the window: no division needed to know. */
static inline double xcache_apply(const xcache_t *c, double result, double first_v,
                                  int64_t to_end, size_t n, int64_t range_ms, bool is_counter,
                                  bool is_rate)
{
    if (is_counter && result > 0 && first_v >= 0 && !(first_v >= result * c->zero_ratio))
        return extrapolate_zero(c, result, first_v, to_end, n, range_ms, is_rate);
    return result * c->factor;
}

static inline double extrapolate(xcache_t *c, double result, int64_t first_t, double first_v,
                                 int64_t last_t, size_t n, int64_t t, int64_t range_ms,
                                 bool is_counter, bool is_rate)
{
    int64_t to_start = first_t - (t - range_ms), to_end = t - last_t, interval = last_t - first_t;
    if (c->range_ms != range_ms || c->is_rate != is_rate ||
        !xcache_hit(c, to_start, to_end, interval, n))
        xcache_fill(c, to_start, to_end, interval, n, range_ms, is_rate);
    return xcache_apply(c, result, first_v, to_end, n, range_ms, is_counter, is_rate);
}

/* 2.42 extrapolatedRate (float samples only). The caller guarantees n >= 2. */
static double extrapolated_rate(const ag_point_t *p, size_t n, int64_t t, int64_t range_ms,
                                bool is_counter, bool is_rate)
{
    double result = p[n - 1].v - p[0].v;

    if (is_counter) {
        double prev = p[0].v;
        for (size_t i = 1; i < n; i++) {
            double cur = p[i].v;
            if (cur < prev)
                result += prev;
            prev = cur;
        }
    }
    return extrapolate(&xcache, result, p[0].t, p[0].v, p[n - 1].t, n, t, range_ms, is_counter, is_rate);
}

bool ag_range_fn_rollups(ag_range_fn_t f, const ag_rollup_t *b, size_t n, const ag_point_t *edge,
                         int64_t t, int64_t range_ms, double *out)
{
    ag_rollup_t a;
    if (n) {
        a = b[0];
        for (size_t i = 1; i < n; i++)
            ag_rollup_merge(&a, &b[i]);
        if (edge)
            ag_rollup_add(&a, edge->t, edge->v);
    } else if (edge) {
        ag_rollup_init(&a, edge->t, edge->t, edge->v);
    } else {
        return false;
    }
    switch (f) {
    case AG_RF_RATE:
    case AG_RF_INCREASE:
    case AG_RF_DELTA: {
        if (a.count < 2)
            return false;
        bool counter = f != AG_RF_DELTA;
        double result = a.last - a.first;
        if (counter && a.corr != 0)
            result += a.corr;
        *out = extrapolate(&xcache, result, a.first_t, a.first, a.last_t, (size_t)a.count, t, range_ms,
                           counter, f == AG_RF_RATE);
        return true;
    }
    case AG_RF_MIN_OVER_TIME: *out = a.min; return true;
    case AG_RF_MAX_OVER_TIME: *out = a.max; return true;
    case AG_RF_SUM_OVER_TIME: *out = a.sum; return true;
    case AG_RF_COUNT_OVER_TIME: *out = (double)a.count; return true;
    case AG_RF_AVG_OVER_TIME: *out = a.sum / (double)a.count; return true;
    case AG_RF_LAST_OVER_TIME: *out = a.last; return true;
    case AG_RF_PRESENT_OVER_TIME: *out = 1; return true;
    default: return false;
    }
}

/* 2.42 instantValue (irate / idelta). The caller guarantees n >= 2. */
static bool instant_value(const ag_point_t *p, size_t n, bool is_rate, double *out)
{
    const ag_point_t *last = &p[n - 1];
    const ag_point_t *prev = &p[n - 2];
    double result;
    if (is_rate && last->v < prev->v)
        result = last->v; /* counter reset */
    else
        result = last->v - prev->v;
    int64_t interval = last->t - prev->t;
    if (interval == 0)
        return false;
    if (is_rate)
        result /= (double)interval / 1000;
    *out = result;
    return true;
}

/* 2.42 linearRegression: plain (non-compensated) sums, x relative to intercept_time. */
/* Prometheus' kahanSumInc: compensated summation with Neumaier's improvement. */
static void kahan_inc(double inc, double *sum, double *c)
{
    double t = *sum + inc;
    if (fabs(*sum) >= fabs(inc))
        *c += (*sum - t) + inc;
    else
        *c += (inc - t) + *sum;
    *sum = t;
}

/* 2.42 linearRegression: compensated sums; a constant series has slope 0. */
static void linear_regression(const ag_point_t *p, size_t n, int64_t intercept_time,
                              double *slope, double *intercept)
{
    double cnt = 0, sum_x = 0, c_x = 0, sum_y = 0, c_y = 0, sum_xy = 0, c_xy = 0, sum_x2 = 0,
           c_x2 = 0;
    double init_y = p[0].v;
    bool const_y = true;
    for (size_t i = 0; i < n; i++) {
        if (const_y && i > 0 && p[i].v != init_y) const_y = false;
        double x = (double)(p[i].t - intercept_time) / 1e3;
        cnt += 1.0;
        kahan_inc(x, &sum_x, &c_x);
        kahan_inc(p[i].v, &sum_y, &c_y);
        kahan_inc(x * p[i].v, &sum_xy, &c_xy);
        kahan_inc(x * x, &sum_x2, &c_x2);
    }
    if (const_y) {
        if (isinf(init_y)) {
            *slope = *intercept = NAN;
        } else {
            *slope = 0;
            *intercept = init_y;
        }
        return;
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    double cov_xy = sum_xy - sum_x * sum_y / cnt;
    double var_x = sum_x2 - sum_x * sum_x / cnt;
    *slope = cov_xy / var_x;
    *intercept = sum_y / cnt - *slope * sum_x / cnt;
}

/* 2.42 calcTrendValue. */
static double calc_trend_value(size_t i, double tf, double s0, double s1, double b)
{
    if (i == 0)
        return b;
    double x = tf * (s1 - s0);
    double y = (1 - tf) * b;
    return x + y;
}

static double holt_winters(const ag_point_t *p, size_t n, double sf, double tf)
{
    double s0 = 0, s1 = p[0].v, b = p[1].v - p[0].v;
    for (size_t i = 1; i < n; i++) {
        double x = sf * p[i].v;
        b = calc_trend_value(i - 1, tf, s0, s1, b);
        double y = (1 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    return s1;
}

/* 2.42 avg_over_time: an incremental mean with compensated updates. */
static double avg_over_time(const ag_point_t *p, size_t n)
{
    double mean = 0, count = 0, c = 0;
    for (size_t i = 0; i < n; i++) {
        double v = p[i].v;
        count++;
        if (isinf(mean)) {
            /* Same-sign Inf: mean is already right; finite v cannot change an infinite mean
             * (and the update below would turn it into NaN). */
            if (isinf(v) && (mean > 0) == (v > 0))
                continue;
            if (!isinf(v) && !isnan(v))
                continue;
        }
        kahan_inc(v / count - mean / count, &mean, &c);
    }
    return isinf(mean) ? mean : mean + c;
}

static double stdvar_over_time(const ag_point_t *p, size_t n)
{
    double count = 0, mean = 0, c_mean = 0, aux = 0, c_aux = 0;
    for (size_t i = 0; i < n; i++) {
        count++;
        double delta = p[i].v - (mean + c_mean);
        kahan_inc(delta / count, &mean, &c_mean);
        kahan_inc(delta * (p[i].v - (mean + c_mean)), &aux, &c_aux);
    }
    return (aux + c_aux) / count;
}

/* quantile() over the window values; uses a small stack buffer or the heap for large windows. */
static double quantile_over_time(double q, const ag_point_t *p, size_t n, bool *ok)
{
    double stackbuf[256];
    double *v = n <= 256 ? stackbuf : malloc(n * sizeof *v);
    if (!v) {
        *ok = false;
        return NAN;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = p[i].v;
    double r = ag_quantile(q, v, n);
    if (v != stackbuf)
        free(v);
    *ok = true;
    return r;
}

void ag_range_fn_increase_many(ag_range_fn_t f, const ag_point_t *p, const uint32_t *lo,
                               const uint32_t *hi, const double *inc, const int64_t *t,
                               size_t n, int64_t range_ms, double *out)
{
    bool is_rate = f == AG_RF_RATE;
    xcache_t c = xcache; /* a local copy the compiler may keep in registers */
    if (c.range_ms != range_ms || c.is_rate != is_rate) c.valid = false;
    for (size_t i = 0; i < n; i++) {
        const ag_point_t *a = &p[lo[i]], *b = &p[hi[i] - 1];
        size_t cnt = hi[i] - lo[i];
        int64_t to_start = a->t - (t[i] - range_ms), to_end = t[i] - b->t, interval = b->t - a->t;
        if (!xcache_hit(&c, to_start, to_end, interval, cnt))
            xcache_fill(&c, to_start, to_end, interval, cnt, range_ms, is_rate);
        out[i] = xcache_apply(&c, inc[i], a->v, to_end, cnt, range_ms, true, is_rate);
    }
    xcache = c;
}

bool ag_range_fn_eval(ag_range_fn_t f, const ag_point_t *p, size_t n, int64_t t,
                      int64_t range_ms, const double *args, double *out)
{
    /* The engine never calls a range function for a series without samples in the window. */
    if (!p || n == 0 || !out)
        return false;

    switch (f) {
    case AG_RF_RATE:
    case AG_RF_INCREASE:
    case AG_RF_DELTA:
        if (n < 2)
            return false;
        *out = extrapolated_rate(p, n, t, range_ms, f != AG_RF_DELTA, f == AG_RF_RATE);
        return true;

    case AG_RF_IRATE:
    case AG_RF_IDELTA:
        if (n < 2)
            return false;
        return instant_value(p, n, f == AG_RF_IRATE, out);

    case AG_RF_DERIV: {
        if (n < 2)
            return false;
        double slope, intercept;
        /* Intercept near the samples to avoid precision loss (Prometheus issue 2674). */
        linear_regression(p, n, p[0].t, &slope, &intercept);
        *out = slope;
        return true;
    }

    case AG_RF_PREDICT_LINEAR: {
        if (n < 2 || !args)
            return false;
        double slope, intercept;
        linear_regression(p, n, t, &slope, &intercept);
        *out = slope * args[0] + intercept;
        return true;
    }

    case AG_RF_HOLT_WINTERS:
        if (n < 2 || !args)
            return false;
        *out = holt_winters(p, n, args[0], args[1]);
        return true;

    case AG_RF_PREDICT_HW:
    case AG_RF_PREDICT_HW_LOWER:
    case AG_RF_PREDICT_HW_UPPER:
    case AG_RF_ANOMALY_SCORE_HW:
        return ag_range_fn_hw(f, p, n, t, args, out);

    case AG_RF_RESETS: {
        int resets = 0;
        double prev = p[0].v;
        for (size_t i = 1; i < n; i++) {
            double cur = p[i].v;
            if (cur < prev)
                resets++;
            prev = cur;
        }
        *out = (double)resets;
        return true;
    }

    case AG_RF_CHANGES: {
        int changes = 0;
        double prev = p[0].v;
        for (size_t i = 1; i < n; i++) {
            double cur = p[i].v;
            if (cur != prev && !(isnan(cur) && isnan(prev)))
                changes++;
            prev = cur;
        }
        *out = (double)changes;
        return true;
    }

    case AG_RF_AVG_OVER_TIME:
        *out = avg_over_time(p, n);
        return true;

    case AG_RF_MIN_OVER_TIME: {
        double m = p[0].v;
        for (size_t i = 0; i < n; i++)
            if (p[i].v < m || isnan(m))
                m = p[i].v;
        *out = m;
        return true;
    }

    case AG_RF_MAX_OVER_TIME: {
        double m = p[0].v;
        for (size_t i = 0; i < n; i++)
            if (p[i].v > m || isnan(m))
                m = p[i].v;
        *out = m;
        return true;
    }

    case AG_RF_SUM_OVER_TIME: { /* 2.42: compensated, the compensation left out at +-Inf */
        double sum = 0, c = 0;
        for (size_t i = 0; i < n; i++)
            kahan_inc(p[i].v, &sum, &c);
        *out = isinf(sum) ? sum : sum + c;
        return true;
    }

    case AG_RF_COUNT_OVER_TIME:
        *out = (double)n;
        return true;

    case AG_RF_STDDEV_OVER_TIME:
        *out = sqrt(stdvar_over_time(p, n));
        return true;

    case AG_RF_STDVAR_OVER_TIME:
        *out = stdvar_over_time(p, n);
        return true;

    case AG_RF_LAST_OVER_TIME:
        *out = p[n - 1].v;
        return true;

    case AG_RF_PRESENT_OVER_TIME:
        *out = 1;
        return true;

    case AG_RF_QUANTILE_OVER_TIME: {
        if (!args)
            return false;
        bool ok;
        *out = quantile_over_time(args[0], p, n, &ok);
        return ok;
    }
    }
    return false;
}

/* ---- value functions ------------------------------------------------------------------- */

static const fn_name_t value_names[] = {
    {"abs", AG_VF_ABS},
    {"ceil", AG_VF_CEIL},
    {"floor", AG_VF_FLOOR},
    {"round", AG_VF_ROUND},
    {"sqrt", AG_VF_SQRT},
    {"exp", AG_VF_EXP},
    {"ln", AG_VF_LN},
    {"log2", AG_VF_LOG2},
    {"log10", AG_VF_LOG10},
    {"sgn", AG_VF_SGN},
    {"clamp", AG_VF_CLAMP},
    {"clamp_min", AG_VF_CLAMP_MIN},
    {"clamp_max", AG_VF_CLAMP_MAX},
    {"sin", AG_VF_SIN},
    {"cos", AG_VF_COS},
    {"tan", AG_VF_TAN},
    {"asin", AG_VF_ASIN},
    {"acos", AG_VF_ACOS},
    {"atan", AG_VF_ATAN},
    {"sinh", AG_VF_SINH},
    {"cosh", AG_VF_COSH},
    {"tanh", AG_VF_TANH},
    {"asinh", AG_VF_ASINH},
    {"acosh", AG_VF_ACOSH},
    {"atanh", AG_VF_ATANH},
    {"deg", AG_VF_DEG},
    {"rad", AG_VF_RAD},
    {"day_of_week", AG_VF_DAY_OF_WEEK},
    {"hour", AG_VF_HOUR},
    {"minute", AG_VF_MINUTE},
    {"month", AG_VF_MONTH},
    {"year", AG_VF_YEAR},
    {"days_in_month", AG_VF_DAYS_IN_MONTH},
    {"day_of_month", AG_VF_DAY_OF_MONTH},
    {"day_of_year", AG_VF_DAY_OF_YEAR},
};

ag_value_fn_t ag_value_fn_lookup(const char *name)
{
    return (ag_value_fn_t)fn_lookup(value_names, sizeof value_names / sizeof value_names[0], name);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static bool is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

/* Civil date (proleptic Gregorian, UTC) from days since 1970-01-01 (H. Hinnant's algorithm). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Date part of time.Unix(int64(v), 0).UTC(). Go truncates v toward zero. Values that do not fit
 * an int64 (and NaN) are implementation-defined in Go; we return NaN for them. */
static double date_part(ag_value_fn_t f, double v)
{
    if (isnan(v) || v >= 9223372036854775807.0 || v < -9223372036854775807.0)
        return NAN;
    int64_t secs = (int64_t)v;
    int64_t days = floor_div(secs, 86400);
    int64_t sod = secs - days * 86400;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    static const int cum[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};

    switch (f) {
    case AG_VF_DAY_OF_WEEK: {
        /* 1970-01-01 was a Thursday (4). */
        int64_t w = (days + 4) % 7;
        if (w < 0)
            w += 7;
        return (double)w;
    }
    case AG_VF_HOUR:
        return (double)(sod / 3600);
    case AG_VF_MINUTE:
        return (double)(sod % 3600 / 60);
    case AG_VF_MONTH:
        return (double)m;
    case AG_VF_YEAR:
        return (double)y;
    case AG_VF_DAY_OF_MONTH:
        return (double)d;
    case AG_VF_DAYS_IN_MONTH:
        return (double)(mdays[m - 1] + (m == 2 && is_leap(y)));
    case AG_VF_DAY_OF_YEAR:
        return (double)(cum[m - 1] + d + (m > 2 && is_leap(y)));
    default:
        return NAN;
    }
}

double ag_value_fn_eval(ag_value_fn_t f, double v, const double *args, size_t nargs)
{
    switch (f) {
    case AG_VF_ABS:
        return fabs(v);
    case AG_VF_CEIL:
        return ceil(v);
    case AG_VF_FLOOR:
        return floor(v);
    case AG_VF_ROUND: {
        double to_nearest = 1;
        if (nargs >= 1 && args)
            to_nearest = args[0];
        /* Prometheus inverts first: fewer floating-point accuracy issues. */
        double inv = 1.0 / to_nearest;
        return floor(v * inv + 0.5) / inv;
    }
    case AG_VF_SQRT:
        return sqrt(v);
    case AG_VF_EXP:
        return ag_go_exp(v);
    case AG_VF_LN:
        return ag_go_log(v);
    case AG_VF_LOG2:
        return ag_go_log2(v);
    case AG_VF_LOG10:
        return ag_go_log10(v);
    case AG_VF_SGN:
        if (v < 0)
            return -1;
        if (v > 0)
            return 1;
        return v; /* 0, -0 and NaN pass through */
    case AG_VF_CLAMP:
        /* Prometheus drops the element when max < min; the caller must do that (we return NaN
         * so a caller that forgets does not emit a plausible value). */
        if (nargs < 2 || !args || args[1] < args[0])
            return NAN;
        return go_max(args[0], go_min(args[1], v));
    case AG_VF_CLAMP_MIN:
        if (nargs < 1 || !args)
            return NAN;
        return go_max(args[0], v);
    case AG_VF_CLAMP_MAX:
        if (nargs < 1 || !args)
            return NAN;
        return go_min(args[0], v);
    case AG_VF_SIN:
        return ag_go_sin(v);
    case AG_VF_COS:
        return ag_go_cos(v);
    case AG_VF_TAN:
        return ag_go_tan(v);
    case AG_VF_ASIN:
        return ag_go_asin(v);
    case AG_VF_ACOS:
        return ag_go_acos(v);
    case AG_VF_ATAN:
        return ag_go_atan(v);
    case AG_VF_SINH:
        return ag_go_sinh(v);
    case AG_VF_COSH:
        return ag_go_cosh(v);
    case AG_VF_TANH:
        return ag_go_tanh(v);
    case AG_VF_ASINH:
        return asinh(v);
    case AG_VF_ACOSH:
        return acosh(v);
    case AG_VF_ATANH:
        return atanh(v);
    case AG_VF_DEG:
        return v * 180 / AG_GO_PI;
    case AG_VF_RAD:
        return v * AG_GO_PI / 180;
    case AG_VF_DAY_OF_WEEK:
    case AG_VF_HOUR:
    case AG_VF_MINUTE:
    case AG_VF_MONTH:
    case AG_VF_YEAR:
    case AG_VF_DAYS_IN_MONTH:
    case AG_VF_DAY_OF_MONTH:
    case AG_VF_DAY_OF_YEAR:
        return date_part(f, v);
    }
    return NAN;
}

/* ---- quantile helpers ------------------------------------------------------------------ */

/* Ascending with NaN first, as Prometheus' vectorByValueHeap.Less puts NaN before everything. */
static int cmp_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x))
        return isnan(y) ? 0 : -1;
    if (isnan(y))
        return 1;
    return (x > y) - (x < y);
}

double ag_quantile(double q, double *v, size_t n)
{
    if (n == 0 || !v)
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    if (isnan(q))
        return NAN; /* Go would index with int(NaN): undefined; NaN is the sane answer. */
    qsort(v, n, sizeof *v, cmp_value);
    double nn = (double)n;
    double rank = q * (nn - 1);
    double lower = go_max(0, floor(rank));
    double upper = go_min(nn - 1, lower + 1);
    double weight = rank - floor(rank);
    return v[(size_t)lower] * (1 - weight) + v[(size_t)upper] * weight;
}

static int cmp_bucket(const void *a, const void *b)
{
    double x = ((const ag_bucket_t *)a)->upper, y = ((const ag_bucket_t *)b)->upper;
    return (x > y) - (x < y);
}

double ag_bucket_quantile(double q, ag_bucket_t *b, size_t n)
{
    /* histograms.test (2.42) expects NaN for q = NaN; without this check the bucket search
     * below would never match and return the second-highest bound. */
    if (isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    if (n == 0 || !b)
        return NAN;
    qsort(b, n, sizeof *b, cmp_bucket);
    if (!(isinf(b[n - 1].upper) && b[n - 1].upper > 0))
        return NAN;

    /* coalesceBuckets: merge equal upper bounds by summing their counts. */
    ag_bucket_t last = b[0];
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if (b[i].upper == last.upper) {
            last.count += b[i].count;
        } else {
            b[k++] = last;
            last = b[i];
        }
    }
    b[k] = last;
    n = k + 1;

    /* ensureMonotonic. */
    double max = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (b[i].count > max)
            max = b[i].count;
        else if (b[i].count < max)
            b[i].count = max;
    }

    if (n < 2)
        return NAN;
    double observations = b[n - 1].count;
    if (observations == 0)
        return NAN;
    double rank = q * observations;

    /* sort.Search(n-1, count >= rank): Go's binary search, reproduced step for step. */
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t h = lo + (hi - lo) / 2;
        if (!(b[h].count >= rank))
            lo = h + 1;
        else
            hi = h;
    }
    size_t idx = lo;

    if (idx == n - 1)
        return b[n - 2].upper;
    if (idx == 0 && b[0].upper <= 0)
        return b[0].upper;
    double bucket_start = 0;
    double bucket_end = b[idx].upper;
    double count = b[idx].count;
    if (idx > 0) {
        bucket_start = b[idx - 1].upper;
        count -= b[idx - 1].count;
        rank -= b[idx - 1].count;
    }
    return bucket_start + (bucket_end - bucket_start) * (rank / count);
}
