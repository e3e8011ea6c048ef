"""Test-wide set-up: offscreen Qt, an isolated KMINER_HOME per test, a file keyring."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"

import pytest


@pytest.fixture(autouse=True)
def kminer_home(tmp_path, monkeypatch):
    """Every test gets its own app folders, so nothing touches the real user's files."""
    home = tmp_path / "kminer-home"
    monkeypatch.setenv("KMINER_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # keyrings.alt's file lives here
    return home
