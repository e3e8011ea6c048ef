"""The CPU device: always there, with real readings from psutil."""

from __future__ import annotations

import psutil

from gpu.cpu import cpu_info, cpu_telemetry
from gpu.na import NA, is_na


def test_cpu_device_describes_this_machine():
    info = cpu_info()
    assert (info.id, info.key, info.kind) == ("cpu", "cpu", "cpu")
    assert info.name and info.cpu_cores == psutil.cpu_count(logical=True)
    assert info.ram_total_mb == info.memory_total_mb == psutil.virtual_memory().total // (1024 * 1024)


def test_cpu_telemetry_is_in_range_and_power_is_na():
    cpu_info()
    t = cpu_telemetry()
    assert 0 <= t.util_pct <= 100
    assert 0 < t.mem_used_mb <= t.mem_total_mb
    assert t.power_w is NA and t.fan_pct is NA and is_na(t.clock_mem_mhz)
    assert is_na(t.temp_c) or 0 < t.temp_c < 130
    assert not t.lost
