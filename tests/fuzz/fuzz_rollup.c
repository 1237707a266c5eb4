/* fuzz_rollup.c - libFuzzer target for rollup buckets and their block codec (storage/rollup.c).
 *
 * (a) The input is decoded as a block: no crash or out-of-bounds read; a failure is AG_ECORRUPT
 *     with *n = 0 (always when ag_rollup_count is 0); a block that decodes holds exactly
 *     ag_rollup_count buckets that keep the header's rules (count 1..2^53, start <= first_t <=
 *     last_t, a single sample has a single time, the next start is after last_t), re-encodes, and
 *     decodes again to the same buckets bit for bit; encoding those again gives the same bytes.
 * (b) The input is read as samples: byte 0 picks how, then 16-byte records (8 bytes timestamp, 8
 *     bytes value, little endian). Timestamps are used raw, scaled down so that many samples share
 *     a bucket, or put near INT64_MIN/INT64_MAX; values are raw bits, small integers, a mix with
 *     special values (NaN payloads, stale markers, +-Inf, -0.0), or a counter with resets. The
 *     samples are sorted and deduplicated by timestamp and folded at 1 m; every bucket is checked
 *     against the samples it covers (the floor of their time as start wherever it exists, first
 *     and last, count, min/max by Prometheus' NaN rules, sum and correction in sample order); the
 *     buckets encode and decode bit-exactly, and regrouped to 1 h they match a direct 1 h fold
 *     (bit-exactly, except sum and correction, which may differ by addition order).
 * Any mismatch calls abort().
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_buf.h"
#include "ag_chunk.h"
#include "ag_err.h"
#include "ag_pack.h"
#include "ag_rollup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_rollup: check failed at line %d: %s\n", __LINE__, #cond);      \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

#define STALE 0x7ff0000000000002ULL
#define TWO53 9007199254740992ULL

static uint64_t vbits(double v) { uint64_t u; memcpy(&u, &v, 8); return u; }
static double vfrom(uint64_t u) { double v; memcpy(&v, &u, 8); return v; }
static bool is_stale(double v) { return vbits(v) == STALE; }

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Every field, bit for bit; sum and corr only when `all`. */
static bool same_bucket(const ag_rollup_t *a, const ag_rollup_t *b, bool all)
{
    if (a->start != b->start || a->first_t != b->first_t || a->last_t != b->last_t ||
        a->count != b->count || vbits(a->first) != vbits(b->first) ||
        vbits(a->last) != vbits(b->last) || vbits(a->min) != vbits(b->min) ||
        vbits(a->max) != vbits(b->max))
        return false;
    return !all || (vbits(a->sum) == vbits(b->sum) && vbits(a->corr) == vbits(b->corr));
}

static void check_rules(const ag_rollup_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        CHECK(b[i].count >= 1 && b[i].count <= TWO53);
        CHECK(b[i].start <= b[i].first_t && b[i].first_t <= b[i].last_t);
        CHECK(b[i].count != 1 || b[i].first_t == b[i].last_t);
        CHECK(i + 1 == n || b[i + 1].start > b[i].last_t);
    }
}

/* Encodes b[0..n) (which must be accepted), decodes, compares; returns the block (malloc'ed). */
static uint8_t *roundtrip(const ag_rollup_t *b, size_t n, size_t *len)
{
    ag_buf_t buf = AG_BUF_INIT;
    CHECK(ag_rollup_encode(b, n, &buf) == 0);
    *len = buf.len;
    uint8_t *d = malloc(buf.len);
    CHECK(d);
    memcpy(d, buf.data, buf.len);
    ag_buf_free(&buf);
    CHECK(ag_rollup_count(d, *len) == n);
    ag_rollup_t *o = malloc(n * sizeof *o);
    CHECK(o);
    size_t got = 0;
    CHECK(ag_rollup_decode(d, *len, o, &got) == 0 && got == n);
    for (size_t i = 0; i < n; i++) CHECK(same_bucket(&o[i], &b[i], true));
    free(o);
    return d;
}

static void fuzz_decode(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    CHECK(copy);
    if (size) memcpy(copy, data, size);
    size_t count = ag_rollup_count(copy, size), n = 12345;
    CHECK(count <= AG_PACK_MAX_SAMPLES);
    ag_rollup_t *o = malloc((count ? count : 1) * sizeof *o);
    CHECK(o);
    int rc = ag_rollup_decode(copy, size, o, &n);
    CHECK(rc == 0 || rc == AG_ECORRUPT);
    if (rc) {
        CHECK(n == 0);
    } else {
        CHECK(count >= 1 && n == count);
        check_rules(o, n);
        size_t len1, len2;
        uint8_t *d1 = roundtrip(o, n, &len1);
        /* Deterministic and canonical: what decodes from d1 encodes to d1 again. */
        ag_rollup_t *o2 = malloc(n * sizeof *o2);
        CHECK(o2);
        size_t n2 = 0;
        CHECK(ag_rollup_decode(d1, len1, o2, &n2) == 0 && n2 == n);
        uint8_t *d2 = roundtrip(o2, n2, &len2);
        CHECK(len1 == len2 && memcmp(d1, d2, len1) == 0);
        free(o2);
        free(d1);
        free(d2);
    }
    free(o);
    free(copy);
}

/* ---- samples ---------------------------------------------------------------------------------- */

typedef struct {
    int64_t t;
    uint64_t v;
    size_t idx;
} rec_t;

