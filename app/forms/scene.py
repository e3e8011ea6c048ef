"""The scene editor's form, described as data from the SceneSpec pydantic model (no Qt).

`fields(model)` lists a model's fields with the title, description, kind of editor and bounds
taken from the model, so the editor builds its forms from the spec itself and a new spec
field shows up without UI code. `errors(data)` validates a scene dict and returns every
error keyed by the editor path it belongs to (`layout.rows`, `assets[1].material.color`).
Also: new scenes and assets, and loading/saving spec files (atomic, assets carried along).
"""

from __future__ import annotations

import json
import re
import shutil
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from app.forms.fields import bounds, unwrap_optional
from app.runtime import asset_dir_for
from common.fsutil import atomic_write_text
from jobs.render import spec as scene

Kind = Literal["bool", "choice", "int", "float", "text", "multiline", "range", "int_range", "rgb", "rgb_range", "rgb_list",
               "multi_choice", "file", "files", "group"]

PRIMITIVE_KINDS = ("box", "can", "bottle", "jar", "bag")
MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".stl", ".ply")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SECTIONS = {  # tab title -> top-level fields it edits
    "Scene": ("name", "description"),
    "Layout": ("layout",),
    "Camera": ("camera",),
    "Lights": ("lights",),
    "Room": ("background", "distractors"),
    "Outputs": ("outputs",),
    "Engine": ("engine", "photoreal", "randomization"),  # fast GL or photoreal Cycles, domain randomisation
}


@dataclass(frozen=True)
class FieldInfo:
    name: str
    title: str
    description: str
    kind: Kind
    optional: bool = False  # None allowed (an empty editor / unchecked group means None)
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    model: type[BaseModel] | None = None  # for "group"
    hidden: bool = False  # the discriminator `kind` and the schema version: not edited in forms


def _base(tp: Any) -> tuple[Any, list]:
    """(the type under Annotated, its metadata)."""
    if typing.get_origin(tp) is typing.Annotated:
        args = typing.get_args(tp)
        return args[0], list(args[1:])
    return tp, []


def _is_sha(metadata) -> bool:
    return any(getattr(getattr(m, "func", None), "__name__", "") == "_sha" for m in metadata)


def _is_rgb(tp: Any) -> bool:
    tp, _ = _base(tp)
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 3 and all(_base(a)[0] is float for a in args)


def field_info(name: str, f) -> FieldInfo | None:
    ann, optional = unwrap_optional(f.annotation)
    ann, extra = _base(ann)
    meta = list(f.metadata) + extra
    lo, hi = bounds(meta)
    common: dict[str, Any] = {"name": name, "title": f.title or name, "description": f.description or "", "optional": optional}
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if name in ("kind", "schema_version"):
        return FieldInfo(kind="choice", choices=tuple(str(a) for a in args), hidden=True, **common)
    if origin is Literal:
        return FieldInfo(kind="choice", choices=tuple(str(a) for a in args), **common)
    if ann is bool:
        return FieldInfo(kind="bool", **common)
    if ann is int:
        return FieldInfo(kind="int", minimum=lo, maximum=hi, **common)
    if ann is float:
        return FieldInfo(kind="float", minimum=lo, maximum=hi, **common)
    if ann is str:
        if _is_sha(meta):
            common["title"] = common["title"].replace(" sha256", "")
            return FieldInfo(kind="file", **common)
        return FieldInfo(kind="multiline" if name == "description" else "text", **common)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return FieldInfo(kind="group", model=ann, **common)
    if origin is tuple and len(args) == 2:
        a0 = _base(args[0])[0]
        if a0 is float:
            return FieldInfo(kind="range", **common)
        if a0 is int:
            return FieldInfo(kind="int_range", **common)
        if _is_rgb(args[0]):
            return FieldInfo(kind="rgb_range", **common)
    if _is_rgb(ann):
        return FieldInfo(kind="rgb", **common)
    if origin is list and args:
        inner, inner_meta = _base(args[0])
        if typing.get_origin(inner) is Literal:
            return FieldInfo(kind="multi_choice", choices=tuple(str(a) for a in typing.get_args(inner)), **common)
        if inner is str and _is_sha(inner_meta):
            return FieldInfo(kind="files", **common)
        if _is_rgb(args[0]):
            return FieldInfo(kind="rgb_list", **common)
    return None  # assets (the list panel) and the layout union are edited by their own widgets


