/* config_lists.c - the config file's lists of mappings: `models:` (forecasting models,
 * ag_model_def_t) and `scalers:` (predictive scaling policies, ag_scaler_def_t, each with a list
 * of webhooks). Entries are checked field by field - unknown or repeated fields, values that do
 * not parse, expressions that do not parse, bounds that contradict each other - and every error
 * names the line and column; a list replaces the previous one as a whole.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_labels.h"
#include "ag_promql.h"
#include "ag_scaler.h"
#include "ag_time.h"
#include "config_int.h"

static void model_def_free(ag_model_def_t *m)
{
    free(m->name);
    free(m->expr);
    m->name = m->expr = NULL;
}

void ag_model_def_default(ag_model_def_t *m)
{
    memset(m, 0, sizeof *m);
    m->step_ms = 60000;
    m->horizon_ms = 3600000;
    m->season_day = m->season_week = true;
    m->sensitivity = 0.5;
    m->coverage = 0.95;
    m->warmup_ms = 7 * 86400000LL;
    m->refit_ms = 86400000LL;
}

void cfg_models_free(ag_model_def_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) model_def_free(&m[i]);
    free(m);
}

/* ---- models: a list of mappings --------------------------------------------------------- */

/* The current event as a scalar value of model field `field` (a C string, NUL-free). */
static int field_scalar(loader_t *ld, const char *field, const char **out)
{
    char msg[200];
    const yaml_event_t *v = &ld->ev;
    if (v->type == YAML_ALIAS_EVENT) return fail_alias(ld);
    if (v->type != YAML_SCALAR_EVENT || is_null(v)) {
        snprintf(msg, sizeof msg, "\"%s\" takes a single value, found %s", field,
                 is_null(v) ? "nothing" : event_kind(v));
        return fail_at(ld, v->start_mark, msg);
    }
    *out = (const char *)v->data.scalar.value;
    if (strlen(*out) != v->data.scalar.length) {
        snprintf(msg, sizeof msg, "\"%s\" contains a NUL byte", field);
        return fail_at(ld, v->start_mark, msg);
    }
    return AG_OK;
}

static int field_duration(loader_t *ld, const char *field, const char *v, bool zero_ok,
                          int64_t *out)
{
    char msg[300];
    ag_errmsg_t de = {{0}, -1};
    int64_t ms = 0;
    if (ag_parse_duration(v, &ms, &de) || ms < 0 || (ms == 0 && !zero_ok)) {
        snprintf(msg, sizeof msg, "\"%s\": \"%.64s\" is not a duration%s (write e.g. "
                 "\"1m\" or \"1h30m\")", field, v, zero_ok ? "" : " above 0s");
        return fail_at(ld, ld->ev.start_mark, msg);
    }
    *out = ms;
    return AG_OK;
}

static int field_fraction(loader_t *ld, const char *field, const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno || !(d > 0 && d < 1)) {
        char msg[200];
        snprintf(msg, sizeof msg, "\"%s\": \"%.64s\" is not a number between 0 and 1 "
                 "(exclusive)", field, v);
        return fail_at(ld, ld->ev.start_mark, msg);
    }
    *out = d;
    return AG_OK;
}

/* seasons: a list (or comma-separated string) of day, week; "none" or [] for no season. */
static int model_season_word(loader_t *ld, ag_model_def_t *m, const char *w, size_t n)
{
    if (n == 3 && !memcmp(w, "day", 3)) m->season_day = true;
    else if (n == 4 && !memcmp(w, "week", 4)) m->season_week = true;
    else if (n == 4 && !memcmp(w, "none", 4)) {}
    else {
        char msg[200];
        snprintf(msg, sizeof msg, "model field \"seasons\": \"%.*s\" is not day, week or none",
                 (int)(n > 40 ? 40 : n), w);
        return fail_at(ld, ld->ev.start_mark, msg);
    }
    return AG_OK;
}

