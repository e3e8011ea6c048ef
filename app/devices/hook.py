"""The user's event script: an optional program run on each watchdog event (docs/rigs.md).

It is started as `SCRIPT EVENT DEVICE` (EVENT: fault, job_failed or retry; DEVICE: cuda:1)
with these variables added to the environment:
  KMINER_EVENT, KMINER_DEVICE, KMINER_DEVICE_KEY (the GPU's uuid), KMINER_DEVICE_NAME,
  KMINER_REASON, KMINER_FAULT (lost, errors, stalled), KMINER_JOB (the job's queue id, or
  empty), KMINER_RETRY_AT (unix seconds of the next try, or empty), KMINER_TIME (unix seconds).
It runs without a shell, from the data folder, killed (its whole process group) after the
time limit; what it prints goes to the log, capped. Scripts run one at a time on one thread
of their own, so a slow script never holds up mining; while one runs, up to 50 events wait
(more are dropped, with a log line).
"""

from __future__ import annotations

import logging
import os
import queue
import shlex
import signal
import subprocess
import threading
from pathlib import Path
from typing import Callable

from app.devices.watchdog import WatchdogEvent

log = logging.getLogger(__name__)

__all__ = ["HookRunner", "hook_env"]

MAX_WAITING = 50
MAX_LOG_CHARS = 8000


def hook_env(ev: WatchdogEvent) -> dict[str, str]:
    """The KMINER_* variables the script gets for `ev`."""
    return {"KMINER_EVENT": ev.kind, "KMINER_DEVICE": ev.device, "KMINER_DEVICE_KEY": ev.device_key,
            "KMINER_DEVICE_NAME": ev.device_name, "KMINER_REASON": ev.reason, "KMINER_FAULT": ev.fault or "",
            "KMINER_JOB": ev.job or "", "KMINER_RETRY_AT": "" if ev.retry_at is None else f"{ev.retry_at:.0f}",
            "KMINER_TIME": f"{ev.at:.0f}"}


class HookRunner:
    """Runs `settings().hook_script` for each event passed to it (a Watchdog listener).
    `cwd`: where the script runs. `done(event, returncode or None, output)` is called after each
    run (tests, logs)."""

    def __init__(self, settings: Callable[[], object], cwd: Path,
                 done: Callable[[WatchdogEvent, int | None, str], None] | None = None):
        self._settings = settings
        self._cwd = cwd
        self._done = done
        self._queue: queue.Queue[WatchdogEvent | None] = queue.Queue(MAX_WAITING)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __call__(self, ev: WatchdogEvent) -> None:
        if not (getattr(self._settings(), "hook_script", None) or "").strip():
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="watchdog-hook", daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(ev)
        except queue.Full:
            log.warning("event script busy: %s event for %s dropped", ev.kind, ev.device)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop after the script that runs now (if any); waiting events are dropped."""
        with self._lock:
            t = self._thread
        if t is None:
            return
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        t.join(timeout_s)

    def _loop(self) -> None:
        while True:
            ev = self._queue.get()
            if ev is None:
                return
            try:
                self.run(ev)
            except Exception:
                log.exception("event script failed")

    def run(self, ev: WatchdogEvent) -> tuple[int | None, str]:
        """Run the script for `ev` now (blocking): (its exit code, or None if it could not run
        or was killed at the time limit; its output, capped)."""
        s = self._settings()
        script = (getattr(s, "hook_script", None) or "").strip()
        timeout_s = float(getattr(s, "hook_timeout_s", 30.0))
        argv = [*_split(script), ev.kind, ev.device]
        env = dict(os.environ, **hook_env(ev))
        try:
            proc = subprocess.Popen(argv, cwd=str(self._cwd), env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            log.warning("event script %r could not start: %s", script, e)
            self._report(ev, None, str(e))
            return None, str(e)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
            code: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, _ = proc.communicate()
            code = None
            log.warning("event script %r killed after %.0f s", script, timeout_s)
        text = out.decode("utf-8", "replace")[:MAX_LOG_CHARS]
        log.info("event script %r (%s %s) exit %s: %s", script, ev.kind, ev.device, code, text.strip() or "(no output)")
        self._report(ev, code, text)
        return code, text

    def _report(self, ev: WatchdogEvent, code: int | None, text: str) -> None:
        if self._done is not None:
            try:
                self._done(ev, code, text)
            except Exception:
                log.exception("event script listener failed")


def _split(script: str) -> list[str]:
    """A script path, or a path with arguments when it does not exist as typed ("notify.sh -q")."""
    if Path(script).expanduser().exists() or os.name == "nt":
        return [str(Path(script).expanduser())]
    return shlex.split(script)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)  # start_new_session: its group id is its pid
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
