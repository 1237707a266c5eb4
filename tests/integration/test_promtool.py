"""test_promtool.py - promtool (Prometheus 2.42 from Debian) queries a running augurd.

promtool is the reference client: client_golang's API package, POST form with a GET fallback.
Known data is remote-written, then `promtool query instant|range|series|labels` must print
exactly what a Prometheus holding the same data prints.
"""
import os
import subprocess

PROMTOOL = "/usr/bin/promtool"
T = 1_700_000_000_000  # ms, a whole second


def promtool(*args):
    if not os.access(PROMTOOL, os.X_OK):
        raise AssertionError("%s is not installed (make deps installs prometheus)" % PROMTOOL)
    p = subprocess.run([PROMTOOL, "query", *args], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("promtool query %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
    return p.stdout


def test_promtool_queries(ctx):
    d = ctx.daemon()
    series = []
    for job, base in (("api", 10.0), ("db", 100.0)):
        for inst in ("a", "b"):
            series.append(({"__name__": "http_requests_total", "instance": inst, "job": job},
                           [(T + k * 15_000, base + k * (2.0 if inst == "a" else 3.0)) for k in range(21)]))
    r = d.write(series)
    if r.status != 204:
        raise AssertionError("remote write: %r" % r)
    at = str((T + 300_000) // 1000)
    out = promtool("instant", "--time=" + at, d.base, "sum by (job) (http_requests_total)")
    want = {'{job="api"} => 120 @[%s]' % at, '{job="db"} => 300 @[%s]' % at}
    if set(out.strip().splitlines()) != want:
        raise AssertionError("instant sum by (job): got %r, want %r" % (out, sorted(want)))
    out = promtool("instant", "--time=" + at, d.base, 'rate(http_requests_total{instance="a"}[1m])')
    lines = sorted(out.strip().splitlines())
    want = ['{instance="a", job="api"} => 0.13333333333333333 @[%s]' % at,
            '{instance="a", job="db"} => 0.13333333333333333 @[%s]' % at]
    if lines != want:
        raise AssertionError("instant rate: got %r, want %r" % (lines, want))
    out = promtool("instant", "--time=" + at, d.base, "1+1")
    if out.strip() != "scalar: 2 @[%s]" % at:
        raise AssertionError("instant 1+1: got %r" % out)
    start, end = str(T // 1000), str((T + 60_000) // 1000)
    out = promtool("range", "--start=" + start, "--end=" + end, "--step=30s", d.base,
                   'http_requests_total{job="api",instance="b"}')
    want = 'http_requests_total{instance="b", job="api"} =>\n' \
           '10 @[%d]\n16 @[%d]\n22 @[%d]' % (T // 1000, T // 1000 + 30, T // 1000 + 60)
    if out.strip() != want:
        raise AssertionError("range: got %r, want %r" % (out, want))
    window = ("--start=" + start, "--end=" + end)  # promtool's defaults cover only recent minutes
    out = promtool("series", "--match=http_requests_total{job=\"db\"}", *window, d.base)
    want = ['{__name__="http_requests_total", instance="a", job="db"}',
            '{__name__="http_requests_total", instance="b", job="db"}']
    if out.strip().splitlines() != want:
        raise AssertionError("series: got %r, want %r" % (out, want))
    out = promtool("labels", *window, d.base, "job")
    if out.strip().splitlines() != ["api", "db"]:
        raise AssertionError("labels job: got %r" % out)
