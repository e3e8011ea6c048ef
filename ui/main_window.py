"""The main window: a section list on the left, the section's view on the right, a status
bar, and (where the desktop has one) a tray icon.

Services come in through the constructor (Electrum's habit): the window never builds them.
"""

from __future__ import annotations

import gc
import logging
import re
import time

from app.fleet import Alert, rig_name
from app.market_session import BuyerFacade
from app.stake import StakeActions
from app.p2p_orders import P2POrders
from app.recent_folders import RecentFolders
from ui.about import AboutDialog
from ui.background import Background
from ui.devices_view import DevicesView
from ui.earnings_view import EarningsView
from ui.fleet_view import FleetView, WatchdogRelay
from ui.icons import app_icon
from ui.jobs_view import JobsView
from ui.market_driver import MarketDriver
from ui.model_market_view import ModelMarketView
from ui.orders_view import OrdersView
from ui.readiness_banner import ReadinessBanner
from ui.qt import (
    QAction, QApplication, QByteArray, QCloseEvent, QHBoxLayout, QKeySequence, QLabel, QPushButton,
    QListWidget, QListWidgetItem, QMainWindow, QStackedWidget, QSystemTrayIcon, Qt, QVBoxLayout, QWidget, qVersion,
)
from ui.scene_editor import SceneEditor
from ui.settings_dialog import SettingsDialog
from ui.stake_dialog import StakeDialog
from ui.theme import apply_theme
from ui.transfers_view import TransfersTabs
from ui.tray import TrayIcon
from ui.wallet_view import WalletView

log = logging.getLogger(__name__)

DEFAULT_SIZE = (1240, 800)
"""First-run window size: the scene editor's form and preview side by side with every tab
readable. Smaller screens get 90 % of their free area; later runs restore the user's size."""


def stake_line(problem: str, *, button: bool = False) -> str:
    """app.orders' stake problem as one status line: addresses shortened, the order market named;
    with a Stake… button beside it, the command-line fix is left out (the button is the fix)."""
    text = re.sub(r"0x[0-9a-fA-F]{40}", lambda m: f"{m.group(0)[:6]}…{m.group(0)[-4:]}", problem.strip().splitlines()[0])
    if button:
        text = re.sub(r"\s*\(fix: kminer wallet stake[^)]*\)\s*$", "", text)
    if "order market" not in text.lower():
        text = f"order market: {text}"
    return text[:1].upper() + text[1:]


def default_size() -> tuple[int, int]:
    screen = QApplication.primaryScreen()
    if screen is None:
        return DEFAULT_SIZE
    free = screen.availableGeometry()
    return min(DEFAULT_SIZE[0], int(free.width() * 0.9)), min(DEFAULT_SIZE[1], int(free.height() * 0.9))


