"""The `python` engine: buyer modules as a file or a folder, inputs, and clear refusals."""

from __future__ import annotations

import pytest

from jobs.spec import parse_spec

LEVEL = "strict"


@pytest.fixture(autouse=True)
def _level():
    from jobs.sandbox import find_bwrap

    global LEVEL
    LEVEL = "strict" if find_bwrap() else "basic"


def _queue(rig, job_id, module_sha, mtype="file", params=None, extra_inputs=None):
    inputs = {"code": {"sha256": module_sha, "type": mtype}, **(extra_inputs or {})}
    rig.queue.add(parse_spec({"id": job_id, "kind": "python", "params": {"module": "code", **(params or {})},
                              "inputs": inputs, "resources": {"max_wall_s": 20}}))


def test_folder_module_with_helper_and_a_data_input(rig, tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "helper.py").write_text("def double(x):\n    return 2 * x\n")
    (pkg / "main.py").write_text(
        "import helper\n"
        "def go(ctx):\n"
        "    n = int(ctx.inputs['data'].read_text())\n"
        "    (ctx.out_dir / 'answer.txt').write_text(str(helper.double(n)))\n"
        "    return {'answer': helper.double(n)}\n")
    code_sha = rig.store.put_dir(pkg)
    data_sha = rig.store.put_bytes(b"21")
    _queue(rig, "folder", code_sha, "dir", {"entry": "go"}, {"data": {"sha256": data_sha}})
    out, rec = rig.run("folder", LEVEL)
    assert rec.state == "succeeded", rec.reason
    assert rec.result == {"returned": {"answer": 42}, "output_files": 1}
    assert rec.output_sha and rig.store.has(rec.output_sha)


@pytest.mark.parametrize("code, params, reason", [
    ("def run(ctx):\n    return 5\n", {}, r"run\(\) returned int; return a dict or None"),
    ("x = 1\n", {}, r"buyer module has no function 'run'"),
    ("def run(ctx):\n    return {}\n", {"entry": "not valid"}, r"params.entry"),
    ("def run(ctx):\n    return {}\n", {"module": "nope"}, r"params.module: no input named 'nope'"),
    ("def run(ctx):\n    ctx.job_dir\n", {}, r"AttributeError: 'BuyerContext' object has no attribute 'job_dir'"),
    ("def run(ctx):\n    raise SystemExit(3)\n", {}, r"job called exit\(3\)"),
])
def test_bad_buyer_modules_fail_with_a_reason(rig, code, params, reason):
    import re

    sha = rig.store.put_bytes(code.encode())
    if params.get("module") == "nope":
        rig.queue.add(parse_spec({"id": "bad", "kind": "python", "params": params,
                                  "inputs": {"code": {"sha256": sha}}}))
    else:
        _queue(rig, "bad", sha, params=params)
    _, rec = rig.run("bad", LEVEL)
    assert rec.state == "failed" and re.search(reason, rec.reason), rec.reason


def test_tampered_input_is_refused_before_the_job_starts(rig):
    sha = rig.store.put_bytes(b"def run(ctx):\n    return {}\n")
    rig.store.path(sha).write_bytes(b"import os; os.system('evil')\n")
    _queue(rig, "tampered", sha)
    _, rec = rig.run("tampered", LEVEL)
    assert rec.state == "failed" and "corrupt" in rec.reason
    assert rig.queue.attempts("tampered")[-1].pid is None     # no worker ever ran


@pytest.mark.parametrize("level", ["basic", "strict"])
def test_jobs_run_below_normal_cpu_priority_and_so_do_their_threads(rig, level):
    """The setting jobs.priority (RuntimeConfig.nice) lowers every thread and child of a job."""
    import os

    from jobs.sandbox import find_bwrap

    if level == "strict" and not find_bwrap():
        pytest.skip("no bubblewrap here")
    code = ("import os, threading\n"
            "def run(ctx):\n"
            "    seen = {}\n"
            "    t = threading.Thread(target=lambda: seen.update(thread=os.nice(0)))\n"
            "    t.start(); t.join()\n"
            "    return {'main': os.nice(0), **seen}\n")
    rig.queue.add(parse_spec({"id": f"nice-{level}", "kind": "python", "params": {"module": "code"},
                              "inputs": {"code": {"sha256": rig.store.put_bytes(code.encode())}},
                              "resources": {"max_wall_s": 20}}))
    mine = os.nice(0)
    out, rec = rig.run(f"nice-{level}", level, nice=7)
    assert rec.state == "succeeded", rec.reason
    assert rec.result["returned"] == {"main": min(mine + 7, 19), "thread": min(mine + 7, 19)}
    assert os.nice(0) == mine   # the app itself keeps its priority
