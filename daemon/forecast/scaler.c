/* scaler.c - desired replicas from a load forecast, and the reactive HPA-style baseline
 * (ag_scaler.h).
 *
 * The forecast peak over the lead time is sampled at up to PEAK_POINTS evenly spaced horizons
 * (every interval when the lead time holds fewer), each the upper bound of a central interval
 * of probability 2 x confidence - 1 (so the one-sided bound is exceeded with probability
 * 1 - confidence). The stabilisation window is a ring of (time, raw recommendation) sized for
 * the window at the policy's interval (at most MAX_WINDOW entries; older ones age out by time).
 */
#include "ag_scaler.h"

#include "forecast_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PEAK_POINTS 24
#define MAX_WINDOW 4096
#define SC_MAGIC 0x43534741u /* "AGSC" */
#define SC_VERSION 1

struct ag_scaler {
    ag_scaler_policy_t p;
    ag_detect_t *det;
    int64_t last_t;   /* INT64_MIN before the first step */
    uint32_t last_desired;
    int64_t *wt;      /* window ring */
    uint32_t *wv;
    uint32_t cap, head, n;
};

void ag_scaler_policy_default(ag_scaler_policy_t *p)
{
    memset(p, 0, sizeof *p);
    p->target = 0.8;
    p->confidence = 0.9;
    p->lead_ms = 5 * 60000;
    p->interval_ms = 15000;
    p->stabilization_ms = 5 * 60000;
    p->min_replicas = 1;
    p->max_replicas = 100;
}

int ag_scaler_policy_check(const ag_scaler_policy_t *p, ag_errmsg_t *e)
{
    if (!(p->capacity > 0) || !isfinite(p->capacity))
        return ag_errmsg_set(e, AG_EINVAL, -1, "capacity_per_replica must be a number above 0");
    if (!(p->target > 0 && p->target <= 1))
        return ag_errmsg_set(e, AG_EINVAL, -1, "target_utilization must be in (0, 1]");
    if (!(p->confidence >= 0.5 && p->confidence < 1))
        return ag_errmsg_set(e, AG_EINVAL, -1, "confidence must be in [0.5, 1)");
    if (p->interval_ms < 1000 || p->interval_ms > 86400000)
        return ag_errmsg_set(e, AG_EINVAL, -1, "interval must be from 1s to 1d");
    if (p->lead_ms < 0 || p->lead_ms > 7 * 86400000LL)
        return ag_errmsg_set(e, AG_EINVAL, -1, "lead_time must be from 0s to 1w");
    if (p->stabilization_ms < 0 || p->stabilization_ms > 86400000)
        return ag_errmsg_set(e, AG_EINVAL, -1, "scale_down_stabilization must be from 0s to 1d");
    if (p->max_replicas < 1 || p->min_replicas > p->max_replicas)
        return ag_errmsg_set(e, AG_EINVAL, -1,
                             "min_replicas (%u) must not exceed max_replicas (%u), which must be "
                             "at least 1",
                             p->min_replicas, p->max_replicas);
    return AG_OK;
}

static uint32_t window_cap(const ag_scaler_policy_t *p)
{
    int64_t n = p->stabilization_ms / p->interval_ms + 2;
    return (uint32_t)(n > MAX_WINDOW ? MAX_WINDOW : n);
}

static int alloc_window(ag_scaler_t *s)
{
    s->cap = window_cap(&s->p);
    s->wt = calloc(s->cap, sizeof *s->wt);
    s->wv = calloc(s->cap, sizeof *s->wv);
    return s->wt && s->wv ? AG_OK : AG_ENOMEM;
}

int ag_scaler_new(const ag_scaler_policy_t *p, const ag_detect_config_t *dc, ag_scaler_t **out)
{
    *out = NULL;
    if (ag_scaler_policy_check(p, NULL)) return AG_EINVAL;
    ag_scaler_t *s = calloc(1, sizeof *s);
    if (!s) return AG_ENOMEM;
    s->p = *p;
    s->last_t = INT64_MIN;
    ag_detect_config_t c;
    if (dc) c = *dc;
    else ag_detect_config_default(&c, p->interval_ms);
    int rc = ag_detect_new(&c, &s->det);
    if (!rc) rc = alloc_window(s);
    if (rc) {
        ag_scaler_free(s);
        return rc;
    }
    *out = s;
    return AG_OK;
}

void ag_scaler_free(ag_scaler_t *s)
{
    if (!s) return;
    ag_detect_free(s->det);
    free(s->wt);
    free(s->wv);
    free(s);
}

