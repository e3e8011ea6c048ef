"""Small COCO datasets of drawn shapes with exact labels, for tests, benchmarks and smoke runs.

Real data in the render engine's layout (DIR/images/NNNNNN.png, DIR/annotations.json with
RLE masks, DIR/dataset.json), made in a second: coloured rectangles, ellipses and triangles
on noisy gradient backgrounds. Boxes are the exact extent of each drawn mask.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ["red-box", "blue-disc", "green-triangle"]
_COLOURS = [(210, 40, 40), (40, 70, 210), (40, 180, 60)]


def make_shapes_dataset(out: Path, n_images: int = 64, size: tuple[int, int] = (160, 120), seed: int = 0,
                        max_objects: int = 3, brightness: float = 1.0, noise: float = 12.0) -> Path:
    """Write a COCO folder of `n_images` images at `size` (w, h); returns `out`. `noise` is the
    std-dev of the background pixel noise (0..255 scale)."""
    from pycocotools import mask as mask_utils

    rng = np.random.RandomState(seed)
    w, h = size
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n_images):
        yy, xx = np.mgrid[0:h, 0:w]
        base = rng.uniform(60, 200, 3)
        grad = rng.uniform(-40, 40, 3)
        bg = base[None, None, :] + grad[None, None, :] * (xx / w)[..., None] + rng.normal(0, noise, (h, w, 3))
        img = Image.fromarray(np.clip(bg * brightness, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        placed: list[tuple[int, int, int, int]] = []
        for _ in range(rng.randint(1, max_objects + 1)):
            cls = rng.randint(len(CLASSES))
            for _try in range(20):
                bw, bh = rng.randint(w // 8, w // 3), rng.randint(h // 8, h // 3)
                x0, y0 = rng.randint(0, w - bw), rng.randint(0, h - bh)
                cand = (x0, y0, x0 + bw, y0 + bh)
                if all(cand[2] <= p[0] or cand[0] >= p[2] or cand[3] <= p[1] or cand[1] >= p[3] for p in placed):
                    break
            else:
                continue
            placed.append(cand)
            colour = tuple(int(np.clip(c * brightness + rng.randint(-25, 26), 0, 255)) for c in _COLOURS[cls])
            m = Image.new("L", size, 0)
            md = ImageDraw.Draw(m)
            shape = [cand[0], cand[1], cand[2] - 1, cand[3] - 1]
            if cls == 0:
                md.rectangle(shape, fill=255)
            elif cls == 1:
                md.ellipse(shape, fill=255)
            else:
                md.polygon([(cand[0], cand[3] - 1), ((cand[0] + cand[2]) // 2, cand[1]), (cand[2] - 1, cand[3] - 1)], fill=255)
            draw.bitmap((0, 0), m, fill=colour)
            mask = np.asarray(m) > 0
            ys, xs = np.nonzero(mask)
            x1, y1, x2, y2 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cls + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                         "area": int(mask.sum()), "iscrowd": 0, "segmentation": rle})
        name = f"images/{i:06d}.png"
        img.save(out / name)
        images.append({"id": i, "file_name": name, "width": w, "height": h})
    coco = {"images": images, "annotations": anns,
            "categories": [{"id": k + 1, "name": n} for k, n in enumerate(CLASSES)]}
    (out / "annotations.json").write_text(json.dumps(coco))
    (out / "dataset.json").write_text(json.dumps({"generator": "jobs.train.synthetic", "seed": seed, "images": n_images,
                                                  "annotations": len(anns), "spec_hash": f"shapes-{seed}-{n_images}"}))
    return out
