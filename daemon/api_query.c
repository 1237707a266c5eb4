/* api_query.c - the read side of the Prometheus HTTP API: query, query_range, format_query,
 * series, labels, label values and metadata, with Prometheus' parameter rules (times as unix
 * seconds or RFC 3339, durations as seconds or PromQL units, GET or form POST, repeated
 * match[]) and its JSON shapes (values as strings, timestamps as seconds, [] never null).
 * query_range goes through the result cache (ag_qcache.h) for the steps that lie in the past.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_eval.h"
#include "ag_labels.h"
#include "ag_promql.h"
#include "ag_qcache.h"
#include "ag_time.h"
#include "api_int.h"

#define MAX_POINTS 11000

/* ---- parameters -------------------------------------------------------------------------- */

static bool time_param(const ag_http_req_t *req, ag_http_resp_t *r, const char *name, int64_t def,
                       int64_t *out)
{
    const char *v = ag_http_param(req, name);
    if (!v || !*v) {
        *out = def;
        return true;
    }
    ag_errmsg_t e = {{0}, -1};
    if (ag_parse_api_time(v, out, &e)) {
        api_error(r, "bad_data", "invalid parameter \"%s\": %s", name, e.msg);
        return false;
    }
    return true;
}

static bool required_time(const ag_http_req_t *req, ag_http_resp_t *r, const char *name,
                          int64_t *out)
{
    const char *v = ag_http_param(req, name);
    if (!v || !*v) {
        api_error(r, "bad_data", "invalid parameter \"%s\": cannot parse \"\" to a valid timestamp",
                  name);
        return false;
    }
    return time_param(req, r, name, 0, out);
}

static bool limit_param(const ag_http_req_t *req, ag_http_resp_t *r, uint64_t *out)
{
    const char *v = ag_http_param(req, "limit");
    *out = 0;
    if (!v || !*v) return true;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end) {
        api_error(r, "bad_data", "invalid parameter \"limit\": cannot parse \"%s\" to an integer", v);
        return false;
    }
    if (n < 0) {
        api_error(r, "bad_data", "invalid parameter \"limit\": limit must be non-negative");
        return false;
    }
    *out = (uint64_t)n;
    return true;
}

static bool eval_opts(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r,
                      ag_eval_opts_t *o)
{
    ag_config_t c;
    ag_app_settings(app, &c);
    o->lookback_ms = c.lookback_delta_ms;
    o->max_samples = c.query_max_samples;
    const char *lb = ag_http_param(req, "lookback_delta");
    if (lb && *lb) {
        ag_errmsg_t e = {{0}, -1};
        if (ag_parse_api_duration(lb, &o->lookback_ms, &e) || o->lookback_ms <= 0) {
            api_error(r, "bad_data", "invalid parameter \"lookback_delta\": %s",
                      e.msg[0] ? e.msg : "must be positive");
            return false;
        }
    }
    /* `timeout` can only shorten query.timeout; an empty value means none was given. */
    o->timeout_ms = c.query_timeout_ms;
    const char *to = ag_http_param(req, "timeout");
    if (to && *to) {
        int64_t ms;
        ag_errmsg_t e = {{0}, -1};
        if (ag_parse_api_duration(to, &ms, &e)) {
            api_error(r, "bad_data", "invalid parameter \"timeout\": %s", e.msg);
            return false;
        }
        if (ms > 0 && ms < o->timeout_ms) o->timeout_ms = ms;
    }
    return true;
}

static bool parse_query(const ag_http_req_t *req, ag_http_resp_t *r, ag_pq_node_t **out)
{
    size_t qlen = 0;
    const char *q = ag_http_param_n(req, "query", &qlen);
    if (!q) q = "";
    ag_errmsg_t e = {{0}, -1};
    int rc = ag_promql_parse(q, qlen, out, &e);
    if (rc == AG_ENOMEM) {
        api_error(r, "internal", "out of memory parsing the query");
        return false;
    }
    if (rc) {
        api_error(r, "bad_data", "invalid parameter \"query\": %s", e.msg);
        return false;
    }
    return true;
}

/* ---- rendering --------------------------------------------------------------------------- */

static void render_labels(ag_buf_t *b, const char *enc, size_t len)
{
    ag_buf_putc(b, '{');
    size_t i = 0, nl, vl;
    const char *name, *val;
    bool first = true;
    while (ag_labels_next(enc, len, &i, &name, &nl, &val, &vl)) {
        if (!first) ag_buf_putc(b, ',');
        first = false;
        ag_buf_json_str(b, name, nl);
        ag_buf_putc(b, ':');
        ag_buf_json_str(b, val, vl);
    }
    ag_buf_putc(b, '}');
}

