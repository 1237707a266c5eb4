/* eval.c - evaluates PromQL-lite trees against the store (see ag_eval.h and eval_int.h).
 *
 * Semantics follow Prometheus 2.42, the version our users run beside us: an instant vector
 * selector at time t yields, per series, the newest sample in [t - lookback, t] unless that
 * sample is a stale marker; a range selector yields the samples in [t - range, t] without stale
 * markers (both windows are closed in 2.x; Prometheus 3.0 made them left-open); `offset` and
 * `@` shift or pin t; a range query evaluates every step independently. As in Prometheus' own
 * engine, each node is evaluated once for all steps: a selector is resolved with one store
 * selection covering every step's window and then walked with a moving index per series.
 *
 * This file holds the expression walk, selectors, subqueries, unary and binary operators and
 * aggregations; function calls are in eval_call.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ag_labels.h"
#include "ag_pqfunc.h"
#include "eval_int.h"

#define DEFAULT_SUBQUERY_STEP_MS 60000 /* Prometheus' default evaluation interval */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* a - b, saturating, for window bounds near the ends of int64. */
static int64_t sub_sat(int64_t a, int64_t b)
{
    if (b > 0 && a < INT64_MIN + b) return INT64_MIN;
    if (b < 0 && a > INT64_MAX + b) return INT64_MAX;
    return a - b;
}

const ag_pq_node_t *unparen(const ag_pq_node_t *n)
{
    while (n->type == AG_PQ_PAREN) n = n->u.paren;
    return n;
}

bool ev_past_deadline(const ev_t *ev) { return ev->deadline && mono_ms() > ev->deadline; }

int ev_tick(ev_t *ev)
{
    if (ev->deadline && (++ev->ticks & 1023) == 0 && mono_ms() > ev->deadline)
        return ag_errmsg_set(ev->e, AG_ETIMEOUT, -1, "query timed out in expression evaluation");
    return AG_OK;
}

int ev_count(ev_t *ev, uint64_t add)
{
    ev->points += add;
    if (ev->o->max_samples && ev->points > ev->o->max_samples)
        return ag_errmsg_set(ev->e, AG_ELIMIT, -1,
                             "query processing would load too many samples into memory in query "
                             "execution");
    return AG_OK;
}

/* ---- labels ------------------------------------------------------------------------------ */

uint64_t lbl_hash(const char *l, size_t len) { return ag_labels_hash(l, len); }

static bool in_names(const ag_pq_names_t *names, const char *k, size_t kl)
{
    for (size_t j = 0; names && j < names->n; j++)
        if (strlen(names->v[j]) == kl && memcmp(names->v[j], k, kl) == 0) return true;
    return false;
}

static bool is_name(const char *k, size_t kl) { return kl == 8 && memcmp(k, "__name__", 8) == 0; }

static char *arena_dup(ev_t *ev, const char *p, size_t n)
{
    char *d = ag_arena_alloc(ev->arena, n ? n : 1);
    if (d && n) memcpy(d, p, n);
    return d;
}

int lbl_filter(ev_t *ev, const char *l, size_t len, const ag_pq_names_t *names, bool keep,
               const char **out, size_t *olen)
{
    char *d = ag_arena_alloc(ev->arena, len ? len : 1);
    if (!d) return AG_ENOMEM;
    size_t i = 0, o = 0, kl, vl;
    const char *k, *v;
    while (ag_labels_next(l, len, &i, &k, &kl, &v, &vl)) {
        bool take = keep ? in_names(names, k, kl) : !in_names(names, k, kl) && !is_name(k, kl);
        if (!take) continue;
        memcpy(d + o, k, kl + 1);
        o += kl + 1;
        memcpy(d + o, v, vl + 1);
        o += vl + 1;
    }
    *out = d;
    *olen = o;
    return AG_OK;
}

/* Removes exactly `names` (Prometheus' Builder.Del). */
int lbl_del(ev_t *ev, const char *l, size_t len, const ag_pq_names_t *names, const char **out,
            size_t *olen)
{
    char *d = ag_arena_alloc(ev->arena, len ? len : 1);
    if (!d) return AG_ENOMEM;
    size_t i = 0, o = 0, kl, vl;
    const char *k, *v;
    while (ag_labels_next(l, len, &i, &k, &kl, &v, &vl)) {
        if (in_names(names, k, kl)) continue;
        memcpy(d + o, k, kl + 1);
        o += kl + 1;
        memcpy(d + o, v, vl + 1);
        o += vl + 1;
    }
    *out = d;
    *olen = o;
    return AG_OK;
}

int lbl_drop_name(ev_t *ev, const char *l, size_t len, const char **out, size_t *olen)
{
    /* Usually __name__ is the first label (only names starting with A-Z sort before it). */
    size_t i = 0, kl, vl;
    const char *k, *v;
    while (ag_labels_next(l, len, &i, &k, &kl, &v, &vl)) {
        if (!is_name(k, kl)) continue;
        size_t start = (size_t)(k - l), end = i;
        if (start == 0) {
            *out = l + end;
            *olen = len - end;
            return AG_OK;
        }
        char *d = ag_arena_alloc(ev->arena, len);
        if (!d) return AG_ENOMEM;
        memcpy(d, l, start);
        memcpy(d + start, l + end, len - end);
        *out = d;
        *olen = len - (end - start);
        return AG_OK;
    }
    *out = l;
    *olen = len;
    return AG_OK;
}

int lbl_set(ev_t *ev, const char *l, size_t len, const char *name, const char *value,
            size_t vlen, const char **out, size_t *olen)
{
    size_t nl = strlen(name);
    char *d = ag_arena_alloc(ev->arena, len + nl + vlen + 2);
    if (!d) return AG_ENOMEM;
    size_t i = 0, o = 0, kl, vl;
    const char *k, *v;
    bool done = vlen == 0;
    while (ag_labels_next(l, len, &i, &k, &kl, &v, &vl)) {
        size_t m = kl < nl ? kl : nl;
        int c = memcmp(k, name, m);
        if (c == 0) c = kl < nl ? -1 : kl > nl ? 1 : 0;
        if (c == 0) continue; /* replaced */
        if (c > 0 && !done) {
            memcpy(d + o, name, nl + 1);
            o += nl + 1;
            memcpy(d + o, value, vlen);
            o += vlen;
            d[o++] = 0;
            done = true;
        }
        memcpy(d + o, k, kl + 1);
        o += kl + 1;
        memcpy(d + o, v, vl + 1);
        o += vl + 1;
    }
    if (!done) {
        memcpy(d + o, name, nl + 1);
        o += nl + 1;
        memcpy(d + o, value, vlen);
        o += vlen;
        d[o++] = 0;
    }
    *out = d;
    *olen = o;
    return AG_OK;
}

uint64_t lbl_signature(const char *l, size_t len, const ag_pq_names_t *names, bool on)
{
    uint64_t h = 1469598103934665603ULL;
    size_t i = 0, kl, vl;
    const char *k, *v;
    while (ag_labels_next(l, len, &i, &k, &kl, &v, &vl)) {
        bool take = on ? in_names(names, k, kl) : !in_names(names, k, kl) && !is_name(k, kl);
        if (!take) continue;
        for (size_t j = 0; j < kl + 1 + vl + 1; j++) {
            h ^= (unsigned char)k[j];
            h *= 1099511628211ULL;
        }
    }
    return h ^ (h >> 29);
}

void lbl_describe(const char *l, size_t len, char *out, size_t outlen)
{
    size_t i = 0, kl, vl, o = 0;
    const char *k, *v;
    o += (size_t)snprintf(out, outlen, "{");
    bool first = true;
    while (o < outlen && ag_labels_next(l, len, &i, &k, &kl, &v, &vl)) {
        o += (size_t)snprintf(out + o, outlen - o, "%s%s=\"%s\"", first ? "" : ", ", k, v);
        first = false;
    }
    if (o < outlen) snprintf(out + o, outlen - o, "}");
}

/* ---- series containers ------------------------------------------------------------------- */

void emat_free(ev_t *ev, emat_t *m)
{
    (void)ev;
    for (size_t i = 0; i < m->n; i++) free(m->s[i].p);
    free(m->s);
    free(m->idx);
    memset(m, 0, sizeof *m);
}

void ev_val_free(ev_t *ev, eval_val_t *v)
{
    emat_free(ev, &v->m);
    free(v->sc);
    memset(v, 0, sizeof *v);
}

