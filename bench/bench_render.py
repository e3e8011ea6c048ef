"""Benchmark: the render engine's labelled frames/s against a bare pyrender loop, same scene, same run.

    .venv/bin/python bench/bench_render.py [--scene resources/scenes/retail_shelf.json]
        [--frames 20] [--size 320x240] [--repeats 2] [--json]

Figures (frames per second; the first frame, which compiles shaders and uploads the
scene, is left out of every figure; later frames may still grow the object pools, in all
three alike):
- bare_static: `OffscreenRenderer.render(scene)` of one posed frame, again and again
  (RGB + depth read back; nothing moves, nothing labelled, nothing written).
- bare_posed: each frame posed (`SceneRenderer.apply`) then `render` (the loop any
  pyrender user writes, minus labels and files).
- engine: `render_dataset` end to end: posing, RGB, id/depth/silhouette passes, boxes,
  RLE, visibility, PNG encoding and file writes (on writer threads), metadata.
- engine_gl: the engine's GL thread alone (`SceneRenderer.render`: posing, occlusion-culled
  RGB, id/depth/silhouette passes), i.e. the rate when the writers have cores of their own.
The runs alternate (bare, engine, bare, engine...) so that load from other processes on
the machine hits both alike; the median of the repeats is reported. Goal: engine >= 0.9x
bare_posed. The bare loops run in a child process with stock pyrender
(KMINER_RENDER_PLAIN_PYRENDER=1: no uniform-location cache), as a pyrender user has it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _bare(spec, frames: int) -> tuple[float, float]:
    from jobs.render.library import build_library
    from jobs.render.renderer import SceneRenderer
    from jobs.render.sampling import sample_frame

    lib = build_library(spec)
    infos = [g.info for g in lib]
    samples = [sample_frame(spec, infos, spec.outputs.seed, i) for i in range(frames + 1)]
    r = SceneRenderer(spec, lib)
    try:
        r.apply(samples[0])
        r.render_color()  # warm-up: shaders, uploads (frames 1.. may still grow the pools, as in the engine)
        t = time.perf_counter()
        for _ in range(frames):
            r.render_color()
        static = frames / (time.perf_counter() - t)
        t = time.perf_counter()
        for fs in samples[1:]:
            r.apply(fs)
            r.render_color()
        posed = frames / (time.perf_counter() - t)
    finally:
        r.close()
    return static, posed


def _bare_child(scene: Path, size: str, frames: int) -> tuple[float, float]:
    env = dict(os.environ, KMINER_RENDER_PLAIN_PYRENDER="1")
    p = subprocess.run([sys.executable, __file__, "--scene", str(scene), "--size", size, "--frames", str(frames), "--bare-only"],
                       env=env, capture_output=True, text=True, check=True)
    r = json.loads(p.stdout)
    return r["static"], r["posed"]


def _engine_gl(spec, frames: int) -> float:
    from jobs.render.library import build_library
    from jobs.render.renderer import SceneRenderer
    from jobs.render.sampling import sample_frame

    lib = build_library(spec)
    infos = [g.info for g in lib]
    samples = [sample_frame(spec, infos, spec.outputs.seed, i) for i in range(frames + 1)]
    r = SceneRenderer(spec, lib)
    try:
        r.render(samples[0])  # warm-up, as in _bare and the engine
        t = time.perf_counter()
        for fs in samples[1:]:
            r.render(fs)
        return frames / (time.perf_counter() - t)
    finally:
        r.close()


def _engine(spec, frames: int) -> float:
    from jobs.render.dataset import render_dataset

    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        render_dataset(spec, Path(d) / "ds", count=frames + 1, progress=lambda k, n, m: stamps.append(time.perf_counter()))
        end = time.perf_counter()  # includes draining the writers and annotations.json
    return frames / (end - stamps[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, default=ROOT / "resources" / "scenes" / "retail_shelf.json")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--bare-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    from jobs.render.renderer import select_gl_platform

    plat = select_gl_platform()
    from jobs.render.spec import load_scene

    w, h = (int(v) for v in a.size.split("x"))
    spec = load_scene(a.scene)
    spec = spec.model_copy(update={"outputs": spec.outputs.model_copy(update={"width": w, "height": h})})
    if a.bare_only:
        s, p = _bare(spec, a.frames)
        print(json.dumps({"static": s, "posed": p}))
        return 0
    static, posed, engine, gl = [], [], [], []
    for _ in range(a.repeats):
        s, p = _bare_child(a.scene, a.size, a.frames)
        static.append(s)
        posed.append(p)
        engine.append(_engine(spec, a.frames))
        gl.append(_engine_gl(spec, a.frames))
    res = {
        "scene": spec.name, "size": a.size, "frames": a.frames, "repeats": a.repeats, "gl_platform": plat["platform"],
        "bare_static_fps": round(statistics.median(static), 3), "bare_posed_fps": round(statistics.median(posed), 3),
        "engine_fps": round(statistics.median(engine), 3), "engine_gl_fps": round(statistics.median(gl), 3),
        "all": {"bare_static": [round(v, 3) for v in static], "bare_posed": [round(v, 3) for v in posed], "engine": [round(v, 3) for v in engine],
                "engine_gl": [round(v, 3) for v in gl]},
    }
    res["engine_vs_bare_posed"] = round(res["engine_fps"] / res["bare_posed_fps"], 3)
    res["engine_vs_bare_static"] = round(res["engine_fps"] / res["bare_static_fps"], 3)
    res["engine_gl_vs_bare_posed"] = round(res["engine_gl_fps"] / res["bare_posed_fps"], 3)
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{res['scene']} {a.size}, {a.frames} frames x {a.repeats} [{plat['platform']}]")
        print(f"  bare pyrender, static scene : {res['bare_static_fps']:.2f} frames/s")
        print(f"  bare pyrender, posed frames : {res['bare_posed_fps']:.2f} frames/s")
        print(f"  engine (labels + PNG + meta): {res['engine_fps']:.2f} frames/s = {res['engine_vs_bare_posed']:.2f}x posed, "
              f"{res['engine_vs_bare_static']:.2f}x static")
        print(f"  engine GL thread only       : {res['engine_gl_fps']:.2f} frames/s = {res['engine_gl_vs_bare_posed']:.2f}x posed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
