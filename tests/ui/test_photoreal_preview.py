"""The scene editor's photoreal preview: a real preview child renders a tiny Cycles frame of
the editor's view after the fast frame; without bpy in the child, one line says so."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from app.runtime import PreviewService
from ui.background import Background

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bpy") is None,
                                reason="the photoreal extra (bpy) is not installed; `make test` installs it")

DEMO = Path(__file__).resolve().parents[2] / "resources" / "scenes" / "retail_shelf.json"


def _photoreal_scene(tmp_path: Path, samples: int = 4) -> Path:
    data = json.loads(DEMO.read_text())
    data["engine"] = "photoreal"
    data["photoreal"] = {"samples": samples, "denoise": True, "sky": True}
    path = tmp_path / "photo.json"
    path.write_text(json.dumps(data))
    return path


def _editor(qtbot, svc, tmp_path):
    from ui.scene_editor import SceneEditor

    runner = Background("scene-files")
    ed = SceneEditor(preview=svc, runner=runner, scenes_dir=tmp_path / "scenes")
    qtbot.addWidget(ed)
    ed.resize(1200, 780)
    ed.show()
    return ed, runner


def _rgb(img) -> np.ndarray:
    return np.frombuffer(img.rgb, np.uint8).reshape(img.height, img.width, 3)


def test_photoreal_scene_gets_a_cycles_frame_after_the_fast_one_and_changes_drop_stale_frames(qtbot, tmp_path):
    bpy_before = "bpy" in sys.modules  # another test in this process may have loaded it
    svc = PreviewService()
    ed, runner = _editor(qtbot, svc, tmp_path)
    box = ed.preview.photo
    try:
        with qtbot.waitSignal(ed.preview.frameShown, timeout=60_000):
            pass
        assert not box.isVisible() and box.last_result is None  # the demo scene is fast: no Cycles child
        assert svc.photoreal_pid is None
        shown: list[int] = []
        box.shown.connect(lambda: shown.append(box.last_result.images[0].frame))
        with qtbot.waitSignal(box.shown, timeout=120_000):
            ed.open_path(_photoreal_scene(tmp_path))
        res = box.last_result
        im = res.images[0]
        assert (im.width, im.height, res.samples) == (160, 120, 4) and res.device.startswith("Cycles")
        assert box.isVisible() and "Photoreal preview (4 samples, denoised)" in box.title.text()
        assert ed.preview.last_result.images[0].width == 640  # the fast frame stays the live view
        rgb = _rgb(im)
        assert rgb.std() > 20 and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 500  # a picture, not a flat fill
        # its own child: the live view never waits on Cycles, and the GUI never imports bpy
        assert svc.photoreal_pid not in (None, svc.pid) and ("bpy" in sys.modules) == bpy_before

        # the view changes while a Cycles frame renders: that frame is dropped, the newest shown
        ed.preview.frame.setValue(1)
        qtbot.waitUntil(lambda: box.pending is not None and box.pending.running(), timeout=30_000)  # frame 1 renders
        ed.preview.frame.setValue(2)
        with qtbot.waitSignal(box.shown, timeout=120_000):
            pass
        assert box.last_result.images[0].frame == 2 and shown == [0, 2] and box.stale_results == 1
        assert not np.array_equal(_rgb(box.last_result.images[0]), rgb)

        # back to the fast engine: the box goes away and so does the Cycles child (bpy's memory)
        photo_pid = svc.photoreal_pid
        ed.forms["Engine"].all_editors()["engine"].combo.setCurrentText("fast")
        qtbot.waitUntil(lambda: not box.isVisible() and svc.photoreal_pid is None, timeout=5_000)
        qtbot.waitUntil(lambda: not Path(f"/proc/{photo_pid}").exists(), timeout=10_000)
        assert ed.preview.last_result is not None
    finally:
        ed.shutdown()
        runner.shutdown()
        svc.close()


def test_without_bpy_one_line_says_the_photoreal_engine_is_not_installed(qtbot, tmp_path):
    # a real preview child in which `import bpy` fails, as on a machine without the extra
    code = "import sys; sys.modules['bpy'] = None; from jobs.render.preview import serve; sys.exit(serve())"
    svc = PreviewService(argv=[sys.executable, "-c", code])
    ed, runner = _editor(qtbot, svc, tmp_path)
    box = ed.preview.photo
    try:
        with qtbot.waitSignal(box.unavailable, timeout=60_000):
            ed.open_path(_photoreal_scene(tmp_path))
        assert "photoreal engine is not installed" in box.title.text() and "\n" not in box.title.text()
        assert not box.view.isVisible() and box.last_result is None
        assert ed.preview.last_result is not None  # the fast preview still works
        ed.preview.frame.setValue(3)  # asked once: no request after that
        with qtbot.waitSignal(ed.preview.frameShown, timeout=60_000):
            pass
        qtbot.wait(SETTLE_WAIT_MS)
        assert box.pending is None and box.missing
    finally:
        ed.shutdown()
        runner.shutdown()
        svc.close()


SETTLE_WAIT_MS = 600
