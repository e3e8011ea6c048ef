"""Hostile jobs, run for real through the sandbox (bubblewrap for `strict`).

Each case must end as a failed job with its reason, the test process alive and the rig's
files untouched. Every attack is bounded so that it stays harmless even if the sandbox
failed: no kill(-1), no deletes, forks and allocations capped, writes only into tmp paths.
Under `basic` the cases that level cannot block are asserted as NOT blocked, so the level
report stays honest.
"""

from __future__ import annotations

import os
import re
import socket

import pytest

from jobs.sandbox import find_bwrap

needs_bwrap = pytest.mark.skipif(find_bwrap() is None, reason="bubblewrap not installed")

NET = """
import socket
def run(ctx):
    s = socket.create_connection(("127.0.0.1", {port}), timeout=3)
    s.sendall(b"stolen")
    return {{"connected": True}}
"""
READ = """
def run(ctx):
    data = open({path!r}).read()
    (ctx.out_dir / "loot.txt").write_text(data)
    return {{"read": len(data)}}
"""
WRITE = """
def run(ctx):
    with open({path!r}, "w") as f:
        f.write("pwned")
    return {{"wrote": True}}
"""
FORK = """
import os, time
def run(ctx):
    kids = []
    try:
        for _ in range(400):          # bounded: harmless even without a sandbox
            pid = os.fork()
            if pid == 0:
                time.sleep(20)
                os._exit(0)
            kids.append(pid)
    except OSError as e:
        raise RuntimeError(f"fork refused after {len(kids)} children: {e}")
    finally:
        for k in kids:
            os.kill(k, 9)             # only our own children, never -1
    return {"forked": len(kids)}
"""
ALLOC = """
def run(ctx):
    hog = []
    for _ in range(200):              # 200 x 256 MB = 50 GB, each chunk really touched
        hog.append(b"\\x01" * (256 << 20))
    return {"allocated_gb": 50}
"""
SPIN = """
def run(ctx):
    while True:
        pass
"""
KILL_PARENT = """
import os, signal
def run(ctx):
    os.kill(os.getppid(), signal.SIGKILL)
    os.kill({app_pid}, signal.SIGKILL)
    return {{"killed": True}}
"""
FILL_ONE = """
def run(ctx):
    with open(ctx.out_dir / "big.bin", "wb") as f:
        for _ in range(64):           # 64 MB against an 8 MB limit
            f.write(b"\\0" * (1 << 20))
    return {"ok": True}
"""
FILL_MANY = """
import time
def run(ctx):
    for i in range(48):               # many files, each under the per-file limit
        (ctx.out_dir / f"f{i}.bin").write_bytes(b"\\0" * (1 << 20))
        time.sleep(0.02)
    time.sleep(2)
    return {"ok": True}
"""
GARBAGE = """
import os
def run(ctx):
    fd = int(os.environ["KMINER_REPORT_FD"])
    for i in range(200):
        os.write(fd, b"not json at all \\xff\\xfe {garbage\\n")
    return {"ok": True}
"""
FLOOD = """
import os
def run(ctx):
    fd = int(os.environ["KMINER_REPORT_FD"])
    chunk = b"x" * (1 << 20)          # 100 MB without a single newline
    for _ in range(100):
        os.write(fd, chunk)
    return {"ok": True}
"""
NO_RESULT = """
import os
def run(ctx):
    ctx.progress(0.5)
    os._exit(0)
"""

STALL = """
import time
def run(ctx):
    ctx.progress(0.1)
    for _ in range(100):
        ctx.progress(0.1)             # reports, but never gets further
        time.sleep(0.2)
    return {"ok": True}
"""
DEEP_LINES = """
import os
def run(ctx):
    fd = int(os.environ["KMINER_REPORT_FD"])
    deep = b'{"type": "result", "result": {"x": ' + b"[" * 32000 + b"]" * 32000 + b"}}\\n"
    for _ in range(30):               # each line under the 64 KiB line cap, nested 32,000 deep
        os.write(fd, deep)
    return {"ok": True}
"""


