"""The watchdog's rules: faults from lost GPUs and driver errors, back-off, job silence; and
the NVML adapter's error counts and power limits against the stand-in."""

from __future__ import annotations

import time

from gpu.devices import DeviceProbe
from gpu.model import Telemetry
from gpu.watchdog import DeviceWatch, JobWatch, WatchdogRules
from tests.gpu.nvml_standin import make_standin

RULES = WatchdogRules(error_polls=3, stall_s=10, backoff_first_s=60, backoff_cap_s=300, healthy_s=100)


def tel(**kw) -> Telemetry:
    return Telemetry(timestamp=time.time(), **kw)


def test_lost_gpu_faults_at_once_and_backs_off_doubling_to_the_cap():
    w = DeviceWatch()
    f = w.observe(tel(lost=True), RULES, 0.0)
    assert f.kind == "lost" and w.held and w.retry_at == 60
    assert w.observe(tel(lost=True), RULES, 1.0) is None  # held already: one fault, one event
    assert not w.due(59.9) and w.due(60.0)
    waits = []
    now = 60.0
    for _ in range(4):
        w.release(now)
        w.observe(tel(lost=True), RULES, now)
        waits.append(w.retry_at - now)
        now = w.retry_at
    assert waits == [120, 240, 300, 300] and w.total == 5


def test_driver_errors_fault_only_when_in_a_row():
    w = DeviceWatch()
    assert w.observe(tel(errors=2, error="x: Unknown Error"), RULES, 0) is None
    assert w.observe(tel(errors=1), RULES, 1) is None
    assert w.observe(tel(), RULES, 2) is None  # a good reading breaks the streak
    w.observe(tel(errors=1), RULES, 3)
    w.observe(tel(errors=1), RULES, 4)
    f = w.observe(tel(errors=3, error="nvmlDeviceGetTemperature: Unknown Error"), RULES, 5)
    assert f.kind == "errors" and "3 readings in a row" in f.reason and "Unknown Error" in f.reason


def test_a_device_healthy_long_enough_starts_again_from_the_first_backoff():
    w = DeviceWatch()
    w.observe(tel(lost=True), RULES, 0)
    w.release(60)
    w.observe(tel(), RULES, 61)
    w.observe(tel(lost=True), RULES, 62)
    assert w.retry_at - 62 == 120
    w.release(200)
    w.observe(tel(), RULES, 350)  # 150 s healthy > healthy_s
    w.observe(tel(lost=True), RULES, 351)
    assert w.retry_at - 351 == 60


def test_job_silence_counts_from_the_last_sign_of_life_and_never_while_paused():
    j = JobWatch()
    j.sync({"a": ("gpu0", False), "b": ("gpu1", False)}, 0)
    j.event("a", "progress", 5)
    assert [s.job_id for s in j.stalls(10, 12)] == ["b"]
    assert j.stalls(10, 13) == []  # reported once
    j.sync({"a": ("gpu0", True)}, 14)  # paused from 14 to 40
    assert j.stalls(10, 40) == []
    j.sync({"a": ("gpu0", False)}, 40)  # resumed: silence starts again
    assert j.stalls(10, 49) == [] and [s.silent_s for s in j.stalls(10, 50)] == [10]


def test_nvml_errors_are_counted_per_snapshot_and_not_supported_is_no_error():
    nv = make_standin()
    p = DeviceProbe(nv)
    g0 = p.devices[0]
    assert p.telemetry(g0).errors == 0
    nv.set_unsupported(0, "fan", "power")
    assert p.telemetry(g0).errors == 0
    nv.fail(0, "Unknown")
    t = p.telemetry(g0)
    assert t.errors >= 1 and not t.lost and t.error
    nv.heal(0)
    assert p.telemetry(g0).errors == 0 and p.telemetry(g0).temp_c == 62


def test_lost_gpu_is_asked_again_after_retry():
    nv = make_standin()
    p = DeviceProbe(nv)
    g1 = p.devices[1]
    nv.lose(1)
    assert p.telemetry(g1).lost
    nv.heal(1)
    assert p.telemetry(g1).lost  # still marked lost: no NVML call
    p.retry(g1)
    assert not p.telemetry(g1).lost and p.telemetry(g1).temp_c == 70


def test_power_limit_needs_root_then_is_set_within_bounds():
    nv = make_standin()
    p = DeviceProbe(nv)
    g0 = p.devices[0]
    assert p.power_limits_w(g0) == (220.0, 220.0, 110.0)
    assert "no permission" in p.set_power_limit_w(g0, 132.0)
    nv.allow_power_limit = True
    assert p.set_power_limit_w(g0, 132.0) is None and p.power_limits_w(g0)[0] == 132.0
    assert "refused" in p.set_power_limit_w(g0, 50.0)  # below the card's lowest
    assert p.power_limits_w(p.devices[-1]) is None  # the CPU has none
