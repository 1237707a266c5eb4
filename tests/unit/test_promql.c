/* test_promql.c - unit tests for the PromQL lexer/parser/formatter (daemon/promql): literals,
 * strings, selectors, offsets and ranges, Prometheus-worded syntax errors with their positions,
 * the AST of every expression kind (unary, binary with vector matching, aggregations, calls,
 * subqueries, @) with value types, and canonical-text round trips. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_promql.h"

static ag_pq_node_t *parse_ok(const char *q)
{
    ag_pq_node_t *n = NULL;
    ag_errmsg_t e = {{0}, -1};
    int rc = ag_promql_parse(q, strlen(q), &n, &e);
    if (rc != AG_OK) fail_msg("parse(%s) failed with %d: %s", q, rc, e.msg);
    assert_non_null(n);
    return n;
}

static char *format(const ag_pq_node_t *n)
{
    ag_buf_t b = AG_BUF_INIT;
    ag_promql_format(n, &b);
    assert_true(ag_buf_ok(&b));
    return ag_buf_steal(&b, NULL);
}

/* Parses q, checks its canonical text, and that the text parses back to the same text. */
static void want_format(const char *q, const char *want)
{
    ag_pq_node_t *n = parse_ok(q);
    char *s = format(n);
    if (strcmp(s, want) != 0) fail_msg("format(parse(%s)) = %s, want %s", q, s, want);
    ag_pq_node_t *n2 = parse_ok(s);
    char *s2 = format(n2);
    assert_string_equal(s2, s);
    free(s);
    free(s2);
    ag_promql_free(n);
    ag_promql_free(n2);
}

static void want_error(const char *q, int code, const char *msg, long offset)
{
    ag_pq_node_t *n = (ag_pq_node_t *)1;
    ag_errmsg_t e = {{0}, -1};
    int rc = ag_promql_parse(q, strlen(q), &n, &e);
    if (rc != code) fail_msg("parse(%s) = %d (%s), want %d", q, rc, e.msg, code);
    assert_null(n);
    if (strcmp(e.msg, msg) != 0) fail_msg("parse(%s) message\n  got  %s\n  want %s", q, e.msg, msg);
    if (e.offset != offset) fail_msg("parse(%s) offset %ld, want %ld", q, e.offset, offset);
}

static void want_number(const char *q, double want, int pos)
{
    ag_pq_node_t *n = parse_ok(q);
    assert_int_equal(n->type, AG_PQ_NUMBER);
    assert_int_equal(n->pos, pos);
    if (isnan(want)) {
        assert_true(isnan(n->u.number));
    } else if (n->u.number != want || signbit(n->u.number) != signbit(want)) {
        fail_msg("parse(%s) = %.17g, want %.17g", q, n->u.number, want);
    }
    ag_promql_free(n);
}

static void test_number_literals(void **state)
{
    (void)state;
    want_number("1", 1, 0);
    want_number("  42  ", 42, 2);
    want_number(".5", 0.5, 0);
    want_number("5.", 5, 0);
    want_number("123.4567", 123.4567, 0);
    want_number("5e-3", 0.005, 0);
    want_number("5E3", 5000, 0);
    want_number("12.34e+6", 12340000, 0);
    want_number("0xc", 12, 0);
    want_number("0X1F", 31, 0);
    want_number("0x_1f", 31, 0);
    want_number("0755", 493, 0); /* Go's ParseInt with base 0: octal */
    want_number("08", 8, 0);     /* not octal, so a float */
    want_number("1_000", 1000, 0);
    want_number("1_000.000_5", 1000.0005, 0);
    want_number("99999999999999999999", 1e20, 0);
    want_number("+5.5e-3", 0.0055, 0);
    want_number("-0755", -493, 0);
    want_number("- 1", -1, 0);
    want_number("--1", 1, 0);
    want_number("-0", -0.0, 0);
    want_number("+Inf", INFINITY, 0);
    want_number("-inf", -INFINITY, 0);
    want_number("inF", INFINITY, 0);
    want_number("NaN", NAN, 0);
    want_number("nan", NAN, 0);
    want_number("1e-400", 0, 0); /* underflow is not an error */
}

static void test_number_literals_paren(void **state)
{
    (void)state;
    ag_pq_node_t *n = parse_ok("((-2))");
    assert_int_equal(n->type, AG_PQ_PAREN);
    assert_int_equal(n->u.paren->type, AG_PQ_PAREN);
    assert_int_equal(n->u.paren->pos, 1);
    const ag_pq_node_t *num = n->u.paren->u.paren;
    assert_int_equal(num->type, AG_PQ_NUMBER);
    assert_true(num->u.number == -2);
    assert_int_equal(num->pos, 2);
    ag_promql_free(n);
}

static void want_string(const char *q, const char *want, size_t len)
{
    ag_pq_node_t *n = parse_ok(q);
    assert_int_equal(n->type, AG_PQ_STRING);
    assert_int_equal(n->u.string.len, len);
    assert_memory_equal(n->u.string.s, want, len);
    assert_int_equal(n->u.string.s[len], 0);
    ag_promql_free(n);
}

#define STR(q, lit) want_string(q, lit, sizeof(lit) - 1)

static void test_string_literals(void **state)
{
    (void)state;
    STR("\"\"", "");
    STR("\"hello\"", "hello");
    STR("'hello'", "hello");
    STR("`hello`", "hello");
    STR("\"a\\nb\\tc\\\\d\\\"e\"", "a\nb\tc\\d\"e");
    STR("'it\\'s'", "it's");
    STR("\"\\a\\b\\f\\r\\v\"", "\a\b\f\r\v");
    STR("\"\\x41\\101\\u00e9\\U0001F600\"", "AA\xc3\xa9\xf0\x9f\x98\x80");
    STR("\"\\x00z\"", "\0z");
    STR("\"\\xff\"", "\xff"); /* a raw byte, not UTF-8 */
    STR("`raw \\n \\x \"'`", "raw \\n \\x \"'");
    STR("\"caf\xc3\xa9\"", "caf\xc3\xa9");
    STR("\"a\\u2028b\"", "a\xe2\x80\xa8" "b");
}

