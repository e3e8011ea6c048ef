"""Price floors: the least a device takes per expected device-hour (NTK), never 0.

A device's default floor comes from the dated reference price in
resources/data/reference_prices.json (what a reference GPU rents for per hour, with its
benchmark figure) scaled by the device's own benchmark, and never below what its electricity
costs per hour; it is converted to NTK at the NTK price of Settings -> Earnings. The miner
claims a job only if its reward per expected device-hour is at least the device's floor
(app.miner.claims), so a device with no floor set gets this default written into its
settings before the miner starts (`fill_default_floors`), and `missing_floors` names any
mining device whose floor is still 0 (the rig's readiness says so).

Pure functions over settings and a benchmark result, plus `fill_default_floors` /
`set_floor`, which save the settings (the owner serialises settings writes).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from app.context import AppContext
from app.resources import resource_path
from app.settings import Settings
from gpu.bench import BenchStore

log = logging.getLogger(__name__)

DATA_FILE = "reference_prices.json"
FALLBACK_NTK_USD = 0.01
"""NTK price used when the setting is 0 (unknown): the settings' default."""
MIN_FLOOR_NTK_PER_HOUR = 1e-6
"""Below this a floor is taken as not set (the field accepts 0 from older settings files)."""


@dataclass(frozen=True)
class ReferencePrice:
    device: str
    usd_per_hour: float
    fp32_matmul_gflops: float
    unbenchmarked_gflops: Mapping[str, float]
    source: str
    as_of: str
    retrieved: str


@lru_cache(maxsize=1)
def reference_price() -> ReferencePrice:
    """The shipped reference price (resources/data/reference_prices.json)."""
    d = json.loads(resource_path("data", DATA_FILE).read_text(encoding="utf-8"))
    ref = d["reference"]
    return ReferencePrice(ref["device"], float(ref["usd_per_hour"]), float(ref["fp32_matmul_gflops"]),
                          {k: float(v) for k, v in d["unbenchmarked_gflops"].items()}, d["source"], d["as_of"],
                          d["retrieved"])


@dataclass(frozen=True)
class FloorDefault:
    """A device's default floor and how it was reached (for the Devices view and the wizard)."""

    ntk_per_hour: float
    usd_per_hour: float
    gflops: float
    measured: bool
    """False: no benchmark yet, the device kind's assumed speed."""
    power_w: float | None
    basis: str
    """Where the figure comes from, one clause: "at $0.01/NTK, from ..." (follows the figure)."""


def _round2(x: float) -> float:
    """Two significant digits: a floor is a price people read, not a computed figure."""
    return float(f"{x:.2g}")


def device_power_w(info: Any, settings: Settings) -> float | None:
    """The power a device draws while mining, for its electricity cost: the CPU setting, a
    GPU's power limit (NVML) or its max power setting; None when unknown."""
    if info.kind == "cpu":
        return float(settings.general.cpu_power_w)
    limit = getattr(info, "power_limit_w", None)
    if isinstance(limit, (int, float)) and limit > 0:
        return float(limit)
    ds = settings.devices.get(info.key)
    return float(ds.max_power_w) if ds is not None and ds.max_power_w else None


def bench_gflops(result: Mapping[str, Any] | None) -> float | None:
    g = ((result or {}).get("matmul") or {}).get("gflops")
    return float(g) if isinstance(g, (int, float)) and not isinstance(g, bool) and g > 0 else None


