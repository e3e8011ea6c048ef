"""The pricing model: job sizes from specs, expected seconds from a benchmark, NTK per hour,
and the auto-pricing floor rule."""

from __future__ import annotations

import io
import tarfile

import pytest

from app.miner import pricing as P

CPU_BENCH = {"matmul": {"gflops": 59.5}, "render": {"fps": 12.65}}


def test_speed_comes_from_the_benchmark_or_the_kinds_default():
    s = P.speed_from_bench(CPU_BENCH, "cpu")
    assert (s.gflops, s.render_fps, s.measured) == (59.5, 12.65, True)
    assert P.speed_from_bench(None, "cpu") == P.DEFAULT_SPEED["cpu"] and not P.DEFAULT_SPEED["cpu"].measured
    assert P.speed_from_bench({"matmul": {"error": "x"}}, "cuda") == P.DEFAULT_SPEED["cuda"]


def test_render_time_grows_with_frames_and_pixels():
    speed = P.speed_from_bench(CPU_BENCH, "cpu")
    scene = {"outputs": {"width": 640, "height": 480, "count": 100}}
    big = P.job_size("render", {"scene": scene})
    assert (big.frames, big.pixels) == (100, 640 * 480)
    shard = P.job_size("render", {"scene": scene, "start": 10, "count": 20})
    assert shard.frames == 20
    small = P.job_size("render", {"scene": {"outputs": {"width": 320, "height": 240, "count": 100}}})
    t_big, t_small = P.expected_seconds(big, speed), P.expected_seconds(small, speed)
    # 100 frames at 640x480: STARTUP + 100 x 4 x 1.0 / 12.65
    assert t_big == pytest.approx(P.STARTUP_S + 100 * 4 / 12.65)
    assert P.STARTUP_S < t_small < t_big
    assert P.expected_seconds(shard, speed) < t_big


def test_train_time_matches_the_calibration_figure():
    """centernet-s at 320x240 trains ~17.7 images/s on a CPU benching 59.5 GFLOP/s (FACTS.md)."""
    speed = P.speed_from_bench(CPU_BENCH, "cpu")
    size = P.job_size("train", {"arch": "centernet-s", "epochs": 2},
                      {"shelf": P.InputStats(1000, True), "model": P.InputStats(0, False)})
    per_image_s = (P.expected_seconds(size, speed) - P.STARTUP_S) / 2000
    assert 1 / per_image_s == pytest.approx(17.7, rel=0.05)
    with pytest.raises(P.PricingError, match="no images"):
        P.job_size("train", {"epochs": 1}, {})
    infer = P.job_size("infer", {}, {"photos": P.InputStats(10, True), "model": P.InputStats(0, True)})
    assert infer.flop > 0 and P.expected_seconds(infer, speed) > P.STARTUP_S
    v = P.job_size("verify-train", {"arch": "centernet-xs"}, {"held": P.InputStats(50, True)})
    assert v.flop == pytest.approx(50 * 128 * 96 * P.FLOP_PER_PIXEL["centernet-xs"] * P.INFER_SHARE)
    assert P.job_size("verify-render", {"sample": 3}).frames == 3
    with pytest.raises(P.PricingError, match="no pricing model"):
        P.job_size("python", {})


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
