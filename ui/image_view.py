"""ImageView: a QWidget that paints one QImage scaled to fit (aspect kept, centred), with an
optional message over it and optional mouse orbit/zoom signals.

Reusable by any view that shows rendered frames (the scene editor's live preview, a dataset
browser, detections on a photo): `set_image(QImage)`, `set_rgb(bytes, w, h)`, `set_message(text)`.
Painting only scales an image already in memory: cheap enough for the GUI thread.
"""

from __future__ import annotations

from PySide6.QtGui import QImage

from ui.qt import QColor, QPainter, QPointF, QRectF, QSizePolicy, Qt, QWidget, Signal


def rgb_image(rgb: bytes, width: int, height: int) -> QImage:
    """A QImage owning a copy of packed RGB888 rows (top to bottom)."""
    return QImage(rgb, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class ImageView(QWidget):
    """Signals (only when `interactive`): dragged(dx_px, dy_px) while a button is held,
    released() when it is let go, zoomed(steps) for the wheel (+ = towards the scene)."""

    dragged = Signal(float, float)
    released = Signal()
    zoomed = Signal(float)

    def __init__(self, *, interactive: bool = False, placeholder: str = "", aspect: float | None = None, parent=None):
        super().__init__(parent)
        self._image: QImage | None = None
        self._message = placeholder
        self._error = False
        self._interactive = interactive
        self._last: QPointF | None = None
        self._aspect = aspect  # height / width, for layouts that size it by its width (thumbnails)
        self.setMinimumSize(160, 120)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred if aspect else QSizePolicy.Policy.Expanding)
        policy.setHeightForWidth(aspect is not None)
        self.setSizePolicy(policy)
        if interactive:
            self.setCursor(Qt.CursorShape.OpenHandCursor)

    def hasHeightForWidth(self) -> bool:
        return self._aspect is not None

    def heightForWidth(self, w: int) -> int:
        return round(w * self._aspect) if self._aspect else super().heightForWidth(w)

    def image(self) -> QImage | None:
        return self._image

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self.update()

    def set_rgb(self, rgb: bytes, width: int, height: int) -> None:
        self.set_image(rgb_image(rgb, width, height))

    def set_message(self, text: str, *, error: bool = False) -> None:
        """A line shown over the image (empty: none); errors in red."""
        self._message, self._error = text, error
        self.update()

    def message(self) -> str:
        return self._message

    def image_rect(self) -> QRectF:
        if self._image is None or self._image.isNull():
            return QRectF(self.rect())
        iw, ih = self._image.width(), self._image.height()
        s = min(self.width() / iw, self.height() / ih)
        w, h = iw * s, ih * s
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(self.backgroundRole()).darker(108))
        if self._image is not None and not self._image.isNull():
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(self.image_rect(), self._image)
        if self._message:
            f = p.font()
            f.setPointSizeF(f.pointSizeF() * 1.05)
            p.setFont(f)
            box = QRectF(self.rect()).adjusted(12, 12, -12, -12)
            if self._image is not None:
                fm = p.fontMetrics()
                br = fm.boundingRect(box.toRect(), int(Qt.TextFlag.TextWordWrap), self._message)
                band = QRectF(box.left() - 6, box.bottom() - br.height() - 8, box.width() + 12, br.height() + 12)
                p.fillRect(band, QColor(0, 0, 0, 150))
                p.setPen(QColor("#ff8a80") if self._error else QColor("#ffffff"))
                p.drawText(band.adjusted(6, 4, -6, -4), int(Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap), self._message)
            else:
                p.setPen(QColor("#c0392b") if self._error else self.palette().color(self.foregroundRole()))
                p.drawText(box, int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap), self._message)
        p.end()

    # ------------------------------------------------------------------ mouse
    def mousePressEvent(self, e) -> None:
        if self._interactive:
            self._last = e.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        super().mousePressEvent(e)

    def mouseMoveEvent(self, e) -> None:
        if self._interactive and self._last is not None:
            d = e.position() - self._last
            self._last = e.position()
            if d.x() or d.y():
                self.dragged.emit(d.x(), d.y())
        super().mouseMoveEvent(e)

    def mouseReleaseEvent(self, e) -> None:
        if self._interactive and self._last is not None:
            self._last = None
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            self.released.emit()
        super().mouseReleaseEvent(e)

    def wheelEvent(self, e) -> None:
        if self._interactive:
            steps = e.angleDelta().y() / 120.0
            if steps:
                self.zoomed.emit(steps)
                e.accept()
                return
        super().wheelEvent(e)
