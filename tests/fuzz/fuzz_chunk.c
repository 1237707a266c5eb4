/* fuzz_chunk.c - libFuzzer target for the chunk codec (storage/chunk.c).
 *
 * (a) The input is decoded as a chunk: the iterator must not crash or read out of bounds, must
 *     yield strictly increasing timestamps, stop at the header count, keep errors sticky, and
 *     ag_chunk_enc_load must agree with it (a loaded chunk re-decodes to the same samples).
 * (b) The input is read as (int64 t, uint64 value bits) pairs, little-endian, 16 bytes each;
 *     samples whose t does not increase are dropped. The rest are encoded, decoded and compared
 *     bit-exactly; the chunk is reloaded (byte-identical) and, split at a point chosen by the
 *     input, reloading the prefix then appending the remainder must give identical bytes.
 * Any mismatch calls abort().
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_chunk.h"
#include "ag_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_chunk: check failed at line %d: %s\n", __LINE__, #cond);       \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

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

static uint64_t load_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void fuzz_decode(const uint8_t *data, size_t size)
{
    /* Copy so that ASan sees the exact bounds even when libFuzzer's buffer is larger. */
    uint8_t *copy = malloc(size ? size : 1);
    CHECK(copy);
    if (size) memcpy(copy, data, size);

    ag_chunk_iter_t it;
    int rc = ag_chunk_iter_init(&it, copy, size);
    if (rc != 0) {
        CHECK(rc == AG_ECORRUPT && size < 2);
        int64_t t;
        double v;
        CHECK(ag_chunk_iter_next(&it, &t, &v) == AG_ECORRUPT);
        free(copy);
        return;
    }
    uint16_t count = ag_chunk_count(copy, size);
    int64_t *ts = malloc(((size_t)count + 1) * sizeof *ts);
    uint64_t *vs = malloc(((size_t)count + 1) * sizeof *vs);
    CHECK(ts && vs);
    size_t n = 0;
    int64_t t;
    double v;
    while ((rc = ag_chunk_iter_next(&it, &t, &v)) == 1) {
        CHECK(n < count);
        if (n > 0) CHECK(t > ts[n - 1]);
        ts[n] = t;
        vs[n] = dbits(v);
        n++;
    }
    CHECK(rc == 0 || rc == AG_ECORRUPT);
    if (rc == 0) CHECK(n == count);
    CHECK(ag_chunk_iter_next(&it, &t, &v) == rc); /* end and errors are sticky */

    /* The bulk decoder agrees with the iterator: the same samples, or an error when the
     * iterator failed; and over a window [ts[a], ts[b]] it yields exactly those samples when the
     * iterator got past ts[b] (it stops decoding there, so a later error is not its concern). */
    ag_sample_pt_t *bulk = malloc(((size_t)count + 1) * sizeof *bulk);
    CHECK(bulk);
    size_t bn;
    int brc = ag_chunk_decode(copy, size, INT64_MIN, INT64_MAX, bulk, &bn);
    if (rc == AG_ECORRUPT) {
        CHECK(brc == AG_ECORRUPT);
    } else {
        CHECK(brc == 0 && bn == n);
        for (size_t i = 0; i < n; i++) CHECK(bulk[i].t == ts[i] && dbits(bulk[i].v) == vs[i]);
    }
    if (n > 0) {
        size_t a = size % n, b = a + (size / 7) % (n - a);
        bool past_b = b + 1 < n || rc == 0;
        brc = ag_chunk_decode(copy, size, ts[a], ts[b], bulk, &bn);
        if (past_b) {
            CHECK(brc == 0 && bn == b - a + 1);
            for (size_t i = a; i <= b; i++)
                CHECK(bulk[i - a].t == ts[i] && dbits(bulk[i - a].v) == vs[i]);
        }
    }
    free(bulk);

    ag_chunk_enc_t e;
    int lrc = ag_chunk_enc_load(&e, copy, size);
    if (rc == AG_ECORRUPT) {
        CHECK(lrc == AG_ECORRUPT);
        CHECK(e.count == 0);
    } else if (lrc == 0) {
        /* The re-encoded chunk holds the same samples. */
        CHECK(e.count == n);
        size_t len;
        const uint8_t *b = ag_chunk_enc_bytes(&e, &len);
        if (n > 0) {
            CHECK(ag_chunk_iter_init(&it, b, len) == 0);
            for (size_t i = 0; i < n; i++) {
                CHECK(ag_chunk_iter_next(&it, &t, &v) == 1);
                CHECK(t == ts[i] && dbits(v) == vs[i]);
            }
            CHECK(ag_chunk_iter_next(&it, &t, &v) == 0);
        } else {
            CHECK(len == 0);
        }
    } else {
        CHECK(lrc == AG_ENOMEM);
    }
    ag_chunk_enc_free(&e);
    free(ts);
    free(vs);
    free(copy);
}

