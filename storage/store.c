/* store.c - the write side of the series store: LMDB environment, recovery, group commit, WAL
 * and checkpoints. Reads live in store_read.c, the series map in head.c.
 *
 * Layout in LMDB (one environment, one data directory):
 *   meta      "schema" -> version
 *   series    id (8 B BE) -> canonical label encoding; at a clean stop the compaction folds
 *             them into cold groups, first id | 0 -> GROUP_SERIES_IDS of them deflated
 *             (store_int.h, group.c); new series are written per id beside them
 *   postings  "name\0value" -> ids (DUPSORT|DUPFIXED, 8 B BE); values too long for an LMDB key
 *             are cut and tagged with a trailing "\0" + hash (readers then check the series)
 *   postings_cold  the same keys -> the ids as one delta-coded list, written by the compaction
 *             at a clean stop (store_int.h); readers take the union with `postings`
 *   chunks    id | mint (8 B BE each, sign bit flipped) -> flag byte, then a packed chunk
 *             (ag_pack.h; older stores: maxt + Gorilla chunk), see store_int.h
 *   wal       sequence (8 B BE) -> the samples a request added, by series id (format: see
 *             "WAL records" below)
 *   metadata  family -> "type\0help\0unit\0"
 *   rollups   tier | id | block start -> rollup block (ag_rollup.h), kept by maint.c
 *   models    0 | id -> the sample observer's slot (status byte + AG_STORE_SLOT_SIZE bytes),
 *             saved by checkpoints (folded like series: 0 | first id | 0 -> GROUP_SLOT_IDS
 *             slots; a per-id slot saved later is the newer); 1 | key -> a state record
 *             (ag_blob_in_t) written with a request
 * Samples first go into the in-memory head (one open chunk per series) and into a WAL record in
 * the same transaction. Full chunks are sealed into `chunks`, transcoded from the head's
 * append-friendly form (ag_hchunk.h) into the compact packed form. A checkpoint copies every
 * open chunk into `chunks` (flagged open) and empties `wal` in one transaction, so the WAL stays
 * small; on start the head is rebuilt from the open chunks and the WAL is replayed.
 *
 * Invariants (each names the test that proves it):
 *  1. ag_store_write returns 0 only after mdb_txn_commit of the transaction that holds its WAL
 *     record and its new series returned 0; LMDB runs with full sync (no MDB_NOSYNC), so that
 *     commit is on disk. HTTP answers 2xx only on 0.
 *     (test_store: durable_after_write_then_reopen; integration test_crash.py: kill -9 mid-stream)
 *  2. A request is all or nothing: it is checked completely before anything changes; if the
 *     group's commit fails, every request in it fails and the head is rebuilt from LMDB.
 *     (test_store: conflict_changes_nothing, map_full_fails_and_keeps_data)
 *  3. Every acknowledged sample is in a sealed chunk, in a checkpointed open chunk or in a WAL
 *     record newer than that checkpoint: a checkpoint writes open chunks and empties the WAL in
 *     one transaction. (test_store: reopen_after_checkpoint, replay_without_checkpoint)
 *  4. Values are stored bit-exactly (stale marker, NaN payloads, -0.0). (test_chunk, test_store)
 *  5. Readers see one consistent state: they open their LMDB read transaction and copy head
 *     chunks while holding `rw` shared; the committer holds it exclusively while it changes the
 *     head, and releases it for the commit itself (the fsync), so queries never wait for the
 *     disk. A chunk sealed by the group stays in its series' `sealing` list, which readers copy
 *     too, until the commit returned; readers take LMDB chunks only below the first chunk held
 *     in memory, so whether or not their snapshot already has the sealed chunk they see every
 *     sample once. Samples may be visible to queries a few milliseconds before they are durable
 *     (as in Prometheus); they are acknowledged only after. If the commit fails the head is
 *     rebuilt from LMDB. (test_store: concurrent_read_write, scan_during_commits;
 *     integration test_api.py: test_reads_are_consistent_while_writing)
 *  6. The write hook (ag_store_set_write_hook) runs after a group's commit returned 0, with the
 *     oldest appended timestamp. A reader that could not see the samples recorded the cache's
 *     sequence before the hook ran, so the query cache drops what it computed. The query cache
 *     relies on it.
 *     (test_store: write_hook_reports_oldest_sample; integration test_qcache.py)
 *  7. Chunks never overlap in time, so a series' samples read chunk after chunk are in order. A
 *     sample merged out of order (apply_ooo, within storage.out_of_order_window) goes into the
 *     chunk whose time range it falls in (head or sealed), or into a new chunk of its own
 *     before the series' first one, in the same transaction as its WAL record; WAL replay
 *     applies it again idempotently. (test_store: ooo_window_random; integration
 *     test_api.py: test_out_of_order_window_merges_and_rejects_older)
 *  8. Rollups answer as raw data does: a series' stored rollup blocks below rolled[k] equal the
 *     fold of the tier below over the same time (a sample that arrives for a rolled block drops
 *     the blocks from there on, in its own transaction, and they are rolled again), readers fold
 *     the rest from the tier below, and retention deletes data of a tier only below what the
 *     next tier has rolled. (test_maint: rollups_match_raw, retention_boundaries; integration
 *     test_concurrent.py)
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "ag_buf.h"
#include "ag_pack.h"
#include "ag_log.h"
#include "store_int.h"

#define SCHEMA_VERSION 2 /* 2: cold groups and postings (store_int.h); 1 is upgraded at open */

void key_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

uint64_t key_get_u64(const unsigned char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* One load and a byte swap: every posting id of a query goes through here. */
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return __builtin_bswap64(v);
#else
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
#endif
}

/* A failed commit: LMDB reports a short write on a full disk as EIO (it does not know why the
 * write was short), so an I/O error while the data directory's filesystem has almost no room
 * left is taken for what it is, a full disk, which the sender retries later. */
int store_commit_err(ag_store_t *s, int rc)
{
    int e = store_lmdb_err(rc);
    struct statvfs vfs;
    if (e == AG_EIO && statvfs(s->path, &vfs) == 0 &&
        (uint64_t)vfs.f_bavail * vfs.f_frsize < (64ULL << 20))
        return AG_EFULL;
    return e;
}

int store_lmdb_err(int rc)
{
    switch (rc) {
    case 0: return AG_OK;
    case MDB_MAP_FULL:
    case ENOSPC:
    case EDQUOT: return AG_EFULL;
    case ENOMEM: return AG_ENOMEM;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH: return AG_ECORRUPT;
    default: return AG_EIO;
    }
}

/* mkdir -p: creates the directory and any missing parents (as Prometheus does with its
 * --storage.tsdb.path). 0, or -1 with errno (EEXIST when the path is there already). */
static int mkdir_parents(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (buf[i] != '/') continue;
        buf[i] = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        buf[i] = '/';
    }
    return mkdir(buf, 0755);
}

void ag_store_opts_default(ag_store_opts_t *o)
{
    o->path = "./data";
    o->map_size = 64ULL << 30;
    o->chunk_samples = 120;
    o->checkpoint_wal_bytes = 64ULL << 20;
    o->checkpoint_interval_s = 300;
    o->max_series = 0;
    o->max_series_per_metric = 0;
    o->ooo_window_ms = 0;
    o->retention_ms[0] = 0;
    o->retention_ms[1] = 0;
    o->retention_ms[2] = 0;
    o->compact_min_bytes = 0; /* every clean close: a small file is rewritten in milliseconds */
}

void ag_store_set_retention(ag_store_t *s, const int64_t ret_ms[3])
{
    /* A tier is kept at least as long as the one below it, and forever when that one is: a
     * late sample re-rolls a tier from the tier below, which must still be there. */
    int64_t prev = 0;
    for (int i = 0; i <= AG_ROLLUP_TIERS; i++) {
        int64_t r = ret_ms[i] > 0 ? ret_ms[i] : 0;
        if (i > 0 && (prev == 0 || r == 0)) r = 0;
        else if (i > 0 && r < prev) r = prev;
        atomic_store(&s->ret_ms[i], r);
        prev = r;
    }
}

/* ---- series per metric (limits) ------------------------------------------------------------ */

typedef struct metric_count {
    char *name; /* NULL = empty slot */
    size_t len;
    uint64_t n;
} metric_count_t;

static uint64_t name_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

/* The count slot of a metric name, created (count 0) when `create`; NULL when missing or out of
 * memory. */
static uint64_t *metric_slot(ag_store_t *s, const char *name, size_t len, bool create)
{
    if (create && (s->mc_n + 1) * 2 > s->mc_cap) {
        size_t cap = s->mc_cap ? s->mc_cap * 2 : 256;
        metric_count_t *t = calloc(cap, sizeof *t);
        if (!t) return NULL;
        for (size_t i = 0; i < s->mc_cap; i++) {
            if (!s->mc[i].name) continue;
            size_t j = name_hash(s->mc[i].name, s->mc[i].len) & (cap - 1);
            while (t[j].name) j = (j + 1) & (cap - 1);
            t[j] = s->mc[i];
        }
        free(s->mc);
        s->mc = t;
        s->mc_cap = cap;
    }
    if (!s->mc_cap) return NULL;
    size_t j = name_hash(name, len) & (s->mc_cap - 1);
    for (; s->mc[j].name; j = (j + 1) & (s->mc_cap - 1))
        if (s->mc[j].len == len && memcmp(s->mc[j].name, name, len) == 0) return &s->mc[j].n;
    if (!create || !(s->mc[j].name = malloc(len ? len : 1))) return NULL;
    memcpy(s->mc[j].name, name, len);
    s->mc[j].len = len;
    s->mc[j].n = 0;
    s->mc_n++;
    return &s->mc[j].n;
}

static void metric_counts_free(ag_store_t *s)
{
    for (size_t i = 0; i < s->mc_cap; i++) free(s->mc[i].name);
    free(s->mc);
    s->mc = NULL;
    s->mc_cap = s->mc_n = 0;
}

/* Adds delta to the count of the series' metric. */
static int metric_count_add(ag_store_t *s, const series_t *se, int delta)
{
    size_t len;
    const char *name = ag_labels_get(se->labels, se->labels_len, AG_METRIC_NAME, &len);
    if (!name) return AG_OK;
    uint64_t *n = metric_slot(s, name, len, delta > 0);
    if (!n) return delta > 0 ? AG_ENOMEM : AG_OK;
    *n += (uint64_t)(int64_t)delta;
    return AG_OK;
}

void ag_store_set_ooo_window(ag_store_t *s, int64_t window_ms)
{
    atomic_store(&s->ooo_window_ms, window_ms > 0 ? window_ms : 0);
}

void ag_store_set_limits(ag_store_t *s, uint64_t max_series, uint64_t max_series_per_metric)
{
    atomic_store(&s->lim_series, max_series);
    atomic_store(&s->lim_per_metric, max_series_per_metric);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t vbits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, 8);
    return b;
}

