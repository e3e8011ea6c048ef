"""Icons: the app icon and tray icons that show the state (mining / idle / throttled)."""

from __future__ import annotations

from functools import lru_cache

from app.resources import resource_path
from ui.qt import QColor, QIcon, QPainter, QPen, QPixmap, Qt

STATE_COLORS = {
    "mining": "#27ae60",
    "idle": "#95a5a6",
    "throttled": "#e67e22",
    "away": "#2f80ed",
    "blocked": "#e67e22",  # set to mine, but the rig cannot claim (app.readiness)
}


@lru_cache(maxsize=None)
def app_icon() -> QIcon:
    return QIcon(str(resource_path("icons", "kminer.svg")))


@lru_cache(maxsize=None)
def state_icon(state: str) -> QIcon:
    """The app icon with a coloured status dot in the lower right corner."""
    icon = QIcon()
    for size in (16, 22, 32, 48, 64):
        pm = app_icon().pixmap(size, size)
        if pm.isNull():
            pm = QPixmap(size, size)
            pm.fill(QColor("#2f80ed"))
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        d = max(6, size * 0.42)
        p.setPen(QPen(QColor("white"), max(1.0, size / 20)))
        p.setBrush(QColor(STATE_COLORS.get(state, "#95a5a6")))
        p.drawEllipse(int(size - d - 0.5), int(size - d - 0.5), int(d), int(d))
        p.end()
        icon.addPixmap(pm)
    return icon


def dot(state: str, size: int = 10) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(STATE_COLORS.get(state, "#95a5a6")))
    p.drawEllipse(0, 0, size, size)
    p.end()
    return pm
