"""Browsing what an order delivered: a dataset (images with their COCO boxes drawn, a page of
thumbnails at a time, one picked large) and a trained model (its curves.png and card figures).

Threading: reading annotations.json, decoding images and drawing boxes happen on the
`runner` given (QImage and QPainter on a QImage are safe off the GUI thread); only the
finished QImages are turned into pixmaps on the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtGui import QImage

from app.models import TrainedModel, read_trained_model
from app.runtime import read_delivered_json
from ui.background import Background
from ui.image_view import ImageView as ScaledView
from ui.qt import (
    QColor, QDialog, QFont, QHBoxLayout, QIcon, QLabel, QListWidget, QListWidgetItem, QPainter, QPen, QPixmap, QPushButton,
    QRectF, QSize, Qt, QVBoxLayout, QWidget, Signal,
)
from ui.try_panel import ImageView
from ui.widgets import muted

PER_PAGE = 24
THUMB_W = 128
LARGE_W = 960
LABELS_UP_TO = 25
"""The large view names the boxes' classes when an image has at most this many (else colours only)."""
PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#0082c8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#d2f53c",
           "#fabebe", "#008080", "#aa6e28"]


@dataclass(frozen=True)
class DatasetPage:
    folder: Path
    """The dataset's folder (of several shard folders, the first)."""
    page: int
    pages: int
    images: int
    boxes: int
    per_class: dict
    thumbs: list   # (file_name, QImage with boxes, box count)


def read_coco(folders) -> dict:
    """annotations.json of a dataset folder, or of the shard folders of one order merged as
    `merge_datasets` would (frame ids are the scene's, unique across shards), indexed: images
    in id order, each with the folder it is in, boxes per image."""
    folders = [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]
    cats: dict = {}
    by: dict[tuple, list] = {}
    images = []
    for i, folder in enumerate(folders):
        doc = read_delivered_json(folder / "annotations.json", root=folder)  # a miner's file: bounded
        if not isinstance(doc, dict):
            raise ValueError(f"{folder / 'annotations.json'} is not a COCO object")
        for c in doc.get("categories", []):
            cats.setdefault(c["id"], c["name"])
        for a in doc.get("annotations", []):
            by.setdefault((i, a["image_id"]), []).append(a)
        images += [{**im, "_dir": folder, "_key": (i, im["id"])} for im in doc.get("images", [])]
    images.sort(key=lambda im: (im["id"], im["_key"]))
    return {"images": images, "boxes": by, "categories": cats}


