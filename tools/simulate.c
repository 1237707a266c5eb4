/* simulate.c - `augur simulate`: replays a scaling policy over a load history (a
 * timestamp,value CSV) and compares it with the reactive HPA-style policy (ag_scaler.h).
 *
 * The load is read at its own timestamps and interpolated linearly onto a clock that ticks every
 * policy interval (the HPA's sync period, 15 s by default). At each tick both policies decide a
 * replica count from what they can know then: the predictive one (the daemon's ag_scaler) from
 * the load up to now and its forecast over the lead time, the reactive one from the current
 * utilisation of its ready replicas only. Replicas asked for become ready `lead` later
 * (a pod created at t serves from t + lead; removed ones stop at once), so the replicas ready at
 * t are the smallest count desired during [t - lead, t]. The load needs ceil(load / (capacity x
 * target)) replicas; each tick adds its share of under-provisioned replica-minutes (needed but
 * not ready), over-provisioned replica-minutes (ready but not needed) and replica-minutes in
 * all; a scaling action is a change of the desired count. The first --skip of the history is
 * replayed without being counted (a warm-up for the model, if wanted).
 */
#include "ag_simulate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ag_csv.h"
#include "ag_scaler.h"
#include "ag_time.h"

static const char *SIM_USAGE =
    "usage: augur simulate --capacity X [--target U] [--lead DUR] [--confidence P]\n"
    "                      [--interval DUR] [--stabilization DUR] [--min N] [--max N]\n"
    "                      [--skip DUR] [--trace] [FILE | --from URL --query EXPR [--range DUR]\n"
    "                      [--step DUR]]\n"
    "\n"
    "Replays the predictive scaling policy augurd runs (forecast over the lead time, upper bound\n"
    "at the confidence, scale-down stabilisation) and a reactive HPA-style policy (15 s sync, 10%\n"
    "tolerance, scale-down stabilisation, ready after the lead time) over a load history and\n"
    "prints, for each, the under-provisioned and over-provisioned replica-minutes, the replica-\n"
    "minutes in all and the scaling actions.\n"
    "\n"
    "  --capacity X        load one replica carries at 100% utilisation (required)\n"
    "  --target U          target utilisation in (0, 1] (default 0.8)\n"
    "  --lead DUR          time a new replica needs to be ready = forecast horizon (default 5m)\n"
    "  --confidence P      probability that the load stays below the bound used (default 0.9)\n"
    "  --interval DUR      evaluation interval of both policies (default 15s)\n"
    "  --stabilization DUR scale-down window of both policies (default 5m)\n"
    "  --min N, --max N    replica bounds (default 1, 100)\n"
    "  --skip DUR          replay the first DUR without counting it (default 0)\n"
    "  --trace             write time,load,needed,predictive_ready,reactive_ready per tick\n"
    "                      instead of the summary\n"
    "  --from URL          read the load from a running augurd (or Prometheus) instead of a\n"
    "                      CSV: EXPR over the last --range (default 7d) at --step (default 1m)\n"
    "                      through /api/v1/query_range, its series summed\n";

typedef struct {
    int64_t *t;
    double *v;
    size_t n, cap;
} series_t;

static int read_series(const char *file, series_t *s)
{
    FILE *in = stdin;
    const char *name = file ? file : "<stdin>";
    if (file && strcmp(file, "-") != 0 && !(in = fopen(file, "r"))) {
        fprintf(stderr, "augur: %s: %s\n", file, strerror(errno));
        return 2;
    }
    ag_csv_t csv;
    ag_csv_init(&csv);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    int status = 0;
    while ((n = getline(&line, &lcap, in)) > 0) {
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n') len--;
        ag_csv_row_t row;
        ag_errmsg_t e = {{0}, -1};
        int rc = ag_csv_line(&csv, line, len, &row, &e);
        if (rc < 0) {
            fprintf(stderr, "augur: %s: %s\n", name, e.msg);
            status = 1;
            break;
        }
        if (rc == 0) continue;
        if (s->n && row.t_ms <= s->t[s->n - 1]) continue; /* not after the previous: skipped */
        if (s->n == s->cap) {
            size_t nc = s->cap ? s->cap * 2 : 4096;
            int64_t *nt = realloc(s->t, nc * sizeof *nt);
            if (nt) s->t = nt;
            double *nv = realloc(s->v, nc * sizeof *nv);
            if (nv) s->v = nv;
            if (!nt || !nv) {
                fprintf(stderr, "augur: out of memory\n");
                status = 1;
                break;
            }
            s->cap = nc;
        }
        s->t[s->n] = row.t_ms;
        s->v[s->n++] = row.v;
    }
    if (!status && ferror(in)) {
        fprintf(stderr, "augur: %s: read error\n", name);
        status = 1;
    }
    if (!status) {
        ag_errmsg_t e = {{0}, -1};
        if (ag_csv_finish(&csv, &e)) {
            fprintf(stderr, "augur: %s: %s\n", name, e.msg);
            status = 1;
        } else if (s->n < 2) {
            fprintf(stderr, "augur: %s: needs at least two rows\n", name);
            status = 1;
        }
    }
    free(line);
    if (in != stdin) fclose(in);
    return status;
}

