/* fuzz_csv.c - libFuzzer target for the CSV reader and the forecast state loaders
 * (daemon/forecast/csv.c, hw.c, detect.c, tiny.c).
 *
 * Every input is used three ways:
 * (a) As CSV text, split at '\n' and fed line by line to ag_csv_line: no crash or out-of-bounds
 *     read (the lines are copied into exact-size buffers, so ASan sees any overrun); the result is
 *     1 (a row), 0 (header/blank) or AG_EINVAL with a message starting "line N:" for the right N
 *     and an offset inside the line; a row's ts/val fields lie inside the line and re-parse to the
 *     same time and value bits; the line counter advances by one per line.
 * (b) As saved state for ag_detect_load, ag_hw_load, ag_tiny_load and ag_scaler_load: any failure is a listed
 *     code with nothing returned; whatever loads survives a few hundred steps with scores in
 *     [0, 1] and finite forecasts, and saves to bytes that load again to the same bytes.
 * (c) As samples (8-byte records: a 16-bit time step, a 48-bit value pattern) for a detector and a
 *     tiny detector: scores stay in [0, 1]; a detector saved half way and loaded continues with
 *     bit-identical scores.
 * Any violation calls abort().
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_buf.h"
#include "ag_csv.h"
#include "ag_err.h"
#include "ag_forecast.h"
#include "ag_scaler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_csv: check failed at line %d: %s\n", __LINE__, #cond);         \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static uint64_t vbits(double v) { uint64_t u; memcpy(&u, &v, 8); return u; }

static void fuzz_text(const uint8_t *data, size_t size)
{
    ag_csv_t r;
    ag_csv_init(&r);
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n') continue;
        size_t n = i - start;
        char *line = malloc(n ? n : 1);
        CHECK(line);
        if (n) memcpy(line, data + start, n);
        long before = r.line;
        ag_csv_row_t row;
        ag_errmsg_t e = {{0}, -7};
        int rc = ag_csv_line(&r, line, n, &row, &e);
        CHECK(r.line == before + 1);
        if (rc == 1) {
            CHECK(r.have_header);
            CHECK(row.ts >= line && row.ts + row.ts_len <= line + n);
            CHECK(row.val >= line && row.val + row.val_len <= line + n);
            int64_t t;
            double v;
            CHECK(ag_csv_parse_time(row.ts, row.ts_len, &t) == AG_OK && t == row.t_ms);
            CHECK(ag_csv_parse_value(row.val, row.val_len, &v) == AG_OK);
            CHECK(vbits(v) == vbits(row.v) || (isnan(v) && isnan(row.v)));
        } else if (rc != 0) {
            CHECK(rc == AG_EINVAL);
            char want[32];
            snprintf(want, sizeof want, "line %ld:", r.line);
            CHECK(strncmp(e.msg, want, strlen(want)) == 0);
            CHECK(e.offset >= 0 && (size_t)e.offset <= n);
        }
        free(line);
        start = i + 1;
    }
    ag_errmsg_t e;
    int rc = ag_csv_finish(&r, &e);
    CHECK(rc == (r.have_header ? AG_OK : AG_EINVAL));
}

static void exercise(ag_detect_t *d)
{
    const ag_hw_t *m = ag_detect_model(d);
    int64_t t = ag_hw_last_time(m);
    if (t == INT64_MIN || t > INT64_MAX / 2) t = 0;
    for (int i = 0; i < 300; i++) {
        t += 300000;
        ag_detect_result_t r;
        ag_detect_step(d, t, 100 + 10 * sin(i * 0.1) + (i == 150 ? 1e6 : 0), &r);
        CHECK(r.score >= 0 && r.score <= 1);
        ag_hw_forecast_t f;
        if (ag_hw_forecast(m, t + 3600000, 0.95, &f) == AG_OK)
            CHECK(isfinite(f.mean) && isfinite(f.lower) && isfinite(f.upper));
    }
}

static void fuzz_state(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    CHECK(copy);
    if (size) memcpy(copy, data, size);
    ag_detect_t *d = NULL;
    ag_errmsg_t e;
    int rc = ag_detect_load(copy, size, &d, &e);
    if (rc) {
        CHECK(rc == AG_ECORRUPT || rc == AG_EUNSUPPORTED || rc == AG_ENOMEM);
        CHECK(d == NULL);
    } else {
        ag_buf_t a = AG_BUF_INIT, b = AG_BUF_INIT;
        CHECK(ag_detect_save(d, &a) == AG_OK);
        ag_detect_t *d2 = NULL;
        CHECK(ag_detect_load((const uint8_t *)a.data, a.len, &d2, &e) == AG_OK);
        CHECK(ag_detect_save(d2, &b) == AG_OK);
        CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        exercise(d);
        ag_detect_free(d2);
        ag_detect_free(d);
        ag_buf_free(&a);
        ag_buf_free(&b);
    }
    ag_hw_t *m = NULL;
    size_t used = 0;
    rc = ag_hw_load(copy, size, &used, &m, &e);
    if (rc) {
        CHECK(rc == AG_ECORRUPT || rc == AG_EUNSUPPORTED || rc == AG_ENOMEM);
        CHECK(m == NULL);
    } else {
        CHECK(used <= size);
        double y, s;
        if (ag_hw_predict(m, ag_hw_last_time(m), &y, &s) == AG_OK) CHECK(isfinite(y) && isfinite(s));
        ag_hw_free(m);
    }
    ag_tiny_t t;
    if (ag_tiny_load(copy, size, &t) == AG_OK) {
        for (int i = 0; i < 50; i++) {
            double sc = ag_tiny_step(&t, t.t_last + 1000, (double)i);
            CHECK(sc >= 0 && sc <= 1);
        }
    }
    /* a scaler's saved state (ag_scaler.h): loads whole or not at all, then recommends within
     * the policy's bounds and saves to bytes that load again */
    ag_scaler_policy_t p;
    ag_scaler_policy_default(&p);
    p.capacity = 10;
    p.interval_ms = 60000;
    ag_scaler_t *sc = NULL;
    rc = ag_scaler_load(copy, size, &p, &sc, &e);
    if (rc) {
        CHECK(rc == AG_ECORRUPT || rc == AG_EUNSUPPORTED || rc == AG_ENOMEM || rc == AG_EINVAL);
        CHECK(sc == NULL);
    } else {
        ag_buf_t a = AG_BUF_INIT;
        CHECK(ag_scaler_save(sc, &a) == AG_OK);
        ag_scaler_t *sc2 = NULL;
        CHECK(ag_scaler_load((const uint8_t *)a.data, a.len, &p, &sc2, &e) == AG_OK);
        int64_t t0 = ag_hw_last_time(ag_detect_model(ag_scaler_detector(sc)));
        if (t0 == INT64_MIN || t0 > INT64_MAX / 2) t0 = 0;
        for (int i = 1; i <= 30; i++) {
            ag_scaler_result_t r;
            if (ag_scaler_step(sc, t0 + i * 60000LL, 5.0 * i, &r) == AG_OK)
                CHECK(r.desired >= p.min_replicas && r.desired <= p.max_replicas);
        }
        ag_scaler_free(sc2);
        ag_scaler_free(sc);
        ag_buf_free(&a);
    }
    free(copy);
}

