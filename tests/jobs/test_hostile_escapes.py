"""Hostile jobs that aim past the sandbox through the app itself, run for real.

The attack classes of issue 15: outputs through links, app files (outcome, log) turned into
links, the kernel keyring, nested user namespaces, mount, ptrace, terminal injection
(TIOCSTI/TIOCLINUX), perf events, terminal escapes in the job's text, many tiny files, and
input URLs aimed at loopback/private addresses. Every attack stays harmless if the sandbox
failed: links point into tmp folders or at read-only targets, the only processes signalled
are the job's own children, writes go to tmp paths, servers listen on 127.0.0.x only.
The whole file also runs as an unprivileged user (tests/jobs/test_hostile_as_user.py).
"""

from __future__ import annotations

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jobs.attempt_files import log_tail
from jobs.sandbox import strict_problem
from jobs.url_policy import UrlPolicy

needs_strict = pytest.mark.skipif(strict_problem() is not None, reason=f"strict unavailable: {strict_problem()}")
LEVELS = ["strict", "basic"]


def _level(level: str) -> None:
    if level == "strict" and strict_problem() is not None:
        pytest.skip(f"strict unavailable: {strict_problem()}")


def _syscalls(*names: str) -> dict[str, int]:
    import pyseccomp

    return {n: pyseccomp.resolve_syscall(pyseccomp.system_arch(), n) for n in names}


def _failed(rec, pattern: str) -> None:
    assert rec.state == "failed", (rec.state, rec.reason, rec.result)
    assert re.search(pattern, rec.reason or "", re.I), rec.reason


def _returned(rec) -> dict:
    assert rec.state == "succeeded", (rec.state, rec.reason)
    return rec.result["returned"]


def _secret_stored(rig) -> bool:
    return any(b"wallet-secret-do-not-leak" in p.read_bytes() for p in rig.stored_blobs())


# ---- 1. outputs through a link ------------------------------------------------------------
LINK_OUT = """
import os, socket
def run(ctx):
    kind = {kind!r}
    target = {target!r}
    o = ctx.out_dir
    (o / "real.txt").write_text("fine")
    if kind == "file":
        os.symlink(target, o / "loot.json")
    elif kind == "dir":
        os.symlink(os.path.dirname(target), o / "loot")
    elif kind == "fifo":
        os.mkfifo(o / "pipe")
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(o / "sock"))
    elif kind == "hardlink":
        os.link(o / "real.txt", o / "twin.txt")
    elif kind == "replace_out":     # swap the whole output folder for a link (basic can; strict cannot)
        try:
            os.rename(o, str(o) + ".old")
            os.symlink(os.path.dirname(target), o)
            return {{"replaced": True}}
        except OSError as e:
            return {{"replaced": False, "error": e.strerror}}
    return {{"planted": kind}}
"""


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", ["file", "dir", "fifo", "socket", "hardlink"])
def test_outputs_that_are_links_or_special_files_are_refused(rig, level, kind):
    _level(level)
    rig.python_job("links", LINK_OUT.format(kind=kind, target=str(rig.secret)))
    _, rec = rig.run("links", level)
    word = {"file": "symbolic link", "dir": "symbolic link", "fifo": "FIFO", "socket": "socket",
            "hardlink": "hard links"}[kind]
    _failed(rec, rf"outputs refused: .*{word}")
    assert rec.output_sha is None and not _secret_stored(rig)
    assert rig.untouched()


@pytest.mark.parametrize("level", LEVELS)
def test_an_output_folder_swapped_for_a_link_is_refused(rig, level):
    _level(level)
    rig.python_job("swap", LINK_OUT.format(kind="replace_out", target=str(rig.secret)))
    _, rec = rig.run("swap", level)
    if level == "strict":   # /job/out is a mount point: it cannot be renamed or replaced
        assert _returned(rec) == {"replaced": False, "error": "Device or resource busy"} or \
            _returned(rec)["replaced"] is False
    else:
        _failed(rec, r"outputs refused: out: a symbolic link")
    assert not _secret_stored(rig)
    assert rig.untouched()


