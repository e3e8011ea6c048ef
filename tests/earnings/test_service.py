"""EarningsService: telemetry to energy, the report, the Ethash comparison, and the two feeds
against a real HTTP server on 127.0.0.1 (answering, malformed, slow, and down)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from app.context import AppContext
from app.devices import DeviceService, DeviceState, Telemetry, NA
from app.earnings import EarningsService, FeedError
from gpu.model import DeviceInfo
from tests.gpu.nvml_standin import RTX_3070_X1, make_standin

UTC = timezone.utc
NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC).timestamp()
DAY = 86400
GPU_KEY = RTX_3070_X1.uuid
NTK = 10**18
RTX3070 = DeviceInfo(id="cuda:0", key=GPU_KEY, kind="cuda", index=0, name="NVIDIA GeForce RTX 3070", memory_total_mb=8192)
CPU = DeviceInfo(id="cpu", key="cpu", kind="cpu", index=0, name="Some CPU", memory_total_mb=16000)


@pytest.fixture
def ctx():
    return AppContext.open()


@pytest.fixture
def svc(ctx):
    s = EarningsService(ctx, tz=UTC, clock=lambda: NOW, timeout_s=2.0)
    yield s
    s.close()


def state(info, ts, power=NA, *, active=True, lost=False):
    return DeviceState(info=info, telemetry=Telemetry(timestamp=ts, power_w=power, lost=lost), mode="mining",
                       active=active, throttled=False, throttle_reason=None, max_temp_c=83.0, max_power_w=None)


# ---- comparison ----------------------------------------------------------------------------
def test_rtx_3070_comparison_at_12_cents(svc):
    cmp = svc.compare_gpu("NVIDIA GeForce RTX 3070")
    assert cmp.available and cmp.gpu.name == "RTX 3070" and cmp.watts == 117
    etc, eth = cmp.networks["etc"], cmp.networks["eth_last_pow"]
    power = 117 * 24 / 1000 * 0.12
    for c in (etc, eth):
        n = c.network
        coins = 61.79e6 / n.hashrate_hs * (86400 / n.block_time_s) * n.block_reward
        assert c.day.coins == pytest.approx(coins)
        assert c.day.net_usd == pytest.approx(coins * n.price_usd * 0.99 - power)
        assert c.day.power_cost_usd == pytest.approx(0.33696)
    assert eth.network.historical and eth.network.as_of == "2022-09-14" and eth.day.net_usd > 0
    assert not etc.network.historical


def test_watts_override_and_unknown_and_cpu_have_no_guess(svc):
    assert svc.compare_gpu("RTX 3070", watts=135).networks["etc"].day.energy_kwh == pytest.approx(3.24)
    unknown = svc.compare_gpu("NVIDIA GeForce RTX 4090")
    assert not unknown.available and unknown.networks == {} and "RTX 4090" in unknown.reason
    cpu = svc.compare_device(CPU)
    assert not cpu.available and "CPU" in cpu.reason
    with pytest.raises(ValueError):
        svc.compare_gpu("RTX 3070", watts=0)


# ---- telemetry -> energy ---------------------------------------------------------------------
def test_states_feed_energy_gpu_from_telemetry_cpu_from_setting(svc, ctx):
    ctx.settings.general.cpu_power_w = 90.0
    t = NOW - 3600
    for i in range(4):
        svc.record_states([state(RTX3070, t + i, 117.0), state(CPU, t + i, active=i < 2)])
    for i in range(4, 8):  # the GPU is not offered to the market (e.g. the user plays): 0 W for mining
        svc.record_states([state(RTX3070, t + i, 250.0, active=False)])
    e = {x.device_key: x for x in svc.ledger.energy()}
    assert e[GPU_KEY].wh == pytest.approx((117.0 * 3 + 117.0 / 2) / 3600) and e[GPU_KEY].seconds == pytest.approx(7)
    # CPU: 90 W while active (t..t+1), then ramps to 0 W (t+1..t+2), 0 W while idle (t+2..t+3)
    assert e["cpu"].wh == pytest.approx((90.0 + 45.0) / 3600)


def test_na_power_and_a_lost_gpu_add_no_energy(svc):
    t = NOW - 100
    svc.record_states([state(RTX3070, t, NA)])
    svc.record_states([state(RTX3070, t + 1, NA)])
    svc.record_states([state(RTX3070, t + 2, 100.0)])
    svc.record_states([state(RTX3070, t + 3, NA, lost=True)])
    svc.record_states([state(RTX3070, t + 4, 100.0)])
    assert svc.ledger.energy() == []


def test_real_device_service_polls_feed_the_ledger(ctx):
    nv = make_standin(gpus=[RTX_3070_X1])
    devices = DeviceService(ctx, nvml_module=nv, idle=lambda: 0.0)
    devices.set_mode("cuda:0", "mining")
    svc = EarningsService(ctx, tz=UTC)
    try:
        svc.record_states(devices.poll())
        time.sleep(0.3)
        svc.record_states(devices.poll())
        gpu = [e for e in svc.ledger.energy() if e.device_key == GPU_KEY]
        assert len(gpu) == 1 and 0.25 < gpu[0].seconds < 2
        assert gpu[0].wh == pytest.approx(117.4 * gpu[0].seconds / 3600)
        assert not any(e.device_key == "cpu" and e.wh > 0 for e in svc.ledger.energy())  # cpu idle: 0 W
    finally:
        svc.close()
        devices.close()


# ---- report ----------------------------------------------------------------------------------
def test_report_per_device_per_day_with_ratio(svc, ctx):
    led = svc.ledger
    ctx.settings.earnings.ntk_usd = 0.5
    led.assign_job(1, GPU_KEY, at=NOW - DAY)
    led.record_payment(1, "0x" + "aa" * 32, 4 * NTK, timestamp=NOW - DAY)  # 2026-11-21
    led.assign_job(2, GPU_KEY, at=NOW)
    led.record_payment(2, "0x" + "bb" * 32, 6 * NTK, timestamp=NOW - 60)  # today
    led.assign_job(3, GPU_KEY, at=NOW - 30 * DAY)
    led.record_payment(3, "0x" + "cc" * 32, 100 * NTK, timestamp=NOW - 30 * DAY)  # outside the period
    led.add_power_samples([(GPU_KEY, NOW - DAY + i, 200.0) for i in range(0, 3601, 1)], max_gap_s=5)  # 200 Wh
    led.record_payment(4, "0x" + "dd" * 32, NTK, timestamp=NOW, device_key="GPU-gone")

    rep = svc.report([RTX3070, CPU], days=7)
    assert (rep.since, rep.until) == ("2026-11-16", "2026-11-22")
    gpu, cpu, gone = rep.devices
    assert [(d.day, d.ntk_wei) for d in gpu.days] == [("2026-11-21", 4 * NTK), ("2026-11-22", 6 * NTK)]
    d21 = gpu.days[0]
    assert d21.ntk_usd == pytest.approx(2.0) and d21.energy_wh == pytest.approx(200.0)
    assert d21.energy_usd == pytest.approx(0.024) and d21.net_usd == pytest.approx(1.976)
    assert gpu.period_wei == 10 * NTK and gpu.cumulative_wei == 110 * NTK
    assert gpu.net_usd_per_day == pytest.approx((1.976 + 3.0) / 7)
    ratios = gpu.ratios()
    eth_net = gpu.coin.networks["eth_last_pow"].day.net_usd
    assert ratios["eth_last_pow"] == (pytest.approx(gpu.net_usd_per_day / eth_net), None)
    etc_r, etc_why = ratios["etc"]
    assert gpu.coin.networks["etc"].day.net_usd < 0 and etc_r is None and "no profit" in etc_why
    assert cpu.days == () and not cpu.coin.available and cpu.ratios() == {}
    assert gone.key == "GPU-gone" and gone.kind == "unknown" and gone.period_wei == NTK
    doc = json.loads(json.dumps(rep.to_json()))
    assert doc["devices"][0]["days"][0]["ntk_wei"] == str(4 * NTK)
    assert doc["networks"]["figures"]["eth_last_pow"]["as_of"] == "2022-09-14"


# ---- price feed ------------------------------------------------------------------------------
def test_prices_come_from_settings_without_a_feed(svc, ctx):
    ctx.settings.earnings.ntk_usd = 0.02
    p = svc.refresh_prices()
    assert (p.ntk_usd, p.electricity_usd_per_kwh, p.source, p.message) == (0.02, 0.12, "settings", None)


def test_price_feed_good_then_malformed_then_down_keeps_the_last_good(feed, ctx):
    ctx.settings.earnings.price_feed_url = feed.set_json(
        "/prices", {"ntk_usd": 0.25, "electricity_usd_per_kwh": 0.2, "coins_usd": {"etc": 20.0, "ETH": 9999},
                    "as_of": "2026-11-22T06:00:00Z"})
    svc = EarningsService(ctx, tz=UTC, clock=lambda: NOW, timeout_s=2.0)
    try:
        p = svc.refresh_prices()
        assert (p.ntk_usd, p.electricity_usd_per_kwh, p.as_of, p.message) == (0.25, 0.2, "2026-11-22T06:00:00Z", None)
        assert p.source.startswith("feed http://127.0.0.1:")
        cmp = svc.compare_gpu("RTX 3070")
        assert cmp.networks["etc"].price_usd == 20.0  # a current coin price applies to ETC now...
        assert cmp.networks["eth_last_pow"].price_usd == 1600.0  # ...never to the historical ETH figures
        assert cmp.networks["etc"].day.power_cost_usd == pytest.approx(117 * 24 / 1000 * 0.2)

        feed.set_raw("/prices", b"{not json")
        p = svc.refresh_prices()
        assert p.ntk_usd == 0.25 and "did not answer JSON" in p.message and "last good" in p.message
        feed.set_json("/prices", {"ntk_usd": -1})
        p = svc.refresh_prices()
        assert p.ntk_usd == 0.25 and "ntk_usd" in p.message
        feed.set_json("/prices", {"price": 1})
        assert "'ntk_usd' is missing" in svc.refresh_prices().message
        feed.set_json("/prices", {"ntk_usd": 1}, status=500)
        assert "HTTP 500" in svc.refresh_prices().message
    finally:
        svc.close()
    feed.stop()
    restarted = EarningsService(ctx, tz=UTC, clock=lambda: NOW, timeout_s=2.0)  # last good survives a restart
    try:
        p = restarted.refresh_prices()
        assert p.ntk_usd == 0.25 and "could not be reached" in p.message and "2026-11-22T18:00:00Z" in p.message
    finally:
        restarted.close()


def test_a_feed_that_was_never_good_falls_back_to_settings(feed, ctx):
    ctx.settings.earnings.price_feed_url = feed.url("/prices")
    feed.stop()
    svc = EarningsService(ctx, timeout_s=2.0)
    try:
        p = svc.refresh_prices()
        assert p.source == "settings" and p.ntk_usd == ctx.settings.earnings.ntk_usd
        assert "could not be reached" in p.message and "settings" in p.message
    finally:
        svc.close()


def test_a_slow_feed_times_out(feed, ctx):
    ctx.settings.earnings.price_feed_url = feed.set_json("/slow", {"ntk_usd": 1.0}, delay_s=1.5)
    svc = EarningsService(ctx, timeout_s=0.3)
    try:
        t = time.monotonic()
        p = svc.refresh_prices()
        assert time.monotonic() - t < 1.4
        assert p.source == "settings" and "timed out" in p.message
    finally:
        svc.close()


# ---- network figures -------------------------------------------------------------------------
def network_doc(**etc):
    base = {"label": "Ethereum Classic (Etchash), now", "coin": "ETC", "algorithm": "Etchash", "historical": False,
            "as_of": "2026-11-21", "network_hashrate_hs": 200e12, "block_time_s": 13.0, "block_reward": 1.6384,
            "price_usd": 10.0}
    base.update(etc)
    return {"kind": "ethash_networks", "version": 1, "source": "test feed", "networks": {"etc": base}}


def test_refresh_network_writes_the_data_folder_and_wins_over_the_bundled_file(feed, svc, ctx):
    assert svc.network_data().origin == "bundled"
    bundled = svc.bundled_networks_file.read_bytes()
    url = feed.set_json("/net", network_doc())
    nd = svc.refresh_network(url)
    assert nd.path == ctx.paths.data_dir / "ethash_networks.json" and nd.path.exists()
    assert nd.origin == f"refreshed 2026-11-22T18:00:00Z from {url}"
    assert nd.networks["etc"].as_of == "2026-11-21" and nd.networks["etc"].hashrate_hs == 200e12
    assert svc.compare_gpu("RTX 3070").networks["etc"].network.as_of == "2026-11-21"
    assert svc.bundled_networks_file.read_bytes() == bundled  # resources/ is never written


@pytest.mark.parametrize("answer", [b"<html>", json.dumps(network_doc(as_of=None)).encode(),
                                    json.dumps({"networks": {}}).encode()])
def test_a_malformed_network_answer_changes_nothing(feed, svc, answer):
    good = svc.refresh_network(feed.set_json("/net", network_doc(price_usd=11.0)))
    before = good.path.read_bytes()
    with pytest.raises(FeedError):
        svc.refresh_network(feed.set_raw("/bad", answer))
    assert good.path.read_bytes() == before
    assert svc.network_data().networks["etc"].price_usd == 11.0


def test_refresh_network_from_the_setting_and_a_server_that_is_down(feed, svc, ctx):
    with pytest.raises(FeedError, match="network_feed_url"):
        svc.refresh_network()
    ctx.settings.earnings.network_feed_url = feed.set_json("/net", network_doc())
    assert svc.refresh_network().networks["etc"].price_usd == 10.0
    feed.stop()
    with pytest.raises(FeedError, match="could not be reached"):
        svc.refresh_network()
    with pytest.raises(FeedError, match="http"):
        svc.refresh_network("file:///etc/passwd")


def test_a_corrupt_user_file_falls_back_to_the_bundled_figures(svc):
    svc.user_networks_file.parent.mkdir(parents=True, exist_ok=True)
    svc.user_networks_file.write_text("{broken")
    nd = svc.network_data()
    assert nd.origin == "bundled" and "unusable" in nd.message and set(nd.networks) == {"etc", "eth_last_pow"}