static int model_seasons(loader_t *ld, ag_model_def_t *m)
{
    int rc;
    m->season_day = m->season_week = false;
    if (ld->ev.type == YAML_SEQUENCE_START_EVENT) {
        for (;;) {
            if ((rc = next_event(ld))) return rc;
            if (ld->ev.type == YAML_SEQUENCE_END_EVENT) return AG_OK;
            const char *v;
            if ((rc = field_scalar(ld, "seasons", &v)) ||
                (rc = model_season_word(ld, m, v, strlen(v))))
                return rc;
        }
    }
    const char *v;
    if ((rc = field_scalar(ld, "seasons", &v))) return rc;
    while (*v) {
        while (*v == ' ' || *v == ',') v++;
        size_t n = strcspn(v, ", ");
        if (n && (rc = model_season_word(ld, m, v, n))) return rc;
        v += n;
    }
    return AG_OK;
}

static bool name_ok(const char *s)
{
    if (!*s || strlen(s) > 64) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
              (p > s && *p >= '0' && *p <= '9')))
            return false;
    return true;
}

/* ---- entries of a list: a mapping of known fields ----------------------------------------- */

/* One kind of list entry and how to load it. */
typedef struct entry_kind {
    const char *what, *plural; /* "model", "models" */
    const char *hint;          /* "name: ..., expr: ..." */
    const char *const *fields;
    size_t nfields, size, max;  /* field names; sizeof an entry; most entries (0: no limit) */
    void (*init)(void *entry, unsigned line);
    /* field f's value: the current event is its first (a scalar, or a list's start) */
    int (*field)(loader_t *ld, void *entry, size_t f, const char *key);
    /* after the mapping: required fields and cross-checks (start: the entry's position) */
    int (*finish)(loader_t *ld, void *entry, yaml_mark_t start);
    const char *(*name)(const void *entry); /* NULL: entries have no unique name */
    unsigned (*line)(const void *entry);
} entry_kind_t;

/* Walks one entry's mapping (the current event is its MAPPING-START). */
static int load_entry(loader_t *ld, const entry_kind_t *k, void *entry)
{
    size_t seen[32] = {0};
    char key[64], msg[800];
    int rc;
    yaml_mark_t start = ld->ev.start_mark;
    k->init(entry, (unsigned)start.line + 1);
    for (;;) {
        if ((rc = next_event(ld))) return rc;
        if (ld->ev.type == YAML_MAPPING_END_EVENT) break;
        if ((rc = key_name(ld, key, sizeof key))) return rc;
        yaml_mark_t kmark = ld->ev.start_mark;
        size_t f = k->nfields;
        for (size_t i = 0; i < k->nfields; i++)
            if (strcmp(k->fields[i], key) == 0) f = i;
        if (f == k->nfields) {
            int n = snprintf(msg, sizeof msg, "unknown %s field \"%s\" (a %s has: ", k->what, key,
                             k->what);
            for (size_t i = 0; i < k->nfields && n > 0 && (size_t)n < sizeof msg; i++)
                n += snprintf(msg + n, sizeof msg - (size_t)n, "%s%s", i ? ", " : "", k->fields[i]);
            if (n > 0 && (size_t)n < sizeof msg) snprintf(msg + n, sizeof msg - (size_t)n, ")");
            return fail_at(ld, kmark, msg);
        }
        if (seen[f]) {
            snprintf(msg, sizeof msg, "%s field \"%s\" given twice (first on line %zu)", k->what,
                     key, seen[f]);
            return fail_at(ld, kmark, msg);
        }
        seen[f] = kmark.line + 1;
        if ((rc = next_event(ld)) || (rc = k->field(ld, entry, f, key))) return rc;
    }
    return k->finish(ld, entry, start);
}

/* A list of entries (the current event is the list's value); replaces *arr / *n, which the
 * caller has emptied. */
