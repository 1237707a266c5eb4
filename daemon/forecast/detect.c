/* detect.c - the anomaly scoring layer over one Holt-Winters model (contract: ag_forecast.h).
 *
 * Why this shape
 * --------------
 * A plain |residual| z-score finds only big spikes: a level shift of two noise deviations, a
 * doubled variance or a stuck sensor produce residuals that are individually unremarkable, and
 * once the model has absorbed a shift the z-score forgets it. So the standardised residual
 * z = (y - forecast) / sigma feeds several sequential tests, each expressed as a surprise in
 * nats (a log-likelihood ratio or -log of a tail probability), which makes them comparable:
 *
 *   point     -log P(|Z| >= |z|) for a normal Z: spikes, dips, outages.
 *   level     two one-sided CUSUMs (Page) of z for a shift of LEVEL_DELTA deviations; their
 *             statistic is the log-likelihood ratio of "shifted since the run began" against "no
 *             shift": level shifts, leaks, phase shifts (sustained residuals of one sign).
 *   variance  a CUSUM of the log-likelihood ratio of sigma*VAR_RHO against sigma: noise bursts.
 *   flatline  a run of r identical values costs r * -log(p_eq), p_eq the stream's own long-run
 *             rate of repeated values (floored): stuck sensors, but not small-integer gauges
 *             that repeat all the time, nor a metric resting at the lowest or highest value it
 *             ever had where the model expects it (0% CPU at night, an empty queue).
 *
 * z is clipped at Z_CLIP before it enters the CUSUMs, so one huge spike cannot fake a shift, and
 * divided by NOVEL_INFLATE at a time of day or week the model has never seen (the first week's
 * weekend is not an anomaly, it is news).
 *
 * Events, not rows. The largest surprise is reported in full only when it is a new peak of the
 * current event (the peak decays over PEAK_TAU_MS); below the peak it is damped by
 * REPEAT_DAMP. So an outage alarms at its first row, not on each of its rows.
 *
 * Calibration against the stream's own history, in the spirit of Numenta's anomaly likelihood
 * but in O(1) memory: the rate of new events reaching CAL_LEVEL nats is tracked over two weeks;
 * a well-modelled stream sees them at e^-CAL_LEVEL per sample, and a stream that sees them more
 * often (heavy tails, a model that fits badly) has the log of the excess rate subtracted from
 * every surprise. Counting event peaks, not rows, keeps one long anomaly from desensitising it.
 *
 * Robust to the anomaly itself:
 *   - the model does not learn isolated outliers (weight 0 for up to NOLEARN_RUN consecutive
 *     large point surprises, then the Huber clip in hw.c bounds their pull), nor stuck values;
 *   - while any test is above EVENT_NATS the seasons do not learn at all, so an outage or a
 *     shift is never written into the daily or weekly profile;
 *   - adoption: when a level CUSUM reaches ADOPT_NATS the shift is confirmed and the level moves
 *     by the current bias (an EWMA of the run's residuals), so the scores come back down. The
 *     way back from a transient (a shift the other way soon after) restores the level it left.
 *     Shifts that keep coming the same way within ADOPT_MEMORY_MS are a drift (a leak): their
 *     slope is adopted into the trend and their alarms are damped as the same event. Shifts
 *     back and forth (RELEARN_ADOPTIONS of them) mean the daily pattern itself changed (a phase
 *     shift): the daily season relearns quickly for RELEARN_MS with alarms damped meanwhile;
 *   - a confirmed variance increase (VAR_ADOPT_NATS) rescales the residual scale.
 *
 * Everything is clamped so that no NaN or Inf can leave: z is finite by construction (sigma has
 * a floor), every surprise is clipped to [0, S_MAX], and the score is 1 - 2^(-s / SCORE_HALF):
 * 0.5 at SCORE_HALF nats (the default threshold), 0.75 at twice that, near 1 for big anomalies.
 *
 * The constants below are global and expressed in nats, steps of the series or wall time; none
 * refers to a particular data set. They were chosen on the synthetic anomaly set in
 * ../shared/anomaly-set (tests/bench/anomaly_bench.sh reproduces its score) by changing one
 * mechanism at a time, keeping a change only when both the optimised and the 2-fold scores
 * improved.
 */
