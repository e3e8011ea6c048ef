"""EGL or OSMesa: the probes, OSMesa forced, and the automatic fallback when EGL fails.

Each render runs in its own `kminer render` process: PyOpenGL fixes its platform when it is
first imported, and this test process has EGL loaded already. EGL is made to fail for real
by pointing libglvnd at a vendor file that does not exist (no EGL driver can load).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from jobs.render import glprobe

from .conftest import small_scene

ROOT = Path(__file__).resolve().parents[2]

NO_EGL = {"__EGL_VENDOR_LIBRARY_FILENAMES": "/nonexistent/no-egl-vendor.json"}


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYOPENGL_PLATFORM", "__EGL_VENDOR_LIBRARY_FILENAMES")}
    return {**env, **extra}


def _probe(plat: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", glprobe.__file__, plat], env=env, capture_output=True, text=True, timeout=60, check=False)


def _render(tmp_path: Path, name: str, env: dict) -> tuple[subprocess.CompletedProcess, Path]:
    scene = tmp_path / "scene.json"
    if not scene.exists():
        scene.write_text(json.dumps(small_scene()))
    out = tmp_path / name
    p = subprocess.run([sys.executable, "-m", "cli", "render", str(scene), "--count", "1", "--seed", "3", "--out", str(out)],
                       env=env, capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    return p, out


def _same_frame_as_egl(out: Path, full_run: Path) -> None:
    """The OSMesa frame 0 is the EGL frame 0 up to anti-aliasing: same labels, close pixels."""
    a = np.asarray(Image.open(out / "images" / "000000.png")).astype(np.int64)
    b = np.asarray(Image.open(full_run / "images" / "000000.png")).astype(np.int64)
    assert a.shape == b.shape and a.std() > 20  # a picture, not a blank
    assert np.abs(a - b).mean() < 8.0
    ia = np.asarray(Image.open(out / "masks" / "instance" / "000000.png"))
    ib = np.asarray(Image.open(full_run / "masks" / "instance" / "000000.png"))
    assert (ia == ib).mean() > 0.99
    anns = json.loads((out / "annotations.json").read_text())["annotations"]
    egl_anns = [x for x in json.loads((full_run / "annotations.json").read_text())["annotations"] if x["image_id"] == 0]
    assert len(anns) > 5 and abs(len(anns) - len(egl_anns)) <= 1
    for ann in anns:  # boxes are tight around the instance mask
        ys, xs = np.nonzero(ia == ann["instance_id"])
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_probes_find_egl_and_osmesa_and_name_a_missing_egl():
    for plat in ("egl", "osmesa"):
        p = _probe(plat, _env())
        assert p.returncode == 0 and p.stdout.strip(), p.stderr
    p = _probe("egl", _env(**NO_EGL))
    assert p.returncode == 1 and "EGL" in p.stderr and not p.stdout
    assert _probe("osmesa", _env(**NO_EGL)).returncode == 0  # OSMesa does not go through glvnd


def test_forced_osmesa_renders_the_same_labelled_frame(tmp_path, full_run):
    p, out = _render(tmp_path, "osmesa", _env(PYOPENGL_PLATFORM="osmesa"))
    card = json.loads((out / "dataset.json").read_text())
    sw = card["software"]
    assert sw["gl_platform"] == "osmesa" and "gl_egl_error" not in sw 
    assert tuple(int(x) for x in sw["PyOpenGL"].split(".")[:3]) >= (3, 1, 5)
    assert "[osmesa]" in p.stdout
    _same_frame_as_egl(out, full_run)


def test_when_egl_fails_the_render_falls_back_to_osmesa_and_says_so(tmp_path, full_run):
    p, out = _render(tmp_path, "fallback", _env(PYOPENGL_PLATFORM="egl", **NO_EGL))
    sw = json.loads((out / "dataset.json").read_text())["software"]
    assert sw["gl_platform"] == "osmesa" and "EGL device" in sw["gl_egl_error"]
    assert "[osmesa]" in p.stdout and "rendering with OSMesa" in p.stderr
    _same_frame_as_egl(out, full_run)


def test_a_frozen_bundle_probes_in_a_child_through_its_entry(monkeypatch):
    """Frozen, there is no `python glprobe.py`: the probe runs as `kminer -c CODE PLAT`, which
    the bundle's entry (packaging/kminer_entry.py) executes; here that entry runs as frozen."""
    from jobs.render.renderer import probe_command

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    cmds = {plat: probe_command(plat) for plat in ("egl", "osmesa")}
    monkeypatch.undo()
    assert cmds["egl"][:2] == [sys.executable, "-c"] and cmds["egl"][-1] == "egl"
    as_frozen = ("import runpy, sys; sys.frozen = True; sys.argv = ['kminer', *sys.argv[1:]]; "
                 "runpy.run_path('packaging/kminer_entry.py', run_name='__main__')")
    for plat, env, rc in (("egl", _env(), 0), ("osmesa", _env(), 0), ("egl", _env(**NO_EGL), 1)):
        p = subprocess.run([sys.executable, "-c", as_frozen, *cmds[plat][1:]], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60, check=False)
        assert p.returncode == rc, p.stderr
        assert bool(p.stdout.strip()) == (rc == 0) and (rc == 0 or "EGL" in p.stderr)
