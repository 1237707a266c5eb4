/* alerts.c - alerting rules (`alerts:` in the config) evaluated by the forecasting service's
 * thread, with Prometheus' semantics, pushed to Alertmanager and listed at /api/v1/alerts and
 * /api/v1/rules.
 *
 * Every `interval` a rule's expression is evaluated; each series of the result is an alert
 * instance with the series' labels (without __name__), the rule's labels and alertname=<rule>.
 * A new instance is pending; once it has been in the result for `for` it fires; when it leaves
 * the result a firing instance is resolved (a pending one is forgotten). Annotations are
 * templates: {{ $labels.<name> }} and {{ $value }} are replaced. Like Prometheus
 * (rules/alerting.go, rules/manager.go): firing alerts are sent with startsAt = when they fired
 * and endsAt = now + 4 x max(interval, alerting.resend_delay), again whenever resend_delay has
 * passed since the last send; a resolved alert is sent with endsAt = when it resolved, and
 * re-sent every resend_delay for 15 minutes so that an Alertmanager restart cannot lose the
 * resolution; pending alerts are never sent. Sending is done by a notifier thread from a
 * bounded queue (a payload is dropped, and counted, when the queue is full), one POST of a JSON
 * array to <alerting.alertmanager_url>/api/v2/alerts per evaluation that has something to say.
 * Alert state lives in memory: after a restart, conditions that still hold are pending again.
 */
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ag_eval.h"
#include "ag_log.h"
#include "ag_time.h"
#include "service_int.h"

#define RESOLVED_RETENTION_MS (15 * 60 * 1000)
#define QUEUE_MAX 100

enum { ST_PENDING = 1, ST_FIRING, ST_RESOLVED };

typedef struct inst {
    char *labels; /* canonical encoding of the final labels */
    size_t len;
    int state;
    double value;
    int64_t active_at, fired_at, resolved_at, last_sent;
    bool seen;
} inst_t;

struct alert_rt {
    ag_alert_def_t *def; /* owned copy (one entry) */
    ag_pq_node_t *ast;
    inst_t *inst;
    size_t n, cap;
    int64_t last_eval;   /* INT64_MIN: never */
    double eval_seconds; /* how long the last evaluation took */
    char error[256];     /* the last evaluation's error, "" when fine */
};

struct notifier {
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *url;       /* base URL; NULL: alerts are not sent */
    char *queue[QUEUE_MAX];
    size_t qn;
    _Atomic uint64_t sent, errors, dropped;
};

/* ---- rules ----------------------------------------------------------------------------------- */

void alert_rt_free(alert_rt_t *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) free(r->inst[i].labels);
    free(r->inst);
    ag_promql_free(r->ast);
    ag_alert_defs_free(r->def, 1);
    free(r);
}

static alert_rt_t *alert_rt_new(const ag_alert_def_t *d)
{
    alert_rt_t *r = calloc(1, sizeof *r);
    ag_errmsg_t e = {{0}, -1};
    if (!r || ag_alert_defs_copy(d, 1, &r->def) ||
        ag_promql_parse(d->expr, strlen(d->expr), &r->ast, &e)) {
        alert_rt_free(r);
        return NULL;
    }
    r->last_eval = INT64_MIN;
    return r;
}

void alerts_apply(ag_models_t *m, const ag_config_t *c)
{
    alert_rt_t **nr = calloc(c->nalerts ? c->nalerts : 1, sizeof *nr);
    if (!nr) {
        AG_ERROR("\"out of memory applying alert rules; the old ones stay\"");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < c->nalerts; i++) {
        const ag_alert_def_t *d = &c->alerts[i];
        alert_rt_t *r = alert_rt_new(d);
        if (!r) {
            AG_ERROR("\"cannot start alert rule\" alert=%s", d->name);
            continue;
        }
        /* The same rule (name and expression) keeps its alerts. */
        for (size_t j = 0; j < m->nalerts; j++) {
            alert_rt_t *old = m->alerts[j];
            if (old && !strcmp(old->def->name, d->name) && !strcmp(old->def->expr, d->expr)) {
                r->inst = old->inst;
                r->n = old->n;
                r->cap = old->cap;
                r->last_eval = old->last_eval;
                old->inst = NULL;
                old->n = old->cap = 0;
            }
        }
        nr[n++] = r;
    }
    pthread_mutex_lock(&m->lock);
    alert_rt_t **old = m->alerts;
    size_t oldn = m->nalerts;
    m->alerts = nr;
    m->nalerts = n;
    pthread_mutex_unlock(&m->lock);
    for (size_t j = 0; j < oldn; j++) alert_rt_free(old[j]);
    free(old);
    notifier_set_url(m->notifier, c->alertmanager_url);
    m->alert_resend_ms = c->alert_resend_ms;
}

