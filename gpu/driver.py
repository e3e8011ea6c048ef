"""The NVIDIA driver the GPU bundle needs, and the one-line start-up check.

The GPU bundle carries a CUDA build of torch; CUDA refuses to start on a driver older than
its toolkit's floor, and torch then quietly sees no GPU. The bundle's spec writes
`kminer_build.json` ({"flavor": "cuda", "cuda": "13.0", "min_driver": "580.65.06"}) beside the
app; `startup_problem()` compares it with the installed driver (NVML, no torch import) and
returns one line to print, or None. The CPU bundle and source installs have no such file and
are never checked.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

__all__ = ["MIN_DRIVER", "CUDA_MIN_DRIVER", "BUILD_INFO", "parse_version", "driver_problem",
           "installed_driver", "build_info", "startup_problem"]

# Linux drivers each CUDA toolkit needs (NVIDIA's CUDA release notes, "minimum required driver").
CUDA_MIN_DRIVER = {"13.0": "580.65.06", "12.8": "570.26", "12.6": "560.28.03", "12.4": "550.54.14",
                   "12.1": "530.30.02", "11.8": "520.61.05"}
MIN_DRIVER = CUDA_MIN_DRIVER["13.0"]  # the GPU bundle's torch 2.14.1+cu130
BUILD_INFO = "kminer_build.json"


def parse_version(v: str) -> tuple[int, ...]:
    """"580.65.06" -> (580, 65, 6); ValueError for anything else."""
    if not re.fullmatch(r"\d+(\.\d+){0,3}", v.strip()):
        raise ValueError(f"not a driver version: {v!r}")
    return tuple(int(p) for p in v.strip().split("."))


def driver_problem(have: str | None, need: str = MIN_DRIVER, cuda: str = "13.0") -> str | None:
    """One line when the driver `have` cannot run CUDA `cuda` (None: fine)."""
    if have is None:
        return (f"kminer: no NVIDIA driver found; this GPU build (CUDA {cuda}) runs jobs on the CPU. "
                f"Install NVIDIA driver {need} or newer, or use the smaller CPU build.")
    try:
        ok = parse_version(have) >= parse_version(need)
    except ValueError:
        return None  # an unknown format: let CUDA decide rather than warn wrongly
    if ok:
        return None
    return (f"kminer: NVIDIA driver {have} is too old for this GPU build (CUDA {cuda} needs {need} or newer), "
            f"so jobs run on the CPU; update the driver, or use the CPU build.")


def installed_driver() -> str | None:
    """The NVIDIA driver version (`nvidia-smi --query-gpu=driver_version`), None without one."""
    from gpu.na import NA
    from gpu.nvml import Nvml

    nv = Nvml()
    try:
        if not nv.available():
            return None
        v = nv._query("nvmlSystemGetDriverVersion")
        if v is NA:
            return None
        return v.decode() if isinstance(v, bytes) else str(v)
    finally:
        nv.close()


def build_info(base: Path | None = None) -> dict | None:
    """The bundle's kminer_build.json (None from source or in the CPU bundle)."""
    if base is None:
        meipass = getattr(sys, "_MEIPASS", None)
        if not meipass:
            return None
        base = Path(meipass)
    try:
        doc = json.loads((base / BUILD_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def startup_problem(base: Path | None = None, driver: str | None | type = ...) -> str | None:
    """The line to print at start of a GPU bundle on a machine whose driver cannot run it."""
    info = build_info(base)
    if not info or info.get("flavor") != "cuda":
        return None
    cuda = str(info.get("cuda") or "13.0")
    need = str(info.get("min_driver") or CUDA_MIN_DRIVER.get(cuda, MIN_DRIVER))
    have = installed_driver() if driver is ... else driver
    return driver_problem(have, need, cuda)
