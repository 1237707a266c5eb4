/* hchunk.c - the in-memory head chunk codec (see ag_hchunk.h).
 *
 * Byte layout
 * -----------
 *   bytes 0..1   sample count, big-endian
 *   byte  2      mode: 0 = XOR values, 1 + k = decimal values with scale k (0..9)
 *   bytes 3..    a bit stream, most significant bit of each byte first (bits_int.h's writer)
 *
 *   sample 0   t as 64 bits, v as 64 bits (every mode). In decimal mode its mantissa m0 is
 *              mant(v0) when v0 reproduces at k, else 0 (both sides compute the same).
 *   sample n   the timestamp exactly as chunk.c writes it (delta bucket for n = 1, then
 *              delta-of-delta buckets), then the value:
 *     XOR mode      chunk.c's XOR encoding against the previous value.
 *     decimal mode  dd = (m_n - m_prev) - d_prev in wrapping uint64 arithmetic, where m_prev is
 *                   the last mantissa stored and d_prev the delta that led to it (0 at first):
 *                     '0'                  dd == 0
 *                     '10'    + 7 bits     -2^6 <= dd < 2^6
 *                     '110'   + 14 bits    -2^13 <= dd < 2^13
 *                     '1110'  + 30 bits    -2^29 <= dd < 2^29
 *                     '11110' + 64 bits    any dd
 *                     '11111' + 64 bits    an exception: the raw value bits; m_prev and d_prev
 *                                          stay as they were
 *   mant(v) at scale k is the integer m with |v * 10^k| < 2^53 and (double)m / 10^k (k > 0) or
 *   (double)m (k == 0) equal to v bit for bit; the decoder computes values the same way.
 *
 * Adapting: the first sample picks the smallest scale that reproduces it (XOR mode if none
 * does). A later value that needs a larger scale re-encodes the whole chunk at that scale; a
 * value that no scale reproduces is an exception, unless exceptions already make up more than a
 * quarter of the chunk (and at least 4), in which case the chunk is re-encoded in XOR mode for
 * good. Scales only grow and XOR is final, so a chunk re-encodes at most 10 times.
 *
 * Size on node_exporter-shaped values (120 samples at 15 s): an integer counter with a steady
 * rate 2 bits a sample, a two-decimal gauge about 10, against Gorilla's 14 and 54 (the XOR of
 * two nearby decimals is mostly mantissa noise).
 */
#include "ag_hchunk.h"

#include <stdlib.h>
#include <string.h>

#include "ag_err.h"
#include "bits_int.h"

#define HDR_BYTES 3
#define MAX_K 9
/* Worst case for one sample after the first: 4 + 64 timestamp bits + 2 + 11 + 64 XOR bits
 * (decimal: 5 + 64); the first needs 128. */
#define MAX_SAMPLE_BITS 145
#define MANT_BOUND 9007199254740992.0 /* 2^53 */

static const double p10[MAX_K + 1] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

static uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double mant_value(int64_t m, unsigned k) { return k ? (double)m / p10[k] : (double)m; }

/* The mantissa of the value with bits vbits at scale k, when there is one. */
static bool mant_of(uint64_t vbits, unsigned k, int64_t *m)
{
    double v;
    memcpy(&v, &vbits, sizeof v);
    double x = v * p10[k];
    if (!(x > -MANT_BOUND && x < MANT_BOUND)) return false; /* also NaN */
    int64_t mi = (int64_t)(x < 0 ? x - 0.5 : x + 0.5);
    if (dbits(mant_value(mi, k)) != vbits) return false;
    *m = mi;
    return true;
}

/* The smallest scale that reproduces the value, or -1. */
static int min_scale(uint64_t vbits)
{
    int64_t m;
    for (unsigned k = 0; k <= MAX_K; k++)
        if (mant_of(vbits, k, &m)) return (int)k;
    return -1;
}

/* ---- encoder ------------------------------------------------------------------------------ */

void ag_hchunk_init(ag_hchunk_t *e)
{
    memset(e, 0, sizeof *e);
    e->bits = HDR_BYTES * 8;
    e->leading = NO_WINDOW;
}

void ag_hchunk_free(ag_hchunk_t *e)
{
    free(e->buf);
    ag_hchunk_init(e);
}

/* Room for one worst-case sample; the buffer grows by half, as chunks are mostly small. */
static int reserve(ag_hchunk_t *e)
{
    size_t need = (e->bits + MAX_SAMPLE_BITS + 7) / 8;
    if (e->cap >= need) return AG_OK;
    size_t ncap = e->cap ? e->cap : 48;
    while (ncap < need) ncap += ncap / 2;
    uint8_t *nb = realloc(e->buf, ncap);
    if (!nb) return AG_ENOMEM;
    memset(nb + e->cap, 0, ncap - e->cap);
    e->buf = nb;
    e->cap = (uint32_t)ncap;
    return AG_OK;
}

