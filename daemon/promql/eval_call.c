/* eval_call.c - PromQL function calls: argument evaluation, windows over range arguments, label
 * functions and the special cases of Prometheus 2.42's engine (timestamp() of a selector,
 * absent()'s labels, sort order, the __name__ rule). The arithmetic lives in functions.c
 * (ag_pqfunc.h); this file only moves samples and labels around it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ag_labels.h"
#include "ag_pqfunc.h"
#include "eval_int.h"

#define MAX_ARGS 8

static int err_unsupported(ev_t *ev, const ag_pq_node_t *n)
{
    return ag_errmsg_set(ev->e, AG_EUNSUPPORTED, n->pos, "function \"%s\" is not supported yet",
                         n->u.call.name);
}

/* Evaluates every argument except `skip` (-1 for none). */
static int eval_args(ev_t *ev, const ag_pq_node_t *n, int skip, eval_val_t *a)
{
    /* All cleared first: on an error the caller frees every argument (free_args). */
    for (size_t i = 0; i < n->u.call.nargs && i < MAX_ARGS; i++) memset(&a[i], 0, sizeof a[i]);
    for (size_t i = 0; i < n->u.call.nargs && i < MAX_ARGS; i++) {
        if ((int)i == skip) continue;
        int rc = ev_eval(ev, n->u.call.args[i], &a[i]);
        if (rc) return rc;
    }
    return AG_OK;
}

static void free_args(ev_t *ev, const ag_pq_node_t *n, eval_val_t *a)
{
    for (size_t i = 0; i < n->u.call.nargs && i < MAX_ARGS; i++) ev_val_free(ev, &a[i]);
}

/* rate(), *_over_time() and friends: slide the window of each series over the steps. Each
 * series is first computed into a row (its value at every step) by range_row, which touches
 * nothing shared, so a large scan computes rows on two threads (ag_store_scan_map); range_put
 * then adds the row to the output, or folds it into an aggregation (ev_call_fold), in series
 * order. */
typedef struct range_call {
    ev_t *ev;
    const ag_pq_node_t *n;
    ag_range_fn_t f;
    int mi;           /* the range argument's index */
    eval_val_t *a;    /* the other arguments */
    range_src_t rs;
    eval_val_t *out;  /* the output, or NULL when folding into sink */
    ev_sink_t *sink;
    emat_t seen;      /* folding: the output labelsets so far, for the duplicate check */
    void *row;        /* a row for the paths that compute on this thread only */
    /* Scratch per map slot (ag_series_map_fn): the series without stale markers, and the
     * counter drops (range_counter). */
    ag_point_t *buf[2];
    size_t cap_buf[2];
    uint32_t *cum[2];
    double *dv[2];
    size_t cap_drops[2];
    unsigned maps[2];
} range_call_t;

/* A row: a header, then the value at each step, then whether there is one (1 byte per step). */
typedef struct row {
    size_t kept;    /* samples the series had in the scan, stale markers left out */
    size_t present; /* steps with a value */
} row_t;

static size_t row_bytes(size_t nsteps)
{
    return sizeof(row_t) + nsteps * sizeof(double) + (nsteps + 7) / 8 * 8;
}
static double *row_vals(const void *r) { return (double *)((row_t *)r + 1); }
static uint8_t *row_has(const void *r, size_t nsteps) { return (uint8_t *)(row_vals(r) + nsteps); }

/* The output labels of one series of a range function's argument. A function over a range
 * vector checks its whole output matrix (2.42's Matrix.ContainsSameLabelset, over the series
 * with points), not step by step. */
static int out_labels(ev_t *ev, range_call_t *c, const char **l, size_t *len)
{
    if (c->f != AG_RF_LAST_OVER_TIME) lbl_drop_name(ev, *l, *len, l, len);
    const eseries_t *prev = emat_find(c->sink ? &c->seen : &c->out->m, *l, *len);
    if (prev && (c->sink || prev->n))
        return ag_errmsg_set(ev->e, AG_EEXEC, -1, "vector cannot contain metrics with the same labelset");
    if (c->sink && !emat_series(ev, &c->seen, *l, *len)) return AG_ENOMEM;
    return AG_OK;
}

