"""Small building blocks every page uses."""

from __future__ import annotations

from pathlib import Path

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


class ElidedLabel(QLabel):
    """One line of plain text that never clips mid-character: a text wider than the label is
    elided (`mode`: where the "…" goes) and the whole text is `full_text` and the tooltip.
    Its width comes from the layout (it never widens the window)."""

    def __init__(self, mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight, parent=None):
        super().__init__(parent)
        self.full_text = ""
        self._mode = mode
        self._keep = 0
        self._margin_px = 0
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def set_full_text(self, text: str, *, keep: int = 0, mode: Qt.TextElideMode | None = None) -> None:
        """Show `text`; its first `keep` characters (a name before a path or a status) stay
        whole while there is room for them, and only the rest is elided (by `mode`, default
        the label's)."""
        self.full_text = text
        self._keep = keep
        if mode is not None:
            self._mode = mode
        self._elide()

    def _elide(self) -> None:
        room = max(self.width() - self._margin_px - 4, 0)
        fm = self.fontMetrics()
        text, keep = self.full_text, self._keep
        shown = fm.elidedText(text, self._mode, room)
        if keep and shown != text:
            head = text[:keep]
            rest_room = room - fm.horizontalAdvance(head)
            if rest_room >= 4 * fm.horizontalAdvance("…"):
                shown = head + fm.elidedText(text[keep:], self._mode, rest_room)
            else:
                shown = fm.elidedText(text, Qt.TextElideMode.ElideRight, room)
        self.setText(shown)
        self.setToolTip(self.full_text if shown != self.full_text else "")

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._elide()

    def changeEvent(self, event) -> None:  # noqa: N802
        if event.type() == QEvent.Type.FontChange:
            self._elide()
        super().changeEvent(event)


class MessageStrip(ElidedLabel):
    """A page's one-line message bar whose space is always kept: showing, changing or clearing
    a message never moves what is below it (a banner that appears pushes a page's content
    down just as the user reaches for it). A message wider than the bar is elided; the whole
    text is `message` and the tooltip. `styles`: {kind: CSS background}."""

    PADDING_PX = 8

    def __init__(self, styles: dict[str, str], parent=None):
        super().__init__(Qt.TextElideMode.ElideRight, parent)
        self.kind = ""
        self._styles = styles
        self._margin_px = 2 * self.PADDING_PX
        policy = QSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        policy.setRetainSizeWhenHidden(True)
        self.setSizePolicy(policy)
        self._fit_height()
        self.setVisible(False)

    @property
    def message(self) -> str:
        return self.full_text

    def show_message(self, text: str, kind: str = "info") -> None:
        """Show `text` (an empty text clears the bar; its space stays)."""
        self.kind = kind
        style = self._styles.get(kind) or next(iter(self._styles.values()), "")
        self.setStyleSheet(f"{style} border-radius: 6px; padding: {self.PADDING_PX}px;")
        self.set_full_text(text)
        self.setVisible(bool(text))

    def _fit_height(self) -> None:
        self.setFixedHeight(self.fontMetrics().height() + 2 * self.PADDING_PX + 2)

    def changeEvent(self, event) -> None:  # noqa: N802
        if event.type() == QEvent.Type.FontChange:
            self._fit_height()
        super().changeEvent(event)


def muted(label: QLabel) -> QLabel:
    """Secondary text: the palette's placeholder colour (readable in light and dark, follows theme changes)."""
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


def short_address(a: str) -> str:
    return f"{a[:6]}…{a[-4:]}" if len(a) > 12 else a


def local_files(mime) -> list[Path]:
    """The local files of a drag's URLs (remote URLs are ignored)."""
    if mime is None or not mime.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]


def clear_layout(layout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        if item.widget() is not None:
            item.widget().deleteLater()
        elif item.layout() is not None:
            clear_layout(item.layout())


class DropFiles:
    """Mixin for a widget that accepts dropped local files: call `_init_drop()` in `__init__`;
    `self._dropped(paths)` is called with them; the `dragover` property styles the hover."""

    def _init_drop(self) -> None:
        self.setAcceptDrops(True)

    def dragEnterEvent(self, e) -> None:  # noqa: N802 (Qt's name)
        if local_files(e.mimeData()):
            e.acceptProposedAction()
            self._set_dragover(True)
        else:
            e.ignore()

    def dragLeaveEvent(self, e) -> None:  # noqa: N802
        self._set_dragover(False)

    def dropEvent(self, e) -> None:  # noqa: N802
        self._set_dragover(False)
        files = local_files(e.mimeData())
        if files:
            e.acceptProposedAction()
            self._dropped(files)

    def _set_dragover(self, on: bool) -> None:
        self.setProperty("dragover", "true" if on else "false")
        self.style().unpolish(self)
        self.style().polish(self)
