/* group.c - cold groups: many per-id records of a table folded into one compressed record.
 *
 * The series labels and observer slots of ids next to each other look alike (the same metric
 * names, label names and hosts; the same timestamps and similar states), so deflating a range of
 * them together stores a 70-byte label set in about 4 bytes and a 65-byte slot in about 17,
 * and saves LMDB's per-record overhead. The compaction at a clean stop writes them (compact.c);
 * recovery and retention read them (store.c, maint.c). Format: see store_int.h.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "store_int.h"

#define GROUP_RAW_MAX (256u << 20) /* far above 128 of the largest label sets */

int group_encode(const group_member_t *m, size_t n, uint64_t first, ag_buf_t *out)
{
    ag_buf_t raw = AG_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        put_uvarint(&raw, m[i].id - first);
        put_uvarint(&raw, m[i].len);
        ag_buf_append(&raw, m[i].val, m[i].len);
    }
    int rc = ag_buf_ok(&raw) ? AG_OK : AG_ENOMEM;
    uLongf bound = compressBound((uLong)raw.len);
    if (!rc && ag_buf_reserve(out, 11 + (size_t)bound)) {
        out->data[out->len++] = GROUP_FORMAT;
        put_uvarint(out, raw.len);
        uLongf clen = bound;
        if (compress2((Bytef *)out->data + out->len, &clen, (const Bytef *)raw.data,
                      (uLong)raw.len, Z_DEFAULT_COMPRESSION) != Z_OK)
            rc = AG_ENOMEM; /* compress2 fails only for lack of memory with a large enough out */
        else
            out->len += clen;
    } else if (!rc) {
        rc = AG_ENOMEM;
    }
    ag_buf_free(&raw);
    return rc;
}

int group_decode(const void *val, size_t len, uint64_t first, uint64_t span, ag_buf_t *raw,
                 group_member_t **m, size_t *n, size_t *cap)
{
    const unsigned char *p = val, *end = p + len;
    uint64_t rawlen;
    *n = 0;
    ag_buf_reset(raw);
    if (len < 2 || *p++ != GROUP_FORMAT || get_uvarint(&p, end, &rawlen) ||
        rawlen > GROUP_RAW_MAX)
        return AG_ECORRUPT;
    if (!ag_buf_reserve(raw, (size_t)rawlen)) return AG_ENOMEM;
    uLongf got = (uLongf)rawlen;
    int zrc = uncompress((Bytef *)raw->data, &got, p, (uLong)(end - p));
    if (zrc == Z_MEM_ERROR) return AG_ENOMEM;
    if (zrc != Z_OK || got != rawlen) return AG_ECORRUPT;
    raw->len = (size_t)rawlen;
    const unsigned char *q = (const unsigned char *)raw->data, *qend = q + raw->len;
    uint64_t prev = 0;
    while (q < qend) {
        uint64_t d, l;
        if (get_uvarint(&q, qend, &d) || get_uvarint(&q, qend, &l) || d >= span ||
            (*n && d <= prev) || l > (uint64_t)(qend - q))
            return AG_ECORRUPT;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : GROUP_IDS;
            group_member_t *nm = realloc(*m, nc * sizeof *nm);
            if (!nm) return AG_ENOMEM;
            *m = nm;
            *cap = nc;
        }
        (*m)[(*n)++] = (group_member_t){first + d, q, (size_t)l};
        q += l;
        prev = d;
    }
    return *n ? AG_OK : AG_ECORRUPT;
}

int group_remove(MDB_txn *txn, MDB_dbi dbi, const unsigned char *prefix, size_t plen,
                 uint64_t span, uint64_t id)
{
    unsigned char k[8 + 8 + 1];
    if (plen > 8) return AG_EINVAL;
    uint64_t first = group_first(id, span);
    if (plen) memcpy(k, prefix, plen);
    key_put_u64(k + plen, first);
    k[plen + 8] = 0;
    MDB_val key = {plen + 9, k}, val;
    int rc = mdb_get(txn, dbi, &key, &val);
    if (rc == MDB_NOTFOUND) return AG_OK;
    if (rc) return store_lmdb_err(rc);
    ag_buf_t raw = AG_BUF_INIT, out = AG_BUF_INIT;
    group_member_t *m = NULL;
    size_t n = 0, cap = 0, keep = 0;
    rc = group_decode(val.mv_data, val.mv_size, first, span, &raw, &m, &n, &cap);
    for (size_t i = 0; !rc && i < n; i++)
        if (m[i].id != id) m[keep++] = m[i];
    if (!rc && keep == n) {
        /* not a member: nothing to do */
    } else if (!rc && keep == 0) {
        rc = store_lmdb_err(mdb_del(txn, dbi, &key, NULL));
    } else if (!rc && !(rc = group_encode(m, keep, first, &out))) {
        val.mv_size = out.len;
        val.mv_data = out.data;
        rc = store_lmdb_err(mdb_put(txn, dbi, &key, &val, 0));
    }
    ag_buf_free(&raw);
    ag_buf_free(&out);
    free(m);
    return rc;
}

/* ---- cold postings --------------------------------------------------------------------------- */

int cold_postings_encode(const uint64_t *ids, size_t n, ag_buf_t *out)
{
    if (!ag_buf_reserve(out, 1)) return AG_ENOMEM;
    out->data[out->len++] = COLD_POSTINGS_FORMAT;
    put_uvarint(out, n);
    for (size_t i = 0; i < n; i++) put_uvarint(out, i ? ids[i] - ids[i - 1] : ids[0]);
    return ag_buf_ok(out) ? AG_OK : AG_ENOMEM;
}

int cold_postings_each(const void *val, size_t len, int (*fn)(void *ctx, uint64_t id), void *ctx)
{
    const unsigned char *p = val, *end = p + len;
    uint64_t n, id = 0;
    if (len < 2 || *p++ != COLD_POSTINGS_FORMAT || get_uvarint(&p, end, &n) || n == 0 ||
        n > (uint64_t)(end - p))
        return AG_ECORRUPT;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t d;
        if (get_uvarint(&p, end, &d) || d == 0 || d > UINT64_MAX - id) return AG_ECORRUPT;
        id += d;
        int rc = fn(ctx, id);
        if (rc) return rc;
    }
    return p == end ? AG_OK : AG_ECORRUPT;
}
