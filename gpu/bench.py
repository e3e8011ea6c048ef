"""Benchmarks per device, run in a child process, and the file that keeps their results.

`run_benchmark("cpu")` starts `python -m gpu.bench_child --device cpu` (see that module
for the measured figures and the JSON it prints), so torch and pyrender never load into
the caller. `BenchStore` keeps the latest result per device key plus a short history in
one JSON file, written atomically.

Blocking (seconds): call from a worker thread or the CLI, never a GUI thread.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from common.device_id import DeviceId
from common.fsutil import atomic_write_json

__all__ = ["BenchError", "BenchStore", "run_benchmark", "child_command", "child_device", "spread_warnings"]

HISTORY = 20  # results kept per device
MAX_SPREAD = 0.20
"""Runs of one part that differ by more than this (max - min, over their median) get a warning."""
PART_UNITS = {"matmul": ("gflops", "GFLOP/s"), "render": ("fps", "frames/s")}


def spread_warnings(result: dict[str, Any]) -> list[str]:
    """One line per part whose timed runs disagree by more than MAX_SPREAD (the machine was
    busy, or the device throttled): its figure (their median) is less sure."""
    out = []
    for part, (key, unit) in PART_UNITS.items():
        runs = [r for r in ((result.get(part) or {}).get("runs") or []) if isinstance(r, (int, float)) and r > 0]
        if len(runs) < 2:
            continue
        spread = (max(runs) - min(runs)) / statistics.median(runs)
        if spread > MAX_SPREAD:
            out.append(f"{part} runs disagree by {spread:.0%} ({', '.join(f'{r:g}' for r in runs)} {unit}): "
                       f"the median is kept; run the benchmark again while the machine is otherwise idle")
    return out


class BenchError(RuntimeError):
    """The benchmark child failed or printed no result; the message says why in one line."""


def child_command() -> list[str]:
    """The command that runs gpu.bench_child: this interpreter with `-m`, or, in a frozen
    bundle (PyInstaller, where sys.executable is the app), the app's `kminer bench --child`."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "bench", "--child"]
    return [sys.executable, "-m", "gpu.bench_child"]


def child_device(device: DeviceId) -> str:
    """The benchmark child's --device for `device`: torch's name for it in this process (its
    CUDA index, not its NVML index, once CUDA_VISIBLE_DEVICES renumbered the GPUs)."""
    arg = device.torch_device
    if arg is None and device.kind == "amd":
        raise BenchError(f"{device.label}: benchmarking an AMD card needs a ROCm build of torch here")
    if arg is None:
        raise BenchError(f"{device.label} is hidden from CUDA here (CUDA_VISIBLE_DEVICES): it cannot be benchmarked")
    return arg


def run_benchmark(device: DeviceId | str, *, quick: bool = False, timeout_s: float = 180.0,
                  command: Sequence[str] | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Benchmark `device` (a DeviceId, or torch's "cpu" / "cuda:N") in a child process; the
    child's JSON result.

    Raises BenchError when the child fails, times out (its process group is killed), or
    prints no JSON. A result may still carry {"error": ...} for one part (e.g. no EGL).
    """
    device_id = device.label if isinstance(device, DeviceId) else device
    arg = child_device(device) if isinstance(device, DeviceId) else device
    cmd = [*(command or child_command()), "--device", arg] + (["--quick"] if quick else [])
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("PYOPENGL_PLATFORM", "egl")
    child_env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    # Run from the folder that holds the gpu package, so `-m gpu.bench_child` resolves from source.
    root = str(Path(__file__).resolve().parent.parent)
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (root, child_env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise BenchError(f"benchmark of {device_id} took longer than {timeout_s:.0f} s and was stopped") from None
    result = None
    for line in reversed(out.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                result = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
    if result is None:
        tail = (err.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"benchmark of {device_id} failed (exit {proc.returncode}): {tail}")
    if proc.returncode != 0:
        errors = "; ".join(f"{p}: {result.get(p, {}).get('error')}" for p in ("matmul", "render"))
        raise BenchError(f"benchmark of {device_id} failed: {errors}")
    return result


class BenchStore:
    """Benchmark results in one JSON file: {"schema": 1, "devices": {key: [newest, ...]}}.

    Not thread-safe across writers: one process (the app or the CLI) writes at a time;
    each write is atomic, so readers never see half a file.
    """

    SCHEMA = 1

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"schema": self.SCHEMA, "devices": {}}
        if not isinstance(data, dict) or not isinstance(data.get("devices"), dict):
            raise ValueError(f"{self.path} is not a benchmark file")
        return data

    def add(self, key: str, result: dict[str, Any]) -> None:
        """Store `result` as the newest benchmark of device `key` (GPU uuid or "cpu")."""
        data = self._load()
        runs = [result, *data["devices"].get(key, [])][:HISTORY]
        data["devices"][key] = runs
        atomic_write_json(self.path, data)

    def latest(self, key: str) -> dict[str, Any] | None:
        runs = self._load()["devices"].get(key) or []
        return runs[0] if runs else None

    def history(self, key: str) -> list[dict[str, Any]]:
        return list(self._load()["devices"].get(key) or [])
