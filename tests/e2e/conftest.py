"""End-to-end fixtures: app contexts with their own folders, a tiny scene, file comparison."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "resources" / "scenes" / "table_top.json"
SHELF = ROOT / "resources" / "scenes" / "retail_shelf.json"
NTK = 10**18
TINY_TRAIN = {"arch": "centernet-xs", "epochs": 2, "batch": 4, "threads": 1, "val_fraction": 0.34}


def context(home: Path):
    from app.context import AppContext
    from app.paths import resolve_paths

    return AppContext.open(resolve_paths({"KMINER_HOME": str(home)}))


def tiny_scene(tmp: Path, path: Path = TABLE, count: int = 4) -> Path:
    data = json.loads(path.read_text())
    data["outputs"].update({"width": 96, "height": 72, "count": count})
    out = tmp / f"{data['name']}.json"
    out.write_text(json.dumps(data))
    return out


def tree_files(d: Path) -> dict[str, bytes]:
    """Every file under `d` (relative path -> bytes), dataset.json aside (it carries timings)."""
    out = {}
    for dirpath, _, files in os.walk(d):
        for f in files:
            p = Path(dirpath) / f
            rel = p.relative_to(d).as_posix()
            if rel != "dataset.json":
                out[rel] = p.read_bytes()
    return out


def stop(p: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    """Stop a process (`sig`, then SIGKILL after 30 s); its exit status."""
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode
