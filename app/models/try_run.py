"""Trying a bought model ("try it"): the buyer's photos go through the `infer` engine as a real
job in a sandboxed worker process (the job runtime's own queue `<data>/try-jobs.sqlite`, work in
the jobs folder), never in the calling process (torch is imported only in the worker).
Annotated images and results land in `<data>/try/<run id>/`.

Threading: `run_try` blocks while the worker runs; call it off the GUI thread (the "jobs"
runner). It never touches the chain. `TryHandle.cancel()` may be called from any thread and
never blocks. Used through app.models.ModelService.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from PIL import Image, UnidentifiedImageError

from app.models.types import ModelError, OwnedModel
from app.runtime import parse_device, runtime_config
from common.safejson import CARD_LIMITS, load_file
from jobs.artifacts import ArtifactError
from jobs.execute import Attempt, execute_attempt
from jobs.queue import JobQueue
from jobs.spec import parse_spec

_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
MAX_PIXELS = 40_000_000
MAX_PHOTOS = 64


@dataclass(frozen=True)
class Detection:
    label: str
    class_id: int
    score: float
    box: tuple[float, float, float, float] | None
    """x1, y1, x2, y2 in the photo's (upright) pixels; None for a classifier's top classes."""


@dataclass(frozen=True)
class DomainCheck:
    """How far a photo is from the images the model was trained on (jobs.domain)."""

    distance: float
    threshold: float
    in_domain: bool
    furthest: tuple[str, ...]
    """The image statistics furthest off (luma_mean, colourfulness...)."""

    @property
    def warning(self) -> str:
        if self.in_domain:
            return ""
        why = f" ({', '.join(f.replace('_', ' ') for f in self.furthest)} far off)" if self.furthest else ""
        return (f"This photo looks unlike the images the model was trained on{why}: distance "
                f"{self.distance:.1f} over {self.threshold:.1f}. Its detections may be wrong.")


@dataclass(frozen=True)
class TryImage:
    source: Path
    annotated: Path
    width: int
    height: int
    detections: tuple[Detection, ...]
    domain: DomainCheck | None = None
    """None when the model's card has no usable domain statistics."""


@dataclass(frozen=True)
class TryResult:
    model: str
    images: tuple[TryImage, ...]
    out_dir: Path
    run_s: float
    sandbox: str


@dataclass
class TryHandle:
    """Cancels a running `run_try` from any thread."""

    attempt: Any = None
    cancelled: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self) -> None:
        """Never blocks: a worker that is still starting is stopped as soon as it runs."""
        with self._lock:
            self.cancelled = True
            attempt = self.attempt
        if attempt is not None:
            threading.Thread(target=attempt.cancel, args=("cancelled by request",), name="try-cancel",
                             daemon=True).start()


