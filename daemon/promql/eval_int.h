/* eval_int.h - internals of the PromQL evaluator shared by eval.c (expressions, operators,
 * aggregations) and eval_call.c (function calls). Not a public header.
 *
 * Model (Prometheus' range evaluation): every expression is evaluated for all steps of the
 * query at once. A vector-valued expression yields an `emat_t`: series, each with points at the
 * step times where it has a value. A scalar yields one value per step. Operators, aggregations
 * and functions then walk the steps, gather each operand's samples at that step into an
 * `evec_t`, compute an output vector and append it to the result series. An instant query is a
 * range evaluation with one step. Labels are canonical encodings (ag_labels.h) allocated in the
 * query's arena, so no label string is freed individually.
 */
#ifndef AG_EVAL_INT_H
#define AG_EVAL_INT_H

#include <string.h>

#include "ag_arena.h"
#include "ag_eval.h"
#include "ag_promql.h"
#include "ag_store.h"

typedef struct ev {
    ag_store_t *store;
    int64_t start, end, step; /* step > 0; an instant query has start == end */
    size_t nsteps;
    int64_t q_start, q_end;   /* the top-level query's range, for @ start() / end() */
    const ag_eval_opts_t *o;
    int64_t deadline;         /* monotonic ms; 0 = none */
    uint64_t points;          /* points currently held, against o->max_samples */
    unsigned ticks;
    ag_arena_t *arena;
    ag_errmsg_t *e;
    unsigned in_param;        /* > 0 while an aggregation's parameter is evaluated */
} ev_t;

/* The `@` of a selector or subquery as Prometheus 2.42 applies it: its preprocessor, which
 * turns `@ start()` and `@ end()` into times, never visits an aggregation's parameter
 * (topk(k, ...), quantile(q, ...)), so there they are not applied at all: the parameter is
 * evaluated at each step as if they were absent. */
static inline ag_pq_at_t ev_at(const ev_t *ev, ag_pq_at_t at)
{
    return ev->in_param && (at == AG_PQ_AT_START || at == AG_PQ_AT_END) ? AG_PQ_AT_NONE : at;
}

typedef struct eseries {
    const char *lbl; /* arena */
    size_t len;
    uint64_t hash;
    ag_point_t *p;   /* malloc'd */
    size_t n, cap;
} eseries_t;

typedef struct emat {
    eseries_t *s; /* malloc'd */
    size_t n, cap;
    size_t *idx;  /* open-addressing table of series indexes + 1 (0 = empty), for emit */
    size_t nidx;
    const char *last_lbl; /* emit's one-entry cache: the labels of the last series written */
    size_t last_len, last;
} emat_t;

typedef struct esample {
    const char *lbl;
    size_t len;
    uint64_t hash;
    double v;
    int64_t t; /* the sample's own timestamp (timestamp()) */
} esample_t;

typedef struct evec {
    esample_t *v; /* malloc'd */
    size_t n, cap;
} evec_t;

/* The value of an evaluated expression over all steps. */
typedef struct eval_val {
    ag_pq_vtype_t k;
    emat_t m;       /* vector (points at step times) or matrix (raw points; instant only) */
    double *sc;     /* scalar: nsteps values */
    char *str;      /* string (arena) */
    size_t slen;
} eval_val_t;

int ev_eval(ev_t *ev, const ag_pq_node_t *n, eval_val_t *out);
void ev_val_free(ev_t *ev, eval_val_t *v);
void emat_free(ev_t *ev, emat_t *m);
/* Adds (ts, v) to the series with labels lbl, creating it, keeping points in time order;
 * AG_EEXEC when that series already has a point at ts (two outputs with one labelset). */
int emit(ev_t *ev, emat_t *m, const char *lbl, size_t len, int64_t ts, double v);
/* The series with these labels, or NULL. */
eseries_t *emat_find(emat_t *m, const char *lbl, size_t len);
/* The series with these labels, created (without points) when missing; NULL when out of
 * memory. */
