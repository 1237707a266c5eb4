#!/usr/bin/env python3
"""run.py - `make bench`, part 1: remote-write ingest of augurd against Prometheus and
VictoriaMetrics on this machine.

Runs augurd, Prometheus (/usr/bin/prometheus, 2.42 on Debian 12, --web.enable-remote-write-receiver)
and VictoriaMetrics (/usr/bin/victoria-metrics, 1.79) one at a time, each on 127.0.0.1 with a free
port and a fresh temp dir, and sends each the same load with tests/bench/loadgen (default 100,000
node_exporter-shaped series x 120 samples at 15 s, timestamps ending now so that Prometheus' head
accepts them, 2000 samples per request, 4 connections). augurd and VictoriaMetrics run
--rounds times (BENCH_ROUNDS, default 3), alternating, and every figure is the median of its
rounds (each round's figures are printed below the table); Prometheus runs once. Prints the
loadgen command lines, then one Markdown table with a column per server and "augurd / best
peer":

- ingest samples/s and remote-write request p99: the load generator's figures;
- CPU seconds per million samples: the server's utime + stime (/proc/PID/stat) over the load;
- peak RSS (VmHWM at the end of the load) and peak RSS per active series;
- disk bytes per sample once persisted, divided by the samples sent, `du -sb`-style apparent
  bytes of the data dir without lock files: augurd after a clean shutdown (SIGTERM; it
  checkpoints), both the whole dir and the LMDB pages in use (mdb_stat); Prometheus after a clean
  shutdown (WAL + head chunks: 30 min of data cuts no 2 h block); VictoriaMetrics after
  /internal/force_flush and a clean shutdown (1.79 keeps freshly flushed parts in memory until
  they are merged or it stops), then restarted on the same dir, after
  /internal/force_merge?partition_prefix=YYYY_MM for the data's months (waiting until
  vm_active_force_merges, vm_active_merges and vm_pending_rows are 0) and a clean shutdown.
  VictoriaMetrics' cache/ dir (caches written at shutdown, rebuilt when missing) is left out.

Then a second table of augurd alone as the work grows: 10k and 100k active series x 120 samples
(1M series with --million or BENCH_SCALE_1M=1), and 10k series with 1 h (240) and 24 h (5760)
samples of history. Prometheus is left out of the history rows: its head refuses samples more
than 1 h older than its newest, so 24 h would need one connection sending in time order.

A peer that is missing or fails is reported and left out; the run does not fail for it. Every
server is stopped by PID and every temp dir removed.

Environment (or flags): BENCH_SERIES, BENCH_SAMPLES, BENCH_PROMETHEUS, BENCH_VICTORIA_METRICS
(binaries; empty = skip), BENCH_SCALE=0 (skip the second table), BENCH_SCALE_1M=1.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time, traceback
from benchlib import (AugurdNoDetectionServer, AugurdServer, PrometheusServer,
                      VictoriaMetricsServer, dir_bytes, http_get, mdb_pages, proc_stat)

INTERVAL_MS = 15000


def version(cmd, pkg):
    """The Debian package version (upstream part), else the first line of `cmd`."""
    try:
        v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                           text=True, timeout=10).stdout.strip()
        if v:
            return v.split("+")[0].split("-")[0]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.split()[2]
    except Exception:
        return ""


def loadgen(args, srv, series, samples, conns):
    """Sends series x samples (ending now) to srv; returns the loadgen's key=value summary."""
    start_ms = (int(time.time() * 1000) - samples * INTERVAL_MS) // 1000 * 1000
    cmd = [args.loadgen, "--port", str(srv.port), "--series", str(series), "--samples",
           str(samples), "--interval-ms", str(INTERVAL_MS), "--batch", str(args.batch),
           "--conns", str(conns), "--start-ms", str(start_ms)]
    print(f"[{srv.name}] $ {' '.join(cmd)}", flush=True)
    lg = subprocess.run(cmd, capture_output=True, text=True)
    print(f"[{srv.name}]   {lg.stdout.strip()}", flush=True)
    m = dict(kv.split("=", 1) for kv in lg.stdout.split() if "=" in kv)
    if lg.returncode != 0 or int(m.get("failures", "1")) != 0:
        raise RuntimeError(f"load generator against {srv.name} failed ({lg.returncode}): "
                           f"{lg.stdout.strip()} {lg.stderr.strip()[:300]} | {srv.log_tail()}")
    m["start_ms"] = start_ms
    m["end_ms"] = start_ms + (samples - 1) * INTERVAL_MS
    return m


