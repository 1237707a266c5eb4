/* ag_config.h - augurd's settings: built-in defaults, an optional YAML file, command-line flags.
 *
 * Precedence: defaults < config file < flags. The file is read with libyaml; unknown keys are an
 * error (a typo should not silently fall back to a default). Durations use Prometheus' syntax
 * ("5m", "1h30m"), sizes accept plain bytes or units B KB MB GB TB PB (powers of 1024, as
 * Prometheus' retention.size) and KiB MiB GiB TiB. Every numeric setting must be above zero,
 * except query.cache_max_bytes where 0 turns the cache off.
 * The documented example is daemon/augur.example.yml; the settings' dotted names are the
 * section and key there ("limits.max_request_bytes").
 */
#ifndef AG_CONFIG_H
#define AG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ag_err.h"
#include "ag_log.h"

#define AG_DEFAULT_LISTEN "127.0.0.1:9201"

/* One entry of the `models:` list: a forecasting/anomaly model evaluated by the daemon (see
 * ag_models.h and README "Forecasting"). */
typedef struct ag_model_def {
    char *name;          /* [a-zA-Z_][a-zA-Z0-9_]*, unique; names the model's output series */
    char *expr;          /* PromQL-lite expression (an instant vector), checked when loaded */
    int64_t step_ms;     /* evaluated every step (default 1m) */
    int64_t horizon_ms;  /* how far ahead augur_forecast looks (default 1h) */
    bool season_day;     /* seasons (default both) */
    bool season_week;
    bool log_scale;      /* model log(value) (default false) */
    double sensitivity;  /* in (0, 1): alarm when the score >= 1 - sensitivity (default 0.5) */
    double coverage;     /* probability of the forecast band, in (0, 1) (default 0.95) */
    int64_t warmup_ms;   /* history replayed when a model starts without state (default 7d) */
    int64_t refit_ms;    /* smoothing constants refitted every (default 1d; 0 = never) */
    unsigned line;       /* line of the entry in the config file (for messages) */
} ag_model_def_t;

/* A signed webhook receiver of a scaler's signals. */
typedef struct ag_webhook_def {
    char *url;     /* http://host[:port]/path */
    char *secret;  /* Standard Webhooks key: "whsec_<base64>" or any other string (its bytes);
                      NULL: unsigned */
} ag_webhook_def_t;

/* One entry of the `scalers:` list: a predictive scaling policy (see ag_scaler.h). */
typedef struct ag_scaler_def {
    char *name;             /* [a-zA-Z_][a-zA-Z0-9_]*, unique */
    char *load;             /* PromQL-lite expression; its series are summed */
    double capacity;        /* capacity_per_replica, > 0 (required) */
    double target;          /* target_utilization (default 0.8) */
    double confidence;      /* confidence (default 0.9) */
    int64_t lead_ms;        /* lead_time (default 5m) */
    int64_t interval_ms;    /* interval (default 15s) */
    int64_t stabilization_ms; /* scale_down_stabilization (default 5m) */
    int64_t warmup_ms;      /* warmup (default 7d) */
    int64_t heartbeat_ms;   /* heartbeat: webhook re-sent unchanged after this (default 1m) */
    uint32_t min_replicas, max_replicas; /* default 1, 100 */
    ag_webhook_def_t *webhooks;
    size_t nwebhooks;
    unsigned line;
} ag_scaler_def_t;

/* One entry of the `alerts:` list: an alerting rule over any PromQL-lite expression (anomaly
 * scores, forecasts...), with Prometheus' semantics (pending for `for`, then firing). */
typedef struct ag_alert_def {
    char *name;            /* the alertname, [a-zA-Z_][a-zA-Z0-9_]*, unique */
    char *expr;            /* every series of the result is an alert instance */
    int64_t for_ms;        /* for (default 0) */
    int64_t interval_ms;   /* evaluation interval (default 15s) */
    char **label_names, **label_values;           /* labels added to every instance */
    size_t nlabels;
    char **annotation_names, **annotation_values; /* templates: {{ $labels.x }}, {{ $value }} */
    size_t nannotations;
    unsigned line;
} ag_alert_def_t;

