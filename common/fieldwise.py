"""Validating a pydantic model field by field: a bad field falls back to its default alone.

One bad value in a settings file (`jobs.cpu_slots: "many"`) used to send the whole file aside
and every other setting back to its default (the devnet RPC URL too, so a command quietly
answered from another chain). `validate_fieldwise` drops only the fields that fail, so they
take their defaults, and reports each as a `Fallback` line; a field named in `protected` (what
chooses the network, where keys live...) never falls back: it raises `FieldwiseError`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Iterable, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class FieldwiseError(ValueError):
    """A field that may not fall back (or an error no default can mend); one line."""


@dataclass(frozen=True)
class Fallback:
    """A field that failed validation and took its default."""

    path: str
    reason: str

    def line(self, what: str = "settings") -> str:
        return f"{what}: {self.path} {self.reason}; using its default"


def _path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _drop(data: Any, loc: tuple[Any, ...]) -> bool:
    """Remove the deepest dict key along `loc` that `data` holds; False when there is none."""
    node, parent_key, parent = data, None, None
    for key in loc:
        if isinstance(node, dict) and key in node:
            parent, parent_key, node = node, key, node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]  # a bad list item: the whole list falls back (parent_key stays the list's)
            break
        else:
            break
    if parent is None:
        return False
    del parent[parent_key]
    return True


def validate_fieldwise(model: type[M], data: Any, *, protected: Iterable[str] = (),
                       max_fallbacks: int = 100) -> tuple[M, tuple[Fallback, ...]]:
    """`model` from `data` (a dict, not changed), every failing field at its default.

    `protected`: dotted paths ("wallet", "wallet.rpc_url") whose failure raises
    `FieldwiseError` instead. Raises `FieldwiseError` too when an error is not a field's (a
    model-level check, a missing required field) or more than `max_fallbacks` fields fail."""
    if not isinstance(data, dict):
        raise FieldwiseError("the top level is not an object")
    data = copy.deepcopy(data)
    guarded = tuple(protected)
    fallbacks: list[Fallback] = []
    while True:
        try:
            return model.model_validate(data), tuple(fallbacks)
        except ValidationError as e:
            err = e.errors()[0]
        loc, msg = tuple(err["loc"]), err["msg"].removeprefix("Value error, ")
        where = _path(loc)
        if any(where == p or where.startswith(p + ".") for p in guarded):
            raise FieldwiseError(f"{where}: {msg} (this setting never falls back to a default)")
        if err["type"] == "missing" or len(fallbacks) >= max_fallbacks or not _drop(data, loc):
            raise FieldwiseError(f"{where}: {msg}")
        fallbacks.append(Fallback(where, msg[:120]))
