"""Sandbox levels and the command line that starts a worker inside one.

- `strict` (Linux, bubblewrap): new user/pid/net/ipc/uts/cgroup namespaces, all
  capabilities dropped, no further user namespaces (`--disable-userns` where bubblewrap has
  it, and the seccomp filter everywhere: jobs/seccomp_filter.py), `--die-with-parent`,
  `--new-session` and a fresh, empty session keyring; the system (/usr) and the Python
  environment read-only; a read-only root with the job's folder at /job, where only
  /job/out and /job/work are writable, each its own mount (jobs/attempt_files.py); /tmp
  and /dev/shm on the attempt's tmp/ folder, so what a job keeps there counts against its
  disk limit; no home; only the assigned GPU's device nodes; an environment cleared to an
  allowlist.
- `basic` (no bubblewrap, or Windows with a Job Object): a separate process with limits
  and a clean environment, but the filesystem and the network are not cut off.

The worker is `python -m jobs.worker` (frozen: the bundle's `worker` entry), so a job
never loads the app, and nothing of the app (config, cache, logs) is written for it.
`level_report()` says which level is available and what each part rests on, for the UI.
Pure functions; safe from any thread.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Level = Literal["strict", "basic"]
JOB_MOUNT = "/job"
BWRAP_CANDIDATES = ("/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap")
TMP_SIZE_BYTES = 256 << 20
# Environment variables a job may see; everything else is cleared (wallet paths, tokens...).
ENV_ALLOW = ("LANG", "LC_ALL", "TZ", "PYOPENGL_PLATFORM", "EGL_PLATFORM", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "NVIDIA_DRIVER_CAPABILITIES", "__EGL_VENDOR_LIBRARY_FILENAMES", "KMINER_WORKER_DEBUG")
# Bits of /etc programs need to load libraries and fonts; never the whole of /etc (shadow, ssh keys).
ETC_ALLOW = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "fonts", "passwd",
             "group", "nsswitch.conf", "glvnd", "vulkan", "OpenCL", "nvidia", "mime.types", "ssl/openssl.cnf")


class SandboxUnavailable(RuntimeError):
    """The requested level cannot run here (e.g. strict without bubblewrap)."""


def find_bwrap() -> str | None:
    if sys.platform != "linux":
        return None
    for c in BWRAP_CANDIDATES:
        if os.access(c, os.X_OK):
            return c
    return shutil.which("bwrap")


@dataclass(frozen=True)
class LevelReport:
    """What a level gives on this machine; shown in the UI and by `kminer job run --json`."""

    level: Level
    available: bool
    enforced: tuple[str, ...] = ()
    not_enforced: tuple[str, ...] = ()
    detail: str = ""

    def as_dict(self) -> dict:
        return {"level": self.level, "available": self.available, "enforced": list(self.enforced),
                "not_enforced": list(self.not_enforced), "detail": self.detail}


def level_report(level: Level, *, cgroup_pids: bool | None = None, cgroup_memory: bool | None = None) -> LevelReport:
    """The protections `level` gives here. Cgroup flags come from the job's cgroup when known."""
    limits = ["wall clock", "cpu time (RLIMIT_CPU)", "open files (RLIMIT_NOFILE)", "output size (RLIMIT_FSIZE + watchdog)",
              "clean environment", "whole job killed at end/cancel/timeout"]
    missing: list[str] = []
    if cgroup_pids is not None:
        (limits if cgroup_pids else missing).append("process count (pids cgroup)" if cgroup_pids
                                                    else "process count: only a watchdog (no pids cgroup)")
    if cgroup_memory is not None:
        (limits if cgroup_memory else missing).append("memory (memory cgroup)" if cgroup_memory
                                                      else "memory: only an RSS watchdog (no memory cgroup)")
    if sys.platform == "win32":
        limits = ["Job Object: kill on close, memory and process limits", "wall clock", "clean environment"]
        missing = ["filesystem isolation", "network isolation"]
        return LevelReport("basic", level == "basic", tuple(limits), tuple(missing),
                           "Windows: basic only (Job Object)" if level == "basic" else "strict needs Linux + bubblewrap")
    if level == "strict":
        why = strict_problem()
        if why is not None:
            return LevelReport("strict", False, (), (why,), f"strict unavailable: {why}")
        bw = find_bwrap()
        ns = ["no network (net namespace)", "own pid/ipc/uts/user namespaces, no capabilities",
              "seccomp filter: no keyring, nested namespaces, mount, ptrace, perf events or terminal injection",
              "fresh session keyring", "read-only system and Python",
              "only /job/out and /job/work writable (separate mounts; links in outputs refused)",
              "private /tmp counted against the disk limit", "home and app data hidden",
              "only the assigned GPU's device nodes"]
        if cgroup_pids is False:
            limits.append("process count: RLIMIT_NPROC in the job's own user namespace (not for root)")
        return LevelReport("strict", True, tuple(ns + limits), tuple(missing), f"bubblewrap at {bw}")
    missing = ["filesystem isolation (the job can read and write as your user)", "network isolation",
               "process isolation (the job can signal your processes)"] + missing
    return LevelReport("basic", True, tuple(limits), tuple(missing), "separate process with limits only")


