/* scalers.c - the scaler policies configured under `scalers:`, run by the forecasting service's
 * thread (models.c) next to the models.
 *
 * A policy evaluates its load expression every `interval` at interval-aligned times (its
 * series summed into one load; no series = no data), feeds ag_scaler (ag_scaler.h) and writes
 *     augur_scaler_desired_replicas{scaler="<name>"}   what the target should run now
 *     augur_scaler_forecast_peak{scaler="<name>"}      the bound over the lead time it used
 *     augur_scaler_load{scaler="<name>"}               the load it saw
 * with its saved state in the same write (record "scaler:<name>"), like a model: a new policy
 * replays `warmup` of history, a restarted one catches up what it missed. The latest result of
 * each policy is published (under the service lock) for GET /api/v1/scalers, and a change of the
 * desired count (or the heartbeat) is handed to the webhook sender (webhooks.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_eval.h"
#include "ag_log.h"
#include "ag_time.h"
#include "forecast_int.h"
#include "service_int.h"

#define SC_WINDOW_STEPS 1440
#define SC_REC_VERSION 1

struct scaler_rt {
    ag_scaler_def_t *def; /* owned copy (one entry) */
    ag_pq_node_t *ast;
    ag_scaler_t *sc;
    uint64_t fp;
    int64_t last_eval; /* INT64_MIN: never */
    char key[80];      /* "scaler:<name>" */
    char src[80];      /* label encoding scaler\0<name>\0 */
    size_t src_len;
};

static uint64_t sc_fingerprint(const ag_scaler_def_t *d)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = d->load; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    const unsigned char *q = (const unsigned char *)&d->interval_ms;
    for (size_t i = 0; i < sizeof d->interval_ms; i++) h = (h ^ q[i]) * 0x100000001b3ULL;
    return h;
}

static void policy_of(const ag_scaler_def_t *d, ag_scaler_policy_t *p)
{
    ag_scaler_policy_default(p);
    p->capacity = d->capacity;
    p->target = d->target;
    p->confidence = d->confidence;
    p->lead_ms = d->lead_ms;
    p->interval_ms = d->interval_ms;
    p->stabilization_ms = d->stabilization_ms;
    p->min_replicas = d->min_replicas;
    p->max_replicas = d->max_replicas;
}

void scaler_rt_free(scaler_rt_t *r)
{
    if (!r) return;
    ag_scaler_free(r->sc);
    ag_promql_free(r->ast);
    ag_scaler_defs_free(r->def, 1);
    free(r);
}

typedef struct {
    scaler_rt_t *r;
    const ag_scaler_policy_t *p;
} sc_load_t;

static int sc_load_rec(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    sc_load_t *l = ctx;
    const unsigned char *v = val;
    if (klen != strlen(l->r->key)) return AG_OK; /* a longer name with the same prefix */
    rd_t rd = {v + 1, v + vlen, v, false};
    if (vlen < 17 || v[0] != SC_REC_VERSION || rd_u64(&rd) != l->r->fp) return AG_OK;
    int64_t last_eval = (int64_t)rd_u64(&rd);
    ag_scaler_t *sc = NULL;
    ag_errmsg_t e = {{0}, -1};
    if (ag_scaler_load(v + 17, vlen - 17, l->p, &sc, &e)) {
        AG_WARN("\"saved scaler state unreadable, it starts again\" scaler=%s err=\"%s\"",
                l->r->def->name, e.msg);
        return AG_OK;
    }
    ag_scaler_free(l->r->sc);
    l->r->sc = sc;
    l->r->last_eval = last_eval;
    return AG_OK;
}

