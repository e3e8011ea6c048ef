"""The watchdog end to end on this machine: NVML stand-in GPUs, a real queue and scheduler, real
sandboxed worker processes. A lost or failing GPU, or a job that stops reporting progress: the
job is failed with the reason, the device held and tried again after its back-off, listeners
and the event script told."""

from __future__ import annotations

import os
import stat
import time

import pytest

from app.context import AppContext
from app.devices import DeviceService, HookRunner, WatchdogEvent
from app.miner.fleet import Fleet
from jobs.artifacts import ArtifactStore
from jobs.execute import RuntimeConfig
from jobs.queue import JobQueue
from jobs.sandbox import strict_problem
from jobs.scheduler import Scheduler
from jobs.spec import parse_spec
from tests.gpu.nvml_standin import make_standin


class Rig:
    """The miner's watchdog loop without the chain: what MinerService.step does each pass
    (poll the devices, fail what the watchdog names, tick the scheduler)."""

    def __init__(self, tmp_path, **watchdog):
        self.nv = make_standin()
        self.ctx = AppContext.open()
        self.ctx.settings.watchdog = self.ctx.settings.watchdog.model_copy(update=watchdog)
        self.devices = DeviceService(self.ctx, nvml_module=self.nv, idle=lambda: None)
        self.devices.set_mode("cuda:0", "mining")
        self.devices.set_mode("cuda:1", "mining")
        self.events: list[WatchdogEvent] = []
        self.devices.watchdog.subscribe(self.events.append)
        self.queue = JobQueue(tmp_path / "jobs.sqlite")
        level = "strict" if strict_problem() is None else "basic"
        self.cfg = RuntimeConfig(jobs_dir=tmp_path / "jobs", store=ArtifactStore(tmp_path / "artifacts"),
                                 level=level, hide=[tmp_path / "kminer-home"])
        self.fleet = Fleet(self.ctx, self.devices)
        self.scheduler = Scheduler(self.queue, self.cfg, self.fleet.job_devices, self.fleet.job_event)

    def step(self) -> None:
        self.fleet.poll()
        for qid, reason in self.fleet.jobs_to_fail(self.scheduler.running()):
            self.scheduler.fail(qid, reason)
        self.scheduler.tick()

    def sleep_job(self, job_id: str, seconds: float, steps: int) -> None:
        self.queue.add(parse_spec({"id": job_id, "kind": "sleep", "params": {"seconds": seconds, "steps": steps},
                                   "resources": {"device": "gpu", "max_wall_s": 60}}))

    def until(self, pred, timeout_s: float = 30.0) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            self.step()
            if pred():
                return time.monotonic() - t0
            time.sleep(0.05)
        raise AssertionError(f"timed out; events {[e.line() for e in self.events]}")

    def close(self) -> None:
        self.scheduler.shutdown()
        self.queue.close()
        self.devices.close()


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path, backoff_first_s=1.0, backoff_cap_s=60.0, stall_minutes=10.0)
    yield r
    r.close()


def running_on(rig, job_id):
    rj = rig.scheduler.running().get(job_id)
    return rj.device_id if rj is not None else None


def test_gpu_lost_fails_the_job_holds_the_device_and_the_job_runs_again_elsewhere(rig):
    g0 = rig.devices.device("cuda:0")
    rig.sleep_job("j", 30.0, 300)
    rig.until(lambda: running_on(rig, "j") == g0.key and rig.queue.get("j").state == "running")
    rig.until(lambda: rig.devices.watchdog._jobs._jobs.get("j") is not None)
    rig.nv.lose(0)
    latency = rig.until(lambda: rig.queue.get("j").state == "failed" and rig.devices.state("cuda:0").hold is not None)
    q = rig.queue.get("j")
    assert q.reason == "watchdog: cuda:0: GPU is lost (fell off the bus)"
    st = rig.devices.state("cuda:0")
    assert not st.active and st.hold.source == "watchdog" and "GPU is lost" in st.hold.reason
    assert [e.kind for e in rig.events] == ["fault", "job_failed"] and rig.events[1].job == "j"
    assert latency < 5.0, latency
    rig.queue.add(q.spec)  # what the miner does with a failed attempt while attempts and the deadline allow
    rig.until(lambda: running_on(rig, "j") == rig.devices.device("cuda:1").key)


