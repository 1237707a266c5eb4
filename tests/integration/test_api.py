"""test_api.py - augurd's remote-write receiver and Prometheus HTTP API against the real daemon.

Contracts: /work/shared/reference/ecosystem-contracts.md sections 0-2 (remote write 1.0, the
Prometheus HTTP API, selector semantics). Every test gets a fresh daemon on a temp data dir.
"""
import decimal
import gzip
import json
import signal

import harness
from harness import (PROM_NAN, STALE, Bits, encode_write_request, go_float, labels_key,
                     model_instant, model_matrix, model_range_query, ms_to_ts_str,
                     parse_exposition, points, snappy_compress, snappy_decompress, ts_to_ms,
                     varint, wait_until)

T0 = 1_700_000_000_000          # 2023-11-14T22:13:20Z, in ms
FAR = "32503680000"             # 3000-01-01T00:00:00Z
SNAP_AT, SNAP_RANGE = "4102444801", "250y"  # 2100-01-01T00:00:01Z looking back to 1850:
# covers every sample of the tests but those of m_large (durations end at ~292y, as in Go)
ALL = '{__name__=~".+"}'


# ---------------------------------------------------------------------------------------------
# helpers


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s:\n  want %r\n  got  %r" % (what, want, got))


def q_instant(d, query, t, method="GET", **extra):
    params = {"query": query, "time": t}
    params.update(extra)
    st, j, r = d.api("/api/v1/query", params, method)
    return st, j, r


def ok_data(d, path, params=None, method="GET"):
    st, j, r = d.api(path, params, method)
    check(st == 200 and j and j.get("status") == "success",
          "%s %s %r: expected 200 success, got %r" % (method, path, params, r))
    return j["data"]


def instant_vector(d, query, t_ms, **extra):
    """{frozen labels: value string} of an instant query that must return a vector."""
    data = ok_data(d, "/api/v1/query", dict({"query": query, "time": ms_to_ts_str(t_ms)}, **extra))
    eq(data["resultType"], "vector", "resultType of %s" % query)
    out = {}
    for s in data["result"]:
        eq(ts_to_ms(s["value"][0]), t_ms, "vector sample timestamp (the evaluation time) of %s" % query)
        out[tuple(sorted(s["metric"].items()))] = s["value"][1]
    return out


def raw(d, selector=ALL, at=SNAP_AT, rng=SNAP_RANGE):
    """Every stored sample (stale markers excluded) as {frozen labels: [(ms, value str)]}, read
    with a range selector at a time after everything, which returns raw samples."""
    data = ok_data(d, "/api/v1/query", {"query": "%s[%s]" % (selector, rng), "time": at})
    eq(data["resultType"], "matrix", "resultType of a range selector")
    return {tuple(sorted(s["metric"].items())): points(s["values"]) for s in data["result"]}


def series_list(d, *matches, **extra):
    params = [("match[]", m) for m in (matches or (ALL,))] + list(extra.items())
    return ok_data(d, "/api/v1/series", params)


def appended(d):
    return d.metrics().value("augur_samples_appended_total")


def snapshot(d):
    return {"series": series_list(d), "raw": raw(d), "appended": appended(d)}


def diff_snapshots(a, b):
    out = []
    if a["series"] != b["series"]:
        sa = {json.dumps(x, sort_keys=True) for x in a["series"]}
        sb = {json.dumps(x, sort_keys=True) for x in b["series"]}
        out.append("series added %s removed %s" % (sorted(sb - sa)[:5], sorted(sa - sb)[:5]))
    if a["raw"] != b["raw"]:
        for k in sorted(set(a["raw"]) | set(b["raw"])):
            if a["raw"].get(k) != b["raw"].get(k):
                out.append("data of %s changed: %r -> %r" % (dict(k), a["raw"].get(k), b["raw"].get(k)))
    if a["appended"] != b["appended"]:
        out.append("augur_samples_appended_total %s -> %s" % (a["appended"], b["appended"]))
    return out


def expect_write_status(d, body, status, why, headers=None, text=None):
    """Sends `body` and checks the status and that nothing changed (when status != 2xx).
    Returns a list of problems (so one test reports every failing case at once)."""
    before = snapshot(d)
    r = d.write_raw(body, headers)
    problems = []
    if r.status != status:
        problems.append("%s: expected HTTP %d, got %d %r" % (why, status, r.status, r.text[:300]))
    elif status >= 400:
        if not r.text.strip():
            problems.append("%s: HTTP %d without a message" % (why, status))
        if text and text.lower() not in r.text.lower():
            problems.append("%s: message %r does not mention %r" % (why, r.text[:300], text))
    if status >= 400 or status == 204 and body in (b"\x00",):
        after = snapshot(d)
        for p in diff_snapshots(before, after):
            problems.append("%s: after HTTP %d the store changed: %s" % (why, r.status, p))
    return problems


def fail_if(problems):
    if problems:
        raise AssertionError("%d problem(s):\n  - %s" % (len(problems), "\n  - ".join(problems)))


def body(series, metadata=()):
    return snappy_compress(encode_write_request(series, metadata))


def preload(d):
    """Some data so that 'unchanged' means something."""
    r = d.write([({"__name__": "pre", "job": "a"}, [(T0, 1.0), (T0 + 1000, 2.0)]),
                 ({"__name__": "pre", "job": "b"}, [(T0, 3.0)])])
    eq(r.status, 204, "preload write status (%r)" % r)


# ---------------------------------------------------------------------------------------------
# exact round trip of written values


EXACT_VALUES = [1.0, -0.0, 0.0, PROM_NAN, Bits(0x7FF8000000000000), Bits(0xFFF8000000000000),
                Bits(0x7FF0000000000001), float("inf"), float("-inf"), 1e-7, 1e21, 0.1,
                123456789.125, 5e-324, 1.7976931348623157e308, -2.5e-5, 1e20, 0.000001,
                -123.456, 2.0 ** 53 + 2, 42.0, STALE, 7.0, STALE]


def exact_series():
    s_exact = [(T0 + i * 10_000, v) for i, v in enumerate(EXACT_VALUES)]
    s_neg = [(-86_400_000, 1.0), (-1500, 2.0), (-1, 3.0), (0, 4.0), (1, 5.0)]
    s_large = [(4_102_444_800_000, 1.5), (32_503_679_999_999, -1.5)]
    return s_exact, s_neg, s_large


def test_write_then_read_exact_values(ctx):
    d = ctx.daemon()
    s_exact, s_neg, s_large = exact_series()
    r = d.write([({"__name__": "m_exact", "job": "values"}, s_exact),
                 ({"__name__": "m_neg", "job": "neg"}, s_neg),
                 ({"__name__": "m_large", "job": "large"}, s_large)])
    eq(r.status, 204, "write status (%r)" % r)
    check(r.body == b"", "204 with a body: %r" % r.body)
    problems = []

    def cmp(what, got, want):
        if got != want:
            problems.append("%s:\n      want %r\n      got  %r" % (what, want, got))

    # raw samples through range selectors at an instant
    t_end = s_exact[-1][0] + 1000
    got = raw(d, 'm_exact{job="values"}', at=ms_to_ts_str(t_end), rng="1h")
    cmp("m_exact[1h] raw samples (stale markers dropped)",
        got.get((("__name__", "m_exact"), ("job", "values"))), model_matrix(s_exact, t_end, 3_600_000))
    got = raw(d, "m_neg", at="0.001", rng="2d")
    cmp("m_neg[2d] at 0.001 (negative timestamps)", got.get((("__name__", "m_neg"), ("job", "neg"))),
        model_matrix(s_neg, 1, 2 * 86_400_000))
    for at, rng, rng_ms in ((FAR, "1000d", 1000 * 86_400_000), ("4102444801", "1d", 86_400_000),
                            (FAR, "290y", 290 * 365 * 86_400_000)):
        got = raw(d, "m_large", at=at, rng=rng)
        cmp("m_large[%s] at %s (large timestamps)" % (rng, at), got.get((("__name__", "m_large"), ("job", "large"))),
            model_matrix(s_large, int(at) * 1000, rng_ms))
    got = raw(d, "m_large", at="32503680", rng="1d")  # 32503680 s < 2100-01-01: nothing
    cmp("m_large[1d] at 32503680 (before every sample)", got, {})

    # the JSON text itself: values are strings, timestamps numbers with <= 3 decimals
    rr = d.get("/api/v1/query", {"query": "m_neg[2d]", "time": "0.001"})
    txt = rr.text
    for frag in ('[-86400,"1"]', '[-1.5,"2"]', '[-0.001,"3"]', '[0,"4"]', '[0.001,"5"]'):
        if frag not in txt.replace(" ", "").replace("-1.500", "-1.5"):
            problems.append("m_neg[2d] JSON lacks %s: %s" % (frag, txt[:400]))

    # query_range reproduces the lookback model exactly, including NaN/Inf/-0 strings
    start, end = T0 - 20_000, T0 + len(EXACT_VALUES) * 10_000 + 30_000
    for step in (1000, 7000, 10_000):
        data = ok_data(d, "/api/v1/query_range", {"query": "m_exact", "start": ms_to_ts_str(start),
                                                  "end": ms_to_ts_str(end), "step": step / 1000})
        res = {tuple(sorted(s["metric"].items())): points(s["values"]) for s in data["result"]}
        cmp("query_range m_exact step=%dms" % step, res.get((("__name__", "m_exact"), ("job", "values"))),
            model_range_query(s_exact, start, end, step))
        eq(data["resultType"], "matrix", "query_range resultType")
    data = ok_data(d, "/api/v1/query_range", {"query": "m_neg", "start": "-100", "end": "1",
                                              "step": "0.5"})
    cmp("query_range m_neg over negative times",
        [points(s["values"]) for s in data["result"]],
        [model_range_query(s_neg, -100_000, 1000, 500)])

    # instant selectors around the stale markers
    i_stale = EXACT_VALUES.index(STALE)
    t_stale = s_exact[i_stale][0]
    key = (("__name__", "m_exact"), ("job", "values"))
    for t, want in [(t_stale - 1, "42"), (t_stale, None), (t_stale + 5000, None),
                    (t_stale + 10_000, "7"), (s_exact[-1][0], None), (s_exact[-1][0] + 240_000, None),
                    (s_exact[0][0], "1"), (s_exact[0][0] - 1, None),
                    (s_exact[3][0], "NaN"), (s_exact[6][0], "NaN"), (s_exact[7][0], "+Inf"),
                    (s_exact[8][0], "-Inf"), (s_exact[1][0], "-0")]:
        v = instant_vector(d, "m_exact", t).get(key)
        want_model = model_instant(s_exact, t)
        want_model = None if want_model is None else go_float(want_model)
        cmp("model self-check at %d" % t, want_model, want)
        cmp("instant m_exact at %s" % ms_to_ts_str(t), v, want)
    fail_if(problems)


