/* store_read.c - the read side of the series store: matcher resolution over the postings,
 * sample loading from sealed chunks plus the in-memory head, label names and values, metadata
 * and statistics.
 *
 * A reader takes the store's rwlock shared just long enough to open an LMDB read transaction,
 * resolve series ids and copy the head chunks it needs, with the chunks being sealed by a commit
 * in flight (invariant 5 in store.c); decoding sealed chunks happens after the lock is released,
 * inside that read transaction's snapshot.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ag_arena.h"
#include "ag_buf.h"
#include "store_int.h"

/* ---- sorted id sets ---------------------------------------------------------------------- */

int idset_push(idset_t *s, uint64_t id)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        uint64_t *n = realloc(s->v, cap * sizeof *n);
        if (!n) return AG_ENOMEM;
        s->v = n;
        s->cap = cap;
    }
    s->v[s->n++] = id;
    return AG_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void idset_normalize(idset_t *s)
{
    if (s->n < 2) return;
    /* One key's postings come sorted (LMDB keeps duplicates in order), and sorting 10,000 ids
     * costs more than the rest of a small query: check first. */
    size_t k = 1;
    while (k < s->n && s->v[k - 1] < s->v[k]) k++;
    if (k == s->n) return;
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    size_t w = 1;
    for (size_t i = 1; i < s->n; i++)
        if (s->v[i] != s->v[w - 1]) s->v[w++] = s->v[i];
    s->n = w;
}

/* a = a AND b (keep) or a = a AND NOT b (!keep); both sorted. */
static void idset_merge(idset_t *a, const idset_t *b, bool keep)
{
    size_t i = 0, j = 0, w = 0;
    while (i < a->n) {
        while (j < b->n && b->v[j] < a->v[i]) j++;
        bool in_b = j < b->n && b->v[j] == a->v[i];
        if (in_b == keep) a->v[w++] = a->v[i];
        i++;
    }
    a->n = w;
}

/* ---- postings ---------------------------------------------------------------------------- */

int postings_dups(MDB_cursor *c, idset_t *out)
{
    MDB_val k, v;
    size_t n = 0;
    /* A key with a single value has no duplicate pages, and MDB_GET_MULTIPLE on it does not
     * say so: after a cursor step from a key with several values it returns that key's page
     * (its duplicate cursor is left set). mdb_cursor_count reads the node itself. */
    int rc = mdb_cursor_count(c, &n);
    if (rc) return store_lmdb_err(rc);
    if (n == 1) {
        if ((rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT))) return store_lmdb_err(rc);
        return v.mv_size == 8 ? idset_push(out, key_get_u64(v.mv_data)) : AG_ECORRUPT;
    }
    rc = mdb_cursor_get(c, &k, &v, MDB_GET_MULTIPLE);
    while (rc == 0) {
        const unsigned char *p = v.mv_data;
        for (size_t off = 0; off + 8 <= v.mv_size; off += 8)
            if (idset_push(out, key_get_u64(p + off))) return AG_ENOMEM;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_MULTIPLE);
    }
    return rc == MDB_NOTFOUND ? AG_OK : store_lmdb_err(rc);
}

int idset_push_cb(void *ctx, uint64_t id) { return idset_push(ctx, id); }

/* The ids of the key under cursor c: its duplicates in `postings`, its list in `postings_cold`
 * (the value v at hand). */
static int add_ids(MDB_cursor *c, bool cold, const MDB_val *v, idset_t *out)
{
    return cold ? cold_postings_each(v->mv_data, v->mv_size, idset_push_cb, out)
                : postings_dups(c, out);
}

/* Collects, from table dbi (`postings`, or `postings_cold` when cold), the ids of series that
 * have label m->name with a non-empty value v for which matches(m, v) == want. The store lock
 * is held by the caller (for head_by_id). Unsorted. */
static int postings_scan_table(ag_store_t *s, MDB_txn *txn, MDB_dbi dbi, bool cold,
                               const ag_matcher_t *m, bool want, idset_t *out)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc) return store_lmdb_err(rc);
    size_t nl = strlen(m->name);
    unsigned char prefix[512];
    if (nl + 1 > sizeof prefix) {
        mdb_cursor_close(c);
        return AG_OK; /* no stored label name is that long */
    }
    memcpy(prefix, m->name, nl);
    prefix[nl] = 0;
    MDB_val k = {nl + 1, prefix}, v;
    if (m->type == AG_MATCH_EQ && want && nl + 1 + m->value_len <= 480) {
        /* Exact lookup. */
        unsigned char key[512];
        memcpy(key, prefix, nl + 1);
        memcpy(key + nl + 1, m->value, m->value_len);
        k.mv_size = nl + 1 + m->value_len;
        k.mv_data = key;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
        rc = rc == MDB_NOTFOUND ? AG_OK : rc ? store_lmdb_err(rc) : add_ids(c, cold, &v, out);
        mdb_cursor_close(c);
        return rc;
    }
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP)) {
        if (k.mv_size < nl + 1 || memcmp(k.mv_data, prefix, nl + 1) != 0) break;
        const char *val = (const char *)k.mv_data + nl + 1;
        size_t vl = k.mv_size - nl - 1;
        if (memchr(val, 0, vl)) {
            /* A cut key: decide per series from its full labels. */
            idset_t tmp = {0};
            if ((rc = add_ids(c, cold, &v, &tmp))) {
                free(tmp.v);
                break;
            }
            for (size_t i = 0; i < tmp.n && !rc; i++) {
                series_t *se = head_by_id(&s->head, tmp.v[i]);
                size_t fl;
                const char *full = se ? ag_labels_get(se->labels, se->labels_len, m->name, &fl)
                                      : NULL;
                if (full && ag_matcher_matches(m, full, fl) == want) rc = idset_push(out, tmp.v[i]);
            }
            free(tmp.v);
            if (rc) break;
            continue;
        }
        if (ag_matcher_matches(m, val, vl) == want && (rc = add_ids(c, cold, &v, out))) break;
    }
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND) rc = AG_OK;
    else if (rc > 0) rc = store_lmdb_err(rc);
    return rc;
}

