/* test_eval.c - unit tests for the PromQL evaluator on a real store: results, the error kinds
 * (bad_data vs execution vs limits) and range-query shapes. The broad semantic coverage is the
 * conformance runner (tests/promql) and the comparison with a real Prometheus (integration). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_eval.h"
#include "ag_labels.h"
#include "ag_pqfunc.h"
#include "ag_promql.h"
#include "ag_store.h"

static char g_dir[256];
static ag_store_t *g_store;

static void put(const char *name, const char *job, const char *inst, double base, double step)
{
    ag_label_t l[] = {{"__name__", name}, {"instance", inst}, {"job", job}};
    ag_sample_t s[21];
    for (int i = 0; i < 21; i++) s[i] = (ag_sample_t){i * 15000, base + step * i};
    ag_series_in_t in = {l, 3, s, 21};
    ag_write_req_t req = {&in, 1, NULL, 0, NULL, NULL, 0};
    ag_write_res_t res;
    assert_int_equal(ag_store_write(g_store, &req, &res), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/augur-test-eval-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    ag_store_opts_t o;
    ag_store_opts_default(&o);
    o.path = g_dir;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_store_open(&o, &g_store, &e), 0);
    put("req_total", "api", "a", 0, 10);
    put("req_total", "api", "b", 100, 20);
    put("req_total", "db", "a", 0, 1);
    put("other_total", "api", "a", 5, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ag_store_close(g_store);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int run(const char *q, int64_t t, uint64_t max_samples, ag_value_t *v, ag_errmsg_t *e)
{
    ag_pq_node_t *n = NULL;
    int rc = ag_promql_parse(q, strlen(q), &n, e);
    if (rc) return rc;
    ag_eval_opts_t o = {300000, max_samples, 0, AG_ROLLUPS_AUTO};
    rc = ag_eval_instant(g_store, n, t, &o, v, e);
    ag_promql_free(n);
    return rc;
}

static double only_value(const char *q, int64_t t)
{
    ag_value_t v;
    ag_errmsg_t e = {{0}, -1};
    int rc = run(q, t, 0, &v, &e);
    if (rc) fail_msg("%s: %s", q, e.msg);
    double out = NAN;
    if (v.type == AG_VAL_SCALAR) out = v.scalar;
    else if (v.type == AG_VAL_VECTOR && v.n == 1) out = v.series[0].points[0].v;
    else fail_msg("%s: expected one value, got type %d with %zu series", q, v.type, v.n);
    ag_value_free(&v);
    return out;
}

static void results(void **state)
{
    (void)state;
    assert_true(only_value("1 + 2 * 3", 0) == 7);
    assert_true(only_value("sum(req_total)", 300000) == 200 + 500 + 20);
    assert_true(only_value("sum(req_total{job=\"db\"})", 150000) == 10);
    /* 10 per 15 s over a 1m window: exactly 10/15 per second, no extrapolation at the edges */
    assert_true(fabs(only_value("rate(req_total{job=\"api\",instance=\"a\"}[1m])", 300000) - 10.0 / 15) < 1e-12);
    assert_true(only_value("count(req_total > 100)", 300000) == 2);
    assert_true(only_value("scalar(max(req_total))", 300000) == 500);
    assert_true(only_value("max_over_time(sum(req_total)[5m:1m])", 300000) == 720);
    assert_true(only_value("req_total{job=\"db\"} @ 150", 300000) == 10);
}

/* A label sorting before __name__ ("A" < "_"): dropping the name must still work. */
static void name_not_first(void **state)
{
    (void)state;
    ag_label_t l[] = {{"Zone", "1"}, {"__name__", "upper_total"}};
    ag_sample_t smp = {0, 3};
    ag_series_in_t in = {l, 2, &smp, 1};
    ag_write_req_t req = {&in, 1, NULL, 0, NULL, NULL, 0};
    ag_write_res_t res;
    assert_int_equal(ag_store_write(g_store, &req, &res), 0);
    ag_value_t v;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(run("-upper_total", 0, 0, &v, &e), 0);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.series[0].labels_len, strlen("Zone") + 1 + strlen("1") + 1);
    assert_memory_equal(v.series[0].labels, "Zone\0" "1", 7);
    assert_true(v.series[0].points[0].v == -3);
    ag_value_free(&v);
}

