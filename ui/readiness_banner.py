"""The main window's readiness banner: always there, one line, so it never moves the page
under the user's pointer. Green "Ready for jobs: N devices mining" when the rig can claim;
otherwise amber with the one reason, its fix and a button that goes where the fix is
(app.readiness.Readiness). Also `readiness_line(r)`, the text the device cards and the tray use.
"""

from __future__ import annotations

from ui.icons import dot
from ui.qt import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, Qt, Signal
from ui.widgets import ElidedLabel

STYLES = {
    "ready": "background: rgba(39,174,96,0.13); border: 1px solid rgba(39,174,96,0.45);",
    "waiting": "background: rgba(47,128,237,0.10); border: 1px solid rgba(47,128,237,0.35);",
    "problem": "background: rgba(230,126,34,0.16); border: 1px solid rgba(230,126,34,0.60);",
}
ACTIONS = {  # readiness code -> (button text, page or "settings")
    "no-signer": ("Set up mining key…", "Wallet"),
    "offline": ("Open Wallet", "Wallet"),
    "no-market": ("Open Wallet", "Wallet"),
    "no-gas": ("Open Wallet", "Wallet"),
    "sandbox": ("Open Settings…", "settings"),
    "no-device": ("Open Devices", "Devices"),
    "no-floor": ("Open Devices", "Devices"),
}
CHECKING = "Checking whether the rig can take jobs…"


def readiness_line(r) -> str:
    """One line for a device card or the tray: "Ready for jobs" or the reason and its fix."""
    if r is None:
        return CHECKING
    return r.reason if r.ready else f"{r.reason}. {r.fix}."


class ReadinessBanner(QFrame):
    """See the module docstring. `actionRequested(target)`: a page name or "settings"."""

    actionRequested = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("ReadinessBanner")
        self.readiness = None
        self.kind = "waiting"
        self.dot = QLabel()
        self.text = ElidedLabel()
        self.button = QPushButton()
        self.button.setVisible(False)
        policy = self.button.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # the text keeps its width whether or not there is a fix
        self.button.setSizePolicy(policy)
        self.button.clicked.connect(self._clicked)
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 4, 6, 4)
        row.addWidget(self.dot)
        row.addWidget(self.text, 1)
        row.addWidget(self.button)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.show_readiness(None)

    def show_readiness(self, r) -> None:
        """Show app.readiness.Readiness `r` (None: not known yet)."""
        self.readiness = r
        self.kind = "waiting" if r is None else "ready" if r.ready else (
            "waiting" if r.code == "no-device" else "problem")
        self.setStyleSheet(f"#ReadinessBanner {{ {STYLES[self.kind]} border-radius: 6px; }}")
        self.dot.setPixmap(dot({"ready": "mining", "waiting": "away", "problem": "throttled"}[self.kind], 10))
        self.text.set_full_text(readiness_line(r))
        action = ACTIONS.get(r.code) if r is not None and not r.ready else None
        self.button.setVisible(action is not None)
        if action is not None:
            self.button.setText(action[0])
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def _clicked(self) -> None:
        r = self.readiness
        action = ACTIONS.get(r.code) if r is not None else None
        if action is not None:
            self.actionRequested.emit(action[1])
