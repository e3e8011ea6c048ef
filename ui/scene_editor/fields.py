"""One editor widget per kind of scene field (app.forms.scene.FieldInfo.kind).

Every editor has `changed` (emitted on user edits only), `value()` and `set_value(v)`
(which never emits). Values are JSON data: numbers, [low, high] pairs, [r, g, b] in 0..1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QColorDialog, QPlainTextEdit

from ui.qt import (
    QCheckBox,
    QColor,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
    Signal,
)

Importer = Callable[[str, Callable[[str], None]], None]  # (kind "image" | "mesh", on_done(sha256))


def _row(parent: QWidget) -> QHBoxLayout:
    h = QHBoxLayout(parent)
    h.setContentsMargins(0, 0, 0, 0)
    h.setSpacing(6)
    return h


def _style(fi) -> tuple[int, float, float, float]:
    """(decimals, step, low bound, high bound) for a float field, from its title and bounds."""
    t = fi.title.lower()
    lo = fi.minimum if fi.minimum is not None else (0.0 if "(m)" in t or "(k)" in t or "intensity" in t else -1e6)
    hi = fi.maximum if fi.maximum is not None else 1e6
    if "(deg)" in t or "(k)" in t:
        return 1, (100.0 if "(k)" in t else 1.0), lo, hi
    if "(m)" in t:
        return 3, 0.005, lo, hi
    return 3, 0.05, lo, hi


class Editor(QWidget):
    changed = Signal()

    def __init__(self, fi, parent=None):
        super().__init__(parent)
        self.fi = fi

    def value(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def set_value(self, v: Any) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class BoolEdit(Editor):
    def __init__(self, fi, parent=None):
        super().__init__(fi, parent)
        self.box = QCheckBox()
        _row(self).addWidget(self.box)
        self.box.toggled.connect(lambda _v: self.changed.emit())

    def value(self):
        return self.box.isChecked()

    def set_value(self, v):
        self.box.blockSignals(True)
        self.box.setChecked(bool(v))
        self.box.blockSignals(False)


class ChoiceEdit(Editor):
    AUTO = "(automatic)"

    def __init__(self, fi, parent=None):
        super().__init__(fi, parent)
        self.combo = QComboBox()
        self.combo.addItems(([self.AUTO] if fi.optional else []) + list(fi.choices))
        _row(self).addWidget(self.combo, 1)
        self.combo.currentTextChanged.connect(lambda _t: self.changed.emit())

    def value(self):
        t = self.combo.currentText()
        return None if t == self.AUTO else t

    def set_value(self, v):
        self.combo.blockSignals(True)
        self.combo.setCurrentText(self.AUTO if v is None else str(v))
        self.combo.blockSignals(False)


class NumberEdit(Editor):
    def __init__(self, fi, parent=None, *, integer: bool | None = None):
        super().__init__(fi, parent)
        self.integer = fi.kind == "int" if integer is None else integer
        self.spin = self._spin()
        _row(self).addWidget(self.spin, 1)

    def _spin(self):
        if self.integer:
            s = QSpinBox()
            lo = int(self.fi.minimum) if self.fi.minimum is not None else -(2**31)
            hi = int(min(self.fi.maximum, 2**31 - 1)) if self.fi.maximum is not None else 2**31 - 1
            s.setRange(lo, hi)
        else:
            s = QDoubleSpinBox()
            dec, step, lo, hi = _style(self.fi)
            s.setDecimals(dec)
            s.setSingleStep(step)
            s.setRange(lo, hi)
        s.setKeyboardTracking(False)
        s.setMinimumWidth(64)  # the layout may shrink it below its (wide) size hint
        s.valueChanged.connect(lambda _v: self.changed.emit())
        return s

    def value(self):
        return int(self.spin.value()) if self.integer else round(float(self.spin.value()), 6)

    def set_value(self, v):
        self.spin.blockSignals(True)
        self.spin.setValue(v if v is not None else 0)
        self.spin.blockSignals(False)


class RangeEdit(Editor):
    """[low, high]: two spin boxes; may be None when the field is optional (a checkbox)."""

    def __init__(self, fi, parent=None):
        super().__init__(fi, parent)
        integer = fi.kind == "int_range"
        h = _row(self)
        self.enable = QCheckBox() if fi.optional else None
        if self.enable is not None:
            self.enable.setToolTip("Set this range (unchecked: the default)")
            self.enable.toggled.connect(self._toggled)
            h.addWidget(self.enable)
        self.lo, self.hi = NumberEdit(fi, integer=integer), NumberEdit(fi, integer=integer)
        self.lo.spin.setToolTip("low")
        self.hi.spin.setToolTip("high")
        h.addWidget(self.lo, 1)
        h.addWidget(QLabel("to"))
        h.addWidget(self.hi, 1)
        for e in (self.lo, self.hi):
            e.changed.connect(self.changed.emit)

    def _toggled(self, on: bool) -> None:
        self.lo.setEnabled(on)
        self.hi.setEnabled(on)
        self.changed.emit()

    def value(self):
        if self.enable is not None and not self.enable.isChecked():
            return None
        return [self.lo.value(), self.hi.value()]

    def set_value(self, v):
        if self.enable is not None:
            self.enable.blockSignals(True)
            self.enable.setChecked(v is not None)
            self.enable.blockSignals(False)
            self.lo.setEnabled(v is not None)
            self.hi.setEnabled(v is not None)
        lo, hi = v if v is not None else (self.lo.value(), self.hi.value())
        self.lo.set_value(lo)
        self.hi.set_value(hi)


def _qcolor(rgb) -> QColor:
    r, g, b = (max(0.0, min(1.0, float(c))) for c in rgb)
    return QColor.fromRgbF(r, g, b)


class ColorButton(QToolButton):
    """A colour swatch; a click opens the colour picker. `picked` after a choice."""

    picked = Signal()

    def __init__(self, rgb=(0.8, 0.8, 0.8), parent=None):
        super().__init__(parent)
        self.setFixedSize(44, 24)
        self._rgb = list(rgb)
        self.clicked.connect(self._pick)
        self._paint()

    def rgb(self) -> list[float]:
        return [round(c, 4) for c in self._rgb]

    def set_rgb(self, rgb) -> None:
        self._rgb = [float(c) for c in rgb]
        self._paint()

    def _paint(self) -> None:
        c = _qcolor(self._rgb)
        self.setStyleSheet(f"QToolButton {{ background: {c.name()}; border: 1px solid palette(mid); border-radius: 4px; }}")
        self.setToolTip(f"RGB {self._rgb[0]:.2f}, {self._rgb[1]:.2f}, {self._rgb[2]:.2f} - click to choose")

    def _pick(self) -> None:
        c = QColorDialog.getColor(_qcolor(self._rgb), self, "Choose a colour")
        if c.isValid():
            self.set_rgb([c.redF(), c.greenF(), c.blueF()])
            self.picked.emit()


class RgbEdit(Editor):
    def __init__(self, fi, parent=None):
        super().__init__(fi, parent)
        self.button = ColorButton()
        h = _row(self)
        h.addWidget(self.button)
        h.addStretch(1)
        self.button.picked.connect(self.changed.emit)

    def value(self):
        return self.button.rgb()

    def set_value(self, v):
        self.button.set_rgb(v)


class RgbRangeEdit(Editor):
    """[[r, g, b] low, [r, g, b] high]: each channel is drawn between the two colours."""

    def __init__(self, fi, parent=None):
        super().__init__(fi, parent)
        h = _row(self)
        self.lo, self.hi = ColorButton(), ColorButton()
        h.addWidget(self.lo)
        h.addWidget(QLabel("to"))
        h.addWidget(self.hi)
        h.addStretch(1)
        for b in (self.lo, self.hi):
            b.picked.connect(self.changed.emit)

    def value(self):
        return [self.lo.rgb(), self.hi.rgb()]

    def set_value(self, v):
        self.lo.set_rgb(v[0])
        self.hi.set_rgb(v[1])


class RgbListEdit(Editor):
    def __init__(self, fi, parent=None):
        super().__init__(fi, parent)
        self._h = _row(self)
        self.buttons: list[ColorButton] = []
        self.add = QToolButton()
        self.add.setText("+")
        self.add.setToolTip("Add a colour")
        self.add.clicked.connect(lambda: (self._add([0.8, 0.2, 0.2]), self.changed.emit()))
        self.remove = QToolButton()
        self.remove.setText("\u2212")
        self.remove.setToolTip("Remove the last colour")
        self.remove.clicked.connect(self._remove_last)
        self._h.addWidget(self.add)
        self._h.addWidget(self.remove)
        self._h.addStretch(1)

    def _add(self, rgb) -> None:
        b = ColorButton(rgb)
        b.picked.connect(self.changed.emit)
        self._h.insertWidget(len(self.buttons), b)
        self.buttons.append(b)

    def _remove_last(self) -> None:
        if self.buttons:
            self.buttons.pop().deleteLater()
            self.changed.emit()

    def value(self):
        return [b.rgb() for b in self.buttons]

    def set_value(self, v):
        for b in self.buttons:
            b.deleteLater()
        self.buttons = []
        for rgb in v or []:
            self._add(rgb)


class MultiChoiceEdit(Editor):
    def __init__(self, fi, parent=None):
        super().__init__(fi, parent)
        h = _row(self)
        self.boxes = {c: QCheckBox(c) for c in fi.choices}
        for b in self.boxes.values():
            h.addWidget(b)
            b.toggled.connect(lambda _v: self.changed.emit())
        h.addStretch(1)

    def value(self):
        return [c for c, b in self.boxes.items() if b.isChecked()]

    def set_value(self, v):
        for c, b in self.boxes.items():
            b.blockSignals(True)
            b.setChecked(c in (v or []))
            b.blockSignals(False)


class MultilineEdit(Editor):
    def __init__(self, fi, parent=None):
        super().__init__(fi, parent)
        self.text = QPlainTextEdit()
        self.text.setFixedHeight(84)
        _row(self).addWidget(self.text, 1)
        self.text.textChanged.connect(self.changed.emit)

    def value(self):
        return self.text.toPlainText()

    def set_value(self, v):
        self.text.blockSignals(True)
        self.text.setPlainText("" if v is None else str(v))
        self.text.blockSignals(False)


class TextEdit(Editor):
    def __init__(self, fi, parent=None):
        super().__init__(fi, parent)
        self.line = QLineEdit()
        if fi.optional:
            self.line.setPlaceholderText("(none)")
        _row(self).addWidget(self.line, 1)
        self.line.textChanged.connect(lambda _t: self.changed.emit())

    def value(self):
        t = self.line.text()
        return None if self.fi.optional and not t.strip() else t

    def set_value(self, v):
        self.line.blockSignals(True)
        self.line.setText("" if v is None else str(v))
        self.line.blockSignals(False)


def _short(sha: str | None) -> str:
    return "(none)" if not sha else f"{sha[:10]}\u2026"


class FileEdit(Editor):
    """A user file named by sha256; "Choose…" imports one into the scene's asset folder."""

    def __init__(self, fi, importer: Importer, parent=None):
        super().__init__(fi, parent)
        self._sha: str | None = None
        self.kind = "mesh" if "mesh" in fi.title.lower() else "image"
        h = _row(self)
        self.label = QLabel(_short(None))
        self.choose = QToolButton()
        self.choose.setText("Choose\u2026")
        self.choose.clicked.connect(lambda: importer(self.kind, self._chosen))
        h.addWidget(self.label, 1)
        h.addWidget(self.choose)
        if fi.optional:
            self.clear = QToolButton()
            self.clear.setText("Clear")
            self.clear.clicked.connect(lambda: self._chosen(None))
            h.addWidget(self.clear)

    def _chosen(self, sha: str | None) -> None:
        self.set_value(sha)
        self.changed.emit()

    def value(self):
        return self._sha

    def set_value(self, v):
        self._sha = v
        self.label.setText(_short(v))
        self.label.setToolTip(v or "")


