"""`make gpu-check`: every GPU path of the app, on a machine with an NVIDIA GPU, in under 10 minutes.

    python bench/gpu_check.py [--out build/gpu-check] [--bundle dist/kminer-cuda] [--only NAME,...]

One line per check, PASS / FAIL / SKIP with a figure against the CPU of the same machine:

  nvml        NVML through gpu.nvml: every GPU listed, temperature/power/memory read (ms per snapshot)
  driver      the driver against the GPU bundle's floor (gpu.driver: 580.65.06 for CUDA 13.0)
  matmul      torch matmul on cuda:0 against the CPU (TFLOP/s; the benchmark child's own code)
  train       the detector trained on a synthetic shapes set on cuda:0 and on the CPU (images/s)
  ddp         DDP over the GPUs (2 when there are 2, else 1), NCCL (images/s)
  egl         pyrender through EGL on the NVIDIA driver against the CPU renderer (frames/s, GL vendor)
  photoreal   Cycles on CUDA/OptiX (when the photoreal engine has landed; SKIP until then)
  bundle      the GPU bundle (dist/kminer-cuda): self-test, torch.cuda in the frozen app, the
              driver check and `bench --child` on cuda:0 (TFLOP/s)

Each check runs in its own process with a time limit, so a hung driver fails one line, not
the run. Results: OUT/results.json (every figure), OUT/summary.txt (the lines printed) and
OUT/NAME.log (each check's output). Without an NVIDIA GPU it prints that it skipped and why,
writes the same files with every check SKIP, and exits 0; a FAIL exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHECKS = ("nvml", "driver", "matmul", "train", "ddp", "egl", "photoreal", "bundle")
LIMIT_S = {"nvml": 30, "driver": 30, "matmul": 90, "train": 180, "ddp": 150, "egl": 90, "photoreal": 120,
           "bundle": 180}
TOTAL_S = 560  # the whole run stays under 10 minutes


# --- the checks (each runs in a child: `gpu_check.py --one NAME`) ---------------------------

def check_nvml() -> dict:
    from gpu.na import NA
    from gpu.nvml import Nvml

    nv = Nvml()
    n = nv.count() if nv.available() else 0
    if not n:
        return {"status": "FAIL", "detail": f"NVML lists no GPU ({nv.error or 'no error given'})"}
    infos = [nv.device_info(i) for i in range(n)]
    t = time.perf_counter()
    for _ in range(20):
        tel = [nv.telemetry(i) for i in range(n)]
    ms = (time.perf_counter() - t) * 1000 / 20
    bad = [i for i, x in enumerate(tel) if x.temp_c is NA or x.mem_used_mb is NA]
    gpus = [{"name": getattr(d, "name", str(d)), "driver": str(getattr(d, "driver_version", "")),
             "temp_c": str(x.temp_c), "power_w": str(x.power_w), "mem_used_mb": str(x.mem_used_mb)}
            for d, x in zip(infos, tel)]
    return {"status": "FAIL" if bad else "PASS", "figure": f"{n} GPU(s), {ms:.1f} ms per snapshot of all",
            "gpus": gpus, "detail": f"no temperature or memory reading from GPU(s) {bad}" if bad else ""}


def check_driver() -> dict:
    from gpu.driver import MIN_DRIVER, installed_driver, driver_problem

    have = installed_driver()
    if have is None:
        return {"status": "FAIL", "detail": "NVML gives no driver version"}
    why = driver_problem(have)
    return {"status": "FAIL" if why else "PASS", "figure": f"driver {have} (GPU bundle needs >= {MIN_DRIVER})",
            "detail": why or ""}


def _matmul(device: str, seconds: float) -> float:
    from gpu.bench_child import bench_matmul

    return bench_matmul(device, seconds, 4096 if device != "cpu" else 1024)["gflops"] / 1000


def check_matmul() -> dict:
    gpu, cpu = _matmul("cuda:0", 3.0), _matmul("cpu", 3.0)
    return {"status": "PASS" if gpu > cpu else "FAIL", "figure": f"{gpu:.2f} TFLOP/s vs CPU {cpu:.3f} ({gpu / max(cpu, 1e-9):.0f}x)",
            "gpu_tflops": gpu, "cpu_tflops": cpu}


def _train(device: str, world: int, tmp: Path, epochs: int) -> float:
    from jobs.train.engines import run_training
    from jobs.train.synthetic import make_shapes_dataset
    from jobs.train.trainer import TrainConfig

    ds = tmp / "shapes"
    if not ds.exists():
        make_shapes_dataset(ds, n_images=96, seed=1)
    cfg = TrainConfig(arch="centernet-xs", epochs=epochs, batch=16, seed=1, world_size=world, val_fraction=0.2,
                      device=device, deterministic=False)
    out = tmp / f"m-{device.replace(':', '')}-{world}"
    t = time.perf_counter()
    run_training([ds], cfg, out, out / "ck.safetensors", tmp / "scratch")
    return 96 * 0.8 * epochs / (time.perf_counter() - t)


def check_train() -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        gpu = _train("cuda:0", 1, Path(d), 6)
        cpu = _train("cpu", 1, Path(d), 2)
    return {"status": "PASS" if gpu > cpu else "FAIL", "figure": f"{gpu:.0f} images/s vs CPU {cpu:.0f} ({gpu / max(cpu, 1e-9):.1f}x)",
            "gpu_images_s": gpu, "cpu_images_s": cpu}


def check_ddp() -> dict:
    import tempfile

    import torch

    world = min(2, torch.cuda.device_count())
    with tempfile.TemporaryDirectory() as d:
        rate = _train("cuda", world, Path(d), 4)
    return {"status": "PASS", "figure": f"{rate:.0f} images/s over {world} GPU(s) (NCCL)", "world": world, "images_s": rate}


def _render(device: str) -> dict:
    from gpu.bench_child import bench_render

    return bench_render(device, 4.0)


def check_egl() -> dict:
    g = _render("cuda:0")
    c = _render("cpu")
    vendor = str(g.get("renderer") or "")
    gf, cf = float(g.get("fps") or 0), float(c.get("fps") or 0)
    ok = gf > 0 and "NVIDIA" in vendor.upper() and gf > cf
    return {"status": "PASS" if ok else "FAIL", "figure": f"{gf:.0f} frames/s vs CPU {cf:.0f} ({vendor or 'vendor not reported'})",
            "gpu": g, "cpu": c}


def check_photoreal() -> dict:
    import importlib.util

    if importlib.util.find_spec("bpy") is None:
        return {"status": "SKIP", "detail": "the photoreal engine (Blender bpy, Cycles) is not installed here"}
    import bpy  # noqa: F401  (Cycles device list)

    prefs = bpy.context.preferences.addons["cycles"].preferences
    found = {}
    for kind in ("OPTIX", "CUDA"):
        try:
            prefs.compute_device_type = kind
            prefs.get_devices()
            found[kind] = [d.name for d in prefs.devices if d.type == kind]
        except TypeError:
            found[kind] = []
    ok = any(found.values())
    return {"status": "PASS" if ok else "FAIL", "figure": ", ".join(f"{k}: {len(v)}" for k, v in found.items()), "devices": found}


def check_bundle(bundle: Path) -> dict:
    exe = bundle / "kminer"
    if not exe.is_file():
        return {"status": "SKIP", "detail": f"no GPU bundle at {bundle} (make package-gpu)"}
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    st = subprocess.run([str(exe), "self-test"], capture_output=True, text=True, timeout=120, env=env)
    code = "import torch, json; print(json.dumps([torch.cuda.is_available(), torch.version.cuda, torch.cuda.device_count()]))"
    c = subprocess.run([str(exe), "-c", code], capture_output=True, text=True, timeout=120, env=env)
    avail, cuda, n = json.loads(c.stdout.strip().splitlines()[-1]) if c.returncode == 0 else (False, None, 0)
    b = subprocess.run([str(exe), "bench", "--child", "--device", "cuda:0", "--quick"], capture_output=True, text=True,
                       timeout=150, env=env)
    ok = st.returncode == 0 and avail and b.returncode == 0
    return {"status": "PASS" if ok else "FAIL", "figure": f"torch CUDA {cuda}, {n} GPU(s) in the frozen app",
            "self_test": st.stdout[-2000:] + st.stderr[-1000:], "bench": b.stdout[-2000:] + b.stderr[-1000:],
            "detail": "" if ok else f"self-test rc {st.returncode}, cuda {avail}, bench rc {b.returncode}"}


def run_one(name: str, bundle: Path) -> dict:
    if name == "bundle":
        return check_bundle(bundle)
    return globals()[f"check_{name}"]()


# --- the driver ----------------------------------------------------------------------------

def gpu_present() -> tuple[bool, str]:
    """Whether an NVIDIA GPU answers here, and why not in a few words."""
    try:
        from gpu.nvml import Nvml

        nv = Nvml()
        n = nv.count() if nv.available() else 0
    except Exception as e:  # noqa: BLE001 (any import or driver failure means: no GPU to check)
        return False, f"{type(e).__name__}: {e}"
    if n:
        return True, ""
    return False, nv.error or "NVML lists no GPU"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "gpu-check")
    ap.add_argument("--bundle", type=Path, default=ROOT / "dist" / "kminer-cuda")
    ap.add_argument("--only", default="", help="comma-separated checks (default: all)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        try:
            res = run_one(args.one, args.bundle)
        except Exception as e:  # noqa: BLE001 (one line per failed check)
            res = {"status": "FAIL", "detail": f"{type(e).__name__}: {e}"}
        print("GPU-CHECK-RESULT " + json.dumps(res, default=str))
        return 0
    names = [n for n in (args.only.split(",") if args.only else CHECKS) if n]
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        print(f"gpu-check: unknown check {unknown[0]!r} (choose from {', '.join(CHECKS)})", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    have, why = gpu_present()
    results: dict[str, dict] = {}
    lines: list[str] = []
    t0 = time.monotonic()
    if not have:
        msg = (f"gpu-check: SKIPPED every check: no NVIDIA GPU on this machine ({why}). "
               "Run `make gpu-check` on a machine with an NVIDIA GPU and driver.")
        print(msg)
        lines.append(msg)
        results = {n: {"status": "SKIP", "detail": f"no NVIDIA GPU: {why}"} for n in names}
    else:
        for n in names:
            left = TOTAL_S - (time.monotonic() - t0)
            if left < 10:
                results[n] = {"status": "SKIP", "detail": "the 10-minute budget ran out"}
            else:
                results[n] = _child(n, args, min(LIMIT_S[n], left))
            r = results[n]
            line = f"{r['status']:<4}  {n:<9} {r.get('figure', '')}  {r.get('detail', '')}".rstrip()
            print(line, flush=True)
            lines.append(line)
    took = time.monotonic() - t0
    doc = {"machine": platform.node(), "python": sys.version.split()[0], "took_s": round(took, 1),
           "gpu": have, "why_not": why, "checks": results}
    (args.out / "results.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    (args.out / "summary.txt").write_text("\n".join(lines) + f"\ntook {took:.0f} s\n")
    print(f"gpu-check: {took:.0f} s; results in {args.out}")
    return 1 if any(r["status"] == "FAIL" for r in results.values()) else 0


def _child(name: str, args: argparse.Namespace, limit: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--bundle", str(args.bundle)]
    log = args.out / f"{name}.log"
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, cwd=ROOT)
    except subprocess.TimeoutExpired as e:
        log.write_text(f"{e.stdout or ''}\n{e.stderr or ''}")
        return {"status": "FAIL", "detail": f"no answer within {limit:.0f} s"}
    log.write_text(p.stdout + "\n" + p.stderr)
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("GPU-CHECK-RESULT "):
            return json.loads(line.split(" ", 1)[1])
    tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
    return {"status": "FAIL", "detail": f"exit {p.returncode}: {tail}"}


if __name__ == "__main__":
    sys.exit(main())
