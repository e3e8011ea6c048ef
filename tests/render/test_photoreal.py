"""The photoreal engine (Cycles through bpy): real renders at 64x48 and 8-16 samples.

Labels line up with the fast engine's, frames are bit-identical per seed on the CPU, shards
equal a full run, and verification tolerates another noise realisation (what another
device gives) but not a tampered frame.
"""

from __future__ import annotations

import importlib.util

import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.render.conftest import small_scene

# found, not imported: importing bpy at collection puts Blender's `gpu` module over our gpu/
# package for every test collected after this file (tests/conftest.py gives it back per test)
if importlib.util.find_spec("bpy") is None:
    pytest.skip("the photoreal extra (bpy) is not installed", allow_module_level=True)

W, H = 64, 48


def _spec(samples: int = 8, count: int = 2, **extra):
    from jobs.render.spec import parse_scene

    d = small_scene(width=W, height=H, count=count)
    d["engine"] = "photoreal"
    d["photoreal"] = {"samples": samples, "denoise": True}
    d.update(extra)
    return parse_scene(d)


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory):
    from jobs.render.dataset import render_dataset

    spec = _spec()
    out = tmp_path_factory.mktemp("photoreal") / "full"
    card = render_dataset(spec, out, seed=3)
    return spec, out, card