typedef struct ag_config {
    /* web: */
    char *listen_address;          /* web.listen_address, "host:port" (default 127.0.0.1:9201) */
    /* storage: */
    char *storage_path;            /* storage.path (default ./data) */
    int64_t retention_ms[3];       /* storage.retention / rollup_1m_retention / rollup_1h_retention
                                      (default 15d / 90d / 2y; 0 = forever) */
    int64_t ooo_window_ms;         /* storage.out_of_order_window (default 10m; 0 = off) */
    uint64_t map_size;             /* storage.max_size: LMDB map size (default 64GiB) */
    /* limits: */
    uint64_t max_request_bytes;    /* limits.max_request_bytes: body as received (default 32MiB) */
    uint64_t max_decoded_bytes;    /* limits.max_decoded_bytes: after snappy (default 64MiB) */
    uint32_t max_labels_per_series;/* limits.max_labels_per_series (default 64) */
    uint32_t max_label_name_bytes; /* limits.max_label_name_bytes (default 256) */
    uint32_t max_label_value_bytes;/* limits.max_label_value_bytes (default 4096) */
    uint64_t max_series;           /* limits.max_series: series stored at most (default 10M;
                                      0 = no limit) */
    uint64_t max_series_per_metric;/* limits.max_series_per_metric (default 0 = no limit) */
    /* query: */
    int64_t lookback_delta_ms;     /* query.lookback_delta (default 5m) */
    int64_t query_timeout_ms;      /* query.timeout (default 2m) */
    uint64_t query_max_samples;    /* query.max_samples (default 50000000) */
    uint64_t query_cache_max_bytes;/* query.cache_max_bytes: range-query result cache budget
                                      (default 128MiB; 0 disables the cache) */
    /* detection: */
    bool auto_detect;              /* detection.auto: the zero-config detector on every series
                                      (default true) */
    /* models: (a list; only from the file) */
    ag_model_def_t *models;
    size_t nmodels;
    /* alerting: */
    char *alertmanager_url;        /* alerting.alertmanager_url: base URL of an Alertmanager
                                      (alerts go to <url>/api/v2/alerts); NULL: none */
    int64_t alert_resend_ms;       /* alerting.resend_delay (default 1m) */
    /* alerts: (a list; only from the file) */
    ag_alert_def_t *alerts;
    size_t nalerts;
    /* scalers: (a list; only from the file) */
    ag_scaler_def_t *scalers;
    size_t nscalers;
    /* log: */
    ag_log_level_t log_level;      /* log.level (default info) */
} ag_config_t;

/* Fills `c` with the built-in defaults (allocates the strings). `c` is treated as uninitialized:
 * whatever it held is overwritten, not freed. Returns 0 or AG_ENOMEM (then `c` holds nothing to
 * free). */
int ag_config_defaults(ag_config_t *c);
/* The configuration in force as YAML (the file's layout; webhook secrets shown as <secret>). */
struct ag_buf;
void ag_config_dump_yaml(const ag_config_t *c, struct ag_buf *out);
/* A model entry with every optional field at its default (name and expr NULL). */
void ag_model_def_default(ag_model_def_t *m);
/* Deep copies of an alert rule list (NULL, 0 for none); AG_ENOMEM. Frees with
 * ag_alert_defs_free. */
int ag_alert_defs_copy(const ag_alert_def_t *src, size_t n, ag_alert_def_t **out);
void ag_alert_defs_free(ag_alert_def_t *d, size_t n);
/* A scaler entry with every optional field at its default. */
void ag_scaler_def_default(ag_scaler_def_t *d);
/* Deep copies of a list (NULL, 0 for none); AG_ENOMEM. Frees with ag_scaler_defs_free. */
int ag_scaler_defs_copy(const ag_scaler_def_t *src, size_t n, ag_scaler_def_t **out);
void ag_scaler_defs_free(ag_scaler_def_t *d, size_t n);
/* "true"/"false" (also True, TRUE, yes/no, on/off, 1/0). AG_EINVAL otherwise. */
int ag_parse_bool(const char *s, bool *out);
/* Frees the strings (and the models) and sets them to NULL; calling it twice is harmless. */
void ag_config_free(ag_config_t *c);
/* Reads the YAML file at `path` over `c`: settings the file names replace those in `c`, the rest
 * stay. Returns 0, AG_EIO (cannot read; message says why), AG_EINVAL (bad YAML, unknown or
 * repeated key, wrong shape, bad value; message is "<path>:<line>:<column>: ..." and names the
 * key), AG_ENOMEM. On error `c` is unchanged. An empty or comments-only file changes nothing. */
int ag_config_load_file(const char *path, ag_config_t *c, ag_errmsg_t *e);
/* Applies one setting by its dotted name ("query.lookback_delta", "log.level"...) from a string,
 * as the YAML loader and the flag parser both do. Returns 0, AG_EINVAL (unknown name or bad
 * value; the message names the key), AG_ENOMEM. On error `c` is unchanged. */
int ag_config_set(ag_config_t *c, const char *key, const char *value, ag_errmsg_t *e);
/* Parses "32MiB", "1GB", "1024", "1.5GiB" into bytes: digits alone are bytes; with a unit
 * (B KB MB GB TB PB KiB MiB GiB TiB, case-sensitive, no space) a fraction is allowed and the
 * result is truncated to whole bytes. Accepts 0 (callers decide whether it is allowed); rejects
 * signs, spaces, other units and values above UINT64_MAX. Returns 0 or AG_EINVAL. */
int ag_parse_bytes(const char *s, uint64_t *out);

#endif