static void error_kinds(void **state)
{
    (void)state;
    ag_value_t v;
    ag_errmsg_t e = {{0}, -1};
    /* Dropping the name makes two series identical: an execution error. */
    assert_int_equal(run("{job=\"api\",instance=\"a\"} * 1", 300000, 0, &v, &e), AG_EEXEC);
    assert_non_null(strstr(e.msg, "same labelset"));
    /* The one side of a match is not unique. */
    assert_int_equal(run("req_total + on(job) req_total", 300000, 0, &v, &e), AG_EEXEC);
    assert_non_null(strstr(e.msg, "many-to-many"));
    /* Too many samples for the configured limit. */
    assert_int_equal(run("req_total[1h]", 300000, 10, &v, &e), AG_ELIMIT);
    /* A syntax error is not an evaluation error. */
    assert_int_equal(run("sum(", 0, 0, &v, &e), AG_EINVAL);
}

/* What the random comparison with Prometheus 2.42 found (tests/integration/test_promql_random.py),
 * each as 2.42 answers it. */
static void found_by_random_comparison(void **state)
{
    (void)state;
    ag_value_t v;
    ag_errmsg_t e = {{0}, -1};
    /* A failing argument before the last one: a clean error (it once freed garbage). */
    assert_int_equal(run("clamp_max(req_total * on() req_total, 1)", 300000, 0, &v, &e), AG_EEXEC);
    assert_int_equal(run("label_replace(req_total * on() req_total, \"a\", \"b\", \"c\", \"d\")",
                         300000, 0, &v, &e), AG_EEXEC);
    assert_int_equal(run("round(req_total * on() req_total, 2)", 300000, 0, &v, &e), AG_EEXEC);
    /* One side empty: nothing matches, and no duplicate check on the other side. */
    assert_int_equal(run("nosuch + on(job) req_total", 300000, 0, &v, &e), 0);
    assert_int_equal(v.n, 0);
    ag_value_free(&v);
    assert_int_equal(run("req_total * on(job) group_left nosuch", 300000, 0, &v, &e), 0);
    assert_int_equal(v.n, 0);
    ag_value_free(&v);
    /* topk's k must fit an int64, at every step, even over an empty input. */
    assert_int_equal(run("topk(NaN, req_total)", 300000, 0, &v, &e), AG_EEXEC);
    assert_non_null(strstr(e.msg, "Scalar value NaN overflows int64"));
    assert_int_equal(run("bottomk(1e20, nosuch)", 300000, 0, &v, &e), AG_EEXEC);
    assert_int_equal(run("topk(1e18, req_total)", 300000, 0, &v, &e), 0);
    assert_int_equal(v.n, 3);
    ag_value_free(&v);
    /* absent(): the first equality matcher of a name sets it, any other matcher deletes it. */
    const char *abs_q[] = {"absent(nosuch{job!=\"x\",job=\"web\"})", "absent(nosuch{job=\"web\",job!=\"x\"})",
                           "absent(nosuch{job=\"a\",job=\"b\",job=\"c\",foo=\"bar\"})"};
    const char *abs_l[] = {"job\0web", "", "foo\0bar"};
    size_t abs_n[] = {8, 0, 8};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(run(abs_q[i], 300000, 0, &v, &e), 0);
        assert_int_equal(v.n, 1);
        assert_int_equal(v.series[0].labels_len, abs_n[i]);
        assert_memory_equal(v.series[0].labels, abs_l[i], abs_n[i]);
        ag_value_free(&v);
    }
    /* sum_over_time and avg_over_time sum with compensation: 21 x 0.1 in float64 plain sums
     * to 2.1000000000000005; compensated it is 2.1. */
    ag_label_t l[] = {{"__name__", "tenth"}};
    ag_sample_t smp[21];
    for (int i = 0; i < 21; i++) smp[i] = (ag_sample_t){i * 15000, 0.1};
    ag_series_in_t in = {l, 1, smp, 21};
    ag_write_req_t req = {&in, 1, NULL, 0, NULL, NULL, 0};
    ag_write_res_t res;
    assert_int_equal(ag_store_write(g_store, &req, &res), 0);
    assert_true(only_value("sum_over_time(tenth[10m])", 300000) == 2.1);
    assert_true(only_value("avg_over_time(tenth[10m])", 300000) == 0.1);
    /* sinh and cosh overflow where Go's do (exp(x) / 2 above 21). */
    assert_true(isinf(only_value("cosh(vector(710))", 0)));
    assert_true(isinf(only_value("sinh(vector(-710))", 0)) && only_value("sinh(vector(-710))", 0) < 0);
}

