"""Negative frames for a detector: renders that show none of its classes (issue 22).

A detector trained only on stocked shelves learns that "anything busy is a product". These
frames teach it what is not: empty shelf units and bare rooms (a table, a floor, a wall) with
random clutter meshes (boxes, spheres, cylinders of random colours and sizes), under random
light and camera, in front of procedural wall textures (value noise, stripes, checks, blobs
and gradients drawn here with numpy: no downloaded photos), rendered by the project's own
engines (optionally some with the photoreal one). Every frame has zero annotations and the
same categories as the scene it complements, so `load_coco` reads them with the positives.

`render_negatives(base_scene, out, frames, seed)` writes one dataset folder per texture and
returns them; everything is seeded, so a rerun gives the same files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from common.fsutil import sha256_file

TEXTURE_KINDS = ("noise", "stripes", "checks", "blobs", "gradient", "plain")


def procedural_texture(kind: str, seed: int, size: tuple[int, int] = (512, 384)) -> np.ndarray:
    """An RGB uint8 wall texture of `kind` (TEXTURE_KINDS), a function of `seed` only."""
    rng = np.random.default_rng([seed, 0x4E45])
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    c0, c1 = rng.random(3), rng.random(3)
    if kind == "noise":  # value noise, a few octaves
        t = np.zeros((h, w))
        for octave in range(4):
            g = 4 * 2**octave
            grid = rng.random((g + 1, g + 1))
            img = Image.fromarray((grid * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
            t += np.asarray(img, np.float64) / 255.0 / 2**octave
        t = (t - t.min()) / max(1e-9, np.ptp(t))
    elif kind == "stripes":
        ang, freq = rng.uniform(0, np.pi), rng.uniform(6, 40)
        t = 0.5 + 0.5 * np.sign(np.sin((xx * np.cos(ang) + yy * np.sin(ang)) * freq * np.pi))
    elif kind == "checks":
        n = rng.uniform(4, 24)
        t = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(np.float64)
    elif kind == "blobs":
        t = np.zeros((h, w))
        for _ in range(int(rng.integers(5, 30))):
            cx, cy, r = rng.random(), rng.random() * h / w, rng.uniform(0.02, 0.2)
            t += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)) * rng.uniform(-1, 1)
        t = (t - t.min()) / max(1e-9, np.ptp(t))
    elif kind == "gradient":
        ang = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(ang) + yy * np.sin(ang)
        t = (t - t.min()) / max(1e-9, np.ptp(t))
    else:
        t = np.zeros((h, w))
    rgb = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    rgb += rng.normal(0, 0.02, rgb.shape)  # a little grain
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def negative_scene(base: dict, k: int, *, width: int, height: int, count: int, seed: int,
                   texture_sha: str | None, engine: str = "fast", samples: int = 16) -> dict:
    """Scene `k` of the negatives: the base scene's assets (so its categories), no products:
    an empty shelf unit (even k) or a bare table room (odd k), with clutter and a textured wall."""
    rng = np.random.default_rng([seed, k, 0x4E47])
    s = json.loads(json.dumps(base))
    s["name"] = f"{base.get('name', 'scene')}-negatives-{k}"
    s["description"] = "Negative frames: no products, clutter meshes, procedural wall texture."
    if k % 2 == 0 and s["layout"]["kind"] == "shelf":
        s["layout"] = {**s["layout"], "fill_rate": [0.0, 0.0], "rows": int(rng.integers(2, 6))}
        s["distractors"] = {"count": [4, 24], "size": [0.03, 0.18]}
    else:
        s["layout"] = {"kind": "table", "width": float(rng.uniform(0.8, 2.0)), "depth": float(rng.uniform(0.7, 1.2)),
                       "height": float(rng.uniform(0.5, 0.9)), "objects": [0, 0]}
        s["distractors"] = {"count": [5, 40], "size": [0.03, 0.3]}
        s["camera"] = {**s.get("camera", {}), "pitch_deg": [5, 35], "distance": [1.0, 2.4], "yaw_deg": [-40, 40]}
    s["background"] = {"color": [[0.05, 0.05, 0.05], [0.95, 0.95, 0.95]], **({"image": texture_sha} if texture_sha else {})}
    s["lights"] = {**s["lights"], "intensity": [1.0, 6.0], "color_temperature_k": [2700, 9000], "ambient": [0.15, 0.6]}
    s["outputs"] = {**s.get("outputs", {}), "width": width, "height": height, "count": count, "seed": seed + k,
                    "depth": False, "instance_mask": False, "semantic_mask": False}
    s["engine"] = engine
    if engine == "photoreal":
        s["photoreal"] = {"samples": samples, "denoise": True}
    return s


def render_negatives(base: dict, out: Path, frames: int, *, seed: int = 500, width: int = 320, height: int = 240,
                     per_scene: int = 25, photoreal: int = 0, samples: int = 16) -> list[Path]:
    """Render `frames` fast-engine negatives (plus `photoreal` Cycles ones) into folders under
    `out` (one a scene and texture); returns the dataset folders. Folders already complete
    (an earlier run) are kept: frames depend only on spec, seed and index."""
    from jobs.render.dataset import render_dataset
    from jobs.render.spec import parse_scene

    out = Path(out)
    tex_dir = out / "textures"
    tex_dir.mkdir(parents=True, exist_ok=True)
    plan = []
    k = 0
    for engine, n in (("fast", frames), ("photoreal", photoreal)):
        while n > 0:
            plan.append((k, engine, min(per_scene, n)))
            n -= per_scene
            k += 1
    dirs = []
    for k, engine, count in plan:
        kind = TEXTURE_KINDS[k % len(TEXTURE_KINDS)]
        tex = tex_dir / f"{k:03d}-{kind}.png"
        if not tex.is_file():
            Image.fromarray(procedural_texture(kind, seed + k)).save(tex)
        sha = sha256_file(tex) if kind != "plain" else None
        scene = negative_scene(base, k, width=width, height=height, count=count, seed=seed, texture_sha=sha,
                               engine=engine, samples=samples)
        d = out / f"neg-{k:03d}-{engine}"
        dirs.append(d)
        if (d / "annotations.json").is_file() and (d / "dataset.json").is_file():
            continue
        if d.exists():
            import shutil

            shutil.rmtree(d)
        render_dataset(parse_scene(scene), d, inputs={sha: tex} if sha else None)
    return dirs