static int emat_rehash(emat_t *m)
{
    size_t n = m->nidx ? m->nidx * 2 : 64;
    size_t *idx = calloc(n, sizeof *idx);
    if (!idx) return AG_ENOMEM;
    for (size_t i = 0; i < m->n; i++) {
        size_t j = m->s[i].hash & (n - 1);
        while (idx[j]) j = (j + 1) & (n - 1);
        idx[j] = i + 1;
    }
    free(m->idx);
    m->idx = idx;
    m->nidx = n;
    return AG_OK;
}

/* The series with these labels, created when missing. */
eseries_t *emat_series(ev_t *ev, emat_t *m, const char *lbl, size_t len)
{
    if ((m->n + 1) * 2 > m->nidx && emat_rehash(m)) return NULL;
    uint64_t h = lbl_hash(lbl, len);
    size_t j = h & (m->nidx - 1);
    while (m->idx[j]) {
        eseries_t *s = &m->s[m->idx[j] - 1];
        if (s->hash == h && s->len == len && memcmp(s->lbl, lbl, len) == 0) return s;
        j = (j + 1) & (m->nidx - 1);
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        eseries_t *ns = realloc(m->s, cap * sizeof *ns);
        if (!ns) return NULL;
        m->s = ns;
        m->cap = cap;
    }
    eseries_t *s = &m->s[m->n];
    memset(s, 0, sizeof *s);
    if (!(s->lbl = arena_dup(ev, lbl, len))) return NULL;
    s->len = len;
    s->hash = h;
    m->idx[j] = ++m->n;
    return s;
}

static int series_push(ev_t *ev, eseries_t *s, int64_t t, double v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        ag_point_t *np = realloc(s->p, cap * sizeof *np);
        if (!np) return AG_ENOMEM;
        s->p = np;
        s->cap = cap;
    }
    s->p[s->n].t = t;
    s->p[s->n].v = v;
    s->n++;
    return ev_count(ev, 1);
}

eseries_t *emat_find(emat_t *m, const char *lbl, size_t len)
{
    if (!m->nidx) return NULL;
    uint64_t h = lbl_hash(lbl, len);
    for (size_t j = h & (m->nidx - 1); m->idx[j]; j = (j + 1) & (m->nidx - 1)) {
        eseries_t *s = &m->s[m->idx[j] - 1];
        if (s->hash == h && s->len == len && memcmp(s->lbl, lbl, len) == 0) return s;
    }
    return NULL;
}

static int same_labelset(ev_t *ev)
{
    return ag_errmsg_set(ev->e, AG_EEXEC, -1, "vector cannot contain metrics with the same labelset");
}

int emit(ev_t *ev, emat_t *m, const char *lbl, size_t len, int64_t ts, double v)
{
    /* Loops that walk one input series at a time call us with the same label pointer over and
     * over: skip the hash lookup then. */
    eseries_t *s;
    if (m->last_lbl == lbl && m->last_len == len && m->last < m->n) {
        s = &m->s[m->last];
    } else {
        if (!(s = emat_series(ev, m, lbl, len))) return AG_ENOMEM;
        m->last_lbl = lbl;
        m->last_len = len;
        m->last = (size_t)(s - m->s);
    }
    if (!s->n || s->p[s->n - 1].t < ts) return series_push(ev, s, ts, v);
    /* Two inputs produced this labelset: fine at different steps (their points interleave),
     * an error at the same step, as Prometheus checks every step's output vector. */
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->p[mid].t < ts) lo = mid + 1;
        else hi = mid;
    }
    if (s->p[lo].t == ts) return same_labelset(ev);
    int rc = series_push(ev, s, ts, v);
    if (rc) return rc;
    memmove(s->p + lo + 1, s->p + lo, (s->n - 1 - lo) * sizeof *s->p);
    s->p[lo] = (ag_point_t){ts, v};
    return AG_OK;
}

int evec_push(evec_t *vec, const char *lbl, size_t len, uint64_t hash, double v, int64_t t)
{
    if (vec->n == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 16;
        esample_t *nv = realloc(vec->v, cap * sizeof *nv);
        if (!nv) return AG_ENOMEM;
        vec->v = nv;
        vec->cap = cap;
    }
    vec->v[vec->n++] = (esample_t){lbl, len, hash, v, t};
    return AG_OK;
}

int gather(const emat_t *m, size_t *cur, int64_t ts, evec_t *out)
{
    out->n = 0;
    for (size_t i = 0; i < m->n; i++) {
        const eseries_t *s = &m->s[i];
        if (cur[i] < s->n && s->p[cur[i]].t == ts) {
            int rc = evec_push(out, s->lbl, s->len, s->hash, s->p[cur[i]].v, ts);
            if (rc) return rc;
            cur[i]++;
        }
    }
    return AG_OK;
}

/* ---- selectors and subqueries ------------------------------------------------------------ */

static int64_t at_time(const ev_t *ev, ag_pq_at_t at, int64_t at_ms)
{
    return at == AG_PQ_AT_TIME ? at_ms : at == AG_PQ_AT_START ? ev->q_start : ev->q_end;
}

typedef struct vsel_ctx {
    ev_t *ev;
    emat_t *out;
    bool want_ts, fixed;
    int64_t off, lb, lo;
} vsel_ctx_t;

static int vsel_series(void *arg, const char *labels, size_t labels_len, const ag_sample_t *smp,
                       size_t n)
{
    vsel_ctx_t *c = arg;
    ev_t *ev = c->ev;
    eseries_t *s = NULL;
    size_t j = 0;
    int rc = AG_OK;
    for (size_t k = 0; k < ev->nsteps && !rc; k++) {
        int64_t ts = step_ts(ev, k), ref = c->fixed ? c->lo : sub_sat(ts, c->off);
        while (j + 1 < n && smp[j + 1].t <= ref) j++;
        const ag_sample_t *cur = &smp[j];
        if (cur->t > ref || cur->t < sub_sat(ref, c->lb) || ev_is_stale(cur->v)) continue;
        if (!s && !(s = emat_series(ev, c->out, labels, labels_len)))
            return ag_errmsg_set(ev->e, AG_ENOMEM, -1, "out of memory");
        rc = series_push(ev, s, ts, c->want_ts ? (double)cur->t / 1000.0 : cur->v);
        if (!rc) rc = ev_tick(ev);
    }
    return rc;
}

/* An instant vector selector over every step: value (or sample time in seconds for
 * timestamp()) of the newest sample in [ref - lookback, ref], streamed from the store. */
int ev_vsel(ev_t *ev, const ag_pq_node_t *n, bool want_ts, emat_t *out)
{
    vsel_ctx_t c = {ev,
                    out,
                    want_ts,
                    ev_at(ev, n->u.sel.at) != AG_PQ_AT_NONE,
                    n->u.sel.offset_ms,
                    ev->o->lookback_ms,
                    0};
    int64_t at = c.fixed ? at_time(ev, n->u.sel.at, n->u.sel.at_ms) : 0;
    c.lo = sub_sat(c.fixed ? at : ev->start, c.off);
    int64_t hi = sub_sat(c.fixed ? at : ev->end, c.off);
    return ag_store_scan(ev->store, n->u.sel.matchers, n->u.sel.nmatchers, sub_sat(c.lo, c.lb), hi,
                         ev->o->max_samples, vsel_series, &c, ev->e);
}

/* A matrix selector's window parameters, and the time range to read for all steps. */
static void matrix_window(const ev_t *ev, const ag_pq_node_t *n, range_src_t *rs, int64_t *mint,
                          int64_t *maxt)
{
    rs->range_ms = n->u.sel.range_ms;
    rs->offset_ms = n->u.sel.offset_ms;
    rs->fixed = ev_at(ev, n->u.sel.at) != AG_PQ_AT_NONE;
    rs->fixed_ts = rs->fixed ? at_time(ev, n->u.sel.at, n->u.sel.at_ms) : 0;
    *maxt = sub_sat(rs->fixed ? rs->fixed_ts : ev->end, rs->offset_ms);
    *mint = sub_sat(sub_sat(rs->fixed ? rs->fixed_ts : ev->start, rs->offset_ms), rs->range_ms);
}

