"""The wallet's password dialog (pytest-qt, offscreen): a wrong password shows its error line
and the dialog grows for it, so the wrapped explanation above is never squeezed or clipped."""

from __future__ import annotations

from ui.qt import QLabel
from ui.wallet_dialogs import PasswordDialog


def test_a_wrong_password_shows_in_reserved_space_and_keeps_its_text_readable(qtbot):
    submitted = []
    dlg = PasswordDialog(title="Unlock the wallet", keyring=False, on_submit=lambda pw, rem: submitted.append(pw),
                         text="Enter the wallet password. The key stays unlocked until you lock it or close the app.")
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    qtbot.keyClicks(dlg.password, "wrong password")
    dlg.buttons.accepted.emit()
    assert submitted == ["wrong password"] and not dlg.buttons.isEnabled()
    before, ok_at = dlg.height(), dlg.buttons.mapTo(dlg, dlg.buttons.rect().topLeft())
    dlg.failed("Wrong password.")
    qtbot.wait(50)
    assert dlg.error.isVisible() and dlg.buttons.isEnabled()
    # the error's line was kept for it: nothing moves under the pointer (the Unlock button stays put)
    assert dlg.height() == before and dlg.buttons.mapTo(dlg, dlg.buttons.rect().topLeft()) == ok_at
    intro = next(w for w in dlg.findChildren(QLabel) if w.text().startswith("Enter the wallet password"))
    assert intro.height() >= intro.heightForWidth(intro.width())   # every wrapped line shows
    assert dlg.password.selectedText() == "wrong password"   # ready to type again
