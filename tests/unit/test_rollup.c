/* test_rollup.c - unit tests for rollup buckets and their block codec (storage/rollup.c).
 *
 * Folding is checked against a naive recomputation written here: over random sample sets
 * (negative timestamps, gaps, bucket edges, NaN payloads, +-Inf, -0.0, huge values, stale markers,
 * counters with resets) every bucket must have exactly the floor start, first/last sample, count,
 * Prometheus' min/max NaN rules, the sum in sample order and the counter-reset correction, all
 * compared bit for bit. Composition: 1 m buckets regrouped into 1 h equal a direct 1 h fold, and
 * merging the buckets of two halves equals folding the whole (sum and correction exact on integer
 * data, within 1e-12 relative on float data). Rate's inputs (first, last, count, increase) over
 * windows of whole buckets equal Prometheus' computation over the raw samples. The block codec
 * round-trips bit-exactly, rejects bad input with AG_EINVAL (buffer unchanged), and reports
 * truncations, byte flips, trailing garbage and hand-built inconsistent blocks as AG_ECORRUPT.
 *
 * Random data comes from a fixed seed printed at start; ROLLUP_SEED=<n> in the environment
 * replays another one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_buf.h"
#include "ag_chunk.h"
#include "ag_err.h"
#include "ag_pack.h"
#include "ag_rollup.h"

#define STALE 0x7ff0000000000002ULL
#define W1M AG_ROLLUP_1M_MS
#define W1H AG_ROLLUP_1H_MS
#define W1D 86400000LL
#define TWO53 9007199254740992ULL
#define REL_TOL 1e-12

/* ---- random data ------------------------------------------------------------------------- */

static uint64_t seed = 0x7e57a11c0ffee123ULL;
static uint64_t rng_state;

/* splitmix64: deterministic test data. */
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Each test starts from its own stream so that it reproduces on its own. */
static void rng_start(uint64_t tag) { rng_state = seed ^ (tag * 0xd1342543de82ef95ULL); }
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static bool chance(unsigned pct) { return below(100) < pct; }
/* lo..hi inclusive, for ranges far from the int64 limits. */
static int64_t between(int64_t lo, int64_t hi) { return lo + (int64_t)below((uint64_t)(hi - lo) + 1); }

static uint64_t bits_of(double v) { uint64_t u; memcpy(&u, &v, 8); return u; }
static double from_bits(uint64_t u) { double v; memcpy(&v, &u, 8); return v; }
static bool is_stale(double v) { return bits_of(v) == STALE; }

static const uint64_t SPECIALS[] = {
    STALE,
    0x7ff8000000000000ULL, /* the canonical quiet NaN */
    0x7ff8000000000001ULL, /* Prometheus' NaN */
    0xfff8dead0000beefULL, /* negative NaN with a payload */
    0x7ff4000000000123ULL, /* signalling NaN with a payload */
    0x7ff0000000000000ULL, /* +Inf */
    0xfff0000000000000ULL, /* -Inf */
    0x8000000000000000ULL, /* -0.0 */
    0x0000000000000000ULL, /* +0.0 */
};
#define NSPECIALS (sizeof SPECIALS / sizeof SPECIALS[0])

static const uint64_t HARD[] = {
    0x0000000000000001ULL, /* smallest subnormal */
    0x800fffffffffffffULL, /* largest negative subnormal */
    0x0010000000000000ULL, /* DBL_MIN */
    0x7fefffffffffffffULL, /* DBL_MAX */
    0xffefffffffffffffULL, /* -DBL_MAX */
    0x4340000000000001ULL, /* 2^54 + 4 */
    0xc6293e5939a08ceaULL, /* -1e30 */
};
#define NHARD (sizeof HARD / sizeof HARD[0])

/* What values a series takes. Sums and corrections of V_INT data are exact in any order, those
 * of V_SPECIAL data too except for the payload of a NaN result, and V_FLOAT values are positive
 * so that reassociation errors stay within REL_TOL. V_ANY has everything (bit-exact checks only). */
typedef enum { V_INT, V_FLOAT, V_SPECIAL, V_ANY } vkind_t;

static double special(void) { return from_bits(SPECIALS[below(NSPECIALS)]); }

static double any_value(void)
{
    switch (below(6)) {
    case 0: return special();
    case 1: return from_bits(HARD[below(NHARD)]);
    case 2: return from_bits(rnd()); /* any bits, random NaNs included */
    case 3: return (double)between(-1000, 1000) / 100.0;
    case 4: return (double)(int64_t)rnd() * 1e280;
    default: return (double)between(-20, 100);
    }
}

/* The next value of a series; *c is the running counter for counter series. */
static double gen_value(vkind_t k, bool counter, double *c, unsigned stale_pct)
{
    if (stale_pct && chance(stale_pct)) return from_bits(STALE);
    if (k == V_ANY) return counter && chance(70) ? (*c += (double)below(1000)) : any_value();
    if (k == V_SPECIAL && chance(15)) return special();
    if (!counter) {
        if (k == V_FLOAT) return ldexp((double)(rnd() >> 11), -53) * pow(10.0, (double)between(-3, 12));
        return (double)between(-20, 100);
    }
    if (chance(4)) { /* a counter reset */
        *c = k == V_FLOAT ? ldexp((double)(rnd() >> 11), -53) * 10.0 : (double)below(5);
        return *c;
    }
    if (k == V_FLOAT)
        *c += chance(20) ? 0.0 : ldexp((double)(rnd() >> 11), -53) * pow(10.0, (double)between(-2, 6));
    else
        *c += (double)below(50);
    return *c;
}

static int64_t naive_mod(int64_t t, int64_t w)
{
    int64_t r = t % w;
    return r < 0 ? r + w : r;
}

/* The floor computed another way than storage/rollup.c (not for t within w of INT64_MIN). */
static int64_t naive_floor(int64_t t, int64_t w) { return t - naive_mod(t, w); }

/* A step to the next timestamp: scrape intervals with jitter, bursts, exact bucket edges and the
 * millisecond before them, gaps of minutes to hours, now and then a huge jump. */
static int64_t next_step(int64_t t, bool big_jumps)
{
    unsigned r = (unsigned)below(100);
    if (r < 35) return 15000 + between(-40, 40);
    if (r < 50) return 1 + (int64_t)below(10);
    if (r < 60) return W1M - naive_mod(t, W1M);
    if (r < 65) return W1H - naive_mod(t, W1H);
    if (r < 72) {
        int64_t m = naive_mod(t, W1M);
        return m == W1M - 1 ? W1M : W1M - 1 - m;
    }
    if (r < 85) return 1 + (int64_t)below(300000);
    if (r < 97 || !big_jumps) return 1 + (int64_t)below(10 * W1H);
    return 1 + (int64_t)below(1000000000000ULL);
}