def test_stale_marker_only_series_is_listed_but_never_returned(ctx):
    d = ctx.daemon()
    eq(d.write([({"__name__": "only_stale"}, [(T0, STALE)])]).status, 204, "write")
    eq(raw(d, "only_stale"), {}, "range selector over a series holding only a stale marker")
    eq(instant_vector(d, "only_stale", T0), {}, "instant selector at the stale marker")
    data = ok_data(d, "/api/v1/query_range", {"query": "only_stale", "start": ms_to_ts_str(T0 - 5000),
                                              "end": ms_to_ts_str(T0 + 5000), "step": "1"})
    eq(data["result"], [], "query_range over a stale-only series")


# ---------------------------------------------------------------------------------------------
# rejected requests leave the store unchanged


GOOD = ({"__name__": "good_new", "job": "x"}, [(T0 + 5000, 1.0)])


def test_reject_undecodable_bodies(ctx):
    d = ctx.daemon()
    preload(d)
    valid = encode_write_request([GOOD])
    problems = []
    problems += expect_write_status(d, b"this is not snappy at all, just text", 400, "garbage bytes")
    problems += expect_write_status(d, b"\xff\xff\xff\xff\xff\xff\xff", 400, "garbage varint")
    problems += expect_write_status(d, snappy_compress(b"\xff\xff\xff\xff\xff"), 400,
                                    "snappy of garbage protobuf")
    problems += expect_write_status(d, snappy_compress(b"\x0a\x50abc"), 400,
                                    "snappy of a protobuf with a field longer than the message")
    problems += expect_write_status(d, snappy_compress(valid[:-3]), 400,
                                    "snappy of a truncated WriteRequest")
    full = snappy_compress(valid)
    problems += expect_write_status(d, full[:-4], 400, "truncated snappy block")
    problems += expect_write_status(d, varint(1000) + b"\x10hello", 400,
                                    "snappy declaring 1000 bytes holding 5")
    problems += expect_write_status(d, varint(5) + b"\x0d\x01", 400,
                                    "snappy copy before any output")
    # Reading daemon/remote_write.c: a 0-byte body has no snappy length varint -> 400;
    # "\x00" is a valid snappy block of an empty WriteRequest -> 204, nothing stored.
    problems += expect_write_status(d, b"", 400, "empty body (no snappy length)")
    problems += expect_write_status(d, b"\x00", 204, "empty snappy block (empty WriteRequest)")
    # a valid request after all this still works
    r = d.write([GOOD])
    if r.status != 204:
        problems.append("valid write after the rejections: %r" % r)
    fail_if(problems)


INVALID_SERIES = [
    ("unsorted labels", [("__name__", "m"), ("job", "a"), ("instance", "i")]),
    ("unsorted labels (uppercase sorts before _)", [("__name__", "m"), ("Zone", "z")]),
    ("duplicate label names", [("__name__", "m"), ("job", "a"), ("job", "b")]),
    ("duplicate label name and value", [("__name__", "m"), ("job", "a"), ("job", "a")]),
    ("missing __name__", [("instance", "i"), ("job", "a")]),
    ("no labels at all", []),
    ("invalid metric name (leading digit)", [("__name__", "1abc")]),
    ("invalid metric name (dash)", [("__name__", "a-b")]),
    ("invalid metric name (space)", [("__name__", "a b")]),
    ("empty metric name", [("__name__", "")]),
    ("invalid label name (dash)", [("__name__", "m"), ("foo-bar", "x")]),
    ("invalid label name (leading digit)", [("1a", "x"), ("__name__", "m")]),
    ("empty label name", [("", "x"), ("__name__", "m")]),
    ("empty label value", [("__name__", "m"), ("job", "")]),
    ("invalid UTF-8 in a value", [("__name__", "m"), ("job", b"\xff\xfe")]),
    ("overlong UTF-8 in a value", [("__name__", "m"), ("job", b"\xc0\xaf")]),
    ("UTF-16 surrogate in a value", [("__name__", "m"), ("job", b"\xed\xa0\x80")]),
    ("truncated UTF-8 in a value", [("__name__", "m"), ("job", b"ab\xe2\x82")]),
    ("NUL inside a label value", [("__name__", "m"), ("job", b"a\x00b")]),
    ("NUL inside a label name", [("__name__", "m"), (b"jo\x00b", "a")]),
    ("NUL inside the metric name", [("__name__", b"m\x00x")]),
    ("label value over 4096 bytes", [("__name__", "m"), ("job", "v" * 4097)]),
    ("label name over 256 bytes", [("__name__", "m"), ("a" * 257, "v")]),
    ("more than 64 labels", [("__name__", "m")] + [("l%02d" % i, "v") for i in range(64)]),
]


def test_reject_invalid_series(ctx):
    d = ctx.daemon()
    preload(d)
    problems = []
    for why, labels in INVALID_SERIES:
        # a valid new series first: the whole request must be refused, not just the bad series
        b = body([GOOD, (labels, [(T0 + 6000, 1.0), (T0 + 7000, 2.0)])])
        problems += expect_write_status(d, b, 400, why)
    # valid edge cases that must be accepted
    for why, labels in [("UTF-8 value", [("__name__", "m_utf8"), ("job", "h\u00e9llo \u2603 \U0001F600")]),
                        ("colon in metric name", [("__name__", "a:b:c")]),
                        ("64 labels exactly", [("__name__", "m64")] + [("l%02d" % i, "v") for i in range(63)]),
                        ("4096-byte value", [("__name__", "m_long"), ("job", "v" * 4096)]),
                        ("underscore-prefixed label", [("__name__", "m_u"), ("_x", "1")])]:
        r = d.write([(labels, [(T0, 1.0)])])
        if r.status != 204:
            problems.append("%s: expected 204, got %r" % (why, r))
    data = ok_data(d, "/api/v1/label/job/values")
    if "h\u00e9llo \u2603 \U0001F600" not in data:
        problems.append("UTF-8 label value not returned intact: %r" % data)
    fail_if(problems)


def test_reject_histograms_v2_and_foreign_encodings(ctx):
    d = ctx.daemon()
    preload(d)
    problems = []
    hist = {"labels": {"__name__": "h"}, "histograms": [
        {"count_int": 3, "sum": 1.5, "schema": 0, "zero_threshold": 1e-128, "zero_count_int": 1,
         "positive_spans": [(0, 2)], "positive_deltas": [1, 0], "timestamp": T0 + 5000}]}
    problems += expect_write_status(d, body([GOOD, hist]), 400, "native histogram", text="histogram")
    mixed = dict(hist, labels={"__name__": "h2"}, samples=[(T0 + 5000, 1.0)])
    problems += expect_write_status(d, body([mixed]), 400, "series with samples and a histogram")
    v2 = {"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
          "X-Prometheus-Remote-Write-Version": "2.0.0"}
    problems += expect_write_status(d, body([GOOD]), 415, "Remote-Write 2.0 content type", headers=v2)
    problems += expect_write_status(d, body([GOOD]), 415, "Content-Encoding gzip",
                                    headers={"Content-Encoding": "gzip"})
    problems += expect_write_status(d, body([GOOD]), 415, "Content-Type application/json",
                                    headers={"Content-Type": "application/json"})
    # Remote-Write 1.0 spelt out explicitly is fine
    r = d.write_raw(body([GOOD]), {"Content-Type": "application/x-protobuf;proto=prometheus.WriteRequest"})
    if r.status != 204:
        problems.append("explicit proto=prometheus.WriteRequest: expected 204, got %r" % r)
    fail_if(problems)


def test_request_size_limits_413(ctx):
    d = ctx.daemon(args=["--limits.max-request-bytes=1000", "--limits.max-decoded-bytes=1500"])
    preload(d)
    problems = []
    m0 = d.metrics()
    # literal-only snappy so the body really is bigger than the limit
    big_raw = snappy_compress(encode_write_request(
        [({"__name__": "big", "job": "x%04d" % i}, [(T0 + 5000, float(i))]) for i in range(80)]), copies=False)
    check(len(big_raw) > 2000, "test bug: body only %d bytes" % len(big_raw))
    problems += expect_write_status(d, big_raw[:2000] if len(big_raw) > 2000 else big_raw, 413,
                                    "2000-byte body over --limits.max-request-bytes=1000")
    problems += expect_write_status(d, big_raw, 413, "%d-byte valid request over the limit" % len(big_raw))
    # small on the wire, big once decoded: > max-decoded-bytes
    dec = encode_write_request([({"__name__": "dec", "job": "y" * 1900}, [(T0 + 5000, 1.0)])])
    comp = snappy_compress(dec)
    check(len(comp) < 1000 and len(dec) > 1500, "test bug: %d/%d" % (len(comp), len(dec)))
    problems += expect_write_status(d, comp, 413, "decoded %d bytes > --limits.max-decoded-bytes=1500" % len(dec))
    # snappy header claiming a huge length (must be refused before allocating it)
    for claim in (1500 + 1, 100 << 20, (1 << 32) - 1):
        problems += expect_write_status(d, varint(claim) + b"\x00\x41", 413,
                                        "snappy header claiming %d bytes" % claim)
    r = d.write([GOOD])
    if r.status != 204:
        problems.append("a small valid write afterwards: %r" % r)
    m1 = d.metrics()
    n413 = m1.value("augur_http_requests_total", code="413", handler="/api/v1/write") - \
        m0.value("augur_http_requests_total", code="413", handler="/api/v1/write")
    if n413 != 6:
        problems.append("augur_http_requests_total{code=\"413\",handler=\"/api/v1/write\"} rose by %s, "
                        "expected 6 (every 413 answered, including those for the raw body size)" % n413)
    fail_if(problems)


