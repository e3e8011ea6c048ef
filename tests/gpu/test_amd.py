"""The AMD SMI adapter against its stand-in, and the real `amdsmi` package on this machine (no ROCm)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.device_id import DeviceId
from gpu.amd import AmdSmi, rocm_torch
from gpu.devices import DeviceProbe, discover
from gpu.na import is_na
from tests.gpu.amdsmi_standin import (DRIVER_NOT_LOADED, IO, NO_PERM, RX_580, RX_6800, AmdSmiLibraryException,
                                      make_amd_standin)
from tests.gpu.nvml_standin import RTX_3070_X1, make_standin


def probe(**kw):
    return DeviceProbe(make_standin(gpus=[]), amd_module=make_amd_standin(**kw), amd_torch_version="2.13.0+cpu")


def test_discovers_amd_cards_with_their_facts_keyed_by_uuid():
    p = probe()
    rx580, rx6800, cpu = p.devices
    assert [d.id for d in p.devices] == ["amd:0", "amd:1", "cpu"] and p.discovery.message is None
    assert rx580.kind == "amd" and rx580.key == RX_580.uuid and rx580.name == "Radeon RX 580 Series"
    assert rx580.memory_total_mb == 8192 and rx580.pci_bus_id == "0000:05:00.0"
    assert (rx580.pcie_gen, rx580.pcie_width, rx580.pcie_max_gen, rx580.pcie_max_width) == (3, 1, 3, 16)
    assert rx6800.pcie_gen == 4 and rx580.power_limit_w == 145.0 and rx580.driver_version == "6.8.0"
    assert rx580.ident == DeviceId(RX_580.uuid, "amd", 0, None)
    assert rx580.ident.label == "amd:0" and rx580.ident.torch_device is None
    assert p.discovery.gpus == (rx580, rx6800)


def test_amd_renders_everywhere_and_trains_only_with_rocm_torch():
    rx580 = probe().devices[0]
    assert rx580.capabilities == ("render",)
    assert rx580.capability_note == "training needs a ROCm build of torch (installed: 2.13.0+cpu)"
    rocm = DeviceProbe(make_standin(gpus=[]), amd_module=make_amd_standin(), amd_torch_version="2.5.1+rocm6.2")
    card = rocm.devices[0]
    assert card.capabilities == ("render", "train") and card.capability_note is None
    assert card.ident.torch_device == "cuda:0"
    assert rocm_torch("2.5.1+rocm6.2") == "2.5.1+rocm6.2" and rocm_torch("2.13.0+cpu") is None


def test_amd_telemetry_in_units_and_na_for_unsupported():
    smi = make_amd_standin()
    p = DeviceProbe(make_standin(gpus=[]), amd_module=smi)
    t = p.telemetry(p.devices[0])
    assert (t.util_pct, t.mem_used_mb, t.mem_total_mb, t.temp_c, t.power_w) == (97, 4300, 8192, 64, 121)
    assert t.fan_pct == round(100 * 140 / 255) and (t.clock_sm_mhz, t.clock_mem_mhz) == (1257, 2000)
    assert t.errors == 0 and not t.lost
    smi.set_unsupported(0, "fan", "power", "temp")
    t = p.telemetry(p.devices[0])
    assert is_na(t.fan_pct) and is_na(t.power_w) and is_na(t.temp_c) and t.errors == 0  # not supported is no error


def test_amd_errors_are_counted_and_a_lost_card_stops_being_asked():
    smi = make_amd_standin()
    p = DeviceProbe(make_standin(gpus=[]), amd_module=smi)
    card = p.devices[1]
    smi.fail(1, IO)
    t = p.telemetry(card)
    assert t.errors >= 5 and "amdsmi_get" in t.error and is_na(t.temp_c)
    smi.heal(1)
    smi.lose(1)
    assert p.telemetry(card).lost
    before = sum(smi.calls.values())
    assert p.telemetry(card).lost and sum(smi.calls.values()) == before
    smi.heal(1)
    p.retry(card)
    assert p.telemetry(card).temp_c == 71 and p.telemetry(p.devices[0]).temp_c == 64


@pytest.mark.parametrize("code, words", [(DRIVER_NOT_LOADED, "amdgpu driver not loaded"),
                                         (NO_PERM, "render and video groups"), (IO, "AMD SMI failed to start")])
def test_amd_init_errors_fail_soft_with_a_reason(code, words):
    d = discover(make_standin(gpus=[]), amd_module=make_amd_standin(init_error=code))
    assert [x.id for x in d.devices] == ["cpu"]
    assert words in d.message and d.message.startswith("No NVIDIA GPU found (") and "\n" not in d.message


def test_nvidia_and_amd_cards_side_by_side():
    d = discover(make_standin(gpus=[RTX_3070_X1]), amd_module=make_amd_standin(gpus=[RX_6800]))
    assert [x.id for x in d.devices] == ["cuda:0", "amd:0", "cpu"] and d.message is None
    assert [x.ident.kind for x in d.devices] == ["gpu", "amd", "cpu"]


def test_amd_power_cap_needs_permission_then_is_set_and_read_back():
    smi = make_amd_standin()
    a = AmdSmi(smi)
    assert a.power_limits_w(0) == (145.0, 145.0, 72.5)
    assert "no permission" in a.set_power_limit_w(0, 100.0)
    smi.allow_power_cap = True
    assert a.set_power_limit_w(0, 100.0) is None and a.power_limits_w(0)[0] == 100.0


def test_real_amdsmi_without_rocm_fails_soft_and_prints_nothing():
    code = ("from gpu.amd import AmdSmi; a = AmdSmi(); print(a.count()); print(a.error)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    count, error = r.stdout.strip().splitlines()
    if count == "0":  # no ROCm here: a reason in one line, and the binding's own prints swallowed
        assert error in ("amdsmi is not installed", "AMD SMI library not found: libamd_smi.so comes with ROCm") \
            or error.startswith(("amdgpu", "AMD SMI", "no permission"))
        assert "Unable to find" not in r.stdout + r.stderr


def test_standin_raises_the_library_exception_shape():
    smi = make_amd_standin()
    with pytest.raises(AmdSmiLibraryException) as e:
        smi.amdsmi_get_processor_handles()  # before init
    assert e.value.get_error_code() == 32
