/* test_maint.c - rollup tiers and retention (storage/maint.c) on a real store: queries answered
 * from rollup buckets equal the raw answers (before and after late samples re-roll a block, and
 * after a restart), retention deletes raw data, rollup blocks and whole series at the
 * documented boundaries while rollups keep answering for the older past, refuses samples that
 * are too old, and the data file stops growing in steady state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ag_eval.h"
#include "ag_promql.h"
#include "ag_rollup.h"
#include "ag_store.h"

#define STALE 0x7ff0000000000002ULL
#define MIN_MS 60000LL
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

static char g_dir[256];
static uint64_t g_rng;

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static double urand(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/augur-test-maint-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static ag_store_t *open_store(const int64_t ret[3])
{
    ag_store_opts_t o;
    ag_store_opts_default(&o);
    o.path = g_dir;
    o.ooo_window_ms = 10 * MIN_MS;
    o.checkpoint_wal_bytes = 256 << 10; /* the WAL is emptied as often as in production */
    if (ret) memcpy(o.retention_ms, ret, sizeof o.retention_ms);
    o.compact_min_bytes = 0; /* every close compacts: series and slots go into cold groups */
    ag_store_t *s = NULL;
    ag_errmsg_t e = {{0}, -1};
    int rc = ag_store_open(&o, &s, &e);
    if (rc) fprintf(stderr, "open: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return s;
}

/* ---- a generated data set ---------------------------------------------------------------- */

#define NSER 10

typedef struct gen {
    char name[32], inst[16];
    int kind;         /* 0 counter, 1 gauge, 2 irregular gauge with gaps, 3 counter that stops */
    int64_t t;        /* next timestamp */
    double v;
    int64_t stop;     /* no samples at or after this time */
} gen_t;

static gen_t g_gen[NSER];

static void gen_init(int64_t base, int64_t stop_at)
{
    for (int i = 0; i < NSER; i++) {
        gen_t *g = &g_gen[i];
        g->kind = i % 4;
        snprintf(g->name, sizeof g->name, g->kind == 0 || g->kind == 3 ? "c_total" : "g");
        snprintf(g->inst, sizeof g->inst, "i%d", i);
        g->t = base + (int64_t)(rnd() % 15000);
        g->v = g->kind == 1 ? 50 : 0;
        g->stop = g->kind == 3 ? stop_at : INT64_MAX;
    }
}

static double next_value(gen_t *g)
{
    if (g->kind == 0 || g->kind == 3) {
        if (rnd() % 200 == 0) g->v = (double)(rnd() % 5); /* a reset */
        else g->v += (double)(rnd() % 100) / 10;
        return g->v;
    }
    if (rnd() % 500 == 0) return NAN;
    if (rnd() % 700 == 0) {
        double st;
        uint64_t b = STALE;
        memcpy(&st, &b, 8);
        return st;
    }
    g->v += (urand() - 0.5) * 3;
    return round(g->v * 100) / 100;
}

/* Writes every series' samples with timestamps < until, in requests of up to one hour. */
static void gen_write(ag_store_t *s, int64_t until)
{
    static ag_sample_t smp[NSER][400];
    for (;;) {
        ag_series_in_t in[NSER];
        ag_label_t lab[NSER][2];
        size_t n = 0;
        for (int i = 0; i < NSER; i++) {
            gen_t *g = &g_gen[i];
            int64_t lim = g->t < until - HOUR_MS ? g->t + HOUR_MS : until;
            size_t k = 0;
            while (g->t < lim && g->t < g->stop && k < 400) {
                smp[i][k].t = g->t;
                smp[i][k].v = next_value(g);
                k++;
                int64_t step = g->kind == 2 ? 5000 + (int64_t)(rnd() % 40000) : 15000;
                if (g->kind == 2 && rnd() % 300 == 0) step += (int64_t)(rnd() % (3 * HOUR_MS));
                g->t += step;
            }
            if (!k) continue;
            lab[i][0] = (ag_label_t){"__name__", g->name};
            lab[i][1] = (ag_label_t){"instance", g->inst};
            in[n++] = (ag_series_in_t){lab[i], 2, smp[i], k};
        }
        if (!n) return;
        ag_write_req_t req = {in, n, NULL, 0, NULL, NULL, 0};
        ag_write_res_t res;
        int rc = ag_store_write(s, &req, &res);
        if (rc) fail_msg("write: %s", res.err.msg);
    }
}

/* ---- comparing rollup answers with raw answers -------------------------------------------- */

