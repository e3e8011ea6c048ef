"""The settings dialog, generated from the settings model (app.forms.settings).

One tab per section, one editor per field with its title as the label and its description
as the tooltip. OK validates every section; an invalid value is marked at its field with the
message and nothing is saved until all are valid.
"""

from __future__ import annotations

import math

from app.forms import settings as settings_form
from ui.qt import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel,
    QLineEdit, QSpinBox, QTabWidget, QVBoxLayout, QWidget,
)

_ERROR_STYLE = "border: 1px solid #c0392b;"


class SettingsDialog(QDialog):
    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        self._settings = settings
        self.editors: dict[tuple[str, str], QWidget] = {}
        self.error_labels: dict[tuple[str, str], QLabel] = {}
        self.warnings: dict[tuple[str, str], QLabel] = {}
        self.result_sections: dict[str, object] = {}
        self._specs = {(sec.name, f.name): f for sec in settings_form.sections() for f in sec.fields}
        self.tabs = QTabWidget()
        for sec in settings_form.sections():
            page = QWidget()
            form = QFormLayout(page)
            current = settings_form.values(settings, sec.name)
            for f in sec.fields:
                editor = self._editor(f, current.get(f.name))
                editor.setToolTip(f.description)
                label = QLabel(f.title)
                label.setToolTip(f.description)
                err = QLabel()
                err.setStyleSheet("color: #c0392b;")
                err.setVisible(False)
                err.setWordWrap(True)
                holder = QWidget()
                v = QVBoxLayout(holder)
                v.setContentsMargins(0, 0, 0, 0)
                v.setSpacing(2)
                v.addWidget(editor)
                if f.warning:  # a risk is stated in plain sight (the market-jobs-under-basic switch)
                    risk = QLabel(f.warning)
                    risk.setWordWrap(True)
                    risk.setStyleSheet("color: #b9770e;")
                    v.addWidget(risk)
                    self.warnings[(sec.name, f.name)] = risk
                v.addWidget(err)
                form.addRow(label, holder)
                self.editors[(sec.name, f.name)] = editor
                self.error_labels[(sec.name, f.name)] = err
            self.tabs.addTab(page, sec.title)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.addWidget(self.tabs)
        box.addWidget(buttons)

    @staticmethod
    def _editor(f, value) -> QWidget:
        if f.kind == "bool":
            w = QCheckBox()
            w.setChecked(bool(value))
        elif f.kind == "choice":
            w = QComboBox()
            w.addItems(list(f.choices))
            w.setCurrentText(str(value))
        elif f.kind == "int":
            w = QSpinBox()
            w.setSuffix(f.suffix)
            w.setRange(int(f.minimum if f.minimum is not None else -2**31),
                       int(f.maximum if f.maximum is not None else 2**31 - 1))
            w.setValue(int(value))
        elif f.kind == "float":
            w = QDoubleSpinBox()
            k = f.scale
            w.setDecimals(f.decimals if f.decimals is not None else 3 if (f.maximum or 1000) <= 10 else 2)
            lo = f.minimum * k if f.minimum is not None else -1e12
            if w.decimals() == 0:
                lo = math.ceil(lo)  # whole minutes: the least whole value allowed
            w.setRange(lo, f.maximum * k if f.maximum is not None else 1e12)
            w.setSuffix(f.suffix)
            w.setValue(float(value) * k)
        else:
            w = QLineEdit("" if value is None else str(value))
            if f.optional:
                w.setPlaceholderText("(not set)")
        return w

    def _read(self, section: str) -> dict:
        out = {}
        for (sec, name), w in self.editors.items():
            if sec != section:
                continue
            if isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, QComboBox):
                out[name] = w.currentText()
            elif isinstance(w, QDoubleSpinBox):
                out[name] = w.value() / self._specs[(sec, name)].scale
            elif isinstance(w, QSpinBox):
                out[name] = w.value()
            else:
                out[name] = w.text()
        return out

    def accept(self) -> None:
        """Validate every section; close only when all are valid (results in `result_sections`)."""
        results, first_bad = {}, None
        for i, sec in enumerate(settings_form.sections()):
            new, errors = settings_form.apply(self._settings, sec.name, self._read(sec.name))
            for f in sec.fields:
                key = (sec.name, f.name)
                msg = errors.get(f.name)
                self.error_labels[key].setText(msg or "")
                self.error_labels[key].setVisible(bool(msg))
                self.editors[key].setStyleSheet(_ERROR_STYLE if msg else "")
            if errors and first_bad is None:
                first_bad = i
            results[sec.name] = new
        if first_bad is not None:
            self.tabs.setCurrentIndex(first_bad)
            return
        self.result_sections = results
        super().accept()
