/* metrics.c - augurd's self-monitoring in the Prometheus text exposition format 0.0.4.
 *
 * Families follow Prometheus' naming practice (augur_ prefix, base units, _total counters) and
 * mirror what Prometheus itself exports, so existing dashboards translate directly. Process
 * metrics are read from /proc/self on each scrape, as client_golang's process collector does.
 */
#include "ag_metrics.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ag_version.h"

static const double k_buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NBUCKETS (sizeof k_buckets / sizeof k_buckets[0])
static const int k_codes[] = {200, 204, 400, 403, 404, 405, 406, 413, 415, 422, 429, 499, 500, 503};
#define NCODES (sizeof k_codes / sizeof k_codes[0])

struct ag_metrics {
    _Atomic uint64_t requests[AG_H_COUNT][NCODES + 1]; /* last slot: any other code */
    _Atomic uint64_t buckets[AG_H_COUNT][NBUCKETS];
    _Atomic uint64_t dur_count[AG_H_COUNT];
    _Atomic uint64_t dur_sum_us[AG_H_COUNT];
    _Atomic uint64_t rejected[AG_REJ_COUNT];
    _Atomic uint64_t exemplars_ignored;
    _Atomic int64_t in_flight;
    _Atomic int reload_ok;
    _Atomic int64_t reload_ms;
    double start_time;
};

static const char *k_handlers[AG_H_COUNT] = {
    "/api/v1/write",   "/api/v1/query",  "/api/v1/query_range", "/api/v1/format_query",
    "/api/v1/series",  "/api/v1/labels", "/api/v1/label/:name/values", "/api/v1/metadata",
    "/api/v1/status",  "/api/v1/other",  "/-/healthy",          "/-/ready",
    "/-/reload",       "/metrics",       "not_found",
};
static const char *k_reasons[AG_REJ_COUNT] = {"bad_request", "too_large",    "invalid_labels",
                                              "limit",       "histogram",    "out_of_order",
                                              "series_limit", "storage"};

const char *ag_handler_name(ag_handler_t h) { return h < AG_H_COUNT ? k_handlers[h] : "?"; }

ag_metrics_t *ag_metrics_new(void)
{
    ag_metrics_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    m->start_time = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
    atomic_store(&m->reload_ok, 1);
    atomic_store(&m->reload_ms, (int64_t)tv.tv_sec * 1000);
    return m;
}

void ag_metrics_free(ag_metrics_t *m) { free(m); }

void ag_metrics_request(ag_metrics_t *m, ag_handler_t h, int code, double seconds)
{
    if (h >= AG_H_COUNT) h = AG_H_NOT_FOUND;
    size_t ci = NCODES;
    for (size_t i = 0; i < NCODES; i++)
        if (k_codes[i] == code) ci = i;
    atomic_fetch_add(&m->requests[h][ci], 1);
    for (size_t b = 0; b < NBUCKETS; b++)
        if (seconds <= k_buckets[b]) atomic_fetch_add(&m->buckets[h][b], 1);
    atomic_fetch_add(&m->dur_count[h], 1);
    atomic_fetch_add(&m->dur_sum_us[h], (uint64_t)(seconds * 1e6));
}

void ag_metrics_rejected(ag_metrics_t *m, ag_reject_t why, uint64_t samples)
{
    if (why < AG_REJ_COUNT) atomic_fetch_add(&m->rejected[why], samples);
}

void ag_metrics_exemplars_ignored(ag_metrics_t *m, uint64_t n)
{
    atomic_fetch_add(&m->exemplars_ignored, n);
}

void ag_metrics_config_reload(ag_metrics_t *m, bool ok, int64_t now_ms)
{
    atomic_store(&m->reload_ok, ok ? 1 : 0);
    if (ok) atomic_store(&m->reload_ms, now_ms);
}