static void test_selectors(void **state)
{
    (void)state;
    ag_pq_node_t *n = parse_ok("foo{a=\"b\", c!=\"d\", e=~\"f.*\", g!~'h',}");
    assert_int_equal(n->type, AG_PQ_VECTOR_SEL);
    assert_string_equal(n->u.sel.metric_name, "foo");
    assert_int_equal(n->u.sel.nmatchers, 5);
    const ag_matcher_t *m = n->u.sel.matchers;
    assert_string_equal(m[0].name, "__name__"); /* the name matcher comes first */
    assert_int_equal(m[0].type, AG_MATCH_EQ);
    assert_string_equal(m[0].value, "foo");
    assert_string_equal(m[1].name, "a");
    assert_int_equal(m[1].type, AG_MATCH_EQ);
    assert_string_equal(m[1].value, "b");
    assert_int_equal(m[2].type, AG_MATCH_NEQ);
    assert_int_equal(m[3].type, AG_MATCH_RE);
    assert_true(ag_matcher_matches(&m[3], "fxyz", 4));
    assert_false(ag_matcher_matches(&m[3], "xf", 2)); /* anchored */
    assert_int_equal(m[4].type, AG_MATCH_NRE);
    assert_string_equal(m[4].value, "h");
    assert_int_equal(n->u.sel.range_ms, 0);
    assert_int_equal(n->u.sel.offset_ms, 0);
    ag_promql_free(n);

    n = parse_ok("{__name__=~\"up|down\", job=\"x\"}");
    assert_int_equal(n->type, AG_PQ_VECTOR_SEL);
    assert_null(n->u.sel.metric_name);
    assert_int_equal(n->u.sel.nmatchers, 2);
    assert_int_equal(n->u.sel.matchers[0].type, AG_MATCH_RE);
    ag_promql_free(n);

    n = parse_ok("foo:bar:rate5m");
    assert_string_equal(n->u.sel.metric_name, "foo:bar:rate5m");
    assert_int_equal(n->u.sel.nmatchers, 1);
    ag_promql_free(n);

    /* Keywords are metric names where an expression starts, and label names inside braces. */
    const char *names[] = {"sum", "min", "by", "offset", "and", "without", "start", "SUM"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        n = parse_ok(names[i]);
        assert_int_equal(n->type, AG_PQ_VECTOR_SEL);
        assert_string_equal(n->u.sel.metric_name, names[i]);
        ag_promql_free(n);
    }
    n = parse_ok("foo{on=\"1\", sum=\"2\", offset=\"3\", NaN=\"4\", inf=\"5\"}");
    assert_int_equal(n->u.sel.nmatchers, 6);
    assert_string_equal(n->u.sel.matchers[4].name, "NaN");
    ag_promql_free(n);

    /* A matcher value with a NUL byte keeps its length. */
    n = parse_ok("foo{a=\"x\\x00y\"}");
    assert_int_equal(n->u.sel.matchers[1].value_len, 3);
    ag_promql_free(n);

    /* Comments anywhere. */
    n = parse_ok("# leading\nfoo{a=\"b\", # inside\n c=\"d\"} # trailing");
    assert_int_equal(n->u.sel.nmatchers, 3);
    assert_int_equal(n->pos, 10);
    ag_promql_free(n);
}

