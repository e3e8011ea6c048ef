"""How far each running market job has got: the worker's progress events, kept with their
times so the miner can tell when a job will end (and give up one that cannot make its deadline).

Threading: `note()` comes from the scheduler's job threads; reads from the stepping thread and
the views. Plain dict updates (each one atomic under the GIL).
"""

from __future__ import annotations

import time

MIN_OBSERVE_S = 3.0
"""Progress must be watched this long before the finish is estimated from its rate."""

Span = tuple[tuple[float, float], tuple[float, float]]
"""(first (unix s, fraction), last (unix s, fraction)) of one run."""


class RunProgress:
    def __init__(self):
        self.last: dict[int, float] = {}
        """Market job id -> the latest fraction done (0..1)."""
        self._spans: dict[int, Span] = {}

    def note(self, job_id: int, fraction: float, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.last[job_id] = fraction
        first = self._spans.get(job_id, ((now, fraction), (now, fraction)))[0]
        self._spans[job_id] = (first, (now, fraction))

    def restart(self, job_id: int) -> None:
        """A new run of the job: its rate is judged afresh."""
        self._spans.pop(job_id, None)

    def rate(self, job_id: int) -> tuple[float, float, float] | None:
        """(last time, last fraction, fraction per second) once watched long enough, else None."""
        p = self._spans.get(job_id)
        if p is None:
            return None
        (t0, f0), (t1, f1) = p
        if t1 - t0 < MIN_OBSERVE_S or f1 <= f0:
            return None
        return t1, f1, (f1 - f0) / (t1 - t0)

    def expected_left_s(self, job_id: int, now: float | None = None) -> float | None:
        """Seconds the job still needs, from its progress rate; None if unknown."""
        p = self._spans.get(job_id)
        if p is None:
            return None
        if p[1][1] >= 1.0:
            return 0.0
        r = self.rate(job_id)
        if r is None:
            return None
        t1, f1, per_s = r
        return max(0.0, (1.0 - f1) / per_s - ((now or time.time()) - t1))
