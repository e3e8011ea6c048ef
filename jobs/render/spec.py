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
from common.safejson import SPEC_LIMITS, SafeJsonError, loads_bounded

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


def _span(lo: float, hi: float, kind: type = float) -> Any:
    """A `[low, high]` pair with both ends within [lo, hi]; an error names the pair (the
    scene editor keys errors by field), never one end."""

    def check(v: tuple) -> tuple:
        if not all(lo <= x <= hi for x in v):
            raise ValueError(f"both ends must lie within [{lo:g}, {hi:g}]")
        return _ordered(v)

    return Annotated[tuple[kind, kind], AfterValidator(check)]


def _int_span(lo: int, hi: int) -> Any:
    return _span(lo, hi, int)


MAX_OBJECTS_PER_FRAME = 2000
"""Products a layout may place in one frame (upper bound from the spec; sampling stops there too)."""
MAX_DISTRACTORS = 200
MAX_FRAME_PIXELS = 4096 * 4096
MAX_SHARD_PIXELS = 1 << 35
"""Frames x pixels of one render job (about 110,000 frames at 640x480)."""
MAX_FRAMES = 10_000_000
SEED_MAX = 2**63 - 1

MESH_MIN_WIDTH_M = 0.01
"""A user mesh's width is unknown before it is loaded; budgets take it as at least this."""

Unit = Annotated[float, Field(ge=0.0, le=1.0)]
RGB = tuple[Unit, Unit, Unit]
Sha256 = Annotated[str, AfterValidator(_sha)]
UnitRange = _span(0.0, 1.0)
Size = _span(0.005, 5.0)
"""Product sizes (m): 5 mm to 5 m, so a layout's object count stays bounded."""
Angle = _span(-360.0, 360.0)
Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LabelSpec(_Model):
    """Label art wrapped onto a product: the box's front and back, the can's/bottle's/jar's
    band, the bag's front. Either user images (by content hash, PNG/JPEG) or generated art."""

    images: list[Sha256] = Field(default_factory=list, max_length=64, title="Label images", description="sha256 of PNG/JPEG label images; one is picked per object.")
    text: str | None = Field(None, max_length=24, title="Brand text", description="Text printed on generated labels (default: the asset's class name).")
    palette: list[RGB] = Field(default_factory=list, max_length=8, title="Palette", description="Colours for generated labels (default: drawn from the art seed).")
    art_seed: int = Field(0, ge=-(2**31), le=2**31 - 1, title="Art seed", description="Seed of the generated label art; fixed per asset so a class keeps its look across the dataset.")


class MaterialSpec(_Model):
    """Surface appearance, sampled per object and frame (colour multiplies the label art)."""

    color: tuple[RGB, RGB] = Field(((0.8, 0.8, 0.8), (0.8, 0.8, 0.8)), title="Colour range", description="Per-channel [low RGB, high RGB].")
    roughness: UnitRange = Field((0.6, 0.6), title="Roughness range")
    metalness: UnitRange = Field((0.0, 0.0), title="Metalness range")
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
    weight: float = Field(1.0, gt=0, le=1e6, title="Sampling weight", description="Relative frequency among assets placed by the layout.")


class PrimitiveAsset(_AssetBase):
    """A built-in retail shape. `width` is the diameter for can, bottle and jar."""

    kind: Literal["box", "can", "bottle", "jar", "bag"]
    width: Size = Field(..., title="Width range (m)")
    height: Size = Field(..., title="Height range (m)")
    depth: Size | None = Field(None, title="Depth range (m)", description="Box and bag only (default: the width).")
    cap_color: RGB = Field((0.9, 0.9, 0.9), title="Cap / lid colour", description="Bottle cap, jar lid, can ends.")


