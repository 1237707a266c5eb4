#!/usr/bin/env python3
"""query_bench.py - `make bench`, part 2: dashboard query latency of augurd against its peers.

Ingests the same data into augurd, Prometheus (/usr/bin/prometheus, 2.42 on Debian 12) and
VictoriaMetrics (/usr/bin/victoria-metrics), one server after the other, each on 127.0.0.1 with
a free port and a fresh temp dir, then times a fixed set of dashboard queries on each over HTTP/1.1
keep-alive and prints one Markdown table: p50/p99 per query and server, and augurd's p50 over
the faster peer's p50. Its first row times each server's health endpoint (no query): the HTTP
round trip that every query pays on this machine; the last column divides what augurd takes
beyond its own round trip by the least any peer takes beyond its own, the server's share of
the work, which the plain ratio hides for queries that take little more than the round trip.

Data, identical for every server (same --start-ms): tests/bench/loadgen's node_exporter-shaped
series (default 10,000 series x 240 samples at 15 s = 1 h, ending now, spread over 97 metric
names), one metric with 10,000 series (bench_req_0_total, same hour) for the issue's
`sum by (job) (rate(x[5m]))` over 10k+ series, one metric with 200 series over 24 h
(bench_day_0_total, written first, oldest first over one connection so that every series
advances together and Prometheus' head, which refuses samples over 1 h older than its newest,
accepts it) for the 24 h
query_range, and a classic histogram written from here
(bench_http_request_duration_seconds_bucket, 25 instances x 12 `le` buckets = 300 series, same
hour). Timestamps end "now" because Prometheus' head rejects samples older than ~1 h before its
newest one.

augurd runs with its range-query result cache off for the main table (the peers' caches are off
too); a second table times augurd's range queries with the cache on, as a refreshing dashboard
sees them. A last table runs the aggregate query back to back while the loadgen remote-writes
100,000 new series into the same server, the issue's "p99 of the aggregate query while ingest
runs".

The servers are fed one after the other and then all stay up: each query runs --warmup times
untimed on each, then --runs times timed on each, the timed runs alternating between the servers
(A, P, V, A, P, V, ...), one at a time, so that this shared machine's drift (the same binary
moves by +-30 % within minutes) falls on every server alike; the time is the whole HTTP round
trip including the body transfer (not the JSON parse). augurd's cache table is timed right after
its ingest, before the peers start; the under-ingest table runs one server at a time at the end
(the others idle). VictoriaMetrics runs with its rollup result cache disabled (-search.disableCache) so that
repeated identical queries measure evaluation, as for the other two. augurd's answers are checked
against Prometheus' (series count, labels, values to 1e-6 relative) and, for the series count
only, against VictoriaMetrics' (its rate() has other semantics); a mismatch prints a WARNING line
but does not fail the run. A server that fails to start or ingest is reported and left out.

Environment (or flags): BENCH_Q_SERIES, BENCH_Q_SAMPLES, BENCH_Q_RUNS, BENCH_Q_WARMUP,
BENCH_Q_HIST_INSTANCES, BENCH_Q_AGG_SERIES, BENCH_Q_INGEST_SERIES; BENCH_PROMETHEUS, BENCH_VICTORIA_METRICS (binaries; empty = skip).
"""
import argparse, http.client, json, math, os, shutil, signal, socket, subprocess, sys, tempfile
from benchlib import free_port
import time, urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import encode_write_request, snappy_compress  # noqa: E402

INTERVAL_MS = 15000
HIST = "bench_http_request_duration_seconds_bucket"
DAY_SERIES, DAY_SAMPLES = 200, 24 * 240  # one metric, 24 h at 15 s
DAY_QUERY = "sum by (cpu) (rate(bench_day_0_total[5m]))"
AGG_QUERY = "sum by (job) (rate(bench_req_0_total[5m]))"
# The first row: each server's health endpoint, no query at all: the HTTP round trip every
# query pays on this machine (client, loopback, server's HTTP layer).
FLOOR = "bare HTTP round trip: the health endpoint, no query"
LES = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]


