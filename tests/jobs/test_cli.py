"""`kminer job run|list|show|cancel` and `kminer worker`, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.main import main
from jobs.sandbox import find_bwrap

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "resources" / "examples" / "python_job.json"


def test_python_example_runs_as_is(capsys):
    level = "strict" if find_bwrap() else "basic"
    if level == "basic":
        pytest.skip("the python example (buyer code) runs only under strict by default")
    rc = main(["job", "run", str(EXAMPLE), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0, doc
    assert doc["status"] == "succeeded" and doc["sandbox"]["level"] == "strict"
    assert 3.0 < doc["result"]["returned"]["pi"] < 3.3 and len(doc["output_sha256"]) == 64
    assert doc["timing"]["start_to_first_progress_s"] < 5


def test_invalid_spec_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "x", "kind": "python", "resources": {"max_ram_mb": "lots"}}))
    assert main(["job", "run", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("kminer: error: spec field resources.max_ram_mb") and "\n" not in err


def test_failed_job_prints_json_reason_and_exits_1(tmp_path, capsys):
    spec = {"id": "fails", "kind": "sleep", "params": {"seconds": "soon"}}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    assert main(["job", "run", str(tmp_path / "s.json"), "--sandbox", "basic"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "failed" and out["reason"].startswith("params.seconds")


def test_missing_input_fails_with_reason(tmp_path, capsys):
    spec = {"id": "noin", "kind": "sleep", "inputs": {"data": {"sha256": "b" * 64, "uri": "nothere.bin"}}}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    assert main(["job", "run", str(tmp_path / "s.json"), "--sandbox", "basic", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "failed" and "input 'data'" in out["reason"] and "No such file" in out["reason"]


def test_list_show_and_cancel_unknown(tmp_path, capsys):
    spec = {"id": "quick", "kind": "sleep", "params": {"seconds": 0.1, "steps": 2}}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    assert main(["job", "run", str(tmp_path / "s.json"), "--sandbox", "basic", "--json"]) == 0
    capsys.readouterr()
    assert main(["job", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["state"]) for r in rows] == [("quick", "succeeded")]
    assert main(["job", "show", "quick"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["attempts"][0]["state"] == "succeeded" and doc["spec"]["kind"] == "sleep"
    assert main(["job", "cancel", "nope"]) == 1
    assert "no job 'nope'" in capsys.readouterr().err
    assert main(["job", "run", str(tmp_path / "s.json"), "--device", "tpu:0"]) == 1
    assert "unknown device" in capsys.readouterr().err


def test_worker_without_pipe_is_refused(capsys, tmp_path):
    from jobs.worker import main as worker_main

    assert worker_main(["--job", str(tmp_path)]) == 2
    assert "no report pipe" in capsys.readouterr().err


@pytest.mark.parametrize("level", ["strict", "basic"])
def test_cancel_from_another_process(tmp_path, kminer_home, level):
    if level == "strict" and find_bwrap() is None:
        pytest.skip("bubblewrap not installed")
    spec = {"id": "long", "kind": "sleep", "params": {"seconds": 60, "steps": 600}}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    env = dict(os.environ, KMINER_HOME=str(kminer_home))
    run = subprocess.Popen([sys.executable, "-m", "cli", "job", "run", str(tmp_path / "s.json"), "--sandbox", level,
                            "--json"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    from jobs.queue import JobQueue

    db = kminer_home / "data" / "jobs.sqlite"
    end = time.monotonic() + 20
    while time.monotonic() < end:
        if db.exists() and JobQueue(db).attempts("long") and JobQueue(db).attempts("long")[-1].pid:
            break
        time.sleep(0.05)
    t0 = time.monotonic()
    c = subprocess.run([sys.executable, "-m", "cli", "job", "cancel", "long"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert c.returncode == 0, c.stderr
    out, err = run.communicate(timeout=20)
    took = time.monotonic() - t0
    doc = json.loads(out)
    assert run.returncode == 1 and doc["status"] == "cancelled", (out, err)
    assert took < 5