static int rec_cmp(const void *pa, const void *pb)
{
    const rec_t *a = pa, *b = pb;
    if (a->t != b->t) return a->t < b->t ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static const uint64_t SPECIAL[8] = {
    STALE, 0x7ff8000000000001ULL, 0x8000000000000000ULL, 0x7ff0000000000000ULL,
    0xfff0000000000000ULL, 0x0000000000000001ULL, 0xfff8deadbeef0000ULL, 0x7ff4000000000007ULL,
};

static int64_t make_time(unsigned how, uint64_t p)
{
    switch (how) {
    case 0: return (int64_t)p;
    case 1: return (int64_t)(int16_t)(p & 0xffff) * 997;
    case 2: return (int64_t)(int32_t)(p & 0xffffffffu);
    default: /* within about 17 minutes of either end */
        return p & 1 ? INT64_MAX - (int64_t)(p >> 1 & 0xfffff) : INT64_MIN + (int64_t)(p >> 1 & 0xfffff);
    }
}

static double make_value(unsigned how, uint64_t p, double *counter)
{
    switch (how) {
    case 0: return vfrom(p);
    case 1: return (double)(int8_t)(p & 0xff);
    case 2: return (p & 0xff) < 48 ? vfrom(SPECIAL[p & 7]) : (double)(int64_t)(p >> 44) / 100.0;
    default:
        if ((p & 0xff) == 0) return vfrom(STALE);
        if ((p & 0xff) < 8) *counter = (double)(p >> 8 & 0xf); /* a reset */
        else *counter += (double)(p >> 8 & 0xff);
        return *counter;
    }
}

/* Floor of t by width in 128 bits; false when it is not an int64. */
static bool true_floor(int64_t t, int64_t w, int64_t *f)
{
    __int128 q = (__int128)t / w, r = (__int128)t % w, fl = (r < 0 ? q - 1 : q) * w;
    if (fl < INT64_MIN) return false;
    *f = (int64_t)fl;
    return true;
}

/* The buckets b[0..nb) of samples s[0..n) folded at width w, checked against the samples. */
static void check_fold(const ag_sample_pt_t *s, size_t n, int64_t w, const ag_rollup_t *b, size_t nb)
{
    size_t i = 0;
    for (size_t k = 0; k < nb; k++) {
        while (i < n && is_stale(s[i].v)) i++;
        CHECK(i < n);
        ag_rollup_t want;
        memset(&want, 0, sizeof want);
        want.start = b[k].start;
        double prev = 0;
        for (; i < n && (is_stale(s[i].v) || s[i].t <= b[k].last_t); i++) {
            double v = s[i].v;
            if (is_stale(v)) continue;
            int64_t fl;
            CHECK(s[i].t >= b[k].start && (uint64_t)s[i].t - (uint64_t)b[k].start < (uint64_t)w);
            CHECK(!true_floor(s[i].t, w, &fl) || fl == b[k].start);
            if (!want.count) {
                want.first_t = s[i].t;
                want.first = want.min = want.max = want.sum = v;
            } else {
                if (v < want.min || isnan(want.min)) want.min = v;
                if (v > want.max || isnan(want.max)) want.max = v;
                want.sum += v;
                if (v < prev) want.corr += prev;
            }
            prev = v;
            want.last_t = s[i].t;
            want.last = v;
            want.count++;
        }
        CHECK(same_bucket(&b[k], &want, true));
        CHECK(k == 0 || b[k].start > b[k - 1].start);
    }
    while (i < n && is_stale(s[i].v)) i++;
    CHECK(i == n);
}

static void fuzz_samples(const uint8_t *data, size_t size)
{
    if (size < 17) return;
    unsigned thow = data[0] & 3, vhow = data[0] >> 2 & 3;
    size_t n = (size - 1) / 16;
    if (n > AG_PACK_MAX_SAMPLES) n = AG_PACK_MAX_SAMPLES;
    rec_t *r = malloc(n * sizeof *r);
    ag_sample_pt_t *s = malloc(n * sizeof *s);
    ag_rollup_t *m = malloc(n * sizeof *m), *h = malloc(n * sizeof *h);
    CHECK(r && s && m && h);
    for (size_t i = 0; i < n; i++) {
        r[i].t = make_time(thow, le64(data + 1 + 16 * i));
        r[i].v = le64(data + 9 + 16 * i);
        r[i].idx = i;
    }
    qsort(r, n, sizeof *r, rec_cmp);
    size_t k = 0;
    double counter = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && r[i].t == s[k - 1].t) continue;
        s[k].t = r[i].t;
        s[k].v = make_value(vhow, r[i].v, &counter);
        k++;
    }
    n = k;

    size_t nm = ag_rollup_fold(s, n, AG_ROLLUP_1M_MS, m);
    check_fold(s, n, AG_ROLLUP_1M_MS, m, nm);
    size_t nh = ag_rollup_fold(s, n, AG_ROLLUP_1H_MS, h);
    check_fold(s, n, AG_ROLLUP_1H_MS, h, nh);
    size_t len;
    if (nm) free(roundtrip(m, nm, &len));
    size_t nr = ag_rollup_regroup(m, nm, AG_ROLLUP_1H_MS, m);
    CHECK(nr == nh);
    for (size_t i = 0; i < nr; i++) CHECK(same_bucket(&m[i], &h[i], false));
    if (nr) free(roundtrip(m, nr, &len));
    free(r);
    free(s);
    free(m);
    free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode(data, size);
    fuzz_samples(data, size);
    return 0;
}
