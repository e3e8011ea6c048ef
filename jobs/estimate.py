"""How much work a job is, told from its spec alone (before claiming it), bounded.

A miner must know what a job costs before it claims it: a scene with a billion objects, or a
shard of ten million 4K frames, priced as "one frame" ties a device up until the deadline.
`estimate_job(spec)` reads the validated spec (scene bounds and budgets: jobs.render.spec)
and returns a `WorkEstimate`: typical seconds (for pricing against the reward), an upper
bound (for the run's time limit) and the longest expected gap between progress reports (for
a no-progress timeout), on a device of given speed or on the reference speed of its class.

The time model (coarse; every constant is an assumption checked against FACTS.md figures):
- A device's speed is its benchmark (gpu.bench_child): labelled 640x480 frames/s of the
  bench scene (7 meshes) and fp32 matmul GFLOP/s; REFERENCE_RATES when it has none.
- render: a frame costs PIXEL_COST x pixels / (640 x 480) + OBJECT_COST x objects bench
  frames. Calibrated on this machine's CPU: the bench scene at 14.5 frames/s and the demo
  shelf (about 108 products) at 2.8 frames/s at 320x240. The per-object part (scene building
  in Python) never drops below HOST_OBJECT_S, however fast the GPU. Shadows add a pass per light.
- photoreal render (Cycles): a frame costs pixels / (640 x 480) x samples / 64 photoreal bench
  frames (gpu.bench_child's "photoreal" figure: 640x480, 64 samples) plus the per-object part.
  A device without that figure gets its fast-engine rate / PHOTOREAL_FACTOR (measured here:
  Cycles about 200x the fast engine per frame on a CPU; GPUs gain more from path tracing).
- train: epochs x images x input pixels x FLOP_PER_PIXEL[arch] / FLOP/s (centernet-s
  calibrated: 17.7 images/s at 320x240 on a CPU of 59.5 GFLOP/s; others scaled by width).
- infer / verify-train: one forward pass (INFER_SHARE of a training step) per image.
Pure functions and frozen dataclasses; safe from any thread; never imports torch or pyrender.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobs.render.spec import SceneError, SceneSpec, parse_render_params, parse_scene
from jobs.spec import MAX_OUTPUT_FILES, JobSpec, SpecError

REF_PIXELS = 640 * 480
STARTUP_S = 10.0
"""Worker start, sandbox, imports (torch or pyrender), packing the output; per job."""
PIXEL_COST = 0.7
OBJECT_COST = 0.045
"""Bench frames per 640x480 of pixels and per object (see the module docstring)."""
HOST_OBJECT_S = 0.001
PHOTOREAL_FACTOR = 200.0
"""A photoreal (Cycles, 640x480, 64 samples) frame in fast-engine frames, when a device has no
photoreal benchmark (FACTS.md: ~105 CPU-s a frame against 0.51 for the fast engine)."""
PHOTOREAL_REF_SAMPLES = 64
STATIC_OBJECTS = 12
"""Boards, walls, floor and price tags around the products, counted as objects."""
INFER_SHARE = 1.0 / 3.0
IMAGE_LOAD_S = 0.005
"""Decoding and caching one training image before the first step."""
FLOP_PER_PIXEL: dict[str, float] = {
    "centernet-xs": 4e3, "centernet-s": 44e3, "centernet-m": 2.2e5,
    "classifier-xs": 2e3, "classifier-s": 8e3,
    "tv-fasterrcnn-mobilenet": 1.5e5, "tv-retinanet": 1.2e6, "tv-ssdlite": 6e4,
}
DEFAULT_ARCH = "centernet-s"
DEFAULT_INPUT = {"centernet-xs": (128, 96), "centernet-s": (320, 240), "centernet-m": (512, 384),
                 "classifier-xs": (32, 32), "classifier-s": (64, 64)}
MAX_IMAGES = 10_000_000

LIMIT_FACTOR = 3.0
"""The run's time limit is this many times the upper-bound estimate (plus LIMIT_MARGIN_S)."""
LIMIT_MARGIN_S = 60.0
MIN_TIME_LIMIT_S = 120.0
MAX_TIME_LIMIT_S = 7 * 86400.0
NO_PROGRESS_FACTOR = 10.0
MIN_NO_PROGRESS_S = 120.0
MAX_NO_PROGRESS_S = 3600.0
MAX_JOB_S = 7 * 86400.0
"""A job whose typical time on the fastest reference class exceeds this is refused outright."""