# ---- 2. app files (outcome, log) turned into links ------------------------------------------
PLANT_APP_FILES = """
import os
def run(ctx):
    attempt = ctx.out_dir.parent          # strict: /job (read-only); basic: the attempt folder
    done = {{}}
    for name, how in (("outcome.json", ("link", {sentinel!r})), ("worker.log", ("link", "/dev/zero")),
                      ("spec.json", ("link", {sentinel!r}))):
        try:
            p = attempt / name
            if os.path.lexists(p):
                os.unlink(p)
            os.symlink(how[1], p)
            done[name] = "planted"
        except OSError as e:
            done[name] = e.strerror
    print("planted", done, flush=True)
    return done
"""


@pytest.mark.parametrize("level", LEVELS)
def test_outcome_and_log_links_are_never_followed(rig, level):
    """A link planted at outcome.json is replaced, not written through (the sentinel stands
    for a shell start-up file); a log that became a link to /dev/zero is refused at once."""
    _level(level)
    rig.python_job("plant", PLANT_APP_FILES.format(sentinel=str(rig.sentinel)))
    _, rec = rig.run("plant", level)
    planted = _returned(rec)
    d = rig.attempt_dir("plant")
    if level == "strict":
        assert set(planted.values()) == {"Read-only file system"}, planted
    else:
        assert planted["outcome.json"] == "planted" and planted["worker.log"] == "planted"
    assert rig.untouched()                                       # the sentinel was not written through
    assert not os.path.islink(d / "outcome.json")
    assert json.loads((d / "outcome.json").read_text())["status"] == "succeeded"
    text = _bounded(lambda: log_tail(d / "worker.log"))
    assert ("planted" in text) if level == "strict" else ("log not shown" in text and "symbolic link" in text)


def _bounded(fn, timeout_s: float = 10.0):
    """Run `fn` in a thread; fail (rather than hang the suite) if it blocks."""
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("v", fn()), daemon=True)
    t.start()
    t.join(timeout_s)
    assert "v" in box, "blocked reading a file the job planted"
    return box["v"]


@pytest.mark.parametrize("what", ["fifo", "dev_zero"])
def test_log_reader_refuses_fifos_and_devices_without_blocking(tmp_path, what):
    log = tmp_path / "worker.log"
    if what == "fifo":
        os.mkfifo(log)
    else:
        log.symlink_to("/dev/zero")
    text = _bounded(lambda: log_tail(log))
    assert text.startswith("(log not shown:") and ("FIFO" in text or "symbolic link" in text)


