"""Who made a listed model's card, and poisoned cards (issue 16), on a real embedded chain.

A listing is verified when its card names the listing's seller (whose key signed the listing
transaction), copied when it names another seller or when the same weights were listed first by
another seller, unverified when the card names nobody. A card nested 200,000 deep, or one past the
size cap, is one unusable listing with its reason: `kminer models list` still shows every other."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from app.models import demo_seller_account
from cli.main import main
from common.fsutil import sha256_file
from common.safejson import CARD_LIMITS
from tests.models.conftest import NTK, PASSWORD, ROOT, own_model_folder

DEMO_CARD = ROOT / "resources" / "models" / "shelf-detector" / "model_card.json"


def new_model(dest, seller: str | None = None):
    """A model folder of the user's own (new weights, so nobody listed them before)."""
    folder = own_model_folder("shelf-detector", dest)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b"\0" * 16)  # any bytes: the card names their hash
    card = json.loads((folder / "model_card.json").read_text())
    card["weights"].update(sha256=sha256_file(weights), bytes=weights.stat().st_size)
    card["name"] = "Shelf v3"
    if seller:
        card["seller"] = seller
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder


def test_demo_listings_are_verified_and_a_copy_of_their_card_and_uri_is_not(user):
    demo = user.models.listings()
    assert [(i.provenance, i.card_ok) for i in demo] == [("verified", True), ("verified", True)]
    m = user.wallet.market()
    # the user lists the demo seller's card and URI as their own (the chain says who listed, the card who made it)
    raw = m.listing(1)
    lid, _ = m.list_model(user.wallet.signer(), card_hash=raw.card_hash, uri=raw.uri, price_wei=NTK)
    copy = user.models.listing(lid)
    assert copy.card_ok and copy.provenance == "copied" and demo_seller_account().address in copy.provenance_note
    assert user.models.listing(1).provenance == "verified"  # the original is not hurt by the copy


def test_a_new_model_is_listed_verified_and_a_relisted_copy_of_its_weights_is_copied(user, tmp_path):
    folder = new_model(tmp_path / "mine")
    lid = user.models.list_model(folder, price_wei=3 * NTK)
    assert json.loads((folder / "model_card.json").read_text())["seller"] == user.address  # the card names its maker
    lst = user.models.listing(lid)
    assert lst.provenance == "verified" and lst.mine and lst.name == "Shelf v3"
    # another seller takes the weights and writes a card of its own, naming itself: still a copy
    thief = demo_seller_account()
    stolen = new_model(tmp_path / "stolen", seller=thief.address)
    (stolen / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    card = json.loads((stolen / "model_card.json").read_text())
    card["weights"]["sha256"] = sha256_file(folder / "model.safetensors")
    (stolen / "model_card.json").write_text(json.dumps(card))
    m = user.wallet.market()
    lid2, _ = m.list_model(thief, card_hash="0x" + sha256_file(stolen / "model_card.json"),
                           uri=(stolen / "model_card.json").as_uri(), price_wei=NTK)
    later = user.models.listing(lid2)
    assert later.provenance == "copied" and f"model #{lid}" in later.provenance_note
    assert [i.provenance for i in user.models.listings() if i.listing_id in (lid, lid2)] == ["verified", "copied"]
    # listing a card that names another seller is refused outright
    from app.models import ModelError

    with pytest.raises(ModelError, match="not yours to list"):
        user.models.list_model(stolen, price_wei=NTK)


def test_a_card_naming_no_seller_is_unverified(user, tmp_path):
    folder = new_model(tmp_path / "anon")
    m = user.wallet.market()
    lid, _ = m.list_model(user.wallet.signer(), card_hash="0x" + sha256_file(folder / "model_card.json"),
                          uri=(folder / "model_card.json").as_uri(), price_wei=NTK)
    lst = user.models.listing(lid)
    assert lst.card_ok and lst.provenance == "unverified" and "does not name its seller" in lst.provenance_note


def _list_poison(user, path, data: bytes) -> int:
    path.write_bytes(data)
    m = user.wallet.market()
    lid, _ = m.list_model(demo_seller_account(), card_hash="0x" + hashlib.sha256(data).hexdigest(),
                          uri=path.as_uri(), price_wei=NTK)
    return lid


def test_poisoned_cards_do_not_break_the_market_for_the_other_listings(user, tmp_path, monkeypatch, capsys):
    """Issue 16: a card nested 200,000 deep (with its correct hash) used to kill `kminer models
    list` for every user (web3 raises the recursion limit, the decoder overflows the C stack)."""
    import sys

    assert sys.getrecursionlimit() >= 100_000  # web3 is loaded: the case of the issue
    deep = _list_poison(user, tmp_path / "deep.json", b"[" * 200_000 + b"]" * 200_000)
    big = _list_poison(user, tmp_path / "big.json", b'{"x": "' + b"a" * (CARD_LIMITS.max_bytes + 10) + b'"}')
    user.wallet.close()
    monkeypatch.setenv("KMINER_PASSWORD", PASSWORD)
    t0 = time.perf_counter()
    assert main(["models", "list"]) == 0
    took = time.perf_counter() - t0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("#1 Shelf detector") and out[1].startswith("#2 Product classifier")
    by_id = {int(line.split()[0][1:]): line for line in out}
    assert "unusable" in by_id[deep] and "nested too deep" in by_id[deep]
    assert "unusable" in by_id[big] and "over the 4194304 byte limit" in by_id[big]  # capped while fetched
    print(f"\n[figure] models list with a 200,000-deep and a {CARD_LIMITS.max_bytes + 17:,}-byte card: {took:.2f} s")
