/* hw.c - the robust additive Holt-Winters model (contract: include/ag_forecast.h).
 *
 * Why this shape
 * --------------
 * The model is the error-correction form of ETS(A,Ad,A) with two seasons (Taylor's double
 * seasonal Holt-Winters): the one-step error e moves the level by alpha*e, the trend by
 * alpha*beta*e, then what the level did not explain moves the daily bucket, and what is still
 * left moves the weekly bucket. Seasons are rings of buckets addressed by the sample's wall-clock
 * time (time of day, time of week), not by a step counter, so gaps, jitter and irregular sampling
 * never shift the phase; a bucket may hold several steps (weekly buckets are 15 minutes), and its
 * per-sample gain is derived so that one visit of the cycle absorbs the configured share gamma.
 *
 * Robustness: every correction uses the residual Huberised at AG_HW_CLIP robust standard
 * deviations (the scale is an EWMA of the clipped |residual|), so an outlier moves the model by
 * a bounded amount; the detector additionally passes weight 0 for samples it flags. A genuine
 * level shift is then absorbed only slowly, which is why the detector adopts confirmed shifts
 * explicitly (ag_hw_shift_level).
 *
 * Warm-up without a batch phase: each gain starts as 1/k (k = samples seen by that component)
 * and decays to its configured value, so the first day defines the daily profile (the first
 * visit of a bucket takes the whole residual), the level starts as a running mean, and the scale
 * learns only from residuals of buckets that were already visited (real forecasts). A weekly
 * bucket visited for the first time starts from the previous weekly bucket's value, so a weekend
 * drop learned in its first bucket carries through the rest of the weekend.
 *
 * Both seasons keep a mean of zero in O(1) per update (an offset per season; a bucket's change
 * moves the level by its share), so level and seasons cannot drift apart and a level shift is a
 * change of one number.
 *
 * Recurring anomalies: each bucket remembers whether its current and its previous visit held a
 * sample the caller kept out of the seasons. An anomaly at the same time of day or week as one
 * in the previous cycle is taken into the bucket in full: a nightly job is a pattern, not an
 * alarm every night.
 *
 * State that would stop being finite (huge values) is never committed: the update is computed
 * in temporaries and refused as a whole.
 */
#include "ag_forecast.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forecast_int.h"

#define HW_MAGIC 0x57484741u /* "AGHW" little endian */
#define HW_VERSION 1

bool ag_forecast_is_stale(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u == 0x7ff0000000000002ULL;
}

/* Gain per step for a time constant tau_ms: 1 - exp(-step / tau). */
static double gain_for(int64_t step_ms, double tau_ms)
{
    return -expm1(-(double)step_ms / tau_ms);
}

void ag_hw_config_default(ag_hw_config_t *c, int64_t step_ms)
{
    memset(c, 0, sizeof *c);
    if (step_ms <= 0) step_ms = 60000;
    if (step_ms > AG_HW_WEEK_MS) step_ms = AG_HW_WEEK_MS;
    c->step_ms = step_ms;
    int64_t per_day = AG_HW_DAY_MS / step_ms, per_week = AG_HW_WEEK_MS / step_ms;
    if (per_day >= 8) c->day_buckets = (uint32_t)(per_day < 288 ? per_day : 288);
    if (per_week >= 14) c->week_buckets = (uint32_t)(per_week < 168 ? per_week : 168);
    c->log_scale = false;
    c->p.alpha = gain_for(step_ms, 84.0 * 3600e3);
    c->p.beta = 0.002;
    c->p.phi = 1.0 - gain_for(step_ms, 48.0 * 3600e3);
    c->p.gamma_day = 0.05;
    c->p.gamma_week = 0.5;
}

static bool unit(double x) { return x >= 0 && x <= 1; }

