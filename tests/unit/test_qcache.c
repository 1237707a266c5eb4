/* test_qcache.c - unit tests for the range-query result cache (daemon/qcache.c).
 *
 * The cache is driven with a fake evaluator over a small model "world" of series whose values
 * are a function of (series, time) plus a change from some time on (a late write). Every answer
 * is compared with the model's answer for the whole range, and the ranges the evaluator was asked
 * for show what came from the cache. The evaluator can also change the world and notify the cache
 * in the middle of an evaluation: the race between a query and a concurrent late write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_labels.h"
#include "ag_qcache.h"

#define S 1000 /* one second in ms */
#define NOW_FAR (1000000 * S)
#define MAXSER 8

typedef struct world {
    int nseries;
    int64_t req_start; /* start of the request being answered: evaluations stay on its grid */
    int64_t born[MAXSER], died[MAXSER]; /* series k has points in [born, died] */
    int64_t bump_from;                   /* values at t >= bump_from are + bump */
    double bump;
    /* what the evaluator was asked */
    int calls;
    int64_t last_start, last_end;
    /* a late write that lands while the evaluator runs (after its "snapshot") */
    ag_qcache_t *race_cache;
    int race_notes;
    int64_t race_t;
    double race_bump;
} world_t;

static double value_at(const world_t *w, int k, int64_t t)
{
    return k * 1000.0 + (double)(t / S) + (t >= w->bump_from ? w->bump : 0);
}

static int cmp_series(const void *a, const void *b)
{
    const ag_series_val_t *x = a, *y = b;
    return ag_labels_cmp(x->labels, x->labels_len, y->labels, y->labels_len);
}

/* The model's answer for steps start, start + step, ... <= end. */
static void truth(const world_t *w, int64_t start, int64_t end, int64_t step, ag_value_t *out)
{
    memset(out, 0, sizeof *out);
    out->type = AG_VAL_MATRIX;
    out->series = calloc(MAXSER, sizeof *out->series);
    assert_non_null(out->series);
    for (int k = 0; k < w->nseries; k++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", k);
        ag_label_t l[2] = {{"__name__", "m"}, {"i", idx}};
        ag_buf_t b = AG_BUF_INIT;
        ag_labels_encode(l, 2, &b);
        assert_true(ag_buf_ok(&b));
        size_t cap = (size_t)((end - start) / step) + 1;
        ag_point_t *p = malloc(cap * sizeof *p);
        assert_non_null(p);
        size_t n = 0;
        for (int64_t t = start; t <= end; t += step)
            if (t >= w->born[k] && t <= w->died[k]) p[n++] = (ag_point_t){t, value_at(w, k, t)};
        if (!n) {
            free(p);
            ag_buf_free(&b);
            continue;
        }
        ag_series_val_t *s = &out->series[out->n++];
        s->labels = malloc(b.len);
        memcpy(s->labels, b.data, b.len);
        s->labels_len = b.len;
        s->points = p;
        s->n = n;
        ag_buf_free(&b);
    }
    qsort(out->series, out->n, sizeof *out->series, cmp_series);
}

static int64_t g_step = 10 * S;

static int fake_eval(void *ctx, int64_t start, int64_t end, ag_value_t *out, ag_errmsg_t *e)
{
    (void)e;
    world_t *w = ctx;
    /* asked for at least one step of the grid (ag_eval_range refuses end < start) */
    assert_true(start <= end);
    assert_int_equal((start - w->req_start) % g_step, 0);
    w->calls++;
    w->last_start = start;
    w->last_end = end;
    truth(w, start, end, g_step, out);
    if (w->race_notes) {
        /* The write becomes visible after our snapshot; its hook runs before we insert. */
        w->bump_from = w->race_t;
        w->bump = w->race_bump;
        for (int i = 0; i < w->race_notes; i++) ag_qcache_notify_write(w->race_cache, w->race_t);
        w->race_notes = 0;
    }
    return AG_OK;
}

static void assert_matrix_equal(const ag_value_t *a, const ag_value_t *b)
{
    assert_int_equal(a->type, AG_VAL_MATRIX);
    assert_int_equal(b->type, AG_VAL_MATRIX);
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->series[i].labels_len, b->series[i].labels_len);
        assert_memory_equal(a->series[i].labels, b->series[i].labels, a->series[i].labels_len);
        assert_int_equal(a->series[i].n, b->series[i].n);
        for (size_t k = 0; k < a->series[i].n; k++) {
            assert_int_equal(a->series[i].points[k].t, b->series[i].points[k].t);
            assert_true(a->series[i].points[k].v == b->series[i].points[k].v);
        }
    }
}

