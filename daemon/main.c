/* main.c - augurd: flag parsing, start-up, signal handling and orderly shutdown.
 *
 * Start-up order: the HTTP server first (so /-/healthy answers and /-/ready says 503 while
 * storage recovers), then storage, then ready. SIGHUP reloads the configuration; SIGINT and
 * SIGTERM stop accepting connections, let in-flight requests finish (their writes commit),
 * close the store (which checkpoints) and exit 0. Signals are handled synchronously with
 * sigwait in the main thread, so no work happens in signal context.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_app.h"
#include "ag_log.h"
#include "ag_time.h"
#include "ag_version.h"

static const struct {
    const char *flag; /* without the leading "--" */
    const char *key;  /* configuration key */
    const char *help;
} k_flags[] = {
    {"web.listen-address", "web.listen_address",
     "Address to listen on for the API, remote write and /metrics. (default 127.0.0.1:9201)"},
    {"storage.path", "storage.path", "Directory for the LMDB data files. (default ./data)"},
    {"storage.max-size", "storage.max_size",
     "Largest the data file may grow to (LMDB map size), e.g. 64GiB. (default 64GiB)"},
    {"limits.max-request-bytes", "limits.max_request_bytes",
     "Largest remote-write body accepted, as received. (default 32MiB)"},
    {"limits.max-decoded-bytes", "limits.max_decoded_bytes",
     "Largest remote-write body accepted after snappy decoding. (default 64MiB)"},
    {"query.lookback-delta", "query.lookback_delta",
     "How far back an instant selector looks for a sample. (default 5m)"},
    {"storage.out-of-order-window", "storage.out_of_order_window",
     "Samples up to this much older than their series' newest are merged in; older ones get 400. "
     "0 = none. (default 10m)"},
    {"storage.retention", "storage.retention",
     "How long raw samples are kept, counted back from the newest sample; 0 = forever. "
     "(default 15d)"},
    {"storage.rollup-1m-retention", "storage.rollup_1m_retention",
     "How long 1-minute rollups are kept (at least as long as raw data). (default 90d)"},
    {"storage.rollup-1h-retention", "storage.rollup_1h_retention",
     "How long 1-hour rollups are kept (at least as long as 1-minute ones). (default 2y)"},
    {"limits.max-series", "limits.max_series",
     "Series stored at most; requests creating more get 400. 0 = no limit. (default 10000000)"},
    {"limits.max-series-per-metric", "limits.max_series_per_metric",
     "Series of one metric name at most. 0 = no limit. (default 0)"},
    {"query.timeout", "query.timeout", "Maximum time a query may take. (default 2m)"},
    {"query.max-samples", "query.max_samples",
     "Maximum samples one query may load into memory. (default 50000000)"},
    {"query.cache-max-bytes", "query.cache_max_bytes",
     "Memory for cached range-query results over the past, e.g. 512MiB; 0 disables. (default "
     "128MiB)"},
    {"detection.auto", "detection.auto",
     "Score every series with the zero-config anomaly detector: true or false. (default true)"},
    {"alerting.alertmanager-url", "alerting.alertmanager_url",
     "Alertmanager to send alerts to (its base URL, e.g. http://127.0.0.1:9093). (default none)"},
    {"log.level", "log.level", "Only log messages at or above: debug, info, warn, error. (default info)"},
};
#define NFLAGS (sizeof k_flags / sizeof k_flags[0])

static void usage(FILE *f)
{
    fprintf(f,
            "usage: augurd [<flags>]\n\n"
            "Augur: a Prometheus remote-write target and query server with forecasting.\n\n"
            "Flags:\n"
            "  -h, --help                 Show this help and exit.\n"
            "      --version              Show the version and exit.\n"
            "      --config.file=FILE     YAML configuration file (see daemon/augur.example.yml).\n"
            "                             Flags override the file. SIGHUP or POST /-/reload\n"
            "                             re-reads it.\n");
    for (size_t i = 0; i < NFLAGS; i++) fprintf(f, "      --%-24s %s\n", k_flags[i].flag, k_flags[i].help);
    fprintf(f, "\nPoint Prometheus at it with:\n"
               "  remote_write:\n"
               "    - url: http://127.0.0.1:9201/api/v1/write\n");
}

/* Parses argv into app->config_file and the flag list. Returns 0 to run, 1 to exit 0, 2 on a
 * usage error. */
