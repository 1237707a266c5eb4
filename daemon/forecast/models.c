/* models.c - the forecasting service's thread and the models configured under `models:` (see
 * ag_models.h for what they write).
 *
 * One thread does everything that is not on the ingest path: it writes the zero-config scores
 * the committer handed over (auto.c), evaluates each model when its next step is due, and
 * refits smoothing constants one series at a time in between, so no evaluation waits for more
 * than one fit. A model evaluation is a range query from the step after the last one evaluated
 * up to the newest step-aligned time (one point normally; many after a restart or on first
 * start, at most `warmup` back and never before the raw retention), processed in windows of
 * at most WINDOW_STEPS steps. Each window's outputs and the updated state of every series it
 * touched go into one ag_store_write, so saved state never runs ahead of, nor behind, the
 * outputs in the store.
 *
 * State records (ag_store_blobs), per model <name>:
 *   "<name>\0"                 -> ver, fingerprint, last evaluated time, last refit time
 *   "<name>\0" + label hash    -> ver, fingerprint, last seen time, labels, ag_detect_save bytes
 * The fingerprint hashes what the state depends on (expression, step, seasons, scale); a model
 * whose fingerprint changed starts again from nothing and its old records are deleted.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ag_eval.h"
#include "ag_log.h"
#include "ag_time.h"
#include "forecast_int.h"
#include "service_int.h"

#define WINDOW_STEPS 1440
#define FORGET_MS (24 * 3600 * 1000LL) /* a series absent this long is forgotten */
#define FIT_WINDOW_MAX_MS (14 * 86400000LL)
#define REC_VERSION 1

typedef struct mser {
    char *labels; /* owned result labels */
    size_t len;
    uint64_t hash;
    ag_detect_t *det;
    int64_t last_seen; /* last evaluation time it was in the result */
    bool stale;        /* stale markers written since it left */
    bool touched;      /* state changed in the current window */
} mser_t;

struct model {
    ag_model_def_t def; /* owned strings */
    ag_pq_node_t *ast;
    uint64_t fp;
    int64_t last_eval; /* INT64_MIN: never */
    int64_t last_fit;  /* wall ms of the last refit round; INT64_MIN: never */
    mser_t **ser;
    size_t nser, cap;
    bool purge;        /* stored records are another fingerprint's: delete them first */
    /* A refit round: the history of every series, fitted one per loop pass. */
    ag_value_t fit_hist;
    size_t fit_next;
    bool fitting;
};

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t fingerprint(const ag_model_def_t *d)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, d->expr, strlen(d->expr) + 1);
    h = fnv(h, &d->step_ms, sizeof d->step_ms);
    unsigned char f[3] = {d->season_day, d->season_week, d->log_scale};
    return fnv(h, f, sizeof f);
}

void ag_models_detect_config(const ag_model_def_t *def, ag_detect_config_t *c)
{
    ag_detect_config_default(c, def->step_ms);
    if (!def->season_day) c->hw.day_buckets = c->fc.day_buckets = 0;
    if (!def->season_week) c->hw.week_buckets = c->fc.week_buckets = 0;
    c->hw.log_scale = c->fc.log_scale = def->log_scale;
    c->threshold = 1 - def->sensitivity;
}

static int64_t floor_step(int64_t t, int64_t step)
{
    int64_t q = t / step;
    if (t % step < 0) q--;
    return q * step;
}

static void ser_free(mser_t *s)
{
    if (!s) return;
    ag_detect_free(s->det);
    free(s->labels);
    free(s);
}

static void model_free(model_t *md)
{
    if (!md) return;
    for (size_t i = 0; i < md->nser; i++) ser_free(md->ser[i]);
    free(md->ser);
    ag_value_free(&md->fit_hist);
    ag_promql_free(md->ast);
    free(md->def.name);
    free(md->def.expr);
    free(md);
}

static mser_t *ser_find(model_t *md, const char *labels, size_t len)
{
    /* Models have tens to hundreds of series: a linear scan on the hash is cheap enough. */
    uint64_t h = ag_labels_hash(labels, len);
    for (size_t i = 0; i < md->nser; i++)
        if (md->ser[i]->hash == h && md->ser[i]->len == len &&
            memcmp(md->ser[i]->labels, labels, len) == 0)
            return md->ser[i];
    return NULL;
}

