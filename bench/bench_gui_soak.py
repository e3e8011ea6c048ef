"""Soak: the whole main window for a while, watching what would kill or bloat a GUI left open.

Builds the main window as app/main.py does (devices, jobs, earnings, scene editor with its
preview child, orders, models, wallet unlocked on the local chain, the market driver running),
flips pages every 2 s, and every 30 s prints the process's resident memory and the reference
count of None. A Qt binding that drops references to None (PySide6 6.12.0 on Python 3.11 does,
on every call that returns nothing) shows as a steady fall and ends in "Fatal Python error:
none_dealloc"; a leak shows as memory that keeps growing.

    xvfb-run -a .venv/bin/python bench/bench_gui_soak.py [--seconds 390]

Measured here (4 Dec 2026, PySide6 6.11.3, xvfb): 390 s without a crash, None's count
rising slowly with uncollected garbage (85,909 -> 97,415), RSS 205.5 -> 206.6 MiB after the
first 30 s. With PySide6 6.12.0 the Devices page alone lost ~78 references to None a second.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=390.0)
    args = ap.parse_args()
    os.environ["KMINER_HOME"] = tempfile.mkdtemp(prefix="kminer-soak-")
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    import psutil

    from app.context import AppContext
    from app.desktop import MarketSession
    from app.devices_service import DeviceService
    from app.earnings_service import EarningsService
    from app.jobs_service import JobsService
    from app.preview_service import PreviewService
    from app.wallet_gui import WalletSession
    from app.wallet_service import WalletService
    from ui.main_window import MainWindow
    from ui.qt import QApplication, QTimer
    from wallet.keystore import Keystore

    app = QApplication.instance() or QApplication([])
    ctx = AppContext.open()
    devices = DeviceService(ctx, idle=lambda: None)
    ks = Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True)
    ctx.settings.wallet.account = ks.create("soak")
    with WalletService(ctx, keystore=ks, passwords=[lambda a: "soak"]) as svc:
        svc.deployment()
    wallet = WalletSession(ctx, keystore=ks)
    window = MainWindow(ctx=ctx, devices=devices, jobs=JobsService(ctx), earnings=EarningsService(ctx), wallet=wallet,
                        market=MarketSession(ctx, wallet, devices), preview=PreviewService(), tray=False)
    window.chain_runner.submit(lambda: wallet.unlock("soak")).result(60)
    window.resize(1280, 800)
    window.show()
    pages = window.page_names()
    flips = {"n": 0}
    proc = psutil.Process()
    t0 = time.time()
    marks: list[tuple[float, int, float]] = []

    def flip() -> None:
        flips["n"] += 1
        window.show_page(pages[flips["n"] % len(pages)])

    def mark() -> None:
        marks.append((time.time() - t0, sys.getrefcount(None), proc.memory_info().rss / 2**20))
        print(f"{marks[-1][0]:5.0f} s  None refs {marks[-1][1]:7d}  RSS {marks[-1][2]:6.1f} MiB", flush=True)
        if marks[-1][0] > args.seconds:
            app.quit()

    flipper = QTimer()
    flipper.timeout.connect(flip)
    flipper.start(2000)
    marker = QTimer()
    marker.timeout.connect(mark)
    marker.start(30000)
    mark()
    app.exec()
    window.quit()
    if len(marks) > 2:
        (t1, n1, m1), (t2, n2, m2) = marks[1], marks[-1]
        print(f"after warm-up: None refs {(n2 - n1) / (t2 - t1):+.1f}/s, RSS {(m2 - m1) / (t2 - t1) * 3600:+.1f} MiB/h; "
              f"no crash in {t2:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
