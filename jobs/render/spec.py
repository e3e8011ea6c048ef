"""The scene spec: what a buyer writes to describe a synthetic-data generator.

A versioned pydantic model, loaded from JSON and validated before anything is rendered.
Units: lengths in metres, angles in degrees, colours as linear RGB in [0, 1], colour
temperatures in kelvin, image sizes in pixels. A range is a `[low, high]` pair sampled
uniformly per frame (or per object). The JSON schema lives in
`resources/schemas/scene.schema.json` (regenerate with `python -m jobs.render.spec`).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from common.jsonfile import read_json
from common.jsonfile import schema_text as _schema_text

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "resources" / "schemas" / "scene.schema.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class SceneError(ValueError):
    """The scene spec is unusable; the message names the field (`layout.rows: ...`)."""


def _ordered(v: tuple[float, float]) -> tuple[float, float]:
    if v[0] > v[1]:
        raise ValueError(f"low {v[0]} is above high {v[1]}")
    return v


def _sha(v: str) -> str:
    if not _SHA256.match(v):
        raise ValueError("must be a lowercase hex sha256 (64 characters)")
    return v


Range = Annotated[tuple[float, float], AfterValidator(_ordered)]
IntRange = Annotated[tuple[int, int], AfterValidator(_ordered)]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
RGB = tuple[Unit, Unit, Unit]
Sha256 = Annotated[str, AfterValidator(_sha)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelSpec(_Model):
    """Label art wrapped onto a product: the box's front and back, the can's/bottle's/jar's
    band, the bag's front. Either user images (by content hash, PNG/JPEG) or generated art."""

    images: list[Sha256] = Field(default_factory=list, title="Label images", description="sha256 of PNG/JPEG label images; one is picked per object.")
    text: str | None = Field(None, max_length=24, title="Brand text", description="Text printed on generated labels (default: the asset's class name).")
    palette: list[RGB] = Field(default_factory=list, max_length=8, title="Palette", description="Colours for generated labels (default: drawn from the art seed).")
    art_seed: int = Field(0, title="Art seed", description="Seed of the generated label art; fixed per asset so a class keeps its look across the dataset.")


class MaterialSpec(_Model):
    """Surface appearance, sampled per object and frame (colour multiplies the label art)."""

    color: tuple[RGB, RGB] = Field(((0.8, 0.8, 0.8), (0.8, 0.8, 0.8)), title="Colour range", description="Per-channel [low RGB, high RGB].")
    roughness: Range = Field((0.6, 0.6), title="Roughness range")
    metalness: Range = Field((0.0, 0.0), title="Metalness range")
    label: LabelSpec | None = Field(None, title="Label texture")

    @model_validator(mode="after")
    def _color_order(self) -> "MaterialSpec":
        lo, hi = self.color
        if any(a > b for a, b in zip(lo, hi)):
            raise ValueError("color: each low channel must be <= its high channel")
        return self


class _AssetBase(_Model):
    name: str = Field(..., min_length=1, max_length=64, title="Asset name")
    label: str | None = Field(..., max_length=64, title="Class label", description="COCO category; null for unlabelled distractors.")
    material: MaterialSpec = Field(default_factory=MaterialSpec, title="Material")
    weight: float = Field(1.0, gt=0, title="Sampling weight", description="Relative frequency among assets placed by the layout.")


class PrimitiveAsset(_AssetBase):
    """A built-in retail shape. `width` is the diameter for can, bottle and jar."""

    kind: Literal["box", "can", "bottle", "jar", "bag"]
    width: Range = Field(..., title="Width range (m)")
    height: Range = Field(..., title="Height range (m)")
    depth: Range | None = Field(None, title="Depth range (m)", description="Box and bag only (default: the width).")
    cap_color: RGB = Field((0.9, 0.9, 0.9), title="Cap / lid colour", description="Bottle cap, jar lid, can ends.")

    @model_validator(mode="after")
    def _positive(self) -> "PrimitiveAsset":
        for fname in ("width", "height", "depth"):
            v = getattr(self, fname)
            if v is not None and v[0] <= 0:
                raise ValueError(f"{fname} must be above 0 m")
        return self


class MeshAsset(_AssetBase):
    """A user mesh (OBJ, GLB, STL or PLY) named by the sha256 of its file; scaled to `height`."""

    kind: Literal["mesh"]
    mesh: Sha256 = Field(..., title="Mesh file sha256")
    format: Literal["obj", "glb", "gltf", "stl", "ply"] | None = Field(None, title="File format", description="Default: detected from the file.")
    height: Range = Field(..., title="Height range (m)")
    up_axis: Literal["y", "z"] = Field("y", title="Up axis of the file")


Asset = Annotated[Union[PrimitiveAsset, MeshAsset], Field(discriminator="kind")]