/* Adds a series' row to the output (or the aggregation folding it), in series order. */
static int range_put(ev_t *ev, range_call_t *c, const char *l, size_t len, const void *row)
{
    const row_t *r = row;
    if (!r->present) return ev_tick(ev);
    int rc = out_labels(ev, c, &l, &len);
    const double *v = row_vals(row);
    const uint8_t *has = row_has(row, ev->nsteps);
    if (!rc && c->sink) {
        size_t g = 0;
        rc = sink_series(ev, c->sink, l, len, &g);
        if (!rc) rc = sink_row(ev, c->sink, g, v, has);
    }
    for (size_t k = 0; k < ev->nsteps && !rc && !c->sink; k++)
        if (has[k]) rc = emit(ev, &c->out->m, l, len, step_ts(ev, k), v[k]);
    if (!rc) rc = ev_tick(ev);
    return rc;
}

/* Windows per block of range_counter. */
#define CBLOCK 128

/* The first index from `from` (0 <= from <= lim) whose time is past `ref` (`after`) or at
 * least `ref`, at most lim. The previous step's advance `*adv` is tried first: over regular
 * samples every step moves the window by the same number of samples. */
static inline size_t advance(const ag_point_t *p, size_t from, size_t lim, int64_t ref,
                             bool after, size_t *adv)
{
    /* t < ref is t <= ref - 1, so both cases compare with <= */
    if (!after) {
        if (ref == INT64_MIN) return from;
        ref--;
    }
    size_t g = from + *adv;
    if (g <= lim && (g == from || p[g - 1].t <= ref) && (g == lim || p[g].t > ref)) return g;
    g = from;
    while (g < lim && p[g].t <= ref) g++;
    *adv = g - from;
    return g;
}

/* rate() and increase() of one series into a row, a block of steps at a time: first the
 * bounds of each step's window, then each window's raw increase, then the extrapolation
 * (ag_range_fn_increase_many). The raw increase is Prometheus' last - first plus the value
 * before each drop inside the window, added in time order. The drops are listed once for the
 * series (dv, the value before each; cum[i] the number of drops before index i, so the drops
 * of a window are an interval of dv), and four windows are summed side by side, which keeps
 * each sum's order (and rounding) and runs the four chains of additions at once; a window with
 * fewer drops than the others in its four adds dv's last entry, -0.0, which leaves every value
 * as it is. */
static int range_counter(const ev_t *ev, range_call_t *c, int slot, const ag_point_t *p,
                         size_t np, double *val, uint8_t *has, size_t *present)
{
    if (np + 1 > c->cap_drops[slot]) {
        uint32_t *cm = realloc(c->cum[slot], (np + 1) * sizeof *cm);
        if (cm) c->cum[slot] = cm;
        double *dm = realloc(c->dv[slot], (np + 1) * sizeof *dm);
        if (dm) c->dv[slot] = dm;
        if (!cm || !dm) return AG_ENOMEM;
        c->cap_drops[slot] = np + 1;
    }
    uint32_t *cum = c->cum[slot];
    double *dv = c->dv[slot];
    /* Counters rarely drop: up to the first drop nothing needs listing. */
    size_t first = 1;
    while (first + 4 <= np && !((p[first].v < p[first - 1].v) | (p[first + 1].v < p[first].v) |
                                (p[first + 2].v < p[first + 1].v) |
                                (p[first + 3].v < p[first + 2].v)))
        first += 4;
    while (first < np && !(p[first].v < p[first - 1].v)) first++;
    uint32_t nd = 0;
    if (first < np) memset(cum, 0, (first + 1) * sizeof *cum); /* no drops: cum is not read */
    for (size_t i = first; i < np; i++) {
        cum[i] = nd;
        dv[nd] = p[i - 1].v;
        nd += p[i].v < p[i - 1].v;
    }
    if (np > first) cum[np] = nd;
    dv[nd] = -0.0;

    int64_t range = c->rs.range_ms, off = c->rs.offset_ms;
    size_t lo = 0, hi = 0, alo = 0, ahi = 0;
    for (size_t k0 = 0; k0 < ev->nsteps; k0 += CBLOCK) {
        uint32_t K[CBLOCK], L[CBLOCK], H[CBLOCK];
        int64_t T[CBLOCK];
        double inc[CBLOCK], out[CBLOCK];
        size_t m = 0, kend = ev->nsteps - k0 < CBLOCK ? ev->nsteps : k0 + CBLOCK;
        for (size_t k = k0; k < kend; k++) {
            int64_t ref = (c->rs.fixed ? c->rs.fixed_ts : step_ts(ev, k)) - off;
            hi = advance(p, hi, np, ref, true, &ahi);
            lo = advance(p, lo, hi, ref - range, false, &alo);
            if (hi - lo < 2) continue;
            K[m] = (uint32_t)k;
            L[m] = (uint32_t)lo;
            H[m] = (uint32_t)hi;
            T[m] = ref;
            m++;
        }
        size_t i = 0;
        if (!nd) {
            for (; i < m; i++) inc[i] = p[H[i] - 1].v - p[L[i]].v;
        }
        for (; i + 4 <= m; i += 4) {
            double s[4];
            uint32_t a[4], e[4], most = 0;
            for (int w = 0; w < 4; w++) {
                s[w] = p[H[i + w] - 1].v - p[L[i + w]].v;
                a[w] = cum[L[i + w] + 1];
                e[w] = cum[H[i + w]];
                if (e[w] - a[w] > most) most = e[w] - a[w];
            }
            for (uint32_t d = 0; d < most; d++) {
                s[0] += dv[a[0] + d < e[0] ? a[0] + d : nd];
                s[1] += dv[a[1] + d < e[1] ? a[1] + d : nd];
                s[2] += dv[a[2] + d < e[2] ? a[2] + d : nd];
                s[3] += dv[a[3] + d < e[3] ? a[3] + d : nd];
            }
            memcpy(&inc[i], s, sizeof s);
        }
        for (; i < m; i++) {
            double s = p[H[i] - 1].v - p[L[i]].v;
            for (uint32_t d = cum[L[i] + 1]; d < cum[H[i]]; d++) s += dv[d];
            inc[i] = s;
        }
        ag_range_fn_increase_many(c->f, p, L, H, inc, T, m, range, out);
        for (i = 0; i < m; i++) {
            val[K[i]] = out[i];
            has[K[i]] = 1;
        }
        *present += m;
    }
    return AG_OK;
}

