"""Small building blocks every page uses."""

from __future__ import annotations

from ui.qt import QApplication, QEvent, QLabel, QPalette, QSizePolicy, Qt


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


class MessageStrip(QLabel):
    """A page's one-line message bar whose space is always kept: showing, changing or clearing
    a message never moves what is below it (a banner that appears pushes a page's content
    down just as the user reaches for it). A message wider than the bar is elided; the whole
    text is `message` and the tooltip. `styles`: {kind: CSS background}."""

    PADDING_PX = 8

    def __init__(self, styles: dict[str, str], parent=None):
        super().__init__(parent)
        self.message = ""
        self.kind = ""
        self._styles = styles
        policy = QSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        policy.setRetainSizeWhenHidden(True)
        self.setSizePolicy(policy)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self._fit_height()
        self.setVisible(False)

    def show_message(self, text: str, kind: str = "info") -> None:
        """Show `text` (an empty text clears the bar; its space stays)."""
        self.message, self.kind = text, kind
        style = self._styles.get(kind) or next(iter(self._styles.values()), "")
        self.setStyleSheet(f"{style} border-radius: 6px; padding: {self.PADDING_PX}px;")
        self._elide()
        self.setVisible(bool(text))

    def _fit_height(self) -> None:
        self.setFixedHeight(self.fontMetrics().height() + 2 * self.PADDING_PX + 2)

    def _elide(self) -> None:
        room = max(self.width() - 2 * self.PADDING_PX - 4, 0)
        shown = self.fontMetrics().elidedText(self.message, Qt.TextElideMode.ElideRight, room)
        self.setText(shown)
        self.setToolTip(self.message if shown != self.message else "")

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._elide()

    def changeEvent(self, event) -> None:  # noqa: N802
        if event.type() == QEvent.Type.FontChange:
            self._fit_height()
            self._elide()
        super().changeEvent(event)