def test_out_of_order_rejects_the_whole_request(ctx):
    """With the out-of-order window off (as Prometheus' own receiver), any sample older than its
    series' newest refuses the whole request."""
    d = ctx.daemon(args=["--storage.out-of-order-window=0s"])
    ooo = {"__name__": "m_ooo", "job": "x"}
    eq(d.write([(ooo, [(T0, 1.0), (T0 + 1000, 2.0)])]).status, 204, "initial write")
    problems = []
    m0 = d.metrics()
    cases = [
        ("new series then an out-of-order sample",
         [({"__name__": "new_a"}, [(T0 + 5000, 1.0)]), (ooo, [(T0 + 500, 9.0)])], "out of order"),
        ("out-of-order sample then a new series",
         [(ooo, [(T0 + 500, 9.0)]), ({"__name__": "new_b"}, [(T0 + 5000, 1.0)])], "out of order"),
        ("new series plus new and out-of-order samples of an existing series",
         [({"__name__": "new_c", "a": "1"}, [(T0 + 5000, 1.0), (T0 + 6000, 2.0)]),
          (ooo, [(T0 + 2000, 3.0), (T0 + 500, 9.0)])], None),
        ("same timestamp, different value",
         [({"__name__": "new_d"}, [(T0 + 5000, 1.0)]), (ooo, [(T0 + 1000, 2.5)])], "duplicate"),
        ("same timestamp, other NaN bits than stored",
         [(ooo, [(T0 + 1000, PROM_NAN)])], None),
        ("decreasing timestamps within one new series",
         [({"__name__": "new_e"}, [(T0 + 5000, 1.0), (T0 + 4000, 2.0)])], None),
        ("same series twice in one request, going back in time",
         [({"__name__": "new_f"}, [(T0 + 6000, 1.0)]), ({"__name__": "new_f"}, [(T0 + 5000, 1.0)])], None),
    ]
    nsamples = 0
    for why, series, text in cases:
        problems += expect_write_status(d, body(series), 400, why, text=text)
        nsamples += sum(len(s[1]) for s in series)
    names = ok_data(d, "/api/v1/label/__name__/values")
    if names != ["m_ooo"]:
        problems.append("series from refused requests appeared: %r" % names)
    m1 = d.metrics()
    got = m1.value("augur_samples_rejected_total", reason="out_of_order") - \
        m0.value("augur_samples_rejected_total", reason="out_of_order")
    if got != nsamples:
        problems.append("augur_samples_rejected_total{reason=\"out_of_order\"} rose by %s, expected %d "
                        "(all samples of the refused requests)" % (got, nsamples))
    # the series still accepts newer samples, and new series work
    r = d.write([(ooo, [(T0 + 2000, 3.0)]), ({"__name__": "new_a"}, [(T0 + 5000, 1.0)])])
    if r.status != 204:
        problems.append("valid write afterwards: %r" % r)
    eq(raw(d, "m_ooo"), {(("__name__", "m_ooo"), ("job", "x")): [(T0, "1"), (T0 + 1000, "2"), (T0 + 2000, "3")]},
       "m_ooo after the refused requests")
    fail_if(problems)


def test_duplicate_resend_is_accepted_and_changes_nothing(ctx):
    d = ctx.daemon()
    series = [({"__name__": "dup", "i": str(i)}, [(T0 + k * 1000, float(i * 10 + k)) for k in range(5)])
              for i in range(3)]
    series.append(({"__name__": "dup", "i": "stale"}, [(T0, 1.0), (T0 + 1000, STALE)]))
    b = body(series)
    eq(d.write_raw(b).status, 204, "first write")
    before = snapshot(d)
    m0 = d.metrics()
    eq(before["appended"], 17, "augur_samples_appended_total after 17 samples")
    for i in range(2):
        r = d.write_raw(b)
        eq(r.status, 204, "resend #%d (%r)" % (i + 1, r))
    after = snapshot(d)
    fail_if(diff_snapshots(before, after))
    m1 = d.metrics()
    eq(m1.value("augur_samples_duplicate_total") - m0.value("augur_samples_duplicate_total"), 34,
       "augur_samples_duplicate_total increase after two resends of 17 samples")
    # a resend that overlaps stored samples and adds new ones: duplicates skipped, new stored
    r = d.write([({"__name__": "dup", "i": "0"}, [(T0 + 3000, 3.0), (T0 + 4000, 4.0), (T0 + 5000, 5.0)])])
    eq(r.status, 204, "overlapping resend with one new sample (%r)" % r)
    eq(raw(d, 'dup{i="0"}')[(("__name__", "dup"), ("i", "0"))],
       [(T0 + k * 1000, go_float(float(k))) for k in range(6)], "dup{i=0} after the overlapping resend")
    eq(appended(d), 18, "augur_samples_appended_total after one new sample")


def test_exemplars_ignored_and_metadata_stored(ctx):
    d = ctx.daemon()
    b = snappy_compress(encode_write_request(
        [{"labels": {"__name__": "http_requests_total", "code": "200"}, "samples": [(T0, 5.0)],
          "exemplars": [({"trace_id": "abc"}, 1.0, T0)]}],
        metadata=[("http_requests_total", "counter", "Requests.", ""),
                  ("temp_celsius", "gauge", "Temperature \u00b0C.", "celsius")]))
    r = d.write_raw(b)
    eq(r.status, 204, "write with exemplars and metadata (%r)" % r)
    eq(d.metrics().value("augur_exemplars_ignored_total"), 1, "augur_exemplars_ignored_total")
    eq(raw(d, "http_requests_total"), {(("__name__", "http_requests_total"), ("code", "200")): [(T0, "5")]},
       "the sample next to the exemplar")
    md = ok_data(d, "/api/v1/metadata")
    eq(md, {"http_requests_total": [{"type": "counter", "help": "Requests.", "unit": ""}],
            "temp_celsius": [{"type": "gauge", "help": "Temperature \u00b0C.", "unit": "celsius"}]},
       "/api/v1/metadata")
    eq(ok_data(d, "/api/v1/metadata", {"metric": "temp_celsius"}),
       {"temp_celsius": [{"type": "gauge", "help": "Temperature \u00b0C.", "unit": "celsius"}]},
       "/api/v1/metadata?metric=temp_celsius")
    eq(ok_data(d, "/api/v1/metadata", {"metric": "nope"}), {}, "/api/v1/metadata?metric=nope")


# ---------------------------------------------------------------------------------------------
# query API contract


def expect_error(d, path, params, status, etype, text, method="GET"):
    st, j, r = d.api(path, params, method)
    problems = []
    where = "%s %s %r" % (method, path, params)
    if st != status:
        problems.append("%s: expected HTTP %d, got %r" % (where, status, r))
        return problems
    ct = (r.header("Content-Type") or "")
    if not ct.startswith("application/json"):
        problems.append("%s: error Content-Type %r" % (where, ct))
    if not isinstance(j, dict) or j.get("status") != "error" or j.get("errorType") != etype or \
            not isinstance(j.get("error"), str):
        problems.append("%s: expected {status:error, errorType:%s, error:...}, got %r" % (where, etype, r))
    elif text and text not in j["error"]:
        problems.append("%s: error %r does not contain %r" % (where, j["error"], text))
    return problems


def test_query_literals_and_expressions(ctx):
    d = ctx.daemon()
    problems = []
    for q, want in [("42", "42"), ("-1.5", "-1.5"), ("1e3", "1000"), ("0x10", "16"), ("NaN", "NaN"),
                    ("Inf", "+Inf"), ("-Inf", "-Inf"), ("(7)", "7"), ("1_000", "1000"), (".5", "0.5")]:
        st, j, r = q_instant(d, q, "100.5")
        if st != 200 or j["data"] != {"resultType": "scalar", "result": [decimal.Decimal("100.5"), want]}:
            problems.append("query=%s: expected scalar [100.5,%r], got %r" % (q, want, r))
    for q, want in [('"hello"', "hello"), ("'a\\tb'", "a\tb"), ("`raw\\n`", "raw\\n")]:
        st, j, r = q_instant(d, q, "100")
        if st != 200 or j["data"] != {"resultType": "string", "result": [100, want]}:
            problems.append("query=%s: expected string [100,%r], got %r" % (q, want, r))
    # range query of a scalar: one series without labels, a point per step
    st, j, r = d.api("/api/v1/query_range", {"query": "42", "start": "10", "end": "12", "step": "1"})
    if st != 200 or j["data"] != {"resultType": "matrix", "result": [
            {"metric": {}, "values": [[10, "42"], [11, "42"], [12, "42"]]}]}:
        problems.append("query_range of 42: %r" % r)
    problems += expect_error(d, "/api/v1/query_range", {"query": '"s"', "start": "10", "end": "12", "step": "1"},
                             400, "bad_data", 'invalid expression type "string" for range query')
    problems += expect_error(d, "/api/v1/query_range", {"query": 'x[5m]', "start": "10", "end": "12", "step": "1"},
                             400, "bad_data", 'invalid expression type "range vector" for range query')
    # Grafana's "Save & test": query=1+1&time=4, GET and POST, must give the scalar 2.
    for method in ("GET", "POST"):
        st, j, r = q_instant(d, "1+1", "4", method)
        if st != 200 or j["data"] != {"resultType": "scalar", "result": [4, "2"]}:
            problems.append("query=1+1&time=4 via %s: expected scalar [4,\"2\"], got %r" % (method, r))
    # Operators, aggregations, functions, subqueries and @ are evaluated now (their semantics are
    # checked against Prometheus by test_prometheus.py and the PromQL conformance runner).
    for q in ("sum(up)", "rate(up[5m])", "up * 2", "-up", "up > 0", "up @ 100", "up[5m:1m]"):
        for method in ("GET", "POST"):
            st, j, r = q_instant(d, q, "4", method)
            if st != 200 or j.get("status") != "success":
                problems.append("query=%s via %s: expected success, got %r" % (q, method, r))
    problems += expect_error(d, "/api/v1/query", {"query": "holt_winters_nope(up)", "time": "4"}, 400,
                             "bad_data", 'invalid parameter "query"')
    for q in ("up{", "up{job=}", '"unterminated', "", "up[5x]", "1 +", "{}", "up\x00", 'up\x00{job="x"}'):
        problems += expect_error(d, "/api/v1/query", {"query": q, "time": "4"}, 400, "bad_data",
                                 'invalid parameter "query"')
    fail_if(problems)


