import subprocess
import sys

from app.context import AppContext
from app.devices import DeviceService
from tests.gpu.nvml_standin import make_standin


def test_one_card_per_device_with_the_riser_shown(make_window, devices):
    w = make_window(devices)
    cards = w.devices_view.cards
    assert list(cards) == ["cuda:0", "cuda:1", "cpu"]
    assert "PCIe 3.0 x1" in cards["cuda:0"].subtitle.text() and "riser" in cards["cuda:0"].subtitle.text()
    assert "x16" in cards["cuda:1"].subtitle.text()
    assert "cores" in cards["cpu"].subtitle.text()


def test_telemetry_refreshes_live(qtbot, make_window, devices, nvml):
    w = make_window(devices)
    card = w.devices_view.cards["cuda:0"]
    nvml.set_reading(0, temp_c=61, util_pct=97, power_w=180)
    qtbot.waitUntil(lambda: card.readings["temp"].text() == "61 °C", timeout=3000)
    assert card.readings["util"].text() == "97%"
    nvml.set_reading(0, temp_c=64)
    qtbot.waitUntil(lambda: card.readings["temp"].text() == "64 °C", timeout=3000)
    assert 61.0 in card.temp_spark.values() and 64.0 in card.temp_spark.values()


def test_unsupported_reading_shows_a_dash_not_zero(qtbot, make_window, devices, nvml):
    nvml.set_unsupported(1, "fan", "power")
    w = make_window(devices)
    card = w.devices_view.cards["cuda:1"]
    qtbot.waitUntil(lambda: card.readings["temp"].text() != "–", timeout=3000)
    assert card.readings["fan"].text() == "–"
    assert card.readings["power"].text() == "–"


def test_mode_switch_persists(qtbot, make_window, devices, ctx):
    w = make_window(devices)
    card = w.devices_view.cards["cuda:0"]
    card.mode_buttons["mining"].click()
    qtbot.waitUntil(lambda: "Mining" in card.state_text.text(), timeout=3000)
    saved = AppContext.open(ctx.paths).settings
    key = devices.device("cuda:0").key
    assert saved.devices[key].mode == "mining"


def test_auto_mode_follows_the_user(qtbot, make_window, devices, idle, ctx):
    ctx.settings.general.away_minutes = 1
    w = make_window(devices)
    card = w.devices_view.cards["cpu"]
    card.mode_buttons["auto"].click()
    qtbot.waitUntil(lambda: "waiting until you are away" in card.state_text.text(), timeout=3000)
    idle.seconds = 120
    qtbot.waitUntil(lambda: "you are away" in card.state_text.text() and "Mining" in card.state_text.text(),
                    timeout=3000)
    idle.seconds = 0.1  # the user touches the mouse
    qtbot.waitUntil(lambda: "waiting" in card.state_text.text(), timeout=1500)
    idle.seconds = None
    qtbot.waitUntil(lambda: "can't tell" in card.state_text.text(), timeout=1500)


def test_throttled_device_says_why(qtbot, make_window, devices, nvml):
    w = make_window(devices)
    card = w.devices_view.cards["cuda:1"]
    nvml.set_reading(1, temp_c=95)
    qtbot.waitUntil(lambda: "Throttled" in card.state_text.text(), timeout=3000)
    assert "95" in card.state_text.text() and "83" in card.state_text.text()


def test_limits_from_the_card_are_saved(qtbot, make_window, devices, ctx):
    w = make_window(devices)
    card = w.devices_view.cards["cuda:0"]
    card.max_temp.setValue(75)
    card.max_power.setValue(150)
    card._emit_limits()
    key = devices.device("cuda:0").key
    qtbot.waitUntil(lambda: AppContext.open(ctx.paths).settings.devices.get(key) is not None
                    and AppContext.open(ctx.paths).settings.devices[key].max_power_w == 150, timeout=3000)
    assert AppContext.open(ctx.paths).settings.devices[key].max_temp_c == 75