static int64_t random_t0(void)
{
    switch (below(4)) {
    case 0: return between(-3 * W1H, W1H); /* crosses 0 */
    case 1: return between(-5000000000000LL, 0);
    case 2: return 1700000000000LL + between(-W1D, W1D);
    default: return between(-5000000000000LL, 5000000000000LL);
    }
}

static ag_sample_pt_t *gen_samples(size_t n, vkind_t k, bool counter, unsigned stale_pct,
                                   bool big_jumps)
{
    ag_sample_pt_t *s = calloc(n ? n : 1, sizeof *s);
    assert_non_null(s);
    int64_t t = random_t0();
    double c = (double)below(1000);
    if (k == V_FLOAT) c /= 7.0;
    for (size_t i = 0; i < n; i++) {
        if (i) t += next_step(t, big_jumps);
        s[i].t = t;
        s[i].v = gen_value(k, counter, &c, stale_pct);
    }
    return s;
}

static ag_rollup_t *buckets(size_t n)
{
    ag_rollup_t *b = calloc(n ? n : 1, sizeof *b);
    assert_non_null(b);
    return b;
}

/* ---- the naive model ----------------------------------------------------------------------- */

/* The bucket of the non-stale samples among s[lo..hi) (at least one), straight from the rules:
 * min/max as Prometheus' min_over_time/max_over_time, sum in sample order, and the correction
 * adding the previous value at every drop, as rate does. */
static void naive_bucket(const ag_sample_pt_t *s, size_t lo, size_t hi, int64_t start,
                         ag_rollup_t *b)
{
    bool have = false;
    double prev = 0;
    memset(b, 0, sizeof *b);
    b->start = start;
    for (size_t i = lo; i < hi; i++) {
        double v = s[i].v;
        if (is_stale(v)) continue;
        if (!have) {
            b->first_t = s[i].t;
            b->first = b->min = b->max = v;
            b->sum = 0.0 + v; /* Prometheus' sum_over_time starts at +0 */
            b->corr = 0;
            have = true;
        } else {
            if (v < b->min || isnan(b->min)) b->min = v;
            if (v > b->max || isnan(b->max)) b->max = v;
            b->sum += v;
            if (v < prev) b->corr += prev;
        }
        prev = v;
        b->last_t = s[i].t;
        b->last = v;
        b->count++;
    }
    assert_true(have);
}

static size_t naive_fold(const ag_sample_pt_t *s, size_t n, int64_t w, ag_rollup_t *out)
{
    size_t k = 0, i = 0;
    while (i < n) {
        if (is_stale(s[i].v)) {
            i++;
            continue;
        }
        int64_t start = naive_floor(s[i].t, w);
        size_t j = i;
        while (j < n && naive_floor(s[j].t, w) == start) j++;
        naive_bucket(s, i, j, start, &out[k++]);
        i = j;
    }
    return k;
}

/* ---- comparing buckets --------------------------------------------------------------------- */

typedef enum {
    CMP_EXACT, /* every field bit for bit */
    CMP_NAN,   /* sum/corr: bit for bit, or both NaN (a NaN sum's payload depends on the order) */
    CMP_REL,   /* sum/corr: within REL_TOL relative (another addition order) */
} cmp_t;

static bool same_value(double a, double b, cmp_t c)
{
    if (bits_of(a) == bits_of(b)) return true;
    if (c == CMP_EXACT) return false;
    if (isnan(a) && isnan(b)) return true;
    if (c == CMP_NAN || !isfinite(a) || !isfinite(b)) return false;
    return fabs(a - b) <= REL_TOL * fmax(fabs(a), fabs(b));
}

static void print_bucket(const char *tag, const ag_rollup_t *b)
{
    print_message("  %s start=%" PRId64 " first=(%" PRId64 ", %016" PRIx64 " %.17g) last=(%" PRId64
                  ", %016" PRIx64 " %.17g)\n       min=%016" PRIx64 " %.17g max=%016" PRIx64
                  " %.17g sum=%016" PRIx64 " %.17g corr=%016" PRIx64 " %.17g count=%" PRIu64 "\n",
                  tag, b->start, b->first_t, bits_of(b->first), b->first, b->last_t,
                  bits_of(b->last), b->last, bits_of(b->min), b->min, bits_of(b->max), b->max,
                  bits_of(b->sum), b->sum, bits_of(b->corr), b->corr, b->count);
}

static bool bucket_equal(const ag_rollup_t *g, const ag_rollup_t *w, cmp_t c)
{
    return g->start == w->start && g->first_t == w->first_t && g->last_t == w->last_t &&
           g->count == w->count && bits_of(g->first) == bits_of(w->first) &&
           bits_of(g->last) == bits_of(w->last) && bits_of(g->min) == bits_of(w->min) &&
           bits_of(g->max) == bits_of(w->max) && same_value(g->sum, w->sum, c) &&
           same_value(g->corr, w->corr, c);
}

static void expect_buckets(const char *what, int trial, const ag_rollup_t *got, size_t ngot,
                           const ag_rollup_t *want, size_t nwant, cmp_t c)
{
    if (ngot != nwant) fail_msg("%s (trial %d): %zu buckets, want %zu", what, trial, ngot, nwant);
    for (size_t i = 0; i < ngot; i++) {
        if (bucket_equal(&got[i], &want[i], c)) continue;
        print_message("%s (trial %d): bucket %zu of %zu differs\n", what, trial, i, ngot);
        print_bucket("got ", &got[i]);
        print_bucket("want", &want[i]);
        fail();
    }
}

/* The number of samples that are not stale markers. */
static uint64_t live(const ag_sample_pt_t *s, size_t n)
{
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++) k += !is_stale(s[i].v);
    return k;
}

/* ---- 1. folding against the model --------------------------------------------------------- */

