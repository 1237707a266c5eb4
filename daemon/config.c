/* config.c - augurd's settings (see ag_config.h): defaults, the YAML config file and single
 * "section.key" settings from command-line flags.
 *
 * Every setting is one row of k_settings below: its dotted name, its kind (string, address, size,
 * integer, duration, log level) and where it lives in ag_config_t. ag_config_set looks the name
 * up, parses and validates the value for that kind and stores it; nothing else writes settings.
 *
 * The file is read whole into memory (EIO if that fails) and parsed with libyaml's event API.
 * The schema is two levels deep - a mapping of sections, each a mapping of settings to scalars -
 * so the loader walks exactly that shape and hands every leaf to ag_config_set. The one
 * exception is `models:`, a list of mappings (load_models), whose entries are checked field by
 * field (the expression is parsed) and replace the list as a whole. Anything else (a
 * list where a mapping belongs, an unknown or repeated name, a value that does not parse) is
 * AG_EINVAL with "<path>:<line>:<column>: " in front of the message, pointing at the offending
 * key or value. A section may be left empty ("web:" with nothing under it), and an empty or
 * comments-only file is valid: it changes nothing. Anchors are allowed but aliases ("*name") are
 * not (nothing in a flat schema needs them). Settings are applied to a copy of the caller's
 * configuration that replaces it only once the whole file has been applied, so a failed load
 * (e.g. a bad reload on SIGHUP) leaves the configuration in force untouched.
 */
#include "ag_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "ag_buf.h"
#include "ag_time.h"
#include "config_int.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define TiB (UINT64_C(1) << 40)
#define PiB (UINT64_C(1) << 50)

/* A config file is a few hundred bytes; anything this big is not one (e.g. /dev/zero). */
#define MAX_FILE_BYTES (1 << 20)

/* ---- the settings table ------------------------------------------------------------------ */

typedef enum {
    K_LISTEN,   /* char *, "host:port" */
    K_STRING,   /* char *, non-empty */
    K_BYTES,    /* uint64_t, ag_parse_bytes, > 0 */
    K_BYTES0,   /* uint64_t, ag_parse_bytes, >= 0 (0 turns the feature off) */
    K_U32,      /* uint32_t, decimal integer, > 0 */
    K_U64,      /* uint64_t, decimal integer, > 0 */
    K_U640,     /* uint64_t, decimal integer, >= 0 (0 = no limit) */
    K_DURATION, /* int64_t milliseconds, ag_parse_duration, > 0 */
    K_DURATION0,/* int64_t milliseconds, ag_parse_duration, >= 0 (0 turns the feature off) */
    K_LEVEL,    /* ag_log_level_t, ag_log_parse_level */
    K_BOOL,     /* bool: true/false (also yes/no, on/off) */
    K_URL,      /* char *, http:// or https:// URL; "" clears it (NULL) */
} kind_t;

typedef struct {
    const char *name; /* "section.key" */
    kind_t kind;
    size_t off;       /* offset of the field in ag_config_t */
} setting_t;

#define S(name, kind, field) {name, kind, offsetof(ag_config_t, field)}
static const setting_t k_settings[] = {
    S("web.listen_address", K_LISTEN, listen_address),
    S("storage.path", K_STRING, storage_path),
    S("storage.max_size", K_BYTES, map_size),
    S("storage.out_of_order_window", K_DURATION0, ooo_window_ms),
    S("storage.retention", K_DURATION0, retention_ms[0]),
    S("storage.rollup_1m_retention", K_DURATION0, retention_ms[1]),
    S("storage.rollup_1h_retention", K_DURATION0, retention_ms[2]),
    S("limits.max_request_bytes", K_BYTES, max_request_bytes),
    S("limits.max_decoded_bytes", K_BYTES, max_decoded_bytes),
    S("limits.max_labels_per_series", K_U32, max_labels_per_series),
    S("limits.max_label_name_bytes", K_U32, max_label_name_bytes),
    S("limits.max_label_value_bytes", K_U32, max_label_value_bytes),
    S("limits.max_series", K_U640, max_series),
    S("limits.max_series_per_metric", K_U640, max_series_per_metric),
    S("query.lookback_delta", K_DURATION, lookback_delta_ms),
    S("query.timeout", K_DURATION, query_timeout_ms),
    S("query.max_samples", K_U64, query_max_samples),
    S("query.cache_max_bytes", K_BYTES0, query_cache_max_bytes),
    S("detection.auto", K_BOOL, auto_detect),
    S("alerting.alertmanager_url", K_URL, alertmanager_url),
    S("alerting.resend_delay", K_DURATION, alert_resend_ms),
    S("log.level", K_LEVEL, log_level),
};
#undef S
#define NSETTINGS (sizeof k_settings / sizeof k_settings[0])
_Static_assert(NSETTINGS <= CFG_MAX_SETTINGS, "raise CFG_MAX_SETTINGS");