/* Desired counts over the last lead time, for "ready = the smallest desired since t - lead". */
typedef struct {
    int64_t *t;
    uint32_t *v;
    size_t cap, head, n;
} hist_t;

static int hist_init(hist_t *h, size_t cap)
{
    h->cap = cap;
    h->head = h->n = 0;
    h->t = calloc(cap, sizeof *h->t);
    h->v = calloc(cap, sizeof *h->v);
    return h->t && h->v ? 0 : -1;
}

static uint32_t hist_ready(hist_t *h, int64_t t, uint32_t desired, int64_t lead)
{
    h->t[h->head] = t;
    h->v[h->head] = desired;
    h->head = (h->head + 1) % h->cap;
    if (h->n < h->cap) h->n++;
    uint32_t r = desired;
    for (size_t i = 0; i < h->n; i++) {
        size_t k = (h->head + h->cap - 1 - i) % h->cap;
        if (h->t[k] < t - lead) break;
        if (h->v[k] < r) r = h->v[k];
    }
    return r;
}

typedef struct {
    double under, over, total;
    long actions;
    uint32_t last;
} tally_t;

static void tally(tally_t *a, uint32_t ready, uint32_t need, uint32_t desired, double minutes,
                  bool count)
{
    if (count) {
        if (need > ready) a->under += (need - ready) * minutes;
        if (ready > need) a->over += (ready - need) * minutes;
        a->total += ready * minutes;
        if (desired != a->last) a->actions++;
    }
    a->last = desired;
}

static int parse_u32(const char *opt, const char *s, uint32_t *out)
{
    char *end;
    if (!s) return fprintf(stderr, "augur: %s needs a value\n", opt), 2;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v > 1000000) {
        fprintf(stderr, "augur: %s: \"%s\" is not a whole number up to 1000000\n", opt, s);
        return 2;
    }
    *out = (uint32_t)v;
    return 0;
}

static int parse_num(const char *opt, const char *s, double *out)
{
    char *end;
    if (!s) return fprintf(stderr, "augur: %s needs a value\n", opt), 2;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v)) {
        fprintf(stderr, "augur: %s: \"%s\" is not a number\n", opt, s);
        return 2;
    }
    *out = v;
    return 0;
}

static int parse_duration0(const char *opt, const char *s, int64_t *out)
{
    ag_errmsg_t e = {{0}, -1};
    if (!s) return fprintf(stderr, "augur: %s needs a value\n", opt), 2;
    if (strcmp(s, "0") == 0) return *out = 0, 0;
    if (ag_parse_duration(s, out, &e) || *out < 0) {
        fprintf(stderr, "augur: %s: bad duration \"%s\" (e.g. 30s, 5m, 1h)\n", opt, s);
        return 2;
    }
    return 0;
}

/* ---- --from: the load from a Prometheus-compatible API ------------------------------------- */

static size_t collect(char *p, size_t size, size_t n, void *ctx)
{
    ag_buf_append(ctx, p, size * n);
    return size * n;
}

/* Adds the points of every "values":[[t,"v"],...] array in a query_range answer to the sums in
 * s (by timestamp). A small scanner for this one shape, not a JSON parser. */
static int add_values(const char *j, int64_t start, int64_t step, size_t nsteps, double *sum,
                      bool *have)
{
    const char *p = j;
    int found = 0;
    while ((p = strstr(p, "\"values\":["))) {
        p += 10;
        found = 1;
        while (*p == '[' || *p == ',') {
            if (*p == ',') p++;
            if (*p != '[') break;
            char *end;
            double ts = strtod(p + 1, &end);
            if (end == p + 1 || *end != ',' || end[1] != '"') return -1;
            double v = strtod(end + 2, &end);
            if (*end != '"') {
                /* NaN, +Inf...: skipped */
                end = strchr(end, '"');
                if (!end) return -1;
                v = NAN;
            }
            p = end + 1;
            if (*p != ']') return -1;
            p++;
            int64_t t = (int64_t)llround(ts * 1000);
            if (t < start || (t - start) % step || !isfinite(v)) continue;
            size_t k = (size_t)((t - start) / step);
            if (k < nsteps) sum[k] += v, have[k] = true;
        }
    }
    return found ? 0 : -1;
}