static void check_bytes_equal(const ag_chunk_enc_t *a, const ag_chunk_enc_t *b)
{
    size_t la, lb;
    const uint8_t *pa = ag_chunk_enc_bytes(a, &la);
    const uint8_t *pb = ag_chunk_enc_bytes(b, &lb);
    CHECK(la == lb);
    if (la) CHECK(memcmp(pa, pb, la) == 0);
}

static void fuzz_roundtrip(const uint8_t *data, size_t size)
{
    size_t max = size / 16;
    if (max > AG_CHUNK_MAX_SAMPLES) max = AG_CHUNK_MAX_SAMPLES;
    int64_t *ts = malloc((max + 1) * sizeof *ts);
    uint64_t *vs = malloc((max + 1) * sizeof *vs);
    CHECK(ts && vs);
    size_t n = 0;
    ag_chunk_enc_t e;
    ag_chunk_enc_init(&e);
    for (size_t i = 0; i < max; i++) {
        uint64_t ut = load_u64(data + 16 * i);
        int64_t t;
        memcpy(&t, &ut, sizeof t);
        uint64_t vb = load_u64(data + 16 * i + 8);
        int rc = ag_chunk_enc_append(&e, t, bdouble(vb));
        if (n > 0 && t <= ts[n - 1]) {
            CHECK(rc == AG_EINVAL);
            continue;
        }
        CHECK(rc == 0);
        ts[n] = t;
        vs[n] = vb;
        n++;
    }
    CHECK(e.count == n);

    size_t len;
    const uint8_t *b = ag_chunk_enc_bytes(&e, &len);
    CHECK((len == 0) == (n == 0));
    if (n > 0) {
        uint8_t *copy = malloc(len);
        CHECK(copy);
        memcpy(copy, b, len);
        CHECK(ag_chunk_count(copy, len) == n);
        ag_chunk_iter_t it;
        CHECK(ag_chunk_iter_init(&it, copy, len) == 0);
        int64_t t;
        double v;
        for (size_t i = 0; i < n; i++) {
            CHECK(ag_chunk_iter_next(&it, &t, &v) == 1);
            CHECK(t == ts[i]);
            CHECK(dbits(v) == vs[i]);
        }
        CHECK(ag_chunk_iter_next(&it, &t, &v) == 0);
        free(copy);
    }

    /* Reload the whole chunk. */
    ag_chunk_enc_t l;
    CHECK(ag_chunk_enc_load(&l, b, len) == 0);
    CHECK(l.count == n);
    check_bytes_equal(&l, &e);
    ag_chunk_enc_free(&l);

    /* Reload a prefix, append the rest: identical to encoding everything at once. */
    size_t split = size ? (size_t)data[size - 1] % (n + 1) : 0;
    ag_chunk_enc_t p;
    ag_chunk_enc_init(&p);
    for (size_t i = 0; i < split; i++) CHECK(ag_chunk_enc_append(&p, ts[i], bdouble(vs[i])) == 0);
    size_t plen;
    const uint8_t *pb = ag_chunk_enc_bytes(&p, &plen);
    CHECK(ag_chunk_enc_load(&l, pb, plen) == 0);
    for (size_t i = split; i < n; i++) CHECK(ag_chunk_enc_append(&l, ts[i], bdouble(vs[i])) == 0);
    check_bytes_equal(&l, &e);
    ag_chunk_enc_free(&l);
    ag_chunk_enc_free(&p);

    ag_chunk_enc_free(&e);
    free(ts);
    free(vs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_decode(data, size);
    fuzz_roundtrip(data, size);
    return 0;
}
