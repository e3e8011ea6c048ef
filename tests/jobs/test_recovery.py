"""Kill -9 of the app mid-job: the worker dies with it, no queued job is lost, and the next
start marks the attempt failed "app stopped", discards its outputs and requeues the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from jobs.artifacts import ArtifactStore
from jobs.execute import Device, RuntimeConfig, execute_attempt
from jobs.queue import JobQueue
from jobs.sandbox import find_bwrap
from jobs.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]


def _wait(pred, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("level", ["strict", "basic"])
def test_kill_9_mid_job_requeues_and_loses_nothing(tmp_path, kminer_home, level):
    if level == "strict" and find_bwrap() is None:
        pytest.skip("bubblewrap not installed")
    spec = {"id": "long", "kind": "sleep", "params": {"seconds": 2.0, "steps": 20, "output_bytes": 1000}}
    (tmp_path / "long.json").write_text(json.dumps(spec))
    env = dict(os.environ, KMINER_HOME=str(kminer_home))
    app = subprocess.Popen([sys.executable, "-m", "cli", "job", "run", str(tmp_path / "long.json"), "--sandbox", level,
                            "--json"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = kminer_home / "data" / "jobs.sqlite"
    assert _wait(lambda: db.exists())
    q = JobQueue(db)
    q.add(parse_spec({"id": "waiting", "kind": "sleep", "params": {"seconds": 0.1}}))
    assert _wait(lambda: q.attempts("long") and q.attempts("long")[-1].pid is not None)
    att = q.attempts("long")[-1]
    worker = psutil.Process(att.pid)
    family = [worker] + worker.children(recursive=True)
    out_dir = Path(att.job_dir) / "out"
    time.sleep(0.4)
    app.send_signal(signal.SIGKILL)
    app.wait(10)
    # the worker (and, under strict, its whole pid namespace) dies with the app
    assert _wait(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family), 5)
    assert q.get("long").state == "running"          # what the dead app left behind
    jobs_dir = kminer_home / "data" / "jobs"
    assert q.recover(jobs_dir) == ["long"]
    rec = q.get("long")
    assert rec.state == "queued" and "app stopped" in rec.reason
    assert q.attempts("long")[-1].state == "failed" and q.attempts("long")[-1].reason == "app stopped"
    assert not out_dir.exists()                       # the dead attempt's outputs are discarded
    assert q.get("waiting").state == "queued"         # nothing queued was lost
    assert q.recover(jobs_dir) == []                  # idempotent
    from jobs.cgroups import _bases, remove_stale

    remove_stale()                                    # the dead app's control groups go too
    for base in _bases():
        assert not [e for e in base.iterdir() if e.name.startswith(f"kminer-long-{app.pid}-")]
    cfg = RuntimeConfig(jobs_dir=jobs_dir, store=ArtifactStore(kminer_home / "data" / "artifacts"), level=level)
    out = execute_attempt(q, cfg, "long", Device("cpu"))
    assert out.status == "succeeded"
    rec = q.get("long")
    assert rec.state == "succeeded" and rec.attempts == 2 and rec.output_sha
    q.close()


def test_recover_leaves_attempts_of_a_live_owner_alone(tmp_path):
    q = JobQueue(tmp_path / "q.sqlite")
    q.add(parse_spec({"id": "a", "kind": "sleep"}))
    n = q.start_attempt("a", device_id="cpu", sandbox="basic", job_dir=tmp_path / "jobs" / "a" / "attempt-1")
    with q._tx() as c:   # pretend another live process (our parent) owns it
        parent = psutil.Process(os.getppid())
        c.execute("UPDATE attempts SET owner_pid=?, owner_start=? WHERE job_id='a' AND n=?",
                  (parent.pid, parent.create_time(), n))
    assert q.recover(tmp_path / "jobs") == []
    assert q.get("a").state == "running"


def test_recover_never_deletes_outside_the_jobs_folder(tmp_path):
    q = JobQueue(tmp_path / "q.sqlite")
    q.add(parse_spec({"id": "a", "kind": "sleep"}))
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    q.start_attempt("a", device_id="cpu", sandbox="basic", job_dir=outside)
    with q._tx() as c:
        c.execute("UPDATE attempts SET owner_pid=NULL")
    assert q.recover(tmp_path / "jobs") == ["a"]
    assert (outside / "keep.txt").read_text() == "keep"
