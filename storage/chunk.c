/* chunk.c - the Gorilla-style sample codec (see ag_chunk.h).
 *
 * Byte layout
 * -----------
 *   bytes 0..1   sample count, big-endian (0..65535)
 *   bytes 2..    a bit stream, most significant bit of each byte first
 *
 * Bit stream, per sample (t = int64 millisecond timestamp, v = the raw 64 bits of the double,
 * copied with memcpy and never normalised, so NaN payloads / the stale marker / -0.0 survive):
 *
 *   sample 0   t as 64 bits (two's complement), then v as 64 bits.
 *   sample 1   delta = t1 - t0, an unsigned value >= 1, in a prefix bucket:
 *                '0'    + 14 bits      delta < 2^14   (16.4 s; covers 10 s and 15 s scrapes)
 *                '10'   + 17 bits      delta < 2^17   (131 s)
 *                '110'  + 20 bits      delta < 2^20   (17.5 min)
 *                '1110' + 32 bits      delta < 2^32   (49.7 days)
 *                '1111' + 64 bits      anything
 *              then v XOR-encoded (below).
 *   sample n   dod = delta_n - delta_{n-1} (n >= 2) as a two's complement field:
 *                '0'                   dod == 0
 *                '10'   + 14 bits      -2^13 <= dod < 2^13
 *                '110'  + 17 bits      -2^16 <= dod < 2^16
 *                '1110' + 20 bits      -2^19 <= dod < 2^19
 *                '1111' + 64 bits      anything
 *              then v XOR-encoded.
 *
 *   XOR value encoding, x = v_n ^ v_{n-1}:
 *                '0'                   x == 0 (same bits as the previous value)
 *                '10'   + w bits       x fits the current window (leading >= L, trailing >= T);
 *                                      the w = 64 - L - T bits between are stored
 *                '11'   + 5 bits L + 6 bits w (64 stored as 0) + w bits
 *                                      opens a new window: L = min(clz(x), 31), T = 64 - L - w
 *              There is no window before the first XOR, so '10' is invalid for sample 1. The
 *              encoder opens a new window instead of reusing one when that is strictly shorter
 *              (a single wide XOR would otherwise bloat every later sample).
 *
 * Timestamp arithmetic is done on uint64 with wrap-around: for strictly increasing int64
 * timestamps the true delta lies in [1, 2^64 - 1] and is exactly (uint64)t_n - (uint64)t_{n-1},
 * so INT64_MIN followed by INT64_MAX is representable (via the 64-bit escape buckets). dod is the
 * wrapping difference of two such deltas, read as a signed 64-bit value for bucket selection.
 *
 * Padding: the unused low bits of the last byte are set to 1, not 0. A sample needs at least 2
 * bits, so zero padding could decode as phantom samples ("same delta, same value") if a corrupt
 * header claimed more samples than were written. With one-bits an extra sample would start with
 * a '1111' escape that needs 64 more bits than the padding has, so any header count larger than
 * what the stream holds is reported as AG_ECORRUPT. Decoders ignore the padding either way.
 *
 * Decoder safety: every read checks the remaining bits first; the iterator never reads outside
 * data[0..len). It rejects (AG_ECORRUPT, sticky) truncation, a window-reuse before any window,
 * L + w > 64, and any delta that is 0 or would carry the timestamp past INT64_MAX, so a
 * successfully decoded chunk always has strictly increasing timestamps and can be re-appended.
 * Non-canonical encodings the encoder never produces (a small delta in a wide bucket, leading
 * zeros inside a window) are accepted: they decode to well-defined samples.
 *
 * Encoder memory: the buffer grows geometrically; before writing a sample the encoder reserves
 * room for the worst case (MAX_SAMPLE_BITS), so nothing can fail once bits are being written
 * and every error leaves the encoder unchanged.
 */
#include "ag_chunk.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ag_err.h"
#include "bits_int.h"

#define HEADER_BITS 16
/* Worst case for one sample: 4 + 64 (dod escape) + 2 + 5 + 6 + 64 (new XOR window). Sample 0
 * needs 128, sample 1 at most 68 + 77. */
