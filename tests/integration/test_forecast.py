"""test_forecast.py - forecasting and anomaly detection in the running daemon (issue 5).

Zero-config scores on every series (and their invisibility to catch-all selectors), configured
models (outputs as series with the source's labels, the warm-up over history, GSL refits,
config reload, live evaluation), state that survives a restart, the models: config errors,
and the ad-hoc PromQL functions. Every check could fail: values are compared with the signal
the test wrote, not with constants the daemon produced before.
"""
import math
import os
import random
import signal
import time

from harness import eq, now_ms, query, wait_until

STEP = 60_000
DAY = 86_400_000


def query_range(d, q, start, end, step_s):
    st, j, r = d.api("/api/v1/query_range", {"query": q, "start": "%.3f" % (start / 1000.0),
                                             "end": "%.3f" % (end / 1000.0), "step": str(step_s)})
    if st != 200:
        raise AssertionError("query_range %s: %r" % (q, r))
    return j["data"]["result"]


def write_ok(d, series):
    r = d.write(series)
    eq(r.status, 204, "write status (%r)" % r)


def metric(d, name):
    return d.metrics().value(name, default=0)


def noisy(n, t0, step, seed, level=10.0, sd=0.5):
    rnd = random.Random(seed)
    return [(t0 + i * step, level + rnd.gauss(0, sd)) for i in range(n)]


# ---- zero-config detection ------------------------------------------------------------------


def test_auto_scores_every_series_and_hides_them_from_catch_alls(ctx):
    d = ctx.daemon()
    t0 = now_ms() - 500 * 15_000
    src = {"__name__": "cpu_load", "job": "a", "instance": "x", "metric": "m1"}
    calm = {"__name__": "calm_load", "job": "a", "instance": "x"}
    hist = noisy(400, t0, 15_000, 1)
    write_ok(d, [(src, hist), (calm, noisy(401, t0, 15_000, 2))])
    t_spike = t0 + 400 * 15_000
    sent = time.monotonic()
    write_ok(d, [(src, [(t_spike, 30.0)])])

    def spike_scored():
        for s in query(d, "augur_auto_anomaly_score", t_spike):
            if s["metric"].get("metric") == "cpu_load" and float(s["value"][1]) >= 0.5:
                return s
        return None
    s = wait_until(spike_scored, 10, what="the spike's zero-config score")
    print("  spike scored %.2f, visible %.0f ms after its write was acknowledged"
          % (float(s["value"][1]), (time.monotonic() - sent) * 1000))
    # The source's labels, its name as metric=, its own metric= label as exported_metric=.
    eq(s["metric"], {"__name__": "augur_auto_anomaly_score", "metric": "cpu_load",
                     "exported_metric": "m1", "job": "a", "instance": "x"}, "score labels")
    # The calm series never reached an alarm.
    calm_max = query(d, 'max_over_time(augur_auto_anomaly_score{metric="calm_load"}[1d])', t_spike)
    assert not calm_max or float(calm_max[0]["value"][1]) < 0.5, calm_max
    # Catch-all selectors and listings answer as Prometheus would over the written data.
    names = sorted(s["metric"]["__name__"] for s in query(d, '{job="a"}', t_spike))
    eq(names, ["calm_load", "cpu_load"], "catch-all selector")
    cnt = query(d, 'count({__name__=~".+"})', t_spike)
    eq(cnt[0]["value"][1], "2", "count of every series")
    st, j, _ = d.api("/api/v1/label/__name__/values")
    eq(j["data"], ["calm_load", "cpu_load"], "metric names")
    st, j, _ = d.api("/api/v1/series", {"match[]": "augur_auto_anomaly_score"})
    assert j["data"] and all(m["__name__"] == "augur_auto_anomaly_score" for m in j["data"]), j
    assert metric(d, "augur_detection_scored_samples_total") >= 802
    # Off: no more scores.
    d2 = ctx.daemon(args=["--detection.auto=false"])
    write_ok(d2, [(src, hist + [(t_spike, 30.0)])])
    time.sleep(0.5)
    eq(query(d2, "augur_auto_anomaly_score", t_spike), [], "scores with detection.auto=false")
    eq(metric(d2, "augur_detection_scored_samples_total"), 0, "scored samples when off")