size_t posting_key_n(unsigned char *key, const char *name, size_t nl, const char *value,
                     size_t vl)
{
    memcpy(key, name, nl);
    key[nl] = 0;
    if (nl + 1 + vl <= POSTING_KEY_MAX) {
        memcpy(key + nl + 1, value, vl);
        return nl + 1 + vl;
    }
    /* Too long for a key: a prefix of the value, a NUL (never part of a real value) and a hash
     * of the whole value. Readers recognise the NUL and consult the series' labels. */
    size_t keep = nl + 1 < POSTING_KEY_MAX - 9 ? POSTING_KEY_MAX - 9 - (nl + 1) : 0;
    memcpy(key + nl + 1, value, keep);
    key[nl + 1 + keep] = 0;
    key_put_u64(key + nl + 2 + keep, ag_labels_hash_stable(value, vl));
    return nl + 2 + keep + 8;
}

/* ---- applying samples ------------------------------------------------------------------- */

void chunk_key(unsigned char k[16], uint64_t id, int64_t t)
{
    key_put_u64(k, id);
    key_put_u64(k + 8, ts_to_key(t));
}

/* ---- chunk values (store_int.h) ---------------------------------------------------------- */

/* A packed chunk's pack bytes, whole: for CHUNK_T0KEY values a copy with the first timestamp
 * put back (on the stack when small). */
typedef struct pack_view {
    const unsigned char *p;
    size_t len;
    unsigned char *heap;
    unsigned char buf[768];
} pack_view_t;

static size_t put_leb(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* The pack's encoding of first timestamp t (pack.c's svar: zigzag, then LEB128) into p[10]. */
static size_t t0_bytes(unsigned char *p, int64_t t)
{
    uint64_t u = (uint64_t)t;
    return put_leb(p, (u << 1) ^ (0 - (u >> 63)));
}

/* The length of the pack header's mode byte and count (a uvarint of at most 3 bytes) at p. */
static size_t mode_and_count_len(const unsigned char *p, size_t len)
{
    for (size_t i = 1; i < len && i <= 3; i++)
        if (!(p[i] & 0x80)) return i + 1;
    return 0;
}

static int pack_view(const unsigned char *v, size_t len, int64_t kmint, pack_view_t *pv)
{
    pv->heap = NULL;
    pv->p = v + 1;
    pv->len = len - 1;
    if (!(v[0] & CHUNK_T0KEY)) return AG_OK;
    size_t head = mode_and_count_len(v + 1, len - 1);
    if (!head) return AG_ECORRUPT;
    unsigned char t0[10];
    size_t tn = t0_bytes(t0, kmint);
    size_t total = len - 1 + tn;
    unsigned char *d = pv->buf;
    if (total > sizeof pv->buf && !(d = pv->heap = malloc(total))) return AG_ENOMEM;
    memcpy(d, v + 1, head);
    memcpy(d + head, t0, tn);
    memcpy(d + head + tn, v + 1 + head, len - 1 - head);
    pv->p = d;
    pv->len = total;
    return AG_OK;
}

size_t chunk_val_count(const unsigned char *v, size_t len, int64_t kmint)
{
    if (len < 1) return 0;
    if (v[0] & CHUNK_PACKED) {
        size_t n;
        pack_view_t pv;
        if (pack_view(v, len, kmint, &pv)) return 0;
        int rc = ag_pack_info(pv.p, pv.len, &n, NULL, NULL);
        free(pv.heap);
        return rc ? 0 : n;
    }
    if (len < CHUNK_HDR) return 0;
    if (v[0] & CHUNK_HEADFMT) return ag_hchunk_count(v + CHUNK_HDR, len - CHUNK_HDR);
    return ag_chunk_count(v + CHUNK_HDR, len - CHUNK_HDR);
}

int chunk_val_maxt(const unsigned char *v, size_t len, int64_t kmint, int64_t *maxt)
{
    if (len < 1) return AG_ECORRUPT;
    if (v[0] & CHUNK_PACKED) {
        pack_view_t pv;
        int rc = pack_view(v, len, kmint, &pv);
        if (!rc) rc = ag_pack_info(pv.p, pv.len, NULL, NULL, maxt);
        free(pv.heap);
        return rc;
    }
    if (len < CHUNK_HDR) return AG_ECORRUPT;
    *maxt = (int64_t)key_get_u64(v + 1);
    return AG_OK;
}

int chunk_val_decode(const unsigned char *v, size_t len, int64_t kmint, int64_t mint,
                     int64_t maxt, ag_sample_pt_t *out, size_t *n)
{
    *n = 0;
    if (len < 1) return AG_ECORRUPT;
    if (v[0] & CHUNK_PACKED) {
        pack_view_t pv;
        int rc = pack_view(v, len, kmint, &pv);
        if (!rc) rc = ag_pack_decode(pv.p, pv.len, mint, maxt, out, n);
        free(pv.heap);
        return rc;
    }
    if (len < CHUNK_HDR) return AG_ECORRUPT;
    if (v[0] & CHUNK_HEADFMT)
        return ag_hchunk_decode(v + CHUNK_HDR, len - CHUNK_HDR, mint, maxt, out, n);
    return ag_chunk_decode(v + CHUNK_HDR, len - CHUNK_HDR, mint, maxt, out, n);
}

bool chunk_val_strip(const unsigned char *v, size_t len, int64_t kmint, ag_buf_t *out)
{
    ag_buf_reset(out);
    if (len < 4 || (v[0] & (CHUNK_T0KEY | CHUNK_HEADFMT)) || !(v[0] & CHUNK_PACKED)) return false;
    int64_t t0;
    if (ag_pack_info(v + 1, len - 1, NULL, &t0, NULL) || t0 != kmint) return false;
    size_t head = mode_and_count_len(v + 1, len - 1);
    unsigned char enc[10];
    size_t tn = t0_bytes(enc, kmint);
    if (!head || head + tn > len - 1 || memcmp(v + 1 + head, enc, tn) != 0) return false;
    unsigned char flag = (unsigned char)(v[0] | CHUNK_T0KEY);
    ag_buf_append(out, &flag, 1);
    ag_buf_append(out, v + 1, head);
    ag_buf_append(out, v + 1 + head + tn, len - 1 - head - tn);
    if (!ag_buf_ok(out)) return false;
    /* It must read back to the very bytes it came from. */
    pack_view_t pv;
    bool same = pack_view((const unsigned char *)out->data, out->len, kmint, &pv) == AG_OK &&
                pv.len == len - 1 && memcmp(pv.p, v + 1, len - 1) == 0;
    free(pv.heap);
    return same;
}

/* Writes the head chunk, transcoded into the compact ag_pack format: sealed, or as a checkpoint
 * of the open chunk (CHUNK_OPEN), which the head decodes and re-appends on start. An open chunk
 * may also be written as it is (`copy`, CHUNK_HEADFMT): cheaper, a little larger. */
static int put_chunk(ag_store_t *s, MDB_txn *txn, series_t *se, unsigned flags, bool copy)
{
    size_t len;
    const uint8_t *bytes = ag_hchunk_bytes(&se->head, &len);
    unsigned char k[16];
    chunk_key(k, se->id, se->head.first_t);
    const uint8_t *src = bytes;
    size_t hdr = CHUNK_HDR, body = len;
    if (copy && (flags & CHUNK_OPEN)) {
        flags |= CHUNK_HEADFMT;
    } else {
        size_t count = se->head.count, got;
        if (count > s->pack_cap) {
            ag_sample_pt_t *ns = realloc(s->pack_in, count * sizeof *ns);
            if (!ns) return AG_ENOMEM;
            s->pack_in = ns;
            s->pack_cap = count;
        }
        if (ag_hchunk_decode(bytes, len, INT64_MIN, INT64_MAX, s->pack_in, &got) || got != count)
            return AG_ECORRUPT;
        ag_buf_reset(&s->pack_out);
        int rc = ag_pack_encode(s->pack_in, got, &s->pack_out);
        if (rc) return rc;
        flags |= CHUNK_PACKED;
        hdr = 1;
        src = (const uint8_t *)s->pack_out.data;
        body = s->pack_out.len;
    }
    MDB_val key = {16, k}, val = {hdr + body, NULL};
    int rc = mdb_put(txn, s->dbi_chunks, &key, &val, MDB_RESERVE);
    if (rc) return store_lmdb_err(rc);
    unsigned char *p = val.mv_data;
    p[0] = (unsigned char)flags;
    if (hdr == CHUNK_HDR) key_put_u64(p + 1, (uint64_t)se->head.last_t);
    memcpy(p + hdr, src, body);
    return AG_OK;
}

static int seal(ag_store_t *s, MDB_txn *txn, series_t *se)
{
    int rc = put_chunk(s, txn, se, 0, false);
    if (rc) return rc;
    /* Readers keep finding the chunk in memory until its commit returned (invariant 5). */
    size_t len;
    const uint8_t *bytes = ag_hchunk_bytes(&se->head, &len);
    sealing_t *sg = malloc(sizeof *sg + len);
    if (!sg) return AG_ENOMEM;
    sg->next = NULL;
    sg->start = se->head.first_t;
    sg->len = len;
    memcpy(sg->bytes, bytes, len);
    if (!se->sealing && s->nsealed == s->cap_sealed) {
        size_t cap = s->cap_sealed ? s->cap_sealed * 2 : 256;
        series_t **ns = realloc(s->sealed, cap * sizeof *ns);
        if (!ns) {
            free(sg);
            return AG_ENOMEM;
        }
        s->sealed = ns;
        s->cap_sealed = cap;
    }
    if (!se->sealing) {
        s->sealed[s->nsealed++] = se;
        se->sealing = sg;
    } else {
        sealing_t *t = se->sealing;
        while (t->next) t = t->next;
        t->next = sg;
    }
    ag_hchunk_free(&se->head);
    se->dirty = false;
    atomic_fetch_add(&s->st_sealed, 1);
    return AG_OK;
}

/* After a commit (or before a head rebuild): the sealed chunks are in LMDB now (or gone). */
static void drop_sealing(ag_store_t *s)
{
    for (size_t i = 0; i < s->nsealed; i++) series_drop_sealing(s->sealed[i]);
    s->nsealed = 0;
}

/* Appends one sample that is known to be newer than the series' last one. */
static int apply_sample(ag_store_t *s, MDB_txn *txn, series_t *se, int64_t t, uint64_t vbits,
                        unsigned seal_at)
{
    if (se->head.count >= seal_at) {
        int rc = seal(s, txn, se);
        if (rc) return rc;
    }
    double v;
    memcpy(&v, &vbits, 8);
    int rc = ag_hchunk_append(&se->head, t, v);
    if (rc) return rc;
    if (t < se->rolled[0] && (rc = maint_invalidate(s, txn, se, t))) return rc;
    if (se->mint == INT64_MAX) se->mint = t;
    se->last_t = t;
    se->last_vbits = vbits;
    se->dirty = true;
    if (!s->has_time) {
        s->min_time = s->max_time = t;
        s->has_time = true;
    }
    if (t < s->min_time) s->min_time = t;
    if (t > s->max_time) s->max_time = t;
    return AG_OK;
}

