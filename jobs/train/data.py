"""COCO datasets (one or several render shards), seeded splits, RAM caches and batched augmentation.

With few CPU cores, decoding PNGs every epoch costs more than the small models' steps, so a
dataset is decoded once (threads; PIL releases the GIL) into one uint8 tensor letterboxed to
the model's input size, and batches are gathered from it. Augmentation runs on whole batches
on the training device (flip, scale/shift through one `grid_sample`, colour jitter), drawing
its random numbers from a generator seeded by (seed, epoch, step, rank), so a resumed run sees
exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from common.fsutil import sha256_file
from common.safejson import ANNOTATIONS_LIMITS, CARD_LIMITS, load_file
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
            coco = load_file(ann_path, ANNOTATIONS_LIMITS, what="annotations", follow_symlinks=True)
            cats = {int(c["id"]): str(c["name"]) for c in coco["categories"]}
            images = coco["images"]
            anns = coco.get("annotations", [])
        except (ValueError, KeyError, TypeError, AttributeError) as e:  # SafeJsonError is a ValueError
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
                card = load_file(d / "dataset.json", CARD_LIMITS, what="dataset card", follow_symlinks=True)
            except ValueError:
                card = {}
            card = card if isinstance(card, dict) else {}
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
    except Image.DecompressionBombError:
        raise TrainError(f"{path.name} has far more pixels than PIL's safety limit") from None
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
    """Augment a uint8 batch `(B, 3, H, W)` with its boxes; returns a float batch (0..255).

    Per sample: horizontal flip, a shift of up to `shift` of the size, colour jitter. Per
    batch: one zoom factor in `scale` (one resize call: a per-sample warp costs several times
    more on a CPU). Boxes mostly pushed out of the frame get label -1.
    """
    b, _, h, w = images.shape
    dev = images.device
    r = torch.rand((b, 6), generator=g)
    s = float(scale[0] + (scale[1] - scale[0]) * torch.rand((), generator=g))
    fl = (r[:, 0] < 0.5) if flip else torch.zeros(b, dtype=torch.bool)
    x = images if dev.type == "cpu" else images.float()  # uint8 bilinear resize is a CPU fast path
    if fl.any():
        x = x.clone()
        x[fl.to(dev)] = x[fl.to(dev)].flip(-1)
    sh, sw = max(2, round(h * s)), max(2, round(w * s))
    x = F.interpolate(x, size=(sh, sw), mode="bilinear", align_corners=False)
    ox = ((w - sw) / 2 + (r[:, 1] * 2 - 1) * shift * w).round().long().tolist()
    oy = ((h - sh) / 2 + (r[:, 2] * 2 - 1) * shift * h).round().long().tolist()
    out = torch.full((b, 3, h, w), PAD_VALUE, dtype=x.dtype, device=dev)
    for i in range(b):  # paste each zoomed image at its own offset (cheap slice copies)
        dx0, dy0 = max(0, ox[i]), max(0, oy[i])
        dx1, dy1 = min(w, ox[i] + sw), min(h, oy[i] + sh)
        if dx1 > dx0 and dy1 > dy0:
            out[i, :, dy0:dy1, dx0:dx1] = x[i, :, dy0 - oy[i]:dy1 - oy[i], dx0 - ox[i]:dx1 - ox[i]]
    x1, y1, x2, y2 = boxes.unbind(-1)
    fld = fl.to(dev)[:, None]
    fx1 = torch.where(fld, w - x2, x1)
    fx2 = torch.where(fld, w - x1, x2)
    kx, ky = sw / w, sh / h
    oxt = torch.tensor(ox, dtype=boxes.dtype, device=dev)[:, None]
    oyt = torch.tensor(oy, dtype=boxes.dtype, device=dev)[:, None]
    nb = torch.stack([fx1 * kx + oxt, y1 * ky + oyt, fx2 * kx + oxt, y2 * ky + oyt], dim=-1)
    area = (nb[..., 2] - nb[..., 0]) * (nb[..., 3] - nb[..., 1])
    cb = torch.stack([nb[..., 0].clamp(0, w), nb[..., 1].clamp(0, h), nb[..., 2].clamp(0, w), nb[..., 3].clamp(0, h)], -1)
    carea = (cb[..., 2] - cb[..., 0]) * (cb[..., 3] - cb[..., 1])
    ok = (labels >= 0) & (carea >= 0.4 * area.clamp(min=1e-6)) & ((cb[..., 2] - cb[..., 0]) >= 2) & ((cb[..., 3] - cb[..., 1]) >= 2)
    labels = torch.where(ok, labels, torch.full_like(labels, -1))
    return color_jitter(out.float(), r[:, 3:6].to(dev), jitter), cb, labels


def color_jitter(images: torch.Tensor, r: torch.Tensor, amount: float) -> torch.Tensor:
    """Brightness, contrast (about the image mean) and saturation factors in
    [1 - amount, 1 + amount] from `r` (B, 3) in [0, 1), applied as ONE per-image 3x3 colour
    matrix plus offset (all three are linear), so it costs one pass over the batch."""
    if amount <= 0:
        return images
    b = images.shape[0]
    f = 1 + (r * 2 - 1) * amount
    f0, f1, f2 = f[:, 0], f[:, 1], f[:, 2]
    m = images.mean(dim=(1, 2, 3))
    eye = torch.eye(3, device=images.device).expand(b, 3, 3)
    avg = torch.full((b, 3, 3), 1 / 3, device=images.device)
    a = (f2[:, None, None] * eye + (1 - f2)[:, None, None] * avg) * (f0 * f1)[:, None, None]
    bias = (m * f0 * (1 - f1))[:, None, None].expand(b, 3, 1)
    return torch.baddbmm(bias, a, images.reshape(b, 3, -1)).view_as(images).clamp_(0, 255)


def augment_classification(images: torch.Tensor, g: torch.Generator, jitter: float = 0.3) -> torch.Tensor:
    b = images.shape[0]
    dummy_boxes = torch.zeros((b, 1, 4), device=images.device)
    dummy_labels = torch.full((b, 1), -1, dtype=torch.long, device=images.device)
    out, _, _ = augment_detection(images, dummy_boxes, dummy_labels, g, scale=(0.85, 1.15), shift=0.05, jitter=jitter)
    return out

