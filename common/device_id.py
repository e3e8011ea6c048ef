"""One name for one device across gpu/, jobs/ and app/: `DeviceId`.

A GPU has three numbers that are easy to mix up (nvitop names them apart too):
- its NVML index: NVML's order (PCI bus order), what nvidia-smi and /dev/nvidiaN use;
- its CUDA index: torch's `cuda:N` in a process, after CUDA_VISIBLE_DEVICES hid or reordered
  cards (CUDA_DEVICE_ORDER=PCI_BUS_ID assumed, as our processes set it);
- neither is stable: a card moved, added or hidden renumbers them. The NVML UUID is stable,
  so it is the device's key (settings, benchmarks, the ledger, the miner DB, the job queue).
The CPU is a device too: key "cpu", no indices. An AMD card (kind "amd") is keyed by its AMD
SMI UUID (or, where the library gives none, its PCI address); its index is AMD SMI's, and a
ROCm build of torch names it "cuda:N" like an NVIDIA card.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, Mapping

__all__ = ["CPU_KEY", "DeviceId", "cuda_index_for"]

CPU_KEY = "cpu"


@dataclass(frozen=True)
class DeviceId:
    """Which device: `key` is stable (the NVML UUID, or "cpu"); the indices say where it is now."""

    key: str
    kind: Literal["cpu", "gpu", "amd"]
    nvml_index: int | None = None
    """NVML's index (PCI bus order): telemetry, nvidia-smi -i N, the device node /dev/nvidiaN;
    for an AMD card, AMD SMI's index (amd-smi's)."""
    cuda_index: int | None = None
    """torch's cuda:N in this process (CUDA_VISIBLE_DEVICES applied); None: hidden from CUDA here."""

    @classmethod
    def cpu(cls) -> "DeviceId":
        return cls(CPU_KEY, "cpu")

    @classmethod
    def gpu(cls, uuid: str | None, nvml_index: int, env: Mapping[str, str] | None = None) -> "DeviceId":
        """GPU `nvml_index` with NVML UUID `uuid` (None if NVML did not say: then the key falls
        back to its index and is stable only while no card moves); its CUDA index from `env`."""
        key = uuid or f"cuda:{nvml_index}"
        return cls(key, "gpu", nvml_index, cuda_index_for(uuid, nvml_index, os.environ if env is None else env))

    @classmethod
    def amd(cls, uuid: str | None, pci_bus_id: str | None, smi_index: int, cuda_index: int | None = None) -> "DeviceId":
        """AMD card `smi_index`: keyed by its AMD SMI UUID, else its PCI address, else its index
        (stable only while no card moves). `cuda_index`: its torch index under a ROCm build."""
        key = uuid or (f"amd-{pci_bus_id.lower()}" if pci_bus_id else f"amd:{smi_index}")
        return cls(key, "amd", smi_index, cuda_index)

    @property
    def is_cpu(self) -> bool:
        return self.kind == "cpu"

    @property
    def label(self) -> str:
        """What people type and read: "cpu", "cuda:N" with N the NVML index (nvidia-smi's), or
        "amd:N" with N the AMD SMI index."""
        if self.is_cpu:
            return CPU_KEY
        return f"{'amd' if self.kind == 'amd' else 'cuda'}:{self.nvml_index}"

    @property
    def torch_device(self) -> str | None:
        """The torch device string in this process: "cpu", "cuda:N", or None when CUDA hides it."""
        if self.is_cpu:
            return "cpu"
        return None if self.cuda_index is None else f"cuda:{self.cuda_index}"


def cuda_index_for(uuid: str | None, nvml_index: int, env: Mapping[str, str]) -> int | None:
    """The CUDA index of the GPU (NVML index `nvml_index`, UUID `uuid`) under `env`'s
    CUDA_VISIBLE_DEVICES, or None if that hides it.

    Unset: every GPU in NVML order (CUDA_DEVICE_ORDER=PCI_BUS_ID), so the CUDA index is the
    NVML index. Set: a comma-separated list of NVML indices or UUIDs (a UUID may be given by a
    unique prefix, with or without "GPU-"); the CUDA index is the position in that list. As in
    the CUDA runtime, the list ends at an empty or negative entry ("-1" hides every GPU).
    """
    raw = env.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return nvml_index
    want = (uuid or "").lower()
    for pos, entry in enumerate(e.strip() for e in raw.split(",")):
        if entry.isdigit():
            if int(entry) == nvml_index:
                return pos
            continue
        e = entry.lower()
        if not e or e.startswith("-"):
            return None  # "" or "-1": the list ends here
        if not e.startswith("gpu-"):
            e = "gpu-" + e
        if want and want.startswith(e):
            return pos
    return None