int ev_range_scan(ev_t *ev, const ag_pq_node_t *n, range_src_t *rs, ag_series_map_fn map,
                  void *mctx, size_t msize, ag_series_mapped_fn fn, void *arg)
{
    memset(rs, 0, sizeof *rs);
    int64_t mint, maxt;
    matrix_window(ev, n, rs, &mint, &maxt);
    return ag_store_scan_map(ev->store, n->u.sel.matchers, n->u.sel.nmatchers, mint, maxt,
                             ev->o->max_samples, map, mctx, msize, fn, arg, ev->e);
}

int ev_range_source(ev_t *ev, const ag_pq_node_t *n, range_src_t *rs)
{
    memset(rs, 0, sizeof *rs);
    emat_t *raw = &rs->raw;
    int64_t *range_ms = &rs->range_ms, *offset_ms = &rs->offset_ms, *fixed_ts = &rs->fixed_ts;
    bool *fixed = &rs->fixed;
    n = unparen(n);
    int rc;
    if (n->type == AG_PQ_MATRIX_SEL) {
        int64_t mint, maxt;
        matrix_window(ev, n, rs, &mint, &maxt);
        ag_selection_t sel;
        rc = ag_store_select(ev->store, n->u.sel.matchers, n->u.sel.nmatchers, mint, maxt, true,
                             ev->o->max_samples, &sel, ev->e);
        if (rc) return rc;
        for (size_t i = 0; i < sel.n && !rc; i++) {
            ag_series_data_t *sd = &sel.series[i];
            eseries_t *s = emat_series(ev, raw, sd->labels, sd->labels_len);
            if (!s) {
                rc = AG_ENOMEM;
                break;
            }
            /* Take the selection's sample array over, dropping stale markers in place. */
            size_t w = 0;
            for (size_t k = 0; k < sd->n; k++)
                if (!ev_is_stale(sd->samples[k].v)) sd->samples[w++] = sd->samples[k];
            s->p = sd->samples;
            s->n = s->cap = w;
            sd->samples = NULL;
            sd->n = 0;
            rc = ev_count(ev, w);
        }
        ag_selection_free(&sel);
        return rc;
    }
    if (n->type != AG_PQ_SUBQUERY)
        return ag_errmsg_set(ev->e, AG_EINVAL, n->pos, "expected a range vector");
    *range_ms = n->u.subquery.range_ms;
    *offset_ms = n->u.subquery.offset_ms;
    *fixed = ev_at(ev, n->u.subquery.at) != AG_PQ_AT_NONE;
    *fixed_ts = *fixed ? at_time(ev, n->u.subquery.at, n->u.subquery.at_ms) : 0;
    ev_t sub = *ev;
    sub.step = n->u.subquery.step_ms > 0 ? n->u.subquery.step_ms : DEFAULT_SUBQUERY_STEP_MS;
    int64_t first = sub_sat(sub_sat(*fixed ? *fixed_ts : ev->start, *offset_ms), *range_ms);
    /* The first step-aligned time at or after the window start (Prometheus aligns subquery
     * steps to the epoch). */
    int64_t aligned = (first / sub.step) * sub.step;
    if (aligned < first) aligned += sub.step;
    sub.start = aligned;
    sub.end = sub_sat(*fixed ? *fixed_ts : ev->end, *offset_ms);
    if (sub.end < sub.start) return AG_OK;
    sub.nsteps = (size_t)((sub.end - sub.start) / sub.step) + 1;
    eval_val_t inner;
    memset(&inner, 0, sizeof inner);
    rc = ev_eval(&sub, n->u.subquery.expr, &inner);
    ev->points = sub.points;
    ev->ticks = sub.ticks;
    if (rc) {
        ev_val_free(ev, &inner); /* what the failed expression had produced */
        return rc;
    }
    if (inner.k == AG_PQ_T_VECTOR) {
        *raw = inner.m;
        memset(&inner.m, 0, sizeof inner.m);
    } else if (inner.k == AG_PQ_T_SCALAR) {
        eseries_t *s = emat_series(ev, raw, "", 0);
        for (size_t k = 0; s && k < sub.nsteps && !rc; k++)
            rc = series_push(ev, s, step_ts(&sub, k), inner.sc[k]);
        if (!s) rc = AG_ENOMEM;
    }
    ev_val_free(ev, &inner);
    return rc;
}

/* A range vector at the top of an instant query: the raw samples in the window. */
static int eval_matrix_top(ev_t *ev, const ag_pq_node_t *n, emat_t *out)
{
    range_src_t rs;
    int rc = ev_range_source(ev, n, &rs);
    emat_t *raw = &rs.raw;
    int64_t hi = sub_sat(rs.fixed ? rs.fixed_ts : ev->start, rs.offset_ms), lo = sub_sat(hi, rs.range_ms);
    for (size_t i = 0; i < raw->n && !rc; i++) {
        eseries_t *s = NULL;
        for (size_t k = 0; k < raw->s[i].n && !rc; k++) {
            ag_point_t p = raw->s[i].p[k];
            if (p.t < lo || p.t > hi) continue;
            if (!s && !(s = emat_series(ev, out, raw->s[i].lbl, raw->s[i].len))) rc = AG_ENOMEM;
            else rc = series_push(ev, s, p.t, p.v);
        }
    }
    emat_free(ev, raw);
    return rc;
}

/* ---- operators --------------------------------------------------------------------------- */

static bool is_cmp(ag_pq_binop_t op) { return op >= AG_PQ_OP_EQL && op <= AG_PQ_OP_LTE; }
static bool is_set(ag_pq_binop_t op) { return op >= AG_PQ_OP_AND; }
/* Prometheus 2.42's shouldDropMetricName: arithmetic except atan2. */
static bool drops_name(ag_pq_binop_t op) { return op >= AG_PQ_OP_ADD && op <= AG_PQ_OP_POW; }

/* Prometheus' vectorElemBinop: the value and whether a comparison holds. */
static double elem_op(ag_pq_binop_t op, double l, double r, bool *keep)
{
    *keep = true;
    switch (op) {
    case AG_PQ_OP_ADD: return l + r;
    case AG_PQ_OP_SUB: return l - r;
    case AG_PQ_OP_MUL: return l * r;
    case AG_PQ_OP_DIV: return l / r;
    case AG_PQ_OP_MOD: return fmod(l, r);
    case AG_PQ_OP_POW: return pow(l, r);
    case AG_PQ_OP_ATAN2: return atan2(l, r);
    case AG_PQ_OP_EQL: *keep = l == r; return l;
    case AG_PQ_OP_NEQ: *keep = l != r; return l;
    case AG_PQ_OP_GTR: *keep = l > r; return l;
    case AG_PQ_OP_LSS: *keep = l < r; return l;
    case AG_PQ_OP_GTE: *keep = l >= r; return l;
    case AG_PQ_OP_LTE: *keep = l <= r; return l;
    default: *keep = false; return 0;
    }
}

static int scalar_new(ev_t *ev, eval_val_t *out)
{
    out->k = AG_PQ_T_SCALAR;
    out->sc = calloc(ev->nsteps ? ev->nsteps : 1, sizeof *out->sc);
    return out->sc ? AG_OK : AG_ENOMEM;
}

static int binary_vector_scalar(ev_t *ev, const ag_pq_node_t *n, eval_val_t *vec,
                                const double *sc, bool swap, eval_val_t *out)
{
    ag_pq_binop_t op = n->u.binary.op;
    bool rb = n->u.binary.return_bool;
    out->k = AG_PQ_T_VECTOR;
    int rc = AG_OK;
    bool drop = drops_name(op) || rb;
    for (size_t i = 0; i < vec->m.n && !rc; i++) {
        eseries_t *s = &vec->m.s[i];
        const char *lbl = s->lbl;
        size_t len = s->len;
        if (drop) lbl_drop_name(ev, s->lbl, s->len, &lbl, &len);
        for (size_t k = 0; k < s->n && !rc; k++) {
            size_t step = (size_t)((s->p[k].t - ev->start) / ev->step);
            double lv = s->p[k].v, rv = sc[step];
            bool keep;
            double v = swap ? elem_op(op, rv, lv, &keep) : elem_op(op, lv, rv, &keep);
            if (is_cmp(op) && swap) v = lv;
            if (rb) {
                v = keep ? 1 : 0;
                keep = true;
            }
            if (keep) rc = emit(ev, &out->m, lbl, len, s->p[k].t, v);
        }
    }
    return rc;
}

typedef struct sigent {
    uint64_t sig;
    size_t i;
} sigent_t;