static void family(ag_buf_t *o, const char *name, const char *type, const char *help)
{
    ag_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u64(ag_buf_t *o, const char *name, uint64_t v)
{
    ag_buf_printf(o, "%s %llu\n", name, (unsigned long long)v);
}

static void sample_f(ag_buf_t *o, const char *name, double v)
{
    ag_buf_printf(o, "%s ", name);
    ag_buf_float(o, v);
    ag_buf_putc(o, '\n');
}

static void render_process(ag_buf_t *o, double start_time)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        family(o, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.");
        sample_f(o, "process_cpu_seconds_total",
                 (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    }
    long page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long vsz = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &vsz, &rss) == 2) {
            family(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
            sample_u64(o, "process_virtual_memory_bytes", (uint64_t)vsz * (uint64_t)page);
            family(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
            sample_u64(o, "process_resident_memory_bytes", (uint64_t)rss * (uint64_t)page);
        }
        fclose(f);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        family(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        sample_f(o, "process_max_fds",
                 rl.rlim_cur == RLIM_INFINITY ? (double)INT64_MAX : (double)rl.rlim_cur);
    }
    if (getrlimit(RLIMIT_AS, &rl) == 0) {
        family(o, "process_virtual_memory_max_bytes", "gauge",
               "Maximum amount of virtual memory available in bytes.");
        sample_f(o, "process_virtual_memory_max_bytes",
                 rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur);
    }
    unsigned long fds = 0;
    DIR *dir = opendir("/proc/self/fd");
    if (dir) {
        struct dirent *de;
        while ((de = readdir(dir)))
            if (de->d_name[0] != '.') fds++;
        closedir(dir);
        if (fds) fds--; /* the directory stream's own descriptor */
    }
    family(o, "process_open_fds", "gauge", "Number of open file descriptors.");
    sample_u64(o, "process_open_fds", fds);
    family(o, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
    sample_f(o, "process_start_time_seconds", start_time);
    f = fopen("/proc/self/net/dev", "r");
    if (f) {
        char line[512];
        unsigned long long rx = 0, tx = 0;
        while (fgets(line, sizeof line, f)) {
            char *colon = strchr(line, ':');
            if (!colon) continue;
            unsigned long long v[16] = {0};
            if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                       &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8]) == 9) {
                rx += v[0];
                tx += v[8];
            }
        }
        fclose(f);
        family(o, "process_network_receive_bytes_total", "counter",
               "Number of bytes received by the process over the network.");
        sample_u64(o, "process_network_receive_bytes_total", rx);
        family(o, "process_network_transmit_bytes_total", "counter",
               "Number of bytes sent by the process over the network.");
        sample_u64(o, "process_network_transmit_bytes_total", tx);
    }
}

void ag_metrics_in_flight(ag_metrics_t *m, int delta) { atomic_fetch_add(&m->in_flight, delta); }

