/* ag_promql.h - PromQL-lite: lexer and parser into an AST.
 *
 * The parser accepts the full PromQL token set so that errors point at the right place, and
 * builds an AST for the subset implemented so far: number and string literals, instant and range
 * vector selectors with all four matcher types, `offset`, and parentheses. Everything else that
 * is valid PromQL is rejected with AG_EUNSUPPORTED and a message naming the feature (for example
 * "binary operator + is not supported yet"), so clients get a clean 400 instead of a wrong answer.
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
            ag_matcher_t *matchers;/* owned array; includes __name__="metric_name" when named */
            size_t nmatchers;
            int64_t range_ms;      /* > 0 for AG_PQ_MATRIX_SEL, 0 otherwise */
            int64_t offset_ms;     /* may be negative */
        } sel;
        ag_pq_node_t *paren;       /* owned */
    } u;
};

/* Parses `query` (len bytes). On success *out owns the tree. On failure returns AG_EINVAL (syntax
 * error) or AG_EUNSUPPORTED (valid PromQL outside the subset) or AG_ENOMEM, and fills `e` with a
 * message and the byte offset, worded like Prometheus' parser ("1:5: parse error: unexpected
 * ..."). */
int ag_promql_parse(const char *query, size_t len, ag_pq_node_t **out, ag_errmsg_t *e);
void ag_promql_free(ag_pq_node_t *n);
/* Appends the canonical PromQL text of the tree (the form /api/v1/format_query returns). */
void ag_promql_format(const ag_pq_node_t *n, ag_buf_t *out);

#endif
