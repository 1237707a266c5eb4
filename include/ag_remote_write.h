/* ag_remote_write.h - decoding and validation of Prometheus Remote-Write 1.0 request bodies.
 *
 * A body is a snappy *block* (not framed) holding a protobuf WriteRequest. Decoding checks the
 * uncompressed length against a limit before allocating anything for it, reads the protobuf wire
 * format into a per-request arena (no malloc per label), and validates every series strictly, so the
 * store only ever sees well-formed input. The result points into the arena and is released as
 * a whole by ag_rw_request_free.
 */
#ifndef AG_REMOTE_WRITE_H
#define AG_REMOTE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "ag_arena.h"
#include "ag_err.h"
#include "ag_store.h"

typedef struct ag_rw_limits {
    uint64_t max_decoded_bytes;     /* uncompressed protobuf size */
    uint32_t max_labels_per_series;
    uint32_t max_label_name_bytes;
    uint32_t max_label_value_bytes;
} ag_rw_limits_t;

typedef struct ag_rw_request {
    ag_arena_t *arena;       /* owns everything below */
    ag_write_req_t req;      /* ready for ag_store_write */
    uint64_t samples;        /* float samples in the request */
    uint64_t exemplars;      /* exemplars received (ignored: not stored yet) */
} ag_rw_request_t;

/* Why a request was refused, for the rejected-samples counters. */
typedef enum {
    AG_RW_OK = 0,
    AG_RW_BAD_SNAPPY,
    AG_RW_BAD_PROTOBUF,
    AG_RW_TOO_LARGE,
    AG_RW_INVALID_LABELS,
    AG_RW_LIMIT,
    AG_RW_HISTOGRAM,
} ag_rw_reason_t;

/* Decodes body[0..len). Returns 0 (then `out` must be freed with ag_rw_request_free), or
 * AG_EINVAL (undecodable or invalid: a 400), AG_ETOOBIG (over max_decoded_bytes: a 413),
 * AG_EUNSUPPORTED (native histograms: a 400), AG_ENOMEM. On error nothing needs freeing, `e`
 * says what and where (series index and labels), *reason classifies it, and out->samples holds
 * the number of samples (float and histogram) the refused request carried (0 when it could not be decoded). */
int ag_rw_decode(const void *body, size_t len, const ag_rw_limits_t *lim, ag_rw_request_t *out,
                 ag_rw_reason_t *reason, ag_errmsg_t *e);
void ag_rw_request_free(ag_rw_request_t *r);

#endif