class EstimateError(SpecError):
    """The spec's work cannot be told, or is beyond any device (one line)."""


@dataclass(frozen=True)
class DeviceRate:
    """What a device does per second: labelled 640x480 bench frames and fp32 GFLOP."""

    render_fps: float
    gflops: float
    photoreal_fps: float = 0.0
    """Cycles 640x480 frames/s at 64 samples (gpu.bench_child); 0: unknown, derived from render_fps."""

    @property
    def path_fps(self) -> float:
        return self.photoreal_fps if self.photoreal_fps > 0 else self.render_fps / PHOTOREAL_FACTOR


REFERENCE_RATES = {"cpu": DeviceRate(10.0, 50.0, 0.02), "gpu": DeviceRate(100.0, 5000.0, 2.0)}
"""Per device class, when a device has no benchmark (a modest CPU, a mid-range GPU)."""


@dataclass(frozen=True)
class WorkEstimate:
    """A job's work. Render: `frames` of `pixels` with `objects_typical` (up to `objects_max`)
    each; torch work: `flop_typical` (and `flop_max`). `unit_*`: the work between two progress
    reports (a frame, a training step); `silent_*`: work done before the first report."""

    engine: str
    frames: int = 0
    pixels: int = 0
    objects_typical: float = 0.0
    objects_max: int = 0
    shadow_passes: int = 1
    path_samples: int = 0
    """Photoreal (Cycles) samples per pixel; 0: the fast engine."""
    flop_typical: float = 0.0
    flop_max: float = 0.0
    unit_flop: float = 0.0
    silent_s: float = 0.0
    fixed_s: float = 0.0
    note: str = ""

    def _render_s(self, rate: DeviceRate, objects: float, frames: float) -> float:
        obj_s = max(OBJECT_COST / rate.render_fps, HOST_OBJECT_S)
        if self.path_samples:
            path_s = self.pixels / REF_PIXELS * self.path_samples / PHOTOREAL_REF_SAMPLES / rate.path_fps
            return frames * (path_s + objects * obj_s)
        frame_s = self.shadow_passes * (PIXEL_COST * self.pixels / REF_PIXELS / rate.render_fps + objects * obj_s)
        return frames * frame_s

    def seconds(self, rate: DeviceRate) -> float:
        """Typical wall seconds on a device of `rate` (for pricing against the reward)."""
        if self.frames:
            return STARTUP_S + self.fixed_s + self._render_s(rate, self.objects_typical, self.frames)
        return STARTUP_S + self.fixed_s + self.silent_s + self.flop_typical / (rate.gflops * 1e9)

    def seconds_max(self, rate: DeviceRate) -> float:
        """Upper-bound wall seconds (every range at its worst end)."""
        if self.frames:
            return STARTUP_S + self.fixed_s + self._render_s(rate, self.objects_max, self.frames)
        return STARTUP_S + self.fixed_s + self.silent_s + self.flop_max / (rate.gflops * 1e9)

    def time_limit_s(self, rate: DeviceRate, max_wall_s: float | None = None) -> float:
        """The run's wall-clock limit on this device: LIMIT_FACTOR x the upper bound plus a
        margin, within [MIN_TIME_LIMIT_S, MAX_TIME_LIMIT_S] and never above the spec's own."""
        limit = min(MAX_TIME_LIMIT_S, max(MIN_TIME_LIMIT_S, LIMIT_FACTOR * self.seconds_max(rate) + LIMIT_MARGIN_S))
        return min(limit, max_wall_s) if max_wall_s is not None else limit

    def no_progress_s(self, rate: DeviceRate) -> float:
        """How long a run on this device may go without a progress report before it is
        stopped: NO_PROGRESS_FACTOR x the longest expected silence, within bounds."""
        if self.frames:
            unit = self._render_s(rate, self.objects_max, 1)
        else:
            unit = self.unit_flop / (rate.gflops * 1e9)
        silent = max(unit, self.silent_s + self.fixed_s)
        return min(MAX_NO_PROGRESS_S, max(MIN_NO_PROGRESS_S, NO_PROGRESS_FACTOR * silent + 2 * STARTUP_S))

    def by_class(self) -> dict[str, float]:
        """Typical seconds on each reference device class."""
        return {k: self.seconds(r) for k, r in REFERENCE_RATES.items()}


