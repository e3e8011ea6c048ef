"""The Earnings view over the real EarningsService: a real Ledger with real payments in this
test's KMINER_HOME, the NVML stand-in GPUs, a real background runner, and a real HTTP server on
127.0.0.1 for the price and network feeds (answering, down, and a corrupt network file)."""

from __future__ import annotations

import json
import time

import pytest

from app.earnings import EarningsService
from app.resources import resource_path
from tests.earnings.conftest import FeedServer
from ui.background import Background
from ui.earnings_view import EMPTY_TEXT, EarningsView

NTK = 10**18


@pytest.fixture
def earnings(ctx):
    svc = EarningsService(ctx, timeout_s=2.0)
    yield svc
    svc.close()


@pytest.fixture
def feed():
    server = FeedServer()
    yield server
    server.stop()


@pytest.fixture
def make_view(qtbot, earnings, devices):
    made = []

    def make(devs=None, **kw):
        runner = Background("earnings")
        v = EarningsView(earnings=earnings, devices=devs or devices, runner=runner, **kw)
        qtbot.addWidget(v)
        made.append((v, runner))
        qtbot.waitUntil(lambda: v.data is not None or v.error is not None, timeout=5000)
        return v

    yield make
    for v, runner in made:
        v.timer.stop()
        runner.shutdown()


def pay(svc, job, key, wei, *, days_ago=0.0):
    svc.ledger.record_payment(job, "0x" + f"{job:064x}", wei, timestamp=time.time() - days_ago * 86400 - 1,
                              device_key=key)


def keys(devices):
    return {d.id: d.key for d in devices.devices}


def bar_sets(view):
    series = view.daily_chart.chart().series()[0]
    return {bs.label(): [bs.at(i) for i in range(bs.count())] for bs in series.barSets()}


def running_total_points(view) -> list[tuple[float, float]]:
    area = view.cumulative_chart.chart().series()[0]
    return [(p.x(), p.y()) for p in area.upperSeries().points()]


