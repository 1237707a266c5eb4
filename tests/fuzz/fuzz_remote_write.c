/* fuzz_remote_write.c - libFuzzer target for the Remote-Write decoder.
 *
 * Feeds the input twice: as a raw request body (snappy block), and snappy-compressed so the
 * fuzzer also reaches the protobuf and validation layers directly. Every decoded request is
 * checked against the validator's promises: labels sorted and unique, __name__ present, every
 * string NUL-free UTF-8, keys equal to the canonical encoding. The decoder reads the wire
 * format itself; protobuf-c's generated unpacker is the reference it is compared with: it must
 * refuse exactly what protobuf-c refuses, and what it accepts must hold the same labels and
 * samples in the same order.
 */
#include <snappy-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ag_buf.h"
#include "ag_labels.h"
#include "ag_remote_write.h"
#include "remote.pb-c.h"

static void check(const ag_rw_request_t *r)
{
    for (size_t i = 0; i < r->req.nseries; i++) {
        const ag_series_in_t *s = &r->req.series[i];
        ag_errmsg_t e;
        if (ag_labels_validate(s->labels, s->nlabels, &e) != 0) abort();
        if (s->nsamples == 0) abort();
        ag_buf_t b = AG_BUF_INIT;
        ag_labels_encode(s->labels, s->nlabels, &b);
        const ag_series_key_t *k = &r->req.keys[i];
        if (!ag_buf_ok(&b) || b.len != k->len || memcmp(b.data, k->enc, b.len) ||
            k->hash != ag_labels_hash(b.data, b.len))
            abort();
        ag_buf_free(&b);
    }
}

static bool same_bytes(const ProtobufCBinaryData *d, const char *s)
{
    return d->len == strlen(s) && (d->len == 0 || memcmp(d->data, s, d->len) == 0);
}

/* The decoded request against protobuf-c's unpacking of the same bytes. */
static void compare(const uint8_t *body, size_t size, int rc, ag_rw_reason_t why,
                    const ag_rw_request_t *r)
{
    size_t ulen;
    if (snappy_uncompressed_length((const char *)body, size, &ulen) != SNAPPY_OK || ulen > (1 << 20))
        return;
    char *raw = malloc(ulen ? ulen : 1);
    if (!raw || snappy_uncompress((const char *)body, size, raw, &ulen) != SNAPPY_OK) {
        free(raw);
        return;
    }
    Augur__Remote__WriteRequest *wr = augur__remote__write_request__unpack(NULL, ulen, (uint8_t *)raw);
    if (!wr) {
        if (rc == 0 || why != AG_RW_BAD_PROTOBUF) abort(); /* protobuf-c refuses it */
    } else {
        if (rc != 0 && why == AG_RW_BAD_PROTOBUF) abort(); /* protobuf-c takes it */
        if (rc == 0) {
            size_t k = 0;
            for (size_t i = 0; i < wr->n_timeseries; i++) {
                const Augur__Remote__TimeSeries *ts = wr->timeseries[i];
                if (!ts->n_samples) continue;
                if (k >= r->req.nseries) abort();
                const ag_series_in_t *s = &r->req.series[k++];
                if (s->nlabels != ts->n_labels || s->nsamples != ts->n_samples) abort();
                for (size_t j = 0; j < ts->n_labels; j++)
                    if (!same_bytes(&ts->labels[j]->name, s->labels[j].name) ||
                        !same_bytes(&ts->labels[j]->value, s->labels[j].value))
                        abort();
                for (size_t j = 0; j < ts->n_samples; j++)
                    if (ts->samples[j]->timestamp != s->samples[j].t ||
                        memcmp(&ts->samples[j]->value, &s->samples[j].v, 8))
                        abort();
            }
            if (k != r->req.nseries) abort();
        }
        augur__remote__write_request__free_unpacked(wr, NULL);
    }
    free(raw);
}

static void run(const uint8_t *data, size_t size)
{
    static const ag_rw_limits_t lim = {1 << 20, 64, 256, 4096};
    ag_rw_request_t r;
    ag_rw_reason_t why;
    ag_errmsg_t e;
    int rc = ag_rw_decode(data, size, &lim, &r, &why, &e);
    compare(data, size, rc, why, &r);
    if (rc == 0) {
        check(&r);
        ag_rw_request_free(&r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size);
    size_t clen = snappy_max_compressed_length(size);
    char *comp = malloc(clen);
    if (comp && snappy_compress((const char *)data, size, comp, &clen) == SNAPPY_OK)
        run((const uint8_t *)comp, clen);
    free(comp);
    return 0;
}