static const char *const k_sections[] = {"web",       "storage", "limits",  "query",
                                         "detection", "log",     "models",  "scalers",
                                         "alerting",  "alerts"};
#define MODELS_SECTION 6  /* "models" is a list of mappings, loaded by load_models */
#define SCALERS_SECTION 7 /* "scalers" too, loaded by load_scalers */
#define ALERTS_SECTION 9  /* and "alerts", by load_alerts */
#define NSECTIONS (sizeof k_sections / sizeof k_sections[0])
_Static_assert(NSECTIONS <= CFG_MAX_SECTIONS, "raise CFG_MAX_SECTIONS");

static const setting_t *find_setting(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(k_settings[i].name, name) == 0) return &k_settings[i];
    return NULL;
}

/* Writes the names of section `sec`'s settings ("timeout, max_samples") into out. */
static void section_keys(const char *sec, size_t seclen, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *name = k_settings[i].name;
        if (strncmp(name, sec, seclen) != 0 || name[seclen] != '.') continue;
        int w = snprintf(out + n, outlen - n, "%s%s", n ? ", " : "", name + seclen + 1);
        if (w < 0 || (size_t)w >= outlen - n) break;
        n += (size_t)w;
    }
}

/* ---- value parsers ----------------------------------------------------------------------- */

/* A non-empty run of decimal digits and nothing else, without overflow. */
static int parse_u64_dec(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s) return AG_EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return AG_EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return AG_EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return AG_OK;
}

int ag_parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"true", "True", "TRUE", "yes", "on", "1"};
    static const char *const f[] = {"false", "False", "FALSE", "no", "off", "0"};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (strcmp(s, t[i]) == 0) return *out = true, AG_OK;
        if (strcmp(s, f[i]) == 0) return *out = false, AG_OK;
    }
    return AG_EINVAL;
}

int ag_parse_bytes(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"B", 1},     {"KB", KiB},   {"MB", MiB},   {"GB", GiB},   {"TB", TiB}, {"PB", PiB},
        {"KiB", KiB}, {"MiB", MiB}, {"GiB", GiB}, {"TiB", TiB},
    };
    if (!s) return AG_EINVAL;
    const char *p = s;
    uint64_t whole = 0;
    int nwhole = 0;
    for (; *p >= '0' && *p <= '9'; p++, nwhole++) {
        unsigned d = (unsigned)(*p - '0');
        if (whole > (UINT64_MAX - d) / 10) return AG_EINVAL;
        whole = whole * 10 + d;
    }
    /* An optional fraction ("1.5GiB"); only the first 18 digits count, which is far below a
     * byte even in petabytes. */
    uint64_t frac = 0, scale = 1;
    int nfrac = 0;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, nfrac++) {
            if (nfrac < 18) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                scale *= 10;
            }
        }
        if (nfrac == 0) return AG_EINVAL; /* "1." */
    }
    if (nwhole == 0 && nfrac == 0) return AG_EINVAL;
    uint64_t mult = 0;
    if (*p == '\0') {
        if (nfrac) return AG_EINVAL; /* "1.5": fractions need a unit */
        mult = 1;
    } else {
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strcmp(p, units[i].unit) == 0) mult = units[i].mult;
        if (!mult) return AG_EINVAL;
    }
    if (whole > UINT64_MAX / mult) return AG_EINVAL;
    uint64_t v = whole * mult;
    if (nfrac) {
        /* frac/scale * mult, truncated to whole bytes (as Prometheus does); exact in 128 bits. */
        unsigned __int128 f = (unsigned __int128)frac * mult / scale;
        if (f > UINT64_MAX - v) return AG_EINVAL;
        v += (uint64_t)f;
    }
    *out = v;
    return AG_OK;
}

/* "host:port", "[v6]:port" or ":port" (all interfaces), port 1..65535. */
static int check_listen(const char *key, const char *v, ag_errmsg_t *e)
{
    const char *colon = strrchr(v, ':');
    if (!colon)
        return ag_errmsg_set(e, AG_EINVAL, -1, "%s: \"%.100s\" must be host:port, e.g. %s", key,
                             v, AG_DEFAULT_LISTEN);
    uint64_t port;
    if (parse_u64_dec(colon + 1, &port) || port < 1 || port > 65535)
        return ag_errmsg_set(e, AG_EINVAL, -1, "%s: \"%.100s\" needs a port from 1 to 65535 after the last ':'",
                             key, v);
    size_t hl = (size_t)(colon - v);
    if (hl && v[0] == '[') {
        if (v[hl - 1] != ']' || hl < 3)
            return ag_errmsg_set(e, AG_EINVAL, -1, "%s: \"%.100s\": expected [IPv6-address]:port",
                                 key, v);
    } else if (memchr(v, ':', hl)) {
        return ag_errmsg_set(e, AG_EINVAL, -1,
                             "%s: \"%.100s\": write an IPv6 address in brackets, e.g. [::1]:9201",
                             key, v);
    }
    return AG_OK;
}

