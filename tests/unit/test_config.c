/* test_config.c - unit tests for the configuration: defaults, the YAML loader, ag_config_set's
 * validation and ag_parse_bytes (daemon/config.c). Runs from the repository root (it loads
 * daemon/augur.example.yml); scratch files go to a mkdtemp directory removed at the end. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ag_config.h"
#include "ag_err.h"
#include "ag_log.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static char g_dir[64];      /* the scratch directory */
static char g_path[128];    /* the scratch config file inside it */

static int group_setup(void **state)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/test_config.XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_path, sizeof g_path, "%s/augur.yml", g_dir);
    return 0;
}

static int group_teardown(void **state)
{
    unlink(g_path);
    return rmdir(g_dir);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* Writes `yaml` to the scratch file, loads it over `c`, removes the file. */
static int load_text(const char *yaml, ag_config_t *c, ag_errmsg_t *e)
{
    write_file(g_path, yaml);
    memset(e, 0, sizeof *e);
    int rc = ag_config_load_file(g_path, c, e);
    assert_int_equal(unlink(g_path), 0);
    return rc;
}

/* Loads `yaml` over the defaults expecting AG_EINVAL with a message that starts with
 * "<file>:<pos>: " and contains `needle`. */
static void expect_invalid(const char *yaml, const char *pos, const char *needle)
{
    ag_config_t c;
    ag_errmsg_t e;
    assert_int_equal(ag_config_defaults(&c), 0);
    int rc = load_text(yaml, &c, &e);
    if (rc != AG_EINVAL) fail_msg("expected AG_EINVAL for %s, got %d (%s)", yaml, rc, e.msg);
    char prefix[200];
    snprintf(prefix, sizeof prefix, "%s:%s: ", g_path, pos);
    if (strncmp(e.msg, prefix, strlen(prefix)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"", e.msg, prefix);
    if (!strstr(e.msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", e.msg, needle);
    ag_config_free(&c);
}

static void assert_config_equal(const ag_config_t *a, const ag_config_t *b)
{
    assert_string_equal(a->listen_address, b->listen_address);
    assert_string_equal(a->storage_path, b->storage_path);
    assert_int_equal(a->map_size, b->map_size);
    assert_int_equal(a->max_request_bytes, b->max_request_bytes);
    assert_int_equal(a->max_decoded_bytes, b->max_decoded_bytes);
    assert_int_equal(a->max_labels_per_series, b->max_labels_per_series);
    assert_int_equal(a->max_label_name_bytes, b->max_label_name_bytes);
    assert_int_equal(a->max_label_value_bytes, b->max_label_value_bytes);
    assert_int_equal(a->lookback_delta_ms, b->lookback_delta_ms);
    assert_int_equal(a->query_timeout_ms, b->query_timeout_ms);
    assert_int_equal(a->query_max_samples, b->query_max_samples);
    assert_int_equal(a->query_cache_max_bytes, b->query_cache_max_bytes);
    assert_int_equal(a->log_level, b->log_level);
    assert_int_equal(a->auto_detect, b->auto_detect);
    assert_int_equal(a->nmodels, b->nmodels);
    assert_int_equal(a->nscalers, b->nscalers);
    assert_int_equal(a->nalerts, b->nalerts);
    assert_int_equal(a->alert_resend_ms, b->alert_resend_ms);
}

/* Loads `yaml` over the defaults and expects success and the defaults unchanged. */
static void expect_defaults(const char *yaml)
{
    ag_config_t c, d;
    ag_errmsg_t e;
    assert_int_equal(ag_config_defaults(&c), 0);
    assert_int_equal(ag_config_defaults(&d), 0);
    int rc = load_text(yaml, &c, &e);
    if (rc) fail_msg("loading %s: %d %s", yaml, rc, e.msg);
    assert_config_equal(&c, &d);
    ag_config_free(&c);
    ag_config_free(&d);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    ag_config_t c;
    assert_int_equal(ag_config_defaults(&c), 0);
    assert_string_equal(c.listen_address, AG_DEFAULT_LISTEN);
    assert_string_equal(c.listen_address, "127.0.0.1:9201");
    assert_string_equal(c.storage_path, "./data");
    assert_int_equal(c.map_size, 64ULL << 30);
    assert_int_equal(c.max_request_bytes, 32ULL << 20);
    assert_int_equal(c.max_decoded_bytes, 64ULL << 20);
    assert_int_equal(c.max_labels_per_series, 64);
    assert_int_equal(c.max_label_name_bytes, 256);
    assert_int_equal(c.max_label_value_bytes, 4096);
    assert_int_equal(c.lookback_delta_ms, 5 * 60 * 1000);
    assert_int_equal(c.query_timeout_ms, 2 * 60 * 1000);
    assert_int_equal(c.query_max_samples, 50000000);
    assert_int_equal(c.query_cache_max_bytes, 128ULL << 20);
    assert_int_equal(c.log_level, AG_LOG_INFO);
    ag_config_free(&c);
    assert_null(c.listen_address);
    assert_null(c.storage_path);
    ag_config_free(&c); /* a second free is harmless */
}

/* query.cache_max_bytes is the one size where 0 is allowed (it turns the cache off). */
static void test_cache_budget_accepts_zero(void **state)
{
    ag_config_t c;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_config_defaults(&c), 0);
    assert_int_equal(ag_config_set(&c, "query.cache_max_bytes", "0", &e), 0);
    assert_int_equal(c.query_cache_max_bytes, 0);
    assert_int_equal(ag_config_set(&c, "query.cache_max_bytes", "1GiB", &e), 0);
    assert_int_equal(c.query_cache_max_bytes, 1ULL << 30);
    assert_int_equal(ag_config_set(&c, "query.cache_max_bytes", "-1", &e), AG_EINVAL);
    assert_int_equal(ag_config_set(&c, "query.cache_max_bytes", "", &e), AG_EINVAL);
    assert_int_equal(c.query_cache_max_bytes, 1ULL << 30);
    /* other sizes still refuse 0 */
    assert_int_equal(ag_config_set(&c, "limits.max_request_bytes", "0", &e), AG_EINVAL);
    ag_config_free(&c);
}

static void test_example_file_is_defaults(void **state)
{
    ag_config_t c, d;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_config_defaults(&d), 0);
    /* Start from something else, so that every default must come from the file. */
    assert_int_equal(ag_config_defaults(&c), 0);
    static const char *const other[][2] = {
        {"web.listen_address", "0.0.0.0:1"},  {"storage.path", "/elsewhere"},
        {"storage.max_size", "1GiB"},         {"limits.max_request_bytes", "1KiB"},
        {"limits.max_decoded_bytes", "2KiB"}, {"limits.max_labels_per_series", "3"},
        {"limits.max_label_name_bytes", "4"}, {"limits.max_label_value_bytes", "5"},
        {"query.lookback_delta", "6s"},       {"query.timeout", "7s"},
        {"query.max_samples", "8"},           {"log.level", "error"},
        {"query.cache_max_bytes", "0"},
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        assert_int_equal(ag_config_set(&c, other[i][0], other[i][1], &e), 0);
    int rc = ag_config_load_file("daemon/augur.example.yml", &c, &e);
    if (rc) fail_msg("daemon/augur.example.yml: %d %s", rc, e.msg);
    assert_config_equal(&c, &d);
    ag_config_free(&c);
    ag_config_free(&d);
}

static void test_override_every_key(void **state)
{
    ag_config_t c;
    ag_errmsg_t e;
    assert_int_equal(ag_config_defaults(&c), 0);
    int rc = load_text("# all of them\n"
                       "web:\n"
                       "  listen_address: \"[::1]:9090\"\n"
                       "storage:\n"
                       "  path: /var/lib/augurd\n"
                       "  max_size: 1TB\n"
                       "limits:\n"
                       "  max_request_bytes: 1048576\n"
                       "  max_decoded_bytes: 1.5MiB\n"
                       "  max_labels_per_series: 30\n"
                       "  max_label_name_bytes: 128\n"
                       "  max_label_value_bytes: '2048'\n"
                       "query:\n"
                       "  lookback_delta: 1m30s\n"
                       "  timeout: 500ms\n"
                       "  max_samples: 18446744073709551615\n"
                       "log:\n"
                       "  level: debug\n",
                       &c, &e);
    if (rc) fail_msg("%d %s", rc, e.msg);
    assert_string_equal(c.listen_address, "[::1]:9090");
    assert_string_equal(c.storage_path, "/var/lib/augurd");
    assert_int_equal(c.map_size, 1ULL << 40);
    assert_int_equal(c.max_request_bytes, 1048576);
    assert_int_equal(c.max_decoded_bytes, 3ULL << 19);
    assert_int_equal(c.max_labels_per_series, 30);
    assert_int_equal(c.max_label_name_bytes, 128);
    assert_int_equal(c.max_label_value_bytes, 2048);
    assert_int_equal(c.lookback_delta_ms, 90000);
    assert_int_equal(c.query_timeout_ms, 500);
    assert_int_equal(c.query_max_samples, UINT64_MAX);
    assert_int_equal(c.log_level, AG_LOG_DEBUG);

    /* A second file changes only what it names. */
    rc = load_text("query:\n  timeout: 10s\n", &c, &e);
    if (rc) fail_msg("%d %s", rc, e.msg);
    assert_int_equal(c.query_timeout_ms, 10000);
    assert_int_equal(c.lookback_delta_ms, 90000);
    assert_string_equal(c.storage_path, "/var/lib/augurd");
    ag_config_free(&c);
}

static void test_unknown_names(void **state)
{
    expect_invalid("query:\n  timeout: 1m\n  foo: 1\n", "3:3", "unknown setting \"query.foo\"");
    expect_invalid("# comment\nweb:\n  listen_adress: :9201\n", "3:3",
                   "unknown setting \"web.listen_adress\"");
    expect_invalid("log:\n  level: info\nquerry:\n  timeout: 1m\n", "3:1",
                   "unknown section \"querry\"");
    /* The flag spelling at the top level gets a hint. */
    expect_invalid("query.timeout: 1m\n", "1:1", "unknown setting \"query.timeout\"");
    /* Settings belong to their own section only. */
    expect_invalid("web:\n  level: info\n", "2:3", "unknown setting \"web.level\"");
}

static void test_wrong_shapes(void **state)
{
    expect_invalid("- web\n- log\n", "1:1", "found a list");
    expect_invalid("just a string\n", "1:1", "must be a mapping");
    expect_invalid("web: 127.0.0.1:9201\n", "1:6", "section \"web\" must be a mapping");
    expect_invalid("query:\n  - timeout: 1m\n", "2:3", "found a list");
    expect_invalid("query:\n  timeout:\n    value: 1m\n", "3:5",
                   "\"query.timeout\" takes a single value, found a mapping");
    expect_invalid("log:\n  level: [info, debug]\n", "2:10", "found a list");
    expect_invalid("log:\n  ? [level]\n  : info\n", "2:5", "expected a setting name");
    expect_invalid("query:\n  timeout:\n", "2:11", "has no value");
    expect_invalid("query:\n  timeout: ~\n", "2:12", "has no value");
    expect_invalid("query:\n  timeout: 1m\n  timeout: 2m\n", "3:3",
                   "\"query.timeout\" given twice (first on line 2)");
    expect_invalid("log:\n  level: info\nlog:\n  level: warn\n", "3:1", "section \"log\" given twice");
    expect_invalid("log:\n  level: info\n---\nlog:\n  level: warn\n", "3:1",
                   "only one YAML document");
    expect_invalid("log:\n  level: info\n...\n---\n", "4:1", "only one YAML document");
}

static void test_bad_duration(void **state)
{
    expect_invalid("query:\n  timeout: 5x\n", "2:12", "query.timeout");
    expect_invalid("query:\n  lookback_delta: 1.5h\n", "2:19", "query.lookback_delta");
    expect_invalid("query:\n  lookback_delta: 0s\n", "2:19", "longer than 0s");
    expect_invalid("query:\n  timeout: 0\n", "2:12", "longer than 0s");
    expect_invalid("query:\n  timeout: -1m\n", "2:12", "query.timeout");
    expect_invalid("query:\n  timeout: \"\"\n", "2:12", "query.timeout");
}

static void test_bad_size_and_integer(void **state)
{
    expect_invalid("storage:\n  max_size: 64XB\n", "2:13", "storage.max_size");
    expect_invalid("storage:\n  max_size: 0\n", "2:13", "storage.max_size");
    expect_invalid("limits:\n  max_request_bytes: -1\n", "2:22", "limits.max_request_bytes");
    expect_invalid("limits:\n  max_decoded_bytes: 64 MiB\n", "2:22", "limits.max_decoded_bytes");
    expect_invalid("limits:\n  max_labels_per_series: 0\n", "2:26", "limits.max_labels_per_series");
    expect_invalid("limits:\n  max_label_name_bytes: 4294967296\n", "2:25",
                   "limits.max_label_name_bytes");
    expect_invalid("limits:\n  max_label_value_bytes: 1KiB\n", "2:26",
                   "limits.max_label_value_bytes");
    expect_invalid("query:\n  max_samples: 18446744073709551616\n", "2:16", "query.max_samples");
    expect_invalid("query:\n  max_samples: 5e7\n", "2:16", "query.max_samples");
}

static void test_bad_level_and_strings(void **state)
{
    expect_invalid("log:\n  level: verbose\n", "2:10", "log.level");
    expect_invalid("log:\n  level: INFO\n", "2:10", "debug, info, warn, error");
    expect_invalid("storage:\n  path: ''\n", "2:9", "storage.path must not be empty");
    expect_invalid("web:\n  listen_address: localhost\n", "2:19", "web.listen_address");
    expect_invalid("web:\n  listen_address: localhost:0\n", "2:19", "port");
    expect_invalid("web:\n  listen_address: localhost:65536\n", "2:19", "port");
    expect_invalid("web:\n  listen_address: \"::1:9201\"\n", "2:19", "brackets");
}

static void test_yaml_syntax_error(void **state)
{
    expect_invalid("query: {timeout: 1m\n", "2:1", "YAML syntax error");
    expect_invalid("query:\n  timeout: [1m\n", "2:12", "found a list"); /* shape seen first */
    expect_invalid("query:\n  timeout: 1m\n    max_samples: 5\n", "3:16", "YAML syntax error");
    expect_invalid("log:\n  level: \"info\n", "3:1", "YAML syntax error");
    expect_invalid("log:\n  level: *nowhere\n", "2:10", "aliases");
    expect_invalid("query:\n  lookback_delta: &d 5m\n  timeout: *d\n", "3:12", "aliases");
    expect_invalid("log:\n  level: \xff\xfe\n", "2:10", "not a valid YAML file");
}

/* Absurdly deep nesting is rejected at its start, without libyaml building it first. */
static void test_deep_nesting(void **state)
{
    size_t depth = 200000;
    char *text = malloc(2 * depth + 32);
    assert_non_null(text);
    for (int i = 0; i < 2; i++) {
        size_t n = (size_t)sprintf(text, "%s", i ? "log:\n  level: " : "");
        size_t at = n;
        memset(text + n, '[', depth);
        memset(text + n + depth, ']', depth);
        text[n + 2 * depth] = '\0';
        expect_invalid(text, i ? "2:10" : "1:1", "found a list");
        assert_true(at < 32);
    }
    free(text);
}

static void test_missing_file(void **state)
{
    ag_config_t c, d;
    ag_errmsg_t e = {{0}, -1};
    char path[160];
    snprintf(path, sizeof path, "%s/does-not-exist.yml", g_dir);
    assert_int_equal(ag_config_defaults(&c), 0);
    assert_int_equal(ag_config_defaults(&d), 0);
    assert_int_equal(ag_config_load_file(path, &c, &e), AG_EIO);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "No such file"));
    /* A directory cannot be read either. */
    assert_int_equal(ag_config_load_file(g_dir, &c, &e), AG_EIO);
    assert_config_equal(&c, &d);
    ag_config_free(&c);
    ag_config_free(&d);
}

static void test_empty_files(void **state)
{
    expect_defaults("");
    expect_defaults("\n\n");
    expect_defaults("# only a comment\n   # and another\n");
    expect_defaults("---\n");
    expect_defaults("---\n...\n");
    expect_defaults("web:\nstorage: ~\nlimits:\n# nothing\nquery: null\nlog:\n");
    expect_defaults("{}\n");
    expect_defaults("web: {}\n");
}

static void test_error_leaves_config_unchanged(void **state)
{
    ag_config_t c, before;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_config_defaults(&c), 0);
    assert_int_equal(ag_config_set(&c, "storage.path", "/srv/augur", &e), 0);
    assert_int_equal(ag_config_set(&c, "log.level", "warn", &e), 0);
    assert_int_equal(ag_config_set(&c, "query.timeout", "45s", &e), 0);
    assert_int_equal(ag_config_defaults(&before), 0);
    assert_int_equal(ag_config_set(&before, "storage.path", "/srv/augur", &e), 0);
    assert_int_equal(ag_config_set(&before, "log.level", "warn", &e), 0);
    assert_int_equal(ag_config_set(&before, "query.timeout", "45s", &e), 0);
    char *listen = c.listen_address, *path = c.storage_path;

    /* Valid settings come first, the mistake last: none of them may stick. */
    static const char *const bad[] = {
        ("web:\n  listen_address: 0.0.0.0:80\nstorage:\n  path: /new\nlog:\n  level: debug\n"
         "query:\n  timeout: 1m\n  bogus: 1\n"),
        "web:\n  listen_address: 0.0.0.0:80\nstorage:\n  path: /new\n  max_size: huge\n",
        "storage:\n  path: /new\nquery: [\n",
        "storage:\n  path: /new\n---\nlog:\n  level: debug\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(load_text(bad[i], &c, &e), AG_EINVAL);
        assert_config_equal(&c, &before);
        assert_ptr_equal(c.listen_address, listen);
        assert_ptr_equal(c.storage_path, path);
    }

    /* ag_config_set leaves the setting alone when the value is bad. */
    assert_int_equal(ag_config_set(&c, "storage.path", "", &e), AG_EINVAL);
    assert_int_equal(ag_config_set(&c, "web.listen_address", "nope", &e), AG_EINVAL);
    assert_int_equal(ag_config_set(&c, "query.timeout", "soon", &e), AG_EINVAL);
    assert_config_equal(&c, &before);
    assert_ptr_equal(c.storage_path, path);
    ag_config_free(&c);
    ag_config_free(&before);
}

