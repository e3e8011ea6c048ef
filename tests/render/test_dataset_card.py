"""A delivered result's card and frame metadata are a stranger's (issue 16): a card nested
200,000 deep, fields of the wrong type, or metadata naming files outside the folder give one
CardError line, never a crash of the buyer's process or a path out of the dataset."""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import pytest

from jobs.render.dataset_card import CardError, card_from_tar, check_card, check_meta, read_card, read_metas


def _tar(tmp_path, card_bytes: bytes):
    path = tmp_path / "result.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("dataset.json")
        info.size = len(card_bytes)
        tar.addfile(info, io.BytesIO(card_bytes))
    return path


def test_a_real_shard_card_and_metadata_pass(full_run, tmp_path):
    card = read_card(full_run)
    assert len(read_metas(full_run, card)) == card["counts"]["images"] == 6
    assert card_from_tar(_tar(tmp_path, (full_run / "dataset.json").read_bytes())) == card


def test_a_card_nested_200000_deep_is_refused_not_a_crash(tmp_path):
    import web3  # noqa: F401  (raises the recursion limit: plain json.loads would SIGSEGV here)

    deep = b'{"format": "kminer-render-dataset", "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(CardError, match="dataset.json: nested too deep"):
        card_from_tar(_tar(tmp_path, deep))


@pytest.mark.parametrize("patch, words", [
    ({"counts": [1, 2]}, "counts is not a table"),
    ({"frame_ranges": [[5, 2]]}, "frame_ranges"),
    ({"frame_ranges": "0-6"}, "frame_ranges"),
    ({"spec_hash": ["a"]}, "spec_hash is not a sha256"),
    ({"seed": -1}, "seed"),
    ({"time": None}, "time lacks"),
    ({"format": "other"}, "not a Knowledge Miner render card"),
])
def test_wrong_field_types_are_named(full_run, patch, words):
    card = {**json.loads((full_run / "dataset.json").read_text()), **patch}
    with pytest.raises(CardError, match=words):
        check_card(card)


def test_metadata_may_name_only_its_own_frames_files(full_run, tmp_path):
    m = json.loads((full_run / "meta" / "000000.json").read_text())
    assert check_meta(m, 0) is m
    for evil in ("../../../../etc/passwd", "/etc/passwd", "images/000001.png", "images/../dataset.json"):
        with pytest.raises(CardError, match="unexpected file"):
            check_meta({**m, "files": {**m["files"], "rgb": evil}}, 0)
    with pytest.raises(CardError, match="not that frame's"):
        check_meta(m, 1)
    copy = tmp_path / "shard"
    shutil.copytree(full_run, copy)
    (copy / "meta" / "000003.json").unlink()
    (copy / "meta" / "000003.json").symlink_to(full_run / "meta" / "000003.json")
    with pytest.raises(CardError, match="symbolic link"):
        read_metas(copy, read_card(copy))


def test_a_model_card_nested_deep_or_with_wrong_types_is_a_train_error(tmp_path):
    import web3  # noqa: F401

    from jobs.train import TrainError
    from jobs.train.card import check_card as check_model_card
    from jobs.train.card import load_card

    p = tmp_path / "model_card.json"
    p.write_bytes(b'{"format": "kminer-model-card/1", "name": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    with pytest.raises(TrainError, match="nested too deep"):
        load_card(p)
    good = {"format": "kminer-model-card/1", "arch": "centernet-s", "task": "detect", "classes": ["a"],
            "input_size": [320, 240], "weights": {"file": "model.safetensors"}}
    assert check_model_card(good) == good
    for patch in ({"metrics": [1]}, {"name": {"x": 1}}, {"classes": ["a"] * 1001}, {"task": "mine"}):
        with pytest.raises(TrainError):
            check_model_card({**good, **patch})