/* Both tables of postings (store_int.h: cold postings): the ids sorted and distinct. */
static int postings_scan(ag_store_t *s, MDB_txn *txn, const ag_matcher_t *m, bool want,
                         idset_t *out)
{
    int rc = postings_scan_table(s, txn, s->dbi_postings, false, m, want, out);
    if (!rc) rc = postings_scan_table(s, txn, s->dbi_postings_cold, true, m, want, out);
    if (!rc) idset_normalize(out);
    return rc;
}

/* Prometheus' PostingsForMatchers: intersect the matchers that need a value, subtract the
 * series excluded by the ones that also match the empty string. */
static int resolve(ag_store_t *s, MDB_txn *txn, const ag_matcher_t *m, size_t nm, idset_t *out)
{
    int rc = AG_OK;
    bool have_positive = false;
    for (size_t i = 0; i < nm && !rc; i++) {
        if (ag_matcher_matches(&m[i], "", 0)) continue;
        idset_t p = {0};
        rc = postings_scan(s, txn, &m[i], true, &p);
        if (!rc) {
            if (!have_positive) {
                free(out->v);
                *out = p;
                p.v = NULL;
                have_positive = true;
            } else {
                idset_merge(out, &p, true);
            }
        }
        free(p.v);
    }
    if (rc) return rc;
    if (!have_positive) {
        for (size_t i = 0; i < s->head.nids; i++)
            if (s->head.by_id[i] && (rc = idset_push(out, i + 1))) return rc;
    }
    for (size_t i = 0; i < nm && !rc; i++) {
        if (!ag_matcher_matches(&m[i], "", 0)) continue;
        idset_t neg = {0};
        rc = postings_scan(s, txn, &m[i], false, &neg);
        if (!rc) idset_merge(out, &neg, false);
        free(neg.v);
    }
    return rc;
}

/* ---- selection --------------------------------------------------------------------------- */


/* What a selection reads: the matching series, sorted by labels, each with a copy of its labels
 * and of its head chunk taken under the store lock together with the read transaction, so
 * sealed chunks (read through txn) and head samples form one consistent view. */
typedef struct plan {
    MDB_txn *txn;
    sel_item_t *items;
    size_t n;
    ag_arena_t *arena; /* the copies of labels and head chunks */
} plan_t;

static void plan_free(plan_t *p)
{
    if (p->txn) mdb_txn_abort(p->txn);
    free(p->items);
    ag_arena_free(p->arena);
    memset(p, 0, sizeof *p);
}

static int cmp_item(const void *a, const void *b)
{
    const sel_item_t *x = a, *y = b;
    return ag_labels_cmp(x->labels, x->labels_len, y->labels, y->labels_len);
}

static int sel_error(ag_errmsg_t *e, int rc)
{
    if (rc == AG_ELIMIT)
        return ag_errmsg_set(e, rc, -1, "query processing would load too many samples into memory");
    return ag_errmsg_set(e, rc, -1, "reading series failed: %s", ag_strerror(rc));
}

/* Copies the chunks of a sealing list that start by maxt into the arena. */
static int copy_sealing(ag_arena_t *a, const sealing_t *sg, int64_t maxt, sealing_t **out)
{
    sealing_t **tail = out;
    *out = NULL;
    for (; sg && sg->start <= maxt; sg = sg->next) {
        sealing_t *c = ag_arena_alloc(a, sizeof *c + sg->len);
        if (!c) return AG_ENOMEM;
        memcpy(c, sg, sizeof *c + sg->len);
        c->next = NULL;
        *tail = c;
        tail = &c->next;
    }
    return AG_OK;
}

/* Does a matcher select se by its exact name (for AG_EXPLICIT_PREFIX series)? */
static bool names_it(const ag_matcher_t *m, size_t nm, const series_t *se)
{
    size_t nl = 0;
    const char *name = ag_labels_get(se->labels, se->labels_len, AG_METRIC_NAME, &nl);
    for (size_t i = 0; name && i < nm; i++)
        if (m[i].type == AG_MATCH_EQ && strcmp(m[i].name, AG_METRIC_NAME) == 0 &&
            m[i].value_len == nl && memcmp(m[i].value, name, nl) == 0)
            return true;
    return false;
}

/* Series matching m whose time bounds overlap [mint, maxt] (raw data, or with PLAN_ROLLUPS raw
 * data or rollups); head chunks are copied only with PLAN_SAMPLES. Sets e on failure. */
#define PLAN_SAMPLES 1
#define PLAN_ROLLUPS 2
static int plan_open(ag_store_t *s, const ag_matcher_t *m, size_t nm, int64_t mint, int64_t maxt,
                     unsigned flags, plan_t *p, ag_errmsg_t *e)
{
    memset(p, 0, sizeof *p);
    idset_t ids = {0};
    pthread_rwlock_rdlock(&s->rw);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &p->txn);
    if (rc) {
        p->txn = NULL;
        pthread_rwlock_unlock(&s->rw);
        return ag_errmsg_set(e, store_lmdb_err(rc), -1, "read: %s", mdb_strerror(rc));
    }
    bool with_samples = flags & PLAN_SAMPLES;
    rc = resolve(s, p->txn, m, nm, &ids);
    if (!rc && ids.n &&
        (!(p->items = calloc(ids.n, sizeof *p->items)) || !(p->arena = ag_arena_new(256 << 10, 0))))
        rc = AG_ENOMEM;
    for (size_t i = 0; i < ids.n && !rc; i++) {
        series_t *se = head_by_id(&s->head, ids.v[i]);
        if (!se || (se->explicit_only && !names_it(m, nm, se))) continue;
        int64_t oldest = se->mint;
        if (flags & PLAN_ROLLUPS)
            for (int k = 0; k < AG_ROLLUP_TIERS; k++)
                if (se->rmin[k] < oldest) oldest = se->rmin[k];
        if (oldest > maxt || se->last_t < mint) continue;
        sel_item_t *it = &p->items[p->n++];
        it->id = se->id;
        it->head_start = se->head.count ? se->head.first_t : INT64_MAX;
        it->mem_start = se->sealing ? se->sealing->start : it->head_start;
        memcpy(it->rolled, se->rolled, sizeof it->rolled);
        if (with_samples && (rc = copy_sealing(p->arena, se->sealing, maxt, &it->sealing))) break;
        if (!(it->labels = ag_arena_alloc(p->arena, se->labels_len ? se->labels_len : 1))) {
            rc = AG_ENOMEM;
            break;
        }
        memcpy(it->labels, se->labels, se->labels_len);
        it->labels_len = se->labels_len;
        if (with_samples && se->head.count && se->head.first_t <= maxt && se->last_t >= mint) {
            const uint8_t *b = ag_hchunk_bytes(&se->head, &it->head_len);
            if (!(it->head = ag_arena_alloc(p->arena, it->head_len))) {
                rc = AG_ENOMEM;
                break;
            }
            memcpy(it->head, b, it->head_len);
        }
    }
    pthread_rwlock_unlock(&s->rw);
    free(ids.v);
    if (rc) {
        plan_free(p);
        return sel_error(e, rc);
    }
    if (p->n > 1) qsort(p->items, p->n, sizeof *p->items, cmp_item);
    return AG_OK;
}

