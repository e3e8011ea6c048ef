"""The Stake dialog: the rig's stake on the order market, the wallet's NTK, what covers a
typical order's claims, an amount to stake (or unstake), the cost before confirming, and the
transaction itself, all over app.stake.StakeActions.

Every chain call (reading the stake, pricing, approve + stake, unstake, withdraw) runs on the
chain runner given to the constructor; callbacks come back on the GUI thread. A bad amount is
one red line under the field and nothing is sent. `changed(StakeStatus)` after a transaction
(the window refreshes its stake line).
"""

from __future__ import annotations

from app.amounts import FieldError, ntk_text
from app.stake import StakeStatus, check_stake_amount, check_unstake_amount, delay_text
from ui.background import Background
from ui.cost_dialog import ConfirmCostDialog
from ui.qt import (
    QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, Qt, QTimer, QVBoxLayout, Signal,
)
from ui.wallet_dialogs import ERROR_STYLE, error_label, eth_short, muted, show_error

OK_STYLE = "color: #2e9e5b;"


def short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}" if len(address) > 12 else address


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    line = text[0][:300] if text else type(e).__name__
    return line[:1].upper() + line[1:]


class StakeDialog(QDialog):
    changed = Signal(object)

    def __init__(self, *, actions, runner: Background, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Order-market stake")
        self.actions, self._runner = actions, runner
        self.status: StakeStatus | None = None
        self.confirm_dialog: ConfirmCostDialog | None = None
        self.busy = False

        intro = QLabel("Buyers on the order market grant your rig claims only against a stake of NTK. It stays "
                       "yours: it is taken only if the rig claims a shard and never delivers it.")
        intro.setWordWrap(True)
        muted(intro)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.key_label = QLabel("…")
        self.staked_label = QLabel("Reading the stake…")
        self.unbonding_label = QLabel()
        self.balance_label = QLabel("…")
        self.need_label = QLabel("…")
        for lab in (self.key_label, self.staked_label, self.unbonding_label, self.balance_label, self.need_label):
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Mining key:", self.key_label)
        form.addRow("Staked:", self.staked_label)
        form.addRow("Unbonding:", self.unbonding_label)
        form.addRow("Your wallet:", self.balance_label)
        form.addRow("Needed:", self.need_label)

        self.amount_edit = QLineEdit()
        self.amount_edit.setPlaceholderText("NTK")
        self.amount_edit.textChanged.connect(lambda _t: show_error(self.error_label, None))
        self.amount_edit.returnPressed.connect(self.request_stake)
        self.max_button = QPushButton("Max")
        self.max_button.setToolTip("Your whole NTK balance")
        self.max_button.clicked.connect(self._fill_max)
        row = QHBoxLayout()
        row.addWidget(self.amount_edit, 1)
        row.addWidget(QLabel("NTK"))
        row.addWidget(self.max_button)
        form.addRow("Amount:", row)
        self.error_label = error_label(keep_space=True)
        form.addRow("", self.error_label)

        self.delay_note = QLabel()
        self.delay_note.setWordWrap(True)
        muted(self.delay_note)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setVisible(False)

        self.stake_button = QPushButton("Stake…")
        self.stake_button.setDefault(True)
        self.stake_button.clicked.connect(self.request_stake)
        self.unstake_button = QPushButton("Unstake…")
        self.unstake_button.setToolTip("Start taking the amount back: it unbonds for the order market's delay")
        self.unstake_button.clicked.connect(self.request_unstake)
        self.withdraw_button = QPushButton("Withdraw…")
        self.withdraw_button.setToolTip("Take the unbonded stake back to your wallet")
        self.withdraw_button.clicked.connect(self.request_withdraw)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.addButton(self.stake_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.unstake_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.withdraw_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.rejected.connect(self.reject)

        box = QVBoxLayout(self)
        box.addWidget(intro)
        box.addLayout(form)
        box.addWidget(self.delay_note)
        box.addWidget(self.message)
        box.addStretch(1)
        box.addWidget(self.buttons)
        self._set_enabled(False)
        self.setMinimumWidth(600)
        self.resize(600, self.sizeHint().height())
        self.refresh()

    # -- reading --------------------------------------------------------------------------
    def refresh(self) -> None:
        self._runner.submit(self.actions.status, on_done=self.show_status, on_error=self._status_failed)

    def _status_failed(self, e: BaseException) -> None:
        self.staked_label.setText("–")
        self._say(f"The stake cannot be read: {_one_line(e)}", error=True)
        self._set_enabled(False)

    def show_status(self, st: StakeStatus) -> None:
        self.status = st
        self.key_label.setText(f"{short(st.miner)}  <span style='color: gray'>paid to {short(st.payout)}</span>")
        self.key_label.setToolTip(f"mining key {st.miner}\npayout {st.payout}")
        if st.problem:
            self.staked_label.setText(f"<span style='{ERROR_STYLE}'>{ntk_text(st.active_wei, 6)}: buyers grant "
                                      "this rig no claims</span>")
        else:
            ok = OK_STYLE if not st.short_wei else ""
            self.staked_label.setText(f"<span style='{ok}'>{ntk_text(st.active_wei, 6)}</span> — covers "
                                      f"{st.claims_covered} claim(s) at once of a typical order")
        if st.withdrawing_wei:
            self.unbonding_label.setText(
                f"{ntk_text(st.withdrawing_wei, 6)}, " + ("ready to withdraw" if st.withdrawable else
                                                         f"can be withdrawn in {delay_text(st.unlock_at - st.now)}"))
        else:
            self.unbonding_label.setText("nothing")
        self.balance_label.setText(f"{ntk_text(st.balance_wei, 6)}  <span style='color: gray'>and "
                                   f"{eth_short(st.eth_wei)} {st.native_symbol} for fees</span>")
        self.balance_label.setToolTip(f"{st.payout} on {st.network}")
        more = (f"<b>stake {ntk_text(st.short_wei, 6)} more</b>" if st.short_wei
                else f"<span style='{OK_STYLE}'>covered</span>")
        self.need_label.setText(f"{ntk_text(st.need_wei, 6)} — {more}")
        self.need_label.setToolTip(f"What the claims of a typical order take at once: 4 shards of 10 NTK, "
                                   f"{ntk_text(st.claim_wei, 6)} staked per claim")
        delay = delay_text(st.unbond_delay_s)
        self.delay_note.setText(f"Needed is what a typical order's claims take at once: 4 shards of 10 NTK, "
                                f"{ntk_text(st.claim_wei, 6)} staked per claim; buyers refuse claims the stake does not "
                                f"cover.\nUnstaking takes {delay}: the amount stops covering claims at once and can be "
                                f"withdrawn {delay} later (the order market's unbonding delay); it can still be slashed "
                                "for claims the rig holds until then.")
        if not self.amount_edit.text().strip() and st.short_wei and st.short_wei <= st.balance_wei:
            self.amount_edit.setText(_plain(st.short_wei))
        self._set_enabled(True)
        if not st.can_pay:
            self._say(f"The rig is paid to {short(st.payout)}: stake from that wallet account.", error=True)
        self._fit()
        QTimer.singleShot(0, self._fit)  # once the wrapped notes have their new height

    def _fit(self) -> None:
        """Grow to the wrapped lines' height (they change with the status)."""
        self.layout().activate()
        want = self.layout().totalHeightForWidth(self.width())
        if self.height() < want:
            self.resize(self.width(), want)

    def _set_enabled(self, on: bool) -> None:
        st = self.status
        on = on and not self.busy and st is not None and st.can_pay
        self.stake_button.setEnabled(on and st.balance_wei > 0)
        self.unstake_button.setEnabled(on and st.active_wei > 0)
        self.withdraw_button.setEnabled(on and st.withdrawable)
        self.withdraw_button.setVisible(st is not None and st.withdrawing_wei > 0)
        self.amount_edit.setEnabled(on)
        self.max_button.setEnabled(on)

    def _fill_max(self) -> None:
        if self.status is not None:
            self.amount_edit.setText(_plain(self.status.balance_wei))
            show_error(self.error_label, None)

    def _say(self, text: str | None, *, error: bool = False) -> None:
        self.message.setStyleSheet(ERROR_STYLE if error else OK_STYLE)
        self.message.setText(text or "")
        self.message.setVisible(bool(text))
        if text:
            self._fit()

    # -- acting ---------------------------------------------------------------------------
    def request_stake(self) -> None:
        self._request("stake", check_stake_amount)

    def request_unstake(self) -> None:
        self._request("unstake", check_unstake_amount)

    def request_withdraw(self) -> None:
        self._request("withdraw", None)

    def _request(self, action: str, check) -> None:
        """Check the amount here (one line, nothing sent), price it on the chain runner, confirm."""
        st = self.status
        if st is None or self.busy:
            return
        amount = 0
        if check is not None:
            try:
                amount = check(self.amount_edit.text(), st)
            except FieldError as e:
                show_error(self.error_label, str(e))
                self.amount_edit.setFocus()
                return
        show_error(self.error_label, None)
        self._say(None)
        self.busy = True
        self._set_enabled(False)
        acts = self.actions
        self._runner.submit(lambda: acts.cost(action, amount, st),
                            on_done=lambda cost: self._confirm(action, amount, cost), on_error=self._failed)

    def _confirm(self, action: str, amount: int, cost) -> None:
        ok = {"stake": f"Stake {ntk_text(amount, 6)}", "unstake": f"Unstake {ntk_text(amount, 6)}",
              "withdraw": "Withdraw"}[action]
        self.confirm_dialog = dlg = ConfirmCostDialog(cost, ok_text=ok, parent=self)
        dlg.accepted.connect(lambda: self._send(action, amount))
        dlg.rejected.connect(self._cancelled)
        dlg.finished.connect(lambda _r: setattr(self, "confirm_dialog", None))
        dlg.open()

    def _cancelled(self) -> None:
        self.busy = False
        self._set_enabled(True)

    def _send(self, action: str, amount: int) -> None:
        acts = self.actions
        do = {"stake": lambda: acts.stake(amount), "unstake": lambda: acts.unstake(amount),
              "withdraw": acts.withdraw}[action]
        self._say({"stake": "Staking…", "unstake": "Starting to unbond…", "withdraw": "Withdrawing…"}[action])
        self._runner.submit(do, on_done=lambda st: self._done(action, amount, st), on_error=self._failed)

    def _done(self, action: str, amount: int, st: StakeStatus) -> None:
        self.busy = False
        self.amount_edit.clear()
        self.show_status(st)
        delay = delay_text(st.unbond_delay_s)
        self._say({"stake": f"Staked {ntk_text(amount, 6)}: {ntk_text(st.active_wei, 6)} now.",
                   "unstake": f"{ntk_text(amount, 6)} unbonding: withdraw it in {delay}.",
                   "withdraw": "The unbonded stake is back in your wallet."}[action])
        self.changed.emit(st)

    def _failed(self, e: BaseException) -> None:
        self.busy = False
        if isinstance(e, FieldError):
            show_error(self.error_label, str(e))
        else:
            self._say(f"Not done: {_one_line(e)}", error=True)
        self._set_enabled(True)
        self.refresh()


def _plain(wei: int) -> str:
    """An amount as the field takes it back ("12.5"), exact, no grouping."""
    from app.amounts import format_amount

    return format_amount(wei, group=False)
