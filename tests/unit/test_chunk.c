/* test_chunk.c - unit tests for the Gorilla-style chunk codec (storage/chunk.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_chunk.h"
#include "ag_err.h"

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct {
    uint64_t s;
} prng_t;

/* splitmix64: deterministic, good enough for test data. */
static uint64_t prng_next(prng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t prng_below(prng_t *r, uint64_t n)
{
    return n ? prng_next(r) % n : 0;
}

static uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double bdouble(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Encodes n samples (values given as bit patterns) into a fresh encoder. */
static void encode(ag_chunk_enc_t *e, const int64_t *ts, const uint64_t *vs, size_t n)
{
    ag_chunk_enc_init(e);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ag_chunk_enc_append(e, ts[i], bdouble(vs[i])), 0);
}

/* Decodes `data` and checks it yields exactly the n samples, bit-exactly, then end-of-chunk. */
static void check_decode(const uint8_t *data, size_t len, const int64_t *ts, const uint64_t *vs,
                         size_t n)
{
    ag_chunk_iter_t it;
    if (n == 0 && len == 0) return; /* an empty encoder has no bytes at all */
    assert_int_equal(ag_chunk_iter_init(&it, data, len), 0);
    assert_int_equal(ag_chunk_count(data, len), n);
    int64_t t;
    double v;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ag_chunk_iter_next(&it, &t, &v), 1);
        if (t != ts[i] || dbits(v) != vs[i]) {
            fail_msg("sample %zu: got t=%lld v=%016llx want t=%lld v=%016llx", i, (long long)t,
                     (unsigned long long)dbits(v), (long long)ts[i], (unsigned long long)vs[i]);
        }
    }
    assert_int_equal(ag_chunk_iter_next(&it, &t, &v), 0);
    assert_int_equal(ag_chunk_iter_next(&it, &t, &v), 0);
}

/* Encode, decode, reload: the full round trip for one sample set. */
static void roundtrip(const int64_t *ts, const uint64_t *vs, size_t n)
{
    ag_chunk_enc_t e, l;
    encode(&e, ts, vs, n);
    size_t len;
    const uint8_t *b = ag_chunk_enc_bytes(&e, &len);
    check_decode(b, len, ts, vs, n);

    assert_int_equal(ag_chunk_enc_load(&l, b, len), 0);
    size_t llen;
    const uint8_t *lb = ag_chunk_enc_bytes(&l, &llen);
    assert_int_equal(llen, len);
    if (len) assert_memory_equal(lb, b, len);
    assert_int_equal(l.count, n);
    ag_chunk_enc_free(&l);
    ag_chunk_enc_free(&e);
}

/* A tiny MSB-first bit writer for hand-made (mostly corrupt) chunks. */
typedef struct {
    uint8_t b[64];
    size_t bits;
} bitw_t;

static void bw_put(bitw_t *w, uint64_t v, unsigned n)
{
    assert_true(n <= 64 && w->bits + n <= sizeof w->b * 8);
    for (unsigned i = n; i-- > 0;) {
        if ((v >> i) & 1) w->b[w->bits >> 3] |= (uint8_t)(0x80u >> (w->bits & 7));
        w->bits++;
    }
}

static size_t bw_len(const bitw_t *w) { return (w->bits + 7) / 8; }

