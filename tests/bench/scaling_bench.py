#!/usr/bin/env python3
"""scaling_bench.py - predictive against reactive scaling with `augur simulate` (issue 6 goal).

Replays augurd's predictive scaling policy and the reactive HPA-style policy (15 s sync, 10%
tolerance, 5 min scale-down window, replicas ready after the lead time) over
  - every request-rate series of the shared anomaly set (../shared/anomaly-set/data/requests/,
    5-minute samples over 28 days, anomalies included), and
  - a load of our own, generated here with a fixed seed: 14 days at 1-minute resolution, a
    daily cycle with a sharp morning ramp, lower weekends, noise and a few unannounced bursts,
and prints one table row per load: under-provisioned and total replica-minutes of both policies
and the ratios. The goal: predictive under-provisioning at most half the reactive one, with at
most 25% more replica-minutes. Capacity per replica is set so the daily peak needs about 20
replicas; lead time 5 minutes, target utilisation 0.8, confidence 0.9 (the defaults).

    python3 tests/bench/scaling_bench.py [--augur build/augur] [--data DIR]

Exits non-zero only on errors, never because a goal is missed.
"""
import argparse
import glob
import math
import os
import random
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def own_load(path):
    rnd = random.Random(42)
    t0 = 1767571200  # Monday 2026-01-05 00:00 UTC
    with open(path, "w") as f:
        f.write("timestamp,value\n")
        burst = 0.0
        for i in range(14 * 1440):
            t = t0 + 60 * i
            hour = (t % 86400) / 3600.0
            dow = (t // 86400 + 3) % 7  # 0 = Monday
            # quiet night, a steep ramp 07:00-09:00, a plateau, an evening decline
            day = 0.15 + 0.85 / (1 + math.exp(-(hour - 8.0) * 2.2)) - 0.6 / (1 + math.exp(-(hour - 19.0) * 1.2))
            if dow >= 5:
                day *= 0.6
            if rnd.random() < 0.0005:
                burst = rnd.uniform(0.3, 0.8)
            burst *= 0.93
            v = 1000.0 * max(0.05, day + burst) * (1 + rnd.gauss(0, 0.04))
            f.write("%d,%.3f\n" % (t, v))


def load_values(path):
    vals = []
    with open(path) as f:
        next(f)
        for line in f:
            vals.append(float(line.rsplit(",", 1)[1]))
    return vals


def simulate(augur, path, capacity):
    out = subprocess.run([augur, "simulate", "--capacity", "%.6g" % capacity, path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise RuntimeError("augur simulate %s: %s" % (path, out.stderr.strip()))
    rows = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] in ("predictive", "reactive"):
            rows[parts[0]] = [float(x) for x in parts[1:5]]
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--augur", default=os.path.join(REPO, "build", "augur"))
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "anomaly-set", "data"))
    a = ap.parse_args()
    loads = sorted(glob.glob(os.path.join(a.data, "requests", "*.csv")))
    tmp = tempfile.mkdtemp(prefix="augur-scaling-")
    own = os.path.join(tmp, "own_daily_load.csv")
    own_load(own)
    loads.append(own)
    print("| load | under-prov. replica-min: predictive | reactive | ratio | replica-min: "
          "predictive | reactive | ratio | scaling actions p / r | goal |")
    print("|---|---|---|---|---|---|---|---|---|")
    met = 0
    for path in loads:
        vals = sorted(load_values(path))
        capacity = vals[int(0.99 * (len(vals) - 1))] / (20 * 0.8)
        r = simulate(a.augur, path, capacity)
        p, q = r["predictive"], r["reactive"]
        ru = p[0] / q[0] if q[0] > 0 else float("inf")
        rt = p[2] / q[2] if q[2] > 0 else float("inf")
        ok = ru <= 0.5 and rt <= 1.25
        met += ok
        print("| %s | %.0f | %.0f | %.3f | %.0f | %.0f | %.3f | %d / %d | %s |" % (
            os.path.basename(path)[:-4], p[0], q[0], ru, p[2], q[2], rt, p[3], q[3],
            "met" if ok else "missed"))
    print("goal met on %d of %d loads (under-provisioning <= 0.5 x reactive, replica-minutes "
          "<= 1.25 x)" % (met, len(loads)))
    os.remove(own)
    os.rmdir(tmp)


if __name__ == "__main__":
    sys.exit(main())
