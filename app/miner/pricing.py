"""Job pricing for the miner: how long a market job should take on a device, what it pays per
device-hour, and how an auto-priced floor moves.

The time model (coarse on purpose; every constant is a documented assumption, checked only
against the figures in FACTS.md and the benchmarks of this machine):

- A device's speed comes from its stored benchmark (`kminer bench`): fp32 matmul GFLOP/s
  and labelled render frames/s at 640x480 on the bench scene. Without a benchmark the
  device kind's default (DEFAULT_SPEED) is used, marked as a guess.
- render: seconds = STARTUP_S + frames x frame_s, with
  frame_s = SCENE_FACTOR x (FIXED_SHARE + (1 - FIXED_SHARE) x pixels / (640 x 480)) / fps.
  A part of each frame's cost (scene building in Python, readback) does not shrink with the
  pixel count; real scenes hold more objects than the bench scene (SCENE_FACTOR).
- train: seconds = STARTUP_S + epochs x images x input pixels x FLOP_PER_PIXEL[arch] / FLOP/s.
  FLOP_PER_PIXEL is "effective" FLOP at benchmark efficiency, calibrated on centernet-s:
  17.7 images/s at 320x240 on a CPU benching 59.5 GFLOP/s -> 59.5e9 / (17.7 x 76800) ~ 44e3.
  The other architectures are scaled by their width (an assumption, not a measurement).
- infer: images x pixels (640 x 480 assumed: image sizes are unknown before the job runs)
  x INFER_SHARE x FLOP_PER_PIXEL of a mid-size detector.
- verify-render: `sample` frames (default 5) re-rendered at 640x480.
- verify-train: the held-out images evaluated once: images x input pixels x INFER_SHARE x
  FLOP_PER_PIXEL[arch of the card, centernet-s assumed].

NTK per device-hour = reward (NTK) / expected hours. Money stays integer wei until this one
division for display and comparison with the floor (a float in NTK/h, as the setting is).
Pure functions and frozen dataclasses; safe from any thread.
"""

from __future__ import annotations

import math
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from app.amounts import ntk_float

REF_PIXELS = 640 * 480
STARTUP_S = 8.0
"""Worker start, sandbox, imports (torch or pyrender) and output packing, per job."""
SCENE_FACTOR = 4.0
FIXED_SHARE = 0.5
INFER_SHARE = 1.0 / 3.0
"""A forward pass costs about a third of a training step (forward + backward)."""
FLOP_PER_PIXEL: dict[str, float] = {
    "centernet-xs": 4e3, "centernet-s": 44e3, "centernet-m": 2.2e5,
    "classifier-xs": 2e3, "classifier-s": 8e3,
    "tv-fasterrcnn-mobilenet": 1.5e5, "tv-retinanet": 1.2e6, "tv-ssdlite": 6e4,
}
DEFAULT_ARCH = "centernet-s"
DEFAULT_INPUT = {"centernet-xs": (128, 96), "centernet-s": (320, 240), "centernet-m": (512, 384),
                 "classifier-xs": (32, 32), "classifier-s": (64, 64)}
IMAGE_EXT = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"P5", b"P6")
MARKET_KINDS = {"render": ("render",), "train": ("train",), "infer": ("infer",),
                "verify": ("verify-render", "verify-train")}
"""Market job kind -> the engine kinds its spec may name."""


class PricingError(ValueError):
    """A job whose size cannot be told from its spec (one line)."""


@dataclass(frozen=True)
class DeviceSpeed:
    gflops: float
    """fp32 matmul GFLOP/s."""
    render_fps: float
    """Labelled 640x480 frames/s on the bench scene."""
    measured: bool
    """False: the kind's default, no benchmark stored."""


DEFAULT_SPEED = {"cpu": DeviceSpeed(50.0, 10.0, False), "cuda": DeviceSpeed(5000.0, 100.0, False)}


def speed_from_bench(result: Mapping[str, Any] | None, device_kind: str) -> DeviceSpeed:
    """The speed a stored benchmark result gives (gpu.bench.BenchStore.latest), with the
    kind's default for any figure it lacks."""
    d = DEFAULT_SPEED["cpu" if device_kind == "cpu" else "cuda"]
    if not result:
        return d
    g = (result.get("matmul") or {}).get("gflops")
    f = (result.get("render") or {}).get("fps")
    ok_g = isinstance(g, (int, float)) and g > 0
    ok_f = isinstance(f, (int, float)) and f > 0
    return DeviceSpeed(float(g) if ok_g else d.gflops, float(f) if ok_f else d.render_fps, ok_g or ok_f)


@dataclass(frozen=True)
class JobSize:
    """What a job asks of a device: rendered frames and their pixels, or FLOP of torch work."""

    engine: str
    frames: int = 0
    pixels: int = 0
    flop: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class InputStats:
    """What the miner learnt of one fetched input: images it holds (0 for a non-image file)."""

    images: int
    is_dir: bool


def count_images(path: Path, is_dir: bool) -> InputStats:
    """Images in a fetched input: a folder artifact is a tar (count image members, headers only)."""
    if not is_dir:  # stored files carry no name: tell an image by its first bytes
        with open(path, "rb") as f:
            head = f.read(12)
        is_image = head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        return InputStats(1 if is_image else 0, False)
    n = 0
    try:
        with tarfile.open(path, mode="r:") as tar:
            for m in tar:
                if m.isreg() and Path(m.name).suffix.lower() in IMAGE_EXT:
                    n += 1
    except tarfile.TarError as e:
        raise PricingError(f"a folder input is not a folder archive ({e})") from None
    return InputStats(n, True)


