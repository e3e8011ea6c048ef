"""`kminer agent` as a process: SIGKILL mid-job and after submit, then restart: nothing runs
twice, nothing is lost, the payment comes exactly once; Ctrl-C pauses (requeued) or finishes
running jobs, a second Ctrl-C stops at once; the agent's telemetry reaches `kminer earnings`."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.paths import resolve_paths
from jobs.queue import JobQueue
from tests.agent.conftest import NTK, render_spec_bytes
from tests.agent.test_agent_cli import kminer

ROOT = Path(__file__).resolve().parents[2]


class Agent:
    """A running `kminer agent --json`; its status lines (JSON) and messages, read on a thread."""

    def __init__(self, home: Path, *args: str):
        env = dict(os.environ, KMINER_HOME=str(home))
        env.pop("KMINER_PASSWORD", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "cli", "agent", "--json", "--interval", "0.3", *args],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.said: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, pred, timeout_s: float = 120) -> dict:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if not line.startswith("{"):
                self.said.append(line.strip())
                continue
            st = json.loads(line)
            if pred(st):
                return st
        raise AssertionError(f"agent never reached the state; said {self.said}; rc {self.proc.poll()}; "
                             f"stderr {self.proc.stderr.read()[-2000:] if self.proc.poll() is not None else ''}")

    def finish(self, timeout_s: float = 90) -> int:
        rc = self.proc.wait(timeout_s)
        time.sleep(0.2)
        while not self.lines.empty():
            line = self.lines.get()
            if not line.startswith("{"):
                self.said.append(line.strip())
        return rc

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the session this test started
            self.proc.wait(30)


def _job_state(st: dict, job_id: int) -> str | None:
    return next((j["state"] for j in st["jobs"] if j["job_id"] == job_id), None)


def _progress(st: dict) -> float:
    return st["devices"][0]["progress"] or 0.0


@pytest.fixture
def rig(rig_home, tmp_path):
    """A copy of the session's rig home (tests/agent/conftest.py; no process has it open)."""
    home = tmp_path / "home"
    shutil.copytree(rig_home[0], home)
    _, buyer, miner = rig_home
    auth = ["--password-file", str(home / "pw.txt")]
    started: list[Agent] = []

    def post(frames: int, review_s: float, reward: int = 5) -> int:
        data = render_spec_bytes(frames=frames)
        spec = tmp_path / f"spec-{frames}.json"
        spec.write_bytes(data)
        out = kminer(home, "market", "post", "--kind", "render", "--spec-hash", hashlib.sha256(data).hexdigest(),
                     "--spec-uri", spec.as_uri(), "--reward", str(reward), "--deadline-hours", "2",
                     "--review-hours", str(review_s / 3600), "--account", buyer, "--json", *auth).stdout
        return json.loads(out)["job_ids"][0]

    def agent(*args: str) -> Agent:
        a = Agent(home, "--account", miner, *auth, *args)
        started.append(a)
        return a

    def ntk(addr: str) -> int:
        return int(json.loads(kminer(home, "wallet", "balance", "--account", addr, "--json", *auth).stdout)["ntk_wei"])

    yield type("Rig", (), dict(home=home, auth=auth, buyer=buyer, miner=miner, post=staticmethod(post),
                               agent=staticmethod(agent), ntk=staticmethod(ntk)))
    for a in started:
        a.cleanup()


def _attempts(home: Path, job_id: int):
    q = JobQueue(resolve_paths({"KMINER_HOME": str(home)}).jobs_db)
    try:
        (qid,) = [j.id for j in q.list() if j.id.startswith("market-") and j.id.endswith(f"-{job_id}")]
        return q.attempts(qid)
    finally:
        q.close()


