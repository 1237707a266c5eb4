#!/usr/bin/env python3
"""throughput.py - `make bench`, third part: how many simple instant queries per second a server
answers over 1,000 concurrent keep-alive connections, the way a wall of dashboards loads it.

augurd and Prometheus 2.42 each get the same 1,000 node-shaped series (tests/bench/loadgen), then
wrk (Debian's package) sends `node_metric_1_total` instant queries over 1,000 connections from 2
threads for 10 s. Prints requests/s and latency percentiles per server. Everything listens on
127.0.0.1 and is stopped by PID.
"""
import argparse, os, re, shutil, signal, socket, subprocess, tempfile, time, urllib.request
from benchlib import free_port, wait_ready


def wrk(url, seconds):
    out = subprocess.run(["wrk", "-t2", "-c1000", "-d%ds" % seconds, "--latency", url],
                         capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, lat, int(errors.group(1)) if errors else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--augurd", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    if not shutil.which("wrk"):
        print("throughput: wrk is not installed (make deps installs it); skipped")
        return
    start_ms = (int(time.time()) - 40 * 15) * 1000
    rows = []
    for name in ("augurd", "prometheus"):
        d = tempfile.mkdtemp(prefix="augur-tput-")
        port = free_port()
        log = open(os.path.join(d, "log"), "w")
        if name == "augurd":
            cmd = [a.augurd, "--web.listen-address=127.0.0.1:%d" % port, "--storage.path=" + d + "/data",
                   "--log.level=warn"]
        else:
            with open(d + "/prometheus.yml", "w") as f:
                f.write("global:\n  scrape_interval: 1h\n")
            cmd = [a.prometheus, "--config.file=" + d + "/prometheus.yml", "--storage.tsdb.path=" + d + "/tsdb",
                   "--web.listen-address=127.0.0.1:%d" % port, "--web.enable-remote-write-receiver"]
        p = subprocess.Popen(cmd, stdout=log, stderr=log)
        try:
            wait_ready("http://127.0.0.1:%d/-/ready" % port)
            subprocess.run([a.loadgen, "--port", str(port), "--series", "1000", "--samples", "40",
                            "--conns", "2", "--start-ms", str(start_ms)], check=True, capture_output=True)
            url = "http://127.0.0.1:%d/api/v1/query?query=node_metric_1_total&time=%d" % (
                port, start_ms // 1000 + 39 * 15)
            rps, lat, errs = wrk(url, a.seconds)
            rows.append((name, rps, lat, errs))
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()
            shutil.rmtree(d, ignore_errors=True)
    print("\n%s  instant-query throughput: `node_metric_1_total` (11 series) over 1,000 keep-alive "
          "connections, wrk -t2 -c1000 -d%ds on the same 2-core machine" % (time.strftime("%Y-%m-%d"), a.seconds))
    print("| server | queries/s | p50 | p90 | p99 | non-2xx |\n|---|---|---|---|---|---|")
    for name, rps, lat, errs in rows:
        print("| %s | %s | %s | %s | %s | %d |" % (name, f"{rps:,.0f}", lat.get("50"), lat.get("90"),
                                                 lat.get("99"), errs))


if __name__ == "__main__":
    main()
