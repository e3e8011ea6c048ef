"""Resource limits of one job, and the pre-exec hook that applies them in the child.

What enforces each limit (Linux):
- wall clock: the runner's watchdog (pauses excluded), then the whole job is killed;
- CPU time: RLIMIT_CPU per process (SIGXCPU, then SIGKILL at the hard limit);
- memory: the job's memory cgroup when we can make one (resident memory, so CUDA's
  tens of GB of *virtual* reservations do not count); otherwise an RSS watchdog summing
  the job's processes every 100 ms, plus RLIMIT_AS for CPU-only jobs as a backstop (never
  for GPU jobs: CUDA would fail to initialise under any useful RLIMIT_AS);
- processes: the pids cgroup (`pids.max`, which counts threads too); without one, under
  strict, RLIMIT_NPROC set by the worker inside the job's own user namespace (the kernel
  counts it per user namespace, so there it is the job's own count, not all of the user's
  processes; it is not enforced for root, who has the cgroup instead), and always a
  watchdog that counts the job's processes every 100 ms and kills it. Under basic
  RLIMIT_NPROC would count every process of a desktop user, so only the watchdog is used;
- open files: RLIMIT_NOFILE; output size: RLIMIT_FSIZE per file and a watchdog on the
  output folder's total; core dumps off.

`make_preexec` returns a function that runs in the forked child before exec: it may only
make system calls (no locks, no logging, no allocation-heavy Python).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

MB = 1 << 20
# Headroom over max_ram for RLIMIT_AS on CPU jobs without a memory cgroup: Python, numpy and
# torch map far more virtual memory than they touch (torch CPU import alone maps ~1.5 GB).
AS_HEADROOM_BYTES = 6 << 30


@dataclass(frozen=True)
class Limits:
    """Limits of one job. Units are in the names; `None` means not limited."""

    wall_s: float = 3600.0
    cpu_s: int | None = None
    ram_mb: int = 4096
    output_mb: int = 1024
    output_files: int = 10000
    processes: int = 256
    open_files: int = 1024
    gpu: bool = False
    no_progress_s: float | None = None
    """Running seconds without a rising progress report after which the job is stopped."""

    @property
    def ram_bytes(self) -> int:
        return self.ram_mb * MB

    @property
    def output_bytes(self) -> int:
        return self.output_mb * MB


# A job never gets more than this share of the machine's RAM, whatever its spec asks.
RAM_SHARE_CAP = 0.75


def machine_ram_mb() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().total // MB)
    except Exception:
        return 1 << 20


def limits_for(resources, *, device_is_gpu: bool, max_output_mb: int, max_output_files: int | None = None) -> Limits:
    """Limits from a spec's `Resources`, capped by the miner's `max_output_mb` (and
    `max_output_files`) settings and by `RAM_SHARE_CAP` of this machine's memory (a spec
    asking 100 GB on a 24 GB rig gets 18 GB)."""
    cpu_s = resources.max_cpu_s or int(max(60.0, resources.max_wall_s * 4))
    ram_mb = min(resources.max_ram_mb, int(machine_ram_mb() * RAM_SHARE_CAP))
    return Limits(wall_s=resources.max_wall_s, cpu_s=cpu_s, ram_mb=ram_mb,
                  output_mb=min(resources.max_disk_mb, max_output_mb),
                  output_files=min(resources.max_output_files, max_output_files or resources.max_output_files),
                  processes=resources.max_processes,
                  open_files=resources.max_open_files, gpu=device_is_gpu, no_progress_s=resources.max_silent_s)


def make_preexec(limits: Limits, *, cgroup_procs: list[bytes], set_as: bool, nice: int = 0,
                 fresh_keyring: Callable[[], None] | None = None) -> Callable[[], None]:
    """The child-side hook: join the job's cgroups, set rlimits, lower the CPU priority by
    `nice` (before any thread exists, so every thread and child of the job inherits it), die
    with the parent, and start a new session keyring (`fresh_keyring`, see
    jobs.seccomp_filter) so the job never holds the app's keys."""
    import resource

    pairs: list[tuple[int, int]] = [
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, limits.open_files),
        # +1 MB so a job exactly at its limit is caught by the watchdog with a clear reason.
        (resource.RLIMIT_FSIZE, limits.output_bytes + MB),
    ]
    if limits.cpu_s is not None:
        pairs.append((resource.RLIMIT_CPU, limits.cpu_s))
    if set_as:
        pairs.append((resource.RLIMIT_AS, limits.ram_bytes + AS_HEADROOM_BYTES))
    prctl = _prctl()
    procs = list(cgroup_procs)

    def preexec() -> None:
        pid = str(os.getpid()).encode()
        for p in procs:
            try:
                fd = os.open(p, os.O_WRONLY)
                try:
                    os.write(fd, pid)
                finally:
                    os.close(fd)
            except OSError:
                pass
        for res, value in pairs:
            try:
                soft, hard = resource.getrlimit(res)
                new_hard = value if hard == resource.RLIM_INFINITY else min(hard, value)
                if res == resource.RLIMIT_CPU:  # hard limit a bit later: SIGXCPU first, then SIGKILL
                    new_hard = value + 5 if hard == resource.RLIM_INFINITY else min(hard, value + 5)
                resource.setrlimit(res, (min(value, new_hard), new_hard))
            except (ValueError, OSError):
                pass
        if nice > 0:
            try:
                os.nice(nice)
            except OSError:
                pass
        if prctl is not None:
            prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL: the job dies with its runner thread
        if fresh_keyring is not None:
            fresh_keyring()

    return preexec


def _prctl():
    if not os.uname().sysname == "Linux":
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
