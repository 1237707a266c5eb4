/* ag_metrics.h - augurd's own metrics, rendered in the Prometheus text format at /metrics.
 *
 * Counters and histograms are lock-free atomics owned by one ag_metrics_t. Rendering adds the
 * store's statistics and the standard process_* metrics read from /proc/self.
 */
#ifndef AG_METRICS_H
#define AG_METRICS_H

#include <stdint.h>

#include "ag_buf.h"
#include "ag_models.h"
#include "ag_qcache.h"
#include "ag_store.h"

typedef enum {
    AG_H_WRITE = 0,
    AG_H_QUERY,
    AG_H_QUERY_RANGE,
    AG_H_FORMAT_QUERY,
    AG_H_SERIES,
    AG_H_LABELS,
    AG_H_LABEL_VALUES,
    AG_H_METADATA,
    AG_H_STATUS,
    AG_H_OTHER_API,
    AG_H_HEALTHY,
    AG_H_READY,
    AG_H_RELOAD,
    AG_H_METRICS,
    AG_H_NOT_FOUND,
    AG_H_COUNT
} ag_handler_t;

/* Reasons a remote-write sample is rejected, the `reason` label of
 * augur_samples_rejected_total. */
typedef enum {
    AG_REJ_BAD_REQUEST = 0, /* undecodable body (snappy or protobuf) */
    AG_REJ_TOO_LARGE,
    AG_REJ_INVALID_LABELS,
    AG_REJ_LIMIT,
    AG_REJ_HISTOGRAM,
    AG_REJ_OUT_OF_ORDER,
    AG_REJ_SERIES_LIMIT,    /* limits.max_series or limits.max_series_per_metric */
    AG_REJ_STORAGE,         /* our own failure; the sender retries */
    AG_REJ_COUNT
} ag_reject_t;

typedef struct ag_metrics ag_metrics_t;

ag_metrics_t *ag_metrics_new(void);
void ag_metrics_free(ag_metrics_t *m);
void ag_metrics_request(ag_metrics_t *m, ag_handler_t h, int code, double seconds);
/* Counts a request entering (+1) or leaving (-1) its handler. */
void ag_metrics_in_flight(ag_metrics_t *m, int delta);
void ag_metrics_rejected(ag_metrics_t *m, ag_reject_t why, uint64_t samples);
void ag_metrics_exemplars_ignored(ag_metrics_t *m, uint64_t n);
void ag_metrics_config_reload(ag_metrics_t *m, bool ok, int64_t now_ms);
const char *ag_handler_name(ag_handler_t h);
/* Renders every metric family; `st` may be NULL before storage is open, `qc` (the query cache's
 * figures) when there is no cache. */
void ag_metrics_render(ag_metrics_t *m, const ag_store_stats_t *st, const ag_qcache_stats_t *qc,
                       const ag_models_stats_t *fs,
                       ag_buf_t *out);

#endif