static void test_ranges_and_offsets(void **state)
{
    (void)state;
    ag_pq_node_t *n = parse_ok("foo[5m]");
    assert_int_equal(n->type, AG_PQ_MATRIX_SEL);
    assert_int_equal(n->u.sel.range_ms, 300000);
    assert_int_equal(n->u.sel.offset_ms, 0);
    ag_promql_free(n);

    n = parse_ok("foo offset 5m");
    assert_int_equal(n->type, AG_PQ_VECTOR_SEL);
    assert_int_equal(n->u.sel.offset_ms, 300000);
    ag_promql_free(n);

    n = parse_ok("foo OFFSET -1h30m");
    assert_int_equal(n->u.sel.offset_ms, -5400000);
    ag_promql_free(n);

    n = parse_ok("test{a=\"b\"}[5y] offset 3d");
    assert_int_equal(n->type, AG_PQ_MATRIX_SEL);
    assert_int_equal(n->u.sel.range_ms, 5LL * 365 * 86400000);
    assert_int_equal(n->u.sel.offset_ms, 3LL * 86400000);
    assert_int_equal(n->u.sel.nmatchers, 2);
    ag_promql_free(n);

    n = parse_ok("foo[ 54s321ms ] offset - 1m30ms");
    assert_int_equal(n->u.sel.range_ms, 54321);
    assert_int_equal(n->u.sel.offset_ms, -60030);
    ag_promql_free(n);

    n = parse_ok("(foo[1w])");
    assert_int_equal(n->type, AG_PQ_PAREN);
    assert_int_equal(n->u.paren->type, AG_PQ_MATRIX_SEL);
    assert_int_equal(n->u.paren->u.sel.range_ms, 7LL * 86400000);
    ag_promql_free(n);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    const int E = AG_EINVAL;
    want_error("", E, "1:1: parse error: no expression found in input", 0);
    want_error("# only a comment\n", E, "1:1: parse error: no expression found in input", 0);
    want_error("foo{", E, "1:5: parse error: unexpected end of input inside braces", 4);
    want_error("1+", E, "1:3: parse error: unexpected end of input", 2);
    want_error("1 !", E, "1:3: parse error: unexpected character after '!': '\xef\xbf\xbd'", 2);
    want_error("1 !~ 1", E, "1:3: parse error: unexpected character after '!': '~'", 2);
    want_error("foo !", E, "1:5: parse error: unexpected character after '!': '\xef\xbf\xbd'", 4);
    want_error(".", E, "1:1: parse error: unexpected character: '.'", 0);
    want_error("2.5.", E, "1:4: parse error: unexpected character: '.'", 3);
    want_error("100..4", E, "1:5: parse error: unexpected number \".4\"", 4);
    want_error("0deadbeef", E, "1:1: parse error: bad number or duration syntax: \"0de\"", 0);
    want_error("1__0", E, "1:1: parse error: bad number or duration syntax: \"1\"", 0);
    want_error("0x", E, "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"0x\": invalid syntax", 0);
    want_error("1e", E, "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e\": invalid syntax", 0);
    want_error("1e999", E, "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e999\": value out of range", 0);
    want_error("*1", E, "1:1: parse error: unexpected <op:*>", 0);
    want_error("(1))", E, "1:5: parse error: unexpected right parenthesis ')'", 4);
    want_error("((1)", E, "1:5: parse error: unclosed left parenthesis", 4);
    want_error("(1 2)", E, "1:4: parse error: unexpected number \"2\"", 3);
    want_error("foo]", E, "1:4: parse error: unexpected right bracket ']'", 3);
    want_error("}", E, "1:1: parse error: unexpected character: '}'", 0);
    want_error("foo $", E, "1:5: parse error: unexpected character: '$'", 4);
    want_error("foo bar", E, "1:5: parse error: unexpected identifier \"bar\"", 4);
    want_error("on", E, "1:1: parse error: unexpected <on>", 0);
    want_error("5m", E, "1:1: parse error: unexpected duration \"5m\"", 0);
    want_error("foo \"a long string value\"", E,
                 "1:5: parse error: unexpected string \"\\\"a long st\"...", 4);
    /* Strings. */
    want_error("\"abc", E, "1:1: parse error: unterminated quoted string", 0);
    want_error("\"a\nb\"", E, "1:1: parse error: unterminated quoted string", 0);
    want_error("`abc", E, "1:1: parse error: unterminated raw string", 0);
    want_error("foo{a=\"\\q\"}", E, "1:7: parse error: unknown escape sequence U+0071 'q'", 6);
    want_error("\"\\x4\"", E, "1:1: parse error: illegal character U+0022 '\"' in escape sequence", 0);
    want_error("\"\\uD800\"", E, "1:1: parse error: escape sequence is an invalid Unicode code point", 0);
    want_error("\"\\400\"", E, "1:1: parse error: escape sequence is an invalid Unicode code point", 0);
    want_error("\"\\", E, "1:1: parse error: escape sequence not terminated", 0);
    want_error("some_metric{a=\"\xff\"}", E, "1:15: parse error: invalid UTF-8 rune", 14);
    want_error("'\xef\xbf\xbd'", E, "1:1: parse error: invalid UTF-8 rune", 0);
    /* Selectors. */
    want_error("some_metric{a=b}", E,
                 "1:15: parse error: unexpected identifier \"b\" in label matching, expected string", 14);
    want_error("some_metric{a:b=\"b\"}", E, "1:14: parse error: unexpected character inside braces: ':'", 13);
    want_error("foo{a>=\"b\"}", E, "1:6: parse error: unexpected character inside braces: '>'", 5);
    want_error("foo{gibberish}", E,
                 "1:14: parse error: unexpected \"}\" in label matching, expected label matching operator", 13);
    want_error("foo{__name__= =}", E,
                 "1:15: parse error: unexpected \"=\" in label matching, expected string", 14);
    want_error("foo{,}", E,
                 "1:5: parse error: unexpected \",\" in label matching, expected identifier or \"}\"", 4);
    want_error("foo{a=\"b\",,}", E,
                 "1:11: parse error: unexpected \",\" in label matching, expected identifier or \"}\"", 10);
    want_error("foo{__name__=\"bar\" lol}", E,
                 "1:20: parse error: unexpected identifier \"lol\" in label matching, expected \",\" or \"}\"", 19);
    want_error("foo{a!\"b\"}", E, "1:6: parse error: unexpected character after '!' inside braces: '\"'", 5);
    want_error("foo{{", E, "1:5: parse error: unexpected left brace '{'", 4);
    want_error("{}", E, "1:1: parse error: vector selector must contain at least one non-empty matcher", 0);
    want_error("{x=\"\"}", E, "1:1: parse error: vector selector must contain at least one non-empty matcher", 0);
    want_error("{x=~\".*\"}", E, "1:1: parse error: vector selector must contain at least one non-empty matcher", 0);
    want_error("{x!~\".+\"}", E, "1:1: parse error: vector selector must contain at least one non-empty matcher", 0);
    want_error("{x!=\"a\"}", E, "1:1: parse error: vector selector must contain at least one non-empty matcher", 0);
    want_error("foo{__name__=\"bar\"}", E,
                 "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\"", 0);
    want_error("foo{__name__!=\"foo\"}", E,
                 "1:1: parse error: metric name must not be set twice: \"foo\" or \"foo\"", 0);
    /* Ranges, durations, offsets. */
    want_error("foo[5m", E, "1:7: parse error: unclosed left bracket", 6);
    want_error("foo[5mm]", E, "1:5: parse error: bad duration syntax: \"5mm\"", 4);
    want_error("foo[5m1]", E, "1:5: parse error: bad duration syntax: \"5m1\"", 4);
    want_error("foo[5m1h]", E, "1:5: parse error: not a valid duration string: \"5m1h\"", 4);
    want_error("foo[5y1hs]", E, "1:5: parse error: not a valid duration string: \"5y1hs\"", 4);
    want_error("foo[0m]", E, "1:5: parse error: duration must be greater than 0", 4);
    want_error("foo[]", E, "1:5: parse error: missing unit character in duration", 4);
    want_error("foo[1]", E, "1:5: parse error: missing unit character in duration", 4);
    want_error("foo[\"5m\"]", E, "1:5: parse error: missing unit character in duration", 4);
    want_error("foo[300y]", E, "1:5: parse error: duration out of range", 4);
    want_error("foo[5m 1]", E,
                 "1:8: parse error: unexpected number \"1\" in subquery or range, expected \":\" or \"]\"", 7);
    want_error("foo[5m[", E, "1:7: parse error: unexpected left bracket '['", 6);
    want_error("some_metric[5m] OFFSET 1", E,
                 "1:24: parse error: unexpected number \"1\" in offset, expected duration", 23);
    want_error("some_metric[5m] OFFSET", E,
                 "1:23: parse error: unexpected end of input in offset, expected duration", 22);
    want_error("some_metric[5m] OFFSET 1mm", E, "1:24: parse error: bad number or duration syntax: \"1mm\"", 23);
    want_error("foo offset 0s", E, "1:12: parse error: duration must be greater than 0", 11);
    want_error("some_metric OFFSET 1m[5m]", E, "1:22: parse error: no offset modifiers allowed before range", 21);
    want_error("foo offset 1s offset 2s", E, "1:1: parse error: offset may not be set multiple times", 0);
    want_error("1 offset 1d", E,
                 "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery", 0);
    want_error("(foo) offset 1d", E,
                 "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery", 0);
    want_error("(foo + bar)[5m]", E, "1:12: parse error: ranges only allowed for vector selectors", 11);
    want_error("\"foo\"[5m]", E, "1:6: parse error: ranges only allowed for vector selectors", 5);
    want_error("foo[5m][5m]", E, "1:8: parse error: ranges only allowed for vector selectors", 7);
    want_error("some_metric @ 1234 [5m]", E, "1:20: parse error: no @ modifiers allowed before range", 19);
    want_error("some_metric[5m] @", E, "1:18: parse error: unexpected end of input in @, expected timestamp", 17);
    want_error("foo @ NaN", E, "1:1: parse error: timestamp out of bounds for @ modifier: NaN", 0);
    /* Type errors. */
    want_error("-\"string\"", E,
                 "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\"", 0);
    want_error("-test[5m]", E,
                 "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"", 0);
    want_error("1 == 1", E, "1:3: parse error: comparisons between scalars must use BOOL modifier", 2);
    want_error("1 and 1", E, "1:1: parse error: set operator \"and\" not allowed in binary scalar expression", 0);
    want_error("foo + bool bar", E, "1:5: parse error: bool modifier can only be used on comparison operators", 4);
    want_error("a - on(b) ignoring(c) d", E, "1:11: parse error: unexpected <ignoring>", 10);
    want_error("rate(foo)", E,
                 "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector", 5);
    want_error("foo(bar)", E, "1:1: parse error: unknown function with name \"foo\"", 0);
    want_error("rate(foo[5m],)", E, "1:13: parse error: trailing commas not allowed in function call args", 12);
    want_error("topk(some_metric)", E,
                 "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1", 0);
    want_error("sum x", E, "1:5: parse error: unexpected identifier \"x\" in aggregation", 4);
    want_error("sum(1 2)", E, "1:7: parse error: unexpected number \"2\" in aggregation", 6);
    want_error("sum(foo) by test", E,
                 "1:13: parse error: unexpected identifier \"test\" in grouping opts, expected \"(\"", 12);
    want_error("{}[5m:1m]", E, "1:1: parse error: vector selector must contain at least one non-empty matcher", 0);
    want_error("foo{a=~\"(\"}", E, "1:5: parse error: error parsing regexp: missing ): (", 4);
    /* Vector matching, aggregations, subqueries and @. */
    want_error("foo and on(a) group_left(b) bar", E,
                 "1:1: parse error: no grouping allowed for \"and\" operation", 0);
    want_error("foo + on(a) group_left(a) bar", E,
                 "1:5: parse error: label \"a\" must not occur in ON and GROUP clause at once", 4);
    want_error("1 + on(a) foo", E, "1:1: parse error: vector matching only allowed between instant vectors", 0);
    want_error("foo[5m][1m:]", E,
                 "1:1: parse error: subquery is only allowed on instant vector, got matrix instead", 0);
    want_error("foo @ 1 @ 2", E, "1:1: parse error: @ <timestamp> may not be set multiple times", 0);
    want_error("topk(\"a\", foo)", E,
                 "1:6: parse error: expected type scalar in aggregation parameter, got string", 5);
    want_error("count_values(1, foo)", E,
                 "1:14: parse error: expected type string in aggregation parameter, got scalar", 13);
    want_error("sum(foo[5m])", E,
                 "1:5: parse error: expected type instant vector in aggregation expression, got range vector", 4);
    want_error("sum by (a) (x) by (b)", E, "1:16: parse error: unexpected <by>", 15);
    want_error("foo[5m:1m:]", E, "1:10: parse error: unexpected colon ':'", 9);
    want_error("rate(foo[5m:0s])", E, "1:13: parse error: duration must be greater than 0", 12);
    want_error("foo @ +start()", E, "1:8: parse error: unexpected \"start\" in @, expected timestamp", 7);
    /* Positions are line:column on multi-line queries. */
    want_error("foo\n+", E, "2:2: parse error: unexpected end of input", 5);
    want_error("foo +\n  bar{", E, "2:7: parse error: unexpected end of input inside braces", 12);
}

static void want_names(const ag_pq_names_t *l, size_t n, ...)
{
    assert_int_equal(l->n, n);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) assert_string_equal(l->v[i], va_arg(ap, const char *));
    va_end(ap);
}

