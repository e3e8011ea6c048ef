"""`kminer self-test`: checks an install works (imports, one EGL render, settings round-trip).

Each check runs on its own; heavy ones (rendering) run in a child process so a crash there
is reported as a failed check, not a dead self-test. Exit 0 only if every check passes.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from app.context import AppContext
from app.settings import Settings, SettingsStore

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).

_RENDER_ONE_FRAME = r"""
import json, os, sys, time
if sys.platform.startswith("linux"):
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
t = time.perf_counter()
import numpy as np, pyrender, trimesh
scene = pyrender.Scene(bg_color=[0, 0, 0, 1.0], ambient_light=[0.3, 0.3, 0.3])
scene.add(pyrender.Mesh.from_trimesh(trimesh.creation.box(extents=[1, 1, 1])))
pose = np.eye(4); pose[2, 3] = 3.0
scene.add(pyrender.PerspectiveCamera(yfov=0.8), pose=pose)
scene.add(pyrender.DirectionalLight(intensity=3.0), pose=pose)
r = pyrender.OffscreenRenderer(64, 48)
color, depth = r.render(scene)
r.delete()
covered = float((depth > 0).mean())
print(json.dumps({"platform": os.environ.get("PYOPENGL_PLATFORM", "native"), "covered": covered,
                  "ms": (time.perf_counter() - t) * 1000}))
"""


def _check_imports() -> str:
    mods = ["cli", "app", "gpu", "jobs", "wallet", "common", "ui", "PySide6.QtWidgets", "pydantic", "platformdirs", "psutil"]
    for m in mods:
        importlib.import_module(m)
    return f"{len(mods)} modules"


def _check_settings() -> str:
    with tempfile.TemporaryDirectory() as d:
        store = SettingsStore(Path(d) / "settings.json")
        s = Settings()
        s.device("cpu").mode = "auto"
        store.save(s)
        back = store.load()
        if back.message or back.settings != s:
            raise RuntimeError("settings changed on a save/load round-trip")
    return "save/load round-trip"


def _check_render() -> str:
    if getattr(sys, "frozen", False):  # a bundle has no `-c`: render in this process

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(_RENDER_ONE_FRAME, "<self-test render>", "exec"), {})
        out = buf.getvalue()
    else:
        env = dict(os.environ)
        if sys.platform.startswith("linux"):  # Windows/macOS: pyrender's own (pyglet) platform
            env.setdefault("PYOPENGL_PLATFORM", "egl")
        p = subprocess.run([sys.executable, "-c", _RENDER_ONE_FRAME], capture_output=True, text=True,
                           timeout=120, env=env)
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"render process failed: {last}")
        out = p.stdout
    res = json.loads(out.strip().splitlines()[-1])
    if not 0.05 < res["covered"] < 0.95:
        raise RuntimeError(f"rendered frame looks wrong (object covers {res['covered']:.0%})")
    return f"{res['platform'].upper()} frame in {res['ms']:.0f} ms"


def _check_devices() -> str:
    from app.devices import DeviceService

    svc = DeviceService(AppContext.open())
    try:
        names = [s.info.name for s in svc.poll()]
    finally:
        svc.close()
    return ", ".join(names) + (f" ({svc.message})" if svc.message else "")


CHECKS: list[tuple[str, Callable[[], str]]] = [
    ("imports", _check_imports),
    ("settings", _check_settings),
    ("devices", _check_devices),
    ("render", _check_render),
]


def run(args: argparse.Namespace) -> int:
    results = []
    for name, fn in CHECKS:
        t = time.perf_counter()
        try:
            detail, ok = fn(), True
        except Exception as e:  # each check reports its own failure in one line
            detail, ok = f"{type(e).__name__}: {e}", False
        results.append({"check": name, "ok": ok, "detail": detail, "ms": round((time.perf_counter() - t) * 1000)})
    if args.json:
        print(json.dumps({"ok": all(r["ok"] for r in results), "checks": results}, indent=2))
    else:
        for r in results:
            print(f"{'PASS' if r['ok'] else 'FAIL'}  {r['check']:<9} {r['detail']}  ({r['ms']} ms)")
    return 0 if all(r["ok"] for r in results) else 1


def register(sub) -> None:
    p = sub.add_parser("self-test", help="check that this install works (imports, EGL render, settings)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(handler=run)
