"""SceneEditor: the Buyer's scene editor over the scene spec, with a live preview.

Left: tabs of forms generated from the SceneSpec model (Scene, Assets, Layout, Camera,
Lights, Background, Outputs), each field's error shown under it. Right: the live preview
and the sample grid (ui.scene_editor.preview_panel). Top: New / Open / Save / Save As and
"Sample 8 random frames". Meshes are imported by file dialog or drag and drop and copied,
content-addressed, into the spec's asset folder (`assets/` beside the spec file).

Wiring: `SceneEditor(preview=PreviewService, runner=Background("scene-files"), scenes_dir=Path)`.
For orders: `current_spec()` (a valid spec dict or None), `current_inputs()` (sha256 -> file),
`current_path()`, and the signals `specSaved(str)` and `specChanged()`.
Threading: file reads/writes and imports run on `runner`; rendering in the preview child.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path


from app.forms import scene as scene_form
from app.runtime import asset_dir_for, find_inputs, import_asset
from app.recent_folders import RecentFolders
from app.resources import resource_path
from ui.background import Background
from ui.file_dialogs import open_file, open_files, save_file
from ui.qt import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QScrollArea,
    QSplitter,
    Qt,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
    Signal,
)
from ui.scene_editor.assets_panel import AssetsPanel
from ui.scene_editor.form import ModelForm, error_label, muted_label
from ui.scene_editor.preview_panel import PreviewPanel
from ui.widgets import ElidedLabel

DEMO_SCENE = "retail_shelf.json"


def home_short(path: Path) -> str:
    """`path` with the home folder written as ~ (the title has room for the part that matters)."""
    try:
        return os.path.join("~", path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _scroll(w: QWidget) -> QScrollArea:
    s = QScrollArea()
    s.setWidgetResizable(True)
    s.setFrameShape(QScrollArea.Shape.NoFrame)
    s.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    s.setWidget(w)
    return s


def _set_at(data: dict, path: list, value) -> None:
    node = data
    for p in path[:-1]:
        if isinstance(node, dict) and not isinstance(node.get(p), (dict, list)):
            node[p] = {}  # a group the file left out (its defaults apply)
        node = node[p]
    node[path[-1]] = value


class SceneEditor(QWidget):
    specSaved = Signal(str)  # path of the spec file just written
    specChanged = Signal()  # the scene changed (valid or not); current_spec() tells which
    dirtyChanged = Signal(bool)
    fileError = Signal(str)  # a one-line message after a failed open/save/import
    orderRequested = Signal(object)  # "Order a dataset…": the current valid spec (dict)

    def __init__(self, *, preview, runner: Background, scenes_dir: str | Path, open_demo: bool = True,
                 folders: RecentFolders | None = None, parent=None):
        """folders: where the file dialogs start (the last folder used; kept for this run if None)."""
        super().__init__(parent)
        self._runner = runner
        self.scenes_dir = Path(scenes_dir)
        self.folders = folders or RecentFolders()
        self._data: dict = scene_form.new_scene()
        self._path: Path | None = None
        self._demo = False
        self._dirty = False
        self._saved: dict | None = None  # the scene as last opened or saved (dirty = differs)
        self._inputs: dict = {}
        self.errors: dict[str, str] = {}
        self.forms: dict[str, ModelForm] = {}
        self.setAcceptDrops(True)
        # dialogs, replaceable by tests: each returns a path / list of paths / choice, or None
        self.ask_open_path = self._ask_open_path
        self.ask_save_path = self._ask_save_path
        self.ask_import_paths = self._ask_import_paths
        self.ask_unsaved = self._ask_unsaved

        bar = QHBoxLayout()
        self.buttons = {}
        for key, text, tip, slot in (
                ("new", "New", "Start a new scene (Ctrl+N)", self.new_scene),
                ("open", "Open\u2026", "Open a scene spec file (Ctrl+O)", self.open_dialog),
                ("save", "Save", "Save the scene (Ctrl+S)", self.save),
                ("save_as", "Save As\u2026", "Save the scene to another file (Ctrl+Shift+S)", self.save_as)):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            bar.addWidget(b)
            self.buttons[key] = b
        self.buttons["new"].setShortcut("Ctrl+N")
        self.buttons["open"].setShortcut("Ctrl+O")
        self.buttons["save"].setShortcut("Ctrl+S")
        self.buttons["save_as"].setShortcut("Ctrl+Shift+S")
        self.title = ElidedLabel(Qt.TextElideMode.ElideMiddle)   # never widens the window, never clips
        f = self.title.font()
        f.setBold(True)
        self.title.setFont(f)
        bar.addSpacing(12)
        bar.addWidget(self.title, 1)

        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.banner.setStyleSheet("background: rgba(192,57,43,0.12); color: #c0392b; border-radius: 6px; padding: 6px;")

        self.tabs = QTabWidget()
        self.tabs.setMinimumWidth(400)
        self.tabs.setUsesScrollButtons(True)   # all tabs show at the start width; a narrow window scrolls, never clips
        self.tabs.setElideMode(Qt.TextElideMode.ElideNone)
        self.assets = AssetsPanel(self._import_for_field)
        self.assets.edited.connect(self._edited)
        self.assets.replaced.connect(self._assets_replaced)
        self.assets.importRequested.connect(self.import_meshes)
        self.layout_kind = QComboBox()
        self.layout_kind.addItems(["shelf", "table"])
        self.layout_kind.setToolTip("shelf: a shelf unit seen from the front; table: objects scattered on a table top")
        self.layout_kind.currentTextChanged.connect(self._layout_kind_changed)
        self.layout_error = error_label()
        self._layout_holder = QVBoxLayout()
        self._tab_pages: dict[str, QVBoxLayout] = {}

        self.preview = PreviewPanel(preview)
        self.sample_button = self.preview.sample_button
        bar.addWidget(self.sample_button)
        self.order_button = QToolButton()
        self.order_button.setText("Order a dataset\u2026")
        self.order_button.setToolTip("Post a render order for this scene (Buyer \u203a Orders)")
        self.order_button.clicked.connect(self._order)
        bar.addWidget(self.order_button)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tabs)
        split.addWidget(self.preview)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        box = QVBoxLayout(self)
        box.addLayout(bar)
        box.addWidget(self.banner)
        box.addWidget(split, 1)
        self._build_tabs()
        # every tab title readable where the window allows (no scroll buttons): start the form as wide as its tabs
        split.setSizes([max(470, self.tabs.tabBar().sizeHint().width() + 6), 600])
        if open_demo:
            self.open_path(resource_path("scenes", DEMO_SCENE), demo=True)
        else:
            self._loaded(self._data, None, demo=False)

    # ------------------------------------------------------------------ public
    def current_spec(self) -> dict | None:
        """A deep copy of the scene when it is valid, else None."""
        return copy.deepcopy(self._data) if not self.errors else None

    def shutdown(self) -> None:
        """Stop showing results (the window closes the preview service and the runner)."""
        self.preview.shutdown()

    def _order(self) -> None:
        spec = self.current_spec()
        if spec is not None:
            self.orderRequested.emit(spec)

    def current_data(self) -> dict:
        """The scene as edited (possibly invalid)."""
        return copy.deepcopy(self._data)

    def current_path(self) -> Path | None:
        return None if self._demo else self._path

    def current_inputs(self) -> dict:
        """{sha256: path} of the user files (meshes, images) the scene names."""
        return dict(self._inputs)

    def is_dirty(self) -> bool:
        return self._dirty

    def asset_dir(self) -> Path:
        return asset_dir_for(None if self._demo else self._path, self.scenes_dir)

    # ------------------------------------------------------------------ tabs
    def _build_tabs(self) -> None:
        model = scene_form.scene_model()
        for title, names in scene_form.SECTIONS.items():
            if title == "Layout":
                page = QWidget()
                v = QVBoxLayout(page)
                row = QHBoxLayout()
                row.addWidget(QLabel("Layout"))
                row.addWidget(self.layout_kind, 1)
                v.addLayout(row)
                v.addWidget(self.layout_error)
                v.addLayout(self._layout_holder)
                v.addStretch(1)
                self.tabs.addTab(_scroll(page), title)
            else:
                page = QWidget()
                v = QVBoxLayout(page)
                single = scene_form.single_group(names)
                form = (ModelForm(single.model, [single.name], {}, self._import_for_field) if single is not None
                        else ModelForm(model, [], self._data, self._import_for_field, names=names))
                form.edited.connect(self._edited)
                v.addWidget(form)
                if title == "Scene":
                    intro = muted_label(
                        "A scene spec describes a synthetic-data generator: the products (Assets), how they are "
                        "placed (Layout), and how camera, lights and room vary from frame to frame. The preview "
                        "shows one frame; \u201cSample 8 random frames\u201d shows what the dataset will look like. "
                        "\u201cOrder a dataset\u2026\u201d orders images of the scene as it is here (Save keeps it "
                        "for later).")
                    intro.setWordWrap(True)
                    v.addSpacing(12)
                    v.addWidget(intro)
                v.addStretch(1)
                self.forms[title] = form
                self.tabs.addTab(_scroll(page), title)
            if title == "Scene":
                self.tabs.addTab(self.assets, "Assets")

    def _build_layout_form(self) -> None:
        old = self.forms.pop("Layout", None)
        if old is not None:
            old.setParent(None)
            old.deleteLater()
        lay = self._data.get("layout") if isinstance(self._data.get("layout"), dict) else {}
        kind = lay.get("kind", "shelf")
        self.layout_kind.blockSignals(True)
        self.layout_kind.setCurrentText(kind)
        self.layout_kind.blockSignals(False)
        form = ModelForm(scene_form.layout_model(kind), ["layout"], lay, self._import_for_field)
        form.edited.connect(self._edited)
        self._layout_holder.addWidget(form)
        self.forms["Layout"] = form

    def _layout_kind_changed(self, kind: str) -> None:
        self._data["layout"] = scene_form.default_layout(kind)
        self._build_layout_form()
        self._changed()

    # ------------------------------------------------------------------ edits
    def _edited(self, path: list, value) -> None:
        try:
            _set_at(self._data, path, value)
        except (KeyError, IndexError, TypeError):
            return
        self._changed()

    def _assets_replaced(self, assets: list) -> None:
        self._data["assets"] = assets
        self._changed()

    def _changed(self, *, reset_view: bool = False) -> None:
        self._set_dirty(self._data != self._saved)
        self._validate_and_preview(reset_view=reset_view)
        self.specChanged.emit()

    def _validate_and_preview(self, *, reset_view: bool = False) -> None:
        self.errors = scene_form.errors(self._data)
        shown = self.assets.show_errors(self.errors)
        for form in self.forms.values():
            for key, lab in form.all_error_labels().items():
                msg = self.errors.get(key)
                lab.setText(msg or "")
                lab.setVisible(bool(msg))
                if msg:
                    shown.add(key)
        lay = self.errors.get("layout")
        self.layout_error.setText(lay or "")
        self.layout_error.setVisible(bool(lay))
        if lay:
            shown.add("layout")
        rest = {k: v for k, v in self.errors.items() if k not in shown}
        n = len(self.errors)
        if n:
            first = scene_form.first_error(rest or self.errors)
            self.banner.setText(f"{n} problem{'s' if n > 1 else ''} to fix before rendering \u2014 {first}")
        self.banner.setVisible(bool(n))
        self._mark_tabs()
        self.order_button.setEnabled(not n)
        self.preview.set_scene(self._data, self._inputs, scene_form.first_error(self.errors), reset_view=reset_view)

    def _mark_tabs(self) -> None:
        heads = {k.split(".")[0].split("[")[0] for k in self.errors}
        for i in range(self.tabs.count()):
            title = self.tabs.tabText(i).removesuffix(" \u26a0")
            names = ("assets",) if title == "Assets" else scene_form.SECTIONS.get(title, ())
            self.tabs.setTabText(i, title + (" \u26a0" if heads & set(names) or ("" in heads and title == "Scene") else ""))

    def _set_dirty(self, dirty: bool) -> None:
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirtyChanged.emit(dirty)
        self._update_title()

    def _update_title(self) -> None:
        name = self._data.get("name") or "untitled"
        where = "demo scene, not saved yet" if self._demo else (home_short(self._path) if self._path else "not saved yet")
        mark = " \u2022" if self._dirty else ""
        head = f"{name}{mark}   \u2014 "
        # the name stays; a path loses its middle (folder names), a status its end
        mode = Qt.TextElideMode.ElideMiddle if self._path and not self._demo else Qt.TextElideMode.ElideRight
        self.title.set_full_text(head + where, keep=len(head), mode=mode)

    # ------------------------------------------------------------------ files
    def _loaded(self, data: dict, path: Path | None, *, demo: bool, inputs: dict | None = None) -> None:
        self._data, self._path, self._demo = data, path, demo
        self._saved = copy.deepcopy(data)
        self._inputs = inputs or {}
        for title, form in self.forms.items():
            if title != "Layout":
                single = scene_form.single_group(scene_form.SECTIONS[title])
                form.load(data if single is None else (data.get(single.name) if isinstance(data.get(single.name), dict) else {}))
        self._build_layout_form()
        self.assets.set_assets(data.get("assets") if isinstance(data.get("assets"), list) else [], select=0)
        self._dirty = True
        self._set_dirty(False)
        self.preview.frame.blockSignals(True)
        self.preview.frame.setValue(0)
        self.preview.frame.blockSignals(False)
        self._validate_and_preview(reset_view=True)
        self.specChanged.emit()

    def _with_unsaved_check(self, then) -> None:
        if not self._dirty:
            then()
            return
        choice = self.ask_unsaved()
        if choice == "discard":
            then()
        elif choice == "save":
            self.save(then=then)

    def new_scene(self) -> None:
        self._with_unsaved_check(lambda: self._loaded(scene_form.new_scene(), None, demo=False))

    def open_dialog(self) -> None:
        def go():
            path = self.ask_open_path()
            if path:
                self.open_path(path)
        self._with_unsaved_check(go)

    def open_path(self, path: str | Path, *, demo: bool = False) -> None:
        """Read a spec file on the runner and show it (errors at their fields if invalid)."""
        path = Path(path)
        scenes_dir = self.scenes_dir

        def work():
            data = scene_form.load_file(path)
            return data, find_inputs(data, asset_dir_for(None if demo else path, scenes_dir))

        self._runner.submit(work, on_done=lambda r: self._loaded(r[0], path, demo=demo, inputs=r[1]),
                            on_error=lambda e: self._file_error(e))

    def save(self, *, then=None) -> None:
        if self._path is None or self._demo:
            self.save_as(then=then)
        else:
            self.save_to(self._path, then=then)

    def save_as(self, *, then=None) -> None:
        path = self.ask_save_path()
        if path:
            self.save_to(path, then=then)

    def save_to(self, path: str | Path, *, then=None) -> None:
        """Write the scene to `path` on the runner (atomic); assets follow it to a new folder."""
        data = copy.deepcopy(self._data)
        old = None if self._demo else self._path
        scenes_dir = self.scenes_dir

        def work():
            p = scene_form.save_file(data, path, old_path=old, scenes_dir=scenes_dir)
            return p, find_inputs(data, asset_dir_for(p, scenes_dir))

        def done(r):
            self._path, self._demo, self._inputs = r[0], False, r[1]
            self._saved = data
            if self._data == data:
                self._set_dirty(False)
            self._update_title()
            self.specSaved.emit(str(r[0]))
            if then is not None:
                then()

        self._runner.submit(work, on_done=done, on_error=self._file_error)

    def confirm_close(self) -> bool:
        """For the window's close: True when it may close (saves synchronously if asked)."""
        if not self._dirty:
            return True
        choice = self.ask_unsaved()
        if choice == "discard":
            return True
        if choice == "save":
            path = self._path if (self._path and not self._demo) else self.ask_save_path()
            if not path:
                return False
            try:
                scene_form.save_file(self._data, path, old_path=None if self._demo else self._path, scenes_dir=self.scenes_dir)
            except scene_form.SceneFileError as e:
                self._file_error(e)
                return False
            return True
        return False

    def _file_error(self, e: BaseException) -> None:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        self.banner.setText(msg)
        self.banner.setVisible(True)
        self.fileError.emit(msg)

    # ------------------------------------------------------------------ imports
    def import_meshes(self) -> None:
        paths = self.ask_import_paths("mesh")
        if paths:
            self.import_files([Path(p) for p in paths])

    def import_files(self, paths: list[Path]) -> None:
        """Copy meshes into the asset folder (on the runner) and add one asset per file."""
        meshes = [p for p in paths if p.suffix.lower() in scene_form.MESH_SUFFIXES]
        if not meshes:
            self._file_error(ValueError("drop or choose .obj, .glb, .gltf, .stl or .ply files"))
            return
        dest = self.asset_dir()

        def work():
            return [(p, *import_asset(p, dest)) for p in meshes]

        def done(items):
            for src, sha, copied in items:
                self._inputs[sha] = copied
                taken = [a.get("name", "") for a in self.assets.assets]
                self.assets.add_asset(scene_form.new_mesh(src.stem, sha, src.suffix, taken))
            self.tabs.setCurrentWidget(self.assets)

        self._runner.submit(work, on_done=done, on_error=self._file_error)

    def _import_for_field(self, kind: str, on_done) -> None:
        paths = self.ask_import_paths(kind)
        if not paths:
            return
        dest = self.asset_dir()
        src = Path(paths[0])

        def done(r):
            sha, copied = r
            self._inputs[sha] = copied
            on_done(sha)

        self._runner.submit(lambda: import_asset(src, dest), on_done=done, on_error=self._file_error)

    def dragEnterEvent(self, e) -> None:
        urls = e.mimeData().urls() if e.mimeData().hasUrls() else []
        if any(u.isLocalFile() and Path(u.toLocalFile()).suffix.lower() in scene_form.MESH_SUFFIXES for u in urls):
            e.acceptProposedAction()
        else:
            e.ignore()

    def dropEvent(self, e) -> None:
        paths = [Path(u.toLocalFile()) for u in e.mimeData().urls() if u.isLocalFile()]
        self.import_files(paths)
        e.acceptProposedAction()

    # ------------------------------------------------------------------ dialogs
    def _ask_open_path(self) -> str | None:
        """Starts in the folder of the last scene opened or saved (the demo scenes the first time)."""
        path = open_file(self, self.folders, "scene", "Open a scene", "Scene specs (*.json)")
        return str(path) if path else None

    def _ask_save_path(self) -> str | None:
        """Starts in the last scenes folder, or the app's own scenes folder rather than the demo scenes."""
        path = save_file(self, self.folders, "scene", "Save the scene", f"{self._data.get('name') or 'scene'}.json",
                         "Scene specs (*.json)", first=self.scenes_dir)
        return str(path) if path else None

    def _ask_import_paths(self, kind: str) -> list[str]:
        filt = "Meshes (*.obj *.glb *.gltf *.stl *.ply)" if kind == "mesh" else "Images (*.png *.jpg *.jpeg)"
        title = "Import meshes" if kind == "mesh" else "Choose an image"
        return [str(p) for p in open_files(self, self.folders, "mesh" if kind == "mesh" else "image", title, filt)]

    def _ask_unsaved(self) -> str:
        box = QMessageBox(QMessageBox.Icon.Question, "Unsaved changes",
                          f"Save the changes to \u201c{self._data.get('name') or 'untitled'}\u201d?", parent=self)
        box.setInformativeText("Your changes are lost if you don't save them.")
        box.setStandardButtons(QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                               | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        res = box.exec()
        return {QMessageBox.StandardButton.Save: "save", QMessageBox.StandardButton.Discard: "discard"}.get(
            QMessageBox.StandardButton(res), "cancel")

