/* ag_store.h - the durable series store: LMDB underneath, an in-memory head on top.
 *
 * One ag_store_t owns one LMDB environment in a data directory, a committer thread that performs
 * every write (group commit), and the in-memory head of open chunks. Any number of threads may
 * call the functions below concurrently.
 *
 * The contract that matters most: ag_store_write returns 0 only after the samples it accepted
 * are durable on disk (their LMDB transaction committed with fsync). Callers answer 2xx only
 * when it returned 0. See the numbered invariants at the top of storage/store.c.
 */
#ifndef AG_STORE_H
#define AG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ag_chunk.h"
#include "ag_err.h"
#include "ag_labels.h"
#include "ag_matcher.h"
#include "ag_rollup.h"

typedef struct ag_store ag_store_t;

typedef struct ag_store_opts {
    const char *path;               /* data directory; created when missing */
    uint64_t map_size;              /* LMDB map size in bytes: the most the data file may grow to */
    unsigned chunk_samples;         /* samples per chunk before it is sealed (default 120) */
    uint64_t checkpoint_wal_bytes;  /* WAL bytes after which open chunks are checkpointed */
    unsigned checkpoint_interval_s; /* ... or after this many seconds */
    uint64_t max_series;            /* series in the store at most (0 = no limit) */
    int64_t ooo_window_ms;          /* accept samples up to this much older than the newest of
                                       their series, merged in place (0 = none) */
    uint64_t max_series_per_metric; /* series of one metric name at most (0 = no limit) */
    int64_t retention_ms[3];        /* how long raw data, 1 m and 1 h rollups are kept, counted
                                       back from the newest sample (0 = forever); each at least
                                       the one before (checked by the config) */
    uint64_t compact_min_bytes;     /* a clean close rewrites the data file compacted when it is
                                       at least this big (default 0: always) */
} ag_store_opts_t;

/* Fills `o` with the defaults (path "./data", 64 GiB map, 120 samples, 64 MiB, 300 s, no series
 * limits, everything kept forever). */
void ag_store_opts_default(ag_store_opts_t *o);

/* Opens (creating when needed) the store, recovers the head from LMDB and replays the WAL. Fails
 * with AG_EIO (message says why: permissions, directory locked by another process...),
 * AG_ECORRUPT, AG_ENOMEM. */
int ag_store_open(const ag_store_opts_t *o, ag_store_t **out, ag_errmsg_t *e);
/* Stops accepting writes, lets queued writes finish, checkpoints, closes LMDB, frees all. */
void ag_store_close(ag_store_t *s);

/* A sample: t in milliseconds since the epoch, v stored bit-exactly (NaN payloads and the stale
 * marker survive). The codec's decoded-sample type, so chunks decode straight into selections. */
typedef ag_sample_pt_t ag_sample_t;

typedef struct ag_series_in {
    const ag_label_t *labels; /* must pass ag_labels_validate */
    size_t nlabels;
    const ag_sample_t *samples;
    size_t nsamples;
} ag_series_in_t;

typedef struct ag_metadata_in {
    const char *family; /* metric family name */
    const char *type;   /* "counter", "gauge", "histogram", "gaugehistogram", "summary", "info",
                           "stateset", "unknown" */
    const char *help;
    const char *unit;
} ag_metadata_in_t;

/* A series' canonical label encoding (ag_labels_encode) and its ag_labels_hash, when the
 * caller computed them already (the remote-write decoder does, on its own thread, so the
 * single committer thread does not). */
typedef struct ag_series_key {
    const char *enc;
    size_t len;
    uint64_t hash;
} ag_series_key_t;

typedef struct ag_write_req {
    const ag_series_in_t *series;
    size_t nseries;
    const ag_metadata_in_t *meta;
    size_t nmeta;
    const ag_series_key_t *keys; /* NULL, or keys[i] is series[i]'s (trusted: must be exact) */
    const struct ag_blob_in *blobs; /* state records written in the same transaction */
    size_t nblobs;
} ag_write_req_t;

/* A state record (e.g. a forecasting model's saved state) put into or deleted from the store's
 * `models` table in the same transaction as a request's samples, so state and the samples
 * derived from it are durable together. Keys are 1..AG_BLOB_KEY_MAX bytes; val NULL deletes. */
