/* remote_write.c - Remote-Write 1.0 body decoding: snappy block -> protobuf wire format ->
 * validated series (see ag_remote_write.h).
 *
 * The protobuf wire format is read directly (no protobuf-c structures): pass 1 checks the whole
 * WriteRequest, as strictly as protobuf-c's unpack (a known field with another wire type, a
 * truncated varint or length, a group, field 0: all refused), counts series, samples,
 * exemplars and histograms, and keeps every label and sample it parsed in a scratch array;
 * pass 2 converts from there, in order, without parsing again. The fuzz target checks both
 * decoders agree.
 *
 * Memory: one arena per request holds the uncompressed body, the label strings (each series'
 * labels point into its canonical encoding, NUL-terminated pairs, which is also its key in the
 * store) and the arrays handed to the store. The size limit is enforced on snappy's declared
 * length before the buffer is allocated, so a 100-byte body claiming 4 GiB costs nothing.
 */
#include "ag_remote_write.h"

#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_labels.h"

/* ---- the protobuf wire format ----------------------------------------------------------- */

typedef struct pb {
    const uint8_t *p, *end;
} pb_t;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* Varints as protobuf-c reads them: at most 10 bytes, bits beyond 64 dropped. */
static bool pb_varint(pb_t *b, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned i = 0; i < 10 && b->p < b->end; i++) {
        uint8_t c = *b->p++;
        r |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

/* The next field's number and wire type, as protobuf-c's parse_tag_and_wiretype reads them (at
 * most 5 bytes, a 32-bit number that wraps, a first byte with field bits 0 refused), and only
 * the wire types it can skip (groups and types 6, 7 are refused). */
static bool pb_tag(pb_t *b, uint32_t *field, unsigned *wt)
{
    if (b->p >= b->end || (b->p[0] & 0xf8) == 0) return false;
    uint32_t tag = (uint32_t)(b->p[0] & 0x7f) >> 3;
    *wt = b->p[0] & 7;
    unsigned shift = 4, i = 1;
    if (b->p[0] & 0x80) {
        for (;; i++) {
            if (i >= 5 || b->p + i >= b->end) return false;
            uint8_t c = b->p[i];
            tag |= (uint32_t)((uint32_t)(c & 0x7f) << shift);
            shift += 7;
            if (!(c & 0x80)) {
                i++;
                break;
            }
        }
    }
    b->p += i;
    *field = tag;
    return *wt == WT_VARINT || *wt == WT_I64 || *wt == WT_LEN || *wt == WT_I32;
}

/* A length-delimited field's bytes as a sub-buffer (the length: at most 5 bytes, 32 bits). */
static bool pb_len(pb_t *b, pb_t *sub)
{
    if (b->p < b->end && !(b->p[0] & 0x80)) { /* lengths below 128: one byte */
        size_t n1 = b->p[0];
        if (n1 > (size_t)(b->end - b->p - 1)) return false;
        sub->p = b->p + 1;
        sub->end = sub->p + n1;
        b->p = sub->end;
        return true;
    }
    uint32_t n = 0;
    unsigned i = 0;
    for (;; i++) {
        if (i >= 5 || b->p + i >= b->end) return false;
        uint8_t c = b->p[i];
        n |= (uint32_t)((uint32_t)(c & 0x7f) << (7 * i));
        if (!(c & 0x80)) break;
    }
    b->p += i + 1;
    if (n > (uint64_t)(b->end - b->p)) return false;
    sub->p = b->p;
    sub->end = b->p + n;
    b->p += n;
    return true;
}

static bool pb_skip(pb_t *b, unsigned wt)
{
    uint64_t v;
    pb_t sub;
    switch (wt) {
    case WT_VARINT: return pb_varint(b, &v);
    case WT_I64:
        if (b->end - b->p < 8) return false;
        b->p += 8;
        return true;
    case WT_I32:
        if (b->end - b->p < 4) return false;
        b->p += 4;
        return true;
    case WT_LEN: return pb_len(b, &sub);
    default: return false;
    }
}

static bool pb_fixed64(pb_t *b, uint64_t *v)
{
    if (b->end - b->p < 8) return false;
    uint64_t r = 0;
    for (int i = 7; i >= 0; i--) r = (r << 8) | b->p[i];
    b->p += 8;
    *v = r;
    return true;
}

/* A known field must come with its declared wire type (protobuf-c refuses anything else). */
#define PB_EXPECT(wt, want) \
    do { if ((wt) != (want)) return false; } while (0)

typedef struct str {
    const uint8_t *p;
    size_t n;
} str_t;

/* Label: 1 name, 2 value (bytes; the last occurrence wins). */
static bool pb_label(pb_t b, str_t *name, str_t *value)
{
    name->p = value->p = NULL;
    name->n = value->n = 0;
    while (b.p < b.end) {
        uint32_t f;
        unsigned wt;
        pb_t sub;
        if (!pb_tag(&b, &f, &wt)) return false;
        if (f == 1 || f == 2) {
            PB_EXPECT(wt, WT_LEN);
            if (!pb_len(&b, &sub)) return false;
            str_t *d = f == 1 ? name : value;
            d->p = sub.p;
            d->n = (size_t)(sub.end - sub.p);
        } else if (!pb_skip(&b, wt)) {
            return false;
        }
    }
    return true;
}

/* Sample: 1 value (double), 2 timestamp (int64). */
static bool pb_sample(pb_t b, ag_sample_t *out)
{
    uint64_t bits = 0, t = 0;
    while (b.p < b.end) {
        uint32_t f;
        unsigned wt;
        if (!pb_tag(&b, &f, &wt)) return false;
        if (f == 1) {
            PB_EXPECT(wt, WT_I64);
            if (!pb_fixed64(&b, &bits)) return false;
        } else if (f == 2) {
            PB_EXPECT(wt, WT_VARINT);
            if (!pb_varint(&b, &t)) return false;
        } else if (!pb_skip(&b, wt)) {
            return false;
        }
    }
    if (out) {
        memcpy(&out->v, &bits, 8); /* every NaN bit kept */
        out->t = (int64_t)t;
    }
    return true;
}

/* Exemplar: 1 labels, 2 value, 3 timestamp. Checked, not kept. */
static bool pb_exemplar(pb_t b)
{
    while (b.p < b.end) {
        uint32_t f;
        unsigned wt;
        pb_t sub;
        uint64_t v;
        str_t n, val;
        if (!pb_tag(&b, &f, &wt)) return false;
        if (f == 1) {
            PB_EXPECT(wt, WT_LEN);
            if (!pb_len(&b, &sub) || !pb_label(sub, &n, &val)) return false;
        } else if (f == 2) {
            PB_EXPECT(wt, WT_I64);
            if (!pb_fixed64(&b, &v)) return false;
        } else if (f == 3) {
            PB_EXPECT(wt, WT_VARINT);
            if (!pb_varint(&b, &v)) return false;
        } else if (!pb_skip(&b, wt)) {
            return false;
        }
    }
    return true;
}

/* BucketSpan: 1 offset (sint32), 2 length (uint32). */
static bool pb_span(pb_t b)
{
    while (b.p < b.end) {
        uint32_t f;
        unsigned wt;
        uint64_t v;
        if (!pb_tag(&b, &f, &wt)) return false;
        if (f == 1 || f == 2) {
            PB_EXPECT(wt, WT_VARINT);
            if (!pb_varint(&b, &v)) return false;
        } else if (!pb_skip(&b, wt)) {
            return false;
        }
    }
    return true;
}

/* A repeated scalar field, packed (LEN) or one element (varint or 8 bytes), as protobuf-c
 * accepts it: packed doubles come in multiples of 8 bytes, packed varints end on a final byte. */
static bool pb_repeated(pb_t *b, unsigned wt, bool fixed64)
{
    uint64_t v;
    if (wt == WT_LEN) {
        pb_t sub;
        if (!pb_len(b, &sub)) return false;
        size_t n = (size_t)(sub.end - sub.p);
        return fixed64 ? n % 8 == 0 : (n == 0 || !(sub.end[-1] & 0x80));
    }
    if (fixed64) return wt == WT_I64 && pb_fixed64(b, &v);
    return wt == WT_VARINT && pb_varint(b, &v);
}

/* Histogram: checked as protobuf-c would unpack it, never kept (such series are refused). */
static bool pb_histogram(pb_t b)
{
    while (b.p < b.end) {
        uint32_t f;
        unsigned wt;
        uint64_t v;
        pb_t sub;
        if (!pb_tag(&b, &f, &wt)) return false;
        switch (f) {
        case 1: case 4: case 6: case 14: case 15:
            PB_EXPECT(wt, WT_VARINT);
            if (!pb_varint(&b, &v)) return false;
            break;
        case 2: case 3: case 5: case 7:
            PB_EXPECT(wt, WT_I64);
            if (!pb_fixed64(&b, &v)) return false;
            break;
        case 8: case 11:
            PB_EXPECT(wt, WT_LEN);
            if (!pb_len(&b, &sub) || !pb_span(sub)) return false;
            break;
        case 9: case 12:
            if (!pb_repeated(&b, wt, false)) return false;
            break;
        case 10: case 13:
            if (!pb_repeated(&b, wt, true)) return false;
            break;
        default:
            if (!pb_skip(&b, wt)) return false;
        }
    }
    return true;
}

typedef struct ts_count {
    size_t labels, samples, exemplars, histograms;
    size_t lab_off, smp_off; /* where its labels and samples start in the scratch */
} ts_count_t;

/* What pass 1 parsed, for pass 2: every label's name and value (pairs) and every sample of the
 * request, in order. Grown with realloc, freed with the request's decoding. */
typedef struct scratch {
    str_t *lab;
    size_t nlab, caplab; /* in str_t, two per label */
    ag_sample_t *smp;
    size_t nsmp, capsmp;
    bool oom;
} scratch_t;

static bool grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap * 2 : 1024;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, nc * size);
    if (!np) return false;
    *p = np;
    *cap = nc;
    return true;
}