/* ---- ag_config_t life cycle ---------------------------------------------------------------- */

int ag_config_defaults(ag_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->listen_address = strdup(AG_DEFAULT_LISTEN);
    c->storage_path = strdup("./data");
    if (!c->listen_address || !c->storage_path) {
        ag_config_free(c);
        return AG_ENOMEM;
    }
    c->map_size = 64 * GiB;
    c->ooo_window_ms = 10 * 60 * 1000;
    c->retention_ms[0] = 15 * 86400000LL;
    c->retention_ms[1] = 90 * 86400000LL;
    c->retention_ms[2] = 730 * 86400000LL;
    c->max_request_bytes = 32 * MiB;
    c->max_decoded_bytes = 64 * MiB;
    c->max_labels_per_series = 64;
    c->max_label_name_bytes = 256;
    c->max_label_value_bytes = 4096;
    c->max_series = 10000000;
    c->max_series_per_metric = 0;
    c->lookback_delta_ms = 5 * 60 * 1000;
    c->query_timeout_ms = 2 * 60 * 1000;
    c->query_max_samples = 50000000;
    c->query_cache_max_bytes = 128 * MiB;
    c->log_level = AG_LOG_INFO;
    c->auto_detect = true;
    c->alert_resend_ms = 60000;
    return AG_OK;
}

void ag_config_free(ag_config_t *c)
{
    if (!c) return;
    free(c->listen_address);
    free(c->storage_path);
    c->listen_address = NULL;
    c->storage_path = NULL;
    cfg_models_free(c->models, c->nmodels);
    c->models = NULL;
    c->nmodels = 0;
    ag_scaler_defs_free(c->scalers, c->nscalers);
    c->scalers = NULL;
    c->nscalers = 0;
    ag_alert_defs_free(c->alerts, c->nalerts);
    c->alerts = NULL;
    c->nalerts = 0;
    free(c->alertmanager_url);
    c->alertmanager_url = NULL;
}

/* A deep copy of `src` (NULL strings stay NULL). */
static int config_copy(ag_config_t *dst, const ag_config_t *src)
{
    *dst = *src;
    dst->listen_address = NULL;
    dst->storage_path = NULL;
    dst->models = NULL;
    dst->nmodels = 0;
    dst->scalers = NULL;
    dst->nscalers = 0;
    dst->alerts = NULL;
    dst->nalerts = 0;
    dst->alertmanager_url = NULL;
    if ((src->alertmanager_url && !(dst->alertmanager_url = strdup(src->alertmanager_url))) ||
        ag_alert_defs_copy(src->alerts, src->nalerts, &dst->alerts))
        goto nomem;
    dst->nalerts = src->nalerts;
    if ((src->listen_address && !(dst->listen_address = strdup(src->listen_address))) ||
        (src->storage_path && !(dst->storage_path = strdup(src->storage_path))))
        goto nomem;
    if (src->nscalers && ag_scaler_defs_copy(src->scalers, src->nscalers, &dst->scalers)) goto nomem;
    dst->nscalers = src->nscalers;
    if (src->nmodels) {
        if (!(dst->models = calloc(src->nmodels, sizeof *dst->models))) goto nomem;
        for (size_t i = 0; i < src->nmodels; i++) {
            ag_model_def_t *m = &dst->models[i];
            *m = src->models[i];
            m->name = strdup(src->models[i].name);
            m->expr = strdup(src->models[i].expr);
            dst->nmodels = i + 1;
            if (!m->name || !m->expr) goto nomem;
        }
    }
    return AG_OK;
nomem:
    ag_config_free(dst);
    return AG_ENOMEM;
}

