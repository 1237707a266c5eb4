/* augur.c - the offline tool: `augur detect` and `augur forecast` over a timestamp,value CSV.
 *
 * Only argument parsing and I/O live here. Every number comes from the library modules the
 * daemon runs (ag_csv for reading, ag_detect / ag_hw for scores and forecasts), so what this
 * tool prints for a series is what augurd will compute for it.
 *
 * The sampling interval, which sets the season buckets and the smoothing time constants, is
 * guessed from the first GUESS_ROWS rows (the median interval) unless --step is given. Rows read
 * before the model exists are scored 0 either way (the detector is still warming up), so every
 * score still depends only on the rows up to its own.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_csv.h"
#include "ag_err.h"
#include "ag_forecast.h"
#include "ag_time.h"
#include "ag_simulate.h"

#define GUESS_ROWS 32

static const char *USAGE =
    "usage: augur <command> [options] [FILE]\n"
    "\n"
    "Offline anomaly detection and forecasting over a CSV with a header naming the columns\n"
    "timestamp and value (FILE, or standard input when FILE is missing or '-').\n"
    "Timestamps are 'YYYY-MM-DD HH:MM:SS' (UTC) or unix seconds.\n"
    "\n"
    "commands:\n"
    "  detect     write timestamp,value,anomaly_score: one row per input row, each score in\n"
    "             [0, 1] computed only from the rows up to and including its own\n"
    "  forecast   write timestamp,value,forecast,lower,upper: at each row, the forecast for the\n"
    "             time one horizon later, with its prediction interval\n"
    "  simulate   replay augurd's predictive scaling policy and a reactive HPA-style one over a\n"
    "             load history and compare under- and over-provisioning\n"
    "  help       this text (also: augur --help, augur <command> --help)\n";

static const char *DETECT_USAGE =
    "usage: augur detect [--step DUR] [--threshold X] [--alarms] [--tiny [--counter]]\n"
    "                    [--refit DUR] [FILE]\n"
    "\n"
    "Scores every row with the streaming detector augurd runs: a robust Holt-Winters model\n"
    "(daily and weekly seasons from the sampling interval) and tests for spikes, level shifts,\n"
    "variance changes and flatlines on its residuals. Output: timestamp,value,anomaly_score with\n"
    "timestamps and values copied verbatim. NaN, Inf and 'stale' values score 0.\n"
    "\n"
    "  --step DUR       sampling interval (e.g. 15s, 5m); default: the median interval of the\n"
    "                   first rows\n"
    "  --threshold X    alarm threshold in [0, 1] (default 0.5); with --alarms a fourth column\n"
    "                   'alarm' (0 or 1) is written\n"
    "  --tiny           use the tiny zero-configuration detector (64 bytes of state per series,\n"
    "                   no seasons) instead of the full model\n"
    "  --counter        with --tiny: the values are a counter; score its per-second rate, as\n"
    "                   augurd does for series named *_total, *_count, *_sum, *_bucket\n"
    "  --refit DUR      every DUR of data, refit the smoothing constants on the last 14 days\n"
    "                   (GSL Nelder-Mead on the one-step error; off by default: constants fitted\n"
    "                   for forecast error follow anomalies more and detect worse)\n";

static const char *FORECAST_USAGE =
    "usage: augur forecast [--horizon DUR] [--coverage P] [--step DUR] [--refit DUR] [FILE]\n"
    "\n"
    "At each row, after learning it, forecasts the value at (row time + horizon) with the same\n"
    "model augurd uses, and a central prediction interval of probability P that widens with the\n"
    "horizon. Output: timestamp,value,forecast,lower,upper; the forecast columns of a row are\n"
    "the prediction made at that row for one horizon later (empty while no model exists yet).\n"
    "\n"
    "  --horizon DUR    how far ahead (default 1h; e.g. 5m, 1h, 1d)\n"
    "  --coverage P     interval probability in (0, 1) (default 0.95)\n"
    "  --step DUR       sampling interval; default: the median interval of the first rows\n"
    "  --refit DUR      every DUR of data, refit the smoothing constants on the last 14 days\n"
    "                   (GSL Nelder-Mead on the one-step error)\n";

typedef struct {
    char *line; /* owned copy of the input line */
    ag_csv_row_t row;
} pending_t;

typedef struct {
    int cmd; /* 0 detect, 1 forecast */
    int64_t step_ms, horizon_ms, refit_ms;
    double threshold, coverage;
    int alarms, tiny, counter;
    const char *file;
} opts_t;

typedef struct {
    const opts_t *o;
    ag_detect_t *det;
    ag_tiny_t tiny;
    long refused;
    /* history for --refit: the trailing REFIT_HISTORY of samples */
    int64_t *ht;
    double *hv;
    size_t hn, hcap;
    int64_t next_fit;
} run_t;

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "augur: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 2;
}

static void put_field(const char *s, size_t n) { fwrite(s, 1, n, stdout); }