static void range_shapes(void **state)
{
    (void)state;
    ag_pq_node_t *n = NULL;
    ag_errmsg_t e = {{0}, -1};
    ag_value_t v;
    ag_eval_opts_t o = {300000, 0, 0, AG_ROLLUPS_AUTO};
    const char *q = "sum by (job) (req_total)";
    assert_int_equal(ag_promql_parse(q, strlen(q), &n, &e), 0);
    assert_int_equal(ag_eval_range(g_store, n, 0, 300000, 60000, &o, &v, &e), 0);
    assert_int_equal(v.type, AG_VAL_MATRIX);
    assert_int_equal(v.n, 2); /* {job="api"}, {job="db"}, sorted */
    assert_int_equal(v.series[0].n, 6);
    assert_true(v.series[1].points[5].v == 20);
    ag_value_free(&v);
    ag_promql_free(n);
    /* rate() over two series that differ only in name: the whole matrix collides, an error
     * even in a range query where each series alone is fine. */
    q = "rate({job=\"api\",instance=\"a\"}[1m])";
    assert_int_equal(ag_promql_parse(q, strlen(q), &n, &e), 0);
    assert_int_equal(ag_eval_range(g_store, n, 60000, 300000, 60000, &o, &v, &e), AG_EEXEC);
    ag_promql_free(n);
    q = "req_total[1m]";
    assert_int_equal(ag_promql_parse(q, strlen(q), &n, &e), 0);
    assert_int_equal(ag_eval_range(g_store, n, 0, 60000, 1000, &o, &v, &e), AG_EINVAL);
    assert_non_null(strstr(e.msg, "range vector"));
    ag_promql_free(n);
}

/* Large scans compute each series on two threads and fold aggregations as series arrive
 * (ag_store_scan_map, the sink in eval.c): the answers must equal those of one series at a
 * time (a scan too small for the second thread), to the bit, and sums must add in label
 * order. Counters with resets, gauges and stale markers exercise every path of the window. */
