/* test_pack.c - unit tests for the sealed-chunk codec (storage/pack.c): bit-exact round trips
 * on adversarial values and timestamps, mode choice, size budgets on realistic series, the
 * decode window, and rejection of corrupt packs. */
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

#include "ag_buf.h"
#include "ag_chunk.h"
#include "ag_err.h"
#include "ag_pack.h"

#define STALE 0x7ff0000000000002ULL
#define T0 1700000000000LL

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

/* xorshift64*: deterministic test data. */
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint64_t bits_of(double v) { uint64_t u; memcpy(&u, &v, 8); return u; }
static double from_bits(uint64_t u) { double v; memcpy(&v, &u, 8); return v; }

static ag_sample_pt_t *samples(size_t n)
{
    ag_sample_pt_t *s = calloc(n ? n : 1, sizeof *s);
    assert_non_null(s);
    return s;
}

/* Regular 15 s timestamps from T0. */
static void regular_ts(ag_sample_pt_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) s[i].t = T0 + (int64_t)i * 15000;
}

/* Checks that `d` decodes to exactly s[0..n), whole and through windows, and agrees with info. */
static void check_pack(const uint8_t *d, size_t len, const ag_sample_pt_t *s, size_t n)
{
    size_t count = 0, got = 0;
    int64_t mint = 0, maxt = 0;
    assert_int_equal(ag_pack_info(d, len, &count, &mint, &maxt), 0);
    assert_int_equal(count, n);
    assert_true(mint == s[0].t && maxt == s[n - 1].t);
    ag_sample_pt_t *o = samples(n);
    assert_int_equal(ag_pack_decode(d, len, INT64_MIN, INT64_MAX, o, &got), 0);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        if (o[i].t != s[i].t || bits_of(o[i].v) != bits_of(s[i].v))
            fail_msg("sample %zu: got t=%lld v=%016llx want t=%lld v=%016llx", i,
                     (long long)o[i].t, (unsigned long long)bits_of(o[i].v), (long long)s[i].t,
                     (unsigned long long)bits_of(s[i].v));
    }
    /* A few windows: [t_a, t_b], one that falls between samples, and one outside. */
    size_t a = n / 3, b = n - 1 - n / 4;
    assert_int_equal(ag_pack_decode(d, len, s[a].t, s[b].t, o, &got), 0);
    assert_int_equal(got, b - a + 1);
    for (size_t i = a; i <= b; i++)
        assert_true(o[i - a].t == s[i].t && bits_of(o[i - a].v) == bits_of(s[i].v));
    if (n >= 2 && s[1].t > s[0].t + 1) {
        assert_int_equal(ag_pack_decode(d, len, s[0].t + 1, s[1].t - 1, o, &got), 0);
        assert_int_equal(got, 0);
    }
    if (s[n - 1].t < INT64_MAX) {
        assert_int_equal(ag_pack_decode(d, len, s[n - 1].t + 1, INT64_MAX, o, &got), 0);
        assert_int_equal(got, 0);
    }
    free(o);
}

/* Encodes s, checks the round trip, returns the pack's size; *mode gets its first byte. */
static size_t roundtrip(const ag_sample_pt_t *s, size_t n, unsigned *mode)
{
    ag_buf_t b = AG_BUF_INIT;
    assert_int_equal(ag_pack_encode(s, n, &b), 0);
    check_pack((const uint8_t *)b.data, b.len, s, n);
    if (mode) *mode = (uint8_t)b.data[0];
    size_t len = b.len;
    ag_buf_free(&b);
    return len;
}

static unsigned vmode_of(unsigned mode) { return mode & 3; }
static unsigned tmode_of(unsigned mode) { return (mode >> 2) & 3; }

/* Size of the Gorilla chunk of the same samples, the yardstick. */
static size_t gorilla_size(const ag_sample_pt_t *s, size_t n)
{
    ag_chunk_enc_t e;
    ag_chunk_enc_init(&e);
    for (size_t i = 0; i < n; i++) assert_int_equal(ag_chunk_enc_append(&e, s[i].t, s[i].v), 0);
    size_t len;
    (void)ag_chunk_enc_bytes(&e, &len);
    ag_chunk_enc_free(&e);
    return len;
}

