/* tiny.c - the zero-configuration detector of at most 64 bytes per series (ag_forecast.h).
 *
 * Why this shape
 * --------------
 * It has to run on every series, so it keeps no season (a season costs a bucket per step) and
 * does not need the sampling interval: everything is counted in samples. It is ag_detect's
 * scoring layer reduced to one residual against an EWMA baseline: the point test, the two level
 * CUSUMs with adoption (the baseline jumps to the new level once the shift is confirmed, so a
 * shift alarms once), the variance CUSUM and the flatline run, all in nats; the largest is
 * reported only when it exceeds the decaying peak of the current event, and mapped to a score by
 * 1 - 2^(-s / 35): a seasonless baseline meets more surprises, so its half point sits higher than
 * ag_detect's. Floats hold what needs no
 * more precision (scales and statistics); the level and the last value stay doubles so that large
 * counters keep their resolution.
 */
#include "ag_forecast.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define T_WARM 16          /* samples before scoring */
#define T_ALPHA 0.02       /* baseline gain (about 50 samples) */
#define T_SCALE_GAIN 0.01  /* scale gain (about 100 samples) */
#define T_CLIP 3.0
#define T_ZCLIP 6.0
#define T_DELTA 2.5
#define T_ADOPT 30.0
#define T_RHO 2.0
#define T_PEQ_GAIN (1.0 / 2048)
#define T_PEQ_FLOOR 1e-3
#define T_FLAT_MIN 3
#define T_PEAK_DECAY 0.99654 /* exp(-1/288) per sample */
#define T_DAMP 0.3
#define T_HALF 35.0
#define T_SMAX 1000.0
#define TINY_VERSION 1
#define T_RESET_COST 16  /* a drop in counter mode adds this to the reset meter */
#define T_RESET_LIMIT 64 /* ... which decays by one per rise: 4 drops in ~50 samples demote */

_Static_assert(sizeof(ag_tiny_t) <= 64, "ag_tiny_t must stay within 64 bytes");

void ag_tiny_init(ag_tiny_t *s)
{
    memset(s, 0, sizeof *s);
    s->p_eq = 0.5f;
}

static double clampd(double x, double lo, double hi)
{
    if (!(x >= lo)) return lo;
    return x > hi ? hi : x;
}

static double tail_nats(double x)
{
    double u = x / M_SQRT2;
    if (!(u > 0)) return 0;
    if (u < 25) {
        double q = erfc(u);
        return q > 0 ? -log(q) : T_SMAX;
    }
    return u * u + log(u * sqrt(M_PI));
}

static double tiny_core(ag_tiny_t *s, int64_t t, double v, bool repeat, double raw);

double ag_tiny_step(ag_tiny_t *s, int64_t t, double v)
{
    if (s->flags & AG_TINY_COUNTER) return ag_tiny_step_counter(s, t, v);
    if (s->n && t <= s->t_last) return 0;
    if (!isfinite(v)) {
        if (ag_forecast_is_stale(v)) s->run = 0;
        return 0;
    }
    if (!s->n) {
        if (fabs(v) > 1e300) return 0;
        s->mean = s->prev = v;
        s->t_last = t;
        s->n = 1;
        return 0;
    }
    return tiny_core(s, t, v, v == s->prev, v);
}

/* Counter mode: the per-second increase since the previous sample is scored (a drop is a reset:
 * neither scored nor learned); `prev` holds the last raw value, so a repeat is a counter that
 * did not move, and a stuck counter is a flatline. */
double ag_tiny_step_counter(ag_tiny_t *s, int64_t t, double v)
{
    if (s->flags & AG_TINY_DEMOTED) return ag_tiny_step(s, t, v);
    if (!(s->flags & AG_TINY_COUNTER)) {
        ag_tiny_init(s);
        s->flags = AG_TINY_COUNTER;
    }
    bool have = s->flags & AG_TINY_HAVE_RAW;
    if (have && t <= s->t_last) return 0;
    if (!isfinite(v)) {
        if (ag_forecast_is_stale(v)) s->run = 0;
        return 0;
    }
    if (!have || fabs(v) > 1e300) {
        if (fabs(v) > 1e300) return 0;
        s->prev = v;
        s->t_last = t;
        s->flags |= AG_TINY_HAVE_RAW;
        return 0;
    }
    /* A counter resets rarely (a restart); one that drops again and again is not a counter (a
     * gauge named like one): it goes back to value mode for good. */
    unsigned meter = s->flags >> 8;
    if (v < s->prev) {
        meter += T_RESET_COST;
        if (meter >= T_RESET_LIMIT) {
            ag_tiny_init(s);
            s->flags = AG_TINY_DEMOTED;
            return ag_tiny_step(s, t, v);
        }
        /* The rate across a reset is unknown: nothing is scored or learned from it. */
        s->flags = (uint16_t)((s->flags & 0xff) | meter << 8);
        s->prev = v;
        s->t_last = t;
        s->run = 0;
        return 0;
    }
    if (meter) meter--;
    s->flags = (uint16_t)((s->flags & 0xff) | meter << 8);
    double x = (v - s->prev) / ((double)(t - s->t_last) / 1000.0);
    if (!isfinite(x) || fabs(x) > 1e300) return 0;
    if (!s->n) {
        s->mean = x;
        s->prev = v;
        s->t_last = t;
        s->n = 1;
        return 0;
    }
    return tiny_core(s, t, x, v == s->prev, v);
}