/* One series' points (no stale markers) slid over every step into row `out`. Reads ev and c
 * and writes only c's scratch of `slot`, so two slots may run at once. */
static int range_row(const ev_t *ev, range_call_t *c, int slot, const ag_point_t *p, size_t np,
                     void *out)
{
    const ag_pq_node_t *n = c->n;
    int64_t range = c->rs.range_ms, off = c->rs.offset_ms, fts = c->rs.fixed_ts;
    row_t *r = out;
    double *val = row_vals(out);
    uint8_t *has = row_has(out, ev->nsteps);
    r->present = 0;
    memset(has, 0, ev->nsteps);
    if (c->f == AG_RF_RATE || c->f == AG_RF_INCREASE)
        return range_counter(ev, c, slot, p, np, val, has, &r->present);
    /* predict_linear's intercept is the step time even under @ (as in 2.42). */
    bool at_step = c->f == AG_RF_PREDICT_LINEAR || c->f == AG_RF_PREDICT_HW ||
                   c->f == AG_RF_PREDICT_HW_LOWER || c->f == AG_RF_PREDICT_HW_UPPER;
    bool more_args = n->u.call.nargs > 1;
    double args[MAX_ARGS] = {0};
    size_t lo = 0, hi = 0;
    for (size_t k = 0; k < ev->nsteps; k++) {
        int64_t ts = step_ts(ev, k), at = c->rs.fixed ? fts : ts, ref = at - off;
        while (hi < np && p[hi].t <= ref) hi++;
        while (lo < hi && p[lo].t < ref - range) lo++;
        if (hi == lo) continue;
        if (more_args) {
            size_t na = 0;
            for (size_t j = 0; j < n->u.call.nargs && j < MAX_ARGS; j++)
                if ((int)j != c->mi) args[na++] = c->a[j].sc ? c->a[j].sc[k] : 0;
        }
        int64_t t = at_step ? ts : ref;
        if (ag_range_fn_eval(c->f, p + lo, hi - lo, t, range, args, &val[k])) {
            has[k] = 1;
            r->present++;
        }
    }
    return AG_OK;
}

/* The map of the store scan (ag_series_map_fn): drops stale markers, then computes the row. */
static int range_map(void *mctx, int slot, const char *labels, size_t labels_len,
                     const ag_sample_t *smp, size_t n, void *out)
{
    (void)labels, (void)labels_len;
    range_call_t *c = mctx;
    if ((++c->maps[slot] & 63) == 0 && ev_past_deadline(c->ev)) return AG_ETIMEOUT;
    /* Without stale markers (the usual case) the samples are the points, uncopied. */
    size_t w = 0;
    /* four at a time, one branch for the four */
    while (w + 4 <= n && !((int)ev_is_stale(smp[w].v) | (int)ev_is_stale(smp[w + 1].v) |
                           (int)ev_is_stale(smp[w + 2].v) | (int)ev_is_stale(smp[w + 3].v)))
        w += 4;
    while (w < n && !ev_is_stale(smp[w].v)) w++;
    const ag_point_t *p = smp;
    if (w < n) {
        if (n > c->cap_buf[slot]) {
            ag_point_t *nb = realloc(c->buf[slot], n * sizeof *nb);
            if (!nb) return AG_ENOMEM;
            c->buf[slot] = nb;
            c->cap_buf[slot] = n;
        }
        ag_point_t *q = c->buf[slot];
        memcpy(q, smp, w * sizeof *q);
        for (size_t k = w + 1; k < n; k++)
            if (!ev_is_stale(smp[k].v)) q[w++] = smp[k];
        p = q;
    }
    ((row_t *)out)->kept = w;
    return range_row(c->ev, c, slot, p, w, out);
}