/* The stored value bits at timestamp t of the series, from the head or the LMDB chunk covering
 * t (through the write transaction, so this group's changes count): 1 with *vbits set, 0 when
 * there is no sample at t, or an AG_E* error. */
static int sample_at(ag_store_t *s, MDB_txn *txn, series_t *se, int64_t t, uint64_t *vbits)
{
    const unsigned char *v;
    size_t vlen;
    int64_t kmint = 0;
    bool head = se->head.count && t >= se->head.first_t;
    if (head) {
        v = ag_hchunk_bytes(&se->head, &vlen);
    } else {
        if (se->id == 0) return 0;
        MDB_cursor *c;
        int rc = mdb_cursor_open(txn, s->dbi_chunks, &c);
        if (rc) return store_lmdb_err(rc);
        unsigned char k[16];
        chunk_key(k, se->id, t);
        MDB_val key = {16, k}, val;
        rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        if (rc == 0 && !(key_get_u64(key.mv_data) == se->id &&
                         key_to_ts(key_get_u64((unsigned char *)key.mv_data + 8)) == t))
            rc = mdb_cursor_get(c, &key, &val, MDB_PREV);
        else if (rc == MDB_NOTFOUND)
            rc = mdb_cursor_get(c, &key, &val, MDB_LAST);
        mdb_cursor_close(c);
        if (rc == MDB_NOTFOUND) return 0;
        if (rc) return store_lmdb_err(rc);
        if (key.mv_size != 16 || key_get_u64(key.mv_data) != se->id) return 0;
        v = val.mv_data; /* valid until the transaction changes; read right here */
        vlen = val.mv_size;
        kmint = chunk_key_mint(key.mv_data);
    }
    size_t count = head ? ag_hchunk_count(v, vlen) : chunk_val_count(v, vlen, kmint), n;
    if (!count) return head ? 0 : AG_ECORRUPT;
    ag_sample_pt_t *smp = malloc(count * sizeof *smp);
    if (!smp) return AG_ENOMEM;
    int rc = head ? ag_hchunk_decode(v, vlen, t, t, smp, &n)
                  : chunk_val_decode(v, vlen, kmint, t, t, smp, &n);
    int found = rc ? AG_ECORRUPT : n == 1;
    if (found == 1) *vbits = vbits_of(smp[0].v);
    free(smp);
    return found;
}

/* Room for n samples in the committer's transcoding scratch. */
static int pack_reserve(ag_store_t *s, size_t n)
{
    if (n <= s->pack_cap) return AG_OK;
    ag_sample_pt_t *ns = realloc(s->pack_in, n * sizeof *ns);
    if (!ns) return AG_ENOMEM;
    s->pack_in = ns;
    s->pack_cap = n;
    return AG_OK;
}

/* Inserts (t, v) into the sorted samples smp[0..n) (room for n + 1); false when t is there. */
static bool insert_sorted(ag_sample_pt_t *smp, size_t n, int64_t t, double v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (smp[mid].t < t) lo = mid + 1;
        else hi = mid;
    }
    if (lo < n && smp[lo].t == t) return false;
    memmove(smp + lo + 1, smp + lo, (n - lo) * sizeof *smp);
    smp[lo].t = t;
    smp[lo].v = v;
    return true;
}

/* Merges a sample older than the series' newest (within the out-of-order window, checked by the
 * caller) into the chunk whose time it falls in: the head chunk (decoded and re-encoded), the
 * sealed LMDB chunk that starts before it (decoded, re-packed, written back in this
 * transaction), or, before the series' first chunk, a new one-sample chunk. Chunks never
 * overlap, so readers still get samples in time order. A sample already there (same timestamp)
 * is left alone and *added is false. Idempotent, so WAL replay may apply it again. */
static int apply_ooo(ag_store_t *s, MDB_txn *txn, series_t *se, int64_t t, uint64_t vbits,
                     bool *added)
{
    double v;
    memcpy(&v, &vbits, 8);
    *added = false;
    int rc;
    if (se->head.count && t >= se->head.first_t) {
        size_t len, n = se->head.count, got;
        const uint8_t *b = ag_hchunk_bytes(&se->head, &len);
        if ((rc = pack_reserve(s, n + 1))) return rc;
        if (ag_hchunk_decode(b, len, INT64_MIN, INT64_MAX, s->pack_in, &got) || got != n)
            return AG_ECORRUPT;
        if (!insert_sorted(s->pack_in, n, t, v)) return AG_OK;
        if (n + 1 > AG_HCHUNK_MAX_SAMPLES) return AG_ELIMIT;
        ag_hchunk_t e;
        ag_hchunk_init(&e);
        for (size_t i = 0; i <= n; i++) {
            if ((rc = ag_hchunk_append(&e, s->pack_in[i].t, s->pack_in[i].v))) {
                ag_hchunk_free(&e);
                return rc;
            }
        }
        ag_hchunk_free(&se->head);
        se->head = e;
        se->dirty = true;
        *added = true;
        return t < se->rolled[0] ? maint_invalidate(s, txn, se, t) : AG_OK;
    }
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, s->dbi_chunks, &c))) return store_lmdb_err(rc);
    unsigned char k[16];
    chunk_key(k, se->id, t);
    MDB_val key = {16, k}, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    if (rc == 0 && key.mv_size == 16 && memcmp(key.mv_data, k, 16) == 0) {
        mdb_cursor_close(c); /* a chunk starts at t: the sample is there */
        return AG_OK;
    }
    if (rc == 0) rc = mdb_cursor_get(c, &key, &val, MDB_PREV);
    else if (rc == MDB_NOTFOUND) rc = mdb_cursor_get(c, &key, &val, MDB_LAST);
    bool merge = rc == 0 && key.mv_size == 16 && key_get_u64(key.mv_data) == se->id &&
                 val.mv_size >= 1 && !(((const unsigned char *)val.mv_data)[0] & CHUNK_OPEN);
    if (rc && rc != MDB_NOTFOUND) {
        mdb_cursor_close(c);
        return store_lmdb_err(rc);
    }
    size_t n = 0;
    if (merge) {
        memcpy(k, key.mv_data, 16); /* the chunk's own key */
        int64_t kmint = chunk_key_mint(key.mv_data);
        size_t count = chunk_val_count(val.mv_data, val.mv_size, kmint);
        if (!count) rc = AG_ECORRUPT;
        else if (!(rc = pack_reserve(s, count + 1)) &&
                 chunk_val_decode(val.mv_data, val.mv_size, kmint, INT64_MIN, INT64_MAX,
                                  s->pack_in, &n))
            rc = AG_ECORRUPT;
    } else {
        chunk_key(k, se->id, t); /* before every chunk of the series: a chunk of its own */
        rc = pack_reserve(s, 1);
    }
    mdb_cursor_close(c);
    if (rc) return rc;
    if (!insert_sorted(s->pack_in, n, t, v)) return AG_OK;
    if (n + 1 > AG_PACK_MAX_SAMPLES) return AG_ELIMIT;
    ag_buf_reset(&s->pack_out);
    if ((rc = ag_pack_encode(s->pack_in, n + 1, &s->pack_out))) return rc;
    key.mv_size = 16;
    key.mv_data = k;
    val.mv_size = 1 + s->pack_out.len;
    val.mv_data = NULL;
    if ((rc = mdb_put(txn, s->dbi_chunks, &key, &val, MDB_RESERVE))) return store_lmdb_err(rc);
    unsigned char *p = val.mv_data;
    p[0] = CHUNK_PACKED;
    memcpy(p + 1, s->pack_out.data, s->pack_out.len);
    if (t < se->mint) se->mint = t;
    if (t < s->min_time) s->min_time = t;
    *added = true;
    return t < se->rolled[0] ? maint_invalidate(s, txn, se, t) : AG_OK;
}

static void describe_series(const series_t *se, char *out, size_t outlen)
{
    ag_label_t l[64];
    size_t n = 0;
    size_t used = 0;
    out[0] = 0;
    if (ag_labels_decode(se->labels, se->labels_len, l, 64, &n)) return; /* > 64 labels: say nothing */
    used += (size_t)snprintf(out + used, outlen - used, "{");
    for (size_t i = 0; i < n && used < outlen; i++)
        used += (size_t)snprintf(out + used, outlen - used, "%s%s=\"%s\"", i ? ", " : "",
                                 l[i].name, l[i].value);
    if (used < outlen) snprintf(out + used, outlen - used, "}");
}

/* Phase 1: checks a request against the head without changing anything stored. New series are
 * inserted as pending (id 0) and removed again when the request is rejected. */
