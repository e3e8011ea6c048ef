"""The watchdog: holds a device whose GPU is lost, fails its readings, or whose job hangs; says
which running jobs to fail (with the reason); tries the device again after a back-off; and
tells its listeners (tray notices, `kminer agent` lines, the event script, alerts).

The rules are gpu.watchdog's; the settings are `Settings.watchdog`. The miner asks
`jobs_to_fail(running)` each pass and fails those jobs (they run again elsewhere while their
deadline allows); DeviceService feeds every snapshot to `observe()` and re-probes a lost GPU
when its back-off ends.

Threading: every method may be called from any thread (one lock inside). Listeners run on the
caller's thread, outside the lock, and must be quick (the event script runs on its own thread).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Literal

from gpu.model import DeviceInfo, Telemetry
from gpu.watchdog import DeviceWatch, Fault, JobWatch, WatchdogRules

log = logging.getLogger(__name__)

__all__ = ["Watchdog", "WatchdogEvent", "EventKind"]

EventKind = Literal["fault", "job_failed", "retry"]


@dataclass(frozen=True)
class WatchdogEvent:
    """What happened: `fault` (a device is held), `job_failed` (its job was failed), `retry` (its
    back-off ended; it is tried again). `device` is its label (cuda:1), `fault` the fault kind
    (lost, errors, stalled), `retry_at` unix seconds, `at` unix seconds."""

    kind: EventKind
    device: str
    device_key: str
    device_name: str
    reason: str
    fault: str | None = None
    job: str | None = None
    retry_at: float | None = None
    at: float = 0.0

    def line(self) -> str:
        """One line for people and logs."""
        if self.kind == "fault":
            when = f"; held, tried again at {time.strftime('%H:%M:%S', time.localtime(self.retry_at))}" \
                if self.retry_at else "; held"
            return f"{self.device} ({self.device_name}): {self.reason}{when}"
        if self.kind == "job_failed":
            return f"{self.device}: job {self.job} failed: {self.reason}"
        return f"{self.device} ({self.device_name}): back-off over, trying it again"


class Watchdog:
    """See the module docstring. `settings()` gives the current app.settings.WatchdogSettings
    (read at each call, so a changed setting applies at once)."""

    def __init__(self, settings: Callable[[], object], *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self._settings = settings
        self._clock, self._wall = clock, wall
        self._lock = threading.Lock()
        self._devices: dict[str, DeviceWatch] = {}
        self._info: dict[str, DeviceInfo] = {}
        self._jobs = JobWatch()
        self._failed: set[str] = set()
        self._listeners: list[Callable[[WatchdogEvent], None]] = []

    # ---- settings and listeners -------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return bool(getattr(self._settings(), "enabled", True))

    def rules(self) -> WatchdogRules:
        s = self._settings()
        return WatchdogRules(error_polls=s.error_polls, stall_s=s.stall_minutes * 60.0,  # type: ignore[attr-defined]
                             backoff_first_s=s.backoff_first_s, backoff_cap_s=s.backoff_cap_s)  # type: ignore[attr-defined]

    def subscribe(self, listener: Callable[[WatchdogEvent], None]) -> Callable[[], None]:
        """Call `listener(event)` on every event; returns a function that unsubscribes it."""
        with self._lock:
            self._listeners.append(listener)
        return lambda: self._unsubscribe(listener)

    def _unsubscribe(self, listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _emit(self, events: list[WatchdogEvent]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for ev in events:
            (log.warning if ev.kind != "retry" else log.info)("watchdog: %s", ev.line())
            for fn in listeners:
                try:
                    fn(ev)
                except Exception:  # a listener's bug must not stop the watchdog
                    log.exception("watchdog listener failed")

    def _event(self, kind: EventKind, key: str, reason: str, *, fault: Fault | None = None, job: str | None = None,
               retry_at_mono: float | None = None) -> WatchdogEvent:
        info = self._info.get(key)
        retry_at = None if retry_at_mono is None else self._wall() + (retry_at_mono - self._clock())
        return WatchdogEvent(kind, info.id if info else key, key, info.name if info else key, reason,
                             fault.kind if fault else None, job, retry_at, self._wall())

    # ---- devices ------------------------------------------------------------------------------
    def observe(self, info: DeviceInfo, telemetry: Telemetry | None) -> bool:
        """Feed one snapshot of `info`. True when its back-off just ended: the caller should
        ask the driver about it afresh (a lost GPU is otherwise never read again)."""
        if not self.enabled:
            return False
        now = self._clock()
        events: list[WatchdogEvent] = []
        retry = False
        with self._lock:
            self._info[info.key] = info
            w = self._devices.setdefault(info.key, DeviceWatch())
            if w.due(now):
                old = w.release(now)
                retry = True
                events.append(self._event("retry", info.key, old.reason if old else "", fault=old))
            else:
                fault = w.observe(telemetry, self.rules(), now)
                if fault is not None:
                    events.append(self._event("fault", info.key, fault.reason, fault=fault, retry_at_mono=w.retry_at))
        self._emit(events)
        return retry

    def hold(self, key: str) -> tuple[Fault, float | None] | None:
        """(fault, unix time of the next try) while device `key` is held, else None."""
        if not self.enabled:
            return None
        with self._lock:
            w = self._devices.get(key)
            if w is None or w.fault is None:
                return None
            at = None if w.retry_at is None else self._wall() + (w.retry_at - self._clock())
            return w.fault, at

    def faults_total(self, key: str) -> int:
        """Faults of device `key` since start (for metrics)."""
        with self._lock:
            w = self._devices.get(key)
            return w.total if w else 0

    def release(self, key: str) -> bool:
        """End device `key`'s hold now (the user resumed it); True if it was held."""
        with self._lock:
            w = self._devices.get(key)
            return w is not None and w.release(self._clock()) is not None

    # ---- jobs ---------------------------------------------------------------------------------
    def job_event(self, job_id: str, msg: dict) -> None:
        """A message from a running job (the scheduler's events): progress is a sign of life."""
        kind = msg.get("type")
        if isinstance(kind, str):
            with self._lock:
                self._jobs.event(job_id, kind, self._clock())

    def jobs_to_fail(self, running: dict[str, tuple[str, bool]]) -> list[tuple[str, str]]:
        """Running jobs (job id -> (device key, paused)) the watchdog wants failed, each once:
        [(job id, reason)]. A job silent for the stall time holds its device too."""
        if not self.enabled:
            return []
        now = self._clock()
        rules = self.rules()
        events: list[WatchdogEvent] = []
        out: list[tuple[str, str]] = []
        with self._lock:
            self._jobs.sync(running, now)
            self._failed &= set(running)
            for st in self._jobs.stalls(rules.stall_s, now):
                w = self._devices.setdefault(st.device_key, DeviceWatch())
                fault = w.stalled(f"job {st.job_id} reported no progress for {st.silent_s:.0f} s (hung?)", rules, now)
                if fault is not None:
                    events.append(self._event("fault", st.device_key, fault.reason, fault=fault,
                                              retry_at_mono=w.retry_at))
            for jid, (key, _paused) in running.items():
                w = self._devices.get(key)
                if w is None or w.fault is None or jid in self._failed:
                    continue
                self._failed.add(jid)
                info = self._info.get(key)
                reason = f"watchdog: {info.id if info else key}: {w.fault.reason}"
                out.append((jid, reason))
                events.append(self._event("job_failed", key, reason, fault=w.fault, job=jid))
        self._emit(events)
        return out
