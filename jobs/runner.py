"""Runs one job attempt: starts the sandboxed worker, reads its JSON-line reports, enforces
the limits, and returns an `Outcome`.

Threading: `JobRun.run()` blocks and must run in the thread that owns the job for its whole
life (the child dies with that thread through PR_SET_PDEATHSIG / `--die-with-parent`).
`cancel()`, `pause()` and `resume()` may be called from any other thread.

The report pipe is untrusted: lines are capped at `MAX_LINE_BYTES`, the whole stream at
`MAX_PIPE_BYTES`, and more than `MAX_INVALID_LINES` lines that are not valid messages fail
the job. The runner never parses the worker's stdout/stderr, which go to `DIR/worker.log`
through an fd it opened itself (no link followed). Text from the pipe that a user may see
(progress notes, log lines, the failure reason) has its control characters escaped
(common.textsafe) before it leaves the runner.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from common.safejson import JsonLimits, SafeJsonError, loads_bounded
from common.textsafe import safe_line, safe_text
from jobs.attempt_files import AttemptLayout
from jobs.cgroups import JobCgroup
from jobs.limits import Limits, make_preexec
from jobs.report_pipe import PipeReader
from jobs.safe_fs import tree_usage
from jobs.sandbox import Level, build_launch

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 64 * 1024
MAX_PIPE_BYTES = 32 << 20
MAX_INVALID_LINES = 20
TERM_GRACE_S = 1.0
WATCH_INTERVAL_S = 0.1
DISK_CHECK_INTERVAL_S = 0.25
# Windows has no SIGSTOP/SIGCONT/SIGKILL: these numbers are only compared there, never sent.
SIGSTOP = getattr(signal, "SIGSTOP", 19)
SIGCONT = getattr(signal, "SIGCONT", 18)
SIGKILL = getattr(signal, "SIGKILL", 9)
_MSG_TYPES = {"hello", "progress", "log", "result", "error"}
LINE_LIMITS = JsonLimits(max_bytes=MAX_LINE_BYTES, max_depth=32, max_items=10_000, max_string_bytes=MAX_LINE_BYTES)
"""A report line is decoded within these (the app imports web3: a deep line would overflow the C stack)."""

Event = Callable[[dict[str, Any]], None]


@dataclass
class Outcome:
    """How an attempt ended. `status`: succeeded, failed or cancelled; times in seconds."""

    status: str
    reason: str | None = None
    result: dict[str, Any] | None = None
    exit_code: int | None = None
    level: str = "basic"
    start_to_hello_s: float | None = None
    start_to_first_progress_s: float | None = None
    run_s: float = 0.0
    paused_s: float = 0.0
    cancel_latency_s: float | None = None
    pipe_bytes: int = 0
    invalid_lines: int = 0
    last_fraction: float = 0.0
    enforcement: dict[str, str] = field(default_factory=dict)   # limit -> what enforced it this time

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


@dataclass
class JobRun:
    """One attempt of one job in `job_dir` (spec.json and in/ already there)."""

    job_dir: Path
    job_id: str
    limits: Limits
    level: Level = "basic"
    device_index: int | None = None
    pci_bus_id: str | None = None
    gpu_uuid: str | None = None                      # the GPU's NVML UUID (its DeviceId key): CUDA's pin
    hide: list[Path] = field(default_factory=list)
    on_event: Event | None = None
    on_start: Callable[[int], None] | None = None   # gets the worker (or bwrap) pid once started
    use_cgroups: bool = True                         # False: watchdogs only (tests; hosts without cgroups)
    nice: int = 0                                    # CPU priority below normal, set before the worker starts
    amd: bool = False                                # an AMD card at pci_bus_id (its /dev/dri and /dev/kfd nodes)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._cgroup: JobCgroup | None = None
        self._kill_reason: str | None = None
        self._kill_status = "failed"
        self._cancel_at: float | None = None
        self._paused_since: float | None = None
        self._paused_total = 0.0
        self._started = threading.Event()
        self._winjob = None
        self._progress_at: float | None = None   # running seconds at the last rising progress report

    # ---- control from other threads -------------------------------------------------
    def cancel(self, reason: str = "cancelled by request") -> None:
        """Ask the job to stop (SIGTERM), then kill it after a short grace period."""
        with self._lock:
            if self._kill_reason is None:
                self._kill_reason, self._kill_status = reason, "cancelled"
                self._cancel_at = time.monotonic()
        self._started.wait(5)
        if self._paused_since is not None:
            self._signal(SIGCONT)
        self._signal(signal.SIGTERM)

    def fail(self, reason: str) -> None:
        """Stop the job now and record it as failed with `reason` (e.g. the app's watchdog: its
        GPU fell off the bus). A paused job is woken first so it can be killed."""
        self._started.wait(5)
        self._fail(reason)

    def pause(self) -> None:
        """SIGSTOP every process of the job; its wall clock stops too."""
        with self._lock:
            if self._paused_since is not None or self._proc is None:
                return
            self._paused_since = time.monotonic()
        self._signal(SIGSTOP)
        self._emit({"type": "paused"})

    def resume(self) -> None:
        with self._lock:
            if self._paused_since is None:
                return
            self._paused_total += time.monotonic() - self._paused_since
            self._paused_since = None
        self._signal(SIGCONT)
        self._emit({"type": "resumed"})

    @property
    def paused(self) -> bool:
        return self._paused_since is not None

    # ---- the run --------------------------------------------------------------------
    def run(self) -> Outcome:
        job_dir = self.job_dir
        layout = AttemptLayout(job_dir)
        layout.make_job_dirs()
        lim = self.limits
        name = f"{self.job_id}-{os.getpid()}-{threading.get_ident() % 100000}"
        self._cgroup = (JobCgroup.create(name, max_pids=lim.processes, max_ram_bytes=lim.ram_bytes)
                        if self.use_cgroups else JobCgroup(name))
        cg = self._cgroup
        rfd, wfd = os.pipe()
        os.set_blocking(rfd, False)
        extra_env = {"KMINER_DEVICE": "cpu" if self.device_index is None and not self.amd else "cuda:0"}
        try:
            launch = build_launch(self.level, job_dir, report_fd=wfd, device_index=self.device_index,
                                  pci_bus_id=self.pci_bus_id, hide=self.hide, extra_env=extra_env, gpu_uuid=self.gpu_uuid,
                                  amd=self.amd,
                                  max_tasks=lim.processes if self.level == "strict" else None)
        except BaseException:
            os.close(rfd)
            os.close(wfd)
            cg.remove()
            raise
        set_as = not lim.gpu and not cg.memory_limit
        out = Outcome(status="failed", level=self.level, enforcement=self._enforcement(cg, set_as))
        t0 = time.monotonic()
        logf = None
        try:
            logf = layout.open_log()
            if os.name == "nt":
                proc = self._spawn_windows(launch, wfd, logf)
            else:
                from jobs.seccomp_filter import session_keyring_joiner

                preexec = make_preexec(lim, cgroup_procs=cg.procs_files(), set_as=set_as, nice=self.nice,
                                       fresh_keyring=session_keyring_joiner() if sys.platform == "linux" else None)
                proc = subprocess.Popen(launch.argv, env=launch.env, cwd=str(layout.work),
                                        stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                        pass_fds=(wfd, *launch.pass_fds), close_fds=True, start_new_session=True,
                                        preexec_fn=preexec)
        except OSError as e:
            os.close(rfd)
            if logf is not None:
                os.close(logf)
            cg.remove()
            return Outcome(status="failed", reason=f"could not start the worker: {e}", level=self.level)
        finally:
            launch.close_fds()
            try:
                os.close(wfd)
            except OSError:
                pass
        self._proc = proc
        self._started.set()
        if self.on_start:
            self.on_start(proc.pid)
        try:
            self._loop(proc, rfd, out, t0)
        finally:
            self._kill_all(proc)
            os.close(rfd)
            os.close(logf)
            out.exit_code = proc.returncode
            self._finish(out, proc, cg)
            cg.remove()
            out.run_s = time.monotonic() - t0
            out.paused_s = self._paused_total
        return out

    def _enforcement(self, cg: JobCgroup, set_as: bool) -> dict[str, str]:
        """What enforces the process and memory limits this time (the fallbacks included)."""
        if cg.pids_limit:
            pids = "pids cgroup"
        elif self.level == "strict" and os.name == "posix" and os.geteuid() != 0:
            pids = "RLIMIT_NPROC in the job's user namespace + process watchdog"
        else:
            pids = "process watchdog"
        mem = "memory cgroup" if cg.memory_limit else ("RSS watchdog + RLIMIT_AS" if set_as else "RSS watchdog")
        return {"processes": pids, "memory": mem, "wall_clock": "runner watchdog",
                "output": "RLIMIT_FSIZE + disk watchdog (bytes and files) + capped archive"}

    def _spawn_windows(self, launch, wfd: int, logf: int) -> subprocess.Popen:
        """Windows: the pipe travels as an inherited handle; the worker starts suspended, joins
        a Job Object (kill on close, memory/process/CPU limits), then runs. Not verified on
        Windows from this repository's CI; see docs/sandbox.md."""
        import msvcrt

        from jobs.winjob import WinJob, creation_flags

        handle = msvcrt.get_osfhandle(wfd)
        os.set_handle_inheritable(handle, True)
        si = subprocess.STARTUPINFO()
        si.lpAttributeList = {"handle_list": [handle]}
        env = dict(launch.env, KMINER_REPORT_HANDLE=str(handle), SYSTEMROOT=os.environ.get("SYSTEMROOT", ""))
        self._winjob = WinJob(self.limits)
        proc = subprocess.Popen(launch.argv, env=env, cwd=str(self.job_dir / "work"), stdin=subprocess.DEVNULL,
                                stdout=logf, stderr=subprocess.STDOUT, close_fds=True, startupinfo=si,
                                creationflags=creation_flags(below_normal=self.nice > 0))
        self._winjob.assign_and_resume(proc._handle)  # type: ignore[attr-defined]
        return proc

    def _loop(self, proc: subprocess.Popen, rfd: int, out: Outcome, t0: float) -> None:
        reader = PipeReader(rfd)
        buf = bytearray()
        skipping = False          # inside an over-long line: drop bytes until the next newline
        eof = False
        next_disk = 0.0
        lim = self.limits
        while True:
            if not eof:
                for chunk in reader.read(WATCH_INTERVAL_S):
                    if not chunk:
                        eof = True
                        break
                    out.pipe_bytes += len(chunk)
                    if out.pipe_bytes > MAX_PIPE_BYTES:
                        self._fail(f"report pipe flooded (over {MAX_PIPE_BYTES >> 20} MiB)")
                        eof = True   # stop reading: the writer blocks on a full pipe until it is killed
                        break
                    buf += chunk
                    while True:
                        nl = buf.find(b"\n")
                        if nl < 0:
                            if len(buf) > MAX_LINE_BYTES:
                                buf.clear()
                                if not skipping:
                                    out.invalid_lines += 1
                                skipping = True
                            break
                        line = bytes(buf[:nl])
                        del buf[:nl + 1]
                        if skipping:
                            skipping = False
                            continue
                        self._handle_line(line, out, t0)
                    if out.invalid_lines > MAX_INVALID_LINES:
                        self._fail(f"garbage on the report pipe ({out.invalid_lines} invalid lines)")
            else:
                try:
                    proc.wait(timeout=WATCH_INTERVAL_S / 2)
                except subprocess.TimeoutExpired:
                    pass
            now = time.monotonic()
            if proc.poll() is not None:
                if not eof:   # a leftover child may hold the pipe open: take what is there
                    self._drain(rfd, buf, out, t0)
                return
            paused = self._paused_since
            run_time = self._run_time(now, t0)
            if self._kill_reason is None and run_time > lim.wall_s:
                self._fail(f"wall-clock limit reached ({lim.wall_s:g} s)")
            if self._kill_reason is None and lim.no_progress_s is not None:
                self._check_progress(run_time, lim.no_progress_s)
            if self._kill_reason is None and now >= next_disk:
                next_disk = now + DISK_CHECK_INTERVAL_S
                self._check_disk()
            if self._kill_reason is None and not paused:
                self._check_processes()
            if self._kill_reason is not None:
                if self._kill_status == "cancelled" and now - (self._cancel_at or now) < TERM_GRACE_S:
                    continue   # the engine may stop cleanly on SIGTERM; SIGKILL after the grace period
                return

    def _run_time(self, now: float, t0: float) -> float:
        """Seconds the job has been running at `now` (pauses excluded)."""
        paused = self._paused_since
        return now - t0 - self._paused_total - ((now - paused) if paused else 0.0)

    def _check_progress(self, run_time: float, limit_s: float) -> None:
        """Stop a job whose progress has not risen for `limit_s` running seconds (since the start
        when it never reported any): a stalled job must not hold its device until the wall limit."""
        if run_time - (self._progress_at or 0.0) > limit_s:
            what = "no progress reported" if self._progress_at is None else "progress stopped rising"
            self._fail(f"{what} for {limit_s:g} s (stalled; the no-progress limit)")

    def _drain(self, rfd: int, buf: bytearray, out: Outcome, t0: float) -> None:
        total = 0
        while total < MAX_PIPE_BYTES:
            try:
                chunk = os.read(rfd, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            total += len(chunk)
            buf += chunk
        for line in bytes(buf).split(b"\n")[:-1][:10000]:
            if len(line) <= MAX_LINE_BYTES:
                self._handle_line(line, out, t0)
        buf.clear()

    def _handle_line(self, line: bytes, out: Outcome, t0: float) -> None:
        if not line.strip():
            return
        try:
            msg = loads_bounded(line, LINE_LIMITS, what="report line")
        except SafeJsonError:
            out.invalid_lines += 1
            return
        if not isinstance(msg, dict) or msg.get("type") not in _MSG_TYPES:
            out.invalid_lines += 1
            return
        t = msg["type"]
        now = time.monotonic()
        if out.result is not None or (out.reason is not None and out.status == "failed" and t in ("result", "error")):
            out.invalid_lines += 1     # nothing may follow the final message
            return
        if t == "hello":
            if out.start_to_hello_s is None:
                out.start_to_hello_s = now - t0
            return
        if t == "progress":
            f = msg.get("fraction")
            if not isinstance(f, (int, float)) or not 0 <= f <= 1:
                out.invalid_lines += 1
                return
            if out.start_to_first_progress_s is None:
                out.start_to_first_progress_s = now - t0
            if float(f) > out.last_fraction or self._progress_at is None:
                self._progress_at = self._run_time(now, t0)
            out.last_fraction = max(out.last_fraction, float(f))
            m = msg.get("message")
            self._emit({"type": "progress", "fraction": out.last_fraction,
                        "message": safe_line(m, max_chars=500) if isinstance(m, str) else None})
        elif t == "log":
            m, lvl = msg.get("message"), msg.get("level", "info")
            if not isinstance(m, str) or lvl not in ("debug", "info", "warning", "error"):
                out.invalid_lines += 1
                return
            self._emit({"type": "log", "level": lvl, "message": safe_text(m, max_chars=2000)})
        elif t == "result":
            r = msg.get("result")
            if not isinstance(r, dict):
                out.invalid_lines += 1
                return
            out.result = r
        elif t == "error":
            r = msg.get("reason")
            if not isinstance(r, str):
                out.invalid_lines += 1
                return
            out.reason = safe_line(r, max_chars=2000)

    def _emit(self, msg: dict[str, Any]) -> None:
        if self.on_event is not None:
            try:
                self.on_event(msg)
            except Exception:  # a listener's bug must not kill the job's runner
                log.exception("job %s event listener failed", self.job_id)

    # ---- limits and killing -----------------------------------------------------------
    def _fail(self, reason: str) -> None:
        with self._lock:
            if self._kill_reason is None:
                self._kill_reason, self._kill_status = reason, "failed"
        if self._paused_since is not None:
            self._signal(SIGCONT)

    def _job_pids(self) -> list[int]:
        """Every process of the job: the cgroup's members, else the worker's descendants."""
        cg = self._cgroup
        if cg is not None and cg.dirs:
            return cg.pids()
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return []
        try:
            import psutil

            p = psutil.Process(proc.pid)
            return [proc.pid] + [c.pid for c in p.children(recursive=True)]
        except Exception:
            return [proc.pid]

    def _signal(self, sig: int) -> None:
        proc = self._proc
        if proc is None:
            return
        if os.name == "nt":
            self._signal_windows(proc, sig)
            return
        spare: set[int] = set()
        if sig == signal.SIGTERM and self.level == "strict":
            # bubblewrap dies on SIGTERM and takes the job with it: spare the launcher and the
            # namespace's init so the engine gets its cooperative grace period.
            spare = {proc.pid} | set(_children(proc.pid))
        for pid in self._job_pids():
            if pid > 1 and pid != os.getpid() and pid not in spare:
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
        if proc.returncode is None and not spare:
            try:
                os.killpg(proc.pid, sig)   # start_new_session: the group id is the worker's pid (> 1)
            except (ProcessLookupError, PermissionError):
                pass

    def _signal_windows(self, proc: subprocess.Popen, sig: int) -> None:
        job = self._winjob
        if job is None or proc.returncode is not None:
            return
        if sig == SIGSTOP:
            job.suspend(proc._handle)  # type: ignore[attr-defined]
        elif sig == SIGCONT:
            job.resume(proc._handle)  # type: ignore[attr-defined]
        elif sig == signal.SIGTERM:
            proc.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        else:
            job.terminate()

    def _kill_all(self, proc: subprocess.Popen) -> None:
        """SIGKILL the whole job: cgroup members, the process group, the process itself."""
        if self._cgroup is not None and self._cgroup.dirs:
            self._cgroup.kill_all(timeout_s=1.0)
        self._signal(SIGKILL)
        if self._winjob is not None:
            self._winjob.close()
        try:
            proc.kill()
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.error("job %s: worker %d did not die after SIGKILL", self.job_id, proc.pid)

    def _check_disk(self) -> None:
        """Bytes and names in everything the job can fill (out/, work/, tmp/, its log)."""
        lim = self.limits
        lay = AttemptLayout(self.job_dir)
        total = entries = 0
        for p in (*lay.job_writable(), lay.log):
            u = tree_usage(p, stop_bytes=lim.output_bytes - total + 1, stop_entries=lim.output_files - entries + 1)
            total, entries = total + u.bytes, entries + (u.entries if p != lay.log else 0)
            if u.too_deep:
                self._fail("output limit reached (folders nested too deep)")
                return
            if total > lim.output_bytes:
                self._fail(f"output limit reached ({lim.output_mb} MB in the job folder)")
                return
            if entries > lim.output_files:
                self._fail(f"output limit reached ({lim.output_files} files and folders)")
                return

    def _check_processes(self) -> None:
        cg = self._cgroup
        need_pids = not (cg and cg.pids_limit)
        need_mem = not (cg and cg.memory_limit)
        if not (need_pids or need_mem):
            return
        pids = self._job_pids()
        # Under strict the outer bubblewrap is the launcher, not the job: the job's own count
        # (namespace init, worker, its children) is what RLIMIT_NPROC bounds too.
        launcher = {self._proc.pid} if self.level == "strict" and self._proc is not None else set()
        if need_pids and len(set(pids) - launcher) > self.limits.processes:
            self._fail(f"process limit reached ({self.limits.processes})")
            return
        if need_mem:
            import psutil

            # RSS counts pages shared between the job's processes once per process, so a
            # sum over the limit is confirmed with PSS (each shared page split among them).
            rss = sum(_resident_bytes(psutil, pid, proportional=False) for pid in pids)
            if rss > self.limits.ram_bytes:
                rss = sum(_resident_bytes(psutil, pid, proportional=True) for pid in pids)
            if rss > self.limits.ram_bytes:
                self._fail(f"memory limit reached ({self.limits.ram_mb} MB resident)")

    def _finish(self, out: Outcome, proc: subprocess.Popen, cg: JobCgroup) -> None:
        """Decide the final status and reason, most specific first."""
        if self._kill_reason is not None:
            out.status, out.reason = self._kill_status, self._kill_reason
            out.result = None
            if self._cancel_at is not None:
                out.cancel_latency_s = time.monotonic() - self._cancel_at
            return
        rc = proc.returncode
        sig = -rc if rc is not None and rc < 0 else (rc - 128 if self.level == "strict" and rc and rc > 128 else None)
        if out.result is not None and rc == 0:
            out.status, out.reason = "succeeded", None
            return
        out.result = None
        out.status = "failed"
        if out.reason is not None:
            if "File too large" in out.reason or "[Errno 27]" in out.reason:
                out.reason = f"output limit reached ({self.limits.output_mb} MB per file): {out.reason}"
            elif out.reason.startswith("MemoryError") or (cg.memory_limit and cg.oom_killed() and "Memory" in out.reason):
                out.reason = f"memory limit reached ({self.limits.ram_mb} MB): {out.reason}"
            elif (cg.pids_exhausted() or out.enforcement.get("processes", "").startswith("RLIMIT_NPROC")) and (
                    "fork" in out.reason.lower() or "resource temporarily" in out.reason.lower()):
                out.reason = f"process limit reached ({self.limits.processes}): {out.reason}"
            return
        if cg.memory_limit and cg.oom_killed():
            out.reason = f"memory limit reached ({self.limits.ram_mb} MB): killed by the kernel"
        elif sig == getattr(signal, "SIGXCPU", -1):
            out.reason = f"CPU time limit reached ({self.limits.cpu_s} s)"
        elif sig == getattr(signal, "SIGXFSZ", -1):
            out.reason = f"output limit reached ({self.limits.output_mb} MB per file)"
        elif cg.pids_exhausted():
            out.reason = f"process limit reached ({self.limits.processes}); worker exited with {rc}"
        elif sig is not None:
            out.reason = f"worker killed by {_signal_name(sig)} without a result"
        else:
            out.reason = f"worker exited with code {rc} without a result"


def _resident_bytes(psutil, pid: int, *, proportional: bool) -> int:
    """A process's resident memory: RSS, or with `proportional` its PSS where the system
    gives it (a page shared by n processes counts 1/n), else RSS. 0 for a process gone."""
    try:
        p = psutil.Process(pid)
        if proportional and sys.platform == "linux":
            pss = getattr(p.memory_full_info(), "pss", None)
            if pss is not None:
                return pss
        return p.memory_info().rss
    except Exception:
        return 0


def _children(pid: int) -> list[int]:
    try:
        import psutil

        return [c.pid for c in psutil.Process(pid).children()]
    except Exception:
        return []
