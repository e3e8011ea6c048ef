"""The watchdog's rules, as plain state machines (no threads, no clocks of their own).

A device is *faulted* when its GPU fell off the bus (lost), when its reads fail with real
errors for `error_polls` snapshots in a row (NVML/AMD SMI errors: a hanging driver), or when
a job on it stops reporting progress for `stall_s` seconds while not paused (a hung GPU
often still answers NVML). A faulted device is held (no claims, its job failed) until its
back-off ends: `backoff_first_s`, doubled at each fault in a row up to `backoff_cap_s`; a
device that stays healthy `healthy_s` after a retry starts again from the first back-off.

`DeviceWatch` follows one device; `JobWatch` follows the running jobs' progress. Times are
seconds from one monotonic clock the caller passes in. Not thread-safe: the owner locks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gpu.model import Telemetry

__all__ = ["Fault", "FaultKind", "WatchdogRules", "DeviceWatch", "JobWatch", "Stall"]

FaultKind = Literal["lost", "errors", "stalled"]


@dataclass(frozen=True)
class WatchdogRules:
    """error_polls: snapshots in a row with read errors before a fault; stall_s: seconds without
    progress before a running job counts as hung; back-off in seconds; healthy_s: seconds of
    health after a retry that clear the fault count."""

    error_polls: int = 3
    stall_s: float = 600.0
    backoff_first_s: float = 60.0
    backoff_cap_s: float = 3600.0
    healthy_s: float = 900.0

    def backoff_s(self, faults_in_a_row: int) -> float:
        """The wait after the n-th fault in a row (n >= 1)."""
        return min(self.backoff_cap_s, self.backoff_first_s * 2 ** max(0, faults_in_a_row - 1))


@dataclass(frozen=True)
class Fault:
    """Why a device was held: `kind` and a line for people ("GPU is lost (fell off the bus)")."""

    kind: FaultKind
    reason: str


class DeviceWatch:
    """One device: its error streak, whether it is held, until when, and its faults in a row."""

    def __init__(self) -> None:
        self.streak = 0
        self.fault: Fault | None = None
        self.retry_at: float | None = None
        self.in_a_row = 0
        self.total = 0
        """Faults since start (a counter for metrics)."""
        self.released_at: float | None = None

    @property
    def held(self) -> bool:
        return self.fault is not None

    def observe(self, t: Telemetry | None, rules: WatchdogRules, now: float) -> Fault | None:
        """Feed one snapshot; the new fault it causes (None if none, or already held)."""
        if t is None:
            return None
        if t.lost:
            self.streak = 0
            return self._trip(Fault("lost", "GPU is lost (fell off the bus)"), rules, now)
        if t.errors:
            self.streak += 1
            if self.streak >= rules.error_polls:
                self.streak = 0
                what = t.error or f"{t.errors} failed reads"
                return self._trip(Fault("errors", f"driver errors in {rules.error_polls} readings in a row ({what})"),
                                  rules, now)
            return None
        self.streak = 0
        if (self.fault is None and self.released_at is not None and self.in_a_row
                and now - self.released_at >= rules.healthy_s):
            self.in_a_row = 0  # healthy long enough: the next fault starts from the first back-off
        return None

    def stalled(self, reason: str, rules: WatchdogRules, now: float) -> Fault | None:
        """A job on this device stopped reporting progress."""
        return self._trip(Fault("stalled", reason), rules, now)

    def _trip(self, fault: Fault, rules: WatchdogRules, now: float) -> Fault | None:
        if self.fault is not None:
            return None
        self.fault = fault
        self.in_a_row += 1
        self.total += 1
        self.retry_at = now + rules.backoff_s(self.in_a_row)
        return fault

    def due(self, now: float) -> bool:
        """Held and its back-off is over: time to try it again."""
        return self.fault is not None and self.retry_at is not None and now >= self.retry_at

    def release(self, now: float) -> Fault | None:
        """End the hold (a retry, or the user said so); the fault it had."""
        fault, self.fault, self.retry_at = self.fault, None, None
        self.streak = 0
        self.released_at = now
        return fault


@dataclass(frozen=True)
class Stall:
    job_id: str
    device_key: str
    silent_s: float


class JobWatch:
    """The running jobs' progress: when each last reported, whether it is paused.

    A job's silence is counted from its start, its last progress report, or its last resume,
    whichever is latest; paused time never counts.
    """

    def __init__(self) -> None:
        self._jobs: dict[str, list] = {}  # job id -> [device key, last sign of life, paused]
        self._flagged: set[str] = set()

    def sync(self, running: dict[str, tuple[str, bool]], now: float) -> None:
        """The running jobs now: job id -> (device key, paused). New ones start their clock."""
        for jid in list(self._jobs):
            if jid not in running:
                del self._jobs[jid]
                self._flagged.discard(jid)
        for jid, (key, paused) in running.items():
            j = self._jobs.get(jid)
            if j is None:
                self._jobs[jid] = [key, now, paused]
                continue
            if j[2] and not paused:
                j[1] = now  # resumed: its silence starts again
            j[0], j[2] = key, paused

    def event(self, job_id: str, kind: str, now: float) -> None:
        """A message from a running job: "progress" (and "resumed") are signs of life."""
        j = self._jobs.get(job_id)
        if j is not None and kind in ("progress", "resumed", "hello"):
            j[1] = now

    def stalls(self, stall_s: float, now: float) -> list[Stall]:
        """Jobs silent for `stall_s` or more while running (each reported once)."""
        out = []
        for jid, (key, last, paused) in self._jobs.items():
            if not paused and jid not in self._flagged and now - last >= stall_s:
                self._flagged.add(jid)
                out.append(Stall(jid, key, now - last))
        return out