/* Pass 1 over a TimeSeries: checks its wire format completely, counts its parts and keeps its
 * labels and samples in `sc` (sc->oom when that failed). */
static bool pb_series_scan(pb_t b, ts_count_t *c, scratch_t *sc)
{
    memset(c, 0, sizeof *c);
    c->lab_off = sc->nlab;
    c->smp_off = sc->nsmp;
    while (b.p < b.end) {
        uint32_t f;
        unsigned wt = WT_LEN;
        pb_t sub;
        const uint8_t *q = b.p;
        if ((q[0] == 0x0a || q[0] == 0x12) && b.end - q >= 2 && q[1] < 0x80 &&
            q[1] <= b.end - q - 2) {
            /* The usual field: a label (1) or a sample (2) shorter than 128 bytes, read as
             * pb_tag and pb_len would. */
            f = q[0] >> 3;
            sub.p = q + 2;
            sub.end = sub.p + q[1];
            b.p = sub.end;
        } else {
            if (!pb_tag(&b, &f, &wt)) return false;
            if (f >= 1 && f <= 4) {
                PB_EXPECT(wt, WT_LEN);
                if (!pb_len(&b, &sub)) return false;
            }
        }
        if (f >= 1 && f <= 4) {
            if (f == 1) {
                if (!grow((void **)&sc->lab, &sc->caplab, sc->nlab + 2, sizeof *sc->lab)) {
                    sc->oom = true;
                    return false;
                }
                str_t *nm = &sc->lab[sc->nlab], *val = nm + 1;
                const uint8_t *l = sub.p;
                size_t ll = (size_t)(sub.end - sub.p);
                if (ll >= 4 && l[0] == 0x0a && l[1] < 0x80 && (size_t)l[1] + 4 <= ll &&
                    l[2 + l[1]] == 0x12 && l[3 + l[1]] < 0x80 &&
                    (size_t)l[1] + l[3 + l[1]] + 4 == ll) {
                    /* The usual label: name then value, each shorter than 128 bytes, nothing
                     * else (what pb_label would find). */
                    nm->p = l + 2;
                    nm->n = l[1];
                    val->p = l + 4 + l[1];
                    val->n = l[3 + l[1]];
                } else if (!pb_label(sub, nm, val)) {
                    return false;
                }
                sc->nlab += 2;
                c->labels++;
            } else if (f == 2) {
                if (!grow((void **)&sc->smp, &sc->capsmp, sc->nsmp + 1, sizeof *sc->smp)) {
                    sc->oom = true;
                    return false;
                }
                if (!pb_sample(sub, &sc->smp[sc->nsmp])) return false;
                sc->nsmp++;
                c->samples++;
            } else if (f == 3) {
                if (!pb_exemplar(sub)) return false;
                c->exemplars++;
            } else {
                if (!pb_histogram(sub)) return false;
                c->histograms++;
            }
        } else if (!pb_skip(&b, wt)) {
            return false;
        }
    }
    return true;
}

