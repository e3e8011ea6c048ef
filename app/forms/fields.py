"""Reading a pydantic field's annotation for a generated form (settings, scene editor):
whether None is allowed, and the numeric bounds its constraints set. Pure."""

from __future__ import annotations

import types
import typing
from typing import Any

import annotated_types


def unwrap_optional(ann: Any) -> tuple[Any, bool]:
    """(`X`, True) for `X | None` / `Optional[X]`; (`ann`, False) otherwise."""
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return ann, False


def bounds(metadata) -> tuple[float | None, float | None]:
    """(lower, upper) from ge/gt/le/lt constraints (also those of a FieldInfo inside Annotated)."""
    lo = hi = None
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            lo = float(m.ge)
        elif isinstance(m, annotated_types.Gt):
            lo = float(m.gt)
        elif isinstance(m, annotated_types.Le):
            hi = float(m.le)
        elif isinstance(m, annotated_types.Lt):
            hi = float(m.lt)
        for sub in getattr(m, "metadata", []) or []:
            a, b = bounds([sub])
            lo, hi = (a if a is not None else lo), (b if b is not None else hi)
    return lo, hi
