"""The first-run wizard: create the wallet (its recovery phrase shown once, three words asked
back), restore it from a phrase or import it, back it up, pick the network, choose each
device's mode, benchmark the chosen devices, set their price floors and the mining key
(ui.first_run_recovery, ui.first_run_floors). It only shows app.first_run.FirstRun, which does
every step; errors come back as FieldErrors and are shown at their field.

Threading: keystore steps (KDF) and the benchmark run on `runner`; the network step (which
opens a chain and, on the local one, deploys and funds) on `chain_runner`. Nothing slow on
the GUI thread. The benchmark runs in child processes and Cancel kills them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from app.amounts import FieldError
from app.first_run import (BenchmarkRun, BenchOutcome, BenchProgress, Cancelled, FirstRun, check_new_password,
                           password_strength, suggest_modes)
from ui.background import Background
from ui.first_run_floors import FloorsPage
from ui.first_run_recovery import PhrasePage, QuizPage, RestorePage
from ui.qr import qr_pixmap
from ui.qt import (
    QButtonGroup, QCheckBox, QComboBox, QFileDialog, QFormLayout, QGridLayout, QHBoxLayout, QLabel, QLineEdit,
    QObject, QProgressBar, QPushButton, QRadioButton, Qt, QVBoxLayout, QWidget, QWizard, QWizardPage, Signal,
)
from ui.wallet_dialogs import error_label, mono_font, muted, show_error
from ui.wizard_page import WizardPage as _Page, password_edit

log = logging.getLogger(__name__)

WELCOME, CREATE, IMPORT, ADDRESS, NETWORK, DEVICES, BENCH, PHRASE, QUIZ, RESTORE, FLOORS = range(11)
MODE_TEXT = {"idle": "Idle: never mine", "mining": "Mining: always", "auto": "Auto: only while I am away"}


class WelcomePage(_Page):
    def __init__(self):
        super().__init__("Welcome to Knowledge Miner",
                         "Your GPUs earn NTK by rendering data and training models. First, a wallet to be paid in.")
        box = QVBoxLayout(self)
        self.create_radio = QRadioButton("Create a new wallet")
        self.restore_radio = QRadioButton("Restore a wallet from its recovery phrase (12 to 24 words)")
        self.import_radio = QRadioButton("Import a wallet I already have (keystore file or private key)")
        self.create_radio.setChecked(True)
        group = QButtonGroup(self)
        for b in (self.create_radio, self.restore_radio, self.import_radio):
            group.addButton(b)
        note = QLabel("The keys stay on this computer, encrypted with your password. Nobody else can open them. "
                      "A new wallet comes with a recovery phrase: with it the wallet can be restored anywhere.")
        note.setWordWrap(True)
        muted(note)
        box.addWidget(self.create_radio)
        box.addWidget(self.restore_radio)
        box.addWidget(self.import_radio)
        box.addSpacing(12)
        box.addWidget(note)
        box.addStretch(1)

    def nextId(self) -> int:
        return CREATE if self.create_radio.isChecked() else RESTORE if self.restore_radio.isChecked() else IMPORT


class CreatePage(_Page):
    def __init__(self, flow: FirstRun, runner: Background):
        super().__init__("Create your wallet", "Choose the password that encrypts your key on this computer.")
        self.flow, self.runner = flow, runner
        form = QFormLayout(self)
        self.password = password_edit("At least 8 characters; a few words make a strong one")
        self.again = password_edit("The same again")
        self.field_row(form, "Password", self.password, "password")
        self.strength = QProgressBar()
        self.strength.setRange(0, 4)
        self.strength.setTextVisible(False)
        self.strength.setFixedHeight(6)
        self.strength_hint = QLabel()
        muted(self.strength_hint)
        col = QVBoxLayout()
        col.addWidget(self.strength)
        col.addWidget(self.strength_hint)
        form.addRow("", col)
        self.field_row(form, "Repeat", self.again, "again")
        self.remember = QCheckBox("Remember the password in the OS keyring")
        self.remember.setEnabled(False)  # until the runner says a keyring exists (probing can be slow)
        form.addRow("", self.remember)
        form.addRow("", self.busy)
        form.addRow("", self.general_error)
        self.password.textChanged.connect(self._strength)
        self._strength("")
        self.setCommitPage(True)
        self.setButtonText(QWizard.WizardButton.CommitButton, "Create")

    def _strength(self, text: str) -> None:
        score, hint = password_strength(text)
        self.strength.setValue(score)
        color = ["#d64545", "#d64545", "#e0a030", "#2e9e5b", "#2e9e5b"][score]
        self.strength.setStyleSheet(f"QProgressBar::chunk {{ background: {color}; }}")
        self.strength_hint.setText(hint)

    def background(self):
        pw, again, remember = self.password.text(), self.again.text(), self.remember.isChecked()

        check_new_password(pw, again)  # quick checks here, at the fields
        return self.runner, lambda: self.flow.create(pw, again, remember=remember), "Encrypting your new key…"

    def nextId(self) -> int:
        return PHRASE


class ImportPage(_Page):
    def __init__(self, flow: FirstRun, runner: Background):
        super().__init__("Import your wallet", "From a keystore file (with its password) or a private key.")
        self.flow, self.runner = flow, runner
        box = QVBoxLayout(self)
        self.file_radio = QRadioButton("Keystore file (JSON, Web3 Secret Storage)")
        self.key_radio = QRadioButton("Private key (64 hex digits)")
        self.file_radio.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.file_radio)
        group.addButton(self.key_radio)
        box.addWidget(self.file_radio)
        self.file_box = QWidget()
        ff = QFormLayout(self.file_box)
        row = QHBoxLayout()
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("Path of the keystore file")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.file_edit, 1)
        row.addWidget(browse)
        holder = QWidget()
        holder.setLayout(row)
        row.setContentsMargins(0, 0, 0, 0)
        self.field_row(ff, "File", holder, "file")
        self.file_password = password_edit("The password of that file")
        self.field_row(ff, "Password", self.file_password, "file_password")
        box.addWidget(self.file_box)
        box.addWidget(self.key_radio)
        self.key_box = QWidget()
        kf = QFormLayout(self.key_box)
        self.key_edit = password_edit("0x…")
        self.key_edit.setFont(mono_font())
        self.field_row(kf, "Private key", self.key_edit, "key")
        self.password = password_edit("A new password for it, at least 8 characters")
        self.again = password_edit("The same again")
        self.field_row(kf, "Password", self.password, "password")
        self.field_row(kf, "Repeat", self.again, "again")
        box.addWidget(self.key_box)
        self.remember = QCheckBox("Remember the password in the OS keyring")
        self.remember.setEnabled(False)  # until the runner says a keyring exists (probing can be slow)
        box.addWidget(self.remember)
        box.addWidget(self.busy)
        box.addWidget(self.general_error)
        box.addStretch(1)
        self.file_radio.toggled.connect(self._mode)
        self._mode()
        self.setCommitPage(True)
        self.setButtonText(QWizard.WizardButton.CommitButton, "Import")

    def _mode(self) -> None:
        self.file_box.setEnabled(self.file_radio.isChecked())
        self.key_box.setEnabled(self.key_radio.isChecked())

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Keystore file", str(Path.home()), "Keystore (*.json);;All files (*)")
        if path:
            self.file_edit.setText(path)

    def background(self):
        flow, remember = self.flow, self.remember.isChecked()
        if self.file_radio.isChecked():
            path, pw = self.file_edit.text().strip(), self.file_password.text()
            if not path:
                raise FieldError("file", "Choose a keystore file.")
            return self.runner, lambda: flow.import_keystore(path, pw, remember=remember), "Opening the keystore…"
        key, pw, again = self.key_edit.text(), self.password.text(), self.again.text()
        return self.runner, lambda: flow.import_private_key(key, pw, again, remember=remember), "Encrypting the key…"

    def nextId(self) -> int:
        return ADDRESS


class AddressPage(_Page):
    def __init__(self, flow: FirstRun, runner: Background):
        super().__init__("Your wallet is ready", "This is your address: anyone can send NTK or ETH to it.")
        self.flow, self.runner = flow, runner
        grid = QGridLayout(self)
        self.qr = QLabel()
        self.qr.setFixedSize(150, 150)
        grid.addWidget(self.qr, 0, 0, 4, 1, Qt.AlignmentFlag.AlignTop)
        self.address = QLabel()
        self.address.setFont(mono_font())
        self.address.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        grid.addWidget(self.address, 0, 1)
        note = QLabel("A second backup, beside the recovery phrase: a copy of the encrypted keystore file "
                      "somewhere safe (a USB stick, another disk). With that file and your password the wallet "
                      "can be restored anywhere.")
        note.setWordWrap(True)
        grid.addWidget(note, 1, 1)
        self.backup_button = QPushButton("Save a backup of the keystore file…")
        self.backup_button.clicked.connect(self._backup_clicked)
        row = QHBoxLayout()
        row.addWidget(self.backup_button)
        row.addStretch(1)
        grid.addLayout(row, 2, 1)
        self.backup_status = QLabel()
        self.backup_status.setWordWrap(True)
        self.fields_["backup"] = error_label()
        col = QVBoxLayout()
        col.addWidget(self.backup_status)
        col.addWidget(self.fields_["backup"])
        col.addStretch(1)
        grid.addLayout(col, 3, 1)
        grid.setColumnStretch(1, 1)

    def initializePage(self) -> None:
        a = self.flow.address or ""
        self.address.setText(a)
        if a:
            self.qr.setPixmap(qr_pixmap(a, 150))

    def _backup_clicked(self) -> None:
        name = f"kminer-wallet-{(self.flow.address or '')[:10]}.json"
        path, _ = QFileDialog.getSaveFileName(self, "Save the keystore backup", str(Path.home() / name), "Keystore (*.json)")
        if path:
            self.save_backup(Path(path))

    def save_backup(self, path: Path) -> None:
        show_error(self.fields_["backup"], None)
        self.runner.submit(lambda: self.flow.backup(path),
                           on_done=lambda p: self.backup_status.setText(f"Saved to {p}. Keep your password too."),
                           on_error=self.show_field_error)


class NetworkPage(_Page):
    def __init__(self, flow: FirstRun, chain_runner: Background):
        super().__init__("Choose the network", "Where NTK lives and where the market you mine for runs.")
        self.flow, self.runner = flow, chain_runner
        form = QFormLayout(self)
        self.where = QLabel(flow.where_jobs_come_from())
        self.where.setWordWrap(True)
        form.addRow(self.where)
        self.combo = QComboBox()
        options = flow.network_options()
        self._choices = {c.name: c for c in options}
        first_without = next((i for i, c in enumerate(options) if not c.market.has_market), None)
        for i, c in enumerate(options):
            if i == first_without and i:
                self.combo.insertSeparator(self.combo.count())
            self.combo.addItem(c.label, c.name)
            if not c.market.has_market:
                self.combo.setItemData(self.combo.count() - 1, c.market.jobs_text, Qt.ItemDataRole.ToolTipRole)
        self.field_row(form, "Network", self.combo, "network")
        self.rpc_edit = QLineEdit()
        self.rpc_edit.setPlaceholderText("https://… your node or a provider's endpoint")
        self.field_row(form, "RPC URL", self.rpc_edit, "rpc_url")
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        muted(self.hint)
        form.addRow("", self.hint)
        form.addRow("", self.busy)
        form.addRow("", self.general_error)
        self.combo.currentIndexChanged.connect(self._changed)
        i = self.combo.findData(flow.ctx.settings.wallet.network)
        self.combo.setCurrentIndex(max(i, 0))
        self._changed()

    def _changed(self) -> None:
        name = self.combo.currentData()
        if name not in self._choices:  # the separator
            return
        c = self._choices[name]
        self.clear_errors()
        self.rpc_edit.setEnabled(not c.embedded)
        self.rpc_edit.setText(c.rpc_url or "")
        m = c.market
        if c.embedded:
            text = ("Runs inside the app: nothing to install. Your account gets test NTK and ETH to try everything. "
                    + m.jobs_text)
        else:
            text = f"The app connects to this JSON-RPC endpoint; it must serve the chain id shown. {m.jobs_text}"
            if m.has_market:
                text += f" Market: {m.market_text}."
        self.hint.setText(text)

    def background(self):
        name, url = self.combo.currentData(), self.rpc_edit.text().strip() or None
        text = ("Setting up the local chain (deploying the market, funding your account)…"
                if self._choices[name].embedded else f"Connecting to {name}…")
        return self.runner, lambda: self.flow.choose_network(name, url), text

    def succeeded(self, chain_id) -> None:
        self.chain_id = chain_id


class DevicesPage(_Page):
    def __init__(self, flow: FirstRun, devices, runner: Background):
        super().__init__("Choose what mines", "Each device can stay idle, mine always, or mine only while you are away.")
        self.flow, self.devices, self.runner = flow, devices, runner
        form = QFormLayout(self)
        self.combos: dict[str, QComboBox] = {}
        self.suggestion = suggest_modes(devices)
        for st in devices.states():
            combo = QComboBox()
            for mode, text in MODE_TEXT.items():
                combo.addItem(text, mode)
            combo.setCurrentIndex(combo.findData(self.suggestion.modes.get(st.info.id, st.mode)))
            self.combos[st.info.id] = combo
            self.field_row(form, f"{st.info.name} ({st.info.id})", combo, f"mode:{st.info.id}")
        notes = [t for t in (self.suggestion.note, devices.message) if t]
        if notes:
            note = QLabel("\n".join(notes))
            note.setWordWrap(True)
            muted(note)
            form.addRow("", note)
        form.addRow("", self.busy)
        form.addRow("", self.general_error)

    def modes(self) -> dict[str, str]:
        return {d: c.currentData() for d, c in self.combos.items()}

    def background(self):
        modes = self.modes()
        return self.runner, lambda: FirstRun.set_modes(self.devices, modes), "Saving…"


class _Progress(QObject):
    """Carries benchmark progress from the worker thread to the GUI thread."""

    progressed = Signal(object)


class BenchPage(_Page):
    def __init__(self, flow: FirstRun, devices, runner: Background):
        super().__init__("Benchmark your devices",
                         "A short test of each device (about 10 s) so jobs are priced on what it really does.")
        self.flow, self.devices, self.runner = flow, devices, runner
        self.run: BenchmarkRun | None = None
        self.outcomes: list[BenchOutcome] = []
        box = QVBoxLayout(self)
        self.checks: dict[str, QCheckBox] = {}
        self.results: dict[str, QLabel] = {}
        grid = QGridLayout()
        for i, st in enumerate(devices.states()):
            cb = QCheckBox(f"{st.info.name} ({st.info.id})")
            self.checks[st.info.id] = cb
            res = QLabel()
            muted(res)
            self.results[st.info.id] = res
            grid.addWidget(cb, i, 0)
            grid.addWidget(res, i, 1)
        grid.setColumnStretch(1, 1)
        box.addLayout(grid)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        row = QHBoxLayout()
        self.start_button = QPushButton("Run benchmark")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.progress, 1)
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        box.addLayout(row)
        self.status = QLabel("Optional: press Next to skip it (prices then assume a typical speed for the device).")
        self.status.setWordWrap(True)
        box.addWidget(self.status)
        box.addWidget(self.general_error)
        box.addStretch(1)
        self._bridge = _Progress()
        self._bridge.progressed.connect(self._progressed)

    def initializePage(self) -> None:
        modes = self.wizard().page(DEVICES).modes() if self.wizard() else {}
        for d, cb in self.checks.items():
            cb.setChecked(modes.get(d, "idle") != "idle")

    def selected(self) -> list[str]:
        return [d for d, cb in self.checks.items() if cb.isChecked()]

    def start(self) -> None:
        ids = self.selected()
        if not ids:
            show_error(self.general_error, "Tick at least one device to benchmark.")
            return
        show_error(self.general_error, None)
        self.run = run = BenchmarkRun(self.flow.ctx, self.devices, ids)
        self.progress.setValue(0)
        for d in ids:
            self.results[d].setText("waiting…")
        self._set_running(True)
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"Benchmarking {len(ids)} device{'s' if len(ids) > 1 else ''}…")
        emit = self._bridge.progressed.emit
        self.runner.submit(lambda: run.run(emit), on_done=self._finished, on_error=self._stopped)

    def cancel(self) -> None:
        if self.run is not None:
            self.run.cancel()
            self.status.setText("Cancelling…")

    def _progressed(self, p: BenchProgress) -> None:
        if self.run is None or self.run.cancelled:
            return
        self.progress.setValue(int(p.fraction * 1000))
        self.results[p.device_id].setText(f"running… {p.elapsed_s:.0f} s")
        self.status.setText(f"Benchmarking {p.device_id} (device {p.index + 1} of {p.total})…")

    def _finished(self, outcomes: list[BenchOutcome]) -> None:
        self._end()
        self.outcomes = outcomes
        self.progress.setValue(1000)
        for o in outcomes:
            self.results[o.device_id].setText(o.summary)
            self.results[o.device_id].setToolTip("\n".join(o.warnings))
        warnings = [f"{o.device_id}: {w}" for o in outcomes for w in o.warnings]
        self.status.setText("Done: the results are stored and used to price jobs."
                            + ("\n" + "\n".join(warnings) if warnings else ""))

    def _stopped(self, e: BaseException) -> None:
        self._end()
        self.progress.setValue(0)
        for d in self.selected():
            if self.results[d].text().startswith(("waiting", "running")):
                self.results[d].setText("")
        if isinstance(e, Cancelled):
            self.status.setText("Cancelled. You can run it again, or press Next to skip it.")
        else:
            self.status.setText("")
            show_error(self.general_error, f"The benchmark failed: {e}")

    def _end(self) -> None:
        self._set_running(False)
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def nextId(self) -> int:
        return FLOORS


class FirstRunWizard(QWizard):
    """Shown when app.first_run.needs_first_run(ctx); accepted when the user finishes."""

    def __init__(self, *, flow: FirstRun, devices, runner: Background, chain_runner: Background, parent=None):
        super().__init__(parent)
        self.flow = flow
        self.setWindowTitle("Knowledge Miner — first start")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.welcome = WelcomePage()
        self.create_page = CreatePage(flow, runner)
        self.import_page = ImportPage(flow, runner)
        self.address_page = AddressPage(flow, runner)
        self.network_page = NetworkPage(flow, chain_runner)
        self.devices_page = DevicesPage(flow, devices, runner)
        self.bench_page = BenchPage(flow, devices, runner)
        self.phrase_page = PhrasePage(flow)
        self.quiz_page = QuizPage(flow)
        self.restore_page = RestorePage(flow, runner)
        self.floors_page = FloorsPage(flow, devices, runner, chain_runner)
        self.phrase_page.next_id, self.quiz_page.next_id, self.restore_page.next_id = QUIZ, ADDRESS, ADDRESS
        self.floors_page.next_id = -1
        for pid, page in ((WELCOME, self.welcome), (CREATE, self.create_page), (IMPORT, self.import_page),
                          (ADDRESS, self.address_page), (NETWORK, self.network_page), (DEVICES, self.devices_page),
                          (BENCH, self.bench_page), (PHRASE, self.phrase_page), (QUIZ, self.quiz_page),
                          (RESTORE, self.restore_page), (FLOORS, self.floors_page)):
            self.setPage(pid, page)
        self.setStartId(WELCOME)
        runner.submit(flow.keyring.available, on_done=self._keyring_known)
        self.resize(680, 520)

    def _keyring_known(self, available: bool) -> None:
        for page in (self.create_page, self.import_page, self.restore_page):
            page.remember.setEnabled(available)
            page.remember.setToolTip("" if available else "No OS keyring is available on this system.")

    def done(self, result: int) -> None:
        accepting = result == QWizard.DialogCode.Accepted
        # Finish first runs the last page's work in the background (QWizard.done validates the
        # page and stays open meanwhile; that work may need the password): hand over only on close
        super().done(result)
        if accepting and self.isVisible():  # still open: the page's work is running, or failed
            return
        if self.bench_page.run is not None:
            self.bench_page.run.cancel()  # closing the wizard never leaves a benchmark child behind
        # finished: the app unlocks the wallet with it once (see cli.gui); otherwise dropped
        self.handover_password = self.flow.take_password() if accepting else None
        self.flow.forget_password()
