"""A stand-in for AMD SMI (the `amdsmi` package), for machines without an AMD GPU or ROCm.

Same function names, argument shapes and return dicts as amdsmi 6.x/7.x (units as the
library gives them: VRAM in MB, socket power in W, power caps in µW, clocks in MHz, fan
speed in raw units against a maximum of 255, PCIe speed in MT/s), its enum names, and an
`AmdSmiLibraryException` carrying the library's status codes. Only the functions gpu/amd.py
uses exist; calling them before `amdsmi_init()` raises AMDSMI_STATUS_NOT_INIT.

    from tests.gpu.amdsmi_standin import make_amd_standin, RX_580, RX_6800
    smi = make_amd_standin(gpus=[RX_580, RX_6800])
    smi.set_reading(0, temp_c=90)             # change live readings
    smi.set_unsupported(1, "fan")             # AMDSMI_STATUS_NOT_SUPPORTED from now on
    smi.lose(1)                               # the card stops answering (NOT_FOUND)
    smi.fail(0, IO)                           # every call on card 0 errors
    make_amd_standin(init_error=DRIVER_NOT_LOADED)
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

__all__ = ["AmdGpuSpec", "AmdSmiStandin", "make_amd_standin", "RX_580", "RX_6800", "AmdSmiLibraryException",
           "NOT_SUPPORTED", "NO_PERM", "IO", "NOT_FOUND", "NOT_INIT", "DRIVER_NOT_LOADED"]

NOT_SUPPORTED, NO_PERM, IO, INIT_ERROR, NOT_FOUND, NOT_INIT, DRIVER_NOT_LOADED = 2, 10, 12, 18, 31, 32, 34


class AmdSmiLibraryException(Exception):
    """As amdsmi.AmdSmiLibraryException: a status code, `get_error_code()`."""

    def __init__(self, err_code: int):
        super().__init__(err_code)
        self.err_code = err_code

    def get_error_code(self) -> int:
        return self.err_code

    def __str__(self) -> str:
        return f"An error occurred with code: {self.err_code}"


class AmdSmiInitFlags(IntEnum):
    INIT_AMD_GPUS = 2


class AmdSmiTemperatureType(IntEnum):
    EDGE = 0
    HOTSPOT = 1


class AmdSmiTemperatureMetric(IntEnum):
    CURRENT = 0


class AmdSmiClkType(IntEnum):
    GFX = 0
    MEM = 4


@dataclass
class AmdGpuSpec:
    name: str
    uuid: str
    bdf: str
    vram_total_mb: int
    pcie_speed_mts: int
    pcie_width: int
    pcie_max_gen: int
    pcie_max_width: int
    power_cap_w: float
    util_pct: int = 0
    vram_used_mb: int = 200
    temp_c: int = 40
    power_w: int = 15
    fan_raw: int = 60  # of 255
    gfx_mhz: int = 300
    mem_mhz: int = 300
    unsupported: frozenset[str] = field(default_factory=frozenset)
    """Readings answering NOT_SUPPORTED: "util", "vram", "temp", "power", "fan", "clock", "pcie", "power_cap"."""
    lost: bool = False
    error: int | None = None
    default_cap_w: float | None = None
    """The factory power cap (None: `power_cap_w`); the lowest allowed is half of it."""


# An RX 580 8 GB from an Ethereum rig, on a PCIe gen3 x1 riser (the card does gen3 x16).
RX_580 = AmdGpuSpec(name="Radeon RX 580 Series", uuid="a5ff67df-0000-1000-8002-3b4c5d6e7580", bdf="0000:05:00.0",
                    vram_total_mb=8192, pcie_speed_mts=8000, pcie_width=1, pcie_max_gen=3, pcie_max_width=16,
                    power_cap_w=145.0, util_pct=97, vram_used_mb=4300, temp_c=64, power_w=121, fan_raw=140,
                    gfx_mhz=1257, mem_mhz=2000)
# An RX 6800 16 GB in a full slot.
RX_6800 = AmdGpuSpec(name="AMD Radeon RX 6800", uuid="73bf5a1e-0000-1000-80c2-9d8e7f606800", bdf="0000:0a:00.0",
                     vram_total_mb=16368, pcie_speed_mts=16000, pcie_width=16, pcie_max_gen=4, pcie_max_width=16,
                     power_cap_w=203.0, util_pct=99, vram_used_mb=6100, temp_c=71, power_w=187, fan_raw=110,
                     gfx_mhz=2105, mem_mhz=2000)


class _Handle:
    def __init__(self, index: int):
        self.index = index


class AmdSmiStandin:
    """Module-like object with amdsmi's names."""

    AmdSmiLibraryException = AmdSmiLibraryException
    AmdSmiInitFlags = AmdSmiInitFlags
    AmdSmiTemperatureType = AmdSmiTemperatureType
    AmdSmiTemperatureMetric = AmdSmiTemperatureMetric
    AmdSmiClkType = AmdSmiClkType

    def __init__(self, gpus: list[AmdGpuSpec], init_error: int | None = None):
        self.gpus = [replace(g) for g in gpus]
        self.init_error = init_error
        self.initialised = 0
        self.shutdowns = 0
        self.allow_power_cap = False
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    # ---- test controls -----------------------------------------------------------------------
    def set_reading(self, index: int, **values: Any) -> None:
        with self._lock:
            self.gpus[index] = replace(self.gpus[index], **values)

    def set_unsupported(self, index: int, *readings: str) -> None:
        self.set_reading(index, unsupported=frozenset(readings))

    def lose(self, index: int) -> None:
        self.set_reading(index, lost=True)

    def fail(self, index: int, code: int = IO) -> None:
        self.set_reading(index, error=code)

    def heal(self, index: int) -> None:
        self.set_reading(index, lost=False, error=None)

    # ---- helpers -----------------------------------------------------------------------------
    def _gpu(self, fn: str, h: _Handle, reading: str | None = None) -> AmdGpuSpec:
        with self._lock:
            self.calls[fn] += 1
        if not self.initialised:
            raise AmdSmiLibraryException(NOT_INIT)
        g = self.gpus[h.index]
        if g.lost:
            raise AmdSmiLibraryException(NOT_FOUND)
        if g.error:
            raise AmdSmiLibraryException(g.error)
        if reading in g.unsupported:
            raise AmdSmiLibraryException(NOT_SUPPORTED)
        return g

    # ---- the amdsmi API ----------------------------------------------------------------------
    def amdsmi_init(self, flag: AmdSmiInitFlags = AmdSmiInitFlags.INIT_AMD_GPUS) -> None:
        self.calls["amdsmi_init"] += 1
        if self.init_error:
            raise AmdSmiLibraryException(self.init_error)
        self.initialised += 1

    def amdsmi_shut_down(self) -> None:
        self.initialised -= 1
        self.shutdowns += 1

    def amdsmi_get_processor_handles(self) -> list[_Handle]:
        if not self.initialised:
            raise AmdSmiLibraryException(NOT_INIT)
        return [_Handle(i) for i in range(len(self.gpus))]

    def amdsmi_get_gpu_device_uuid(self, h: _Handle) -> str:
        return self._gpu("amdsmi_get_gpu_device_uuid", h).uuid

    def amdsmi_get_gpu_device_bdf(self, h: _Handle) -> str:
        return self._gpu("amdsmi_get_gpu_device_bdf", h).bdf

    def amdsmi_get_gpu_asic_info(self, h: _Handle) -> dict[str, Any]:
        g = self._gpu("amdsmi_get_gpu_asic_info", h)
        return {"market_name": g.name, "vendor_id": "0x1002", "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]",
                "device_id": "0x67df", "rev_id": "0xe7", "asic_serial": "N/A", "num_compute_units": 36,
                "target_graphics_version": "gfx803"}

    def amdsmi_get_gpu_vram_usage(self, h: _Handle) -> dict[str, int]:
        g = self._gpu("amdsmi_get_gpu_vram_usage", h, "vram")
        return {"vram_total": g.vram_total_mb, "vram_used": g.vram_used_mb}

    def amdsmi_get_gpu_driver_info(self, h: _Handle) -> dict[str, str]:
        self._gpu("amdsmi_get_gpu_driver_info", h)
        return {"driver_name": "amdgpu", "driver_version": "6.8.0", "driver_date": "2015/01/01 00:00"}

    def amdsmi_get_pcie_info(self, h: _Handle) -> dict[str, Any]:
        g = self._gpu("amdsmi_get_pcie_info", h, "pcie")
        return {"pcie_static": {"max_pcie_width": g.pcie_max_width, "max_pcie_speed": 8000 if g.pcie_max_gen == 3
                                else 16000, "pcie_interface_version": g.pcie_max_gen, "slot_type": "PCIE"},
                "pcie_metric": {"pcie_width": g.pcie_width, "pcie_speed": g.pcie_speed_mts, "pcie_bandwidth": "N/A"}}

    def amdsmi_get_power_cap_info(self, h: _Handle) -> dict[str, int]:
        g = self._gpu("amdsmi_get_power_cap_info", h, "power_cap")
        cap = round(g.power_cap_w * 1e6)
        default = round((g.default_cap_w or g.power_cap_w) * 1e6)
        return {"power_cap": cap, "default_power_cap": default, "dpm_cap": 0, "min_power_cap": default // 2,
                "max_power_cap": default}

    def amdsmi_set_power_cap(self, h: _Handle, sensor_ind: int, cap: int) -> None:
        g = self._gpu("amdsmi_set_power_cap", h, "power_cap")
        if not self.allow_power_cap:
            raise AmdSmiLibraryException(NO_PERM)
        self.set_reading(h.index, power_cap_w=cap / 1e6, default_cap_w=g.default_cap_w or g.power_cap_w)

    def amdsmi_get_gpu_activity(self, h: _Handle) -> dict[str, Any]:
        g = self._gpu("amdsmi_get_gpu_activity", h, "util")
        return {"gfx_activity": g.util_pct, "umc_activity": g.util_pct // 2, "mm_activity": "N/A"}

    def amdsmi_get_temp_metric(self, h: _Handle, sensor: AmdSmiTemperatureType, metric: AmdSmiTemperatureMetric) -> int:
        g = self._gpu("amdsmi_get_temp_metric", h, "temp")
        if not isinstance(sensor, AmdSmiTemperatureType) or not isinstance(metric, AmdSmiTemperatureMetric):
            raise TypeError("sensor and metric must be amdsmi enums")
        return g.temp_c

    def amdsmi_get_power_info(self, h: _Handle) -> dict[str, Any]:
        g = self._gpu("amdsmi_get_power_info", h, "power")
        return {"socket_power": g.power_w, "current_socket_power": "N/A", "average_socket_power": g.power_w,
                "gfx_voltage": 1100, "soc_voltage": 900, "mem_voltage": 1350, "power_limit": round(g.power_cap_w)}

    def amdsmi_get_gpu_fan_speed(self, h: _Handle, sensor_idx: int) -> int:
        return self._gpu("amdsmi_get_gpu_fan_speed", h, "fan").fan_raw

    def amdsmi_get_gpu_fan_speed_max(self, h: _Handle, sensor_idx: int) -> int:
        self._gpu("amdsmi_get_gpu_fan_speed_max", h, "fan")
        return 255

    def amdsmi_get_clock_info(self, h: _Handle, clock_type: AmdSmiClkType) -> dict[str, Any]:
        g = self._gpu("amdsmi_get_clock_info", h, "clock")
        clk = g.gfx_mhz if clock_type == AmdSmiClkType.GFX else g.mem_mhz
        return {"clk": clk, "min_clk": 300, "max_clk": max(clk, 2000), "clk_locked": False, "clk_deep_sleep": 0}


def make_amd_standin(gpus: list[AmdGpuSpec] | None = None, *, init_error: int | None = None) -> AmdSmiStandin:
    """A fresh stand-in: `gpus` (default: an RX 580 on an x1 riser and an RX 6800), or
    `init_error` (a status code such as DRIVER_NOT_LOADED) raised by amdsmi_init."""
    return AmdSmiStandin([RX_580, RX_6800] if gpus is None else gpus, init_error)