def test_lookback_and_offset(ctx):
    d = ctx.daemon()
    T = T0
    eq(d.write([({"__name__": "lb", "job": "x"}, [(T, 1.0)])]).status, 204, "write")
    key = (("__name__", "lb"), ("job", "x"))
    problems = []
    for dt, want, what in [(0, "1", "at T"), (-1, None, "1ms before T"), (299_000, "1", "T+4m59s"),
                           (299_999, "1", "T+4m59.999s"), (301_000, None, "T+5m01s"), (600_000, None, "T+10m"),
                           (300_001, None, "T+5m0.001s"),
                           # the edge: Prometheus 2.x looks back over [t-5m, t] (3.x: (t-5m, t])
                           (300_000, None if harness.LEFT_OPEN else "1", "exactly T+5m")]:
        got = instant_vector(d, "lb", T + dt).get(key)
        if got != want:
            problems.append("lb at %s: want %r got %r" % (what, want, got))
    for rng, dt in (("1m", 60_000), ("1m", 60_001), ("1m", 59_999), ("10s", 10_000)):
        data = ok_data(d, "/api/v1/query", {"query": "lb[%s]" % rng, "time": ms_to_ts_str(T + dt)})
        got = [points(s["values"]) for s in data["result"]]
        want = [m for m in [model_matrix([(T, 1.0)], T + dt, {"1m": 60_000, "10s": 10_000}[rng])] if m]
        if got != want:
            problems.append("lb[%s] at T+%dms: want %r got %r" % (rng, dt, want, got))
    got = instant_vector(d, "lb", T + 61_000, lookback_delta="1m").get(key)
    if got is not None:
        problems.append("lookback_delta=1m at T+61s: want nothing, got %r" % got)
    got = instant_vector(d, "lb", T + 59_000, lookback_delta="60").get(key)
    if got != "1":
        problems.append("lookback_delta=60 (seconds) at T+59s: want '1', got %r" % got)
    # offset shifts the evaluation time back
    for q, dt, want in [("lb offset 1m", 60_000, "1"), ("lb offset 1m", 59_999, None),
                        ("lb offset 1m", 60_000 + 299_000, "1"), ("lb offset 1m", 60_000 + 301_000, None),
                        ("lb offset 1h", 3_600_000, "1"), ("lb offset 90s", 90_000, "1")]:
        got = instant_vector(d, q, T + dt).get(key)
        if got != want:
            problems.append("%s at T+%dms: want %r got %r" % (q, dt, want, got))
    # a range selector with offset returns the raw sample with its own timestamp
    data = ok_data(d, "/api/v1/query", {"query": "lb[1m] offset 1m", "time": ms_to_ts_str(T + 90_000)})
    got = [points(s["values"]) for s in data["result"]]
    if got != [[(T, "1")]]:
        problems.append("lb[1m] offset 1m at T+90s: want [[(T,'1')]], got %r" % got)
    # query_range over the lookback edge, with and without offset
    for q, off in (("lb", 0), ("lb offset 30s", 30_000)):
        start, end = T - 10_000, T + 340_000
        data = ok_data(d, "/api/v1/query_range", {"query": q, "start": ms_to_ts_str(start),
                                                  "end": ms_to_ts_str(end), "step": "10"})
        got = [points(s["values"]) for s in data["result"]]
        want = [model_range_query([(T, 1.0)], start, end, 10_000, offset=off)]
        if got != want:
            problems.append("query_range %s: want %r got %r" % (q, want, got))
    fail_if(problems)


MT = [{"__name__": "mt", "env": "prod", "app": "a"}, {"__name__": "mt", "env": "dev", "app": "b"},
      {"__name__": "mt", "env": "staging", "app": "ab"}, {"__name__": "mt", "app": "c"},
      {"__name__": "mu", "env": "prod", "app": "a"}]


def test_matchers(ctx):
    d = ctx.daemon()
    eq(d.write([(l, [(T0, float(i))]) for i, l in enumerate(MT)]).status, 204, "write")

    def sel(pred):
        return sorted(tuple(sorted(l.items())) for l in MT if pred(l))

    cases = [
        ('mt{env="prod"}', lambda l: l["__name__"] == "mt" and l.get("env") == "prod"),
        ('mt{env!="prod"}', lambda l: l["__name__"] == "mt" and l.get("env", "") != "prod"),
        ('mt{app=~"a.*"}', lambda l: l["__name__"] == "mt" and l["app"].startswith("a")),
        ('mt{app=~"a"}', lambda l: l["__name__"] == "mt" and l["app"] == "a"),
        ('mt{app=~"b|c"}', lambda l: l["__name__"] == "mt" and l["app"] in ("b", "c")),
        ('mt{app!~"a.*"}', lambda l: l["__name__"] == "mt" and not l["app"].startswith("a")),
        ('mt{env=""}', lambda l: l["__name__"] == "mt" and "env" not in l),
        ('mt{env!=""}', lambda l: l["__name__"] == "mt" and "env" in l),
        ('mt{env=~".*"}', lambda l: l["__name__"] == "mt"),
        ('mt{env=~"prod|dev",app!="b"}', lambda l: l["__name__"] == "mt" and l.get("env") == "prod"),
        ('{__name__=~"m[tu]",env="prod"}', lambda l: l.get("env") == "prod"),
        ('{__name__!="mt",app="a"}', lambda l: l["__name__"] != "mt" and l["app"] == "a"),
        ('{app="a"}', lambda l: l["app"] == "a"),
        ('mt{nope="x"}', lambda l: False),
        ('{__name__="mt",app=~"A"}', lambda l: False),
        ('mt{app=~"(?i)A"}', lambda l: l["__name__"] == "mt" and l["app"] == "a"),
    ]
    problems = []
    for q, pred in cases:
        got = sorted(instant_vector(d, q, T0 + 1000))
        want = sel(pred)
        if got != want:
            problems.append("%s: want %r got %r" % (q, want, got))
        sl = sorted(tuple(sorted(x.items())) for x in series_list(d, q))
        if sl != want:
            problems.append("/api/v1/series match[]=%s: want %r got %r" % (q, want, sl))
    fail_if(problems)


def test_matrix_results_sorted_by_labels(ctx):
    d = ctx.daemon()
    sets = [{"__name__": "srt", "b": "2"}, {"__name__": "srt", "a": "9"}, {"__name__": "srt", "a": "10"},
            {"__name__": "srt", "a": "1", "z": "z"}, {"__name__": "srt"}, {"__name__": "srt", "a": "1"},
            {"__name__": "srs", "a": "1"}, {"__name__": "srt", "B": "x"}, {"__name__": "srt", "a": "\u00e9"},
            {"__name__": "srt", "a": "Z"}, {"__name__": "srt_", "a": "1"}]
    for i, l in enumerate(sets):  # one request per series, in scrambled order
        eq(d.write([(l, [(T0, float(i)), (T0 + 1000, float(i))])]).status, 204, "write %r" % l)
    want = sorted(sets, key=labels_key)
    problems = []
    data = ok_data(d, "/api/v1/query_range", {"query": '{__name__=~"sr.*"}', "start": ms_to_ts_str(T0),
                                              "end": ms_to_ts_str(T0 + 2000), "step": "1"})
    got = [s["metric"] for s in data["result"]]
    if got != want:
        problems.append("query_range order:\n    want %r\n    got  %r" % (want, got))
    data = ok_data(d, "/api/v1/query", {"query": '{__name__=~"sr.*"}[1m]', "time": ms_to_ts_str(T0 + 2000)})
    got = [s["metric"] for s in data["result"]]
    if got != want:
        problems.append("range selector order:\n    want %r\n    got  %r" % (want, got))
    got = series_list(d, '{__name__=~"sr.*"}')
    if got != want:
        problems.append("/api/v1/series order:\n    want %r\n    got  %r" % (want, got))
    got = series_list(d, '{__name__="srt"}', '{__name__=~"srs|srt_"}', '{a="1"}')
    if got != want:
        problems.append("/api/v1/series with 3 overlapping match[] (union, sorted, deduplicated):"
                        "\n    want %r\n    got  %r" % (want, got))
    fail_if(problems)


def test_query_range_parameter_errors(ctx):
    d = ctx.daemon()
    P = "/api/v1/query_range"
    problems = []
    problems += expect_error(d, P, {"query": "up", "end": "10", "step": "1"}, 400, "bad_data",
                             'invalid parameter "start"')
    problems += expect_error(d, P, {"query": "up", "start": "10", "step": "1"}, 400, "bad_data",
                             'invalid parameter "end"')
    problems += expect_error(d, P, {"query": "up", "start": "10", "end": "20"}, 400, "bad_data",
                             'invalid parameter "step"')
    problems += expect_error(d, P, {"query": "up", "start": "20", "end": "10", "step": "1"}, 400, "bad_data",
                             "end timestamp must not be before start time")
    for step in ("0", "-1", "0s"):
        problems += expect_error(d, P, {"query": "up", "start": "10", "end": "20", "step": step}, 400,
                                 "bad_data", "zero or negative query resolution step widths are not "
                                 "accepted. Try a positive integer")
    problems += expect_error(d, P, {"query": "up", "start": "0", "end": "11001", "step": "1"}, 400, "bad_data",
                             "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing "
                             "the query resolution (?step=XX)")
    st, j, r = d.api(P, {"query": "up", "start": "0", "end": "11000", "step": "1"})
    if st != 200:
        problems.append("exactly 11,000 steps must be accepted: %r" % r)
    problems += expect_error(d, P, {"query": "up", "start": "yesterday", "end": "20", "step": "1"}, 400,
                             "bad_data", 'invalid parameter "start"')
    problems += expect_error(d, P, {"query": "up", "start": "10", "end": "20", "step": "1.5h"}, 400,
                             "bad_data", 'invalid parameter "step"')
    problems += expect_error(d, "/api/v1/query", {"query": "up", "time": "nope"}, 400, "bad_data",
                             'invalid parameter "time"')
    problems += expect_error(d, "/api/v1/series", {"match[]": "up", "limit": "-1"}, 400, "bad_data",
                             "limit must be non-negative")
    # durations: Prometheus units and float seconds are both steps
    for step in ("1m", "60", "60.0", "1m0s", "60000ms"):
        st, j, r = d.api(P, {"query": "7", "start": "0", "end": "120", "step": step})
        if st != 200 or [v[0] for v in j["data"]["result"][0]["values"]] != [0, 60, 120]:
            problems.append("step=%s: want points at 0,60,120, got %r" % (step, r))
    # unknown parameters are ignored; an empty timeout means none
    st, j, r = d.api("/api/v1/query", {"query": "1", "time": "1", "namespace": "x", "dedup": "true",
                                       "timeout": ""})
    if st != 200:
        problems.append("unknown parameters / empty timeout: %r" % r)
    fail_if(problems)


