"""The editor's right side: the live preview (orbit by dragging, zoom with the wheel) and the
"sample 8 random frames" grid with boxes and masks; for a photoreal scene, a small Cycles
frame of the same view under the live one (photoreal_box).

Frames are rendered by app.runtime.preview in its child process; its futures complete on
the service's reader thread and reach the GUI thread through a queued Qt signal, so nothing
here waits. The newest request wins (the service drops stale ones while you drag).
"""

from __future__ import annotations

import collections
import time
from concurrent.futures import Future

from app.runtime import Orbit, PreviewError, default_orbit
from ui.image_view import ImageView
from ui.qt import (
    QCheckBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QObject,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    Qt,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
    Signal,
)
from ui.scene_editor.form import muted_label
from ui.scene_editor.photoreal_box import PhotorealBox

PREVIEW_WIDTH = 640  # px; the height follows the spec's output aspect
DRAFT_ABOVE_MS = 80.0  # full-size frames slower than this: half size while the mouse drags


class _Bridge(QObject):
    done = Signal(str, object)  # kind ("view" | "sample"), Future


def _muted(text: str = "") -> QLabel:
    return muted_label(text)


def legend_html(legend) -> str:
    return " ".join(f"<span style='color:rgb{tuple(c)}'>\u25a0</span>&nbsp;{name}&nbsp;&nbsp;" for name, c in legend)