static int decode_all(const uint8_t *data, size_t len, size_t *n)
{
    ag_chunk_iter_t it;
    int rc = ag_chunk_iter_init(&it, data, len);
    *n = 0;
    if (rc) return rc;
    int64_t t;
    double v;
    while ((rc = ag_chunk_iter_next(&it, &t, &v)) == 1) (*n)++;
    return rc;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_empty(void **state)
{
    ag_chunk_enc_t e;
    ag_chunk_enc_init(&e);
    size_t len = 99;
    (void)ag_chunk_enc_bytes(&e, &len);
    assert_int_equal(len, 0);
    assert_int_equal(e.count, 0);

    static const uint8_t zero[2] = {0, 0};
    ag_chunk_iter_t it;
    int64_t t;
    double v;
    assert_int_equal(ag_chunk_iter_init(&it, zero, 2), 0);
    assert_int_equal(ag_chunk_iter_next(&it, &t, &v), 0);
    assert_int_equal(ag_chunk_iter_next(&it, &t, &v), 0);
    /* Trailing bytes after an empty chunk are ignored. */
    static const uint8_t zero_junk[5] = {0, 0, 0xde, 0xad, 0xff};
    assert_int_equal(ag_chunk_iter_init(&it, zero_junk, sizeof zero_junk), 0);
    assert_int_equal(ag_chunk_iter_next(&it, &t, &v), 0);

    /* A missing header is corrupt, and that is sticky. */
    assert_int_equal(ag_chunk_iter_init(&it, zero, 1), AG_ECORRUPT);
    assert_int_equal(ag_chunk_iter_next(&it, &t, &v), AG_ECORRUPT);
    assert_int_equal(ag_chunk_iter_init(&it, zero, 0), AG_ECORRUPT);
    assert_int_equal(ag_chunk_iter_next(&it, &t, &v), AG_ECORRUPT);
    assert_int_equal(ag_chunk_iter_init(&it, NULL, 0), AG_ECORRUPT);
    assert_int_equal(ag_chunk_count(NULL, 0), 0);
    assert_int_equal(ag_chunk_count(zero, 1), 0);
    assert_int_equal(ag_chunk_count(zero, 2), 0);

    /* Loading what an empty encoder produces (nothing) or an explicit empty header. */
    ag_chunk_enc_t l;
    assert_int_equal(ag_chunk_enc_load(&l, NULL, 0), 0);
    assert_int_equal(l.count, 0);
    assert_int_equal(ag_chunk_enc_append(&l, -5, 1.0), 0);
    ag_chunk_enc_free(&l);
    assert_int_equal(ag_chunk_enc_load(&l, zero, 2), 0);
    assert_int_equal(l.count, 0);
    ag_chunk_enc_free(&l);
    assert_int_equal(ag_chunk_enc_load(&l, zero, 1), AG_ECORRUPT);
    assert_int_equal(l.count, 0);
    ag_chunk_enc_free(&l);

    ag_chunk_enc_free(&e);
    ag_chunk_enc_free(&e); /* freeing twice is harmless */
}

static void test_one_sample(void **state)
{
    ag_chunk_enc_t e;
    ag_chunk_enc_init(&e);
    assert_int_equal(ag_chunk_enc_append(&e, 1700000000000LL, 1.5), 0);
    size_t len;
    const uint8_t *b = ag_chunk_enc_bytes(&e, &len);
    assert_int_equal(len, 2 + 16);
    assert_int_equal(b[0], 0);
    assert_int_equal(b[1], 1);
    int64_t ts[1] = {1700000000000LL};
    uint64_t vs[1] = {dbits(1.5)};
    check_decode(b, len, ts, vs, 1);
    ag_chunk_enc_free(&e);

    /* Extremes as the only sample. */
    int64_t ts2[1] = {INT64_MIN};
    uint64_t vs2[1] = {0x7ff0000000000002ULL};
    roundtrip(ts2, vs2, 1);
    ts2[0] = INT64_MAX;
    vs2[0] = ~(uint64_t)0;
    roundtrip(ts2, vs2, 1);
}

static void test_two_samples(void **state)
{
    /* Every delta bucket edge for sample 1. */
    static const uint64_t deltas[] = {
        1, 2, 15000, (1u << 14) - 1, 1u << 14, (1u << 17) - 1, 1u << 17, (1u << 20) - 1,
        1u << 20, 0xffffffffULL, 0x100000000ULL, 1ULL << 40, (uint64_t)INT64_MAX,
        (uint64_t)INT64_MAX + 1, ~(uint64_t)0,
    };
    for (size_t i = 0; i < sizeof deltas / sizeof deltas[0]; i++) {
        int64_t t0 = deltas[i] >= (1ULL << 62) ? INT64_MIN : 1000;
        int64_t ts[2] = {t0, (int64_t)((uint64_t)t0 + deltas[i])};
        uint64_t vs[2] = {dbits(1.0), dbits(2.0)};
        roundtrip(ts, vs, 2);
        vs[1] = vs[0];
        roundtrip(ts, vs, 2);
        vs[1] = ~vs[0];
        roundtrip(ts, vs, 2);
    }
    /* A small delta costs 15 bits + the value; the smallest 2-sample chunk is 2+16+2 bytes. */
    ag_chunk_enc_t e;
    ag_chunk_enc_init(&e);
    assert_int_equal(ag_chunk_enc_append(&e, 0, 0.0), 0);
    assert_int_equal(ag_chunk_enc_append(&e, 15000, 0.0), 0);
    size_t len;
    (void)ag_chunk_enc_bytes(&e, &len);
    assert_int_equal(len, 2 + 16 + 2);
    ag_chunk_enc_free(&e);
}

static double bytes_per_sample(const int64_t *ts, const uint64_t *vs, size_t n)
{
    ag_chunk_enc_t e;
    encode(&e, ts, vs, n);
    size_t len;
    const uint8_t *b = ag_chunk_enc_bytes(&e, &len);
    check_decode(b, len, ts, vs, n);
    ag_chunk_enc_free(&e);
    return (double)len / (double)n;
}

static void test_regular_scrape(void **state)
{
    enum { N = 120 };
    int64_t ts[N];
    uint64_t vs[N];
    prng_t r = {42};

    /* Counter, constant 15 s interval, small integer increments. */
    double c = 1000;
    for (int i = 0; i < N; i++) {
        ts[i] = 1700000000000LL + 15000LL * i;
        c += (double)prng_below(&r, 10);
        vs[i] = dbits(c);
    }
    double counter_small = bytes_per_sample(ts, vs, N);

    /* Counter with larger increments (requests: 0..1000 per scrape on a ~1e6 base). */
    c = 1234567;
    for (int i = 0; i < N; i++) {
        c += (double)prng_below(&r, 1000);
        vs[i] = dbits(c);
    }
    double counter_big = bytes_per_sample(ts, vs, N);

    /* Constant value: only the first sample costs real bits. */
    for (int i = 0; i < N; i++) vs[i] = dbits(1.0);
    double constant = bytes_per_sample(ts, vs, N);

    /* Counter with 15 s +- jitter of a few ms, as real scrapes have. */
    c = 1000;
    for (int i = 0; i < N; i++) {
        ts[i] = 1700000000000LL + 15000LL * i + (int64_t)prng_below(&r, 20) - 10;
        c += (double)prng_below(&r, 10);
        vs[i] = dbits(c);
    }
    double jitter = bytes_per_sample(ts, vs, N);

    /* Gauge: random doubles with 2 decimal digits. */
    for (int i = 0; i < N; i++) {
        ts[i] = 1700000000000LL + 15000LL * i;
        vs[i] = dbits((double)prng_below(&r, 100000) / 100.0);
    }
    double gauge = bytes_per_sample(ts, vs, N);

    print_message("bytes/sample (120 samples, 15 s): counter+0..9 %.3f, counter+0..999 %.3f, "
                  "constant %.3f, jittered counter %.3f, 2-decimal gauge %.3f\n",
                  counter_small, counter_big, constant, jitter, gauge);
    assert_true(counter_small < 2.0);
    assert_true(counter_big < 3.5);
    assert_true(constant < 0.5);
    assert_true(jitter < 4.5); /* +-10 ms jitter costs a 16-bit dod per sample */
    assert_true(gauge < 9.0);
}

static void test_special_values(void **state)
{
    static const uint64_t specials[] = {
        0x7ff0000000000002ULL, /* Prometheus stale marker (a signalling NaN) */
        0x7ff8000000000001ULL, /* ordinary NaN */
        0x7ff8000000000000ULL, 0xfff8000000000000ULL, 0x7fffffffffffffffULL, 0xffffffffffffffffULL,
        0x7ff0000000000001ULL, 0xfff0000000000001ULL,
        0x7ff0000000000000ULL, /* +Inf */
        0xfff0000000000000ULL, /* -Inf */
        0x8000000000000000ULL, /* -0.0 */
        0x0000000000000000ULL, /* +0.0 */
        0x0000000000000001ULL, /* smallest denormal */
        0x000fffffffffffffULL, /* largest denormal */
        0x8000000000000001ULL, 0x800fffffffffffffULL,
        0x0010000000000000ULL, /* DBL_MIN */
        0x7fefffffffffffffULL, /* DBL_MAX */
        0x3ff0000000000000ULL, /* 1.0 */
    };
    enum { K = sizeof specials / sizeof specials[0] };
    int64_t ts[4 * K];
    uint64_t vs[4 * K];
    size_t n = 0;
    for (size_t i = 0; i < K; i++) {
        /* each special, repeated, then alternated with a normal value */
        ts[n] = (int64_t)n * 15000;
        vs[n++] = specials[i];
        ts[n] = (int64_t)n * 15000;
        vs[n++] = specials[i];
        ts[n] = (int64_t)n * 15000;
        vs[n++] = dbits(42.0);
        ts[n] = (int64_t)n * 15000;
        vs[n++] = specials[(i * 7 + 3) % K];
    }
    roundtrip(ts, vs, n);
    /* Each special as the first (raw) sample and as the second (first XOR) sample. */
    for (size_t i = 0; i < K; i++) {
        for (size_t j = 0; j < K; j++) {
            int64_t t2[3] = {-1, 0, 1};
            uint64_t v2[3] = {specials[i], specials[j], specials[i]};
            roundtrip(t2, v2, 3);
        }
    }
    /* The values really come back through a double unchanged (not just through the codec). */
    ag_chunk_enc_t e;
    ag_chunk_enc_init(&e);
    assert_int_equal(ag_chunk_enc_append(&e, 1, bdouble(0x7ff0000000000002ULL)), 0);
    assert_int_equal(ag_chunk_enc_append(&e, 2, -0.0), 0);
    assert_int_equal(ag_chunk_enc_append(&e, 3, INFINITY), 0);
    assert_int_equal(ag_chunk_enc_append(&e, 4, -INFINITY), 0);
    size_t len;
    const uint8_t *b = ag_chunk_enc_bytes(&e, &len);
    ag_chunk_iter_t it;
    int64_t t;
    double v;
    assert_int_equal(ag_chunk_iter_init(&it, b, len), 0);
    assert_int_equal(ag_chunk_iter_next(&it, &t, &v), 1);
    assert_true(isnan(v));
    assert_true(dbits(v) == 0x7ff0000000000002ULL);
    assert_int_equal(ag_chunk_iter_next(&it, &t, &v), 1);
    assert_true(v == 0.0 && signbit(v));
    assert_int_equal(ag_chunk_iter_next(&it, &t, &v), 1);
    assert_true(isinf(v) && v > 0);
    assert_int_equal(ag_chunk_iter_next(&it, &t, &v), 1);
    assert_true(isinf(v) && v < 0);
    assert_int_equal(ag_chunk_iter_next(&it, &t, &v), 0);
    ag_chunk_enc_free(&e);
}

static void test_extreme_timestamps(void **state)
{
    uint64_t vs[8];
    for (int i = 0; i < 8; i++) vs[i] = dbits((double)i);

    int64_t a[2] = {INT64_MIN, INT64_MAX};
    roundtrip(a, vs, 2);
    int64_t b[4] = {INT64_MIN, INT64_MIN + 1, INT64_MAX - 1, INT64_MAX};
    roundtrip(b, vs, 4);
    int64_t c[3] = {INT64_MIN, -1, INT64_MAX};
    roundtrip(c, vs, 3);
    int64_t d[3] = {INT64_MIN, INT64_MAX - 1, INT64_MAX};
    roundtrip(d, vs, 3);
    int64_t f[5] = {-1000000, -999999, -500, 0, 1};
    roundtrip(f, vs, 5);
    int64_t g[6] = {INT64_MIN, INT64_MIN + 1, INT64_MIN + 3, INT64_MIN + 7, 0, INT64_MAX};
    roundtrip(g, vs, 6);
    int64_t h[4] = {-3, -2, -1, 0};
    roundtrip(h, vs, 4);

    /* dod bucket edges around a 15 s base interval. */
    static const int64_t dods[] = {
        0, 1, -1, 8191, -8192, 8192, -8193, 65535, -65536, 65536, -65537, 524287, -524288,
        524288, -524289, 1LL << 40, -(1LL << 13) + 1,
    };
    for (size_t i = 0; i < sizeof dods / sizeof dods[0]; i++) {
        int64_t base = 10000000;
        int64_t ts[4] = {0, base, 2 * base + dods[i], 3 * base + dods[i]};
        roundtrip(ts, vs, 4);
    }

    /* Huge alternating deltas: tiny, nearly the whole range, tiny. */
    int64_t k[4] = {INT64_MIN, INT64_MIN + 1, INT64_MAX - 1, INT64_MAX};
    roundtrip(k, vs, 4);

    /* Irregular jitter around a 15 s interval, many samples. */
    enum { N = 2000 };
    int64_t *ts = malloc(N * sizeof *ts);
    uint64_t *vv = malloc(N * sizeof *vv);
    assert_non_null(ts);
    assert_non_null(vv);
    prng_t r = {7};
    int64_t t = -5000000;
    for (int i = 0; i < N; i++) {
        t += 15000 + (int64_t)prng_below(&r, 2001) - 1000;
        if (prng_below(&r, 50) == 0) t += (int64_t)prng_below(&r, 1ULL << 40); /* a gap */
        ts[i] = t;
        vv[i] = dbits((double)i);
    }
    roundtrip(ts, vv, N);
    free(ts);
    free(vv);
}

static void test_einval_keeps_encoder(void **state)
{
    ag_chunk_enc_t e;
    ag_chunk_enc_init(&e);
    assert_int_equal(ag_chunk_enc_append(&e, 100, 1.0), 0);
    assert_int_equal(ag_chunk_enc_append(&e, 100, 2.0), AG_EINVAL);
    assert_int_equal(ag_chunk_enc_append(&e, 99, 2.0), AG_EINVAL);
    assert_int_equal(ag_chunk_enc_append(&e, INT64_MIN, 2.0), AG_EINVAL);
    assert_int_equal(ag_chunk_enc_append(&e, 200, 2.0), 0);
    size_t len;
    const uint8_t *b = ag_chunk_enc_bytes(&e, &len);
    uint8_t saved[64];
    assert_true(len <= sizeof saved);
    memcpy(saved, b, len);
    ag_chunk_enc_t copy = e;
    assert_int_equal(ag_chunk_enc_append(&e, 200, 3.0), AG_EINVAL);
    assert_int_equal(ag_chunk_enc_append(&e, 150, 3.0), AG_EINVAL);
    assert_true(e.bits == copy.bits && e.count == copy.count && e.last_t == copy.last_t &&
                e.last_delta == copy.last_delta && e.last_vbits == copy.last_vbits &&
                e.leading == copy.leading && e.trailing == copy.trailing);
    size_t len2;
    b = ag_chunk_enc_bytes(&e, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(b, saved, len);
    assert_int_equal(ag_chunk_enc_append(&e, 300, 3.0), 0);

    int64_t ts[3] = {100, 200, 300};
    uint64_t vs[3] = {dbits(1.0), dbits(2.0), dbits(3.0)};
    b = ag_chunk_enc_bytes(&e, &len);
    check_decode(b, len, ts, vs, 3);
    /* Identical to an encoder that never saw the rejected samples. */
    ag_chunk_enc_t ref;
    encode(&ref, ts, vs, 3);
    const uint8_t *rb = ag_chunk_enc_bytes(&ref, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(rb, b, len);
    ag_chunk_enc_free(&ref);

    /* INT64_MAX is the last possible timestamp. */
    assert_int_equal(ag_chunk_enc_append(&e, INT64_MAX, 4.0), 0);
    assert_int_equal(ag_chunk_enc_append(&e, INT64_MAX, 5.0), AG_EINVAL);
    ag_chunk_enc_free(&e);
}

static void test_elimit(void **state)
{
    ag_chunk_enc_t e;
    ag_chunk_enc_init(&e);
    prng_t r = {99};
    int64_t t = 1700000000000LL;
    double c = 0;
    for (int i = 0; i < AG_CHUNK_MAX_SAMPLES; i++) {
        t += 15000 + (int64_t)prng_below(&r, 3);
        c += (double)prng_below(&r, 5);
        assert_int_equal(ag_chunk_enc_append(&e, t, c), 0);
    }
    assert_int_equal(e.count, AG_CHUNK_MAX_SAMPLES);
    size_t len;
    const uint8_t *b = ag_chunk_enc_bytes(&e, &len);
    assert_int_equal(ag_chunk_count(b, len), 65535);
    uint8_t *saved = malloc(len);
    assert_non_null(saved);
    memcpy(saved, b, len);
    size_t bits = e.bits;
    assert_int_equal(ag_chunk_enc_append(&e, t + 15000, c), AG_ELIMIT);
    assert_int_equal(ag_chunk_enc_append(&e, t + 1, c), AG_ELIMIT);
    /* An out-of-order sample is reported as such even when the chunk is full. */
    assert_int_equal(ag_chunk_enc_append(&e, t, c), AG_EINVAL);
    assert_int_equal(e.count, AG_CHUNK_MAX_SAMPLES);
    assert_int_equal(e.bits, bits);
    size_t len2;
    b = ag_chunk_enc_bytes(&e, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(b, saved, len);

    /* Decodes fully, and reloads byte-identically; the reloaded encoder is also full. */
    size_t n;
    assert_int_equal(decode_all(b, len, &n), 0);
    assert_int_equal(n, AG_CHUNK_MAX_SAMPLES);
    ag_chunk_enc_t l;
    assert_int_equal(ag_chunk_enc_load(&l, b, len), 0);
    const uint8_t *lb = ag_chunk_enc_bytes(&l, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(lb, saved, len);
    assert_int_equal(ag_chunk_enc_append(&l, t + 15000, c), AG_ELIMIT);
    print_message("65535-sample chunk: %zu bytes (%.3f bytes/sample)\n", len,
                  (double)len / AG_CHUNK_MAX_SAMPLES);
    ag_chunk_enc_free(&l);
    free(saved);
    ag_chunk_enc_free(&e);
}

/* Random sample sets of many shapes. Returns n. */
static size_t random_series(prng_t *r, int64_t *ts, uint64_t *vs, size_t max)
{
    size_t n;
    switch (prng_below(r, 4)) {
    case 0: n = prng_below(r, 4); break;
    case 1: n = prng_below(r, 20); break;
    default: n = prng_below(r, max + 1); break;
    }
    if (n > max) n = max;
    int tmode = (int)prng_below(r, 5);
    int vmode = (int)prng_below(r, 6);
    int64_t t;
    switch (prng_below(r, 4)) {
    case 0: t = INT64_MIN + (int64_t)prng_below(r, 1000); break;
    case 1: t = (int64_t)prng_next(r); break;
    case 2: t = -(int64_t)prng_below(r, 1000000); break;
    default: t = 1700000000000LL; break;
    }
    uint64_t base_delta = 1 + prng_below(r, 60000);
    double acc = (double)prng_below(r, 1000000);
    static const uint64_t specials[] = {0x7ff0000000000002ULL, 0x7ff8000000000001ULL,
                                        0x8000000000000000ULL, 0x7ff0000000000000ULL,
                                        0xfff0000000000000ULL, 0x0000000000000001ULL, 0};
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            uint64_t d;
            switch (tmode) {
            case 0: d = base_delta; break;
            case 1: d = base_delta + prng_below(r, 21); break;
            case 2: d = 1 + prng_below(r, 1ULL << prng_below(r, 64)); break;
            case 3: d = 1 + (prng_next(r) >> prng_below(r, 64)); break;
            default: d = prng_below(r, 10) ? base_delta : 1 + prng_below(r, 1ULL << 35); break;
            }
            if (d == 0) d = 1;
            uint64_t room = (uint64_t)INT64_MAX - (uint64_t)t;
            if (room == 0) break;
            if (d > room) d = 1 + prng_below(r, room);
            t = (int64_t)((uint64_t)t + d);
        }
        uint64_t v;
        switch (vmode) {
        case 0: v = prng_next(r); break;
        case 1: acc += (double)prng_below(r, 100); v = dbits(acc); break;
        case 2: v = dbits((double)prng_below(r, 100000) / 100.0); break;
        case 3: v = prng_below(r, 3) ? (out ? vs[out - 1] : 0) : prng_next(r); break;
        case 4: v = specials[prng_below(r, sizeof specials / sizeof specials[0])]; break;
        default: v = (out ? vs[out - 1] : prng_next(r)) ^ (1ULL << prng_below(r, 64)); break;
        }
        ts[out] = t;
        vs[out] = v;
        out++;
    }
    return out;
}

static void test_random_roundtrips(void **state)
{
    enum { MAX = 400, ITERS = 5000 };
    int64_t *ts = malloc(MAX * sizeof *ts);
    uint64_t *vs = malloc(MAX * sizeof *vs);
    assert_non_null(ts);
    assert_non_null(vs);
    prng_t r = {0x5eed};
    for (int it = 0; it < ITERS; it++) {
        size_t n = random_series(&r, ts, vs, MAX);
        roundtrip(ts, vs, n);
    }
    free(ts);
    free(vs);
}

/* Every byte truncation of a valid chunk yields a correct prefix and then AG_ECORRUPT. */
static void check_truncations(const int64_t *ts, const uint64_t *vs, size_t n)
{
    ag_chunk_enc_t e;
    encode(&e, ts, vs, n);
    size_t len;
    const uint8_t *b = ag_chunk_enc_bytes(&e, &len);
    for (size_t cut = 0; cut < len; cut++) {
        /* Copy into an exact-size heap block so ASan catches any over-read. */
        uint8_t *p = malloc(cut ? cut : 1);
        assert_non_null(p);
        memcpy(p, b, cut);
        ag_chunk_iter_t it;
        int rc = ag_chunk_iter_init(&it, p, cut);
        if (cut < 2) {
            assert_int_equal(rc, AG_ECORRUPT);
        } else {
            assert_int_equal(rc, 0);
            int64_t t;
            double v;
            size_t i = 0;
            while ((rc = ag_chunk_iter_next(&it, &t, &v)) == 1) {
                assert_true(i < n);
                assert_true(t == ts[i]);
                assert_true(dbits(v) == vs[i]);
                i++;
            }
            assert_int_equal(rc, AG_ECORRUPT);
            assert_true(i < n);
            assert_int_equal(ag_chunk_iter_next(&it, &t, &v), AG_ECORRUPT);
        }
        ag_chunk_enc_t l;
        rc = ag_chunk_enc_load(&l, p, cut);
        if (cut == 0) {
            assert_int_equal(rc, 0); /* empty input is an empty chunk */
        } else {
            assert_int_equal(rc, AG_ECORRUPT);
        }
        assert_int_equal(l.count, 0);
        assert_null(l.buf);
        ag_chunk_enc_free(&l);
        free(p);
    }
    ag_chunk_enc_free(&e);
}

static void test_truncation(void **state)
{
    enum { MAX = 150 };
    int64_t ts[MAX];
    uint64_t vs[MAX];
    for (int i = 0; i < MAX; i++) {
        ts[i] = 1700000000000LL + 15000LL * i + (i % 7 == 0 ? 3 : 0);
        vs[i] = dbits((double)(i * i) / 4.0);
    }
    for (size_t n = 1; n <= 12; n++) check_truncations(ts, vs, n);
    check_truncations(ts, vs, MAX);
    prng_t r = {1234};
    for (int k = 0; k < 200; k++) {
        size_t n = random_series(&r, ts, vs, 60);
        if (n) check_truncations(ts, vs, n);
    }
}

/* A header claiming more samples than the stream holds is corrupt (the padding is one-bits so
 * it cannot be mistaken for samples); a header claiming fewer yields that many samples. */
static void test_header_count_mismatch(void **state)
{
    prng_t r = {777};
    int64_t ts[80];
    uint64_t vs[80];
    for (int k = 0; k < 300; k++) {
        size_t n = random_series(&r, ts, vs, 80);
        if (n == 0) continue;
        ag_chunk_enc_t e;
        encode(&e, ts, vs, n);
        size_t len;
        const uint8_t *b = ag_chunk_enc_bytes(&e, &len);
        uint8_t *p = malloc(len);
        assert_non_null(p);
        memcpy(p, b, len);
        for (size_t extra = 1; extra <= 5; extra++) {
            size_t claim = n + extra;
            if (claim > 65535) break;
            p[0] = (uint8_t)(claim >> 8);
            p[1] = (uint8_t)claim;
            size_t got;
            assert_int_equal(decode_all(p, len, &got), AG_ECORRUPT);
            assert_int_equal(got, n);
            ag_chunk_enc_t l;
            assert_int_equal(ag_chunk_enc_load(&l, p, len), AG_ECORRUPT);
            ag_chunk_enc_free(&l);
        }
        for (size_t fewer = 0; fewer < n; fewer++) {
            p[0] = (uint8_t)(fewer >> 8);
            p[1] = (uint8_t)fewer;
            check_decode(p, len, ts, vs, fewer);
            /* Loading drops the rest, and equals encoding just those samples. */
            ag_chunk_enc_t l, ref;
            assert_int_equal(ag_chunk_enc_load(&l, p, len), 0);
            encode(&ref, ts, vs, fewer);
            size_t la, lb;
            const uint8_t *ba = ag_chunk_enc_bytes(&l, &la);
            const uint8_t *bb = ag_chunk_enc_bytes(&ref, &lb);
            assert_int_equal(la, lb);
            if (la) assert_memory_equal(ba, bb, la);
            ag_chunk_enc_free(&l);
            ag_chunk_enc_free(&ref);
        }
        free(p);
        ag_chunk_enc_free(&e);
    }
}

static void test_load_then_append(void **state)
{
    enum { MAX = 300 };
    int64_t ts[MAX];
    uint64_t vs[MAX];
    prng_t r = {2024};
    for (int k = 0; k < 150; k++) {
        size_t n = random_series(&r, ts, vs, MAX);
        ag_chunk_enc_t whole;
        encode(&whole, ts, vs, n);
        size_t wlen;
        const uint8_t *wb = ag_chunk_enc_bytes(&whole, &wlen);
        /* split at every point for short series, at random points for long ones */
        size_t splits = n <= 40 ? n + 1 : 20;
        for (size_t s = 0; s < splits; s++) {
            size_t at = n <= 40 ? s : prng_below(&r, n + 1);
            ag_chunk_enc_t part, l;
            encode(&part, ts, vs, at);
            size_t plen;
            const uint8_t *pb = ag_chunk_enc_bytes(&part, &plen);
            /* load from an exact-size copy with some junk after it (ignored) */
            uint8_t *copy = malloc(plen + 3);
            assert_non_null(copy);
            if (plen) memcpy(copy, pb, plen);
            memset(copy + plen, 0xa5, 3);
            assert_int_equal(ag_chunk_enc_load(&l, copy, plen), 0);
            if (plen) {
                ag_chunk_enc_t l2;
                assert_int_equal(ag_chunk_enc_load(&l2, copy, plen + 3), 0);
                assert_int_equal(l2.bits, l.bits);
                ag_chunk_enc_free(&l2);
            }
            for (size_t i = at; i < n; i++)
                assert_int_equal(ag_chunk_enc_append(&l, ts[i], bdouble(vs[i])), 0);
            size_t llen;
            const uint8_t *lb = ag_chunk_enc_bytes(&l, &llen);
            assert_int_equal(llen, wlen);
            if (wlen) assert_memory_equal(lb, wb, wlen);
            assert_true(l.count == whole.count && l.bits == whole.bits &&
                        l.last_t == whole.last_t && l.last_delta == whole.last_delta &&
                        l.last_vbits == whole.last_vbits && l.leading == whole.leading &&
                        l.trailing == whole.trailing);
            free(copy);
            ag_chunk_enc_free(&l);
            ag_chunk_enc_free(&part);
        }
        ag_chunk_enc_free(&whole);
    }
}

/* Hand-made corrupt streams hit each consistency check. */
static void test_corrupt_streams(void **state)
{
    size_t n;
    bitw_t w;

    /* sample 1 reuses a window that was never opened */
    memset(&w, 0, sizeof w);
    bw_put(&w, 2, 16);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 1);
    bw_put(&w, 5, 14); /* delta 5 */
    bw_put(&w, 2, 2);  /* '10' */
    bw_put(&w, 0, 30);
    assert_int_equal(decode_all(w.b, bw_len(&w), &n), AG_ECORRUPT);
    assert_int_equal(n, 1);

    /* leading + significant > 64 */
    memset(&w, 0, sizeof w);
    bw_put(&w, 2, 16);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 1);
    bw_put(&w, 5, 14);
    bw_put(&w, 3, 2);
    bw_put(&w, 31, 5);
    bw_put(&w, 34, 6);
    bw_put(&w, ~(uint64_t)0, 64);
    assert_int_equal(decode_all(w.b, bw_len(&w), &n), AG_ECORRUPT);
    assert_int_equal(n, 1);
    /* the same with significant 0 (= 64) and leading 1 */
    memset(&w, 0, sizeof w);
    bw_put(&w, 2, 16);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 1);
    bw_put(&w, 5, 14);
    bw_put(&w, 3, 2);
    bw_put(&w, 1, 5);
    bw_put(&w, 0, 6);
    bw_put(&w, ~(uint64_t)0, 64);
    assert_int_equal(decode_all(w.b, bw_len(&w), &n), AG_ECORRUPT);
    /* leading 0 and significant 64 is fine */
    memset(&w, 0, sizeof w);
    bw_put(&w, 2, 16);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 1);
    bw_put(&w, 5, 14);
    bw_put(&w, 3, 2);
    bw_put(&w, 0, 5);
    bw_put(&w, 0, 6);
    bw_put(&w, ~(uint64_t)0, 64);
    assert_int_equal(decode_all(w.b, bw_len(&w), &n), 0);
    assert_int_equal(n, 2);

    /* a zero delta (timestamp not increasing) */
    memset(&w, 0, sizeof w);
    bw_put(&w, 2, 16);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 1);
    bw_put(&w, 0, 14);
    bw_put(&w, 0, 1);
    assert_int_equal(decode_all(w.b, bw_len(&w), &n), AG_ECORRUPT);
    assert_int_equal(n, 1);

    /* a dod that makes the delta zero */
    memset(&w, 0, sizeof w);
    bw_put(&w, 3, 16);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 1);
    bw_put(&w, 5, 14);
    bw_put(&w, 0, 1);
    bw_put(&w, 2, 2);
    bw_put(&w, (uint64_t)-5 & 0x3fff, 14);
    bw_put(&w, 0, 1);
    assert_int_equal(decode_all(w.b, bw_len(&w), &n), AG_ECORRUPT);
    assert_int_equal(n, 2);

    /* a delta that overflows INT64_MAX */
    memset(&w, 0, sizeof w);
    bw_put(&w, 2, 16);
    bw_put(&w, (uint64_t)INT64_MAX - 3, 64);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 1);
    bw_put(&w, 4, 14);
    bw_put(&w, 0, 1);
    assert_int_equal(decode_all(w.b, bw_len(&w), &n), AG_ECORRUPT);
    assert_int_equal(n, 1);
    /* ... whereas landing exactly on INT64_MAX is fine */
    memset(&w, 0, sizeof w);
    bw_put(&w, 2, 16);
    bw_put(&w, (uint64_t)INT64_MAX - 3, 64);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 1);
    bw_put(&w, 3, 14);
    bw_put(&w, 0, 1);
    assert_int_equal(decode_all(w.b, bw_len(&w), &n), 0);
    assert_int_equal(n, 2);

    /* a negative dod in the 64-bit escape that wraps the delta past 2^64 */
    memset(&w, 0, sizeof w);
    bw_put(&w, 3, 16);
    bw_put(&w, (uint64_t)INT64_MIN, 64);
    bw_put(&w, 0, 64);
    bw_put(&w, 0, 1);
    bw_put(&w, 5, 14);
    bw_put(&w, 0, 1);
    bw_put(&w, 0xf, 4);
    bw_put(&w, (uint64_t)-6, 64); /* delta 5 - 6 = 2^64 - 1: past INT64_MAX */
    bw_put(&w, 0, 1);
    assert_int_equal(decode_all(w.b, bw_len(&w), &n), AG_ECORRUPT);
    assert_int_equal(n, 2);
}