static void test_set(void **state)
{
    ag_config_t c;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_config_defaults(&c), 0);
    assert_int_equal(ag_config_set(&c, "query.nope", "1", &e), AG_EINVAL);
    assert_string_equal(e.msg, "unknown setting \"query.nope\"");
    assert_int_equal(ag_config_set(&c, "timeout", "1m", &e), AG_EINVAL);
    assert_int_equal(ag_config_set(&c, "query.timeout", NULL, &e), AG_EINVAL);

    static const char *const good_listen[] = {"127.0.0.1:9201", ":9201", "0.0.0.0:1",
                                              "[::]:65535", "[::1]:80", "example.org:443"};
    for (size_t i = 0; i < sizeof good_listen / sizeof good_listen[0]; i++) {
        if (ag_config_set(&c, "web.listen_address", good_listen[i], &e))
            fail_msg("%s rejected: %s", good_listen[i], e.msg);
        assert_string_equal(c.listen_address, good_listen[i]);
    }
    static const char *const bad_listen[] = {"",       "9201",     "host:",    "host:0",
                                             "host:+80", "host:80a", "host:99999", "::1:80",
                                             "[]:80",  "[::1:80",  "host:-1"};
    for (size_t i = 0; i < sizeof bad_listen / sizeof bad_listen[0]; i++)
        if (ag_config_set(&c, "web.listen_address", bad_listen[i], &e) != AG_EINVAL)
            fail_msg("listen address \"%s\" accepted", bad_listen[i]);

    assert_int_equal(ag_config_set(&c, "limits.max_labels_per_series", "4294967295", &e), 0);
    assert_int_equal(c.max_labels_per_series, UINT32_MAX);
    assert_int_equal(ag_config_set(&c, "limits.max_labels_per_series", "4294967296", &e),
                     AG_EINVAL);
    assert_int_equal(ag_config_set(&c, "limits.max_labels_per_series", " 5", &e), AG_EINVAL);
    assert_int_equal(ag_config_set(&c, "limits.max_labels_per_series", "+5", &e), AG_EINVAL);
    assert_int_equal(c.max_labels_per_series, UINT32_MAX);

    assert_int_equal(ag_config_set(&c, "query.lookback_delta", "1h30m", &e), 0);
    assert_int_equal(c.lookback_delta_ms, 90 * 60 * 1000);
    assert_int_equal(ag_config_set(&c, "query.lookback_delta", "1d", &e), 0);
    assert_int_equal(c.lookback_delta_ms, 24 * 3600 * 1000);

    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ag_config_set(&c, "log.level", levels[i], &e), 0);
        assert_int_equal(c.log_level, (ag_log_level_t)i);
    }
    assert_int_equal(ag_config_set(&c, "log.level", "warning", &e), AG_EINVAL);
    assert_int_equal(c.log_level, AG_LOG_ERROR);

    /* A NULL errmsg is allowed. */
    assert_int_equal(ag_config_set(&c, "log.level", "loud", NULL), AG_EINVAL);
    ag_config_free(&c);
}

