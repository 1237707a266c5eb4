/* ag_chunk.h - the Gorilla-style sample codec: delta-of-delta timestamps, XOR-compressed floats.
 *
 * A chunk holds up to 65535 samples of one series with strictly increasing millisecond
 * timestamps. Values are stored bit-exactly: every float64 bit pattern (NaN payloads, the
 * Prometheus stale marker 0x7ff0000000000002, -0.0, +-Inf) decodes to the same 64 bits. The codec
 * does no I/O and allocates only the encoder's own buffer.
 *
 * Byte layout: a 2-byte big-endian sample count, then a bit stream (MSB first):
 *   sample 0: 64-bit timestamp, 64-bit value bits;
 *   sample 1: timestamp delta in unsigned prefix buckets of 14/17/20/32/64 bits ('0', '10',
 *             '110', '1110', '1111'), value XOR;
 *   sample n: delta-of-delta in buckets of 0/14/17/20/64 bits, value XOR against the previous
 *             value with the usual leading/trailing zero window reuse.
 * The unused low bits of the last byte are one-bits (so a header count larger than the stream
 * holds is detected as corruption); decoders ignore them. storage/chunk.c has the full layout.
 * Any int64 timestamps that increase are representable (deltas use wrapping uint64 arithmetic).
 */
#ifndef AG_CHUNK_H
#define AG_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define AG_CHUNK_MAX_SAMPLES 65535

typedef struct ag_chunk_enc {
    uint8_t *buf;     /* owned; starts with the 2-byte count */
    size_t cap;       /* bytes allocated */
    size_t bits;      /* bits written, including the 16 header bits */
    uint16_t count;
    int64_t first_t;
    int64_t last_t;
    uint64_t last_delta;
    uint64_t last_vbits;
    uint8_t leading;  /* leading zeros of the current XOR window; 0xff = no window yet */
    uint8_t trailing;
} ag_chunk_enc_t;

/* Initialises an empty encoder. Never fails; memory is allocated on first append. */
void ag_chunk_enc_init(ag_chunk_enc_t *e);
/* Frees the encoder's buffer and re-initialises it. */
void ag_chunk_enc_free(ag_chunk_enc_t *e);
/* Appends one sample. Returns 0, AG_EINVAL when t <= the last timestamp, AG_ELIMIT when the chunk
 * already holds AG_CHUNK_MAX_SAMPLES, AG_ENOMEM. On error the encoder is unchanged. AG_EINVAL is
 * checked first, so an out-of-order sample is reported as such even when the chunk is full. */
int ag_chunk_enc_append(ag_chunk_enc_t *e, int64_t t, double v);
/* The encoded chunk: valid until the next append or free. *len is 0 for an empty encoder (the
 * pointer may then be NULL). */
const uint8_t *ag_chunk_enc_bytes(const ag_chunk_enc_t *e, size_t *len);
/* Re-initialises `e` and re-encodes the chunk `data` into it so that appends can continue
 * (restart recovery); the result is byte-identical to the encoder that produced `data`. Bytes
 * after the last sample are ignored. len == 0 (what an empty encoder yields) loads an empty
 * encoder. Returns 0, AG_ECORRUPT, AG_ENOMEM; on error `e` is left empty. */
int ag_chunk_enc_load(ag_chunk_enc_t *e, const uint8_t *data, size_t len);

typedef struct ag_chunk_iter {
    const uint8_t *data;
    size_t len;
    size_t bitpos;
    uint16_t count;
    uint16_t i;
    int64_t t;
    uint64_t delta;
    uint64_t vbits;
    uint8_t leading;
    uint8_t trailing;
} ag_chunk_iter_t;

/* Prepares to iterate over `data` (which must outlive the iterator). Returns 0 or AG_ECORRUPT
 * when the header is missing. */
int ag_chunk_iter_init(ag_chunk_iter_t *it, const uint8_t *data, size_t len);
/* Yields the next sample: returns 1 with *t and *v set, 0 at the end, AG_ECORRUPT when the bit
 * stream is truncated or inconsistent (then every further call returns AG_ECORRUPT). Never reads
 * outside data[0..len). Yielded timestamps are always strictly increasing (a stream that would
 * not be is corrupt). */
int ag_chunk_iter_next(ag_chunk_iter_t *it, int64_t *t, double *v);
/* One decoded sample (the layout of ag_sample_t in ag_store.h, kept separate so the codec has
 * no dependency on the store). */
typedef struct ag_sample_pt {
    int64_t t;
    double v;
} ag_sample_pt_t;
/* Decodes the samples with mint <= t <= maxt into out, which must have room for
 * ag_chunk_count(data, len) samples; *n receives how many were written. Returns 0 or
 * AG_ECORRUPT exactly when the iterator would fail before passing maxt (then *n is 0 and out
 * holds garbage). Much faster than the iterator; never reads outside data[0..len). */
int ag_chunk_decode(const uint8_t *data, size_t len, int64_t mint, int64_t maxt,
                    ag_sample_pt_t *out, size_t *n);
/* Number of samples the header claims (0 when len < 2). */
uint16_t ag_chunk_count(const uint8_t *data, size_t len);

#endif
