"""The GUI process never imports torch, pyrender or OpenGL: with every page built and shown,
the wallet unlocked and the market open, those stay in the child processes (the preview
renderer, job workers). Checked in a fresh interpreter, since pytest itself loads them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent('''
    import sys, time
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    from app.context import AppContext
    from app.market_session import MarketSession
    from app.devices.service import DeviceService
    from app.earnings.service import EarningsService
    from app.runtime.jobs import JobsService
    from app.runtime.preview import PreviewService
    from app.account.session import WalletSession
    from app.account.service import WalletService
    from ui.main_window import MainWindow
    from wallet.keystore import Keystore

    ctx = AppContext.open()
    ks = Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True)
    ctx.settings.wallet.account = ks.create("pw")
    with WalletService(ctx, keystore=ks, passwords=[lambda a: "pw"]) as svc:
        svc.deployment()
    devices = DeviceService(ctx, idle=lambda: None)
    wallet = WalletSession(ctx, keystore=ks)
    preview = PreviewService()
    win = MainWindow(ctx=ctx, devices=devices, jobs=JobsService(ctx), earnings=EarningsService(ctx), wallet=wallet,
                     market=MarketSession(ctx, wallet, devices), preview=preview, tray=False)
    win.chain_runner.submit(lambda: wallet.unlock("pw")).result(60)
    win.show()
    end = time.monotonic() + 60
    for name in win.page_names():
        win.show_page(name)
        t = time.monotonic() + 1.0
        while time.monotonic() < t:
            app.processEvents(); time.sleep(0.02)
    win.show_page("Scene editor")
    while preview.pid is None and time.monotonic() < end:
        app.processEvents(); time.sleep(0.05)
    while (win.market_driver.last_report is None or not win.market_driver.last_report.ready) and time.monotonic() < end:
        app.processEvents(); time.sleep(0.05)
    print("READY", win.market_driver.last_report and win.market_driver.last_report.ready, preview.pid is not None)
    print("HEAVY", sorted(m for m in ("torch", "pyrender", "OpenGL", "trimesh") if m in sys.modules))
    win.quit()
''')


def test_every_page_and_the_open_market_leave_torch_and_opengl_to_child_processes(kminer_home):
    p = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert "READY True True" in p.stdout, p.stdout + p.stderr[-3000:]
    assert "HEAVY []" in p.stdout, p.stdout