static int check_request(ag_store_t *s, MDB_txn *txn, const ag_write_req_t *r, series_t **ser,
                         ag_buf_t *scratch, ag_write_res_t *res)
{
    int rc = AG_OK;
    size_t i = 0;
    uint64_t dups = 0;
    int64_t oldest_ok = maint_min_accepted(s);
    for (size_t b = 0; b < r->nblobs; b++)
        if (r->blobs[b].key_len == 0 || r->blobs[b].key_len > AG_BLOB_KEY_MAX)
            return ag_errmsg_set(&res->err, AG_EINVAL, -1, "state record key of %zu bytes",
                                 r->blobs[b].key_len);
    s->gen++;
    if (r->keys) head_prefetch(&s->head, r->keys, r->nseries);
    for (; i < r->nseries; i++) {
        const ag_series_in_t *in = &r->series[i];
        const char *enc;
        size_t enc_len;
        uint64_t h;
        if (r->keys) {
            enc = r->keys[i].enc;
            enc_len = r->keys[i].len;
            h = r->keys[i].hash;
        } else {
            ag_buf_reset(scratch);
            ag_labels_encode(in->labels, in->nlabels, scratch);
            if (!ag_buf_ok(scratch)) {
                rc = AG_ENOMEM;
                break;
            }
            enc = scratch->data;
            enc_len = scratch->len;
            h = ag_labels_hash(enc, enc_len);
        }
        series_t *se = head_find(&s->head, h, enc, enc_len);
        if (!se) {
            /* Limits count the series of this group that are being created too. */
            uint64_t lim = atomic_load(&s->lim_series), lpm = atomic_load(&s->lim_per_metric);
            size_t nl = 0;
            const char *name = ag_labels_get(enc, enc_len, AG_METRIC_NAME, &nl);
            uint64_t *cnt = name && lpm ? metric_slot(s, name, nl, false) : NULL;
            if (cnt && *cnt >= lpm) {
                rc = ag_errmsg_set(&res->err, AG_ELIMIT, -1,
                                   "per-metric series limit reached: metric %.*s has %llu "
                                   "series, limits.max_series_per_metric is %llu",
                                   (int)(nl > 200 ? 200 : nl), name, (unsigned long long)*cnt,
                                   (unsigned long long)lpm);
                break;
            }
            if (lim && s->head.count >= lim) {
                rc = ag_errmsg_set(&res->err, AG_ELIMIT, -1,
                                   "series limit reached: limits.max_series is %llu and %llu "
                                   "series exist; new series are refused",
                                   (unsigned long long)lim, (unsigned long long)s->head.count);
                break;
            }
            if (!(se = head_insert(&s->head, h, enc, enc_len))) {
                rc = AG_ENOMEM;
                break;
            }
            if (metric_count_add(s, se, 1)) {
                head_remove(&s->head, se);
                rc = AG_ENOMEM;
                break;
            }
        }
        ser[i] = se;
        if (se->chk_gen != s->gen) {
            /* First entry of this series in the request. Prometheus' sender gives every sample
             * its own entry, so a series may come back later in the same request: its samples
             * then continue from where the earlier entry left off. */
            se->chk_gen = s->gen;
            se->chk_last_t = se->last_t;
            se->chk_last_vbits = se->last_vbits;
            se->chk_has = has_samples(se);
        }
        for (size_t k = 0; k < in->nsamples; k++) {
            int64_t t = in->samples[k].t;
            uint64_t vb = vbits_of(in->samples[k].v);
            if (t < oldest_ok) {
                char d[200];
                describe_series(se, d, sizeof d);
                rc = ag_errmsg_set(&res->err, AG_ECONFLICT, -1,
                                   "sample too old: timestamp %lld is older than "
                                   "storage.retention.raw allows (oldest accepted %lld) for "
                                   "series %s",
                                   (long long)t, (long long)oldest_ok, d);
                atomic_fetch_add(&s->st_ooo, 1);
                i++;
                goto out;
            }
            if (!se->chk_has || t > se->chk_last_t) {
                se->chk_has = true;
                se->chk_last_t = t;
                se->chk_last_vbits = vb;
                continue;
            }
            if (t == se->chk_last_t && vb == se->chk_last_vbits) {
                dups++;
                continue;
            }
            uint64_t have = 0;
            int f = is_newer(se, t) ? 0 : sample_at(s, txn, se, t, &have);
            if (f < 0) {
                rc = ag_errmsg_set(&res->err, f, -1, "reading stored samples: %s", ag_strerror(f));
                goto out;
            }
            if (f == 1 && have == vb) {
                dups++;
                continue;
            }
            /* Older than the newest sample but within the window, and nothing stored at t:
             * merged in (apply_ooo). */
            int64_t win = atomic_load(&s->ooo_window_ms);
            if (f == 0 && win > 0 && t != se->chk_last_t &&
                (se->chk_last_t < INT64_MIN + win || t >= se->chk_last_t - win))
                continue;
            char d[200];
            describe_series(se, d, sizeof d);
            if (f == 1 || t == se->chk_last_t)
                rc = ag_errmsg_set(&res->err, AG_ECONFLICT, -1,
                                   "duplicate sample for timestamp %lld with a different value "
                                   "for series %s",
                                   (long long)t, d);
            else
                rc = ag_errmsg_set(&res->err, AG_ECONFLICT, -1,
                                   "out of order sample: timestamp %lld is older than %lld by more "
                                   "than storage.out_of_order_window (%lld ms) for series %s",
                                   (long long)t, (long long)se->chk_last_t, (long long)win, d);
            atomic_fetch_add(&s->st_ooo, 1);
            i++;
            goto out;
        }
    }
out:
    if (rc) {
        size_t upto = i < r->nseries ? i + 1 : r->nseries;
        for (size_t k = 0; k < upto; k++) {
            if (ser[k] && ser[k]->pending) {
                series_t *p = ser[k];
                for (size_t j = k; j < upto; j++)
                    if (ser[j] == p) ser[j] = NULL;
                metric_count_add(s, p, -1);
                head_remove(&s->head, p);
            }
        }
        return rc;
    }
    res->duplicates = dups;
    return AG_OK;
}

static int create_series(ag_store_t *s, MDB_txn *txn, series_t *se, const ag_series_in_t *in)
{
    uint64_t id = s->next_id;
    unsigned char k[8];
    key_put_u64(k, id);
    MDB_val key = {8, k}, val = {se->labels_len, se->labels};
    int rc = mdb_put(txn, s->dbi_series, &key, &val, MDB_APPEND);
    if (rc) return store_lmdb_err(rc);
    unsigned char pk[POSTING_KEY_MAX + 32];
    for (size_t i = 0; i < in->nlabels; i++) {
        MDB_val pkey = {posting_key_n(pk, in->labels[i].name, strlen(in->labels[i].name),
                                           in->labels[i].value, strlen(in->labels[i].value)), pk};
        MDB_val pval = {8, k};
        rc = mdb_put(txn, s->dbi_postings, &pkey, &pval, 0);
        if (rc) return store_lmdb_err(rc);
    }
    rc = head_assign_id(&s->head, se, id);
    if (rc) return rc;
    s->next_id++;
    atomic_fetch_add(&s->st_created, 1);
    return AG_OK;
}

static int put_metadata(ag_store_t *s, MDB_txn *txn, const ag_metadata_in_t *m, ag_buf_t *scratch)
{
    if (!m->family || !*m->family) return AG_OK;
    ag_buf_reset(scratch);
    ag_buf_append(scratch, m->type ? m->type : "unknown", strlen(m->type ? m->type : "unknown") + 1);
    ag_buf_append(scratch, m->help ? m->help : "", strlen(m->help ? m->help : "") + 1);
    ag_buf_append(scratch, m->unit ? m->unit : "", strlen(m->unit ? m->unit : "") + 1);
    if (!ag_buf_ok(scratch)) return AG_ENOMEM;
    size_t fl = strlen(m->family);
    if (fl > POSTING_KEY_MAX) return AG_OK; /* not worth a key; metadata is best effort */
    MDB_val key = {fl, (void *)m->family}, old;
    if (mdb_get(txn, s->dbi_metadata, &key, &old) == 0 && old.mv_size == scratch->len &&
        memcmp(old.mv_data, scratch->data, scratch->len) == 0)
        return AG_OK;
    MDB_val val = {scratch->len, scratch->data};
    return store_lmdb_err(mdb_put(txn, s->dbi_metadata, &key, &val, 0));
}

/* ---- WAL records --------------------------------------------------------------------------
 * A record holds the samples one request added, series by series: uvarint id, uvarint count,
 * then per sample its timestamp and value. Format 2 (what is written) starts with WAL_V2 and
 * the record's base timestamp (zigzag uvarint); a series' first timestamp is a zigzag delta from
 * the base (Prometheus sends one scrape's samples with one timestamp, so mostly 1 byte), later
 * ones plain deltas; a value is a uvarint whose low 2 bits say how: 1 = an integer (zigzag), 2 =
 * a decimal with two digits (zigzag of v * 100, stored only when dividing by 100 gives the same
 * bits back), 3 = four digits, 0 = the raw 8 bytes follow (little endian). Format 1 (older
 * stores; its first byte is a series id, never 0) has absolute zigzag first timestamps and raw
 * values. Every form restores the exact bits (NaN payloads, -0.0 and stale markers go raw). */
#define WAL_V2 0

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t u) { return (int64_t)((u >> 1) ^ (~(u & 1) + 1)); }

static void wal_value(ag_buf_t *b, uint64_t vbits)
{
    static const double scale[4] = {0, 1, 100, 10000};
    double v;
    memcpy(&v, &vbits, 8);
    for (int k = 1; k <= 3; k++) {
        double m = v * scale[k];
        /* |m| < 2^52 keeps zigzag << 2 inside 64 bits; the round trip must give v's bits. */
        if (!(m > -4503599627370496.0 && m < 4503599627370496.0)) continue;
        /* Round half away from zero (llround without the libm call); the check below decides. */
        int64_t im = (int64_t)(m < 0 ? m - 0.5 : m + 0.5);
        double back = k == 1 ? (double)im : (double)im / scale[k];
        if (vbits_of(back) != vbits) continue;
        put_uvarint(b, (zigzag(im) << 2) | (uint64_t)k);
        return;
    }
    unsigned char raw[9];
    raw[0] = 0;
    for (int i = 0; i < 8; i++) raw[1 + i] = (unsigned char)(vbits >> (8 * i));
    ag_buf_append(b, raw, 9);
}

static int wal_value_read(const unsigned char **p, const unsigned char *end, uint64_t *vbits)
{
    static const double scale[4] = {0, 1, 100, 10000};
    uint64_t u;
    if (get_uvarint(p, end, &u)) return AG_ECORRUPT;
    unsigned k = (unsigned)(u & 3);
    if (k == 0) {
        if (u != 0 || end - *p < 8) return AG_ECORRUPT;
        uint64_t vb = 0;
        for (int b = 7; b >= 0; b--) vb = (vb << 8) | (*p)[b];
        *p += 8;
        *vbits = vb;
        return AG_OK;
    }
    int64_t im = unzigzag(u >> 2);
    *vbits = vbits_of(k == 1 ? (double)im : (double)im / scale[k]);
    return AG_OK;
}

/* Phase 2: creates pending series, appends the new samples, logs them in the WAL. */
static int put_blobs(ag_store_t *s, MDB_txn *txn, const ag_write_req_t *r)
{
    unsigned char k[AG_BLOB_KEY_MAX + 1];
    for (size_t i = 0; i < r->nblobs; i++) {
        const ag_blob_in_t *b = &r->blobs[i];
        k[0] = BLOB_KEY_TAG;
        memcpy(k + 1, b->key, b->key_len);
        MDB_val key = {b->key_len + 1, k}, val = {b->val_len, (void *)b->val};
        int rc = b->val ? mdb_put(txn, s->dbi_models, &key, &val, 0)
                        : mdb_del(txn, s->dbi_models, &key, NULL);
        if (rc && !(rc == MDB_NOTFOUND && !b->val)) return store_lmdb_err(rc);
    }
    return AG_OK;
}

/* Largest scratch buffer a group leaves allocated for the next one. */
#define GROUP_BUF_KEEP (4u << 20)

/* ---- the sample observer ------------------------------------------------------------------
 * The observer (the zero-config detector) costs about as much as the rest of the committer's
 * work per sample, so it runs after the group's writers got their answer, while they decode
 * their next requests: apply_request records each series with a copy of its samples, and
 * observe_deferred hands them over once the group committed. Only the committer thread touches
 * series slots, and no series is freed between the two (a failed group, whose head is rebuilt,
 * drops the list instead). */