void alerts_free(ag_models_t *m)
{
    for (size_t j = 0; j < m->nalerts; j++) alert_rt_free(m->alerts[j]);
    free(m->alerts);
    m->alerts = NULL;
    m->nalerts = 0;
}

int64_t alert_due(const alert_rt_t *r, int64_t now)
{
    return r->last_eval == INT64_MIN ? now : r->last_eval + r->def->interval_ms;
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const ag_label_t *)a)->name, ((const ag_label_t *)b)->name);
}

/* The instance labels of a result series: its labels without __name__, the rule's labels
 * (overriding), alertname. Appends the encoding to out. */
static int instance_labels(const ag_alert_def_t *d, const char *src, size_t len, ag_buf_t *out)
{
    size_t cnt = 0, pos = 0, nl, vl;
    const char *ln, *lv;
    while (ag_labels_next(src, len, &pos, &ln, &nl, &lv, &vl)) cnt++;
    ag_label_t *l = calloc(cnt + d->nlabels + 1, sizeof *l);
    if (!l) return AG_ENOMEM;
    size_t n = 0;
    pos = 0;
    while (ag_labels_next(src, len, &pos, &ln, &nl, &lv, &vl)) {
        if (!strcmp(ln, "__name__") || !strcmp(ln, "alertname")) continue;
        bool overridden = false;
        for (size_t k = 0; k < d->nlabels; k++) overridden |= !strcmp(d->label_names[k], ln);
        if (overridden) continue;
        l[n].name = ln;
        l[n++].value = lv;
    }
    for (size_t k = 0; k < d->nlabels; k++) {
        if (!*d->label_values[k]) continue; /* an empty value removes the label */
        l[n].name = d->label_names[k];
        l[n++].value = d->label_values[k];
    }
    l[n].name = "alertname";
    l[n++].value = d->name;
    qsort(l, n, sizeof *l, label_cmp);
    ag_labels_encode(l, n, out);
    free(l);
    return ag_buf_ok(out) ? AG_OK : AG_ENOMEM;
}

static inst_t *inst_find(alert_rt_t *r, const char *labels, size_t len)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->inst[i].len == len && !memcmp(r->inst[i].labels, labels, len)) return &r->inst[i];
    return NULL;
}

static inst_t *inst_add(alert_rt_t *r, const char *labels, size_t len)
{
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 8;
        inst_t *ni = realloc(r->inst, nc * sizeof *ni);
        if (!ni) return NULL;
        r->inst = ni;
        r->cap = nc;
    }
    inst_t *in = &r->inst[r->n];
    memset(in, 0, sizeof *in);
    if (!(in->labels = malloc(len ? len : 1))) return NULL;
    memcpy(in->labels, labels, len);
    in->len = len;
    r->n++;
    return in;
}

/* ---- JSON --------------------------------------------------------------------------------- */

static void labels_json(ag_buf_t *o, const char *enc, size_t len)
{
    size_t pos = 0, nl, vl;
    const char *ln, *lv;
    bool first = true;
    ag_buf_putc(o, '{');
    while (ag_labels_next(enc, len, &pos, &ln, &nl, &lv, &vl)) {
        if (!first) ag_buf_putc(o, ',');
        first = false;
        ag_buf_json_str(o, ln, nl);
        ag_buf_putc(o, ':');
        ag_buf_json_str(o, lv, vl);
    }
    ag_buf_putc(o, '}');
}

