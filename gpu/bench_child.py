"""Benchmark child process: `python -m gpu.bench_child --device cpu|cuda:N [--quick]`.

Prints one JSON object on stdout:
  {"device": "cpu", "timestamp": ISO-8601 UTC, "quick": bool,
   "load_avg_1m": float (Unix), "matmul": {"gflops": float, "runs": [float, ...], "n": int, "dtype": "float32",
                                           "iterations": int, "seconds": float} or {"error": "..."},
   "render": {"fps": float, "runs": [float, ...], "width": 640, "height": 480, "frames": int, "seconds": float,
              "renderer": GL_RENDERER string, "passes": "rgb+depth, segmentation"} or {"error": "..."},
   "photoreal": {"fps": float (Cycles 640x480 frames/s at 64 samples, scaled from a smaller
                 render), "runs", "width", "height", "samples", "renderer"} or {"error": "..."}
                 (only when the optional bpy is installed)}
Each part is measured in ROUNDS timed runs after one warm-up; its figure is their median and
`runs` holds each (gpu.bench warns when they disagree by more than 20%).
render fps counts labelled frames: each frame is a colour+depth render plus a segmentation
pass of a small scene (a floor, boxes and cylinders) whose poses change every frame.
Exit code 0 when at least one part ran, 1 when both failed. torch and pyrender are only
ever imported here, never in the process that asks for the benchmark.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from typing import Any

WIDTH, HEIGHT = 640, 480
ROUNDS = 3
"""Timed runs per part; the figure is their median."""


def bench_matmul(device: str, seconds: float, n: int) -> dict[str, Any]:
    """fp32 matmul throughput in GFLOP/s (2*n^3 flops per n x n product), time-boxed."""
    import torch

    dev = torch.device(device)
    a = torch.randn(n, n, device=dev, dtype=torch.float32)
    b = torch.randn(n, n, device=dev, dtype=torch.float32)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    (a @ b).sum().item()  # warm-up: allocations, kernels, thread pool
    sync()
    runs, total_iters, total_s = [], 0, 0.0
    for _ in range(ROUNDS):
        iters = 0
        t0 = time.perf_counter()
        while True:
            c = a @ b
            iters += 1
            if iters % 4 == 0 or dev.type == "cpu":
                sync()
                if time.perf_counter() - t0 >= seconds / ROUNDS:
                    break
        sync()
        del c
        dt = time.perf_counter() - t0
        runs.append(round(2.0 * n ** 3 * iters / dt / 1e9, 2))
        total_iters, total_s = total_iters + iters, total_s + dt
    return {"gflops": statistics.median(runs), "runs": runs, "n": n, "dtype": "float32",
            "iterations": total_iters, "seconds": round(total_s, 3), "threads": torch.get_num_threads(),
            "torch": torch.__version__}


def _scene():
    import numpy as np
    import pyrender
    import trimesh

    scene = pyrender.Scene(bg_color=[0.8, 0.85, 0.9, 1.0], ambient_light=[0.25, 0.25, 0.25])
    floor = trimesh.creation.box(extents=[2.0, 2.0, 0.02])
    scene.add(pyrender.Mesh.from_trimesh(floor, smooth=False), pose=_pose(0, 0, -0.01, 0))
    rng = np.random.default_rng(7)
    objects = []
    for i in range(6):
        if i % 2 == 0:
            tm = trimesh.creation.box(extents=rng.uniform(0.1, 0.3, size=3))
        else:
            tm = trimesh.creation.cylinder(radius=float(rng.uniform(0.05, 0.12)), height=float(rng.uniform(0.1, 0.35)),
                                           sections=32)
        tm.visual.vertex_colors = np.append(rng.integers(40, 255, size=3), 255).astype(np.uint8)
        node = scene.add(pyrender.Mesh.from_trimesh(tm, smooth=False), name=f"obj{i}")
        objects.append(node)
    light = pyrender.DirectionalLight(color=np.ones(3), intensity=3.0)
    scene.add(light, pose=_look_at(np.array([1.0, -1.0, 2.0])))
    cam = pyrender.PerspectiveCamera(yfov=math.radians(55), aspectRatio=WIDTH / HEIGHT)
    cam_node = scene.add(cam, pose=_look_at(np.array([0.0, -1.6, 1.1])))
    seg_map = {node: ((i + 1) * 37 % 255, (i + 1) * 91 % 255, (i + 1) * 53 % 255) for i, node in enumerate(objects)}
    return scene, objects, cam_node, seg_map


def _pose(x: float, y: float, z: float, yaw: float):
    import numpy as np

    c, s = math.cos(yaw), math.sin(yaw)
    m = np.eye(4)
    m[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    m[:3, 3] = [x, y, z]
    return m


def _look_at(eye, target=(0.0, 0.0, 0.1)):
    import numpy as np

    f = np.asarray(target, float) - eye
    f /= np.linalg.norm(f)
    right = np.cross(f, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, f)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, up, -f, eye
    return m


def bench_render(device: str, seconds: float) -> dict[str, Any]:
    """Labelled frames/s at 640x480 with pyrender over EGL (RGB-D pass + segmentation pass)."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    if device.startswith("cuda:"):
        os.environ.setdefault("EGL_DEVICE_ID", device.split(":", 1)[1])
    import numpy as np
    import pyrender
    from OpenGL import GL

    scene, objects, cam_node, seg_map = _scene()
    r = pyrender.OffscreenRenderer(WIDTH, HEIGHT)
    try:
        renderer_name = GL.glGetString(GL.GL_RENDERER)
        renderer_name = renderer_name.decode() if isinstance(renderer_name, bytes) else str(renderer_name)
        rng = np.random.default_rng(11)

        def frame(k: int) -> None:
            for i, node in enumerate(objects):
                a = 2 * math.pi * i / len(objects) + 0.05 * k
                scene.set_pose(node, _pose(0.45 * math.cos(a), 0.45 * math.sin(a), 0.15, float(rng.uniform(0, 6.28))))
            ang = 0.02 * k
            scene.set_pose(cam_node, _look_at(np.array([1.6 * math.sin(ang), -1.6 * math.cos(ang), 1.1])))
            color, depth = r.render(scene)
            seg, _ = r.render(scene, flags=pyrender.RenderFlags.SEG, seg_node_map=seg_map)
            if color.shape != (HEIGHT, WIDTH, 3) or seg.shape[:2] != (HEIGHT, WIDTH):
                raise RuntimeError(f"unexpected frame shape {color.shape}")

        frame(0)  # warm-up: shader compilation, buffer upload
        frames, total_s, runs = 0, 0.0, []
        for _ in range(ROUNDS):
            n = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds / ROUNDS or n == 0:
                n += 1
                frame(frames + n)
            dt = time.perf_counter() - t0
            runs.append(round(n / dt, 2))
            frames, total_s = frames + n, total_s + dt
    finally:
        r.delete()
    return {"fps": statistics.median(runs), "runs": runs, "width": WIDTH, "height": HEIGHT, "frames": frames,
            "seconds": round(total_s, 3), "renderer": renderer_name, "passes": "rgb+depth, segmentation"}