#include "ag_forecast.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forecast_int.h"

#define DET_MAGIC 0x54454441u /* "ADET" */
#define DET_VERSION 2 /* 2 added the forecaster; version 1 still loads */

/* Tuning: global constants, chosen for generality (see the comment at the top). */
#define Z_CLIP 6.0          /* |z| entering the CUSUMs */
#define LEVEL_DELTA 2.5     /* shift size the level CUSUM is tuned to, in deviations */
#define ADOPT_NATS 30.0     /* confirmed level shift: adopt */
#define VAR_RHO 2.0         /* variance ratio the variance CUSUM is tuned to */
#define VAR_ADOPT_NATS 60.0 /* confirmed variance change: rescale */
#define FLAT_MIN_RUN 3      /* repeats before the flatline test speaks */
#define P_EQ_FLOOR 1e-3
#define P_EQ_TAU_MS AG_HW_WEEK_MS /* the repeat rate's memory */
#define POINT_NOLEARN 12.0  /* point surprise (nats) above which a sample is not learned */
#define REPEAT_DAMP 0.3     /* a surprise below the event's peak is reported damped */
#define NOLEARN_RUN 3       /* consecutive outliers kept out of the model before it adapts */
#define PEAK_TAU_MS AG_HW_DAY_MS /* event memory */
#define EVENT_NATS 10.0     /* a test above this: an event is on, the seasons do not learn */
#define ADOPT_MEMORY_MS (2 * AG_HW_DAY_MS) /* adoptions this close belong to one event */
#define RELEARN_MS AG_HW_DAY_MS /* relearning period after a pattern change */
#define RELEARN_ADOPTIONS 3 /* back-and-forth adoptions that mean the pattern changed */
#define RELEARN_GAIN 0.5    /* daily season share learned per visit while relearning */
#define NOVEL_INFLATE 3.0   /* sigma factor for a time of day/week the model has never seen */
#define CAL_LEVEL 10.0      /* surprise whose rate of new events is tracked ... */
#define CAL_NOMINAL 4.54e-5 /* ... and its rate for a well-modelled stream, e^-10 */
#define CAL_MEMORY_MS (14 * AG_HW_DAY_MS)
#define S_MAX 1000.0
#define SCORE_HALF 20.0     /* surprise at which the score is 0.5 */
#define WARM_STEPS 144      /* residuals the model must have learned from before scoring */

struct ag_detect {
    ag_detect_config_t c;
    ag_hw_t *hw;             /* the scoring model */
    ag_hw_t *fc;             /* the forecaster: learns what the scoring model learns, with
                                forecast-oriented constants (ag_detect_config_t.fc) */
    uint64_t nscored;
    double cus_hi, cus_lo;   /* level CUSUMs, nats */
    double sum_hi, sum_lo;   /* residual sums (model scale) over each CUSUM's current run */
    double cnt_hi, cnt_lo;   /* and their lengths */
    double cus_var;          /* variance-increase CUSUM, nats */
    double var_short;        /* EWMA of z^2 over a few hours, for rescaling */
    double prev;             /* last finite value */
    double p_eq;             /* EWMA rate of repeated values */
    double peak;             /* decaying surprise of the current event */
    uint32_t run;            /* repeats of prev */
    uint32_t outliers;       /* consecutive point outliers */
    double since_adopt;      /* steps since the last level adoption */
    double relearn;          /* steps of relearning left */
    double last_shift;       /* the last adoption's level shift */
    double cal_rate;         /* EWMA rate of new events reaching CAL_LEVEL */
    double vmin, vmax;       /* the extremes of the values learned */
    int8_t last_dir;         /* direction of the last adoption (+1, -1, 0 none) */
    uint8_t n_adopt;         /* adoptions in the current run of close ones */
    uint8_t have_prev;
};