/* Expands {{ $labels.x }} and {{ $value }} in a template. */
static void expand(ag_buf_t *o, const char *tpl, const inst_t *in)
{
    const char *p = tpl;
    while (*p) {
        const char *open = strstr(p, "{{");
        const char *close = open ? strstr(open + 2, "}}") : NULL;
        if (!open || !close) {
            ag_buf_puts(o, p);
            return;
        }
        ag_buf_append(o, p, (size_t)(open - p));
        const char *a = open + 2, *b = close;
        while (a < b && *a == ' ') a++;
        while (b > a && b[-1] == ' ') b--;
        size_t n = (size_t)(b - a);
        if (n == 6 && !memcmp(a, "$value", 6)) {
            ag_buf_printf(o, "%g", in->value);
        } else if (n > 8 && !memcmp(a, "$labels.", 8)) {
            char name[256];
            size_t k = n - 8 < sizeof name - 1 ? n - 8 : sizeof name - 1;
            memcpy(name, a + 8, k);
            name[k] = 0;
            size_t vl = 0;
            const char *v = ag_labels_get(in->labels, in->len, name, &vl);
            if (v) ag_buf_append(o, v, vl);
        } else {
            ag_buf_append(o, open, (size_t)(close + 2 - open)); /* not ours: kept as written */
        }
        p = close + 2;
    }
}

static void annotations_json(ag_buf_t *o, const ag_alert_def_t *d, const inst_t *in)
{
    ag_buf_t tmp = AG_BUF_INIT;
    ag_buf_putc(o, '{');
    for (size_t k = 0; k < d->nannotations; k++) {
        if (k) ag_buf_putc(o, ',');
        ag_buf_json_str(o, d->annotation_names[k], strlen(d->annotation_names[k]));
        ag_buf_putc(o, ':');
        ag_buf_reset(&tmp);
        expand(&tmp, d->annotation_values[k], in);
        ag_buf_json_str(o, tmp.data ? tmp.data : "", tmp.len);
    }
    ag_buf_putc(o, '}');
    ag_buf_free(&tmp);
}

static void time_json(ag_buf_t *o, int64_t ms)
{
    char ts[40];
    ag_rfc3339(ms, ts, sizeof ts);
    ag_buf_printf(o, "\"%s\"", ts);
}