/* The in-order half of the store scan (ag_series_mapped_fn). */
static int range_take(void *ctx, const char *l, size_t len, size_t n, const void *row)
{
    (void)n;
    range_call_t *c = ctx;
    ev_t *ev = c->ev;
    /* The series' samples count against the limit while its windows are computed. */
    int rc = ev_count(ev, ((const row_t *)row)->kept);
    ev->points -= ((const row_t *)row)->kept;
    return rc ? rc : range_put(ev, c, l, len, row);
}

/* ---- windows made of rollup buckets ------------------------------------------------------ */

/* The rollup width (ag_rollup.h) that answers f over selector `sel` exactly at every step of
 * this evaluation, or 0 to read raw samples. The window [T - range, T] of a step at T is then
 * whole buckets [T - range, T) plus the single sample at T, which a bucket starting at T holds
 * as its first when there is one. It needs the step to be whole buckets (a range query whose
 * resolution makes raw samples pointless) and the range and start to line up with them. */
static int64_t rollup_width(const ev_t *ev, const ag_pq_node_t *sel, ag_range_fn_t f)
{
    if (ev->o->rollups == AG_ROLLUPS_NEVER || ev_at(ev, sel->u.sel.at) != AG_PQ_AT_NONE)
        return 0;
    switch (f) {
    case AG_RF_RATE: case AG_RF_INCREASE: case AG_RF_DELTA: case AG_RF_MIN_OVER_TIME:
    case AG_RF_MAX_OVER_TIME: case AG_RF_SUM_OVER_TIME: case AG_RF_COUNT_OVER_TIME:
    case AG_RF_AVG_OVER_TIME: case AG_RF_LAST_OVER_TIME: case AG_RF_PRESENT_OVER_TIME:
        break;
    default:
        return 0;
    }
    static const int64_t widths[] = {AG_ROLLUP_1H_MS, AG_ROLLUP_1M_MS};
    int64_t range = sel->u.sel.range_ms, off = sel->u.sel.offset_ms;
    bool instant = ev->nsteps <= 1;
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        int64_t w = widths[i];
        if (range < w || range % w || (!instant && (ev->step < w || ev->step % w)))
            continue;
        if (off > 0 ? ev->start < INT64_MIN + off : ev->end > INT64_MAX + off)
            continue;
        int64_t t0 = ev->start - off;
        if (t0 % w != 0 || t0 < INT64_MIN + range)
            continue;
        /* Folding raw samples into buckets costs more than sliding over them, so AUTO takes
         * buckets only for windows of 30 buckets or more, or where raw data is gone. */
        /* Sums of buckets are not 2.42's compensated sums over the samples (the last bits
         * differ), so sum and avg use buckets only where raw data is gone. */
        bool summed = f == AG_RF_SUM_OVER_TIME || f == AG_RF_AVG_OVER_TIME;
        if (ev->o->rollups == AG_ROLLUPS_AUTO && (range / w < 30 || summed) &&
            t0 - range >= ag_store_raw_horizon(ev->store))
            continue;
        return w;
    }
    return 0;
}

typedef struct rollup_call {
    ev_t *ev;
    range_call_t *c;
} rollup_call_t;

static int rollup_series(void *arg, const char *l, size_t len, const ag_rollup_t *b, size_t nb)
{
    rollup_call_t *rc_ = arg;
    ev_t *ev = rc_->ev;
    range_call_t *c = rc_->c;
    int64_t range = c->rs.range_ms, off = c->rs.offset_ms;
    row_t *r = c->row;
    double *val = row_vals(r);
    uint8_t *has = row_has(r, ev->nsteps);
    r->present = 0;
    memset(has, 0, ev->nsteps);
    size_t lo = 0, hi = 0;
    for (size_t k = 0; k < ev->nsteps; k++) {
        int64_t ts = step_ts(ev, k), ref = ts - off;
        while (hi < nb && b[hi].start < ref) hi++;
        while (lo < hi && b[lo].start < ref - range) lo++;
        ag_point_t e, *edge = NULL;
        if (hi < nb && b[hi].start == ref && b[hi].first_t == ref) {
            e.t = ref;
            e.v = b[hi].first;
            edge = &e;
        }
        if (ag_range_fn_rollups(c->f, b + lo, hi - lo, edge, ref, range, &val[k])) {
            has[k] = 1;
            r->present++;
        }
    }
    return range_put(ev, c, l, len, r);
}

