/* bits_int.h - the bit-level helpers shared by the two sample codecs (chunk.c, the Gorilla
 * codec of stored chunks written before packing existed, and hchunk.c, the in-memory head codec):
 * an MSB-first bit writer with the Gorilla timestamp and XOR value encodings, and a 64-bit
 * buffered bit reader. Not a public header: only storage/ includes it.
 */
#ifndef AG_BITS_INT_H
#define AG_BITS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define NO_WINDOW 0xff

/* uint64 -> int64 two's complement reinterpretation without implementation-defined casts. */
static inline int64_t u64_to_i64(uint64_t u)
{
    if (u <= (uint64_t)INT64_MAX) return (int64_t)u;
    return -(int64_t)(~u) - 1;
}

static inline uint64_t low_mask(unsigned n)
{
    return n >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1);
}

/* True when the wrapping value u, read as int64, lies in the n-bit two's complement range. */
static inline bool fits_signed(uint64_t u, unsigned n)
{
    return u + ((uint64_t)1 << (n - 1)) < ((uint64_t)1 << n);
}

/* Sign-extends the low n bits of u (1 <= n <= 64). */
static inline uint64_t sign_extend(uint64_t u, unsigned n)
{
    if (n >= 64) return u;
    if ((u >> (n - 1)) & 1) u |= ~(uint64_t)0 << n;
    return u;
}


/* ---- bit writer --------------------------------------------------------------------------- */

/* Writes the low n (0..64) bits of v at bit position *pos, MSB first, overwriting whatever the
 * touched bits held (the padding ones in particular). The caller has reserved the space. */
static inline void put_bits(uint8_t *buf, size_t *pos, uint64_t v, unsigned n)
{
    if (n == 0) return;
    if (n < 64) v &= ((uint64_t)1 << n) - 1;
    size_t p = *pos;
    uint8_t *b = buf + (p >> 3);
    unsigned room = 8 - (unsigned)(p & 7); /* free bits in the first byte, 1..8 */
    *pos = p + n;
    if (n <= room) {
        unsigned shift = room - n;
        unsigned mask = ((1u << n) - 1) << shift;
        *b = (uint8_t)((*b & ~mask) | ((unsigned)v << shift));
        return;
    }
    n -= room; /* 1..63 bits left after the first byte */
    *b = (uint8_t)((*b & ~((1u << room) - 1)) | (unsigned)(v >> n));
    b++;
    while (n >= 8) {
        n -= 8;
        *b++ = (uint8_t)(v >> n);
    }
    if (n) {
        unsigned shift = 8 - n;
        *b = (uint8_t)((*b & ((1u << shift) - 1)) | (unsigned)((v << shift) & 0xff));
    }
}

static inline void put_delta(uint8_t *buf, size_t *pos, uint64_t d)
{
    if (d < ((uint64_t)1 << 14)) {
        put_bits(buf, pos, 0x0, 1);
        put_bits(buf, pos, d, 14);
    } else if (d < ((uint64_t)1 << 17)) {
        put_bits(buf, pos, 0x2, 2);
        put_bits(buf, pos, d, 17);
    } else if (d < ((uint64_t)1 << 20)) {
        put_bits(buf, pos, 0x6, 3);
        put_bits(buf, pos, d, 20);
    } else if (d < ((uint64_t)1 << 32)) {
        put_bits(buf, pos, 0xe, 4);
        put_bits(buf, pos, d, 32);
    } else {
        put_bits(buf, pos, 0xf, 4);
        put_bits(buf, pos, d, 64);
    }
}

static inline void put_dod(uint8_t *buf, size_t *pos, uint64_t dod)
{
    if (dod == 0) {
        put_bits(buf, pos, 0x0, 1);
    } else if (fits_signed(dod, 14)) {
        put_bits(buf, pos, 0x2, 2);
        put_bits(buf, pos, dod & low_mask(14), 14);
    } else if (fits_signed(dod, 17)) {
        put_bits(buf, pos, 0x6, 3);
        put_bits(buf, pos, dod & low_mask(17), 17);
    } else if (fits_signed(dod, 20)) {
        put_bits(buf, pos, 0xe, 4);
        put_bits(buf, pos, dod & low_mask(20), 20);
    } else {
        put_bits(buf, pos, 0xf, 4);
        put_bits(buf, pos, dod, 64);
    }
}

/* The XOR of a value against the previous one (prev), with the leading/trailing zero window in
 * *leading (NO_WINDOW when none) and *trailing. */
static inline void put_xor(uint8_t *buf, size_t *pos, uint64_t vbits, uint64_t prev,
                           uint8_t *leading, uint8_t *trailing)
{
    uint64_t x = vbits ^ prev;
    if (x == 0) {
        put_bits(buf, pos, 0x0, 1);
        return;
    }
    unsigned lz = (unsigned)__builtin_clzll(x);
    unsigned tz = (unsigned)__builtin_ctzll(x);
    if (lz > 31) lz = 31; /* 5-bit field */
    unsigned sig = 64 - lz - tz;
    if (*leading != NO_WINDOW && lz >= *leading && tz >= *trailing) {
        unsigned wsig = 64u - *leading - *trailing;
        /* Reuse unless a fresh window is strictly shorter: 2 + wsig vs 2 + 11 + sig. */
        if (wsig <= 11 + sig) {
            put_bits(buf, pos, 0x2, 2);
            put_bits(buf, pos, x >> *trailing, wsig);
            return;
        }
    }
    put_bits(buf, pos, 0x3, 2);
    put_bits(buf, pos, lz, 5);
    put_bits(buf, pos, sig & 63, 6); /* 64 is stored as 0 */
    put_bits(buf, pos, x >> tz, sig);
    *leading = (uint8_t)lz;
    *trailing = (uint8_t)tz;
}