static int load_list(loader_t *ld, const entry_kind_t *k, void **arr, size_t *n)
{
    char msg[300];
    int rc;
    if (ld->ev.type == YAML_ALIAS_EVENT) return fail_alias(ld);
    if (ld->ev.type != YAML_SEQUENCE_START_EVENT) {
        snprintf(msg, sizeof msg, "\"%s\" must be a list of %s (\"- %s\"), found %s", k->plural,
                 k->plural, k->hint, event_kind(&ld->ev));
        return fail_at(ld, ld->ev.start_mark, msg);
    }
    for (;;) {
        if ((rc = next_event(ld))) return rc;
        if (ld->ev.type == YAML_SEQUENCE_END_EVENT) return AG_OK;
        if (ld->ev.type == YAML_ALIAS_EVENT) return fail_alias(ld);
        if (ld->ev.type != YAML_MAPPING_START_EVENT) {
            snprintf(msg, sizeof msg, "each %s must be a mapping (%s), found %s", k->what, k->hint,
                     event_kind(&ld->ev));
            return fail_at(ld, ld->ev.start_mark, msg);
        }
        if (k->max && *n == k->max) {
            snprintf(msg, sizeof msg, "at most %zu %s", k->max, k->plural);
            return fail_at(ld, ld->ev.start_mark, msg);
        }
        char *na = realloc(*arr, (*n + 1) * k->size);
        if (!na) return ag_errmsg_set(ld->e, AG_ENOMEM, -1, "out of memory");
        *arr = na;
        void *entry = na + *n * k->size;
        memset(entry, 0, k->size);
        (*n)++;
        yaml_mark_t start = ld->ev.start_mark;
        if ((rc = load_entry(ld, k, entry))) return rc;
        for (size_t i = 0; k->name && i + 1 < *n; i++) {
            const void *other = na + i * k->size;
            if (strcmp(k->name(other), k->name(entry)) == 0) {
                snprintf(msg, sizeof msg, "%s name \"%s\" used twice (first on line %u)", k->what,
                         k->name(entry), k->line(other));
                return fail_at(ld, start, msg);
            }
        }
    }
}

static int field_name(loader_t *ld, const char *what, const char *v, char **out)
{
    if (!name_ok(v)) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s name \"%.64s\" must match [a-zA-Z_][a-zA-Z0-9_]* (at most "
                 "64 characters)", what, v);
        return fail_at(ld, ld->ev.start_mark, msg);
    }
    if (!(*out = strdup(v))) return ag_errmsg_set(ld->e, AG_ENOMEM, -1, "out of memory");
    return AG_OK;
}

static int field_expr(loader_t *ld, const char *what, const char *key, const char *v, char **out)
{
    ag_pq_node_t *n = NULL;
    ag_errmsg_t pe = {{0}, -1};
    if (ag_promql_parse(v, strlen(v), &n, &pe)) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s field \"%s\": %s", what, key, pe.msg);
        return fail_at(ld, ld->ev.start_mark, msg);
    }
    ag_promql_free(n);
    if (!(*out = strdup(v))) return ag_errmsg_set(ld->e, AG_ENOMEM, -1, "out of memory");
    return AG_OK;
}

/* ---- models ------------------------------------------------------------------------------- */

static const char *const k_model_fields[] = {"name",        "expr",     "step",   "horizon",
                                              "seasons",     "log_scale", "sensitivity",
                                              "coverage",    "warmup",   "refit"};

static void model_init(void *e, unsigned line)
{
    ag_model_def_default(e);
    ((ag_model_def_t *)e)->line = line;
}

static int model_field(loader_t *ld, void *e, size_t f, const char *key)
{
    ag_model_def_t *m = e;
    if (f == 4) return model_seasons(ld, m);
    const char *v;
    int rc = field_scalar(ld, key, &v);
    if (rc) return rc;
    switch (f) {
    case 0: return field_name(ld, "model", v, &m->name);
    case 1: return field_expr(ld, "model", key, v, &m->expr);
    case 2: return field_duration(ld, key, v, false, &m->step_ms);
    case 3: return field_duration(ld, key, v, false, &m->horizon_ms);
    case 5:
        if (ag_parse_bool(v, &m->log_scale)) {
            char msg[200];
            snprintf(msg, sizeof msg, "model field \"log_scale\": \"%.64s\" is not true or false",
                     v);
            return fail_at(ld, ld->ev.start_mark, msg);
        }
        return AG_OK;
    case 6: return field_fraction(ld, key, v, &m->sensitivity);
    case 7: return field_fraction(ld, key, v, &m->coverage);
    case 8: return field_duration(ld, key, v, true, &m->warmup_ms);
    default: return field_duration(ld, key, v, true, &m->refit_ms);
    }
}