# ---- 3.-8. kernel interfaces the seccomp filter closes ---------------------------------------
KERNEL = """
import ctypes, errno, os, pty, subprocess, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {nr!r}
L = ctypes.c_long

def call(name, *args):
    ctypes.set_errno(0)
    r = libc.syscall(L(NR[name]), *args)
    return "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

def keyring():
    out = {{"session_id": call("keyctl", L(0), L(-3), L(0)),                      # KEYCTL_GET_KEYRING_ID @s
            "search": call("keyctl", L(10), L(-3), b"user", b"kminer-hostile-secret", L(0)),
            "request_key": call("request_key", b"user", b"kminer-hostile-secret", None, L(0)),
            "add_key": call("add_key", b"user", b"planted", b"x", L(1), L(-3))}}
    try:
        text = open("/proc/keys").read()
        out["proc_keys"] = "secret listed" if "kminer-hostile-secret" in text else "not listed"
        for line in text.splitlines():
            if "kminer-hostile-secret" in line:                                   # try to read it by id
                buf = ctypes.create_string_buffer(256)
                out["read_by_id"] = call("keyctl", L(11), L(int(line.split()[0], 16)), buf, L(256))
                out["payload"] = buf.value.decode(errors="replace")
    except OSError as e:
        out["proc_keys"] = e.strerror
    return out

def userns():
    r = subprocess.run(["unshare", "-Ur", "id", "-u"], capture_output=True, text=True)
    return {{"unshare_call": call("unshare", L(0x10000000)),
            "clone_newuser": call("clone", L(0x10000000 | 17), None, None, None, L(0)),
            "clone3": call("clone3", None, L(0)),
            "unshare_cmd": "root" if r.stdout.strip() == "0" else (r.stderr.strip().split(": ")[-1] or "failed")}}

def mount():
    return {{"mount": call("mount", b"none", b"/tmp", b"tmpfs", L(0), None),
            "umount2": call("umount2", b"/tmp", L(0)),
            "fsopen": call("fsopen", b"tmpfs", L(0)),
            "pivot_root": call("pivot_root", b"/tmp", b"/tmp"),
            "chroot": call("chroot", b"/tmp")}}

def ptrace():
    pid = os.fork()
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    try:
        return {{"attach": call("ptrace", L(16), L(pid), None, None), "traceme_like_peek": call("ptrace", L(1), L(pid), None, None),
                "vm_read": call("process_vm_readv", L(pid), None, L(0), None, L(0), L(0))}}
    finally:
        os.kill(pid, 9)                    # our own child only
        os.waitpid(pid, 0)

def tty():
    # A child in its own session makes a new pty its controlling terminal, as a shell would:
    # only then does the kernel itself allow TIOCSTI (here) and answer TIOCLINUX (ENOTTY on a pty).
    import json
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        res = {{}}
        try:
            os.setsid()
            master, slave = pty.openpty()
            fd = os.open(os.ttyname(slave), os.O_RDWR)
            for name, req, arg in (("TIOCSTI", 0x5412, b"x"), ("TIOCLINUX", 0x541C, b"\x07")):
                c = ctypes.c_char(arg)
                ctypes.set_errno(0)
                rr = libc.ioctl(fd, req, ctypes.byref(c))
                res[name] = "ok" if rr == 0 else errno.errorcode.get(ctypes.get_errno())
        except OSError as e:
            res["error"] = str(e)
        os.write(w, json.dumps(res).encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    return json.loads(os.read(r, 4096))

def perf():
    attr = (ctypes.c_char * 128)()
    ctypes.memmove(attr, (ctypes.c_uint32 * 2)(0, 128), 8)                  # PERF_TYPE_HARDWARE, size
    return {{"perf_event_open": call("perf_event_open", attr, L(0), L(-1), L(-1), L(0))}}

def run(ctx):
    return {{"keyring": keyring, "userns": userns, "mount": mount, "ptrace": ptrace, "tty": tty, "perf": perf}}[{what!r}]()
"""
_NR = ("keyctl", "request_key", "add_key", "unshare", "clone", "clone3", "mount", "umount2", "fsopen", "pivot_root",
       "chroot", "ptrace", "process_vm_readv", "perf_event_open")


@pytest.fixture
def secret_key():
    """The test process gets a new session keyring (its own, not root's shared one) holding a
    secret key, as the app's keyring would; jobs started from here inherit it unless the
    runner gives them a fresh one."""
    nr = _syscalls("keyctl", "add_key")
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    L = ctypes.c_long
    if libc.syscall(L(nr["keyctl"]), L(1), None) < 0:           # KEYCTL_JOIN_SESSION_KEYRING (anonymous)
        pytest.skip(f"no session keyring here (errno {ctypes.get_errno()})")
    key = libc.syscall(L(nr["add_key"]), b"user", b"kminer-hostile-secret", b"wallet-password", L(15), L(-3))
    assert key > 0, ctypes.get_errno()
    yield key
    libc.syscall(L(nr["keyctl"]), L(21), L(key))                  # KEYCTL_INVALIDATE


