"""Fixtures for the packaging tests: the packaging/ scripts as importable modules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"


def _load(name: str, path: Path):
    for p in (str(PACKAGING), str(PACKAGING / "linux"), str(PACKAGING / "windows")):
        if p not in sys.path:
            sys.path.insert(0, p)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def manifest():
    return _load("bundle_manifest", PACKAGING / "bundle_manifest.py")


@pytest.fixture(scope="session")
def make_dist():
    return _load("make_dist", PACKAGING / "linux" / "make_dist.py")


@pytest.fixture(scope="session")
def win_resources():
    return _load("win_resources", PACKAGING / "windows" / "win_resources.py")


@pytest.fixture(scope="session")
def entry():
    return _load("kminer_entry", PACKAGING / "kminer_entry.py")


@pytest.fixture(scope="session")
def app_checks():
    return _load("package_test_app", PACKAGING / "linux" / "package_test_app.py")