static int cmp_sig(const void *a, const void *b)
{
    const sigent_t *x = a, *y = b;
    return x->sig < y->sig ? -1 : x->sig > y->sig ? 1 : (x->i < y->i ? -1 : x->i > y->i);
}

static const sigent_t *find_sig(const sigent_t *v, size_t n, uint64_t sig)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid].sig < sig) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && v[lo].sig == sig ? &v[lo] : NULL;
}

static int sigs_of(const evec_t *v, const ag_pq_node_t *n, sigent_t **out)
{
    *out = malloc((v->n ? v->n : 1) * sizeof **out);
    if (!*out) return AG_ENOMEM;
    for (size_t i = 0; i < v->n; i++)
        (*out)[i] = (sigent_t){lbl_signature(v->v[i].lbl, v->v[i].len, &n->u.binary.matching,
                                             n->u.binary.on),
                               i};
    qsort(*out, v->n, sizeof **out, cmp_sig);
    return AG_OK;
}

/* and / or / unless at one step. */
static int set_op_step(ev_t *ev, const ag_pq_node_t *n, const evec_t *l, const evec_t *r,
                       int64_t ts, emat_t *out)
{
    sigent_t *ls = NULL, *rs = NULL;
    int rc = sigs_of(l, n, &ls);
    if (!rc) rc = sigs_of(r, n, &rs);
    ag_pq_binop_t op = n->u.binary.op;
    for (size_t i = 0; i < l->n && !rc; i++) {
        uint64_t sig = lbl_signature(l->v[i].lbl, l->v[i].len, &n->u.binary.matching, n->u.binary.on);
        bool in_r = find_sig(rs, r->n, sig) != NULL;
        if (op == AG_PQ_OP_OR || (op == AG_PQ_OP_AND) == in_r)
            rc = emit(ev, out, l->v[i].lbl, l->v[i].len, ts, l->v[i].v);
    }
    if (op == AG_PQ_OP_OR) {
        for (size_t i = 0; i < r->n && !rc; i++) {
            uint64_t sig = lbl_signature(r->v[i].lbl, r->v[i].len, &n->u.binary.matching, n->u.binary.on);
            if (!find_sig(ls, l->n, sig)) rc = emit(ev, out, r->v[i].lbl, r->v[i].len, ts, r->v[i].v);
        }
    }
    free(ls);
    free(rs);
    return rc;
}

/* Prometheus' resultMetric. `one` is the sample on the "one" side of the match. */
static int result_metric(ev_t *ev, const ag_pq_node_t *n, const esample_t *many,
                         const esample_t *one, const char **out, size_t *olen)
{
    const char *l = many->lbl;
    size_t len = many->len;
    int rc = AG_OK;
    if (drops_name(n->u.binary.op)) lbl_drop_name(ev, l, len, &l, &len);
    if (n->u.binary.card == AG_PQ_CARD_ONE_TO_ONE && (n->u.binary.on || n->u.binary.matching.n))
        rc = n->u.binary.on ? lbl_filter(ev, l, len, &n->u.binary.matching, true, &l, &len)
                            : lbl_del(ev, l, len, &n->u.binary.matching, &l, &len);
    for (size_t i = 0; i < n->u.binary.include.n && !rc; i++) {
        size_t vl = 0;
        const char *v = ag_labels_get(one->lbl, one->len, n->u.binary.include.v[i], &vl);
        rc = lbl_set(ev, l, len, n->u.binary.include.v[i], v ? v : "", v ? vl : 0, &l, &len);
    }
    *out = l;
    *olen = len;
    return rc;
}

typedef struct outsig {
    uint64_t sig, metric;
} outsig_t;

static int cmp_outsig(const void *a, const void *b)
{
    const outsig_t *x = a, *y = b;
    if (x->sig != y->sig) return x->sig < y->sig ? -1 : 1;
    return x->metric < y->metric ? -1 : x->metric > y->metric;
}

/* Arithmetic and comparisons between two vectors at one step (Prometheus' VectorBinop). */
static int vector_op_step(ev_t *ev, const ag_pq_node_t *n, const evec_t *lhs, const evec_t *rhs,
                          int64_t ts, emat_t *out)
{
    /* Nothing can match, and 2.42 says so before it looks for duplicates on the other side. */
    if (lhs->n == 0 || rhs->n == 0) return AG_OK;
    ag_pq_card_t card = n->u.binary.card;
    const evec_t *many = card == AG_PQ_CARD_ONE_TO_MANY ? rhs : lhs;
    const evec_t *one = card == AG_PQ_CARD_ONE_TO_MANY ? lhs : rhs;
    sigent_t *os = NULL;
    outsig_t *done = malloc((many->n ? many->n : 1) * sizeof *done);
    size_t ndone = 0;
    int rc = done ? sigs_of(one, n, &os) : AG_ENOMEM;
    for (size_t i = 1; i < one->n && !rc; i++) {
        if (os[i].sig == os[i - 1].sig) {
            char a[256], b[256];
            lbl_describe(one->v[os[i - 1].i].lbl, one->v[os[i - 1].i].len, a, sizeof a);
            lbl_describe(one->v[os[i].i].lbl, one->v[os[i].i].len, b, sizeof b);
            rc = ag_errmsg_set(ev->e, AG_EEXEC, -1,
                               "found duplicate series for the match group on the %s hand-side of "
                               "the operation: [%s, %s];many-to-many matching not allowed: "
                               "matching labels must be unique on one side",
                               card == AG_PQ_CARD_ONE_TO_MANY ? "left" : "right", a, b);
        }
    }
    for (size_t i = 0; i < many->n && !rc; i++) {
        const esample_t *ms = &many->v[i];
        uint64_t sig = lbl_signature(ms->lbl, ms->len, &n->u.binary.matching, n->u.binary.on);
        const sigent_t *m = find_sig(os, one->n, sig);
        if (!m) continue;
        const esample_t *o = &one->v[m->i];
        double lv = ms->v, rv = o->v;
        if (card == AG_PQ_CARD_ONE_TO_MANY) {
            lv = o->v;
            rv = ms->v;
        }
        bool keep;
        double v = elem_op(n->u.binary.op, lv, rv, &keep);
        if (n->u.binary.return_bool) {
            v = keep ? 1 : 0;
        } else if (!keep) {
            continue;
        }
        const char *l;
        size_t len;
        if ((rc = result_metric(ev, n, ms, o, &l, &len))) break;
        if (n->u.binary.return_bool) lbl_drop_name(ev, l, len, &l, &len);
        done[ndone++] = (outsig_t){sig, card == AG_PQ_CARD_ONE_TO_ONE ? 0 : lbl_hash(l, len)};
        rc = emit(ev, out, l, len, ts, v);
        if (rc == AG_EEXEC) break;
    }
    if (!rc && ndone > 1) {
        qsort(done, ndone, sizeof *done, cmp_outsig);
        for (size_t i = 1; i < ndone && !rc; i++)
            if (done[i].sig == done[i - 1].sig && done[i].metric == done[i - 1].metric)
                rc = ag_errmsg_set(ev->e, AG_EEXEC, -1,
                                   card == AG_PQ_CARD_ONE_TO_ONE
                                       ? "multiple matches for labels: many-to-one matching must be "
                                         "explicit (group_left/group_right)"
                                       : "multiple matches for labels: grouping labels must ensure "
                                         "unique matches");
    }
    free(os);
    free(done);
    return rc;
}

