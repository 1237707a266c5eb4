/* maint.c - the store's background upkeep: rollup tiers and retention.
 *
 * Runs on the committer thread between group commits (store.c), one bounded step at a time: a
 * step is one short write transaction that touches at most MAINT_OPS keys or runs MAINT_MS, so
 * a remote-write request never waits long behind it. The committer runs a step when no request
 * is queued, and at least once a second under constant load.
 *
 * Rollups. Tier 1 keeps 1 m buckets, tier 2 1 h buckets (ag_rollup.h), stored per series in
 * blocks of 6 h (tier 1) and 10 d (tier 2) under `rollups` key tier | id | block start. A
 * series' block is rolled once no sample can land in it any more: its end is older than the
 * series' newest sample by the out-of-order window, or older than the store's newest sample by
 * that window plus MAINT_SLACK_MS (series that stopped or lag). series.rolled[k] is where the
 * stored blocks of a tier end; readers fold what lies after it from the tier below (raw data
 * for tier 1), so a sample is in every tier's answer as soon as it is in the raw answer. A
 * sample that still arrives for a rolled block (a lagging sender) drops that series' blocks
 * from the sample's block on, in the transaction that adds it, and moves `rolled` back; they
 * are rolled again (maint_invalidate). Tier 2 is computed from tier 1's blocks.
 *
 * Retention. With the reference time R = min(newest sample, now + 10 min) (data time, so a
 * replayed or time-shifted load ages as its data says; a clock far in the future cannot wipe
 * the store), raw chunks that end before R - retention.raw are deleted, but never data a tier
 * still needs: raw only below tier 1's rolled edge, tier 1 only below tier 2's, each cut
 * rounded down to the next tier's block. A new sample older than R - retention.raw is refused.
 * A series left without any data is deleted from the index. Freed pages are reused by LMDB, so
 * in steady state the file stops growing.
 *
 * In-memory changes (rolled, rmin, mint, deleted series) are made only after the step's
 * commit returned, under the store lock, so readers always see state their snapshot holds.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ag_log.h"
#include "ag_pack.h"
#include "store_int.h"

#define MAINT_OPS 4096
#define MAINT_MS 20
#define MAINT_IDLE_MS 10000 /* after a pass that found nothing to do */
#define MAINT_SLACK_MS (15 * 60000LL)
#define MAINT_BLOCKS 4 /* blocks rolled per series and step */
#define MAINT_ROLL_DELAY_MS (40 * 3600000LL) /* at most; half the raw retention when shorter */

typedef struct maint_upd {
    series_t *se;
    int64_t rolled[AG_ROLLUP_TIERS], rmin[AG_ROLLUP_TIERS], mint, compacted;
    bool drop_head; /* the series stopped before the cut: its open chunk goes too */
    bool del;
} maint_upd_t;

static int64_t mono_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b) return INT64_MIN;
    return a + b;
}

int64_t rollup_block_ms(int tier) { return tier == 1 ? 6 * 3600000LL : 10 * 86400000LL; }
int64_t rollup_width_ms(int tier) { return tier == 1 ? AG_ROLLUP_1M_MS : AG_ROLLUP_1H_MS; }

void rollup_key(unsigned char k[ROLLUP_KEY], int tier, uint64_t id, int64_t start)
{
    k[0] = (unsigned char)tier;
    key_put_u64(k + 1, id);
    key_put_u64(k + 9, ts_to_key(start));
}

static bool key_is(const MDB_val *key, int tier, uint64_t id)
{
    const unsigned char *k = key->mv_data;
    return key->mv_size == ROLLUP_KEY && k[0] == tier && key_get_u64(k + 1) == id;
}

static int64_t key_start(const MDB_val *key)
{
    return key_to_ts(key_get_u64((const unsigned char *)key->mv_data + 9));
}

