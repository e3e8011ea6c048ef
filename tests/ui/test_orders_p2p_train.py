"""The Orders page's training form on the order market (pytest-qt, offscreen) over real parts:
a real OrderBuyer and OrderMiner on the OrderMarket of the in-memory chain, their transport
peers on 127.0.0.1, sandboxed `train` and `verify-train` jobs in each side's own queue
(tests/orders/test_train_order.py). The form takes a folder (or a finished P2P dataset order),
asks the cost (escrow + app.order_fees.post_fee) before posting, posts a one-shard order whose
escrow is on chain and whose held-out images stay here; bad input is one line and posts
nothing. (slow) The order is trained, checked on the held-out images and its row shows the
figures; "Save model…" copies the verified model.

With KMINER_SCREENSHOTS=DIR (under `xvfb-run -a`, QT_QPA_PLATFORM=xcb) it saves
orders-p2p-train-form.png, orders-p2p-train-cost.png and orders-p2p-train-done.png there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.orders.conftest import NTK
from tests.orders.test_render_order import COUNT, SHARDS, render_parties  # noqa: F401  (fixture)
from tests.orders.test_train_order import shapes, train_parties  # noqa: F401  (fixtures)
from tests.ui.test_orders_p2p_view import RUNNERS, _stop_runners, closed_buyer, p2p_rows  # noqa: F401
from tests.wallet.conftest import _order_module, order_env  # noqa: F401  (fixtures)
from ui.qt import QLabel
from ui.background import Background

SHOTS = os.environ.get("KMINER_SCREENSHOTS")


class Trainer:
    """What OrderBuyerRunner.post_train does (app.orders.train.train_order, then one shard
    posted), over the fixture's OrderBuyer and its artifact store."""

    def __init__(self, buyer, store, work: Path):
        self.buyer, self.store, self.work = buyer, store, work

    def post_train(self, datasets, *, params, reward_wei, deadline_s, review_window_s, holdout=None,
                   holdout_fraction=0.2, tolerance=0.05, min_metric=None) -> int:
        from app.orders.train import DATA, train_order

        self.work.mkdir(parents=True, exist_ok=True)
        job, data = train_order(datasets, params=params, store=self.store, work_dir=self.work / str(len(list(
            self.work.iterdir()))), holdout=holdout, holdout_fraction=holdout_fraction, tolerance=tolerance,
            min_metric=min_metric, seed=5)
        return self.buyer.post(job, kind="train", shards=1, reward_each_wei=reward_wei, deadline_s=deadline_s,
                               review_window_s=review_window_s, redeem_window_s=600, inputs={DATA: data})


def make_view(qtbot, p, store, tmp_path: Path, *, check_of=None, by_default=True):
    from app.p2p_orders import P2POrders
    from ui.orders_view import OrdersView

    chain, files = Background("chain"), Background("files")
    p2p = P2POrders(orders_dir=lambda: tmp_path / "buyer" / "orders",
                    open_buyer=lambda: Trainer(p.buyer, store, tmp_path / "posting"),
                    chain=lambda: p.env.chain, available=lambda: True,
                    reward_of=lambda oid: p.env.om.order(oid).reward_each_wei, check_of=check_of,
                    by_default=lambda: by_default)
    v = OrdersView(buyer=closed_buyer(), chain_runner=chain, files_runner=files, auto_step=False, p2p=p2p,
                   interval_s=0.2)
    qtbot.addWidget(v)
    v.resize(1200, 820)
    v.show()
    qtbot.waitUntil(lambda: v.last_refresh_at is not None, timeout=10_000)
    RUNNERS.extend((chain, files))
    v.forms.setCurrentIndex(1)
    return v


def fill(v, folder, *, reward="5", share=30, tolerance=0.3, least=None, epochs=16) -> None:
    v.data_combo.setCurrentIndex(v.data_combo.findData("folder"))
    v.data_folder_edit.setText(str(folder))
    v.holdout_combo.setCurrentIndex(v.holdout_combo.findData("share"))
    v.holdout_share_spin.setValue(share)
    v.arch_combo.setCurrentText("centernet-xs")
    v.epochs_spin.setValue(epochs)
    v.batch_spin.setValue(16)
    v.tolerance_spin.setValue(-1 if tolerance is None else tolerance)  # the minimum: "Automatic"
    if least is not None:  # None: the prefilled least metric stands
        v.min_metric_spin.setValue(least)
    v.train_reward_edit.setText(reward)


