"""Render a dataset (or a shard of one), and merge shards.

Layout of a dataset folder DIR (the training engine reads exactly this):
  DIR/images/000000.png (or .jpg)   RGB
  DIR/depth/000000.png              16-bit, millimetres, 0 = nothing
  DIR/masks/instance/000000.png     16-bit instance id (= meta objects[].instance_id), 0 = none
  DIR/masks/semantic/000000.png     8-bit COCO category id, 0 = none
  DIR/meta/000000.json              camera K and pose, lights, objects (visibility...), annotations
  DIR/annotations.json              COCO (file_name relative to DIR), image id = frame index
  DIR/dataset.json                  the dataset card (counts, histogram, spec hash, versions, time)
  DIR/scene.json                    the scene spec rendered
The number is the global frame index. Frame i depends only on (spec, seed, i), so a shard
(`start`, `count`) holds the same bytes as those frames of a full run, and shards merge.

Threading: the GL work stays on the calling thread; labels, PNG encoding and file writes
run on a small writer pool so they overlap the next frame's rendering.
"""

from __future__ import annotations

import io
import json
import os
import platform
import shutil

import time
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from PIL import Image

from common.fsutil import atomic_write_json, atomic_write_text, sha256_bytes
from jobs.render import dataset_card
from jobs.render.dataset_card import CARD_FORMAT, frame_name
from jobs.render.labels import frame_labels, frame_meta
from jobs.render.pngenc import FILTER_SUB, FILTER_UP, encode_png
from jobs.render.sampling import FrameSample
from jobs.render.spec import SceneError, SceneSpec, load_scene

CARD_VERSION = 1
PNG_LEVEL = 1  # zlib level of the PNG writer (pngenc.py): the writers' CPU competes with rendering
PNG_ENCODER = f"kminer-pngenc-1 sub/up zlib-{PNG_LEVEL}"  # in the card: a different encoder, different bytes
IN_FLIGHT = 4  # frames queued for the writers before rendering waits
RESERVE_FRAMES = 32  # frames sampled up front to size the node pools

Progress = Callable[[int, int, str], None]


class RenderError(Exception):
    """A render or merge that cannot go on, with a one-line reason."""


def _png(arr: np.ndarray, filter_type: int = FILTER_UP) -> bytes:
    return encode_png(arr, filter_type=filter_type, level=PNG_LEVEL)


def encode_frame(spec: SceneSpec, spec_hash: str, fs: FrameSample, raw) -> tuple[dict[str, bytes], dict]:
    """Files (relative path -> bytes) and metadata of one rendered frame. Pure and
    deterministic: the verifier calls it too and compares bytes."""
    out = spec.outputs
    name = frame_name(fs.index)
    objects, anns = frame_labels(spec, fs, raw.ids, raw.silhouette_px, raw.truncation)
    files: dict[str, bytes] = {}
    rel: dict[str, str] = {}
    if out.rgb:
        if out.rgb_format == "jpg":
            buf = io.BytesIO()
            Image.fromarray(raw.color).save(buf, format="JPEG", quality=out.jpg_quality)
            rel["rgb"] = f"images/{name}.jpg"
            files[rel["rgb"]] = buf.getvalue()
        else:
            rel["rgb"] = f"images/{name}.png"
            files[rel["rgb"]] = _png(raw.color, FILTER_SUB)
    if out.depth:
        rel["depth"] = f"depth/{name}.png"
        files[rel["depth"]] = _png(np.clip(np.rint(raw.depth * 1000.0), 0, 65535).astype(np.uint16))
    if out.instance_mask:
        rel["instance"] = f"masks/instance/{name}.png"
        files[rel["instance"]] = _png(raw.ids.astype(np.uint16))
    if out.semantic_mask:
        lut = np.array([0] + [o.category_id for o in fs.objects], dtype=np.uint8)
        rel["semantic"] = f"masks/semantic/{name}.png"
        files[rel["semantic"]] = _png(lut[raw.ids])
    hashes = {k: sha256_bytes(files[p]) for k, p in rel.items()}
    meta = frame_meta(spec, spec_hash, fs, raw.K, rel, hashes, objects, anns)
    # compact: json's C encoder only runs without indent, and this runs on writer threads
    files[f"meta/{name}.json"] = (json.dumps(meta, separators=(",", ":")) + "\n").encode()
    return files, meta