def test_auto_detector_state_survives_restart(ctx):
    d = ctx.daemon()
    t0 = now_ms() - 500 * 15_000
    src = {"__name__": "disk_io", "job": "b"}
    write_ok(d, [(src, noisy(400, t0, 15_000, 3))])
    d.stop()   # a clean stop checkpoints the detectors' state
    d.start()
    t_spike = t0 + 400 * 15_000
    # A detector that had to start again would not alarm this early (it warms up first):
    fresh = {"__name__": "disk_io", "job": "fresh"}
    write_ok(d, [(fresh, noisy(3, t0, 15_000, 4))])
    write_ok(d, [(src, [(t_spike, 30.0)]), (fresh, [(t_spike, 30.0)])])

    def scores():
        r = {s["metric"]["job"]: float(s["value"][1])
             for s in query(d, "augur_auto_anomaly_score", t_spike)}
        return r if "b" in r else None
    r = wait_until(scores, 10, what="the score after the restart")
    assert r["b"] >= 0.5, "restored detector missed the spike: %r" % r
    assert r.get("fresh", 0) < 0.5, "a fresh detector alarmed at once (the control): %r" % r


# ---- configured models ----------------------------------------------------------------------


def truth(t):
    """The written signal: a daily cycle around 100."""
    return 100.0 + 40.0 * math.sin(2 * math.pi * (t % DAY) / DAY)


MODELS = """models:
  - name: api
    expr: sum by (service) (req_rate)
    step: 1m
    horizon: 1h
    seasons: [day]
    warmup: 3d
  - name: fast
    expr: sum(live_value)
    step: 1s
    warmup: 10s
    refit: 0
"""


def write_history(d, end):
    """Three days of req_rate{service="api"} at 1m, ending at `end`, with one spike."""
    start = end - 3 * DAY
    rnd = random.Random(5)
    pts = []
    t_spike = start + 2 * DAY + 7 * 3_600_000
    t = start
    while t <= end:
        v = truth(t) + rnd.gauss(0, 1.0)
        if t == t_spike:
            v += 60.0
        pts.append((t, v))
        t += STEP
    for i in range(0, len(pts), 1500):
        write_ok(d, [({"__name__": "req_rate", "service": "api", "instance": "i1"}, pts[i:i + 1500])])
    return t_spike


def test_models_forecast_score_persist_and_reload(ctx):
    cfg = ctx.path("augur.yml")
    with open(cfg, "w") as f:
        f.write("storage:\n  retention: 0\n")
    d = ctx.daemon(config_file=cfg)
    end = now_ms() // STEP * STEP - STEP
    t_spike = write_history(d, end)
    with open(cfg, "w") as f:
        f.write("storage:\n  retention: 0\n" + MODELS)
    r = d.post("/-/reload", b"")
    eq(r.status, 200, "reload with models (%r)" % r)
    # The warm-up replays the three days (4320 steps) and writes their outputs.
    wait_until(lambda: metric(d, "augur_forecast_runs_total") >= 4320, 120, interval=0.5,
               what="the warm-up of model api")
    fc = query_range(d, 'augur_forecast{model="api"}', end - DAY, end, 60)
    eq(len(fc), 1, "one forecast series")
    eq(fc[0]["metric"], {"__name__": "augur_forecast", "model": "api", "service": "api"},
       "forecast labels")
    # Over the last day the 1h-ahead forecast tracks the signal, far better than assuming
    # nothing changes for an hour.
    err_f = err_naive = 0.0
    for ts, v in fc[0]["values"]:
        t = int(round(float(ts) * 1000))
        err_f += abs(float(v) - truth(t + 3_600_000))
        err_naive += abs(truth(t) - truth(t + 3_600_000))
    n = len(fc[0]["values"])
    print("  1h-ahead forecast MAE %.2f, no-change MAE %.2f over %d steps"
          % (err_f / n, err_naive / n, n))
    assert err_f < 0.4 * err_naive, (err_f / n, err_naive / n)
    lo = query(d, 'augur_forecast_lower{model="api"}', end)[0]["value"][1]
    hi = query(d, 'augur_forecast_upper{model="api"}', end)[0]["value"][1]
    mid = query(d, 'augur_forecast{model="api"}', end)[0]["value"][1]
    assert float(lo) < float(mid) < float(hi), (lo, mid, hi)
    # The spike in the history scored high, ordinary minutes low.
    sc = query(d, 'augur_anomaly_score{model="api"}', t_spike)
    assert float(sc[0]["value"][1]) >= 0.5, sc
    eq(query(d, 'augur_anomaly{model="api"}', t_spike)[0]["value"][1], "1", "flag at the spike")
    q = query(d, 'quantile_over_time(0.9, augur_anomaly_score{model="api"}[12h])', end)
    assert float(q[0]["value"][1]) < 0.2, q
    # The GSL refit runs after the warm-up.
    wait_until(lambda: metric(d, "augur_model_refits_total") >= 1, 60, interval=0.5,
               what="a refit")
    # Live: a sample written now is scored at the next 1 s step.
    t_live = now_ms()
    write_ok(d, [({"__name__": "live_value"}, [(t_live, 5.0)])])
    sent = time.monotonic()

    def live_out():
        res = query_range(d, 'augur_anomaly_score{model="fast"}', t_live, t_live + 10_000, 1)
        return res and res[0]["values"]
    wait_until(live_out, 10, what="the fast model's output after a live sample")
    print("  live sample: model output visible %.0f ms after the write was acknowledged"
          % ((time.monotonic() - sent) * 1000))
    # Restart: the models resume from their saved state (no second warm-up).
    d.stop()
    d.start()
    wait_until(lambda: "model=api series=1 resumed=true" in d.run_log(), 10,
               what="model api resumed")
    time.sleep(1.5)
    runs = metric(d, "augur_forecast_runs_total")
    assert runs < 1000, "a restart replayed %d steps: the model was re-warmed" % runs
    # A reload that keeps the model's definition keeps its state; a changed expression restarts it.
    with open(cfg, "w") as f:
        f.write("storage:\n  retention: 0\n" + MODELS.replace("horizon: 1h", "horizon: 2h"))
    eq(d.post("/-/reload", b"").status, 200, "reload with a new horizon")
    time.sleep(1.0)
    assert metric(d, "augur_forecast_runs_total") < 1000 + runs, "reload re-warmed the model"
    eq(metric(d, "augur_models"), 2, "models after reload")
    # A broken models: section is refused and the running models stay.
    with open(cfg, "w") as f:
        f.write("storage:\n  retention: 0\nmodels:\n  - name: api\n    expr: sum(rate(x[5m])\n")
    r = d.post("/-/reload", b"")
    assert r.status == 500 and "augur.yml:5:11" in r.text and "expr" in r.text, r
    eq(metric(d, "augur_models"), 2, "models after a failed reload")


