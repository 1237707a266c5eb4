"""test_dashboard.py - the dashboard in a real browser: headless Chromium (Debian's) driven by
playwright-core (tests/web/dashboard.cjs) against a real augurd with remote-written data: a query
draws the expected points, the anomaly view finds the injected anomaly, the scaling and status
views render, no console errors or failed requests. Screenshots go to build/screenshots/.
"""
import os
import random
import shutil
import subprocess

from harness import eq, now_ms, query, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIN = 60_000

CONFIG = """storage:
  retention: 0
models:
  - name: latency_model
    expr: sum by (job) (demo_latency)
    step: 1m
    horizon: 10m
    warmup: 3h
scalers:
  - name: web
    load: sum(demo_requests)
    capacity_per_replica: 20
    interval: 15s
    warmup: 3h
"""


def test_dashboard_in_chromium(ctx):
    node = shutil.which("node")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert node and os.path.exists(chromium), "node and chromium come with make deps"
    cfg = ctx.path("augur.yml")
    with open(cfg, "w") as f:
        f.write("storage:\n  retention: 0\n")
    d = ctx.daemon(config_file=cfg)
    rnd = random.Random(7)
    end = now_ms() // 1000 * 1000
    first = end - 150 * MIN
    req = [(t, 100 + rnd.gauss(0, 3)) for t in range(first, end + 1, MIN)]
    lat = []
    spike = end - 30 * MIN
    for t in range(first, end + 1, 15_000):
        lat.append((t, 250.0 if spike <= t < spike + 60_000 else 50 + rnd.gauss(0, 1)))
    for chunk in range(0, len(lat), 200):
        eq(d.write([({"__name__": "demo_latency", "job": "web"}, lat[chunk:chunk + 200])]).status,
           204, "write")
    eq(d.write([({"__name__": "demo_requests", "job": "web"}, req)]).status, 204, "write")
    with open(cfg, "w") as f:
        f.write(CONFIG)
    eq(d.post("/-/reload", b"").status, 200, "reload")
    wait_until(lambda: d.metrics().value("augur_model_series", default=0) >= 1, 60, 0.5,
               what="the model's warm-up")
    shots = os.path.join(REPO, "build", "screenshots")
    r = subprocess.run([node, os.path.join(REPO, "tests", "web", "dashboard.cjs"), d.base, shots,
                        str(first // 1000), "60", str(req[-1][0] // 1000)],
                       capture_output=True, text=True, timeout=240,
                       env=dict(os.environ, CHROMIUM=chromium))
    print("  " + (r.stdout.strip() or r.stderr.strip()).replace("\n", "\n  "))
    assert r.returncode == 0, r.stdout + r.stderr
    # the daemon's own derived series (model and scaler outputs) are never scored
    eq(query(d, 'augur_auto_anomaly_score{metric=~"augur_.+"}'), [], "scores of derived series")