def post(v, qtbot, *, shot: str | None = None,
         check: str = "at least 0.2 there, and at most 0.300 below its card's metric (your tolerance)."):
    """Click Post, check the confirmation's figures (`check`: how the held-out check is told), accept;
    the new order id."""
    from app.order_fees import post_fee
    from app.p2p_orders import network_of

    v.post_train_button.click()
    qtbot.waitUntil(lambda: v.confirm_dialog is not None, timeout=20_000)
    dlg = v.confirm_dialog
    texts = [lab.text() for lab in dlg.line_labels]
    assert texts[0].startswith("5 NTK") and "ETH" in texts[1], texts
    chain = v._p2p._chain()
    assert dlg.breakdown.total("ETH") == post_fee(network_of(chain), chain=chain).total_wei > 0
    assert dlg.breakdown.title == "Post a training order on the order market" and dlg.windowTitle() == dlg.breakdown.title
    assert dlg.breakdown.total("NTK") == 5 * NTK and dlg.breakdown.lines[0].label == "escrow: the reward"
    assert v.banner.text().startswith("A model on 100 images (3 classes), 30 % of it held out here")
    assert dlg.breakdown.notes[0] == ("The model is checked here on 30 held-out images and paid only if it measures "
                                      f"{check}")
    assert any(dlg.breakdown.notes[0] in lab.text() for lab in dlg.findChildren(QLabel))
    if SHOTS and shot:
        qtbot.wait(200)
        dlg.grab().save(str(Path(SHOTS) / shot))
    dlg.accept()
    qtbot.waitUntil(lambda: "posted on the order market" in v.banner.text(), timeout=30_000)
    return int(v.selected.split(":")[1])


def test_a_train_order_from_a_folder_confirms_the_cost_then_escrows_on_chain(train_parties, shapes, qtbot,  # noqa: F811
                                                                             tmp_path):
    p, store, _ = train_parties()
    v = make_view(qtbot, p, store, tmp_path)
    assert v.train_market_choice() == "p2p"  # the network has an order market
    # no finished P2P dataset order yet: a folder is the one choice, and its row shows
    assert [v.data_combo.itemData(i) for i in range(v.data_combo.count())] == ["folder"]
    assert not v.data_folder_row.isHidden() and not v.min_metric_spin.isHidden()
    # the least metric is required: prefilled, never "none" (a card claiming 0.0 would be paid)
    assert v.min_metric_spin.value() == 0.5 and v.min_metric_spin.minimum() > 0 and "Required" in v.min_metric_spin.toolTip()
    fill(v, shapes, least=0.2)
    assert not v.holdout_share_spin.isHidden() and v.holdout_folder_row.isHidden()
    oid = post(v, qtbot, shot="orders-p2p-train-cost.png")
    # on chain: one shard escrowed at the reward; the held-out images stay in this home's store
    assert p.buyer.order_ids() == [oid] and p.env.om.order(oid).escrow_wei == 5 * NTK
    doc = json.loads((tmp_path / "buyer" / "orders" / f"{oid}.json").read_text())
    job = json.loads(doc["spec"])["job"]
    assert (job["images"], job["holdout"]["images"], job["min_metric"]) == (70, 30, 0.2)
    assert job["params"] == {"arch": "centernet-xs", "epochs": 16, "batch": 16} and store.has(job["holdout"]["sha256"])
    qtbot.waitUntil(lambda: len(p2p_rows(v)) == 1, timeout=15_000)
    r = p2p_rows(v)[0]
    assert [v.table.item(r, c).text() for c in (1, 2, 3, 5)] == ["centernet-xs on 70 images", "model · P2P", "open",
                                                                  "5 NTK"]
    d = v.p2p_detail
    assert d.order.id == oid and d.save_button.text() == "Save model…" and not d.save_button.isEnabled()
    assert d.note.text().startswith("centernet-xs, 16 epochs on 70 images (3 classes); 30 held-out images kept here; "
                                    "tolerance 0.3, least map50 0.20.")
    if SHOTS:
        v.show_message("")
        qtbot.wait(200)
        v.grab().save(str(Path(SHOTS) / "orders-p2p-train-form.png"))


