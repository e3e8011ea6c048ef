"""The NVML adapter against the NVML stand-in (and the real pynvml, which finds no library here)."""

from __future__ import annotations

import pickle

import pynvml
import pytest

from gpu.devices import DeviceProbe, discover
from gpu.na import NA, is_na, na_to_none
from gpu.nvml import Nvml
from tests.gpu.nvml_standin import RTX_3070_X1, make_standin


def test_na_is_falsy_prints_na_and_survives_pickle():
    assert not NA
    assert str(NA) == "N/A" and f"{NA:.1f}" == "N/A" and repr(NA) == "NA"
    assert pickle.loads(pickle.dumps(NA)) is NA
    assert NA != 0 and na_to_none(NA) is None and na_to_none(0) == 0
    assert is_na(NA) and not is_na(None)


def test_discovers_two_gpus_with_pcie_link_and_the_cpu_last():
    d = discover(make_standin())
    assert [x.id for x in d.devices] == ["cuda:0", "cuda:1", "cpu"]
    assert d.message is None
    g0, g1, cpu = d.devices
    assert (g0.name, g0.key, g0.uuid) == (RTX_3070_X1.name, RTX_3070_X1.uuid, RTX_3070_X1.uuid)
    assert (g0.pcie_gen, g0.pcie_width, g0.pcie_max_gen, g0.pcie_max_width) == (3, 1, 4, 16)
    assert (g1.pcie_gen, g1.pcie_width) == (4, 16)
    assert g0.memory_total_mb == 8192 and g1.memory_total_mb == 24576
    assert g0.power_limit_w == 220.0 and g1.power_limit_w == 350.0
    assert g0.driver_version == "535.183.01" and g0.cuda_version == "12.2"
    assert g0.kind == "cuda" and cpu.kind == "cpu" and cpu.key == "cpu"
    assert is_na(g0.cpu_cores) and is_na(cpu.uuid)


def test_telemetry_reads_every_value_in_units():
    probe = DeviceProbe(make_standin())
    t = probe.telemetry(probe.devices[0])
    assert (t.util_pct, t.mem_used_mb, t.mem_total_mb, t.temp_c) == (98, 4610, 8192, 62)
    assert t.power_w == pytest.approx(117.4) and t.fan_pct == 55
    assert (t.clock_sm_mhz, t.clock_mem_mhz) == (1110, 7000) and not t.lost


def test_unsupported_readings_are_na_not_exceptions():
    nv = make_standin()
    probe = DeviceProbe(nv)
    assert is_na(probe.telemetry(probe.devices[1]).fan_pct)  # the 3090 reports no fan
    nv.set_unsupported(0, "fan", "power", "temp", "clock_mem")
    t = probe.telemetry(probe.devices[0])
    assert is_na(t.fan_pct) and is_na(t.power_w) and is_na(t.temp_c) and is_na(t.clock_mem_mhz)
    assert t.util_pct == 98 and t.clock_sm_mhz == 1110
    assert t.to_json()["fan_pct"] is None and t.to_json()["util_pct"] == 98


def test_unsupported_static_facts_are_na():
    spec = RTX_3070_X1.__class__(**{**RTX_3070_X1.__dict__, "unsupported": frozenset({"pcie", "power_limit"})})
    (g, _cpu) = discover(make_standin(gpus=[spec])).devices
    assert is_na(g.pcie_width) and is_na(g.pcie_gen) and is_na(g.power_limit_w)
    assert g.to_json()["pcie_width"] is None


@pytest.mark.parametrize("error, words", [
    ("LibraryNotFound", "NVML library not found"),
    ("DriverNotLoaded", "NVIDIA driver not loaded"),
    ("NoPermission", "no permission to use NVML"),
    ("Unknown", "NVML failed to start"),
])
def test_nvml_init_errors_give_cpu_only_and_one_line(error, words):
    d = discover(make_standin(init_error=error))
    assert [x.id for x in d.devices] == ["cpu"]
    assert d.message.startswith("No NVIDIA GPU found (") and words in d.message
    assert d.message.endswith("using the CPU only.") and "\n" not in d.message


def test_nvml_running_but_no_gpu():
    d = discover(make_standin(gpus=[]))
    assert [x.id for x in d.devices] == ["cpu"] and "No NVIDIA GPU found" in d.message


def test_real_pynvml_on_this_machine_never_raises():
    d = discover()  # the real library; on a machine without the NVIDIA driver it is missing
    assert d.devices[-1].id == "cpu"
    if not d.gpus:
        assert d.message and "using the CPU only" in d.message


def test_gpu_lost_mid_run_marks_it_lost_and_stops_calling_it():
    nv = make_standin()
    probe = DeviceProbe(nv)
    g0, g1, _ = probe.devices
    assert not probe.telemetry(g1).lost
    nv.lose(1)
    t = probe.telemetry(g1)
    assert t.lost and is_na(t.temp_c) and is_na(t.util_pct)
    before = sum(nv.calls.values())
    assert probe.telemetry(g1).lost
    assert sum(nv.calls.values()) == before  # no NVML call for a lost GPU
    assert probe.telemetry(g0).temp_c == 62  # the other card carries on


def test_gpu_lost_at_discovery_is_skipped_with_a_note():
    nv = make_standin()
    nv.lose(0)
    d = discover(nv)
    assert [x.id for x in d.devices] == ["cuda:1", "cpu"]
    assert d.message is None and "cuda:0" in d.notes[0] and "lost" in d.notes[0]


def test_nvml_starts_lazily_once_and_shuts_down_on_close():
    nv = make_standin()
    n = Nvml(nv)
    assert nv.calls["nvmlInit"] == 0
    assert n.count() == 2 and n.count() == 2
    assert nv.calls["nvmlInit"] == 1
    n.close()
    assert nv.shutdowns == 1 and nv.initialised == 0
    assert is_na(n.telemetry(0).temp_c)  # after shutdown: NA, no exception
    n.close()
    assert nv.shutdowns == 1


def test_standin_raises_real_pynvml_error_classes():
    nv = make_standin()
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        nv.nvmlDeviceGetCount()
    with pytest.raises(pynvml.NVMLError_LibraryNotFound):
        make_standin(init_error="LibraryNotFound").nvmlInit()
    nv.nvmlInit()
    nv.lose(0)
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        nv.nvmlDeviceGetHandleByIndex(0)
    h = nv.nvmlDeviceGetHandleByIndex(1)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        nv.nvmlDeviceGetFanSpeed(h)


def test_functions_an_old_library_lacks_read_as_na():
    nv = make_standin()
    del_names = ("nvmlDeviceGetMaxPcieLinkWidth",)
    for name in del_names:
        setattr(nv, name, None)
    (g0, _g1, _cpu) = discover(nv).devices
    assert is_na(g0.pcie_max_width) and g0.pcie_width == 1


def test_function_not_found_error_reads_as_na():
    nv = make_standin()

    def missing(*_a):
        raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)

    nv.nvmlDeviceGetFanSpeed = missing
    probe = DeviceProbe(nv)
    assert is_na(probe.telemetry(probe.devices[0]).fan_pct)