#define AG_BLOB_KEY_MAX 400
typedef struct ag_blob_in {
    const void *key;
    size_t key_len;
    const void *val; /* NULL: delete the key (absent is fine) */
    size_t val_len;
} ag_blob_in_t;

typedef struct ag_write_res {
    uint64_t appended;       /* new samples stored */
    uint64_t duplicates;     /* exact resends (same series, timestamp and value bits) skipped */
    uint64_t series_created;
    ag_errmsg_t err;         /* set when the call fails */
} ag_write_res_t;

/* Writes a request atomically and durably. Returns:
 *   0               every sample is stored (or was already stored exactly), durably;
 *   AG_ECONFLICT    a sample is older than the out-of-order window allows, or contradicts a
 *                   stored sample at the same timestamp; nothing of the request was written
 *                   (res->err says which). Samples older than their series' newest but within
 *                   the window are merged into the chunk that covers their time;
 *   AG_EINVAL       the same series appears twice in the request; nothing written;
 *   AG_ELIMIT       the request would create a series beyond max_series or
 *                   max_series_per_metric; nothing written (res->err names the limit);
 *   AG_EFULL        the disk or LMDB map is full; nothing written; retry later;
 *   AG_EIO, AG_ENOMEM  transient failure; nothing written;
 *   AG_ESHUTDOWN    the store is closing; nothing written. */
int ag_store_write(ag_store_t *s, const ag_write_req_t *r, ag_write_res_t *res);

/* Series whose metric name starts with AG_EXPLICIT_PREFIX are selected (by ag_store_select,
 * ag_store_scan, ag_store_scan_rollups, ag_store_label_values) only when a matcher names them:
 * __name__ equal to their name. They are what the daemon derives on its own for every series
 * (zero-config anomaly scores), which must not change the answer of a catch-all query such as
 * {job="x"} or count({__name__=~".+"}) compared with Prometheus over the same data. */
#define AG_EXPLICIT_PREFIX "augur_auto_"

/* One series of a selection: its canonical label encoding and its samples in time order. */
typedef struct ag_series_data {
    char *labels; /* owned by the selection */
    size_t labels_len;
    ag_sample_t *samples; /* owned by the selection */
    size_t n;
} ag_series_data_t;

typedef struct ag_selection {
    ag_series_data_t *series; /* sorted by labels (Prometheus' order) */
    size_t n;
    uint64_t samples; /* total samples loaded */
} ag_selection_t;

/* Selects the series matching all matchers (nm may be 0 = every series) and loads their samples
 * with mint <= t <= maxt, stale markers included. When with_samples is false the series whose
 * stored time span (oldest to newest raw sample) overlaps the range are listed, without samples
 * and without checking that a sample falls inside (Prometheus' /api/v1/series is as coarse: it
 * goes by chunk time ranges). Fails with AG_ELIMIT when
 * more than max_samples (0 = unlimited) would be loaded, AG_EIO, AG_ECORRUPT, AG_ENOMEM. */
int ag_store_select(ag_store_t *s, const ag_matcher_t *m, size_t nm, int64_t mint, int64_t maxt,
                    bool with_samples, uint64_t max_samples, ag_selection_t *out, ag_errmsg_t *e);
void ag_selection_free(ag_selection_t *sel);
/* Called once per series of a scan: its canonical labels and its samples in the scanned range,
 * in time order, stale markers included; both stay valid only during the call. A non-zero return
 * stops the scan and becomes its result. */
typedef int (*ag_series_fn)(void *ctx, const char *labels, size_t labels_len,
                            const ag_sample_t *samples, size_t n);
/* The streaming form of ag_store_select: calls fn for each selected series with samples in
 * [mint, maxt], in label order, holding one series' samples at a time. Returns 0, fn's non-zero
 * result (e untouched), or AG_ELIMIT (more than max_samples loaded in total), AG_EIO,
 * AG_ECORRUPT, AG_ENOMEM with e set. */
int ag_store_scan(ag_store_t *s, const ag_matcher_t *m, size_t nm, int64_t mint, int64_t maxt,
                  uint64_t max_samples, ag_series_fn fn, void *ctx, ag_errmsg_t *e);

/* The per-series half of a mapped scan: gets what an ag_series_fn gets and writes its result
 * (msize bytes at most) to out. It may run on a thread other than the caller's, at the same time
 * as the other series' maps and the caller's fn; `slot` (0 or 1) tells the two threads apart,
 * for scratch space kept per slot. A non-zero return stops the scan and becomes its result,
 * with e set from the code. */
