/* api.c - routing for augurd's HTTP API plus the small endpoints: health, readiness, reload,
 * /metrics, build and runtime information, and the empty answers Grafana expects from
 * Prometheus (exemplars, rules, alerts).
 *
 * Shapes, status codes and texts follow Prometheus' web/api/v1 so that promtool, Grafana, KEDA
 * and prometheus-adapter treat augurd as a Prometheus.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ag_log.h"
#include "ag_time.h"
#include "ag_version.h"
#include "ag_web.h"
#include "api_int.h"

static int error_status(const char *type)
{
    if (strcmp(type, "bad_data") == 0) return 400;
    if (strcmp(type, "execution") == 0) return 422;
    if (strcmp(type, "timeout") == 0) return 503;
    if (strcmp(type, "canceled") == 0) return 499;
    if (strcmp(type, "not_found") == 0) return 404;
    if (strcmp(type, "unavailable") == 0) return 503;
    return 500;
}

void api_error(ag_http_resp_t *r, const char *type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ag_buf_reset(&r->body);
    r->status = error_status(type);
    r->content_type = "application/json";
    ag_buf_printf(&r->body, "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":", type);
    ag_buf_json_str(&r->body, msg, strlen(msg));
    ag_buf_putc(&r->body, '}');
}

void api_success_begin(ag_http_resp_t *r)
{
    r->status = 200;
    r->content_type = "application/json";
    ag_buf_puts(&r->body, "{\"status\":\"success\",\"data\":");
}

void api_success_end(ag_http_resp_t *r, const char *warning)
{
    if (warning) {
        ag_buf_puts(&r->body, ",\"warnings\":[");
        ag_buf_json_str(&r->body, warning, strlen(warning));
        ag_buf_putc(&r->body, ']');
    }
    ag_buf_putc(&r->body, '}');
}

void api_text(ag_http_resp_t *r, int status, const char *text)
{
    r->status = status;
    r->content_type = "text/plain; charset=utf-8";
    ag_buf_puts(&r->body, text);
}

bool api_method_is(const ag_http_req_t *req, const char *m) { return strcmp(req->method, m) == 0; }

static void iso_time(int64_t ms, char *out, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static ag_handler_t buildinfo(ag_http_resp_t *r)
{
    api_success_begin(r);
    /* No "features" object: Grafana would take us for Mimir and call ruler APIs. */
    ag_buf_printf(&r->body,
                  "{\"version\":\"%s\",\"revision\":\"%s\",\"branch\":\"%s\",\"buildUser\":\"augur\","
                  "\"buildDate\":\"%s\",\"goVersion\":\"none (C11)\"}",
                  AG_VERSION, AG_REVISION, AG_BRANCH, AG_BUILD_DATE);
    api_success_end(r, NULL);
    return AG_H_STATUS;
}

static ag_handler_t runtimeinfo(ag_app_t *app, ag_http_resp_t *r)
{
    char start[64], now[64], reload[64], cwd[1024], host[256];
    iso_time(app->start_time_ms, start, sizeof start);
    iso_time(ag_now_ms(), now, sizeof now);
    iso_time(atomic_load(&app->last_reload_ms), reload, sizeof reload);
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "");
    if (gethostname(host, sizeof host)) strcpy(host, "");
    ag_store_stats_t st;
    memset(&st, 0, sizeof st);
    if (app->store) ag_store_stats(app->store, &st);
    api_success_begin(r);
    ag_buf_printf(&r->body, "{\"startTime\":\"%s\",\"CWD\":", start);
    ag_buf_json_str(&r->body, cwd, strlen(cwd));
    ag_buf_puts(&r->body, ",\"hostname\":");
    ag_buf_json_str(&r->body, host, strlen(host));
    ag_buf_printf(&r->body,
                  ",\"serverTime\":\"%s\",\"reloadConfigSuccess\":%s,\"lastConfigTime\":\"%s\","
                  "\"timeSeriesCount\":%llu,\"corruptionCount\":0,\"goroutineCount\":0,"
                  "\"GOMAXPROCS\":%ld,\"GOGC\":\"\",\"GODEBUG\":\"\",\"storageRetention\":\"unlimited\"}",
                  now, atomic_load(&app->last_reload_ok) ? "true" : "false", reload,
                  (unsigned long long)st.series, sysconf(_SC_NPROCESSORS_ONLN));
    api_success_end(r, NULL);
    return AG_H_STATUS;
}