static int eval_binary(ev_t *ev, const ag_pq_node_t *n, eval_val_t *out)
{
    eval_val_t l, r;
    memset(&l, 0, sizeof l);
    memset(&r, 0, sizeof r);
    int rc = ev_eval(ev, n->u.binary.lhs, &l);
    if (!rc) rc = ev_eval(ev, n->u.binary.rhs, &r);
    if (rc) goto out;
    ag_pq_binop_t op = n->u.binary.op;
    if (l.k == AG_PQ_T_SCALAR && r.k == AG_PQ_T_SCALAR) {
        if ((rc = scalar_new(ev, out))) goto out;
        for (size_t k = 0; k < ev->nsteps; k++) {
            bool keep;
            double v = elem_op(op, l.sc[k], r.sc[k], &keep);
            out->sc[k] = is_cmp(op) ? (keep ? 1 : 0) : v;
        }
    } else if (l.k == AG_PQ_T_VECTOR && r.k == AG_PQ_T_SCALAR) {
        rc = binary_vector_scalar(ev, n, &l, r.sc, false, out);
    } else if (l.k == AG_PQ_T_SCALAR && r.k == AG_PQ_T_VECTOR) {
        rc = binary_vector_scalar(ev, n, &r, l.sc, true, out);
    } else if (l.k == AG_PQ_T_VECTOR && r.k == AG_PQ_T_VECTOR) {
        out->k = AG_PQ_T_VECTOR;
        size_t *lc = calloc(l.m.n + 1, sizeof *lc), *rcur = calloc(r.m.n + 1, sizeof *rcur);
        evec_t lv = {0}, rv = {0};
        if (!lc || !rcur) rc = AG_ENOMEM;
        for (size_t k = 0; k < ev->nsteps && !rc; k++) {
            int64_t ts = step_ts(ev, k);
            if ((rc = gather(&l.m, lc, ts, &lv)) || (rc = gather(&r.m, rcur, ts, &rv))) break;
            rc = is_set(op) ? set_op_step(ev, n, &lv, &rv, ts, &out->m)
                            : vector_op_step(ev, n, &lv, &rv, ts, &out->m);
            if (!rc) rc = ev_tick(ev);
        }
        free(lc);
        free(rcur);
        free(lv.v);
        free(rv.v);
    } else {
        rc = ag_errmsg_set(ev->e, AG_EINVAL, n->pos, "binary expression must contain only scalar "
                                                     "and instant vector types");
    }
out:
    ev_val_free(ev, &l);
    ev_val_free(ev, &r);
    return rc;
}

/* ---- aggregation ------------------------------------------------------------------------- */

typedef struct group {
    uint64_t key;
    const char *lbl; /* output labels */
    size_t len;
    size_t first, nmembers; /* into the step's member index list */
} group_t;

typedef struct member {
    size_t group;
    size_t sample;
} member_t;

static int cmp_member(const void *a, const void *b)
{
    const member_t *x = a, *y = b;
    if (x->group != y->group) return x->group < y->group ? -1 : 1;
    return x->sample < y->sample ? -1 : x->sample > y->sample;
}

typedef struct sort_ctx {
    const evec_t *vec;
    bool desc;
} sort_ctx_t;

/* topk: larger first, NaN last; bottomk: smaller first, NaN last. */
static int cmp_by_value(const void *a, const void *b, void *arg)
{
    const sort_ctx_t *c = arg;
    double x = c->vec->v[*(const size_t *)a].v, y = c->vec->v[*(const size_t *)b].v;
    if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
    if (x == y) return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
    return c->desc ? (x > y ? -1 : 1) : (x < y ? -1 : 1);
}

static int aggregate_step(ev_t *ev, const ag_pq_node_t *n, evec_t *in, double param,
                          const char *cv_label, int64_t ts, emat_t *out)
{
    ag_pq_aggop_t op = n->u.agg.op;
    const ag_pq_names_t *g = &n->u.agg.grouping;
    bool without = n->u.agg.without;
    int rc = AG_OK;
    if (op == AG_PQ_AGG_COUNT_VALUES) {
        /* The value becomes a label of each sample, and part of the grouping. */
        for (size_t i = 0; i < in->n && !rc; i++) {
            ag_buf_t b = AG_BUF_INIT;
            ag_buf_float_style(&b, in->v[i].v, AG_FLOAT_GO_F);
            if (!ag_buf_ok(&b)) rc = AG_ENOMEM;
            else rc = lbl_set(ev, in->v[i].lbl, in->v[i].len, cv_label, b.data, b.len, &in->v[i].lbl, &in->v[i].len);
            ag_buf_free(&b);
        }
    }
    if (rc) return rc;
    ag_pq_names_t g2 = *g;
    char **names = NULL;
    if (op == AG_PQ_AGG_COUNT_VALUES && !without) {
        names = malloc((g->n + 1) * sizeof *names);
        if (!names) return AG_ENOMEM;
        for (size_t i = 0; i < g->n; i++) names[i] = g->v[i];
        names[g->n] = (char *)cv_label;
        g2.v = names;
        g2.n = g->n + 1;
    }
    group_t *groups = calloc(in->n + 1, sizeof *groups);
    member_t *mem = calloc(in->n + 1, sizeof *mem);
    size_t *tab = calloc(2 * in->n + 2, sizeof *tab), ntab = 2 * in->n + 2;
    size_t ng = 0;
    if (!groups || !mem || !tab) rc = AG_ENOMEM;
    for (size_t i = 0; i < in->n && !rc; i++) {
        const esample_t *s = &in->v[i];
        uint64_t key = lbl_signature(s->lbl, s->len, &g2, !without);
        size_t j = key % ntab;
        while (tab[j] && groups[tab[j] - 1].key != key) j = (j + 1) % ntab;
        if (!tab[j]) {
            group_t *gr = &groups[ng];
            gr->key = key;
            rc = lbl_filter(ev, s->lbl, s->len, &g2, !without, &gr->lbl, &gr->len);
            tab[j] = ++ng;
        }
        mem[i] = (member_t){tab[j] - 1, i};
    }
    if (!rc) qsort(mem, in->n, sizeof *mem, cmp_member);
    for (size_t i = 0; i < in->n && !rc; i++) {
        group_t *gr = &groups[mem[i].group];
        if (gr->nmembers++ == 0) gr->first = i;
    }
    double *vals = rc ? NULL : malloc((in->n + 1) * sizeof *vals);
    size_t *order = rc ? NULL : malloc((in->n + 1) * sizeof *order);
    if (!rc && (!vals || !order)) rc = AG_ENOMEM;
    for (size_t gi = 0; gi < ng && !rc; gi++) {
        group_t *gr = &groups[gi];
        const member_t *ms = &mem[gr->first];
        size_t cnt = gr->nmembers;
        double value = 0;
        switch (op) {
        case AG_PQ_AGG_COUNT_VALUES: value = (double)cnt; break;
        case AG_PQ_AGG_QUANTILE:
            for (size_t k = 0; k < cnt; k++) vals[k] = in->v[ms[k].sample].v;
            value = ag_quantile(param, vals, cnt);
            break;
        case AG_PQ_AGG_TOPK:
        case AG_PQ_AGG_BOTTOMK: {
            double kf = param;
            if (!(kf >= 1)) continue;
            size_t kk = kf >= (double)cnt ? cnt : (size_t)kf;
            for (size_t k = 0; k < cnt; k++) order[k] = ms[k].sample;
            sort_ctx_t sc = {in, op == AG_PQ_AGG_TOPK};
            qsort_r(order, cnt, sizeof *order, cmp_by_value, &sc);
            for (size_t k = 0; k < kk && !rc; k++)
                rc = emit(ev, out, in->v[order[k]].lbl, in->v[order[k]].len, ts, in->v[order[k]].v);
            continue;
        }
        default: break;
        }
        rc = emit(ev, out, gr->lbl, gr->len, ts, value);
    }
    free(vals);
    free(order);
    free(groups);
    free(mem);
    free(tab);
    free(names);
    return rc;
}

/* The aggregations that fold samples one at a time (everything but quantile, topk, bottomk and
 * count_values) take this path: each input series' group is worked out once for the whole
 * query rather than at every step, and each step folds its samples into per-group accumulators
 * in input order (so sums add in the same order as the per-step path and as Prometheus). */
static bool foldable(ag_pq_aggop_t op)
{
    return op == AG_PQ_AGG_SUM || op == AG_PQ_AGG_AVG || op == AG_PQ_AGG_COUNT ||
           op == AG_PQ_AGG_GROUP || op == AG_PQ_AGG_MIN || op == AG_PQ_AGG_MAX ||
           op == AG_PQ_AGG_STDDEV || op == AG_PQ_AGG_STDVAR;
}

/* One group's accumulator at one step. */
typedef struct acc {
    size_t count; /* samples folded in */
    double value, mean, aux;
} acc_t;

typedef struct fold {
    const char *lbl; /* output labels (arena) */
    size_t len;
    uint64_t key;
    size_t step;     /* the step this accumulator was last started at, + 1 (0 = never); in a
                        sink, the first step the group has a value at (SIZE_MAX = none yet) */
    size_t rank;     /* sink: the input series that gave the group its value at `step` */
    acc_t a;
} fold_t;