int ag_config_set(ag_config_t *c, const char *key, const char *value, ag_errmsg_t *e)
{
    const setting_t *s = key ? find_setting(key) : NULL;
    if (!s) return ag_errmsg_set(e, AG_EINVAL, -1, "unknown setting \"%.100s\"", key ? key : "");
    if (!value) value = "";
    void *field = (char *)c + s->off;
    switch (s->kind) {
    case K_LISTEN:
    case K_STRING: {
        if (!*value) return ag_errmsg_set(e, AG_EINVAL, -1, "%s must not be empty", key);
        int rc = s->kind == K_LISTEN ? check_listen(key, value, e) : AG_OK;
        if (rc) return rc;
        char *dup = strdup(value);
        if (!dup) return ag_errmsg_set(e, AG_ENOMEM, -1, "out of memory");
        char **dst = field;
        free(*dst);
        *dst = dup;
        return AG_OK;
    }
    case K_BYTES:
    case K_BYTES0: {
        uint64_t v;
        if (ag_parse_bytes(value, &v) || (v == 0 && s->kind == K_BYTES))
            return ag_errmsg_set(e, AG_EINVAL, -1,
                                 "%s: \"%.64s\" is not a size %s(bytes, or a number "
                                 "with B KB MB GB TB PB KiB MiB GiB TiB, all powers of 1024, "
                                 "e.g. \"64MiB\")",
                                 key, value, s->kind == K_BYTES ? "above zero " : "");
        *(uint64_t *)field = v;
        return AG_OK;
    }
    case K_U32:
    case K_U64:
    case K_U640: {
        uint64_t v;
        uint64_t max = s->kind == K_U32 ? UINT32_MAX : UINT64_MAX;
        uint64_t min = s->kind == K_U640 ? 0 : 1;
        if (parse_u64_dec(value, &v) || v < min || v > max)
            return ag_errmsg_set(e, AG_EINVAL, -1,
                                 "%s: \"%.64s\" is not a whole number from %llu to %llu", key,
                                 value, (unsigned long long)min, (unsigned long long)max);
        if (s->kind == K_U32)
            *(uint32_t *)field = (uint32_t)v;
        else
            *(uint64_t *)field = v;
        return AG_OK;
    }
    case K_DURATION:
    case K_DURATION0: {
        int64_t ms = 0;
        ag_errmsg_t de = {{0}, -1};
        if (ag_parse_duration(value, &ms, &de))
            return ag_errmsg_set(e, AG_EINVAL, -1,
                                 "%s: %s (write e.g. \"5m\" or \"1h30m\"; units ms s m h d w y)",
                                 key, de.msg[0] ? de.msg : "not a valid duration");
        if (ms < 0 || (ms == 0 && s->kind == K_DURATION))
            return ag_errmsg_set(e, AG_EINVAL, -1, "%s: must be longer than 0s, got \"%.64s\"",
                                 key, value);
        *(int64_t *)field = ms;
        return AG_OK;
    }
    case K_URL: {
        char **dst = field;
        if (!*value) {
            free(*dst);
            *dst = NULL;
            return AG_OK;
        }
        if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
            return ag_errmsg_set(e, AG_EINVAL, -1,
                                 "%s: \"%.100s\" must start with http:// or https://", key, value);
        char *dup = strdup(value);
        if (!dup) return ag_errmsg_set(e, AG_ENOMEM, -1, "out of memory");
        free(*dst);
        *dst = dup;
        return AG_OK;
    }
    case K_BOOL: {
        bool b;
        if (ag_parse_bool(value, &b))
            return ag_errmsg_set(e, AG_EINVAL, -1, "%s: \"%.64s\" is not true or false", key,
                                 value);
        *(bool *)field = b;
        return AG_OK;
    }
    case K_LEVEL: {
        ag_log_level_t lvl;
        if (ag_log_parse_level(value, &lvl))
            return ag_errmsg_set(e, AG_EINVAL, -1,
                                 "%s: \"%.64s\" is not one of debug, info, warn, error", key, value);
        *(ag_log_level_t *)field = lvl;
        return AG_OK;
    }
    }
    return ag_errmsg_set(e, AG_EINVAL, -1, "unknown setting \"%.100s\"", key);
}

/* ---- the YAML loader --------------------------------------------------------------------- */

/* The loader reads libyaml's event stream twice rather than loading a document tree. The first
 * pass only checks the YAML syntax, so that a syntax error is what gets reported even when a
 * value before it is also wrong (a bad indentation often turns into both). The second walks the
 * schema and applies the settings. The schema is flat: both passes stop at nesting deeper than
 * section -> setting, so libyaml never works through (in time quadratic in the depth) whatever
 * absurd structure a broken file holds. */

/* Fails with "<path>:<line>:<col>: <message>" for the position `m` (0-based in libyaml). */
int fail_at(const loader_t *ld, yaml_mark_t m, const char *msg)
{
    return ag_errmsg_set(ld->e, AG_EINVAL, -1, "%s:%zu:%zu: %s", ld->path, m.line + 1,
                         m.column + 1, msg);
}

