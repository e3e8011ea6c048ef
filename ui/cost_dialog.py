"""The confirmation before an action that spends: each line of its app.costs.CostBreakdown
(escrow, network fee, ...), the total per unit, notes, and OK / Cancel. It never calls a
service: `accepted` tells the view to go on."""

from __future__ import annotations

from ui.qt import QDialog, QDialogButtonBox, QFormLayout, QLabel, Qt, QVBoxLayout
from ui.wallet_dialogs import muted


class ConfirmCostDialog(QDialog):
    def __init__(self, breakdown, *, ok_text: str, parent=None):
        super().__init__(parent)
        self.breakdown = breakdown
        self.setWindowTitle(breakdown.title)
        form = QFormLayout()
        self.line_labels: list[QLabel] = []
        for line in breakdown.lines:
            value = QLabel(line.text + (f"  <span style='color: gray'>{line.note}</span>" if line.note else ""))
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(f"{line.label}:", value)
            self.line_labels.append(value)
        self.total_label = QLabel(f"<b>{breakdown.total_text()}</b>")
        form.addRow("Total:", self.total_label)
        box = QVBoxLayout(self)
        box.addLayout(form)
        for note in breakdown.notes:
            lab = QLabel(note)
            lab.setWordWrap(True)
            muted(lab)
            box.addWidget(lab)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.addButton(ok_text, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        box.addWidget(self.buttons)
        self.resize(460, self.sizeHint().height())
