/* lexer.c - the PromQL tokenizer (see lexer.h): a transcription of Prometheus 2.42's
 * promql/parser/lex.go state machine, with the same tokens, error texts and error positions,
 * plus the Go quoting helpers (strconv.Quote, QuoteRune, %#U) its messages and the canonical
 * query text need.
 */
#include "lexer.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define EOF_RUNE (-1)
#define RUNE_ERROR 0xFFFD

/* ---- Go quoting helpers ---------------------------------------------------------------------- */

int32_t pq_decode_rune(const char *s, int n, int *width)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[0];
    if (c < 0x80) {
        *width = 1;
        return (int32_t)c;
    }
    int len;
    unsigned lo = 0x80, hi = 0xbf;
    int32_t r;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        r = (int32_t)(c & 0x1f);
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        r = (int32_t)(c & 0x0f);
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        r = (int32_t)(c & 0x07);
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        *width = 1;
        return RUNE_ERROR;
    }
    if (n < len || u[1] < lo || u[1] > hi) {
        *width = 1;
        return RUNE_ERROR;
    }
    for (int i = 1; i < len; i++) {
        if (u[i] < 0x80 || u[i] > 0xbf) {
            *width = 1;
            return RUNE_ERROR;
        }
        r = (r << 6) | (int32_t)(u[i] & 0x3f);
    }
    *width = len;
    return r;
}

bool pq_is_print(int32_t r)
{
    if (r < 0x20 || r == 0x7f) return false;
    if (r < 0x7f) return true;
    if (r < 0xa0 || r == 0xad) return false; /* C1 controls, soft hyphen */
    if (r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)) return false;
    /* Spaces other than U+0020 (category Z). */
    if (r == 0xa0 || r == 0x1680 || (r >= 0x2000 && r <= 0x200a) || r == 0x2028 ||
        r == 0x2029 || r == 0x202f || r == 0x205f || r == 0x3000)
        return false;
    /* Common format characters (category Cf). */
    if ((r >= 0x600 && r <= 0x605) || r == 0x61c || r == 0x6dd || r == 0x70f || r == 0x180e ||
        (r >= 0x200b && r <= 0x200f) || (r >= 0x202a && r <= 0x202e) ||
        (r >= 0x2060 && r <= 0x206f) || r == 0xfeff || (r >= 0xfff9 && r <= 0xfffb) ||
        r == 0x110bd || (r >= 0x1bca0 && r <= 0x1bca3) || (r >= 0x1d173 && r <= 0x1d17a) ||
        r == 0xe0001 || (r >= 0xe0020 && r <= 0xe007f))
        return false;
    /* Private use and noncharacters. */
    if ((r >= 0xe000 && r <= 0xf8ff) || r >= 0xf0000 || (r & 0xfffe) == 0xfffe ||
        (r >= 0xfdd0 && r <= 0xfdef))
        return false;
    return true;
}

static void put_escaped_rune(ag_buf_t *b, int32_t r, char quote)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[12];
    if (r == quote || r == '\\') {
        tmp[0] = '\\';
        tmp[1] = (char)r;
        ag_buf_append(b, tmp, 2);
        return;
    }
    if (pq_is_print(r) && r != RUNE_ERROR) {
        /* Encode r as UTF-8. */
        int n;
        if (r < 0x80) {
            tmp[0] = (char)r;
            n = 1;
        } else if (r < 0x800) {
            tmp[0] = (char)(0xc0 | (r >> 6));
            tmp[1] = (char)(0x80 | (r & 0x3f));
            n = 2;
        } else if (r < 0x10000) {
            tmp[0] = (char)(0xe0 | (r >> 12));
            tmp[1] = (char)(0x80 | ((r >> 6) & 0x3f));
            tmp[2] = (char)(0x80 | (r & 0x3f));
            n = 3;
        } else {
            tmp[0] = (char)(0xf0 | (r >> 18));
            tmp[1] = (char)(0x80 | ((r >> 12) & 0x3f));
            tmp[2] = (char)(0x80 | ((r >> 6) & 0x3f));
            tmp[3] = (char)(0x80 | (r & 0x3f));
            n = 4;
        }
        ag_buf_append(b, tmp, (size_t)n);
        return;
    }
    switch (r) {
    case '\a': ag_buf_append(b, "\\a", 2); return;
    case '\b': ag_buf_append(b, "\\b", 2); return;
    case '\f': ag_buf_append(b, "\\f", 2); return;
    case '\n': ag_buf_append(b, "\\n", 2); return;
    case '\r': ag_buf_append(b, "\\r", 2); return;
    case '\t': ag_buf_append(b, "\\t", 2); return;
    case '\v': ag_buf_append(b, "\\v", 2); return;
    default: break;
    }
    if (r < ' ' || r == 0x7f) {
        tmp[0] = '\\';
        tmp[1] = 'x';
        tmp[2] = hex[(r >> 4) & 15];
        tmp[3] = hex[r & 15];
        ag_buf_append(b, tmp, 4);
    } else if (r > 0xffff) {
        tmp[0] = '\\';
        tmp[1] = 'U';
        for (int i = 0; i < 8; i++) tmp[2 + i] = hex[(r >> (28 - 4 * i)) & 15];
        ag_buf_append(b, tmp, 10);
    } else {
        tmp[0] = '\\';
        tmp[1] = 'u';
        for (int i = 0; i < 4; i++) tmp[2 + i] = hex[(r >> (12 - 4 * i)) & 15];
        ag_buf_append(b, tmp, 6);
    }
}

