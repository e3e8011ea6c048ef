"""The Jobs view: the queue and its history, cancel, and the selected job's detail (failure
reason, log, outputs, attempts: ui.job_detail) or, in the tab beside it, the transfers
(ui.transfers_view: results, inputs and models moved peer to peer, with progress bars). A
notice line over the table says what keeps the rig from the order market (`set_notice`,
e.g. no stake) and its fix. Announces jobs that fail while it watches
(`jobFailed`, for the tray's notices) and the number of active jobs (`activeJobs`)."""

from __future__ import annotations

import time

from ui.background import Background
from ui.job_detail import JobDetail
from ui.notify import format_ntk
from ui.qt import (QAbstractItemView, QBrush, QColor, QFrame, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSplitter, Qt,
                   QTableWidget, QTableWidgetItem, QTabWidget, QTimer, QVBoxLayout, QWidget, Signal)
from ui.widgets import page_heading, short_address

COLUMNS = ("Job", "Kind", "Buyer", "Reward", "Paid", "Device", "Progress", "Ran", "State", "Attempts", "Updated",
           "Reason")
STATE_COL = COLUMNS.index("State")
CANCELLABLE = {"queued", "running", "paused"}
STATE_COLORS = {"failed": "#c0392b", "cancelled": "#7f8c8d", "succeeded": "#27ae60", "running": "#2f80ed",
                "paused": "#e67e22"}


def _ago(ts: float, now: float) -> str:
    s = max(0, int(now - ts))
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 86400:
        return f"{s // 3600} h ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