def test_time_formats_and_post_form(ctx):
    d = ctx.daemon()
    T = 1_700_000_000_500  # 2023-11-14T22:13:20.5Z
    eq(d.write([({"__name__": "tf", "job": "x"}, [(T - 1000, 1.0), (T, 2.0), (T + 1000, 3.0)])]).status,
       204, "write")
    problems = []
    ref = None
    for t in ("1700000000.5", "1700000000.500", "2023-11-14T22:13:20.5Z", "2023-11-14T22:13:20.500Z",
              "2023-11-14T23:13:20.5+01:00", "2023-11-14T21:13:20.500-01:00", "1700000000.5004"):
        for method in ("GET", "POST"):
            st, j, r = q_instant(d, "tf", t, method)
            if st != 200:
                problems.append("time=%s (%s): %r" % (t, method, r))
                continue
            res = j["data"]["result"]
            if ref is None:
                ref = res
                if not res or res[0]["value"] != [decimal.Decimal("1700000000.5"), "2"]:
                    problems.append("time=%s: want value [1700000000.5,'2'], got %r" % (t, res))
            elif res != ref:
                problems.append("time=%s (%s) differs: %r vs %r" % (t, method, res, ref))
    # query_range with RFC 3339 and float start/end, GET and POST
    ref = None
    for start, end in (("1700000000.5", "1700000010.5"), ("2023-11-14T22:13:20.5Z", "2023-11-14T22:13:30.5Z")):
        for method in ("GET", "POST"):
            st, j, r = d.api("/api/v1/query_range", {"query": "tf", "start": start, "end": end, "step": "5"}, method)
            if st != 200:
                problems.append("query_range %s..%s (%s): %r" % (start, end, method, r))
                continue
            if ref is None:
                ref = j
            elif j != ref:
                problems.append("query_range %s..%s (%s) differs from the first form" % (start, end, method))
    # every form-capable endpoint answers a POST like the GET
    for path, params in [("/api/v1/query", [("query", "tf"), ("time", "1700000001")]),
                         ("/api/v1/query_range", [("query", "tf"), ("start", "1700000000"),
                                                  ("end", "1700000002"), ("step", "0.5")]),
                         ("/api/v1/series", [("match[]", "tf"), ("match[]", '{job="x"}')]),
                         ("/api/v1/labels", [("match[]", "tf")]),
                         ("/api/v1/labels", []),
                         ("/api/v1/format_query", [("query", 'tf{job="x"}')])]:
        g = d.api(path, params, "GET")
        p = d.api(path, params, "POST")
        if g[0] != 200 or (g[0], g[1]) != (p[0], p[1]):
            problems.append("%s %r: GET %r vs POST %r" % (path, params, g[2], p[2]))
    fail_if(problems)


def test_series_labels_and_values(ctx):
    d = ctx.daemon()
    problems = []
    # empty store: [] never null
    for path, params in [("/api/v1/labels", None), ("/api/v1/label/job/values", None),
                         ("/api/v1/label/__name__/values", None), ("/api/v1/series", {"match[]": ALL})]:
        st, j, r = d.api(path, params)
        if st != 200 or j.get("data") != []:
            problems.append("%s on an empty store: want data [], got %r" % (path, r))
        if b'"data":[]' not in r.decoded().replace(b" ", b""):
            problems.append("%s on an empty store: body %r" % (path, r.decoded()[:200]))
    st, j, r = q_instant(d, "nothing_here", "100")
    if st != 200 or j["data"] != {"resultType": "vector", "result": []}:
        problems.append("empty vector result: %r" % r)
    st, j, r = d.api("/api/v1/query_range", {"query": "nothing_here", "start": "1", "end": "2", "step": "1"})
    if st != 200 or j["data"] != {"resultType": "matrix", "result": []}:
        problems.append("empty matrix result: %r" % r)
    problems += expect_error(d, "/api/v1/series", None, 400, "bad_data", "no match[] parameter provided")
    problems += expect_error(d, "/api/v1/series", {"match[]": "up{"}, 400, "bad_data", 'invalid parameter "match[]"')
    problems += expect_error(d, "/api/v1/label/1bad/values", None, 400, "bad_data", "invalid label name")
    r = d.write([({"__name__": "old", "job": "zeta", "instance": "i1"}, [(T0 - 3_600_000, 1.0)]),
                 ({"__name__": "new", "job": "alpha", "zone": "z"}, [(T0, 1.0)]),
                 ({"__name__": "new", "job": "mid"}, [(T0, 2.0)]),
                 ({"__name__": "Upper", "job": "Beta"}, [(T0, 3.0)])])
    eq(r.status, 204, "write (%r)" % r)
    eq(ok_data(d, "/api/v1/labels"), ["__name__", "instance", "job", "zone"], "/api/v1/labels")
    eq(ok_data(d, "/api/v1/label/job/values"), ["Beta", "alpha", "mid", "zeta"], "/api/v1/label/job/values")
    eq(ok_data(d, "/api/v1/label/__name__/values"), ["Upper", "new", "old"], "/api/v1/label/__name__/values")
    eq(ok_data(d, "/api/v1/label/nope/values"), [], "/api/v1/label/nope/values")
    eq(ok_data(d, "/api/v1/labels", [("match[]", "new")]), ["__name__", "job", "zone"], "labels match[]=new")
    eq(ok_data(d, "/api/v1/label/job/values", [("match[]", "new"), ("match[]", "old")]),
       ["alpha", "mid", "zeta"], "label values with two match[]")
    # start/end restrict to series with samples in the range
    rng = {"start": ms_to_ts_str(T0 - 60_000), "end": ms_to_ts_str(T0 + 60_000)}
    eq(ok_data(d, "/api/v1/label/job/values", rng), ["Beta", "alpha", "mid"], "label values in [T-1m,T+1m]")
    eq(ok_data(d, "/api/v1/labels", rng), ["__name__", "job", "zone"], "labels in [T-1m,T+1m]")
    eq(series_list(d, ALL, **rng), [{"__name__": "Upper", "job": "Beta"}, {"__name__": "new", "job": "alpha", "zone": "z"},
                                    {"__name__": "new", "job": "mid"}], "series in [T-1m,T+1m]")
    eq(series_list(d, "old", start=ms_to_ts_str(T0 - 3_600_000), end=ms_to_ts_str(T0 - 3_600_000)),
       [{"__name__": "old", "instance": "i1", "job": "zeta"}], "series with start=end=its sample")
    eq(series_list(d, "nomatch"), [], "series for a selector matching nothing")
    got = ok_data(d, "/api/v1/series", [("match[]", ALL), ("limit", "2")])
    if len(got) != 2:
        problems.append("series limit=2 returned %d entries" % len(got))
    fail_if(problems)


def test_buildinfo_errors_and_content_types(ctx):
    d = ctx.daemon()
    problems = []
    st, j, r = d.api("/api/v1/status/buildinfo")
    if st != 200 or j.get("status") != "success":
        problems.append("buildinfo: %r" % r)
    else:
        data = j["data"]
        if "features" in data:
            problems.append("buildinfo has a 'features' key (Grafana would take us for Mimir)")
        for k in ("version", "revision", "branch", "buildUser", "buildDate", "goVersion"):
            if not isinstance(data.get(k), str):
                problems.append("buildinfo %s is not a string: %r" % (k, data.get(k)))
    for path, params in [("/api/v1/query", {"query": "1", "time": "1"}), ("/api/v1/labels", None),
                         ("/api/v1/status/buildinfo", None), ("/api/v1/metadata", None),
                         ("/api/v1/query", {"query": "1+", "time": "1"}), ("/api/v1/series", None)]:
        r = d.get(path, params)
        ct = r.header("Content-Type") or ""
        if not ct.startswith("application/json"):
            problems.append("%s: Content-Type %r" % (path, ct))
        try:
            j = json.loads(r.decoded())
        except ValueError:
            problems.append("%s: body is not JSON: %r" % (path, r.decoded()[:200]))
            continue
        if r.status == 200 and (j.get("status") != "success" or "data" not in j or "error" in j):
            problems.append("%s: bad success envelope %r" % (path, j))
        if r.status != 200 and (j.get("status") != "error" or "errorType" not in j or "error" not in j):
            problems.append("%s: bad error envelope %r" % (path, j))
    r = d.get("/api/v1/nope")
    if r.status != 404:
        problems.append("unknown API path: want 404, got %r" % r)
    r = d.get("/api/v1/write")
    if r.status != 405:
        problems.append("GET /api/v1/write: want 405, got %r" % r)
    r = d.get("/api/v1/query_exemplars", {"query": "up", "start": "1", "end": "2"})
    if r.status != 200 or r.json().get("data") != []:
        problems.append("query_exemplars: want data [], got %r" % r)
    r = d.get("/api/v1/rules")
    if r.status != 200 or r.json().get("data") != {"groups": []}:
        problems.append("rules: want {groups: []}, got %r" % r)
    st, j, r = d.api("/api/v1/format_query", {"query": 'foo{a="b"}'})
    if st != 200 or j.get("data") != 'foo{a="b"}':
        problems.append("format_query foo{a=\"b\"}: %r" % r)
    fail_if(problems)


