/* qcache.c - the range-query result cache (contract in ag_qcache.h).
 *
 * What is kept. One entry per key = canonical query text (ag_promql_format, so spelling and
 * matcher order do not matter) + step + lookback delta + start mod step (the grid the steps sit
 * on). The value is a matrix sorted by labels holding the points of the steps [cs, cb], a
 * contiguous run of grid steps, all <= now - AG_QCACHE_MIN_AGE_MS when they were cached. Entries
 * sit on an LRU list; the sum of their accounted bytes (structs, key, labels, points) stays within
 * the budget by evicting from the cold end.
 *
 * Answering. For a request [start, end] whose start lies in [cs, cb], the steps
 * [start, min(end, cb)] are copied out of the entry and only (cb, end] is evaluated; the two
 * matrices are merged by labels (a merge join: both are sorted by labels, as ag_eval_range
 * sorts), series without points omitted. Any other request (start < cs, start > cb, no entry)
 * is evaluated whole. Either way the freshly evaluated steps that are old enough are then merged
 * into the entry when they overlap or touch it (the entry grows: a request starting before cs
 * extends it backwards, a sliding dashboard extends it forwards; past AG_QCACHE_MAX_STEPS the
 * oldest steps are dropped), or replace it when there is a gap. Step independence is what makes
 * this sound: PromQL evaluates every step of a range query on its own, subquery steps are
 * aligned to the epoch and not to the query start, and expressions that read data after their
 * step (`@`, negative offset) are refused by ag_qcache_cacheable.
 *
 * Invalidation. A sample at L only changes steps >= L. The store calls ag_qcache_notify_write
 * with the oldest timestamp of each batch after the LMDB commit and the head update, while it
 * still holds readers off (so no query can combine the new data with a stale cached step), and
 * every entry is cut to steps < L. This covers a late sample of an existing series (in order for
 * the series, old in wall-clock time), a new series with old samples, and a stale marker alike:
 * the cache never reasons about series, only about time. Normal ingest writes samples newer than
 * every cached step (AG_QCACHE_MIN_AGE_MS), so the notification returns after one atomic load:
 * `max_step` is at least every step cached or about to be cached. It is only ever raised, never
 * lowered, which keeps the fast path trivially safe against queries in flight.
 *
 * The race. A query copies what it needs and evaluates the rest outside the lock, then inserts.
 * A late write may become visible after the query's snapshot but notify before the insert: the
 * insert would resurrect stale steps. So notifications that reach the lock are numbered (`seq`)
 * and the last AG_QCACHE_RING of them kept in a ring. A query raises max_step to the last step it
 * may cache (so a concurrent late write cannot take the fast path), then reads seq under the
 * lock before it evaluates anything; at insert time every notification numbered after that is
 * applied to the new steps, and if the ring has wrapped past it the steps are not inserted at
 * all. A write missing from the query's snapshot became visible after the snapshot, hence
 * notified after seq was read, hence is in the ring or overflowed it.
 *
 * Memory is owned here: entries own their key and matrix; answers are copies the caller owns.
 */
#include "ag_qcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ag_buf.h"
#include "ag_labels.h"

typedef struct entry {
    char *key;
    size_t key_len;
    uint64_t hash;
    int64_t step;
    int64_t cs, cb; /* first and last cached step (inclusive) */
    ag_value_t m;   /* matrix sorted by labels, points within [cs, cb], no empty series */
    size_t bytes;
    struct entry *newer, *older; /* LRU list */
    struct entry *hnext;         /* hash chain */
} entry_t;

typedef struct note {
    uint64_t seq;
    int64_t t;
} note_t;

struct ag_qcache {
    pthread_mutex_t lock;
    /* Under `lock`: */
    uint64_t max_bytes;
    ag_qcache_stats_t st; /* bytes and entries kept current, counters counted */
    entry_t **buckets;
    size_t nbuckets; /* power of two */
    entry_t *newest, *oldest;
    uint64_t seq; /* notifications that reached the lock */
    note_t ring[AG_QCACHE_RING];
    /* Lock-free: */
    _Atomic uint64_t enabled_bytes; /* copy of max_bytes for the unlocked "disabled?" check */
    _Atomic int64_t max_step;       /* >= every step cached or being cached; only raised */
};

/* ---- time helpers ------------------------------------------------------------------------ */

