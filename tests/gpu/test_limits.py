"""Temperature and power limits with hysteresis."""

from __future__ import annotations

import time

from gpu.limits import NOT_THROTTLED, Limits, evaluate
from gpu.model import Telemetry
from gpu.na import NA


def tel(temp=60.0, power=100.0, lost=False):
    return Telemetry(timestamp=time.time(), temp_c=temp, power_w=power, lost=lost)


def run(limits, readings):
    state, out = NOT_THROTTLED, []
    for r in readings:
        state = evaluate(limits, r, state)
        out.append(state)
    return out


def test_temperature_throttles_above_limit_and_resumes_only_below_limit_minus_hysteresis():
    lim = Limits(max_temp_c=83, hysteresis_c=5)
    temps = [80, 83, 86, 82, 79, 78.5, 77.9, 80]
    states = run(lim, [tel(t) for t in temps])
    assert [s.throttled for s in states] == [False, False, True, True, True, True, False, False]
    assert states[2].reason == "temperature 86 °C above limit 83 °C"
    assert states[4].reason == "temperature 79 °C, resumes below 78 °C (limit 83 °C)"
    assert states[6].reason is None


def test_power_limit_with_its_band():
    lim = Limits(max_temp_c=90, max_power_w=200)  # band: 5 % of 200 W = 10 W
    states = run(lim, [tel(power=p) for p in (150, 205, 195, 189)])
    assert [s.throttled for s in states] == [False, True, True, False]
    assert states[1].reason == "power 205 W above limit 200 W"
    assert "resumes below 190 W" in states[2].reason


def test_both_limits_are_named():
    s = evaluate(Limits(max_temp_c=80, max_power_w=100), tel(85, 120))
    assert s.throttled and "temperature 85 °C" in s.reason and "power 120 W" in s.reason


def test_no_power_limit_and_na_readings_never_throttle():
    assert not evaluate(Limits(max_temp_c=80), tel(70, 999)).throttled
    assert not evaluate(Limits(max_temp_c=80, max_power_w=50), tel(NA, NA)).throttled


def test_missing_reading_keeps_a_device_held_by_that_limit_only():
    lim = Limits(max_temp_c=80, max_power_w=100, hysteresis_c=5)
    hot = evaluate(lim, tel(85, 50))
    assert hot.causes == {"temp"}
    held = evaluate(lim, tel(NA, 50), hot)
    assert held.throttled and "temperature not reported" in held.reason
    assert not evaluate(lim, tel(70, 50), held).throttled
    power_held = evaluate(lim, tel(60, 120))
    # the temperature sensor is missing, but power held it: temperature alone does not keep it
    assert not evaluate(lim, tel(NA, 80), power_held).throttled


def test_limit_lowered_below_the_current_reading_throttles_at_once():
    s = evaluate(Limits(max_temp_c=83), tel(70))
    assert not s.throttled
    s = evaluate(Limits(max_temp_c=65), tel(70), s)
    assert s.throttled and s.reason == "temperature 70 °C above limit 65 °C"


def test_lost_gpu_is_throttled_and_no_reading_keeps_the_state():
    lim = Limits()
    lost = evaluate(lim, tel(lost=True))
    assert lost.throttled and "lost" in lost.reason
    assert evaluate(lim, None, lost) is lost