static void test_floor(void **state)
{
    static const struct { int64_t t, w, want; } cases[] = {
        {0, W1M, 0},
        {1, W1M, 0},
        {59999, W1M, 0},
        {60000, W1M, 60000},
        {-1, W1M, -60000},
        {-59999, W1M, -60000},
        {-60000, W1M, -60000},
        {-60001, W1M, -120000},
        {-1, 1, -1},
        {-7, 3, -9},
        {7, 3, 6},
        {1700000012345LL, W1H, 1699999200000LL},
        {-1700000012345LL, W1H, -1700002800000LL},
        {INT64_MAX, W1M, INT64_MAX - 55807},
        {INT64_MAX, 1, INT64_MAX},
        {INT64_MAX, INT64_MAX, INT64_MAX},
        {INT64_MAX - 1, INT64_MAX, 0},
        {INT64_MIN, 1, INT64_MIN},
        {INT64_MIN, 2, INT64_MIN},
        {INT64_MIN + 55808, W1M, INT64_MIN + 55808}, /* the smallest multiple of 60000 */
        {INT64_MIN + 55809, W1M, INT64_MIN + 55808},
        {INT64_MIN + 1, INT64_MAX, -INT64_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = ag_rollup_floor(cases[i].t, cases[i].w);
        if (got != cases[i].want)
            fail_msg("floor(%" PRId64 ", %" PRId64 ") = %" PRId64 ", want %" PRId64, cases[i].t,
                     cases[i].w, got, cases[i].want);
    }
    rng_start(1);
    for (int i = 0; i < 100000; i++) {
        int64_t w = chance(50) ? (chance(50) ? W1M : W1H) : 1 + (int64_t)below(chance(50) ? 100 : 100000000);
        int64_t t = between(-4000000000000000000LL, 4000000000000000000LL);
        if (chance(30)) t = naive_floor(t, w) + (chance(50) ? 0 : chance(50) ? -1 : w - 1);
        int64_t got = ag_rollup_floor(t, w);
        if (got != naive_floor(t, w))
            fail_msg("floor(%" PRId64 ", %" PRId64 ") = %" PRId64 ", want %" PRId64, t, w, got,
                     naive_floor(t, w));
    }
}

/* Hand-checked buckets, so that the model itself is pinned down. */
static void test_fold_anchors(void **state)
{
    const double nan_a = from_bits(0x7ff8000000000001ULL), nan_b = from_bits(0xfff8dead0000beefULL);
    const double stale = from_bits(STALE);
    ag_rollup_t out[8];

    /* All NaN: min and max are the last NaN, payload and sign included. */
    ag_sample_pt_t s1[] = {{10, nan_a}, {20, nan_b}};
    assert_int_equal(ag_rollup_fold(s1, 2, W1M, out), 1);
    assert_true(bits_of(out[0].min) == bits_of(nan_b) && bits_of(out[0].max) == bits_of(nan_b));
    assert_true(isnan(out[0].sum) && out[0].corr == 0 && out[0].count == 2);

    /* A NaN first is replaced by the next number; later NaNs never win. */
    ag_sample_pt_t s2[] = {{0, nan_a}, {1, 5}, {2, 2}, {3, nan_b}, {4, 7}};
    assert_int_equal(ag_rollup_fold(s2, 5, W1M, out), 1);
    assert_true(out[0].min == 2 && out[0].max == 7 && out[0].count == 5);
    assert_true(bits_of(out[0].first) == bits_of(nan_a) && out[0].last == 7);
    assert_true(out[0].corr == 5); /* 2 < 5; nothing is below or above a NaN */

    /* Signed zeros: the first of equal values stays. */
    ag_sample_pt_t s3[] = {{0, 0.0}, {1, -0.0}};
    assert_int_equal(ag_rollup_fold(s3, 2, W1M, out), 1);
    assert_true(bits_of(out[0].min) == 0 && bits_of(out[0].max) == 0);
    s3[0].v = -0.0;
    s3[1].v = 0.0;
    assert_int_equal(ag_rollup_fold(s3, 2, W1M, out), 1);
    assert_true(bits_of(out[0].min) == 0x8000000000000000ULL && bits_of(out[0].max) == 0x8000000000000000ULL);

    /* A counter with two resets, a stale marker between the first pair, negative times and a
     * bucket edge: buckets [-180000, -120000) and [-120000, -60000). */
    ag_sample_pt_t s4[] = {{-180000, 1}, {-150000, 5}, {-140000, stale}, {-130000, 2},
                           {-120001, 8}, {-120000, 3}, {-60001, 4}, {-60000, stale}};
    assert_int_equal(ag_rollup_fold(s4, 8, W1M, out), 2);
    assert_true(out[0].start == -180000 && out[0].first_t == -180000 && out[0].last_t == -120001);
    assert_true(out[0].count == 4 && out[0].corr == 5 && out[0].sum == 16);
    assert_true(out[0].min == 1 && out[0].max == 8 && out[0].first == 1 && out[0].last == 8);
    assert_true(out[1].start == -120000 && out[1].first_t == -120000 && out[1].last_t == -60001);
    assert_true(out[1].count == 2 && out[1].corr == 0 && out[1].sum == 7);
    /* The reset between the buckets (8 -> 3) shows up when they are merged. */
    assert_int_equal(ag_rollup_regroup(out, 2, W1H, out), 1);
    assert_true(out[0].start == -W1H && out[0].corr == 13 && out[0].count == 6 && out[0].sum == 23);

    /* Only stale markers, and nothing at all. */
    ag_sample_pt_t s5[] = {{1, stale}, {2, stale}};
    assert_int_equal(ag_rollup_fold(s5, 2, W1M, out), 0);
    assert_int_equal(ag_rollup_fold(s5, 0, W1M, out), 0);
}

static void test_fold_random(void **state)
{
    rng_start(2);
    static const int64_t widths[] = {W1M, W1M, W1M, W1H, W1H, 1, 7, 1000, W1D};
    for (int trial = 0; trial < 400; trial++) {
        size_t n = trial < 10 ? (size_t)trial : (size_t)below(chance(20) ? 6000 : 600);
        vkind_t k = (vkind_t)below(4);
        unsigned stale_pct = chance(20) ? 0 : chance(80) ? 5 : 60;
        ag_sample_pt_t *s = gen_samples(n, k, chance(50), stale_pct, true);
        int64_t w = chance(85) ? widths[below(sizeof widths / sizeof widths[0])]
                               : 1 + (int64_t)below(50000000);
        ag_rollup_t *got = buckets(n), *want = buckets(n);
        size_t ng = ag_rollup_fold(s, n, w, got), nw = naive_fold(s, n, w, want);
        expect_buckets("fold", trial, got, ng, want, nw, CMP_EXACT);
        uint64_t total = 0;
        for (size_t i = 0; i < ng; i++) total += got[i].count;
        assert_true(total == live(s, n));
        free(s);
        free(got);
        free(want);
    }
}

/* Samples at the ends of the int64 range: whatever happens where the floor of a timestamp is not
 * an int64, the buckets must partition the samples in order, each bucket's interval
 * [start, start + width) must hold its samples, starts must increase strictly, the start must be
 * the floor wherever that exists, the fields must match the model, the block must encode, and
 * 1 m buckets regrouped to 1 h must match a direct 1 h fold. */
static void check_fold_shape(const char *what, const ag_sample_pt_t *s, size_t n, int64_t w,
                             const ag_rollup_t *b, size_t nb)
{
    size_t i = 0;
    for (size_t k = 0; k < nb; k++) {
        while (i < n && is_stale(s[i].v)) i++;
        if (i == n) fail_msg("%s: bucket %zu has no samples left", what, k);
        if (b[k].first_t != s[i].t) fail_msg("%s: bucket %zu first_t", what, k);
        size_t j = i;
        while (j < n && (is_stale(s[j].v) || s[j].t <= b[k].last_t)) {
            if (!is_stale(s[j].v)) {
                int64_t t = s[j].t;
                __int128 q = (__int128)t / w, r = (__int128)t % w;
                __int128 fl = (r < 0 ? q - 1 : q) * w;
                if (t < b[k].start || (uint64_t)t - (uint64_t)b[k].start >= (uint64_t)w)
                    fail_msg("%s: sample t=%" PRId64 " outside bucket %zu [%" PRId64 ", +%" PRId64
                             ")", what, t, k, b[k].start, w);
                if (fl >= INT64_MIN && fl != b[k].start)
                    fail_msg("%s: bucket %zu start %" PRId64 " is not the floor of t=%" PRId64,
                             what, k, b[k].start, t);
            }
            j++;
        }
        if (k && b[k].start <= b[k - 1].start)
            fail_msg("%s: bucket %zu start %" PRId64 " <= previous start %" PRId64, what, k,
                     b[k].start, b[k - 1].start);
        ag_rollup_t want;
        naive_bucket(s, i, j, b[k].start, &want);
        expect_buckets(what, (int)k, &b[k], 1, &want, 1, CMP_EXACT);
        i = j;
    }
    while (i < n && is_stale(s[i].v)) i++;
    if (i != n) fail_msg("%s: samples from index %zu are in no bucket", what, i);
}

typedef struct {
    ag_sample_pt_t s[6];
    size_t n;
} sample_set_t;

static void fold_extreme_sets(const char *name, const sample_set_t *sets, size_t nsets)
{
    static const int64_t widths[] = {1, W1M, W1H, 1024};
    for (size_t c = 0; c < nsets; c++) {
        const ag_sample_pt_t *s = sets[c].s;
        size_t n = sets[c].n;
        char what[96];
        for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
            snprintf(what, sizeof what, "%s, set %zu, width %" PRId64, name, c, widths[wi]);
            ag_rollup_t b[6], d[6];
            size_t nb = ag_rollup_fold(s, n, widths[wi], b);
            check_fold_shape(what, s, n, widths[wi], b, nb);
            ag_buf_t buf = AG_BUF_INIT;
            if (ag_rollup_encode(b, nb, &buf) != 0) fail_msg("%s: encode failed", what);
            size_t nd = 0;
            assert_int_equal(ag_rollup_decode((const uint8_t *)buf.data, buf.len, d, &nd), 0);
            expect_buckets(what, 0, d, nd, b, nb, CMP_EXACT);
            ag_buf_free(&buf);
        }
        snprintf(what, sizeof what, "%s, set %zu, regroup 1m->1h vs fold 1h", name, c);
        ag_rollup_t m[6], h[6];
        size_t nm = ag_rollup_fold(s, n, W1M, m), nh = ag_rollup_fold(s, n, W1H, h);
        nm = ag_rollup_regroup(m, nm, W1H, m);
        expect_buckets(what, 0, m, nm, h, nh, CMP_EXACT);
    }
}

