/* ag_pack.h - the compact codec for sealed chunks ("pack").
 *
 * The open head chunk uses the append-friendly Gorilla codec (ag_chunk.h). When a chunk is
 * sealed the store decodes it once and re-encodes the samples with ag_pack_encode, which sees
 * the whole chunk and picks the smallest of several representations; every query then decodes
 * with ag_pack_decode, which is built to be fast (plain bit unpacking and prefix sums).
 *
 * A pack holds 1..65535 samples with strictly increasing int64 millisecond timestamps (any
 * values, INT64_MIN..INT64_MAX) and float64 values kept bit-exactly: NaN payloads, the
 * Prometheus stale marker 0x7ff0000000000002, -0.0, +-Inf and subnormals decode to the same 64
 * bits. The codec does no I/O and keeps no state; it allocates only temporary encoder memory.
 *
 * Representations (the first byte names them: version 1 in the high nibble, the timestamp
 * mode in bits 2..3, the value mode in bits 0..1; storage/pack.c has the full byte layout):
 *   timestamps  mode 0  every delta equal: first timestamp + one delta, 0 bits per sample;
 *               mode 1  delta-of-delta, zigzag, bit-packed in groups with a per-group width;
 *               mode 2  delta minus the smallest delta, bit-packed in groups (suits jitter).
 *   values      mode 1..3  decimal: every value the mode covers is (double)m / 10^k (k > 0) or
 *                          (double)m * 10^-k (k <= 0) for an int64 mantissa m and one scale k in
 *                          -22..22 per pack; the mantissas are stored as frame-of-reference
 *                          offsets (1), deltas (2) or delta-of-deltas (3), zigzag, group
 *                          bit-packed. Values the scale cannot reproduce bit-exactly (NaN,
 *                          stale markers, Inf, -0.0, too many digits) are stored raw in an
 *                          exception list of (position, 64 bits).
 *               mode 0     XOR against the previous value with a reusable leading/trailing
 *                          zero window (Gorilla), for values that are not decimals.
 * The encoder computes the exact size of every candidate and keeps the smallest, so a pack is
 * never much larger than the Gorilla chunk of the same samples.
 */
#ifndef AG_PACK_H
#define AG_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "ag_buf.h"
#include "ag_chunk.h"

#define AG_PACK_MAX_SAMPLES 65535

/* Appends the pack of s[0..n) to `out`. Returns 0; AG_EINVAL when s or out is NULL, n == 0,
 * n > AG_PACK_MAX_SAMPLES or the timestamps are not strictly increasing (out unchanged);
 * AG_ENOMEM when temporary memory or growing `out` fails (out->len unchanged; a failed grow sets
 * out->oom as every ag_buf append does, and an out that is already oom yields AG_ENOMEM). The
 * output is deterministic: the same samples always give the same bytes. */
int ag_pack_encode(const ag_sample_pt_t *s, size_t n, ag_buf_t *out);

/* Reads only the header of the pack d[0..len): the sample count (1..65535) and the first and
 * last timestamps. Cheap (a few dozen bytes). Returns 0 or AG_ECORRUPT when the header is
 * malformed; a header that passes may still belong to a pack whose body is corrupt, which
 * ag_pack_decode reports. Any out-parameter may be NULL. */
int ag_pack_info(const uint8_t *d, size_t len, size_t *count, int64_t *mint, int64_t *maxt);

/* Decodes the pack d[0..len) and writes the samples with mint <= t <= maxt, in timestamp
 * order, to out, which must have room for the count ag_pack_info reports (the whole pack is
 * decoded into out before the window is cut out of it); *n receives how many were written.
 * Returns 0, or AG_ECORRUPT when anything in the pack is malformed - the whole pack is checked
 * whatever the window - and then *n is 0 and out holds garbage. Never reads outside d[0..len),
 * never writes more than count samples; the samples written always have strictly increasing
 * timestamps, and a pack that decodes without error holds exactly count samples. */
int ag_pack_decode(const uint8_t *d, size_t len, int64_t mint, int64_t maxt, ag_sample_pt_t *out,
                   size_t *n);

#endif
