"""QR codes drawn as QImages (segno computes the modules, we paint them).

Pure and quick (~1 ms for an address): safe on the GUI thread.
"""

from __future__ import annotations

import segno

from ui.qt import QColor, QImage, QPainter, QPixmap, Qt

QUIET_ZONE = 4
"""Modules of white border around the code (the QR standard's quiet zone)."""


def qr_matrix(text: str) -> list[list[bool]]:
    """The dark (True) / light modules of `text`'s QR code, medium error correction, no border."""
    qr = segno.make(text, error="m", micro=False)
    return [[bool(v) for v in row] for row in qr.matrix]


def qr_image(text: str, size_px: int, *, dark: str = "#000000", light: str = "#ffffff") -> QImage:
    """A square QImage of about `size_px` (whole pixels per module, so edges stay sharp)."""
    m = qr_matrix(text)
    modules = len(m) + 2 * QUIET_ZONE
    scale = max(1, size_px // modules)
    side = modules * scale
    img = QImage(side, side, QImage.Format.Format_RGB32)
    img.fill(QColor(light))

    p = QPainter(img)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(dark))
    for y, row in enumerate(m):
        for x, on in enumerate(row):
            if on:
                p.drawRect((x + QUIET_ZONE) * scale, (y + QUIET_ZONE) * scale, scale, scale)
    p.end()
    return img


def qr_pixmap(text: str, size_px: int) -> QPixmap:
    return QPixmap.fromImage(qr_image(text, size_px))
