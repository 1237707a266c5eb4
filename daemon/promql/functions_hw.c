/* functions_hw.c - Augur's PromQL functions for ad-hoc forecasts and anomaly scores of any
 * range vector, built on the daemon's own detector (ag_forecast.h):
 *
 *   predict_hw(v range-vector, s scalar)        forecast of each series s seconds after the
 *   predict_hw_lower(v, s), predict_hw_upper(v, s)   evaluation time, and the edges of its
 *                                               95% prediction interval
 *   anomaly_score_hw(v range-vector)            anomaly score in [0, 1] of each series' last
 *                                               sample in the window, scored against the ones
 *                                               before it
 *
 * A fresh detector with the daemon's defaults for the window's sampling interval (the median
 * gap between its samples: daily and weekly seasons when the window's resolution allows and it
 * spans at least a cycle and a quarter of them,
 * robust updates, level-shift adoption) learns the window's samples in order. Like
 * predict_linear they need at least two samples; seasons only help once the window covers a
 * few of their cycles (e.g. predict_hw(x[1w:5m], 3600)). Prometheus' holt_winters is unchanged.
 */
#include <stdlib.h>

#include "ag_forecast.h"
#include "ag_pqfunc.h"

bool ag_range_fn_hw(ag_range_fn_t f, const ag_point_t *p, size_t n, int64_t t, const double *args,
                    double *out)
{
    if (n < 2) return false;
    bool predict = f != AG_RF_ANOMALY_SCORE_HW;
    if (predict && (!args || !(args[0] == args[0]))) return false;
    /* The sampling interval from the window's own timestamps. */
    int64_t *ts = malloc(n * sizeof *ts);
    if (!ts) return false;
    for (size_t i = 0; i < n; i++) ts[i] = p[i].t;
    int64_t step = ag_forecast_guess_step(ts, n);
    free(ts);
    ag_detect_config_t c;
    ag_detect_config_default(&c, step > 0 ? step : 60000);
    /* A season the window does not cover by a cycle and a quarter would be learned from one
     * visit per bucket (noise and the other season's share): leave it out. */
    int64_t span = p[n - 1].t - p[0].t;
    if (span < AG_HW_DAY_MS + AG_HW_DAY_MS / 4) c.hw.day_buckets = c.fc.day_buckets = 0;
    if (span < AG_HW_WEEK_MS + AG_HW_WEEK_MS / 4) c.hw.week_buckets = c.fc.week_buckets = 0;
    ag_detect_t *d = NULL;
    if (ag_detect_new(&c, &d)) return false;
    ag_detect_result_t r = {0};
    for (size_t i = 0; i < n; i++) ag_detect_step(d, p[i].t, p[i].v, &r);
    bool ok = true;
    if (predict) {
        double secs = args[0];
        if (secs > 1e13) secs = 1e13; /* beyond any horizon; keeps the ms sum in range */
        if (secs < -1e13) secs = -1e13;
        ag_hw_forecast_t fc;
        ok = ag_hw_forecast(ag_detect_forecaster(d), t + (int64_t)(secs * 1000), 0.95, &fc) ==
             AG_OK;
        if (ok) *out = f == AG_RF_PREDICT_HW ? fc.mean
                       : f == AG_RF_PREDICT_HW_LOWER ? fc.lower : fc.upper;
    } else {
        *out = r.score;
    }
    ag_detect_free(d);
    return ok;
}
