/* store_int.h - internals shared by the store's files (store.c, store_read.c, head.c).
 *
 * Not a public header: only storage/ includes it. It is the one place besides the store's .c
 * files that may mention LMDB types.
 */
#ifndef AG_STORE_INT_H
#define AG_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

#include "ag_buf.h"
#include "ag_chunk.h"
#include "ag_hchunk.h"
#include "ag_rollup.h"
#include "ag_store.h"

/* One series in memory: identity, time bounds and its open (head) chunk. */
/* A chunk sealed out of the head by the group now being committed: readers take it from here
 * until the commit returned and the committer dropped it (invariant 5 in store.c). */
typedef struct sealing {
    struct sealing *next;
    int64_t start;
    size_t len;
    uint8_t bytes[]; /* the head chunk (ag_hchunk.h) */
} sealing_t;

typedef struct series {
    uint64_t id;        /* 0 while pending (created by a request not yet applied) */
    uint64_t hash;
    char *labels;       /* canonical encoding, right after the struct (one allocation) */
    uint32_t labels_len;
    struct series *next; /* hash-bucket chain */
    int64_t mint;       /* oldest sample ever stored; INT64_MAX when none */
    int64_t last_t;     /* newest sample; meaningful only when has_samples() */
    uint64_t last_vbits;
    ag_hchunk_t head;    /* open chunk; empty when count == 0 */
    struct sealing *sealing; /* chunks sealed by the group being committed, oldest first */
    bool dirty;          /* head holds samples not yet in a checkpointed open chunk */
    bool pending;
    uint64_t chk_gen;    /* request check state (see check_request in store.c) */
    int64_t chk_last_t;
    uint64_t chk_last_vbits;
    bool chk_has;        /* chk_last_t is a real sample (INT64_MIN is a valid timestamp) */
    /* Rollups (maint.c): rolled[k] is where tier k+1's stored blocks end (exclusive; a block
     * boundary, INT64_MIN when none); readers use stored buckets before it and fold the data
     * below the tier from there on. rmin[k] is the start of the oldest stored block of tier
     * k+1 (INT64_MAX when none), for retention. */
    int64_t rolled[AG_ROLLUP_TIERS];
    int64_t rmin[AG_ROLLUP_TIERS];
    int64_t compacted; /* raw blocks before this have had their chunks merged (memory only) */
    /* The observer's state (ag_store_observer_t), saved by checkpoints when slot_dirty. */
    uint8_t slot_status;
    bool slot_dirty;
    bool explicit_only;  /* name starts with AG_EXPLICIT_PREFIX (see ag_store.h) */
    uint8_t slot[AG_STORE_SLOT_SIZE];
} series_t;

static inline bool has_samples(const series_t *s) { return s->mint != INT64_MAX || s->head.count; }
/* Is t newer than everything the series holds? */
static inline bool is_newer(const series_t *s, int64_t t) { return !has_samples(s) || t > s->last_t; }

/* The series map: hash table by label encoding plus a dense array by id. */
typedef struct head {
    series_t **buckets;
    size_t nbuckets; /* power of two */
    size_t count;    /* series in the table, pending ones included */
    series_t **by_id; /* by_id[id - 1] */
    size_t nids, cap_ids;
} head_t;

int head_init(head_t *h);
void head_destroy(head_t *h); /* frees every series */
void series_drop_sealing(series_t *s); /* frees the series' sealing list */
series_t *head_find(head_t *h, uint64_t hash, const char *labels, size_t len);
/* Starts loading into the cache what looking up these keys will touch. */
void head_prefetch(head_t *h, const ag_series_key_t *k, size_t n);
/* Creates a series (id 0, pending) and inserts it. NULL on ENOMEM. */
series_t *head_insert(head_t *h, uint64_t hash, const char *labels, size_t len);
/* Removes and frees a series that was never given an id. */
void head_remove(head_t *h, series_t *s);
/* Removes and frees a series that has an id (retention dropped all its data). */
void head_delete(head_t *h, series_t *s);
/* Gives `s` the next id and records it in by_id. */
int head_assign_id(head_t *h, series_t *s, uint64_t id);
static inline series_t *head_by_id(head_t *h, uint64_t id)
{
    return id >= 1 && id <= h->nids ? h->by_id[id - 1] : NULL;
}

