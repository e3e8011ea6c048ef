"""The rig's Prometheus metrics: the names (one table), the text exposition format 0.0.4 writer,
and a bounded parser for reading other rigs' metrics (the Fleet page).

A reading a device does not report is left out (no sample), never written as 0. Money is
written in NTK (a float, for dashboards); the ledger keeps exact wei. Label values are escaped
as the format says (backslash, double quote, new line).

Pure functions; thread-safe.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from app.devices import STATE_WORDS
from app.fleet.snapshot import NTK_WEI, RigSnapshot

__all__ = ["METRICS", "render_metrics", "parse_metrics", "Sample", "MetricsError", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

METRICS: dict[str, tuple[str, str]] = {
    "kminer_rig_info": ("gauge", "The rig: its name and app version (always 1)."),
    "kminer_rig_ready": ("gauge", "1 when the rig can claim jobs now, else 0 (see kminer_rig_not_ready_info)."),
    "kminer_rig_not_ready_info": ("gauge", "Why the rig cannot claim (1 while not ready; reason and code as labels)."),
    "kminer_snapshot_timestamp_seconds": ("gauge", "When these figures were taken (unix seconds)."),
    "kminer_device_info": ("gauge", "A device: its label, stable key, name and kind (always 1)."),
    "kminer_device_state": ("gauge", "1 for the state the device is in, 0 for the others."),
    "kminer_device_temperature_celsius": ("gauge", "Device temperature."),
    "kminer_device_power_watts": ("gauge", "Device power draw."),
    "kminer_device_utilization_ratio": ("gauge", "Device load, 0 to 1."),
    "kminer_device_memory_used_bytes": ("gauge", "Device memory in use."),
    "kminer_device_jobs_running": ("gauge", "Jobs running on the device."),
    "kminer_device_earnings_today_ntk": ("gauge", "NTK earned by the device today."),
    "kminer_device_read_errors_total": ("counter", "Failed driver reads (NVML / AMD SMI errors) since the start."),
    "kminer_device_watchdog_faults_total": ("counter", "Times the watchdog held the device (lost, errors, hung job)."),
    "kminer_jobs": ("gauge", "Market jobs of this miner by state."),
    "kminer_earnings_today_ntk": ("gauge", "NTK earned by the rig today."),
    "kminer_earnings_ntk_total": ("counter", "NTK earned by the rig since its ledger began."),
}
JOB_STATES = ("claiming", "claimed", "running", "uploaded", "submitted", "paid", "rejected", "failed")


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(v: float) -> str:
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


class _Writer:
    def __init__(self) -> None:
        self.samples: dict[str, list[str]] = {name: [] for name in METRICS}

    def add(self, metric: str, value: float | None, **labels: str) -> None:
        if value is None:
            return
        lab = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
        self.samples[metric].append(f"{metric}{{{lab}}} {_value(value)}" if lab else f"{metric} {_value(value)}")

    def text(self) -> str:
        out = []
        for name, (kind, text) in METRICS.items():
            if not self.samples[name]:
                continue
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(self.samples[name])
        return "\n".join(out) + "\n"


def render_metrics(s: RigSnapshot) -> str:
    """The snapshot in the Prometheus text format (what GET /metrics returns)."""
    w = _Writer()
    w.add("kminer_rig_info", 1, rig=s.rig, version=s.version)
    w.add("kminer_rig_ready", 1 if s.readiness.ready else 0)
    if not s.readiness.ready:
        w.add("kminer_rig_not_ready_info", 1, code=s.readiness.code, reason=s.readiness.reason or "")
    w.add("kminer_snapshot_timestamp_seconds", round(s.taken_at, 3))
    for d in s.devices:
        w.add("kminer_device_info", 1, device=d.device, key=d.key, name=d.name, kind=d.kind)
        for state in STATE_WORDS:
            w.add("kminer_device_state", 1 if d.state == state else 0, device=d.device, state=state)
        w.add("kminer_device_temperature_celsius", d.temp_c, device=d.device)
        w.add("kminer_device_power_watts", d.power_w, device=d.device)
        w.add("kminer_device_utilization_ratio", None if d.util_pct is None else round(d.util_pct / 100.0, 4),
              device=d.device)
        w.add("kminer_device_memory_used_bytes", None if d.mem_used_mb is None else int(d.mem_used_mb) * 1024 * 1024,
              device=d.device)
        w.add("kminer_device_jobs_running", d.jobs_running, device=d.device)
        w.add("kminer_device_earnings_today_ntk", d.earned_today_wei / NTK_WEI, device=d.device)
        w.add("kminer_device_read_errors_total", d.read_errors_total, device=d.device)
        w.add("kminer_device_watchdog_faults_total", d.watchdog_faults_total, device=d.device)
    for state in JOB_STATES:
        w.add("kminer_jobs", s.jobs_by_state.get(state, 0), state=state)
    w.add("kminer_earnings_today_ntk", s.earned_today_wei / NTK_WEI)
    w.add("kminer_earnings_ntk_total", s.earned_total_wei / NTK_WEI)
    return w.text()


# ---- reading ------------------------------------------------------------------------------------
MAX_BYTES = 4 << 20
MAX_SAMPLES = 50_000
MAX_LABELS = 16
MAX_LABEL_CHARS = 2048


class MetricsError(ValueError):
    """Text that is not the Prometheus text format (one line, with the line number)."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})')
_UNESCAPE = re.compile(r"\\(.)")


def _float(text: str, where: str) -> float:
    t = text.strip()
    try:
        return {"+Inf": math.inf, "-Inf": -math.inf, "Inf": math.inf, "NaN": math.nan}.get(t) or float(t)
    except ValueError:
        raise MetricsError(f"{where}: {t[:40]!r} is not a number") from None


def parse_metrics(text: str | bytes) -> list[Sample]:
    """The samples in Prometheus text `text` (comments skipped, timestamps ignored).
    MetricsError on malformed input or past the size caps (4 MiB, 50,000 samples)."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise MetricsError(f"more than {MAX_BYTES >> 20} MiB of metrics")
        text = text.decode("utf-8", "replace")
    if len(text) > MAX_BYTES:
        raise MetricsError(f"more than {MAX_BYTES >> 20} MiB of metrics")
    out: list[Sample] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"line {n}"
        m = _NAME.match(line)
        if not m:
            raise MetricsError(f"{where}: no metric name")
        name, rest = m.group(0), line[m.end():]
        labels: dict[str, str] = {}
        if rest.startswith("{"):
            pos = 1
            if rest[1:].lstrip().startswith("}"):
                pos = rest.index("}") + 1
            else:
                while True:
                    lm = _LABEL.match(rest, pos)
                    if not lm:
                        raise MetricsError(f"{where}: bad labels")
                    value = _UNESCAPE.sub(lambda x: "\n" if x.group(1) == "n" else x.group(1), lm.group(2))
                    if len(labels) >= MAX_LABELS or len(value) > MAX_LABEL_CHARS:
                        raise MetricsError(f"{where}: too many or too long labels")
                    labels[lm.group(1)] = value
                    pos = lm.end()
                    if lm.group(3) == "}":
                        break
                    tail = rest[pos:].lstrip()
                    if tail.startswith("}"):  # a trailing comma
                        pos = len(rest) - len(tail) + 1
                        break
            rest = rest[pos:]
        parts = rest.split()
        if not parts or len(parts) > 2:
            raise MetricsError(f"{where}: expected a value")
        out.append(Sample(name, labels, _float(parts[0], where)))
        if len(out) > MAX_SAMPLES:
            raise MetricsError(f"more than {MAX_SAMPLES} samples")
    return out
