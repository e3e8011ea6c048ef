"""False detections per photo of a detector on ordinary photos that show none of its classes:
scikit-image's sample photos (people, a cat, a rocket, a coffee cup, astronauts...; shipped in
the skimage wheel, nothing downloaded). Every detection on them is a false one.

    .venv/bin/python bench/bench_false_detections.py resources/models/shelf-detector [OTHER_MODEL...] [--threshold 0.3]
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--threshold", type=float, default=0.3)
    a = ap.parse_args()
    from jobs.train.infer import load_model, predict_image

    ims = photos()
    for m in a.models:
        lm = load_model(m)
        counts = {n: len(predict_image(lm, im, score_threshold=a.threshold)["detections"]) for n, im in ims}
        top = max(counts.items(), key=lambda kv: kv[1])
        print(f"{m}: {sum(counts.values()) / len(counts):.2f} false detections per photo over {len(counts)} photos "
              f"at threshold {a.threshold} (most: {top[0]} {top[1]})")


if __name__ == "__main__":
    main()
