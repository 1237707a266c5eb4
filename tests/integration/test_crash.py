"""test_crash.py - durability of acknowledged remote writes across kill -9.

Three writers on their own keep-alive connections remote-write batches (50 series x 4 samples,
increasing timestamps) as fast as augurd takes them and remember every request answered 2xx.
The daemon is killed with SIGKILL mid-stream, restarted on the same data directory, and then:
  * every acknowledged sample is present with exactly the value sent;
  * a request that was in flight when the daemon died is there completely or not at all;
  * nothing else is there;
  * the daemon is healthy and takes new writes (the writers carry on from where they were).
This happens AUGUR_CRASH_ROUNDS times (default 20; `make crash-long` runs 200), each round after
a random stretch of writing (0.2-1.5 s, seeded by AUGUR_CRASH_SEED, printed), so the kill lands
anywhere in a commit, a chunk seal or a checkpoint; then a last phase ends with a clean SIGTERM
(exit 0, and under ASan no sanitizer report).
"""
import json
import os
import random
import threading
import time

from harness import (REMOTE_WRITE_HEADERS, Conn, encode_write_request, go_float, ms_to_ts_str,
                     snappy_compress)

WRITERS = 3
SERIES = 50
SAMPLES = 4
STEP_MS = 250                       # between the samples of one series
T_BASE = 1_700_000_000_000
KILLS = int(os.environ.get("AUGUR_CRASH_ROUNDS", "20"))
SEED = int(os.environ.get("AUGUR_CRASH_SEED", str(int(time.time()))))


class Writer(threading.Thread):
    def __init__(self, port, wid, state, stop):
        super().__init__(name="writer-%d" % wid, daemon=True)
        self.port, self.wid, self.state, self.stop = port, wid, state, stop
        self.rnd = random.Random(wid * 1000 + len(state["requests"]))

    def value(self):
        r = self.rnd.random()
        if r < 0.02:
            return self.rnd.choice([0.0, -0.0, float("inf"), float("-inf"), 1e-300, -1e300, 1e21])
        if r < 0.5:
            return float(self.rnd.randint(-10**6, 10**6))
        return self.rnd.uniform(-1e6, 1e6)

    def build(self):
        t0 = self.state["next_ts"]
        self.state["next_ts"] = t0 + SAMPLES * STEP_MS
        series = []
        for i in range(SERIES):
            labels = {"__name__": "crash_m", "writer": str(self.wid), "s": "%02d" % i}
            series.append((labels, [(t0 + k * STEP_MS, self.value()) for k in range(SAMPLES)]))
        return series

    @staticmethod
    def expected(series):
        """{(series, ts): value string} of a request, computed once."""
        return {(labels["s"], ts): go_float(v) for labels, samples in series for ts, v in samples}

    def run(self):
        conn = Conn("127.0.0.1", self.port, timeout=30)
        n = 0
        try:
            while not self.stop.is_set():
                series = self.build()
                req = {"series": series, "acked": False, "expect": self.expected(series)}
                self.state["requests"].append(req)
                n += 1
                # alternate literal-only and compressing snappy: both are valid block format
                body = snappy_compress(encode_write_request(series), copies=(n % 4 == 0))
                try:
                    r = conn.request("POST", "/api/v1/write", body, REMOTE_WRITE_HEADERS)
                except Exception as e:  # noqa: BLE001 - the daemon was killed: stop writing
                    self.state["errors"].append("connection: %r" % e)
                    break
                if 200 <= r.status < 300:
                    req["acked"] = True
                else:
                    self.state["bad_status"].append("HTTP %d %r" % (r.status, r.body[:200]))
                    if r.status >= 500:
                        continue  # retryable: a sender would retry; we just go on
                    break
        finally:
            conn.close()


def stored_samples(d, wid, at_ms):
    q = '{__name__="crash_m",writer="%d"}[30d]' % wid
    r = d.get("/api/v1/query", {"query": q, "time": ms_to_ts_str(at_ms)}, timeout=120)
    if r.status != 200:
        raise AssertionError("query %s: %r" % (q, r))
    out = {}
    # plain float parsing is exact enough for millisecond timestamps of this era (< 2**53 ms)
    for s in json.loads(r.decoded())["data"]["result"]:
        out[s["metric"]["s"]] = {int(round(t * 1000)): v for t, v in s["values"]}
    return out


