"""The Orders page's peer-to-peer orders (pytest-qt, offscreen) over real parts: a real
OrderBuyer and OrderMiner on the OrderMarket of the in-memory chain, their transport peers on
127.0.0.1 (tests/orders fixtures). The view lists what the buyer's state files say (state per
shard, the miner, a rejection's reason), posts from the dataset form after the cost
confirmation (escrow + network fee at the chain's gas price), refuses bad input in one line,
and (slow: a real sandboxed render order) saves the merged dataset of a finished order. The
Transfers tabs show each transport node with a progress bar per transfer.

With KMINER_SCREENSHOTS=DIR (run under `xvfb-run -a` with QT_QPA_PLATFORM=xcb) the slow test
saves orders-p2p.png and transfers.png there, the posting test orders-cost-confirm.png."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

import tests.orders.workload as workload
from tests.buyer.conftest import TABLE
from tests.orders.conftest import NTK, parties  # noqa: F401  (fixture)
from tests.orders.test_render_order import COUNT, SHARDS, render_parties  # noqa: F401  (fixture)
from tests.wallet.conftest import _order_module, order_env  # noqa: F401  (fixtures)
from ui.background import Background
from ui.cost_dialog import ConfirmCostDialog
from ui.qt import Qt


class Poster:
    """What OrderBuyerRunner.post_render does, over the fixture's OrderBuyer."""

    def __init__(self, buyer):
        self.buyer = buyer

    def post_render(self, scene, *, count, shards, reward_each_wei, deadline_s, review_window_s):
        from app.orders.render import render_order

        job, _ = render_order(scene, count=count, seed=3, size=(96, 72))
        return self.buyer.post(job, kind="render", shards=shards, reward_each_wei=reward_each_wei,
                               deadline_s=deadline_s, review_window_s=review_window_s, redeem_window_s=600)


def closed_buyer():
    """The job market's side as the app has it while that market is closed (app.market_session.BuyerFacade)."""
    from app.market_session import BuyerFacade

    return BuyerFacade(SimpleNamespace(buyer=None, last_reason="the job market is not open"))


RUNNERS: list = []


@pytest.fixture(autouse=True)
def _stop_runners():
    yield
    while RUNNERS:
        RUNNERS.pop().shutdown(wait=True)


def make_view(qtbot, p, tmp_path: Path, *, available=True, not_ready=None):
    from app.p2p_orders import P2POrders
    from ui.orders_view import OrdersView

    chain, files = Background("chain"), Background("files")
    p2p = P2POrders(orders_dir=lambda: tmp_path / "buyer" / "orders", open_buyer=lambda: Poster(p.buyer),
                    chain=lambda: p.env.chain, available=lambda: available, not_ready=lambda: not_ready,
                    reward_of=lambda oid: p.env.om.order(oid).reward_each_wei)
    v = OrdersView(buyer=closed_buyer(), chain_runner=chain, files_runner=files, auto_step=False, p2p=p2p,
                   interval_s=0.2)
    qtbot.addWidget(v)
    v.resize(1150, 760)
    v.show()
    qtbot.waitUntil(lambda: v.last_refresh_at is not None, timeout=10_000)
    RUNNERS.extend((chain, files))
    return v


def p2p_rows(v) -> list[int]:
    return [r for r in range(v.table.rowCount()) if str(v.table.item(r, 0).data(Qt.ItemDataRole.UserRole)).startswith("p2p:")]


def test_shards_show_their_state_miner_and_rejection_reason(parties, qtbot, tmp_path):  # noqa: F811
    def half_cheat(doc, shard, inputs, out):  # shard 1 is not computed from the inputs
        (workload.cheat if shard == 1 else workload.work)(doc, shard, inputs, out)

    p = parties(work=half_cheat)
    oid = p.buyer.post({"frames": workload.FRAMES, "seed": 7}, shards=2, reward_each_wei=5 * NTK, deadline_s=3600,
                       review_window_s=600, redeem_window_s=600, inputs={"scene": p.scene})
    p.run(lambda: p.buyer.shard_state(oid, 0)["state"] == "done" and p.buyer.shard_state(oid, 1)["state"] == "rejected")
    v = make_view(qtbot, p, tmp_path)
    rows = p2p_rows(v)
    assert len(rows) == 1
    r = rows[0]
    assert [v.table.item(r, c).text() for c in (0, 2, 3, 5)] == [str(oid), "dataset · P2P", "rejected", "10 NTK"]
    assert v.table.cellWidget(r, 4).text().startswith("1/2 verified")
    assert v.summary.text() == "1 order (1 peer to peer) · 1 in progress · 5 NTK in escrow"  # the rejected shard's
    v.table.selectRow(r)
    d = v.p2p_detail
    assert v.details.currentWidget() is d and d.order.id == oid
    cells = [[d.table.item(i, c).text() for c in range(4)] for i in range(2)]
    assert cells[0][:2] == ["0", "done: verified"] and cells[0][3] == ""
    assert cells[1][:2] == ["1", "rejected"] and "does not match its re-computation" in cells[1][3]
    assert cells[0][2].startswith(p.env.miner.address.lower()[:6]) and d.table.item(0, 2).toolTip() == p.env.miner.address.lower()
    assert not d.save_button.isEnabled()  # not every shard is verified
    assert d.tabs.tabText(1) == "Dataset" and d.results.currentWidget() is d.results_none  # no preview yet