/* The reference time retention counts back from. */
static int64_t ref_time(ag_store_t *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall = (int64_t)ts.tv_sec * 1000 + 600000;
    return s->max_time < wall ? s->max_time : wall;
}

int64_t ag_store_raw_horizon(ag_store_t *s)
{
    return maint_min_accepted(s);
}

int64_t maint_min_accepted(ag_store_t *s)
{
    int64_t ret = atomic_load(&s->ret_ms[0]);
    if (!ret || !s->has_time) return INT64_MIN;
    return sat_add(ref_time(s), -ret);
}

/* The first and last stored block of a tier for a series. */
int maint_load_series(ag_store_t *s, MDB_txn *txn, series_t *se)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->dbi_rollups, &c);
    if (rc) return store_lmdb_err(rc);
    for (int tier = 1; tier <= AG_ROLLUP_TIERS && !rc; tier++) {
        unsigned char k[ROLLUP_KEY];
        rollup_key(k, tier, se->id, INT64_MIN);
        MDB_val key = {ROLLUP_KEY, k}, val;
        int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        se->rmin[tier - 1] = INT64_MAX;
        se->rolled[tier - 1] = INT64_MIN;
        if (mrc == MDB_NOTFOUND || (mrc == 0 && !key_is(&key, tier, se->id))) continue;
        if (mrc) {
            rc = store_lmdb_err(mrc);
            break;
        }
        se->rmin[tier - 1] = key_start(&key);
        rollup_key(k, tier, se->id, INT64_MAX);
        key.mv_size = ROLLUP_KEY;
        key.mv_data = k;
        mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        bool exact = mrc == 0 && key_is(&key, tier, se->id); /* a block starting at INT64_MAX */
        if (!exact) mrc = mdb_cursor_get(c, &key, &val, mrc == 0 ? MDB_PREV : MDB_LAST);
        if (mrc || !key_is(&key, tier, se->id)) {
            rc = mrc ? store_lmdb_err(mrc) : AG_ECORRUPT;
            break;
        }
        se->rolled[tier - 1] = sat_add(key_start(&key), rollup_block_ms(tier));
    }
    mdb_cursor_close(c);
    return rc;
}

/* Deletes every block of `tier` of the series starting at or after `from`; *ops counts them. */
static int del_blocks_from(ag_store_t *s, MDB_txn *txn, int tier, uint64_t id, int64_t from,
                           size_t *ops)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->dbi_rollups, &c);
    if (rc) return store_lmdb_err(rc);
    unsigned char k[ROLLUP_KEY];
    rollup_key(k, tier, id, from);
    MDB_val key = {ROLLUP_KEY, k}, val;
    int mrc;
    for (mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); mrc == 0 && key_is(&key, tier, id);
         mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
        if ((rc = mdb_cursor_del(c, 0))) break;
        if (ops) (*ops)++;
        atomic_fetch_add(&s->st_deleted_blocks, 1);
    }
    if (!rc && mrc && mrc != MDB_NOTFOUND) rc = mrc;
    mdb_cursor_close(c);
    return rc ? store_lmdb_err(rc) : AG_OK;
}

int maint_invalidate(ag_store_t *s, MDB_txn *txn, series_t *se, int64_t t)
{
    for (int tier = 1; tier <= AG_ROLLUP_TIERS; tier++) {
        if (se->rolled[tier - 1] == INT64_MIN || t >= se->rolled[tier - 1]) continue;
        int64_t b = ag_rollup_floor(t, rollup_block_ms(tier));
        int rc = del_blocks_from(s, txn, tier, se->id, b, NULL);
        if (rc) return rc;
        se->rolled[tier - 1] = b;
        if (se->rmin[tier - 1] >= b) se->rmin[tier - 1] = INT64_MAX;
    }
    return AG_OK;
}

static int rbuf_reserve(ag_store_t *s, size_t n)
{
    if (n <= s->rcap) return AG_OK;
    ag_rollup_t *nb = realloc(s->rbuf, n * sizeof *nb);
    if (!nb) return AG_ENOMEM;
    s->rbuf = nb;
    s->rcap = n;
    return AG_OK;
}