/* Appends the samples in [mint, maxt] of a head chunk (data, len; ag_hchunk.h) or, with `val`, of a
 * chunks-table value (either format) to sd. */
/* One chunk of a series to decode: sealed (val: a chunks-table value whose key time is kmint)
 * or a head-format chunk (sealing or head). Sealed bytes point into the LMDB map and stay valid
 * while the read transaction lives. */
typedef struct chunk_view {
    const uint8_t *p;
    size_t len;
    int64_t kmint;
    bool val;
} chunk_view_t;

typedef int (*view_fn)(void *ctx, const chunk_view_t *v);

/* Calls fn for each chunk of the item that may hold samples in [mint, maxt], in time order:
 * its sealed chunks read through txn, then the sealing ones, then the head. */
static int series_views(ag_store_t *s, MDB_txn *txn, const sel_item_t *it, int64_t mint,
                        int64_t maxt, view_fn fn, void *ctx)
{
    int rc = AG_OK;
    if (mint < it->mem_start) {
        MDB_cursor *c;
        if ((rc = mdb_cursor_open(txn, s->dbi_chunks, &c))) return store_lmdb_err(rc);
        unsigned char k[16];
        key_put_u64(k, it->id);
        key_put_u64(k + 8, ts_to_key(mint));
        MDB_val key = {16, k}, val;
        /* Start at the chunk that begins exactly at mint, else at the one before it (it may
         * reach into the range), else at the first one after. */
        int mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        bool exact = mrc == 0 && key.mv_size == 16 && memcmp(key.mv_data, k, 16) == 0;
        if (!exact && mrc != 0 && mrc != MDB_NOTFOUND) {
            mdb_cursor_close(c);
            return store_lmdb_err(mrc);
        }
        if (!exact) {
            int prc = mdb_cursor_get(c, &key, &val, mrc == 0 ? MDB_PREV : MDB_LAST);
            if (prc == 0 && key.mv_size == 16 && key_get_u64(key.mv_data) == it->id) {
                mrc = 0;
            } else {
                key.mv_size = 16;
                key.mv_data = k;
                mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
            }
        }
        for (; mrc == 0; mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
            if (key.mv_size != 16 || key_get_u64(key.mv_data) != it->id) break;
            int64_t start = key_to_ts(key_get_u64((unsigned char *)key.mv_data + 8));
            if (start > maxt || start >= it->mem_start) break;
            int64_t cmax;
            if ((rc = chunk_val_maxt(val.mv_data, val.mv_size, start, &cmax))) break;
            if (cmax < mint) continue;
            chunk_view_t v = {val.mv_data, val.mv_size, start, true};
            if ((rc = fn(ctx, &v))) break;
        }
        if (!rc && mrc != 0 && mrc != MDB_NOTFOUND) rc = store_lmdb_err(mrc);
        mdb_cursor_close(c);
        if (rc) return rc;
    }
    for (const sealing_t *sg = it->sealing; sg && !rc; sg = sg->next) {
        chunk_view_t v = {sg->bytes, sg->len, 0, false};
        rc = fn(ctx, &v);
    }
    if (!rc && it->head_len && it->head_start <= maxt) {
        chunk_view_t v = {it->head, it->head_len, 0, false};
        rc = fn(ctx, &v);
    }
    return rc;
}

/* The most samples a chunk holds, so that decoding it needs at most this much room. */
static size_t view_count(const chunk_view_t *v)
{
    return v->val ? chunk_val_count(v->p, v->len, v->kmint) : ag_hchunk_count(v->p, v->len);
}

/* Decodes a chunk's samples in [mint, maxt] to dst (room for view_count); *got their count. */
static int view_decode(const chunk_view_t *v, int64_t mint, int64_t maxt, ag_sample_t *dst,
                       size_t *got)
{
    if (v->val ? chunk_val_decode(v->p, v->len, v->kmint, mint, maxt, dst, got)
               : ag_hchunk_decode(v->p, v->len, mint, maxt, dst, got))
        return AG_ECORRUPT;
    return AG_OK;
}

typedef struct load_ctx {
    int64_t mint, maxt;
    ag_series_data_t *sd;
    size_t *cap;
    uint64_t *total, max;
} load_ctx_t;

/* view_fn of store_load_samples: decodes the chunk at the end of sd's array. */
static int load_view(void *arg, const chunk_view_t *v)
{
    load_ctx_t *c = arg;
    ag_series_data_t *sd = c->sd;
    size_t count = view_count(v), got;
    if (sd->n + count > *c->cap) {
        size_t nc = *c->cap ? *c->cap * 2 : 32;
        while (nc < sd->n + count) nc *= 2;
        ag_sample_t *ns = realloc(sd->samples, nc * sizeof *ns);
        if (!ns) return AG_ENOMEM;
        sd->samples = ns;
        *c->cap = nc;
    }
    int rc = view_decode(v, c->mint, c->maxt, sd->samples + sd->n, &got);
    if (rc) return rc;
    sd->n += got;
    *c->total += got;
    return c->max && *c->total > c->max ? AG_ELIMIT : AG_OK;
}

int store_load_samples(ag_store_t *s, MDB_txn *txn, const sel_item_t *it, int64_t mint,
                       int64_t maxt, ag_series_data_t *sd, size_t *cap, uint64_t *total,
                       uint64_t max)
{
    load_ctx_t c = {mint, maxt, sd, cap, total, max};
    return series_views(s, txn, it, mint, maxt, load_view, &c);
}