def verify(d, states, phase):
    problems = []
    totals = {"acked": 0, "unacked_present": 0, "unacked_absent": 0}
    for wid, st in enumerate(states):
        at = st["next_ts"] + 1000
        stored = stored_samples(d, wid, at)
        sent = {}
        for req in st["requests"]:
            sent.update(req["expect"])
        for s, pts in stored.items():
            for ts, vs in pts.items():
                want = sent.get((s, ts))
                if want is None:
                    problems.append("writer %d series %s: sample at %d was never sent" % (wid, s, ts))
                elif want != vs:
                    problems.append("writer %d series %s at %d: sent %s, stored %s" % (wid, s, ts, want, vs))
        for ri, req in enumerate(st["requests"]):
            total = len(req["expect"])
            present = 0
            for (s, ts), vs in req["expect"].items():
                if stored.get(s, {}).get(ts) == vs:
                    present += 1
            if req["acked"]:
                totals["acked"] += 1
                if present != total:
                    problems.append("writer %d request #%d was acknowledged but only %d of its %d samples "
                                    "are stored" % (wid, ri, present, total))
            elif present not in (0, total):
                problems.append("writer %d request #%d (not acknowledged) is stored partially: %d of %d "
                                "samples" % (wid, ri, present, total))
            elif present:
                totals["unacked_present"] += 1
            else:
                totals["unacked_absent"] += 1
    print("  phase %d: %d acknowledged requests verified; in-flight requests stored %d, not stored %d"
          % (phase, totals["acked"], totals["unacked_present"], totals["unacked_absent"]), flush=True)
    return problems, totals


def run_writers(d, states, seconds, kill):
    stop = threading.Event()
    writers = [Writer(d.port, wid, states[wid], stop) for wid in range(WRITERS)]
    for w in writers:
        w.start()
    before = sum(sum(r["acked"] for r in st["requests"]) for st in states)
    time.sleep(seconds)
    if kill:
        d.kill9()
    stop.set()
    for w in writers:
        w.join(60)
        if w.is_alive():
            raise AssertionError("writer %s did not stop" % w.name)
    after = sum(sum(r["acked"] for r in st["requests"]) for st in states)
    return after - before


def test_kill9_mid_stream_keeps_every_acknowledged_sample(ctx):
    d = ctx.daemon(log_level="info")
    states = [{"next_ts": T_BASE + wid * 7, "requests": [], "errors": [], "bad_status": []}
              for wid in range(WRITERS)]
    problems = []
    rnd = random.Random(SEED)
    print("  %d rounds, AUGUR_CRASH_SEED=%d" % (KILLS, SEED), flush=True)
    total_acked = 0
    for phase in range(1, KILLS + 1):
        seconds = rnd.uniform(0.2, 1.5)
        n = run_writers(d, states, seconds, kill=True)
        total_acked += n
        d.start()  # same data dir
        p, totals = verify(d, states, phase)
        problems += p
        if d.get("/-/healthy").status != 200:
            problems.append("phase %d: not healthy after restart" % phase)
        if problems:
            break
    if not problems and total_acked < KILLS:
        problems.append("only %d requests acknowledged over %d rounds" % (total_acked, KILLS))
    if not problems:
        # after the last restart: new writes are taken, then a clean stop
        n = run_writers(d, states, 1.0, kill=False)
        if n < 3:
            problems.append("after the restarts only %d requests were acknowledged in 1s" % n)
        p, _ = verify(d, states, KILLS + 1)
        problems += p
        d.stop()  # SIGTERM: exit 0 and no sanitizer report, else DaemonError
        d.start()
        p, _ = verify(d, states, KILLS + 2)
        problems += p
    for wid, st in enumerate(states):
        for b in st["bad_status"][:3]:
            problems.append("writer %d got %s" % (wid, b))
    if problems:
        raise AssertionError("%d problem(s):\n  - %s" % (len(problems), "\n  - ".join(problems[:20])))


test_kill9_mid_stream_keeps_every_acknowledged_sample.timeout = 240 + 12 * KILLS
