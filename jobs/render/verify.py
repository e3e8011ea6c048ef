"""Verify a delivered render: re-render a random sample of its frames and compare.

Two checks, both reported with figures:
- exact: the re-rendered files hash the same as the delivered ones. Required when the
  delivered card names the same render stack (GL renderer and version, library versions)
  as this machine: a byte difference there means tampering (or a broken renderer).
- tolerant (other drivers or GPUs): RGB mean absolute difference (0-255 scale) under
  `max_mad`, and every delivered box matched by the re-rendered box of the same instance
  with IoU at least `min_iou` (a missing or extra box counts as IoU 0).
Also checked on every frame, without rendering: annotations.json agrees with the per-frame
metadata, and the sampled frames' files hash as their metadata says.

`run(ctx)` is the `verify-render` job engine; `verify_dataset` is the plain function.
"""

from __future__ import annotations

import io
import secrets
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image

from common.fsutil import sha256_bytes
from common.safejson import ANNOTATIONS_LIMITS, SafeJsonError, load_file
from jobs.render.dataset import RenderError, encode_frame, read_card, read_metas, software_versions
from jobs.render.dataset_card import META_LIMITS, CardError, check_meta, frame_name
from jobs.render.spec import SceneError, SceneSpec, load_scene

MAX_MAD = 3.0
MIN_IOU = 0.9
# photoreal (Cycles) frames from another device or driver differ by sampling noise: a mean
# absolute difference and a structural similarity bound, both taken at half resolution (2x2
# means, where the noise averages out). Measured at 160x120, 16 samples, denoised: another
# noise realisation gives MAD 2.75 / SSIM 0.984; a 1-sample render or the fast engine's frame
# fails (tests/render/test_photoreal.py)
PHOTOREAL_MAX_MAD = 4.0
PHOTOREAL_MIN_SSIM = 0.97
_STACK_KEYS = ("numpy", "pyrender", "trimesh", "pillow", "pycocotools", "PyOpenGL", "gl_renderer", "gl_version",
               "zlib", "png_encoder")