/* Go's strconv.FormatFloat(v, 'e', -1, 64): the shortest exponent form that reads back. */
static void value_e(ag_buf_t *o, double v)
{
    if (isnan(v) || isinf(v)) {
        ag_buf_puts(o, isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char s[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(s, sizeof s, "%.*e", prec, v);
        if (strtod(s, NULL) == v) break;
    }
    ag_buf_puts(o, s);
}

/* ---- evaluation ---------------------------------------------------------------------------- */

bool alert_run(ag_models_t *m, alert_rt_t *r, int64_t now)
{
    const ag_alert_def_t *d = r->def;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    ag_eval_opts_t o;
    memset(&o, 0, sizeof o);
    o.lookback_ms = 5 * 60 * 1000;
    o.timeout_ms = 60 * 1000;
    o.max_samples = 50000000;
    ag_value_t val = {0};
    ag_errmsg_t e = {{0}, -1};
    int rc = ag_eval_instant(m->store, r->ast, now, &o, &val, &e);
    ag_buf_t lb = AG_BUF_INIT;
    pthread_mutex_lock(&m->lock);
    r->last_eval = now;
    if (rc || (val.type != AG_VAL_VECTOR && val.type != AG_VAL_SCALAR)) {
        snprintf(r->error, sizeof r->error, "%s",
                 rc ? e.msg : "the expression is not an instant vector");
        pthread_mutex_unlock(&m->lock);
        ag_value_free(&val);
        atomic_fetch_add(&m->st_fail, 1);
        return true;
    }
    r->error[0] = 0;
    for (size_t i = 0; i < r->n; i++) r->inst[i].seen = false;
    for (size_t i = 0; val.type == AG_VAL_VECTOR && i < val.n; i++) {
        ag_buf_reset(&lb);
        if (instance_labels(d, val.series[i].labels, val.series[i].labels_len, &lb)) continue;
        inst_t *in = inst_find(r, lb.data, lb.len);
        if (!in || in->state == ST_RESOLVED) {
            if (!in && !(in = inst_add(r, lb.data, lb.len))) continue;
            in->state = ST_PENDING;
            in->active_at = now;
            in->fired_at = in->resolved_at = 0;
        }
        in->seen = true;
        in->value = val.series[i].n ? val.series[i].points[0].v : NAN;
        if (in->state == ST_PENDING && now - in->active_at >= d->for_ms) {
            in->state = ST_FIRING;
            in->fired_at = now;
            atomic_fetch_add(&m->st_anom, 1);
        }
    }
    ag_value_free(&val);
    ag_buf_free(&lb);
    /* Gone from the result: pending ones are forgotten, firing ones resolve. */
    for (size_t i = 0; i < r->n; i++) {
        inst_t *in = &r->inst[i];
        bool drop = false;
        if (!in->seen && in->state == ST_PENDING) drop = true;
        if (!in->seen && in->state == ST_FIRING) {
            in->state = ST_RESOLVED;
            in->resolved_at = now;
        }
        if (in->state == ST_RESOLVED && now - in->resolved_at > RESOLVED_RETENTION_MS) drop = true;
        if (drop) {
            free(in->labels);
            r->inst[i--] = r->inst[--r->n];
        }
    }
    /* What to tell Alertmanager. */
    int64_t resend = m->alert_resend_ms > 0 ? m->alert_resend_ms : 60000;
    int64_t valid = 4 * (d->interval_ms > resend ? d->interval_ms : resend);
    ag_buf_t out = AG_BUF_INIT;
    size_t nsend = 0;
    for (size_t i = 0; i < r->n; i++) {
        inst_t *in = &r->inst[i];
        if (in->state == ST_PENDING) continue;
        bool due = !in->last_sent || now - in->last_sent >= resend ||
                   (in->state == ST_RESOLVED && in->last_sent < in->resolved_at);
        if (!due) continue;
        ag_buf_puts(&out, nsend++ ? "," : "[");
        ag_buf_puts(&out, "{\"labels\":");
        labels_json(&out, in->labels, in->len);
        ag_buf_puts(&out, ",\"annotations\":");
        annotations_json(&out, d, in);
        ag_buf_puts(&out, ",\"startsAt\":");
        time_json(&out, in->fired_at);
        ag_buf_puts(&out, ",\"endsAt\":");
        time_json(&out, in->state == ST_RESOLVED ? in->resolved_at : now + valid);
        ag_buf_puts(&out, ",\"generatorURL\":");
        ag_buf_t g = AG_BUF_INIT;
        ag_buf_printf(&g, "%s/graph?g0.expr=", m->external_url);
        char *esc = curl_easy_escape(NULL, d->expr, 0);
        ag_buf_puts(&g, esc ? esc : "");
        curl_free(esc);
        ag_buf_puts(&g, "&g0.tab=1");
        ag_buf_json_str(&out, g.data ? g.data : "", g.len);
        ag_buf_free(&g);
        ag_buf_putc(&out, '}');
        in->last_sent = now;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    r->eval_seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    pthread_mutex_unlock(&m->lock);
    if (nsend) {
        ag_buf_putc(&out, ']');
        ag_buf_putc(&out, 0);
        if (ag_buf_ok(&out)) {
            notifier_push(m->notifier, out.data);
            out.data = NULL;
        }
    }
    ag_buf_free(&out);
    return true;
}

/* ---- /api/v1/alerts and /api/v1/rules -------------------------------------------------------- */

static void alert_json(ag_buf_t *o, const ag_alert_def_t *d, const inst_t *in)
{
    ag_buf_puts(o, "{\"labels\":");
    labels_json(o, in->labels, in->len);
    ag_buf_puts(o, ",\"annotations\":");
    annotations_json(o, d, in);
    ag_buf_printf(o, ",\"state\":\"%s\",\"activeAt\":",
                  in->state == ST_FIRING ? "firing" : "pending");
    time_json(o, in->active_at);
    ag_buf_puts(o, ",\"value\":\"");
    value_e(o, in->value);
    ag_buf_puts(o, "\"}");
}

void ag_models_alerts_json(ag_models_t *m, bool rules, ag_buf_t *o)
{
    pthread_mutex_lock(&m->lock);
    ag_buf_puts(o, rules ? "{\"groups\":[" : "{\"alerts\":[");
    size_t k = 0;
    for (size_t i = 0; m && i < m->nalerts; i++) {
        alert_rt_t *r = m->alerts[i];
        const ag_alert_def_t *d = r->def;
        if (!rules) {
            for (size_t j = 0; j < r->n; j++) {
                if (r->inst[j].state == ST_RESOLVED) continue;
                if (k++) ag_buf_putc(o, ',');
                alert_json(o, d, &r->inst[j]);
            }
            continue;
        }
        const char *state = "inactive";
        for (size_t j = 0; j < r->n; j++) {
            if (r->inst[j].state == ST_FIRING) state = "firing";
            else if (r->inst[j].state == ST_PENDING && strcmp(state, "firing")) state = "pending";
        }
        if (i) ag_buf_putc(o, ',');
        ag_buf_puts(o, "{\"name\":");
        ag_buf_json_str(o, d->name, strlen(d->name));
        ag_buf_puts(o, ",\"file\":\"augur\",\"rules\":[{\"state\":\"");
        ag_buf_puts(o, state);
        ag_buf_puts(o, "\",\"name\":");
        ag_buf_json_str(o, d->name, strlen(d->name));
        ag_buf_puts(o, ",\"query\":");
        ag_buf_json_str(o, d->expr, strlen(d->expr));
        ag_buf_printf(o, ",\"duration\":%.3f,\"labels\":{", (double)d->for_ms / 1000.0);
        for (size_t j = 0; j < d->nlabels; j++) {
            if (j) ag_buf_putc(o, ',');
            ag_buf_json_str(o, d->label_names[j], strlen(d->label_names[j]));
            ag_buf_putc(o, ':');
            ag_buf_json_str(o, d->label_values[j], strlen(d->label_values[j]));
        }
        ag_buf_puts(o, "},\"annotations\":{");
        for (size_t j = 0; j < d->nannotations; j++) {
            if (j) ag_buf_putc(o, ',');
            ag_buf_json_str(o, d->annotation_names[j], strlen(d->annotation_names[j]));
            ag_buf_putc(o, ':');
            ag_buf_json_str(o, d->annotation_values[j], strlen(d->annotation_values[j]));
        }
        ag_buf_puts(o, "},\"alerts\":[");
        size_t na = 0;
        for (size_t j = 0; j < r->n; j++) {
            if (r->inst[j].state == ST_RESOLVED) continue;
            if (na++) ag_buf_putc(o, ',');
            alert_json(o, d, &r->inst[j]);
        }
        ag_buf_printf(o, "],\"health\":\"%s\",\"lastError\":", r->error[0] ? "err" : "ok");
        ag_buf_json_str(o, r->error, strlen(r->error));
        ag_buf_printf(o, ",\"evaluationTime\":%.6f,\"lastEvaluation\":", r->eval_seconds);
        if (r->last_eval != INT64_MIN) time_json(o, r->last_eval);
        else ag_buf_puts(o, "\"0001-01-01T00:00:00Z\"");
        ag_buf_printf(o, ",\"type\":\"alerting\"}],\"interval\":%.3f,\"limit\":0,"
                      "\"evaluationTime\":%.6f,\"lastEvaluation\":",
                      (double)d->interval_ms / 1000.0, r->eval_seconds);
        if (r->last_eval != INT64_MIN) time_json(o, r->last_eval);
        else ag_buf_puts(o, "\"0001-01-01T00:00:00Z\"");
        ag_buf_putc(o, '}');
    }
    ag_buf_puts(o, "]}");
    pthread_mutex_unlock(&m->lock);
}

/* ---- the notifier -------------------------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

static void *notifier_main(void *arg)
{
    notifier_t *nt = arg;
    pthread_setname_np(pthread_self(), "augur-alerts"); /* as top -H and ps -L show it */
    pthread_mutex_lock(&nt->lock);
    while (!nt->stop) {
        if (!nt->qn) {
            pthread_cond_wait(&nt->cond, &nt->lock);
            continue;
        }
        char *body = nt->queue[0];
        memmove(nt->queue, nt->queue + 1, (nt->qn - 1) * sizeof *nt->queue);
        nt->qn--;
        char *url = nt->url ? strdup(nt->url) : NULL;
        pthread_mutex_unlock(&nt->lock);
        long status = 0;
        CURL *c = url ? curl_easy_init() : NULL;
        if (c) {
            char full[2048];
            size_t ul = strlen(url);
            while (ul && url[ul - 1] == '/') ul--;
            snprintf(full, sizeof full, "%.*s/api/v2/alerts", (int)ul, url);
            struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
            curl_easy_setopt(c, CURLOPT_URL, full);
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
            curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(c, CURLOPT_USERAGENT, "augurd");
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
            curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
            if (curl_easy_perform(c) == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
            curl_slist_free_all(h);
            curl_easy_cleanup(c);
            if (status >= 200 && status < 300) {
                atomic_fetch_add(&nt->sent, 1);
            } else {
                atomic_fetch_add(&nt->errors, 1);
                AG_WARN("\"sending alerts to Alertmanager failed\" url=%s status=%ld", full,
                        status);
            }
        }
        free(url);
        free(body);
        pthread_mutex_lock(&nt->lock);
    }
    pthread_mutex_unlock(&nt->lock);
    return NULL;
}

int notifier_start(notifier_t **out)
{
    *out = NULL;
    notifier_t *nt = calloc(1, sizeof *nt);
    if (!nt) return AG_ENOMEM;
    pthread_mutex_init(&nt->lock, NULL);
    pthread_cond_init(&nt->cond, NULL);
    if (pthread_create(&nt->thread, NULL, notifier_main, nt)) {
        notifier_stop(nt);
        return AG_ENOMEM;
    }
    nt->started = true;
    *out = nt;
    return AG_OK;
}

void notifier_stop(notifier_t *nt)
{
    if (!nt) return;
    if (nt->started) {
        pthread_mutex_lock(&nt->lock);
        nt->stop = true;
        pthread_cond_signal(&nt->cond);
        pthread_mutex_unlock(&nt->lock);
        pthread_join(nt->thread, NULL);
    }
    for (size_t i = 0; i < nt->qn; i++) free(nt->queue[i]);
    free(nt->url);
    pthread_mutex_destroy(&nt->lock);
    pthread_cond_destroy(&nt->cond);
    free(nt);
}

void notifier_set_url(notifier_t *nt, const char *url)
{
    if (!nt) return;
    char *u = url ? strdup(url) : NULL;
    pthread_mutex_lock(&nt->lock);
    free(nt->url);
    nt->url = u;
    pthread_mutex_unlock(&nt->lock);
}

void notifier_push(notifier_t *nt, char *body)
{
    if (!nt) {
        free(body);
        return;
    }
    pthread_mutex_lock(&nt->lock);
    if (!nt->url) {
        free(body); /* no Alertmanager configured */
    } else if (nt->qn == QUEUE_MAX) {
        free(body);
        atomic_fetch_add(&nt->dropped, 1);
    } else {
        nt->queue[nt->qn++] = body;
        pthread_cond_signal(&nt->cond);
    }
    pthread_mutex_unlock(&nt->lock);
}

void notifier_stats(notifier_t *nt, uint64_t *sent, uint64_t *errors, uint64_t *dropped)
{
    *sent = *errors = *dropped = 0;
    if (!nt) return;
    *sent = atomic_load(&nt->sent);
    *errors = atomic_load(&nt->errors);
    *dropped = atomic_load(&nt->dropped);
}
