"""Sandbox levels and the command line that starts a worker inside one.

- `strict` (Linux, bubblewrap): new user/pid/net/ipc/uts/cgroup namespaces, all
  capabilities dropped, `--die-with-parent`, `--new-session`; the system (/usr) and the
  Python environment read-only; the job folder at /job the only writable place (its `in/`
  read-only); a private, size-capped /tmp; no home; only the assigned GPU's device nodes;
  an environment cleared to an allowlist.
- `basic` (no bubblewrap, or Windows with a Job Object): a separate process with limits
  and a clean environment, but the filesystem and the network are not cut off.

`level_report()` says which level is available and what each part rests on, for the UI.
Pure functions; safe from any thread.
"""

from __future__ import annotations

import os
import shutil
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
        bw = find_bwrap()
        if bw is None:
            return LevelReport("strict", False, (), ("bubblewrap not installed",), "install bubblewrap for strict")
        ns = ["no network (net namespace)", "own pid/ipc/uts/user namespaces, no capabilities",
              "read-only system and Python", "only the job folder writable", "private /tmp", "home and app data hidden",
              "only the assigned GPU's device nodes"]
        return LevelReport("strict", True, tuple(ns + limits), tuple(missing), f"bubblewrap at {bw}")
    missing = ["filesystem isolation (the job can read and write as your user)", "network isolation",
               "process isolation (the job can signal your processes)"] + missing
    return LevelReport("basic", True, tuple(limits), tuple(missing), "separate process with limits only")


def resolve_level(setting: str) -> Level:
    """`auto` -> strict where bubblewrap exists, else basic; an explicit level is kept."""
    if setting == "auto":
        return "strict" if find_bwrap() else "basic"
    if setting not in ("strict", "basic"):
        raise ValueError(f"unknown sandbox level {setting!r}")
    return setting  # type: ignore[return-value]


def worker_argv() -> list[str]:
    """How to start the app's own executable as a worker, frozen (PyInstaller) or not."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "worker"]
    return [sys.executable, "-m", "app", "worker"]


def job_env(*, device_index: int | None, home: str, report_fd: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a job: the allowlist, a fixed PATH and the GPU pin."""
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    env.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "TMPDIR": "/tmp", "PYTHONNOUSERSITE": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "KMINER_REPORT_FD": str(report_fd),
                "CUDA_VISIBLE_DEVICES": "" if device_index is None else str(device_index),
                "NVIDIA_VISIBLE_DEVICES": "void" if device_index is None else str(device_index)})
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
        want = pci_bus_id.lower()[-12:]   # NVML gives 00000000:01:00.0, sysfs 0000:01:00.0
        drm = Path("/sys/class/drm")
        if drm.is_dir():
            for entry in drm.iterdir():
                try:
                    dev = (entry / "device").resolve().name.lower()
                except OSError:
                    continue
                if dev.endswith(want) and (entry.name.startswith("renderD") or entry.name.startswith("card")):
                    nodes.append(f"/dev/dri/{entry.name}")
    return [n for n in nodes if os.path.exists(n)]


@dataclass
class Launch:
    """How to start one worker: argv, env and the job folder path as the worker sees it."""

    argv: list[str]
    env: dict[str, str]
    job_path: str
    level: Level
    hidden: list[str] = field(default_factory=list)


def build_launch(level: Level, job_dir: Path, *, report_fd: int, device_index: int | None = None,
                 pci_bus_id: str | None = None, hide: list[Path] = (), extra_env: dict[str, str] | None = None) -> Launch:
    """The command that runs `kminer worker` for `job_dir` under `level`.

    `hide` lists folders to cover with an empty tmpfs if they lie under a read-only mount
    (the app's data and config folders, the user's home), so a job never sees the keystore
    even when the code lives beside it.
    """
    job_dir = job_dir.resolve()
    if level == "basic":
        env = job_env(device_index=device_index, home=str(job_dir / "work"), report_fd=report_fd, extra=extra_env)
        argv = worker_argv() + ["--job", str(job_dir), "--report-fd", str(report_fd)]
        return Launch(argv, env, str(job_dir), "basic")
    bw = find_bwrap()
    if bw is None:
        raise SandboxUnavailable("strict sandbox needs bubblewrap (Debian/Ubuntu: apt install bubblewrap)")
    a = [bw, "--unshare-all", "--unshare-user", "--uid", "1000", "--gid", "1000", "--cap-drop", "ALL",
         "--die-with-parent", "--new-session", "--hostname", "kminer-job", "--clearenv"]
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
    a += ["--proc", "/proc", "--dev", "/dev", "--ro-bind-try", "/sys", "/sys"]
    a += ["--size", str(TMP_SIZE_BYTES), "--tmpfs", "/tmp"]
    roots = _python_roots()
    for r in roots:
        a += ["--ro-bind", str(r), str(r)]
    hidden: list[str] = []
    for h in hide:
        h = Path(h).resolve() if Path(h).exists() else Path(h)
        if any(h == r or r in h.parents for r in roots) and h.exists():
            a += ["--tmpfs", str(h)]
            hidden.append(str(h))
    a += ["--bind", str(job_dir), JOB_MOUNT]
    if (job_dir / "in").is_dir():
        a += ["--ro-bind", str(job_dir / "in"), f"{JOB_MOUNT}/in"]
    if (job_dir / "spec.json").exists():
        a += ["--ro-bind", str(job_dir / "spec.json"), f"{JOB_MOUNT}/spec.json"]
    if device_index is not None:
        for node in gpu_device_nodes(device_index, pci_bus_id):
            a += ["--dev-bind", node, node]
    env = job_env(device_index=0 if device_index is not None else None, home="/tmp", report_fd=report_fd, extra=extra_env)
    # CUDA_VISIBLE_DEVICES stays the real index: only that GPU's node exists inside, and the
    # driver numbers visible GPUs from 0, so the engine always uses cuda:0.
    if device_index is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(device_index)
        env["NVIDIA_VISIBLE_DEVICES"] = str(device_index)
    for k, v in env.items():
        a += ["--setenv", k, v]
    a += ["--chdir", f"{JOB_MOUNT}/work", "--"]
    a += worker_argv() + ["--job", JOB_MOUNT, "--report-fd", str(report_fd)]
    return Launch(a, {}, JOB_MOUNT, "strict", hidden)