static int fetch_series(const char *url, const char *query, int64_t range, int64_t step,
                        series_t *s)
{
    int64_t end = ag_now_ms() / step * step, start = end - range;
    size_t nsteps = (size_t)(range / step) + 1;
    double *sum = calloc(nsteps, sizeof *sum);
    bool *have = calloc(nsteps, sizeof *have);
    s->t = malloc(nsteps * sizeof *s->t);
    s->v = malloc(nsteps * sizeof *s->v);
    CURL *c = curl_easy_init();
    int status = sum && have && s->t && s->v && c ? 0 : 1;
    char *q = c ? curl_easy_escape(c, query, 0) : NULL;
    /* 10,000 points per request (the API allows 11,000) */
    for (int64_t from = start; !status && from <= end; from += step * 10000) {
        int64_t to = from + step * 9999 < end ? from + step * 9999 : end;
        char full[8192];
        size_t ul = strlen(url);
        while (ul && url[ul - 1] == '/') ul--;
        snprintf(full, sizeof full, "%.*s/api/v1/query_range?query=%s&start=%.3f&end=%.3f&step=%.3f",
                 (int)ul, url, q ? q : "", from / 1000.0, to / 1000.0, step / 1000.0);
        ag_buf_t body = AG_BUF_INIT;
        curl_easy_setopt(c, CURLOPT_URL, full);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
        curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
        long code = 0;
        CURLcode cr = curl_easy_perform(c);
        if (cr == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        ag_buf_putc(&body, 0);
        if (cr != CURLE_OK || code != 200 || !ag_buf_ok(&body)) {
            fprintf(stderr, "augur: %s: %s\n", full,
                    cr != CURLE_OK ? curl_easy_strerror(cr) : body.data ? body.data : "no answer");
            status = 1;
        } else if (strstr(body.data, "\"result\":[]") == NULL &&
                   add_values(body.data, start, step, nsteps, sum, have)) {
            fprintf(stderr, "augur: %s: not a matrix answer\n", full);
            status = 1;
        }
        ag_buf_free(&body);
    }
    for (size_t i = 0; !status && i < nsteps; i++) {
        if (!have[i]) continue;
        s->t[s->n] = start + (int64_t)i * step;
        s->v[s->n++] = sum[i];
    }
    if (!status && s->n < 2) {
        fprintf(stderr, "augur: %s returned fewer than two points of %s\n", url, query);
        status = 1;
    }
    curl_free(q);
    if (c) curl_easy_cleanup(c);
    free(sum);
    free(have);
    return status;
}

int simulate_main(int argc, char **argv)
{
    ag_scaler_policy_t p;
    ag_scaler_policy_default(&p);
    int64_t skip = 0, range = 7 * 86400000LL, qstep = 60000;
    bool trace = false;
    const char *file = NULL, *from = NULL, *query = NULL;
    int rc = 0;
    for (int i = 2; i < argc && !rc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(SIM_USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--capacity")) {
            rc = parse_num(a, v, &p.capacity), i++;
        } else if (!strcmp(a, "--target")) {
            rc = parse_num(a, v, &p.target), i++;
        } else if (!strcmp(a, "--confidence")) {
            rc = parse_num(a, v, &p.confidence), i++;
        } else if (!strcmp(a, "--lead")) {
            rc = parse_duration0(a, v, &p.lead_ms), i++;
        } else if (!strcmp(a, "--interval")) {
            rc = parse_duration0(a, v, &p.interval_ms), i++;
        } else if (!strcmp(a, "--stabilization")) {
            rc = parse_duration0(a, v, &p.stabilization_ms), i++;
        } else if (!strcmp(a, "--min")) {
            rc = parse_u32(a, v, &p.min_replicas), i++;
        } else if (!strcmp(a, "--max")) {
            rc = parse_u32(a, v, &p.max_replicas), i++;
        } else if (!strcmp(a, "--skip")) {
            rc = parse_duration0(a, v, &skip), i++;
        } else if (!strcmp(a, "--trace")) {
            trace = true;
        } else if (!strcmp(a, "--from")) {
            if (!(from = v)) return fprintf(stderr, "augur: --from needs a URL\n"), 2;
            i++;
        } else if (!strcmp(a, "--query")) {
            if (!(query = v)) return fprintf(stderr, "augur: --query needs an expression\n"), 2;
            i++;
        } else if (!strcmp(a, "--range")) {
            rc = parse_duration0(a, v, &range), i++;
        } else if (!strcmp(a, "--step")) {
            rc = parse_duration0(a, v, &qstep), i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "augur: unknown option %s\n%s", a, SIM_USAGE);
            return 2;
        } else if (!file) {
            file = a;
        } else {
            fprintf(stderr, "augur: more than one FILE\n");
            return 2;
        }
    }
    if (rc) return rc;
    ag_errmsg_t e = {{0}, -1};
    if (ag_scaler_policy_check(&p, &e)) {
        fprintf(stderr, "augur: %s\n", e.msg);
        return 2;
    }
    if ((from != NULL) != (query != NULL) || (from && file) || (from && (range <= 0 || qstep <= 0))) {
        fprintf(stderr, "augur: --from and --query go together, instead of FILE, with a range and "
                        "step above 0\n");
        return 2;
    }
    series_t s = {0};
    int status = from ? fetch_series(from, query, range, qstep, &s) : read_series(file, &s);
    ag_scaler_t *sc = NULL;
    hist_t hp = {0}, hr = {0};
    size_t hcap = (size_t)(p.lead_ms / p.interval_ms) + 2;
    if (!status && (ag_scaler_new(&p, NULL, &sc) || hist_init(&hp, hcap) || hist_init(&hr, hcap))) {
        fprintf(stderr, "augur: out of memory\n");
        status = 1;
    }
    if (!status) {
        ag_hpa_t hpa;
        int64_t t0 = s.t[0], t1 = s.t[s.n - 1];
        double minutes = (double)p.interval_ms / 60000.0;
        size_t j = 0;
        uint32_t start = 0;
        tally_t tp = {0}, tr = {0};
        uint32_t ready_p = 0, ready_r = 0;
        if (trace) puts("time,load,needed,predictive_ready,reactive_ready");
        for (int64_t t = t0; t <= t1; t += p.interval_ms) {
            while (j + 1 < s.n && s.t[j + 1] <= t) j++;
            double load = s.v[j];
            if (j + 1 < s.n && s.t[j] < t)
                load += (s.v[j + 1] - s.v[j]) * (double)(t - s.t[j]) / (double)(s.t[j + 1] - s.t[j]);
            double per = p.capacity * p.target;
            uint32_t need = isfinite(load) && load > 0 ? (uint32_t)ceil(load / per - 1e-9) : 0;
            if (t == t0) {
                start = need < p.min_replicas   ? p.min_replicas
                        : need > p.max_replicas ? p.max_replicas
                                                : need;
                ag_hpa_init(&hpa, &p, start);
                ready_p = ready_r = start;
                tp.last = tr.last = start;
            }
            ag_scaler_result_t res;
            ag_scaler_step(sc, t, load, &res);
            uint32_t dr = ag_hpa_step(&hpa, t, load, ready_r);
            bool count = t - t0 >= skip;
            ready_p = hist_ready(&hp, t, res.desired, p.lead_ms);
            ready_r = hist_ready(&hr, t, dr, p.lead_ms);
            tally(&tp, ready_p, need, res.desired, minutes, count);
            tally(&tr, ready_r, need, dr, minutes, count);
            if (trace) printf("%lld,%.6g,%u,%u,%u\n", (long long)(t / 1000), load, need, ready_p, ready_r);
        }
        if (!trace) {
            printf("policy      under-provisioned  over-provisioned  replica-minutes  scaling actions\n");
            printf("predictive  %17.1f  %16.1f  %15.1f  %15ld\n", tp.under, tp.over, tp.total,
                   tp.actions);
            printf("reactive    %17.1f  %16.1f  %15.1f  %15ld\n", tr.under, tr.over, tr.total,
                   tr.actions);
            printf("predictive / reactive: under-provisioned %.3f, replica-minutes %.3f\n",
                   tr.under > 0 ? tp.under / tr.under : (tp.under > 0 ? INFINITY : 1.0),
                   tr.total > 0 ? tp.total / tr.total : 1.0);
        }
        if (fflush(stdout)) status = 1;
    }
    ag_scaler_free(sc);
    free(hp.t);
    free(hp.v);
    free(hr.t);
    free(hr.v);
    free(s.t);
    free(s.v);
    return status;
}