static scaler_rt_t *scaler_rt_new(ag_models_t *m, const ag_scaler_def_t *d)
{
    scaler_rt_t *r = calloc(1, sizeof *r);
    if (!r || ag_scaler_defs_copy(d, 1, &r->def)) {
        free(r);
        return NULL;
    }
    ag_errmsg_t e = {{0}, -1};
    ag_scaler_policy_t p;
    policy_of(d, &p);
    if (ag_promql_parse(d->load, strlen(d->load), &r->ast, &e) || ag_scaler_new(&p, NULL, &r->sc)) {
        scaler_rt_free(r);
        return NULL;
    }
    r->fp = sc_fingerprint(d);
    r->last_eval = INT64_MIN;
    snprintf(r->key, sizeof r->key, "scaler:%s", d->name);
    int n = snprintf(r->src, sizeof r->src, "scaler%c%s", 0, d->name);
    r->src_len = (size_t)n + 1;
    sc_load_t l = {r, &p};
    int rc = ag_store_blobs(m->store, r->key, strlen(r->key), sc_load_rec, &l);
    if (rc) AG_WARN("\"cannot read saved scaler state\" scaler=%s err=\"%s\"", d->name,
                    ag_strerror(rc));
    AG_INFO("\"scaler loaded\" scaler=%s resumed=%s", d->name,
            r->last_eval != INT64_MIN ? "true" : "false");
    return r;
}

void scalers_apply(ag_models_t *m, const ag_config_t *c)
{
    scaler_rt_t **ns = calloc(c->nscalers ? c->nscalers : 1, sizeof *ns);
    if (!ns) {
        AG_ERROR("\"out of memory applying scalers; the old ones stay\"");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < c->nscalers; i++) {
        const ag_scaler_def_t *d = &c->scalers[i];
        scaler_rt_t *keep = NULL;
        for (size_t j = 0; j < m->nscalers; j++) {
            scaler_rt_t *old = m->scalers[j];
            if (old && !strcmp(old->def->name, d->name) && old->fp == sc_fingerprint(d)) {
                keep = old;
                m->scalers[j] = NULL;
                break;
            }
        }
        ag_scaler_def_t *nd = NULL;
        ag_scaler_policy_t p;
        policy_of(d, &p);
        if (keep && !ag_scaler_defs_copy(d, 1, &nd) && !ag_scaler_set_policy(keep->sc, &p)) {
            ag_scaler_defs_free(keep->def, 1);
            keep->def = nd;
            ns[n++] = keep;
            continue;
        }
        ag_scaler_defs_free(nd, 1);
        scaler_rt_free(keep);
        if ((ns[n] = scaler_rt_new(m, d))) n++;
        else AG_ERROR("\"cannot start scaler\" scaler=%s", d->name);
    }
    for (size_t j = 0; j < m->nscalers; j++) scaler_rt_free(m->scalers[j]);
    free(m->scalers);
    m->scalers = ns;
    m->nscalers = n;
    /* The published snapshot follows the configured list. */
    pthread_mutex_lock(&m->lock);
    scaler_snap_t *snap = calloc(n ? n : 1, sizeof *snap);
    if (snap) {
        for (size_t i = 0; i < n; i++) {
            const ag_scaler_def_t *d = ns[i]->def;
            snprintf(snap[i].name, sizeof snap[i].name, "%s", d->name);
            snap[i].desired = d->min_replicas;
            snap[i].min = d->min_replicas;
            snap[i].max = d->max_replicas;
            snap[i].lead_ms = d->lead_ms;
            snap[i].load = snap[i].peak = snap[i].forecast = NAN;
            for (size_t k = 0; k < m->nsnap; k++)
                if (!strcmp(m->snap[k].name, d->name) && m->snap[k].t) {
                    snap[i] = m->snap[k];
                    snap[i].min = d->min_replicas;
                    snap[i].max = d->max_replicas;
                    snap[i].lead_ms = d->lead_ms;
                }
        }
        free(m->snap);
        m->snap = snap;
        m->nsnap = n;
    }
    pthread_mutex_unlock(&m->lock);
}

void scalers_free(ag_models_t *m)
{
    for (size_t j = 0; j < m->nscalers; j++) scaler_rt_free(m->scalers[j]);
    free(m->scalers);
    m->scalers = NULL;
    m->nscalers = 0;
    free(m->snap);
    m->snap = NULL;
    m->nsnap = 0;
}