void pq_quote(ag_buf_t *b, const char *s, size_t n, int max_runes)
{
    static const char hex[] = "0123456789abcdef";
    ag_buf_putc(b, '"');
    size_t i = 0;
    int runes = 0;
    while (i < n && (max_runes < 0 || runes < max_runes)) {
        int w;
        size_t rest = n - i;
        int32_t r = pq_decode_rune(s + i, rest > 8 ? 8 : (int)rest, &w);
        runes++;
        if (r == RUNE_ERROR && w == 1) {
            /* An invalid byte: \xHH, as Go does. */
            unsigned char c = (unsigned char)s[i];
            char tmp[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            ag_buf_append(b, tmp, 4);
        } else {
            put_escaped_rune(b, r, '"');
        }
        i += (size_t)w;
    }
    ag_buf_putc(b, '"');
}

void pq_quote_rune(ag_buf_t *b, int32_t r)
{
    if (r < 0 || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)) r = RUNE_ERROR;
    ag_buf_putc(b, '\'');
    if (r == RUNE_ERROR) {
        ag_buf_append(b, "\xef\xbf\xbd", 3); /* Go prints the replacement character itself */
    } else {
        put_escaped_rune(b, r, '\'');
    }
    ag_buf_putc(b, '\'');
}

/* ---- token classes ---------------------------------------------------------------------------- */

static const struct {
    const char *word;
    pq_tok_t type;
} keywords[] = {
    {"and", PQ_LAND},       {"or", PQ_LOR},
    {"unless", PQ_LUNLESS}, {"atan2", PQ_ATAN2},
    {"sum", PQ_SUM},        {"avg", PQ_AVG},
    {"count", PQ_COUNT},    {"min", PQ_MIN},
    {"max", PQ_MAX},        {"group", PQ_GROUP},
    {"stddev", PQ_STDDEV},  {"stdvar", PQ_STDVAR},
    {"topk", PQ_TOPK},      {"bottomk", PQ_BOTTOMK},
    {"count_values", PQ_COUNT_VALUES},
    {"quantile", PQ_QUANTILE},
    {"offset", PQ_OFFSET},  {"by", PQ_BY},
    {"without", PQ_WITHOUT}, {"on", PQ_ON},
    {"ignoring", PQ_IGNORING},
    {"group_left", PQ_GROUP_LEFT},
    {"group_right", PQ_GROUP_RIGHT},
    {"bool", PQ_BOOL},      {"start", PQ_START},
    {"end", PQ_END},        {"inf", PQ_NUMBER},
    {"nan", PQ_NUMBER},
};

