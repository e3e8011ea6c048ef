"""A small line chart of the last N readings (utilisation, temperature)."""

from __future__ import annotations

from collections import deque

from ui.fmt import is_number
from ui.qt import QColor, QPainter, QPainterPath, QPen, QPointF, QSize, Qt, QWidget


class Sparkline(QWidget):
    def __init__(self, *, color: str, minimum: float = 0.0, maximum: float | None = 100.0, length: int = 60,
                 parent=None):
        super().__init__(parent)
        self._values: deque[float | None] = deque(maxlen=length)
        self._color = QColor(color)
        self._min = minimum
        self._max = maximum
        self.setMinimumHeight(34)

    def sizeHint(self) -> QSize:
        return QSize(160, 32)

    def add(self, value) -> None:
        self._values.append(float(value) if is_number(value) else None)
        self.update()

    def values(self) -> list[float | None]:
        return list(self._values)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = self.rect().adjusted(1, 2, -1, -2)
        base = QColor(self.palette().color(self.foregroundRole()))
        base.setAlpha(40)
        p.setPen(QPen(base, 1))
        p.drawLine(r.bottomLeft(), r.bottomRight())
        nums = [v for v in self._values if v is not None]
        if not nums:
            return
        top = self._max if self._max is not None else max(max(nums), self._min + 1e-9)
        span = max(top - self._min, 1e-9)
        # Until the window is full the readings so far fill the width, so a fresh chart
        # is a readable line rather than a dot at the right edge.
        n = max(len(self._values), 2)
        step = r.width() / (n - 1)
        line = QPainterPath()
        area = QPainterPath()
        started = False
        last_x = r.left()
        for i, v in enumerate(self._values):
            if v is None:
                if started:
                    area.lineTo(QPointF(last_x, r.bottom()))
                started = False
                continue
            frac = min(max((v - self._min) / span, 0.0), 1.0)
            pt = QPointF(r.left() + i * step, r.bottom() - frac * r.height())
            if started:
                line.lineTo(pt)
                area.lineTo(pt)
            else:
                line.moveTo(pt)
                area.moveTo(QPointF(pt.x(), r.bottom()))
                area.lineTo(pt)
                started = True
            last_x = pt.x()
        if started:
            area.lineTo(QPointF(last_x, r.bottom()))
        fill = QColor(self._color)
        fill.setAlpha(45)
        p.fillPath(area, fill)
        p.setPen(QPen(self._color, 1.6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        p.drawPath(line)
