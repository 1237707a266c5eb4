/* regex.cc - the C face of RE2 for label matchers (see ag_matcher.h).
 *
 * Why RE2: Prometheus uses Go's regexp, whose syntax is RE2's, and RE2 matches in time linear in
 * the input with bounded memory, so a hostile `=~` in a query cannot stall the daemon the way a
 * backtracking engine (PCRE, glibc regex) can. Debian ships libre2 only as a C++ library, so this
 * one file is C++; nothing C++ crosses the header. Patterns are anchored as Prometheus 2.42 does:
 * `^(?:pattern)$`, with `.` not matching a newline.
 */
#include <new>
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

extern "C" void ag_regex_free(ag_regex_t *re)
{
    if (!re) return;
    delete re->re;
    delete re;
}
