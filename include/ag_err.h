/* ag_err.h - the one table of error codes every Augur module returns.
 *
 * Functions return 0 on success or one of the negative AG_E* codes below and hand results back
 * through out-parameters. Decoders and parsers additionally fill an ag_errmsg_t with a human
 * readable message (and the byte offset where input went wrong) that the HTTP layer passes to
 * the client in a 4xx body.
 */
#ifndef AG_ERR_H
#define AG_ERR_H

#include <stddef.h>

enum {
    AG_OK = 0,
    AG_ENOMEM = -1,       /* allocation failed (a 5xx to clients, never an abort) */
    AG_EINVAL = -2,       /* caller input is malformed or invalid (a 400) */
    AG_ETOOBIG = -3,      /* input exceeds a configured size limit (a 413) */
    AG_EIO = -4,          /* the operating system or LMDB reported an I/O error (a 5xx) */
    AG_ENOTFOUND = -5,    /* the thing asked for does not exist */
    AG_ECORRUPT = -6,     /* stored or encoded data fails its own consistency checks */
    AG_EFULL = -7,        /* the disk or the LMDB map is full (a retryable 5xx) */
    AG_EUNSUPPORTED = -8, /* valid input using a feature we do not implement (a 400 or 415) */
    AG_ESHUTDOWN = -9,    /* the component is shutting down (a retryable 503) */
    AG_ELIMIT = -10,      /* a configured limit was hit (a 400 or 422) */
    AG_ECONFLICT = -11,   /* input conflicts with stored data, e.g. an out-of-order sample */
    AG_ETIMEOUT = -12,    /* a deadline passed */
    AG_EEXEC = -13,       /* a query failed while executing (a 422 `execution` error) */
};

/* Returns a static, never-NULL description of an AG_E* code. */
const char *ag_strerror(int err);

/* A message buffer for decoders and parsers. `offset` is the byte offset in the input where the
 * problem was found, or -1 when it does not apply. */
typedef struct ag_errmsg {
    char msg[256];
    long offset;
} ag_errmsg_t;

/* Formats into `e` (if non-NULL) and returns `code`, so that callers can write
 * `return ag_errmsg_set(e, AG_EINVAL, off, "label %s is empty", name);`. */
int ag_errmsg_set(ag_errmsg_t *e, int code, long offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
