"""What a person would see as broken layout, checked on live widgets: text cut off."""

from __future__ import annotations

import re

from PySide6.QtGui import QTextDocument

from ui.qt import QLabel, Qt
from ui.widgets import ElidedLabel

_TAG = re.compile(r"<[^>]+>")


def clipped_labels(root) -> list[str]:
    """Visible one-line labels under `root` whose text is wider than the label (the end is cut
    off). Word-wrapped labels, eliding labels and pictures are fine by construction."""
    out = []
    for lab in root.findChildren(QLabel):
        if not lab.isVisible() or lab.wordWrap() or isinstance(lab, ElidedLabel) or not lab.text():
            continue
        text = lab.text()
        if lab.textFormat() == Qt.TextFormat.RichText or (lab.textFormat() == Qt.TextFormat.AutoText
                                                          and _TAG.search(text)):
            doc = QTextDocument()   # laid out as the label lays it out: spans in other sizes included
            doc.setDefaultFont(lab.font())
            doc.setDocumentMargin(0)
            doc.setHtml(text)
            need = int(doc.idealWidth())
        else:
            need = max(lab.fontMetrics().horizontalAdvance(line) for line in text.split("\n"))
        have = lab.contentsRect().width() - 2 * lab.margin() - lab.indent() if lab.indent() > 0 else \
            lab.contentsRect().width() - 2 * lab.margin()
        if need > have + 1:
            out.append(f"{type(lab.parentWidget()).__name__}/{lab.objectName() or 'QLabel'}: {text[:60]!r} "
                       f"needs {need} px, has {have}")
    return out
