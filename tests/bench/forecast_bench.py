#!/usr/bin/env python3
"""forecast_bench.py - forecast accuracy of `augur forecast` against two baselines.

Measures, on the five anomaly-free series of the shared anomaly set
(../shared/anomaly-set/data/*/*_clean.csv: 5-minute samples over 28 days, 8064 rows each), how
well `build/augur forecast` predicts 1 hour (12 steps) and 1 day (288 steps) ahead, compared with
  - seasonal naive, daily season (288 steps): forecast of row i+h = value of row
    i+h-288*ceil(h/288), i.e. the same time of day on the last day already seen;
  - statsmodels' ExponentialSmoothing (Holt-Winters: additive damped trend, additive season with
    seasonal_periods=288, parameters estimated by statsmodels), refitted at every origin on the
    last 14 days of history up to and including the origin row.

Rolling origin: the first 14 days (rows 0..4031) are training/warm-up for every method; origins
are rows i = 4032, 4032+S, 4032+2S, ... (S = --origin-step-hours, default 6 h = 72 rows) with
i+h inside the file, and every method is scored on the SAME origins. augur runs once per series
and horizon over the whole file (it is causal: the forecast on row i uses rows 0..i only, and is
the prediction for row i+h); its forecast written on row i is compared with the value of row i+h.

Metrics per series and horizon:
  sMAPE = mean of 200*|f-a|/(|f|+|a|) (a term whose f and a are both 0 counts as 0);
  MASE  = mean |f-a| / (mean |y[t]-y[t-288]| over the training rows t=288..4031), the in-sample
          error of the daily seasonal-naive forecast.
Also the wall time of each method: augur, the total of its runs (process start to exit, CSV
parsing and printing included); statsmodels, the total of its fit+forecast calls (summed over
workers, i.e. as if run on one core); seasonal naive is not timed (an array lookup).

Prints one table to stdout, then a line with the times and on how many series augur's MASE is at
most statsmodels' per horizon. Exits non-zero only on errors (bad data, augur failing), never
because augur loses.

Run (from the repo root, after `make build/augur`; needs Debian's python3 with python3-numpy,
python3-pandas and python3-statsmodels; if the python3 running it lacks them the script re-runs
itself under /usr/bin/python3):
    /usr/bin/python3 tests/bench/forecast_bench.py [--augur build/augur] [--data DIR]
        [--origin-step-hours 6] [--jobs 2] [--augur-args "--refit 1d"]
It takes about 5 minutes on 2 cores (statsmodels' fits dominate: ~2 s each, 56 origins x 5
series).
"""
import argparse
import glob
import io
import math
import os
import shlex
import subprocess
import sys
import time

# statsmodels' fits are single-threaded Python/scipy work; keep BLAS from oversubscribing cores
# when fits run in parallel worker processes.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

try:
    import numpy as np
    import pandas as pd
    from statsmodels.tsa.holtwinters import ExponentialSmoothing
