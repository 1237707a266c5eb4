/* fuzz_group.c - libFuzzer target for the cold records of storage/group.c: groups (many series'
 * labels or observer slots in one compressed record) and cold postings lists.
 *
 * (a) The input (after a first byte choosing the range size, 1..128) is decoded as a group
 *     value: no crash, no read outside the input, and when it succeeds the members are in
 *     ascending id order inside the range and their bytes lie inside the inflated list.
 * (b) The input is cut into member values (each led by a byte: its id step and length) that are
 *     encoded as one group, decoded and compared byte for byte.
 * (c) The input is decoded as a cold postings list: no crash or overread, and the ids it yields
 *     strictly increase.
 * (d) The input read as 2-byte steps makes an id list that is encoded, decoded and compared.
 * (e) The input is read as a packed chunk value with its first timestamp left out (CHUNK_T0KEY,
 *     store.c): counting and decoding it never crash or overread.
 * (f) The input's bytes make samples that are packed; the chunk value's stripped form must
 *     count and decode to the same samples.
 * Any mismatch calls abort().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../storage/store_int.h"
#include "ag_pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_group: check failed at line %d: %s\n", __LINE__, #cond);      \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static void fuzz_decode(const uint8_t *data, size_t size)
{
    if (size < 1) return;
    uint64_t span = (uint64_t)(data[0] % GROUP_IDS) + 1, first = span + 1;
    ag_buf_t raw = AG_BUF_INIT;
    group_member_t *m = NULL;
    size_t n = 0, cap = 0;
    uint8_t *copy = malloc(size - 1 ? size - 1 : 1); /* exact size: ASan sees any overread */
    CHECK(copy);
    memcpy(copy, data + 1, size - 1);
    if (group_decode(copy, size - 1, first, span, &raw, &m, &n, &cap) == AG_OK) {
        CHECK(n >= 1 && n <= span);
        for (size_t i = 0; i < n; i++) {
            CHECK(m[i].id >= first && m[i].id < first + span);
            CHECK(i == 0 || m[i].id > m[i - 1].id);
            CHECK(m[i].val >= (const unsigned char *)raw.data &&
                  m[i].val + m[i].len <= (const unsigned char *)raw.data + raw.len);
        }
    }
    free(copy);
    free(m);
    ag_buf_free(&raw);
}

static void fuzz_roundtrip(const uint8_t *data, size_t size)
{
    group_member_t in[GROUP_IDS];
    size_t n = 0, pos = 0;
    uint64_t first = 129, id = first - 1;
    while (pos < size && n < GROUP_IDS) {
        uint8_t h = data[pos++];
        uint64_t step = (h & 3) + 1;
        size_t len = h >> 2;
        if (id + step >= first + GROUP_IDS) break;
        if (len > size - pos) len = size - pos;
        id += step;
        in[n++] = (group_member_t){id, data + pos, len};
        pos += len;
    }
    if (!n) return;
    ag_buf_t enc = AG_BUF_INIT, raw = AG_BUF_INIT;
    group_member_t *out = NULL;
    size_t nout = 0, cap = 0;
    CHECK(group_encode(in, n, first, &enc) == AG_OK);
    CHECK(group_decode(enc.data, enc.len, first, GROUP_IDS, &raw, &out, &nout, &cap) == AG_OK);
    CHECK(nout == n);
    for (size_t i = 0; i < n; i++) {
        CHECK(out[i].id == in[i].id && out[i].len == in[i].len);
        CHECK(in[i].len == 0 || memcmp(out[i].val, in[i].val, in[i].len) == 0);
    }
    free(out);
    ag_buf_free(&enc);
    ag_buf_free(&raw);
}

typedef struct ids {
    uint64_t v[4096];
    size_t n;
} ids_t;

static int take_id(void *ctx, uint64_t id)
{
    ids_t *l = ctx;
    CHECK(l->n == 0 || id > l->v[l->n - 1]);
    if (l->n == sizeof l->v / sizeof l->v[0]) return 1; /* enough: stop the walk */
    l->v[l->n++] = id;
    return 0;
}

