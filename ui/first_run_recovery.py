"""The wizard's recovery-phrase pages: the new wallet's phrase shown once (PhrasePage), three
of its words asked back before the wizard goes on (QuizPage), and a wallet restored from a
phrase (RestorePage). app.first_run.FirstRun does every step; errors show at their fields.
"""

from __future__ import annotations

from PySide6.QtWidgets import QPlainTextEdit

from app.amounts import FieldError
from app.first_run import FirstRun, check_new_password
from ui.background import Background
from ui.qt import QCheckBox, QFormLayout, QFrame, QGridLayout, QLabel, QLineEdit, Qt, QVBoxLayout, QWidget, QWizard
from ui.wallet_dialogs import mono_font, muted
from ui.wizard_page import WizardPage, password_edit

PHRASE_NOTE = ("Write these words on paper, in order, and keep them offline. They are the only way to get this "
               "wallet back if this computer or the password is lost, and anyone who has them owns the wallet. "
               "They are shown only now.")


class PhrasePage(WizardPage):
    """The recovery phrase, once, in a numbered grid; Next only after "I wrote them down"."""

    def __init__(self, flow: FirstRun):
        super().__init__("Your recovery phrase", "12 words that restore this wallet anywhere.")
        self.flow = flow
        box = QVBoxLayout(self)
        note = QLabel(PHRASE_NOTE)
        note.setWordWrap(True)
        box.addWidget(note)
        self.frame = QFrame()
        self.frame.setObjectName("phrase")
        self.frame.setStyleSheet("#phrase { border: 1px solid palette(mid); border-radius: 8px; }")
        self.grid = QGridLayout(self.frame)
        self.grid.setHorizontalSpacing(24)
        self.grid.setVerticalSpacing(8)
        self.words: list[QLabel] = []
        box.addWidget(self.frame)
        self.confirm = QCheckBox("I have written the 12 words down, in order")
        self.confirm.toggled.connect(lambda _on: self.completeChanged.emit())
        box.addWidget(self.confirm, 0, Qt.AlignmentFlag.AlignLeft)  # as wide as its text: a click on it ticks it
        box.addStretch(1)

    def initializePage(self) -> None:
        while self.words:
            self.words.pop().deleteLater()
        words = self.flow.phrase
        rows = (len(words) + 2) // 3
        for i, w in enumerate(words):
            lab = QLabel(f"<span style='color: gray'>{i + 1:>2}.</span> <b>{w}</b>")
            lab.setFont(mono_font())
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)  # copying it is discouraged
            self.grid.addWidget(lab, i % rows, i // rows)
            self.words.append(lab)
        self.confirm.setChecked(False)

    def isComplete(self) -> bool:
        return self.confirm.isChecked() and super().isComplete()


class QuizPage(WizardPage):
    """Three words of the phrase asked back; a wrong one is said at its field and Back shows
    the phrase again."""

    def __init__(self, flow: FirstRun):
        super().__init__("Check your recovery phrase", "Type the words asked, from what you wrote down.")
        self.flow = flow
        self.box = QVBoxLayout(self)
        self.holder = QWidget()
        self.box.addWidget(self.holder)
        self.box.addWidget(self.general_error)
        self.box.addStretch(1)
        self.edits: dict[int, QLineEdit] = {}

    def initializePage(self) -> None:
        old, self.holder = self.holder, QWidget()
        self.box.replaceWidget(old, self.holder)
        old.deleteLater()
        form = QFormLayout(self.holder)
        self.fields_, self.edits = {}, {}
        for pos in self.flow.quiz_positions:
            e = QLineEdit()
            e.setPlaceholderText(f"word number {pos}")
            e.setFont(mono_font())
            self.edits[pos] = e
            self.field_row(form, f"Word {pos}", e, f"quiz:{pos}")
        if self.edits:
            next(iter(self.edits.values())).setFocus()

    def answers(self) -> dict[int, str]:
        return {pos: e.text() for pos, e in self.edits.items()}

    def background(self):
        self.flow.check_quiz(self.answers())  # quick: no thread, errors at the fields
        return None


class RestorePage(WizardPage):
    """A wallet from its recovery phrase, with a new password for this computer."""

    def __init__(self, flow: FirstRun, runner: Background):
        super().__init__("Restore your wallet", "From its recovery phrase (12 to 24 words).")
        self.flow, self.runner = flow, runner
        box = QVBoxLayout(self)
        form = QFormLayout()
        box.addLayout(form)
        box.addStretch(1)  # the rows keep their height; the page's spare room goes below them
        self.phrase = QPlainTextEdit()
        self.phrase.setPlaceholderText("The words, in order, separated by spaces")
        self.phrase.setFont(mono_font())
        self.phrase.setFixedHeight(self.phrase.fontMetrics().lineSpacing() * 4 + 12)
        self.phrase.setTabChangesFocus(True)
        self.field_row(form, "Recovery phrase", self.phrase, "phrase")
        self.password = password_edit("A new password for this computer, at least 8 characters")
        self.again = password_edit("The same again")
        self.field_row(form, "Password", self.password, "password")
        self.field_row(form, "Repeat", self.again, "again")
        self.remember = QCheckBox("Remember the password in the OS keyring")
        self.remember.setEnabled(False)  # until the runner says a keyring exists
        form.addRow("", self.remember)
        note = QLabel("The same wallet comes back: the same address, the same funds. The phrase is not stored.")
        note.setWordWrap(True)
        muted(note)
        form.addRow("", note)
        form.addRow("", self.busy)
        form.addRow("", self.general_error)
        self.setCommitPage(True)
        self.setButtonText(QWizard.WizardButton.CommitButton, "Restore")

    def background(self):
        phrase, pw, again, remember = self.phrase.toPlainText(), self.password.text(), self.again.text(), \
            self.remember.isChecked()
        if not phrase.strip():
            raise FieldError("phrase", "Type the recovery phrase.")
        check_new_password(pw, again)
        return self.runner, lambda: self.flow.restore(phrase, pw, again, remember=remember), "Restoring your wallet…"