int ag_hw_config_check(const ag_hw_config_t *c, ag_errmsg_t *e)
{
    if (!c) return ag_errmsg_set(e, AG_EINVAL, -1, "no config");
    if (c->step_ms < 1 || c->step_ms > AG_HW_WEEK_MS)
        return ag_errmsg_set(e, AG_EINVAL, -1, "step %lld ms out of range", (long long)c->step_ms);
    if (c->day_buckets == 1 || c->day_buckets > AG_HW_MAX_BUCKETS ||
        c->week_buckets == 1 || c->week_buckets > AG_HW_MAX_BUCKETS)
        return ag_errmsg_set(e, AG_EINVAL, -1, "season buckets out of range");
    const ag_hw_params_t *p = &c->p;
    if (!unit(p->alpha) || !unit(p->beta) || !unit(p->phi) || !unit(p->gamma_day) ||
        !unit(p->gamma_week))
        return ag_errmsg_set(e, AG_EINVAL, -1, "smoothing constants must be in [0, 1]");
    return AG_OK;
}

/* Per-sample gain for a season with `nb` buckets over `period` ms so that a visit of one bucket
 * (period / nb / step samples) absorbs the share gamma. */
static double season_gain(double gamma, int64_t period, uint32_t nb, int64_t step)
{
    if (!nb) return 0;
    double m = (double)period / nb / (double)step;
    if (m <= 1) return gamma;
    if (gamma >= 1) return 1;
    return -expm1(log1p(-gamma) / m);
}

/* Samples per bucket visit (at least 1). */
static uint32_t per_visit(int64_t period, uint32_t nb, int64_t step)
{
    if (!nb) return 1;
    double m = floor((double)period / nb / (double)step);
    return m < 1 ? 1 : m > 1e6 ? 1000000 : (uint32_t)m;
}

static void derive(ag_hw_t *m)
{
    m->md = per_visit(AG_HW_DAY_MS, m->c.day_buckets, m->c.step_ms);
    m->mw = per_visit(AG_HW_WEEK_MS, m->c.week_buckets, m->c.step_ms);
    m->gd_step = season_gain(m->c.p.gamma_day, AG_HW_DAY_MS, m->c.day_buckets, m->c.step_ms);
    m->gw_step = season_gain(m->c.p.gamma_week, AG_HW_WEEK_MS, m->c.week_buckets, m->c.step_ms);
    m->scale_gain = gain_for(m->c.step_ms, 6.0 * 3600e3);
}

static int hw_alloc(const ag_hw_config_t *c, ag_hw_t **out)
{
    *out = NULL;
    if (ag_hw_config_check(c, NULL)) return AG_EINVAL;
    ag_hw_t *m = calloc(1, sizeof *m);
    if (!m) return AG_ENOMEM;
    m->c = *c;
    size_t nb = (size_t)c->day_buckets + c->week_buckets;
    if (nb) {
        m->sd = calloc(nb, sizeof *m->sd);
        m->vd = calloc(nb, sizeof *m->vd);
        m->fd = calloc(nb, sizeof *m->fd);
        if (!m->sd || !m->vd || !m->fd) {
            ag_hw_free(m);
            return AG_ENOMEM;
        }
        m->sw = m->sd + c->day_buckets;
        m->vw = m->vd + c->day_buckets;
        m->fw = m->fd + c->day_buckets;
    }
    derive(m);
    m->t_last = INT64_MIN;
    m->last_db = m->last_wb = -1;
    *out = m;
    return AG_OK;
}

int ag_hw_new(const ag_hw_config_t *c, ag_hw_t **out)
{
    if (!out) return AG_EINVAL;
    return hw_alloc(c, out);
}

void ag_hw_free(ag_hw_t *m)
{
    if (!m) return;
    free(m->sd);
    free(m->vd);
    free(m->fd);
    free(m);
}

int ag_hw_clone(const ag_hw_t *m, ag_hw_t **out)
{
    int rc = hw_alloc(&m->c, out);
    if (rc) return rc;
    ag_hw_t *c = *out;
    double *sd = c->sd, *sw = c->sw;
    uint32_t *vd = c->vd, *vw = c->vw;
    uint8_t *fd = c->fd, *fw = c->fw;
    *c = *m;
    c->sd = sd, c->sw = sw, c->vd = vd, c->vw = vw, c->fd = fd, c->fw = fw;
    size_t nb = (size_t)m->c.day_buckets + m->c.week_buckets;
    if (nb) {
        memcpy(c->sd, m->sd, nb * sizeof *c->sd);
        memcpy(c->vd, m->vd, nb * sizeof *c->vd);
        memcpy(c->fd, m->fd, nb * sizeof *c->fd);
    }
    return AG_OK;
}