static void test_unary(void **state)
{
    (void)state;
    ag_pq_node_t *n = parse_ok("-foo");
    assert_int_equal(n->type, AG_PQ_UNARY);
    assert_int_equal(n->vtype, AG_PQ_T_VECTOR);
    assert_int_equal(n->u.unary.op, '-');
    assert_int_equal(n->pos, 0);
    assert_int_equal(n->u.unary.expr->type, AG_PQ_VECTOR_SEL);
    assert_int_equal(n->u.unary.expr->pos, 1);
    ag_promql_free(n);

    n = parse_ok(" +foo");
    assert_int_equal(n->type, AG_PQ_UNARY);
    assert_int_equal(n->u.unary.op, '+');
    assert_int_equal(n->pos, 1);
    ag_promql_free(n);

    n = parse_ok("-(1)");
    assert_int_equal(n->type, AG_PQ_UNARY);
    assert_int_equal(n->vtype, AG_PQ_T_SCALAR);
    assert_int_equal(n->u.unary.expr->type, AG_PQ_PAREN);
    assert_int_equal(n->u.unary.expr->vtype, AG_PQ_T_SCALAR);
    ag_promql_free(n);

    /* The operand binds tighter than '*' but looser than '^'. */
    n = parse_ok("-foo ^ 2 * 3");
    assert_int_equal(n->type, AG_PQ_BINARY);
    assert_int_equal(n->u.binary.op, AG_PQ_OP_MUL);
    const ag_pq_node_t *u = n->u.binary.lhs;
    assert_int_equal(u->type, AG_PQ_UNARY);
    assert_int_equal(u->u.unary.expr->type, AG_PQ_BINARY);
    assert_int_equal(u->u.unary.expr->u.binary.op, AG_PQ_OP_POW);
    ag_promql_free(n);

    /* A literal still folds, also after an operator. */
    n = parse_ok("foo - -1");
    assert_int_equal(n->u.binary.rhs->type, AG_PQ_NUMBER);
    assert_true(n->u.binary.rhs->u.number == -1);
    assert_int_equal(n->u.binary.rhs->pos, 6);
    ag_promql_free(n);
}

