"""`kminer models` on the embedded chain (in-process CLI, every command re-opens the chain):
list, show, buy with its confirmation, try on the shelf photo, list-model, and one-line errors
(insufficient NTK, not purchased, bad image, no confirmation)."""

from __future__ import annotations

import json

import pytest

from cli.main import main
from tests.models.conftest import NTK, PASSWORD, SHELF_PHOTO, open_user, own_model_folder


@pytest.fixture
def cli(monkeypatch, capsys):
    from app.context import AppContext

    u = open_user(AppContext.open())
    u.wallet.close()
    monkeypatch.setenv("KMINER_PASSWORD", PASSWORD)

    def run(*args: str, code: int = 0):
        capsys.readouterr()
        rc = main(["models", *args])
        out, err = capsys.readouterr()
        assert rc == code, (out, err)
        return out, err

    run.user = u
    return run


def test_list_show_and_buy(cli):
    out, _ = cli("list")
    assert out.splitlines()[0].startswith("#1 Shelf detector: detect, mAP@0.5 0.862, 25 NTK")
    items = json.loads(cli("list", "--json")[0])
    assert [i["price_wei"] for i in items] == [str(25 * NTK), str(10 * NTK)] and not items[0]["owned"]
    out, _ = cli("show", "1")
    assert "classes: cereal_box, tea_box" in out and "0 models sold" in out
    _, err = cli("buy", "1", code=1)   # no terminal to confirm on
    assert err.strip() == "kminer: error: buying needs a confirmation: add --yes (no terminal to ask on)"
    doc = json.loads(cli("buy", "1", "--yes", "--json")[0])
    assert doc["purchase"]["price_wei"] == str(25 * NTK) == doc["quote"]["price_wei"]
    assert 0 < int(doc["purchase"]["fee_wei"]) <= int(doc["quote"]["fee_max_wei"])
    assert "[owned]" in cli("list")[0].splitlines()[0]
    _, err = cli("buy", "1", "--yes", code=1)
    assert "already own model #1" in err and len(err.strip().splitlines()) == 1


def test_try_writes_annotated_images_and_refuses_bad_input(cli, tmp_path):
    _, err = cli("try", "1", str(SHELF_PHOTO), code=1)
    assert "model #1 is not purchased" in err and "buy it first" in err and "Traceback" not in err
    cli("buy", "1", "--yes")
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    _, err = cli("try", "1", str(bad), code=1)
    assert err.strip() == "kminer: error: photo.jpg is not an image that can be read (UnidentifiedImageError)"
    doc = json.loads(cli("try", "1", str(SHELF_PHOTO), "--out", str(tmp_path / "out"), "--json",
                         "--score-threshold", "0.5")[0])
    (im,) = doc["images"]
    assert im["annotated"] == str(tmp_path / "out" / "infer_shelf-detections.png")
    assert (tmp_path / "out" / "infer_shelf-detections.png").is_file()
    assert len(im["detections"]) >= 5 and all(d["score"] >= 0.5 for d in im["detections"])


def test_insufficient_ntk_is_one_line(cli):
    from app.context import AppContext

    u = open_user(AppContext.open(), bootstrap=False)
    try:
        token = u.wallet.token()
        token.transfer(u.wallet.signer(), "0x" + "34" * 20, token.balance_of(u.address) - NTK // 2)
    finally:
        u.wallet.close()
    _, err = cli("buy", "2", "--yes", code=1)
    assert err.strip() == "kminer: error: not enough NTK: Product classifier costs 10 NTK, you have 0.5 NTK"


def test_list_model_then_show(cli, tmp_path):
    folder = own_model_folder("shelf-detector", tmp_path / "shelf-v2")
    doc = json.loads(cli("list-model", str(folder), "--price", "12.5", "--json")[0])
    assert doc == {"listing_id": 3, "price_wei": str(125 * NTK // 10)}
    out, _ = cli("show", "3")
    assert out.startswith("#3 Shelf v2: detect") and "12.5 NTK [yours]" in out
    _, err = cli("list-model", str(tmp_path), "--price", "1", code=1)
    assert "no model card" in err
    _, err = cli("show", "9", code=1)
    assert err.strip() == "kminer: error: no model listing #9 (there are 3)"