def _iou(a: list[float], b: list[float]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _stack(sw: Mapping[str, Any], engine: str = "fast") -> dict[str, Any]:
    keys = _STACK_KEYS + (("bpy", "gl_samples", "gl_denoise", "gl_threads") if engine == "photoreal" else ())
    return {k: sw.get(k) for k in keys}


def half(a: np.ndarray) -> np.ndarray:
    """An image at half resolution (means of 2x2 pixels), float64."""
    x = a.astype(np.float64)
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    x = x[:h, :w]
    return (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4.0


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of two RGB uint8 images (luma, 7x7 box windows, the
    usual constants for a 0-255 range)."""
    from scipy.ndimage import uniform_filter

    w = np.array([0.299, 0.587, 0.114])
    x, y = a.astype(np.float64) @ w, b.astype(np.float64) @ w
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = uniform_filter(x, 7), uniform_filter(y, 7)
    vx = uniform_filter(x * x, 7) - mx * mx
    vy = uniform_filter(y * y, 7) - my * my
    cxy = uniform_filter(x * y, 7) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def _box_ious(delivered: list[dict], rendered: list[dict]) -> list[float]:
    mine = {a["instance_id"]: a for a in rendered}
    theirs = {a.get("instance_id"): a for a in delivered}
    out = []
    for iid in sorted(set(mine) | set(theirs), key=lambda x: (x is None, x)):
        a, b = theirs.get(iid), mine.get(iid)
        if a is None or b is None or a.get("category_id") != b.get("category_id"):
            out.append(0.0)
        else:
            out.append(_iou(a["bbox"], b["bbox"]))
    return out


def verify_dataset(dataset: str | Path, *, scene: str | Path | SceneSpec | None = None, sample: int = 5,
                   sample_seed: int | None = None, inputs: Mapping[str, Path] | None = None,
                   max_mad: float = MAX_MAD, min_iou: float = MIN_IOU, progress=None,
                   frames: list[int] | None = None) -> dict:
    """Re-render `sample` random frames of `dataset` and compare; returns the report dict
    (`passed`, `mode`, figures, `failures`). Raises RenderError/SceneError when the
    dataset or scene cannot be read at all.

    `frames`: a sample the caller chose and fetched already (an order's buyer samples a sealed
    result before paying and holds only the card and these frames' files): exactly these
    frames are re-rendered, each against its own metadata (annotations.json, which covers
    every frame, is not needed then)."""
    d = Path(dataset)
    card = read_card(d)
    spec = scene if isinstance(scene, SceneSpec) else load_scene(Path(scene) if scene else d / "scene.json")
    failures: list[str] = []
    if spec.spec_hash() != card["spec_hash"]:
        failures.append(f"scene hash {spec.spec_hash()[:12]} differs from the card's {card['spec_hash'][:12]}")
    if frames is not None:
        return _verify_sample(d, card, spec, sorted(set(frames)), inputs=inputs, max_mad=max_mad, min_iou=min_iou,
                              failures=failures, progress=progress)
    metas = read_metas(d, card)
    by_frame = {m["frame"]: m for m in metas}
    try:
        coco = load_file(d / "annotations.json", ANNOTATIONS_LIMITS, what="annotations", root=d)
    except SafeJsonError as e:
        raise RenderError(f"{d}/annotations.json unreadable: {e}") from None
    if not isinstance(coco, dict) or not all(
            isinstance(coco.get(k, []), list) and all(isinstance(x, dict) and isinstance(x.get(i), (int, type(None)))
                                                      for x in coco.get(k, [])) for k, i in (("annotations", "image_id"), ("images", "id"))):
        raise RenderError(f"{d}/annotations.json is not a COCO document")
    # 1) annotations.json must say what the metadata says, for every frame
    coco_by_img: dict[int, list[dict]] = {}
    for a in coco.get("annotations", []):
        coco_by_img.setdefault(a.get("image_id"), []).append(a)
    images = {im.get("id") for im in coco.get("images", [])}
    if images != set(by_frame):
        failures.append(f"annotations.json lists {len(images)} images, the metadata {len(by_frame)}")
    for f, m in by_frame.items():
        if coco_by_img.get(f, []) != m["annotations"]:
            failures.append(f"frame {f}: annotations.json differs from meta/{f:06d}.json")
    # 2) re-render a sample
    rng = np.random.default_rng(sample_seed if sample_seed is not None else secrets.randbits(63))
    frames = sorted(by_frame)
    chosen = sorted(int(x) for x in rng.choice(frames, size=min(max(1, sample), len(frames)), replace=False)) if frames else []
    return _rerender(d, card, spec, by_frame, coco_by_img, chosen, len(frames), inputs=inputs, max_mad=max_mad,
                     min_iou=min_iou, failures=failures, progress=progress)


def _verify_sample(d: Path, card: dict, spec: SceneSpec, chosen: list[int], *, inputs, max_mad: float, min_iou: float,
                   failures: list[str], progress) -> dict:
    in_card = {i for a, b in card["frame_ranges"] for i in range(a, b)}
    by_frame: dict[int, dict] = {}
    for f in chosen:
        if f not in in_card:
            raise RenderError(f"frame {f} is not in the delivered card's frame ranges")
        try:
            m = load_file(d / "meta" / f"{frame_name(f)}.json", META_LIMITS, what=f"frame {f} metadata", root=d)
            by_frame[f] = check_meta(m, f)
        except (SafeJsonError, CardError) as e:
            raise RenderError(str(e)) from None
    coco_by_img = {f: m["annotations"] for f, m in by_frame.items()}
    return _rerender(d, card, spec, by_frame, coco_by_img, chosen, len(in_card), inputs=inputs, max_mad=max_mad,
                     min_iou=min_iou, failures=failures, progress=progress)


def _rerender(d: Path, card: dict, spec: SceneSpec, by_frame: dict, coco_by_img: dict, chosen: list[int],
              frames_total: int, *, inputs, max_mad: float, min_iou: float, failures: list[str], progress) -> dict:
    from jobs.render.dataset import make_renderer, render_frame, renderer_info, select_platform
    from jobs.render.library import background_image, build_library

    photoreal = spec.engine == "photoreal"
    if photoreal and max_mad == MAX_MAD:
        max_mad = PHOTOREAL_MAX_MAD
    plat = select_platform(spec)
    lib = build_library(spec, inputs)
    bg = background_image(spec, inputs)
    renderer = make_renderer(spec, lib, bg)
    infos = [g.info for g in lib]
    spec_hash = card["spec_hash"]
    per_frame = []
    try:
        for k, f in enumerate(chosen):
            m = by_frame[f]
            fs, raw = render_frame(renderer, spec, infos, card["seed"], f)
            files, meta = encode_frame(spec, spec_hash, fs, raw)
            exact = True
            mad, sim = 0.0, 1.0
            for key, rel in m["files"].items():
                p = d / rel
                try:
                    data = p.read_bytes()
                except OSError:
                    failures.append(f"frame {f}: {rel} missing")
                    exact = False
                    continue
                if sha256_bytes(data) != m["sha256"].get(key):
                    failures.append(f"frame {f}: {rel} does not match the hash in its metadata")
                if files.get(rel) != data:
                    exact = False
                if key == "rgb":
                    try:
                        theirs = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)
                        if theirs.shape != raw.color.shape:
                            raise ValueError(f"size {theirs.shape[1]}x{theirs.shape[0]}")
                        if photoreal:  # noise-tolerant comparison (see PHOTOREAL_MAX_MAD)
                            ht, hm = half(theirs), half(raw.color)
                            mad, sim = float(np.abs(ht - hm).mean()), ssim(ht, hm)
                        else:
                            mad = float(np.abs(theirs - raw.color.astype(np.int16)).mean())
                            sim = ssim(theirs, raw.color)
                    except Exception as e:  # a tampered file may not even decode
                        failures.append(f"frame {f}: {rel} unreadable: {e}")
                        mad, sim = 255.0, 0.0
            delivered = coco_by_img.get(f, [])
            ious = _box_ious(delivered, meta["annotations"])
            exact = exact and delivered == meta["annotations"]
            per_frame.append({"frame": f, "exact": exact, "rgb_mad": round(mad, 4), "rgb_ssim": round(sim, 5),
                              "boxes": len(ious), "box_iou_min": round(min(ious), 4) if ious else 1.0,
                              "box_iou_mean": round(float(np.mean(ious)), 4) if ious else 1.0})
            if progress is not None:
                progress(k + 1, len(chosen), f"frame {f} re-rendered")
        gl = renderer_info(renderer, plat)
    finally:
        renderer.close()
    here = _stack({**software_versions(spec.engine), **{f"gl_{k}": v for k, v in gl.items()}}, spec.engine)
    same_stack = here == _stack(card.get("software", {}), spec.engine)
    mode = "exact" if same_stack else "tolerant"
    for r in per_frame:
        if mode == "exact" and not r["exact"]:
            failures.append(f"frame {r['frame']}: re-render differs on the same software stack (MAD {r['rgb_mad']}, box IoU min {r['box_iou_min']})")
        elif mode == "tolerant" and (r["rgb_mad"] > max_mad or r["box_iou_min"] < min_iou
                                     or (photoreal and r["rgb_ssim"] < PHOTOREAL_MIN_SSIM)):
            failures.append(f"frame {r['frame']}: MAD {r['rgb_mad']} (max {max_mad}), SSIM {r['rgb_ssim']}"
                            f"{f' (min {PHOTOREAL_MIN_SSIM})' if photoreal else ''}, box IoU min {r['box_iou_min']} (min {min_iou})")
    mads = [r["rgb_mad"] for r in per_frame]
    ious_min = [r["box_iou_min"] for r in per_frame]
    return {
        "passed": not failures, "mode": mode, "same_stack": same_stack, "gl_platform": plat["platform"],
        "frames_total": frames_total, "frames_checked": chosen, "exact_matches": sum(r["exact"] for r in per_frame),
        "rgb_mad_max": max(mads) if mads else 0.0, "rgb_mad_mean": round(float(np.mean(mads)), 4) if mads else 0.0,
        "rgb_ssim_min": min((r["rgb_ssim"] for r in per_frame), default=1.0), "engine": spec.engine,
        "box_iou_min": min(ious_min) if ious_min else 1.0,
        "thresholds": {"max_mad": max_mad, "min_iou": min_iou} | ({"min_ssim": PHOTOREAL_MIN_SSIM} if photoreal else {}),
        "frames": per_frame, "failures": failures[:50], "failure_count": len(failures),
    }


def _frames(p: Mapping[str, Any]) -> list[int] | None:
    f = p.get("frames")
    if f is None:
        return None
    if not isinstance(f, list) or not 0 < len(f) <= 64 or not all(isinstance(x, int) and 0 <= x < 10**9 for x in f):
        raise ValueError("params.frames must be a list of 1 to 64 frame numbers")
    return f


def run(ctx) -> dict:
    """`verify-render` job engine. params: sample (int, default 5), sample_seed (int,
    default ctx.seed), max_mad, min_iou, frames (the sample to check, chosen by the caller:
    then the dataset holds only those frames and the card); inputs: `dataset` (folder), optional `scene`
    (JSON file; default the dataset's scene.json) and user files by sha256."""
    from jobs.engine import EngineError
    from jobs.render.engine import _inputs_by_hash

    p = ctx.params
    ds = ctx.inputs.get("dataset")
    if ds is None:
        raise EngineError("verify-render needs an input named 'dataset' (the delivered folder)")
    try:
        report = verify_dataset(ds, scene=ctx.inputs.get("scene"), sample=int(p.get("sample", 5)),
                                sample_seed=int(p.get("sample_seed", ctx.seed)), inputs=_inputs_by_hash(ctx.inputs),
                                max_mad=float(p.get("max_mad", MAX_MAD)), min_iou=float(p.get("min_iou", MIN_IOU)),
                                progress=lambda k, n, msg: ctx.progress(k / n, msg), frames=_frames(p))
    except (SceneError, RenderError, ValueError) as e:
        raise EngineError(str(e)) from None
    from common.fsutil import atomic_write_json

    atomic_write_json(Path(ctx.out_dir) / "verify.json", report)
    return {k: v for k, v in report.items() if k != "frames"}