const char *pq_tok_str(pq_tok_t t)
{
    switch (t) {
    case PQ_LEFT_PAREN: return "(";
    case PQ_RIGHT_PAREN: return ")";
    case PQ_LEFT_BRACE: return "{";
    case PQ_RIGHT_BRACE: return "}";
    case PQ_LEFT_BRACKET: return "[";
    case PQ_RIGHT_BRACKET: return "]";
    case PQ_COMMA: return ",";
    case PQ_EQL: return "=";
    case PQ_COLON: return ":";
    case PQ_SUB: return "-";
    case PQ_ADD: return "+";
    case PQ_MUL: return "*";
    case PQ_MOD: return "%";
    case PQ_DIV: return "/";
    case PQ_EQLC: return "==";
    case PQ_NEQ: return "!=";
    case PQ_LTE: return "<=";
    case PQ_LSS: return "<";
    case PQ_GTE: return ">=";
    case PQ_GTR: return ">";
    case PQ_EQL_REGEX: return "=~";
    case PQ_NEQ_REGEX: return "!~";
    case PQ_POW: return "^";
    case PQ_AT: return "@";
    default: break;
    }
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
        if (keywords[i].type == t && t != PQ_NUMBER) return keywords[i].word;
    return NULL;
}

bool pq_is_operator(pq_tok_t t)
{
    return t > PQ_OPERATORS_START && t < PQ_OPERATORS_END;
}

bool pq_is_aggregator(pq_tok_t t)
{
    return t > PQ_AGGREGATORS_START && t < PQ_AGGREGATORS_END;
}

bool pq_is_keyword(pq_tok_t t)
{
    return t > PQ_KEYWORDS_START && t < PQ_KEYWORDS_END;
}

static bool is_space(int32_t r)
{
    return r == ' ' || r == '\t' || r == '\n' || r == '\r';
}

static bool is_digit(int32_t r)
{
    return r >= '0' && r <= '9';
}

static bool is_alpha(int32_t r)
{
    return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
}

static bool is_alnum(int32_t r)
{
    return is_alpha(r) || is_digit(r);
}

/* ---- the scanner ------------------------------------------------------------------------------ */

void pq_lex_init(pq_lexer_t *l, const char *input, int len)
{
    memset(l, 0, sizeof *l);
    l->input = input;
    l->len = len;
}

static int32_t next(pq_lexer_t *l)
{
    if (l->pos >= l->len) {
        l->width = 0;
        return EOF_RUNE;
    }
    int w;
    int32_t r = pq_decode_rune(l->input + l->pos, l->len - l->pos, &w);
    l->width = w;
    l->pos += w;
    return r;
}

static void backup(pq_lexer_t *l)
{
    l->pos -= l->width;
}

static int32_t peek(pq_lexer_t *l)
{
    int32_t r = next(l);
    backup(l);
    return r;
}

static bool accept(pq_lexer_t *l, const char *valid)
{
    int32_t r = next(l);
    if (r > 0 && r < 0x80 && strchr(valid, (int)r)) return true;
    backup(l);
    return false;
}

static void ignore(pq_lexer_t *l)
{
    l->start = l->pos;
}

static void emit(pq_lexer_t *l, pq_item_t *it, pq_tok_t t)
{
    it->type = t;
    it->pos = l->start;
    it->len = l->pos - l->start;
    l->start = l->pos;
}

static void errorf(pq_lexer_t *l, pq_item_t *it, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errorf(pq_lexer_t *l, pq_item_t *it, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->err, sizeof l->err, fmt, ap);
    va_end(ap);
    it->type = PQ_ERROR;
    it->pos = l->start;
    it->len = 0;
    l->done = true;
}

/* Error messages quoting a rune or a piece of input the way Go's %q does. */
static void error_rune(pq_lexer_t *l, pq_item_t *it, const char *prefix, int32_t r,
                       const char *suffix)
{
    ag_buf_t b = AG_BUF_INIT;
    pq_quote_rune(&b, r);
    errorf(l, it, "%s%s%s", prefix, ag_buf_ok(&b) ? b.data : "?", suffix);
    ag_buf_free(&b);
}

static void error_text(pq_lexer_t *l, pq_item_t *it, const char *prefix)
{
    ag_buf_t b = AG_BUF_INIT;
    pq_quote(&b, l->input + l->start, (size_t)(l->pos - l->start), -1);
    errorf(l, it, "%s%s", prefix, ag_buf_ok(&b) ? b.data : "?");
    ag_buf_free(&b);
}

