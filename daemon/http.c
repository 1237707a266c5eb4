/* http.c - the HTTP server on libmicrohttpd (see ag_http.h).
 *
 * Design: one thread per connection (MHD_USE_THREAD_PER_CONNECTION) because remote-write
 * handlers block until their group commit is durable; Prometheus opens at most max_shards
 * connections, so thread count stays bounded by senders. Each request's body is collected into
 * a buffer capped at max_body; past the cap the rest is discarded and the answer is 413. The
 * handler sees a flat ag_http_req_t, and this file turns its ag_http_resp_t into an MHD response,
 * gzip-compressing bodies over 1 KiB when the client sent Accept-Encoding: gzip.
 *
 * Shutdown: ag_http_stop closes the listening socket first, marks the server as stopping (new
 * requests on kept-alive connections get 503 and Connection: close), waits for in-flight
 * requests to complete their responses, then stops libmicrohttpd.
 */
#include "ag_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "ag_log.h"

struct ag_http_server {
    struct MHD_Daemon *mhd;
    ag_http_handler_fn fn;
    void *ctx;
    _Atomic uint64_t max_body;
    _Atomic int inflight;
    _Atomic bool stopping;
};

typedef struct conn_state {
    ag_buf_t body;
    bool too_big;
    bool counted; /* counted in inflight */
} conn_state_t;

const char *ag_http_param_n(const ag_http_req_t *r, const char *key, size_t *len)
{
    for (size_t i = 0; i < r->nparams; i++) {
        if (strcmp(r->params[i].key, key) == 0) {
            *len = r->params[i].value_len;
            return r->params[i].value;
        }
    }
    *len = 0;
    return NULL;
}

const char *ag_http_param(const ag_http_req_t *r, const char *key)
{
    size_t len;
    return ag_http_param_n(r, key, &len);
}

void ag_http_resp_header(ag_http_resp_t *r, const char *name, const char *value)
{
    if (r->nheaders >= AG_HTTP_MAX_HEADERS) return;
    snprintf(r->headers[r->nheaders].name, sizeof r->headers[0].name, "%s", name);
    snprintf(r->headers[r->nheaders].value, sizeof r->headers[0].value, "%s", value);
    r->nheaders++;
}

/* ---- parameters -------------------------------------------------------------------------- */

typedef struct params {
    ag_http_param_t *v;
    size_t n, cap;
    bool oom;
} params_t;

static void params_add(params_t *p, const char *k, size_t kl, const char *v, size_t vl)
{
    if (p->oom) return;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        ag_http_param_t *n = realloc(p->v, cap * sizeof *n);
        if (!n) {
            p->oom = true;
            return;
        }
        p->v = n;
        p->cap = cap;
    }
    char *ks = strndup(k, kl), *vs = malloc(vl + 1);
    if (vs) {
        if (v && vl) memcpy(vs, v, vl);
        vs[vl] = 0;
    }
    if (!ks || !vs) {
        free(ks);
        free(vs);
        p->oom = true;
        return;
    }
    p->v[p->n].key = ks;
    p->v[p->n].value = vs;
    p->v[p->n].value_len = v ? vl : 0;
    p->n++;
}

static void params_free(params_t *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].key);
        free(p->v[i].value);
    }
    free(p->v);
}

static enum MHD_Result get_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    params_add(cls, key, key_size, value, value ? value_size : 0);
    return MHD_YES;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes application/x-www-form-urlencoded in place; returns the new length. */
static size_t urldecode(char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            s[w++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            s[w++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            s[w++] = s[i];
        }
    }
    return w;
}

static void parse_form(params_t *p, const char *body, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy) {
        p->oom = true;
        return;
    }
    memcpy(copy, body, len);
    copy[len] = 0;
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && copy[end] != '&') end++;
        char *tok = copy + i;
        size_t tl = end - i;
        char *eq = memchr(tok, '=', tl);
        size_t kl = eq ? (size_t)(eq - tok) : tl;
        char *v = eq ? eq + 1 : tok + tl;
        size_t vl = eq ? tl - kl - 1 : 0;
        kl = urldecode(tok, kl);
        vl = urldecode(v, vl);
        if (kl) params_add(p, tok, kl, v, vl);
        i = end + 1;
    }
    free(copy);
}

