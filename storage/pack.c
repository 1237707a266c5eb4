/* pack.c - the compact codec for sealed chunks (see ag_pack.h).
 *
 * Why this shape
 * --------------
 * Gorilla (chunk.c) must encode one sample at a time, so it cannot know that a whole chunk of
 * values are decimals with two digits or that every timestamp delta is 15000. A sealed chunk is
 * encoded once and read many times, so here the encoder looks at all samples, measures the exact
 * size of each representation and keeps the smallest, while the decoder only unpacks fixed-width
 * bit groups and runs prefix sums (no per-sample prefix codes, which is what makes Gorilla slow
 * to decode). Real metric values are mostly short decimals: stored as integer mantissas they
 * turn into small deltas (counters: constant, so 0 bits) that bit-pack tightly.
 *
 * Byte layout
 * -----------
 * One bit stream, least significant bit of each byte first; a field of k bits is stored with
 * its least significant bit first. "uvar" is an unsigned LEB128 varint whose bytes are 8-bit
 * fields of the stream (they happen to be byte-aligned in the header, not later), "svar" is a
 * uvar of the zigzag-mapped value. The stream ends with zero bits up to the byte boundary and
 * the pack ends exactly there.
 *
 *   8 bits   mode: 0x10 | tmode << 2 | vmode   (version 1; tmode 3 is invalid)
 *   uvar     n, the sample count, 1..65535
 *   svar     t0, the first timestamp
 *   timestamps, by tmode (delta d_i = t_i - t_{i-1}, i >= 1, as wrapping uint64):
 *     0  (all deltas equal)  if n >= 2: uvar d1.                      Nothing per sample.
 *     1  (n >= 3)            uvar d1, uvar span = t_{n-1} - t0, G(n-2 zigzag dods d_i - d_{i-1})
 *     2  (n >= 3)            uvar dmin = min d_i, uvar span, G(n-1 values d_i - dmin)
 *   values, by vmode:
 *     0  XOR                 64 bits v0, then per sample: '0' same bits; '1','0' + w bits
 *                            reuses the window (w = 64 - L - T); '1','1' + 5 bits L + 6 bits w
 *                            (64 stored as 0) + w bits opens one (L <= 31, L + w <= 64). The
 *                            XORed bits are stored shifted right by T.
 *     1..3  decimal, order = vmode - 1:
 *            8 bits scale k (two's complement, -22..22), uvar e = exception count (<= n);
 *            the nm = n - e mantissas of the non-exception samples, in order, when nm >= 1:
 *              order 0  svar base (the smallest mantissa), S(nm values m_i - base)
 *              order 1  svar m0, S(nm - 1 deltas)
 *              order 2  svar m0, if nm >= 2 svar delta1, S(nm - 2 delta-of-deltas)
 *            where S(N) (nothing when N == 0) is uvar f >= 1, the common factor of the N values,
 *            then G(the values / f), zigzagged for orders 1 and 2.
 *            then e exceptions, positions strictly DECREASING: 16 bits position, 64 bits raw.
 *            A mantissa m decodes as (double)m / 10^k for k > 0, (double)m * 10^-k for k <= 0.
 *   G(N)   (nothing when N == 0) 2 bits g, group size 8 << g; then per group of up to that
 *          many values: 7 bits width w (0..64) and the values in w bits each.
 *
 * Invariants
 *   1. decode(encode(s)) is s bit for bit: the encoder admits a value to the decimal mode only
 *      after decoding its mantissa with the decoder's own function (dec_value) and comparing
 *      the 64 bits; everything else is an exception or the pack uses XOR. (test_pack:
 *      test_special_values, test_hard_decimals, fuzz_pack (b))
 *   2. The encoder's size estimate is exact: the same writer runs once counting bits and once
 *      writing them, so the reserve is exact and nothing fails once writing starts.
 *   3. The decoder never reads outside d[0..len) (every read is bounds-checked by the bit
 *      reader), rejects a timestamp that does not increase or passes INT64_MAX, any width > 64,
 *      exception positions out of range or out of order, a last timestamp differing from the
 *      header's span, non-zero padding and trailing bytes. (fuzz_pack (a), test_corrupt)
 *
 * Decimal scale choice: each value's smallest working scale is found first (integers try
 * negative scales, i.e. trailing decimal zeros); every distinct one is then tried as the
 * chunk's scale, values that do not reproduce become exceptions, and the cheapest wins. Raw
 * exceptions cost 80 bits each, so a stale marker at the end of a chunk costs 10 bytes while
 * values with 17 significant digits make XOR win.
 */
