/* loadgen.c - a remote-write load generator shaped like node_exporter traffic.
 *
 * N series, each with M samples at a fixed interval, sent as Remote-Write 1.0 requests of up to
 * B samples over C keep-alive connections. Like Prometheus' shards, connection c owns the series
 * with index % C == c and sends them in time order, so every request is in order per series.
 * Values mimic node_exporter: about a third integer counters, a third counters with fractional
 * seconds, a third gauges with few decimal digits. Prints throughput, request latency
 * percentiles and failures. Used by `make bench`; talks to 127.0.0.1 only.
 *
 * Series s is <prefix>_<s % K>_total{cpu="<s % 8>", instance="host-<s / K>:9100", job="node"}
 * (prefix "node_metric", K = 97 names by default; --names 1 puts every series in one metric).
 *
 * usage: loadgen --port P [--series 10000] [--samples 120] [--interval-ms 15000]
 *                [--batch 2000] [--conns 4] [--start-ms T] [--names 97] [--prefix node_metric]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <snappy-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "remote.pb-c.h"

typedef struct cfg {
    int port;
    long series, samples, batch, conns;
    int64_t interval_ms, start_ms;
    long names;         /* distinct metric names (series s is <prefix>_<s % names>_total) */
    const char *prefix;
} cfg_t;

typedef struct worker {
    const cfg_t *cfg;
    int idx;
    long requests, failures;
    uint64_t samples;
    double *lat;
    size_t nlat, cap;
} worker_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_local(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends one request on a keep-alive connection; returns the HTTP status or -1. */
static int post(int fd, int port, const char *body, size_t len)
{
    char hdr[512];
    int hl = snprintf(hdr, sizeof hdr,
                      "POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n"
                      "X-Prometheus-Remote-Write-Version: 0.1.0\r\nUser-Agent: augur-loadgen\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      port, len);
    if (write_all(fd, hdr, (size_t)hl) || write_all(fd, body, len)) return -1;
    char buf[8192];
    size_t got = 0;
    char *end = NULL;
    while (!(end = memmem(buf, got, "\r\n\r\n", 4))) {
        if (got == sizeof buf) return -1;
        ssize_t r = read(fd, buf + got, sizeof buf - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) return -1;
    long clen = 0;
    char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (cl && cl < end) clen = strtol(cl + 17, NULL, 10);
    size_t have = got - (size_t)(end + 4 - buf);
    while ((long)have < clen) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0) return -1;
        have += (size_t)r;
    }
    return status;
}

static double value_for(long series, long step)
{
    switch (series % 3) {
    case 0: return (double)(step * (series % 17 + 1)) + (double)(series * 7);           /* counter */
    case 1: return round((double)step * 15.37 * 100.0 + (double)series) / 100.0;        /* cpu secs */
    default: return round(5000.0 + 1000.0 * sin((double)(step + series) / 10.0)) / 100.0; /* gauge */
    }
}

/* ---- request encoding ----------------------------------------------------------------------
 * Requests are written straight into protobuf bytes: each series' labels are encoded once, and a
 * request only adds the framing and one Sample per series. This keeps the generator's own CPU
 * small (it shares the machine with the server it measures). The first request of every
 * connection is also packed by protobuf-c and must come out byte for byte the same. */

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
} wbuf_t;