static int parse_args(ag_app_t *app, int argc, char **argv)
{
    app->flag_keys = calloc((size_t)argc, sizeof *app->flag_keys);
    app->flag_values = calloc((size_t)argc, sizeof *app->flag_values);
    if (!app->flag_keys || !app->flag_values) return 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("augurd, version %s (branch: %s, revision: %s)\n  build date: %s\n", AG_VERSION,
                   AG_BRANCH, AG_REVISION, AG_BUILD_DATE);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "augurd: unexpected argument \"%s\"; see --help\n", a);
            return 2;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "augurd: flag --%.*s needs a value\n", (int)nl, name);
                return 2;
            }
            value = argv[++i];
        }
        if (nl == 11 && strncmp(name, "config.file", 11) == 0) {
            app->config_file = value;
            continue;
        }
        size_t k;
        for (k = 0; k < NFLAGS; k++)
            if (strlen(k_flags[k].flag) == nl && strncmp(k_flags[k].flag, name, nl) == 0) break;
        if (k == NFLAGS) {
            fprintf(stderr, "augurd: unknown flag --%.*s; see --help\n", (int)nl, name);
            return 2;
        }
        app->flag_keys[app->nflags] = k_flags[k].key;
        app->flag_values[app->nflags] = value;
        app->nflags++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static ag_app_t app;
    int rc = 1;
    /* Queries allocate and free tens of MiB each; with glibc's default 128 KiB trim threshold
     * every query hands its pages back to the kernel and faults them in again (a third of a
     * heavy query's time, measured). Keep up to 64 MiB of free heap per arena instead. Setting
     * it also freezes glibc's mmap threshold at 128 KiB, so blocks above that (a scan's batches,
     * a series' samples) would still be mapped and unmapped at every query: serve blocks up to
     * 32 MiB (the largest glibc allows) from the heap too. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    pthread_mutex_init(&app.cfg_lock, NULL);
    int pr = parse_args(&app, argc, argv);
    if (pr) {
        free(app.flag_keys);
        free(app.flag_values);
        return pr == 1 ? 0 : 2;
    }
    ag_errmsg_t e = {{0}, -1};
    if (ag_app_build_config(&app, &app.cfg, &e)) {
        fprintf(stderr, "augurd: %s\n", e.msg);
        free(app.flag_keys);
        free(app.flag_values);
        return 2;
    }
    ag_log_set_level(app.cfg.log_level);
    app.start_time_ms = ag_now_ms();
    atomic_store(&app.last_reload_ok, true);
    atomic_store(&app.last_reload_ms, app.start_time_ms);

    /* Every thread inherits this mask; only the sigwait below receives these signals. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (!(app.metrics = ag_metrics_new()) ||
        !(app.qcache = ag_qcache_new(app.cfg.query_cache_max_bytes))) {
        AG_ERROR("\"out of memory\"");
        goto out;
    }
    AG_INFO("\"starting augurd\" version=%s revision=%s", AG_VERSION, AG_REVISION);
    if (ag_http_start(app.cfg.listen_address, app.cfg.max_request_bytes, ag_api_handle, &app,
                      &app.http, &e)) {
        AG_ERROR("\"cannot start the HTTP server\" err=\"%s\"", e.msg);
        goto out;
    }
    AG_INFO("\"listening\" address=%s", app.cfg.listen_address);
    ag_store_opts_t so;
    ag_store_opts_default(&so);
    so.path = app.cfg.storage_path;
    so.map_size = app.cfg.map_size;
    so.max_series = app.cfg.max_series;
    so.ooo_window_ms = app.cfg.ooo_window_ms;
    memcpy(so.retention_ms, app.cfg.retention_ms, sizeof so.retention_ms);
    so.max_series_per_metric = app.cfg.max_series_per_metric;
    if (ag_store_open(&so, &app.store, &e)) {
        AG_ERROR("\"cannot open storage\" path=%s err=\"%s\"", so.path, e.msg);
        goto out;
    }
    /* The cache starts empty, so the WAL replayed by ag_store_open needs no notification. */
    ag_store_set_write_hook(app.store, ag_qcache_store_hook, app.qcache);
    if (ag_models_start(app.store, &app.cfg, &app.models, &e)) {
        AG_ERROR("\"cannot start forecasting\" err=\"%s\"", e.msg);
        goto out;
    }
    atomic_store(&app.ready, true);
    AG_INFO("\"storage open, ready\" path=%s", so.path);

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig)) continue;
        if (sig == SIGHUP) {
            ag_errmsg_t re = {{0}, -1};
            ag_app_reload(&app, &re);
            continue;
        }
        AG_INFO("\"shutting down\" signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
        break;
    }
    rc = 0;
out:
    if (app.http) ag_http_stop(app.http, 30000);
    app.http = NULL;
    atomic_store(&app.ready, false);
    ag_models_stop(app.models);
    app.models = NULL;
    if (app.store) ag_store_close(app.store);
    app.store = NULL;
    ag_qcache_free(app.qcache);
    app.qcache = NULL;
    ag_metrics_free(app.metrics);
    ag_config_free(&app.cfg);
    free(app.flag_keys);
    free(app.flag_values);
    if (rc == 0) AG_INFO("\"stopped cleanly\"");
    return rc;
}
