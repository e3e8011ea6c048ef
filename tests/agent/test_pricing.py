"""The pricing model: job work from jobs.estimate, device rates from a benchmark, NTK per hour,
and the auto-pricing floor rule."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from app.miner import pricing as P
from jobs.estimate import REFERENCE_RATES, estimate_job
from jobs.spec import JobSpec, SpecError, parse_spec

ROOT = Path(__file__).resolve().parents[2]

CPU_BENCH = {"matmul": {"gflops": 59.5}, "render": {"fps": 12.65}}


def test_speed_comes_from_the_benchmark_or_the_kinds_default():
    s = P.speed_from_bench(CPU_BENCH, "cpu")
    assert (s.gflops, s.render_fps, s.measured) == (59.5, 12.65, True)
    assert P.speed_from_bench(None, "cpu") == P.DEFAULT_SPEED["cpu"] and not P.DEFAULT_SPEED["cpu"].measured
    assert P.speed_from_bench({"matmul": {"error": "x"}}, "cuda") == P.DEFAULT_SPEED["cuda"]
    assert P.DEFAULT_SPEED["cuda"].rate == REFERENCE_RATES["gpu"]  # one table of reference rates: jobs.estimate's


def _render(frames: int, w: int = 640, h: int = 480, **params) -> JobSpec:
    sc = json.loads((ROOT / "resources" / "scenes" / "table_top.json").read_text())
    sc["outputs"].update({"width": w, "height": h, "count": frames})
    return parse_spec({"id": "r", "kind": "render", "params": {"scene": sc, **params}})


def test_pricing_times_jobs_with_the_work_estimate():
    """The miner's quotes come from jobs.estimate (no second time model): more frames, more
    pixels, more time; a shard is sized by its own frames."""
    rate = P.speed_from_bench(CPU_BENCH, "cpu").rate
    big, small, shard = _render(100), _render(100, 320, 240), _render(100, start=10, count=20)
    t_big, t_small, t_shard = (P.estimate(s).seconds(rate) for s in (big, small, shard))
    assert t_big == pytest.approx(estimate_job(big).seconds(rate))
    assert P.estimate(shard).frames == 20
    assert t_small < t_big and t_shard < t_big


def test_torch_jobs_are_sized_by_the_images_of_their_data_inputs():
    rate = P.speed_from_bench(CPU_BENCH, "cpu").rate
    train = parse_spec({"id": "t", "kind": "train", "params": {"arch": "centernet-s", "epochs": 2}})
    est = P.estimate(train, {"shelf": P.InputStats(1000, True), "model": P.InputStats(5, False)})
    assert est.seconds(rate) == pytest.approx(estimate_job(train, images=1000).seconds(rate))
    with pytest.raises(SpecError, match="image count"):
        P.estimate(train, {})  # no images in the inputs: its size cannot be told
    with pytest.raises(SpecError, match="no work model"):
        P.estimate(parse_spec({"id": "p", "kind": "python"}))


def test_a_poison_scene_is_refused_by_the_estimate():
    """Issue 16: a billion objects, NaN or Infinity never get a price."""
    sc = json.loads((ROOT / "resources" / "scenes" / "table_top.json").read_text())
    for bad in ({"layout": {**sc["layout"], "objects": [10**9, 10**9]}},
                {"camera": {**sc.get("camera", {}), "distance": [float("nan"), 1.0]}},
                {"outputs": {**sc["outputs"], "width": float("inf")}}):
        spec = parse_spec({"id": "p", "kind": "render", "params": {"scene": {**sc, **bad}}})
        with pytest.raises(SpecError):
            P.estimate(spec)


def test_ntk_per_hour():
    assert P.ntk_per_hour(5 * 10**18, 1800) == pytest.approx(10.0)


def test_count_images_reads_tar_headers(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("images/a.png", "images/b.JPG", "annotations.json"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    p = tmp_path / "ds.tar"
    p.write_bytes(buf.getvalue())
    assert P.count_images(p, True) == P.InputStats(2, True)
    (tmp_path / "aa11").write_bytes(b"\x89PNG\r\n\x1a\n....")  # stored files have no extension
    (tmp_path / "bb22").write_bytes(b'{"json": 1}')
    assert P.count_images(tmp_path / "aa11", False).images == 1
    assert P.count_images(tmp_path / "bb22", False).images == 0
    with pytest.raises(P.PricingError, match="not a folder archive"):
        P.count_images(tmp_path / "bb22", True)


def test_floor_rises_when_booked_falls_when_idle_within_bounds():
    up = P.next_floor(1.0, 1.0, lo=0.5, hi=1.5, step=0.1, window_s=600)
    assert up.new == pytest.approx(1.1) and "fully booked for 10 min" in up.reason
    assert P.next_floor(1.45, 1.0, lo=0.5, hi=1.5, step=0.1, window_s=600).new == 1.5
    assert P.next_floor(1.5, 1.0, lo=0.5, hi=1.5, step=0.1, window_s=600) is None  # at the top
    down = P.next_floor(1.0, 0.0, lo=0.5, hi=1.5, step=0.1, window_s=600)
    assert down.new == pytest.approx(0.9) and "idle" in down.reason
    assert P.next_floor(0.52, 0.0, lo=0.5, hi=1.5, step=0.1, window_s=600).new == 0.5
    assert P.next_floor(1.0, 0.5, lo=0.5, hi=1.5, step=0.1, window_s=600) is None  # partly busy: stays
    assert P.next_floor(0.0, 1.0, lo=0.0, hi=1.0, step=0.1, window_s=60).new == P.FIRST_FLOOR_NTK_PER_HOUR
    out = P.next_floor(5.0, 0.0, lo=0.5, hi=1.5, step=0.1, window_s=600)  # above the bounds: back within
    assert out.new == 1.5 and "kept within" in out.reason
