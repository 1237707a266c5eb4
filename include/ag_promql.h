/* ag_promql.h - PromQL-lite: lexer and parser into an AST.
 *
 * The parser (daemon/promql) reads the whole PromQL 2.42 grammar, so that syntax and type errors
 * anywhere are reported as Prometheus reports them, type-checks the tree the way Prometheus'
 * checkAST does, and builds the AST below for every expression kind. What the evaluator does not
 * implement is refused there (AG_EUNSUPPORTED, a clean 400 naming the feature), never answered
 * approximately.
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
    AG_PQ_NUMBER = 1,  /* number literal, including NaN, Inf, hex; unary minus on a literal folds */
    AG_PQ_STRING,      /* string literal: "..", '..' or `..` with Go escapes resolved */
    AG_PQ_VECTOR_SEL,  /* instant vector selector: name{matchers} [offset d] [@ t] */
    AG_PQ_MATRIX_SEL,  /* range vector selector: name{matchers}[range] [offset d] [@ t] */
    AG_PQ_PAREN,       /* ( expr ) */
    AG_PQ_UNARY,       /* -expr or +expr on anything but a number literal */
    AG_PQ_BINARY,      /* lhs op [bool] [on|ignoring(...)] [group_left|group_right(...)] rhs */
    AG_PQ_AGGREGATE,   /* op [by|without (...)] ([param,] expr) */
    AG_PQ_CALL,        /* func(args...) */
    AG_PQ_SUBQUERY,    /* expr[range:step] [offset d] [@ t] */
} ag_pq_node_type_t;

/* The value type of a node's result, as Prometheus' type checker assigns it. */
typedef enum {
    AG_PQ_T_SCALAR = 1,
    AG_PQ_T_VECTOR,
    AG_PQ_T_MATRIX,
    AG_PQ_T_STRING,
} ag_pq_vtype_t;

typedef enum {
    AG_PQ_OP_ADD = 1, AG_PQ_OP_SUB, AG_PQ_OP_MUL, AG_PQ_OP_DIV, AG_PQ_OP_MOD, AG_PQ_OP_POW,
    AG_PQ_OP_ATAN2,
    AG_PQ_OP_EQL, AG_PQ_OP_NEQ, AG_PQ_OP_GTR, AG_PQ_OP_LSS, AG_PQ_OP_GTE, AG_PQ_OP_LTE,
    AG_PQ_OP_AND, AG_PQ_OP_OR, AG_PQ_OP_UNLESS,
} ag_pq_binop_t;

typedef enum {
    AG_PQ_AGG_SUM = 1, AG_PQ_AGG_AVG, AG_PQ_AGG_COUNT, AG_PQ_AGG_MIN, AG_PQ_AGG_MAX,
    AG_PQ_AGG_GROUP, AG_PQ_AGG_STDDEV, AG_PQ_AGG_STDVAR, AG_PQ_AGG_TOPK, AG_PQ_AGG_BOTTOMK,
    AG_PQ_AGG_QUANTILE, AG_PQ_AGG_COUNT_VALUES,
} ag_pq_aggop_t;

/* Vector matching cardinality of a binary operation between two vectors. */
typedef enum {
    AG_PQ_CARD_ONE_TO_ONE = 0, AG_PQ_CARD_MANY_TO_ONE, AG_PQ_CARD_ONE_TO_MANY,
    AG_PQ_CARD_MANY_TO_MANY, /* and, or, unless */
} ag_pq_card_t;

/* The `@` modifier of a selector or subquery. */
typedef enum { AG_PQ_AT_NONE = 0, AG_PQ_AT_TIME, AG_PQ_AT_START, AG_PQ_AT_END } ag_pq_at_t;

/* A list of label names (owned strings). */
typedef struct ag_pq_names {
    char **v;
    size_t n;
} ag_pq_names_t;

typedef struct ag_pq_node ag_pq_node_t;

struct ag_pq_node {
    ag_pq_node_type_t type;
    ag_pq_vtype_t vtype;           /* result type of this node */
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
            ag_pq_at_t at;
            int64_t at_ms;         /* for AG_PQ_AT_TIME */
        } sel;
        ag_pq_node_t *paren;       /* owned */
        struct {
            char op;               /* '-' or '+' */
            ag_pq_node_t *expr;    /* owned */
        } unary;
        struct {
            ag_pq_binop_t op;
            ag_pq_node_t *lhs, *rhs; /* owned */
            bool return_bool;      /* comparison with `bool` */
            /* Vector matching; meaningful when both sides are vectors. */
            ag_pq_card_t card;
            bool on;               /* on(...) given (else ignoring(...) or nothing) */
            ag_pq_names_t matching;/* the on/ignoring label list */
            ag_pq_names_t include; /* group_left/group_right(...) labels */
        } binary;
        struct {
            ag_pq_aggop_t op;
            ag_pq_node_t *expr;    /* owned */
            ag_pq_node_t *param;   /* owned; topk/bottomk/quantile/count_values parameter, else NULL */
            bool without;          /* without(...) rather than by(...) */
            ag_pq_names_t grouping;
        } agg;
        struct {
            char *name;            /* owned function name, e.g. "rate" */
            ag_pq_node_t **args;   /* owned array of owned nodes */
            size_t nargs;
        } call;
        struct {
            ag_pq_node_t *expr;    /* owned */
            int64_t range_ms;
            int64_t step_ms;       /* 0 = the default (the query's evaluation interval) */
            int64_t offset_ms;
            ag_pq_at_t at;
            int64_t at_ms;
        } subquery;
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