/* Go's %#U: U+0078 'x' (the character only when printable). */
static void error_unicode(pq_lexer_t *l, pq_item_t *it, const char *prefix, int32_t r,
                          const char *suffix)
{
    char u[32];
    ag_buf_t b = AG_BUF_INIT;
    snprintf(u, sizeof u, "U+%04X", (unsigned)r);
    ag_buf_puts(&b, u);
    if (pq_is_print(r)) {
        ag_buf_putc(&b, ' ');
        pq_quote_rune(&b, r);
    }
    errorf(l, it, "%s%s%s", prefix, ag_buf_ok(&b) ? b.data : "?", suffix);
    ag_buf_free(&b);
}

static bool in_digits(int32_t r, bool hex)
{
    return is_digit(r) || (hex && ((r >= 'a' && r <= 'f') || (r >= 'A' && r <= 'F')));
}

/* acceptRun(digits), extended with Go-style underscores: an '_' is taken only between two
 * digits of the run. */
static void accept_digit_run(pq_lexer_t *l, bool hex)
{
    for (;;) {
        if (l->pos >= l->len) return;
        char c = l->input[l->pos];
        if (in_digits((unsigned char)c, hex)) {
            l->pos++;
        } else if (c == '_' && l->pos > 0 && in_digits((unsigned char)l->input[l->pos - 1], hex) &&
                   l->pos + 1 < l->len && in_digits((unsigned char)l->input[l->pos + 1], hex)) {
            l->pos++;
        } else {
            return;
        }
    }
}

/* scanNumber: the scanned text is not necessarily a valid number; the parser checks that. */
static bool scan_number(pq_lexer_t *l)
{
    bool hex = false;
    if (accept(l, "0") && accept(l, "xX")) {
        hex = true;
        /* Go allows one underscore right after the base prefix: 0x_1f. */
        if (l->pos + 1 < l->len && l->input[l->pos] == '_' &&
            in_digits((unsigned char)l->input[l->pos + 1], true))
            l->pos++;
    }
    accept_digit_run(l, hex);
    if (accept(l, ".")) accept_digit_run(l, hex);
    if (accept(l, "eE")) {
        accept(l, "+-");
        accept_digit_run(l, false);
    }
    return !is_alnum(peek(l));
}

static bool accept_remaining_duration(pq_lexer_t *l)
{
    if (!accept(l, "smhdwy")) return false;
    accept(l, "s"); /* ms; bad units like "hs" are caught when the duration is parsed */
    while (accept(l, "0123456789")) {
        while (accept(l, "0123456789")) {
        }
        if (!accept(l, "smhdw")) return false; /* y may only come first */
        accept(l, "s");
    }
    return !is_alnum(next(l));
}

static void lex_number_or_duration(pq_lexer_t *l, pq_item_t *it)
{
    if (scan_number(l)) {
        emit(l, it, PQ_NUMBER);
        return;
    }
    if (accept_remaining_duration(l)) {
        backup(l);
        emit(l, it, PQ_DURATION);
        return;
    }
    error_text(l, it, "bad number or duration syntax: ");
}

static void lex_duration(pq_lexer_t *l, pq_item_t *it)
{
    if (scan_number(l)) {
        errorf(l, it, "missing unit character in duration");
        return;
    }
    if (!accept_remaining_duration(l)) {
        error_text(l, it, "bad duration syntax: ");
        return;
    }
    backup(l);
    emit(l, it, PQ_DURATION);
}

static int digit_val(int32_t ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return 16;
}

/* lexEscape: the backslash has been read. Returns false (with an error item) on a bad escape. */
static bool lex_escape(pq_lexer_t *l, pq_item_t *it, int32_t quote)
{
    int n;
    uint32_t base, max;
    int32_t ch = next(l);
    switch (ch) {
    case 'a': case 'b': case 'f': case 'n': case 'r': case 't': case 'v': case '\\':
        return true;
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
        n = 3, base = 8, max = 255;
        break;
    case 'x':
        ch = next(l);
        n = 2, base = 16, max = 255;
        break;
    case 'u':
        ch = next(l);
        n = 4, base = 16, max = 0x10ffff;
        break;
    case 'U':
        ch = next(l);
        n = 8, base = 16, max = 0x10ffff;
        break;
    case EOF_RUNE:
        errorf(l, it, "escape sequence not terminated");
        return false;
    default:
        if (ch == quote) return true;
        error_unicode(l, it, "unknown escape sequence ", ch, "");
        return false;
    }
    uint32_t x = 0;
    while (n > 0) {
        uint32_t d = (uint32_t)digit_val(ch);
        if (d >= base) {
            if (ch == EOF_RUNE) {
                errorf(l, it, "escape sequence not terminated");
            } else {
                error_unicode(l, it, "illegal character ", ch, " in escape sequence");
            }
            return false;
        }
        x = x * base + d;
        n--;
        if (n > 0) ch = next(l); /* don't read past the last digit */
    }
    if (x > max || (x >= 0xd800 && x < 0xe000)) {
        errorf(l, it, "escape sequence is an invalid Unicode code point");
        return false;
    }
    return true;
}

