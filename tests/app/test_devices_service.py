"""DeviceService: discovery, modes and their persistence, auto mode, limits, lost GPUs."""

from __future__ import annotations

import json
import statistics
import threading
import time

import pytest

from app.context import AppContext
from app.devices import DeviceService, is_na
from gpu.bench import BenchStore
from tests.gpu.nvml_standin import RTX_3070_X1, RTX_3090_X16, make_standin


class Clock:
    """An injected idle callable: seconds since the last input, or None (unknown)."""

    def __init__(self, value: float | None = 0.0):
        self.value = value

    def __call__(self) -> float | None:
        return self.value


@pytest.fixture
def nv():
    return make_standin()


@pytest.fixture
def idle():
    return Clock(0.0)


@pytest.fixture
def service(nv, idle):
    svc = DeviceService(AppContext.open(), nvml_module=nv, idle=idle)
    yield svc
    svc.close()


def by_id(states, device_id):
    return next(s for s in states if s.info.id == device_id)


def test_states_before_first_poll_have_no_telemetry_and_idle_modes(service):
    states = service.states()
    assert [s.info.id for s in states] == ["cuda:0", "cuda:1", "cpu"]
    assert all(s.telemetry is None and s.mode == "idle" and not s.active and not s.throttled for s in states)
    assert service.message is None
    assert by_id(states, "cuda:0").max_temp_c == 83.0 and by_id(states, "cuda:0").max_power_w is None


def test_poll_reads_every_device(service):
    states = service.poll()
    g0, g1, cpu = states
    assert g0.telemetry.temp_c == 62 and g0.telemetry.power_w == pytest.approx(117.4)
    assert is_na(g1.telemetry.fan_pct)
    assert cpu.telemetry.mem_total_mb == cpu.info.ram_total_mb and cpu.telemetry.util_pct >= 0
    assert service.states() == states


def test_no_nvml_library_means_cpu_only_with_one_line():
    svc = DeviceService(AppContext.open(), nvml_module=make_standin(init_error="LibraryNotFound"), idle=Clock())
    assert [s.info.id for s in svc.poll()] == ["cpu"]
    assert svc.message.startswith("No NVIDIA GPU found (NVML library not found); no AMD GPU either (")
    assert svc.message.endswith("); using the CPU only.")
    svc.close()


def test_set_mode_is_saved_under_the_gpu_uuid_and_survives_a_restart(service, nv, idle):
    service.set_mode("cuda:1", "mining")
    service.set_mode(RTX_3070_X1.uuid, "auto")  # by uuid too
    saved = json.loads(service.ctx.paths.settings_file.read_text())
    assert saved["devices"][RTX_3090_X16.uuid]["mode"] == "mining"
    assert saved["devices"][RTX_3070_X1.uuid]["mode"] == "auto"
    again = DeviceService(AppContext.open(), nvml_module=make_standin(), idle=idle)
    assert [s.mode for s in again.states()] == ["auto", "mining", "idle"]
    assert [s.active for s in again.states()] == [False, True, False]
    again.close()


def test_set_mode_refuses_unknown_device_and_mode_without_saving(service):
    with pytest.raises(ValueError, match=r"no device 'cuda:7'; known devices: cuda:0, cuda:1, cpu"):
        service.set_mode("cuda:7", "mining")
    with pytest.raises(ValueError, match="unknown mode 'turbo'"):
        service.set_mode("cpu", "turbo")
    assert not service.ctx.paths.settings_file.exists()
    assert service.state("cpu").mode == "idle"


def test_set_all_modes(service):
    service.set_all_modes("mining")
    assert all(s.mode == "mining" and s.active for s in service.states())
    service.set_all_modes("idle")
    assert not any(s.active for s in service.states())


def test_auto_mode_follows_the_user_and_goes_idle_on_the_first_poll_after_input(service, idle):
    service.ctx.settings.general.away_minutes = 10
    service.set_mode("cuda:0", "auto")
    idle.value = 599.0
    assert service.poll()[0].active is False and service.user_away() is False
    idle.value = 600.0
    assert service.poll()[0].active is True and service.user_away() is True
    idle.value = 0.2  # the user touched the mouse
    assert service.poll()[0].active is False
    idle.value = None  # cannot tell (Wayland, no display): never guess
    assert service.poll()[0].active is False and service.user_away() is None
    assert service.state("cuda:1").active is False  # idle mode ignores the user


