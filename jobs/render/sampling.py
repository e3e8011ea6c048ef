"""Per-frame randomisation: object placement, camera, lights and colours, with no GL.

`sample_frame(spec, assets, seed, index)` is a pure function of its arguments: its RNG is
seeded from (seed, index) only, so frame i comes out the same in a full run, a shard or a
verifier's re-render. Units: metres, radians inside (degrees in the spec), linear RGB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from jobs.render.spec import MAX_OBJECTS_PER_FRAME, MaterialSpec, SceneSpec, ShelfLayout, TableLayout

GROUND_LIFT = 0.0005  # products float 0.5 mm above their board: no coplanar faces, no z-fighting


@dataclass(frozen=True)
class AssetInfo:
    """What layout needs to know of an asset: its nominal size (the built geometry) and
    how an object's size may vary around it."""

    index: int
    name: str
    category_id: int  # 0 = unlabelled
    kind: str
    nominal: tuple[float, float, float]  # width, height, depth (m)
    size_lo: tuple[float, float, float]
    size_hi: tuple[float, float, float]
    uniform_scale: bool  # user meshes scale uniformly
    material: MaterialSpec
    weight: float
    variants: int  # label textures to choose from

    def sample_scale(self, rng: np.random.Generator) -> np.ndarray:
        if self.uniform_scale:
            s = rng.uniform(self.size_lo[1], self.size_hi[1]) / self.nominal[1]
            return np.array([s, s, s])
        w = rng.uniform(self.size_lo[0], self.size_hi[0])
        h = rng.uniform(self.size_lo[1], self.size_hi[1])
        d = w if self.kind in ("can", "bottle", "jar") else rng.uniform(self.size_lo[2], self.size_hi[2])
        return np.array([w, h, d]) / np.asarray(self.nominal)


@dataclass
class ObjectSample:
    asset: int
    variant: int
    pose: np.ndarray  # 4x4 without scale
    scale: np.ndarray  # (3,)
    color: tuple[float, float, float, float]
    roughness: float
    metalness: float
    category_id: int
    instance_id: int = 0  # 1.. in placement order, set by sample_frame


@dataclass
class DistractorSample:
    shape: int  # 0 box, 1 sphere, 2 cylinder
    pose: np.ndarray
    scale: np.ndarray
    color: tuple[float, float, float, float]


@dataclass
class LightSample:
    kind: str
    pose: np.ndarray
    color: tuple[float, float, float]
    intensity: float
    temperature_k: float


@dataclass
class FrameSample:
    index: int
    seed: int
    camera_pose: np.ndarray  # camera-to-world, OpenGL convention (looks along -z)
    yfov: float  # radians
    lights: list[LightSample]
    ambient: float
    bg_color: tuple[float, float, float]
    env_color: tuple[float, float, float, float]  # shelf frame / table top
    env_roughness: float
    objects: list[ObjectSample] = field(default_factory=list)
    distractors: list[DistractorSample] = field(default_factory=list)


def frame_rng(seed: int, index: int) -> np.random.Generator:
    """The RNG of frame `index`: a function of (seed, index) only."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 0x4B4D]))


def kelvin_rgb(k: float) -> tuple[float, float, float]:
    """Approximate RGB (0..1) of a black body at `k` kelvin (Tanner Helland's fit)."""
    t = k / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * math.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307)
    return tuple(float(np.clip(c, 0, 255) / 255.0) for c in (r, g, b))  # type: ignore[return-value]