void ag_metrics_render(ag_metrics_t *m, const ag_store_stats_t *st, const ag_qcache_stats_t *qc,
                       const ag_models_stats_t *fs, ag_buf_t *o)
{
    family(o, "augur_build_info", "gauge",
           "A metric with a constant '1' value labeled by version, revision and branch.");
    ag_buf_printf(o, "augur_build_info{branch=\"%s\",revision=\"%s\",version=\"%s\"} 1\n",
                  AG_BRANCH, AG_REVISION, AG_VERSION);

    family(o, "augur_http_requests_in_flight", "gauge",
           "HTTP requests being handled right now (this scrape included).");
    ag_buf_printf(o, "augur_http_requests_in_flight %lld\n", (long long)atomic_load(&m->in_flight));

    family(o, "augur_http_requests_total", "counter", "HTTP requests by handler and status code.");
    for (int h = 0; h < AG_H_COUNT; h++) {
        for (size_t c = 0; c <= NCODES; c++) {
            uint64_t v = atomic_load(&m->requests[h][c]);
            if (!v) continue;
            if (c < NCODES)
                ag_buf_printf(o, "augur_http_requests_total{code=\"%d\",handler=\"%s\"} %llu\n",
                              k_codes[c], k_handlers[h], (unsigned long long)v);
            else
                ag_buf_printf(o, "augur_http_requests_total{code=\"other\",handler=\"%s\"} %llu\n",
                              k_handlers[h], (unsigned long long)v);
        }
    }
    family(o, "augur_http_request_duration_seconds", "histogram",
           "Time spent answering HTTP requests, by handler.");
    for (int h = 0; h < AG_H_COUNT; h++) {
        uint64_t count = atomic_load(&m->dur_count[h]);
        if (!count) continue;
        for (size_t b = 0; b < NBUCKETS; b++) {
            ag_buf_printf(o, "augur_http_request_duration_seconds_bucket{handler=\"%s\",le=\"",
                          k_handlers[h]);
            ag_buf_float(o, k_buckets[b]);
            ag_buf_printf(o, "\"} %llu\n", (unsigned long long)atomic_load(&m->buckets[h][b]));
        }
        ag_buf_printf(o,
                      "augur_http_request_duration_seconds_bucket{handler=\"%s\",le=\"+Inf\"} "
                      "%llu\n",
                      k_handlers[h], (unsigned long long)count);
        ag_buf_printf(o, "augur_http_request_duration_seconds_sum{handler=\"%s\"} ", k_handlers[h]);
        ag_buf_float(o, (double)atomic_load(&m->dur_sum_us[h]) / 1e6);
        ag_buf_printf(o, "\naugur_http_request_duration_seconds_count{handler=\"%s\"} %llu\n",
                      k_handlers[h], (unsigned long long)count);
    }
    family(o, "augur_samples_rejected_total", "counter",
           "Remote-write samples refused, by reason. Senders drop 4xx rejections and retry "
           "reason=\"storage\".");
    for (int r = 0; r < AG_REJ_COUNT; r++)
        ag_buf_printf(o, "augur_samples_rejected_total{reason=\"%s\"} %llu\n", k_reasons[r],
                      (unsigned long long)atomic_load(&m->rejected[r]));
    family(o, "augur_exemplars_ignored_total", "counter",
           "Exemplars received by remote write and not stored (not supported yet).");
    sample_u64(o, "augur_exemplars_ignored_total", atomic_load(&m->exemplars_ignored));
    family(o, "augur_config_last_reload_successful", "gauge",
           "Whether the last configuration reload attempt was successful.");
    sample_u64(o, "augur_config_last_reload_successful", (uint64_t)atomic_load(&m->reload_ok));
    family(o, "augur_config_last_reload_success_timestamp_seconds", "gauge",
           "Timestamp of the last successful configuration reload.");
    sample_f(o, "augur_config_last_reload_success_timestamp_seconds",
             (double)atomic_load(&m->reload_ms) / 1000.0);
    family(o, "augur_ready", "gauge", "Whether storage is open and augurd serves requests.");
    sample_u64(o, "augur_ready", st ? 1 : 0);

    if (st) {
        family(o, "augur_samples_appended_total", "counter", "Samples stored durably.");
        sample_u64(o, "augur_samples_appended_total", st->samples_appended);
        family(o, "augur_samples_duplicate_total", "counter",
               "Samples received again with the same timestamp and value, accepted and skipped.");
        sample_u64(o, "augur_samples_duplicate_total", st->samples_duplicate);
        family(o, "augur_series", "gauge", "Series in the index.");
        sample_u64(o, "augur_series", st->series);
        family(o, "augur_active_series", "gauge", "Series with samples in an open head chunk.");
        sample_u64(o, "augur_active_series", st->head_series);
        family(o, "augur_series_created_total", "counter", "Series created since start.");
        sample_u64(o, "augur_series_created_total", st->series_created);
        family(o, "augur_chunks_sealed_total", "counter", "Chunks completed and written.");
        sample_u64(o, "augur_chunks_sealed_total", st->chunks_sealed);
        family(o, "augur_storage_commits_total", "counter", "Group commits to LMDB.");
        sample_u64(o, "augur_storage_commits_total", st->commits);
        family(o, "augur_storage_commit_failures_total", "counter",
               "Group commits that failed (their requests got a retryable error).");
        sample_u64(o, "augur_storage_commit_failures_total", st->commit_failures);
        family(o, "augur_storage_commit_seconds_total", "counter",
               "Time spent committing (fsync included).");
        sample_f(o, "augur_storage_commit_seconds_total", st->commit_seconds_sum);
        family(o, "augur_storage_checkpoints_total", "counter", "WAL checkpoints completed.");
        sample_u64(o, "augur_storage_checkpoints_total", st->checkpoints);
        family(o, "augur_rollup_blocks_written_total", "counter",
               "Rollup blocks (1m and 1h buckets of one series) written by maintenance.");
        sample_u64(o, "augur_rollup_blocks_written_total", st->rollup_blocks_written);
        family(o, "augur_retention_deleted_total", "counter",
               "What retention deleted: raw chunks, rollup blocks, series left without data.");
        ag_buf_printf(o, "augur_retention_deleted_total{kind=\"chunks\"} %llu\n",
                      (unsigned long long)st->retention_chunks_deleted);
        ag_buf_printf(o, "augur_retention_deleted_total{kind=\"rollup_blocks\"} %llu\n",
                      (unsigned long long)st->retention_blocks_deleted);
        ag_buf_printf(o, "augur_retention_deleted_total{kind=\"series\"} %llu\n",
                      (unsigned long long)st->retention_series_deleted);
        family(o, "augur_chunks_compacted_total", "counter",
               "Sealed chunks merged into one chunk per finished 6 h block.");
        sample_u64(o, "augur_chunks_compacted_total", st->chunks_compacted);
        family(o, "augur_maintenance_steps_total", "counter",
               "Maintenance transactions (rollups and retention) committed.");
        sample_u64(o, "augur_maintenance_steps_total", st->maintenance_steps);
        family(o, "augur_wal_bytes", "gauge", "WAL bytes not yet checkpointed.");
        sample_u64(o, "augur_wal_bytes", st->wal_bytes);
        family(o, "augur_lmdb_map_size_bytes", "gauge", "LMDB map size: the most the data file may grow to.");
        sample_u64(o, "augur_lmdb_map_size_bytes", st->map_size);
        family(o, "augur_lmdb_used_bytes", "gauge", "LMDB pages in use, in bytes.");
        sample_u64(o, "augur_lmdb_used_bytes", st->used_bytes);
        family(o, "augur_lmdb_file_bytes", "gauge", "Size of the LMDB data file on disk.");
        sample_u64(o, "augur_lmdb_file_bytes", st->file_bytes);
        family(o, "augur_storage_min_time_seconds", "gauge", "Oldest stored sample.");
        sample_f(o, "augur_storage_min_time_seconds", (double)st->min_time / 1000.0);
        family(o, "augur_storage_max_time_seconds", "gauge", "Newest stored sample.");
        sample_f(o, "augur_storage_max_time_seconds", (double)st->max_time / 1000.0);
    }
    if (qc) {
        const struct {
            const char *name, *type, *help;
            uint64_t v;
        } qf[] = {
            {"augur_query_cache_hits_total", "counter",
             "Range queries answered at least partly from the query result cache.", qc->hits},
            {"augur_query_cache_misses_total", "counter",
             "Cacheable range queries that found no usable cached steps.", qc->misses},
            {"augur_query_cache_invalidations_total", "counter",
             "Cache entries truncated or dropped because a late sample changed their steps.",
             qc->invalidations},
            {"augur_query_cache_bytes", "gauge", "Memory held by the query result cache.",
             qc->bytes},
            {"augur_query_cache_entries", "gauge", "Entries in the query result cache.",
             qc->entries},
        };
        for (size_t i = 0; i < sizeof qf / sizeof qf[0]; i++) {
            family(o, qf[i].name, qf[i].type, qf[i].help);
            sample_u64(o, qf[i].name, qf[i].v);
        }
    }
    if (fs) {
        const struct {
            const char *name, *type, *help;
            uint64_t v;
        } ff[] = {
            {"augur_models", "gauge", "Models configured under models:.", fs->models},
            {"augur_model_series", "gauge", "Series modelled by the configured models.",
             fs->model_series},
            {"augur_forecast_runs_total", "counter",
             "Model evaluations (one per model and step, catch-up included).", fs->forecast_runs},
            {"augur_forecast_failures_total", "counter",
             "Model evaluations that failed (the log says why).", fs->eval_failures},
            {"augur_anomalies_detected_total", "counter",
             "Samples flagged anomalous (augur_anomaly = 1), configured models and auto.",
             fs->anomalies},
            {"augur_detection_scored_samples_total", "counter",
             "Samples scored by the zero-config detector (detection.auto).", fs->auto_scored},
            {"augur_forecast_outputs_written_total", "counter",
             "Samples written to forecast and anomaly series.", fs->outputs_written},
            {"augur_forecast_write_failures_total", "counter",
             "Writes of forecast and anomaly series that failed.", fs->write_failures},
            {"augur_model_refits_total", "counter",
             "Series whose smoothing constants were refitted (GSL).", fs->refits},
            {"augur_scalers", "gauge", "Scaler policies configured under scalers:.", fs->scalers},
            {"augur_webhook_pending", "gauge",
             "Scaler signals waiting in the webhook outbox (undelivered).", fs->webhook_pending},
            {"augur_alert_rules", "gauge", "Alert rules configured under alerts:.",
             fs->alert_rules},
            {"augur_notifications_sent_total", "counter",
             "Batches of alerts Alertmanager accepted.", fs->notifications_sent},
            {"augur_notifications_errors_total", "counter",
             "Batches of alerts Alertmanager did not accept (or did not answer).",
             fs->notification_errors},
            {"augur_notifications_dropped_total", "counter",
             "Batches of alerts dropped because the send queue was full.",
             fs->notifications_dropped},
        };
        for (size_t i = 0; i < sizeof ff / sizeof ff[0]; i++) {
            family(o, ff[i].name, ff[i].type, ff[i].help);
            sample_u64(o, ff[i].name, ff[i].v);
        }
        family(o, "augur_webhook_deliveries_total", "counter",
               "Webhook delivery attempts by result (success: a 2xx answer).");
        ag_buf_printf(o, "augur_webhook_deliveries_total{result=\"success\"} %llu\n",
                      (unsigned long long)fs->webhook_ok);
        ag_buf_printf(o, "augur_webhook_deliveries_total{result=\"failure\"} %llu\n",
                      (unsigned long long)fs->webhook_failed);
    }
    render_process(o, m->start_time);
}