static ag_pq_node_t *parse(const char *q)
{
    ag_pq_node_t *n = NULL;
    ag_errmsg_t e = {{0}, -1};
    int rc = ag_promql_parse(q, strlen(q), &n, &e);
    if (rc) fail_msg("parse %s: %s", q, e.msg);
    return n;
}

static void world_init(world_t *w, int nseries)
{
    memset(w, 0, sizeof *w);
    w->nseries = nseries;
    for (int k = 0; k < MAXSER; k++) {
        w->born[k] = INT64_MIN;
        w->died[k] = INT64_MAX;
    }
    w->bump_from = INT64_MAX;
}

/* Runs the query through the cache and checks the answer against the model's. */
static void run_on(ag_qcache_t *c, const ag_pq_node_t *n, world_t *w, int64_t start, int64_t end,
                   int64_t now)
{
    ag_value_t got, want;
    ag_errmsg_t e = {{0}, -1};
    /* the answer is the world as the query found it (a race write lands after its snapshot) */
    truth(w, start, end, g_step, &want);
    w->req_start = start;
    assert_int_equal(ag_qcache_range(c, n, start, end, g_step, 300 * S, now, fake_eval, w, &got, &e),
                     0);
    assert_matrix_equal(&got, &want);
    ag_value_free(&got);
    ag_value_free(&want);
}

/* Per test: a 1 MiB cache, the query under test, a world, a 10s step. */
typedef struct fx {
    ag_qcache_t *c;
    ag_pq_node_t *n;
    world_t w;
} fx_t;

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f || !(f->c = ag_qcache_new(1 << 20))) return -1;
    world_init(&f->w, 1);
    g_step = 10 * S;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
    ag_promql_free(f->n);
    ag_qcache_free(f->c);
    free(f);
    return 0;
}

static fx_t *use(void **state, const char *q, int nseries)
{
    fx_t *f = *state;
    f->n = parse(q);
    f->w.nseries = nseries;
    return f;
}

static void run(fx_t *f, int64_t start, int64_t end, int64_t now)
{
    run_on(f->c, f->n, &f->w, start, end, now);
}

static ag_qcache_stats_t stats(ag_qcache_t *c)
{
    ag_qcache_stats_t st;
    ag_qcache_stats(c, &st);
    return st;
}

/* ---- tests -------------------------------------------------------------------------------- */

/* A shifted range uses the cached steps and evaluates only the new ones; series that exist only
 * in the cached part or only in the new part are both in the merged answer. */
static void merge_shifted_range(void **state)
{
    fx_t *f = use(state, "rate(m[5m])", 4);
    f->w.died[1] = 50 * S;  /* only in the early steps */
    f->w.born[2] = 120 * S; /* only in the later steps */
    f->w.born[3] = 1000 * S; /* never in range */
    run(f, 0, 100 * S, NOW_FAR);
    assert_int_equal(f->w.calls, 1);
    assert_int_equal(stats(f->c).misses, 1);
    assert_int_equal(stats(f->c).entries, 1);
    run(f, 30 * S, 150 * S, NOW_FAR);
    assert_int_equal(f->w.calls, 2);
    assert_int_equal(f->w.last_start, 110 * S);
    assert_int_equal(f->w.last_end, 150 * S);
    assert_int_equal(stats(f->c).hits, 1);
    /* inside the cached range: no evaluation at all */
    run(f, 20 * S, 140 * S, NOW_FAR);
    assert_int_equal(f->w.calls, 2);
    assert_int_equal(stats(f->c).hits, 2);
    /* an end off the grid: the last step asked for is cached, nothing is evaluated */
    run(f, 30 * S, 155 * S, NOW_FAR);
    assert_int_equal(f->w.calls, 2);
    /* another grid (start mod step differs) or step is another entry */
    run(f, 5 * S, 105 * S, NOW_FAR);
    assert_int_equal(f->w.calls, 3);
    assert_int_equal(f->w.last_start, 5 * S);
    assert_int_equal(stats(f->c).entries, 2);
    /* the same query spelled differently shares the entry */
    ag_pq_node_t *n2 = parse("rate( m [5m] )");
    run_on(f->c, n2, &f->w, 0, 150 * S, NOW_FAR);
    assert_int_equal(f->w.calls, 3);
    ag_promql_free(n2);
    /* starting before the entry: evaluated whole, and the entry grows backwards */
    run(f, -100 * S, 60 * S, NOW_FAR);
    assert_int_equal(f->w.calls, 4);
    assert_int_equal(f->w.last_start, -100 * S);
    assert_int_equal(f->w.last_end, 60 * S);
    run(f, -100 * S, 150 * S, NOW_FAR);
    assert_int_equal(f->w.calls, 4);
}

