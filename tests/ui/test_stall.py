"""The stall probe sees a blocked GUI thread and nothing when the loop is free."""

from __future__ import annotations

import time

from ui.qt import QTimer
from ui.stall import StallProbe


def test_probe_measures_a_blocking_slot(qtbot):
    probe = StallProbe(tick_ms=10)
    probe.start()
    qtbot.wait(200)
    QTimer.singleShot(0, lambda: time.sleep(0.25))  # a slot that blocks the GUI thread for 250 ms
    qtbot.wait(300)
    probe.stop()
    assert 200 <= probe.longest_ms < 400, probe.summary()
    assert probe.stalls_over(50) >= 1
    assert probe.percentile(50) < 50


def test_probe_on_a_free_loop_stays_small(qtbot):
    probe = StallProbe(tick_ms=10)
    probe.start()
    qtbot.wait(300)
    probe.stop()
    assert len(probe.gaps_ms) >= 10
    assert probe.percentile(50) < 20, probe.summary()
