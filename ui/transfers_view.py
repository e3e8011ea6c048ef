"""What the transport serves and fetches, as a table with progress bars (the GUI face of
`kminer transfers`), for the Jobs and Orders pages to embed.

`TransfersPanel(transport_dir)` shows app.transfers.read_transfers (the node's status file,
read bounded and never raising) and refreshes every `interval_ms` while visible. Threading:
GUI thread only; a refresh reads one small local file (at most 8 MiB, usually a few kB).
"""

from __future__ import annotations

from pathlib import Path

from app.transfers import TransfersView, rate_text, read_transfers, size_text
from ui.qt import (QAbstractItemView, QHeaderView, QLabel, QProgressBar, QTableWidget, QTableWidgetItem, QTimer,
                   QVBoxLayout, QWidget)
from ui.wallet_dialogs import muted

COLUMNS = ("Role", "What", "For", "Progress", "Up", "Down", "Peers", "Served until")


class TransfersPanel(QWidget):
    def __init__(self, transport_dir: Path, parent=None, *, interval_ms: int = 1000):
        super().__init__(parent)
        self.transport_dir = Path(transport_dir)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        muted(self.summary)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        head.setSectionResizeMode(3, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(3, self.fontMetrics().horizontalAdvance("100.0% fetching") + 40)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.summary)
        box.addWidget(self.table, 1)
        self.view: TransfersView | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.refresh)
        self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._timer.start()

    def hideEvent(self, event) -> None:
        self._timer.stop()
        super().hideEvent(event)

    def refresh(self) -> None:
        v = self.view = read_transfers(self.transport_dir)
        if v.absent:
            self.summary.setText("Nothing served or fetched yet: the transport has not run in this home.")
        elif v.problem:
            self.summary.setText(f"The transport's status cannot be read: {v.problem}")
        else:
            cap = lambda b: rate_text(b) if b else "no cap"  # noqa: E731
            state = "Running" if v.running else "Not running (the last status is shown)"
            self.summary.setText(f"{state} · port {v.listen_port} · disk {size_text(v.used_bytes)} of "
                                 f"{size_text(v.quota_bytes)} · upload {cap(v.upload_cap_bytes_s)} · download "
                                 f"{cap(v.download_cap_bytes_s)}")
        rows = v.rows
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            cells = ("Serving" if r.role == "serve" else "Fetching", f"{r.kind} {r.name}".strip(),
                     r.reader or "anyone with the key", None, rate_text(r.up_bytes_s), rate_text(r.down_bytes_s),
                     str(r.peers), r.until_text if r.role == "serve" else "")
            for col, text in enumerate(cells):
                if text is None:
                    continue
                item = self.table.item(i, col)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(i, col, item)
                item.setText(text)
                if col == 1:
                    item.setToolTip(f"{r.name}\n{size_text(r.size_bytes)} · {r.info_hash}"
                                    + (f"\n{r.error}" if r.error else ""))
            bar = self.table.cellWidget(i, 3)
            if not isinstance(bar, QProgressBar):
                bar = QProgressBar()
                bar.setRange(0, 1000)
                self.table.setCellWidget(i, 3, bar)
            bar.setValue(int(round(r.progress * 1000)))
            bar.setFormat(f"{100 * r.progress:.1f}% {r.state}")