static void fold_add(ag_pq_aggop_t op, acc_t *f, double v)
{
    size_t k = f->count++; /* samples folded before this one */
    if (k == 0) {
        f->value = f->mean = v;
        f->aux = 0;
        return;
    }
    switch (op) {
    case AG_PQ_AGG_SUM: f->value += v; break;
    case AG_PQ_AGG_AVG: {
        double c = (double)(k + 1);
        if (isinf(f->mean)) {
            if (isinf(v) && (f->mean > 0) == (v > 0)) break;
            if (!isinf(v) && !isnan(v)) break;
        }
        f->mean += v / c - f->mean / c;
        break;
    }
    case AG_PQ_AGG_MIN:
    case AG_PQ_AGG_MAX:
        if (isnan(f->value) || (op == AG_PQ_AGG_MIN ? f->value > v : f->value < v)) f->value = v;
        break;
    case AG_PQ_AGG_STDDEV:
    case AG_PQ_AGG_STDVAR: {
        double delta = v - f->mean;
        f->mean += delta / (double)(k + 1);
        f->aux += delta * (v - f->mean);
        break;
    }
    default: break;
    }
}

static double fold_result(ag_pq_aggop_t op, const acc_t *f)
{
    switch (op) {
    case AG_PQ_AGG_AVG: return f->mean;
    case AG_PQ_AGG_COUNT: return (double)f->count;
    case AG_PQ_AGG_GROUP: return 1;
    case AG_PQ_AGG_STDDEV: return sqrt(f->aux / (double)f->count);
    case AG_PQ_AGG_STDVAR: return f->aux / (double)f->count;
    default: return f->value;
    }
}

/* The group of labels l (hash table tab of ntab slots holding group index + 1, ntab > groups):
 * found by its signature, or appended to f[*ng] with its output labels. */
static int fold_group(ev_t *ev, const ag_pq_node_t *n, const char *l, size_t len, size_t *tab,
                      size_t ntab, fold_t *f, size_t *ng, size_t *g)
{
    uint64_t key = lbl_signature(l, len, &n->u.agg.grouping, !n->u.agg.without);
    size_t j = key % ntab;
    while (tab[j] && f[tab[j] - 1].key != key) j = (j + 1) % ntab;
    if (!tab[j]) {
        memset(&f[*ng], 0, sizeof f[*ng]);
        f[*ng].key = key;
        int rc = lbl_filter(ev, l, len, &n->u.agg.grouping, !n->u.agg.without, &f[*ng].lbl,
                            &f[*ng].len);
        if (rc) return rc;
        tab[j] = ++*ng;
    }
    *g = tab[j] - 1;
    return AG_OK;
}

static int aggregate_fold(ev_t *ev, const ag_pq_node_t *n, const emat_t *in, emat_t *out)
{
    ag_pq_aggop_t op = n->u.agg.op;
    size_t ns = in->n, ntab = 2 * ns + 2, ng = 0, ntouched;
    size_t *gid = malloc((ns + 1) * sizeof *gid), *cur = calloc(ns + 1, sizeof *cur);
    size_t *tab = calloc(ntab, sizeof *tab), *touched = malloc((ns + 1) * sizeof *touched);
    fold_t *f = calloc(ns + 1, sizeof *f);
    int rc = gid && cur && tab && touched && f ? AG_OK : AG_ENOMEM;
    for (size_t i = 0; i < ns && !rc; i++)
        rc = fold_group(ev, n, in->s[i].lbl, in->s[i].len, tab, ntab, f, &ng, &gid[i]);
    for (size_t k = 0; k < ev->nsteps && !rc; k++) {
        int64_t ts = step_ts(ev, k);
        ntouched = 0;
        for (size_t i = 0; i < ns; i++) {
            const eseries_t *s = &in->s[i];
            if (cur[i] >= s->n || s->p[cur[i]].t != ts) continue;
            fold_t *g = &f[gid[i]];
            if (g->step != k + 1) {
                g->step = k + 1;
                g->a.count = 0;
                touched[ntouched++] = gid[i];
            }
            fold_add(op, &g->a, s->p[cur[i]++].v);
        }
        for (size_t t = 0; t < ntouched && !rc; t++)
            rc = emit(ev, out, f[touched[t]].lbl, f[touched[t]].len, ts, fold_result(op, &f[touched[t]].a));
        if (!rc) rc = ev_tick(ev);
    }
    free(gid);
    free(cur);
    free(tab);
    free(touched);
    free(f);
    return rc;
}

/* ---- aggregations folded as their input is produced (ev_sink_t, eval_int.h) ------------- */

/* Groups are found as input series arrive; each keeps accumulators for the span of steps it has
 * values at (grown as needed, so that many short-lived groups, say per pod over a day, cost
 * what their points would). At the end the groups are emitted in the order aggregate_fold
 * would create them: by the first step they have a value at, then by the input series that gave
 * it. Values reach each accumulator in input order, as there, so every result is the same to
 * the bit. */
typedef struct swin {
    acc_t *a;    /* a[i] is the accumulator of step base + i */
    size_t base, cap;
} swin_t;

struct ev_sink {
    const ag_pq_node_t *n; /* the aggregation */
    size_t nsteps, rank;   /* rank: input series seen so far */
    fold_t *f;             /* groups */
    swin_t *w;             /* their accumulators */
    size_t ng, capg;
    size_t *tab, ntab;     /* group table for fold_group */
};

static int sink_rehash(ev_sink_t *k)
{
    size_t ntab = k->ntab ? k->ntab * 2 : 64;
    size_t *tab = calloc(ntab, sizeof *tab);
    if (!tab) return AG_ENOMEM;
    for (size_t g = 0; g < k->ng; g++) {
        size_t j = k->f[g].key % ntab;
        while (tab[j]) j = (j + 1) % ntab;
        tab[j] = g + 1;
    }
    free(k->tab);
    k->tab = tab;
    k->ntab = ntab;
    return AG_OK;
}

int sink_series(ev_t *ev, ev_sink_t *k, const char *lbl, size_t len, size_t *g)
{
    k->rank++;
    if ((k->ng + 1) * 2 > k->ntab && sink_rehash(k)) return AG_ENOMEM;
    if (k->ng == k->capg) {
        size_t cap = k->capg ? k->capg * 2 : 16;
        fold_t *nf = realloc(k->f, cap * sizeof *nf);
        if (!nf) return AG_ENOMEM;
        k->f = nf;
        swin_t *nw = realloc(k->w, cap * sizeof *nw);
        if (!nw) return AG_ENOMEM;
        k->w = nw;
        k->capg = cap;
    }
    size_t before = k->ng;
    int rc = fold_group(ev, k->n, lbl, len, k->tab, k->ntab, k->f, &k->ng, g);
    if (rc || k->ng == before) return rc;
    memset(&k->w[*g], 0, sizeof k->w[*g]);
    k->f[*g].step = SIZE_MAX;
    return AG_OK;
}

/* Widens w to cover `step`, doubling, with the room on the side it grew. */
static int swin_grow(ev_t *ev, const ev_sink_t *k, swin_t *w, size_t step)
{
    bool front = w->cap && step < w->base;
    size_t lo = w->cap && w->base < step ? w->base : step;
    size_t hi = w->cap && w->base + w->cap > step + 1 ? w->base + w->cap : step + 1;
    size_t cap = w->cap * 2 > 16 ? w->cap * 2 : 16;
    if (cap < hi - lo) cap = hi - lo;
    if (cap > k->nsteps) cap = k->nsteps;
    size_t base = front ? (hi >= cap ? hi - cap : 0) : lo;
    if (base + cap > k->nsteps) base = k->nsteps - cap;
    acc_t *a = calloc(cap, sizeof *a);
    if (!a) return AG_ENOMEM;
    if (w->cap) memcpy(a + (w->base - base), w->a, w->cap * sizeof *a);
    /* An accumulator takes the room of two points. */
    int rc = ev_count(ev, 2 * (uint64_t)(cap - w->cap));
    free(w->a);
    w->a = a;
    w->base = base;
    w->cap = cap;
    return rc;
}

