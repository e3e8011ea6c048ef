"""The Orders page's peer-to-peer part: the order market's orders (app.p2p_orders.P2POrder) as
rows of the Orders table and, when one is selected, its shards (state, miner, the reason of a
rejection) with "Save dataset…" once every shard is verified and unsealed, and then the dataset
itself (its frames with their boxes, the shards shown merged: ui.dataset_browser).

Plain widgets over plain data: the Orders view (ui.orders_view) reads the orders on its chain
runner and hands them here; saving goes through the view's files runner.
"""

from __future__ import annotations

from pathlib import Path

from app.amounts import ntk_text
from app.p2p_orders import P2POrder
from ui.background import Background
from ui.dataset_browser import DatasetBrowser
from ui.file_dialogs import choose_folder
from ui.qt import (QAbstractItemView, QColor, QComboBox, QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton,
                   QStackedWidget, Qt, QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget, Signal)
from ui.widgets import muted, short_address

GOOD, BAD, BUSY = "#27ae60", "#d64545", "#2f80ed"
P2P = "p2p"


def progress_cell(t, row: int, col: int, done: int, total: int) -> None:
    """A "k/n verified" bar in a table cell (one per row, made once and reused)."""
    bar = t.cellWidget(row, col)
    if not isinstance(bar, QProgressBar):
        bar = QProgressBar()
        bar.setMaximumHeight(18)
        t.setCellWidget(row, col, bar)
    bar.setRange(0, max(1, total))
    bar.setValue(done)
    bar.setFormat(f"{done}/{total} verified")


def p2p_key(order_id: int) -> str:
    """A P2P order's key in the Orders table and `OrdersView.selected` ("p2p:3"; job-market orders: their int id)."""
    return f"{P2P}:{order_id}"


MARKETS = (("peer to peer (order market)", P2P), ("job market", "jobs"))

SHARD_TEXT = {
    "open": "open: waiting for a miner",
    "granted": "granted: the miner is confirming",
    "confirmed": "confirmed: rendering",
    "fetching": "fetching the result",
    "verifying": "verifying samples",
    "paid": "paid: waiting for the key",
    "done": "done: verified",
    "rejected": "rejected",
}
TRAIN_SHARD_TEXT = {
    "confirmed": "confirmed: training",
    "fetching": "fetching the model card and weights",
    "verifying": "checking the model on the held-out images",
    "done": "done: checked and unsealed",
}
SHARD_COLOUR = {"done": GOOD, "rejected": BAD, "fetching": BUSY, "verifying": BUSY, "paid": BUSY}
ORDER_COLOUR = {"done": GOOD, "rejected": BAD, "refunded": BAD}


def row_values(o: P2POrder) -> list[str | None]:
    """The Orders table's cells for a P2P order (None: the progress bar's cell)."""
    budget = ntk_text(o.reward_each_wei * len(o.shards)) if o.reward_each_wei else f"{len(o.shards)} shards"
    return [str(o.id), o.name, "model · P2P" if o.train is not None else "dataset · P2P", o.state, None, budget]


def train_text(o: P2POrder) -> str:
    """A train order's terms and, once checked, its figures, in a line or two."""
    t = o.train
    epochs = f", {t.epochs} epochs" if t.epochs else ""
    least = f", least {t.least_text()}" if t.min_metric is not None else ""
    terms = (f"{t.arch}{epochs} on {t.images} images ({len(t.classes)} classes); {t.holdout_images} held-out images "
             f"kept here; tolerance {t.tolerance:g}{least}.")
    if t.measured is not None:
        verdict = "passed" if t.passed else "failed"
        terms += f" Checked: {t.figures()}, {verdict}."
    if o.state == "done":
        terms += " The verified model is unsealed: save it."
        if t.model_dir:
            terms += f"\nModel folder: {t.model_dir}"
    elif o.state == "refunded":
        terms += " Nobody delivered by the deadline: the reward was refunded."
    elif o.state != "rejected":
        terms += " The app serves your order desk and the training data to the miner while it runs."
    return terms


