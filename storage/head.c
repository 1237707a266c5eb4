/* head.c - the in-memory series map: a chained hash table keyed by label encoding, plus a dense
 * id -> series array. Owned by the store; the store's rwlock serialises access. */
#include <stdlib.h>
#include <string.h>

#include "ag_err.h"
#include "store_int.h"

int head_init(head_t *h)
{
    memset(h, 0, sizeof *h);
    h->nbuckets = 1024;
    h->buckets = calloc(h->nbuckets, sizeof *h->buckets);
    return h->buckets ? AG_OK : AG_ENOMEM;
}

void series_drop_sealing(series_t *s)
{
    while (s->sealing) {
        sealing_t *n = s->sealing->next;
        free(s->sealing);
        s->sealing = n;
    }
}

static void series_free(series_t *s)
{
    series_drop_sealing(s);
    ag_hchunk_free(&s->head);
    free(s); /* the labels live in the same allocation */
}

void head_destroy(head_t *h)
{
    if (!h->buckets) return;
    for (size_t i = 0; i < h->nbuckets; i++) {
        series_t *s = h->buckets[i];
        while (s) {
            series_t *n = s->next;
            series_free(s);
            s = n;
        }
    }
    free(h->buckets);
    free(h->by_id);
    memset(h, 0, sizeof *h);
}

series_t *head_find(head_t *h, uint64_t hash, const char *labels, size_t len)
{
    for (series_t *s = h->buckets[hash & (h->nbuckets - 1)]; s; s = s->next)
        if (s->hash == hash && s->labels_len == len && memcmp(s->labels, labels, len) == 0)
            return s;
    return NULL;
}

void head_prefetch(head_t *h, const ag_series_key_t *k, size_t n)
{
    /* Two passes over the request: bring in the bucket slots, then the series they point at
     * (and their labels), so the lookups that follow mostly hit the cache instead of waiting
     * on memory one series at a time. */
    size_t mask = h->nbuckets - 1;
    for (size_t i = 0; i < n; i++) __builtin_prefetch(&h->buckets[k[i].hash & mask]);
    for (size_t i = 0; i < n; i++) {
        series_t *s = h->buckets[k[i].hash & mask];
        if (s) __builtin_prefetch(s);
    }
    for (size_t i = 0; i < n; i++) {
        series_t *s = h->buckets[k[i].hash & mask];
        if (s && s->hash == k[i].hash) {
            /* Every line of the series and of its labels, which follow it: the lookup, the
             * check, the append and the observer touch fields spread over all of them. */
            for (size_t off = 64; off < sizeof *s + s->labels_len; off += 64)
                __builtin_prefetch((char *)s + off);
            if (s->head.buf) __builtin_prefetch(s->head.buf + s->head.bits / 8);
        }
    }
}

static void grow(head_t *h)
{
    size_t nb = h->nbuckets * 2;
    series_t **b = calloc(nb, sizeof *b);
    if (!b) return; /* keep the old table: chains just get longer */
    for (size_t i = 0; i < h->nbuckets; i++) {
        series_t *s = h->buckets[i];
        while (s) {
            series_t *n = s->next;
            s->next = b[s->hash & (nb - 1)];
            b[s->hash & (nb - 1)] = s;
            s = n;
        }
    }
    free(h->buckets);
    h->buckets = b;
    h->nbuckets = nb;
}

series_t *head_insert(head_t *h, uint64_t hash, const char *labels, size_t len)
{
    /* One allocation: the series, then its labels (one malloc and one cache miss less per
     * series than a separate copy). */
    series_t *s = calloc(1, sizeof *s + (len ? len : 1));
    if (!s) return NULL;
    s->labels = (char *)(s + 1);
    memcpy(s->labels, labels, len);
    s->labels_len = (uint32_t)len;
    s->hash = hash;
    s->mint = INT64_MAX;
    s->last_t = INT64_MIN;
    s->pending = true;
    s->compacted = INT64_MIN;
    size_t nl = 0;
    const char *name = ag_labels_get(s->labels, len, AG_METRIC_NAME, &nl);
    s->explicit_only = name && nl > sizeof AG_EXPLICIT_PREFIX - 1 &&
                       memcmp(name, AG_EXPLICIT_PREFIX, sizeof AG_EXPLICIT_PREFIX - 1) == 0;
    for (int k = 0; k < AG_ROLLUP_TIERS; k++) {
        s->rolled[k] = INT64_MIN;
        s->rmin[k] = INT64_MAX;
    }
    ag_hchunk_init(&s->head);
    if (h->count >= h->nbuckets) grow(h);
    size_t b = hash & (h->nbuckets - 1);
    s->next = h->buckets[b];
    h->buckets[b] = s;
    h->count++;
    return s;
}

void head_remove(head_t *h, series_t *s)
{
    series_t **pp = &h->buckets[s->hash & (h->nbuckets - 1)];
    while (*pp && *pp != s) pp = &(*pp)->next;
    if (*pp) {
        *pp = s->next;
        h->count--;
    }
    series_free(s);
}

void head_delete(head_t *h, series_t *s)
{
    if (s->id >= 1 && s->id <= h->nids && h->by_id[s->id - 1] == s) h->by_id[s->id - 1] = NULL;
    head_remove(h, s);
}

int head_assign_id(head_t *h, series_t *s, uint64_t id)
{
    if (id > h->cap_ids) {
        size_t cap = h->cap_ids ? h->cap_ids : 1024;
        while (cap < id) cap *= 2;
        series_t **n = realloc(h->by_id, cap * sizeof *n);
        if (!n) return AG_ENOMEM;
        memset(n + h->cap_ids, 0, (cap - h->cap_ids) * sizeof *n);
        h->by_id = n;
        h->cap_ids = cap;
    }
    h->by_id[id - 1] = s;
    if (id > h->nids) h->nids = id;
    s->id = id;
    s->pending = false;
    return AG_OK;
}