/* Series i's points [k0, k1) of a vector or matrix, with what goes before and after them when
 * k0 is its first point or k1 its end: a part of the result list that can be rendered on its
 * own and concatenated. */
static void render_part(ag_buf_t *b, const ag_value_t *v, size_t i, size_t k0, size_t k1)
{
    const ag_series_val_t *s = &v->series[i];
    bool matrix = v->type == AG_VAL_MATRIX;
    if (k0 == 0) {
        if (i) ag_buf_putc(b, ',');
        ag_buf_puts(b, "{\"metric\":");
        render_labels(b, s->labels, s->labels_len);
        ag_buf_puts(b, matrix ? ",\"values\":[" : ",\"value\":");
    }
    for (size_t k = k0; k < k1; k++) {
        if (k) ag_buf_putc(b, ',');
        ag_buf_sample_json(b, s->points[k].t, s->points[k].v);
    }
    if (k1 == (matrix ? s->n : 1)) ag_buf_puts(b, matrix ? "]}" : "}");
}

/* Points [from, to) of the answer, counted over all series in order. */
typedef struct render_job {
    ag_buf_t b;
    const ag_value_t *v;
    size_t from, to;
} render_job_t;

static size_t points_of(const ag_value_t *v, size_t i)
{
    return v->type == AG_VAL_MATRIX ? v->series[i].n : 1;
}

static void *render_range(void *arg)
{
    render_job_t *j = arg;
    size_t pos = 0;
    for (size_t i = 0; i < j->v->n && pos < j->to; i++) {
        size_t n = points_of(j->v, i);
        if (pos + n > j->from) {
            size_t k0 = j->from > pos ? j->from - pos : 0;
            size_t k1 = j->to - pos < n ? j->to - pos : n;
            render_part(&j->b, j->v, i, k0, k1);
        }
        pos += n;
    }
    return NULL;
}

/* Answers from this many points on are rendered by two threads, each writing half of the
 * points (formatting them is most of the work) into a buffer of its own. */
#define RENDER_PARALLEL_POINTS 8192

static void render_points(ag_buf_t *b, const ag_value_t *v)
{
    size_t total = 0;
    for (size_t i = 0; i < v->n; i++) total += points_of(v, i);
    render_job_t first = {AG_BUF_INIT, v, 0, total}, second = {AG_BUF_INIT, v, total / 2, total};
    pthread_t th;
    if (total < RENDER_PARALLEL_POINTS ||
        pthread_create(&th, NULL, render_range, &second) != 0) {
        first.b = *b;
        render_range(&first);
        *b = first.b;
        return;
    }
    first.to = total / 2;
    first.b = *b;
    render_range(&first);
    *b = first.b;
    pthread_join(th, NULL);
    if (!ag_buf_ok(&second.b)) b->oom = true;
    else ag_buf_append(b, second.b.data, second.b.len);
    ag_buf_free(&second.b);
}

static void render_value(ag_buf_t *b, const ag_value_t *v)
{
    switch (v->type) {
    case AG_VAL_SCALAR:
        /* 2.42 writes a scalar result with FormatFloat 'f' (never an exponent), unlike
         * samples of vectors and matrices. */
        ag_buf_puts(b, "{\"resultType\":\"scalar\",\"result\":[");
        ag_buf_ts_seconds(b, v->t);
        ag_buf_puts(b, ",\"");
        ag_buf_float_style(b, v->scalar, AG_FLOAT_GO_F);
        ag_buf_puts(b, "\"]");
        ag_buf_putc(b, '}');
        return;
    case AG_VAL_STRING:
        ag_buf_puts(b, "{\"resultType\":\"string\",\"result\":[");
        ag_buf_ts_seconds(b, v->t);
        ag_buf_putc(b, ',');
        ag_buf_json_str(b, v->str, v->str_len);
        ag_buf_puts(b, "]}");
        return;
    case AG_VAL_VECTOR:
    case AG_VAL_MATRIX: break;
    }
    bool matrix = v->type == AG_VAL_MATRIX;
    ag_buf_printf(b, "{\"resultType\":\"%s\",\"result\":[", matrix ? "matrix" : "vector");
    render_points(b, v);
    ag_buf_puts(b, "]}");
}