int sink_row(ev_t *ev, ev_sink_t *k, size_t g, const double *v, const uint8_t *has)
{
    size_t first = 0, last = k->nsteps;
    while (first < k->nsteps && !has[first]) first++;
    while (last > first && !has[last - 1]) last--;
    if (first == last) return AG_OK;
    swin_t *w = &k->w[g];
    int rc = AG_OK;
    if (first < w->base || first >= w->base + w->cap) rc = swin_grow(ev, k, w, first);
    if (!rc && (last - 1 < w->base || last - 1 >= w->base + w->cap))
        rc = swin_grow(ev, k, w, last - 1);
    if (rc) return rc;
    /* The group's first step with a value: this series gives the first value at `first` when
     * no series gave one there or before. */
    fold_t *f = &k->f[g];
    if (f->step == SIZE_MAX || first < f->step) {
        f->step = first;
        f->rank = k->rank;
    }
    acc_t *a = w->a - w->base;
    ag_pq_aggop_t op = k->n->u.agg.op;
    if (op == AG_PQ_AGG_SUM) { /* the common case, without fold_add's switch */
        for (size_t s = first; s < last; s++) {
            if (!has[s]) continue;
            if (a[s].count++) a[s].value += v[s];
            else a[s].value = a[s].mean = v[s];
        }
        return AG_OK;
    }
    for (size_t s = first; s < last; s++)
        if (has[s]) fold_add(op, &a[s], v[s]);
    return AG_OK;
}

static int cmp_first(const void *a, const void *b, void *arg)
{
    const fold_t *f = arg;
    const fold_t *x = &f[*(const size_t *)a], *y = &f[*(const size_t *)b];
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

static int sink_finish(ev_t *ev, ev_sink_t *k, emat_t *out)
{
    size_t *order = malloc((k->ng + 1) * sizeof *order), m = 0;
    if (!order) return AG_ENOMEM;
    for (size_t g = 0; g < k->ng; g++)
        if (k->f[g].step != SIZE_MAX) order[m++] = g;
    qsort_r(order, m, sizeof *order, cmp_first, k->f);
    int rc = AG_OK;
    for (size_t i = 0; i < m && !rc; i++) {
        const fold_t *f = &k->f[order[i]];
        const swin_t *w = &k->w[order[i]];
        for (size_t j = 0; j < w->cap && !rc; j++)
            if (w->a[j].count)
                rc = emit(ev, out, f->lbl, f->len, step_ts(ev, w->base + j),
                          fold_result(k->n->u.agg.op, &w->a[j]));
        if (!rc) rc = ev_tick(ev);
    }
    free(order);
    return rc;
}

static void sink_free(ev_sink_t *k)
{
    for (size_t g = 0; g < k->ng; g++) free(k->w[g].a);
    free(k->w);
    free(k->f);
    free(k->tab);
}

/* Is n step invariant as Prometheus 2.42's preprocessor judges it: its value the same at every
 * step, so it is evaluated once, at the start of the evaluation? Literals are; selectors and
 * subqueries with `@`; calls of invariant arguments, except the functions that read the
 * evaluation time or their argument's timestamps; operators and parentheses over invariant
 * operands; an aggregation whose expression is (its parameter is not looked at). */
static bool step_invariant(const ag_pq_node_t *n)
{
    static const char *const time_dependent[] = {
        "days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute",
        "month", "year", "predict_linear", "time", "timestamp"};
    switch (n->type) {
    case AG_PQ_NUMBER:
    case AG_PQ_STRING: return true;
    case AG_PQ_VECTOR_SEL:
    case AG_PQ_MATRIX_SEL: return n->u.sel.at != AG_PQ_AT_NONE;
    case AG_PQ_SUBQUERY: return n->u.subquery.at != AG_PQ_AT_NONE;
    case AG_PQ_PAREN: return step_invariant(n->u.paren);
    case AG_PQ_UNARY: return step_invariant(n->u.unary.expr);
    case AG_PQ_BINARY: return step_invariant(n->u.binary.lhs) && step_invariant(n->u.binary.rhs);
    case AG_PQ_AGGREGATE: return step_invariant(n->u.agg.expr);
    case AG_PQ_CALL:
        for (size_t i = 0; i < sizeof time_dependent / sizeof *time_dependent; i++)
            if (strcmp(n->u.call.name, time_dependent[i]) == 0) return false;
        for (size_t i = 0; i < n->u.call.nargs; i++)
            if (!step_invariant(n->u.call.args[i])) return false;
        return true;
    default: return false;
    }
}

/* An aggregation's parameter. Where 2.42 evaluates the aggregation once (its expression is
 * step invariant, see step_invariant), the parameter too is taken at the first step only, for
 * every step: topk(scalar(count(x)), y @ end()) keeps the k of the start. Inside another
 * parameter the preprocessor never looked, so there it follows the step. */
static int agg_param(ev_t *ev, const ag_pq_node_t *n, eval_val_t *out)
{
    const ag_pq_node_t *param = n->u.agg.param;
    if (ev->in_param > 1 || ev->nsteps < 2 || param->vtype != AG_PQ_T_SCALAR ||
        !step_invariant(n->u.agg.expr))
        return ev_eval(ev, param, out);
    ev_t one = *ev;
    one.end = one.start;
    one.nsteps = 1;
    eval_val_t first;
    int rc = ev_eval(&one, param, &first);
    ev->points = one.points;
    ev->ticks = one.ticks;
    if (!rc && !(rc = scalar_new(ev, out)))
        for (size_t k = 0; k < ev->nsteps; k++) out->sc[k] = first.sc ? first.sc[0] : 0;
    ev_val_free(ev, &first);
    return rc;
}

static int eval_aggregate(ev_t *ev, const ag_pq_node_t *n, eval_val_t *out)
{
    const ag_pq_node_t *expr = unparen(n->u.agg.expr);
    if (foldable(n->u.agg.op) && ev_call_foldable(expr)) {
        /* sum by (...) (rate(x[5m])) and the like: no matrix of rates in between. */
        ev_sink_t k = {.n = n, .nsteps = ev->nsteps};
        out->k = AG_PQ_T_VECTOR;
        int rc = ev_call_fold(ev, expr, &k);
        if (!rc) rc = sink_finish(ev, &k, &out->m);
        sink_free(&k);
        return rc;
    }
    eval_val_t in, param;
    memset(&in, 0, sizeof in);
    memset(&param, 0, sizeof param);
    int rc = ev_eval(ev, n->u.agg.expr, &in);
    if (!rc && n->u.agg.param) {
        ev->in_param++;
        rc = agg_param(ev, n, &param);
        ev->in_param--;
    }
    if (rc) goto out;
    const char *cv = NULL;
    if (n->u.agg.op == AG_PQ_AGG_COUNT_VALUES) {
        cv = param.str ? param.str : "";
        if (!ag_label_name_valid(cv, strlen(cv))) {
            rc = ag_errmsg_set(ev->e, AG_EEXEC, n->pos, "invalid label name \"%s\"", cv);
            goto out;
        }
    }
    out->k = AG_PQ_T_VECTOR;
    if (foldable(n->u.agg.op)) {
        rc = aggregate_fold(ev, n, &in.m, &out->m);
        goto out;
    }
    size_t *cur = calloc(in.m.n + 1, sizeof *cur);
    evec_t v = {0};
    if (!cur) rc = AG_ENOMEM;
    for (size_t k = 0; k < ev->nsteps && !rc; k++) {
        int64_t ts = step_ts(ev, k);
        if ((rc = gather(&in.m, cur, ts, &v))) break;
        double p = param.sc ? param.sc[k] : 0;
        /* 2.42 checks k at every step, also where the input is empty: it must fit an int64
         * (NaN does not). */
        if ((n->u.agg.op == AG_PQ_AGG_TOPK || n->u.agg.op == AG_PQ_AGG_BOTTOMK) &&
            !(p <= 9223372036854774784.0 && p >= -9223372036854775808.0)) {
            char kb[32];
            snprintf(kb, sizeof kb, "%g", p);
            rc = ag_errmsg_set(ev->e, AG_EEXEC, -1, "Scalar value %s overflows int64",
                               isnan(p) ? "NaN" : isinf(p) ? (p > 0 ? "+Inf" : "-Inf") : kb);
            break;
        }
        if (!v.n) continue;
        rc = aggregate_step(ev, n, &v, p, cv, ts, &out->m);
        if (!rc) rc = ev_tick(ev);
    }
    free(cur);
    free(v.v);
out:
    ev_val_free(ev, &in);
    ev_val_free(ev, &param);
    return rc;
}

/* ---- the walk ---------------------------------------------------------------------------- */

int ev_eval(ev_t *ev, const ag_pq_node_t *node, eval_val_t *out)
{
    memset(out, 0, sizeof *out);
    const ag_pq_node_t *n = unparen(node);
    int rc;
    switch (n->type) {
    case AG_PQ_NUMBER:
        if ((rc = scalar_new(ev, out))) return rc;
        for (size_t k = 0; k < ev->nsteps; k++) out->sc[k] = n->u.number;
        return AG_OK;
    case AG_PQ_STRING:
        out->k = AG_PQ_T_STRING;
        out->str = arena_dup(ev, n->u.string.s, n->u.string.len + 1);
        out->slen = n->u.string.len;
        return out->str ? AG_OK : AG_ENOMEM;
    case AG_PQ_VECTOR_SEL:
        out->k = AG_PQ_T_VECTOR;
        return ev_vsel(ev, n, false, &out->m);
    case AG_PQ_MATRIX_SEL:
    case AG_PQ_SUBQUERY:
        out->k = AG_PQ_T_MATRIX;
        return eval_matrix_top(ev, n, &out->m);
    case AG_PQ_UNARY: {
        if ((rc = ev_eval(ev, n->u.unary.expr, out))) return rc;
        if (n->u.unary.op != '-') return AG_OK;
        if (out->k == AG_PQ_T_SCALAR) {
            for (size_t k = 0; k < ev->nsteps; k++) out->sc[k] = -out->sc[k];
            return AG_OK;
        }
        eval_val_t neg;
        memset(&neg, 0, sizeof neg);
        neg.k = AG_PQ_T_VECTOR;
        for (size_t i = 0; i < out->m.n && !rc; i++) {
            const char *l;
            size_t len;
            lbl_drop_name(ev, out->m.s[i].lbl, out->m.s[i].len, &l, &len);
            for (size_t k = 0; k < out->m.s[i].n && !rc; k++)
                rc = emit(ev, &neg.m, l, len, out->m.s[i].p[k].t, -out->m.s[i].p[k].v);
        }
        ev_val_free(ev, out);
        *out = neg;
        return rc;
    }
    case AG_PQ_BINARY: return eval_binary(ev, n, out);
    case AG_PQ_AGGREGATE: return eval_aggregate(ev, n, out);
    case AG_PQ_CALL: return ev_call(ev, n, out);
    case AG_PQ_PAREN: break;
    }
    return ag_errmsg_set(ev->e, AG_EUNSUPPORTED, n->pos, "expression is not supported yet");
}

/* ---- entry points ------------------------------------------------------------------------ */

void ag_value_free(ag_value_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->series[i].labels);
        free(v->series[i].points);
    }
    free(v->series);
    free(v->str);
    memset(v, 0, sizeof *v);
}

