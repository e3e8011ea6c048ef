"""The Assets tab: the list of products (primitives and imported meshes) and the selected
one's form (shape, sizes, material, label texture).

The panel never owns the scene: it shows `assets` (the scene dict's list) and reports
`edited(path, value)` for field edits, `replaced(list)` when assets are added, duplicated
or removed, and `importRequested()` for "Import mesh…" (the editor opens the file dialog).
"""

from __future__ import annotations

import copy

from app.forms import scene as scene_form
from ui.qt import (
    QColor,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QScrollArea,
    Qt,
    QToolButton,
    QVBoxLayout,
    QWidget,
    Signal,
)
from ui.scene_editor.fields import Importer
from ui.scene_editor.form import ModelForm, error_label, muted_label

_ICON = {"box": "\u25a0", "can": "\u25ae", "bottle": "\u25b2", "jar": "\u25cf", "bag": "\u25c6", "mesh": "\u25c8"}


class AssetsPanel(QWidget):
    edited = Signal(object, object)
    replaced = Signal(object)
    importRequested = Signal()

    def __init__(self, importer: Importer, parent=None):
        super().__init__(parent)
        self._importer = importer
        self.assets: list[dict] = []
        self.form: ModelForm | None = None
        self._errors: dict[str, str] = {}

        self.list = QListWidget()
        self.list.setMaximumHeight(170)
        self.list.currentRowChanged.connect(self._selected)
        self.add = QToolButton()
        self.add.setText("Add \u25be")
        self.add.setToolTip("Add a built-in shape, or import a mesh (OBJ, GLB, STL, PLY)")
        self.add.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.add)
        for kind in scene_form.PRIMITIVE_KINDS:
            menu.addAction(f"{_ICON[kind]}  {kind.capitalize()}", lambda k=kind: self._add_primitive(k))
        menu.addSeparator()
        menu.addAction(f"{_ICON['mesh']}  Import mesh\u2026", self.importRequested.emit)
        self.add.setMenu(menu)
        self.dup = QToolButton()
        self.dup.setText("Duplicate")
        self.dup.clicked.connect(self._duplicate)
        self.remove = QToolButton()
        self.remove.setText("Remove")
        self.remove.clicked.connect(self._remove)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add)
        buttons.addWidget(self.dup)
        buttons.addWidget(self.remove)
        buttons.addStretch(1)
        hint = muted_label("Drop .obj / .glb / .stl / .ply files on the editor to import meshes.")
        hint.setWordWrap(True)

        self.shape = QComboBox()
        self.shape.addItems(list(scene_form.PRIMITIVE_KINDS))
        self.shape.setToolTip("The built-in shape of this product (width is the diameter for can, bottle and jar)")
        self.shape.currentTextChanged.connect(self._shape_changed)
        self.shape_row = QWidget()
        sr = QHBoxLayout(self.shape_row)
        sr.setContentsMargins(0, 0, 0, 0)
        sr.addWidget(QLabel("Shape"))
        sr.addWidget(self.shape, 1)
        self.asset_error = error_label()
        self.form_box = QVBoxLayout()
        holder = QWidget()
        hv = QVBoxLayout(holder)
        hv.setContentsMargins(0, 0, 4, 0)
        hv.addWidget(self.shape_row)
        hv.addWidget(self.asset_error)
        hv.addLayout(self.form_box)
        hv.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(holder)

        box = QVBoxLayout(self)
        box.addLayout(buttons)
        box.addWidget(self.list)
        box.addWidget(hint)
        box.addWidget(scroll, 1)

    # ------------------------------------------------------------------ showing
    def set_assets(self, assets: list[dict], select: int | None = None) -> None:
        row = self.list.currentRow() if select is None else select
        self.assets = assets
        self.list.blockSignals(True)
        self.list.clear()
        for a in assets:
            self.list.addItem(QListWidgetItem(self._item_text(a)))
        self.list.blockSignals(False)
        row = max(0, min(row, len(assets) - 1)) if assets else -1
        self.list.setCurrentRow(row)
        self._selected(row)
        self.show_errors(self._errors)

    @staticmethod
    def _item_text(a: dict) -> str:
        kind = a.get("kind", "?")
        label = a.get("label")
        return f"{_ICON.get(kind, '?')}  {a.get('name', '?')}   \u2014 {kind}" + (f", class {label}" if label else ", unlabelled")

    def refresh_item(self, index: int) -> None:
        if 0 <= index < self.list.count():
            self.list.item(index).setText(self._item_text(self.assets[index]))

    def current(self) -> int:
        return self.list.currentRow()

    def _selected(self, row: int) -> None:
        if self.form is not None:
            self.form.setParent(None)
            self.form.deleteLater()
            self.form = None
        has = 0 <= row < len(self.assets)
        self.dup.setEnabled(has)
        self.remove.setEnabled(has and len(self.assets) > 1)
        self.shape_row.setVisible(has and self.assets[row].get("kind") != "mesh")
        if not has:
            return
        a = self.assets[row]
        if a.get("kind") != "mesh":
            self.shape.blockSignals(True)
            self.shape.setCurrentText(a.get("kind", "box"))
            self.shape.blockSignals(False)
        self.form = ModelForm(scene_form.asset_model(a.get("kind", "box")), ["assets", row], a, self._importer)
        self.form.edited.connect(self._edited)
        self.form_box.addWidget(self.form)
        self.show_errors(self._errors)

    def _edited(self, path: list, value) -> None:
        self.edited.emit(path, value)
        if len(path) == 3 and path[2] in ("name", "label"):
            self.refresh_item(path[1])

    def _shape_changed(self, kind: str) -> None:
        row = self.current()
        if 0 <= row < len(self.assets):
            self.edited.emit(["assets", row, "kind"], kind)
            self.refresh_item(row)

    # ------------------------------------------------------------------ list edits
    def _names(self) -> list[str]:
        return [a.get("name", "") for a in self.assets]

    def _add_primitive(self, kind: str) -> None:
        self.add_asset(scene_form.new_primitive(kind, self._names()))

    def add_asset(self, asset: dict) -> None:
        new = self.assets + [asset]
        self.replaced.emit(new)
        self.set_assets(new, select=len(new) - 1)

    def _duplicate(self) -> None:
        row = self.current()
        if 0 <= row < len(self.assets):
            a = copy.deepcopy(self.assets[row])
            a["name"] = scene_form.unique_name(str(a.get("name", "asset")), self._names())
            new = self.assets[:row + 1] + [a] + self.assets[row + 1:]
            self.replaced.emit(new)
            self.set_assets(new, select=row + 1)

    def _remove(self) -> None:
        row = self.current()
        if 0 <= row < len(self.assets) and len(self.assets) > 1:
            new = self.assets[:row] + self.assets[row + 1:]
            self.replaced.emit(new)
            self.set_assets(new, select=min(row, len(new) - 1))

    # ------------------------------------------------------------------ errors
    def show_errors(self, errors: dict[str, str]) -> set[str]:
        """Mark assets with problems in the list and show the selected one's at its fields;
        returns the error paths shown here."""
        self._errors = errors
        shown: set[str] = set()
        bad = QColor("#c0392b")
        for i in range(self.list.count()):
            prefix = f"assets[{i}]"
            mine = {k: v for k, v in errors.items() if k == prefix or k.startswith(prefix + ".")}
            item = self.list.item(i)
            item.setForeground(bad if mine else self.list.palette().text().color())
            item.setToolTip("\n".join(f"{k}: {v}" for k, v in mine.items()))
            if mine:
                shown.update(mine)
        row = self.current()
        labels = self.form.all_error_labels() if self.form is not None else {}
        for key, lab in labels.items():
            msg = errors.get(key)
            lab.setText(msg or "")
            lab.setVisible(bool(msg))
        own = errors.get(f"assets[{row}]")
        self.asset_error.setText(own or "")
        self.asset_error.setVisible(bool(own))
        return shown