static void test_binary(void **state)
{
    (void)state;
    ag_pq_node_t *n = parse_ok("1 + 2 * 3");
    assert_int_equal(n->type, AG_PQ_BINARY);
    assert_int_equal(n->vtype, AG_PQ_T_SCALAR);
    assert_int_equal(n->pos, 0);
    assert_int_equal(n->u.binary.op, AG_PQ_OP_ADD);
    assert_int_equal(n->u.binary.lhs->type, AG_PQ_NUMBER);
    assert_int_equal(n->u.binary.rhs->type, AG_PQ_BINARY);
    assert_int_equal(n->u.binary.rhs->u.binary.op, AG_PQ_OP_MUL);
    assert_int_equal(n->u.binary.rhs->pos, 4);
    assert_int_equal(n->u.binary.card, AG_PQ_CARD_ONE_TO_ONE);
    assert_false(n->u.binary.return_bool);
    assert_int_equal(n->u.binary.matching.n, 0);
    ag_promql_free(n);

    /* ^ is right-associative, the rest left-associative. */
    n = parse_ok("2 ^ 3 ^ 2");
    assert_int_equal(n->u.binary.op, AG_PQ_OP_POW);
    assert_int_equal(n->u.binary.lhs->type, AG_PQ_NUMBER);
    assert_int_equal(n->u.binary.rhs->type, AG_PQ_BINARY);
    ag_promql_free(n);
    n = parse_ok("a - b - c");
    assert_int_equal(n->u.binary.lhs->type, AG_PQ_BINARY);
    assert_int_equal(n->u.binary.rhs->type, AG_PQ_VECTOR_SEL);
    ag_promql_free(n);

    struct {
        const char *q;
        ag_pq_binop_t op;
    } ops[] = {
        {"a + b", AG_PQ_OP_ADD},    {"a - b", AG_PQ_OP_SUB},      {"a * b", AG_PQ_OP_MUL},
        {"a / b", AG_PQ_OP_DIV},    {"a % b", AG_PQ_OP_MOD},      {"a ^ b", AG_PQ_OP_POW},
        {"a atan2 b", AG_PQ_OP_ATAN2}, {"a == b", AG_PQ_OP_EQL},  {"a != b", AG_PQ_OP_NEQ},
        {"a > b", AG_PQ_OP_GTR},    {"a < b", AG_PQ_OP_LSS},      {"a >= b", AG_PQ_OP_GTE},
        {"a <= b", AG_PQ_OP_LTE},   {"a and b", AG_PQ_OP_AND},    {"a or b", AG_PQ_OP_OR},
        {"a unless b", AG_PQ_OP_UNLESS},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        n = parse_ok(ops[i].q);
        assert_int_equal(n->type, AG_PQ_BINARY);
        assert_int_equal(n->u.binary.op, ops[i].op);
        assert_int_equal(n->vtype, AG_PQ_T_VECTOR);
        assert_int_equal(n->u.binary.card, ops[i].op >= AG_PQ_OP_AND ? AG_PQ_CARD_MANY_TO_MANY
                                                                      : AG_PQ_CARD_ONE_TO_ONE);
        want_format(ops[i].q, ops[i].q);
        ag_promql_free(n);
    }

    n = parse_ok("foo > bool 1");
    assert_true(n->u.binary.return_bool);
    assert_int_equal(n->u.binary.op, AG_PQ_OP_GTR);
    assert_int_equal(n->vtype, AG_PQ_T_VECTOR);
    ag_promql_free(n);
    n = parse_ok("1 == bool 2");
    assert_true(n->u.binary.return_bool);
    assert_int_equal(n->vtype, AG_PQ_T_SCALAR);
    ag_promql_free(n);

    n = parse_ok("foo / on(a, b) group_left(c) bar");
    assert_int_equal(n->u.binary.op, AG_PQ_OP_DIV);
    assert_true(n->u.binary.on);
    assert_int_equal(n->u.binary.card, AG_PQ_CARD_MANY_TO_ONE);
    want_names(&n->u.binary.matching, 2, "a", "b");
    want_names(&n->u.binary.include, 1, "c");
    ag_promql_free(n);

    n = parse_ok("foo * ignoring(x) group_right bar");
    assert_false(n->u.binary.on);
    assert_int_equal(n->u.binary.card, AG_PQ_CARD_ONE_TO_MANY);
    want_names(&n->u.binary.matching, 1, "x");
    want_names(&n->u.binary.include, 0);
    ag_promql_free(n);

    n = parse_ok("foo and on() bar");
    assert_true(n->u.binary.on);
    assert_int_equal(n->u.binary.card, AG_PQ_CARD_MANY_TO_MANY);
    want_names(&n->u.binary.matching, 0);
    ag_promql_free(n);

    n = parse_ok("foo unless ignoring(sum, by, and) bar");
    assert_int_equal(n->u.binary.card, AG_PQ_CARD_MANY_TO_MANY);
    want_names(&n->u.binary.matching, 3, "sum", "by", "and");
    ag_promql_free(n);

    /* Vector matching only exists between two vectors (checkAST drops it otherwise). */
    n = parse_ok("foo + on() 1");
    assert_false(n->u.binary.on);
    assert_int_equal(n->u.binary.card, AG_PQ_CARD_ONE_TO_ONE);
    ag_promql_free(n);

    n = parse_ok("(foo offset 5m) * 2");
    assert_int_equal(n->pos, 0);
    assert_int_equal(n->u.binary.lhs->type, AG_PQ_PAREN);
    assert_int_equal(n->u.binary.rhs->pos, 18);
    ag_promql_free(n);
}