void store_item_of(const series_t *se, sel_item_t *it)
{
    memset(it, 0, sizeof *it);
    it->id = se->id;
    it->head_start = se->head.count ? se->head.first_t : INT64_MAX;
    it->mem_start = it->head_start;
    if (se->head.count) it->head = (uint8_t *)ag_hchunk_bytes(&se->head, &it->head_len);
    it->labels = se->labels;
    it->labels_len = se->labels_len;
    memcpy(it->rolled, se->rolled, sizeof it->rolled);
}

void ag_selection_free(ag_selection_t *sel)
{
    for (size_t i = 0; i < sel->n; i++) {
        free(sel->series[i].labels);
        free(sel->series[i].samples);
    }
    free(sel->series);
    memset(sel, 0, sizeof *sel);
}

int ag_store_select(ag_store_t *s, const ag_matcher_t *m, size_t nm, int64_t mint, int64_t maxt,
                    bool with_samples, uint64_t max_samples, ag_selection_t *out, ag_errmsg_t *e)
{
    memset(out, 0, sizeof *out);
    plan_t p;
    int rc = plan_open(s, m, nm, mint, maxt, with_samples ? PLAN_SAMPLES : 0, &p, e);
    if (rc) return rc;
    if (p.n && !(out->series = calloc(p.n, sizeof *out->series))) rc = AG_ENOMEM;
    for (size_t i = 0; i < p.n && !rc; i++) {
        sel_item_t *it = &p.items[i];
        ag_series_data_t *sd = &out->series[out->n++];
        if (!(sd->labels = malloc(it->labels_len ? it->labels_len : 1))) {
            out->n--;
            rc = AG_ENOMEM;
            break;
        }
        memcpy(sd->labels, it->labels, it->labels_len);
        sd->labels_len = it->labels_len;
        if (!with_samples) continue;
        size_t cap = 0;
        rc = store_load_samples(s, p.txn, it, mint, maxt, sd, &cap, &out->samples, max_samples);
        if (!rc && !sd->n) { /* its bounds only overlapped the range */
            free(sd->labels);
            free(sd->samples);
            memset(sd, 0, sizeof *sd); /* the next series reuses the slot */
            out->n--;
        }
    }
    plan_free(&p);
    if (rc) {
        ag_selection_free(out);
        return sel_error(e, rc);
    }
    return AG_OK;
}

/* A large scan runs on two threads. The read transaction belongs to a helper thread, which
 * walks the chunks table for one batch of series after another (cheap: it only notes where each
 * chunk's bytes lie in the map, see series_views) into a small ring. The work that costs,
 * decoding each series and mapping it (the per-series function of ag_store_scan_map), is then
 * claimed a few series at a time by whichever thread is free, the oldest batch first, and a
 * series is mapped by the thread that decoded it while its samples are still in that core's
 * cache. The caller's thread consumes each finished batch in series order (fn or mfn), so
 * results and their order are those of a plain scan; it works on the batch it waits for and
 * only waits for series the other thread is still on. So the two threads balance themselves
 * without a fixed split. The read transaction may move to the helper thread because the
 * environment is opened with MDB_NOTLS, and only that thread uses it; the bytes it points at
 * stay valid until it ends, after the scan (head data was copied by plan_open). */
#define SCAN_BATCH 256         /* series per batch at most (fewer when there are few series, so
                                  there are at least 16 batches to overlap) */
#define SCAN_BATCH_SAMPLES 262144.0
#define SCAN_BATCH_MAP_BYTES (1 << 20) /* mapped output per batch at most (one series at least) */
#define SCAN_RING 6            /* batches walked ahead at most */
/* Worth a second thread: at least this many samples expected (series x span at a 15 s
 * interval; a thread costs tens of microseconds, decoding this many takes milliseconds). */
#define SCAN_PARALLEL_MIN_SAMPLES 150000

typedef struct scan_batch {
    size_t first, n;              /* its series: p->items[first .. first + n) */
    chunk_view_t *views;          /* the chunks of all its series, series after series */
    size_t nviews, cap_views;
    size_t vfirst[SCAN_BATCH + 1]; /* series j's chunks: views[vfirst[j] .. vfirst[j + 1]) */
    size_t off[SCAN_BATCH + 1];   /* series j decodes to samples + off[j] (room for its chunks) */
    size_t got[SCAN_BATCH];       /* samples series j has, once decoded */
    int rcs[SCAN_BATCH];          /* series j's error, reported when the caller reaches it */
    ag_sample_t *samples;
    size_t cap;
    unsigned char *out;           /* mapped scans: n x msize bytes of map output */
    size_t next, done;            /* series claimed, series finished (under the lock) */
} scan_batch_t;

/* What a scan calls: fn (plain), or map then mfn (mapped). */
typedef struct scan_fns {
    ag_series_fn fn;
    ag_series_map_fn map;
    void *mctx;
    size_t msize;
    ag_series_mapped_fn mfn;
    void *ctx;
} scan_fns_t;

typedef struct scanner {
    ag_store_t *s;
    plan_t *p;
    const scan_fns_t *f;
    int64_t mint, maxt;
    uint64_t max;
    _Atomic uint64_t total;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t batch, nbatches, walked, consumed;
    int rc;    /* the walk's error, reported once the batches before it are consumed */
    bool stop; /* the caller gave up (or the walk failed) */
    bool helper_only; /* the helper does all the work (ag_store_set_map_on_decoder) */
    /* Mapped scans: each thread decodes a series into its own scratch (slot 0 the caller's, 1
     * the helper's), small enough to stay in its core's cache; plain scans decode into the
     * batch, whose samples fn gets later. */
    ag_sample_t *scratch[2];
    size_t scratch_cap[2];
    scan_batch_t ring[SCAN_RING];
} scanner_t;

typedef struct walk_ctx {
    scan_batch_t *sb;
    size_t room; /* samples the batch's chunks may hold */
} walk_ctx_t;

