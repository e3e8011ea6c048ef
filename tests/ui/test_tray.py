"""The tray: snooze puts mining devices idle and restores their modes exactly; tooltip with
today's earnings and jobs; rate-limited, coalesced notices. Real DeviceService over the NVML
stand-in, a real background runner."""

from __future__ import annotations

import pytest

from app.context import AppContext
from ui.background import Background
from ui.tray import TrayIcon

NTK = 10**18


@pytest.fixture
def runner():
    r = Background("devices")
    yield r
    r.shutdown()


@pytest.fixture
def tray(qtbot, devices, runner):
    t = TrayIcon(devices=devices, runner=runner, notify_interval_s=0.4)
    yield t
    t.hide()
    t.deleteLater()


def modes(devices) -> dict[str, str]:
    return {s.info.id: s.mode for s in devices.states()}


def test_snooze_idles_mining_devices_then_restores_their_exact_modes(qtbot, tray, devices, ctx):
    devices.set_mode("cuda:0", "mining")
    devices.set_mode("cuda:1", "auto")
    before = modes(devices)
    assert before["cpu"] == "idle"
    with qtbot.waitSignal(tray.snoozeChanged, timeout=3000):
        tray.snooze(duration_s=0.6)
    assert set(modes(devices).values()) == {"idle"}
    assert tray.snoozed_modes == {"cuda:0": "mining", "cuda:1": "auto"}
    assert tray.snooze_action.text().startswith("Snoozed until ") and not tray.snooze_action.isEnabled()
    assert tray.resume_action.isVisible()
    assert f"Snoozed until {tray.snooze_text()}" in tray.toolTip()
    # the hour (here 0.6 s) passes: the modes come back by themselves
    with qtbot.waitSignal(tray.snoozeChanged, timeout=5000) as blocker:
        pass
    assert blocker.args == [None]
    assert modes(devices) == before
    assert tray.snooze_action.text() == "Snooze 1 h" and not tray.resume_action.isVisible()
    assert "Snoozed" not in tray.toolTip()
    saved = AppContext.open(ctx.paths).settings  # restored modes are saved, not just in memory
    assert {d.info.id: saved.device(d.info.key).mode for d in devices.states()} == before


def test_resume_early_from_the_menu_and_leave_a_device_the_user_changed(qtbot, tray, devices):
    devices.set_mode("cuda:0", "mining")
    devices.set_mode("cpu", "auto")
    with qtbot.waitSignal(tray.snoozeChanged, timeout=3000):
        tray.snooze()
    assert tray.snoozed_until is not None
    devices.set_mode("cpu", "mining")  # the user set the CPU to mining while snoozed
    with qtbot.waitSignal(tray.modesChanged, timeout=3000):
        tray.resume_action.trigger()
    assert modes(devices) == {"cuda:0": "mining", "cuda:1": "idle", "cpu": "mining"}
    assert tray.snoozed_until is None and tray.snoozed_modes == {}


def test_start_all_while_snoozed_ends_the_snooze_without_restoring(qtbot, tray, devices):
    devices.set_mode("cuda:1", "auto")
    with qtbot.waitSignal(tray.snoozeChanged, timeout=3000):
        tray.snooze()
    with qtbot.waitSignal(tray.modeAllRequested, timeout=1000) as blocker:
        tray.start_action.trigger()
    assert blocker.args == ["mining"] and tray.snoozed_until is None


def test_snooze_with_nothing_mining_changes_nothing(qtbot, tray, devices, runner):
    tray.update_states(devices.states(), None)
    assert not tray.snooze_action.isEnabled()
    tray.snooze()
    qtbot.waitUntil(lambda: not tray._busy, timeout=3000)
    assert tray.snoozed_until is None and set(modes(devices).values()) == {"idle"}


def test_quitting_while_snoozed_restores_modes_at_once(qtbot, tray, devices):
    devices.set_mode("cuda:0", "mining")
    with qtbot.waitSignal(tray.snoozeChanged, timeout=3000):
        tray.snooze()
    tray.resume_blocking()
    assert modes(devices)["cuda:0"] == "mining" and tray.snoozed_until is None


def test_tooltip_shows_devices_today_earnings_and_jobs(qtbot, tray, devices):
    devices.set_mode("cuda:0", "mining")
    tray.update_states(devices.poll(), False)
    tray.update_summary(12 * NTK + NTK // 2, 2)
    assert tray.toolTip() == "Knowledge Miner: 1 of 3 devices mining\nToday: 12.5 NTK · 2 active jobs"
    tray.update_summary(0, 1)
    assert tray.toolTip().endswith("Today: 0 NTK · 1 active job")
    tray.set_earned_today(3 * NTK)
    tray.set_active_jobs(0)
    assert tray.toolTip().endswith("Today: 3 NTK · 0 active jobs")
    assert tray.state == "mining"


def test_tray_says_when_the_rig_cannot_claim_and_turns_orange(qtbot, tray, devices):
    from app.readiness import RigFacts, rig_readiness

    devices.set_mode("cuda:0", "mining")
    tray.update_states(devices.poll(), False)
    locked = rig_readiness(RigFacts(signer_problem="the wallet is locked and there is no mining key",
                                    signer_fix="create a mining key", mining_devices=("cuda:0",)))
    tray.set_readiness(locked)
    assert tray.state == "blocked"
    assert tray.toolTip().splitlines()[1] == ("Not mining: the wallet is locked and there is no mining key. "
                                              "Create a mining key.")
    tray.set_readiness(rig_readiness(RigFacts(signer_problem=None, mining_devices=("cuda:0",))))
    assert tray.state == "mining" and tray.toolTip().splitlines()[1] == "Ready for jobs: 1 device mining"


def test_payment_notices_are_rate_limited_and_coalesced(qtbot, tray):
    shown = []
    tray.noticeShown.connect(shown.append)
    tray.notify_payment(5 * NTK)
    tray.notify_payment(4 * NTK)
    tray.notify_payment(NTK // 2)
    tray.notify_payment(8 * NTK)
    tray.notify_job_failed("job-3", "timeout after 60 s")
    assert [n.message for n in shown] == ["5 NTK", "job-3: timeout after 60 s"]
    qtbot.waitUntil(lambda: len(shown) == 3, timeout=3000)
    assert shown[2].message == "3 payments received: 12.5 NTK"
    qtbot.wait(600)
    assert len(shown) == 3  # nothing more was held


def test_tray_without_services_has_no_snooze(qtbot):
    t = TrayIcon()
    try:
        assert t.snooze_action not in t.contextMenu().actions()
        t.snooze()  # a no-op, never an error
        assert t.snoozed_until is None
    finally:
        t.deleteLater()