static void test_aggregate(void **state)
{
    (void)state;
    ag_pq_node_t *n = parse_ok("sum(foo)");
    assert_int_equal(n->type, AG_PQ_AGGREGATE);
    assert_int_equal(n->vtype, AG_PQ_T_VECTOR);
    assert_int_equal(n->u.agg.op, AG_PQ_AGG_SUM);
    assert_null(n->u.agg.param);
    assert_false(n->u.agg.without);
    assert_int_equal(n->u.agg.grouping.n, 0);
    assert_int_equal(n->u.agg.expr->type, AG_PQ_VECTOR_SEL);
    assert_int_equal(n->u.agg.expr->pos, 4);
    ag_promql_free(n);

    n = parse_ok("SUM by (job, instance) (foo)");
    assert_int_equal(n->u.agg.op, AG_PQ_AGG_SUM);
    assert_false(n->u.agg.without);
    want_names(&n->u.agg.grouping, 2, "job", "instance");
    ag_promql_free(n);

    n = parse_ok("avg(foo) without (a)");
    assert_int_equal(n->u.agg.op, AG_PQ_AGG_AVG);
    assert_true(n->u.agg.without);
    want_names(&n->u.agg.grouping, 1, "a");
    ag_promql_free(n);

    n = parse_ok("topk(3, foo) by (a)");
    assert_int_equal(n->u.agg.op, AG_PQ_AGG_TOPK);
    assert_int_equal(n->u.agg.param->type, AG_PQ_NUMBER);
    assert_int_equal(n->u.agg.param->vtype, AG_PQ_T_SCALAR);
    assert_true(n->u.agg.param->u.number == 3);
    assert_int_equal(n->u.agg.expr->type, AG_PQ_VECTOR_SEL);
    ag_promql_free(n);

    n = parse_ok("count_values(\"v\", foo)");
    assert_int_equal(n->u.agg.op, AG_PQ_AGG_COUNT_VALUES);
    assert_int_equal(n->u.agg.param->type, AG_PQ_STRING);
    assert_int_equal(n->u.agg.param->vtype, AG_PQ_T_STRING);
    ag_promql_free(n);

    struct {
        const char *q;
        ag_pq_aggop_t op;
    } ops[] = {
        {"sum(x)", AG_PQ_AGG_SUM},       {"avg(x)", AG_PQ_AGG_AVG},
        {"count(x)", AG_PQ_AGG_COUNT},   {"min(x)", AG_PQ_AGG_MIN},
        {"max(x)", AG_PQ_AGG_MAX},       {"group(x)", AG_PQ_AGG_GROUP},
        {"stddev(x)", AG_PQ_AGG_STDDEV}, {"stdvar(x)", AG_PQ_AGG_STDVAR},
        {"topk(1, x)", AG_PQ_AGG_TOPK},  {"bottomk(1, x)", AG_PQ_AGG_BOTTOMK},
        {"quantile(0.5, x)", AG_PQ_AGG_QUANTILE},
        {"count_values(\"a\", x)", AG_PQ_AGG_COUNT_VALUES},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        n = parse_ok(ops[i].q);
        assert_int_equal(n->type, AG_PQ_AGGREGATE);
        assert_int_equal(n->u.agg.op, ops[i].op);
        assert_int_equal(n->u.agg.param != NULL, ops[i].op >= AG_PQ_AGG_TOPK);
        want_format(ops[i].q, ops[i].q);
        ag_promql_free(n);
    }
}

static void test_call(void **state)
{
    (void)state;
    ag_pq_node_t *n = parse_ok("rate(foo[5m])");
    assert_int_equal(n->type, AG_PQ_CALL);
    assert_int_equal(n->vtype, AG_PQ_T_VECTOR);
    assert_string_equal(n->u.call.name, "rate");
    assert_int_equal(n->u.call.nargs, 1);
    assert_int_equal(n->u.call.args[0]->type, AG_PQ_MATRIX_SEL);
    assert_int_equal(n->u.call.args[0]->vtype, AG_PQ_T_MATRIX);
    assert_int_equal(n->u.call.args[0]->pos, 5);
    ag_promql_free(n);

    n = parse_ok("time()");
    assert_string_equal(n->u.call.name, "time");
    assert_int_equal(n->u.call.nargs, 0);
    assert_int_equal(n->vtype, AG_PQ_T_SCALAR);
    ag_promql_free(n);

    n = parse_ok("label_replace(up, \"a\", \"$1\", \"b\", \"(.*)\")");
    assert_int_equal(n->u.call.nargs, 5);
    assert_int_equal(n->u.call.args[1]->type, AG_PQ_STRING);
    assert_int_equal(n->u.call.args[1]->vtype, AG_PQ_T_STRING);
    ag_promql_free(n);

    n = parse_ok("round(foo, 0.5)");
    assert_int_equal(n->u.call.nargs, 2);
    ag_promql_free(n);
    n = parse_ok("scalar(foo)");
    assert_int_equal(n->vtype, AG_PQ_T_SCALAR);
    ag_promql_free(n);
}

