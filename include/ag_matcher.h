/* ag_matcher.h - label matchers (=, !=, =~, !~) with Prometheus' semantics.
 *
 * A missing label matches as the empty string. Regular expressions use RE2 syntax (what Go's
 * regexp, and so Prometheus, accepts), are fully anchored (`^(?:re)$`) and match in time linear
 * in the input, so untrusted queries cannot make matching explode.
 */
#ifndef AG_MATCHER_H
#define AG_MATCHER_H

#include <stdbool.h>
#include <stddef.h>

#include "ag_buf.h"
#include "ag_err.h"

typedef enum { AG_MATCH_EQ = 0, AG_MATCH_NEQ, AG_MATCH_RE, AG_MATCH_NRE } ag_match_type_t;

typedef struct ag_regex ag_regex_t;

typedef struct ag_matcher {
    ag_match_type_t type;
    char *name;      /* owned, NUL-terminated */
    char *value;     /* owned, NUL-terminated (the regex source for =~ and !~) */
    size_t value_len;
    ag_regex_t *re;  /* owned; compiled for =~ and !~ */
} ag_matcher_t;

/* Compiles a regex with Prometheus' anchoring. Returns 0, AG_EINVAL (message names the syntax
 * error), AG_ENOMEM. */
int ag_regex_compile(const char *pattern, size_t len, ag_regex_t **out, ag_errmsg_t *e);
bool ag_regex_match(const ag_regex_t *re, const char *s, size_t n);
void ag_regex_free(ag_regex_t *re);
/* If re matches all of s[0..n), appends `tmpl` expanded the way Go's Regexp.ExpandString does
 * ($1, ${1}, $name, ${name}, $$; unknown or unmatched groups expand to nothing) and returns 1;
 * returns 0 when it does not match. */
int ag_regex_expand(const ag_regex_t *re, const char *s, size_t n, const char *tmpl, size_t tlen,
                    ag_buf_t *out);

/* Initialises `m` with copies of name and value. Returns 0, AG_EINVAL (bad regex), AG_ENOMEM;
 * on error `m` holds nothing to free. */
int ag_matcher_init(ag_matcher_t *m, ag_match_type_t type, const char *name, const char *value,
                    size_t value_len, ag_errmsg_t *e);
void ag_matcher_free(ag_matcher_t *m);
/* Does the label value v[0..n) satisfy the matcher? Pass "" (n = 0) for a missing label. */
bool ag_matcher_matches(const ag_matcher_t *m, const char *v, size_t n);
/* "=", "!=", "=~", "!~" */
const char *ag_match_type_str(ag_match_type_t t);

#endif
