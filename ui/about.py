"""The About box: versions, and the folders (the log folder is the one to attach to a report)."""

from __future__ import annotations

import html

from app.about import about_info
from ui.icons import app_icon
from ui.qt import QDialog, QDialogButtonBox, QHBoxLayout, QLabel, Qt, QVBoxLayout


class AboutDialog(QDialog):
    def __init__(self, paths, qt_version: str, parent=None):
        super().__init__(parent)
        info = about_info(paths)
        self.info = info
        self.setWindowTitle("About Knowledge Miner")
        icon = QLabel()
        icon.setPixmap(app_icon().pixmap(64, 64))
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{html.escape(v)}</td></tr>" for n, v in info.packages)

        def link(p: str) -> str:
            return f'<a href="file://{html.escape(p)}">{html.escape(p)}</a>'

        text = (
            f"<h2>Knowledge Miner {html.escape(info.version)}</h2>"
            "<p>Sell rendering and training from your GPUs, paid in NTK.</p>"
            f"<p>Python {html.escape(info.python)} · Qt {html.escape(qt_version)} · {html.escape(info.platform)}</p>"
            f"<table cellspacing='6'>{rows}</table>"
            f"<p><b>Log folder</b> (attach <tt>kminer.log</tt> to a bug report):<br>{link(info.log_dir)}</p>"
            f"<p>Data: {link(info.data_dir)}<br>Settings: {link(info.config_dir)}</p>"
        )
        self.label = QLabel(text)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setOpenExternalLinks(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        top = QHBoxLayout()
        top.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.label, 1)
        box = QVBoxLayout(self)
        box.addLayout(top)
        box.addWidget(buttons)
