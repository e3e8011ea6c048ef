"""The Wallet view: address with copy and QR code, NTK and ETH balances, send with checks and
a fee preview, history with filters and CSV export, lock/unlock, the network switch.

Every chain or keystore call goes through the ONE "chain" runner given to the constructor
(the embedded chain refuses other threads); callbacks come back on the GUI thread. Amounts
arrive as integer wei and are shown with app.account.session.format_amount (exact, never float).
"""

from __future__ import annotations

import logging

from app.recent_folders import RecentFolders
from app.amounts import FieldError, check_address, check_amount, format_amount
from app.account import (
    HistoryRow, Locked, RpcUnavailable, SendQuote, WalletSession, WalletSnapshot, network_choices,
)
from ui.background import Background
from ui.mining_key_panel import MiningKeyPanel
from ui.qr import qr_pixmap
from ui.qt import (
    QComboBox, QDialog, QFormLayout, QFrame, QGridLayout, QGuiApplication, QHBoxLayout, QLabel, QLineEdit,
    QPushButton, Qt, QTabWidget, QTimer, QToolButton, QVBoxLayout, QWidget, Signal,
)
from ui.wallet_dialogs import (
    ETH_DECIMALS, ConfirmSendDialog, PasswordDialog, balance_html, error_label, eth_short, mono_font, muted, show_error,
)
from ui.wallet_history import WalletHistory
from ui.widgets import page_heading

log = logging.getLogger(__name__)

BANNER_STYLE = "background: rgba(47,128,237,0.12); border-radius: 6px; padding: 8px;"
REFRESH_MS = 10_000