static void put_dd(uint8_t *buf, size_t *pos, uint64_t dd)
{
    if (dd == 0) {
        put_bits(buf, pos, 0x0, 1);
    } else if (fits_signed(dd, 7)) {
        put_bits(buf, pos, 0x2, 2);
        put_bits(buf, pos, dd & low_mask(7), 7);
    } else if (fits_signed(dd, 14)) {
        put_bits(buf, pos, 0x6, 3);
        put_bits(buf, pos, dd & low_mask(14), 14);
    } else if (fits_signed(dd, 30)) {
        put_bits(buf, pos, 0xe, 4);
        put_bits(buf, pos, dd & low_mask(30), 30);
    } else {
        put_bits(buf, pos, 0x1e, 5);
        put_bits(buf, pos, dd, 64);
    }
}

static int reencode(ag_hchunk_t *e, int64_t t, uint64_t vbits, uint8_t mode);

int ag_hchunk_append(ag_hchunk_t *e, int64_t t, double v)
{
    if (e->count > 0 && t <= e->last_t) return AG_EINVAL;
    if (e->count >= AG_HCHUNK_MAX_SAMPLES) return AG_ELIMIT;
    uint64_t vbits = dbits(v);
    int64_t m = 0;
    bool fits = e->count > 0 && e->mode > 0 && mant_of(vbits, e->mode - 1u, &m);
    if (e->count > 0 && e->mode > 0 && !fits && !e->fixed) {
        int kv = min_scale(vbits);
        if (kv > (int)e->mode - 1) return reencode(e, t, vbits, (uint8_t)(1 + kv));
        if (e->nexc >= 4 && (e->nexc + 1u) * 4 > e->count) return reencode(e, t, vbits, 0);
    }
    int rc = reserve(e);
    if (rc != AG_OK) return rc;

    /* From here on nothing can fail. */
    size_t pos = e->bits;
    if (e->count == 0) {
        if (!e->fixed) {
            int k = min_scale(vbits);
            e->mode = k < 0 ? 0 : (uint8_t)(1 + k);
        }
        put_bits(e->buf, &pos, (uint64_t)t, 64);
        put_bits(e->buf, &pos, vbits, 64);
        e->first_t = t;
        e->last_delta = 0;
        e->leading = NO_WINDOW;
        e->trailing = 0;
        e->last_d = 0;
        e->last_m = 0;
        if (e->mode > 0 && mant_of(vbits, e->mode - 1u, &m)) e->last_m = (uint64_t)m;
    } else {
        uint64_t d = (uint64_t)t - (uint64_t)e->last_t;
        if (e->count == 1) put_delta(e->buf, &pos, d);
        else put_dod(e->buf, &pos, d - e->last_delta);
        e->last_delta = d;
        if (e->mode == 0) {
            put_xor(e->buf, &pos, vbits, e->last_vbits, &e->leading, &e->trailing);
        } else if (fits) {
            uint64_t delta = (uint64_t)m - e->last_m;
            put_dd(e->buf, &pos, delta - e->last_d);
            e->last_d = delta;
            e->last_m = (uint64_t)m;
        } else {
            put_bits(e->buf, &pos, 0x1f, 5);
            put_bits(e->buf, &pos, vbits, 64);
            e->nexc++;
        }
    }
    e->bits = (uint32_t)pos;
    e->last_t = t;
    e->last_vbits = vbits;
    e->count++;
    e->buf[0] = (uint8_t)(e->count >> 8);
    e->buf[1] = (uint8_t)(e->count & 0xff);
    e->buf[2] = e->mode;
    return AG_OK;
}

/* Encodes the chunk's samples plus (t, vbits) again in `mode`; e changes only on success. */
static int reencode(ag_hchunk_t *e, int64_t t, uint64_t vbits, uint8_t mode)
{
    size_t n = e->count, len, got;
    ag_sample_pt_t *tmp = malloc((n + 1) * sizeof *tmp);
    if (!tmp) return AG_ENOMEM;
    const uint8_t *b = ag_hchunk_bytes(e, &len);
    if (ag_hchunk_decode(b, len, INT64_MIN, INT64_MAX, tmp, &got) || got != n) {
        free(tmp);
        return AG_ECORRUPT; /* our own bytes: not expected */
    }
    tmp[n].t = t;
    memcpy(&tmp[n].v, &vbits, sizeof vbits);
    ag_hchunk_t ne;
    ag_hchunk_init(&ne);
    ne.fixed = true;
    ne.mode = mode;
    int rc = AG_OK;
    for (size_t i = 0; i <= n && rc == AG_OK; i++) rc = ag_hchunk_append(&ne, tmp[i].t, tmp[i].v);
    free(tmp);
    if (rc != AG_OK) {
        ag_hchunk_free(&ne);
        return rc;
    }
    ne.fixed = false;
    ag_hchunk_free(e);
    *e = ne;
    return AG_OK;
}

