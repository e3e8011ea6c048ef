"""Small real renders shared by the render tests (EGL, 160x120, a few frames)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHELF = ROOT / "resources" / "scenes" / "retail_shelf.json"
TABLE = ROOT / "resources" / "scenes" / "table_top.json"


def small_scene(path: Path = SHELF, **outputs) -> dict:
    data = json.loads(path.read_text())
    data["outputs"].update({"width": 160, "height": 120, "count": 6, **outputs})
    return data


@pytest.fixture(scope="session")
def shelf_spec():
    from jobs.render.spec import parse_scene

    return parse_scene(small_scene())


@pytest.fixture(scope="session")
def full_run(tmp_path_factory, shelf_spec):
    """Frames 0..5 of the small shelf in one run."""
    from jobs.render.dataset import render_dataset

    out = tmp_path_factory.mktemp("render") / "full"
    render_dataset(shelf_spec, out, seed=3)
    return out
