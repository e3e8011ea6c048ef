"""bench/gpu_check.py (`make gpu-check`): on a machine without a GPU it says it skipped and why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_gpu_it_skips_every_check_and_says_why(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import gpu_check
    finally:
        sys.path.remove(str(ROOT / "bench"))
    have, why = gpu_check.gpu_present()
    if have:
        pytest.skip("this machine has an NVIDIA GPU: run `make gpu-check` itself")
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("gpu-check: SKIPPED every check: no NVIDIA GPU on this machine (") and why in first
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["gpu"] is False and set(doc["checks"]) == set(gpu_check.CHECKS)
    assert all(c["status"] == "SKIP" for c in doc["checks"].values())
    assert "SKIPPED" in (tmp_path / "out" / "summary.txt").read_text()


def test_unknown_check_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--only", "nvml,warp",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == "gpu-check: unknown check 'warp' (choose from " \
        "nvml, driver, matmul, train, ddp, egl, photoreal, bundle)"


def test_a_check_that_fails_in_its_child_is_one_fail_line(tmp_path):
    """The child runner: a check raising (here: no GPU for the matmul) comes back as FAIL with its reason."""
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--one", "driver"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    line = [x for x in r.stdout.splitlines() if x.startswith("GPU-CHECK-RESULT ")][-1]
    res = json.loads(line.split(" ", 1)[1])
    assert res["status"] in ("PASS", "FAIL") and ("figure" in res or res["detail"])
