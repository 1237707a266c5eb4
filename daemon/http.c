/* http.c - the HTTP server on libmicrohttpd (see ag_http.h).
 *
 * Design: libmicrohttpd runs an event loop per CPU (MHD_USE_EPOLL_INTERNAL_THREAD, or poll where
 * epoll is missing, with MHD_OPTION_THREAD_POOL_SIZE = online CPUs) that only moves bytes: it
 * parses requests, collects bodies and writes responses for up to CONN_LIMIT connections. Handlers
 * never run on those threads, because they may block (remote write waits for its fsync'd group
 * commit, a heavy query can take seconds) and would stall every connection of that loop. Once a
 * request's body is complete the event thread fills in a flat ag_http_req_t, suspends the
 * connection (MHD_suspend_connection) and queues it for one of two pools ("lanes") of our own
 * worker threads, each a queue behind a mutex and condition variable: remote write, the /-/
 * probes and /metrics go to the ingest lane (max(16, 4 x CPUs) workers, mostly waiting for group
 * commits), everything else to the query lane (max(8, 4 x CPUs)), so that slow queries filling
 * every query worker never delay ingest or an orchestrator's probes. A worker runs the handler,
 * turns its ag_http_resp_t into an MHD response (gzip-compressing bodies over 1 KiB when the
 * client sent Accept-Encoding: gzip), stores it in the connection state and resumes the
 * connection; libmicrohttpd then calls the access handler again, which queues the stored answer.
 * The previous model, a thread per connection, gave 1,000 dashboard connections 1,000 threads
 * on 2 cores and a scheduling tail of over 100 ms at p99; now the thread count is fixed.
 *
 * Ownership: the connection state (conn_state_t) is created on the first access-handler call and
 * freed by on_completed. While a request is queued or running on a worker its connection is
 * suspended, and libmicrohttpd neither times out nor closes suspended connections (it does not
 * even notice a client that went away), so on_completed cannot run then. The worker owns the
 * state from the suspension until its MHD_resume_connection call, its last access to it.
 *
 * Each request's body is collected into a buffer capped at max_body; past the cap the rest is
 * discarded and the answer is 413. Answers produced on the event thread itself (503 while
 * stopping, 500 when out of memory) are the only ones that do not go through the pool.
 *
 * Shutdown: ag_http_stop closes the listening socket first, marks the server as stopping (new
 * requests on kept-alive connections get 503 and Connection: close), waits up to the grace
 * period for in-flight requests to complete their responses, then closes the queues and joins the
 * workers (they finish what was queued, so every suspended connection has been resumed: libmicro-
 * httpd must not be stopped with suspended connections) and only then stops libmicrohttpd.
 */
#include "ag_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "ag_log.h"

/* Connections served at once (dashboards keep 1,000 and more open), and file descriptors kept
 * for everything else (LMDB, logs, epoll and event fds). */
#define CONN_LIMIT 4096
#define FD_RESERVE 256

typedef struct conn_state conn_state_t;

/* A worker pool with its own queue: `mu` guards the queue and `closed`. */
typedef struct lane {
    struct ag_http_server *srv;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    conn_state_t *head, *tail; /* requests waiting for a worker, oldest first */
    bool closed;               /* nothing more is queued; workers exit once the queue is empty */
    pthread_t *workers;
    int nworkers;
} lane_t;

/* Remote write, health, readiness and /metrics have a lane of their own, so that slow queries
 * occupying every query worker never hold up ingest or the probes of an orchestrator. */
enum { LANE_QUERY, LANE_INGEST, NLANES };

struct ag_http_server {
    struct MHD_Daemon *mhd;
    ag_http_handler_fn fn;
    void *ctx;
    _Atomic uint64_t max_body;
    _Atomic int inflight;
    _Atomic bool stopping;
    lane_t lanes[NLANES];
};

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

/* One request on a connection (see the ownership note at the top). */
enum { ST_READING, ST_QUEUED, ST_DONE };
struct conn_state {
    ag_buf_t body;
    bool too_big;
    bool counted;                 /* counted in inflight */
    _Atomic int phase;            /* ST_*: reading the body, with a worker, answer ready */
    struct MHD_Connection *conn;
    ag_http_req_t req;            /* what the worker hands to the handler */
    params_t params;
    struct MHD_Response *resp;    /* the worker's answer (NULL: close the connection) */
    unsigned status;
    conn_state_t *next;           /* in the worker queue */
};

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

/* Turns a handler's answer into an MHD response (gzipped when it pays) and frees r->body; NULL
 * when out of memory. Safe on any thread: it does not touch a connection. */
static struct MHD_Response *make_response(ag_http_resp_t *r, const char *accept_encoding,
                                          bool close_conn)
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
        ag_buf_free(&r->body);
        return NULL;
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
    ag_buf_free(&gz);
    ag_buf_free(&r->body);
    return resp;
}