void ag_detect_config_default(ag_detect_config_t *c, int64_t step_ms)
{
    memset(c, 0, sizeof *c);
    ag_hw_config_default(&c->fc, step_ms);
    /* Scoring wants seasons that follow the recent days closely, so that a normal day scores
     * low: a daily bucket takes 10% of its error per visit (the forecaster 5%), and the weekly
     * season has 15-minute buckets (the forecaster hourly ones, which average 4 times the
     * samples). Measured on the anomaly set, these give the better NAB score; the forecaster's
     * give the better forecasts (README, "Measured figures"). */
    c->hw = c->fc;
    c->hw.p.gamma_day = 0.1;
    int64_t per_week = AG_HW_WEEK_MS / c->hw.step_ms;
    if (per_week >= 14) c->hw.week_buckets = (uint32_t)(per_week < 672 ? per_week : 672);
    c->threshold = 0.5;
}

int ag_detect_new(const ag_detect_config_t *c, ag_detect_t **out)
{
    *out = NULL;
    if (!c || !(c->threshold >= 0 && c->threshold <= 1)) return AG_EINVAL;
    ag_detect_t *d = calloc(1, sizeof *d);
    if (!d) return AG_ENOMEM;
    d->c = *c;
    int rc = ag_hw_new(&c->hw, &d->hw);
    if (!rc) rc = ag_hw_new(&c->fc, &d->fc);
    if (rc) {
        ag_detect_free(d);
        return rc;
    }
    d->since_adopt = 1e18;
    d->cal_rate = CAL_NOMINAL;
    d->p_eq = 0.5; /* uninformed start: repeats are not surprising until we learn otherwise */
    *out = d;
    return AG_OK;
}

void ag_detect_free(ag_detect_t *d)
{
    if (!d) return;
    ag_hw_free(d->hw);
    ag_hw_free(d->fc);
    free(d);
}

const ag_hw_t *ag_detect_model(const ag_detect_t *d) { return d->hw; }

const ag_hw_t *ag_detect_forecaster(const ag_detect_t *d) { return d->fc; }

int ag_detect_set_forecast_params(ag_detect_t *d, const ag_hw_params_t *p)
{
    int rc = ag_hw_set_params(d->fc, p);
    if (!rc) d->c.fc.p = *p;
    return rc;
}

int ag_detect_set_params(ag_detect_t *d, const ag_hw_params_t *p)
{
    int rc = ag_hw_set_params(d->hw, p);
    if (!rc) d->c.hw.p = *p;
    return rc;
}

/* -log P(|Z| >= x) for a standard normal Z, x >= 0. */
static double point_surprise(double x)
{
    if (!(x > 0)) return 0;
    double u = x / M_SQRT2;
    if (u < 25) {
        double q = erfc(u);
        return q > 0 ? -log(q) : S_MAX;
    }
    /* erfc(u) ~ exp(-u^2) / (u sqrt(pi)) */
    return u * u + log(u * sqrt(M_PI));
}

static double clampd(double x, double lo, double hi)
{
    if (!(x >= lo)) return lo; /* NaN too */
    return x > hi ? hi : x;
}

static double steps_between(const ag_detect_t *d, int64_t t)
{
    int64_t last = ag_hw_last_time(d->hw);
    if (last == INT64_MIN || t <= last) return 1;
    double k = ((double)t - (double)last) / (double)d->c.hw.step_ms;
    return k < 1 ? 1 : k;
}