/* view_fn of walk_batch: notes the chunk. */
static int note_view(void *arg, const chunk_view_t *v)
{
    walk_ctx_t *w = arg;
    scan_batch_t *sb = w->sb;
    if (sb->nviews == sb->cap_views) {
        size_t nc = sb->cap_views ? sb->cap_views * 2 : 64;
        chunk_view_t *nv = realloc(sb->views, nc * sizeof *nv);
        if (!nv) return AG_ENOMEM;
        sb->views = nv;
        sb->cap_views = nc;
    }
    sb->views[sb->nviews++] = *v;
    w->room += view_count(v);
    return AG_OK;
}

/* The helper's part of batch b: where its series' chunks lie, and room to decode them. */
static int walk_batch(scanner_t *sc, size_t b)
{
    scan_batch_t *sb = &sc->ring[b % SCAN_RING];
    sb->first = b * sc->batch;
    sb->n = sc->p->n - sb->first < sc->batch ? sc->p->n - sb->first : sc->batch;
    sb->nviews = 0;
    sb->next = sb->done = 0;
    walk_ctx_t w = {sb, 0};
    for (size_t j = 0; j < sb->n; j++) {
        sb->vfirst[j] = sb->nviews;
        sb->off[j] = w.room;
        int rc = series_views(sc->s, sc->p->txn, &sc->p->items[sb->first + j], sc->mint,
                              sc->maxt, note_view, &w);
        if (rc) return rc;
    }
    sb->vfirst[sb->n] = sb->nviews;
    sb->off[sb->n] = w.room;
    if (!sc->f->map && w.room > sb->cap) {
        ag_sample_t *ns = realloc(sb->samples, w.room * sizeof *ns);
        if (!ns) return AG_ENOMEM;
        sb->samples = ns;
        sb->cap = w.room;
    }
    return AG_OK;
}

/* Decodes (and maps) series j of batch sb on thread `slot`; the result goes to sb->rcs[j]. */
static void work_series(scanner_t *sc, scan_batch_t *sb, size_t j, int slot)
{
    const scan_fns_t *f = sc->f;
    ag_sample_t *dst = sb->samples + sb->off[j];
    size_t n = 0, got, room = sb->off[j + 1] - sb->off[j];
    int rc = AG_OK;
    if (f->map) {
        if (room > sc->scratch_cap[slot]) {
            ag_sample_t *ns = realloc(sc->scratch[slot], room * sizeof *ns);
            if (!ns) {
                sb->got[j] = 0;
                sb->rcs[j] = AG_ENOMEM;
                return;
            }
            sc->scratch[slot] = ns;
            sc->scratch_cap[slot] = room;
        }
        dst = sc->scratch[slot];
    }
    for (size_t v = sb->vfirst[j]; v < sb->vfirst[j + 1] && !rc; v++) {
        rc = view_decode(&sb->views[v], sc->mint, sc->maxt, dst + n, &got);
        n += got;
    }
    if (!rc && sc->max && atomic_fetch_add(&sc->total, n) + n > sc->max) rc = AG_ELIMIT;
    sb->got[j] = n;
    if (!rc && f->map && n) {
        const sel_item_t *it = &sc->p->items[sb->first + j];
        rc = f->map(f->mctx, slot, it->labels, it->labels_len, dst, n, sb->out + j * f->msize);
    }
    sb->rcs[j] = rc;
}

/* Under sc->mu: claims a few series of the oldest walked batch from `from` on that has any
 * left, works on them without the lock, and returns true; false when there is none. */
static bool work_some(scanner_t *sc, size_t from, int slot)
{
    for (size_t b = from; b < sc->walked; b++) {
        scan_batch_t *sb = &sc->ring[b % SCAN_RING];
        if (sb->next == sb->n) continue;
        size_t step = sb->n / 8 ? sb->n / 8 : 1, j0 = sb->next;
        size_t j1 = sb->n - j0 < step ? sb->n : j0 + step;
        sb->next = j1;
        pthread_mutex_unlock(&sc->mu);
        for (size_t j = j0; j < j1; j++) work_series(sc, sb, j, slot);
        pthread_mutex_lock(&sc->mu);
        sb->done += j1 - j0;
        for (size_t j = j0; j < j1; j++)
            if (sb->rcs[j]) sc->stop = true; /* the caller reports it in order */
        if (sb->done == sb->n) pthread_cond_broadcast(&sc->cv);
        return true;
    }
    return false;
}

static void *scan_helper(void *arg)
{
    scanner_t *sc = arg;
    pthread_setname_np(pthread_self(), "augur-scan");
    pthread_mutex_lock(&sc->mu);
    while (!sc->stop) {
        if (sc->walked < sc->nbatches && sc->walked < sc->consumed + SCAN_RING) {
            size_t b = sc->walked;
            pthread_mutex_unlock(&sc->mu);
            int rc = walk_batch(sc, b);
            pthread_mutex_lock(&sc->mu);
            if (rc) {
                sc->rc = rc;
                sc->stop = true;
            } else {
                sc->walked = b + 1;
            }
            pthread_cond_broadcast(&sc->cv);
            continue;
        }
        if (work_some(sc, sc->consumed, 1)) continue;
        if (sc->walked == sc->nbatches) break; /* the caller finishes what is claimed */
        pthread_cond_wait(&sc->cv, &sc->mu);
    }
    pthread_mutex_unlock(&sc->mu);
    return NULL;
}

/* Calls the scan's functions for the series of batch sb (all finished), in order. */
static int consume_batch(scanner_t *sc, const scan_batch_t *sb, bool *fn_failed)
{
    const scan_fns_t *f = sc->f;
    for (size_t j = 0; j < sb->n; j++) {
        if (sb->rcs[j]) return sb->rcs[j];
        size_t cnt = sb->got[j];
        if (!cnt) continue;
        const sel_item_t *it = &sc->p->items[sb->first + j];
        int rc = f->map ? f->mfn(f->ctx, it->labels, it->labels_len, cnt, sb->out + j * f->msize)
                        : f->fn(f->ctx, it->labels, it->labels_len, sb->samples + sb->off[j], cnt);
        if (rc) {
            *fn_failed = true;
            return rc;
        }
    }
    return AG_OK;
}

