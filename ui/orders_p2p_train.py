"""The Orders page's training form on the order market (peer to peer): train on a finished P2P
dataset order picked in a list or on a folder, hold out a share of it (or another order or
folder) that stays on this computer, set the least metric paid for (required, prefilled
DEFAULT_LEAST_METRIC); too few held-out images for the automatic tolerance are refused before
any cost is asked (app.orders.train.train_terms); the cost (escrow + network fee,
app.order_fees.post_fee) is confirmed before posting. Mixed into ui.orders_view.OrdersView
with ui.orders_p2p.P2PPosting; uses the view's `_p2p`, `_chain`, `_files`, `_confirm`,
`show_message`, `_post_failed`, `_check_funds`.

Threading: the data is read and checked on the files runner, the cost and the post on the
chain runner; widgets are touched only in their callbacks (on the GUI thread).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ui.file_dialogs import choose_folder
from ui.orders_p2p import MARKETS, P2P, _one_line, p2p_key
from ui.qt import QComboBox, QDoubleSpinBox, QHBoxLayout, QLineEdit, QPushButton, QWidget

FOLDER, SHARE = "folder", "share"
"""The choices beside finished orders: a folder on this computer; a share of the data held out."""
DEFAULT_LEAST_METRIC = 0.5
"""The least metric the form starts with (mAP@0.5 0.50: most objects found); the buyer may change it."""


def _folder_row(parent, browse_title: str):
    """(row widget, line edit): a folder path with its Browse… button."""
    edit = QLineEdit()
    edit.setPlaceholderText("a COCO dataset folder")
    edit.textChanged.connect(edit.setToolTip)   # the whole path, where the field shows its end
    button = QPushButton("Browse…")
    row = QWidget()
    box = QHBoxLayout(row)
    box.setContentsMargins(0, 0, 0, 0)
    box.addWidget(edit, 1)
    box.addWidget(button)

    def browse() -> None:
        folder = choose_folder(parent, parent.folders, "datasets", browse_title)
        if folder:
            edit.setText(str(folder))

    button.clicked.connect(browse)
    return row, edit


class P2PTraining:
    """See the module docstring."""

    _train_market_touched = False

    def _train_market_row(self, form) -> None:
        self.train_market_combo = QComboBox()
        for text, key in MARKETS:
            self.train_market_combo.addItem(text, key)
        self.train_market_combo.setToolTip("Peer to peer: one escrow; the model is trained on a finished peer-to-peer "
                                           "dataset order or a folder and checked here, on images the miner never "
                                           "sees. Job market: a training job on job-market dataset orders.")
        self.train_market_combo.activated.connect(lambda _i: setattr(self, "_train_market_touched", True))
        form.addRow("Market:", self.train_market_combo)
        self.train_market_combo.setCurrentIndex(0)  # peer to peer unless the network has no order market
        if self._p2p is None:
            form.setRowVisible(self.train_market_combo, False)

    def _p2p_train_rows(self, form) -> None:
        """The peer-to-peer rows, placed after "Held out:" (the folders, the share) by the caller."""
        self.data_folder_row, self.data_folder_edit = _folder_row(self, "Train on the dataset in")
        self.holdout_folder_row, self.holdout_folder_edit = _folder_row(self, "Hold out the dataset in")
        self.holdout_share_spin = QDoubleSpinBox()
        self.holdout_share_spin.setRange(5, 90)
        self.holdout_share_spin.setDecimals(0)
        self.holdout_share_spin.setValue(30)
        self.holdout_share_spin.setSuffix(" %")
        self.holdout_share_spin.setToolTip("Kept on this computer to check the model; never sent to the miner")
        self.min_metric_spin = QDoubleSpinBox()
        self.min_metric_spin.setRange(0.01, 1)   # required: a card's own figure is the miner's, so 0 would pay any model
        self.min_metric_spin.setDecimals(2)
        self.min_metric_spin.setSingleStep(0.05)
        self.min_metric_spin.setValue(DEFAULT_LEAST_METRIC)
        self.min_metric_spin.setToolTip("Required: the least mAP@0.5 (detectors) or accuracy (classifiers) the "
                                        "model must measure on your held-out images to be paid. The model card's "
                                        "figure is the miner's own; this is the bar you set. 0.50: a detector that "
                                        "finds most objects; raise it for a better model (fewer miners can meet it).")

    def _p2p_train_widgets(self):
        return (self.data_folder_row, self.holdout_share_spin, self.holdout_folder_row, self.min_metric_spin)

    def train_market_choice(self) -> str:
        return self.train_market_combo.currentData() if self._p2p is not None else "jobs"

    def _train_market_changed(self) -> None:
        self._fill_train_choices()
        self._update_train_rows()

    def _update_train_rows(self) -> None:
        """Show the rows of the chosen market (the folders and the share only where chosen)."""
        form, p2p = self.train_form_layout, self.train_market_choice() == P2P
        form.setRowVisible(self.data_folder_row, p2p and self.data_combo.currentData() == FOLDER)
        form.setRowVisible(self.holdout_share_spin, p2p and self.holdout_combo.currentData() == SHARE)
        form.setRowVisible(self.holdout_folder_row, p2p and self.holdout_combo.currentData() == FOLDER)
        form.setRowVisible(self.min_metric_spin, p2p)
        self.train_note.setText(
            "The model is checked here on the held-out images (never sent) and is paid only if it reaches the least "
            "metric there and its card's metric within the tolerance. Automatic tolerance needs enough held-out "
            "images (otherwise name one)." if p2p else
            "Posted when its data is verified; the model must reproduce its card's metric on the held-out data, "
            "within the tolerance, to be paid.")

    def _fill_p2p_train_choices(self) -> None:
        """Finished P2P dataset orders, then a folder (data); a share, the orders, a folder (held out)."""
        done = self._p2p.finished_renders(self.p2p_orders)
        for combo, first in ((self.data_combo, None), (self.holdout_combo, ("a share of the data", SHARE))):
            keep = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            if first:
                combo.addItem(*first)
            for o in reversed(done):
                combo.addItem(f"#{o.id} {o.name} ({o.count} frames, peer to peer)", p2p_key(o.id))
            combo.addItem("a folder on this computer…", FOLDER)
            i = combo.findData(keep)
            combo.setCurrentIndex(i if i >= 0 else 0)
            combo.blockSignals(False)

    @staticmethod
    def _choice(key, edit: QLineEdit):
        """A combo's choice as what P2POrders.check_train takes: "p2p:N", a folder Path, or None."""
        if key == FOLDER:
            text = edit.text().strip()
            return Path(text) if text else None
        return key if isinstance(key, str) and key.startswith(f"{P2P}:") else None

    def _post_p2p_train(self, params: dict, reward: int, deadline_s: int, review_s: int,
                        tolerance: float | None) -> None:
        p2p, buyer = self._p2p, self._buyer
        data = self._choice(self.data_combo.currentData(), self.data_folder_edit)
        hold_key = self.holdout_combo.currentData()
        held = None if hold_key == SHARE else self._choice(hold_key, self.holdout_folder_edit)
        if data is None or (hold_key != SHARE and held is None):
            which = "to train on" if data is None else "to hold out"
            self._post_failed(ValueError(f"choose a finished dataset order or a folder {which}"), self.train_error)
            return
        share = self.holdout_share_spin.value() / 100
        least = round(self.min_metric_spin.value(), 4)
        checked = []

        def cost():   # chain thread: the data is read and checked before any cost is asked
            checked.append(p2p.check_train([data], params=params, holdout=[held] if held is not None else None,
                                           holdout_fraction=share, tolerance=tolerance, min_metric=least))
            self._check_funds(buyer, reward)
            return p2p.train_cost(reward)

        def post():   # chain thread
            return p2p.post_train(checked[0], reward_wei=reward, deadline_s=deadline_s, review_window_s=review_s)

        def failed(e: BaseException) -> None:
            self._post_failed(ValueError(_one_line(e)), self.train_error)

        def confirm(breakdown) -> None:
            inputs = checked[0]
            kept = (f"{round(share * 100)} % of it held out here" if inputs.holdout is None
                    else "the held-out data kept here")
            self.show_message(f"A model on {inputs.images} images ({len(inputs.classes)} classes), {kept}.")
            breakdown = replace(breakdown, notes=(inputs.check_text(), *breakdown.notes))
            self._confirm(breakdown, f"Post for {breakdown.total_text()}",
                          lambda: self._chain.submit(post, on_done=self._p2p_train_posted, on_error=failed),
                          self.post_train_button)

        self._chain.submit(cost, on_done=confirm, on_error=failed)

    def _p2p_train_posted(self, order_id: int) -> None:
        self.post_train_button.setEnabled(True)
        self.show_message(f"Training order {order_id} posted on the order market: its reward waits in escrow; the "
                          "model is checked here on the held-out images before it is paid.", "ok")
        self.selected = p2p_key(order_id)
        self.p2pPosted.emit(order_id)
        self.refresh(force=True)

    def save_p2p_model_to(self, order_id: int) -> None:
        folder = choose_folder(self, self.folders, "copies", "Save the model in (a new folder is made inside)")
        if folder:
            self.save_p2p_model(order_id, folder / f"order-{order_id}-p2p-model")

    def save_p2p_model(self, order_id: int, dest) -> None:
        p2p = self._p2p
        self._files.submit(lambda: p2p.save_model(order_id, dest),
                           on_done=lambda p: self.show_message(f"Saved the model of order {order_id} in {p}", "ok"),
                           on_error=lambda e: self.show_message(f"Not saved: {_one_line(e)}", "error"))