def _slim(meta: dict) -> dict:
    """What annotations.json and the card need of a frame (kept in memory for the whole run)."""
    keep = ("frame", "files", "width", "height", "annotations")
    return {**{k: meta[k] for k in keep},
            "objects": [{k: o[k] for k in ("category_id", "category", "annotated")} for o in meta["objects"]]}


def _write(out_dir: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = out_dir / rel
        with open(p, "wb") as f:
            f.write(data)


def software_versions(engine: str = "fast") -> dict[str, str]:
    """Versions that make the frames what they are (the card's `software`); `bpy` only for the
    photoreal engine (an optional extra that a bundle may not ship)."""
    import importlib.metadata as md

    v = {"python": platform.python_version(), "platform": platform.platform(), "zlib": zlib.ZLIB_RUNTIME_VERSION,
         "png_encoder": PNG_ENCODER}
    pkgs = ("numpy", "pyrender", "trimesh", "pillow", "pycocotools", "pydantic", "PyOpenGL", "knowledge-miner")
    for pkg in pkgs + (("bpy",) if engine == "photoreal" else ()):
        try:
            v[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            v[pkg] = "missing"
    return v


def coco_document(spec: SceneSpec, spec_hash: str, seed: int, metas: list[dict]) -> dict:
    """COCO JSON of the frames in `metas` (sorted by frame); no timings, so a merged set of
    shards gives the same bytes as a full run."""
    metas = sorted(metas, key=lambda m: m["frame"])
    images, anns = [], []
    for m in metas:
        images.append({"id": m["frame"], "file_name": m["files"].get("rgb", ""), "width": m["width"], "height": m["height"],
                       "depth_file": m["files"].get("depth"), "instance_mask_file": m["files"].get("instance"),
                       "semantic_mask_file": m["files"].get("semantic"), "meta_file": f"meta/{frame_name(m['frame'])}.json"})
        anns += m["annotations"]
    return {
        "info": {"description": f"Knowledge Miner render of scene '{spec.name}'", "spec_hash": spec_hash, "seed": seed,
                 "version": str(CARD_VERSION)},
        "licenses": [],
        "categories": [{"id": i + 1, "name": c, "supercategory": "product"} for i, c in enumerate(spec.categories)],
        "images": images,
        "annotations": anns,
    }


def _card(spec: SceneSpec, spec_hash: str, seed: int, ranges: list[list[int]], metas: list[dict], seconds: float,
          started: str, gl: dict) -> dict:
    hist = {c: 0 for c in spec.categories}
    n_obj = n_ann = n_low = n_unl = 0
    for m in metas:
        for o in m["objects"]:
            n_obj += 1
            if not o["category_id"]:
                n_unl += 1
            elif o["annotated"]:
                n_ann += 1
                hist[o["category"]] += 1
            else:
                n_low += 1
    n = len(metas)
    return {
        "format": CARD_FORMAT, "version": CARD_VERSION, "scene": spec.name, "spec_hash": spec_hash, "seed": seed,
        "frame_ranges": ranges, "image_size": [spec.outputs.width, spec.outputs.height],
        "counts": {"images": n, "objects": n_obj, "annotations": n_ann, "objects_below_threshold": n_low, "objects_unlabelled": n_unl},
        "class_histogram": hist, "categories": spec.categories,
        "outputs": {k: getattr(spec.outputs, k) for k in ("rgb", "rgb_format", "depth", "instance_mask", "semantic_mask", "boxes", "min_visible_fraction")},
        "software": {**software_versions(spec.engine), **{f"gl_{k}": v for k, v in gl.items()}},
        "time": {"started_utc": started, "seconds": round(seconds, 3), "frames_per_s": round(n / seconds, 3) if seconds > 0 else None},
    }


def _prepare_out(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise RenderError(f"output {out_dir} is a file, not a folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise RenderError(f"output folder {out_dir} is not empty")
    try:
        for sub in ("images", "depth", "masks/instance", "masks/semantic", "meta"):
            (out_dir / sub).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RenderError(f"cannot create the output folder {out_dir}: {e.strerror or e}") from None


def select_platform(spec: SceneSpec) -> dict:
    """The fast engine's GL platform (renderer.select_gl_platform); the photoreal engine
    needs no GL: {"platform": "cycles", "fallback": None}."""
    if spec.engine == "photoreal":
        return {"platform": "cycles", "fallback": None}
    from jobs.render.renderer import select_gl_platform

    try:
        return select_gl_platform()
    except RuntimeError as e:
        raise RenderError(str(e)) from None


def make_renderer(spec: SceneSpec, lib, bg):
    """The spec's engine: `renderer.SceneRenderer` (fast, GL) or `photoreal.PhotorealRenderer`
    (Cycles; needs the `photoreal` extra). Call `select_platform(spec)` first."""
    if spec.engine == "photoreal":
        from jobs.render.photoreal import PhotorealRenderer, PhotorealUnavailable

        try:
            return PhotorealRenderer(spec, lib, bg)
        except PhotorealUnavailable as e:
            raise RenderError(str(e)) from None
    from jobs.render.renderer import SceneRenderer

    return SceneRenderer(spec, lib, bg)


def render_sample(spec: SceneSpec, infos, seed: int, index: int):
    """(frame sample, randomisation draws) of frame `index` (randomize.frame)."""
    from jobs.render import randomize

    return randomize.frame(spec, infos, seed, index)


def render_frame(renderer, spec: SceneSpec, infos, seed: int, index: int):
    """Sample and render frame `index` with either engine, camera effects applied:
    (frame sample, raw frame). The verifier calls this too."""
    from jobs.render import randomize

    fs, ex = randomize.frame(spec, infos, seed, index)
    if spec.engine == "photoreal":
        raw = renderer.render(fs, ex)
    else:
        raw = renderer.render(fs)
    if not randomize.is_default(spec):
        raw.color = randomize.camera_effects(raw.color, ex, exposure=spec.engine != "photoreal")
    return fs, raw


def renderer_info(renderer, plat: dict) -> dict:
    """The card's `gl_*` software entries: GL renderer/version, or Cycles device/version."""
    if hasattr(renderer, "gl_info"):
        return {**renderer.gl_info, "platform": plat["platform"]}
    return {k: v for k, v in renderer.info.items() if v is not None}


def render_dataset(spec: SceneSpec, out_dir: str | os.PathLike[str], *, start: int = 0, count: int | None = None,
                   seed: int | None = None, inputs: Mapping[str, Path] | None = None,
                   progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> dict:
    """Render frames [start, start + count) of `spec` into `out_dir`; returns the card.

    `count` defaults to the spec's outputs.count minus `start`, `seed` to outputs.seed;
    `inputs` maps sha256 -> path for the user files the spec names. Raises SceneError for
    an unusable spec or inputs (before anything is written) and RenderError otherwise.
    """
    from jobs.render.library import background_image, build_library

    seed = spec.outputs.seed if seed is None else int(seed)
    if start < 0:
        raise RenderError("start must be >= 0")
    count = max(0, spec.outputs.count - start) if count is None else int(count)
    if count < 1:
        raise RenderError("nothing to render: count must be >= 1")
    out_dir = Path(out_dir)
    plat = select_platform(spec)
    if plat["fallback"] and progress is not None:
        progress(0, count, f"rendering with OSMesa (software): {plat['fallback']}")
    lib = build_library(spec, inputs)  # validates user files before anything is written
    bg = background_image(spec, inputs)

    _prepare_out(out_dir)
    spec_hash = spec.spec_hash()
    atomic_write_text(out_dir / "scene.json", spec.model_dump_json(indent=2) + "\n")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    infos = [g.info for g in lib]
    renderer = make_renderer(spec, lib, bg)
    if spec.engine == "fast":
        renderer.reserve([render_sample(spec, infos, seed, i)[0] for i in range(start, start + min(count, RESERVE_FRAMES))])
    metas: dict[int, dict] = {}
    pending: deque[Future] = deque()

    def job(fs, raw):
        files, meta = encode_frame(spec, spec_hash, fs, raw)
        _write(out_dir, files)
        return _slim(meta)

    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="render-writer") as pool:
            for k, i in enumerate(range(start, start + count)):
                if cancelled is not None and cancelled():
                    raise RenderError(f"cancelled after {k} frames")
                fs, raw = render_frame(renderer, spec, infos, seed, i)
                pending.append(pool.submit(job, fs, raw))
                while len(pending) > IN_FLIGHT or (pending and pending[0].done()):
                    m = pending.popleft().result()
                    metas[m["frame"]] = m
                if progress is not None:
                    progress(k + 1, count, f"frame {i} rendered ({len(fs.objects)} objects)")
            while pending:
                m = pending.popleft().result()
                metas[m["frame"]] = m
        gl = renderer_info(renderer, plat)
        if plat.get("fallback"):
            gl["egl_error"] = plat["fallback"]
    finally:
        renderer.close()
    seconds = time.perf_counter() - t0
    ordered = [metas[i] for i in sorted(metas)]
    atomic_write_json(out_dir / "annotations.json", coco_document(spec, spec_hash, seed, ordered))
    card = _card(spec, spec_hash, seed, [[start, start + count]], ordered, seconds, started, gl)
    atomic_write_json(out_dir / "dataset.json", card)
    return card


def read_card(d: Path) -> dict:
    """The checked card of dataset folder `d` (jobs.render.dataset_card: a stranger's file)."""
    try:
        return dataset_card.read_card(d)
    except dataset_card.CardError as e:
        raise RenderError(str(e)) from None


def read_metas(d: Path, card: dict) -> list[dict]:
    """The checked metadata of every frame of `card` (jobs.render.dataset_card)."""
    try:
        return dataset_card.read_metas(d, card)
    except dataset_card.CardError as e:
        raise RenderError(str(e)) from None


def merge_datasets(shards: list[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *, link: bool = True) -> dict:
    """Merge shard folders of one scene and seed into `out_dir` (files hard-linked when
    possible, else copied); frame ranges must not overlap. Returns the merged card."""
    if not shards:
        raise RenderError("no shards to merge")
    dirs = [Path(s) for s in shards]
    cards = [read_card(d) for d in dirs]
    first = cards[0]
    for d, c in zip(dirs, cards):
        if c["spec_hash"] != first["spec_hash"] or c["seed"] != first["seed"]:
            raise RenderError(f"{d}: different scene or seed than {dirs[0]} (spec {c['spec_hash'][:12]} seed {c['seed']})")
    ranges = sorted([r for c in cards for r in c["frame_ranges"]])
    for (a0, b0), (a1, b1) in zip(ranges, ranges[1:]):
        if a1 < b0:
            raise RenderError(f"shards overlap: frames [{a0}, {b0}) and [{a1}, {b1})")
    spec = load_scene(dirs[0] / "scene.json")
    if spec.spec_hash() != first["spec_hash"]:
        raise RenderError(f"{dirs[0]}/scene.json does not match its card's spec hash")
    out_dir = Path(out_dir)
    _prepare_out(out_dir)
    atomic_write_text(out_dir / "scene.json", (dirs[0] / "scene.json").read_text())
    metas: list[dict] = []
    for d, c in zip(dirs, cards):
        for m in read_metas(d, c):
            for rel in [*m["files"].values(), f"meta/{frame_name(m['frame'])}.json"]:
                src, dst = d / rel, out_dir / rel
                try:
                    if link:
                        os.link(src, dst)
                    else:
                        shutil.copyfile(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
            metas.append(m)
    metas.sort(key=lambda m: m["frame"])
    atomic_write_json(out_dir / "annotations.json", coco_document(spec, first["spec_hash"], first["seed"], metas))
    seconds = sum(c["time"]["seconds"] for c in cards)
    card = _card(spec, first["spec_hash"], first["seed"], _join(ranges), metas, seconds,
                 min(c["time"]["started_utc"] for c in cards), {k[3:]: v for k, v in first["software"].items() if k.startswith("gl_")})
    card["merged_from"] = [str(d) for d in dirs]
    atomic_write_json(out_dir / "dataset.json", card)
    return card


def _join(ranges: list[list[int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for a, b in ranges:
        if out and out[-1][1] == a:
            out[-1][1] = b
        else:
            out.append([a, b])
    return out


__all__ = ["RenderError", "SceneError", "encode_frame", "merge_datasets", "render_dataset", "read_card", "read_metas",
           "coco_document", "frame_name", "software_versions"]