#define BIG_SERIES 40
#define BIG_SAMPLES 5000
static void big_put(void)
{
    ag_sample_t *smp = malloc(BIG_SAMPLES * sizeof *smp);
    assert_non_null(smp);
    uint64_t stale_bits = AG_STALE_NAN_BITS;
    double stale;
    memcpy(&stale, &stale_bits, sizeof stale);
    unsigned seed = 7;
    for (int i = 0; i < BIG_SERIES; i++) {
        char id[16], g[16];
        snprintf(id, sizeof id, "%02d", i);
        snprintf(g, sizeof g, "%d", i % 3);
        ag_label_t l[] = {{"__name__", "big_total"}, {"g", g}, {"i", id}};
        double v = 0;
        for (int k = 0; k < BIG_SAMPLES; k++) {
            seed = seed * 1103515245u + 12345u;
            if (i % 4 == 3) v = (seed >> 8) % 1000 / 10.0; /* a gauge: drops everywhere */
            else if (k % 700 == 699) v = (seed >> 8) % 7;  /* a counter reset */
            else v += (seed >> 8) % 50 / 4.0;
            smp[k] = (ag_sample_t){(int64_t)k * 15000 + i, v};
            if (i % 5 == 1 && k % 900 == 450) smp[k].v = stale;
        }
        ag_series_in_t in = {l, 3, smp, BIG_SAMPLES};
        ag_write_req_t req = {&in, 1, NULL, 0, NULL, NULL, 0};
        ag_write_res_t res;
        assert_int_equal(ag_store_write(g_store, &req, &res), 0);
    }
    free(smp);
}

static void range_query(const char *q, int64_t start, int64_t end, int64_t step, ag_value_t *v)
{
    ag_pq_node_t *n = NULL;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_promql_parse(q, strlen(q), &n, &e), 0);
    ag_eval_opts_t o = {300000, 0, 0, AG_ROLLUPS_NEVER};
    int rc = ag_eval_range(g_store, n, start, end, step, &o, v, &e);
    if (rc) fail_msg("%s: %s", q, e.msg);
    ag_promql_free(n);
    assert_int_equal(v->type, AG_VAL_MATRIX);
}

static bool same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static void large_scans_match_series_by_series(void **state)
{
    (void)state;
    big_put();
    int64_t start = 600000, end = (int64_t)(BIG_SAMPLES - 1) * 15000, step = 60000;
    static const char *fns[] = {"rate", "increase", "max_over_time", "count_over_time"};
    /* Twice: the threads sharing the series as timing has it, then the second thread taking
     * all of them, so its path surely runs. */
    for (size_t f = 0; f < 2 * sizeof fns / sizeof fns[0]; f++) {
        ag_store_set_map_on_decoder(g_store, f >= sizeof fns / sizeof fns[0]);
        char q[160];
        ag_value_t all, one, agg;
        const char *fn = fns[f % (sizeof fns / sizeof fns[0])];
        snprintf(q, sizeof q, "%s(big_total[5m])", fn);
        range_query(q, start, end, step, &all);
        assert_int_equal(all.n, BIG_SERIES);
        /* sums by g, added in label order (g, then i) from the one-series answers */
        size_t nsteps = (size_t)((end - start) / step) + 1;
        double *sum = calloc(3 * nsteps, sizeof *sum);
        bool *has = calloc(3 * nsteps, sizeof *has);
        assert_true(sum && has);
        for (int i = 0; i < BIG_SERIES; i++) {
            snprintf(q, sizeof q, "%s(big_total{i=\"%02d\"}[5m])", fn, i);
            range_query(q, start, end, step, &one);
            assert_int_equal(one.n, 1);
            size_t j = 0; /* the same series in the all-series answer (sorted by labels) */
            while (j < all.n && !(all.series[j].labels_len == one.series[0].labels_len &&
                                  memcmp(all.series[j].labels, one.series[0].labels,
                                         one.series[0].labels_len) == 0))
                j++;
            assert_true(j < all.n);
            assert_int_equal(all.series[j].n, one.series[0].n);
            for (size_t k = 0; k < one.series[0].n; k++) {
                assert_int_equal(all.series[j].points[k].t, one.series[0].points[k].t);
                assert_true(same_bits(all.series[j].points[k].v, one.series[0].points[k].v));
                size_t s = (size_t)((one.series[0].points[k].t - start) / step) + (size_t)(i % 3) * nsteps;
                sum[s] = has[s] ? sum[s] + one.series[0].points[k].v : one.series[0].points[k].v;
                has[s] = true;
            }
            ag_value_free(&one);
        }
        snprintf(q, sizeof q, "sum by (g) (%s(big_total[5m]))", fn);
        range_query(q, start, end, step, &agg);
        assert_int_equal(agg.n, 3);
        for (int g = 0; g < 3; g++) {
            size_t k = 0;
            for (size_t s = 0; s < nsteps; s++) {
                if (!has[g * nsteps + s]) continue;
                assert_true(k < agg.series[g].n);
                assert_int_equal(agg.series[g].points[k].t, start + (int64_t)s * step);
                assert_true(same_bits(agg.series[g].points[k].v, sum[g * nsteps + s]));
                k++;
            }
            assert_int_equal(k, agg.series[g].n);
        }
        ag_value_free(&agg);
        /* every fold kind gives what it gives over the built matrix (x * 1 builds it) */
        static const char *ops[] = {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"};
        for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
            ag_value_t a, b;
            snprintf(q, sizeof q, "%s without (i) (%s(big_total[5m]))", ops[o], fn);
            range_query(q, start, end, step, &a);
            snprintf(q, sizeof q, "%s without (i) (%s(big_total[5m]) * 1)", ops[o], fn);
            range_query(q, start, end, step, &b);
            assert_int_equal(a.n, b.n);
            for (size_t j = 0; j < a.n; j++) {
                assert_int_equal(a.series[j].n, b.series[j].n);
                for (size_t k = 0; k < a.series[j].n; k++)
                    assert_true(same_bits(a.series[j].points[k].v, b.series[j].points[k].v));
            }
            ag_value_free(&a);
            ag_value_free(&b);
        }
        free(sum);
        free(has);
        ag_value_free(&all);
    }
    ag_store_set_map_on_decoder(g_store, false);
}

