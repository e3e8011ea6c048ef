"""False detections per photo of a detector on ordinary photos that show none of its classes:
scikit-image's sample photos (people, a cat, a rocket, a coffee cup, astronauts...; shipped in
the skimage wheel, nothing downloaded). Every detection on them is a false one.

    .venv/bin/python bench/bench_false_detections.py resources/models/shelf-detector [OTHER_MODEL...] [--threshold 0.3]
        [--map-frames 200 [--seed 7331] [--holdout-look]]

`--map-frames N` also renders N fresh frames of the demo shelf scene with seed `--seed` (one no
card names: training used 0, the held-out render 1000, the Cycles frames 2000) at the model's
input size, with the fast engine and the scene's own light and camera ranges (`--holdout-look`:
the held-out render's dimmer, warmer light and wider views), and reports the model's
mAP@0.5 on them (jobs.train.verify, as a buyer's check computes it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PHOTOS = ("astronaut", "camera", "cat", "chelsea", "coffee", "coins", "horse", "hubble_deep_field", "immunohistochemistry",
          "moon", "page", "rocket", "text", "brick", "grass", "gravel", "retina", "colorwheel", "logo", "clock")


def photos() -> list[tuple[str, Image.Image]]:
    from skimage import data

    out = []
    for name in PHOTOS:
        fn = getattr(data, name, None)
        if fn is None:
            continue
        try:
            arr = np.asarray(fn())
        except Exception:  # a sample that needs a download (pooch) is skipped
            continue
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        if arr.dtype != np.uint8:
            arr = (255 * (arr - arr.min()) / max(1e-9, float(arr.max() - arr.min()))).astype(np.uint8)
        im = Image.fromarray(arr)
        out.append((name, im.convert("RGB")))
    return out


def fresh_map(model: Path, frames: int, seed: int, holdout_look: bool) -> dict:
    """mAP@0.5 (and mAP) of `model` on `frames` fresh renders of the demo shelf with `seed`."""
    import json
    import tempfile
    import time

    from jobs.render.dataset import render_dataset
    from jobs.render.spec import parse_scene
    from jobs.train.demo_models import SCENE, _scene
    from jobs.train.verify import verify_model

    card = json.loads((model / "model_card.json").read_text())
    w, h = card["input_size"]
    scene = _scene(json.loads(SCENE.read_text()), width=w, height=h, count=frames, seed=seed, holdout=holdout_look)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        render_dataset(parse_scene(scene), Path(d) / "fresh", count=frames)
        t1 = time.perf_counter()
        v = verify_model(model, [Path(d) / "fresh"], tolerance=1.0)
    return {"frames": v["images"], "seed": seed, "holdout_look": holdout_look, "map50": round(v["metrics"]["map50"], 4),
            "map": round(v["metrics"]["map"], 4), "boxes": v["metrics"].get("val_boxes"), "card_map50": round(v["claimed"], 4),
            "render_s": round(t1 - t0, 1), "eval_s": round(time.perf_counter() - t1, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--threshold", type=float, default=0.3)
    ap.add_argument("--map-frames", type=int, default=0, help="also mAP@0.5 on this many fresh renders")
    ap.add_argument("--seed", type=int, default=7331, help="the fresh render's seed (unseen in training)")
    ap.add_argument("--holdout-look", action="store_true", help="the held-out render's light and camera ranges")
    a = ap.parse_args()
    from jobs.train.infer import load_model, predict_image

    ims = photos()
    for m in a.models:
        lm = load_model(m)
        counts = {n: len(predict_image(lm, im, score_threshold=a.threshold)["detections"]) for n, im in ims}
        top = max(counts.items(), key=lambda kv: kv[1])
        print(f"{m}: {sum(counts.values()) / len(counts):.2f} false detections per photo over {len(counts)} photos "
              f"at threshold {a.threshold} (most: {top[0]} {top[1]})")
        if a.map_frames:
            r = fresh_map(m, a.map_frames, a.seed, a.holdout_look)
            print(f"{m}: mAP@0.5 {r['map50']:.3f} (mAP {r['map']:.3f}) on {r['frames']} fresh renders, seed {r['seed']}"
                  f"{', held-out light and camera' if r['holdout_look'] else ''} (card: {r['card_map50']:.3f}); "
                  f"rendered in {r['render_s']:.0f} s, evaluated in {r['eval_s']:.0f} s")


if __name__ == "__main__":
    main()