def _scene_frames(params: Mapping[str, Any]) -> tuple[int, int]:
    scene = params.get("scene") if isinstance(params.get("scene"), dict) else {}
    out = scene.get("outputs") or {}
    w, h = int(out.get("width", 640)), int(out.get("height", 480))
    if params.get("count") is not None:
        n = int(params["count"])
    else:
        n = int(out.get("count", 1)) - int(params.get("start", 0))
    return max(1, n), max(1, w * h)


def _dataset_images(inputs: Mapping[str, InputStats]) -> int:
    return sum(s.images for k, s in inputs.items() if k not in ("model", "weights"))


def job_size(engine: str, params: Mapping[str, Any], inputs: Mapping[str, InputStats] | None = None) -> JobSize:
    """The size of a spec (`engine` is the spec's kind); `inputs` as counted by `count_images`."""
    inputs = inputs or {}
    try:
        if engine == "render":
            n, px = _scene_frames(params)
            return JobSize(engine, frames=n, pixels=px, note=f"{n} frames of {px} px")
        if engine == "verify-render":
            n = max(1, int(params.get("sample", 5)))
            return JobSize(engine, frames=n, pixels=REF_PIXELS, note=f"{n} sampled frames re-rendered")
        if engine in ("train", "verify-train"):
            arch = str(params.get("arch", DEFAULT_ARCH))
            size = params.get("input_size") or DEFAULT_INPUT.get(arch, (320, 240))
            px = int(size[0]) * int(size[1])
            images = _dataset_images(inputs)
            if images <= 0:
                raise PricingError("no images in the dataset inputs")
            per = FLOP_PER_PIXEL.get(arch, FLOP_PER_PIXEL[DEFAULT_ARCH])
            if engine == "train":
                epochs = max(1, int(params.get("epochs", 10)))
                return JobSize(engine, pixels=px, flop=epochs * images * px * per,
                               note=f"{epochs} epochs x {images} images x {px} px ({arch})")
            return JobSize(engine, pixels=px, flop=images * px * per * INFER_SHARE,
                           note=f"{images} held-out images x {px} px ({arch})")
        if engine == "infer":
            images = _dataset_images(inputs)
            if images <= 0:
                raise PricingError("no images in the inputs")
            return JobSize(engine, pixels=REF_PIXELS, flop=images * REF_PIXELS * FLOP_PER_PIXEL[DEFAULT_ARCH] * INFER_SHARE,
                           note=f"{images} images")
    except (TypeError, ValueError, IndexError) as e:
        if isinstance(e, PricingError):
            raise
        raise PricingError(f"cannot tell the size of the {engine} job: {e}") from None
    raise PricingError(f"no pricing model for engine {engine!r}")


def expected_seconds(size: JobSize, speed: DeviceSpeed) -> float:
    """Expected wall seconds of a job of `size` on a device of `speed` (see the module docstring)."""
    if size.frames:
        frame_s = SCENE_FACTOR * (FIXED_SHARE + (1 - FIXED_SHARE) * size.pixels / REF_PIXELS) / speed.render_fps
        return STARTUP_S + size.frames * frame_s
    return STARTUP_S + size.flop / (speed.gflops * 1e9)


def ntk_per_hour(reward_wei: int, seconds: float) -> float:
    """Reward in NTK per expected device-hour (18-decimal token)."""
    return ntk_float(reward_wei) / (max(seconds, 1e-9) / 3600.0)


FIRST_FLOOR_NTK_PER_HOUR = 0.01
"""Where a floor of 0 goes when it first rises (a fraction of 0 is still 0)."""


@dataclass(frozen=True)
class FloorChange:
    old: float
    new: float
    reason: str


def next_floor(floor: float, busy_fraction: float, *, lo: float, hi: float, step: float,
               window_s: float) -> FloorChange | None:
    """Auto-pricing, one decision per window of `window_s` seconds in which the device was
    offered to the market: fully booked (`busy_fraction` >= 0.999) -> raise the floor by
    `step` (a fraction); wholly idle (0) -> lower it by `step`; always kept within [lo, hi].
    Returns None when the floor stays as it is."""
    if hi < lo:
        lo, hi = hi, lo
    span = f"{window_s:.0f} s" if window_s < 120 else f"{window_s / 60:.0f} min"
    if busy_fraction >= 0.999:
        new = min(hi, max(lo, floor * (1 + step) if floor > 0 else FIRST_FLOOR_NTK_PER_HOUR))
        why = f"fully booked for {span}: raised by {step * 100:.0f}%"
    elif busy_fraction <= 0.0:
        new = max(lo, min(hi, floor * (1 - step)))
        why = f"idle for {span}: lowered by {step * 100:.0f}%"
    else:
        return None
    if not (lo <= floor <= hi):
        why += f" (kept within {lo:g}..{hi:g})"
    new = round(new, 6)
    if math.isclose(new, floor, rel_tol=0, abs_tol=1e-9):
        return None
    return FloorChange(floor, new, why)