/* MetricMetadata: 1 type (enum), 2 family, 4 help, 5 unit. */
static bool pb_metadata(pb_t b, int64_t *type, str_t *family, str_t *help, str_t *unit)
{
    *type = 0;
    memset(family, 0, sizeof *family);
    memset(help, 0, sizeof *help);
    memset(unit, 0, sizeof *unit);
    while (b.p < b.end) {
        uint32_t f;
        unsigned wt;
        pb_t sub;
        uint64_t v;
        if (!pb_tag(&b, &f, &wt)) return false;
        if (f == 1) {
            PB_EXPECT(wt, WT_VARINT);
            if (!pb_varint(&b, &v)) return false;
            *type = (int32_t)(uint32_t)v;
        } else if (f == 2 || f == 4 || f == 5) {
            PB_EXPECT(wt, WT_LEN);
            if (!pb_len(&b, &sub)) return false;
            str_t *d = f == 2 ? family : f == 4 ? help : unit;
            d->p = sub.p;
            d->n = (size_t)(sub.end - sub.p);
        } else if (!pb_skip(&b, wt)) {
            return false;
        }
    }
    return true;
}

/* ---- conversion into store input ---------------------------------------------------------- */

static const char *metric_type_name(int64_t t)
{
    switch (t) {
    case 1: return "counter";
    case 2: return "gauge";
    case 3: return "histogram";
    case 4: return "gaugehistogram";
    case 5: return "summary";
    case 6: return "info";
    case 7: return "stateset";
    default: return "unknown";
    }
}

