/* ag_forecast.h - seasonal Holt-Winters forecasts and streaming anomaly scores (issue 5).
 *
 * Three layers, all pure (no I/O, no threads, no globals), so the daemon and the offline tool
 * `augur` run exactly the same code:
 *
 *   ag_hw_*      an additive Holt-Winters model: level, damped trend, a daily and a weekly
 *                season (each a ring of buckets addressed by wall-clock time, so gaps and
 *                irregular timestamps keep the phase), optionally on a log scale. One update is
 *                O(1). Updates are robust: the residual is Huberised at AG_HW_CLIP robust
 *                standard deviations before it moves level, trend or season, so one outlier
 *                cannot drag the model. Prediction intervals come from the robust residual scale
 *                and widen with the horizon (the ETS(A,Ad,A) variance formula).
 *   ag_detect_*  the anomaly scorer built on one ag_hw model: a score in [0, 1] per sample from
 *                several tests on the model's standardised residual (a point test, two-sided
 *                CUSUMs for level shifts and drifts, a variance-increase CUSUM, a flatline test),
 *                each turned into a surprise (-log of a tail probability), calibrated against the
 *                stream's own history of surprises, with repeat alarms for one event suppressed
 *                and confirmed level shifts adopted by the model.
 *   ag_tiny_*    a separate, tiny detector (a plain struct of at most 64 bytes) for running on
 *                every series without configuration: EWMA level and scale, CUSUM, flatline.
 *
 * Samples are (t, v): t in milliseconds since the epoch, strictly increasing per model (an older
 * or equal t is refused with AG_ECONFLICT and changes nothing); v any double. NaN, +-Inf and the
 * Prometheus stale marker (bits 0x7ff0000000000002) are never learned from and score 0 (the
 * stale marker also ends a flatline run); the gap they leave is handled by the next sample's
 * timestamp. Huge values never make the state non-finite (such an update is refused whole).
 * Counters should be modelled as rates (as the daemon will feed them); a raw counter's reset is
 * scored like any drop. No output of this module is ever NaN.
 *
 * Ownership: ag_hw_t and ag_detect_t are opaque heap objects owned by the caller (_new/_load
 * create, _free releases, NULL allowed). A model is not thread safe; the daemon keeps one per
 * series behind the series' lock. _save appends bytes to a caller's ag_buf_t; _load never trusts
 * its input (every field is range-checked, AG_ECORRUPT with a message and byte offset).
 *
 * The GSL parameter fit (ag_hw_fit) lives in its own object file (daemon/forecast/fit.c); only
 * programs that call it need -lgsl -lgslcblas.
 */
#ifndef AG_FORECAST_H
#define AG_FORECAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ag_buf.h"
#include "ag_err.h"

#define AG_HW_DAY_MS 86400000LL
#define AG_HW_WEEK_MS 604800000LL
#define AG_HW_MAX_BUCKETS 4096 /* per season */
#define AG_HW_CLIP 3.0         /* Huber limit for residuals, in robust standard deviations */

/* ---- Holt-Winters model ------------------------------------------------------------------- */

/* Smoothing constants per step (alpha, beta) and per season cycle (gamma_*): gamma is the share
 * of the residual a bucket absorbs over one visit of the cycle, whatever the number of samples
 * that fall into the bucket. All in [0, 1]; phi (trend damping) in [0, 1]. */
typedef struct ag_hw_params {
    double alpha;      /* level */
    double beta;       /* trend, as a share of the level correction */
    double phi;        /* trend damping per step */
    double gamma_day;  /* daily season */
    double gamma_week; /* weekly season */
} ag_hw_params_t;

typedef struct ag_hw_config {
    int64_t step_ms;       /* nominal sampling interval, 1 ms .. 1 week */
    uint32_t day_buckets;  /* 0 (no daily season) or 2..AG_HW_MAX_BUCKETS */
    uint32_t week_buckets; /* 0 (no weekly season) or 2..AG_HW_MAX_BUCKETS */
    bool log_scale;        /* model log(v): for multiplicative data; v <= 0 is then refused */
    ag_hw_params_t p;
} ag_hw_config_t;