def persist_augurd(srv, r):
    if not srv.stop():
        raise RuntimeError(f"augurd did not shut down cleanly: {srv.log_tail()}")
    tables, psize = mdb_pages(srv.data)
    r["disk_pages"] = sum(tables.values()) * psize
    r["disk_dir"] = dir_bytes(srv.data)


def persist_prometheus(srv, r):
    if not srv.stop():
        raise RuntimeError(f"Prometheus did not shut down cleanly: {srv.log_tail()}")
    r["disk_dir"] = dir_bytes(srv.data)


def vm_months(r):
    """VictoriaMetrics' partitions (UTC months, YYYY_MM) holding the data."""
    months, t = [], r["start_ms"] // 1000
    while True:
        mo = time.strftime("%Y_%m", time.gmtime(min(t, r["end_ms"] // 1000)))
        if mo not in months:
            months.append(mo)
        if t >= r["end_ms"] // 1000:
            return months
        t += 86400 * 28


def persist_vm(srv, r):
    st, body = http_get(srv.port, "/internal/force_flush")
    if st != 200:
        raise RuntimeError(f"force_flush: {st} {body[:200]!r}")
    srv.wait_idle(timeout=120)
    r["disk_flush_live"] = dir_bytes(srv.data, skip_dirs=("cache",))
    if not srv.stop():
        raise RuntimeError(f"VictoriaMetrics did not shut down cleanly: {srv.log_tail()}")
    r["disk_dir"] = dir_bytes(srv.data, skip_dirs=("cache",))
    r["vm_cache"] = dir_bytes(os.path.join(srv.data, "cache"))
    # full merge: restart on the same dir, force-merge the data's months, wait, stop
    try:
        srv.start()
        t0 = time.time()
        for mo in vm_months(r):
            st, body = http_get(srv.port, f"/internal/force_merge?partition_prefix={mo}")
            if st != 200:
                raise RuntimeError(f"force_merge {mo}: {st} {body[:200]!r}")
        time.sleep(0.5)
        srv.wait_idle(timeout=args_global.merge_timeout)
        r["merge_s"] = time.time() - t0
        m = srv.metrics()
        r["vm_parts"] = int(sum(v for k, v in m.items() if k.startswith("vm_parts{type=\"storage/")))
        r["vm_rows"] = int(sum(v for k, v in m.items() if k.startswith("vm_rows{type=\"storage/")))
        if not srv.stop():
            raise RuntimeError(f"VictoriaMetrics did not shut down cleanly: {srv.log_tail()}")
        r["disk_merged"] = dir_bytes(srv.data, skip_dirs=("cache",))
    except Exception as e:  # keep the unmerged figures
        r["merge_error"] = str(e)[:300]


PERSIST = {AugurdServer: persist_augurd, AugurdNoDetectionServer: persist_augurd, PrometheusServer: persist_prometheus,
           VictoriaMetricsServer: persist_vm}


def median_result(rs):
    """Each numeric figure's median over the rounds rs (other fields from the first round)."""
    out = dict(rs[0])
    for key, v in rs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            vals = [r[key] for r in rs if isinstance(r.get(key), (int, float))]
            out[key] = statistics.median(vals)
    out["rounds"] = rs
    return out


def measure(args, cls, binary, series, samples, conns=None):
    """One server, one fresh dir, one load; the figures as a dict."""
    srv = cls(binary)
    try:
        srv.start()
        cpu0, _ = proc_stat(srv.proc.pid)
        m = loadgen(args, srv, series, samples, conns or args.conns)
        cpu1, hwm = proc_stat(srv.proc.pid)
        n = int(m["samples"])
        r = {"series": series, "samples": n, "start_ms": m["start_ms"], "end_ms": m["end_ms"],
             "samples_per_second": float(m["samples_per_second"]), "p99_ms": float(m["p99_ms"]),
             "cpu_s_per_million": (cpu1 - cpu0) / n * 1e6, "rss": hwm, "rss_per_series": hwm / series}
        PERSIST[cls](srv, r)
        return r
    finally:
        srv.cleanup()
        os.sync()


# ------------------------------------------------------------------------------------------------
# tables


def ratio(a, peers, higher_better):
    vals = [v for v in peers if v is not None]
    if a is None or not vals:
        return "—"
    best = max(vals) if higher_better else min(vals)
    return f"{a / best:.2f}" if best else "—"


def fmt_rate(v):
    return f"{v:,.0f}"


def fmt_mib(v):
    return f"{v / 2**20:,.0f} MiB"


def fmt_bytes(v):
    return f"{v:,.0f} B"


def fmt_f2(v):
    return f"{v:.2f}"


def fmt_ms(v):
    return f"{v:.1f} ms"


def per_sample(r, key):
    return r[key] / r["samples"] if r and key in r else None


def main_table(cols, a):
    """cols: [(header, result or None)], augurd first."""
    names = [h for h, _ in cols]
    print("| figure | " + " | ".join(names) + " | augurd / best peer |")
    print("|---" * (len(cols) + 2) + "|")

    def row(label, get, fmt, higher_better=False, cells=None):
        vals = [get(r) if r else None for _, r in cols]
        shown = cells or [fmt(v) if v is not None else "—" for v in vals]
        print(f"| {label} | " + " | ".join(shown) + f" | {ratio(vals[0], vals[1:], higher_better)} |")

    row("ingest, samples/s (load generator)", lambda r: r["samples_per_second"], fmt_rate, True)
    row("remote-write request p99 (load generator)", lambda r: r["p99_ms"], fmt_ms)
    row("CPU seconds per million samples", lambda r: r["cpu_s_per_million"], fmt_f2)
    row("peak RSS (VmHWM)", lambda r: r["rss"], fmt_mib)
    row("peak RSS per active series", lambda r: r["rss_per_series"], fmt_bytes)
    row("disk bytes/sample, data dir after clean shutdown [1]",
        lambda r: per_sample(r, "disk_dir"), fmt_f2)
    row("disk bytes/sample, compacted [2]",
        lambda r: per_sample(r, "disk_pages") if "disk_pages" in r else per_sample(r, "disk_merged"),
        fmt_f2)


def print_rounds(cols):
    """Every round's main figures, so the spread behind the medians is visible."""
    for head, r in cols:
        rs = r.get("rounds", [r]) if r else []
        if len(rs) < 2:
            continue
        print(f"Rounds, {head}: samples/s " + ", ".join(fmt_rate(x["samples_per_second"]) for x in rs)
              + "; CPU s/M " + ", ".join(fmt_f2(x["cpu_s_per_million"]) for x in rs)
              + "; peak RSS " + ", ".join(fmt_mib(x["rss"]) for x in rs) + ".")


def scale_table(runs):
    """runs: [(header, augurd result)]."""
    print("| augurd | " + " | ".join(h for h, _ in runs) + " |")
    print("|---" * (len(runs) + 1) + "|")
    rows = [("ingest, samples/s", lambda r: fmt_rate(r["samples_per_second"])),
            ("CPU seconds per million samples", lambda r: fmt_f2(r["cpu_s_per_million"])),
            ("remote-write request p99", lambda r: fmt_ms(r["p99_ms"])),
            ("peak RSS", lambda r: fmt_mib(r["rss"])),
            ("peak RSS per active series", lambda r: fmt_bytes(r["rss_per_series"])),
            ("disk bytes/sample, whole data dir", lambda r: fmt_f2(per_sample(r, "disk_dir"))),
            ("disk bytes/sample, LMDB pages in use", lambda r: fmt_f2(per_sample(r, "disk_pages")))]
    for label, f in rows:
        print(f"| {label} | " + " | ".join(f(r) for _, r in runs) + " |")


def k(n):
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else \
        f"{n // 1000}k" if n % 1000 == 0 else str(n)


def span(samples):
    s = samples * INTERVAL_MS // 1000
    return f"{s // 3600} h" if s % 3600 == 0 else f"{s // 60} min"


args_global = None


def main():
    global args_global
    env = os.environ.get
    ap = argparse.ArgumentParser()
    ap.add_argument("--augurd", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--series", type=int, default=int(env("BENCH_SERIES", "100000")))
    ap.add_argument("--samples", type=int, default=int(env("BENCH_SAMPLES", "120")))
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--prometheus", default=env("BENCH_PROMETHEUS", "/usr/bin/prometheus"))
    ap.add_argument("--victoria-metrics", default=env("BENCH_VICTORIA_METRICS",
                                                      "/usr/bin/victoria-metrics"))
    ap.add_argument("--merge-timeout", type=float, default=300)
    ap.add_argument("--rounds", type=int, default=int(env("BENCH_ROUNDS", "3")),
                    help="alternating rounds of augurd and VictoriaMetrics (medians reported)")
    ap.add_argument("--no-scale", action="store_true", default=env("BENCH_SCALE", "1") == "0",
                    help="skip the second table (augurd as the work grows)")
    ap.add_argument("--million", action="store_true", default=env("BENCH_SCALE_1M", "") == "1",
                    help="add 1M series x 120 samples to the second table (slow)")
    ap.add_argument("--scale-series", type=int, default=10000)
    ap.add_argument("--history-samples", type=int, default=5760, help="24 h at 15 s")
    a = ap.parse_args()
    args_global = a
    t_start = time.time()
    # a private copy of augurd, so that a rebuild of build/augurd during the run changes nothing
    snap = tempfile.mkdtemp(prefix="augur-bench-bin-")
    try:
        shutil.copy2(a.augurd, os.path.join(snap, "augurd"))
        a.augurd = os.path.join(snap, "augurd")
        run_all(a, t_start)
    finally:
        shutil.rmtree(snap, ignore_errors=True)


def run_all(a, t_start):

    # --- the three servers, one at a time, the same load. augurd and VictoriaMetrics (the faster
    # peer, which every ratio is taken against) alternate for --rounds rounds and each figure is
    # the median of its rounds: single runs on this shared 2-core machine move by +-20 %.
    # Prometheus, 3-4 x slower on every figure, runs once.
    results, notes = {}, []
    peers = [("Prometheus", PrometheusServer, a.prometheus, version(
                  [a.prometheus, "--version"], "prometheus")),
             ("VictoriaMetrics", VictoriaMetricsServer, a.victoria_metrics, version(
                  [a.victoria_metrics, "-version"], "victoria-metrics"))]
    runs = {"augurd": []}
    for name, _, binary, _ in peers:
        if not binary or not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            notes.append(f"{name}: not run ({binary or 'skipped'} is not an executable)")
        else:
            runs[name] = []
    for rnd in range(max(1, a.rounds)):
        runs["augurd"].append(measure(a, AugurdServer, a.augurd, a.series, a.samples))
        for name, cls, binary, ver in peers:
            if name not in runs or (name == "Prometheus" and rnd > 0):
                continue
            try:
                runs[name].append(measure(a, cls, binary, a.series, a.samples))
            except Exception as e:
                notes.append(f"{name}: FAILED in round {rnd + 1}: {str(e)[:400]}")
                traceback.print_exc(file=sys.stderr)
    results["augurd"] = median_result(runs["augurd"])
    cols = [("augurd", results["augurd"])]
    for name, _, _, ver in peers:
        if runs.get(name):
            cols.append((f"{name} {ver}".strip(), median_result(runs[name])))

    # --- the zero-config detector's cost: the same load with it off
    nodet = None
    try:
        nodet = measure(a, AugurdNoDetectionServer, a.augurd, a.series, a.samples)
    except Exception as e:
        notes.append(f"augurd without detection: FAILED: {str(e)[:400]}")

    # --- augurd as the work grows
    scale = []
    if not a.no_scale:
        main_key = (a.series, a.samples)
        plan = [(a.scale_series, a.samples), (100000, a.samples)]
        if a.million:
            plan.append((1000000, a.samples))
        plan += [(a.scale_series, 240), (a.scale_series, a.history_samples)]
        done = {main_key: results["augurd"]}
        for series, samples in plan:
            if (series, samples) not in done:
                done[(series, samples)] = measure(a, AugurdServer, a.augurd, series, samples)
            scale.append((f"{k(series)} x {samples:,} ({span(samples)})",
                          done[(series, samples)]))
    elapsed = time.time() - t_start

    # --- report
    print()
    print(f"{time.strftime('%Y-%m-%d')}, {a.series:,} series x {a.samples} samples at 15 s "
          f"({span(a.samples)}, ending now) = {results['augurd']['samples']:,} samples into each "
          f"server, {a.batch} samples/request, {a.conns} connections, one server at a time on a "
          f"fresh dir, load generator on the same {os.cpu_count()}-core machine; augurd and "
          f"VictoriaMetrics: median of {max(1, a.rounds)} alternating rounds, Prometheus: one run")
    print()
    main_table(cols, a)
    print()
    print_rounds(cols)
    print()
    if nodet:
        on, off = results["augurd"], nodet
        print(f"[0] zero-config anomaly detection (detection.auto, on above): with it off the same "
              f"load ran at {fmt_rate(off['samples_per_second'])} samples/s, "
              f"{off['cpu_s_per_million']:.2f} CPU s per million samples (on: "
              f"{fmt_rate(on['samples_per_second'])}, {on['cpu_s_per_million']:.2f}), so detection "
              f"adds {(on['cpu_s_per_million'] - off['cpu_s_per_million']) * 1000:.0f} ns of CPU "
              f"per sample; peak RSS {fmt_mib(off['rss'])} off, {fmt_mib(on['rss'])} on.")
        print()
    print("[1] augurd: data dir after SIGTERM (it checkpoints, then rewrites the file compacted, "
          "with cold groups and postings). Prometheus: data dir after SIGTERM, i.e. WAL + head chunks (no 2 h block is cut from this little data). VictoriaMetrics: "
          "after /internal/force_flush and SIGTERM (1.79 keeps flushed parts in memory until merged "
          "or stopped), without its cache/ dir. `du -sb`-style bytes, lock files left out, "
          "divided by the samples sent.")
    vm = next((r for h, r in cols if h.startswith("VictoriaMetrics")), None)
    line = ("[2] augurd: data.mdb pages in use (mdb_stat), after the same shutdown. "
            "VictoriaMetrics: restarted on the same dir, after /internal/force_merge for the "
            "data's month and the merges finished, then SIGTERM. Prometheus: no block to compact.")
    if vm:
        extra = []
        if "disk_flush_live" in vm:
            extra.append(f"VictoriaMetrics' dir right after force_flush (still running): "
                         f"{vm['disk_flush_live'] / vm['samples']:.2f} B/sample")
        if "vm_cache" in vm:
            extra.append(f"its cache/ dir after shutdown: {vm['vm_cache'] / vm['samples']:.2f} "
                         f"B/sample")
        if "merge_s" in vm:
            extra.append(f"force_merge took {vm['merge_s']:.1f} s and left {vm.get('vm_parts')} "
                         f"data part(s) holding {vm.get('vm_rows', 0):,} samples")
        if "merge_error" in vm:
            extra.append(f"force_merge FAILED: {vm['merge_error']}")
        if extra:
            line += " (" + "; ".join(extra) + ".)"
    print(line)
    for n in notes:
        print(f"NOTE: {n}")
    if scale:
        print()
        print(f"augurd as the work grows ({a.batch} samples/request, {a.conns} connections, "
              f"timestamps ending now; Prometheus would need one time-ordered connection for 24 h "
              f"of history, so it is not in this table):")
        print()
        scale_table(scale)
    print()
    print(f"total bench time {elapsed:.0f} s")


if __name__ == "__main__":
    main()