/* Turns a libyaml parser failure into an AG_E* code and message. */
static int parser_failure(const loader_t *ld)
{
    const yaml_parser_t *p = &ld->parser;
    /* libyaml fails some allocations without setting an error code. */
    if (p->error == YAML_MEMORY_ERROR || p->error == YAML_NO_ERROR)
        return ag_errmsg_set(ld->e, AG_ENOMEM, -1, "out of memory");
    const char *problem = p->problem ? p->problem : "unknown error";
    char msg[256];
    if (p->error == YAML_READER_ERROR) {
        /* Bad encoding: libyaml gives a byte offset, not a line; count lines ourselves. */
        yaml_mark_t m = {0, 0, 0};
        for (size_t i = 0; i < p->problem_offset && i < ld->len; i++) {
            if (ld->buf[i] == '\n') {
                m.line++;
                m.column = 0;
            } else {
                m.column++;
            }
        }
        snprintf(msg, sizeof msg, "not a valid YAML file: %s", problem);
        return fail_at(ld, m, msg);
    }
    if (p->context)
        snprintf(msg, sizeof msg, "YAML syntax error: %s (%s on line %zu)", problem, p->context,
                 p->context_mark.line + 1);
    else
        snprintf(msg, sizeof msg, "YAML syntax error: %s", problem);
    return fail_at(ld, p->problem_mark, msg);
}

/* Moves to the next event (ld->ev), releasing the current one. */
int next_event(loader_t *ld)
{
    if (ld->have_ev) yaml_event_delete(&ld->ev);
    ld->have_ev = 0;
    if (!yaml_parser_parse(&ld->parser, &ld->ev)) return parser_failure(ld);
    ld->have_ev = 1;
    return AG_OK;
}

const char *event_kind(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_MAPPING_START_EVENT: return "a mapping (key: value pairs)";
    case YAML_SEQUENCE_START_EVENT: return "a list";
    case YAML_ALIAS_EVENT: return "an alias";
    default: return "a single value";
    }
}

/* Aliases ("*name") would need the anchored node kept around; the schema has no use for them. */
int fail_alias(const loader_t *ld)
{
    return fail_at(ld, ld->ev.start_mark,
                   "YAML aliases (\"*name\") are not supported in the config file");
}

/* YAML's null: an untagged plain scalar that is empty, "~" or "null", e.g. a section written as
 * "web:" with nothing under it. */
int is_null(const yaml_event_t *ev)
{
    if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.tag ||
        ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    return len == 0 || (len == 1 && v[0] == '~') ||
           (len == 4 && (!memcmp(v, "null", 4) || !memcmp(v, "Null", 4) || !memcmp(v, "NULL", 4)));
}

/* The current event as a mapping key: a C string of at most `cap - 1` bytes. */
int key_name(const loader_t *ld, char *out, size_t cap)
{
    const yaml_event_t *ev = &ld->ev;
    if (ev->type == YAML_ALIAS_EVENT) return fail_alias(ld);
    if (ev->type != YAML_SCALAR_EVENT) {
        char msg[160];
        snprintf(msg, sizeof msg, "expected a setting name here, found %s", event_kind(ev));
        return fail_at(ld, ev->start_mark, msg);
    }
    size_t len = ev->data.scalar.length;
    if (len >= cap) len = cap - 1; /* too long to be a known name; still reported as unknown */
    memcpy(out, ev->data.scalar.value, len);
    out[len] = '\0';
    if (strlen(out) != len) return fail_at(ld, ev->start_mark, "a setting name contains a NUL byte");
    return AG_OK;
}

/* At a setting's key inside section `sec`: checks the name, reads the value and applies it. */
static int load_setting(loader_t *ld, const char *sec)
{
    char key[64], name[80], msg[512];
    int rc = key_name(ld, key, sizeof key);
    if (rc) return rc;
    yaml_mark_t kmark = ld->ev.start_mark;
    snprintf(name, sizeof name, "%s.%s", sec, key);
    const setting_t *s = find_setting(name);
    if (!s) {
        char known[128];
        section_keys(sec, strlen(sec), known, sizeof known);
        snprintf(msg, sizeof msg, "unknown setting \"%s\" (%s has: %s)", name, sec, known);
        return fail_at(ld, kmark, msg);
    }
    size_t idx = (size_t)(s - k_settings);
    if (ld->setting_line[idx]) {
        snprintf(msg, sizeof msg, "setting \"%s\" given twice (first on line %zu)", name,
                 ld->setting_line[idx]);
        return fail_at(ld, kmark, msg);
    }
    ld->setting_line[idx] = kmark.line + 1;

    if ((rc = next_event(ld))) return rc;
    const yaml_event_t *v = &ld->ev;
    if (v->type == YAML_ALIAS_EVENT) return fail_alias(ld);
    if (v->type != YAML_SCALAR_EVENT) {
        snprintf(msg, sizeof msg, "\"%s\" takes a single value, found %s", name, event_kind(v));
        return fail_at(ld, v->start_mark, msg);
    }
    if (is_null(v)) {
        snprintf(msg, sizeof msg, "\"%s\" has no value; give one or remove the line", name);
        return fail_at(ld, v->start_mark, msg);
    }
    const char *value = (const char *)v->data.scalar.value;
    if (strlen(value) != v->data.scalar.length) {
        snprintf(msg, sizeof msg, "the value of \"%s\" contains a NUL byte", name);
        return fail_at(ld, v->start_mark, msg);
    }
    ag_errmsg_t se = {{0}, -1};
    rc = ag_config_set(ld->cfg, name, value, &se);
    if (rc == AG_ENOMEM) return ag_errmsg_set(ld->e, rc, -1, "out of memory");
    if (rc) return fail_at(ld, v->start_mark, se.msg);
    return AG_OK;
}