/* The last bucket's end, start + width, does not fit in an int64. */
static void test_fold_near_int64_max(void **state)
{
    const double stale = from_bits(STALE);
    const sample_set_t sets[] = {
        {{{INT64_MAX - 1, 1}, {INT64_MAX, 2}}, 2},
        {{{INT64_MAX - 70000, 5}, {INT64_MAX - 60000, 4}, {INT64_MAX - 3, 3}, {INT64_MAX, 9}}, 4},
        {{{INT64_MAX - 2, 5}, {INT64_MAX - 1, stale}, {INT64_MAX, 1}}, 3},
        {{{-1, 2}, {0, 1}, {INT64_MAX - 59999, 3}, {INT64_MAX, 0}}, 4},
    };
    fold_extreme_sets("near INT64_MAX", sets, sizeof sets / sizeof sets[0]);
}

/* The floor of the first timestamps (a multiple of the width <= t) is below INT64_MIN. */
static void test_fold_near_int64_min(void **state)
{
    const sample_set_t sets[] = {
        {{{INT64_MIN, 1}, {INT64_MIN + 1, 2}, {INT64_MIN + 55807, 0}, {INT64_MIN + 55808, 4},
          {INT64_MIN + 60000, 5}, {INT64_MIN + 3600000, 6}}, 6},
        {{{INT64_MIN, 3}, {-1, 2}, {0, 1}, {INT64_MAX, 0}}, 4},
        {{{INT64_MIN + 1000, 7}, {INT64_MIN + 2000, 6}, {INT64_MAX - 1000, 5}, {INT64_MAX, 4}}, 4},
    };
    fold_extreme_sets("near INT64_MIN", sets, sizeof sets / sizeof sets[0]);
}

/* ---- 2. composition --------------------------------------------------------------------------- */

static cmp_t cmp_for(vkind_t k) { return k == V_INT ? CMP_EXACT : k == V_SPECIAL ? CMP_NAN : CMP_REL; }

static void test_compose_regroup(void **state)
{
    rng_start(3);
    for (int trial = 0; trial < 300; trial++) {
        vkind_t k = (vkind_t)(trial % 3); /* V_INT, V_FLOAT, V_SPECIAL */
        size_t n = (size_t)below(trial % 10 == 0 ? 4000 : 1500);
        ag_sample_pt_t *s = gen_samples(n, k, chance(60), chance(30) ? 0 : 5, chance(10));
        ag_rollup_t *m = buckets(n), *h = buckets(n), *r = buckets(n), *d = buckets(n);
        ag_rollup_t *day = buckets(n), *dday = buckets(n);
        size_t nm = ag_rollup_fold(s, n, W1M, m);
        size_t nh = ag_rollup_fold(s, n, W1H, h);
        size_t nr = ag_rollup_regroup(m, nm, W1H, r);
        /* min/max/first/last/count (and for integer data sum and corr) are exact. */
        expect_buckets("regroup 1m->1h vs fold 1h", trial, r, nr, h, nh, cmp_for(k));
        /* In place gives the same bits as out of place. */
        memcpy(d, m, nm * sizeof *m);
        size_t nd = ag_rollup_regroup(d, nm, W1H, d);
        expect_buckets("regroup in place", trial, d, nd, r, nr, CMP_EXACT);
        /* The same width changes nothing. */
        nd = ag_rollup_regroup(m, nm, W1M, d);
        expect_buckets("regroup 1m->1m", trial, d, nd, m, nm, CMP_EXACT);
        /* Two steps: 1m -> 1h -> 1d equals a direct 1d fold. */
        size_t nday = ag_rollup_regroup(r, nr, W1D, day), ndd = ag_rollup_fold(s, n, W1D, dday);
        expect_buckets("regroup 1h->1d vs fold 1d", trial, day, nday, dday, ndd, cmp_for(k));
        free(s);
        free(m);
        free(h);
        free(r);
        free(d);
        free(day);
        free(dday);
    }
}