def bench_photoreal(device: str, quick: bool) -> dict[str, Any]:
    """Cycles frames/s (640x480, 64 samples) from `python -m jobs.render.photoreal_bench --bench`, a
    child of its own: the render package sits beside this one, not under it."""
    import subprocess

    # `-c`, not `-m`: the frozen bundle's entry answers `kminer -c CODE ARGS` like python -c
    cmd = [sys.executable, "-c", "from jobs.render.photoreal_bench import main; raise SystemExit(main())",
           "--bench", "--device", device] + (["--quick"] if quick else [])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError((p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1][:300])
    return json.loads(p.stdout.strip().splitlines()[-1])


def run(device: str, quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"device": device, "quick": quick,
                           "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if hasattr(os, "getloadavg"):  # other work on the machine lowers the figures: keep it beside them
        out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    matmul_s, render_s = (0.6, 1.2) if quick else (2.5, 3.5)
    n = 512 if quick else (4096 if device.startswith("cuda") else 1024)
    for part, fn in (("matmul", lambda: bench_matmul(device, matmul_s, n)),
                     ("render", lambda: bench_render(device, render_s))):
        try:
            out[part] = fn()
        except Exception as e:  # a part that cannot run here is reported, not fatal
            out[part] = {"error": f"{type(e).__name__}: {e}"}
    import importlib.util

    if importlib.util.find_spec("bpy") is not None and os.environ.get("KMINER_BENCH_PHOTOREAL", "1") != "0":
        try:
            out["photoreal"] = bench_photoreal(device, quick)
        except Exception as e:
            out["photoreal"] = {"error": f"{type(e).__name__}: {e}"}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gpu.bench_child", description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help='"cpu" or "cuda:N"')
    ap.add_argument("--quick", action="store_true", help="about 2 s instead of about 8 s")
    args = ap.parse_args(argv)
    if not (args.device == "cpu" or args.device.startswith("cuda:")):
        ap.error(f"unknown device {args.device!r}")
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # cuda:N is NVML's index N
    result = run(args.device, args.quick)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    ok = any("error" not in result[p] for p in ("matmul", "render"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