@pytest.fixture(autouse=True)
def _deep_recursion_as_in_the_app():
    """The app imports web3, which raises the recursion limit to 100,000: a report line nested
    32,000 deep (what fits the 64 KiB line cap) is refused as garbage, never decoded into a
    result the app would store and read back."""
    import sys

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    yield
    sys.setrecursionlimit(old)


@pytest.fixture
def listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.setblocking(False)
    yield srv
    srv.close()


def _accepted(srv: socket.socket) -> bool:
    try:
        conn, _ = srv.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def _check_failed(rec, pattern: str) -> None:
    assert rec.state == "failed", (rec.state, rec.reason)
    assert re.search(pattern, rec.reason or "", re.I), rec.reason


CASES = {
    # name: (code, resources, strict reason pattern, basic: reason pattern or None = not blocked under basic)
    "fork_bomb": (FORK, {"max_processes": 32}, r"process limit reached \(32\)", r"process limit reached \(32\)"),
    "allocate_50gb": (ALLOC, {"max_ram_mb": 512}, r"memory limit reached \(512 MB", r"memory limit reached \(512 MB"),
    "spin_forever": (SPIN, {"max_wall_s": 1.5}, r"wall-clock limit reached \(1.5 s\)", r"wall-clock limit reached"),
    "cpu_time": (SPIN, {"max_wall_s": 30, "max_cpu_s": 1}, r"CPU time limit reached \(1 s\)", r"CPU time limit"),
    "fill_one_file": (FILL_ONE, {"max_disk_mb": 8}, r"output limit reached \(8 MB", r"output limit reached \(8 MB"),
    "fill_many_files": (FILL_MANY, {"max_disk_mb": 8}, r"output limit reached \(8 MB", r"output limit reached \(8 MB"),
    "garbage_on_pipe": (GARBAGE, {}, r"garbage on the report pipe", r"garbage on the report pipe"),
    "flood_pipe_100mb": (FLOOD, {}, r"report pipe flooded|garbage on the report pipe", r"report pipe flooded|garbage"),
    "stall_without_progress": (STALL, {"max_wall_s": 30, "max_silent_s": 1.5},
                               r"progress stopped rising for 1.5 s", r"progress stopped rising for 1.5 s"),
    "deep_report_lines": (DEEP_LINES, {}, r"garbage on the report pipe", r"garbage on the report pipe"),
    "exit_without_result": (NO_RESULT, {}, r"exited with code 0 without a result", r"exited with code 0 without a result"),
}


@needs_bwrap
@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_limits_strict(rig, name):
    code, res, strict_pat, _ = CASES[name]
    rig.python_job(name, code, **res)
    out, rec = rig.run(name, "strict")
    _check_failed(rec, strict_pat)
    assert rig.untouched()
    assert out.level == "strict"


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_limits_basic(rig, name):
    code, res, _, basic_pat = CASES[name]
    rig.python_job(name, code, **res)
    out, rec = rig.run(name, "basic")
    _check_failed(rec, basic_pat)
    assert rig.untouched()


@needs_bwrap
def test_network_is_cut_off_under_strict(rig, listener):
    rig.python_job("net", NET.format(port=listener.getsockname()[1]))
    _, rec = rig.run("net", "strict")
    _check_failed(rec, r"Network is unreachable|Connection refused|OSError")
    assert not _accepted(listener)


def test_network_is_not_cut_off_under_basic(rig, listener):
    """Honest: basic does not isolate the network."""
    rig.python_job("net", NET.format(port=listener.getsockname()[1]))
    _, rec = rig.run("net", "basic")
    assert rec.state == "succeeded" and _accepted(listener)


@needs_bwrap
@pytest.mark.parametrize("target", ["keystore", "home"])
def test_reading_the_rig_owners_files_fails_under_strict(rig, target):
    path = str(rig.secret) if target == "keystore" else os.path.expanduser("~/.bashrc")
    if target == "home" and not os.path.exists(path):
        path = os.path.expanduser("~")
    rig.python_job("read", READ.format(path=path))
    _, rec = rig.run("read", "strict")
    _check_failed(rec, r"No such file or directory|Is a directory|Permission denied")
    assert rig.untouched()
    assert not list(rig.jobs_dir.rglob("loot.txt"))