/* ---- responses --------------------------------------------------------------------------- */

static bool accepts_gzip(const char *ae)
{
    if (!ae) return false;
    const char *p = strstr(ae, "gzip");
    if (!p) return false;
    /* Honour an explicit "gzip;q=0". */
    const char *q = p + 4;
    while (*q == ' ') q++;
    if (*q == ';') {
        q++;
        while (*q == ' ') q++;
        if (strncmp(q, "q=0", 3) == 0 && (q[3] == 0 || q[3] == ',' || q[3] == ' ' ||
                                          (q[3] == '.' && strspn(q + 4, "0") > 0 &&
                                           (q[4 + strspn(q + 4, "0")] == 0 ||
                                            q[4 + strspn(q + 4, "0")] == ','))))
            return false;
    }
    return true;
}

static bool gzip_buf(const ag_buf_t *in, ag_buf_t *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return false;
    uLong bound = deflateBound(&z, (uLong)in->len);
    if (!ag_buf_reserve(out, bound + 32)) {
        deflateEnd(&z);
        return false;
    }
    z.next_in = (Bytef *)in->data;
    z.avail_in = (uInt)in->len;
    z.next_out = (Bytef *)out->data;
    z.avail_out = (uInt)(out->cap - 1);
    int rc = deflate(&z, Z_FINISH);
    out->len = z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END;
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, ag_http_resp_t *r,
                                 const char *accept_encoding, bool close_conn)
{
    ag_buf_t gz = AG_BUF_INIT;
    ag_buf_t *body = &r->body;
    bool gzipped = false;
    if (body->len > 1024 && accepts_gzip(accept_encoding) && gzip_buf(body, &gz)) {
        body = &gz;
        gzipped = true;
    }
    size_t len;
    char *data = ag_buf_steal(body, &len);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, data ? data : (char *)"", data ? MHD_RESPMEM_MUST_FREE
                                                                           : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(data);
        ag_buf_free(&gz);
        return MHD_NO;
    }
    if (r->status != 204)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r->content_type ? r->content_type : "application/json");
    if (gzipped) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    MHD_add_response_header(resp, "Vary", "Accept-Encoding");
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    for (int i = 0; i < r->nheaders; i++)
        MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
    if (close_conn) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    ag_buf_free(&gz);
    ag_buf_free(&r->body);
    return ret;
}

static enum MHD_Result simple(struct MHD_Connection *conn, int status, const char *text)
{
    ag_http_resp_t r;
    memset(&r, 0, sizeof r);
    r.status = status;
    r.content_type = "text/plain; charset=utf-8";
    ag_buf_puts(&r.body, text);
    return send_resp(conn, &r, NULL, true);
}

/* ---- request handling -------------------------------------------------------------------- */