#include "ag_pack.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ag_err.h"

#define PACK_VERSION 0x10
#define MAX_SCALE 22
#define K_FAIL 127   /* kmin: no scale reproduces the value */
#define K_ANY (-128) /* kmin: +0.0, which every scale reproduces */
#define NO_WINDOW 0xff
#define MANT_LIMIT 9.2e18 /* |x| below this converts to int64 without overflow */

/* 10^0 .. 10^22: every one is exactly representable as a double. */
static const double P10[MAX_SCALE + 1] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                          1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                          1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* ---- helpers ------------------------------------------------------------------------------ */

static inline uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static inline int64_t u64_to_i64(uint64_t u)
{
    if (u <= (uint64_t)INT64_MAX) return (int64_t)u;
    return -(int64_t)(~u) - 1;
}

static inline uint64_t zz(uint64_t u) { return (u << 1) ^ (0 - (u >> 63)); }
static inline uint64_t unzz(uint64_t z) { return (z >> 1) ^ (0 - (z & 1)); }

/* The one function that turns a mantissa into a value, shared by encoder and decoder. */
static inline double dec_value(int64_t m, int k)
{
    return k >= 0 ? (double)m / P10[k] : (double)m * P10[-k];
}

static inline unsigned width_of(uint64_t x) { return x ? 64u - (unsigned)__builtin_clzll(x) : 0; }

/* ---- bit writer: counts bits when dst is NULL, writes them otherwise ------------------------ */

typedef struct bw {
    uint8_t *dst; /* NULL: count only */
    size_t bits;  /* bits put so far */
    size_t off;   /* bytes flushed to dst */
    uint64_t acc; /* pending bits, the oldest lowest */
    unsigned n;   /* pending bit count, < 64 */
} bw_t;

static void bw_store(bw_t *w, uint64_t x, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++) w->dst[w->off++] = (uint8_t)(x >> (8 * i));
}

/* Puts the low k (0..64) bits of x. */
static void bw_put(bw_t *w, uint64_t x, unsigned k)
{
    w->bits += k;
    if (!w->dst || k == 0) return;
    if (k < 64) x &= ((uint64_t)1 << k) - 1;
    w->acc |= x << w->n;
    if (w->n + k >= 64) {
        bw_store(w, w->acc, 8);
        w->acc = w->n ? x >> (64 - w->n) : 0;
        w->n = w->n + k - 64;
    } else {
        w->n += k;
    }
}

static void bw_flush(bw_t *w)
{
    if (w->dst) bw_store(w, w->acc, (w->n + 7) / 8);
    w->acc = 0;
    w->n = 0;
}

static void bw_uvar(bw_t *w, uint64_t x)
{
    while (x >= 0x80) {
        bw_put(w, (x & 0x7f) | 0x80, 8);
        x >>= 7;
    }
    bw_put(w, x, 8);
}

/* ---- bit reader ---------------------------------------------------------------------------- */

typedef struct br {
    const uint8_t *base, *p, *end;
    uint64_t buf; /* the next n bits in the low end; bits above n are later stream bits or 0 */
    unsigned n;
} br_t;

/* The 8 bytes at d as a little-endian word (one load on x86). */
static inline uint64_t ld_le64(const uint8_t *d)
{
    return (uint64_t)d[0] | (uint64_t)d[1] << 8 | (uint64_t)d[2] << 16 | (uint64_t)d[3] << 24 |
           (uint64_t)d[4] << 32 | (uint64_t)d[5] << 40 | (uint64_t)d[6] << 48 |
           (uint64_t)d[7] << 56;
}

static inline void br_refill(br_t *b)
{
    if (b->end - b->p >= 8) {
        uint64_t w = ld_le64(b->p);
        /* Bits already in buf above n came from these same bytes, so OR-ing is harmless. */
        b->buf |= w << b->n;
        b->p += (63 - b->n) >> 3;
        b->n |= 56;
        return;
    }
    while (b->n <= 56 && b->p < b->end) {
        b->buf |= (uint64_t)*b->p++ << b->n;
        b->n += 8;
    }
}

