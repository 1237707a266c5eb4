/* test_promql.c - unit tests for the PromQL lexer/parser/formatter (daemon/promql): literals,
 * strings, selectors, offsets and ranges, Prometheus-worded syntax errors with their positions,
 * AG_EUNSUPPORTED for valid PromQL outside the subset, and canonical-text round trips. */
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
    /* Type errors (checked before anything is rejected as unsupported). */
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
    /* Positions are line:column on multi-line queries. */
    want_error("foo\n+", E, "2:2: parse error: unexpected end of input", 5);
    want_error("foo +\n  bar{", E, "2:7: parse error: unexpected end of input inside braces", 12);
}

static void test_unsupported(void **state)
{
    (void)state;
    const int U = AG_EUNSUPPORTED;
    want_error("1 + 1", U, "binary operator \"+\" is not supported yet", 2);
    want_error("foo / on(a) group_left(b) bar", U, "binary operator \"/\" is not supported yet", 4);
    want_error("foo and bar", U, "binary operator \"and\" is not supported yet", 4);
    want_error("2 ^ 3 ^ 2", U, "binary operator \"^\" is not supported yet", 2);
    want_error("foo atan2 bar", U, "binary operator \"atan2\" is not supported yet", 4);
    want_error("1 == bool 1", U, "binary operator \"==\" is not supported yet", 2);
    want_error("rate(foo[5m])", U, "function \"rate\" is not supported yet", 0);
    want_error("time()", U, "function \"time\" is not supported yet", 0);
    want_error("sum(foo)", U, "aggregation \"sum\" is not supported yet", 0);
    want_error("SUM by (job) (foo)", U, "aggregation \"sum\" is not supported yet", 0);
    want_error("topk(3, foo) without (a)", U, "aggregation \"topk\" is not supported yet", 0);
    want_error("foo[5m:1m]", U, "subqueries are not supported yet", 3);
    want_error("foo[5m:]", U, "subqueries are not supported yet", 3);
    want_error("foo @ 1609746000", U, "the @ modifier is not supported yet", 4);
    want_error("foo[5m] @ end()", U, "the @ modifier is not supported yet", 8);
    want_error("-foo", U, "unary operator \"-\" is not supported yet", 0);
    want_error("+foo", U, "unary operator \"+\" is not supported yet", 0);
    want_error("-(1)", U, "unary operator \"-\" is not supported yet", 0);
    want_error("(foo offset 5m) * 2", U, "binary operator \"*\" is not supported yet", 16);
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
        cmocka_unit_test(test_unsupported),       cmocka_unit_test(test_format),
        cmocka_unit_test(test_nesting_limit),     cmocka_unit_test(test_embedded_nul_and_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
