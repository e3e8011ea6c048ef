"""`kminer devices pause|resume|schedule|while-in-use`, in-process with stand-in GPUs (NVIDIA and AMD)."""

from __future__ import annotations

import json

import pytest

import cli.commands.devices as devices_cmd
from app.context import AppContext
from app.devices import DeviceService
from cli.main import main
from tests.gpu.amdsmi_standin import make_amd_standin
from tests.gpu.nvml_standin import RTX_3090_X16, make_standin


@pytest.fixture
def rig(monkeypatch):
    nv, smi = make_standin(), make_amd_standin()
    monkeypatch.setattr(devices_cmd, "make_service",
                        lambda ctx: DeviceService(ctx, nvml_module=nv, amd_module=smi, idle=lambda: None))
    return nv, smi


def saved():
    return AppContext.open().settings


def test_pause_and_resume_one_device(rig, capsys):
    assert main(["devices", "set-mode", "cuda:1", "mining"]) == 0
    assert main(["devices", "pause", "cuda:1"]) == 0
    assert capsys.readouterr().out.endswith("cuda:1 (NVIDIA GeForce RTX 3090): paused\n")
    assert RTX_3090_X16.uuid in saved().control.paused
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "cuda:1: paused" in out and "  paused  " in out
    main(["devices", "--json"])
    g1 = json.loads(capsys.readouterr().out)[1]
    assert g1["hold"] == {"source": "paused", "reason": "paused", "until": None} and g1["active"] is False
    assert main(["devices", "resume", "cuda:1"]) == 0
    assert saved().control.paused == {}
    assert main(["devices", "pause", "cuda:9"]) == 1
    assert "no device 'cuda:9'" in capsys.readouterr().err


def test_schedule_set_show_per_device_and_clear(rig, capsys):
    assert main(["devices", "schedule", "set", "mon-fri 23:00-07:00; sat,sun"]) == 0
    assert "rig: mon-fri 23:00-07:00; sat,sun" in capsys.readouterr().out
    assert main(["devices", "schedule", "set", "daily 01:00-05:00", "--device", "amd:0"]) == 0
    capsys.readouterr()
    assert main(["devices", "schedule", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rig"] == "mon-fri 23:00-07:00; sat,sun"
    assert [d["own"] for d in data["devices"]] == [None, None, "daily 01:00-05:00", None, None]
    assert main(["devices", "schedule", "clear", "--device", "amd:0"]) == 0
    assert main(["devices", "schedule", "clear"]) == 0
    s = saved().control
    assert s.schedule == "" and s.device_schedules == {}


def test_bad_schedule_input_is_one_line_and_nothing_is_saved(rig, capsys):
    assert main(["devices", "schedule", "set", "mon-fry 23:00-07:00"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "kminer: error: unknown day 'fry' in 'mon-fry 23:00-07:00'; use mon..sun, daily, weekdays or weekends"
    assert main(["devices", "schedule", "set"]) == 1
    assert main(["devices", "schedule", "show", "daily"]) == 1
    assert "did you mean: kminer devices schedule set 'daily'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["devices", "schedule", "daily"])
    assert e.value.code == 2
    assert saved().control.schedule == ""


def test_while_in_use(rig, capsys):
    assert main(["devices", "while-in-use", "slow"]) == 0
    assert main(["devices", "while-in-use", "stop", "--device", "cpu"]) == 0
    s = saved().control
    assert s.while_in_use == "slow" and s.device_in_use == {"cpu": "stop"}


def test_amd_cards_are_listed_with_what_they_can_run(rig, capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "amd:0   Radeon RX 580 Series" in out and "amd:1   AMD Radeon RX 6800" in out
    assert "amd:0: training needs a ROCm build of torch" in out
    main(["devices", "--json"])
    amd0 = json.loads(capsys.readouterr().out)[2]
    assert amd0["kind"] == "amd" and amd0["capabilities"] == ["render"] and amd0["pci_bus_id"] == "0000:05:00.0"
