"""The live preview's photoreal companion: for a scene whose engine is "photoreal", a small
Cycles frame of the same view, rendered after the fast frame by the preview service's second
child process (app.runtime.PreviewService.photoreal), so the GUI never waits on it.

When: `fast_frame_shown()` (a full-size fast frame of an unchanged view) starts a short timer;
when it fires, the current view is rendered unless that exact view is already shown or on its
way. Every change (`update_view`) stops the timer and cancels a request still waiting; a frame
being rendered then (about a second at this size) finishes but is never shown, because its key
(scene, inputs, camera, frame) is no longer the editor's. A scene switched back to the fast
engine lets the photoreal child go (bpy holds ~370 MB). Without bpy in the child, one line
says the engine is not installed, and nothing is asked again.
"""

from __future__ import annotations

import json
from concurrent.futures import Future

from ui.image_view import ImageView
from ui.qt import QHBoxLayout, QLabel, QObject, QTimer, QVBoxLayout, QWidget, Signal
from ui.scene_editor.form import muted_label

PHOTO_WIDTH = 160  # px; the height follows the spec's output aspect
PHOTO_SAMPLES = 8  # Cycles samples per pixel (fewer when the scene asks for fewer), denoised
SETTLE_MS = 300  # quiet time after a fast frame before the Cycles frame is asked for


class _Bridge(QObject):
    done = Signal(object, object)  # key, Future


def photo_size(data: dict) -> tuple[int, int]:
    out = data.get("outputs") or {}
    try:
        h = round(PHOTO_WIDTH * float(out.get("height", 480)) / float(out.get("width", 640)))
    except (TypeError, ValueError, ZeroDivisionError):
        h = 120
    return PHOTO_WIDTH, max(16, min(2 * PHOTO_WIDTH, h))


def photo_samples(data: dict) -> int:
    try:
        return max(1, min(PHOTO_SAMPLES, int((data.get("photoreal") or {}).get("samples", PHOTO_SAMPLES))))
    except (TypeError, ValueError):
        return PHOTO_SAMPLES