typedef struct obs_entry {
    series_t *se;
    size_t off, n; /* samples in obs_smp */
} obs_entry_t;

static void observe_later(ag_store_t *s, const ag_store_observer_t *obs, series_t *se,
                          const ag_series_in_t *in)
{
    size_t n = in->nsamples;
    if (s->obs_n == s->obs_cap || s->obs_nsmp + n > s->obs_capsmp) {
        size_t ce = s->obs_cap, cs = s->obs_capsmp;
        while (ce <= s->obs_n) ce = ce ? ce * 2 : 1024;
        while (cs < s->obs_nsmp + n) cs = cs ? cs * 2 : 4096;
        obs_entry_t *ne = ce != s->obs_cap ? realloc(s->obs_ent, ce * sizeof *ne) : s->obs_ent;
        if (ne) {
            s->obs_ent = ne;
            s->obs_cap = ce;
        }
        ag_sample_t *ns = cs != s->obs_capsmp ? realloc(s->obs_smp, cs * sizeof *ns) : s->obs_smp;
        if (ns) {
            s->obs_smp = ns;
            s->obs_capsmp = cs;
        }
        if (!ne || !ns) { /* no room to defer: observe right now */
            if (obs->samples(obs->ctx, se->labels, se->labels_len, se->slot, &se->slot_status,
                             in->samples, n))
                se->slot_dirty = true;
            return;
        }
    }
    memcpy(s->obs_smp + s->obs_nsmp, in->samples, n * sizeof *in->samples);
    s->obs_ent[s->obs_n++] = (obs_entry_t){se, s->obs_nsmp, n};
    s->obs_nsmp += n;
}

/* Runs the observer over the group just finished (`committed` false: drops what was recorded). */
static void observe_deferred(ag_store_t *s, const ag_store_observer_t *obs, bool committed)
{
    for (size_t i = 0; committed && i < s->obs_n; i++) {
        obs_entry_t *en = &s->obs_ent[i];
        series_t *se = en->se;
        if (obs->samples(obs->ctx, se->labels, se->labels_len, se->slot, &se->slot_status,
                         s->obs_smp + en->off, en->n))
            se->slot_dirty = true;
    }
    s->obs_n = s->obs_nsmp = 0;
    obs->group_end(obs->ctx, committed);
    if (s->obs_capsmp * sizeof *s->obs_smp > GROUP_BUF_KEEP) { /* one huge group: give it back */
        free(s->obs_smp);
        free(s->obs_ent);
        s->obs_smp = NULL;
        s->obs_ent = NULL;
        s->obs_capsmp = s->obs_cap = 0;
    }
}

/* How many series ahead apply_request prefetches. */
#define APPLY_AHEAD 16

static int apply_request(ag_store_t *s, MDB_txn *txn, const ag_write_req_t *r, series_t **ser,
                         ag_buf_t *wal, ag_buf_t *tmp, ag_write_res_t *res, int64_t *min_t,
                         const ag_store_observer_t *obs)
{
    int rc;
    int64_t wal_base = 0;
    ag_buf_reset(wal);
    for (size_t i = 0; i < r->nseries; i++) {
        series_t *se = ser[i];
        const ag_series_in_t *in = &r->series[i];
        if (i + APPLY_AHEAD < r->nseries) {
            /* The open chunk's last byte of a series a few entries ahead: these are spread over
             * the heap and would otherwise be waited for one at a time. */
            const series_t *ahead = ser[i + APPLY_AHEAD];
            if (ahead->head.buf) __builtin_prefetch(ahead->head.buf + ahead->head.bits / 8, 1);
        }
        if (se->pending) {
            if ((rc = create_series(s, txn, se, in))) return rc;
            res->series_created++;
        }
        /* The series' entry goes straight into the record: id, a one-byte count filled in at
         * the end (widened in the rare case of 128 samples or more), the samples. An entry
         * that added nothing is taken back out, with the record header if it wrote it. */
        size_t entry_start = wal->len;
        if (!wal->len && in->nsamples) {
            unsigned char m = WAL_V2; /* record header: format marker, base timestamp */
            ag_buf_append(wal, &m, 1);
            wal_base = in->samples[0].t;
            put_uvarint(wal, zigzag(wal_base));
        }
        put_uvarint(wal, se->id);
        size_t count_at = wal->len;
        ag_buf_putc(wal, 0);
        uint64_t n = 0;
        int64_t prev = 0;
        for (size_t k = 0; k < in->nsamples; k++) {
            int64_t t = in->samples[k].t;
            uint64_t vb = vbits_of(in->samples[k].v);
            if (!is_newer(se, t)) {
                bool added;
                if ((rc = apply_ooo(s, txn, se, t, vb, &added))) return rc;
                if (!added) continue; /* a duplicate */
            } else if ((rc = apply_sample(s, txn, se, t, vb, s->opts.chunk_samples))) {
                return rc;
            }
            if (t < *min_t) *min_t = t;
            put_uvarint(wal, n == 0 ? zigzag((int64_t)((uint64_t)t - (uint64_t)wal_base))
                                    : (uint64_t)t - (uint64_t)prev);
            wal_value(wal, vb);
            prev = t;
            n++;
        }
        if (!ag_buf_ok(wal)) return AG_ENOMEM;
        if (!n) {
            wal->len = entry_start;
            wal->data[wal->len] = 0;
            continue;
        }
        if (n < 0x80) {
            wal->data[count_at] = (char)n;
        } else {
            unsigned char v[10];
            size_t k = 0;
            for (uint64_t x = n; x >= 0x80; x >>= 7) v[k++] = (unsigned char)(x | 0x80);
            v[k] = (unsigned char)(n >> (7 * k));
            k++;
            if (!ag_buf_reserve(wal, k - 1)) return AG_ENOMEM;
            memmove(wal->data + count_at + k, wal->data + count_at + 1, wal->len - count_at - 1);
            memcpy(wal->data + count_at, v, k);
            wal->len += k - 1;
            wal->data[wal->len] = 0;
        }
        res->appended += n;
        if (obs) observe_later(s, obs, se, in);
    }
    if ((rc = put_blobs(s, txn, r))) return rc;
    if (!ag_buf_ok(wal)) return AG_ENOMEM;
    if (wal->len) {
        unsigned char k[8];
        key_put_u64(k, s->wal_seq + 1);
        MDB_val key = {8, k}, val = {wal->len, wal->data};
        rc = mdb_put(txn, s->dbi_wal, &key, &val, MDB_APPEND);
        if (rc) return store_lmdb_err(rc);
        s->wal_seq++;
        s->wal_bytes += wal->len;
    }
    for (size_t i = 0; i < r->nmeta; i++)
        if ((rc = put_metadata(s, txn, &r->meta[i], tmp))) return rc;
    return AG_OK;
}

/* Replays one WAL record into the head. Series ids must exist (they were created in the same
 * transaction as the record). */
static int replay_record(ag_store_t *s, MDB_txn *txn, const unsigned char *p, size_t len)
{
    const unsigned char *end = p + len;
    bool v2 = len && p[0] == WAL_V2;
    int64_t base = 0;
    if (v2) {
        uint64_t u;
        p++;
        if (get_uvarint(&p, end, &u)) return AG_ECORRUPT;
        base = unzigzag(u);
    }
    while (p < end) {
        uint64_t id, n;
        if (get_uvarint(&p, end, &id) || get_uvarint(&p, end, &n)) return AG_ECORRUPT;
        series_t *se = head_by_id(&s->head, id);
        /* A series retention deleted after the record was written (ids are never reused). */
        if (!se && (id == 0 || id >= s->next_id)) return AG_ECORRUPT;
        int64_t t = 0;
        for (uint64_t k = 0; k < n; k++) {
            uint64_t u;
            if (get_uvarint(&p, end, &u)) return AG_ECORRUPT;
            if (k > 0) t = (int64_t)((uint64_t)t + u);
            else if (v2) t = (int64_t)((uint64_t)base + (uint64_t)unzigzag(u));
            else t = unzigzag(u);
            uint64_t vb = 0;
            if (v2) {
                if (wal_value_read(&p, end, &vb)) return AG_ECORRUPT;
            } else {
                if (end - p < 8) return AG_ECORRUPT;
                for (int b = 7; b >= 0; b--) vb = (vb << 8) | p[b];
                p += 8;
            }
            /* Seal only when a chunk is at the codec's limit so replay needs no disk space. A
             * sample not newer is either stored already or was merged out of order: apply_ooo
             * tells the two apart. */
            bool added;
            /* Below the rolled edge raw data only changes by retention: blocks are rolled from
             * durable raw data only (never from a head chunk not yet checkpointed), so such a
             * sample is stored already or expired, and replaying it would resurrect expired
             * data and drop the rollups around it. (A late sample that moved the edge back was
             * logged in the same transaction that deleted the blocks, so it lies above.) */
            if (!se || t < se->rolled[0]) continue;
            int rc = is_newer(se, t) ? apply_sample(s, txn, se, t, vb, AG_HCHUNK_MAX_SAMPLES)
                                     : apply_ooo(s, txn, se, t, vb, &added);
            if (rc) return rc;
        }
    }
    return AG_OK;
}

/* ---- recovery and checkpoints ------------------------------------------------------------ */

static int load_series_bounds(ag_store_t *s, MDB_cursor *c, series_t *se)
{
    unsigned char k[16];
    chunk_key(k, se->id, INT64_MIN);
    MDB_val key = {16, k}, val;
    int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND || (rc == 0 && key_get_u64(key.mv_data) != se->id)) return AG_OK;
    if (rc) return store_lmdb_err(rc);
    se->mint = key_to_ts(key_get_u64((unsigned char *)key.mv_data + 8));
    chunk_key(k, se->id + 1, INT64_MIN);
    key.mv_size = 16;
    key.mv_data = k;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    rc = rc == 0 ? mdb_cursor_get(c, &key, &val, MDB_PREV)
                 : rc == MDB_NOTFOUND ? mdb_cursor_get(c, &key, &val, MDB_LAST) : rc;
    if (rc) return store_lmdb_err(rc);
    if (key.mv_size != 16 || key_get_u64(key.mv_data) != se->id) return AG_ECORRUPT;
    const unsigned char *v = val.mv_data;
    int64_t kmint = chunk_key_mint(key.mv_data);
    size_t count = chunk_val_count(v, val.mv_size, kmint), n;
    if (!count || chunk_val_maxt(v, val.mv_size, kmint, &se->last_t)) return AG_ECORRUPT;
    ag_sample_pt_t *smp = malloc(count * sizeof *smp);
    if (!smp) return AG_ENOMEM;
    rc = chunk_val_decode(v, val.mv_size, kmint, INT64_MIN, INT64_MAX, smp, &n);
    if (!rc && (n != count || smp[n - 1].t != se->last_t)) rc = AG_ECORRUPT;
    if (!rc) se->last_vbits = vbits_of(smp[n - 1].v);
    if (!rc && (v[0] & CHUNK_OPEN)) {
        /* The open chunk (packed, or Gorilla in older stores) goes back into the head. */
        for (size_t i = 0; i < n && !rc; i++) rc = ag_hchunk_append(&se->head, smp[i].t, smp[i].v);
    }
    free(smp);
    if (rc) return rc;
    if (!s->has_time) {
        s->min_time = s->max_time = se->mint;
        s->has_time = true;
    }
    if (se->mint < s->min_time) s->min_time = se->mint;
    if (se->last_t > s->max_time) s->max_time = se->last_t;
    return AG_OK;
}

