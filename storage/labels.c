/* labels.c - label-set validation, canonical encoding, hashing and ordering (see ag_labels.h). */
#include "ag_labels.h"

#include <string.h>

bool ag_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            /* ASCII, the usual case: 8 bytes at a time until a byte with the high bit set. */
            i++;
            while (n - i >= 8) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ULL) break;
                i += 8;
            }
            continue;
        }
        size_t len;
        unsigned cp;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* Character classes of names: bit 0 may start a label name, bit 1 may follow in one, bits 2
 * and 3 the same for metric names (which also allow ':'). */
static const unsigned char name_class[256] = {
    [':'] = 4 | 8,
    ['0'] = 2 | 8, ['1'] = 2 | 8, ['2'] = 2 | 8, ['3'] = 2 | 8, ['4'] = 2 | 8,
    ['5'] = 2 | 8, ['6'] = 2 | 8, ['7'] = 2 | 8, ['8'] = 2 | 8, ['9'] = 2 | 8,
    ['_'] = 15,
    ['A'] = 15, ['B'] = 15, ['C'] = 15, ['D'] = 15, ['E'] = 15, ['F'] = 15, ['G'] = 15,
    ['H'] = 15, ['I'] = 15, ['J'] = 15, ['K'] = 15, ['L'] = 15, ['M'] = 15, ['N'] = 15,
    ['O'] = 15, ['P'] = 15, ['Q'] = 15, ['R'] = 15, ['S'] = 15, ['T'] = 15, ['U'] = 15,
    ['V'] = 15, ['W'] = 15, ['X'] = 15, ['Y'] = 15, ['Z'] = 15,
    ['a'] = 15, ['b'] = 15, ['c'] = 15, ['d'] = 15, ['e'] = 15, ['f'] = 15, ['g'] = 15,
    ['h'] = 15, ['i'] = 15, ['j'] = 15, ['k'] = 15, ['l'] = 15, ['m'] = 15, ['n'] = 15,
    ['o'] = 15, ['p'] = 15, ['q'] = 15, ['r'] = 15, ['s'] = 15, ['t'] = 15, ['u'] = 15,
    ['v'] = 15, ['w'] = 15, ['x'] = 15, ['y'] = 15, ['z'] = 15,
};

static bool name_valid(const char *s, size_t n, bool colon)
{
    if (n == 0) return false;
    unsigned first = colon ? 4 : 1, rest = colon ? 8 : 2;
    if (!(name_class[(unsigned char)s[0]] & first)) return false;
    for (size_t i = 1; i < n; i++)
        if (!(name_class[(unsigned char)s[i]] & rest)) return false;
    return true;
}

bool ag_label_name_valid(const char *s, size_t n) { return name_valid(s, n, false); }
bool ag_metric_name_valid(const char *s, size_t n) { return name_valid(s, n, true); }

/* Is every byte below 0x80? Inline for the short strings label values mostly are. */
static inline bool ascii_only(const char *s, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++) acc |= (unsigned char)s[i];
    return !(acc & 0x8080808080808080ULL);
}

/* Checks label `cur` of a set, `prev` (NULL for the first) being the one before it. */
static int check_label(const ag_label_ref_t *prev, const ag_label_ref_t *cur, bool *have_name,
                       ag_errmsg_t *e)
{
    const char *name = cur->name, *value = cur->value;
    size_t nl = cur->name_len, vl = cur->value_len;
    if (!ag_label_name_valid(name, nl)) { /* a valid name is ASCII, hence UTF-8 */
        if (!ag_utf8_valid(name, nl))
            return ag_errmsg_set(e, AG_EINVAL, -1, "label name is not valid UTF-8");
        return ag_errmsg_set(e, AG_EINVAL, -1, "invalid label name \"%.100s\"", name);
    }
    if (nl > AG_LABEL_NAME_MAX)
        return ag_errmsg_set(e, AG_EINVAL, -1, "label name \"%.100s...\" is longer than %d bytes",
                             name, AG_LABEL_NAME_MAX);
    if (prev) {
        /* Names are not empty (checked above, and for prev before): most differ at once. */
        int order = (unsigned char)prev->name[0] - (unsigned char)name[0];
        if (order == 0) {
            size_t m = prev->name_len < nl ? prev->name_len : nl;
            order = memcmp(prev->name, name, m);
            if (order == 0) order = prev->name_len < nl ? -1 : prev->name_len > nl;
        }
        if (order == 0)
            return ag_errmsg_set(e, AG_EINVAL, -1, "duplicate label name \"%.100s\"", name);
        if (order > 0)
            return ag_errmsg_set(e, AG_EINVAL, -1,
                                 "labels are not sorted by name: \"%.100s\" after \"%.100s\"",
                                 name, prev->name);
    }
    if (vl == 0)
        return ag_errmsg_set(e, AG_EINVAL, -1, "label \"%.100s\" has an empty value", name);
    if (!ascii_only(value, vl) && !ag_utf8_valid(value, vl))
        return ag_errmsg_set(e, AG_EINVAL, -1, "value of label \"%.100s\" is not valid UTF-8",
                             name);
    if (nl == sizeof AG_METRIC_NAME - 1 && memcmp(name, AG_METRIC_NAME, nl) == 0) {
        *have_name = true;
        if (!ag_metric_name_valid(value, vl))
            return ag_errmsg_set(e, AG_EINVAL, -1, "invalid metric name \"%.100s\"", value);
    }
    return AG_OK;
}