class P2PDetail(QWidget):
    """One P2P order: a line about it, a row per shard, Save dataset…, and once every shard of
    a render order is verified and unsealed its dataset (read on `runner`, the files runner)."""

    saveRequested = Signal(int)
    transfersRequested = Signal()

    def __init__(self, *, runner: Background, parent=None):
        super().__init__(parent)
        self.order: P2POrder | None = None
        self._shown_dataset: tuple[str, ...] = ()
        self.title = QLabel()
        f = self.title.font()
        f.setBold(True)
        self.title.setFont(f)
        self.note = muted(QLabel())
        self.note.setWordWrap(True)
        self.save_button = QPushButton("Save dataset…")
        self.save_button.setToolTip("Merge the verified shards into one dataset folder")
        self.save_button.clicked.connect(lambda: self.order is not None and self.saveRequested.emit(self.order.id))
        self.transfers_button = QPushButton("Transfers…")
        self.transfers_button.setToolTip("What is being sent and fetched, with progress (Jobs → Transfers)")
        self.transfers_button.clicked.connect(self.transfersRequested)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.transfers_button)
        head.addWidget(self.save_button)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Shard", "State", "Miner", "Reason"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        hh = self.table.horizontalHeader()
        for c in (0, 1, 2):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.results = QStackedWidget()
        self.results_none = muted(QLabel("The dataset shows here once every shard is verified and unsealed."))
        self.results_none.setWordWrap(True)
        self.results_none.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.browser = DatasetBrowser(runner=runner)
        self.results.addWidget(self.results_none)
        self.results.addWidget(self.browser)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.table, "Shards")
        self.tabs.addTab(self.results, "Dataset")
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(head)
        box.addWidget(self.note)
        box.addWidget(self.tabs, 1)

    def show_order(self, o: P2POrder) -> None:
        self.order = o
        train = o.train is not None
        self.title.setText(f"Order {o.id} · {'a model: ' if train else ''}{o.name} · peer to peer")
        self.save_button.setText("Save model…" if train else "Save dataset…")
        self.save_button.setToolTip("Copy the verified model (card, weights, curves) to a folder" if train
                                    else "Merge the verified shards into one dataset folder")
        if train:
            self.note.setText(train_text(o))
            self.note.setToolTip(f"Classes: {', '.join(o.train.classes)}" if o.train.classes else "")
        else:
            frames = f"{o.count} frames in " if o.count else ""
            tail = {"done": "every shard is verified and unsealed: save the dataset.",
                    "refunded": "what nobody delivered by the deadline was refunded.",
                    }.get(o.state, "the app serves your order desk and inputs to miners while it runs.")
            self.note.setText(f"{frames}{len(o.shards)} shard(s), {o.done} done; {tail}")
            self.note.setToolTip("")
        self.save_button.setEnabled(o.done == len(o.shards))
        t = self.table
        t.setRowCount(len(o.shards))
        for r, s in enumerate(o.shards):
            text = TRAIN_SHARD_TEXT.get(s.state) if train else None
            cells = (str(s.shard), text or SHARD_TEXT.get(s.state, s.state),
                     short_address(s.miner) if s.miner else "–", s.reason)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 1 and s.state in SHARD_COLOUR:
                    item.setForeground(QColor(SHARD_COLOUR[s.state]))
                if c == 2 and s.miner:
                    item.setToolTip(s.miner)
                if c == 3 and s.reason:
                    item.setToolTip(s.reason)
                t.setItem(r, c, item)
        self._show_dataset(o)

    def _show_dataset(self, o: P2POrder) -> None:
        """A finished render order's frames with their boxes, its shards merged (read once per order)."""
        train = o.train is not None
        self.tabs.setTabVisible(1, not train)   # a model's card and folder: the note above, Save model…
        dirs = tuple(s.result_dir for s in o.shards) if not train and o.state == "done" else ()
        if dirs == self._shown_dataset:
            return
        self._shown_dataset = dirs
        if dirs:
            self.results.setCurrentWidget(self.browser)
            self.browser.load([Path(d) for d in dirs])
        else:
            self.results.setCurrentWidget(self.results_none)