class PhotorealBox(QWidget):
    """Shown only while the scene's engine is photoreal. `last_result`: the PreviewResult shown."""

    shown = Signal()  # a photoreal frame was painted
    unavailable = Signal()  # the child said bpy is missing

    def __init__(self, preview, parent=None):
        super().__init__(parent)
        self._svc = preview
        self._bridge = _Bridge()
        self._bridge.done.connect(self._done)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SETTLE_MS)
        self._timer.timeout.connect(self._render)
        self._args: dict | None = None  # what update_view last said (None: not a photoreal scene)
        self._key: tuple | None = None
        self._shown_key: tuple | None = None
        self._pending_key: tuple | None = None
        self.pending: Future | None = None  # the request on its way (waiting or being rendered)
        self.missing: str | None = None
        self.last_result = None
        self.stale_results = 0  # finished frames of a view that had changed meanwhile (dropped)
        self._closed = False

        self.view = ImageView(placeholder="", aspect=0.75)
        self.view.setMinimumSize(160, 120)
        self.view.setMaximumSize(240, 180)
        self.view.setToolTip("Cycles path tracing of this view at a small size: lights, shadows and materials "
                             "as the photoreal dataset frames will show them")
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.note = muted_label()
        self.note.setWordWrap(True)
        text = QVBoxLayout()
        text.addWidget(self.title)
        text.addWidget(self.note)
        text.addStretch(1)
        box = QHBoxLayout(self)
        box.setContentsMargins(0, 4, 0, 0)
        box.addWidget(self.view)
        box.addLayout(text, 1)
        self.setVisible(False)

    # ------------------------------------------------------------------ editor side
    def update_view(self, data: dict | None, inputs: dict, orbit, frame: int, *, valid: bool) -> None:
        """The editor's scene and view now (called on every change, before the fast frame)."""
        photoreal = isinstance(data, dict) and data.get("engine") == "photoreal"
        self.setVisible(photoreal and not self._closed)
        self._timer.stop()
        if not photoreal or not valid:
            self._args, self._key = None, None
            self._svc.cancel("photoreal")
            if photoreal:
                self.note.setText("Paused until the scene is valid.")
            elif self._svc.photoreal_pid is not None:  # back to the fast engine: free bpy's memory
                self._svc.stop_photoreal()
                self._shown_key, self.last_result = None, None
                self.view.set_image(None)
            return
        if self.missing:
            return
        w, h = photo_size(data)
        n = photo_samples(data)
        self._args = {"spec": data, "orbit": orbit, "width": w, "height": h, "frame": int(frame), "samples": n,
                      "inputs": dict(inputs)}
        key = (json.dumps(data, sort_keys=True), tuple(sorted((str(k), str(v)) for k, v in inputs.items())),
               (orbit.yaw_deg, orbit.pitch_deg, orbit.distance_m), int(frame), w, h, n)
        if key != self._key:
            self._key = key
            self._svc.cancel("photoreal")
            if key != self._shown_key:
                self.title.setText(f"<b>Photoreal preview ({n} samples, denoised)</b>")
                self.note.setText("The view changed: a new Cycles frame follows the fast preview\u2026"
                                  if self.last_result is not None else "Rendering with Cycles after the fast preview\u2026")

    def fast_frame_shown(self) -> None:
        """A full-size fast frame of the current view is on screen: the Cycles frame may follow."""
        if self._args is not None and not self.missing and self._key not in (self._shown_key, self._pending_key):
            self._timer.start()

    def shutdown(self) -> None:
        self._closed = True
        self._timer.stop()

    # ------------------------------------------------------------------ requests
    def _render(self) -> None:
        a, key = self._args, self._key
        if a is None or self._closed or key in (self._shown_key, self._pending_key):
            return
        self._pending_key = key
        self.note.setText(f"Rendering {a['width']}x{a['height']} with Cycles, {a['samples']} samples\u2026")
        fut = self._svc.photoreal(a["spec"], a["orbit"], width=a["width"], height=a["height"], frame=a["frame"],
                                  samples=a["samples"], inputs=a["inputs"])
        self.pending = fut
        fut.add_done_callback(lambda f, key=key: self._bridge.done.emit(key, f))

    def _done(self, key: tuple, fut: Future) -> None:  # GUI thread
        if self._pending_key == key:
            self._pending_key = None
        if self.pending is fut:
            self.pending = None
        if fut.cancelled() or self._closed:
            return
        err = fut.exception()
        if err is not None and getattr(err, "code", "") == "not_installed":
            self.missing = str(err)
            self.view.setVisible(False)
            self.title.setText("Photoreal preview: the photoreal engine is not installed, so the view above is the "
                               "fast engine's (install the optional \u2018photoreal\u2019 component for a Cycles preview).")
            self.note.setText("")
            self.unavailable.emit()
            return
        if key != self._key:  # the view changed while this frame was rendered: drop it
            self.stale_results += err is None
            self.fast_frame_shown()
            return
        if err is not None:
            self.note.setText(f"<span style='color:#c0392b'>Photoreal preview failed: {str(err)[:300]}</span>")
            return
        res = fut.result()
        im = res.images[0]
        self.view.set_rgb(im.rgb, im.width, im.height)
        self.title.setText(f"<b>Photoreal preview ({res.samples} samples, denoised)</b>")
        self.note.setText(f"{res.device or 'Cycles'} \u00b7 {im.width}x{im.height} \u00b7 frame {im.frame} \u00b7 "
                          f"{res.render_ms / 1000:.1f} s" + (" (scene built)" if res.rebuilt else "")
                          + ". Dataset frames use the order's size and samples.")
        self._shown_key = key
        self.last_result = res
        self.shown.emit()
