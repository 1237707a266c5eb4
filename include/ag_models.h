/* ag_models.h - the daemon's forecasting service (issue 5): anomaly scores for every series
 * without configuration, and the models configured under `models:`, with their results written
 * back into the store as ordinary series.
 *
 * Zero-config detection (detection.auto, on by default): every ingested series runs an ag_tiny
 * detector kept in the store's per-series observer slot (ag_store_observer_t: 64 bytes, saved by
 * checkpoints, restored on start). It scores each new sample on the committer thread; scores of
 * at least AG_AUTO_MIN_SCORE (the alarm threshold) are written, rounded to 0.01, as
 *     augur_auto_anomaly_score{metric="<source name>", <source labels>}
 * at the source sample's timestamp, then one 0 when the score falls back below it (so the series
 * exists only around alarms: a seasonless detector's ordinary scores are not worth a write per
 * sample); queries see it only when they name them (AG_EXPLICIT_PREFIX in ag_store.h), so catch-all
 * selectors answer as Prometheus does over the same data.
 * at the source sample's timestamp, followed by one 0 when the score falls back below it: the
 * series are sparse, absent while nothing is unusual. They are written by this service's thread
 * right after the group commit that stored the source samples (milliseconds later).
 *
 * Configured models: each is evaluated every `step` at step-aligned times (t = k * step) as an
 * instant query; every series of the result gets an ag_detect model (Holt-Winters with the
 * configured seasons) and, at each evaluation time t, these series are written with the
 * result's labels plus model="<name>" (a source __name__ becomes metric="<name>"; clashing
 * source labels are renamed exported_<name>):
 *     augur_forecast, augur_forecast_lower, augur_forecast_upper   forecast for t + horizon
 *     augur_anomaly_score                                          score of the value at t
 *     augur_anomaly                                                1 when score >= 1-sensitivity
 * A model that starts without saved state replays `warmup` of history first, then fits its
 * smoothing constants with GSL (ag_hw_fit) and again every `refit`, one series at a time
 * between evaluations. After a restart it resumes from its saved state and catches up the
 * steps it missed (at most `warmup`). State is saved into the store (ag_blob_in_t) in the same
 * transaction as the outputs of the evaluation that produced it. Model series that leave the
 * result get stale markers. A reload keeps the state of every model whose name, expression,
 * step, seasons and scale are unchanged.
 *
 * Ownership: ag_models_t is created by ag_models_start and owns its thread, its models and
 * their detectors; it borrows the store, which must outlive it (ag_models_stop before
 * ag_store_close).
 */
#ifndef AG_MODELS_H
#define AG_MODELS_H

#include <stdbool.h>
#include <stdint.h>

#include "ag_buf.h"
#include "ag_config.h"
#include "ag_err.h"
#include "ag_store.h"

#define AG_AUTO_MIN_SCORE 0.5

typedef struct ag_models ag_models_t;

/* Starts the service for the configuration's detection.auto and models. AG_ENOMEM, AG_EIO
 * (reading saved state); *out is NULL on error. */
int ag_models_start(ag_store_t *store, const ag_config_t *cfg, ag_models_t **out,
                    ag_errmsg_t *e);
/* Applies a new configuration (models added, changed, removed; detection.auto on/off). */
int ag_models_reload(ag_models_t *m, const ag_config_t *cfg);
/* Stops the thread, detaches from the store and frees everything. NULL is fine. */
void ag_models_stop(ag_models_t *m);

/* Writes the JSON of GET /api/v1/scalers (name NULL: {"scalers":[...]}) or of one scaler
 * (/api/v1/scalers/<name>) to out. AG_ENOTFOUND for an unknown name. */
int ag_models_scalers_json(ag_models_t *m, const char *name, ag_buf_t *out);

/* Writes the data of GET /api/v1/alerts ({"alerts":[...]}, pending and firing alerts) or, with
 * rules, of GET /api/v1/rules ({"groups":[...]}, one group per alert rule) in Prometheus'
 * format. */
void ag_models_alerts_json(ag_models_t *m, bool rules, ag_buf_t *out);

typedef struct ag_models_stats {
    uint64_t models;            /* configured models */
    uint64_t model_series;      /* series modelled by them */
    uint64_t forecast_runs;     /* model evaluations (one per model per step) */
    uint64_t eval_failures;     /* evaluations that failed (the log says why) */
    uint64_t anomalies;         /* alarms raised (configured models and auto) */
    uint64_t auto_scored;       /* samples scored by the zero-config detector */
    uint64_t outputs_written;   /* samples written to output series */
    uint64_t write_failures;
    uint64_t refits;
    uint64_t scalers;           /* configured scaler policies */
    uint64_t webhook_ok, webhook_failed, webhook_pending;
    uint64_t alert_rules;
    uint64_t notifications_sent, notification_errors, notifications_dropped;
} ag_models_stats_t;
void ag_models_stats(ag_models_t *m, ag_models_stats_t *st);

/* The Holt-Winters/detector configuration the daemon derives from a model entry. */
struct ag_detect_config;
void ag_models_detect_config(const ag_model_def_t *def, struct ag_detect_config *out);

#endif