const ag_hw_config_t *ag_hw_config(const ag_hw_t *m) { return &m->c; }

int ag_hw_set_params(ag_hw_t *m, const ag_hw_params_t *p)
{
    ag_hw_config_t c = m->c;
    c.p = *p;
    if (ag_hw_config_check(&c, NULL)) return AG_EINVAL;
    m->c.p = *p;
    derive(m);
    return AG_OK;
}

uint64_t ag_hw_count(const ag_hw_t *m) { return m->n; }
int64_t ag_hw_last_time(const ag_hw_t *m) { return m->t_last; }

static int64_t floor_mod(int64_t t, int64_t p)
{
    int64_t r = t % p;
    return r < 0 ? r + p : r;
}

static int32_t bucket(int64_t t, int64_t period, uint32_t nb)
{
    if (!nb) return -1;
    /* (t mod period) * nb / period without overflow: period <= 2^40, nb <= 2^12 */
    return (int32_t)((floor_mod(t, period) * (int64_t)nb) / period);
}

double hw_sigma(const ag_hw_t *m)
{
    double s = m->scale * HW_SIGMA_PER_MAD;
    double fl = 1e-9 * fabs(m->level) + 1e-12;
    if (!(s >= fl)) s = fl; /* also catches NaN */
    if (!isfinite(s)) s = 1e300;
    return s;
}

/* Steps between the last sample and t (at least 1). */
static double steps_to(const ag_hw_t *m, int64_t t)
{
    if (m->t_last == INT64_MIN || t <= m->t_last) return 1;
    double k = nearbyint(((double)t - (double)m->t_last) / (double)m->c.step_ms);
    return k < 1 ? 1 : k;
}

/* Sum of phi^1..phi^k. */
static double damp_sum(double phi, double k)
{
    if (phi >= 1) return k;
    if (phi <= 0) return 0;
    return phi * -expm1(k * log(phi)) / (1 - phi);
}

/* An unvisited weekly bucket starts from the last visited one. */
static double week_value(const ag_hw_t *m, int32_t b)
{
    return (m->vw[b] || m->last_wb < 0 ? m->sw[b] : m->sw[m->last_wb]) - m->off_w;
}

/* How much of a season to trust in a forecast beyond the next step: a bucket's value is its
 * true effect plus the noise of the few samples it has learned from (a weekly bucket of a
 * 5-minute series has seen a handful after two weeks). With S the mean square of the learned
 * bucket values and N the mean noise variance they carry (sigma^2 over each bucket's effective
 * sample count), the James-Stein factor max(0, 1 - N / S) shrinks a season that is mostly noise
 * towards zero and leaves a real one (S >> N) alone. O(buckets). */
static double season_shrink(const ag_hw_t *m, const double *sv, const uint32_t *cnt, uint32_t nb,
                            double off, double gain)
{
    if (!nb) return 0;
    double sig = hw_sigma(m), cap = gain > 0 ? 2.0 / gain : 1e18;
    double ss = 0, nv = 0;
    uint32_t k = 0;
    for (uint32_t b = 0; b < nb; b++) {
        if (!cnt[b]) continue;
        double x = sv[b] - off, n = cnt[b] < cap ? cnt[b] : cap;
        ss += x * x;
        nv += sig * sig / n;
        k++;
    }
    if (!k || !(ss > 0)) return 0;
    double f = 1 - nv / ss;
    return f > 0 ? f : 0;
}

/* The daily season at t for a forecast: a bucket's value is the mean of the samples of a
 * visit, so it belongs to the middle of the samples it holds (the bucket's start when it holds
 * one sample per visit, 2 steps in when it holds 5); between two such points the value is
 * interpolated linearly, so a steep daily ramp is not forecast as a staircase. */