static mser_t *ser_add(model_t *md, const char *labels, size_t len, ag_detect_t *det)
{
    if (md->nser == md->cap) {
        size_t nc = md->cap ? md->cap * 2 : 16;
        mser_t **ns = realloc(md->ser, nc * sizeof *ns);
        if (!ns) return NULL;
        md->ser = ns;
        md->cap = nc;
    }
    mser_t *s = calloc(1, sizeof *s);
    if (!s || !(s->labels = malloc(len ? len : 1))) {
        free(s);
        return NULL;
    }
    memcpy(s->labels, labels, len);
    s->len = len;
    s->hash = ag_labels_hash(labels, len);
    s->det = det;
    s->last_seen = INT64_MIN;
    md->ser[md->nser++] = s;
    return s;
}

static void ser_key(const model_t *md, const mser_t *s, ag_buf_t *k)
{
    ag_buf_reset(k);
    ag_buf_append(k, md->def.name, strlen(md->def.name) + 1);
    ag_buf_put_u64be(k, s->hash);
}

/* ---- loading saved state ------------------------------------------------------------------ */

typedef struct {
    model_t *md;
    bool header_ok;
} load_ctx_t;

static int load_rec(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    load_ctx_t *lc = ctx;
    model_t *md = lc->md;
    size_t nl = strlen(md->def.name) + 1;
    const unsigned char *v = val;
    if (klen == nl) { /* the model's own record */
        rd_t r = {v + 1, v + vlen, v, false};
        if (vlen == 25 && v[0] == REC_VERSION && rd_u64(&r) == md->fp) {
            md->last_eval = (int64_t)rd_u64(&r);
            md->last_fit = (int64_t)rd_u64(&r);
            lc->header_ok = true;
        } else {
            md->purge = true;
        }
        return AG_OK;
    }
    if (klen != nl + 8) return AG_OK;
    rd_t r = {v + 1, v + vlen, v, false};
    if (vlen < 21 || v[0] != REC_VERSION || rd_u64(&r) != md->fp) {
        md->purge = true;
        return AG_OK;
    }
    int64_t last_seen = (int64_t)rd_u64(&r);
    uint32_t ll = rd_u32(&r);
    if (ll > vlen - 21) return AG_OK;
    ag_errmsg_t e = {{0}, -1};
    ag_detect_t *det = NULL;
    if (ag_detect_load(v + 21 + ll, vlen - 21 - ll, &det, &e)) {
        AG_WARN("\"saved model state unreadable, that series starts again\" model=%s err=\"%s\"",
                md->def.name, e.msg);
        return AG_OK;
    }
    mser_t *s = ser_add(md, (const char *)v + 21, ll, det);
    if (!s) {
        ag_detect_free(det);
        return AG_ENOMEM;
    }
    s->last_seen = last_seen;
    return AG_OK;
}

static model_t *model_new(ag_models_t *m, const ag_model_def_t *def)
{
    model_t *md = calloc(1, sizeof *md);
    if (!md) return NULL;
    md->def = *def;
    md->def.name = strdup(def->name);
    md->def.expr = strdup(def->expr);
    md->last_eval = md->last_fit = INT64_MIN;
    ag_errmsg_t e = {{0}, -1};
    if (!md->def.name || !md->def.expr ||
        ag_promql_parse(md->def.expr, strlen(md->def.expr), &md->ast, &e)) {
        model_free(md);
        return NULL;
    }
    md->fp = fingerprint(&md->def);
    load_ctx_t lc = {md, false};
    int rc = ag_store_blobs(m->store, md->def.name, strlen(md->def.name) + 1, load_rec, &lc);
    if (rc) AG_WARN("\"cannot read saved model state\" model=%s err=\"%s\"", md->def.name,
                    ag_strerror(rc));
    if (rc || md->purge || !lc.header_ok) {
        /* Nothing usable (or another configuration's state): start from nothing. */
        for (size_t i = 0; i < md->nser; i++) ser_free(md->ser[i]);
        md->nser = 0;
        md->last_eval = md->last_fit = INT64_MIN;
        md->purge = true;
    }
    AG_INFO("\"model loaded\" model=%s series=%zu resumed=%s", md->def.name, md->nser,
            md->last_eval != INT64_MIN ? "true" : "false");
    return md;
}

