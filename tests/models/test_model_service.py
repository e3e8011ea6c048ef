"""ModelService without Qt, on a real embedded chain: the demo models are listed at bootstrap,
buying moves exactly the price in NTK and the fee in ETH, a short balance refuses with one line
and moves nothing, a bought model is fetched and checked, and "try it" runs the real infer
engine in a sandboxed worker on the example shelf photo."""

from __future__ import annotations

import json
import shutil
import threading
import time

import pytest
from PIL import Image

from app.models import DEMO_MODELS, ModelError, demo_seller_account
from tests.models.conftest import NTK, ROOT, SHELF_PHOTO, own_model_folder
from wallet.errors import InsufficientFunds


def test_new_local_chain_lists_the_demo_models_with_checked_cards(user):
    items = user.models.listings()
    assert [i.name for i in items] == ["Shelf detector", "Product classifier"]
    det = items[0]
    card = json.loads((ROOT / "resources/models/shelf-detector/model_card.json").read_text())
    assert det.card_ok and det.problem is None and det.task == "detect" and det.arch == "centernet-s"
    assert det.classes == tuple(card["classes"]) and det.input_size == (320, 240)
    assert det.headline == ("mAP@0.5", card["metrics"]["map50"])
    assert ("held-out mAP@0.5", card["holdout_metrics"]["map50"]) in det.metrics
    assert det.price_wei == dict(DEMO_MODELS)["shelf-detector"] == 25 * NTK
    assert det.owner == demo_seller_account().address and not det.owned and not det.mine
    assert det.seller.sales == 0 and det.seller.completed == 0
    assert items[1].task == "classify" and items[1].headline[0] == "top-1 accuracy"


def test_buy_moves_exactly_the_price_in_ntk_and_the_fee_in_eth(user):
    token = user.wallet.token()
    chain = user.wallet.chain
    seller = demo_seller_account().address
    q = user.models.quote(1)
    assert q.price_wei == 25 * NTK and q.transactions == 2 and q.enough_ntk and q.enough_eth and not q.already_owned
    ntk0, eth0, seller0 = token.balance_of(user.address), chain.balance_wei(user.address), token.balance_of(seller)
    p = user.models.buy(1, max_price_wei=q.price_wei)
    assert p.price_wei == q.price_wei == ntk0 - token.balance_of(user.address)
    assert token.balance_of(seller) - seller0 == 25 * NTK
    assert eth0 - chain.balance_wei(user.address) == p.fee_wei and 0 < p.fee_wei <= q.fee_max_wei
    assert len(p.tx_hashes) == 2
    items = {i.listing_id: i for i in user.models.listings()}
    assert items[1].owned and not items[2].owned and items[1].seller.sales == 1
    assert user.models.quote(1).already_owned
    with pytest.raises(ModelError, match="already own"):
        user.models.buy(1, max_price_wei=q.price_wei)


def test_a_price_above_the_confirmed_one_is_refused(user):
    with pytest.raises(ModelError, match="price of model #1 changed"):
        user.models.buy(1, max_price_wei=25 * NTK - 1)
    assert not user.models.listing(1).owned


def test_insufficient_ntk_is_one_line_and_moves_nothing(user):
    token = user.wallet.token()
    me = user.wallet.signer()
    token.transfer(me, "0x" + "12" * 20, token.balance_of(user.address) - 3 * NTK)   # keep 3 NTK
    eth0 = user.wallet.chain.balance_wei(user.address)
    q = user.models.quote(1)
    assert not q.enough_ntk and q.ntk_balance_wei == 3 * NTK
    with pytest.raises(InsufficientFunds) as ei:
        user.models.buy(1, max_price_wei=q.price_wei)
    assert str(ei.value) == "not enough NTK: model #1 costs 25 NTK, you have 3 NTK"
    assert token.balance_of(user.address) == 3 * NTK and user.wallet.chain.balance_wei(user.address) == eth0
    assert not user.models.listing(1).owned