/* Integer data where the addition order does not matter, checked to the last bit. */
static void test_compose_integers_exact(void **state)
{
    rng_start(4);
    for (int trial = 0; trial < 100; trial++) {
        size_t n = 200 + (size_t)below(3000);
        ag_sample_pt_t *s = gen_samples(n, V_INT, trial % 2 == 0, trial % 3 ? 3 : 0, false);
        ag_rollup_t *m = buckets(n), *h = buckets(n);
        size_t nm = ag_rollup_fold(s, n, W1M, m), nh = ag_rollup_fold(s, n, W1H, h);
        nm = ag_rollup_regroup(m, nm, W1H, m);
        expect_buckets("integer regroup", trial, m, nm, h, nh, CMP_EXACT);
        /* The model agrees at 1 h too. */
        size_t nw = naive_fold(s, n, W1H, m);
        expect_buckets("integer 1h model", trial, h, nh, m, nw, CMP_EXACT);
        free(s);
        free(m);
        free(h);
    }
}

/* Folding two halves separately and merging the buckets that meet equals folding the whole. */
static void test_compose_merge(void **state)
{
    rng_start(5);
    for (int trial = 0; trial < 600; trial++) {
        vkind_t k = (vkind_t)(trial % 3);
        size_t n = 1 + (size_t)below(trial % 7 == 0 ? 3000 : 300);
        ag_sample_pt_t *s = gen_samples(n, k, chance(60), chance(30) ? 0 : 8, false);
        size_t cut = (size_t)below(n + 1);
        int64_t w = trial % 4 == 0 ? W1D : trial % 4 == 1 ? W1H : W1M;
        ag_rollup_t *a = buckets(n), *b = buckets(n), *whole = buckets(n);
        size_t na = ag_rollup_fold(s, cut, w, a), nb = ag_rollup_fold(s + cut, n - cut, w, b);
        size_t nw = ag_rollup_fold(s, n, w, whole);
        size_t j = 0;
        if (na && nb && a[na - 1].start == b[0].start) {
            int64_t start = a[na - 1].start, first_t = a[na - 1].first_t;
            uint64_t first = bits_of(a[na - 1].first);
            ag_rollup_merge(&a[na - 1], &b[0]);
            assert_true(a[na - 1].start == start && a[na - 1].first_t == first_t &&
                        bits_of(a[na - 1].first) == first);
            j = 1;
        }
        for (; j < nb; j++) a[na++] = b[j];
        expect_buckets("merge halves", trial, a, na, whole, nw, cmp_for(k));
        free(s);
        free(a);
        free(b);
        free(whole);
    }
    /* One bucket merged from many single-sample buckets, in order. */
    rng_start(6);
    for (int trial = 0; trial < 100; trial++) {
        vkind_t k = (vkind_t)(trial % 3);
        size_t n = 1 + (size_t)below(200);
        ag_sample_pt_t *s = gen_samples(n, k, chance(50), 0, false);
        for (size_t i = 0; i < n; i++) {
            s[i].t = -7 * (int64_t)(n - i); /* all in [-W1H, 0) */
            if (is_stale(s[i].v)) s[i].v = 1;
        }
        ag_rollup_t acc, one, want;
        ag_rollup_init(&acc, -W1H, s[0].t, s[0].v);
        for (size_t i = 1; i < n; i++) {
            ag_rollup_init(&one, -W1H, s[i].t, s[i].v);
            ag_rollup_merge(&acc, &one);
        }
        assert_int_equal(ag_rollup_fold(s, n, W1H, &want), 1);
        expect_buckets("merge singles", trial, &acc, 1, &want, 1, cmp_for(k));
        free(s);
    }
}

/* ---- 3. rate's inputs over windows of whole buckets ----------------------------------------------- */

typedef struct {
    int64_t first_t, last_t;
    double first, last, increase, scale;
    uint64_t count;
} rate_in_t;

/* What Prometheus' extrapolatedRate starts from, over the non-stale samples with lo <= t < hi. */
static bool naive_rate(const ag_sample_pt_t *s, size_t n, int64_t lo, int64_t hi, rate_in_t *r)
{
    memset(r, 0, sizeof *r);
    double last_value = 0, corr = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].t < lo || s[i].t >= hi || is_stale(s[i].v)) continue;
        if (!r->count) {
            r->first_t = s[i].t;
            r->first = s[i].v;
        }
        r->last_t = s[i].t;
        r->last = s[i].v;
        r->count++;
        if (s[i].v < last_value) corr += last_value;
        last_value = s[i].v;
    }
    if (!r->count) return false;
    /* resultValue := last - first; then += the value before every drop, in order. */
    r->increase = r->last - r->first;
    last_value = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].t < lo || s[i].t >= hi || is_stale(s[i].v)) continue;
        if (s[i].v < last_value) r->increase += last_value;
        last_value = s[i].v;
    }
    r->scale = fabs(r->last) + fabs(r->first) + corr;
    return true;
}

/* The same from buckets b[i..j]: the correction is each bucket's own plus the previous bucket's
 * last value wherever a bucket starts below it. */
static void bucket_rate(const ag_rollup_t *b, size_t i, size_t j, rate_in_t *r)
{
    memset(r, 0, sizeof *r);
    r->first_t = b[i].first_t;
    r->first = b[i].first;
    r->last_t = b[j].last_t;
    r->last = b[j].last;
    double corr = b[i].corr;
    r->count = b[i].count;
    for (size_t k = i + 1; k <= j; k++) {
        if (b[k].first < b[k - 1].last) corr += b[k - 1].last;
        corr += b[k].corr;
        r->count += b[k].count;
    }
    r->increase = r->last - r->first + corr;
}