int ag_detect_step(ag_detect_t *d, int64_t t, double v, ag_detect_result_t *r)
{
    memset(r, 0, sizeof *r);
    ag_hw_t *m = d->hw;
    if (m->n && t <= m->t_last) return AG_ECONFLICT;
    if (!isfinite(v)) {
        if (ag_forecast_is_stale(v)) d->run = 0, d->have_prev = 0;
        return AG_EINVAL;
    }
    double yhat = 0, sigma = 0;
    bool have = ag_hw_predict(m, t, &yhat, &sigma) == AG_OK;
    if (have) {
        r->forecast = isfinite(yhat) ? yhat : 0;
        r->sigma = sigma;
    }
    double k = steps_between(d, t);
    /* ---- flatline ---- */
    bool repeat = d->have_prev && v == d->prev;
    double s_flat = 0;
    if (repeat) {
        if (d->run < UINT32_MAX) d->run++;
        /* Sitting at the lowest or highest value ever seen, where the model expects the series
         * to be anyway, is a metric clipped at its bound (0% CPU at night, an empty queue), not
         * a stuck sensor. */
        bool at_bound = (v == d->vmin || v == d->vmax) && have && fabs(v - yhat) < 2 * sigma;
        if (d->run >= FLAT_MIN_RUN && !at_bound) {
            double pe = d->p_eq < P_EQ_FLOOR ? P_EQ_FLOOR : d->p_eq;
            s_flat = (double)(d->run - FLAT_MIN_RUN + 1) * -log(pe);
        }
    } else {
        d->run = 0;
    }
    /* ---- residual tests ---- */
    double s_point = 0, resid = 0, z = 0;
    bool warm = have && m->nscale >= WARM_STEPS;
    if (warm) {
        double yl = m->c.log_scale ? (v > 0 ? log(v) : -745.0) : v;
        double yhl = m->c.log_scale ? log(yhat > 0 ? yhat : 1e-300) : yhat;
        resid = yl - yhl;
        z = clampd(resid / sigma, -1e6, 1e6);
        if (hw_novel(m, t)) z /= NOVEL_INFLATE;
        s_point = clampd(point_surprise(fabs(z)), 0, S_MAX);
        double zc = clampd(z, -Z_CLIP, Z_CLIP);
        double decay = k > 1 ? 1.0 / k : 1.0; /* after a gap the evidence is older */
        double inc = LEVEL_DELTA * (zc - LEVEL_DELTA / 2);
        double dec = LEVEL_DELTA * (-zc - LEVEL_DELTA / 2);
        if (d->cus_hi <= 0) d->sum_hi = 0, d->cnt_hi = 0;
        if (d->cus_lo <= 0) d->sum_lo = 0, d->cnt_lo = 0;
        d->cus_hi = clampd(d->cus_hi * decay + inc, 0, S_MAX);
        d->cus_lo = clampd(d->cus_lo * decay + dec, 0, S_MAX);
        /* the current bias: an EWMA of the residuals over each run, what adoption moves by */
        d->sum_hi += (resid - d->sum_hi) * (d->cnt_hi < 4 ? 1.0 / (d->cnt_hi + 1) : 0.25);
        d->sum_lo += (resid - d->sum_lo) * (d->cnt_lo < 4 ? 1.0 / (d->cnt_lo + 1) : 0.25);
        d->cnt_hi += 1, d->cnt_lo += 1;
        double vinc = zc * zc / 2 * (1 - 1 / (VAR_RHO * VAR_RHO)) - log(VAR_RHO);
        d->cus_var = clampd(d->cus_var * decay + vinc, 0, S_MAX);
        d->var_short += (zc * zc - d->var_short) * 0.05;
    }
    double mem_steps = (double)ADOPT_MEMORY_MS / (double)d->c.hw.step_ms;
    bool recent = d->since_adopt < mem_steps;
    /* a drift that keeps going in the direction already adopted is the same event */
    double lh = d->cus_hi * (recent && d->last_dir > 0 ? REPEAT_DAMP : 1);
    double ll = d->cus_lo * (recent && d->last_dir < 0 ? REPEAT_DAMP : 1);
    double s = s_point;
    if (lh > s) s = lh;
    if (ll > s) s = ll;
    if (d->cus_var > s) s = d->cus_var;
    if (s_flat > s) s = s_flat;
    if (d->relearn > 0) s *= REPEAT_DAMP; /* the model is catching up with a changed pattern */
    s = clampd(s, 0, S_MAX);

    /* ---- events: report a surprise only when it is a new peak ---- */
    double pk = d->peak * exp(-k * (double)d->c.hw.step_ms / (double)PEAK_TAU_MS);
    double rep = s > pk ? s : s * REPEAT_DAMP;
    d->peak = s > pk ? s : pk;

    /* ---- calibration against this stream's own history ---- */
    double excess = log(d->cal_rate / CAL_NOMINAL);
    if (warm) {
        double g = (double)d->c.hw.step_ms / (double)CAL_MEMORY_MS;
        d->cal_rate += ((rep >= CAL_LEVEL ? 1.0 : 0.0) - d->cal_rate) * (g < 1 ? g : 1);
        if (d->cal_rate < CAL_NOMINAL) d->cal_rate = CAL_NOMINAL;
    }
    if (excess > 0) rep = rep > excess ? rep - excess : 0;
    if (!warm && s_flat <= 0) rep = 0;
    r->score = clampd(-expm1(-rep * M_LN2 / SCORE_HALF), 0, 1);
    r->alarm = r->score >= d->c.threshold;

    /* ---- learn ---- */
    double w = 1;
    if (s_point > POINT_NOLEARN) {
        /* isolated outliers stay out of the model; a sustained deviation is learned (with the
         * Huber clip) since it may be a pattern the model has not seen yet */
        if (d->outliers < NOLEARN_RUN) w = 0;
        if (d->outliers < UINT32_MAX) d->outliers++;
    } else {
        d->outliers = 0;
    }
    if (d->run >= FLAT_MIN_RUN) w = 0;
    int dir = 0;
    double shift = 0;
    if (warm && d->cus_hi >= ADOPT_NATS && d->cnt_hi > 0) dir = 1, shift = d->sum_hi;
    else if (warm && d->cus_lo >= ADOPT_NATS && d->cnt_lo > 0) dir = -1, shift = d->sum_lo;
    d->relearn = d->relearn > k ? d->relearn - k : 0;
    if (dir) {
        if (recent && dir != d->last_dir && d->n_adopt == 1 && -shift * d->last_shift > 0) {
            /* back the other way soon after one shift: a transient (outage, dip) ended; the
             * level before it is a better estimate than a few residuals */
            shift = -d->last_shift;
        }
        ag_hw_shift_level(m, shift);
        ag_hw_shift_level(d->fc, shift);
        d->last_shift = shift;
        d->n_adopt = recent ? (uint8_t)(d->n_adopt < 255 ? d->n_adopt + 1 : 255) : 1;
        if (recent && dir == d->last_dir) {
            /* shifts keep coming the same way: a new trend (a leak), adopt its slope */
            double tr = m->trend + shift / (d->since_adopt > 1 ? d->since_adopt : 1);
            if (isfinite(tr)) m->trend = tr;
            tr = d->fc->trend + shift / (d->since_adopt > 1 ? d->since_adopt : 1);
            if (isfinite(tr)) d->fc->trend = tr;
        } else if (recent && d->n_adopt >= RELEARN_ADOPTIONS) {
            /* shifts back and forth: the pattern itself changed; relearn the season */
            d->relearn = (double)RELEARN_MS / (double)d->c.hw.step_ms;
            m->trend = 0;
            d->fc->trend = 0;
        }
        d->last_dir = (int8_t)dir;
        d->since_adopt = 0;
        d->cus_hi = d->cus_lo = 0;
        w = 1;
    }
    if (d->since_adopt < 1e18) d->since_adopt += k;
    if (warm && d->cus_var >= VAR_ADOPT_NATS) {
        double f = sqrt(d->var_short > 1 ? d->var_short : 1);
        m->scale *= f;
        if (!isfinite(m->scale) || m->scale > 1e300) m->scale = 1e300;
        d->cus_var = 0;
        d->var_short = 1;
    }
    /* the repeat rate starts as a plain average, so a series that was always constant never
     * looks stuck */
    double pg = 1.0 / ((double)m->n + 1);
    double pmin = (double)d->c.hw.step_ms / (double)P_EQ_TAU_MS;
    if (pg < pmin) pg = pmin;
    if (d->have_prev) d->p_eq += ((repeat ? 1.0 : 0.0) - d->p_eq) * pg;
    if (!m->n || v < d->vmin) d->vmin = v;
    if (!m->n || v > d->vmax) d->vmax = v;
    d->prev = v;
    d->have_prev = 1;
    if (warm) d->nscored++;
    double sw = w;
    if (d->cus_hi > EVENT_NATS || d->cus_lo > EVENT_NATS || d->cus_var > EVENT_NATS ||
        d->outliers > 0 || d->run >= FLAT_MIN_RUN)
        sw = 0;
    if (d->relearn > 0) sw = 1;
    int rc = hw_update(m, t, v, w, sw, d->relearn > 0 ? RELEARN_GAIN : 0, false, NULL);
    if (rc == AG_EINVAL) rc = AG_OK; /* refused by the model (e.g. <= 0 on a log scale): scored */
    /* The forecaster learns what the scoring model learns, with the same weights. */
    if (rc == AG_OK) hw_update(d->fc, t, v, w, sw, d->relearn > 0 ? RELEARN_GAIN : 0, true, NULL);
    return rc;
}