def test_posting_peer_to_peer_confirms_the_cost_then_escrows_on_chain(parties, qtbot, tmp_path):  # noqa: F811
    p = parties()
    v = make_view(qtbot, p, tmp_path)
    assert v.market_choice() == "p2p"  # the network has an order market: the default
    assert not v.name_edit.isEnabled()  # a P2P order is named by its scene
    v.scene_edit.setText(str(TABLE))
    v.count_spin.setValue(8)  # 4 frames a shard: the fewest a render order may have
    v.shards_spin.setValue(2)
    v.budget_edit.setText("10")
    v.post_dataset_button.click()
    qtbot.waitUntil(lambda: v.confirm_dialog is not None, timeout=10_000)
    dlg = v.confirm_dialog
    texts = [lab.text() for lab in dlg.line_labels]
    assert texts[0].startswith("10 NTK") and "≈" in texts[1] and "ETH" in texts[1], texts
    # the estimate `kminer market fees` makes (app.order_fees.post_fee), at the chain's fees now
    from app.order_fees import post_fee
    from app.p2p_orders import network_of

    assert dlg.breakdown.total("ETH") == post_fee(network_of(p.env.chain), chain=p.env.chain).total_wei
    assert dlg.breakdown.total("ETH") > 0 and "gas ×" in texts[1]
    if os.environ.get("KMINER_SCREENSHOTS"):
        qtbot.wait(200)
        dlg.grab().save(str(Path(os.environ["KMINER_SCREENSHOTS"]) / "orders-cost-confirm.png"))
    dlg.accept()
    qtbot.waitUntil(lambda: len(p2p_rows(v)) == 1, timeout=15_000)
    assert "posted on the order market" in v.banner.text()
    oid = p.buyer.order_ids()[-1]
    assert p.env.om.order(oid).escrow_wei == 10 * NTK
    r = p2p_rows(v)[0]
    assert v.table.item(r, 3).text() == "open" and v.p2p_detail.order.id == oid  # the new order is selected
    assert v.p2p_detail.table.item(1, 1).text() == "open: waiting for a miner"


def test_bad_input_is_one_line_and_no_order_market_means_the_job_market(parties, qtbot, tmp_path):  # noqa: F811
    p = parties()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "objects": "many"}))
    v = make_view(qtbot, p, tmp_path)
    v.scene_edit.setText(str(bad))
    v.post_dataset_button.click()
    qtbot.waitUntil(lambda: v.dataset_error.isVisible(), timeout=10_000)
    assert v.confirm_dialog is None  # said before any cost is asked
    text = v.dataset_error.text()
    assert text.startswith("Not posted: scene:") and "\n" not in text, text
    assert p.buyer.order_ids() == [] and v.post_dataset_button.isEnabled()

    locked = make_view(qtbot, p, tmp_path, not_ready="the wallet is locked: unlock it on the Wallet page")
    locked.scene_edit.setText(str(TABLE))
    locked.post_dataset_button.click()
    qtbot.waitUntil(lambda: locked.dataset_error.isVisible(), timeout=10_000)
    assert locked.dataset_error.text() == "Not posted: the wallet is locked: unlock it on the Wallet page"
    assert locked.confirm_dialog is None and p.buyer.order_ids() == []

    w = make_view(qtbot, p, tmp_path, available=False)
    assert w.market_choice() == "jobs" and not w.market_combo.model().item(0).isEnabled()
    assert w.name_edit.isEnabled()


def test_shards_too_small_to_sample_are_refused_before_the_cost_is_shown(parties, qtbot, tmp_path):  # noqa: F811
    p = parties()
    v = make_view(qtbot, p, tmp_path)
    v.scene_edit.setText(str(TABLE))
    v.count_spin.setValue(6)
    v.shards_spin.setValue(2)   # under 4 frames in a shard: a quarter of it could not be sampled
    v.budget_edit.setText("10")
    opened: list = []
    v.post_dataset_button.click()
    qtbot.waitUntil(lambda: v.dataset_error.isVisible(), timeout=10_000)
    opened += [d for d in v.findChildren(ConfirmCostDialog)]
    text = v.dataset_error.text()
    assert text.startswith("Not posted: a render shard needs at least 4 frames") and "\n" not in text, text
    assert "at most 1 shard(s)" in text and "fewer shards" in text
    assert v.confirm_dialog is None and not opened   # the cost confirmation never opened
    assert p.buyer.order_ids() == [] and v.post_dataset_button.isEnabled()
    v.count_spin.setValue(8)   # 4 frames a shard: the cost is asked
    assert not v.dataset_error.isVisible()
    v.post_dataset_button.click()
    qtbot.waitUntil(lambda: v.confirm_dialog is not None, timeout=10_000)
    v.confirm_dialog.reject()
    assert p.buyer.order_ids() == []