static int model_finish(loader_t *ld, void *e, yaml_mark_t start)
{
    ag_model_def_t *m = e;
    char msg[200];
    if (!m->name || !m->expr) {
        snprintf(msg, sizeof msg, "a model needs \"%s\"", !m->name ? "name" : "expr");
        return fail_at(ld, start, msg);
    }
    if (m->step_ms < 1000 || m->step_ms > 7 * 86400000LL) {
        snprintf(msg, sizeof msg, "model %s: step must be from 1s to 1w", m->name);
        return fail_at(ld, start, msg);
    }
    return AG_OK;
}

static const char *model_name(const void *e) { return ((const ag_model_def_t *)e)->name; }
static unsigned model_line(const void *e) { return ((const ag_model_def_t *)e)->line; }

static const entry_kind_t k_model = {
    "model", "models", "name: ..., expr: ...", k_model_fields,
    sizeof k_model_fields / sizeof k_model_fields[0], sizeof(ag_model_def_t), 0,
    model_init, model_field, model_finish, model_name, model_line};

int load_models(loader_t *ld)
{
    ag_config_t *c = ld->cfg;
    cfg_models_free(c->models, c->nmodels);
    c->models = NULL;
    c->nmodels = 0;
    return load_list(ld, &k_model, (void **)&c->models, &c->nmodels);
}

/* ---- scalers: a list of mappings, each with a list of webhooks ----------------------------- */

void ag_scaler_def_default(ag_scaler_def_t *d)
{
    memset(d, 0, sizeof *d);
    ag_scaler_policy_t p;
    ag_scaler_policy_default(&p);
    d->target = p.target;
    d->confidence = p.confidence;
    d->lead_ms = p.lead_ms;
    d->interval_ms = p.interval_ms;
    d->stabilization_ms = p.stabilization_ms;
    d->min_replicas = p.min_replicas;
    d->max_replicas = p.max_replicas;
    d->warmup_ms = 7 * 86400000LL;
    d->heartbeat_ms = 60000;
}

static void scaler_def_free(ag_scaler_def_t *d)
{
    free(d->name);
    free(d->load);
    for (size_t i = 0; i < d->nwebhooks; i++) {
        free(d->webhooks[i].url);
        free(d->webhooks[i].secret);
    }
    free(d->webhooks);
    memset(d, 0, sizeof *d);
}

void ag_scaler_defs_free(ag_scaler_def_t *d, size_t n)
{
    if (!d) return;
    for (size_t i = 0; i < n; i++) scaler_def_free(&d[i]);
    free(d);
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = true;
    return d;
}

int ag_scaler_defs_copy(const ag_scaler_def_t *src, size_t n, ag_scaler_def_t **out)
{
    *out = NULL;
    if (!n) return AG_OK;
    ag_scaler_def_t *d = calloc(n, sizeof *d);
    if (!d) return AG_ENOMEM;
    bool oom = false;
    for (size_t i = 0; i < n && !oom; i++) {
        d[i] = src[i];
        d[i].webhooks = NULL;
        d[i].nwebhooks = 0;
        d[i].name = dup_or_null(src[i].name, &oom);
        d[i].load = dup_or_null(src[i].load, &oom);
        if (src[i].nwebhooks && !oom) {
            d[i].webhooks = calloc(src[i].nwebhooks, sizeof *d[i].webhooks);
            if (!d[i].webhooks) oom = true;
            for (size_t k = 0; k < src[i].nwebhooks && !oom; k++) {
                d[i].webhooks[k].url = dup_or_null(src[i].webhooks[k].url, &oom);
                d[i].webhooks[k].secret = dup_or_null(src[i].webhooks[k].secret, &oom);
                d[i].nwebhooks = k + 1;
            }
        }
    }
    if (oom) {
        ag_scaler_defs_free(d, n);
        return AG_ENOMEM;
    }
    *out = d;
    return AG_OK;
}

static int field_number(loader_t *ld, const char *field, const char *v, double lo, double hi,
                        double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end || errno || !(d >= lo && d <= hi)) {
        char msg[200];
        snprintf(msg, sizeof msg, "\"%s\": \"%.64s\" is not a number from %g to %g", field, v, lo,
                 hi);
        return fail_at(ld, ld->ev.start_mark, msg);
    }
    *out = d;
    return AG_OK;
}

