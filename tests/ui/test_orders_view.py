"""The Orders view (pytest-qt, offscreen) over the real BuyerService on a real embedded chain:
posting a dataset order from the scene editor's spec escrows exactly the budget and shows a
row per shard; bad input is refused at the field; a training order waits for its data; and
end to end, a miner (MinerService, real sandboxed render jobs) delivers both shards, the
view's buyer loop verifies them in the sandbox and shows the figures, and the merged dataset
is browsed with its boxes. The curves view shows a model's curves and card figures."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.models.conftest import NTK, ROOT, open_user
from ui.background import Background
from ui.orders_view import OrdersView
from ui.qt import Qt

TABLE = ROOT / "resources" / "scenes" / "table_top.json"


def small_scene() -> dict:
    s = json.loads(TABLE.read_text())
    s["outputs"].update({"width": 96, "height": 72})
    return s


class Env:
    def __init__(self, qtbot, tmp_path: Path):
        from app.buyer import BuyerService
        from app.context import AppContext

        self.qtbot = qtbot
        self.tmp = tmp_path
        self.chain = Background("chain")
        self.files = Background("files")
        self.user = self.on_chain(lambda: open_user(AppContext.open()))
        u = self.user
        self.buyer = self.on_chain(lambda: BuyerService(u.ctx, u.wallet.market(), u.wallet.signer()))
        self.miner = None
        self.view: OrdersView | None = None

    def on_chain(self, fn, timeout: float = 120):
        return self.chain.submit(fn).result(timeout)

    def ntk(self) -> int:
        return self.on_chain(lambda: self.user.wallet.token().balance_of(self.user.address))

    def make_view(self, **kw) -> OrdersView:
        v = OrdersView(buyer=self.buyer, chain_runner=self.chain, files_runner=self.files, **kw)
        self.qtbot.addWidget(v)
        v.resize(1100, 800)
        v.show()
        self.qtbot.waitUntil(lambda: v.last_refresh_at is not None, timeout=15000)
        self.view = v
        return v

    def start_miner(self) -> None:
        """A second account mining on the CPU with its own app folders, on the same chain."""
        from eth_account import Account

        from app.devices import DeviceService
        from app.earnings import Ledger
        from app.miner import MinerService
        from tests.buyer.conftest import context

        ctx = context(self.tmp / "miner")
        acct = Account.create()
        devs = DeviceService(ctx, idle=lambda: None)
        devs.set_mode("cpu", "mining")
        ctx.settings.device("cpu").price_floor_ntk_per_hour = 0.001
        ledger = Ledger(ctx.paths.ledger_db)
        w = self.user.wallet

        def make():
            w.chain.transact(w.signer(), to=acct.address, value_wei=10**18, gas=21_000, what="miner gas")
            return MinerService(ctx, w.market(), acct, devs, ledger)

        self.miner = (self.on_chain(make), devs, ledger)

    def close(self) -> None:
        if self.view is not None:
            self.view.shutdown()
        self.files.shutdown()
        if self.miner is not None:
            svc, devs, ledger = self.miner
            self.on_chain(svc.close)
            ledger.close()
            devs.close()
        self.on_chain(self.buyer.close)
        self.on_chain(self.user.wallet.close)
        self.chain.shutdown()


@pytest.fixture
def env(qtbot, tmp_path, monkeypatch):
    # A short app home: MarketClient.post_shards sizes its gas limit on the embedded chain for
    # spec URIs of up to ~150 characters (file:// URIs into the artifact store), and pytest's
    # tmp paths are longer than a user's data folder. Reported to the lead (wallet/market.py).
    home = Path(tempfile.mkdtemp(prefix="km-"))
    monkeypatch.setenv("KMINER_HOME", str(home))
    e = Env(qtbot, home)
    yield e
    e.close()
    shutil.rmtree(home, ignore_errors=True)


def confirm(qtbot, v: OrdersView, button=None) -> None:
    """Press the post button, then OK in the cost confirmation."""
    qtbot.mouseClick(button or v.post_dataset_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: v.confirm_dialog is not None, timeout=5000)
    qtbot.mouseClick(v.confirm_dialog.ok_button, Qt.MouseButton.LeftButton)


def post(v: OrdersView, qtbot, *, count: int, shards: int, budget: str):
    v.count_spin.setValue(count)
    v.shards_spin.setValue(shards)
    v.budget_edit.setText(budget)
    with qtbot.waitSignal(v.posted, timeout=30000) as sig:
        confirm(qtbot, v)
    return sig.args[0]


def test_posting_asks_to_confirm_the_total_cost_and_cancel_posts_nothing(env, qtbot):
    v = env.make_view(auto_step=False)
    v.post_from_spec(small_scene())
    v.count_spin.setValue(4)
    v.shards_spin.setValue(2)
    v.budget_edit.setText("3")
    qtbot.mouseClick(v.post_dataset_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: v.confirm_dialog is not None, timeout=5000)
    dlg = v.confirm_dialog
    assert dlg.total_label.text() == "<b>3 NTK</b>" and dlg.ok_button.text() == "Post for 3 NTK"
    assert "2 shards × 1.5 NTK, 4 images" in dlg.line_labels[0].text()
    assert not v.post_dataset_button.isEnabled()
    dlg.reject()
    assert v.post_dataset_button.isEnabled() and env.buyer.orders() == []


def test_posting_from_the_scene_editor_escrows_the_budget_and_shows_each_shard(env, qtbot):
    v = env.make_view(auto_step=False)
    assert v.empty.isVisible() and v.table.isHidden()
    before = env.ntk()
    v.post_from_spec(small_scene())
    assert "from the scene editor" in v.scene_edit.placeholderText() and v.forms.currentIndex() == 0
    v.count_spin.setValue(4)
    v.shards_spin.setValue(2)
    v.budget_edit.setText("3")
    assert v.budget_note.text() == "1.5 NTK per shard · 3 NTK escrowed"
    order = post(v, qtbot, count=4, shards=2, budget="3")
    assert order.kind == "render" and [s.count for s in order.shards] == [2, 2]
    assert before - env.ntk() == 3 * NTK
    qtbot.waitUntil(lambda: v.table.rowCount() == 1 and v.detail.shards.rowCount() == 2, timeout=10000)
    assert v.table.item(0, 3).text() == "open" and v.table.cellWidget(0, 4).format() == "0/2 verified"
    assert [v.detail.shards.item(r, 2).text() for r in range(2)] == ["open", "open"]
    assert [v.detail.shards.item(r, 1).text() for r in range(2)] == ["0–1", "2–3"]
    assert v.detail.detail_title.text().startswith(f"Order {order.id} · 4 images of “table-top”")
    assert v.summary.text() == "1 order · 1 in progress · 3 NTK in escrow"
    # the "posted" news goes away by itself; an error stays until the next message
    assert v.banner.isVisible() and f"Order {order.id} posted" in v.banner.text()
    v.OK_MESSAGE_MS = 50
    v.show_message("Order 9 posted", "ok")
    qtbot.waitUntil(lambda: not v.banner.isVisible(), timeout=3000)
    v.show_message("Not posted: node down", "error")
    qtbot.wait(150)
    assert v.banner.isVisible()


def test_bad_input_is_refused_at_the_field_and_nothing_is_posted(env, qtbot):
    v = env.make_view(auto_step=False)
    before = env.ntk()
    qtbot.mouseClick(v.post_dataset_button, Qt.MouseButton.LeftButton)
    assert v.dataset_error.text() == "choose a scene spec file, or send one from the scene editor"
    v.post_from_spec(small_scene())
    v.count_spin.setValue(2)
    v.shards_spin.setValue(3)
    qtbot.mouseClick(v.post_dataset_button, Qt.MouseButton.LeftButton)
    assert "more shards than images" in v.dataset_error.text()
    v.shards_spin.setValue(1)
    assert v.dataset_error.isHidden()   # the old complaint goes as soon as the user fixes the field
    v.budget_edit.setText("ten")
    assert v.budget_note.text() == "Not a number: 'ten'."
    qtbot.mouseClick(v.post_dataset_button, Qt.MouseButton.LeftButton)
    assert v.dataset_error.isVisible() and v.dataset_error.text() == "Not a number: 'ten'."
    v.budget_edit.setText(str(10**9))   # more NTK than the wallet holds: the chain refuses, one line
    with qtbot.waitSignal(v.posted, timeout=30000) as sig:
        confirm(qtbot, v)
    assert isinstance(sig.args[0], Exception)
    assert v.dataset_error.text() == ("Not posted: not enough NTK: the order escrows 1,000,000,000 NTK, "
                                      "you have 1,000,000 NTK")
    qtbot.keyClicks(v.scene_edit, str(env.tmp / "missing.json"))   # typing a path replaces the editor's spec
    v.budget_edit.setText("1")
    with qtbot.waitSignal(v.posted, timeout=30000):
        confirm(qtbot, v)
    assert v.dataset_error.text().startswith("Not posted: scene:")
    assert env.ntk() == before and env.buyer.orders() == []


def test_a_training_order_waits_for_its_data(env, qtbot):
    v = env.make_view(auto_step=False)
    v.post_from_spec(small_scene())
    data = post(v, qtbot, count=4, shards=2, budget="2")
    qtbot.waitUntil(lambda: v.data_combo.count() == 1, timeout=10000)
    assert v.data_combo.currentData() == data.id and v.holdout_combo.currentData() is None
    v.forms.setCurrentIndex(1)
    v.epochs_spin.setValue(2)
    v.train_reward_edit.setText("5")
    with qtbot.waitSignal(v.posted, timeout=30000) as sig:
        confirm(qtbot, v, v.post_train_button)
    train = sig.args[0]
    assert train.kind == "train" and train.state == "waiting" and train.params["train"]["epochs"] == 2
    qtbot.waitUntil(lambda: v.table.rowCount() == 2, timeout=10000)
    assert v.table.item(0, 2).text() == "model" and v.table.item(0, 3).text() == "waiting for its data"
    assert v.detail.results.currentWidget() is v.detail.results_none

    # a delivered model (training takes minutes: the book is moved to "done" with a real model
    # folder, as BuyerService._finish leaves it) shows its curves and card figures
    model = env.tmp / "delivered-model"
    shutil.copytree(ROOT / "resources" / "models" / "shelf-detector", model)
    env.buyer.book.set_order(train.id, state="done", output_dir=str(model))
    with qtbot.waitSignal(v.detail.curves.loaded, timeout=10000):
        v.refresh(force=True)
    assert v.detail.results.currentWidget() is v.detail.curves and v.detail.save_button.isVisible()
    assert "mAP@0.5 <b>0.862</b>" in v.detail.curves.summary.text() and v.detail.curves.image.pixmap() is not None


@pytest.mark.slow
def test_shards_are_rendered_verified_with_figures_and_the_dataset_browsed(env, qtbot):
    v = env.make_view(interval_s=0.5)
    v.post_from_spec(small_scene())
    order = post(v, qtbot, count=2, shards=2, budget="2")
    env.start_miner()
    miner = env.miner[0]
    t0 = time.monotonic()
    seen_states: set[str] = set()
    while time.monotonic() - t0 < 240:
        env.on_chain(miner.step)
        qtbot.wait(300)
        if v.detail.shards.rowCount() == 2:
            seen_states |= {v.detail.shards.item(r, 2).text() for r in range(2)}
        o = v.order(order.id)
        if o is not None and o.state == "done":
            break
    else:
        o = v.order(order.id)
        shards = [(s.state, s.chain_status, s.reason, s.figures) for s in o.shards] if o else None
        rows = env.on_chain(miner.rows)
        raise AssertionError(f"order not done: {o and o.state} {o and o.reason} shards {shards} miner {rows}")
    qtbot.waitUntil(lambda: v.detail.shards.item(0, 2).text() == "accepted", timeout=10000)
    assert seen_states & {"claimed", "submitted", "verifying"}   # progress was visible on the way
    figs = [v.detail.shards.item(r, 5).text() for r in range(2)]
    assert all(f.startswith("✓ 1/1 exact, MAD ") and ", IoU " in f for f in figs), figs
    assert v.detail.shards.item(0, 5).toolTip().startswith("Passed: 1 of 1 sampled frames re-rendered here exactly")
    assert v.table.cellWidget(0, 4).format() == "2/2 verified" and v.table.item(0, 3).text() == "done"
    assert v.detail.save_button.isVisible() and not v.detail.repost_button.isVisible()
    qtbot.waitUntil(lambda: v.detail.browser.page is not None and len(v.detail.browser.thumbs) == 2, timeout=20000)
    assert v.detail.browser.page.images == 2 and v.detail.browser.page.boxes > 0
    assert v.detail.results.currentWidget() is v.detail.browser
    qtbot.waitUntil(lambda: v.detail.browser.large.pixmap() is not None, timeout=10000)
    assert v.detail.browser.large.pixmap().width() == 96
    qtbot.mouseClick(v.detail.browser.large, Qt.MouseButton.LeftButton)   # the picked frame, full size in its own window
    qtbot.waitUntil(lambda: v.detail.browser.enlarged is not None and v.detail.browser.enlarged.isVisible(), timeout=5000)
    assert v.detail.browser.enlarged.windowTitle().endswith(".png")
    v.detail.browser.enlarged.close()
    dest = env.tmp / "copy"
    v.save_copy(order.id, dest)
    qtbot.waitUntil(lambda: (dest / "annotations.json").is_file(), timeout=10000)
    assert any("accepted" in v.detail.activity.item(i).text() for i in range(v.detail.activity.count()))


def test_the_curves_view_shows_a_models_curves_and_card(qtbot):
    from ui.dataset_browser import CurvesView

    runner = Background("files")
    try:
        cv = CurvesView(runner=runner)
        qtbot.addWidget(cv)
        with qtbot.waitSignal(cv.loaded, timeout=10000):
            cv.load(ROOT / "resources" / "models" / "shelf-detector")
        assert "centernet-s" in cv.summary.text() and "mAP@0.5 <b>0.862</b>" in cv.summary.text()
        assert "8 epochs" in cv.summary.text()
        assert cv.image.pixmap() is not None and cv.image.pixmap().width() == 720
        assert "epoch 8: loss" in cv.table.text()
    finally:
        runner.shutdown()


def test_figures_read_as_one_line_with_the_verdict():
    from app.buyer import ShardStatus
    from ui.order_detail import figures_text

    def shard(verified, figures, state="accepted"):
        return ShardStatus(order_id=1, index=0, start=0, count=4, state=state, job_id=1, miner=None, chain_status=None,
                           result_sha=None, result_uri=None, verified=verified, figures=figures, reason=None, tx=None,
                           history=[], spec_sha="", spec_uri="", verify_job=None, posted_at=None,
                           submitted_seen_at=None, settled_at=None)

    bad = {"mode": "exact", "rgb_mad_max": 41.5, "box_iou_min": 0.2, "exact_matches": 1, "frames_checked": [0, 3, 5]}
    assert figures_text("render", shard(False, bad, "rejected")) == (
        "✗ 1/3 exact, MAD 41.50, IoU 0.200",
        "FAILED: 1 of 3 sampled frames re-rendered here exactly; largest mean pixel difference 41.50 (0-255); "
        "smallest box IoU 0.200")
    model = {"metric": "map50", "claimed": 0.884, "measured": 0.871, "tolerance": 0.05, "gap": 0.013}
    assert figures_text("train", shard(True, model))[0] == "✓ mAP@0.5 0.871 vs 0.884 claimed"
    assert "gap +0.013, tolerance 0.05" in figures_text("train", shard(True, model))[1]
    assert figures_text("render", shard(False, {"check": "the dataset is of another scene"}, "rejected"))[0] == \
        "✗ the dataset is of another scene"
    assert figures_text("render", shard(None, None, "verifying"))[0] == "verifying…"
    assert figures_text("render", shard(None, None, "open")) == ("", "")
