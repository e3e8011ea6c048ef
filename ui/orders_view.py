"""The buyer's Orders: post a dataset order (a scene spec file, or the scene editor's spec via
`post_from_spec`) and a training order on a dataset order; watch every order and its shards
(claimed, submitted, verifying, accepted...), with each result's verification figures; browse
a delivered dataset (images with their boxes) and a trained model's curves.

Threading: every BuyerService call that may touch the chain (post_*, step, repost) goes
through `chain_runner`, the GUI's one "chain" runner; `step()` runs there every `interval_s`
(the buyer's loop: fetch, verify in the sandbox, accept or reject, merge). Reading datasets,
images and copying results go through `files_runner`. Amounts are integer NTK wei.
"""

from __future__ import annotations

import time
from pathlib import Path

from app.recent_folders import RecentFolders
from app.amounts import check_amount, ntk_text
from ui.background import Background
from ui.cost_dialog import ConfirmCostDialog
from ui.file_dialogs import choose_folder, open_file
from ui.qt import (
    QAbstractItemView, QColor, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QHeaderView, QLabel,
    QLineEdit, QPushButton, QSplitter, QStackedWidget, Qt, QTableWidget,
    QTableWidgetItem, QTabWidget, QTimer, QVBoxLayout, QWidget, Signal,
)
from ui.order_detail import BAD, GOOD, STATE_TEXT, OrderDetail
from ui.order_forms import dataset_cost, error_label, hours_spin, int_spin, train_cost
from ui.orders_p2p import P2P, P2PDetail, P2PPosting, progress_cell
from ui.orders_p2p_train import P2PTraining
from ui.widgets import muted, page_heading

ARCHS = ("centernet-s", "centernet-xs", "centernet-m", "classifier-s", "classifier-xs")
ACTIVE_SHARDS = ("open", "claimed", "submitted", "verifying", "posting")


