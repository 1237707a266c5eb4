"""harness.py - helpers for augurd's integration tests (Python standard library only).

What is here:
  * free_port(), wait_until()
  * Daemon: starts an augurd binary on 127.0.0.1:<free port> with a temp (or given) data dir,
    waits for /-/ready, stops it by PID (SIGTERM, then SIGKILL after a timeout), kill -9,
    restart on the same dir, captures stderr to a log file and checks it for sanitizer reports.
  * HTTP helpers on urllib (never raise on 4xx/5xx) and a keep-alive Conn on http.client.
  * A protobuf encoder for the Remote-Write 1.0 WriteRequest (plus metadata and native
    histograms, so the daemon's rejection of them can be tested).
  * A snappy block-format compressor (literals and copies) and decompressor.
  * Float helpers: Bits (a float given by its raw IEEE-754 bits, e.g. the stale marker),
    go_float() (Prometheus' value formatting), ts_str_to_ms().
  * A tiny parser for the Prometheus text exposition format.
  * A Python model of instant/range selector semantics to compute expected answers.

Everything binds to 127.0.0.1 and lives in temp dirs; every process is stopped by its PID.
"""
import decimal
import gzip
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

# --------------------------------------------------------------------------------------------
# small utilities


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a truthy value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - polling helper
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (
                timeout, what, (" (last error: %r)" % last_exc) if last_exc else ""))
        time.sleep(interval)


def now_ms():
    return int(time.time() * 1000)


def eq(got, want, what):
    """Fails with both values when got != want."""
    if got != want:
        raise AssertionError("%s:\n  want %r\n  got  %r" % (what, want, got))


def query(d, q, t=None):
    """An instant query through the daemon's API (t in ms, or now); the result list."""
    params = {"query": q}
    if t is not None:
        params["time"] = "%.3f" % (t / 1000.0)
    st, j, r = d.api("/api/v1/query", params)
    if st != 200:
        raise AssertionError("query %s: %r" % (q, r))
    return j["data"]["result"]


def tail(path, nlines=60):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "<cannot read %s: %s>" % (path, e)
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-nlines:])


def sanitizer_findings(text):
    """Lines of `text` that report an ASan/LSan/UBSan error."""
    out = []
    for line in text.splitlines():
        if any(p in line for p in SANITIZER_PATTERNS):
            out.append(line)
    return out


def stop_pid(proc, timeout=20.0, sig=signal.SIGTERM):
    """Stops a subprocess.Popen by its PID: `sig`, wait up to `timeout`, then SIGKILL.
    Returns (returncode, killed_hard)."""
    if proc.poll() is not None:
        return proc.returncode, False
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=timeout), False
    except subprocess.TimeoutExpired:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return proc.wait(timeout=30), True


# --------------------------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # email.message.Message-like: case-insensitive .get()
        self.body = body        # bytes, as received (gzip not undone)

    def header(self, name, default=None):
        return self.headers.get(name, default)

    @property
    def text(self):
        return self.decoded().decode("utf-8", "replace")

    def decoded(self):
        if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
            return gzip.decompress(self.body)
        return self.body

    def json(self, exact=False):
        """Parsed JSON body. exact=True parses numbers as decimal.Decimal (timestamps exact)."""
        if exact:
            return json.loads(self.decoded(), parse_float=decimal.Decimal, parse_int=decimal.Decimal)
        return json.loads(self.decoded())

    def __repr__(self):
        b = self.decoded()
        return "<HTTP %s %s%s>" % (self.status, b[:300], "..." if len(b) > 300 else "")


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ConnectionFailed(AssertionError):
    """No HTTP answer at all (refused, reset, timed out): the server is down or crashed."""


def http_request(method, url, body=None, headers=None, timeout=30):
    """One HTTP request with urllib; returns Response and never raises on 4xx/5xx. Raises
    ConnectionFailed (an AssertionError with a one-line message) when there is no answer."""
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return Response(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        try:
            data = e.read()
        except Exception:  # noqa: BLE001
            data = b""
        return Response(e.code, e.headers, data)
    except (OSError, http.client.HTTPException) as e:  # URLError is an OSError
        reason = getattr(e, "reason", None) or e
        raise ConnectionFailed("%s %s: no HTTP answer (%s: %s) - did the server crash?" % (
            method, url[:300], type(reason).__name__, reason)) from None


def encode_params(params):
    """params: dict or list of (key, value) pairs (repeat keys for match[])."""
    if params is None:
        return ""
    if isinstance(params, dict):
        params = list(params.items())
    return urllib.parse.urlencode(params)


def http_get(url, params=None, headers=None, timeout=30):
    q = encode_params(params)
    if q:
        url = url + ("&" if "?" in url else "?") + q
    return http_request("GET", url, None, headers, timeout)


def http_post_form(url, params=None, headers=None, timeout=30):
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    h.update(headers or {})
    return http_request("POST", url, encode_params(params).encode(), h, timeout)


def http_post(url, body, headers=None, timeout=30):
    return http_request("POST", url, body, headers, timeout)


REMOTE_WRITE_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
    "User-Agent": "augur-integration-tests/1.0",
}