class FilesEdit(Editor):
    def __init__(self, fi, importer: Importer, parent=None):
        super().__init__(fi, parent)
        self._shas: list[str] = []
        h = _row(self)
        self.label = QLabel()
        add = QToolButton()
        add.setText("Add image\u2026")
        add.clicked.connect(lambda: importer("image", self._added))
        clear = QToolButton()
        clear.setText("Clear")
        clear.clicked.connect(lambda: (self.set_value([]), self.changed.emit()))
        h.addWidget(self.label, 1)
        h.addWidget(add)
        h.addWidget(clear)
        self.set_value([])

    def _added(self, sha: str | None) -> None:
        if sha:
            self.set_value(self._shas + [sha])
            self.changed.emit()

    def value(self):
        return list(self._shas)

    def set_value(self, v):
        self._shas = list(v or [])
        self.label.setText(f"{len(self._shas)} image(s)" if self._shas else "generated art")
        self.label.setToolTip("\n".join(self._shas))


def make_editor(fi, importer: Importer) -> Editor:
    k = fi.kind
    if k == "bool":
        return BoolEdit(fi)
    if k == "choice":
        return ChoiceEdit(fi)
    if k in ("int", "float"):
        return NumberEdit(fi)
    if k in ("range", "int_range"):
        return RangeEdit(fi)
    if k == "rgb":
        return RgbEdit(fi)
    if k == "rgb_range":
        return RgbRangeEdit(fi)
    if k == "rgb_list":
        return RgbListEdit(fi)
    if k == "multi_choice":
        return MultiChoiceEdit(fi)
    if k == "file":
        return FileEdit(fi, importer)
    if k == "multiline":
        return MultilineEdit(fi)
    if k == "files":
        return FilesEdit(fi, importer)
    return TextEdit(fi)