static void test_quoting_and_tags(void **state)
{
    ag_config_t c;
    ag_errmsg_t e;
    assert_int_equal(ag_config_defaults(&c), 0);
    int rc = load_text("%YAML 1.1\n---\n"
                       "storage: {path: \"/data dir/augur\", max_size: !!str 2GB}\n"
                       "log: {level: 'error'}   # flow style works too\n"
                       "query:\n  timeout: &t 90s\n",
                       &c, &e);
    if (rc) fail_msg("%d %s", rc, e.msg);
    assert_string_equal(c.storage_path, "/data dir/augur");
    assert_int_equal(c.map_size, 2ULL << 30);
    assert_int_equal(c.log_level, AG_LOG_ERROR);
    assert_int_equal(c.query_timeout_ms, 90000);
    /* A NUL byte in a value would cut it short in C: rejected. */
    assert_int_equal(load_text("storage:\n  path: \"/a\\0b\"\n", &c, &e), AG_EINVAL);
    assert_non_null(strstr(e.msg, "NUL"));
    assert_string_equal(c.storage_path, "/data dir/augur");
    ag_config_free(&c);
}


/* models: a list of mappings, every field checked, errors point at the line. */
static void test_models(void **state)
{
    ag_config_t c;
    ag_errmsg_t e;
    assert_int_equal(ag_config_defaults(&c), 0);
    assert_true(c.auto_detect);
    int rc = load_text("detection:\n  auto: false\n"
                       "models:\n"
                       "  - name: http_rate\n"
                       "    expr: sum by (service) (rate(http_requests_total[1m]))\n"
                       "    step: 30s\n"
                       "    horizon: 2h\n"
                       "    seasons: [day]\n"
                       "    log_scale: true\n"
                       "    sensitivity: 0.8\n"
                       "    coverage: 0.9\n"
                       "    warmup: 2d\n"
                       "    refit: 0\n"
                       "  - name: cpu\n"
                       "    expr: avg(node_load1)\n",
                       &c, &e);
    if (rc) fail_msg("%d %s", rc, e.msg);
    assert_false(c.auto_detect);
    assert_int_equal(c.nmodels, 2);
    const ag_model_def_t *m = &c.models[0];
    assert_string_equal(m->name, "http_rate");
    assert_string_equal(m->expr, "sum by (service) (rate(http_requests_total[1m]))");
    assert_int_equal(m->step_ms, 30000);
    assert_int_equal(m->horizon_ms, 7200000);
    assert_true(m->season_day);
    assert_false(m->season_week);
    assert_true(m->log_scale);
    assert_true(m->sensitivity == 0.8);
    assert_true(m->coverage == 0.9);
    assert_int_equal(m->warmup_ms, 2 * 86400000LL);
    assert_int_equal(m->refit_ms, 0);
    assert_int_equal(m->line, 4);
    m = &c.models[1]; /* defaults */
    assert_string_equal(m->name, "cpu");
    assert_int_equal(m->step_ms, 60000);
    assert_int_equal(m->horizon_ms, 3600000);
    assert_true(m->season_day && m->season_week);
    assert_false(m->log_scale);
    assert_true(m->sensitivity == 0.5);
    assert_int_equal(m->warmup_ms, 7 * 86400000LL);
    assert_int_equal(m->refit_ms, 86400000LL);
    assert_int_equal(m->line, 14);
    /* A later file's list replaces the whole list; seasons as a string. */
    rc = load_text("models:\n  - {name: a, expr: up, seasons: \"week, day\"}\n", &c, &e);
    if (rc) fail_msg("%d %s", rc, e.msg);
    assert_int_equal(c.nmodels, 1);
    assert_true(c.models[0].season_day && c.models[0].season_week);
    rc = load_text("models:\n  - {name: a, expr: up, seasons: none}\n", &c, &e);
    assert_int_equal(rc, 0);
    assert_false(c.models[0].season_day || c.models[0].season_week);
    /* A failed load leaves the models in force. */
    rc = load_text("models:\n  - {name: b, expr: \"rate(\"}\n", &c, &e);
    assert_int_equal(rc, AG_EINVAL);
    assert_int_equal(c.nmodels, 1);
    assert_string_equal(c.models[0].name, "a");
    ag_config_free(&c);
    assert_null(c.models);
}