class WalletView(WalletHistory, QWidget):
    """See the module docstring. `snapshotChanged(WalletSnapshot)` after each refresh."""

    snapshotChanged = Signal(object)
    historyChanged = Signal(object)
    stakeRequested = Signal()   # "Stake…" beside the stake: the window opens the Stake dialog

    def __init__(self, *, session: WalletSession, chain_runner: Background, folders: RecentFolders | None = None,
                 stake=None, parent=None):
        """stake: app.stake.StakeActions (the rig's stake on the order market, shown
        beside the balances with a "Stake…" button); None: not shown."""
        super().__init__(parent)
        self._stake = stake
        self.stake_status = None
        self.folders = folders or RecentFolders()
        self._session = session
        self._runner = chain_runner
        self.snapshot: WalletSnapshot | None = None
        self.rows: list[HistoryRow] = []
        self.shown_rows: list[HistoryRow] = []
        self.dialog: QDialog | None = None
        self._in_flight = False
        self._quote_seq = 0

        title, self.summary = page_heading("Wallet")
        muted(self.summary)
        self.summary.setText("Connecting…")
        self.network_combo = QComboBox()
        self.network_combo.setToolTip("The chain this wallet talks to; RPC URLs are in Settings → Wallet.")
        for c in network_choices(session.ctx):
            text = c.name if c.chain_id is None else f"{c.name}  (chain {c.chain_id})"
            self.network_combo.addItem(text if c.has_market else f"{text} · no market", c.name)
        self._select_network(session.ctx.settings.wallet.network)
        self.network_combo.activated.connect(self._network_picked)
        self.lock_button = QPushButton("Unlock…")
        self.lock_button.clicked.connect(self.toggle_lock)
        head = QHBoxLayout()
        titles = QVBoxLayout()
        titles.addWidget(title)
        titles.addWidget(self.summary)
        head.addLayout(titles, 1)
        head.addWidget(QLabel("Network"))
        head.addWidget(self.network_combo)
        head.addWidget(self.lock_button)

        self.banner = QFrame()
        self.banner.setStyleSheet(BANNER_STYLE)
        bl = QHBoxLayout(self.banner)
        bl.setContentsMargins(8, 4, 8, 4)
        self.banner_text = QLabel()
        self.banner_text.setWordWrap(True)
        self.retry_button = QPushButton("Retry")
        self.retry_button.clicked.connect(self.refresh)
        bl.addWidget(self.banner_text, 1)
        bl.addWidget(self.retry_button)
        self.banner.setVisible(False)

        box = QVBoxLayout(self)
        box.addLayout(head)
        box.addWidget(self._account_card())
        self.tabs = QTabWidget()
        self.tabs.addTab(self._history_tab(), "History")
        self.tabs.addTab(self._send_tab(), "Send")
        self.mining_panel = MiningKeyPanel(session=session, chain_runner=chain_runner)
        self.miningKeyChanged = self.mining_panel.changed
        self.mining_panel.stake_button.setVisible(stake is not None)
        self.mining_panel.stake_button.clicked.connect(lambda: self.stakeRequested.emit())
        self.tabs.addTab(self.mining_panel, "Mining key")
        self.tabs.currentChanged.connect(lambda i: self.tabs.widget(i) is self.mining_panel and self.mining_panel.refresh())
        box.addWidget(self.tabs, 1)
        box.addWidget(self.banner)  # below the page: a message that appears never moves the fields under the pointer

        self._quote_timer = QTimer(self)
        self._quote_timer.setSingleShot(True)
        self._quote_timer.setInterval(400)
        self._quote_timer.timeout.connect(self.request_quote)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        QTimer.singleShot(0, self.refresh)

    # -- building ------------------------------------------------------------------------
    def _account_card(self) -> QWidget:
        card = QFrame()
        card.setObjectName("accountCard")
        card.setStyleSheet("#accountCard { border: 1px solid palette(mid); border-radius: 8px; }")
        grid = QGridLayout(card)
        grid.setContentsMargins(12, 12, 12, 12)
        grid.setHorizontalSpacing(16)
        self.qr = QLabel()
        self.qr.setFixedSize(132, 132)
        self.qr.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.qr.setToolTip("Your address as a QR code, to receive NTK or ETH")
        grid.addWidget(self.qr, 0, 0, 4, 1)
        cap = QLabel("Your address")
        muted(cap)
        grid.addWidget(cap, 0, 1)
        addr_row = QHBoxLayout()
        self.address_label = QLabel("–")
        self.address_label.setFont(mono_font())
        self.address_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_button = QToolButton()
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip("Copy the address to the clipboard")
        self.copy_button.clicked.connect(self.copy_address)
        self.copy_button.setEnabled(False)
        addr_row.addWidget(self.address_label)
        addr_row.addWidget(self.copy_button)
        addr_row.addStretch(1)
        grid.addLayout(addr_row, 1, 1)
        bal = QHBoxLayout()
        self.ntk_label = self._balance_box(bal, "NTK")
        self.eth_label = self._balance_box(bal, "ETH (for fees)")
        self.stake_box = QWidget()
        sb = QHBoxLayout(self.stake_box)
        sb.setContentsMargins(0, 0, 0, 0)
        self.stake_value = self._balance_box(sb, "NTK staked (order market)")
        self.stake_button = QPushButton("Stake…")
        self.stake_button.setToolTip("Stake NTK so buyers on the order market grant this rig claims; unstake it later")
        self.stake_button.clicked.connect(lambda: self.stakeRequested.emit())
        sb.addWidget(self.stake_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.stake_box.setVisible(False)
        bal.addWidget(self.stake_box)
        bal.addStretch(1)
        grid.addLayout(bal, 2, 1)
        self.ntk_note = QLabel()
        self.ntk_note.setWordWrap(True)
        muted(self.ntk_note)
        self.ntk_note.setVisible(False)
        grid.addWidget(self.ntk_note, 3, 1)
        self.mining_note = QLabel()
        self.mining_note.setWordWrap(True)
        self.mining_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        muted(self.mining_note)
        self.mining_note.setVisible(False)
        grid.addWidget(self.mining_note, 4, 1)
        grid.setColumnStretch(1, 1)
        return card

    def _balance_box(self, row: QHBoxLayout, caption: str) -> QLabel:
        col = QVBoxLayout()
        value = QLabel("–")
        f = value.font()
        f.setPointSizeF(f.pointSizeF() * 1.6)
        f.setBold(True)
        value.setFont(f)
        value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        cap = QLabel(caption)
        muted(cap)
        col.addWidget(value)
        col.addWidget(cap)
        row.addLayout(col)
        row.addSpacing(32)
        return value

    def _send_tab(self) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.to_edit = QLineEdit()
        self.to_edit.setPlaceholderText("0x… recipient address")
        self.to_edit.setFont(mono_font())
        self.to_error = error_label(keep_space=True)
        to_box = QVBoxLayout()
        to_box.addWidget(self.to_edit)
        to_box.addWidget(self.to_error)
        form.addRow("To", to_box)
        amount_row = QHBoxLayout()
        self.amount_edit = QLineEdit()
        self.amount_edit.setPlaceholderText("0.0")
        self.asset_combo = QComboBox()
        self.asset_combo.addItems(["NTK", "ETH"])
        amount_row.addWidget(self.amount_edit, 1)
        amount_row.addWidget(self.asset_combo)
        self.amount_error = error_label(keep_space=True)
        amount_box = QVBoxLayout()
        amount_box.addLayout(amount_row)
        amount_box.addWidget(self.amount_error)
        form.addRow("Amount", amount_box)
        self.fee_label = QLabel("Enter an address and an amount to see the fee.")
        muted(self.fee_label)
        form.addRow("Network fee", self.fee_label)
        self.send_button = QPushButton("Send…")
        self.send_button.setEnabled(False)
        self.send_button.clicked.connect(self.send_clicked)
        self.send_status = QLabel()
        self.send_status.setWordWrap(True)
        self.send_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        btn_row = QHBoxLayout()
        btn_row.addWidget(self.send_button)
        btn_row.addWidget(self.send_status, 1)
        form.addRow("", btn_row)
        self.to_edit.textChanged.connect(self._inputs_changed)
        self.amount_edit.textChanged.connect(self._inputs_changed)
        self.asset_combo.currentIndexChanged.connect(self._inputs_changed)
        return w

    # -- refreshing ----------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read balances, lock state and history on the chain runner (skipped while one runs)."""
        if self._in_flight:
            return
        self._in_flight = True
        s = self._session

        def work():
            snap = s.snapshot()
            try:
                rows, err = s.history(), None
            except (Locked, RpcUnavailable) as e:
                rows, err = None, str(e)
            except Exception as e:  # no contracts here, an index problem: the balances still show
                log.info("history unavailable: %s", e)
                rows, err = None, str(e)
            stake = None
            if self._stake is not None:
                try:
                    stake = self._stake.status()
                except Exception as e:  # no order market here, no signer while locked: said in the tooltip
                    stake = e
            return snap, rows, err, stake

        self._runner.submit(work, on_done=self._refreshed, on_error=self._refresh_failed)

    def _refreshed(self, result) -> None:
        self._in_flight = False
        snap, rows, err, stake = result
        self.banner.setVisible(False)
        self.show_snapshot(snap)
        self.show_stake(stake)
        if rows is None:
            self.history_status.setText(f"History unavailable: {err}")
        elif rows != self.rows:  # rebuild the table only when something changed
            self.rows = rows
            self.apply_filter()
            self.historyChanged.emit(rows)
        elif self.history_status.text().startswith("History unavailable"):
            self.apply_filter()

    def _refresh_failed(self, err: BaseException) -> None:
        self._in_flight = False
        self.show_banner(err)

    def show_stake(self, st) -> None:
        """The rig's stake (app.stake.StakeStatus), or why it cannot be read (an exception:
        hidden where the network has no order market)."""
        if isinstance(st, BaseException):
            why = str(st).strip().splitlines()[0] if str(st).strip() else type(st).__name__
            self.stake_status = None
            self.stake_box.setVisible("no order market" not in why)
            self.stake_value.setText("–")
            self.stake_value.setToolTip(why)
            return
        self.stake_status = st
        self.stake_box.setVisible(st is not None)
        if st is None:
            return
        self.stake_value.setText(balance_html(st.active_wei, 6))
        self.stake_value.setStyleSheet("color: #d64545;" if st.problem else "")
        self.stake_value.setToolTip(st.summary() + (f" — {st.problem}" if st.problem else ""))

    def show_banner(self, err: BaseException) -> None:
        net = self.network_combo.currentData()
        if isinstance(err, RpcUnavailable):
            url = next((c.rpc_url for c in network_choices(self._session.ctx) if c.name == net), None)
            text = (f"Cannot reach the {net} node{f' at {url}' if url else ''}: is it running? Your keys and funds "
                    "are safe. Retry when it is back, or pick another network.")
        else:
            text = f"{err}"
        self.banner_text.setText(text)
        self.banner.setVisible(True)
        self.summary.setText(f"{net} · offline")

    def focus_mining_key(self) -> None:
        """Show the Mining key tab (the readiness banner's "Set up mining key")."""
        self.tabs.setCurrentWidget(self.mining_panel)

    def show_snapshot(self, snap: WalletSnapshot) -> None:
        first = self.snapshot is None or self.snapshot.address != snap.address
        self.mining_panel.unlocked = snap.unlocked
        if first or self.tabs.currentWidget() is self.mining_panel:
            self.mining_panel.refresh()
        self.snapshot = snap
        self._select_network(snap.network)
        where = "embedded chain" if snap.embedded else (snap.rpc_url or "")
        lock = "unlocked" if snap.unlocked else "locked"
        self.summary.setText(f"{snap.network} · chain id {snap.chain_id} · {where} · block {snap.block} · {lock}")
        self.address_label.setText(snap.address)
        self.copy_button.setEnabled(True)
        if first:
            self.qr.setPixmap(qr_pixmap(snap.address, 132))
        for label, wei, unit in ((self.ntk_label, snap.ntk_wei, "NTK"), (self.eth_label, snap.eth_wei, "ETH")):
            label.setText(balance_html(wei, ETH_DECIMALS if unit == "ETH" else None))
            label.setToolTip(f"{format_amount(wei)} {unit} (exact)" if wei is not None else "")
        self.ntk_note.setText(snap.ntk_note or "")
        self.ntk_note.setVisible(bool(snap.ntk_note))
        if snap.mining_address and snap.mining_ntk_wei is not None:
            # on the local chain the app mines with an account of its own (a buyer cannot claim
            # their own jobs): say where the earned NTK is, exactly; the order market pays the
            # rig's payout address, this wallet
            self.mining_note.setText(f"Earned on the job market by mining on this local chain: "
                                     f"<b>{format_amount(snap.mining_ntk_wei)} NTK</b> in the mining account "
                                     f"{snap.mining_address[:8]}…{snap.mining_address[-6:]}; order-market payouts "
                                     "come to this wallet")
            self.mining_note.setToolTip(f"{snap.mining_address}: the account the app mines with on the local "
                                        "test chain, derived from this wallet's key")
        self.mining_note.setVisible(bool(snap.mining_address and snap.mining_ntk_wei is not None))
        self.lock_button.setText("Lock" if snap.unlocked else "Unlock…")
        self.lock_button.setToolTip("Forget the unlocked key" if snap.unlocked else "Open the key with its password")
        self.snapshotChanged.emit(snap)

    def _select_network(self, name: str) -> None:
        i = self.network_combo.findData(name)
        if i >= 0 and i != self.network_combo.currentIndex():
            self.network_combo.setCurrentIndex(i)

    # -- address ---------------------------------------------------------------------------
    def copy_address(self) -> None:
        if self.snapshot is None:
            return
        QGuiApplication.clipboard().setText(self.snapshot.address)
        self.copy_button.setText("Copied")
        QTimer.singleShot(1500, self.copy_button, lambda: self.copy_button.setText("Copy"))

    # -- network -------------------------------------------------------------------------
    def _network_picked(self, index: int) -> None:
        self.switch_network(self.network_combo.itemData(index))

    def switch_network(self, name: str) -> None:
        self._select_network(name)
        self.summary.setText(f"Connecting to {name}…")
        self.rows, self.shown_rows = [], []
        self.apply_filter()
        for label in (self.ntk_label, self.eth_label):  # never show one network's balances under another
            label.setText("–")
            label.setToolTip("")
        self.mining_note.setVisible(False)
        s = self._session
        self._in_flight = True
        self._runner.submit(lambda: s.switch_network(name),
                            on_done=lambda snap: (self._switched(), self.show_snapshot(snap), self.refresh()),
                            on_error=self._refresh_failed)

    def _switched(self) -> None:
        self._in_flight = False
        self.banner.setVisible(False)

    # -- lock ------------------------------------------------------------------------------
    def toggle_lock(self) -> None:
        s = self._session
        if self.snapshot is not None and self.snapshot.unlocked:
            self._runner.submit(s.lock, on_done=lambda _: self.refresh(), on_error=self.show_banner)
            return
        self._runner.submit(s.unlock_from_keyring, on_done=self._keyring_tried, on_error=self.show_banner)

    def _keyring_tried(self, unlocked: bool) -> None:
        if unlocked:
            self.refresh()
            return
        keyring = bool(self.snapshot and self.snapshot.keyring)
        self.dialog = PasswordDialog(title="Unlock the wallet", keyring=keyring, parent=self,
                                     text="Enter the wallet password. The key stays unlocked until you lock it "
                                          "or close the app.", on_submit=self._unlock_submit)
        self.dialog.open()

    def _unlock_submit(self, password: str, remember: bool) -> None:
        dlg = self.dialog
        self._runner.submit(lambda: self._session.unlock(password, remember=remember),
                            on_done=lambda _: (dlg.accept(), self.refresh()),
                            on_error=lambda e: dlg.failed(str(e)))

    # -- send ------------------------------------------------------------------------------
    def _local_checks(self) -> tuple[str, int] | None:
        """Address and amount checked without the chain; errors shown at their fields."""
        to = amount = None
        try:
            to = check_address(self.to_edit.text()) if self.to_edit.text().strip() else None
            show_error(self.to_error, None)
        except FieldError as e:
            show_error(self.to_error, str(e))
        try:
            amount = check_amount(self.amount_edit.text()) if self.amount_edit.text().strip() else None
            show_error(self.amount_error, None)
        except FieldError as e:
            show_error(self.amount_error, str(e))
        return (to, amount) if to and amount else None

    def _inputs_changed(self) -> None:
        self._quote_seq += 1
        self.send_button.setEnabled(False)
        self.send_status.setText("")
        if self._local_checks() is None:
            self.fee_label.setText("Enter an address and an amount to see the fee.")
            self._quote_timer.stop()
            return
        self.fee_label.setText("Estimating the fee…")
        self._quote_timer.start()

    def request_quote(self, then=None) -> None:
        """Price the send on the chain runner; shows the fee or the error at its field."""
        if self._local_checks() is None:
            return
        seq = self._quote_seq
        to, amount, asset = self.to_edit.text(), self.amount_edit.text(), self.asset_combo.currentText()
        s = self._session

        def done(q: SendQuote) -> None:
            if seq != self._quote_seq:
                return  # the inputs changed meanwhile
            self.quote = q
            self.fee_label.setText(f"≈ {eth_short(q.fee_wei)} ETH  ({q.gas:,} gas × "
                                   f"{format_amount(q.gas_price_wei, 9, max_decimals=3)} gwei; "
                                   f"at most {eth_short(q.max_fee_wei)} ETH)")
            self.send_button.setEnabled(True)
            if then is not None:
                then(q)

        def failed(e: BaseException) -> None:
            if seq != self._quote_seq:
                return
            self.send_button.setEnabled(False)
            self.fee_label.setText("–")
            if isinstance(e, FieldError):
                show_error(self.to_error if e.field == "to" else self.amount_error, str(e))
            else:
                self.show_banner(e)

        self._runner.submit(lambda: s.quote(to, amount, asset), on_done=done, on_error=failed)

    def send_clicked(self) -> None:
        """Re-price (balances may have moved), then ask for confirmation."""
        self.send_button.setEnabled(False)
        self.request_quote(then=self._confirm)

    def _confirm(self, quote: SendQuote) -> None:
        locked = not (self.snapshot and self.snapshot.unlocked)
        self.dialog = ConfirmSendDialog(quote, locked=locked, parent=self, on_submit=self._send_submit)
        self.dialog.open()

    def _send_submit(self, password: str | None) -> None:
        dlg = self.dialog
        quote = dlg.quote

        def done(res) -> None:
            dlg.accept()
            self.send_status.setText(f"Sent in block {res.block} (tx {res.tx_hash[:12]}…, fee "
                                     f"{eth_short(res.fee_wei)} ETH).")
            self.to_edit.blockSignals(True)
            self.amount_edit.blockSignals(True)
            self.amount_edit.clear()
            self.to_edit.blockSignals(False)
            self.amount_edit.blockSignals(False)
            self.fee_label.setText("Enter an address and an amount to see the fee.")
            self.refresh()

        def failed(e: BaseException) -> None:
            if isinstance(e, Locked):
                dlg.failed("The wallet is locked: enter its password.")
            else:
                dlg.failed(str(e))

        self._runner.submit(lambda: self._session.send(quote, password), on_done=done, on_error=failed)

    def shutdown(self) -> None:
        """Stop the timers (the owner shuts the runner down and closes the session on it)."""
        self.timer.stop()
        self._quote_timer.stop()