class ShelfLayout(_Model):
    """A shelf unit seen from the front: `rows` boards stacked `spacing` apart, products in
    facings left to right and up to `depth_rows` deep."""

    kind: Literal["shelf"]
    rows: int = Field(4, ge=1, le=12, title="Shelf rows")
    width: float = Field(1.2, gt=0, le=10, title="Shelf width (m)")
    depth: float = Field(0.4, gt=0, le=2, title="Shelf depth (m)")
    spacing: float = Field(0.35, gt=0, le=2, title="Vertical spacing (m)")
    bottom: float = Field(0.15, ge=0, le=2, title="Lowest board height (m)")
    board_thickness: float = Field(0.02, gt=0, le=0.2, title="Board thickness (m)")
    placement: Literal["grid", "random"] = Field("grid", title="Placement", description="grid: facings side by side with jitter; random: random positions without overlap.")
    gap: Range = Field((0.005, 0.02), title="Gap between facings (m)")
    depth_rows: int = Field(2, ge=1, le=10, title="Products per facing, front to back")
    fill_rate: Range = Field((0.8, 1.0), title="Fill rate", description="Fraction of facing positions holding a product.")
    block_facings: IntRange = Field((1, 4), title="Facings per product block", description="Consecutive facings of the same product, as on a real shelf.")
    position_jitter: float = Field(0.005, ge=0, le=0.2, title="Position jitter (m)")
    yaw_jitter_deg: float = Field(4.0, ge=0, le=180, title="Facing yaw jitter (deg)")
    price_tags: bool = Field(True, title="Price tags on the board edges")
    frame_material: MaterialSpec = Field(default_factory=lambda: MaterialSpec(color=((0.75, 0.75, 0.78), (0.9, 0.9, 0.92)), roughness=(0.5, 0.7)), title="Shelf material")


class TableLayout(_Model):
    """A table top with objects scattered on it."""

    kind: Literal["table"]
    width: float = Field(1.2, gt=0, le=10, title="Table width (m)")
    depth: float = Field(0.8, gt=0, le=10, title="Table depth (m)")
    height: float = Field(0.75, gt=0, le=3, title="Table height (m)")
    objects: IntRange = Field((5, 12), title="Objects per frame")
    placement: Literal["grid", "random"] = Field("random", title="Placement", description="random: no overlap; grid: a jittered grid.")
    position_jitter: float = Field(0.02, ge=0, le=1, title="Grid jitter (m)")
    yaw_deg: Range = Field((-180.0, 180.0), title="Object yaw (deg)")
    table_material: MaterialSpec = Field(default_factory=lambda: MaterialSpec(color=((0.45, 0.3, 0.2), (0.65, 0.45, 0.3)), roughness=(0.5, 0.8)), title="Table material")


Layout = Annotated[Union[ShelfLayout, TableLayout], Field(discriminator="kind")]


