/* rollup.c - rollup bucket arithmetic and the block codec (contract: include/ag_rollup.h).
 *
 * Folding follows the order of Prometheus' own loops so that a window made of whole buckets
 * gives the raw answer: min/max replace the running value when the new one is smaller/larger or
 * the running one is NaN (so a bucket's min is NaN only when all its values are NaN, and merging
 * buckets with the same rule is exact); a counter reset is a value below its predecessor, and
 * the predecessor is added to the correction. Blocks reuse the sealed-chunk codec for each
 * column, which already stores regular timestamps and few-digit decimals in a few bits.
 */
#include "ag_rollup.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ag_err.h"
#include "ag_eval.h"
#include "ag_pack.h"

#define BLOCK_VERSION 1
#define NCOLS 7

int64_t ag_rollup_floor(int64_t t, int64_t width)
{
    int64_t q = t / width, r = t % width;
    if (r >= 0) return q * width;
    return q > INT64_MIN / width ? (q - 1) * width : INT64_MIN; /* no multiple of width <= t */
}

static bool is_stale(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u == AG_STALE_NAN_BITS;
}

void ag_rollup_init(ag_rollup_t *b, int64_t start, int64_t t, double v)
{
    b->start = start;
    b->first_t = b->last_t = t;
    b->first = b->last = b->min = b->max = v;
    b->sum = 0.0 + v; /* Prometheus' sums start at +0, so a lone -0.0 sums to +0 */
    b->corr = 0;
    b->count = 1;
}

void ag_rollup_add(ag_rollup_t *b, int64_t t, double v)
{
    if (v < b->last) b->corr += b->last;
    if (v < b->min || isnan(b->min)) b->min = v;
    if (v > b->max || isnan(b->max)) b->max = v;
    b->sum += v;
    b->last = v;
    b->last_t = t;
    b->count++;
}

void ag_rollup_merge(ag_rollup_t *a, const ag_rollup_t *n)
{
    if (n->first < a->last) a->corr += a->last;
    a->corr += n->corr;
    if (n->min < a->min || isnan(a->min)) a->min = n->min;
    if (n->max > a->max || isnan(a->max)) a->max = n->max;
    a->sum += n->sum;
    a->last = n->last;
    a->last_t = n->last_t;
    a->count += n->count;
}

size_t ag_rollup_fold(const ag_sample_pt_t *s, size_t n, int64_t width, ag_rollup_t *out)
{
    size_t w = 0;
    int64_t end = INT64_MIN; /* exclusive end of out[w - 1]'s interval, when it has one */
    bool bounded = false;
    for (size_t i = 0; i < n; i++) {
        if (is_stale(s[i].v)) continue;
        if (w && (bounded ? s[i].t < end : ag_rollup_floor(s[i].t, width) == out[w - 1].start)) {
            ag_rollup_add(&out[w - 1], s[i].t, s[i].v);
            continue;
        }
        int64_t start = ag_rollup_floor(s[i].t, width);
        bounded = start != INT64_MIN && start <= INT64_MAX - width;
        end = bounded ? start + width : INT64_MAX;
        ag_rollup_init(&out[w++], start, s[i].t, s[i].v);
    }
    return w;
}

size_t ag_rollup_regroup(const ag_rollup_t *in, size_t n, int64_t width, ag_rollup_t *out)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t start = ag_rollup_floor(in[i].start, width);
        if (w && out[w - 1].start == start) {
            ag_rollup_t cur = in[i]; /* in may alias out */
            ag_rollup_merge(&out[w - 1], &cur);
        } else {
            out[w] = in[i];
            out[w++].start = start;
        }
    }
    return w;
}

/* ---- block codec ---------------------------------------------------------------------------- */

static void put_uvarint(ag_buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    ag_buf_append(b, tmp, n);
}

static bool get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t c = *(*p)++;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

/* Column i of bucket b as a sample. */
static ag_sample_pt_t column(const ag_rollup_t *b, int i)
{
    switch (i) {
    case 0: return (ag_sample_pt_t){b->start, b->min};
    case 1: return (ag_sample_pt_t){b->start, b->max};
    case 2: return (ag_sample_pt_t){b->start, b->sum};
    case 3: return (ag_sample_pt_t){b->start, b->corr};
    case 4: return (ag_sample_pt_t){b->start, (double)b->count};
    case 5: return (ag_sample_pt_t){b->first_t, b->first};
    default: return (ag_sample_pt_t){b->last_t, b->last};
    }
}