static int64_t add_sat(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

static int64_t sub_sat(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_sub_overflow(a, b, &r) ? (b > 0 ? INT64_MIN : INT64_MAX) : r;
}

/* The last step of the grid base + k*step (k >= 0) at or before x; x >= base. */
static int64_t last_step_le(int64_t base, int64_t step, int64_t x)
{
    uint64_t d = (uint64_t)x - (uint64_t)base;
    return (int64_t)((uint64_t)base + d / (uint64_t)step * (uint64_t)step);
}

/* ---- matrices ---------------------------------------------------------------------------- */

/* First index whose t >= x. */
static size_t lower_bound(const ag_point_t *p, size_t n, int64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p[mid].t < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* First index whose t > x. */
static size_t upper_bound(const ag_point_t *p, size_t n, int64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p[mid].t <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int series_init(ag_series_val_t *d, const char *labels, size_t len, size_t npoints)
{
    d->labels = malloc(len ? len : 1);
    d->points = malloc(npoints * sizeof *d->points);
    if (!d->labels || !d->points) {
        free(d->labels);
        free(d->points);
        return AG_ENOMEM;
    }
    if (len) memcpy(d->labels, labels, len);
    d->labels_len = len;
    d->n = 0;
    return AG_OK;
}

static void matrix_init(ag_value_t *v)
{
    memset(v, 0, sizeof *v);
    v->type = AG_VAL_MATRIX;
}

/* out = the points of `src` with lo <= t <= hi, series left empty omitted. */
static int matrix_slice(const ag_value_t *src, int64_t lo, int64_t hi, ag_value_t *out)
{
    matrix_init(out);
    if (!src->n) return AG_OK;
    if (!(out->series = calloc(src->n, sizeof *out->series))) return AG_ENOMEM;
    for (size_t i = 0; i < src->n; i++) {
        const ag_series_val_t *s = &src->series[i];
        size_t a = lower_bound(s->points, s->n, lo), b = upper_bound(s->points, s->n, hi);
        if (b <= a) continue;
        ag_series_val_t *d = &out->series[out->n];
        if (series_init(d, s->labels, s->labels_len, b - a)) {
            ag_value_free(out);
            return AG_ENOMEM;
        }
        memcpy(d->points, s->points + a, (b - a) * sizeof *d->points);
        d->n = b - a;
        out->n++;
    }
    return AG_OK;
}

static void append_points(ag_series_val_t *d, const ag_point_t *p, size_t n)
{
    if (n) memcpy(d->points + d->n, p, n * sizeof *p);
    d->n += n;
}

/* out = `top` (whose points lie in [lo, hi]) laid over `base`: per label set, base's points
 * before lo, top's points, base's points after hi. Both inputs sorted by labels; so is out. */
static int matrix_overlay(const ag_value_t *base, const ag_value_t *top, int64_t lo, int64_t hi,
                          ag_value_t *out)
{
    matrix_init(out);
    size_t cap = base->n + top->n;
    if (!cap) return AG_OK;
    if (!(out->series = calloc(cap, sizeof *out->series))) return AG_ENOMEM;
    size_t i = 0, k = 0;
    while (i < base->n || k < top->n) {
        const ag_series_val_t *b = i < base->n ? &base->series[i] : NULL;
        const ag_series_val_t *t = k < top->n ? &top->series[k] : NULL;
        int c = !b ? 1 : !t ? -1 : ag_labels_cmp(b->labels, b->labels_len, t->labels, t->labels_len);
        if (c < 0) t = NULL;
        if (c > 0) b = NULL;
        size_t b_lo = 0, b_hi_from = 0, b_n = 0;
        if (b) {
            b_n = b->n;
            b_lo = lower_bound(b->points, b->n, lo);
            b_hi_from = upper_bound(b->points, b->n, hi);
        }
        size_t total = b_lo + (t ? t->n : 0) + (b ? b_n - b_hi_from : 0);
        if (total) {
            const ag_series_val_t *l = b ? b : t;
            ag_series_val_t *d = &out->series[out->n];
            if (series_init(d, l->labels, l->labels_len, total)) {
                ag_value_free(out);
                return AG_ENOMEM;
            }
            if (b) append_points(d, b->points, b_lo);
            if (t) append_points(d, t->points, t->n);
            if (b) append_points(d, b->points + b_hi_from, b_n - b_hi_from);
            out->n++;
        }
        if (b) i++;
        if (t) k++;
    }
    return AG_OK;
}

/* Keeps only the points with lo <= t <= hi, in place; drops series left empty. */
static void matrix_keep(ag_value_t *m, int64_t lo, int64_t hi)
{
    size_t w = 0;
    for (size_t i = 0; i < m->n; i++) {
        ag_series_val_t *s = &m->series[i];
        size_t a = lower_bound(s->points, s->n, lo), b = upper_bound(s->points, s->n, hi);
        if (b <= a) {
            free(s->labels);
            free(s->points);
            continue;
        }
        if (a) memmove(s->points, s->points + a, (b - a) * sizeof *s->points);
        s->n = b - a;
        m->series[w++] = *s;
    }
    m->n = w;
}

/* ---- entries ----------------------------------------------------------------------------- */

static size_t entry_bytes(const entry_t *en)
{
    size_t b = sizeof *en + en->key_len + en->m.n * sizeof *en->m.series;
    for (size_t i = 0; i < en->m.n; i++)
        b += en->m.series[i].labels_len + en->m.series[i].n * sizeof(ag_point_t);
    return b;
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static entry_t *find(ag_qcache_t *c, const char *key, size_t len, uint64_t h)
{
    for (entry_t *en = c->buckets[h & (c->nbuckets - 1)]; en; en = en->hnext)
        if (en->hash == h && en->key_len == len && memcmp(en->key, key, len) == 0) return en;
    return NULL;
}

static void lru_unlink(ag_qcache_t *c, entry_t *en)
{
    if (en->newer) en->newer->older = en->older;
    else c->newest = en->older;
    if (en->older) en->older->newer = en->newer;
    else c->oldest = en->newer;
    en->newer = en->older = NULL;
}

static void lru_push(ag_qcache_t *c, entry_t *en)
{
    en->newer = NULL;
    en->older = c->newest;
    if (c->newest) c->newest->newer = en;
    c->newest = en;
    if (!c->oldest) c->oldest = en;
}

static void entry_remove(ag_qcache_t *c, entry_t *en)
{
    entry_t **pp = &c->buckets[en->hash & (c->nbuckets - 1)];
    while (*pp != en) pp = &(*pp)->hnext;
    *pp = en->hnext;
    lru_unlink(c, en);
    c->st.bytes -= en->bytes;
    c->st.entries--;
    ag_value_free(&en->m);
    free(en->key);
    free(en);
}

/* Recomputes an entry's size after its matrix changed. */
static void entry_resize(ag_qcache_t *c, entry_t *en)
{
    c->st.bytes -= en->bytes;
    en->bytes = entry_bytes(en);
    c->st.bytes += en->bytes;
}

/* Forgets the entry's steps >= t. Returns false when nothing was cached before t (the caller
 * removes the entry). */
static bool entry_cut(entry_t *en, int64_t t)
{
    if (t <= en->cs) return false;
    en->cb = last_step_le(en->cs, en->step, t - 1);
    matrix_keep(&en->m, en->cs, en->cb);
    return true;
}

static void evict_to_budget(ag_qcache_t *c)
{
    while (c->oldest && c->st.bytes > c->max_bytes) entry_remove(c, c->oldest);
}

/* Doubles the hash table once it holds as many entries as buckets. Every entry is on the LRU
 * list, so that is what the rehash walks. */
static void grow_buckets(ag_qcache_t *c)
{
    if (c->st.entries < c->nbuckets) return;
    size_t nb = c->nbuckets * 2;
    entry_t **b = calloc(nb, sizeof *b);
    if (!b) return; /* longer chains, still correct */
    for (entry_t *en = c->newest; en; en = en->older) {
        entry_t **head = &b[en->hash & (nb - 1)];
        en->hnext = *head;
        *head = en;
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

/* ---- public ------------------------------------------------------------------------------ */

ag_qcache_t *ag_qcache_new(uint64_t max_bytes)
{
    ag_qcache_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->nbuckets = 256;
    if (!(c->buckets = calloc(c->nbuckets, sizeof *c->buckets))) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->max_bytes = max_bytes;
    atomic_store(&c->enabled_bytes, max_bytes);
    atomic_store(&c->max_step, INT64_MIN);
    return c;
}

void ag_qcache_free(ag_qcache_t *c)
{
    if (!c) return;
    while (c->oldest) entry_remove(c, c->oldest);
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void ag_qcache_set_max_bytes(ag_qcache_t *c, uint64_t max_bytes)
{
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    c->max_bytes = max_bytes;
    atomic_store(&c->enabled_bytes, max_bytes);
    evict_to_budget(c);
    pthread_mutex_unlock(&c->lock);
}

void ag_qcache_clear(ag_qcache_t *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    /* A query in flight must not insert what it read before the clear: record a notification
     * that covers every step. */
    c->seq++;
    c->ring[c->seq % AG_QCACHE_RING] = (note_t){c->seq, INT64_MIN};
    while (c->oldest) entry_remove(c, c->oldest);
    pthread_mutex_unlock(&c->lock);
}

void ag_qcache_notify_write(ag_qcache_t *c, int64_t min_t)
{
    if (!c || min_t > atomic_load(&c->max_step)) return;
    pthread_mutex_lock(&c->lock);
    c->seq++;
    c->ring[c->seq % AG_QCACHE_RING] = (note_t){c->seq, min_t};
    entry_t *en = c->newest;
    while (en) {
        entry_t *next = en->older;
        if (en->cb >= min_t) {
            c->st.invalidations++;
            if (entry_cut(en, min_t))
                entry_resize(c, en);
            else
                entry_remove(c, en);
        }
        en = next;
    }
    pthread_mutex_unlock(&c->lock);
}

void ag_qcache_store_hook(void *ctx, int64_t min_t) { ag_qcache_notify_write(ctx, min_t); }

bool ag_qcache_cacheable(const ag_pq_node_t *n)
{
    if (!n) return false;
    switch (n->type) {
    case AG_PQ_NUMBER:
    case AG_PQ_STRING: return true;
    case AG_PQ_VECTOR_SEL:
    case AG_PQ_MATRIX_SEL: return n->u.sel.at == AG_PQ_AT_NONE && n->u.sel.offset_ms >= 0;
    case AG_PQ_PAREN: return ag_qcache_cacheable(n->u.paren);
    case AG_PQ_UNARY: return ag_qcache_cacheable(n->u.unary.expr);
    case AG_PQ_BINARY:
        return ag_qcache_cacheable(n->u.binary.lhs) && ag_qcache_cacheable(n->u.binary.rhs);
    case AG_PQ_AGGREGATE:
        return ag_qcache_cacheable(n->u.agg.expr) &&
               (!n->u.agg.param || ag_qcache_cacheable(n->u.agg.param));
    case AG_PQ_CALL:
        for (size_t i = 0; i < n->u.call.nargs; i++)
            if (!ag_qcache_cacheable(n->u.call.args[i])) return false;
        return true;
    case AG_PQ_SUBQUERY:
        return n->u.subquery.at == AG_PQ_AT_NONE && n->u.subquery.offset_ms >= 0 &&
               ag_qcache_cacheable(n->u.subquery.expr);
    }
    return false;
}

static void raise_max_step(ag_qcache_t *c, int64_t t)
{
    int64_t cur = atomic_load(&c->max_step);
    while (cur < t && !atomic_compare_exchange_weak(&c->max_step, &cur, t)) {
    }
}

static void put_i64(ag_buf_t *b, int64_t v) { ag_buf_append(b, &v, sizeof v); }

/* Caches the steps [lo, hi] of `seg` (an owned matrix, consumed) for `key`, unless a
 * notification numbered after seq0 makes them stale. */
static void insert(ag_qcache_t *c, const ag_buf_t *key, uint64_t h, int64_t step, int64_t lo,
                   int64_t hi, ag_value_t *seg, uint64_t seq0)
{
    pthread_mutex_lock(&c->lock);
    if (!c->max_bytes || c->seq - seq0 > AG_QCACHE_RING) goto drop; /* ring overflowed */
    for (uint64_t s = seq0 + 1; s <= c->seq; s++) {
        int64_t t = c->ring[s % AG_QCACHE_RING].t;
        if (t > hi) continue;
        if (t <= lo) goto drop;
        hi = last_step_le(lo, step, t - 1);
        matrix_keep(seg, lo, hi);
    }
    entry_t *en = find(c, key->data, key->len, h);
    if (en && lo <= add_sat(en->cb, step) && hi >= sub_sat(en->cs, step)) {
        ag_value_t merged;
        if (matrix_overlay(&en->m, seg, lo, hi, &merged)) goto drop;
        ag_value_free(&en->m);
        en->m = merged;
        if (lo < en->cs) en->cs = lo;
        if (hi > en->cb) en->cb = hi;
        if ((uint64_t)(en->cb - en->cs) / (uint64_t)step >= AG_QCACHE_MAX_STEPS) {
            en->cs = en->cb - (int64_t)(AG_QCACHE_MAX_STEPS - 1) * step;
            matrix_keep(&en->m, en->cs, en->cb);
        }
        ag_value_free(seg);
    } else {
        if (!en) {
            if (!(en = calloc(1, sizeof *en))) goto drop;
            if (!(en->key = malloc(key->len))) {
                free(en);
                goto drop;
            }
            memcpy(en->key, key->data, key->len);
            en->key_len = key->len;
            en->hash = h;
            en->step = step;
            en->hnext = c->buckets[h & (c->nbuckets - 1)];
            c->buckets[h & (c->nbuckets - 1)] = en;
            c->st.entries++;
            lru_push(c, en);
            grow_buckets(c);
        } else {
            ag_value_free(&en->m);
        }
        en->m = *seg;
        en->cs = lo;
        en->cb = hi;
    }
    matrix_init(seg);
    entry_resize(c, en);
    lru_unlink(c, en);
    lru_push(c, en);
    evict_to_budget(c);
    pthread_mutex_unlock(&c->lock);
    return;
drop:
    pthread_mutex_unlock(&c->lock);
    ag_value_free(seg);
}

int ag_qcache_range(ag_qcache_t *c, const ag_pq_node_t *n, int64_t start, int64_t end,
                    int64_t step, int64_t lookback_ms, int64_t now_ms, ag_qcache_eval_fn eval,
                    void *ctx, ag_value_t *out, ag_errmsg_t *e)
{
    if (!c || !atomic_load(&c->enabled_bytes) || step <= 0 || end < start ||
        !ag_qcache_cacheable(n))
        return eval(ctx, start, end, out, e);
    int64_t hi = sub_sat(now_ms, AG_QCACHE_MIN_AGE_MS);
    if (end < hi) hi = end;
    if (hi < start) return eval(ctx, start, end, out, e); /* nothing old enough to cache */
    int64_t last = last_step_le(start, step, hi);         /* the last step we may cache */
    int64_t end_step = last_step_le(start, step, end);    /* the last step asked for */

    ag_buf_t key = AG_BUF_INIT;
    ag_promql_format(n, &key);
    ag_buf_putc(&key, '\0');
    put_i64(&key, step);
    put_i64(&key, lookback_ms);
    put_i64(&key, ((start % step) + step) % step);
    if (!ag_buf_ok(&key)) {
        ag_buf_free(&key);
        return eval(ctx, start, end, out, e);
    }
    uint64_t h = hash_bytes(key.data, key.len);

    /* Order matters (see the top comment): max_step first, then seq, then any evaluation. */
    raise_max_step(c, last);
    ag_value_t cached, fresh, seg;
    matrix_init(&cached);
    matrix_init(&fresh);
    matrix_init(&seg);
    bool hit = false;
    int64_t hit_end = 0;
    pthread_mutex_lock(&c->lock);
    uint64_t seq0 = c->seq;
    entry_t *en = find(c, key.data, key.len, h);
    if (en && en->cs <= start && start <= en->cb) {
        hit_end = en->cb < end_step ? en->cb : end_step;
        if (matrix_slice(&en->m, start, hit_end, &cached) == AG_OK) {
            hit = true;
            lru_unlink(c, en);
            lru_push(c, en);
        }
    }
    if (hit)
        c->st.hits++;
    else
        c->st.misses++;
    pthread_mutex_unlock(&c->lock);

    int rc;
    int64_t lo = hit ? hit_end + step : start; /* the first step evaluated now */
    if (hit && hit_end == end_step) {
        *out = cached;
        ag_buf_free(&key);
        return AG_OK;
    }
    if ((rc = eval(ctx, lo, end, &fresh, e))) goto fail;
    bool have_seg = lo <= last && matrix_slice(&fresh, lo, last, &seg) == AG_OK;
    if (hit) {
        rc = matrix_overlay(&cached, &fresh, lo, end, out);
        ag_value_free(&fresh);
        ag_value_free(&cached);
        if (rc) {
            if (have_seg) ag_value_free(&seg);
            goto fail;
        }
    } else {
        *out = fresh;
    }
    if (have_seg) insert(c, &key, h, step, lo, last, &seg, seq0);
    ag_buf_free(&key);
    return AG_OK;
fail:
    ag_value_free(&cached);
    ag_value_free(&fresh);
    ag_buf_free(&key);
    memset(out, 0, sizeof *out);
    if (rc == AG_ENOMEM && e && !e->msg[0]) ag_errmsg_set(e, rc, -1, "out of memory");
    return rc;
}

void ag_qcache_stats(ag_qcache_t *c, ag_qcache_stats_t *st)
{
    memset(st, 0, sizeof *st);
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    *st = c->st;
    pthread_mutex_unlock(&c->lock);
}
