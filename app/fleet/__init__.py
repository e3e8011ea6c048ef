"""Rigs at scale: a rig's snapshot and its Prometheus metrics (snapshot, metrics, exporter),
alerts to a webhook (alerts), what a rig does after each miner pass (reporter), and watching
several rigs by their metrics URLs (watch) for the desktop's Fleet page.

Other packages use these public names, never the modules inside.
"""

from app.fleet.alerts import Alert, Alerter, alerts_for
from app.fleet.exporter import MetricsServer
from app.fleet.metrics import CONTENT_TYPE, METRICS, MetricsError, Sample, parse_metrics, render_metrics
from app.fleet.reporter import RigReporter
from app.fleet.snapshot import (DeviceSnapshot, ErrorTally, Readiness, RigSnapshot, rig_name,
                                rig_snapshot, states_snapshot)
from app.fleet.watch import FleetWatcher, RigDevice, RigView, check_metrics_url, view_of

__all__ = ["Alert", "Alerter", "CONTENT_TYPE", "DeviceSnapshot", "ErrorTally", "FleetWatcher", "METRICS", "MetricsError",
           "MetricsServer", "Readiness", "RigDevice", "RigReporter", "RigSnapshot", "RigView", "Sample",
           "alerts_for", "check_metrics_url", "parse_metrics", "render_metrics", "rig_name", "rig_snapshot",
           "states_snapshot", "view_of"]