/* ---- evaluation --------------------------------------------------------------------------- */

/* Deletes every stored record of the model (a changed configuration's leftovers). */
typedef struct {
    batch_t *b;
} purge_ctx_t;

static int purge_rec(void *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    purge_ctx_t *pc = ctx;
    batch_blob_del(pc->b, key, klen);
    return AG_OK;
}

static void save_model(model_t *md, batch_t *b, ag_buf_t *k, ag_buf_t *v)
{
    for (size_t i = 0; i < md->nser; i++) {
        mser_t *s = md->ser[i];
        if (!s->touched) continue;
        s->touched = false;
        ser_key(md, s, k);
        ag_buf_reset(v);
        unsigned char ver = REC_VERSION;
        ag_buf_append(v, &ver, 1);
        wr_u64(v, md->fp);
        wr_u64(v, (uint64_t)s->last_seen);
        wr_u32(v, (uint32_t)s->len);
        ag_buf_append(v, s->labels, s->len);
        ag_detect_save(s->det, v);
        if (ag_buf_ok(k) && ag_buf_ok(v)) batch_blob(b, k->data, k->len, v->data, v->len);
        else b->oom = true;
    }
    ag_buf_reset(v);
    unsigned char ver = REC_VERSION;
    ag_buf_append(v, &ver, 1);
    wr_u64(v, md->fp);
    wr_u64(v, (uint64_t)md->last_eval);
    wr_u64(v, (uint64_t)md->last_fit);
    if (ag_buf_ok(v)) batch_blob(b, md->def.name, strlen(md->def.name) + 1, v->data, v->len);
    else b->oom = true;
}

/* Feeds one result series' points to its detector and adds the outputs. */
static int feed_series(ag_models_t *m, model_t *md, const ag_series_val_t *sv, batch_t *b)
{
    mser_t *s = ser_find(md, sv->labels, sv->labels_len);
    if (!s) {
        ag_detect_config_t dc;
        ag_models_detect_config(&md->def, &dc);
        ag_detect_t *det = NULL;
        int rc = ag_detect_new(&dc, &det);
        if (rc) return rc;
        if (!(s = ser_add(md, sv->labels, sv->labels_len, det))) {
            ag_detect_free(det);
            return AG_ENOMEM;
        }
    }
    const char *name = md->def.name;
    long o[5];
    o[0] = batch_series(b, OUT_FORECAST, name, s->labels, s->len);
    o[1] = batch_series(b, OUT_LOWER, name, s->labels, s->len);
    o[2] = batch_series(b, OUT_UPPER, name, s->labels, s->len);
    o[3] = batch_series(b, OUT_SCORE, name, s->labels, s->len);
    o[4] = batch_series(b, OUT_ANOMALY, name, s->labels, s->len);
    double thr = 1 - md->def.sensitivity;
    uint64_t alarms = 0;
    for (size_t i = 0; i < sv->n; i++) {
        int64_t t = sv->points[i].t;
        if (t <= s->last_seen && s->last_seen != INT64_MIN) continue;
        ag_detect_result_t r;
        ag_detect_step(s->det, t, sv->points[i].v, &r);
        s->last_seen = t;
        s->stale = false;
        s->touched = true;
        ag_hw_forecast_t fc;
        if (ag_hw_forecast(ag_detect_forecaster(s->det), t + md->def.horizon_ms, md->def.coverage,
                           &fc) == AG_OK) {
            batch_sample(b, o[0], t, fc.mean);
            batch_sample(b, o[1], t, fc.lower);
            batch_sample(b, o[2], t, fc.upper);
        }
        batch_sample(b, o[3], t, r.score);
        bool alarm = r.score >= thr;
        batch_sample(b, o[4], t, alarm ? 1.0 : 0.0);
        alarms += alarm;
    }
    atomic_fetch_add(&m->st_anom, alarms);
    return AG_OK;
}