static const uint64_t SPECIALS[] = {
    STALE,
    0x7ff8000000000000ULL, /* the canonical quiet NaN */
    0x7ff8000000000001ULL, /* Prometheus' NaN */
    0xfff8dead0000beefULL, /* negative NaN with a payload */
    0x7ff0000000000001ULL, /* signalling NaN */
    0x7ff0000000000000ULL, /* +Inf */
    0xfff0000000000000ULL, /* -Inf */
    0x8000000000000000ULL, /* -0.0 */
    0x0000000000000000ULL, /* +0.0 */
    0x0000000000000001ULL, /* smallest subnormal */
    0x800fffffffffffffULL, /* largest negative subnormal */
    0x0010000000000000ULL, /* DBL_MIN */
    0x7fefffffffffffffULL, /* DBL_MAX */
    0xffefffffffffffffULL, /* -DBL_MAX */
};
#define NSPECIALS (sizeof SPECIALS / sizeof SPECIALS[0])

/* ---- tests -------------------------------------------------------------------------------- */

static void test_einval(void **state)
{
    ag_sample_pt_t s[3] = {{10, 1.0}, {20, 2.0}, {20, 3.0}};
    ag_buf_t b = AG_BUF_INIT;
    assert_int_equal(ag_pack_encode(s, 0, &b), AG_EINVAL);
    assert_int_equal(ag_pack_encode(NULL, 1, &b), AG_EINVAL);
    assert_int_equal(ag_pack_encode(s, 1, NULL), AG_EINVAL);
    assert_int_equal(ag_pack_encode(s, 3, &b), AG_EINVAL); /* equal timestamps */
    s[2].t = 5;
    assert_int_equal(ag_pack_encode(s, 3, &b), AG_EINVAL); /* decreasing */
    assert_int_equal(b.len, 0);
    ag_sample_pt_t *big = samples(AG_PACK_MAX_SAMPLES + 1);
    regular_ts(big, AG_PACK_MAX_SAMPLES + 1);
    assert_int_equal(ag_pack_encode(big, AG_PACK_MAX_SAMPLES + 1, &b), AG_EINVAL);
    free(big);
    b.oom = true; /* a buffer that already failed stays failed */
    assert_int_equal(ag_pack_encode(s, 2, &b), AG_ENOMEM);
    ag_buf_free(&b);
}

static void test_appends_to_buffer(void **state)
{
    ag_sample_pt_t s[4] = {{1, 1.5}, {2, 2.5}, {4, 3.5}, {9, -1.25}};
    ag_buf_t b = AG_BUF_INIT;
    ag_buf_puts(&b, "prefix");
    assert_int_equal(ag_pack_encode(s, 4, &b), 0);
    assert_memory_equal(b.data, "prefix", 6);
    check_pack((const uint8_t *)b.data + 6, b.len - 6, s, 4);
    /* Deterministic: the same samples give the same bytes. */
    ag_buf_t c = AG_BUF_INIT;
    assert_int_equal(ag_pack_encode(s, 4, &c), 0);
    assert_int_equal(c.len, b.len - 6);
    assert_memory_equal(c.data, b.data + 6, c.len);
    ag_buf_free(&b);
    ag_buf_free(&c);
}

static void test_one_and_two_samples(void **state)
{
    for (size_t k = 0; k < NSPECIALS; k++) {
        ag_sample_pt_t s[2] = {{INT64_MIN + (int64_t)k, from_bits(SPECIALS[k])}, {INT64_MAX, 7.0}};
        roundtrip(s, 1, NULL);
        roundtrip(s, 2, NULL);
        s[0].t = -5;
        s[1].t = 3;
        roundtrip(s, 2, NULL);
    }
    ag_sample_pt_t one = {0, 42.0};
    unsigned mode;
    assert_true(roundtrip(&one, 1, &mode) <= 6);
    assert_int_equal(tmode_of(mode), 0);
}

