/* lexer.h - internal to daemon/promql: the PromQL tokenizer and the Go-style quoting helpers
 * that the parser uses for canonical output and for error messages.
 *
 * The lexer reproduces Prometheus 2.42's promql/parser/lex.go state machine token for token
 * (including its error texts and positions), so that the parser can word its errors the way
 * Prometheus does. One extension: Go-style underscores between digits in numbers ("1_000").
 */
#ifndef AG_PROMQL_LEXER_H
#define AG_PROMQL_LEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ag_buf.h"

typedef enum {
    PQ_EOF = 0,
    PQ_ERROR,
    PQ_COMMENT,
    PQ_IDENTIFIER,
    PQ_METRIC_IDENTIFIER,
    PQ_NUMBER,
    PQ_STRING,
    PQ_DURATION,
    PQ_LEFT_PAREN,
    PQ_RIGHT_PAREN,
    PQ_LEFT_BRACE,
    PQ_RIGHT_BRACE,
    PQ_LEFT_BRACKET,
    PQ_RIGHT_BRACKET,
    PQ_COMMA,
    PQ_EQL,
    PQ_COLON,

    PQ_OPERATORS_START, /* markers, never produced */
    PQ_ADD,
    PQ_DIV,
    PQ_EQLC,
    PQ_EQL_REGEX,
    PQ_GTE,
    PQ_GTR,
    PQ_LAND,
    PQ_LOR,
    PQ_LSS,
    PQ_LTE,
    PQ_LUNLESS,
    PQ_MOD,
    PQ_MUL,
    PQ_NEQ,
    PQ_NEQ_REGEX,
    PQ_POW,
    PQ_SUB,
    PQ_AT,
    PQ_ATAN2,
    PQ_OPERATORS_END,

    PQ_AGGREGATORS_START,
    PQ_AVG,
    PQ_BOTTOMK,
    PQ_COUNT,
    PQ_COUNT_VALUES,
    PQ_GROUP,
    PQ_MAX,
    PQ_MIN,
    PQ_QUANTILE,
    PQ_STDDEV,
    PQ_STDVAR,
    PQ_SUM,
    PQ_TOPK,
    PQ_AGGREGATORS_END,

    PQ_KEYWORDS_START,
    PQ_BOOL,
    PQ_BY,
    PQ_GROUP_LEFT,
    PQ_GROUP_RIGHT,
    PQ_IGNORING,
    PQ_OFFSET,
    PQ_ON,
    PQ_WITHOUT,
    PQ_KEYWORDS_END,

    PQ_START, /* the @ start() / end() preprocessors */
    PQ_END,
} pq_tok_t;

/* A token: input[pos, pos+len). For PQ_ERROR the message is in the lexer's `err`. */
typedef struct pq_item {
    pq_tok_t type;
    int pos;
    int len;
} pq_item_t;

typedef struct pq_lexer {
    const char *input;
    int len;
    int pos;   /* current position */
    int start; /* start of the token being scanned */
    int width; /* width of the last rune read, for backup() */
    int paren_depth;
    bool brace_open;
    bool bracket_open;
    bool got_colon;
    bool want_duration; /* just emitted '[': the next token is scanned as a duration */
    bool done;          /* EOF or an error was returned; only EOF follows */
    char err[160];
} pq_lexer_t;

/* Longest accepted query; longer input is rejected by the parser before lexing. */
#define PQ_MAX_QUERY_LEN (16 * 1024 * 1024)

void pq_lex_init(pq_lexer_t *l, const char *input, int len);
/* Scans the next token into *it. After PQ_EOF or PQ_ERROR only PQ_EOF follows. */
void pq_lex_next(pq_lexer_t *l, pq_item_t *it);

/* Canonical spelling of a keyword, operator or punctuation token ("+", "sum", "offset"), or NULL. */
const char *pq_tok_str(pq_tok_t t);
bool pq_is_operator(pq_tok_t t);
bool pq_is_aggregator(pq_tok_t t);
bool pq_is_keyword(pq_tok_t t);

/* Decodes one rune like Go's utf8.DecodeRune: invalid input yields U+FFFD with *width 1.
 * n must be >= 1. */
int32_t pq_decode_rune(const char *s, int n, int *width);
/* Go's strconv.IsPrint, approximated outside ASCII/Latin-1 (unassigned code points count as
 * printable). */
bool pq_is_print(int32_t r);
/* Appends s[0..n) quoted like Go's strconv.Quote (%q). With max_runes >= 0 only that many runes
 * are quoted (Go's %.Nq). U+FFFD is always escaped, so the output re-lexes in PromQL. */
void pq_quote(ag_buf_t *b, const char *s, size_t n, int max_runes);
/* Appends r quoted like Go's strconv.QuoteRune ('x', '\n', '\''). Invalid runes print as U+FFFD. */
void pq_quote_rune(ag_buf_t *b, int32_t r);

#endif