static void test_subquery_and_at(void **state)
{
    (void)state;
    ag_pq_node_t *n = parse_ok("foo[5m:1m]");
    assert_int_equal(n->type, AG_PQ_SUBQUERY);
    assert_int_equal(n->vtype, AG_PQ_T_MATRIX);
    assert_int_equal(n->u.subquery.range_ms, 300000);
    assert_int_equal(n->u.subquery.step_ms, 60000);
    assert_int_equal(n->u.subquery.offset_ms, 0);
    assert_int_equal(n->u.subquery.at, AG_PQ_AT_NONE);
    assert_int_equal(n->u.subquery.expr->type, AG_PQ_VECTOR_SEL);
    assert_int_equal(n->u.subquery.expr->vtype, AG_PQ_T_VECTOR);
    ag_promql_free(n);

    n = parse_ok("rate(foo[1m])[1h:] offset -10m @ 50.5");
    assert_int_equal(n->type, AG_PQ_SUBQUERY);
    assert_int_equal(n->u.subquery.step_ms, 0);
    assert_int_equal(n->u.subquery.offset_ms, -600000);
    assert_int_equal(n->u.subquery.at, AG_PQ_AT_TIME);
    assert_int_equal(n->u.subquery.at_ms, 50500);
    assert_int_equal(n->u.subquery.expr->type, AG_PQ_CALL);
    ag_promql_free(n);

    n = parse_ok("sum(foo)[10m:] @ start()");
    assert_int_equal(n->u.subquery.at, AG_PQ_AT_START);
    ag_promql_free(n);

    n = parse_ok("foo @ 1609746000");
    assert_int_equal(n->type, AG_PQ_VECTOR_SEL);
    assert_int_equal(n->u.sel.at, AG_PQ_AT_TIME);
    assert_int_equal(n->u.sel.at_ms, 1609746000000LL);
    ag_promql_free(n);

    n = parse_ok("foo @ -0.0005 offset 1m");
    assert_int_equal(n->u.sel.at, AG_PQ_AT_TIME);
    assert_int_equal(n->u.sel.at_ms, -1); /* math.Round: half away from zero */
    assert_int_equal(n->u.sel.offset_ms, 60000);
    ag_promql_free(n);

    n = parse_ok("foo @ 1.2344");
    assert_int_equal(n->u.sel.at_ms, 1234);
    ag_promql_free(n);

    n = parse_ok("foo[5m] @ end()");
    assert_int_equal(n->type, AG_PQ_MATRIX_SEL);
    assert_int_equal(n->u.sel.at, AG_PQ_AT_END);
    ag_promql_free(n);

    n = parse_ok("foo offset 5m @ start()");
    assert_int_equal(n->u.sel.at, AG_PQ_AT_START);
    assert_int_equal(n->u.sel.offset_ms, 300000);
    ag_promql_free(n);
}

static void test_format_expressions(void **state)
{
    (void)state;
    /* Unary. */
    want_format("-foo", "-foo");
    want_format("+ foo", "+foo");
    want_format("- - foo", "--foo");
    want_format("-(1)", "-(1)");
    want_format("-foo ^ 2", "-foo ^ 2");
    want_format("-foo offset 5m", "-foo offset 5m");
    /* Binary. */
    want_format("1+2*3", "1 + 2 * 3");
    want_format("(1+2)*3", "(1 + 2) * 3");
    want_format("foo-- 1", "foo - -1");
    want_format("foo >bool 1", "foo > bool 1");
    want_format("1 == BOOL 1", "1 == bool 1");
    want_format("foo / ON(a,b) GROUP_LEFT(c) bar", "foo / on(a, b) group_left(c) bar");
    want_format("foo / on(a) group_right bar", "foo / on(a) group_right() bar");
    want_format("foo * ignoring(x) bar", "foo * ignoring(x) bar");
    want_format("foo * ignoring() bar", "foo * bar");
    want_format("foo and on() bar", "foo and on() bar");
    want_format("foo or ignoring(a,) bar", "foo or ignoring(a) bar");
    want_format("foo > bool on(a) bar", "foo > bool on(a) bar");
    want_format("foo + on() 1", "foo + 1");
    want_format("foo atan2 bar", "foo atan2 bar");
    want_format("a unless b", "a unless b");
    want_format("2 ^ 3 ^ 2", "2 ^ 3 ^ 2");
    want_format("Inf ^ 2", "Inf ^ 2"); /* not "+Inf ^ 2": that would parse as +(Inf ^ 2) */
    want_format("-inf ^ 2", "-Inf ^ 2");
    want_format("foo ^ -inf ^ 2", "foo ^ -Inf ^ 2");
    want_format("Inf + 1", "+Inf + 1");
    /* Aggregations. */
    want_format("sum(foo)", "sum(foo)");
    want_format("SUM BY(job)(foo)", "sum by (job) (foo)");
    want_format("sum(foo) by (job, instance)", "sum by (job, instance) (foo)");
    want_format("sum by () (foo)", "sum(foo)");
    want_format("sum without () (foo)", "sum without () (foo)");
    want_format("max without(a) (foo)", "max without (a) (foo)");
    want_format("topk(5, foo)", "topk(5, foo)");
    want_format("topk by (job) (5, foo)", "topk by (job) (5, foo)");
    want_format("quantile(0.9, foo) without (a)", "quantile without (a) (0.9, foo)");
    want_format("count_values('v', foo)", "count_values(\"v\", foo)");
    want_format("sum by (job) (rate(foo[5m]))", "sum by (job) (rate(foo[5m]))");
    /* Calls. */
    want_format("rate(foo[5m])", "rate(foo[5m])");
    want_format("time()", "time()");
    want_format("clamp(foo,1,2)", "clamp(foo, 1, 2)");
    want_format("label_join(up, 'a', ',', 'b', 'c')", "label_join(up, \"a\", \",\", \"b\", \"c\")");
    want_format("histogram_quantile(0.9, sum by (le) (rate(x[5m])))",
                "histogram_quantile(0.9, sum by (le) (rate(x[5m])))");
    /* Subqueries and @. */
    want_format("foo[5m:1m]", "foo[5m:1m]");
    want_format("foo[300s:]", "foo[5m:]");
    want_format("rate(foo[1m])[1h:5m] offset 1m", "rate(foo[1m])[1h:5m] offset 1m");
    want_format("foo[5m:] offset -1m @ 100", "foo[5m:] @ 100.000 offset -1m");
    want_format("(foo + bar)[5m:] @ end()", "(foo + bar)[5m:] @ end()");
    want_format("foo offset 1m[5m:]", "foo offset 1m[5m:]");
    want_format("foo @ 100", "foo @ 100.000");
    want_format("foo @ 1.5", "foo @ 1.500");
    want_format("foo @ -1.5", "foo @ -1.500");
    want_format("foo @ 0.0004", "foo @ 0.000");
    want_format("foo @ 1e3", "foo @ 1000.000");
    want_format("foo{a=\"b\"} offset 5m @ 1", "foo{a=\"b\"} @ 1.000 offset 5m");
    want_format("foo @ start()", "foo @ start()");
    want_format("foo[5m] offset 1m @ end()", "foo[5m] @ end() offset 1m");
    want_format("foo[5m] @ 1", "foo[5m] @ 1.000");
    /* Metric names that are keywords elsewhere. */
    want_format("sum @ 1", "sum @ 1.000");
    want_format("sum + sum", "sum + sum");
    want_format("sum(sum)", "sum(sum)");
}

