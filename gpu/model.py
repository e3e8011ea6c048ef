"""The values gpu/ hands to the rest of the app: frozen dataclasses, readings in units.

A reading a device does not report is `NA` (see gpu.na), never 0 and never an exception.
Memory is in MiB (what nvidia-smi prints as "MiB"; named `_mb` throughout), power in W,
temperature in °C, clocks in MHz, utilisation in percent (0-100).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from common.device_id import DeviceId
from gpu.na import NA, NAType, na_to_none

__all__ = ["DeviceInfo", "Telemetry", "Discovery", "CPU_ID", "DeviceKind", "GPU_KINDS", "MIB", "ALL_CAPABILITIES"]

MIB = 1024 * 1024
CPU_ID = "cpu"
DeviceKind = Literal["cuda", "amd", "cpu"]
GPU_KINDS: tuple[str, ...] = ("cuda", "amd")
"""Kinds that are graphics cards (NVIDIA through NVML, AMD through AMD SMI)."""

Num = float | int | NAType

ALL_CAPABILITIES: tuple[str, ...] = ("render", "train")
"""What a device can run: `render` (OpenGL through EGL) and `train` (torch: training and inference)."""


@dataclass(frozen=True)
class DeviceInfo:
    """What does not change while the app runs (`nvidia-smi -q` / `nvidia-smi --query-gpu=...`).

    id: "cpu", "cuda:N" or "amd:N", what people type and read (N = NVML index, nvidia-smi's; for
    AMD cards the AMD SMI index, amd-smi's).
    key: the stable key (settings, benchmarks, ledger, job queue): the GPU's uuid, or "cpu".
    index: the NVML (or AMD SMI) index (0 for the CPU device).
    cuda_index: torch's cuda:N for this GPU in this process (CUDA_VISIBLE_DEVICES applied;
    None: hidden from CUDA, or the CPU). `ident` gives all of it as one common DeviceId.
    pcie_gen/pcie_width: the link as it runs now (a rig on an x1 riser shows width 1);
    pcie_max_gen/pcie_max_width: what the card could do.
    cpu_cores (logical) and ram_total_mb describe the CPU device; NA on GPUs.
    pci_bus_id: the card's PCI address ("0000:03:00.0"), NA where unknown.
    capabilities: what it can run (ALL_CAPABILITIES); capability_note says why one is missing
    ("training needs a ROCm build of torch").
    """

    id: str
    key: str
    kind: DeviceKind
    index: int
    name: str
    memory_total_mb: Num
    uuid: str | NAType = NA
    driver_version: str | NAType = NA
    cuda_version: str | NAType = NA
    pcie_gen: Num = NA
    pcie_width: Num = NA
    pcie_max_gen: Num = NA
    pcie_max_width: Num = NA
    power_limit_w: Num = NA
    cpu_cores: Num = NA
    ram_total_mb: Num = NA
    cuda_index: int | None = None
    pci_bus_id: str | NAType = NA
    capabilities: tuple[str, ...] = ALL_CAPABILITIES
    capability_note: str | None = None

    @property
    def ident(self) -> DeviceId:
        """This device as the one identity gpu/, jobs/ and app/ share."""
        if self.kind == "cpu":
            return DeviceId.cpu()
        return DeviceId(self.key, "amd" if self.kind == "amd" else "gpu", self.index, self.cuda_index)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; NA becomes None."""
        return {k: na_to_none(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Telemetry:
    """One snapshot of a device's readings, read in one go.

    nvidia-smi equivalent: `nvidia-smi --query-gpu=utilization.gpu,memory.used,memory.total,
    temperature.gpu,power.draw,fan.speed,clocks.sm,clocks.mem --format=csv`.
    For the CPU device: util_pct is the load of all cores, mem_* is the machine's RAM,
    clock_sm_mhz the current CPU frequency; power, fan and memory clock are NA.
    lost: the GPU fell off the bus (NVML "GPU is lost"); every reading is then NA.
    errors: reads of this snapshot that failed with an error (not "not supported": a reading
    the card lacks is no error); error: the last such error, for people. The watchdog counts them.
    timestamp: time.time() when read (seconds since the epoch).
    """

    timestamp: float
    util_pct: Num = NA
    mem_used_mb: Num = NA
    mem_total_mb: Num = NA
    temp_c: Num = NA
    power_w: Num = NA
    fan_pct: Num = NA
    clock_sm_mhz: Num = NA
    clock_mem_mhz: Num = NA
    lost: bool = False
    errors: int = 0
    error: str | None = None

    @classmethod
    def lost_now(cls) -> "Telemetry":
        return cls(timestamp=time.time(), lost=True)

    def to_json(self) -> dict[str, Any]:
        return {k: na_to_none(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Discovery:
    """The devices found (the CPU always last) and, when no GPU could be used, why, in one line."""

    devices: tuple[DeviceInfo, ...]
    message: str | None = None
    notes: tuple[str, ...] = field(default=())
    """Per-GPU problems met while discovering (e.g. a card skipped because it is lost)."""

    @property
    def gpus(self) -> tuple[DeviceInfo, ...]:
        return tuple(d for d in self.devices if d.kind in GPU_KINDS)
