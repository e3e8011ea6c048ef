"""Benchmarks: a real quick run on the CPU in a child process, the result file, failures."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from gpu.bench import BenchError, BenchStore, run_benchmark, spread_warnings

ROOT = Path(__file__).resolve().parents[2]
KMINER = str(Path(sys.executable).with_name("kminer"))


def test_quick_cpu_benchmark_runs_in_a_child_and_never_loads_torch_here():
    # The child is `kminer bench --child`, what a frozen bundle runs; the CLI test below covers `-m gpu.bench_child`.
    script = (
        "import json, sys\n"
        "from gpu.bench import run_benchmark\n"
        f"r = run_benchmark('cpu', quick=True, timeout_s=120, command=[{KMINER!r}, 'bench', '--child'])\n"
        "r['parent_loaded'] = sorted(m for m in ('torch', 'pyrender', 'OpenGL') if m in sys.modules)\n"
        "print(json.dumps(r))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["parent_loaded"] == []
    assert r["device"] == "cpu" and r["quick"] is True
    assert datetime.fromisoformat(r["timestamp"]).tzinfo is not None
    assert r["matmul"]["gflops"] > 0.5 and r["matmul"]["iterations"] >= 1, r["matmul"]
    for part, key in (("matmul", "gflops"), ("render", "fps")):  # the figure is the median of its runs
        runs = r[part]["runs"]
        assert len(runs) == 3 and r[part][key] == sorted(runs)[1], r[part]
    assert r["render"].get("fps", 0) > 0.5, r["render"]  # EGL (Mesa) is installed by debian-deps.sh
    assert (r["render"]["width"], r["render"]["height"]) == (640, 480)


def test_cli_bench_stores_the_result_per_device(kminer_home):
    r = subprocess.run([KMINER, "bench", "--device", "cpu", "--quick", "--json"], capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stderr
    (result,) = json.loads(r.stdout)
    assert result["device_key"] == "cpu" and result["matmul"]["gflops"] > 0
    stored = BenchStore(kminer_home / "data" / "benchmarks.json")
    assert stored.latest("cpu") == result


def test_store_keeps_newest_first_and_a_short_history(tmp_path):
    store = BenchStore(tmp_path / "b.json")
    assert store.latest("cpu") is None
    for i in range(25):
        store.add("cpu", {"n": i})
    assert store.latest("cpu") == {"n": 24} and len(store.history("cpu")) == 20
    (tmp_path / "bad.json").write_text('{"x": 1}')
    with pytest.raises(ValueError):
        BenchStore(tmp_path / "bad.json").latest("cpu")


def test_child_that_hangs_is_killed_at_the_timeout():
    t0 = time.monotonic()
    with pytest.raises(BenchError, match="longer than 1 s"):
        run_benchmark("cpu", timeout_s=1, command=[sys.executable, "-c", "import time; time.sleep(60)"])
    assert time.monotonic() - t0 < 10


def test_child_that_prints_no_json_gives_its_last_error_line():
    with pytest.raises(BenchError, match=r"failed \(exit 3\): boom"):
        run_benchmark("cpu", command=[sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"])


def test_child_refuses_an_unknown_device():
    out = subprocess.run([sys.executable, "-m", "gpu.bench_child", "--device", "tpu:0"], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 2 and "unknown device" in out.stderr


def test_runs_that_disagree_by_more_than_a_fifth_get_a_warning():
    calm = {"matmul": {"gflops": 60.0, "runs": [58.0, 60.0, 63.0]}, "render": {"fps": 10.0, "runs": [10.0, 10.5, 9.8]}}
    assert spread_warnings(calm) == []
    busy = {"matmul": {"gflops": 60.0, "runs": [44.0, 60.0, 61.0]}, "render": {"error": "no EGL"}}
    (w,) = spread_warnings(busy)
    assert w.startswith("matmul runs disagree by 28% (44, 60, 61 GFLOP/s)")
    assert spread_warnings({"matmul": {"gflops": 3.0}}) == []  # an older result without runs
