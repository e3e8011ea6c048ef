"""Render the app's main views into docs/screenshots/ (run under Xvfb: `make screenshots`).

Nothing is faked: the window is built the way cli/gui.py builds it (devices, jobs, earnings,
scene editor, orders, models, wallet, one "chain" runner), in a throwaway KMINER_HOME.
A wallet is made with the first-run flow on the embedded `local` chain and unlocked; the CPU
is set to mining; small dataset orders of the demo shelf scene are posted through the Orders
view; the app's own miner renders them in the sandbox and the buyer verifies and accepts
them, which pays the miner (Jobs, Earnings, Wallet and Orders then show that real work).
The demo shelf detector is bought through the Models page and tried on
resources/examples/infer_shelf.png. The scene editor shows its live preview and a sample
grid, and (when bpy is installed) a photoreal scene's Cycles preview under the live one.
The first-run wizard, the settings dialog and the About box are shot too.

`--standin` adds a devices shot with two GPUs from the tests' NVML stand-in, to show what a
rig looks like; it is labelled as such in the README.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple 42"


class Shooter:
    def __init__(self, app, out: Path):
        self.app, self.out = app, out
        self.t0 = time.monotonic()

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.02)

    def wait(self, cond, timeout: float, what: str) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.app.processEvents()
            if cond():
                return True
            time.sleep(0.05)
        print(f"  (gave up waiting {timeout:.0f} s for {what})", file=sys.stderr)
        return False

    def theme(self, name: str) -> None:
        from ui.theme import apply_theme

        apply_theme(self.app, name)
        self.pump(0.3)

    def save(self, widget, name: str) -> None:
        self.app.processEvents()
        path = self.out / f"{name}.png"
        widget.grab().save(str(path))
        print(f"wrote {path} ({time.monotonic() - self.t0:.0f} s)")


def small_shelf(width: int = 320, height: int = 240) -> dict:
    """The demo shelf scene at a small size, so an order renders in seconds on a CPU."""
    s = json.loads((ROOT / "resources" / "scenes" / "retail_shelf.json").read_text())
    s["outputs"].update({"width": width, "height": height})
    return s


def post_order(shot: Shooter, view, *, count: int, shards: int, budget: str, name: str, market: str) -> None:
    """Post a dataset order from the Orders page on `market` ("p2p", the form's default where the
    network has an order market, or "jobs"); `name` is the job market's (a P2P order is named by
    its scene)."""
    from PySide6.QtTest import QTest

    from ui.qt import Qt

    view.post_from_spec(small_shelf())
    view.market_combo.setCurrentIndex(view.market_combo.findData(market))
    view.count_spin.setValue(count)
    view.shards_spin.setValue(shards)
    view.budget_edit.setText(budget)
    if market == "jobs":
        view.name_edit.setText(name)
    posted = []
    view.posted.connect(posted.append)
    view.p2pPosted.connect(posted.append)
    QTest.mouseClick(view.post_dataset_button, Qt.MouseButton.LeftButton)
    shot.wait(lambda: view.confirm_dialog is not None, 30, "the cost confirmation")
    if view.confirm_dialog is not None:
        QTest.mouseClick(view.confirm_dialog.ok_button, Qt.MouseButton.LeftButton)
    shot.wait(lambda: posted, 60, f"order {name} to be posted")


def shoot_main(shot: Shooter, args) -> None:
    from app.context import AppContext
    from app.market_session import MarketSession
    from app.devices import DeviceService
    from app.earnings import EarningsService
    from app.first_run import FirstRun
    from app.runtime import JobsService
    from app.runtime import PreviewService
    from app.status import sandbox_status
    from app.account import WalletSession
    from ui.background import Background
    from ui.first_run import FirstRunWizard
    from ui.main_window import MainWindow
    from PySide6.QtTest import QTest

    from ui.qt import Qt

    ctx = AppContext.open()
    ctx.settings.general.telemetry_interval_s = 0.5
    devices = DeviceService(ctx)
    chain_runner = Background("chain")

    # the first-run wizard's first page, as a new user sees it
    shot.theme("light")
    fr_runner = Background("first-run")
    wizard = FirstRunWizard(flow=FirstRun(ctx), devices=devices, runner=fr_runner, chain_runner=chain_runner)
    wizard.show()
    shot.pump(1.0)
    shot.save(wizard, "first-run")
    wizard.hide()
    fr_runner.shutdown(wait=True)

    # what the wizard does with a user's choices: a wallet on the local chain, the CPU mining
    flow = FirstRun(ctx)
    flow.create(PASSWORD, PASSWORD)
    chain_runner.submit(lambda: flow.choose_network("local")).result(300)
    FirstRun.set_modes(devices, {"cpu": "mining"})
    wallet = WalletSession(ctx)
    chain_runner.submit(lambda: wallet.unlock(PASSWORD)).result(120)

    w = MainWindow(ctx=ctx, devices=devices, jobs=JobsService(ctx, devices=devices), sandbox=sandbox_status(ctx.settings),
                   earnings=EarningsService(ctx), wallet=wallet, market=MarketSession(ctx, wallet, devices),
                   preview=PreviewService(), chain_runner=chain_runner, tray=False)
    w.resize(*args.size)
    w.show()
    shot.pump(1.0)

    # orders: two small orders of the demo shelf scene, from the Orders page: one on the order
    # market (the form's default: the local chain has one), one on the job market (chosen)
    w.show_page("Orders")
    ov = w.orders_view
    shot.wait(lambda: w.market_driver is not None and w._market_seen_ready, 120, "the market to open")
    shot.wait(lambda: ov.market_combo.model().item(0).isEnabled() and ov.last_refresh_at is not None, 60,
              "the order market")
    print(f"  the dataset form starts on: {ov.market_choice()}", file=sys.stderr)
    post_order(shot, ov, count=12, shards=3, budget="4.5", name="shelf photos, batch 1", market="p2p")
    post_order(shot, ov, count=8, shards=2, budget="3", name="shelf photos, batch 2", market="jobs")

    # the demo detector: buy it on the Models page and try it on the example photo
    w.show_page("Models")
    mv = w.models_view
    shot.wait(lambda: bool(mv.cards), 60, "the model cards")
    det = next((i for i, c in mv.cards.items() if "shelf" in c.listing.name.lower() or "detector" in
                c.listing.name.lower()), min(mv.cards)) if mv.cards else None
    if det is not None:
        mv.request_buy(det)
        shot.wait(lambda: mv.confirm_dialog is not None, 60, "the buy confirmation")
        if mv.confirm_dialog is not None:
            shot.pump(0.3)
            shot.save(mv.confirm_dialog, "models-buy")
            QTest.mouseClick(mv.confirm_dialog.buy_button, Qt.MouseButton.LeftButton)
            shot.wait(lambda: mv.listing(det) is not None and mv.listing(det).owned, 120, "the purchase")
        done = []
        mv.tryFinished.connect(done.append)
        if mv.try_photos(det, [ROOT / "resources" / "examples" / "infer_shelf.png"]):
            shot.wait(lambda: done, 180, "Try it")

    from ui.orders_p2p import p2p_key

    # let the miner render and the buyer verify and accept every shard
    def settled() -> bool:
        orders = [*(getattr(ov, "orders", None) or ()), *(getattr(ov, "p2p_orders", None) or ())]
        return len(orders) >= 2 and all(o.state in ("done", "failed") for o in orders)

    w.show_page("Orders")
    shot.wait(settled, args.order_timeout, "the orders to be verified and paid")
    shot.pump(3.0)

    # the scene editor: live preview and a sample grid
    w.show_page("Scene editor")
    ed = w.scene_editor
    shot.pump(2.0)
    panel = ed.preview
    panel.tabs.setCurrentIndex(1)
    panel.sample()
    shot.wait(lambda: panel.grid.hint.isVisible(), 90, "the sample grid")
    panel.tabs.setCurrentIndex(0)
    shot.pump(1.0)

    pages = [("Devices", "devices", True), ("Jobs", "jobs", False), ("Earnings", "earnings", True),
             ("Scene editor", "scene-editor", True), ("Orders", "orders", False), ("Models", "models", False),
             ("Wallet", "wallet", True)]
    for theme in ("light", "dark"):
        shot.theme(theme)
        for page, name, dark in pages:
            if theme == "dark" and not dark:
                continue
            w.show_page(page)
            if page == "Orders" and ov.p2p_orders:   # the order posted on the form's default market
                ov.selected = p2p_key(ov.p2p_orders[0].id)
                ov.refresh(force=True)
                ov._show_detail()
            if page == "Jobs" and w.jobs_view.table.rowCount():
                w.jobs_view.table.selectRow(0)   # the newest job's log and outputs
            shot.pump(args.seconds if page in ("Devices", "Earnings") else 1.0)
            shot.save(w, name if theme == "light" else f"{name}-dark")
            if page == "Orders" and theme == "light" and ov.p2p_orders:
                # the peer-to-peer order's Dataset tab: its verified, unsealed shards merged, frames with boxes
                d = ov.p2p_detail
                d.tabs.setCurrentIndex(1)
                shot.wait(lambda: d.browser.page is not None and d.browser.large.pixmap() is not None, 30,
                          "the dataset preview")
                shot.pump(1.0)
                shot.save(w, "orders-dataset")
                d.tabs.setCurrentIndex(0)
            if page == "Scene editor" and theme == "light":
                panel.tabs.setCurrentIndex(1)
                shot.pump(0.5)
                shot.save(w, "scene-editor-samples")
                panel.tabs.setCurrentIndex(0)
                shoot_photoreal_preview(shot, ed, w)
    shot.theme("light")

    from ui.about import AboutDialog
    from ui.qt import qVersion
    from ui.settings_dialog import SettingsDialog

    dlg = SettingsDialog(ctx.settings, w)
    dlg.show()
    shot.pump(0.5)
    shot.save(dlg, "settings")
    dlg.reject()
    about = AboutDialog(ctx.paths, qVersion(), w)
    about.show()
    shot.pump(0.5)
    shot.save(about, "about")
    about.reject()
    w.quit()
    shot.pump(0.5)


def shoot_photoreal_preview(shot: Shooter, ed, target, name: str = "scene-editor-photoreal") -> bool:
    """The editor's Engine tab set to photoreal: the live (fast) frame, then the small Cycles
    frame under it. Skipped without bpy (the optional photoreal component)."""
    if importlib.util.find_spec("bpy") is None:
        print("  (no bpy: the photoreal preview shot is skipped)", file=sys.stderr)
        return False
    tabs = [ed.tabs.tabText(i).removesuffix(" \u26a0") for i in range(ed.tabs.count())]
    ed.tabs.setCurrentIndex(tabs.index("Engine"))
    engine = ed.forms["Engine"].all_editors()["engine"].combo
    box = ed.preview.photo
    before = box.last_result
    engine.setCurrentText("photoreal")
    ok = shot.wait(lambda: box.last_result is not None and box.last_result is not before, 180, "the photoreal preview")
    shot.pump(0.5)
    shot.save(target, name)
    # the demo scene as it was (not "changed"), or closing the window would ask about saving it
    ed.open_path(ROOT / "resources" / "scenes" / "retail_shelf.json", demo=True)
    shot.wait(lambda: not ed.is_dirty() and not box.isVisible(), 60, "the demo scene again")
    ed.tabs.setCurrentIndex(0)
    shot.pump(0.5)
    return ok


def shoot_editor_only(shot: Shooter, args) -> None:
    """Only the scene editor (its real preview children), for the photoreal preview shot."""
    from app.runtime import PreviewService
    from ui.background import Background
    from ui.scene_editor import SceneEditor

    svc, runner = PreviewService(), Background("scene-files")
    ed = SceneEditor(preview=svc, runner=runner, scenes_dir=Path(os.environ["KMINER_HOME"]) / "scenes")
    ed.resize(*args.size)
    ed.show()
    try:
        shot.wait(lambda: ed.preview.last_result is not None, 120, "the live preview")
        shoot_photoreal_preview(shot, ed, ed)
    finally:
        ed.shutdown()
        runner.shutdown()
        svc.close()


def shoot_standin(shot: Shooter, args) -> None:
    from app.context import AppContext
    from app.devices import DeviceService
    from app.runtime import JobsService
    from app.status import sandbox_status
    from tests.gpu.nvml_standin import RTX_3070_X1, RTX_3090_X16, make_standin
    from ui.main_window import MainWindow

    nv = make_standin(gpus=[RTX_3070_X1, RTX_3090_X16])
    nv.set_reading(0, util_pct=97, temp_c=64, power_w=118, fan_pct=55, mem_used_mb=3100,
                   clock_sm_mhz=1905, clock_mem_mhz=7000)
    nv.set_reading(1, util_pct=0, temp_c=88, power_w=95, fan_pct=80)
    for theme, name in (("light", "devices-rig-standin"), ("dark", "devices-rig-standin-dark")):
        ctx = AppContext.open()
        ctx.settings.general.telemetry_interval_s = 0.5
        devices = DeviceService(ctx, nvml_module=nv, idle=lambda: 30.0)
        for dev, mode in {"cuda:0": "mining", "cuda:1": "mining", "cpu": "auto"}.items():
            devices.set_mode(dev, mode)
        shot.theme(theme)
        w = MainWindow(ctx=ctx, devices=devices, jobs=JobsService(ctx, devices=devices), sandbox=sandbox_status(ctx.settings),
                       tray=False)
        w.resize(*args.size)
        w.show()
        shot.pump(args.seconds)
        shot.save(w, name)
        w.quit()


def shoot_wallet(shot: Shooter, args) -> list[str]:
    """Every step of creating a wallet (the recovery phrase, a wrong word asked back, prices, the
    mining key), of restoring one (bad words, then the right ones), and the readiness banner of
    a restarted app with the wallet locked: without a mining key, then with one."""
    from app.account import WalletSession
    from app.context import AppContext
    from app.devices import DeviceService
    from app.first_run import FirstRun
    from app.market_session import MarketSession
    from app.status import sandbox_status
    from ui.background import Background
    from ui.first_run import ADDRESS, DEVICES, FLOORS, NETWORK, PHRASE, QUIZ, RESTORE, FirstRunWizard
    from ui.main_window import MainWindow

    def wizard_in(home: str):
        os.environ["KMINER_HOME"] = home
        ctx = AppContext.open()
        devices = DeviceService(ctx)
        runners = [Background("first-run"), Background("chain")]
        w = FirstRunWizard(flow=FirstRun(ctx), devices=devices, runner=runners[0], chain_runner=runners[1])
        w.show()
        shot.pump(1.0)
        return ctx, devices, runners, w

    def step(w, expect: int, what: str, timeout: float = 120) -> None:
        w.next()
        shot.wait(lambda: w.currentId() == expect, timeout, what)
        shot.pump(0.5)

    shot.theme("light")
    home = tempfile.mkdtemp(prefix="km-shots-wallet-")
    ctx, devices, runners, w = wizard_in(home)
    shot.save(w, "wallet-1-welcome")
    step(w, w.welcome.nextId(), "the create page")
    w.create_page.password.setText("correct horse")
    w.create_page.again.setText("correct horse!")
    w.next()
    shot.pump(0.3)
    shot.save(w, "wallet-2-create-mismatch")
    w.create_page.again.setText("correct horse")
    step(w, PHRASE, "the phrase page")
    shot.save(w, "wallet-3-phrase")
    w.phrase_page.confirm.setChecked(True)
    step(w, QUIZ, "the quiz page")
    words = w.flow.phrase
    pos = w.flow.quiz_positions
    for p_, e in w.quiz_page.edits.items():
        e.setText(words[p_ - 1])
    w.quiz_page.edits[pos[1]].setText("banana")
    w.next()
    shot.pump(0.3)
    shot.save(w, "wallet-4-quiz-wrong-word")
    w.quiz_page.edits[pos[1]].setText(words[pos[1] - 1])
    step(w, ADDRESS, "the address page")
    shot.save(w, "wallet-5-address")
    step(w, NETWORK, "the network page")
    step(w, DEVICES, "the local chain", 300)
    shot.save(w, "wallet-6-devices")
    for d, c in w.devices_page.combos.items():
        c.setCurrentIndex(c.findData("mining" if d == "cpu" else "idle"))
    step(w, w.devices_page.nextId(), "the bench page")
    w.next()  # skip the benchmark
    shot.wait(lambda: w.currentId() == FLOORS and bool(w.floors_page.spins), 30, "the floors page")
    shot.pump(0.5)
    shot.save(w, "wallet-7-prices-and-mining-key")
    w.next()
    shot.wait(lambda: not w.isVisible(), 120, "the wizard to finish")
    for r in runners:
        r.shutdown(wait=True)

    # the app after a restart: the wallet locked; first without a mining key, then with the wizard's
    def window(tag: str, seconds: float = 8.0):
        wallet = WalletSession(ctx)
        chain = Background("chain")
        win = MainWindow(ctx=ctx, devices=devices, sandbox=sandbox_status(ctx.settings), wallet=wallet,
                         market=MarketSession(ctx, wallet, devices), chain_runner=chain, tray=False)
        win.resize(*args.size)
        win.show()
        shot.wait(lambda: win.readiness_banner.readiness is not None, 60, "the first market pass")
        shot.pump(seconds)
        shot.save(win, tag)
        return win

    key_store = Path(home) / "data" / "mining-keys.json"
    saved = key_store.read_bytes() if key_store.exists() else None
    if saved is not None:
        key_store.rename(key_store.with_suffix(".aside"))
    win = window("wallet-8-banner-locked-no-mining-key", 3.0)
    win.readiness_banner.button.click()
    shot.pump(2.0)
    shot.save(win, "wallet-9-mining-key-tab")
    win.quit()
    shot.pump(0.5)
    if saved is not None:
        key_store.with_suffix(".aside").rename(key_store)
    win = window("wallet-10-banner-locked-with-mining-key")
    win.show_page("Devices")
    shot.pump(2.0)
    shot.save(win, "wallet-11-devices-ready")
    win.quit()
    shot.pump(0.5)

    # restoring: bad words, a bad checksum, then the right words
    home2 = tempfile.mkdtemp(prefix="km-shots-restore-")
    ctx2, devices2, runners2, w2 = wizard_in(home2)
    w2.welcome.restore_radio.setChecked(True)
    shot.pump(0.3)
    shot.save(w2, "restore-1-welcome")
    step(w2, RESTORE, "the restore page")
    page = w2.restore_page
    page.password.setText("correct horse")
    page.again.setText("correct horse")
    page.phrase.setPlainText(" ".join(words[:-1] + ["bananna"]))
    w2.next()
    shot.wait(lambda: page.fields_["phrase"].isVisible(), 30, "the phrase error")
    shot.save(w2, "restore-2-unknown-word")
    page.phrase.setPlainText(" ".join([words[1], words[0], *words[2:]]))
    w2.next()
    shot.wait(lambda: page.fields_["phrase"].isVisible() or w2.currentId() == ADDRESS, 30, "the checksum check")
    shot.pump(0.3)
    shot.save(w2, "restore-3-swapped-words")
    if w2.currentId() != ADDRESS:
        page.phrase.setPlainText(" ".join(words))
        step(w2, ADDRESS, "the restored wallet")
    shot.save(w2, "restore-4-address")
    w2.reject()
    for r in runners2:
        r.shutdown(wait=True)
    devices2.close()
    devices.close()
    return [home, home2]   # the throwaway homes, removed by main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--seconds", type=float, default=4.0, help="live polling before the devices and earnings shots")
    ap.add_argument("--order-timeout", type=float, default=180.0, help="seconds to wait for the orders to be paid")
    ap.add_argument("--standin", action="store_true", help="also shoot the devices view with stand-in GPUs")
    ap.add_argument("--wallet-only", action="store_true",
                    help="only the wallet's creation and restoration steps and the readiness banner (a minute)")
    ap.add_argument("--editor-only", action="store_true",
                    help="only the scene editor with a photoreal scene's Cycles preview (a minute; needs bpy)")
    ap.add_argument("--size", type=lambda t: tuple(int(v) for v in t.lower().split("x")), default=(1280, 800),
                    metavar="WxH", help="main window size (default 1280x800; try a small laptop's 1024x600)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # a short home: the market sizes gas for spec URIs into the artifact store of ~150 characters
    homes = [tempfile.mkdtemp(prefix="km-shots-")]
    os.environ["KMINER_HOME"] = homes[0]
    sys.path.insert(0, str(ROOT))

    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setApplicationName("Knowledge Miner")
    app.setQuitOnLastWindowClosed(False)
    shot = Shooter(app, out)
    if args.wallet_only:
        homes += shoot_wallet(shot, args)
    elif args.editor_only:
        shoot_editor_only(shot, args)
    else:
        shoot_main(shot, args)
    if args.standin and not (args.wallet_only or args.editor_only):
        homes.append(tempfile.mkdtemp(prefix="km-shots-rig-"))
        os.environ["KMINER_HOME"] = homes[-1]
        shoot_standin(shot, args)
    print(f"done in {time.monotonic() - shot.t0:.0f} s")
    import shutil

    for home in homes:   # the throwaway app homes (chain, jobs, datasets)
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
