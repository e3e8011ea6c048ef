"""The whole desktop app for the GUI benchmarks, built as cli/gui.py builds it: devices,
jobs, earnings, scene editor with its preview child, orders, models, the market driver, and a
wallet (light KDF) unlocked on a fresh local chain, in a throwaway KMINER_HOME."""

from __future__ import annotations

import os
import tempfile


def whole_app(prefix: str):
    """(QApplication, AppContext, the shown MainWindow). Offscreen unless DISPLAY is set."""
    os.environ["KMINER_HOME"] = tempfile.mkdtemp(prefix=prefix)
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from app.context import AppContext
    from app.market_session import MarketSession
    from app.devices import DeviceService
    from app.earnings import EarningsService
    from app.runtime import JobsService
    from app.runtime import PreviewService
    from app.account import WalletSession
    from app.account import WalletService
    from ui.main_window import MainWindow
    from ui.qt import QApplication
    from wallet.keystore import Keystore

    app = QApplication.instance() or QApplication([])
    ctx = AppContext.open()
    devices = DeviceService(ctx, idle=lambda: None)
    ks = Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True)
    ctx.settings.wallet.account = ks.create("bench")
    with WalletService(ctx, keystore=ks, passwords=[lambda a: "bench"]) as svc:
        svc.deployment()
    wallet = WalletSession(ctx, keystore=ks)
    window = MainWindow(ctx=ctx, devices=devices, jobs=JobsService(ctx, devices=devices), earnings=EarningsService(ctx), wallet=wallet,
                        market=MarketSession(ctx, wallet, devices), preview=PreviewService(), tray=False)
    window.chain_runner.submit(lambda: wallet.unlock("bench")).result(60)
    window.resize(1280, 800)
    window.show()
    return app, ctx, window
