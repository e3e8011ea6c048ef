"""The "Try it" panel of the model market: a drop zone for photos, the sandboxed run's
progress with Cancel, the annotated image with its detections, Save. The model market view
(ui.model_market_view) runs the model and fills it in."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QProgressBar

from app.resources import resource_path
from ui.qt import (
    QAbstractItemView, QFrame, QHBoxLayout, QHeaderView, QLabel, QPainter, QPixmap, QPushButton, QSizePolicy, Qt,
    QTableWidget, QToolButton, QVBoxLayout, QWidget, Signal,
)
from ui.widgets import DropFiles, muted

EXAMPLE_PHOTO = resource_path("examples", "infer_shelf.png")

PREVIEW_MAX_PX = 1600
"""Annotated images are scaled to at most this width for display (the saved files are full size)."""


class ImageView(QWidget):
    """A picture scaled to fit (aspect kept), or a hint while there is none."""

    def __init__(self, hint: str, parent=None):
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._hint = hint
        self.setMinimumSize(320, 220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_pixmap(self, pm: QPixmap | None) -> None:
        self._pixmap = pm
        self.update()

    def pixmap(self) -> QPixmap | None:
        return self._pixmap

    def set_hint(self, text: str) -> None:
        self._hint = text
        self.update()

    def paintEvent(self, _e) -> None:  # noqa: N802
        p = QPainter(self)
        r = self.rect().adjusted(1, 1, -1, -1)
        if self._pixmap is None or self._pixmap.isNull():
            pen = p.pen()
            pen.setColor(self.palette().mid().color())
            pen.setStyle(Qt.PenStyle.DashLine)
            pen.setWidth(2)
            p.setPen(pen)
            p.drawRoundedRect(r, 10, 10)
            p.setPen(self.palette().text().color())
            p.drawText(r, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._hint)
            return
        pm = self._pixmap.scaled(r.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
        p.drawPixmap(r.x() + (r.width() - pm.width()) // 2, r.y() + (r.height() - pm.height()) // 2, pm)


class TryPanel(DropFiles, QFrame):
    """Drop zone, progress with Cancel, the annotated image, its detections, Save."""

    photosDropped = Signal(object)   # list[Path]
    chooseRequested = Signal()
    exampleRequested = Signal()
    cancelRequested = Signal()
    saveRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("TryPanel")
        self.setStyleSheet("#TryPanel { background: palette(base); border: 1px solid palette(mid); border-radius: 8px; }"
                           "#TryPanel[dragover=\"true\"] { border: 2px dashed palette(highlight); }")
        self._init_drop()
        self.title = QLabel("Try it")
        f = self.title.font()
        f.setPointSizeF(f.pointSizeF() * 1.25)
        f.setBold(True)
        self.title.setFont(f)
        self.model_label = QLabel("Buy a model, then drop photos on it or here.")
        muted(self.model_label)
        self.model_label.setWordWrap(True)
        self.choose_button = QPushButton("Choose photos…")
        self.choose_button.clicked.connect(self.chooseRequested)
        self.example_button = QToolButton()
        self.example_button.setText("Example photo")
        self.example_button.setToolTip("No photo at hand? Try the model on a shelf photo that comes with the app")
        self.example_button.clicked.connect(self.exampleRequested)
        self.example_button.setVisible(EXAMPLE_PHOTO.is_file())
        self.image = ImageView("Drop photos here\n(PNG, JPEG…)")
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.prev_button = QToolButton()
        self.prev_button.setText("‹")
        self.next_button = QToolButton()
        self.next_button.setText("›")
        self.page_label = QLabel()
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.domain_warning = QLabel()  # jobs.domain: this photo is far from the training images
        self.domain_warning.setWordWrap(True)
        self.domain_warning.setStyleSheet("color: #b9770e;")
        self.domain_warning.setVisible(False)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Class", "Score", "Box (x1, y1, x2, y2)"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setMaximumHeight(150)
        self.save_button = QPushButton("Save annotated images…")
        self.save_button.clicked.connect(self.saveRequested)
        self.open_button = QToolButton()
        self.open_button.setText("Open folder")

        head = QHBoxLayout()
        titles = QVBoxLayout()
        titles.addWidget(self.title)
        titles.addWidget(self.model_label)
        head.addLayout(titles, 1)
        head.addWidget(self.example_button, 0, Qt.AlignmentFlag.AlignTop)
        head.addWidget(self.choose_button, 0, Qt.AlignmentFlag.AlignTop)
        run = QHBoxLayout()
        run.addWidget(self.status, 1)
        run.addWidget(self.cancel_button)
        nav = QHBoxLayout()
        nav.addWidget(self.prev_button)
        nav.addWidget(self.page_label)
        nav.addWidget(self.next_button)
        nav.addWidget(self.summary, 1)
        save = QHBoxLayout()
        save.addStretch(1)
        save.addWidget(self.open_button)
        save.addWidget(self.save_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(14, 12, 14, 12)
        box.addLayout(head)
        box.addWidget(self.image, 1)
        box.addWidget(self.progress)
        box.addLayout(run)
        box.addLayout(nav)
        box.addWidget(self.domain_warning)
        box.addWidget(self.table)
        box.addLayout(save)
        self.set_busy(False)
        self.show_results_controls(False)

    def set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.choose_button.setEnabled(not busy)
        self.example_button.setEnabled(not busy)

    def show_results_controls(self, on: bool, pages: int = 0) -> None:
        if not on:
            self.domain_warning.setVisible(False)
        for w in (self.summary, self.table, self.save_button, self.open_button):
            w.setVisible(on)
        for w in (self.prev_button, self.next_button, self.page_label):
            w.setVisible(on and pages > 1)

    def _dropped(self, files: list[Path]) -> None:
        self.photosDropped.emit(files)


def load_preview(path: Path) -> QImage:
    """Read (and shrink) an annotated image on a worker thread (QImage is thread-safe, QPixmap isn't)."""
    img = QImage(str(path))
    if not img.isNull() and img.width() > PREVIEW_MAX_PX:
        img = img.scaledToWidth(PREVIEW_MAX_PX, Qt.TransformationMode.SmoothTransformation)
    return img