except ImportError as e:
    # e.g. a pyenv python3 first on PATH: fall back to Debian's, which has the apt packages.
    deb = "/usr/bin/python3"
    if os.path.realpath(sys.executable) != os.path.realpath(deb) and os.path.exists(deb) \
            and not os.environ.get("FORECAST_BENCH_REEXEC"):
        os.environ["FORECAST_BENCH_REEXEC"] = "1"
        os.execv(deb, [deb, os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit("forecast_bench: %s (install python3-numpy python3-pandas python3-statsmodels)" % e)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEP_S = 300                 # 5-minute samples
SEASON = 288                 # one day of samples
TRAIN = 14 * SEASON          # first 14 days: training / warm-up (rows 0..4031)
HORIZONS = [(12, "1h"), (288, "1d")]


def load(path):
    df = pd.read_csv(path)
    if list(df.columns) != ["timestamp", "value"]:
        raise ValueError("%s: header is not timestamp,value" % path)
    ts = pd.to_datetime(df["timestamp"], format="%Y-%m-%d %H:%M:%S")
    d = np.diff(ts.to_numpy().astype("datetime64[s]").astype(np.int64))
    if len(df) < TRAIN + SEASON + 1 or not np.all(d == STEP_S):
        raise ValueError("%s: needs > %d rows at exact 5-minute steps" % (path, TRAIN + SEASON))
    y = df["value"].to_numpy(dtype=float)
    if not np.all(np.isfinite(y)):
        raise ValueError("%s: non-finite values" % path)
    return df["timestamp"].tolist(), y


def origins_for(n, h, step_rows):
    return list(range(TRAIN, n - h, step_rows))


def run_augur(augur, extra, path, hdur, timestamps):
    """Returns (forecast array aligned with rows, wall seconds)."""
    cmd = [augur, "forecast", "--horizon", hdur, "--step", "5m"] + extra + [path]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(cmd), p.returncode,
                                                 p.stderr.decode(errors="replace").strip()))
    out = pd.read_csv(io.BytesIO(p.stdout), dtype={"timestamp": str})
    if list(out.columns[:3]) != ["timestamp", "value", "forecast"] or len(out) != len(timestamps) \
            or out["timestamp"].tolist() != timestamps:
        raise RuntimeError("%s: output rows/columns do not match the input" % " ".join(cmd))
    return out["forecast"].to_numpy(dtype=float), dt


# statsmodels fits run in worker processes; the series are inherited through fork.
_SERIES = {}


def _ets_task(task):
    name, i, hmax = task
    y = _SERIES[name]
    hist = y[max(0, i + 1 - TRAIN):i + 1]           # last 14 days up to and including row i
    t0 = time.perf_counter()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")               # convergence chatter from scipy/statsmodels
        m = ExponentialSmoothing(hist, trend="add", damped_trend=True, seasonal="add",
                                 seasonal_periods=SEASON,
                                 initialization_method="estimated").fit()
        f = np.asarray(m.forecast(hmax), dtype=float)
    dt = time.perf_counter() - t0
    return name, i, f, dt


