/* conformance.c - PromQL conformance runner: executes Prometheus 2.42's own PromQL test files
 * (the .test files of promql/testdata, kept read-only in ../shared/promql-testdata/) against our
 * parser, evaluator and store, prints a pass/fail table per file and, with --check, fails when a
 * file's pass count drops below the recorded baseline (tests/promql/baseline.txt).
 *
 * Usage: conformance [-v] [--check BASELINE] [--write-baseline BASELINE]
 *                    [--unsupported LIST] [--timeout SECONDS] FILE.test...
 *
 * The .test format is read the way Prometheus 2.42's promql/test.go reads it: lines are trimmed
 * and `#` lines are blank; `load <interval>` then series lines `name{l="v",...} <values>` up to
 * the next blank line (sample i at i*interval ms, starting at 0: times are NOT shifted, our store
 * takes any int64 timestamp); `clear` drops the data; `eval[_ordered|_fail] instant at <dur>
 * <expr>` then expected lines (`{labels} value`, `name{labels} value`, or a bare number for a
 * scalar) up to the next blank line. Loads accumulate until `clear`, as in Prometheus. Each eval
 * is one case, run as an instant query only (Prometheus also re-runs it as a range query; we do
 * not). Values compare with test.go's almostEqual (relative epsilon 1e-6, NaN equals NaN).
 *
 * A case is "pass", "fail" or "unsupported" (parser or evaluator answered AG_EUNSUPPORTED). An
 * eval_fail case passes on any other error from the parser or the evaluator (-v shows which).
 * Vector elements match by their full label set (__name__ included), in any order unless
 * eval_ordered. --unsupported defaults to tests/promql/unsupported.txt (optional); cases listed
 * there (`file:line reason`) still run but are not counted as failed in the final line
 * `promql-conformance: N passed, M failed` (failed = fail + unsupported - listed ones).
 *
 * Each file runs in a forked child (the parsed commands are inherited), so that a crash or a hang
 * (--timeout, default 20 s per case) of the evaluator costs one case, not the run: the parent
 * records the case as failed and restarts a child after it. Exit status: 0, 1 on a regression
 * against the baseline, 2 on usage, I/O or test-file syntax errors.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ag_err.h"
#include "ag_eval.h"
#include "ag_labels.h"
#include "ag_log.h"
#include "ag_promql.h"
#include "ag_store.h"
#include "ag_time.h"

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                              */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "conformance: out of memory\n");
        exit(2);
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "conformance: out of memory\n");
        exit(2);
    }
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* A growable string used for label encodings and messages. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sb_add(sbuf_t *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Label sets                                                                                 */

typedef struct lset {
    ag_label_t *l; /* owned names and values, sorted by name */
    size_t n;
} lset_t;

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const ag_label_t *)a)->name, ((const ag_label_t *)b)->name);
}

static void lset_free(lset_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free((char *)s->l[i].name);
        free((char *)s->l[i].value);
    }
    free(s->l);
    s->l = NULL;
    s->n = 0;
}

/* The canonical encoding `name \0 value \0 ...` (the set is sorted). */
static void lset_encode(const lset_t *s, sbuf_t *out)
{
    out->len = 0;
    sb_add(out, "", 0);
    for (size_t i = 0; i < s->n; i++) {
        sb_add(out, s->l[i].name, strlen(s->l[i].name) + 1);
        sb_add(out, s->l[i].value, strlen(s->l[i].value) + 1);
    }
}

