"""One frame of a scene, in memory: for the scene editor's live preview and `kminer render preview`.

Runs in a worker process (pyrender and OpenGL are imported here, never in the GUI). The
frame is exactly frame `index` of a dataset rendered with the same spec and seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
from PIL import Image, ImageDraw

from jobs.render.dataset import RenderError
from jobs.render.labels import frame_labels
from jobs.render.spec import SceneSpec

# one colour per category id (cycled), for box overlays
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def preview_frame(spec: SceneSpec, index: int = 0, *, seed: int | None = None,
                  inputs: Mapping[str, Path] | None = None) -> dict:
    """Render frame `index`: {"rgb": HxWx3 uint8, "instance": HxW uint32, "annotations": [...],
    "objects": [...]} (annotations and objects as in the dataset's metadata)."""
    from jobs.render.library import background_image, build_library
    from jobs.render.renderer import select_gl_platform

    try:
        select_gl_platform()
    except RuntimeError as e:
        raise RenderError(str(e)) from None
    from jobs.render.renderer import SceneRenderer
    from jobs.render.sampling import sample_frame

    lib = build_library(spec, inputs)
    r = SceneRenderer(spec, lib, background_image(spec, inputs))
    try:
        fs = sample_frame(spec, [g.info for g in lib], spec.outputs.seed if seed is None else seed, index)
        raw = r.render(fs)
    finally:
        r.close()
    objects, anns = frame_labels(spec, fs, raw.ids, raw.silhouette_px, raw.truncation)
    return {"rgb": raw.color, "instance": raw.ids, "annotations": anns, "objects": objects}


def overlay(rgb: np.ndarray, annotations: list[dict], categories: list[str], labels: bool = True) -> Image.Image:
    """The frame with each annotation's box (and class name) drawn on it."""
    img = Image.fromarray(rgb).convert("RGB")
    d = ImageDraw.Draw(img)
    for a in annotations:
        x, y, w, h = a["bbox"]
        c = PALETTE[(a["category_id"] - 1) % len(PALETTE)]
        d.rectangle([x, y, x + w - 1, y + h - 1], outline=c, width=2)
        if labels and h > 12:
            d.text((x + 2, y + 1), categories[a["category_id"] - 1], fill=c)
    return img
