/* parser.c - PromQL parser and canonical formatter (see ag_promql.h).
 *
 * A recursive-descent (precedence climbing) parser for the whole PromQL 2.42 expression grammar:
 * binary operators with their precedence and vector-matching modifiers, unary operators,
 * function calls, aggregations, subqueries, offset and @ modifiers. The whole query is parsed
 * into an internal tree first, so that syntax errors anywhere are reported the way Prometheus
 * reports them (same texts, same "<line>:<col>: parse error: " prefix). Then, like Prometheus'
 * checkAST, the tree is type-checked (every node gets its value type), and then the whole tree is
 * converted into the public ag_pq_node_t tree; what the evaluator does not implement is its
 * business (AG_EUNSUPPORTED there), the parser accepts all of PromQL 2.42.
 *
 * Deviation from Prometheus (documented in ag_promql.h): the __name__ matcher of a named
 * selector comes first in its matcher list (Prometheus appends it).
 */
#include "ag_promql.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ag_time.h"
#include "lexer.h"

/* Deepest nesting (parentheses, unary operators, operator chains) the parser accepts. It bounds
 * the C stack used by the recursive parser, checker, formatter and evaluator. */
#define PQ_MAX_DEPTH 1000

/* ---- the internal tree ------------------------------------------------------------------------ */

enum { PN_NUMBER = 1, PN_STRING, PN_VSEL, PN_MSEL, PN_SUBQ, PN_PAREN, PN_UNARY, PN_BINARY, PN_CALL,
       PN_AGG };
enum { VT_NONE, VT_SCALAR, VT_VECTOR, VT_MATRIX, VT_STRING };
enum { CARD_ONE_TO_ONE, CARD_MANY_TO_ONE, CARD_ONE_TO_MANY, CARD_MANY_TO_MANY };

typedef struct span {
    int pos, len;
} span_t;

typedef struct pq_func {
    const char *name;
    const char *args; /* one letter per argument: s scalar, v vector, m matrix, S string */
    int variadic;     /* 0 fixed, n > 0: up to n optional trailing args, -1: unlimited */
    int ret;
} pq_func_t;

/* The functions of Prometheus 2.42 (promql/parser/functions.go), plus Augur's Holt-Winters
 * forecast and anomaly functions (predict_hw*, anomaly_score_hw; see functions_hw.c). */
static const pq_func_t functions[] = {
    {"abs", "v", 0, VT_VECTOR},
    {"absent", "v", 0, VT_VECTOR},
    {"absent_over_time", "m", 0, VT_VECTOR},
    {"acos", "v", 0, VT_VECTOR},
    {"acosh", "v", 0, VT_VECTOR},
    {"anomaly_score_hw", "m", 0, VT_VECTOR},
    {"asin", "v", 0, VT_VECTOR},
    {"asinh", "v", 0, VT_VECTOR},
    {"atan", "v", 0, VT_VECTOR},
    {"atanh", "v", 0, VT_VECTOR},
    {"avg_over_time", "m", 0, VT_VECTOR},
    {"ceil", "v", 0, VT_VECTOR},
    {"changes", "m", 0, VT_VECTOR},
    {"clamp", "vss", 0, VT_VECTOR},
    {"clamp_max", "vs", 0, VT_VECTOR},
    {"clamp_min", "vs", 0, VT_VECTOR},
    {"cos", "v", 0, VT_VECTOR},
    {"cosh", "v", 0, VT_VECTOR},
    {"count_over_time", "m", 0, VT_VECTOR},
    {"days_in_month", "v", 1, VT_VECTOR},
    {"day_of_month", "v", 1, VT_VECTOR},
    {"day_of_week", "v", 1, VT_VECTOR},
    {"day_of_year", "v", 1, VT_VECTOR},
    {"deg", "v", 0, VT_VECTOR},
    {"delta", "m", 0, VT_VECTOR},
    {"deriv", "m", 0, VT_VECTOR},
    {"exp", "v", 0, VT_VECTOR},
    {"floor", "v", 0, VT_VECTOR},
    {"histogram_count", "v", 0, VT_VECTOR},
    {"histogram_fraction", "ssv", 0, VT_VECTOR},
    {"histogram_quantile", "sv", 0, VT_VECTOR},
    {"histogram_sum", "v", 0, VT_VECTOR},
    {"holt_winters", "mss", 0, VT_VECTOR},
    {"hour", "v", 1, VT_VECTOR},
    {"idelta", "m", 0, VT_VECTOR},
    {"increase", "m", 0, VT_VECTOR},
    {"irate", "m", 0, VT_VECTOR},
    {"label_join", "vSSS", -1, VT_VECTOR},
    {"label_replace", "vSSSS", 0, VT_VECTOR},
    {"last_over_time", "m", 0, VT_VECTOR},
    {"ln", "v", 0, VT_VECTOR},
    {"log10", "v", 0, VT_VECTOR},
    {"log2", "v", 0, VT_VECTOR},
    {"max_over_time", "m", 0, VT_VECTOR},
    {"min_over_time", "m", 0, VT_VECTOR},
    {"minute", "v", 1, VT_VECTOR},
    {"month", "v", 1, VT_VECTOR},
    {"pi", "", 0, VT_SCALAR},
    {"predict_hw", "ms", 0, VT_VECTOR},
    {"predict_hw_lower", "ms", 0, VT_VECTOR},
    {"predict_hw_upper", "ms", 0, VT_VECTOR},
    {"predict_linear", "ms", 0, VT_VECTOR},
    {"present_over_time", "m", 0, VT_VECTOR},
    {"quantile_over_time", "sm", 0, VT_VECTOR},
    {"rad", "v", 0, VT_VECTOR},
    {"rate", "m", 0, VT_VECTOR},
    {"resets", "m", 0, VT_VECTOR},
    {"round", "vs", 1, VT_VECTOR},
    {"scalar", "v", 0, VT_SCALAR},
    {"sgn", "v", 0, VT_VECTOR},
    {"sin", "v", 0, VT_VECTOR},
    {"sinh", "v", 0, VT_VECTOR},
    {"sort", "v", 0, VT_VECTOR},
    {"sort_desc", "v", 0, VT_VECTOR},
    {"sqrt", "v", 0, VT_VECTOR},
    {"stddev_over_time", "m", 0, VT_VECTOR},
    {"stdvar_over_time", "m", 0, VT_VECTOR},
    {"sum_over_time", "m", 0, VT_VECTOR},
    {"tan", "v", 0, VT_VECTOR},
    {"tanh", "v", 0, VT_VECTOR},
    {"time", "", 0, VT_SCALAR},
    {"timestamp", "v", 0, VT_VECTOR},
    {"vector", "s", 0, VT_VECTOR},
    {"year", "v", 1, VT_VECTOR},
};

typedef struct pn pn_t;
struct pn {
    int kind;
    int start; /* byte offset where the node's text starts (Prometheus' PositionRange.Start) */
    int depth; /* height of the subtree */
    int vtype; /* value type, set by check() */
    pq_tok_t op; /* unary/binary operator, aggregation */
    int op_pos;
    double num;
    char *str; /* string literal (owned) */
    size_t slen;
    char *name; /* selector metric name (owned), or NULL */
    ag_matcher_t *m; /* selector matchers (owned) */
    size_t nm, mcap;
    int64_t range_ms, step_ms, offset_ms;
    int at_pos;      /* position of an @ modifier, -1 when none */
    int at_kind;     /* AG_PQ_AT_* */
    int64_t at_ms;   /* AG_PQ_AT_TIME: the timestamp in ms */
    bool ret_bool, on;
    int card;
    span_t *mlabels; /* on(...) / ignoring(...) labels, pointing into the query */
    size_t nmlabels;
    span_t *incl; /* group_left(...) / group_right(...) labels */
    size_t nincl;
    bool without; /* aggregation: without(...) rather than by(...) */
    span_t *grouping; /* aggregation: by/without labels */
    size_t ngrouping;
    pn_t *a, *b;
    pn_t **args; /* call and aggregation arguments */
    size_t nargs;
    const pq_func_t *fn;
    int name_len; /* call: length of the function name at `start` */
};

typedef struct parser {
    pq_lexer_t lex;
    const char *in;
    int len;
    pq_item_t tok;
    bool have_tok;
    int agg_depth; /* > 0 inside an aggregation: generic errors say "in aggregation" */
    int depth;
    int err; /* first error: code, position, message (without the position prefix) */
    int err_pos;
    char err_msg[256];
} parser_t;

static void set_error(parser_t *p, int code, int pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_error(parser_t *p, int code, int pos, const char *fmt, ...)
{
    if (p->err) return; /* like Prometheus, report the first error only */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err_msg, sizeof p->err_msg, fmt, ap);
    va_end(ap);
    p->err = code;
    p->err_pos = pos;
}

static void nomem(parser_t *p)
{
    set_error(p, AG_ENOMEM, -1, "out of memory");
}

static void pn_free(pn_t *n)
{
    if (!n) return;
    free(n->str);
    free(n->name);
    for (size_t i = 0; i < n->nm; i++) ag_matcher_free(&n->m[i]);
    free(n->m);
    free(n->mlabels);
    free(n->incl);
    free(n->grouping);
    pn_free(n->a);
    pn_free(n->b);
    for (size_t i = 0; i < n->nargs; i++) pn_free(n->args[i]);
    free(n->args);
    free(n);
}