/* Forecasting defaults for a series sampled every step_ms (<= 0 means 60 s): a daily season when
 * a day holds at least 8 steps (one bucket per step, at most 288, i.e. 5-minute buckets), a
 * weekly season when a week holds at least 14 steps (one bucket per step, at most 168, i.e.
 * hourly buckets: a whole-hour time zone's midnight falls on a bucket edge, so weekday/weekend
 * steps stay sharp, and each bucket averages enough samples after two weeks to be more signal
 * than noise), and smoothing constants as time constants converted to this step: level 3.5
 * days (level shifts are adopted by the detector, not tracked), trend damped over 2 days with a
 * small gain, a daily bucket absorbs 5% of its error per visit and a weekly bucket 50% (each
 * bucket starts as the plain average of what it has seen). Forecasts beyond the next step shrink
 * each season towards zero by how much of it is noise (James-Stein, from the residual scale and
 * each bucket's sample count). ag_detect_config_default derives the scoring model's from these. */
void ag_hw_config_default(ag_hw_config_t *c, int64_t step_ms);
/* AG_EINVAL with a message when c is out of the ranges documented above. */
int ag_hw_config_check(const ag_hw_config_t *c, ag_errmsg_t *e);

typedef struct ag_hw ag_hw_t;

/* A new, empty model. AG_EINVAL (bad config), AG_ENOMEM. *out is NULL on error. */
int ag_hw_new(const ag_hw_config_t *c, ag_hw_t **out);
void ag_hw_free(ag_hw_t *m);
/* A deep copy. AG_ENOMEM. */
int ag_hw_clone(const ag_hw_t *m, ag_hw_t **out);
const ag_hw_config_t *ag_hw_config(const ag_hw_t *m);
/* Replaces the smoothing constants (e.g. after a background fit); AG_EINVAL when out of range. */
int ag_hw_set_params(ag_hw_t *m, const ag_hw_params_t *p);

/* One-step-ahead forecast for time t (> the last update's time; otherwise the forecast at the
 * last time): the point forecast, on the data's scale, and the robust residual scale (standard
 * deviation, on the model's scale). Both finite. AG_ENOTFOUND before the first update. */
int ag_hw_predict(const ag_hw_t *m, int64_t t, double *yhat, double *sigma);

/* Learns sample (t, v). Returns 0 and, when resid is non-NULL, the one-step residual (on the
 * model's scale, 0 for the first sample) of the forecast made before learning; AG_ECONFLICT when
 * t <= the last time; AG_EINVAL when v is not finite (or <= 0 on a log scale), or when learning
 * it would make the state non-finite - the model is then unchanged. `weight` in [0, 1] scales the
 * update (the detector passes 0 for samples it judges anomalous, so they do not move the model
 * at all; 1 is a normal update). A stale marker is refused like NaN and changes nothing. */
int ag_hw_update(ag_hw_t *m, int64_t t, double v, double weight, double *resid);

/* Shifts the level by `delta` (model scale): the detector's adoption of a confirmed level
 * shift. Non-finite deltas are ignored. */
void ag_hw_shift_level(ag_hw_t *m, double delta);

typedef struct ag_hw_forecast {
    double mean, lower, upper; /* on the data's scale; lower <= mean <= upper, all finite */
} ag_hw_forecast_t;

/* Forecast for time t > last time (t <= last time forecasts one step ahead) with a central
 * prediction interval of probability `coverage` in (0, 1) (e.g. 0.95). The interval's variance
 * grows with the horizon h = steps ahead as sigma^2 * (1 + sum_{j<h} c_j^2), c_j the ETS(A,Ad,A)
 * coefficients; horizons beyond AG_HW_MAX_HORIZON steps use that horizon's width.
 * AG_ENOTFOUND before the first update, AG_EINVAL for a bad coverage. */
#define AG_HW_MAX_HORIZON 100000
int ag_hw_forecast(const ag_hw_t *m, int64_t t, double coverage, ag_hw_forecast_t *out);