/* --refit: keep the trailing history and refit the smoothing constants on a schedule, the way the
 * daemon's background thread will (there on a copy of the stored samples). Causal: a fit at
 * time t uses samples up to t only. */
#define REFIT_HISTORY_MS (14 * 86400000LL)
static void refit(run_t *r, int64_t t, double v)
{
    if (r->hn == r->hcap) {
        size_t cap = r->hcap ? 2 * r->hcap : 4096;
        int64_t *nt = realloc(r->ht, cap * sizeof *nt);
        if (nt) r->ht = nt;
        double *nv = realloc(r->hv, cap * sizeof *nv);
        if (nv) r->hv = nv;
        if (!nt || !nv) return;
        r->hcap = cap;
    }
    r->ht[r->hn] = t;
    r->hv[r->hn++] = v;
    size_t drop = 0;
    while (drop < r->hn && r->ht[drop] < t - REFIT_HISTORY_MS) drop++;
    if (drop > r->hn / 2) {
        memmove(r->ht, r->ht + drop, (r->hn - drop) * sizeof *r->ht);
        memmove(r->hv, r->hv + drop, (r->hn - drop) * sizeof *r->hv);
        r->hn -= drop;
    }
    if (!r->next_fit) r->next_fit = t + r->o->refit_ms;
    if (t < r->next_fit) return;
    r->next_fit = t + r->o->refit_ms;
    /* detect refits the scoring model, forecast the forecaster (as the daemon does) */
    ag_hw_params_t p;
    if (r->o->cmd == 0) {
        if (ag_hw_fit(ag_hw_config(ag_detect_model(r->det)), r->ht, r->hv, r->hn, &p) == AG_OK)
            ag_detect_set_params(r->det, &p);
    } else if (ag_hw_fit(ag_hw_config(ag_detect_forecaster(r->det)), r->ht, r->hv, r->hn, &p) ==
               AG_OK) {
        ag_detect_set_forecast_params(r->det, &p);
    }
}

static void emit(run_t *r, const ag_csv_row_t *row)
{
    ag_detect_result_t res;
    if (r->o->tiny) {
        if ((r->tiny.n || (r->tiny.flags & AG_TINY_HAVE_RAW)) && row->t_ms <= r->tiny.t_last)
            r->refused++;
        memset(&res, 0, sizeof res);
        res.score = ag_tiny_step(&r->tiny, row->t_ms, row->v);
        res.alarm = res.score >= r->o->threshold;
    } else if (ag_detect_step(r->det, row->t_ms, row->v, &res) == AG_ECONFLICT) {
        r->refused++;
    } else if (r->o->refit_ms > 0 && isfinite(row->v)) {
        refit(r, row->t_ms, row->v);
    }
    put_field(row->ts, row->ts_len);
    putchar(',');
    put_field(row->val, row->val_len);
    if (r->o->cmd == 0) {
        printf(",%.6f", res.score);
        if (r->o->alarms) printf(",%d", res.alarm ? 1 : 0);
        putchar('\n');
        return;
    }
    ag_hw_forecast_t f;
    const ag_hw_t *m = ag_detect_forecaster(r->det);
    int64_t last = ag_hw_last_time(m);
    if (last == INT64_MIN || ag_hw_forecast(m, last + r->o->horizon_ms, r->o->coverage, &f)) {
        fputs(",,,\n", stdout);
        return;
    }
    printf(",%.10g,%.10g,%.10g\n", f.mean, f.lower, f.upper);
}

