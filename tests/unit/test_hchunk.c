/* test_hchunk.c - unit tests for the head chunk codec (storage/hchunk.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ag_chunk.h"
#include "ag_err.h"
#include "ag_hchunk.h"

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double from_bits(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Encodes s[0..n), decodes everything back and compares bit for bit; returns the byte size. */
static size_t roundtrip(const ag_sample_pt_t *s, size_t n, uint8_t *mode)
{
    ag_hchunk_t e;
    ag_hchunk_init(&e);
    for (size_t i = 0; i < n; i++) assert_int_equal(ag_hchunk_append(&e, s[i].t, s[i].v), 0);
    size_t len, got;
    const uint8_t *b = ag_hchunk_bytes(&e, &len);
    assert_int_equal(ag_hchunk_count(b, len), n);
    ag_sample_pt_t *out = calloc(n + 1, sizeof *out);
    assert_non_null(out);
    assert_int_equal(ag_hchunk_decode(b, len, INT64_MIN, INT64_MAX, out, &got), 0);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(out[i].t, s[i].t);
        assert_memory_equal(&out[i].v, &s[i].v, 8);
    }
    /* Every window [a, b] gives exactly the samples inside it. */
    for (int k = 0; k < 8 && n; k++) {
        size_t a = (size_t)(rnd() % n), z = a + (size_t)(rnd() % (n - a));
        assert_int_equal(ag_hchunk_decode(b, len, s[a].t, s[z].t, out, &got), 0);
        assert_int_equal(got, z - a + 1);
        assert_int_equal(out[0].t, s[a].t);
        assert_memory_equal(&out[got - 1].v, &s[z].v, 8);
    }
    /* Any truncation is refused, never read past. */
    for (size_t k = 0; k < (len <= 300 ? len : 64); k++) {
        size_t cut = len <= 300 ? k : (size_t)(rnd() % len);
        uint8_t *copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, b, cut);
        assert_int_equal(ag_hchunk_decode(copy, cut, INT64_MIN, INT64_MAX, out, &got),
                         AG_ECORRUPT);
        free(copy);
    }
    if (mode) *mode = len ? b[2] : 0;
    free(out);
    ag_hchunk_free(&e);
    return len;
}

static void test_empty(void **state)
{
    (void)state;
    ag_hchunk_t e;
    ag_hchunk_init(&e);
    size_t len, got;
    ag_hchunk_bytes(&e, &len);
    assert_int_equal(len, 0);
    ag_sample_pt_t out[1];
    const uint8_t hdr[3] = {0, 0, 0};
    assert_int_equal(ag_hchunk_decode(hdr, 3, INT64_MIN, INT64_MAX, out, &got), 0);
    assert_int_equal(got, 0);
    assert_int_equal(ag_hchunk_decode(hdr, 2, INT64_MIN, INT64_MAX, out, &got), AG_ECORRUPT);
    const uint8_t bad_mode[3] = {0, 0, 11};
    assert_int_equal(ag_hchunk_decode(bad_mode, 3, INT64_MIN, INT64_MAX, out, &got), AG_ECORRUPT);
    ag_hchunk_free(&e);
}

/* node_exporter-shaped values: decimal mode, and far smaller than Gorilla. */
static void test_decimal_values_are_small(void **state)
{
    (void)state;
    ag_sample_pt_t s[120];
    for (int kind = 0; kind < 3; kind++) {
        ag_chunk_enc_t g;
        ag_chunk_enc_init(&g);
        for (int i = 0; i < 120; i++) {
            s[i].t = 1700000000000 + i * 15000;
            s[i].v = kind == 0   ? (double)(i * 13 + 7000)
                     : kind == 1 ? round(i * 1537.0 + 11) / 100.0
                                 : round(5000.0 + 1000.0 * sin(i / 10.0)) / 100.0;
            assert_int_equal(ag_chunk_enc_append(&g, s[i].t, s[i].v), 0);
        }
        uint8_t mode;
        size_t len = roundtrip(s, 120, &mode), glen;
        ag_chunk_enc_bytes(&g, &glen);
        assert_int_equal(mode, kind == 0 ? 1 : 3); /* scale 0 for integers, 2 for cents */
        assert_true(len * 3 < glen);               /* at least 3x smaller than Gorilla */
        ag_chunk_enc_free(&g);
    }
}

