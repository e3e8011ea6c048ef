"""One buyer order in detail, below the Orders table: its state and terms, a shard per row
with its verification figures, the delivered dataset (images with boxes) or the trained
model's curves once everything is verified, and the activity log of the buyer's loop."""

from __future__ import annotations

import time
from pathlib import Path

from app.amounts import ntk_text
from ui.background import Background
from ui.dataset_browser import CurvesView, DatasetBrowser
from ui.qt import (
    QAbstractItemView, QColor, QHBoxLayout, QHeaderView, QLabel, QListWidget, QPushButton, QStackedWidget, Qt,
    QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget, Signal,
)
from ui.widgets import muted

STATE_TEXT = {"waiting": "waiting for its data", "posting": "posting…", "open": "open", "merging": "merging",
              "done": "done", "stalled": "stalled", "failed": "failed"}
GOOD, BAD, BUSY = "#27ae60", "#d64545", "#2f80ed"
SHARD_COLOUR = {"accepted": GOOD, "released": GOOD, "rejected": BAD, "refunded": BAD, "verifying": BUSY,
                "submitted": BUSY}
ACTIVITY_LINES = 300


def figures_text(kind: str, s) -> tuple[str, str]:
    """A shard's verification figures: (short text for the table, full sentence for its tooltip);
    ('', '') before any."""
    f = s.figures
    if not f:
        return ("verifying…", "The result is being checked in the sandbox") if s.state == "verifying" else ("", "")
    mark, verdict = ("✓", "Passed") if s.verified else ("✗", "FAILED")
    if "check" in f or "error" in f:
        why = f.get("check") or f.get("error")
        return f"{mark} {why}", f"{verdict}: {why}"
    if kind == "render" or "rgb_mad_max" in f:
        n = len(f.get("frames_checked") or [])
        mad, iou = f.get("rgb_mad_max"), f.get("box_iou_min")
        short = [f"{f.get('exact_matches', 0)}/{n} exact"]
        long = [f"{f.get('exact_matches', 0)} of {n} sampled frames re-rendered here exactly"]
        if isinstance(mad, (int, float)):
            short.append(f"MAD {mad:.2f}")
            long.append(f"largest mean pixel difference {mad:.2f} (0-255)")
        if isinstance(iou, (int, float)):
            short.append(f"IoU {iou:.3f}")
            long.append(f"smallest box IoU {iou:.3f}")
        return f"{mark} " + ", ".join(short), f"{verdict}: " + "; ".join(long)
    claimed, measured = f.get("claimed"), f.get("measured")
    if isinstance(claimed, (int, float)) and isinstance(measured, (int, float)):
        metric = {"map50": "mAP@0.5", "accuracy": "top-1"}.get(f.get("metric"), f.get("metric"))
        return (f"{mark} {metric} {measured:.3f} vs {claimed:.3f} claimed",
                f"{verdict}: {metric} measured {measured:.3f} on the held-out data, the card claims {claimed:.3f} "
                f"(gap {claimed - measured:+.3f}, tolerance {f.get('tolerance')})")
    return f"{mark} {f}", f"{verdict}: {f}"


