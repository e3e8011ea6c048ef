"""The photoreal engine in the work estimate and the miner's pricing: Cycles frames cost far
more than fast ones, a measured photoreal benchmark is used when there is one."""

from __future__ import annotations

import json

from app.miner.pricing import DEFAULT_SPEED, speed_from_bench
from jobs.estimate import PHOTOREAL_FACTOR, REFERENCE_RATES, DeviceRate, estimate_job
from jobs.spec import JobSpec, parse_spec
from tests.render.conftest import SHELF


def _job(engine: str, samples: int = 64, frames: int = 20) -> JobSpec:  # a market render order
    scene = json.loads(SHELF.read_text())
    scene["engine"] = engine
    scene["photoreal"] = {"samples": samples}
    return parse_spec({"id": "r1", "kind": "render", "params": {"scene": scene, "start": 0, "count": frames},
                       "resources": {"max_wall_s": 7 * 86400}})


def test_photoreal_frames_cost_about_the_measured_factor_more():
    fast, photo = estimate_job(_job("fast")), estimate_job(_job("photoreal"))
    assert photo.path_samples == 64 and fast.path_samples == 0 and "photoreal" in photo.note
    rate = DeviceRate(10.0, 50.0)  # no photoreal benchmark: derived from the fast rate
    ratio = photo._render_s(rate, 0, 1) / fast._render_s(rate, 0, 1)
    assert 0.5 * PHOTOREAL_FACTOR < ratio < 2 * PHOTOREAL_FACTOR
    # half the samples, about half the path-tracing time; a GPU reference class far faster
    half = estimate_job(_job("photoreal", samples=32))
    assert half.seconds(rate) < 0.6 * photo.seconds(rate)
    assert photo.seconds(REFERENCE_RATES["gpu"]) < photo.seconds(REFERENCE_RATES["cpu"]) / 20


def test_measured_photoreal_benchmark_sets_the_rate():
    s = speed_from_bench({"render": {"fps": 12.0}, "matmul": {"gflops": 40.0}, "photoreal": {"fps": 0.5}}, "cuda")
    assert s.measured and s.rate.path_fps == 0.5
    derived = speed_from_bench({"render": {"fps": 12.0}, "matmul": {"gflops": 40.0}}, "cpu")
    assert derived.rate.path_fps == 12.0 / PHOTOREAL_FACTOR
    bogus = speed_from_bench({"render": {"fps": 12.0}, "photoreal": {"fps": "fast"}}, "cpu")
    assert bogus.rate.path_fps == 12.0 / PHOTOREAL_FACTOR
    assert speed_from_bench(None, "cpu") == DEFAULT_SPEED["cpu"]
    photo = estimate_job(_job("photoreal"))
    assert photo.seconds(s.rate) < photo.seconds(derived.rate)