static bool close_enough(double a, double b, bool exact)
{
    uint64_t x, y;
    memcpy(&x, &a, 8);
    memcpy(&y, &b, 8);
    if (x == y || (isnan(a) && isnan(b))) return true;
    if (exact) return false;
    if (isinf(a) || isinf(b)) return a == b;
    return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b)) + 1e-12;
}

static int eval(ag_store_t *s, const char *q, int64_t start, int64_t end, int64_t step,
                ag_rollup_use_t use, ag_value_t *v)
{
    ag_pq_node_t *n = NULL;
    ag_errmsg_t e = {{0}, -1};
    if (ag_promql_parse(q, strlen(q), &n, &e)) fail_msg("parse %s: %s", q, e.msg);
    ag_eval_opts_t o = {300000, 0, 0, use};
    int rc = start == end ? ag_eval_instant(s, n, start, &o, v, &e)
                          : ag_eval_range(s, n, start, end, step, &o, v, &e);
    ag_promql_free(n);
    if (rc) fail_msg("eval %s: %s", q, e.msg);
    return rc;
}

/* Evaluates q both ways and fails on any difference; returns the number of points compared. */
static size_t compare(ag_store_t *s, const char *q, int64_t start, int64_t end, int64_t step,
                      bool exact)
{
    ag_value_t a, b;
    eval(s, q, start, end, step, AG_ROLLUPS_NEVER, &a);
    eval(s, q, start, end, step, AG_ROLLUPS_ALWAYS, &b);
    size_t pts = 0;
    if (a.n != b.n) fail_msg("%s step %lld: %zu raw series, %zu from rollups", q, (long long)step, a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        ag_series_val_t *x = &a.series[i], *y = &b.series[i];
        if (x->labels_len != y->labels_len || memcmp(x->labels, y->labels, x->labels_len))
            fail_msg("%s: series %zu differs", q, i);
        if (x->n != y->n)
            fail_msg("%s step %lld series %zu: %zu raw points, %zu from rollups", q,
                     (long long)step, i, x->n, y->n);
        for (size_t k = 0; k < x->n; k++) {
            if (x->points[k].t != y->points[k].t || !close_enough(x->points[k].v, y->points[k].v, exact))
                fail_msg("%s step %lld series %zu at %lld: raw %.17g, rollups %.17g", q,
                         (long long)step, i, (long long)x->points[k].t, x->points[k].v,
                         y->points[k].v);
            pts++;
        }
    }
    ag_value_free(&a);
    ag_value_free(&b);
    return pts;
}

static void select_all(ag_store_t *s, ag_selection_t *sel)
{
    ag_matcher_t m;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_matcher_init(&m, AG_MATCH_RE, "__name__", ".+", 2, &e), 0);
    assert_int_equal(ag_store_select(s, &m, 1, INT64_MIN, INT64_MAX, true, 0, sel, &e), 0);
    ag_matcher_free(&m);
}

static void same_selection(const ag_selection_t *a, const ag_selection_t *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->series[i].n, b->series[i].n);
        assert_memory_equal(a->series[i].samples, b->series[i].samples,
                            a->series[i].n * sizeof *a->series[i].samples);
    }
}

static size_t compare_all(ag_store_t *s, int64_t from, int64_t to)
{
    static const struct { const char *fn; bool exact; } fns[] = {
        {"rate", false}, {"increase", false}, {"delta", false}, {"min_over_time", true},
        {"max_over_time", true}, {"sum_over_time", false}, {"count_over_time", true},
        {"avg_over_time", false}, {"last_over_time", true}, {"present_over_time", true},
    };
    static const char *ranges[] = {"1m", "5m", "1h", "3h"};
    static const int64_t steps[] = {MIN_MS, 5 * MIN_MS, HOUR_MS};
    size_t pts = 0;
    for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++)
        for (size_t r = 0; r < 4; r++)
            for (size_t k = 0; k < 3; k++) {
                char q[128];
                const char *sel = f % 2 ? "c_total" : "{__name__=~\"c_total|g\"}";
                snprintf(q, sizeof q, "%s(%s[%s])", fns[f].fn, sel, ranges[r]);
                /* Long steps over the whole span, short ones over a day. */
                int64_t st = steps[k], a = (from / HOUR_MS + 1) * HOUR_MS;
                int64_t b = st >= HOUR_MS ? to : a + DAY_MS;
                pts += compare(s, q, a, b, st, fns[f].exact);
            }
    return pts;
}

