"""Export a rendered dataset (COCO layout, see dataset.py) as YOLO or KITTI.

YOLO (Ultralytics detection layout):
  OUT/images/000000.png         the RGB frames (hard links when possible)
  OUT/labels/000000.txt         one line a box: `class cx cy w h`, normalised to [0, 1], class = COCO id - 1
  OUT/data.yaml                 path, train/val image folders, class names
KITTI (object detection layout, `training/` split):
  OUT/training/image_2/000000.png
  OUT/training/label_2/000000.txt   `type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y`
  OUT/training/calib/000000.txt     P0..P3 (the pinhole K | 0), R0_rect (identity), Tr_velo_to_cam, Tr_imu_to_velo
KITTI's camera frame is x right, y down, z forward, metres; location is the bottom centre of the
object, rotation_y its yaw about the camera's y axis, occluded 0-2 from the visible fraction
(3 unknown). User meshes have no nominal size in the metadata: their h, w, l are -1.
Only annotated objects (above the dataset's visibility threshold) are exported. Pure file work.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np

from common.fsutil import atomic_write_text
from jobs.render.dataset import RenderError, read_card, read_metas
from jobs.render.spec import PrimitiveAsset, SceneSpec, load_scene

FORMATS = ("yolo", "kitti")
_GL_TO_KITTI = np.diag([1.0, -1.0, -1.0])  # camera axes: GL (x right, y up, z back) -> KITTI (y down, z forward)


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _prepare(out: Path, subs: list[str]) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RenderError(f"output folder {out} is not empty")
    try:
        for s in subs:
            (out / s).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RenderError(f"cannot create the output folder {out}: {e.strerror or e}") from None


def _g(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".") if x == x else "0"


def export_dataset(dataset: str | Path, out: str | Path, fmt: str) -> dict:
    """Write dataset folder `dataset` as `fmt` ("yolo" or "kitti") into the empty or absent
    folder `out`; returns {"format", "images", "boxes", "out"}. RenderError (one line) on a
    dataset that cannot be read or an output that cannot be written."""
    if fmt not in FORMATS:
        raise RenderError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    d, out = Path(dataset), Path(out)
    card = read_card(d)
    metas = sorted(read_metas(d, card), key=lambda m: m["frame"])
    spec = load_scene(d / "scene.json")
    if any("rgb" not in m["files"] for m in metas):
        raise RenderError(f"{d}: the dataset has no RGB images to export")
    fn = _yolo if fmt == "yolo" else _kitti
    _prepare(out, ["images", "labels"] if fmt == "yolo" else ["training/image_2", "training/label_2", "training/calib"])
    boxes = fn(d, out, spec, metas)
    return {"format": fmt, "images": len(metas), "boxes": boxes, "out": str(out)}


def _yolo(d: Path, out: Path, spec: SceneSpec, metas: list[dict]) -> int:
    n = 0
    for m in metas:
        rgb = m["files"]["rgb"]
        stem = Path(rgb).stem
        _link(d / rgb, out / "images" / Path(rgb).name)
        W, H = m["width"], m["height"]
        lines = []
        for a in m["annotations"]:
            x, y, w, h = a["bbox"]
            lines.append(f"{a['category_id'] - 1} {_g((x + w / 2) / W)} {_g((y + h / 2) / H)} {_g(w / W)} {_g(h / H)}")
        n += len(lines)
        atomic_write_text(out / "labels" / f"{stem}.txt", "".join(line + "\n" for line in lines))
    names = "".join(f"  {i}: {_yaml_str(c)}\n" for i, c in enumerate(spec.categories))
    atomic_write_text(out / "data.yaml", f"# {spec.name}: exported by Knowledge Miner\npath: .\ntrain: images\nval: images\n"
                                         f"nc: {len(spec.categories)}\nnames:\n{names}")
    return n


def _yaml_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _nominal(spec: SceneSpec, name: str) -> tuple[float, float, float] | None:
    """(width, height, depth) of a built-in asset's nominal geometry (library.build_library)."""
    a = next((a for a in spec.assets if a.name == name), None)
    if not isinstance(a, PrimitiveAsset):
        return None
    mid = lambda r: (r[0] + r[1]) / 2.0  # noqa: E731
    d = mid(a.depth) if (a.depth and a.kind in ("box", "bag")) else mid(a.width)
    return mid(a.width), mid(a.height), d


def _kitti(d: Path, out: Path, spec: SceneSpec, metas: list[dict]) -> int:
    n = 0
    for m in metas:
        rgb = m["files"]["rgb"]
        stem = Path(rgb).stem
        _link(d / rgb, out / "training" / "image_2" / f"{stem}{Path(rgb).suffix}")
        K = np.asarray(m["camera"]["K"], float)
        cam = np.asarray(m["camera"]["pose_cam_to_world_gl"], float)
        V = np.linalg.inv(cam)
        objs = {o["instance_id"]: o for o in m["objects"]}
        lines = []
        for a in m["annotations"]:
            o = objs[a["instance_id"]]
            x, y, w, h = a["bbox"]
            vf = o["visible_fraction"]
            occluded = 0 if vf >= 0.8 else 1 if vf >= 0.4 else 2
            pose = np.asarray(o["pose"], float)
            bottom = _GL_TO_KITTI @ (V[:3, :3] @ pose[:3, 3] + V[:3, 3])  # products stand on their origin
            fwd = _GL_TO_KITTI @ (V[:3, :3] @ pose[:3, 0])  # the object's +x (width) axis in KITTI axes
            rot_y = -math.atan2(fwd[2], fwd[0])
            alpha = rot_y - math.atan2(bottom[0], bottom[2])
            alpha = (alpha + math.pi) % (2 * math.pi) - math.pi
            nom = _nominal(spec, o["asset"])
            if nom is None:
                hh = ww = ll = -1.0
            else:
                s = o["scale"]
                ww, hh, ll = nom[0] * s[0], nom[1] * s[1], nom[2] * s[2]
            typ = (o["category"] or "DontCare").replace(" ", "_")
            lines.append(" ".join([typ, _g(o["truncation"]), str(occluded), f"{alpha:.4f}",
                                   f"{x:.2f}", f"{y:.2f}", f"{x + w:.2f}", f"{y + h:.2f}",
                                   f"{hh:.4f}", f"{ww:.4f}", f"{ll:.4f}",
                                   f"{bottom[0]:.4f}", f"{bottom[1]:.4f}", f"{bottom[2]:.4f}", f"{rot_y:.4f}"]))
        n += len(lines)
        atomic_write_text(out / "training" / "label_2" / f"{stem}.txt", "".join(line + "\n" for line in lines))
        P = np.hstack([K, np.zeros((3, 1))])
        p = " ".join(f"{v:.6e}" for v in P.ravel())
        eye34 = " ".join(f"{v:.6e}" for v in np.hstack([np.eye(3), np.zeros((3, 1))]).ravel())
        atomic_write_text(out / "training" / "calib" / f"{stem}.txt",
                          f"P0: {p}\nP1: {p}\nP2: {p}\nP3: {p}\nR0_rect: {' '.join(f'{v:.6e}' for v in np.eye(3).ravel())}\n"
                          f"Tr_velo_to_cam: {eye34}\nTr_imu_to_velo: {eye34}\n")
    return n
