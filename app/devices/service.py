"""DeviceService: the devices as the UI and the CLI see them.

It discovers devices once (NVML GPUs + the CPU), and on each `poll()` reads every device's
telemetry, asks whether the user is away, and updates each device's throttle state against
its limits (with hysteresis). Modes and limits live in the settings, keyed by the device's
stable key (GPU uuid or "cpu"), and are saved at once when changed.

Beyond the mode (app.devices.control): a device can be paused by the user, held by the watchdog
(app.devices.watchdog: lost GPU, driver errors, a hung job), outside its mining hours, or slowed
while the user is at the PC; `DeviceState.hold` and `.slowed` say so, and `active` is False
while a hold stops its jobs.

Threading: `poll()` blocks (NVML and sensor reads; ~1 ms on a CPU-only machine) and is
meant for an executor thread at ~1 Hz; `states()` returns the cached result and is cheap.
Every public method is thread-safe. Settings are saved under the service's lock.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import ValidationError

from app.context import AppContext
from app.devices.control import DeviceControl, Hold
from app.devices.idle import IdleDetector
from app.devices.watchdog import Watchdog
from common.schedule import check_schedule
from gpu.bench import BenchStore
from gpu.devices import NA, DeviceInfo, DeviceProbe, NAType, Telemetry, is_na, na_to_none
from gpu.limits import NOT_THROTTLED, Limits, Throttle, evaluate
from gpu.modes import MODES, validate_mode

log = logging.getLogger(__name__)

# Re-exported for ui/, which may import app/ only.
__all__ = ["DeviceService", "DeviceState", "UNCHANGED", "DeviceInfo", "Telemetry", "NA", "NAType", "is_na",
           "na_to_none", "MODES"]


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()
"""Default of `set_limits` arguments: leave that limit as it is."""


@dataclass(frozen=True)
class DeviceState:
    """One device as shown: fixed info, latest telemetry (None before the first poll), its
    mode, whether it should take work now (`active`), and whether its limits hold it back."""

    info: DeviceInfo
    telemetry: Telemetry | None
    mode: str
    active: bool
    throttled: bool
    throttle_reason: str | None
    max_temp_c: float
    max_power_w: float | None
    hold: Hold | None = None
    """Why it takes no new job (paused, watchdog, schedule, in use), or None."""
    slowed: str | None = None
    """How it is slowed while the user is at the PC ("power limit 132 W"), or None."""
    max_jobs: int | None = None
    """Fewer jobs at once than its slots while slowed, or None."""
    in_use: str = "stop"
    """In auto mode, while the user is at the PC: "stop" or "slow"."""


class DeviceService:
    """Devices, their modes, limits and live state. See the module docstring for threading.

    nvml_module: pynvml (default) or a stand-in (tests); amd_module: amdsmi or its stand-in.
    idle: a callable giving seconds since the last user input, or None when unknown (default:
    app.devices.IdleDetector).
    """

    def __init__(self, ctx: AppContext, *, nvml_module: Any = None, amd_module: Any = None,
                 idle: Callable[[], float | None] | None = None):
        self.ctx = ctx
        self._lock = threading.RLock()
        self._poll_lock = threading.Lock()
        self._owns_idle = idle is None
        if idle is None:
            self._idle_detector: Any = IdleDetector()
            idle = self._idle_detector.idle_seconds
        self._idle = idle
        self._probe = DeviceProbe(nvml_module, amd_module=amd_module)
        self.watchdog = Watchdog(lambda: self.ctx.settings.watchdog)
        self.control = DeviceControl(ctx, self._probe)
        self.message: str | None = self._probe.discovery.message
        """One line when no GPU can be used (no NVML, no GPU), else None."""
        self.notes: tuple[str, ...] = self._probe.discovery.notes
        self._devices: tuple[DeviceInfo, ...] = self._probe.devices
        self._telemetry: dict[str, Telemetry | None] = {d.id: None for d in self._devices}
        self._throttle: dict[str, Throttle] = {d.id: NOT_THROTTLED for d in self._devices}
        self._away: bool | None = None
        self._states: list[DeviceState] = self._build_states()
        if self.message:
            log.info("%s", self.message)

    # ---- lookup ---------------------------------------------------------------------------
    @property
    def devices(self) -> tuple[DeviceInfo, ...]:
        return self._devices

    def device(self, device_id: str) -> DeviceInfo:
        """The device with id ("cpu", "cuda:N") or key (GPU uuid); ValueError if none."""
        for d in self._devices:
            if device_id in (d.id, d.key):
                return d
        known = ", ".join(d.id for d in self._devices)
        raise ValueError(f"no device {device_id!r}; known devices: {known}")

    # ---- state ----------------------------------------------------------------------------
    def _build_states(self) -> list[DeviceState]:
        out = []
        for d in self._devices:
            s = self.ctx.settings.device(d.key)
            th = self._throttle[d.id]
            c = self.control.state(d, s.mode, self._away, self.watchdog.hold(d.key))
            out.append(DeviceState(
                info=d, telemetry=self._telemetry[d.id], mode=s.mode,
                active=c.active,
                throttled=th.throttled, throttle_reason=th.reason,
                max_temp_c=s.max_temp_c, max_power_w=s.max_power_w,
                hold=c.hold, slowed=c.slowed, max_jobs=c.max_jobs, in_use=self.control.in_use_policy(d.key),
            ))
        return out

    def states(self) -> list[DeviceState]:
        """The latest states (cached; no device reads). Cheap, thread-safe."""
        with self._lock:
            return list(self._states)

    def state(self, device_id: str) -> DeviceState:
        d = self.device(device_id)
        with self._lock:
            return next(s for s in self._states if s.info.id == d.id)

    def user_away(self) -> bool | None:
        """Whether the user has been away `general.away_minutes`; None when unknown."""
        try:
            idle_s = self._idle()
        except Exception:  # a broken detector means "unknown", never a guess
            log.debug("idle detector failed", exc_info=True)
            idle_s = None
        if idle_s is None:
            return None
        return idle_s >= self.ctx.settings.general.away_minutes * 60.0

    def poll(self) -> list[DeviceState]:
        """Read every device's telemetry and the away state, update throttling; blocking.
        Call ~1/s from a worker thread. Returns the new states."""
        with self._poll_lock:
            readings = {d.id: self._probe.telemetry(d) for d in self._devices}
            away = self.user_away()
            for d in self._devices:
                if self.watchdog.observe(d, readings[d.id]):
                    self._probe.retry(d)  # its back-off is over: ask the driver afresh next time
            self.control.apply_power(self._devices, {d.key: self.ctx.settings.device(d.key).mode for d in self._devices},
                                     away)
            with self._lock:
                for d in self._devices:
                    s = self.ctx.settings.device(d.key)
                    limits = Limits(s.max_temp_c, s.max_power_w, s.hysteresis_c)
                    self._throttle[d.id] = evaluate(limits, readings[d.id], self._throttle[d.id])
                self._telemetry.update(readings)
                self._away = away
                self._states = self._build_states()
                return list(self._states)

    # ---- changes --------------------------------------------------------------------------
    def set_mode(self, device_id: str, mode: str) -> None:
        """Put a device in idle / mining / auto and save the settings. ValueError on a bad id or mode."""
        validate_mode(mode)
        d = self.device(device_id)
        with self._lock:
            self.ctx.settings.device(d.key).mode = mode  # type: ignore[assignment]
            self.ctx.save_settings()
            self._states = self._build_states()
        log.info("device %s mode -> %s", d.id, mode)

    def set_all_modes(self, mode: str) -> None:
        """Put every device in `mode` (tray: start/stop mining all) and save once."""
        validate_mode(mode)
        with self._lock:
            for d in self._devices:
                self.ctx.settings.device(d.key).mode = mode  # type: ignore[assignment]
            self.ctx.save_settings()
            self._states = self._build_states()
        log.info("all devices mode -> %s", mode)

    def set_limits(self, device_id: str, *, max_temp_c: float | None = UNCHANGED,
                   max_power_w: float | None = UNCHANGED) -> None:
        """Set a device's limits and save. max_temp_c in °C (None or omitted: unchanged);
        max_power_w in W, None for no power limit (omitted: unchanged).
        ValueError on a bad id or an out-of-range value; nothing is changed then."""
        d = self.device(device_id)
        with self._lock:
            current = self.ctx.settings.device(d.key)
            update: dict[str, Any] = {}
            if max_temp_c is not UNCHANGED and max_temp_c is not None:
                update["max_temp_c"] = max_temp_c
            if max_power_w is not UNCHANGED:
                update["max_power_w"] = max_power_w
            try:
                new = type(current).model_validate({**current.model_dump(), **update})
            except ValidationError as e:
                first = e.errors()[0]
                field = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"invalid {field} for {d.id}: {first['msg']}") from None
            self.ctx.settings.devices[d.key] = new
            self.ctx.save_settings()
            self._states = self._build_states()
        log.info("device %s limits: %s", d.id, update)

    def set_paused(self, device_id: str, paused: bool) -> None:
        """Pause one device (no new job; its running job is paused) or resume it, and save.
        Resuming also ends a watchdog hold in this process (the user says: try it now)."""
        d = self.device(device_id)
        with self._lock:
            control = self.ctx.settings.control
            if paused:
                control.paused[d.key] = time.time()
            else:
                control.paused.pop(d.key, None)
                self.watchdog.release(d.key)
            self.ctx.save_settings()
            self._states = self._build_states()
        log.info("device %s %s", d.id, "paused" if paused else "resumed")

    def set_schedule(self, device_id: str | None, text: str | None) -> str:
        """Set the mining hours of one device (`device_id`), or of the rig (None); None or "" as a
        device's text: it follows the rig's again. Returns the schedule as saved. ValueError
        (one line) on a bad id or schedule; nothing changes then."""
        clean = check_schedule(text)
        with self._lock:
            control = self.ctx.settings.control
            if device_id is None:
                control.schedule = clean
            else:
                key = self.device(device_id).key
                if text is None or not text.strip():
                    control.device_schedules.pop(key, None)
                else:
                    control.device_schedules[key] = clean
            self.ctx.save_settings()
            self._states = self._build_states()
        return clean

    def set_in_use(self, device_id: str | None, policy: str) -> None:
        """What a device in auto mode does while the user is at the PC: "stop" or "slow" (one
        device, or the rig's default with None). ValueError on a bad id or policy."""
        if policy not in ("stop", "slow"):
            raise ValueError(f"unknown choice {policy!r}; use stop or slow")
        with self._lock:
            control = self.ctx.settings.control
            if device_id is None:
                control.while_in_use = policy  # type: ignore[assignment]
            else:
                control.device_in_use[self.device(device_id).key] = policy  # type: ignore[assignment]
            self.control.forget_refusals()
            self.ctx.save_settings()
            self._states = self._build_states()

    # ---- benchmarks -----------------------------------------------------------------------
    def benchmark(self, device_id: str) -> dict | None:
        """The latest stored benchmark of a device (see gpu.bench), or None."""
        d = self.device(device_id)
        try:
            return BenchStore(self.ctx.paths.bench_file).latest(d.key)
        except (OSError, ValueError, json.JSONDecodeError):
            log.warning("benchmark file %s unreadable", self.ctx.paths.bench_file, exc_info=True)
            return None

    def close(self) -> None:
        """Put back power limits lowered while slowed, shut NVML down and close the X
        connection. Safe to call twice."""
        try:
            self.control.restore_all(self._devices)
        except Exception:
            log.exception("restoring power limits")
        self._probe.close()
        if self._owns_idle:
            self._idle_detector.close()

