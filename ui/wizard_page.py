"""The first-run wizard's page base: a page whose check runs in the background (Next waits
for it) and whose errors show at their fields, in space kept for them (an error never moves
the fields under the pointer). Shared by ui.first_run and its recovery and floors pages."""

from __future__ import annotations

from app.amounts import FieldError
from ui.background import Background
from ui.qt import QFormLayout, QLabel, QLineEdit, QVBoxLayout, QWidget, QWizardPage
from ui.wallet_dialogs import error_label, muted, show_error


def password_edit(placeholder: str) -> QLineEdit:
    e = QLineEdit()
    e.setEchoMode(QLineEdit.EchoMode.Password)
    e.setPlaceholderText(placeholder)
    return e


class WizardPage(QWizardPage):
    """A page whose check runs in the background: Next waits for it, errors go to their fields."""

    def __init__(self, title: str, subtitle: str = ""):
        super().__init__()
        self.setTitle(title)
        if subtitle:
            self.setSubTitle(subtitle)
        self.fields_: dict[str, QLabel] = {}
        self.busy = QLabel()
        muted(self.busy)
        self.general_error = error_label()
        self._running = False
        self._passed = False

    def field_row(self, form: QFormLayout, label: str, widget: QWidget, name: str) -> None:
        err = error_label(keep_space=True)
        self.fields_[name] = err
        col = QVBoxLayout()
        col.setSpacing(2)
        col.addWidget(widget)
        col.addWidget(err)
        form.addRow(label, col)

    def show_field_error(self, e: BaseException) -> None:
        if isinstance(e, FieldError) and e.field in self.fields_:
            show_error(self.fields_[e.field], str(e))
        else:
            show_error(self.general_error, str(e))

    def clear_errors(self) -> None:
        for lab in (*self.fields_.values(), self.general_error):
            show_error(lab, None)

    def isComplete(self) -> bool:
        return not self._running and super().isComplete()

    next_id: int | None = None
    """The page after this one, when the wizard sets it (else QWizard's order by id)."""

    def nextId(self) -> int:
        return self.next_id if self.next_id is not None else super().nextId()

    def background(self) -> tuple[Background, object, str] | None:
        """(runner, callable, busy text) to run when Next is pressed; None: nothing to run."""
        return None

    def succeeded(self, result) -> None:
        pass

    def validatePage(self) -> bool:
        if self._passed:
            self._passed = False
            return True
        if self._running:
            return False
        self.clear_errors()
        try:
            job = self.background()
        except FieldError as e:
            self.show_field_error(e)
            return False
        if job is None:
            return True
        runner, fn, text = job
        self._set_running(True, text)
        runner.submit(fn, on_done=self._done, on_error=self._failed)
        return False

    def _set_running(self, running: bool, text: str = "") -> None:
        self._running = running
        self.busy.setText(text)
        self.completeChanged.emit()

    def _done(self, result) -> None:
        self._set_running(False)
        self.succeeded(result)
        self._passed = True
        if self.nextId() == -1:
            self.wizard().accept()  # the last page: Finish, now that its work is done
        else:
            self.wizard().next()

    def _failed(self, e: BaseException) -> None:
        self._set_running(False)
        self.show_field_error(e)