def test_broken_idle_detector_counts_as_unknown(nv):
    def boom():
        raise OSError("display gone")

    svc = DeviceService(AppContext.open(), nvml_module=nv, idle=boom)
    svc.set_mode("cpu", "auto")
    assert svc.user_away() is None and not svc.poll()[-1].active
    svc.close()


def test_hot_gpu_is_throttled_with_reason_and_resumes_below_hysteresis(service, nv):
    nv.set_reading(0, temp_c=86)
    s = by_id(service.poll(), "cuda:0")
    assert s.throttled and s.throttle_reason == "temperature 86 °C above limit 83 °C"
    nv.set_reading(0, temp_c=80)
    assert by_id(service.poll(), "cuda:0").throttled  # 80 is not below 83 - 5
    nv.set_reading(0, temp_c=77)
    s = by_id(service.poll(), "cuda:0")
    assert not s.throttled and s.throttle_reason is None
    assert not by_id(service.states(), "cuda:1").throttled


def test_set_limits_validates_saves_and_applies(service, nv):
    service.set_limits("cuda:1", max_temp_c=75, max_power_w=250)
    s = by_id(service.poll(), "cuda:1")
    assert (s.max_temp_c, s.max_power_w) == (75, 250)
    assert s.throttled and "power 290.2 W above limit 250 W" in s.throttle_reason
    service.set_limits("cuda:1", max_power_w=None)  # None: no power limit
    assert by_id(service.states(), "cuda:1").max_power_w is None
    assert by_id(service.states(), "cuda:1").max_temp_c == 75  # untouched
    with pytest.raises(ValueError, match="invalid max_temp_c for cuda:1"):
        service.set_limits("cuda:1", max_temp_c=500)
    saved = json.loads(service.ctx.paths.settings_file.read_text())["devices"][RTX_3090_X16.uuid]
    assert saved["max_temp_c"] == 75 and saved["max_power_w"] is None
    with pytest.raises(ValueError, match="no device"):
        service.set_limits("GPU-nope", max_temp_c=70)


def test_gpu_lost_mid_run_is_marked_and_throttled_without_exception(service, nv):
    service.set_all_modes("mining")
    service.poll()
    nv.lose(1)
    states = service.poll()
    lost = by_id(states, "cuda:1")
    assert lost.telemetry.lost and lost.throttled and "lost" in lost.throttle_reason
    assert by_id(states, "cuda:0").telemetry.temp_c == 62 and not by_id(states, "cuda:0").throttled


def test_poll_is_cheap_on_a_cpu_only_machine():
    svc = DeviceService(AppContext.open(), idle=Clock(None))  # the real pynvml
    svc.poll()
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        svc.poll()
        times.append(time.perf_counter() - t0)
    svc.close()
    assert statistics.median(times) < 0.020, times


def test_poll_and_changes_from_several_threads(service):
    errors = []

    def poller():
        try:
            for _ in range(40):
                service.poll()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=poller) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(39):
        service.set_mode("cpu", ("idle", "mining", "auto")[i % 3])
        service.states()
    for t in threads:
        t.join()
    assert not errors
    assert service.state("cpu").mode == "auto"


def test_benchmark_of_a_device_comes_from_the_bench_file(service):
    assert service.benchmark("cuda:0") is None
    store = BenchStore(service.ctx.paths.bench_file)
    store.add(RTX_3070_X1.uuid, {"device": "cuda:0", "timestamp": "2026-01-01T00:00:00+00:00",
                                 "matmul": {"gflops": 15000.0}})
    store.add(RTX_3070_X1.uuid, {"device": "cuda:0", "timestamp": "2026-01-02T00:00:00+00:00",
                                 "matmul": {"gflops": 16000.0}})
    assert service.benchmark("cuda:0")["matmul"]["gflops"] == 16000.0
    assert len(store.history(RTX_3070_X1.uuid)) == 2
    service.ctx.paths.bench_file.write_text("[1, 2]")
    assert service.benchmark("cuda:0") is None  # unreadable file: no benchmark, no crash
