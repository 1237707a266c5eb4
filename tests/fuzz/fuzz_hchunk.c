/* fuzz_hchunk.c - libFuzzer target for the head chunk codec (storage/hchunk.c).
 *
 * (a) The input is decoded as head chunk bytes: no crash, no read outside the input, at most the
 *     header's count of samples, timestamps strictly increasing when it succeeds.
 * (b) The input is read as (int64 t, uint64 value bits) pairs, little-endian, 16 bytes each, the
 *     first byte of each pair's value also choosing between the raw bits and a short decimal
 *     derived from them (so every mode, scale change and fallback gets exercised); samples whose
 *     t does not increase are dropped. The rest are encoded, decoded and compared bit for bit.
 * Any mismatch calls abort().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_err.h"
#include "ag_hchunk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_hchunk: check failed at line %d: %s\n", __LINE__, #cond);     \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static uint64_t load_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void fuzz_decode(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    CHECK(copy);
    if (size) memcpy(copy, data, size);
    size_t count = ag_hchunk_count(copy, size), n = 0;
    ag_sample_pt_t *out = malloc((count ? count : 1) * sizeof *out);
    CHECK(out);
    if (ag_hchunk_decode(copy, size, INT64_MIN, INT64_MAX, out, &n) == 0) {
        CHECK(n == count);
        for (size_t i = 1; i < n; i++) CHECK(out[i].t > out[i - 1].t);
    }
    free(out);
    free(copy);
}

static void fuzz_roundtrip(const uint8_t *data, size_t size)
{
    size_t max = size / 16;
    ag_sample_pt_t *in = malloc((max ? max : 1) * sizeof *in);
    ag_sample_pt_t *out = malloc((max ? max : 1) * sizeof *out);
    CHECK(in && out);
    ag_hchunk_t e;
    ag_hchunk_init(&e);
    size_t n = 0;
    for (size_t i = 0; i < max && n < AG_HCHUNK_MAX_SAMPLES; i++) {
        int64_t t = (int64_t)load_u64(data + 16 * i);
        uint64_t vb = load_u64(data + 16 * i + 8);
        double v;
        if ((vb & 0xff) < 0xa0) {
            /* A short decimal: a mantissa below 10^6 at a scale of 0..11. */
            unsigned k = (unsigned)((vb >> 8) % 12);
            double p = 1;
            for (unsigned j = 0; j < k; j++) p *= 10;
            v = (double)((int64_t)((vb >> 16) % 2000000) - 1000000) / p;
        } else {
            memcpy(&v, &vb, 8);
        }
        if (n && t <= in[n - 1].t) {
            CHECK(ag_hchunk_append(&e, t, v) == AG_EINVAL);
            continue;
        }
        CHECK(ag_hchunk_append(&e, t, v) == 0);
        in[n].t = t;
        in[n].v = v;
        n++;
    }
    size_t len, got;
    const uint8_t *b = ag_hchunk_bytes(&e, &len);
    CHECK(ag_hchunk_count(b, len) == n || (n == 0 && len == 0));
    if (n) {
        CHECK(ag_hchunk_decode(b, len, INT64_MIN, INT64_MAX, out, &got) == 0);
        CHECK(got == n);
        for (size_t i = 0; i < n; i++)
            CHECK(out[i].t == in[i].t && memcmp(&out[i].v, &in[i].v, 8) == 0);
    }
    ag_hchunk_free(&e);
    free(in);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode(data, size);
    fuzz_roundtrip(data, size);
    return 0;
}