const ag_detect_t *ag_scaler_detector(const ag_scaler_t *s) { return s->det; }
ag_detect_t *ag_scaler_detector_mut(ag_scaler_t *s) { return s->det; }

int ag_scaler_set_policy(ag_scaler_t *s, const ag_scaler_policy_t *p)
{
    if (ag_scaler_policy_check(p, NULL)) return AG_EINVAL;
    if (window_cap(p) != s->cap) {
        /* Keep the newest entries that fit. */
        ag_scaler_t tmp = *s;
        tmp.p = *p;
        if (alloc_window(&tmp)) {
            free(tmp.wt);
            free(tmp.wv);
            return AG_ENOMEM;
        }
        uint32_t keep = s->n < tmp.cap ? s->n : tmp.cap;
        for (uint32_t i = 0; i < keep; i++) {
            uint32_t from = (s->head + s->cap - keep + i) % s->cap;
            tmp.wt[i] = s->wt[from];
            tmp.wv[i] = s->wv[from];
        }
        tmp.n = keep;
        tmp.head = keep % tmp.cap;
        free(s->wt);
        free(s->wv);
        *s = tmp;
    }
    s->p = *p;
    return AG_OK;
}

static uint32_t replicas_for(const ag_scaler_policy_t *p, double load)
{
    double need = load / (p->capacity * p->target);
    double r = need > 0 ? ceil(need - 1e-9) : 0;
    if (!(r >= p->min_replicas)) r = p->min_replicas;
    if (r > p->max_replicas) r = p->max_replicas;
    return (uint32_t)r;
}

/* The largest recommendation within the window ending at t, after adding `raw` at t. */
static uint32_t stabilise(ag_scaler_t *s, int64_t t, uint32_t raw)
{
    s->wt[s->head] = t;
    s->wv[s->head] = raw;
    s->head = (s->head + 1) % s->cap;
    if (s->n < s->cap) s->n++;
    uint32_t best = raw;
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t k = (s->head + s->cap - 1 - i) % s->cap;
        if (s->wt[k] < t - s->p.stabilization_ms) break;
        if (s->wv[k] > best) best = s->wv[k];
    }
    return best;
}

int ag_scaler_step(ag_scaler_t *s, int64_t t, double load, ag_scaler_result_t *r)
{
    memset(r, 0, sizeof *r);
    r->load = r->peak = r->forecast = NAN;
    if (s->last_t != INT64_MIN && t <= s->last_t) {
        r->raw = r->desired = s->last_desired;
        return AG_ECONFLICT;
    }
    s->last_t = t;
    if (!isfinite(load)) {
        r->raw = r->desired = s->last_desired ? s->last_desired : s->p.min_replicas;
        return AG_OK;
    }
    ag_detect_result_t dr;
    ag_detect_step(s->det, t, load, &dr);
    r->load = load;
    r->score = dr.score;
    double peak = load;
    const ag_hw_t *fc = ag_detect_forecaster(s->det);
    int64_t lead = s->p.lead_ms;
    int64_t pts = lead / s->p.interval_ms;
    if (pts < 1) pts = 1;
    if (pts > PEAK_POINTS) pts = PEAK_POINTS;
    double cov = 2 * s->p.confidence - 1;
    for (int64_t j = 1; j <= pts && lead > 0; j++) {
        ag_hw_forecast_t f;
        if (ag_hw_forecast(fc, t + lead * j / pts, cov > 0 ? cov : 0.5, &f)) break;
        double b = cov > 0 ? f.upper : f.mean;
        if (b > peak) peak = b;
        if (j == pts) r->forecast = f.mean;
    }
    r->peak = peak;
    r->raw = replicas_for(&s->p, peak);
    r->desired = stabilise(s, t, r->raw);
    s->last_desired = r->desired;
    return AG_OK;
}

/* Layout: u32 magic, u8 version, u64 last_t, u32 last_desired, u32 n, n x (u64 t, u32 v) oldest
 * first, u32 detector length, the detector (ag_detect_save). */
int ag_scaler_save(const ag_scaler_t *s, ag_buf_t *out)
{
    size_t len0 = out->len;
    wr_u32(out, SC_MAGIC);
    wr_u8(out, SC_VERSION);
    wr_u64(out, (uint64_t)s->last_t);
    wr_u32(out, s->last_desired);
    wr_u32(out, s->n);
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t k = (s->head + s->cap - s->n + i) % s->cap;
        wr_u64(out, (uint64_t)s->wt[k]);
        wr_u32(out, s->wv[k]);
    }
    size_t at = out->len;
    wr_u32(out, 0);
    if (ag_detect_save(s->det, out) || !ag_buf_ok(out)) {
        out->len = len0;
        return AG_ENOMEM;
    }
    uint32_t dl = (uint32_t)(out->len - at - 4);
    for (int i = 0; i < 4; i++) out->data[at + i] = (char)(dl >> (8 * i));
    return AG_OK;
}