class DistractorSpec(_Model):
    """Unlabelled clutter placed among the products (never annotated)."""

    count: IntRange = Field((0, 0), title="Distractors per frame")
    size: Range = Field((0.03, 0.1), title="Size (m)")
    color: tuple[RGB, RGB] = Field(((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), title="Colour range")


class BackgroundSpec(_Model):
    color: tuple[RGB, RGB] = Field(((0.55, 0.55, 0.58), (0.8, 0.8, 0.82)), title="Wall colour range")
    image: Sha256 | None = Field(None, title="Background image sha256", description="PNG/JPEG shown on the wall behind the scene.")


class CameraSpec(_Model):
    """Camera pose around the layout's centre: yaw turns left/right, pitch looks down (+)."""

    fov_deg: Range = Field((50.0, 60.0), title="Vertical field of view (deg)")
    distance: Range = Field((1.2, 1.8), title="Distance to the look-at point (m)")
    yaw_deg: Range = Field((-15.0, 15.0), title="Yaw (deg)")
    pitch_deg: Range = Field((-5.0, 15.0), title="Pitch (deg)")
    roll_deg: Range = Field((-2.0, 2.0), title="Roll (deg)")
    look_at_jitter: float = Field(0.1, ge=0, le=5, title="Look-at jitter (m)")
    znear: float = Field(0.05, gt=0, title="Near plane (m)")
    zfar: float = Field(20.0, gt=0, title="Far plane (m)")

    @model_validator(mode="after")
    def _planes(self) -> "CameraSpec":
        if self.znear >= self.zfar:
            raise ValueError("znear must be below zfar")
        if not (1.0 <= self.fov_deg[0] and self.fov_deg[1] <= 150.0):
            raise ValueError("fov_deg must lie within [1, 150]")
        return self


class LightSpec(_Model):
    count: IntRange = Field((1, 3), title="Lights per frame")
    kinds: list[Literal["directional", "point", "spot"]] = Field(["directional", "point"], min_length=1, title="Light kinds")
    intensity: Range = Field((2.0, 5.0), title="Intensity", description="Directional: lux-like units; point/spot: candela-like (pyrender).")
    color_temperature_k: Range = Field((3500.0, 6500.0), title="Colour temperature (K)")
    ambient: Range = Field((0.25, 0.4), title="Ambient light level")
    shadows: bool = Field(False, title="Shadows (directional and spot)", description="A shadow pass per light and no occlusion culling: about 10x slower on a CPU renderer.")

    @model_validator(mode="after")
    def _temps(self) -> "LightSpec":
        if not (1000.0 <= self.color_temperature_k[0] and self.color_temperature_k[1] <= 40000.0):
            raise ValueError("color_temperature_k must lie within [1000, 40000]")
        if self.count[0] < 0 or self.count[1] > 4:
            raise ValueError("count must lie within [0, 4] (pyrender lights at most 4 of a kind)")
        if self.intensity[0] < 0 or self.ambient[0] < 0:
            raise ValueError("intensity and ambient must be >= 0")
        return self


class OutputSpec(_Model):
    width: int = Field(640, ge=16, le=4096, title="Image width (px)")
    height: int = Field(480, ge=16, le=4096, title="Image height (px)")
    count: int = Field(100, ge=1, le=10_000_000, title="Frames")
    seed: int = Field(0, ge=0, le=2**63 - 1, title="Seed")
    rgb: bool = Field(True, title="RGB images")
    rgb_format: Literal["png", "jpg"] = Field("png", title="RGB format")
    jpg_quality: int = Field(92, ge=1, le=100, title="JPEG quality")
    depth: bool = Field(True, title="Depth (16-bit PNG, millimetres)")
    instance_mask: bool = Field(True, title="Instance masks (16-bit PNG)")
    semantic_mask: bool = Field(True, title="Semantic masks (8-bit PNG, category ids)")
    boxes: bool = Field(True, title="COCO boxes and RLE masks")
    min_visible_fraction: float = Field(0.25, ge=0, le=1, title="Visibility threshold", description="Objects less visible than this stay in metadata but get no box.")
    min_pixels: int = Field(16, ge=1, title="Smallest box (visible pixels)")
    msaa: bool = Field(True, title="Anti-aliased RGB (masks never are)")


class SceneSpec(_Model):
    """A synthetic-data generator: assets, layout, randomised camera and lights, outputs."""

    schema_version: Literal[1] = Field(SCHEMA_VERSION, title="Schema version")
    name: str = Field(..., min_length=1, max_length=80, title="Scene name")
    description: str = Field("", max_length=2000, title="Description")
    assets: list[Asset] = Field(..., min_length=1, max_length=256, title="Assets")
    layout: Layout = Field(..., title="Layout")
    distractors: DistractorSpec = Field(default_factory=DistractorSpec, title="Distractors")
    background: BackgroundSpec = Field(default_factory=BackgroundSpec, title="Background")
    camera: CameraSpec = Field(default_factory=CameraSpec, title="Camera")
    lights: LightSpec = Field(default_factory=LightSpec, title="Lights")
    outputs: OutputSpec = Field(default_factory=OutputSpec, title="Outputs")

    @model_validator(mode="after")
    def _consistent(self) -> "SceneSpec":
        names = [a.name for a in self.assets]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"assets: duplicate asset names {sorted(dup)}")
        if not any(a.label for a in self.assets):
            raise ValueError("assets: at least one asset needs a class label")
        if len(self.categories) > 255:
            raise ValueError("assets: at most 255 class labels (semantic masks are 8-bit)")
        return self

    @property
    def categories(self) -> list[str]:
        """Class labels in order of first appearance; COCO category id = index + 1."""
        out: list[str] = []
        for a in self.assets:
            if a.label and a.label not in out:
                out.append(a.label)
        return out

    def content_hashes(self) -> set[str]:
        """sha256 of every external file the scene needs (meshes, label and background images)."""
        hashes: set[str] = set()
        for a in self.assets:
            if isinstance(a, MeshAsset):
                hashes.add(a.mesh)
            if a.material.label:
                hashes.update(a.material.label.images)
        if self.background.image:
            hashes.add(self.background.image)
        return hashes

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def spec_hash(self) -> str:
        """sha256 of the canonical JSON (sorted keys, no spaces): names this generator."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


_TAGS = {"box", "can", "bottle", "jar", "bag", "mesh", "shelf", "table"}


def _loc(loc: tuple[Any, ...]) -> str:
    """`('assets', 1, 'box', 'height')` -> `assets[1].height` (drops union tags and validator names)."""
    out, prev = "", None
    for p in loc:
        tag = isinstance(p, str) and p in _TAGS and (isinstance(prev, int) or prev == "layout")
        prev = p
        if tag or (isinstance(p, str) and p.startswith("function-")):
            continue
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(scene)"


def parse_scene(data: Any) -> SceneSpec:
    """Validate a dict (parsed JSON) into a SceneSpec; SceneError names the first bad field."""
    if not isinstance(data, dict):
        raise SceneError("scene: expected a JSON object")
    try:
        return SceneSpec.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        raise SceneError(f"{_loc(tuple(err['loc']))}: {msg}{more}") from None


def load_scene(path: str | Path) -> SceneSpec:
    """Read and validate a scene JSON file."""
    return parse_scene(read_json(path, "scene", SceneError))


def schema_text() -> str:
    return _schema_text(SceneSpec, "scene")


if __name__ == "__main__":  # regenerate resources/schemas/scene.schema.json
    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
