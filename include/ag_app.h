/* ag_app.h - the running daemon: configuration, store, metrics and the HTTP API that ties them
 * together. main.c owns one ag_app_t; the API handlers borrow it.
 */
#ifndef AG_APP_H
#define AG_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "ag_config.h"
#include "ag_http.h"
#include "ag_metrics.h"
#include "ag_models.h"
#include "ag_qcache.h"
#include "ag_store.h"

typedef struct ag_app {
    /* Settings. `cfg` is replaced as a whole on reload under cfg_lock; handlers copy the scalar
     * settings they need with ag_app_settings. */
    pthread_mutex_t cfg_lock;
    ag_config_t cfg;
    const char *config_file;    /* NULL when running on defaults and flags only */
    int nflags;                 /* command-line settings, re-applied over the file on reload */
    const char **flag_keys;
    const char **flag_values;

    ag_store_t *store;          /* NULL until storage is open (then /-/ready says 200) */
    _Atomic bool ready;
    ag_metrics_t *metrics;
    ag_qcache_t *qcache;        /* range-query result cache; fed by the store's write hook */
    ag_models_t *models;        /* forecasting service (set before `ready`) */
    ag_http_server_t *http;
    int64_t start_time_ms;
    _Atomic bool reload_requested;
    _Atomic bool last_reload_ok;
    _Atomic int64_t last_reload_ms;
} ag_app_t;

/* Rebuilds the configuration (defaults, file, flags) and applies what can change at run time:
 * log level, limits, query settings (the query cache budget too). Settings that need a restart (listen address, storage
 * path and size) are reported in the log and left as they are. On failure the old
 * configuration stays in force and `e` says why. */
int ag_app_reload(ag_app_t *app, ag_errmsg_t *e);
/* Builds the configuration from defaults, the file (if any) and the flags. */
int ag_app_build_config(const ag_app_t *app, ag_config_t *out, ag_errmsg_t *e);
/* A consistent copy of the current configuration's scalar settings (string pointers are NULL). */
void ag_app_settings(ag_app_t *app, ag_config_t *out);

/* The HTTP entry point: routes a request to its handler (ag_http_handler_fn). */
void ag_api_handle(void *app, const ag_http_req_t *req, ag_http_resp_t *resp);

#endif
