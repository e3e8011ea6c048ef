"""Device modes: `idle` (never mine), `mining` (always), `auto` (only while the user is away).

In `auto`, a device is active only when away-detection says the user *is* away; when it
cannot tell (Wayland, no display: `None`), the device stays idle: we never guess.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MODES", "IDLE", "MINING", "AUTO", "validate_mode", "is_active"]

IDLE: Final = "idle"
MINING: Final = "mining"
AUTO: Final = "auto"
MODES: Final = (IDLE, MINING, AUTO)


def validate_mode(mode: str) -> str:
    """`mode` if it is one of MODES, else ValueError naming the valid ones."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of: {', '.join(MODES)}")
    return mode


def is_active(mode: str, user_away: bool | None) -> bool:
    """Whether a device in `mode` should take work now. `user_away` None means unknown."""
    validate_mode(mode)
    if mode == MINING:
        return True
    if mode == AUTO:
        return user_away is True
    return False