/* Stale markers for series that left the result by `end`; forgets long-gone ones. */
static void stale_series(model_t *md, int64_t end, batch_t *b)
{
    double stale;
    uint64_t bits = AG_STALE_NAN_BITS;
    memcpy(&stale, &bits, sizeof stale);
    for (size_t i = 0; i < md->nser; i++) {
        mser_t *s = md->ser[i];
        if (s->last_seen == INT64_MIN || s->last_seen >= end) continue;
        if (!s->stale && s->last_seen + md->def.step_ms <= end) {
            const char *names[5] = {OUT_FORECAST, OUT_LOWER, OUT_UPPER, OUT_SCORE, OUT_ANOMALY};
            for (int k = 0; k < 5; k++) {
                long idx = batch_series(b, names[k], md->def.name, s->labels, s->len);
                batch_sample(b, idx, s->last_seen + md->def.step_ms, stale);
            }
            s->stale = true;
        }
        if (end - s->last_seen > FORGET_MS) {
            ag_buf_t k = AG_BUF_INIT;
            ser_key(md, s, &k);
            if (ag_buf_ok(&k)) batch_blob_del(b, k.data, k.len);
            ag_buf_free(&k);
            ser_free(s);
            md->ser[i--] = md->ser[--md->nser];
        }
    }
}

static void eval_opts(ag_eval_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->lookback_ms = 5 * 60 * 1000;
    o->timeout_ms = 60 * 1000;
    o->max_samples = 50000000;
}

bool service_stopping(ag_models_t *m)
{
    pthread_mutex_lock(&m->lock);
    bool st = m->stop;
    pthread_mutex_unlock(&m->lock);
    return st;
}

/* Evaluates the model from its next step up to `now` (a long catch-up stops early, between two
 * windows, when the service is stopping); returns true when it did work. */
static bool run_model(ag_models_t *m, model_t *md, int64_t now)
{
    int64_t step = md->def.step_ms;
    int64_t end = floor_step(now, step);
    int64_t start = md->last_eval == INT64_MIN ? end - md->def.warmup_ms : md->last_eval + step;
    int64_t oldest = end - (md->def.warmup_ms > step ? md->def.warmup_ms : step);
    if (start < oldest) start = oldest;
    int64_t horizon = ag_store_raw_horizon(m->store);
    if (horizon != INT64_MIN && start < horizon) start = horizon;
    start = floor_step(start + step - 1, step);
    if (start > end) return false;
    ag_buf_t k = AG_BUF_INIT, v = AG_BUF_INIT;
    while (start <= end && !service_stopping(m)) {
        int64_t wend = start + (WINDOW_STEPS - 1) * step;
        if (wend > end) wend = end;
        ag_eval_opts_t o;
        eval_opts(&o);
        ag_value_t val = {0};
        ag_errmsg_t e = {{0}, -1};
        int rc = ag_eval_range(m->store, md->ast, start, wend, step, &o, &val, &e);
        batch_t b = {0};
        if (md->purge) {
            purge_ctx_t pc = {&b};
            ag_store_blobs(m->store, md->def.name, strlen(md->def.name) + 1, purge_rec, &pc);
            md->purge = false;
        }
        if (rc) {
            atomic_fetch_add(&m->st_fail, 1);
            AG_WARN("\"model evaluation failed\" model=%s err=\"%s\"", md->def.name, e.msg);
        } else {
            for (size_t i = 0; i < val.n && !rc; i++) rc = feed_series(m, md, &val.series[i], &b);
            if (rc) AG_WARN("\"model update failed\" model=%s err=\"%s\"", md->def.name,
                            ag_strerror(rc));
        }
        ag_value_free(&val);
        stale_series(md, wend, &b);
        md->last_eval = wend;
        save_model(md, &b, &k, &v);
        uint64_t written = 0;
        ag_errmsg_t we = {{0}, -1};
        int wrc = batch_write(m->store, &b, &written, &we);
        atomic_fetch_add(&m->st_out, written);
        atomic_fetch_add(&m->st_runs, (uint64_t)((wend - start) / step + 1));
        if (wrc && wrc != AG_ESHUTDOWN) {
            atomic_fetch_add(&m->st_wfail, 1);
            AG_WARN("\"cannot write model outputs\" model=%s err=\"%s\"", md->def.name, we.msg);
        }
        start = wend + step;
    }
    ag_buf_free(&k);
    ag_buf_free(&v);
    return true;
}