/* A write waiting for the committer. */
typedef struct pending_write {
    const ag_write_req_t *req;
    ag_write_res_t *res;
    int rc;
    bool done;
    struct pending_write *next;
} pending_write_t;

struct ag_store {
    ag_store_opts_t opts;
    char *path;
    int lock_fd;
    MDB_env *env;
    MDB_dbi dbi_meta, dbi_series, dbi_postings, dbi_chunks, dbi_wal, dbi_metadata, dbi_rollups,
        dbi_models, dbi_postings_cold;

    /* Readers hold `rw` shared while they open their LMDB read transaction and copy head chunks
     * (with the chunks being sealed); the committer holds it exclusively while it changes the
     * head, not while it commits (invariant 5 in store.c). */
    pthread_rwlock_t rw;
    series_t **sealed;     /* series with a non-empty `sealing` list (committer only) */
    size_t nsealed, cap_sealed;
    /* Series per metric name, for limits.max_series_per_metric (committer only): an
     * open-addressing table of names (owned) and counts, pending series included. */
    struct metric_count *mc;
    size_t mc_cap, mc_n;
    _Atomic uint64_t lim_series, lim_per_metric;
    _Atomic int64_t ooo_window_ms;
    _Atomic bool map_on_decoder; /* tests: see ag_store_set_map_on_decoder */
    ag_buf_t grp_scratch, grp_wal, grp_tmp; /* committer scratch of process_group */
    /* The observer's work for the group being committed, run after its writers were answered
     * (observe_deferred in store.c): each series and a copy of its samples. Committer only. */
    struct obs_entry *obs_ent;
    size_t obs_n, obs_cap;
    ag_sample_t *obs_smp;
    size_t obs_nsmp, obs_capsmp;
    ag_sample_pt_t *pack_in; /* committer scratch for transcoding sealed chunks */
    size_t pack_cap;
    ag_buf_t pack_out;
    head_t head;
    uint64_t next_id;
    uint64_t wal_seq;      /* last WAL sequence written */
    uint64_t wal_bytes;    /* since the last checkpoint */
    int64_t last_checkpoint_ms;
    uint64_t gen;          /* request generation for check state */
    int64_t min_time, max_time;
    bool has_time;         /* min_time/max_time hold a sample's time */
    bool failed;           /* the head could not be rebuilt after a failed commit */
    bool full;             /* the last commit failed for lack of space (committer only) */
    bool open_copied;      /* the last checkpoint copied open chunks (CHUNK_HEADFMT) */
    int64_t full_ms;       /* when (monotonic ms) */

    pthread_mutex_t qlock;
    pthread_cond_t qcond;    /* signals the committer */
    pthread_cond_t donecond; /* signals writers whose request finished */
    pending_write_t *queue, *queue_tail;
    ag_store_write_hook_fn hook; /* under qlock */
    ag_store_observer_t obs;     /* under qlock; obs.samples NULL when none */
    uint64_t obs_gen, obs_done_gen; /* groups that copied `obs` / finished with it (qlock) */
    void *hook_ctx;
    bool stopping;
    bool maint_force; /* ag_store_maintain waits for a full maintenance pass */
    void *map_addr;   /* LMDB's map of data.mdb (found in /proc/self/maps; NULL if not) */
    size_t map_len;
    pthread_t committer;
    bool committer_started;

