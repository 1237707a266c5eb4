/* fit.c - fitting the Holt-Winters smoothing constants with GSL (contract: ag_forecast.h).
 *
 * Nelder-Mead (gsl_multimin_fminimizer_nmsimplex2) over the five constants, each mapped from an
 * unconstrained coordinate through a logistic so the simplex can roam freely while the model
 * always sees values in (0, 1). The objective is the mean squared one-step residual of a fresh
 * model replayed over the history, standardised by the model's own robust scale and clipped at
 * the Huber limit, so the anomalies inside the history do not decide the fit. The first day
 * (or 10% of the samples) is warm-up and not scored. The replay is O(n) per evaluation and the
 * search is capped at FIT_MAX_ITER iterations, so a fit of two weeks of 5-minute samples costs
 * well under a second - meant for a background thread on a copy of the history.
 *
 * Kept in its own object file so that only programs that fit link GSL.
 */
#include "ag_forecast.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_multimin.h>
#include <gsl/gsl_vector.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forecast_int.h"

#define FIT_MAX_ITER 200
#define FIT_DIM 5

typedef struct {
    const ag_hw_config_t *c;
    const int64_t *t;
    const double *v;
    size_t n, warm;
} fit_ctx_t;

static double to_unit(double x) { return 1.0 / (1.0 + exp(-x)); }

static double from_unit(double p)
{
    if (p < 1e-4) p = 1e-4;
    if (p > 1 - 1e-4) p = 1 - 1e-4;
    return log(p / (1 - p));
}

static void unpack(const gsl_vector *x, ag_hw_params_t *p)
{
    p->alpha = to_unit(gsl_vector_get(x, 0));
    p->beta = to_unit(gsl_vector_get(x, 1));
    p->phi = 0.8 + 0.2 * to_unit(gsl_vector_get(x, 2)); /* damping in (0.8, 1) */
    p->gamma_day = to_unit(gsl_vector_get(x, 3));
    p->gamma_week = to_unit(gsl_vector_get(x, 4));
}

static double objective(const gsl_vector *x, void *arg)
{
    const fit_ctx_t *f = arg;
    ag_hw_config_t c = *f->c;
    unpack(x, &c.p);
    ag_hw_t *m;
    if (ag_hw_new(&c, &m)) return GSL_POSINF;
    double sum = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < f->n; i++) {
        double sig = m->n ? hw_sigma(m) : 0, r;
        if (ag_hw_update(m, f->t[i], f->v[i], 1.0, &r)) continue;
        if (i < f->warm || m->nscale < HW_WARM_CLIP) continue;
        double z = r / sig;
        if (!(z < AG_HW_CLIP)) z = AG_HW_CLIP;
        if (!(z > -AG_HW_CLIP)) z = -AG_HW_CLIP;
        /* squared error in data units, clipped at the Huber limit */
        sum += z * z * sig * sig;
        cnt++;
    }
    ag_hw_free(m);
    return cnt ? sum / (double)cnt : GSL_POSINF;
}

int ag_hw_fit(const ag_hw_config_t *c, const int64_t *t, const double *v, size_t n,
              ag_hw_params_t *p)
{
    if (!c || !t || !v || !p || n < 16 || ag_hw_config_check(c, NULL)) return AG_EINVAL;
    size_t warm = (size_t)(AG_HW_DAY_MS / c->step_ms);
    if (warm > n / 10) warm = n / 10;
    fit_ctx_t ctx = {c, t, v, n, warm};
    gsl_set_error_handler_off();
    gsl_multimin_function fn = {objective, FIT_DIM, &ctx};
    gsl_vector *x = gsl_vector_alloc(FIT_DIM), *ss = gsl_vector_alloc(FIT_DIM);
    gsl_multimin_fminimizer *s = gsl_multimin_fminimizer_alloc(gsl_multimin_fminimizer_nmsimplex2, FIT_DIM);
    int rc = AG_OK;
    if (!x || !ss || !s) {
        rc = AG_ENOMEM;
        goto out;
    }
    gsl_vector_set(x, 0, from_unit(c->p.alpha));
    gsl_vector_set(x, 1, from_unit(c->p.beta));
    gsl_vector_set(x, 2, from_unit((c->p.phi - 0.8) / 0.2));
    gsl_vector_set(x, 3, from_unit(c->p.gamma_day));
    gsl_vector_set(x, 4, from_unit(c->p.gamma_week));
    gsl_vector_set_all(ss, 1.0);
    if (gsl_multimin_fminimizer_set(s, &fn, x, ss)) {
        rc = AG_EINVAL;
        goto out;
    }
    for (int it = 0; it < FIT_MAX_ITER; it++) {
        if (gsl_multimin_fminimizer_iterate(s)) break;
        if (gsl_multimin_test_size(gsl_multimin_fminimizer_size(s), 1e-3) == GSL_SUCCESS) break;
    }
    if (!isfinite(gsl_multimin_fminimizer_minimum(s))) {
        *p = c->p;
    } else {
        unpack(gsl_multimin_fminimizer_x(s), p);
    }
out:
    if (s) gsl_multimin_fminimizer_free(s);
    if (x) gsl_vector_free(x);
    if (ss) gsl_vector_free(ss);
    return rc;
}
