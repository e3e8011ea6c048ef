"""Domain randomisation on top of `sampling.sample_frame`: materials, sky and camera effects.

Everything is drawn from a second RNG per frame, seeded from (seed, frame) only, and only
when the scene's `randomization` asks for it; a scene left at the defaults gets exactly the
frames it always got. Both engines call `frame()`: colour and roughness jitter change the
frame sample itself (so the metadata says what was rendered); exposure, noise, blur and
JPEG artefacts are applied to the finished RGB by `camera_effects` (the photoreal engine
applies exposure inside Cycles instead); the sky, specular level and depth of field are
photoreal only (`PhotoExtras`).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageFilter

from jobs.render.sampling import AssetInfo, FrameSample, sample_frame
from jobs.render.spec import RandomizationSpec, SceneSpec

_TAG = 0x5244  # "RD": the randomisation stream, independent of sample_frame's


@dataclass(frozen=True)
class ObjectJitter:
    color_gain: tuple[float, float, float]
    roughness: float
    specular: float


@dataclass(frozen=True)
class PhotoExtras:
    """One frame's draws: camera effects for both engines, sky/DoF/specular for Cycles."""

    exposure_ev: float = 0.0
    noise_sigma: float = 0.0
    blur_sigma: float = 0.0
    jpeg_quality: int | None = None
    noise_seed: int = 0
    fstop: float | None = None
    focus_distance: float = 1.0
    sun_direction: tuple[float, float, float] = (0.0, 0.0, 1.0)
    turbidity: float = 2.2
    sky_strength: float = 1.0
    cycles_seed: int = 0
    objects: list[ObjectJitter] = field(default_factory=list)


def _u(rng: np.random.Generator, r) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def is_default(spec: SceneSpec) -> bool:
    return spec.randomization == RandomizationSpec()


def photo_extras(spec: SceneSpec, fs: FrameSample) -> PhotoExtras:
    """The draws of frame `fs` (a pure function of spec, seed and frame index)."""
    r = spec.randomization
    rng = np.random.default_rng(np.random.SeedSequence([int(fs.seed), int(fs.index), _TAG]))
    exposure = _u(rng, r.exposure_ev)
    noise = _u(rng, r.noise_sigma)
    blur = _u(rng, r.blur_sigma)
    q = int(rng.integers(r.jpeg_quality[0], r.jpeg_quality[1] + 1)) if r.jpeg_quality else None
    noise_seed = int(rng.integers(0, 2**31 - 1))
    fstop = _u(rng, r.dof_fstop) if r.dof_fstop else None
    el = math.radians(_u(rng, r.sun_elevation_deg))
    az = float(rng.uniform(-math.pi, math.pi))
    turbidity = _u(rng, r.turbidity)
    strength = _u(rng, r.sky_strength)
    cycles_seed = int(rng.integers(0, 2**31 - 1))
    objs = []
    for _o in fs.objects:
        j = r.color_jitter
        gain = tuple(float(x) for x in rng.uniform(1.0 - j, 1.0 + j, 3)) if j > 0 else (1.0, 1.0, 1.0)
        rough = float(rng.uniform(-r.roughness_jitter, r.roughness_jitter)) if r.roughness_jitter > 0 else 0.0
        objs.append(ObjectJitter(gain, rough, _u(rng, r.specular)))  # type: ignore[arg-type]
    eye = fs.camera_pose[:3, 3]
    # focus on the layout's look-at point: the camera looks along its -z
    focus = float(max(0.05, np.linalg.norm(eye - _look_target(fs))))
    sun = (math.cos(el) * math.sin(az), math.cos(el) * math.cos(az), math.sin(el))  # Blender z-up
    return PhotoExtras(exposure, noise, blur, q, noise_seed, fstop, focus, sun, turbidity, strength, cycles_seed, objs)


def _look_target(fs: FrameSample) -> np.ndarray:
    if fs.objects:
        pts = np.array([o.pose[:3, 3] for o in fs.objects])
        fwd = -fs.camera_pose[:3, 2]
        d = (pts - fs.camera_pose[:3, 3]) @ fwd
        return fs.camera_pose[:3, 3] + fwd * float(np.median(d[d > 0])) if (d > 0).any() else pts.mean(axis=0)
    return fs.camera_pose[:3, 3] - fs.camera_pose[:3, 2]


def frame(spec: SceneSpec, infos: list[AssetInfo], seed: int, index: int) -> tuple[FrameSample, PhotoExtras]:
    """Frame `index`'s sample with colour/roughness jitter applied, and its extra draws."""
    fs = sample_frame(spec, infos, seed, index)
    ex = photo_extras(spec, fs)
    r = spec.randomization
    if r.color_jitter > 0 or r.roughness_jitter > 0:
        for o, j in zip(fs.objects, ex.objects):
            c = [min(1.0, max(0.0, v * g)) for v, g in zip(o.color[:3], j.color_gain)]
            o.color = (c[0], c[1], c[2], 1.0)
            o.roughness = min(1.0, max(0.0, o.roughness + j.roughness))
        ex = replace(ex, objects=[ObjectJitter((1.0, 1.0, 1.0), 0.0, j.specular) for j in ex.objects])
    return fs, ex


def camera_effects(color: np.ndarray, ex: PhotoExtras, *, exposure: bool = True) -> np.ndarray:
    """The finished RGB (H, W, 3) uint8 through exposure (unless the engine did it), blur,
    sensor noise and JPEG artefacts, in that order; the same bytes on every machine."""
    out = color
    if exposure and ex.exposure_ev != 0.0:
        lin = (out.astype(np.float32) / 255.0) ** 2.2 * (2.0 ** ex.exposure_ev)
        out = np.clip(np.rint(np.clip(lin, 0.0, 1.0) ** (1 / 2.2) * 255.0), 0, 255).astype(np.uint8)
    if ex.blur_sigma > 0:
        out = np.asarray(Image.fromarray(out).filter(ImageFilter.GaussianBlur(ex.blur_sigma)))
    if ex.noise_sigma > 0:
        rng = np.random.default_rng(ex.noise_seed)
        noise = rng.normal(0.0, ex.noise_sigma, out.shape).astype(np.float32)
        out = np.clip(np.rint(out.astype(np.float32) + noise), 0, 255).astype(np.uint8)
    if ex.jpeg_quality is not None:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=ex.jpeg_quality)
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            out = np.asarray(im.convert("RGB"))
    return np.ascontiguousarray(out)