eseries_t *emat_series(ev_t *ev, emat_t *m, const char *lbl, size_t len);
int evec_push(evec_t *vec, const char *lbl, size_t len, uint64_t hash, double v, int64_t t);
/* Samples of `m` at step time ts; `cur` holds one cursor per series (start zeroed). */
int gather(const emat_t *m, size_t *cur, int64_t ts, evec_t *out);
int ev_tick(ev_t *ev);      /* AG_ETIMEOUT once the deadline passed */
/* Whether the deadline has passed; reads ev only, so any thread may ask. */
bool ev_past_deadline(const ev_t *ev);
static inline bool ev_is_stale(double v)
{
    uint64_t b;
    memcpy(&b, &v, 8);
    return b == AG_STALE_NAN_BITS;
}
int ev_count(ev_t *ev, uint64_t add);
static inline int64_t step_ts(const ev_t *ev, size_t k) { return ev->start + (int64_t)k * ev->step; }
const ag_pq_node_t *unparen(const ag_pq_node_t *n);

/* Label helpers (results in the arena). */
uint64_t lbl_hash(const char *l, size_t len);
int lbl_drop_name(ev_t *ev, const char *l, size_t len, const char **out, size_t *olen);
/* Sets `name` to value (vlen 0 deletes it), keeping the set sorted. */
int lbl_set(ev_t *ev, const char *l, size_t len, const char *name, const char *value,
            size_t vlen, const char **out, size_t *olen);
/* Removes exactly `names` (Prometheus' Builder.Del). */
int lbl_del(ev_t *ev, const char *l, size_t len, const ag_pq_names_t *names, const char **out,
            size_t *olen);
/* Keeps only `names` (keep) or drops `names` and __name__ (!keep). */
int lbl_filter(ev_t *ev, const char *l, size_t len, const ag_pq_names_t *names, bool keep,
               const char **out, size_t *olen);
/* The matching signature: a hash over `names` (on) or over everything but `names` and
 * __name__ (!on). */
uint64_t lbl_signature(const char *l, size_t len, const ag_pq_names_t *names, bool on);
/* Renders labels as {a="b", ...} for error messages. */
void lbl_describe(const char *l, size_t len, char *out, size_t outlen);

/* An instant vector selector over every step; values are the samples' own times in seconds
 * when want_ts (for timestamp()). */
int ev_vsel(ev_t *ev, const ag_pq_node_t *n, bool want_ts, emat_t *out);

/* An aggregation folded as its input is produced, one input series after another, instead of
 * from the whole input matrix (eval.c). Used where the input is a range function over a
 * matrix selector or subquery; the output is the same, bit for bit and in order. */
typedef struct ev_sink ev_sink_t;
/* The next input series, with its labels: *g gets its group. */
int sink_series(ev_t *ev, ev_sink_t *k, const char *lbl, size_t len, size_t *g);
/* Folds the series' values v[k] at the steps k with has[k] into its group. */
int sink_row(ev_t *ev, ev_sink_t *k, size_t g, const double *v, const uint8_t *has);

/* Function calls (eval_call.c). */
int ev_call(ev_t *ev, const ag_pq_node_t *n, eval_val_t *out);
/* Whether n is a call ev_call_fold can fold into an aggregation. */
bool ev_call_foldable(const ag_pq_node_t *n);
/* Evaluates such a call, handing its output series to sink instead of building them. */
int ev_call_fold(ev_t *ev, const ag_pq_node_t *n, ev_sink_t *sink);
/* A range argument (matrix selector or subquery) resolved for the whole query: its raw points
 * covering every step's window, and how to place the window at each step. */
typedef struct range_src {
    emat_t raw;
    int64_t range_ms, offset_ms;
    bool fixed;       /* pinned by @: every step uses fixed_ts instead of its own time */
    int64_t fixed_ts;
} range_src_t;
int ev_range_source(ev_t *ev, const ag_pq_node_t *n, range_src_t *rs);
/* The streaming form for a matrix selector `n` (not a subquery): fills rs's window parameters
 * (rs->raw stays empty) and runs a mapped store scan over the series the windows need
 * (ag_store_scan_map: map may run on a second thread, fn runs here in label order). The samples
 * include stale markers. */
int ev_range_scan(ev_t *ev, const ag_pq_node_t *n, range_src_t *rs, ag_series_map_fn map,
                  void *mctx, size_t msize, ag_series_mapped_fn fn, void *arg);

#endif