static void test_window_rate(void **state)
{
    rng_start(7);
    for (int trial = 0; trial < 300; trial++) {
        vkind_t k = trial % 2 ? V_FLOAT : V_INT;
        size_t n = 1 + (size_t)below(2500);
        ag_sample_pt_t *s = gen_samples(n, k, true, chance(50) ? 0 : 4, false);
        int64_t w = trial % 3 == 0 ? W1H : W1M;
        ag_rollup_t *b = buckets(n);
        size_t nb = ag_rollup_fold(s, n, W1M, b);
        if (w == W1H) nb = ag_rollup_regroup(b, nb, W1H, b);
        for (int q = 0; q < 30 && nb; q++) {
            size_t i = (size_t)below(nb), j = i + (size_t)below(nb - i);
            if (q == 0) i = 0, j = nb - 1;
            rate_in_t got, want;
            bucket_rate(b, i, j, &got);
            assert_true(naive_rate(s, n, b[i].start, b[j].start + w, &want));
            bool ok = got.first_t == want.first_t && got.last_t == want.last_t &&
                      got.count == want.count && bits_of(got.first) == bits_of(want.first) &&
                      bits_of(got.last) == bits_of(want.last);
            if (k == V_INT)
                ok = ok && bits_of(got.increase) == bits_of(want.increase);
            else
                ok = ok && fabs(got.increase - want.increase) <= REL_TOL * want.scale;
            if (!ok)
                fail_msg("window (trial %d, width %" PRId64 ", buckets %zu..%zu): got first=(%" PRId64
                         ", %.17g) last=(%" PRId64 ", %.17g) count=%" PRIu64 " increase=%.17g; want "
                         "first=(%" PRId64 ", %.17g) last=(%" PRId64 ", %.17g) count=%" PRIu64
                         " increase=%.17g",
                         trial, w, i, j, got.first_t, got.first, got.last_t, got.last, got.count,
                         got.increase, want.first_t, want.first, want.last_t, want.last,
                         want.count, want.increase);
        }
        free(s);
        free(b);
    }
}

/* ---- 4. the block codec ------------------------------------------------------------------------- */

static double codec_value(int profile)
{
    switch (profile) {
    case 0: return (double)between(0, 100000) / 100.0; /* decimals: the pack's decimal modes */
    case 1: return (double)between(-1000, 1000);
    case 2: return chance(10) ? special() : (double)between(0, 1000000) / 1000.0;
    default: return chance(30) ? special() : chance(30) ? from_bits(HARD[below(NHARD)]) : from_bits(rnd());
    }
}

static uint64_t codec_count(void)
{
    switch (below(8)) {
    case 0: return 1;
    case 1: return 2;
    case 2: return TWO53;
    case 3: return TWO53 - below(3);
    case 4: return 1 + below(TWO53);
    default: return 1 + below(300);
    }
}

/* n valid buckets with irregular starts; the first at t0, every later one after the last_t of the
 * one before. */
static void gen_codec_buckets(ag_rollup_t *b, size_t n, int64_t t0, int profile)
{
    int64_t t = t0;
    bool regular = chance(50);
    for (size_t i = 0; i < n; i++) {
        ag_rollup_t *x = &b[i];
        if (i) {
            int64_t gap = regular ? W1M - naive_mod(t, W1M) : 1 + (int64_t)below(chance(90) ? 100000 : 10000000000ULL);
            if (regular && chance(10)) gap += W1M * (int64_t)below(100);
            t += gap;
        }
        x->start = t;
        x->count = codec_count();
        x->first_t = t + (chance(50) ? 0 : (int64_t)below(regular ? 30000 : 1000));
        x->last_t = x->count == 1 ? x->first_t : x->first_t + 1 + (int64_t)below(regular ? 29000 : 5000);
        t = x->last_t;
        x->first = codec_value(profile);
        x->last = codec_value(profile);
        x->min = codec_value(profile);
        x->max = codec_value(profile);
        x->sum = codec_value(profile);
        x->corr = chance(70) ? 0.0 : codec_value(profile);
    }
}

static uint8_t *dup_bytes(const void *p, size_t len)
{
    uint8_t *d = malloc(len ? len : 1); /* exactly len bytes, so ASan sees any over-read */
    assert_non_null(d);
    if (len) memcpy(d, p, len);
    return d;
}

/* Encodes b[0..n) behind a prefix, checks count, decode and determinism; returns the block. */
static uint8_t *roundtrip(const char *what, int trial, const ag_rollup_t *b, size_t n, size_t *len)
{
    ag_buf_t buf = AG_BUF_INIT, again = AG_BUF_INIT;
    ag_buf_puts(&buf, "prefix");
    int rc = ag_rollup_encode(b, n, &buf);
    if (rc) fail_msg("%s (trial %d): encode of %zu buckets: %d", what, trial, n, rc);
    assert_memory_equal(buf.data, "prefix", 6);
    *len = buf.len - 6;
    uint8_t *d = dup_bytes(buf.data + 6, *len);
    assert_int_equal(ag_rollup_encode(b, n, &again), 0);
    assert_int_equal(again.len, *len);
    assert_memory_equal(again.data, d, *len);
    ag_buf_free(&buf);
    ag_buf_free(&again);
    assert_int_equal(ag_rollup_count(d, *len), n);
    ag_rollup_t *o = buckets(n);
    size_t got = 12345;
    assert_int_equal(ag_rollup_decode(d, *len, o, &got), 0);
    expect_buckets(what, trial, o, got, b, n, CMP_EXACT);
    free(o);
    return d;
}

static void test_codec_roundtrip(void **state)
{
    rng_start(8);
    for (int trial = 0; trial < 400; trial++) {
        size_t n = trial < 4 ? (size_t)trial + 1 : 1 + (size_t)below(chance(30) ? 1000 : 50);
        ag_rollup_t *b = buckets(n);
        gen_codec_buckets(b, n, random_t0(), trial % 4);
        size_t len;
        free(roundtrip("codec", trial, b, n, &len));
        free(b);
    }
    /* Buckets at both ends of the time range, and a block of the largest size. */
    ag_rollup_t e[3] = {
        {INT64_MIN, INT64_MIN, INT64_MIN, -1, -1, -1, -1, -1, 0, 1},
        {0, 0, 1, 1, 2, 1, 2, 3, 0, 2},
        {INT64_MAX - 1, INT64_MAX - 1, INT64_MAX, 5, 6, 5, 6, 11, 0, TWO53},
    };
    size_t len;
    free(roundtrip("extremes", 0, e, 3, &len));
    size_t big = AG_PACK_MAX_SAMPLES;
    ag_rollup_t *b = buckets(big);
    gen_codec_buckets(b, big, -1000000000LL, 2);
    free(roundtrip("largest", 0, b, big, &len));
    free(b);
}