#define MAX_SAMPLE_BITS 145
#define INITIAL_CAP 64
/* Iterator bitpos value marking the sticky error state (no valid bitpos can reach it because
 * iter_init clamps len to SIZE_MAX / 8). */
#define ITER_FAILED SIZE_MAX

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t double_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double bits_double(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* ---- encoder ------------------------------------------------------------------------------ */

void ag_chunk_enc_init(ag_chunk_enc_t *e)
{
    memset(e, 0, sizeof *e);
    e->bits = HEADER_BITS;
    e->leading = NO_WINDOW;
}

void ag_chunk_enc_free(ag_chunk_enc_t *e)
{
    free(e->buf);
    ag_chunk_enc_init(e);
}

/* Makes room for one worst-case sample. On failure nothing in `e` changes. */
static int enc_reserve(ag_chunk_enc_t *e)
{
    size_t need = (e->bits + MAX_SAMPLE_BITS + 7) / 8;
    if (e->cap >= need) return AG_OK;
    size_t ncap = e->cap ? e->cap : INITIAL_CAP;
    while (ncap < need) ncap *= 2;
    uint8_t *nb = realloc(e->buf, ncap);
    if (!nb) return AG_ENOMEM;
    memset(nb + e->cap, 0, ncap - e->cap);
    e->buf = nb;
    e->cap = ncap;
    return AG_OK;
}

int ag_chunk_enc_append(ag_chunk_enc_t *e, int64_t t, double v)
{
    if (e->count > 0 && t <= e->last_t) return AG_EINVAL;
    if (e->count >= AG_CHUNK_MAX_SAMPLES) return AG_ELIMIT;
    int rc = enc_reserve(e);
    if (rc != AG_OK) return rc;

    /* From here on nothing can fail. */
    uint64_t vbits = double_bits(v);
    size_t pos = e->bits;
    if (e->count == 0) {
        put_bits(e->buf, &pos, (uint64_t)t, 64);
        put_bits(e->buf, &pos, vbits, 64);
        e->first_t = t;
        e->last_delta = 0;
        e->leading = NO_WINDOW;
        e->trailing = 0;
    } else {
        uint64_t d = (uint64_t)t - (uint64_t)e->last_t;
        if (e->count == 1) put_delta(e->buf, &pos, d);
        else put_dod(e->buf, &pos, d - e->last_delta);
        put_xor(e->buf, &pos, vbits, e->last_vbits, &e->leading, &e->trailing);
        e->last_delta = d;
    }
    e->bits = pos;
    e->last_t = t;
    e->last_vbits = vbits;
    e->count++;
    e->buf[0] = (uint8_t)(e->count >> 8);
    e->buf[1] = (uint8_t)(e->count & 0xff);
    if (pos & 7) e->buf[pos >> 3] |= (uint8_t)(0xffu >> (pos & 7)); /* one-bit padding */
    return AG_OK;
}

const uint8_t *ag_chunk_enc_bytes(const ag_chunk_enc_t *e, size_t *len)
{
    *len = e->count ? (e->bits + 7) / 8 : 0;
    return e->buf;
}

int ag_chunk_enc_load(ag_chunk_enc_t *e, const uint8_t *data, size_t len)
{
    ag_chunk_enc_init(e);
    if (len == 0) return AG_OK; /* what ag_chunk_enc_bytes returns for an empty encoder */
    ag_chunk_iter_t it;
    int rc = ag_chunk_iter_init(&it, data, len);
    if (rc != AG_OK) return rc;
    int64_t t;
    double v;
    while ((rc = ag_chunk_iter_next(&it, &t, &v)) == 1) {
        rc = ag_chunk_enc_append(e, t, v);
        if (rc != AG_OK) {
            ag_chunk_enc_free(e);
            /* The iterator guarantees increasing timestamps and at most 65535 samples, so only
             * AG_ENOMEM is expected here. */
            return rc == AG_ENOMEM ? AG_ENOMEM : AG_ECORRUPT;
        }
    }
    if (rc != 0) {
        ag_chunk_enc_free(e);
        return AG_ECORRUPT;
    }
    return AG_OK;
}

/* ---- decoder ------------------------------------------------------------------------------ */

uint16_t ag_chunk_count(const uint8_t *data, size_t len)
{
    if (!data || len < 2) return 0;
    return (uint16_t)(((unsigned)data[0] << 8) | data[1]);
}

int ag_chunk_iter_init(ag_chunk_iter_t *it, const uint8_t *data, size_t len)
{
    memset(it, 0, sizeof *it);
    it->leading = NO_WINDOW;
    if (!data || len < 2) {
        it->bitpos = ITER_FAILED;
        return AG_ECORRUPT;
    }
    if (len > SIZE_MAX / 8 - 1) len = SIZE_MAX / 8 - 1; /* keeps len * 8 and ITER_FAILED apart */
    it->data = data;
    it->len = len;
    it->bitpos = HEADER_BITS;
    it->count = ag_chunk_count(data, len);
    return AG_OK;
}

/* Reads n (0..64) bits MSB first into *out; false (and nothing read) if fewer remain. */
static bool get_bits(ag_chunk_iter_t *it, unsigned n, uint64_t *out)
{
    size_t total = it->len * 8;
    if (it->bitpos > total || total - it->bitpos < n) return false;
    size_t pos = it->bitpos, first = pos >> 3;
    if (n && n <= 56 && first + 8 <= it->len) {
        /* Fast path: one big-endian 64-bit load holds all n bits (shift <= 7, n <= 56). */
        const uint8_t *d = it->data + first;
        uint64_t w = (uint64_t)d[0] << 56 | (uint64_t)d[1] << 48 | (uint64_t)d[2] << 40 |
                     (uint64_t)d[3] << 32 | (uint64_t)d[4] << 24 | (uint64_t)d[5] << 16 |
                     (uint64_t)d[6] << 8 | (uint64_t)d[7];
        *out = (w << (pos & 7)) >> (64 - n);
        it->bitpos = pos + n;
        return true;
    }
    uint64_t v = 0;
    while (n > 0) {
        unsigned room = 8 - (unsigned)(pos & 7);
        unsigned take = n < room ? n : room;
        unsigned byte = it->data[pos >> 3];
        unsigned chunk = (byte >> (room - take)) & ((1u << take) - 1);
        v = (v << take) | chunk; /* take <= 8 */
        pos += take;
        n -= take;
    }
    it->bitpos = pos;
    *out = v;
    return true;
}

/* Counts up to `max` leading one-bits of a unary bucket prefix, consuming the terminating zero
 * when there is one. */
static bool get_prefix(ag_chunk_iter_t *it, unsigned max, unsigned *ones)
{
    size_t total = it->len * 8;
    if (it->bitpos <= total && total - it->bitpos >= max) {
        /* Peek all `max` bits at once and count the leading ones. */
        size_t save = it->bitpos;
        uint64_t b;
        if (!get_bits(it, max, &b)) return false;
        unsigned k = 0;
        while (k < max && ((b >> (max - 1 - k)) & 1)) k++;
        it->bitpos = save + k + (k < max ? 1 : 0);
        *ones = k;
        return true;
    }
    unsigned n = 0;
    while (n < max) {
        uint64_t b;
        if (!get_bits(it, 1, &b)) return false;
        if (!b) break;
        n++;
    }
    *ones = n;
    return true;
}

static bool get_delta(ag_chunk_iter_t *it, uint64_t *d)
{
    static const unsigned widths[5] = {14, 17, 20, 32, 64};
    unsigned ones;
    if (!get_prefix(it, 4, &ones)) return false;
    return get_bits(it, widths[ones], d);
}

static bool get_dod(ag_chunk_iter_t *it, uint64_t *dod)
{
    static const unsigned widths[5] = {0, 14, 17, 20, 64};
    unsigned ones;
    if (!get_prefix(it, 4, &ones)) return false;
    if (ones == 0) {
        *dod = 0;
        return true;
    }
    uint64_t u;
    if (!get_bits(it, widths[ones], &u)) return false;
    *dod = sign_extend(u, widths[ones]);
    return true;
}

static bool get_xor(ag_chunk_iter_t *it)
{
    uint64_t b, u;
    if (!get_bits(it, 1, &b)) return false;
    if (!b) return true; /* value unchanged */
    if (!get_bits(it, 1, &b)) return false;
    if (b) {
        uint64_t lz, sig;
        if (!get_bits(it, 5, &lz) || !get_bits(it, 6, &sig)) return false;
        if (sig == 0) sig = 64;
        if (lz + sig > 64) return false;
        it->leading = (uint8_t)lz;
        it->trailing = (uint8_t)(64 - lz - sig);
    } else if (it->leading == NO_WINDOW) {
        return false; /* window reuse before any window was opened */
    }
    unsigned w = 64u - it->leading - it->trailing;
    if (!get_bits(it, w, &u)) return false;
    it->vbits ^= u << it->trailing; /* trailing <= 63 since w >= 1 */
    return true;
}

static int iter_fail(ag_chunk_iter_t *it)
{
    it->bitpos = ITER_FAILED;
    return AG_ECORRUPT;
}

int ag_chunk_iter_next(ag_chunk_iter_t *it, int64_t *t, double *v)
{
    if (it->bitpos == ITER_FAILED) return AG_ECORRUPT;
    if (it->i >= it->count) return 0;
    if (it->i == 0) {
        uint64_t ut, vb;
        if (!get_bits(it, 64, &ut) || !get_bits(it, 64, &vb)) return iter_fail(it);
        it->t = u64_to_i64(ut);
        it->vbits = vb;
        it->delta = 0;
        it->leading = NO_WINDOW;
        it->trailing = 0;
    } else {
        uint64_t d;
        if (it->i == 1) {
            if (!get_delta(it, &d)) return iter_fail(it);
        } else {
            uint64_t dod;
            if (!get_dod(it, &dod)) return iter_fail(it);
            d = it->delta + dod;
        }
        /* The new timestamp must be greater and must not pass INT64_MAX. */
        if (d == 0 || d > (uint64_t)INT64_MAX - (uint64_t)it->t) return iter_fail(it);
        if (!get_xor(it)) return iter_fail(it);
        it->t = u64_to_i64((uint64_t)it->t + d);
        it->delta = d;
    }
    it->i++;
    *t = it->t;
    *v = bits_double(it->vbits);
    return 1;
}

/* ---- bulk decoder -------------------------------------------------------------------------
 *
 * The query path decodes whole chunks into arrays, so this decoder keeps its state in locals
 * and reads through a 64-bit bit buffer refilled a word at a time, instead of going through the
 * iterator sample by sample. It accepts and rejects exactly what the iterator does (the fuzz
 * target fuzz_chunk compares the two on every input). */

int ag_chunk_decode(const uint8_t *data, size_t len, int64_t mint, int64_t maxt,
                    ag_sample_pt_t *out, size_t *n)
{
    *n = 0;
    if (!data || len < 2) return AG_ECORRUPT;
    unsigned count = ag_chunk_count(data, len), w = 0;
    if (!count) return AG_OK;
    bitrd_t b = {data + 2, data + len, 0, 0};
    uint64_t ut, vbits, delta = 0;
    if (!br_get64(&b, 64, &ut) || !br_get64(&b, 64, &vbits)) return AG_ECORRUPT;
    int64_t t = u64_to_i64(ut);
    unsigned leading = NO_WINDOW, trailing = 0;
    for (unsigned i = 0;;) {
        if (t > maxt) break;
        if (t >= mint) {
            out[w].t = t;
            memcpy(&out[w].v, &vbits, sizeof vbits);
            w++;
        }
        if (++i >= count) break;
        uint64_t d = delta;
        if (!br_step(&b, i, t, &d)) return AG_ECORRUPT;
        if (!br_xor(&b, &vbits, &leading, &trailing)) return AG_ECORRUPT;
        t = u64_to_i64((uint64_t)t + d);
        delta = d;
    }
    *n = w;
    return AG_OK;
}