class OrderDetail(QWidget):
    """The selected order; the buttons emit requests that the Orders view carries out."""

    repostRequested = Signal()
    saveRequested = Signal()

    def __init__(self, *, runner: Background, parent=None):
        super().__init__(parent)
        self._shown_output: str | None = None
        self.detail_title = QLabel("Select an order to see its shards")
        f = self.detail_title.font()
        f.setBold(True)
        f.setPointSizeF(f.pointSizeF() * 1.15)
        self.detail_title.setFont(f)
        self.detail_reason = QLabel()
        self.detail_reason.setWordWrap(True)
        self.repost_button = QPushButton("Post failed shards again")
        self.repost_button.clicked.connect(self.repostRequested)
        self.save_button = QPushButton("Save a copy…")
        self.save_button.clicked.connect(self.saveRequested)
        self.shards = QTableWidget(0, 6)
        self.shards.setHorizontalHeaderLabels(["Shard", "Frames", "State", "Job", "Miner", "Verification"])
        self.shards.verticalHeader().setVisible(False)
        self.shards.verticalHeader().setDefaultSectionSize(24)
        self.shards.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.shards.horizontalHeader().setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.shards.horizontalHeaderItem(5).setToolTip(
            "Checked here before paying: sampled frames re-rendered (exact matches, largest mean pixel "
            "difference, smallest box IoU), or a model re-evaluated on held-out data")
        self.shards.setMinimumHeight(90)
        self.activity = QListWidget()
        self.activity.setMaximumHeight(90)
        self.results = QStackedWidget()
        self.results_none = muted(QLabel("The dataset or model shows here once every shard is verified."))
        self.results_none.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.browser = DatasetBrowser(runner=runner)
        self.curves = CurvesView(runner=runner)
        for x in (self.results_none, self.browser, self.curves):
            self.results.addWidget(x)
        tabs = QTabWidget()
        tabs.addTab(self.shards, "Shards")
        tabs.addTab(self.results, "Result")
        tabs.addTab(self.activity, "Activity")
        self.detail_tabs = tabs
        head = QHBoxLayout()
        head.addWidget(self.detail_title, 1)
        head.addWidget(self.repost_button)
        head.addWidget(self.save_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 6, 0, 0)
        box.addLayout(head)
        box.addWidget(self.detail_reason)
        box.addWidget(tabs, 1)
        self.repost_button.setVisible(False)
        self.save_button.setVisible(False)

    def add_activity(self, lines) -> None:
        """Newest first; the oldest beyond ACTIVITY_LINES are dropped."""
        for line in lines:
            self.activity.insertItem(0, f"{time.strftime('%H:%M:%S')}  {line}")
        while self.activity.count() > ACTIVITY_LINES:
            self.activity.takeItem(self.activity.count() - 1)

    def show_order(self, o) -> None:
        """Show order `o` (a BuyerService order): its state, shards with their figures, its result."""
        what = f"{o.params.get('count', '?')} images of “{o.params.get('scene_name', o.name)}”" if o.kind == "render" \
            else f"model {o.params.get('train', {}).get('arch', '')} on order(s) {', '.join(map(str, o.params.get('data', [])))}"
        self.detail_title.setText(f"Order {o.id} · {what} · {STATE_TEXT.get(o.state, o.state)}")
        due = time.strftime("%Y-%m-%d %H:%M", time.localtime(o.deadline)) if o.deadline else "not posted yet"
        text = f"{ntk_text(o.reward_each_wei)} per shard · due {due} · review window {o.review_window_s / 3600:g} h"
        if o.reason:
            text += f" · {o.reason}"
        self.detail_reason.setText(text)
        self.repost_button.setVisible(o.state == "stalled")
        self.save_button.setVisible(o.state == "done" and bool(o.output_dir))
        s_tab = self.shards
        s_tab.setRowCount(len(o.shards))
        for r, s in enumerate(o.shards):
            frames = f"{s.start}–{s.start + s.count - 1}" if s.count else "–"
            miner = f"{s.miner[:6]}…{s.miner[-4:]}" if s.miner else ""
            short, long = figures_text(o.kind, s)
            vals = [str(s.index), frames, s.state, str(s.job_id or ""), miner, short]
            for c, v in enumerate(vals):
                item = QTableWidgetItem(v)
                if c == 2 and s.state in SHARD_COLOUR:
                    item.setForeground(QColor(SHARD_COLOUR[s.state]))
                if c == 5 and s.figures:
                    item.setForeground(QColor(GOOD if s.verified else BAD))
                if c == 5 and long:
                    item.setToolTip(long + (f"\n{s.reason}" if s.reason else ""))
                if c == 4 and s.miner:
                    item.setToolTip(s.miner)
                s_tab.setItem(r, c, item)
        s_tab.resizeColumnsToContents()
        s_tab.horizontalHeader().setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        out = o.output_dir if o.state == "done" else None
        if out != self._shown_output:
            self._shown_output = out
            if out is None:
                self.results.setCurrentWidget(self.results_none)
            elif o.kind == "render":
                self.results.setCurrentWidget(self.browser)
                self.browser.load(Path(out))
            else:
                self.results.setCurrentWidget(self.curves)
                self.curves.load(Path(out))

    def clear(self) -> None:
        self.detail_title.setText("Select an order to see its shards")
        self.detail_reason.clear()
        self.repost_button.setVisible(False)
        self.save_button.setVisible(False)
        self.shards.setRowCount(0)
        self._shown_output = None
        self.results.setCurrentWidget(self.results_none)