def test_where_the_session_says_job_market_the_training_form_starts_there(train_parties, qtbot, tmp_path):  # noqa: F811
    p, store, _ = train_parties()
    v = make_view(qtbot, p, store, tmp_path, by_default=False)
    assert v.train_market_choice() == "jobs" and v.train_market_combo.model().item(0).isEnabled()
    assert v.data_folder_row.isHidden() and v.min_metric_spin.isHidden()  # the job market's form as it was
    v.train_market_combo.setCurrentIndex(0)  # peer to peer stays a choice
    assert v.train_market_choice() == "p2p" and not v.data_folder_row.isHidden()


def test_bad_train_input_is_one_line_and_posts_nothing(train_parties, shapes, qtbot, tmp_path):  # noqa: F811
    p, store, _ = train_parties()
    v = make_view(qtbot, p, store, tmp_path)

    def refused(prefix: str) -> str:
        v.post_train_button.click()
        qtbot.waitUntil(lambda: v.train_error.isVisible(), timeout=20_000)
        text = v.train_error.text()
        assert text.startswith(prefix) and "\n" not in text, text
        assert v.confirm_dialog is None and v.post_train_button.isEnabled()
        v.train_error.setVisible(False)
        return text

    fill(v, "")
    refused("Not posted: choose a finished dataset order or a folder to train on")
    fill(v, tmp_path / "nowhere")
    assert "is not a folder" in refused("Not posted: data: ")
    not_coco = tmp_path / "photos"
    not_coco.mkdir()
    (not_coco / "a.png").write_bytes(b"\x89PNG")
    fill(v, not_coco)
    refused("Not posted: not a dataset: ")
    fill(v, shapes)
    v.holdout_combo.setCurrentIndex(v.holdout_combo.findData("folder"))
    v.holdout_folder_edit.setText(str(shapes))
    refused("Not posted: the held-out data is also in the training data")
    fill(v, shapes, reward="0")
    refused("The amount must be more than zero.")
    # "Automatic" tolerance on 30 held-out images (7 of the 70 sent validate): 2.33 * 0.5 * sqrt(1/30 + 1/7) = 0.49,
    # too wide to mean much: refused before any cost is asked; naming a tolerance posts (see above)
    fill(v, shapes, tolerance=None)
    refused("Not posted: 30 held-out images are too few to check a model's card (the default tolerance would be "
            "0.49): hold out more images, or name the tolerance yourself")
    fill(v, shapes, epochs=1)
    v.train_reward_edit.setText("5")
    p2p = v._p2p
    with pytest.raises(ValueError, match="^name the least mAP@0.5"):
        p2p.check_train([shapes], params={}, tolerance=0.3)
    with pytest.raises(ValueError, match="not one a buyer sets"):
        p2p.check_train([shapes], params={"device": "cuda"})
    with pytest.raises(ValueError, match="^data: order 7 is not one of yours"):
        p2p.check_train(["p2p:7"], params={}, min_metric=0.5)
    # nothing posted, nothing half-written: no order, no state file, no training data left behind
    assert p.buyer.order_ids() == [] and not list((tmp_path / "buyer" / "orders").glob("*.json"))
    assert not (tmp_path / "posting").exists()


