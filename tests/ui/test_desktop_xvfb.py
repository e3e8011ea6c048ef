"""The real app on a real X server (Xvfb): it starts, paints, and docks in a tray host."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.xvfb


def x_env(display: str, home) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=display, KMINER_HOME=str(home))
    return env


def test_a_new_user_gets_the_first_run_wizard_painted(xvfb, kminer_home):
    display, _ = xvfb
    env = x_env(display, kminer_home)
    env["KMINER_REPORT_STARTUP"] = "exit"
    p = subprocess.run([sys.executable, "-m", "cli"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    m = re.search(r"first paint: (\d+) ms after process start .*FirstRunWizard", p.stderr)
    assert m, p.stderr
    print(f"first-run wizard painted after {m.group(1)} ms")


def test_app_with_a_wallet_starts_and_paints_the_main_window(xvfb, kminer_home):
    from app.context import AppContext
    from wallet.keystore import Keystore

    Keystore(AppContext.open().paths.keystore_dir, scrypt_n=2**4, allow_weak_kdf=True).create("pw-for-tests")
    display, _ = xvfb
    env = x_env(display, kminer_home)
    env["KMINER_REPORT_STARTUP"] = "exit"
    p = subprocess.run([sys.executable, "-m", "cli"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    m = re.search(r"first paint: (\d+) ms after process start .*MainWindow", p.stderr)
    assert m, p.stderr
    print(f"main window painted after {m.group(1)} ms")


TRAY_PROBE = r"""
import sys, time
from PySide6.QtWidgets import QApplication, QSystemTrayIcon
app = QApplication(sys.argv[:1])
deadline = time.monotonic() + 10
while not QSystemTrayIcon.isSystemTrayAvailable() and time.monotonic() < deadline:
    app.processEvents(); time.sleep(0.1)
from app.context import AppContext
from app.devices.service import DeviceService
from ui.main_window import MainWindow
ctx = AppContext.open()
svc = DeviceService(ctx)
svc.set_mode("cpu", "mining")
w = MainWindow(ctx=ctx, devices=svc)
w.show()
end = time.monotonic() + 3
while time.monotonic() < end:
    app.processEvents(); time.sleep(0.05)
print("TRAY", QSystemTrayIcon.isSystemTrayAvailable(), w.tray is not None and w.tray.isVisible(),
      w.tray.state if w.tray else None)
w.close()  # mining: hides to the tray instead of quitting
print("HIDDEN", not w.isVisible())
w.quit()
"""


@pytest.mark.skipif(not shutil.which("trayer"), reason="needs trayer (a tray host)")
def test_tray_icon_docks_in_a_real_tray_and_window_hides_to_it(xvfb, kminer_home):
    display, _ = xvfb
    env = x_env(display, kminer_home)
    tray = subprocess.Popen(["trayer", "--expand", "true", "--widthtype", "request"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(0.5)
        p = subprocess.run([sys.executable, "-c", TRAY_PROBE], capture_output=True, text=True, env=env, timeout=120)
    finally:
        tray.terminate()
        tray.wait(10)
    assert "TRAY True True mining" in p.stdout, p.stdout + p.stderr
    assert "HIDDEN True" in p.stdout
