/* ag_pqfunc.h - the PromQL function library as pure math, separate from evaluation.
 *
 * The evaluator (daemon/promql/eval.c) does selection, windows, steps, labels and series
 * bookkeeping; this module only computes numbers, with Prometheus 2.42's exact arithmetic (the
 * same operation order, so results agree to the last bit where Prometheus' do). Nothing here
 * allocates, locks or touches the store, so every function is unit-testable on its own.
 */
#ifndef AG_PQFUNC_H
#define AG_PQFUNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ag_eval.h"
#include "ag_rollup.h"

/* ---- functions over a range vector -------------------------------------------------------
 * `p[0..n)` are the samples of one series inside the window [t - range, t] in time order, stale
 * markers already removed. `t` is the evaluation time and `range_ms` the window length (both
 * in ms). Each returns true and sets *out, or false when Prometheus produces no output element
 * for this series (e.g. rate over fewer than two samples). */

typedef enum {
    AG_RF_RATE = 1, AG_RF_INCREASE, AG_RF_DELTA, AG_RF_IRATE, AG_RF_IDELTA, AG_RF_DERIV,
    AG_RF_RESETS, AG_RF_CHANGES,
    AG_RF_AVG_OVER_TIME, AG_RF_MIN_OVER_TIME, AG_RF_MAX_OVER_TIME, AG_RF_SUM_OVER_TIME,
    AG_RF_COUNT_OVER_TIME, AG_RF_STDDEV_OVER_TIME, AG_RF_STDVAR_OVER_TIME, AG_RF_LAST_OVER_TIME,
    AG_RF_PRESENT_OVER_TIME,
    AG_RF_QUANTILE_OVER_TIME, /* arg0 = q */
    AG_RF_PREDICT_LINEAR,     /* arg0 = seconds ahead */
    AG_RF_HOLT_WINTERS,       /* arg0 = smoothing factor sf, arg1 = trend factor tf */
    /* Augur's (functions_hw.c): a seasonal Holt-Winters detector (ag_forecast.h, the daemon's
     * own code with its defaults for the window's median sampling interval) run over the
     * window; these allocate a model per call, unlike everything else here. */
    AG_RF_PREDICT_HW,         /* arg0 = seconds ahead: the forecast for t + arg0 */
    AG_RF_PREDICT_HW_LOWER,   /* the same, lower edge of the 95% prediction interval */
    AG_RF_PREDICT_HW_UPPER,   /* upper edge */
    AG_RF_ANOMALY_SCORE_HW,   /* the anomaly score in [0, 1] of the window's last sample */
} ag_range_fn_t;

/* The Holt-Winters functions above (called by ag_range_fn_eval). */
bool ag_range_fn_hw(ag_range_fn_t f, const ag_point_t *p, size_t n, int64_t t, const double *args,
                    double *out);

/* Looks a range function up by its PromQL name; 0 when `name` is not one. */
ag_range_fn_t ag_range_fn_lookup(const char *name);
/* Computes range function `f`. `args` holds the scalar arguments (see the enum) already
 * evaluated at this step. Invalid scalar arguments behave as in Prometheus (quantile q outside
 * [0,1] gives -Inf/+Inf, holt_winters factors outside (0,1) are the caller's error to report). */
bool ag_range_fn_eval(ag_range_fn_t f, const ag_point_t *p, size_t n, int64_t t,
                      int64_t range_ms, const double *args, double *out);
/* rate or increase (f must be one of them) over n windows of one series, each of at least 2
 * samples: window i holds p[lo[i]] .. p[hi[i] - 1], ends at t[i], and inc[i] is its raw
 * increase as Prometheus works it out (last - first, plus the value before each drop, added in
 * time order); out[i] gets the result. Only the extrapolation is left here, so callers that
 * know where the drops are skip the scan, with the identical result. */
void ag_range_fn_increase_many(ag_range_fn_t f, const ag_point_t *p, const uint32_t *lo,
                               const uint32_t *hi, const double *inc, const int64_t *t,
                               size_t n, int64_t range_ms, double *out);

/* The same for a window given as rollup buckets (ag_rollup.h): b[0..n) are the whole buckets
 * inside [t - range, t) in time order and `edge` the sample exactly at t, if any (NULL). Only
 * rate, increase, delta and min/max/sum/count/avg/last/present_over_time; false for others.
 * Answers equal the raw ones; sums, averages and rate's counter corrections may differ from
 * them in the last bits (the additions happen in another order). */
bool ag_range_fn_rollups(ag_range_fn_t f, const ag_rollup_t *b, size_t n, const ag_point_t *edge,
                         int64_t t, int64_t range_ms, double *out);

/* ---- functions over one value ------------------------------------------------------------
 * abs ceil floor round(v, to_nearest) sqrt exp ln log2 log10 sgn clamp(v,min,max)
 * clamp_min clamp_max, the trigonometric functions of trig_functions.test (sin cos tan asin acos
 * atan sinh cosh tanh asinh acosh atanh deg rad), and the date functions day_of_week hour minute
 * month year days_in_month day_of_month day_of_year, which read v as unix seconds. */
typedef enum {
    AG_VF_ABS = 1, AG_VF_CEIL, AG_VF_FLOOR, AG_VF_ROUND, AG_VF_SQRT, AG_VF_EXP, AG_VF_LN,
    AG_VF_LOG2, AG_VF_LOG10, AG_VF_SGN, AG_VF_CLAMP, AG_VF_CLAMP_MIN, AG_VF_CLAMP_MAX,
    AG_VF_SIN, AG_VF_COS, AG_VF_TAN, AG_VF_ASIN, AG_VF_ACOS, AG_VF_ATAN, AG_VF_SINH, AG_VF_COSH,
    AG_VF_TANH, AG_VF_ASINH, AG_VF_ACOSH, AG_VF_ATANH, AG_VF_DEG, AG_VF_RAD,
    AG_VF_DAY_OF_WEEK, AG_VF_HOUR, AG_VF_MINUTE, AG_VF_MONTH, AG_VF_YEAR, AG_VF_DAYS_IN_MONTH,
    AG_VF_DAY_OF_MONTH, AG_VF_DAY_OF_YEAR,
} ag_value_fn_t;

ag_value_fn_t ag_value_fn_lookup(const char *name);
/* Number of scalar arguments after the vector (round: 0 or 1, clamp: 2, clamp_min/max: 1). */
double ag_value_fn_eval(ag_value_fn_t f, double v, const double *args, size_t nargs);

/* ---- helpers shared by aggregations and histograms --------------------------------------- */

/* Prometheus' quantile over unsorted values (v is sorted in place): linear interpolation,
 * q < 0 -> -Inf, q > 1 -> +Inf, n == 0 -> NaN. */
double ag_quantile(double q, double *v, size_t n);

typedef struct ag_bucket {
    double upper; /* the `le` bound, +Inf for the last */
    double count; /* cumulative count */
} ag_bucket_t;
/* histogram_quantile over classic buckets of one series group (b is sorted in place). Returns
 * NaN where Prometheus does (no +Inf bucket, fewer than two buckets, zero count). */
double ag_bucket_quantile(double q, ag_bucket_t *b, size_t n);

#endif