def test_a_lost_gpu_is_tried_again_after_its_backoff_doubling_until_it_answers(rig):
    rig.nv.lose(0)
    rig.until(lambda: [e.kind for e in rig.events] == ["fault"])
    rig.until(lambda: [e.kind for e in rig.events] == ["fault", "retry", "fault"])  # 1 s later: still lost
    first, second = rig.events[0], rig.events[2]
    assert second.retry_at - second.at == pytest.approx(2.0, abs=0.3)  # doubled
    rig.nv.heal(0)
    rig.until(lambda: [e.kind for e in rig.events][-1] == "retry")
    rig.step()
    st = rig.devices.state("cuda:0")
    assert st.active and st.hold is None and st.telemetry.temp_c == 62


def test_driver_errors_in_a_row_hold_the_device(rig):
    rig.nv.fail(1, "Timeout")
    rig.until(lambda: rig.devices.state("cuda:1").hold is not None)
    ev = rig.events[0]
    assert ev.kind == "fault" and ev.fault == "errors" and ev.device == "cuda:1" and "Timeout" in ev.reason
    assert rig.devices.state("cuda:0").hold is None


def test_a_job_that_stops_reporting_progress_is_failed_but_never_while_paused(rig):
    rig.ctx.settings.watchdog.stall_minutes = 0.025  # 1.5 s
    rig.sleep_job("quiet", 30.0, 1)  # reports 0 % at its start, then nothing for 30 s
    rig.until(lambda: running_on(rig, "quiet") is not None)
    rig.devices.set_paused("cuda:0", True)  # paused (SIGSTOP) longer than the stall time: not hung
    rig.until(lambda: rig.scheduler.running()["quiet"].paused)
    time.sleep(2.0)
    rig.step()
    assert rig.queue.get("quiet").state == "paused" and not rig.events
    rig.devices.set_paused("cuda:0", False)
    took = rig.until(lambda: rig.queue.get("quiet").state == "failed", timeout_s=20)
    assert 1.0 < took < 6.0
    reason = rig.queue.get("quiet").reason
    assert reason.startswith("watchdog: cuda:0: job quiet reported no progress for ") and reason.endswith("(hung?)")
    assert rig.devices.state("cuda:0").hold.source == "watchdog"
    assert [e.kind for e in rig.events] == ["fault", "job_failed"] and rig.events[0].fault == "stalled"


def test_watchdog_off_changes_nothing(rig):
    rig.ctx.settings.watchdog.enabled = False
    rig.nv.lose(0)
    for _ in range(3):
        rig.step()
    assert not rig.events and rig.devices.state("cuda:0").hold is None
    assert rig.devices.state("cuda:0").throttled  # the limits still hold a lost GPU back


def _script(tmp_path, body: str):
    p = tmp_path / "on-event.sh"
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return p


def test_event_script_gets_the_event_as_arguments_and_variables(tmp_path, rig):
    out = tmp_path / "seen.txt"
    script = _script(tmp_path, f'echo "$1 $2 $KMINER_FAULT $KMINER_DEVICE_KEY $KMINER_RETRY_AT|$KMINER_REASON" >> {out}\n'
                               'echo done\n')
    rig.ctx.settings.watchdog.hook_script = str(script)
    runs = []
    hook = HookRunner(lambda: rig.ctx.settings.watchdog, tmp_path, done=lambda ev, code, text: runs.append((code, text)))
    rig.devices.watchdog.subscribe(hook)
    rig.nv.lose(1)
    rig.until(lambda: len(runs) == 1, timeout_s=15)
    hook.close()
    line = out.read_text().strip()
    key = rig.devices.device("cuda:1").key
    head, reason = line.split("|")
    event, device, fault, got_key, retry_at = head.split()
    assert (event, device, fault, got_key) == ("fault", "cuda:1", "lost", key)
    assert abs(float(retry_at) - time.time()) < 5 and reason == "GPU is lost (fell off the bus)"
    assert runs == [(0, "done\n")]


def test_event_script_is_killed_at_its_time_limit_and_a_missing_one_is_one_log_line(tmp_path, rig, caplog):
    script = _script(tmp_path, "sleep 30 &\nsleep 30\n")
    rig.ctx.settings.watchdog.hook_script = str(script)
    rig.ctx.settings.watchdog.hook_timeout_s = 1.0
    hook = HookRunner(lambda: rig.ctx.settings.watchdog, tmp_path)
    ev = WatchdogEvent("fault", "cuda:0", "k", "GPU", "test", "lost", at=time.time())
    t0 = time.monotonic()
    assert hook.run(ev)[0] is None
    assert time.monotonic() - t0 < 5  # the group was killed: its child holds no pipe open
    rig.ctx.settings.watchdog.hook_script = str(tmp_path / "nope.sh")
    code, text = hook.run(ev)
    assert code is None and "No such file" in text
    assert os.path.exists(script)