/* A plain-text answer that also closes the connection (errors, shutdown). */
static struct MHD_Response *text_response(int status, const char *text)
{
    ag_http_resp_t r;
    memset(&r, 0, sizeof r);
    r.status = status;
    r.content_type = "text/plain; charset=utf-8";
    ag_buf_puts(&r.body, text);
    return make_response(&r, NULL, true);
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status,
                             struct MHD_Response *resp)
{
    if (!resp) return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result simple(struct MHD_Connection *conn, int status, const char *text)
{
    return queue(conn, (unsigned)status, text_response(status, text));
}

/* ---- request handling -------------------------------------------------------------------- */

static const char *header(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v ? v : "";
}

/* Fills st->req on the event thread; the strings it points to live in the connection's memory,
 * which stays put while the connection is suspended. False when out of memory. */
static bool prepare(ag_http_server_t *s, conn_state_t *st, const char *url, const char *method)
{
    MHD_get_connection_values_n(st->conn, MHD_GET_ARGUMENT_KIND, get_arg, &st->params);
    ag_http_req_t *req = &st->req;
    req->method = method;
    req->path = url;
    req->content_type = header(st->conn, MHD_HTTP_HEADER_CONTENT_TYPE);
    req->content_encoding = header(st->conn, MHD_HTTP_HEADER_CONTENT_ENCODING);
    req->accept_encoding = header(st->conn, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    req->body = st->body.data ? st->body.data : "";
    req->body_len = st->body.len;
    req->body_too_large = st->too_big;
    req->max_body = atomic_load(&s->max_body);
    if (!st->too_big && strcmp(method, "POST") == 0 &&
        strncasecmp(req->content_type, "application/x-www-form-urlencoded", 33) == 0)
        parse_form(&st->params, req->body, req->body_len);
    req->params = st->params.v;
    req->nparams = st->params.n;
    return !st->params.oom;
}

/* Suspends the connection and queues it for a worker; false once the pool is closed. The
 * suspension happens under the queue lock, so no worker can resume the connection before it. */
static bool dispatch(ag_http_server_t *s, conn_state_t *st)
{
    const char *p = st->req.path;
    bool ingest = strcmp(p, "/api/v1/write") == 0 || strncmp(p, "/-/", 3) == 0 ||
                  strcmp(p, "/metrics") == 0;
    lane_t *l = &s->lanes[ingest ? LANE_INGEST : LANE_QUERY];
    pthread_mutex_lock(&l->mu);
    if (l->closed) {
        pthread_mutex_unlock(&l->mu);
        return false;
    }
    atomic_store(&st->phase, ST_QUEUED);
    MHD_suspend_connection(st->conn);
    st->next = NULL;
    if (l->tail) l->tail->next = st;
    else l->head = st;
    l->tail = st;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return true;
}

/* Runs on a worker: the handler, then the MHD response, then the resumption. */
static void run(ag_http_server_t *s, conn_state_t *st)
{
    ag_http_resp_t resp;
    memset(&resp, 0, sizeof resp);
    resp.status = 200;
    s->fn(s->ctx, &st->req, &resp);
    if (!ag_buf_ok(&resp.body)) {
        ag_buf_free(&resp.body);
        st->status = 500;
        st->resp = text_response(500, "out of memory building the response\n");
    } else {
        st->status = (unsigned)resp.status;
        st->resp = make_response(&resp, st->req.accept_encoding, false);
    }
    struct MHD_Connection *conn = st->conn;
    atomic_store(&st->phase, ST_DONE);
    /* The last access to st: once resumed, the event thread may answer and free it. */
    MHD_resume_connection(conn);
}

static void *worker(void *arg)
{
    lane_t *l = arg;
    pthread_setname_np(pthread_self(), "augur-http"); /* as top -H and ps -L show it */
    for (;;) {
        pthread_mutex_lock(&l->mu);
        while (!l->head && !l->closed) pthread_cond_wait(&l->cv, &l->mu);
        conn_state_t *st = l->head;
        if (st) {
            l->head = st->next;
            if (!l->head) l->tail = NULL;
        }
        pthread_mutex_unlock(&l->mu);
        if (!st) return NULL;
        run(l->srv, st);
    }
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
        st->conn = conn;
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
    switch (atomic_load(&st->phase)) {
    case ST_DONE: { /* called again after the worker resumed us: send its answer */
        struct MHD_Response *r = st->resp;
        st->resp = NULL;
        return queue(conn, st->status, r);
    }
    case ST_QUEUED: return MHD_YES; /* not expected: the connection is suspended meanwhile */
    default: break;
    }
    static const char shutting_down[] = "Service Unavailable: shutting down\n";
    if (atomic_load(&s->stopping)) return simple(conn, 503, shutting_down);
    if (!ag_buf_ok(&st->body)) return simple(conn, 500, "out of memory reading the body\n");
    if (!prepare(s, st, url, method)) return simple(conn, 500, "out of memory parsing parameters\n");
    if (!dispatch(s, st)) return simple(conn, 503, shutting_down); /* the pool closed meanwhile */
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn, (void)toe;
    ag_http_server_t *s = cls;
    conn_state_t *st = *con_cls;
    if (!st) return;
    if (st->counted) atomic_fetch_sub(&s->inflight, 1);
    if (st->resp) MHD_destroy_response(st->resp); /* resumed, but the client had gone */
    params_free(&st->params);
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

/* Makes room for `want` connections in RLIMIT_NOFILE, raising the soft limit (as far as the
 * hard limit allows) when it is too low; returns how many connections fit. */
static unsigned conn_budget(unsigned want)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)want + FD_RESERVE;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return want;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ? rl.rlim_max : need;
    if (rl.rlim_cur > was && setrlimit(RLIMIT_NOFILE, &rl) == 0)
        AG_INFO("\"raised the open-file limit\" from=%llu to=%llu", (unsigned long long)was,
                (unsigned long long)rl.rlim_cur);
    else
        rl.rlim_cur = was;
    if (rl.rlim_cur >= need) return want;
    unsigned fit = rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)(rl.rlim_cur - FD_RESERVE)
                                                : (unsigned)(rl.rlim_cur / 2);
    AG_WARN("\"open-file limit too low, serving fewer connections\" limit=%llu connections=%u",
            (unsigned long long)rl.rlim_cur, fit);
    return fit;
}

