"""test_qcache.py - the range-query result cache (daemon/qcache.c) against the real daemon.

Two daemons get the same writes: one with the cache on (the default budget), one with
--query.cache-max-bytes=0. Every range query must answer identically on both - before and after
late writes (a new series whose samples are hours old, an old-timestamped sample for an existing
series with a gap, a stale marker) and for overlapping but shifted ranges - while /metrics shows
that the cached daemon did answer from its cache and did invalidate.
"""
import random

from harness import STALE, ms_to_ts_str, now_ms

STEP_GRID = 15_000


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def both(ds, fn):
    return [fn(d) for d in ds]


def write_both(ds, series):
    for d in ds:
        r = d.write(series)
        check(r.status == 204, "write to %s: %r" % (d.base, r))


def qr(d, query, start, end, step, **extra):
    params = {"query": query, "start": ms_to_ts_str(start), "end": ms_to_ts_str(end),
              "step": "%gs" % (step / 1000)}
    params.update(extra)
    st, j, r = d.api("/api/v1/query_range", params)
    check(st == 200 and j and j.get("status") == "success",
          "query_range %s [%d, %d] step %d: %r" % (query, start, end, step, r))
    return j["data"]


def same(on, off, query, start, end, step, **extra):
    a = qr(on, query, start, end, step, **extra)
    b = qr(off, query, start, end, step, **extra)
    if a != b:
        raise AssertionError("cache on and off differ for %s [%s, %s] step %dms:\n  on  %s\n  off %s" % (
            query, ms_to_ts_str(start), ms_to_ts_str(end), step, str(a)[:1500], str(b)[:1500]))
    return a


def cache_metric(d, name):
    return d.metrics().value("augur_query_cache_%s" % name, default=None)