static void test_special_values(void **state)
{
    /* Every special value in every position of a decimal series, alone and all together. */
    enum { N = 120 };
    ag_sample_pt_t *s = samples(N);
    regular_ts(s, N);
    for (size_t k = 0; k < NSPECIALS; k++) {
        for (size_t i = 0; i < N; i++) s[i].v = 41.37 + (double)(i % 7) / 100.0;
        s[k * 7 % N].v = from_bits(SPECIALS[k]);
        s[N - 1].v = from_bits(STALE);
        unsigned mode;
        roundtrip(s, N, &mode);
        assert_int_not_equal(vmode_of(mode), 0); /* two exceptions do not force XOR */
    }
    for (size_t i = 0; i < N; i++) s[i].v = from_bits(SPECIALS[i % NSPECIALS]);
    roundtrip(s, N, NULL);
    /* Stale markers between counter values. */
    for (size_t i = 0; i < N; i++) s[i].v = (i % 10 == 9) ? from_bits(STALE) : (double)(i * 3);
    roundtrip(s, N, NULL);
    /* Only zeros of both signs. */
    for (size_t i = 0; i < N; i++) s[i].v = (i & 1) ? -0.0 : 0.0;
    roundtrip(s, N, NULL);
    free(s);
}

static void test_hard_values(void **state)
{
    static const double hard[] = {
        0.1 + 0.2, 0.30000000000000004, 1.0 / 3.0, 2.0 / 3.0, M_PI, 1e-300, 1e300, 1e22, 1e23,
        9.2e18, 9.3e18, -9.2e18, 9007199254740993.0, 9007199254740992.0, 123456789012345678.0,
        1.2345678901234567, 0.1, 0.7, 1e-7, 123e-20, 4.9e-324, 1.7976931348623157e308, -41.37,
        1e15 + 0.3, 5e-324, 100.0, 1e21, 1.5e22, 3e22, 12345678901234567890.0,
    };
    enum { H = sizeof hard / sizeof hard[0] };
    ag_sample_pt_t *s = samples(H * 4);
    regular_ts(s, H * 4);
    /* Each hard value constant, then mixed in all orders, then alternating signs. */
    for (size_t k = 0; k < H; k++) {
        for (size_t i = 0; i < 8; i++) s[i].v = hard[k];
        roundtrip(s, 8, NULL);
        for (size_t i = 0; i < 8; i++) s[i].v = (i & 1) ? -hard[k] : hard[k];
        roundtrip(s, 8, NULL);
        for (size_t i = 0; i < 8; i++) s[i].v = hard[k] * (double)(i + 1);
        roundtrip(s, 8, NULL);
    }
    for (size_t i = 0; i < H * 4; i++) s[i].v = hard[(i * 7) % H] * ((i & 2) ? -1 : 1);
    roundtrip(s, H * 4, NULL);
    /* Decimals with every count of digits 0..17 and big round numbers. */
    for (int digits = 0; digits <= 17; digits++) {
        for (size_t i = 0; i < 64; i++) {
            double m = (double)(rnd() % 1000000007ULL) * (double)(i + 1);
            s[i].v = m / pow(10.0, digits);
        }
        roundtrip(s, 64, NULL);
        for (size_t i = 0; i < 64; i++) s[i].v = (double)(rnd() % 1000) * pow(10.0, digits);
        roundtrip(s, 64, NULL);
    }
    free(s);
}

static void test_extreme_timestamps(void **state)
{
    ag_sample_pt_t s[6] = {{INT64_MIN, 1}, {INT64_MAX, 2}};
    roundtrip(s, 2, NULL);
    s[0] = (ag_sample_pt_t){INT64_MIN, 1};
    s[1] = (ag_sample_pt_t){INT64_MIN + 1, 2};
    s[2] = (ag_sample_pt_t){0, 3};
    s[3] = (ag_sample_pt_t){1, 4};
    s[4] = (ag_sample_pt_t){INT64_MAX - 1, 5};
    s[5] = (ag_sample_pt_t){INT64_MAX, 6};
    unsigned mode;
    roundtrip(s, 6, &mode);
    assert_int_not_equal(tmode_of(mode), 0);
    /* Evenly spaced across the whole int64 range (all deltas equal, a huge delta). */
    s[0].t = INT64_MIN + 2;
    for (int i = 1; i < 4; i++) s[i].t = s[i - 1].t + INT64_MAX / 2;
    roundtrip(s, 4, &mode);
    assert_int_equal(tmode_of(mode), 0);
    /* Irregular: gaps of every size, delta-of-deltas that overflow int64. */
    enum { N = 200 };
    ag_sample_pt_t *r = samples(N);
    int64_t t = -((int64_t)1 << 62);
    for (size_t i = 0; i < N; i++) {
        uint64_t gap = 1 + (rnd() >> (rnd() % 64));
        if (gap > (uint64_t)INT64_MAX / (N * 2)) gap = 1 + gap % ((uint64_t)INT64_MAX / (N * 2));
        t += (int64_t)gap;
        r[i].t = t;
        r[i].v = (double)i;
    }
    roundtrip(r, N, NULL);
    free(r);
}