/* ---- serialisation ---------------------------------------------------------------------------- */

/* Layout (little endian): u32 magic "ADET", u8 version 1, f64 threshold, u64 nscored, f64 cus_hi
 * cus_lo sum_hi sum_lo cnt_hi cnt_lo cus_var var_short prev p_eq peak since_adopt relearn
 * last_shift cal_rate vmin vmax (all finite), u32 run outliers, u8 have_prev, i8 last_dir,
 * u8 n_adopt, then the scoring model in ag_hw_save's format, then (version 2) the forecaster in
 * the same format up to the last byte. A version 1 state gets a new, empty forecaster. */
int ag_detect_save(const ag_detect_t *d, ag_buf_t *out)
{
    size_t len0 = out->len;
    wr_u32(out, DET_MAGIC);
    wr_u8(out, DET_VERSION);
    wr_f64(out, d->c.threshold);
    wr_u64(out, d->nscored);
    const double f[] = {d->cus_hi, d->cus_lo, d->sum_hi, d->sum_lo, d->cnt_hi, d->cnt_lo,
                        d->cus_var, d->var_short, d->prev, d->p_eq, d->peak, d->since_adopt,
                        d->relearn, d->last_shift, d->cal_rate, d->vmin, d->vmax};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) wr_f64(out, f[i]);
    wr_u32(out, d->run);
    wr_u32(out, d->outliers);
    wr_u8(out, d->have_prev);
    wr_u8(out, (uint8_t)d->last_dir);
    wr_u8(out, d->n_adopt);
    int rc = ag_hw_save(d->hw, out);
    if (!rc) rc = ag_hw_save(d->fc, out);
    if (rc || !ag_buf_ok(out)) {
        out->len = len0;
        return AG_ENOMEM;
    }
    return AG_OK;
}

