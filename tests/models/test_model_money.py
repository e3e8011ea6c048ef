"""The model market cannot refund a sale: on a real embedded chain, a listing whose weights do
not match its card is refused before any NTK moves (the buyer never pays for a model it
could not fetch and check)."""

from __future__ import annotations

import shutil

import pytest

from app.models import ModelError, demo_seller_account
from common.fsutil import sha256_file
from tests.models.conftest import NTK, ROOT


def test_a_model_whose_weights_fail_their_hash_is_not_paid_for(user, tmp_path):
    folder = tmp_path / "seller" / "classifier"
    shutil.copytree(ROOT / "resources/models/product-classifier", folder)
    card = folder / "model_card.json"
    market = user.wallet.market()
    lid, _ = market.list_model(demo_seller_account(), card_hash="0x" + sha256_file(card), uri=card.as_uri(),
                               price_wei=5 * NTK)
    (folder / "model.safetensors").write_bytes(b"not the weights the card names")  # swapped after listing
    lst = user.models.listing(lid)
    assert lst.card_ok and not lst.owned  # the card itself is fine
    token = user.wallet.token()
    before = token.balance_of(user.address)
    with pytest.raises(ModelError, match=f"model #{lid} was not bought: the weights .*hash mismatch"):
        user.models.buy(lid, max_price_wei=5 * NTK)
    assert token.balance_of(user.address) == before and not user.models.listing(lid).owned
    (folder / "model.safetensors").unlink()  # gone altogether
    with pytest.raises(ModelError, match="was not bought: the weights could not be fetched"):
        user.models.buy(lid, max_price_wei=5 * NTK)
    shutil.copy(ROOT / "resources/models/product-classifier/model.safetensors", folder / "model.safetensors")
    p = user.models.buy(lid, max_price_wei=5 * NTK)  # the right weights back: bought, and usable
    assert p.price_wei == 5 * NTK and user.models.fetch(lid).task == "classify"