typedef struct step {
    ag_store_t *s;
    MDB_txn *txn;
    ag_series_data_t sd; /* raw sample scratch */
    size_t sd_cap;
    ag_buf_t enc;
    size_t ops;
    bool work; /* did this step change anything */
} step_t;

static int put_block(step_t *st, int tier, uint64_t id, int64_t start, const ag_rollup_t *b,
                     size_t n)
{
    ag_buf_reset(&st->enc);
    int rc = ag_rollup_encode(b, n, &st->enc);
    if (rc) return rc;
    unsigned char k[ROLLUP_KEY];
    rollup_key(k, tier, id, start);
    MDB_val key = {ROLLUP_KEY, k}, val = {st->enc.len, st->enc.data};
    if ((rc = mdb_put(st->txn, st->s->dbi_rollups, &key, &val, 0))) return store_lmdb_err(rc);
    st->ops++;
    atomic_fetch_add(&st->s->st_rolled_blocks, 1);
    return AG_OK;
}

/* Tier 1 block [b, end) of a series from its raw samples. Sets *wrote. */
static int roll_raw(step_t *st, series_t *se, int64_t b, int64_t end, bool *wrote)
{
    ag_store_t *s = st->s;
    sel_item_t it;
    store_item_of(se, &it);
    uint64_t total = 0;
    st->sd.n = 0;
    int rc = store_load_samples(s, st->txn, &it, b, end - 1, &st->sd, &st->sd_cap, &total, 0);
    *wrote = false;
    if (rc || !st->sd.n) return rc;
    if ((rc = rbuf_reserve(s, st->sd.n))) return rc;
    size_t nb = ag_rollup_fold(st->sd.samples, st->sd.n, AG_ROLLUP_1M_MS, s->rbuf);
    if (!nb) return AG_OK;
    *wrote = true;
    return put_block(st, 1, se->id, b, s->rbuf, nb);
}

/* Merges the series' sealed chunks that lie wholly inside the finished block [b, end) into one
 * packed chunk (keyed by the first one's start, so chunks still never overlap): a tenth of the
 * records for 15 s data, and the pack codec does better on the longer run. The samples read
 * back are exactly those written (test_maint: compaction_keeps_every_sample). */
