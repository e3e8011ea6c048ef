"""The Fleet page's scraper: several rigs' metrics endpoints on 127.0.0.1 (real HTTP servers),
one that never answers, one that stops; offline rigs keep their last view and raise an alert."""

from __future__ import annotations

import pytest

from app.fleet import Alerter, FleetWatcher, MetricsServer, check_metrics_url
from tests.fleet.conftest import StandinRig


@pytest.fixture
def rigs():
    made = []
    for i, n in enumerate((8, 2, 1)):
        rig = StandinRig(n, name=f"rig-{i + 1:02d}", number=i)
        srv = MetricsServer("127.0.0.1", 0).start()
        srv.update(rig.snapshot())
        made.append((rig, srv))
    yield made
    for rig, srv in made:
        srv.stop()
        rig.close()


def test_scrapes_every_rig_and_marks_the_silent_ones_offline(rigs, webhook):
    urls = [srv.url for _, srv in rigs] + ["http://127.0.0.1:9/metrics"]
    watched = list(urls)
    alerter = Alerter(lambda: webhook.url, lambda: 900.0)
    w = FleetWatcher(lambda: watched, timeout_s=2.0, alerter=alerter)
    try:
        views = w.scrape()
        assert [v.online for v in views] == [True, True, True, False]
        r1 = views[0]
        assert r1.name == "rig-01" and r1.ready is True and len(r1.devices) == 9 and r1.size_bytes > 10_000
        assert r1.devices[3].device == "cuda:3" and r1.devices[3].state == "mining" and r1.devices[3].temp_c == 61
        assert r1.devices[3].util_pct == pytest.approx(98.0)
        assert views[3].error and "refused" in views[3].error.lower() and views[3].last_seen is None
        assert alerter.sent == []  # a URL never seen is not a rig gone offline

        rig2, srv2 = rigs[1]
        rig2.nv.lose(0)
        srv2.update(rig2.snapshot())
        assert w.scrape()[1].devices[0].state == "lost"

        seen = w.views[urls[2]].last_seen
        rigs[2][1].stop()
        views = w.scrape()
        gone = views[2]
        assert not gone.online and gone.last_seen == seen and gone.name == "rig-03" and len(gone.devices) == 2
        assert [(s, a.kind, a.rig) for s, a in alerter.sent] == [("firing", "rig_offline", "rig-03")]
        w.scrape()
        assert len(alerter.sent) == 1  # not again within the interval
        watched.remove(urls[2])  # removed from the Fleet page: its alert resolves
        w.scrape()
        assert alerter.sent[-1][0] == "resolved"
        assert alerter.flush(10)
        assert [b["kind"] for b in webhook.bodies] == ["rig_offline", "rig_offline"]
    finally:
        w.close()
        alerter.close()


@pytest.mark.parametrize("typed, url", [
    ("192.168.1.20:9108", "http://192.168.1.20:9108/metrics"),
    ("http://rig7.local:9108/", "http://rig7.local:9108/metrics"),
    ("https://rigs.example/r/3/metrics", "https://rigs.example/r/3/metrics"),
])
def test_metrics_urls_as_typed(typed, url):
    assert check_metrics_url(typed) == url


@pytest.mark.parametrize("typed", ["ftp://x/metrics", "http://", "http://a b", "http://h:99999/metrics"])
def test_bad_metrics_urls_are_one_line_errors(typed):
    with pytest.raises(ValueError) as e:
        check_metrics_url(typed)
    assert "\n" not in str(e.value)