/* Reads k (0..56) bits; false when fewer remain. */
static inline bool br_get(br_t *b, unsigned k, uint64_t *out)
{
    if (b->n < k) {
        br_refill(b);
        if (b->n < k) return false;
    }
    *out = b->buf & (((uint64_t)1 << k) - 1);
    b->buf >>= k;
    b->n -= k;
    return true;
}

static inline bool br_get64(br_t *b, unsigned k, uint64_t *out)
{
    if (k <= 56) return br_get(b, k, out);
    uint64_t lo, hi;
    if (!br_get(b, 32, &lo) || !br_get(b, k - 32, &hi)) return false;
    *out = lo | hi << 32;
    return true;
}

static bool br_uvar(br_t *b, uint64_t *out)
{
    uint64_t x = 0, byte;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (!br_get(b, 8, &byte)) return false;
        if (shift == 63 && byte > 1) return false; /* more than 64 bits */
        x |= (byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = x;
            return true;
        }
    }
    return false;
}

/* True when the stream ends here: only zero padding up to the byte boundary, then the end. */
static bool br_at_end(br_t *b)
{
    unsigned pad = b->n & 7;
    if (b->buf & (((uint64_t)1 << pad) - 1)) return false;
    size_t consumed = (size_t)(b->p - b->base) - (b->n >> 3);
    return consumed == (size_t)(b->end - b->base);
}

/* ---- group bit-packing -------------------------------------------------------------------- */

/* Bits G(v[0..N)) takes with group size 8 << g. */
static size_t gpack_cost(const uint64_t *v, size_t N, unsigned g)
{
    size_t gs = (size_t)8 << g, bits = 2;
    for (size_t i = 0; i < N; i += gs) {
        size_t end = i + gs < N ? i + gs : N;
        uint64_t o = 0;
        for (size_t j = i; j < end; j++) o |= v[j];
        bits += 7 + (size_t)width_of(o) * (end - i);
    }
    return bits;
}

static void gpack_put(bw_t *w, const uint64_t *v, size_t N)
{
    if (N == 0) return;
    unsigned best = 0;
    size_t best_bits = gpack_cost(v, N, 0);
    for (unsigned g = 1; g < 4 && ((size_t)8 << (g - 1)) < N; g++) {
        size_t c = gpack_cost(v, N, g);
        if (c < best_bits) {
            best_bits = c;
            best = g;
        }
    }
    if (!w->dst) {
        w->bits += best_bits;
        return;
    }
    size_t gs = (size_t)8 << best;
    bw_put(w, best, 2);
    for (size_t i = 0; i < N; i += gs) {
        size_t end = i + gs < N ? i + gs : N;
        uint64_t o = 0;
        for (size_t j = i; j < end; j++) o |= v[j];
        unsigned wd = width_of(o);
        bw_put(w, wd, 7);
        if (wd)
            for (size_t j = i; j < end; j++) bw_put(w, v[j], wd);
    }
}

static inline void store_u64(unsigned char *p, uint64_t x) { memcpy(p, &x, sizeof x); }

/* Reads G(N) into the 8-byte slots dst, dst + stride, ... (stride in bytes; stored with memcpy
 * so the slots may be the doubles of the output array). */
static bool gpack_get(br_t *b, size_t N, unsigned char *dst, size_t stride)
{
    if (N == 0) return true;
    uint64_t g, wd, x;
    if (!br_get(b, 2, &g)) return false;
    size_t gs = (size_t)8 << g;
    for (size_t i = 0; i < N; i += gs) {
        size_t end = i + gs < N ? i + gs : N;
        if (!br_get(b, 7, &wd) || wd > 64) return false;
        if (wd == 0) {
            for (size_t j = i; j < end; j++) store_u64(dst + j * stride, 0);
        } else if (wd <= 56) {
            /* While 8 bytes remain past the bit position, each value is one load, shift and mask
             * (no refill test per value); the reader then restarts at the position reached. */
            size_t j = i, len = (size_t)(b->end - b->base);
            uint64_t pos = (uint64_t)(b->p - b->base) * 8 - b->n, mask = ((uint64_t)1 << wd) - 1;
            for (; j < end && (pos >> 3) + 8 <= len; j++, pos += wd)
                store_u64(dst + j * stride, (ld_le64(b->base + (pos >> 3)) >> (pos & 7)) & mask);
            b->p = b->base + (pos >> 3);
            b->buf = 0;
            b->n = 0;
            if ((pos & 7) && !br_get(b, (unsigned)(pos & 7), &x)) return false;
            for (; j < end; j++) {
                if (!br_get(b, (unsigned)wd, &x)) return false;
                store_u64(dst + j * stride, x);
            }
        } else {
            for (size_t j = i; j < end; j++) {
                if (!br_get64(b, (unsigned)wd, &x)) return false;
                store_u64(dst + j * stride, x);
            }
        }
    }
    return true;
}

