"""COCO folders cut and joined without torch: what a buyer does to its own dataset before a
train order (the app process may call it; nothing here imports torch).

- `coco_summary(dirs)`: (images, class names) of one or several COCO folders.
- `split_coco(dirs, train_out, holdout_out, holdout_fraction=..., seed=...)`: the images of
  `dirs`, joined, shuffled by `seed` and cut in two COCO folders: the training data (what the
  miner gets) and the held-out data (what the buyer keeps to check the model). Only the RGB
  image of each frame and its boxes travel; masks, depth and per-frame metadata stay behind.
- `copy_coco(dirs, out)`: the same, every image into one folder.

Images are renumbered 0..n-1 (`images/NNNNNN.ext`) and classes matched by name. Reading is
bounded (common.safejson) and a file name that leaves its folder is refused; every problem is
one `DatasetError` line, and nothing is left half-written.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from common.safejson import ANNOTATIONS_LIMITS, SafeJsonError, load_file

_COPY_BESIDE = ("scene.json",)
"""Small files beside the annotations that say what the data is (the model card names the scene)."""


class DatasetError(ValueError):
    """A dataset folder that cannot be used as asked (one line)."""


def _read(d: Path) -> tuple[dict[int, str], list[dict], dict[int, list[dict]]]:
    ann = d / "annotations.json"
    if not ann.is_file():
        raise DatasetError(f"{d} is not a COCO dataset folder (no annotations.json)")
    try:
        coco = load_file(ann, ANNOTATIONS_LIMITS, what="annotations", follow_symlinks=True)
        cats = {int(c["id"]): str(c["name"]) for c in coco["categories"]}
        images = [im for im in coco["images"] if isinstance(im, dict)]
        by_image: dict[int, list[dict]] = {}
        for a in coco.get("annotations", []):
            if int(a["category_id"]) not in cats:
                raise DatasetError(f"{ann}: an annotation names category {a['category_id']}, which is not listed")
            by_image.setdefault(int(a["image_id"]), []).append(a)
    except (SafeJsonError, KeyError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"{ann} is not valid COCO JSON ({e})") from None
    return cats, images, by_image


def coco_summary(dirs: list[Path]) -> tuple[int, list[str]]:
    """(images, class names in first-seen order) of the COCO folders `dirs`."""
    n, names = 0, []
    for d in dirs:
        cats, images, _ = _read(Path(d))
        n += len(images)
        names += [c for c in cats.values() if c not in names]
    return n, names


def _frames(dirs: list[Path]) -> tuple[list[str], list[tuple[Path, dict, list[tuple[str, dict]]]]]:
    names: list[str] = []
    frames = []
    for d in map(Path, dirs):
        cats, images, by_image = _read(d)
        names += [c for c in cats.values() if c not in names]
        root = d.resolve()
        for im in images:
            try:
                src = (d / str(im["file_name"])).resolve()
                size = int(im["width"]), int(im["height"])
                rows = [(cats[int(a["category_id"])], a) for a in by_image.get(int(im["id"]), [])]
            except (KeyError, TypeError, ValueError) as e:
                raise DatasetError(f"{d}: bad image entry {str(im)[:80]} ({e})") from None
            if not src.is_relative_to(root):
                raise DatasetError(f"{d}: image path {str(im['file_name'])[:80]!r} leaves the dataset folder")
            if not src.is_file():
                raise DatasetError(f"{d}: image {str(im['file_name'])[:80]} is missing")
            if min(size) < 1:
                raise DatasetError(f"{d}: image {str(im['file_name'])[:80]} has no size")
            frames.append((src, {"width": size[0], "height": size[1]}, rows))
        for extra in _COPY_BESIDE:
            if (d / extra).is_file() and not (d / extra).is_symlink():
                frames.append((d / extra, {"beside": extra}, []))
    return names, frames


def _write(out: Path, names: list[str], frames: list) -> int:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} is not empty")
    tmp = out.with_name(out.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    images, anns = [], []
    try:
        for src, im, rows in frames:
            if "beside" in im:
                if not (tmp / im["beside"]).exists():
                    shutil.copyfile(src, tmp / im["beside"])
                continue
            i = len(images)
            rel = f"images/{i:06d}{src.suffix.lower()}"
            shutil.copyfile(src, tmp / rel)
            images.append({"id": i, "file_name": rel, **im})
            for name, a in rows:
                row = {"id": len(anns) + 1, "image_id": i, "category_id": names.index(name) + 1,
                       "bbox": [float(v) for v in a["bbox"]], "iscrowd": int(bool(a.get("iscrowd", 0)))}
                if "area" in a:
                    row["area"] = float(a["area"])
                anns.append(row)
        doc = {"images": images, "annotations": anns,
               "categories": [{"id": k + 1, "name": n} for k, n in enumerate(names)]}
        (tmp / "annotations.json").write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except (KeyError, TypeError, ValueError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetError(f"a bad box in the dataset ({e})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return len(images)


def copy_coco(dirs: list[Path], out: Path) -> int:
    """Every image of `dirs` into the new COCO folder `out`; the number of images."""
    names, frames = _frames(dirs)
    if not any("beside" not in im for _, im, _ in frames):
        raise DatasetError("the dataset has no images")
    return _write(out, names, frames)


def split_coco(dirs: list[Path], train_out: Path, holdout_out: Path, *, holdout_fraction: float,
               seed: int) -> tuple[int, int]:
    """(training images, held-out images): `holdout_fraction` of the images (at least one) to
    `holdout_out`, the rest to `train_out`, chosen by `seed`."""
    if not 0 < holdout_fraction < 1:
        raise DatasetError("the held-out share must be between 0 and 1")
    names, frames = _frames(dirs)
    beside = [f for f in frames if "beside" in f[1]]
    pics = [f for f in frames if "beside" not in f[1]]
    n_hold = max(1, round(len(pics) * holdout_fraction))
    if len(pics) - n_hold < 1:
        raise DatasetError(f"a dataset of {len(pics)} image(s) is too small to keep {n_hold} back for checking")
    order = list(range(len(pics)))
    random.Random(seed).shuffle(order)
    hold = sorted(order[:n_hold])
    keep = sorted(order[n_hold:])
    n_train = _write(train_out, names, [pics[i] for i in keep] + beside)
    try:
        n_held = _write(holdout_out, names, [pics[i] for i in hold] + beside)
    except BaseException:
        shutil.rmtree(train_out, ignore_errors=True)
        raise
    return n_train, n_held