static int rollup_scan(ev_t *ev, const ag_pq_node_t *sel, range_call_t *c, int64_t w)
{
    memset(&c->rs, 0, sizeof c->rs);
    c->rs.range_ms = sel->u.sel.range_ms;
    c->rs.offset_ms = sel->u.sel.offset_ms;
    int64_t mint = ev->start - c->rs.offset_ms - c->rs.range_ms, maxt = ev->end - c->rs.offset_ms;
    maxt -= ((maxt % w) + w) % w;
    rollup_call_t rcall = {ev, c};
    return ag_store_scan_rollups(ev->store, w, sel->u.sel.matchers, sel->u.sel.nmatchers, mint,
                                 maxt, ev->o->max_samples, rollup_series, &rcall, ev->e);
}

/* rate(), *_over_time() and friends: slide the window of each series over the steps. A matrix
 * selector is streamed from the store one series at a time (as rollup buckets when they give
 * the same answer, see rollup_width); a subquery is evaluated first. The output goes to out,
 * or with a sink (out NULL) into the aggregation folding it. */
static int call_range(ev_t *ev, const ag_pq_node_t *n, ag_range_fn_t f, int mi, eval_val_t *out,
                      ev_sink_t *sink)
{
    eval_val_t a[MAX_ARGS];
    range_call_t c = {.ev = ev, .n = n, .f = f, .mi = mi, .a = a, .out = out, .sink = sink};
    int rc = eval_args(ev, n, mi, a);
    if (out) out->k = AG_PQ_T_VECTOR;
    const ag_pq_node_t *arg = unparen(n->u.call.args[mi]);
    int64_t w = !rc && arg->type == AG_PQ_MATRIX_SEL ? rollup_width(ev, arg, f) : 0;
    size_t rb = row_bytes(ev->nsteps);
    if (!rc && (w || arg->type != AG_PQ_MATRIX_SEL) && !(c.row = malloc(rb))) rc = AG_ENOMEM;
    if (!rc && w) {
        rc = rollup_scan(ev, arg, &c, w);
    } else if (!rc && arg->type == AG_PQ_MATRIX_SEL) {
        rc = ev_range_scan(ev, arg, &c.rs, range_map, &c, rb, range_take, &c);
    } else if (!rc) {
        rc = ev_range_source(ev, arg, &c.rs);
        for (size_t i = 0; i < c.rs.raw.n && !rc; i++) {
            rc = range_row(ev, &c, 0, c.rs.raw.s[i].p, c.rs.raw.s[i].n, c.row);
            if (!rc) rc = range_put(ev, &c, c.rs.raw.s[i].lbl, c.rs.raw.s[i].len, c.row);
        }
        emat_free(ev, &c.rs.raw);
    }
    for (int i = 0; i < 2; i++) {
        free(c.buf[i]);
        free(c.cum[i]);
        free(c.dv[i]);
    }
    free(c.row);
    emat_free(ev, &c.seen);
    free_args(ev, n, a);
    return rc;
}

/* The range argument of range function call n: first, except quantile_over_time(q, m). */
static int range_arg(const ag_pq_node_t *n)
{
    int mi = 0;
    for (size_t i = 0; i < n->u.call.nargs; i++)
        if (unparen(n->u.call.args[i])->vtype == AG_PQ_T_MATRIX) mi = (int)i;
    return mi;
}

bool ev_call_foldable(const ag_pq_node_t *n)
{
    return n->type == AG_PQ_CALL && n->u.call.nargs <= MAX_ARGS &&
           ag_range_fn_lookup(n->u.call.name);
}

int ev_call_fold(ev_t *ev, const ag_pq_node_t *n, ev_sink_t *sink)
{
    return call_range(ev, n, ag_range_fn_lookup(n->u.call.name), range_arg(n), NULL, sink);
}

/* Labels absent() and absent_over_time() give their output, as 2.42 builds them: the matchers
 * in the order written, the first equality matcher of a name setting its label, any other
 * matcher of that name deleting it. So {a!="x",a="y"} gives a="y", {a="y",a!="x"} nothing, and
 * {a="x",a="y",a="z"} nothing. */
