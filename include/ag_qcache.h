/* ag_qcache.h - a result cache for range queries over the immutable past.
 *
 * Dashboards refresh the same ranges every few seconds. A range query is an independent instant
 * evaluation at every step, so the steps a previous request already evaluated can be answered
 * from memory and only the rest (normally the newest few steps) evaluated again. The cache keeps,
 * per (canonical query text, step, lookback delta, start mod step), one matrix covering a
 * contiguous run of steps [cs, cb], and never a step newer than now - AG_QCACHE_MIN_AGE_MS.
 *
 * Correctness rests on one rule: a sample with timestamp L can only change steps t >= L (a step
 * reads data in [t - window - offset, t - offset] with offset >= 0). The store reports the oldest
 * timestamp of every batch it makes visible (ag_store_set_write_hook -> ag_qcache_notify_write)
 * and the cache truncates every entry to steps < L. Expressions that read data after their step
 * (`@`, negative offsets) are never cached. See daemon/qcache.c for the race between a query and
 * a concurrent late write.
 *
 * Retention or deletion of data does not exist yet. Whatever deletes samples in the future must
 * call ag_qcache_clear (or notify with the oldest deleted timestamp) after the deletion is
 * visible, or cached steps would keep answering with deleted data.
 *
 * Thread safety: every function may be called from any thread concurrently; one mutex guards the
 * entries, counters are atomics.
 */
#ifndef AG_QCACHE_H
#define AG_QCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "ag_err.h"
#include "ag_eval.h"
#include "ag_promql.h"

/* Steps newer than now - 2 minutes are never cached. In-order ingest of fresh samples (scrape
 * time plus remote-write batching and retries: seconds, rarely a minute) then lands after every
 * cached step, so it never truncates anything and its notification takes the lock-free fast
 * path. Older samples are still handled exactly; they just cost a truncation. */
#define AG_QCACHE_MIN_AGE_MS (2 * 60 * 1000)
/* Late-write notifications remembered for queries in flight (see qcache.c). */
#define AG_QCACHE_RING 64
/* Most steps one entry keeps; older steps are dropped from its front when it grows past this. */
#define AG_QCACHE_MAX_STEPS 11001

typedef struct ag_qcache ag_qcache_t;

typedef struct ag_qcache_stats {
    uint64_t hits;          /* range requests answered at least partly from the cache */
    uint64_t misses;        /* cacheable requests that found nothing usable */
    uint64_t invalidations; /* entries truncated (or dropped) by a late write */
    uint64_t bytes;         /* memory held by the entries, as accounted against the budget */
    uint64_t entries;
} ag_qcache_stats_t;

/* A cache holding at most max_bytes (0 = disabled: every call evaluates, nothing is kept).
 * Returns NULL when out of memory. */
ag_qcache_t *ag_qcache_new(uint64_t max_bytes);
/* Frees the cache and every entry. No other call may be running or follow. */
void ag_qcache_free(ag_qcache_t *c);
/* Changes the budget, evicting least recently used entries to fit; 0 disables and empties. */
void ag_qcache_set_max_bytes(ag_qcache_t *c, uint64_t max_bytes);
/* Drops every entry (for a future deletion of data; see above). */
void ag_qcache_clear(ag_qcache_t *c);

/* Samples with timestamps >= min_t became visible to queries: forget every cached step >= min_t.
 * Cheap (one atomic load) when min_t is newer than every step cached or being cached. */
void ag_qcache_notify_write(ag_qcache_t *c, int64_t min_t);
/* The same, with the signature of ag_store_write_hook_fn (ctx is the ag_qcache_t). */
void ag_qcache_store_hook(void *ctx, int64_t min_t);

/* Can a range query of `n` be answered piecewise from cached steps? False for `@` (any form) and
 * negative offsets anywhere in the tree: those read data after the evaluation step. */
bool ag_qcache_cacheable(const ag_pq_node_t *n);

/* Evaluates the steps [start, end] of the query into a matrix; the same contract as
 * ag_eval_range over those steps. Must return a matrix sorted by labels, omitting series without
 * points, with every point on the grid start + k * step. */
typedef int (*ag_qcache_eval_fn)(void *ctx, int64_t start, int64_t end, ag_value_t *out,
                                 ag_errmsg_t *e);

/* Answers the range query `n` over start, start + step, ... <= end (step > 0, end >= start) with
 * lookback `lookback_ms`: cached steps where there are some, `eval` for the rest, merged into one
 * matrix sorted by labels (exactly what ag_eval_range would return, without empty series). Steps
 * <= now_ms - AG_QCACHE_MIN_AGE_MS of the result are then cached. When `c` is NULL or disabled
 * or `n` is not cacheable this is just eval(ctx, start, end, out, e). On success *out is an owned
 * matrix (free with ag_value_free); on failure it is empty and the result is eval's error or
 * AG_ENOMEM. A cache hit can answer without evaluating cached steps, so a query over them that
 * would hit query.max_samples when evaluated whole may succeed. */
int ag_qcache_range(ag_qcache_t *c, const ag_pq_node_t *n, int64_t start, int64_t end,
                    int64_t step, int64_t lookback_ms, int64_t now_ms, ag_qcache_eval_fn eval,
                    void *ctx, ag_value_t *out, ag_errmsg_t *e);

void ag_qcache_stats(ag_qcache_t *c, ag_qcache_stats_t *st);

#endif