static pn_t *pn_new(parser_t *p, int kind, int start)
{
    pn_t *n = calloc(1, sizeof *n);
    if (!n) {
        nomem(p);
        return NULL;
    }
    n->kind = kind;
    n->start = start;
    n->depth = 1;
    n->at_pos = -1;
    return n;
}

/* Records the subtree height of n from its children; fails when the tree gets too deep. */
static bool pn_set_depth(parser_t *p, pn_t *n)
{
    int d = 0;
    if (n->a && n->a->depth > d) d = n->a->depth;
    if (n->b && n->b->depth > d) d = n->b->depth;
    for (size_t i = 0; i < n->nargs; i++)
        if (n->args[i]->depth > d) d = n->args[i]->depth;
    n->depth = d + 1;
    if (n->depth > PQ_MAX_DEPTH) {
        set_error(p, AG_EINVAL, n->start, "query is nested too deeply (more than %d levels)",
                  PQ_MAX_DEPTH);
        return false;
    }
    return true;
}

/* ---- tokens ----------------------------------------------------------------------------------- */

static pq_item_t *peek(parser_t *p)
{
    if (!p->have_tok) {
        do {
            pq_lex_next(&p->lex, &p->tok);
        } while (p->tok.type == PQ_COMMENT);
        p->have_tok = true;
        if (p->tok.type == PQ_ERROR) set_error(p, AG_EINVAL, p->tok.pos, "%s", p->lex.err);
    }
    return &p->tok;
}

static void advance(parser_t *p)
{
    p->have_tok = false;
}

/* Go's Item.desc(): how an unexpected token is named in error messages. */
static void item_desc(parser_t *p, const pq_item_t *t, ag_buf_t *b)
{
    const char *val = p->in + t->pos;
    size_t n = (size_t)t->len;
    switch (t->type) {
    case PQ_EOF: ag_buf_puts(b, "end of input"); return;
    case PQ_IDENTIFIER:
        ag_buf_puts(b, "identifier ");
        pq_quote(b, val, n, -1);
        return;
    case PQ_METRIC_IDENTIFIER:
        ag_buf_puts(b, "metric identifier ");
        pq_quote(b, val, n, -1);
        return;
    case PQ_NUMBER: ag_buf_puts(b, "number "); break;
    case PQ_STRING: ag_buf_puts(b, "string "); break;
    case PQ_DURATION: ag_buf_puts(b, "duration "); break;
    default:
        if (pq_is_keyword(t->type) || pq_is_operator(t->type) || pq_is_aggregator(t->type)) {
            ag_buf_puts(b, pq_is_keyword(t->type) ? "<" : pq_is_operator(t->type) ? "<op:" : "<aggr:");
            ag_buf_append(b, val, n);
            ag_buf_putc(b, '>');
            return;
        }
        break;
    }
    if (n > 10) {
        pq_quote(b, val, n, 10);
        ag_buf_puts(b, "...");
    } else {
        pq_quote(b, val, n, -1);
    }
}

/* Prometheus' parser.unexpected(context, expected), aimed at the current token. */
static void unexpected(parser_t *p, const char *context, const char *expected)
{
    pq_item_t *t = peek(p);
    if (t->type == PQ_ERROR || p->err) return; /* lexer errors are reported once */
    ag_buf_t b = AG_BUF_INIT;
    ag_buf_puts(&b, "unexpected ");
    item_desc(p, t, &b);
    if (context) {
        ag_buf_puts(&b, " in ");
        ag_buf_puts(&b, context);
    }
    if (expected) {
        ag_buf_puts(&b, ", expected ");
        ag_buf_puts(&b, expected);
    }
    if (!ag_buf_ok(&b)) nomem(p);
    else set_error(p, AG_EINVAL, t->pos, "%s", b.data);
    ag_buf_free(&b);
}

/* The catch-all syntax error: inside an aggregation yacc attributes it to the aggregation. */
static void unexpected_generic(parser_t *p)
{
    unexpected(p, p->agg_depth > 0 ? "aggregation" : NULL, NULL);
}

/* ---- literals --------------------------------------------------------------------------------- */