class MeshAsset(_AssetBase):
    """A user mesh (OBJ, GLB, STL or PLY) named by the sha256 of its file; scaled to `height`."""

    kind: Literal["mesh"]
    mesh: Sha256 = Field(..., title="Mesh file sha256")
    format: Literal["obj", "glb", "gltf", "stl", "ply"] | None = Field(None, title="File format", description="Default: detected from the file.")
    height: Size = Field(..., title="Height range (m)")
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
    gap: _span(0.0, 0.5) = Field((0.005, 0.02), title="Gap between facings (m)")
    depth_rows: int = Field(2, ge=1, le=10, title="Products per facing, front to back")
    fill_rate: UnitRange = Field((0.8, 1.0), title="Fill rate", description="Fraction of facing positions holding a product.")
    block_facings: _int_span(1, 50) = Field((1, 4), title="Facings per product block", description="Consecutive facings of the same product, as on a real shelf.")
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
    objects: _int_span(0, 500) = Field((5, 12), title="Objects per frame")
    placement: Literal["grid", "random"] = Field("random", title="Placement", description="random: no overlap; grid: a jittered grid.")
    position_jitter: float = Field(0.02, ge=0, le=1, title="Grid jitter (m)")
    yaw_deg: Angle = Field((-180.0, 180.0), title="Object yaw (deg)")
    table_material: MaterialSpec = Field(default_factory=lambda: MaterialSpec(color=((0.45, 0.3, 0.2), (0.65, 0.45, 0.3)), roughness=(0.5, 0.8)), title="Table material")


Layout = Annotated[Union[ShelfLayout, TableLayout], Field(discriminator="kind")]


