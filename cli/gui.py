"""The GUI launcher: builds the services, hands them to the window (the window never builds
them), and runs the Qt event loop through qasync so async services can share it.

It sits in cli/, above ui/, so app/ never imports Qt or ui/ (the layering rule, no exceptions).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import time

import psutil
import qasync
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QDialog

from app.account import WalletSession
from app.context import AppContext
from app.devices import DeviceService, HookRunner
from app.earnings import EarningsService
from app.errors import UserError
from app.first_run import FirstRun, needs_first_run
from app.fleet import Alerter, FleetWatcher
from app.market_session import MarketSession
from app.runtime import JobsService
from app.runtime import PreviewService
from app.status import sandbox_status
from ui.background import Background
from ui.first_run import FirstRunWizard
from ui.main_window import MainWindow
from ui.theme import apply_theme, follow_system

log = logging.getLogger(__name__)


class FirstPaint(QObject):
    """Logs (and with KMINER_REPORT_STARTUP prints) the time from `t0` (perf_counter) to the
    first paint of `widget`; with KMINER_REPORT_STARTUP=exit it then closes it (the start-up test)."""

    def __init__(self, widget, close, t0: float):
        super().__init__()
        self.widget, self.close, self.t0 = widget, close, t0
        widget.installEventFilter(self)

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            ms = (time.perf_counter() - self.t0) * 1000
            since_exec = _ms_since_process_start()
            what = type(self.widget).__name__
            log.info("first paint (%s) %.0f ms after run_gui, %.0f ms after process start", what, ms, since_exec)
            if os.environ.get("KMINER_REPORT_STARTUP"):
                print(f"first paint: {since_exec:.0f} ms after process start ({ms:.0f} ms in run_gui; {what})",
                      file=sys.stderr, flush=True)
                if os.environ.get("KMINER_REPORT_STARTUP") == "exit":
                    QTimer.singleShot(0, self.close)
            self.widget.removeEventFilter(self)
        return False


def run_gui(argv: list[str] | None = None) -> int:
    t0 = time.perf_counter()
    _check_display()
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("Knowledge Miner")
    app.setOrganizationName("Knowledge Miner")
    app.setDesktopFileName("kminer")
    app.setQuitOnLastWindowClosed(False)

    ctx = AppContext.open()
    apply_theme(app, ctx.settings.general.theme)
    follow_system(app, lambda: ctx.settings.general.theme)
    devices = DeviceService(ctx)
    devices.watchdog.subscribe(HookRunner(lambda: ctx.settings.watchdog, ctx.paths.data_dir))  # the event script
    if devices.message:
        print(f"kminer: {devices.message}", file=sys.stderr)

    chain_runner = Background("chain")  # the ONE thread every chain and keystore call runs on
    password = None
    if needs_first_run(ctx):
        ok, password = _first_run(ctx, devices, chain_runner, t0)
        if not ok:
            chain_runner.shutdown(wait=True)
            devices.close()
            return 0
        t0 = time.perf_counter()  # the main window's start-up counts from the wizard's end
    wallet = WalletSession(ctx)
    if password:  # the wizard's new wallet opens unlocked (the KDF runs on the chain thread)
        chain_runner.submit(lambda: wallet.unlock(password))
    win = MainWindow(ctx=ctx, devices=devices, jobs=JobsService(ctx, devices=devices), sandbox=sandbox_status(ctx.settings),
                     earnings=EarningsService(ctx), wallet=wallet, market=MarketSession(ctx, wallet, devices),
                     preview=PreviewService(), chain_runner=chain_runner, fleet=_fleet_watcher(ctx))
    painter = FirstPaint(win, win.quit, t0)  # noqa: F841 - kept alive until the first paint
    if ctx.load_notices:  # the file kept aside, or fields that fell back to their defaults
        win.statusBar().showMessage("; ".join(ctx.load_notices), 60000)
    win.show()

    # Python's full (generation 2) collections walk every object: with web3, py-evm and Qt
    # loaded that is a few hundred ms on the GUI thread. Objects alive after start-up stay
    # alive, so move them out of the collector's sight (gc.freeze); the window does it again
    # once the market (and its libraries) are loaded.
    QTimer.singleShot(3000, gc.freeze)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    app.aboutToQuit.connect(loop.stop)
    with loop:
        loop.run_forever()
    return 0


def _fleet_watcher(ctx) -> FleetWatcher:
    """The Fleet page's scraper over the watched rigs, with "rig offline" alerts to the webhook."""
    f = lambda: ctx.settings.fleet  # noqa: E731 (read at each use: the settings may be replaced)
    return FleetWatcher(lambda: f().rigs, alerter=Alerter(lambda: f().alert_webhook_url, lambda: f().alert_interval_s))


def _first_run(ctx, devices, chain_runner, t0: float) -> tuple[bool, str | None]:
    """Show the first-run wizard: (False, None) when the user closed it before any wallet
    existed, else (True, the new wallet's password or None)."""
    runner = Background("first-run")
    try:
        wizard = FirstRunWizard(flow=FirstRun(ctx), devices=devices, runner=runner, chain_runner=chain_runner)
        painter = FirstPaint(wizard, wizard.reject, t0)  # noqa: F841
        accepted = wizard.exec() == QDialog.DialogCode.Accepted
    finally:
        runner.shutdown(wait=True)
    return accepted or not needs_first_run(ctx), getattr(wizard, "handover_password", None)


def _ms_since_process_start() -> float:
    """Milliseconds since this process started. On Linux from /proc/self/stat's start time
    against CLOCK_BOOTTIME (10 ms resolution); psutil's create_time() adds the boot time,
    which /proc gives in whole seconds, so it can be off by up to a second."""
    if sys.platform == "linux":
        try:
            with open("/proc/self/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            start_ticks = int(fields[19])  # field 22 of stat(5); fields[0] is field 3
            return (time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")) * 1000
        except (OSError, ValueError, IndexError):
            pass
    return (time.time() - psutil.Process().create_time()) * 1000


def _check_display() -> None:
    """Qt aborts the process when it cannot reach a display; say so in one line instead."""
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise UserError("no display found (DISPLAY is not set): start the app from a desktop session, "
                        "or use the headless commands (kminer devices, kminer bench, kminer --help)")
