"""The scheduler: puts queued jobs on devices the miner lets work, pauses and resumes them
as devices get throttled or switched off, and cancels on request.

Device availability is a plain input: `devices()` returns `Device` records (id, kind,
memory, active, throttled, slots), filled in by the app from gpu/ telemetry and the
miner's modes (a device is `active` in `mining`, or in `auto` while the user is away).
One job per GPU; the CPU device takes `slots` jobs (the cpu_slots setting).

Threading: `tick()` is called from one thread (the app's scheduler loop, or `run_forever`);
each job runs in its own thread for its whole life (see runner.JobRun). `cancel()` may be
called from any thread.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from jobs.execute import GPU_KINDS, Attempt, Device, RuntimeConfig, device_fits, execute_attempt
from jobs.queue import APP_STOPPED, JobQueue
from jobs.runner import Outcome

log = logging.getLogger(__name__)

JobEvent = Callable[[str, dict[str, Any]], None]


def device_active(mode: str, user_away: bool) -> bool:
    """Whether a device in `mode` (idle, mining, auto) may work now: the `active` field of
    `Device` as the app fills it."""
    return mode == "mining" or (mode == "auto" and user_away)


@dataclass
class RunningJob:
    job_id: str
    device_id: str
    handle: Attempt
    thread: threading.Thread
    paused: bool = False
    failing: str | None = None      # fail() was asked: it ends as failed with this reason
    outcome: Outcome | None = None
    done: threading.Event = field(default_factory=threading.Event)


class Scheduler:
    def __init__(self, queue: JobQueue, cfg: RuntimeConfig, devices: Callable[[], list[Device]],
                 on_event: JobEvent | None = None):
        self.queue = queue
        self.cfg = cfg
        self.devices = devices
        self.on_event = on_event
        self._lock = threading.Lock()
        self._running: dict[str, RunningJob] = {}

    def recover(self) -> list[str]:
        """Call once at start: requeue jobs a killed app left running (see JobQueue.recover)
        and remove the control groups it left behind."""
        from jobs.cgroups import remove_stale

        remove_stale()
        return self.queue.recover(self.cfg.jobs_dir)

    def running(self) -> dict[str, RunningJob]:
        with self._lock:
            return dict(self._running)

    def tick(self) -> None:
        """One pass: reap finished jobs, pause/resume by device state, start queued jobs."""
        devs = {d.device_id: d for d in self.devices()}
        with self._lock:
            for jid, rj in list(self._running.items()):
                if rj.done.is_set():
                    del self._running[jid]
            running = list(self._running.values())
        for rj in running:
            if rj.failing is not None:
                continue  # being failed: neither paused nor resumed
            d = devs.get(rj.device_id)
            allowed = d is not None and d.active and not d.throttled
            if not allowed and not rj.paused:
                rj.handle.pause()
                rj.paused = True
                self.queue.set_paused(rj.job_id, True)
                self._emit(rj.job_id, {"type": "paused", "why": "device throttled" if d and d.throttled
                                       else "device not mining"})
            elif allowed and rj.paused:
                rj.handle.resume()
                rj.paused = False
                self.queue.set_paused(rj.job_id, False)
                self._emit(rj.job_id, {"type": "resumed"})
        used: dict[str, int] = {}
        for rj in running:
            used[rj.device_id] = used.get(rj.device_id, 0) + 1
        free = [d for d in devs.values() if d.active and not d.throttled and d.accepts_new]
        for job in self.queue.next_queued():
            with self._lock:
                if job.id in self._running:
                    continue
            for d in free:
                cap = 1 if d.kind in GPU_KINDS else max(1, d.slots)
                if used.get(d.device_id, 0) < cap and device_fits(job.spec.resources, d, job.spec.kind):
                    self._start(job.id, d)
                    used[d.device_id] = used.get(d.device_id, 0) + 1
                    break

    def _start(self, job_id: str, dev: Device) -> None:
        handle = Attempt()
        rj = RunningJob(job_id, dev.device_id, handle, threading.Thread())

        def body() -> None:
            try:
                rj.outcome = execute_attempt(self.queue, self.cfg, job_id, dev, handle=handle,
                                             on_event=lambda m: self._emit(job_id, m))
                if rj.outcome is not None:
                    self._emit(job_id, {"type": "finished", "status": rj.outcome.status, "reason": rj.outcome.reason})
            except Exception:
                log.exception("job %s crashed its runner", job_id)
            finally:
                rj.done.set()

        rj.thread = threading.Thread(target=body, name=f"job-{job_id}", daemon=True)
        with self._lock:
            self._running[job_id] = rj
        rj.thread.start()

    def cancel(self, job_id: str) -> str:
        """Cancel a queued or running job; returns the state after the request."""
        state = self.queue.request_cancel(job_id)
        with self._lock:
            rj = self._running.get(job_id)
        if rj is not None:
            rj.handle.cancel("cancelled by request")
        return state

    def fail(self, job_id: str, reason: str) -> bool:
        """Stop a running job now as failed with `reason` (its GPU is lost or hung); the queue
        records the failed attempt, so the app decides whether it runs again. False if not running."""
        with self._lock:
            rj = self._running.get(job_id)
        if rj is None or rj.done.is_set():
            return False
        rj.failing = reason
        rj.handle.fail(reason)
        return True

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Wait until no job is running (for tests and shutdown)."""
        for rj in list(self.running().values()):
            if not rj.done.wait(timeout_s):
                return False
        return True

    def shutdown(self) -> None:
        """Stop every running job (attempt failed "app stopped", job requeued) and wait."""
        for rj in list(self.running().values()):
            rj.handle.cancel(APP_STOPPED)
        self.wait_idle(30)

    def run_forever(self, stop: threading.Event, interval_s: float = 0.5) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed")
            stop.wait(interval_s)

    def _emit(self, job_id: str, msg: dict[str, Any]) -> None:
        if self.on_event is not None:
            try:
                self.on_event(job_id, msg)
            except Exception:
                log.exception("job event listener failed")
