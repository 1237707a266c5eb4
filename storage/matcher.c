/* matcher.c - label matchers with Prometheus' semantics (see ag_matcher.h). */
#include "ag_matcher.h"

#include <stdlib.h>
#include <string.h>

int ag_matcher_init(ag_matcher_t *m, ag_match_type_t type, const char *name, const char *value,
                    size_t value_len, ag_errmsg_t *e)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    m->name = strdup(name);
    m->value = malloc(value_len + 1);
    if (!m->name || !m->value) goto nomem;
    memcpy(m->value, value, value_len);
    m->value[value_len] = 0;
    m->value_len = value_len;
    if (type == AG_MATCH_RE || type == AG_MATCH_NRE) {
        int rc = ag_regex_compile(value, value_len, &m->re, e);
        if (rc) {
            ag_matcher_free(m);
            return rc;
        }
    }
    return AG_OK;
nomem:
    ag_matcher_free(m);
    return AG_ENOMEM;
}

void ag_matcher_free(ag_matcher_t *m)
{
    free(m->name);
    free(m->value);
    ag_regex_free(m->re);
    memset(m, 0, sizeof *m);
}

bool ag_matcher_matches(const ag_matcher_t *m, const char *v, size_t n)
{
    switch (m->type) {
    case AG_MATCH_EQ: return n == m->value_len && memcmp(v, m->value, n) == 0;
    case AG_MATCH_NEQ: return !(n == m->value_len && memcmp(v, m->value, n) == 0);
    case AG_MATCH_RE: return ag_regex_match(m->re, v, n);
    case AG_MATCH_NRE: return !ag_regex_match(m->re, v, n);
    }
    return false;
}

const char *ag_match_type_str(ag_match_type_t t)
{
    static const char *s[] = {"=", "!=", "=~", "!~"};
    return (unsigned)t < 4 ? s[t] : "?";
}
