/* ag_eval.h - evaluation of PromQL-lite trees against the store.
 *
 * Semantics follow Prometheus 2.42, the version our users run beside us: an instant vector
 * selector at time t yields, per series, the newest sample in [t - lookback, t] unless that
 * sample is a stale marker; a range selector yields the samples in [t - range, t] without stale
 * markers (both windows are closed in 2.x; Prometheus 3.0 made them left-open and the issue text
 * follows 3.0; the shared PromQL test files of 2.42, e.g. staleness.test, pin the 2.x rule); `offset` shifts t; a range query
 * is an independent instant evaluation at start, start + step, ... <= end. Results are
 * materialised values the API layer renders as JSON.
 */
#ifndef AG_EVAL_H
#define AG_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ag_err.h"
#include "ag_promql.h"
#include "ag_store.h"

#define AG_STALE_NAN_BITS 0x7ff0000000000002ULL

typedef enum { AG_VAL_SCALAR = 1, AG_VAL_STRING, AG_VAL_VECTOR, AG_VAL_MATRIX } ag_val_type_t;

/* A point of a result is a stored sample's shape, so selected samples become points without a
 * copy. */
typedef ag_sample_t ag_point_t;

typedef struct ag_series_val {
    char *labels;       /* owned canonical encoding */
    size_t labels_len;
    ag_point_t *points; /* owned; one point for vectors */
    size_t n;
} ag_series_val_t;

typedef struct ag_value {
    ag_val_type_t type;
    int64_t t;            /* evaluation time (scalar, string, vector) */
    double scalar;
    char *str;            /* owned (string), NUL-terminated; may also contain NULs */
    size_t str_len;
    ag_series_val_t *series; /* owned (vector, matrix); a matrix is sorted by labels, a vector
                                is in Prometheus' output order (sorted only by sort()/sort_desc()) */
    size_t n;
} ag_value_t;

void ag_value_free(ag_value_t *v);

/* When range functions read rollup buckets instead of raw samples (the answer is the same,
 * see eval_call.c): AUTO when the window spans 30 buckets or more, or reaches back beyond the
 * raw retention; NEVER and ALWAYS (whenever exact) let tests compare both. */
typedef enum { AG_ROLLUPS_AUTO = 0, AG_ROLLUPS_NEVER, AG_ROLLUPS_ALWAYS } ag_rollup_use_t;

typedef struct ag_eval_opts {
    int64_t lookback_ms;  /* default 5m */
    uint64_t max_samples; /* 0 = unlimited: samples loaded plus points held at once */
    int64_t timeout_ms;   /* 0 = none; otherwise AG_ETIMEOUT once exceeded */
    ag_rollup_use_t rollups; /* when rollup buckets answer (default: when it pays) */
} ag_eval_opts_t;

/* Evaluates `n` at time t. Errors: AG_ELIMIT (too many samples; an `execution` error),
 * AG_EUNSUPPORTED, AG_EIO/AG_ECORRUPT/AG_ENOMEM from the store. */
int ag_eval_instant(ag_store_t *s, const ag_pq_node_t *n, int64_t t, const ag_eval_opts_t *o,
                    ag_value_t *out, ag_errmsg_t *e);
/* Evaluates `n` at start, start+step, ... <= end into a matrix. AG_EINVAL when the expression
 * is not a scalar or instant vector ("invalid expression type ..."). */
int ag_eval_range(ag_store_t *s, const ag_pq_node_t *n, int64_t start, int64_t end, int64_t step,
                  const ag_eval_opts_t *o, ag_value_t *out, ag_errmsg_t *e);

#endif