def test_the_transfers_tabs_show_every_node_with_progress(parties, qtbot, tmp_path):  # noqa: F811
    from ui.transfers_view import TransfersTabs

    p = parties()
    found = []
    tabs = TransfersTabs(lambda: list(found), interval_ms=100)
    qtbot.addWidget(tabs)
    tabs.show()
    assert tabs.empty.isVisible() and not tabs.tabs.isVisible()
    oid = p.buyer.post({"frames": workload.FRAMES, "seed": 7}, shards=1, reward_each_wei=5 * NTK, deadline_s=3600,
                       review_window_s=600, redeem_window_s=600, inputs={"scene": p.scene})
    p.run(lambda: p.buyer.done(oid))
    found += [("buyer", tmp_path / "buyer" / "transport"), ("miner", tmp_path / "miner" / "transport")]
    qtbot.waitUntil(lambda: tabs.tabs.count() == 2, timeout=5000)
    buyer = tabs.panels["buyer"]
    qtbot.waitUntil(lambda: buyer.table.rowCount() >= 2, timeout=5000)  # the input served, the result fetched
    kinds = {buyer.table.item(i, 0).text(): buyer.table.cellWidget(i, 3) for i in range(buyer.table.rowCount())}
    assert set(kinds) == {"Serving", "Fetching"}
    assert kinds["Fetching"].value() == 1000 and "done" in kinds["Fetching"].text()
    assert tabs.tabs.tabText(0).startswith("Orders (")


@pytest.mark.slow
def test_a_finished_render_order_previews_and_saves_its_merged_dataset(render_parties, qtbot, tmp_path):  # noqa: F811
    from app.orders.render import render_order
    from jobs.render.dataset import read_card
    from jobs.render.spec import load_scene
    from ui.transfers_view import TransfersTabs

    p = render_parties()
    job, _ = render_order(load_scene(TABLE), count=COUNT, seed=11, size=(96, 72))
    oid = p.buyer.post(job, shards=SHARDS, reward_each_wei=5 * NTK, deadline_s=3600, review_window_s=600,
                       redeem_window_s=600)
    p.run(lambda: p.buyer.done(oid), steps=1200)
    v = make_view(qtbot, p, tmp_path)
    r = p2p_rows(v)[0]
    assert v.table.item(r, 3).text() == "done" and v.table.item(r, 1).text() == "table-top"
    v.table.selectRow(r)
    d = v.p2p_detail
    assert d.save_button.isEnabled()
    # the Dataset tab: every shard's unsealed frames, merged, with their boxes (the job market's browser)
    tab = d.tabs.tabBar()
    qtbot.mouseClick(tab, Qt.MouseButton.LeftButton, pos=tab.tabRect(1).center())
    assert d.tabs.currentWidget() is d.results and d.results.currentWidget() is d.browser
    qtbot.waitUntil(lambda: d.browser.page is not None, timeout=20_000)
    qtbot.waitUntil(lambda: d.browser.large.pixmap() is not None, timeout=10_000)
    page = d.browser.page
    assert len(d.browser.folders) == SHARDS and page.images == COUNT and len(d.browser.thumbs) == COUNT
    assert f"{COUNT}</b> images from {SHARDS} shards" in d.browser.summary.text()
    assert d.browser.large.pixmap().width() == 96   # the first frame, its boxes drawn, at its size
    out = tmp_path / "saved"
    v.save_p2p_dataset(oid, out)
    qtbot.waitUntil(lambda: "Saved the dataset" in v.banner.text(), timeout=20_000)
    assert read_card(out)["frame_ranges"] == [[0, COUNT]]
    merged = json.loads((out / "annotations.json").read_text())   # the preview shows what is saved
    assert page.boxes == len(merged["annotations"]) > 0
    assert [t.toolTip().split(":")[0] for t in d.browser.thumbs] == [im["file_name"] for im in merged["images"]]
    qtbot.mouseClick(d.browser.large, Qt.MouseButton.LeftButton)   # the picked frame, full size in its own window
    qtbot.waitUntil(lambda: d.browser.enlarged is not None and d.browser.enlarged.isVisible(), timeout=5000)
    d.browser.enlarged.close()
    v.save_p2p_dataset(oid, out)  # not over a folder that holds something
    qtbot.waitUntil(lambda: v.banner.text().startswith("Not saved:"), timeout=20_000)
    assert "is not empty" in v.banner.text()
    shots = os.environ.get("KMINER_SCREENSHOTS")
    if shots:
        v.show_message("")
        d.tabs.setCurrentIndex(0)   # its shards, both verified
        qtbot.wait(300)
        v.grab().save(str(Path(shots) / "orders-p2p.png"))
        tabs = TransfersTabs(lambda: [("buyer", tmp_path / "buyer" / "transport"),
                                      ("miner", tmp_path / "miner" / "transport")])
        qtbot.addWidget(tabs)
        tabs.resize(1000, 300)
        tabs.show()
        tabs.tabs.setCurrentWidget(tabs.panels["miner"])  # the results it serves, and until when
        qtbot.wait(500)
        tabs.grab().save(str(Path(shots) / "transfers.png"))
