"""A small line chart of the last N readings (utilisation, temperature)."""

from __future__ import annotations

from collections import deque

from ui.fmt import is_number
from ui.qt import QColor, QPainter, QPainterPath, QPen, QPointF, QSize, Qt, QWidget


class Sparkline(QWidget):
    def __init__(self, *, color: str, maximum: float | None = 100.0, length: int = 60, parent=None):
        super().__init__(parent)
        self._values: deque[float | None] = deque(maxlen=length)
        self._color = QColor(color)
        self._max = maximum
        self.setMinimumHeight(28)

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
        top = self._max if self._max is not None else max(max(nums), 1e-9)
        n = self._values.maxlen or 1
        step = r.width() / max(n - 1, 1)
        x0 = r.right() - step * (len(self._values) - 1)
        path = QPainterPath()
        started = False
        for i, v in enumerate(self._values):
            if v is None:
                started = False
                continue
            pt = QPointF(x0 + i * step, r.bottom() - min(v / top, 1.0) * r.height())
            if started:
                path.lineTo(pt)
            else:
                path.moveTo(pt)
                started = True
        p.setPen(QPen(self._color, 1.6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        p.drawPath(path)