static int absent_labels(ev_t *ev, const ag_pq_node_t *arg, const char **out, size_t *olen)
{
    arg = unparen(arg);
    *out = "";
    *olen = 0;
    if (arg->type != AG_PQ_VECTOR_SEL && arg->type != AG_PQ_MATRIX_SEL) return AG_OK;
    const ag_matcher_t *m = arg->u.sel.matchers;
    size_t nm = arg->u.sel.nmatchers;
    int rc = AG_OK;
    for (size_t i = 0; i < nm && !rc; i++) {
        if (strcmp(m[i].name, AG_METRIC_NAME) == 0) continue;
        bool set = m[i].type == AG_MATCH_EQ;
        for (size_t j = 0; j < i && set; j++) /* only the first equality of a name sets it */
            if (m[j].type == AG_MATCH_EQ && strcmp(m[j].name, m[i].name) == 0) set = false;
        rc = lbl_set(ev, *out, *olen, m[i].name, m[i].value, set ? m[i].value_len : 0, out, olen);
    }
    return rc;
}

static int call_absent_over_time(ev_t *ev, const ag_pq_node_t *n, eval_val_t *out)
{
    range_src_t rs;
    const char *l;
    size_t len;
    int rc = ev_range_source(ev, n->u.call.args[0], &rs);
    emat_t raw = rs.raw;
    int64_t range = rs.range_ms, off = rs.offset_ms, fts = rs.fixed_ts;
    bool fixed = rs.fixed;
    if (!rc) rc = absent_labels(ev, n->u.call.args[0], &l, &len);
    out->k = AG_PQ_T_VECTOR;
    size_t *lo = calloc(raw.n + 1, sizeof *lo);
    if (!lo) rc = AG_ENOMEM;
    for (size_t k = 0; k < ev->nsteps && !rc; k++) {
        int64_t ts = step_ts(ev, k), ref = (fixed ? fts : ts) - off;
        bool any = false;
        for (size_t i = 0; i < raw.n && !any; i++) {
            eseries_t *s = &raw.s[i];
            while (lo[i] < s->n && s->p[lo[i]].t < ref - range) lo[i]++;
            any = lo[i] < s->n && s->p[lo[i]].t <= ref;
        }
        if (!any) rc = emit(ev, &out->m, l, len, ts, 1);
    }
    free(lo);
    emat_free(ev, &raw);
    return rc;
}

/* Functions of one vector, per sample: math, clamp, round and the date functions. */
static int call_value(ev_t *ev, const ag_pq_node_t *n, ag_value_fn_t f, eval_val_t *out)
{
    eval_val_t a[MAX_ARGS];
    int rc = eval_args(ev, n, -1, a);
    out->k = AG_PQ_T_VECTOR;
    if (!rc && n->u.call.nargs == 0) { /* day_of_week() etc.: vector(time()) */
        for (size_t k = 0; k < ev->nsteps && !rc; k++) {
            int64_t ts = step_ts(ev, k);
            rc = emit(ev, &out->m, "", 0, ts, ag_value_fn_eval(f, (double)ts / 1000.0, NULL, 0));
        }
        return rc;
    }
    for (size_t i = 0; !rc && i < a[0].m.n; i++) {
        eseries_t *s = &a[0].m.s[i];
        const char *l;
        size_t len;
        lbl_drop_name(ev, s->lbl, s->len, &l, &len);
        for (size_t k = 0; k < s->n && !rc; k++) {
            size_t step = (size_t)((s->p[k].t - ev->start) / ev->step);
            double args[MAX_ARGS];
            size_t na = 0;
            for (size_t j = 1; j < n->u.call.nargs && j < MAX_ARGS; j++)
                args[na++] = a[j].sc ? a[j].sc[step] : 0;
            if (f == AG_VF_CLAMP && na == 2 && args[1] < args[0]) continue;
            rc = emit(ev, &out->m, l, len, s->p[k].t, ag_value_fn_eval(f, s->p[k].v, args, na));
        }
    }
    free_args(ev, n, a);
    return rc;
}

