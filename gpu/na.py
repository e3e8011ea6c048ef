"""`NA`: the one value for a reading the hardware does not report (nvitop's habit).

`NA` is falsy, prints as "N/A", formats as "N/A" whatever the format spec, pickles back to
the same singleton, and is never equal to a number, so a missing reading can never pass
for 0. `to_json` turns it into None for JSON output.
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["NA", "NAType", "is_na", "na_to_none"]

T = TypeVar("T")


class NAType:
    """The type of `NA`; there is exactly one instance."""

    _instance: "NAType | None" = None
    __slots__ = ()

    def __new__(cls) -> "NAType":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NA"

    def __str__(self) -> str:
        return "N/A"

    def __format__(self, spec: str) -> str:
        return "N/A"

    def __reduce__(self) -> str:
        return "NA"

    def __copy__(self) -> "NAType":
        return self

    def __deepcopy__(self, memo: dict) -> "NAType":
        return self


NA = NAType()


def is_na(value: Any) -> bool:
    return value is NA


def na_to_none(value: T | NAType) -> T | None:
    """`None` for NA, the value otherwise (for JSON)."""
    return None if value is NA else value  # type: ignore[return-value]
