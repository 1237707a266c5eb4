"""test_promql_random.py - random PromQL expressions, augurd against the real Prometheus 2.42.

    python3 tests/integration/run.py --augurd build/augurd -k test_promql_random
    PROMQL_RANDOM_SEED=7 PROMQL_RANDOM_COUNT=5000 python3 tests/integration/run.py ...

test_random_promql_matches_prometheus:
  the same hand-made data set (random_data, seeded by RANDOM_DATA_SEED whatever the expression
  seed) goes by remote write to augurd and to Prometheus' own receiver
  (--web.enable-remote-write-receiver); then PROMQL_RANDOM_COUNT expressions drawn from a PromQL
  grammar (Gen) with PROMQL_RANDOM_SEED run on both, each as an instant query at 4 times and as
  a range query over 2 start/end/step combinations (drawn from INSTANT_TIMES and RANGE_QUERIES
  by seed and expression number). Status codes must be equal (error messages are not
  compared); for 200 answers the result type, the series sets and every [t, "value"] must be
  equal as strings, except where approx_reason allows 1e-12 relative (another summation order,
  Go's math package against libm, rollup buckets; see the comment above it). Order: range
  query matrices must list the series in the same order (Prometheus sorts them by labels);
  instant vectors are sets, except under a top-level sort, sort_desc, or topk/bottomk without
  grouping, where the sequence of values must be equal (ties have no defined order). Which of
  equal values topk/bottomk keep is not defined either: at the top level answers with the same
  values at every timestamp are equal whatever the series; nested, k keeps all or nothing.

  The data: ~1 h of 15 s samples ending ~5 minutes before now on 57 series of 5 names:
    rt_requests_total{job,instance,mode}   counters, resets, gaps, stale markers, a late start,
                                           whole-second, shifted and odd-millisecond timestamps
    rt_temp{job,instance}                  gauges: negative, fractional, large, tiny, constant,
                                           x.5 ties, one NaN and one +Inf sample, a stale end
    rt_latency_seconds_bucket{job,instance,le}, rt_latency_seconds_count{job,instance}
                                           a classic histogram (7 buckets), one reset
    rt_info{job,instance,version}          1s; one instance changes version half way (stale)

  The grammar covers selectors with all four matcher kinds (named and nameless), offset, @ with
  a timestamp, start() and end(), range selectors and subqueries (with and without a step),
  every range function of 2.42, the instant functions (math, clamp, round with to_nearest,
  timestamp, label_replace/label_join, sort, histogram_quantile, absent, scalar, vector,
  time, date and trigonometric functions), every aggregation with by/without (prefix and
  suffix), binary operators (arithmetic, atan2, comparisons with and without bool, and/or/
  unless, on/ignoring/group_left/group_right, scalar-vector and scalar-scalar), unary minus
  and parentheses, nested 1 to 4 deep; some expressions are invalid or fail on purpose (both
  must then fail alike). Nothing newer than 2.42, nothing the README lists as unsupported
  (native histograms...) and no negative offsets (a feature flag in 2.42). Left out because
  Prometheus 2.42 itself answers them wrongly or arbitrarily (measured; see the comments):
  predict_linear and quantile_over_time over a range with @, timestamp() of a selector with
  both offset and @, date
  functions of NaN/Inf/huge values (Go's undefined float-to-int64 conversion).

  If augurd dies on a query, that query is retried alone after a restart on the same data dir
  (class Augurd): a second death reports it as a crash, and the run goes on.

Environment:
  PROMQL_RANDOM_SEED     expression seed (default 1)
  PROMQL_RANDOM_COUNT    number of expressions (default 2500: ~30 s on 2 cores, ~35 s with ASan)
  PROMQL_RANDOM_QUERIES  newline-separated expressions to run instead of generated ones
                         (to reproduce or reduce a reported mismatch)
  PROMQL_RANDOM_SKIP     a regular expression: generated expressions matching it are skipped
                         (to look past a known bug while triaging)
  PROMQL_RANDOM_VERBOSE  1: print every expression with its outcome
Every mismatch is printed when found, with its expression, query time(s) (also relative to the
data's base time "b", a whole minute) and both answers, and the test fails if there is any.
"""
import concurrent.futures
import json
import math
import os
import random
import re
import threading
import time

from harness import (REMOTE_WRITE_HEADERS, STALE, ConnectionFailed, encode_write_request, http_get,
                     http_post, ms_to_ts_str, snappy_compress)
from test_prometheus import PROMETHEUS, start_prometheus

RANDOM_DATA_SEED = 20261127
SEED = int(os.environ.get("PROMQL_RANDOM_SEED", "1"))
COUNT = int(os.environ.get("PROMQL_RANDOM_COUNT", "2500"))
VERBOSE = os.environ.get("PROMQL_RANDOM_VERBOSE") == "1"

S = 1000
M = 60 * S
SPAN = 3600 * S  # samples at b .. b + SPAN


# ---------------------------------------------------------------------------------------------
# data