def setup_pair(ctx):
    on = ctx.daemon()
    off = ctx.daemon(args=["--query.cache-max-bytes=0"])
    now = now_ms()
    t0 = (now - 3 * 3_600_000) // STEP_GRID * STEP_GRID  # three hours ago, on the 15s grid
    series = []
    for inst, rate_ in (("a", 1.0), ("b", 2.5), ("c", 0.5)):
        # c stops after one hour: a gap that later, in-order, old-timestamped samples fill
        last = t0 + 3_600_000 if inst == "c" else now - 10 * 60_000
        series.append(({"__name__": "req_total", "job": "api", "inst": inst},
                       [(t, (t - t0) / 1000 * rate_) for t in range(t0, last + 1, STEP_GRID)]))
    for room, base in (("x", 20.0), ("y", 17.5)):
        series.append(({"__name__": "temp", "room": room},
                       [(t, base + ((t - t0) // STEP_GRID) % 7) for t in range(t0, now - 10 * 60_000, STEP_GRID)]))
    write_both([on, off], series)
    return on, off, t0, now


def late_writes(ds, t0):
    """A new series with samples two hours old, a sample filling c's gap, then a stale marker."""
    write_both(ds, [({"__name__": "req_total", "job": "api", "inst": "d"},
                     [(t, 1000.0 + (t - t0) / 1000) for t in range(t0 + 40 * 60_000, t0 + 50 * 60_000, STEP_GRID)])])
    write_both(ds, [({"__name__": "req_total", "job": "api", "inst": "c"},
                     [(t0 + 90 * 60_000, 5000.0), (t0 + 92 * 60_000, 5100.0)])])
    write_both(ds, [({"__name__": "req_total", "job": "api", "inst": "c"}, [(t0 + 95 * 60_000, STALE)])])


def test_cache_hits_and_late_writes_match_uncached(ctx):
    on, off, t0, now = setup_pair(ctx)
    q = 'sum by (inst) (rate(req_total[5m]))'
    start, end, step = t0 + 30 * 60_000, t0 + 120 * 60_000, 60_000
    check(cache_metric(on, "hits_total") == 0, "no hits at start")
    first = same(on, off, q, start, end, step)
    check(cache_metric(on, "misses_total") == 1, "first query is a miss: %r" % cache_metric(on, "misses_total"))
    check(cache_metric(on, "entries") == 1, "one entry cached")
    check(cache_metric(on, "bytes") > 0, "cached bytes reported")
    second = same(on, off, q, start, end, step)
    check(second == first, "repeated query changed its answer")
    check(cache_metric(on, "hits_total") == 1, "second query is a hit: %r" % cache_metric(on, "hits_total"))
    check(cache_metric(off, "hits_total") == 0 and cache_metric(off, "entries") == 0,
          "the daemon with the cache off cached something")
    # a shifted, overlapping range is a hit too, and answers as the uncached daemon
    same(on, off, q, start + 17 * 60_000, end + 40 * 60_000, step)
    check(cache_metric(on, "hits_total") == 2, "shifted range is a hit")
    # an end between two steps of the grid, just after the cached ones
    same(on, off, q, start, end + 40 * 60_000 + 30_000, step)
    check(cache_metric(on, "hits_total") == 3, "off-grid end is a hit")

    inv0 = cache_metric(on, "invalidations_total")
    late_writes([on, off], t0)
    check(cache_metric(on, "invalidations_total") > inv0, "late writes invalidated nothing")
    after = same(on, off, q, start, end, step)
    check(after != first, "the late writes should change this answer (test data is wrong)")
    insts = sorted(s["metric"].get("inst") for s in after["result"])
    check(insts == ["a", "b", "c", "d"], "series after late writes: %r" % insts)
    for s_, e_ in ((start - 25 * 60_000, end - 60 * 60_000), (start + 60 * 60_000, now),
                   (start, end), (start - 3 * 60_000, end + 7 * 60_000)):
        same(on, off, q, s_, e_, step)
        same(on, off, 'req_total', s_, e_, step)
        same(on, off, 'req_total', s_ + 5_000, e_, step)  # another grid
    # an in-order write of fresh data (the normal case) invalidates nothing
    inv1 = cache_metric(on, "invalidations_total")
    fresh = now_ms()
    write_both([on, off], [({"__name__": "req_total", "job": "api", "inst": "a"}, [(fresh, 1.0)])])
    check(cache_metric(on, "invalidations_total") == inv1, "a fresh sample invalidated cached steps")
    same(on, off, q, start, fresh, step)


def test_cache_randomized_expressions_shifted_ranges(ctx):
    on, off, t0, now = setup_pair(ctx)
    rnd = random.Random(20261127)
    exprs = [
        'rate(req_total[5m])',
        'sum by (job) (rate(req_total[5m]))',
        'topk(2, req_total)',
        'max_over_time(rate(req_total[2m])[10m:1m])',
        'absent(req_total{inst="d"})',
        'absent(nonexistent_metric)',
        'req_total offset 10m',
        'avg_over_time(temp[10m]) * 2',
        'count(req_total) + sum(temp)',
        'req_total @ end()',          # never cached, still correct
        'req_total offset -5m',       # never cached, still correct
        'time() - timestamp(temp)',
    ]
    # cache every expression over the range the late writes will touch
    fixed = [(q, t0 + 20 * 60_000, t0 + 140 * 60_000, step) for q in exprs for step in (60_000, 30_000)]
    for q, s_, e_, step in fixed:
        same(on, off, q, s_, e_, step)
    for i in range(70):
        if i == 35:
            late_writes([on, off], t0)
            for q, s_, e_, step in fixed:
                same(on, off, q, s_, e_, step)
        q = rnd.choice(exprs)
        step = rnd.choice((15_000, 30_000, 60_000, 45_000))
        start = t0 + rnd.randrange(0, 150) * 60_000 + rnd.choice((0, 0, 0, 5_000))
        end = min(start + rnd.randrange(1, 60) * 60_000 + rnd.choice((0, 15_000)), now + 60_000)
        if end < start:
            end = start
        extra = {"lookback_delta": "2m"} if rnd.random() < 0.15 else {}
        same(on, off, q, start, end, step, **extra)
        # the same query again, shifted the way a dashboard refresh shifts it
        shift = rnd.choice((step, 2 * step, 5 * step, -step))
        same(on, off, q, start + shift, end + shift, step, **extra)
    check(cache_metric(on, "hits_total") > 30, "the randomized queries hardly hit the cache: %r" %
          cache_metric(on, "hits_total"))
    check(cache_metric(on, "invalidations_total") > 0, "the late writes invalidated nothing")


def test_cache_budget_reload(ctx):
    """query.cache_max_bytes from the config file; a reload to 0 empties the cache."""
    cfg = ctx.path("augur.yml")
    with open(cfg, "w") as f:
        f.write("query:\n  cache_max_bytes: 1MiB\n")
    d = ctx.daemon(config_file=cfg)
    now = now_ms()
    t0 = (now - 3_600_000) // STEP_GRID * STEP_GRID
    r = d.write([({"__name__": "g", "k": "v"}, [(t, float(t % 97)) for t in range(t0, now - 600_000, STEP_GRID)])])
    check(r.status == 204, "write: %r" % r)
    qr(d, "g", t0, t0 + 30 * 60_000, 15_000)
    qr(d, "g", t0, t0 + 30 * 60_000, 15_000)
    check(cache_metric(d, "hits_total") == 1 and cache_metric(d, "entries") == 1, "cache in use")
    with open(cfg, "w") as f:
        f.write("query:\n  cache_max_bytes: 0\n")
    r = d.post("/-/reload", b"")
    check(r.status == 200, "reload: %r" % r)
    check(cache_metric(d, "entries") == 0 and cache_metric(d, "bytes") == 0, "cache not emptied by reload")
    qr(d, "g", t0, t0 + 30 * 60_000, 15_000)
    check(cache_metric(d, "hits_total") == 1 and cache_metric(d, "entries") == 0, "disabled cache was used")
