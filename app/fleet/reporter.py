"""What a mining rig does for the fleet after each miner pass: take a snapshot, serve it as
Prometheus metrics (when a port is set), and raise alerts to the webhook (when one is set).

Used by `kminer agent`; the metrics port is read at start (a new port needs a restart), the
webhook and its interval at each pass. Threading: `after_pass()` on the miner's stepping thread.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from app.fleet.alerts import Alerter, alerts_for
from app.fleet.exporter import MetricsServer
from app.fleet.snapshot import ErrorTally, Readiness, RigSnapshot, rig_snapshot

log = logging.getLogger(__name__)

__all__ = ["RigReporter"]


class RigReporter:
    """`ctx`: the AppContext (Settings.fleet); `readiness(miner)`: can the rig claim now
    (app.readiness.Readiness, from the rule app.rig applies)."""

    def __init__(self, ctx: Any, *, rig: str | None = None,
                 readiness: Callable[[Any], Readiness], alerter: Alerter | None = None):
        self.ctx = ctx
        self.rig = rig
        self._readiness = readiness
        self._tally = ErrorTally()
        self.server: MetricsServer | None = None
        self.alerter = alerter or Alerter(lambda: self.ctx.settings.fleet.alert_webhook_url,
                                          lambda: self.ctx.settings.fleet.alert_interval_s)
        self.last: RigSnapshot | None = None

    def start(self) -> str | None:
        """Start serving metrics if a port is set; its URL, or None when off. OSError (port
        taken, address not here) for the caller to say in one line."""
        f = self.ctx.settings.fleet
        if not f.metrics_port:
            return None
        self.server = MetricsServer(f.metrics_host, f.metrics_port).start()
        return self.server.url

    def after_pass(self, miner: Any) -> RigSnapshot:
        snap = rig_snapshot(miner, self._readiness(miner), rig=self.rig, tally=self._tally)
        self.last = snap
        if self.server is not None:
            self.server.update(snap)
        self.alerter.check(alerts_for(snap), scope=lambda a: a.rig == snap.rig)
        return snap

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.alerter.close()
