"""`kminer devices` and `kminer bench`: real subprocesses on this machine, and in-process with fake GPUs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import cli.commands.devices as devices_cmd
from cli.main import main
from app.devices import DeviceService
from tests.gpu.nvml_standin import RTX_3070_X1, make_standin

KMINER = str(Path(sys.executable).with_name("kminer"))


def kminer(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([KMINER, *args], capture_output=True, text=True, timeout=timeout)


def test_devices_json_is_valid_and_lists_the_cpu():
    r = kminer("devices", "--json")
    assert r.returncode == 0, r.stderr
    devices = json.loads(r.stdout)
    assert isinstance(devices, list) and devices[-1]["id"] == "cpu"
    cpu = devices[-1]
    assert cpu["kind"] == "cpu" and cpu["mode"] == "idle" and cpu["active"] is False
    assert cpu["memory_total_mb"] > 0 and cpu["cpu_cores"] >= 1
    assert cpu["telemetry"]["mem_total_mb"] == cpu["memory_total_mb"]
    assert cpu["telemetry"]["power_w"] is None  # NA becomes null
    if not any(d["kind"] == "cuda" for d in devices):
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "No NVIDIA GPU found" in lines[0] and "using the CPU only" in lines[0]


def test_set_mode_persists_across_processes(kminer_home):
    r = kminer("devices", "set-mode", "cpu", "mining")
    assert r.returncode == 0 and r.stdout.startswith("cpu (")
    again = json.loads(kminer("devices", "--json").stdout)
    assert again[-1]["mode"] == "mining" and again[-1]["active"] is True
    saved = json.loads((kminer_home / "config" / "settings.json").read_text())
    assert saved["devices"]["cpu"]["mode"] == "mining"


def test_unknown_device_is_one_line_exit_1_and_bad_mode_exit_2():
    r = kminer("devices", "set-mode", "cuda:9", "mining")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == "kminer: error: no device 'cuda:9'; known devices: " + \
        ", ".join(d["id"] for d in json.loads(kminer("devices", "--json").stdout))
    assert "Traceback" not in r.stderr
    r = kminer("devices", "set-mode", "cpu", "turbo")
    assert r.returncode == 2 and "invalid choice: 'turbo'" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.fixture
def fake_gpus(monkeypatch):
    nv = make_standin()
    monkeypatch.setattr(devices_cmd, "make_service", lambda ctx: DeviceService(ctx, nvml_module=nv, idle=lambda: None))
    return nv


def test_devices_json_with_two_gpus_shows_the_x1_riser(fake_gpus, capsys):
    fake_gpus.set_reading(1, temp_c=90)
    assert main(["devices", "--json"]) == 0
    out = capsys.readouterr()
    devices = json.loads(out.out)
    assert [d["id"] for d in devices] == ["cuda:0", "cuda:1", "cpu"]
    g0, g1 = devices[0], devices[1]
    assert g0["key"] == RTX_3070_X1.uuid and g0["kind"] == "cuda" and g0["memory_total_mb"] == 8192
    assert (g0["pcie_gen"], g0["pcie_width"], g0["pcie_max_width"]) == (3, 1, 16)
    assert g0["telemetry"]["temp_c"] == 62 and g1["telemetry"]["fan_pct"] is None
    assert g1["throttled"] and g1["throttle_reason"] == "temperature 90 °C above limit 83 °C"
    assert out.err == ""


def test_devices_table_and_limits_with_fake_gpus(fake_gpus, capsys):
    assert main(["devices", "set-limits", "cuda:0", "--max-temp", "60", "--max-power", "150"]) == 0
    assert "max temperature 60 °C, max power 150 W" in capsys.readouterr().out
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "gen3 x1 (of x16)" in out and "NVIDIA GeForce RTX 3090" in out
    assert "cuda:0: throttled: temperature 62 °C above limit 60 °C" in out
    assert "user away: unknown" in out
    assert main(["devices", "set-limits", "cuda:0", "--no-power-limit"]) == 0
    assert "max power no limit" in capsys.readouterr().out
    assert main(["devices", "set-limits", "cuda:0"]) == 1
    assert main(["devices", "set-mode", RTX_3070_X1.uuid, "auto"]) == 0


def test_bench_unknown_device_is_one_line_exit_1():
    r = kminer("bench", "--device", "cuda:5", "--quick")
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1].startswith("kminer: error: no device 'cuda:5'")