static int load_slots(ag_store_t *s, MDB_txn *txn);

/* Recovery of one series record: into the head, with its time bounds and rollup state. */
static int load_one_series(ag_store_t *s, MDB_txn *txn, MDB_cursor *cc, const group_member_t *m,
                           ag_errmsg_t *e)
{
    if (m->id == 0 || head_by_id(&s->head, m->id))
        return ag_errmsg_set(e, AG_ECORRUPT, -1, "series id %llu stored twice or zero",
                             (unsigned long long)m->id);
    uint64_t h = ag_labels_hash((const char *)m->val, m->len);
    series_t *se = head_insert(&s->head, h, (const char *)m->val, m->len);
    if (se && metric_count_add(s, se, 1)) se = NULL;
    if (!se || head_assign_id(&s->head, se, m->id))
        return ag_errmsg_set(e, AG_ENOMEM, -1, "out of memory loading series");
    int rc;
    if ((rc = load_series_bounds(s, cc, se)) || (rc = maint_load_series(s, txn, se)))
        return ag_errmsg_set(e, rc, -1, "series %llu: chunks unreadable: %s",
                             (unsigned long long)m->id, ag_strerror(rc));
    if (m->id >= s->next_id) s->next_id = m->id + 1;
    return AG_OK;
}

/* Rebuilds the in-memory state from LMDB: series, open chunks, then the WAL. */
static int recover(ag_store_t *s, ag_errmsg_t *e)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL, *cc = NULL;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) return ag_errmsg_set(e, store_lmdb_err(rc), -1, "begin: %s", mdb_strerror(rc));
    s->next_id = 1;
    s->min_time = s->max_time = 0;
    s->has_time = false;
    uint64_t nseries = 0, nrecords = 0;
    if ((rc = mdb_cursor_open(txn, s->dbi_series, &c)) ||
        (rc = mdb_cursor_open(txn, s->dbi_chunks, &cc))) {
        rc = ag_errmsg_set(e, store_lmdb_err(rc), -1, "cursor: %s", mdb_strerror(rc));
        goto fail;
    }
    MDB_val key, val;
    int mrc;
    ag_buf_t raw = AG_BUF_INIT;
    group_member_t *gm = NULL;
    size_t ngm = 0, capgm = 0;
    for (mrc = mdb_cursor_get(c, &key, &val, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
        group_member_t one = {0, val.mv_data, val.mv_size};
        const group_member_t *m = &one;
        size_t nm = 1;
        if (key.mv_size == 8) {
            one.id = key_get_u64(key.mv_data);
        } else if (key.mv_size == 9 && ((unsigned char *)key.mv_data)[8] == 0) {
            uint64_t first = key_get_u64(key.mv_data);
            if (first == 0 || group_first(first, GROUP_SERIES_IDS) != first ||
                (rc = group_decode(val.mv_data, val.mv_size, first, GROUP_SERIES_IDS, &raw, &gm,
                                   &ngm, &capgm))) {
                rc = ag_errmsg_set(e, rc == AG_ENOMEM ? rc : AG_ECORRUPT, -1,
                                   "series group %llu unreadable", (unsigned long long)first);
                break;
            }
            m = gm;
            nm = ngm;
        } else {
            rc = ag_errmsg_set(e, AG_ECORRUPT, -1, "series key of %zu bytes", key.mv_size);
            break;
        }
        for (size_t i = 0; i < nm && !rc; i++) rc = load_one_series(s, txn, cc, &m[i], e);
        if (rc) break;
        nseries += nm;
    }
    ag_buf_free(&raw);
    free(gm);
    if (rc) goto fail;
    if (mrc != MDB_NOTFOUND) {
        rc = ag_errmsg_set(e, store_lmdb_err(mrc), -1, "series: %s", mdb_strerror(mrc));
        goto fail;
    }
    mdb_cursor_close(c);
    c = NULL;
    if ((rc = load_slots(s, txn))) {
        rc = ag_errmsg_set(e, rc, -1, "observer state unreadable: %s", ag_strerror(rc));
        goto fail;
    }
    MDB_val nk = {7, "next_id"}, nv;
    if (mdb_get(txn, s->dbi_meta, &nk, &nv) == 0 && nv.mv_size == 8 &&
        key_get_u64(nv.mv_data) > s->next_id)
        s->next_id = key_get_u64(nv.mv_data);
    s->wal_seq = 0;
    s->wal_bytes = 0;
    if ((rc = mdb_cursor_open(txn, s->dbi_wal, &c))) {
        rc = ag_errmsg_set(e, store_lmdb_err(rc), -1, "cursor: %s", mdb_strerror(rc));
        goto fail;
    }
    for (mrc = mdb_cursor_get(c, &key, &val, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
        if (key.mv_size != 8 || (rc = replay_record(s, txn, val.mv_data, val.mv_size))) {
            rc = ag_errmsg_set(e, rc ? rc : AG_ECORRUPT, -1, "WAL record unreadable");
            goto fail;
        }
        s->wal_seq = key_get_u64(key.mv_data);
        s->wal_bytes += val.mv_size;
        nrecords++;
    }
    mdb_cursor_close(c);
    mdb_cursor_close(cc);
    c = cc = NULL;
    rc = mdb_txn_commit(txn);
    drop_sealing(s);
    if (rc) {
        txn = NULL;
        rc = ag_errmsg_set(e, store_lmdb_err(rc), -1, "commit: %s", mdb_strerror(rc));
        goto fail;
    }
    AG_INFO("\"storage recovered\" series=%llu wal_records_replayed=%llu",
            (unsigned long long)nseries, (unsigned long long)nrecords);
    return AG_OK;
fail:
    if (c) mdb_cursor_close(c);
    if (cc) mdb_cursor_close(cc);
    if (txn) mdb_txn_abort(txn);
    return rc;
}

static void release_map(ag_store_t *s);

/* Deletes every WAL record in txn. Deleting a record reads its first page through the map,
 * and the kernel maps the pages around it too, so the map's pages are released every few
 * hundred records: emptying a 64 MiB WAL then costs a few MiB of RSS, not 64. */
static int empty_wal(ag_store_t *s, MDB_txn *txn)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->dbi_wal, &c);
    if (rc) return store_lmdb_err(rc);
    MDB_val key, val;
    unsigned n = 0;
    while ((rc = mdb_cursor_get(c, &key, &val, MDB_FIRST)) == 0) {
        if ((rc = mdb_cursor_del(c, 0))) break;
        if (++n % 256 == 0) release_map(s);
    }
    mdb_cursor_close(c);
    release_map(s);
    return rc == MDB_NOTFOUND ? AG_OK : store_lmdb_err(rc);
}

static int put_slot(ag_store_t *s, MDB_txn *txn, series_t *se)
{
    unsigned char k[9] = {SLOT_KEY_TAG}, v[1 + AG_STORE_SLOT_SIZE];
    key_put_u64(k + 1, se->id);
    v[0] = se->slot_status;
    memcpy(v + 1, se->slot, AG_STORE_SLOT_SIZE);
    MDB_val key = {9, k}, val = {sizeof v, v};
    int rc = mdb_put(txn, s->dbi_models, &key, &val, 0);
    return store_lmdb_err(rc);
}

/* Restores the observer slots saved by checkpoints (recovery). */
static int load_slots(ag_store_t *s, MDB_txn *txn)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->dbi_models, &c);
    if (rc) return store_lmdb_err(rc);
    unsigned char k0[1] = {SLOT_KEY_TAG};
    MDB_val key = {1, k0}, val;
    ag_buf_t raw = AG_BUF_INIT;
    group_member_t *gm = NULL;
    size_t ngm = 0, capgm = 0;
    int grc = AG_OK;
    for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
        const unsigned char *k = key.mv_data;
        if (key.mv_size < 1 || k[0] != SLOT_KEY_TAG) break;
        group_member_t one = {0, val.mv_data, val.mv_size};
        const group_member_t *m = &one;
        size_t nm = 1;
        /* A group (SLOT_KEY_TAG | first id | 0) sorts after its first id's own record and
         * before the others of its range: a per-id record is newer than the group, so a member
         * does not replace a slot loaded from one (status already AG_SLOT_LOADED), and the
         * per-id records after the group replace its members. */
        bool grouped = key.mv_size == 10 && k[9] == 0;
        if (key.mv_size == 9) {
            one.id = key_get_u64(k + 1);
        } else if (grouped) {
            uint64_t first = key_get_u64(k + 1);
            if (first == 0 || group_first(first, GROUP_SLOT_IDS) != first) {
                grc = AG_ECORRUPT;
                break;
            }
            if ((grc = group_decode(val.mv_data, val.mv_size, first, GROUP_SLOT_IDS, &raw, &gm,
                                    &ngm, &capgm)))
                break;
            m = gm;
            nm = ngm;
        } else {
            continue;
        }
        for (size_t i = 0; i < nm; i++) {
            series_t *se = head_by_id(&s->head, m[i].id);
            if (!se || m[i].len != 1 + AG_STORE_SLOT_SIZE) continue;
            if (grouped && se->slot_status == AG_SLOT_LOADED) continue;
            memcpy(se->slot, m[i].val + 1, AG_STORE_SLOT_SIZE);
            se->slot_status = AG_SLOT_LOADED;
        }
    }
    mdb_cursor_close(c);
    ag_buf_free(&raw);
    free(gm);
    if (grc) return grc;
    return rc == 0 || rc == MDB_NOTFOUND ? AG_OK : store_lmdb_err(rc);
}

/* Copies every dirty head chunk (and changed observer slot) into LMDB and empties the WAL, in
 * one transaction. The caller holds `rw` exclusively. `pack` (at shutdown) writes the open
 * chunks packed, also those an earlier checkpoint only copied; otherwise they are copied. */