def _u(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def _color(rng: np.random.Generator, c) -> tuple[float, float, float, float]:
    lo, hi = np.asarray(c[0]), np.asarray(c[1])
    v = lo + (hi - lo) * rng.random(3)
    return (float(v[0]), float(v[1]), float(v[2]), 1.0)


def yaw_pose(x: float, y: float, z: float, yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    m = np.eye(4)
    m[0, 0], m[0, 2], m[2, 0], m[2, 2] = c, s, -s, c
    m[:3, 3] = (x, y, z)
    return m


def look_at(eye: np.ndarray, target: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """Camera-to-world pose at `eye` looking at `target` (y up), rolled about its axis."""
    zc = eye - target
    zc = zc / np.linalg.norm(zc)
    up = np.array([0.0, 1.0, 0.0])
    if abs(zc @ up) > 0.999:
        up = np.array([0.0, 0.0, -1.0])
    xc = np.cross(up, zc)
    xc /= np.linalg.norm(xc)
    yc = np.cross(zc, xc)
    if roll:
        c, s = math.cos(roll), math.sin(roll)
        xc, yc = c * xc + s * yc, -s * xc + c * yc
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = xc, yc, zc, eye
    return m


def orbit_pose(center: np.ndarray, yaw_deg: float, pitch_deg: float, distance: float) -> np.ndarray:
    """Camera-to-world pose orbiting `center` (the editor's preview camera): yaw turns around
    the vertical, pitch looks down (+); degrees and metres."""
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    eye = center + distance * np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
    return look_at(eye, center)


def layout_center(spec: SceneSpec) -> np.ndarray:
    lay = spec.layout
    if isinstance(lay, ShelfLayout):
        return np.array([0.0, lay.bottom + lay.rows * lay.spacing / 2, lay.depth / 2])
    return np.array([0.0, lay.height + 0.08, 0.0])


def _pick(rng: np.random.Generator, assets: list[AssetInfo]) -> AssetInfo:
    w = np.array([a.weight for a in assets])
    return assets[int(rng.choice(len(assets), p=w / w.sum()))]


def _object(rng: np.random.Generator, a: AssetInfo, pose: np.ndarray, scale: np.ndarray) -> ObjectSample:
    m = a.material
    return ObjectSample(asset=a.index, variant=int(rng.integers(0, max(1, a.variants))), pose=pose, scale=scale,
                        color=_color(rng, m.color), roughness=_u(rng, m.roughness), metalness=_u(rng, m.metalness),
                        category_id=a.category_id)


def _shelf_objects(rng, lay: ShelfLayout, assets: list[AssetInfo]) -> list[ObjectSample]:
    out: list[ObjectSample] = []
    x_lo, x_hi = -lay.width / 2 + 0.01, lay.width / 2 - 0.01
    z_front = lay.depth / 2 - 0.015
    yaw_j = math.radians(lay.yaw_jitter_deg)
    for row in range(lay.rows):
        y = lay.bottom + row * lay.spacing + lay.board_thickness + GROUND_LIFT
        room = lay.spacing - lay.board_thickness - 0.015
        fits = [a for a in assets if a.size_lo[1] <= room]
        if not fits:
            continue
        fill = _u(rng, lay.fill_rate)
        if lay.placement == "grid":
            x = x_lo + _u(rng, lay.gap)
            misses = 0
            while misses < 8:
                a = _pick(rng, fits)
                scale = a.sample_scale(rng)
                w, h, d = np.asarray(a.nominal) * scale
                if h > room:
                    scale = scale * (room / h)
                    w, h, d = np.asarray(a.nominal) * scale
                n_block = int(rng.integers(lay.block_facings[0], lay.block_facings[1] + 1))
                if x + w > x_hi:
                    misses += 1
                    continue
                if len(out) >= MAX_OBJECTS_PER_FRAME:
                    break
                for _ in range(n_block):
                    if x + w > x_hi:
                        break
                    n_deep = max(1, min(lay.depth_rows, int((lay.depth - 0.02) // (d + 0.005))))
                    for k in range(n_deep):
                        if rng.random() >= fill:
                            continue
                        j = lay.position_jitter
                        px = x + w / 2 + rng.uniform(-j, j) * 0.5
                        pz = z_front - d / 2 - k * (d + 0.005) - rng.uniform(0, j)
                        pose = yaw_pose(px, y, pz, rng.uniform(-yaw_j, yaw_j))
                        out.append(_object(rng, a, pose, scale))
                    x += w + _u(rng, lay.gap)
        else:  # random x positions without overlap, front row first then deeper rows
            items = []
            total = 0.0
            for _attempt in range(1000):
                a = _pick(rng, fits)
                scale = a.sample_scale(rng)
                w, h, d = np.asarray(a.nominal) * scale
                if h > room:
                    scale = scale * (room / h)
                    w, h, d = np.asarray(a.nominal) * scale
                if total + w + lay.gap[0] > (x_hi - x_lo) * fill:
                    break
                items.append((a, scale, w, d))
                total += w + lay.gap[0]
            if not items:
                continue
            free = (x_hi - x_lo) - total
            gaps = rng.dirichlet(np.ones(len(items) + 1)) * free
            x = x_lo
            for (a, scale, w, d), g in zip(items, gaps):
                x += g
                pz = z_front - d / 2 - rng.uniform(0, max(0.0, lay.depth - 0.03 - d))
                pose = yaw_pose(x + w / 2, y, pz, rng.uniform(-yaw_j, yaw_j))
                out.append(_object(rng, a, pose, scale))
                x += w + lay.gap[0]
    return out


def _radius(a: AssetInfo, scale: np.ndarray) -> float:
    w, _, d = np.asarray(a.nominal) * scale
    return 0.5 * math.hypot(w, d) * 1.02


def _table_objects(rng, lay: TableLayout, assets: list[AssetInfo]) -> list[ObjectSample]:
    n = int(rng.integers(lay.objects[0], lay.objects[1] + 1))
    y = lay.height + GROUND_LIFT
    out: list[ObjectSample] = []
    placed: list[tuple[float, float, float]] = []
    if lay.placement == "grid":
        cols = max(1, math.ceil(math.sqrt(n * lay.width / lay.depth)))
        rows = max(1, math.ceil(n / cols))
        cells = [(c, r) for r in range(rows) for c in range(cols)]
        for c, r in cells[:n]:
            a = _pick(rng, assets)
            scale = a.sample_scale(rng)
            j = lay.position_jitter
            px = -lay.width / 2 + (c + 0.5) * lay.width / cols + rng.uniform(-j, j)
            pz = -lay.depth / 2 + (r + 0.5) * lay.depth / rows + rng.uniform(-j, j)
            out.append(_object(rng, a, yaw_pose(px, y, pz, math.radians(_u(rng, lay.yaw_deg))), scale))
        return out
    for _ in range(n):
        a = _pick(rng, assets)
        scale = a.sample_scale(rng)
        r = _radius(a, scale)
        for _try in range(40):
            px = rng.uniform(-lay.width / 2 + r, lay.width / 2 - r) if lay.width > 2 * r else 0.0
            pz = rng.uniform(-lay.depth / 2 + r, lay.depth / 2 - r) if lay.depth > 2 * r else 0.0
            if all(math.hypot(px - qx, pz - qz) >= r + qr for qx, qz, qr in placed):
                placed.append((px, pz, r))
                out.append(_object(rng, a, yaw_pose(px, y, pz, math.radians(_u(rng, lay.yaw_deg))), scale))
                break
    return out


def _distractors(rng, spec: SceneSpec, objects: list[ObjectSample], assets: list[AssetInfo]) -> list[DistractorSample]:
    ds = spec.distractors
    n = int(rng.integers(ds.count[0], ds.count[1] + 1))
    out = []
    lay = spec.layout
    for _ in range(n):
        shape = int(rng.integers(0, 3))
        s = _u(rng, ds.size)
        scale = np.array([s, s * rng.uniform(0.5, 1.5), s]) if shape != 1 else np.array([s, s, s])
        if isinstance(lay, ShelfLayout):  # on the floor in front of the shelf, or on its top
            if rng.random() < 0.5:
                x, y, z = rng.uniform(-lay.width / 2, lay.width / 2), 0.0, lay.depth / 2 + rng.uniform(0.05, 0.5)
            else:
                x = rng.uniform(-lay.width / 2 + s, lay.width / 2 - s)
                y = lay.bottom + lay.rows * lay.spacing + lay.board_thickness
                z = rng.uniform(-lay.depth / 2 + s, lay.depth / 2 - s)
        else:  # on the table where no object stands
            x, y, z = 0.0, lay.height, 0.0
            for _try in range(30):
                x = rng.uniform(-lay.width / 2 + s, lay.width / 2 - s)
                z = rng.uniform(-lay.depth / 2 + s, lay.depth / 2 - s)
                if all(math.hypot(x - o.pose[0, 3], z - o.pose[2, 3]) > s + _radius(assets[o.asset], o.scale) for o in objects):
                    break
        pose = yaw_pose(x, y + GROUND_LIFT, z, rng.uniform(-math.pi, math.pi))
        out.append(DistractorSample(shape, pose, scale, _color(rng, ds.color)))
    return out


def _lights(rng, spec: SceneSpec, center: np.ndarray) -> list[LightSample]:
    ls = spec.lights
    n = int(rng.integers(ls.count[0], ls.count[1] + 1))
    out = []
    for _ in range(n):
        kind = ls.kinds[int(rng.integers(0, len(ls.kinds)))]
        temp = _u(rng, ls.color_temperature_k)
        intensity = _u(rng, ls.intensity)
        # lights sit in front of and above the scene, like store ceiling lights
        az = rng.uniform(-0.9, 0.9)
        el = rng.uniform(0.25, 1.1)
        dist = rng.uniform(1.5, 3.0)
        eye = center + dist * np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])
        target = center + rng.uniform(-0.3, 0.3, 3)
        pose = look_at(eye, target)
        if kind != "directional":
            intensity *= dist * dist  # keep point/spot brightness comparable at the scene
        out.append(LightSample(kind, pose, kelvin_rgb(temp), float(intensity), float(temp)))
    return out


def sample_frame(spec: SceneSpec, assets: list[AssetInfo], seed: int, index: int) -> FrameSample:
    """Everything random about frame `index`, drawn in a fixed order from its own RNG."""
    rng = frame_rng(seed, index)
    cam = spec.camera
    center = layout_center(spec)
    target = center + rng.uniform(-1, 1, 3) * cam.look_at_jitter * np.array([1.0, 1.0, 0.3])
    yaw, pitch = math.radians(_u(rng, cam.yaw_deg)), math.radians(_u(rng, cam.pitch_deg))
    dist = _u(rng, cam.distance)
    eye = target + dist * np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
    cam_pose = look_at(eye, target, math.radians(_u(rng, cam.roll_deg)))
    yfov = math.radians(_u(rng, cam.fov_deg))
    lights = _lights(rng, spec, center)
    ambient = _u(rng, spec.lights.ambient)
    bg = _color(rng, spec.background.color)[:3]
    env_mat = spec.layout.frame_material if isinstance(spec.layout, ShelfLayout) else spec.layout.table_material
    env_color, env_rough = _color(rng, env_mat.color), _u(rng, env_mat.roughness)
    if isinstance(spec.layout, ShelfLayout):
        objects = _shelf_objects(rng, spec.layout, assets)
    else:
        assert isinstance(spec.layout, TableLayout)
        objects = _table_objects(rng, spec.layout, assets)
    objects = objects[:9999]  # instance ids fit the 16-bit mask and the annotation id stride
    for i, o in enumerate(objects, start=1):
        o.instance_id = i
    distractors = _distractors(rng, spec, objects, assets)
    return FrameSample(index=index, seed=seed, camera_pose=cam_pose, yfov=yfov, lights=lights, ambient=ambient,
                       bg_color=bg, env_color=env_color, env_roughness=env_rough, objects=objects, distractors=distractors)


def intrinsics(yfov: float, width: int, height: int) -> np.ndarray:
    """Pinhole K (pixels) for pyrender's perspective camera with square pixels."""
    fy = (height / 2.0) / math.tan(yfov / 2.0)
    return np.array([[fy, 0.0, width / 2.0], [0.0, fy, height / 2.0], [0.0, 0.0, 1.0]])