static double day_interpolated(const ag_hw_t *m, int64_t t, int32_t b)
{
    uint32_t nb = m->c.day_buckets;
    double width = (double)AG_HW_DAY_MS / nb;
    double center = (double)(m->md > 1 ? m->md - 1 : 0) * (double)m->c.step_ms / 2;
    double pos = ((double)floor_mod(t, AG_HW_DAY_MS) - b * width - center) / width;
    int32_t o = pos >= 0 ? (int32_t)((b + 1) % nb) : (int32_t)((b + nb - 1) % nb);
    double f = fabs(pos);
    if (f > 1) f = 1;
    double x = m->sd[b] - m->off_d;
    if (f == 0 || !m->vd[o]) return x;
    return x + f * ((m->sd[o] - m->off_d) - x);
}

/* Model-scale forecast for t; with `shrink`, each season shrunk by its noise (season_shrink:
 * O(buckets), so only for forecasts, not for the one-step prediction the detector makes per
 * sample). */
static double mean_at(const ag_hw_t *m, int64_t t, bool shrink)
{
    double k = steps_to(m, t);
    double v = m->level + m->trend * damp_sum(m->c.p.phi, k);
    int32_t b = bucket(t, AG_HW_DAY_MS, m->c.day_buckets);
    if (b >= 0)
        v += (shrink ? season_shrink(m, m->sd, m->vd, m->c.day_buckets, m->off_d, m->gd_step)
                     : 1) *
             (shrink ? day_interpolated(m, t, b) : m->sd[b] - m->off_d);
    b = bucket(t, AG_HW_WEEK_MS, m->c.week_buckets);
    if (b >= 0)
        v += (shrink ? season_shrink(m, m->sw, m->vw, m->c.week_buckets, m->off_w, m->gw_step)
                     : 1) *
             week_value(m, b);
    return isfinite(v) ? v : m->level;
}

static double to_data(const ag_hw_t *m, double x)
{
    if (!m->c.log_scale) return x;
    if (x > 709) x = 709;
    return exp(x);
}

int ag_hw_predict(const ag_hw_t *m, int64_t t, double *yhat, double *sigma)
{
    if (!m->n) return AG_ENOTFOUND;
    if (yhat) *yhat = to_data(m, mean_at(m, t, false));
    if (sigma) *sigma = hw_sigma(m);
    return AG_OK;
}

static double clampd(double x, double lim)
{
    if (x > lim) return lim;
    if (x < -lim) return -lim;
    if (isnan(x)) return 0;
    return x;
}

void ag_hw_shift_level(ag_hw_t *m, double delta)
{
    if (isfinite(delta) && isfinite(m->level + delta)) m->level += delta;
}

int ag_hw_update(ag_hw_t *m, int64_t t, double v, double weight, double *resid)
{
    return hw_update(m, t, v, weight, weight, 0, true, resid);
}

bool hw_novel(const ag_hw_t *m, int64_t t)
{
    int32_t bd = bucket(t, AG_HW_DAY_MS, m->c.day_buckets);
    int32_t bw = bucket(t, AG_HW_WEEK_MS, m->c.week_buckets);
    return (bd >= 0 && m->vd[bd] < m->md) || (bw >= 0 && m->vw[bw] < m->mw);
}