/* One step of a refit round: the next series' constants fitted on its history. Returns true
 * when it did work. */
static bool refit_step(ag_models_t *m, model_t *md, int64_t now)
{
    if (!md->fitting) {
        if (md->def.refit_ms <= 0 || md->last_eval == INT64_MIN || !md->nser) return false;
        if (md->last_fit != INT64_MIN && now - md->last_fit < md->def.refit_ms) return false;
        md->last_fit = now;
        int64_t win = md->def.warmup_ms;
        if (win < 2 * 86400000LL) win = 2 * 86400000LL;
        if (win > FIT_WINDOW_MAX_MS) win = FIT_WINDOW_MAX_MS;
        ag_eval_opts_t o;
        eval_opts(&o);
        ag_errmsg_t e = {{0}, -1};
        ag_value_free(&md->fit_hist);
        memset(&md->fit_hist, 0, sizeof md->fit_hist);
        if (ag_eval_range(m->store, md->ast, floor_step(md->last_eval - win, md->def.step_ms),
                          md->last_eval, md->def.step_ms, &o, &md->fit_hist, &e)) {
            AG_WARN("\"model refit: history unreadable\" model=%s err=\"%s\"", md->def.name,
                    e.msg);
            return true;
        }
        md->fit_next = 0;
        md->fitting = true;
        return true;
    }
    if (md->fit_next >= md->fit_hist.n) {
        md->fitting = false;
        ag_value_free(&md->fit_hist);
        memset(&md->fit_hist, 0, sizeof md->fit_hist);
        AG_INFO("\"model refitted\" model=%s series=%zu", md->def.name, md->nser);
        return true;
    }
    const ag_series_val_t *sv = &md->fit_hist.series[md->fit_next++];
    mser_t *s = ser_find(md, sv->labels, sv->labels_len);
    if (!s || sv->n < 16) return true;
    int64_t *t = malloc(sv->n * sizeof *t);
    double *v = malloc(sv->n * sizeof *v);
    size_t n = 0;
    for (size_t i = 0; t && v && i < sv->n; i++) {
        if (!isfinite(sv->points[i].v)) continue;
        t[n] = sv->points[i].t;
        v[n++] = sv->points[i].v;
    }
    /* The forecaster is refitted (on the one-step error, a forecasting objective); the scoring
     * model keeps its constants, which detect better than fitted ones (README). */
    const ag_hw_config_t *hc = ag_hw_config(ag_detect_forecaster(s->det));
    ag_hw_params_t p = hc->p;
    if (t && v && n >= 16 && ag_hw_fit(hc, t, v, n, &p) == AG_OK &&
        ag_detect_set_forecast_params(s->det, &p) == AG_OK) {
        s->touched = true;
        atomic_fetch_add(&m->st_refit, 1);
    }
    free(t);
    free(v);
    return true;
}

/* ---- configuration ------------------------------------------------------------------------ */

static void apply_models(ag_models_t *m, const ag_config_t *c)
{
    model_t **nm = calloc(c->nmodels ? c->nmodels : 1, sizeof *nm);
    if (!nm) {
        AG_ERROR("\"out of memory applying models; the old ones stay\"");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < c->nmodels; i++) {
        const ag_model_def_t *d = &c->models[i];
        model_t *keep = NULL;
        for (size_t j = 0; j < m->nmodels; j++) {
            model_t *old = m->models[j];
            if (old && strcmp(old->def.name, d->name) == 0 && old->fp == fingerprint(d)) {
                keep = old;
                m->models[j] = NULL;
                break;
            }
        }
        if (keep) {
            /* Same state; settings that do not touch it (horizon, sensitivity...) change. */
            char *nmn = keep->def.name, *ne = keep->def.expr;
            keep->def = *d;
            keep->def.name = nmn;
            keep->def.expr = ne;
            nm[n++] = keep;
        } else if ((nm[n] = model_new(m, d))) {
            n++;
        } else {
            AG_ERROR("\"cannot start model\" model=%s", d->name);
        }
    }
    for (size_t j = 0; j < m->nmodels; j++) model_free(m->models[j]);
    free(m->models);
    m->models = nm;
    m->nmodels = n;
    atomic_store(&m->st_models, n);
}