/* rate() and increase() windows (eval_call.c's range_counter: window bounds guessed from the
 * step before, the drops listed once, four windows summed side by side) against the plain
 * per-window computation of functions.c over the same samples, to the bit: counters with
 * resets, gauges with drops at every other sample, irregular timestamps with gaps, steps
 * shorter and longer than the sample interval, offset and @. */
#define JIT_SERIES 6
#define JIT_SAMPLES 1500
#define JIT_T0 76000000 /* after big_total (the head takes no older samples) */
static void jit_samples(int i, ag_sample_t *smp)
{
    unsigned seed = 11u + (unsigned)i;
    int64_t t = JIT_T0;
    double v = 0;
    for (int k = 0; k < JIT_SAMPLES; k++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        t += r % 9 == 0 ? 15000 * (int64_t)(1 + r % 40) : 13000 + (int64_t)(r % 4000);
        if (i % 3 == 0) v = (r >> 4) % 1000 / 10.0;    /* a gauge */
        else if (r % 97 == 0) v = (r >> 4) % 5;        /* a counter reset */
        else v += (r >> 4) % 300 / 7.0;
        smp[k] = (ag_sample_t){t, v};
    }
}

static void rate_windows_match_plain_computation(void **state)
{
    (void)state;
    ag_sample_t *smp = malloc(JIT_SAMPLES * sizeof *smp);
    assert_non_null(smp);
    for (int i = 0; i < JIT_SERIES; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        ag_label_t l[] = {{"__name__", "jit_total"}, {"i", id}};
        jit_samples(i, smp);
        ag_series_in_t in = {l, 2, smp, JIT_SAMPLES};
        ag_write_req_t req = {&in, 1, NULL, 0, NULL, NULL, 0};
        ag_write_res_t res;
        assert_int_equal(ag_store_write(g_store, &req, &res), 0);
    }
    static const struct { const char *fn; ag_range_fn_t f; } fns[] = {
        {"rate", AG_RF_RATE}, {"increase", AG_RF_INCREASE}};
    static const struct { int64_t step, range, offset; const char *mod; } shapes[] = {
        {60000, 300000, 0, ""},         {7000, 300000, 0, ""},
        {300000, 120000, 0, ""},        {45000, 900000, 600000, " offset 10m"},
        {60000, 300000, 0, " @ 85000"}};
    int64_t start = JIT_T0 + 200000, end = JIT_T0 + 18000000;
    size_t checked = 0, with_drops = 0;
    for (size_t f = 0; f < 2; f++) {
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
            char q[160];
            snprintf(q, sizeof q, "%s(jit_total[%llds]%s)", fns[f].fn,
                     (long long)(shapes[sh].range / 1000), shapes[sh].mod);
            ag_value_t v;
            range_query(q, start, end, shapes[sh].step, &v);
            /* The answer lists the series with a value in label order, i.e. by i. */
            size_t j = 0;
            for (int i = 0; i < JIT_SERIES; i++) {
                jit_samples(i, smp);
                const ag_series_val_t *got = j < v.n ? &v.series[j] : NULL;
                size_t k = 0, nsteps = (size_t)((end - start) / shapes[sh].step) + 1;
                for (size_t st = 0; st < nsteps; st++) {
                    int64_t ts = start + (int64_t)st * shapes[sh].step;
                    int64_t ref = (strstr(shapes[sh].mod, "@") ? 85000000 : ts) - shapes[sh].offset;
                    size_t lo = 0, hi = 0;
                    while (lo < JIT_SAMPLES && smp[lo].t < ref - shapes[sh].range) lo++;
                    hi = lo;
                    while (hi < JIT_SAMPLES && smp[hi].t <= ref) hi++;
                    double want;
                    if (!ag_range_fn_eval(fns[f].f, smp + lo, hi - lo, ref, shapes[sh].range,
                                          NULL, &want))
                        continue;
                    for (size_t d = lo + 1; d < hi; d++) with_drops += smp[d].v < smp[d - 1].v;
                    assert_non_null(got);
                    assert_true(k < got->n);
                    assert_int_equal(got->points[k].t, ts);
                    if (!same_bits(got->points[k].v, want))
                        fail_msg("%s series %d at %lld: %.17g, want %.17g", q, i,
                                 (long long)ts, got->points[k].v, want);
                    k++;
                    checked++;
                }
                if (k) {
                    assert_int_equal(k, got->n);
                    j++;
                }
            }
            assert_int_equal(j, v.n);
            ag_value_free(&v);
        }
    }
    free(smp);
    assert_true(checked > 10000);
    assert_true(with_drops > 10000);
}

