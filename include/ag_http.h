/* ag_http.h - the HTTP server: libmicrohttpd underneath, a plain request/response in between.
 *
 * The server reads the whole body (up to a settable limit; the rest of a larger body is read and
 * discarded, and the answer is 413), decodes query-string and form parameters, calls one handler function, and
 * sends its response, gzip-compressed when the client accepts it and the body is large enough.
 * Connections are served by one libmicrohttpd event loop per CPU (epoll), which only does I/O;
 * the handler runs on a pool of worker threads while its connection is suspended (remote write,
 * /-/ probes and /metrics on a pool of their own, so slow queries never delay ingest), so a handler may block (remote write waits for the group commit, a heavy query takes
 * seconds) without stalling other connections, and thousands of idle keep-alive connections cost
 * no threads (a thread per connection gave 1,000 dashboard connections a long scheduling tail).
 * The handler may be called from several threads at once. Only this module includes
 * <microhttpd.h>.
 */
#ifndef AG_HTTP_H
#define AG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ag_buf.h"
#include "ag_err.h"

typedef struct ag_http_param {
    char *key;
    char *value;      /* NUL-terminated, but may hold NUL bytes (%00): use value_len */
    size_t value_len;
} ag_http_param_t;

typedef struct ag_http_req {
    const char *method;           /* "GET", "POST", ... */
    const char *path;             /* URL path without the query string */
    const char *content_type;     /* "" when absent; likewise below */
    const char *content_encoding;
    const char *accept_encoding;
    const char *body;             /* the whole body, body_len bytes (not NUL-terminated) */
    size_t body_len;
    const ag_http_param_t *params;/* query string, then form body (urlencoded POST), in order */
    size_t nparams;
    bool body_too_large;          /* the body exceeded the limit: it was discarded (a 413) */
    uint64_t max_body;            /* the limit in force */
} ag_http_req_t;

/* The first value of parameter `key`, or NULL. */
const char *ag_http_param(const ag_http_req_t *r, const char *key);
/* The same, with the value's length (values may contain NUL bytes). */
const char *ag_http_param_n(const ag_http_req_t *r, const char *key, size_t *len);

#define AG_HTTP_MAX_HEADERS 6
typedef struct ag_http_resp {
    int status;                /* default 200 */
    const char *content_type;  /* static string; default "application/json" */
    ag_buf_t body;             /* owned by the server after the handler returns */
    int nheaders;
    struct {
        char name[64];
        char value[192];
    } headers[AG_HTTP_MAX_HEADERS];
} ag_http_resp_t;

/* Adds a response header (silently ignored beyond AG_HTTP_MAX_HEADERS). */
void ag_http_resp_header(ag_http_resp_t *r, const char *name, const char *value);

typedef void (*ag_http_handler_fn)(void *ctx, const ag_http_req_t *req, ag_http_resp_t *resp);

typedef struct ag_http_server ag_http_server_t;

/* Listens on `listen` ("host:port"; an empty host means every address) and serves `fn`.
 * Returns 0, AG_EINVAL (unparsable address), AG_EIO (cannot bind: message says why). */
int ag_http_start(const char *listen, uint64_t max_body, ag_http_handler_fn fn, void *ctx,
                  ag_http_server_t **out, ag_errmsg_t *e);
void ag_http_set_max_body(ag_http_server_t *s, uint64_t max_body);
/* Graceful stop: stops accepting connections, answers new requests on open connections with
 * 503, waits up to `grace_ms` for in-flight requests to finish, then closes everything and
 * frees the server. */
void ag_http_stop(ag_http_server_t *s, int grace_ms);

#endif