def test_start_and_stop_all(qtbot, make_window, devices):
    w = make_window(devices)
    w.devices_view.start_all.click()
    qtbot.waitUntil(lambda: all(s.mode == "mining" for s in w.devices_view.states), timeout=3000)
    assert "3 mining" in w.devices_view.summary.text()
    w.devices_view.stop_all.click()
    qtbot.waitUntil(lambda: all(s.mode == "idle" for s in w.devices_view.states), timeout=3000)


def test_no_nvml_says_so_and_keeps_the_cpu(qtbot, make_window, ctx, idle):
    svc = DeviceService(ctx, nvml_module=make_standin(init_error="LibraryNotFound"), idle=idle)
    try:
        w = make_window(svc)
        assert list(w.devices_view.cards) == ["cpu"]
        assert w.devices_view.banner.isVisibleTo(w) and "CPU" in w.devices_view.banner.text()
    finally:
        svc.close()


def test_lost_gpu_is_shown_not_crashing(qtbot, make_window, devices, nvml):
    w = make_window(devices)
    nvml.lose(1)
    card = w.devices_view.cards["cuda:1"]
    qtbot.waitUntil(lambda: "GPU lost" in card.state_text.text(), timeout=3000)


def test_closing_while_mining_keeps_running_in_tray_and_says_so_once(qtbot, make_window, devices, ctx, monkeypatch):
    w = make_window(devices, tray=True)
    shown = []
    monkeypatch.setattr(w.tray, "showMessage", lambda *a, **k: shown.append(a[0]))
    w.show()
    w.devices_view.start_all.click()
    qtbot.waitUntil(lambda: all(s.mode == "mining" for s in w.devices_view.states), timeout=3000)
    w.close()
    assert not w.isVisible() and len(shown) == 1
    assert AppContext.open(ctx.paths).settings.general.tray_notice_shown
    w.show_and_raise()
    w.close()
    assert not w.isVisible() and len(shown) == 1  # said once only
    qtbot.waitUntil(lambda: w.tray.state == "mining", timeout=3000)


def test_closing_while_idle_quits(qtbot, make_window, devices):
    w = make_window(devices, tray=True)
    w.show()
    w.close()
    assert w.device_runner._closed


def test_gui_process_never_imports_torch_or_pyrender(tmp_path):
    code = (
        "import os, sys\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from app.context import AppContext\n"
        "from app.devices.service import DeviceService\n"
        "from ui.main_window import MainWindow\n"
        "ctx = AppContext.open()\n"
        "svc = DeviceService(ctx)\n"
        "w = MainWindow(ctx=ctx, devices=svc, tray=False); w.show(); app.processEvents()\n"
        "print('HEAVY', sorted(m for m in ('torch', 'pyrender', 'OpenGL', 'trimesh', 'web3') if m in sys.modules))\n"
        "w.quit()\n"
    )
    import os

    env = dict(os.environ, KMINER_HOME=str(tmp_path))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert "HEAVY []" in p.stdout, p.stdout + p.stderr


def test_status_bar_shows_the_sandbox_level(make_window, devices, ctx):
    import shutil

    from app.status import sandbox_status
    from ui.main_window import MainWindow

    item = sandbox_status(ctx.settings)
    w = MainWindow(ctx=ctx, devices=devices, sandbox=item, tray=False)
    try:
        expected = "strict" if shutil.which("bwrap") else "basic (market jobs refused)"
        assert w.sandbox_label.text() == f"Sandbox: {expected}"
        assert "Enforced" in w.sandbox_label.toolTip()
    finally:
        w.quit()


def test_status_bar_says_what_market_jobs_get_under_basic(ctx):
    """Market jobs are refused under basic unless allowed in the settings, and then the bar
    says they are not isolated and its tooltip states the risk (issue 15)."""
    from app.status import sandbox_status

    ctx.settings.jobs.sandbox = "basic"
    assert sandbox_status(ctx.settings).text == "Sandbox: basic (market jobs refused)"
    ctx.settings.jobs.allow_market_jobs_basic = True
    item = sandbox_status(ctx.settings)
    assert item.text == "Sandbox: basic (market jobs allowed: NOT isolated)"
    assert "wallet's keystore" in item.tooltip