/* Folded aggregations keep accumulators only for the steps a group has values at, widened as
 * series arrive: later series (in label order) reaching earlier or later steps than the ones
 * before must give the same points, order and bits as the matrix path (x * 1 builds it). */
static void sink_sparse_groups(void **state)
{
    (void)state;
    for (int i = 0; i < 30; i++) {
        char id[16], g[16];
        snprintf(id, sizeof id, "%02d", i);
        snprintf(g, sizeof g, "%d", i % 4);
        ag_label_t l[] = {{"__name__", "short_total"}, {"g", g}, {"i", id}};
        ag_sample_t smp[40];
        /* series i lives for 40 samples starting (29 - i) * 37 samples in, so label order runs
         * backwards in time, with gaps between some */
        int64_t t0 = (int64_t)(29 - i) * 37 * 15000;
        for (int k = 0; k < 40; k++) smp[k] = (ag_sample_t){t0 + k * 15000, (double)(k * (i + 3) % 97) / 7};
        ag_series_in_t in = {l, 3, smp, 40};
        ag_write_req_t req = {&in, 1, NULL, 0, NULL, NULL, 0};
        ag_write_res_t res;
        assert_int_equal(ag_store_write(g_store, &req, &res), 0);
    }
    static const char *ops[] = {"sum", "avg", "min", "max", "count", "stddev"};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        for (int by = 0; by < 2; by++) {
            char q[160];
            ag_value_t a, b;
            const char *grp = by ? "by (g)" : "";
            snprintf(q, sizeof q, "%s %s (rate(short_total[2m]))", ops[o], grp);
            range_query(q, 0, 1200 * 15000, 30000, &a);
            snprintf(q, sizeof q, "%s %s (rate(short_total[2m]) * 1)", ops[o], grp);
            range_query(q, 0, 1200 * 15000, 30000, &b);
            assert_int_equal(a.n, b.n);
            assert_true(a.n >= 1);
            for (size_t j = 0; j < a.n; j++) {
                assert_int_equal(a.series[j].labels_len, b.series[j].labels_len);
                assert_int_equal(a.series[j].n, b.series[j].n);
                for (size_t k = 0; k < a.series[j].n; k++) {
                    assert_int_equal(a.series[j].points[k].t, b.series[j].points[k].t);
                    assert_true(same_bits(a.series[j].points[k].v, b.series[j].points[k].v));
                }
            }
            ag_value_free(&a);
            ag_value_free(&b);
        }
    }
    /* an instant query keeps the order in which groups first appear */
    ag_value_t v;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(run("sum by (i) (rate(short_total[2m]))", 29 * 37 * 15000 + 300000, 0, &v, &e), 0);
    assert_int_equal(v.type, AG_VAL_VECTOR);
    assert_true(v.n >= 1);
    ag_value_free(&v);
}

