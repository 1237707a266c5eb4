#!/usr/bin/env python3
"""run.py - `make bench`: remote-write ingest speed and on-disk size of augurd on this machine.

Starts augurd on a fresh data directory (127.0.0.1, a free port), sends a node_exporter-shaped
load with tests/bench/loadgen, then reports samples/s, request latency, CPU seconds per million
samples, peak RSS and bytes per sample on disk (LMDB pages of the chunk table, and of everything,
after a clean shutdown's checkpoint). Peers (Prometheus, VictoriaMetrics) join this table with
issue 4.
"""
import argparse, os, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from benchlib import free_port, wait_ready


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tck
    hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return cpu, hwm


def mdb_pages(path):
    """Pages used per named table, from mdb_stat -a."""
    out = subprocess.run(["mdb_stat", "-a", path], capture_output=True, text=True).stdout
    tables, cur, psize = {}, None, 4096
    for line in out.splitlines():
        m = re.match(r"\s*Page size: (\d+)", line)
        if m:
            psize = int(m.group(1))
        m = re.match(r"Status of (\S+)", line)
        if m:
            cur = m.group(1)
        m = re.match(r"\s*(Branch|Leaf|Overflow) pages: (\d+)", line)
        if m and cur:
            tables[cur] = tables.get(cur, 0) + int(m.group(2))
    return tables, psize


def run(args, series, samples):
    d = tempfile.mkdtemp(prefix="augur-bench-")
    port = free_port()
    log = open(os.path.join(d, "augurd.log"), "w")
    p = subprocess.Popen([args.augurd, f"--web.listen-address=127.0.0.1:{port}",
                          f"--storage.path={d}/data", "--log.level=warn"], stderr=log)
    try:
        wait_ready("http://127.0.0.1:%d/-/ready" % port)
        cpu0, _ = proc_stat(p.pid)
        lg = subprocess.run([args.loadgen, "--port", str(port), "--series", str(series),
                             "--samples", str(samples), "--batch", "2000", "--conns", "4"],
                            capture_output=True, text=True)
        print(lg.stdout.strip())
        if lg.returncode != 0:
            print(lg.stderr, file=sys.stderr)
            raise RuntimeError("load generator reported failures")
        cpu1, hwm = proc_stat(p.pid)
        m = dict(kv.split("=") for kv in lg.stdout.split())
        n = int(m["samples"])
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=120)
        tables, psize = mdb_pages(f"{d}/data")
        total = sum(tables.values()) * psize
        chunks = tables.get("chunks", 0) * psize
        return {
            "series": series, "samples": n, "samples_per_second": float(m["samples_per_second"]),
            "p99_ms": float(m["p99_ms"]), "cpu_s_per_million": (cpu1 - cpu0) / n * 1e6,
            "peak_rss_mib": hwm / 2**20, "chunk_bytes_per_sample": chunks / n,
            "total_bytes_per_sample": total / n,
        }
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--augurd", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--series", type=int, default=int(os.environ.get("BENCH_SERIES", "100000")))
    ap.add_argument("--samples", type=int, default=int(os.environ.get("BENCH_SAMPLES", "120")))
    a = ap.parse_args()
    r = run(a, a.series, a.samples)
    print(f"\n{time.strftime('%Y-%m-%d')}  augurd, {r['series']} series x {a.samples} samples at 15 s, "
          f"2000 samples/request, 4 connections, load generator on the same 2-core machine")
    print("| figure | augurd |\n|---|---|")
    print(f"| ingest, samples/s | {r['samples_per_second']:,.0f} |")
    print(f"| CPU seconds per million samples | {r['cpu_s_per_million']:.2f} |")
    print(f"| remote-write request p99 | {r['p99_ms']:.1f} ms |")
    print(f"| peak RSS | {r['peak_rss_mib']:.0f} MiB |")
    print(f"| disk bytes/sample, chunk table | {r['chunk_bytes_per_sample']:.2f} |")
    print(f"| disk bytes/sample, whole LMDB file in use | {r['total_bytes_per_sample']:.2f} |")


if __name__ == "__main__":
    main()
