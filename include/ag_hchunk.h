/* ag_hchunk.h - the in-memory codec of open (head) chunks.
 *
 * Every series keeps its newest samples in one open chunk in memory, appended to one sample at a
 * time; when the chunk is sealed or checkpointed the store re-encodes it with ag_pack (ag_pack.h),
 * which needs to see the whole chunk. The head chunk is what augurd's memory is mostly made of,
 * so this codec is built for size on real metric values while staying append-only:
 *
 *   timestamps  Gorilla delta-of-delta (as ag_chunk.h): 1 bit per sample at a steady interval;
 *   values      decimal mode, chosen from the first sample: every value that is exactly
 *               (double)m / 10^k for the chunk's scale k (0..9) and an integer mantissa m is
 *               stored as the delta-of-delta of m in prefix buckets (0, 7, 14, 30 or 64 bits), so
 *               a counter with a steady rate costs 1 bit and a two-decimal gauge a byte or two;
 *               any other value (NaN, the stale marker, -0.0, +-Inf, more digits) is stored raw
 *               as an exception. A value that needs a larger scale re-encodes the chunk once at
 *               that scale; a chunk whose values are mostly exceptions re-encodes itself in
 *               XOR mode (Gorilla's value encoding), which is also what a chunk starts in when
 *               its first value is no short decimal.
 *
 * Values come back bit-exactly in every mode (NaN payloads, stale markers, -0.0). The bytes are
 * produced and read by this process only (the store never writes them to disk), but the decoder
 * still checks every read. The codec does no I/O and allocates only the encoder's own buffer
 * (and, when it re-encodes, a temporary array).
 */
#ifndef AG_HCHUNK_H
#define AG_HCHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ag_chunk.h"

#define AG_HCHUNK_MAX_SAMPLES 65535

typedef struct ag_hchunk {
    uint8_t *buf;       /* owned: 2-byte count, mode byte, bit stream */
    uint32_t cap;       /* bytes allocated */
    uint32_t bits;      /* bits written, header included */
    uint16_t count;
    uint16_t nexc;      /* exceptions in decimal mode */
    uint8_t mode;       /* 0 = XOR values, 1 + k = decimal with scale k */
    uint8_t leading;    /* XOR window (mode 0) */
    uint8_t trailing;
    bool fixed;         /* re-encoding: exceptions only, no change of mode */
    int64_t first_t;
    int64_t last_t;
    uint64_t last_delta;
    uint64_t last_vbits;
    uint64_t last_m;    /* decimal mode: the last mantissa and its delta (wrapping) */
    uint64_t last_d;
} ag_hchunk_t;

/* Initialises an empty encoder. Never fails; memory is allocated on first append. */
void ag_hchunk_init(ag_hchunk_t *e);
/* Frees the buffer and leaves an empty encoder. */
void ag_hchunk_free(ag_hchunk_t *e);
/* Appends a sample. AG_EINVAL when t is not after the last timestamp, AG_ELIMIT when the chunk
 * holds AG_HCHUNK_MAX_SAMPLES, AG_ENOMEM; on error the encoder is unchanged. */
int ag_hchunk_append(ag_hchunk_t *e, int64_t t, double v);
/* The encoded bytes (owned by e, valid until the next append or free); *len is 0 when empty. */
const uint8_t *ag_hchunk_bytes(const ag_hchunk_t *e, size_t *len);
/* The sample count of encoded bytes (0 when shorter than the header). */
size_t ag_hchunk_count(const uint8_t *d, size_t len);
/* Decodes the samples with mint <= t <= maxt into out (room for ag_hchunk_count samples); *n
 * receives how many. AG_ECORRUPT when the bytes are malformed (then *n is undefined). */
int ag_hchunk_decode(const uint8_t *d, size_t len, int64_t mint, int64_t maxt,
                     ag_sample_pt_t *out, size_t *n);

#endif
