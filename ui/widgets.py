"""Small building blocks every page uses."""

from __future__ import annotations

from ui.qt import QApplication, QEvent, QLabel, QPalette


class MutedLabel(QLabel):
    """Secondary text in the theme's placeholder colour, readable in light and dark themes
    (palette(mid) is too faint on a dark window); follows theme switches."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self._colour = ""
        self._recolour()

    def _recolour(self) -> None:
        app = QApplication.instance()
        pal = app.palette() if app is not None else self.palette()
        c = pal.color(QPalette.ColorRole.PlaceholderText)  # keep its alpha: light themes give black at 50%
        colour = f"rgba({c.red()}, {c.green()}, {c.blue()}, {c.alpha()})"
        if colour != self._colour:
            self._colour = colour
            self.setStyleSheet(f"color: {colour};")

    def theme_changed(self) -> None:
        """Called by ui.theme.apply_theme (a styled label does not always get the palette event)."""
        self._recolour()

    def changeEvent(self, event) -> None:
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.PaletteChange):
            self._recolour()
        super().changeEvent(event)


def page_heading(text: str) -> tuple[QLabel, QLabel]:
    """A page's title (large, bold) and the muted summary line under it."""
    title = QLabel(text)
    f = title.font()
    f.setPointSizeF(f.pointSizeF() * 1.5)
    f.setBold(True)
    title.setFont(f)
    return title, MutedLabel()