static void wb_need(wbuf_t *b, size_t n)
{
    if (b->len + n <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
    b->cap = cap;
}

static void wb_varint(wbuf_t *b, uint64_t v)
{
    wb_need(b, 10);
    while (v >= 0x80) {
        b->p[b->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->p[b->len++] = (uint8_t)v;
}

static void wb_bytes(wbuf_t *b, const void *p, size_t n)
{
    wb_need(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void series_label_values(const cfg_t *c, long s, char v[3][64])
{
    snprintf(v[0], 64, "%.24s_%ld_total", c->prefix, s % c->names);
    snprintf(v[1], 64, "host-%ld:9100", s / c->names);
    snprintf(v[2], 64, "%ld", s % 8);
}

static const char *const label_names[4] = {"__name__", "cpu", "instance", "job"};

/* The TimeSeries field 1 entries (Label messages) of series s. */
static void encode_labels(const cfg_t *c, long s, wbuf_t *b)
{
    char v[3][64];
    series_label_values(c, s, v);
    const char *vals[4] = {v[0], v[2], v[1], "node"};
    for (int k = 0; k < 4; k++) {
        size_t nl = strlen(label_names[k]), vl = strlen(vals[k]);
        size_t inner = 1 + varint_len(nl) + nl + 1 + varint_len(vl) + vl;
        wb_varint(b, 0x0a); /* TimeSeries.labels, LEN */
        wb_varint(b, inner);
        wb_varint(b, 0x0a); /* Label.name */
        wb_varint(b, nl);
        wb_bytes(b, label_names[k], nl);
        wb_varint(b, 0x12); /* Label.value */
        wb_varint(b, vl);
        wb_bytes(b, vals[k], vl);
    }
}

/* One TimeSeries (WriteRequest field 1) with its pre-encoded labels and one sample. proto3
 * leaves out fields that hold their zero value, as protobuf-c does. */
static void encode_series(wbuf_t *b, const uint8_t *labels, size_t llen, int64_t t, double v)
{
    uint64_t vbits;
    memcpy(&vbits, &v, 8);
    size_t smp = (vbits ? 9 : 0) + (t ? 1 + varint_len((uint64_t)t) : 0);
    size_t ts = llen + 1 + varint_len(smp) + smp;
    wb_varint(b, 0x0a);
    wb_varint(b, ts);
    wb_bytes(b, labels, llen);
    wb_varint(b, 0x12); /* TimeSeries.samples */
    wb_varint(b, smp);
    if (vbits) {
        uint8_t f[9] = {0x09};
        for (int i = 0; i < 8; i++) f[1 + i] = (uint8_t)(vbits >> (8 * i));
        wb_bytes(b, f, 9);
    }
    if (t) {
        wb_varint(b, 0x10);
        wb_varint(b, (uint64_t)t);
    }
}

/* protobuf-c's packing of the same request (series s0, s0 + conns, ... n of them). */
static size_t pack_reference(const cfg_t *c, long s0, long n, long step, uint8_t **out)
{
    Augur__Remote__TimeSeries *ts = calloc((size_t)n, sizeof *ts);
    Augur__Remote__TimeSeries **tsp = calloc((size_t)n, sizeof *tsp);
    Augur__Remote__Sample *smp = calloc((size_t)n, sizeof *smp);
    Augur__Remote__Sample **smpp = calloc((size_t)n, sizeof *smpp);
    Augur__Remote__Label *lab = calloc((size_t)n * 4, sizeof *lab);
    Augur__Remote__Label **labp = calloc((size_t)n * 4, sizeof *labp);
    char(*strs)[3][64] = calloc((size_t)n, sizeof *strs);
    for (long i = 0; i < n; i++) {
        long s = s0 + i * c->conns;
        series_label_values(c, s, strs[i]);
        const char *vals[4] = {strs[i][0], strs[i][2], strs[i][1], "node"};
        for (int k = 0; k < 4; k++) {
            Augur__Remote__Label *l = &lab[i * 4 + k];
            augur__remote__label__init(l);
            l->name.data = (uint8_t *)label_names[k];
            l->name.len = strlen(label_names[k]);
            l->value.data = (uint8_t *)vals[k];
            l->value.len = strlen(vals[k]);
            labp[i * 4 + k] = l;
        }
        augur__remote__sample__init(&smp[i]);
        smp[i].timestamp = c->start_ms + step * c->interval_ms;
        smp[i].value = value_for(s, step);
        smpp[i] = &smp[i];
        augur__remote__time_series__init(&ts[i]);
        ts[i].n_labels = 4;
        ts[i].labels = &labp[i * 4];
        ts[i].n_samples = 1;
        ts[i].samples = &smpp[i];
        tsp[i] = &ts[i];
    }
    Augur__Remote__WriteRequest wr;
    augur__remote__write_request__init(&wr);
    wr.n_timeseries = (size_t)n;
    wr.timeseries = tsp;
    size_t len = augur__remote__write_request__get_packed_size(&wr);
    *out = malloc(len ? len : 1);
    augur__remote__write_request__pack(&wr, *out);
    free(ts);
    free(tsp);
    free(smp);
    free(smpp);
    free(lab);
    free(labp);
    free(strs);
    return len;
}

static void *run_worker(void *arg)
{
    worker_t *w = arg;
    const cfg_t *c = w->cfg;
    int fd = connect_local(c->port);
    if (fd < 0) {
        fprintf(stderr, "loadgen: cannot connect to 127.0.0.1:%d\n", c->port);
        w->failures++;
        return NULL;
    }
    long mine = 0;
    for (long s = w->idx; s < c->series; s += c->conns) mine++;
    long per_req = c->batch < mine ? c->batch : mine;
    if (per_req < 1) per_req = 1;
    /* Every owned series' labels, encoded once: off[i] .. off[i + 1] in lab. */
    wbuf_t lab = {0}, req = {0};
    size_t *off = calloc((size_t)mine + 1, sizeof *off);
    for (long i = 0; i < mine; i++) {
        off[i] = lab.len;
        encode_labels(c, w->idx + i * c->conns, &lab);
    }
    off[mine] = lab.len;
    size_t ccap = 0;
    char *comp = NULL;
    bool checked = false;
    for (long step = 0; step < c->samples; step++) {
        int64_t t = c->start_ms + step * c->interval_ms;
        long i = 0;
        while (i < mine) {
            long first = i, n = 0;
            req.len = 0;
            for (; n < per_req && i < mine; n++, i++)
                encode_series(&req, lab.p + off[i], off[i + 1] - off[i], t,
                              value_for(w->idx + i * c->conns, step));
            if (!checked) {
                uint8_t *ref;
                size_t rlen = pack_reference(c, w->idx + first * c->conns, n, step, &ref);
                if (rlen != req.len || memcmp(ref, req.p, rlen) != 0) {
                    fprintf(stderr, "loadgen: request encoding differs from protobuf-c's\n");
                    exit(1);
                }
                free(ref);
                checked = true;
            }
            size_t need = snappy_max_compressed_length(req.len);
            if (need > ccap) {
                free(comp);
                ccap = need;
                comp = malloc(ccap);
                if (!comp) {
                    fprintf(stderr, "loadgen: out of memory\n");
                    exit(1);
                }
            }
            size_t clen = ccap;
            snappy_compress((char *)req.p, req.len, comp, &clen);
            double t0 = now_s();
            int st = post(fd, c->port, comp, clen);
            double dt = now_s() - t0;
            if (st < 0) {
                close(fd);
                fd = connect_local(c->port);
                if (fd < 0) break;
            }
            w->requests++;
            if (st / 100 != 2) w->failures++;
            else w->samples += (uint64_t)n;
            if (w->nlat == w->cap) {
                w->cap = w->cap ? w->cap * 2 : 1024;
                w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
            }
            w->lat[w->nlat++] = dt;
        }
        if (fd < 0) break;
    }
    if (fd >= 0) close(fd);
    free(off);
    free(lab.p);
    free(req.p);
    free(comp);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    cfg_t c = {0, 10000, 120, 2000, 4, 15000, 0, 97, "node_metric"};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--port")) c.port = atoi(v);
        else if (!strcmp(k, "--series")) c.series = atol(v);
        else if (!strcmp(k, "--samples")) c.samples = atol(v);
        else if (!strcmp(k, "--batch")) c.batch = atol(v);
        else if (!strcmp(k, "--conns")) c.conns = atol(v);
        else if (!strcmp(k, "--interval-ms")) c.interval_ms = atoll(v);
        else if (!strcmp(k, "--start-ms")) c.start_ms = atoll(v);
        else if (!strcmp(k, "--names")) c.names = atol(v);
        else if (!strcmp(k, "--prefix")) c.prefix = v;
        else {
            fprintf(stderr, "loadgen: unknown option %s\n", k);
            return 2;
        }
    }
    if (!c.port || c.conns < 1 || c.series < 1 || c.names < 1) {
        fprintf(stderr, "usage: loadgen --port P [--series N] [--samples M] [--batch B] "
                        "[--conns C] [--interval-ms I] [--start-ms T] [--names K] "
                        "[--prefix NAME]\n");
        return 2;
    }
    if (!c.start_ms) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        c.start_ms = ((int64_t)ts.tv_sec * 1000 - c.samples * c.interval_ms) / 1000 * 1000;
    }
    worker_t *w = calloc((size_t)c.conns, sizeof *w);
    pthread_t *th = calloc((size_t)c.conns, sizeof *th);
    double t0 = now_s();
    for (long i = 0; i < c.conns; i++) {
        w[i].cfg = &c;
        w[i].idx = (int)i;
        pthread_create(&th[i], NULL, run_worker, &w[i]);
    }
    long reqs = 0, fails = 0;
    uint64_t samples = 0;
    size_t nlat = 0;
    for (long i = 0; i < c.conns; i++) {
        pthread_join(th[i], NULL);
        reqs += w[i].requests;
        fails += w[i].failures;
        samples += w[i].samples;
        nlat += w[i].nlat;
    }
    double el = now_s() - t0;
    double *all = malloc((nlat ? nlat : 1) * sizeof *all);
    size_t k = 0;
    for (long i = 0; i < c.conns; i++) {
        memcpy(all + k, w[i].lat, w[i].nlat * sizeof *all);
        k += w[i].nlat;
        free(w[i].lat);
    }
    qsort(all, nlat, sizeof *all, cmp_d);
    double p50 = nlat ? all[nlat / 2] : 0, p99 = nlat ? all[(size_t)((double)nlat * 0.99)] : 0;
    printf("samples=%llu requests=%ld failures=%ld seconds=%.3f samples_per_second=%.0f "
           "p50_ms=%.2f p99_ms=%.2f\n",
           (unsigned long long)samples, reqs, fails, el, (double)samples / el, p50 * 1000,
           p99 * 1000);
    free(all);
    free(w);
    free(th);
    return fails ? 1 : 0;
}