int hw_update(ag_hw_t *m, int64_t t, double v, double weight, double sweight, double relearn,
              bool settle_week, double *resid)
{
    if (resid) *resid = 0;
    if (m->n && t <= m->t_last) return AG_ECONFLICT;
    if (!isfinite(v) || (m->c.log_scale && !(v > 0))) return AG_EINVAL;
    double y = m->c.log_scale ? log(v) : v;
    if (!(weight >= 0)) weight = 0;
    if (weight > 1) weight = 1;
    if (!(sweight >= 0)) sweight = 0;
    if (sweight > 1) sweight = 1;
    int32_t bd = bucket(t, AG_HW_DAY_MS, m->c.day_buckets);
    int32_t bw = bucket(t, AG_HW_WEEK_MS, m->c.week_buckets);

    if (!m->n) {
        if (fabs(y) > 1e300) return AG_EINVAL;
        m->level = y;
        m->trend = 0;
        m->t_last = t;
        m->n = 1;
        m->last_db = bd, m->last_wb = bw;
        return AG_OK;
    }

    const ag_hw_params_t *p = &m->c.p;
    double k = steps_to(m, t);
    /* advance over missed steps: the damped trend keeps going, the seasons wait */
    double lev = m->level + m->trend * damp_sum(p->phi, k - 1);
    double tr = m->trend * (p->phi >= 1 ? 1 : pow(p->phi, k - 1));
    double sdv = bd >= 0 ? m->sd[bd] - m->off_d : 0;
    double swv = bw >= 0 ? week_value(m, bw) : 0;
    double pred = lev + p->phi * tr + sdv + swv;
    double e = y - pred;
    if (!isfinite(e)) return AG_EINVAL;
    if (resid) *resid = e;

    double sig = hw_sigma(m);
    bool robust = m->nscale >= HW_WARM_CLIP;
    double lim = AG_HW_CLIP * sig;
    double ec = robust ? clampd(e, lim) : e;
    /* During the first cycle of the shortest season the level stays put and the season takes
     * the whole deviation; the mean-zero renormalisation below then leaves the level at that
     * cycle's mean and the buckets at their deviations from it: the classical initialisation. */
    bool first_cycle = bd >= 0 ? m->vd[bd] < m->md : bw >= 0 && m->vw[bw] < m->mw;
    double ga = 1.0 / (double)(m->n + 1);
    if (ga < p->alpha) ga = p->alpha;
    if (first_cycle) ga = 0;
    ga *= weight;
    double lev2 = lev + p->phi * tr + ga * ec;
    double tr2 = p->phi * tr + ga * p->beta * ec;

    /* Anomaly flags: entering a bucket starts a new visit (bit 0 moves to bit 1). */
    uint8_t fdb = 0, fwb = 0;
    if (bd >= 0) fdb = bd == m->last_db ? m->fd[bd] : (uint8_t)((m->fd[bd] & 1) << 1);
    if (bw >= 0) fwb = bw == m->last_wb ? m->fw[bw] : (uint8_t)((m->fw[bw] & 1) << 1);
    bool anom = sweight < 0.5;
    bool rec_d = anom && (fdb & 2), rec_w = anom && (fwb & 2);
    if (anom) fdb |= 1, fwb |= 1;

    /* A bucket in its first cycle has no history to protect: it learns every sample fully,
     * whatever the weight and the clip say; so does a bucket whose anomaly recurs. */
    double sd2 = sdv, sw2 = swv;
    bool day_known = bd < 0 || m->vd[bd] > 0;
    if (bd >= 0) {
        double e1 = y - lev2 - sdv - swv;
        bool first = m->vd[bd] < m->md || relearn > 0;
        double g = 1.0 / (double)(m->vd[bd] + 1);
        if (g < m->gd_step) g = m->gd_step;
        if (relearn > 0) g = season_gain(relearn, AG_HW_DAY_MS, m->c.day_buckets, m->c.step_ms);
        if (rec_d) g = 1, first = true;
        sd2 = sdv + (first ? g * e1 : sweight * g * (robust ? clampd(e1, lim) : e1));
    }
    /* With settle_week (forecasting), the weekly season learns what the daily one leaves only
     * once the daily bucket has finished its first visit: during it, the daily bucket's running
     * mean still moves with every sample (a spike in it would otherwise be answered by an
     * opposite weekly correction that lasts the whole weekly bucket). The scoring model learns
     * the weekly season from the start, which scores better on the anomaly set. */
    bool week_learns = !settle_week || bd < 0 || m->vd[bd] >= m->md;
    if (bw >= 0 && week_learns) {
        double e2 = y - lev2 - sd2 - swv;
        bool first = m->vw[bw] < m->mw;
        double g = 1.0 / (double)(m->vw[bw] + 1);
        if (g < m->gw_step) g = m->gw_step;
        if (rec_w) g = 1, first = true;
        sw2 = swv + (first ? g * e2 : sweight * g * (robust ? clampd(e2, lim) : e2));
    }
    double sc = m->scale;
    uint64_t nsc = m->nscale;
    if (day_known && weight > 0) {
        double a = fabs(e);
        if (robust && a > lim) a = lim;
        double gs = 1.0 / (double)(nsc + 1);
        if (gs < m->scale_gain) gs = m->scale_gain;
        sc += weight * gs * (a - sc);
        nsc++;
    }
    /* keep each season's mean at zero: a bucket's change moves the level by its mean share */
    double dd = bd >= 0 ? sd2 - (m->sd[bd] - m->off_d) : 0;
    double dw = bw >= 0 ? sw2 - (m->sw[bw] - m->off_w) : 0;
    double od = m->off_d, ow = m->off_w;
    if (bd >= 0) od += dd / m->c.day_buckets, lev2 += dd / m->c.day_buckets;
    if (bw >= 0) ow += dw / m->c.week_buckets, lev2 += dw / m->c.week_buckets;
    if (!isfinite(lev2) || !isfinite(tr2) || !isfinite(sd2) || !isfinite(sw2) || !isfinite(sc) ||
        !isfinite(od) || !isfinite(ow) || fabs(lev2) > 1e300 || fabs(sc) > 1e300 ||
        fabs(od) > 1e300 || fabs(ow) > 1e300)
        return AG_EINVAL;

    m->level = lev2;
    m->trend = tr2;
    if (bd >= 0) {
        m->sd[bd] += dd;
        m->fd[bd] = fdb;
        m->off_d = od;
        if (m->vd[bd] < UINT32_MAX) m->vd[bd]++;
    }
    if (bw >= 0) {
        m->sw[bw] += dw;
        m->fw[bw] = fwb;
        m->off_w = ow;
        if (week_learns && m->vw[bw] < UINT32_MAX) m->vw[bw]++;
    }
    m->scale = sc;
    m->nscale = nsc;
    m->t_last = t;
    m->n++;
    m->last_db = bd, m->last_wb = bw;
    return AG_OK;
}

