"""The HiveOS custom-miner package (packaging/hiveos): its scripts run by bash as HiveOS runs
them, against the real metrics text of app.fleet.metrics and, end to end, a real `kminer agent`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.agent.conftest import rig_home  # noqa: F401 (the session home the rig fixture copies)
from tests.agent.test_agent_process import rig  # noqa: F401 (the fixture: a miner and a buyer on the embedded chain)

from app.fleet.metrics import render_metrics
from app.fleet.snapshot import NTK_WEI, DeviceSnapshot, RigSnapshot
from app.readiness import Readiness

ROOT = Path(__file__).resolve().parents[2]
HIVE = ROOT / "packaging" / "hiveos"
needs_tools = pytest.mark.skipif(not (shutil.which("bash") and shutil.which("awk")), reason="needs bash and awk")

# what HiveOS's agent has in $gpu_stats: the CPU's own graphics first, then two cards
GPU_STATS = {"busids": ["00:02.0", "01:00.0", "0a:00.0"], "brand": ["cpu", "nvidia", "nvidia"],
             "temp": [0, 60, 70], "fan": [0, 45, 80]}


def _snapshot(ready: bool = True) -> RigSnapshot:
    devs = (
        DeviceSnapshot("cuda:0", "GPU-aaa", "RTX 3090", "cuda", "mining", temp_c=61.4, util_pct=97.0, jobs_running=1,
                       earned_today_wei=NTK_WEI * 3 // 2),
        DeviceSnapshot("cuda:1", "GPU-bbb", "RTX 3090", "cuda", "held", reason='lost "GPU"', temp_c=70.0,
                       util_pct=12.0),
        DeviceSnapshot("cpu", "cpu", "CPU", "cpu", "idle"),
    )
    rd = Readiness(True, "ready", "Ready for jobs") if ready else Readiness(False, "no-gas", "No ETH for gas", "Add ETH")
    return RigSnapshot("rig-7", "0.1.0", 1_700_000_000.0, rd, devs, {"paid": 4, "rejected": 1, "failed": 2},
                       earned_today_wei=NTK_WEI * 3 // 2, earned_total_wei=NTK_WEI * 12)


def _awk(text: str, **v: str) -> tuple[float, dict]:
    args = ["awk", "-v", f"ver={v.get('ver', '')}", "-v", f"uptime={v.get('uptime', 0)}",
            "-v", f"fans={v.get('fans', '')}", "-v", f"busids={v.get('busids', '')}", "-f", str(HIVE / "kminer-stats.awk")]
    out = subprocess.run(args, input=text, capture_output=True, text=True, check=True).stdout.splitlines()
    return float(out[0]), json.loads(out[1])


@needs_tools
def test_stats_per_gpu_state_temps_and_earnings_from_real_metrics():
    khs, st = _awk(render_metrics(_snapshot()), uptime="42", fans="45,80", busids="01:00.0,0a:00.0")
    assert st["hs"] == [97, 0]          # cuda:1 is held: no work, so HiveOS shows it at 0
    assert khs == pytest.approx(0.097)
    assert st["temp"] == [61, 70] and st["fan"] == [45, 80] and st["bus_numbers"] == [1, 10]
    assert st["ar"] == [4, 1, 2] and st["uptime"] == 42 and st["algo"] == "kminer"
    assert st["ver"] == "0.1.0, today 1.5000 NTK"
    k = st["kminer"]
    assert k["ready"] is True and k["today_ntk"] == 1.5 and k["total_ntk"] == 12
    assert [(d["device"], d["state"]) for d in k["devices"]] == [("cuda:0", "mining"), ("cuda:1", "held"), ("cpu", "idle")]
    assert k["devices"][0]["today_ntk"] == 1.5 and k["devices"][0]["jobs"] == 1


@needs_tools
def test_stats_without_gpus_report_the_cpu_and_why_not_ready():
    s = _snapshot(ready=False)
    s = RigSnapshot(s.rig, s.version, s.taken_at, s.readiness, (s.devices[2],), {}, 0, 0)
    khs, st = _awk(render_metrics(s), fans="45,80")
    assert st["hs"] == [0] and st["temp"] == [0] and st["fan"] == [0] and "bus_numbers" not in st
    assert st["kminer"]["ready"] is False and st["kminer"]["why"] == "No ETH for gas"
    assert khs == 0 and st["ar"] == [0, 0, 0]


def _hive_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home"),
           "KMINER_HIVE_CONF": str(tmp_path / "kminer.conf"), "KMINER_HIVE_LOG": str(tmp_path / "log" / "kminer")}
    env.update(extra)
    return env


@needs_tools
def test_h_config_writes_the_flight_sheet_safely(tmp_path):
    addr = "0x" + "ab" * 20
    env = _hive_env(tmp_path, CUSTOM_URL="sepolia", CUSTOM_TEMPLATE=addr, KMINER_HIVE_BIN="/bin/echo",
                    CUSTOM_USER_CONFIG="--password-file /x/$(touch${IFS}pwned)';' --sandbox strict metrics_port=61000 home=/data/km")
    r = subprocess.run(["bash", str(HIVE / "h-config.sh")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # read back as h-run.sh does: the odd password-file path stays one literal word
    out = subprocess.run(["bash", "-c", f'. {tmp_path}/kminer.conf; printf "%s\\n" "$KMINER_METRICS_PORT" "$KMINER_HIVE_HOME" "${{KMINER_ARGS[@]}}"'],
                         capture_output=True, text=True, cwd=tmp_path).stdout.splitlines()
    assert out == ["61000", "/data/km", "--network", "sepolia", "--account", addr,
                   "--password-file", "/x/$(touch${IFS}pwned)';'", "--sandbox", "strict"]
    assert not (tmp_path / "pwned").exists()


@needs_tools
@pytest.mark.parametrize("field,value,says", [
    ("CUSTOM_URL", "stratum+tcp://pool:4444", "pool URL must be"),
    ("CUSTOM_TEMPLATE", "%WAL%", "wallet must be a 0x address"),
    ("CUSTOM_USER_CONFIG", "--threads 4", "unknown extra config '--threads'"),
    ("CUSTOM_USER_CONFIG", "metrics_port=99999", "metrics_port must be 1..65535"),
    ("CUSTOM_USER_CONFIG", "--password-file", "--password-file needs a value"),
])
def test_h_config_bad_field_is_one_line_and_writes_nothing(tmp_path, field, value, says):
    env = _hive_env(tmp_path, **{field: value})
    r = subprocess.run(["bash", str(HIVE / "h-config.sh")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 1 and says in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "kminer.conf").exists()
    # sourced, as /hive/bin/custom does: it returns 1 and leaves the caller running
    r = subprocess.run(["bash", "-c", f'. {HIVE}/h-config.sh; echo "after $?"'], env=env, capture_output=True, text=True)
    assert r.stdout.strip() == "after 1"


@needs_tools
def test_h_stats_without_an_agent_says_null_and_never_exits(tmp_path):
    env = _hive_env(tmp_path, CUSTOM_USER_CONFIG="metrics_port=1", KMINER_HIVE_BIN="/bin/true")
    subprocess.run(["bash", str(HIVE / "h-config.sh")], env=env, check=True, capture_output=True)
    r = subprocess.run(["bash", "-c", f'. {HIVE}/h-stats.sh; echo "still here khs=$khs stats=$stats"'],
                       env=env, capture_output=True, text=True)
    assert r.stdout.strip().endswith("still here khs=0 stats=null")


def test_package_layout(tmp_path):
    sys.path.insert(0, str(HIVE))
    try:
        import make_hiveos
    finally:
        sys.path.remove(str(HIVE))
    bundle = tmp_path / "kminer"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "kminer").write_text("#!/bin/sh\n")
    (bundle / "kminer").chmod(0o755)
    p = make_hiveos.build(bundle, tmp_path, "0.1.0", "cuda")
    assert p.name == "kminer-0.1.0-cuda.tar.gz"
    with tarfile.open(p) as t:
        names = {m.name: m for m in t.getmembers()}
        manifest = t.extractfile("kminer/h-manifest.conf").read().decode()
    assert {"kminer/h-manifest.conf", "kminer/h-config.sh", "kminer/h-run.sh", "kminer/h-stats.sh",
            "kminer/kminer-stats.awk", "kminer/app/kminer"} <= set(names)
    assert all(n.split("/")[0] == "kminer" for n in names)
    assert names["kminer/h-run.sh"].mode & 0o111 and names["kminer/app/kminer"].mode & 0o111
    assert "CUSTOM_NAME=kminer" in manifest and "CUSTOM_VERSION=0.1.0-cuda" in manifest


@needs_tools
@pytest.mark.slow
def test_scripts_against_a_real_agent_that_gets_paid(tmp_path, rig):
    """h-config.sh and h-run.sh start the real `kminer agent`; a buyer's render job is claimed,
    rendered, submitted and paid; h-stats.sh, sourced by bash with HiveOS's $gpu_stats, reports it."""
    from tests.agent.test_agent_fleet import free_port

    kminer_bin = tmp_path / "kminer"  # stands where the bundle's app/kminer would
    kminer_bin.write_text(f'#!/bin/sh\ncd {ROOT} && exec {sys.executable} -m cli "$@"\n')
    kminer_bin.chmod(0o755)
    port = free_port()
    env = _hive_env(tmp_path, KMINER_HIVE_BIN=str(kminer_bin), CUSTOM_URL="local", CUSTOM_TEMPLATE=rig.miner,
                    CUSTOM_USER_CONFIG=f"{' '.join(rig.auth)} --interval 0.3 home={rig.home} metrics_port={port}")
    subprocess.run(["bash", str(HIVE / "h-config.sh")], env=env, check=True, capture_output=True)
    job_id = rig.post(frames=2, review_s=3)
    run = subprocess.Popen(["bash", str(HIVE / "h-run.sh")], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    stats_cmd = ["bash", "-c", f'gpu_stats={json.dumps(json.dumps(GPU_STATS))}; . {HIVE}/h-stats.sh; echo "$khs"; echo "$stats"']
    try:
        end = time.monotonic() + 240
        st = None
        while time.monotonic() < end:
            out = subprocess.run(stats_cmd, env=env, capture_output=True, text=True).stdout.splitlines()
            if len(out) == 2 and out[1] != "null":
                st = json.loads(out[1])
                if st["ar"][0] >= 1:
                    break
            assert run.poll() is None, (tmp_path / "log" / "kminer.log").read_text()[-2000:]
            time.sleep(1)
        assert st is not None and st["ar"][0] == 1, (st, (tmp_path / "log" / "kminer.log").read_text()[-2000:])
        assert st["kminer"]["today_ntk"] > 0 and "today 0.0000 NTK" not in st["ver"]
        assert [d["device"] for d in st["kminer"]["devices"]] == ["cpu"] and st["uptime"] >= 0
        assert len(st["hs"]) == len(st["temp"]) == len(st["fan"]) == 1
        # the rig's readiness comes through with its reason (here the 1 ETH of gas may run low)
        assert st["kminer"]["ready"] is True or st["kminer"]["why"].startswith("Not mining"), st["kminer"]
        log = (tmp_path / "log" / "kminer.log").read_text()
        assert f"metrics on http://127.0.0.1:{port}/metrics" in log and f"job {job_id}" in log
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(30)