def resolve_level(setting: str) -> Level:
    """`auto` -> strict where it can run (bubblewrap and libseccomp), else basic; an
    explicit level is kept."""
    if setting == "auto":
        return "strict" if strict_problem() is None else "basic"
    if setting not in ("strict", "basic"):
        raise ValueError(f"unknown sandbox level {setting!r}")
    return setting  # type: ignore[return-value]


def worker_argv() -> list[str]:
    """How to start the worker with the app's own executable, frozen (PyInstaller: its entry
    sends `worker` straight to jobs.worker) or not (`-I`: no current folder, user site or
    PYTHON* variables on the path; `-B -u`: no bytecode written, output unbuffered)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "worker"]
    return [sys.executable, "-I", "-B", "-u", "-m", "jobs.worker"]


@functools.lru_cache(maxsize=4)
@functools.lru_cache(maxsize=8)
def _bwrap_help(bw: str) -> str:
    """`bwrap --help` of this bubblewrap, asked once per process."""
    try:
        return subprocess.run([bw, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def bwrap_has(bw: str, option: str) -> bool:
    """Whether this bubblewrap knows `option` (e.g. --disable-userns, new in 0.8.0; --clearenv,
    new in 0.5.0: Debian 11 / Ubuntu 20.04 ship 0.4)."""
    out = _bwrap_help(bw)
    return f"{option} " in out or f"{option}\n" in out


def strict_problem() -> str | None:
    """None when strict can run here, else why not (one line)."""
    if find_bwrap() is None:
        return "bubblewrap not installed (Debian/Ubuntu: apt install bubblewrap)"
    from jobs.seccomp_filter import available

    return available()


def gpu_pin(device_index: int | None, gpu_uuid: str | None = None) -> str | None:
    """What CUDA_VISIBLE_DEVICES names for the job's GPU: its UUID (common.device_id's key,
    "GPU-..." or "MIG-..."), which CUDA matches whatever its own device order; the NVML index
    only when NVML gave no UUID (then CUDA_DEVICE_ORDER=PCI_BUS_ID makes the orders agree)."""
    if device_index is None:
        return None
    if gpu_uuid and gpu_uuid.upper().startswith(("GPU-", "MIG-")):
        return gpu_uuid
    return str(device_index)


def job_env(*, device_index: int | None, home: str, report_fd: int, extra: dict[str, str] | None = None,
            gpu_uuid: str | None = None) -> dict[str, str]:
    """The whole environment of a job: the allowlist, a fixed PATH and the GPU pin."""
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    pin = gpu_pin(device_index, gpu_uuid)
    env.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": "/tmp", "PYTHONNOUSERSITE": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "KMINER_REPORT_FD": str(report_fd),
                "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
                "CUDA_VISIBLE_DEVICES": "" if pin is None else pin,
                "NVIDIA_VISIBLE_DEVICES": "void" if pin is None else pin})
    env.setdefault("LANG", "C.UTF-8")
    if extra:
        env.update(extra)
    return env


def _python_roots() -> list[Path]:
    """Folders the worker's Python needs read-only: interpreter, stdlib, venv, our code."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.base_exec_prefix)}
    if getattr(sys, "frozen", False):
        roots.add(Path(sys.executable).resolve().parent)
        meipass = getattr(sys, "_MEIPASS", None)
        if meipass:
            roots.add(Path(meipass))
    else:
        roots.add(Path(__file__).resolve().parent.parent)          # the source tree holding jobs/ and app/
        roots.add(Path(sys.executable).resolve().parent.parent)
    out: list[Path] = []
    for r in sorted(roots, key=lambda p: len(str(p))):
        r = r.resolve()
        if str(r).startswith("/usr/") or r == Path("/usr") or any(r == o or o in r.parents for o in out):
            continue
        out.append(r)
    return out