int ag_detect_load(const uint8_t *buf, size_t len, ag_detect_t **out, ag_errmsg_t *e)
{
    *out = NULL;
    if (!buf) return ag_errmsg_set(e, AG_ECORRUPT, 0, "no input");
    rd_t r = {buf, buf + len, buf, false};
    if (rd_u32(&r) != DET_MAGIC) return ag_errmsg_set(e, AG_ECORRUPT, 0, "not a detector state");
    uint8_t ver = rd_u8(&r);
    if (r.bad) return ag_errmsg_set(e, AG_ECORRUPT, 4, "truncated header");
    if (ver < 1 || ver > DET_VERSION)
        return ag_errmsg_set(e, AG_EUNSUPPORTED, 4, "detector format version %u not supported", ver);
    ag_detect_t *d = calloc(1, sizeof *d);
    if (!d) return AG_ENOMEM;
    d->c.threshold = rd_fin(&r);
    d->nscored = rd_u64(&r);
    double *f[] = {&d->cus_hi, &d->cus_lo, &d->sum_hi, &d->sum_lo, &d->cnt_hi, &d->cnt_lo,
                   &d->cus_var, &d->var_short, &d->prev, &d->p_eq, &d->peak, &d->since_adopt,
                   &d->relearn, &d->last_shift, &d->cal_rate, &d->vmin, &d->vmax};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = rd_fin(&r);
    d->run = rd_u32(&r);
    d->outliers = rd_u32(&r);
    d->have_prev = rd_u8(&r);
    d->last_dir = (int8_t)rd_u8(&r);
    d->n_adopt = rd_u8(&r);
    long off = (long)(r.p - buf);
    if (r.bad) {
        free(d);
        return ag_errmsg_set(e, AG_ECORRUPT, off, "truncated or non-finite detector state");
    }
    bool ok = d->c.threshold >= 0 && d->c.threshold <= 1 && d->cus_hi >= 0 &&
              d->cus_hi <= S_MAX && d->cus_lo >= 0 && d->cus_lo <= S_MAX && d->cus_var >= 0 &&
              d->cus_var <= S_MAX && d->cnt_hi >= 0 && d->cnt_lo >= 0 && d->var_short >= 0 &&
              d->p_eq >= 0 && d->p_eq <= 1 && d->peak >= 0 && d->peak <= S_MAX &&
              d->have_prev <= 1 && d->since_adopt >= 0 && d->relearn >= 0 &&
              d->last_dir >= -1 && d->last_dir <= 1 && d->cal_rate >= CAL_NOMINAL &&
              d->cal_rate <= 1;
    if (!ok) {
        free(d);
        return ag_errmsg_set(e, AG_ECORRUPT, off, "detector state out of range");
    }
    size_t used = 0;
    int rc = ag_hw_load(r.p, (size_t)(r.end - r.p), &used, &d->hw, e);
    if (rc) {
        free(d);
        if (e && e->offset >= 0) e->offset += off;
        return rc;
    }
    d->c.hw = *ag_hw_config(d->hw);
    if (ver >= 2) {
        size_t used2 = 0;
        rc = ag_hw_load(r.p + used, (size_t)(r.end - r.p) - used, &used2, &d->fc, e);
        if (rc) {
            ag_detect_free(d);
            if (e && e->offset >= 0) e->offset += off + (long)used;
            return rc;
        }
        used += used2;
        d->c.fc = *ag_hw_config(d->fc);
        if (d->c.fc.step_ms != d->c.hw.step_ms || d->c.fc.log_scale != d->c.hw.log_scale) {
            ag_detect_free(d);
            return ag_errmsg_set(e, AG_ECORRUPT, off, "forecaster does not match the model");
        }
    } else {
        /* Version 1: a new forecaster with the defaults for the model's step and seasons. */
        ag_hw_config_default(&d->c.fc, d->c.hw.step_ms);
        if (!d->c.hw.day_buckets) d->c.fc.day_buckets = 0;
        if (!d->c.hw.week_buckets) d->c.fc.week_buckets = 0;
        d->c.fc.log_scale = d->c.hw.log_scale;
        if ((rc = ag_hw_new(&d->c.fc, &d->fc))) {
            ag_detect_free(d);
            return rc;
        }
    }
    if (used != (size_t)(r.end - r.p)) {
        ag_detect_free(d);
        return ag_errmsg_set(e, AG_ECORRUPT, off + (long)used, "trailing bytes after the model");
    }
    *out = d;
    return AG_OK;
}
