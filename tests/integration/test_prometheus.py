"""test_prometheus.py - the real Prometheus 2.42 (Debian's /usr/bin/prometheus) against augurd.

test_prometheus_remote_write_end_to_end:
  augurd + node_exporter + Prometheus scraping itself, node_exporter and augurd's /metrics every
  second and remote-writing everything to augurd with default queue settings. After
  AUGUR_PROM_SECONDS (default 60) and once remote write has caught up, every metric name
  Prometheus knows is queried on both (query_range, steps 1s and 7s, plus raw samples through a
  range selector) and must give the same series and exactly the same [t, "value"] points;
  /api/v1/series and /api/v1/labels must agree too; Prometheus' remote-storage counters must
  show no failed or dropped samples.

test_same_writes_give_the_same_answers:
  a differential test of the selector semantics: the same hand-made remote-write requests go to
  augurd and to Prometheus' own remote-write receiver (--web.enable-remote-write-receiver), then
  a battery of queries (lookback and range-window edges, stale markers, offsets, special values,
  matchers) must answer identically.

test_promql_parser_agrees_with_prometheus:
  a corpus of valid, invalid and odd queries through /api/v1/query and /api/v1/format_query on
  both: a Prometheus syntax error must be augurd's 400 bad_data; a Prometheus answer must be
  augurd's identical answer, or its 400 "... is not supported yet" for PromQL beyond the subset.

Environment: AUGUR_PROM_SECONDS (default 60), AUGUR_PROMETHEUS, AUGUR_NODE_EXPORTER (binaries).
"""
import concurrent.futures
import json
import os
import re
import time

from harness import (REMOTE_WRITE_HEADERS, STALE, Bits, encode_write_request, free_port, http_get,
                     http_post, ms_to_ts_str, parse_exposition, snappy_compress, tail, wait_until)

PROMETHEUS = os.environ.get("AUGUR_PROMETHEUS", "/usr/bin/prometheus")
NODE_EXPORTER = os.environ.get("AUGUR_NODE_EXPORTER", "/usr/bin/prometheus-node-exporter")
PROM_SECONDS = float(os.environ.get("AUGUR_PROM_SECONDS", "60"))


# ---------------------------------------------------------------------------------------------
# helpers


def alive(ctx, proc, name):
    if proc.poll() is not None:
        raise AssertionError("%s exited with %s; log:\n%s" % (name, proc.returncode,
                                                              _tail(ctx.log_of(proc))))


def _tail(path, n=40):
    return tail(path, n)


def start_prometheus(ctx, config_text, extra_args=()):
    port = free_port()
    cfg = ctx.path("prometheus.yml")
    with open(cfg, "w") as f:
        f.write(config_text.replace("@PROM_PORT@", str(port)))
    tsdb = ctx.path("prom-data")
    os.makedirs(tsdb, exist_ok=True)
    p = ctx.spawn("prometheus", [PROMETHEUS, "--config.file=%s" % cfg, "--storage.tsdb.path=%s" % tsdb,
                                 "--web.listen-address=127.0.0.1:%d" % port, "--log.level=info"]
                  + list(extra_args))
    base = "http://127.0.0.1:%d" % port

    def ready():
        alive(ctx, p, "prometheus")
        return http_get(base + "/-/ready", timeout=2).status == 200

    wait_until(ready, 60, 0.2, "prometheus /-/ready")
    return p, base


def api(base, path, params, timeout=60):
    r = http_get(base + path, params, timeout=timeout)
    if r.status != 200:
        raise AssertionError("GET %s%s %r: %r" % (base, path, params, r))
    j = json.loads(r.decoded())
    if j.get("status") != "success":
        raise AssertionError("GET %s%s %r: %r" % (base, path, params, j))
    return j["data"]


def matrix(data):
    """{frozen labels: [(ms, value str)]} of a matrix result (ms exact for this era)."""
    if data["resultType"] != "matrix":
        raise AssertionError("expected a matrix, got %s" % data["resultType"])
    return {tuple(sorted(s["metric"].items())): [(int(round(t * 1000)), v) for t, v in s["values"]]
            for s in data["result"]}


def ordered_metrics(data):
    return [s["metric"] for s in data["result"]]


def diff_matrices(a, b, name_a="prometheus", name_b="augurd", limit=5):
    """A compact description of how two matrices differ, or '' if they are equal."""
    if a == b:
        return ""
    out = []
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    if only_a:
        out.append("%d series only in %s, e.g. %s" % (len(only_a), name_a, [dict(k) for k in only_a[:3]]))
    if only_b:
        out.append("%d series only in %s, e.g. %s" % (len(only_b), name_b, [dict(k) for k in only_b[:3]]))
    n = 0
    for k in sorted(set(a) & set(b)):
        if a[k] != b[k]:
            n += 1
            if n <= limit:
                pa, pb = dict(a[k]), dict(b[k])
                ts = sorted(t for t in set(pa) | set(pb) if pa.get(t) != pb.get(t))
                out.append("%s: %d points differ, first at %s: %s=%r %s=%r (%d vs %d points)" % (
                    dict(k), len(ts), ms_to_ts_str(ts[0]) if ts else "?", name_a,
                    pa.get(ts[0]) if ts else None, name_b, pb.get(ts[0]) if ts else None, len(pa), len(pb)))
    if n > limit:
        out.append("... %d series with differing points in all" % n)
    return "; ".join(out)