/* Values no scale reproduces, and values that need a larger scale later, stay bit-exact. */
static void test_special_values(void **state)
{
    (void)state;
    const uint64_t special[] = {0x7ff0000000000002ULL, /* stale marker */
                                0x7ff8000000000001ULL, 0xfff8000000000000ULL, /* NaNs */
                                0x8000000000000000ULL, /* -0.0 */
                                0x7ff0000000000000ULL, 0xfff0000000000000ULL, /* +-Inf */
                                1, 0x000fffffffffffffULL, /* subnormals */
                                0x7fefffffffffffffULL, 0};
    size_t ns = sizeof special / sizeof *special;
    ag_sample_pt_t s[200];
    for (size_t lead = 0; lead < 3; lead++) {
        for (size_t i = 0; i < 200; i++) {
            s[i].t = (int64_t)i * 1000;
            if (i % 7 == 3) s[i].v = from_bits(special[(i / 7) % ns]);
            else if (lead == 0) s[i].v = (double)i;
            else if (lead == 1) s[i].v = i < 50 ? i / 2.0 : i / 8.0; /* scale 1, then 3 */
            else s[i].v = from_bits(rnd());
        }
        roundtrip(s, 200, NULL);
    }
    /* A chunk that starts with a special value, and one made of them only. */
    s[0].v = from_bits(special[0]);
    for (size_t i = 1; i < 50; i++) s[i].v = i * 0.25;
    roundtrip(s, 50, NULL);
    for (size_t i = 0; i < 50; i++) s[i].v = from_bits(special[i % ns]);
    roundtrip(s, 50, NULL);
}

static void test_scale_grows(void **state)
{
    (void)state;
    ag_sample_pt_t s[40];
    for (int i = 0; i < 40; i++) {
        s[i].t = 1000 + i;
        s[i].v = i < 10 ? i * 0.5 : i < 20 ? i * 0.25 : i * 0.001953125; /* 1, 2, then 9 digits */
    }
    uint8_t mode;
    roundtrip(s, 40, &mode);
    assert_int_equal(mode, 1 + 9);
}

/* Mostly values with too many digits: the chunk falls back to XOR for good. */
static void test_falls_back_to_xor(void **state)
{
    (void)state;
    ag_sample_pt_t s[100];
    for (int i = 0; i < 100; i++) {
        s[i].t = 1000 * i;
        s[i].v = i == 0 ? 1.0 : 1.0 / (i + 2.0);
    }
    uint8_t mode;
    roundtrip(s, 100, &mode);
    assert_int_equal(mode, 0);
}

static void test_extreme_timestamps(void **state)
{
    (void)state;
    ag_sample_pt_t s[4] = {{INT64_MIN, 1.5}, {INT64_MIN + 1, 2.5}, {0, 3.25}, {INT64_MAX, 4.0}};
    roundtrip(s, 4, NULL);
}

static void test_errors_keep_encoder(void **state)
{
    (void)state;
    ag_hchunk_t e;
    ag_hchunk_init(&e);
    assert_int_equal(ag_hchunk_append(&e, 100, 1.5), 0);
    assert_int_equal(ag_hchunk_append(&e, 200, 2.5), 0);
    size_t len;
    const uint8_t *b = ag_hchunk_bytes(&e, &len);
    uint8_t before[64];
    memcpy(before, b, len);
    assert_int_equal(ag_hchunk_append(&e, 200, 9.0), AG_EINVAL);
    assert_int_equal(ag_hchunk_append(&e, 150, 9.0), AG_EINVAL);
    size_t len2;
    b = ag_hchunk_bytes(&e, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(b, before, len);
    ag_hchunk_free(&e);
}

static void test_random_roundtrips(void **state)
{
    (void)state;
    ag_sample_pt_t *s = malloc(2000 * sizeof *s);
    assert_non_null(s);
    for (int r = 0; r < 300; r++) {
        size_t n = 1 + (size_t)(rnd() % 2000);
        int64_t t = (int64_t)(rnd() >> 2);
        int kind = (int)(rnd() % 5);
        for (size_t i = 0; i < n; i++) {
            if (i) t += 1 + (int64_t)(rnd() % (r % 2 ? 5 : 100000));
            s[i].t = t;
            uint64_t x = rnd();
            switch ((kind + (x % 9 == 0)) % 5) {
            case 0: s[i].v = from_bits(x); break;
            case 1: s[i].v = (double)(int64_t)(x % 200000 - 100000) / 100.0; break;
            case 2: s[i].v = (double)(i * i); break;
            case 3: s[i].v = (double)(int64_t)(x % 1000000000) / 1e9; break;
            default: s[i].v = (double)(x % 100) / pow(10, (double)(x % 13)); break;
            }
        }
        roundtrip(s, n, NULL);
    }
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_decimal_values_are_small),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_scale_grows),
        cmocka_unit_test(test_falls_back_to_xor),
        cmocka_unit_test(test_extreme_timestamps),
        cmocka_unit_test(test_errors_keep_encoder),
        cmocka_unit_test(test_random_roundtrips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