def default_floor(info: Any, bench: Mapping[str, Any] | None, settings: Settings,
                  ref: ReferencePrice | None = None) -> FloorDefault:
    """The default floor of device `info` (gpu.model.DeviceInfo) from its latest benchmark."""
    ref = ref or reference_price()
    g = bench_gflops(bench)
    measured = g is not None
    if g is None:
        g = ref.unbenchmarked_gflops.get("cpu" if info.kind == "cpu" else "cuda", 50.0)
    value_usd = ref.usd_per_hour * g / ref.fp32_matmul_gflops
    power = device_power_w(info, settings)
    power_usd = (power / 1000.0) * settings.earnings.electricity_usd_per_kwh if power else 0.0
    ntk_usd = settings.earnings.ntk_usd if settings.earnings.ntk_usd > 0 else FALLBACK_NTK_USD
    usd = max(value_usd, power_usd)
    ntk = max(_round2(usd / ntk_usd), MIN_FLOOR_NTK_PER_HOUR * 10)
    speed = f"{g:,.0f} GFLOP/s {'measured' if measured else 'assumed: no benchmark yet'}"
    if usd == power_usd and power:
        why = (f"from its electricity ({power:.0f} W at ${settings.earnings.electricity_usd_per_kwh:g}/kWh = "
               f"${power_usd:.4f}/h), more than its share of the reference GPU's ${ref.usd_per_hour:g}/h "
               f"({ref.device}; {speed})")
    else:
        why = (f"from the reference GPU's rent of ${ref.usd_per_hour:g}/h ({ref.device}, {ref.as_of}) scaled by "
               f"this device's {speed} ({g / ref.fp32_matmul_gflops:.2%} of it)")
    return FloorDefault(ntk, usd, g, measured, power, f"at ${ntk_usd:g} per NTK, {why}")


def floor_is_set(settings: Settings, key: str) -> bool:
    ds = settings.devices.get(key)
    return ds is not None and ds.price_floor_ntk_per_hour >= MIN_FLOOR_NTK_PER_HOUR


def missing_floors(settings: Settings, devices: list[Any]) -> list[Any]:
    """The devices (DeviceInfo) among `devices` whose floor is not set."""
    return [d for d in devices if not floor_is_set(settings, d.key)]


def fill_default_floors(ctx: AppContext, infos: list[Any], bench_of=None) -> dict[str, FloorDefault]:
    """Give every device in `infos` without a floor its default (bench_of(key) -> latest
    benchmark or None; default: the app's benchmark file) and save once. Returns {device key:
    default} of the floors set."""
    if bench_of is None:
        bench_of = BenchStore(ctx.paths.bench_file).latest
    set_now = {}
    for info in infos:
        if floor_is_set(ctx.settings, info.key):
            continue
        try:
            bench = bench_of(info.key)
        except (OSError, ValueError):
            bench = None
        fd = default_floor(info, bench, ctx.settings)
        ctx.settings.device(info.key).price_floor_ntk_per_hour = fd.ntk_per_hour
        set_now[info.key] = fd
        log.info("price floor of %s set to its default: %s", info.id, fd.basis)
    if set_now:
        ctx.save_settings()
    return set_now


def set_floor(ctx: AppContext, key: str, ntk_per_hour: float) -> float:
    """Set device `key`'s floor (NTK per device-hour) and save; ValueError (one line) when it is
    not a positive number."""
    try:
        v = float(ntk_per_hour)
    except (TypeError, ValueError):
        raise ValueError("the price floor must be a number of NTK per hour") from None
    if not (v >= MIN_FLOOR_NTK_PER_HOUR) or v != v or v == float("inf"):
        raise ValueError("the price floor must be more than 0 NTK per hour: a miner with no floor takes any job")
    ds = ctx.settings.device(key)
    ds.price_floor_ntk_per_hour = v
    ctx.save_settings()
    return v


@dataclass(frozen=True)
class FloorView:
    """A device's floor as the Devices view and the wizard show it."""

    key: str
    device_id: str
    ntk_per_hour: float
    """The floor set now (0: none yet; the default is written before the miner starts)."""
    default: FloorDefault


def floor_views(ctx: AppContext, infos: list[Any], bench_of=None) -> dict[str, FloorView]:
    """{device id: FloorView} for `infos` (reads the benchmark file: run it off the GUI thread)."""
    if bench_of is None:
        bench_of = BenchStore(ctx.paths.bench_file).latest
    out = {}
    for info in infos:
        try:
            bench = bench_of(info.key)
        except (OSError, ValueError):
            bench = None
        ds = ctx.settings.devices.get(info.key)
        out[info.id] = FloorView(info.key, info.id, ds.price_floor_ntk_per_hour if ds else 0.0,
                                 default_floor(info, bench, ctx.settings))
    return out
