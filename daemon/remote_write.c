/* remote_write.c - Remote-Write 1.0 body decoding: snappy block -> protobuf-c -> validated
 * series (see ag_remote_write.h).
 *
 * Memory: one arena per request holds the uncompressed body, every protobuf-c structure and
 * the NUL-terminated label copies the store wants; protobuf-c's allocator is pointed at it and
 * its free() is a no-op. The size limit is enforced on snappy's declared length before the
 * buffer is allocated, so a 100-byte body claiming 4 GiB costs nothing.
 */
#include "ag_remote_write.h"

#include <snappy-c.h>
#include <stdio.h>
#include <string.h>

#include "ag_labels.h"
#include "remote.pb-c.h"

static void *arena_pb_alloc(void *data, size_t size) { return ag_arena_alloc(data, size); }
static void arena_pb_free(void *data, void *ptr) { (void)data, (void)ptr; }

static const char *metric_type_name(Augur__Remote__MetricMetadata__MetricType t)
{
    switch (t) {
    case AUGUR__REMOTE__METRIC_METADATA__METRIC_TYPE__COUNTER: return "counter";
    case AUGUR__REMOTE__METRIC_METADATA__METRIC_TYPE__GAUGE: return "gauge";
    case AUGUR__REMOTE__METRIC_METADATA__METRIC_TYPE__HISTOGRAM: return "histogram";
    case AUGUR__REMOTE__METRIC_METADATA__METRIC_TYPE__GAUGEHISTOGRAM: return "gaugehistogram";
    case AUGUR__REMOTE__METRIC_METADATA__METRIC_TYPE__SUMMARY: return "summary";
    case AUGUR__REMOTE__METRIC_METADATA__METRIC_TYPE__INFO: return "info";
    case AUGUR__REMOTE__METRIC_METADATA__METRIC_TYPE__STATESET: return "stateset";
    default: return "unknown";
    }
}

/* A NUL-terminated arena copy of a bytes field, or NULL when it holds a NUL or memory ran out
 * (*nul tells which). */
static char *dup_bytes(ag_arena_t *a, const ProtobufCBinaryData *b, bool *nul)
{
    *nul = b->len && memchr(b->data, 0, b->len) != NULL;
    if (*nul) return NULL;
    char *s = ag_arena_alloc(a, b->len + 1);
    if (!s) return NULL;
    if (b->len) memcpy(s, b->data, b->len);
    s[b->len] = 0;
    return s;
}

/* Renders the labels of a series for an error message, as far as they are printable. */
static void describe(const Augur__Remote__TimeSeries *ts, char *out, size_t outlen)
{
    size_t used = (size_t)snprintf(out, outlen, "{");
    for (size_t i = 0; i < ts->n_labels && used < outlen; i++) {
        const Augur__Remote__Label *l = ts->labels[i];
        used += (size_t)snprintf(out + used, outlen - used, "%s%.*s=\"%.*s\"", i ? ", " : "",
                                 (int)(l->name.len > 64 ? 64 : l->name.len),
                                 l->name.data ? (const char *)l->name.data : "",
                                 (int)(l->value.len > 64 ? 64 : l->value.len),
                                 l->value.data ? (const char *)l->value.data : "");
    }
    if (used < outlen) snprintf(out + used, outlen - used, "}");
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20) *p = '?';
}

