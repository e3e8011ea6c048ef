"""`kminer agent` as a user runs it: real processes on the embedded chain (every command a
restart of the app), a buyer posting with `kminer market post`, the agent claiming,
rendering, submitting and then releasing its own payment after the review window."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NTK = 10**18


def kminer(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, KMINER_HOME=str(home))
    env.pop("KMINER_PASSWORD", None)
    r = subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=180, stdin=subprocess.DEVNULL)
    if ok:
        assert r.returncode == 0, f"kminer {' '.join(args)} failed: {r.stderr[-1500:]}"
    return r


def test_bad_interval_is_one_line(tmp_path):
    r = kminer(tmp_path, "agent", "--once", "--interval", "0", ok=False)
    assert r.returncode == 1 and r.stderr.strip() == "kminer: error: --interval must be positive"


@pytest.mark.slow
def test_agent_earns_a_render_job_posted_from_the_cli(rig_home, tmp_path):
    # the home: `kminer wallet create` twice (the first deploys the market), the faucet's ETH to
    # the miner, the CPU set to mining (made once by tests/agent/conftest.py; our own copy)
    home = tmp_path / "home"
    shutil.copytree(rig_home[0], home)
    _, buyer, miner = rig_home
    auth = ["--password-file", str(home / "pw.txt")]

    scene = json.loads((ROOT / "resources" / "scenes" / "retail_shelf.json").read_text())
    scene["outputs"].update({"width": 96, "height": 72, "count": 2})
    data = json.dumps({"id": "shelf", "kind": "render", "params": {"scene": scene},
                       "resources": {"device": "cpu", "max_wall_s": 300}}).encode()
    spec = tmp_path / "spec.json"
    spec.write_bytes(data)
    post = json.loads(kminer(home, "market", "post", "--kind", "render", "--spec-hash", hashlib.sha256(data).hexdigest(),
                             "--spec-uri", spec.as_uri(), "--reward", "5", "--deadline-hours", "2",
                             "--review-hours", str(3 / 3600), "--account", buyer, "--json", *auth).stdout)
    (job_id,) = post["job_ids"]

    def ntk(addr: str) -> int:
        return int(json.loads(kminer(home, "wallet", "balance", "--account", addr, "--json", *auth).stdout)["ntk_wei"])

    before = ntk(miner)
    out = kminer(home, "agent", "--once", "--json", "--account", miner, *auth).stdout
    submitted_by = time.monotonic()
    status = json.loads(out.strip().splitlines()[-1])
    assert [(j["job_id"], j["state"]) for j in status["jobs"]] == [(job_id, "submitted")]
    assert status["devices"][0]["device"] == "cpu" and status["devices"][0]["active"]
    job = json.loads(kminer(home, "market", "show", str(job_id), "--json", *auth).stdout)
    assert job["status"] == "submitted" and job["result_uri"].startswith("file://")

    # the review window: 3 s from the submit (the chain's clock is the wall clock); no transaction
    # since: the agent mines an empty block to move chain time
    time.sleep(max(0.0, submitted_by + 4.5 - time.monotonic()))
    line = kminer(home, "agent", "--once", "--account", miner, *auth).stdout
    assert "today 5 NTK" in line, line   # exact, no float rounding
    assert "\nagent: Sandbox: strict\n" in line or "\nagent: Sandbox: basic" in line, line
    assert "\nagent: photoreal engine" in line, line  # the optional engine: installed (": bpy ..."), or how to add it
    assert ntk(miner) - before == 5 * NTK
    job = json.loads(kminer(home, "market", "show", str(job_id), "--json", *auth).stdout)
    assert job["status"] == "released"


def test_agent_after_a_reboot_without_password_or_mining_key_says_how_to_fix_it(tmp_path):
    """No password anywhere and no mining key: one line naming the fix, exit 1; with the
    mining key it starts, signing with it, and says whether the rig is ready."""
    home = tmp_path / "home"
    home.mkdir()
    pw = home / "pw.txt"
    pw.write_text("agent-test-password\n")
    kminer(home, "wallet", "create", "--password-file", str(pw))
    r = kminer(home, "agent", "--once", ok=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "mining key" in r.stderr and "kminer wallet mining-key create" in r.stderr
    kminer(home, "wallet", "mining-key", "create", "--storage", "file", "--password-file", str(pw))
    out = kminer(home, "agent", "--once").stdout
    assert "agent: signing with the mining key" in out
    assert "agent: Not mining: no device is set to mine. Fix: Set a device to Mining" in out
    assert "(kminer devices set-mode ID mining)" in out
