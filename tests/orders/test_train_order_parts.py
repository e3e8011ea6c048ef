"""The parts of a train order that need no chain: cutting the buyer's dataset (real COCO
folders of drawn shapes), the job document's refusals, and the miner's shard job."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.buyer.conftest import context

TINY = {"arch": "centernet-xs", "epochs": 1, "batch": 4}
TERMS = {"tolerance": 0.2, "min_metric": 0.3}
"""A least metric is required on the order market; 20 images hold out too few for the default
tolerance, so the buyer names one (app.orders.train.train_terms)."""


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    from jobs.train.synthetic import make_shapes_dataset

    return make_shapes_dataset(tmp_path_factory.mktemp("shapes") / "ds", n_images=20, size=(64, 48), seed=2)


@pytest.fixture
def store(tmp_path):
    from app.runtime import runtime_config

    return runtime_config(context(tmp_path / "home"), local_chain=True).store


def _files(d: Path) -> set[str]:
    return {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}


def test_the_held_out_images_are_kept_by_the_buyer_and_only_their_hash_is_in_the_order(shapes, store, tmp_path):
    from app.orders.train import train_order
    from jobs.artifacts import extract_tree_tar
    from jobs.train.subset import coco_summary

    job, data = train_order([shapes], params=TINY, store=store, work_dir=tmp_path / "w", holdout_fraction=0.25, seed=1,
                            **TERMS)
    assert [p.name for p in (tmp_path / "w").iterdir()] == ["data"]  # the held-out images are in the store only
    assert "images/000000.png" in _files(data) and not any(f.startswith(("masks", "meta")) for f in _files(data))
    assert (job["images"], job["holdout"]["images"]) == (15, 5)
    held = tmp_path / "held"
    extract_tree_tar(store.path(job["holdout"]["sha256"]), held)
    train_imgs = {(Path(data) / f"images/{i:06d}.png").read_bytes() for i in range(15)}
    held_imgs = {(held / f"images/{i:06d}.png").read_bytes() for i in range(5)}
    assert not train_imgs & held_imgs
    assert coco_summary([data]) == (15, ["red-box", "blue-disc", "green-triangle"])
    ann = json.loads((Path(data) / "annotations.json").read_text())
    assert {a["image_id"] for a in ann["annotations"]} <= {im["id"] for im in ann["images"]}
    assert "holdout" not in json.dumps(job["params"]) and job["engine"] == "train"


@pytest.mark.parametrize("kw, message", [
    ({"params": {"device": "cuda"}}, "train parameter 'device' is not one a buyer sets"),
    ({"tolerance": 2.0}, "the tolerance must be between 0 and 1"),
    ({"min_metric": -1.0}, "the least metric must be more than 0 and at most 1"),
    ({"min_metric": 0.0}, "the least metric must be more than 0 and at most 1"),
    ({"min_metric": None}, "name the least mAP@0.5 (accuracy for classifiers) the model must measure"),
    ({"tolerance": None}, "4 held-out images are too few to check a model's card (the default tolerance would be 1.00)"),
    ({"holdout_fraction": 1.0}, "the held-out share must be between 0 and 1"),
    ({"params": {"epochs": 10**9}}, "params.epochs"),
])
def test_a_train_order_a_miner_would_refuse_is_refused_before_posting(shapes, store, tmp_path, kw, message):
    from app.orders.train import train_order

    with pytest.raises(ValueError, match=re.escape(message)):
        train_order([shapes], **{"params": TINY, **TERMS, **kw}, store=store, work_dir=tmp_path / "w")
    assert not (tmp_path / "w" / "data").exists() and not (tmp_path / "w" / "holdout").exists()


def test_a_dataset_that_leaves_its_folder_or_misses_images_is_one_line(shapes, store, tmp_path):
    import shutil

    from app.orders.train import train_order

    bad = tmp_path / "bad"
    shutil.copytree(shapes, bad)
    ann = json.loads((bad / "annotations.json").read_text())
    ann["images"][0]["file_name"] = "../../etc/passwd"
    (bad / "annotations.json").write_text(json.dumps(ann))
    with pytest.raises(ValueError, match="leaves the dataset folder"):
        train_order([bad], params=TINY, store=store, work_dir=tmp_path / "w", **TERMS)
    ann["images"][0]["file_name"] = "images/nothing.png"
    (bad / "annotations.json").write_text(json.dumps(ann))
    with pytest.raises(ValueError, match="is missing"):
        train_order([bad], params=TINY, store=store, work_dir=tmp_path / "w", **TERMS)
    with pytest.raises(ValueError, match="not a COCO dataset folder"):
        train_order([tmp_path], params=TINY, store=store, work_dir=tmp_path / "w", **TERMS)
    assert not (tmp_path / "w" / "data").exists()


def test_the_miner_trains_only_the_data_it_was_priced_by_with_only_the_buyers_parameters(shapes, store, tmp_path):
    from app.orders.train import DATA, train_order, train_shard_spec

    job, data = train_order([shapes], params=TINY, store=store, work_dir=tmp_path / "w", seed=1, **TERMS)
    doc = {"kind": "train", "shards": 1, "job": job, "order_id": 7}
    priced = train_shard_spec(doc, 0, {}, store, job_id="q-7-0", device="any", max_wall_s=60)
    assert priced.kind == "train" and priced.inputs == {} and priced.params == TINY
    spec = train_shard_spec(doc, 0, {DATA: data}, store, job_id="q-7-0", device="any", max_wall_s=60)
    assert store.has(spec.inputs[DATA].sha256)
    # the run's limit follows from the work the order names, not from a figure the buyer writes
    short = train_shard_spec({**doc, "job": {**job, "max_wall_s": 1}}, 0, {}, store, job_id="q", device="any",
                             max_wall_s=60)
    assert short.resources.max_wall_s == priced.resources.max_wall_s >= 60
    assert job["images"] == 16  # 20 less the default 20 % held out
    with pytest.raises(ValueError, match="holds 16 images, not the 15 it was priced by"):
        train_shard_spec({**doc, "job": {**job, "images": 15}}, 0, {DATA: data}, store, job_id="q", device="any",
                         max_wall_s=60)
    with pytest.raises(ValueError, match="parameters that are the miner's"):
        train_shard_spec({**doc, "job": {**job, "params": {**TINY, "world_size": 8}}}, 0, {}, store, job_id="q",
                         device="any", max_wall_s=60)
    with pytest.raises(ValueError, match="exactly one shard"):
        train_shard_spec({**doc, "shards": 2}, 1, {}, store, job_id="q", device="any", max_wall_s=60)


def test_the_buyer_opens_only_the_card_and_the_weights():
    from app.orders.train import ModelPicker

    names = ["curves.json", "curves.png", "model.safetensors", "model_card.json", "sub/x.safetensors"]
    assert ModelPicker()({}, 0, names) == ["model_card.json", "model.safetensors"]
    assert ModelPicker()({}, 0, ["model.safetensors"]) == []  # no card: nothing to check against


def test_the_miner_sees_understated_data_in_the_sealed_header_before_claiming(shapes, tmp_path):
    """The pre-claim check reads only the sealed archive's header (no key): more images than the
    order was priced by is a reason to skip it; as many or fewer passes."""
    import os

    from app.orders.train import check_train_inputs
    from jobs.transport.sealed import read_header, seal

    sealed = tmp_path / "data.kmseal"
    seal(shapes, sealed, os.urandom(32))
    headers = {"data": read_header(sealed)}
    n = sum(1 for p in shapes.rglob("*.png"))
    doc = lambda images: {"kind": "train", "job": {"engine": "train", "images": images}}  # noqa: E731
    assert check_train_inputs(doc(n), headers) is None
    assert check_train_inputs(doc(n - 5), headers) == f"its data holds {n} images, not the {n - 5} it was priced by"
    assert check_train_inputs(doc(n), {}) == "the order has no training data input"
    assert check_train_inputs({"kind": "render", "job": {"engine": "render"}}, headers) is None