static void test_vtype(void **state)
{
    (void)state;
    struct {
        const char *q;
        ag_pq_vtype_t t;
    } cases[] = {
        {"1", AG_PQ_T_SCALAR},          {"\"a\"", AG_PQ_T_STRING},
        {"foo", AG_PQ_T_VECTOR},        {"foo[1m]", AG_PQ_T_MATRIX},
        {"(foo[1m])", AG_PQ_T_MATRIX},  {"foo[1m:]", AG_PQ_T_MATRIX},
        {"1 + foo", AG_PQ_T_VECTOR},    {"foo + 1", AG_PQ_T_VECTOR},
        {"1 + 1", AG_PQ_T_SCALAR},      {"-time()", AG_PQ_T_SCALAR},
        {"pi()", AG_PQ_T_SCALAR},       {"vector(1)", AG_PQ_T_VECTOR},
        {"(\"s\")", AG_PQ_T_STRING},    {"count(foo)", AG_PQ_T_VECTOR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ag_pq_node_t *n = parse_ok(cases[i].q);
        if (n->vtype != cases[i].t) fail_msg("vtype(%s) = %d, want %d", cases[i].q, n->vtype, cases[i].t);
        ag_promql_free(n);
    }
}

static void test_format(void **state)
{
    (void)state;
    want_format("1", "1");
    want_format("-1", "-1");
    want_format("+1.5", "1.5");
    want_format("1e6", "1e+06");
    want_format("123456", "123456");
    want_format("0.0001", "0.0001");
    want_format("0.00001", "1e-05");
    want_format("0x1f", "31");
    want_format("1_000", "1000");
    want_format("Inf", "+Inf");
    want_format("-inf", "-Inf");
    want_format("nan", "NaN");
    want_format("-0", "-0");
    want_format("'it\\'s'", "\"it's\"");
    want_format("`a\\b\"`", "\"a\\\\b\\\"\"");
    want_format("\"\\x00\\xff\\u00e9\\u2028\\ufffd\\U0001F600\"", "\"\\x00\\xff\xc3\xa9\\u2028\\ufffd\xf0\x9f\x98\x80\"");
    want_format("\"\\a\\b\\f\\n\\r\\t\\v\"", "\"\\a\\b\\f\\n\\r\\t\\v\"");
    want_format("foo", "foo");
    want_format("foo{}", "foo");
    want_format("foo{b=\"1\", a=\"2\",}", "foo{a=\"2\",b=\"1\"}");
    want_format("foo{a=\"x\", a!=\"x\", a=~\"x\", a!~\"x\"}", "foo{a!=\"x\",a!~\"x\",a=\"x\",a=~\"x\"}");
    want_format("{__name__=\"foo\"}", "{__name__=\"foo\"}");
    want_format("{__name__=~\"foo.*\", job='a'}", "{__name__=~\"foo.*\",job=\"a\"}");
    want_format("foo:bar{a=`b`}", "foo:bar{a=\"b\"}");
    want_format("foo offset 5m", "foo offset 5m");
    want_format("foo offset -5m", "foo offset -5m");
    want_format("foo OFFSET 90m", "foo offset 1h30m");
    want_format("foo[5m]", "foo[5m]");
    want_format("foo[300s] offset 1d", "foo[5m] offset 1d");
    want_format("foo{a=\"b\"}[1y1d] offset 7d", "foo{a=\"b\"}[366d] offset 1w");
    want_format("foo[54s321ms]", "foo[54s321ms]");
    want_format("((foo[5m]))", "((foo[5m]))");
    want_format("( 1 )", "(1)");
    want_format("sum", "sum");
    want_format("offset offset 1m", "offset offset 1m");
    want_format("sum{a=\"b\"}[5m]", "sum{a=\"b\"}[5m]");
    want_format("foo # comment", "foo");
}

static void test_nesting_limit(void **state)
{
    (void)state;
    char q[4200];
    size_t o = 0;
    for (int i = 0; i < 900; i++) q[o++] = '(';
    q[o++] = '1';
    for (int i = 0; i < 900; i++) q[o++] = ')';
    q[o] = 0;
    ag_pq_node_t *n = parse_ok(q);
    ag_promql_free(n);

    o = 0;
    for (int i = 0; i < 2000; i++) q[o++] = '(';
    q[o] = 0;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_promql_parse(q, o, &n, &e), AG_EINVAL);
    assert_non_null(strstr(e.msg, "nested too deeply"));

    o = 0;
    for (int i = 0; i < 4000; i++) q[o++] = '-';
    q[o++] = '1';
    q[o] = 0;
    assert_int_equal(ag_promql_parse(q, o, &n, &e), AG_EINVAL);

    /* A long operator chain is deep as a tree even though it parses iteratively. */
    o = 0;
    for (int i = 0; i < 1100; i++) {
        q[o++] = '1';
        q[o++] = '+';
    }
    q[o++] = '1';
    q[o] = 0;
    assert_int_equal(ag_promql_parse(q, o, &n, &e), AG_EINVAL);
    assert_non_null(strstr(e.msg, "nested too deeply"));
}

static void test_embedded_nul_and_length(void **state)
{
    (void)state;
    /* The length argument, not a NUL terminator, delimits the query. */
    ag_pq_node_t *n = NULL;
    ag_errmsg_t e = {{0}, -1};
    assert_int_equal(ag_promql_parse("foo bar", 3, &n, &e), AG_OK);
    assert_string_equal(n->u.sel.metric_name, "foo");
    ag_promql_free(n);
    assert_int_equal(ag_promql_parse("foo\0bar", 7, &n, &e), AG_EINVAL);
    assert_string_equal(e.msg, "1:4: parse error: unexpected character: '\\x00'");
    ag_promql_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number_literals),   cmocka_unit_test(test_number_literals_paren),
        cmocka_unit_test(test_string_literals),   cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_ranges_and_offsets), cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_unary),             cmocka_unit_test(test_binary),
        cmocka_unit_test(test_aggregate),         cmocka_unit_test(test_call),
        cmocka_unit_test(test_subquery_and_at),   cmocka_unit_test(test_format_expressions),
        cmocka_unit_test(test_vtype),             cmocka_unit_test(test_format),
        cmocka_unit_test(test_nesting_limit),     cmocka_unit_test(test_embedded_nul_and_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
