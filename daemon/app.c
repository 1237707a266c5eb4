/* app.c - configuration life cycle of the running daemon: building it from defaults, file and
 * flags, reloading it on SIGHUP or POST /-/reload, and handing consistent copies to handlers. */
#include <stdio.h>
#include <string.h>

#include "ag_app.h"
#include "ag_log.h"
#include "ag_time.h"

int ag_app_build_config(const ag_app_t *app, ag_config_t *out, ag_errmsg_t *e)
{
    int rc = ag_config_defaults(out);
    if (rc) return ag_errmsg_set(e, rc, -1, "out of memory");
    if (app->config_file && (rc = ag_config_load_file(app->config_file, out, e))) {
        ag_config_free(out);
        return rc;
    }
    for (int i = 0; i < app->nflags; i++) {
        ag_errmsg_t fe = {{0}, -1};
        if ((rc = ag_config_set(out, app->flag_keys[i], app->flag_values[i], &fe))) {
            ag_config_free(out);
            return ag_errmsg_set(e, rc, -1, "flag --%s: %s", app->flag_keys[i], fe.msg);
        }
    }
    return AG_OK;
}

void ag_app_settings(ag_app_t *app, ag_config_t *out)
{
    pthread_mutex_lock(&app->cfg_lock);
    *out = app->cfg;
    pthread_mutex_unlock(&app->cfg_lock);
    out->listen_address = NULL;
    out->storage_path = NULL;
}

int ag_app_reload(ag_app_t *app, ag_errmsg_t *e)
{
    ag_config_t next;
    int rc = ag_app_build_config(app, &next, e);
    int64_t now = ag_now_ms();
    if (rc) {
        atomic_store(&app->last_reload_ok, false);
        ag_metrics_config_reload(app->metrics, false, now);
        AG_ERROR("\"configuration reload failed, keeping the previous configuration\" err=\"%s\"",
                 e->msg);
        return rc;
    }
    pthread_mutex_lock(&app->cfg_lock);
    if (strcmp(next.listen_address, app->cfg.listen_address) != 0)
        AG_WARN("\"web.listen_address changed; restart augurd to apply it\" new=%s",
                next.listen_address);
    if (strcmp(next.storage_path, app->cfg.storage_path) != 0 || next.map_size != app->cfg.map_size)
        AG_WARN("\"storage settings changed; restart augurd to apply them\"");
    /* Settings that need a restart keep their running values, so what we report is what runs. */
    ag_config_t old = app->cfg;
    app->cfg = next;
    char *l = app->cfg.listen_address, *p = app->cfg.storage_path;
    app->cfg.listen_address = old.listen_address;
    app->cfg.storage_path = old.storage_path;
    app->cfg.map_size = old.map_size;
    old.listen_address = l;
    old.storage_path = p;
    pthread_mutex_unlock(&app->cfg_lock);
    ag_config_free(&old);
    ag_log_set_level(app->cfg.log_level);
    if (app->http) ag_http_set_max_body(app->http, app->cfg.max_request_bytes);
    ag_qcache_set_max_bytes(app->qcache, app->cfg.query_cache_max_bytes);
    if (app->store) {
        ag_store_set_limits(app->store, app->cfg.max_series, app->cfg.max_series_per_metric);
        ag_store_set_ooo_window(app->store, app->cfg.ooo_window_ms);
        ag_store_set_retention(app->store, app->cfg.retention_ms);
    }
    pthread_mutex_lock(&app->cfg_lock);
    rc = app->models ? ag_models_reload(app->models, &app->cfg) : AG_OK;
    pthread_mutex_unlock(&app->cfg_lock);
    if (rc) AG_ERROR("\"out of memory applying the models configuration\"");
    atomic_store(&app->last_reload_ok, true);
    atomic_store(&app->last_reload_ms, now);
    ag_metrics_config_reload(app->metrics, true, now);
    AG_INFO("\"configuration reloaded\" file=%s", app->config_file ? app->config_file : "(none)");
    return AG_OK;
}
