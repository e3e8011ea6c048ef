"""Pricing in the running miner: a job too slow for its deadline is never claimed; one whose
progress shows it cannot finish in time is given up and not submitted; auto-pricing moves a
floor (logged, persisted) while the device is idle or fully booked; device power reaches the
earnings ledger each pass."""

from __future__ import annotations

import json
import time

from app.earnings import EarningsService
from app.settings import SettingsStore
from gpu.bench import BenchStore
from tests.agent.conftest import render_spec_bytes, step_until
from wallet.market import JobStatus


def test_too_slow_is_not_claimed_and_a_late_job_is_given_up_from_its_progress(world):
    # 5000 frames of 640x480: many minutes at the reference CPU rate (and here), 2 min even on a
    # device of infinite speed (scene building per object is host work, jobs.estimate.HOST_OBJECT_S);
    # the deadline in 200 s
    spec = json.loads(render_spec_bytes(frames=5000, width=640, height=480))
    spec["resources"]["max_wall_s"] = 3600
    job = world.post(json.dumps(spec, sort_keys=True).encode(), deadline_s=200)
    svc = world.service()
    svc.step()
    d = svc.pricing_decisions()[0]
    assert svc.row(job) is None and d.decision == "too slow" and "s left before the deadline" in d.reason
    # a stale benchmark says this device renders a million frames a second: now it fits, and is claimed
    BenchStore(world.ctx.paths.bench_file).add("cpu", {"matmul": {"gflops": 50.0}, "render": {"fps": 1e6}})
    state = step_until(svc, job, {"failed", "submitted"}, timeout_s=90)
    r = svc.row(job)
    assert state == "failed" and "expected to finish at" in r.reason and "after the deadline" in r.reason, r
    assert svc.scheduler.wait_idle(30)
    assert svc.queue.get(svc.queue_id(job)).state == "cancelled"
    assert world.market.job(job).status == JobStatus.CLAIMED  # never submitted
    assert any(p.decision == "claim" for p in svc.pricing_decisions() if p.job_id == job)


def test_auto_price_lowers_an_idle_floor_and_raises_a_booked_one_and_energy_is_recorded(world):
    ds = world.ctx.settings.device("cpu")
    ds.price_floor_ntk_per_hour = 1.0
    ds.auto_price, ds.auto_price_min_ntk_per_hour, ds.auto_price_max_ntk_per_hour = True, 0.5, 2.0
    ds.auto_price_step, ds.auto_price_window_s = 0.1, 1.0
    earnings = EarningsService(world.ctx, ledger=world.ledger)
    svc = world.service(earnings=earnings)
    end = time.monotonic() + 1.5
    while time.monotonic() < end:  # nothing on the market: the device sits idle
        svc.step()
        time.sleep(0.2)
    ch = svc.floor_changes()[0]
    assert (ch.device_key, ch.old, ch.new) == ("cpu", 1.0, 0.9)
    assert ch.text() == "floor changed from 1 to 0.9 NTK/h because idle for 1 s: lowered by 10%"
    assert SettingsStore(world.ctx.paths.settings_file).load().settings.device("cpu").price_floor_ntk_per_hour == 0.9

    job = world.post(render_spec_bytes(frames=400), reward_ntk=50)
    assert step_until(svc, job, {"running"}) == "running"
    end = time.monotonic() + 2.6
    while time.monotonic() < end and svc.row(job).state == "running":
        svc.step()
        time.sleep(0.2)
    assert svc.row(job).state == "running", "the render ended before the device was booked for a whole window"
    ch = svc.floor_changes()[0]
    assert ch.new > ch.old and "fully booked for 1 s: raised by 10%" in ch.reason
    assert world.ctx.settings.device("cpu").price_floor_ntk_per_hour == ch.new
    energy = world.ledger.energy(device_key="cpu")
    assert energy and energy[0].wh > 0  # the CPU device's setting wattage over the passes


def test_the_auto_pricing_window_survives_a_restart(world):
    """Booked/idle counting is saved: a miner restarted mid-window keeps counting the same
    window (a restart every few minutes must not keep the floor from ever moving)."""
    ds = world.ctx.settings.device("cpu")
    ds.price_floor_ntk_per_hour = 1.0
    ds.auto_price, ds.auto_price_min_ntk_per_hour, ds.auto_price_max_ntk_per_hour = True, 0.5, 2.0
    ds.auto_price_step, ds.auto_price_window_s = 0.1, 3.0
    svc = world.service()
    for _ in range(3):
        svc.step()
    start, passes, busy = svc.autoprice.busy["cpu"]
    assert passes == 3 and busy == 0
    svc.close()
    svc = world.service()  # a new process would do the same: the window comes back from the miner DB
    svc.step()
    assert svc.autoprice.busy["cpu"][:2] == [start, 4]
    end = time.monotonic() + 10
    while time.monotonic() < end and not svc.floor_changes():
        svc.step()
        time.sleep(0.2)
    ch = svc.floor_changes()[0]
    assert ch.new == 0.9 and ch.at - start < 5.0, ch  # one window of ~3 s in all, across the restart

