"""An event-loop stall probe: how long the GUI thread was unable to run timers.

A QTimer fires every `tick_ms`; each tick measures the time since the previous one. A gap
longer than the tick is time the GUI thread spent on something else (a slow slot, a long
paint, a blocking call). `longest_ms` is the worst extra delay seen, `stalls_over(ms)`
counts gaps beyond a threshold. Used by the stall benchmark (bench/bench_gui_stall.py),
by `KMINER_REPORT_STALL=1 kminer gui` and by tests that assert the GUI stays responsive.

Threading: create, start and read it on the GUI thread.
"""

from __future__ import annotations

import time

from ui.qt import QObject, Qt, QTimer


class StallProbe(QObject):
    def __init__(self, tick_ms: int = 10, parent: QObject | None = None):
        super().__init__(parent)
        self.tick_ms = tick_ms
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self._tick)
        self._last: float | None = None
        self.gaps_ms: list[float] = []
        """Extra delay of each tick beyond `tick_ms` (0 when on time), in order."""

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self._last = None

    def reset(self) -> None:
        self.gaps_ms.clear()
        if self._last is not None:
            self._last = time.perf_counter()

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps_ms.append(max(0.0, (now - self._last) * 1000 - self.tick_ms))
        self._last = now

    @property
    def longest_ms(self) -> float:
        return max(self.gaps_ms, default=0.0)

    def stalls_over(self, ms: float) -> int:
        return sum(1 for g in self.gaps_ms if g > ms)

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100) of the extra delays, in ms."""
        if not self.gaps_ms:
            return 0.0
        xs = sorted(self.gaps_ms)
        i = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
        return xs[i]

    def summary(self) -> str:
        return (f"{len(self.gaps_ms)} ticks of {self.tick_ms} ms: longest stall {self.longest_ms:.1f} ms, "
                f"p99 {self.percentile(99):.1f} ms, {self.stalls_over(50)} over 50 ms")