/* At a section's key: checks the name, then loads the settings under it. */
static int load_section(loader_t *ld)
{
    char sec[64], msg[512];
    int rc = key_name(ld, sec, sizeof sec);
    if (rc) return rc;
    yaml_mark_t kmark = ld->ev.start_mark;
    size_t idx = NSECTIONS;
    for (size_t i = 0; i < NSECTIONS; i++)
        if (strcmp(k_sections[i], sec) == 0) idx = i;
    if (idx == NSECTIONS) {
        const char *dot = strchr(sec, '.');
        if (dot && find_setting(sec)) {
            /* "query.timeout: 5m" at the top: the flag spelling, not the file's. */
            snprintf(msg, sizeof msg,
                     "unknown setting \"%s\": in the file settings are nested, write \"%.*s:\" "
                     "and below it, indented, \"%s: ...\"",
                     sec, (int)(dot - sec), sec, dot + 1);
        } else {
            snprintf(msg, sizeof msg,
                     "unknown section \"%s\" (sections are web, storage, limits, query, "
                     "detection, log, models, scalers, alerting, alerts)", sec);
        }
        return fail_at(ld, kmark, msg);
    }
    if (ld->section_line[idx]) {
        snprintf(msg, sizeof msg, "section \"%s\" given twice (first on line %zu)", sec,
                 ld->section_line[idx]);
        return fail_at(ld, kmark, msg);
    }
    ld->section_line[idx] = kmark.line + 1;

    if ((rc = next_event(ld))) return rc;
    if (is_null(&ld->ev)) return AG_OK; /* "web:" with nothing under it */
    if (idx == MODELS_SECTION) return load_models(ld);
    if (idx == SCALERS_SECTION) return load_scalers(ld);
    if (idx == ALERTS_SECTION) return load_alerts(ld);
    if (ld->ev.type == YAML_ALIAS_EVENT) return fail_alias(ld);
    if (ld->ev.type != YAML_MAPPING_START_EVENT) {
        snprintf(msg, sizeof msg, "section \"%s\" must be a mapping of settings, found %s", sec,
                 event_kind(&ld->ev));
        return fail_at(ld, ld->ev.start_mark, msg);
    }
    for (;;) {
        if ((rc = next_event(ld))) return rc;
        if (ld->ev.type == YAML_MAPPING_END_EVENT) return AG_OK;
        if ((rc = load_setting(ld, k_sections[idx]))) return rc;
    }
}

/* Pass one: YAML syntax only, up to the first collection nested too deep for the schema (which
 * pass two reports). */
static int check_syntax(loader_t *ld)
{
    int depth = 0, limit = 2;
    size_t items = 0; /* events directly in the root mapping: keys and values alternate */
    for (;;) {
        int rc = next_event(ld);
        if (rc) return rc;
        bool root_key = depth == 1 && items % 2 == 0;
        if (depth == 1) items++;
        switch (ld->ev.type) {
        case YAML_SCALAR_EVENT:
            /* models: and scalers: are lists of mappings (with lists inside). */
            if (root_key)
                limit = (ld->ev.data.scalar.length == 6 &&
                         !memcmp(ld->ev.data.scalar.value, "models", 6)) ||
                                (ld->ev.data.scalar.length == 7 &&
                                 !memcmp(ld->ev.data.scalar.value, "scalers", 7)) ||
                                (ld->ev.data.scalar.length == 6 &&
                                 !memcmp(ld->ev.data.scalar.value, "alerts", 6))
                            ? 5
                            : 2;
            break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (++depth > limit) return AG_OK;
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT: depth--; break;
        case YAML_STREAM_END_EVENT: return AG_OK;
        default: break;
        }
    }
}

