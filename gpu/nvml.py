"""NVIDIA GPUs through NVML (nvidia-ml-py, imported as `pynvml`), the nvitop way.

- Lazy: NVML starts on the first query, once; it is shut down at interpreter exit (or by
  `close()`).
- A reading the GPU does not support, or any other NVML error on a read, comes back as
  `NA`, never as an exception.
- NVML missing (no library, driver not loaded, no permission): `Nvml.error` says why in a
  few words and the adapter reports no GPUs.
- A GPU that falls off the bus (NVMLError_GpuIsLost) is remembered as lost: its telemetry
  is `Telemetry(lost=True)` from then on, with no further NVML calls for it, until `retry()`
  (the watchdog's back-off) lets it be asked again.
- Reads that fail with a real error (not "not supported") are counted in the snapshot
  (`Telemetry.errors`, `.error`), so the watchdog can tell a failing card from a plain one.
- The power limit can be lowered and restored (`set_power_limit_w`) where the driver lets
  this process (root, usually); otherwise it says why in one line.

The pynvml module is injectable (`Nvml(module=...)`) so tests can pass a stand-in with the
same functions. Thread-safety: start-up and the lost-set are guarded by a lock; NVML
itself is thread-safe, so snapshots may run from any thread.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Mapping

from common.device_id import cuda_index_for
from gpu.model import MIB, DeviceInfo, Telemetry
from gpu.na import NA
from gpu.vendor_lib import VendorLib

log = logging.getLogger(__name__)

__all__ = ["Nvml"]


class _GpuLost(Exception):
    """Internal: NVML said the GPU is lost."""


def _is(nv: Any, e: Exception, cls_name: str) -> bool:
    cls = getattr(nv, cls_name, None)
    return isinstance(cls, type) and isinstance(e, cls)


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v)


class Nvml(VendorLib):
    """One NVML session. `module`: pynvml or a stand-in with the same names (None: import pynvml).
    `error` says why NVML cannot be used ("NVML library not found"...)."""

    SHUTDOWN = "nvmlShutdown"

    # ---- session -------------------------------------------------------------------------
    def _start(self) -> None:
        nv = self._module
        if nv is None:
            try:
                import pynvml as nv  # type: ignore[import-untyped]
            except ImportError:
                self.error = "nvidia-ml-py is not installed"
                return
            self._module = nv
        try:
            nv.nvmlInit()
        except nv.NVMLError as e:
            self.error = self._init_reason(nv, e)
            log.info("NVML not available: %s (%s)", self.error, e)
            return
        except OSError as e:  # a broken library file
            self.error = f"NVML library could not be loaded ({e})"
            return
        self._begin(nv)

    @staticmethod
    def _init_reason(nv: Any, e: Exception) -> str:
        table = [
            ("NVMLError_LibraryNotFound", "NVML library not found"),
            ("NVMLError_DriverNotLoaded", "NVIDIA driver not loaded"),
            ("NVMLError_NoPermission", "no permission to use NVML"),
            ("NVMLError_LibRmVersionMismatch", "NVIDIA driver and library versions differ; reboot"),
        ]
        for cls_name, text in table:
            cls = getattr(nv, cls_name, None)
            if isinstance(cls, type) and isinstance(e, cls):
                return text
        return f"NVML failed to start: {e}"

    # ---- queries -------------------------------------------------------------------------
    def _query(self, fn: str, *args: Any, errors: list[str] | None = None) -> Any:
        """Call `pynvml.<fn>(*args)`: the value, NA on any NVML error, `_GpuLost` if lost.
        A real error (not "not supported") is appended to `errors` as "fn: text"."""
        nv = self._module
        func = getattr(nv, fn, None)
        if func is None:  # an old nvidia-ml-py without this function
            return NA
        try:
            return func(*args)
        except nv.NVMLError as e:
            if _is(nv, e, "NVMLError_GpuIsLost"):
                raise _GpuLost(fn) from e
            if errors is not None and not (_is(nv, e, "NVMLError_NotSupported") or
                                           _is(nv, e, "NVMLError_FunctionNotFound")):
                errors.append(f"{fn}: {e}")
            return NA

    def count(self) -> int:
        """Number of GPUs NVML sees (`nvidia-smi -L | wc -l`); 0 when NVML is not available."""
        if not self.available():
            return 0
        n = self._query("nvmlDeviceGetCount")
        return n if isinstance(n, int) else 0

    def _handle(self, index: int) -> Any:
        h = self._query("nvmlDeviceGetHandleByIndex", index)
        if h is NA:
            raise LookupError(f"NVML gave no handle for GPU {index}")
        return h

    def device_info(self, index: int, env: Mapping[str, str] | None = None) -> DeviceInfo | str:
        """The fixed facts of GPU `index` (`nvidia-smi -q -i N`); a reason string if it cannot be read.
        `env` (default: this process's) decides its CUDA index (CUDA_VISIBLE_DEVICES)."""
        if not self.available():
            return self.error or "NVML not available"
        try:
            h = self._handle(index)
            q: Callable[..., Any] = self._query
            uuid = q("nvmlDeviceGetUUID", h)
            name = q("nvmlDeviceGetName", h)
            mem = q("nvmlDeviceGetMemoryInfo", h)
            cuda = q("nvmlSystemGetCudaDriverVersion")
            limit_mw = q("nvmlDeviceGetPowerManagementLimit", h)
            pci = q("nvmlDeviceGetPciInfo", h)
            bus_id = getattr(pci, "busId", None) if pci is not NA else None
            info = DeviceInfo(
                id=f"cuda:{index}",
                key=_text(uuid) if uuid is not NA else f"cuda:{index}",
                kind="cuda",
                index=index,
                name=_text(name) if name is not NA else f"NVIDIA GPU {index}",
                memory_total_mb=mem.total // MIB if mem is not NA else NA,
                uuid=_text(uuid) if uuid is not NA else NA,
                driver_version=_text(d) if (d := q("nvmlSystemGetDriverVersion")) is not NA else NA,
                cuda_version=f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) else NA,
                pcie_gen=q("nvmlDeviceGetCurrPcieLinkGeneration", h),
                pcie_width=q("nvmlDeviceGetCurrPcieLinkWidth", h),
                pcie_max_gen=q("nvmlDeviceGetMaxPcieLinkGeneration", h),
                pcie_max_width=q("nvmlDeviceGetMaxPcieLinkWidth", h),
                power_limit_w=limit_mw / 1000.0 if isinstance(limit_mw, (int, float)) else NA,
                cuda_index=cuda_index_for(_text(uuid) if uuid is not NA else None, index,
                                          os.environ if env is None else env),
                pci_bus_id=_text(bus_id) if bus_id else NA,
            )
        except _GpuLost:
            self._mark_lost(index)
            return "GPU is lost (fell off the bus)"
        except LookupError as e:
            return str(e)
        return info

    # ---- power limit ---------------------------------------------------------------------
    def power_limits_w(self, index: int) -> tuple[float, float, float] | None:
        """(current, default, lowest allowed) power limit in W (`nvidia-smi -q -d POWER`), None if unknown."""
        if not self.available() or self.is_lost(index):
            return None
        try:
            h = self._handle(index)
            cur = self._query("nvmlDeviceGetPowerManagementLimit", h)
            default = self._query("nvmlDeviceGetPowerManagementDefaultLimit", h)
            bounds = self._query("nvmlDeviceGetPowerManagementLimitConstraints", h)
        except (_GpuLost, LookupError):
            return None
        if not isinstance(cur, (int, float)) or not isinstance(default, (int, float)):
            return None
        low = bounds[0] if isinstance(bounds, (list, tuple)) and bounds else 0
        return cur / 1000.0, default / 1000.0, low / 1000.0

    def set_power_limit_w(self, index: int, watts: float) -> str | None:
        """Set GPU `index`'s power limit (`nvidia-smi -i N -pl W`); None when done, else why not
        in one line (no permission: NVML lets only root change it)."""
        if not self.available():
            return self.error or "NVML not available"
        nv = self._module
        if getattr(nv, "nvmlDeviceSetPowerManagementLimit", None) is None:
            return "this NVML cannot set power limits"
        try:
            h = self._handle(index)
            nv.nvmlDeviceSetPowerManagementLimit(h, int(round(watts * 1000)))
        except _GpuLost:
            return "GPU is lost (fell off the bus)"
        except LookupError as e:
            return str(e)
        except nv.NVMLError as e:
            if _is(nv, e, "NVMLError_NoPermission"):
                return "no permission to set the power limit (NVML allows it to root only)"
            if _is(nv, e, "NVMLError_NotSupported"):
                return "this GPU does not support setting a power limit"
            return f"NVML refused the power limit: {e}"
        return None

    def telemetry(self, index: int) -> Telemetry:
        """One snapshot of GPU `index` (`nvidia-smi --query-gpu=utilization.gpu,memory.used,
        temperature.gpu,power.draw,fan.speed,clocks.sm,clocks.mem --format=csv -i N`).

        Unsupported readings are NA; a lost GPU gives `lost=True`. Never raises.
        """
        if self.is_lost(index):
            return Telemetry.lost_now()
        if not self.available():
            return Telemetry(timestamp=time.time())
        nv = self._module
        errs: list[str] = []

        def q(fn: str, *args: Any) -> Any:
            return self._query(fn, *args, errors=errs)

        try:
            h = self._handle(index)
            util = q("nvmlDeviceGetUtilizationRates", h)
            mem = q("nvmlDeviceGetMemoryInfo", h)
            power_mw = q("nvmlDeviceGetPowerUsage", h)
            return Telemetry(
                timestamp=time.time(),
                util_pct=util.gpu if util is not NA else NA,
                mem_used_mb=mem.used // MIB if mem is not NA else NA,
                mem_total_mb=mem.total // MIB if mem is not NA else NA,
                temp_c=q("nvmlDeviceGetTemperature", h, getattr(nv, "NVML_TEMPERATURE_GPU", 0)),
                power_w=power_mw / 1000.0 if isinstance(power_mw, (int, float)) else NA,
                fan_pct=q("nvmlDeviceGetFanSpeed", h),
                clock_sm_mhz=q("nvmlDeviceGetClockInfo", h, getattr(nv, "NVML_CLOCK_SM", 1)),
                clock_mem_mhz=q("nvmlDeviceGetClockInfo", h, getattr(nv, "NVML_CLOCK_MEM", 2)),
                errors=len(errs), error=errs[-1] if errs else None,
            )
        except _GpuLost:
            log.warning("GPU %d is lost (NVML_ERROR_GPU_IS_LOST); its readings stop", index)
            self._mark_lost(index)
            return Telemetry.lost_now()
        except LookupError as e:
            return Telemetry(timestamp=time.time(), errors=1, error=str(e))
