"""ModelForm: a form generated from one pydantic model of the scene spec (app.forms.scene).

One row per field: the title as the label, the description as the tooltip, an editor, and
an error line under it (shown by `show_errors`). Nested models become group boxes; an
optional nested model (a product's label texture) a checkable group box. Edits are reported
as `edited(path, value)` with `path` a list of keys/indices into the scene dict.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QGroupBox

from app.forms import scene as scene_form
from ui.qt import QFormLayout, QFrame, QLabel, QVBoxLayout, QWidget, Signal
from ui.scene_editor.fields import Editor, Importer, make_editor
from ui.widgets import MutedLabel

ERROR_COLOR = "#c0392b"


def path_text(path: list) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def muted_label(text: str = "") -> QLabel:
    """A secondary line in the theme's placeholder colour; follows theme switches (a palette
    fixed at creation stayed dark grey on the dark theme)."""
    return MutedLabel(text)


def error_label() -> QLabel:
    lab = QLabel()
    lab.setStyleSheet(f"color: {ERROR_COLOR};")
    lab.setWordWrap(True)
    lab.setVisible(False)
    return lab


class ModelForm(QWidget):
    """Editors for `model`'s fields (or only `names`), bound to `path` in the scene dict."""

    edited = Signal(object, object)  # path (list), new value

    def __init__(self, model, path: list, data: dict, importer: Importer, *, names: tuple[str, ...] | None = None,
                 parent_model=None, parent=None):
        super().__init__(parent)
        self.model, self.path = model, list(path)
        self.editors: dict[str, Editor] = {}
        self.errors: dict[str, QLabel] = {}
        self.groups: dict[str, tuple[QGroupBox, ModelForm]] = {}
        self._group_models: dict[str, type] = {}
        self._importer = importer
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        infos = [f for f in scene_form.fields(model, parent_model) if names is None or f.name in names]
        infos.sort(key=lambda f: f.kind == "group")  # plain fields first, nested groups after them
        for fi in infos:
            if fi.hidden:
                continue
            if fi.kind == "group":
                self._add_group(fi, data.get(fi.name))
            else:
                self._add_field(fi, data.get(fi.name))

    def _add_field(self, fi, value: Any) -> None:
        key = path_text(self.path + [fi.name])
        ed = make_editor(fi, self._importer)
        ed.setToolTip(fi.description)
        if value is None and not fi.optional and self.model is not None:
            value = scene_form.json_value(self.model.model_fields[fi.name].get_default(call_default_factory=True))
        if value is not None or fi.optional:
            ed.set_value(value)
        ed.changed.connect(lambda fi=fi, ed=ed: self.edited.emit(self.path + [fi.name], ed.value()))
        label = QLabel(fi.title)
        label.setToolTip(fi.description)
        err = error_label()
        holder = QWidget()
        v = QVBoxLayout(holder)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(2)
        v.addWidget(ed)
        v.addWidget(err)
        self.form.addRow(label, holder)
        self.editors[key], self.errors[key] = ed, err

    def _add_group(self, fi, value: Any) -> None:
        key = path_text(self.path + [fi.name])
        box = QGroupBox(fi.title)
        box.setToolTip(fi.description)
        lay = QVBoxLayout(box)
        lay.setContentsMargins(10, 6, 6, 6)
        err = error_label()
        lay.addWidget(err)
        self.errors[key] = err
        sub = None
        data = value if isinstance(value, dict) else None
        if fi.optional:
            box.setCheckable(True)
            box.setChecked(data is not None)
            box.toggled.connect(lambda on, fi=fi: self._toggle_group(fi, on))
        if data is None:
            data = scene_form.default_of(fi.model)
        sub = ModelForm(fi.model, self.path + [fi.name], data, self._importer, parent_model=self.model)
        sub.edited.connect(self.edited.emit)
        lay.addWidget(sub)
        self.groups[key] = (box, sub)
        self._group_models[key] = fi.model
        self.form.addRow(box)

    def _toggle_group(self, fi, on: bool) -> None:
        key = path_text(self.path + [fi.name])
        _box, sub = self.groups[key]
        if on:
            data = scene_form.default_of(fi.model)
            sub.load(data)
            self.edited.emit(self.path + [fi.name], data)
        else:
            self.edited.emit(self.path + [fi.name], None)

    def load(self, data: dict) -> None:
        """Show `data` (the dict at this form's path) without emitting edits."""
        for key, ed in self.editors.items():
            name = key.rsplit(".", 1)[-1]
            if name in data or ed.fi.optional:
                ed.set_value(data.get(name))
            elif self.model is not None and name in self.model.model_fields:
                default = self.model.model_fields[name].get_default(call_default_factory=True)
                if default is not None:
                    ed.set_value(scene_form.json_value(default))
        for key, (box, sub) in self.groups.items():
            name = key.rsplit(".", 1)[-1]
            val = data.get(name)
            if box.isCheckable():
                box.blockSignals(True)
                box.setChecked(isinstance(val, dict))
                box.blockSignals(False)
            sub.load(val if isinstance(val, dict) else scene_form.default_of(self._group_models[key]))

    def all_error_labels(self) -> dict[str, QLabel]:
        out = dict(self.errors)
        for _box, sub in self.groups.values():
            out.update(sub.all_error_labels())
        return out

    def all_editors(self) -> dict[str, Editor]:
        out = dict(self.editors)
        for _box, sub in self.groups.values():
            out.update(sub.all_editors())
        return out


def separator() -> QFrame:
    f = QFrame()
    f.setFrameShape(QFrame.Shape.HLine)
    f.setFrameShadow(QFrame.Shadow.Sunken)
    return f