int ag_scaler_load(const uint8_t *d, size_t len, const ag_scaler_policy_t *p, ag_scaler_t **out,
                   ag_errmsg_t *e)
{
    *out = NULL;
    if (ag_scaler_policy_check(p, e)) return AG_EINVAL;
    rd_t r = {d, d + (d ? len : 0), d, false};
    if (rd_u32(&r) != SC_MAGIC || r.bad) return ag_errmsg_set(e, AG_ECORRUPT, 0, "not a scaler state");
    uint8_t ver = rd_u8(&r);
    if (r.bad || ver != SC_VERSION)
        return ag_errmsg_set(e, r.bad ? AG_ECORRUPT : AG_EUNSUPPORTED, 4,
                             "scaler state version %u not supported", ver);
    ag_scaler_t *s = calloc(1, sizeof *s);
    if (!s) return AG_ENOMEM;
    s->p = *p;
    if (alloc_window(s)) {
        ag_scaler_free(s);
        return AG_ENOMEM;
    }
    s->last_t = (int64_t)rd_u64(&r);
    s->last_desired = rd_u32(&r);
    uint32_t n = rd_u32(&r);
    if (r.bad || n > MAX_WINDOW || (size_t)(r.end - r.p) / 12 < n) {
        ag_scaler_free(s);
        return ag_errmsg_set(e, AG_ECORRUPT, 17, "bad stabilisation window");
    }
    for (uint32_t i = 0; i < n; i++) {
        int64_t t = (int64_t)rd_u64(&r);
        uint32_t v = rd_u32(&r);
        if (v > p->max_replicas) v = p->max_replicas;
        if (n - i <= s->cap) { /* keep the newest that fit */
            s->wt[s->head] = t;
            s->wv[s->head] = v;
            s->head = (s->head + 1) % s->cap;
            if (s->n < s->cap) s->n++;
        }
    }
    uint32_t dl = rd_u32(&r);
    if (r.bad || dl != (size_t)(r.end - r.p)) {
        ag_scaler_free(s);
        return ag_errmsg_set(e, AG_ECORRUPT, (long)(r.p - d), "bad detector length");
    }
    int rc = ag_detect_load(r.p, dl, &s->det, e);
    if (rc) {
        ag_scaler_free(s);
        return rc;
    }
    *out = s;
    return AG_OK;
}

/* ---- the reactive baseline ----------------------------------------------------------------- */

void ag_hpa_init(ag_hpa_t *h, const ag_scaler_policy_t *p, uint32_t replicas)
{
    memset(h, 0, sizeof *h);
    h->p = *p;
    h->tolerance = 0.1;
    h->replicas = replicas;
}

uint32_t ag_hpa_step(ag_hpa_t *h, int64_t t, double load, uint32_t ready)
{
    double per = h->p.capacity * h->p.target;
    uint32_t rec;
    if (!isfinite(load)) {
        rec = ready;
    } else if (ready == 0) {
        rec = replicas_for(&h->p, load);
    } else {
        double ratio = load / (ready * per);
        rec = fabs(ratio - 1) <= h->tolerance ? ready : (uint32_t)ceil(ready * ratio - 1e-9);
    }
    if (rec < h->p.min_replicas) rec = h->p.min_replicas;
    if (rec > h->p.max_replicas) rec = h->p.max_replicas;
    /* Scale-up limit of the HPA's default behaviour: at most double or +4 per period. */
    uint32_t up = ready * 2 > ready + 4 ? ready * 2 : ready + 4;
    if (ready && rec > up) rec = up;
    /* Scale-down stabilisation: the largest recommendation of the window. */
    h->rt[h->head] = t;
    h->rv[h->head] = rec;
    h->head = (h->head + 1) % 256;
    if (h->n < 256) h->n++;
    uint32_t best = rec;
    for (uint32_t i = 0; i < h->n; i++) {
        uint32_t k = (h->head + 255 - i) % 256;
        if (h->rt[k] < t - h->p.stabilization_ms) break;
        if (h->rv[k] > best) best = h->rv[k];
    }
    /* Up: the recommendation itself; down: the window's largest, never above the present. */
    uint32_t out = rec >= ready ? rec : (best < ready ? best : ready);
    h->replicas = out;
    return out;
}