@pytest.mark.slow
def test_kill9_mid_job_and_after_submit_loses_nothing_and_pays_once(rig):
    job_id = rig.post(frames=150, review_s=8)
    before = rig.ntk(rig.miner)
    a = rig.agent()
    a.wait_for(lambda st: _job_state(st, job_id) == "running" and _progress(st) > 0)
    a.kill9()  # mid-job: the claim is on the chain, the render half done

    a = rig.agent("--once")
    assert a.finish(300) == 0, a.said
    submitted_by = time.monotonic()  # the result is on the chain: its review window (8 s) ends 8 s after this at most
    atts = _attempts(rig.home, job_id)
    assert sum(x.state == "succeeded" for x in atts) == 1 and atts[-1].state == "succeeded", atts
    assert len(atts) == 2  # the killed attempt, then one full run

    a = rig.agent()  # the review window (8 s) is still open: it waits
    st = a.wait_for(lambda st: _job_state(st, job_id) is not None)
    assert _job_state(st, job_id) == "submitted"
    a.kill9()  # after submit, before the payment
    time.sleep(max(0.0, submitted_by + 9 - time.monotonic()))  # the window is over (chain time = wall time)
    a = rig.agent("--once")
    assert a.finish(120) == 0, a.said
    assert rig.ntk(rig.miner) - before == 5 * NTK  # released once, recorded once
    show = json.loads(kminer(rig.home, "market", "show", str(job_id), "--json", *rig.auth).stdout)
    assert show["status"] == "released"
    rep = json.loads(kminer(rig.home, "earnings", "--json").stdout)
    cpu = next(d for d in rep["devices"] if d["key"] == "cpu")
    assert cpu["period_ntk_wei"] == str(5 * NTK)
    assert cpu["days"][-1]["energy_wh"] > 0 and "net_usd" in cpu["days"][-1]  # the agent's telemetry


@pytest.mark.slow
def test_ctrl_c_pauses_or_finishes_and_twice_stops_at_once(rig):
    job_id = rig.post(frames=600, review_s=3600)
    a = rig.agent("--grace", "0")
    a.wait_for(lambda st: _progress(st) > 0)
    a.proc.send_signal(signal.SIGINT)
    assert a.finish() == 0
    assert any(f"paused job {job_id} (requeued" in s for s in a.said), a.said
    assert any("finished; exiting" in s for s in a.said), a.said
    atts = _attempts(rig.home, job_id)
    assert [x.reason for x in atts] == ["app stopped"]  # stopped cleanly, back in the queue

    a = rig.agent("--grace", "3600")
    a.wait_for(lambda st: _progress(st) > 0)
    t0 = time.monotonic()
    a.wait_for(lambda st: time.monotonic() - t0 > 4)  # long enough to know its rate
    a.proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 30
    while not any("finishing" in s for s in a.said) and time.monotonic() < deadline:
        try:
            a.wait_for(lambda st: True, timeout_s=1)
        except AssertionError:
            pass
    assert any(f"finishing job {job_id}" in s for s in a.said), a.said
    a.proc.send_signal(signal.SIGINT)
    assert a.finish() == 0
    assert any("stopped at once; 1 running job(s) requeued" in s for s in a.said), a.said
    atts = _attempts(rig.home, job_id)
    assert [x.reason for x in atts] == ["app stopped", "app stopped"]


def test_agent_started_while_the_node_is_down_waits_and_stops_on_ctrl_c(tmp_path):
    from tests.wallet.conftest import free_port

    home = tmp_path / "home"
    home.mkdir()
    pw = home / "pw.txt"
    pw.write_text("agent-test-password\n")
    miner = json.loads(kminer(home, "wallet", "create", "--json", "--password-file", str(pw)).stdout)["address"]
    a = Agent(home, "--network", "devnet", "--rpc-url", f"http://127.0.0.1:{free_port()}", "--account", miner,
              "--password-file", str(pw))
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and sum("waiting for RPC (retry in" in s for s in a.said) < 2:
            try:
                a.wait_for(lambda st: False, timeout_s=1)
            except AssertionError:
                pass
        assert [s.split(":")[1].strip() for s in a.said[:2]] == ["waiting for RPC (retry in 1 s)",
                                                                "waiting for RPC (retry in 2 s)"], a.said
        a.proc.send_signal(signal.SIGINT)
        assert a.finish(30) == 0
    finally:
        a.cleanup()
