"""Job pricing for the miner: how long a market job should take on a device, what it pays per
device-hour, and how an auto-priced floor moves.

The time model is jobs.estimate's (one model for the miner's quotes, its time limits and the
no-progress timeout; its constants and their calibration are documented there): a job's work
is told from its validated spec (scene bounds and pixel budgets included) and the image count
of its fetched inputs, and timed on a device's benchmark (`kminer bench`: fp32 matmul GFLOP/s
and labelled 640x480 render frames/s), or on its class's reference rate when it has none
(DEFAULT_SPEED, marked as a guess).

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
from jobs.estimate import REFERENCE_RATES, DeviceRate, WorkEstimate, estimate_job
from jobs.render.spec import SceneSpec
from jobs.spec import JobSpec

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
    photoreal_fps: float = 0.0
    """Cycles 640x480 frames/s at 64 samples; 0: not measured (bpy missing), derived."""

    @property
    def rate(self) -> DeviceRate:
        """This speed as jobs.estimate takes it."""
        return DeviceRate(self.render_fps, self.gflops, self.photoreal_fps)


DEFAULT_SPEED = {"cpu": DeviceSpeed(REFERENCE_RATES["cpu"].gflops, REFERENCE_RATES["cpu"].render_fps, False,
                                    REFERENCE_RATES["cpu"].photoreal_fps),
                 "cuda": DeviceSpeed(REFERENCE_RATES["gpu"].gflops, REFERENCE_RATES["gpu"].render_fps, False,
                                     REFERENCE_RATES["gpu"].photoreal_fps)}
"""Per device kind without a benchmark: jobs.estimate's reference rates."""


def speed_from_bench(result: Mapping[str, Any] | None, device_kind: str) -> DeviceSpeed:
    """The speed a stored benchmark result gives (gpu.bench.BenchStore.latest), with the
    kind's default for any figure it lacks."""
    d = DEFAULT_SPEED["cpu" if device_kind == "cpu" else "cuda"]
    if not result:
        return d
    g = (result.get("matmul") or {}).get("gflops")
    f = (result.get("render") or {}).get("fps")
    p = (result.get("photoreal") or {}).get("fps")
    ok_g = isinstance(g, (int, float)) and g > 0
    ok_f = isinstance(f, (int, float)) and f > 0
    ok_p = isinstance(p, (int, float)) and not isinstance(p, bool) and 0 < p < 1e6
    # measured fast figure without a photoreal one: derive it from the measured fast rate
    photo = float(p) if ok_p else (0.0 if ok_f else d.photoreal_fps)
    return DeviceSpeed(float(g) if ok_g else d.gflops, float(f) if ok_f else d.render_fps, ok_g or ok_f, photo)


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


def dataset_images(inputs: Mapping[str, InputStats]) -> int:
    """Images in a job's data inputs (a model's files are not data)."""
    return sum(s.images for k, s in inputs.items() if k not in ("model", "weights"))


def estimate(spec: JobSpec, inputs: Mapping[str, InputStats] | None = None,
             scene: SceneSpec | None = None) -> WorkEstimate:
    """The work of `spec` (jobs.estimate.estimate_job), its inputs as counted by `count_images`;
    `scene`: the scene given as an input file. EstimateError (a SpecError, one line) when the
    work cannot be told or is beyond any device: a poison spec is refused before claiming."""
    images = dataset_images(inputs or {})
    return estimate_job(spec, images=images if images > 0 else None, scene=scene)


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