@pytest.mark.parametrize("level", LEVELS)
def test_the_apps_session_keyring_is_out_of_reach(rig, level, secret_key):
    _level(level)
    rig.python_job("keys", KERNEL.format(nr=_syscalls(*_NR), what="keyring"))
    _, rec = rig.run("keys", level)
    got = _returned(rec)
    assert "wallet-password" not in json.dumps(got)
    if level == "strict":   # the filter: no keyring call at all; /proc/keys hidden
        assert {got[k] for k in ("session_id", "search", "request_key", "add_key")} == {"EPERM"}, got
        assert got["proc_keys"] == "Permission denied", got
    else:                   # a fresh, empty session keyring: the app's key is not found
        assert got["search"] == "ENOKEY" and got["request_key"] == "ENOKEY", got
        assert got.get("read_by_id", "EACCES") != "ok", got


@needs_strict
@pytest.mark.parametrize("what, expect", [
    ("userns", {"unshare_call": "EPERM", "clone_newuser": "EPERM", "clone3": "ENOSYS"}),
    ("mount", {"mount": "EPERM", "umount2": "EPERM", "fsopen": "ENOSYS", "pivot_root": "EPERM", "chroot": "EPERM"}),
    ("ptrace", {"attach": "EPERM", "traceme_like_peek": "EPERM", "vm_read": "EPERM"}),
    ("tty", {"TIOCSTI": "EPERM", "TIOCLINUX": "EPERM"}),
    ("perf", {"perf_event_open": "EPERM"}),
])
def test_the_seccomp_filter_blocks(rig, what, expect):
    rig.python_job(what, KERNEL.format(nr=_syscalls(*_NR), what=what))
    _, rec = rig.run(what, "strict")
    got = _returned(rec)
    if what == "userns":
        assert got.pop("unshare_cmd") != "root", got     # `unshare -Ur` gives no fake root inside
    assert got == expect
    assert rig.untouched()


# ---- 9. terminal escapes in the job's text ----------------------------------------------------
ESCAPES = """
import json, os
EVIL = "\\x1b]52;c;cHduZWQ=\\x07\\x1b[2J\\x1b[H\\u202e\\x9b31m"
def run(ctx):
    ctx.progress(0.5, "half " + EVIL)
    fd = int(os.environ["KMINER_REPORT_FD"])
    os.write(fd, (json.dumps({"type": "log", "level": "info", "message": "log " + EVIL}) + "\\n").encode())
    print("stdout " + EVIL, flush=True)
    raise RuntimeError("reason " + EVIL)
"""


@pytest.mark.parametrize("level", LEVELS)
def test_terminal_escapes_never_leave_the_runner(rig, level):
    _level(level)
    events = []
    rig.python_job("esc", ESCAPES)
    out, rec = rig.run("esc", level, on_event=events.append)
    texts = [e.get("message") or "" for e in events] + [rec.reason or "", out.reason or ""]
    log = log_tail(rig.attempt_dir("esc") / "worker.log")
    for t in texts + [log]:
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", t), repr(t)
    assert any("half" in t and "\\x1b]52" in t for t in texts)        # shown, escaped, not dropped
    assert any(e["type"] == "log" and "\\x1b[2J" in e["message"] for e in events)
    assert "stdout \\x1b]52" in log and rec.reason.startswith("RuntimeError: reason \\x1b]52")