static void eval_error(ag_http_resp_t *r, int rc, const ag_errmsg_t *e)
{
    switch (rc) {
    case AG_EINVAL:
    case AG_EUNSUPPORTED: api_error(r, "bad_data", "%s", e->msg); break;
    case AG_ELIMIT:
    case AG_EEXEC: api_error(r, "execution", "%s", e->msg); break;
    case AG_ETIMEOUT: api_error(r, "timeout", "query timed out in expression evaluation"); break;
    default: api_error(r, "internal", "%s", e->msg[0] ? e->msg : ag_strerror(rc)); break;
    }
}

/* ---- handlers ---------------------------------------------------------------------------- */

ag_handler_t api_query(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r)
{
    int64_t t;
    ag_eval_opts_t o = {0};
    ag_pq_node_t *n = NULL;
    if (!time_param(req, r, "time", ag_now_ms(), &t) || !eval_opts(app, req, r, &o) ||
        !parse_query(req, r, &n))
        return AG_H_QUERY;
    ag_value_t v;
    ag_errmsg_t e = {{0}, -1};
    int rc = ag_eval_instant(app->store, n, t, &o, &v, &e);
    ag_promql_free(n);
    if (rc) {
        eval_error(r, rc, &e);
        return AG_H_QUERY;
    }
    api_success_begin(r);
    render_value(&r->body, &v);
    api_success_end(r, NULL);
    ag_value_free(&v);
    return AG_H_QUERY;
}

/* What the result cache needs to evaluate the steps it does not hold. */
typedef struct range_eval {
    ag_store_t *store;
    const ag_pq_node_t *n;
    int64_t step;
    const ag_eval_opts_t *o;
} range_eval_t;

static int range_eval(void *ctx, int64_t start, int64_t end, ag_value_t *out, ag_errmsg_t *e)
{
    const range_eval_t *re = ctx;
    return ag_eval_range(re->store, re->n, start, end, re->step, re->o, out, e);
}

ag_handler_t api_query_range(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r)
{
    int64_t start, end, step;
    ag_eval_opts_t o = {0};
    if (!required_time(req, r, "start", &start) || !required_time(req, r, "end", &end))
        return AG_H_QUERY_RANGE;
    if (end < start) {
        api_error(r, "bad_data", "invalid parameter \"end\": end timestamp must not be before start time");
        return AG_H_QUERY_RANGE;
    }
    const char *sp = ag_http_param(req, "step");
    ag_errmsg_t e = {{0}, -1};
    if (!sp || !*sp || ag_parse_api_duration(sp, &step, &e)) {
        api_error(r, "bad_data", "invalid parameter \"step\": %s",
                  e.msg[0] ? e.msg : "cannot parse \"\" to a valid duration");
        return AG_H_QUERY_RANGE;
    }
    if (step <= 0) {
        api_error(r, "bad_data",
                  "invalid parameter \"step\": zero or negative query resolution step widths are "
                  "not accepted. Try a positive integer");
        return AG_H_QUERY_RANGE;
    }
    if ((uint64_t)(end - start) / (uint64_t)step > MAX_POINTS) {
        api_error(r, "bad_data",
                  "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing "
                  "the query resolution (?step=XX)");
        return AG_H_QUERY_RANGE;
    }
    ag_pq_node_t *n = NULL;
    if (!eval_opts(app, req, r, &o) || !parse_query(req, r, &n)) return AG_H_QUERY_RANGE;
    ag_value_t v;
    range_eval_t re = {app->store, n, step, &o};
    int rc = ag_qcache_range(app->qcache, n, start, end, step, o.lookback_ms, ag_now_ms(),
                             range_eval, &re, &v, &e);
    ag_promql_free(n);
    if (rc) {
        eval_error(r, rc, &e);
        return AG_H_QUERY_RANGE;
    }
    api_success_begin(r);
    render_value(&r->body, &v);
    api_success_end(r, NULL);
    ag_value_free(&v);
    return AG_H_QUERY_RANGE;
}

ag_handler_t api_format_query(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r)
{
    (void)app;
    ag_pq_node_t *n = NULL;
    if (!parse_query(req, r, &n)) return AG_H_FORMAT_QUERY;
    ag_buf_t text = AG_BUF_INIT;
    ag_promql_format(n, &text);
    ag_promql_free(n);
    api_success_begin(r);
    ag_buf_json_str(&r->body, text.data ? text.data : "", text.len);
    api_success_end(r, NULL);
    ag_buf_free(&text);
    return AG_H_FORMAT_QUERY;
}

/* The match[] selectors of a request, parsed. */
typedef struct selectors {
    ag_pq_node_t **v;
    size_t n;
} selectors_t;

