"""The Wallet view's dialogs (unlock, confirm a send) and the small helpers the wallet and
first-run pages share: errors shown at a field, muted text, exact balances, monospace.

The dialogs never call the chain themselves: `on_submit` hands the input to the view, which
runs it on the chain runner and calls `failed(message)` or closes the dialog.
"""

from __future__ import annotations

from app.amounts import format_amount
from app.account import SendQuote
from ui.qt import (
    QCheckBox, QDialog, QDialogButtonBox, QFont, QFormLayout, QLabel, QLineEdit, QPalette, Qt, QVBoxLayout,
)

ERROR_STYLE = "color: #d64545;"


def error_label(*, keep_space: bool = False) -> QLabel:
    """A red one-line message under a field; hidden while empty. keep_space: its line stays
    reserved while hidden, so an error that appears never moves the fields below it."""
    lab = QLabel()
    lab.setStyleSheet(ERROR_STYLE)
    lab.setWordWrap(True)
    if keep_space:
        policy = lab.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        lab.setSizePolicy(policy)
        lab.setMinimumHeight(lab.fontMetrics().height())
    lab.setVisible(False)
    return lab


def show_error(label: QLabel, text: str | None) -> None:
    label.setText(text or "")
    label.setVisible(bool(text))


def muted(label: QLabel) -> QLabel:
    """Secondary text in the palette's placeholder colour (readable in light and dark themes)."""
    label.setStyleSheet("")
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


ETH_DECIMALS = 8
"""ETH shown to 8 decimals (0.00000001 ETH = 10 gwei): fees and gas balances read, the exact
amount is in the tooltip."""


def eth_short(wei: int | None) -> str:
    return format_amount(wei, max_decimals=ETH_DECIMALS)


def balance_html(wei: int | None, max_decimals: int | None = None) -> str:
    """The amount (exact, or cut to `max_decimals`), its fraction smaller so the whole units read at a glance."""
    whole, _, frac = format_amount(wei, max_decimals=max_decimals).partition(".")
    return whole + (f"<span style='font-size:small; font-weight:normal'>.{frac}</span>" if frac else "")


def mono_font() -> QFont:
    f = QFont("monospace")
    f.setStyleHint(QFont.StyleHint.Monospace)
    return f


class PasswordDialog(QDialog):
    """Asks the wallet password; `submit(password, remember)` runs it on the chain runner and the
    dialog closes only on success (a wrong password shows at the field, nothing changes)."""

    def __init__(self, *, title: str, text: str, keyring: bool, on_submit, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self._on_submit = on_submit
        box = QVBoxLayout(self)
        intro = QLabel(text)
        intro.setWordWrap(True)
        box.addWidget(intro)
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("Wallet password")
        box.addWidget(self.password)
        self.error = error_label(keep_space=True)
        box.addWidget(self.error)
        self.remember = QCheckBox("Remember it in the OS keyring")
        self.remember.setEnabled(keyring)
        if not keyring:
            self.remember.setToolTip("No OS keyring is available on this system.")
        box.addWidget(self.remember)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Unlock")
        self.buttons.accepted.connect(self._submit)
        self.buttons.rejected.connect(self.reject)
        box.addWidget(self.buttons)
        self.setMinimumWidth(380)

    def _submit(self) -> None:
        self.buttons.setEnabled(False)
        self._on_submit(self.password.text(), self.remember.isChecked())

    def failed(self, message: str) -> None:
        self.buttons.setEnabled(True)
        show_error(self.error, message)
        self.adjustSize()   # grow for the error line: the wrapped text above is never squeezed
        self.password.selectAll()
        self.password.setFocus()


class LockedActionDialog(QDialog):
    """A confirmation that asks the wallet password while the wallet is locked: OK hands
    `on_submit(password or None)` to the view, which runs it and calls `failed(message)` or
    closes the dialog. Subclasses lay out what the action does, then `add_password_and_buttons`."""

    def __init__(self, *, title: str, locked: bool, on_submit, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self._on_submit = on_submit
        self._locked = locked
        self.box = QVBoxLayout(self)

    def add_password_and_buttons(self, ok_text: str, locked_note: str | None = None,
                                 placeholder: str = "Wallet password") -> None:
        if self._locked and locked_note:
            note = QLabel(locked_note)
            note.setWordWrap(True)
            self.box.addWidget(note)
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText(placeholder)
        self.password.setVisible(self._locked)
        self.box.addWidget(self.password)
        self.error = error_label(keep_space=True)
        self.box.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
        self.buttons.accepted.connect(self._submit)
        self.buttons.rejected.connect(self.reject)
        self.box.addWidget(self.buttons)
        self.setMinimumWidth(460)

    def _submit(self) -> None:
        self.buttons.setEnabled(False)
        self._on_submit(self.password.text() if self._locked else None)

    def failed(self, message: str) -> None:
        self.buttons.setEnabled(True)
        show_error(self.error, message)


class ConfirmSendDialog(LockedActionDialog):
    """Shows what will be sent, the fee and the total; asks the password when locked."""

    def __init__(self, quote: SendQuote, *, locked: bool, on_submit, parent=None):
        super().__init__(title="Confirm sending", locked=locked, on_submit=on_submit, parent=parent)
        self.quote = quote
        form = QFormLayout()
        amount = QLabel(f"<b>{format_amount(quote.amount_wei)} {quote.asset}</b>")
        form.addRow("Amount", amount)
        to = QLabel(quote.to)
        to.setFont(mono_font())
        to.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("To", to)
        self.fee = QLabel(f"≈ {eth_short(quote.fee_wei)} ETH  (at most {eth_short(quote.max_fee_wei)} ETH)")
        form.addRow("Network fee", self.fee)
        if quote.asset == "ETH":
            form.addRow("Total", QLabel(f"≈ {eth_short(quote.amount_wei + quote.fee_wei)} ETH"))
        self.box.addLayout(form)
        self.add_password_and_buttons("Send", "The wallet is locked: its password signs this transaction.")

    def failed(self, message: str) -> None:
        super().failed(message)
        self.adjustSize()
