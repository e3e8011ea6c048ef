"""Small building blocks every page uses."""

from __future__ import annotations

from ui.qt import QLabel


def page_heading(text: str) -> tuple[QLabel, QLabel]:
    """A page's title (large, bold) and the muted summary line under it."""
    title = QLabel(text)
    f = title.font()
    f.setPointSizeF(f.pointSizeF() * 1.5)
    f.setBold(True)
    title.setFont(f)
    summary = QLabel()
    summary.setStyleSheet("color: palette(mid);")
    return title, summary
