/* fuzz_remote_write.c - libFuzzer target for the Remote-Write decoder.
 *
 * Feeds the input twice: as a raw request body (snappy block), and snappy-compressed so the
 * fuzzer also reaches the protobuf and validation layers directly. Every decoded request is
 * checked against the validator's promises: labels sorted and unique, __name__ present, every
 * string NUL-free UTF-8.
 */
#include <snappy-c.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ag_labels.h"
#include "ag_remote_write.h"

static void check(const ag_rw_request_t *r)
{
    for (size_t i = 0; i < r->req.nseries; i++) {
        const ag_series_in_t *s = &r->req.series[i];
        ag_errmsg_t e;
        if (ag_labels_validate(s->labels, s->nlabels, &e) != 0) abort();
        if (s->nsamples == 0) abort();
    }
}

static void run(const uint8_t *data, size_t size)
{
    static const ag_rw_limits_t lim = {1 << 20, 64, 256, 4096};
    ag_rw_request_t r;
    ag_rw_reason_t why;
    ag_errmsg_t e;
    if (ag_rw_decode(data, size, &lim, &r, &why, &e) == 0) {
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