def test_dataset_has_the_fast_engines_layout_and_labels(photo_run):
    spec, d, card = photo_run
    assert card["software"]["gl_renderer"] == "Cycles CPU" and card["software"]["bpy"] == "5.0.1"
    assert card["counts"]["images"] == 2 and card["counts"]["annotations"] > 5
    coco = json.loads((d / "annotations.json").read_text())
    for f in (0, 1):
        ids = np.asarray(Image.open(d / "masks" / "instance" / f"{f:06d}.png"))
        depth = np.asarray(Image.open(d / "depth" / f"{f:06d}.png"))
        rgb = np.asarray(Image.open(d / "images" / f"{f:06d}.png"))
        assert rgb.shape == (H, W, 3) and 40 < rgb.mean() < 240
        assert depth.max() > 1000  # millimetres: the shelf is 1-3 m away
        meta = json.loads((d / "meta" / f"{f:06d}.json").read_text())
        for a in (a for a in coco["annotations"] if a["image_id"] == f):
            ys, xs = np.nonzero(ids == a["instance_id"])
            # a tight box of the object-index pass, and visibility counted against the silhouette
            assert a["bbox"] == [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
            o = meta["objects"][a["instance_id"] - 1]
            assert 0 < o["visible_px"] <= o["silhouette_px"] * 1.2 + 4


def test_boxes_agree_with_the_fast_engine(photo_run, tmp_path):
    """Same scene, seed and frames through the GL engine: the same objects in the same places."""
    from jobs.render.dataset import render_dataset
    from jobs.render.verify import _iou

    spec, d, _card = photo_run
    fast = spec.model_copy(update={"engine": "fast"})
    render_dataset(fast, tmp_path / "fast", seed=3)
    mine = {(a["image_id"], a["instance_id"]): a["bbox"] for a in json.loads((d / "annotations.json").read_text())["annotations"]}
    theirs = {(a["image_id"], a["instance_id"]): a["bbox"] for a in json.loads((tmp_path / "fast" / "annotations.json").read_text())["annotations"]}
    both = set(mine) & set(theirs)
    assert len(both) >= 0.8 * max(len(mine), len(theirs))
    ious = [_iou(mine[k], theirs[k]) for k in both]
    assert np.median(ious) > 0.75, sorted(ious)[:10]


def test_frames_are_bit_identical_per_seed_and_shards_match(photo_run, tmp_path):
    from jobs.render.dataset import render_dataset

    spec, d, _card = photo_run
    render_dataset(spec, tmp_path / "shard", start=1, count=1, seed=3)
    for sub in ("images", "depth", "masks/instance", "masks/semantic", "meta"):
        ext = "json" if sub == "meta" else "png"
        assert (tmp_path / "shard" / sub / f"000001.{ext}").read_bytes() == (d / sub / f"000001.{ext}").read_bytes(), sub


def _noise_realisation(spec, seed: int, frame: int, cycles_seed: int):
    """Frame `frame` rendered with another Cycles seed: what an honest other device gives
    (same scene, other sample paths)."""
    from dataclasses import replace

    from jobs.render import randomize
    from jobs.render.library import build_library
    from jobs.render.photoreal import PhotorealRenderer

    lib = build_library(spec)
    r = PhotorealRenderer(spec, lib, None)
    try:
        fs, ex = randomize.frame(spec, [g.info for g in lib], seed, frame)
        return r.render(fs, replace(ex, cycles_seed=cycles_seed)).color
    finally:
        r.close()


def _tamper(d, frame: int, img: np.ndarray) -> None:
    p = d / "images" / f"{frame:06d}.png"
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    p.write_bytes(buf.getvalue())
    meta_p = d / "meta" / f"{frame:06d}.json"
    meta = json.loads(meta_p.read_text())
    meta["sha256"]["rgb"] = hashlib.sha256(buf.getvalue()).hexdigest()  # a careful cheat fixes the hash
    meta_p.write_text(json.dumps(meta) + "\n")


def _other_device(d) -> None:
    """Make the card name another device, as a GPU rig's delivery would: tolerant mode."""
    card = json.loads((d / "dataset.json").read_text())
    card["software"]["gl_renderer"] = "Cycles OPTIX"
    card["software"].pop("gl_threads", None)
    (d / "dataset.json").write_text(json.dumps(card))


def test_verify_exact_on_this_device(photo_run):
    from jobs.render.verify import verify_dataset

    _spec_, d, _card = photo_run
    rep = verify_dataset(d, sample=2, sample_seed=0)
    assert rep["passed"] and rep["mode"] == "exact" and rep["exact_matches"] == 2, rep["failures"]


def test_verify_tolerates_another_device_but_not_a_cheap_frame(tmp_path):
    """160x120, 16 samples: another noise realisation passes; a 1-sample render and the fast
    engine's frame (what a cheat would deliver instead of paying for path tracing) fail."""
    from jobs.render.dataset import render_dataset
    from jobs.render.verify import PHOTOREAL_MAX_MAD, PHOTOREAL_MIN_SSIM, verify_dataset

    spec = _spec(samples=16, count=1)
    spec = spec.model_copy(update={"outputs": spec.outputs.model_copy(update={"width": 160, "height": 120})})
    ds = tmp_path / "ds"
    render_dataset(spec, ds, seed=3)
    render_dataset(spec.model_copy(update={"engine": "fast"}), tmp_path / "fast", seed=3)
    cheap = spec.model_copy(update={"photoreal": spec.photoreal.model_copy(update={"samples": 1, "denoise": False})})
    _tamper(ds, 0, _noise_realisation(spec, 3, 0, cycles_seed=12345))
    _other_device(ds)
    honest = verify_dataset(ds, sample=1, sample_seed=0, scene=spec)
    f = honest["frames"][0]
    assert honest["frames_checked"] == [0] and honest["mode"] == "tolerant" and honest["passed"], honest["failures"]
    assert 0 < f["rgb_mad"] <= PHOTOREAL_MAX_MAD and f["rgb_ssim"] >= PHOTOREAL_MIN_SSIM
    for forged in (_noise_realisation(cheap, 3, 0, cycles_seed=7), np.asarray(Image.open(tmp_path / "fast" / "images" / "000000.png"))):
        _tamper(ds, 0, forged)
        bad = verify_dataset(ds, sample=1, sample_seed=0, scene=spec)
        f = bad["frames"][0]
        assert not bad["passed"] and any("frame 0" in x for x in bad["failures"])
        assert f["rgb_ssim"] < PHOTOREAL_MIN_SSIM or f["rgb_mad"] > PHOTOREAL_MAX_MAD


def test_randomisation_changes_frames_reproducibly(tmp_path):
    from jobs.render.dataset import render_dataset

    rnd = {"color_jitter": 0.3, "roughness_jitter": 0.2, "specular": [0.2, 0.9], "exposure_ev": [-1.0, 1.0],
           "noise_sigma": [2.0, 4.0], "blur_sigma": [0.3, 0.8], "jpeg_quality": [40, 70], "dof_fstop": [1.0, 2.8],
           "sun_elevation_deg": [5, 40], "turbidity": [2, 6], "sky_strength": [0.5, 2.0]}
    spec = _spec(count=1, randomization=rnd)
    plain = _spec(count=1)
    assert spec.spec_hash() != plain.spec_hash()
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "plain"
    render_dataset(spec, a, seed=9)
    render_dataset(spec, b, seed=9)
    render_dataset(plain, c, seed=9)
    assert (a / "images" / "000000.png").read_bytes() == (b / "images" / "000000.png").read_bytes()
    ma, mc = (json.loads((x / "meta" / "000000.json").read_text()) for x in (a, c))
    assert [o["pose"] for o in ma["objects"]] == [o["pose"] for o in mc["objects"]]  # same layout
    assert [o["color"] for o in ma["objects"]] != [o["color"] for o in mc["objects"]]  # jittered paint
    assert ma["annotations"] and all(0.0 <= o["roughness"] <= 1.0 for o in ma["objects"])
    ia, ic = (np.asarray(Image.open(x / "images" / "000000.png")).astype(int) for x in (a, c))
    assert np.abs(ia - ic).mean() > 3.0