/* ---- encoder ------------------------------------------------------------------------------ */

typedef struct enc {
    const ag_sample_pt_t *s;
    size_t n;
    uint64_t *z;   /* scratch stream values, n entries */
    int64_t *m;    /* mantissas of the non-exception samples (decimal mode) */
    int8_t *kmin;  /* per sample: smallest working scale, K_FAIL or K_ANY */
    uint8_t *exc;  /* per sample: 1 = exception at the current scale */
    unsigned tmode, vmode;
    uint64_t d1, dmin;
    int scale;     /* decimal scale of the current plan */
    size_t nm, ne; /* mantissas and exceptions at that scale */
} enc_t;

static inline uint64_t delta_at(const enc_t *e, size_t i)
{
    return (uint64_t)e->s[i].t - (uint64_t)e->s[i - 1].t;
}

/* Fills z with the timestamp stream of `tmode` and returns its length. */
static size_t ts_stream(enc_t *e, unsigned tmode)
{
    size_t n = e->n;
    if (tmode == 1) {
        for (size_t i = 2; i < n; i++) e->z[i - 2] = zz(delta_at(e, i) - delta_at(e, i - 1));
        return n - 2;
    }
    if (tmode == 2) {
        for (size_t i = 1; i < n; i++) e->z[i - 1] = delta_at(e, i) - e->dmin;
        return n - 1;
    }
    return 0;
}

static void put_ts(bw_t *w, enc_t *e)
{
    bw_put(w, PACK_VERSION | e->tmode << 2 | e->vmode, 8);
    bw_uvar(w, e->n);
    bw_uvar(w, zz((uint64_t)e->s[0].t));
    if (e->n < 2) return;
    bw_uvar(w, e->tmode == 2 ? e->dmin : e->d1);
    if (e->tmode == 0) return;
    bw_uvar(w, (uint64_t)e->s[e->n - 1].t - (uint64_t)e->s[0].t);
    gpack_put(w, e->z, ts_stream(e, e->tmode));
}

static void choose_ts(enc_t *e)
{
    size_t n = e->n;
    e->tmode = 0;
    if (n < 2) return;
    e->d1 = e->dmin = delta_at(e, 1);
    bool same = true;
    for (size_t i = 2; i < n; i++) {
        uint64_t d = delta_at(e, i);
        if (d != e->d1) same = false;
        if (d < e->dmin) e->dmin = d;
    }
    if (same) return;
    /* Both variable modes are costed exactly; dod (mode 1) wins ties. */
    bw_t c1 = {0}, c2 = {0};
    e->tmode = 1;
    put_ts(&c1, e);
    e->tmode = 2;
    put_ts(&c2, e);
    e->tmode = c2.bits < c1.bits ? 2 : 1;
}

static void put_xor(bw_t *w, const enc_t *e)
{
    uint64_t prev = dbits(e->s[0].v);
    unsigned leading = NO_WINDOW, trailing = 0;
    bw_put(w, prev, 64);
    for (size_t i = 1; i < e->n; i++) {
        uint64_t cur = dbits(e->s[i].v), x = cur ^ prev;
        prev = cur;
        if (x == 0) {
            bw_put(w, 0, 1);
            continue;
        }
        unsigned lz = (unsigned)__builtin_clzll(x), tz = (unsigned)__builtin_ctzll(x);
        if (lz > 31) lz = 31;
        unsigned sig = 64 - lz - tz;
        if (leading != NO_WINDOW && lz >= leading && tz >= trailing) {
            unsigned wsig = 64 - leading - trailing;
            if (wsig <= 11 + sig) {
                bw_put(w, 1, 2); /* '1' then '0' */
                bw_put(w, x >> trailing, wsig);
                continue;
            }
        }
        bw_put(w, 3, 2);
        bw_put(w, lz, 5);
        bw_put(w, sig & 63, 6);
        bw_put(w, x >> tz, sig);
        leading = lz;
        trailing = tz;
    }
}