static void test_models_errors(void **state)
{
    expect_invalid("models:\n  name: a\n", "2:3", "must be a list of models");
    expect_invalid("models:\n  - up\n", "2:5", "each model must be a mapping");
    expect_invalid("models:\n  - expr: up\n", "2:5", "a model needs \"name\"");
    expect_invalid("models:\n  - name: a\n", "2:5", "a model needs \"expr\"");
    expect_invalid("models:\n  - name: a\n    expr: sum(rate(x[5m])\n", "3:11",
                   "model field \"expr\"");
    expect_invalid("models:\n  - name: 1a\n    expr: up\n", "2:11", "must match");
    expect_invalid("models:\n  - name: a\n    expr: up\n    colour: red\n", "4:5",
                   "unknown model field \"colour\"");
    expect_invalid("models:\n  - name: a\n    expr: up\n    name: b\n", "4:5", "given twice");
    expect_invalid("models:\n  - name: a\n    expr: up\n    step: often\n", "4:11", "not a duration");
    expect_invalid("models:\n  - name: a\n    expr: up\n    step: 10ms\n", "2:5", "from 1s to 1w");
    expect_invalid("models:\n  - name: a\n    expr: up\n    seasons: [day, month]\n", "4:20",
                   "\"month\" is not day, week or none");
    expect_invalid("models:\n  - name: a\n    expr: up\n    sensitivity: 1.5\n", "4:18",
                   "between 0 and 1");
    expect_invalid("models:\n  - name: a\n    expr: up\n    log_scale: maybe\n", "4:16",
                   "not true or false");
    expect_invalid("models:\n  - name: a\n    expr: up\n  - name: a\n    expr: up\n", "4:5",
                   "used twice (first on line 2)");
    expect_invalid("models:\n  - name: a\n    expr: [up]\n", "3:11", "takes a single value");
    expect_invalid("detection:\n  auto: perhaps\n", "2:9", "not true or false");
}

