"""benchlib.py - helpers shared by the benchmark scripts: free loopback ports, readiness, process
CPU/RSS from /proc, data-dir sizes, and the three servers (augurd, Prometheus, VictoriaMetrics) as
run.py starts them: 127.0.0.1 only, a fresh temp dir each, stopped by PID."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_ready(url, timeout=60):
    """Waits until GET url answers 200 (e.g. http://127.0.0.1:P/-/ready)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError("not ready: " + url)


# ------------------------------------------------------------------------------------------------
# process and disk figures, and the three servers as run.py starts them

LOCK_FILES = {"lock", "lock.mdb", "augur.lock", "flock.lock", "queries.active"}


def proc_stat(pid):
    """(utime + stime seconds, VmHWM bytes) of a live process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return cpu, hwm


def dir_bytes(path, skip_dirs=()):
    """`du -sb`-style: apparent bytes of the regular files under path, without lock files
    (LOCK_FILES, e.g. LMDB's lock.mdb, Prometheus' lock and queries.active, VictoriaMetrics'
    flock.lock) and without the top-level subdirectories named in skip_dirs."""
    total = 0
    for root, dirs, files in os.walk(path):
        if root == path:
            dirs[:] = [d for d in dirs if d not in skip_dirs]
        for name in files:
            if name in LOCK_FILES:
                continue
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += st.st_size
    return total


def mdb_pages(path):
    """Pages in use per named LMDB table and the page size, from `mdb_stat -a`."""
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


def http_get(port, path, timeout=30):
    """(status, body bytes) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class BenchServer:
    """One server process on 127.0.0.1:<free port> with a fresh temp dir (removed by cleanup()),
    stopped by PID. restart() starts it again on the same data dir."""

    name = "server"
    ready_path = "/-/ready"

    def __init__(self, binary):
        self.binary = os.path.abspath(binary) if os.sep in binary else binary
        self.dir = tempfile.mkdtemp(prefix=f"augur-bench-{self.name.split()[0].lower()}-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.proc = None
        self.log = None

    def command(self):
        raise NotImplementedError

    def start(self, timeout=90):
        self.log = open(os.path.join(self.dir, "server.log"), "a")
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            try:
                if http_get(self.port, self.ready_path, timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready: {self.log_tail()}")

    def log_tail(self, n=600):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return f.read()[-n:].strip()
        except OSError:
            return ""

    def stop(self, timeout=180):
        """SIGTERM (a clean shutdown), SIGKILL after timeout; True if it exited cleanly."""
        clean = True
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                clean = False
        if self.log:
            self.log.close()
            self.log = None
        return clean and (self.proc is None or self.proc.returncode == 0)

    def cleanup(self):
        self.stop(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


class AugurdServer(BenchServer):
    name = "augurd"

    def command(self):
        return [self.binary, f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.path={self.data}", "--log.level=warn"]


class AugurdNoDetectionServer(AugurdServer):
    """augurd with the zero-config detector off: the cost of detection is the difference."""
    name = "augurd (detection.auto=false)"

    def command(self):
        return super().command() + ["--detection.auto=false"]


class PrometheusServer(BenchServer):
    name = "Prometheus"

    def command(self):
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        return [self.binary, f"--config.file={cfg}", f"--storage.tsdb.path={self.data}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-remote-write-receiver",
                "--log.level=warn"]


class VictoriaMetricsServer(BenchServer):
    name = "VictoriaMetrics"
    ready_path = "/health"

    def command(self):
        return [self.binary, f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.data}", "-loggerLevel=WARN"]

    def metrics(self):
        """{name{labels}: value} from /metrics."""
        st, body = http_get(self.port, "/metrics")
        out = {}
        for line in body.decode(errors="replace").splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out

    def wait_idle(self, timeout=300):
        """Waits until no merge (forced or background) is running and no row is pending;
        returns the seconds waited, or raises TimeoutError."""
        t0 = time.time()
        quiet = 0
        while time.time() - t0 < timeout:
            m = self.metrics()
            busy = sum(v for k, v in m.items()
                       if k.startswith(("vm_active_merges", "vm_active_force_merges",
                                        'vm_pending_rows{type="storage"}')))
            quiet = quiet + 1 if busy == 0 else 0
            if quiet >= 3:  # three polls in a row, 0.2 s apart
                return time.time() - t0
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} still merging after {timeout} s")