def gpu_device_nodes(index: int, pci_bus_id: str | None = None) -> list[str]:
    """/dev nodes one NVIDIA GPU needs: its /dev/nvidiaN, the control and UVM nodes, and the
    /dev/dri nodes of the same PCI device when `pci_bus_id` is known."""
    nodes = [f"/dev/nvidia{index}", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset",
             "/dev/nvidia-caps"]
    if pci_bus_id:
        nodes += drm_nodes(pci_bus_id)
    return [n for n in nodes if os.path.exists(n)]


def drm_nodes(pci_bus_id: str, sys_root: str = "/sys", dev_root: str = "/dev") -> list[str]:
    """The /dev/dri render and card nodes of the PCI device `pci_bus_id` (NVML gives
    00000000:01:00.0, AMD SMI and sysfs 0000:01:00.0: the last 12 characters are compared)."""
    want = pci_bus_id.lower()[-12:]
    drm = Path(sys_root) / "class" / "drm"
    out = []
    if drm.is_dir():
        for entry in sorted(drm.iterdir()):
            try:
                dev = (entry / "device").resolve().name.lower()
            except OSError:
                continue
            if dev.endswith(want) and (entry.name.startswith("renderD") or entry.name.startswith("card")):
                out.append(f"{dev_root}/dri/{entry.name}")
    return out


def amd_device_nodes(pci_bus_id: str, sys_root: str = "/sys", dev_root: str = "/dev") -> list[str]:
    """/dev nodes one AMD card needs: /dev/kfd (ROCm compute) and the /dev/dri render and card
    nodes of its PCI device (EGL on Mesa renders through the render node; no ROCm needed)."""
    nodes = [f"{dev_root}/kfd", *drm_nodes(pci_bus_id, sys_root, dev_root)]
    return [n for n in nodes if os.path.exists(n)]


@dataclass
class Launch:
    """How to start one worker: argv, env, the job folder as the worker sees it, and fds
    the child must inherit (the caller closes its copies once the child has started)."""

    argv: list[str]
    env: dict[str, str]
    job_path: str
    level: Level
    hidden: list[str] = field(default_factory=list)
    pass_fds: list[int] = field(default_factory=list)

    def close_fds(self) -> None:
        for fd in self.pass_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.pass_fds = []


# /proc files that list every key the job's user may view (descriptions of the app's keys).
PROC_HIDE = ("/proc/keys", "/proc/key-users")


