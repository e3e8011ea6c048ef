"""UI fixtures: the real DeviceService over the NVML stand-in (this machine has no GPU)."""

from __future__ import annotations

import pytest

from app.context import AppContext
from app.devices import DeviceService
from tests.gpu.nvml_standin import RTX_3070_X1, RTX_3090_X16, make_standin


class Idle:
    """Seconds since the last input, set by the test (None: unknown)."""

    def __init__(self, seconds: float | None = 0.0):
        self.seconds = seconds

    def __call__(self) -> float | None:
        return self.seconds


@pytest.fixture
def ctx():
    c = AppContext.open()
    c.settings.general.telemetry_interval_s = 0.2
    return c


@pytest.fixture
def idle():
    return Idle(0.0)


@pytest.fixture
def nvml():
    return make_standin(gpus=[RTX_3070_X1, RTX_3090_X16])


@pytest.fixture
def devices(ctx, nvml, idle):
    svc = DeviceService(ctx, nvml_module=nvml, idle=idle)
    yield svc
    svc.close()


@pytest.fixture
def make_window(qtbot, ctx):
    """Builds MainWindow with the given services; closes it (and its threads) after the test."""
    from ui.main_window import MainWindow

    made = []

    def make(devices, tray=False):
        w = MainWindow(ctx=ctx, devices=devices, tray=tray)
        qtbot.addWidget(w)
        made.append(w)
        return w

    yield make
    for w in made:
        w.quit()
