"""COCO datasets (one or several render shards), seeded splits, RAM caches and batched augmentation.

With few CPU cores, decoding PNGs every epoch costs more than the small models' steps, so a
dataset is decoded once (threads; PIL releases the GIL) into one uint8 tensor letterboxed to
the model's input size, and batches are gathered from it. Augmentation runs on whole batches
on the training device (flip, scale/shift through one `grid_sample`, colour jitter), drawing
its random numbers from a generator seeded by (seed, epoch, step, rank), so a resumed run sees
exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from common.fsutil import sha256_file
from jobs.train import TrainError
from jobs.train.boxes import letterbox_params

PAD_VALUE = 114


@dataclass
class Sample:
    path: Path
    width: int
    height: int
    boxes: np.ndarray  # (n, 4) float32 xyxy in source pixels
    labels: np.ndarray  # (n,) int64 class index
    areas: np.ndarray  # (n,) float32 (COCO area, for the size ranges of COCOeval)
    crowd: np.ndarray  # (n,) bool


@dataclass
class CocoSet:
    classes: list[str]
    samples: list[Sample]
    shards: list[dict] = field(default_factory=list)  # path, annotations_sha256, spec hash, images


def load_coco(dirs: list[Path], classes: list[str] | None = None) -> CocoSet:
    """Read one or several COCO folders (DIR/annotations.json, images relative to DIR).

    Classes are matched by name across shards (first-seen order unless `classes` is given,
    e.g. a delivered model's classes for verification). Raises TrainError on bad data.
    """
    if not dirs:
        raise TrainError("no dataset given")
    names: list[str] = list(classes) if classes else []
    samples: list[Sample] = []
    shards = []
    for d in dirs:
        d = Path(d)
        ann_path = d / "annotations.json"
        if not ann_path.is_file():
            raise TrainError(f"{d} is not a COCO dataset folder (no annotations.json)")
        try:
            coco = json.loads(ann_path.read_text(encoding="utf-8"))
            cats = {int(c["id"]): str(c["name"]) for c in coco["categories"]}
            images = coco["images"]
            anns = coco.get("annotations", [])
        except (ValueError, KeyError, TypeError) as e:
            raise TrainError(f"{ann_path} is not valid COCO JSON ({e})") from None
        for n in cats.values():
            if n not in names:
                if classes:
                    raise TrainError(f"{d} has class {n!r}, which the model does not know ({', '.join(classes)})")
                names.append(n)
        by_image: dict[int, list[dict]] = {}
        for a in anns:
            by_image.setdefault(int(a["image_id"]), []).append(a)
        for im in images:
            p = d / im["file_name"]
            if not p.resolve().is_relative_to(d.resolve()):
                raise TrainError(f"{ann_path}: image path {im['file_name']!r} leaves the dataset folder")
            rows = by_image.get(int(im["id"]), [])
            try:
                bx = np.array([a["bbox"] for a in rows], dtype=np.float32).reshape(-1, 4)
                lab = np.array([names.index(cats[int(a["category_id"])]) for a in rows], dtype=np.int64)
                area = np.array([float(a.get("area", a["bbox"][2] * a["bbox"][3])) for a in rows], dtype=np.float32)
                crowd = np.array([bool(a.get("iscrowd", 0)) for a in rows], dtype=bool)
            except (KeyError, ValueError, TypeError) as e:
                raise TrainError(f"{ann_path}: bad annotation for image {im.get('id')} ({e})") from None
            bx[:, 2:] += bx[:, :2]
            samples.append(Sample(p, int(im["width"]), int(im["height"]), bx, lab, area, crowd))
        card = {}
        if (d / "dataset.json").is_file():
            try:
                card = json.loads((d / "dataset.json").read_text(encoding="utf-8"))
            except ValueError:
                card = {}
        shards.append({"path": str(d), "annotations_sha256": sha256_file(ann_path), "images": len(images),
                       "spec_hash": card.get("spec_hash") or card.get("spec_sha256")})
    if not samples:
        raise TrainError("the dataset has no images")
    return CocoSet(names, samples, shards)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/val split of n items; val gets round(n * fraction) items, at least 1 when
    fraction > 0 and n >= 2."""
    perm = np.random.RandomState(seed).permutation(n)
    n_val = 0 if val_fraction <= 0 else max(1, int(round(n * val_fraction)))
    if n_val >= n:
        raise TrainError(f"a dataset of {n} images is too small to split off {n_val} for validation")
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def load_rgb(path: Path, max_pixels: int | None = None) -> Image.Image:
    """Open any image PIL reads as RGB with its EXIF rotation applied; TrainError if it is not
    an image or has more than `max_pixels` pixels (checked before decoding)."""
    try:
        im = Image.open(path)
    except (UnidentifiedImageError, OSError) as e:
        raise TrainError(f"{path.name} is not an image PIL can read ({type(e).__name__})") from None
    with im:
        if max_pixels is not None and im.width * im.height > max_pixels:
            raise TrainError(f"{path.name} is {im.width}x{im.height} = {im.width * im.height} pixels, "
                             f"over the limit of {max_pixels} pixels")
        try:
            im = ImageOps.exif_transpose(im)
            return im.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise TrainError(f"{path.name} could not be decoded ({e})") from None


def letterbox(im: Image.Image, w: int, h: int) -> tuple[np.ndarray, tuple[float, float, int, int]]:
    """Resize keeping aspect ratio and pad to (w, h); returns HWC uint8 and (sx, sy, pad_x, pad_y)."""
    nw, nh, px, py = letterbox_params(im.width, im.height, w, h)
    canvas = np.full((h, w, 3), PAD_VALUE, dtype=np.uint8)
    canvas[py:py + nh, px:px + nw] = np.asarray(im.resize((nw, nh), Image.BILINEAR))
    return canvas, (nw / im.width, nh / im.height, px, py)


@dataclass
class DetCache:
    """Letterboxed images `(N, 3, H, W)` uint8 with padded boxes `(N, M, 4)` (input pixels) and
    labels `(N, M)` (-1 = padding; crowd boxes are dropped for training)."""

    images: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    lb: np.ndarray  # (N, 4) sx, sy, pad_x, pad_y
    samples: list[Sample]

    def __len__(self) -> int:
        return self.images.shape[0]


def _decode_all(samples: list[Sample], fn, threads: int) -> list:
    with ThreadPoolExecutor(max(1, threads)) as ex:
        return list(ex.map(fn, samples))


def build_det_cache(samples: list[Sample], size: tuple[int, int], threads: int = 2, max_cache_mb: int = 8192) -> DetCache:
    w, h = size
    mb = len(samples) * 3 * w * h / 2**20
    if mb > max_cache_mb:
        raise TrainError(f"the image cache would take {mb:.0f} MB, over the {max_cache_mb} MB limit; "
                         "use fewer images or a smaller input size")
    images = torch.empty((len(samples), 3, h, w), dtype=torch.uint8)
    m = max([int((~s.crowd).sum()) for s in samples] + [1])
    boxes = torch.zeros((len(samples), m, 4))
    labels = torch.full((len(samples), m), -1, dtype=torch.long)
    lb = np.zeros((len(samples), 4), dtype=np.float64)

    def one(s: Sample):
        arr, p = letterbox(load_rgb(s.path), w, h)
        return arr, p

    for i, (arr, p) in enumerate(_decode_all(samples, one, threads)):
        s = samples[i]
        images[i] = torch.from_numpy(arr).permute(2, 0, 1)
        lb[i] = p
        keep = ~s.crowd
        b = s.boxes[keep] * np.array([p[0], p[1], p[0], p[1]], dtype=np.float32) + np.array([p[2], p[3], p[2], p[3]], dtype=np.float32)
        boxes[i, : len(b)] = torch.from_numpy(b)
        labels[i, : len(b)] = torch.from_numpy(s.labels[keep])
    return DetCache(images, boxes, labels, lb, samples)


@dataclass
class ClsCache:
    images: torch.Tensor  # (N, 3, h, w) uint8 crops
    labels: torch.Tensor  # (N,)

    def __len__(self) -> int:
        return self.images.shape[0]


def build_cls_cache(samples: list[Sample], size: tuple[int, int], threads: int = 2, margin: float = 0.1,
                    min_side: float = 4.0) -> ClsCache:
    """One crop per non-crowd box (with `margin` context on each side), letterboxed to `size`."""
    w, h = size

    def one(s: Sample):
        im = load_rgb(s.path)
        out = []
        for b, lab, c in zip(s.boxes, s.labels, s.crowd):
            bw, bh = b[2] - b[0], b[3] - b[1]
            if c or bw < min_side or bh < min_side:
                continue
            box = (max(0, b[0] - margin * bw), max(0, b[1] - margin * bh), min(im.width, b[2] + margin * bw),
                   min(im.height, b[3] + margin * bh))
            arr, _ = letterbox(im.crop(tuple(int(round(v)) for v in box)), w, h)
            out.append((arr, int(lab)))
        return out

    crops = [c for per in _decode_all(samples, one, threads) for c in per]
    if not crops:
        raise TrainError("the dataset has no boxes to crop for a classifier")
    images = torch.from_numpy(np.stack([c[0] for c in crops])).permute(0, 3, 1, 2).contiguous()
    return ClsCache(images, torch.tensor([c[1] for c in crops], dtype=torch.long))


def crop_image(im: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    arr, _ = letterbox(im, *size)
    return torch.from_numpy(arr).permute(2, 0, 1)


def step_generator(seed: int, epoch: int, step: int, rank: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + epoch * 10_007 + step * 101 + rank) % (2**63))
    return g


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator()
    g.manual_seed((seed * 7_919 + epoch) % (2**63))
    return torch.randperm(n, generator=g)


def steps_per_epoch(n: int, batch: int, world: int) -> int:
    return n // (batch * world)


def batch_indices(order: torch.Tensor, step: int, batch: int, world: int, rank: int) -> torch.Tensor:
    start = step * batch * world + rank * batch
    return order[start:start + batch]


def augment_detection(images: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, g: torch.Generator,
                      scale: tuple[float, float] = (0.7, 1.3), shift: float = 0.1, flip: bool = True,
                      jitter: float = 0.3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augment a float batch (0..255) with its boxes; dropped boxes (mostly outside) get label -1."""
    b, _, h, w = images.shape
    dev = images.device
    r = torch.rand((b, 8), generator=g).to(dev)
    s = scale[0] + (scale[1] - scale[0]) * r[:, 0]
    tx = (r[:, 1] * 2 - 1) * shift * w
    ty = (r[:, 2] * 2 - 1) * shift * h
    fl = (r[:, 3] < 0.5) if flip else torch.zeros(b, dtype=torch.bool, device=dev)
    sign = torch.where(fl, -1.0, 1.0)
    # output pixel q = s * (p - c) + c + t (x mirrored first when flipped); grid maps q -> p
    theta = torch.zeros((b, 2, 3), device=dev)
    theta[:, 0, 0] = sign / s
    theta[:, 1, 1] = 1 / s
    theta[:, 0, 2] = -sign * (2 * tx / w) / s
    theta[:, 1, 2] = -(2 * ty / h) / s
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images - PAD_VALUE, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + PAD_VALUE
    x1, y1, x2, y2 = boxes.unbind(-1)
    fx1 = torch.where(fl[:, None], w - x2, x1)
    fx2 = torch.where(fl[:, None], w - x1, x2)
    sx, sy = s[:, None], s[:, None]
    nb = torch.stack([sx * (fx1 - w / 2) + w / 2 + tx[:, None], sy * (y1 - h / 2) + h / 2 + ty[:, None],
                      sx * (fx2 - w / 2) + w / 2 + tx[:, None], sy * (y2 - h / 2) + h / 2 + ty[:, None]], dim=-1)
    area = (nb[..., 2] - nb[..., 0]) * (nb[..., 3] - nb[..., 1])
    cb = torch.stack([nb[..., 0].clamp(0, w), nb[..., 1].clamp(0, h), nb[..., 2].clamp(0, w), nb[..., 3].clamp(0, h)], -1)
    carea = (cb[..., 2] - cb[..., 0]) * (cb[..., 3] - cb[..., 1])
    ok = (labels >= 0) & (carea >= 0.4 * area.clamp(min=1e-6)) & ((cb[..., 2] - cb[..., 0]) >= 2) & ((cb[..., 3] - cb[..., 1]) >= 2)
    labels = torch.where(ok, labels, torch.full_like(labels, -1))
    return color_jitter(images, r[:, 4:7], jitter), cb, labels


def color_jitter(images: torch.Tensor, r: torch.Tensor, amount: float) -> torch.Tensor:
    """Brightness, contrast and saturation factors in [1 - amount, 1 + amount] from `r` (B, 3) in [0, 1)."""
    if amount <= 0:
        return images
    f = 1 + (r * 2 - 1) * amount
    images = images * f[:, 0, None, None, None]
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    images = (images - mean) * f[:, 1, None, None, None] + mean
    gray = images.mean(dim=1, keepdim=True)
    images = (images - gray) * f[:, 2, None, None, None] + gray
    return images.clamp(0, 255)


def augment_classification(images: torch.Tensor, g: torch.Generator, jitter: float = 0.3) -> torch.Tensor:
    b = images.shape[0]
    dummy_boxes = torch.zeros((b, 1, 4), device=images.device)
    dummy_labels = torch.full((b, 1), -1, dtype=torch.long, device=images.device)
    out, _, _ = augment_detection(images, dummy_boxes, dummy_labels, g, scale=(0.85, 1.15), shift=0.05, jitter=jitter)
    return out


def ceil_div(a: int, b: int) -> int:
    return int(math.ceil(a / b))
