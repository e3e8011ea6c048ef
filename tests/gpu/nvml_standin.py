"""A stand-in for the NVML API (the `pynvml` module of nvidia-ml-py), for machines without a GPU.

Same function names and return shapes as pynvml, recorded values of real cards, and the
real `pynvml.NVMLError` subclasses for errors. Only the functions gpu/nvml.py uses exist;
calling anything before `nvmlInit()` raises NVMLError_Uninitialized like the real library.

Usage (e.g. from a UI test):

    from tests.gpu.nvml_standin import make_standin, RTX_3070_X1, RTX_3090_X16
    nv = make_standin(gpus=[RTX_3070_X1, RTX_3090_X16])      # two fake GPUs
    service = DeviceService(ctx, nvml_module=nv, idle=lambda: 0.0)
    nv.set_reading(0, temp_c=90, power_w=200)                  # change live readings
    nv.set_unsupported(1, "fan", "power")                      # NotSupported from now on
    nv.lose(1)                                                 # GPU 1 falls off the bus
    nv.fail(0, "Unknown")                                      # every call on GPU 0 errors
    nv.heal(1)                                                 # GPU 1 answers again (lost or failing)
    nv.allow_power_limit = True                                # as root: power limits may be set
    make_standin(init_error="LibraryNotFound")                 # no NVML at all
    make_standin(gpus=[])                                      # NVML runs, no GPU

Readings (`set_reading` keywords): util_pct, mem_used_mb, temp_c, power_w, fan_pct,
clock_sm_mhz, clock_mem_mhz. `nv.calls` counts calls per function name. `standin_rig(n)` gives
n cards (an 8-GPU rig of RTX 3070s on risers, each with its own uuid and bus id).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import pynvml

MIB = 1024 * 1024

__all__ = ["GpuSpec", "NvmlStandin", "make_standin", "standin_rig", "RTX_3070_X1", "RTX_3090_X16", "DRIVER",
           "CUDA"]

DRIVER = "535.183.01"
CUDA = 12020  # nvmlSystemGetCudaDriverVersion for "12.2"


@dataclass
class GpuSpec:
    """One card: fixed facts and current readings, in the units the app shows."""

    name: str
    uuid: str
    memory_total_mb: int
    pcie_gen: int
    pcie_width: int
    pcie_max_gen: int
    pcie_max_width: int
    power_limit_w: float
    util_pct: int = 0
    mem_used_mb: int = 300
    temp_c: int = 40
    power_w: float = 20.0
    fan_pct: int = 30
    clock_sm_mhz: int = 210
    clock_mem_mhz: int = 405
    unsupported: frozenset[str] = field(default_factory=frozenset)
    """Readings that raise NVMLError_NotSupported: any of "util", "memory", "temp", "power",
    "fan", "clock_sm", "clock_mem", "power_limit", "pcie"."""
    lost: bool = False
    error: str | None = None
    """An NVML error every call on this card raises ("Unknown", "Timeout"...): a failing card."""
    bus_id: str = "00000000:01:00.0"
    default_power_limit_w: float | None = None
    """The factory limit (None: `power_limit_w`); the lowest allowed is half of it."""


# An RTX 3070 mining on a PCIe gen3 x1 riser (the link runs at gen3 x1; the card can do gen4 x16).
RTX_3070_X1 = GpuSpec(
    name="NVIDIA GeForce RTX 3070", uuid="GPU-5e2a7f0c-3d1b-4c8e-9a61-2f7d0b9c3070",
    memory_total_mb=8192, pcie_gen=3, pcie_width=1, pcie_max_gen=4, pcie_max_width=16,
    power_limit_w=220.0, util_pct=98, mem_used_mb=4610, temp_c=62, power_w=117.4, fan_pct=55,
    clock_sm_mhz=1110, clock_mem_mhz=7000,
)
# An RTX 3090 in a full x16 slot; its fan reading is not supported (a water-cooled card).
RTX_3090_X16 = GpuSpec(
    name="NVIDIA GeForce RTX 3090", uuid="GPU-a1b2c3d4-e5f6-4711-8899-aabbccdd3090",
    memory_total_mb=24576, pcie_gen=4, pcie_width=16, pcie_max_gen=4, pcie_max_width=16,
    power_limit_w=350.0, util_pct=100, mem_used_mb=5230, temp_c=70, power_w=290.2, fan_pct=75,
    clock_sm_mhz=1395, clock_mem_mhz=9751, unsupported=frozenset({"fan"}), bus_id="00000000:02:00.0",
)

_CALL_ERRORS = {
    "Unknown": pynvml.NVML_ERROR_UNKNOWN,
    "Timeout": pynvml.NVML_ERROR_TIMEOUT,
    "IrqIssue": pynvml.NVML_ERROR_IRQ_ISSUE,
    "ResetRequired": pynvml.NVML_ERROR_RESET_REQUIRED,
}

_INIT_ERRORS = {
    "LibraryNotFound": pynvml.NVML_ERROR_LIBRARY_NOT_FOUND,
    "DriverNotLoaded": pynvml.NVML_ERROR_DRIVER_NOT_LOADED,
    "NoPermission": pynvml.NVML_ERROR_NO_PERMISSION,
    "Unknown": pynvml.NVML_ERROR_UNKNOWN,
}


class _Handle:
    def __init__(self, index: int):
        self.index = index

    def __repr__(self) -> str:
        return f"<standin nvmlDevice_t {self.index}>"


class NvmlStandin:
    """Module-like object with pynvml's names. Thread-safe enough for a poll thread."""

    def __init__(self, gpus: list[GpuSpec], init_error: str | None = None):
        # Copy the error classes and constants so `except nv.NVMLError_...` works as with pynvml.
        for name in dir(pynvml):
            if name.startswith("NVMLError") or name.startswith("NVML_"):
                setattr(self, name, getattr(pynvml, name))
        self.gpus = [replace(g) for g in gpus]
        self.init_error = init_error
        self.initialised = 0
        self.shutdowns = 0
        self.calls: Counter[str] = Counter()
        self.allow_power_limit = False
        """False: setting a power limit raises NoPermission (not root), as on most desktops."""
        self._lock = threading.Lock()

    # ---- test controls --------------------------------------------------------------------
    def set_reading(self, index: int, **values: Any) -> None:
        with self._lock:
            self.gpus[index] = replace(self.gpus[index], **values)

    def set_unsupported(self, index: int, *readings: str) -> None:
        with self._lock:
            self.gpus[index] = replace(self.gpus[index], unsupported=frozenset(readings))

    def lose(self, index: int) -> None:
        """The GPU falls off the bus: every call on its handle raises NVMLError_GpuIsLost."""
        with self._lock:
            self.gpus[index] = replace(self.gpus[index], lost=True)

    def fail(self, index: int, error: str = "Unknown") -> None:
        """Every call on this card's handle raises NVMLError `error` (a key of _CALL_ERRORS)."""
        with self._lock:
            self.gpus[index] = replace(self.gpus[index], error=error)

    def heal(self, index: int) -> None:
        """The card answers again: no longer lost nor failing."""
        with self._lock:
            self.gpus[index] = replace(self.gpus[index], lost=False, error=None)

    # ---- helpers --------------------------------------------------------------------------
    @staticmethod
    def _raise(code: int) -> None:
        raise pynvml.NVMLError(code)  # __new__ maps the code to the NVMLError_* subclass

    def _count(self, fn: str) -> None:
        with self._lock:
            self.calls[fn] += 1
        if not self.initialised:
            self._raise(pynvml.NVML_ERROR_UNINITIALIZED)

    def _gpu(self, fn: str, handle: _Handle, reading: str | None = None) -> GpuSpec:
        self._count(fn)
        if not isinstance(handle, _Handle) or not 0 <= handle.index < len(self.gpus):
            self._raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        g = self.gpus[handle.index]
        if g.lost:
            self._raise(pynvml.NVML_ERROR_GPU_IS_LOST)
        if g.error:
            self._raise(_CALL_ERRORS[g.error])
        if reading is not None and reading in g.unsupported:
            self._raise(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return g

    # ---- the pynvml API -------------------------------------------------------------------
    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if self.init_error:
            self._raise(_INIT_ERRORS[self.init_error])
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._count("nvmlShutdown")
        self.initialised -= 1
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._count("nvmlSystemGetDriverVersion")
        return DRIVER

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._count("nvmlSystemGetCudaDriverVersion")
        return CUDA

    def nvmlDeviceGetCount(self) -> int:
        self._count("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._count("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            self._raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if self.gpus[index].lost:
            self._raise(pynvml.NVML_ERROR_GPU_IS_LOST)
        return _Handle(index)

    def nvmlDeviceGetPciInfo(self, h: _Handle) -> SimpleNamespace:
        g = self._gpu("nvmlDeviceGetPciInfo", h)
        return SimpleNamespace(busId=g.bus_id.encode(), busIdLegacy=g.bus_id[4:].encode())

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h: _Handle) -> int:
        g = self._gpu("nvmlDeviceGetPowerManagementDefaultLimit", h, "power_limit")
        return round((g.default_power_limit_w or g.power_limit_w) * 1000)

    def nvmlDeviceGetPowerManagementLimitConstraints(self, h: _Handle) -> list[int]:
        g = self._gpu("nvmlDeviceGetPowerManagementLimitConstraints", h, "power_limit")
        default = g.default_power_limit_w or g.power_limit_w
        return [round(default * 500), round(default * 1000)]

    def nvmlDeviceSetPowerManagementLimit(self, h: _Handle, limit_mw: int) -> None:
        g = self._gpu("nvmlDeviceSetPowerManagementLimit", h, "power_limit")
        if not self.allow_power_limit:
            self._raise(pynvml.NVML_ERROR_NO_PERMISSION)
        default = g.default_power_limit_w or g.power_limit_w
        if not default * 500 <= limit_mw <= default * 1000:
            self._raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        with self._lock:
            self.gpus[h.index] = replace(g, power_limit_w=limit_mw / 1000.0, default_power_limit_w=default)

    def nvmlDeviceGetName(self, h: _Handle) -> str:
        return self._gpu("nvmlDeviceGetName", h).name

    def nvmlDeviceGetUUID(self, h: _Handle) -> str:
        return self._gpu("nvmlDeviceGetUUID", h).uuid

    def nvmlDeviceGetMemoryInfo(self, h: _Handle, version: Any = None) -> SimpleNamespace:
        g = self._gpu("nvmlDeviceGetMemoryInfo", h, "memory")
        total, used = g.memory_total_mb * MIB, g.mem_used_mb * MIB
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: _Handle) -> int:
        return self._gpu("nvmlDeviceGetCurrPcieLinkGeneration", h, "pcie").pcie_gen

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: _Handle) -> int:
        return self._gpu("nvmlDeviceGetCurrPcieLinkWidth", h, "pcie").pcie_width

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h: _Handle) -> int:
        return self._gpu("nvmlDeviceGetMaxPcieLinkGeneration", h, "pcie").pcie_max_gen

    def nvmlDeviceGetMaxPcieLinkWidth(self, h: _Handle) -> int:
        return self._gpu("nvmlDeviceGetMaxPcieLinkWidth", h, "pcie").pcie_max_width

    def nvmlDeviceGetPowerManagementLimit(self, h: _Handle) -> int:
        return round(self._gpu("nvmlDeviceGetPowerManagementLimit", h, "power_limit").power_limit_w * 1000)

    def nvmlDeviceGetUtilizationRates(self, h: _Handle) -> SimpleNamespace:
        g = self._gpu("nvmlDeviceGetUtilizationRates", h, "util")
        return SimpleNamespace(gpu=g.util_pct, memory=min(100, g.util_pct // 2))

    def nvmlDeviceGetTemperature(self, h: _Handle, sensor: int) -> int:
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            self._raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self._gpu("nvmlDeviceGetTemperature", h, "temp").temp_c

    def nvmlDeviceGetPowerUsage(self, h: _Handle) -> int:
        return round(self._gpu("nvmlDeviceGetPowerUsage", h, "power").power_w * 1000)

    def nvmlDeviceGetFanSpeed(self, h: _Handle) -> int:
        return self._gpu("nvmlDeviceGetFanSpeed", h, "fan").fan_pct

    def nvmlDeviceGetClockInfo(self, h: _Handle, clock: int) -> int:
        if clock == pynvml.NVML_CLOCK_SM:
            return self._gpu("nvmlDeviceGetClockInfo", h, "clock_sm").clock_sm_mhz
        if clock == pynvml.NVML_CLOCK_MEM:
            return self._gpu("nvmlDeviceGetClockInfo", h, "clock_mem").clock_mem_mhz
        self._raise(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        raise AssertionError  # unreachable


def standin_rig(n: int = 8, rig: int = 0) -> list[GpuSpec]:
    """`n` RTX 3070s on x1 risers, as on a former Ethereum rig: own uuids (`rig` tells rigs
    apart), bus ids, readings."""
    out = []
    for i in range(n):
        out.append(replace(RTX_3070_X1, uuid=f"GPU-5e2a7f0c-3d1b-4c8e-{0x9a61 + rig:04x}-{i:012x}", bus_id=f"00000000:{i + 3:02x}:00.0",
                           temp_c=58 + i, power_w=110.0 + i, util_pct=95 + i % 5))
    return out


def make_standin(gpus: list[GpuSpec] | None = None, *, init_error: str | None = None) -> NvmlStandin:
    """A fresh stand-in: `gpus` (default: the RTX 3070 on an x1 riser and the RTX 3090 at x16),
    or `init_error` ("LibraryNotFound", "DriverNotLoaded", "NoPermission", "Unknown") raised by nvmlInit."""
    return NvmlStandin([RTX_3070_X1, RTX_3090_X16] if gpus is None else gpus, init_error)