/* Steps newer than now - AG_QCACHE_MIN_AGE_MS are evaluated every time. */
static void recent_steps_not_cached(void **state)
{
    fx_t *f = use(state, "m", 2);
    int64_t now = 300 * S + 5 * S;
    run(f, 0, 300 * S, now);
    run(f, 0, 300 * S, now);
    assert_int_equal(f->w.calls, 2);
    /* cached up to 180s (now - 125s < 190s) */
    assert_int_equal(f->w.last_start, 190 * S);
    assert_int_equal(f->w.last_end, 300 * S);
    /* a range entirely within the last two minutes is neither a hit nor a miss */
    ag_qcache_stats_t before = stats(f->c);
    run(f, 250 * S, 300 * S, now);
    assert_int_equal(stats(f->c).hits, before.hits);
    assert_int_equal(stats(f->c).misses, before.misses);
}

/* A late write at L forgets exactly the steps >= L; a write newer than everything cached changes
 * nothing. */
static void late_write_truncates(void **state)
{
    fx_t *f = use(state, "sum by (i) (m)", 3);
    run(f, 0, 100 * S, NOW_FAR);
    ag_qcache_notify_write(f->c, 101 * S); /* after every cached step */
    assert_int_equal(stats(f->c).invalidations, 0);
    /* a late sample of an existing series at 45s, and a new series with old samples */
    f->w.bump_from = 45 * S;
    f->w.bump = 0.5;
    f->w.nseries = 4;
    f->w.born[3] = 45 * S;
    ag_qcache_notify_write(f->c, 45 * S);
    assert_int_equal(stats(f->c).invalidations, 1);
    run(f, 0, 100 * S, NOW_FAR);
    assert_int_equal(f->w.calls, 2);
    assert_int_equal(f->w.last_start, 50 * S);
    /* a write before the entry's first step drops it */
    ag_qcache_notify_write(f->c, -5 * S);
    assert_int_equal(stats(f->c).entries, 0);
    assert_int_equal(stats(f->c).bytes, 0);
    run(f, 0, 100 * S, NOW_FAR);
    assert_int_equal(f->w.last_start, 0);
    assert_int_equal(f->w.calls, 3);
}

/* A late write that becomes visible while a query evaluates (after its snapshot) and notifies
 * before the query inserts: the insert applies it. */
static void race_ring_applies_notifications(void **state)
{
    fx_t *f = use(state, "m", 2);
    f->w.race_cache = f->c;
    f->w.race_notes = 1;
    f->w.race_t = 42 * S;
    f->w.race_bump = 7;
    run(f, 0, 100 * S, NOW_FAR);
    /* only steps < 42s were cached: the rest is evaluated again and sees the write */
    run(f, 0, 100 * S, NOW_FAR);
    assert_int_equal(f->w.calls, 2);
    assert_int_equal(f->w.last_start, 50 * S);
}

/* More notifications during one evaluation than the ring holds: nothing is inserted. Exactly as
 * many as it holds: inserted, truncated. */
static void race_ring_overflow_drops_insert(void **state)
{
    fx_t *f = use(state, "m", 1);
    f->w.race_cache = f->c;
    f->w.race_notes = AG_QCACHE_RING + 1;
    f->w.race_t = 100 * S; /* within what may be cached, so each one reaches the ring */
    run(f, 0, 100 * S, NOW_FAR);
    assert_int_equal(stats(f->c).entries, 0);
    f->w.race_notes = AG_QCACHE_RING;
    f->w.race_t = 60 * S;
    run(f, 0, 100 * S, NOW_FAR);
    assert_int_equal(stats(f->c).entries, 1);
    run(f, 0, 100 * S, NOW_FAR);
    assert_int_equal(f->w.calls, 3);
    assert_int_equal(f->w.last_start, 60 * S);
}

