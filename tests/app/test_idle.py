"""User-away detection: for real under Xvfb (XScreenSaver idle time), and "unknown" elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from app.context import AppContext
from app.devices import DeviceService
from app.devices import IdleDetector, idle_backend_name

pytestmark = pytest.mark.skipif(not shutil.which("Xvfb") or not shutil.which("xdotool"),
                                reason="needs Xvfb and xdotool (packaging/debian-deps.sh test)")


def move_mouse(display: str, x: int = 10, y: int = 10) -> None:
    subprocess.run(["xdotool", "mousemove", str(x), str(y)], env={**os.environ, "DISPLAY": display},
                   check=True, timeout=10)


def x11_env(display: str) -> dict[str, str]:
    return {"DISPLAY": display}  # no WAYLAND_DISPLAY, no XDG_SESSION_TYPE


@pytest.mark.xvfb
def test_idle_time_grows_and_input_resets_it(xvfb):
    display, _ = xvfb
    det = IdleDetector(env=x11_env(display), platform="linux")
    assert det.backend == "x11"
    move_mouse(display, 20, 20)
    first = det.idle_seconds()
    time.sleep(1.2)
    later = det.idle_seconds()
    assert later is not None and first is not None and later >= first + 1.0
    move_mouse(display, 40, 30)
    assert det.idle_seconds() < 0.5
    det.close()


@pytest.mark.xvfb
def test_auto_mode_mines_when_away_and_stops_on_input(xvfb):
    display, _ = xvfb
    det = IdleDetector(env=x11_env(display), platform="linux")
    ctx = AppContext.open()
    ctx.settings.general.away_minutes = 0.1  # 6 s, the smallest the settings allow
    svc = DeviceService(ctx, idle=det.idle_seconds)
    svc.set_mode("cpu", "auto")
    move_mouse(display)
    assert svc.poll()[-1].active is False and svc.user_away() is False
    time.sleep(6.2)
    assert svc.poll()[-1].active is True
    move_mouse(display, 50, 50)
    t0 = time.perf_counter()
    assert svc.poll()[-1].active is False  # the first poll after input: idle again
    assert time.perf_counter() - t0 < 0.1
    svc.close()
    det.close()


@pytest.mark.xvfb
def test_x_server_going_away_gives_unknown_and_the_process_survives(xvfb):
    display, proc = xvfb
    script = (
        "import os, signal, sys, time\n"
        "from app.devices.idle import IdleDetector\n"
        f"d = IdleDetector(env={{'DISPLAY': {display!r}}}, platform='linux')\n"
        "assert d.idle_seconds() is not None\n"
        f"os.kill({proc.pid}, signal.SIGTERM)\n"
        "time.sleep(0.5)\n"
        "print('after', d.idle_seconds(), d.reason)\n"
        "print('after again', d.idle_seconds())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0, out.stderr
    assert "after None lost the connection to the X server" in out.stdout
    assert "after again None" in out.stdout


def test_missing_x_server_is_unknown():
    det = IdleDetector(env={"DISPLAY": ":4999"}, platform="linux")
    assert det.idle_seconds() is None and "cannot open X display" in det.reason


@pytest.mark.parametrize("env, platform, backend", [
    ({"DISPLAY": ":0"}, "linux", "x11"),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux", None),  # XWayland would lie
    ({"DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland"}, "linux", None),
    ({}, "linux", None),
    ({}, "darwin", None),
    ({}, "win32", "windows"),
])
def test_backend_choice_never_guesses(env, platform, backend):
    assert idle_backend_name(env, platform) == backend
    if backend is None:
        det = IdleDetector(env=env, platform=platform)
        assert det.idle_seconds() is None and det.reason