/* Prometheus 2.42 resolves @ start() and @ end() in a preprocessing pass that never visits an
 * aggregation's parameter, so inside one they do nothing: the parameter follows the step
 * (found by the random comparison: topk(scalar(min(x @ end())), ...) failed there on the steps
 * where x had no sample, and answered here). The db series is 0, 1, 2, ... every 15 s. */
static void agg_param_ignores_start_end(void **state)
{
    (void)state;
    const char *qs[] = {"quantile(scalar(req_total{job=\"db\"} @ end()) / 20, req_total)",
                        "quantile(scalar(req_total{job=\"db\"} @ start()) / 20, req_total)",
                        "quantile(scalar(req_total{job=\"db\"}) / 20, req_total)"};
    for (int i = 0; i < 3; i++) {
        ag_value_t v;
        range_query(qs[i], 0, 300000, 150000, &v);
        assert_int_equal(v.n, 1);
        assert_int_equal(v.series[0].n, 3);
        /* q = 0, 0.5, 1 at 0, 150 s, 300 s over (0, 100, 0), (10, 100, 300), (20, 100, 500) */
        assert_true(v.series[0].points[0].v == 0);
        assert_true(v.series[0].points[1].v == 100);
        assert_true(v.series[0].points[2].v == 500);
        ag_value_free(&v);
    }
    /* Outside a parameter they apply: the same expression as the aggregated vector. */
    ag_value_t v;
    range_query("req_total{job=\"db\"} @ end()", 0, 300000, 150000, &v);
    assert_int_equal(v.n, 1);
    assert_true(v.series[0].points[0].v == 20 && v.series[0].points[2].v == 20);
    ag_value_free(&v);
    /* An aggregation of a step-invariant expression is evaluated once, at the start, in 2.42,
     * parameter included: q = 0 (the db series at 0 s) at every step, over (200, 500, 20). */
    range_query("quantile(scalar(req_total{job=\"db\"}) / 20, req_total @ end())", 0, 300000,
                150000, &v);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.series[0].n, 3);
    for (size_t k = 0; k < 3; k++) assert_true(v.series[0].points[k].v == 20);
    ag_value_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(results),
        cmocka_unit_test(name_not_first),
        cmocka_unit_test(error_kinds),
        cmocka_unit_test(found_by_random_comparison),
        cmocka_unit_test(range_shapes),
        cmocka_unit_test(large_scans_match_series_by_series),
        cmocka_unit_test(rate_windows_match_plain_computation),
        cmocka_unit_test(sink_sparse_groups),
        cmocka_unit_test(agg_param_ignores_start_end),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
