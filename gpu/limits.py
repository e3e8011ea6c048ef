"""Per-device temperature and power limits, with hysteresis.

A device goes *throttled* when a reading is above its limit (the scheduler then pauses its
job, never kills it) and resumes only once every reading is below its limit minus the
hysteresis, so a card hovering at the limit does not flap. Readings that are NA (not
reported) never throttle. A lost GPU is always throttled.

Units: °C for temperature, W for power. Pure functions: safe from any thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpu.model import Telemetry

__all__ = ["Limits", "Throttle", "NOT_THROTTLED", "evaluate"]


@dataclass(frozen=True)
class Limits:
    """max_temp_c: °C; max_power_w: W or None for no limit; hysteresis_c: °C below the limit
    to resume; power_hysteresis_w: W below the power limit to resume (None: 5 % of it, at least 5 W)."""

    max_temp_c: float = 83.0
    max_power_w: float | None = None
    hysteresis_c: float = 5.0
    power_hysteresis_w: float | None = None

    def power_band_w(self) -> float:
        if self.max_power_w is None:
            return 0.0
        if self.power_hysteresis_w is not None:
            return self.power_hysteresis_w
        return max(5.0, 0.05 * self.max_power_w)


@dataclass(frozen=True)
class Throttle:
    throttled: bool
    reason: str | None = None
    """Why, for people: "temperature 86 °C above limit 83 °C"."""
    causes: frozenset[str] = frozenset()
    """Which limits hold it: {"temp", "power", "lost"}."""


NOT_THROTTLED = Throttle(False, None)


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v - round(v)) < 0.05 else f"{v:.1f}"


def evaluate(limits: Limits, telemetry: Telemetry | None, previous: Throttle = NOT_THROTTLED) -> Throttle:
    """The throttle state after `telemetry`, given the state before it.

    Not throttled -> throttled when temp > max_temp_c or power > max_power_w.
    Throttled -> stays so until temp < max_temp_c - hysteresis_c and power < max_power_w -
    band; while waiting the reason says what it waits for.
    """
    if telemetry is None:
        return previous
    if telemetry.lost:
        return Throttle(True, "GPU is lost (fell off the bus); restart the machine", frozenset({"lost"}))
    temp = _num(telemetry.temp_c)
    power = _num(telemetry.power_w)

    over: list[str] = []
    causes: set[str] = set()
    if temp is not None and temp > limits.max_temp_c:
        over.append(f"temperature {_fmt(temp)} °C above limit {_fmt(limits.max_temp_c)} °C")
        causes.add("temp")
    if power is not None and limits.max_power_w is not None and power > limits.max_power_w:
        over.append(f"power {_fmt(power)} W above limit {_fmt(limits.max_power_w)} W")
        causes.add("power")
    if over:
        return Throttle(True, "; ".join(over), frozenset(causes))
    if not previous.throttled:
        return NOT_THROTTLED

    # Throttled before: resume only once each limit that held it is clearly clear. A reading
    # that went missing for a limit that held it keeps the device held (we cannot tell).
    waiting: list[str] = []
    resume_temp = limits.max_temp_c - limits.hysteresis_c
    if temp is not None and temp >= resume_temp:
        waiting.append(f"temperature {_fmt(temp)} °C, resumes below {_fmt(resume_temp)} °C "
                       f"(limit {_fmt(limits.max_temp_c)} °C)")
        causes.add("temp")
    elif temp is None and "temp" in previous.causes:
        waiting.append("temperature not reported; waiting for a reading")
        causes.add("temp")
    if limits.max_power_w is not None:
        resume_power = limits.max_power_w - limits.power_band_w()
        if power is not None and power >= resume_power:
            waiting.append(f"power {_fmt(power)} W, resumes below {_fmt(resume_power)} W "
                           f"(limit {_fmt(limits.max_power_w)} W)")
            causes.add("power")
        elif power is None and "power" in previous.causes:
            waiting.append("power not reported; waiting for a reading")
            causes.add("power")
    if waiting:
        return Throttle(True, "; ".join(waiting), frozenset(causes))
    return NOT_THROTTLED
