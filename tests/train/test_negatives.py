"""Negatives for the detector (issue 22): frames without products from our own renderer, and
fine-tuning from existing weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jobs.train import TrainError
from jobs.train.negatives import TEXTURE_KINDS, procedural_texture, render_negatives
from tests.render.conftest import SHELF, small_scene


def test_procedural_textures_are_seeded_and_varied():
    a, b = procedural_texture("noise", 1), procedural_texture("noise", 1)
    assert np.array_equal(a, b) and a.shape == (384, 512, 3) and a.dtype == np.uint8
    looks = {k: procedural_texture(k, 2, (64, 48)) for k in TEXTURE_KINDS}
    assert all(not np.array_equal(looks[x], looks[y]) for x in TEXTURE_KINDS for y in TEXTURE_KINDS if x < y)
    assert looks["stripes"].std(axis=(0, 1)).max() > 10 and looks["plain"].std(axis=(0, 1)).max() < 10


def test_negative_frames_have_no_products_and_the_scenes_categories(tmp_path):
    from jobs.train.data import load_coco

    base = json.loads(SHELF.read_text())
    dirs = render_negatives(base, tmp_path / "neg", 8, width=96, height=72, per_scene=4)
    assert [d.name for d in dirs] == ["neg-000-fast", "neg-001-fast"]
    for d in dirs:
        coco = json.loads((d / "annotations.json").read_text())
        assert len(coco["images"]) == 4 and coco["annotations"] == []
        assert [c["name"] for c in coco["categories"]] == [a["label"] for a in base["assets"]]
        scene = json.loads((d / "scene.json").read_text())
        assert scene["name"].endswith(f"-negatives-{int(d.name[4:7])}")
        px = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(d / "images" / "000000.png"))
        assert px.std() > 5  # a real render, not a blank frame
    # the rendered frames do not change on a rerun (kept as they are)
    before = (dirs[0] / "images" / "000001.png").read_bytes()
    assert render_negatives(base, tmp_path / "neg", 8, width=96, height=72, per_scene=4) == dirs
    assert (dirs[0] / "images" / "000001.png").read_bytes() == before
    # positives and negatives train together: one class list, empty frames kept
    from jobs.render.dataset import render_dataset
    from jobs.render.spec import parse_scene

    render_dataset(parse_scene(small_scene(width=96, height=72, count=2)), tmp_path / "pos", seed=0)
    data = load_coco([tmp_path / "pos", *dirs])
    assert data.classes == [a["label"] for a in base["assets"]]
    assert sum(len(s.boxes) == 0 for s in data.samples) >= 8


def test_training_domain_names_the_negatives(tmp_path):
    from jobs.train.card import training_domain

    base = json.loads(SHELF.read_text())
    dirs = render_negatives(base, tmp_path / "neg", 4, width=96, height=72, per_scene=4)
    from jobs.render.dataset import render_dataset
    from jobs.render.spec import parse_scene

    render_dataset(parse_scene(small_scene(width=96, height=72, count=10)), tmp_path / "pos", seed=0)
    line, stats = training_domain([{"path": str(tmp_path / "pos"), "images": 10}, {"path": str(dirs[0]), "images": 4}])
    assert line.startswith("synthetic renders of scene 'retail-shelf' (fast (GL) engine) only, with 4 negative frames")
    assert stats is not None and stats["images"] == 10  # statistics of the frames with products only


def test_finetuning_starts_from_the_given_weights(trained, shapes, tmp_path):
    import torch

    from jobs.train.trainer import TrainConfig, train

    torch.set_num_threads(1)
    model_dir, summary = trained
    cfg = TrainConfig(arch="centernet-xs", epochs=1, batch=16, lr=1e-4, threads=1, seed=3, val_fraction=0.25)
    tuned = train([shapes], cfg, tmp_path / "tuned", tmp_path / "tuned" / "ck.safetensors",
                  init_weights=model_dir / "model.safetensors")
    fresh = train([shapes], cfg, tmp_path / "fresh", tmp_path / "fresh" / "ck.safetensors")
    assert tuned["metrics"]["map50"] >= 0.8 * summary["metrics"]["map50"] > fresh["metrics"]["map50"]
    other = TrainConfig(arch="centernet-s", epochs=1, batch=16, threads=1, val_fraction=0.25)
    with pytest.raises(TrainError, match="does not match the model"):
        train([shapes], other, tmp_path / "bad", tmp_path / "bad" / "ck.safetensors", init_weights=model_dir / "model.safetensors")
