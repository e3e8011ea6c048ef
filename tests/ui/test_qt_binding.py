"""The Qt binding itself: PySide6 6.12.0 on Python 3.11 drops a reference to None on every
call of a method that returns nothing (setText, update, QTimer.singleShot...). None is not
immortal before Python 3.12, so a window that updates its labels about 80 times a second
(the Devices page alone) frees None after a few minutes: "Fatal Python error: none_dealloc".
pyproject.toml keeps PySide6 below 6.12; this test fails on any binding with that bug."""

from __future__ import annotations

import gc
import sys

from ui.qt import QLabel, QTimer


def test_void_qt_calls_keep_nones_refcount(qtbot):
    label = QLabel("x")
    qtbot.addWidget(label)
    calls = 2000
    gc.collect()
    gc.disable()   # garbage collected meanwhile would release references to None of its own
    try:
        before = sys.getrefcount(None)
        for i in range(calls):
            label.setText(str(i % 7))       # a method that returns nothing
            label.update()
            QTimer.singleShot(0, label.hide)  # a static one
        lost = before - sys.getrefcount(None)
    finally:
        gc.enable()
    assert lost < calls // 10, f"{lost} references to None lost over {3 * calls} void Qt calls: the Qt binding is broken"