class Conn:
    """A keep-alive connection (http.client) for remote-write loops; reconnects on demand."""

    def __init__(self, host, port, timeout=30):
        self.host, self.port, self.timeout = host, port, timeout
        self.c = None

    def request(self, method, path, body=None, headers=None):
        if self.c is None:
            self.c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.c.request(method, path, body=body, headers=dict(headers or {}))
            r = self.c.getresponse()
            data = r.read()
            return Response(r.status, r.headers, data)
        except Exception:
            self.close()
            raise

    def close(self):
        if self.c is not None:
            try:
                self.c.close()
            except Exception:  # noqa: BLE001
                pass
            self.c = None


# --------------------------------------------------------------------------------------------
# Daemon


class DaemonError(AssertionError):
    pass


class Daemon:
    """An augurd process.

        with Daemon(binary) as d:            # fresh temp data dir, removed afterwards
            d.write(...); d.get("/api/v1/query", {...})
            d.kill9(); d.start()             # same data dir
        # leaving the block stops it (SIGTERM) and checks its log for sanitizer reports

    The log (stderr+stdout) accumulates across restarts in <workdir>/augurd.log.
    """

    def __init__(self, binary, data_dir=None, args=(), config_file=None, log_level="debug",
                 env=None, workdir=None, ready_timeout=None, keep=False, start=True):
        self.binary = os.path.abspath(binary)
        self.own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="augur-it-")
        self.data_dir = data_dir or os.path.join(self.workdir, "data")
        self.args = list(args)
        self.config_file = config_file
        self.log_level = log_level
        self.extra_env = dict(env or {})
        self.log_path = os.path.join(self.workdir, "augurd.log")
        self.asan = "/asan/" in self.binary or os.environ.get("AUGUR_ASAN") == "1"
        self.ready_timeout = ready_timeout or (60 if self.asan else 30)
        self.keep = keep
        self.proc = None
        self.reaped = True
        self.port = None
        self.returncodes = []
        self.run_log_offset = 0
        if start:
            try:
                self.start()
            except BaseException:
                if self.own_workdir and not self.keep:
                    shutil.rmtree(self.workdir, ignore_errors=True)
                raise

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def env(self):
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        e["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        e.update(self.extra_env)
        return e

    def command(self):
        cmd = [self.binary, "--web.listen-address=127.0.0.1:%d" % self.port,
               "--storage.path=%s" % self.data_dir]
        if self.log_level:
            cmd.append("--log.level=%s" % self.log_level)
        if self.config_file:
            cmd.append("--config.file=%s" % self.config_file)
        # Tests write fixed historic timestamps (1970, 2023) next to current ones; the default
        # 15-day retention would refuse the older ones. Tests of retention pass their own value.
        if not any(a.startswith("--storage.retention") for a in self.args) and not self.config_file:
            cmd.append("--storage.retention=0")
        return cmd + self.args

    def start(self, port=None, wait_ready=True):
        """Starts (or restarts) the daemon on the same data dir; keeps the previous port unless
        it is taken, then picks another."""
        if self.proc is not None and not self.reaped:
            if self.proc.poll() is None:
                raise DaemonError("augurd already running (pid %d)" % self.proc.pid)
            self.returncodes.append(self.proc.returncode)
        attempts = 0
        while True:
            attempts += 1
            self.port = port or self.port or free_port()
            with open(self.log_path, "ab") as lf:
                self.run_log_offset = lf.tell()
                lf.write(("---- start %s\n" % " ".join(self.command())).encode())
                lf.flush()
                self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=lf,
                                             stderr=lf, env=self.env(), cwd=self.workdir,
                                             close_fds=True)
                self.reaped = False
            if not wait_ready:
                return self
            try:
                self.wait_ready()
                return self
            except DaemonError:
                exited = self.proc.poll() is not None
                log = self.run_log()
                if exited and attempts < 4 and port is None and (
                        "cannot listen" in log or "Address already in use" in log):
                    self.returncodes.append(self.proc.returncode)
                    self.reaped = True
                    self.port = None  # the port was taken in the meantime: pick another
                    continue
                self.stop_quietly()
                raise

    def wait_ready(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.ready_timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DaemonError("augurd exited with %s before it was ready; log:\n%s" % (
                    self.proc.returncode, tail(self.log_path)))
            try:
                r = http_get(self.base + "/-/ready", timeout=2)
                if r.status == 200:
                    return
            except ConnectionFailed:
                pass
            time.sleep(0.03)
        raise DaemonError("augurd not ready after %ss; log:\n%s" % (
            timeout or self.ready_timeout, tail(self.log_path)))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30, check=True):
        """SIGTERM by PID, wait, SIGKILL after `timeout`. With check=True a non-zero exit, a hard
        kill, an earlier unexpected exit or a sanitizer report in the log raises DaemonError.
        Returns the exit code."""
        if self.proc is None or self.reaped:
            return self.proc.returncode if self.proc else None
        died_before = self.proc.poll() is not None
        rc, hard = stop_pid(self.proc, timeout=timeout)
        self.reaped = True
        self.returncodes.append(rc)
        if check:
            self.check_sanitizers()
            if died_before:
                raise DaemonError("augurd had exited on its own with %s; log:\n%s" % (
                    rc, tail(self.log_path)))
            if hard:
                raise DaemonError("augurd did not stop within %ss of SIGTERM (SIGKILLed); log:\n%s"
                                  % (timeout, tail(self.log_path)))
            if rc != 0:
                raise DaemonError("augurd exited with %s after SIGTERM; log:\n%s" % (
                    rc, tail(self.log_path)))
        return rc

    def stop_quietly(self):
        if self.proc is not None and not self.reaped:
            try:
                stop_pid(self.proc, timeout=20)
            except Exception:  # noqa: BLE001
                pass
            self.reaped = True

    def kill9(self):
        """kill -9 by PID; waits for the process to be gone."""
        if self.proc is None or self.reaped:
            return
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.reaped = True
        self.returncodes.append(self.proc.returncode)

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def restart(self, kill=False):
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def run_log(self):
        """The log of the current (or last) run only."""
        return self.log()[self.run_log_offset:] if self.run_log_offset else self.log()

    def check_sanitizers(self):
        text = self.log()
        found = sanitizer_findings(text)
        if found:
            raise DaemonError("sanitizer reported errors:\n  %s\nlog tail:\n%s" % (
                "\n  ".join(found[:10]), tail(self.log_path, 120)))

    def close(self, check=True):
        """Stops the daemon (checked) and removes the workdir (unless keep)."""
        try:
            if not self.reaped:
                self.stop(check=check)
            elif check:
                self.check_sanitizers()
        finally:
            self.stop_quietly()
            if self.own_workdir and not self.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        self.close(check=et is None)
        return False

    # -- HTTP shortcuts ----------------------------------------------------------------------

    def url(self, path):
        return self.base + path

    def get(self, path, params=None, headers=None, timeout=30):
        return http_get(self.url(path), params, headers, timeout)

    def post_form(self, path, params=None, headers=None, timeout=30):
        return http_post_form(self.url(path), params, headers, timeout)

    def post(self, path, body, headers=None, timeout=30):
        return http_post(self.url(path), body, headers, timeout)

    def write_raw(self, body, headers=None, timeout=30):
        h = dict(REMOTE_WRITE_HEADERS)
        if headers:
            h.update(headers)
        h = {k: v for k, v in h.items() if v is not None}
        return http_post(self.url("/api/v1/write"), body, h, timeout)

    def write(self, series, metadata=(), compress_copies=True, headers=None):
        """series: list of (labels, samples) - see encode_write_request."""
        return self.write_raw(snappy_compress(encode_write_request(series, metadata),
                                              copies=compress_copies), headers)

    def api(self, path, params=None, method="GET"):
        """GET (or POST form) an API endpoint; returns (status, parsed JSON or None, Response)."""
        r = self.get(path, params) if method == "GET" else self.post_form(path, params)
        try:
            j = r.json(exact=True)
        except ValueError:
            j = None
        return r.status, j, r

    def metrics(self):
        r = self.get("/metrics")
        if r.status != 200:
            raise AssertionError("/metrics answered %r" % r)
        return parse_exposition(r.text)


