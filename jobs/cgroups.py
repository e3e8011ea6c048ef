"""Per-job control groups (Linux): the part of the limits the kernel enforces for a whole
job, whatever user it runs as.

- `pids.max` stops a fork bomb (RLIMIT_NPROC is per uid and not enforced for root, nor for
  a root-mapped user namespace, which is how we run here).
- `memory.max` (v2) / `memory.limit_in_bytes` (v1) caps resident memory + page cache of the
  job, so it works with CUDA, whose huge *virtual* reservations make RLIMIT_AS unusable.

Works with the unified hierarchy (v2) and with v1 `pids` and `memory` hierarchies; groups
are made under the app's own cgroup. When a controller is not writable (an unprivileged
desktop without delegation) the caller falls back to watchdogs and says so in the level
report. Methods are called from the job's own runner thread only.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)
ROOT = Path("/sys/fs/cgroup")


def _own_path(controller: str | None) -> str | None:
    """Our cgroup path in `controller`'s hierarchy (None for v2's unified entry)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        hid, ctrls, path = line.split(":", 2)
        if controller is None and hid == "0" and ctrls == "":
            return path
        if controller is not None and controller in ctrls.split(","):
            return path
    return None


def _is_v2() -> bool:
    return (ROOT / "cgroup.controllers").exists()


def _bases() -> list[Path]:
    """The folders our job groups are made in (one per v1 controller, or the v2 folder)."""
    if os.name != "posix" or not ROOT.exists():
        return []
    if _is_v2():
        own = _own_path(None)
        return [ROOT / own.lstrip("/")] if own is not None else []
    out = []
    for ctrl in ("pids", "memory"):
        own = _own_path(ctrl)
        if own is not None and (ROOT / ctrl).is_dir():
            out.append(ROOT / ctrl / own.lstrip("/"))
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def remove_stale() -> list[str]:
    """Remove job groups left by an app that was killed (their owner pid is gone): kill what
    is still inside, then delete them. Returns the names removed."""
    removed = []
    for base in _bases():
        try:
            entries = [e for e in base.iterdir() if e.is_dir() and e.name.startswith("kminer-")]
        except OSError:
            continue
        for d in entries:
            parts = d.name.rsplit("-", 2)
            if len(parts) != 3 or not parts[1].isdigit():
                continue
            owner = int(parts[1])
            if owner == os.getpid() or _pid_alive(owner):
                continue
            cg = JobCgroup(d.name[len("kminer-"):], {"stale": d})
            cg.remove()
            if not d.exists():
                removed.append(d.name)
    return removed


@dataclass
class JobCgroup:
    """The cgroup folders of one job (one per v1 controller, or one v2 folder)."""

    name: str
    dirs: dict[str, Path] = field(default_factory=dict)   # controller ("pids", "memory", or "v2") -> folder
    pids_limit: bool = False
    memory_limit: bool = False

    @classmethod
    def create(cls, name: str, *, max_pids: int, max_ram_bytes: int) -> "JobCgroup":
        """Make the job's groups and set the limits it can; never raises (limits just missing)."""
        cg = cls(name)
        if os.name != "posix" or not ROOT.exists():
            return cg
        try:
            if _is_v2():
                cg._create_v2(max_pids, max_ram_bytes)
            else:
                cg._create_v1(max_pids, max_ram_bytes)
        except OSError as e:
            log.info("cgroup for job %s unavailable: %s", name, e)
        return cg

    def _mk(self, parent: Path) -> Path:
        d = parent / f"kminer-{self.name}"
        d.mkdir(exist_ok=True)
        return d

    def _create_v2(self, max_pids: int, max_ram: int) -> None:
        own = _own_path(None)
        if own is None:
            return
        base = ROOT / own.lstrip("/")
        avail = (base / "cgroup.subtree_control").read_text().split()
        if "pids" not in avail or "memory" not in avail:
            return
        d = self._mk(base)
        self.dirs["v2"] = d
        (d / "pids.max").write_text(str(max_pids))
        self.pids_limit = True
        (d / "memory.max").write_text(str(max_ram))
        try:
            (d / "memory.swap.max").write_text("0")
        except OSError:
            pass
        self.memory_limit = True

    def _create_v1(self, max_pids: int, max_ram: int) -> None:
        for ctrl in ("pids", "memory"):
            own = _own_path(ctrl)
            base = ROOT / ctrl
            if own is None or not base.is_dir():
                continue
            try:
                d = self._mk(base / own.lstrip("/"))
                if ctrl == "pids":
                    (d / "pids.max").write_text(str(max_pids))
                    self.pids_limit = True
                else:
                    (d / "memory.limit_in_bytes").write_text(str(max_ram))
                    try:
                        (d / "memory.memsw.limit_in_bytes").write_text(str(max_ram))
                    except OSError:
                        pass
                    self.memory_limit = True
                self.dirs[ctrl] = d
            except OSError as e:
                log.info("cgroup v1 %s for job %s unavailable: %s", ctrl, self.name, e)

    def procs_files(self) -> list[bytes]:
        """Paths (bytes, for the pre-exec hook) of each `cgroup.procs` the child joins."""
        return [os.fsencode(d / "cgroup.procs") for d in self.dirs.values()]

    def pids(self) -> list[int]:
        for d in self.dirs.values():
            try:
                return [int(x) for x in (d / "cgroup.procs").read_text().split()]
            except OSError:
                continue
        return []

    def oom_killed(self) -> bool:
        """Whether the kernel hit the memory limit (an OOM kill or a failed charge)."""
        d = self.dirs.get("v2")
        try:
            if d is not None:
                for line in (d / "memory.events").read_text().splitlines():
                    k, v = line.split()
                    if k in ("oom_kill", "max") and int(v) > 0:
                        return True
            elif "memory" in self.dirs:
                d1 = self.dirs["memory"]
                for line in (d1 / "memory.oom_control").read_text().splitlines():
                    k, _, v = line.partition(" ")
                    if k == "oom_kill" and int(v) > 0:
                        return True
                return int((d1 / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError):
            pass
        return False

    def pids_exhausted(self) -> bool:
        """Whether a fork was refused by `pids.max`."""
        d = self.dirs.get("v2") or self.dirs.get("pids")
        if d is None:
            return False
        try:
            for line in (d / "pids.events").read_text().splitlines():
                k, v = line.split()
                if k == "max" and int(v) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def signal_all(self, sig: int) -> None:
        """Send `sig` to every process in the group (never to pid <= 1)."""
        for pid in self.pids():
            if pid > 1 and pid != os.getpid():
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass

    def kill_all(self, timeout_s: float = 2.0) -> None:
        """SIGKILL everything in the group until it is empty (a fork bomb may still be forking)."""
        d = self.dirs.get("v2")
        if d is not None and (d / "cgroup.kill").exists():
            try:
                (d / "cgroup.kill").write_text("1")
            except OSError:
                pass
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            pids = self.pids()
            if not pids:
                return
            self.signal_all(signal.SIGKILL)
            time.sleep(0.01)

    def remove(self) -> None:
        """Kill what is left and remove the folders (a non-empty group cannot be removed)."""
        if not self.dirs:
            return
        self.kill_all()
        for d in self.dirs.values():
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        self.dirs.clear()