class SampleGrid(QWidget):
    """Eight thumbnails with a caption each and the class colour legend."""

    def __init__(self, n: int = 8, parent=None):
        super().__init__(parent)
        self.views: list[ImageView] = []
        self.captions: list[QLabel] = []
        grid = QGridLayout()
        grid.setSpacing(8)
        for i in range(n):
            v = ImageView(placeholder="", aspect=0.75)
            v.setMinimumSize(80, 60)   # four across must not widen the window; a click enlarges
            v.setToolTip("Click to see this frame full size")
            v.setCursor(Qt.CursorShape.PointingHandCursor)
            v.mousePressEvent = lambda _e, i=i: self._enlarge(i)
            cap = _muted()
            cap.setWordWrap(True)
            cap.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)   # as wide as its thumbnail
            cell = QVBoxLayout()
            cell.setSpacing(2)
            cell.addWidget(v)
            cell.addWidget(cap)
            grid.addLayout(cell, i // 4, i % 4)
            self.views.append(v)
            self.captions.append(cap)
        self.status = QLabel("Press \u201cSample 8 random frames\u201d to see what the dataset will look like, "
                             "with each object's box and mask drawn in its class colour.")
        self.status.setWordWrap(True)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(self.legend.textFormat().RichText)
        box = QVBoxLayout(self)
        box.addWidget(self.status)
        box.addLayout(grid)
        box.addWidget(self.legend)
        self.hint = _muted("Click a frame to see it full size. Masks are tinted and boxes outlined in the class colour; "
                           "objects below the visibility threshold get no box, as in the dataset.")
        self.hint.setWordWrap(True)
        self.hint.setVisible(False)
        box.addWidget(self.hint)
        box.addStretch(1)

    def _enlarge(self, i: int) -> None:
        img = self.views[i].image()
        if img is None:
            return
        dlg = QDialog(self)
        dlg.setWindowTitle(self.captions[i].text())
        view = ImageView()
        view.set_image(img)
        QVBoxLayout(dlg).addWidget(view)
        dlg.resize(img.width() + 24, img.height() + 24)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.show()

    def set_busy(self, text: str) -> None:
        self.status.setText(text)
        for v in self.views:
            v.set_message("rendering\u2026" if v.image() is None else "")

    def set_error(self, text: str) -> None:
        self.status.setText(f"<span style='color:#c0392b'>Sampling failed: {text}</span>")
        for v in self.views:
            v.set_message("")

    def set_result(self, result) -> None:
        for i, v in enumerate(self.views):
            if i < len(result.images):
                im = result.images[i]
                v.set_rgb(im.rgb, im.width, im.height)
                v.set_message("")
                self.captions[i].setText(f"frame {im.frame} \u00b7 {im.boxes} boxes")
                self.captions[i].setToolTip(f"frame {im.frame}: {im.boxes} labelled boxes of {im.objects} objects placed")
            else:
                v.set_image(None)
                self.captions[i].setText("")
        total = sum(im.boxes for im in result.images)
        self.status.setText(f"{len(result.images)} random frames of the dataset ({total} labelled boxes), "
                            f"rendered in {result.render_ms / 1000:.1f} s. Press again for other frames.")
        self.legend.setText(legend_html(result.legend))
        self.hint.setVisible(True)


class PreviewPanel(QWidget):
    """Live preview and samples for the scene the editor holds (`set_scene`)."""

    frameShown = Signal()  # a live frame was painted (tests, stall probes)
    samplesShown = Signal()

    def __init__(self, preview, parent=None):
        super().__init__(parent)
        self._svc = preview
        self._bridge = _Bridge()
        self._bridge.done.connect(self._done)
        self._data: dict | None = None
        self._inputs: dict = {}
        self._error: str | None = None
        self.orbit = Orbit()
        self._times: collections.deque[float] = collections.deque(maxlen=30)
        self._retried = False
        self._closed = False
        self._wanted = False
        self._crashed = False
        self.last_result = None
        self.last_samples = None

        self.view = ImageView(interactive=True, placeholder="Starting the preview renderer\u2026")
        self.view.setToolTip("Drag to orbit the camera, scroll to zoom")
        self.view.dragged.connect(self._drag)
        self.view.released.connect(self._released)
        self.view.zoomed.connect(self._zoom)
        self.draft_above_ms = DRAFT_ABOVE_MS
        self._dragging = False
        self._draft_sent = False
        self._full_ms = 0.0  # the child's time for the last full-size frame of an unchanged scene
        self.frame = QSpinBox()
        self.frame.setRange(0, 10_000_000)
        self.frame.setToolTip("Which dataset frame's random placement, colours and lights to show")
        self.frame.valueChanged.connect(lambda _v: self.request())
        self.boxes = QCheckBox("Boxes")
        self.boxes.setToolTip("Draw the labelled boxes (slower: runs the label passes)")
        self.masks = QCheckBox("Masks")
        self.masks.setToolTip("Tint each labelled object's mask in its class colour")
        for c in (self.boxes, self.masks):
            c.toggled.connect(lambda _v: self.request())
        reset = QToolButton()
        reset.setText("Reset view")
        reset.setToolTip("Back to the middle of the camera ranges")
        reset.clicked.connect(self.reset_view)
        self.status = _muted()
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Frame"))
        controls.addWidget(self.frame)
        controls.addWidget(self.boxes)
        controls.addWidget(self.masks)
        controls.addWidget(reset)
        controls.addStretch(1)
        self.status.setWordWrap(True)   # its own line (timings, sampling news): never widens the window
        live = QWidget()
        lv = QVBoxLayout(live)
        lv.addWidget(self.view, 1)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setVisible(False)
        lv.addWidget(self.legend)
        lv.addLayout(controls)
        lv.addWidget(self.status)
        self.photo = PhotorealBox(preview)
        lv.addWidget(self.photo)
        hint = _muted("Drag to orbit \u00b7 scroll to zoom \u00b7 the camera of a real dataset frame varies within the Camera ranges")
        hint.setWordWrap(True)
        lv.addWidget(hint)

        self.grid = SampleGrid()
        self.sample_button = QPushButton("Sample 8 random frames")
        self.sample_button.setToolTip("Render 8 random frames exactly as the dataset will, with boxes and masks")
        self.sample_button.clicked.connect(self.sample)
        samples = QWidget()
        sv = QVBoxLayout(samples)
        sv.addWidget(self.grid, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(live, "Live preview")
        self.tabs.addTab(samples, "Samples")
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.tabs)

    # ------------------------------------------------------------------ scene
    def set_scene(self, data: dict, inputs: dict, error: str | None, *, reset_view: bool = False) -> None:
        """The scene to show (`error`: why it is not valid now; the last frame stays)."""
        self._data, self._inputs, self._error = data, inputs, error
        if reset_view:
            self.orbit = default_orbit(data)
        self.request()

    def reset_view(self) -> None:
        if self._crashed:  # the renderer kept stopping: a fresh one, on the user's word only
            self._crashed = False
            self._retried = False
            self._svc.restart()
        if self._data is not None:
            self.orbit = default_orbit(self._data)
        self.request()

    def _size(self) -> tuple[int, int]:
        out = (self._data or {}).get("outputs") or {}
        w, h = out.get("width", 640), out.get("height", 480)
        try:
            h = round(PREVIEW_WIDTH * float(h) / float(w))
        except (TypeError, ValueError, ZeroDivisionError):
            h = 480
        return PREVIEW_WIDTH, max(16, min(2 * PREVIEW_WIDTH, h))

    def _drag(self, dx: float, dy: float) -> None:
        self._dragging = True
        self.orbit = self.orbit.moved(d_yaw=-dx * 0.4, d_pitch=dy * 0.3)
        self.request()

    def _released(self) -> None:
        self._dragging = False
        if self._draft_sent:
            self.request()  # the full-size frame after draft frames (it replaces any still waiting)

    def _zoom(self, steps: float) -> None:
        self.orbit = self.orbit.moved(zoom=0.9 ** steps)
        self.request()

    def request(self) -> None:
        """Ask for a frame of the current scene and view (only while shown: a hidden editor
        never starts the renderer nor spends CPU next to a mining job)."""
        if self._data is None or self._closed:
            return
        self.photo.update_view(self._data, self._inputs, self.orbit, self.frame.value(), valid=not self._error)
        if not self.isVisible():
            self._wanted = True
            return
        self._wanted = False
        if self._error:
            self.view.set_message(f"Preview paused until the scene is valid \u2014 {self._error}", error=True)
            return
        w, h = self._size()
        self._draft_sent = self._dragging and self._full_ms > self.draft_above_ms
        if self._draft_sent:
            w, h = w // 2, h // 2  # draft while dragging on a slow (or busy) machine
        fut = self._svc.view(self._data, self.orbit, width=w, height=h, frame=self.frame.value(),
                             boxes=self.boxes.isChecked(), masks=self.masks.isChecked(), inputs=self._inputs)
        self._watch("view", fut)

    def sample(self) -> None:
        if self._data is None:
            return
        self.tabs.setCurrentIndex(1)
        if self._error:
            self.grid.set_error(f"the scene is not valid \u2014 {self._error}")
            return
        self.sample_button.setEnabled(False)
        self.grid.set_busy("Rendering 8 random frames with the label passes\u2026")
        self._watch("sample", self._svc.sample(self._data, 8, inputs=self._inputs))

    def shutdown(self) -> None:
        self._closed = True
        self.photo.shutdown()

    def showEvent(self, e) -> None:
        super().showEvent(e)
        if self._wanted:
            self.request()

    def _watch(self, kind: str, fut: Future) -> None:
        fut.add_done_callback(lambda f, kind=kind: self._bridge.done.emit(kind, f))

    # ------------------------------------------------------------------ results (GUI thread)
    def _done(self, kind: str, fut: Future) -> None:
        if fut.cancelled() or self._closed:
            return
        err = fut.exception()
        if kind == "sample":
            self.sample_button.setEnabled(True)
            if err is not None:
                self.grid.set_error(str(err))
                return
            self.last_samples = fut.result()
            self.grid.set_result(self.last_samples)
            self.samplesShown.emit()
            return
        if err is not None:
            if isinstance(err, PreviewError) and err.crashed and not self._retried:
                self._retried = True  # the child is restarted: ask once more
                self.view.set_message("The preview renderer stopped; restarting it\u2026", error=True)
                self.request()
                return
            if isinstance(err, PreviewError) and err.crashed:
                self._crashed = True
                self.view.set_message(f"{err} \u2014 press Reset view to try again", error=True)
                return
            self.view.set_message(str(err), error=True)
            return
        self._retried = False
        res = fut.result()
        im = res.images[0]
        full = im.width == self._size()[0]
        if full and not res.rebuilt and not (self.boxes.isChecked() or self.masks.isChecked()):
            self._full_ms = res.render_ms
        self.view.set_rgb(im.rgb, im.width, im.height)
        self.view.set_message("")
        self.last_result = res
        now = time.monotonic()
        self._times.append(now)
        recent = [t for t in self._times if now - t < 1.5]
        fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 else 0.0
        overlays = self.boxes.isChecked() or self.masks.isChecked()
        extra = f" \u00b7 {im.boxes} boxes" if overlays else ""
        self.legend.setText(legend_html(res.legend) if overlays else "")
        self.legend.setVisible(overlays)
        self.status.setText((f"{fps:.0f} frames/s \u00b7 " if fps else "") + ("" if full else "draft \u00b7 ")
                            + f"{res.render_ms:.0f} ms"
                            + (" (scene rebuilt)" if res.rebuilt else "") + f" \u00b7 {im.objects} objects{extra}")
        if full and not self._dragging:
            self.photo.fast_frame_shown()
        self.frameShown.emit()