def fields(model: type[BaseModel], parent: type[BaseModel] | None = None) -> list[FieldInfo]:
    """The editable fields of `model` (nested in `parent`), in declaration order. Only a
    built-in shape's material has a label texture (the renderer wraps labels on those alone)."""
    skip = {"label"} if model is scene.MaterialSpec and parent is not scene.PrimitiveAsset else set()
    return [fi for n, f in model.model_fields.items() if n not in skip and (fi := field_info(n, f)) is not None]


def scene_model() -> type[BaseModel]:
    return scene.SceneSpec


def single_group(names: tuple[str, ...]) -> FieldInfo | None:
    """The one nested model a section edits (Camera, Lights, Outputs), else None."""
    if len(names) != 1:
        return None
    fi = field_info(names[0], scene.SceneSpec.model_fields[names[0]])
    return fi if fi is not None and fi.kind == "group" else None


def layout_model(kind: str) -> type[BaseModel]:
    return scene.TableLayout if kind == "table" else scene.ShelfLayout


def asset_model(kind: str) -> type[BaseModel]:
    return scene.MeshAsset if kind == "mesh" else scene.PrimitiveAsset


def default_of(model: type[BaseModel], **required) -> dict:
    """A model's defaults as JSON data (plus the required fields given)."""
    return model(**required).model_dump(mode="json")


def json_value(v: Any) -> Any:
    """A default value as JSON data (tuples become lists, models dicts)."""
    if isinstance(v, BaseModel):
        return v.model_dump(mode="json")
    if isinstance(v, (tuple, list)):
        return [json_value(x) for x in v]
    return v


def default_layout(kind: str) -> dict:
    return default_of(layout_model(kind), kind=kind)


_SIZES = {"box": ((0.12, 0.16), (0.18, 0.24), (0.05, 0.07)), "can": ((0.065, 0.067), (0.115, 0.123), None),
          "bottle": ((0.07, 0.075), (0.23, 0.26), None), "jar": ((0.075, 0.085), (0.1, 0.115), None),
          "bag": ((0.16, 0.19), (0.22, 0.26), (0.06, 0.08))}