/* Scores then learns value v at t; `repeat` says whether the raw value repeated, which is
 * stored as the new `prev`. */
static double tiny_core(ag_tiny_t *s, int64_t t, double v, bool repeat, double raw)
{
    double s_flat = 0;
    if (repeat) {
        if (s->run < UINT16_MAX) s->run++;
        if (s->run >= T_FLAT_MIN) {
            double pe = s->p_eq < T_PEQ_FLOOR ? T_PEQ_FLOOR : s->p_eq;
            s_flat = (s->run - T_FLAT_MIN + 1) * -log(pe);
        }
    } else {
        s->run = 0;
    }
    double sig = s->dev * 1.2533141373155003;
    double fl = 1e-9 * fabs(s->mean) + 1e-12;
    if (!(sig >= fl)) sig = fl;
    double r = v - s->mean;
    if (!isfinite(r)) return 0; /* opposite huge values: refuse rather than overflow */
    double z = clampd(r / sig, -1e6, 1e6);
    bool warm = s->n >= T_WARM;
    double sp = 0;
    if (warm) {
        sp = clampd(tail_nats(fabs(z)), 0, T_SMAX);
        /* A series that mostly repeats its value (a counter that rarely moves, a gauge that
         * changes now and then) has a robust scale near zero, so any change would be an extreme
         * z. Its changes are events of probability 1 - p_eq: one change is no more surprising
         * than that (a lasting shift still builds up in the CUSUMs). */
        if (!repeat && s->p_eq > 0.5f) {
            double cap = -log(1.0 - s->p_eq);
            if (sp > cap) sp = cap;
        }
        double zc = clampd(z, -T_ZCLIP, T_ZCLIP);
        s->cus_hi = (float)clampd(s->cus_hi + T_DELTA * (zc - T_DELTA / 2), 0, T_SMAX);
        s->cus_lo = (float)clampd(s->cus_lo + T_DELTA * (-zc - T_DELTA / 2), 0, T_SMAX);
        double vi = zc * zc / 2 * (1 - 1 / (T_RHO * T_RHO)) - log(T_RHO);
        s->var_cus = (float)clampd(s->var_cus + vi, 0, T_SMAX);
    }
    double sc = sp;
    if (s->cus_hi > sc) sc = s->cus_hi;
    if (s->cus_lo > sc) sc = s->cus_lo;
    if (s->var_cus > sc) sc = s->var_cus;
    if (s_flat > sc) sc = s_flat;
    sc = clampd(sc, 0, T_SMAX);
    double pk = s->peak * T_PEAK_DECAY;
    double rep = sc > pk ? sc : sc * T_DAMP;
    s->peak = (float)(sc > pk ? sc : pk);
    if (!warm && s_flat <= 0) rep = 0;
    double score = clampd(-expm1(-rep * M_LN2 / T_HALF), 0, 1);

    /* learn */
    double lim = T_CLIP * sig;
    double a = 1.0 / (s->n + 1);
    if (a < T_ALPHA) a = T_ALPHA;
    double b = 1.0 / (s->n + 1);
    if (b < T_SCALE_GAIN) b = T_SCALE_GAIN;
    double w = (warm && sp > 12.0) || s->run >= T_FLAT_MIN ? 0 : 1;
    double mean = s->mean + w * a * (warm ? clampd(r, -lim, lim) : r);
    double ad = fabs(r);
    if (warm && ad > lim) ad = lim;
    double dev = s->dev + w * b * (ad - s->dev);
    if (s->cus_hi >= T_ADOPT || s->cus_lo >= T_ADOPT) {
        mean = v; /* confirmed shift: the new level is here */
        s->cus_hi = s->cus_lo = 0;
    }
    if (s->var_cus >= T_ADOPT * 2) {
        dev = fabs(r) > dev ? fabs(r) : dev;
        s->var_cus = 0;
    }
    if (isfinite(mean) && fabs(mean) <= 1e300) s->mean = mean;
    if (isfinite(dev) && dev < 3e38) s->dev = (float)dev;
    double pg = 1.0 / ((double)s->n + 1);
    if (pg < T_PEQ_GAIN) pg = T_PEQ_GAIN;
    s->p_eq = (float)(s->p_eq + ((repeat ? 1.0 : 0.0) - s->p_eq) * pg);
    s->prev = raw;
    s->t_last = t;
    if (s->n < UINT32_MAX) s->n++;
    return score;
}