static int call_histogram_quantile(ev_t *ev, const ag_pq_node_t *n, eval_val_t *out)
{
    eval_val_t a[MAX_ARGS];
    int rc = eval_args(ev, n, -1, a);
    out->k = AG_PQ_T_VECTOR;
    static char le_name[] = "le";
    char *le_list[1] = {le_name};
    ag_pq_names_t le = {le_list, 1};
    size_t *cur = rc ? NULL : calloc(a[1].m.n + 1, sizeof *cur);
    evec_t v = {0};
    ag_bucket_t *b = NULL;
    uint64_t *keys = NULL;
    if (!rc && !cur) rc = AG_ENOMEM;
    for (size_t k = 0; k < ev->nsteps && !rc; k++) {
        int64_t ts = step_ts(ev, k);
        if ((rc = gather(&a[1].m, cur, ts, &v)) || !v.n) continue;
        free(b);
        free(keys);
        b = malloc(v.n * sizeof *b);
        keys = malloc(v.n * sizeof *keys);
        if (!b || !keys) {
            rc = AG_ENOMEM;
            break;
        }
        /* Buckets group by every label but `le` (the metric name included, so two histograms
         * that differ only in name collide in the output, as in Prometheus). */
        for (size_t i = 0; i < v.n && !rc; i++) {
            const char *kl;
            size_t klen;
            rc = lbl_del(ev, v.v[i].lbl, v.v[i].len, &le, &kl, &klen);
            keys[i] = lbl_hash(kl, klen);
        }
        for (size_t i = 0; i < v.n && !rc; i++) {
            bool first = true;
            for (size_t j = 0; j < i && first; j++)
                if (keys[j] == keys[i] && ag_labels_get(v.v[j].lbl, v.v[j].len, "le", &(size_t){0}))
                    first = false;
            size_t vl;
            if (!first || !ag_labels_get(v.v[i].lbl, v.v[i].len, "le", &vl)) continue;
            size_t nb = 0;
            for (size_t j = i; j < v.n; j++) {
                if (keys[j] != keys[i]) continue;
                const char *lev = ag_labels_get(v.v[j].lbl, v.v[j].len, "le", &vl);
                if (!lev) continue;
                char *end;
                double up = strtod(lev, &end);
                if (end == lev || *end) continue;
                b[nb++] = (ag_bucket_t){up, v.v[j].v};
            }
            const char *l;
            size_t len;
            if ((rc = lbl_filter(ev, v.v[i].lbl, v.v[i].len, &le, false, &l, &len))) break;
            rc = emit(ev, &out->m, l, len, ts, ag_bucket_quantile(a[0].sc[k], b, nb));
        }
    }
    free(b);
    free(keys);
    free(cur);
    free(v.v);
    free_args(ev, n, a);
    return rc;
}

/* label_replace and label_join: new labels per input series, values unchanged. */
static int call_label(ev_t *ev, const ag_pq_node_t *n, bool join, eval_val_t *out)
{
    eval_val_t a[MAX_ARGS];
    int rc = eval_args(ev, n, -1, a);
    if (rc) {
        free_args(ev, n, a);
        return rc;
    }
    const char *dst = a[1].str;
    ag_regex_t *re = NULL;
    if (!ag_label_name_valid(dst, strlen(dst))) {
        rc = ag_errmsg_set(ev->e, AG_EEXEC, n->pos, "invalid destination label name in %s(): %s",
                           n->u.call.name, dst);
    } else if (!join) {
        ag_errmsg_t re_e = {{0}, -1};
        if (ag_regex_compile(a[4].str, a[4].slen, &re, &re_e))
            rc = ag_errmsg_set(ev->e, AG_EEXEC, n->pos,
                               "invalid regular expression in label_replace(): %s", a[4].str);
    }
    out->k = AG_PQ_T_VECTOR;
    for (size_t i = 0; !rc && i < a[0].m.n; i++) {
        eseries_t *s = &a[0].m.s[i];
        ag_buf_t val = AG_BUF_INIT;
        const char *l = s->lbl;
        size_t len = s->len;
        bool set = true;
        if (join) {
            for (size_t j = 3; j < n->u.call.nargs && j < MAX_ARGS; j++) {
                size_t vl = 0;
                const char *v = ag_labels_get(s->lbl, s->len, a[j].str, &vl);
                if (j > 3) ag_buf_append(&val, a[2].str, a[2].slen);
                if (v) ag_buf_append(&val, v, vl);
            }
        } else {
            size_t vl = 0;
            const char *v = ag_labels_get(s->lbl, s->len, a[3].str, &vl);
            set = ag_regex_expand(re, v ? v : "", v ? vl : 0, a[2].str, a[2].slen, &val) == 1;
        }
        if (!ag_buf_ok(&val)) rc = AG_ENOMEM;
        else if (set) rc = lbl_set(ev, s->lbl, s->len, dst, val.data ? val.data : "", val.len, &l, &len);
        ag_buf_free(&val);
        for (size_t k = 0; k < s->n && !rc; k++) rc = emit(ev, &out->m, l, len, s->p[k].t, s->p[k].v);
    }
    ag_regex_free(re);
    free_args(ev, n, a);
    return rc;
}