static void rollups_match_raw(void **state)
{
    (void)state;
    g_rng = 0x5eed1234abcdULL ^ (uint64_t)now_ms();
    printf("seed %llu\n", (unsigned long long)g_rng);
    int64_t now = now_ms();
    int64_t base = (now - 3 * DAY_MS) / HOUR_MS * HOUR_MS, end = now - HOUR_MS;
    ag_store_t *s = open_store(NULL);
    gen_init(base, base + DAY_MS + 7 * 3600000LL + 12345);
    gen_write(s, end);
    /* Maintenance merges the sealed chunks of every finished 6 h block into one: every sample
     * must read back bit for bit. */
    ag_selection_t before, after;
    select_all(s, &before);
    ag_store_maintain(s);
    select_all(s, &after);
    same_selection(&before, &after);
    ag_selection_free(&before);
    ag_selection_free(&after);
    ag_store_stats_t st;
    ag_store_stats(s, &st);
    assert_true(st.rollup_blocks_written > 0);
    assert_true(st.chunks_compacted > 0);
    size_t pts = compare_all(s, base, end);
    assert_true(pts > 10000);
    /* Instant queries over many buckets use the tiers too. */
    int64_t t = end / HOUR_MS * HOUR_MS;
    compare(s, "max_over_time(g[1d])", t, t, 0, true);
    compare(s, "count_over_time(c_total[2d])", t, t, 0, true);
    compare(s, "rate(c_total[1d])", t, t, 0, false);

    /* The stopped counters are rolled up to the store's newest time; samples arriving for them
     * now land in rolled blocks, which must be re-rolled. */
    for (int i = 0; i < NSER; i++) g_gen[i].stop = INT64_MAX;
    for (int i = 0; i < NSER; i++)
        if (g_gen[i].kind != 3) g_gen[i].t = INT64_MAX;
    gen_write(s, base + 2 * DAY_MS);
    compare_all(s, base, end);
    ag_store_maintain(s);
    compare_all(s, base, end);

    /* A restart finds the stored blocks again. */
    ag_store_close(s);
    s = open_store(NULL);
    ag_store_stats(s, &st);
    assert_int_equal(st.rollup_blocks_written, 0);
    pts = compare_all(s, base, end);
    ag_store_maintain(s);
    compare_all(s, base, end);
    ag_store_close(s);
}

/* ---- retention ------------------------------------------------------------------------------ */