static ag_handler_t flags(ag_app_t *app, ag_http_resp_t *r)
{
    ag_config_t c;
    pthread_mutex_lock(&app->cfg_lock);
    char listen[256], path[1024];
    snprintf(listen, sizeof listen, "%s", app->cfg.listen_address);
    snprintf(path, sizeof path, "%s", app->cfg.storage_path);
    pthread_mutex_unlock(&app->cfg_lock);
    ag_app_settings(app, &c);
    char lb[32], to[32];
    ag_format_duration(c.lookback_delta_ms, lb, sizeof lb);
    ag_format_duration(c.query_timeout_ms, to, sizeof to);
    api_success_begin(r);
    ag_buf_puts(&r->body, "{\"config.file\":");
    const char *cf = app->config_file ? app->config_file : "";
    ag_buf_json_str(&r->body, cf, strlen(cf));
    ag_buf_puts(&r->body, ",\"web.listen-address\":");
    ag_buf_json_str(&r->body, listen, strlen(listen));
    ag_buf_puts(&r->body, ",\"storage.path\":");
    ag_buf_json_str(&r->body, path, strlen(path));
    ag_buf_printf(&r->body,
                  ",\"query.lookback-delta\":\"%s\",\"query.timeout\":\"%s\","
                  "\"query.max-samples\":\"%llu\"}",
                  lb, to, (unsigned long long)c.query_max_samples);
    api_success_end(r, NULL);
    return AG_H_STATUS;
}

static ag_handler_t metrics(ag_app_t *app, ag_http_resp_t *r)
{
    ag_store_stats_t st;
    bool have = app->store && atomic_load(&app->ready);
    if (have) ag_store_stats(app->store, &st);
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    ag_qcache_stats_t qs;
    ag_qcache_stats(app->qcache, &qs);
    ag_models_stats_t fs;
    if (have) ag_models_stats(app->models, &fs);
    ag_metrics_render(app->metrics, have ? &st : NULL, &qs, have ? &fs : NULL, &r->body);
    return AG_H_METRICS;
}

static ag_handler_t reload(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r)
{
    if (!api_method_is(req, "POST") && !api_method_is(req, "PUT")) {
        api_text(r, 405, "Only POST or PUT requests allowed");
        return AG_H_RELOAD;
    }
    ag_errmsg_t e = {{0}, -1};
    if (ag_app_reload(app, &e)) {
        char msg[400];
        snprintf(msg, sizeof msg, "failed to reload config: %s\n", e.msg);
        api_text(r, 500, msg);
    } else {
        r->status = 200;
    }
    return AG_H_RELOAD;
}

/* GET /api/v1/scalers[/<name>]: the latest recommendation of each scaler policy, in a shape
 * KEDA's metrics-api scaler reads with valueLocation "desired_replicas" (README). */
static ag_handler_t scalers(ag_app_t *app, const char *name, ag_http_resp_t *r)
{
    if (!atomic_load(&app->ready) || !app->models) {
        r->status = 503;
        r->content_type = "application/json";
        ag_buf_puts(&r->body, "{\"error\":\"not ready\"}");
        return AG_H_OTHER_API;
    }
    r->content_type = "application/json";
    int rc = ag_models_scalers_json(app->models, name, &r->body);
    if (rc == AG_ENOTFOUND) {
        ag_buf_reset(&r->body);
        r->status = 404;
        ag_buf_puts(&r->body, "{\"error\":\"no scaler named ");
        ag_buf_json_str(&r->body, name, strlen(name));
        ag_buf_puts(&r->body, "\"}");
        return AG_H_OTHER_API;
    }
    r->status = 200;
    return AG_H_OTHER_API;
}

