"""The Wallet page's "Mining key" tab: the signing key that lets the rig mine after a reboot
with the main wallet locked (app.account.mining_key). Shows the key, where it is kept (and the
risk of a file), its gas and stakes; creates, rotates and revokes it after a confirmation that
says what moves, asking the wallet password when the wallet is locked.

Every call runs on the chain runner; `changed` is emitted after a create / rotate / revoke so
the market session opens the miner with the new signer.
"""

from __future__ import annotations

from app.account import FILE_RISK, Locked, MiningKeyStatus
from app.amounts import FieldError, eth_text, ntk_text
from ui.background import Background
from ui.qt import QHBoxLayout, QLabel, QPushButton, Qt, QVBoxLayout, QWidget, Signal
from ui.wallet_dialogs import LockedActionDialog, mono_font, muted

INTRO = ("A mining key signs the miner's claims and results, so this rig keeps earning after a restart while your "
         "wallet stays locked. It holds only gas ETH; what it earns is paid to your wallet's address.")
CONFIRM = {
    "create": ("Create a mining key", "Create",
               "A new key is made and kept on this computer (in the OS keyring where there is one, otherwise in a "
               "file only your user can read). Your wallet sends it ETH for fees. From then on the miner signs with "
               "it, with your wallet locked."),
    "rotate": ("Rotate the mining key", "Rotate",
               "A new key replaces the current one for new jobs. The ETH left on the old key is sent back to your "
               "wallet and its stake starts unlocking. Let jobs it has claimed finish first: a claimed job that is "
               "not delivered costs its stake."),
    "revoke": ("Revoke the mining key", "Revoke",
               "The key is deleted for good after its ETH is sent back to your wallet and its stake starts "
               "unlocking. The miner then signs only while your wallet is unlocked."),
}


class KeyActionDialog(LockedActionDialog):
    """Says what an action moves; asks the wallet password when the wallet is locked."""

    def __init__(self, action: str, *, locked: bool, on_submit, parent=None):
        title, ok, text = CONFIRM[action]
        super().__init__(title=title, locked=locked, on_submit=on_submit, parent=parent)
        self.action = action
        intro = QLabel(text)
        intro.setWordWrap(True)
        self.box.addWidget(intro)
        self.add_password_and_buttons(ok, placeholder="Wallet password (this action only)")


class MiningKeyPanel(QWidget):
    changed = Signal()

    def __init__(self, *, session, chain_runner: Background, parent=None):
        super().__init__(parent)
        self._session = session
        self._runner = chain_runner
        self.status: MiningKeyStatus | None = None
        self.unlocked = False
        self.dialog: KeyActionDialog | None = None
        self._busy = False
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        self.state = QLabel("Loading…")
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.address = QLabel()
        self.address.setFont(mono_font())
        self.address.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.risk = QLabel()
        self.risk.setWordWrap(True)
        muted(self.risk)
        self.result = QLabel()
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        for action, text in (("create", "Create mining key…"), ("rotate", "Rotate…"), ("revoke", "Revoke…")):
            b = QPushButton(text)
            b.setEnabled(False)
            b.clicked.connect(lambda _=False, a=action: self.ask(a))
            self.buttons[action] = b
            row.addWidget(b)
        row.addStretch(1)
        self.stake_button = QPushButton("Stake…")  # shown by the Wallet view where the app can stake
        self.stake_button.setToolTip("The key's stake on the order market: stake more, or unstake")
        self.stake_button.setVisible(False)
        row.addWidget(self.stake_button)
        box = QVBoxLayout(self)
        for w in (intro, self.state, self.address, self.risk):
            box.addWidget(w)
        box.addLayout(row)
        box.addWidget(self.result)
        box.addStretch(1)

    def refresh(self) -> None:
        self._runner.submit(self._session.mining_key_status, on_done=self._show, on_error=self._failed)

    def _failed(self, err: BaseException) -> None:
        self.state.setText(f"Mining key status unavailable: {err}")

    def _show(self, st: MiningKeyStatus) -> None:
        self.status = st
        a = st.active
        if a is None:
            self.state.setText("<b>No mining key.</b> The miner signs with your wallet, so it stops whenever the "
                               "wallet is locked (after every restart).")
            self.address.setText("")
            self.risk.setText("")
        else:
            where = "a file in the app's data folder" if a.storage == "file" else "the OS keyring"
            gas = eth_text(st.eth_wei, 6) if st.eth_wei is not None else f"unknown ({st.offline})"
            low = " — low: rotate it to get a funded key" if st.low_gas else ""
            stakes = "; ".join(f"stake {ntk_text(s.active_wei, 4)} active, {ntk_text(s.withdrawing_wei, 4)} unlocking"
                               for s in st.stakes if s.address == a.address)
            self.state.setText(f"<b>Mining key active</b>, kept in {where}. Gas: {gas}{low}."
                               + (f" {stakes}." if stakes else "") + f" Paid to {a.payout[:8]}…{a.payout[-6:]}.")
            self.address.setText(a.address)
            self.risk.setText(FILE_RISK if a.storage == "file" else st.storage_note)
        for lab in (self.address, self.risk):
            lab.setVisible(bool(lab.text()))
        self._enable()

    def _enable(self) -> None:
        has = self.status is not None and self.status.active is not None
        self.buttons["create"].setEnabled(not self._busy and self.status is not None and not has)
        self.buttons["rotate"].setEnabled(not self._busy and has)
        self.buttons["revoke"].setEnabled(not self._busy and has)

    def ask(self, action: str) -> None:
        self.dialog = KeyActionDialog(action, locked=not self.unlocked, parent=self,
                                      on_submit=lambda pw: self._run(action, pw))
        self.dialog.open()

    def _run(self, action: str, password: str | None) -> None:
        dlg, s = self.dialog, self._session
        self._busy = True
        self._enable()

        def done(change) -> None:
            self._busy = False
            dlg.accept()
            lines = [*change.done, *(f"Still to do: {x}" for x in change.left)]
            self.result.setText("\n".join(lines))
            self.changed.emit()
            self.refresh()

        def failed(e: BaseException) -> None:
            self._busy = False
            self._enable()
            dlg.failed("The wallet is locked: enter its password." if isinstance(e, Locked) else
                       str(e) if isinstance(e, FieldError) else f"{type(e).__name__}: {e}" if not str(e) else str(e))

        self._runner.submit(lambda: s.mining_key_change(action, password), on_done=done, on_error=failed)