def smape(f, a):
    den = np.abs(f) + np.abs(a)
    num = 200.0 * np.abs(f - a)
    terms = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(np.mean(terms))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--augur", default=os.path.join(REPO, "build", "augur"))
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "anomaly-set", "data"))
    ap.add_argument("--origin-step-hours", type=float, default=6.0,
                    help="hours between rolling origins (default 6 = 72 rows)")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="parallel statsmodels fits (default min(2, cores))")
    ap.add_argument("--augur-args", default="",
                    help='extra arguments for augur forecast, e.g. "--refit 1d"')
    a = ap.parse_args()

    augur = os.path.abspath(a.augur)
    if not os.access(augur, os.X_OK):
        sys.exit("forecast_bench: %s not found or not executable (make build/augur)" % augur)
    files = sorted(glob.glob(os.path.join(a.data, "*", "*_clean.csv")))
    if not files:
        sys.exit("forecast_bench: no */*_clean.csv under %s" % a.data)
    step_rows = int(round(a.origin_step_hours * 3600 / STEP_S))
    if step_rows < 1:
        sys.exit("forecast_bench: --origin-step-hours too small")
    extra = shlex.split(a.augur_args)
    t_start = time.perf_counter()

    series = []                                       # (name, path, timestamps, y)
    for path in files:
        name = os.path.basename(path)[:-len("_clean.csv")]
        ts, y = load(path)
        series.append((name, path, ts, y))
        _SERIES[name] = y

    # augur: one run per series and horizon over the whole file
    aug_fc, aug_time = {}, 0.0
    for name, path, ts, y in series:
        for h, hdur in HORIZONS:
            f, dt = run_augur(augur, extra, path, hdur, ts)
            aug_fc[(name, h)] = f
            aug_time += dt

    # statsmodels: one fit per series and origin, forecasting up to the longest horizon needed
    # (the fit at origin i does not depend on h, so both horizons share it)
    hmax_all = max(h for h, _ in HORIZONS)
    tasks = []
    for name, _, _, y in series:
        orig = sorted(set().union(*[origins_for(len(y), h, step_rows) for h, _ in HORIZONS]))
        for i in orig:
            tasks.append((name, i, min(hmax_all, len(y) - 1 - i)))
    ets_fc, ets_time = {}, 0.0
    if a.jobs > 1:
        import multiprocessing as mp
        with mp.get_context("fork").Pool(a.jobs) as pool:
            results = pool.map(_ets_task, tasks, chunksize=1)
    else:
        results = map(_ets_task, tasks)
    for name, i, f, dt in results:
        ets_fc[(name, i)] = f
        ets_time += dt

    # score
    rows, wins = [], {h: 0 for h, _ in HORIZONS}
    for h, hdur in HORIZONS:
        for name, _, _, y in series:
            orig = np.array(origins_for(len(y), h, step_rows))
            act = y[orig + h]
            fa = aug_fc[(name, h)][orig]
            if not np.all(np.isfinite(fa)):
                raise RuntimeError("augur gave no forecast on %d origins of %s (h=%s)"
                                   % (int(np.sum(~np.isfinite(fa))), name, hdur))
            fn = y[orig + h - SEASON * math.ceil(h / SEASON)]
            fe = np.array([ets_fc[(name, int(i))][h - 1] for i in orig])
            scale = float(np.mean(np.abs(y[SEASON:TRAIN] - y[:TRAIN - SEASON])))
            if not scale > 0:
                raise RuntimeError("%s: zero seasonal-naive in-sample error, MASE undefined" % name)
            r = {"series": name, "h": hdur, "n": len(orig)}
            for key, f in (("augur", fa), ("naive", fn), ("ets", fe)):
                r["smape_" + key] = smape(f, act)
                r["mase_" + key] = float(np.mean(np.abs(f - act))) / scale
            if r["mase_augur"] <= r["mase_ets"]:
                wins[h] += 1
            rows.append(r)

    hdr = ("%-14s %3s %4s | %-23s | %-23s" %
           ("series", "h", "n", "sMAPE %", "MASE"))
    sub = ("%-14s %3s %4s | %7s %7s %7s | %7s %7s %7s" %
           ("", "", "", "augur", "snaive", "ets", "augur", "snaive", "ets"))
    print("Forecast accuracy, rolling origin from day 14 every %gh (same origins for all "
          "methods); ets = statsmodels ExponentialSmoothing (damped add. trend, add. season 288, "
          "refit per origin on last 14 d)" % a.origin_step_hours)
    print(hdr)
    print(sub)
    print("-" * len(sub))
    for h, hdur in HORIZONS:
        hr = [r for r in rows if r["h"] == hdur]
        for r in hr + [None]:
            if r is None:                              # mean over series for this horizon
                r = {"series": "mean", "h": hdur, "n": sum(x["n"] for x in hr)}
                for k in hr[0]:
                    if k.startswith(("smape_", "mase_")):
                        r[k] = float(np.mean([x[k] for x in hr]))
            print("%-14s %3s %4d | %7.2f %7.2f %7.2f | %7.3f %7.3f %7.3f" %
                  (r["series"], r["h"], r["n"], r["smape_augur"], r["smape_naive"],
                   r["smape_ets"], r["mase_augur"], r["mase_naive"], r["mase_ets"]))
        print("-" * len(sub))
    nser = len(series)
    print("time: augur %.2fs (%d runs), statsmodels %.1fs fit+forecast (%d fits, %d jobs), "
          "bench wall %.1fs | augur MASE <= statsmodels: %s" %
          (aug_time, nser * len(HORIZONS), ets_time, len(tasks), a.jobs,
           time.perf_counter() - t_start,
           ", ".join("%s %d/%d" % (hd, wins[h], nser) for h, hd in HORIZONS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