class _TrainSize(BaseModel):
    """The parts of a train job's params that set its size (the engine validates the rest)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    arch: str = Field(DEFAULT_ARCH, max_length=64)
    epochs: int = Field(10, ge=1, le=10000)
    batch: int = Field(32, ge=1, le=4096)
    input_size: tuple[int, int] | None = None
    val_fraction: float = Field(0.1, ge=0, lt=1)


def _input_px(arch: str, size: tuple[int, int] | None) -> int:
    w, h = size or DEFAULT_INPUT.get(arch, (320, 240))
    if not (8 <= w <= 4096 and 8 <= h <= 4096):
        raise EstimateError(f"params.input_size {w} x {h}: each side must lie within [8, 4096]")
    return w * h


def _scene_work(engine: str, scene: SceneSpec, frames: int) -> WorkEstimate:
    shadows = 1 + 2 * scene.lights.count[1] if scene.lights.shadows else 1
    px = scene.outputs.width * scene.outputs.height
    photo = scene.engine == "photoreal"
    return WorkEstimate(engine, frames=frames, pixels=px, objects_typical=typical_objects(scene) + STATIC_OBJECTS,
                        objects_max=scene.max_objects_per_frame() + STATIC_OBJECTS, shadow_passes=shadows,
                        path_samples=scene.photoreal.samples if photo else 0,
                        note=f"{frames} {'photoreal (Cycles, ' + str(scene.photoreal.samples) + ' samples) ' if photo else ''}"
                             f"frames of {scene.outputs.width}x{scene.outputs.height} px, "
                             f"about {typical_objects(scene):.0f} objects each")


def typical_objects(scene: SceneSpec) -> float:
    """Products plus distractors in an average frame (every range at its middle)."""
    from jobs.render.spec import PrimitiveAsset, ShelfLayout

    lay = scene.layout
    mid = lambda r: (r[0] + r[1]) / 2  # noqa: E731
    distractors = mid(scene.distractors.count)
    if not isinstance(lay, ShelfLayout):
        return mid(lay.objects) + distractors
    weights = [a.weight for a in scene.assets]
    width = sum(w * (mid(a.width) if isinstance(a, PrimitiveAsset) else 0.1) for a, w in zip(scene.assets, weights))
    width /= sum(weights)
    facings = max(0.0, lay.width - 0.02) / (width + mid(lay.gap))
    if lay.placement == "grid":
        depth = sum(w * mid((a.depth or a.width) if isinstance(a, PrimitiveAsset) else (0.1, 0.1))
                    for a, w in zip(scene.assets, weights)) / sum(weights)
        facings *= min(lay.depth_rows, max(1, int((lay.depth - 0.02) // (depth + 0.005))))
    return lay.rows * facings * mid(lay.fill_rate) + distractors


def estimate_job(spec: JobSpec, *, images: int | None = None, scene: SceneSpec | None = None) -> WorkEstimate:
    """The work of `spec` (see the module docstring). `images`: images in its dataset inputs
    (train, infer, verify-train: known once the inputs are fetched); `scene`: the scene of a
    render or verify-render job given as an input file instead of in params. Raises
    `EstimateError` (one line) when the work cannot be told or exceeds MAX_JOB_S everywhere."""
    est = _estimate(spec.kind, spec.params, images=images, scene=scene)
    fastest = min(est.seconds(r) for r in REFERENCE_RATES.values())
    if not math.isfinite(fastest) or fastest > MAX_JOB_S:
        raise EstimateError(f"the job is too large: about {fastest / 86400:.0f} days on a reference GPU "
                            f"(the limit is {MAX_JOB_S / 86400:.0f} days; {est.note})")
    return est


def _estimate(kind: str, params: Mapping[str, Any], *, images: int | None, scene: SceneSpec | None) -> WorkEstimate:
    try:
        if kind == "render":
            rp, sc = parse_render_params(dict(params), scene)
            return _scene_work(kind, sc, rp.frames(sc))
        if kind == "verify-render":
            sample = params.get("sample", 5)
            if not isinstance(sample, int) or not 1 <= sample <= 10_000:
                raise EstimateError("params.sample: a whole number of frames within [1, 10000]")
            if scene is None and isinstance(params.get("scene"), dict):
                scene = parse_scene(params["scene"])
            if scene is None:  # the scene comes with the dataset: assume a full frame of a busy scene
                return WorkEstimate(kind, frames=sample, pixels=REF_PIXELS, objects_typical=150, objects_max=400,
                                    note=f"{sample} frames re-rendered (scene not yet known)")
            return _scene_work(kind, scene, sample)
        if kind in ("train", "verify-train", "infer"):
            return _torch_work(kind, params, images)
        if kind == "sleep":
            s = params.get("seconds", 1.0)
            if not isinstance(s, (int, float)) or not 0 <= s <= 86400:
                raise EstimateError("params.seconds: within [0, 86400]")
            return WorkEstimate(kind, fixed_s=float(s), note=f"sleeps {s} s")
    except (SceneError, ValidationError) as e:
        raise EstimateError(str(e) if isinstance(e, SceneError) else _first_error(e)) from None
    raise EstimateError(f"no work model for engine {kind!r}")


def _torch_work(kind: str, params: Mapping[str, Any], images: int | None) -> WorkEstimate:
    if images is None:
        raise EstimateError(f"a {kind} job's size needs the image count of its inputs")
    if not 0 < images <= MAX_IMAGES:
        raise EstimateError(f"{images:,} images in the inputs (the limit is 1 to {MAX_IMAGES:,})")
    if kind == "infer":
        per = FLOP_PER_PIXEL[DEFAULT_ARCH] * INFER_SHARE * REF_PIXELS
        return WorkEstimate(kind, flop_typical=images * per, flop_max=images * per, unit_flop=per,
                            silent_s=0.0, note=f"{images} images")
    t = _TrainSize.model_validate(dict(params))
    px = _input_px(t.arch, t.input_size)
    per = FLOP_PER_PIXEL.get(t.arch, max(FLOP_PER_PIXEL.values()))
    if kind == "verify-train":
        flop = images * px * per * INFER_SHARE
        return WorkEstimate(kind, flop_typical=flop, flop_max=flop, unit_flop=flop,
                            silent_s=images * IMAGE_LOAD_S, note=f"{images} held-out images x {px} px ({t.arch})")
    flop = t.epochs * images * px * per
    val = images * t.val_fraction * px * per * INFER_SHARE
    return WorkEstimate(kind, flop_typical=flop + t.epochs * val, flop_max=flop + t.epochs * val,
                        unit_flop=max(t.batch * px * per, val), silent_s=images * IMAGE_LOAD_S,
                        note=f"{t.epochs} epochs x {images} images x {px} px ({t.arch})")


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    return f"params.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


FIXED_OUTPUT_FILES = 64
"""Folders, the COCO file, the dataset card, logs: what a render leaves besides its frames."""


def files_per_frame(scene: SceneSpec) -> int:
    """Files a render leaves per frame (jobs/render/dataset.py): its metadata, plus the image,
    depth, instance and semantic masks the scene asks for."""
    o = scene.outputs
    return 1 + int(o.rgb) + int(o.depth) + int(o.instance_mask) + int(o.semantic_mask)


def output_files_needed(spec: JobSpec, *, scene: SceneSpec | None = None) -> int | None:
    """How many files and folders a render job's output holds (None for other engines, or
    when its size cannot be told yet): the default `resources.max_output_files` is a generic
    10,000, which a long render (up to 5 files a frame) would hit although it is honest."""
    if spec.kind != "render":
        return None
    try:
        rp, sc = parse_render_params(dict(spec.params), scene)
        frames = rp.frames(sc)
    except (SceneError, ValidationError, EstimateError):
        return None
    return files_per_frame(sc) * frames + FIXED_OUTPUT_FILES


def with_output_files_for_work(spec: JobSpec, *, scene: SceneSpec | None = None) -> JobSpec:
    """`spec` with its file-count limit raised to what its work leaves, unless the buyer set
    the limit himself (then it stands: a too-low limit is his choice, and fails his job)."""
    res = spec.resources
    if "max_output_files" in res.model_fields_set:
        return spec
    need = output_files_needed(spec, scene=scene)
    if need is None or need <= res.max_output_files:
        return spec
    res = res.model_copy(update={"max_output_files": min(need, MAX_OUTPUT_FILES)})
    return spec.model_copy(update={"resources": res})


def bounded_spec(spec: JobSpec, est: WorkEstimate, rate: DeviceRate) -> JobSpec:
    """`spec` with its wall-clock limit lowered to the estimate's (`time_limit_s` on the device
    of `rate`): what a miner queues, so a poisoned job ends long before the order's deadline."""
    limit = est.time_limit_s(rate, spec.resources.max_wall_s)
    if limit >= spec.resources.max_wall_s:
        return spec
    return spec.model_copy(update={"resources": spec.resources.model_copy(update={"max_wall_s": limit})})
