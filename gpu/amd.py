"""AMD GPUs through AMD SMI (the `amdsmi` package), behind the same interface as gpu.nvml.

- Lazy: AMD SMI starts on the first query, once; shut down at exit (or by `close()`).
- `amdsmi` is a thin ctypes binding: it needs ROCm's libamd_smi.so at run time. Where that is
  missing (most desktops: Mesa alone drives the card), importing it fails; `AmdSmi.error` then
  says why in one line and the adapter reports no GPUs. Nothing the binding prints reaches the
  user's terminal.
- A reading the card does not support comes back as `NA`; other errors are counted in the
  snapshot (`Telemetry.errors`) for the watchdog; a card that stopped answering
  (AMDSMI_STATUS_NOT_FOUND on a handle that worked) is remembered as lost until `retry()`.
- Capabilities: an AMD card renders (OpenGL through EGL on Mesa needs no ROCm); it trains
  only where torch is a ROCm build (torch names the card "cuda:N" then). `rocm_torch()` reads
  the installed torch's version without importing torch.

The module is injectable (`AmdSmi(module=...)`) so tests can pass a stand-in with the same
names (tests/gpu/amdsmi_standin.py). Thread-safety as gpu.nvml.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from typing import Any

from common.device_id import DeviceId
from gpu.model import DeviceInfo, Telemetry
from gpu.na import NA
from gpu.vendor_lib import VendorLib

log = logging.getLogger(__name__)

__all__ = ["AmdSmi", "rocm_torch"]

# AMD SMI status codes (amdsmi_status_t, the C library's ABI)
NOT_SUPPORTED, NOT_YET_IMPLEMENTED, NO_PERM, NOT_FOUND, DRIVER_NOT_LOADED = 2, 3, 10, 31, 34
_BENIGN = {NOT_SUPPORTED, NOT_YET_IMPLEMENTED}
_PCIE_GEN_BY_MTS = {2500: 1, 5000: 2, 8000: 3, 16000: 4, 32000: 5, 64000: 6}


def rocm_torch(version: str | None = None) -> str | None:
    """The installed torch's version if it is a ROCm build ("2.5.1+rocm6.2"), else None.
    `version`: use this instead of the installed one (tests)."""
    if version is None:
        import importlib.metadata as md

        try:
            version = md.version("torch")
        except md.PackageNotFoundError:
            return None
    return version if "rocm" in version.lower() else None


def _torch_text(version: str | None) -> str:
    if version is not None:
        return version
    import importlib.metadata as md

    try:
        return md.version("torch")
    except md.PackageNotFoundError:
        return "none installed"


class _GpuLost(Exception):
    """Internal: the card stopped answering."""


def _num(v: Any) -> Any:
    """A number from AMD SMI, NA for its "N/A" strings and the like."""
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else NA


class AmdSmi(VendorLib):
    """One AMD SMI session. `module`: amdsmi or a stand-in (None: import amdsmi). `torch_version`:
    the torch version that decides the `train` capability (None: the installed one)."""

    SHUTDOWN = "amdsmi_shut_down"

    def __init__(self, module: Any = None, *, torch_version: str | None = None):
        super().__init__(module)
        self._torch_version = torch_version
        self._handles: list[Any] = []

    # ---- session -----------------------------------------------------------------------------
    def _start(self) -> None:
        smi = self._module
        if smi is None:
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # it prints when ROCm is missing
                    import amdsmi as smi  # type: ignore[import-untyped]
            except ImportError:
                self.error = "amdsmi is not installed"
                return
            except Exception as e:  # KeyError('libamd_smi.so'): the binding found no library
                self.error = "AMD SMI library not found: libamd_smi.so comes with ROCm"
                log.info("amdsmi unusable: %s: %s", type(e).__name__, e)
                return
        try:
            smi.amdsmi_init(smi.AmdSmiInitFlags.INIT_AMD_GPUS)
            handles = list(smi.amdsmi_get_processor_handles())
        except smi.AmdSmiLibraryException as e:
            self.error = self._init_reason(e)
            log.info("AMD SMI not available: %s (%s)", self.error, e)
            return
        except (OSError, AttributeError) as e:
            self.error = f"AMD SMI could not be loaded ({e})"
            return
        self._handles = handles
        self._begin(smi)

    @staticmethod
    def _init_reason(e: Any) -> str:
        code = _code(e)
        if code == DRIVER_NOT_LOADED:
            return "amdgpu driver not loaded"
        if code == NO_PERM:
            return "no permission to use AMD SMI (add the user to the render and video groups)"
        return f"AMD SMI failed to start: {e}"

    # ---- queries -----------------------------------------------------------------------------
    def _query(self, fn: str, *args: Any, errors: list[str] | None = None) -> Any:
        smi = self._module
        func = getattr(smi, fn, None)
        if func is None:
            return NA
        try:
            return func(*args)
        except smi.AmdSmiLibraryException as e:
            code = _code(e)
            if code == NOT_FOUND:
                raise _GpuLost(fn) from e
            if errors is not None and code not in _BENIGN:
                errors.append(f"{fn}: {e}")
            return NA
        except (KeyError, ValueError, TypeError) as e:  # a field this library version lacks
            log.debug("%s: %s", fn, e)
            return NA

    def count(self) -> int:
        """Number of AMD GPUs (`amd-smi list | grep -c GPU`); 0 when AMD SMI is not available."""
        return len(self._handles) if self.available() else 0

    def _handle(self, index: int) -> Any:
        if not 0 <= index < len(self._handles):
            raise LookupError(f"AMD SMI has no GPU {index}")
        return self._handles[index]

    def device_info(self, index: int, env: Any = None) -> DeviceInfo | str:
        """The fixed facts of AMD GPU `index` (`amd-smi static -g N`), or why they cannot be read."""
        if not self.available():
            return self.error or "AMD SMI not available"
        try:
            h = self._handle(index)
            q = self._query
            uuid = q("amdsmi_get_gpu_device_uuid", h)
            bdf = q("amdsmi_get_gpu_device_bdf", h)
            asic = q("amdsmi_get_gpu_asic_info", h)
            vram = q("amdsmi_get_gpu_vram_usage", h)
            drv = q("amdsmi_get_gpu_driver_info", h)
            pcie = q("amdsmi_get_pcie_info", h)
            cap = q("amdsmi_get_power_cap_info", h)
        except _GpuLost:
            self._mark_lost(index)
            return "GPU is lost (it stopped answering)"
        except LookupError as e:
            return str(e)
        uuid_s = uuid if isinstance(uuid, str) and uuid and uuid != "N/A" else None
        bdf_s = bdf if isinstance(bdf, str) and bdf else None
        rocm = rocm_torch(self._torch_version)
        ident = DeviceId.amd(uuid_s, bdf_s, index, index if rocm else None)
        name = asic.get("market_name") if isinstance(asic, dict) else None
        static = pcie.get("pcie_static", {}) if isinstance(pcie, dict) else {}
        metric = pcie.get("pcie_metric", {}) if isinstance(pcie, dict) else {}
        cap_uw = cap.get("power_cap") if isinstance(cap, dict) else None
        driver = drv.get("driver_version") if isinstance(drv, dict) else None
        return DeviceInfo(
            id=ident.label, key=ident.key, kind="amd", index=index,
            name=name if isinstance(name, str) and name not in ("", "N/A") else f"AMD GPU {index}",
            memory_total_mb=_num(vram.get("vram_total")) if isinstance(vram, dict) else NA,
            uuid=uuid_s or NA,
            driver_version=driver if isinstance(driver, str) and driver != "N/A" else NA,
            pcie_gen=_PCIE_GEN_BY_MTS.get(metric.get("pcie_speed"), NA),  # type: ignore[arg-type]
            pcie_width=_num(metric.get("pcie_width")),
            pcie_max_gen=_num(static.get("pcie_interface_version")),
            pcie_max_width=_num(static.get("max_pcie_width")),
            power_limit_w=cap_uw / 1e6 if isinstance(cap_uw, (int, float)) and cap_uw > 0 else NA,
            cuda_index=ident.cuda_index,
            pci_bus_id=bdf_s or NA,
            capabilities=("render", "train") if rocm else ("render",),
            capability_note=None if rocm else f"training needs a ROCm build of torch (installed: {_torch_text(self._torch_version)})",
        )

    def telemetry(self, index: int) -> Telemetry:
        """One snapshot (`amd-smi metric -g N`: usage, VRAM, edge temperature, socket power, fan,
        GFX and memory clocks). Unsupported readings are NA; a lost card gives lost=True."""
        if self.is_lost(index):
            return Telemetry.lost_now()
        if not self.available():
            return Telemetry(timestamp=time.time())
        smi = self._module
        errs: list[str] = []

        def q(fn: str, *args: Any) -> Any:
            return self._query(fn, *args, errors=errs)

        try:
            h = self._handle(index)
            act = q("amdsmi_get_gpu_activity", h)
            vram = q("amdsmi_get_gpu_vram_usage", h)
            temp = q("amdsmi_get_temp_metric", h, smi.AmdSmiTemperatureType.EDGE, smi.AmdSmiTemperatureMetric.CURRENT)
            power = q("amdsmi_get_power_info", h)
            fan = q("amdsmi_get_gpu_fan_speed", h, 0)
            fan_max = q("amdsmi_get_gpu_fan_speed_max", h, 0) if fan is not NA else NA
            gfx = q("amdsmi_get_clock_info", h, smi.AmdSmiClkType.GFX)
            mem = q("amdsmi_get_clock_info", h, smi.AmdSmiClkType.MEM)
        except _GpuLost:
            log.warning("AMD GPU %d stopped answering (AMDSMI_STATUS_NOT_FOUND); its readings stop", index)
            self._mark_lost(index)
            return Telemetry.lost_now()
        except LookupError as e:
            return Telemetry(timestamp=time.time(), errors=1, error=str(e))
        watts = NA
        if isinstance(power, dict):
            watts = _num(power.get("current_socket_power"))
            if watts is NA or watts == 0:
                watts = _num(power.get("average_socket_power"))
        fan_pct = NA
        if isinstance(fan, int) and isinstance(fan_max, int) and fan_max > 0:
            fan_pct = round(100.0 * fan / fan_max)
        return Telemetry(
            timestamp=time.time(),
            util_pct=_num(act.get("gfx_activity")) if isinstance(act, dict) else NA,
            mem_used_mb=_num(vram.get("vram_used")) if isinstance(vram, dict) else NA,
            mem_total_mb=_num(vram.get("vram_total")) if isinstance(vram, dict) else NA,
            temp_c=_num(temp),
            power_w=watts,
            fan_pct=fan_pct,
            clock_sm_mhz=_num(gfx.get("clk")) if isinstance(gfx, dict) else NA,
            clock_mem_mhz=_num(mem.get("clk")) if isinstance(mem, dict) else NA,
            errors=len(errs), error=errs[-1] if errs else None,
        )

    # ---- power limit -------------------------------------------------------------------------
    def power_limits_w(self, index: int) -> tuple[float, float, float] | None:
        """(current, default, lowest allowed) power cap in W (`amd-smi static -l`), None if unknown."""
        if not self.available() or self.is_lost(index):
            return None
        try:
            cap = self._query("amdsmi_get_power_cap_info", self._handle(index))
        except (_GpuLost, LookupError):
            return None
        if not isinstance(cap, dict) or not all(isinstance(cap.get(k), (int, float))
                                                for k in ("power_cap", "default_power_cap")):
            return None
        low = cap.get("min_power_cap") if isinstance(cap.get("min_power_cap"), (int, float)) else 0
        return cap["power_cap"] / 1e6, cap["default_power_cap"] / 1e6, low / 1e6

    def set_power_limit_w(self, index: int, watts: float) -> str | None:
        """Set the power cap (`amd-smi set -g N -o W`); None when done, else why not."""
        if not self.available():
            return self.error or "AMD SMI not available"
        smi = self._module
        try:
            smi.amdsmi_set_power_cap(self._handle(index), 0, int(round(watts * 1e6)))
        except LookupError as e:
            return str(e)
        except smi.AmdSmiLibraryException as e:
            code = _code(e)
            if code == NO_PERM:
                return "no permission to set the power cap (AMD SMI allows it to root only)"
            if code in _BENIGN:
                return "this GPU does not support setting a power cap"
            if code == NOT_FOUND:
                return "GPU is lost (it stopped answering)"
            return f"AMD SMI refused the power cap: {e}"
        return None


def _code(e: Any) -> int | None:
    try:
        return int(e.get_error_code())
    except (AttributeError, TypeError, ValueError):
        return None
