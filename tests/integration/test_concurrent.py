"""test_concurrent.py - remote-write ingest and heavy PromQL queries at the same time, every answer
checked against a Python model of the samples that had been acknowledged.

One augurd on a fresh data dir. Three writer threads remote-write a deterministic data set (seed
AUGUR_CONCURRENT_SEED, default fixed, printed) of 300 series over 7 hours of data time ending
half an hour before now, 15 s apart, each series in time order, 10 minutes of data time per round
(2 requests per writer and round, 252 requests, ~478k samples, spread over >= 20 s):
  * ct_requests_total  counters on the 15 s grid: integer increments, counter resets, some
    targets going away for a while (a stale marker, a gap, then a restart from ~0);
  * ct_temp            gauges on the grid: random decimals, a few NaN (two payloads), stale gaps;
  * ct_bytes_total     big counters off the grid (a per-series offset and a few ms of jitter);
  * churn: some instances start hours late, some stop early with a stale marker.
Each writer owns a disjoint set of instances; every request must get 2xx (5xx and lost
connections are retried with a short backoff and counted; a 4xx, or a 5xx that persists, fails
the test). Writer 2 stays 40 minutes of data time behind the others, and 20 minutes before a 6 h
rollup block boundary it waits until they are 30 minutes past it (plus 2.5 s), so the rollup
upkeep rolls that block of its series before their last samples arrive, which must then
invalidate it (storage/maint.c, "a lagging sender").

Each writer publishes a watermark: every sample it owns up to it is acknowledged. Two query
threads loop over instant and range queries (sum by (job) (rate(x[5m])), rate, increase,
max/min/avg/count/last_over_time, max by (job), plain selectors; steps 15s/30s/45s/60s/1h,
aligned and not, so the engine answers from raw samples and from its 1 m / 1 h rollup buckets)
and /api/v1/series, and check every answer at evaluation times at or below the minimum watermark
read before the query was sent: those windows hold only acknowledged samples, so the answer must
equal the model exactly (counts, min, max, last, selector values) or within a relative 1e-9
(rates, sums, averages: rollups and aggregations add in another order). Many range queries reach
past the watermark (only the earlier steps are checked then), and a third thread refreshes five
dashboard panels ending 20 minutes past it, so the range-query result cache stores and reuses
steps computed while samples were arriving. After the writers finish: 40 of those queries and
every panel's whole span are asked again and every step checked, then whole-span queries at 1m
and 1h steps (aligned: rollups; shifted by 15 s: raw), the small steps over the last hour,
instant queries, /api/v1/series and a dump of every stored sample; the daemon's
augur_samples_appended_total must equal the samples sent. Prints a summary; the first mismatch
fails the test naming the query, the time, the series, the expected and returned values, and
what asking again after the writers stopped gives.

Model semantics are Prometheus 2.42's (daemon/promql/functions.c): windows [t - range, t] closed,
stale markers never in range vectors, an instant selector is the newest sample in [t - 5m, t]
unless that is a stale marker, rate is extrapolatedRate with the counter zero-point clamp applied
before the 1.1 x average-interval threshold. /api/v1/series must list every series with a sample
in [start, end] and may list one whose first and last samples enclose it (augurd lists by series
bounds, Prometheus by chunks).

Helpers written here rather than in harness.py: a fast remote-write encoder (checked against
harness.encode_write_request at start), a keep-alive client that retries lost connections, and
the window model (m_* below).
"""
import bisect
import http.client
import json
import math
import os
import random
import struct
import threading
import time
import traceback
import urllib.parse

import harness
from harness import (PROM_NAN, REMOTE_WRITE_HEADERS, STALE, Bits, as_float, encode_write_request,
                     go_float, ms_to_ts_str, now_ms, snappy_compress, varint)

SEED = int(os.environ.get("AUGUR_CONCURRENT_SEED", "20261127"))

SCRAPE = 15_000
MIN = 60_000
HOUR = 3_600_000
SPAN = 7 * HOUR                 # data time written
CHUNK = 10 * MIN                # data time per request round
LOOKBACK = 5 * MIN
WRITERS = 3
INSTANCES = 100                 # per metric; 3 metrics -> 300 series
REQS_PER_CHUNK = 2              # per writer and round
LAG_CHUNKS = 4                  # writer 2 stays this many rounds behind the others
ROLLUP_BLOCK = 6 * HOUR         # augurd's 1 m rollups are stored in blocks of 6 h (storage/maint.c)
QUERY_THREADS = 2
REPLAY_MAX = 40                 # range queries asked again after the ingest
REL_TOL = 1e-9
JOBS = ("api", "db", "web", "cache")
METRICS = ("ct_requests_total", "ct_temp", "ct_bytes_total")


class Mismatch(AssertionError):
    """A wrong answer; .recheck (set by Checker) asks the same question again."""
    recheck = None


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# ---------------------------------------------------------------------------------------------
# the data set


class Series:
    """One series: its samples (all, stale markers included) and the arrays the model needs."""

    def __init__(self, labels, writer, kind):
        self.labels = labels
        self.key = tuple(sorted(labels.items()))
        self.key_noname = tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))
        self.name = labels["__name__"]
        self.job = labels["job"]
        self.writer = writer
        self.kind = kind
        self.samples = []   # (ts, float or Bits)

    def finish(self):
        self.ts = [t for t, _ in self.samples]
        self.vals = [v for _, v in self.samples]
        self.stale = [harness.is_stale(v) for v in self.vals]
        good = [(t, as_float(v)) for (t, v), st in zip(self.samples, self.stale) if not st]
        self.rts = [t for t, _ in good]
        self.rv = [v for _, v in good]
        self.resets = [j for j in range(1, len(self.rv)) if self.rv[j] < self.rv[j - 1]]
        self.vmax = [-math.inf if math.isnan(v) else v for v in self.rv]
        self.vmin = [math.inf if math.isnan(v) else v for v in self.rv]