typedef int (*ag_series_map_fn)(void *mctx, int slot, const char *labels, size_t labels_len,
                                const ag_sample_t *samples, size_t n, void *out);
/* The in-order half: the series' labels, how many samples map got, and what map wrote for it.
 * The samples themselves are gone by then: a large scan decodes each series into scratch
 * memory of the thread that maps it, which stays in that core's cache. */
typedef int (*ag_series_mapped_fn)(void *ctx, const char *labels, size_t labels_len, size_t n,
                                   const void *mapped);
/* ag_store_scan with the work split: map runs for every series with samples, on either of two
 * threads when the scan is large, and fn on the caller's thread in label order with each
 * series' map output, so per-series work runs on two cores while fn sees the order of a plain
 * scan. */
int ag_store_scan_map(ag_store_t *s, const ag_matcher_t *m, size_t nm, int64_t mint, int64_t maxt,
                      uint64_t max_samples, ag_series_map_fn map, void *mctx, size_t msize,
                      ag_series_mapped_fn fn, void *ctx, ag_errmsg_t *e);

/* Called once per series of a rollup scan with its buckets in time order (ag_rollup.h); valid
 * only during the call. A non-zero return stops the scan and becomes its result. */
typedef int (*ag_rollup_fn)(void *ctx, const char *labels, size_t labels_len,
                            const ag_rollup_t *b, size_t n);
/* Like ag_store_scan, but hands each selected series' rollup buckets of `width`
 * (AG_ROLLUP_1M_MS or AG_ROLLUP_1H_MS) whose start lies in [mint, maxt]. Stored blocks are used
 * where the series has them; the rest is folded from the tier below (finally raw samples), so
 * the buckets always cover every sample a raw read would return, up to the newest one. Each
 * bucket counts as one sample against max_samples. AG_EINVAL for another width. */
int ag_store_scan_rollups(ag_store_t *s, int64_t width, const ag_matcher_t *m, size_t nm,
                          int64_t mint, int64_t maxt, uint64_t max_samples, ag_rollup_fn fn,
                          void *ctx, ag_errmsg_t *e);

/* A sorted list of unique strings, owned by the list. */
typedef struct ag_strlist {
    char **items;
    size_t n;
} ag_strlist_t;
void ag_strlist_free(ag_strlist_t *l);

/* Label names (name == NULL) or the values of label `name`, over the series that match `m` and
 * have samples in [mint, maxt]. */
int ag_store_label_values(ag_store_t *s, const char *name, const ag_matcher_t *m, size_t nm,
                          int64_t mint, int64_t maxt, ag_strlist_t *out, ag_errmsg_t *e);

typedef struct ag_metadata {
    char *family, *type, *help, *unit; /* owned by the list */
} ag_metadata_t;
typedef struct ag_metadata_list {
    ag_metadata_t *items; /* sorted by family */
    size_t n;
} ag_metadata_list_t;
/* All stored metric metadata, or only `metric`'s when non-NULL. */
int ag_store_metadata(ag_store_t *s, const char *metric, ag_metadata_list_t *out);
void ag_metadata_list_free(ag_metadata_list_t *l);

/* Called by the committer with the oldest timestamp among the samples a group commit appended,
 * once that commit returned 0. Readers may see the samples from shortly before the call (they
 * enter the head before the commit's fsync); every query that starts after the call sees them.
 * So a query whose snapshot misses them started before the call. Not called for groups that
 * appended no sample (duplicates, metadata only, failures), nor for WAL replay at open. It runs
 * on the committer thread with the store locked: it must be quick and must not call the store. */
typedef void (*ag_store_write_hook_fn)(void *ctx, int64_t min_t);
/* Installs (fn non-NULL) or removes the hook; one hook per store. Safe while writes run: a group
 * already being committed uses the hook that was installed when it started. */
void ag_store_set_write_hook(ag_store_t *s, ag_store_write_hook_fn fn, void *ctx);
/* For tests: with `on`, the helper thread of a large scan decodes and maps every series itself
 * (normally the two threads share the series as they come, so which one works on a series
 * depends on timing), so that a test can be sure the second thread's path ran. */