/* Closes the queues and joins the workers; they first run every request still queued. */
static void pool_stop(ag_http_server_t *s)
{
    for (int i = 0; i < NLANES; i++) {
        lane_t *l = &s->lanes[i];
        pthread_mutex_lock(&l->mu);
        l->closed = true;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
    for (int i = 0; i < NLANES; i++) {
        lane_t *l = &s->lanes[i];
        for (int k = 0; k < l->nworkers; k++) pthread_join(l->workers[k], NULL);
        l->nworkers = 0;
    }
}

static void server_free(ag_http_server_t *s)
{
    pool_stop(s);
    for (int i = 0; i < NLANES; i++) {
        pthread_cond_destroy(&s->lanes[i].cv);
        pthread_mutex_destroy(&s->lanes[i].mu);
        free(s->lanes[i].workers);
    }
    free(s);
}

/* Starts a lane's workers; on failure the caller frees the server (which joins those started). */
static int lane_start(ag_http_server_t *s, lane_t *l, int nworkers, ag_errmsg_t *e)
{
    if (!(l->workers = calloc((size_t)nworkers, sizeof *l->workers))) return AG_ENOMEM;
    for (; l->nworkers < nworkers; l->nworkers++) {
        int rc = pthread_create(&l->workers[l->nworkers], NULL, worker, l);
        if (rc)
            return ag_errmsg_set(e, AG_EIO, -1, "cannot start HTTP worker threads: %s",
                                 strerror(rc));
    }
    return AG_OK;
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
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1) ncpu = 1;
    if (ncpu > 64) ncpu = 64;
    /* Query workers: enough to keep the CPUs busy while some wait on the disk. Ingest workers
     * mostly wait for a group commit, and the more requests wait on one commit the more it
     * carries, so there are more of them (Prometheus runs up to 50 shards per remote). */
    int nquery = 4 * (int)ncpu > 8 ? 4 * (int)ncpu : 8;
    int ningest = 4 * (int)ncpu > 16 ? 4 * (int)ncpu : 16;
    ag_http_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        freeaddrinfo(ai);
        return AG_ENOMEM;
    }
    s->fn = fn;
    s->ctx = ctx;
    atomic_store(&s->max_body, max_body);
    for (int i = 0; i < NLANES; i++) {
        s->lanes[i].srv = s;
        pthread_mutex_init(&s->lanes[i].mu, NULL);
        pthread_cond_init(&s->lanes[i].cv, NULL);
    }
    int lrc = lane_start(s, &s->lanes[LANE_QUERY], nquery, e);
    if (!lrc) lrc = lane_start(s, &s->lanes[LANE_INGEST], ningest, e);
    if (lrc) {
        freeaddrinfo(ai);
        server_free(s);
        return lrc == AG_ENOMEM ? ag_errmsg_set(e, AG_ENOMEM, -1, "out of memory") : lrc;
    }
    unsigned flags = MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME |
                     (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES
                          ? MHD_USE_EPOLL_INTERNAL_THREAD
                          : MHD_USE_POLL_INTERNAL_THREAD);
    if (pick->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    errno = 0;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
                              mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
                              pick->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
                              MHD_OPTION_CONNECTION_LIMIT, conn_budget(CONN_LIMIT),
                              MHD_OPTION_THREAD_POOL_SIZE, (unsigned)ncpu,
                              /* SO_REUSEADDR only (a restart binds at once), never SO_REUSEPORT:
                               * a second augurd on the same address must fail, not share it */
                              MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)0, MHD_OPTION_END);
    int err = errno;
    freeaddrinfo(ai);
    if (!s->mhd) {
        server_free(s);
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
    /* Every queued or running request resumes its connection before its worker exits, and
     * libmicrohttpd must not be stopped while a connection is suspended. */
    pool_stop(s);
    MHD_stop_daemon(s->mhd);
    server_free(s);
}
