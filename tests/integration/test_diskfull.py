"""test_diskfull.py - augurd when its disk fills up, on a real full filesystem.

The data directory lives on a small tmpfs mounted for the test (this needs root, as `make test`
has on our machines; without it the test fails and says so). A filler file takes most of the
space, then remote writes go on until the disk is full. While it is full:
  * writes get a retryable 503 with Retry-After (never a 2xx, never a 4xx),
  * the daemon stays ready and answers queries,
  * every sample acknowledged before is still there, exactly.
Then the filler is deleted, and without any restart or operator action writes are acknowledged
again; finally a kill -9 and restart shows that nothing acknowledged was lost or damaged.
"""
import os
import shutil
import subprocess

from harness import go_float, ms_to_ts_str

T0 = 1_700_000_000_000
SERIES = 200
MB = 1 << 20


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def request(k):
    """Request k: SERIES series, 10 samples each, timestamps after those of request k - 1."""
    series = []
    for i in range(SERIES):
        samples = [(T0 + (k * 10 + j) * 1000, float(k * 1000 + i * 10 + j) / 8) for j in range(10)]
        series.append(({"__name__": "df", "i": "%03d" % i}, samples))
    return series


def stored(d, upto_k):
    """{(i, t): value string} of everything stored."""
    at = T0 + (upto_k + 1) * 10 * 1000
    r = d.get("/api/v1/query", {"query": "df[30d]", "time": ms_to_ts_str(at)}, timeout=120)
    check(r.status == 200, "query: %r" % r)
    out = {}
    for s in r.json()["data"]["result"]:
        for t, v in s["values"]:
            out[(s["metric"]["i"], int(round(t * 1000)))] = v
    return out


def verify(d, acked, last_k, what):
    got = stored(d, last_k)
    missing = 0
    for k in acked:
        for labels, samples in request(k):
            for t, v in samples:
                if got.get((labels["i"], t)) != go_float(v):
                    missing += 1
    check(missing == 0, "%s: %d acknowledged samples missing or changed" % (what, missing))


def test_disk_full_answers_503_keeps_data_and_resumes_by_itself(ctx):
    mnt = ctx.path("tmpfs")
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt],
                       capture_output=True, text=True)
    check(r.returncode == 0, "cannot mount a tmpfs for the disk-full test (it needs root): %s"
          % (r.stderr.strip() or r.stdout.strip()))
    d = None
    try:
        filler = os.path.join(mnt, "filler")
        d = ctx.daemon(data_dir=os.path.join(mnt, "data"), log_level="info")
        # Leave the daemon a few MiB: it fills them with WAL records and chunks.
        st = os.statvfs(mnt)
        with open(filler, "wb") as f:
            f.write(b"\0" * (st.f_bavail * st.f_frsize - 6 * MB))
        acked, k, full = [], 0, 0
        while full < 5 and k < 2000:
            r = d.write(request(k))
            if r.status == 204:
                acked.append(k)
            else:
                check(r.status == 503, "request %d on a full disk: want 503, got %r" % (k, r))
                check(r.headers.get("Retry-After"), "503 without Retry-After")
                full += 1
            k += 1
        check(full == 5, "the disk never filled: %d requests acknowledged" % len(acked))
        check(len(acked) >= 3, "only %d requests acknowledged before the disk filled" % len(acked))
        check(d.get("/-/ready").status == 200, "not ready while the disk is full")
        verify(d, acked, k, "while the disk is full")
        # Space comes back: writes resume by themselves.
        os.unlink(filler)
        resumed = False
        for _ in range(20):
            r = d.write(request(k))
            if r.status == 204:
                acked.append(k)
                resumed = True
                k += 1
                break
            check(r.status == 503, "after freeing space: want 204 or 503, got %r" % r)
            k += 1
        check(resumed, "writes did not resume after the disk had room again")
        for _ in range(3):
            r = d.write(request(k))
            check(r.status == 204, "write after resuming: %r" % r)
            acked.append(k)
            k += 1
        verify(d, acked, k, "after resuming")
        d.kill9()
        d.start()
        verify(d, acked, k, "after kill -9 and restart")
    finally:
        if d:
            d.stop_quietly()
        subprocess.run(["umount", "-l", mnt], capture_output=True)
        shutil.rmtree(mnt, ignore_errors=True)