class P2PPosting:
    """The Orders view's P2P half (mixed into ui.orders_view.OrdersView): the market choice
    on the dataset form, posting (cost on the chain runner, confirmation, post on the chain
    runner), the P2P rows of the Orders table, and saving a finished order's dataset (files runner). Uses the view's `_p2p`
    (app.p2p_orders.P2POrders or None), `_chain`, `_files`, `show_message`, `_confirm`."""

    _market_touched = False

    def _market_row(self, form) -> None:
        self.market_combo = QComboBox()
        for text, key in MARKETS:
            self.market_combo.addItem(text, key)
        self.market_combo.setToolTip("Peer to peer: one escrow for the order, shards paid with signed vouchers "
                                     "and results sent straight from the miner to you (no shared folder). "
                                     "Job market: one on-chain job per shard.")
        self.market_combo.activated.connect(lambda _i: setattr(self, "_market_touched", True))
        self.market_combo.currentIndexChanged.connect(lambda _i: self._market_changed())
        form.addRow("Market:", self.market_combo)
        self.market_combo.setCurrentIndex(0)  # peer to peer unless the network has no order market (the session says)
        if self._p2p is None:
            self.market_combo.setVisible(False)
            form.labelForField(self.market_combo).setVisible(False)

    def _market_changed(self) -> None:
        """A peer-to-peer order is named by its scene: the Name field is for the job market."""
        name = getattr(self, "name_edit", None)
        if name is not None:
            p2p = self.market_choice() == P2P
            name.setEnabled(not p2p)
            name.setPlaceholderText("the scene's name" if p2p else "optional")

    def market_choice(self) -> str:
        return self.market_combo.currentData() if self._p2p is not None else "jobs"

    def _set_p2p_available(self, available: bool | None) -> None:
        """The network has an order market (True), has none (False), or is not known yet (None):
        the dataset and training forms' market choices follow (the same rule for both)."""
        for combo, touched in ((self.market_combo, self._market_touched),
                               (self.train_market_combo, self._train_market_touched)):
            item = combo.model().item(0)
            item.setEnabled(available is not False)
            if available is False and combo.currentIndex() == 0:
                combo.setCurrentIndex(1)
            elif available and not touched:  # the session's default, until the user picks
                want = 0 if self._p2p.by_default() else 1
                if combo.currentIndex() != want:
                    combo.setCurrentIndex(want)

    def _post_p2p(self, scene, kw: dict, each: int, total: int) -> None:
        p2p, buyer = self._p2p, self._buyer
        args = dict(count=kw["count"], shards=kw["shards"], reward_each_wei=each, deadline_s=kw["deadline_s"],
                    review_window_s=kw["review_window_s"])

        checked = []

        def cost():   # chain thread
            from app.orders.render import render_order
            from app.orders.sampling import too_small_to_sample

            checked.append(p2p.scene(scene))   # a bad scene is said before any cost
            job, _ = render_order(checked[0], count=args["count"])
            if why := too_small_to_sample(job, args["shards"]):   # so are shards too small to sample
                raise ValueError(f"{why}: use fewer shards or more images")
            self._check_funds(buyer, total)
            return p2p.cost(args["shards"], each)

        def post():   # chain thread
            return p2p.post_render(checked[0], **args)

        def confirm(breakdown) -> None:
            self._confirm(breakdown, f"Post for {breakdown.total_text()}",
                          lambda: self._chain.submit(post, on_done=self._p2p_posted, on_error=failed),
                          self.post_dataset_button)

        def failed(e: BaseException) -> None:
            self._post_failed(ValueError(_one_line(e)), self.dataset_error)

        self._chain.submit(cost, on_done=confirm, on_error=failed)

    def _p2p_posted(self, order_id: int) -> None:
        self.post_dataset_button.setEnabled(True)
        self.show_message(f"Order {order_id} posted on the order market: its escrow waits for miners; this app "
                          "serves your order desk while it runs.", "ok")
        self.selected = p2p_key(order_id)
        self.p2pPosted.emit(order_id)
        self.refresh(force=True)

    def p2p_order(self, key):
        return next((o for o in self.p2p_orders if p2p_key(o.id) == key), None)

    def _fill_p2p_row(self, r: int, o) -> None:
        t = self.table
        key = p2p_key(o.id)
        for c, v in enumerate(row_values(o)):
            if v is None:
                continue
            item = QTableWidgetItem(v)
            item.setData(Qt.ItemDataRole.UserRole, key)
            if c == 3 and o.state in ORDER_COLOUR:
                item.setForeground(QColor(ORDER_COLOUR[o.state]))
            t.setItem(r, c, item)
        progress_cell(t, r, 4, o.done, len(o.shards))
        if key == self.selected:
            t.selectRow(r)

    def save_p2p(self, order_id: int) -> None:
        o = self.p2p_order(p2p_key(order_id))
        if o is not None and o.train is not None:
            self.save_p2p_model_to(order_id)
            return
        folder = choose_folder(self, self.folders, "copies", "Save the dataset in (a new folder is made inside)")
        if folder:
            self.save_p2p_dataset(order_id, folder / f"order-{order_id}-p2p-dataset")

    def save_p2p_dataset(self, order_id: int, dest) -> None:
        p2p = self._p2p
        self._files.submit(lambda: p2p.save_dataset(order_id, dest),
                           on_done=lambda p: self.show_message(f"Saved the dataset of order {order_id} in {p}", "ok"),
                           on_error=lambda e: self.show_message(f"Not saved: {_one_line(e)}", "error"))


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__
