/* ag_promql.h - PromQL-lite: lexer and parser into an AST.
 *
 * The parser (daemon/promql) reads the whole PromQL 2.42 grammar, so that syntax and type errors
 * anywhere are reported as Prometheus reports them, and builds an AST for the subset implemented
 * so far: number and string literals, instant and range vector selectors with all four matcher
 * types, `offset`, and parentheses. Everything else that is valid PromQL is rejected with
 * AG_EUNSUPPORTED and a message naming the feature (`binary operator "+" is not supported yet`,
 * `function "rate" is not supported yet`, `aggregation "sum" is not supported yet`, `subqueries
 * are not supported yet`, `the @ modifier is not supported yet`, `unary operator "-" is not
 * supported yet`), so clients get a clean 400 instead of a wrong answer.
 * Nodes are owned by the tree: ag_promql_free releases everything ag_promql_parse allocated.
 */
#ifndef AG_PROMQL_H
#define AG_PROMQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ag_buf.h"
#include "ag_err.h"
#include "ag_matcher.h"

typedef enum {
    AG_PQ_NUMBER = 1,  /* number literal, including NaN, Inf, hex, 1_000 and unary minus */
    AG_PQ_STRING,      /* string literal: "..", '..' or `..` with Go escapes resolved */
    AG_PQ_VECTOR_SEL,  /* instant vector selector: name{matchers} [offset d] */
    AG_PQ_MATRIX_SEL,  /* range vector selector: name{matchers}[range] [offset d] */
    AG_PQ_PAREN,       /* ( expr ) */
} ag_pq_node_type_t;

typedef struct ag_pq_node ag_pq_node_t;

struct ag_pq_node {
    ag_pq_node_type_t type;
    int pos;                       /* byte offset of the node's first token in the query */
    union {
        double number;
        struct {
            char *s;               /* owned, NUL-terminated, escapes resolved */
            size_t len;
        } string;
        struct {
            char *metric_name;     /* owned; NULL when the selector has no bare metric name */
            ag_matcher_t *matchers;/* owned array; when named, matchers[0] is __name__="metric_name"
                                      (Prometheus appends it last; the order has no meaning) */
            size_t nmatchers;
            int64_t range_ms;      /* > 0 for AG_PQ_MATRIX_SEL, 0 otherwise */
            int64_t offset_ms;     /* may be negative */
        } sel;
        ag_pq_node_t *paren;       /* owned */
    } u;
};

/* Parses `query` (len bytes; NUL bytes are just invalid characters). On success *out owns the
 * tree. On failure *out is NULL and the result is AG_EINVAL (syntax or type error, worded like
 * Prometheus' parser: "1:5: parse error: unexpected end of input", first error only), or
 * AG_EUNSUPPORTED (valid PromQL outside the subset; message without position prefix), or
 * AG_ENOMEM; `e` gets the message and e->offset the byte offset it refers to. Queries nested
 * deeper than 1000 levels are rejected with AG_EINVAL to bound stack use. */
int ag_promql_parse(const char *query, size_t len, ag_pq_node_t **out, ag_errmsg_t *e);
void ag_promql_free(ag_pq_node_t *n);
/* Appends the canonical PromQL text of the tree, as Prometheus' String() (what
 * /api/v1/format_query returns): `foo{a="b",c=~"x"}[5m] offset 1m` with matchers sorted and the
 * name's own __name__ matcher omitted, strings Go-quoted, numbers as Go's %v ("1e+06", "+Inf",
 * "NaN"). The text parses back to an equal tree. */
void ag_promql_format(const ag_pq_node_t *n, ag_buf_t *out);

#endif
