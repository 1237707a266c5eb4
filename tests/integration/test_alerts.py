"""test_alerts.py - alert rules pushed to the real Alertmanager (Debian's prometheus-alertmanager,
0.25), which shows them firing, routes them to a webhook receiver in the test, and resolves them;
/api/v1/alerts and /api/v1/rules in Prometheus' format; a broken alerts: section is refused.
"""
import json
import os
import shutil

from harness import PostSink, eq, free_port, http_get, now_ms, wait_until

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


class Sink(PostSink):
    """Receives Alertmanager's webhook notifications."""

    def statuses(self):
        return [(n["status"], [a["labels"].get("alertname") for a in n["alerts"]], n)
                for n in (json.loads(body) for _, _, body in self.snapshot())]


def start_alertmanager(ctx, sink_port):
    port = free_port()
    cfg = ctx.path("alertmanager.yml")
    with open(cfg, "w") as f:
        f.write("route:\n  receiver: sink\n  group_by: [alertname]\n  group_wait: 1s\n"
                "  group_interval: 1s\n  repeat_interval: 1h\n"
                "receivers:\n  - name: sink\n    webhook_configs:\n"
                "      - url: http://127.0.0.1:%d/\n        send_resolved: true\n" % sink_port)
    data = ctx.path("am-data")
    os.makedirs(data, exist_ok=True)
    ctx.spawn("alertmanager", [ALERTMANAGER, "--config.file=%s" % cfg, "--storage.path=%s" % data,
                               "--web.listen-address=127.0.0.1:%d" % port,
                               "--cluster.listen-address="])
    base = "http://127.0.0.1:%d" % port

    def ready():
        return http_get(base + "/-/ready", timeout=2).status == 200
    wait_until(ready, 60, 0.2, "alertmanager /-/ready")
    return base


def am_alerts(base):
    r = http_get(base + "/api/v2/alerts", timeout=5)
    eq(r.status, 200, "alertmanager /api/v2/alerts")
    return json.loads(r.body)


RULES = """alerts:
  - name: HighTemp
    expr: temp > 50
    for: 2s
    interval: 1s
    labels:
      severity: page
    annotations:
      summary: "temperature {{ $value }} in room {{ $labels.room }}"
"""


def test_alerts_fire_and_resolve_in_alertmanager(ctx):
    sink = Sink()
    try:
        am = start_alertmanager(ctx, sink.port)
        cfg = ctx.path("augur.yml")
        with open(cfg, "w") as f:
            f.write("storage:\n  retention: 0\nalerting:\n  alertmanager_url: %s\n"
                    "  resend_delay: 2s\n" % am + RULES)
        d = ctx.daemon(config_file=cfg)
        r = d.write([({"__name__": "temp", "room": "a"}, [(now_ms(), 80.0)]),
                     ({"__name__": "temp", "room": "b"}, [(now_ms(), 20.0)])])
        eq(r.status, 204, "write")
        # pending first (for: 2s), then firing
        def state():
            st, j, _ = d.api("/api/v1/alerts")
            a = j["data"]["alerts"]
            return a[0]["state"] if a else None
        wait_until(lambda: state() == "pending", 10, 0.1, what="a pending alert")
        wait_until(lambda: state() == "firing", 10, 0.1, what="the alert firing")
        st, j, _ = d.api("/api/v1/alerts")
        a = j["data"]["alerts"]
        eq(len(a), 1, "one alert (room b is below the threshold)")
        eq(a[0]["labels"], {"alertname": "HighTemp", "room": "a", "severity": "page"}, "labels")
        eq(a[0]["annotations"], {"summary": "temperature 80 in room a"}, "annotations")
        eq(a[0]["value"], "8e+01", "value as Prometheus formats it")
        st, j, _ = d.api("/api/v1/rules")
        rule = j["data"]["groups"][0]["rules"][0]
        eq((rule["name"], rule["state"], rule["health"], rule["type"], rule["query"]),
           ("HighTemp", "firing", "ok", "alerting", "temp > 50"), "rule")
        # Alertmanager has it, firing, and routed it to the sink.
        def in_am():
            al = [x for x in am_alerts(am) if x["labels"].get("alertname") == "HighTemp"]
            return al if al and al[0]["status"]["state"] == "active" else None
        al = wait_until(in_am, 20, 0.2, what="the alert in Alertmanager")
        eq(al[0]["labels"]["room"], "a", "labels in Alertmanager")
        assert al[0]["generatorURL"].startswith("http://127.0.0.1:") and "g0.expr=temp" in \
            al[0]["generatorURL"], al[0]["generatorURL"]
        wait_until(lambda: any(s == "firing" for s, _, _ in sink.statuses()), 20, 0.2,
                   what="a firing notification at the receiver")
        # The condition ends: the alert resolves in augurd, in Alertmanager and at the receiver.
        r = d.write([({"__name__": "temp", "room": "a"}, [(now_ms(), 10.0)])])
        eq(r.status, 204, "write")
        wait_until(lambda: state() is None, 10, 0.1, what="no active alert in augurd")
        wait_until(lambda: any(s == "resolved" for s, _, _ in sink.statuses()), 30, 0.2,
                   what="a resolved notification at the receiver")
        wait_until(lambda: not in_am(), 10, 0.2, what="the alert inactive in Alertmanager")
        m = d.metrics()
        assert m.value("augur_notifications_sent_total", default=0) >= 2
        eq(m.value("augur_notifications_errors_total", default=-1), 0, "notification errors")
    finally:
        sink.close()


def test_alert_config_errors(ctx):
    cfg = ctx.path("augur.yml")
    with open(cfg, "w") as f:
        f.write("storage:\n  retention: 0\n" + RULES)
    d = ctx.daemon(config_file=cfg)
    for broken, where, what in (
            (RULES.replace("temp > 50", "temp >"), "augur.yml:5:11", "alert field \"expr\""),
            (RULES.replace("for: 2s", "for: soon"), "augur.yml:6:10", "is not a duration"),
            (RULES.replace("severity: page", "__x: page"), "augur.yml:9:7", "not a name"),
            (RULES + "  - name: HighTemp\n    expr: up\n", "augur.yml:12:5", "used twice"),
            ("alerting:\n  alertmanager_url: ftp://x\n", "augur.yml:4:21", "must start with")):
        with open(cfg, "w") as f:
            f.write("storage:\n  retention: 0\n" + broken)
        r = d.post("/-/reload", b"")
        assert r.status == 500 and where in r.text and what in r.text, (where, r.text)
        st, j, _ = d.api("/api/v1/rules")
        eq([g["name"] for g in j["data"]["groups"]], ["HighTemp"], "rules after a failed reload")
