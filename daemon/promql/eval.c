/* eval.c - evaluates PromQL-lite trees against the store (see ag_eval.h).
 *
 * A selector is resolved once per query: the store loads every matching series' samples for
 * the whole window the query can look at, and the steps of a range query then walk each
 * series with a moving index, so a range query costs one selection, not one per step.
 */
#include "ag_eval.h"

#include <stdlib.h>
#include <string.h>

static bool is_stale(double v)
{
    uint64_t b;
    memcpy(&b, &v, 8);
    return b == AG_STALE_NAN_BITS;
}

static const ag_pq_node_t *unparen(const ag_pq_node_t *n)
{
    while (n->type == AG_PQ_PAREN) n = n->u.paren;
    return n;
}

/* a - b, saturating, for window bounds near the ends of int64. */
static int64_t sub_sat(int64_t a, int64_t b)
{
    if (b > 0 && a < INT64_MIN + b) return INT64_MIN;
    if (b < 0 && a > INT64_MAX + b) return INT64_MAX;
    return a - b;
}

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

/* Moves the labels of selection entry `sd` into `sv` (no copy). */
static void take_labels(ag_series_val_t *sv, ag_series_data_t *sd)
{
    sv->labels = sd->labels;
    sv->labels_len = sd->labels_len;
    sd->labels = NULL;
}

static int select_window(ag_store_t *s, const ag_pq_node_t *n, int64_t mint, int64_t maxt,
                         const ag_eval_opts_t *o, ag_selection_t *sel, ag_errmsg_t *e)
{
    return ag_store_select(s, n->u.sel.matchers, n->u.sel.nmatchers, mint, maxt, true,
                           o->max_samples, sel, e);
}

int ag_eval_instant(ag_store_t *s, const ag_pq_node_t *node, int64_t t, const ag_eval_opts_t *o,
                    ag_value_t *out, ag_errmsg_t *e)
{
    memset(out, 0, sizeof *out);
    const ag_pq_node_t *n = unparen(node);
    out->t = t;
    switch (n->type) {
    case AG_PQ_NUMBER:
        out->type = AG_VAL_SCALAR;
        out->scalar = n->u.number;
        return AG_OK;
    case AG_PQ_STRING:
        out->type = AG_VAL_STRING;
        out->str = malloc(n->u.string.len + 1);
        if (!out->str) return AG_ENOMEM;
        memcpy(out->str, n->u.string.s, n->u.string.len + 1);
        out->str_len = n->u.string.len;
        return AG_OK;
    case AG_PQ_VECTOR_SEL:
    case AG_PQ_MATRIX_SEL: break;
    default:
        return ag_errmsg_set(e, AG_EUNSUPPORTED, n->pos, "expression is not supported yet");
    }
    bool matrix = n->type == AG_PQ_MATRIX_SEL;
    int64_t ref = sub_sat(t, n->u.sel.offset_ms);
    int64_t window = matrix ? n->u.sel.range_ms : o->lookback_ms;
    ag_selection_t sel;
    int rc = select_window(s, n, sub_sat(ref, window), ref, o, &sel, e);
    if (rc) return rc;
    out->type = matrix ? AG_VAL_MATRIX : AG_VAL_VECTOR;
    out->series = calloc(sel.n ? sel.n : 1, sizeof *out->series);
    if (!out->series) {
        ag_selection_free(&sel);
        return AG_ENOMEM;
    }
    for (size_t i = 0; i < sel.n; i++) {
        ag_series_data_t *sd = &sel.series[i];
        ag_series_val_t *sv = &out->series[out->n];
        if (!matrix) {
            const ag_sample_t *last = &sd->samples[sd->n - 1];
            if (is_stale(last->v)) continue;
            if (!(sv->points = malloc(sizeof *sv->points))) goto nomem;
            sv->points[0].t = t;
            sv->points[0].v = last->v;
            sv->n = 1;
        } else {
            if (!(sv->points = malloc(sd->n * sizeof *sv->points))) goto nomem;
            for (size_t k = 0; k < sd->n; k++) {
                if (is_stale(sd->samples[k].v)) continue;
                sv->points[sv->n].t = sd->samples[k].t;
                sv->points[sv->n].v = sd->samples[k].v;
                sv->n++;
            }
            if (!sv->n) {
                free(sv->points);
                sv->points = NULL;
                continue;
            }
        }
        take_labels(sv, sd);
        out->n++;
    }
    ag_selection_free(&sel);
    return AG_OK;
nomem:
    ag_selection_free(&sel);
    ag_value_free(out);
    return AG_ENOMEM;
}