static int scan_parallel(ag_store_t *s, plan_t *p, int64_t mint, int64_t maxt, uint64_t max,
                         const scan_fns_t *f, bool *fn_failed)
{
    scanner_t *sc = calloc(1, sizeof *sc);
    if (!sc) return AG_ENOMEM;
    *sc = (scanner_t){.s = s, .p = p, .f = f, .mint = mint, .maxt = maxt, .max = max,
                      .helper_only = atomic_load(&s->map_on_decoder)};
    /* At least 16 batches to overlap, at most SCAN_BATCH series, about SCAN_BATCH_SAMPLES
     * samples (at a 15 s interval) and SCAN_BATCH_MAP_BYTES of map output in each, so the
     * ring's memory stays small. */
    double per_series = ((double)maxt - (double)mint + 1) / 15000.0;
    size_t by_samples = per_series > 1 ? (size_t)(SCAN_BATCH_SAMPLES / per_series) : SCAN_BATCH;
    size_t batch = p->n / 16;
    if (batch > SCAN_BATCH) batch = SCAN_BATCH;
    if (batch > by_samples) batch = by_samples;
    if (f->map && batch > SCAN_BATCH_MAP_BYTES / f->msize) batch = SCAN_BATCH_MAP_BYTES / f->msize;
    sc->batch = batch ? batch : 1;
    sc->nbatches = (p->n + sc->batch - 1) / sc->batch;
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cv, NULL);
    pthread_t th;
    int rc = AG_OK;
    for (size_t i = 0; i < SCAN_RING && f->map && !rc; i++)
        if (!(sc->ring[i].out = malloc(sc->batch * f->msize))) rc = AG_ENOMEM;
    if (rc || pthread_create(&th, NULL, scan_helper, sc)) {
        rc = AG_ENOMEM;
        goto out;
    }
    for (size_t b = 0; b < sc->nbatches && !rc; b++) {
        scan_batch_t *sb = &sc->ring[b % SCAN_RING];
        pthread_mutex_lock(&sc->mu);
        for (;;) {
            if (b >= sc->walked) {
                if (sc->rc) {
                    rc = sc->rc;
                    break;
                }
            } else if (sb->done == sb->n) {
                break;
            } else if ((!sc->helper_only || sc->stop) && work_some(sc, b, 0)) {
                /* (a helper that stopped at an error leaves the rest to this thread) */
                continue;
            }
            pthread_cond_wait(&sc->cv, &sc->mu);
        }
        pthread_mutex_unlock(&sc->mu);
        if (rc) break;
        rc = consume_batch(sc, sb, fn_failed);
        pthread_mutex_lock(&sc->mu);
        sc->consumed = b + 1;
        if (rc) sc->stop = true;
        pthread_cond_broadcast(&sc->cv);
        pthread_mutex_unlock(&sc->mu);
    }
    pthread_mutex_lock(&sc->mu);
    sc->stop = true;
    pthread_cond_broadcast(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
    pthread_join(th, NULL);
out:
    free(sc->scratch[0]);
    free(sc->scratch[1]);
    for (size_t i = 0; i < SCAN_RING; i++) {
        free(sc->ring[i].views);
        free(sc->ring[i].samples);
        free(sc->ring[i].out);
    }
    pthread_mutex_destroy(&sc->mu);
    pthread_cond_destroy(&sc->cv);
    free(sc);
    return rc;
}

static long online_cpus(void)
{
    static _Atomic long n;
    long v = atomic_load(&n);
    if (!v) atomic_store(&n, v = sysconf(_SC_NPROCESSORS_ONLN));
    return v;
}

static int scan_run(ag_store_t *s, const ag_matcher_t *m, size_t nm, int64_t mint, int64_t maxt,
                    uint64_t max_samples, const scan_fns_t *f, ag_errmsg_t *e)
{
    plan_t p;
    int rc = plan_open(s, m, nm, mint, maxt, PLAN_SAMPLES, &p, e);
    if (rc) return rc;
    bool fn_failed = false;
    double span = (double)maxt - (double)mint + 1;
    if ((double)p.n * (span < 1e12 ? span : 1e12) / 15000.0 >= SCAN_PARALLEL_MIN_SAMPLES &&
        p.n >= 16 && online_cpus() > 1) {
        rc = scan_parallel(s, &p, mint, maxt, max_samples, f, &fn_failed);
    } else {
        ag_series_data_t sd = {0};
        size_t cap = 0;
        uint64_t total = 0;
        unsigned char *row = f->map && p.n ? malloc(f->msize) : NULL;
        if (f->map && p.n && !row) rc = AG_ENOMEM;
        for (size_t i = 0; i < p.n && !rc; i++) {
            sel_item_t *it = &p.items[i];
            sd.n = 0;
            if ((rc = store_load_samples(s, p.txn, it, mint, maxt, &sd, &cap, &total, max_samples)))
                break;
            if (!sd.n) continue;
            if (f->map) {
                if ((rc = f->map(f->mctx, 0, it->labels, it->labels_len, sd.samples, sd.n, row)))
                    break;
                rc = f->mfn(f->ctx, it->labels, it->labels_len, sd.n, row);
            } else {
                rc = f->fn(f->ctx, it->labels, it->labels_len, sd.samples, sd.n);
            }
            if (rc) fn_failed = true;
        }
        free(row);
        free(sd.samples);
    }
    plan_free(&p);
    if (rc && !fn_failed) return sel_error(e, rc);
    return rc;
}

int ag_store_scan(ag_store_t *s, const ag_matcher_t *m, size_t nm, int64_t mint, int64_t maxt,
                  uint64_t max_samples, ag_series_fn fn, void *ctx, ag_errmsg_t *e)
{
    scan_fns_t f = {.fn = fn, .ctx = ctx};
    return scan_run(s, m, nm, mint, maxt, max_samples, &f, e);
}

void ag_store_set_map_on_decoder(ag_store_t *s, bool on) { atomic_store(&s->map_on_decoder, on); }

int ag_store_scan_map(ag_store_t *s, const ag_matcher_t *m, size_t nm, int64_t mint, int64_t maxt,
                      uint64_t max_samples, ag_series_map_fn map, void *mctx, size_t msize,
                      ag_series_mapped_fn fn, void *ctx, ag_errmsg_t *e)
{
    if (!map || !fn || !msize) return ag_errmsg_set(e, AG_EINVAL, -1, "a mapped scan needs its functions");
    scan_fns_t f = {.map = map, .mctx = mctx, .msize = msize, .mfn = fn, .ctx = ctx};
    return scan_run(s, m, nm, mint, maxt, max_samples, &f, e);
}