def unique_name(base: str, taken: list[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "_", base).strip("_")[:48] or "asset"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def new_primitive(kind: str, taken: list[str]) -> dict:
    w, h, d = _SIZES[kind]
    name = unique_name(kind, taken)
    data = {"name": name, "label": name, "kind": kind, "width": list(w), "height": list(h),
            "material": {"color": [[0.85, 0.85, 0.85], [1.0, 1.0, 1.0]], "roughness": [0.4, 0.6], "label": {"text": name.upper()[:24]}}}
    if d is not None:
        data["depth"] = list(d)
    return data


def new_mesh(stem: str, sha256: str, suffix: str, taken: list[str]) -> dict:
    name = unique_name(stem, taken)
    fmt = suffix.lower().lstrip(".")
    return {"name": name, "label": name, "kind": "mesh", "mesh": sha256, "format": fmt if f".{fmt}" in MESH_SUFFIXES else None,
            "height": [0.15, 0.2], "up_axis": "y", "material": {"color": [[0.8, 0.8, 0.8], [1.0, 1.0, 1.0]]}}


def new_scene() -> dict:
    """A small valid scene to start from: one shelf, three product kinds."""
    return {"schema_version": scene.SCHEMA_VERSION, "name": "new-scene", "description": "",
            "assets": [new_primitive("box", []), new_primitive("can", ["box"]), new_primitive("bottle", ["box", "can"])],
            "layout": default_layout("shelf")}


# ---------------------------------------------------------------------------- validation
_TAGS = {"box", "can", "bottle", "jar", "bag", "mesh", "shelf", "table"}


def _path(loc: tuple) -> str:
    out, prev = "", None
    for p in loc:
        skip = (isinstance(p, str) and p in _TAGS and (isinstance(prev, int) or prev == "layout")) or \
            (isinstance(p, str) and p.startswith(("function-", "tagged-union")))
        prev = p
        if skip:
            continue
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _model_at(data: dict, path: str) -> type[BaseModel] | None:
    model: Any = scene.SceneSpec
    node: Any = data
    for part in re.findall(r"[A-Za-z_]\w*|\[\d+\]", path):
        if part.startswith("["):
            node = node[int(part[1:-1])] if isinstance(node, list) and int(part[1:-1]) < len(node) else {}
            model = asset_model(node.get("kind", "box") if isinstance(node, dict) else "box")
            continue
        node = node.get(part, {}) if isinstance(node, dict) else {}
        if part == "layout":
            model = layout_model(node.get("kind", "shelf") if isinstance(node, dict) else "shelf")
            continue
        fi = field_info(part, model.model_fields[part]) if model and part in model.model_fields else None
        model = fi.model if fi is not None and fi.kind == "group" else None
    return model


def errors(data: Any) -> dict[str, str]:
    """Every validation error of a scene dict: {editor path: message}; {} when valid.

    A model-level message that starts with one of that model's field names
    ("znear must be below zfar") is moved to that field."""
    if not isinstance(data, dict):
        return {"": "scene: expected a JSON object"}
    try:
        scene.SceneSpec.model_validate(data)
    except ValidationError as e:
        out: dict[str, str] = {}
        for err in e.errors():
            path = _path(tuple(err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            m = re.match(r"([a-z_]+)\b:?\s*(.*)", msg)
            model = _model_at(data, path) if err["type"] == "value_error" else None
            if m and model is not None and m.group(1) in model.model_fields:
                path = f"{path}.{m.group(1)}" if path else m.group(1)
            out.setdefault(path, msg)
        return out
    return {}


def first_error(errs: dict[str, str]) -> str | None:
    if not errs:
        return None
    k, v = next(iter(errs.items()))
    return f"{k or 'scene'}: {v}"


# ---------------------------------------------------------------------------- files
class SceneFileError(ValueError):
    """A spec file could not be read or written; one line."""


def load_file(path: str | Path) -> dict:
    """A spec file's JSON data (not validated: the editor shows the errors at their fields)."""
    from common.boundedfile import BoundedReadError, read_bounded
    from common.safejson import SPEC_LIMITS, SafeJsonError, loads_bounded

    p = Path(path)
    try:  # a scene file may come from anyone: capped, and decoded with a depth limit
        data = loads_bounded(read_bounded(p, SPEC_LIMITS.max_bytes, what="scene file", follow_symlinks=True),
                             SPEC_LIMITS, what="scene")
    except BoundedReadError as e:
        raise SceneFileError(f"{p.name}: cannot read ({str(e).split(': ', 1)[-1]})") from None
    except SafeJsonError as e:
        raise SceneFileError(f"{p.name}: not a JSON file ({e})") from None
    if not isinstance(data, dict):
        raise SceneFileError(f"{p.name}: expected a JSON object (a scene spec)")
    return data


def save_file(data: dict, path: str | Path, *, old_path: str | Path | None, scenes_dir: str | Path) -> Path:
    """Write `data` to `path` atomically (indented JSON) and copy the user files it names into
    the new asset folder when the spec moves to another folder. Returns the path."""
    p = Path(path)
    if p.suffix.lower() != ".json":
        p = p.with_suffix(".json")
    src, dst = asset_dir_for(old_path, scenes_dir), asset_dir_for(p, scenes_dir)
    try:
        if src.resolve() != dst.resolve() and src.is_dir():
            wanted = set()
            try:
                wanted = scene.parse_scene(data).content_hashes()
            except scene.SceneError:
                pass
            for f in src.iterdir():
                if f.stem in wanted and not (dst / f.name).exists():
                    dst.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, dst / f.name)
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(p, json.dumps(data, indent=2) + "\n")
    except OSError as e:
        raise SceneFileError(f"{p.name}: cannot save ({e.strerror or e})") from None
    return p