/* The mantissa of v at scale k, if dec_value reproduces v's bits exactly from it. */
static bool mant_at(double v, int k, int64_t *m)
{
    double x = k >= 0 ? v * P10[k] : v / P10[-k];
    if (!(x > -MANT_LIMIT && x < MANT_LIMIT)) return false;
    int64_t c = llrint(x);
    if (dbits(dec_value(c, k)) != dbits(v)) return false;
    *m = c;
    return true;
}

static int8_t smallest_scale(double v)
{
    uint64_t b = dbits(v);
    if (b == 0) return K_ANY;
    if (!isfinite(v) || b == ((uint64_t)1 << 63)) return K_FAIL;
    int64_t m;
    if (v == trunc(v)) {
        int j = 0;
        if (fabs(v) < MANT_LIMIT) {
            /* Trailing decimal zeros bound the most negative scale that can work. */
            for (int64_t c = (int64_t)v; j < MAX_SCALE && c % 10 == 0; c /= 10) j++;
        } else {
            j = MAX_SCALE;
        }
        for (int k = -j; k <= 0; k++)
            if (mant_at(v, k, &m)) return (int8_t)k;
    }
    for (int k = 1; k <= MAX_SCALE; k++) {
        if (fabs(v) * P10[k] >= MANT_LIMIT) break;
        if (mant_at(v, k, &m)) return (int8_t)k;
    }
    return K_FAIL;
}