static ag_handler_t route(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r)
{
    const char *p = req->path;
    if (req->body_too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body exceeds the limit of %llu bytes\n",
                 (unsigned long long)req->max_body);
        api_text(r, 413, msg);
        if (strcmp(p, "/api/v1/write") == 0) {
            ag_metrics_rejected(app->metrics, AG_REJ_TOO_LARGE, 0);
            return AG_H_WRITE;
        }
        return AG_H_OTHER_API;
    }
    if (api_method_is(req, "OPTIONS")) {
        r->status = 204;
        ag_http_resp_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        ag_http_resp_header(r, "Access-Control-Allow-Headers",
                            "Accept, Authorization, Content-Type, Origin");
        ag_http_resp_header(r, "Access-Control-Expose-Headers", "Date");
        return AG_H_OTHER_API;
    }
    if (strcmp(p, "/-/healthy") == 0) {
        api_text(r, 200, "Augur is Healthy.\n");
        return AG_H_HEALTHY;
    }
    if (strcmp(p, "/-/ready") == 0) {
        if (atomic_load(&app->ready)) api_text(r, 200, "Augur is Ready.\n");
        else api_text(r, 503, "Service Unavailable");
        return AG_H_READY;
    }
    if (strcmp(p, "/-/reload") == 0) return reload(app, req, r);
    if (strcmp(p, "/metrics") == 0) return metrics(app, r);
    if (strncmp(p, "/api/v1/", 8) != 0) {
        if (api_method_is(req, "GET") || api_method_is(req, "HEAD")) {
            /* The dashboard (web/, embedded): / and Prometheus' /graph (alert generator URLs)
             * are the page, /assets/ its files. */
            const char *want = !strcmp(p, "/graph") ? "/" : p;
            for (size_t i = 0; i < ag_web_nassets; i++) {
                if (strcmp(ag_web_assets[i].path, want) != 0) continue;
                r->status = 200;
                r->content_type = ag_web_assets[i].type;
                ag_buf_append(&r->body, ag_web_assets[i].data, ag_web_assets[i].len);
                ag_http_resp_header(r, "Cache-Control", want[1] ? "max-age=3600" : "no-cache");
                return AG_H_OTHER_API;
            }
        }
        api_text(r, 404, "404 page not found\n");
        return AG_H_NOT_FOUND;
    }
    const char *ep = p + 8;
    bool get_post = api_method_is(req, "GET") || api_method_is(req, "POST");
    bool get = api_method_is(req, "GET");
    if (strcmp(ep, "status/buildinfo") == 0 && get) return buildinfo(r);
    if (strcmp(ep, "status/runtimeinfo") == 0 && get) return runtimeinfo(app, r);
    if (strcmp(ep, "status/flags") == 0 && get) return flags(app, r);
    if (strcmp(ep, "write") == 0) {
        if (!api_method_is(req, "POST")) {
            api_text(r, 405, "method not allowed: remote write needs POST\n");
            return AG_H_WRITE;
        }
        if (!atomic_load(&app->ready)) {
            api_text(r, 503, "Service Unavailable");
            return AG_H_WRITE;
        }
        return api_write(app, req, r);
    }
    if (strcmp(ep, "format_query") == 0 && get_post) return api_format_query(app, req, r);
    if (strcmp(ep, "query_exemplars") == 0 && get_post) {
        api_success_begin(r);
        ag_buf_puts(&r->body, "[]");
        api_success_end(r, NULL);
        return AG_H_OTHER_API;
    }
    if ((strcmp(ep, "rules") == 0 || strcmp(ep, "alerts") == 0) && get) {
        /* Augur's alert rules (alerts: in the config) in Prometheus' format. */
        bool rules = ep[0] == 'r';
        api_success_begin(r);
        if (app->models && atomic_load(&app->ready))
            ag_models_alerts_json(app->models, rules, &r->body);
        else
            ag_buf_puts(&r->body, rules ? "{\"groups\":[]}" : "{\"alerts\":[]}");
        api_success_end(r, NULL);
        return AG_H_OTHER_API;
    }
    if (strcmp(ep, "status/config") == 0 && get) {
        /* The configuration in force (secrets redacted), as Prometheus answers it. */
        ag_buf_t y = AG_BUF_INIT;
        pthread_mutex_lock(&app->cfg_lock);
        ag_config_dump_yaml(&app->cfg, &y);
        pthread_mutex_unlock(&app->cfg_lock);
        api_success_begin(r);
        ag_buf_puts(&r->body, "{\"yaml\":");
        ag_buf_json_str(&r->body, y.data ? y.data : "", y.len);
        ag_buf_putc(&r->body, '}');
        api_success_end(r, NULL);
        ag_buf_free(&y);
        return AG_H_STATUS;
    }
    if (strcmp(ep, "models") == 0 && get) {
        /* The configured forecasting models (the dashboard plots their inputs). */
        api_success_begin(r);
        ag_buf_putc(&r->body, '[');
        pthread_mutex_lock(&app->cfg_lock);
        for (size_t i = 0; i < app->cfg.nmodels; i++) {
            const ag_model_def_t *m = &app->cfg.models[i];
            if (i) ag_buf_putc(&r->body, ',');
            ag_buf_puts(&r->body, "{\"name\":");
            ag_buf_json_str(&r->body, m->name, strlen(m->name));
            ag_buf_puts(&r->body, ",\"expr\":");
            ag_buf_json_str(&r->body, m->expr, strlen(m->expr));
            ag_buf_printf(&r->body, ",\"step_seconds\":%.3f,\"horizon_seconds\":%.3f}",
                          (double)m->step_ms / 1000.0, (double)m->horizon_ms / 1000.0);
        }
        pthread_mutex_unlock(&app->cfg_lock);
        ag_buf_putc(&r->body, ']');
        api_success_end(r, NULL);
        return AG_H_OTHER_API;
    }
    if ((strcmp(ep, "scalers") == 0 || strncmp(ep, "scalers/", 8) == 0) && get)
        return scalers(app, ep[7] == '/' ? ep + 8 : NULL, r);
    bool known = strcmp(ep, "query") == 0 || strcmp(ep, "query_range") == 0 ||
                 strcmp(ep, "series") == 0 || strcmp(ep, "labels") == 0 ||
                 strcmp(ep, "metadata") == 0 || strncmp(ep, "label/", 6) == 0;
    if (known && !atomic_load(&app->ready)) {
        api_text(r, 503, "Service Unavailable");
        return AG_H_OTHER_API;
    }
    if (strcmp(ep, "query") == 0 && get_post) return api_query(app, req, r);
    if (strcmp(ep, "query_range") == 0 && get_post) return api_query_range(app, req, r);
    if (strcmp(ep, "series") == 0 && get_post) return api_series(app, req, r);
    if (strcmp(ep, "labels") == 0 && get_post) return api_labels(app, req, r);
    if (strcmp(ep, "metadata") == 0 && get) return api_metadata(app, req, r);
    if (strncmp(ep, "label/", 6) == 0 && get) {
        const char *name = ep + 6;
        const char *slash = strchr(name, '/');
        if (slash && strcmp(slash, "/values") == 0) {
            char nm[512];
            size_t nl = (size_t)(slash - name);
            if (nl < sizeof nm) {
                memcpy(nm, name, nl);
                nm[nl] = 0;
                return api_label_values(app, req, r, nm);
            }
        }
    }
    if (known) {
        api_text(r, 405, "method not allowed\n");
        return AG_H_OTHER_API;
    }
    api_text(r, 404, "404 page not found\n");
    return AG_H_NOT_FOUND;
}

void ag_api_handle(void *ctx, const ag_http_req_t *req, ag_http_resp_t *resp)
{
    ag_app_t *app = ctx;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    ag_metrics_in_flight(app->metrics, 1);
    ag_handler_t h = route(app, req, resp);
    ag_metrics_in_flight(app->metrics, -1);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    ag_metrics_request(app->metrics, h, resp->status, secs);
    if (resp->status >= 500)
        AG_WARN("\"request failed\" method=%s path=%s status=%d", req->method, req->path,
                resp->status);
    else
        AG_DEBUG("\"request\" method=%s path=%s status=%d seconds=%.6f", req->method, req->path,
                 resp->status, secs);
}
