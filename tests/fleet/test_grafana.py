"""The Grafana dashboard in resources/ asks only for metrics the exporter really writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from app.fleet import METRICS, Readiness, parse_metrics, render_metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "resources" / "grafana" / "kminer-rigs.json"


def _exprs(dash: dict) -> list[str]:
    out = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    out += [v["query"]["query"] for v in dash["templating"]["list"] if v.get("type") == "query"]
    return out


def test_every_metric_the_dashboard_uses_is_produced_by_the_exporter(standin_rig8):
    dash = json.loads(DASHBOARD.read_text())
    standin_rig8.nv.lose(1)
    produced = set()
    for readiness in (Readiness(True, "ready", "Ready for jobs"), Readiness(False, "offline", "waiting for RPC")):
        produced |= {s.name for s in parse_metrics(render_metrics(standin_rig8.snapshot(readiness)))}
    used = {m for e in _exprs(dash) for m in re.findall(r"\bkminer_[a-z_]+\b", e)}
    assert used and used <= produced, used - produced
    assert used == set(METRICS), set(METRICS) - used  # every metric has a panel


def test_dashboard_is_importable_grafana_json():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "kminer-rigs" and dash["__inputs"][0]["name"] == "DS_PROMETHEUS"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        assert {"x", "y", "w", "h"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs))
        assert all(t["expr"].count("(") == t["expr"].count(")") for t in p["targets"])
        assert all('instance=~"$instance"' in t["expr"] for t in p["targets"])
