"""The wizard's last page: each mining device's price floor (its default from the benchmark
just run and the shipped reference price, editable) and the mining key that lets the rig keep
mining after a restart with the wallet locked. app.first_run.FirstRun saves both.
"""

from __future__ import annotations

from app.account import FILE_RISK
from app.first_run import FirstRun
from ui.background import Background
from ui.device_card import floor_spin
from ui.qt import QCheckBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, Qt, QVBoxLayout, QWidget
from ui.wallet_dialogs import muted
from ui.wizard_page import WizardPage

KEY_TEXT = "Keep mining after a restart, without my password"
KEY_NOTE = ("This makes a mining key: it signs the miner's jobs and holds only gas ETH sent from this wallet; your "
            "earnings are paid to this wallet.")


class FloorsPage(WizardPage):
    def __init__(self, flow: FirstRun, devices, runner: Background, chain_runner: Background):
        super().__init__("Set your prices",
                         "The least each device takes per hour of work. The miner never claims a job that pays less.")
        self.flow, self.devices, self.runner, self.chain_runner = flow, devices, runner, chain_runner
        self.box = QVBoxLayout(self)
        self.holder = QWidget()
        self.box.addWidget(self.holder)
        self.spins: dict[str, QDoubleSpinBox] = {}
        self.bases: dict[str, QLabel] = {}
        self.mining_key = QCheckBox(KEY_TEXT)
        self.mining_key.setChecked(True)
        self.key_note = QLabel()
        self.key_note.setWordWrap(True)
        muted(self.key_note)
        self.box.addSpacing(8)
        self.box.addWidget(self.mining_key, 0, Qt.AlignmentFlag.AlignLeft)
        self.box.addWidget(self.key_note)
        self.box.addWidget(self.busy)
        self.box.addWidget(self.general_error)
        self.box.addStretch(1)
        self.setFinalPage(True)

    def initializePage(self) -> None:
        modes = self.wizard().devices_page.modes() if self.wizard() is not None else {}
        self.wanted = [d for d, m in modes.items() if m != "idle"] or [s.info.id for s in self.devices.states()]
        self.busy.setText("Reading the benchmarks…")
        flow, devices = self.flow, self.devices
        self.runner.submit(lambda: flow.floors(devices), on_done=self._show, on_error=self.show_field_error)
        self.runner.submit(flow.keyring.available, on_done=self._keyring)

    def _keyring(self, available: bool) -> None:
        self.key_note.setText(KEY_NOTE + (" It is kept in the OS keyring." if available else
                                          " No OS keyring here: " + FILE_RISK))

    def _show(self, views: dict) -> None:
        self.busy.setText("")
        old, self.holder = self.holder, QWidget()
        self.box.replaceWidget(old, self.holder)
        old.deleteLater()
        form = QFormLayout(self.holder)
        self.fields_, self.spins, self.bases = {}, {}, {}
        for device_id in self.wanted:
            v = views.get(device_id)
            if v is None:
                continue
            spin = floor_spin(v.ntk_per_hour or v.default.ntk_per_hour)
            basis = QLabel(f"Default {v.default.ntk_per_hour:g} NTK/h {v.default.basis}")
            basis.setWordWrap(True)
            muted(basis)
            col = QVBoxLayout()
            col.setSpacing(2)
            row = QHBoxLayout()
            row.addWidget(spin)
            row.addStretch(1)
            col.addLayout(row)
            col.addWidget(basis)
            holder = QWidget()
            holder.setLayout(col)
            col.setContentsMargins(0, 0, 0, 0)
            self.field_row(form, self.devices.device(device_id).name + f" ({device_id})", holder, f"floor:{device_id}")
            self.spins[device_id], self.bases[device_id] = spin, basis

    def floors(self) -> dict[str, float]:
        return {d: float(s.value()) for d, s in self.spins.items()}

    def background(self):
        flow, devices, floors, key = self.flow, self.devices, self.floors(), self.mining_key.isChecked()

        def save():
            flow.set_floors(devices, floors)
            return flow.create_mining_key() if key else None

        return self.chain_runner, save, "Saving the prices" + (" and making the mining key…" if key else "…")

    def succeeded(self, change) -> None:
        self.key_change = change
