"""Device discovery and telemetry: every NVIDIA GPU NVML sees, every AMD GPU AMD SMI sees,
plus the CPU, always.

`DeviceProbe` owns one NVML session and reads a snapshot of any discovered device;
`discover()` is the one-shot form (`nvidia-smi -L` plus the CPU). Thread-safe: snapshots
may be read from any thread (the GUI reads them from an executor, never its own thread).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping

from gpu.amd import AmdSmi
from gpu.cpu import cpu_info, cpu_telemetry
from gpu.model import CPU_ID, DeviceInfo, Discovery, Telemetry
from gpu.na import NA, NAType, is_na, na_to_none
from gpu.nvml import Nvml

log = logging.getLogger(__name__)

__all__ = ["DeviceProbe", "discover", "DeviceInfo", "Telemetry", "Discovery", "NA", "NAType", "is_na",
           "na_to_none", "CPU_ID"]


class DeviceProbe:
    """Discovers devices once and reads their telemetry on demand.

    nvml_module: pynvml (default) or a stand-in with the same functions (tests); amd_module:
    amdsmi (default) or its stand-in; amd_torch_version: the torch version that decides
    whether AMD cards train (default: the installed one).
    env: the environment whose CUDA_VISIBLE_DEVICES numbers the GPUs for CUDA (default: this
    process's); the keys do not depend on it.
    """

    def __init__(self, nvml_module: Any = None, env: Mapping[str, str] | None = None, *, amd_module: Any = None,
                 amd_torch_version: str | None = None):
        self.nvml = Nvml(nvml_module)
        self.amd = AmdSmi(amd_module, torch_version=amd_torch_version)
        self._env = env
        self.discovery = self._discover()

    def _backend(self, info: DeviceInfo) -> Any:
        return self.amd if info.kind == "amd" else self.nvml

    def _found(self, backend: Any, prefix: str, notes: list[str]) -> tuple[list[DeviceInfo], int]:
        gpus: list[DeviceInfo] = []
        n = backend.count()
        for i in range(n):
            got = backend.device_info(i, self._env)
            if isinstance(got, DeviceInfo):
                gpus.append(got)
            else:
                notes.append(f"{prefix}:{i} skipped: {got}")
                log.warning("%s GPU %d skipped: %s", prefix, i, got)
        return gpus, n

    def _discover(self) -> Discovery:
        notes: list[str] = []
        gpus, n = self._found(self.nvml, "cuda", notes)
        amd, n_amd = self._found(self.amd, "amd", notes)
        message = None
        if not gpus and not amd:
            if self.nvml.error:
                why = self.nvml.error
            elif n == 0:
                why = "the NVIDIA driver reports none"
            else:
                why = "; ".join(x for x in notes if x.startswith("cuda:"))
            amd_why = self.amd.error or ("the amdgpu driver reports none" if n_amd == 0 else
                                         "; ".join(x for x in notes if x.startswith("amd:")))
            message = f"No NVIDIA GPU found ({why}); no AMD GPU either ({amd_why}); using the CPU only."
        elif self.amd.error and self.amd.error != "amdsmi is not installed":
            log.info("AMD GPUs not detected: %s", self.amd.error)
        return Discovery(devices=(*gpus, *amd, cpu_info()), message=message, notes=tuple(notes))

    @property
    def devices(self) -> tuple[DeviceInfo, ...]:
        return self.discovery.devices

    def telemetry(self, info: DeviceInfo) -> Telemetry:
        """A snapshot of `info`'s readings (unsupported ones NA; lost GPU: lost=True). Never raises."""
        if info.kind == "cpu":
            try:
                return cpu_telemetry()
            except Exception:  # psutil on an odd platform: readings unknown, not a crash
                log.debug("cpu telemetry failed", exc_info=True)
                return Telemetry(timestamp=time.time())
        return self._backend(info).telemetry(info.index)

    def retry(self, info: DeviceInfo) -> None:
        """Read a GPU marked lost again on the next snapshot (after the watchdog's back-off)."""
        if info.kind != "cpu":
            self._backend(info).retry(info.index)

    def power_limits_w(self, info: DeviceInfo) -> tuple[float, float, float] | None:
        """(current, default, lowest) power limit of a GPU in W; None for the CPU or if unknown."""
        return None if info.kind == "cpu" else self._backend(info).power_limits_w(info.index)

    def set_power_limit_w(self, info: DeviceInfo, watts: float) -> str | None:
        """Set a GPU's power limit; None when done, else why not (one line)."""
        if info.kind == "cpu":
            return "the CPU has no power limit here"
        return self._backend(info).set_power_limit_w(info.index, watts)

    def close(self) -> None:
        self.nvml.close()
        self.amd.close()


def discover(nvml_module: Any = None, env: Mapping[str, str] | None = None, *, amd_module: Any = None) -> Discovery:
    """All devices of this machine, GPUs first (NVIDIA, then AMD) and the CPU last, with a
    one-line message when no GPU can be used. Never raises for a missing or broken NVML or AMD SMI."""
    probe = DeviceProbe(nvml_module, env, amd_module=amd_module)
    try:
        return probe.discovery
    finally:
        probe.close()