# ---- 10. many tiny files ----------------------------------------------------------------------
TINY = """
import os, time
def run(ctx):
    where = ctx.out_dir if {where!r} == "out" else os.getcwd()
    for i in range({n}):
        open(os.path.join(where, f"t{{i}}"), "w").close()
        if {slow} and i % 100 == 0:
            time.sleep(0.05)
    if {slow}:
        time.sleep(3)
    return {{"made": {n}}}
"""
DEEP = """
import os
def run(ctx):
    os.chdir(ctx.out_dir)
    for _ in range(300):
        os.mkdir("d")
        os.chdir("d")
    return {"deep": 300}
"""
BURST_BYTES = """
def run(ctx):
    for i in range(16):                        # 16 MB in 1 MB files, at once, against an 8 MB limit
        (ctx.out_dir / f"f{i}.bin").write_bytes(b"\\1" * (1 << 20))
    return {"ok": True}
"""


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("case", ["burst_out", "slow_work", "deep", "burst_bytes"])
def test_many_tiny_files_are_stopped_and_never_stored(rig, level, case):
    _level(level)
    code = {"burst_out": TINY.format(where="out", n=3000, slow=False),
            "slow_work": TINY.format(where="work", n=3000, slow=True),
            "deep": DEEP, "burst_bytes": BURST_BYTES}[case]
    before = set(rig.stored_blobs())
    rig.python_job(case, code, max_output_files=500, max_disk_mb=8)
    _, rec = rig.run(case, level)
    _failed(rec, r"output limit reached \((500 files and folders|more than 500|.*folders nested|the archive|8 MB)")
    new = set(rig.stored_blobs()) - before - {rig.store.path(s) for s in _inputs(rig, case)}
    assert not new, new                        # no archive, not even a partial one
    assert rig.untouched()


def _inputs(rig, job_id: str) -> list[str]:
    return [r.sha256 for r in rig.queue.get(job_id).spec.inputs.values()]


