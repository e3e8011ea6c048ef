"""Scheduler: device assignment, slots, pause on throttle/idle (SIGSTOP), cancel, shutdown."""

from __future__ import annotations

import time

import psutil
import pytest

from jobs.execute import Device
from jobs.scheduler import Scheduler


def _wait(pred, timeout=20.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


class Devices:
    """The plain device input the app would fill from gpu/ telemetry and the miner's modes."""

    def __init__(self, *devs: Device):
        self.devs = {d.device_id: d for d in devs}

    def set(self, device_id: str, **kw) -> None:
        from dataclasses import replace

        self.devs[device_id] = replace(self.devs[device_id], **kw)

    def __call__(self) -> list[Device]:
        return list(self.devs.values())


def _pids(rec_queue, job_id):
    a = rec_queue.attempts(job_id)[-1]
    p = psutil.Process(a.pid)
    return [p] + p.children(recursive=True)


def test_cpu_slots_limit_concurrency_and_all_jobs_finish(rig):
    devs = Devices(Device("cpu", "cpu", slots=2))
    for i in range(3):
        rig.sleep_job(f"s{i}", 0.8, steps=4)
    sch = Scheduler(rig.queue, rig.config("basic"), devs)
    peak = 0
    end = time.monotonic() + 30
    while time.monotonic() < end:
        sch.tick()
        peak = max(peak, len(sch.running()))
        if all(rig.queue.get(f"s{i}").state == "succeeded" for i in range(3)):
            break
        time.sleep(0.05)
    assert peak == 2
    assert [rig.queue.get(f"s{i}").state for i in range(3)] == ["succeeded"] * 3


def test_gpu_job_waits_for_a_gpu_with_enough_memory(rig):
    from jobs.spec import parse_spec

    rig.queue.add(parse_spec({"id": "g", "kind": "sleep", "params": {"seconds": 0.1},
                              "resources": {"device": "gpu", "min_gpu_memory_mb": 16000}}))
    devs = Devices(Device("cpu", "cpu"), Device("gpu:0", "gpu", memory_mb=8000, index=0, active=True))
    sch = Scheduler(rig.queue, rig.config("basic"), devs)
    sch.tick()
    assert not sch.running() and rig.queue.get("g").state == "queued"


def test_device_not_active_gets_nothing(rig):
    rig.sleep_job("s", 0.1)
    sch = Scheduler(rig.queue, rig.config("basic"), Devices(Device("cpu", "cpu", active=False)))
    sch.tick()
    assert rig.queue.get("s").state == "queued"


@pytest.mark.parametrize("how, level", [("throttled", "basic"), ("idle", "basic"), ("throttled", "strict")])
def test_throttle_or_idle_pauses_with_sigstop_and_resumes(rig, how, level):
    from jobs.sandbox import find_bwrap

    if level == "strict" and find_bwrap() is None:
        pytest.skip("bubblewrap not installed")
    devs = Devices(Device("cpu", "cpu"))
    rig.sleep_job("p", 2.0, steps=20)
    events = []
    sch = Scheduler(rig.queue, rig.config(level), devs, on_event=lambda j, m: events.append(m))
    sch.tick()
    assert _wait(lambda: any(m["type"] == "progress" and m["fraction"] > 0 for m in events))
    devs.set("cpu", **({"throttled": True} if how == "throttled" else {"active": False}))
    sch.tick()
    assert rig.queue.get("p").state == "paused"
    assert _wait(lambda: all(p.status() == psutil.STATUS_STOPPED for p in _pids(rig.queue, "p")), 5)
    n = len([m for m in events if m["type"] == "progress"])
    time.sleep(0.6)
    assert len([m for m in events if m["type"] == "progress"]) == n    # no progress while stopped
    devs.set("cpu", throttled=False, active=True)
    sch.tick()
    assert rig.queue.get("p").state == "running"
    assert sch.wait_idle(30)
    rec = rig.queue.get("p")
    assert rec.state == "succeeded" and rec.result["steps_done"] == 20


def test_cancel_running_job_is_quick(rig):
    rig.sleep_job("c", 30.0, steps=300)
    events = []
    sch = Scheduler(rig.queue, rig.config("basic"), Devices(Device("cpu", "cpu")), on_event=lambda j, m: events.append(m))
    sch.tick()
    assert _wait(lambda: any(m["type"] == "progress" for m in events))
    pids = _pids(rig.queue, "c")
    sch.cancel("c")
    assert sch.wait_idle(10)
    rec = rig.queue.get("c")
    assert rec.state == "cancelled" and rec.reason == "cancelled by request"
    assert sch.running() == {} or all(r.done.is_set() for r in sch.running().values())
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in pids)
    out = [m for m in events if m["type"] == "finished"][0]
    assert out["status"] == "cancelled"


def test_cancel_queued_job(rig):
    rig.sleep_job("q", 1)
    sch = Scheduler(rig.queue, rig.config("basic"), Devices())
    assert sch.cancel("q") == "cancelled"
    assert rig.queue.get("q").state == "cancelled"


def test_shutdown_requeues_running_jobs_as_app_stopped(rig):
    rig.sleep_job("r", 30.0, steps=300)
    sch = Scheduler(rig.queue, rig.config("basic"), Devices(Device("cpu", "cpu")))
    sch.tick()
    assert _wait(lambda: rig.queue.get("r").state == "running" and rig.queue.attempts("r")[-1].pid)
    sch.shutdown()
    rec = rig.queue.get("r")
    assert rec.state == "queued" and "app stopped" in rec.reason
    assert rig.queue.attempts("r")[-1].reason == "app stopped"


def test_device_active_follows_mode_and_away():
    from jobs.scheduler import device_active

    assert device_active("mining", False) and device_active("auto", True)
    assert not device_active("auto", False) and not device_active("idle", True)
