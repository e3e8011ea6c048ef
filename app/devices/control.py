"""Per-device control beyond its mode: a user's pause, the watchdog's hold, the weekly mining
hours, and sharing the PC (stop, or slow down, while the user is at it).

`Hold` says why a device takes no new job and whether its running job stops too:
- watchdog (stops it: the job is failed), paused by the user (stops it: the job is paused),
  in use (auto mode with "stop": the job is paused, as before), schedule (the job that runs
  when the window closes finishes; nothing new starts).
"Slow" while in use: a GPU keeps working with its power limit lowered to a share of its
default, where the driver lets this process set it (root, usually); a GPU whose limit cannot
be set stops instead, saying why; the CPU runs fewer jobs at once (half its slots).

Threading: `state()` is pure given its inputs; `apply_power()` makes driver calls (blocking,
call it from the polling thread); both under the DeviceService's locks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from common.schedule import WeeklySchedule, describe_until
from gpu.model import DeviceInfo
from gpu.modes import AUTO, is_active

log = logging.getLogger(__name__)

__all__ = ["Hold", "ControlState", "DeviceControl", "HoldSource", "state_word", "STATE_WORDS"]

STATE_WORDS = ("mining", "slowed", "idle", "throttled", "paused", "held", "off_hours", "in_use", "lost")
"""What a device is doing, in one word (CLI tables, metrics, the Fleet page)."""


def state_word(s: Any) -> str:
    """One of STATE_WORDS for a DeviceState: lost, held (watchdog), paused, throttled, off_hours
    (schedule), in_use (stopped while the user is here), slowed, mining or idle."""
    t = s.telemetry
    hold = getattr(s, "hold", None)
    if t is not None and t.lost:
        return "lost"
    if hold is not None and hold.source in ("watchdog", "paused"):
        return "held" if hold.source == "watchdog" else "paused"
    if s.throttled:
        return "throttled"
    if hold is not None:
        return "off_hours" if hold.source == "schedule" else "in_use"
    if s.active:
        return "slowed" if getattr(s, "slowed", None) else "mining"
    return "idle"

HoldSource = Literal["watchdog", "paused", "in_use", "schedule"]


@dataclass(frozen=True)
class Hold:
    """Why a device takes no new job now. `stops_jobs`: its running job stops too (paused, or
    failed by the watchdog); else it finishes. `until`: unix seconds when the hold lifts by
    itself (schedule, watchdog back-off), None if it does not."""

    source: HoldSource
    reason: str
    stops_jobs: bool
    until: float | None = None


@dataclass(frozen=True)
class ControlState:
    active: bool
    hold: Hold | None = None
    slowed: str | None = None
    max_jobs: int | None = None


class DeviceControl:
    """See the module docstring. `ctx`: the AppContext (settings read at each call); `probe`:
    gpu.devices.DeviceProbe (power limits)."""

    def __init__(self, ctx: Any, probe: Any):
        self.ctx = ctx
        self._probe = probe
        self.now: Any = datetime.now
        """Local wall-clock time for the mining hours (replaceable in tests)."""
        self._lowered: dict[str, float] = {}
        """Device key -> the power limit (W) it had before we lowered it."""
        self._refused: dict[str, str] = {}
        """Device key -> why its power limit could not be set (it stops instead of slowing)."""

    # ---- settings ------------------------------------------------------------------------------
    def in_use_policy(self, key: str) -> str:
        c = self.ctx.settings.control
        return c.device_in_use.get(key, c.while_in_use)

    def schedule(self, key: str) -> WeeklySchedule:
        c = self.ctx.settings.control
        try:
            return WeeklySchedule.parse(c.device_schedules.get(key, c.schedule))
        except ValueError:  # checked when set; a hand-edited file must not stop the app
            log.warning("mining hours of %s unreadable; ignoring them", key)
            return WeeklySchedule()

    def _slowing(self, info: DeviceInfo, mode: str, away: bool | None) -> bool:
        """Whether `info` works slowed now: auto mode, "slow" policy, the user here (or unknown)."""
        return mode == AUTO and away is not True and self.in_use_policy(info.key) == "slow"

    # ---- state -----------------------------------------------------------------------------------
    def state(self, info: DeviceInfo, mode: str, away: bool | None, watchdog_hold: tuple | None,
              now: datetime | None = None) -> ControlState:
        """Whether device `info` (in `mode`) may run jobs now, and what holds or slows it."""
        now = now or self.now()
        active = is_active(mode, away)
        slowed = max_jobs = None
        hold: Hold | None = None
        if self._slowing(info, mode, away):
            refused = self._refused.get(info.key)
            if info.kind == "cpu":
                active = True
                max_jobs = max(1, self.ctx.settings.jobs.cpu_slots // 2)
                slowed = f"slowed while you use the PC: {max_jobs} job{'s' if max_jobs != 1 else ''} at a time"
            elif refused is None:
                active = True
                limit = self._lowered_to(info)
                slowed = "slowed while you use the PC" + (f": power limit {limit:.0f} W" if limit else "")
            else:
                hold = Hold("in_use", f"stopped while you use the PC (cannot slow down: {refused})", True)
        if watchdog_hold is not None:
            fault, until = watchdog_hold
            hold = Hold("watchdog", f"held by the watchdog: {fault.reason}" +
                        (f"; tried again at {time.strftime('%H:%M:%S', time.localtime(until))}" if until else ""),
                        True, until)
        elif info.key in self.ctx.settings.control.paused:
            hold = Hold("paused", "paused", True)
        elif hold is None and mode != "idle":
            sched = self.schedule(info.key)
            if not sched.allows(now):
                nxt = sched.next_change(now)
                hold = Hold("schedule", f"paused until {describe_until(nxt, now)} (schedule)" if nxt
                            else "paused (schedule)", False, nxt.timestamp() if nxt else None)
        if hold is not None and hold.stops_jobs:
            active = False
        return ControlState(active, hold, slowed if active else None, max_jobs if active else None)

    def _lowered_to(self, info: DeviceInfo) -> float | None:
        limits = self._probe.power_limits_w(info) if info.key in self._lowered else None
        return limits[0] if limits else None

    # ---- power limits ----------------------------------------------------------------------------
    def apply_power(self, devices: tuple[DeviceInfo, ...], modes: dict[str, str], away: bool | None) -> None:
        """Lower the power limit of each GPU that works slowed now; restore the others we lowered.
        Blocking driver calls; a refusal is remembered (that GPU then stops while in use)."""
        pct = self.ctx.settings.control.slow_power_pct
        for d in devices:
            if d.kind == "cpu":
                continue
            want_slow = self._slowing(d, modes.get(d.key, "idle"), away) and d.key not in self._refused
            if want_slow and d.key not in self._lowered:
                limits = self._probe.power_limits_w(d)
                if limits is None:
                    self._refused[d.key] = "the driver does not report its power limit"
                    continue
                current, default, lowest = limits
                target = max(lowest, default * pct / 100.0)
                why = self._probe.set_power_limit_w(d, target)
                if why is not None:
                    self._refused[d.key] = why
                    log.info("%s cannot slow down: %s; it stops while you use the PC", d.id, why)
                    continue
                self._lowered[d.key] = current
                log.info("%s slowed: power limit %.0f W -> %.0f W", d.id, current, target)
            elif not want_slow and d.key in self._lowered:
                self.restore(d)

    def restore(self, info: DeviceInfo) -> None:
        before = self._lowered.pop(info.key, None)
        if before is None:
            return
        why = self._probe.set_power_limit_w(info, before)
        if why is not None:
            log.warning("%s: could not restore its power limit of %.0f W: %s", info.id, before, why)
        else:
            log.info("%s: power limit back to %.0f W", info.id, before)

    def restore_all(self, devices: tuple[DeviceInfo, ...]) -> None:
        """Put back every power limit we lowered (at close)."""
        for d in devices:
            self.restore(d)

    def forget_refusals(self) -> None:
        """Try setting power limits again (the settings changed, or the app got the right)."""
        self._refused.clear()