static void lex_string(pq_lexer_t *l, pq_item_t *it, int32_t quote)
{
    for (;;) {
        int32_t r = next(l);
        if (r == '\\') {
            if (!lex_escape(l, it, quote)) return;
        } else if (r == RUNE_ERROR) {
            /* Like Go this also rejects a literal U+FFFD. */
            errorf(l, it, "invalid UTF-8 rune");
            return;
        } else if (r == EOF_RUNE || r == '\n') {
            errorf(l, it, "unterminated quoted string");
            return;
        } else if (r == quote) {
            break;
        }
    }
    emit(l, it, PQ_STRING);
}

static void lex_raw_string(pq_lexer_t *l, pq_item_t *it)
{
    for (;;) {
        int32_t r = next(l);
        if (r == RUNE_ERROR) {
            errorf(l, it, "invalid UTF-8 rune");
            return;
        } else if (r == EOF_RUNE) {
            errorf(l, it, "unterminated raw string");
            return;
        } else if (r == '`') {
            break;
        }
    }
    emit(l, it, PQ_STRING);
}

static void skip_spaces(pq_lexer_t *l)
{
    while (is_space(peek(l))) next(l);
    ignore(l);
}

static void lex_line_comment(pq_lexer_t *l, pq_item_t *it)
{
    l->pos += 1; /* '#' */
    int32_t r = next(l);
    while (r != '\r' && r != '\n' && r != EOF_RUNE) r = next(l);
    backup(l);
    emit(l, it, PQ_COMMENT);
}

static void lex_keyword_or_identifier(pq_lexer_t *l, pq_item_t *it)
{
    int32_t r;
    bool colon = false;
    while ((r = next(l)) != EOF_RUNE && (is_alnum(r) || r == ':'))
        if (r == ':') colon = true;
    backup(l);
    int n = l->pos - l->start;
    const char *w = l->input + l->start;
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++) {
        if ((int)strlen(keywords[i].word) == n && strncasecmp(keywords[i].word, w, (size_t)n) == 0) {
            emit(l, it, keywords[i].type);
            return;
        }
    }
    emit(l, it, colon ? PQ_METRIC_IDENTIFIER : PQ_IDENTIFIER);
}

/* lexInsideBraces: one step; returns true when an item was produced. */
static bool lex_inside_braces(pq_lexer_t *l, pq_item_t *it)
{
    if (l->pos < l->len && l->input[l->pos] == '#') {
        lex_line_comment(l, it);
        return true;
    }
    int32_t r = next(l);
    if (r == EOF_RUNE) {
        errorf(l, it, "unexpected end of input inside braces");
    } else if (is_space(r)) {
        skip_spaces(l);
        return false;
    } else if (is_alpha(r)) {
        while (is_alnum(peek(l))) next(l);
        emit(l, it, PQ_IDENTIFIER);
    } else if (r == ',') {
        emit(l, it, PQ_COMMA);
    } else if (r == '"' || r == '\'') {
        lex_string(l, it, r);
    } else if (r == '`') {
        lex_raw_string(l, it);
    } else if (r == '=') {
        if (next(l) == '~') {
            emit(l, it, PQ_EQL_REGEX);
        } else {
            backup(l);
            emit(l, it, PQ_EQL);
        }
    } else if (r == '!') {
        int32_t nr = next(l);
        if (nr == '~') emit(l, it, PQ_NEQ_REGEX);
        else if (nr == '=') emit(l, it, PQ_NEQ);
        else error_rune(l, it, "unexpected character after '!' inside braces: ", nr, "");
    } else if (r == '{') {
        error_rune(l, it, "unexpected left brace ", r, "");
    } else if (r == '}') {
        emit(l, it, PQ_RIGHT_BRACE);
        l->brace_open = false;
    } else {
        error_rune(l, it, "unexpected character inside braces: ", r, "");
    }
    return true;
}

