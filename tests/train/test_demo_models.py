"""The demo models shipped in resources/models load, detect products on a fresh render, and
their cards are honest about size and held-out accuracy; the example job specs match their files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "resources" / "models"
EXAMPLES = ROOT / "resources" / "examples"


@pytest.mark.parametrize("name", ["shelf-detector", "product-classifier"])
def test_demo_model_cards_are_complete_and_small(name):
    from jobs.train.card import load_card

    card, weights = load_card(MODELS / name)
    assert weights.stat().st_size < 20 * 2**20
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == card["weights"]["sha256"]
    assert card["holdout_metrics"][card["metric"]] >= 0.8
    assert card["production"]["train_s"] > 0 and card["software"]["torch"]


def test_demo_detector_finds_the_products_on_a_fresh_render():
    from jobs.train.infer import infer_paths, load_model

    lm = load_model(MODELS / "shelf-detector")
    res = infer_paths(lm, [EXAMPLES / "infer_shelf.png"], score_threshold=0.4)[0]
    assert (res["width"], res["height"]) == (640, 480)
    assert len(res["detections"]) >= 20
    assert {d["class"] for d in res["detections"]} <= set(lm.classes)


@pytest.mark.parametrize("spec", ["train_job.json", "infer_job.json"])
def test_example_specs_match_their_files(spec):
    doc = json.loads((EXAMPLES / spec).read_text())
    for name, ref in doc["inputs"].items():
        data = (EXAMPLES / ref["uri"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == ref["sha256"], name