/* Go's strconv.ParseInt(s, 0, 64) on a lexed number token without underscores. */
static bool parse_go_int(const char *s, double *out)
{
    size_t n = strlen(s), i = 0;
    int base = 10;
    if (n >= 3 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    } else if (s[0] == '0') {
        base = 8;
        i = 1;
    }
    uint64_t v = 0;
    for (; i < n; i++) {
        int d;
        char c = s[i];
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return false;
        if (d >= base) return false;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (v > (uint64_t)INT64_MAX) return false;
    *out = (double)(int64_t)v;
    return true;
}

/* Go's strconv.ParseFloat on a lexed number token: 0 ok, 1 invalid syntax, 2 out of range. */
static int parse_go_float(const char *s, double *out)
{
    if (strcasecmp(s, "inf") == 0) {
        *out = INFINITY;
        return 0;
    }
    if (strcasecmp(s, "nan") == 0) {
        *out = NAN;
        return 0;
    }
    size_t i = 0;
    bool digits = false;
    while (s[i] >= '0' && s[i] <= '9') i++, digits = true;
    if (s[i] == '.') {
        i++;
        while (s[i] >= '0' && s[i] <= '9') i++, digits = true;
    }
    if (!digits) return 1;
    if (s[i] == 'e' || s[i] == 'E') {
        i++;
        if (s[i] == '+' || s[i] == '-') i++;
        if (s[i] < '0' || s[i] > '9') return 1;
        while (s[i] >= '0' && s[i] <= '9') i++;
    }
    if (s[i]) return 1;
    *out = strtod(s, NULL);
    return isinf(*out) ? 2 : 0;
}

/* parser.number(): ParseInt(base 0) first, then ParseFloat; errors name the token. */
static bool parse_number(parser_t *p, const pq_item_t *t, double *out)
{
    char stack[64];
    char *s = t->len < (int)sizeof stack ? stack : malloc((size_t)t->len + 1);
    if (!s) {
        nomem(p);
        return false;
    }
    size_t o = 0;
    for (int i = 0; i < t->len; i++)
        if (p->in[t->pos + i] != '_') s[o++] = p->in[t->pos + i];
    s[o] = 0;
    bool ok = true;
    if (!parse_go_int(s, out)) {
        int rc = parse_go_float(s, out);
        if (rc) {
            ag_buf_t b = AG_BUF_INIT;
            pq_quote(&b, p->in + t->pos, (size_t)t->len, -1);
            set_error(p, AG_EINVAL, t->pos, "error parsing number: strconv.ParseFloat: parsing %s: %s",
                      ag_buf_ok(&b) ? b.data : "?", rc == 2 ? "value out of range" : "invalid syntax");
            ag_buf_free(&b);
            ok = false;
        }
    }
    if (s != stack) free(s);
    return ok;
}

/* parseDuration of the parser: model.ParseDuration, and zero is not allowed. */
static bool parse_duration_tok(parser_t *p, const pq_item_t *t, int64_t *ms)
{
    char buf[128];
    if (t->len >= (int)sizeof buf) {
        set_error(p, AG_EINVAL, t->pos, "duration out of range");
        return false;
    }
    memcpy(buf, p->in + t->pos, (size_t)t->len);
    buf[t->len] = 0;
    ag_errmsg_t e;
    if (ag_parse_duration(buf, ms, &e) != AG_OK) {
        set_error(p, AG_EINVAL, t->pos, "%s", e.msg);
        return false;
    }
    if (*ms == 0) {
        set_error(p, AG_EINVAL, t->pos, "duration must be greater than 0");
        return false;
    }
    return true;
}

static void put_utf8(char *out, size_t *o, uint32_t r)
{
    if (r < 0x80) {
        out[(*o)++] = (char)r;
    } else if (r < 0x800) {
        out[(*o)++] = (char)(0xc0 | (r >> 6));
        out[(*o)++] = (char)(0x80 | (r & 0x3f));
    } else if (r < 0x10000) {
        out[(*o)++] = (char)(0xe0 | (r >> 12));
        out[(*o)++] = (char)(0x80 | ((r >> 6) & 0x3f));
        out[(*o)++] = (char)(0x80 | (r & 0x3f));
    } else {
        out[(*o)++] = (char)(0xf0 | (r >> 18));
        out[(*o)++] = (char)(0x80 | ((r >> 12) & 0x3f));
        out[(*o)++] = (char)(0x80 | ((r >> 6) & 0x3f));
        out[(*o)++] = (char)(0x80 | (r & 0x3f));
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
}

/* Resolves the escapes of a string token (quotes included); the lexer has validated them. */
static char *unquote(parser_t *p, const pq_item_t *t, size_t *len)
{
    const char *s = p->in + t->pos + 1;
    size_t n = (size_t)t->len - 2;
    char quote = p->in[t->pos];
    char *out = malloc(n + 1);
    if (!out) {
        nomem(p);
        return NULL;
    }
    size_t o = 0;
    if (quote == '`') {
        memcpy(out, s, n);
        o = n;
    } else {
        for (size_t i = 0; i < n;) {
            if (s[i] != '\\') {
                out[o++] = s[i++];
                continue;
            }
            char c = s[i + 1];
            i += 2;
            uint32_t v = 0;
            int digits = 0;
            switch (c) {
            case 'a': out[o++] = '\a'; break;
            case 'b': out[o++] = '\b'; break;
            case 'f': out[o++] = '\f'; break;
            case 'n': out[o++] = '\n'; break;
            case 'r': out[o++] = '\r'; break;
            case 't': out[o++] = '\t'; break;
            case 'v': out[o++] = '\v'; break;
            case 'x':
                for (; digits < 2; digits++) v = v * 16 + (uint32_t)hexval(s[i++]);
                out[o++] = (char)v;
                break;
            case 'u':
            case 'U':
                for (int k = c == 'u' ? 4 : 8; digits < k; digits++) v = v * 16 + (uint32_t)hexval(s[i++]);
                put_utf8(out, &o, v); /* a \u escape is at most as long as its UTF-8 */
                break;
            default:
                if (c >= '0' && c <= '7') {
                    v = (uint32_t)(c - '0');
                    for (digits = 1; digits < 3; digits++) v = v * 8 + (uint32_t)(s[i++] - '0');
                    out[o++] = (char)v;
                } else {
                    out[o++] = c; /* \\ and the quote character */
                }
                break;
            }
        }
    }
    out[o] = 0;
    *len = o;
    return out;
}

/* ---- grammar ---------------------------------------------------------------------------------- */

static pn_t *parse_expr(parser_t *p, int min_prec);

/* Binary operator precedence (higher binds tighter), 0 when t is not a binary operator. */
static int binop_prec(pq_tok_t t)
{
    switch (t) {
    case PQ_LOR: return 1;
    case PQ_LAND: case PQ_LUNLESS: return 2;
    case PQ_EQLC: case PQ_NEQ: case PQ_LTE: case PQ_LSS: case PQ_GTE: case PQ_GTR: return 3;
    case PQ_ADD: case PQ_SUB: return 4;
    case PQ_MUL: case PQ_DIV: case PQ_MOD: case PQ_ATAN2: return 5;
    case PQ_POW: return 6;
    default: return 0;
    }
}
#define PREC_POW 6

static bool is_comparison(pq_tok_t t)
{
    return t == PQ_EQLC || t == PQ_NEQ || t == PQ_LTE || t == PQ_LSS || t == PQ_GTE || t == PQ_GTR;
}

static bool is_set_op(pq_tok_t t)
{
    return t == PQ_LAND || t == PQ_LOR || t == PQ_LUNLESS;
}

/* Keywords that may still be a metric name where an expression starts. */
static bool is_metric_keyword(pq_tok_t t)
{
    return t == PQ_BY || t == PQ_WITHOUT || t == PQ_LAND || t == PQ_LOR || t == PQ_LUNLESS ||
           t == PQ_OFFSET || t == PQ_START || t == PQ_END;
}

/* Tokens that may be a label name in grouping clauses (the grammar's maybe_label). */
static bool is_maybe_label(pq_tok_t t)
{
    return t == PQ_IDENTIFIER || t == PQ_METRIC_IDENTIFIER || pq_is_aggregator(t) ||
           pq_is_keyword(t) || t == PQ_LAND || t == PQ_LOR || t == PQ_LUNLESS ||
           t == PQ_START || t == PQ_END || t == PQ_ATAN2;
}

/* Can t directly follow a complete expression? */
static bool can_follow_expr(pq_tok_t t)
{
    return t == PQ_EOF || t == PQ_RIGHT_PAREN || t == PQ_COMMA || binop_prec(t) ||
           t == PQ_OFFSET || t == PQ_LEFT_BRACKET || t == PQ_AT || t == PQ_LEFT_BRACE;
}

/* Can t start an expression? */
static bool can_start_expr(pq_tok_t t)
{
    return t == PQ_NUMBER || t == PQ_STRING || t == PQ_LEFT_PAREN || t == PQ_LEFT_BRACE ||
           t == PQ_IDENTIFIER || t == PQ_METRIC_IDENTIFIER || pq_is_aggregator(t) ||
           is_metric_keyword(t) || t == PQ_ADD || t == PQ_SUB;
}

/* Arrays below grow by doubling: their capacity is the next power of two of the count. */
static bool grow(parser_t *p, void **arr, size_t n, size_t elem)
{
    if (n >= 4 && (n & (n - 1)) != 0) return true; /* room left */
    void *a = realloc(*arr, (n < 4 ? 4 : 2 * n) * elem);
    if (!a) {
        nomem(p);
        return false;
    }
    *arr = a;
    return true;
}

static bool span_push(parser_t *p, span_t **arr, size_t *n, int pos, int len)
{
    if (!grow(p, (void **)arr, *n, sizeof **arr)) return false;
    (*arr)[*n].pos = pos;
    (*arr)[*n].len = len;
    (*n)++;
    return true;
}

static bool arg_push(parser_t *p, pn_t *n, pn_t *arg)
{
    if (!grow(p, (void **)&n->args, n->nargs, sizeof *n->args)) {
        pn_free(arg);
        return false;
    }
    n->args[n->nargs++] = arg;
    return true;
}

/* grouping_labels: "(" [label {"," label} [","]] ")". */
static bool parse_grouping_labels(parser_t *p, span_t **labels, size_t *nlabels)
{
    pq_item_t *t = peek(p);
    if (t->type != PQ_LEFT_PAREN) {
        unexpected(p, "grouping opts", "\"(\"");
        return false;
    }
    advance(p);
    t = peek(p);
    if (t->type == PQ_RIGHT_PAREN) {
        advance(p);
        return true;
    }
    for (;;) {
        t = peek(p);
        if (p->err) return false;
        bool label = is_maybe_label(t->type);
        if (label) { /* isLabel: no ':' */
            for (int i = 0; i < t->len; i++)
                if (p->in[t->pos + i] == ':') label = false;
        }
        if (!label) {
            unexpected(p, "grouping opts", "label");
            return false;
        }
        if (!span_push(p, labels, nlabels, t->pos, t->len)) return false;
        advance(p);
        t = peek(p);
        if (t->type == PQ_COMMA) {
            advance(p);
            if (peek(p)->type == PQ_RIGHT_PAREN) {
                advance(p);
                return true;
            }
            continue;
        }
        if (t->type == PQ_RIGHT_PAREN) {
            advance(p);
            return true;
        }
        unexpected(p, "grouping opts", "\",\" or \")\"");
        return false;
    }
}

/* The "(" args ")" of a function call or aggregation; arguments are appended to n->args. */
static bool parse_call_body(parser_t *p, pn_t *n)
{
    pq_item_t *t = peek(p);
    if (t->type != PQ_LEFT_PAREN) {
        unexpected_generic(p);
        return false;
    }
    advance(p);
    if (peek(p)->type == PQ_RIGHT_PAREN) {
        advance(p);
        return true;
    }
    for (;;) {
        pn_t *arg = parse_expr(p, 1);
        if (!arg || !arg_push(p, n, arg)) return false;
        t = peek(p);
        if (t->type == PQ_COMMA) {
            int comma = t->pos;
            advance(p);
            t = peek(p);
            if (p->err) return false;
            if (!can_start_expr(t->type)) {
                set_error(p, AG_EINVAL, comma, "trailing commas not allowed in function call args");
                return false;
            }
            continue;
        }
        if (t->type == PQ_RIGHT_PAREN) {
            advance(p);
            return true;
        }
        unexpected_generic(p);
        return false;
    }
}

/* label_matchers: "{" [matcher {"," matcher} [","]] "}", appended to sel->m. */
static bool parse_label_matchers(parser_t *p, pn_t *sel)
{
    advance(p); /* { */
    pq_item_t *t = peek(p);
    if (t->type == PQ_RIGHT_BRACE) {
        advance(p);
        return true;
    }
    for (;;) {
        t = peek(p);
        if (t->type != PQ_IDENTIFIER) {
            unexpected(p, "label matching", "identifier or \"}\"");
            return false;
        }
        pq_item_t label = *t;
        advance(p);
        t = peek(p);
        ag_match_type_t mt;
        switch (t->type) {
        case PQ_EQL: mt = AG_MATCH_EQ; break;
        case PQ_NEQ: mt = AG_MATCH_NEQ; break;
        case PQ_EQL_REGEX: mt = AG_MATCH_RE; break;
        case PQ_NEQ_REGEX: mt = AG_MATCH_NRE; break;
        default:
            unexpected(p, "label matching", "label matching operator");
            return false;
        }
        advance(p);
        t = peek(p);
        if (t->type != PQ_STRING) {
            unexpected(p, "label matching", "string");
            return false;
        }
        pq_item_t value = *t;
        advance(p);
        size_t vlen;
        char *v = unquote(p, &value, &vlen);
        char *name = strndup(p->in + label.pos, (size_t)label.len);
        if (!v || !name) {
            free(v);
            free(name);
            nomem(p);
            return false;
        }
        if (sel->nm == sel->mcap) {
            size_t cap = sel->mcap ? sel->mcap * 2 : 4;
            ag_matcher_t *m = realloc(sel->m, cap * sizeof *m);
            if (!m) {
                free(v);
                free(name);
                nomem(p);
                return false;
            }
            sel->m = m;
            sel->mcap = cap;
        }
        ag_errmsg_t e = {{0}, -1};
        int rc = ag_matcher_init(&sel->m[sel->nm], mt, name, v, vlen, &e);
        free(v);
        free(name);
        if (rc == AG_ENOMEM) {
            nomem(p);
            return false;
        }
        if (rc) {
            set_error(p, AG_EINVAL, label.pos, "%s", e.msg[0] ? e.msg : "invalid label matcher");
            return false;
        }
        sel->nm++;
        t = peek(p);
        if (t->type == PQ_COMMA) {
            advance(p);
            if (peek(p)->type == PQ_RIGHT_BRACE) {
                advance(p);
                return true;
            }
            continue;
        }
        if (t->type == PQ_RIGHT_BRACE) {
            advance(p);
            return true;
        }
        unexpected(p, "label matching", "\",\" or \"}\"");
        return false;
    }
}

/* A vector selector starting with a metric name token (already consumed). */
static pn_t *parse_selector(parser_t *p, pq_item_t name)
{
    pn_t *sel = pn_new(p, PN_VSEL, name.pos);
    if (!sel) return NULL;
    sel->name = strndup(p->in + name.pos, (size_t)name.len);
    sel->m = calloc(4, sizeof *sel->m);
    sel->mcap = 4;
    if (!sel->name || !sel->m) {
        nomem(p);
        pn_free(sel);
        return NULL;
    }
    /* The __name__ matcher goes first. */
    int rc = ag_matcher_init(&sel->m[0], AG_MATCH_EQ, "__name__", sel->name, strlen(sel->name), NULL);
    if (rc) {
        nomem(p);
        pn_free(sel);
        return NULL;
    }
    sel->nm = 1;
    if (peek(p)->type == PQ_LEFT_BRACE && !parse_label_matchers(p, sel)) {
        pn_free(sel);
        return NULL;
    }
    return sel;
}

static pn_t *parse_call(parser_t *p, pq_item_t name)
{
    pn_t *call = pn_new(p, PN_CALL, name.pos);
    if (!call) return NULL;
    call->name_len = name.len;
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
        if (strlen(functions[i].name) == (size_t)name.len &&
            memcmp(functions[i].name, p->in + name.pos, (size_t)name.len) == 0)
            call->fn = &functions[i];
    }
    if (!parse_call_body(p, call) || !pn_set_depth(p, call)) {
        pn_free(call);
        return NULL;
    }
    if (!call->fn) {
        ag_buf_t b = AG_BUF_INIT;
        pq_quote(&b, p->in + name.pos, (size_t)name.len, -1);
        set_error(p, AG_EINVAL, name.pos, "unknown function with name %s", ag_buf_ok(&b) ? b.data : "?");
        ag_buf_free(&b);
        pn_free(call);
        return NULL;
    }
    return call;
}

static pn_t *parse_aggregation(parser_t *p, pq_item_t op)
{
    pn_t *agg = pn_new(p, PN_AGG, op.pos);
    if (!agg) return NULL;
    agg->op = op.type;
    agg->op_pos = op.pos;
    p->agg_depth++;
    bool ok = true, have_mod = false;
    pq_tok_t t = peek(p)->type;
    if (t == PQ_BY || t == PQ_WITHOUT) {
        advance(p);
        agg->without = t == PQ_WITHOUT;
        ok = parse_grouping_labels(p, &agg->grouping, &agg->ngrouping);
        have_mod = true;
    }
    ok = ok && parse_call_body(p, agg);
    if (ok && !have_mod) {
        t = peek(p)->type;
        if (t == PQ_BY || t == PQ_WITHOUT) {
            advance(p);
            agg->without = t == PQ_WITHOUT;
            ok = parse_grouping_labels(p, &agg->grouping, &agg->ngrouping);
        }
    }
    p->agg_depth--;
    if (ok && !p->err && agg->nargs == 0) {
        set_error(p, AG_EINVAL, op.pos, "no arguments for aggregate expression provided");
        ok = false;
    }
    size_t want = (op.type == PQ_TOPK || op.type == PQ_BOTTOMK || op.type == PQ_COUNT_VALUES ||
                   op.type == PQ_QUANTILE) ? 2 : 1;
    if (ok && !p->err && agg->nargs != want) {
        set_error(p, AG_EINVAL, op.pos,
                  "wrong number of arguments for aggregate expression provided, expected %zu, got %zu",
                  want, agg->nargs);
        ok = false;
    }
    if (!ok || p->err || !pn_set_depth(p, agg)) {
        pn_free(agg);
        return NULL;
    }
    return agg;
}

static pn_t *parse_primary(parser_t *p)
{
    pq_item_t *tp = peek(p);
    if (p->err) return NULL;
    pq_item_t t = *tp;
    switch (t.type) {
    case PQ_NUMBER: {
        advance(p);
        pn_t *n = pn_new(p, PN_NUMBER, t.pos);
        if (n && !parse_number(p, &t, &n->num)) {
            pn_free(n);
            return NULL;
        }
        return n;
    }
    case PQ_STRING: {
        advance(p);
        pn_t *n = pn_new(p, PN_STRING, t.pos);
        if (n && !(n->str = unquote(p, &t, &n->slen))) {
            pn_free(n);
            return NULL;
        }
        return n;
    }
    case PQ_LEFT_PAREN: {
        advance(p);
        pn_t *inner = parse_expr(p, 1);
        if (!inner) return NULL;
        if (peek(p)->type != PQ_RIGHT_PAREN) {
            unexpected_generic(p);
            pn_free(inner);
            return NULL;
        }
        advance(p);
        pn_t *n = pn_new(p, PN_PAREN, t.pos);
        if (!n) {
            pn_free(inner);
            return NULL;
        }
        n->a = inner;
        if (!pn_set_depth(p, n)) {
            pn_free(n);
            return NULL;
        }
        return n;
    }
    case PQ_LEFT_BRACE: {
        pn_t *sel = pn_new(p, PN_VSEL, t.pos);
        if (sel && !parse_label_matchers(p, sel)) {
            pn_free(sel);
            return NULL;
        }
        return sel;
    }
    case PQ_IDENTIFIER:
        advance(p);
        if (peek(p)->type == PQ_LEFT_PAREN) return parse_call(p, t);
        if (p->err) return NULL;
        return parse_selector(p, t);
    default: break;
    }
    if (t.type == PQ_METRIC_IDENTIFIER || is_metric_keyword(t.type)) {
        advance(p);
        if (p->err) return NULL;
        return parse_selector(p, t);
    }
    if (pq_is_aggregator(t.type)) {
        advance(p);
        pq_tok_t next = peek(p)->type;
        if (p->err) return NULL;
        if (next != PQ_LEFT_PAREN && next != PQ_BY && next != PQ_WITHOUT && can_follow_expr(next))
            return parse_selector(p, t); /* "sum" alone is a metric name */
        return parse_aggregation(p, t);
    }
    unexpected_generic(p);
    return NULL;
}

/* The node an offset or @ modifier applies to (the vector selector inside a range selector), or
 * NULL when modifiers are not allowed on n. */
static pn_t *modifier_target(pn_t *n)
{
    if (n->kind == PN_VSEL || n->kind == PN_SUBQ) return n;
    if (n->kind == PN_MSEL) return n->a;
    return NULL;
}

static bool parse_offset(parser_t *p, pn_t *e)
{
    advance(p); /* offset */
    pq_item_t *t = peek(p);
    bool neg = false;
    if (t->type == PQ_SUB) {
        advance(p);
        neg = true;
        t = peek(p);
    }
    if (t->type != PQ_DURATION) {
        unexpected(p, "offset", "duration");
        return false;
    }
    pq_item_t d = *t;
    advance(p);
    int64_t ms;
    if (!parse_duration_tok(p, &d, &ms)) return false;
    pn_t *target = modifier_target(e);
    if (!target) {
        set_error(p, AG_EINVAL, e->start,
                  "offset modifier must be preceded by an instant vector selector or range vector "
                  "selector or a subquery");
        return false;
    }
    if (target->offset_ms != 0) {
        set_error(p, AG_EINVAL, e->start, "offset may not be set multiple times");
        return false;
    }
    target->offset_ms = neg ? -ms : ms;
    return true;
}

static bool parse_at(parser_t *p, pn_t *e)
{
    int at_pos = peek(p)->pos;
    advance(p); /* @ */
    pq_item_t *t = peek(p);
    bool preproc = false, neg = false;
    int preproc_kind = AG_PQ_AT_NONE;
    double ts = 0;
    if (t->type == PQ_ADD || t->type == PQ_SUB) {
        neg = t->type == PQ_SUB;
        advance(p);
        t = peek(p);
        if (t->type != PQ_NUMBER) {
            unexpected(p, "@", "timestamp");
            return false;
        }
    }
    if (t->type == PQ_NUMBER) {
        pq_item_t num = *t;
        advance(p);
        if (!parse_number(p, &num, &ts)) return false;
        if (neg) ts = -ts;
    } else if (t->type == PQ_START || t->type == PQ_END) {
        preproc_kind = t->type == PQ_START ? AG_PQ_AT_START : AG_PQ_AT_END;
        advance(p);
        if (peek(p)->type != PQ_LEFT_PAREN) {
            unexpected(p, "@", "timestamp");
            return false;
        }
        advance(p);
        if (peek(p)->type != PQ_RIGHT_PAREN) {
            unexpected(p, "@", "timestamp");
            return false;
        }
        advance(p);
        preproc = true;
    } else {
        unexpected(p, "@", "timestamp");
        return false;
    }
    if (!preproc && (isnan(ts) || isinf(ts) || ts >= 9223372036854775807.0 ||
                     ts <= -9223372036854775808.0)) {
        char num[64];
        if (isnan(ts)) snprintf(num, sizeof num, "NaN");
        else if (isinf(ts)) snprintf(num, sizeof num, ts > 0 ? "+Inf" : "-Inf");
        else snprintf(num, sizeof num, "%f", ts);
        set_error(p, AG_EINVAL, e->start, "timestamp out of bounds for @ modifier: %s", num);
        return false;
    }
    pn_t *target = modifier_target(e);
    if (!target) {
        set_error(p, AG_EINVAL, e->start,
                  "@ modifier must be preceded by an instant vector selector or range vector "
                  "selector or a subquery");
        return false;
    }
    if (target->at_pos >= 0) {
        set_error(p, AG_EINVAL, e->start, "@ <timestamp> may not be set multiple times");
        return false;
    }
    target->at_pos = at_pos;
    if (preproc) {
        target->at_kind = preproc_kind;
    } else {
        /* timestamp.FromFloatSeconds: int64(math.Round(ts * 1000)); Go on amd64 turns an
         * out-of-range conversion into math.MinInt64. */
        double r = round(ts * 1000.0);
        target->at_kind = AG_PQ_AT_TIME;
        target->at_ms = r >= -9223372036854775808.0 && r < 9223372036854775808.0 ? (int64_t)r
                                                                                  : INT64_MIN;
    }
    return true;
}

/* "[" range "]" or "[" range ":" [step] "]" after expression e (consumed on failure). */
static pn_t *parse_range_or_subquery(parser_t *p, pn_t *e)
{
    int lb = peek(p)->pos;
    advance(p); /* [ */
    pq_item_t *t = peek(p);
    int64_t range, step = 0;
    if (t->type != PQ_DURATION) {
        unexpected(p, "subquery selector", "duration");
        goto fail;
    }
    pq_item_t d = *t;
    advance(p);
    if (!parse_duration_tok(p, &d, &range)) goto fail;
    t = peek(p);
    if (t->type == PQ_RIGHT_BRACKET) {
        advance(p);
        const char *msg = NULL;
        if (e->kind != PN_VSEL) msg = "ranges only allowed for vector selectors";
        else if (e->offset_ms != 0) msg = "no offset modifiers allowed before range";
        else if (e->at_pos >= 0) msg = "no @ modifiers allowed before range";
        if (msg) {
            set_error(p, AG_EINVAL, lb, "%s", msg);
            goto fail;
        }
        pn_t *m = pn_new(p, PN_MSEL, e->start);
        if (!m) goto fail;
        m->a = e;
        m->range_ms = range;
        if (!pn_set_depth(p, m)) {
            pn_free(m);
            return NULL;
        }
        return m;
    }
    if (t->type != PQ_COLON) {
        unexpected(p, "subquery or range", "\":\" or \"]\"");
        goto fail;
    }
    advance(p);
    t = peek(p);
    if (t->type == PQ_DURATION) {
        d = *t;
        advance(p);
        if (!parse_duration_tok(p, &d, &step)) goto fail;
        if (peek(p)->type != PQ_RIGHT_BRACKET) {
            unexpected(p, "subquery selector", "\"]\"");
            goto fail;
        }
    } else if (t->type != PQ_RIGHT_BRACKET) {
        unexpected(p, "subquery selector", "duration or \"]\"");
        goto fail;
    }
    advance(p); /* ] */
    pn_t *s = pn_new(p, PN_SUBQ, e->start);
    if (!s) goto fail;
    s->a = e;
    s->range_ms = range;
    s->step_ms = step;
    if (!pn_set_depth(p, s)) {
        pn_free(s);
        return NULL;
    }
    return s;
fail:
    pn_free(e);
    return NULL;
}

/* Postfix modifiers bind tighter than every operator: [range], [range:step], offset, @. */
static pn_t *parse_postfix(parser_t *p, pn_t *e)
{
    while (e) {
        pq_tok_t t = peek(p)->type;
        if (p->err) break;
        if (t == PQ_LEFT_BRACKET) {
            e = parse_range_or_subquery(p, e);
        } else if (t == PQ_OFFSET) {
            if (!parse_offset(p, e)) break;
        } else if (t == PQ_AT) {
            if (!parse_at(p, e)) break;
        } else {
            return e;
        }
    }
    pn_free(e);
    return NULL;
}

static pn_t *parse_unary(parser_t *p)
{
    pq_item_t t = *peek(p);
    if (p->err) return NULL;
    if (t.type != PQ_ADD && t.type != PQ_SUB) return parse_postfix(p, parse_primary(p));
    advance(p);
    /* The operand takes everything binding tighter than '*' (yacc's %prec MUL). */
    pn_t *e = parse_expr(p, PREC_POW);
    if (!e) return NULL;
    if (e->kind == PN_NUMBER) { /* -1 is a number literal, not an operator */
        if (t.type == PQ_SUB) e->num = -e->num;
        e->start = t.pos;
        return e;
    }
    pn_t *u = pn_new(p, PN_UNARY, t.pos);
    if (!u) {
        pn_free(e);
        return NULL;
    }
    u->op = t.type;
    u->op_pos = t.pos;
    u->a = e;
    if (!pn_set_depth(p, u)) {
        pn_free(u);
        return NULL;
    }
    return u;
}

static pn_t *parse_expr(parser_t *p, int min_prec)
{
    if (++p->depth > PQ_MAX_DEPTH) {
        set_error(p, AG_EINVAL, peek(p)->pos, "query is nested too deeply (more than %d levels)",
                  PQ_MAX_DEPTH);
        p->depth--;
        return NULL;
    }
    pn_t *lhs = parse_unary(p);
    while (lhs) {
        pq_item_t t = *peek(p);
        if (p->err) break;
        int prec = binop_prec(t.type);
        if (!prec || prec < min_prec) break;
        advance(p);
        pn_t *bin = pn_new(p, PN_BINARY, lhs->start);
        if (!bin) break;
        bin->op = t.type;
        bin->op_pos = t.pos;
        bin->card = CARD_ONE_TO_ONE;
        bin->a = lhs;
        lhs = bin;
        /* bool, on(...)/ignoring(...), group_left(...)/group_right(...) */
        if (peek(p)->type == PQ_BOOL) {
            advance(p);
            bin->ret_bool = true;
        }
        pq_tok_t m = peek(p)->type;
        if (m == PQ_ON || m == PQ_IGNORING) {
            advance(p);
            bin->on = m == PQ_ON;
            if (!parse_grouping_labels(p, &bin->mlabels, &bin->nmlabels)) break;
            m = peek(p)->type;
            if (m == PQ_GROUP_LEFT || m == PQ_GROUP_RIGHT) {
                advance(p);
                bin->card = m == PQ_GROUP_LEFT ? CARD_MANY_TO_ONE : CARD_ONE_TO_MANY;
                if (peek(p)->type == PQ_LEFT_PAREN &&
                    !parse_grouping_labels(p, &bin->incl, &bin->nincl))
                    break;
            }
        }
        if (p->err) break;
        bin->b = parse_expr(p, t.type == PQ_POW ? prec : prec + 1); /* ^ is right-associative */
        if (!bin->b || !pn_set_depth(p, bin)) break;
    }
    p->depth--;
    if (p->err) {
        pn_free(lhs);
        return NULL;
    }
    return lhs;
}

/* ---- type checking (Prometheus' checkAST) ----------------------------------------------------- */

static const char *documented_type(int t)
{
    switch (t) {
    case VT_SCALAR: return "scalar";
    case VT_VECTOR: return "instant vector";
    case VT_MATRIX: return "range vector";
    case VT_STRING: return "string";
    default: return "none";
    }
}

static const char *value_type_name(int t)
{
    switch (t) {
    case VT_SCALAR: return "scalar";
    case VT_VECTOR: return "vector";
    case VT_MATRIX: return "matrix";
    case VT_STRING: return "string";
    default: return "none";
    }
}

static int check(parser_t *p, pn_t *n);

static void expect_type(parser_t *p, pn_t *n, int want, const char *context)
{
    int t = check(p, n);
    if (t != want)
        set_error(p, AG_EINVAL, n->start, "expected type %s in %s, got %s", documented_type(want),
                  context, documented_type(t));
}

/* Appends a Go-quoted copy of s[0..n) to a fixed buffer (for messages). */
static const char *quoted(ag_buf_t *b, const char *s, size_t n)
{
    ag_buf_reset(b);
    pq_quote(b, s, n, -1);
    return ag_buf_ok(b) ? b->data : "?";
}

static void check_binary(parser_t *p, pn_t *n)
{
    int lt = check(p, n->a);
    int rt = check(p, n->b);
    const char *opname = pq_tok_str(n->op);
    if (n->ret_bool && !is_comparison(n->op))
        set_error(p, AG_EINVAL, n->op_pos, "bool modifier can only be used on comparison operators");
    if (is_comparison(n->op) && !n->ret_bool && rt == VT_SCALAR && lt == VT_SCALAR)
        set_error(p, AG_EINVAL, n->op_pos, "comparisons between scalars must use BOOL modifier");
    if (is_set_op(n->op) && n->card == CARD_ONE_TO_ONE) n->card = CARD_MANY_TO_MANY;
    if (n->on) {
        for (size_t i = 0; i < n->nmlabels; i++) {
            for (size_t j = 0; j < n->nincl; j++) {
                span_t a = n->mlabels[i], b = n->incl[j];
                if (a.len == b.len && memcmp(p->in + a.pos, p->in + b.pos, (size_t)a.len) == 0) {
                    ag_buf_t q = AG_BUF_INIT;
                    set_error(p, AG_EINVAL, n->op_pos,
                              "label %s must not occur in ON and GROUP clause at once",
                              quoted(&q, p->in + a.pos, (size_t)a.len));
                    ag_buf_free(&q);
                }
            }
        }
    }
    if (lt != VT_SCALAR && lt != VT_VECTOR)
        set_error(p, AG_EINVAL, n->a->start,
                  "binary expression must contain only scalar and instant vector types");
    if (rt != VT_SCALAR && rt != VT_VECTOR)
        set_error(p, AG_EINVAL, n->b->start,
                  "binary expression must contain only scalar and instant vector types");
    if (lt != VT_VECTOR || rt != VT_VECTOR) {
        if (n->nmlabels > 0)
            set_error(p, AG_EINVAL, n->start, "vector matching only allowed between instant vectors");
    } else if (is_set_op(n->op)) {
        if (n->card == CARD_ONE_TO_MANY || n->card == CARD_MANY_TO_ONE)
            set_error(p, AG_EINVAL, n->start, "no grouping allowed for \"%s\" operation", opname);
        if (n->card != CARD_MANY_TO_MANY)
            set_error(p, AG_EINVAL, n->start, "set operations must always be many-to-many");
    }
    if ((lt == VT_SCALAR || rt == VT_SCALAR) && is_set_op(n->op))
        set_error(p, AG_EINVAL, n->start, "set operator \"%s\" not allowed in binary scalar expression",
                  opname);
}

static void check_call(parser_t *p, pn_t *n)
{
    const pq_func_t *fn = n->fn;
    size_t nargs = strlen(fn->args);
    char ctx[96];
    snprintf(ctx, sizeof ctx, "call to function \"%s\"", fn->name);
    if (fn->variadic == 0) {
        if (nargs != n->nargs)
            set_error(p, AG_EINVAL, n->start, "expected %zu argument(s) in call to \"%s\", got %zu",
                      nargs, fn->name, n->nargs);
    } else {
        size_t na = nargs - 1;
        if (na > n->nargs)
            set_error(p, AG_EINVAL, n->start,
                      "expected at least %zu argument(s) in call to \"%s\", got %zu", na, fn->name,
                      n->nargs);
        else if (fn->variadic > 0 && na + (size_t)fn->variadic < n->nargs)
            set_error(p, AG_EINVAL, n->start,
                      "expected at most %zu argument(s) in call to \"%s\", got %zu",
                      na + (size_t)fn->variadic, fn->name, n->nargs);
    }
    for (size_t i = 0; i < n->nargs; i++) {
        size_t k = i;
        if (k >= nargs) {
            if (fn->variadic == 0) break;
            k = nargs - 1;
        }
        int want = fn->args[k] == 's' ? VT_SCALAR : fn->args[k] == 'v' ? VT_VECTOR
                 : fn->args[k] == 'm' ? VT_MATRIX : VT_STRING;
        expect_type(p, n->args[i], want, ctx);
    }
}

/* Returns the value type of n and records the first type error (checkAST). */
static int check(parser_t *p, pn_t *n)
{
    int t = VT_NONE;
    switch (n->kind) {
    case PN_NUMBER: t = VT_SCALAR; break;
    case PN_STRING: t = VT_STRING; break;
    case PN_VSEL:
        if (n->name) {
            for (size_t i = 1; i < n->nm; i++) {
                if (strcmp(n->m[i].name, "__name__") == 0) {
                    ag_buf_t a = AG_BUF_INIT, b = AG_BUF_INIT;
                    quoted(&a, n->name, strlen(n->name));
                    quoted(&b, n->m[i].value, n->m[i].value_len);
                    set_error(p, AG_EINVAL, n->start, "metric name must not be set twice: %s or %s",
                              ag_buf_ok(&a) ? a.data : "?", ag_buf_ok(&b) ? b.data : "?");
                    ag_buf_free(&a);
                    ag_buf_free(&b);
                }
            }
        } else {
            bool not_empty = false;
            for (size_t i = 0; i < n->nm && !not_empty; i++)
                if (!ag_matcher_matches(&n->m[i], "", 0)) not_empty = true;
            if (!not_empty)
                set_error(p, AG_EINVAL, n->start,
                          "vector selector must contain at least one non-empty matcher");
        }
        t = VT_VECTOR;
        break;
    case PN_MSEL:
        check(p, n->a);
        t = VT_MATRIX;
        break;
    case PN_SUBQ: {
        int it = check(p, n->a);
        if (it != VT_VECTOR)
            set_error(p, AG_EINVAL, n->start, "subquery is only allowed on instant vector, got %s instead",
                      value_type_name(it));
        t = VT_MATRIX;
        break;
    }
    case PN_PAREN: t = check(p, n->a); break;
    case PN_UNARY:
        t = check(p, n->a);
        if (t != VT_SCALAR && t != VT_VECTOR)
            set_error(p, AG_EINVAL, n->start,
                      "unary expression only allowed on expressions of type scalar or instant "
                      "vector, got \"%s\"", documented_type(t));
        break;
    case PN_BINARY:
        check_binary(p, n);
        t = n->a->vtype == VT_SCALAR && n->b->vtype == VT_SCALAR ? VT_SCALAR : VT_VECTOR;
        break;
    case PN_CALL:
        check_call(p, n);
        t = n->fn->ret;
        break;
    case PN_AGG:
        if (n->nargs == 2) {
            expect_type(p, n->args[1], VT_VECTOR, "aggregation expression");
            expect_type(p, n->args[0], n->op == PQ_COUNT_VALUES ? VT_STRING : VT_SCALAR,
                        "aggregation parameter");
        } else {
            expect_type(p, n->args[0], VT_VECTOR, "aggregation expression");
        }
        t = VT_VECTOR;
        break;
    default: break;
    }
    n->vtype = t;
    return t;
}

/* ---- the public tree -------------------------------------------------------------------------- */

static void names_free(ag_pq_names_t *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void ag_promql_free(ag_pq_node_t *n)
{
    if (!n) return;
    switch (n->type) {
    case AG_PQ_STRING: free(n->u.string.s); break;
    case AG_PQ_VECTOR_SEL:
    case AG_PQ_MATRIX_SEL:
        free(n->u.sel.metric_name);
        for (size_t i = 0; i < n->u.sel.nmatchers; i++) ag_matcher_free(&n->u.sel.matchers[i]);
        free(n->u.sel.matchers);
        break;
    case AG_PQ_PAREN: ag_promql_free(n->u.paren); break;
    case AG_PQ_UNARY: ag_promql_free(n->u.unary.expr); break;
    case AG_PQ_BINARY:
        ag_promql_free(n->u.binary.lhs);
        ag_promql_free(n->u.binary.rhs);
        names_free(&n->u.binary.matching);
        names_free(&n->u.binary.include);
        break;
    case AG_PQ_AGGREGATE:
        ag_promql_free(n->u.agg.expr);
        ag_promql_free(n->u.agg.param);
        names_free(&n->u.agg.grouping);
        break;
    case AG_PQ_CALL:
        free(n->u.call.name);
        for (size_t i = 0; i < n->u.call.nargs; i++) ag_promql_free(n->u.call.args[i]);
        free(n->u.call.args);
        break;
    case AG_PQ_SUBQUERY: ag_promql_free(n->u.subquery.expr); break;
    default: break;
    }
    free(n);
}

static ag_pq_vtype_t public_vtype(int t)
{
    switch (t) {
    case VT_SCALAR: return AG_PQ_T_SCALAR;
    case VT_VECTOR: return AG_PQ_T_VECTOR;
    case VT_MATRIX: return AG_PQ_T_MATRIX;
    default: return AG_PQ_T_STRING;
    }
}

static ag_pq_binop_t public_binop(pq_tok_t t)
{
    switch (t) {
    case PQ_ADD: return AG_PQ_OP_ADD;
    case PQ_SUB: return AG_PQ_OP_SUB;
    case PQ_MUL: return AG_PQ_OP_MUL;
    case PQ_DIV: return AG_PQ_OP_DIV;
    case PQ_MOD: return AG_PQ_OP_MOD;
    case PQ_POW: return AG_PQ_OP_POW;
    case PQ_ATAN2: return AG_PQ_OP_ATAN2;
    case PQ_EQLC: return AG_PQ_OP_EQL;
    case PQ_NEQ: return AG_PQ_OP_NEQ;
    case PQ_GTR: return AG_PQ_OP_GTR;
    case PQ_LSS: return AG_PQ_OP_LSS;
    case PQ_GTE: return AG_PQ_OP_GTE;
    case PQ_LTE: return AG_PQ_OP_LTE;
    case PQ_LAND: return AG_PQ_OP_AND;
    case PQ_LOR: return AG_PQ_OP_OR;
    default: return AG_PQ_OP_UNLESS;
    }
}

static ag_pq_aggop_t public_aggop(pq_tok_t t)
{
    switch (t) {
    case PQ_SUM: return AG_PQ_AGG_SUM;
    case PQ_AVG: return AG_PQ_AGG_AVG;
    case PQ_COUNT: return AG_PQ_AGG_COUNT;
    case PQ_MIN: return AG_PQ_AGG_MIN;
    case PQ_MAX: return AG_PQ_AGG_MAX;
    case PQ_GROUP: return AG_PQ_AGG_GROUP;
    case PQ_STDDEV: return AG_PQ_AGG_STDDEV;
    case PQ_STDVAR: return AG_PQ_AGG_STDVAR;
    case PQ_TOPK: return AG_PQ_AGG_TOPK;
    case PQ_BOTTOMK: return AG_PQ_AGG_BOTTOMK;
    case PQ_QUANTILE: return AG_PQ_AGG_QUANTILE;
    default: return AG_PQ_AGG_COUNT_VALUES;
    }
}

static ag_pq_card_t public_card(int card)
{
    switch (card) {
    case CARD_MANY_TO_ONE: return AG_PQ_CARD_MANY_TO_ONE;
    case CARD_ONE_TO_MANY: return AG_PQ_CARD_ONE_TO_MANY;
    case CARD_MANY_TO_MANY: return AG_PQ_CARD_MANY_TO_MANY;
    default: return AG_PQ_CARD_ONE_TO_ONE;
    }
}

/* Copies label spans of the query into an owned name list. */
static bool names_from_spans(parser_t *p, ag_pq_names_t *l, const span_t *s, size_t n)
{
    if (n == 0) return true;
    l->v = calloc(n, sizeof *l->v);
    if (!l->v) {
        nomem(p);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        l->v[i] = strndup(p->in + s[i].pos, (size_t)s[i].len);
        if (!l->v[i]) {
            nomem(p);
            return false;
        }
        l->n++;
    }
    return true;
}

static ag_pq_node_t *convert(parser_t *p, pn_t *n);

/* Converts *child into *slot; false (error recorded) on failure. */
static bool convert_child(parser_t *p, pn_t *child, ag_pq_node_t **slot)
{
    *slot = convert(p, child);
    return *slot != NULL;
}

/* Moves a checked internal tree into public nodes (taking its allocations). */
static ag_pq_node_t *convert(parser_t *p, pn_t *n)
{
    ag_pq_node_t *o = calloc(1, sizeof *o);
    if (!o) {
        nomem(p);
        return NULL;
    }
    o->pos = n->start;
    o->vtype = public_vtype(n->vtype);
    bool ok = true;
    switch (n->kind) {
    case PN_NUMBER:
        o->type = AG_PQ_NUMBER;
        o->u.number = n->num;
        break;
    case PN_STRING:
        o->type = AG_PQ_STRING;
        o->u.string.s = n->str;
        o->u.string.len = n->slen;
        n->str = NULL;
        break;
    case PN_VSEL:
    case PN_MSEL: {
        pn_t *v = n->kind == PN_MSEL ? n->a : n;
        o->type = n->kind == PN_MSEL ? AG_PQ_MATRIX_SEL : AG_PQ_VECTOR_SEL;
        o->u.sel.metric_name = v->name;
        o->u.sel.matchers = v->m;
        o->u.sel.nmatchers = v->nm;
        o->u.sel.range_ms = n->kind == PN_MSEL ? n->range_ms : 0;
        o->u.sel.offset_ms = v->offset_ms;
        o->u.sel.at = (ag_pq_at_t)v->at_kind;
        o->u.sel.at_ms = v->at_ms;
        v->name = NULL;
        v->m = NULL;
        v->nm = 0;
        break;
    }
    case PN_PAREN:
        o->type = AG_PQ_PAREN;
        ok = convert_child(p, n->a, &o->u.paren);
        break;
    case PN_UNARY:
        o->type = AG_PQ_UNARY;
        o->u.unary.op = n->op == PQ_SUB ? '-' : '+';
        ok = convert_child(p, n->a, &o->u.unary.expr);
        break;
    case PN_BINARY:
        o->type = AG_PQ_BINARY;
        o->u.binary.op = public_binop(n->op);
        o->u.binary.return_bool = n->ret_bool;
        o->u.binary.card = AG_PQ_CARD_ONE_TO_ONE;
        /* Like checkAST, vector matching only exists between two instant vectors. */
        if (n->a->vtype == VT_VECTOR && n->b->vtype == VT_VECTOR) {
            o->u.binary.card = public_card(n->card);
            o->u.binary.on = n->on;
            ok = names_from_spans(p, &o->u.binary.matching, n->mlabels, n->nmlabels) &&
                 names_from_spans(p, &o->u.binary.include, n->incl, n->nincl);
        }
        ok = ok && convert_child(p, n->a, &o->u.binary.lhs) &&
             convert_child(p, n->b, &o->u.binary.rhs);
        break;
    case PN_AGG:
        o->type = AG_PQ_AGGREGATE;
        o->u.agg.op = public_aggop(n->op);
        o->u.agg.without = n->without;
        ok = names_from_spans(p, &o->u.agg.grouping, n->grouping, n->ngrouping);
        if (ok && n->nargs == 2) ok = convert_child(p, n->args[0], &o->u.agg.param);
        ok = ok && convert_child(p, n->args[n->nargs - 1], &o->u.agg.expr);
        break;
    case PN_CALL:
        o->type = AG_PQ_CALL;
        o->u.call.name = strdup(n->fn->name);
        o->u.call.args = calloc(n->nargs ? n->nargs : 1, sizeof *o->u.call.args);
        if (!o->u.call.name || !o->u.call.args) {
            nomem(p);
            ok = false;
            break;
        }
        for (size_t i = 0; ok && i < n->nargs; i++) {
            ok = convert_child(p, n->args[i], &o->u.call.args[i]);
            if (ok) o->u.call.nargs++;
        }
        break;
    case PN_SUBQ:
        o->type = AG_PQ_SUBQUERY;
        o->u.subquery.range_ms = n->range_ms;
        o->u.subquery.step_ms = n->step_ms;
        o->u.subquery.offset_ms = n->offset_ms;
        o->u.subquery.at = (ag_pq_at_t)n->at_kind;
        o->u.subquery.at_ms = n->at_ms;
        ok = convert_child(p, n->a, &o->u.subquery.expr);
        break;
    default: /* unreachable: every internal node kind has a public one */
        o->type = AG_PQ_NUMBER;
        set_error(p, AG_EUNSUPPORTED, n->start, "expression is not supported");
        ok = false;
        break;
    }
    if (!ok) {
        ag_promql_free(o);
        return NULL;
    }
    return o;
}

int ag_promql_parse(const char *query, size_t len, ag_pq_node_t **out, ag_errmsg_t *e)
{
    *out = NULL;
    parser_t *p = calloc(1, sizeof *p);
    if (!p) return ag_errmsg_set(e, AG_ENOMEM, -1, "out of memory");
    p->in = query;
    p->len = (int)len;
    pn_t *root = NULL;
    if (len > PQ_MAX_QUERY_LEN) {
        p->len = 0;
        set_error(p, AG_EINVAL, 0, "query is too long (more than %d bytes)", PQ_MAX_QUERY_LEN);
    } else {
        pq_lex_init(&p->lex, query, p->len);
        if (peek(p)->type == PQ_EOF) {
            set_error(p, AG_EINVAL, 0, "no expression found in input");
        } else {
            root = parse_expr(p, 1);
            if (root && peek(p)->type != PQ_EOF) unexpected_generic(p);
        }
    }
    if (!p->err) check(p, root);
    ag_pq_node_t *res = NULL;
    if (!p->err) res = convert(p, root);
    pn_free(root);
    int rc = p->err;
    if (rc == AG_EINVAL) {
        /* Prometheus' ParseErr.Error(): byte-based line and column. */
        int line = 1, last_nl = -1;
        for (int i = 0; i < p->err_pos && i < p->len; i++) {
            if (query[i] == '\n') {
                line++;
                last_nl = i;
            }
        }
        ag_errmsg_set(e, rc, p->err_pos, "%d:%d: parse error: %s", line, p->err_pos - last_nl,
                      p->err_msg);
    } else if (rc) {
        ag_errmsg_set(e, rc, p->err_pos, "%s", p->err_msg);
    } else {
        *out = res;
    }
    free(p);
    return rc;
}

/* ---- canonical text (Prometheus' String()) ---------------------------------------------------- */

/* fmt.Sprint(float64), i.e. strconv.FormatFloat(v, 'g', -1, 64), as NumberLiteral.String() uses:
 * the shortest round-trip digits, in exponent form when the decimal exponent is < -4 or >= 6
 * ("1e+06", "123456", "0.0001", "1e-05"), and "NaN", "+Inf", "-Inf". */
static void format_number(ag_buf_t *b, double v) { ag_buf_float_style(b, v, AG_FLOAT_GO_G); }

static void format_duration(ag_buf_t *b, int64_t ms)
{
    char d[64];
    ag_format_duration(ms, d, sizeof d);
    ag_buf_puts(b, d);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* name{matchers}, matchers sorted by their text, the name's own __name__ matcher left out. */
static void format_selector(const ag_pq_node_t *n, ag_buf_t *out)
{
    const char *name = n->u.sel.metric_name;
    size_t nm = n->u.sel.nmatchers, k = 0;
    if (name) ag_buf_puts(out, name);
    char **strs = calloc(nm ? nm : 1, sizeof *strs);
    if (!strs) {
        out->oom = true;
        return;
    }
    for (size_t i = 0; i < nm; i++) {
        const ag_matcher_t *m = &n->u.sel.matchers[i];
        if (name && m->type == AG_MATCH_EQ && strcmp(m->name, "__name__") == 0 &&
            m->value_len == strlen(name) && memcmp(m->value, name, m->value_len) == 0)
            continue;
        ag_buf_t b = AG_BUF_INIT;
        ag_buf_puts(&b, m->name);
        ag_buf_puts(&b, ag_match_type_str(m->type));
        pq_quote(&b, m->value, m->value_len, -1);
        if (!ag_buf_ok(&b)) {
            ag_buf_free(&b);
            out->oom = true;
            break;
        }
        strs[k++] = ag_buf_steal(&b, NULL);
    }
    if (k > 0) {
        qsort(strs, k, sizeof *strs, cmp_str);
        ag_buf_putc(out, '{');
        for (size_t i = 0; i < k; i++) {
            if (i) ag_buf_putc(out, ',');
            ag_buf_puts(out, strs[i]);
        }
        ag_buf_putc(out, '}');
    }
    for (size_t i = 0; i < k; i++) free(strs[i]);
    free(strs);
}

/* " offset 5m" / " offset -5m" (nothing for 0). */
static void format_offset(ag_buf_t *out, int64_t ms)
{
    if (ms > 0) {
        ag_buf_puts(out, " offset ");
        format_duration(out, ms);
    } else if (ms < 0) {
        ag_buf_puts(out, " offset -");
        format_duration(out, -ms);
    }
}

/* " @ 100.000" (fmt "%.3f" of the seconds), " @ start()", " @ end()". */
static void format_at(ag_buf_t *out, ag_pq_at_t at, int64_t at_ms)
{
    char num[64];
    switch (at) {
    case AG_PQ_AT_TIME:
        snprintf(num, sizeof num, " @ %.3f", (double)at_ms / 1000.0);
        ag_buf_puts(out, num);
        break;
    case AG_PQ_AT_START: ag_buf_puts(out, " @ start()"); break;
    case AG_PQ_AT_END: ag_buf_puts(out, " @ end()"); break;
    default: break;
    }
}

/* "(a, b)" */
static void format_names(ag_buf_t *out, const ag_pq_names_t *l)
{
    ag_buf_putc(out, '(');
    for (size_t i = 0; i < l->n; i++) {
        if (i) ag_buf_puts(out, ", ");
        ag_buf_puts(out, l->v[i]);
    }
    ag_buf_putc(out, ')');
}

static const char *binop_str(ag_pq_binop_t op)
{
    switch (op) {
    case AG_PQ_OP_ADD: return "+";
    case AG_PQ_OP_SUB: return "-";
    case AG_PQ_OP_MUL: return "*";
    case AG_PQ_OP_DIV: return "/";
    case AG_PQ_OP_MOD: return "%";
    case AG_PQ_OP_POW: return "^";
    case AG_PQ_OP_ATAN2: return "atan2";
    case AG_PQ_OP_EQL: return "==";
    case AG_PQ_OP_NEQ: return "!=";
    case AG_PQ_OP_GTR: return ">";
    case AG_PQ_OP_LSS: return "<";
    case AG_PQ_OP_GTE: return ">=";
    case AG_PQ_OP_LTE: return "<=";
    case AG_PQ_OP_AND: return "and";
    case AG_PQ_OP_OR: return "or";
    case AG_PQ_OP_UNLESS: return "unless";
    }
    return "?";
}

static const char *aggop_str(ag_pq_aggop_t op)
{
    switch (op) {
    case AG_PQ_AGG_SUM: return "sum";
    case AG_PQ_AGG_AVG: return "avg";
    case AG_PQ_AGG_COUNT: return "count";
    case AG_PQ_AGG_MIN: return "min";
    case AG_PQ_AGG_MAX: return "max";
    case AG_PQ_AGG_GROUP: return "group";
    case AG_PQ_AGG_STDDEV: return "stddev";
    case AG_PQ_AGG_STDVAR: return "stdvar";
    case AG_PQ_AGG_TOPK: return "topk";
    case AG_PQ_AGG_BOTTOMK: return "bottomk";
    case AG_PQ_AGG_QUANTILE: return "quantile";
    case AG_PQ_AGG_COUNT_VALUES: return "count_values";
    }
    return "?";
}

void ag_promql_format(const ag_pq_node_t *n, ag_buf_t *out)
{
    switch (n->type) {
    case AG_PQ_NUMBER: format_number(out, n->u.number); break;
    case AG_PQ_STRING: pq_quote(out, n->u.string.s, n->u.string.len, -1); break;
    case AG_PQ_VECTOR_SEL:
    case AG_PQ_MATRIX_SEL:
        /* VectorSelector: name{...} @ t offset d; MatrixSelector: name{...}[r] @ t offset d */
        format_selector(n, out);
        if (n->type == AG_PQ_MATRIX_SEL) {
            ag_buf_putc(out, '[');
            format_duration(out, n->u.sel.range_ms);
            ag_buf_putc(out, ']');
        }
        format_at(out, n->u.sel.at, n->u.sel.at_ms);
        format_offset(out, n->u.sel.offset_ms);
        break;
    case AG_PQ_PAREN:
        ag_buf_putc(out, '(');
        ag_promql_format(n->u.paren, out);
        ag_buf_putc(out, ')');
        break;
    case AG_PQ_UNARY:
        ag_buf_putc(out, n->u.unary.op);
        ag_promql_format(n->u.unary.expr, out);
        break;
    case AG_PQ_BINARY: {
        /* "%s %s%s%s %s": lhs, op, " bool", matching, rhs; matching only with on(...) or a
         * non-empty ignoring(...) list (an empty ignoring() drops a group_x() too, as in
         * Prometheus 2.42). */
        const ag_pq_node_t *b = n;
        const ag_pq_node_t *lhs = b->u.binary.lhs;
        if (b->u.binary.op == AG_PQ_OP_POW && lhs->type == AG_PQ_NUMBER && isinf(lhs->u.number) &&
            lhs->u.number > 0) {
            /* Deviation: Prometheus prints "+Inf ^ x", which parses back as +(Inf ^ x) (the
             * unary operand takes the whole ^ chain); "Inf" keeps the text a fixed point. */
            ag_buf_puts(out, "Inf");
        } else {
            ag_promql_format(lhs, out);
        }
        ag_buf_putc(out, ' ');
        ag_buf_puts(out, binop_str(b->u.binary.op));
        if (b->u.binary.return_bool) ag_buf_puts(out, " bool");
        if (b->u.binary.on || b->u.binary.matching.n > 0) {
            ag_buf_puts(out, b->u.binary.on ? " on" : " ignoring");
            format_names(out, &b->u.binary.matching);
            if (b->u.binary.card == AG_PQ_CARD_MANY_TO_ONE ||
                b->u.binary.card == AG_PQ_CARD_ONE_TO_MANY) {
                ag_buf_puts(out, b->u.binary.card == AG_PQ_CARD_MANY_TO_ONE ? " group_left"
                                                                           : " group_right");
                format_names(out, &b->u.binary.include);
            }
        }
        ag_buf_putc(out, ' ');
        ag_promql_format(b->u.binary.rhs, out);
        break;
    }
    case AG_PQ_AGGREGATE:
        /* op [" without (..) " | " by (..) "] "(" [param ", "] expr ")" */
        ag_buf_puts(out, aggop_str(n->u.agg.op));
        if (n->u.agg.without || n->u.agg.grouping.n > 0) {
            ag_buf_puts(out, n->u.agg.without ? " without " : " by ");
            format_names(out, &n->u.agg.grouping);
            ag_buf_putc(out, ' ');
        }
        ag_buf_putc(out, '(');
        if (n->u.agg.param) {
            ag_promql_format(n->u.agg.param, out);
            ag_buf_puts(out, ", ");
        }
        ag_promql_format(n->u.agg.expr, out);
        ag_buf_putc(out, ')');
        break;
    case AG_PQ_CALL:
        ag_buf_puts(out, n->u.call.name);
        ag_buf_putc(out, '(');
        for (size_t i = 0; i < n->u.call.nargs; i++) {
            if (i) ag_buf_puts(out, ", ");
            ag_promql_format(n->u.call.args[i], out);
        }
        ag_buf_putc(out, ')');
        break;
    case AG_PQ_SUBQUERY:
        /* expr "[" range ":" [step] "]" @ t offset d */
        ag_promql_format(n->u.subquery.expr, out);
        ag_buf_putc(out, '[');
        format_duration(out, n->u.subquery.range_ms);
        ag_buf_putc(out, ':');
        if (n->u.subquery.step_ms != 0) format_duration(out, n->u.subquery.step_ms);
        ag_buf_putc(out, ']');
        format_at(out, n->u.subquery.at, n->u.subquery.at_ms);
        format_offset(out, n->u.subquery.offset_ms);
        break;
    }
}