/* A NUL-terminated arena copy, or NULL when the bytes hold a NUL or memory ran out (*nul tells
 * which). */
static char *dup_str(ag_arena_t *a, const str_t *b, bool *nul)
{
    *nul = b->n && memchr(b->p, 0, b->n) != NULL;
    if (*nul) return NULL;
    char *s = ag_arena_alloc(a, b->n + 1);
    if (!s) return NULL;
    if (b->n) memcpy(s, b->p, b->n);
    s[b->n] = 0;
    return s;
}

/* Copies n bytes and a terminating NUL to dst (room for n + 1); false when the bytes hold a NUL.
 * Label strings are short: eight bytes at a time, then bytewise, without a call per string. */
static inline bool copy_str(char *dst, const uint8_t *src, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t zero = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        memcpy(dst + i, &w, 8);
        zero |= (w - ones) & ~w & highs; /* nonzero iff some byte of w is 0 */
    }
    for (; i < n; i++) {
        dst[i] = (char)src[i];
        zero |= src[i] == 0;
    }
    dst[n] = 0;
    return zero == 0;
}

/* Renders the labels of a series for an error message, as far as they are printable. */
static void describe(pb_t b, char *out, size_t outlen)
{
    size_t used = (size_t)snprintf(out, outlen, "{");
    bool first = true;
    while (b.p < b.end && used < outlen) {
        uint32_t f;
        unsigned wt;
        pb_t sub;
        str_t n, v;
        if (!pb_tag(&b, &f, &wt)) break;
        if (f != 1) {
            if (!pb_skip(&b, wt)) break;
            continue;
        }
        if (!pb_len(&b, &sub) || !pb_label(sub, &n, &v)) break;
        used += (size_t)snprintf(out + used, outlen - used, "%s%.*s=\"%.*s\"", first ? "" : ", ",
                                 (int)(n.n > 64 ? 64 : n.n), n.p ? (const char *)n.p : "",
                                 (int)(v.n > 64 ? 64 : v.n), v.p ? (const char *)v.p : "");
        first = false;
    }
    if (used < outlen) snprintf(out + used, outlen - used, "}");
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20) *p = '?';
}

