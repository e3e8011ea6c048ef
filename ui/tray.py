"""The tray icon: shows mining / idle / throttled, and a menu to show the window,
start or stop mining on every device, and quit."""

from __future__ import annotations

from ui.icons import state_icon
from ui.qt import QAction, QMenu, QSystemTrayIcon, Signal


def overall_state(states) -> str:
    if any(s.throttled for s in states):
        return "throttled"
    if any(s.active for s in states):
        return "mining"
    return "idle"


class TrayIcon(QSystemTrayIcon):
    showRequested = Signal()
    modeAllRequested = Signal(str)
    quitRequested = Signal()

    def __init__(self, parent=None):
        super().__init__(state_icon("idle"), parent)
        self.state = "idle"
        menu = QMenu()
        self.show_action = QAction("Show Knowledge Miner", menu)
        self.start_action = QAction("Start mining on all devices", menu)
        self.stop_action = QAction("Stop mining on all devices", menu)
        self.quit_action = QAction("Quit", menu)
        self.show_action.triggered.connect(self.showRequested)
        self.start_action.triggered.connect(lambda: self.modeAllRequested.emit("mining"))
        self.stop_action.triggered.connect(lambda: self.modeAllRequested.emit("idle"))
        self.quit_action.triggered.connect(self.quitRequested)
        for a in (self.show_action, None, self.start_action, self.stop_action, None, self.quit_action):
            menu.addSeparator() if a is None else menu.addAction(a)
        self._menu = menu
        self.setContextMenu(menu)
        self.activated.connect(self._activated)
        self.setToolTip("Knowledge Miner")

    def _activated(self, reason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.showRequested.emit()

    def update_states(self, states, away) -> None:
        state = overall_state(states)
        if state != self.state:
            self.state = state
            self.setIcon(state_icon(state))
        mining = sum(1 for s in states if s.active and not s.throttled)
        throttled = [s.info.name for s in states if s.throttled]
        tip = f"Knowledge Miner: {mining} of {len(states)} devices mining"
        if throttled:
            tip += f"\nThrottled: {', '.join(throttled)}"
        self.setToolTip(tip)