int ag_labels_validate_ref(const ag_label_ref_t *l, size_t n, ag_errmsg_t *e)
{
    if (n == 0) return ag_errmsg_set(e, AG_EINVAL, -1, "series has no labels");
    bool have_name = false;
    for (size_t i = 0; i < n; i++) {
        int rc = check_label(i ? &l[i - 1] : NULL, &l[i], &have_name, e);
        if (rc) return rc;
    }
    if (!have_name) return ag_errmsg_set(e, AG_EINVAL, -1, "series has no __name__ label");
    return AG_OK;
}

int ag_labels_validate(const ag_label_t *l, size_t n, ag_errmsg_t *e)
{
    if (n == 0) return ag_errmsg_set(e, AG_EINVAL, -1, "series has no labels");
    bool have_name = false;
    ag_label_ref_t prev, cur;
    for (size_t i = 0; i < n; i++) {
        cur.name = l[i].name ? l[i].name : "";
        cur.value = l[i].value ? l[i].value : "";
        cur.name_len = strlen(cur.name);
        cur.value_len = strlen(cur.value);
        int rc = check_label(i ? &prev : NULL, &cur, &have_name, e);
        if (rc) return rc;
        prev = cur;
    }
    if (!have_name) return ag_errmsg_set(e, AG_EINVAL, -1, "series has no __name__ label");
    return AG_OK;
}

void ag_labels_encode(const ag_label_t *l, size_t n, ag_buf_t *out)
{
    for (size_t i = 0; i < n; i++) {
        ag_buf_append(out, l[i].name, strlen(l[i].name) + 1);
        ag_buf_append(out, l[i].value, strlen(l[i].value) + 1);
    }
}

int ag_labels_decode(const char *enc, size_t len, ag_label_t *out, size_t max, size_t *n)
{
    size_t i = 0, count = 0;
    while (i < len) {
        const char *name = enc + i;
        const char *z = memchr(name, 0, len - i);
        if (!z) return AG_ECORRUPT;
        i = (size_t)(z - enc) + 1;
        if (i >= len) return AG_ECORRUPT;
        const char *value = enc + i;
        z = memchr(value, 0, len - i);
        if (!z) return AG_ECORRUPT;
        i = (size_t)(z - enc) + 1;
        if (count < max) {
            out[count].name = name;
            out[count].value = value;
        }
        count++;
    }
    *n = count;
    return count > max ? AG_ELIMIT : AG_OK;
}

bool ag_labels_next(const char *enc, size_t len, size_t *pos, const char **name, size_t *nl,
                    const char **value, size_t *vl)
{
    size_t i = *pos;
    if (i >= len) return false;
    *name = enc + i;
    *nl = strnlen(*name, len - i);
    i += *nl + 1;
    if (i > len) return false;
    *value = enc + i;
    *vl = strnlen(*value, len - i);
    *pos = i + *vl + 1;
    return true;
}

const char *ag_labels_get(const char *enc, size_t len, const char *name, size_t *vlen)
{
    size_t nl = strlen(name), i = 0, kl, vl;
    const char *k, *v;
    while (ag_labels_next(enc, len, &i, &k, &kl, &v, &vl)) {
        if (kl == nl && memcmp(k, name, nl) == 0) {
            *vlen = vl;
            return v;
        }
    }
    return NULL;
}

/* splitmix64's finaliser. */
static inline uint64_t splitmix(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

int ag_labels_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c) return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

uint64_t ag_labels_hash_stable(const char *enc, size_t len)
{
    /* FNV-1a over the bytes with a final avalanche (splitmix64) so nearby encodings spread. */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)enc[i];
        h *= 1099511628211ULL;
    }
    return splitmix(h);
}

/* 64x64 -> 128-bit multiply folded to 64 bits: every input bit reaches every output bit. */
static inline uint64_t fold_mul(uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

uint64_t ag_labels_hash(const char *enc, size_t len)
{
    /* 16 bytes per multiply; odd constants from the fractional digits of pi and e. The chain
     * value enters each step's multiplicand, so no input word can cancel what came before. */
    const uint64_t k0 = 0x243f6a8885a308d3ULL, k1 = 0x13198a2e03707345ULL,
                   k2 = 0xb7e151628aed2a6bULL;
    uint64_t h = k2 ^ (uint64_t)len;
    while (len >= 16) {
        h = fold_mul(load64(enc) ^ k0 ^ h, load64(enc + 8) ^ k1) + h;
        enc += 16;
        len -= 16;
    }
    uint64_t a = 0, b = 0;
    if (len >= 8) {
        a = load64(enc);
        if (len > 8) memcpy(&b, enc + 8, len - 8);
    } else if (len) {
        memcpy(&a, enc, len);
    }
    h = fold_mul(a ^ k0 ^ h, b ^ k1) + h;
    return splitmix(h);
}
