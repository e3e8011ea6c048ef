"""The main window: a section list on the left, the section's view on the right, a status
bar, and (where the desktop has one) a tray icon.

Services come in through the constructor (Electrum's habit): the window never builds them.
"""

from __future__ import annotations

import logging

from ui.background import Background
from ui.devices_view import DevicesView
from ui.icons import app_icon
from ui.qt import (
    QAction, QApplication, QCloseEvent, QHBoxLayout, QKeySequence, QLabel, QListWidget,
    QListWidgetItem, QMainWindow, QStackedWidget, QSystemTrayIcon, QWidget,
)
from ui.tray import TrayIcon

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(self, *, ctx, devices, sandbox=None, tray: bool | None = None):
        """sandbox: an app.status.StatusItem for the status bar (None: not shown)."""
        super().__init__()
        self._ctx = ctx
        self._devices = devices
        self._quitting = False
        self.device_runner = Background("devices")
        self.setWindowTitle("Knowledge Miner")
        self.setWindowIcon(app_icon())
        self.resize(980, 700)

        self.nav = QListWidget()
        self.nav.setFixedWidth(170)
        self.nav.setSpacing(2)
        self.nav.setFrameShape(QListWidget.Shape.NoFrame)
        self.nav.setStyleSheet("QListWidget { background: transparent; font-size: 11pt; }"
                               "QListWidget::item { padding: 8px 10px; border-radius: 6px; }"
                               "QListWidget::item:selected { background: palette(highlight);"
                               " color: palette(highlighted-text); }")
        self.pages = QStackedWidget()
        self.devices_view = DevicesView(devices=devices, runner=self.device_runner,
                                        interval_s=ctx.settings.general.telemetry_interval_s)
        self._add_page("Devices", self.devices_view)
        self.nav.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.nav.setCurrentRow(0)

        central = QWidget()
        lay = QHBoxLayout(central)
        lay.setContentsMargins(8, 8, 8, 0)
        lay.addWidget(self.nav)
        lay.addWidget(self.pages, 1)
        self.setCentralWidget(central)

        self.away_label = QLabel()
        self.statusBar().addWidget(self.away_label)
        self.sandbox_label = QLabel(sandbox.text if sandbox else "")
        if sandbox is not None:
            self.sandbox_label.setToolTip(sandbox.tooltip)
            self.statusBar().addPermanentWidget(self.sandbox_label)
        if devices.message:
            self.statusBar().showMessage(devices.message, 15000)

        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.quit)
        self.addAction(quit_action)
        close_action = QAction("Close window", self)
        close_action.setShortcut(QKeySequence.StandardKey.Close)
        close_action.triggered.connect(self.close)
        self.addAction(close_action)

        use_tray = QSystemTrayIcon.isSystemTrayAvailable() if tray is None else tray
        self.tray: TrayIcon | None = None
        if use_tray:
            self.tray = TrayIcon(self)
            self.tray.showRequested.connect(self.show_and_raise)
            self.tray.modeAllRequested.connect(self.devices_view.request_all)
            self.tray.quitRequested.connect(self.quit)
            self.tray.show()
        self.devices_view.statesChanged.connect(self._states_changed)

    def _add_page(self, name: str, widget: QWidget) -> None:
        QListWidgetItem(name, self.nav)
        self.pages.addWidget(widget)

    def _states_changed(self, states, away) -> None:
        if any(s.mode == "auto" for s in states):
            self.away_label.setText({True: "You are away", False: "You are here",
                                     None: "Away detection unavailable"}[away])
        else:
            self.away_label.setText("")
        if self.tray is not None:
            self.tray.update_states(states, away)

    def show_and_raise(self) -> None:
        self.show()
        self.raise_()
        self.activateWindow()

    def keeps_running_in_tray(self) -> bool:
        return self.tray is not None and any(s.mode != "idle" for s in self.devices_view.states)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._quitting and self.keeps_running_in_tray():
            event.ignore()
            self.hide()
            general = self._ctx.settings.general
            if not general.tray_notice_shown:
                self.tray.showMessage("Knowledge Miner is still mining",
                                      "It keeps running in the tray. Use Quit in the tray menu to stop it.",
                                      QSystemTrayIcon.MessageIcon.Information, 8000)
                general.tray_notice_shown = True
                self._ctx.save_settings()
            return
        self._shutdown()
        event.accept()
        app = QApplication.instance()
        if app is not None:
            app.quit()

    def quit(self) -> None:
        self._quitting = True
        self.close()

    def _shutdown(self) -> None:
        self.devices_view.timer.stop()
        self.device_runner.shutdown(wait=True)
        if self.tray is not None:
            self.tray.hide()
        self._devices.close()