class DistractorSpec(_Model):
    """Unlabelled clutter placed among the products (never annotated)."""

    count: _int_span(0, MAX_DISTRACTORS) = Field((0, 0), title="Distractors per frame")
    size: _span(0.005, 2.0) = Field((0.03, 0.1), title="Size (m)")
    color: tuple[RGB, RGB] = Field(((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), title="Colour range")


class BackgroundSpec(_Model):
    color: tuple[RGB, RGB] = Field(((0.55, 0.55, 0.58), (0.8, 0.8, 0.82)), title="Wall colour range")
    image: Sha256 | None = Field(None, title="Background image sha256", description="PNG/JPEG shown on the wall behind the scene.")


class CameraSpec(_Model):
    """Camera pose around the layout's centre: yaw turns left/right, pitch looks down (+)."""

    fov_deg: _span(1.0, 150.0) = Field((50.0, 60.0), title="Vertical field of view (deg)")
    distance: _span(0.05, 100.0) = Field((1.2, 1.8), title="Distance to the look-at point (m)")
    yaw_deg: Angle = Field((-15.0, 15.0), title="Yaw (deg)")
    pitch_deg: Angle = Field((-5.0, 15.0), title="Pitch (deg)")
    roll_deg: Angle = Field((-2.0, 2.0), title="Roll (deg)")
    look_at_jitter: float = Field(0.1, ge=0, le=5, title="Look-at jitter (m)")
    znear: float = Field(0.05, ge=1e-4, le=100, title="Near plane (m)")
    zfar: float = Field(20.0, gt=0, le=1e5, title="Far plane (m)")

    @model_validator(mode="after")
    def _planes(self) -> "CameraSpec":
        if self.znear >= self.zfar:
            raise ValueError("znear must be below zfar")
        return self


class LightSpec(_Model):
    count: _int_span(0, 4) = Field((1, 3), title="Lights per frame", description="At most 4 (pyrender lights at most 4 of a kind).")
    kinds: list[Literal["directional", "point", "spot"]] = Field(["directional", "point"], min_length=1, max_length=3, title="Light kinds")
    intensity: _span(0.0, 1e6) = Field((2.0, 5.0), title="Intensity", description="Directional: lux-like units; point/spot: candela-like (pyrender).")
    color_temperature_k: _span(1000.0, 40000.0) = Field((3500.0, 6500.0), title="Colour temperature (K)")
    ambient: _span(0.0, 10.0) = Field((0.25, 0.4), title="Ambient light level")
    shadows: bool = Field(False, title="Shadows (directional and spot)", description="A shadow pass per light and no occlusion culling: about 10x slower on a CPU renderer.")



class OutputSpec(_Model):
    width: int = Field(640, ge=16, le=4096, title="Image width (px)")
    height: int = Field(480, ge=16, le=4096, title="Image height (px)")
    count: int = Field(100, ge=1, le=MAX_FRAMES, title="Frames")
    seed: Seed = Field(0, title="Seed")
    rgb: bool = Field(True, title="RGB images")
    rgb_format: Literal["png", "jpg"] = Field("png", title="RGB format")
    jpg_quality: int = Field(92, ge=1, le=100, title="JPEG quality")
    depth: bool = Field(True, title="Depth (16-bit PNG, millimetres)")
    instance_mask: bool = Field(True, title="Instance masks (16-bit PNG)")
    semantic_mask: bool = Field(True, title="Semantic masks (8-bit PNG, category ids)")
    boxes: bool = Field(True, title="COCO boxes and RLE masks")
    min_visible_fraction: float = Field(0.25, ge=0, le=1, title="Visibility threshold", description="Objects less visible than this stay in metadata but get no box.")
    min_pixels: int = Field(16, ge=1, le=MAX_FRAME_PIXELS, title="Smallest box (visible pixels)")
    msaa: bool = Field(True, title="Anti-aliased RGB (masks never are)")


class PhotorealSpec(_Model):
    """Settings of the photoreal engine (Cycles path tracing; `engine: "photoreal"`)."""

    samples: int = Field(64, ge=1, le=4096, title="Samples per pixel", description="Path-tracing samples; more is smoother and slower.")
    denoise: bool = Field(True, title="Denoise (OpenImageDenoise)")
    sky: bool = Field(True, title="Procedural sky lighting", description="Blender's sky texture lights the scene (no downloaded HDRIs); off: a plain grey world.")


class RandomizationSpec(_Model):
    """Domain randomisation beyond layout, camera and lights: materials, sky and camera effects.

    Drawn per frame from their own RNG stream (a function of seed and frame only), so a
    scene without them renders the very same frames as before they existed."""

    color_jitter: float = Field(0.0, ge=0, le=0.5, title="Colour jitter", description="Per-channel gain drawn in [1 - j, 1 + j] per object.")
    roughness_jitter: float = Field(0.0, ge=0, le=0.5, title="Roughness jitter", description="Added to each object's roughness, drawn in [-j, j].")
    specular: UnitRange = Field((0.5, 0.5), title="Specular level range (photoreal)")
    exposure_ev: _span(-4.0, 4.0) = Field((0.0, 0.0), title="Exposure (EV)")
    noise_sigma: _span(0.0, 50.0) = Field((0.0, 0.0), title="Sensor noise (std dev, 0-255 scale)")
    blur_sigma: _span(0.0, 5.0) = Field((0.0, 0.0), title="Blur (Gaussian sigma, px)")
    jpeg_quality: _int_span(1, 100) | None = Field(None, title="JPEG artefacts (quality range)", description="The RGB passes through a JPEG encoder at a quality drawn here.")
    dof_fstop: _span(0.5, 64.0) | None = Field(None, title="Depth of field f-stop range (photoreal)", description="Focus on the look-at point; null: everything sharp.")
    sun_elevation_deg: _span(-10.0, 90.0) = Field((10.0, 60.0), title="Sun elevation (photoreal sky, deg)")
    turbidity: _span(1.7, 10.0) = Field((2.0, 5.0), title="Sky turbidity (photoreal sky)")
    sky_strength: _span(0.0, 20.0) = Field((1.0, 1.0), title="Sky strength (times the ambient level)")


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
    engine: Literal["fast", "photoreal"] = Field("fast", title="Render engine", description="fast: the GL rasterizer (about 200x cheaper); photoreal: Cycles path tracing (shadows, global illumination), for GPU rigs.")
    photoreal: PhotorealSpec = Field(default_factory=PhotorealSpec, title="Photoreal settings")
    randomization: RandomizationSpec = Field(default_factory=RandomizationSpec, title="Domain randomisation")

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
        n = self.max_objects_per_frame()
        if n > MAX_OBJECTS_PER_FRAME + MAX_DISTRACTORS:
            raise ValueError(f"layout: up to {n:,} objects per frame (the limit is {MAX_OBJECTS_PER_FRAME:,} products "
                             f"and {MAX_DISTRACTORS} distractors); use fewer rows, wider products or larger gaps")
        if self.outputs.width * self.outputs.height > MAX_FRAME_PIXELS:
            raise ValueError(f"outputs: {self.outputs.width} x {self.outputs.height} px is over {MAX_FRAME_PIXELS:,} px")
        return self

    def max_objects_per_frame(self) -> int:
        """Most objects (products + distractors) a frame of this scene can hold: a bound from
        the spec alone, for budgets and the work estimate (sampling never places more)."""
        lay = self.layout
        if isinstance(lay, ShelfLayout):
            narrowest = min(a.width[0] if isinstance(a, PrimitiveAsset) else MESH_MIN_WIDTH_M for a in self.assets)
            facings = int(max(0.0, lay.width - 0.02) // (narrowest + lay.gap[0])) + 1
            per_row = facings * lay.depth_rows if lay.placement == "grid" else min(facings, 1000)
            products = lay.rows * per_row
        else:
            products = lay.objects[1]
        return products + self.distractors.count[1]

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
        """Sorted keys, no spaces; the fields added after schema 1's first release (engine,
        photoreal, randomization) are left out while at their defaults, so every earlier
        scene keeps its hash."""
        data = self.model_dump(mode="json")
        for key, default in (("engine", "fast"), ("photoreal", PhotorealSpec().model_dump(mode="json")),
                             ("randomization", RandomizationSpec().model_dump(mode="json"))):
            if data.get(key) == default:
                data.pop(key)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

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


def with_outputs(spec: SceneSpec, *, count: int, seed: int | None = None,
                 size: tuple[int, int] | None = None) -> SceneSpec:
    """`spec` rendering `count` frames (and the seed and image size given), checked again."""
    data = spec.model_dump(mode="json")
    data["outputs"]["count"] = count
    if seed is not None:
        data["outputs"]["seed"] = int(seed)
    if size is not None:
        data["outputs"]["width"], data["outputs"]["height"] = int(size[0]), int(size[1])
    return parse_scene(data)


def load_scene(path: str | Path) -> SceneSpec:
    """Read and validate a scene JSON file (size and depth limited: common.safejson)."""
    return parse_scene(read_json(path, "scene", SceneError))


def parse_scene_bytes(data: bytes) -> SceneSpec:
    """A scene spec as published by a stranger (bytes): decoded within limits, then validated."""
    try:
        return parse_scene(loads_bounded(data, SPEC_LIMITS, what="scene"))
    except SafeJsonError as e:
        raise SceneError(str(e)) from None


class RenderParams(_Model):
    """`params` of a render job (one shard): the scene (unless an input named `scene` holds
    it) and which frames; `count` defaults to the scene's outputs.count - start."""

    scene: dict[str, Any] | None = Field(None, title="Scene", description="The scene spec as a JSON object.")
    start: int = Field(0, ge=0, le=MAX_FRAMES, title="First frame")
    count: int | None = Field(None, ge=1, le=MAX_FRAMES, title="Frames")
    seed: Seed | None = Field(None, title="Seed", description="Default: the scene's outputs.seed.")

    def frames(self, scene: SceneSpec) -> int:
        return self.count if self.count is not None else max(0, scene.outputs.count - self.start)


def parse_render_params(params: Any, scene: SceneSpec | None = None) -> tuple[RenderParams, SceneSpec]:
    """Validate a render job's params and its scene (`scene`: read from the job's input
    instead), including the shard's pixel budget; SceneError (one line) otherwise."""
    if not isinstance(params, dict):
        raise SceneError("params: expected a JSON object")
    try:
        rp = RenderParams.model_validate(params)
    except ValidationError as e:
        err = e.errors()[0]
        raise SceneError(f"params.{_loc(tuple(err['loc']))}: {err['msg'].removeprefix('Value error, ')}") from None
    if scene is None:
        if rp.scene is None:
            raise SceneError("render needs params.scene (a scene object) or an input named 'scene'")
        scene = parse_scene(rp.scene)
    check_shard_budget(scene, rp.frames(scene))
    return rp, scene


def check_shard_budget(scene: SceneSpec, frames: int) -> None:
    """Frames x pixels of one job within MAX_SHARD_PIXELS; SceneError naming both otherwise."""
    px = frames * scene.outputs.width * scene.outputs.height
    if px > MAX_SHARD_PIXELS:
        raise SceneError(f"params.count: {frames:,} frames of {scene.outputs.width} x {scene.outputs.height} px is "
                         f"{px:,} px (the limit per job is {MAX_SHARD_PIXELS:,} px); split the order into more shards")


def schema_text() -> str:
    return _schema_text(SceneSpec, "scene")


if __name__ == "__main__":  # regenerate resources/schemas/scene.schema.json
    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