static int start(run_t *r, pending_t *p, size_t np)
{
    int64_t step = r->o->step_ms;
    if (step <= 0) {
        int64_t t[GUESS_ROWS];
        for (size_t i = 0; i < np; i++) t[i] = p[i].row.t_ms;
        step = ag_forecast_guess_step(t, np);
    }
    ag_detect_config_t c;
    ag_detect_config_default(&c, step);
    c.threshold = r->o->threshold;
    int rc = ag_detect_new(&c, &r->det);
    if (rc) {
        fprintf(stderr, "augur: cannot create the model: %s\n", ag_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < np; i++) emit(r, &p[i].row);
    return AG_OK;
}

static int run(const opts_t *o)
{
    FILE *in = stdin;
    if (o->file && strcmp(o->file, "-") != 0) {
        in = fopen(o->file, "r");
        if (!in) {
            fprintf(stderr, "augur: %s: %s\n", o->file, strerror(errno));
            return 2;
        }
    }
    run_t r;
    memset(&r, 0, sizeof r);
    r.o = o;
    ag_tiny_init(&r.tiny);
    if (o->counter) r.tiny.flags = AG_TINY_COUNTER;
    pending_t pend[GUESS_ROWS];
    size_t np = 0;
    ag_csv_t csv;
    ag_csv_init(&csv);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int status = 0, header_out = 0;
    const char *name = o->file ? o->file : "<stdin>";
    while ((n = getline(&line, &cap, in)) > 0) {
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
        if (rc == 0) {
            if (csv.have_header && !header_out) {
                /* the output header only once the input's header was accepted */
                if (o->cmd == 0)
                    fputs(o->alarms ? "timestamp,value,anomaly_score,alarm\n"
                                    : "timestamp,value,anomaly_score\n", stdout);
                else
                    fputs("timestamp,value,forecast,lower,upper\n", stdout);
                header_out = 1;
            }
            continue;
        }
        if (!r.det && np < GUESS_ROWS) {
            /* keep a copy until the model can be created */
            pend[np].line = malloc(len + 1);
            if (!pend[np].line) {
                status = fail("%s", "out of memory");
                break;
            }
            memcpy(pend[np].line, line, len);
            pend[np].line[len] = 0;
            pend[np].row = row;
            pend[np].row.ts = pend[np].line + (row.ts - line);
            pend[np].row.val = pend[np].line + (row.val - line);
            np++;
            if (np == GUESS_ROWS && start(&r, pend, np)) {
                status = 1;
                break;
            }
            continue;
        }
        emit(&r, &row);
    }
    if (!status && ferror(in)) {
        fprintf(stderr, "augur: %s: read error: %s\n", name, strerror(errno));
        status = 1;
    }
    if (!status) {
        ag_errmsg_t e = {{0}, -1};
        if (ag_csv_finish(&csv, &e)) {
            fprintf(stderr, "augur: %s: %s\n", name, e.msg);
            status = 1;
        } else if (!r.det && np && start(&r, pend, np)) {
            status = 1;
        }
    }
    if (r.refused)
        fprintf(stderr, "augur: %ld rows with a timestamp not after the previous one scored 0\n",
                r.refused);
    for (size_t i = 0; i < np; i++) free(pend[i].line);
    free(line);
    free(r.ht);
    free(r.hv);
    ag_detect_free(r.det);
    if (in != stdin) fclose(in);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "augur: write error: %s\n", strerror(errno));
        status = 1;
    }
    return status;
}

static int parse_dur(const char *opt, const char *s, int64_t *ms)
{
    ag_errmsg_t e = {{0}, -1};
    if (!s) return fail("%s needs a value", opt);
    if (ag_parse_duration(s, ms, &e) || *ms <= 0) {
        fprintf(stderr, "augur: %s: bad duration \"%s\" (e.g. 30s, 5m, 1h)\n", opt, s);
        return 2;
    }
    return 0;
}

static int parse_unit(const char *opt, const char *s, double *v, int open)
{
    if (!s) return fail("%s needs a value", opt);
    char *end;
    double x = strtod(s, &end);
    if (*s == 0 || *end || !(open ? x > 0 && x < 1 : x >= 0 && x <= 1)) {
        fprintf(stderr, "augur: %s: \"%s\" is not a number in %s\n", opt, s,
                open ? "(0, 1)" : "[0, 1]");
        return 2;
    }
    *v = x;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 2 && !strcmp(argv[2], "detect")) fputs(DETECT_USAGE, stdout);
        else if (argc > 2 && !strcmp(argv[2], "forecast")) fputs(FORECAST_USAGE, stdout);
        else fputs(USAGE, stdout);
        return 0;
    }
    opts_t o = {0, 0, 3600000, 0, 0.5, 0.95, 0, 0, 0, NULL};
    const char *help;
    if (!strcmp(cmd, "simulate")) return simulate_main(argc, argv);
    if (!strcmp(cmd, "detect")) o.cmd = 0, help = DETECT_USAGE;
    else if (!strcmp(cmd, "forecast")) o.cmd = 1, help = FORECAST_USAGE;
    else {
        fprintf(stderr, "augur: unknown command \"%s\"\n\n%s", cmd, USAGE);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return 0;
        } else if (!strcmp(a, "--refit")) {
            rc = parse_dur(a, v, &o.refit_ms), i++;
        } else if (!strcmp(a, "--step")) {
            rc = parse_dur(a, v, &o.step_ms), i++;
        } else if (!strcmp(a, "--threshold") && o.cmd == 0) {
            rc = parse_unit(a, v, &o.threshold, 0), i++;
        } else if (!strcmp(a, "--alarms") && o.cmd == 0) {
            o.alarms = 1;
        } else if (!strcmp(a, "--tiny") && o.cmd == 0) {
            o.tiny = 1;
        } else if (!strcmp(a, "--counter") && o.cmd == 0) {
            o.counter = 1;
        } else if (!strcmp(a, "--horizon") && o.cmd == 1) {
            rc = parse_dur(a, v, &o.horizon_ms), i++;
        } else if (!strcmp(a, "--coverage") && o.cmd == 1) {
            rc = parse_unit(a, v, &o.coverage, 1), i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "augur %s: unknown option \"%s\"\n\n%s", cmd, a, help);
            return 2;
        } else if (o.file) {
            fprintf(stderr, "augur %s: more than one input file\n\n%s", cmd, help);
            return 2;
        } else {
            o.file = a;
        }
        if (rc) return rc;
    }
    return run(&o);
}