def random_data(now_ms):
    """(b, series): b is a whole minute 65 minutes before now; samples in [b - 1s, b + 1h + 1s]."""
    rng = random.Random(RANDOM_DATA_SEED)
    b = (now_ms // M) * M - 65 * M
    n = SPAN // (15 * S) + 1  # 241 samples at 15 s
    series = []

    def grid(kind, k):
        """Sample time k of a series with timestamps of the given kind."""
        t = b + k * 15 * S
        if kind == "shift":  # whole seconds, not on the 15 s grid of the others
            return t + 7 * S
        if kind == "odd":  # odd milliseconds, jittered like a real scrape
            return t + 137 + rng.randint(-50, 50)
        return t

    # counters: 2 jobs x 3 instances x 2 modes
    kinds = {"a:1": "exact", "b:2": "shift", "c:3": "odd"}
    for job in ("api", "db"):
        for inst in ("a:1", "b:2", "c:3"):
            for mode in ("get", "put"):
                key = (job, inst, mode)
                v = float(rng.choice([0, 5, 1000, 123456]))
                samples = []
                for k in range(n):
                    t = grid(kinds[inst], k)
                    sec = k * 15
                    if key == ("api", "b:2", "get") and 1200 <= sec < 1620:
                        continue  # a 7-minute gap: longer than the lookback
                    if key == ("db", "a:1", "put") and 2000 <= sec < 2100:
                        continue  # a short gap
                    if key == ("db", "b:2", "put") and sec < 1800:
                        continue  # starts half way
                    if key == ("db", "c:3", "get") and sec > 3000:
                        if sec == 3015:
                            samples.append((t, STALE))  # disappears with a stale marker
                        continue
                    if key == ("api", "a:1", "put") and sec == 2400:
                        samples.append((t, STALE))  # stale marker, then back at 2700s
                        continue
                    if key == ("api", "a:1", "put") and 2400 < sec < 2700:
                        continue
                    if rng.random() < 0.015 or (key == ("api", "c:3", "get") and sec == 1805):
                        v = float(rng.choice([0, 0, 1, 3]))  # counter reset
                    elif mode == "get":
                        v += rng.randint(0, 12)
                    else:
                        v += rng.choice([0, 0.25, 0.5, 1.125, 2.75, 10])
                    samples.append((t, v))
                series.append(({"__name__": "rt_requests_total", "job": job, "instance": inst,
                                "mode": mode}, samples))

    # gauges
    gauge_kind = {("api", "a:1"): "walk", ("api", "b:2"): "large", ("api", "c:3"): "tiny",
                  ("api", "d:4"): "const", ("db", "a:1"): "ties", ("db", "b:2"): "walk"}
    for (job, inst), kind in gauge_kind.items():
        samples = []
        v = {"walk": -3.0, "large": 1.5e6, "tiny": 0.002, "const": 3.3, "ties": 0.0}[kind]
        for k in range(n):
            sec = k * 15
            t = grid("odd" if inst == "d:4" else ("shift" if inst == "c:3" else "exact"), k)
            if kind == "walk":
                v = round(v + rng.uniform(-2, 2), rng.choice([1, 2, 3]))
            elif kind == "large":
                v = round(v + rng.uniform(-5000, 5000), 1)
            elif kind == "tiny":
                v = round(rng.uniform(-0.005, 0.01), 5)
            elif kind == "ties":
                v = rng.choice([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, -7.25, 12.75])
            if (job, inst) == ("db", "a:1") and sec == 1500:
                samples.append((t, float("nan")))
                continue
            if (job, inst) == ("db", "a:1") and sec == 2000 // 15 * 15:
                samples.append((t, float("inf")))
                continue
            if (job, inst) == ("db", "b:2") and sec >= 3300:
                if sec == 3300:
                    samples.append((t, STALE))
                continue
            samples.append((t, v))
        series.append(({"__name__": "rt_temp", "job": job, "instance": inst}, samples))

    # a classic histogram: 2 jobs x 2 instances x 7 buckets, and its _count
    les = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
    for job in ("api", "db"):
        for inst in ("a:1", "b:2"):
            counts = [0] * len(les)
            per = {le: [] for le in les}
            for k in range(n):
                sec = k * 15
                t = grid("exact", k) + (250 if inst == "b:2" else 0)
                if (job, inst) == ("db", "b:2") and sec == 1500:
                    counts = [0] * len(les)  # restart: every bucket resets
                for _ in range(rng.randint(0, 15)):
                    x = rng.expovariate(3.0 if job == "api" else 1.2)
                    for i, le in enumerate(les):
                        if le == "+Inf" or x <= float(le):
                            counts[i] += 1
                for i, le in enumerate(les):
                    per[le].append((t, float(counts[i])))
            for le in les:
                series.append(({"__name__": "rt_latency_seconds_bucket", "job": job, "instance": inst,
                                "le": le}, per[le]))
            series.append(({"__name__": "rt_latency_seconds_count", "job": job, "instance": inst},
                           per["+Inf"]))

    # info series: 1s; api/c:3 changes version at 1800s
    for job in ("api", "db"):
        for inst in ("a:1", "b:2", "c:3"):
            if (job, inst) == ("api", "c:3"):
                old = [(grid("exact", k), 1.0) for k in range(n) if k * 15 < 1800] + [(b + 1800 * S, STALE)]
                new = [(grid("exact", k) + 1, 1.0) for k in range(n) if k * 15 >= 1800]
                series.append(({"__name__": "rt_info", "job": job, "instance": inst, "version": "v1"}, old))
                series.append(({"__name__": "rt_info", "job": job, "instance": inst, "version": "v2"}, new))
            else:
                series.append(({"__name__": "rt_info", "job": job, "instance": inst,
                                "version": "v1" if job == "api" else "v2"},
                               [(grid("exact", k), 1.0) for k in range(n)]))
    # Prometheus' head accepts samples down to 1 h before the first one it sees: start with
    # the series holding the earliest sample.
    series.sort(key=lambda s: min(t for t, _ in s[1]))
    return b, series


# ---------------------------------------------------------------------------------------------
# the grammar

METRICS = {
    "rt_requests_total": ("job", "instance", "mode"),
    "rt_temp": ("job", "instance"),
    "rt_latency_seconds_bucket": ("job", "instance", "le"),
    "rt_latency_seconds_count": ("job", "instance"),
    "rt_info": ("job", "instance", "version"),
}
METRIC_WEIGHTS = [("rt_requests_total", 5), ("rt_temp", 5), ("rt_latency_seconds_bucket", 2),
                  ("rt_latency_seconds_count", 1), ("rt_info", 1), ("rt_missing", 0.2)]
VALUES = {
    "job": ["api", "db", "web", ""],
    "instance": ["a:1", "b:2", "c:3", "d:4", ""],
    "mode": ["get", "put", ""],
    "le": ["0.1", "0.5", "+Inf", "1", "2.5"],
    "version": ["v1", "v2"],
}
REGEXES = {
    "job": ["api|db", "a.*", ".*", ".+", "", "d.", "(?i)API", "web|db"],
    "instance": ["[ab]:.*", "(a|c):[0-9]", ".*:1", "d.*", ".+", "x?", "c:3|d:4"],
    "mode": ["get|put", "p.*", ".*", "g.t", ""],
    "le": ["0\\.[15]", "\\+Inf", "1|2\\.5", ".*5.*", "0.*"],
    "version": ["v1", "v.", "v[2-9]"],
}
GROUP_LABELS = ["job", "instance", "mode", "le", "version"]

RANGE_FUNCS = ["rate", "irate", "increase", "delta", "idelta", "deriv", "resets", "changes",
               "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
               "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time",
               "absent_over_time"]
MATH_FUNCS = ["abs", "ceil", "floor", "round", "sqrt", "exp", "ln", "log2", "log10", "sgn"]
DATE_FUNCS = ["day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month",
              "year"]
TRIG_FUNCS = ["acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh",
              "tan", "tanh", "deg", "rad"]
RANGES = ["15s", "30s", "45s", "1m", "90s", "2m", "1m30s", "5m", "10m", "30m", "1h"]
SUB_RANGES = ["5m", "10m", "30m", "1h"]
SUB_STEPS = ["", "15s", "30s", "1m", "45s", "2m", "10s"]
OFFSETS = ["1m", "5m", "90s", "17s", "30m", "1h", "0s"]
NUMBERS = ["0", "1", "2", "3", "0.5", "10", "100", "1e3", "0.1", "2.5", "1e-3", "0x10", "-1", "-0.5",
           "NaN", "Inf", "-Inf"]
ARITH = ["+", "-", "*", "/", "%", "^", "atan2"]
COMPARE = ["==", "!=", ">", "<", ">=", "<="]
SETOPS = ["and", "or", "unless"]


class Gen:
    """Random PromQL text from a typed grammar: vector(), scalar() and matrix() return strings
    of expressions of that type (a few are invalid on purpose; both servers must then fail)."""

    def __init__(self, rng, b):
        self.r = rng
        self.b = b
        self.subqueries = 0
        self.top = False

    # -- helpers
    def pick(self, weighted):
        tot = sum(w for _, w in weighted)
        x = self.r.random() * tot
        for v, w in weighted:
            x -= w
            if x < 0:
                return v
        return weighted[-1][0]

    def chance(self, p):
        return self.r.random() < p

    def labels(self, lo=0, hi=2):
        k = self.r.randint(lo, hi)
        return self.r.sample(GROUP_LABELS, k)

    def number(self):
        return self.r.choice(NUMBERS)

    def at_time(self):
        # an absolute time inside (or just beside) the data, often on odd milliseconds
        ms = self.b + self.r.choice([0, 900 * S, 1800 * S + 500, 2412 * S + 7, SPAN, SPAN + 120 * S,
                                     -60 * S])
        return ms_to_ts_str(ms)

    def modifiers(self, p, at=True):
        """offset and/or @ after a selector or subquery, in either order."""
        mods = []
        if self.chance(p):
            mods.append("offset " + self.r.choice(OFFSETS))
        if at and self.chance(p * 0.6):
            mods.append("@ " + self.r.choice(["start()", "end()", self.at_time()]))
        self.r.shuffle(mods)
        return "".join(" " + m for m in mods)

    # -- selectors
    def matcher(self, label):
        op = self.r.choice(["=", "!=", "=~", "!~"])
        if op in ("=", "!="):
            vals = VALUES.get(label, ["x", ""])
            val = self.r.choice(vals) if not self.chance(0.08) else "zzz"
        else:
            val = self.r.choice(REGEXES.get(label, [".*"]))
        return '%s%s"%s"' % (label, op, val.replace("\\", "\\\\"))

    def selector(self, name=None, mods=0.2):
        if name is None:
            name = self.pick(METRIC_WEIGHTS) if not self.chance(0.08) else ""
        if not name:  # nameless: one matcher must not match the empty string
            first = self.r.choice(['__name__=~"rt_(temp|info)"', 'job="api"', '__name__=~"rt_req.*|rt_temp"',
                                   'instance=~"[ab]:.*"', '__name__!="rt_info",job="db"',
                                   '__name__="rt_temp"'])
            ms = [first] + [self.matcher(self.r.choice(GROUP_LABELS)) for _ in range(self.r.randint(0, 1))]
            return "{%s}%s" % (",".join(ms), self.modifiers(mods))
        labels = list(METRICS.get(name, ("job",)))
        ms = []
        for _ in range(self.pick([(0, 5), (1, 4), (2, 1.5), (3, 0.3)])):
            lab = self.r.choice(labels) if not self.chance(0.1) else self.r.choice(GROUP_LABELS)
            ms.append(self.matcher(lab))
        if self.chance(0.05):
            ms.append('__name__=~"%s"' % name.replace("_", "."))
        text = name + ("{%s}" % ",".join(ms) if ms else "")
        return text + self.modifiers(mods)

    # -- range vectors
    def matrix(self, d, at=True):
        """A range vector; at=False: without @ on it (see v_rangefn)."""
        if d >= 1 and self.subqueries < 2 and self.chance(0.2):
            self.subqueries += 1
            inner = self.vector(d - 1)
            if not re.match(r"^[a-z_]*(\{[^}]*\})?$", inner):
                inner = "(%s)" % inner
            return "%s[%s:%s]%s" % (inner, self.r.choice(SUB_RANGES), self.r.choice(SUB_STEPS),
                                     self.modifiers(0.15, at))
        name = self.pick(METRIC_WEIGHTS) if not self.chance(0.05) else ""
        sel = self.selector(name, mods=0)
        return "%s[%s]%s" % (sel, self.r.choice(RANGES), self.modifiers(0.2, at))

    # -- scalars
    def scalar(self, d):
        if d <= 0:
            return self.pick([(self.number(), 6), ("time()", 1), ("pi()", 0.3)])
        k = self.pick([("num", 3), ("time", 1), ("scalar", 2), ("op", 2), ("neg", 0.5), ("paren", 0.3)])
        if k == "num":
            return self.number()
        if k == "time":
            return "time()"
        if k == "scalar":
            return "scalar(%s)" % self.vector(d - 1)
        if k == "neg":
            return "-%s" % self.scalar(d - 1)
        if k == "paren":
            return "(%s)" % self.scalar(d - 1)
        op = self.r.choice(ARITH + COMPARE)
        if op in COMPARE:
            op += " bool" if not self.chance(0.05) else ""  # scalar comparisons need bool
        return "%s %s %s" % (self.scalar(d - 1), op, self.scalar(d - 1))

    def param(self, d, choices):
        """A function's scalar parameter: mostly a literal from choices."""
        if d >= 1 and self.chance(0.08):
            return self.scalar(d - 1)
        return self.r.choice(choices)

    # -- instant vectors
    def vector(self, d):
        top, self.top = self.top, False
        if d <= 0:
            return self.selector()
        k = self.pick([("sel", 0.7), ("rangefn", 4), ("mathfn", 2), ("fn", 3), ("agg", 3.5),
                       ("binop", 3.5), ("neg", 0.4), ("paren", 0.3), ("hq", 0.8), ("join", 0.6)])
        return self.v_agg(d, top) if k == "agg" else getattr(self, "v_" + k)(d)

    def v_sel(self, d):
        return self.selector()

    def v_neg(self, d):
        return "-" + self.vector(d - 1)

    def v_paren(self, d):
        return "(%s)" % self.vector(d - 1)

    def v_rangefn(self, d):
        f = self.pick([(f, 1) for f in RANGE_FUNCS] + [("predict_linear", 1), ("quantile_over_time", 1),
                                                      ("holt_winters", 0.7)])
        # predict_linear over a range with @ is left out: Prometheus 2.42 answers range queries
        # of predict_linear(x[r] @ t, s) wrongly (the window, fixed by @, loses samples after
        # the first step: 2 points where there should be one a step; measured here). Its
        # result depends on the step time (AtModifierUnsafeFunctions), augurd's is right.
        # quantile_over_time(<non-constant q>, x[r] @ t) likewise: 2.42 keeps the first few
        # steps of the range query only (measured with q = 0.5 < bool time()).
        m = self.matrix(d - 1, at=f not in ("predict_linear", "quantile_over_time"))
        if f == "predict_linear":
            return "predict_linear(%s, %s)" % (m, self.param(d, ["60", "600", "-300", "0", "3600", "0.5"]))
        if f == "quantile_over_time":
            return "quantile_over_time(%s, %s)" % (self.param(d, ["0", "0.25", "0.5", "0.9", "1", "-0.5", "1.5"]), m)
        if f == "holt_winters":
            return "holt_winters(%s, %s, %s)" % (m, self.r.choice(["0.5", "0.1", "0.9", "0.3"]),
                                                 self.r.choice(["0.5", "0.1", "0.9", "0.7"]))
        return "%s(%s)" % (f, m)

    def v_mathfn(self, d):
        f = self.pick([(f, 1) for f in MATH_FUNCS] + [(f, 0.12) for f in TRIG_FUNCS])
        if f == "round" and self.chance(0.5):
            return "round(%s, %s)" % (self.vector(d - 1), self.param(d, ["0.5", "2", "10", "0.1", "3", "-1"]))
        return "%s(%s)" % (f, self.vector(d - 1))

    def v_fn(self, d):
        f = self.pick([("clamp", 1), ("clamp_min", 1), ("clamp_max", 1), ("timestamp", 1),
                       ("label_replace", 1.2), ("label_join", 0.6), ("sort", 0.8), ("sort_desc", 0.8),
                       ("absent", 0.6), ("vector", 0.7), ("date", 1), ("time", 0.2),
                       ("absent_sel", 0.3)])
        if f == "clamp":
            lo = self.param(d, ["-1", "0", "2", "10", "-100"])
            hi = self.param(d, ["1", "5", "100", "-5", "1e3"])
            return "clamp(%s, %s, %s)" % (self.vector(d - 1), lo, hi)
        if f in ("clamp_min", "clamp_max"):
            return "%s(%s, %s)" % (f, self.vector(d - 1), self.param(d, ["0", "1", "-2.5", "100", "1e5"]))
        if f == "label_replace":
            dst, repl, src, regex = self.r.choice([
                ("host", "$1", "instance", "(.*):.*"), ("port", "$2", "instance", "(.*):(.*)"),
                ("job", "x-$1", "job", "(a.*)"), ("job", "", "job", "db"), ("mode", "m", "mode", ""),
                ("le", "$1", "instance", "[a-z]:(.*)"), ("new", "${1}_x", "job", "(.*)"),
                ("__name__", "renamed", "job", "api"), ("instance", "all", "instance", ".*"),
                ("1bad", "x", "job", "(.*)"), ("tag", "$1", "nosuch", "(.*)"), ("tag", "z", "job", "(")])
            return 'label_replace(%s, "%s", "%s", "%s", "%s")' % (self.vector(d - 1), dst, repl, src, regex)
        if f == "label_join":
            dst = self.r.choice(["joined", "job", "instance", "__name__"])
            srcs = self.r.sample(["job", "instance", "mode", "le", "nosuch"], self.r.randint(0, 3))
            sep = self.r.choice(["-", ",", ""])
            return 'label_join(%s, "%s", "%s"%s)' % (self.vector(d - 1), dst, sep,
                                                     "".join(', "%s"' % s for s in srcs))
        if f == "timestamp":
            return "timestamp(%s)" % self.timestamp_arg(d)
        if f in ("sort", "sort_desc", "absent"):
            return "%s(%s)" % (f, self.vector(d - 1))
        if f == "absent_sel":
            return "absent(%s)" % self.selector(self.r.choice(["rt_missing", "rt_temp", ""]))
        if f == "vector":
            return "vector(%s)" % self.scalar(d - 1)
        if f == "time":
            return self.r.choice(["vector(time())", "timestamp(vector(1))"])
        f = self.r.choice(DATE_FUNCS)
        if self.chance(0.3):
            return "%s()" % f
        # Only finite arguments that fit an int64: Prometheus turns NaN, +-Inf and huge values
        # into Go's undefined int64 conversion (year(vector(NaN)) is 292277026596) where augurd
        # answers NaN on purpose (functions.c date_part). rt_temp has a NaN and an Inf sample.
        return "%s(%s)" % (f, self.r.choice([
            "timestamp(%s)" % self.timestamp_arg(d), "timestamp(%s)" % self.timestamp_arg(0),
            self.selector(self.pick([(m, w) for m, w in METRIC_WEIGHTS if m != "rt_temp"])),
            "vector(time() + %s)" % self.r.choice(["0", "-86400 * 40", "3600 * 7.5", "1e9"])]))

    def timestamp_arg(self, d):
        """timestamp()'s argument. Not a selector with both offset and @: Prometheus 2.42 then
        looks for samples at the wrong time (timestamp(x offset 5m @ end()) is empty when
        x offset 5m @ end() is not; measured here), augurd answers right."""
        v = self.vector(d - 1) if d >= 1 else self.selector()
        if re.fullmatch(r"[a-z_:]*(\{[^{}]*\})?( offset \w+| @ \S+)*", v) and " offset " in v and " @ " in v:
            v = re.sub(r" @ \S+", "", v)
        return v

    def v_hq(self, d):
        phi = self.param(d, ["0.5", "0.9", "0.99", "0", "1", "-1", "2", "0.25", "NaN"])
        r = self.r.choice(["1m", "5m", "90s", "10m", "30m"])
        m = self.r.choice(['', '{job="api"}', '{instance=~"b.*"}', '{le!="0.1"}', '{job!="db"}'])
        inner = self.pick([
            ("rate(rt_latency_seconds_bucket%s[%s])" % (m, r), 2),
            ("sum by (le) (rate(rt_latency_seconds_bucket%s[%s]))" % (m, r), 2),
            ("sum by (job, le) (increase(rt_latency_seconds_bucket%s[%s]))" % (m, r), 1),
            ("sum without (instance) (irate(rt_latency_seconds_bucket%s[%s]))" % (m, r), 1),
            ("rt_latency_seconds_bucket%s" % m, 1),
            ("max by (le) (rt_latency_seconds_bucket%s)" % m, 0.5),
            ("rt_latency_seconds_bucket%s offset 10m" % m, 0.3),
            (None, 1)])
        if inner is None:
            inner = self.vector(d - 1)
        return "histogram_quantile(%s, %s)" % (phi, inner)

    def grouping(self):
        g = self.pick([("", 3), ("by", 3), ("without", 2)])
        if not g:
            return "", ""
        text = "%s (%s)" % (g, ", ".join(self.labels(0 if self.chance(0.1) else 1, 2)))
        return (text + " ", "") if self.chance(0.7) else ("", " " + text)

    def v_agg(self, d, top=False):
        op = self.pick([("sum", 3), ("min", 1), ("max", 1), ("avg", 2), ("count", 1.5), ("group", 0.5),
                        ("stddev", 1), ("stdvar", 1), ("topk", 1.5), ("bottomk", 1.2), ("quantile", 1.2),
                        ("count_values", 1)])
        pre, post = self.grouping()
        inner = self.vector(d - 1)
        if op in ("topk", "bottomk"):
            # Which of equal values topk/bottomk keep is not defined (Prometheus: the first one
            # met, in an order that comes from a Go map in range queries). At the top level
            # the comparison allows for it (compare_data's ties); nested, the choice would show
            # in the labels or values of what follows, so there k keeps all or nothing.
            k = self.param(d, ["1", "2", "3", "0", "100", "1.5"]) if top else self.r.choice(["100", "0", "-1"])
            if self.chance(0.04):
                k = self.r.choice(["NaN", "Inf", "1e20"])  # errors in 2.42
            args = "%s, %s" % (k, inner)
        elif op == "quantile":
            args = "%s, %s" % (self.param(d, ["0", "0.25", "0.5", "0.9", "1", "-0.5", "1.5", "NaN"]), inner)
        elif op == "count_values":
            args = '"%s", %s' % (self.r.choice(["value", "v", "job", "le", "__name__"]), inner)
        else:
            args = inner
        return "%s %s(%s)%s" % (op, pre, args, post) if pre else "%s(%s)%s" % (op, args, post)

    def matching(self, op):
        """' bool', ' on(...)', ' ignoring(...) group_left(...)' etc. for a vector-vector op."""
        out = ""
        if op in COMPARE and self.chance(0.4):
            out += " bool"
        k = self.pick([("", 4), ("on", 3), ("ignoring", 2)])
        if k:
            out += " %s(%s)" % (k, ", ".join(self.labels(0 if self.chance(0.15) else 1, 2)))
            if op not in SETOPS and self.chance(0.3):
                g = self.r.choice(["group_left", "group_right"])
                lab = self.labels(0, 1)
                out += " %s%s" % (g, "(%s)" % ", ".join(lab) if lab or self.chance(0.5) else "")
        return out

    def v_binop(self, d):
        op = self.pick([(o, 1) for o in ARITH] + [(o, 0.9) for o in COMPARE] + [(o, 1.5) for o in SETOPS])
        if op not in SETOPS and self.chance(0.45):
            v, s = self.vector(d - 1), self.scalar(d - 1)
            if op in COMPARE and self.chance(0.4):
                op += " bool"
            return "%s %s %s" % (v, op, s) if self.chance(0.6) else "%s %s %s" % (s, op, v)
        lhs, rhs = self.vector(d - 1), self.vector(d - 1)
        return "%s %s%s %s" % (lhs, op, self.matching(op), rhs)

    def v_join(self, d):
        """Joins that match by construction: info metrics, same-shaped operands."""
        lhs = self.vector(d - 1)
        return self.r.choice([
            "%s * on(job, instance) group_left(version) rt_info" % lhs,
            "rt_info * on(job, instance) group_right(version) %s" % lhs,
            "%s / ignoring(mode) group_left sum without (mode) (rt_requests_total)" % lhs,
            "%s and on(job) rt_temp > 0" % lhs,
            "%s unless on(instance) rt_info{version=\"v2\"}" % lhs,
            "%s > on(job, instance) group_left rt_temp" % lhs,
            "%s - ignoring(le) group_left rt_latency_seconds_count" % lhs,
        ])

    def expr(self):
        self.subqueries = 0
        self.top = True
        depth = self.r.randint(1, 4)
        x = self.r.random()
        if x < 0.05:
            return self.scalar(depth)
        if x < 0.07:
            return self.matrix(depth - 1)
        return self.vector(depth)


def generate(seed, count, b):
    g = Gen(random.Random(seed), b)
    return [g.expr() for _ in range(count)]


# ---------------------------------------------------------------------------------------------
# comparison

# Values are compared as strings except where augurd may legitimately differ in the last bits;
# there 1e-12 relative is allowed (approx_reason says why, and the report says so):
#  - the same numbers added in another order: the sum/avg/stddev/stdvar/quantile aggregations
#    (augurd groups differently; and in a range query Prometheus itself adds a step's samples
#    in the order of a Go map: the same query repeated gives different last bits),
#    histogram_quantile's bucket arithmetic over such sums, the regression of
#    deriv/predict_linear, holt_winters' smoothing;
#  - libm against Go's math package: Go's exp (amd64 assembly), Pow and Atan2 and the
#    hyperbolic functions built on exp are not glibc's, which is correctly rounded or nearly
#    (README, "What does not work yet", names exp; the others were measured: ^, atan2, sinh,
#    cosh, tanh, asinh, acosh, atanh differ in the last bit on 1-30% of this data set, and
#    sin, cos, tan on ~10% of timestamps, where argument reduction matters);
#  - windows augurd answers from its 1-minute rollup buckets (README, "Rollups": ranges of 30
#    buckets or more over a plain selector): sums, averages and counter-reset corrections are
#    added bucket by bucket.
# Everything else (sum_over_time and avg_over_time on shorter windows included) must match
# bit for bit.
APPROX_TOKENS = re.compile(r"\b(sum|avg|stddev|stdvar|quantile|histogram_quantile|predict_linear|deriv|"
                           r"holt_winters)\b")
LIBM_TOKENS = re.compile(r"\b(exp|atan2|sinh|cosh|tanh|asinh|acosh|atanh|sin|cos|tan)\b|\^")
ROLLUP_WINDOW = re.compile(r"\b(sum_over_time|avg_over_time|rate|increase)\(\s*[a-z_:]*(\{[^{}]*\})?"
                           r"\[(30m|1h)\](?!\s*(offset\s+\w+\s*)?@)")  # never with @
REL_TOL = (1e-12, 0)
# The stddev and stdvar aggregations (Welford's algorithm) are ill-conditioned on values far
# from zero: on timestamps (1.8e9 +- milliseconds to a minute) another order of the same
# samples changes the 6th digit of a small variance (Prometheus 2.42 alone answers
# stdvar without (instance) (timestamp(rt_requests_total)) over a range with 5 different
# values in 6 runs). They get 1e-6 relative or 1e-6 absolute.
WELFORD = re.compile(r"\b(stddev|stdvar)\b")
WELFORD_TOL = (1e-6, 1e-6)


def approx_reason(q):
    """(why the values of q may differ in the last bits, relative tolerance), or None (then
    they must be equal strings)."""
    q = re.sub(r'"(\\.|[^"\\])*"', '""', q)  # label values and regexes are not operators
    m = WELFORD.search(q)
    if m:
        return "%s: another summation order, ill-conditioned" % m.group(1), WELFORD_TOL
    m = APPROX_TOKENS.search(q)
    if m:
        return "%s: another summation order" % m.group(1), REL_TOL
    m = LIBM_TOKENS.search(q)
    if m:
        return "%s: Go's math package is not glibc's libm" % m.group(0), REL_TOL
    m = ROLLUP_WINDOW.search(q)
    if m:
        return "%s over %s: may be added from rollup buckets" % (m.group(1), m.group(3)), REL_TOL
    return None


def same_value(a, b, tol):
    """Equal strings, or (with tol = (relative, absolute)) finite numbers within either."""
    if a == b:
        return True
    if not tol:
        return False
    try:
        fa, fb = float(a), float(b)
    except ValueError:
        return False
    if math.isnan(fa) or math.isnan(fb) or math.isinf(fa) or math.isinf(fb):
        return False
    return abs(fa - fb) <= max(tol[0] * max(abs(fa), abs(fb)), tol[1])


def _series(data, float_labels=()):
    """[(labels as JSON, [(t, value)])]. float_labels: labels whose values are numbers that may
    differ in the last bits (count_values' over approximate values): rounded to 12 digits."""
    key = "value" if data["resultType"] == "vector" else "values"
    out = []
    for x in data["result"]:
        pts = [x[key]] if key == "value" else x[key]
        metric = dict(x["metric"])
        for name in float_labels:
            try:
                metric[name] = "%.12g" % float(metric[name])
            except (KeyError, ValueError):
                pass
        out.append((json.dumps(metric, sort_keys=True), [(p[0], p[1]) for p in pts]))
    return out


def _short(j, n=400):
    s = json.dumps(j, sort_keys=True)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def top_level_ordered(q):
    """True where Prometheus guarantees the order of an instant vector: a top-level sort or
    sort_desc, or a topk/bottomk without grouping (one group, sorted by value)."""
    s = q.strip()
    while s.startswith("(") and s.endswith(")") and _balanced(s[1:-1]):
        s = s[1:-1].strip()
    m = re.match(r"^(sort|sort_desc|topk|bottomk)\s*\(", s)
    if not m or not _balanced_call(s, m.end() - 1):
        return False
    if m.group(1) in ("topk", "bottomk"):
        return not re.search(r"\)\s*(by|without)\s*\([^()]*\)\s*$", s)
    return True


def _balanced(s):
    depth = 0
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def _balanced_call(s, open_idx):
    """True if the parenthesis at open_idx closes at the end of s (ignoring a trailing by/without)."""
    depth = 0
    for i in range(open_idx, len(s)):
        if s[i] == "(":
            depth += 1
        elif s[i] == ")":
            depth -= 1
            if depth == 0:
                rest = s[i + 1:].strip()
                return rest == "" or re.match(r"^(by|without)\s*\([^()]*\)$", rest) is not None
    return False


def _values_by_time(series):
    out = {}
    for _, pts in series:
        for t, v in pts:
            out.setdefault(t, []).append(v)
    return {t: sorted(vs, key=lambda v: (not math.isnan(float(v)), float(v))) for t, vs in out.items()}


def _same_values_by_time(sp, sa, approx):
    """The multisets of values at each timestamp are equal (each value within approx)."""
    vp, va = _values_by_time(sp), _values_by_time(sa)
    return vp.keys() == va.keys() and all(
        len(vp[t]) == len(va[t]) and all(same_value(x, y, approx) for x, y in zip(vp[t], va[t]))
        for t in vp)


def compare_data(dp, da, approx, order, ties=False, float_labels=()):
    """'' when equal; otherwise a description. order: 'labels' (matrix of a range query),
    'values' (a top-level sort/topk), or None (a set). ties: the expression has a topk or
    bottomk, whose choice among equal values is not defined: Prometheus keeps the first one
    it meets, and its order of series between steps comes from a Go map (random). Then answers
    with the same values at every timestamp (within approx) are equal even if the series
    differ: with approximate values, ties (+Inf, or values equal in both) pick other series."""
    if dp.get("resultType") != da.get("resultType"):
        return "result types differ: %s vs %s" % (dp.get("resultType"), da.get("resultType"))
    rt = dp["resultType"]
    if rt in ("scalar", "string"):
        (tp, vp), (ta, va) = dp["result"], da["result"]
        if tp != ta or not same_value(vp, va, approx if rt == "scalar" else 0):
            return "prometheus %r, augurd %r" % (dp["result"], da["result"])
        return ""
    sp, sa = _series(dp, float_labels), _series(da, float_labels)
    mp, ma = dict(sp), dict(sa)
    out = []
    if float_labels:  # rounding may merge series: merge their points
        mp, ma = {}, {}
        for m, ss in ((mp, sp), (ma, sa)):
            for k, pts in ss:
                m[k] = sorted(m.get(k, []) + pts, key=lambda p: (p[0], p[1]))
    elif len(mp) != len(sp) or len(ma) != len(sa):
        out.append("duplicate label sets (prometheus %d/%d, augurd %d/%d)" % (len(mp), len(sp), len(ma), len(sa)))
    only_p, only_a = sorted(set(mp) - set(ma)), sorted(set(ma) - set(mp))
    if only_p:
        out.append("%d series only in prometheus, e.g. %s=%s" % (len(only_p), only_p[0], _short(mp[only_p[0]], 120)))
    if only_a:
        out.append("%d series only in augurd, e.g. %s=%s" % (len(only_a), only_a[0], _short(ma[only_a[0]], 120)))
    ndiff = 0
    for k in sorted(set(mp) & set(ma)):
        pp, pa = mp[k], ma[k]
        bad = None
        if [t for t, _ in pp] != [t for t, _ in pa]:
            tp, ta = {t for t, _ in pp}, {t for t, _ in pa}
            bad = "timestamps differ (%d vs %d points; only prometheus %s; only augurd %s)" % (
                len(pp), len(pa), sorted(tp - ta)[:3], sorted(ta - tp)[:3])
        else:
            for (t, vp), (_, va) in zip(pp, pa):
                if not same_value(vp, va, approx):
                    bad = "at %s: prometheus %s, augurd %s" % (t, vp, va)
                    break
        if bad:
            ndiff += 1
            if ndiff <= 3:
                out.append("%s %s" % (k, bad))
    if ndiff > 3:
        out.append("... %d series with differing points" % ndiff)
    if out and ties and _same_values_by_time(sp, sa, approx):
        return ""
    if not out:
        # (a matrix is sorted by its label strings; approximate label values may sort apart)
        if order == "labels" and not float_labels and [k for k, _ in sp] != [k for k, _ in sa]:
            out.append("series order differs")
        elif order == "values":
            vp = [v[0][1] for _, v in sp]
            va = [v[0][1] for _, v in sa]
            if "NaN" not in vp and not all(same_value(x, y, approx) for x, y in zip(vp, va)):
                out.append("order of values differs: prometheus %s, augurd %s" % (vp[:10], va[:10]))
    return "; ".join(out)


INSTANT_TIMES = [0, SPAN, SPAN + 270 * S, 1800 * S + 7, 2700 * S, 900 * S - 1, 2400 * S + 333,
                 3000 * S + 500, -60 * S, SPAN + 400 * S, 77 * 15 * S, 1234 * S + 567, 60 * S,
                 1507 * S, 3015 * S + 137]
RANGE_QUERIES = [(0, SPAN, 60 * S), (1234, SPAN + 100 * S, 47 * S), (600 * S, 1500 * S, 15 * S),
                 (-300 * S, SPAN + 300 * S, 120 * S), (1799 * S + 999, 2100 * S + 1, 1 * S)]


def rel(ms, b):
    return "b%+.3fs" % ((ms - b) / 1000.0)


class Augurd:
    """augurd's side of the queries. A query that finds augurd down (a connection error, or
    the plain 503 of a daemon not ready yet) waits until augurd is restarted on the same data
    dir and is then retried while no other query runs: if augurd dies on it again, that query
    is reported as the crash (and augurd restarted once more, so the other expressions still
    run); queries that were merely in flight when another one killed augurd are not blamed."""

    def __init__(self, d):
        self.d = d
        self.cond = threading.Condition()
        self.running = 0        # ordinary queries in flight
        self.exclusive = False  # a retry (or a restart) holds augurd alone
        self.generation = 0     # restarts so far
        self.crashes = 0

    def _query(self, path, params):
        try:
            r = http_get(self.d.base + path, params, timeout=120)
        except ConnectionFailed as e:
            return None, str(e)
        if r.status == 503 and not r.text.startswith("{"):
            return None, "HTTP 503 %s" % r.text[:60]
        return r, None

    def _revive(self):
        """With self.exclusive held: restarts augurd if it died."""
        deadline = time.monotonic() + 3
        while self.d.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.d.running():
            self.crashes += 1
            last = [x for x in self.d.run_log().splitlines() if not x.startswith("ts=")][-1:]
            print("  augurd exited with %s (%s); restarting it" % (self.d.proc.returncode, " ".join(last)),
                  flush=True)
            self.d.start()
            self.generation += 1

    def get(self, path, params):
        """(Response, None), or (None, description) when augurd crashed on this query."""
        with self.cond:
            self.cond.wait_for(lambda: not self.exclusive)
            self.running += 1
            gen = self.generation
        try:
            r, err = self._query(path, params)
        finally:
            with self.cond:
                self.running -= 1
                self.cond.notify_all()
        if r is not None:
            return r, None
        with self.cond:
            self.cond.wait_for(lambda: not self.exclusive and not self.running)
            self.exclusive = True
        try:
            if self.generation == gen:
                self._revive()
            r, err = self._query(path, params)
            if r is None:
                self._revive()
                return None, "augurd crashed on it (retried alone after a restart: %s)" % err[-70:]
            return r, None
        finally:
            with self.cond:
                self.exclusive = False
                self.cond.notify_all()


def run_expression(q, idx, b, pbase, aug, rng):
    """All queries of one expression on both servers; returns (mismatch texts, stats)."""
    reason, approx = approx_reason(q) or (None, 0)
    # count_values("l", v) turns values into label values: approximate ones compare rounded
    float_labels = re.findall(r'\bcount_values\s*(?:(?:by|without)\s*\([^()]*\)\s*)?\(\s*"(\w+)"',
                              q) if approx else ()
    problems = []
    stats = {"queries": 0, "errors": 0, "empty": 0, "points": 0}
    jobs = [("/api/v1/query", {"query": q, "time": ms_to_ts_str(b + t)}, "time=%s (%s)" % (
        ms_to_ts_str(b + t), rel(b + t, b))) for t in rng.sample(INSTANT_TIMES, 4)]
    for start, end, step in rng.sample(RANGE_QUERIES, 2):
        jobs.append(("/api/v1/query_range", {"query": q, "start": ms_to_ts_str(b + start),
                                             "end": ms_to_ts_str(b + end), "step": ms_to_ts_str(step)},
                     "range start=%s end=%s step=%s (%s..%s)" % (
                         ms_to_ts_str(b + start), ms_to_ts_str(b + end), ms_to_ts_str(step),
                         rel(b + start, b), rel(b + end, b))))
    for path, params, where in jobs:
        stats["queries"] += 1
        head = "#%d %s\n      %s" % (idx, q, where)
        rp = http_get(pbase + path, params, timeout=120)
        ra, crash = aug.get(path, params)
        if crash:
            problems.append("%s: prometheus HTTP %d %s\n      %s" % (head, rp.status, rp.text[:300], crash))
            break  # not the other queries of this expression: each crash costs a restart
        if rp.status != ra.status:
            problems.append("%s: prometheus HTTP %d %s\n      augurd HTTP %d %s" % (
                head, rp.status, rp.text[:300], ra.status, ra.text[:300]))
            continue
        if rp.status != 200:
            stats["errors"] += 1
            continue
        try:
            dp, da = json.loads(rp.decoded())["data"], json.loads(ra.decoded())["data"]
        except (ValueError, KeyError) as e:
            problems.append("%s: undecodable answer (%r): augurd %s" % (head, e, ra.text[:300]))
            continue
        if path.endswith("query_range"):
            order = "labels"
        else:
            order = "values" if top_level_ordered(q) else None
        delta = compare_data(dp, da, approx, order, ties=bool(re.search(r"\b(topk|bottomk)\b", q)),
                             float_labels=float_labels)
        if dp.get("resultType") in ("vector", "matrix"):
            if not dp["result"]:
                stats["empty"] += 1
            stats["points"] += sum(len(v) for _, v in _series(dp))
        if delta:
            problems.append("%s: %s%s\n      prometheus %s\n      augurd     %s" % (
                head, delta, " (compared to %g relative: %s)" % (approx[0], reason) if approx else "",
                _short(dp), _short(da)))
    return problems, stats


def test_random_promql_matches_prometheus(ctx):
    if not os.access(PROMETHEUS, os.X_OK):
        raise AssertionError("%s is not installed (make deps installs it)" % PROMETHEUS)
    t0 = time.monotonic()
    d = ctx.daemon(log_level="info")
    aug = Augurd(d)
    prom, pbase = start_prometheus(ctx, "global:\n  scrape_interval: 1h\n", ["--web.enable-remote-write-receiver"])
    b, series = random_data(int(time.time() * 1000))
    body = snappy_compress(encode_write_request(series))
    for name, base in (("prometheus", pbase), ("augurd", d.base)):
        r = http_post(base + "/api/v1/write", body, REMOTE_WRITE_HEADERS)
        if r.status // 100 != 2:
            raise AssertionError("remote write to %s: %r" % (name, r))
    # both hold every sample
    for base, name in [(x, n) for n in METRICS for x in (pbase, d.base)]:
        r = http_get(base + "/api/v1/query", {"query": "sum(count_over_time(%s[2h]))" % name,
                                              "time": ms_to_ts_str(b + SPAN + 10 * S)})
        if r.status != 200:
            raise AssertionError("counting the samples on %s: %r" % (base, r))
        n = sum(int(x["value"][1]) for x in json.loads(r.decoded())["data"]["result"])
        want = sum(1 for l, s in series for _, v in s if v is not STALE and l["__name__"] == name)
        if n != want:
            raise AssertionError("%s holds %d samples of %s, %d were written" % (base, n, name, want))
    explicit = os.environ.get("PROMQL_RANDOM_QUERIES")
    if explicit:
        exprs = [x.strip() for x in explicit.split("\n") if x.strip()]
    else:
        exprs = generate(SEED, COUNT, b)
    skip = os.environ.get("PROMQL_RANDOM_SKIP")
    todo = [i for i in range(len(exprs)) if not (skip and re.search(skip, exprs[i]))]
    print("  seed %d, %d expressions (%d skipped), data base b=%s (%d series)" % (
        SEED, len(todo), len(exprs) - len(todo), ms_to_ts_str(b), len(series)), flush=True)
    problems = []
    totals = {"queries": 0, "errors": 0, "empty": 0, "points": 0}
    bad_exprs = 0

    def one(i):
        # the times each expression is queried at depend on the seed and its index only
        return run_expression(exprs[i], i, b, pbase, aug, random.Random("%d/%d" % (SEED, i)))

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        for i, (out, st) in zip(todo, pool.map(one, todo)):
            for k in totals:
                totals[k] += st[k]
            if VERBOSE:
                print("  #%d %s %s" % (i, "MISMATCH" if out else "ok", exprs[i]), flush=True)
            if out:
                bad_exprs += 1
                for p in out:
                    print("  MISMATCH " + p, flush=True)
                problems += out
    print("  %d expressions, %d queries on each server in %.1fs: %d answered with errors by both, "
          "%d empty, %d points compared; %d mismatches in %d expressions; augurd crashed %d times" % (
              len(todo), totals["queries"], time.monotonic() - t0, totals["errors"], totals["empty"],
              totals["points"], len(problems), bad_exprs, aug.crashes), flush=True)
    if problems:
        raise AssertionError("%d mismatch(es) in %d of %d expressions (seed %d; augurd crashed %d times):"
                             "\n  - %s" % (len(problems), bad_exprs, len(todo), SEED, aug.crashes,
                                           "\n  - ".join(problems[:30])))


test_random_promql_matches_prometheus.timeout = 900
