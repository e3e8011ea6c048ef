"""The metrics text: Prometheus's own parser reads it as we mean it; our bounded parser agrees."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.fleet import METRICS, MetricsError, Readiness, parse_metrics, render_metrics

NTK = 10**18


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_an_eight_gpu_rig_in_the_text_format(standin_rig8):
    snap = standin_rig8.snapshot(jobs_by_state={"running": 3, "paid": 10}, running={}, earned_today_wei={"cpu": 2 * NTK},
                                 earned_total_wei=25 * NTK)
    text = render_metrics(snap)
    fam = families(text)
    # prometheus_client drops the _total suffix from counter family names
    assert fam["kminer_device_watchdog_faults"].type == "counter" and fam["kminer_device_temperature_celsius"].type == "gauge"
    temps = {s.labels["device"]: s.value for s in fam["kminer_device_temperature_celsius"].samples}
    temps.pop("cpu", None)  # where the kernel exposes a CPU sensor
    assert temps == {f"cuda:{i}": 58.0 + i for i in range(8)}
    power = {s.labels["device"]: s.value for s in fam["kminer_device_power_watts"].samples}
    assert "cpu" not in power and power["cuda:3"] == pytest.approx(113.0)  # a missing reading: no sample, never 0
    states = [(s.labels["device"], s.labels["state"]) for s in fam["kminer_device_state"].samples if s.value == 1]
    assert states == [(f"cuda:{i}", "mining") for i in range(8)] + [("cpu", "mining")]
    assert {s.labels["state"]: s.value for s in fam["kminer_jobs"].samples}["running"] == 3
    assert fam["kminer_earnings_ntk"].samples[0].value == 25.0
    assert fam["kminer_rig_ready"].samples[0].value == 1 and "kminer_rig_not_ready_info" not in fam
    ours = parse_metrics(text)
    theirs = [s for f in fam.values() for s in f.samples]
    assert len(ours) == len(theirs) == 173
    assert {(s.name, tuple(sorted(s.labels.items())), s.value) for s in ours} == \
        {(s.name, tuple(sorted(s.labels.items())), s.value) for s in theirs}
    assert set(fam) <= {n.removesuffix("_total") for n in METRICS}


def test_held_lost_and_not_ready_are_in_the_metrics(standin_rig8):
    standin_rig8.nv.lose(2)
    standin_rig8.devices.set_paused("cuda:5", True)
    snap = standin_rig8.snapshot(Readiness(False, "offline", 'waiting for RPC (retry in 8 s) "node"\ndown'))
    fam = families(render_metrics(snap))
    on = {s.labels["device"]: s.labels["state"] for s in fam["kminer_device_state"].samples if s.value == 1}
    assert on["cuda:2"] == "lost" and on["cuda:5"] == "paused" and on["cuda:0"] == "mining"
    faults = {s.labels["device"]: s.value for s in fam["kminer_device_watchdog_faults"].samples}
    assert faults["cuda:2"] == 1 and faults["cuda:0"] == 0
    (why,) = fam["kminer_rig_not_ready_info"].samples
    assert why.labels == {"code": "offline", "reason": 'waiting for RPC (retry in 8 s) "node"\ndown'}  # escaped, round trip
    assert fam["kminer_rig_ready"].samples[0].value == 0


def test_label_values_with_quotes_backslashes_and_new_lines_round_trip():
    text = 'm{a="x\\"y\\\\z\\nw",b="",} 1.5 1700000000000\nn 2\nn{} NaN\n'
    ours = parse_metrics(text)
    assert ours[0].labels == {"a": 'x"y\\z\nw', "b": ""} and ours[0].value == 1.5
    assert ours[1].value == 2 and math.isnan(ours[2].value)
    theirs = [s for f in text_string_to_metric_families(text) for s in f.samples]
    assert theirs[0].labels == ours[0].labels


@pytest.mark.parametrize("text, words", [
    ("9bad 1", "line 1: no metric name"), ('m{a=x} 1', "line 1: bad labels"), ("m", "expected a value"),
    ("m one", "is not a number"), ("m{" + ",".join(f'l{i}="v"' for i in range(20)) + "} 1", "too many"),
])
def test_malformed_metrics_are_one_line_errors(text, words):
    with pytest.raises(MetricsError, match=words):
        parse_metrics(text)


def test_oversized_metrics_are_refused_before_parsing():
    with pytest.raises(MetricsError, match="MiB"):
        parse_metrics(b"m 1\n" * (1 << 21))
