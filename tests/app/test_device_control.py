"""Per-device control: pause/resume, mining hours, slowing down while the PC is in use."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from app.context import AppContext
from app.devices import DeviceService
from tests.app.test_devices_service import Clock as Idle
from tests.gpu.nvml_standin import RTX_3070_X1, make_standin

MON_NOON = datetime(2024, 6, 3, 12, 0)


@pytest.fixture
def nv():
    return make_standin()


@pytest.fixture
def idle():
    return Idle(0.0)  # the user is at the PC


@pytest.fixture
def svc(nv, idle):
    s = DeviceService(AppContext.open(), nvml_module=nv, idle=idle)
    s.control.now = lambda: MON_NOON
    yield s
    s.close()


def by_id(svc, device_id):
    return svc.state(device_id)


def test_pause_one_device_and_resume_it_saved_across_restarts(svc, nv, idle):
    svc.set_all_modes("mining")
    svc.set_paused("cuda:1", True)
    st = svc.poll()
    assert [s.active for s in st] == [True, False, True]
    assert st[1].hold.source == "paused" and st[1].hold.stops_jobs and st[0].hold is None
    saved = json.loads(svc.ctx.paths.settings_file.read_text())
    assert list(saved["control"]["paused"]) == [st[1].info.key]
    again = DeviceService(AppContext.open(), nvml_module=make_standin(), idle=idle)
    assert again.state("cuda:1").hold.source == "paused"
    again.set_paused("cuda:1", False)
    again.close()
    svc.ctx.reload_settings_if_changed()
    assert svc.poll()[1].active and svc.state("cuda:1").hold is None


def test_outside_mining_hours_no_new_jobs_but_the_running_one_finishes(svc):
    svc.set_all_modes("mining")
    assert svc.set_schedule(None, " mon-fri 23:00-07:00 ; sat,sun ") == "mon-fri 23:00-07:00; sat,sun"
    s = svc.poll()[0]
    assert s.active and s.hold.source == "schedule" and not s.hold.stops_jobs
    assert s.hold.reason == "paused until 23:00 (schedule)"
    assert s.hold.until == datetime(2024, 6, 3, 23, 0).timestamp()
    svc.control.now = lambda: datetime(2024, 6, 3, 23, 30)
    assert svc.poll()[0].hold is None
    svc.set_schedule("cuda:0", "sat,sun")  # its own hours
    assert svc.poll()[0].hold.reason == "paused until Sat 00:00 (schedule)" and svc.state("cuda:1").hold is None
    svc.set_schedule("cuda:0", None)  # back to the rig's
    assert svc.poll()[0].hold is None


def test_a_bad_schedule_is_refused_in_one_line_and_nothing_changes(svc):
    with pytest.raises(ValueError, match="unknown day 'fry'"):
        svc.set_schedule(None, "mon-fry 23:00-07:00")
    assert svc.ctx.settings.control.schedule == ""
    with pytest.raises(ValueError, match="no device 'cuda:7'"):
        svc.set_schedule("cuda:7", "daily")


def test_idle_devices_show_no_schedule(svc):
    svc.set_schedule(None, "sat,sun")
    assert all(s.hold is None for s in svc.poll())


def test_slow_while_in_use_lowers_the_power_limit_where_nvml_allows_and_restores_it(svc, nv, idle):
    nv.allow_power_limit = True
    svc.set_mode("cuda:0", "auto")
    svc.set_in_use(None, "slow")
    s = svc.poll()[0]
    assert s.active and s.slowed == "slowed while you use the PC: power limit 132 W"  # 60 % of 220 W
    assert nv.gpus[0].power_limit_w == 132.0
    idle.value = 3600.0  # the user left: full power again
    s = svc.poll()[0]
    assert s.active and s.slowed is None and nv.gpus[0].power_limit_w == 220.0
    idle.value = 0.0
    svc.poll()
    assert nv.gpus[0].power_limit_w == 132.0
    svc.close()
    assert nv.gpus[0].power_limit_w == 220.0  # put back on close


def test_slow_without_permission_stops_the_gpu_saying_why_and_the_cpu_runs_fewer_jobs(svc, nv):
    svc.ctx.settings.jobs.cpu_slots = 4
    svc.set_mode("cuda:0", "auto")
    svc.set_mode("cpu", "auto")
    svc.set_in_use("cuda:0", "slow")
    svc.set_in_use("cpu", "slow")
    g0, g1, cpu = svc.poll()
    assert not g0.active and g0.hold.source == "in_use" and "no permission" in g0.hold.reason
    assert nv.gpus[0].power_limit_w == 220.0
    assert cpu.active and cpu.max_jobs == 2 and cpu.slowed == "slowed while you use the PC: 2 jobs at a time"


def test_stop_while_in_use_stays_as_before(svc):
    svc.set_mode("cuda:0", "auto")
    s = svc.poll()[0]
    assert not s.active and s.hold is None and s.slowed is None


def test_unknown_in_use_choice_is_refused(svc):
    with pytest.raises(ValueError, match="use stop or slow"):
        svc.set_in_use(None, "turbo")
    assert RTX_3070_X1.uuid not in svc.ctx.settings.control.device_in_use