/* Samples learned (not counting refused ones) and the last time (INT64_MIN before the first). */
uint64_t ag_hw_count(const ag_hw_t *m);
int64_t ag_hw_last_time(const ag_hw_t *m);

/* Fits the smoothing constants by Nelder-Mead (GSL) on the one-step-ahead mean squared
 * standardised residual of a fresh model replayed over t[0..n), v[0..n) with config c, from
 * c->p as the starting point; the first day (or 10% of the samples) is a warm-up that is not
 * scored. Writes the best constants to *p. Runs in O(n * iterations) and allocates; safe to call
 * from a background thread on a copy of the history while updates continue on the live model
 * (then ag_hw_set_params). AG_EINVAL (n < 16, bad config), AG_ENOMEM. In daemon/forecast/fit.c:
 * link with -lgsl -lgslcblas. */
int ag_hw_fit(const ag_hw_config_t *c, const int64_t *t, const double *v, size_t n,
              ag_hw_params_t *p);

/* Appends the model (config and state) to out in a versioned little-endian format. AG_ENOMEM. */
int ag_hw_save(const ag_hw_t *m, ag_buf_t *out);
/* Restores a model saved by ag_hw_save from d[0..len); *used (if non-NULL) gets the bytes read
 * (trailing bytes are the caller's). AG_ECORRUPT with a message (and offset) for anything
 * malformed or out of range, AG_EUNSUPPORTED for an unknown version, AG_ENOMEM. A restored model
 * continues bit-identically to the saved one. */
int ag_hw_load(const uint8_t *d, size_t len, size_t *used, ag_hw_t **out, ag_errmsg_t *e);

/* ---- anomaly detector ------------------------------------------------------------------------ */

typedef struct ag_detect_config {
    ag_hw_config_t hw; /* the scoring model */
    ag_hw_config_t fc; /* the forecaster (same step and scale; ag_hw_config_default's constants):
                          it learns every sample the scoring model learns, with the same weights
                          and level adoptions, and is what forecasts come from */
    double threshold; /* the alarm threshold on the score, in [0, 1] (default 0.5, i.e. a surprise
                         of 20 nats); only sets ag_detect_result_t.alarm, never the scores */
} ag_detect_config_t;

/* Defaults for a series sampled every step_ms (<= 0: 60 s): fc = ag_hw_config_default; hw the
 * same except a daily bucket absorbs 10% per visit and weekly buckets are 15 minutes (at most
 * 672), which score better; threshold 0.5. */
void ag_detect_config_default(ag_detect_config_t *c, int64_t step_ms);

typedef struct ag_detect ag_detect_t;

typedef struct ag_detect_result {
    double score;     /* in [0, 1], never NaN */
    double forecast;  /* one-step forecast made before this sample (NaN-free; 0 before any) */
    double sigma;     /* robust residual scale at that time */
    bool alarm;       /* score >= threshold */
} ag_detect_result_t;

/* A new detector with an empty model. AG_EINVAL (bad model config, threshold outside [0, 1]),
 * AG_ENOMEM; *out is NULL on error. */
int ag_detect_new(const ag_detect_config_t *c, ag_detect_t **out);
void ag_detect_free(ag_detect_t *d);
/* The underlying model (for forecasts); owned by the detector, valid until ag_detect_free. */
const ag_hw_t *ag_detect_model(const ag_detect_t *d);

/* Replaces the model's smoothing constants (after a background ag_hw_fit); AG_EINVAL when out
 * of range. The model's state is kept, so scoring continues without a warm-up. */
int ag_detect_set_params(ag_detect_t *d, const ag_hw_params_t *p);
/* The forecaster (owned by the detector, valid until ag_detect_free) and its constants. */
const ag_hw_t *ag_detect_forecaster(const ag_detect_t *d);
int ag_detect_set_forecast_params(ag_detect_t *d, const ag_hw_params_t *p);