static void test_timestamp_modes(void **state)
{
    enum { N = 120 };
    ag_sample_pt_t *s = samples(N);
    unsigned mode;
    regular_ts(s, N);
    for (size_t i = 0; i < N; i++) s[i].v = (double)i;
    assert_true(roundtrip(s, N, &mode) <= 20);
    assert_int_equal(tmode_of(mode), 0);
    /* Scrape jitter of a few ms: deltas near 15000, best stored minus the smallest one. */
    for (size_t i = 0; i < N; i++) s[i].t = T0 + (int64_t)i * 15000 + (int64_t)(rnd() % 5);
    size_t jitter = roundtrip(s, N, &mode);
    assert_int_equal(tmode_of(mode), 2);
    assert_true(jitter <= 20 + N * 4 / 8 + 8);
    /* One missed scrape: a single non-zero delta-of-delta pair. */
    regular_ts(s, N);
    for (size_t i = 60; i < N; i++) s[i].t += 15000;
    size_t missed = roundtrip(s, N, &mode);
    assert_int_not_equal(tmode_of(mode), 0);
    assert_true(missed <= 50);
    free(s);
}

static void test_value_modes(void **state)
{
    enum { N = 120 };
    ag_sample_pt_t *s = samples(N);
    regular_ts(s, N);
    unsigned mode;
    /* Decimal data picks a decimal mode. */
    for (size_t i = 0; i < N; i++) s[i].v = round(5000.0 + 1000.0 * sin((double)i / 10.0)) / 100.0;
    roundtrip(s, N, &mode);
    assert_int_not_equal(vmode_of(mode), 0);
    /* Random bits fall back to XOR and stay within a few bytes of Gorilla. */
    for (size_t i = 0; i < N; i++) s[i].v = from_bits(rnd());
    size_t len = roundtrip(s, N, &mode);
    assert_int_equal(vmode_of(mode), 0);
    assert_true(len <= gorilla_size(s, N) + 8);
    /* Full-precision irrationals: 17-digit mantissas (scale 16) or XOR, whichever is
     * smaller, never larger than Gorilla. */
    for (size_t i = 0; i < N; i++) s[i].v = sqrt((double)i + 2.0);
    assert_true(roundtrip(s, N, &mode) <= gorilla_size(s, N));
    /* Noise around a level: frame of reference (order 0, vmode 1) beats deltas. */
    for (size_t i = 0; i < N; i++) s[i].v = 1000.0 + (double)(rnd() % 100);
    roundtrip(s, N, &mode);
    assert_int_equal(vmode_of(mode), 1);
    /* A counter: constant delta of mantissas, delta-of-delta order (vmode 3). */
    for (size_t i = 0; i < N; i++) s[i].v = (double)(i * 7 + 1000);
    roundtrip(s, N, &mode);
    assert_int_equal(vmode_of(mode), 3);
    free(s);
}

/* The shapes of tests/bench/loadgen.c and node_exporter, with byte budgets per sample that a
 * regression of the codec would break (Gorilla needs 1.7 to 6.7 bytes/sample on them). */