static int field_count(loader_t *ld, const char *field, const char *v, uint32_t *out)
{
    double d;
    int rc = field_number(ld, field, v, 0, 1000000, &d);
    if (rc) return rc;
    if (d != (double)(uint32_t)d) {
        char msg[200];
        snprintf(msg, sizeof msg, "\"%s\": \"%.64s\" is not a whole number", field, v);
        return fail_at(ld, ld->ev.start_mark, msg);
    }
    *out = (uint32_t)d;
    return AG_OK;
}

/* ---- webhooks (inside a scaler) ------------------------------------------------------------ */

static const char *const k_webhook_fields[] = {"url", "secret"};

static void webhook_init(void *e, unsigned line)
{
    (void)line;
    memset(e, 0, sizeof(ag_webhook_def_t));
}

static int webhook_field(loader_t *ld, void *e, size_t f, const char *key)
{
    ag_webhook_def_t *w = e;
    const char *v;
    int rc = field_scalar(ld, key, &v);
    if (rc) return rc;
    if (f == 0 && strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "webhook url \"%.100s\" must start with http:// or https://", v);
        return fail_at(ld, ld->ev.start_mark, msg);
    }
    char **dst = f == 0 ? &w->url : &w->secret;
    if (!(*dst = strdup(v))) return ag_errmsg_set(ld->e, AG_ENOMEM, -1, "out of memory");
    return AG_OK;
}

static int webhook_finish(loader_t *ld, void *e, yaml_mark_t start)
{
    if (!((ag_webhook_def_t *)e)->url) return fail_at(ld, start, "a webhook needs \"url\"");
    return AG_OK;
}

static const entry_kind_t k_webhook = {
    "webhook", "webhooks", "url: ...", k_webhook_fields, 2, sizeof(ag_webhook_def_t), 16,
    webhook_init, webhook_field, webhook_finish, NULL, NULL};

/* ---- scalers ------------------------------------------------------------------------------- */

static const char *const k_scaler_fields[] = {
    "name", "load", "capacity_per_replica", "target_utilization", "confidence", "lead_time",
    "interval", "scale_down_stabilization", "min_replicas", "max_replicas", "warmup",
    "heartbeat", "webhooks"};

static void scaler_init(void *e, unsigned line)
{
    ag_scaler_def_default(e);
    ((ag_scaler_def_t *)e)->line = line;
}

static int scaler_field(loader_t *ld, void *e, size_t f, const char *key)
{
    ag_scaler_def_t *d = e;
    if (f == 12) return load_list(ld, &k_webhook, (void **)&d->webhooks, &d->nwebhooks);
    const char *v;
    int rc = field_scalar(ld, key, &v);
    if (rc) return rc;
    if (f == 2) d->capacity = -1; /* given: finish checks it was */
    switch (f) {
    case 0: return field_name(ld, "scaler", v, &d->name);
    case 1: return field_expr(ld, "scaler", key, v, &d->load);
    case 2: return field_number(ld, key, v, 1e-300, 1e300, &d->capacity);
    case 3: return field_number(ld, key, v, 1e-9, 1, &d->target);
    case 4: return field_number(ld, key, v, 0.5, 0.999999, &d->confidence);
    case 5: return field_duration(ld, key, v, true, &d->lead_ms);
    case 6: return field_duration(ld, key, v, false, &d->interval_ms);
    case 7: return field_duration(ld, key, v, true, &d->stabilization_ms);
    case 8: return field_count(ld, key, v, &d->min_replicas);
    case 9: return field_count(ld, key, v, &d->max_replicas);
    case 10: return field_duration(ld, key, v, true, &d->warmup_ms);
    default: return field_duration(ld, key, v, false, &d->heartbeat_ms);
    }
}

static int scaler_finish(loader_t *ld, void *e, yaml_mark_t start)
{
    ag_scaler_def_t *d = e;
    char msg[400];
    if (!d->name || !d->load || !(d->capacity > 0)) {
        snprintf(msg, sizeof msg, "a scaler needs \"%s\"",
                 !d->name ? "name" : !d->load ? "load" : "capacity_per_replica");
        return fail_at(ld, start, msg);
    }
    ag_scaler_policy_t p = {d->capacity,     d->target,      d->confidence,
                            d->lead_ms,      d->interval_ms, d->stabilization_ms,
                            d->min_replicas, d->max_replicas};
    ag_errmsg_t pe = {{0}, -1};
    if (ag_scaler_policy_check(&p, &pe)) {
        snprintf(msg, sizeof msg, "scaler %s: %s", d->name, pe.msg);
        return fail_at(ld, start, msg);
    }
    return AG_OK;
}

