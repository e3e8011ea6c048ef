"""What the transport serves and fetches, as a table with progress bars (the GUI face of
`kminer transfers`), for the Jobs and Orders pages to embed.

`TransfersTabs(paths.transport_dirs)` shows every node of the home, a tab per role (the
Jobs page's Transfers tab). `TransfersPanel(transport_dir)` shows app.transfers.read_transfers (the node's status file,
read bounded and never raising) and refreshes every `interval_ms` while visible. Threading:
GUI thread only; a refresh reads one small local file (at most 8 MiB, usually a few kB).
"""

from __future__ import annotations

from pathlib import Path

from app.transfers import TransfersView, rate_text, read_transfers, size_text
from ui.qt import (QAbstractItemView, QHeaderView, QLabel, QProgressBar, QTableWidget, QTableWidgetItem, QTabWidget,
                   QTimer, QVBoxLayout, QWidget)
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
            cells = ("Serving" if r.role == "serve" else "Fetching", f"{r.kind} {r.name} · {r.info_hash[:8]}".strip(),
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


ROLE_TEXT = {"miner": "Mining", "buyer": "Orders", "models": "Model market", "node": "Node"}
"""Tab titles of the transport nodes (app.orders.service.open_peer's roles)."""


class TransfersTabs(QWidget):
    """Every transport node of this home (AppPaths.transport_dirs: one per role), a tab each
    with its TransfersPanel; nodes that start later get their tab on the next look (every
    `interval_ms` while visible). GUI thread only (a directory listing and small reads)."""

    def __init__(self, dirs, parent=None, *, interval_ms: int = 1000):
        """dirs(): [(role, transport folder)], e.g. AppPaths.transport_dirs."""
        super().__init__(parent)
        self._dirs = dirs
        self._interval_ms = interval_ms
        self.panels: dict[str, TransfersPanel] = {}
        self.tabs = QTabWidget()
        self.empty = muted(QLabel("Nothing served or fetched yet: results, order inputs and models sent peer to "
                                  "peer show here with their progress."))
        self.empty.setWordWrap(True)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.empty)
        box.addWidget(self.tabs, 1)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.rescan)
        self.rescan()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.rescan()
        self._timer.start()

    def hideEvent(self, event) -> None:
        self._timer.stop()
        super().hideEvent(event)

    def rescan(self) -> None:
        try:
            found = list(self._dirs())
        except OSError:
            found = []
        for role, folder in found:
            if role not in self.panels:
                panel = TransfersPanel(folder, interval_ms=self._interval_ms)
                self.panels[role] = panel
                self.tabs.addTab(panel, ROLE_TEXT.get(role, role))
        for i in range(self.tabs.count()):
            panel = self.tabs.widget(i)
            n = len(panel.view.rows) if panel.view is not None else 0
            role = next(r for r, p in self.panels.items() if p is panel)
            self.tabs.setTabText(i, f"{ROLE_TEXT.get(role, role)} ({n})")
        self.tabs.setVisible(bool(self.panels))
        self.empty.setVisible(not self.panels)