static int compact_raw(step_t *st, series_t *se, int64_t b, int64_t end)
{
    ag_store_t *s = st->s;
    int64_t head_start = se->head.count ? se->head.first_t : INT64_MAX;
    MDB_cursor *c;
    int rc = mdb_cursor_open(st->txn, s->dbi_chunks, &c);
    if (rc) return store_lmdb_err(rc);
    unsigned char k[16];
    chunk_key(k, se->id, b);
    MDB_val key = {16, k}, val;
    size_t nchunks = 0, total = 0;
    int64_t first = 0;
    int mrc;
    for (mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
        if (key.mv_size != 16 || key_get_u64(key.mv_data) != se->id) break;
        int64_t start = key_to_ts(key_get_u64((unsigned char *)key.mv_data + 8)), maxt;
        if (start >= end || start >= head_start) break;
        const unsigned char *v = val.mv_data;
        if (val.mv_size < 1 || (v[0] & CHUNK_OPEN)) break;
        if ((rc = chunk_val_maxt(v, val.mv_size, start, &maxt))) break;
        if (maxt >= end) break;
        size_t cnt = chunk_val_count(v, val.mv_size, start);
        if (!cnt) {
            rc = AG_ECORRUPT;
            break;
        }
        if (total + cnt > AG_PACK_MAX_SAMPLES) break;
        if (!nchunks) first = start;
        nchunks++;
        total += cnt;
    }
    if (!rc && mrc && mrc != MDB_NOTFOUND) rc = store_lmdb_err(mrc);
    if (rc || nchunks < 2) {
        mdb_cursor_close(c);
        return rc;
    }
    /* Read them all (values point into the map and change once we write), then replace. */
    st->sd.n = 0;
    if (total > st->sd_cap) {
        ag_sample_t *ns = realloc(st->sd.samples, total * sizeof *ns);
        if (!ns) {
            mdb_cursor_close(c);
            return AG_ENOMEM;
        }
        st->sd.samples = ns;
        st->sd_cap = total;
    }
    chunk_key(k, se->id, first);
    key.mv_size = 16;
    key.mv_data = k;
    int64_t *starts = malloc(nchunks * sizeof *starts);
    if (!starts) {
        mdb_cursor_close(c);
        return AG_ENOMEM;
    }
    size_t done = 0;
    for (mrc = mdb_cursor_get(c, &key, &val, MDB_SET_KEY); mrc == 0 && done < nchunks && !rc;
         mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT), done++) {
        size_t got;
        starts[done] = key_to_ts(key_get_u64((unsigned char *)key.mv_data + 8));
        if (chunk_val_decode(val.mv_data, val.mv_size, starts[done], INT64_MIN, INT64_MAX,
                             st->sd.samples + st->sd.n, &got))
            rc = AG_ECORRUPT;
        else
            st->sd.n += got;
    }
    if (!rc && done != nchunks) rc = mrc ? store_lmdb_err(mrc) : AG_ECORRUPT;
    mdb_cursor_close(c);
    /* The chunks after the first go; the first is overwritten below. */
    for (size_t i = 1; i < nchunks && !rc; i++) {
        chunk_key(k, se->id, starts[i]);
        key.mv_size = 16;
        key.mv_data = k;
        if ((mrc = mdb_del(st->txn, s->dbi_chunks, &key, NULL))) rc = store_lmdb_err(mrc);
        st->ops++;
    }
    free(starts);
    if (rc) return rc;
    ag_buf_reset(&st->enc);
    if ((rc = ag_pack_encode(st->sd.samples, st->sd.n, &st->enc))) return rc;
    chunk_key(k, se->id, first);
    key.mv_size = 16;
    key.mv_data = k;
    val.mv_size = 1 + st->enc.len;
    val.mv_data = NULL;
    if ((rc = mdb_put(st->txn, s->dbi_chunks, &key, &val, MDB_RESERVE))) return store_lmdb_err(rc);
    unsigned char *p = val.mv_data;
    p[0] = CHUNK_PACKED;
    memcpy(p + 1, st->enc.data, st->enc.len);
    st->ops++;
    st->work = true;
    atomic_fetch_add(&s->st_compacted, nchunks);
    return AG_OK;
}

/* Tier 2 block [b, end) of a series from its tier 1 blocks. */
static int roll_tier1(step_t *st, series_t *se, int64_t b, int64_t end, bool *wrote)
{
    ag_store_t *s = st->s;
    MDB_cursor *c;
    *wrote = false;
    int rc = mdb_cursor_open(st->txn, s->dbi_rollups, &c);
    if (rc) return store_lmdb_err(rc);
    unsigned char k[ROLLUP_KEY];
    rollup_key(k, 1, se->id, b);
    MDB_val key = {ROLLUP_KEY, k}, val;
    size_t n = 0;
    int mrc;
    for (mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
         mrc == 0 && key_is(&key, 1, se->id) && key_start(&key) < end;
         mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
        size_t cnt = ag_rollup_count(val.mv_data, val.mv_size), got;
        if (!cnt) {
            rc = AG_ECORRUPT;
            break;
        }
        if ((rc = rbuf_reserve(s, n + cnt))) break;
        if ((rc = ag_rollup_decode(val.mv_data, val.mv_size, s->rbuf + n, &got))) break;
        n += got;
    }
    if (!rc && mrc && mrc != MDB_NOTFOUND) rc = store_lmdb_err(mrc);
    mdb_cursor_close(c);
    if (rc || !n) return rc;
    size_t nb = ag_rollup_regroup(s->rbuf, n, AG_ROLLUP_1H_MS, s->rbuf);
    *wrote = true;
    return put_block(st, 2, se->id, b, s->rbuf, nb);
}