static void test_size_budgets(void **state)
{
    enum { N = 120 };
    ag_sample_pt_t *s = samples(N);
    regular_ts(s, N);
    size_t total = 0;
    for (long series = 0; series < 30; series++) {
        for (size_t i = 0; i < N; i++) {
            long step = (long)i + series * 11;
            double v;
            switch (series % 3) {
            case 0: v = (double)(step * (series % 17 + 1)) + (double)(series * 7); break;
            case 1: v = round((double)step * 15.37 * 100.0 + (double)series) / 100.0; break;
            default: v = round(5000.0 + 1000.0 * sin((double)(step + series) / 10.0)) / 100.0;
            }
            s[i].v = v;
        }
        size_t len = roundtrip(s, N, NULL);
        total += len;
        if (series % 3 == 0) assert_true(len <= N * 2 / 10); /* counters: <= 0.2 B/sample */
        if (series % 3 == 1) assert_true(len <= N * 25 / 100); /* cpu seconds: <= 0.25 */
        if (series % 3 == 2) assert_true(len <= N * 9 / 10); /* 2-decimal gauge: <= 0.9 */
    }
    assert_true(total <= 30 * N * 45 / 100); /* <= 0.45 B/sample overall */

    /* A counter with resets and a stale marker at the end. */
    double c = 0;
    for (size_t i = 0; i < N; i++) {
        c = (i % 50 == 49) ? 0 : c + 1024 * (double)(1 + rnd() % 4);
        s[i].v = c;
    }
    s[N - 1].v = from_bits(STALE);
    assert_true(roundtrip(s, N, NULL) <= gorilla_size(s, N) * 2 / 3);
    /* Memory bytes: large round integers. */
    for (size_t i = 0; i < N; i++) s[i].v = 8.0e9 + 4096.0 * (double)(rnd() % 64);
    assert_true(roundtrip(s, N, NULL) <= N * 1);
    /* A constant (node_boot_time_seconds, up). */
    for (size_t i = 0; i < N; i++) s[i].v = 1699999999.0;
    assert_true(roundtrip(s, N, NULL) <= 24);
    free(s);
}

static void test_large_chunks(void **state)
{
    size_t n = AG_PACK_MAX_SAMPLES;
    ag_sample_pt_t *s = samples(n);
    regular_ts(s, n);
    for (size_t i = 0; i < n; i++) s[i].v = round((double)i * 15.37 * 100.0) / 100.0;
    unsigned mode;
    size_t len = roundtrip(s, n, &mode);
    assert_true(len <= n / 8);
    /* Random values and irregular timestamps at full size: exceptions positions up to 65534. */
    int64_t t = 0;
    for (size_t i = 0; i < n; i++) {
        t += 1 + (int64_t)(rnd() % 30000);
        s[i].t = t;
        s[i].v = (rnd() % 64 == 0) ? from_bits(STALE) : (double)(rnd() % 100000) / 1000.0;
    }
    roundtrip(s, n, &mode);
    assert_int_not_equal(vmode_of(mode), 0);
    for (size_t i = 0; i < n; i++) s[i].v = from_bits(rnd());
    roundtrip(s, n, NULL);
    free(s);
}

static void test_random_roundtrips(void **state)
{
    ag_sample_pt_t *s = samples(600);
    for (int iter = 0; iter < 400; iter++) {
        size_t n = 1 + rnd() % 600;
        int64_t t = (int64_t)(rnd() >> 2) - ((int64_t)1 << 61);
        uint64_t kind = rnd() % 6;
        double scale = pow(10.0, (double)(rnd() % 12)), level = (double)(rnd() % 100000);
        for (size_t i = 0; i < n; i++) {
            t += (rnd() % 4 == 0) ? 1 + (int64_t)(rnd() % 100000) : 15000;
            s[i].t = t;
            switch (kind) {
            case 0: s[i].v = from_bits(rnd()); break;
            case 1: s[i].v = (level + (double)(rnd() % 1000)) / scale; break;
            case 2: s[i].v = (double)i * level / scale; break;
            case 3: s[i].v = from_bits(SPECIALS[rnd() % NSPECIALS]); break;
            case 4: s[i].v = (rnd() % 8) ? (double)(int64_t)rnd() : from_bits(rnd()); break;
            default: s[i].v = ((rnd() & 1) ? -1.0 : 1.0) * (double)(rnd() % 1000) / 100.0;
            }
        }
        roundtrip(s, n, NULL);
    }
    free(s);
}

/* Every prefix, trailing junk, non-zero padding, a bad version: all AG_ECORRUPT. Random bit
 * flips may decode, but then to strictly increasing timestamps and the promised count. */