    /* Maintenance (maint.c, committer thread only unless atomic). */
    _Atomic int64_t ret_ms[AG_ROLLUP_TIERS + 1]; /* retention per tier (raw, 1m, 1h); 0 = keep */
    uint64_t maint_next; /* the series id the next maintenance step starts at */
    int64_t maint_idle_ms; /* when a full pass last found nothing to do (monotonic) */
    struct maint_upd *upd; /* changes applied after a maintenance commit */
    size_t nupd, cap_upd;
    ag_rollup_t *rbuf; /* bucket scratch */
    size_t rcap;
    _Atomic uint64_t st_rolled_blocks, st_deleted_chunks, st_deleted_blocks, st_deleted_series,
        st_maint_steps, st_compacted;
    _Atomic uint64_t st_appended, st_duplicate, st_ooo, st_created, st_sealed, st_commits,
        st_commit_fail, st_checkpoints, st_head_series;
    _Atomic uint64_t st_commit_ns;
};

/* Key helpers: 8-byte big-endian ids and timestamps with the sign bit flipped so that byte
 * order equals numeric order. */
void key_put_u64(unsigned char *p, uint64_t v);
uint64_t key_get_u64(const unsigned char *p);
static inline uint64_t ts_to_key(int64_t t) { return (uint64_t)t ^ 0x8000000000000000ULL; }
static inline int64_t key_to_ts(uint64_t k) { return (int64_t)(k ^ 0x8000000000000000ULL); }

/* Unsigned LEB128 varints (the WAL, cold groups). put sets b->oom on failure; get returns
 * AG_ECORRUPT when the varint runs past `end` or over 64 bits. */
static inline void put_uvarint(ag_buf_t *b, uint64_t v)
{
    /* The call only when the buffer may be short: this runs twice per sample in the WAL. */
    if (b->cap - b->len < 11 && !ag_buf_reserve(b, 10)) return;
    unsigned char *p = (unsigned char *)b->data + b->len, *start = p;
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    b->len += (size_t)(p - start);
    b->data[b->len] = 0;
}

static inline int get_uvarint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return AG_ECORRUPT;
        unsigned char c = *(*p)++;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return AG_OK;
        }
    }
    return AG_ECORRUPT;
}

/* Cold groups (group.c): at a clean stop the compaction folds the per-id records of `series`
 * (id -> labels) and the observer slots of `models` (SLOT_KEY_TAG | id -> slot) into one
 * compressed record per range of GROUP_SERIES_IDS (GROUP_SLOT_IDS) ids, keyed by the key of
 * the range's first id followed by one 0x00 byte, so a group sorts among the ids of its range. A value is a format byte
 * (GROUP_FORMAT), the uvarint length of the raw member list, then that list deflated (zlib);
 * the list holds, by ascending id, uvarint (id - first id), uvarint length, the record's value.
 * A per-id record written later (a new series in a partly filled range, a slot saved by a
 * checkpoint) sits beside its group; for slots it is the newer one. */
#define GROUP_IDS 128       /* the largest range */
#define GROUP_SERIES_IDS 128 /* label sets deflate to ~4 bytes: 128 of them fit in a page */
#define GROUP_SLOT_IDS 32    /* slots to ~20: ranges of ~700 bytes fill pages best */
#define GROUP_FORMAT 1
/* The first id of id's range of `span` ids. */
static inline uint64_t group_first(uint64_t id, uint64_t span)
{
    return (id - 1) / span * span + 1;
}
typedef struct group_member {
    uint64_t id;
    const unsigned char *val;
    size_t len;
} group_member_t;
/* Appends the value of a group of n members (ascending ids of one range starting at first) to
 * out. */
int group_encode(const group_member_t *m, size_t n, uint64_t first, ag_buf_t *out);
/* Inflates a group value whose range starts at `first` into raw (reset first) and lists its
 * members in *m (a growing array owned by the caller, *cap its capacity); the members point into
 * raw. AG_ECORRUPT for a malformed value, AG_ENOMEM. */
int group_decode(const void *val, size_t len, uint64_t first, uint64_t span, ag_buf_t *raw,
                 group_member_t **m, size_t *n, size_t *cap);