/* Pass two: at most one document whose root is a mapping of sections (or null). */
static int load_stream(loader_t *ld)
{
    int rc;
    if ((rc = next_event(ld))) return rc; /* STREAM-START */
    if ((rc = next_event(ld))) return rc;
    if (ld->ev.type == YAML_STREAM_END_EVENT) return AG_OK; /* empty or only comments */
    /* DOCUMENT-START, then the root node */
    if ((rc = next_event(ld))) return rc;
    if (ld->ev.type == YAML_ALIAS_EVENT) return fail_alias(ld);
    if (ld->ev.type == YAML_MAPPING_START_EVENT) {
        for (;;) {
            if ((rc = next_event(ld))) return rc;
            if (ld->ev.type == YAML_MAPPING_END_EVENT) break;
            if ((rc = load_section(ld))) return rc;
        }
    } else if (!is_null(&ld->ev)) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "the file must be a mapping of sections (web:, storage:, ...), found %s",
                 event_kind(&ld->ev));
        return fail_at(ld, ld->ev.start_mark, msg);
    }
    if ((rc = next_event(ld))) return rc; /* DOCUMENT-END */
    if ((rc = next_event(ld))) return rc;
    if (ld->ev.type == YAML_DOCUMENT_START_EVENT)
        return fail_at(ld, ld->ev.start_mark,
                       "only one YAML document is allowed (remove the second \"---\")");
    return AG_OK; /* STREAM-END */
}

/* Reads all of `path` into a NUL-terminated malloc'd buffer. */
static int read_file(const char *path, char **out, size_t *outlen, ag_errmsg_t *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int err = errno;
        return ag_errmsg_set(e, AG_EIO, -1, "cannot read config file %s: %s", path, strerror(err));
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return ag_errmsg_set(e, AG_ENOMEM, -1, "out of memory");
    }
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > MAX_FILE_BYTES) {
                free(buf);
                fclose(f);
                return ag_errmsg_set(e, AG_EINVAL, -1,
                                     "config file %s is larger than %d bytes; is it the right file?",
                                     path, MAX_FILE_BYTES);
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return ag_errmsg_set(e, AG_ENOMEM, -1, "out of memory");
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - 1 - len, f);
        len += n;
        if (n == 0) break;
    }
    if (ferror(f)) {
        int err = errno;
        free(buf);
        fclose(f);
        return ag_errmsg_set(e, AG_EIO, -1, "cannot read config file %s: %s", path, strerror(err));
    }
    fclose(f);
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return AG_OK;
}

int ag_config_load_file(const char *path, ag_config_t *c, ag_errmsg_t *e)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len, e);
    if (rc) return rc;

    ag_config_t tmp;
    if ((rc = config_copy(&tmp, c))) {
        free(buf);
        return ag_errmsg_set(e, rc, -1, "out of memory");
    }

    loader_t *ld = calloc(1, sizeof *ld);
    if (!ld) {
        ag_config_free(&tmp);
        free(buf);
        return ag_errmsg_set(e, AG_ENOMEM, -1, "out of memory");
    }
    ld->path = path;
    ld->buf = buf;
    ld->len = len;
    ld->cfg = &tmp;
    ld->e = e;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        if (!yaml_parser_initialize(&ld->parser)) {
            rc = ag_errmsg_set(e, AG_ENOMEM, -1, "out of memory");
            break;
        }
        yaml_parser_set_input_string(&ld->parser, (const unsigned char *)buf, len);
        rc = pass == 0 ? check_syntax(ld) : load_stream(ld);
        if (ld->have_ev) yaml_event_delete(&ld->ev);
        ld->have_ev = 0;
        yaml_parser_delete(&ld->parser);
    }
    free(ld);
    free(buf);
    if (rc) {
        ag_config_free(&tmp);
        return rc;
    }
    ag_config_free(c);
    *c = tmp;
    return AG_OK;
}

/* ---- the running configuration as YAML (GET /api/v1/status/config) ----------------------- */

static void yaml_str(ag_buf_t *o, const char *s)
{
    ag_buf_putc(o, '"');
    for (const char *p = s; p && *p; p++) {
        if (*p == '"' || *p == '\\') ag_buf_putc(o, '\\');
        if ((unsigned char)*p < 0x20) ag_buf_printf(o, "\\x%02x", (unsigned char)*p);
        else ag_buf_putc(o, *p);
    }
    ag_buf_putc(o, '"');
}

static void yaml_dur(ag_buf_t *o, int64_t ms)
{
    char d[64];
    ag_format_duration(ms, d, sizeof d);
    ag_buf_puts(o, d);
}