static int convert_series(ag_arena_t *a, const Augur__Remote__TimeSeries *ts, size_t idx,
                          const ag_rw_limits_t *lim, ag_series_in_t *out, ag_rw_reason_t *reason,
                          ag_errmsg_t *e)
{
    char d[200];
    if (ts->n_histograms) {
        describe(ts, d, sizeof d);
        *reason = AG_RW_HISTOGRAM;
        return ag_errmsg_set(e, AG_EUNSUPPORTED, -1,
                             "series %zu %s: native histograms are not supported; send classic "
                             "histograms (send_native_histograms: false)",
                             idx, d);
    }
    if (lim->max_labels_per_series && ts->n_labels > lim->max_labels_per_series) {
        describe(ts, d, sizeof d);
        *reason = AG_RW_LIMIT;
        return ag_errmsg_set(e, AG_EINVAL, -1, "series %zu %s: %zu labels exceed the limit of %u",
                             idx, d, ts->n_labels, lim->max_labels_per_series);
    }
    ag_label_t *labels = ag_arena_alloc(a, (ts->n_labels ? ts->n_labels : 1) * sizeof *labels);
    if (!labels) return AG_ENOMEM;
    for (size_t i = 0; i < ts->n_labels; i++) {
        const Augur__Remote__Label *l = ts->labels[i];
        bool nul1, nul2;
        if (lim->max_label_name_bytes && l->name.len > lim->max_label_name_bytes) {
            describe(ts, d, sizeof d);
            *reason = AG_RW_LIMIT;
            return ag_errmsg_set(e, AG_EINVAL, -1,
                                 "series %zu %s: a label name of %zu bytes exceeds the limit of %u",
                                 idx, d, l->name.len, lim->max_label_name_bytes);
        }
        if (lim->max_label_value_bytes && l->value.len > lim->max_label_value_bytes) {
            describe(ts, d, sizeof d);
            *reason = AG_RW_LIMIT;
            return ag_errmsg_set(e, AG_EINVAL, -1,
                                 "series %zu %s: a label value of %zu bytes exceeds the limit of %u",
                                 idx, d, l->value.len, lim->max_label_value_bytes);
        }
        labels[i].name = dup_bytes(a, &l->name, &nul1);
        labels[i].value = dup_bytes(a, &l->value, &nul2);
        if (nul1 || nul2) {
            describe(ts, d, sizeof d);
            *reason = AG_RW_INVALID_LABELS;
            return ag_errmsg_set(e, AG_EINVAL, -1, "series %zu %s: label contains a NUL byte", idx,
                                 d);
        }
        if (!labels[i].name || !labels[i].value) return AG_ENOMEM;
    }
    ag_errmsg_t le = {{0}, -1};
    if (ag_labels_validate(labels, ts->n_labels, &le)) {
        describe(ts, d, sizeof d);
        *reason = AG_RW_INVALID_LABELS;
        return ag_errmsg_set(e, AG_EINVAL, -1, "series %zu %s: %s", idx, d, le.msg);
    }
    ag_sample_t *samples = ag_arena_alloc(a, (ts->n_samples ? ts->n_samples : 1) * sizeof *samples);
    if (!samples) return AG_ENOMEM;
    for (size_t i = 0; i < ts->n_samples; i++) {
        samples[i].t = ts->samples[i]->timestamp;
        samples[i].v = ts->samples[i]->value; /* a plain copy keeps every NaN bit */
    }
    out->labels = labels;
    out->nlabels = ts->n_labels;
    out->samples = samples;
    out->nsamples = ts->n_samples;
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
    uint64_t histograms = 0;
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
    ProtobufCAllocator alloc = {arena_pb_alloc, arena_pb_free, a};
    Augur__Remote__WriteRequest *wr =
        augur__remote__write_request__unpack(&alloc, ulen, (const uint8_t *)raw);
    if (!wr) {
        *reason = AG_RW_BAD_PROTOBUF;
        rc = ag_errmsg_set(e, AG_EINVAL, -1,
                           "protobuf: cannot decode a WriteRequest from %zu decoded bytes", ulen);
        goto fail;
    }
    ag_series_in_t *series = ag_arena_alloc(a, (wr->n_timeseries ? wr->n_timeseries : 1) *
                                                   sizeof *series);
    ag_metadata_in_t *meta =
        ag_arena_alloc(a, (wr->n_metadata ? wr->n_metadata : 1) * sizeof *meta);
    if (!series || !meta) {
        rc = AG_ENOMEM;
        goto fail;
    }
    size_t ns = 0;
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        out->samples += wr->timeseries[i]->n_samples;
        out->exemplars += wr->timeseries[i]->n_exemplars;
        histograms += wr->timeseries[i]->n_histograms;
    }
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        if ((rc = convert_series(a, wr->timeseries[i], i, lim, &series[ns], reason, e))) goto fail;
        if (series[ns].nsamples) ns++; /* a series without samples stores nothing */
    }
    size_t nm = 0;
    for (size_t i = 0; i < wr->n_metadata; i++) {
        const Augur__Remote__MetricMetadata *m = wr->metadata[i];
        bool nul[3];
        meta[nm].family = dup_bytes(a, &m->metric_family_name, &nul[0]);
        meta[nm].help = dup_bytes(a, &m->help, &nul[1]);
        meta[nm].unit = dup_bytes(a, &m->unit, &nul[2]);
        meta[nm].type = metric_type_name(m->type);
        if (nul[0] || nul[1] || nul[2]) continue; /* metadata is advisory: skip bad entries */
        if (!meta[nm].family || !meta[nm].help || !meta[nm].unit) {
            rc = AG_ENOMEM;
            goto fail;
        }
        if (!ag_metric_name_valid(meta[nm].family, strlen(meta[nm].family)) ||
            !ag_utf8_valid(meta[nm].help, strlen(meta[nm].help)) ||
            !ag_utf8_valid(meta[nm].unit, strlen(meta[nm].unit)))
            continue;
        nm++;
    }
    out->arena = a;
    out->req.series = series;
    out->req.nseries = ns;
    out->req.meta = meta;
    out->req.nmeta = nm;
    return AG_OK;
fail:
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