/* lexStatements: one step; returns true when an item was produced. */
static bool lex_statements(pq_lexer_t *l, pq_item_t *it)
{
    if (l->brace_open) return lex_inside_braces(l, it);
    if (l->pos < l->len && l->input[l->pos] == '#') {
        lex_line_comment(l, it);
        return true;
    }
    int32_t r = next(l);
    switch (r) {
    case EOF_RUNE:
        if (l->paren_depth != 0) {
            errorf(l, it, "unclosed left parenthesis");
        } else if (l->bracket_open) {
            errorf(l, it, "unclosed left bracket");
        } else {
            emit(l, it, PQ_EOF);
            l->done = true;
        }
        return true;
    case ',': emit(l, it, PQ_COMMA); return true;
    case '*': emit(l, it, PQ_MUL); return true;
    case '/': emit(l, it, PQ_DIV); return true;
    case '%': emit(l, it, PQ_MOD); return true;
    case '+': emit(l, it, PQ_ADD); return true;
    case '-': emit(l, it, PQ_SUB); return true;
    case '^': emit(l, it, PQ_POW); return true;
    case '@': emit(l, it, PQ_AT); return true;
    case '=': {
        int32_t t = peek(l);
        if (t == '=') {
            next(l);
            emit(l, it, PQ_EQLC);
        } else if (t == '~') {
            error_rune(l, it, "unexpected character after '=': ", t, "");
        } else {
            emit(l, it, PQ_EQL);
        }
        return true;
    }
    case '!': {
        int32_t t = next(l);
        if (t == '=') emit(l, it, PQ_NEQ);
        else error_rune(l, it, "unexpected character after '!': ", t, "");
        return true;
    }
    case '<':
    case '>': {
        bool eq = peek(l) == '=';
        if (eq) next(l);
        emit(l, it, r == '<' ? (eq ? PQ_LTE : PQ_LSS) : (eq ? PQ_GTE : PQ_GTR));
        return true;
    }
    case '"':
    case '\'':
        lex_string(l, it, r);
        return true;
    case '`':
        lex_raw_string(l, it);
        return true;
    case '(':
        emit(l, it, PQ_LEFT_PAREN);
        l->paren_depth++;
        return true;
    case ')':
        emit(l, it, PQ_RIGHT_PAREN);
        l->paren_depth--;
        if (l->paren_depth < 0) error_rune(l, it, "unexpected right parenthesis ", r, "");
        return true;
    case '{':
        emit(l, it, PQ_LEFT_BRACE);
        l->brace_open = true;
        return true;
    case '[':
        if (l->bracket_open) {
            error_rune(l, it, "unexpected left bracket ", r, "");
            return true;
        }
        l->got_colon = false;
        emit(l, it, PQ_LEFT_BRACKET);
        if (is_space(peek(l))) skip_spaces(l);
        l->bracket_open = true;
        l->want_duration = true;
        return true;
    case ']':
        if (!l->bracket_open) {
            error_rune(l, it, "unexpected right bracket ", r, "");
            return true;
        }
        emit(l, it, PQ_RIGHT_BRACKET);
        l->bracket_open = false;
        return true;
    default: break;
    }
    if (is_space(r)) {
        skip_spaces(l);
        return false;
    }
    if (is_digit(r) || (r == '.' && is_digit(peek(l)))) {
        backup(l);
        lex_number_or_duration(l, it);
        return true;
    }
    if (is_alpha(r) || r == ':') {
        if (!l->bracket_open) {
            backup(l);
            lex_keyword_or_identifier(l, it);
            return true;
        }
        /* Inside brackets 2.42 takes any letter or ':' as the subquery colon. */
        if (l->got_colon) {
            error_rune(l, it, "unexpected colon ", r, "");
            return true;
        }
        emit(l, it, PQ_COLON);
        l->got_colon = true;
        return true;
    }
    error_rune(l, it, "unexpected character: ", r, "");
    return true;
}

void pq_lex_next(pq_lexer_t *l, pq_item_t *it)
{
    if (l->done) {
        it->type = PQ_EOF;
        it->pos = l->pos;
        it->len = 0;
        return;
    }
    if (l->want_duration) {
        l->want_duration = false;
        lex_duration(l, it);
        return;
    }
    while (!lex_statements(l, it)) {
    }
}
