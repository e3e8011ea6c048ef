"""Watching several rigs by their metrics URLs (the desktop's Fleet page).

`FleetWatcher.scrape()` fetches every URL at once (a small thread pool, a time limit each),
parses the metrics (bounded: app.fleet.metrics) and returns one `RigView` per rig: online or
not, when last seen, its devices' states and readings, jobs, earnings today. A rig that stops
answering keeps its last view, marked offline, with the error; it raises a "rig offline"
alert (app.fleet.alerts) when a webhook is set.

The URLs are `Settings.fleet.rigs` (add/remove save them). Threading: `scrape()` blocks (up to
the time limit) and must run off the GUI thread; one scrape at a time.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Callable

from app.fleet.alerts import Alert, Alerter
from app.fleet.metrics import MAX_BYTES, MetricsError, Sample, parse_metrics

log = logging.getLogger(__name__)

__all__ = ["FleetWatcher", "RigView", "RigDevice", "check_metrics_url", "view_of"]


@dataclass(frozen=True)
class RigDevice:
    device: str
    name: str
    kind: str
    state: str
    temp_c: float | None = None
    power_w: float | None = None
    util_pct: float | None = None
    jobs_running: int = 0


@dataclass(frozen=True)
class RigView:
    """One watched rig as last seen. `online`: the last scrape answered; `last_seen`: unix
    seconds of the last answer (None: never); `error`: why the last scrape failed."""

    url: str
    online: bool = False
    rig: str | None = None
    version: str | None = None
    last_seen: float | None = None
    error: str | None = None
    ready: bool | None = None
    reason: str | None = None
    devices: tuple[RigDevice, ...] = ()
    jobs_running: int = 0
    earned_today_ntk: float = 0.0
    scrape_s: float | None = None
    size_bytes: int = 0

    @property
    def name(self) -> str:
        return self.rig or urllib.parse.urlsplit(self.url).netloc or self.url


def check_metrics_url(text: str) -> str:
    """A rig's metrics URL as typed: http(s)://host:port[/metrics]; "/metrics" added when no path.
    ValueError in one line otherwise."""
    t = (text or "").strip()
    if "://" not in t:
        t = "http://" + t
    u = urllib.parse.urlsplit(t)
    if u.scheme not in ("http", "https") or not u.hostname or " " in t:
        raise ValueError(f"{text.strip()!r} is not a metrics URL; write e.g. http://192.168.1.20:9108/metrics")
    try:
        u.port
    except ValueError:
        raise ValueError(f"{text.strip()!r} has a bad port") from None
    if u.path in ("", "/"):
        u = u._replace(path="/metrics")
    return urllib.parse.urlunsplit(u)


def _fetch(url: str, timeout_s: float) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": "text/plain", "User-Agent": "kminer-fleet"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 (checked: http/https)
        body = resp.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise MetricsError(f"more than {MAX_BYTES >> 20} MiB of metrics")
    return body


def view_of(url: str, samples: list[Sample], *, now: float, scrape_s: float, size: int) -> RigView:
    """A RigView from a rig's samples (unknown metrics ignored)."""
    info: dict[str, dict[str, str]] = {}
    state: dict[str, str] = {}
    num: dict[tuple[str, str], float] = {}
    rig = version = reason = None
    ready: bool | None = None
    jobs_running = 0
    today = 0.0
    for s in samples:
        dev = s.labels.get("device")
        if s.name == "kminer_rig_info":
            rig, version = s.labels.get("rig"), s.labels.get("version")
        elif s.name == "kminer_rig_ready":
            ready = s.value == 1
        elif s.name == "kminer_rig_not_ready_info":
            reason = s.labels.get("reason")
        elif s.name == "kminer_device_info" and dev:
            info[dev] = s.labels
        elif s.name == "kminer_device_state" and dev and s.value == 1:
            state[dev] = s.labels.get("state", "?")
        elif s.name == "kminer_jobs" and s.labels.get("state") == "running":
            jobs_running = int(s.value)
        elif s.name == "kminer_earnings_today_ntk":
            today = s.value
        elif dev:
            num[(s.name, dev)] = s.value
    devices = []
    for dev, lab in info.items():
        util = num.get(("kminer_device_utilization_ratio", dev))
        devices.append(RigDevice(dev, lab.get("name", dev), lab.get("kind", "?"), state.get(dev, "?"),
                                 num.get(("kminer_device_temperature_celsius", dev)),
                                 num.get(("kminer_device_power_watts", dev)),
                                 None if util is None else util * 100.0,
                                 int(num.get(("kminer_device_jobs_running", dev), 0))))
    return RigView(url, True, rig, version, now, None, ready, reason, tuple(devices), jobs_running, today,
                   scrape_s, size)


class FleetWatcher:
    """See the module docstring. `urls()` gives the watched URLs (read at each scrape);
    `alerter`: an Alerter for "rig offline" (None: no alerts); `fetch(url, timeout_s)`: bytes."""

    def __init__(self, urls: Callable[[], list[str]], *, timeout_s: float = 3.0, max_workers: int = 8,
                 alerter: Alerter | None = None, fetch: Callable[[str, float], bytes] | None = None,
                 clock: Callable[[], float] = time.time):
        self._urls = urls
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fleet-scrape")
        self._fetch = fetch or _fetch
        self._clock = clock
        self.alerter = alerter
        self.views: dict[str, RigView] = {}

    def _one(self, url: str) -> RigView:
        t0 = time.perf_counter()
        try:
            body = self._fetch(url, self.timeout_s)
            samples = parse_metrics(body)
        except Exception as e:  # unreachable, refused, timed out, not metrics: offline with the reason
            old = self.views.get(url) or RigView(url)
            return replace(old, online=False, error=_short(e))
        return view_of(url, samples, now=self._clock(), scrape_s=time.perf_counter() - t0, size=len(body))

    def scrape(self) -> list[RigView]:
        """Every watched rig now, in the order of the URLs (blocking, in parallel)."""
        urls = list(dict.fromkeys(self._urls()))
        views = list(self._pool.map(self._one, urls))
        self.views = {v.url: v for v in views}
        if self.alerter is not None:
            offline = [Alert("rig_offline", v.name, v.name, f"{v.url} does not answer ({v.error})")
                       for v in views if not v.online and v.last_seen is not None]
            self.alerter.check(offline, scope=lambda a: a.kind == "rig_offline")  # a rig removed: resolved too
        return views

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _short(e: BaseException) -> str:
    reason: Any = getattr(e, "reason", None)
    text = str(reason if reason is not None else e) or type(e).__name__
    return text.splitlines()[0][:200]