int64_t scaler_due(const scaler_rt_t *r, int64_t now)
{
    return r->last_eval == INT64_MIN ? now : r->last_eval + r->def->interval_ms;
}

static int64_t floor_to(int64_t t, int64_t step)
{
    int64_t q = t / step;
    if (t % step < 0) q--;
    return q * step;
}

static void publish(ag_models_t *m, scaler_rt_t *r, int64_t t, const ag_scaler_result_t *res)
{
    pthread_mutex_lock(&m->lock);
    for (size_t k = 0; k < m->nsnap; k++) {
        if (strcmp(m->snap[k].name, r->def->name) != 0) continue;
        scaler_snap_t *s = &m->snap[k];
        s->t = t;
        s->desired = res->desired;
        s->raw = res->raw;
        s->load = res->load;
        s->peak = res->peak;
        s->forecast = res->forecast;
        s->score = res->score;
    }
    pthread_mutex_unlock(&m->lock);
}

bool scaler_run(ag_models_t *m, scaler_rt_t *r, int64_t now)
{
    const ag_scaler_def_t *d = r->def;
    int64_t step = d->interval_ms;
    int64_t end = floor_to(now, step);
    int64_t start = r->last_eval == INT64_MIN ? end - d->warmup_ms : r->last_eval + step;
    int64_t oldest = end - (d->warmup_ms > step ? d->warmup_ms : step);
    if (start < oldest) start = oldest;
    int64_t horizon = ag_store_raw_horizon(m->store);
    if (horizon != INT64_MIN && start < horizon) start = horizon;
    start = floor_to(start + step - 1, step);
    if (start > end) return false;
    ag_buf_t v = AG_BUF_INIT;
    ag_scaler_result_t res = {0};
    int64_t res_t = INT64_MIN;
    while (start <= end && !service_stopping(m)) {
        int64_t wend = start + (SC_WINDOW_STEPS - 1) * step;
        if (wend > end) wend = end;
        ag_eval_opts_t o;
        memset(&o, 0, sizeof o);
        o.lookback_ms = 5 * 60 * 1000;
        o.timeout_ms = 60 * 1000;
        o.max_samples = 50000000;
        ag_value_t val = {0};
        ag_errmsg_t e = {{0}, -1};
        int rc = ag_eval_range(m->store, r->ast, start, wend, step, &o, &val, &e);
        if (rc) {
            atomic_fetch_add(&m->st_fail, 1);
            AG_WARN("\"scaler load evaluation failed\" scaler=%s err=\"%s\"", d->name, e.msg);
        }
        size_t nsteps = (size_t)((wend - start) / step) + 1;
        double *sum = calloc(nsteps, sizeof *sum);
        bool *have = calloc(nsteps, sizeof *have);
        batch_t b = {0};
        long od = batch_series(&b, "augur_scaler_desired_replicas", NULL, r->src, r->src_len);
        long op = batch_series(&b, "augur_scaler_forecast_peak", NULL, r->src, r->src_len);
        long ol = batch_series(&b, "augur_scaler_load", NULL, r->src, r->src_len);
        if (!sum || !have) b.oom = true;
        for (size_t i = 0; !rc && sum && have && i < val.n; i++) {
            for (size_t k = 0; k < val.series[i].n; k++) {
                int64_t t = val.series[i].points[k].t;
                if (t < start || t > wend || (t - start) % step) continue;
                size_t idx = (size_t)((t - start) / step);
                sum[idx] += val.series[i].points[k].v;
                have[idx] = true;
            }
        }
        for (size_t i = 0; sum && have && i < nsteps; i++) {
            int64_t t = start + (int64_t)i * step;
            if (ag_scaler_step(r->sc, t, have[i] ? sum[i] : NAN, &res)) continue;
            res_t = t;
            batch_sample(&b, od, t, res.desired);
            if (isfinite(res.load)) {
                batch_sample(&b, op, t, res.peak);
                batch_sample(&b, ol, t, res.load);
            }
        }
        free(sum);
        free(have);
        ag_value_free(&val);
        r->last_eval = wend;
        ag_buf_reset(&v);
        unsigned char ver = SC_REC_VERSION;
        ag_buf_append(&v, &ver, 1);
        wr_u64(&v, r->fp);
        wr_u64(&v, (uint64_t)r->last_eval);
        if (ag_scaler_save(r->sc, &v) || !ag_buf_ok(&v)) b.oom = true;
        else batch_blob(&b, r->key, strlen(r->key), v.data, v.len);
        uint64_t written = 0;
        ag_errmsg_t we = {{0}, -1};
        int wrc = batch_write(m->store, &b, &written, &we);
        atomic_fetch_add(&m->st_out, written);
        atomic_fetch_add(&m->st_runs, (uint64_t)nsteps);
        if (wrc && wrc != AG_ESHUTDOWN) {
            atomic_fetch_add(&m->st_wfail, 1);
            AG_WARN("\"cannot write scaler outputs\" scaler=%s err=\"%s\"", d->name, we.msg);
        }
        start = wend + step;
    }
    ag_buf_free(&v);
    if (res_t != INT64_MIN) {
        publish(m, r, res_t, &res);
        webhooks_signal(m, r->def, res_t, &res);
    }
    return true;
}