/* The budget holds; the least recently used entry goes first; 0 disables and empties. */
static void lru_budget(void **state)
{
    (void)state;
    g_step = 10 * S;
    world_t w;
    world_init(&w, 4);
    ag_pq_node_t *q[6];
    const char *qs[6] = {"m", "m * 2", "m * 3", "m * 4", "m * 5", "m * 6"};
    for (int i = 0; i < 6; i++) q[i] = parse(qs[i]);
    /* measure one entry */
    ag_qcache_t *c = ag_qcache_new(1 << 20);
    run_on(c, q[0], &w, 0, 1000 * S, NOW_FAR);
    uint64_t one = stats(c).bytes;
    assert_true(one > 4 * 101 * sizeof(ag_point_t));
    ag_qcache_free(c);
    w.calls = 0;
    /* room for three */
    c = ag_qcache_new(3 * one + one / 2);
    for (int i = 0; i < 3; i++) run_on(c, q[i], &w, 0, 1000 * S, NOW_FAR);
    assert_int_equal(stats(c).entries, 3);
    run_on(c, q[0], &w, 0, 1000 * S, NOW_FAR); /* q0 is now the most recent */
    assert_int_equal(w.calls, 3);
    run_on(c, q[3], &w, 0, 1000 * S, NOW_FAR); /* evicts q1 */
    assert_int_equal(stats(c).entries, 3);
    assert_true(stats(c).bytes <= 3 * one + one / 2);
    run_on(c, q[0], &w, 0, 1000 * S, NOW_FAR);
    assert_int_equal(w.calls, 4);
    run_on(c, q[1], &w, 0, 1000 * S, NOW_FAR);
    assert_int_equal(w.calls, 5);
    /* an entry bigger than the whole budget is not kept */
    ag_qcache_set_max_bytes(c, one / 2);
    assert_int_equal(stats(c).entries, 0);
    run_on(c, q[4], &w, 0, 1000 * S, NOW_FAR);
    assert_int_equal(stats(c).entries, 0);
    assert_int_equal(stats(c).bytes, 0);
    /* disabled: always evaluated whole, not counted */
    ag_qcache_set_max_bytes(c, 0);
    ag_qcache_stats_t before = stats(c);
    run_on(c, q[5], &w, 0, 1000 * S, NOW_FAR);
    run_on(c, q[5], &w, 0, 1000 * S, NOW_FAR);
    assert_int_equal(w.last_start, 0);
    assert_int_equal(stats(c).hits, before.hits);
    assert_int_equal(stats(c).misses, before.misses);
    assert_int_equal(stats(c).entries, 0);
    for (int i = 0; i < 6; i++) ag_promql_free(q[i]);
    ag_qcache_free(c);
}

/* `@` and negative offsets read data after the step: never cached. */
static void cacheable_expressions(void **state)
{
    static const struct {
        const char *q;
        bool ok;
    } cases[] = {
        {"m", true},
        {"sum by (job) (rate(m[5m] offset 1h))", true},
        {"topk(3, m) or absent(nope)", true},
        {"max_over_time(rate(m[1m])[10m:30s] offset 5m)", true},
        {"1 + 1", true},
        {"m @ 100", false},
        {"m offset -5m", false},
        {"rate(m[5m] @ end())", false},
        {"sum(m @ start())", false},
        {"max_over_time(m[10m:1m] offset -1m)", false},
        {"max_over_time(m[10m:1m] @ 100)", false},
        {"topk(scalar(m @ 5), m)", false},
        {"-(m offset -1s)", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ag_pq_node_t *n = parse(cases[i].q);
        if (ag_qcache_cacheable(n) != cases[i].ok) fail_msg("cacheable(%s) != %d", cases[i].q, cases[i].ok);
        ag_promql_free(n);
    }
    /* an uncacheable query goes straight to the evaluator */
    fx_t *f = use(state, "m offset -1m", 1);
    run(f, 0, 100 * S, NOW_FAR);
    run(f, 0, 100 * S, NOW_FAR);
    assert_int_equal(f->w.calls, 2);
    assert_int_equal(stats(f->c).entries, 0);
    assert_int_equal(stats(f->c).misses, 0);
}

/* Randomized: many shifted ranges, late writes in between, every answer equals the model's. */
static void randomized_against_model(void **state)
{
    (void)state;
    srand(12345);
    ag_qcache_t *c = ag_qcache_new(64 << 10);
    ag_pq_node_t *n = parse("m");
    world_t w;
    world_init(&w, 5);
    for (int k = 0; k < 5; k++) {
        w.born[k] = (rand() % 400) * S;
        w.died[k] = w.born[k] + (rand() % 600) * S;
    }
    for (int i = 0; i < 2000; i++) {
        g_step = (int64_t)(1 + rand() % 3) * 5 * S;
        int64_t start = (int64_t)(rand() % 200) * S, end = start + (int64_t)(rand() % 300) * S;
        int64_t now = (int64_t)(100 + rand() % 600) * S;
        run_on(c, n, &w, start, end, now);
        if (rand() % 10 == 0) {
            int64_t at = (int64_t)(rand() % 500) * S;
            w.bump_from = w.bump_from < at ? w.bump_from : at;
            w.bump += 1;
            /* a real late write at `at` never changes steps before it */
            ag_qcache_notify_write(c, w.bump_from);
        }
    }
    assert_true(stats(c).hits > 100);
    ag_promql_free(n);
    ag_qcache_free(c);
}

/* A test that runs on a fresh fixture (fx_setup / fx_teardown). */
#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX(merge_shifted_range),
        FX(recent_steps_not_cached),
        FX(late_write_truncates),
        FX(race_ring_applies_notifications),
        FX(race_ring_overflow_drops_insert),
        cmocka_unit_test(lru_budget),
        FX(cacheable_expressions),
        cmocka_unit_test(randomized_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