int ag_rollup_encode(const ag_rollup_t *b, size_t n, ag_buf_t *out)
{
    if (!b || !out || n == 0 || n > AG_PACK_MAX_SAMPLES) return AG_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (b[i].count == 0 || b[i].first_t < b[i].start || b[i].last_t < b[i].first_t ||
            (b[i].count == 1 && b[i].last_t != b[i].first_t) ||
            b[i].count > (UINT64_C(1) << 53) || (i && b[i].start <= b[i - 1].last_t))
            return AG_EINVAL;
    }
    ag_sample_pt_t *col = malloc(n * sizeof *col);
    if (!col) return AG_ENOMEM;
    size_t len0 = out->len;
    ag_buf_t tmp = AG_BUF_INIT;
    uint8_t ver = BLOCK_VERSION;
    ag_buf_append(out, &ver, 1);
    int rc = AG_OK;
    for (int c = 0; c < NCOLS && !rc; c++) {
        for (size_t i = 0; i < n; i++) col[i] = column(&b[i], c);
        ag_buf_reset(&tmp);
        if ((rc = ag_pack_encode(col, n, &tmp))) break;
        put_uvarint(out, tmp.len);
        ag_buf_append(out, tmp.data, tmp.len);
    }
    free(col);
    ag_buf_free(&tmp);
    if (!rc && !ag_buf_ok(out)) rc = AG_ENOMEM;
    if (rc) {
        bool oom = out->oom;
        out->len = len0;
        out->oom = oom;
    }
    return rc;
}

size_t ag_rollup_count(const uint8_t *d, size_t len)
{
    if (!d || len < 2 || d[0] != BLOCK_VERSION) return 0;
    const uint8_t *p = d + 1, *end = d + len;
    uint64_t clen;
    if (!get_uvarint(&p, end, &clen) || clen > (uint64_t)(end - p)) return 0;
    size_t count;
    return ag_pack_info(p, (size_t)clen, &count, NULL, NULL) ? 0 : count;
}

int ag_rollup_decode(const uint8_t *d, size_t len, ag_rollup_t *out, size_t *n)
{
    *n = 0;
    size_t count = ag_rollup_count(d, len);
    if (!count) return AG_ECORRUPT;
    ag_sample_pt_t *col = malloc(count * sizeof *col);
    if (!col) return AG_ENOMEM;
    const uint8_t *p = d + 1, *end = d + len;
    int rc = AG_OK;
    for (int c = 0; c < NCOLS && !rc; c++) {
        uint64_t clen;
        size_t got = 0, cn;
        if (!get_uvarint(&p, end, &clen) || clen > (uint64_t)(end - p) ||
            ag_pack_info(p, (size_t)clen, &cn, NULL, NULL) || cn != count ||
            ag_pack_decode(p, (size_t)clen, INT64_MIN, INT64_MAX, col, &got) || got != count) {
            rc = AG_ECORRUPT;
            break;
        }
        p += clen;
        for (size_t i = 0; i < count && !rc; i++) {
            ag_rollup_t *b = &out[i];
            switch (c) {
            case 0: b->start = col[i].t; b->min = col[i].v; break;
            case 1: b->max = col[i].v; break;
            case 2: b->sum = col[i].v; break;
            case 3: b->corr = col[i].v; break;
            case 4:
                if (!(col[i].v >= 1 && col[i].v <= 9007199254740992.0) ||
                    col[i].v != floor(col[i].v))
                    rc = AG_ECORRUPT;
                else
                    b->count = (uint64_t)col[i].v;
                break;
            case 5: b->first_t = col[i].t; b->first = col[i].v; break;
            default: b->last_t = col[i].t; b->last = col[i].v; break;
            }
            /* Columns 1..4 share the bucket starts of column 0. */
            if (c >= 1 && c <= 4 && col[i].t != b->start) rc = AG_ECORRUPT;
        }
    }
    for (size_t i = 0; i < count && !rc; i++) {
        const ag_rollup_t *b = &out[i];
        if (b->first_t < b->start || b->last_t < b->first_t ||
            (b->count == 1 && b->last_t != b->first_t) ||
            (i + 1 < count && out[i + 1].start <= b->last_t))
            rc = AG_ECORRUPT;
    }
    if (!rc && p != end) rc = AG_ECORRUPT;
    free(col);
    if (!rc) *n = count;
    return rc;
}