/* ---- GET /api/v1/scalers --------------------------------------------------------------------- */

static void snap_json(const scaler_snap_t *s, webhooks_t *w, ag_buf_t *o)
{
    ag_buf_puts(o, "{\"name\":");
    ag_buf_json_str(o, s->name, strlen(s->name));
    ag_buf_printf(o, ",\"desired_replicas\":%u,\"recommended_replicas\":%u", s->desired,
                  s->t ? s->raw : s->desired);
    const struct {
        const char *k;
        double v;
    } nums[] = {{"current_load", s->load}, {"forecast_peak", s->peak},
                {"forecast", s->forecast}, {"anomaly_score", s->score}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        ag_buf_printf(o, ",\"%s\":", nums[i].k);
        if (s->t && isfinite(nums[i].v)) ag_buf_float(o, nums[i].v);
        else ag_buf_puts(o, "null");
    }
    ag_buf_printf(o, ",\"lead_time_seconds\":%.3f,\"min_replicas\":%u,\"max_replicas\":%u",
                  (double)s->lead_ms / 1000.0, s->min, s->max);
    if (s->t) {
        char ts[40];
        ag_rfc3339(s->t, ts, sizeof ts);
        ag_buf_printf(o, ",\"generated_at\":\"%s\",\"timestamp\":", ts);
        ag_buf_ts_seconds(o, s->t);
        ag_buf_puts(o, ",\"ready\":true");
    } else {
        ag_buf_puts(o, ",\"generated_at\":null,\"timestamp\":null,\"ready\":false");
    }
    ag_buf_puts(o, ",\"deliveries\":");
    webhooks_recent_json(w, s->name, 10, o);
    ag_buf_putc(o, '}');
}

int ag_models_scalers_json(ag_models_t *m, const char *name, ag_buf_t *out)
{
    int rc = AG_OK;
    pthread_mutex_lock(&m->lock);
    if (name) {
        rc = AG_ENOTFOUND;
        for (size_t i = 0; i < m->nsnap; i++)
            if (!strcmp(m->snap[i].name, name)) {
                snap_json(&m->snap[i], m->hooks, out);
                rc = AG_OK;
            }
    } else {
        ag_buf_puts(out, "{\"scalers\":[");
        for (size_t i = 0; i < m->nsnap; i++) {
            if (i) ag_buf_putc(out, ',');
            snap_json(&m->snap[i], m->hooks, out);
        }
        ag_buf_puts(out, "]}");
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}