/* Computes the mantissas and exceptions of scale k into e->m / e->exc. */
static void dec_plan(enc_t *e, int k)
{
    e->scale = k;
    e->nm = e->ne = 0;
    for (size_t i = 0; i < e->n; i++) {
        int64_t m = 0;
        bool ok = e->kmin[i] == K_ANY ||
                  (e->kmin[i] != K_FAIL && e->kmin[i] <= k && mant_at(e->s[i].v, k, &m));
        e->exc[i] = !ok;
        if (ok) e->m[e->nm++] = m;
        else e->ne++;
    }
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* Writes uvar f, the common factor of the N stream values (1 when there is none), and divides
 * it out; signed streams are then zigzagged. Counters that grow by multiples of 1024 or 4096
 * (bytes, pages) shrink to a few bits per sample this way. */
static void put_divided(bw_t *w, uint64_t *z, size_t N, bool is_signed)
{
    if (N == 0) return;
    uint64_t f = 0;
    for (size_t i = 0; i < N && f != 1; i++) {
        uint64_t mag = is_signed && (z[i] >> 63) ? 0 - z[i] : z[i];
        f = gcd64(mag, f);
    }
    if (f == 0 || f > (uint64_t)INT64_MAX) f = 1;
    bw_uvar(w, f);
    for (size_t i = 0; i < N; i++) {
        if (is_signed) z[i] = zz(f == 1 ? z[i] : (uint64_t)(u64_to_i64(z[i]) / (int64_t)f));
        else z[i] /= f;
    }
}

/* The decimal value section of the current plan with mantissa order `order`. */
static void put_dec(bw_t *w, enc_t *e, unsigned order)
{
    size_t nm = e->nm, N = 0;
    bw_put(w, (uint64_t)(uint8_t)(int8_t)e->scale, 8);
    bw_uvar(w, e->ne);
    if (nm > 0) {
        const uint64_t *m = (const uint64_t *)(const void *)e->m;
        uint64_t *z = e->z;
        if (order == 0) {
            int64_t base = e->m[0];
            for (size_t i = 1; i < nm; i++)
                if (e->m[i] < base) base = e->m[i];
            bw_uvar(w, zz((uint64_t)base));
            for (size_t i = 0; i < nm; i++) z[N++] = m[i] - (uint64_t)base;
            put_divided(w, z, N, false);
        } else {
            bw_uvar(w, zz(m[0]));
            if (order == 1) {
                for (size_t i = 1; i < nm; i++) z[N++] = m[i] - m[i - 1];
                put_divided(w, z, N, true);
            } else if (nm >= 2) {
                bw_uvar(w, zz(m[1] - m[0]));
                for (size_t i = 2; i < nm; i++) z[N++] = m[i] - 2 * m[i - 1] + m[i - 2];
                put_divided(w, z, N, true);
            }
        }
        gpack_put(w, z, N);
    }
    for (size_t i = e->n; i-- > 0;) {
        if (!e->exc[i]) continue;
        bw_put(w, i, 16);
        bw_put(w, dbits(e->s[i].v), 64);
    }
}

static void put_values(bw_t *w, enc_t *e)
{
    if (e->vmode == 0) put_xor(w, e);
    else put_dec(w, e, e->vmode - 1);
}

/* Picks the value mode and, for decimals, the scale: the smallest exact size wins. */
static void choose_values(enc_t *e)
{
    bool cand[2 * MAX_SCALE + 1] = {false}, any = false;
    for (size_t i = 0; i < e->n; i++) {
        int8_t k = smallest_scale(e->s[i].v);
        e->kmin[i] = k;
        if (k != K_FAIL && k != K_ANY) {
            cand[k + MAX_SCALE] = true;
            any = true;
        }
    }
    if (!any) cand[MAX_SCALE] = true; /* only zeros and specials: scale 0 */

    bw_t xw = {0};
    put_xor(&xw, e);
    size_t best = xw.bits;
    int best_k = 0;
    unsigned best_mode = 0;
    for (int k = -MAX_SCALE; k <= MAX_SCALE; k++) {
        if (!cand[k + MAX_SCALE]) continue;
        size_t unfit = 0; /* samples whose smallest scale exceeds k: exceptions at k */
        for (size_t i = 0; i < e->n; i++) unfit += e->kmin[i] != K_ANY && e->kmin[i] > k;
        if (unfit * 80 >= best) continue; /* the exceptions alone cost more */
        dec_plan(e, k);
        for (unsigned order = 0; order < 3; order++) {
            bw_t cw = {0};
            put_dec(&cw, e, order);
            if (cw.bits < best) {
                best = cw.bits;
                best_k = k;
                best_mode = order + 1;
            }
        }
    }
    e->vmode = best_mode;
    if (best_mode) dec_plan(e, best_k);
}

int ag_pack_encode(const ag_sample_pt_t *s, size_t n, ag_buf_t *out)
{
    if (!s || !out || n == 0 || n > AG_PACK_MAX_SAMPLES) return AG_EINVAL;
    for (size_t i = 1; i < n; i++)
        if (s[i].t <= s[i - 1].t) return AG_EINVAL;
    if (!ag_buf_ok(out)) return AG_ENOMEM;

    enc_t e = {.s = s, .n = n};
    void *mem = malloc(n * (sizeof *e.z + sizeof *e.m + sizeof *e.kmin + sizeof *e.exc));
    if (!mem) return AG_ENOMEM;
    e.z = mem;
    e.m = (int64_t *)(e.z + n);
    e.kmin = (int8_t *)(e.m + n);
    e.exc = (uint8_t *)(e.kmin + n);

    choose_ts(&e);
    choose_values(&e);
    bw_t cw = {0};
    put_ts(&cw, &e);
    put_values(&cw, &e);
    size_t bytes = (cw.bits + 7) / 8;
    if (!ag_buf_reserve(out, bytes)) {
        free(mem);
        return AG_ENOMEM;
    }
    bw_t w = {.dst = (uint8_t *)out->data + out->len};
    put_ts(&w, &e);
    put_values(&w, &e);
    bw_flush(&w);
    out->len += bytes;
    out->data[out->len] = 0;
    free(mem);
    return AG_OK;
}

/* ---- decoder ------------------------------------------------------------------------------ */

typedef struct hdr {
    unsigned tmode, vmode;
    size_t n;
    int64_t t0, tlast;
    uint64_t d; /* d1 (tmode 0, 1) or dmin (tmode 2) */
} hdr_t;

static int read_header(br_t *b, hdr_t *h)
{
    uint64_t mode, n, t0, span = 0;
    if (!br_get(b, 8, &mode) || (mode & 0xf0) != PACK_VERSION) return AG_ECORRUPT;
    h->tmode = (unsigned)(mode >> 2) & 3;
    h->vmode = (unsigned)mode & 3;
    if (h->tmode == 3) return AG_ECORRUPT;
    if (!br_uvar(b, &n) || n == 0 || n > AG_PACK_MAX_SAMPLES) return AG_ECORRUPT;
    if (!br_uvar(b, &t0)) return AG_ECORRUPT;
    h->n = (size_t)n;
    h->t0 = u64_to_i64(unzz(t0));
    h->d = 0;
    /* The largest span that keeps the last timestamp <= INT64_MAX. */
    uint64_t room = (uint64_t)INT64_MAX - (uint64_t)h->t0;
    if (n >= 2 && !br_uvar(b, &h->d)) return AG_ECORRUPT;
    if (h->tmode == 0) {
        if (n >= 2 && (h->d == 0 || h->d > room / (n - 1))) return AG_ECORRUPT;
        span = h->d * (n - 1);
    } else {
        if (n < 3 || !br_uvar(b, &span)) return AG_ECORRUPT;
        if (span < n - 1 || span > room) return AG_ECORRUPT;
    }
    h->tlast = u64_to_i64((uint64_t)h->t0 + span);
    return AG_OK;
}

int ag_pack_info(const uint8_t *d, size_t len, size_t *count, int64_t *mint, int64_t *maxt)
{
    if (!d) return AG_ECORRUPT;
    br_t b = {d, d, d + len, 0, 0};
    hdr_t h;
    int rc = read_header(&b, &h);
    if (rc != AG_OK) return rc;
    if (count) *count = h.n;
    if (mint) *mint = h.t0;
    if (maxt) *maxt = h.tlast;
    return AG_OK;
}

/* The decoder parks integers (stream values, mantissas) in the v slots of the output before
 * they become doubles; memcpy keeps that free of aliasing trouble and NaN-quieting moves. */
static inline uint64_t getw(const ag_sample_pt_t *out, size_t j)
{
    uint64_t u;
    memcpy(&u, &out[j].v, sizeof u);
    return u;
}

static inline void putw(ag_sample_pt_t *out, size_t j, uint64_t u) { memcpy(&out[j].v, &u, 8); }

static bool dec_ts(br_t *b, const hdr_t *h, ag_sample_pt_t *out)
{
    size_t n = h->n;
    uint64_t t = (uint64_t)h->t0;
    out[0].t = h->t0;
    if (h->tmode == 0) {
        for (size_t i = 1; i < n; i++) {
            t += h->d;
            out[i].t = u64_to_i64(t);
        }
        return true;
    }
    /* The stream goes into the value words first (they are decoded later), then becomes t. */
    size_t first = h->tmode == 1 ? 2 : 1;
    if (!gpack_get(b, n - first, (unsigned char *)&out[first].v, sizeof *out)) return false;
    uint64_t d = h->d;
    for (size_t i = 1; i < n; i++) {
        if (h->tmode == 2) d = h->d + getw(out, i);
        else if (i >= 2) d += unzz(getw(out, i));
        /* d must be >= 1 and keep t <= INT64_MAX (one compare: d - 1 wraps for d == 0). */
        if (d - 1 >= (uint64_t)INT64_MAX - t) return false;
        t += d;
        out[i].t = u64_to_i64(t);
    }
    return t == (uint64_t)h->tlast;
}

static bool dec_xor(br_t *b, size_t n, ag_sample_pt_t *out)
{
    uint64_t v, u;
    unsigned leading = NO_WINDOW, trailing = 0;
    if (!br_get64(b, 64, &v)) return false;
    putw(out, 0, v);
    for (size_t i = 1; i < n; i++) {
        if (!br_get(b, 1, &u)) return false;
        if (u) {
            if (!br_get(b, 1, &u)) return false;
            if (u) {
                uint64_t hd;
                if (!br_get(b, 11, &hd)) return false;
                unsigned lz = (unsigned)hd & 31, sig = (unsigned)(hd >> 5);
                if (sig == 0) sig = 64;
                if (lz + sig > 64) return false;
                leading = lz;
                trailing = 64 - lz - sig;
            } else if (leading == NO_WINDOW) {
                return false;
            }
            if (!br_get64(b, 64 - leading - trailing, &u)) return false;
            v ^= u << trailing;
        }
        putw(out, i, v);
    }
    return true;
}

static bool dec_decimal(br_t *b, size_t n, unsigned order, ag_sample_pt_t *out)
{
    uint64_t sc, ne, base, d1 = 0;
    if (!br_get(b, 8, &sc)) return false;
    int k = (int)(int8_t)(uint8_t)sc;
    if (k < -MAX_SCALE || k > MAX_SCALE) return false;
    if (!br_uvar(b, &ne) || ne > n) return false;
    size_t nm = n - (size_t)ne;
    if (nm > 0) {
        if (!br_uvar(b, &base)) return false;
        base = unzz(base);
        if (order == 2 && nm >= 2) {
            if (!br_uvar(b, &d1)) return false;
            d1 = unzz(d1);
        }
        size_t skip = order == 0 ? 0 : order == 1 ? 1 : (nm >= 2 ? 2 : 1);
        uint64_t f = 1;
        if (nm > skip && (!br_uvar(b, &f) || f == 0)) return false;
        if (!gpack_get(b, nm - skip, (unsigned char *)&out[skip].v, sizeof *out)) return false;
        if (f != 1) {
            for (size_t i = skip; i < nm; i++) {
                uint64_t x = getw(out, i);
                putw(out, i, order == 0 ? x * f : zz(unzz(x) * f));
            }
        }
        /* Mantissas in place, as uint64 words. */
        if (order == 0) {
            for (size_t i = 0; i < nm; i++) putw(out, i, base + getw(out, i));
        } else if (order == 1) {
            uint64_t m = base;
            putw(out, 0, m);
            for (size_t i = 1; i < nm; i++) {
                m += unzz(getw(out, i));
                putw(out, i, m);
            }
        } else {
            uint64_t m = base, d = d1;
            putw(out, 0, m);
            if (nm >= 2) putw(out, 1, m += d);
            for (size_t i = 2; i < nm; i++) {
                d += unzz(getw(out, i));
                m += d;
                putw(out, i, m);
            }
        }
        if (k == 0) {
            for (size_t i = 0; i < nm; i++) out[i].v = (double)u64_to_i64(getw(out, i));
        } else if (k > 0) {
            /* Two divisions per instruction (divpd is as fast as divsd, and the division was a
             * third of decoding); IEEE division rounds the same either way. */
            typedef double v2d __attribute__((vector_size(16)));
            double p = P10[k];
            v2d pp = {p, p};
            size_t i = 0;
            for (; i + 2 <= nm; i += 2) {
                v2d x = {(double)u64_to_i64(getw(out, i)), (double)u64_to_i64(getw(out, i + 1))};
                x /= pp;
                out[i].v = x[0];
                out[i + 1].v = x[1];
            }
            if (i < nm) out[i].v = (double)u64_to_i64(getw(out, i)) / p;
        } else {
            double p = P10[-k];
            for (size_t i = 0; i < nm; i++) out[i].v = (double)u64_to_i64(getw(out, i)) * p;
        }
    }
    /* Exceptions come last-first: spread the mantissa values out from the top down. */
    size_t dst = n, src = nm, prev = n;
    for (uint64_t e = 0; e < ne; e++) {
        uint64_t pos, raw;
        if (!br_get(b, 16, &pos) || !br_get64(b, 64, &raw)) return false;
        /* Below this one the remaining ne - 1 - e exceptions need distinct positions; that
         * also keeps src from running below 0. */
        if (pos >= prev || pos < ne - 1 - e) return false;
        prev = (size_t)pos;
        while (dst > pos + 1) {
            dst--;
            src--;
            putw(out, dst, getw(out, src));
        }
        putw(out, --dst, raw);
    }
    return true;
}

int ag_pack_decode(const uint8_t *d, size_t len, int64_t mint, int64_t maxt, ag_sample_pt_t *out,
                   size_t *n)
{
    *n = 0;
    if (!d || !out) return AG_ECORRUPT;
    br_t b = {d, d, d + len, 0, 0};
    hdr_t h;
    if (read_header(&b, &h) != AG_OK) return AG_ECORRUPT;
    if (!dec_ts(&b, &h, out)) return AG_ECORRUPT;
    bool ok = h.vmode == 0 ? dec_xor(&b, h.n, out) : dec_decimal(&b, h.n, h.vmode - 1, out);
    if (!ok || !br_at_end(&b)) return AG_ECORRUPT;
    if (mint <= h.t0 && maxt >= h.tlast) {
        *n = h.n;
        return AG_OK;
    }
    size_t lo = 0, hi = h.n;
    while (lo < h.n && out[lo].t < mint) lo++;
    while (hi > lo && out[hi - 1].t > maxt) hi--;
    if (lo > 0 && hi > lo) memmove(out, out + lo, (hi - lo) * sizeof *out);
    *n = hi - lo;
    return AG_OK;
}