static int cmp_series_val(const void *a, const void *b)
{
    const ag_series_val_t *x = a, *y = b;
    return ag_labels_cmp(x->labels, x->labels_len, y->labels, y->labels_len);
}

static int cmp_vec_value(const void *a, const void *b)
{
    double x = ((const ag_series_val_t *)a)->points[0].v, y = ((const ag_series_val_t *)b)->points[0].v;
    if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
    return (x > y) - (x < y);
}

static int cmp_vec_value_desc(const void *a, const void *b)
{
    double x = ((const ag_series_val_t *)a)->points[0].v, y = ((const ag_series_val_t *)b)->points[0].v;
    if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
    return (x < y) - (x > y);
}

/* Moves an evaluated value into the public result. */
static int export(ev_t *ev, const ag_pq_node_t *top, eval_val_t *v, bool range, ag_value_t *out)
{
    out->t = ev->start;
    if (v->k == AG_PQ_T_STRING) {
        if (range)
            return ag_errmsg_set(ev->e, AG_EINVAL, top->pos,
                                 "invalid expression type \"string\" for range query, must be "
                                 "Scalar or instant Vector");
        out->type = AG_VAL_STRING;
        out->str = malloc(v->slen + 1);
        if (!out->str) return AG_ENOMEM;
        memcpy(out->str, v->str, v->slen + 1);
        out->str_len = v->slen;
        return AG_OK;
    }
    if (v->k == AG_PQ_T_SCALAR && !range) {
        out->type = AG_VAL_SCALAR;
        out->scalar = v->sc[0];
        return AG_OK;
    }
    if (v->k == AG_PQ_T_MATRIX && range)
        return ag_errmsg_set(ev->e, AG_EINVAL, top->pos,
                             "invalid expression type \"range vector\" for range query, must be "
                             "Scalar or instant Vector");
    if (v->k == AG_PQ_T_SCALAR) { /* a scalar in a range query: one series without labels */
        eval_val_t m;
        memset(&m, 0, sizeof m);
        int rc = AG_OK;
        for (size_t k = 0; k < ev->nsteps && !rc; k++)
            rc = emit(ev, &m.m, "", 0, step_ts(ev, k), v->sc[k]);
        ev_val_free(ev, v);
        *v = m;
        v->k = AG_PQ_T_VECTOR;
        if (rc) return rc;
    }
    out->type = range || v->k == AG_PQ_T_MATRIX ? AG_VAL_MATRIX : AG_VAL_VECTOR;
    out->series = calloc(v->m.n + 1, sizeof *out->series);
    if (!out->series) return AG_ENOMEM;
    for (size_t i = 0; i < v->m.n; i++) {
        eseries_t *s = &v->m.s[i];
        if (!s->n) continue;
        ag_series_val_t *sv = &out->series[out->n];
        sv->labels = malloc(s->len ? s->len : 1);
        if (!sv->labels) return AG_ENOMEM;
        memcpy(sv->labels, s->lbl, s->len);
        sv->labels_len = s->len;
        sv->points = s->p;
        sv->n = s->n;
        s->p = NULL;
        s->n = 0;
        out->n++;
    }
    if (out->type == AG_VAL_MATRIX) {
        qsort(out->series, out->n, sizeof *out->series, cmp_series_val);
    } else {
        const ag_pq_node_t *u = unparen(top);
        if (u->type == AG_PQ_CALL && strcmp(u->u.call.name, "sort") == 0)
            qsort(out->series, out->n, sizeof *out->series, cmp_vec_value);
        else if (u->type == AG_PQ_CALL && strcmp(u->u.call.name, "sort_desc") == 0)
            qsort(out->series, out->n, sizeof *out->series, cmp_vec_value_desc);
    }
    return AG_OK;
}

static int run(ag_store_t *s, const ag_pq_node_t *n, int64_t start, int64_t end, int64_t step,
               bool range, const ag_eval_opts_t *o, ag_value_t *out, ag_errmsg_t *e)
{
    memset(out, 0, sizeof *out);
    if (step <= 0 || end < start) return ag_errmsg_set(e, AG_EINVAL, -1, "invalid range");
    /* A range query of a range vector or string is refused from its type, before anything is
     * evaluated (as 2.42 does: bad_data, whatever evaluating it would have said). */
    if (range && (n->vtype == AG_PQ_T_MATRIX || n->vtype == AG_PQ_T_STRING))
        return ag_errmsg_set(e, AG_EINVAL, n->pos,
                             "invalid expression type \"%s\" for range query, must be Scalar or "
                             "instant Vector",
                             n->vtype == AG_PQ_T_MATRIX ? "range vector" : "string");
    ev_t ev;
    memset(&ev, 0, sizeof ev);
    ev.store = s;
    ev.start = ev.q_start = start;
    ev.end = ev.q_end = end;
    ev.step = step;
    ev.nsteps = (size_t)((end - start) / step) + 1;
    ev.o = o;
    ev.e = e;
    ev.deadline = o->timeout_ms > 0 ? mono_ms() + o->timeout_ms : 0;
    if (!(ev.arena = ag_arena_new(64 * 1024, 0))) return AG_ENOMEM;
    eval_val_t v;
    int rc = ev_eval(&ev, n, &v);
    if (!rc) rc = export(&ev, n, &v, range, out);
    ev_val_free(&ev, &v);
    ag_arena_free(ev.arena);
    if (rc) ag_value_free(out);
    return rc;
}

int ag_eval_instant(ag_store_t *s, const ag_pq_node_t *n, int64_t t, const ag_eval_opts_t *o,
                    ag_value_t *out, ag_errmsg_t *e)
{
    return run(s, n, t, t, 1, false, o, out, e);
}

int ag_eval_range(ag_store_t *s, const ag_pq_node_t *n, int64_t start, int64_t end, int64_t step,
                  const ag_eval_opts_t *o, ag_value_t *out, ag_errmsg_t *e)
{
    return run(s, n, start, end, step, true, o, out, e);
}