/* ---- rollups ------------------------------------------------------------------------------ */

typedef struct rvec {
    ag_rollup_t *b;
    size_t n, cap;
} rvec_t;

static int rvec_reserve(rvec_t *v, size_t extra)
{
    if (v->n + extra <= v->cap) return AG_OK;
    size_t cap = v->cap ? v->cap * 2 : 64;
    while (cap < v->n + extra) cap *= 2;
    ag_rollup_t *nb = realloc(v->b, cap * sizeof *nb);
    if (!nb) return AG_ENOMEM;
    v->b = nb;
    v->cap = cap;
    return AG_OK;
}

typedef struct rscan {
    ag_store_t *s;
    MDB_txn *txn;
    ag_series_data_t sd;
    size_t sd_cap;
    uint64_t total, max;
} rscan_t;

/* Appends the buckets of `tier` with start in [lo, hi) of one series to out. */
static int rollup_collect(rscan_t *r, const sel_item_t *it, int tier, int64_t lo, int64_t hi,
                          rvec_t *out)
{
    if (lo >= hi) return AG_OK;
    int64_t rolled = it->rolled[tier - 1], width = rollup_width_ms(tier);
    int rc = AG_OK;
    if (rolled != INT64_MIN && lo < rolled) {
        int64_t stop = hi < rolled ? hi : rolled;
        MDB_cursor *c;
        if ((rc = mdb_cursor_open(r->txn, r->s->dbi_rollups, &c))) return store_lmdb_err(rc);
        unsigned char k[ROLLUP_KEY];
        rollup_key(k, tier, it->id, ag_rollup_floor(lo, rollup_block_ms(tier)));
        MDB_val key = {ROLLUP_KEY, k}, val;
        int mrc;
        for (mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); mrc == 0;
             mrc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
            const unsigned char *kp = key.mv_data;
            if (key.mv_size != ROLLUP_KEY || kp[0] != tier || key_get_u64(kp + 1) != it->id ||
                key_to_ts(key_get_u64(kp + 9)) >= stop)
                break;
            size_t cnt = ag_rollup_count(val.mv_data, val.mv_size), got;
            if (!cnt) {
                rc = AG_ECORRUPT;
                break;
            }
            if ((rc = rvec_reserve(out, cnt))) break;
            if ((rc = ag_rollup_decode(val.mv_data, val.mv_size, out->b + out->n, &got))) break;
            /* Keep the buckets inside [lo, stop). */
            size_t w = out->n;
            for (size_t i = 0; i < got; i++)
                if (out->b[out->n + i].start >= lo && out->b[out->n + i].start < stop)
                    out->b[w++] = out->b[out->n + i];
            r->total += w - out->n;
            out->n = w;
            if (r->max && r->total > r->max) {
                rc = AG_ELIMIT;
                break;
            }
        }
        if (!rc && mrc && mrc != MDB_NOTFOUND) rc = store_lmdb_err(mrc);
        mdb_cursor_close(c);
        if (rc) return rc;
        lo = stop;
    }
    if (lo >= hi) return AG_OK;
    if (tier == 1) {
        r->sd.n = 0;
        uint64_t before = r->total;
        rc = store_load_samples(r->s, r->txn, it, lo, hi - 1, &r->sd, &r->sd_cap, &r->total,
                                r->max);
        if (rc || !r->sd.n) return rc;
        r->total = before; /* buckets count, not the raw samples folded into them */
        if ((rc = rvec_reserve(out, r->sd.n))) return rc;
        size_t nb = ag_rollup_fold(r->sd.samples, r->sd.n, width, out->b + out->n);
        out->n += nb;
        r->total += nb;
        return r->max && r->total > r->max ? AG_ELIMIT : AG_OK;
    }
    size_t from = out->n;
    if ((rc = rollup_collect(r, it, tier - 1, lo, hi, out))) return rc;
    size_t nb = ag_rollup_regroup(out->b + from, out->n - from, width, out->b + from);
    out->n = from + nb;
    return AG_OK;
}

int ag_store_scan_rollups(ag_store_t *s, int64_t width, const ag_matcher_t *m, size_t nm,
                          int64_t mint, int64_t maxt, uint64_t max_samples, ag_rollup_fn fn,
                          void *ctx, ag_errmsg_t *e)
{
    int tier = width == AG_ROLLUP_1M_MS ? 1 : width == AG_ROLLUP_1H_MS ? 2 : 0;
    if (!tier) return ag_errmsg_set(e, AG_EINVAL, -1, "no rollup tier of %lld ms", (long long)width);
    int64_t lo = mint, hi = maxt > INT64_MAX - width ? INT64_MAX : maxt + width;
    plan_t p;
    int rc = plan_open(s, m, nm, lo, hi - 1, PLAN_SAMPLES | PLAN_ROLLUPS, &p, e);
    if (rc) return rc;
    rscan_t r = {.s = s, .txn = p.txn, .max = max_samples};
    rvec_t v = {0};
    bool fn_failed = false;
    for (size_t i = 0; i < p.n && !rc; i++) {
        v.n = 0;
        if ((rc = rollup_collect(&r, &p.items[i], tier, lo, hi, &v))) break;
        if (v.n && (rc = fn(ctx, p.items[i].labels, p.items[i].labels_len, v.b, v.n)))
            fn_failed = true;
    }
    free(v.b);
    free(r.sd.samples);
    plan_free(&p);
    if (rc && !fn_failed) return sel_error(e, rc);
    return rc;
}

/* ---- label names and values -------------------------------------------------------------- */