const uint8_t *ag_hchunk_bytes(const ag_hchunk_t *e, size_t *len)
{
    *len = e->count ? (e->bits + 7) / 8 : 0;
    return e->buf;
}

/* ---- decoder ------------------------------------------------------------------------------ */

size_t ag_hchunk_count(const uint8_t *d, size_t len)
{
    if (!d || len < HDR_BYTES) return 0;
    return (size_t)d[0] << 8 | d[1];
}

int ag_hchunk_decode(const uint8_t *d, size_t len, int64_t mint, int64_t maxt,
                     ag_sample_pt_t *out, size_t *n)
{
    *n = 0;
    if (!d || len < HDR_BYTES || d[2] > MAX_K + 1) return AG_ECORRUPT;
    size_t count = ag_hchunk_count(d, len), w = 0;
    if (!count) return AG_OK;
    unsigned mode = d[2], k = mode ? mode - 1 : 0;
    bitrd_t b = {d + HDR_BYTES, d + len, 0, 0};
    uint64_t ut, vbits, delta = 0, last_m = 0, last_d = 0;
    if (!br_get64(&b, 64, &ut) || !br_get64(&b, 64, &vbits)) return AG_ECORRUPT;
    int64_t t = u64_to_i64(ut), m0;
    if (mode && mant_of(vbits, k, &m0)) last_m = (uint64_t)m0;
    unsigned leading = NO_WINDOW, trailing = 0;
    for (size_t i = 0;;) {
        if (t > maxt) break;
        if (t >= mint) {
            out[w].t = t;
            memcpy(&out[w].v, &vbits, sizeof vbits);
            w++;
        }
        if (++i >= count) break;
        uint64_t dt = delta, u;
        unsigned ones;
        /* The common samples, read from one look at the buffer: a regular timestamp ('0') and
         * a decimal delta-of-delta of 0 ('0') or of 7 bits ('10'), or an unchanged XOR value
         * ('0'). Anything else takes the general path below. */
        if (i >= 2) {
            if (b.n < 10) br_refill(&b);
            uint64_t top = b.buf;
            if (b.n >= 10 && !(top >> 63)) {
                unsigned used = 0;
                if (!(top >> 62 & 1)) {
                    used = 2;
                    if (mode) last_m += last_d;
                } else if (mode && !(top >> 61 & 1)) {
                    used = 10;
                    last_d += sign_extend(top >> 54 & 0x7f, 7);
                    last_m += last_d;
                }
                if (used) {
                    if (dt > (uint64_t)INT64_MAX - (uint64_t)t) return AG_ECORRUPT;
                    b.buf <<= used;
                    b.n -= used;
                    if (mode) vbits = dbits(mant_value(u64_to_i64(last_m), k));
                    t = u64_to_i64((uint64_t)t + dt);
                    continue;
                }
            }
        }
        if (!br_step(&b, i, t, &dt)) return AG_ECORRUPT;
        if (mode == 0) {
            if (!br_xor(&b, &vbits, &leading, &trailing)) return AG_ECORRUPT;
        } else {
            uint64_t dd = 0;
            bool exception = false;
            if (!br_prefix(&b, &ones)) return AG_ECORRUPT;
            if (ones >= 1 && ones <= 3) {
                static const unsigned vw[4] = {0, 7, 14, 30};
                if (!br_get(&b, vw[ones], &u)) return AG_ECORRUPT;
                dd = sign_extend(u, vw[ones]);
            } else if (ones == 4) {
                if (!br_get(&b, 1, &u)) return AG_ECORRUPT;
                exception = u != 0;
                if (!br_get64(&b, 64, &dd)) return AG_ECORRUPT;
            }
            if (exception) {
                vbits = dd;
            } else {
                last_d += dd;
                last_m += last_d;
                vbits = dbits(mant_value(u64_to_i64(last_m), k));
            }
        }
        t = u64_to_i64((uint64_t)t + dt);
        delta = dt;
    }
    *n = w;
    return AG_OK;
}