def build_dataset(rnd, S):
    nslots = SPAN // SCRAPE
    series = []
    for j in range(INSTANCES):
        inst = "host-%03d:9100" % j
        job = JOBS[j % len(JOBS)]
        writer = j % WRITERS
        first = 0
        last = nslots - 1
        stop_early = False
        if j >= INSTANCES - 5:          # churn: starts 1..5 hours late
            first = (j - (INSTANCES - 6)) * (HOUR // SCRAPE) + rnd.randrange(0, 40)
        elif j >= INSTANCES - 10:       # churn: stops 1..5 hours in, with a stale marker
            last = (j - (INSTANCES - 11)) * (HOUR // SCRAPE) + rnd.randrange(0, 40)
            stop_early = True
        for m in METRICS:
            s = Series({"__name__": m, "job": job, "instance": inst}, writer, m)
            offset = rnd.randrange(50, 14900) if m == "ct_bytes_total" else 0
            gap_at, gap_len = -1, 0
            if rnd.random() < 0.12:    # the target goes away for a while
                gap_at = rnd.randrange(first + 10, max(first + 11, last - 60))
                gap_len = rnd.randrange(4, 60)
            if m == "ct_temp":
                milli = rnd.randrange(15000, 30000)
            elif m == "ct_bytes_total":
                val = rnd.randrange(10**6, 10**9)
            else:
                val = rnd.randrange(0, 1000)
            i = first
            while i <= last:
                t = S + i * SCRAPE + offset + (rnd.randrange(0, 50) if offset else 0)
                if i == gap_at:
                    s.samples.append((t, STALE))
                    i += gap_len + 1
                    if m != "ct_temp":
                        val = rnd.randrange(0, 4)  # the target restarted: a counter reset
                    continue
                if m == "ct_temp":
                    milli = min(45000, max(5000, milli + rnd.randrange(-300, 301)))
                    r = rnd.random()
                    v = PROM_NAN if r < 0.002 else float("nan") if r < 0.004 else milli / 1000
                else:
                    r = rnd.random()
                    if r < 0.003:
                        val = rnd.randrange(0, 4)
                    elif m == "ct_bytes_total":
                        val += rnd.randrange(0, 50000)
                    else:
                        val += rnd.randrange(0, 21) if r < 0.98 else rnd.randrange(100, 1000)
                    v = float(val)
                s.samples.append((t, v))
                i += 1
            if stop_early:
                s.samples.append((S + (last + 1) * SCRAPE + offset, STALE))
            s.finish()
            series.append(s)
    return series


# ---------------------------------------------------------------------------------------------
# a fast remote-write encoder (the harness one is too slow for half a million samples)

_TS_VARINT = {}


def _sample(ts, v):
    tv = _TS_VARINT.get(ts)
    if tv is None:
        tv = _TS_VARINT[ts] = varint(ts)
    bits = v.bits if isinstance(v, Bits) else struct.unpack("<Q", struct.pack("<d", v))[0]
    body = b"\x09" + struct.pack("<Q", bits) + b"\x10" + tv
    return b"\x12" + varint(len(body)) + body


def _pb_bytes(field, data):
    return varint((field << 3) | 2) + varint(len(data)) + data


def _labels_bytes(labels):
    out = b""
    for n, v in sorted(labels.items()):
        out += _pb_bytes(1, _pb_bytes(1, n.encode()) + _pb_bytes(2, v.encode()))
    return out


def encode_request(parts):
    """parts: [(labels dict, [(ts, value)])] -> the (uncompressed) WriteRequest protobuf."""
    out = []
    for labels, samples in parts:
        ts = _labels_bytes(labels) + b"".join(_sample(t, v) for t, v in samples)
        out.append(_pb_bytes(1, ts))
    return b"".join(out)


def _selfcheck_encoder():
    parts = [({"__name__": "a", "job": "x"}, [(1_700_000_000_000, 1.5), (1_700_000_015_000, STALE),
                                              (1_700_000_030_000, PROM_NAN), (5, float("nan"))]),
             ({"__name__": "b", "z": "\u00e9"}, [(0, -0.0), (-1, 1e300)])]
    check(encode_request(parts) == encode_write_request(parts),
          "the local remote-write encoder differs from harness.encode_write_request")


# ---------------------------------------------------------------------------------------------
# the model (Prometheus 2.42 semantics; mirrors daemon/promql/functions.c)


def duration_seconds(ms):
    sec = int(ms / 1000)
    return float(sec) + float((ms - sec * 1000) * 1_000_000) / 1e9


def extrapolate(result, first_t, first_v, last_t, n, t, range_ms, is_counter, is_rate):
    range_start = t - range_ms
    duration_to_start = (first_t - range_start) / 1000
    duration_to_end = (t - last_t) / 1000
    sampled_interval = (last_t - first_t) / 1000
    avg_between = sampled_interval / float(n - 1)
    if is_counter and result > 0 and first_v >= 0:
        duration_to_zero = sampled_interval * (first_v / result)
        if duration_to_zero < duration_to_start:
            duration_to_start = duration_to_zero
    threshold = avg_between * 1.1
    extrapolate_to = sampled_interval
    if duration_to_start < threshold:
        extrapolate_to += duration_to_start
    else:
        extrapolate_to += avg_between / 2
    if duration_to_end < threshold:
        extrapolate_to += duration_to_end
    else:
        extrapolate_to += avg_between / 2
    factor = extrapolate_to / sampled_interval
    if is_rate:
        factor /= duration_seconds(range_ms)
    return result * factor


def _win(s, t, rng):
    return bisect.bisect_left(s.rts, t - rng), bisect.bisect_right(s.rts, t)


def m_rate(s, t, rng, is_rate=True):
    lo, hi = _win(s, t, rng)
    n = hi - lo
    if n < 2:
        return None
    v = s.rv
    result = v[hi - 1] - v[lo]
    for j in s.resets[bisect.bisect_right(s.resets, lo):bisect.bisect_left(s.resets, hi)]:
        result += v[j - 1]
    return extrapolate(result, s.rts[lo], v[lo], s.rts[hi - 1], n, t, rng, True, is_rate)


def m_increase(s, t, rng):
    return m_rate(s, t, rng, is_rate=False)


def m_max(s, t, rng):
    lo, hi = _win(s, t, rng)
    if hi == lo:
        return None
    m = max(s.vmax[lo:hi])
    return math.nan if m == -math.inf else m


def m_min(s, t, rng):
    lo, hi = _win(s, t, rng)
    if hi == lo:
        return None
    m = min(s.vmin[lo:hi])
    return math.nan if m == math.inf else m


def m_avg(s, t, rng):
    lo, hi = _win(s, t, rng)
    if hi == lo:
        return None
    return math.fsum(s.rv[lo:hi]) / (hi - lo)


def m_count(s, t, rng):
    lo, hi = _win(s, t, rng)
    return float(hi - lo) if hi > lo else None


def m_last(s, t, rng):
    lo, hi = _win(s, t, rng)
    return s.rv[hi - 1] if hi > lo else None


def m_instant(s, t):
    """The instant selector: newest sample in [t - lookback, t] unless it is a stale marker.
    Returns the value as sent (float or Bits) so NaN payloads stay visible in messages."""
    hi = bisect.bisect_right(s.ts, t)
    if hi == 0 or s.ts[hi - 1] < t - LOOKBACK or s.stale[hi - 1]:
        return None
    return s.vals[hi - 1]


def agg_max(vals):
    m = vals[0]
    for v in vals:
        if v > m or math.isnan(m):
            m = v
    return m


class Query:
    """An expression, the series it reads and how the model evaluates it at time t."""

    def __init__(self, expr, metric, kind, fn=None, rng=0, job=None, agg=None, exact=True,
                 steps=(15_000, 60_000), keep_name=False):
        self.expr, self.metric, self.kind, self.fn, self.rng = expr, metric, kind, fn, rng
        self.job, self.agg, self.exact, self.steps, self.keep_name = job, agg, exact, steps, keep_name

    def select(self, series):
        return [s for s in series if s.name == self.metric and (self.job is None or s.job == self.job)]

    def model(self, sel, t):
        """{frozen labels: value} at t."""
        out = {}
        if self.kind == "selector":
            for s in sel:
                v = m_instant(s, t)
                if v is not None:
                    out[s.key] = v
            return out
        for s in sel:
            v = self.fn(s, t, self.rng)
            if v is not None:
                out[s.key if self.keep_name else s.key_noname] = v
        if not self.agg:
            return out
        groups = {}
        for key, v in out.items():
            job = dict(key)["job"]
            groups.setdefault(job, []).append(v)
        if self.agg == "sum":
            return {(("job", j),): math.fsum(vs) for j, vs in groups.items()}
        return {(("job", j),): agg_max(vs) for j, vs in groups.items()}


def _q(expr):
    return next(q for q in QUERIES if q.expr == expr)


QUERIES = [
    Query("sum by (job) (rate(ct_requests_total[5m]))", "ct_requests_total", "fn", m_rate, 5 * MIN,
          agg="sum", exact=False, steps=(15_000, 30_000, 60_000)),
    Query("rate(ct_bytes_total[5m])", "ct_bytes_total", "fn", m_rate, 5 * MIN, exact=False,
          steps=(15_000, 60_000)),
    Query("increase(ct_requests_total[1h])", "ct_requests_total", "fn", m_increase, HOUR,
          exact=False, steps=(60_000, HOUR)),
    Query("rate(ct_requests_total{job=\"db\"}[1h])", "ct_requests_total", "fn", m_rate, HOUR,
          job="db", exact=False, steps=(60_000, HOUR)),
    Query("max_over_time(ct_temp[1h])", "ct_temp", "fn", m_max, HOUR, steps=(15_000, 60_000, HOUR)),
    Query("min_over_time(ct_temp[30m])", "ct_temp", "fn", m_min, 30 * MIN, steps=(30_000, 60_000)),
    Query("avg_over_time(ct_temp[1h])", "ct_temp", "fn", m_avg, HOUR, exact=False,
          steps=(60_000, HOUR)),
    Query("count_over_time(ct_temp[1h])", "ct_temp", "fn", m_count, HOUR, steps=(15_000, 60_000, HOUR)),
    Query("sum by (job) (count_over_time(ct_bytes_total[1h]))", "ct_bytes_total", "fn", m_count,
          HOUR, agg="sum", steps=(60_000, HOUR)),
    Query("max by (job) (max_over_time(ct_temp[1h]))", "ct_temp", "fn", m_max, HOUR, agg="max",
          steps=(60_000, HOUR)),
    Query("last_over_time(ct_temp[10m])", "ct_temp", "fn", m_last, 10 * MIN, keep_name=True,
          steps=(15_000, 60_000)),
    Query("last_over_time(ct_bytes_total[2h])", "ct_bytes_total", "fn", m_last, 2 * HOUR,
          keep_name=True, steps=(60_000, HOUR)),
    Query("ct_temp", "ct_temp", "selector", steps=(15_000, 60_000)),
    Query("ct_requests_total{job=\"api\"}", "ct_requests_total", "selector", job="api",
          steps=(15_000, 45_000)),
    Query("ct_bytes_total", "ct_bytes_total", "selector", steps=(15_000, 60_000)),
]


# dashboard panels (query, step), refreshed by panel_loop; heavy per step on raw samples
PANELS = [(_q("count_over_time(ct_temp[1h])"), 30_000),
          (_q("sum by (job) (rate(ct_requests_total[5m]))"), 15_000),
          (_q("max_over_time(ct_temp[1h])"), 30_000),
          (_q("ct_bytes_total"), 60_000),
          (_q("increase(ct_requests_total[1h])"), 60_000)]


# ---------------------------------------------------------------------------------------------
# comparing answers


def fmt_val(v):
    if isinstance(v, Bits):
        return "%s (bits 0x%016x)" % (go_float(v), v.bits)
    return "%s (%r)" % (go_float(v), v)


def same_value(q, want, got_str):
    """want: float or Bits from the model; got_str: the API's value string. Exact means the same
    float (the API's shortest round-trip format parses back to it; test_api checks the format)."""
    w = as_float(want)
    try:
        g = float(got_str)
    except ValueError:
        return False
    if w != w or g != g:
        return w != w and g != g
    if q.exact:
        return g == w and math.copysign(1.0, g) == math.copysign(1.0, w)
    if math.isinf(w) or math.isinf(g):
        return w == g
    return abs(g - w) <= REL_TOL * max(abs(w), abs(g)) + 1e-12


def compare_step(q, what, t, want, got):
    """want {labels: value}, got {labels: value str} at evaluation time t; raises Mismatch."""
    if want.keys() == got.keys():
        bad = [k for k, v in want.items() if not same_value(q, v, got[k])]
        if not bad:
            return
        keys = sorted(bad)
    else:
        keys = sorted(set(want) ^ set(got))
    key = keys[0]
    if key not in got:
        raise Mismatch("%s at t=%s (%d): series %s missing; expected %s" % (
            what, ms_to_ts_str(t), t, dict(key), fmt_val(want[key])))
    if key not in want:
        raise Mismatch("%s at t=%s (%d): unexpected series %s = %s (the model has no value)" % (
            what, ms_to_ts_str(t), t, dict(key), got[key]))
    raise Mismatch("%s at t=%s (%d): series %s expected %s got %s%s" % (
        what, ms_to_ts_str(t), t, dict(key), fmt_val(want[key]), got[key],
        " (and %d more series differ at this step)" % (len(keys) - 1) if len(keys) > 1 else ""))


def nan_str(v):
    return "NaN" if v != v else v


def to_ms(x):
    return int(round(float(x) * 1000))


def frozen(metric):
    return tuple(sorted(metric.items()))


# ---------------------------------------------------------------------------------------------
# the test


class Shared:
    def __init__(self, nwriters, S, k_boundary, hold_s):
        self.S = S
        self.k_boundary = k_boundary        # the round starting at a rollup block boundary
        self.hold_s = hold_s
        self.lock = threading.Lock()
        self.wm = [S - 1] * nwriters        # every owned sample <= wm[w] is acknowledged
        self.chunks_done = [0] * nwriters
        self.stop = threading.Event()
        self.writers_done = threading.Event()
        self.errors = []
        self.stats = {"requests": 0, "samples": 0, "retries_5xx": 0, "retries_conn": 0,
                      "queries": 0, "instant": 0, "range": 0, "series_calls": 0,
                      "points": 0, "steps_unchecked": 0, "qtime": 0.0,
                      "panel_refreshes": 0}
        self.replay = []                     # range queries that reached past the watermark
        self.panels = {}                     # panel index -> (first start, last end)

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                self.stats[k] += v

    def watermark(self):
        with self.lock:
            return min(self.wm)

    def fail(self, msg, recheck=None):
        with self.lock:
            self.errors.append((msg, recheck))
        self.stop.set()


class Client:
    """A keep-alive HTTP connection of one thread."""

    def __init__(self, port):
        self.port = port
        self.c = None

    def request(self, method, path, body=None, headers=None):
        for attempt in range(3):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                return r.status, r.read(), attempt
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if attempt == 2:
                    raise harness.ConnectionFailed("%s %s: no answer (%r) - did augurd crash?" % (
                        method, path[:200], e))
                time.sleep(0.05)

    def get_json(self, path, params):
        qs = urllib.parse.urlencode(params)
        st, body, _ = self.request("GET", path + "?" + qs)
        try:
            j = json.loads(body)
        except ValueError:
            j = None
        if st != 200 or not j or j.get("status") != "success":
            raise Mismatch("GET %s?%s answered %d: %s" % (path, urllib.parse.unquote(qs)[:300], st,
                                                          body[:300]))
        return j["data"]

    def close(self):
        if self.c is not None:
            try:
                self.c.close()
            except Exception:  # noqa: BLE001
                pass
            self.c = None


class Checker:
    def __init__(self, port, series, S, E):
        self.port = port
        self.series = series
        self.S, self.E = S, E
        self.sel = {id(q): q.select(series) for q in QUERIES}

    def _again(self, e, method, *args):
        if e.recheck is None:
            def recheck():
                cl = Client(self.port)
                try:
                    return method(cl, *args)
                finally:
                    cl.close()
            e.recheck = recheck

    def instant(self, cl, q, t, W):
        try:
            return self._instant(cl, q, t, W)
        except Mismatch as e:
            self._again(e, self._instant, q, t, W)
            raise

    def range(self, cl, q, start, end, step, W, check_from=None):
        try:
            return self._range(cl, q, start, end, step, W, check_from)
        except Mismatch as e:
            self._again(e, self._range, q, start, end, step, W, check_from)
            raise

    def series_call(self, cl, match, start, end, W):
        try:
            return self._series_call(cl, match, start, end, W)
        except Mismatch as e:
            self._again(e, self._series_call, match, start, end, W)
            raise

    def _instant(self, cl, q, t, W):
        check(t <= W, "instant query past the watermark")
        data = cl.get_json("/api/v1/query", {"query": q.expr, "time": ms_to_ts_str(t)})
        what = "instant query %s" % q.expr
        if data["resultType"] != "vector":
            raise Mismatch("%s at %d: resultType %s" % (what, t, data["resultType"]))
        got = {}
        for r in data["result"]:
            if to_ms(r["value"][0]) != t:
                raise Mismatch("%s at t=%d: sample time %s" % (what, t, r["value"][0]))
            got[frozen(r["metric"])] = r["value"][1]
        compare_step(q, what, t, q.model(self.sel[id(q)], t), got)
        return len(got)

    def _range(self, cl, q, start, end, step, W, check_from=None):
        """Checks every step at or before W (and at or after check_from); returns (points
        checked, steps not checked)."""
        data = cl.get_json("/api/v1/query_range", {"query": q.expr, "start": ms_to_ts_str(start),
                                                   "end": ms_to_ts_str(end),
                                                   "step": ms_to_ts_str(step)})
        what = "query_range %s start=%s end=%s step=%ss" % (
            q.expr, ms_to_ts_str(start), ms_to_ts_str(end), ms_to_ts_str(step))
        if data["resultType"] != "matrix":
            raise Mismatch("%s: resultType %s" % (what, data["resultType"]))
        bystep = {}
        seen = set()
        for r in data["result"]:
            key = frozen(r["metric"])
            if key in seen:
                raise Mismatch("%s: series %s twice in the answer" % (what, r["metric"]))
            seen.add(key)
            prev = None
            for ts, v in r["values"]:
                t = to_ms(ts)
                if t < start or t > end or (t - start) % step or (prev is not None and t <= prev):
                    raise Mismatch("%s: series %s has a point at %s, not a step (in order)" % (
                        what, r["metric"], ts))
                prev = t
                if t <= W:
                    bystep.setdefault(t, {})[key] = v
        points = 0
        t = start
        if check_from is not None and check_from > start:
            t = start + (check_from - start + step - 1) // step * step
        sel = self.sel[id(q)]
        while t <= min(end, W):
            got = bystep.get(t, {})
            compare_step(q, what, t, q.model(sel, t), got)
            points += len(got)
            t += step
        unchecked = 0 if end <= W else (end - max(W, start - 1) + step - 1) // step
        return points, unchecked

    def _series_call(self, cl, match, start, end, W):
        check(end <= W, "series call past the watermark")
        data = cl.get_json("/api/v1/series", [("match[]", match), ("start", ms_to_ts_str(start)),
                                              ("end", ms_to_ts_str(end))])
        got = [frozen(m) for m in data]
        order = [harness.labels_key(m) for m in data]
        if match.startswith("{job="):
            job = match.split('"')[1]
            cand = [s for s in self.series if s.job == job]
        else:
            cand = [s for s in self.series if s.name == match]
        # Required: every series with a sample (stale markers count) in [start, end]. Allowed as
        # well: a series whose first and last sample enclose the range (augurd lists by series
        # bounds, Prometheus by chunks; neither looks at single samples).
        need, may = set(), set()
        for s in cand:
            i = bisect.bisect_left(s.ts, start)
            if i < len(s.ts) and s.ts[i] <= end:
                need.add(s.key)
            elif s.ts and s.ts[0] <= end and s.ts[-1] >= start:
                may.add(s.key)
        gotset = set(got)
        if len(gotset) != len(got) or order != sorted(order) or not need <= gotset or \
                not gotset <= need | may:
            missing = sorted(need - gotset)
            extra = sorted(gotset - need - may)
            raise Mismatch("/api/v1/series match[]=%s start=%s end=%s: %d series (%d distinct, %s), "
                           "expected %d with samples in the range (+ up to %d whose samples enclose "
                           "it); missing %s; unexpected %s" % (
                               match, ms_to_ts_str(start), ms_to_ts_str(end), len(got), len(gotset),
                               "in label order" if order == sorted(order) else "NOT in label order",
                               len(need), len(may), [dict(k) for k in missing[:3]],
                               [dict(k) for k in extra[:3]]))
        return len(got)


def build_requests(series, S, E):
    """requests[w][k] = list of (bodies, samples, chunk end) for writer w, round k."""
    nchunks = (E - S) // CHUNK
    reqs = [[[] for _ in range(nchunks)] for _ in range(WRITERS)]
    for w in range(WRITERS):
        mine = [s for s in series if s.writer == w]
        groups = [mine[i::REQS_PER_CHUNK] for i in range(REQS_PER_CHUNK)]
        for k in range(nchunks):
            lo, hi = S + k * CHUNK, S + (k + 1) * CHUNK
            for g in groups:
                parts = []
                for s in g:
                    a, b = bisect.bisect_left(s.ts, lo), bisect.bisect_left(s.ts, hi)
                    if b > a:
                        parts.append((s.labels, s.samples[a:b]))
                if parts:
                    n = sum(len(p[1]) for p in parts)
                    reqs[w][k].append((snappy_compress(encode_request(parts), copies=False), n))
    return reqs


def writer_loop(sh, port, w, reqs, t_start, pace_s):
    cl = Client(port)
    headers = dict(REMOTE_WRITE_HEADERS)
    nchunks = len(reqs)
    try:
        for k in range(nchunks):
            if sh.stop.is_set():
                return
            # pacing: round k not before its share of the ingest time
            delay = t_start + pace_s * k / nchunks - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if w == WRITERS - 1:
                # the lagging writer waits for the others to be LAG rounds ahead; 20 minutes
                # before the rollup block boundary it waits until they are 30 minutes past it and
                # then a while longer, so the upkeep rolls the block of its series before their
                # last samples arrive (which must then invalidate it)
                hold = k == sh.k_boundary - 2
                need = sh.k_boundary + 3 if hold else k + LAG_CHUNKS
                while not sh.stop.is_set():
                    with sh.lock:
                        ahead = min(sh.chunks_done[:WRITERS - 1])
                    if ahead >= min(nchunks, need):
                        break
                    time.sleep(0.005)
                if hold:
                    time.sleep(sh.hold_s)
            for body, n in reqs[k]:
                backoff = 0.02
                for attempt in range(12):
                    st, resp, conn_retries = cl.request("POST", "/api/v1/write", body, headers)
                    if conn_retries:
                        sh.add(retries_conn=conn_retries)
                    if 200 <= st < 300:
                        break
                    if st < 500:
                        sh.fail("writer %d round %d: HTTP %d for a valid request: %s" % (
                            w, k, st, resp[:300]))
                        return
                    sh.add(retries_5xx=1)
                    time.sleep(backoff)
                    backoff = min(1.0, backoff * 2)
                else:
                    sh.fail("writer %d round %d: still HTTP %d after 12 attempts: %s" % (
                        w, k, st, resp[:300]))
                    return
                sh.add(requests=1, samples=n)
            with sh.lock:
                sh.wm[w] = sh.S + (k + 1) * CHUNK - 1
                sh.chunks_done[w] = k + 1
    except harness.ConnectionFailed as e:
        sh.fail("writer %d: %s" % (w, e))
    except Exception:  # noqa: BLE001
        sh.fail("writer %d: %s" % (w, traceback.format_exc()))
    finally:
        cl.close()


def pick_time(rnd, lo, hi):
    """A time in [lo, hi]: often on the minute, sometimes on the 15 s grid, else any ms."""
    if hi <= lo:
        return hi
    t = rnd.randint(lo, hi)
    r = rnd.random()
    if r < 0.45 and (t // MIN) * MIN >= lo:
        return (t // MIN) * MIN
    if r < 0.65 and (t // SCRAPE) * SCRAPE >= lo:
        return (t // SCRAPE) * SCRAPE
    return t


def pick_range(rnd, q, S, E, W, past):
    step = rnd.choice(q.steps)
    maxlen = {15_000: HOUR, 30_000: 2 * HOUR, 45_000: 2 * HOUR, 60_000: 3 * HOUR}.get(step, SPAN)
    if past:
        maxlen = min(maxlen, 120 * step)
    length = rnd.randint(1, max(1, maxlen // step)) * step
    if past:   # a dashboard panel: ends a little past the watermark
        end = min(E + 10 * MIN, W + rnd.randint(1, 12) * step)
        start = end - length
    else:
        end = pick_time(rnd, S + 5 * MIN, W)
        start = end - length
    if rnd.random() < 0.7:
        start = (start // step) * step          # aligned: the rollup-bucket path when possible
    elif rnd.random() < 0.5:
        start = (start // SCRAPE) * SCRAPE + SCRAPE
    if start > end:
        start = end
    return start, end, step


def query_loop(sh, port, checker, qid, seed):
    rnd = random.Random(seed)
    cl = Client(port)
    S, E = checker.S, checker.E
    try:
        while not sh.stop.is_set() and not sh.writers_done.is_set():
            W = sh.watermark()
            if W < S + 10 * MIN:
                time.sleep(0.02)
                continue
            t0 = time.monotonic()
            r = rnd.random()
            q = rnd.choice(QUERIES)
            if r < 0.30:
                t = pick_time(rnd, S, W)
                pts = checker.instant(cl, q, t, W)
                sh.add(queries=1, instant=1, points=pts)
            elif r < 0.92:
                past = rnd.random() < 0.45
                start, end, step = pick_range(rnd, q, S, E, W, past)
                pts, unchecked = checker.range(cl, q, start, end, step, W)
                sh.add(queries=1, range=1, points=pts, steps_unchecked=unchecked)
                if end > W:
                    with sh.lock:
                        sh.replay.append((q, start, end, step))
            else:
                match = rnd.choice(list(METRICS) + ['{job="%s"}' % j for j in JOBS])
                a = pick_time(rnd, S - 10 * MIN, W)
                b = pick_time(rnd, a, W) if rnd.random() < 0.7 else W
                n = checker.series_call(cl, match, a, b, W)
                sh.add(queries=1, series_calls=1, points=n)
            sh.add(qtime=time.monotonic() - t0)
    except Mismatch as e:
        sh.fail("query thread %d (while ingesting, watermark %s = %d): %s" % (
            qid, ms_to_ts_str(W), W, e), e.recheck)
    except harness.ConnectionFailed as e:
        sh.fail("query thread %d: %s" % (qid, e))
    except Exception:  # noqa: BLE001
        sh.fail("query thread %d: %s" % (qid, traceback.format_exc()))
    finally:
        cl.close()


def panel_loop(sh, port, checker):
    """Dashboard panels refreshed as the watermark moves: each ends 20 minutes past it (where
    the lagging writer's samples are arriving) and starts 2 hours before it on the same grid, so
    the result cache answers the older steps and caches the newly evaluated ones while writes
    land in them. Only the steps of the last 5 minutes up to the watermark are checked here;
    final_checks asks each panel again over everything it ever covered."""
    cl = Client(port)
    W = None
    try:
        last_w = None
        while not sh.stop.is_set() and not sh.writers_done.is_set():
            W = sh.watermark()
            if W < checker.S + 10 * MIN or W == last_w:
                time.sleep(0.02)
                continue
            last_w = W
            for i, (q, step) in enumerate(PANELS):
                start = (W - 2 * HOUR) // step * step
                end = W + 20 * MIN
                pts, _ = checker.range(cl, q, start, end, step, W, check_from=W - 5 * MIN)
                with sh.lock:
                    lo, hi = sh.panels.get(i, (start, end))
                    sh.panels[i] = (min(lo, start), max(hi, end))
                sh.add(panel_refreshes=1, points=pts)
    except Mismatch as e:
        sh.fail("dashboard panel (while ingesting, watermark %s = %d): %s" % (
            ms_to_ts_str(W), W, e), e.recheck)
    except harness.ConnectionFailed as e:
        sh.fail("dashboard panel thread: %s" % e)
    except Exception:  # noqa: BLE001
        sh.fail("dashboard panel thread: %s" % traceback.format_exc())
    finally:
        cl.close()


def final_checks(sh, port, checker, asan):
    """After every write: the replayed dashboard queries, whole-span queries, raw dump."""
    S, E = checker.S, checker.E
    W = E + HOUR
    cl = Client(port)
    n = 0
    try:
        replay = sh.replay
        if len(replay) > REPLAY_MAX:
            replay = random.Random(SEED + 7).sample(replay, REPLAY_MAX)
        for q, start, end, step in replay:
            pts, _ = checker.range(cl, q, start, end, step, W)
            sh.add(points=pts)
            n += 1
        for i, (lo, hi) in sorted(sh.panels.items()):
            q, step = PANELS[i]
            pts, _ = checker.range(cl, q, lo, hi, step, W)
            sh.add(points=pts)
            n += 1
        for q in QUERIES:
            # the whole span at 1h and 1m steps aligned (rollup buckets where the engine can use
            # them), 1h unaligned (raw samples); the small steps over the last hour, both ways
            end = E + 10 * MIN
            runs = [(HOUR, S - HOUR, True), (60_000, S - HOUR, False), (60_000, end - HOUR, True)]
            runs += [(st, end - HOUR, True) for st in q.steps if st < 60_000]
            for step, start, both in runs:
                start = start // step * step
                for st in ((start, start + SCRAPE) if both else (start,)):
                    pts, _ = checker.range(cl, q, st, end, step, W)
                    sh.add(points=pts)
                    n += 1
            for t in (S + 30 * MIN, S + 2 * HOUR, S + 2 * HOUR + 7_001, S + 4 * HOUR + 15_000,
                      E - 1, E, E + 4 * MIN, E + HOUR):
                sh.add(points=checker.instant(cl, q, t, W))
                n += 1
        for match in list(METRICS) + ['{job="%s"}' % j for j in JOBS]:
            for a, b in ((S - HOUR, E + HOUR), (S + 3 * HOUR, S + 3 * HOUR), (E - 10 * MIN, E + HOUR)):
                sh.add(points=checker.series_call(cl, match, a, b, W))
                n += 1
        # every stored sample, exactly (stale markers are not part of a range vector)
        for m in METRICS:
            data = cl.get_json("/api/v1/query", {"query": "%s[%dh]" % (m, SPAN // HOUR + 2),
                                                 "time": ms_to_ts_str(E + HOUR)})
            got = {frozen(r["metric"]): [(to_ms(t), nan_str(float(v))) for t, v in r["values"]]
                   for r in data["result"]}
            want = {s.key: [(t, nan_str(as_float(v))) for t, v in s.samples if not harness.is_stale(v)]
                    for s in checker.series if s.name == m and s.rts}
            if got != want:
                for key in sorted(set(got) | set(want)):
                    if got.get(key) != want.get(key):
                        g, w_ = got.get(key) or [], want.get(key) or []
                        first = next((i for i in range(max(len(g), len(w_)))
                                      if i >= len(g) or i >= len(w_) or g[i] != w_[i]), None)
                        raise Mismatch("raw dump %s[%dh]: series %s: %d samples, expected %d; first "
                                       "difference at #%s: expected %s got %s" % (
                                           m, SPAN // HOUR + 2, dict(key), len(g), len(w_), first,
                                           w_[first] if first is not None and first < len(w_) else None,
                                           g[first] if first is not None and first < len(g) else None))
            sh.add(points=sum(len(v) for v in got.values()))
            n += 1
    finally:
        cl.close()
    return n


def metric_values(d, prefix):
    ex = d.metrics()
    return {n + (str(sorted(l.items())) if l else ""): v for n, l, v, _ in ex.samples if n.startswith(prefix)}


def test_ingest_and_queries_concurrently(ctx):
    t_begin = time.monotonic()
    _selfcheck_encoder()
    rnd = random.Random(SEED)
    now = now_ms()
    S = (now - SPAN - 30 * MIN) // HOUR * HOUR
    E = S + SPAN
    series = build_dataset(rnd, S)
    reqs_by_writer = build_requests(series, S, E)
    reqs = [list(r) for r in reqs_by_writer]
    total_samples = sum(len(s.samples) for s in series)
    prep = time.monotonic() - t_begin
    print("  AUGUR_CONCURRENT_SEED=%d, %d series, %d samples (%d stale markers) in %d requests, "
          "data time %s .. %s; %s build; prepared in %.1fs" % (
              SEED, len(series), total_samples, sum(sum(s.stale) for s in series),
              sum(len(c) for r in reqs for c in r), ms_to_ts_str(S), ms_to_ts_str(E),
              "ASan" if ctx.asan else "plain", prep), flush=True)

    d = ctx.daemon(log_level="info")
    checker = Checker(d.port, series, S, E)
    boundary = (S // ROLLUP_BLOCK + 1) * ROLLUP_BLOCK    # in (S, S + 6h]
    sh = Shared(WRITERS, S, (boundary - S) // CHUNK, 3.0 if ctx.asan else 2.5)
    pace = 20.0   # seconds of wall time over which the writers spread their rounds (at least)
    t_start = time.monotonic()
    writers = [threading.Thread(target=writer_loop, name="writer-%d" % w, daemon=True,
                                args=(sh, d.port, w, reqs[w], t_start, pace)) for w in range(WRITERS)]
    queriers = [threading.Thread(target=query_loop, name="query-%d" % i, daemon=True,
                                 args=(sh, d.port, checker, i, SEED * 10 + i))
                for i in range(QUERY_THREADS)]
    queriers.append(threading.Thread(target=panel_loop, name="panels", daemon=True,
                                     args=(sh, d.port, checker)))
    try:
        for th in writers + queriers:
            th.start()
        for th in writers:
            while th.is_alive() and not sh.stop.is_set():
                th.join(0.2)
        sh.writers_done.set()
        for th in queriers:
            th.join(120)
        ingest_s = time.monotonic() - t_start
        if sh.errors:
            msg, recheck = sh.errors[0]
            raise AssertionError(msg + asked_again(recheck))
        with sh.lock:
            during = dict(sh.stats)
        check(during["requests"] == sum(len(c) for r in reqs for c in r),
              "only %d of the requests were acknowledged" % during["requests"])
        check(during["samples"] == total_samples, "acknowledged %d samples, sent %d" % (
            during["samples"], total_samples))
        check(during["queries"] >= 20, "only %d queries ran during the ingest" % during["queries"])
        t_final = time.monotonic()
        try:
            nfinal = final_checks(sh, d.port, checker, ctx.asan)
        except Mismatch as e:
            raise AssertionError("after all writes: %s%s" % (e, asked_again(e.recheck))) from None
        final_s = time.monotonic() - t_final
        ex = d.metrics()
        appended = ex.value("augur_samples_appended_total", default=None)
        # The zero-config detector's own output samples count as appended too.
        derived = ex.value("augur_forecast_outputs_written_total", default=0)
        if appended is not None:
            appended -= derived
        cache = metric_values(d, "augur_query_cache_")
        rollup = metric_values(d, "augur_rollup")
        st = sh.stats
        print("  ingest: %d requests, %d samples acknowledged in %.1fs (%d retries after 5xx, %d "
              "after lost connections; daemon counts %s appended)" % (
                  st["requests"], st["samples"], ingest_s, st["retries_5xx"], st["retries_conn"],
                  appended), flush=True)
        print("  during ingest: %d queries checked (%d instant, %d range, %d series), mean %.0f ms; "
              "%d range queries reached past the watermark (%d steps unchecked then)" % (
                  during["queries"], during["instant"], during["range"], during["series_calls"],
                  1000 * during["qtime"] / max(1, during["queries"]), len(sh.replay),
                  during["steps_unchecked"]), flush=True)
        print("  dashboard panels: %d refreshes (%d panels, each asked again over its whole "
              "span at the end)" % (during["panel_refreshes"], len(PANELS)), flush=True)
        print("  after ingest: %d requests checked in %.1fs; %d values/series compared in all" % (
            nfinal, final_s, st["points"]), flush=True)
        print("  query cache: %s%s" % (
            ", ".join("%s=%g" % (k[len("augur_query_cache_"):], v) for k, v in sorted(cache.items())),
            ("; rollups: " + ", ".join("%s=%g" % kv for kv in sorted(rollup.items()))) if rollup else ""),
            flush=True)
        if appended is not None:
            check(appended == total_samples, "augur_samples_appended_total less the detector's "
                  "outputs (%d) is %s, %d samples were sent once each" % (derived, appended, total_samples))
    finally:
        sh.stop.set()
        for th in writers + queriers:
            th.join(30)


test_ingest_and_queries_concurrently.timeout = 300


def asked_again(recheck):
    """Asks a failed question once more (the writers have stopped) and says what came back."""
    if recheck is None:
        return ""
    try:
        recheck()
        return "\n  asked again after the writers stopped: the answer is now right (a transient error)"
    except Mismatch as e:
        return "\n  asked again after the writers stopped: %s" % e
    except Exception as e:  # noqa: BLE001
        return "\n  asking again failed: %r" % e