/* Scores sample (t, v) against everything before it, then learns it. Always fills *r (score 0
 * for refused samples). Returns 0; AG_ECONFLICT for t <= the last time (state unchanged);
 * AG_EINVAL for a NaN/Inf value (state unchanged, except that a stale marker ends a flatline
 * run). O(1) time, no allocation. */
int ag_detect_step(ag_detect_t *d, int64_t t, double v, ag_detect_result_t *r);

/* Versioned byte format holding the model and the scorer's state; same contract as
 * ag_hw_save/ag_hw_load. A loaded detector continues bit-identically. */
int ag_detect_save(const ag_detect_t *d, ag_buf_t *out);
int ag_detect_load(const uint8_t *buf, size_t len, ag_detect_t **out, ag_errmsg_t *e);

/* ---- tiny detector ------------------------------------------------------------------------------ */

/* The whole state (at most 64 bytes, checked at compile time); keep it inline with each series
 * and start it with ag_tiny_init. No season and no notion of the sampling interval: it scores a
 * sample against an EWMA baseline and scale over the last ~50 samples and catches spikes, dips,
 * level shifts (CUSUM, then adopts the new level), variance bursts and flatlines, with the same
 * surprise scale, event suppression and score mapping as ag_detect. Meant to run on every series
 * before (or instead of) a full model; daily patterns make it alarm at their steepest changes. */
typedef struct ag_tiny {
    int64_t t_last;       /* time of the last sample learned */
    double mean;          /* EWMA level */
    double prev;          /* last value learned */
    float dev;            /* EWMA of the clipped absolute deviation (robust scale) */
    float cus_hi, cus_lo; /* level CUSUMs, nats */
    float var_cus;        /* variance-increase CUSUM, nats */
    float peak;           /* decaying surprise of the current event */
    float p_eq;           /* EWMA rate of a value equal to the previous one */
    uint32_t n;           /* samples learned (saturating) */
    uint16_t run;         /* consecutive repeats of prev (saturating) */
    uint16_t flags;       /* low byte: AG_TINY_* below; high byte: counter mode's reset meter */
} ag_tiny_t;
#define AG_TINY_COUNTER 1  /* counter mode */
#define AG_TINY_HAVE_RAW 2 /* counter mode: prev holds a raw value */
#define AG_TINY_DEMOTED 4  /* was in counter mode, dropped too often: value mode for good */

void ag_tiny_init(ag_tiny_t *s);
/* Counter mode, for series that only go up between resets (Prometheus counters): the per-second
 * increase since the previous sample is scored instead of the value (a drop is a reset, which
 * is neither scored nor learned from), so a steadily growing counter is normal and a change in its rate is what scores;
 * a counter that stops moving is a flatline. A "counter" that drops four times within about 50
 * samples is not one: the state starts again in value mode for good (AG_TINY_DEMOTED). A state
 * in neither mode is started again in counter mode; one demoted stays in value mode.
 * ag_tiny_step on a counter-mode state does the same. Same contract otherwise. */
double ag_tiny_step_counter(ag_tiny_t *s, int64_t t, double v);
/* Scores then learns (t, v); returns the score in [0, 1]. NaN/Inf/stale: 0, state unchanged
 * (the stale marker resets the flatline run). t <= t_last: 0, state unchanged. */
double ag_tiny_step(ag_tiny_t *s, int64_t t, double v);
/* Fixed 64-byte little-endian form (version byte first); load checks every field: AG_ECORRUPT. */
#define AG_TINY_SAVED_SIZE 64
void ag_tiny_save(const ag_tiny_t *s, uint8_t out[AG_TINY_SAVED_SIZE]);
int ag_tiny_load(const uint8_t *d, size_t len, ag_tiny_t *s);

/* A sampling interval guessed from the first timestamps t[0..n) (the median of the positive
 * differences; 0 when there are none): what the offline tool uses when not told. */
int64_t ag_forecast_guess_step(const int64_t *t, size_t n);

/* The Prometheus stale marker test used throughout (exact bits). */
bool ag_forecast_is_stale(double v);

#endif
