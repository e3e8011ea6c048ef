"""Modes: auto mines only when the user is known to be away."""

from __future__ import annotations

import pytest

from gpu.modes import is_active, validate_mode


@pytest.mark.parametrize("mode, away, active", [
    ("idle", True, False), ("idle", None, False), ("mining", False, True), ("mining", None, True),
    ("auto", True, True), ("auto", False, False), ("auto", None, False),
])
def test_is_active(mode, away, active):
    assert is_active(mode, away) is active


def test_unknown_mode_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="idle, mining, auto"):
        validate_mode("turbo")