/* ---- prediction intervals ------------------------------------------------------------------ */

/* Inverse of the standard normal CDF (P. J. Acklam's rational approximation, relative error
 * below 1.2e-9), so this file does not need GSL. */
static double norm_quantile(double p)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549671324505560e+00,
                               4.374664141464968e+00, 2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                               2.445134137142996e+00, 3.754408661907416e+00};
    double q, r;
    if (p < 0.02425) {
        q = sqrt(-2 * log(p));
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    if (p > 1 - 0.02425) return -norm_quantile(1 - p);
    q = p - 0.5;
    r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

int ag_hw_forecast(const ag_hw_t *m, int64_t t, double coverage, ag_hw_forecast_t *out)
{
    if (!(coverage > 0 && coverage < 1)) return AG_EINVAL;
    if (!m->n) return AG_ENOTFOUND;
    const ag_hw_params_t *p = &m->c.p;
    double h = steps_to(m, t);
    if (h > AG_HW_MAX_HORIZON) h = AG_HW_MAX_HORIZON;
    /* ETS(A,Ad,A): var(h) = sigma^2 (1 + sum_{j=1}^{h-1} c_j^2),
     * c_j = alpha (1 + beta * (phi + ... + phi^j)) + gamma [j a multiple of the period] */
    double f = 1, ds = 0, pj = 1;
    uint64_t hn = (uint64_t)h;
    uint64_t per_day = m->c.day_buckets ? (uint64_t)(AG_HW_DAY_MS / m->c.step_ms) : 0;
    for (uint64_t j = 1; j < hn; j++) {
        pj *= p->phi;
        ds += pj;
        double cj = p->alpha * (1 + p->beta * ds);
        if (per_day && j % per_day == 0) cj += p->gamma_day;
        f += cj * cj;
        if (f > 1e12) break;
    }
    double z = norm_quantile(0.5 + coverage / 2);
    double half = z * hw_sigma(m) * sqrt(f);
    double mu = mean_at(m, t, true);
    if (!isfinite(half)) half = 1e300;
    double lo = mu - half, hi = mu + half;
    if (!isfinite(lo)) lo = -1e300;
    if (!isfinite(hi)) hi = 1e300;
    out->mean = to_data(m, mu);
    out->lower = to_data(m, lo);
    out->upper = to_data(m, hi);
    return AG_OK;
}

/* ---- serialisation ---------------------------------------------------------------------------- */

void wr_u8(ag_buf_t *b, uint8_t v) { ag_buf_append(b, &v, 1); }

void wr_u32(ag_buf_t *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    ag_buf_append(b, x, 4);
}

void wr_u64(ag_buf_t *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    ag_buf_append(b, x, 8);
}

void wr_f64(ag_buf_t *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    wr_u64(b, u);
}

static bool rd_need(rd_t *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return false;
    }
    return true;
}