static const char *scaler_name(const void *e) { return ((const ag_scaler_def_t *)e)->name; }
static unsigned scaler_line(const void *e) { return ((const ag_scaler_def_t *)e)->line; }

static const entry_kind_t k_scaler = {
    "scaler", "scalers", "name: ..., load: ...", k_scaler_fields,
    sizeof k_scaler_fields / sizeof k_scaler_fields[0], sizeof(ag_scaler_def_t), 0,
    scaler_init, scaler_field, scaler_finish, scaler_name, scaler_line};

int load_scalers(loader_t *ld)
{
    ag_config_t *c = ld->cfg;
    ag_scaler_defs_free(c->scalers, c->nscalers);
    c->scalers = NULL;
    c->nscalers = 0;
    return load_list(ld, &k_scaler, (void **)&c->scalers, &c->nscalers);
}

/* ---- alerts ---------------------------------------------------------------------------------- */

static void strmap_free(char **names, char **values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
        free(values[i]);
    }
    free(names);
    free(values);
}

static void alert_def_free(ag_alert_def_t *d)
{
    free(d->name);
    free(d->expr);
    strmap_free(d->label_names, d->label_values, d->nlabels);
    strmap_free(d->annotation_names, d->annotation_values, d->nannotations);
    memset(d, 0, sizeof *d);
}

void ag_alert_defs_free(ag_alert_def_t *d, size_t n)
{
    if (!d) return;
    for (size_t i = 0; i < n; i++) alert_def_free(&d[i]);
    free(d);
}

static int strmap_copy(char *const *sn, char *const *sv, size_t n, char ***dn, char ***dv)
{
    *dn = *dv = NULL;
    if (!n) return AG_OK;
    *dn = calloc(n, sizeof **dn);
    *dv = calloc(n, sizeof **dv);
    if (!*dn || !*dv) return AG_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!((*dn)[i] = strdup(sn[i])) || !((*dv)[i] = strdup(sv[i]))) return AG_ENOMEM;
    return AG_OK;
}

int ag_alert_defs_copy(const ag_alert_def_t *src, size_t n, ag_alert_def_t **out)
{
    *out = NULL;
    if (!n) return AG_OK;
    ag_alert_def_t *d = calloc(n, sizeof *d);
    if (!d) return AG_ENOMEM;
    bool oom = false;
    for (size_t i = 0; i < n && !oom; i++) {
        d[i] = src[i];
        d[i].name = dup_or_null(src[i].name, &oom);
        d[i].expr = dup_or_null(src[i].expr, &oom);
        d[i].label_names = d[i].label_values = d[i].annotation_names = d[i].annotation_values =
            NULL;
        d[i].nlabels = d[i].nannotations = 0;
        if (oom) break;
        oom = strmap_copy(src[i].label_names, src[i].label_values, src[i].nlabels,
                          &d[i].label_names, &d[i].label_values) != AG_OK;
        d[i].nlabels = src[i].nlabels;
        if (oom) break;
        oom = strmap_copy(src[i].annotation_names, src[i].annotation_values, src[i].nannotations,
                          &d[i].annotation_names, &d[i].annotation_values) != AG_OK;
        d[i].nannotations = src[i].nannotations;
    }
    if (oom) {
        ag_alert_defs_free(d, n);
        return AG_ENOMEM;
    }
    *out = d;
    return AG_OK;
}

/* A mapping of names to string values (labels: or annotations:); the current event is its
 * value. Names must be label names; "alertname" is the rule's own. */
