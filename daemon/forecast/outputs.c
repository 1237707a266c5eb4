/* outputs.c - the forecasting service's output series: label sets derived from a source series
 * (or a model's result series) and batches of samples plus state records written with one
 * ag_store_write, so outputs and the state that produced them are durable together.
 *
 * Derived labels: the source's labels, minus __name__, plus __name__=<output name>,
 * model=<model> (configured models) and metric=<source __name__> (when it had one). A source label already named
 * model or metric is kept as exported_model / exported_metric (Prometheus' convention for
 * clashing target labels); if that name is taken too, it is dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service_int.h"

void batch_free(batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        out_series_t *o = &b->ser[i];
        for (size_t k = 0; k < o->nowned; k++) free(o->owned[k]);
        free(o->owned);
        free(o->labels);
        free(o->smp);
    }
    free(b->ser);
    free(b->blob);
    ag_buf_free(&b->blobdata);
    memset(b, 0, sizeof *b);
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const ag_label_t *)a)->name, ((const ag_label_t *)b)->name);
}

long batch_series(batch_t *b, const char *name, const char *model, const char *src, size_t len)
{
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 16;
        out_series_t *ns = realloc(b->ser, nc * sizeof *ns);
        if (!ns) goto oom;
        b->ser = ns;
        b->cap = nc;
    }
    out_series_t *o = &b->ser[b->n];
    memset(o, 0, sizeof *o);
    size_t cnt = 0, pos = 0, nl, vl;
    const char *ln, *lv;
    while (ag_labels_next(src, len, &pos, &ln, &nl, &lv, &vl)) cnt++;
    /* Source labels, __name__, model, metric, and up to two exported_ names. */
    if (!(o->labels = calloc(cnt + 3, sizeof *o->labels)) ||
        !(o->owned = calloc(2, sizeof *o->owned)))
        goto oom_series;
    ag_label_t *l = o->labels;
    size_t n = 0;
    const char *src_name = NULL;
    pos = 0;
    while (ag_labels_next(src, len, &pos, &ln, &nl, &lv, &vl)) {
        if (strcmp(ln, "__name__") == 0) {
            src_name = lv;
            continue;
        }
        if (strcmp(ln, "model") == 0 || strcmp(ln, "metric") == 0) {
            /* Renamed exported_<name>, or dropped when the source has that label too. */
            char ex[16];
            snprintf(ex, sizeof ex, "exported_%s", ln);
            if (ag_labels_get(src, len, ex, &vl)) continue;
            if (!(o->owned[o->nowned] = strdup(ex))) goto oom_series;
            ln = o->owned[o->nowned++];
        }
        l[n].name = ln;
        l[n].value = lv;
        n++;
    }
    l[n].name = "__name__";
    l[n++].value = name;
    if (model) {
        l[n].name = "model";
        l[n++].value = model;
    }
    if (src_name) {
        l[n].name = "metric";
        l[n++].value = src_name;
    }
    qsort(l, n, sizeof *l, label_cmp);
    o->nlabels = n;
    return (long)b->n++;
oom_series:
    for (size_t k = 0; k < o->nowned; k++) free(o->owned[k]);
    free(o->owned);
    free(o->labels);
oom:
    b->oom = true;
    return -1;
}

void batch_sample(batch_t *b, long idx, int64_t t, double v)
{
    if (idx < 0) return;
    out_series_t *o = &b->ser[idx];
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 4;
        ag_sample_t *ns = realloc(o->smp, nc * sizeof *ns);
        if (!ns) {
            b->oom = true;
            return;
        }
        o->smp = ns;
        o->cap = nc;
    }
    o->smp[o->n].t = t;
    o->smp[o->n].v = v;
    o->n++;
}

static void blob_add(batch_t *b, const void *key, size_t klen, const void *val, size_t vlen,
                     bool del)
{
    if (b->nblob == b->capblob) {
        size_t nc = b->capblob ? b->capblob * 2 : 16;
        void *nb = realloc(b->blob, nc * sizeof *b->blob);
        if (!nb) {
            b->oom = true;
            return;
        }
        b->blob = nb;
        b->capblob = nc;
    }
    size_t koff = b->blobdata.len;
    ag_buf_append(&b->blobdata, key, klen);
    size_t voff = b->blobdata.len;
    if (vlen) ag_buf_append(&b->blobdata, val, vlen);
    b->blob[b->nblob].koff = koff;
    b->blob[b->nblob].klen = klen;
    b->blob[b->nblob].voff = voff;
    b->blob[b->nblob].vlen = vlen;
    b->blob[b->nblob].del = del;
    b->nblob++;
}

void batch_blob(batch_t *b, const void *key, size_t klen, const void *val, size_t vlen)
{
    blob_add(b, key, klen, val, vlen, false);
}

void batch_blob_del(batch_t *b, const void *key, size_t klen)
{
    blob_add(b, key, klen, NULL, 0, true);
}

int batch_write(ag_store_t *s, batch_t *b, uint64_t *written, ag_errmsg_t *e)
{
    int rc = AG_OK;
    if (b->oom || !ag_buf_ok(&b->blobdata)) {
        rc = ag_errmsg_set(e, AG_ENOMEM, -1, "out of memory building outputs");
        goto out;
    }
    size_t ns = 0;
    for (size_t i = 0; i < b->n; i++) ns += b->ser[i].n > 0;
    if (!ns && !b->nblob) goto out;
    ag_series_in_t *in = calloc(ns ? ns : 1, sizeof *in);
    ag_blob_in_t *bl = calloc(b->nblob ? b->nblob : 1, sizeof *bl);
    if (!in || !bl) {
        free(in);
        free(bl);
        rc = ag_errmsg_set(e, AG_ENOMEM, -1, "out of memory building outputs");
        goto out;
    }
    uint64_t nsmp = 0;
    for (size_t i = 0, k = 0; i < b->n; i++) {
        if (!b->ser[i].n) continue;
        in[k].labels = b->ser[i].labels;
        in[k].nlabels = b->ser[i].nlabels;
        in[k].samples = b->ser[i].smp;
        in[k].nsamples = b->ser[i].n;
        nsmp += b->ser[i].n;
        k++;
    }
    for (size_t i = 0; i < b->nblob; i++) {
        bl[i].key = b->blobdata.data + b->blob[i].koff;
        bl[i].key_len = b->blob[i].klen;
        bl[i].val = b->blob[i].del ? NULL : b->blobdata.data + b->blob[i].voff;
        bl[i].val_len = b->blob[i].vlen;
        if (!b->blob[i].del && !bl[i].val) bl[i].val = ""; /* empty value, not a delete */
    }
    ag_write_req_t req = {in, ns, NULL, 0, NULL, bl, b->nblob};
    ag_write_res_t res;
    rc = ag_store_write(s, &req, &res);
    if (rc) ag_errmsg_set(e, rc, -1, "%s", res.err.msg[0] ? res.err.msg : ag_strerror(rc));
    else if (written) *written += nsmp;
    free(in);
    free(bl);
out:
    batch_free(b);
    return rc;
}