static uint64_t file_size(void)
{
    char p[300];
    snprintf(p, sizeof p, "%s/data.mdb", g_dir);
    struct stat sb;
    return stat(p, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static int64_t oldest_raw(ag_store_t *s)
{
    ag_selection_t sel;
    select_all(s, &sel);
    int64_t oldest = INT64_MAX;
    for (size_t i = 0; i < sel.n; i++)
        if (sel.series[i].n && sel.series[i].samples[0].t < oldest) oldest = sel.series[i].samples[0].t;
    ag_selection_free(&sel);
    return oldest;
}

static void retention_boundaries(void **state)
{
    (void)state;
    g_rng = 0x7e7e7e7eULL ^ (uint64_t)now_ms();
    printf("seed %llu\n", (unsigned long long)g_rng);
    const int64_t ret[3] = {DAY_MS, 2 * DAY_MS, 4 * DAY_MS};
    int64_t now = now_ms();
    int64_t base = (now - 60 * DAY_MS) / HOUR_MS * HOUR_MS;
    ag_store_t *s = open_store(ret);
    gen_init(base, base + DAY_MS);
    uint64_t size20 = 0, size40 = 0;
    for (int day = 1; day <= 60; day++) {
        gen_write(s, base + day * DAY_MS);
        ag_store_maintain(s);
        if (getenv("MAINT_DEBUG")) {
            ag_store_stats_t d;
            ag_store_stats(s, &d);
            printf("day %d file %llu used %llu rolled %llu chunks-del %llu blocks-del %llu series-del %llu steps %llu sealed %llu wal %llu\n", day,
                   (unsigned long long)file_size(), (unsigned long long)d.used_bytes,
                   (unsigned long long)d.rollup_blocks_written, (unsigned long long)d.retention_chunks_deleted,
                   (unsigned long long)d.retention_blocks_deleted, (unsigned long long)d.retention_series_deleted,
                   (unsigned long long)d.maintenance_steps, (unsigned long long)d.chunks_sealed, (unsigned long long)d.wal_bytes);
        }
        if (day == 2) { /* the series go into a cold group, which retention then edits */
            ag_store_close(s);
            s = open_store(ret);
        }
        if (day == 20) size20 = file_size();
        if (day == 40) size40 = file_size();
    }
    uint64_t size60 = file_size();
    printf("data.mdb: day 20 %llu, day 40 %llu, day 60 %llu bytes\n", (unsigned long long)size20,
           (unsigned long long)size40, (unsigned long long)size60);
    /* Steady state: freed pages are reused, the file does not keep growing. */
    assert_true(size60 <= size40 + size40 / 10);

    ag_store_stats_t st;
    ag_store_stats(s, &st);
    int64_t ref = st.max_time;
    assert_true(st.retention_chunks_deleted > 0);
    assert_true(st.retention_blocks_deleted > 0);
    /* The counters that stopped on day 1 are gone, index entries included. */
    assert_int_equal(st.retention_series_deleted, 2);
    assert_int_equal(st.series, NSER - 2);
    ag_store_close(s); /* and they stay deleted through a reopen and another compaction */
    s = open_store(ret);
    ag_store_stats(s, &st);
    assert_int_equal(st.series, NSER - 2);
    ag_store_close(s);
    s = open_store(ret);
    ag_store_stats(s, &st);
    assert_int_equal(st.series, NSER - 2);

    /* Raw: only chunks reaching past the cut (a 6 h block boundary) are left. */
    int64_t oldest = oldest_raw(s);
    int64_t cut = (ref - DAY_MS) / (6 * HOUR_MS) * (6 * HOUR_MS);
    assert_true(oldest < ref - DAY_MS + HOUR_MS);
    assert_true(oldest >= cut - 12 * HOUR_MS); /* a chunk is 120 samples, <= 10 h here */

    /* Beyond raw retention, the 1 m tier still answers (AUTO takes rollups there by itself) (15 s samples: 4 per minute, 240 per
     * hour for the regular series) and so does the 1 h tier beyond that. */
    ag_value_t v;
    int64_t t1 = (ref - DAY_MS - 12 * HOUR_MS) / HOUR_MS * HOUR_MS;
    eval(s, "count_over_time(c_total{instance=\"i0\"}[1h])", t1 - 6 * HOUR_MS, t1, HOUR_MS, AG_ROLLUPS_AUTO, &v);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.series[0].n, 7);
    for (size_t k = 0; k < v.series[0].n; k++)
        assert_true(v.series[0].points[k].v >= 239 && v.series[0].points[k].v <= 241);
    ag_value_free(&v);
    int64_t t2 = (ref - 3 * DAY_MS) / HOUR_MS * HOUR_MS;
    eval(s, "count_over_time(c_total{instance=\"i0\"}[1h])", t2 - 6 * HOUR_MS, t2, HOUR_MS, AG_ROLLUPS_AUTO, &v);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.series[0].n, 7);
    ag_value_free(&v);
    /* Raw-only reads see nothing there. */
    eval(s, "count_over_time(c_total{instance=\"i0\"}[1h])", t2 - 6 * HOUR_MS, t2, HOUR_MS, AG_ROLLUPS_NEVER, &v);
    assert_int_equal(v.n, 0);
    ag_value_free(&v);
    /* Past the 1 h tier's retention (and its 10 d block) nothing is left. */
    int64_t t3 = ref - 20 * DAY_MS;
    eval(s, "count_over_time(c_total[1h])", t3 - 6 * HOUR_MS, t3, HOUR_MS, AG_ROLLUPS_AUTO, &v);
    assert_int_equal(v.n, 0);
    ag_value_free(&v);

    /* A sample older than raw retention is refused, and nothing of its request is stored. */
    ag_label_t l[] = {{"__name__", "late"}, {"instance", "x"}};
    ag_sample_t smp[] = {{ref - 2 * DAY_MS, 1}, {ref, 2}};
    ag_series_in_t in = {l, 2, smp, 2};
    ag_write_req_t req = {&in, 1, NULL, 0, NULL, NULL, 0};
    ag_write_res_t res;
    assert_int_equal(ag_store_write(s, &req, &res), AG_ECONFLICT);
    assert_non_null(strstr(res.err.msg, "retention"));
    ag_store_stats(s, &st);
    assert_int_equal(st.series, NSER - 2);

    /* After a restart the same boundaries hold. */
    ag_store_close(s);
    s = open_store(ret);
    assert_int_equal(oldest_raw(s), oldest);
    ag_store_stats(s, &st);
    assert_int_equal(st.series, NSER - 2);
    ag_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(rollups_match_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_boundaries, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
