"""The rig's devices as the miner sees them in one pass: their states (mode, throttle, telemetry),
the scheduler's view of them (each by its stable DeviceId key), their slots, and what runs where.

Threading: `poll()` on the miner's stepping thread; the scheduler reads `job_devices()` from its
own threads (it only reads the list of states taken at the last poll).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from app.context import AppContext
from jobs.execute import Device

log = logging.getLogger("app.miner.service")


class Fleet:
    """devices: `poll() -> list[DeviceState]` (app.devices.DeviceService); earnings: an
    app.earnings.EarningsService that records the devices' power each pass, or None."""

    def __init__(self, ctx: AppContext, devices, earnings=None):
        self.ctx = ctx
        self.devices = devices
        self.earnings = earnings
        self.states: list[Any] = []

    def poll(self) -> list:
        """Read every device now (and feed its power to the earnings ledger)."""
        self.states = list(self.devices.poll())
        if self.earnings is not None:
            try:
                self.earnings.record_states(self.states)
            except Exception:
                log.exception("recording device power failed")
        return self.states

    def job_devices(self) -> list[Device]:
        """The devices as the scheduler sees them: each by its stable key (DeviceId)."""
        out = []
        for s in self.states:
            mem = s.info.memory_total_mb if isinstance(s.info.memory_total_mb, (int, float)) else 0
            bus = getattr(s.info, "pci_bus_id", None)
            out.append(Device.of(s.info.ident, memory_mb=0 if s.info.kind == "cpu" else int(mem), active=s.active,
                                 throttled=s.throttled, slots=self.capacity(s), accepts_new=self.may_claim(s),
                                 capabilities=s.info.capabilities, pci_bus_id=bus if isinstance(bus, str) else None))
        return out

    @staticmethod
    def may_claim(s) -> bool:
        """Whether device state `s` may take a new job now: active, not throttled, not held
        (paused, outside its mining hours, held by the watchdog)."""
        return s.active and not s.throttled and getattr(s, "hold", None) is None

    # ---- the watchdog (app.devices.Watchdog, when the devices have one) ---------------------
    def job_event(self, queue_id: str, msg: Mapping[str, Any]) -> None:
        """A running job's message: its progress tells the watchdog it is alive."""
        wd = getattr(self.devices, "watchdog", None)
        if wd is not None:
            wd.job_event(queue_id, dict(msg))

    def jobs_to_fail(self, running: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(queue id, reason) of running jobs the watchdog wants failed: their GPU is lost or
        failing, or they stopped reporting progress."""
        wd = getattr(self.devices, "watchdog", None)
        if wd is None:
            return []
        return wd.jobs_to_fail({q: (rj.device_id, rj.paused) for q, rj in running.items()})

    def known_key(self, jobs_device_id: str | None) -> str | None:
        """The key of a device of this rig that the job queue names (it names devices by key)."""
        return jobs_device_id if any(s.info.key == jobs_device_id for s in self.states) else None

    def capacity(self, s) -> int:
        """Jobs device state `s` runs at once: the CPU's slots setting, one per GPU (fewer while slowed)."""
        n = self.ctx.settings.jobs.cpu_slots if s.info.ident.is_cpu else 1
        return min(n, getattr(s, "max_jobs", None) or n)

    def running_by_key(self, running: Mapping[str, Any]) -> dict[str, int]:
        """Running jobs per device key, from the scheduler's `running()`."""
        out: dict[str, int] = {}
        for rj in running.values():
            k = self.known_key(rj.device_id)
            if k:
                out[k] = out.get(k, 0) + 1
        return out

    def free_slots(self, busy: int) -> int:
        """Slots of the devices that may mine now, less `busy` jobs claimed or running."""
        return sum(self.capacity(s) for s in self.states if self.may_claim(s)) - busy