/* Where pass 2 puts what it converts: every series' labels and samples in one array each and
 * the canonical encodings one after the other, all allocated once per request (see
 * ag_rw_decode), and room to validate one series' labels. */
typedef struct conv_out {
    ag_label_t *labels;   /* a series' labels start at its lab_off / 2 */
    ag_sample_t *samples; /* a series' samples start at its smp_off */
    char *enc;            /* the next series' encoding goes here */
    ag_label_ref_t *refs; /* room for the most labels of a series */
} conv_out_t;

/* Pass 2 over a TimeSeries already checked by pb_series_scan: labels (pointing into one
 * canonical encoding, which also becomes the series key), samples, limits and validation. */
static int convert_series(conv_out_t *co, pb_t b, const ts_count_t *c, const scratch_t *sc,
                          size_t idx, const ag_rw_limits_t *lim, ag_series_in_t *out,
                          ag_series_key_t *key, ag_rw_reason_t *reason, ag_errmsg_t *e)
{
    char d[200];
    if (c->histograms) {
        describe(b, d, sizeof d);
        *reason = AG_RW_HISTOGRAM;
        return ag_errmsg_set(e, AG_EUNSUPPORTED, -1,
                             "series %zu %s: native histograms are not supported; send classic "
                             "histograms (send_native_histograms: false)",
                             idx, d);
    }
    if (lim->max_labels_per_series && c->labels > lim->max_labels_per_series) {
        describe(b, d, sizeof d);
        *reason = AG_RW_LIMIT;
        return ag_errmsg_set(e, AG_EINVAL, -1, "series %zu %s: %zu labels exceed the limit of %u",
                             idx, d, c->labels, lim->max_labels_per_series);
    }
    ag_label_t *labels = co->labels + c->lab_off / 2;
    ag_sample_t *samples = co->samples + c->smp_off;
    ag_label_ref_t *refs = co->refs;
    const str_t *names = c->labels ? sc->lab + c->lab_off : NULL;
    size_t nl = c->labels, nsmp = c->samples;
    /* The canonical encoding, built here on the request's own thread rather than in the
     * store's single committer; the labels point into it. Each label takes its two strings and
     * two NULs, fewer bytes than its wire form (two tags, two lengths, the strings), so the
     * encodings of all series fit in the size of the request. */
    char *enc = co->enc, *p = enc;
    for (size_t i = 0; i < nl; i++) {
        const str_t *n = &names[2 * i], *v = &names[2 * i + 1];
        if (lim->max_label_name_bytes && n->n > lim->max_label_name_bytes) {
            describe(b, d, sizeof d);
            *reason = AG_RW_LIMIT;
            return ag_errmsg_set(e, AG_EINVAL, -1,
                                 "series %zu %s: a label name of %zu bytes exceeds the limit of %u",
                                 idx, d, n->n, lim->max_label_name_bytes);
        }
        if (lim->max_label_value_bytes && v->n > lim->max_label_value_bytes) {
            describe(b, d, sizeof d);
            *reason = AG_RW_LIMIT;
            return ag_errmsg_set(e, AG_EINVAL, -1,
                                 "series %zu %s: a label value of %zu bytes exceeds the limit of %u",
                                 idx, d, v->n, lim->max_label_value_bytes);
        }
        labels[i].name = refs[i].name = p;
        refs[i].name_len = n->n;
        bool ok = copy_str(p, n->p, n->n);
        p += n->n + 1;
        labels[i].value = refs[i].value = p;
        refs[i].value_len = v->n;
        ok &= copy_str(p, v->p, v->n);
        p += v->n + 1;
        if (!ok) {
            describe(b, d, sizeof d);
            *reason = AG_RW_INVALID_LABELS;
            return ag_errmsg_set(e, AG_EINVAL, -1, "series %zu %s: label contains a NUL byte", idx,
                                 d);
        }
    }
    size_t elen = (size_t)(p - enc);
    co->enc = p;
    ag_errmsg_t le; /* filled in only on failure (no 264-byte clear for every series) */
    le.msg[0] = 0;
    le.offset = -1;
    if (ag_labels_validate_ref(refs, nl, &le)) {
        describe(b, d, sizeof d);
        *reason = AG_RW_INVALID_LABELS;
        return ag_errmsg_set(e, AG_EINVAL, -1, "series %zu %s: %s", idx, d, le.msg);
    }
    key->enc = enc;
    key->len = elen;
    key->hash = ag_labels_hash(enc, elen);
    out->labels = labels;
    out->nlabels = nl;
    out->samples = samples;
    out->nsamples = nsmp;
    return AG_OK;
}