class MainWindow(QMainWindow):
    def __init__(self, *, ctx, devices, jobs=None, sandbox=None, tray: bool | None = None, earnings=None,
                 wallet=None, market=None, preview=None, chain_runner: Background | None = None, fleet=None):
        """jobs: an app.runtime.JobsService (None: no Jobs page);
        sandbox: an app.status.StatusItem for the status bar (None: not shown);
        earnings: an app.earnings.EarningsService (Earnings page);
        wallet: the app.account.WalletSession (Wallet page); market: the app.market_session.
        MarketSession over it (Orders and Models pages, and the miner, driven every 2 s);
        preview: an app.runtime.PreviewService (Scene editor page);
        chain_runner: the ONE runner every chain call goes through (made here if None);
        fleet: an app.fleet.FleetWatcher (Fleet page: other rigs by their metrics URLs).
        The window owns and closes every service it is given."""
        super().__init__()
        self._ctx = ctx
        self._devices = devices
        self._quitting = False
        self.device_runner = Background("devices")
        self.setWindowTitle("Knowledge Miner")
        self.setWindowIcon(app_icon())
        self.resize(*default_size())

        self.nav = QListWidget()
        self.nav.setFixedWidth(170)
        self.nav.setSpacing(2)
        self.nav.setFrameShape(QListWidget.Shape.NoFrame)
        self.nav.setStyleSheet("QListWidget { background: transparent; font-size: 11pt; }"
                               "QListWidget::item { padding: 8px 10px; border-radius: 6px; }"
                               "QListWidget::item:selected { background: palette(highlight);"
                               " color: palette(highlighted-text); }")
        self.pages = QStackedWidget()
        self._page_widgets: dict[str, QWidget] = {}
        self._page_actions: list[QAction] = []
        self._page_rows: dict[str, int] = {}
        self._sections: dict[str, int] = {}
        self.devices_view = DevicesView(devices=devices, runner=self.device_runner,
                                        interval_s=ctx.settings.general.telemetry_interval_s)
        self.add_page("Miner", "Devices", self.devices_view)
        self.jobs_view = None
        self._jobs = jobs
        if jobs is not None:
            self.jobs_runner = Background("jobs")
            self.jobs_view = JobsView(jobs=jobs, runner=self.jobs_runner,
                                      transfers=TransfersTabs(ctx.paths.transport_dirs))
            self.add_page("Miner", "Jobs", self.jobs_view)
        if jobs is not None and market is not None and getattr(jobs, "market", False) is None:
            jobs.market = market  # market jobs show their buyer, reward and progress
        self._earnings = earnings
        self._wallet = wallet
        self._market = market
        self._preview = preview
        self.chain_runner = chain_runner or Background("chain")
        self.earnings_view = self.wallet_view = self.models_view = self.orders_view = self.scene_editor = None
        self.market_driver = None
        self._market_seen_ready = False
        self._runners: list[Background] = []
        if earnings is not None:
            runner = self._runner("earnings")
            self.earnings_view = EarningsView(earnings=earnings, devices=devices, runner=runner)
            self.add_page("Miner", "Earnings", self.earnings_view)
        self.folders = RecentFolders(ctx)   # where every file dialog starts: the folder last used for it
        if preview is not None:
            self.scene_editor = SceneEditor(preview=preview, runner=self._runner("scene-files"),
                                            scenes_dir=ctx.paths.data_dir / "scenes", folders=self.folders)
            self.add_page("Buyer", "Scene editor", self.scene_editor)
        if market is not None:
            self.orders_view = OrdersView(buyer=BuyerFacade(market), chain_runner=self.chain_runner,
                                          files_runner=self._runner("order-files"), auto_step=False,
                                          folders=self.folders, p2p=P2POrders.of_session(market))
            self.add_page("Buyer", "Orders", self.orders_view)
            self.models_view = ModelMarketView(models=market.models, chain_runner=self.chain_runner,
                                               jobs_runner=self._runner("try-it"), folders=self.folders)
            self.add_page("Buyer", "Models", self.models_view)
            self.market_driver = MarketDriver(market, self.chain_runner, parent=self)
            self.market_driver.stepped.connect(self._market_stepped)
            self.orders_view.transfersRequested.connect(self.show_transfers)
            if self.scene_editor is not None and hasattr(self.scene_editor, "orderRequested"):
                self.scene_editor.orderRequested.connect(self._order_from_editor)
        self.fleet_view = None
        self._fleet = fleet
        if fleet is not None:
            self.fleet_view = FleetView(ctx=ctx, watcher=fleet, runner=self._runner("fleet"))
            self.add_page("Miner", "Fleet", self.fleet_view)
        self.stake_actions = StakeActions.of_wallet(wallet) if wallet is not None and market is not None else None
        self.stake_dialog: StakeDialog | None = None
        if wallet is not None:
            self.wallet_view = WalletView(session=wallet, chain_runner=self.chain_runner, folders=self.folders,
                                          stake=self.stake_actions)
            self.wallet_view.stakeRequested.connect(self.open_stake_dialog)
            self.add_page("Wallet", "Wallet", self.wallet_view)
            if market is not None:  # a new, rotated or revoked mining key: the miner opens with it
                self.wallet_view.miningKeyChanged.connect(lambda: self.chain_runner.submit(market.signer_changed))
        self.nav.currentItemChanged.connect(self._nav_changed)
        self.show_page("Devices")

        central = QWidget()
        lay = QHBoxLayout(central)
        lay.setContentsMargins(8, 8, 8, 0)
        lay.addWidget(self.nav)
        right = QVBoxLayout()
        self.readiness_banner = ReadinessBanner()  # always shown while there is a market: never moves the page
        self.readiness_banner.setVisible(market is not None)
        self.readiness_banner.actionRequested.connect(self._readiness_action)
        right.addWidget(self.readiness_banner)
        right.addWidget(self.pages, 1)
        lay.addLayout(right, 1)
        self.setCentralWidget(central)

        self.away_label = QLabel()
        self.statusBar().addWidget(self.away_label)
        self.stake_label = QLabel()  # what keeps the rig off the order market (no stake), with the fix
        self.stake_label.setVisible(False)
        self.statusBar().addWidget(self.stake_label)
        self.stake_button = QPushButton("Stake…")  # the fix, in the app: the Stake dialog
        self.stake_button.setVisible(False)
        self.stake_button.clicked.connect(self.open_stake_dialog)
        self.statusBar().addWidget(self.stake_button)
        if self.jobs_view is not None:
            self.jobs_view.noticeAction.connect(self.open_stake_dialog)
        self.stake_problem: str | None = None
        self._stake_checked_at = None
        self.sandbox_label = QLabel(sandbox.text if sandbox else "")
        if sandbox is not None:
            self.sandbox_label.setToolTip(sandbox.tooltip)
            self.statusBar().addPermanentWidget(self.sandbox_label)

        self._build_menus()
        self._restore_state()

        use_tray = QSystemTrayIcon.isSystemTrayAvailable() if tray is None else tray
        self.tray: TrayIcon | None = None
        if use_tray:
            self.tray = TrayIcon(self, devices=devices, runner=self.device_runner)
            self.tray.showRequested.connect(self.show_and_raise)
            self.tray.modeAllRequested.connect(self.devices_view.request_all)
            self.tray.modesChanged.connect(self.devices_view.refresh_now)
            self.tray.quitRequested.connect(self.quit)
            if self.jobs_view is not None:
                self.jobs_view.jobFailed.connect(self.tray.notify_job_failed)
                self.jobs_view.activeJobs.connect(self.tray.set_active_jobs)
            if self.earnings_view is not None:
                self.earnings_view.earnedToday.connect(self.tray.set_earned_today)
            if self.market_driver is not None:
                self.market_driver.paymentReceived.connect(self.tray.notify_payment)
            self.tray.show()
        self.watchdog_relay = WatchdogRelay(devices, self)  # lost or hung GPUs: a notice and a status line
        self.watchdog_relay.event.connect(self._watchdog_event)
        self.devices_view.statesChanged.connect(self._states_changed)
        if self.earnings_view is not None:
            self.devices_view.statesChanged.connect(self.earnings_view.record_states)
        if self.market_driver is not None:  # why the market is not open: the readiness banner says it, and stays
            self.market_driver.notReady.connect(self._locked_alert)
            self.market_driver.start()

    SECTIONS = ("Miner", "Buyer", "Wallet")

    def add_page(self, section: str, name: str, widget: QWidget) -> None:
        """Add `widget` as page `name` under `section` (one of SECTIONS; a header row in the
        navigation list). Pages keep the order they were added in within their section;
        Ctrl+1..9 go to the pages in the order they appear."""
        if section not in self.SECTIONS:
            raise ValueError(f"unknown section {section!r}")
        if name in self._page_rows:
            raise ValueError(f"page {name!r} exists")
        # insert after the last page of this section (or a new header in SECTIONS order)
        if section not in self._sections:
            order = self.SECTIONS.index(section)
            row = self.nav.count()
            for other, r in sorted(self._sections.items(), key=lambda kv: kv[1]):
                if self.SECTIONS.index(other) > order:
                    row = r
                    break
            header = QListWidgetItem(section.upper())
            header.setFlags(Qt.ItemFlag.NoItemFlags)
            font = header.font()
            font.setPointSizeF(8.5)
            font.setBold(True)
            header.setFont(font)
            self.nav.insertItem(row, header)
            self._shift_rows(row)
            self._sections[section] = row
        row = self._section_end(section)
        item = QListWidgetItem(name)
        item.setData(Qt.ItemDataRole.UserRole, name)
        self.nav.insertItem(row, item)
        self._shift_rows(row)
        self._page_rows[name] = row
        self.pages.addWidget(widget)
        self._page_widgets[name] = widget
        self._rebuild_shortcuts()

    def _section_end(self, section: str) -> int:
        row = self._sections[section] + 1
        while row < self.nav.count() and self.nav.item(row).data(Qt.ItemDataRole.UserRole) is not None:
            row += 1
        return row

    def _shift_rows(self, inserted: int) -> None:
        for d in (self._sections, self._page_rows):
            for k, r in list(d.items()):
                if r >= inserted:
                    d[k] = r + 1

    def _rebuild_shortcuts(self) -> None:
        for a in self._page_actions:
            self.removeAction(a)
        self._page_actions = []
        for n, name in enumerate(self.page_names()[:9], start=1):
            go = QAction(f"Show {name}", self)
            go.setShortcut(QKeySequence(f"Ctrl+{n}"))
            go.triggered.connect(lambda _=False, page=name: self.show_page(page))
            self.addAction(go)
            self._page_actions.append(go)

    def show_page(self, name: str) -> None:
        self.nav.setCurrentRow(self._page_rows[name])

    def current_page(self) -> str | None:
        item = self.nav.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _nav_changed(self, item, _previous=None) -> None:
        if item is None:
            return
        name = item.data(Qt.ItemDataRole.UserRole)
        if name is not None:
            self.pages.setCurrentWidget(self._page_widgets[name])

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.settings_action = QAction("&Settings…", self)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.triggered.connect(self.open_settings)
        file_menu.addAction(self.settings_action)
        close_action = QAction("&Close window", self)
        close_action.setShortcut(QKeySequence.StandardKey.Close)
        close_action.triggered.connect(self.close)
        file_menu.addAction(close_action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.quit)
        file_menu.addAction(quit_action)
        help_menu = bar.addMenu("&Help")
        about = QAction("&About Knowledge Miner", self)
        about.setShortcut(QKeySequence.StandardKey.HelpContents)
        about.triggered.connect(self.open_about)
        help_menu.addAction(about)

    def page_names(self) -> list[str]:
        """Page names in navigation order (section headers left out)."""
        names = (self.nav.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.nav.count()))
        return [n for n in names if n is not None]

    # -- dialogs ---------------------------------------------------------------------
    def open_settings(self) -> bool:
        """Show the settings dialog; on OK apply and save every section. True if applied."""
        dlg = SettingsDialog(self._ctx.settings, self)
        self._dialog = dlg
        if dlg.exec() != SettingsDialog.DialogCode.Accepted:
            return False
        self.apply_settings(dlg.result_sections)
        return True

    def apply_settings(self, sections: dict) -> None:
        for name, section in sections.items():
            setattr(self._ctx.settings, name, section)
        self._ctx.save_settings()
        general = self._ctx.settings.general
        self.devices_view.timer.setInterval(int(general.telemetry_interval_s * 1000))
        app = QApplication.instance()
        if app is not None:
            apply_theme(app, general.theme)

    def open_about(self) -> None:
        dlg = AboutDialog(self._ctx.paths, qVersion(), self)
        self._dialog = dlg
        dlg.exec()

    # -- window state ------------------------------------------------------------------
    def _restore_state(self) -> None:
        general = self._ctx.settings.general
        if general.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(general.window_geometry.encode("ascii")))
        if general.window_page in self.page_names():
            self.show_page(general.window_page)

    def save_state(self) -> None:
        general = self._ctx.settings.general
        general.window_geometry = bytes(self.saveGeometry().toBase64()).decode("ascii")
        general.window_page = self.current_page()
        self._ctx.save_settings()

    def _states_changed(self, states, away) -> None:
        if any(s.mode == "auto" for s in states):
            self.away_label.setText({True: "You are away", False: "You are here",
                                     None: "Away detection unavailable"}[away])
        else:
            self.away_label.setText("")
        if self.tray is not None:
            self.tray.update_states(states, away)

    def _locked_alert(self, why: str | None) -> None:
        """A rig whose devices should mine but whose wallet is locked earns nothing: alert the
        webhook (app.fleet.Alerter: once, then again only after the interval)."""
        alerter = getattr(self._fleet, "alerter", None)
        if alerter is None or not why:
            return
        mining = any(s.mode != "idle" for s in self.devices_view.states)
        active = [Alert("wallet_locked", rig_name(), rig_name(), why)] if mining and "lock" in why.lower() else []
        alerter.check(active, scope=lambda a: a.kind == "wallet_locked")

    def _watchdog_event(self, event) -> None:
        if event.kind != "retry":
            self.statusBar().showMessage(f"Watchdog: {event.line()}", 30000)
        if self.tray is not None:
            self.tray.notify_watchdog(event)

    def show_and_raise(self) -> None:
        self.show()
        self.raise_()
        self.activateWindow()

    def keeps_running_in_tray(self) -> bool:
        return self.tray is not None and any(s.mode != "idle" for s in self.devices_view.states)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.isVisible():
            self.save_state()
        hiding = not self._quitting and self.keeps_running_in_tray()
        if not hiding and self.scene_editor is not None and not self.scene_editor.confirm_close():
            self._quitting = False
            event.ignore()  # unsaved scene: the user chose Cancel
            return
        if hiding:
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

    def _runner(self, name: str) -> Background:
        r = Background(name)
        self._runners.append(r)
        return r

    # -- the market ----------------------------------------------------------------------
    def _readiness_action(self, target: str) -> None:
        if target == "settings":
            self.open_settings()
        elif target in self._page_rows:
            self.show_page(target)
            if target == "Wallet" and self.wallet_view is not None and hasattr(self.wallet_view, "focus_mining_key"):
                self.wallet_view.focus_mining_key()

    def _market_stepped(self, rep) -> None:
        self.devices_view.set_work(getattr(rep, "device_work", None) or {})
        r = getattr(rep, "readiness", None)
        if r is not None:
            self.readiness_banner.show_readiness(r)
            self.devices_view.set_readiness(r)
            if self.tray is not None:
                self.tray.set_readiness(r)
        if rep.ready and not self._market_seen_ready:
            self._market_seen_ready = True
            gc.freeze()  # the chain libraries are loaded now: keep full collections short (see cli.gui)
        if rep.paid_wei and self.earnings_view is not None:
            self.earnings_view.refresh()
        if self.orders_view is not None and (rep.buyer_events or self.orders_view.isVisible()):
            self.orders_view.refresh(force=bool(rep.buyer_events))
        if rep.paid_wei and self.wallet_view is not None:
            self.wallet_view.refresh()
        self._check_stake()

    STAKE_CHECK_S = 30.0
    """How often the order market's stake is read (one eth_call) while the order miner runs."""

    def _check_stake(self) -> None:
        market = self._market
        now = time.monotonic()
        if getattr(market, "order_miner", None) is None:
            if self.stake_problem:
                self.show_stake_problem(None)
            return
        if self._stake_checked_at is not None and now - self._stake_checked_at < self.STAKE_CHECK_S:
            return
        self._stake_checked_at = now
        self.chain_runner.submit(market.order_stake_problem, on_done=self.show_stake_problem)

    def show_stake_problem(self, problem: str | None) -> None:
        """One line in the status bar and on the Jobs page: why buyers on the order market grant
        this rig no claims, and the fix (None: nothing wrong)."""
        self.stake_problem = problem
        can = self.stake_actions is not None
        text = stake_line(problem, button=can) if problem else ""
        self.stake_label.setText(text)
        self.stake_label.setToolTip(problem or "")
        self.stake_label.setVisible(bool(text))
        self.stake_button.setVisible(bool(text) and can)
        if self.jobs_view is not None:
            self.jobs_view.set_notice(text or None, "Stake…" if can else None)

    def open_stake_dialog(self) -> None:
        """The Stake dialog (app.stake over the wallet): stake, unstake, withdraw; the
        stake line and the Wallet page are read again after each transaction."""
        if self.stake_actions is None:
            return
        if self.stake_dialog is not None:
            self.stake_dialog.raise_()
            self.stake_dialog.activateWindow()
            return
        self.stake_dialog = dlg = StakeDialog(actions=self.stake_actions, runner=self.chain_runner, parent=self)
        dlg.changed.connect(self._stake_changed)
        dlg.finished.connect(lambda _r: setattr(self, "stake_dialog", None))
        dlg.open()

    def _stake_changed(self, _status) -> None:
        self._stake_checked_at = None
        market = self._market
        if getattr(market, "order_miner", None) is not None:
            self._stake_checked_at = time.monotonic()
            self.chain_runner.submit(market.order_stake_problem, on_done=self.show_stake_problem)
        if self.wallet_view is not None:
            self.wallet_view.refresh()

    def show_transfers(self) -> None:
        """Jobs → Transfers: what the transport nodes send and fetch."""
        if self.jobs_view is not None:
            self.show_page("Jobs")
            self.jobs_view.show_transfers()

    def _order_from_editor(self, spec: dict) -> None:
        self.orders_view.post_from_spec(spec)
        self.show_page("Orders")

    def _shutdown(self) -> None:
        self.devices_view.timer.stop()
        if self.market_driver is not None:
            self.market_driver.stop()
        if self.tray is not None:
            self.tray.resume_blocking()
        self.watchdog_relay.close()
        for view in (self.wallet_view, self.models_view, self.orders_view, self.scene_editor, self.fleet_view):
            if view is not None and hasattr(view, "shutdown"):
                view.shutdown()
        if self.earnings_view is not None:
            self.earnings_view.timer.stop()
        for r in self._runners:
            r.shutdown(wait=True)
        closing = [self.chain_runner.submit(svc.close) for svc in (self._market, self._wallet) if svc is not None]
        for fut in closing:  # after the pass that may be running; the chain is single-thread
            try:
                fut.result(timeout=60)
            except Exception:
                log.exception("closing the chain services")
        self.chain_runner.shutdown(wait=True)
        if self._earnings is not None:
            self._earnings.close()
        if self._preview is not None:
            self._preview.close()
        if self._fleet is not None:
            self._fleet.close()
        self.device_runner.shutdown(wait=True)
        if self.jobs_view is not None:
            self.jobs_view.timer.stop()
            self.jobs_runner.shutdown(wait=True)
            self._jobs.close()
        if self.tray is not None:
            self.tray.hide()
        self._devices.close()
