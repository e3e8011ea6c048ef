"""Out-of-domain photos (jobs.domain): renders of a scene sit inside their statistics, ordinary
photos (scikit-image's samples: people, a cat, a rocket, textures, text) do not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.domain import FEATURES, check_stats, domain_distance, domain_stats, image_features

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
          "brick", "grass", "gravel", "horse", "text", "moon", "page", "coins", "colorwheel", "cell"]


def _photos():
    data = pytest.importorskip("skimage.data")
    for n in PHOTOS:
        im = getattr(data, n)()
        im = np.stack([im] * 3, -1) if im.ndim == 2 else im[..., :3]
        yield n, im


def test_shipped_detector_card_flags_ordinary_photos_not_its_renders():
    card = json.loads((ROOT / "resources" / "models" / "shelf-detector" / "model_card.json").read_text())
    stats = check_stats(card["domain_stats"])
    assert stats is not None and card["training_domain"].startswith("synthetic renders of scene 'Retail shelf'") and " only" in card["training_domain"]
    d, ok, _ = domain_distance(stats, Image.open(ROOT / "resources" / "examples" / "infer_shelf.png"))
    assert ok and d < stats["threshold"]
    out = {n: domain_distance(stats, im) for n, im in _photos()}
    flagged = [n for n, (_d, ok, _w) in out.items() if not ok]
    assert len(flagged) == len(PHOTOS), {n: round(v[0], 2) for n, v in out.items()}


def test_stats_from_renders_accept_unseen_renders(tmp_path):
    from jobs.render.dataset import render_dataset
    from jobs.render.spec import parse_scene
    from tests.render.conftest import small_scene

    spec = parse_scene(small_scene(count=24, depth=False, instance_mask=False, semantic_mask=False))
    render_dataset(spec, tmp_path / "train", seed=0)
    render_dataset(spec, tmp_path / "test", seed=5, count=8)
    stats = domain_stats(sorted((tmp_path / "train" / "images").glob("*.png")), description="renders")
    assert stats["features"] == list(FEATURES) and stats["images"] == 24 and check_stats(stats) == stats
    inside = [domain_distance(stats, Image.open(p))[1] for p in sorted((tmp_path / "test" / "images").glob("*.png"))]
    assert sum(inside) >= 7
    assert sum(not domain_distance(stats, im)[1] for _n, im in _photos()) >= len(PHOTOS) - 1


def test_bad_stats_and_tiny_sets_are_refused():
    assert check_stats(None) is None and check_stats({"format": "x"}) is None
    good = {"format": "kminer-domain-stats/1", "features": list(FEATURES), "center": [0.5] * len(FEATURES),
            "scale": [0.1] * len(FEATURES), "threshold": 2.0}
    assert check_stats(good) == good
    assert check_stats({**good, "scale": [0.0] * len(FEATURES)}) is None
    assert check_stats({**good, "center": [0.5, "x"]}) is None
    assert check_stats({**good, "threshold": float("nan")}) is None
    with pytest.raises(ValueError, match="at least 8"):
        domain_stats([np.zeros((20, 20, 3), np.uint8)] * 3)
    f = image_features(np.zeros((5, 300, 3), np.uint8))  # tiny, wide, black: finite figures
    assert f.shape == (len(FEATURES),) and np.isfinite(f).all()