static const char *header(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v ? v : "";
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    ag_http_server_t *s = cls;
    conn_state_t *st = *con_cls;
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st) return MHD_NO;
        *con_cls = st;
        atomic_fetch_add(&s->inflight, 1);
        st->counted = true;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!st->too_big) {
            if (st->body.len + *upload_size > atomic_load(&s->max_body)) {
                st->too_big = true;
                ag_buf_free(&st->body);
            } else {
                ag_buf_append(&st->body, upload, *upload_size);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (atomic_load(&s->stopping)) return simple(conn, 503, "Service Unavailable: shutting down\n");
    if (!ag_buf_ok(&st->body)) return simple(conn, 500, "out of memory reading the body\n");

    params_t p = {0};
    MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, get_arg, &p);
    ag_http_req_t req;
    memset(&req, 0, sizeof req);
    req.method = method;
    req.path = url;
    req.content_type = header(conn, MHD_HTTP_HEADER_CONTENT_TYPE);
    req.content_encoding = header(conn, MHD_HTTP_HEADER_CONTENT_ENCODING);
    req.accept_encoding = header(conn, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    req.body = st->body.data ? st->body.data : "";
    req.body_len = st->body.len;
    req.body_too_large = st->too_big;
    req.max_body = atomic_load(&s->max_body);
    if (!st->too_big && strcmp(method, "POST") == 0 &&
        strncasecmp(req.content_type, "application/x-www-form-urlencoded", 33) == 0)
        parse_form(&p, req.body, req.body_len);
    if (p.oom) {
        params_free(&p);
        return simple(conn, 500, "out of memory parsing parameters\n");
    }
    req.params = p.v;
    req.nparams = p.n;

    ag_http_resp_t resp;
    memset(&resp, 0, sizeof resp);
    resp.status = 200;
    s->fn(s->ctx, &req, &resp);
    enum MHD_Result ret;
    if (!ag_buf_ok(&resp.body)) {
        ag_buf_free(&resp.body);
        ret = simple(conn, 500, "out of memory building the response\n");
    } else {
        ret = send_resp(conn, &resp, req.accept_encoding, false);
    }
    params_free(&p);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn, (void)toe;
    ag_http_server_t *s = cls;
    conn_state_t *st = *con_cls;
    if (!st) return;
    if (st->counted) atomic_fetch_sub(&s->inflight, 1);
    ag_buf_free(&st->body);
    free(st);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    for (char *q = msg; *q; q++)
        if (*q == '"') *q = '\'';
    AG_DEBUG("\"http: %s\"", msg);
}

int ag_http_start(const char *listen, uint64_t max_body, ag_http_handler_fn fn, void *ctx,
                  ag_http_server_t **out, ag_errmsg_t *e)
{
    *out = NULL;
    const char *colon = strrchr(listen, ':');
    if (!colon || !colon[1])
        return ag_errmsg_set(e, AG_EINVAL, -1, "listen address \"%s\" is not host:port", listen);
    char host[256];
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host) return ag_errmsg_set(e, AG_EINVAL, -1, "listen address too long");
    memcpy(host, listen, hl);
    host[hl] = 0;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (gai || !ai)
        return ag_errmsg_set(e, AG_EINVAL, -1, "cannot resolve listen address \"%s\": %s", listen,
                             gai_strerror(gai));
    /* Prefer IPv4 for an empty host or a name that resolves to both. */
    struct addrinfo *pick = ai;
    for (struct addrinfo *a = ai; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    ag_http_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        freeaddrinfo(ai);
        return AG_ENOMEM;
    }
    s->fn = fn;
    s->ctx = ctx;
    atomic_store(&s->max_body, max_body);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (pick->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
                              mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
                              pick->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                              MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    int err = errno;
    freeaddrinfo(ai);
    if (!s->mhd) {
        free(s);
        return ag_errmsg_set(e, AG_EIO, -1, "cannot listen on %s: %s", listen,
                             err ? strerror(err) : "libmicrohttpd failed to start");
    }
    *out = s;
    return AG_OK;
}

void ag_http_set_max_body(ag_http_server_t *s, uint64_t max_body)
{
    atomic_store(&s->max_body, max_body);
}

void ag_http_stop(ag_http_server_t *s, int grace_ms)
{
    if (!s) return;
    MHD_socket fd = MHD_quiesce_daemon(s->mhd);
    if (fd != MHD_INVALID_SOCKET) close(fd);
    atomic_store(&s->stopping, true);
    /* Requests already being handled finish and get their answer; idle keep-alive
     * connections hold a counted state only while a request is open on them. */
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (int waited = 0; atomic_load(&s->inflight) > 0 && waited < grace_ms; waited += 10)
        nanosleep(&ts, NULL);
    MHD_stop_daemon(s->mhd);
    free(s);
}
