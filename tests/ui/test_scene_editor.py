"""The scene editor with its real preview child (EGL renders), offscreen."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from app.runtime import PreviewService
from tests.ui.file_dialogs import answer_file_dialog
from ui.background import Background
from ui.qt import QPointF, Qt, QTimer

DEMO = Path(__file__).resolve().parents[2] / "resources" / "scenes" / "retail_shelf.json"


@pytest.fixture(scope="module")
def service():
    svc = PreviewService().start()
    yield svc
    svc.close()


@pytest.fixture
def make_editor(qtbot, service, tmp_path):
    from ui.scene_editor import SceneEditor

    runners = []

    def make(**kw):
        runner = Background("scene-files")
        runners.append(runner)
        ed = SceneEditor(preview=service, runner=runner, scenes_dir=tmp_path / "scenes", **kw)
        qtbot.addWidget(ed)
        ed.resize(1200, 780)
        ed.show()
        return ed

    yield make
    for r in runners:
        r.shutdown()


def _first_frame(qtbot, ed):
    with qtbot.waitSignal(ed.preview.frameShown, timeout=120_000):
        pass
    return ed.preview.last_result


def _drag(view, dx: float, steps: int = 1):
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    p = QPointF(view.width() / 2, view.height() / 2)
    QApplication.sendEvent(view, QMouseEvent(QMouseEvent.Type.MouseButtonPress, p, view.mapToGlobal(p), Qt.MouseButton.LeftButton,
                                             Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    for k in range(1, steps + 1):
        q = p + QPointF(dx * k / steps, 0)
        QApplication.sendEvent(view, QMouseEvent(QMouseEvent.Type.MouseMove, q, view.mapToGlobal(q), Qt.MouseButton.NoButton,
                                                 Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    QApplication.sendEvent(view, QMouseEvent(QMouseEvent.Type.MouseButtonRelease, q, view.mapToGlobal(q), Qt.MouseButton.LeftButton,
                                             Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))


def test_demo_scene_opens_and_live_frames_arrive(make_editor, qtbot):
    loaded_before = set(sys.modules)  # other tests in this pytest process may have loaded them already
    ed = make_editor()
    res = _first_frame(qtbot, ed)
    assert (res.images[0].width, res.images[0].height) == (640, 480)
    assert ed.preview.view.image() is not None and ed.preview.view.image().width() == 640
    spec = ed.current_spec()
    assert spec is not None and spec["name"] == "retail-shelf" and spec == json.loads(DEMO.read_text())
    assert ed.current_path() is None and not ed.is_dirty()  # the demo is a template: Save asks where
    assert ed.assets.list.count() == 8 and ed.tabs.tabText(ed.tabs.indexOf(ed.assets)) == "Assets"
    for heavy in ("pyrender", "OpenGL", "torch"):
        assert heavy in loaded_before or heavy not in sys.modules, f"the GUI process imported {heavy}"


def test_a_hidden_editor_renders_nothing_until_shown(qtbot, tmp_path):
    from ui.scene_editor import SceneEditor

    svc = PreviewService()
    runner = Background("scene-files")
    try:
        ed = SceneEditor(preview=svc, runner=runner, scenes_dir=tmp_path)
        qtbot.addWidget(ed)
        qtbot.waitUntil(lambda: ed.assets.list.count() == 8, timeout=10_000)  # the demo is loaded
        qtbot.wait(300)
        assert svc.pid is None and ed.preview.last_result is None  # no child started while hidden
        ed.show()
        _first_frame(qtbot, ed)
        assert svc.pid is not None
    finally:
        runner.shutdown()
        svc.close()


def test_orbit_by_mouse_changes_the_frame_without_stalling_the_gui(make_editor, qtbot):
    ed = make_editor()
    first = _first_frame(qtbot, ed).images[0].rgb
    ticks, gaps = [time.perf_counter()], []

    def tick():
        now = time.perf_counter()
        gaps.append(now - ticks[-1])
        ticks[-1] = now

    probe = QTimer()
    probe.timeout.connect(tick)
    probe.start(10)
    yaw0 = ed.preview.orbit.yaw_deg
    shown = []
    ed.preview.frameShown.connect(lambda: shown.append(ed.preview.last_result))
    t0 = time.perf_counter()
    for _ in range(4):  # drag, and keep dragging while the frame renders; then wait for it
        with qtbot.waitSignal(ed.preview.frameShown, timeout=60_000):
            _drag(ed.preview.view, 30.0, steps=5)
            qtbot.wait(30)
            _drag(ed.preview.view, 15.0, steps=3)
    assert shown[-1].images[0].rgb != first and abs(ed.preview.orbit.yaw_deg - yaw0) > 50
    probe.stop()
    assert all(not r.rebuilt for r in shown if r.images[0].width == 640)  # only the camera moved
    qtbot.waitUntil(lambda: ed.preview.last_result.images[0].width == 640, timeout=60_000)  # full size after release
    longest_ms = max(gaps) * 1000
    print(f"orbit: {len(shown)} frames in {time.perf_counter() - t0:.2f} s, longest GUI stall {longest_ms:.0f} ms")
    assert longest_ms < 250  # goal < 50 ms here; loose for a loaded CI machine
    d0 = ed.preview.orbit.distance_m
    ed.preview.view.zoomed.emit(2.0)
    assert ed.preview.orbit.distance_m < d0


def test_dragging_on_a_slow_machine_shows_draft_frames_then_full_size(make_editor, qtbot):
    ed = make_editor()
    _first_frame(qtbot, ed)
    ed.preview.draft_above_ms = float("inf")  # however busy this machine is: full size first
    with qtbot.waitSignal(ed.preview.frameShown, timeout=60_000):
        _drag(ed.preview.view, 10.0)  # a full-size orbit frame: its time is known now
    assert ed.preview.last_result.images[0].width == 640
    ed.preview.draft_above_ms = 0.0
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    view = ed.preview.view
    p = QPointF(50, 50)
    QApplication.sendEvent(view, QMouseEvent(QMouseEvent.Type.MouseButtonPress, p, view.mapToGlobal(p), Qt.MouseButton.LeftButton,
                                             Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    q = QPointF(90, 50)
    with qtbot.waitSignal(ed.preview.frameShown, timeout=60_000):
        QApplication.sendEvent(view, QMouseEvent(QMouseEvent.Type.MouseMove, q, view.mapToGlobal(q), Qt.MouseButton.NoButton,
                                                 Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    assert ed.preview.last_result.images[0].width == 320 and "draft" in ed.preview.status.text()
    with qtbot.waitSignal(ed.preview.frameShown, timeout=60_000):
        QApplication.sendEvent(view, QMouseEvent(QMouseEvent.Type.MouseButtonRelease, q, view.mapToGlobal(q), Qt.MouseButton.LeftButton,
                                                 Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
    assert ed.preview.last_result.images[0].width == 640 and not ed.preview.last_result.rebuilt
    shown = []
    ed.preview.frameShown.connect(lambda: shown.append(ed.preview.last_result.images[0].width))
    _drag(view, 25.0, steps=4)  # released before its draft frame arrives: the full frame still follows
    qtbot.waitUntil(lambda: bool(shown) and shown[-1] == 640, timeout=60_000)
    qtbot.wait(300)
    assert shown[-1] == 640


def test_invalid_value_shows_the_error_at_its_field(make_editor, qtbot):
    ed = make_editor()
    _first_frame(qtbot, ed)
    cam = ed.forms["Camera"]
    znear = cam.all_editors()["camera.znear"]
    znear.spin.setValue(30.0)
    label = cam.all_error_labels()["camera.znear"]
    assert not label.isHidden() and "znear must be below zfar" in label.text()
    assert ed.current_spec() is None and ed.is_dirty() and not ed.order_button.isEnabled()
    assert not ed.banner.isHidden() and "1 problem" in ed.banner.text()
    assert ed.tabs.tabText(ed.tabs.indexOf(ed.tabs.widget(3))).endswith("\u26a0")
    assert "Preview paused" in ed.preview.view.message()
    # a range whose low end is above its high end, on the selected asset
    ed.tabs.setCurrentWidget(ed.assets)
    width = ed.assets.form.all_editors()["assets[0].width"]
    width.lo.spin.setValue(0.5)
    assert "low 0.5 is above high 0.2" in ed.assets.form.all_error_labels()["assets[0].width"].text()
    width.lo.spin.setValue(0.18)
    znear.spin.setValue(0.05)
    assert label.isHidden() and ed.banner.isHidden()
    assert ed.current_spec() is not None and ed.order_button.isEnabled()
    with qtbot.waitSignal(ed.preview.frameShown, timeout=60_000):
        pass
    assert ed.preview.view.message() == ""
    with qtbot.waitSignal(ed.orderRequested) as order:
        qtbot.mouseClick(ed.order_button, Qt.MouseButton.LeftButton)
    assert order.args[0] == ed.current_spec() and order.args[0]["camera"]["znear"] == 0.05


def test_save_and_open_round_trip_with_the_unsaved_prompt(make_editor, qtbot, tmp_path):
    ed = make_editor()
    _first_frame(qtbot, ed)
    name = ed.forms["Scene"].all_editors()["name"]
    name.line.setText("my-shelf")
    rows = ed.forms["Layout"].all_editors()["layout.rows"]
    rows.spin.setValue(3)
    target = tmp_path / "mine" / "my-shelf.json"
    ed.ask_save_path = lambda: str(target)
    with qtbot.waitSignal(ed.specSaved, timeout=10_000) as saved:
        ed.save()
    assert saved.args == [str(target)] and not ed.is_dirty() and ed.current_path() == target
    on_disk = json.loads(target.read_text())
    assert on_disk == ed.current_spec() and on_disk["layout"]["rows"] == 3 and on_disk["name"] == "my-shelf"
    assert not list(target.parent.glob("*.tmp*"))  # atomic write left nothing behind

    rows.spin.setValue(2)  # unsaved change: New asks first
    ed.ask_unsaved = lambda: "cancel"
    ed.new_scene()
    assert ed.current_spec()["layout"]["rows"] == 2 and ed.is_dirty()
    ed.ask_unsaved = lambda: "discard"
    ed.new_scene()
    assert ed.current_spec()["name"] == "new-scene" and not ed.is_dirty()

    other = make_editor(open_demo=False)
    with qtbot.waitSignal(other.specChanged, timeout=10_000):
        other.open_path(target)
    assert other.current_data() == on_disk and other.current_path() == target and not other.is_dirty()
    assert other.forms["Layout"].all_editors()["layout.rows"].value() == 3
    assert other.forms["Scene"].all_editors()["name"].value() == "my-shelf"


def test_the_title_stays_whole_at_the_default_window_size_with_a_long_path(make_editor, qtbot, tmp_path):
    ed = make_editor(open_demo=False)
    target = tmp_path / "a folder with a rather long name" / "and another one inside it" / "my-shelf.json"
    ed.ask_save_path = lambda: str(target)
    with qtbot.waitSignal(ed.specSaved, timeout=10_000):
        ed.save()
    ed.resize(960, 780)   # its width in the first-run window on a 1280 px screen (1152 px, less the page list)
    qtbot.wait(50)
    shown = ed.title.text()
    assert ed.title.fontMetrics().horizontalAdvance(shown) <= ed.title.contentsRect().width()   # nothing clipped
    assert shown.startswith("new-scene   — ") and shown.endswith("my-shelf.json") and "…" in shown
    assert ed.title.toolTip() == f"new-scene   — {target}"   # the whole path on hover
    ed.title.resize(ed.title.fontMetrics().horizontalAdvance("new-scene   — ") + 60, ed.title.height())
    shown = ed.title.text()   # squeezed: the name stays whole, the path gives way
    assert shown.startswith("new-scene   — ") and "…" in shown


def test_a_narrow_title_keeps_the_scene_name_and_cuts_the_status_at_its_end(make_editor, qtbot):
    ed = make_editor()   # the demo scene
    qtbot.waitUntil(lambda: ed.title.full_text.startswith("retail-shelf"), timeout=10_000)
    assert ed.title.full_text == "retail-shelf   — demo scene, not saved yet"
    ed.title.resize(ed.title.fontMetrics().horizontalAdvance("retail-shelf   — demo scene, not") + 8, ed.title.height())
    shown = ed.title.text()
    assert shown.startswith("retail-shelf   — demo scene") and shown.endswith("…"), shown


def test_file_dialogs_start_in_the_demo_scenes_then_in_the_last_folder_used(make_editor, qtbot, tmp_path):
    from app.context import AppContext
    from app.recent_folders import RecentFolders
    from app.resources import resource_path

    ctx = AppContext.open()
    ed = make_editor(open_demo=False, folders=RecentFolders(ctx))
    seen = answer_file_dialog(None)
    assert ed.ask_open_path() is None and seen["folder"] == resource_path("scenes")   # the demo scenes, first
    seen = answer_file_dialog(DEMO)
    assert ed.ask_open_path() == str(DEMO)
    seen = answer_file_dialog(None)
    ed.ask_save_path()   # not into the app's demo folder: its own scenes folder
    assert seen["folder"] == tmp_path / "scenes" and seen["file"].endswith("new-scene.json")
    mine = tmp_path / "my scenes"
    mine.mkdir()
    seen = answer_file_dialog(mine / "shelf.json")
    assert ed.ask_save_path() == str(mine / "shelf.json")
    seen = answer_file_dialog(None)
    ed.ask_open_path()
    assert seen["folder"] == mine   # the scene folder last used

    meshes = tmp_path / "meshes"
    meshes.mkdir()
    (meshes / "duck.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    seen = answer_file_dialog(meshes / "duck.obj")
    assert ed.ask_import_paths("mesh") == [str(meshes / "duck.obj")] and seen["folder"] == Path.home()
    other = make_editor(open_demo=False, folders=RecentFolders(AppContext.open()))   # the next run
    seen = answer_file_dialog(None)
    other.ask_import_paths("mesh")
    assert seen["folder"] == meshes
    seen = answer_file_dialog(None)
    other.ask_open_path()
    assert seen["folder"] == mine


def test_opening_a_broken_file_says_why_in_one_line(make_editor, qtbot, tmp_path):
    ed = make_editor(open_demo=False)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with qtbot.waitSignal(ed.fileError, timeout=10_000) as err:
        ed.open_path(bad)
    assert err.args[0].startswith("bad.json: not a JSON file") and "\n" not in err.args[0]


def test_sample_grid_shows_8_frames_with_boxes(make_editor, qtbot):
    ed = make_editor()
    _first_frame(qtbot, ed)
    with qtbot.waitSignal(ed.preview.samplesShown, timeout=120_000):
        qtbot.mouseClick(ed.sample_button, Qt.MouseButton.LeftButton)
    res = ed.preview.last_samples
    assert len(res.images) == 8 and all(im.boxes > 0 for im in res.images)
    assert all(v.image() is not None for v in ed.preview.grid.views)
    assert ed.preview.tabs.currentIndex() == 1 and "8 random frames" in ed.preview.grid.status.text()
    assert "cereal_box" in ed.preview.grid.legend.text()
    # with its samples and texts shown the editor still fits a 1024 px screen beside the page list,
    # and at its narrowest every form tab (Scene first) stays in view
    assert ed.minimumSizeHint().width() <= 830, ed.minimumSizeHint()
    ed.resize(ed.minimumSizeHint().width(), 700)
    qtbot.wait(50)
    bar = ed.tabs.tabBar()
    assert bar.tabRect(0).left() >= 0 and bar.tabRect(0).right() <= bar.width()
    assert ed.preview.grid.minimumSizeHint().width() <= ed.preview.width()   # the samples are not clipped either


def test_imported_mesh_is_copied_and_rendered(make_editor, qtbot, tmp_path):
    ed = make_editor(open_demo=False)
    _first_frame(qtbot, ed)
    mesh = tmp_path / "Duck Toy.obj"
    v = [(x, y, z) for x in (0, 1) for y in (0, 1) for z in (0, 1)]
    faces = [(1, 3, 4, 2), (5, 6, 8, 7), (1, 2, 6, 5), (3, 7, 8, 4), (1, 5, 7, 3), (2, 4, 8, 6)]
    mesh.write_text("".join(f"v {a} {b} {c}\n" for a, b, c in v) + "".join("f " + " ".join(map(str, f)) + "\n" for f in faces))
    n = ed.assets.list.count()
    ed.import_files([mesh])
    qtbot.waitUntil(lambda: ed.assets.list.count() == n + 1, timeout=10_000)
    asset = ed.current_spec()["assets"][-1]
    assert asset["kind"] == "mesh" and asset["name"] == "Duck_Toy" and asset["format"] == "obj"
    copied = ed.asset_dir() / f"{asset['mesh']}.obj"
    assert copied.is_file() and ed.current_inputs()[asset["mesh"]] == copied
    shown = ed.assets.form.all_editors()  # the new mesh is selected: no label texture (meshes keep their look)
    assert f"assets[{n}].height" in shown and not any(".material.label" in k for k in shown)
    with qtbot.waitSignal(ed.preview.frameShown, timeout=60_000):
        pass
    assert ed.preview.last_result.rebuilt and ed.preview.view.message() == ""


def test_killed_preview_child_is_restarted_and_frames_resume(make_editor, qtbot, service):
    ed = make_editor()
    _first_frame(qtbot, ed)
    before = service.restarts
    os.kill(service.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: service.restarts == before + 1, timeout=20_000)
    with qtbot.waitSignal(ed.preview.frameShown, timeout=120_000):
        _drag(ed.preview.view, 20.0)
    assert ed.preview.last_result.rebuilt and ed.preview.view.message() == ""


@pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")  # Qt 6 keeps only this constructor
def test_dropping_a_mesh_file_on_the_editor_imports_it(make_editor, qtbot, tmp_path):
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    ed = make_editor(open_demo=False)
    stl = tmp_path / "wedge.stl"
    stl.write_text("solid w\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\nendloop\nendfacet\n"
                   "facet normal 0 1 0\nouter loop\nvertex 0 0 0\nvertex 0 1 1\nvertex 1 0 0\nendloop\nendfacet\nendsolid w\n")
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    qtbot.waitUntil(lambda: ed.assets.list.count() == 3, timeout=10_000)

    def mime(*paths):
        m = QMimeData()
        m.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
        return m

    pos = QPointF(20, 20)
    text_mime = mime(text)  # the event keeps only a pointer: hold the object
    refused = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, text_mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(ed, refused)
    assert not refused.isAccepted()
    drop_mime = mime(stl)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, drop_mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(ed, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(ed, QDropEvent(pos, Qt.DropAction.CopyAction, drop_mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    qtbot.waitUntil(lambda: ed.assets.list.count() == 4, timeout=10_000)
    asset = ed.current_data()["assets"][-1]
    assert asset["kind"] == "mesh" and asset["format"] == "stl" and (ed.asset_dir() / f"{asset['mesh']}.stl").is_file()


def test_form_errors_are_keyed_by_the_field_they_belong_to():
    from app.forms import scene as scene_form

    data = json.loads(DEMO.read_text())
    assert scene_form.errors(data) == {}
    data["layout"]["rows"] = 0
    data["camera"]["znear"] = 30
    data["assets"][1]["width"] = [0.2, 0.1]
    data["assets"][2]["material"]["color"] = [[1, 1, 1], [0, 0, 0]]
    data["lights"]["count"] = [0, 9]
    errs = scene_form.errors(data)
    assert set(errs) == {"layout.rows", "camera.znear", "assets[1].width", "assets[2].material.color", "lights.count"}
    assert errs["camera.znear"] == "znear must be below zfar"


def test_save_as_elsewhere_carries_the_imported_meshes(make_editor, qtbot, tmp_path):
    ed = make_editor(open_demo=False)
    mesh = tmp_path / "tri.ply"
    mesh.write_text("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
                    "element face 2\nproperty list uchar int vertex_indices\nend_header\n"
                    "0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 2 3\n")
    ed.import_files([mesh])
    qtbot.waitUntil(lambda: ed.assets.list.count() == 4, timeout=10_000)
    sha = ed.current_data()["assets"][-1]["mesh"]
    first = tmp_path / "a" / "one.json"
    with qtbot.waitSignal(ed.specSaved, timeout=10_000):
        ed.save_to(first)
    moved = tmp_path / "b" / "two.json"
    with qtbot.waitSignal(ed.specSaved, timeout=10_000):
        ed.save_to(moved)
    assert (first.parent / "assets" / f"{sha}.ply").is_file() and (moved.parent / "assets" / f"{sha}.ply").is_file()
    assert ed.current_inputs() == {sha: moved.parent / "assets" / f"{sha}.ply"}


def test_close_asks_about_unsaved_changes(make_editor, qtbot):
    ed = make_editor(open_demo=False)
    qtbot.waitUntil(lambda: ed.assets.list.count() == 3, timeout=10_000)
    assert ed.confirm_close()  # nothing changed
    ed.forms["Scene"].all_editors()["name"].line.setText("changed")
    ed.ask_unsaved = lambda: "cancel"
    assert not ed.confirm_close()
    ed.ask_unsaved = lambda: "discard"
    assert ed.confirm_close()


def test_a_renderer_that_cannot_start_is_reported_at_the_preview(qtbot, tmp_path):
    from ui.scene_editor import SceneEditor

    argv = [sys.executable, "-c", "import sys; sys.stderr.write('no OpenGL here\\n'); sys.exit(3)"]
    svc = PreviewService(argv=argv, max_restarts=2)
    runner = Background("scene-files")
    try:
        ed = SceneEditor(preview=svc, runner=runner, scenes_dir=tmp_path)
        qtbot.addWidget(ed)
        ed.show()
        qtbot.waitUntil(lambda: "Reset view" in ed.preview.view.message(), timeout=30_000)
        msg = ed.preview.view.message()
        assert "exit code 3" in msg and "no OpenGL here" in msg and "\n" not in msg
    finally:
        runner.shutdown()
        svc.close()