def test_reading_the_keystore_is_not_blocked_under_basic(rig):
    rig.python_job("read", READ.format(path=str(rig.secret)))
    _, rec = rig.run("read", "basic")
    assert rec.state == "succeeded"


@needs_bwrap
@pytest.mark.parametrize("where", ["rig", "usr", "input", "python"])
def test_writing_outside_the_job_folder_fails_under_strict(rig, where):
    import sys

    target = {"rig": str(rig.sentinel.parent / "dropped.txt"), "usr": "/usr/kminer-hostile.txt",
              "input": None, "python": os.path.join(sys.prefix, "kminer-hostile.txt")}[where]
    if where == "input":   # the buyer's own read-only input, seen from inside
        code = "def run(ctx):\n    open(__file__, 'w').write('x')\n"
        rig.python_job("write", code)
    else:
        rig.python_job("write", WRITE.format(path=target))
    _, rec = rig.run("write", "strict")
    _check_failed(rec, r"Read-only file system|No such file or directory|Permission denied")
    assert rig.untouched()
    if target:
        assert not os.path.exists(target)


def test_writing_outside_is_not_blocked_under_basic(rig, tmp_path):
    target = tmp_path / "outside.txt"   # a tmp path: harmless either way
    rig.python_job("write", WRITE.format(path=str(target)))
    _, rec = rig.run("write", "basic")
    assert rec.state == "succeeded" and target.read_text() == "pwned"


@needs_bwrap
def test_killing_the_parent_fails_under_strict(rig):
    """The app's pid does not exist in the job's pid namespace; the ns init ignores SIGKILL."""
    rig.python_job("killer", KILL_PARENT.format(app_pid=os.getpid()))
    _, rec = rig.run("killer", "strict")
    _check_failed(rec, r"No such process")
    assert rig.untouched()


def test_code_jobs_refused_under_basic_by_default(rig):
    rig.python_job("code", "def run(ctx):\n    return {}\n")
    _, rec = rig.run("code", "basic", allow_code_jobs_basic=False)
    _check_failed(rec, r"run only under the strict sandbox")


@pytest.mark.parametrize("level", ["strict", "basic"])
@pytest.mark.parametrize("name", ["fork_bomb", "allocate_50gb"])
def test_watchdogs_stop_fork_bomb_and_memory_hog_without_cgroups(rig, level, name):
    """Where no cgroup can be made (unprivileged desktop), the watchdogs still end the job."""
    if level == "strict" and find_bwrap() is None:
        pytest.skip("bubblewrap not installed")
    code, res, _, _ = CASES[name]
    rig.python_job(name, code, **res)
    _, rec = rig.run(name, level, use_cgroups=False)
    _check_failed(rec, r"process limit reached \(32\)|memory limit reached \(512 MB")
    assert rig.untouched()



@pytest.mark.parametrize("level", ["strict", "basic"])
def test_process_limit_holds_without_a_pids_cgroup(rig, level):
    """No pids cgroup (an unprivileged desktop): under strict as a normal user the kernel
    stops the forks (RLIMIT_NPROC in the job's own user namespace) before the job passes its
    limit; as root, or under basic, the watchdog kills it."""
    if level == "strict" and find_bwrap() is None:
        pytest.skip("bubblewrap not installed")
    rig.python_job("forks", FORK, max_processes=32)
    out, rec = rig.run("forks", level, use_cgroups=False)
    _check_failed(rec, r"process limit reached \(32\)")
    stopped = re.search(r"fork refused after (\d+) children", rec.reason)
    if out.enforcement["processes"].startswith("RLIMIT_NPROC"):
        assert stopped and int(stopped.group(1)) < 32, rec.reason
    else:
        assert out.enforcement["processes"] == "process watchdog"
    assert rig.untouched()