# --------------------------------------------------------------------------------------------
# protobuf encoding (proto3 wire format)


class Bits:
    """A float64 given by its raw IEEE-754 bits, encoded bit-exactly (no float round trip)."""

    def __init__(self, bits):
        self.bits = bits & 0xFFFFFFFFFFFFFFFF

    @property
    def value(self):
        return struct.unpack("<d", struct.pack("<Q", self.bits))[0]

    def __repr__(self):
        return "Bits(0x%016x)" % self.bits

    def __eq__(self, o):
        return isinstance(o, Bits) and o.bits == self.bits

    def __hash__(self):
        return hash(self.bits)


STALE_BITS = 0x7FF0000000000002
NORMAL_NAN_BITS = 0x7FF8000000000001
STALE = Bits(STALE_BITS)
PROM_NAN = Bits(NORMAL_NAN_BITS)


def float_bits(v):
    if isinstance(v, Bits):
        return v.bits
    return struct.unpack("<Q", struct.pack("<d", float(v)))[0]


def is_stale(v):
    return float_bits(v) == STALE_BITS


def as_float(v):
    return v.value if isinstance(v, Bits) else float(v)


def varint(n):
    """Unsigned varint; negative int64 values are encoded as their two's complement (10 bytes)."""
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n, bits=64):
    return (n << 1) ^ (n >> (bits - 1))