static int checkpoint(ag_store_t *s, bool pack)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) return store_lmdb_err(rc);
    for (size_t i = 0; i < s->head.nids; i++) {
        series_t *se = s->head.by_id[i];
        bool write = se && se->head.count && (se->dirty || (pack && s->open_copied));
        if (write && (rc = put_chunk(s, txn, se, CHUNK_OPEN, !pack))) {
            mdb_txn_abort(txn);
            return rc;
        }
        if (se && se->slot_dirty && (rc = put_slot(s, txn, se))) {
            mdb_txn_abort(txn);
            return rc;
        }
        /* The puts read tree pages through the map (and the kernel maps their neighbours): a
         * checkpoint of every series would otherwise count the whole file in augurd's RSS. */
        if (i % 4096 == 4095) release_map(s);
    }
    if ((rc = empty_wal(s, txn))) {
        mdb_txn_abort(txn);
        return rc;
    }
    if ((rc = mdb_txn_commit(txn))) return store_commit_err(s, rc);
    for (size_t i = 0; i < s->head.nids; i++)
        if (s->head.by_id[i]) s->head.by_id[i]->dirty = s->head.by_id[i]->slot_dirty = false;
    s->open_copied = !pack;
    s->wal_bytes = 0;
    s->last_checkpoint_ms = mono_ms();
    atomic_fetch_add(&s->st_checkpoints, 1);
    return AG_OK;
}

/* After a failed commit the head may hold samples LMDB does not: rebuild it from disk. If that
 * fails too, the head cannot be trusted: the store refuses writes and checkpoints from then on
 * (a restart recovers from LMDB), rather than risk duplicate series or a WAL dropped under a
 * half-built head. */
static void reload_head(ag_store_t *s)
{
    drop_sealing(s);
    head_destroy(&s->head);
    metric_counts_free(s);
    ag_errmsg_t e = {{0}, -1};
    int rc = head_init(&s->head);
    if (!rc) rc = recover(s, &e);
    if (rc) {
        s->failed = true;
        AG_ERROR("\"cannot rebuild the head after a failed commit; refusing writes until restart\" "
                 "err=\"%s\"",
                 e.msg);
    }
}

void store_forget_series(ag_store_t *s, series_t *se)
{
    metric_count_add(s, se, -1);
    head_delete(&s->head, se);
}

/* ---- the committer ----------------------------------------------------------------------- */

/* After a commit failed for lack of space, every group would fail the same way and then rebuild
 * the head from LMDB (seconds with many series). So for FULL_RETRY_MS after such a failure, and
 * then for as long as the filesystem has less than FULL_FREE_BYTES free, groups are refused at
 * once, before they touch anything. */
#define FULL_FREE_BYTES (16ULL << 20)
#define FULL_RETRY_MS 2000

static bool still_full(ag_store_t *s)
{
    if (!s->full) return false;
    struct statvfs vfs;
    bool low = statvfs(s->path, &vfs) == 0 &&
               (uint64_t)vfs.f_bavail * vfs.f_frsize < FULL_FREE_BYTES;
    if (low || mono_ms() - s->full_ms < FULL_RETRY_MS) return true;
    s->full = false;
    AG_INFO("\"storage has room again, taking writes\" path=%s", s->path);
    return false;
}

static bool process_group(ag_store_t *s, pending_write_t *list, ag_store_write_hook_fn hook,
                          void *hook_ctx, const ag_store_observer_t *obs)
{
    int64_t min_t = INT64_MAX; /* oldest sample appended by the group */
    ag_buf_t *scratch = &s->grp_scratch, *wal = &s->grp_wal, *tmp = &s->grp_tmp;
    ag_buf_reset(scratch);
    ag_buf_reset(wal);
    ag_buf_reset(tmp);
    MDB_txn *txn = NULL;
    int group_rc = AG_OK;
    bool applied = false; /* did the head change? only then must a failure rebuild it */
    pthread_rwlock_wrlock(&s->rw);
    int rc = s->failed || still_full(s) ? MDB_PANIC : mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) {
        group_rc = s->failed ? AG_EIO : s->full ? AG_EFULL : store_lmdb_err(rc);
        txn = NULL;
    }
    for (pending_write_t *p = list; p && !group_rc; p = p->next) {
        const ag_write_req_t *r = p->req;
        series_t **ser = calloc(r->nseries ? r->nseries : 1, sizeof *ser);
        if (!ser) {
            p->rc = AG_ENOMEM;
            continue;
        }
        p->rc = check_request(s, txn, r, ser, scratch, p->res);
        if (p->rc == AG_OK) {
            applied = true;
            rc = apply_request(s, txn, r, ser, wal, tmp, p->res, &min_t, obs);
            if (rc) group_rc = rc;
        }
        free(ser);
    }
    if (txn && !group_rc) {
        /* The head now holds the group's samples, and the chunks it sealed sit in their series'
         * `sealing` lists, so readers may go on while the commit (and its fsync) runs. */
        pthread_rwlock_unlock(&s->rw);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        rc = mdb_txn_commit(txn);
        clock_gettime(CLOCK_MONOTONIC, &b);
        atomic_fetch_add(&s->st_commit_ns, (uint64_t)((b.tv_sec - a.tv_sec) * 1000000000LL +
                                                      (b.tv_nsec - a.tv_nsec)));
        if (rc) group_rc = store_commit_err(s, rc);
        pthread_rwlock_wrlock(&s->rw);
    } else if (txn) {
        mdb_txn_abort(txn);
    }
    drop_sealing(s);
    if (group_rc) {
        atomic_fetch_add(&s->st_commit_fail, 1);
        if (!s->full) /* once, not for every group refused while the disk stays full */
            AG_WARN("\"write failed, requests in this group are answered with a retryable "
                    "error\" err=\"%s\"",
                    ag_strerror(group_rc));
        for (pending_write_t *p = list; p; p = p->next) {
            if (p->rc == AG_OK) {
                p->rc = group_rc;
                p->res->appended = p->res->duplicates = p->res->series_created = 0;
                ag_errmsg_set(&p->res->err, group_rc, -1, "storage write failed: %s",
                              s->failed ? "the store is in a failed state, restart augurd"
                                        : ag_strerror(group_rc));
            }
        }
        if (applied) reload_head(s);
        if (group_rc == AG_EFULL && !s->full) {
            s->full = true;
            s->full_ms = mono_ms();
        }
    } else {
        atomic_fetch_add(&s->st_commits, 1);
        for (pending_write_t *p = list; p; p = p->next) {
            if (p->rc) continue;
            atomic_fetch_add(&s->st_appended, p->res->appended);
            atomic_fetch_add(&s->st_duplicate, p->res->duplicates);
        }
        /* Committed and in the head, readers still held off (invariant 6). */
        if (hook && min_t != INT64_MAX) hook(hook_ctx, min_t);
    }
    pthread_rwlock_unlock(&s->rw);
    /* Kept for the next group (no regrowth per group) unless one huge request inflated them. */
    ag_buf_t *bufs[3] = {scratch, wal, tmp};
    for (int i = 0; i < 3; i++)
        if (bufs[i]->cap > GROUP_BUF_KEEP) ag_buf_free(bufs[i]);
    return group_rc == AG_OK;
}

/* A checkpoint when the WAL is big or old enough; `force` (at shutdown) checkpoints whatever is
 * left and packs the open chunks. */
static void maybe_checkpoint(ag_store_t *s, bool force)
{
    if (s->failed) return;
    int64_t now = mono_ms();
    if (!force && s->wal_bytes < s->opts.checkpoint_wal_bytes &&
        (s->wal_bytes == 0 ||
         now - s->last_checkpoint_ms < (int64_t)s->opts.checkpoint_interval_s * 1000))
        return;
    /* No lock: only the committer thread (this one) changes the head, the checkpoint only reads
     * it, and readers never read the open chunks it writes (they start at the head). */
    int rc = checkpoint(s, force);
    if (rc) AG_WARN("\"checkpoint failed, will retry\" err=\"%s\"", ag_strerror(rc));
}

/* Maintenance (maint.c) runs a bounded step when no request waits, and at least every
 * MAINT_EVERY_MS under constant load, so rollups and retention keep up without holding
 * requests back for more than one step. */
#define MAINT_EVERY_MS 1000

/* LMDB reads through a shared read-only map of the data file. The kernel maps file pages in
 * around every page touched (fault-around, 64 KiB), and right after a commit those neighbours
 * are the WAL and chunk pages just written, still in the page cache, so over a long ingest the
 * whole file ends up counted in augurd's RSS although nothing reads it. Every RELEASE_MS the
 * committer drops the map's page-table entries: the pages stay in the page cache and the next
 * access simply maps them again (the map is never written through, so nothing can be lost).
 * Measured (100,000 series x 120 samples; 10,000 x 5,760): every 2 s left 60 and 100 MiB of the
 * file mapped at the peak, every 100 ms 20 and 45 MiB, at no CPU cost that the ingest bench
 * could tell apart from noise. */
#define RELEASE_MS 100

/* Finds LMDB's map of data.mdb in /proc/self/maps (the public API does not give its address
 * unless MDB_FIXEDMAP is used). */
static void find_map(ag_store_t *s)
{
    char want[4200], line[4400];
    snprintf(want, sizeof want, "%s/data.mdb", s->path);
    char *real = realpath(want, NULL);
    FILE *f = fopen("/proc/self/maps", "r");
    while (f && real && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        int off = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &off) < 2 || !off) continue;
        char *path = line + off;
        path[strcspn(path, "\n")] = 0;
        if (strcmp(path, real) == 0) {
            s->map_addr = (void *)lo;
            s->map_len = hi - lo;
            break;
        }
    }
    if (f) fclose(f);
    free(real);
}

static void release_map(ag_store_t *s)
{
    MDB_envinfo info;
    MDB_stat ms;
    if (!s->map_addr || mdb_env_info(s->env, &info) || mdb_env_stat(s->env, &ms)) return;
    size_t len = (size_t)(info.me_last_pgno + 1) * ms.ms_psize;
    if (len > s->map_len) len = s->map_len;
    madvise(s->map_addr, len, MADV_DONTNEED);
}

