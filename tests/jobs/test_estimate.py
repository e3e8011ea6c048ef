"""jobs.estimate: the work of a job from its spec alone, bounded; the run's time limit and a
no-progress timeout follow from it, never from the order's deadline (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.estimate import (MAX_TIME_LIMIT_S, MIN_TIME_LIMIT_S, REFERENCE_RATES, DeviceRate, EstimateError,
                           bounded_spec, estimate_job)
from jobs.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
SHELF = json.loads((ROOT / "resources" / "scenes" / "retail_shelf.json").read_text())
CPU, GPU = REFERENCE_RATES["cpu"], REFERENCE_RATES["gpu"]
DAY_S = 86400


def _render(scene: dict, count: int, **resources) -> object:
    return parse_spec({"id": "r1", "kind": "render", "params": {"scene": scene, "start": 0, "count": count},
                       "resources": {"max_wall_s": DAY_S, **resources}})


def test_a_demo_shelf_shard_is_minutes_and_its_limit_is_far_below_the_deadline():
    spec = _render(SHELF, 100)
    est = estimate_job(spec)
    assert 10 < est.seconds(CPU) < 600 and est.seconds(GPU) < est.seconds(CPU)
    assert est.seconds(CPU) <= est.seconds_max(CPU)
    limit = est.time_limit_s(CPU, spec.resources.max_wall_s)
    assert MIN_TIME_LIMIT_S <= limit < DAY_S / 20
    assert bounded_spec(spec, est, CPU).resources.max_wall_s == limit
    assert MIN_TIME_LIMIT_S <= est.no_progress_s(CPU) <= 3600


def test_more_objects_and_pixels_cost_more():
    busy = json.loads(json.dumps(SHELF))
    busy["layout"].update(rows=8, spacing=0.2)
    big = json.loads(json.dumps(SHELF))
    big["outputs"].update(width=1920, height=1080)
    base = estimate_job(_render(SHELF, 10)).seconds(CPU)
    assert estimate_job(_render(busy, 10)).seconds(CPU) > base
    assert estimate_job(_render(big, 10)).seconds(CPU) > base


def test_a_measured_device_speed_changes_the_estimate():
    est = estimate_job(_render(SHELF, 100))
    assert est.seconds(DeviceRate(render_fps=40.0, gflops=200.0)) < est.seconds(CPU)


def test_a_job_beyond_any_device_is_refused_by_its_size():
    spec = parse_spec({"id": "t0", "kind": "train", "params": {"epochs": 10000, "arch": "centernet-m"}})
    with pytest.raises(EstimateError, match="the job is too large: about .* days on a reference GPU"):
        estimate_job(spec, images=1_000_000)


def test_within_the_scene_budgets_a_render_shard_stays_within_days():
    scene = json.loads(json.dumps(SHELF))
    scene["outputs"].update(width=4096, height=2048, count=4000)
    scene["lights"].update(shadows=True, count=[4, 4])
    est = estimate_job(_render(scene, 4000))
    assert est.seconds_max(GPU) < 3 * DAY_S


def test_the_limit_never_exceeds_the_buyers_own_or_the_cap():
    est = estimate_job(_render(SHELF, 100))
    assert est.time_limit_s(CPU) > 150.0 and est.time_limit_s(CPU, 150.0) == 150.0
    assert est.time_limit_s(DeviceRate(0.001, 0.001)) == MAX_TIME_LIMIT_S


def test_training_needs_the_image_count_and_scales_with_it():
    spec = parse_spec({"id": "t1", "kind": "train", "params": {"epochs": 10, "arch": "centernet-s"}})
    with pytest.raises(EstimateError, match="image count"):
        estimate_job(spec)
    small, large = estimate_job(spec, images=100), estimate_job(spec, images=10_000)
    assert large.seconds(CPU) > 50 * (small.seconds(CPU) - 10)
    with pytest.raises(EstimateError, match="input_size"):
        estimate_job(parse_spec({"id": "t2", "kind": "train", "params": {"input_size": [100000, 100000]}}), images=10)


def test_unknown_engines_and_bad_params_are_one_line_estimate_errors():
    with pytest.raises(EstimateError, match="no work model for engine 'python'"):
        estimate_job(parse_spec({"id": "p", "kind": "python"}))
    with pytest.raises(EstimateError, match="params.sample"):
        estimate_job(parse_spec({"id": "v", "kind": "verify-render", "params": {"sample": 10**9}}))
    with pytest.raises(EstimateError, match="needs params.scene"):
        estimate_job(parse_spec({"id": "r", "kind": "render", "params": {"count": 5}}))