/* Cold postings: the compaction also moves every postings list (DUPSORT, 8-byte ids) into the
 * plain table `postings_cold` under the same key, as COLD_POSTINGS_FORMAT, uvarint count, then
 * the ids as uvarint deltas (the first from 0; every delta > 0), without the ids of series that
 * are gone. Series created later post their ids in `postings` as before; readers take the
 * union. Retention deletes ids from `postings` only: an id left in a cold list names no series
 * (ids are never reused), readers skip it, and the next compaction drops it. */
#define COLD_POSTINGS_FORMAT 1
/* Appends the value for n ascending, distinct, non-zero ids to out. */
int cold_postings_encode(const uint64_t *ids, size_t n, ag_buf_t *out);
/* Calls fn for each id of a cold postings value, in order; stops at fn's first non-zero return
 * and returns it. AG_ECORRUPT for a malformed value (possibly after some calls). */
int cold_postings_each(const void *val, size_t len, int (*fn)(void *ctx, uint64_t id), void *ctx);

/* A growing list of series ids (store_read.c). */
typedef struct idset {
    uint64_t *v;
    size_t n, cap;
} idset_t;
int idset_push(idset_t *s, uint64_t id);              /* AG_ENOMEM */
int idset_push_cb(void *ctx, uint64_t id);            /* idset_push for a callback (ctx: set) */
void idset_normalize(idset_t *s);                     /* sorted, duplicates dropped */
/* Appends the ids of the `postings` key under cursor c to out. AG codes. */
int postings_dups(MDB_cursor *c, idset_t *out);

/* Removes id from the group of its range in table dbi, whose keys start with prefix[0..plen)
 * (plen <= 8); deletes the group when it was the last member. AG_OK when there is no such
 * group or id is not in it. */
int group_remove(MDB_txn *txn, MDB_dbi dbi, const unsigned char *prefix, size_t plen,
                 uint64_t span, uint64_t id);

/* Chunk values: a flag byte (CHUNK_OPEN when the chunk is a checkpoint of a head chunk, which
 * the head reloads on start, else sealed), then
 *   with CHUNK_PACKED  an ag_pack (ag_pack.h), which knows its own count and time range (what
 *                      the store writes);
 *   without            8 bytes big-endian max time, then a Gorilla chunk (ag_chunk.h) (written
 *                      before packing existed; still read). */
#define CHUNK_OPEN 1
#define CHUNK_PACKED 2
/* With CHUNK_OPEN only: 8 bytes big-endian max time, then the head chunk's own bytes
 * (ag_hchunk.h), as checkpoints write them while augurd runs (a copy, where packing would
 * re-encode every open chunk); the last checkpoint at shutdown packs them. */
#define CHUNK_HEADFMT 4
#define CHUNK_HDR 9
/* With CHUNK_PACKED only: the pack's first timestamp (its third field, see pack.c) is left
 * out of the value because it equals the chunk key's mint; readers put it back. The
 * compaction at a clean stop writes chunks so (chunk_val_strip); 6 bytes a chunk. */
#define CHUNK_T0KEY 8
/* The number of samples a chunk value holds (0 when malformed), its last timestamp, and its
 * samples in [mint, maxt] written to out (room for the count). AG_ECORRUPT when malformed.
 * `kmint` is the mint of the value's key (chunk_key_mint). */
size_t chunk_val_count(const unsigned char *v, size_t len, int64_t kmint);
int chunk_val_maxt(const unsigned char *v, size_t len, int64_t kmint, int64_t *maxt);
int chunk_val_decode(const unsigned char *v, size_t len, int64_t kmint, int64_t mint,
                     int64_t maxt, ag_sample_pt_t *out, size_t *n);
static inline int64_t chunk_key_mint(const void *key)
{
    return key_to_ts(key_get_u64((const unsigned char *)key + 8));
}
/* Writes the CHUNK_T0KEY form of a packed chunk value (key mint kmint) to out (reset first)
 * and returns true, when it has one: a pack whose first timestamp is kmint, and whose
 * stripped form reads back to the same bytes. false leaves the value to be stored as it is. */