def test_gzip_on_large_responses(ctx):
    d = ctx.daemon()
    series = [({"__name__": "gz", "i": "%03d" % i}, [(T0 + k * 15_000, float(i * k)) for k in range(40)])
              for i in range(50)]
    eq(d.write(series).status, 204, "write")
    params = {"query": "gz", "start": ms_to_ts_str(T0), "end": ms_to_ts_str(T0 + 600_000), "step": "15"}
    plain = d.get("/api/v1/query_range", params)
    zipped = d.get("/api/v1/query_range", params, headers={"Accept-Encoding": "gzip"})
    eq(plain.status, 200, "identity status")
    eq(zipped.status, 200, "gzip status")
    check((plain.header("Content-Encoding") or "identity") == "identity",
          "gzip without Accept-Encoding: %r" % plain.header("Content-Encoding"))
    eq(zipped.header("Content-Encoding"), "gzip", "Content-Encoding with Accept-Encoding: gzip")
    check(len(zipped.body) < len(plain.body), "gzip body not smaller")
    eq(gzip.decompress(zipped.body), plain.body, "gunzipped body")
    check((zipped.header("Content-Type") or "").startswith("application/json"), "Content-Type of the gzip answer")
    z0 = d.get("/api/v1/query_range", params, headers={"Accept-Encoding": "gzip;q=0"})
    check((z0.header("Content-Encoding") or "identity") == "identity", "gzip;q=0 must not gzip")


# ---------------------------------------------------------------------------------------------
# /metrics