def check_images(paths: Iterable[Path], max_pixels: int = MAX_PIXELS) -> list[Path]:
    """Photos as a list of files, each checked on its header (readable, not too large);
    folders give their images. ModelError (one line) on the first bad one."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in _IMAGE_EXT)
        elif p.is_file():
            files.append(p)
        else:
            raise ModelError(f"{p} is not a file")
    if not files:
        raise ModelError("no photos given")
    if len(files) > MAX_PHOTOS:
        raise ModelError(f"{len(files)} photos at once; at most {MAX_PHOTOS}")
    for f in files:
        try:
            with Image.open(f) as im:
                w, h = im.size
        except Image.DecompressionBombError:
            raise ModelError(f"{f.name} has far more pixels than the limit of {max_pixels}") from None
        except (UnidentifiedImageError, OSError) as e:
            raise ModelError(f"{f.name} is not an image that can be read ({type(e).__name__})") from None
        if w * h > max_pixels:
            raise ModelError(f"{f.name} is {w}x{h} pixels, over the limit of {max_pixels}")
    return files


def run_try(ctx, store, model: OwnedModel, photos: Iterable[Path], *, score_threshold: float = 0.3,
            handle: TryHandle | None = None, on_event: Callable[[dict], None] | None = None,
            device: str = "cpu", sandbox: str | None = None, max_wall_s: float = 300.0) -> TryResult:
    """Run `model` (its card and weights in `store`, the app's ArtifactStore; `ctx` the AppContext)
    on the photos in a sandboxed worker (the `infer` engine); returns the
    detections and the annotated images (under data_dir/try/<run>/). Blocks; `handle.cancel()`
    stops it (ModelError "cancelled"). `on_event` gets the job's progress/log messages on
    this thread (first a {"type": "stage"} one as the worker starts)."""
    if not 0 <= score_threshold <= 1:
        raise ModelError("the score threshold must be between 0 and 1")
    files = check_images(photos)
    handle = handle or TryHandle()
    for sha in (model.card_sha256, model.weights_sha256):
        if not store.has(sha):
            raise ModelError(f"model #{model.listing_id} is not in the artifact store; fetch it again")
    inputs: dict[str, dict] = {"model": {"sha256": model.card_sha256, "type": "file"},
                               "weights": {"sha256": model.weights_sha256, "type": "file"}}
    names: dict[str, Path] = {}
    total = 0
    for i, f in enumerate(files):
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f.stem)[:40] or "photo"
        name = f"p{i:03d}-{stem}{f.suffix.lower()}"
        inputs[name] = {"sha256": store.put_file(f), "type": "file"}
        names[Path(name).stem] = f
        total += f.stat().st_size
    run_id = f"try-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    spec = parse_spec({"id": run_id, "kind": "infer", "params": {"score_threshold": score_threshold},
                       "inputs": inputs,
                       "resources": {"device": "any", "max_wall_s": max_wall_s, "max_ram_mb": 3000,
                                     "max_disk_mb": max(64, 4 * total // 2**20 + 64),
                                     "max_processes": 64, "max_open_files": 256}})
    try:
        cfg = runtime_config(ctx, sandbox=sandbox)
        dev = parse_device(device)
    except ValueError as e:
        raise ModelError(str(e)) from None
    queue = JobQueue(ctx.paths.data_dir / "try-jobs.sqlite")
    t0 = time.monotonic()
    try:
        queue.add(spec)
        attempt = Attempt()
        with handle._lock:
            cancelled = handle.cancelled
            handle.attempt = attempt
        if cancelled:
            queue.request_cancel(run_id)
            raise ModelError("cancelled")
        if on_event is not None:
            on_event({"type": "stage", "message": f"starting the worker ({cfg.level} sandbox)"})
        out = execute_attempt(queue, cfg, run_id, dev, handle=attempt, on_event=on_event)
        rec = queue.get(run_id)
    finally:
        queue.close()
    if handle.cancelled or (out is not None and out.status == "cancelled"):
        raise ModelError("cancelled")
    if out is None or rec.state != "succeeded" or not rec.output_sha:
        raise ModelError(rec.reason or "the model run failed")
    dest = ctx.paths.data_dir / "try" / run_id

    try:
        store.materialize(rec.output_sha, dest, kind="dir")
        doc = load_file(dest / "results.json", CARD_LIMITS, what="results", root=dest)  # capped, depth-limited
        if not isinstance(doc, dict):
            raise ValueError("results.json is not an object")
    except (ArtifactError, OSError, ValueError) as e:
        raise ModelError(f"the model's results could not be read: {e}") from None
    stats = _card_domain_stats(store, model.card_sha256)
    images = []
    for r in doc.get("results", []):
        src = names.get(Path(r.get("image", "")).stem, Path(r.get("image", "")))
        dets = [Detection(d["class"], int(d["class_id"]), float(d["score"]), tuple(d["box"]))
                for d in r.get("detections", [])]
        dets += [Detection(t["class"], int(t["class_id"]), float(t["score"]), None) for t in r.get("top", [])]
        images.append(TryImage(src, dest / r["annotated"], int(r["width"]), int(r["height"]), tuple(dets),
                               domain_check(stats, src)))
    return TryResult(model.name, tuple(images), dest, round(time.monotonic() - t0, 3), cfg.level)

def _card_domain_stats(store, card_sha: str) -> dict | None:
    """The card's usable `domain_stats` (jobs.domain.check_stats), or None."""
    from jobs.domain import check_stats

    try:
        card = load_file(store.path(card_sha), CARD_LIMITS, what="model card", follow_symlinks=True)
    except (OSError, ValueError):
        return None
    return check_stats(card.get("domain_stats")) if isinstance(card, dict) else None


def domain_check(stats: dict | None, photo: Path) -> DomainCheck | None:
    """`photo` against a card's domain statistics (None without them or an unreadable photo)."""
    from PIL import ImageOps

    from jobs.domain import domain_distance

    if stats is None:
        return None
    try:
        with Image.open(photo) as im:
            im = ImageOps.exif_transpose(im)
            d, ok, worst = domain_distance(stats, im)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return DomainCheck(round(d, 3), float(stats["threshold"]), ok, tuple(worst))


def save_annotated(result: TryResult, folder: Path) -> list[Path]:
    """Copy the annotated images to `folder` as `<photo>-detections.png` (never overwriting)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for im in result.images:
        base = f"{im.source.stem}-detections"
        dest, n = folder / f"{base}.png", 1
        while dest.exists():
            n += 1
            dest = folder / f"{base}-{n}.png"
        shutil.copyfile(im.annotated, dest)
        saved.append(dest)
    return saved
