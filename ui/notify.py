"""Rate-limited, coalescing desktop notifications ("payment received", "job failed").

Pure logic, no Qt: the tray feeds events in and shows the `Notice`s that come out.

Rule, per kind: the first event shows at once; events that arrive within `interval_s` of the
last shown notice of that kind are held and shown together once the interval has passed
("3 payments received: 12.5 NTK"). So a kind never shows more than one notice per interval and
nothing is lost. Times are seconds from any monotonic clock the caller chooses.

Money stays exact: payments are summed in integer wei and formatted only for display.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.amounts import format_amount

__all__ = ["Notice", "NotificationLimiter", "format_ntk", "PAYMENT", "JOB_FAILED", "WATCHDOG"]

PAYMENT = "payment"
JOB_FAILED = "job_failed"
WATCHDOG = "watchdog"


def format_ntk(wei: int, max_decimals: int = 6) -> str:
    """Wei as an NTK amount for compact display: app.amounts.format_amount cut (never rounded
    up) to `max_decimals`, trailing zeros dropped: 12_500000000000000000 -> "12.5"."""
    return format_amount(wei, max_decimals=max_decimals)


@dataclass(frozen=True)
class Notice:
    kind: str
    title: str
    message: str
    count: int


@dataclass
class _Pending:
    items: list = field(default_factory=list)


class NotificationLimiter:
    """See the module docstring. Not thread-safe: call it from one thread (the GUI's)."""

    def __init__(self, interval_s: float = 60.0):
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.interval_s = interval_s
        self._last_shown: dict[str, float] = {}
        self._pending: dict[str, list] = {}

    # ---- events ------------------------------------------------------------------------
    def payment(self, amount_wei: int, now: float) -> Notice | None:
        """A payment of `amount_wei` arrived: a notice to show now, or None (held)."""
        if isinstance(amount_wei, bool) or not isinstance(amount_wei, int) or amount_wei < 0:
            raise ValueError("amount_wei must be a non-negative int")
        return self._offer(PAYMENT, amount_wei, now)

    def job_failed(self, job_id: str, reason: str | None, now: float) -> Notice | None:
        """A job failed: a notice to show now, or None (held)."""
        return self._offer(JOB_FAILED, (str(job_id), reason or "no reason given"), now)

    def watchdog(self, line: str, now: float) -> Notice | None:
        """The watchdog held a device or failed its job (`line` says which and why)."""
        return self._offer(WATCHDOG, str(line), now)

    def _offer(self, kind: str, item, now: float) -> Notice | None:
        pending = self._pending.setdefault(kind, [])
        pending.append(item)
        last = self._last_shown.get(kind)
        if last is None or now - last >= self.interval_s:
            return self._take(kind, now)
        return None

    # ---- held notices ------------------------------------------------------------------
    def next_due(self) -> float | None:
        """The earliest time a held notice may be shown (None: nothing held)."""
        times = [self._last_shown[k] + self.interval_s for k, items in self._pending.items() if items]
        return min(times) if times else None

    def due(self, now: float) -> list[Notice]:
        """The held notices whose interval has passed (each kind coalesced into one)."""
        out = []
        for kind, items in list(self._pending.items()):
            if items and now - self._last_shown.get(kind, float("-inf")) >= self.interval_s:
                out.append(self._take(kind, now))
        return out

    def held(self, kind: str) -> int:
        return len(self._pending.get(kind, ()))

    def _take(self, kind: str, now: float) -> Notice:
        items = self._pending.pop(kind, [])
        self._last_shown[kind] = now
        return _compose(kind, items)


def _compose(kind: str, items: list) -> Notice:
    n = len(items)
    if kind == PAYMENT:
        total = format_ntk(sum(items))
        if n == 1:
            return Notice(kind, "Payment received", f"{total} NTK", 1)
        return Notice(kind, f"{n} payments received", f"{n} payments received: {total} NTK", n)
    if kind == WATCHDOG:
        if n == 1:
            return Notice(kind, "GPU problem", items[0], 1)
        return Notice(kind, f"{n} GPU problems", f"{n} GPU problems. Last: {items[-1]}", n)
    if n == 1:
        job_id, reason = items[0]
        return Notice(kind, "Job failed", f"{job_id}: {reason}", 1)
    ids = ", ".join(j for j, _ in items[:3]) + (f" and {n - 3} more" if n > 3 else "")
    last_id, last_reason = items[-1]
    return Notice(kind, f"{n} jobs failed", f"{n} jobs failed: {ids}. Last: {last_reason}", n)
