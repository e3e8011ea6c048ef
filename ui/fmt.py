"""Formatting of readings for display. A reading that is not a number (NVML's N/A
sentinel, None) shows as an en dash, never as 0."""

from __future__ import annotations

from typing import Any

DASH = "–"


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def num(v: Any, unit: str = "", digits: int = 0) -> str:
    if not is_number(v):
        return DASH
    text = f"{v:.{digits}f}"
    return f"{text} {unit}".rstrip() if unit not in ("%",) else f"{text}%"


def mem_gb(used_mb: Any, total_mb: Any) -> str:
    if not is_number(total_mb):
        return DASH
    total = f"{total_mb / 1024:.1f}"
    if not is_number(used_mb):
        return f"{DASH} / {total} GB"
    return f"{used_mb / 1024:.1f} / {total} GB"
