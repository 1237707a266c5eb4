/* fuzz_pack.c - libFuzzer target for the sealed-chunk codec (storage/pack.c).
 *
 * (a) The input is decoded as a pack: no crash or out-of-bounds read; ag_pack_decode fails
 *     whenever ag_pack_info does; a pack that decodes yields exactly info's count, with strictly
 *     increasing timestamps from info's mint to its maxt; a window [t_a, t_b] yields exactly those
 *     samples. A decoded pack re-encodes and decodes to the same samples.
 * (b) The input is read as samples and encoded, decoded and compared bit-exactly. The first byte
 *     picks how each 10-byte record (2 bytes timestamp step, 8 bytes payload) becomes a value:
 *     raw bits, a short decimal, an integer, or a mix with special values, so that every value
 *     mode and the exception list are exercised; a step of 0 takes a huge jump instead.
 * Any mismatch calls abort().
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_buf.h"
#include "ag_err.h"
#include "ag_pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_pack: check failed at line %d: %s\n", __LINE__, #cond);        \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static uint64_t vbits(double v) { uint64_t u; memcpy(&u, &v, 8); return u; }
static double vfrom(uint64_t u) { double v; memcpy(&v, &u, 8); return v; }

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Encodes s[0..n), decodes, and checks every sample bit for bit. */
static void check_roundtrip(const ag_sample_pt_t *s, size_t n)
{
    ag_buf_t b = AG_BUF_INIT;
    CHECK(ag_pack_encode(s, n, &b) == 0);
    size_t len = b.len, count, got;
    uint8_t *copy = malloc(len);
    CHECK(copy);
    memcpy(copy, b.data, len);
    ag_buf_free(&b);
    int64_t mint, maxt;
    CHECK(ag_pack_info(copy, len, &count, &mint, &maxt) == 0);
    CHECK(count == n && mint == s[0].t && maxt == s[n - 1].t);
    ag_sample_pt_t *o = malloc(n * sizeof *o);
    CHECK(o);
    CHECK(ag_pack_decode(copy, len, INT64_MIN, INT64_MAX, o, &got) == 0 && got == n);
    for (size_t i = 0; i < n; i++) CHECK(o[i].t == s[i].t && vbits(o[i].v) == vbits(s[i].v));
    free(o);
    free(copy);
}

static void fuzz_decode(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    CHECK(copy);
    if (size) memcpy(copy, data, size);
    size_t count = 0, got = 0;
    int64_t mint = 0, maxt = 0;
    int irc = ag_pack_info(copy, size, &count, &mint, &maxt);
    CHECK(irc == 0 || irc == AG_ECORRUPT);
    if (irc != 0) {
        ag_sample_pt_t one;
        CHECK(ag_pack_decode(copy, size, INT64_MIN, INT64_MAX, &one, &got) == AG_ECORRUPT);
        CHECK(got == 0);
        free(copy);
        return;
    }
    CHECK(count >= 1 && count <= AG_PACK_MAX_SAMPLES && mint <= maxt);
    ag_sample_pt_t *o = malloc(count * sizeof *o), *w = malloc(count * sizeof *w);
    CHECK(o && w);
    int rc = ag_pack_decode(copy, size, INT64_MIN, INT64_MAX, o, &got);
    CHECK(rc == 0 || rc == AG_ECORRUPT);
    if (rc == 0) {
        CHECK(got == count && o[0].t == mint && o[got - 1].t == maxt);
        for (size_t i = 1; i < got; i++) CHECK(o[i].t > o[i - 1].t);
        size_t a = size % got, bidx = a + (size / 7) % (got - a), wn;
        CHECK(ag_pack_decode(copy, size, o[a].t, o[bidx].t, w, &wn) == 0);
        CHECK(wn == bidx - a + 1);
        for (size_t i = a; i <= bidx; i++)
            CHECK(w[i - a].t == o[i].t && vbits(w[i - a].v) == vbits(o[i].v));
        check_roundtrip(o, got);
    } else {
        CHECK(got == 0);
    }
    free(o);
    free(w);
    free(copy);
}

static const uint64_t SPECIAL[8] = {
    0x7ff0000000000002ULL, 0x7ff8000000000001ULL, 0x8000000000000000ULL, 0x7ff0000000000000ULL,
    0xfff0000000000000ULL, 0x0000000000000001ULL, 0xfff8deadbeef0000ULL, 0,
};

static double make_value(unsigned how, uint64_t p)
{
    switch (how) {
    case 0: return vfrom(p);
    case 1: return (double)(int64_t)(p >> 8 & 0xffffff) / pow(10.0, (double)(p & 0x1f) - 4.0);
    case 2: return (double)(int64_t)p;
    case 3: return (p & 0xf0) == 0 ? vfrom(SPECIAL[p & 7]) : (double)(p >> 40) / 100.0;
    default: return (p & 0xff) < 8 ? vfrom(SPECIAL[p & 7]) : vfrom(p);
    }
}

static void fuzz_encode(const uint8_t *data, size_t size)
{
    if (size < 1) return;
    unsigned how = data[0] % 5;
    data++;
    size--;
    size_t n = size / 10;
    if (n == 0) return;
    if (n > AG_PACK_MAX_SAMPLES) n = AG_PACK_MAX_SAMPLES;
    ag_sample_pt_t *s = malloc(n * sizeof *s);
    CHECK(s);
    int64_t t = (data[0] & 1) ? INT64_MIN : 1700000000000LL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = data + 10 * i;
        uint64_t step = (uint64_t)r[0] | (uint64_t)r[1] << 8, p = le64(r + 2);
        if (step == 0) step = p >> 4; /* a huge jump */
        if (k > 0) {
            if (step == 0 || step > (uint64_t)INT64_MAX - (uint64_t)t) break;
            uint64_t u = (uint64_t)t + step;
            t = u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
        }
        s[k].t = t;
        s[k].v = make_value(how, p);
        k++;
    }
    check_roundtrip(s, k);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode(data, size);
    fuzz_encode(data, size);
    return 0;
}