def draw_boxes(img: QImage, anns: list, cats: dict, *, labels: bool = True) -> QImage:
    """A copy of `img` with every COCO box ([x, y, w, h] in pixels) drawn, with its class name if `labels`."""
    out = img.convertToFormat(QImage.Format.Format_RGB32)
    p = QPainter(out)
    p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
    f = QFont()
    f.setPixelSize(max(9, min(14, out.height() // 30)))
    p.setFont(f)
    lw = max(1, round(min(out.width(), out.height()) / 240))
    for a in anns:
        x, y, w, h = a["bbox"]
        colour = QColor(PALETTE[(a.get("category_id", 1) - 1) % len(PALETTE)])
        p.setPen(QPen(colour, lw))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(QRectF(x, y, w, h))
        if labels:
            p.drawText(QRectF(x, y - f.pixelSize() - 2, max(w, 120), f.pixelSize() + 2),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
                       cats.get(a.get("category_id"), "").replace("_", " "))
    p.end()
    return out


def load_page(folder, page: int, coco: dict | None = None, per_page: int = PER_PAGE,
              thumb_w: int = THUMB_W) -> tuple[DatasetPage, dict]:
    """One page of thumbnails with boxes (runner thread); `folder`: a dataset folder, or the
    shard folders of one order. Returns (page, the parsed COCO for reuse)."""
    coco = coco or read_coco(folder)
    images = coco["images"]
    pages = max(1, -(-len(images) // per_page))
    page = max(0, min(page, pages - 1))
    thumbs = []
    for im in images[page * per_page:(page + 1) * per_page]:
        q = QImage(str(im["_dir"] / im["file_name"]))
        anns = coco["boxes"].get(im["_key"], [])
        if not q.isNull():
            q = draw_boxes(q, anns, coco["categories"], labels=False).scaledToWidth(thumb_w, Qt.TransformationMode.SmoothTransformation)
        thumbs.append((im["file_name"], q, len(anns)))
    per_class: dict[str, int] = {}
    total = 0
    for anns in coco["boxes"].values():
        for a in anns:
            name = coco["categories"].get(a.get("category_id"), "?")
            per_class[name] = per_class.get(name, 0) + 1
            total += 1
    first = Path(folder) if isinstance(folder, (str, Path)) else Path(next(iter(folder)))
    return DatasetPage(first, page, pages, len(images), total, per_class, thumbs), coco


def load_large(folder, coco: dict, index: int) -> tuple[str, QImage, int]:
    im = coco["images"][index]
    q = QImage(str(im["_dir"] / im["file_name"]))
    anns = coco["boxes"].get(im["_key"], [])
    if not q.isNull():
        q = draw_boxes(q, anns, coco["categories"], labels=len(anns) <= LABELS_UP_TO)
        if q.width() > LARGE_W:
            q = q.scaledToWidth(LARGE_W, Qt.TransformationMode.SmoothTransformation)
    return im["file_name"], q, len(anns)


class DatasetBrowser(QWidget):
    """A delivered dataset: summary with a colour key, one image large with its boxes, and a
    strip of thumbnails (a page at a time). The dataset is one folder (a merged job-market
    order) or the shard folders of one order-market order, shown merged."""

    loaded = Signal(object)   # DatasetPage, or an exception

    def __init__(self, *, runner: Background, parent=None):
        super().__init__(parent)
        self._runner = runner
        self.folder: Path | None = None
        """The dataset's folder (of several shard folders, the first); None before `load`."""
        self.folders: tuple[Path, ...] = ()
        self.page: DatasetPage | None = None
        self._coco: dict | None = None
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.large = ImageView("Pick a frame below")
        self.large.setMinimumSize(200, 140)
        self.large.setToolTip("Click to see this frame full size, with its boxes named")
        self.large.setCursor(Qt.CursorShape.PointingHandCursor)
        self.large.mousePressEvent = lambda _e: self.enlarge()
        self.enlarged: QDialog | None = None
        self._large_image: QImage | None = None
        self._large_name = ""
        self.large_label = muted(QLabel())
        self.prev_button = QPushButton("‹")
        self.next_button = QPushButton("›")
        for b in (self.prev_button, self.next_button):
            b.setFixedWidth(32)
        self.page_label = muted(QLabel())
        self.prev_button.clicked.connect(lambda: self.show_page((self.page.page if self.page else 0) - 1))
        self.next_button.clicked.connect(lambda: self.show_page((self.page.page if self.page else 0) + 1))
        self.strip = QListWidget()
        self.strip.setViewMode(QListWidget.ViewMode.IconMode)
        self.strip.setFlow(QListWidget.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setMovement(QListWidget.Movement.Static)
        self.strip.setIconSize(QSize(THUMB_W, THUMB_W * 3 // 4))
        self.strip.setSpacing(3)
        self.strip.setFixedHeight(THUMB_W * 3 // 4 + 48)
        self.strip.currentRowChanged.connect(self._strip_row)
        nav = QHBoxLayout()
        nav.addWidget(self.large_label, 1)
        nav.addWidget(self.page_label)
        nav.addWidget(self.prev_button)
        nav.addWidget(self.next_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addWidget(self.summary)
        box.addWidget(self.large, 1)
        box.addLayout(nav)
        box.addWidget(self.strip)

    @property
    def thumbs(self) -> list:
        return [self.strip.item(i) for i in range(self.strip.count())]

    def load(self, folder) -> None:
        """Show the dataset in `folder`, or merged from a list of shard folders (one order's)."""
        self.folders = (Path(folder),) if isinstance(folder, (str, Path)) else tuple(Path(f) for f in folder)
        self.folder = self.folders[0] if self.folders else None
        self._coco = None
        self.page = None
        n = len(self.folders)
        self.summary.setText(f"Reading {self.folder}…" if n == 1 else f"Reading {n} shards…")
        self.show_page(0)

    def show_page(self, page: int) -> None:
        if not self.folders:
            return
        folders, coco = self.folders, self._coco
        self._runner.submit(lambda: (folders, load_page(folders, page, coco)), on_done=self._apply,
                            on_error=lambda e: self._failed(e, folders))

    def _failed(self, err: BaseException, folders=None) -> None:
        if folders is not None and folders != self.folders:
            return   # an older dataset's answer
        self.summary.setText(f"Could not read the dataset: {err}")
        self.loaded.emit(err)

    def _apply(self, value) -> None:
        folders, (page, coco) = value
        if folders != self.folders:
            return   # an older dataset's answer
        self._coco = coco
        self.page = page
        ids = {name: cid for cid, name in coco["categories"].items()}
        key = " ".join(f"<span style='color:{PALETTE[(ids.get(k, 1) - 1) % len(PALETTE)]}'>■</span>&nbsp;"
                       f"{k.replace('_', ' ')}&nbsp;{n}" for k, n in sorted(page.per_class.items(), key=lambda kv: -kv[1]))
        shards = f" from {len(self.folders)} shards" if len(self.folders) > 1 else ""
        self.summary.setText(f"<b>{page.images}</b> images{shards}, <b>{page.boxes}</b> boxes &nbsp; {key}")
        self.summary.setToolTip("\n".join(map(str, self.folders)))
        first = page.page * PER_PAGE
        self.page_label.setText(f"frames {first + 1}–{first + len(page.thumbs)} of {page.images}")
        self.prev_button.setEnabled(page.page > 0)
        self.next_button.setEnabled(page.page < page.pages - 1)
        self.strip.blockSignals(True)
        self.strip.clear()
        for name, q, n in page.thumbs:
            item = QListWidgetItem(f"{Path(name).stem} · {n}")
            if not q.isNull():
                item.setIcon(QIcon(QPixmap.fromImage(q)))
            item.setToolTip(f"{name}: {n} boxes")
            self.strip.addItem(item)
        self.strip.blockSignals(False)
        if page.thumbs:
            self.strip.setCurrentRow(0)
            self._strip_row(0)
        self.loaded.emit(page)

    def _strip_row(self, row: int) -> None:
        if self.page is not None and row >= 0:
            self.show_large(self.page.page * PER_PAGE + row)

    def show_large(self, index: int) -> None:
        folders, coco = self.folders, self._coco
        if not folders or coco is None:
            return
        self._runner.submit(lambda: load_large(folders, coco, index), on_done=self._large)

    def _large(self, value) -> None:
        name, q, n = value
        self._large_image, self._large_name = (None if q.isNull() else q), name
        self.large.set_pixmap(QPixmap.fromImage(q) if not q.isNull() else None)
        self.large_label.setText(f"{name}: {n} boxes · click it to enlarge")

    def enlarge(self) -> None:
        """The picked frame at its full size (boxes readable) in a window of its own, at most the screen's size."""
        if self._large_image is None:
            return

        if self.enlarged is not None:
            self.enlarged.close()
        dlg = QDialog(self)
        dlg.setWindowTitle(self._large_name)
        view = ScaledView()
        view.set_image(self._large_image)
        QVBoxLayout(dlg).addWidget(view)
        screen = self.screen().availableGeometry() if self.screen() else None
        w, h = self._large_image.width() + 24, self._large_image.height() + 24
        if screen is not None:
            w, h = min(w, screen.width() * 9 // 10), min(h, screen.height() * 9 // 10)
        dlg.resize(w, h)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.destroyed.connect(lambda *_: setattr(self, "enlarged", None))
        self.enlarged = dlg
        dlg.show()


class CurvesView(QWidget):
    """A trained model: its training curves (curves.png) and the figures of its card."""

    loaded = Signal(object)

    def __init__(self, *, runner: Background, parent=None):
        super().__init__(parent)
        self._runner = runner
        self.folder: Path | None = None
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.image = ImageView("No curves.png in this model")
        self.image.setMinimumHeight(200)
        self.table = muted(QLabel())
        self.table.setWordWrap(True)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.summary)
        box.addWidget(self.image, 1)
        box.addWidget(self.table)

    def load(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._runner.submit(lambda: _read_model(Path(folder)), on_done=self._apply,
                            on_error=lambda e: (self.summary.setText(f"Could not read the model: {e}"), self.loaded.emit(e)))

    def _apply(self, value) -> None:
        model, img = value
        card = model.card
        self.image.set_pixmap(QPixmap.fromImage(img) if img is not None and not img.isNull() else None)
        metric = card.metric or "map50"
        head = card.metric_value(metric)
        name = {"map50": "mAP@0.5", "map": "mAP@0.5:0.95", "accuracy": "top-1 accuracy"}.get(metric, metric)
        t = card.training
        parts = [f"<b>{card.arch}</b>", f"{len(card.classes)} classes"]
        if head is not None:
            parts.append(f"{name} <b>{head:.3f}</b> (validation)")
        if t.get("epochs"):
            parts.append(f"{t['epochs']} epochs in {t.get('train_s', 0):.0f} s on {t.get('device', '?')}")
        self.summary.setText(" · ".join(parts))
        rows = []
        for c in model.curves:
            vals = [f"loss {c['train_loss']:.3f}"] if isinstance(c.get("train_loss"), (int, float)) else []
            for k in ("map50", "accuracy"):
                if isinstance(c.get(k), (int, float)):
                    vals.append(f"{k} {c[k]:.3f}")
            rows.append(f"epoch {c.get('epoch', '?')}: {', '.join(vals)}")
        self.table.setText(" · ".join(rows[-6:]) if rows else "")
        self.loaded.emit(card)


def _read_model(folder: Path) -> tuple[TrainedModel, QImage | None]:
    model = read_trained_model(folder)
    return model, QImage(str(model.curves_png)) if model.curves_png is not None else None