bool chunk_val_strip(const unsigned char *v, size_t len, int64_t kmint, ag_buf_t *out);

/* Keys of the `models` table: observer slots are SLOT_KEY_TAG | id (8 B BE) -> status byte +
 * slot; state records (ag_blob_in_t) are BLOB_KEY_TAG | the caller's key. */
#define SLOT_KEY_TAG 0
#define BLOB_KEY_TAG 1
int store_lmdb_err(int rc); /* maps an LMDB/errno code to AG_E* */
int store_commit_err(ag_store_t *s, int rc); /* the same for a failed commit (full disk) */
void chunk_key(unsigned char k[16], uint64_t id, int64_t t);
/* Builds the postings key for one label (name, value NUL-free, given by length) into `key`
 * (at least POSTING_KEY_MAX + 16 bytes); returns its length. */
#define POSTING_KEY_MAX 480 /* LMDB's default maximum key size is 511 bytes */
size_t posting_key_n(unsigned char *key, const char *name, size_t nl, const char *value,
                     size_t vl);

/* One series as a reader sees it: copies taken under `rw` with the read transaction. */
typedef struct sel_item {
    uint64_t id;
    int64_t head_start; /* INT64_MAX when the head chunk is empty */
    int64_t mem_start;  /* the first chunk held in memory (sealing or head); LMDB has the rest */
    sealing_t *sealing; /* copies of the chunks being sealed (plan arena), oldest first */
    uint8_t *head;      /* copy of the head chunk (plan arena) */
    size_t head_len;
    char *labels;       /* copy of the canonical labels (plan arena) */
    size_t labels_len;
    int64_t rolled[AG_ROLLUP_TIERS];
} sel_item_t;
/* Appends the item's samples in [mint, maxt] to sd (whose array has *cap room), reading sealed
 * chunks through txn; *total counts samples against max (0 = no limit, else AG_ELIMIT). */
int store_load_samples(ag_store_t *s, MDB_txn *txn, const sel_item_t *it, int64_t mint,
                       int64_t maxt, ag_series_data_t *sd, size_t *cap, uint64_t *total,
                       uint64_t max);
/* The item of a live series, for the committer (no copies: the head is its own). */
void store_item_of(const series_t *se, sel_item_t *it);

/* Rollup keys: tier (1 = 1m, 2 = 1h) | series id | block start, 17 bytes. */
#define ROLLUP_KEY 17
void rollup_key(unsigned char k[ROLLUP_KEY], int tier, uint64_t id, int64_t start);
/* Block span of tier k (1-based). */
int64_t rollup_block_ms(int tier);
int64_t rollup_width_ms(int tier);

/* compact.c: a clean close rewrites every table into a compacted copy of the data file (true
 * when it did; not for files under opts.compact_min_bytes or with over 1 GiB in use) and
 * installs it after the environment is closed; open removes a copy left by a crash. */
bool store_compact_copy(ag_store_t *s);
void store_compact_install(const ag_store_t *s);
void store_compact_cleanup(const ag_store_t *s);

/* maint.c: rollups and retention, run by the committer between groups. */
/* One bounded maintenance step (a short write transaction); returns true when it did work. */
bool maint_step(ag_store_t *s);
/* Loads rolled/rmin of a series from `rollups` (at open). */
int maint_load_series(ag_store_t *s, MDB_txn *txn, series_t *se);
/* A sample at t was just added to se in txn: when t falls where rollups are already stored,
 * drop those blocks (from t's block on) so they are rolled again, and move `rolled` back. */
int maint_invalidate(ag_store_t *s, MDB_txn *txn, series_t *se, int64_t t);
/* The oldest timestamp retention lets a new sample have (INT64_MIN when raw is kept forever). */
int64_t maint_min_accepted(ag_store_t *s);
/* Drops a series from the head and the per-metric counts (caller holds `rw` exclusively). */
void store_forget_series(ag_store_t *s, series_t *se);

#endif
