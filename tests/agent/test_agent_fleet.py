"""The rig's fleet face: the miner on a real EVM with stand-in GPUs serves its metrics over
HTTP and posts alerts to a webhook server on 127.0.0.1; `kminer agent` as a process serves
metrics on the port from the settings and honours `kminer devices pause` from another terminal."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest

from app.devices import DeviceService
from app.fleet import Readiness, RigReporter, parse_metrics
from tests.agent.conftest import render_spec_bytes, step_until
from tests.agent.test_agent_process import rig  # noqa: F401 (the fixture)
from tests.agent.test_agent_cli import kminer
from tests.fleet.conftest import webhook  # noqa: F401 (the fixture)
from tests.gpu.nvml_standin import make_standin


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        samples = parse_metrics(r.read())
    return {(s.name, s.labels.get("device"), s.labels.get("state")): s.value for s in samples}


READY = Readiness(True, "ready", "Ready for jobs")


def test_miner_metrics_and_alerts_over_http(world, webhook):  # noqa: F811
    world.devices.close()
    nv = make_standin()
    world.devices = DeviceService(world.ctx, nvml_module=nv, idle=lambda: None)
    for d in ("cuda:0", "cuda:1"):
        world.devices.set_mode(d, "mining")
    world.devices.set_mode("cpu", "idle")
    f = world.ctx.settings.fleet
    f.metrics_port, f.alert_webhook_url, f.alert_interval_s = free_port(), webhook.url, 600.0
    spec = json.loads(render_spec_bytes(frames=2))
    spec["resources"]["device"] = "gpu"
    job_id = world.post(json.dumps(spec, sort_keys=True).encode(), reward_ntk=2)
    svc = world.service()
    rep = RigReporter(world.ctx, rig="rig-07", readiness=lambda _m: READY)  # the rule itself: tests/app/test_readiness.py
    try:
        url = rep.start()
        assert url == f"http://127.0.0.1:{f.metrics_port}/metrics"
        assert step_until(svc, job_id, {"submitted"}) == "submitted"
        rep.after_pass(svc)
        m = scrape(url)
        assert m[("kminer_rig_ready", None, None)] == 1
        assert m[("kminer_device_state", "cuda:0", "mining")] == 1 and m[("kminer_device_state", "cpu", "idle")] == 1
        assert m[("kminer_jobs", None, "submitted")] == 1 and m[("kminer_device_temperature_celsius", "cuda:1", None)] == 70
        nv.lose(1)
        nv.set_reading(0, temp_c=96)
        for _ in range(3):
            svc.step(claim=False)
            rep.after_pass(svc)
        m = scrape(url)
        assert m[("kminer_device_state", "cuda:1", "lost")] == 1 and m[("kminer_device_state", "cuda:0", "throttled")] == 1
        assert m[("kminer_device_watchdog_faults_total", "cuda:1", None)] == 1
        assert rep.alerter.flush(10)
        got = sorted((b["kind"], b["subject"]) for b in webhook.bodies)
        assert got == [("device_hung", "cuda:1"), ("overheating", "cuda:0")]  # each once in three passes
        assert webhook.bodies[0]["rig"] == "rig-07"
    finally:
        rep.close()
        svc.close()


@pytest.mark.slow
def test_agent_process_serves_metrics_and_honours_a_pause_from_the_cli(rig):  # noqa: F811
    port = free_port()
    kminer(rig.home, "settings", "set", "fleet.metrics_port", str(port))
    a = rig.agent()
    url = f"http://127.0.0.1:{port}/metrics"
    a.wait_for(lambda st: st["devices"][0].get("state") == "mining", timeout_s=60)
    assert f"agent: metrics on {url}" in a.said
    assert scrape(url)[("kminer_device_state", "cpu", "mining")] == 1
    kminer(rig.home, "devices", "pause", "cpu")
    st = a.wait_for(lambda st: st["devices"][0].get("state") == "paused", timeout_s=30)
    assert st["devices"][0]["reason"] == "paused"
    end = time.monotonic() + 10
    while scrape(url).get(("kminer_device_state", "cpu", "paused")) != 1:
        assert time.monotonic() < end
        time.sleep(0.2)
    a.proc.send_signal(2)
    a.proc.send_signal(2)
    assert a.finish() == 0