/* ---- bit reader --------------------------------------------------------------------------- */

typedef struct bitrd {
    const uint8_t *p, *end;
    uint64_t buf; /* the next bits, most significant first; the low 64 - n bits are zero */
    unsigned n;   /* valid bits in buf */
} bitrd_t;

/* Tops the buffer up to at least 57 bits, or to everything left. */
static inline void br_refill(bitrd_t *b)
{
    if (b->end - b->p >= 8) {
        const uint8_t *d = b->p;
        uint64_t w = (uint64_t)d[0] << 56 | (uint64_t)d[1] << 48 | (uint64_t)d[2] << 40 |
                     (uint64_t)d[3] << 32 | (uint64_t)d[4] << 24 | (uint64_t)d[5] << 16 |
                     (uint64_t)d[6] << 8 | (uint64_t)d[7];
        unsigned take = (63 - b->n) >> 3; /* whole bytes that fit */
        b->buf |= w >> b->n;
        b->p += take;
        b->n += take * 8;
        /* Drop the bits of w beyond the bytes taken. */
        b->buf &= b->n >= 64 ? ~(uint64_t)0 : ~(~(uint64_t)0 >> b->n);
        return;
    }
    while (b->n <= 56 && b->p < b->end) {
        b->buf |= (uint64_t)*b->p++ << (56 - b->n);
        b->n += 8;
    }
}

/* Reads k (1..56) bits; false when fewer remain. */
static inline bool br_get(bitrd_t *b, unsigned k, uint64_t *out)
{
    if (b->n < k) {
        br_refill(b);
        if (b->n < k) return false;
    }
    *out = b->buf >> (64 - k);
    b->buf <<= k;
    b->n -= k;
    return true;
}

static inline bool br_get64(bitrd_t *b, unsigned k, uint64_t *out)
{
    if (k <= 56) return br_get(b, k, out);
    uint64_t hi, lo;
    if (!br_get(b, k - 32, &hi) || !br_get(b, 32, &lo)) return false;
    *out = hi << 32 | lo;
    return true;
}

/* A unary bucket prefix of up to 4 ones, consuming its terminating zero when there is one. */
static inline bool br_prefix(bitrd_t *b, unsigned *ones)
{
    if (b->n < 4) {
        br_refill(b);
        if (b->n < 4) {
            /* Near the end: fewer than 4 bits left; the prefix may still be complete. */
            unsigned k = 0;
            while (k < b->n && ((b->buf >> (63 - k)) & 1)) k++;
            if (k == b->n) return false;
            b->buf <<= k + 1;
            b->n -= k + 1;
            *ones = k;
            return true;
        }
    }
    unsigned k = (unsigned)__builtin_clzll(~b->buf | (~(uint64_t)0 >> 4));
    unsigned used = k + (k < 4);
    b->buf <<= used;
    b->n -= used;
    *ones = k;
    return true;
}

/* The timestamp step to sample i >= 1 from time t: a delta bucket for i == 1, a delta-of-delta
 * against *delta after; the step goes to *delta. False when malformed, zero or beyond INT64_MAX. */
static inline bool br_step(bitrd_t *b, size_t i, int64_t t, uint64_t *delta)
{
    static const unsigned dw[5] = {14, 17, 20, 32, 64}, ow[5] = {0, 14, 17, 20, 64};
    unsigned ones;
    uint64_t d, u;
    if (!br_prefix(b, &ones)) return false;
    if (i == 1) {
        if (!br_get64(b, dw[ones], &d)) return false;
    } else if (ones == 0) {
        d = *delta;
    } else {
        if (!br_get64(b, ow[ones], &u)) return false;
        d = *delta + sign_extend(u, ow[ones]);
    }
    if (d == 0 || d > (uint64_t)INT64_MAX - (uint64_t)t) return false;
    *delta = d;
    return true;
}

/* A value XORed against *vbits: '0' same, '10' reuse the window (*leading, *trailing;
 * NO_WINDOW before the first), '11' + 5 bits L + 6 bits w opens one. False when malformed. */
static inline bool br_xor(bitrd_t *b, uint64_t *vbits, unsigned *leading, unsigned *trailing)
{
    uint64_t u;
    if (!br_get(b, 1, &u)) return false;
    if (!u) return true;
    if (!br_get(b, 1, &u)) return false;
    if (u) {
        uint64_t hdr;
        if (!br_get(b, 11, &hdr)) return false;
        unsigned lz = (unsigned)(hdr >> 6), sig = (unsigned)(hdr & 63);
        if (sig == 0) sig = 64;
        if (lz + sig > 64) return false;
        *leading = lz;
        *trailing = 64 - lz - sig;
    } else if (*leading == NO_WINDOW) {
        return false;
    }
    if (!br_get64(b, 64 - *leading - *trailing, &u)) return false;
    *vbits ^= u << *trailing;
    return true;
}

#endif
