"""The Fleet page over real metrics endpoints on 127.0.0.1 (stand-in rigs), the device card's
pause, mining hours and slow-down, AMD cards, and watchdog notices in the tray."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.context import AppContext
from app.devices import DeviceService
from app.fleet import FleetWatcher, MetricsServer, Readiness
from tests.fleet.conftest import StandinRig
from tests.gpu.amdsmi_standin import make_amd_standin
from tests.gpu.nvml_standin import make_standin
from ui.background import Background
from ui.fleet_view import FleetView, ago, devices_text
from ui.tray import TrayIcon


@pytest.fixture
def ten_rigs():
    made = []
    for i in range(10):
        rig = StandinRig(8 if i % 3 == 0 else 4, name=f"rig-{i + 1:02d}", number=i)
        if i == 4:
            rig.nv.lose(2)
        if i == 7:
            rig.devices.set_paused("cuda:1", True)
        srv = MetricsServer("127.0.0.1", 0).start()
        srv.update(rig.snapshot(Readiness(True, "ready", "Ready for jobs") if i != 5 else Readiness(False, "offline", "waiting for RPC (retry in 8 s)")))
        made.append((rig, srv))
    yield made
    for rig, srv in made:
        srv.stop()
        rig.close()


@pytest.fixture
def fleet_page(qtbot, ctx):
    runner = Background("fleet")
    watcher = FleetWatcher(lambda: ctx.settings.fleet.rigs, timeout_s=2.0)
    view = FleetView(ctx=ctx, watcher=watcher, runner=runner, interval_s=60)
    qtbot.addWidget(view)
    yield view
    view.shutdown()
    runner.shutdown()
    watcher.close()


def test_ten_rigs_online_offline_and_their_devices(qtbot, ctx, ten_rigs, fleet_page):
    ctx.settings.fleet.rigs = [srv.url for _, srv in ten_rigs]
    ten_rigs[9][1].stop()  # rig-10 is down
    with qtbot.waitSignal(fleet_page.refreshed, timeout=10000):
        fleet_page.refresh()
    t = fleet_page.tree
    assert t.topLevelItemCount() == 10
    rows = [[t.topLevelItem(i).text(c) for c in range(3)] for i in range(10)]
    assert rows[0] == ["rig-01", "online", "8 GPUs + CPU: 9 mining"]
    assert rows[4][2] == "4 GPUs + CPU: 4 mining, 1 lost"
    assert rows[5][1] == "online, not ready" and "waiting for RPC" in t.topLevelItem(5).toolTip(1)
    assert rows[7][2] == "4 GPUs + CPU: 4 mining, 1 paused"
    assert rows[9][1] == "offline" and t.topLevelItem(9).text(5) == "never"
    assert t.topLevelItem(0).childCount() == 9 and t.topLevelItem(0).child(3).text(2) == "RTX 3070 · 61 °C · 113 W · 98 %"
    assert fleet_page.summary.text() == "10 rigs · 9 online · 55 devices mining · 1 held, lost or throttled"
    assert fleet_page.last_scrape_s < 5


def test_add_and_remove_rigs_saved_in_the_settings(qtbot, ctx, ten_rigs, fleet_page):
    url = ten_rigs[0][1].url
    fleet_page.url_edit.setText(url.replace("/metrics", ""))
    with qtbot.waitSignal(fleet_page.refreshed, timeout=10000):
        fleet_page.add_button.click()
    assert AppContext.open(ctx.paths).settings.fleet.rigs == [url]
    fleet_page.url_edit.setText(url)
    fleet_page.add_button.click()
    assert fleet_page.message.text() == f"{url} is watched already"
    fleet_page.url_edit.setText("ftp://nope")
    fleet_page.add_button.click()
    assert "is not a metrics URL" in fleet_page.message.text()
    qtbot.waitUntil(lambda: fleet_page.tree.topLevelItemCount() == 1, timeout=5000)
    fleet_page.tree.topLevelItem(0).setSelected(True)
    assert fleet_page.remove_button.isEnabled()
    fleet_page.remove_button.click()
    assert AppContext.open(ctx.paths).settings.fleet.rigs == [] and fleet_page.empty.isVisible() is not None


def test_helpers():
    assert ago(None, 100) == "never" and ago(95, 100) == "5 s ago" and ago(100 - 600, 100) == "10 min ago"


def test_device_card_pause_schedule_and_slow_down(qtbot, make_window, devices, ctx, idle):
    w = make_window(devices)
    card = w.devices_view.cards["cuda:0"]
    devices.set_mode("cuda:0", "mining")
    card.pause_button.click()
    qtbot.waitUntil(lambda: card.state_text.text().startswith("Paused: no new jobs"), timeout=3000)
    assert card.pause_button.text() == "Resume" and devices.state("cuda:0").hold.source == "paused"
    card.pause_button.click()
    qtbot.waitUntil(lambda: card.state_text.text().startswith("Mining"), timeout=3000)
    devices.control.now = lambda: datetime(2024, 6, 3, 12, 0)
    devices.set_schedule(None, "mon-fri 23:00-07:00; sat,sun")
    qtbot.waitUntil(lambda: card.state_text.text() ==
                    "Paused until 23:00 (schedule); a running job finishes", timeout=3000)
    devices.set_schedule(None, "")
    devices.set_mode("cpu", "auto")
    cpu = w.devices_view.cards["cpu"]
    qtbot.waitUntil(lambda: cpu.in_use.isEnabled(), timeout=3000)
    cpu.in_use.setCurrentIndex(1)
    cpu.in_use.activated.emit(1)
    qtbot.waitUntil(lambda: cpu.state_text.text().startswith("Mining, slowed while you use the PC"), timeout=3000)
    assert AppContext.open(ctx.paths).settings.control.device_in_use == {"cpu": "slow"}


def test_amd_cards_say_they_render_and_why_they_do_not_train(qtbot, make_window, ctx, idle):
    svc = DeviceService(ctx, nvml_module=make_standin(gpus=[]), amd_module=make_amd_standin(), idle=idle)
    w = make_window(svc)
    card = w.devices_view.cards["amd:0"]
    assert "PCIe 3.0 x1 (of x16) · riser" in card.subtitle.text()
    assert card.caps.text().startswith("Renders; training needs a ROCm build of torch") and not card.caps.isHidden()
    assert w.devices_view.cards["cpu"].caps.isHidden()
    qtbot.waitUntil(lambda: card.readings["temp"].text() == "64 °C", timeout=3000)


def test_watchdog_events_become_one_tray_notice_per_interval(qtbot, devices, nvml):
    runner = Background("devices")
    tray = TrayIcon(devices=devices, runner=runner, notify_interval_s=0.5)
    shown = []
    tray.noticeShown.connect(shown.append)
    from ui.fleet_view import WatchdogRelay

    relay = WatchdogRelay(devices)
    relay.event.connect(tray.notify_watchdog)
    devices.set_mode("cuda:1", "mining")
    nvml.lose(1)
    devices.poll()
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=3000)
    assert shown[0].title == "GPU problem" and "cuda:1" in shown[0].message and "fell off the bus" in shown[0].message
    relay.close()
    runner.shutdown()
    tray.hide()


def test_devices_text_counts_states():
    from app.fleet import RigDevice, RigView

    v = RigView("u", True, devices=(RigDevice("cuda:0", "x", "cuda", "mining"), RigDevice("cpu", "c", "cpu", "idle")))
    assert devices_text(v) == "1 GPU + CPU: 1 mining, 1 idle" and devices_text(RigView("u")) == "–"
