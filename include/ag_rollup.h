/* ag_rollup.h - rollup buckets: the per-interval summary of one series, and their block codec.
 *
 * A rollup bucket summarises the samples of one series whose timestamps fall in
 * [start, start + width): the first and the last sample (time and value), min, max, sum, count,
 * and the counter-reset correction (the sum of the values just before each drop, in the order
 * Prometheus' rate adds them). Stale markers are not samples (a range selector never returns
 * them), so folding skips them; any other NaN is a value like in Prometheus.
 *
 * Buckets compose: merging the buckets of two adjacent intervals gives exactly the bucket of
 * their union (min/max follow Prometheus' *_over_time NaN rules, which are associative; the
 * reset between the two halves is found from the first half's last and the second half's first
 * value). So the 1 h tier is computed from 1 m buckets, and a query window made of whole buckets
 * plus the single sample at its closing edge gets min, max, count, last, first and rate's inputs
 * exactly; sums and averages may differ from a sample-by-sample sum in the last bits (another
 * addition order).
 *
 * A block is the encoded form of the buckets of one series over a span (the store keeps one
 * block per series, tier and block span). It is seven ag_pack columns behind a one-byte version:
 * (start, min), (start, max), (start, sum), (start, corr), (start, count), (first_t, first),
 * (last_t, last), each preceded by its byte length as a uvarint. Pure code: no I/O, no state.
 */
#ifndef AG_ROLLUP_H
#define AG_ROLLUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ag_buf.h"
#include "ag_chunk.h"

typedef struct ag_rollup {
    int64_t start;            /* bucket start, a multiple of the width (floor for negatives;
                                 INT64_MIN when that multiple is not representable) */
    int64_t first_t, last_t;  /* start <= first_t <= last_t < start + width */
    double first, last;
    double min, max, sum;
    double corr;              /* sum of the values before each counter reset inside the bucket */
    uint64_t count;           /* samples folded in, >= 1 */
} ag_rollup_t;

/* The rollup tiers the store keeps. Tier 0 is raw data. */
#define AG_ROLLUP_TIERS 2
#define AG_ROLLUP_1M_MS 60000LL
#define AG_ROLLUP_1H_MS 3600000LL

/* Largest multiple of width that is <= t (width > 0), or INT64_MIN when no multiple is
 * representable (t within one width of INT64_MIN). */
int64_t ag_rollup_floor(int64_t t, int64_t width);

/* A bucket holding the single sample (t, v). */
void ag_rollup_init(ag_rollup_t *b, int64_t start, int64_t t, double v);
/* Adds sample (t, v) with t > b->last_t (the caller keeps time order). */
void ag_rollup_add(ag_rollup_t *b, int64_t t, double v);
/* Merges `next`, whose samples all come after a's, into a (a->start stays). */
void ag_rollup_merge(ag_rollup_t *a, const ag_rollup_t *next);

/* Folds samples s[0..n) (strictly increasing timestamps) into buckets of `width` ms, skipping
 * stale markers, and writes them in time order to out, which needs room for n buckets. Returns
 * the number written (0 when every sample was a stale marker). */
size_t ag_rollup_fold(const ag_sample_pt_t *s, size_t n, int64_t width, ag_rollup_t *out);
/* Merges buckets in[0..n) (in time order, each inside one `width` interval) into buckets of the
 * coarser `width`, written to out (room for n; out may equal in). Returns the count. */
size_t ag_rollup_regroup(const ag_rollup_t *in, size_t n, int64_t width, ag_rollup_t *out);

/* Appends the block of b[0..n) (1 <= n <= AG_PACK_MAX_SAMPLES, starts strictly increasing) to
 * out. AG_EINVAL for bad input (out unchanged), AG_ENOMEM. */
int ag_rollup_encode(const ag_rollup_t *b, size_t n, ag_buf_t *out);
/* The bucket count of a block (0 when its header is malformed). */
size_t ag_rollup_count(const uint8_t *d, size_t len);
/* Decodes block d[0..len) into out (room for ag_rollup_count buckets); *n gets the count.
 * AG_ECORRUPT when anything is malformed or inconsistent (columns of different lengths,
 * first/last outside their bucket, count 0); never reads outside d[0..len). */
int ag_rollup_decode(const uint8_t *d, size_t len, ag_rollup_t *out, size_t *n);

#endif