static void selectors_free(selectors_t *s)
{
    for (size_t i = 0; i < s->n; i++) ag_promql_free(s->v[i]);
    free(s->v);
}

static bool parse_selectors(const ag_http_req_t *req, ag_http_resp_t *r, selectors_t *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < req->nparams; i++) {
        if (strcmp(req->params[i].key, "match[]") != 0) continue;
        const char *q = req->params[i].value;
        ag_pq_node_t *n = NULL;
        ag_errmsg_t e = {{0}, -1};
        int rc = ag_promql_parse(q, req->params[i].value_len, &n, &e);
        if (!rc && n->type == AG_PQ_VECTOR_SEL &&
            (n->u.sel.offset_ms || n->u.sel.at != AG_PQ_AT_NONE)) {
            /* Prometheus' ParseMetricSelector takes a bare selector only. */
            ag_promql_free(n);
            rc = AG_EINVAL;
            snprintf(e.msg, sizeof e.msg, "1:1: parse error: unexpected %s in a series selector",
                     strstr(q, "offset") ? "<offset>" : "<@>");
        } else if (!rc && n->type != AG_PQ_VECTOR_SEL) {
            ag_promql_free(n);
            rc = AG_EINVAL;
            snprintf(e.msg, sizeof e.msg, "1:1: parse error: expected a vector selector, got \"%.100s\"", q);
        }
        if (rc) {
            selectors_free(out);
            api_error(r, "bad_data", "invalid parameter \"match[]\": %s", e.msg);
            return false;
        }
        ag_pq_node_t **nv = realloc(out->v, (out->n + 1) * sizeof *nv);
        if (!nv) {
            ag_promql_free(n);
            selectors_free(out);
            api_error(r, "internal", "out of memory");
            return false;
        }
        out->v = nv;
        out->v[out->n++] = n;
    }
    return true;
}

static bool range_params(const ag_http_req_t *req, ag_http_resp_t *r, int64_t *start, int64_t *end)
{
    if (!time_param(req, r, "start", AG_TIME_MIN_MS, start) ||
        !time_param(req, r, "end", AG_TIME_MAX_MS, end))
        return false;
    if (*end < *start) {
        api_error(r, "bad_data", "invalid parameter \"end\": end timestamp must not be before start time");
        return false;
    }
    return true;
}

static int cmp_series_data(const void *a, const void *b)
{
    const ag_series_data_t *x = a, *y = b;
    return ag_labels_cmp(x->labels, x->labels_len, y->labels, y->labels_len);
}

