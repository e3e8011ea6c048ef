"""A settings form described as data, so any UI (the Qt dialog, a test) can show and apply it.

`sections()` lists the editable sections of `Settings` and their fields with the title,
description, kind of editor and bounds taken from the pydantic model; `apply()` validates
new values for one section and returns either the new section or the errors per field.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from app.forms.fields import bounds, unwrap_optional
from app.settings import Settings, is_hidden

Kind = Literal["bool", "choice", "int", "float", "text"]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    title: str
    description: str
    kind: Kind
    optional: bool = False
    """None is allowed (an empty text field means None)."""
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    warning: str = ""
    """A risk the form shows in plain sight beside the field, not only as its tooltip."""
    suffix: str = ""
    """The unit shown after the number (" %", " min", " W")."""
    scale: float = 1.0
    """Shown value = stored value x scale (a fraction shown as percent: 100)."""
    decimals: int | None = None
    """Digits after the point the editor shows (None: the editor's choice)."""


DISPLAY: dict[str, tuple[str, float, int]] = {
    "pool_fee": (" %", 100.0, 1),
    "away_minutes": (" min", 1.0, 0),
    "telemetry_interval_s": (" s", 1.0, 1),
    "cpu_power_w": (" W", 1.0, 0),
    "max_temp_c": (" °C", 1.0, 0),
    "electricity_usd_per_kwh": (" USD/kWh", 1.0, 3),
    "ntk_usd": (" USD", 1.0, 4),
    "max_output_mb": (" MB", 1.0, 0),
}
"""How a number reads in an editor: unit, scale and decimals (the stored value keeps its unit)."""


@dataclass(frozen=True)
class SectionSpec:
    name: str
    title: str
    description: str
    fields: tuple[FieldSpec, ...]


def _field_spec(name: str, field) -> FieldSpec | None:
    ann, optional = unwrap_optional(field.annotation)
    lo, hi = bounds(field.metadata)
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    # a risk shown in plain sight beside the field: its own text, or the description itself ("note")
    warning = str(extra.get("warning", "")) or (field.description or "" if extra.get("note") else "")
    common = dict(name=name, title=field.title or name, description=field.description or "", optional=optional,
                  warning=warning)
    if name in DISPLAY:
        common.update(zip(("suffix", "scale", "decimals"), DISPLAY[name]))
    if typing.get_origin(ann) is Literal:
        return FieldSpec(kind="choice", choices=tuple(str(a) for a in typing.get_args(ann)), **common)
    if ann is bool:
        return FieldSpec(kind="bool", **common)
    if ann is int:
        return FieldSpec(kind="int", minimum=lo, maximum=hi, **common)
    if ann is float:
        return FieldSpec(kind="float", minimum=lo, maximum=hi, **common)
    if ann is str:
        return FieldSpec(kind="text", **common)
    return None  # nested models and collections are edited elsewhere (devices: on their cards)


def sections() -> list[SectionSpec]:
    """The editable sections of the settings, in declaration order."""
    out = []
    for name, field in Settings.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        specs = [s for n, f in model.model_fields.items() if not is_hidden(f) and (s := _field_spec(n, f))]
        if specs:
            out.append(SectionSpec(name, field.title or name, field.description or "", tuple(specs)))
    return out


def values(settings: Settings, section: str) -> dict[str, Any]:
    return getattr(settings, section).model_dump()


def apply(settings: Settings, section: str, new_values: dict[str, Any]) -> tuple[BaseModel | None, dict[str, str]]:
    """Validate `new_values` for `section`. Returns (the new section, {}) or (None, {field: message}).

    Nothing in `settings` changes here; the caller assigns the section and saves.
    """
    current = getattr(settings, section)
    spec = {f.name: f for s in sections() if s.name == section for f in s.fields}
    data = current.model_dump()
    for k, v in new_values.items():
        if k not in spec:
            raise KeyError(f"{section}.{k} is not an editable setting")
        if spec[k].optional and isinstance(v, str) and not v.strip():
            v = None
        data[k] = v
    try:
        return type(current).model_validate(data), {}
    except ValidationError as e:
        errors: dict[str, str] = {}
        for err in e.errors():
            key = str(err["loc"][0]) if err["loc"] else ""
            errors.setdefault(key, err["msg"].removeprefix("Value error, "))
        return None, errors