/* Random garbage and bit flips: no crash, strictly increasing timestamps, sticky errors. */
static void test_garbage(void **state)
{
    prng_t r = {31337};
    int64_t ts[64];
    uint64_t vs[64];
    for (int k = 0; k < 20000; k++) {
        size_t len;
        uint8_t *p;
        if (k & 1) {
            len = prng_below(&r, 200);
            p = malloc(len ? len : 1);
            assert_non_null(p);
            for (size_t i = 0; i < len; i++) p[i] = (uint8_t)prng_next(&r);
            if (len >= 2 && prng_below(&r, 2)) {
                p[0] = 0;
                p[1] = (uint8_t)prng_below(&r, 20);
            }
        } else {
            size_t n = random_series(&r, ts, vs, 64);
            ag_chunk_enc_t e;
            encode(&e, ts, vs, n);
            const uint8_t *b = ag_chunk_enc_bytes(&e, &len);
            p = malloc(len ? len : 1);
            assert_non_null(p);
            if (len) memcpy(p, b, len);
            ag_chunk_enc_free(&e);
            int flips = 1 + (int)prng_below(&r, 3);
            for (int f = 0; f < flips && len > 2; f++) {
                size_t bit = 16 + prng_below(&r, (len - 2) * 8);
                p[bit >> 3] ^= (uint8_t)(0x80u >> (bit & 7));
            }
        }
        ag_chunk_iter_t it;
        if (ag_chunk_iter_init(&it, p, len) == 0) {
            int64_t t, prev = 0;
            double v;
            int rc;
            size_t i = 0;
            while ((rc = ag_chunk_iter_next(&it, &t, &v)) == 1) {
                if (i > 0) assert_true(t > prev);
                prev = t;
                i++;
            }
            assert_true(rc == 0 || rc == AG_ECORRUPT);
            if (rc == 0) assert_int_equal(i, ag_chunk_count(p, len));
            assert_int_equal(ag_chunk_iter_next(&it, &t, &v), rc);
            ag_chunk_enc_t l;
            int lrc = ag_chunk_enc_load(&l, p, len);
            assert_int_equal(lrc, rc == 0 ? 0 : AG_ECORRUPT);
            if (lrc == 0) assert_int_equal(l.count, i);
            ag_chunk_enc_free(&l);
        }
        free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_one_sample),
        cmocka_unit_test(test_two_samples),
        cmocka_unit_test(test_regular_scrape),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_extreme_timestamps),
        cmocka_unit_test(test_einval_keeps_encoder),
        cmocka_unit_test(test_elimit),
        cmocka_unit_test(test_random_roundtrips),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_header_count_mismatch),
        cmocka_unit_test(test_load_then_append),
        cmocka_unit_test(test_corrupt_streams),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
