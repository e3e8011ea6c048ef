"""The Wallet view's History tab (`WalletView` inherits it): the table of the account's
transfers and market events in words, its filters (direction, kind, search) and CSV export of
the rows shown. Split out of `ui.wallet_view`; `self.rows`, `self._runner` and `self.folders`
are the view's.
"""

from __future__ import annotations

from pathlib import Path

from app.account import HistoryFilter, HistoryRow, export_csv, filter_rows
from app.amounts import format_amount
from ui.file_dialogs import save_file
from ui.qt import (
    QAbstractItemView, QColor, QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, Qt,
    QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)
from ui.wallet_dialogs import ETH_DECIMALS, muted


EVENT_TEXT = {"JobPosted": "Job posted (escrow)", "JobClaimed": "Job claimed (stake)", "ResultSubmitted": "Result submitted",
              "JobAccepted": "Job accepted", "JobRejected": "Job rejected", "PaymentReleased": "Payment released",
              "JobRefunded": "Job refunded", "ModelListed": "Model listed", "EthSent": "Sent ETH",
              "StakeDeposited": "Staked (order market)", "UnstakeRequested": "Unstake started",
              "StakeWithdrawn": "Stake withdrawn"}


def event_text(r: HistoryRow) -> str:
    """A history row's event in words (the CSV keeps the contract's event names)."""
    if r.event == "Transfer":
        return {"in": "Received", "out": "Sent", "self": "Sent to yourself"}.get(r.direction, "Transfer")
    if r.event == "ModelPurchased":
        return "Model sold" if r.direction == "in" else "Model bought"
    return EVENT_TEXT.get(r.event, r.event)


INCOMING_COLOR = "#2e9e5b"  # reads on light and dark backgrounds


class WalletHistory:
    """Mixin of `WalletView`: the History tab, its filters and its export."""

    def _history_tab(self) -> QWidget:
        w = QWidget()
        box = QVBoxLayout(w)
        bar = QHBoxLayout()
        self.direction_combo = QComboBox()
        for text, value in (("In and out", "all"), ("Received", "in"), ("Sent", "out")):
            self.direction_combo.addItem(text, value)
        self.kind_combo = QComboBox()
        for text, value in (("All kinds", "all"), ("Token transfers", "transfer"), ("Job payments", "job"),
                            ("Model market", "model")):
            self.kind_combo.addItem(text, value)
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search address, tx, job…")
        self.search_edit.setClearButtonEnabled(True)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self.export_clicked)
        for wid in (self.direction_combo, self.kind_combo):
            wid.currentIndexChanged.connect(self.apply_filter)
            bar.addWidget(wid)
        self.search_edit.textChanged.connect(self.apply_filter)
        bar.addWidget(self.search_edit, 1)
        bar.addWidget(self.export_button)
        box.addLayout(bar)
        self.history_table = QTableWidget(0, 5)
        self.history_table.setHorizontalHeaderLabels(["Time", "What", "Amount", "With", "Block"])
        self.history_table.verticalHeader().setVisible(False)
        self.history_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.history_table.setAlternatingRowColors(True)
        self.history_table.setShowGrid(False)
        hh = self.history_table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        box.addWidget(self.history_table, 1)
        self.history_status = QLabel()
        muted(self.history_status)
        box.addWidget(self.history_status)
        return w

    # -- history ---------------------------------------------------------------------------
    def current_filter(self) -> HistoryFilter:
        return HistoryFilter(self.direction_combo.currentData(), self.kind_combo.currentData(), self.search_edit.text())

    def apply_filter(self) -> None:
        self.shown_rows = filter_rows(self.rows, self.current_filter())
        t = self.history_table
        t.setRowCount(len(self.shown_rows))
        for i, r in enumerate(self.shown_rows):
            sign = {"in": "+", "out": "−"}.get(r.direction, "")
            amount = "" if r.amount_wei is None else \
                f"{sign}{format_amount(r.amount_wei, max_decimals=ETH_DECIMALS if r.asset == 'ETH' else None)} {r.asset}"
            what = event_text(r)
            if r.job_id is not None:
                what += f" · job {r.job_id}" if r.count == 1 else f" · {r.count} jobs from {r.job_id}"
            cells = [r.time_text, what, amount, r.counterparty_label, str(r.block)]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"tx {r.tx_hash}" + (f"\nwith {r.counterparty}" if r.counterparty else ""))
                if j in (2, 4):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if j == 2 and r.direction == "in":
                    item.setForeground(QColor(INCOMING_COLOR))
                t.setItem(i, j, item)
        n, total = len(self.shown_rows), len(self.rows)
        self.export_button.setEnabled(n > 0)  # nothing to export: the button cannot act
        self.history_status.setText(f"{n} of {total} entries" if n != total else f"{total} entries")

    def export_clicked(self) -> None:
        path = save_file(self, self.folders, "exports", "Export history as CSV", "kminer-history.csv", "CSV files (*.csv)")
        if path:
            self.export_history(path)

    def export_history(self, path: Path) -> None:
        """Write the rows shown (filters applied) as CSV, atomically, off the GUI thread."""
        rows = list(self.shown_rows)
        self._runner.submit(lambda: export_csv(rows, path),
                            on_done=lambda p: self.history_status.setText(f"Exported {len(rows)} entries to {p}"),
                            on_error=lambda e: self.history_status.setText(f"Export failed: {e}"))