static void test_scalers(void **state)
{
    ag_config_t c;
    ag_errmsg_t e;
    assert_int_equal(ag_config_defaults(&c), 0);
    int rc = load_text("scalers:\n"
                       "  - name: api\n"
                       "    load: sum(rate(http_requests_total{service=\"api\"}[1m]))\n"
                       "    capacity_per_replica: 120\n"
                       "    target_utilization: 0.7\n"
                       "    lead_time: 3m\n"
                       "    confidence: 0.95\n"
                       "    min_replicas: 2\n"
                       "    max_replicas: 30\n"
                       "    scale_down_stabilization: 10m\n"
                       "    interval: 30s\n"
                       "    heartbeat: 2m\n"
                       "    webhooks:\n"
                       "      - url: http://127.0.0.1:8080/scale\n"
                       "        secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
                       "      - {url: https://example.org/hook}\n"
                       "  - {name: batch, load: sum(queue_depth), capacity_per_replica: 10}\n",
                       &c, &e);
    if (rc) fail_msg("%d %s", rc, e.msg);
    assert_int_equal(c.nscalers, 2);
    const ag_scaler_def_t *d = &c.scalers[0];
    assert_string_equal(d->name, "api");
    assert_true(d->capacity == 120 && d->target == 0.7 && d->confidence == 0.95);
    assert_int_equal(d->lead_ms, 180000);
    assert_int_equal(d->interval_ms, 30000);
    assert_int_equal(d->stabilization_ms, 600000);
    assert_int_equal(d->heartbeat_ms, 120000);
    assert_int_equal(d->min_replicas, 2);
    assert_int_equal(d->max_replicas, 30);
    assert_int_equal(d->nwebhooks, 2);
    assert_string_equal(d->webhooks[0].url, "http://127.0.0.1:8080/scale");
    assert_string_equal(d->webhooks[0].secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    assert_null(d->webhooks[1].secret);
    d = &c.scalers[1]; /* defaults */
    assert_true(d->target == 0.8 && d->confidence == 0.9);
    assert_int_equal(d->lead_ms, 300000);
    assert_int_equal(d->interval_ms, 15000);
    assert_int_equal(d->min_replicas, 1);
    assert_int_equal(d->max_replicas, 100);
    assert_int_equal(d->nwebhooks, 0);
    assert_int_equal(d->line, 17);
    /* a failed load keeps them */
    rc = load_text("scalers:\n  - {name: x, load: up, capacity_per_replica: 1, colour: red}\n", &c,
                   &e);
    assert_int_equal(rc, AG_EINVAL);
    assert_int_equal(c.nscalers, 2);
    ag_config_free(&c);
    assert_null(c.scalers);
}

static void test_scalers_errors(void **state)
{
    expect_invalid("scalers:\n  - name: a\n    load: up\n", "2:5",
                   "a scaler needs \"capacity_per_replica\"");
    expect_invalid("scalers:\n  - name: a\n    load: rate(x[5m]\n    capacity_per_replica: 1\n",
                   "3:11", "scaler field \"load\"");
    expect_invalid("scalers:\n  - name: a\n    load: up\n    capacity_per_replica: 1\n"
                   "    min_replicas: 5\n    max_replicas: 2\n",
                   "2:5", "min_replicas (5) must not exceed max_replicas (2)");
    expect_invalid("scalers:\n  - name: a\n    load: up\n    capacity_per_replica: -3\n", "4:27",
                   "is not a number from");
    expect_invalid("scalers:\n  - name: a\n    load: up\n    capacity_per_replica: 1\n"
                   "    replicas: 3\n", "5:5", "unknown scaler field \"replicas\"");
    expect_invalid("scalers:\n  - name: a\n    load: up\n    capacity_per_replica: 1\n"
                   "    webhooks:\n      - url: ftp://x\n", "6:14", "must start with http://");
    expect_invalid("scalers:\n  - name: a\n    load: up\n    capacity_per_replica: 1\n"
                   "    webhooks:\n      - secret: s\n", "6:9", "a webhook needs \"url\"");
    expect_invalid("scalers:\n  - name: a\n    load: up\n    capacity_per_replica: 1\n"
                   "    min_replicas: 1.5\n", "5:19", "not a whole number");
    expect_invalid("scalers:\n  - {name: a, load: up, capacity_per_replica: 1}\n"
                   "  - {name: a, load: up, capacity_per_replica: 1}\n", "3:5", "used twice");
    expect_invalid("scalers: {name: a}\n", "1:10", "must be a list of scalers");
}

static void test_alerts(void **state)
{
    ag_config_t c;
    ag_errmsg_t e;
    assert_int_equal(ag_config_defaults(&c), 0);
    assert_null(c.alertmanager_url);
    assert_int_equal(c.alert_resend_ms, 60000);
    int rc = load_text("alerting:\n  alertmanager_url: http://127.0.0.1:9093\n"
                       "  resend_delay: 30s\n"
                       "alerts:\n"
                       "  - name: ApiAnomaly\n"
                       "    expr: augur_anomaly{model=\"api\"} == 1\n"
                       "    for: 2m\n"
                       "    labels: {severity: warning, team: web}\n"
                       "    annotations:\n"
                       "      summary: \"anomaly on {{ $labels.service }}\"\n"
                       "  - {name: Saturation, expr: 'augur_forecast{model=\"cpu\"} > 90'}\n",
                       &c, &e);
    if (rc) fail_msg("%d %s", rc, e.msg);
    assert_string_equal(c.alertmanager_url, "http://127.0.0.1:9093");
    assert_int_equal(c.alert_resend_ms, 30000);
    assert_int_equal(c.nalerts, 2);
    const ag_alert_def_t *a = &c.alerts[0];
    assert_string_equal(a->name, "ApiAnomaly");
    assert_int_equal(a->for_ms, 120000);
    assert_int_equal(a->interval_ms, 15000);
    assert_int_equal(a->nlabels, 2);
    assert_string_equal(a->label_names[1], "team");
    assert_string_equal(a->label_values[1], "web");
    assert_int_equal(a->nannotations, 1);
    assert_string_equal(a->annotation_values[0], "anomaly on {{ $labels.service }}");
    assert_int_equal(c.alerts[1].for_ms, 0);
    /* the flag spelling clears it */
    assert_int_equal(ag_config_set(&c, "alerting.alertmanager_url", "", &e), 0);
    assert_null(c.alertmanager_url);
    ag_config_free(&c);
    assert_null(c.alerts);
    expect_invalid("alerts:\n  - name: A\n    expr: up\n    labels: {alertname: x}\n", "4:14",
                   "not a name you can set here");
    expect_invalid("alerts:\n  - name: A\n    expr: up\n    labels: [x]\n", "4:13",
                   "must be a mapping");
    expect_invalid("alerts:\n  - name: A\n    expr: up\n    interval: 0s\n", "4:15",
                   "not a duration above 0s");
    expect_invalid("alerts:\n  - expr: up\n", "2:5", "an alert needs \"name\"");
}

static void test_parse_bytes(void **state)
{
    static const struct {
        const char *in;
        uint64_t want;
    } good[] = {
        {"0", 0},
        {"1", 1},
        {"1024", 1024},
        {"007", 7},
        {"18446744073709551615", UINT64_MAX},
        {"1B", 1},
        {"0B", 0},
        {"1KB", 1024},
        {"1KiB", 1024},
        {"32MiB", 32ULL << 20},
        {"32MB", 32ULL << 20},
        {"1GB", 1ULL << 30},
        {"64GiB", 64ULL << 30},
        {"2TB", 2ULL << 40},
        {"2TiB", 2ULL << 40},
        {"3PB", 3ULL << 50},
        {"16383PB", 16383ULL << 50},
        {"1.5GiB", 3ULL << 29},
        {".5KB", 512},
        {"0.1KB", 102},                     /* truncated to whole bytes, as Prometheus */
        {"1.9B", 1},
        {"15.999999999999999999999PB", (16ULL << 50) - 1},
        {"16383.999999999999999999PB", UINT64_MAX},
        {"17179869183GiB", 17179869183ULL << 30},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 12345;
        if (ag_parse_bytes(good[i].in, &v)) fail_msg("\"%s\" rejected", good[i].in);
        if (v != good[i].want)
            fail_msg("\"%s\" -> %llu, want %llu", good[i].in, (unsigned long long)v,
                     (unsigned long long)good[i].want);
    }
    static const char *const bad[] = {
        "", "-1", "-1KB", "+1", " 1", "1 ", "1 KB", "KB", "B", "1kb", "1Kb", "1kib", "1K", "1M",
        "1G", "1KiBB", "1EB", "1EiB", "1PiB", "1.5", "1.", ".", ".KB", "1.KB", "1e3", "0x10",
        "1,5KB", "18446744073709551616", "99999999999999999999999", "16384PB", "17179869184GiB",
        "18446744073709551615KB", "abc", "1KB1", "1 000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 12345;
        if (ag_parse_bytes(bad[i], &v) != AG_EINVAL) fail_msg("\"%s\" accepted", bad[i]);
        assert_int_equal(v, 12345);
    }
    uint64_t v;
    assert_int_equal(ag_parse_bytes(NULL, &v), AG_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_example_file_is_defaults),
        cmocka_unit_test(test_cache_budget_accepts_zero),
        cmocka_unit_test(test_override_every_key),
        cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_wrong_shapes),
        cmocka_unit_test(test_bad_duration),
        cmocka_unit_test(test_bad_size_and_integer),
        cmocka_unit_test(test_bad_level_and_strings),
        cmocka_unit_test(test_yaml_syntax_error),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_empty_files),
        cmocka_unit_test(test_error_leaves_config_unchanged),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_quoting_and_tags),
        cmocka_unit_test(test_parse_bytes),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_models_errors),
        cmocka_unit_test(test_scalers),
        cmocka_unit_test(test_scalers_errors),
        cmocka_unit_test(test_alerts),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
