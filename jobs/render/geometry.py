"""Retail-goods geometry as plain numpy arrays (no GL): boxes, cans, bottles, jars, bags.

Conventions: metres, y up, the product's front faces +z, origin at the centre of its
bottom. Each shape is a list of `Part`s; a part with `role="label"` carries the label
texture's UVs, the others are plain painted surfaces ("body", "cap"). Shapes are built at
their nominal size; per-object size variation is a node scale close to 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Part:
    role: str  # "label" (textured), "body" (asset colour), "cap" (cap colour), "metal"
    positions: np.ndarray  # (n, 3) float32
    normals: np.ndarray  # (n, 3) float32
    uvs: np.ndarray | None  # (n, 2) float32 or None
    indices: np.ndarray  # (m, 3) uint32


def _part(role: str, pos, nor, uv, idx) -> Part:
    return Part(role, np.asarray(pos, np.float32), np.asarray(nor, np.float32),
                None if uv is None else np.asarray(uv, np.float32), np.asarray(idx, np.uint32).reshape(-1, 3))


# Label atlas for boxes: the front/back art spans u in [0, LABEL_U]; sides and top use the rest.
LABEL_U = 0.75


def box(w: float, h: float, d: float) -> list[Part]:
    """A carton; front and back show the label art, sides/top/bottom the side strip."""
    x0, x1, y0, y1, z0, z1 = -w / 2, w / 2, 0.0, h, -d / 2, d / 2
    faces = [  # (4 corners counter-clockwise seen from outside, normal, uv rect)
        ([(x0, y0, z1), (x1, y0, z1), (x1, y1, z1), (x0, y1, z1)], (0, 0, 1), (0, LABEL_U)),
        ([(x1, y0, z0), (x0, y0, z0), (x0, y1, z0), (x1, y1, z0)], (0, 0, -1), (0, LABEL_U)),
        ([(x1, y0, z1), (x1, y0, z0), (x1, y1, z0), (x1, y1, z1)], (1, 0, 0), (LABEL_U, 1)),
        ([(x0, y0, z0), (x0, y0, z1), (x0, y1, z1), (x0, y1, z0)], (-1, 0, 0), (LABEL_U, 1)),
        ([(x0, y1, z1), (x1, y1, z1), (x1, y1, z0), (x0, y1, z0)], (0, 1, 0), (LABEL_U, 1)),
        ([(x0, y0, z0), (x1, y0, z0), (x1, y0, z1), (x0, y0, z1)], (0, -1, 0), (LABEL_U, 1)),
    ]
    pos, nor, uv, idx = [], [], [], []
    for i, (corners, n, (u0, u1)) in enumerate(faces):
        pos += corners
        nor += [n] * 4
        uv += [(u0, 0), (u1, 0), (u1, 1), (u0, 1)]
        b = 4 * i
        idx += [b, b + 1, b + 2, b, b + 2, b + 3]
    return [_part("label", pos, nor, uv, idx)]


def revolve(profile: list[tuple[float, float]], role: str, segments: int = 32,
            v_range: tuple[float, float] | None = None, u_offset: float = 0.5) -> Part:
    """Surface of revolution about +y from (radius, y) points listed bottom to top.

    UV: u goes once around (seam at the back, u_offset puts the label's middle at the front),
    v is the profile's arc length mapped to `v_range` (default [0, 1]).
    """
    prof = np.asarray(profile, np.float64)
    seg = np.linalg.norm(np.diff(prof, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    v = arc / max(arc[-1], 1e-9)
    if v_range is not None:
        v = v_range[0] + v * (v_range[1] - v_range[0])
    # 2D normals of the profile curve (outward): tangent (dr, dy) -> normal (dy, -dr)
    tan = np.gradient(prof, axis=0)
    n2 = np.stack([tan[:, 1], -tan[:, 0]], axis=1)
    n2 /= np.maximum(np.linalg.norm(n2, axis=1, keepdims=True), 1e-9)
    theta = np.linspace(0.0, 2 * np.pi, segments + 1)
    # theta=0 at the back (-z) so the seam hides there; the front (+z) is u=0.5
    sx, cz = np.sin(theta), -np.cos(theta)
    r, y = prof[:, 0][:, None], prof[:, 1][:, None]
    shape = (len(prof), segments + 1)
    pos = np.stack([r * sx, np.broadcast_to(y, shape), r * cz], axis=-1)
    nor = np.stack([n2[:, 0][:, None] * sx, np.broadcast_to(n2[:, 1][:, None], shape), n2[:, 0][:, None] * cz], axis=-1)
    uu = 1.0 - theta / (2 * np.pi) + (u_offset - 0.5)  # u grows to the right seen from outside
    uv = np.stack([np.broadcast_to(uu, shape), np.broadcast_to(v[:, None], shape)], axis=-1)
    nr, nc = len(prof), segments + 1
    idx = []
    for i in range(nr - 1):
        for j in range(segments):
            a, b, c, d = i * nc + j, i * nc + j + 1, (i + 1) * nc + j + 1, (i + 1) * nc + j
            idx += [a, d, c, a, c, b]  # counter-clockwise seen from outside
    return _part(role, pos.reshape(-1, 3), nor.reshape(-1, 3), uv.reshape(-1, 2), idx)


def disk(radius: float, y: float, up: bool, role: str, segments: int = 32) -> Part:
    theta = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    pos = [(0.0, y, 0.0)] + [(radius * np.sin(t), y, -radius * np.cos(t)) for t in theta]
    n = (0.0, 1.0 if up else -1.0, 0.0)
    idx = []
    for j in range(segments):
        a, b = 1 + j, 1 + (j + 1) % segments
        idx += [0, b, a] if up else [0, a, b]
    uv = [(0.5, 0.5)] + [(0.5 + 0.5 * np.sin(t), 0.5 - 0.5 * np.cos(t)) for t in theta]
    return _part(role, pos, [n] * len(pos), uv, idx)


def can(d: float, h: float) -> list[Part]:
    r = d / 2
    lo, hi = 0.04 * h, 0.92 * h
    return [
        revolve([(r, lo), (r, hi)], "label"),
        revolve([(0.88 * r, 0.0), (0.97 * r, 0.012 * h), (r, lo)], "metal", v_range=(0, 0)),
        revolve([(r, hi), (0.9 * r, 0.985 * h), (0.86 * r, h)], "metal", v_range=(0, 0)),
        disk(0.88 * r, 0.0, False, "metal"),
        disk(0.86 * r, h, True, "metal"),
    ]


def bottle(d: float, h: float) -> list[Part]:
    r = d / 2
    body = [(0.0, 0.0), (0.9 * r, 0.0), (r, 0.02 * h), (r, 0.14 * h), (r, 0.55 * h), (0.93 * r, 0.62 * h),
            (0.7 * r, 0.7 * h), (0.45 * r, 0.76 * h), (0.34 * r, 0.8 * h), (0.34 * r, 0.88 * h)]
    cap = [(0.0, 0.875 * h), (0.4 * r, 0.875 * h), (0.4 * r, 0.99 * h), (0.36 * r, h), (0.0, h)]
    return [
        revolve(body, "body"),
        revolve([(1.01 * r, 0.16 * h), (1.01 * r, 0.52 * h)], "label"),
        revolve(cap, "cap", segments=24),
    ]


def jar(d: float, h: float) -> list[Part]:
    r = d / 2
    body = [(0.0, 0.0), (0.88 * r, 0.0), (0.97 * r, 0.03 * h), (r, 0.08 * h), (r, 0.78 * h), (0.9 * r, 0.82 * h)]
    lid = [(0.0, 0.81 * h), (0.95 * r, 0.81 * h), (0.97 * r, 0.83 * h), (0.97 * r, 0.98 * h), (0.93 * r, h), (0.0, h)]
    return [
        revolve(body, "body"),
        revolve([(1.01 * r, 0.12 * h), (1.01 * r, 0.72 * h)], "label"),
        revolve(lid, "cap"),
    ]


def bag(w: float, h: float, d: float, nu: int = 14, nv: int = 18) -> list[Part]:
    """A pillow-shaped snack bag: crimped seals at top and bottom, the label on the front."""
    u = np.linspace(0.0, 1.0, nu)
    v = np.linspace(0.0, 1.0, nv)
    uu, vv = np.meshgrid(u, v)  # (nv, nu)
    seal_lo, seal_hi = 0.05, 0.92
    t = np.clip((vv - seal_lo) / (seal_hi - seal_lo), 0.0, 1.0)
    bulge = np.sqrt(np.sin(np.pi * uu)) * np.sqrt(np.sin(np.pi * t)) * 0.5 * d
    x = (uu - 0.5) * w * (1.0 - 0.06 * np.sin(np.pi * t))  # sides pulled in where it bulges
    y = vv * h
    parts = []
    for sign in (1.0, -1.0):
        xs = x if sign > 0 else -x  # mirror so the back also winds outward
        pos = np.stack([xs, y, sign * bulge], axis=-1)
        uv = np.stack([uu if sign > 0 else uu, vv], axis=-1)
        idx = []
        for i in range(nv - 1):
            for j in range(nu - 1):
                a, b, c, dd = i * nu + j, i * nu + j + 1, (i + 1) * nu + j + 1, (i + 1) * nu + j
                idx += [a, b, c, a, c, dd]
        p = pos.reshape(-1, 3)
        nor = _vertex_normals(p, np.asarray(idx).reshape(-1, 3))
        parts.append(_part("label", p, nor, uv.reshape(-1, 2), idx))
    return parts


def _vertex_normals(pos: np.ndarray, faces: np.ndarray) -> np.ndarray:
    fn = np.cross(pos[faces[:, 1]] - pos[faces[:, 0]], pos[faces[:, 2]] - pos[faces[:, 0]])
    vn = np.zeros_like(pos)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


def cuboid(w: float, h: float, d: float, role: str = "body", origin: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Part:
    """A plain box with its min corner at origin + (-w/2, 0, -d/2) (environment pieces)."""
    p = box(w, h, d)[0]
    pos = p.positions + np.asarray(origin, np.float32)
    return Part(role, pos, p.normals, p.uvs, p.indices)


def uv_sphere(r: float, role: str = "body", rings: int = 12, segments: int = 18) -> Part:
    prof = [(r * np.sin(a), r - r * np.cos(a)) for a in np.linspace(0.0, np.pi, rings + 1)]
    return revolve(prof, role, segments=segments)


def merge_roles(parts: list[Part]) -> list[Part]:
    """One part per role (fewer draw calls: pyrender binds lights per primitive)."""
    out: list[Part] = []
    for role in dict.fromkeys(p.role for p in parts):
        group = [p for p in parts if p.role == role]
        if len(group) == 1:
            out.append(group[0])
            continue
        idx, off = [], 0
        for p in group:
            idx.append(p.indices + off)
            off += len(p.positions)
        uvs = None if any(p.uvs is None for p in group) else np.concatenate([p.uvs for p in group])
        out.append(Part(role, np.concatenate([p.positions for p in group]), np.concatenate([p.normals for p in group]),
                        uvs, np.concatenate(idx).astype(np.uint32)))
    return out


def build_primitive(kind: str, w: float, h: float, d: float) -> list[Part]:
    builders = {"box": lambda: box(w, h, d), "can": lambda: can(w, h), "bottle": lambda: bottle(w, h),
                "jar": lambda: jar(w, h), "bag": lambda: bag(w, h, d)}
    if kind not in builders:
        raise ValueError(f"unknown primitive kind {kind!r}")
    return merge_roles(builders[kind]())


def label_aspect(kind: str, w: float, h: float, d: float) -> float:
    """Width/height of the label art as it appears on the product (for undistorted text)."""
    if kind == "box":
        return (w / LABEL_U) / h
    if kind in ("can",):
        return np.pi * w / (0.88 * h)
    if kind == "bottle":
        return np.pi * w / (0.36 * h)
    if kind == "jar":
        return np.pi * w / (0.6 * h)
    return w / h


def distractor_parts(shape: int) -> list[Part]:
    """Unit distractor shapes: 0 a cube, 1 a sphere, 2 a cylinder (both render engines)."""
    if shape == 0:
        return [cuboid(1.0, 1.0, 1.0)]
    if shape == 1:
        return [uv_sphere(0.5)]
    return [revolve([(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)], "body", segments=20)]


def environment_parts(spec) -> list[tuple[str, list[Part]]]:
    """The static scene of a SceneSpec as (material role, parts), for both engines: the shelf
    unit or table ("env"), the price tags ("tags"), the floor and the wall."""
    from jobs.render.spec import ShelfLayout

    lay = spec.layout
    cub = cuboid
    out: list[tuple[str, list[Part]]] = []
    if isinstance(lay, ShelfLayout):
        top = lay.bottom + lay.rows * lay.spacing
        W, D, t = lay.width, lay.depth, lay.board_thickness
        frame = [cub(W, t, D, origin=(0, lay.bottom + k * lay.spacing, 0)) for k in range(lay.rows + 1)]
        frame += [cub(0.025, top + t, D + 0.02, origin=(s * (W / 2 + 0.0125), 0, 0.0)) for s in (-1, 1)]
        frame += [cub(W + 0.05, top + t, 0.012, origin=(0, 0, -D / 2 - 0.006))]
        frame += [cub(W, lay.bottom, 0.02, origin=(0, 0, D / 2 - 0.02))]
        out.append(("env", frame))
        if lay.price_tags:
            out.append(("tags", [cub(W, 0.032, 0.004, role="label", origin=(0, lay.bottom + k * lay.spacing - 0.006, D / 2 + 0.002))
                                 for k in range(lay.rows)]))
        wall_z = -D / 2 - 0.25
    else:
        H, W, D = lay.height, lay.width, lay.depth
        frame = [cub(W, 0.04, D, origin=(0, H - 0.04, 0))]
        frame += [cub(0.05, H - 0.04, 0.05, origin=(sx * (W / 2 - 0.06), 0, sz * (D / 2 - 0.06))) for sx in (-1, 1) for sz in (-1, 1)]
        out.append(("env", frame))
        wall_z = -D / 2 - 1.2
    out.append(("floor", [cub(12, 0.02, 12, origin=(0, -0.02, 0))]))
    out.append(("wall", [cub(12, 5, 0.02, origin=(0, 0, wall_z), role="label")]))
    return out