class Server:
    """One server process on 127.0.0.1:<free port> with its own temp dir, stopped by PID."""

    def __init__(self, name, binary):
        self.name, self.binary = name, binary
        self.dir = tempfile.mkdtemp(prefix=f"augur-qbench-{name.split()[0].lower()}-")
        self.port = free_port()
        self.proc = None
        self.log = None
        self.conn = None

    def command(self):
        raise NotImplementedError

    ready_path = "/-/ready"
    health_path = "/-/healthy"

    def start(self, timeout=60):
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            try:
                st, _ = self.get(self.ready_path)
                if st == 200:
                    return
            except (OSError, http.client.HTTPException):
                self.reset_conn()
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready: {self.log_tail()}")

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def reset_conn(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """One request on the keep-alive connection; (status, body bytes)."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.reset_conn()
                return r.status, data
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self.reset_conn()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def get(self, path, params=None):
        if params:
            path += "?" + urllib.parse.urlencode(params)
        return self.request("GET", path)

    def after_ingest(self):
        pass

    def stop(self):
        self.reset_conn()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Augurd(Server):
    """Runs with its range-query result cache off, so repeated queries measure evaluation as for
    the peers; set_cache() turns it on through a config reload for the cache table."""

    def write_config(self, cache_bytes):
        with open(os.path.join(self.dir, "augur.yml"), "w") as f:
            f.write(f"query:\n  cache_max_bytes: {cache_bytes}\n")

    def command(self):
        self.write_config(0)
        return [self.binary, f"--config.file={self.dir}/augur.yml",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.path={self.dir}/data", "--log.level=warn"]

    def set_cache(self, cache_bytes):
        self.write_config(cache_bytes)
        st, body = self.request("POST", "/-/reload")
        if st != 200:
            raise RuntimeError(f"reload: {st} {body[:200]!r}")


class Prometheus(Server):
    def command(self):
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        return [self.binary, f"--config.file={cfg}", f"--storage.tsdb.path={self.dir}/data",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-remote-write-receiver",
                "--log.level=warn"]


class VictoriaMetrics(Server):
    ready_path = "/health"
    health_path = "/health"

    def command(self):
        # -search.latencyOffset=0s: the newest samples are queryable at once (default hides 30 s);
        # -search.disableCache: no rollup result cache, so repeated queries are evaluated.
        return [self.binary, f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.dir}/data", "-search.latencyOffset=0s",
                "-search.disableCache", "-loggerLevel=WARN"]

    def after_ingest(self):
        st, body = self.get("/internal/force_flush")
        if st != 200:
            raise RuntimeError(f"force_flush: {st} {body[:200]!r}")


# --------------------------------------------------------------------------------------------
# data


def hist_requests(instances, samples, start_ms):
    """Remote-write bodies for a classic histogram: `instances` x len(LES) cumulative counters,
    every sample of a series in one request (in time order), 60 series per request."""
    series = []
    for i in range(instances):
        rate = 5.0 + (i % 7)  # requests per second of this instance
        # cumulative share of requests at or below each le, slower for some instances
        shift = (i % 5) * 0.15
        shares = [min(1.0, 1 - math.exp(-(k + 1) / (3.0 + shift * 4))) for k in range(len(LES))]
        shares[-1] = 1.0
        for k, le in enumerate(LES):
            labels = [("__name__", HIST), ("instance", f"api-{i}:8080"), ("job", "api"),
                      ("le", le)]
            pts, total = [], 0.0
            for step in range(samples):
                # a gentle diurnal-ish wobble, deterministic; integer counts like a real histogram
                n = rate * INTERVAL_MS / 1000 * (1 + 0.3 * math.sin((step + i) / 17.0))
                total += math.floor(n * shares[k] + 0.5)
                pts.append((start_ms + step * INTERVAL_MS, total))
            series.append((labels, pts))
    for j in range(0, len(series), 60):
        yield snappy_compress(encode_write_request(series[j:j + 60]), copies=False)


def loadgen(srv, args, extra, conns=4):
    """Runs the load generator against srv; returns its key=value summary."""
    lg = subprocess.run([args.loadgen, "--port", str(srv.port), "--interval-ms", str(INTERVAL_MS),
                         "--batch", "2000", "--conns", str(conns)] + [str(x) for x in extra],
                        capture_output=True, text=True)
    if lg.returncode != 0:
        raise RuntimeError(f"loadgen against {srv.name} failed ({lg.returncode}): "
                           f"{lg.stdout.strip()} {lg.stderr.strip()[:500]} {srv.log_tail()[-500:]}")
    return dict(kv.split("=", 1) for kv in lg.stdout.split() if "=" in kv)


def ingest(srv, args, start_ms, hist_bodies):
    """Loads one server: a day of DAY_SERIES series of one metric (first, oldest data first, so
    Prometheus' head accepts it), then the node series (timed: the ingest figure), the
    AGG_SERIES series of one metric and the histogram. Returns (samples, seconds) of the timed
    node load."""
    day_start = start_ms + (args.samples - DAY_SAMPLES) * INTERVAL_MS
    loadgen(srv, args, ["--series", DAY_SERIES, "--samples", DAY_SAMPLES, "--names", 1,
                        "--prefix", "bench_day", "--start-ms", day_start], conns=1)
    t0 = time.time()
    m = loadgen(srv, args, ["--series", args.series, "--samples", args.samples,
                            "--start-ms", start_ms])
    dt = time.time() - t0
    loadgen(srv, args, ["--series", args.agg_series, "--samples", args.samples, "--names", 1,
                        "--prefix", "bench_req", "--start-ms", start_ms])
    hdr = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
           "X-Prometheus-Remote-Write-Version": "0.1.0"}
    for body in hist_bodies:
        st, resp = srv.request("POST", "/api/v1/write", body=body, headers=hdr)
        if st // 100 != 2:
            raise RuntimeError(f"histogram write to {srv.name}: {st} {resp[:300]!r}")
    srv.after_ingest()
    return int(m.get("samples", 0)), dt


# --------------------------------------------------------------------------------------------
# queries


def queries(start_s, end_s, agg_series):
    """The dashboard set. The loadgen's series differ only by __name__ within one (instance, cpu),
    so rate() over {job="node"} (which drops __name__) is an error in Prometheus ("vector cannot
    contain metrics with the same labelset"); the queries over all node series therefore use
    last_over_time(), which keeps the name, and rate() over many series uses the 8 metric names
    whose (instance, cpu) pairs are unique (8/97 of the series)."""
    one = 'node_metric_1_total{instance="host-0:9100",cpu="1"}'
    inst = {"time": f"{end_s:.3f}"}
    rng = {"start": f"{start_s:.3f}", "end": f"{end_s:.3f}", "step": "60"}
    many = '{__name__=~"node_metric_[0-7]_total",job="node"}'
    day = {"start": f"{end_s - 86400:.3f}", "end": f"{end_s:.3f}", "step": "60"}
    # Grafana sends range queries with start and end on multiples of the step.
    day_aligned = {"start": f"{(end_s - 86400) // 60 * 60:.0f}", "end": f"{end_s // 60 * 60:.0f}",
                   "step": "60"}
    rng_aligned = {"start": f"{start_s // 60 * 60 + 60:.0f}", "end": f"{end_s // 60 * 60:.0f}",
                   "step": "60"}
    return [
        (FLOOR, "health", None, {}),
        ("selector, 1 series", "query", one, inst),
        ("rate 5m, 1 series", "query", f"rate({one}[5m])", inst),
        ("sum by (job) (rate(node_metric_1_total[5m]))", "query",
         "sum by (job) (rate(node_metric_1_total[5m]))", inst),
        (f"sum by (job) (rate(bench_req_0_total[5m])), {agg_series:,} series", "query",
         AGG_QUERY, inst),
        ('sum by (instance) (rate({__name__=~"node_metric_[0-7]_total"}[5m]))', "query",
         f"sum by (instance) (rate({many}[5m]))", inst),
        ('sum by (instance) (last_over_time({job="node"}[5m])), all series', "query",
         'sum by (instance) (last_over_time({job="node"}[5m]))', inst),
        ('range 1 h / 60 s: sum by (cpu) (last_over_time({job="node"}[5m])), all series',
         "query_range", 'sum by (cpu) (last_over_time({job="node"}[5m]))', rng),
        ('range 1 h / 60 s: sum by (cpu) (rate({__name__=~"node_metric_[0-7]_total"}[5m]))',
         "query_range", f"sum by (cpu) (rate({many}[5m]))", rng),
        ('topk(5, last_over_time({job="node"}[5m])), all series', "query",
         'topk(5, last_over_time({job="node"}[5m]))', inst),
        ("histogram_quantile(0.9, sum by (le) (rate(..._bucket[5m])))", "query",
         f"histogram_quantile(0.9, sum by (le) (rate({HIST}[5m])))", inst),
        (f"range 24 h / 60 s: sum by (cpu) (rate(bench_day_0_total[5m])), {DAY_SERIES} series",
         "query_range", DAY_QUERY, day),
        ('range 1 h / 60 s on step multiples (as Grafana sends it): sum by (cpu) '
         '(rate({__name__=~"node_metric_[0-7]_total"}[5m]))',
         "query_range", f"sum by (cpu) (rate({many}[5m]))", rng_aligned),
        (f"range 24 h / 60 s on step multiples (as Grafana sends it): sum by (cpu) "
         f"(rate(bench_day_0_total[5m])), {DAY_SERIES} series",
         "query_range", DAY_QUERY, day_aligned),
    ]


def run_query(srv, kind, expr, params):
    if kind == "health":
        t0 = time.perf_counter()
        st, body = srv.get(srv.health_path)
        return st, body, time.perf_counter() - t0
    p = dict(params)
    p["query"] = expr
    t0 = time.perf_counter()
    st, body = srv.get(f"/api/v1/{kind}", p)
    dt = time.perf_counter() - t0
    return st, body, dt


def pct(xs, q):
    """Nearest-rank percentile (p99 of 30 runs is the slowest run)."""
    s = sorted(xs)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def time_server(srv, qs, runs, warmup):
    """{query label: (p50 s, p99 s, answer json or None, error)}"""
    out = {}
    for label, kind, expr, params in qs:
        try:
            ans = None
            for _ in range(warmup):
                st, body, _ = run_query(srv, kind, expr, params)
                if st != 200:
                    raise RuntimeError(f"HTTP {st}: {body[:300]!r}")
                ans = body
            ts = []
            for _ in range(runs):
                st, body, dt = run_query(srv, kind, expr, params)
                if st != 200:
                    raise RuntimeError(f"HTTP {st}: {body[:300]!r}")
                ts.append(dt)
            if ans is None:
                ans = body
            out[label] = (pct(ts, 0.5), pct(ts, 0.99), json.loads(ans), None)
        except Exception as e:  # one failing query must not hide the others
            out[label] = (None, None, None, str(e)[:300])
    return out


def time_interleaved(live, qs, runs, warmup):
    """Like time_server for several servers at once: each query's timed runs alternate between
    the servers (A, P, V, A, P, V, ...), so that the machine's drift over the run (this is a
    shared 2-core VM: the same binary moves by +-30 % within minutes) hits every server alike
    instead of whichever happened to be measured in a slow minute.
    {server: {query label: (p50 s, p99 s, answer json or None, error)}}"""
    out = {name: {} for name, _ in live}
    for label, kind, expr, params in qs:
        ts = {name: [] for name, _ in live}
        ans, err = {}, {}
        for name, srv in live:
            try:
                for _ in range(warmup):
                    st, body, _ = run_query(srv, kind, expr, params)
                    if st != 200:
                        raise RuntimeError(f"HTTP {st}: {body[:300]!r}")
                    ans[name] = body
            except Exception as e:  # one failing query must not hide the others
                err[name] = str(e)[:300]
        for _ in range(runs):
            for name, srv in live:
                if name in err:
                    continue
                try:
                    st, body, dt = run_query(srv, kind, expr, params)
                    if st != 200:
                        raise RuntimeError(f"HTTP {st}: {body[:300]!r}")
                    ans.setdefault(name, body)
                    ts[name].append(dt)
                except Exception as e:
                    err[name] = str(e)[:300]
        for name, _ in live:
            if name in err:
                out[name][label] = (None, None, None, err[name])
            else:
                out[name][label] = (pct(ts[name], 0.5), pct(ts[name], 0.99),
                                    json.loads(ans[name]) if kind != "health" else None, None)
    return out


def series_of(ans):
    """{sorted label tuple: [(t, value float), ...]} of a vector or matrix answer."""
    res = {}
    data = (ans or {}).get("data", {})
    for r in data.get("result", []):
        key = tuple(sorted(r.get("metric", {}).items()))
        if "value" in r:
            pts = [r["value"]]
        else:
            pts = r.get("values", [])
        res[key] = [(float(t), float(v)) for t, v in pts]
    return res


def close(a, b):
    if math.isnan(a) and math.isnan(b):
        return True
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def compare(label, a, b, name_a, name_b):
    """A warning string if two answers disagree, else None."""
    sa, sb = series_of(a), series_of(b)
    if len(sa) != len(sb):
        return f"{label}: {name_a} returned {len(sa)} series, {name_b} {len(sb)}"
    if "topk" in label:  # ties may pick different series; compare the values only
        va = sorted(v for pts in sa.values() for _, v in pts)
        vb = sorted(v for pts in sb.values() for _, v in pts)
        if len(va) != len(vb) or not all(close(x, y) for x, y in zip(va, vb)):
            return f"{label}: values differ: {va} vs {vb}"
        return None
    for k, pa in sa.items():
        pb = sb.get(k)
        if pb is None:
            return f"{label}: series {dict(k)} from {name_a} is missing in {name_b}"
        if len(pa) != len(pb):
            return f"{label}: series {dict(k)} has {len(pa)} points in {name_a}, {len(pb)} in {name_b}"
        for (ta, va), (tb, vb) in zip(pa, pb):
            if ta != tb or not close(va, vb):
                return f"{label}: series {dict(k)} at {ta}: {name_a} {va} vs {name_b} {vb} (t={tb})"
    return None


INGEST_SAMPLES = 12


def query_under_ingest(srv, args, end_ms):
    """The aggregate query back to back while the loadgen writes new series (timestamps up to
    end_ms + 12 intervals, inside every server's accepted window); p50/p99 of the queries and
    the loadgen's own figures."""
    start = end_ms - (INGEST_SAMPLES - 1) * INTERVAL_MS
    cmd = [args.loadgen, "--port", str(srv.port), "--interval-ms", str(INTERVAL_MS), "--batch",
           "2000", "--conns", "4", "--series", str(args.ingest_series), "--samples",
           str(INGEST_SAMPLES), "--prefix", "ingest_metric", "--start-ms", str(start)]
    lg = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ts = []
    try:
        params = {"time": f"{end_ms / 1000:.3f}"}
        while lg.poll() is None:
            st, body, dt = run_query(srv, "query", AGG_QUERY, params)
            if st != 200:
                raise RuntimeError(f"HTTP {st}: {body[:200]!r}")
            ts.append(dt)
        out, err = lg.communicate()
        m = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
        if lg.returncode != 0 or not ts:
            return {"error": f"loadgen {lg.returncode}: {out.strip()} {err.strip()[:200]}"}
        return {"runs": len(ts), "p50": pct(ts, 0.5), "p99": pct(ts, 0.99),
                "rate": float(m.get("samples_per_second", 0)), "write_p99": float(m.get("p99_ms", 0))}
    except Exception as e:
        lg.kill()
        lg.wait()
        return {"error": str(e)[:200]}


def fmt_ms(s):
    if s is None:
        return "n/a"
    ms = s * 1000
    return f"{ms:.2f}" if ms < 10 else (f"{ms:.1f}" if ms < 100 else f"{ms:.0f}")


def main():
    env = os.environ.get
    ap = argparse.ArgumentParser()
    ap.add_argument("--augurd", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--prometheus", default=env("BENCH_PROMETHEUS", "/usr/bin/prometheus"))
    ap.add_argument("--victoria-metrics", default=env("BENCH_VICTORIA_METRICS",
                                                      "/usr/bin/victoria-metrics"))
    ap.add_argument("--series", type=int, default=int(env("BENCH_Q_SERIES", "10000")))
    ap.add_argument("--samples", type=int, default=int(env("BENCH_Q_SAMPLES", "240")))
    ap.add_argument("--runs", type=int, default=int(env("BENCH_Q_RUNS", "30")))
    ap.add_argument("--warmup", type=int, default=int(env("BENCH_Q_WARMUP", "3")))
    ap.add_argument("--hist-instances", type=int, default=int(env("BENCH_Q_HIST_INSTANCES", "25")))
    ap.add_argument("--agg-series", type=int, default=int(env("BENCH_Q_AGG_SERIES", "10000")))
    ap.add_argument("--ingest-series", type=int,
                    default=int(env("BENCH_Q_INGEST_SERIES", "100000")))
    a = ap.parse_args()
    a.augurd, a.loadgen = os.path.abspath(a.augurd), os.path.abspath(a.loadgen)

    # Whole seconds, ending one interval before now: every sample is within Prometheus' window.
    start_ms = (int(time.time() * 1000) - a.samples * INTERVAL_MS) // 1000 * 1000
    end_ms = start_ms + (a.samples - 1) * INTERVAL_MS
    qs = queries(start_ms / 1000, end_ms / 1000, a.agg_series)
    hist_bodies = list(hist_requests(a.hist_instances, a.samples, start_ms))

    servers = [("augurd", Augurd, a.augurd), ("Prometheus", Prometheus, a.prometheus),
               ("VictoriaMetrics", VictoriaMetrics, a.victoria_metrics)]
    results, ingest_rates, errors, cached, under_ingest = {}, {}, [], {}, {}
    t_all = time.time()
    live = []  # (name, server) with the data in, all running until the end
    try:
        # 1. Each server is started and fed the data set in turn (the others idle meanwhile);
        #    augurd's cache table is timed right after its ingest.
        for name, cls, binary in servers:
            if not binary or not os.access(binary, os.X_OK):
                errors.append(f"{name}: binary {binary!r} not found, skipped")
                continue
            srv = cls(name, binary)
            try:
                srv.start()
                n, dt = ingest(srv, a, start_ms, hist_bodies)
                ingest_rates[name] = n / dt if dt > 0 else 0.0
                live.append((name, srv))
                if name == "augurd":
                    # Right after the data arrived, as before the peers existed: the newest
                    # steps (under 2 minutes old) are evaluated, older ones come from the cache.
                    srv.set_cache(128 << 20)
                    cached[name] = time_server(srv, [q for q in qs if q[1] == "query_range"],
                                               a.runs, a.warmup)
                    srv.set_cache(0)
            except Exception as e:
                errors.append(f"{name}: {e}")
                srv.stop()
            print(f"query bench: {name} ingested ({time.time() - t_all:.0f} s so far)",
                  file=sys.stderr)
        # 2. The latency table, runs alternating between the servers.
        results = time_interleaved(live, qs, a.runs, a.warmup)
        print(f"query bench: latency table done ({time.time() - t_all:.0f} s so far)",
              file=sys.stderr)
        # 3. Each server under ingest (the others idle).
        for name, srv in live:
            try:
                under_ingest[name] = query_under_ingest(srv, a, end_ms)
            except Exception as e:
                errors.append(f"{name}: {e}")
            print(f"query bench: {name} done ({time.time() - t_all:.0f} s so far)", file=sys.stderr)
    finally:
        for _, srv in live:
            srv.stop()

    hist_series = a.hist_instances * len(LES)
    print(f"\n{time.strftime('%Y-%m-%d')}  query latency, {a.series:,} node series + {hist_series} "
          f"histogram bucket series x {a.samples} samples at 15 s "
          f"({a.samples * INTERVAL_MS / 3.6e6:g} h); instant queries at the last sample; "
          f"{a.warmup} warm-ups then {a.runs} runs per query and server over one keep-alive "
          f"connection each, the runs alternating between the servers (all three running), "
          f"client on the same 2-core machine; milliseconds; p99 of {a.runs} runs is the "
          f"slowest run")
    names = [n for n, _, _ in servers]
    print("| query | " + " | ".join(f"{n} p50 / p99" for n in names)
          + " | ratio augurd p50 / best peer p50 | the same, beyond each server's bare round trip |")
    print("|---|" + "---|" * (len(names) + 2))
    floor = {n: (results.get(n, {}).get(FLOOR) or (None,))[0] for n in names}
    warnings = []
    for label, _, _, _ in qs:
        cells, peer_p50 = [], []
        for n in names:
            r = results.get(n, {}).get(label)
            if r is None:
                cells.append("n/a")
            elif r[3]:
                cells.append("error")
                warnings.append(f"{n}, {label}: {r[3]}")
            else:
                cells.append(f"{fmt_ms(r[0])} / {fmt_ms(r[1])}")
                if n != "augurd":
                    peer_p50.append(r[0])
        ours = results.get("augurd", {}).get(label)
        ratio = beyond = "n/a"
        if ours and ours[0] is not None and peer_p50 and min(peer_p50) > 0:
            ratio = f"{ours[0] / min(peer_p50):.2f}"
            # the peer with the least time beyond its own round trip
            extra = [results[n][label][0] - floor[n] for n in names
                     if n != "augurd" and floor[n] is not None and results.get(n, {}).get(label)
                     and results[n][label][0] is not None]
            if label != FLOOR and floor["augurd"] is not None and extra and min(extra) > 0:
                beyond = f"{max(0.0, ours[0] - floor['augurd']) / min(extra):.2f}"
        print(f"| `{label}` | " + " | ".join(cells) + f" | {ratio} | {beyond} |")
        pa = results.get("augurd", {}).get(label)
        pp = results.get("Prometheus", {}).get(label)
        if pa and pp and pa[2] is not None and pp[2] is not None:
            w = compare(label, pa[2], pp[2], "augurd", "Prometheus")
            if w:
                warnings.append("answers differ: " + w)
        pv = results.get("VictoriaMetrics", {}).get(label)
        if pa and pv and pa[2] is not None and pv[2] is not None:
            # VictoriaMetrics' rate() differs by design (no extrapolation, MetricsQL windows), so
            # only the series count is checked against it.
            na, nv = len(series_of(pa[2])), len(series_of(pv[2]))
            if na != nv:
                warnings.append(f"series counts differ: {label}: augurd {na}, VictoriaMetrics {nv}")
    if cached.get("augurd"):
        print("\naugurd with its range-query result cache on (128 MiB), the range queries above "
              "repeated as a refreshing dashboard does (the first warm-up fills the cache; steps "
              "older than 2 minutes are then served from it), milliseconds:")
        print("| query | augurd, cache off, p50 / p99 | augurd, cache on, p50 / p99 |")
        print("|---|---|---|")
        for label, r in cached["augurd"].items():
            off = results.get("augurd", {}).get(label)
            offs = f"{fmt_ms(off[0])} / {fmt_ms(off[1])}" if off and off[0] is not None else "n/a"
            ons = f"{fmt_ms(r[0])} / {fmt_ms(r[1])}" if r[0] is not None else f"error: {r[3]}"
            print(f"| `{label}` | {offs} | {ons} |")
    if under_ingest:
        print(f"\n`{AGG_QUERY}` ({a.agg_series:,} series) run back to back while the loadgen "
              f"remote-writes {a.ingest_series:,} new series x {INGEST_SAMPLES} samples "
              "(2000 samples/request, 4 connections) into the same server:")
        print("| server | queries run | query p50 / p99 ms | ingest samples/s meanwhile | "
              "write request p99 ms |")
        print("|---|---|---|---|---|")
        for n, r in under_ingest.items():
            print(f"| {n} | {r['runs']} | {fmt_ms(r['p50'])} / {fmt_ms(r['p99'])} | "
                  f"{r['rate']:,.0f} | {r['write_p99']:.1f} |" if r.get("runs") else
                  f"| {n} | error: {r.get('error')} | | | |")
    if ingest_rates:
        print("\nremote-write ingest of this data set (loadgen, 2000 samples/request, 4 connections), "
              "samples/s: " + ", ".join(f"{n} {r:,.0f}" for n, r in ingest_rates.items()))
    for e in errors:
        print(f"WARNING: {e}")
    for w in warnings:
        print(f"WARNING: {w}")


if __name__ == "__main__":
    main()