class OrdersView(P2PTraining, P2PPosting, QWidget):
    """See the module docstring. `buyer` is an app.buyer.BuyerService; `p2p` an
    app.p2p_orders.P2POrders (the order market's orders, peer to peer; None: not offered)."""

    ordersChanged = Signal(object)   # list[OrderStatus]
    posted = Signal(object)          # OrderStatus, or an exception (either market)
    p2pPosted = Signal(int)          # the order id on the order market
    transfersRequested = Signal()    # the user asked to see the transfers (Jobs → Transfers)
    EMPTY_TEXT = "No orders yet: post a dataset order on the left."
    CLOSED_TEXT = "Your orders show here once the market is open: it opens when the wallet is unlocked (Wallet page)."
    OK_MESSAGE_MS = 30_000
    """How long a good-news banner ("Order 3 posted...") stays; errors stay until replaced."""

    def __init__(self, *, buyer, chain_runner: Background, files_runner: Background, interval_s: float = 2.0,
                 auto_step: bool = True, folders: RecentFolders | None = None, p2p=None, parent=None):
        """folders: where the file dialogs start (the last folder used; kept for this run if None)."""
        super().__init__(parent)
        self._buyer = buyer
        self._p2p = p2p
        self.p2p_orders: list = []
        self.folders = folders or RecentFolders()
        self._chain = chain_runner
        self._files = files_runner
        self._auto_step = auto_step
        self._in_flight = False
        self.closed = False
        """True while the buyer has no unlocked account (wallet locked, market not open yet)."""
        self._spec: dict | None = None
        self.orders: list = []
        self.selected: int | None = None
        self.last_refresh_at: float | None = None

        title, self.summary = page_heading("Orders")
        self.summary.setStyleSheet("")
        muted(self.summary)
        head = QVBoxLayout()
        head.addWidget(title)
        head.addWidget(self.summary)
        self.banner = QLabel()
        self._banner_serial = 0
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)

        self.forms = QTabWidget()
        self.forms.addTab(self._dataset_form(), "Dataset order")
        self.forms.addTab(self._train_form(), "Training order")
        self.forms.setMinimumWidth(280)
        self.forms.setMaximumWidth(400)

        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["#", "Order", "Kind", "State", "Progress", "Budget"])
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        hh = self.table.horizontalHeader()
        for c in (0, 2, 3, 5):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(4, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(4, 110)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.empty = muted(QLabel(self.EMPTY_TEXT))
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        orders_box = QVBoxLayout()
        orders_box.setContentsMargins(0, 0, 0, 0)
        orders_box.addWidget(self.table, 1)
        orders_box.addWidget(self.empty)
        orders_w = QWidget()
        orders_w.setLayout(orders_box)
        orders_w.setMinimumHeight(90)   # a short window never squeezes the list (or its empty text) to a sliver

        self.table.setMinimumHeight(90)
        self.detail = OrderDetail(runner=self._files)
        self.detail.repostRequested.connect(self.repost_selected)
        self.detail.saveRequested.connect(self.choose_save_folder)
        self.p2p_detail = P2PDetail(runner=self._files)
        self.p2p_detail.saveRequested.connect(self.save_p2p)
        self.p2p_detail.transfersRequested.connect(self.transfersRequested)
        self.details = QStackedWidget()
        self.details.addWidget(self.detail)
        self.details.addWidget(self.p2p_detail)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(orders_w)
        right.addWidget(self.details)
        right.setStretchFactor(1, 1)
        right.setChildrenCollapsible(False)
        right.setSizes([150, 450])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.forms)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        split.setSizes([360, 700])

        box = QVBoxLayout(self)
        box.addLayout(head)
        box.addWidget(self.banner)
        box.addWidget(split, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(int(interval_s * 1000))
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        QTimer.singleShot(0, self.refresh)

    # -- building ----------------------------------------------------------------------------
    def _dataset_form(self) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self._market_row(form)
        self.scene_edit = QLineEdit()
        self.scene_edit.setPlaceholderText("scene spec file (.json)")
        self.scene_edit.textEdited.connect(lambda _t: self._set_spec(None))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.choose_scene)
        row = QHBoxLayout()
        row.addWidget(self.scene_edit, 1)
        row.addWidget(browse)
        form.addRow("Scene:", row)
        self.scene_note = muted(QLabel("or send the scene from the scene editor"))
        self.scene_note.setWordWrap(True)
        form.addRow("", self.scene_note)
        self.count_spin = int_spin(1, 1_000_000, 200, " frames")
        self.shards_spin = int_spin(1, 1000, 4)
        self.budget_edit = QLineEdit("40")
        self.budget_edit.setPlaceholderText("NTK for the whole order")
        self.deadline_spin = hours_spin(24)
        self.review_spin = hours_spin(24)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("optional")
        form.addRow("Images:", self.count_spin)
        form.addRow("Shards:", self.shards_spin)
        form.addRow("Budget (NTK):", self.budget_edit)
        self.budget_note = muted(QLabel())
        self.budget_note.setWordWrap(True)   # the escrow sum, or why the budget is refused: never clipped
        form.addRow("", self.budget_note)
        form.addRow("Deadline:", self.deadline_spin)
        form.addRow("Review window:", self.review_spin)
        form.addRow("Name:", self.name_edit)
        self._market_changed()
        self.dataset_error = error_label()
        form.addRow(self.dataset_error)
        self.post_dataset_button = QPushButton("Post dataset order")
        self.post_dataset_button.clicked.connect(self.post_dataset)
        form.addRow(self.post_dataset_button)
        for sig in (self.count_spin.valueChanged, self.shards_spin.valueChanged, self.budget_edit.textChanged):
            sig.connect(lambda *_: self._update_budget_note())
        for sig in (self.count_spin.valueChanged, self.shards_spin.valueChanged, self.budget_edit.textEdited,
                    self.scene_edit.textEdited, self.deadline_spin.valueChanged, self.review_spin.valueChanged):
            sig.connect(lambda *_: self.dataset_error.setVisible(False))   # an old complaint goes once the user edits
        self._update_budget_note()
        return w

    def _train_form(self) -> QWidget:
        w = QWidget()
        form = self.train_form_layout = QFormLayout(w)
        self._train_market_row(form)
        self._p2p_train_rows(form)
        self.data_combo = QComboBox()
        self.holdout_combo = QComboBox()
        form.addRow("Train on:", self.data_combo)
        form.addRow("Folder:", self.data_folder_row)
        form.addRow("Held out:", self.holdout_combo)
        form.addRow("Held-out share:", self.holdout_share_spin)
        form.addRow("Held-out folder:", self.holdout_folder_row)
        self.arch_combo = QComboBox()
        self.arch_combo.addItems(ARCHS)
        self.epochs_spin = int_spin(1, 10_000, 10)
        self.batch_spin = int_spin(1, 4096, 16)
        self.tolerance_spin = QDoubleSpinBox()
        self.tolerance_spin.setRange(-0.01, 1)  # the minimum is "Automatic": tolerance() is None
        self.tolerance_spin.setSingleStep(0.01)
        self.tolerance_spin.setSpecialValueText("Automatic")
        self.tolerance_spin.setValue(-0.01)
        self.tolerance_spin.setToolTip("How far below its card's metric the model may measure on the held-out "
                                       "images and be paid. Automatic: wide for a few held-out images, at least "
                                       "0.05 (peer to peer; the job market uses 0.05); the figure is shown before "
                                       "you post.")
        self.train_reward_edit = QLineEdit("20")
        self.train_deadline_spin = hours_spin(48)
        self.train_review_spin = hours_spin(24)
        form.addRow("Architecture:", self.arch_combo)
        form.addRow("Epochs:", self.epochs_spin)
        form.addRow("Batch:", self.batch_spin)
        form.addRow("Tolerance:", self.tolerance_spin)
        form.addRow("Least metric:", self.min_metric_spin)
        form.addRow("Reward (NTK):", self.train_reward_edit)
        form.addRow("Deadline:", self.train_deadline_spin)
        form.addRow("Review window:", self.train_review_spin)
        self.train_note = note = muted(QLabel())
        note.setWordWrap(True)
        form.addRow(note)
        self.train_error = error_label()
        form.addRow(self.train_error)
        self.post_train_button = QPushButton("Post training order")
        self.post_train_button.clicked.connect(self.post_training)
        form.addRow(self.post_train_button)
        self.train_market_combo.currentIndexChanged.connect(lambda _i: self._train_market_changed())
        for combo in (self.data_combo, self.holdout_combo):
            combo.currentIndexChanged.connect(lambda _i: self._update_train_rows())
        self._update_train_rows()
        return w

    # -- messages --------------------------------------------------------------------------
    def show_message(self, text: str, kind: str = "info") -> None:
        colours = {"info": "rgba(47,128,237,0.12)", "ok": "rgba(39,174,96,0.16)", "error": "rgba(235,87,87,0.16)"}
        self.banner.setText(text)
        self.banner.setStyleSheet(f"background: {colours.get(kind, colours['info'])}; border-radius: 6px; padding: 8px;")
        self.banner.setVisible(bool(text))
        self._banner_serial += 1
        if kind == "ok" and text:  # news fades: "Order 3 posted" is stale once the table shows it
            serial = self._banner_serial
            QTimer.singleShot(self.OK_MESSAGE_MS, self, lambda: self._expire_banner(serial))

    def _expire_banner(self, serial: int) -> None:
        if serial == self._banner_serial:
            self.banner.setVisible(False)

    # -- the dataset form ----------------------------------------------------------------------
    def choose_scene(self) -> None:
        path = open_file(self, self.folders, "scene", "Scene spec", "Scene specs (*.json)")
        if path:
            self.scene_edit.setText(str(path))
            self._set_spec(None)

    def post_from_spec(self, spec: dict) -> None:
        """Take a scene spec from the scene editor: the dataset form is filled with it and shown;
        the user sets images, shards and budget and posts."""
        self._set_spec(dict(spec))
        count = (spec.get("outputs") or {}).get("count")
        if isinstance(count, int) and count >= 1:
            self.count_spin.setValue(count)   # the editor's image count is the order's default
        self.forms.setCurrentIndex(0)
        self.count_spin.setFocus()
        self.show_message(f"Scene “{spec.get('name', 'from the editor')}” from the scene editor: set the images, "
                          "shards and budget, then post.", "info")

    def _set_spec(self, spec: dict | None) -> None:
        self._spec = spec
        if spec is not None:
            self.scene_edit.clear()
            self.scene_edit.setPlaceholderText(f"from the scene editor: {spec.get('name', 'unnamed scene')}")
            self.scene_note.setText(f"Using “{spec.get('name', 'unnamed scene')}” from the scene editor "
                                    "(Browse… or type a path to use a file instead)")
        else:
            self.scene_edit.setPlaceholderText("scene spec file (.json)")
            self.scene_note.setText("or send the scene from the scene editor")

    def _budget(self) -> tuple[int, int, int]:
        """(budget wei, reward per shard wei, total escrowed wei); FieldError on a bad amount."""
        budget = check_amount(self.budget_edit.text(), field="budget")
        shards = self.shards_spin.value()
        each = budget // shards
        return budget, each, each * shards

    def _update_budget_note(self) -> None:
        try:
            budget, each, total = self._budget()
        except ValueError as e:
            self.budget_note.setText(str(e))
            return
        extra = f" ({ntk_text(budget - total)} left over)" if total != budget else ""
        self.budget_note.setText(f"{ntk_text(each)} per shard · {ntk_text(total)} escrowed{extra}")

    def post_dataset(self) -> None:
        self.dataset_error.setVisible(False)
        scene = self._spec if self._spec is not None else self.scene_edit.text().strip()
        try:
            if not scene:
                raise ValueError("choose a scene spec file, or send one from the scene editor")
            if self.shards_spin.value() > self.count_spin.value():
                raise ValueError("more shards than images: use at most one shard per image")
            _, each, total = self._budget()
            if each <= 0:
                raise ValueError("the budget is too small to pay every shard")
        except ValueError as e:
            self.dataset_error.setText(str(e))
            self.dataset_error.setVisible(True)
            return
        buyer = self._buyer
        kw = dict(count=self.count_spin.value(), shards=self.shards_spin.value(), reward_each_wei=each,
                  deadline_s=int(self.deadline_spin.value() * 3600), review_window_s=int(self.review_spin.value() * 3600),
                  name=self.name_edit.text().strip() or None)
        self.post_dataset_button.setEnabled(False)
        if self.market_choice() == P2P:
            self._post_p2p(scene, kw, each, total)
            return
        if buyer.account is not None:  # the market is open: the user confirms the cost first
            cost = dataset_cost(kw["shards"], each, kw["count"])
            self._confirm(cost, f"Post for {cost.total_text()}", lambda: self._post_dataset(buyer, scene, kw, total),
                          self.post_dataset_button)
            return
        self._post_dataset(buyer, scene, kw, total)

    def _confirm(self, cost, ok_text: str, go, button) -> None:
        """Show the order's cost (app.costs.CostBreakdown); `go()` on OK, the button back on Cancel."""
        self.confirm_dialog = dlg = ConfirmCostDialog(cost, ok_text=ok_text, parent=self)
        dlg.accepted.connect(go)
        dlg.rejected.connect(lambda: button.setEnabled(True))
        dlg.finished.connect(lambda _r: setattr(self, "confirm_dialog", None))
        dlg.open()

    def _post_dataset(self, buyer, scene, kw: dict, total: int) -> None:
        self.show_message(f"Posting {kw['shards']} shard job(s), {ntk_text(total)} escrowed…")

        def post():   # chain thread
            self._check_funds(buyer, total)
            return buyer.post_render(scene if not isinstance(scene, str) else Path(scene), **kw)

        self._chain.submit(post, on_done=self._posted, on_error=lambda e: self._post_failed(e, self.dataset_error))

    @staticmethod
    def _check_funds(buyer, total_wei: int) -> None:
        """A short NTK balance as one plain line, before any transaction (chain thread)."""
        if buyer.account is None:
            return   # the service says why
        have = buyer.market.token.balance_of(buyer.account.address)
        if have < total_wei:
            raise ValueError(f"not enough NTK: the order escrows {ntk_text(total_wei)}, you have {ntk_text(have)}")

    # -- the training form -----------------------------------------------------------------
    def tolerance(self) -> float | None:
        """The Tolerance field: None on "Automatic" (the default for the held-out size)."""
        v = self.tolerance_spin.value()
        return None if v < 0 else round(v, 4)

    def post_training(self) -> None:
        self.train_error.setVisible(False)
        data = self.data_combo.currentData()
        hold = self.holdout_combo.currentData()
        p2p = self.train_market_choice() == P2P
        try:
            if data is None and not p2p:
                raise ValueError("post a dataset order first: a model is trained on its data")
            reward = check_amount(self.train_reward_edit.text(), field="reward")
            if reward <= 0:
                raise ValueError("the reward must be more than 0 NTK")
        except ValueError as e:
            self.train_error.setText(str(e))
            self.train_error.setVisible(True)
            return
        buyer = self._buyer
        params = {"arch": self.arch_combo.currentText(), "epochs": self.epochs_spin.value(),
                  "batch": self.batch_spin.value()}
        if p2p:
            self.post_train_button.setEnabled(False)
            self._post_p2p_train(params, reward, int(self.train_deadline_spin.value() * 3600),
                                 int(self.train_review_spin.value() * 3600), self.tolerance())
            return
        tolerance = self.tolerance()
        kw = dict(train_params=params, reward_wei=reward, deadline_s=int(self.train_deadline_spin.value() * 3600),
                  review_window_s=int(self.train_review_spin.value() * 3600), holdout_order=hold,
                  **({} if tolerance is None else {"tolerance": tolerance}))
        self.post_train_button.setEnabled(False)

        def go() -> None:
            self._chain.submit(lambda: buyer.post_train([data], **kw), on_done=self._posted,
                               on_error=lambda e: self._post_failed(e, self.train_error))

        if buyer.account is None:
            go()  # the market is closed: the service says why
            return
        cost = train_cost(reward)
        self._confirm(cost, f"Post for {cost.total_text()}", go, self.post_train_button)

    confirm_dialog = None
    """The cost confirmation while it is open (ui.cost_dialog)."""

    def _posted(self, order) -> None:
        self.post_dataset_button.setEnabled(True)
        self.post_train_button.setEnabled(True)
        if order.kind == "render":
            self.show_message(f"Order {order.id} posted: {len(order.shards)} shard job(s), {ntk_text(order.total_wei)} "
                              "escrowed until each result is verified.", "ok")
        else:
            self.show_message(f"Training order {order.id} recorded: it is posted once its data is verified "
                              f"({ntk_text(order.total_wei)}).", "ok")
        self.selected = order.id
        self.posted.emit(order)
        self.refresh(force=True)

    def _post_failed(self, err: BaseException, label: QLabel) -> None:
        self.post_dataset_button.setEnabled(True)
        self.post_train_button.setEnabled(True)
        self.show_message("")
        label.setText(f"Not posted: {err}")
        label.setVisible(True)
        self.posted.emit(err)

    # -- the loop ------------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """One pass of the buyer's loop (if auto_step) and the orders, on the chain runner."""
        if self._in_flight and not force:
            return
        self._in_flight = True
        buyer, step, p2p = self._buyer, self._auto_step, self._p2p
        self._chain.submit(lambda: ((buyer.step() if step else []), buyer.orders(), buyer.account is None,
                                    (p2p.orders(), p2p.available()) if p2p is not None else ([], False)),
                           on_done=self._apply, on_error=self._refresh_failed)

    def _refresh_failed(self, err: BaseException) -> None:
        self._in_flight = False
        self.show_message(f"Could not follow the orders: {err}", "error")

    def _apply(self, value) -> None:
        self._in_flight = False
        events, orders, *rest = value
        self.closed = bool(rest and rest[0])
        if len(rest) > 1:
            self.p2p_orders, available = rest[1]
            if self._p2p is not None:
                self._set_p2p_available(available)
        self.last_refresh_at = time.monotonic()
        self.detail.add_activity(events)
        self.orders = list(orders)
        self._fill_table()
        self._fill_train_choices()
        escrow = sum(o.reward_each_wei for o in self.orders for s in o.shards if s.state in ACTIVE_SHARDS)
        open_n = sum(1 for o in self.orders if o.state not in ("done", "failed"))
        open_n += sum(1 for o in self.p2p_orders if not o.finished)
        n = len(self.orders) + len(self.p2p_orders)
        p2p = f" ({len(self.p2p_orders)} peer to peer)" if self.p2p_orders else ""
        escrow += sum(o.escrow_wei for o in self.p2p_orders)
        self.summary.setText(f"{n} order{'s' if n != 1 else ''}{p2p} · {open_n} in progress · {ntk_text(escrow)} in escrow")
        self._show_detail()
        self.ordersChanged.emit(self.orders)

    def _fill_table(self) -> None:
        t = self.table
        t.blockSignals(True)
        t.setRowCount(len(self.orders) + len(self.p2p_orders))
        for r, o in enumerate(reversed(self.p2p_orders)):
            self._fill_p2p_row(r, o)
        base = len(self.p2p_orders)
        for r, o in enumerate(reversed(self.orders), start=base):
            vals = [str(o.id), o.name, "dataset" if o.kind == "render" else "model",
                    STATE_TEXT.get(o.state, o.state), None, ntk_text(o.total_wei)]
            for c, v in enumerate(vals):
                if v is None:
                    continue
                item = QTableWidgetItem(v)
                item.setData(Qt.ItemDataRole.UserRole, o.id)
                if c == 3 and o.state in ("stalled", "failed"):
                    item.setForeground(QColor(BAD))
                elif c == 3 and o.state == "done":
                    item.setForeground(QColor(GOOD))
                t.setItem(r, c, item)
            progress_cell(t, r, 4, o.settled, len(o.shards))
            if o.id == self.selected:
                t.selectRow(r)
        t.blockSignals(False)
        anything = bool(self.orders or self.p2p_orders)
        t.setVisible(anything)
        self.empty.setText(self.CLOSED_TEXT if self.closed and not anything else self.EMPTY_TEXT)
        self.empty.setVisible(not anything)
        if self.selected is None and anything:
            self.selected = t.item(0, 0).data(Qt.ItemDataRole.UserRole)
            t.selectRow(0)

    def _fill_train_choices(self) -> None:
        if self.train_market_choice() == P2P:
            self._fill_p2p_train_choices()
            self._update_train_rows()
            return
        renders = [o for o in self.orders if o.kind == "render"]
        for combo, first in ((self.data_combo, None), (self.holdout_combo, "last shard of the data")):
            keep = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            if first:
                combo.addItem(first, None)
            for o in reversed(renders):
                combo.addItem(f"#{o.id} {o.name} ({o.params.get('count', '?')} images, {STATE_TEXT.get(o.state, o.state)})",
                              o.id)
            i = combo.findData(keep)
            combo.setCurrentIndex(i if i >= 0 else 0)
            combo.blockSignals(False)

    def _selection_changed(self) -> None:
        items = self.table.selectedItems()
        if items:
            self.selected = items[0].data(Qt.ItemDataRole.UserRole)
            self._show_detail()

    def order(self, order_id: int | None):
        return next((o for o in self.orders if o.id == order_id), None)

    def _show_detail(self) -> None:
        p = self.p2p_order(self.selected)
        self.details.setCurrentWidget(self.p2p_detail if p is not None else self.detail)
        if p is not None:
            self.p2p_detail.show_order(p)
            return
        o = self.order(self.selected)
        if o is not None:
            self.detail.show_order(o)
        elif not self.orders:   # nothing to show (wallet locked, another network): no stale order
            self.detail.clear()

    # -- actions -----------------------------------------------------------------------------
    def repost_selected(self) -> None:
        o = self.order(self.selected)
        if o is None:
            return
        buyer = self._buyer
        self._chain.submit(lambda: buyer.repost(o.id), on_done=lambda _o: self.refresh(force=True),
                           on_error=lambda e: self.show_message(f"Not posted again: {e}", "error"))

    def choose_save_folder(self) -> None:
        o = self.order(self.selected)
        if o is None:
            return
        folder = choose_folder(self, self.folders, "copies", "Save a copy in (a new folder is made inside)")
        if folder:
            self.save_copy(o.id, folder / f"order-{o.id}-{'dataset' if o.kind == 'render' else 'model'}")

    def save_copy(self, order_id: int, dest: Path) -> None:
        buyer = self._buyer
        self._files.submit(lambda: buyer.fetch(order_id, dest),
                           on_done=lambda p: self.show_message(f"Saved a copy in {p}", "ok"),
                           on_error=lambda e: self.show_message(f"Not saved: {e}", "error"))

    def shutdown(self) -> None:
        self.timer.stop()
