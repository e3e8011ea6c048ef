"""What the Earnings view charts: every day of the period with exact wei per device, the
all-time running total, and the rig-level knowledge : coin mining comparison."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from app.context import AppContext
from app.earnings import EarningsService
from gpu.model import DeviceInfo
from tests.gpu.nvml_standin import RTX_3070_X1, RTX_3090_X16

UTC = timezone.utc
NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC).timestamp()
DAY = 86400
NTK = 10**18
G70 = DeviceInfo(id="cuda:0", key=RTX_3070_X1.uuid, kind="cuda", index=0, name="NVIDIA GeForce RTX 3070",
                 memory_total_mb=8192)
G90 = DeviceInfo(id="cuda:1", key=RTX_3090_X16.uuid, kind="cuda", index=1, name="NVIDIA GeForce RTX 3090",
                 memory_total_mb=24576)
CPU = DeviceInfo(id="cpu", key="cpu", kind="cpu", index=0, name="Some CPU", memory_total_mb=16000)


@pytest.fixture
def svc():
    ctx = AppContext.open()
    ctx.settings.earnings.ntk_usd = 0.5
    s = EarningsService(ctx, tz=UTC, clock=lambda: NOW)
    yield s
    s.close()


def pay(svc, job, key, wei, days_ago):
    svc.ledger.record_payment(job, "0x" + f"{job:064x}", wei, timestamp=NOW - days_ago * DAY, device_key=key)


def test_daily_series_has_every_day_exact_wei_and_an_all_time_running_total(svc):
    pay(svc, 1, G70.key, 100 * NTK, 40)          # before the period: only in the running total
    pay(svc, 2, G70.key, 3 * NTK + 1, 2)         # odd wei stays exact
    pay(svc, 3, "cpu", NTK // 4, 2)
    pay(svc, 4, "cpu", 2 * NTK, 0)
    rep = svc.report([G70, CPU], days=7)
    s = svc.daily_series(rep)
    assert s.days == tuple(f"2026-11-{d}" for d in range(16, 23))
    assert s.device_wei[G70.key] == (0, 0, 0, 0, 3 * NTK + 1, 0, 0)
    assert s.device_wei["cpu"] == (0, 0, 0, 0, NTK // 4, 0, 2 * NTK)
    assert s.total_wei[4] == 3 * NTK + 1 + NTK // 4
    assert s.cumulative_wei[0] == 100 * NTK and s.cumulative_wei[-1] == 105 * NTK + NTK // 4 + 1
    assert s.usd(2 * NTK) == pytest.approx(1.0)
    one = svc.daily_series(rep, "cpu")
    assert set(one.device_wei) == {"cpu"} and one.cumulative_wei[-1] == 2 * NTK + NTK // 4
    last3 = s.last(3)
    assert last3.days == ("2026-11-20", "2026-11-21", "2026-11-22") and last3.cumulative_wei == s.cumulative_wei[-3:]


def test_empty_ledger_gives_a_flat_zero_series(svc):
    s = svc.daily_series(svc.report([CPU], days=30))
    assert len(s.days) == 30 and s.device_wei == {} and set(s.total_wei) == {0} and set(s.cumulative_wei) == {0}


def test_rig_comparison_sums_knowledge_and_coin_mining_over_the_chosen_devices(svc):
    pay(svc, 1, G70.key, 70 * NTK, 1)
    pay(svc, 2, "cpu", 14 * NTK, 1)
    rep = svc.report([G70, G90, CPU], days=7)
    rig = rep.compare_rig()
    g70, g90, cpu = rep.devices
    eth = rig["eth_last_pow"]
    assert eth.network.historical and eth.gpus == (G70.name, G90.name)
    assert eth.knowledge_wei == 84 * NTK and eth.knowledge_net_usd == pytest.approx(84 * 0.5 / 7)
    coin = g70.coin.networks["eth_last_pow"].day.net_usd + g90.coin.networks["eth_last_pow"].day.net_usd
    assert eth.coin_net_usd == pytest.approx(coin) and eth.ratio == pytest.approx(6.0 / coin)
    etc = rig["etc"]  # ETC after electricity at $0.12/kWh loses money: no ratio, a reason
    assert etc.coin_net_usd < 0 and etc.ratio is None and "no profit" in etc.reason
    only_gpu = rep.compare_rig([G70.key])["eth_last_pow"]
    assert only_gpu.gpus == (G70.name,) and only_gpu.knowledge_wei == 70 * NTK
    assert rep.compare_rig(["cpu"]) == {}  # the CPU alone has no Ethash comparison