/* ---- the thread --------------------------------------------------------------------------- */

static void *service_main(void *arg)
{
    ag_models_t *m = arg;
    pthread_setname_np(pthread_self(), "augur-models"); /* as top -H and ps -L show it */
    auto_buf_t evs = {0};
    for (;;) {
        int64_t now = ag_now_ms();
        int64_t due = INT64_MAX;
        bool busy = false;
        for (size_t i = 0; i < m->nmodels; i++) {
            model_t *md = m->models[i];
            int64_t d = md->last_eval == INT64_MIN ? now : md->last_eval + md->def.step_ms;
            if (d < due) due = d;
            busy |= md->fitting;
        }
        for (size_t i = 0; i < m->nscalers; i++) {
            int64_t d = scaler_due(m->scalers[i], now);
            if (d < due) due = d;
        }
        for (size_t i = 0; i < m->nalerts; i++) {
            int64_t d = alert_due(m->alerts[i], now);
            if (d < due) due = d;
        }
        pthread_mutex_lock(&m->lock);
        while (!m->stop && !m->reload && !m->out.n && !busy && due > ag_now_ms()) {
            int64_t wait = due == INT64_MAX ? 1000 : due - ag_now_ms();
            if (wait > 1000) wait = 1000;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            ts.tv_sec += wait / 1000 + ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&m->cond, &m->lock, &ts);
        }
        bool stop = m->stop, reload = m->reload;
        ag_config_t cfg = m->pending;
        if (reload) {
            memset(&m->pending, 0, sizeof m->pending);
            m->reload = false;
        }
        auto_buf_t t = evs;
        evs = m->out;
        m->out = t;
        pthread_mutex_unlock(&m->lock);
        auto_flush(m, &evs);
        auto_buf_reset(&evs);
        if (reload) {
            apply_models(m, &cfg);
            scalers_apply(m, &cfg);
            alerts_apply(m, &cfg);
            ag_config_free(&cfg);
        }
        if (stop) break;
        now = ag_now_ms();
        uint64_t nser = 0;
        for (size_t i = 0; i < m->nmodels; i++) {
            model_t *md = m->models[i];
            int64_t d = md->last_eval == INT64_MIN ? now : md->last_eval + md->def.step_ms;
            if (now >= d) run_model(m, md, now);
        }
        for (size_t i = 0; i < m->nscalers; i++)
            if (now >= scaler_due(m->scalers[i], now)) scaler_run(m, m->scalers[i], now);
        for (size_t i = 0; i < m->nalerts; i++) {
            int64_t at = ag_now_ms();
            if (at >= alert_due(m->alerts[i], at)) alert_run(m, m->alerts[i], at);
        }
        for (size_t i = 0; i < m->nmodels; i++) {
            if (refit_step(m, m->models[i], ag_now_ms())) break;
        }
        for (size_t i = 0; i < m->nmodels; i++) nser += m->models[i]->nser;
        atomic_store(&m->st_series, nser);
    }
    auto_buf_free(&evs);
    return NULL;
}

/* Copies the parts of a configuration the service uses (models, detection.auto). */
static int copy_models(ag_config_t *dst, const ag_config_t *src)
{
    memset(dst, 0, sizeof *dst);
    dst->auto_detect = src->auto_detect;
    if (ag_scaler_defs_copy(src->scalers, src->nscalers, &dst->scalers)) return AG_ENOMEM;
    dst->nscalers = src->nscalers;
    if (ag_alert_defs_copy(src->alerts, src->nalerts, &dst->alerts)) return AG_ENOMEM;
    dst->nalerts = src->nalerts;
    dst->alert_resend_ms = src->alert_resend_ms;
    if (src->alertmanager_url && !(dst->alertmanager_url = strdup(src->alertmanager_url)))
        return AG_ENOMEM;
    if (!src->nmodels) return AG_OK;
    if (!(dst->models = calloc(src->nmodels, sizeof *dst->models))) return AG_ENOMEM;
    for (size_t i = 0; i < src->nmodels; i++) {
        dst->models[i] = src->models[i];
        dst->models[i].name = strdup(src->models[i].name);
        dst->models[i].expr = strdup(src->models[i].expr);
        dst->nmodels = i + 1;
        if (!dst->models[i].name || !dst->models[i].expr) {
            ag_config_free(dst);
            return AG_ENOMEM;
        }
    }
    return AG_OK;
}

