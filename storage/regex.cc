/* regex.cc - the C face of RE2 for label matchers (see ag_matcher.h).
 *
 * Why RE2: Prometheus uses Go's regexp, whose syntax is RE2's, and RE2 matches in time linear in
 * the input with bounded memory, so a hostile `=~` in a query cannot stall the daemon the way a
 * backtracking engine (PCRE, glibc regex) can. Debian ships libre2 only as a C++ library, so this
 * one file is C++; nothing C++ crosses the header. Patterns are anchored as Prometheus 2.42 does:
 * `^(?:pattern)$`, with `.` not matching a newline.
 */
#include <cctype>
#include <cstring>
#include <map>
#include <new>
#include <vector>
#include <re2/re2.h>
#include <string>

extern "C" {
#include "ag_matcher.h"
}

struct ag_regex {
    RE2 *re;
};

extern "C" int ag_regex_compile(const char *pattern, size_t len, ag_regex_t **out, ag_errmsg_t *e)
{
    *out = nullptr;
    try {
        std::string anchored = "^(?:" + std::string(pattern, len) + ")$";
        RE2::Options opts;
        opts.set_log_errors(false);
        opts.set_encoding(RE2::Options::EncodingUTF8);
        RE2 *re = new RE2(anchored, opts);
        if (!re->ok()) {
            /* Report the error against the user's pattern, not our anchored wrapper. */
            RE2 bare(std::string(pattern, len), opts);
            const std::string &msg = bare.ok() ? re->error() : bare.error();
            ag_errmsg_set(e, AG_EINVAL, -1, "error parsing regexp: %s", msg.c_str());
            delete re;
            return AG_EINVAL;
        }
        ag_regex_t *r = new ag_regex_t{re};
        *out = r;
        return AG_OK;
    } catch (const std::bad_alloc &) {
        return AG_ENOMEM;
    }
}

extern "C" bool ag_regex_match(const ag_regex_t *re, const char *s, size_t n)
{
    return RE2::FullMatch(re2::StringPiece(s, n), *re->re);
}

/* Go's regexp.extract: a group reference after '$'. */
static bool extract_ref(const char *t, size_t tl, std::string &name, long &num, size_t &used)
{
    size_t i = 0;
    bool brace = false;
    if (i < tl && t[i] == '{') {
        brace = true;
        i++;
    }
    size_t st = i;
    while (i < tl && (isalnum((unsigned char)t[i]) || t[i] == '_')) i++;
    if (i == st) return false;
    name.assign(t + st, i - st);
    if (brace) {
        if (i >= tl || t[i] != '}') return false;
        i++;
    }
    num = 0;
    for (char c : name) {
        if (c < '0' || c > '9' || num >= 100000000) {
            num = -1;
            break;
        }
        num = num * 10 + (c - '0');
    }
    if (name[0] == '0' && name.size() > 1) num = -1;
    used = i;
    return true;
}

extern "C" int ag_regex_expand(const ag_regex_t *re, const char *s, size_t n, const char *tmpl,
                               size_t tlen, ag_buf_t *out)
{
    int ng = re->re->NumberOfCapturingGroups();
    std::vector<re2::StringPiece> m((size_t)ng + 1);
    if (!re->re->Match(re2::StringPiece(s, n), 0, n, RE2::ANCHOR_BOTH, m.data(), ng + 1)) return 0;
    const std::map<std::string, int> &named = re->re->NamedCapturingGroups();
    size_t i = 0;
    while (i < tlen) {
        const char *d = (const char *)memchr(tmpl + i, '$', tlen - i);
        if (!d) break;
        size_t at = (size_t)(d - tmpl);
        ag_buf_append(out, tmpl + i, at - i);
        i = at + 1;
        if (i < tlen && tmpl[i] == '$') {
            ag_buf_putc(out, '$');
            i++;
            continue;
        }
        std::string name;
        long num;
        size_t used;
        if (!extract_ref(tmpl + i, tlen - i, name, num, used)) {
            ag_buf_putc(out, '$');
            continue;
        }
        i += used;
        int idx = -1;
        if (num >= 0) {
            idx = num <= ng ? (int)num : -1;
        } else {
            auto it = named.find(name);
            if (it != named.end()) idx = it->second;
        }
        if (idx >= 0 && m[(size_t)idx].data())
            ag_buf_append(out, m[(size_t)idx].data(), m[(size_t)idx].size());
    }
    if (i < tlen) ag_buf_append(out, tmpl + i, tlen - i);
    return 1;
}

extern "C" void ag_regex_free(ag_regex_t *re)
{
    if (!re) return;
    delete re->re;
    delete re;
}
