"""A tiny real training run learns; outputs are safetensors + card + curves; classifier too."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from jobs.train import TrainError
from jobs.train.card import load_card


def test_tiny_detector_really_learns(trained):
    out, summary = trained
    curves = json.loads((out / "curves.json").read_text())
    assert len(curves) == 10
    assert curves[-1]["train_loss"] < 0.6 * curves[0]["train_loss"]
    assert summary["metrics"]["map50"] >= 0.5, summary
    assert curves[-1]["map50"] > curves[0]["map50"]
    card, weights = load_card(out)
    assert card["task"] == "detect" and card["classes"] == ["red-box", "blue-disc", "green-triangle"]
    assert card["metrics"]["map50"] == pytest.approx(summary["metrics"]["map50"])
    assert 0 <= card["metrics"]["map"] <= card["metrics"]["map50"]
    assert card["datasets"][0]["annotations_sha256"] and card["software"]["torch"]
    assert (card["split"]["train_images"], card["split"]["val_images"]) == (120, 40)
    # what it was trained on and where the figures were measured (issue 22)
    assert card["training_domain"].startswith("synthetic renders of dataset ds") and "only" in card["training_domain"]
    assert card["evaluation_sets"][0]["name"] == "validation split" and card["evaluation_sets"][0]["images"] == 40
    assert card["domain_stats"]["images"] >= 8 and card["domain_stats"]["threshold"] > 0
    assert weights.read_bytes()[:8] != b"\x80\x04\x95"[:8]  # not a pickle
    assert Image.open(out / "curves.png").size == (720, 300)


def test_classifier_learns_the_shapes(tmp_path, shapes):
    from jobs.train.trainer import TrainConfig, train

    cfg = TrainConfig(arch="classifier-xs", epochs=4, batch=32, lr=1e-2, threads=1)
    s = train([shapes], cfg, tmp_path, tmp_path / "ck.safetensors")
    assert s["metrics"]["accuracy"] >= 0.8, s
    card, _ = load_card(tmp_path)
    assert card["task"] == "classify" and card["metric"] == "accuracy"

    from jobs.train.infer import infer_paths, load_model

    res = infer_paths(load_model(tmp_path), [shapes / "images/000000.png"], tmp_path / "pred")
    assert [t["class"] for t in res[0]["top"]] and len(res[0]["top"]) == 3
    assert abs(sum(t["score"] for t in res[0]["top"]) - 1) < 1e-3
    assert (tmp_path / "pred" / "000000.png").is_file()


def test_a_checkpoint_from_another_config_is_refused(tmp_path):
    from jobs.train.synthetic import make_shapes_dataset
    from jobs.train.trainer import TrainConfig, train

    ds = make_shapes_dataset(tmp_path / "ds", 20, seed=3)
    cfg = TrainConfig(arch="centernet-xs", epochs=1, batch=8, threads=1, val_fraction=0.2)
    ck = tmp_path / "ck.safetensors"
    train([ds], cfg, tmp_path / "a", ck)
    with pytest.raises(TrainError, match="different configuration"):
        train([ds], cfg.model_copy(update={"lr": 0.5}), tmp_path / "b", ck)
    ck.write_bytes(b"garbage")
    with pytest.raises(TrainError, match="unreadable"):
        train([ds], cfg, tmp_path / "c", ck)


def test_bad_dataset_is_one_clear_error(tmp_path):
    from jobs.train.trainer import TrainConfig, train

    (tmp_path / "ds").mkdir()
    with pytest.raises(TrainError, match="not a COCO dataset folder"):
        train([tmp_path / "ds"], TrainConfig(arch="centernet-xs"), tmp_path / "o", tmp_path / "c")
    (tmp_path / "ds" / "annotations.json").write_text("{nope")
    with pytest.raises(TrainError, match="not valid COCO JSON"):
        train([tmp_path / "ds"], TrainConfig(arch="centernet-xs"), tmp_path / "o", tmp_path / "c")
    assert not (tmp_path / "o").exists()


def test_two_shards_merge_classes_by_name(tmp_path):
    from jobs.train.data import load_coco
    from jobs.train.synthetic import make_shapes_dataset

    a = make_shapes_dataset(tmp_path / "a", 4, seed=1)
    b = make_shapes_dataset(tmp_path / "b", 5, seed=2)
    coco = json.loads((b / "annotations.json").read_text())
    for c in coco["categories"]:  # other ids, same names
        c["id"] += 10
    for an in coco["annotations"]:
        an["category_id"] += 10
    (b / "annotations.json").write_text(json.dumps(coco))
    data = load_coco([a, b])
    assert data.classes == ["red-box", "blue-disc", "green-triangle"]
    assert len(data.samples) == 9 and len(data.shards) == 2
    assert all(s.labels.max(initial=0) < 3 for s in data.samples)


def test_cli_train_refuses_a_folder_without_annotations(tmp_path, kminer):
    r = kminer("train", str(tmp_path), "--out", str(tmp_path / "m"), "--arch", "centernet-xs")
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "no annotations.json" in r.stderr


def test_torchvision_architectures_absent_is_handled():
    pytest.importorskip  # noqa: B018
    import importlib.util

    from jobs.train.models import ARCHS, get_arch

    tv = [a for a in ARCHS if a.startswith("tv-")]
    assert tv
    if importlib.util.find_spec("torchvision") is None:
        for a in tv:
            assert not ARCHS[a].available()
            with pytest.raises(TrainError, match="torchvision"):
                get_arch(a)
    else:  # the extra is installed: the architectures build and train one step
        import torch

        from jobs.train.models import build_model

        m = build_model("tv-ssdlite", 3, (320, 320))
        loss, _ = m(torch.rand(2, 3, 320, 320) * 255, torch.tensor([[[10.0, 10, 100, 100]]] * 2), torch.tensor([[1]] * 2))
        loss.backward()


def test_finish_early_delivers_the_model_with_honest_epochs(tmp_path):
    from jobs.train.synthetic import make_shapes_dataset
    from jobs.train.trainer import Hooks, TrainConfig, train

    ds = make_shapes_dataset(tmp_path / "ds", 20, seed=3)
    cfg = TrainConfig(arch="centernet-xs", epochs=3, batch=8, threads=1, val_fraction=0.2)
    s = train([ds], cfg, tmp_path / "m", tmp_path / "ck", Hooks(finish_early=lambda: True))
    assert not s["stopped"] and s["epoch"] == 1
    card, _ = load_card(tmp_path / "m")
    assert card["training"]["epochs"] == 1 and card["training"]["planned_epochs"] == 3