int ev_call(ev_t *ev, const ag_pq_node_t *n, eval_val_t *out)
{
    const char *f = n->u.call.name;
    size_t na = n->u.call.nargs;
    int rc = AG_OK;
    if (na > MAX_ARGS) return err_unsupported(ev, n);
    ag_range_fn_t rf = ag_range_fn_lookup(f);
    if (rf) return call_range(ev, n, rf, range_arg(n), out, NULL);
    if (strcmp(f, "absent_over_time") == 0) return call_absent_over_time(ev, n, out);
    ag_value_fn_t vf = ag_value_fn_lookup(f);
    if (vf) return call_value(ev, n, vf, out);
    if (strcmp(f, "histogram_quantile") == 0) return call_histogram_quantile(ev, n, out);
    if (strcmp(f, "label_replace") == 0) return call_label(ev, n, false, out);
    if (strcmp(f, "label_join") == 0) return call_label(ev, n, true, out);
    if (strcmp(f, "pi") == 0 || strcmp(f, "time") == 0) {
        bool pi = f[0] == 'p';
        out->k = AG_PQ_T_SCALAR;
        if (!(out->sc = calloc(ev->nsteps, sizeof *out->sc))) return AG_ENOMEM;
        for (size_t k = 0; k < ev->nsteps; k++) out->sc[k] = pi ? M_PI : (double)step_ts(ev, k) / 1000.0;
        return AG_OK;
    }
    eval_val_t a[MAX_ARGS];
    const ag_pq_node_t *arg0 = na ? unparen(n->u.call.args[0]) : NULL;
    /* timestamp() of a selector reads the samples' own times, not the step's. */
    bool raw_time = strcmp(f, "timestamp") == 0 && arg0 && arg0->type == AG_PQ_VECTOR_SEL;
    if ((rc = eval_args(ev, n, raw_time ? 0 : -1, a))) {
        free_args(ev, n, a);
        return rc;
    }
    if (strcmp(f, "vector") == 0) {
        out->k = AG_PQ_T_VECTOR;
        for (size_t k = 0; k < ev->nsteps && !rc; k++) rc = emit(ev, &out->m, "", 0, step_ts(ev, k), a[0].sc[k]);
    } else if (strcmp(f, "scalar") == 0) {
        out->k = AG_PQ_T_SCALAR;
        size_t *cur = calloc(a[0].m.n + 1, sizeof *cur);
        evec_t v = {0};
        if (!cur || !(out->sc = calloc(ev->nsteps, sizeof *out->sc))) rc = AG_ENOMEM;
        for (size_t k = 0; k < ev->nsteps && !rc; k++) {
            rc = gather(&a[0].m, cur, step_ts(ev, k), &v);
            out->sc[k] = v.n == 1 ? v.v[0].v : NAN;
        }
        free(cur);
        free(v.v);
    } else if (strcmp(f, "timestamp") == 0) {
        out->k = AG_PQ_T_VECTOR;
        emat_t times;
        memset(&times, 0, sizeof times);
        if (raw_time) rc = ev_vsel(ev, arg0, true, &times);
        emat_t *src = raw_time ? &times : &a[0].m;
        for (size_t i = 0; !rc && i < src->n; i++) {
            const char *l;
            size_t len;
            lbl_drop_name(ev, src->s[i].lbl, src->s[i].len, &l, &len);
            for (size_t k = 0; k < src->s[i].n && !rc; k++)
                rc = emit(ev, &out->m, l, len, src->s[i].p[k].t,
                          raw_time ? src->s[i].p[k].v : (double)src->s[i].p[k].t / 1000.0);
        }
        emat_free(ev, &times);
    } else if (strcmp(f, "absent") == 0) {
        out->k = AG_PQ_T_VECTOR;
        const char *l;
        size_t len;
        size_t *cur = calloc(a[0].m.n + 1, sizeof *cur);
        evec_t v = {0};
        rc = cur ? absent_labels(ev, n->u.call.args[0], &l, &len) : AG_ENOMEM;
        for (size_t k = 0; k < ev->nsteps && !rc; k++) {
            if ((rc = gather(&a[0].m, cur, step_ts(ev, k), &v))) break;
            if (!v.n) rc = emit(ev, &out->m, l, len, step_ts(ev, k), 1);
        }
        free(cur);
        free(v.v);
    } else if (strcmp(f, "sort") == 0 || strcmp(f, "sort_desc") == 0) {
        *out = a[0]; /* the order is applied to the final instant vector */
        memset(&a[0], 0, sizeof a[0]);
    } else {
        rc = err_unsupported(ev, n);
    }
    free_args(ev, n, a);
    return rc;
}