/* Deletes raw chunks of the series that end before `cut` (never the head's). Returns the new
 * oldest sample time in *mint. */
static int expire_raw(step_t *st, series_t *se, int64_t cut, int64_t *mint)
{
    ag_store_t *s = st->s;
    MDB_cursor *c;
    int rc = mdb_cursor_open(st->txn, s->dbi_chunks, &c);
    if (rc) return store_lmdb_err(rc);
    int64_t head_start = se->head.count ? se->head.first_t : INT64_MAX;
    unsigned char k[16];
    chunk_key(k, se->id, INT64_MIN);
    MDB_val key = {16, k}, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    *mint = head_start;
    while (mrc == 0 && key.mv_size == 16 && key_get_u64(key.mv_data) == se->id) {
        int64_t start = key_to_ts(key_get_u64((unsigned char *)key.mv_data + 8)), maxt;
        if (start >= head_start) break;
        if ((rc = chunk_val_maxt(val.mv_data, val.mv_size, start, &maxt))) break;
        if (maxt >= cut || st->ops >= MAINT_OPS) {
            *mint = start;
            break;
        }
        if ((rc = mdb_cursor_del(c, 0))) {
            rc = store_lmdb_err(rc);
            break;
        }
        st->ops++;
        st->work = true;
        atomic_fetch_add(&s->st_deleted_chunks, 1);
        mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    if (!rc && mrc && mrc != MDB_NOTFOUND) rc = store_lmdb_err(mrc);
    mdb_cursor_close(c);
    return rc;
}

/* Deletes blocks of a tier whose end is at or before `cut`; *rmin gets the oldest kept. */
static int expire_blocks(step_t *st, int tier, uint64_t id, int64_t cut, int64_t *rmin)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(st->txn, st->s->dbi_rollups, &c);
    if (rc) return store_lmdb_err(rc);
    unsigned char k[ROLLUP_KEY];
    rollup_key(k, tier, id, INT64_MIN);
    MDB_val key = {ROLLUP_KEY, k}, val;
    int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    *rmin = INT64_MAX;
    while (mrc == 0 && key_is(&key, tier, id)) {
        int64_t start = key_start(&key);
        if (sat_add(start, rollup_block_ms(tier)) > cut || st->ops >= MAINT_OPS) {
            *rmin = start;
            break;
        }
        if ((rc = mdb_cursor_del(c, 0))) {
            rc = store_lmdb_err(rc);
            break;
        }
        st->ops++;
        st->work = true;
        atomic_fetch_add(&st->s->st_deleted_blocks, 1);
        mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    if (!rc && mrc && mrc != MDB_NOTFOUND) rc = store_lmdb_err(mrc);
    mdb_cursor_close(c);
    return rc;
}

/* Removes a series without data from `series` and `postings`. */
static int delete_series(step_t *st, series_t *se)
{
    ag_store_t *s = st->s;
    unsigned char idk[8];
    key_put_u64(idk, se->id);
    MDB_val key = {8, idk}, val;
    int rc = mdb_del(st->txn, s->dbi_series, &key, NULL);
    if (rc == MDB_NOTFOUND) /* in a cold group: rewritten without it (one more op) */
        rc = group_remove(st->txn, s->dbi_series, NULL, 0, GROUP_SERIES_IDS, se->id), st->ops++;
    else if (rc) return store_lmdb_err(rc);
    if (rc) return rc;
    unsigned char sk[9] = {SLOT_KEY_TAG};
    memcpy(sk + 1, idk, 8);
    MDB_val skey = {9, sk};
    rc = mdb_del(st->txn, s->dbi_models, &skey, NULL);
    if (rc && rc != MDB_NOTFOUND) return store_lmdb_err(rc);
    if ((rc = group_remove(st->txn, s->dbi_models, sk, 1, GROUP_SLOT_IDS, se->id))) return rc;
    st->ops++;
    size_t pos = 0, nl, vl;
    const char *name, *value;
    unsigned char pk[POSTING_KEY_MAX + 32];
    while (ag_labels_next(se->labels, se->labels_len, &pos, &name, &nl, &value, &vl)) {
        key.mv_size = posting_key_n(pk, name, nl, value, vl);
        key.mv_data = pk;
        val.mv_size = 8;
        val.mv_data = idk;
        rc = mdb_del(st->txn, s->dbi_postings, &key, &val);
        if (rc && rc != MDB_NOTFOUND) return store_lmdb_err(rc);
        st->ops++;
    }
    /* Ids are never reused: WAL records of the deleted series are skipped on replay. */
    key.mv_size = 7;
    key.mv_data = "next_id";
    key_put_u64(idk, s->next_id);
    val.mv_size = 8;
    val.mv_data = idk;
    if ((rc = mdb_put(st->txn, s->dbi_meta, &key, &val, 0))) return store_lmdb_err(rc);
    st->work = true;
    return AG_OK;
}

static int push_upd(ag_store_t *s, const maint_upd_t *u)
{
    if (s->nupd == s->cap_upd) {
        size_t cap = s->cap_upd ? s->cap_upd * 2 : 256;
        maint_upd_t *n = realloc(s->upd, cap * sizeof *n);
        if (!n) return AG_ENOMEM;
        s->upd = n;
        s->cap_upd = cap;
    }
    s->upd[s->nupd++] = *u;
    return AG_OK;
}

static int maint_series(step_t *st, series_t *se, int64_t ref, const int64_t *ret)
{
    ag_store_t *s = st->s;
    maint_upd_t u = {se, {se->rolled[0], se->rolled[1]}, {se->rmin[0], se->rmin[1]}, se->mint,
                     se->compacted, false, false};
    bool changed = false;
    int rc = AG_OK;
    int64_t ooo = atomic_load(&s->ooo_window_ms), b1 = rollup_block_ms(1), b2 = rollup_block_ms(2);
    int64_t oldest = u.mint != INT64_MAX ? u.mint : se->head.count ? se->head.first_t : INT64_MAX;
    /* Finished blocks: no sample can reach them any more. Their sealed chunks are merged at
     * once; their 1 m rollups are written only once the block is ROLL_DELAY old (as Thanos
     * downsamples only blocks older than 40 h): until then queries fold the buckets from raw
     * data, which answers the same, and at 15 s scrapes a 1 m block costs more disk than the
     * raw samples it summarises. */
    int64_t lim = sat_add(ref, -sat_add(ooo, MAINT_SLACK_MS));
    if (has_samples(se) && sat_add(se->last_t, -ooo) > lim) lim = sat_add(se->last_t, -ooo);
    lim = ag_rollup_floor(lim, b1);
    int64_t delay = ret[0] && ret[0] / 2 < MAINT_ROLL_DELAY_MS ? ret[0] / 2 : MAINT_ROLL_DELAY_MS;
    int64_t roll_lim = ag_rollup_floor(sat_add(ref, -delay), b1);
    if (roll_lim > lim) roll_lim = lim;
    for (int i = 0; i < MAINT_BLOCKS && oldest != INT64_MAX && st->ops < MAINT_OPS; i++) {
        int64_t b = u.compacted != INT64_MIN ? u.compacted : ag_rollup_floor(oldest, b1);
        if (b < ag_rollup_floor(oldest, b1)) b = ag_rollup_floor(oldest, b1);
        int64_t end = sat_add(b, b1);
        if (end > lim || (has_samples(se) && se->last_t < b)) break;
        if ((rc = compact_raw(st, se, b, end))) return rc;
        u.compacted = end;
        changed = true;
    }
    if (u.rolled[0] != INT64_MIN && u.rolled[0] < roll_lim &&
        (!has_samples(se) || se->last_t < u.rolled[0])) {
        u.rolled[0] = roll_lim; /* no raw data from here on: nothing to roll, skip ahead */
        changed = true;
    }
    for (int i = 0; i < MAINT_BLOCKS && oldest != INT64_MAX && st->ops < MAINT_OPS; i++) {
        int64_t b = u.rolled[0] != INT64_MIN ? u.rolled[0] : ag_rollup_floor(oldest, b1);
        int64_t end = sat_add(b, b1);
        if (end > roll_lim) break;
        /* Roll only durable raw data: samples of the block still only in a head chunk that
         * has not been checkpointed wait for the checkpoint, so WAL replay may skip everything
         * below the rolled edge (replay_record in store.c). */
        if (se->dirty && se->head.count && se->head.first_t < end) break;
        bool wrote;
        if ((rc = roll_raw(st, se, b, end, &wrote))) return rc;
        if (wrote && b < u.rmin[0]) u.rmin[0] = b;
        u.rolled[0] = end;
        changed = true;
    }
    /* Tier 2 from tier 1. */
    for (int i = 0; i < MAINT_BLOCKS && st->ops < MAINT_OPS; i++) {
        int64_t from = u.rolled[1] != INT64_MIN ? u.rolled[1]
                       : u.rmin[0] != INT64_MAX ? ag_rollup_floor(u.rmin[0], b2)
                                                : INT64_MIN;
        if (from == INT64_MIN || u.rolled[0] == INT64_MIN) break;
        int64_t end = sat_add(from, b2);
        if (end > u.rolled[0]) break;
        bool wrote;
        if ((rc = roll_tier1(st, se, from, end, &wrote))) return rc;
        if (wrote && from < u.rmin[1]) u.rmin[1] = from;
        u.rolled[1] = end;
        changed = true;
    }
    /* Retention, each tier only below what the next one has rolled - as readers see it now
     * (se->rolled, not this step's u.rolled: until the step's commit is published a reader
     * still folds from the old edge, so the data above it must stay for one more step). */
    if (ret[0] && u.mint != INT64_MAX && se->rolled[0] != INT64_MIN) {
        int64_t cut = sat_add(ref, -ret[0]);
        if (se->rolled[0] < cut) cut = se->rolled[0];
        cut = ag_rollup_floor(cut, b1);
        /* (The oldest chunk may start before the cut and end after it: nothing to delete.) */
        if (u.mint < cut) {
            if ((rc = expire_raw(st, se, cut, &u.mint))) return rc;
            if (u.mint != se->mint) changed = true;
        }
        /* A series that stopped keeps its last samples in the head; once they are older than
         * the cut (and so rolled up) and checkpointed, they go with their checkpointed copy. */
        if (se->head.count && !se->dirty && u.mint == se->head.first_t && se->last_t < cut) {
            unsigned char k[16];
            chunk_key(k, se->id, se->head.first_t);
            MDB_val key = {16, k};
            rc = mdb_del(st->txn, s->dbi_chunks, &key, NULL);
            if (rc && rc != MDB_NOTFOUND) return store_lmdb_err(rc);
            rc = AG_OK;
            st->ops++;
            u.drop_head = true;
            u.mint = INT64_MAX;
            changed = true;
        }
    }
    if (ret[1] && u.rmin[0] != INT64_MAX && se->rolled[1] != INT64_MIN) {
        int64_t cut = sat_add(ref, -ret[1]);
        if (se->rolled[1] < cut) cut = se->rolled[1];
        cut = ag_rollup_floor(cut, b2);
        if (sat_add(u.rmin[0], b1) <= cut) {
            if ((rc = expire_blocks(st, 1, se->id, cut, &u.rmin[0]))) return rc;
            if (u.rmin[0] != se->rmin[0]) changed = true;
        }
    }
    if (ret[2] && u.rmin[1] != INT64_MAX) {
        int64_t cut = sat_add(ref, -ret[2]);
        if (sat_add(u.rmin[1], b2) <= cut) {
            if ((rc = expire_blocks(st, 2, se->id, cut, &u.rmin[1]))) return rc;
            if (u.rmin[1] != se->rmin[1]) changed = true;
        }
    }
    if (u.mint == INT64_MAX && (!se->head.count || u.drop_head) && u.rmin[0] == INT64_MAX &&
        u.rmin[1] == INT64_MAX && (ret[0] || ret[1] || ret[2])) {
        if ((rc = delete_series(st, se))) return rc;
        u.del = true;
        changed = true;
    }
    if (!changed) return AG_OK;
    st->work = true;
    return push_upd(s, &u);
}

bool maint_step(ag_store_t *s)
{
    if (s->failed || !s->has_time || !s->head.nids) return false;
    int64_t t0 = mono_now_ms();
    if (s->maint_idle_ms && t0 - s->maint_idle_ms < MAINT_IDLE_MS) return false;
    step_t st = {.s = s, .enc = AG_BUF_INIT};
    int rc = mdb_txn_begin(s->env, NULL, 0, &st.txn);
    if (rc) return false;
    int64_t ref = ref_time(s);
    int64_t ret[AG_ROLLUP_TIERS + 1];
    for (int i = 0; i <= AG_ROLLUP_TIERS; i++) ret[i] = atomic_load(&s->ret_ms[i]);
    s->nupd = 0;
    uint64_t id = s->maint_next >= 1 && s->maint_next <= s->head.nids ? s->maint_next : 1;
    bool wrapped = false;
    for (size_t visited = 0; visited < s->head.nids && !rc; visited++) {
        series_t *se = head_by_id(&s->head, id);
        if (++id > s->head.nids) {
            id = 1;
            wrapped = true;
        }
        if (se && (rc = maint_series(&st, se, ref, ret))) break;
        if (st.ops >= MAINT_OPS || (st.work && (visited & 63) == 0 && mono_now_ms() - t0 >= MAINT_MS))
            break;
    }
    s->maint_next = id;
    free(st.sd.samples);
    ag_buf_free(&st.enc);
    if (rc || !st.work) {
        mdb_txn_abort(st.txn);
        if (rc) AG_WARN("\"maintenance step failed, will retry\" err=\"%s\"", ag_strerror(rc));
        if (rc || wrapped) s->maint_idle_ms = mono_now_ms();
        return false;
    }
    if ((rc = mdb_txn_commit(st.txn))) {
        rc = store_commit_err(s, rc);
        AG_WARN("\"maintenance commit failed, will retry\" err=\"%s\"", ag_strerror(rc));
        s->maint_idle_ms = mono_now_ms();
        return false;
    }
    atomic_fetch_add(&s->st_maint_steps, 1);
    pthread_rwlock_wrlock(&s->rw);
    for (size_t i = 0; i < s->nupd; i++) {
        maint_upd_t *u = &s->upd[i];
        if (u->del) {
            atomic_fetch_add(&s->st_deleted_series, 1);
            store_forget_series(s, u->se);
            continue;
        }
        if (u->drop_head) {
            ag_hchunk_free(&u->se->head);
            ag_hchunk_init(&u->se->head);
            u->se->dirty = false;
        }
        memcpy(u->se->rolled, u->rolled, sizeof u->rolled);
        u->se->compacted = u->compacted;
        memcpy(u->se->rmin, u->rmin, sizeof u->rmin);
        u->se->mint = u->mint;
    }
    pthread_rwlock_unlock(&s->rw);
    s->nupd = 0;
    s->maint_idle_ms = 0;
    return true;
}