/* Appends `{a="b", c="d"}` for an encoding. */
static void enc_format(const char *enc, size_t len, sbuf_t *out)
{
    sb_add(out, "{", 1);
    size_t i = 0;
    bool first = true;
    while (i < len) {
        const char *name = enc + i;
        size_t nl = strnlen(name, len - i);
        i += nl + 1;
        if (i > len) break;
        const char *val = enc + i;
        size_t vl = strnlen(val, len - i);
        i += vl + 1;
        if (!first) sb_add(out, ", ", 2);
        first = false;
        sb_add(out, name, nl);
        sb_add(out, "=\"", 2);
        sb_add(out, val, vl);
        sb_add(out, "\"", 1);
    }
    sb_add(out, "}", 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing of series descriptions: `name{l="v", ...} values` (parser.ParseSeriesDesc)          */

typedef struct seqval {
    bool omitted;
    double v;
} seqval_t;

typedef struct sdesc {
    lset_t labels;
    seqval_t *vals;
    size_t nvals;
} sdesc_t;

static void sdesc_free(sdesc_t *d)
{
    lset_free(&d->labels);
    free(d->vals);
    d->vals = NULL;
    d->nvals = 0;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static void put_utf8(sbuf_t *b, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    sb_add(b, u, n);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A Go string literal ("..", '..' or `..`) at *pp; returns the unquoted text or NULL. */
static char *parse_string(const char **pp, const char **err)
{
    const char *p = *pp;
    char q = *p++;
    sbuf_t b = {0};
    sb_add(&b, "", 0);
    if (q == '`') {
        const char *e = strchr(p, '`');
        if (!e) goto unterminated;
        sb_add(&b, p, (size_t)(e - p));
        *pp = e + 1;
        return b.p;
    }
    while (*p && *p != q) {
        if (*p != '\\') {
            sb_add(&b, p++, 1);
            continue;
        }
        p++;
        char c = *p++;
        int digits = 0;
        switch (c) {
        case 'a': sb_add(&b, "\a", 1); break;
        case 'b': sb_add(&b, "\b", 1); break;
        case 'f': sb_add(&b, "\f", 1); break;
        case 'n': sb_add(&b, "\n", 1); break;
        case 'r': sb_add(&b, "\r", 1); break;
        case 't': sb_add(&b, "\t", 1); break;
        case 'v': sb_add(&b, "\v", 1); break;
        case '\\': case '"': case '\'': sb_add(&b, &c, 1); break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (c >= '0' && c <= '7' && p[0] >= '0' && p[0] <= '7' && p[1] >= '0' && p[1] <= '7') {
                char o = (char)(((c - '0') << 6) | ((p[0] - '0') << 3) | (p[1] - '0'));
                sb_add(&b, &o, 1);
                p += 2;
                break;
            }
            *err = "invalid escape sequence in string";
            free(b.p);
            return NULL;
        }
        if (digits) {
            unsigned long v = 0;
            for (int i = 0; i < digits; i++, p++) {
                int h = hexval(*p);
                if (h < 0) {
                    *err = "invalid escape sequence in string";
                    free(b.p);
                    return NULL;
                }
                v = v * 16 + (unsigned long)h;
            }
            if (c == 'x') {
                char ch = (char)v;
                sb_add(&b, &ch, 1);
            } else {
                put_utf8(&b, v);
            }
        }
    }
    if (*p != q) goto unterminated;
    *pp = p + 1;
    return b.p;
unterminated:
    *err = "unterminated string";
    free(b.p);
    return NULL;
}

static void skip_ws(const char **pp)
{
    while (is_space(**pp)) (*pp)++;
}

/* Reads `name{labels}` into *ls (unsorted names checked for duplicates). */
static int parse_metric(const char **pp, lset_t *ls, const char **err)
{
    const char *p = *pp;
    size_t cap = 0;
    if (is_alpha(*p) || *p == ':') {
        const char *s = p;
        while (is_alpha(*p) || is_digit(*p) || *p == ':') p++;
        ls->l = xrealloc(ls->l, (cap = 8) * sizeof *ls->l);
        ls->l[0].name = xstrndup(AG_METRIC_NAME, strlen(AG_METRIC_NAME));
        ls->l[0].value = xstrndup(s, (size_t)(p - s));
        ls->n = 1;
    }
    skip_ws(&p);
    if (*p == '{') {
        p++;
        for (;;) {
            skip_ws(&p);
            if (*p == '}') {
                p++;
                break;
            }
            if (!is_alpha(*p)) {
                *err = "expected label name";
                return -1;
            }
            const char *s = p;
            while (is_alpha(*p) || is_digit(*p)) p++;
            char *name = xstrndup(s, (size_t)(p - s));
            skip_ws(&p);
            if (*p != '=' || p[1] == '~') {
                free(name);
                *err = "expected '=' after label name";
                return -1;
            }
            p++;
            skip_ws(&p);
            if (*p != '"' && *p != '\'' && *p != '`') {
                free(name);
                *err = "expected label value string";
                return -1;
            }
            char *val = parse_string(&p, err);
            if (!val) {
                free(name);
                return -1;
            }
            if (ls->n == cap) ls->l = xrealloc(ls->l, (cap = cap ? cap * 2 : 8) * sizeof *ls->l);
            ls->l[ls->n].name = name;
            ls->l[ls->n].value = val;
            ls->n++;
            skip_ws(&p);
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p == '}') {
                p++;
                break;
            }
            *err = "expected ',' or '}' in label set";
            return -1;
        }
    } else if (ls->n == 0) {
        *err = "expected metric name or '{'";
        return -1;
    }
    if (ls->n > 1) qsort(ls->l, ls->n, sizeof *ls->l, label_cmp);
    for (size_t i = 1; i < ls->n; i++)
        if (strcmp(ls->l[i - 1].name, ls->l[i].name) == 0) {
            *err = "duplicate label name";
            return -1;
        }
    *pp = p;
    return 0;
}

/* A number in a series sequence: digits [. digits] [e[+-]digits], or Inf/NaN (any case). No
 * hex: Prometheus' lexer refuses it in series descriptions ("0x10" is 0 repeated). */
static bool parse_seq_number(const char **pp, double *v)
{
    const char *p = *pp;
    if (is_digit(*p) || (*p == '.' && is_digit(p[1]))) {
        const char *s = p;
        while (is_digit(*p)) p++;
        if (*p == '.') {
            p++;
            while (is_digit(*p)) p++;
        }
        if (*p == 'e' || *p == 'E') {
            p++;
            if (*p == '+' || *p == '-') p++;
            while (is_digit(*p)) p++;
        }
        char tmp[64];
        size_t n = (size_t)(p - s);
        if (n >= sizeof tmp) return false;
        memcpy(tmp, s, n);
        tmp[n] = 0;
        char *end;
        *v = strtod(tmp, &end);
        if (*end) return false;
        *pp = p;
        return true;
    }
    if (is_alpha(*p)) {
        const char *s = p;
        while (is_alpha(*p) || is_digit(*p)) p++;
        size_t n = (size_t)(p - s);
        if (n == 3 && strncasecmp(s, "inf", 3) == 0) *v = INFINITY;
        else if (n == 3 && strncasecmp(s, "nan", 3) == 0) *v = NAN;
        else return false;
        *pp = p;
        return true;
    }
    return false;
}

static bool parse_signed(const char **pp, double *v)
{
    const char *p = *pp;
    double sign = 1;
    if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    if (!parse_seq_number(&p, v)) return false;
    *v *= sign;
    *pp = p;
    return true;
}

static bool parse_uint(const char **pp, unsigned long *u)
{
    const char *p = *pp;
    if (!is_digit(*p)) return false;
    unsigned long x = 0;
    while (is_digit(*p)) {
        x = x * 10 + (unsigned long)(*p++ - '0');
        if (x > 100000000UL) return false;
    }
    *u = x;
    *pp = p;
    return true;
}

static void seq_push(sdesc_t *d, size_t *cap, bool omitted, double v)
{
    if (d->nvals == *cap) d->vals = xrealloc(d->vals, (*cap = *cap ? *cap * 2 : 16) * sizeof *d->vals);
    d->vals[d->nvals].omitted = omitted;
    d->vals[d->nvals].v = v;
    d->nvals++;
}

/* Items separated by blanks: `_`, `_xN` (N blanks), `v`, `vxN` (N+1 times v), `a+bxN` / `a-bxN`
 * (N+1 values from a in steps of b), where v is a number, a signed number, Inf, NaN or `stale`. */
static int parse_values(const char *p, sdesc_t *d, const char **err)
{
    size_t cap = 0;
    for (;;) {
        skip_ws(&p);
        if (!*p) return 0;
        if (*p == '_') {
            p++;
            unsigned long n = 1;
            if (*p == 'x') {
                p++;
                if (!parse_uint(&p, &n)) goto bad;
            }
            for (unsigned long i = 0; i < n; i++) seq_push(d, &cap, true, 0);
        } else {
            double v;
            if (strncmp(p, "stale", 5) == 0 && !is_alpha(p[5]) && !is_digit(p[5])) {
                uint64_t bits = AG_STALE_NAN_BITS;
                memcpy(&v, &bits, sizeof v);
                p += 5;
            } else if (!parse_signed(&p, &v)) {
                goto bad;
            }
            double step = 0;
            unsigned long n = 0;
            if (*p == '+' || *p == '-') {
                if (!parse_signed(&p, &step) || *p != 'x') goto bad;
            }
            if (*p == 'x') {
                p++;
                if (!parse_uint(&p, &n)) goto bad;
            }
            for (unsigned long i = 0; i <= n; i++) {
                seq_push(d, &cap, false, v);
                v += step;
            }
        }
        if (*p && !is_space(*p)) goto bad;
    }
bad:
    *err = "invalid value in series sequence";
    return -1;
}

static int parse_sdesc(const char *line, sdesc_t *d, const char **err)
{
    memset(d, 0, sizeof *d);
    const char *p = line;
    if (parse_metric(&p, &d->labels, err) < 0 || parse_values(p, d, err) < 0) {
        sdesc_free(d);
        return -1;
    }
    return 0;
}

/* test.go's parseNumber: strconv.ParseInt(s, 0, 64), else strconv.ParseFloat(s, 64). */
static bool parse_number_line(const char *s, double *v)
{
    if (!*s) return false;
    char *end;
    errno = 0;
    const char *q = s;
    if (*q == '+' || *q == '-') q++;
    if (is_digit(*q)) {
        long long n = strtoll(s, &end, 0); /* base 0: 0x.. hex and 0.. octal, as Go's base 0 */
        if (!*end && errno == 0) {
            *v = (double)n;
            return true;
        }
    }
    errno = 0;
    *v = strtod(s, &end);
    return end != s && !*end;
}

/* ------------------------------------------------------------------------------------------ */
/* The test file: a list of commands                                                          */

typedef enum { CMD_LOAD = 1, CMD_CLEAR, CMD_EVAL } cmd_kind_t;

typedef struct expect {
    char *enc; /* canonical label encoding */
    size_t enc_len;
    double v;
    int pos;   /* 1-based position among the expected lines */
    int line;
} expect_t;

typedef struct cmd {
    cmd_kind_t kind;
    int line;
    /* load */
    int64_t interval_ms;
    sdesc_t *series;
    size_t nseries;
    /* eval */
    bool ordered, fail;
    int64_t at_ms;
    char *expr;
    bool has_scalar;
    double scalar;
    expect_t *exp;
    size_t nexp;
    int case_idx;
    bool excluded;
} cmd_t;

typedef struct tfile {
    const char *path, *name;
    cmd_t *cmds;
    size_t ncmds;
    int ncases;
} tfile_t;

static char **read_lines(const char *path, size_t *nlines)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char **lines = NULL;
    size_t n = 0, cap = 0;
    char *buf = NULL;
    size_t bcap = 0;
    ssize_t len;
    while ((len = getline(&buf, &bcap, f)) >= 0) {
        char *s = buf;
        while (len > 0 && is_space(s[len - 1])) s[--len] = 0;
        while (is_space(*s)) s++, len--;
        if (*s == '#') *s = 0;
        if (n == cap) lines = xrealloc(lines, (cap = cap ? cap * 2 : 256) * sizeof *lines);
        lines[n++] = xstrndup(s, strlen(s));
    }
    free(buf);
    fclose(f);
    *nlines = n;
    return lines;
}

/* The first blank-separated word of `s` into w (lowercased when `lower`, as test.go lowercases
 * the command word); returns what follows it and its blanks. */
static const char *word(const char *s, char *w, size_t wcap, bool lower)
{
    size_t i = 0;
    while (*s && !is_space(*s)) {
        if (i + 1 < wcap) w[i++] = (char)(lower && *s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
        s++;
    }
    w[i] = 0;
    while (is_space(*s)) s++;
    return s;
}

static bool is_command_line(const char *l)
{
    char w[32];
    word(l, w, sizeof w, true);
    return strcmp(w, "load") == 0 || strcmp(w, "clear") == 0 || strncmp(w, "eval", 4) == 0;
}

static int file_error(const char *path, int line, const char *what, const char *detail)
{
    fprintf(stderr, "%s:%d: %s%s%s\n", path, line, what, detail ? ": " : "", detail ? detail : "");
    return -1;
}

static int parse_test_file(tfile_t *tf)
{
    size_t nl;
    char **lines = read_lines(tf->path, &nl);
    if (!lines) {
        fprintf(stderr, "conformance: cannot read %s: %s\n", tf->path, strerror(errno));
        return -1;
    }
    int rc = 0;
    size_t cap = 0;
    sbuf_t enc = {0};
    for (size_t i = 0; i < nl && rc == 0; i++) {
        const char *l = lines[i];
        if (!*l) continue;
        char w[32];
        const char *rest = word(l, w, sizeof w, true);
        if (tf->ncmds == cap) tf->cmds = xrealloc(tf->cmds, (cap = cap ? cap * 2 : 64) * sizeof *tf->cmds);
        cmd_t *c = &tf->cmds[tf->ncmds];
        memset(c, 0, sizeof *c);
        c->line = (int)i + 1;
        ag_errmsg_t e = {{0}, -1};
        if (strcmp(w, "clear") == 0) {
            c->kind = CMD_CLEAR;
            tf->ncmds++;
        } else if (strcmp(w, "load") == 0) {
            c->kind = CMD_LOAD;
            if (!*rest || ag_parse_duration(rest, &c->interval_ms, &e) < 0) {
                rc = file_error(tf->path, c->line, "invalid load command", e.msg);
                break;
            }
            size_t scap = 0;
            while (i + 1 < nl && *lines[i + 1] && !is_command_line(lines[i + 1])) {
                i++;
                sdesc_t d;
                const char *err = NULL;
                if (parse_sdesc(lines[i], &d, &err) < 0) {
                    rc = file_error(tf->path, (int)i + 1, "invalid series line", err);
                    break;
                }
                if (c->nseries == scap)
                    c->series = xrealloc(c->series, (scap = scap ? scap * 2 : 8) * sizeof *c->series);
                c->series[c->nseries++] = d;
            }
            tf->ncmds++;
        } else if (strcmp(w, "eval") == 0 || strcmp(w, "eval_ordered") == 0 ||
                   strcmp(w, "eval_fail") == 0) {
            c->kind = CMD_EVAL;
            c->ordered = strcmp(w, "eval_ordered") == 0;
            c->fail = strcmp(w, "eval_fail") == 0;
            char w2[32], w3[32], dur[64];
            const char *r = word(rest, w2, sizeof w2, false);
            r = word(r, w3, sizeof w3, false);
            const char *ex = word(r, dur, sizeof dur, false);
            if (strcmp(w2, "instant") != 0 || strcmp(w3, "at") != 0 || !*ex) {
                rc = file_error(tf->path, c->line,
                                "invalid eval command (eval[_fail|_ordered] instant at <d> <expr>)", NULL);
                break;
            }
            if (ag_parse_duration(dur, &c->at_ms, &e) < 0) {
                rc = file_error(tf->path, c->line, "invalid eval time", e.msg);
                break;
            }
            c->expr = xstrndup(ex, strlen(ex));
            c->case_idx = tf->ncases++;
            size_t ecap = 0;
            int pos = 0;
            while (i + 1 < nl && *lines[i + 1] && !is_command_line(lines[i + 1])) {
                i++;
                double v;
                if (parse_number_line(lines[i], &v)) {
                    c->has_scalar = true;
                    c->scalar = v;
                    break; /* test.go stops reading expectations after a scalar */
                }
                sdesc_t d;
                const char *err = NULL;
                if (parse_sdesc(lines[i], &d, &err) < 0) {
                    rc = file_error(tf->path, (int)i + 1, "invalid expected line", err);
                    break;
                }
                if (d.nvals != 1 || d.vals[0].omitted) {
                    sdesc_free(&d);
                    rc = file_error(tf->path, (int)i + 1, "expected exactly one value", NULL);
                    break;
                }
                lset_encode(&d.labels, &enc);
                if (c->nexp == ecap) c->exp = xrealloc(c->exp, (ecap = ecap ? ecap * 2 : 8) * sizeof *c->exp);
                expect_t *x = &c->exp[c->nexp++];
                x->enc = xmalloc(enc.len);
                memcpy(x->enc, enc.p, enc.len);
                x->enc_len = enc.len;
                x->v = d.vals[0].v;
                x->pos = ++pos;
                x->line = (int)i + 1;
                sdesc_free(&d);
            }
            tf->ncmds++;
        } else {
            rc = file_error(tf->path, c->line, "invalid command", l);
        }
    }
    for (size_t i = 0; i < nl; i++) free(lines[i]);
    free(lines);
    free(enc.p);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Exclusions (tests/promql/unsupported.txt) and the baseline                                  */

typedef struct excl {
    char *file;
    int line;
} excl_t;

static excl_t *g_excl;
static size_t g_nexcl;

static int load_exclusions(const char *path, bool must_exist)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!must_exist && errno == ENOENT) return 0;
        fprintf(stderr, "conformance: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    char buf[1024];
    int ln = 0;
    while (fgets(buf, sizeof buf, f)) {
        ln++;
        char *s = buf;
        while (is_space(*s)) s++;
        if (!*s || *s == '#') continue;
        char *colon = strchr(s, ':');
        char *end = NULL;
        long line = colon ? strtol(colon + 1, &end, 10) : 0;
        if (!colon || end == colon + 1 || line <= 0 || (*end && !is_space(*end))) {
            fprintf(stderr, "%s:%d: expected `file:line reason`\n", path, ln);
            fclose(f);
            return -1;
        }
        g_excl = xrealloc(g_excl, (g_nexcl + 1) * sizeof *g_excl);
        g_excl[g_nexcl].file = xstrndup(s, (size_t)(colon - s));
        g_excl[g_nexcl].line = (int)line;
        g_nexcl++;
    }
    fclose(f);
    return 0;
}

static bool is_excluded(const char *file, int line)
{
    for (size_t i = 0; i < g_nexcl; i++)
        if (g_excl[i].line == line && strcmp(g_excl[i].file, file) == 0) return true;
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Execution (in a child process)                                                              */

enum { R_PASS = 0, R_FAIL, R_UNSUPPORTED };
static const char *const g_rname[] = {"PASS", "FAIL", "UNSUPPORTED"};

typedef struct runner {
    char *basedir;  /* per-file temporary directory, owned by the parent */
    int nstore;
    ag_store_t *store;
    char *store_dir;
    char *load_error; /* set when a load failed: cases until the next clear fail */
} runner_t;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void runner_clear(runner_t *r)
{
    if (r->store) ag_store_close(r->store);
    r->store = NULL;
    if (r->store_dir) rm_rf(r->store_dir);
    free(r->store_dir);
    r->store_dir = NULL;
    free(r->load_error);
    r->load_error = NULL;
}

static int runner_store(runner_t *r, ag_errmsg_t *e)
{
    if (r->store) return 0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/store%d", r->basedir, r->nstore++);
    ag_store_opts_t o;
    ag_store_opts_default(&o);
    o.path = dir;
    o.map_size = 1ULL << 30;
    int rc = ag_store_open(&o, &r->store, e);
    if (rc < 0) return rc;
    r->store_dir = xstrndup(dir, strlen(dir));
    return 0;
}

static void set_load_error(runner_t *r, int line, const char *fmt, const char *detail)
{
    if (r->load_error) return;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "load at line %d failed: %s%s", line, fmt, detail ? detail : "");
    r->load_error = xstrndup(tmp, strlen(tmp));
}

static void run_load(runner_t *r, const cmd_t *c)
{
    ag_errmsg_t e = {{0}, -1};
    if (runner_store(r, &e) < 0) {
        set_load_error(r, c->line, "store open: ", e.msg);
        return;
    }
    /* Later definitions of the same series replace earlier ones (test.go keys them by hash). */
    sbuf_t a = {0}, b = {0};
    bool *skip = xmalloc(c->nseries * sizeof *skip);
    for (size_t i = 0; i < c->nseries; i++) {
        skip[i] = false;
        lset_encode(&c->series[i].labels, &a);
        for (size_t j = i + 1; j < c->nseries && !skip[i]; j++) {
            lset_encode(&c->series[j].labels, &b);
            if (a.len == b.len && memcmp(a.p, b.p, a.len) == 0) skip[i] = true;
        }
    }
    free(a.p);
    free(b.p);
    ag_series_in_t *in = xmalloc(c->nseries * sizeof *in);
    ag_label_t **lbls = xmalloc(c->nseries * sizeof *lbls);
    ag_sample_t **smp = xmalloc(c->nseries * sizeof *smp);
    size_t n = 0;
    for (size_t i = 0; i < c->nseries; i++) {
        if (skip[i]) continue;
        const sdesc_t *d = &c->series[i];
        /* Prometheus' head appender drops labels with empty values. */
        ag_label_t *l = xmalloc(d->labels.n * sizeof *l);
        size_t nl = 0;
        for (size_t k = 0; k < d->labels.n; k++)
            if (d->labels.l[k].value[0]) l[nl++] = d->labels.l[k];
        ag_sample_t *s = xmalloc(d->nvals * sizeof *s);
        size_t ns = 0;
        for (size_t k = 0; k < d->nvals; k++)
            if (!d->vals[k].omitted) {
                s[ns].t = (int64_t)k * c->interval_ms;
                s[ns].v = d->vals[k].v;
                ns++;
            }
        lbls[n] = l;
        smp[n] = s;
        if (ns == 0) { /* nothing to write for a series of blanks */
            free(l);
            free(s);
            continue;
        }
        in[n].labels = l;
        in[n].nlabels = nl;
        in[n].samples = s;
        in[n].nsamples = ns;
        ag_errmsg_t ve;
        if (ag_labels_validate(l, nl, &ve) < 0) {
            set_load_error(r, c->line, "invalid labels: ", ve.msg);
            free(l);
            free(s);
            continue;
        }
        n++;
    }
    if (n > 0 && !r->load_error) {
        ag_write_req_t req = {in, n, NULL, 0, NULL, NULL, 0};
        ag_write_res_t res;
        memset(&res, 0, sizeof res);
        int rc = ag_store_write(r->store, &req, &res);
        if (rc < 0) {
            char tmp[400];
            snprintf(tmp, sizeof tmp, "%s: %s", ag_strerror(rc), res.err.msg);
            set_load_error(r, c->line, "write: ", tmp);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(lbls[i]);
        free(smp[i]);
    }
    free(lbls);
    free(smp);
    free(in);
    free(skip);
}

/* Prometheus' promql/test.go almostEqual (2.42): relative error below 1e-6, NaN equals NaN. */
static bool almost_equal(double a, double b)
{
    const double eps = 0.000001;
    const double min_normal = 2.2250738585072014e-308; /* Float64frombits(0x0010000000000000) */
    if (isnan(a) && isnan(b)) return true;
    if (a == b) return true;
    double diff = fabs(a - b);
    if (a == 0 || b == 0 || diff < min_normal) return diff < eps * min_normal;
    return diff / (fabs(a) + fabs(b)) < eps;
}

static void fmt_num(sbuf_t *b, double v)
{
    if (isnan(v)) sb_printf(b, "NaN");
    else if (isinf(v)) sb_printf(b, v > 0 ? "+Inf" : "-Inf");
    else sb_printf(b, "%.17g", v);
}

/* Compares a result with the expectations the way test.go's compareResult does. Returns true
 * on a match; otherwise writes the reason into `why`. */
static bool compare_result(const cmd_t *c, const ag_value_t *v, sbuf_t *why)
{
    switch (v->type) {
    case AG_VAL_MATRIX:
        sb_printf(why, "received range result on instant evaluation");
        return false;
    case AG_VAL_STRING:
        sb_printf(why, "unexpected string result \"%.*s\"", (int)(v->str_len > 80 ? 80 : v->str_len),
                  v->str ? v->str : "");
        return false;
    case AG_VAL_SCALAR:
        if (!c->has_scalar) {
            sb_printf(why, "got scalar ");
            fmt_num(why, v->scalar);
            sb_printf(why, ", expected a vector of %zu elements", c->nexp);
            return false;
        }
        if (!almost_equal(c->scalar, v->scalar)) {
            sb_printf(why, "expected scalar ");
            fmt_num(why, c->scalar);
            sb_printf(why, " but got ");
            fmt_num(why, v->scalar);
            return false;
        }
        return true;
    case AG_VAL_VECTOR: {
        bool *seen = xmalloc((c->nexp + 1) * sizeof *seen);
        memset(seen, 0, (c->nexp + 1) * sizeof *seen);
        bool ok = true;
        for (size_t i = 0; i < v->n && ok; i++) {
            const ag_series_val_t *s = &v->series[i];
            size_t k;
            for (k = 0; k < c->nexp; k++)
                if (c->exp[k].enc_len == s->labels_len &&
                    memcmp(c->exp[k].enc, s->labels, s->labels_len) == 0)
                    break;
            if (k == c->nexp) {
                sb_printf(why, "unexpected metric ");
                enc_format(s->labels, s->labels_len, why);
                sb_printf(why, " in result");
                ok = false;
                break;
            }
            if (s->n < 1) {
                sb_printf(why, "vector element without a point");
                ok = false;
                break;
            }
            if (c->ordered && c->exp[k].pos != (int)i + 1) {
                sb_printf(why, "expected metric ");
                enc_format(s->labels, s->labels_len, why);
                sb_printf(why, " at position %d but was at %zu", c->exp[k].pos, i + 1);
                ok = false;
                break;
            }
            if (!almost_equal(c->exp[k].v, s->points[0].v)) {
                sb_printf(why, "expected ");
                fmt_num(why, c->exp[k].v);
                sb_printf(why, " for ");
                enc_format(s->labels, s->labels_len, why);
                sb_printf(why, " but got ");
                fmt_num(why, s->points[0].v);
                ok = false;
                break;
            }
            seen[k] = true;
        }
        for (size_t k = 0; k < c->nexp && ok; k++)
            if (!seen[k]) {
                sb_printf(why, "expected metric ");
                enc_format(c->exp[k].enc, c->exp[k].enc_len, why);
                sb_printf(why, " not found (got %zu elements)", v->n);
                ok = false;
            }
        if (ok && c->has_scalar) {
            sb_printf(why, "expected scalar ");
            fmt_num(why, c->scalar);
            sb_printf(why, " but got a vector of %zu elements", v->n);
            ok = false;
        }
        free(seen);
        return ok;
    }
    }
    sb_printf(why, "unknown result type %d", (int)v->type);
    return false;
}

static int run_eval(runner_t *r, const cmd_t *c, sbuf_t *why)
{
    if (r->load_error) {
        sb_printf(why, "%s", r->load_error);
        return R_FAIL;
    }
    ag_errmsg_t e = {{0}, -1};
    if (runner_store(r, &e) < 0) {
        sb_printf(why, "store open: %s", e.msg);
        return R_FAIL;
    }
    ag_pq_node_t *n = NULL;
    int rc = ag_promql_parse(c->expr, strlen(c->expr), &n, &e);
    if (rc == AG_EUNSUPPORTED) {
        sb_printf(why, "%s", e.msg);
        return R_UNSUPPORTED;
    }
    if (rc < 0) {
        sb_printf(why, "parse error (%s): %s", ag_strerror(rc), e.msg);
        /* Prometheus' own parser accepts every eval_fail query (its errors come from the
         * evaluation); we count an error from either step, and -v shows which one it was. */
        if (c->fail) return R_PASS;
        return R_FAIL;
    }
    ag_eval_opts_t o = {.lookback_ms = 300000, .max_samples = 0, .timeout_ms = 0};
    ag_value_t v;
    memset(&v, 0, sizeof v);
    memset(&e, 0, sizeof e);
    rc = ag_eval_instant(r->store, n, c->at_ms, &o, &v, &e);
    ag_promql_free(n);
    if (rc == AG_EUNSUPPORTED) {
        sb_printf(why, "%s", e.msg);
        return R_UNSUPPORTED;
    }
    if (rc < 0) {
        sb_printf(why, "eval error (%s): %s", ag_strerror(rc), e.msg);
        return c->fail ? R_PASS : R_FAIL;
    }
    int res;
    if (c->fail) {
        sb_printf(why, "expected an error, got none");
        res = R_FAIL;
    } else {
        res = compare_result(c, &v, why) ? R_PASS : R_FAIL;
    }
    ag_value_free(&v);
    return res;
}

static unsigned g_timeout_s = 20;

/* The child: replays loads and clears, runs the cases with index >= first, one result line
 * per case on `out`: "<case> <result> <reason>\n". */
static void child_run(const tfile_t *tf, int first, char *basedir, FILE *out)
{
    runner_t r;
    memset(&r, 0, sizeof r);
    r.basedir = basedir;
    sbuf_t why = {0};
    for (size_t i = 0; i < tf->ncmds; i++) {
        const cmd_t *c = &tf->cmds[i];
        switch (c->kind) {
        case CMD_CLEAR:
            runner_clear(&r);
            break;
        case CMD_LOAD:
            run_load(&r, c);
            break;
        case CMD_EVAL: {
            if (c->case_idx < first) break;
            why.len = 0;
            sb_add(&why, "", 0);
            alarm(g_timeout_s);
            int res = run_eval(&r, c, &why);
            alarm(0);
            for (char *p = why.p; *p; p++)
                if (*p == '\n' || *p == '\r') *p = ' ';
            fprintf(out, "%d %d %s\n", c->case_idx, res, why.p);
            fflush(out);
            break;
        }
        }
    }
    runner_clear(&r);
    free(why.p);
    fprintf(out, "done\n");
    fflush(out);
}

/* ------------------------------------------------------------------------------------------ */
/* The parent                                                                                 */

typedef struct caseres {
    int res; /* -1 = not run */
    char *why;
} caseres_t;

typedef struct filestat {
    const char *name;
    int cases, pass, fail, unsup, excluded_failing;
} filestat_t;

static bool g_verbose;
static bool g_infra_error;

/* Runs one file, restarting the child after a crash or timeout. */
static void run_file(const tfile_t *tf, caseres_t *cr)
{
    int next = 0;
    while (next < tf->ncases || next == 0) {
        const char *tmpdir = getenv("TMPDIR");
        char bd[4096];
        snprintf(bd, sizeof bd, "%s/augur-promql-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
        char *dir = mkdtemp(bd);
        if (!dir) {
            fprintf(stderr, "conformance: mkdtemp: %s\n", strerror(errno));
            g_infra_error = true;
            return;
        }
        int fds[2];
        if (pipe(fds) < 0) {
            fprintf(stderr, "conformance: pipe: %s\n", strerror(errno));
            g_infra_error = true;
            rm_rf(dir);
            return;
        }
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "conformance: fork: %s\n", strerror(errno));
            g_infra_error = true;
            close(fds[0]);
            close(fds[1]);
            rm_rf(dir);
            return;
        }
        if (pid == 0) {
            close(fds[0]);
            signal(SIGALRM, SIG_DFL);
            FILE *out = fdopen(fds[1], "w");
            if (!out) _exit(3);
            child_run(tf, next, dir, out);
            fclose(out);
            exit(0); /* exit, not _exit: lets a sanitizer's leak check run */
        }
        close(fds[1]);
        FILE *in = fdopen(fds[0], "r");
        char *line = NULL;
        size_t lcap = 0;
        bool done = false;
        while (in && getline(&line, &lcap, in) >= 0) {
            if (strcmp(line, "done\n") == 0) {
                done = true;
                continue;
            }
            int idx, res, off = 0;
            if (sscanf(line, "%d %d %n", &idx, &res, &off) < 2 || idx < 0 || idx >= tf->ncases ||
                res < 0 || res > 2)
                continue;
            size_t l = strlen(line + off);
            if (l && line[off + l - 1] == '\n') line[off + l - 1] = 0;
            cr[idx].res = res;
            free(cr[idx].why);
            cr[idx].why = xstrndup(line + off, strlen(line + off));
            if (idx + 1 > next) next = idx + 1;
        }
        free(line);
        if (in) fclose(in);
        else close(fds[0]);
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        rm_rf(dir);
        if (done) {
            if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                fprintf(stderr, "conformance: %s: runner child ended with %s %d after all cases "
                                "(sanitizer or leak report above?)\n",
                        tf->name, WIFSIGNALED(st) ? "signal" : "status",
                        WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
                g_infra_error = true;
            }
            return;
        }
        if (next >= tf->ncases) return;
        /* the child died inside case `next` */
        char tmp[128];
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
            snprintf(tmp, sizeof tmp, "timeout: no answer within %u s", g_timeout_s);
        else if (WIFSIGNALED(st))
            snprintf(tmp, sizeof tmp, "crashed: signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
        else
            snprintf(tmp, sizeof tmp, "runner child exited with status %d", WEXITSTATUS(st));
        cr[next].res = R_FAIL;
        free(cr[next].why);
        cr[next].why = xstrndup(tmp, strlen(tmp));
        next++;
    }
}

typedef struct bentry {
    char *file;
    int pass;
} bentry_t;

static int read_baseline(const char *path, bentry_t **out, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "conformance: cannot read baseline %s: %s\n", path, strerror(errno));
        return -1;
    }
    char buf[1024];
    int ln = 0;
    while (fgets(buf, sizeof buf, f)) {
        ln++;
        char *s = buf;
        while (is_space(*s)) s++;
        if (!*s || *s == '#') continue;
        char name[512];
        int pass;
        if (sscanf(s, "%511s %d", name, &pass) != 2) {
            fprintf(stderr, "%s:%d: expected `file pass-count`\n", path, ln);
            fclose(f);
            return -1;
        }
        *out = xrealloc(*out, (*n + 1) * sizeof **out);
        (*out)[*n].file = xstrndup(name, strlen(name));
        (*out)[*n].pass = pass;
        (*n)++;
    }
    fclose(f);
    return 0;
}

static int write_baseline(const char *path, const filestat_t *fs, size_t n)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "conformance: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "# PromQL conformance baseline: passing cases per Prometheus 2.42 test file.\n"
               "# `make promql-conformance` fails when a file passes fewer cases than listed here.\n"
               "# Regenerate deliberately after an improvement:\n"
               "#   build/tests/conformance --write-baseline tests/promql/baseline.txt "
               "../shared/promql-testdata/*.test\n");
    for (size_t i = 0; i < n; i++) fprintf(f, "%s %d\n", fs[i].name, fs[i].pass);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "conformance: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: conformance [-v] [--check BASELINE] [--write-baseline BASELINE]\n"
                    "                   [--unsupported LIST] [--timeout SECONDS] FILE.test...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *check = NULL, *write_bl = NULL;
    const char *unsup = "tests/promql/unsupported.txt";
    bool unsup_given = false;
    const char **files = xmalloc((size_t)argc * sizeof *files);
    size_t nfiles = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) g_verbose = true;
        else if (strcmp(a, "--check") == 0 && i + 1 < argc) check = argv[++i];
        else if (strcmp(a, "--write-baseline") == 0 && i + 1 < argc) write_bl = argv[++i];
        else if (strcmp(a, "--unsupported") == 0 && i + 1 < argc) {
            unsup = argv[++i];
            unsup_given = true;
        } else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
            long t = strtol(argv[++i], NULL, 10);
            if (t <= 0) usage();
            g_timeout_s = (unsigned)t;
        } else if (a[0] == '-') usage();
        else files[nfiles++] = a;
    }
    if (nfiles == 0) usage();
    ag_log_set_level(AG_LOG_WARN); /* no "storage recovered" line per store */
    if (load_exclusions(unsup, unsup_given) < 0) return 2;

    filestat_t *fs = xmalloc(nfiles * sizeof *fs);
    memset(fs, 0, nfiles * sizeof *fs);
    filestat_t tot = {"total", 0, 0, 0, 0, 0};
    /* feature -> count, for the -v summary */
    char **feat = NULL;
    int *featn = NULL;
    size_t nfeat = 0;

    for (size_t fi = 0; fi < nfiles; fi++) {
        tfile_t tf;
        memset(&tf, 0, sizeof tf);
        tf.path = files[fi];
        tf.name = base_name(files[fi]);
        fs[fi].name = tf.name;
        if (parse_test_file(&tf) < 0) {
            g_infra_error = true;
            continue;
        }
        caseres_t *cr = xmalloc(((size_t)tf.ncases + 1) * sizeof *cr);
        for (int k = 0; k < tf.ncases; k++) {
            cr[k].res = -1;
            cr[k].why = NULL;
        }
        if (tf.ncases > 0) run_file(&tf, cr);
        for (size_t k = 0; k < tf.ncmds; k++) {
            const cmd_t *c = &tf.cmds[k];
            if (c->kind != CMD_EVAL) continue;
            caseres_t *x = &cr[c->case_idx];
            if (x->res < 0) {
                x->res = R_FAIL;
                x->why = xstrndup("not run", 7);
            }
            bool ex = is_excluded(tf.name, c->line);
            fs[fi].cases++;
            if (x->res == R_PASS) fs[fi].pass++;
            else if (x->res == R_FAIL) fs[fi].fail++;
            else fs[fi].unsup++;
            if (ex && x->res != R_PASS) fs[fi].excluded_failing++;
            if (g_verbose && (x->res != R_PASS || (x->why && *x->why)))
                printf("%s:%d: %s%s %s: %s\n", tf.name, c->line, g_rname[x->res],
                       ex ? " (excluded)" : "", c->expr, x->why ? x->why : "");
            if (x->res == R_UNSUPPORTED) {
                size_t j;
                for (j = 0; j < nfeat; j++)
                    if (strcmp(feat[j], x->why ? x->why : "") == 0) break;
                if (j == nfeat) {
                    feat = xrealloc(feat, (nfeat + 1) * sizeof *feat);
                    featn = xrealloc(featn, (nfeat + 1) * sizeof *featn);
                    feat[nfeat] = xstrndup(x->why ? x->why : "", x->why ? strlen(x->why) : 0);
                    featn[nfeat++] = 0;
                }
                featn[j]++;
            }
        }
        for (int k = 0; k < tf.ncases; k++) free(cr[k].why);
        free(cr);
        for (size_t k = 0; k < tf.ncmds; k++) {
            cmd_t *c = &tf.cmds[k];
            for (size_t j = 0; j < c->nseries; j++) sdesc_free(&c->series[j]);
            free(c->series);
            for (size_t j = 0; j < c->nexp; j++) free(c->exp[j].enc);
            free(c->exp);
            free(c->expr);
        }
        free(tf.cmds);
        tot.cases += fs[fi].cases;
        tot.pass += fs[fi].pass;
        tot.fail += fs[fi].fail;
        tot.unsup += fs[fi].unsup;
        tot.excluded_failing += fs[fi].excluded_failing;
    }

    if (g_verbose && nfeat) {
        printf("\nunsupported features (cases):\n");
        for (size_t j = 0; j < nfeat; j++) printf("  %5d  %s\n", featn[j], feat[j]);
    }
    printf("\n%-20s %6s %6s %6s %12s %7s\n", "file", "cases", "pass", "fail", "unsupported", "pass%");
    for (size_t fi = 0; fi <= nfiles; fi++) {
        const filestat_t *s = fi < nfiles ? &fs[fi] : &tot;
        printf("%-20s %6d %6d %6d %12d %6.1f%%\n", s->name, s->cases, s->pass, s->fail, s->unsup,
               s->cases ? 100.0 * s->pass / s->cases : 0.0);
    }
    if (tot.excluded_failing)
        printf("(%d failing or unsupported cases are listed in %s and not counted as failed)\n",
               tot.excluded_failing, unsup);

    int status = g_infra_error ? 2 : 0;
    if (check) {
        bentry_t *bl = NULL;
        size_t nbl = 0;
        if (read_baseline(check, &bl, &nbl) < 0) {
            status = 2;
        } else {
            for (size_t i = 0; i < nbl; i++) {
                size_t fi;
                for (fi = 0; fi < nfiles; fi++)
                    if (strcmp(fs[fi].name, bl[i].file) == 0) break;
                if (fi == nfiles) {
                    fprintf(stderr, "conformance: note: %s is in the baseline but was not run\n", bl[i].file);
                } else if (fs[fi].pass < bl[i].pass) {
                    printf("REGRESSION %s: %d passed, baseline %d\n", bl[i].file, fs[fi].pass, bl[i].pass);
                    if (status == 0) status = 1;
                } else if (fs[fi].pass > bl[i].pass) {
                    printf("improved %s: %d passed, baseline %d (record it with --write-baseline)\n",
                           bl[i].file, fs[fi].pass, bl[i].pass);
                }
            }
            for (size_t fi = 0; fi < nfiles; fi++) {
                size_t i;
                for (i = 0; i < nbl; i++)
                    if (strcmp(fs[fi].name, bl[i].file) == 0) break;
                if (i == nbl)
                    fprintf(stderr, "conformance: note: %s has no baseline entry\n", fs[fi].name);
            }
            for (size_t i = 0; i < nbl; i++) free(bl[i].file);
            free(bl);
        }
    }
    if (write_bl && write_baseline(write_bl, fs, nfiles) < 0) status = 2;

    for (size_t j = 0; j < nfeat; j++) free(feat[j]);
    free(feat);
    free(featn);
    for (size_t i = 0; i < g_nexcl; i++) free(g_excl[i].file);
    free(g_excl);
    free(fs);
    free(files);
    printf("promql-conformance: %d passed, %d failed\n", tot.pass,
           tot.fail + tot.unsup - tot.excluded_failing);
    return status;
}