def _key(field, wt):
    return varint((field << 3) | wt)


def pb_varint(field, n):
    return _key(field, 0) + varint(n)


def pb_bytes(field, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return _key(field, 2) + varint(len(data)) + data


def pb_double(field, v):
    return _key(field, 1) + struct.pack("<Q", float_bits(v))


def encode_label(name, value):
    return pb_bytes(1, name) + pb_bytes(2, value)


def encode_sample(value, ts):
    # proto3 would omit zero defaults; always emitting them is valid too (and exercises it).
    return pb_double(1, value) + pb_varint(2, ts)


def encode_histogram(h):
    """h: dict with optional count_int, sum, schema, zero_threshold, zero_count_int, timestamp,
    positive_spans [(offset, length)], positive_deltas [int]."""
    out = b""
    if "count_int" in h:
        out += pb_varint(1, h["count_int"])
    if "sum" in h:
        out += pb_double(3, h["sum"])
    if "schema" in h:
        out += pb_varint(4, zigzag(h["schema"], 32))
    if "zero_threshold" in h:
        out += pb_double(5, h["zero_threshold"])
    if "zero_count_int" in h:
        out += pb_varint(6, h["zero_count_int"])
    for off, ln in h.get("positive_spans", ()):
        out += pb_bytes(11, pb_varint(1, zigzag(off, 32)) + pb_varint(2, ln))
    if h.get("positive_deltas"):
        packed = b"".join(varint(zigzag(d)) for d in h["positive_deltas"])
        out += pb_bytes(12, packed)
    out += pb_varint(15, h.get("timestamp", 0))
    return out


def encode_timeseries(labels, samples=(), histograms=(), exemplars=()):
    """labels: list of (name, value) pairs sent in the given order (str or bytes), or a dict
    (sent sorted by name). samples: list of (ts_ms, value) with value a float or Bits."""
    if isinstance(labels, dict):
        labels = sorted(labels.items())
    out = b""
    for n, v in labels:
        out += pb_bytes(1, encode_label(n, v))
    for ts, v in samples:
        out += pb_bytes(2, encode_sample(v, ts))
    for ex_labels, ex_value, ex_ts in exemplars:
        ex = b"".join(pb_bytes(1, encode_label(n, v)) for n, v in sorted(ex_labels.items()))
        out += pb_bytes(3, ex + pb_double(2, ex_value) + pb_varint(3, ex_ts))
    for h in histograms:
        out += pb_bytes(4, encode_histogram(h))
    return out


METRIC_TYPES = {"unknown": 0, "counter": 1, "gauge": 2, "histogram": 3, "gaugehistogram": 4,
                "summary": 5, "info": 6, "stateset": 7}


def encode_metadata(family, mtype="gauge", help_="", unit=""):
    out = b""
    if METRIC_TYPES[mtype]:
        out += pb_varint(1, METRIC_TYPES[mtype])
    out += pb_bytes(2, family)
    if help_:
        out += pb_bytes(4, help_)
    if unit:
        out += pb_bytes(5, unit)
    return out


def encode_write_request(series, metadata=()):
    """series: list of (labels, samples) or (labels, samples, histograms) tuples, or dicts with
    keys labels/samples/histograms/exemplars. metadata: list of (family, type, help, unit)."""
    out = b""
    for s in series:
        if isinstance(s, dict):
            ts = encode_timeseries(s["labels"], s.get("samples", ()), s.get("histograms", ()),
                                   s.get("exemplars", ()))
        elif len(s) == 3:
            ts = encode_timeseries(s[0], s[1], s[2])
        else:
            ts = encode_timeseries(s[0], s[1])
        out += pb_bytes(1, ts)
    for m in metadata:
        out += pb_bytes(3, encode_metadata(*m))
    return out


# --------------------------------------------------------------------------------------------
# snappy block format


def _snappy_literal(out, data, start, end):
    while start < end:
        n = min(end - start, 1 << 32)  # one element, in whichever length form fits
        ln = n - 1
        if ln < 60:
            out.append(ln << 2)
        elif ln < 1 << 8:
            out.append(60 << 2)
            out.append(ln)
        elif ln < 1 << 16:
            out.append(61 << 2)
            out += struct.pack("<H", ln)
        elif ln < 1 << 24:
            out.append(62 << 2)
            out += struct.pack("<I", ln)[:3]
        else:
            out.append(63 << 2)
            out += struct.pack("<I", ln)
        out += data[start:start + n]
        start += n


def _snappy_copy(out, offset, length):
    while length > 0:
        if 4 <= length <= 11 and offset < 2048:
            out.append(0x01 | ((length - 4) << 2) | ((offset >> 8) << 5))
            out.append(offset & 0xFF)
            return
        n = min(length, 64)
        if offset < 65536:
            out.append(0x02 | ((n - 1) << 2))
            out += struct.pack("<H", offset)
        else:
            out.append(0x03 | ((n - 1) << 2))
            out += struct.pack("<I", offset)
        length -= n


def snappy_compress(data, copies=True, literal_max=None):
    """Snappy block format. copies=False emits literals only (valid, fast, no compression);
    literal_max splits literals into elements of at most that many bytes."""
    data = bytes(data)
    out = bytearray(varint(len(data)))
    n = len(data)
    if not copies:
        if literal_max:
            for i in range(0, n, literal_max):
                _snappy_literal(out, data, i, min(n, i + literal_max))
        else:
            _snappy_literal(out, data, 0, n)
        return bytes(out)
    table = {}
    lit_start = 0
    i = 0
    while i + 4 <= n:
        key = data[i:i + 4]
        cand = table.get(key)
        table[key] = i
        if cand is not None and i - cand < 65536:
            length = 4
            while i + length < n and data[cand + length] == data[i + length]:
                length += 1
            _snappy_literal(out, data, lit_start, i)
            _snappy_copy(out, i - cand, length)
            for k in range(i + 1, min(i + length, n - 3)):
                table[data[k:k + 4]] = k
            i += length
            lit_start = i
        else:
            i += 1
    _snappy_literal(out, data, lit_start, n)
    return bytes(out)


class SnappyError(ValueError):
    pass


def snappy_decompress(buf):
    buf = bytes(buf)
    # preamble
    ulen, shift, i = 0, 0, 0
    while True:
        if i >= len(buf) or shift > 28:
            raise SnappyError("bad length varint")
        b = buf[i]
        i += 1
        ulen |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    out = bytearray()
    while i < len(buf):
        tag = buf[i]
        i += 1
        kind = tag & 3
        if kind == 0:
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                if i + nb > len(buf):
                    raise SnappyError("truncated literal length")
                ln = int.from_bytes(buf[i:i + nb], "little")
                i += nb
            ln += 1
            if i + ln > len(buf):
                raise SnappyError("truncated literal")
            out += buf[i:i + ln]
            i += ln
            continue
        if kind == 1:
            if i + 1 > len(buf):
                raise SnappyError("truncated copy-1")
            ln = ((tag >> 2) & 7) + 4
            off = ((tag >> 5) << 8) | buf[i]
            i += 1
        elif kind == 2:
            if i + 2 > len(buf):
                raise SnappyError("truncated copy-2")
            ln = (tag >> 2) + 1
            off = struct.unpack("<H", buf[i:i + 2])[0]
            i += 2
        else:
            if i + 4 > len(buf):
                raise SnappyError("truncated copy-4")
            ln = (tag >> 2) + 1
            off = struct.unpack("<I", buf[i:i + 4])[0]
            i += 4
        if off == 0 or off > len(out):
            raise SnappyError("bad copy offset %d at output %d" % (off, len(out)))
        for _ in range(ln):
            out.append(out[-off])
        if len(out) > ulen:
            raise SnappyError("output longer than declared")
    if len(out) != ulen:
        raise SnappyError("declared %d bytes, got %d" % (ulen, len(out)))
    return bytes(out)


# --------------------------------------------------------------------------------------------
# values, timestamps and Prometheus formatting


def go_float(v):
    """Prometheus' JSON value string: Go strconv.FormatFloat(v, 'f' or 'e', -1, 64)."""
    v = as_float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "-0" if math.copysign(1.0, v) < 0 else "0"
    sign = "-" if v < 0 else ""
    _, digs, e = decimal.Decimal(repr(abs(v))).as_tuple()  # repr: shortest round trip
    digits = "".join(map(str, digs)).lstrip("0")
    while len(digits) > 1 and digits.endswith("0"):
        digits = digits[:-1]
        e += 1
    exp = len(digits) + e  # value = 0.<digits> * 10**exp
    a = abs(v)
    if a < 1e-6 or a >= 1e21:
        e = exp - 1
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return "%s%se%s%02d" % (sign, mant, "-" if e < 0 else "+", abs(e))
    if exp <= 0:
        return sign + "0." + "0" * (-exp) + digits
    if exp >= len(digits):
        return sign + digits + "0" * (exp - len(digits))
    return sign + digits[:exp] + "." + digits[exp:]


def ms_to_ts_str(ms):
    """A Prometheus API timestamp (seconds) as a decimal string, e.g. 1435781451.781."""
    neg = ms < 0
    a = -ms if neg else ms
    s = str(a // 1000)
    if a % 1000:
        s += ".%03d" % (a % 1000)
        s = s.rstrip("0")
    return ("-" if neg else "") + s


def ts_to_ms(ts):
    """A JSON timestamp (Decimal, float or str) to integer milliseconds."""
    d = decimal.Decimal(str(ts)) if not isinstance(ts, decimal.Decimal) else ts
    ms = d * 1000
    if ms != ms.to_integral_value():
        raise AssertionError("timestamp %s has more than millisecond precision" % ts)
    return int(ms)


def points(values):
    """[[ts, "v"], ...] from the API -> [(ms, "v"), ...]."""
    return [(ts_to_ms(t), v) for t, v in values]


def labels_key(labels):
    """Prometheus' label-set order (byte-wise name, then value), usable as a sort key."""
    return [(k.encode(), v.encode()) for k, v in sorted(labels.items(), key=lambda kv: kv[0].encode())]


def frozen(labels):
    return tuple(sorted(labels.items()))


# --------------------------------------------------------------------------------------------
# a model of the selector semantics
#
# Prometheus 2.x (and augurd, which follows 2.42) use closed windows: an instant selector at t
# looks at [t - lookback, t], a range selector [5m] at [t - 5m, t]. Prometheus 3.0 made both
# left-open; LEFT_OPEN switches the model to that rule.

LOOKBACK_MS = 300000
LEFT_OPEN = False


def _in_window(ts, t, width):
    return (t - width < ts <= t) if LEFT_OPEN else (t - width <= ts <= t)


def model_instant(samples, t, lookback=LOOKBACK_MS):
    """samples: sorted [(ts, value)]; the value an instant selector yields at t, or None."""
    best = None
    for ts, v in samples:
        if _in_window(ts, t, lookback):
            best = v
    if best is None or is_stale(best):
        return None
    return best


def model_range_query(samples, start, end, step, lookback=LOOKBACK_MS, offset=0):
    out = []
    t = start
    while t <= end:
        v = model_instant(samples, t - offset, lookback)
        if v is not None:
            out.append((t, go_float(v)))
        t += step
    return out


def model_matrix(samples, t, rng):
    return [(ts, go_float(v)) for ts, v in samples if _in_window(ts, t, rng) and not is_stale(v)]


# --------------------------------------------------------------------------------------------
# text exposition format


class Exposition:
    def __init__(self):
        self.types = {}     # family -> type
        self.helps = {}
        self.samples = []   # (name, labels dict, value float, line)
        self.errors = []

    def get(self, name, **labels):
        """The value of the sample name{labels} (exact label set), or None."""
        for n, l, v, _ in self.samples:
            if n == name and l == labels:
                return v
        return None

    def find(self, name):
        return [(l, v) for n, l, v, _ in self.samples if n == name]

    def value(self, name, default=0.0, **labels):
        v = self.get(name, **labels)
        return default if v is None else v


_LINE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", ""),
            "gaugehistogram": ("_bucket", "_gsum", "_gcount")}


def _parse_value(s):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    return float(s)


def _unescape(s):
    return s.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def parse_exposition(text):
    """Parses the text format 0.0.4; collects format errors in .errors, including sample lines
    whose family was not declared by a preceding # TYPE line."""
    ex = Exposition()
    for ln, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                if parts[2] in ex.types:
                    ex.errors.append("line %d: second TYPE for %s" % (ln, parts[2]))
                ex.types[parts[2]] = parts[3].strip() if len(parts) > 3 else ""
            elif len(parts) >= 3 and parts[1] == "HELP":
                ex.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            continue
        m = _LINE_RE.match(line)
        if not m:
            ex.errors.append("line %d: cannot parse %r" % (ln, line))
            continue
        name, lbl, val = m.group(1), m.group(3), m.group(4)
        labels = {}
        if lbl:
            pos = 0
            while pos < len(lbl):
                lm = _LABEL_RE.match(lbl, pos)
                if not lm:
                    ex.errors.append("line %d: bad labels %r" % (ln, lbl))
                    break
                labels[lm.group(1)] = _unescape(lm.group(2))
                pos = lm.end()
        try:
            v = _parse_value(val)
        except ValueError:
            ex.errors.append("line %d: bad value %r" % (ln, val))
            continue
        fam = None
        if name in ex.types:
            fam = name
        else:
            for f, t in ex.types.items():
                for suf in SUFFIXES.get(t, ()):
                    if suf and name == f + suf:
                        fam = f
        if fam is None:
            ex.errors.append("line %d: sample %s has no preceding # TYPE" % (ln, name))
        ex.samples.append((name, labels, v, line))
    return ex


# --------------------------------------------------------------------------------------------
# self-check: python3 tests/integration/harness.py


def _selftest():
    import random
    rnd = random.Random(1)
    cases = [b"", b"a", b"abcd" * 100, bytes(range(256)) * 40, b"x" * 70000,
             bytes(rnd.getrandbits(8) for _ in range(5000))]
    for i in range(30):
        cases.append(bytes(rnd.choice(b"abc") for _ in range(rnd.randint(0, 3000))))
    for c in cases:
        for copies in (True, False):
            enc = snappy_compress(c, copies=copies)
            assert snappy_decompress(enc) == c, (len(c), copies)
        assert snappy_decompress(snappy_compress(c, copies=False, literal_max=61)) == c
    assert varint(-1) == b"\xff" * 9 + b"\x01"
    assert go_float(1.0) == "1" and go_float(0.1) == "0.1" and go_float(-0.0) == "-0"
    assert go_float(1e21) == "1e+21" and go_float(1e-7) == "1e-07"
    assert go_float(123456789.125) == "123456789.125" and go_float(1e20) == "100000000000000000000"
    assert go_float(5e-324) == "5e-324" and go_float(0.000001) == "0.000001"
    assert go_float(1.7976931348623157e308) == "1.7976931348623157e+308"
    assert go_float(-2.5e-5) == "-0.000025" and go_float(12.5) == "12.5"
    assert go_float(float("nan")) == "NaN" and go_float(STALE) == "NaN"
    assert ms_to_ts_str(-1500) == "-1.5" and ms_to_ts_str(1001) == "1.001"
    assert ts_to_ms(decimal.Decimal("-0.001")) == -1
    print("harness self-test ok")


if __name__ == "__main__":
    _selftest()


class PostSink:
    """An HTTP server on 127.0.0.1 (port chosen by the OS) that records every POST as
    (status answered, headers dict, body bytes); the status comes from status() at the time of
    the request. Stop it with close()."""

    def __init__(self, status=lambda: 200):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.got = []
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                code = status()
                with outer.lock:
                    outer.got.append((code, dict(self.headers), body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def snapshot(self):
        with self.lock:
            return list(self.got)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