static void fuzz_postings(const uint8_t *data, size_t size)
{
    static ids_t got, want;
    got.n = want.n = 0;
    uint8_t *copy = malloc(size ? size : 1);
    CHECK(copy);
    if (size) memcpy(copy, data, size);
    (void)cold_postings_each(copy, size, take_id, &got);
    free(copy);
    uint64_t id = 0;
    for (size_t i = 0; i + 1 < size && want.n < 4096; i += 2) {
        id += (uint64_t)(data[i] | data[i + 1] << 8) + 1;
        want.v[want.n++] = i == 0 && data[0] == 0xff ? id << 40 : id; /* some long varints */
        id = want.v[want.n - 1];
    }
    if (!want.n) return;
    ag_buf_t enc = AG_BUF_INIT;
    CHECK(cold_postings_encode(want.v, want.n, &enc) == AG_OK);
    got.n = 0;
    CHECK(cold_postings_each(enc.data, enc.len, take_id, &got) == AG_OK);
    CHECK(got.n == want.n && memcmp(got.v, want.v, want.n * sizeof want.v[0]) == 0);
    ag_buf_free(&enc);
}

static void fuzz_chunk_value(const uint8_t *data, size_t size)
{
    if (size < 2) return;
    static ag_sample_pt_t out[AG_PACK_MAX_SAMPLES];
    uint8_t *v = malloc(size);
    CHECK(v);
    memcpy(v, data, size);
    v[0] = (uint8_t)(CHUNK_PACKED | CHUNK_T0KEY | (v[0] & CHUNK_OPEN));
    int64_t kmint = (int64_t)(data[1] * 1000003LL) - 500000000LL;
    size_t count = chunk_val_count(v, size, kmint), n = 0;
    int64_t maxt;
    (void)chunk_val_maxt(v, size, kmint, &maxt);
    if (count && chunk_val_decode(v, size, kmint, INT64_MIN, INT64_MAX, out, &n) == AG_OK)
        CHECK(n == count && out[0].t == kmint);
    free(v);
}

static void fuzz_strip(const uint8_t *data, size_t size)
{
    static ag_sample_pt_t in[512], got[512];
    size_t n = 0;
    int64_t t = (int64_t)(size ? data[0] : 0) * 86400000LL - 43200000000LL;
    for (size_t i = 1; i + 1 < size && n < 512; i += 2) {
        t += 1 + data[i] * 250;
        in[n].t = t;
        in[n].v = data[i + 1] & 0x80 ? (double)(data[i + 1] & 0x7f) / 100 : (double)data[i + 1];
        n++;
    }
    if (!n) return;
    ag_buf_t val = AG_BUF_INIT, st = AG_BUF_INIT;
    unsigned char flag = CHUNK_PACKED;
    ag_buf_append(&val, &flag, 1);
    CHECK(ag_pack_encode(in, n, &val) == AG_OK);
    CHECK(chunk_val_strip((const unsigned char *)val.data, val.len, in[0].t, &st));
    CHECK(st.len < val.len);
    const unsigned char *sv = (const unsigned char *)st.data;
    size_t m = 0;
    int64_t maxt;
    CHECK(chunk_val_count(sv, st.len, in[0].t) == n);
    CHECK(chunk_val_maxt(sv, st.len, in[0].t, &maxt) == AG_OK && maxt == in[n - 1].t);
    CHECK(chunk_val_decode(sv, st.len, in[0].t, INT64_MIN, INT64_MAX, got, &m) == AG_OK);
    CHECK(m == n && memcmp(got, in, n * sizeof in[0]) == 0);
    CHECK(!chunk_val_strip((const unsigned char *)val.data, val.len, in[0].t + 1, &st));
    ag_buf_free(&val);
    ag_buf_free(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_chunk_value(data, size);
    fuzz_strip(data, size);
    fuzz_decode(data, size);
    fuzz_roundtrip(data, size);
    fuzz_postings(data, size);
    return 0;
}