uint8_t rd_u8(rd_t *r) { return rd_need(r, 1) ? *r->p++ : 0; }

uint32_t rd_u32(rd_t *r)
{
    if (!rd_need(r, 4)) return 0;
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | r->p[i];
    r->p += 4;
    return v;
}

uint64_t rd_u64(rd_t *r)
{
    if (!rd_need(r, 8)) return 0;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | r->p[i];
    r->p += 8;
    return v;
}

double rd_f64(rd_t *r)
{
    uint64_t u = rd_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

double rd_fin(rd_t *r)
{
    double v = rd_f64(r);
    if (!isfinite(v) || fabs(v) > 1e300) {
        r->bad = true;
        return 0;
    }
    return v;
}

/* Layout (little endian): u32 magic "AGHW", u8 version 1, u8 flags (bit 0 log scale),
 * u64 step_ms, u32 day_buckets, u32 week_buckets, f64 alpha beta phi gamma_day gamma_week,
 * u64 t_last (two's complement), u64 n, u64 nscale, f64 level trend scale off_d off_w,
 * u32 last_db last_wb
 * (0xffffffff = none), then per day bucket f64 value + u32 visits + u8 anomaly flags (0..3),
 * then per week bucket the same. */
int ag_hw_save(const ag_hw_t *m, ag_buf_t *out)
{
    size_t len0 = out->len;
    wr_u32(out, HW_MAGIC);
    wr_u8(out, HW_VERSION);
    wr_u8(out, m->c.log_scale ? 1 : 0);
    wr_u64(out, (uint64_t)m->c.step_ms);
    wr_u32(out, m->c.day_buckets);
    wr_u32(out, m->c.week_buckets);
    wr_f64(out, m->c.p.alpha);
    wr_f64(out, m->c.p.beta);
    wr_f64(out, m->c.p.phi);
    wr_f64(out, m->c.p.gamma_day);
    wr_f64(out, m->c.p.gamma_week);
    wr_u64(out, (uint64_t)m->t_last);
    wr_u64(out, m->n);
    wr_u64(out, m->nscale);
    wr_f64(out, m->level);
    wr_f64(out, m->trend);
    wr_f64(out, m->scale);
    wr_f64(out, m->off_d);
    wr_f64(out, m->off_w);
    wr_u32(out, (uint32_t)m->last_db);
    wr_u32(out, (uint32_t)m->last_wb);
    for (uint32_t i = 0; i < m->c.day_buckets; i++) {
        wr_f64(out, m->sd[i]);
        wr_u32(out, m->vd[i]);
        wr_u8(out, m->fd[i]);
    }
    for (uint32_t i = 0; i < m->c.week_buckets; i++) {
        wr_f64(out, m->sw[i]);
        wr_u32(out, m->vw[i]);
        wr_u8(out, m->fw[i]);
    }
    if (!ag_buf_ok(out)) {
        out->len = len0;
        return AG_ENOMEM;
    }
    return AG_OK;
}

int ag_hw_load(const uint8_t *d, size_t len, size_t *used, ag_hw_t **out, ag_errmsg_t *e)
{
    *out = NULL;
    if (!d) return ag_errmsg_set(e, AG_ECORRUPT, 0, "no input");
    rd_t r = {d, d + len, d, false};
    if (rd_u32(&r) != HW_MAGIC) return ag_errmsg_set(e, AG_ECORRUPT, 0, "not a Holt-Winters model");
    uint8_t ver = rd_u8(&r);
    if (r.bad) return ag_errmsg_set(e, AG_ECORRUPT, 4, "truncated header");
    if (ver != HW_VERSION)
        return ag_errmsg_set(e, AG_EUNSUPPORTED, 4, "model format version %u not supported", ver);
    ag_hw_config_t c;
    memset(&c, 0, sizeof c);
    uint8_t flags = rd_u8(&r);
    c.log_scale = flags & 1;
    c.step_ms = (int64_t)rd_u64(&r);
    c.day_buckets = rd_u32(&r);
    c.week_buckets = rd_u32(&r);
    c.p.alpha = rd_f64(&r);
    c.p.beta = rd_f64(&r);
    c.p.phi = rd_f64(&r);
    c.p.gamma_day = rd_f64(&r);
    c.p.gamma_week = rd_f64(&r);
    if (r.bad) return ag_errmsg_set(e, AG_ECORRUPT, (long)len, "truncated config");
    if (flags > 1 || ag_hw_config_check(&c, NULL))
        return ag_errmsg_set(e, AG_ECORRUPT, 5, "invalid model config");
    size_t nb = (size_t)c.day_buckets + c.week_buckets;
    if ((size_t)(r.end - r.p) < 72 + nb * 13)
        return ag_errmsg_set(e, AG_ECORRUPT, (long)len, "truncated model state");
    ag_hw_t *m;
    int rc = hw_alloc(&c, &m);
    if (rc) return rc;
    m->t_last = (int64_t)rd_u64(&r);
    m->n = rd_u64(&r);
    m->nscale = rd_u64(&r);
    m->level = rd_fin(&r);
    m->trend = rd_fin(&r);
    m->scale = rd_fin(&r);
    m->off_d = rd_fin(&r);
    m->off_w = rd_fin(&r);
    uint32_t ldb = rd_u32(&r), lwb = rd_u32(&r);
    bool flags_ok = true;
    for (uint32_t i = 0; i < c.day_buckets; i++) {
        m->sd[i] = rd_fin(&r);
        m->vd[i] = rd_u32(&r);
        m->fd[i] = rd_u8(&r);
        flags_ok &= m->fd[i] <= 3;
    }
    for (uint32_t i = 0; i < c.week_buckets; i++) {
        m->sw[i] = rd_fin(&r);
        m->vw[i] = rd_u32(&r);
        m->fw[i] = rd_u8(&r);
        flags_ok &= m->fw[i] <= 3;
    }
    long off = (long)(r.p - d);
    if (r.bad) {
        ag_hw_free(m);
        return ag_errmsg_set(e, AG_ECORRUPT, off, "non-finite or truncated model state");
    }
    bool ok = flags_ok && m->scale >= 0 && m->nscale <= m->n &&
              (m->n == 0 ? m->t_last == INT64_MIN : m->t_last != INT64_MIN) &&
              (ldb == UINT32_MAX ? true : ldb < c.day_buckets) &&
              (lwb == UINT32_MAX ? true : lwb < c.week_buckets) &&
              ((ldb == UINT32_MAX) == (m->n == 0 || !c.day_buckets)) &&
              ((lwb == UINT32_MAX) == (m->n == 0 || !c.week_buckets));
    if (!ok) {
        ag_hw_free(m);
        return ag_errmsg_set(e, AG_ECORRUPT, off, "inconsistent model state");
    }
    m->last_db = ldb == UINT32_MAX ? -1 : (int32_t)ldb;
    m->last_wb = lwb == UINT32_MAX ? -1 : (int32_t)lwb;
    if (used) *used = (size_t)(r.p - d);
    *out = m;
    return AG_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int64_t ag_forecast_guess_step(const int64_t *t, size_t n)
{
    int64_t d[64];
    size_t k = 0;
    for (size_t i = 1; i < n && k < 64; i++)
        if (t[i] > t[i - 1] && t[i] - t[i - 1] <= AG_HW_WEEK_MS) d[k++] = t[i] - t[i - 1];
    if (!k) return 0;
    qsort(d, k, sizeof d[0], cmp_i64);
    return d[k / 2];
}