int ag_rw_decode(const void *body, size_t len, const ag_rw_limits_t *lim, ag_rw_request_t *out,
                 ag_rw_reason_t *reason, ag_errmsg_t *e)
{
    memset(out, 0, sizeof *out);
    *reason = AG_RW_OK;
    size_t ulen;
    int rc;
    if (snappy_uncompressed_length(body, len, &ulen) != SNAPPY_OK) {
        *reason = AG_RW_BAD_SNAPPY;
        return ag_errmsg_set(e, AG_EINVAL, 0,
                             "snappy: corrupt input: cannot read the uncompressed length (the "
                             "body must be a snappy block-compressed protobuf WriteRequest)");
    }
    if (ulen > lim->max_decoded_bytes) {
        *reason = AG_RW_TOO_LARGE;
        return ag_errmsg_set(e, AG_ETOOBIG, 0,
                             "decoded request of %zu bytes exceeds the limit of %llu bytes", ulen,
                             (unsigned long long)lim->max_decoded_bytes);
    }
    uint64_t histograms = 0, samples = 0, exemplars = 0;
    ts_count_t *counts = NULL; /* pass 1's count of each series, so pass 2 need not scan again */
    scratch_t sc = {0};
    ag_arena_t *a = ag_arena_new(64 * 1024, 0);
    if (!a) return AG_ENOMEM;
    char *raw = ag_arena_alloc(a, ulen ? ulen : 1);
    if (!raw) {
        rc = AG_ENOMEM;
        goto fail;
    }
    size_t got = ulen;
    if (snappy_uncompress(body, len, raw, &got) != SNAPPY_OK || got != ulen) {
        *reason = AG_RW_BAD_SNAPPY;
        rc = ag_errmsg_set(e, AG_EINVAL, -1, "snappy: corrupt input");
        goto fail;
    }
    /* Pass 1: the whole WriteRequest (1 timeseries, 3 metadata) is checked before anything is
     * converted, so a malformed body is refused as such whatever else it holds. */
    pb_t all = {(const uint8_t *)raw, (const uint8_t *)raw + ulen}, b = all;
    size_t nts = 0, nmd = 0, ccap = 0, maxl = 1; /* maxl: the most labels of a series */
    bool ok = true;
    while (ok && b.p < b.end) {
        uint32_t f;
        unsigned wt;
        pb_t sub;
        ts_count_t c;
        int64_t type;
        str_t s1, s2, s3;
        if (!pb_tag(&b, &f, &wt)) ok = false;
        else if (f == 1 || f == 3) {
            ok = wt == WT_LEN && pb_len(&b, &sub) &&
                 (f == 1 ? pb_series_scan(sub, &c, &sc) : pb_metadata(sub, &type, &s1, &s2, &s3));
            if (ok && f == 1 && nts == ccap) {
                size_t nc = ccap ? ccap * 2 : 64;
                ts_count_t *g = realloc(counts, nc * sizeof *g);
                if (!g) {
                    rc = AG_ENOMEM;
                    goto fail;
                }
                counts = g;
                ccap = nc;
            }
            if (ok && f == 1) {
                counts[nts++] = c;
                if (c.labels > maxl) maxl = c.labels;
                samples += c.samples;
                exemplars += c.exemplars;
                histograms += c.histograms;
            } else if (ok) {
                nmd++;
            }
        } else {
            ok = pb_skip(&b, wt);
        }
    }
    if (!ok && sc.oom) {
        rc = AG_ENOMEM;
        goto fail;
    }
    if (!ok) {
        *reason = AG_RW_BAD_PROTOBUF;
        rc = ag_errmsg_set(e, AG_EINVAL, -1,
                           "protobuf: cannot decode a WriteRequest from %zu decoded bytes", ulen);
        goto fail;
    }
    out->samples = samples;
    out->exemplars = exemplars;
    ag_series_in_t *series = ag_arena_alloc(a, (nts ? nts : 1) * sizeof *series);
    ag_series_key_t *keys = ag_arena_alloc(a, (nts ? nts : 1) * sizeof *keys);
    ag_metadata_in_t *meta = ag_arena_alloc(a, (nmd ? nmd : 1) * sizeof *meta);
    conv_out_t co = {ag_arena_alloc(a, (sc.nlab / 2 + 1) * sizeof *co.labels),
                     ag_arena_alloc(a, (sc.nsmp + 1) * sizeof *co.samples),
                     ag_arena_alloc(a, ulen + 1), ag_arena_alloc(a, maxl * sizeof *co.refs)};
    if (!series || !keys || !meta || !co.labels || !co.samples || !co.enc || !co.refs) {
        rc = AG_ENOMEM;
        goto fail;
    }
    if (sc.nsmp) memcpy(co.samples, sc.smp, sc.nsmp * sizeof *co.samples);
    /* Pass 2: convert. */
    size_t ns = 0, nm = 0, idx = 0;
    for (b = all; b.p < b.end;) {
        uint32_t f;
        unsigned wt;
        pb_t sub;
        if (!pb_tag(&b, &f, &wt)) break;
        if (f != 1 && f != 3) {
            pb_skip(&b, wt);
            continue;
        }
        pb_len(&b, &sub);
        if (f == 1) {
            if ((rc = convert_series(&co, sub, &counts[idx], &sc, idx, lim, &series[ns], &keys[ns],
                                     reason, e)))
                goto fail;
            idx++;
            if (series[ns].nsamples) ns++; /* a series without samples stores nothing */
            continue;
        }
        int64_t type;
        str_t fam, help, unit;
        pb_metadata(sub, &type, &fam, &help, &unit);
        bool nul[3];
        meta[nm].family = dup_str(a, &fam, &nul[0]);
        meta[nm].help = dup_str(a, &help, &nul[1]);
        meta[nm].unit = dup_str(a, &unit, &nul[2]);
        meta[nm].type = metric_type_name(type);
        if (nul[0] || nul[1] || nul[2]) continue; /* metadata is advisory: skip bad entries */
        if (!meta[nm].family || !meta[nm].help || !meta[nm].unit) {
            rc = AG_ENOMEM;
            goto fail;
        }
        if (!ag_metric_name_valid(meta[nm].family, fam.n) || !ag_utf8_valid(meta[nm].help, help.n) ||
            !ag_utf8_valid(meta[nm].unit, unit.n))
            continue;
        nm++;
    }
    free(counts);
    free(sc.lab);
    free(sc.smp);
    out->arena = a;
    out->req.series = series;
    out->req.nseries = ns;
    out->req.keys = keys;
    out->req.meta = meta;
    out->req.nmeta = nm;
    return AG_OK;
fail:
    free(counts);
    free(sc.lab);
    free(sc.smp);
    ag_arena_free(a);
    uint64_t seen = out->samples + histograms;
    memset(out, 0, sizeof *out);
    out->samples = seen;
    return rc;
}

void ag_rw_request_free(ag_rw_request_t *r)
{
    ag_arena_free(r->arena);
    memset(r, 0, sizeof *r);
}
