"""The CPU as a device: always present, so the app works on machines without a GPU.

Readings come from psutil (load, RAM, frequency, temperature sensors where the kernel
exposes them). The CPU has no power or fan reading here: those are NA. Cheap (well under
a millisecond per snapshot on Linux) and safe to call from any thread.
"""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path

import psutil

from gpu.model import CPU_ID, MIB, DeviceInfo, Telemetry
from gpu.na import NA, NAType

log = logging.getLogger(__name__)

__all__ = ["cpu_info", "cpu_telemetry", "cpu_name"]

# psutil sensor names of the package temperature, most specific first.
_TEMP_SENSORS = ("coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal", "acpitz")
_TEMP_LABELS = ("Package id 0", "Tctl", "Tdie")


def cpu_name() -> str:
    """The processor's model name (`lscpu | grep 'Model name'`), or the platform's word for it."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def cpu_info() -> DeviceInfo:
    """The CPU device: name, logical cores, RAM in MiB (memory_total_mb is the RAM too)."""
    ram = psutil.virtual_memory().total // MIB
    # Start psutil's load counter so the first telemetry has a baseline.
    psutil.cpu_percent(interval=None)
    return DeviceInfo(
        id=CPU_ID,
        key=CPU_ID,
        kind="cpu",
        index=0,
        name=cpu_name(),
        memory_total_mb=ram,
        cpu_cores=psutil.cpu_count(logical=True) or NA,
        ram_total_mb=ram,
    )


def cpu_temperature() -> float | NAType:
    """The CPU package temperature in °C (`sensors`), NA where no sensor is exposed."""
    try:
        temps = psutil.sensors_temperatures()
    except (AttributeError, OSError):  # not offered on this platform
        return NA
    for chip in _TEMP_SENSORS:
        entries = temps.get(chip)
        if not entries:
            continue
        for label in _TEMP_LABELS:
            for e in entries:
                if e.label == label:
                    return float(e.current)
        return float(entries[0].current)
    return NA


def cpu_telemetry() -> Telemetry:
    """One snapshot of the CPU device: load since the previous call, RAM used, frequency, temperature."""
    vm = psutil.virtual_memory()
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError):
        freq = None
    return Telemetry(
        timestamp=time.time(),
        util_pct=float(psutil.cpu_percent(interval=None)),
        mem_used_mb=(vm.total - vm.available) // MIB,
        mem_total_mb=vm.total // MIB,
        temp_c=cpu_temperature(),
        clock_sm_mhz=round(freq.current) if freq and freq.current else NA,
    )
