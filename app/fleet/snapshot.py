"""A rig at one moment, as the fleet tools see it: its readiness, each device's state and
readings, jobs by state, earnings. Built by the miner's stepping thread after each pass (the
only thread that may read the miner's ledger), read by the metrics server's threads.

Plain frozen dataclasses; floats only for display units (NTK, °C, W), money kept in wei too.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app import __version__
from app.devices import state_word
from app.readiness import Readiness

__all__ = ["DeviceSnapshot", "RigSnapshot", "Readiness", "rig_snapshot", "states_snapshot", "ErrorTally", "rig_name",
           "NTK_WEI"]

NTK_WEI = 10**18


@dataclass(frozen=True)
class DeviceSnapshot:
    device: str            # its label: cuda:0, amd:1, cpu
    key: str
    name: str
    kind: str              # cuda, amd, cpu
    state: str             # app.devices.STATE_WORDS
    reason: str | None = None
    temp_c: float | None = None
    power_w: float | None = None
    util_pct: float | None = None
    mem_used_mb: float | None = None
    jobs_running: int = 0
    earned_today_wei: int = 0
    read_errors_total: int = 0
    watchdog_faults_total: int = 0


@dataclass(frozen=True)
class RigSnapshot:
    rig: str
    version: str
    taken_at: float
    readiness: Readiness
    devices: tuple[DeviceSnapshot, ...]
    jobs_by_state: dict[str, int] = field(default_factory=dict)
    earned_today_wei: int = 0
    earned_total_wei: int = 0


def rig_name() -> str:
    """This rig's name in metrics and alerts: the machine's host name."""
    return socket.gethostname()


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _reason(s: Any) -> str | None:
    hold = getattr(s, "hold", None)
    return (hold.reason if hold is not None else None) or s.throttle_reason or getattr(s, "slowed", None)


class ErrorTally:
    """Read errors per device key, summed over the snapshots the rig has taken (a counter)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, int]] = {}
        self.totals: Counter[str] = Counter()

    def add(self, key: str, telemetry: Any) -> int:
        if telemetry is not None and getattr(telemetry, "errors", 0):
            last = self._seen.get(key)
            if last is None or last[0] != telemetry.timestamp:  # each snapshot counted once
                self.totals[key] += int(telemetry.errors)
                self._seen[key] = (telemetry.timestamp, int(telemetry.errors))
        return self.totals[key]


def rig_snapshot(miner: Any, readiness: Readiness, *, rig: str | None = None, tally: ErrorTally | None = None,
                 now: float | None = None) -> RigSnapshot:
    """The rig now, from MinerService `miner` (its fleet's last device states, its jobs, its
    ledger). Call it on the miner's stepping thread."""
    lines = {d["key"]: int(d.get("earned_today_wei") or 0) for d in miner.device_lines()}
    running: Counter[str] = Counter(rj.device_id for rj in miner.scheduler.running().values())
    try:
        total = int(miner.ledger.total_wei())
    except Exception:  # a ledger that cannot be read now: no total this time, not a failed pass
        total = 0
    return states_snapshot(miner.fleet.states, readiness, watchdog=getattr(miner.fleet.devices, "watchdog", None),
                           running=running, earned_today_wei=lines, jobs_by_state=Counter(r.state for r in miner.rows()),
                           earned_total_wei=total, rig=rig, tally=tally, now=now)


def states_snapshot(states: Any, readiness: Readiness, *, watchdog: Any = None, running: dict[str, int] | None = None,
                    earned_today_wei: dict[str, int] | None = None, jobs_by_state: dict[str, int] | None = None,
                    earned_total_wei: int = 0, rig: str | None = None, tally: ErrorTally | None = None,
                    now: float | None = None) -> RigSnapshot:
    """A snapshot from device states (app.devices.DeviceState) and what the miner adds: jobs
    running per device key, NTK wei earned today per device key, market jobs by state."""
    running, earned = running or {}, earned_today_wei or {}
    devices = []
    for s in states:
        t = s.telemetry
        key = s.info.key
        devices.append(DeviceSnapshot(
            device=s.info.id, key=key, name=s.info.name, kind=s.info.kind, state=state_word(s), reason=_reason(s),
            temp_c=_num(getattr(t, "temp_c", None)), power_w=_num(getattr(t, "power_w", None)),
            util_pct=_num(getattr(t, "util_pct", None)), mem_used_mb=_num(getattr(t, "mem_used_mb", None)),
            jobs_running=running.get(key, 0), earned_today_wei=earned.get(key, 0),
            read_errors_total=tally.add(key, t) if tally is not None else int(getattr(t, "errors", 0) or 0),
            watchdog_faults_total=watchdog.faults_total(key) if watchdog is not None else 0))
    return RigSnapshot(rig=rig or rig_name(), version=__version__, taken_at=time.time() if now is None else now,
                       readiness=readiness, devices=tuple(devices), jobs_by_state=dict(jobs_by_state or {}),
                       earned_today_wei=sum(d.earned_today_wei for d in devices), earned_total_wei=earned_total_wei)

