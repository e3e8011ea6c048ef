"""Price floors: the default from the benchmark and the shipped reference price, never below
the electricity, never 0; filled in once for devices without one; a floor of 0 is refused."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from app.context import AppContext
from app.floors import default_floor, fill_default_floors, floor_is_set, reference_price, set_floor
from app.resources import resource_path

GPU = SimpleNamespace(id="cuda:0", key="GPU-1", kind="cuda", name="NVIDIA GeForce RTX 3070", power_limit_w=220.0)
CPU = SimpleNamespace(id="cpu", key="cpu", kind="cpu", name="CPU", power_limit_w=None)


def test_reference_data_is_dated_and_sourced():
    d = json.loads(resource_path("data", "reference_prices.json").read_text())
    assert d["source"] and d["retrieved"] and d["as_of"] and d["reference"]["usd_per_hour"] > 0
    assert reference_price().fp32_matmul_gflops > 0


def test_default_scales_with_the_benchmark_and_never_goes_below_electricity():
    s = AppContext.open().settings
    s.earnings.ntk_usd, s.earnings.electricity_usd_per_kwh = 0.01, 0.10
    ref = reference_price()
    fast = default_floor(GPU, {"matmul": {"gflops": ref.fp32_matmul_gflops}}, s)
    assert fast.measured and fast.usd_per_hour == pytest.approx(ref.usd_per_hour) and fast.ntk_per_hour == 20.0
    slow = default_floor(GPU, {"matmul": {"gflops": 100.0}}, s)  # a weak card: its power costs more than its share
    assert slow.usd_per_hour == pytest.approx(0.22 * 0.10) and "from its electricity" in slow.basis
    guessed = default_floor(CPU, None, s)
    assert not guessed.measured and guessed.ntk_per_hour > 0 and "assumed" in guessed.basis
    s.earnings.electricity_usd_per_kwh, s.earnings.ntk_usd = 0.0, 0.0  # free power, unknown NTK price: still > 0
    assert default_floor(CPU, None, s).ntk_per_hour > 0


def test_fill_sets_only_missing_floors_and_set_floor_refuses_zero():
    ctx = AppContext.open()
    ctx.settings.device("GPU-1").price_floor_ntk_per_hour = 3.0
    done = fill_default_floors(ctx, [CPU, GPU], lambda key: {"matmul": {"gflops": 60.0}})
    assert set(done) == {"cpu"} and ctx.settings.device("GPU-1").price_floor_ntk_per_hour == 3.0
    assert floor_is_set(ctx.settings, "cpu")
    saved = json.loads(ctx.paths.settings_file.read_text())
    assert saved["devices"]["cpu"]["price_floor_ntk_per_hour"] == done["cpu"].ntk_per_hour
    for bad in (0, -1, "x", float("nan")):
        with pytest.raises(ValueError, match="price floor"):
            set_floor(ctx, "cpu", bad)
    assert set_floor(ctx, "cpu", 0.25) == 0.25