def build_launch(level: Level, job_dir: Path, *, report_fd: int, device_index: int | None = None,
                 pci_bus_id: str | None = None, hide: list[Path] = (), extra_env: dict[str, str] | None = None,
                 max_tasks: int | None = None, gpu_uuid: str | None = None, amd: bool = False) -> Launch:
    """The command that runs the worker for the attempt folder `job_dir` under `level`.

    `hide` lists folders to cover with an empty, read-only tmpfs if they lie under a
    read-only mount (the app's data and config folders, the user's home), so a job never
    sees the keystore even when the code lives beside it. `max_tasks` (strict): the
    worker's RLIMIT_NPROC, which the kernel counts per user namespace, so inside the job's
    own namespace it bounds the job's processes and threads (not for root: see limits.py).
    """
    from jobs.attempt_files import AttemptLayout

    job_dir = job_dir.resolve()
    lay = AttemptLayout(job_dir)
    if level == "basic":
        env = job_env(device_index=device_index, home=str(lay.work), report_fd=report_fd, extra=extra_env,
                      gpu_uuid=gpu_uuid)
        argv = worker_argv() + ["--job", str(job_dir), "--report-fd", str(report_fd)]
        return Launch(argv, env, str(job_dir), "basic")
    why = strict_problem()
    if why is not None:
        raise SandboxUnavailable(f"strict sandbox unavailable: {why}")
    bw = find_bwrap()
    assert bw is not None
    from jobs.seccomp_filter import filter_fd

    a = [bw, "--unshare-all", "--unshare-user", "--uid", "1000", "--gid", "1000", "--cap-drop", "ALL",
         "--die-with-parent", "--new-session", "--hostname", "kminer-job"]
    # bwrap itself starts with an empty environment (Launch.env is {}) and gets only the
    # --setenv values below; --clearenv (bwrap >= 0.5) says so again where it exists
    if bwrap_has(bw, "--clearenv"):
        a += ["--clearenv"]
    if bwrap_has(bw, "--disable-userns"):
        a += ["--disable-userns"]
    a += ["--ro-bind", "/usr", "/usr"]
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(d):
            a += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            a += ["--ro-bind", d, d]
    for name in ETC_ALLOW:
        p = f"/etc/{name}"
        if os.path.exists(p):
            a += ["--ro-bind", p, p]
    a += ["--proc", "/proc"]
    for p in PROC_HIDE:
        if os.path.exists(p):
            a += ["--ro-bind", "/dev/null", p]
    a += ["--dev", "/dev", "--ro-bind-try", "/sys", "/sys"]
    a += ["--bind", str(lay.tmp), "/tmp", "--bind", str(lay.tmp), "/dev/shm", "--remount-ro", "/dev"]
    roots = _python_roots()
    for r in roots:
        a += ["--ro-bind", str(r), str(r)]
    hidden: list[str] = []
    for h in hide:
        h = Path(h).resolve() if Path(h).exists() else Path(h)
        if any(h == r or r in h.parents for r in roots) and h.exists():
            a += ["--tmpfs", str(h), "--remount-ro", str(h)]
            hidden.append(str(h))
    if lay.spec.exists():
        a += ["--ro-bind", str(lay.spec), f"{JOB_MOUNT}/spec.json"]
    if lay.inputs.is_dir():
        a += ["--ro-bind", str(lay.inputs), f"{JOB_MOUNT}/in"]
    a += ["--bind", str(lay.out), f"{JOB_MOUNT}/out", "--bind", str(lay.work), f"{JOB_MOUNT}/work"]
    if device_index is not None:
        for node in gpu_device_nodes(device_index, pci_bus_id):
            a += ["--dev-bind", node, node]
    elif amd and pci_bus_id:
        for node in amd_device_nodes(pci_bus_id):
            a += ["--dev-bind", node, node]
    a += ["--remount-ro", "/"]
    # CUDA_VISIBLE_DEVICES names the GPU by its UUID (gpu_pin): only that GPU's node exists
    # inside, and CUDA numbers the visible GPUs from 0, so the engine always uses cuda:0.
    env = job_env(device_index=device_index, home="/tmp", report_fd=report_fd, extra=extra_env, gpu_uuid=gpu_uuid)
    for k, v in env.items():
        a += ["--setenv", k, v]
    sfd = filter_fd()
    a += ["--seccomp", str(sfd), "--chdir", f"{JOB_MOUNT}/work", "--"]
    a += worker_argv() + ["--job", JOB_MOUNT, "--report-fd", str(report_fd)]
    if max_tasks is not None:
        a += ["--max-tasks", str(max_tasks)]
    return Launch(a, {}, JOB_MOUNT, "strict", hidden, [sfd])