class JobsView(QWidget):
    jobFailed = Signal(str, str)   # job id, reason: a job failed while the view watched
    activeJobs = Signal(int)       # running + paused jobs, after each refresh
    noticeAction = Signal()        # the notice's button was clicked (e.g. "Stake…")

    def __init__(self, *, jobs, runner: Background, interval_s: float = 2.0, open_url=None, transfers=None,
                 parent=None):
        """open_url(path): opens an outputs folder (default: the desktop's file manager);
        transfers: a widget shown in the Transfers tab beside the job detail (None: no tab)."""
        super().__init__(parent)
        self._states: dict[str, str] | None = None
        self._service = jobs
        self._runner = runner
        self._in_flight = False
        self.rows: list[dict] = []

        title, self.summary = page_heading("Jobs")
        self.cancel_button = QPushButton("Cancel job")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_selected)
        head = QHBoxLayout()
        titles = QVBoxLayout()
        titles.addWidget(title)
        titles.addWidget(self.summary)
        head.addLayout(titles, 1)
        head.addWidget(self.cancel_button)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for c in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.empty = QLabel("No jobs yet. Jobs this rig claims from the market, and jobs run from the command line, "
                            "show here.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("color: palette(placeholder-text);")
        self.detail = JobDetail(jobs=jobs, runner=runner, open_url=open_url)
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.notice_button = QPushButton()  # the fix, where the app has one (e.g. "Stake…")
        self.notice_button.clicked.connect(lambda: self.noticeAction.emit())
        self.notice_frame = QFrame()
        self.notice_frame.setObjectName("jobsNotice")
        self.notice_frame.setStyleSheet("#jobsNotice { background: rgba(230,126,34,0.16); border-radius: 6px; }")
        nl = QHBoxLayout(self.notice_frame)
        nl.setContentsMargins(8, 4, 8, 4)
        nl.addWidget(self.notice, 1)
        nl.addWidget(self.notice_button)
        self.notice_frame.setVisible(False)
        self.transfers = transfers
        self.lower = QTabWidget()
        self.lower.addTab(self.detail, "Job detail")
        if transfers is not None:
            self.lower.addTab(transfers, "Transfers")
        split = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.table)
        tl.addWidget(self.empty)
        split.addWidget(top)
        split.addWidget(self.lower)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setChildrenCollapsible(False)
        split.setSizes([220, 380])  # the detail (log, thumbnails) gets the larger part

        box = QVBoxLayout(self)
        box.addLayout(head)
        box.addWidget(self.notice_frame)
        box.addWidget(split, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(int(interval_s * 1000))
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        QTimer.singleShot(0, self.refresh)

    def set_notice(self, text: str | None, action: str | None = None) -> None:
        """One line over the table (what keeps the rig from earning, and its fix); None hides it.
        `action`: a button beside it (its click: `noticeAction`)."""
        self.notice.setText(text or "")
        self.notice_frame.setVisible(bool(text))
        self.notice_button.setText(action or "")
        self.notice_button.setVisible(bool(text and action))

    def show_transfers(self) -> None:
        if self.transfers is not None:
            self.lower.setCurrentWidget(self.transfers)

    def refresh(self) -> None:
        if self._in_flight:
            return
        self._in_flight = True
        self._runner.submit(self._service.jobs, on_done=self._apply, on_error=self._failed)

    def _failed(self, err: BaseException) -> None:
        self._in_flight = False
        self.summary.setText(f"Could not read the job queue: {err}")

    def _apply(self, rows: list[dict]) -> None:
        self._in_flight = False
        states = {r["id"]: r["state"] for r in rows}
        if self._states is not None:
            for r in rows:
                if r["state"] == "failed" and self._states.get(r["id"]) != "failed":
                    self.jobFailed.emit(r["id"], r["reason"] or "")
        self._states = states
        self.activeJobs.emit(sum(1 for r in rows if r["state"] in ("running", "paused")))
        selected = self.selected_id()
        self.rows = rows
        now = time.time()
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            buyer, reward = r.get("buyer"), r.get("reward_wei")
            values = (r["id"], r["kind"], short_address(buyer) if buyer else "–" if r["id"].startswith(("market-", "order-")) else "local",
                      f"{format_ntk(reward)} NTK" if reward is not None else "–", _paid_text(r),
                      r.get("device") or "–", _progress_text(r.get("progress")), duration_text(r.get("run_s")),
                      r["state"], str(r["attempts"]), _ago(r["updated_at"], now), r["reason"] or "")
            for c, v in enumerate(values):
                item = QTableWidgetItem(v)
                if c == STATE_COL and r["state"] in STATE_COLORS:
                    item.setForeground(_color(STATE_COLORS[r["state"]]))
                if c == 2 and buyer:
                    item.setToolTip(buyer)
                elif c == 0 and r.get("market_job") is not None:
                    item.setToolTip(f"market job #{r['market_job']}")
                elif c == 0 and r.get("order"):
                    o = r["order"]
                    item.setToolTip(f"order-market order {o['ref']}, shard {o['shard']}: {o['stage']}")
                elif c == len(COLUMNS) - 1 and v:
                    item.setToolTip(v)
                if COLUMNS[c] in ("Reward", "Progress", "Ran"):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if COLUMNS[c] == "Paid" and r.get("payment") == "paid":
                    item.setForeground(_color(STATE_COLORS["succeeded"]))
                self.table.setItem(i, c, item)
            if r["id"] == selected:
                self.table.selectRow(i)
        self.table.setVisible(bool(rows))
        self.empty.setVisible(not rows)
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["state"]] = counts.get(r["state"], 0) + 1
        self.summary.setText(" · ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "empty queue")
        self._selection_changed()

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.text() if item else None

    def _selection_changed(self) -> None:
        job_id = self.selected_id()
        row = next((r for r in self.rows if r["id"] == job_id), None)
        self.cancel_button.setEnabled(bool(row and row["state"] in CANCELLABLE and not row["cancel_requested"]))
        self.detail.show_job(row)

    def cancel_selected(self) -> None:
        job_id = self.selected_id()
        if job_id is None:
            return
        self.cancel_button.setEnabled(False)
        self._runner.submit(lambda: self._service.cancel(job_id), on_done=lambda _: self.refresh(),
                            on_error=self._failed)


def duration_text(seconds: float | None) -> str:
    """How long a job ran: "42 s", "3 min 05 s", "1 h 02 min"; "–" before it ran."""
    if seconds is None:
        return "–"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _paid_text(r: dict) -> str:
    """Whether a market job was paid (and when); "–" for local jobs and jobs not delivered yet."""
    p = r.get("payment")
    if p == "paid" and r.get("paid_at"):
        return "paid " + time.strftime("%H:%M", time.localtime(r["paid_at"]))
    return p or "–"


def _progress_text(p: float | None) -> str:
    return "–" if p is None else f"{max(0.0, min(1.0, p)) * 100:.0f} %"


def _color(name: str):
    return QBrush(QColor(name))