def test_metrics_exposition_and_counters(ctx):
    d = ctx.daemon()
    problems = []
    r = d.get("/metrics")
    eq(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8", "/metrics Content-Type")
    ex = parse_exposition(r.text)
    problems += ["exposition: " + e for e in ex.errors]
    for name in ("augur_samples_appended_total", "augur_http_requests_total", "augur_samples_rejected_total",
                 "process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds",
                 "process_open_fds", "process_max_fds", "process_virtual_memory_bytes"):
        if name not in ex.types:
            problems.append("/metrics lacks a # TYPE for %s" % name)
    eq(ex.value("augur_samples_appended_total", default=None), 0, "augur_samples_appended_total at start")
    # write: 3 requests, 2+3+1 samples (a stale marker is a sample too)
    n = 0
    for series in ([({"__name__": "mx", "a": "1"}, [(T0, 1.0), (T0 + 1000, 2.0)])],
                   [({"__name__": "mx", "a": "2"}, [(T0, 1.0), (T0 + 1000, float("nan")), (T0 + 2000, STALE)])],
                   [({"__name__": "mx", "a": "1"}, [(T0 + 2000, 3.0)])]):
        eq(d.write(series).status, 204, "write")
        n += sum(len(s[1]) for s in series)
    ex = d.metrics()
    problems += ["exposition: " + e for e in ex.errors]
    if ex.value("augur_samples_appended_total") != n:
        problems.append("augur_samples_appended_total = %s, expected %d" % (ex.value("augur_samples_appended_total"), n))
    if ex.value("augur_http_requests_total", code="204", handler="/api/v1/write") != 3:
        problems.append("augur_http_requests_total{code=204,handler=/api/v1/write} = %s, expected 3"
                        % ex.value("augur_http_requests_total", code="204", handler="/api/v1/write"))
    if ex.value("augur_series") != 2:
        problems.append("augur_series = %s, expected 2" % ex.value("augur_series"))
    # rejections
    before = ex
    bad_labels = [({"__name__": "ok"}, [(T0, 1.0)]), ([("__name__", "m"), ("b", "1"), ("a", "1")], [(T0, 1.0), (T0 + 1, 2.0)])]
    eq(d.write(bad_labels).status, 400, "invalid labels write")
    eq(d.write([({"__name__": "mx", "a": "1"}, [(T0 - 3_600_000, 1.0), (T0 + 9000, 1.0)])]).status, 400, "ooo write")
    eq(d.write_raw(b"garbage!").status, 400, "garbage write")
    hist = {"labels": {"__name__": "h"}, "histograms": [{"count_int": 1, "sum": 1.0, "schema": 0, "timestamp": T0}]}
    eq(d.write_raw(body([hist])).status, 400, "histogram write")
    ex = d.metrics()
    problems += ["exposition: " + e for e in ex.errors]

    def delta(name, **l):
        return ex.value(name, **l) - before.value(name, **l)

    if delta("augur_samples_rejected_total", reason="out_of_order") != 2:
        problems.append("augur_samples_rejected_total{reason=out_of_order} rose by %s, expected 2 (the "
                        "samples of the refused request)" % delta("augur_samples_rejected_total", reason="out_of_order"))
    if delta("augur_samples_rejected_total", reason="invalid_labels") != 3:
        problems.append("augur_samples_rejected_total{reason=invalid_labels} rose by %s, expected 3 (every "
                        "sample of the refused request)" % delta("augur_samples_rejected_total", reason="invalid_labels"))
    if delta("augur_samples_rejected_total", reason="histogram") < 1:
        problems.append("augur_samples_rejected_total{reason=histogram} did not rise after a refused "
                        "native histogram")
    if delta("augur_http_requests_total", code="400", handler="/api/v1/write") != 4:
        problems.append("augur_http_requests_total{code=400,handler=/api/v1/write} rose by %s, expected 4"
                        % delta("augur_http_requests_total", code="400", handler="/api/v1/write"))
    if delta("augur_samples_appended_total") != 0:
        problems.append("augur_samples_appended_total changed after refused requests")
    # request counting for the query side
    d.get("/api/v1/query", {"query": "1", "time": "1"})
    d.get("/api/v1/query", {"query": "1+", "time": "1"})
    ex2 = d.metrics()
    for code in ("200", "400"):
        if ex2.value("augur_http_requests_total", code=code, handler="/api/v1/query") < 1:
            problems.append("augur_http_requests_total{code=%s,handler=/api/v1/query} missing" % code)
    fail_if(problems)


# ---------------------------------------------------------------------------------------------
# lifecycle


def test_health_ready_reload_endpoints(ctx):
    d = ctx.daemon()
    problems = []
    for path in ("/-/healthy", "/-/ready"):
        r = d.get(path)
        if r.status != 200:
            problems.append("GET %s: %r" % (path, r))
    r = http_head(d, "/-/healthy")
    if r != 200:
        problems.append("HEAD /-/healthy: %r" % r)
    r = d.post("/-/reload", b"")
    if r.status != 200:
        problems.append("POST /-/reload without a config file: %r" % r)
    r = d.get("/-/reload")
    if r.status != 405:
        problems.append("GET /-/reload: want 405, got %r" % r)
    fail_if(problems)


def http_head(d, path):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    try:
        c.request("HEAD", path)
        return c.getresponse().status
    finally:
        c.close()


def test_reload_config_file_broken_config_and_sighup(ctx):
    cfg = ctx.path("augur.yml")

    def put(text):
        with open(cfg, "w") as f:
            f.write(text)

    put("query:\n  lookback_delta: 5m\n")
    d = ctx.daemon(config_file=cfg)
    T = T0
    eq(d.write([({"__name__": "rl"}, [(T, 1.0)])]).status, 204, "write")

    def visible_at(dt):
        return bool(instant_vector(d, "rl", T + dt))

    check(visible_at(120_000), "sample visible 2m later with lookback 5m")
    problems = []
    put("query:\n  lookback_delta: 1m\n")
    r = d.post("/-/reload", b"")
    if r.status != 200:
        problems.append("POST /-/reload with a valid file: %r" % r)
    if visible_at(120_000):
        problems.append("after reloading lookback_delta: 1m the sample is still visible 2m later")
    for broken in ("query: [\n", "querry:\n  lookback_delta: 5m\n", "query:\n  lookback_delta: 1.5h\n"):
        put(broken)
        r = d.post("/-/reload", b"")
        if r.status != 500 or "failed to reload config" not in r.text:
            problems.append("reload of %r: want 500 'failed to reload config: ...', got %r" % (broken, r))
        if d.get("/-/ready").status != 200:
            problems.append("not ready after a failed reload")
        if visible_at(120_000):
            problems.append("after the failed reload of %r the previous lookback (1m) is not kept" % broken)
        if d.metrics().value("augur_config_last_reload_successful", default=None) != 0:
            problems.append("augur_config_last_reload_successful not 0 after a failed reload")
    # SIGHUP with a fixed file
    put("query:\n  lookback_delta: 5m\n")
    n0 = d.log().count("configuration reloaded")
    d.signal(signal.SIGHUP)
    try:
        wait_until(lambda: d.log().count("configuration reloaded") > n0, 10, what="'configuration reloaded' in the log")
    except AssertionError as e:
        problems.append("SIGHUP: %s" % e)
    if not visible_at(120_000):
        problems.append("after SIGHUP with lookback_delta: 5m the sample is not visible 2m later")
    if d.metrics().value("augur_config_last_reload_successful", default=None) != 1:
        problems.append("augur_config_last_reload_successful not 1 after a good reload")
    if d.get("/-/healthy").status != 200:
        problems.append("not healthy after the reloads")
    fail_if(problems)


def test_sigterm_and_sigint_exit_cleanly_and_keep_data(ctx):
    d = ctx.daemon()
    eq(d.write([({"__name__": "keep", "job": "x"}, [(T0, 1.5), (T0 + 1000, STALE)])]).status, 204, "write")
    rc = d.stop()  # SIGTERM; checks exit 0 and the sanitizer log
    eq(rc, 0, "exit code after SIGTERM")
    check("stopped cleanly" in d.log(), "log lacks 'stopped cleanly'")
    d.start()
    eq(raw(d, "keep"), {(("__name__", "keep"), ("job", "x")): [(T0, "1.5")]}, "data after restart")
    eq(instant_vector(d, "keep", T0 + 2000), {}, "stale marker still ends the series after restart")
    eq(d.write([({"__name__": "keep", "job": "x"}, [(T0 + 2000, 2.5)])]).status, 204, "write after restart")
    d.signal(signal.SIGINT)
    rc = d.proc.wait(timeout=30)
    d.reaped = True
    d.check_sanitizers()
    eq(rc, 0, "exit code after SIGINT")
    d.start()
    eq(raw(d, "keep"), {(("__name__", "keep"), ("job", "x")): [(T0, "1.5"), (T0 + 2000, "2.5")]},
       "data after the second restart")


def test_second_daemon_on_the_same_address_fails(ctx):
    # A second augurd (another data dir) must not share the first one's port: with SO_REUSEPORT
    # the kernel would split remote-write connections between the two stores.
    d = ctx.daemon()
    eq(d.write([({"__name__": "first", "job": "x"}, [(T0, 1.0)])]).status, 204, "write")
    d2 = ctx.daemon(start=False)
    d2.start(port=d.port, wait_ready=False)
    rc = d2.proc.wait(timeout=30)
    d2.reaped = True
    check(rc != 0, "second daemon on port %d exited with %s" % (d.port, rc))
    check("Address already in use" in d2.run_log(), "log lacks the reason:\n" + d2.run_log())
    for _ in range(20):  # every connection still reaches the first daemon
        eq(raw(d, "first"), {(("__name__", "first"), ("job", "x")): [(T0, "1")]}, "first daemon's data")


# ---------------------------------------------------------------------------------------------
# encodings, sizes, extremes and concurrency


def test_json_escaping_and_url_encoding(ctx):
    d = ctx.daemon()
    weird = ['a"b', "back\\slash", "new\nline", "tab\there", "ctl\x01\x1f\x7f", "a b+c%20d&e=f#g?h",
             "\u2028sep\u2029", "emoji \U0001F600", "<script>&amp;", "{}[],:"]
    series = [({"__name__": "esc", "v": w}, [(T0, float(i))]) for i, w in enumerate(weird)]
    eq(d.write(series).status, 204, "write")
    problems = []
    got = ok_data(d, "/api/v1/label/v/values")
    if got != sorted(weird, key=lambda x: x.encode()):
        problems.append("label values round trip:\n    want %r\n    got  %r" % (sorted(weird, key=lambda x: x.encode()), got))
    got = sorted(x["v"] for x in series_list(d, "esc"))
    if got != sorted(weird):
        problems.append("series round trip: %r" % got)
    # each value selected by an equality matcher through GET and POST (PromQL string escapes)
    for i, w in enumerate(weird):
        lit = json.dumps(w, ensure_ascii=False)  # a Go-compatible double-quoted string literal
        for method in ("GET", "POST"):
            st, j, r = q_instant(d, "esc{v=%s}" % lit, ms_to_ts_str(T0), method)
            if st != 200 or len(j["data"]["result"]) != 1 or j["data"]["result"][0]["metric"]["v"] != w:
                problems.append("esc{v=%s} (%s): %r" % (lit, method, r))
        st, j, r = d.api("/api/v1/series", [("match[]", "esc{v=%s}" % lit)], "POST")
        if st != 200 or [x["v"] for x in j["data"]] != [w]:
            problems.append("POST series match[]=esc{v=%s}: %r" % (lit, r))
    fail_if(problems)


def test_snappy_literal_forms_and_copies(ctx):
    d = ctx.daemon()
    series = [({"__name__": "sz", "i": "%05d" % i, "pad": "p" * (i % 50 + 1)}, [(T0, float(i))])
              for i in range(1200)]
    raw_pb = encode_write_request(series)
    check(len(raw_pb) > 65537 + 10, "test bug: only %d bytes" % len(raw_pb))
    problems = []
    variants = [("one literal (3-byte length form)", snappy_compress(raw_pb, copies=False)),
                ("60-byte literals (1-byte tag form)", snappy_compress(raw_pb, copies=False, literal_max=60)),
                ("61-byte literals (1-byte length form)", snappy_compress(raw_pb, copies=False, literal_max=61)),
                ("257-byte literals (2-byte length form)", snappy_compress(raw_pb, copies=False, literal_max=257)),
                ("65537-byte literals (3-byte length form)", snappy_compress(raw_pb, copies=False, literal_max=65537)),
                ("literals and copies", snappy_compress(raw_pb, copies=True))]
    for why, b in variants:
        check(snappy_decompress(b) == raw_pb, "test bug: %s does not round-trip" % why)
        r = d.write_raw(b)
        if r.status != 204:
            problems.append("%s (%d bytes): %r" % (why, len(b), r))
    got = raw(d, "sz")
    if len(got) != 1200 or any(v != [(T0, go_float(float(int(dict(k)["i"]))))] for k, v in got.items()):
        problems.append("data after the writes: %d series" % len(got))
    eq(appended(d), 1200, "augur_samples_appended_total (the rest were exact resends)")
    fail_if(problems)


def test_big_requests_and_chunk_boundaries(ctx):
    d = ctx.daemon()
    # Prometheus' default max_samples_per_send is 2000: one request of 2000 series
    wide = [({"__name__": "wide", "i": str(i)}, [(T0 + 1000, float(i) / 7)]) for i in range(2000)]
    eq(d.write(wide).status, 204, "2000-series request")
    got = raw(d, "wide")
    eq(len(got), 2000, "series of the 2000-series request")
    bad = [k for k, v in got.items() if v != [(T0 + 1000, go_float(int(dict(k)["i"]) / 7))]]
    check(not bad, "wrong values in %r" % bad[:3])
    # one series with 20000 samples in one request (crosses many chunk boundaries), then more
    # requests of 119/1/120/121 samples around the default 120-sample chunk size
    s = [(T0 + k * 15, (k * 0.37) % 11 - 5) for k in range(20000)]
    eq(d.write([({"__name__": "long"}, s)]).status, 204, "20000-sample request")
    t = s[-1][0]
    for n in (119, 1, 120, 121, 1, 239):
        more = [(t + 15 * (k + 1), float(k)) for k in range(n)]
        t = more[-1][0]
        s += more
        eq(d.write([({"__name__": "long"}, more)]).status, 204, "%d-sample request" % n)
    want = [(ts, go_float(v)) for ts, v in s]
    got = raw(d, "long")[(("__name__", "long"),)]
    if got != want:
        firstdiff = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        raise AssertionError("long series: %d points, want %d; first difference at #%d: got %r want %r" % (
            len(got), len(want), firstdiff, got[firstdiff:firstdiff + 2], want[firstdiff:firstdiff + 2]))
    # after a restart (head rebuilt from LMDB) the same
    d.stop()
    d.start()
    eq(raw(d, "long")[(("__name__", "long"),)], want, "long series after restart")
    eq(len(raw(d, "wide")), 2000, "wide series after restart")


def test_large_answers_render_whole(ctx):
    """Answers of 8,192 points or more are rendered by two threads, each writing half of the
    points: the halves must join into the same JSON wherever the middle falls (between series,
    inside one, in a vector)."""
    d = ctx.daemon()
    # 3 series x 3001 points: the middle (4501) falls inside the second series
    series = [({"__name__": "big_m", "s": str(j)},
               [(T0 + k * 1000, (k * (j + 3)) % 997 / 8) for k in range(3001)]) for j in range(3)]
    eq(d.write(series).status, 204, "write big_m")
    data = ok_data(d, "/api/v1/query_range", {"query": "big_m", "start": ms_to_ts_str(T0),
                                              "end": ms_to_ts_str(T0 + 3000 * 1000), "step": "1"})
    eq(len(data["result"]), 3, "series of the matrix")
    for (labels, smp), got in zip(series, data["result"]):
        eq(got["metric"], labels, "labels of series %s" % labels["s"])
        eq(points(got["values"]), [(t, go_float(v)) for t, v in smp], "points of %r" % labels)
    # a vector of 9,000 series (2,000 per request, as Prometheus sends them)
    wide = [({"__name__": "big_v", "i": "%05d" % i}, [(T0, i / 4)]) for i in range(9000)]
    for k in range(0, 9000, 2000):
        eq(d.write(wide[k:k + 2000]).status, 204, "write big_v")
    got = instant_vector(d, "big_v", T0)
    eq(len(got), 9000, "series of the vector")
    bad = [k for k, v in got.items() if v != go_float(int(dict(k)["i"]) / 4)]
    check(not bad, "wrong values in %r" % bad[:3])
    data = ok_data(d, "/api/v1/query", {"query": "big_v", "time": ms_to_ts_str(T0)})
    eq([s["metric"]["i"] for s in data["result"]], ["%05d" % i for i in range(9000)],
       "vector order")


def test_extreme_timestamps_and_query_times(ctx):
    """Robustness: extreme sample timestamps and query times must give 2xx/4xx, never a 5xx,
    a crash or (under UBSan) an overflow."""
    d = ctx.daemon()
    I64MAX, I64MIN = 2 ** 63 - 1, -2 ** 63
    problems = []
    for ts in (I64MIN, I64MIN + 1, -2 ** 62, 2 ** 62, I64MAX - 1, I64MAX):
        r = d.write([({"__name__": "ext", "t": str(ts)}, [(ts, 1.0)])])
        if r.status not in (204, 400):
            problems.append("sample at %d: %r" % (ts, r))
        elif r.status == 400 and "duplicate" in r.text:
            problems.append("first sample of a new series at %d refused as a duplicate: %r" % (ts, r.text.strip()))
    r = d.write([({"__name__": "ext_seq"}, [(I64MIN, 1.0), (0, 2.0), (I64MAX, 3.0)])])
    if r.status not in (204, 400):
        problems.append("samples at min, 0, max: %r" % r)
    min_s, max_s = "-292273086-05-16T16:47:06Z", "292277026596-12-04T15:30:07.999999999Z"
    queries = [("/api/v1/query", {"query": q, "time": t})
               for q in ("ext", "ext[1h]", "ext offset 1h", "ext[5m] offset -1h", "{__name__=~\"ext.*\"}[290y]")
               for t in ("0", "-1", "9223372036854775.807", "-9223372036854775.808", "1e18", "-1e18", "1e300",
                         min_s, max_s)]
    queries += [("/api/v1/query_range", {"query": "ext", "start": a, "end": b, "step": st})
                for a, b, st in ((min_s, max_s, "1e15"), ("-1e18", "1e18", "1e14"), ("0", "1e300", "1e296"),
                                 ("9223372036854775", "9223372036854775.807", "0.001"), (min_s, min_s, "1"),
                                 (max_s, max_s, "1"), ("-9223372036854775.808", "-9223372036854775.8", "0.001"))]
    queries += [(p, [("match[]", '{__name__=~"ext.*"}'), ("start", a), ("end", b)])
                for p in ("/api/v1/series", "/api/v1/labels", "/api/v1/label/t/values")
                for a, b in ((min_s, max_s), ("-1e300", "1e300"), ("0", "0"), (max_s, max_s))]
    for path, params in queries:
        r = d.get(path, params)
        if r.status >= 500 or r.status not in (200, 400, 422):
            problems.append("%s %r: %r" % (path, params, r))
        elif r.status == 400 and r.json().get("errorType") != "bad_data":
            problems.append("%s %r: 400 without bad_data: %r" % (path, params, r))
    if d.get("/-/healthy").status != 200:
        problems.append("not healthy after the extreme requests")
    fail_if(problems)


def test_invalid_regex_and_empty_matchers(ctx):
    d = ctx.daemon()
    problems = []
    for q in ('x{a=~"("}', 'x{a!~"[z-a]"}', '{__name__=~"(?P<n"}', '{a=""}', '{a=~".*"}', '{a!~".+"}', "{}"):
        problems += expect_error(d, "/api/v1/query", {"query": q, "time": "1"}, 400, "bad_data",
                                 'invalid parameter "query"')
    problems += expect_error(d, "/api/v1/series", {"match[]": '{a=~".*"}'}, 400, "bad_data", None)
    fail_if(problems)


def test_reads_are_consistent_while_writing(ctx):
    """Every read sees whole requests only (a request's samples, across all its series, appear
    together), every acknowledged request, no duplicates and no holes - including while chunks
    of 120 samples are sealed underneath."""
    import threading
    d = ctx.daemon(log_level="info")
    NS, PER = 10, 5
    state = {"acked": 0, "stop": False, "errors": []}
    lock = threading.Lock()

    def writer():
        k = 0
        while not state["stop"]:
            series = [({"__name__": "cons", "s": str(i)},
                       [(T0 + (k * PER + j) * 1000, float((k * PER + j) * 10 + i)) for j in range(PER)])
                      for i in range(NS)]
            r = d.write(series, compress_copies=False)
            if r.status != 204:
                state["errors"].append("write #%d: %r" % (k, r))
                return
            k += 1
            with lock:
                state["acked"] = k

    def reader(n_reads):
        for _ in range(n_reads):
            with lock:
                before = state["acked"]
            r = d.get("/api/v1/query", {"query": "cons[1d]", "time": ms_to_ts_str(T0 + 80_000_000)})
            with lock:
                after = state["acked"]
            if r.status != 200:
                state["errors"].append("read: %r" % r)
                return
            res = r.json()["data"]["result"]
            counts = set()
            for s in res:
                i = int(s["metric"]["s"])
                pts = [(int(round(t * 1000)), v) for t, v in s["values"]]
                n = len(pts)
                counts.add(n)
                want = [(T0 + m * 1000, go_float(float(m * 10 + i))) for m in range(n)]
                if pts != want:
                    bad = next(x for x in range(n) if pts[x] != want[x])
                    state["errors"].append("series %d: not a contiguous prefix at #%d: %r vs %r" % (i, bad, pts[bad], want[bad]))
                    return
            if before and len(res) != NS:
                state["errors"].append("read saw %d of %d series after %d acknowledged requests" % (len(res), NS, before))
                return
            if len(counts) > 1:
                state["errors"].append("read saw a partly visible request: sample counts per series %s" % sorted(counts))
                return
            n = counts.pop() if counts else 0
            if n % PER or not before <= n // PER <= after + 1:
                state["errors"].append("read saw %d samples per series; acknowledged requests were %d..%d" % (n, before, after))
                return

    w = threading.Thread(target=writer, daemon=True)
    readers = [threading.Thread(target=reader, args=(60,), daemon=True) for _ in range(2)]
    w.start()
    for t in readers:
        t.start()
    for t in readers:
        t.join(120)
    state["stop"] = True
    w.join(60)
    fail_if(state["errors"][:5])
    check(state["acked"] >= 30, "only %d requests acknowledged: too few to cross chunk boundaries" % state["acked"])


def test_writes_and_probes_are_not_queued_behind_slow_queries(ctx):
    """Remote write, /-/ready and /metrics have their own worker lane: with more slow queries in
    flight than there are query workers, a write is acknowledged (and the probes answer) before
    any of those queries has finished. Ordering, not time, is asserted."""
    import threading
    d = ctx.daemon()
    slow = "count_over_time((vector(1) > 0)[60d:1s])"  # 5 million subquery steps each
    n = 12  # more than the query lane's workers on a 2-CPU machine (max(8, 4 x CPUs))
    done, errors = [], []
    lock = threading.Lock()

    def query():
        r = d.get("/api/v1/query", {"query": slow, "time": "1700000000"}, timeout=300)
        with lock:
            done.append(r.status)
            if r.status != 200:
                errors.append(r)

    ts = [threading.Thread(target=query, daemon=True) for _ in range(n)]
    for t in ts:
        t.start()
    # Wait until the query workers are all busy: 8 handlers running plus this scrape.
    wait_until(lambda: d.metrics().value("augur_http_requests_in_flight", default=0) >= 9,
               60, what="the query workers busy")
    r = d.write([({"__name__": "during_slow_queries"}, [(T0, 1.0)])])
    with lock:
        finished_before_write = len(done)
    assert r.status == 204, r
    ready = d.get("/-/ready")
    with lock:
        finished_before_ready = len(done)
    assert ready.status == 200, ready
    for t in ts:
        t.join(300)
    assert not errors, errors[:2]
    assert len(done) == n
    assert finished_before_write == 0, (
        "the write waited for %d slow queries to finish" % finished_before_write)
    assert finished_before_ready == 0, (
        "/-/ready waited for %d slow queries to finish" % finished_before_ready)


def test_series_limits_refuse_new_series_with_400_and_reload(ctx):
    """limits.max_series_per_metric and limits.max_series: a request creating one series too many
    gets 400 naming the limit, changes nothing, and is counted as series_limit; stored series
    keep taking samples; a reload that raises the limit lets the series in."""
    cfg = ctx.path("augur.yml")
    with open(cfg, "w") as f:
        f.write("limits:\n  max_series: 3\n  max_series_per_metric: 2\n")
    d = ctx.daemon(config_file=cfg)
    for i in (1, 2):
        eq(d.write([({"__name__": "lim", "i": str(i)}, [(T0, 1.0)])]).status, 204, "series %d" % i)
    r = d.write([({"__name__": "other"}, [(T0, 1.0)]), ({"__name__": "lim", "i": "3"}, [(T0, 1.0)])])
    eq(r.status, 400, "third series of lim")
    check("limits.max_series_per_metric is 2" in r.text, "message names the limit: %r" % r.text)
    eq(instant_vector(d, "other", T0), {}, "nothing of the refused request is stored")
    eq(d.write([({"__name__": "lim", "i": "1"}, [(T0 + 1000, 2.0)])]).status, 204,
       "a stored series still takes samples")
    eq(d.write([({"__name__": "other"}, [(T0, 1.0)])]).status, 204, "third series overall")
    r = d.write([({"__name__": "fourth"}, [(T0, 1.0)])])
    eq(r.status, 400, "fourth series")
    check("limits.max_series is 3" in r.text, "message names the total limit: %r" % r.text)
    rej = d.metrics().value("augur_samples_rejected_total", reason="series_limit")
    check(rej == 3, "the 3 samples of the two refused requests counted as series_limit, got %r" % rej)
    with open(cfg, "w") as f:
        f.write("limits:\n  max_series: 0\n  max_series_per_metric: 3\n")
    eq(d.post("/-/reload", b"").status, 200, "reload")
    eq(d.write([({"__name__": "fourth"}, [(T0, 1.0)])]).status, 204, "after raising max_series")
    eq(d.write([({"__name__": "lim", "i": "3"}, [(T0, 1.0)])]).status, 204, "after raising per metric")
    eq(d.write([({"__name__": "lim", "i": "4"}, [(T0, 1.0)])]).status, 400, "per-metric limit 3")


def test_out_of_order_window_merges_and_rejects_older(ctx):
    """storage.out_of_order_window (10m here): samples older than their series' newest but within
    the window are merged wherever their time falls - in the open head chunk, inside a sealed
    chunk, in the gap between two sealed chunks, before the series' first sample - and queries
    return every sample in time order, also after a kill -9 (WAL replay) and after a clean
    restart; a sample beyond the window, or a different value at a stored timestamp, refuses the
    request with 400; an out-of-order resend is a duplicate."""
    d = ctx.daemon(args=["--storage.out-of-order-window=10m"])
    name = {"__name__": "m_win", "job": "x"}
    base = T0 + 3_600_000
    # 300 samples 1.5 s apart: two sealed chunks of 120 and a head of 60.
    first = [(base + k * 1500, float(k)) for k in range(300)]
    for k in range(0, 300, 50):
        eq(d.write([(name, first[k:k + 50])]).status, 204, "in-order write %d" % k)
    newest = first[-1][0]
    ooo = [
        (newest - 700, 1001.5),          # in the head chunk
        (base + 5 * 1500 + 700, 7.25),   # inside the first sealed chunk
        (base + 150 * 1500 + 700, 8.5),  # inside the second sealed chunk
        (base - 60_000, -1.0),         # before the series' first sample
        (base - 30_000, -2.0),         # between that and the first chunk
    ]
    for i, (t, v) in enumerate(ooo):
        check(newest - t < 600_000, "case %d is inside the window" % i)
        eq(d.write([(name, [(t, v)])]).status, 204, "out-of-order sample %d" % i)
    eq(d.write([(name, [ooo[1]])]).status, 204, "an out-of-order resend is a duplicate")
    r = d.write([(name, [(ooo[1][0], 99.0)])])
    eq(r.status, 400, "a different value at a stored out-of-order timestamp")
    r = d.write([({"__name__": "m_new"}, [(base, 1.0)]), (name, [(newest - 601_000, 5.0)])])
    eq(r.status, 400, "beyond the window")
    check("out_of_order_window" in r.text, "the message names the setting: %r" % r.text)
    want = sorted(first + ooo)
    key = (("__name__", "m_win"), ("job", "x"))

    def expect(what):
        got = raw(d, "m_win")
        eq(got.get(key), [(t, go_float(v)) for t, v in want], what)

    expect("after the out-of-order writes")
    check("m_new" not in ok_data(d, "/api/v1/label/__name__/values"), "refused request left a series")
    d.kill9()
    d.start()
    expect("after kill -9 (WAL replay)")
    d.stop()
    d.start()
    expect("after a clean restart (checkpoint)")
    eq(d.write([(name, [(newest - 400, 3.5)])]).status, 204, "out-of-order into the reloaded head")
    want = sorted(want + [(newest - 400, 3.5)])
    expect("after one more out-of-order write")