static void test_corrupt(void **state)
{
    enum { N = 120 };
    ag_sample_pt_t *s = samples(N), *o = samples(N + 8);
    regular_ts(s, N);
    for (size_t i = 0; i < N; i++) s[i].v = (i % 40 == 3) ? from_bits(STALE) : (double)i / 4.0;
    s[77].t += 3; /* a delta-of-delta stream */
    ag_buf_t b = AG_BUF_INIT;
    assert_int_equal(ag_pack_encode(s, N, &b), 0);
    uint8_t *d = malloc(b.len + 1);
    assert_non_null(d);
    size_t len = b.len, got;
    memcpy(d, b.data, len);
    for (size_t l = 0; l < len; l++) {
        uint8_t *p = malloc(l ? l : 1);
        memcpy(p, d, l);
        assert_int_equal(ag_pack_decode(p, l, INT64_MIN, INT64_MAX, o, &got), AG_ECORRUPT);
        assert_int_equal(got, 0);
        free(p);
    }
    assert_int_equal(ag_pack_info(d, 0, NULL, NULL, NULL), AG_ECORRUPT);
    d[len] = 0;
    assert_int_equal(ag_pack_decode(d, len + 1, INT64_MIN, INT64_MAX, o, &got), AG_ECORRUPT);
    d[0] = (uint8_t)((d[0] & 0x0f) | 0x20);
    assert_int_equal(ag_pack_info(d, len, NULL, NULL, NULL), AG_ECORRUPT);
    d[0] = (uint8_t)((d[0] & 0x0f) | 0x10 | 0x0c); /* timestamp mode 3 */
    assert_int_equal(ag_pack_info(d, len, NULL, NULL, NULL), AG_ECORRUPT);
    memcpy(d, b.data, len);
    if (d[len - 1] != 0xff) {
        /* Set the highest zero bit of the last byte: non-zero padding or a changed value. */
        for (int bit = 7; bit >= 0; bit--)
            if (!(d[len - 1] & (1u << bit))) {
                d[len - 1] |= (uint8_t)(1u << bit);
                break;
            }
        int rc = ag_pack_decode(d, len, INT64_MIN, INT64_MAX, o, &got);
        assert_true(rc == AG_ECORRUPT || (rc == 0 && got == N));
    }
    /* Random flips of 1..3 bits. */
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(d, b.data, len);
        for (uint64_t k = 1 + rnd() % 3; k > 0; k--) d[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
        size_t count = 0;
        int irc = ag_pack_info(d, len, &count, NULL, NULL);
        if (irc != 0 || count > N + 8) continue;
        int rc = ag_pack_decode(d, len, INT64_MIN, INT64_MAX, o, &got);
        assert_true(rc == 0 || rc == AG_ECORRUPT);
        if (rc != 0) continue;
        assert_int_equal(got, count);
        for (size_t i = 1; i < got; i++) assert_true(o[i].t > o[i - 1].t);
    }
    /* Hand-made headers: zero count, a count over the limit, a delta that overflows. */
    static const uint8_t zero_count[] = {0x10, 0x00, 0x00};
    static const uint8_t big_count[] = {0x10, 0x80, 0x80, 0x04, 0x00};
    static const uint8_t overflow[] = {0x10, 0x03, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0x01, 0x02};
    assert_int_equal(ag_pack_info(zero_count, sizeof zero_count, NULL, NULL, NULL), AG_ECORRUPT);
    assert_int_equal(ag_pack_info(big_count, sizeof big_count, NULL, NULL, NULL), AG_ECORRUPT);
    assert_int_equal(ag_pack_info(overflow, sizeof overflow, NULL, NULL, NULL), AG_ECORRUPT);
    free(d);
    free(o);
    free(s);
    ag_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_einval),
        cmocka_unit_test(test_appends_to_buffer),
        cmocka_unit_test(test_one_and_two_samples),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_hard_values),
        cmocka_unit_test(test_extreme_timestamps),
        cmocka_unit_test(test_timestamp_modes),
        cmocka_unit_test(test_value_modes),
        cmocka_unit_test(test_size_budgets),
        cmocka_unit_test(test_large_chunks),
        cmocka_unit_test(test_random_roundtrips),
        cmocka_unit_test(test_corrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