void ag_store_set_map_on_decoder(ag_store_t *s, bool on);
/* Changes the out-of-order window of a running store. */
void ag_store_set_ooo_window(ag_store_t *s, int64_t window_ms);
/* Runs maintenance (rollups, retention) until a whole pass finds nothing left to do, and
 * returns then. It runs by itself in the background; tests and tools call this to wait. */
void ag_store_maintain(ag_store_t *s);
/* The oldest time raw samples are still kept for (newest sample - storage.retention); older
 * data is only in rollups. INT64_MIN when raw data is kept forever. */
int64_t ag_store_raw_horizon(ag_store_t *s);
/* Changes the retention of a running store (raw, 1 m, 1 h; 0 = forever). */
void ag_store_set_retention(ag_store_t *s, const int64_t ret_ms[3]);
/* Changes the series limits of a running store (0 = no limit); series already stored stay. */
void ag_store_set_limits(ag_store_t *s, uint64_t max_series, uint64_t max_series_per_metric);

/* Reads every state record whose key starts with prefix[0..plen) (plen may be 0), in key
 * order, from one consistent snapshot; fn's pointers are valid during the call only. A non-zero
 * return from fn stops the walk and is returned. AG_EIO/AG_ENOMEM from LMDB. */
typedef int (*ag_blob_fn)(void *ctx, const void *key, size_t key_len, const void *val,
                          size_t val_len);
int ag_store_blobs(ag_store_t *s, const void *prefix, size_t plen, ag_blob_fn fn, void *ctx);

/* ---- the sample observer: per-series state kept by the store for someone else -------------
 * Every series carries AG_STORE_SLOT_SIZE bytes of opaque state and a status byte for one
 * observer (the daemon's zero-config anomaly detector), which the store keeps in memory, saves
 * at every checkpoint (when changed) and restores on start, so a restart resumes from the last
 * checkpoint (a clean shutdown checkpoints). The status byte is 0 for a new series and
 * AG_SLOT_LOADED for a series whose slot was restored; any other value is the observer's. */
#define AG_STORE_SLOT_SIZE 64
#define AG_SLOT_LOADED 1
typedef struct ag_store_observer {
    /* Called on the committer thread, after the group's commit returned and its writers were
     * answered (the head is not locked; the committer is the only thread that touches slots),
     * for each series of an accepted request with the request's samples for it (in request
     * order; duplicates and merged out-of-order samples included: the observer skips what it
     * has seen). Returns true when it changed the slot. Must be quick, must not block and must
     * not call the store. */
    bool (*samples)(void *ctx, const char *labels, size_t labels_len, uint8_t *slot,
                    uint8_t *status, const ag_sample_t *smp, size_t n);
    /* Called once per group after its samples were observed: `committed` false means the
     * group's requests failed; `samples` was then not called for them (the slots are restored
     * from the last checkpoint with the head). */
    void (*group_end)(void *ctx, bool committed);
    void *ctx;
} ag_store_observer_t;
/* Installs (o non-NULL, copied) or removes the observer; takes effect from the next group, and
 * returns once no group still uses the old one (so its context may then be freed). */
void ag_store_set_observer(ag_store_t *s, const ag_store_observer_t *o);

typedef struct ag_store_stats {
    uint64_t series;            /* series in the index */
    uint64_t head_series;       /* series with samples in an open chunk */
    uint64_t samples_appended;  /* since start */
    uint64_t samples_duplicate;
    uint64_t samples_out_of_order;
    uint64_t series_created;
    uint64_t chunks_sealed;
    uint64_t commits;
    uint64_t rollup_blocks_written; /* blocks rolled (tiers 1 and 2) since start */
    uint64_t retention_chunks_deleted, retention_blocks_deleted, retention_series_deleted;
    uint64_t maintenance_steps;
    uint64_t chunks_compacted;      /* sealed chunks merged into one per finished 6 h block */
    uint64_t commit_failures;
    double commit_seconds_sum;  /* time spent in mdb_txn_commit (fsync included) */
    uint64_t checkpoints;
    uint64_t wal_bytes;         /* WAL bytes not yet checkpointed */
    uint64_t map_size;          /* LMDB map size */
    uint64_t used_bytes;        /* pages in use (last page number * page size) */
    uint64_t file_bytes;        /* size of data.mdb on disk */
    int64_t min_time, max_time; /* oldest and newest sample (ms); 0 when empty */
} ag_store_stats_t;
void ag_store_stats(ag_store_t *s, ag_store_stats_t *st);

#endif