static void *committer_main(void *arg)
{
    ag_store_t *s = arg;
    pthread_setname_np(pthread_self(), "augur-commit"); /* as top -H and ps -L show it */
    bool more = false;          /* the last maintenance step did work: there may be more */
    int64_t last_maint = mono_ms(), last_release = last_maint;
    for (;;) {
        pthread_mutex_lock(&s->qlock);
        while (!s->queue && !s->stopping && !more && !s->maint_force) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            if (pthread_cond_timedwait(&s->qcond, &s->qlock, &ts) == ETIMEDOUT) break;
        }
        pending_write_t *list = s->queue;
        ag_store_write_hook_fn hook = s->hook;
        void *hook_ctx = s->hook_ctx;
        ag_store_observer_t obs = s->obs;
        uint64_t obs_gen = ++s->obs_gen;
        if (!list) s->obs_done_gen = obs_gen;
        bool stop = s->stopping && !list;
        s->queue = s->queue_tail = NULL;
        pthread_mutex_unlock(&s->qlock);
        if (stop) break;
        if (list) {
            bool ok = process_group(s, list, hook, hook_ctx, obs.samples ? &obs : NULL);
            pthread_mutex_lock(&s->qlock);
            for (pending_write_t *p = list; p; p = p->next) p->done = true;
            pthread_cond_broadcast(&s->donecond);
            pthread_mutex_unlock(&s->qlock);
            /* The writers have their answers; now the observer (see observe_later). */
            if (obs.samples) observe_deferred(s, &obs, ok);
            pthread_mutex_lock(&s->qlock);
            s->obs_done_gen = obs_gen;
            pthread_cond_broadcast(&s->donecond);
            pthread_mutex_unlock(&s->qlock);
        }
        maybe_checkpoint(s, false);
        if (mono_ms() - last_release >= RELEASE_MS) {
            release_map(s);
            last_release = mono_ms();
        }
        pthread_mutex_lock(&s->qlock);
        bool idle = !s->queue;
        pthread_mutex_unlock(&s->qlock);
        more = false;
        pthread_mutex_lock(&s->qlock);
        bool force = s->maint_force;
        pthread_mutex_unlock(&s->qlock);
        if (force) {
            s->maint_idle_ms = 0;
            while (maint_step(s)) {}
            pthread_mutex_lock(&s->qlock);
            s->maint_force = false;
            pthread_cond_broadcast(&s->donecond);
            pthread_mutex_unlock(&s->qlock);
        } else if (idle || mono_ms() - last_maint >= MAINT_EVERY_MS) {
            more = maint_step(s);
            last_maint = mono_ms();
        }
    }
    return NULL;
}

int ag_store_write(ag_store_t *s, const ag_write_req_t *r, ag_write_res_t *res)
{
    memset(res, 0, sizeof *res);
    res->err.offset = -1;
    if (r->nseries == 0 && r->nmeta == 0 && r->nblobs == 0) return AG_OK;
    pending_write_t pw = {r, res, AG_OK, false, NULL};
    pthread_mutex_lock(&s->qlock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->qlock);
        return ag_errmsg_set(&res->err, AG_ESHUTDOWN, -1, "storage is shutting down");
    }
    if (s->queue_tail)
        s->queue_tail->next = &pw;
    else
        s->queue = &pw;
    s->queue_tail = &pw;
    pthread_cond_signal(&s->qcond);
    while (!pw.done) pthread_cond_wait(&s->donecond, &s->qlock);
    pthread_mutex_unlock(&s->qlock);
    return pw.rc;
}

void ag_store_maintain(ag_store_t *s)
{
    pthread_mutex_lock(&s->qlock);
    s->maint_force = true;
    pthread_cond_signal(&s->qcond);
    while (s->maint_force && !s->stopping) pthread_cond_wait(&s->donecond, &s->qlock);
    pthread_mutex_unlock(&s->qlock);
}

void ag_store_set_observer(ag_store_t *s, const ag_store_observer_t *o)
{
    pthread_mutex_lock(&s->qlock);
    if (o && o->samples && o->group_end)
        s->obs = *o;
    else
        memset(&s->obs, 0, sizeof s->obs);
    /* Wait for a group that copied the old observer to finish with it. */
    uint64_t g = s->obs_gen;
    while (s->committer_started && !s->stopping && s->obs_done_gen < g)
        pthread_cond_wait(&s->donecond, &s->qlock);
    pthread_mutex_unlock(&s->qlock);
}

void ag_store_set_write_hook(ag_store_t *s, ag_store_write_hook_fn fn, void *ctx)
{
    pthread_mutex_lock(&s->qlock);
    s->hook = fn;
    s->hook_ctx = fn ? ctx : NULL;
    pthread_mutex_unlock(&s->qlock);
}

/* ---- open and close ---------------------------------------------------------------------- */

static int open_dbis(ag_store_t *s, ag_errmsg_t *e)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) return ag_errmsg_set(e, store_lmdb_err(rc), -1, "begin: %s", mdb_strerror(rc));
    struct {
        const char *name;
        unsigned flags;
        MDB_dbi *dbi;
    } dbs[] = {
        {"meta", 0, &s->dbi_meta},
        {"series", 0, &s->dbi_series},
        {"postings", MDB_DUPSORT | MDB_DUPFIXED, &s->dbi_postings},
        {"chunks", 0, &s->dbi_chunks},
        {"wal", 0, &s->dbi_wal},
        {"metadata", 0, &s->dbi_metadata},
        {"rollups", 0, &s->dbi_rollups},
        {"models", 0, &s->dbi_models},
        {"postings_cold", 0, &s->dbi_postings_cold},
    };
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        if ((rc = mdb_dbi_open(txn, dbs[i].name, dbs[i].flags | MDB_CREATE, dbs[i].dbi))) {
            mdb_txn_abort(txn);
            return ag_errmsg_set(e, store_lmdb_err(rc), -1, "open table %s: %s", dbs[i].name,
                                 mdb_strerror(rc));
        }
    }
    MDB_val key = {6, "schema"}, val;
    rc = mdb_get(txn, s->dbi_meta, &key, &val);
    /* Version 1 stores (no cold records yet) are taken as they are and marked 2 at once, so
     * that an older augurd refuses the file by its version rather than by a key it does not
     * know once a clean stop has written cold records. */
    bool v1 = rc == 0 && val.mv_size == 8 && key_get_u64(val.mv_data) == 1;
    if (rc == MDB_NOTFOUND || v1) {
        unsigned char v[8];
        key_put_u64(v, SCHEMA_VERSION);
        val.mv_size = 8;
        val.mv_data = v;
        rc = mdb_put(txn, s->dbi_meta, &key, &val, 0);
    } else if (rc == 0 && (val.mv_size != 8 || key_get_u64(val.mv_data) != SCHEMA_VERSION)) {
        mdb_txn_abort(txn);
        return ag_errmsg_set(e, AG_ECORRUPT, -1, "unknown storage schema version");
    }
    if (rc) {
        mdb_txn_abort(txn);
        return ag_errmsg_set(e, store_lmdb_err(rc), -1, "schema: %s", mdb_strerror(rc));
    }
    rc = mdb_txn_commit(txn);
    if (rc) return ag_errmsg_set(e, store_lmdb_err(rc), -1, "commit: %s", mdb_strerror(rc));
    return AG_OK;
}

int ag_store_open(const ag_store_opts_t *o, ag_store_t **out, ag_errmsg_t *e)
{
    *out = NULL;
    ag_store_t *s = calloc(1, sizeof *s);
    if (!s) return AG_ENOMEM;
    int rc;
    s->opts = *o;
    ag_store_set_limits(s, o->max_series, o->max_series_per_metric);
    ag_store_set_ooo_window(s, o->ooo_window_ms);
    ag_store_set_retention(s, o->retention_ms);
    if (s->opts.chunk_samples == 0) s->opts.chunk_samples = 120;
    if (s->opts.chunk_samples > AG_CHUNK_MAX_SAMPLES) s->opts.chunk_samples = AG_CHUNK_MAX_SAMPLES;
    s->lock_fd = -1;
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Writer preference: a stream of queries must not starve the committer. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->rw, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->qcond, NULL);
    pthread_cond_init(&s->donecond, NULL);
    if (!(s->path = strdup(o->path)) || head_init(&s->head)) {
        rc = AG_ENOMEM;
        goto fail;
    }
    if (mkdir_parents(s->path) && errno != EEXIST) {
        rc = ag_errmsg_set(e, AG_EIO, -1, "cannot create data directory %s: %s", s->path,
                           strerror(errno));
        goto fail;
    }
    char lockpath[4096];
    snprintf(lockpath, sizeof lockpath, "%s/augur.lock", s->path);
    s->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        rc = ag_errmsg_set(e, AG_EIO, -1, "cannot open %s: %s", lockpath, strerror(errno));
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB)) {
        rc = ag_errmsg_set(e, AG_EIO, -1, "data directory %s is in use by another process",
                           s->path);
        goto fail;
    }
    store_compact_cleanup(s);
    if ((rc = mdb_env_create(&s->env))) {
        s->env = NULL;
        rc = ag_errmsg_set(e, store_lmdb_err(rc), -1, "lmdb: %s", mdb_strerror(rc));
        goto fail;
    }
    mdb_env_set_maxdbs(s->env, 16);
    mdb_env_set_maxreaders(s->env, 1024);
    if ((rc = mdb_env_set_mapsize(s->env, (size_t)s->opts.map_size)) ||
        (rc = mdb_env_open(s->env, s->path, MDB_NOTLS, 0644))) {
        rc = ag_errmsg_set(e, store_lmdb_err(rc), -1, "cannot open LMDB in %s: %s", s->path,
                           mdb_strerror(rc));
        goto fail;
    }
    if ((rc = open_dbis(s, e)) || (rc = recover(s, e))) goto fail;
    find_map(s);
    s->last_checkpoint_ms = mono_ms();
    if (s->wal_bytes) {
        /* Fold the replayed WAL into open chunks now so the next start is quick. */
        if ((rc = checkpoint(s, false)))
            AG_WARN("\"checkpoint after recovery failed\" err=\"%s\"", ag_strerror(rc));
    }
    if ((rc = pthread_create(&s->committer, NULL, committer_main, s))) {
        rc = ag_errmsg_set(e, AG_ENOMEM, -1, "cannot start committer thread");
        goto fail;
    }
    s->committer_started = true;
    *out = s;
    return AG_OK;
fail:
    ag_store_close(s);
    return rc;
}

void ag_store_close(ag_store_t *s)
{
    if (!s) return;
    if (s->committer_started) {
        pthread_mutex_lock(&s->qlock);
        s->stopping = true;
        pthread_cond_signal(&s->qcond);
        pthread_mutex_unlock(&s->qlock);
        pthread_join(s->committer, NULL);
        if (s->wal_bytes || s->open_copied) maybe_checkpoint(s, true);
    }
    bool compacted = s->committer_started && !s->failed && s->env && store_compact_copy(s);
    if (s->env) mdb_env_close(s->env);
    if (compacted) store_compact_install(s);
    head_destroy(&s->head);
    if (s->lock_fd >= 0) close(s->lock_fd);
    pthread_rwlock_destroy(&s->rw);
    free(s->sealed);
    free(s->pack_in);
    free(s->upd);
    free(s->rbuf);
    ag_buf_free(&s->pack_out);
    ag_buf_free(&s->grp_scratch);
    ag_buf_free(&s->grp_wal);
    ag_buf_free(&s->grp_tmp);
    free(s->obs_ent);
    free(s->obs_smp);
    metric_counts_free(s);
    pthread_mutex_destroy(&s->qlock);
    pthread_cond_destroy(&s->qcond);
    pthread_cond_destroy(&s->donecond);
    free(s->path);
    free(s);
}