def test_models_config_error_stops_start(ctx):
    cfg = ctx.path("bad.yml")
    with open(cfg, "w") as f:
        f.write("models:\n  - name: a\n    expr: up\n    seasons: [day, fortnight]\n")
    d = ctx.daemon(config_file=cfg, start=False)
    d.start(wait_ready=False)
    wait_until(lambda: d.proc.poll() is not None, 15, what="augurd to refuse the config")
    assert d.proc.returncode != 0
    log = d.run_log()
    assert "bad.yml:4:20" in log and "fortnight" in log, log[-2000:]
    d.reaped = True


# ---- ad-hoc PromQL functions ----------------------------------------------------------------


def test_promql_forecast_functions(ctx):
    d = ctx.daemon(args=["--detection.auto=false"])
    end = now_ms() // STEP * STEP - STEP
    t_spike = write_history(d, end)
    sel = 'req_rate{service="api"}'
    p = query(d, "predict_hw(%s[2d], 3600)" % sel, end)
    eq(p[0]["metric"], {"service": "api", "instance": "i1"}, "predict_hw drops the name")
    # At eight times of day over the last day: close to the signal, inside the band.
    err = inside = 0
    for k in range(8):
        t = end - k * 3 * 3_600_000
        want = truth(t + 3_600_000)
        mid = float(query(d, "predict_hw(%s[2d], 3600)" % sel, t)[0]["value"][1])
        lo = float(query(d, "predict_hw_lower(%s[2d], 3600)" % sel, t)[0]["value"][1])
        hi = float(query(d, "predict_hw_upper(%s[2d], 3600)" % sel, t)[0]["value"][1])
        assert lo < mid < hi, (lo, mid, hi)
        err += abs(mid - want)
        inside += lo < want < hi
    print("  predict_hw 1h ahead: MAE %.2f, truth inside the 95%% band %d of 8" % (err / 8, inside))
    assert err / 8 < 3.0 and inside >= 6, (err / 8, inside)
    s_spike = float(query(d, "anomaly_score_hw(%s[2d])" % sel, t_spike)[0]["value"][1])
    s_calm = float(query(d, "anomaly_score_hw(%s[2d])" % sel, t_spike - 3_600_000)[0]["value"][1])
    assert s_spike >= 0.5 > s_calm, (s_spike, s_calm)
    # Prometheus' holt_winters is unchanged, and bad arguments are parse errors.
    st, j, _ = d.api("/api/v1/query", {"query": "predict_hw(%s, 60)" % sel})
    eq(st, 400, "predict_hw over an instant vector")
    st, j, _ = d.api("/api/v1/query", {"query": "anomaly_score_hw(%s[1h], 5)" % sel})
    eq(st, 400, "anomaly_score_hw with two arguments")
