/* fuzz_promql.c - libFuzzer target for the PromQL parser: whatever parses must format to text
 * that parses again into the same tree (positions aside) and formats identically (a fixed
 * point), and errors must come with a NUL-terminated message. Crashes, leaks and sanitizer
 * reports are findings too. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_promql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_names(const ag_pq_names_t *a, const ag_pq_names_t *b)
{
    if (a->n != b->n) return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0) return false;
    return true;
}

/* Structural equality of two trees, positions aside. Selector matchers are compared through the
 * formatted text (the formatter sorts them). */
static bool same_tree(const ag_pq_node_t *a, const ag_pq_node_t *b)
{
    if (a->type != b->type || a->vtype != b->vtype) return false;
    switch (a->type) {
    case AG_PQ_NUMBER:
        if (isnan(a->u.number)) return isnan(b->u.number);
        return memcmp(&a->u.number, &b->u.number, sizeof a->u.number) == 0;
    case AG_PQ_STRING:
        return a->u.string.len == b->u.string.len &&
               memcmp(a->u.string.s, b->u.string.s, a->u.string.len) == 0;
    case AG_PQ_VECTOR_SEL:
    case AG_PQ_MATRIX_SEL:
        return (a->u.sel.metric_name == NULL) == (b->u.sel.metric_name == NULL) &&
               (!a->u.sel.metric_name || strcmp(a->u.sel.metric_name, b->u.sel.metric_name) == 0) &&
               a->u.sel.nmatchers == b->u.sel.nmatchers && a->u.sel.range_ms == b->u.sel.range_ms &&
               a->u.sel.offset_ms == b->u.sel.offset_ms && a->u.sel.at == b->u.sel.at &&
               a->u.sel.at_ms == b->u.sel.at_ms;
    case AG_PQ_PAREN: return same_tree(a->u.paren, b->u.paren);
    case AG_PQ_UNARY:
        return a->u.unary.op == b->u.unary.op && same_tree(a->u.unary.expr, b->u.unary.expr);
    case AG_PQ_BINARY: {
        if (a->u.binary.op != b->u.binary.op || a->u.binary.return_bool != b->u.binary.return_bool ||
            a->u.binary.on != b->u.binary.on || !same_names(&a->u.binary.matching, &b->u.binary.matching))
            return false;
        /* Like Prometheus 2.42's printer, an empty ignoring() drops group_left/right(...). */
        if (a->u.binary.on || a->u.binary.matching.n > 0) {
            if (a->u.binary.card != b->u.binary.card ||
                !same_names(&a->u.binary.include, &b->u.binary.include))
                return false;
        }
        return same_tree(a->u.binary.lhs, b->u.binary.lhs) && same_tree(a->u.binary.rhs, b->u.binary.rhs);
    }
    case AG_PQ_AGGREGATE:
        if (a->u.agg.op != b->u.agg.op || a->u.agg.without != b->u.agg.without ||
            !same_names(&a->u.agg.grouping, &b->u.agg.grouping) ||
            (a->u.agg.param == NULL) != (b->u.agg.param == NULL))
            return false;
        if (a->u.agg.param && !same_tree(a->u.agg.param, b->u.agg.param)) return false;
        return same_tree(a->u.agg.expr, b->u.agg.expr);
    case AG_PQ_CALL:
        if (strcmp(a->u.call.name, b->u.call.name) != 0 || a->u.call.nargs != b->u.call.nargs)
            return false;
        for (size_t i = 0; i < a->u.call.nargs; i++)
            if (!same_tree(a->u.call.args[i], b->u.call.args[i])) return false;
        return true;
    case AG_PQ_SUBQUERY:
        return a->u.subquery.range_ms == b->u.subquery.range_ms &&
               a->u.subquery.step_ms == b->u.subquery.step_ms &&
               a->u.subquery.offset_ms == b->u.subquery.offset_ms &&
               a->u.subquery.at == b->u.subquery.at && a->u.subquery.at_ms == b->u.subquery.at_ms &&
               same_tree(a->u.subquery.expr, b->u.subquery.expr);
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ag_pq_node_t *n = NULL;
    ag_errmsg_t e;
    memset(&e, 0x55, sizeof e);
    int rc = ag_promql_parse((const char *)data, size, &n, &e);
    if (rc != AG_OK) {
        if (n != NULL || memchr(e.msg, 0, sizeof e.msg) == NULL) abort();
        if (rc != AG_EINVAL && rc != AG_EUNSUPPORTED && rc != AG_ENOMEM) abort();
        if (e.offset < -1 || e.offset > (long)size) abort();
        return 0;
    }
    ag_buf_t b1 = AG_BUF_INIT;
    ag_promql_format(n, &b1);
    if (!ag_buf_ok(&b1)) abort();
    ag_pq_node_t *n2 = NULL;
    rc = ag_promql_parse(b1.data, b1.len, &n2, &e);
    if (rc != AG_OK) {
        fprintf(stderr, "formatted query does not parse: %s\n  -> %s\n", b1.data, e.msg);
        abort();
    }
    ag_buf_t b2 = AG_BUF_INIT;
    ag_promql_format(n2, &b2);
    if (!ag_buf_ok(&b2) || b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0) {
        fprintf(stderr, "format is not a fixed point:\n  %s\n  %s\n", b1.data, b2.data);
        abort();
    }
    if (!same_tree(n, n2)) {
        fprintf(stderr, "formatted query parses to a different tree: %s\n", b1.data);
        abort();
    }
    ag_buf_free(&b1);
    ag_buf_free(&b2);
    ag_promql_free(n);
    ag_promql_free(n2);
    return 0;
}