/* ---- fixed 64-byte form --------------------------------------------------------------------- */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void putd(uint8_t *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    put64(p, u);
}

static double getd(const uint8_t *p)
{
    uint64_t u = get64(p);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static void putf(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put32(p, u);
}

static float getf(const uint8_t *p)
{
    uint32_t u = get32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Layout: u8 version, u8 0, u16 run, u32 n, i64 t_last, f64 mean prev, f32 dev cus_hi cus_lo
 * var_cus peak p_eq, then zero padding to 64 bytes. */
void ag_tiny_save(const ag_tiny_t *s, uint8_t out[AG_TINY_SAVED_SIZE])
{
    memset(out, 0, AG_TINY_SAVED_SIZE);
    out[0] = TINY_VERSION;
    out[1] = (uint8_t)s->flags;
    out[56] = (uint8_t)(s->flags >> 8);
    out[2] = (uint8_t)s->run;
    out[3] = (uint8_t)(s->run >> 8);
    put32(out + 4, s->n);
    put64(out + 8, (uint64_t)s->t_last);
    putd(out + 16, s->mean);
    putd(out + 24, s->prev);
    putf(out + 32, s->dev);
    putf(out + 36, s->cus_hi);
    putf(out + 40, s->cus_lo);
    putf(out + 44, s->var_cus);
    putf(out + 48, s->peak);
    putf(out + 52, s->p_eq);
}

static bool in(double x, double lo, double hi) { return x >= lo && x <= hi; }

int ag_tiny_load(const uint8_t *d, size_t len, ag_tiny_t *s)
{
    if (!d || len != AG_TINY_SAVED_SIZE) return AG_ECORRUPT;
    if (d[0] != TINY_VERSION) return d[0] > TINY_VERSION ? AG_EUNSUPPORTED : AG_ECORRUPT;
    if (d[1] & ~(AG_TINY_COUNTER | AG_TINY_HAVE_RAW | AG_TINY_DEMOTED) || d[56] >= T_RESET_LIMIT ||
        (d[1] & AG_TINY_COUNTER && d[1] & AG_TINY_DEMOTED))
        return AG_ECORRUPT;
    for (size_t i = 57; i < AG_TINY_SAVED_SIZE; i++)
        if (d[i]) return AG_ECORRUPT;
    ag_tiny_t t;
    memset(&t, 0, sizeof t);
    t.flags = (uint16_t)(d[1] | d[56] << 8);
    t.run = (uint16_t)(d[2] | d[3] << 8);
    t.n = get32(d + 4);
    t.t_last = (int64_t)get64(d + 8);
    t.mean = getd(d + 16);
    t.prev = getd(d + 24);
    t.dev = getf(d + 32);
    t.cus_hi = getf(d + 36);
    t.cus_lo = getf(d + 40);
    t.var_cus = getf(d + 44);
    t.peak = getf(d + 48);
    t.p_eq = getf(d + 52);
    if (!in(t.mean, -1e300, 1e300) || !in(t.prev, -DBL_MAX, DBL_MAX) || !in(t.dev, 0, 3e38) ||
        !in(t.cus_hi, 0, T_SMAX) || !in(t.cus_lo, 0, T_SMAX) || !in(t.var_cus, 0, T_SMAX) ||
        !in(t.peak, 0, T_SMAX) || !in(t.p_eq, 0, 1) ||
        (t.n == 0 && !(t.flags & AG_TINY_HAVE_RAW) && (t.run || t.t_last)) ||
        ((t.flags & AG_TINY_HAVE_RAW) && !(t.flags & AG_TINY_COUNTER)))
        return AG_ECORRUPT;
    *s = t;
    return AG_OK;
}
