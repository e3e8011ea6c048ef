"""Alerts to a webhook: rig offline, device hung, overheating, wallet locked.

`alerts_for(snapshot)` says which conditions hold on a rig now; the Fleet page adds "rig
offline" for a watched rig that stops answering. `Alerter.check(active)` posts each alert
when it starts, again only after `alert_interval_s` while it lasts, and once more when it
clears ("resolved"), so a flapping GPU or a long outage is not a flood.

The POST body is JSON: {"text": one line (what Slack and Mattermost show), "content": the same
(Discord), "kind", "state" ("firing" or "resolved"), "rig", "subject" (a device label or the
rig), "detail", "time" (unix seconds)}. Posting runs on one thread of its own with a 10 s
time limit per request, so a dead webhook never holds up mining; failures go to the log.

Threading: `check()` from one thread (the agent's stepping thread, or the Fleet page's scraper).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Callable, Iterable, Literal

from app.fleet.snapshot import RigSnapshot

log = logging.getLogger(__name__)

__all__ = ["Alert", "Alerter", "alerts_for", "AlertKind"]

AlertKind = Literal["rig_offline", "device_hung", "overheating", "wallet_locked"]
_TITLES = {"rig_offline": "offline", "device_hung": "hung", "overheating": "overheating",
           "wallet_locked": "wallet locked"}


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    rig: str
    subject: str
    detail: str

    @property
    def key(self) -> tuple[str, str, str]:
        return self.kind, self.rig, self.subject

    def line(self, state: str = "firing") -> str:
        head = f"{self.rig}" if self.subject == self.rig else f"{self.rig} {self.subject}"
        if state == "resolved":
            return f"[kminer] resolved: {head} no longer {_TITLES[self.kind]}"
        return f"[kminer] {head} {_TITLES[self.kind]}: {self.detail}"


def alerts_for(s: RigSnapshot) -> list[Alert]:
    """The alert conditions that hold on rig snapshot `s`."""
    out = []
    code = s.readiness.code
    if code == "offline":
        out.append(Alert("rig_offline", s.rig, s.rig, s.readiness.reason or "the chain is unreachable"))
    elif code == "no-signer":  # the wallet is locked and no mining key signs
        out.append(Alert("wallet_locked", s.rig, s.rig, s.readiness.reason or "the wallet is locked"))
    for d in s.devices:
        if d.state in ("held", "lost"):
            out.append(Alert("device_hung", s.rig, d.device, d.reason or d.state))
        elif d.state == "throttled" and d.reason and "temperature" in d.reason:
            out.append(Alert("overheating", s.rig, d.device, d.reason))
    return out


def _http_post(url: str, body: bytes, timeout_s: float) -> int:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", "User-Agent": "kminer-alerts"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 (http/https checked below)
        return resp.status


class Alerter:
    """See the module docstring. `url()` and `interval_s()` read the settings at each call;
    `post(url, body, timeout_s)` sends (default: urllib); `clock` is monotonic seconds."""

    def __init__(self, url: Callable[[], str | None], interval_s: Callable[[], float], *,
                 post: Callable[[str, bytes, float], int] | None = None, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, timeout_s: float = 10.0):
        self._url, self._interval = url, interval_s
        self._post = post or _http_post
        self._clock, self._wall = clock, wall
        self._timeout_s = timeout_s
        self._last_sent: dict[tuple[str, str, str], float] = {}
        self._firing: dict[tuple[str, str, str], Alert] = {}
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(200)
        self._thread: threading.Thread | None = None
        self.sent: list[tuple[str, Alert]] = []
        """(state, alert) of every alert handed to the poster (newest last; tests, the log)."""

    def check(self, active: Iterable[Alert], *, scope: Callable[[Alert], bool] = lambda a: True) -> list[tuple[str, Alert]]:
        """Send what `active` (all conditions holding now, within `scope`) calls for; returns
        [(state, alert)] sent this time. Alerts outside `scope` are left as they are."""
        url = (self._url() or "").strip()
        now = self._clock()
        interval = self._interval()
        current = {a.key: a for a in active}
        out: list[tuple[str, Alert]] = []
        for key, a in current.items():
            last = self._last_sent.get(key)
            if key not in self._firing or last is None or now - last >= interval:
                out.append(("firing", a))
                self._last_sent[key] = now
            self._firing[key] = a
        for key, a in list(self._firing.items()):
            if key not in current and scope(a):
                del self._firing[key]
                self._last_sent.pop(key, None)
                out.append(("resolved", a))
        for state, a in out:
            (log.warning if state == "firing" else log.info)("alert: %s", a.line(state))
            self.sent.append((state, a))
            if url:
                self._enqueue(url, a, state)
        return out

    def _enqueue(self, url: str, a: Alert, state: str) -> None:
        if not url.startswith(("http://", "https://")):
            log.warning("alert webhook %r is not an http(s) URL; alert not sent", url)
            return
        body = json.dumps({"text": a.line(state), "content": a.line(state), "kind": a.kind, "state": state,
                           "rig": a.rig, "subject": a.subject, "detail": a.detail, "time": round(self._wall(), 3)})
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="alerts", daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait((url, body.encode()))
        except queue.Full:
            log.warning("alert webhook backlog full; %s dropped", a.line(state))

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                url, body = item
                status = self._post(url, body, self._timeout_s)
                if not 200 <= status < 300:
                    log.warning("alert webhook answered HTTP %s", status)
            except Exception as e:  # a webhook down or refusing: logged, mining goes on
                log.warning("alert webhook failed: %s", e)
            finally:
                self._queue.task_done()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until the alerts handed over so far were posted (or failed); False on time-out."""
        end = time.monotonic() + timeout_s
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._queue.all_tasks_done.wait(left)
        return True

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(self._timeout_s + 1)
            self._thread = None
