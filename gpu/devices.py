"""Device discovery and telemetry: every NVIDIA GPU NVML sees, plus the CPU, always.

`DeviceProbe` owns one NVML session and reads a snapshot of any discovered device;
`discover()` is the one-shot form (`nvidia-smi -L` plus the CPU). Thread-safe: snapshots
may be read from any thread (the GUI reads them from an executor, never its own thread).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping

from gpu.cpu import cpu_info, cpu_telemetry
from gpu.model import CPU_ID, DeviceInfo, Discovery, Telemetry
from gpu.na import NA, NAType, is_na, na_to_none
from gpu.nvml import Nvml

log = logging.getLogger(__name__)

__all__ = ["DeviceProbe", "discover", "DeviceInfo", "Telemetry", "Discovery", "NA", "NAType", "is_na",
           "na_to_none", "CPU_ID"]


class DeviceProbe:
    """Discovers devices once and reads their telemetry on demand.

    nvml_module: pynvml (default) or a stand-in with the same functions (tests).
    env: the environment whose CUDA_VISIBLE_DEVICES numbers the GPUs for CUDA (default: this
    process's); the keys do not depend on it.
    """

    def __init__(self, nvml_module: Any = None, env: Mapping[str, str] | None = None):
        self.nvml = Nvml(nvml_module)
        self._env = env
        self.discovery = self._discover()

    def _discover(self) -> Discovery:
        gpus: list[DeviceInfo] = []
        notes: list[str] = []
        n = self.nvml.count()
        for i in range(n):
            got = self.nvml.device_info(i, self._env)
            if isinstance(got, DeviceInfo):
                gpus.append(got)
            else:
                notes.append(f"cuda:{i} skipped: {got}")
                log.warning("GPU %d skipped: %s", i, got)
        message = None
        if not gpus:
            if self.nvml.error:
                why = self.nvml.error
            elif n == 0:
                why = "the NVIDIA driver reports none"
            else:
                why = "; ".join(notes)
            message = f"No NVIDIA GPU found ({why}); using the CPU only."
        return Discovery(devices=(*gpus, cpu_info()), message=message, notes=tuple(notes))

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
        return self.nvml.telemetry(info.index)

    def close(self) -> None:
        self.nvml.close()


def discover(nvml_module: Any = None, env: Mapping[str, str] | None = None) -> Discovery:
    """All devices of this machine, GPUs first and the CPU last, with a one-line message
    when no GPU can be used. Never raises for a missing or broken NVML."""
    probe = DeviceProbe(nvml_module, env)
    try:
        return probe.discovery
    finally:
        probe.close()