int ag_eval_range(ag_store_t *s, const ag_pq_node_t *node, int64_t start, int64_t end, int64_t step,
                  const ag_eval_opts_t *o, ag_value_t *out, ag_errmsg_t *e)
{
    memset(out, 0, sizeof *out);
    const ag_pq_node_t *n = unparen(node);
    if (step <= 0 || end < start) return ag_errmsg_set(e, AG_EINVAL, -1, "invalid range");
    size_t nsteps = (size_t)((end - start) / step) + 1;
    out->type = AG_VAL_MATRIX;
    switch (n->type) {
    case AG_PQ_NUMBER: {
        out->series = calloc(1, sizeof *out->series);
        if (!out->series) return AG_ENOMEM;
        ag_series_val_t *sv = &out->series[0];
        sv->points = malloc(nsteps * sizeof *sv->points);
        sv->labels = malloc(1);
        if (!sv->points || !sv->labels) {
            out->n = 1;
            ag_value_free(out);
            return AG_ENOMEM;
        }
        for (size_t k = 0; k < nsteps; k++) {
            sv->points[k].t = start + (int64_t)k * step;
            sv->points[k].v = n->u.number;
        }
        sv->n = nsteps;
        out->n = 1;
        return AG_OK;
    }
    case AG_PQ_STRING:
        return ag_errmsg_set(e, AG_EINVAL, n->pos,
                             "invalid expression type \"string\" for range query, must be "
                             "Scalar or instant Vector");
    case AG_PQ_MATRIX_SEL:
        return ag_errmsg_set(e, AG_EINVAL, n->pos,
                             "invalid expression type \"range vector\" for range query, must be "
                             "Scalar or instant Vector");
    case AG_PQ_VECTOR_SEL: break;
    default:
        return ag_errmsg_set(e, AG_EUNSUPPORTED, n->pos, "expression is not supported yet");
    }
    int64_t off = n->u.sel.offset_ms, lb = o->lookback_ms;
    ag_selection_t sel;
    int rc = select_window(s, n, sub_sat(sub_sat(start, off), lb), sub_sat(end, off), o, &sel, e);
    if (rc) return rc;
    out->series = calloc(sel.n ? sel.n : 1, sizeof *out->series);
    if (!out->series) {
        ag_selection_free(&sel);
        return AG_ENOMEM;
    }
    for (size_t i = 0; i < sel.n; i++) {
        ag_series_data_t *sd = &sel.series[i];
        ag_series_val_t *sv = &out->series[out->n];
        size_t j = 0;
        for (size_t k = 0; k < nsteps; k++) {
            int64_t ts = start + (int64_t)k * step;
            int64_t ref = sub_sat(ts, off);
            while (j + 1 < sd->n && sd->samples[j + 1].t <= ref) j++;
            const ag_sample_t *cand = &sd->samples[j];
            if (cand->t > ref || cand->t < sub_sat(ref, lb) || is_stale(cand->v)) continue;
            if (!sv->points && !(sv->points = malloc(nsteps * sizeof *sv->points))) {
                ag_selection_free(&sel);
                ag_value_free(out);
                return AG_ENOMEM;
            }
            sv->points[sv->n].t = ts;
            sv->points[sv->n].v = cand->v;
            sv->n++;
        }
        if (!sv->n) continue;
        take_labels(sv, sd);
        out->n++;
    }
    ag_selection_free(&sel);
    return AG_OK;
}