def prom_metrics(base):
    r = http_get(base + "/metrics")
    if r.status != 200:
        raise AssertionError("prometheus /metrics: %r" % r)
    return parse_exposition(r.text)


def total(ex, name, **match):
    return sum(v for l, v in ex.find(name) if all(l.get(k) == val for k, val in match.items()))


# ---------------------------------------------------------------------------------------------
# end to end with scraping


PROM_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:@PROM_PORT@']
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:@NODE_PORT@']
  - job_name: augur
    static_configs:
      - targets: ['127.0.0.1:@AUGUR_PORT@']
remote_write:
  - url: http://127.0.0.1:@AUGUR_PORT@/api/v1/write
"""


def test_prometheus_remote_write_end_to_end(ctx):
    for b in (PROMETHEUS, NODE_EXPORTER):
        if not os.access(b, os.X_OK):
            raise AssertionError("%s is not installed (make deps installs it)" % b)
    d = ctx.daemon(log_level="info")
    ne_port = free_port()
    # systemd's collector needs D-Bus, which containers lack: it would only log errors.
    ne = ctx.spawn("node_exporter", [NODE_EXPORTER, "--web.listen-address=127.0.0.1:%d" % ne_port,
                                     "--no-collector.systemd"])
    wait_until(lambda: alive(ctx, ne, "node_exporter") or
               http_get("http://127.0.0.1:%d/metrics" % ne_port, timeout=2).status == 200,
               30, 0.1, "node_exporter /metrics")
    cfg = PROM_CONFIG.replace("@NODE_PORT@", str(ne_port)).replace("@AUGUR_PORT@", str(d.port))
    prom, pbase = start_prometheus(ctx, cfg)
    t_begin = time.time()
    while time.time() - t_begin < PROM_SECONDS:
        time.sleep(1)
        alive(ctx, prom, "prometheus")
        alive(ctx, ne, "node_exporter")
        if not d.running():
            raise AssertionError("augurd died while Prometheus was writing to it")
    # pick the window, then wait until remote write has sent past it
    end = int(time.time()) - 15
    start = end - 50

    def caught_up():
        ex = prom_metrics(pbase)
        sent = [v for l, v in ex.find("prometheus_remote_storage_queue_highest_sent_timestamp_seconds")]
        return sent and min(sent) >= end + 10

    wait_until(caught_up, 90, 0.5, "remote write to send samples past the comparison window")
    time.sleep(2)
    problems = []

    # every target is up: includes augurd's /metrics passing Prometheus' own parser
    up = api(pbase, "/api/v1/query", {"query": "up", "time": str(end)})
    ups = {s["metric"]["job"]: s["value"][1] for s in up["result"]}
    if ups != {"prometheus": "1", "node": "1", "augur": "1"}:
        problems.append("up at the end of the window (Prometheus): %r" % ups)

    names = api(pbase, "/api/v1/label/__name__/values", {"start": str(start), "end": str(end)})
    if len(names) < 50:
        problems.append("Prometheus knows only %d metric names" % len(names))

    def compare(name, step):
        q = '{__name__="%s"}' % name
        params = {"query": q, "start": str(start), "end": str(end), "step": str(step)}
        pd = api(pbase, "/api/v1/query_range", params)
        ad = api(d.base, "/api/v1/query_range", params)
        pm, am = matrix(pd), matrix(ad)
        out = []
        delta = diff_matrices(pm, am)
        if delta:
            out.append("query_range %s step=%ss: %s" % (q, step, delta))
        elif ordered_metrics(pd) != ordered_metrics(ad):
            out.append("query_range %s step=%ss: same series, different order" % (q, step))
        return out, sum(len(v) for v in pm.values())

    npoints = 0
    mismatched = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        futs = [pool.submit(compare, n, step) for n in names for step in (1, 7)]
        for f in futs:
            out, n = f.result()
            npoints += n
            if out:
                mismatched += 1
                if mismatched <= 8:
                    problems.extend(out)
    if mismatched > 8:
        problems.append("... %d query_range comparisons differ in all (of %d)" % (mismatched, len(futs)))
    if npoints < 1000:
        problems.append("only %d points compared: Prometheus had too little data" % npoints)

    # raw samples: one range selector over everything in [start, end]
    q = '{__name__=~".+"}[50s]'
    pm = matrix(api(pbase, "/api/v1/query", {"query": q, "time": str(end)}))
    am = matrix(api(d.base, "/api/v1/query", {"query": q, "time": str(end)}))
    delta = diff_matrices(pm, am)
    if delta:
        problems.append("raw samples %s at %d: %s" % (q, end, delta))
    nraw = sum(len(v) for v in pm.values())

    # names, series and labels. Prometheus 2.42 answers /labels and /label/../values from its
    # head index without looking at sample times, so a series that appeared after `end` can
    # show up there; augurd's answer must equal Prometheus' or what Prometheus' own series
    # (and raw samples) in the window imply.
    notes = []

    def check_list(what, prom, aug, derived):
        if aug == prom:
            return
        if aug == derived:
            notes.append("%s: augurd %s matches the series in the window; Prometheus (head index) said %s"
                         % (what, aug, prom))
            return
        problems.append("%s: prometheus %s, augurd %s, implied by the series in the window %s" % (
            what, prom, aug, derived))

    in_window = sorted({dict(k)["__name__"] for k in pm})
    aug_names = api(d.base, "/api/v1/label/__name__/values", {"start": str(start), "end": str(end)})
    check_list("label __name__ values in [start,end]", names, aug_names, in_window)
    for sel in ('up', '{job="node"}', '{__name__=~"prometheus_http_.*"}', '{job="augur"}'):
        params = [("match[]", sel), ("start", str(start + 20)), ("end", str(end))]
        ps = api(pbase, "/api/v1/series", params)
        as_ = api(d.base, "/api/v1/series", params)
        if ps != as_:
            sp = {json.dumps(x, sort_keys=True) for x in ps}
            sa = {json.dumps(x, sort_keys=True) for x in as_}
            problems.append("/api/v1/series match[]=%s: only in prometheus %s, only in augurd %s%s" % (
                sel, sorted(sp - sa)[:3], sorted(sa - sp)[:3], "" if sp != sa else " (order differs)"))
        check_list("/api/v1/labels match[]=%s" % sel, api(pbase, "/api/v1/labels", params),
                   api(d.base, "/api/v1/labels", params), sorted({k for x in ps for k in x}))
        for label in ("job", "instance", "__name__"):
            check_list("/api/v1/label/%s/values match[]=%s" % (label, sel),
                       api(pbase, "/api/v1/label/%s/values" % label, params),
                       api(d.base, "/api/v1/label/%s/values" % label, params),
                       sorted({x[label] for x in ps if label in x}))
    for n in notes:
        print("  note: " + n, flush=True)

    # Prometheus' view of the remote write
    ex = prom_metrics(pbase)
    sent = total(ex, "prometheus_remote_storage_samples_total")
    if sent <= 0:
        problems.append("prometheus_remote_storage_samples_total is %s" % sent)
    bad = [(n, l, v) for n, l, v, _ in ex.samples
           if re.match(r"^prometheus_remote_storage_\w*(failed|dropped)\w*$", n) and v != 0]
    for n, l, v in bad:
        problems.append("%s%s = %s" % (n, l, v))
    checked = sorted({n for n, l, v, _ in ex.samples if re.match(r"^prometheus_remote_storage_\w*(failed|dropped)\w*$", n)})
    retried = total(ex, "prometheus_remote_storage_samples_retried_total")
    aug = d.metrics()
    print("  compared %d names x 2 steps (%d points from Prometheus) and %d raw samples; Prometheus sent %d "
          "samples, retried %d; augurd appended %d, rejected %d; zero-checked: %s" % (
              len(names), npoints, nraw, sent, retried, aug.value("augur_samples_appended_total"),
              sum(v for l, v in aug.find("augur_samples_rejected_total")), ", ".join(checked)), flush=True)
    if not checked:
        problems.append("no prometheus_remote_storage_*failed*/*dropped* counters found to check")
    if retried:
        problems.append("prometheus_remote_storage_samples_retried_total = %s (augurd answered 5xx or timed out)" % retried)
    if problems:
        raise AssertionError("%d problem(s):\n  - %s" % (len(problems), "\n  - ".join(problems)))


test_prometheus_remote_write_end_to_end.timeout = int(PROM_SECONDS) + 240


# ---------------------------------------------------------------------------------------------
# differential: same writes, same answers


def diff_data(now_ms):
    """Series of hand-made samples on whole seconds so that windows hit samples exactly."""
    b = (now_ms // 60_000) * 60_000 - 20 * 60_000  # a whole minute, 20 minutes ago
    S = 1000
    series = []
    # regular 15s samples with a stale marker in the middle and at the end
    a = []
    for k in range(41):  # 0..600s
        t = b + k * 15 * S
        if k == 20:
            a.append((t, STALE))
        else:
            a.append((t, float(k)))
    a.append((b + 615 * S, STALE))
    series.append(({"__name__": "diff_a", "job": "x", "inst": "1"}, a))
    series.append(({"__name__": "diff_a", "job": "x", "inst": "2"}, [(t, v * 2) for t, v in a if not isinstance(v, Bits)]))
    series.append(({"__name__": "diff_a", "job": "y", "inst": "1"}, [(b + 60 * S, 1.0), (b + 61 * S, 2.0)]))
    # sparse samples: gaps longer than the lookback
    series.append(({"__name__": "diff_sparse"}, [(b, 1.0), (b + 300 * S, 2.0), (b + 601 * S, 3.0),
                                                  (b + 601 * S + 1, 4.0), (b + 900 * S - 1, 5.0)]))
    # special values
    vals = [0.0, -0.0, float("inf"), float("-inf"), Bits(0x7FF8000000000001), 1e-7, 1e21, 0.1,
            123456789.125, 5e-324, -2.5e-5, 1e20, 1.7976931348623157e308, 2.0 ** 53 + 2, -1.0 / 3]
    series.append(({"__name__": "diff_vals"}, [(b + k * 10 * S, v) for k, v in enumerate(vals)]))
    # a series holding only a stale marker, one that ends in a stale marker right away
    series.append(({"__name__": "diff_stale_only"}, [(b + 30 * S, STALE)]))
    series.append(({"__name__": "diff_short"}, [(b + 30 * S, 1.0), (b + 31 * S, STALE)]))
    return b, series


DIFF_INSTANT = ["diff_a", 'diff_a{job="x"}', 'diff_a{inst!="1"}', 'diff_a{job=~"x|y"}', 'diff_a{job!~"x"}',
                "diff_a offset 1m", "diff_a offset 301s", "diff_sparse", "diff_sparse offset 5m", "diff_vals",
                "diff_stale_only", "diff_short", '{__name__=~"diff_.*"}', '{__name__=~"diff_a|diff_vals",inst=""}',
                "diff_a[1m]", "diff_a[15s]", "diff_a[5m] offset 30s", "diff_sparse[5m]", "diff_sparse[301s]",
                "diff_vals[10m]", "diff_short[1m]", "diff_stale_only[1h]", "42", "-0.5", '"str"', "(diff_a)"]

_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def _dur(text):
    return sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)(ms|s|m|h)", text))


def query_times(q, sample_times):
    """The evaluation times where `q` can change its answer: each sample time shifted by the
    offset, and by the window (lookback or range), each -1ms, exactly and +1ms."""
    if not q.startswith(("diff", "{", "(")):
        return [sample_times[0]]
    m = re.search(r"offset (\w+)", q)
    off = _dur(m.group(1)) if m else 0
    m = re.search(r"\[(\w+)\]", q)
    width = _dur(m.group(1)) if m else 300_000
    out = set()
    for t in sample_times:
        for dt in (0, width):
            for e in (-1, 0, 1):
                out.add(t + off + dt + e)
    return sorted(out)


def _same_result(dp, da):
    if dp.get("resultType") in ("vector", "matrix") and dp.get("resultType") == da.get("resultType"):
        key = "value" if dp["resultType"] == "vector" else "values"
        sp = sorted((json.dumps(x["metric"], sort_keys=True), json.dumps(x[key])) for x in dp["result"])
        sa = sorted((json.dumps(x["metric"], sort_keys=True), json.dumps(x[key])) for x in da["result"])
        if sp != sa:
            return False
        return dp["resultType"] == "vector" or ordered_metrics(dp) == ordered_metrics(da)
    return dp == da


def test_same_writes_give_the_same_answers(ctx):
    if not os.access(PROMETHEUS, os.X_OK):
        raise AssertionError("%s is not installed (make deps installs it)" % PROMETHEUS)
    d = ctx.daemon(log_level="info")
    prom, pbase = start_prometheus(ctx, "global:\n  scrape_interval: 1h\n", ["--web.enable-remote-write-receiver"])
    b, series = diff_data(int(time.time() * 1000))
    body = snappy_compress(encode_write_request(series))
    problems = []
    for name, base in (("prometheus", pbase), ("augurd", d.base)):
        r = http_post(base + "/api/v1/write", body, REMOTE_WRITE_HEADERS)
        if r.status // 100 != 2:
            raise AssertionError("remote write to %s: %r" % (name, r))
    # an exact resend: augurd accepts it (Prometheus 2.42's receiver calls it out of order)
    r = http_post(d.base + "/api/v1/write", body, REMOTE_WRITE_HEADERS)
    if r.status != 204:
        problems.append("exact resend to augurd: %r" % r)

    def both(path, params):
        return http_get(pbase + path, params), http_get(d.base + path, params)

    sample_times = sorted({t for _, samples in series for t, _ in samples})

    def instant(q):
        n = 0
        for t in query_times(q, sample_times):
            rp, ra = both("/api/v1/query", {"query": q, "time": ms_to_ts_str(t)})
            n += 1
            if rp.status != ra.status:
                return n, "query %s at base%+dms: prometheus HTTP %d, augurd HTTP %d %r" % (
                    q, t - b, rp.status, ra.status, ra.text[:200])
            if rp.status != 200:
                continue
            dp, da = json.loads(rp.decoded())["data"], json.loads(ra.decoded())["data"]
            if not _same_result(dp, da):
                return n, "query %s at base%+dms:\n      prometheus %s\n      augurd     %s" % (
                    q, t - b, json.dumps(dp)[:400], json.dumps(da)[:400])
        return n, None

    nq = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for n, problem in pool.map(instant, DIFF_INSTANT):
            nq += n
            if problem:
                problems.append(problem)
    # range queries with several steps and alignments
    for q in DIFF_INSTANT:
        if "[" in q or q.startswith('"'):
            continue
        for start, end, step in ((b - 60_000, b + 1_000_000, "1"), (b - 1, b + 1_000_000, "7"),
                                 (b + 299_999, b + 310_001, "0.5"), (b, b + 900_000, "15"),
                                 (b + 1, b + 900_001, "60")):
            params = {"query": q, "start": ms_to_ts_str(start), "end": ms_to_ts_str(end), "step": step}
            rp, ra = both("/api/v1/query_range", params)
            nq += 1
            if rp.status != ra.status:
                problems.append("query_range %r: prometheus HTTP %d, augurd HTTP %d" % (params, rp.status, ra.status))
                continue
            if rp.status != 200:
                continue
            dp, da = json.loads(rp.decoded())["data"], json.loads(ra.decoded())["data"]
            delta = diff_matrices(matrix(dp), matrix(da))
            if delta or ordered_metrics(dp) != ordered_metrics(da):
                problems.append("query_range %s start=base%+dms step=%s: %s" % (
                    q, start - b, step, delta or "series order differs"))
    # metadata-free endpoints
    for path, params in (("/api/v1/series", [("match[]", '{__name__=~"diff_.*"}')]),
                         ("/api/v1/series", [("match[]", "diff_a"), ("match[]", "diff_short")]),
                         ("/api/v1/labels", []), ("/api/v1/label/job/values", []),
                         ("/api/v1/label/__name__/values", [])):
        rp, ra = both(path, params)
        jp, ja = json.loads(rp.decoded()), json.loads(ra.decoded())
        if (rp.status, jp.get("data")) != (ra.status, ja.get("data")):
            problems.append("%s %r: prometheus %r, augurd %r" % (path, params, jp.get("data"), ja.get("data")))
    print("  %d queries compared on each server" % nq, flush=True)
    if problems:
        raise AssertionError("%d difference(s) between Prometheus 2.42 and augurd:\n  - %s" % (
            len(problems), "\n  - ".join(problems[:25])))


test_same_writes_give_the_same_answers.timeout = 300


# ---------------------------------------------------------------------------------------------
# the PromQL parser: same verdicts as Prometheus' own


PARSER_CORPUS = [
    # numbers
    "1", "1.5", ".5", "5.", "1e3", "1E3", "1e+3", "1e-3", "0x1F", "0X1f", "1_000", "1_000.5", "Inf", "inf",
    "+Inf", "-Inf", "NaN", "nan", "InF", "-1", "+1", "--1", "- - 1", "+-+-1", "(-1)", "((1))", "1e999999",
    "-1e999999", "1e-400", "0755", "08", "1_", "_1", "1__0", "0x", "1e", ".", "..", "1.2.3", "0x1p3", "1ms",
    "5m", "1y", "0x" + "f" * 40, "1" * 400,
    # strings
    '"a"', "'a'", "`a`", '"\\n"', "'\\''", '"\\""', '"\\x41"', '"\\u00e9"', '"\\U0001F600"', '"\\377"',
    '"\\400"', '"\\', '"\\x"', '"\\u12"', '"\\q"', '"a\nb"', "`a\nb`", '"\\a\\b\\f\\r\\t\\v\\\\"', "'\"'",
    '"\\U0011ffff"', '"unterminated', "'", "``", '"a\\x00b"', '"a\\u0000b"', "`a\x00b`",
    # selectors
    "x", "x{}", "{}", 'x{a="1"}', 'x{a="1",}', "x{,}", 'x{a="1" b="2"}', '{a="1"}', '{a=""}', '{a=~".*"}',
    '{a!~".+"}', '{a=~".+"}', 'x{a!~""}', '{__name__="x"}', 'x{__name__="x"}', '{__name__="x",__name__="y"}',
    '{__name__=~"x|y"}', 'x{a=~"("}', 'x{a=~"\\\\"}', 'x{a=~"a{1000}{1000}"}', 'x{a=~"(?i)A"}', 'x{\u00e9="1"}',
    "\u00e9", "x_\u00e9", "x:y", ":x", "x::", "__x__", "x{a='1'}", "x{a=`1`}", 'x{a=1}', 'x{a}', 'x{a=}', 'x{="1"}',
    'x{a="1\\x00"}', 'x{a="1\\u0000"}', 'x{a=~"1\\x00.*"}', 'x{a!="1\\x00"}', 'x{a="1\\x00",a="1"}',
    'x{a=="1"}', 'x{a!="1"}', 'x{a=!"1"}', 'x{a~"1"}', 'x{A_1="v"}', 'x{_a="v"}', 'x{1a="v"}',
    "x[5m]", 'x{a="1"}[5m]', "x[0s]", "x[0]", "x[1m1m]", "x[1.5m]", "x[-1m]", "x[5m", "x[5]", "x[5m30s]",
    "x[1h30m]", "x[1w2d]", "x[90s]", "x[100ms]", "x[1y]", "x[]", "x[5m][5m]",
    "x offset 1m", "x[5m] offset 1m", "x offset -1m", "x offset 1m offset 1m", "x offset", "x offset 0s",
    "x[5m] offset 1m[5m]", "(x)[5m]", "(x[5m])", "(x) offset 1m", "1 offset 1m", "x[999999999999999999y]",
    "x offset 106751d", "x offset 5", "x OFFSET 1m", "X", "x{A=\"1\"}",
    # keywords as names
    "sum", "by", "offset", "on", "bool", "start", "end", "avg", "x{on=\"1\"}", "x{by=\"1\"}", "x{offset=\"1\"}",
    'sum{a="1"}', "sum[5m]", "ignoring", "group_left", "atan2", "and", "or",
    # comments, whitespace, odd bytes
    "#comment\nx", "x # c", "  x  ", "\tx\n", "\x00", "x\x00", 'x{a="\xff"}', '"\xff"', "x{\x00}", "\u2028x",
    "{\"x\"}", '{"x", a="1"}', "x{a=\"1\"", "x}", ")", "(", "()", "(x", "x)", "[5m]", "{", "}", "",
    "   ", "# only a comment",
    # valid PromQL outside the subset: augurd answers 400 "not supported"
    "1+1", "x + 1", "sum(x)", "rate(x[5m])", "-x", "-(1)", "x > bool 1", "x and x", 'count_values("a", x)',
    'x{a="1"} unless x', "x == bool 1", "vector(1)", "time()", "x @ 100", "x @ start()", "x[5m:1m]",
    "sum by (a) (x)", "abs(x)", "x offset 1m @ 100", "2 ^ 3", "1 - -1",
    # invalid PromQL of other kinds
    "1 < 2", "x[5m] + 1", "sum(x[5m])", "rate(x)", "nosuchfunc(x)", "x +", "sum(", "x{a=\"1\"}{b=\"2\"}",
    "1 2", "x y", '"a" "b"',
]


# Newer PromQL that augurd accepts on purpose (ecosystem-contracts.md section 2.10: "1_000") and
# Prometheus 2.42 still calls a syntax error.
NEWER_SYNTAX = {"1_000", "1_000.5"}


def test_promql_parser_agrees_with_prometheus(ctx):
    """Every query of PARSER_CORPUS through /api/v1/query and /api/v1/format_query: where
    Prometheus 2.42 reports a syntax error augurd must answer 400 bad_data; where Prometheus
    answers, augurd must answer the same (data and canonical text) or 400 "not supported"."""
    if not os.access(PROMETHEUS, os.X_OK):
        raise AssertionError("%s is not installed (make deps installs it)" % PROMETHEUS)
    d = ctx.daemon(log_level="info")
    prom, pbase = start_prometheus(ctx, "global:\n  scrape_interval: 1h\n", ["--web.enable-remote-write-receiver"])
    now = int(time.time() * 1000) // 1000 * 1000
    series = [({"__name__": "x", "a": "1"}, [(now - 60_000, 1.0), (now - 30_000, 2.0)]),
              ({"__name__": "x", "a": "2", "A": "1"}, [(now - 30_000, 3.0)]),
              ({"__name__": "sum", "a": "1"}, [(now - 30_000, 4.0)]),
              ({"__name__": "x:y"}, [(now - 30_000, 5.0)]),
              ({"__name__": "__x__"}, [(now - 30_000, 6.0)])]
    body = snappy_compress(encode_write_request(series))
    for base in (pbase, d.base):
        r = http_post(base + "/api/v1/write", body, REMOTE_WRITE_HEADERS)
        if r.status // 100 != 2:
            raise AssertionError("remote write to %s: %r" % (base, r))
    t = ms_to_ts_str(now)

    def one(q):
        out = []
        for path, params in (("/api/v1/query", {"query": q, "time": t}), ("/api/v1/format_query", {"query": q})):
            rp = http_get(pbase + path, params)
            ra = http_get(d.base + path, params)
            jp, ja = json.loads(rp.decoded()), None
            try:
                ja = json.loads(ra.decoded())
            except ValueError:
                out.append("%s %r: augurd body is not JSON: %r" % (path, q, ra))
                continue
            where = "%s %r" % (path, q)
            if rp.status == 400 and q in NEWER_SYNTAX and ra.status == 200:
                continue
            if rp.status == 400:
                if ra.status != 400 or ja.get("errorType") != "bad_data":
                    out.append("%s: Prometheus says %r; augurd answered HTTP %d %s" % (
                        where, jp.get("error"), ra.status, json.dumps(ja)[:200]))
            elif rp.status == 200:
                if ra.status == 200:
                    if path.endswith("format_query"):
                        if ja.get("data") != jp.get("data"):
                            out.append("%s: Prometheus formats %r, augurd %r" % (where, jp.get("data"), ja.get("data")))
                    elif not _same_result(jp["data"], ja["data"]):
                        out.append("%s: Prometheus %s, augurd %s" % (where, json.dumps(jp["data"])[:200],
                                                                     json.dumps(ja["data"])[:200]))
                elif not (ra.status == 400 and "not supported" in (ja.get("error") or "")):
                    out.append("%s: Prometheus answers %s; augurd HTTP %d %s" % (
                        where, json.dumps(jp.get("data"))[:150], ra.status, json.dumps(ja)[:200]))
            elif ra.status == 200:
                out.append("%s: Prometheus HTTP %d %r, augurd 200 %s" % (where, rp.status, jp.get("error"),
                                                                       json.dumps(ja)[:200]))
        return out

    problems = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        for out in pool.map(one, PARSER_CORPUS):
            problems.extend(out)
    if problems:
        raise AssertionError("%d disagreement(s) with Prometheus 2.42's parser:\n  - %s" % (
            len(problems), "\n  - ".join(problems[:60])))


test_promql_parser_agrees_with_prometheus.timeout = 180


# PromQL beyond selectors, compared with Prometheus 2.42 answer by answer on the same data.
DIFF_EXPRESSIONS = [
    "1+1", "2*3-1", "2^3^2", "-(2)", "7 % 3", "1 > bool 2", "-diff_a", "diff_a + 1", "1 - diff_a",
    "diff_a * 2 > 10", "diff_a > bool 10", "10 < diff_a", "diff_a == 4", "diff_a != bool 4",
    "diff_a / diff_a", "diff_a - on(job, inst) diff_a", "diff_a{job=\"x\"} / ignoring(inst) diff_a{inst=\"1\"}",
    "diff_a * on(job) group_left diff_a{inst=\"1\"}", "diff_a and diff_a{job=\"x\"}", "diff_a or diff_sparse",
    "diff_a unless on(job) diff_a{inst=\"2\"}", "diff_a atan2 diff_a",
    "sum(diff_a)", "sum by (job) (diff_a)", "avg without (inst) (diff_a)", "count(diff_a)", "min(diff_a)",
    "max by (inst) (diff_a)", "stddev(diff_a)", "stdvar(diff_a)", "topk(1, diff_a)", "bottomk(2, diff_a)",
    "quantile(0.5, diff_a)", "quantile by (job) (0.9, diff_a)", 'count_values("v", diff_a)',
    "group by (job) (diff_a)", "sum(diff_vals)", "avg(diff_vals)", "max(diff_vals)", "min(diff_vals)",
    "rate(diff_a[1m])", "increase(diff_a[5m])", "delta(diff_a[2m])", "irate(diff_a[1m])",
    "idelta(diff_a[1m])", "deriv(diff_a[2m])", "predict_linear(diff_a[5m], 60)", "resets(diff_a[10m])",
    "changes(diff_a[10m])", "avg_over_time(diff_a[1m])", "max_over_time(diff_vals[5m])",
    "min_over_time(diff_vals[5m])", "sum_over_time(diff_a[1m])", "count_over_time(diff_sparse[10m])",
    "stddev_over_time(diff_a[2m])", "stdvar_over_time(diff_a[2m])", "quantile_over_time(0.9, diff_a[3m])",
    "last_over_time(diff_a[1m])", "present_over_time(diff_a[1m])", "holt_winters(diff_a[5m], 0.5, 0.5)",
    "abs(-diff_a)", "ceil(diff_vals)", "floor(diff_vals)", "round(diff_a / 3)", "round(diff_a, 5)",
    "sqrt(diff_a)", "exp(diff_a / 100)", "ln(diff_a)", "log2(diff_a)", "log10(diff_a)", "sgn(diff_vals)",
    "clamp(diff_a, 2, 10)", "clamp_min(diff_a, 5)", "clamp_max(diff_a, 5)", "timestamp(diff_a)",
    "timestamp(diff_a + 1)", "time()", "vector(1)", 'scalar(diff_a{inst="1",job="x"})', "scalar(diff_a)",
    'absent(nonexistent{job="x"})', "absent(diff_a)", 'absent_over_time(diff_a{job="x"}[1m])',
    "sort(diff_a)", "sort_desc(diff_a)", 'label_replace(diff_a, "foo", "$1", "job", "(.*)")',
    'label_replace(diff_a, "job", "", "job", "x")', 'label_join(diff_a, "foo", ",", "job", "inst")',
    "day_of_week()", "hour(diff_a)", "minute()", "month()", "year()", "days_in_month()",
    "day_of_month()", "rate(diff_a[5m:30s])", "max_over_time(diff_a[10m:1m])",
    "sum by (job) (rate(diff_a[2m]))", "diff_a offset 1m + diff_a", "sum(diff_a) / count(diff_a)",
    'histogram_quantile(0.5, sum by (le) (label_replace(diff_a, "le", "$1", "inst", "(.*)")))',
]


# Expressions whose last bit may differ: Go's amd64 Exp is an assembly routine (FMA when the CPU
# has it) that glibc's exp does not reproduce; compared to 1e-15 relative instead of exactly.
APPROX_EXPRESSIONS = {"exp(diff_a / 100)"}


def _close_result(dp, da):
    """Same series and timestamps, values within 1e-15 relative."""
    import math

    def flat(d):
        key = "value" if d["resultType"] == "vector" else "values"
        out = {}
        for x in d["result"]:
            pts = [x[key]] if key == "value" else x[key]
            out[json.dumps(x["metric"], sort_keys=True)] = [(p[0], float(p[1])) for p in pts]
        return out
    if dp.get("resultType") != da.get("resultType"):
        return False
    a, b = flat(dp), flat(da)
    if a.keys() != b.keys():
        return False
    for k in a:
        if len(a[k]) != len(b[k]):
            return False
        for (ta, va), (tb, vb) in zip(a[k], b[k]):
            if ta != tb or not (va == vb or math.isclose(va, vb, rel_tol=1e-15)):
                return False
    return True


def test_expressions_match_prometheus(ctx):
    if not os.access(PROMETHEUS, os.X_OK):
        raise AssertionError("%s is not installed (make deps installs it)" % PROMETHEUS)
    d = ctx.daemon(log_level="info")
    prom, pbase = start_prometheus(ctx, "global:\n  scrape_interval: 1h\n", ["--web.enable-remote-write-receiver"])
    b, series = diff_data(int(time.time() * 1000))
    body = snappy_compress(encode_write_request(series))
    for name, base in (("prometheus", pbase), ("augurd", d.base)):
        r = http_post(base + "/api/v1/write", body, REMOTE_WRITE_HEADERS)
        if r.status // 100 != 2:
            raise AssertionError("remote write to %s: %r" % (name, r))
    times = [b + k * 23_000 for k in range(-2, 46)]

    def compare(q):
        out = []
        for t in times:
            params = {"query": q, "time": ms_to_ts_str(t)}
            rp, ra = http_get(pbase + "/api/v1/query", params), http_get(d.base + "/api/v1/query", params)
            if rp.status != ra.status:
                out.append("%s at base%+dms: prometheus HTTP %d %s, augurd HTTP %d %s" % (
                    q, t - b, rp.status, rp.text[:150], ra.status, ra.text[:150]))
                break
            if rp.status != 200:
                continue
            dp, da = json.loads(rp.decoded())["data"], json.loads(ra.decoded())["data"]
            same = _close_result(dp, da) if q in APPROX_EXPRESSIONS else _same_result(dp, da)
            if same and q.startswith("sort") and ordered_metrics(dp) != ordered_metrics(da):
                same = False
            if not same:
                out.append("%s at base%+dms:\n      prometheus %s\n      augurd     %s" % (
                    q, t - b, json.dumps(dp)[:300], json.dumps(da)[:300]))
                break
        for start, end, step in ((b - 60_000, b + 1_000_000, "13"), (b + 1, b + 900_001, "60")):
            params = {"query": q, "start": ms_to_ts_str(start), "end": ms_to_ts_str(end), "step": step}
            rp, ra = http_get(pbase + "/api/v1/query_range", params), http_get(d.base + "/api/v1/query_range", params)
            if rp.status != ra.status:
                out.append("range %s step %s: prometheus HTTP %d, augurd HTTP %d %s" % (
                    q, step, rp.status, ra.status, ra.text[:150]))
                continue
            if rp.status == 200:
                dp, da = json.loads(rp.decoded())["data"], json.loads(ra.decoded())["data"]
                if q in APPROX_EXPRESSIONS:
                    delta = "" if _close_result(dp, da) else "values differ beyond 1e-15"
                else:
                    delta = diff_matrices(matrix(dp), matrix(da))
                if delta:
                    out.append("range %s step %s: %s" % (q, step, delta))
        return out

    problems = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for out in pool.map(compare, DIFF_EXPRESSIONS):
            problems += out
    print("  %d expressions compared at %d instants and 2 ranges" % (len(DIFF_EXPRESSIONS), len(times)),
          flush=True)
    if problems:
        raise AssertionError("%d difference(s) between Prometheus 2.42 and augurd:\n  - %s" % (
            len(problems), "\n  - ".join(problems[:40])))


test_expressions_match_prometheus.timeout = 300