ag_handler_t api_series(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r)
{
    int64_t start, end;
    uint64_t limit;
    selectors_t sels;
    if (!range_params(req, r, &start, &end) || !limit_param(req, r, &limit))
        return AG_H_SERIES;
    if (!parse_selectors(req, r, &sels)) return AG_H_SERIES;
    if (sels.n == 0) {
        api_error(r, "bad_data", "no match[] parameter provided");
        return AG_H_SERIES;
    }
    ag_selection_t all = {0};
    int rc = AG_OK;
    ag_errmsg_t e = {{0}, -1};
    for (size_t i = 0; i < sels.n && !rc; i++) {
        ag_selection_t sel;
        rc = ag_store_select(app->store, sels.v[i]->u.sel.matchers, sels.v[i]->u.sel.nmatchers,
                             start, end, false, 0, &sel, &e);
        if (rc) break;
        ag_series_data_t *nv = realloc(all.series, (all.n + sel.n + 1) * sizeof *nv);
        if (!nv) {
            ag_selection_free(&sel);
            rc = AG_ENOMEM;
            break;
        }
        all.series = nv;
        if (sel.n) memcpy(all.series + all.n, sel.series, sel.n * sizeof *sel.series);
        all.n += sel.n;
        free(sel.series); /* the entries moved into `all` */
    }
    selectors_free(&sels);
    if (rc) {
        ag_selection_free(&all);
        api_error(r, "internal", "%s", e.msg[0] ? e.msg : ag_strerror(rc));
        return AG_H_SERIES;
    }
    if (sels.n > 1 && all.n > 1) qsort(all.series, all.n, sizeof *all.series, cmp_series_data);
    api_success_begin(r);
    ag_buf_putc(&r->body, '[');
    uint64_t written = 0;
    bool truncated = false;
    for (size_t i = 0; i < all.n; i++) {
        if (i && cmp_series_data(&all.series[i - 1], &all.series[i]) == 0) continue;
        if (limit && written == limit) {
            truncated = true;
            break;
        }
        if (written++) ag_buf_putc(&r->body, ',');
        render_labels(&r->body, all.series[i].labels, all.series[i].labels_len);
    }
    ag_buf_putc(&r->body, ']');
    api_success_end(r, truncated ? "results truncated due to limit" : NULL);
    ag_selection_free(&all);
    return AG_H_SERIES;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Label names (name == NULL) or values over the union of the match[] selectors. */
static ag_handler_t label_list(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r,
                               const char *name, ag_handler_t h)
{
    int64_t start, end;
    uint64_t limit;
    selectors_t sels;
    if (!range_params(req, r, &start, &end) || !limit_param(req, r, &limit)) return h;
    if (!parse_selectors(req, r, &sels)) return h;
    ag_strlist_t all = {0};
    int rc = AG_OK;
    ag_errmsg_t e = {{0}, -1};
    size_t rounds = sels.n ? sels.n : 1;
    for (size_t i = 0; i < rounds && !rc; i++) {
        ag_strlist_t l;
        const ag_matcher_t *m = sels.n ? sels.v[i]->u.sel.matchers : NULL;
        size_t nm = sels.n ? sels.v[i]->u.sel.nmatchers : 0;
        rc = ag_store_label_values(app->store, name, m, nm, start, end, &l, &e);
        if (rc) break;
        char **nv = realloc(all.items, (all.n + l.n + 1) * sizeof *nv);
        if (!nv) {
            ag_strlist_free(&l);
            rc = AG_ENOMEM;
            break;
        }
        all.items = nv;
        if (l.n) memcpy(all.items + all.n, l.items, l.n * sizeof *l.items);
        all.n += l.n;
        free(l.items);
    }
    selectors_free(&sels);
    if (rc) {
        ag_strlist_free(&all);
        api_error(r, "internal", "%s", e.msg[0] ? e.msg : ag_strerror(rc));
        return h;
    }
    if (rounds > 1 && all.n > 1) qsort(all.items, all.n, sizeof *all.items, cmp_str);
    api_success_begin(r);
    ag_buf_putc(&r->body, '[');
    uint64_t written = 0;
    bool truncated = false;
    for (size_t i = 0; i < all.n; i++) {
        if (i && strcmp(all.items[i - 1], all.items[i]) == 0) continue;
        if (limit && written == limit) {
            truncated = true;
            break;
        }
        if (written++) ag_buf_putc(&r->body, ',');
        ag_buf_json_str(&r->body, all.items[i], strlen(all.items[i]));
    }
    ag_buf_putc(&r->body, ']');
    api_success_end(r, truncated ? "results truncated due to limit" : NULL);
    ag_strlist_free(&all);
    return h;
}

ag_handler_t api_labels(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r)
{
    return label_list(app, req, r, NULL, AG_H_LABELS);
}

ag_handler_t api_label_values(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r,
                              const char *name)
{
    if (!ag_label_name_valid(name, strlen(name))) {
        api_error(r, "bad_data", "invalid label name: \"%.200s\"", name);
        return AG_H_LABEL_VALUES;
    }
    return label_list(app, req, r, name, AG_H_LABEL_VALUES);
}

ag_handler_t api_metadata(ag_app_t *app, const ag_http_req_t *req, ag_http_resp_t *r)
{
    uint64_t limit;
    if (!limit_param(req, r, &limit)) return AG_H_METADATA;
    const char *metric = ag_http_param(req, "metric");
    if (metric && !*metric) metric = NULL;
    ag_metadata_list_t l;
    int rc = ag_store_metadata(app->store, metric, &l);
    if (rc) {
        api_error(r, "internal", "%s", ag_strerror(rc));
        return AG_H_METADATA;
    }
    api_success_begin(r);
    ag_buf_putc(&r->body, '{');
    for (size_t i = 0; i < l.n && (!limit || i < limit); i++) {
        const ag_metadata_t *m = &l.items[i];
        if (i) ag_buf_putc(&r->body, ',');
        ag_buf_json_str(&r->body, m->family, strlen(m->family));
        ag_buf_puts(&r->body, ":[{\"type\":");
        ag_buf_json_str(&r->body, m->type, strlen(m->type));
        ag_buf_puts(&r->body, ",\"help\":");
        ag_buf_json_str(&r->body, m->help, strlen(m->help));
        ag_buf_puts(&r->body, ",\"unit\":");
        ag_buf_json_str(&r->body, m->unit, strlen(m->unit));
        ag_buf_puts(&r->body, "}]");
    }
    ag_buf_putc(&r->body, '}');
    api_success_end(r, NULL);
    ag_metadata_list_free(&l);
    return AG_H_METADATA;
}