static int field_strmap(loader_t *ld, const char *what, char ***names, char ***values, size_t *n)
{
    char msg[300];
    int rc;
    if (is_null(&ld->ev)) return AG_OK;
    if (ld->ev.type == YAML_ALIAS_EVENT) return fail_alias(ld);
    if (ld->ev.type != YAML_MAPPING_START_EVENT) {
        snprintf(msg, sizeof msg, "\"%s\" must be a mapping (name: value), found %s", what,
                 event_kind(&ld->ev));
        return fail_at(ld, ld->ev.start_mark, msg);
    }
    for (;;) {
        if ((rc = next_event(ld))) return rc;
        if (ld->ev.type == YAML_MAPPING_END_EVENT) return AG_OK;
        char key[256];
        if ((rc = key_name(ld, key, sizeof key))) return rc;
        if (!ag_label_name_valid(key, strlen(key)) || !strncmp(key, "__", 2) ||
            (!strcmp(key, "alertname") && !strcmp(what, "labels"))) {
            snprintf(msg, sizeof msg, "%s: \"%.100s\" is not a name you can set here (a label "
                     "name, not starting with __, not alertname)", what, key);
            return fail_at(ld, ld->ev.start_mark, msg);
        }
        for (size_t i = 0; i < *n; i++)
            if (!strcmp((*names)[i], key)) {
                snprintf(msg, sizeof msg, "%s: \"%s\" given twice", what, key);
                return fail_at(ld, ld->ev.start_mark, msg);
            }
        const char *v;
        if ((rc = next_event(ld)) || (rc = field_scalar(ld, key, &v))) return rc;
        char **nn = realloc(*names, (*n + 1) * sizeof *nn);
        if (nn) *names = nn;
        char **nv = realloc(*values, (*n + 1) * sizeof *nv);
        if (nv) *values = nv;
        if (!nn || !nv) return ag_errmsg_set(ld->e, AG_ENOMEM, -1, "out of memory");
        (*names)[*n] = strdup(key);
        (*values)[*n] = strdup(v);
        (*n)++;
        if (!(*names)[*n - 1] || !(*values)[*n - 1])
            return ag_errmsg_set(ld->e, AG_ENOMEM, -1, "out of memory");
    }
}

static const char *const k_alert_fields[] = {"name", "expr", "for", "interval", "labels",
                                              "annotations"};

static void alert_init(void *e, unsigned line)
{
    ag_alert_def_t *d = e;
    memset(d, 0, sizeof *d);
    d->interval_ms = 15000;
    d->line = line;
}

static int alert_field(loader_t *ld, void *e, size_t f, const char *key)
{
    ag_alert_def_t *d = e;
    if (f == 4) return field_strmap(ld, "labels", &d->label_names, &d->label_values, &d->nlabels);
    if (f == 5)
        return field_strmap(ld, "annotations", &d->annotation_names, &d->annotation_values,
                            &d->nannotations);
    const char *v;
    int rc = field_scalar(ld, key, &v);
    if (rc) return rc;
    switch (f) {
    case 0: return field_name(ld, "alert", v, &d->name);
    case 1: return field_expr(ld, "alert", key, v, &d->expr);
    case 2: return field_duration(ld, key, v, true, &d->for_ms);
    default: return field_duration(ld, key, v, false, &d->interval_ms);
    }
}

static int alert_finish(loader_t *ld, void *e, yaml_mark_t start)
{
    ag_alert_def_t *d = e;
    char msg[200];
    if (!d->name || !d->expr) {
        snprintf(msg, sizeof msg, "an alert needs \"%s\"", !d->name ? "name" : "expr");
        return fail_at(ld, start, msg);
    }
    if (d->interval_ms < 1000 || d->interval_ms > 86400000) {
        snprintf(msg, sizeof msg, "alert %s: interval must be from 1s to 1d", d->name);
        return fail_at(ld, start, msg);
    }
    return AG_OK;
}

static const char *alert_name(const void *e) { return ((const ag_alert_def_t *)e)->name; }
static unsigned alert_line(const void *e) { return ((const ag_alert_def_t *)e)->line; }

static const entry_kind_t k_alert = {
    "alert", "alerts", "name: ..., expr: ...", k_alert_fields,
    sizeof k_alert_fields / sizeof k_alert_fields[0], sizeof(ag_alert_def_t), 0,
    alert_init, alert_field, alert_finish, alert_name, alert_line};

int load_alerts(loader_t *ld)
{
    ag_config_t *c = ld->cfg;
    ag_alert_defs_free(c->alerts, c->nalerts);
    c->alerts = NULL;
    c->nalerts = 0;
    return load_list(ld, &k_alert, (void **)&c->alerts, &c->nalerts);
}