# ---- 11. input URLs aimed at loopback / private addresses -------------------------------------
class _Server:
    """A tiny HTTP server on 127.0.0.x that counts requests; `redirect_to` makes it answer 302."""

    def __init__(self, host: str, body: bytes, redirect_to: str | None = None):
        hits = self.hits = []

        class H(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                hits.append(self.path)
                if redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer((host, 0), H)
        self.url = f"http://{host}:{self.srv.server_address[1]}/data.bin"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def servers():
    made: list[_Server] = []

    def make(host="127.0.0.1", body=b"input bytes", redirect_to=None):
        s = _Server(host, body, redirect_to)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def _url_job(rig, job_id: str, uri: str, data: bytes = b"input bytes", spec_dir=None) -> None:
    import hashlib

    code = "def run(ctx):\n    return {'got': open(ctx.inputs['data'], 'rb').read().decode()}\n"
    rig.python_job(job_id, code, inputs={"data": {"sha256": hashlib.sha256(data).hexdigest(), "uri": uri}},
                   spec_dir=spec_dir)


def test_loopback_input_url_is_refused_without_a_request(rig, servers):
    s = servers()
    _url_job(rig, "lo", s.url)
    _, rec = rig.run("lo", "basic")
    _failed(rec, r"input 'data': 127\.0\.0\.1: address 127\.0\.0\.1 is loopback")
    assert s.hits == []


def test_input_url_from_an_allowed_host_is_fetched(rig, servers):
    s = servers()
    _url_job(rig, "ok", s.url)
    _, rec = rig.run("ok", "basic", url_policy=UrlPolicy(allow_hosts=frozenset({"127.0.0.1"})))
    assert _returned(rec) == {"got": "input bytes"} and s.hits == ["/data.bin"]


def test_redirect_to_a_host_not_allowed_is_refused(rig, servers):
    inner = servers("127.0.0.2")
    outer = servers("127.0.0.1", redirect_to=inner.url)
    _url_job(rig, "redir", outer.url)
    _, rec = rig.run("redir", "basic", url_policy=UrlPolicy(allow_hosts=frozenset({"127.0.0.1"})))
    _failed(rec, r"127\.0\.0\.2: address 127\.0\.0\.2 is loopback")
    assert outer.hits == ["/data.bin"] and inner.hits == []


@pytest.mark.parametrize("uri, why", [
    ("http://[::1]:9/x", r"address ::1 is loopback"),
    ("http://localhost:9/x", r"is loopback"),
    ("http://0.0.0.0:9/x", r"is unspecified"),
    ("http://[::ffff:127.0.0.1]:9/x", r"is loopback \(inside ::ffff:7f00:1\)"),
    ("ftp://example.invalid/x", r"scheme 'ftp' (is )?not allowed"),
    ("http://user:pw@example.invalid/x", r"credentials in URLs"),
    ("file:///etc/hostname", r"local files not allowed"),
    ("/etc/hostname", r"local files not allowed"),
])
def test_input_urls_the_policy_refuses(rig, uri, why):
    _url_job(rig, "bad", uri)
    _, rec = rig.run("bad", "basic")
    _failed(rec, why)


def test_a_local_spec_may_name_files_beside_it_but_not_loopback_urls(rig, tmp_path, servers):
    (tmp_path / "data.bin").write_bytes(b"input bytes")
    _url_job(rig, "local", "data.bin", spec_dir=tmp_path)
    _, rec = rig.run("local", "basic")
    assert _returned(rec) == {"got": "input bytes"}
    s = servers(body=b"other bytes")      # not in the store yet: it would have to be fetched
    _url_job(rig, "local-lo", s.url, data=b"other bytes", spec_dir=tmp_path)
    _, rec = rig.run("local-lo", "basic")
    _failed(rec, r"is loopback")
    assert s.hits == []


# ---- market jobs and the basic level ---------------------------------------------------------
def test_market_jobs_never_run_under_basic_unless_allowed(rig):
    rig.sleep_job("m1", 0.1, steps=1)
    _, rec = rig.run("m1", "basic", is_market_job=lambda q: True)
    _failed(rec, r"market jobs run only under the strict sandbox")
    rig.sleep_job("m2", 0.1, steps=1)
    _, rec = rig.run("m2", "basic", is_market_job=lambda q: True, allow_market_jobs_basic=True)
    assert rec.state == "succeeded", rec.reason


def test_fallbacks_in_force_are_reported(rig):
    """As root the cgroups enforce processes and memory; as a normal user without cgroup
    delegation the outcome says what fell back to what (proved by the hostile suite run as
    that user: fork bomb, memory hog, spin)."""
    rig.sleep_job("fb", 0.1, steps=1)
    level = "strict" if strict_problem() is None else "basic"
    out, rec = rig.run("fb", level)
    assert rec.state == "succeeded", rec.reason
    e = out.enforcement
    from jobs.cgroups import JobCgroup

    probe = JobCgroup.create("kminer-probe-fb", max_pids=8, max_ram_bytes=64 << 20)
    have_pids, have_mem = bool(probe.pids_limit), bool(probe.memory_limit)
    probe.remove()
    if have_pids:
        assert e["processes"] == "pids cgroup"
    elif level == "strict" and os.geteuid() != 0:
        assert e["processes"].startswith("RLIMIT_NPROC in the job's user namespace")
    else:
        assert e["processes"] == "process watchdog"
    assert e["memory"] == ("memory cgroup" if have_mem else "RSS watchdog + RLIMIT_AS")
    assert e["wall_clock"] == "runner watchdog"



def test_the_level_line_says_what_market_jobs_get():
    from jobs.level_policy import market_line, refusal

    assert market_line("strict") == "Sandbox: strict"
    assert market_line("basic") == "Sandbox: basic (market jobs refused)"
    assert "NOT isolated" in market_line("basic", allow_market_jobs_basic=True)
    assert "unavailable" in market_line("strict", available=False)
    assert refusal("strict", market_job=True, carries_code=True) is None
    assert refusal("basic", market_job=False, carries_code=False) is None
    assert refusal("basic", market_job=True, carries_code=False, allow_market_jobs_basic=True) is None
    assert "buyer code" in refusal("basic", market_job=True, carries_code=True, kind="python",
                                   allow_market_jobs_basic=True)
