"""Auto-pricing: per device offered to the market, the share of passes in which all its slots
were busy over a window moves its price floor up (booked out) or down (idle), within the
user's bounds (app.miner.pricing.next_floor). The counts are saved in the miner DB now and
then, so a restart carries on with the same window instead of starting a new one.

Runs on the one thread that calls MinerService.step().
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from app.context import AppContext
from app.miner import pricing
from app.miner.db import FloorChangeRow, MinerDB
from app.miner.fleet import Fleet

log = logging.getLogger("app.miner.service")

BUSY_SAVE_S = 30.0
"""How often the counts are saved (a restart loses at most this much counting)."""


class AutoPricing:
    """`busy`: device key -> [window start (unix s), passes, busy passes]; None until the first pass."""

    def __init__(self, ctx: AppContext, db: MinerDB, fleet: Fleet, running: Callable[[], Mapping[str, Any]]):
        self.ctx = ctx
        self.db = db
        self.fleet = fleet
        self.running = running
        self.busy: dict[str, list[float]] | None = None
        self._saved_at = 0.0

    def track(self) -> None:
        """Count this pass for every device that may mine now (and save the counts now and then)."""
        if self.busy is None:
            self.busy = self._load()
        running = self.fleet.running_by_key(self.running())
        now = time.time()
        for s in self.fleet.states:
            if not (s.active and not s.throttled):
                self.busy.pop(s.info.key, None)
                continue
            w = self.busy.setdefault(s.info.key, [now, 0, 0])
            w[1] += 1
            w[2] += 1 if running.get(s.info.key, 0) >= self.fleet.capacity(s) else 0
        if now - self._saved_at >= BUSY_SAVE_S:
            self.save(now)

    def _load(self) -> dict[str, list[float]]:
        try:
            saved = json.loads(self.db.meta("busy_windows") or "{}")
            return {str(k): [float(v[0]), int(v[1]), int(v[2])] for k, v in saved.items()}
        except (ValueError, TypeError, IndexError, KeyError):  # a damaged value: start new windows
            return {}

    def save(self, now: float | None = None) -> None:
        if self.busy is None:
            return
        self.db.set_meta("busy_windows", json.dumps(self.busy))
        self._saved_at = time.time() if now is None else now

    def apply(self) -> None:
        """Move the floor of every auto-priced device whose window is over; log each move."""
        if self.busy is None:
            return
        now = time.time()
        for key, (start, passes, busy) in list(self.busy.items()):
            ds = self.ctx.settings.device(key)
            if not ds.auto_price:
                continue
            if now - start < ds.auto_price_window_s or passes == 0:
                continue
            self.busy[key] = [now, 0, 0]
            self.save(now)
            ch = pricing.next_floor(ds.price_floor_ntk_per_hour, busy / passes, lo=ds.auto_price_min_ntk_per_hour,
                                    hi=ds.auto_price_max_ntk_per_hour, step=ds.auto_price_step,
                                    window_s=ds.auto_price_window_s)
            if ch is None:
                continue
            ds.price_floor_ntk_per_hour = ch.new
            self.ctx.save_settings()
            row = FloorChangeRow(time.time(), key, ch.old, ch.new, ch.reason)
            self.db.log_floor(row)
            log.info("device %s: %s", key, row.text())

    def close(self) -> None:
        """Save the counts (the window goes on after a restart) and forget them."""
        if self.busy is not None:
            self.save()
            self.busy = None