def test_charts_stats_and_ratio_from_real_payments(qtbot, make_view, earnings, devices, ctx):
    ctx.settings.earnings.ntk_usd = 2.0
    k = keys(devices)
    pay(earnings, 1, k["cuda:0"], 3 * NTK + 1)
    pay(earnings, 2, k["cuda:1"], 5 * NTK, days_ago=2)
    pay(earnings, 3, "cpu", NTK // 2, days_ago=10)  # only in the 30-day view
    pay(earnings, 4, k["cuda:0"], 40 * NTK, days_ago=45)  # only in the running total
    today = []
    v = make_view()
    v.earnedToday.connect(today.append)
    v.refresh()
    qtbot.waitUntil(lambda: today == [3 * NTK + 1], timeout=5000)
    assert v.stats["today"][1].text() == "3 NTK" and v.stats["period"][1].text() == "8 NTK"
    assert v.stats["all"][1].text() == "48.5 NTK" and v.stats["all"][2].text() == "≈ $97.00"
    # net of electricity beside gross (no energy recorded here: net = gross)
    assert v.net["today"].text() == "$6.000" and v.net["period"].text() == "$16.00" and v.net["all"].text() == "–"
    assert "Pool fee (1 %)" in v.compare_details.text()
    assert not v.network_button.isVisibleTo(v)  # no network figures source set: no button that cannot act
    assert not v.empty.isVisibleTo(v) and v.daily_chart.isVisibleTo(v)
    sets = bar_sets(v)
    assert set(sets) == {"NVIDIA GeForce RTX 3070", "NVIDIA GeForce RTX 3090"} and len(sets["NVIDIA GeForce RTX 3070"]) == 7
    assert sets["NVIDIA GeForce RTX 3070"][-1] == pytest.approx(3.0) and sets["NVIDIA GeForce RTX 3090"][-3] == 5.0
    # knowledge mining 8 NTK x $2 / 7 days = $2.29/day; ETC now loses money at $0.12/kWh
    assert v.ratio_value.text() == "$2.286 vs -$1.104"
    # the running total steps up on the days paid and stays flat in between (no slope between days)
    pts = running_total_points(v)
    assert all(a[0] == b[0] or a[1] == b[1] for a, b in zip(pts, pts[1:]))
    assert pts == [(x, y) for i, y in enumerate([40.5] * 4 + [45.5] * 2 + [48.5]) for x in (i, i + 1)]
    assert "ETC" in v.ratio_caption.text() and "loses money" in v.ratio_caption.text()
    assert "2022-09-14, historical" in v.ratio_history.text() and "×" in v.ratio_history.text()
    assert "ETH, historical (2022-09-14)" in [bs.label().removeprefix("Mining ")
                                             for bs in v.compare_chart.chart().series()[0].barSets()]
    assert "figures 2022-09-14" in v.compare_details.text() and "61.79 MH/s" in v.compare_details.text()
    assert "from settings" in v.sources.text() and "ETC as of 2026" in v.sources.text()
    assert not v.banner.isVisible()

    v.set_period(30)
    assert v.stats["period"][0].text() == "Last 30 days" and v.stats["period"][1].text() == "8.5 NTK"
    assert len(bar_sets(v)) == 3 and {len(x) for x in bar_sets(v).values()} == {30}
    cpu = v.device_combo.findData("cpu")
    v.device_combo.setCurrentIndex(cpu)
    assert v.device_key == "cpu" and len(bar_sets(v)) == 1
    assert v.stats["all"][1].text() == "0.5 NTK"
    assert "needs an NVIDIA GPU" not in v.ratio_caption.text() and "No Ethash comparison" in v.ratio_caption.text()
    v.device_combo.setCurrentIndex(v.device_combo.findData(k["cuda:1"]))
    assert v.stats["period"][1].text() == "5 NTK" and v.ratio_value.text().startswith("$0.333 vs")


def test_new_payments_are_announced_once_with_their_exact_amount(qtbot, make_view, earnings, devices):
    k = keys(devices)
    pay(earnings, 1, k["cuda:0"], NTK)
    v = make_view()
    got = []
    v.paymentReceived.connect(got.append)
    pay(earnings, 2, k["cuda:0"], 7 * NTK + 3)
    pay(earnings, 3, "cpu", 2)
    with qtbot.waitSignal(v.loaded, timeout=5000):
        v.refresh()
    assert sorted(got) == [2, 7 * NTK + 3]
    with qtbot.waitSignal(v.loaded, timeout=5000):
        v.refresh()
    assert len(got) == 2


def test_no_earnings_says_what_to_do_and_still_compares(qtbot, make_view):
    v = make_view()
    v.show()
    assert v.empty.isVisible() and v.empty.text() == EMPTY_TEXT and not v.daily_chart.isVisibleTo(v)
    assert v.ratio_value.text() == "–" and "No earnings in the last 7 days" in v.ratio_caption.text()
    assert v.compare_chart.isVisibleTo(v) and "would lose" in v.ratio_caption.text()


def test_cpu_only_machine_says_the_comparison_needs_an_nvidia_gpu(qtbot, make_view, ctx, idle):
    from app.devices import DeviceService
    from tests.gpu.nvml_standin import make_standin

    cpu_only = DeviceService(ctx, nvml_module=make_standin(gpus=[]), idle=idle)
    try:
        v = make_view(cpu_only)
        assert "needs an NVIDIA GPU" in v.ratio_caption.text() and not v.compare_chart.isVisibleTo(v)
        assert [v.device_combo.itemText(i) for i in range(v.device_combo.count())][0] == "All devices"
    finally:
        cpu_only.close()


def test_price_feed_down_shows_a_banner_and_the_settings_prices(qtbot, make_view, feed, ctx):
    ctx.settings.earnings.price_feed_url = feed.url("/prices")
    feed.stop()
    v = make_view()
    assert v.banner.isVisibleTo(v) and "Price feed:" in v.banner.text() and "could not be reached" in v.banner.text()
    assert "from settings" in v.sources.text()


def test_price_feed_answer_is_used_and_dated(qtbot, make_view, feed, ctx):
    ctx.settings.earnings.price_feed_url = feed.set_json(
        "/prices", {"ntk_usd": 0.25, "coins_usd": {"ETC": 20.0}, "as_of": "2026-11-22T06:00:00Z"})
    v = make_view()
    assert "NTK $0.250" in v.sources.text() and "as of 2026-11-22T06:00:00Z" in v.sources.text()
    assert "ETC $20.00<" in v.compare_details.text() and not v.banner.isVisibleTo(v)


def test_corrupt_network_file_falls_back_to_the_bundled_figures_and_says_so(qtbot, make_view, ctx):
    ctx.paths.data_dir.mkdir(parents=True, exist_ok=True)
    (ctx.paths.data_dir / "ethash_networks.json").write_text("{ this is not json")
    v = make_view()
    assert v.banner.isVisibleTo(v) and "unusable" in v.banner.text() and "bundled" in v.banner.text()
    assert "bundled with the app" in v.sources.text() and v.compare_chart.isVisibleTo(v)


def test_refresh_network_data_off_the_gui_thread_then_an_error_when_down(qtbot, make_view, feed, ctx):
    doc = json.loads(resource_path("data", "ethash_networks.json").read_text())
    doc["networks"]["etc"]["as_of"] = "2026-11-21"
    ctx.settings.earnings.network_feed_url = feed.set_json("/net", doc)
    v = make_view()
    with qtbot.waitSignal(v.loaded, timeout=5000):
        v.network_button.click()
        assert not v.network_button.isEnabled()  # working: the GUI thread is free meanwhile
    assert "ETC as of 2026-11-21" in v.sources.text() and "refreshed" in v.sources.text()
    assert v.network_button.isEnabled()
    feed.stop()
    v.network_button.click()
    qtbot.waitUntil(lambda: v.network_button.isEnabled(), timeout=5000)
    assert "Network data not refreshed" in v.banner.text() and "could not be reached" in v.banner.text()
    assert "ETC as of 2026-11-21" in v.sources.text()  # the last good figures stay


def test_reloads_by_itself_on_its_timer(qtbot, make_view, earnings, devices):
    v = make_view(interval_s=0.2)
    assert v.stats["today"][1].text() == "0 NTK"
    pay(earnings, 1, "cpu", 2 * NTK)
    qtbot.waitUntil(lambda: v.stats["today"][1].text() == "2 NTK", timeout=5000)
    assert not v.empty.isVisibleTo(v)
    assert v.daily_chart.isVisibleTo(v)


def test_device_states_feed_the_energy_ledger_off_the_gui_thread(qtbot, make_view, earnings, devices):
    devices.set_mode("cuda:0", "mining")
    v = make_view()
    v.record_states(devices.poll())
    time.sleep(0.3)
    v.record_states(devices.poll(), False)  # DevicesView.statesChanged passes (states, away)
    key = keys(devices)["cuda:0"]
    qtbot.waitUntil(lambda: any(e.device_key == key and e.wh > 0 for e in earnings.ledger.energy()), timeout=5000)
    e = next(e for e in earnings.ledger.energy() if e.device_key == key)
    assert e.wh == pytest.approx(117.4 * e.seconds / 3600)  # the stand-in RTX 3070 draws 117.4 W


def test_chart_axes_step_in_round_numbers():
    """0, 1, 2, 3, 4, 5 NTK, not 0, 1.25, 2.5, 3.75, 5: every axis top from nice_max splits into 1, 2 or 5 x 10^n steps."""
    import math

    from ui.charts import nice_max, nice_ticks

    for v in (0.0, 0.03, 0.9, 1.7, 2.2, 3, 4.9, 7, 30, 123, 2400):
        top = nice_max(v)
        step = top / (nice_ticks(top) - 1)
        mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
        assert any(abs(mantissa - m) < 1e-6 for m in (1, 2, 5)), (v, top, step)