void ag_strlist_free(ag_strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the list and frees duplicates. */
static void sort_unique(ag_strlist_t *l)
{
    if (l->n < 2) return;
    qsort(l->items, l->n, sizeof *l->items, cmp_str);
    size_t w = 1;
    for (size_t k = 1; k < l->n; k++) {
        if (strcmp(l->items[k], l->items[w - 1]) == 0) free(l->items[k]);
        else l->items[w++] = l->items[k];
    }
    l->n = w;
}

int ag_store_label_values(ag_store_t *s, const char *name, const ag_matcher_t *m, size_t nm,
                          int64_t mint, int64_t maxt, ag_strlist_t *out, ag_errmsg_t *e)
{
    memset(out, 0, sizeof *out);
    ag_selection_t sel;
    int rc = ag_store_select(s, m, nm, mint, maxt, false, 0, &sel, e);
    if (rc) return rc;
    size_t cap = 0;
    for (size_t i = 0; i < sel.n && !rc; i++) {
        ag_label_t l[256];
        size_t n;
        if (ag_labels_decode(sel.series[i].labels, sel.series[i].labels_len, l, 256, &n)) continue;
        for (size_t k = 0; k < n && !rc; k++) {
            const char *str;
            if (name) {
                if (strcmp(l[k].name, name) != 0) continue;
                str = l[k].value;
            } else {
                str = l[k].name;
            }
            if (out->n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                char **ni = realloc(out->items, nc * sizeof *ni);
                if (!ni) {
                    rc = AG_ENOMEM;
                    break;
                }
                out->items = ni;
                cap = nc;
            }
            if (!(out->items[out->n] = strdup(str))) rc = AG_ENOMEM;
            else out->n++;
        }
        /* Deduplicate as we go so memory stays proportional to distinct values. */
        if (out->n > 4096 && out->n == cap) sort_unique(out);
    }
    ag_selection_free(&sel);
    if (rc) {
        ag_strlist_free(out);
        return ag_errmsg_set(e, rc, -1, "%s", ag_strerror(rc));
    }
    sort_unique(out);
    return AG_OK;
}

/* ---- state records ----------------------------------------------------------------------- */

int ag_store_blobs(ag_store_t *s, const void *prefix, size_t plen, ag_blob_fn fn, void *ctx)
{
    if (plen > AG_BLOB_KEY_MAX) return AG_OK;
    unsigned char k0[AG_BLOB_KEY_MAX + 1];
    k0[0] = BLOB_KEY_TAG;
    if (plen) memcpy(k0 + 1, prefix, plen);
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc) return store_lmdb_err(rc);
    if ((rc = mdb_cursor_open(txn, s->dbi_models, &c))) {
        mdb_txn_abort(txn);
        return store_lmdb_err(rc);
    }
    MDB_val k = {plen + 1, k0}, v;
    int mrc;
    rc = AG_OK;
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0 && !rc;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen + 1 || memcmp(k.mv_data, k0, plen + 1) != 0) break;
        rc = fn(ctx, (const unsigned char *)k.mv_data + 1, k.mv_size - 1, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    if (!rc && mrc && mrc != MDB_NOTFOUND) rc = store_lmdb_err(mrc);
    return rc;
}

/* ---- metadata and statistics ------------------------------------------------------------- */

void ag_metadata_list_free(ag_metadata_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].family);
        free(l->items[i].type);
        free(l->items[i].help);
        free(l->items[i].unit);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

int ag_store_metadata(ag_store_t *s, const char *metric, ag_metadata_list_t *out)
{
    memset(out, 0, sizeof *out);
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc) return store_lmdb_err(rc);
    if ((rc = mdb_cursor_open(txn, s->dbi_metadata, &c))) {
        mdb_txn_abort(txn);
        return store_lmdb_err(rc);
    }
    MDB_val k, v;
    size_t cap = 0;
    int mrc;
    rc = AG_OK;
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0 && !rc;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (metric && (strlen(metric) != k.mv_size || memcmp(metric, k.mv_data, k.mv_size)))
            continue;
        const char *p = v.mv_data, *end = p + v.mv_size;
        const char *parts[3] = {"", "", ""};
        for (int i = 0; i < 3 && p < end; i++) {
            parts[i] = p;
            const char *z = memchr(p, 0, (size_t)(end - p));
            if (!z) break;
            p = z + 1;
        }
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            ag_metadata_t *ni = realloc(out->items, nc * sizeof *ni);
            if (!ni) {
                rc = AG_ENOMEM;
                break;
            }
            out->items = ni;
            cap = nc;
        }
        ag_metadata_t *md = &out->items[out->n++];
        md->family = strndup(k.mv_data, k.mv_size);
        md->type = strdup(parts[0]);
        md->help = strdup(parts[1]);
        md->unit = strdup(parts[2]);
        if (!md->family || !md->type || !md->help || !md->unit) rc = AG_ENOMEM;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    if (rc) ag_metadata_list_free(out);
    return rc;
}

void ag_store_stats(ag_store_t *s, ag_store_stats_t *st)
{
    memset(st, 0, sizeof *st);
    pthread_rwlock_rdlock(&s->rw);
    for (size_t i = 0; i < s->head.nids; i++) {
        series_t *se = s->head.by_id[i];
        if (!se) continue;
        st->series++;
        if (se->head.count) st->head_series++;
    }
    st->wal_bytes = s->wal_bytes;
    st->min_time = s->min_time;
    st->max_time = s->max_time;
    pthread_rwlock_unlock(&s->rw);
    st->samples_appended = atomic_load(&s->st_appended);
    st->samples_duplicate = atomic_load(&s->st_duplicate);
    st->samples_out_of_order = atomic_load(&s->st_ooo);
    st->series_created = atomic_load(&s->st_created);
    st->chunks_sealed = atomic_load(&s->st_sealed);
    st->commits = atomic_load(&s->st_commits);
    st->commit_failures = atomic_load(&s->st_commit_fail);
    st->commit_seconds_sum = (double)atomic_load(&s->st_commit_ns) / 1e9;
    st->checkpoints = atomic_load(&s->st_checkpoints);
    st->rollup_blocks_written = atomic_load(&s->st_rolled_blocks);
    st->retention_chunks_deleted = atomic_load(&s->st_deleted_chunks);
    st->retention_blocks_deleted = atomic_load(&s->st_deleted_blocks);
    st->retention_series_deleted = atomic_load(&s->st_deleted_series);
    st->maintenance_steps = atomic_load(&s->st_maint_steps);
    st->chunks_compacted = atomic_load(&s->st_compacted);
    MDB_envinfo info;
    MDB_stat ms;
    if (mdb_env_info(s->env, &info) == 0 && mdb_env_stat(s->env, &ms) == 0) {
        st->map_size = info.me_mapsize;
        st->used_bytes = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
    }
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s/data.mdb", s->path);
    if (stat(p, &sb) == 0) st->file_bytes = (uint64_t)sb.st_size;
}
