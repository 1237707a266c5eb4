/* fuzz_eval.c - libFuzzer target for the PromQL evaluator: every input that parses is evaluated
 * as an instant and as a range query against a small real store (opened once per process in a
 * temporary directory). Any crash, sanitizer report or leak is a finding; errors are fine. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_eval.h"
#include "ag_log.h"
#include "ag_promql.h"
#include "ag_store.h"

static ag_store_t *g_store;
static char g_dir[64];

static void cleanup(void)
{
    ag_store_close(g_store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd)) return;
}

static void put(const char *name, const char *job, const char *le, double step)
{
    ag_label_t l[3] = {{"__name__", name}, {"job", job}, {"le", le}};
    ag_sample_t s[40];
    for (int i = 0; i < 40; i++) s[i] = (ag_sample_t){i * 15000, step * i + (i == 20 ? 0.5 : 0)};
    ag_series_in_t in = {l, le ? 3 : 2, s, 40};
    ag_write_req_t req = {&in, 1, NULL, 0, NULL, NULL, 0};
    ag_write_res_t res;
    ag_store_write(g_store, &req, &res);
}

static void init(void)
{
    ag_log_set_level(AG_LOG_ERROR);
    snprintf(g_dir, sizeof g_dir, "/tmp/augur-fuzz-eval-XXXXXX");
    if (!mkdtemp(g_dir)) abort();
    ag_store_opts_t o;
    ag_store_opts_default(&o);
    o.path = g_dir;
    o.map_size = 64 << 20;
    ag_errmsg_t e;
    if (ag_store_open(&o, &g_store, &e)) abort();
    put("up", "a", NULL, 0);
    put("up", "b", NULL, 1);
    put("req_total", "a", NULL, 3);
    put("req_total", "b", NULL, -2);
    put("h_bucket", "a", "0.1", 1);
    put("h_bucket", "a", "1", 2);
    put("h_bucket", "a", "+Inf", 3);
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_store) init();
    if (size > 512) return 0;
    ag_pq_node_t *n = NULL;
    ag_errmsg_t e;
    if (ag_promql_parse((const char *)data, size, &n, &e)) return 0;
    ag_eval_opts_t o = {300000, 200000, 200, AG_ROLLUPS_AUTO};
    ag_value_t v;
    if (ag_eval_instant(g_store, n, 300000, &o, &v, &e) == 0) ag_value_free(&v);
    if (ag_eval_range(g_store, n, 0, 600000, 45000, &o, &v, &e) == 0) ag_value_free(&v);
    ag_promql_free(n);
    return 0;
}
