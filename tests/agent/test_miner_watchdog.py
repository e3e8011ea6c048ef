"""The watchdog inside the miner on a real EVM: a market render job runs on a (stand-in) GPU
that falls off the bus; the miner fails that attempt with the reason, holds the GPU, runs the
job again on the other GPU and submits it. Prints the time from the fault to the failed job
and the held device."""

from __future__ import annotations

import json
import time

from app.devices import DeviceService
from tests.agent.conftest import render_spec_bytes, step_until
from tests.gpu.nvml_standin import make_standin


def test_gpu_lost_mid_job_fails_the_attempt_holds_the_gpu_and_the_job_finishes_on_the_other(world):
    world.devices.close()
    nv = make_standin()
    world.devices = DeviceService(world.ctx, nvml_module=nv, idle=lambda: None)
    world.devices.set_mode("cpu", "idle")
    for gpu in ("cuda:0", "cuda:1"):
        world.devices.set_mode(gpu, "mining")
    events = []
    world.devices.watchdog.subscribe(events.append)
    spec = json.loads(render_spec_bytes(frames=24))
    spec["resources"]["device"] = "gpu"
    job_id = world.post(json.dumps(spec, sort_keys=True).encode(), reward_ntk=2)
    svc = world.service()
    try:
        g0, g1 = world.devices.device("cuda:0"), world.devices.device("cuda:1")
        qid = svc.queue_id(job_id)
        end = time.monotonic() + 120
        while not (svc.scheduler.running().get(qid) and svc.last_progress.get(job_id) is not None):
            assert time.monotonic() < end, svc.row(job_id)
            svc.step()
            time.sleep(0.1)
        assert svc.scheduler.running()[qid].device_id == g0.key
        nv.lose(0)
        t0 = time.monotonic()
        while True:
            svc.step()
            attempts = svc.queue.attempts(qid)
            if attempts[0].state == "failed" and world.devices.state("cuda:0").hold is not None:
                break
            assert time.monotonic() - t0 < 20, attempts
            time.sleep(0.05)
        fault_to_failed_s = time.monotonic() - t0
        assert attempts[0].reason == "watchdog: cuda:0: GPU is lost (fell off the bus)"
        assert world.devices.state("cuda:0").hold.source == "watchdog"
        assert step_until(svc, job_id, {"submitted", "failed"}) == "submitted", svc.row(job_id)
        attempts = svc.queue.attempts(qid)
        assert [a.device_id for a in attempts] == [g0.key, g1.key] and attempts[1].state == "succeeded"
        assert [e.kind for e in events][:2] == ["fault", "job_failed"]
        print(f"GPU fault -> job failed and device held: {fault_to_failed_s:.2f} s (miner passes back to back)")
    finally:
        svc.close()


def test_outside_mining_hours_or_paused_the_miner_claims_nothing_until_allowed(world):
    from datetime import datetime

    job_id = world.post(render_spec_bytes(frames=1), reward_ntk=1)
    world.devices.control.now = lambda: datetime(2024, 6, 3, 12, 0)  # a Monday noon
    world.devices.set_schedule(None, "mon-fri 23:00-07:00")
    svc = world.service()
    try:
        for _ in range(3):
            svc.step()
        assert svc.row(job_id) is None
        assert svc.claims.free_slots() == 0  # no device may take a job: nothing is even priced
        world.devices.control.now = lambda: datetime(2024, 6, 3, 23, 30)
        world.devices.set_paused("cpu", True)
        for _ in range(3):
            svc.step()
        assert svc.row(job_id) is None  # in its hours now, but paused
        world.devices.set_paused("cpu", False)
        assert step_until(svc, job_id, {"submitted"}) == "submitted"
    finally:
        svc.close()
