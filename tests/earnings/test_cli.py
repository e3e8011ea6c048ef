"""`kminer earnings`: in process with chosen devices, and once through the real console script."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cli.commands.earnings as earnings_cmd
from cli.main import main
from app.context import AppContext
from app.earnings import Ledger
from app.resources import resource_path
from gpu.model import DeviceInfo

KMINER = str(Path(sys.executable).with_name("kminer"))
GPU_KEY = "GPU-5e2a7f0c-3d1b-4c8e-9a61-2f7d0b9c3070"
RTX3070 = DeviceInfo(id="cuda:0", key=GPU_KEY, kind="cuda", index=0, name="NVIDIA GeForce RTX 3070", memory_total_mb=8192)
CPU = DeviceInfo(id="cpu", key="cpu", kind="cpu", index=0, name="Some CPU", memory_total_mb=16000)


@pytest.fixture
def devices(monkeypatch):
    found = [RTX3070, CPU]
    monkeypatch.setattr(earnings_cmd, "discover_devices", lambda: tuple(found))
    return found


def run(capsys, *args):
    rc = main(["earnings", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_earnings_json_per_device_per_day(devices, capsys):
    now = time.time()
    led = Ledger(AppContext.open().paths.ledger_db)
    led.assign_job(5, GPU_KEY, at=now)
    led.record_payment(5, "0x" + "ef" * 32, 3 * 10**18, timestamp=now)
    led.add_power_samples([(GPU_KEY, now - 10 + i, 150.0) for i in range(11)], max_gap_s=5)
    led.close()
    rc, out, err = run(capsys, "--days", "2", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["days"] == 2 and doc["prices"]["source"] == "settings"
    gpu, cpu = doc["devices"]
    assert gpu["key"] == GPU_KEY and gpu["period_ntk_wei"] == str(3 * 10**18) and gpu["cumulative_ntk"] == 3.0
    assert sum(d["energy_wh"] for d in gpu["days"]) == pytest.approx(150 * 10 / 3600)  # (10 s may span midnight)
    assert sum(d["ntk_usd"] for d in gpu["days"]) == pytest.approx(0.03)
    assert set(gpu["coin_mining"]["networks"]) == {"etc", "eth_last_pow"}
    assert gpu["coin_mining"]["networks"]["eth_last_pow"]["as_of"] == "2022-09-14"
    assert gpu["ratio"]["etc"]["knowledge_to_coin"] is None and gpu["ratio"]["etc"]["reason"]
    assert cpu["coin_mining"]["available"] is False and "CPU" in cpu["coin_mining"]["reason"]

    rc, out, _ = run(capsys, "--days", "2")
    assert rc == 0
    assert "period 3 NTK, all time 3 NTK" in out and "figures as of 2022-09-14" in out and "historical" in out
    assert "knowledge : coin mining vs" in out and "no Ethash comparison" in out


def test_compare_a_named_gpu(capsys):
    rc, out, err = run(capsys, "compare", "--gpu", "RTX 3070", "--watts", "130", "--json")
    assert rc == 0, err
    [g] = json.loads(out)["gpus"]
    assert g["gpu"]["name"] == "RTX 3070" and g["watts"] == 130
    assert g["networks"]["etc"]["power_cost_usd"] == pytest.approx(130 * 24 / 1000 * 0.12)
    rc, out, _ = run(capsys, "compare", "--gpu", "NVIDIA GeForce RTX 3070")
    assert rc == 0 and "ETC/day" in out and "ETH/day" in out and "as of 2022-09-14" in out


def test_compare_without_a_known_gpu_is_one_line_exit_1(devices, capsys):
    rc, out, err = run(capsys, "compare", "--gpu", "NVIDIA GeForce RTX 4090")
    assert rc == 1 and out == "" and len(err.strip().splitlines()) == 1 and "RTX 4090" in err
    devices[:] = [CPU]
    rc, _, err = run(capsys, "compare")
    assert rc == 1 and "no GPU found" in err


def test_compare_defaults_to_the_gpus_found(devices, capsys):
    rc, out, _ = run(capsys, "compare", "--json")
    assert rc == 0 and [g["query"] for g in json.loads(out)["gpus"]] == ["NVIDIA GeForce RTX 3070"]


def test_refresh_network_from_a_url_and_from_a_server_that_is_down(feed, capsys, kminer_home):
    doc = json.loads(resource_path("data", "ethash_networks.json").read_text())
    doc["networks"]["etc"]["as_of"] = "2026-11-20"
    url = feed.set_json("/net", doc)
    rc, out, err = run(capsys, "refresh-network", "--url", url)
    assert rc == 0, err
    assert "ETC as of 2026-11-20" in out and (kminer_home / "data" / "ethash_networks.json").exists()
    feed.stop()
    rc, out, err = run(capsys, "refresh-network", "--url", url)
    assert rc == 1 and "could not be reached" in err and "unchanged" in err and len(err.strip().splitlines()) == 1
    rc, _, err = run(capsys, "refresh-network")
    assert rc == 1 and "network_feed_url" in err


@pytest.mark.parametrize("args", [["--days", "0"], ["--days", "x"], ["compare", "--watts", "-3"]])
def test_bad_arguments_exit_2(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(["earnings", *args])
    assert e.value.code == 2


def test_console_script_compare():
    r = subprocess.run([KMINER, "earnings", "compare", "--gpu", "RTX 3070", "--json"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    g = json.loads(r.stdout)["gpus"][0]
    assert g["networks"]["etc"]["coins"] > 0 and g["networks"]["eth_last_pow"]["net_usd"] > 0
