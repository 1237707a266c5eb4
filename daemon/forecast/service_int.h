/* service_int.h - internals shared by the forecasting service's files: models.c (configured
 * models and the service thread), auto.c (the zero-config detector run by the store's
 * committer) and outputs.c (building and writing output series). Not a public header.
 */
#ifndef AG_SERVICE_INT_H
#define AG_SERVICE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "ag_buf.h"
#include "ag_forecast.h"
#include "ag_models.h"
#include "ag_promql.h"
#include "ag_scaler.h"

/* Output series names. */
#define OUT_FORECAST "augur_forecast"
#define OUT_LOWER "augur_forecast_lower"
#define OUT_UPPER "augur_forecast_upper"
#define OUT_SCORE "augur_anomaly_score"
#define OUT_ANOMALY "augur_anomaly"
/* The zero-config detector's: AG_EXPLICIT_PREFIX names, selected only by queries naming them. */
#define OUT_AUTO_SCORE AG_EXPLICIT_PREFIX "anomaly_score"

/* One scored sample of the zero-config detector: source labels at labels[off..off+len). */
typedef struct auto_ev {
    size_t off, len;
    int64_t t;
    uint8_t q; /* score in hundredths */
} auto_ev_t;

typedef struct auto_buf {
    ag_buf_t labels;
    auto_ev_t *ev;
    size_t n, cap;
    bool oom;
} auto_buf_t;
void auto_buf_reset(auto_buf_t *b);
void auto_buf_free(auto_buf_t *b);

/* ---- output batches (outputs.c) ---------------------------------------------------------- */

/* Series and state records collected for one ag_store_write. Every pointer the request holds
 * is owned by the batch. */
typedef struct out_series {
    ag_label_t *labels;
    size_t nlabels;
    char **owned; /* label strings allocated for this series */
    size_t nowned;
    ag_sample_t *smp;
    size_t n, cap;
} out_series_t;

typedef struct batch {
    out_series_t *ser;
    size_t n, cap;
    ag_buf_t blobdata;  /* keys and values of the state records, back to back */
    struct { size_t koff, klen, voff, vlen; bool del; } *blob;
    size_t nblob, capblob;
    bool oom;
} batch_t;

void batch_free(batch_t *b);
/* Adds an output series named `name` for source labels src[0..len): the source's labels plus
 * model="<model>" (unless model is NULL), the source's __name__ as metric="<name>", clashing
 * names as exported_<n>.
 * Returns its index, or -1 on ENOMEM (b->oom set). */
long batch_series(batch_t *b, const char *name, const char *model, const char *src, size_t len);
void batch_sample(batch_t *b, long idx, int64_t t, double v);
void batch_blob(batch_t *b, const void *key, size_t klen, const void *val, size_t vlen);
void batch_blob_del(batch_t *b, const void *key, size_t klen);
/* Writes the batch (if not empty) and empties it. Returns the store's code (0 when empty). */
int batch_write(ag_store_t *s, batch_t *b, uint64_t *written, ag_errmsg_t *e);

/* ---- the service ------------------------------------------------------------------------- */

typedef struct model model_t;
typedef struct scaler_rt scaler_rt_t;
typedef struct webhooks webhooks_t;
typedef struct alert_rt alert_rt_t;
typedef struct notifier notifier_t;

/* A scaler's latest result, as GET /api/v1/scalers shows it (under the service lock). */
typedef struct scaler_snap {
    char name[72];
    int64_t t;          /* evaluation time; 0 before the first */
    uint32_t desired, raw, min, max;
    double load, peak, forecast, score;
    int64_t lead_ms;
} scaler_snap_t;

struct ag_models {
    ag_store_t *store;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock; /* guards everything below up to the stats */
    pthread_cond_t cond;
    bool stop;
    bool reload;               /* pending_cfg holds models to apply */
    ag_config_t pending;       /* only nmodels/models and auto_detect are used */
    auto_buf_t out;            /* scored samples of committed groups, for the thread */
    /* committer side (only the store's committer thread touches these) */
    auto_buf_t cur;
    _Atomic bool auto_on;
    scaler_snap_t *snap;       /* one per configured scaler */
    size_t nsnap;
    /* thread side */
    model_t **models;
    size_t nmodels;
    scaler_rt_t **scalers;
    size_t nscalers;
    webhooks_t *hooks;         /* the webhook sender (its own thread) */
    alert_rt_t **alerts;       /* alert rules (swapped under the lock: the API reads them) */
    size_t nalerts;
    notifier_t *notifier;      /* the Alertmanager sender (its own thread) */
    int64_t alert_resend_ms;
    char external_url[300];    /* http://<listen address>, for generatorURL */
    /* stats */
    _Atomic uint64_t st_runs, st_fail, st_anom, st_auto, st_out, st_wfail, st_refit, st_series,
        st_models;
};

/* models.c: true once ag_models_stop was called (long catch-ups check it between windows). */
bool service_stopping(ag_models_t *m);

/* scalers.c: the configured scaler policies (thread side). */
void scalers_apply(ag_models_t *m, const ag_config_t *c);
void scalers_free(ag_models_t *m);
int64_t scaler_due(const scaler_rt_t *r, int64_t now);
bool scaler_run(ag_models_t *m, scaler_rt_t *r, int64_t now);
void scaler_rt_free(scaler_rt_t *r);

/* webhooks.c: signed webhook deliveries of scaler signals through a durable outbox. */
int webhooks_start(ag_models_t *m, webhooks_t **out);
void webhooks_stop(webhooks_t *w);
/* After a scaler's evaluation: enqueues a signal to each of its webhooks when the desired count
 * changed or the heartbeat is due (replacing an undelivered one: receivers get the latest). */
void webhooks_signal(ag_models_t *m, const ag_scaler_def_t *d, int64_t t,
                     const ag_scaler_result_t *r);
void webhooks_stats(webhooks_t *w, uint64_t *ok, uint64_t *failed, uint64_t *pending);
/* The scaler's last delivery attempts (at most max, newest first) as a JSON array. */
void webhooks_recent_json(webhooks_t *w, const char *scaler, size_t max, ag_buf_t *o);


/* alerts.c: alerting rules (thread side; their state under the service lock) and the
 * Alertmanager notifier. */
void alerts_apply(ag_models_t *m, const ag_config_t *c);
void alerts_free(ag_models_t *m);
int64_t alert_due(const alert_rt_t *r, int64_t now);
bool alert_run(ag_models_t *m, alert_rt_t *r, int64_t now);
void alert_rt_free(alert_rt_t *r);
int notifier_start(notifier_t **out);
void notifier_stop(notifier_t *nt);
void notifier_set_url(notifier_t *nt, const char *url);
void notifier_push(notifier_t *nt, char *body); /* takes the body (NUL-terminated JSON) */
void notifier_stats(notifier_t *nt, uint64_t *sent, uint64_t *errors, uint64_t *dropped);

/* auto.c: the store observer callbacks, and the thread's flush of scored samples. */
bool auto_observe(void *ctx, const char *labels, size_t labels_len, uint8_t *slot,
                  uint8_t *status, const ag_sample_t *smp, size_t n);
void auto_group_end(void *ctx, bool committed);
void auto_flush(ag_models_t *m, auto_buf_t *evs);

#endif
