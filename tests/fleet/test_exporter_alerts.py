"""The metrics endpoint over real HTTP on 127.0.0.1, and alerts POSTed to a webhook server the
test starts: each alert once, again only after the interval, and once more when it clears."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from app.context import AppContext
from app.fleet import Alert, Alerter, MetricsServer, Readiness, RigReporter, alerts_for, parse_metrics


def get(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.headers["Content-Type"], r.read().decode()


def test_metrics_served_on_localhost_and_updated(standin_rig8):
    srv = MetricsServer("127.0.0.1", 0).start()
    try:
        status, ctype, body = get(srv.url)
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4") and body.startswith("#")
        srv.update(standin_rig8.snapshot())
        body = get(srv.url)[2]
        assert sum(1 for s in parse_metrics(body) if s.name == "kminer_device_info") == 9
        standin_rig8.devices.set_paused("cuda:7", True)
        srv.update(standin_rig8.snapshot())
        on = {s.labels["device"]: s.labels["state"] for s in parse_metrics(get(srv.url)[2])
              if s.name == "kminer_device_state" and s.value == 1}
        assert on["cuda:7"] == "paused"
        with pytest.raises(urllib.error.HTTPError) as e:
            get(srv.url.replace("/metrics", "/wallet"))
        assert e.value.code == 404
        port = srv.port
    finally:
        srv.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_metrics_are_off_by_default_and_a_taken_port_is_an_error():
    ctx = AppContext.open()
    assert ctx.settings.fleet.metrics_port == 0 and ctx.settings.fleet.metrics_host == "127.0.0.1"
    assert RigReporter(ctx, readiness=lambda _m: None).start() is None
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    ctx.settings.fleet.metrics_port = busy.getsockname()[1]
    try:
        with pytest.raises(OSError):
            RigReporter(ctx, readiness=lambda _m: None).start()
    finally:
        busy.close()


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_alerts_post_once_repeat_after_the_interval_and_resolve(webhook):
    clock = Clock()
    a = Alerter(lambda: webhook.url, lambda: 600.0, clock=clock)
    hung = Alert("device_hung", "rig-01", "cuda:3", "held by the watchdog: GPU is lost (fell off the bus)")
    hot = Alert("overheating", "rig-01", "cuda:1", "temperature 91 °C above limit 83 °C")
    assert [s for s, _ in a.check([hung])] == ["firing"]
    clock.t += 30
    assert a.check([hung, hot]) == [("firing", hot)]  # hung already sent: not again within 600 s
    clock.t += 30
    assert a.check([hung, hot]) == []
    clock.t += 600
    assert [x.subject for _, x in a.check([hung, hot])] == ["cuda:3", "cuda:1"]  # still there after the interval
    assert a.check([hot]) == [("resolved", hung)]
    assert a.flush(10)
    a.close()
    kinds = [(b["state"], b["kind"], b["subject"]) for b in webhook.bodies]
    assert kinds == [("firing", "device_hung", "cuda:3"), ("firing", "overheating", "cuda:1"),
                     ("firing", "device_hung", "cuda:3"), ("firing", "overheating", "cuda:1"),
                     ("resolved", "device_hung", "cuda:3")]
    first = webhook.bodies[0]
    assert first["text"] == first["content"] == \
        "[kminer] rig-01 cuda:3 hung: held by the watchdog: GPU is lost (fell off the bus)"
    assert first["rig"] == "rig-01" and isinstance(first["time"], float)


def test_a_dead_or_refusing_webhook_never_stops_the_caller(webhook, caplog):
    webhook.status = 500
    a = Alerter(lambda: webhook.url, lambda: 1.0)
    a.check([Alert("wallet_locked", "r", "r", "the wallet is locked")])
    assert a.flush(10)
    dead = Alerter(lambda: "http://127.0.0.1:9/nothing", lambda: 1.0, timeout_s=2)
    dead.check([Alert("rig_offline", "r", "r", "x")])
    assert dead.flush(10)
    a.close()
    dead.close()
    assert "alert webhook failed: HTTP Error 500" in caplog.text and "Connection refused" in caplog.text


def test_alert_conditions_from_a_rig_snapshot(standin_rig8):
    rig = standin_rig8
    rig.nv.lose(0)
    rig.nv.set_reading(4, temp_c=95)
    snap = rig.snapshot(Readiness(False, "no-signer", "the wallet is locked: the miner cannot sign claims"))
    got = {(a.kind, a.subject) for a in alerts_for(snap)}
    assert got == {("wallet_locked", "rig-01"), ("device_hung", "cuda:0"), ("overheating", "cuda:4")}
    snap = rig.snapshot(Readiness(False, "offline", "waiting for RPC (retry in 4 s)"))
    assert ("rig_offline", "rig-01") in {(a.kind, a.subject) for a in alerts_for(snap)}