void ag_config_dump_yaml(const ag_config_t *c, ag_buf_t *o)
{
    const char *sec = "";
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting_t *s = &k_settings[i];
        const char *dot = strchr(s->name, '.');
        size_t sl = (size_t)(dot - s->name);
        if (strncmp(sec, s->name, sl) != 0 || sec[sl] != '.') {
            ag_buf_printf(o, "%.*s:\n", (int)sl, s->name);
            sec = s->name;
        }
        const void *field = (const char *)c + s->off;
        ag_buf_printf(o, "  %s: ", dot + 1);
        switch (s->kind) {
        case K_LISTEN:
        case K_STRING:
        case K_URL: yaml_str(o, *(char *const *)field ? *(char *const *)field : ""); break;
        case K_BYTES:
        case K_BYTES0:
        case K_U64:
        case K_U640: ag_buf_printf(o, "%llu", (unsigned long long)*(const uint64_t *)field); break;
        case K_U32: ag_buf_printf(o, "%u", *(const uint32_t *)field); break;
        case K_DURATION:
        case K_DURATION0: yaml_dur(o, *(const int64_t *)field); break;
        case K_LEVEL: ag_buf_puts(o, ag_log_level_name(*(const ag_log_level_t *)field)); break;
        case K_BOOL: ag_buf_puts(o, *(const bool *)field ? "true" : "false"); break;
        }
        ag_buf_putc(o, '\n');
    }
    if (c->nmodels) ag_buf_puts(o, "models:\n");
    for (size_t i = 0; i < c->nmodels; i++) {
        const ag_model_def_t *m = &c->models[i];
        ag_buf_puts(o, "  - name: ");
        yaml_str(o, m->name);
        ag_buf_puts(o, "\n    expr: ");
        yaml_str(o, m->expr);
        ag_buf_puts(o, "\n    step: ");
        yaml_dur(o, m->step_ms);
        ag_buf_puts(o, "\n    horizon: ");
        yaml_dur(o, m->horizon_ms);
        ag_buf_printf(o, "\n    seasons: [%s%s%s]\n    log_scale: %s\n    sensitivity: %g\n"
                      "    coverage: %g\n    warmup: ",
                      m->season_day ? "day" : "", m->season_day && m->season_week ? ", " : "",
                      m->season_week ? "week" : "", m->log_scale ? "true" : "false",
                      m->sensitivity, m->coverage);
        yaml_dur(o, m->warmup_ms);
        ag_buf_puts(o, "\n    refit: ");
        yaml_dur(o, m->refit_ms);
        ag_buf_putc(o, '\n');
    }
    if (c->nscalers) ag_buf_puts(o, "scalers:\n");
    for (size_t i = 0; i < c->nscalers; i++) {
        const ag_scaler_def_t *d = &c->scalers[i];
        ag_buf_puts(o, "  - name: ");
        yaml_str(o, d->name);
        ag_buf_puts(o, "\n    load: ");
        yaml_str(o, d->load);
        ag_buf_printf(o, "\n    capacity_per_replica: %g\n    target_utilization: %g\n"
                      "    confidence: %g\n    min_replicas: %u\n    max_replicas: %u\n"
                      "    lead_time: ",
                      d->capacity, d->target, d->confidence, d->min_replicas, d->max_replicas);
        yaml_dur(o, d->lead_ms);
        ag_buf_puts(o, "\n    interval: ");
        yaml_dur(o, d->interval_ms);
        ag_buf_puts(o, "\n    scale_down_stabilization: ");
        yaml_dur(o, d->stabilization_ms);
        ag_buf_puts(o, "\n");
        if (d->nwebhooks) ag_buf_puts(o, "    webhooks:\n");
        for (size_t k = 0; k < d->nwebhooks; k++) {
            ag_buf_puts(o, "      - url: ");
            yaml_str(o, d->webhooks[k].url);
            ag_buf_puts(o, d->webhooks[k].secret ? "\n        secret: <secret>\n" : "\n");
        }
    }
    if (c->nalerts) ag_buf_puts(o, "alerts:\n");
    for (size_t i = 0; i < c->nalerts; i++) {
        const ag_alert_def_t *a = &c->alerts[i];
        ag_buf_puts(o, "  - name: ");
        yaml_str(o, a->name);
        ag_buf_puts(o, "\n    expr: ");
        yaml_str(o, a->expr);
        ag_buf_puts(o, "\n    for: ");
        yaml_dur(o, a->for_ms);
        ag_buf_puts(o, "\n");
        for (size_t k = 0; k < a->nlabels; k++) {
            if (!k) ag_buf_puts(o, "    labels:\n");
            ag_buf_printf(o, "      %s: ", a->label_names[k]);
            yaml_str(o, a->label_values[k]);
            ag_buf_putc(o, '\n');
        }
        for (size_t k = 0; k < a->nannotations; k++) {
            if (!k) ag_buf_puts(o, "    annotations:\n");
            ag_buf_printf(o, "      %s: ", a->annotation_names[k]);
            yaml_str(o, a->annotation_values[k]);
            ag_buf_putc(o, '\n');
        }
    }
}