def test_fetch_needs_a_purchase_then_lays_out_the_checked_model(user):
    with pytest.raises(ModelError, match="not purchased"):
        user.models.fetch(1)
    user.models.buy(1, max_price_wei=25 * NTK)
    m = user.models.fetch(1)
    src = ROOT / "resources/models/shelf-detector"
    assert (m.folder / "model_card.json").read_bytes() == (src / "model_card.json").read_bytes()
    assert (m.folder / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()
    assert m.task == "detect" and m.name == "Shelf detector" and user.models.fetch(1).folder == m.folder


def test_a_card_that_does_not_match_its_hash_is_unusable(user, tmp_path):
    folder = tmp_path / "fake"
    shutil.copytree(ROOT / "resources/models/product-classifier", folder)
    market = user.wallet.market()
    lid, _ = market.list_model(user.wallet.signer(), card_hash="0x" + "ab" * 32,
                               uri=(folder / "model_card.json").as_uri(), price_wei=NTK)
    lst = user.models.listing(lid)
    assert not lst.card_ok and "hash mismatch" in lst.problem and lst.mine
    with pytest.raises(ModelError, match="cannot be bought"):
        user.models.quote(lid)


def test_a_seller_lists_a_model_folder_and_owns_it(user, tmp_path):
    folder = own_model_folder("product-classifier", tmp_path / "my-classifier")
    lid = user.models.list_model(folder, price_wei=7 * NTK)
    lst = user.models.listing(lid)
    assert lst.card_ok and lst.mine and lst.owned and lst.name == "My classifier" and lst.price_wei == 7 * NTK
    with pytest.raises(ModelError, match="your own listing"):
        user.models.buy(lid, max_price_wei=7 * NTK)
    (folder / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(ModelError, match="does not match"):
        user.models.list_model(folder, price_wei=NTK)


def test_bad_photos_are_refused_before_any_worker_starts(user, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ModelError, match="notes.png is not an image"):
        user.models.check_images([SHELF_PHOTO, bad])
    with pytest.raises(ModelError, match="is not a file"):
        user.models.check_images([tmp_path / "missing.jpg"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no photos"):
        user.models.check_images([tmp_path / "empty"])


def test_try_it_draws_detections_on_the_example_shelf_photo(user, tmp_path):
    user.models.buy(1, max_price_wei=25 * NTK)
    model = user.models.fetch(1)
    events = []
    res = user.models.try_model(model, [SHELF_PHOTO], score_threshold=0.4, on_event=events.append)
    assert events[0]["type"] == "stage" and "sandbox" in events[0]["message"]
    (im,) = res.images
    assert im.source == SHELF_PHOTO and (im.width, im.height) == (640, 480)
    boxes = [d for d in im.detections if d.box is not None]
    assert len(boxes) >= 10 and all(d.score >= 0.4 for d in boxes)
    assert {d.label for d in boxes} <= set(model.classes) and len({d.label for d in boxes}) >= 4
    drawn = Image.open(im.annotated).convert("RGB")
    orig = Image.open(SHELF_PHOTO).convert("RGB")
    assert drawn.size == orig.size and drawn.tobytes() != orig.tobytes()
    x1, y1, x2, y2 = (round(v) for v in boxes[0].box)
    assert drawn.getpixel((x1, (y1 + y2) // 2)) != orig.getpixel((x1, (y1 + y2) // 2))   # a box edge is drawn
    saved = user.models.save_annotated(res, tmp_path / "out")
    again = user.models.save_annotated(res, tmp_path / "out")
    assert [p.name for p in saved + again] == ["infer_shelf-detections.png", "infer_shelf-detections-2.png"]
    assert saved[0].read_bytes() == im.annotated.read_bytes()
    assert res.sandbox in ("strict", "basic") and res.run_s > 0


def test_try_it_can_be_cancelled_while_the_worker_runs(user):
    user.models.buy(1, max_price_wei=25 * NTK)
    model = user.models.fetch(1)
    handle = user.models.new_try()

    def cancel_when_started() -> None:
        end = time.monotonic() + 30
        while time.monotonic() < end and (handle.attempt is None or handle.attempt.run is None):
            time.sleep(0.02)
        time.sleep(0.3)
        handle.cancel()

    t = threading.Thread(target=cancel_when_started)
    t.start()
    t0 = time.monotonic()
    with pytest.raises(ModelError, match="cancelled"):
        user.models.try_model(model, [SHELF_PHOTO] * 3, handle=handle)
    t.join()
    assert time.monotonic() - t0 < 30
    assert not (user.ctx.paths.data_dir / "try").exists()   # nothing half-written