@pytest.mark.slow
def test_a_posted_train_order_is_trained_checked_and_its_model_saved(train_parties, shapes, qtbot, tmp_path):  # noqa: F811
    from jobs.queue import JobQueue

    p, store, _ = train_parties()
    env = p.env
    from tests.buyer.conftest import context

    checks = JobQueue(context(tmp_path / "buyer").paths.jobs_db)  # the buyer's queue, where its checks ran
    prefix = f"verify-order-{env.om.address[2:10].lower()}"

    def check_of(oid):
        try:
            rec = checks.get(f"{prefix}-{oid}-0")
        except Exception:
            return None
        return rec.result if rec.state == "succeeded" else None

    v = make_view(qtbot, p, store, tmp_path, check_of=check_of)
    assert v.tolerance_spin.text() == "Automatic" and v.tolerance() is None  # the form's default
    fill(v, shapes, least=0.2)  # 30 held-out images: too few for "Automatic" (test_bad_train_input...), 0.3 named
    oid = post(v, qtbot)
    before = env.balance(env.payout)
    p.run(lambda: p.buyer.done(oid), steps=2400)
    assert env.balance(env.payout) == before + 5 * NTK
    v.refresh(force=True)
    qtbot.waitUntil(lambda: v.p2p_detail.order is not None and v.p2p_detail.order.state == "done", timeout=15_000)
    r = p2p_rows(v)[0]
    assert v.table.item(r, 3).text() == "done" and v.table.cellWidget(r, 4).text() == "1/1 verified"
    d = v.p2p_detail
    t = d.order.train
    assert t.metric == "map50" and t.passed and t.measured is not None and t.claimed is not None
    assert t.measured >= t.claimed - 0.3
    assert f"Checked: map50 {t.measured:.3f} measured on 30 held-out images (card {t.claimed:.3f}), passed." \
        in d.note.text()
    assert d.save_button.isEnabled() and Path(t.model_dir).is_dir() and d.note.text().endswith(f"\nModel folder: {t.model_dir}")
    assert d.note.toolTip() == "Classes: red-box, blue-disc, green-triangle"
    assert d.table.item(0, 1).text() == "done: checked and unsealed"
    out = tmp_path / "saved-model"
    v.save_p2p_model(oid, out)
    qtbot.waitUntil(lambda: "Saved the model" in v.banner.text(), timeout=20_000)
    card = json.loads((out / "model_card.json").read_text())
    assert card["arch"] == "centernet-xs" and any(f.suffix == ".safetensors" for f in out.iterdir())
    assert (out / "curves.json").is_file()
    v.save_p2p_model(oid, out)  # never over a folder that holds something
    qtbot.waitUntil(lambda: v.banner.text().startswith("Not saved:"), timeout=20_000)
    assert "is not empty" in v.banner.text()
    v.save_p2p_dataset(oid, tmp_path / "as-dataset")
    qtbot.waitUntil(lambda: "is a train order: save its model" in v.banner.text(), timeout=20_000)
    if SHOTS:
        v.show_message("")
        v.forms.setCurrentIndex(1)
        qtbot.wait(300)
        v.grab().save(str(Path(SHOTS) / "orders-p2p-train-done.png"))


@pytest.mark.slow
def test_a_finished_p2p_dataset_order_is_picked_in_the_list_to_train_on(render_parties, qtbot, tmp_path):  # noqa: F811
    from app.orders.render import render_order
    from jobs.artifacts import ArtifactStore
    from jobs.render.spec import load_scene
    from tests.buyer.conftest import TABLE

    p = render_parties()
    job, _ = render_order(load_scene(TABLE), count=COUNT, seed=11, size=(96, 72))
    rid = p.buyer.post(job, shards=SHARDS, reward_each_wei=5 * NTK, deadline_s=3600, review_window_s=600,
                       redeem_window_s=600)
    p.run(lambda: p.buyer.done(rid), steps=1200)
    store = ArtifactStore(tmp_path / "train-store")
    v = make_view(qtbot, p, store, tmp_path)
    key = f"p2p:{rid}"
    assert [v.data_combo.itemData(i) for i in range(v.data_combo.count())] == [key, "folder"]
    assert v.data_combo.itemText(0) == f"#{rid} table-top ({COUNT} frames, peer to peer)"
    assert [v.holdout_combo.itemData(i) for i in range(v.holdout_combo.count())] == ["share", key, "folder"]
    assert v.data_combo.currentData() == key and v.data_folder_row.isHidden()  # the finished order first
    v.holdout_share_spin.setValue(25)
    v.tolerance_spin.setValue(0.5)  # two held-out images: "Automatic" would be refused
    v.train_reward_edit.setText("5")
    v.post_train_button.click()
    qtbot.waitUntil(lambda: v.confirm_dialog is not None, timeout=20_000)
    assert v.banner.text().startswith(f"A model on {COUNT} images (")
    v.confirm_dialog.accept()
    qtbot.waitUntil(lambda: "posted on the order market" in v.banner.text(), timeout=30_000)
    tid = int(v.selected.split(":")[1])
    assert p.buyer.order_ids() == [rid, tid] and p.env.om.order(tid).escrow_wei == 5 * NTK
    train = json.loads(json.loads((tmp_path / "buyer" / "orders" / f"{tid}.json").read_text())["spec"])["job"]
    assert train["images"] + train["holdout"]["images"] == COUNT and train["holdout"]["images"] == round(COUNT / 4)
    assert (train["min_metric"], train["tolerance"]) == (0.5, 0.5)  # the prefilled least metric
    assert store.has(train["holdout"]["sha256"])