int ag_models_start(ag_store_t *store, const ag_config_t *cfg, ag_models_t **out,
                    ag_errmsg_t *e)
{
    *out = NULL;
    ag_models_t *m = calloc(1, sizeof *m);
    if (!m) return ag_errmsg_set(e, AG_ENOMEM, -1, "out of memory");
    m->store = store;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    atomic_store(&m->auto_on, cfg->auto_detect);
    if (copy_models(&m->pending, cfg)) {
        ag_models_stop(m);
        return ag_errmsg_set(e, AG_ENOMEM, -1, "out of memory");
    }
    m->reload = true;
    snprintf(m->external_url, sizeof m->external_url, "http://%s",
             cfg->listen_address ? cfg->listen_address : AG_DEFAULT_LISTEN);
    m->alert_resend_ms = cfg->alert_resend_ms;
    if (notifier_start(&m->notifier)) {
        ag_models_stop(m);
        return ag_errmsg_set(e, AG_ENOMEM, -1, "cannot start the alert notifier");
    }
    if (webhooks_start(m, &m->hooks)) {
        ag_models_stop(m);
        return ag_errmsg_set(e, AG_ENOMEM, -1, "cannot start the webhook sender");
    }
    if (pthread_create(&m->thread, NULL, service_main, m)) {
        ag_models_stop(m);
        return ag_errmsg_set(e, AG_ENOMEM, -1, "cannot start the forecasting thread");
    }
    m->started = true;
    ag_store_observer_t o = {auto_observe, auto_group_end, m};
    ag_store_set_observer(store, &o);
    *out = m;
    return AG_OK;
}

int ag_models_reload(ag_models_t *m, const ag_config_t *cfg)
{
    ag_config_t c;
    if (copy_models(&c, cfg)) return AG_ENOMEM;
    atomic_store(&m->auto_on, cfg->auto_detect);
    pthread_mutex_lock(&m->lock);
    ag_config_free(&m->pending);
    m->pending = c;
    m->reload = true;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
    return AG_OK;
}

void ag_models_stop(ag_models_t *m)
{
    if (!m) return;
    /* No more observer calls once this returns: the committer copies the observer under its
     * queue lock for each group, and a group in flight ends before the next write is taken. */
    ag_store_set_observer(m->store, NULL);
    if (m->started) {
        pthread_mutex_lock(&m->lock);
        m->stop = true;
        pthread_cond_signal(&m->cond);
        pthread_mutex_unlock(&m->lock);
        pthread_join(m->thread, NULL);
    }
    webhooks_stop(m->hooks);
    notifier_stop(m->notifier);
    alerts_free(m);
    for (size_t i = 0; i < m->nmodels; i++) model_free(m->models[i]);
    free(m->models);
    scalers_free(m);
    ag_config_free(&m->pending);
    auto_buf_free(&m->out);
    auto_buf_free(&m->cur);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    free(m);
}

void ag_models_stats(ag_models_t *m, ag_models_stats_t *st)
{
    memset(st, 0, sizeof *st);
    if (!m) return;
    st->models = atomic_load(&m->st_models);
    st->model_series = atomic_load(&m->st_series);
    st->forecast_runs = atomic_load(&m->st_runs);
    st->eval_failures = atomic_load(&m->st_fail);
    st->anomalies = atomic_load(&m->st_anom);
    st->auto_scored = atomic_load(&m->st_auto);
    st->outputs_written = atomic_load(&m->st_out);
    st->write_failures = atomic_load(&m->st_wfail);
    st->refits = atomic_load(&m->st_refit);
    pthread_mutex_lock(&m->lock);
    st->scalers = m->nsnap;
    pthread_mutex_unlock(&m->lock);
    webhooks_stats(m->hooks, &st->webhook_ok, &st->webhook_failed, &st->webhook_pending);
    notifier_stats(m->notifier, &st->notifications_sent, &st->notification_errors,
                   &st->notifications_dropped);
    pthread_mutex_lock(&m->lock);
    st->alert_rules = m->nalerts;
    pthread_mutex_unlock(&m->lock);
}
