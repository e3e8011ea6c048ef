"""Answering Qt's own file dialogs in tests (offscreen there is no native one)."""

from __future__ import annotations

from pathlib import Path

from ui.qt import QTimer


def answer_file_dialog(choose: Path | None) -> dict:
    """Answers the next modal file dialog (Qt's own, offscreen): notes the folder it opened in,
    then chooses `choose` (None: cancels)."""
    from PySide6.QtWidgets import QApplication, QFileDialog

    seen: dict = {}

    def poke():
        dlg = QApplication.activeModalWidget()
        if not isinstance(dlg, QFileDialog):
            QTimer.singleShot(20, poke)
            return
        seen["folder"] = Path(dlg.directory().absolutePath())
        seen["file"] = dlg.selectedFiles()[0] if dlg.selectedFiles() else None
        if choose is None:
            dlg.reject()
        else:
            dlg.selectFile(str(choose))
            dlg.accept()

    QTimer.singleShot(0, poke)
    return seen