static double sample_value(uint64_t p)
{
    switch (p & 7) {
    case 0: { /* raw bits: NaN payloads, stale markers, Inf, huge */
        uint64_t u = p >> 3 | (p & 0x38) << 58;
        double v;
        memcpy(&v, &u, 8);
        return v;
    }
    case 1: return (double)(p >> 40); /* small integers: repeats */
    default: return 1000 + (double)(int32_t)(p >> 16) / 1e6;
    }
}

static void fuzz_samples(const uint8_t *data, size_t size)
{
    size_t n = size / 8;
    if (n < 2) return;
    ag_detect_config_t c;
    ag_detect_config_default(&c, 60000);
    ag_detect_t *a = NULL, *b = NULL;
    CHECK(ag_detect_new(&c, &a) == AG_OK);
    ag_tiny_t tiny;
    ag_tiny_init(&tiny);
    int64_t t = 1767571200000LL;
    size_t half = n / 2;
    ag_buf_t buf = AG_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        uint64_t p = 0;
        for (int k = 7; k >= 0; k--) p = p << 8 | data[8 * i + (size_t)k];
        int16_t dt = (int16_t)(p & 0xffff);
        t += (int64_t)dt * 1000;
        double v = sample_value(p >> 16);
        ag_detect_result_t ra, rb;
        ag_detect_step(a, t, v, &ra);
        CHECK(ra.score >= 0 && ra.score <= 1 && isfinite(ra.forecast) && isfinite(ra.sigma));
        if (b) {
            ag_detect_step(b, t, v, &rb);
            CHECK(vbits(ra.score) == vbits(rb.score));
        }
        double ts = ag_tiny_step(&tiny, t, v);
        CHECK(ts >= 0 && ts <= 1);
        if (i == half) {
            CHECK(ag_detect_save(a, &buf) == AG_OK);
            CHECK(ag_detect_load((const uint8_t *)buf.data, buf.len, &b, NULL) == AG_OK);
            uint8_t tb[AG_TINY_SAVED_SIZE];
            ag_tiny_save(&tiny, tb);
            ag_tiny_t t2;
            CHECK(ag_tiny_load(tb, sizeof tb, &t2) == AG_OK);
            CHECK(memcmp(&t2, &tiny, sizeof t2) == 0);
        }
    }
    ag_buf_free(&buf);
    ag_detect_free(a);
    ag_detect_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_text(data, size);
    fuzz_state(data, size);
    fuzz_samples(data, size);
    return 0;
}