static void test_codec_einval(void **state)
{
    ag_rollup_t good[3] = {
        {0, 10, 20, 1, 2, 1, 2, 3, 0, 2},
        {60000, 60000, 60000, 3, 3, 3, 3, 3, 0, 1},
        {120000, 120001, 179999, 0, 4, 0, 4, 4, 3, 3},
    };
    ag_buf_t out = AG_BUF_INIT;
    ag_buf_puts(&out, "keep");
    assert_int_equal(ag_rollup_encode(good, 0, &out), AG_EINVAL);
    assert_int_equal(ag_rollup_encode(NULL, 1, &out), AG_EINVAL);
    assert_int_equal(ag_rollup_encode(good, 3, NULL), AG_EINVAL);

    struct { const char *why; size_t i; ag_rollup_t b; } bad[] = {
        {"count 0", 0, {0, 10, 20, 1, 2, 1, 2, 3, 0, 0}},
        {"first_t < start", 1, {60000, 59999, 60000, 3, 3, 3, 3, 3, 0, 2}},
        {"last_t < first_t", 2, {120000, 120001, 120000, 0, 4, 0, 4, 4, 3, 3}},
        {"one sample, two times", 1, {60000, 60000, 60001, 3, 3, 3, 3, 3, 0, 1}},
        {"equal starts", 1, {0, 30, 40, 3, 3, 3, 3, 3, 0, 2}},
        {"decreasing starts", 2, {-60000, -60000, -60000, 0, 0, 0, 0, 0, 0, 1}},
        {"start inside the previous bucket", 1, {20, 21, 22, 3, 3, 3, 3, 3, 0, 2}},
        {"count 2^53 + 1", 0, {0, 10, 20, 1, 2, 1, 2, 3, 0, TWO53 + 1}},
        {"count 2^64 - 1", 0, {0, 10, 20, 1, 2, 1, 2, 3, 0, UINT64_MAX}},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ag_rollup_t b[3];
        memcpy(b, good, sizeof b);
        b[bad[k].i] = bad[k].b;
        int rc = ag_rollup_encode(b, 3, &out);
        if (rc != AG_EINVAL) {
            ag_buf_free(&out);
            fail_msg("encode with %s: %d, want AG_EINVAL (%d)%s", bad[k].why, rc, AG_EINVAL,
                     rc == 0 ? " - the block would not decode to these buckets" : "");
        }
        assert_int_equal(out.len, 4);
        assert_false(out.oom);
        assert_memory_equal(out.data, "keep", 4);
    }
    ag_rollup_t *big = buckets(AG_PACK_MAX_SAMPLES + 1);
    for (size_t i = 0; i <= AG_PACK_MAX_SAMPLES; i++) {
        big[i].start = big[i].first_t = big[i].last_t = (int64_t)i * W1M;
        big[i].count = 1;
    }
    assert_int_equal(ag_rollup_encode(big, AG_PACK_MAX_SAMPLES + 1, &out), AG_EINVAL);
    assert_int_equal(out.len, 4);
    free(big);
    /* A buffer that already failed stays failed. */
    out.oom = true;
    assert_int_equal(ag_rollup_encode(good, 3, &out), AG_ENOMEM);
    assert_int_equal(out.len, 4);
    out.oom = false;
    assert_int_equal(ag_rollup_encode(good, 3, &out), 0);
    assert_true(out.len > 4);
    ag_buf_free(&out);
}

/* The documented rules a decoded block keeps. */
static void check_consistent(const ag_rollup_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_true(b[i].count >= 1 && b[i].count <= TWO53);
        assert_true(b[i].start <= b[i].first_t && b[i].first_t <= b[i].last_t);
        if (b[i].count == 1) assert_true(b[i].first_t == b[i].last_t);
        if (i + 1 < n) assert_true(b[i + 1].start > b[i].last_t);
    }
}

/* Decodes d[0..len) (a private copy of exactly len bytes); when it decodes, the result keeps the
 * rules and round-trips. Returns the decode result. */
static int decode_checked(const uint8_t *d, size_t len)
{
    size_t cap = ag_rollup_count(d, len), n = 777;
    ag_rollup_t *o = buckets(cap);
    int rc = ag_rollup_decode(d, len, o, &n);
    assert_true(rc == 0 || rc == AG_ECORRUPT);
    if (rc) {
        assert_int_equal(n, 0);
    } else {
        assert_true(cap >= 1 && n == cap);
        check_consistent(o, n);
        size_t len2;
        free(roundtrip("re-encode", 0, o, n, &len2));
    }
    free(o);
    return rc;
}

static void test_codec_corrupt(void **state)
{
    rng_start(9);
    int decoded_flips = 0, flips = 0;
    for (int trial = 0; trial < 40; trial++) {
        size_t n = 1 + (size_t)below(trial % 4 == 0 ? 300 : 12);
        ag_rollup_t *b = buckets(n);
        gen_codec_buckets(b, n, random_t0(), trial % 4);
        size_t len;
        uint8_t *d = roundtrip("corrupt base", trial, b, n, &len);
        /* Every truncation. */
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *t = dup_bytes(d, cut);
            ag_rollup_t *o = buckets(ag_rollup_count(t, cut));
            size_t got = 99;
            if (ag_rollup_decode(t, cut, o, &got) != AG_ECORRUPT)
                fail_msg("trial %d: block truncated to %zu of %zu bytes decodes", trial, cut, len);
            assert_int_equal(got, 0);
            free(o);
            free(t);
        }
        /* Trailing garbage, zeros included. */
        for (int g = 1; g <= 16; g++) {
            uint8_t *t = malloc(len + (size_t)g);
            assert_non_null(t);
            memcpy(t, d, len);
            for (int x = 0; x < g; x++) t[len + (size_t)x] = g % 2 ? (uint8_t)rnd() : 0;
            ag_rollup_t *o = buckets(ag_rollup_count(t, len + (size_t)g));
            size_t got = 99;
            assert_int_equal(ag_rollup_decode(t, len + (size_t)g, o, &got), AG_ECORRUPT);
            assert_int_equal(got, 0);
            free(o);
            free(t);
        }
        /* Byte flips: one, a few, or a byte overwritten. */
        for (int f = 0; f < 600; f++) {
            uint8_t *t = dup_bytes(d, len);
            int nflip = chance(70) ? 1 : 1 + (int)below(4);
            for (int x = 0; x < nflip; x++) {
                size_t at = (size_t)below(len);
                if (chance(70))
                    t[at] ^= (uint8_t)(1u << below(8));
                else
                    t[at] = (uint8_t)rnd();
            }
            flips++;
            decoded_flips += decode_checked(t, len) == 0;
            free(t);
        }
        free(d);
        free(b);
    }
    print_message("byte flips: %d of %d still decoded (and kept the rules)\n", decoded_flips, flips);
    /* Garbage of every small length. */
    for (int i = 0; i < 3000; i++) {
        size_t len = (size_t)below(64);
        uint8_t *t = malloc(len ? len : 1);
        assert_non_null(t);
        for (size_t x = 0; x < len; x++) t[x] = (uint8_t)rnd();
        if (len && chance(50)) t[0] = 1;
        decode_checked(t, len);
        free(t);
    }
    size_t got = 5;
    assert_int_equal(ag_rollup_count(NULL, 0), 0);
    ag_rollup_t one;
    assert_int_equal(ag_rollup_decode(NULL, 0, &one, &got), AG_ECORRUPT);
    assert_int_equal(got, 0);
}

/* Blocks built column by column as the header describes, then made inconsistent one way at a
 * time: each must be AG_ECORRUPT. */
typedef struct {
    ag_sample_pt_t c[7][4];
    size_t n[7];
} cols_t;

