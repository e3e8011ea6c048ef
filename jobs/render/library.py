"""Turns a scene spec's assets into geometry and label art, once per job (no GL here).

User files (meshes, label and background images) are named by sha256 in the spec and
handed in as `inputs: {sha256: path}`; each file's hash is checked before it is parsed.
Meshes are parsed with trimesh (inside the sandbox: untrusted data), centred on x/z,
stood on y = 0 and scaled to the middle of their height range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from common.fsutil import sha256_file
from jobs.render import art, geometry
from jobs.render.geometry import Part
from jobs.render.sampling import AssetInfo
from jobs.render.spec import MeshAsset, PrimitiveAsset, SceneError, SceneSpec

MESH_FORMATS = {"obj", "glb", "gltf", "stl", "ply"}


@dataclass
class AssetGeometry:
    info: AssetInfo
    parts: list[Part]  # built-in shapes; empty for user meshes
    labels: list[np.ndarray]  # RGB uint8 label art, one per variant
    trimesh: object | None = None  # user mesh (trimesh.Trimesh), already normalised
    cap_color: tuple[float, float, float] = (0.9, 0.9, 0.9)
    bounds: np.ndarray = field(default_factory=lambda: np.zeros((2, 3)))  # nominal local AABB

    @property
    def corners(self) -> np.ndarray:
        """The 8 corners of the nominal bounding box, (8, 3) metres, for truncation."""
        lo, hi = self.bounds
        return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])

    def label_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """All triangles as one (positions, indices) pair for the label passes."""
        if self.trimesh is not None:
            return np.asarray(self.trimesh.vertices, np.float32), np.asarray(self.trimesh.faces, np.uint32)
        pos, idx, off = [], [], 0
        for p in self.parts:
            pos.append(p.positions)
            idx.append(p.indices + off)
            off += len(p.positions)
        return np.concatenate(pos), np.concatenate(idx)


def _mid(r) -> float:
    return (r[0] + r[1]) / 2.0


def _checked(inputs: Mapping[str, Path], digest: str, what: str) -> Path:
    path = inputs.get(digest)
    if path is None:
        raise SceneError(f"{what}: input file {digest[:12]}... was not provided")
    path = Path(path)
    if not path.is_file():
        raise SceneError(f"{what}: input {path} is not a file")
    if sha256_file(path) != digest:
        raise SceneError(f"{what}: input {path.name} does not match its sha256 {digest[:12]}...")
    return path


def _load_mesh(asset: MeshAsset, path: Path):
    import trimesh

    fmt = asset.format or path.suffix.lower().lstrip(".")
    if fmt not in MESH_FORMATS:
        with open(path, "rb") as f:
            head = f.read(4)
        fmt = "glb" if head == b"glTF" else "ply" if head[:3] == b"ply" else None
        if fmt is None:
            raise SceneError(f"assets.{asset.name}.format: cannot tell the mesh format of {path.name}; set format")
    try:
        loaded = trimesh.load(str(path), file_type=fmt, force="mesh", process=True)
    except Exception as e:  # trimesh raises many kinds on bad files
        raise SceneError(f"assets.{asset.name}.mesh: cannot read {fmt} file: {e}") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise SceneError(f"assets.{asset.name}.mesh: the file holds no triangles")
    m = loaded.copy()
    if asset.up_axis == "z":
        m.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]))
    lo, hi = m.bounds
    height = hi[1] - lo[1]
    if height <= 0:
        raise SceneError(f"assets.{asset.name}.mesh: the mesh is flat (zero height)")
    m.apply_translation([-(lo[0] + hi[0]) / 2, -lo[1], -(lo[2] + hi[2]) / 2])
    m.apply_scale(_mid(asset.height) / height)
    return m


def build_library(spec: SceneSpec, inputs: Mapping[str, Path] | None = None) -> list[AssetGeometry]:
    """Geometry, label art and layout info for every asset of `spec`, in spec order."""
    inputs = inputs or {}
    cats = spec.categories
    out: list[AssetGeometry] = []
    for i, a in enumerate(spec.assets):
        cat = cats.index(a.label) + 1 if a.label else 0
        lab = a.material.label
        labels: list[np.ndarray] = []
        if isinstance(a, PrimitiveAsset):
            dmid = _mid(a.depth) if (a.depth and a.kind in ("box", "bag")) else _mid(a.width)
            nominal = (_mid(a.width), _mid(a.height), dmid)
            parts = geometry.build_primitive(a.kind, *nominal)
            d_lo = a.depth[0] if (a.depth and a.kind in ("box", "bag")) else a.width[0]
            d_hi = a.depth[1] if (a.depth and a.kind in ("box", "bag")) else a.width[1]
            size_lo, size_hi = (a.width[0], a.height[0], d_lo), (a.width[1], a.height[1], d_hi)
            if lab is not None:
                if lab.images:
                    labels = [art.load_image(_checked(inputs, h, f"assets.{a.name}.material.label.images")) for h in lab.images]
                else:
                    aspect = geometry.label_aspect(a.kind, *nominal)
                    labels = [art.product_label(a.name, lab.text or a.label or a.name, aspect,
                                                palette=list(lab.palette) or None, art_seed=lab.art_seed,
                                                side_strip=a.kind == "box")]
            allpos = np.concatenate([p.positions for p in parts])
            bounds = np.stack([allpos.min(0), allpos.max(0)])
            info = AssetInfo(i, a.name, cat, a.kind, nominal, size_lo, size_hi, False, a.material, a.weight, max(1, len(labels)))
            out.append(AssetGeometry(info, parts, labels, None, tuple(a.cap_color), bounds))
        else:
            assert isinstance(a, MeshAsset)
            m = _load_mesh(a, _checked(inputs, a.mesh, f"assets.{a.name}.mesh"))
            lo, hi = m.bounds
            nominal = tuple(float(v) for v in (hi - lo))
            s_lo, s_hi = a.height[0] / nominal[1], a.height[1] / nominal[1]
            size_lo = tuple(v * s_lo for v in nominal)
            size_hi = tuple(v * s_hi for v in nominal)
            info = AssetInfo(i, a.name, cat, "mesh", nominal, size_lo, size_hi, True, a.material, a.weight, 1)  # type: ignore[arg-type]
            out.append(AssetGeometry(info, [], [], m, (0.9, 0.9, 0.9), np.stack([lo, hi])))
    return out


def background_image(spec: SceneSpec, inputs: Mapping[str, Path] | None) -> np.ndarray | None:
    if spec.background.image is None:
        return None
    return art.load_image(_checked(inputs or {}, spec.background.image, "background.image"))
