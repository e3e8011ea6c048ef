"""A job's detail on the Jobs page: its state and (prominently) why it failed, its attempts,
its log (what the worker printed, tracebacks), and its outputs: the files, thumbnails of the
images (render frames first), and a button that opens the unpacked outputs folder.

Everything is read through app.runtime.JobsService on the Jobs runner; thumbnails are
decoded and scaled there too (QImage is safe off the GUI thread), so the GUI thread only
places them. Reloads are cheap to ask for: `show_job(row)` skips work when nothing changed.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QImage, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit

from ui.background import Background
from ui.qt import (
    QFont, QFrame, QGridLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPixmap, QPushButton,
    QScrollArea, Qt, QTabWidget, QVBoxLayout, QWidget, Signal,
)

THUMB_PX = 150
FAILED_STYLE = ("background: rgba(192,57,43,0.14); border: 1px solid rgba(192,57,43,0.55); border-radius: 6px;"
                " padding: 8px;")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _thumbs(images: list[tuple[str, bytes]]) -> list[tuple[str, Any]]:
    """(name, QImage scaled to THUMB_PX) for the images that decode; runs on the runner thread."""
    out = []
    for name, data in images:
        img = QImage()
        if img.loadFromData(data) and not img.isNull():
            out.append((name, img.scaled(THUMB_PX, THUMB_PX, Qt.AspectRatioMode.KeepAspectRatio,
                                         Qt.TransformationMode.SmoothTransformation)))
    return out


class JobDetail(QWidget):
    folderOpened = Signal(str)   # the outputs folder that was opened
    loaded = Signal(str)         # job id whose detail is now shown

    def __init__(self, *, jobs, runner: Background, open_url=None, parent=None):
        """jobs: JobsService; runner: the Jobs runner. open_url(path) opens a folder in the file
        manager (default: QDesktopServices)."""
        super().__init__(parent)
        self._service = jobs
        self._runner = runner
        self._open_url = open_url or _open_in_file_manager
        self.job_id: str | None = None
        self._key: tuple | None = None
        self._outputs_sha: str | None = None

        self.title = QLabel("Select a job to see its log and outputs.")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.failure = QLabel()
        self.failure.setWordWrap(True)
        self.failure.setStyleSheet(FAILED_STYLE)
        self.failure.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.failure.setVisible(False)
        self.attempts_label = QLabel()
        self.attempts_label.setWordWrap(True)
        self.attempts_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.attempts_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.log_view.setFont(mono)
        self.log_view.setPlaceholderText("No log yet.")

        self.files = QListWidget()
        self.files.setAlternatingRowColors(True)
        self.open_button = QPushButton("Open folder")
        self.open_button.setToolTip("Unpack the outputs (checked against their hash) and open the folder")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_outputs)
        self.outputs_note = QLabel("No outputs.")
        self.thumb_box = QGridLayout()
        self.thumb_box.setSpacing(8)
        self.thumb_box.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        thumbs = QWidget()
        tb = QVBoxLayout(thumbs)
        tb.setContentsMargins(0, 0, 0, 0)
        tb.addLayout(self.thumb_box)
        tb.addStretch(1)
        thumb_scroll = QScrollArea()
        thumb_scroll.setWidgetResizable(True)
        thumb_scroll.setFrameShape(QFrame.Shape.NoFrame)
        thumb_scroll.setWidget(thumbs)
        self.thumb_labels: list[QLabel] = []
        outputs = QWidget()
        ol = QVBoxLayout(outputs)
        row = QHBoxLayout()
        row.addWidget(self.outputs_note, 1)
        row.addWidget(self.open_button)
        ol.addLayout(row)
        split = QHBoxLayout()
        split.addWidget(self.files, 2)
        split.addWidget(thumb_scroll, 3)
        ol.addLayout(split, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.log_view, "Log")
        self.tabs.addTab(outputs, "Outputs")
        attempts_scroll = QScrollArea()
        attempts_scroll.setWidgetResizable(True)
        attempts_scroll.setFrameShape(QFrame.Shape.NoFrame)
        attempts_scroll.setWidget(self.attempts_label)
        self.tabs.addTab(attempts_scroll, "Attempts")

        box = QVBoxLayout(self)
        box.setContentsMargins(0, 4, 0, 0)
        box.addWidget(self.title)
        box.addWidget(self.failure)
        box.addWidget(self.tabs, 1)
        self.tabs.setVisible(False)

    def text(self) -> str:
        """The attempts summary as plain-ish text (what the Attempts tab shows)."""
        return self.attempts_label.text()

    # ---- loading -------------------------------------------------------------------------
    def show_job(self, row: dict | None) -> None:
        """Show `row` (a JobsService.jobs() dict); reloads only when the job changed or runs."""
        if row is None:
            self.job_id, self._key = None, None
            self.title.setText("Select a job to see its log and outputs.")
            self.failure.setVisible(False)
            self.tabs.setVisible(False)
            return
        key = (row["id"], row["state"], row["attempts"], row["updated_at"], row.get("output_sha256"))
        if key == self._key and row["state"] not in ("running", "paused"):
            return
        self._key = key
        if row["id"] != self.job_id:
            self._outputs_sha = None
            self._clear_outputs()
        self.job_id = row["id"]
        job_id, svc = row["id"], self._service
        want_images = row.get("output_sha256") != self._outputs_sha

        def load() -> dict:
            out = {"row": row, "attempts": svc.attempts(job_id), "log": svc.log(job_id)}
            if want_images:
                out["outputs"] = svc.outputs(job_id)
                out["thumbs"] = _thumbs(svc.output_images(job_id))
            return out

        self._runner.submit(load, on_done=self._apply, on_error=self._failed)

    def _failed(self, err: BaseException) -> None:
        self.attempts_label.setText(f"Could not read this job: {html.escape(str(err))}")

    def _apply(self, d: dict) -> None:
        row = d["row"]
        if row["id"] != self.job_id:
            return  # the user picked another job meanwhile
        self.tabs.setVisible(True)
        self.title.setText(f"<b>{html.escape(row['id'])}</b> · {html.escape(row['kind'])} · {row['state']}")
        failed = row["state"] == "failed"
        self.failure.setVisible(failed or (row["state"] == "cancelled" and bool(row.get("reason"))))
        if self.failure.isVisibleTo(self):
            what = "Failed" if failed else "Cancelled"
            self.failure.setText(f"<b>{what}:</b> {html.escape(row.get('reason') or 'no reason given')}")
        lines = []
        for a in d["attempts"]:
            fp = f", first progress after {a['first_progress_s'] * 1000:.0f} ms" if a.get("first_progress_s") else ""
            where = a.get("device") or a["device_id"]
            lines.append(f"Attempt {a['n']}: {a['state']} on {where} ({a['sandbox']} sandbox){fp}"
                         + (f": {html.escape(a['reason'])}" if a.get("reason") else ""))
        self.attempts_label.setText("<br>".join(lines) or "Not started yet.")
        self._show_log(d["log"])
        if "outputs" in d:
            self._outputs_sha = row.get("output_sha256")
            self._show_outputs(d["outputs"], d["thumbs"])
        self.loaded.emit(row["id"])

    def _show_log(self, text: str) -> None:
        """Show the log; a log that only grew gets the new part appended (a running job's log
        is re-read every refresh), and the view follows the end if it was there."""
        bar = self.log_view.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 2
        old = self.log_view.toPlainText()
        if text == old:
            return
        if old and text.startswith(old):
            cur = QTextCursor(self.log_view.document())
            cur.movePosition(QTextCursor.MoveOperation.End)
            cur.insertText(text[len(old):])
        else:
            self.log_view.setPlainText(text)
        if at_end:
            bar.setValue(bar.maximum())

    def _clear_outputs(self) -> None:
        self.files.clear()
        for lab in self.thumb_labels:
            self.thumb_box.removeWidget(lab)
            lab.deleteLater()
        self.thumb_labels = []
        self.open_button.setEnabled(False)
        self.outputs_note.setText("No outputs.")
        self.tabs.setTabText(1, "Outputs")

    def _show_outputs(self, files: list[dict], thumbs: list) -> None:
        self._clear_outputs()
        for f in files:
            item = QListWidgetItem(f"{f['name']}  ({_size(f['size'])})")
            item.setData(Qt.ItemDataRole.UserRole, f["name"])
            self.files.addItem(item)
        if files:
            total = sum(f["size"] for f in files)
            images = sum(1 for f in files if f["image"])
            self.outputs_note.setText(f"{len(files)} file{'s' if len(files) != 1 else ''}, {_size(total)}"
                                      + (f"; {images} image{'s' if images != 1 else ''}" if images else ""))
        self.open_button.setEnabled(bool(files))
        self.tabs.setTabText(1, f"Outputs ({len(files)})" if files else "Outputs")
        cols = 3
        for i, (name, img) in enumerate(thumbs):
            lab = QLabel()
            lab.setPixmap(QPixmap.fromImage(img))
            lab.setToolTip(name)
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
            lab.setFixedSize(THUMB_PX + 6, THUMB_PX + 6)
            lab.setStyleSheet("border: 1px solid palette(mid); border-radius: 4px;")
            self.thumb_box.addWidget(lab, i // cols, i % cols)
            self.thumb_labels.append(lab)

    def open_outputs(self) -> None:
        """Unpack the outputs on the runner, then open the folder in the file manager."""
        if self.job_id is None:
            return
        job_id, svc = self.job_id, self._service
        self.open_button.setEnabled(False)

        def done(path) -> None:
            self.open_button.setEnabled(True)
            if self._open_url(str(path)) is False:  # no file manager (a bare rig, a remote desktop): say where
                self.outputs_note.setText(f"No file manager opened it: the outputs are in {path}")
                self.outputs_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.folderOpened.emit(str(path))

        def failed(err: BaseException) -> None:
            self.open_button.setEnabled(True)
            self.outputs_note.setText(f"Could not open the outputs: {err}")

        self._runner.submit(lambda: svc.output_folder(job_id), on_done=done, on_error=failed)


def _open_in_file_manager(path: str) -> bool:
    """Whether the desktop opened `path` (False: nothing can show folders here)."""
    return bool(QDesktopServices.openUrl(QUrl.fromLocalFile(path)))