static void put_uvarint(ag_buf_t *b, uint64_t v)
{
    while (v >= 0x80) {
        uint8_t c = (uint8_t)(v | 0x80);
        ag_buf_append(b, &c, 1);
        v >>= 7;
    }
    uint8_t c = (uint8_t)v;
    ag_buf_append(b, &c, 1);
}

static void build_block(const cols_t *c, int ncols, uint8_t version, ag_buf_t *out)
{
    ag_buf_reset(out);
    ag_buf_append(out, &version, 1);
    for (int i = 0; i < ncols; i++) {
        ag_buf_t p = AG_BUF_INIT;
        assert_int_equal(ag_pack_encode(c->c[i % 7], c->n[i % 7], &p), 0);
        put_uvarint(out, p.len);
        ag_buf_append(out, p.data, p.len);
        ag_buf_free(&p);
    }
    assert_true(ag_buf_ok(out));
}

static int decode_block(const ag_buf_t *b)
{
    uint8_t *d = dup_bytes(b->data, b->len);
    ag_rollup_t o[8];
    size_t n = 42, cap = ag_rollup_count(d, b->len);
    assert_true(cap <= 8);
    int rc = ag_rollup_decode(d, b->len, o, &n);
    if (rc) assert_int_equal(n, 0);
    free(d);
    return rc;
}

static void test_codec_crafted(void **state)
{
    const ag_rollup_t b[3] = {
        {0, 1000, 50000, 1, 2, 1, 2, 3, 0, 5},
        {60000, 61000, 110000, 3, 4, 3, 4, 7, 0, 5},
        {120000, 121000, 121000, 9, 9, 9, 9, 9, 0, 1},
    };
    cols_t base;
    memset(&base, 0, sizeof base);
    for (int c = 0; c < 7; c++) {
        base.n[c] = 3;
        for (int i = 0; i < 3; i++) {
            const ag_rollup_t *x = &b[i];
            ag_sample_pt_t p = {x->start, 0};
            switch (c) {
            case 0: p.v = x->min; break;
            case 1: p.v = x->max; break;
            case 2: p.v = x->sum; break;
            case 3: p.v = x->corr; break;
            case 4: p.v = (double)x->count; break;
            case 5: p = (ag_sample_pt_t){x->first_t, x->first}; break;
            default: p = (ag_sample_pt_t){x->last_t, x->last}; break;
            }
            base.c[c][i] = p;
        }
    }
    ag_buf_t blk = AG_BUF_INIT, enc = AG_BUF_INIT;
    /* The layout is the one the header documents: the encoder writes the same bytes. */
    build_block(&base, 7, 1, &blk);
    assert_int_equal(ag_rollup_encode(b, 3, &enc), 0);
    assert_int_equal(blk.len, enc.len);
    assert_memory_equal(blk.data, enc.data, enc.len);
    assert_int_equal(decode_block(&blk), 0);

    struct { const char *why; int col, row; int64_t t; double v; } bad[] = {
        {"max column with another start", 1, 1, 60001, 4},
        {"count column with another start", 4, 2, 120001, 1},
        {"count 0", 4, 0, 0, 0},
        {"count -1", 4, 1, 60000, -1},
        {"count 2.5", 4, 1, 60000, 2.5},
        {"count NaN", 4, 1, 60000, NAN},
        {"count +Inf", 4, 1, 60000, INFINITY},
        {"count 2^53 + 2", 4, 1, 60000, 9007199254740994.0},
        {"first_t before start", 5, 1, 59999, 3},
        {"last_t before first_t", 6, 1, 60999, 4},
        {"one sample, two times", 6, 2, 121001, 9},
        {"last_t in the next bucket", 6, 0, 60000, 2},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cols_t c = base;
        c.c[bad[k].col][bad[k].row] = (ag_sample_pt_t){bad[k].t, bad[k].v};
        build_block(&c, 7, 1, &blk);
        if (decode_block(&blk) != AG_ECORRUPT) fail_msg("block with %s decodes", bad[k].why);
    }
    for (int col = 0; col < 7; col++) { /* one column a bucket short */
        cols_t c = base;
        c.n[col] = 2;
        build_block(&c, 7, 1, &blk);
        if (decode_block(&blk) != AG_ECORRUPT) fail_msg("block with column %d short decodes", col);
        c.n[col] = 4; /* or one too long */
        c.c[col][3] = (ag_sample_pt_t){200000, 1};
        build_block(&c, 7, 1, &blk);
        if (decode_block(&blk) != AG_ECORRUPT) fail_msg("block with column %d long decodes", col);
    }
    build_block(&base, 6, 1, &blk);
    assert_int_equal(decode_block(&blk), AG_ECORRUPT);
    build_block(&base, 8, 1, &blk);
    assert_int_equal(decode_block(&blk), AG_ECORRUPT);
    build_block(&base, 7, 2, &blk);
    assert_int_equal(decode_block(&blk), AG_ECORRUPT);
    build_block(&base, 7, 0, &blk);
    assert_int_equal(decode_block(&blk), AG_ECORRUPT);
    /* A column length that does not fit, and an endless varint. */
    static const uint8_t huge_len[] = {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x10};
    static const uint8_t endless[] = {1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
    ag_rollup_t o[1];
    size_t n;
    assert_int_equal(ag_rollup_count(huge_len, sizeof huge_len), 0);
    assert_int_equal(ag_rollup_decode(huge_len, sizeof huge_len, o, &n), AG_ECORRUPT);
    assert_int_equal(ag_rollup_count(endless, sizeof endless), 0);
    assert_int_equal(ag_rollup_decode(endless, sizeof endless, o, &n), AG_ECORRUPT);
    ag_buf_free(&blk);
    ag_buf_free(&enc);
}

int main(void)
{
    const char *env = getenv("ROLLUP_SEED");
    if (env && *env) seed = strtoull(env, NULL, 0);
    printf("test_rollup: seed 0x%016" PRIx64 " (ROLLUP_SEED=0x%016" PRIx64 " reproduces)\n", seed, seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floor),
        cmocka_unit_test(test_fold_anchors),
        cmocka_unit_test(test_fold_random),
        cmocka_unit_test(test_compose_regroup),
        cmocka_unit_test(test_compose_integers_exact),
        cmocka_unit_test(test_compose_merge),
        cmocka_unit_test(test_window_rate),
        cmocka_unit_test(test_codec_roundtrip),
        cmocka_unit_test(test_codec_einval),
        cmocka_unit_test(test_codec_corrupt),
        cmocka_unit_test(test_codec_crafted),
        cmocka_unit_test(test_fold_near_int64_max),
        /* Last: a signed overflow in the floor there trips UBSan, which aborts the whole run. */
        cmocka_unit_test(test_fold_near_int64_min),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
