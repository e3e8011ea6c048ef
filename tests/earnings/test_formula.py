"""The coin-mining formula, the GPU table lookup and the bundled data files."""

from __future__ import annotations

import json
import math

import pytest

from app.earnings.coin_mining import (
    DataFileError, Network, coin_mining_day, coins_per_day, coins_per_day_from_difficulty, ecip1017_block_reward,
    load_gpus, load_networks, lookup_gpu, normalize_gpu_name, parse_networks, ratio,
)
from app.resources import resource_path
from app.settings import NTK_MAINNET_ADDRESS

DATA = resource_path("data")


def sig3(x: float) -> float:
    return float(f"{x:.3g}")


def check_values() -> dict:
    return json.loads((DATA / "ethash_networks.json").read_text())["checks"]["whattomine_eth_2021_07"]


def test_whattomine_july_2021_check_value_by_difficulty_and_by_nethash():
    c = check_values()
    by_d = coins_per_day_from_difficulty(c["hashrate_hs"], c["block_reward"], c["difficulty"])
    assert sig3(by_d) == sig3(c["coins_per_day"]) == 0.0312  # 1000 MH/s -> 0.03117 ETH/day
    assert by_d == pytest.approx(0.03117, abs=5e-6)
    net = Network("eth", "ETH", "ETH", "Ethash", True, "2021-07", c["block_time_s"], c["block_reward"], 1.0,
                  network_hashrate_hs=c["network_hashrate_hs"])
    assert coins_per_day(c["hashrate_hs"], net) == pytest.approx(by_d, rel=1e-9)
    avg = coins_per_day_from_difficulty(c["hashrate_hs"], c["block_reward_24h_avg"], c["difficulty"])
    assert sig3(avg) == c["coins_per_day_24h_avg"] == 0.0301


def test_a_network_given_by_difficulty_gives_the_same_coins():
    c = check_values()
    net = Network("eth", "ETH", "ETH", "Ethash", True, "2021-07", c["block_time_s"], c["block_reward"], 1.0,
                  difficulty=c["difficulty"])
    assert coins_per_day(1e9, net) == pytest.approx(0.03117, abs=5e-6)


def test_net_per_day_is_gross_less_pool_fee_less_power():
    net = Network("x", "X", "X", "Ethash", False, "2026", 10.0, 2.0, 5.0, network_hashrate_hs=1e12)
    day = coin_mining_day(1e9, 200, net, usd_per_kwh=0.10, pool_fee=0.02)
    assert day.coins == pytest.approx(1e9 / 1e12 * 8640 * 2.0)  # 17.28 coins
    assert day.gross_usd == pytest.approx(86.4)
    assert day.pool_fee_usd == pytest.approx(1.728)
    assert day.energy_kwh == pytest.approx(4.8) and day.power_cost_usd == pytest.approx(0.48)
    assert day.net_usd == pytest.approx(86.4 * 0.98 - 0.48)
    assert coin_mining_day(1e9, 200, net, usd_per_kwh=0.1, pool_fee=0.0, price_usd=1.0).gross_usd == pytest.approx(17.28)
    with pytest.raises(ValueError):
        coin_mining_day(1e9, 200, net, usd_per_kwh=0.1, pool_fee=1.0)


@pytest.mark.parametrize("block,reward", [(0, 5.0), (1, 5.0), (5_000_000, 5.0), (5_000_001, 4.0), (10_000_001, 3.2),
                                          (15_000_001, 2.56), (20_000_000, 2.56), (20_000_001, 2.048),
                                          (25_000_001, 1.6384)])
def test_ecip1017_eras(block, reward):
    assert ecip1017_block_reward(block) == pytest.approx(reward)


def test_bundled_etc_reward_is_on_the_ecip1017_schedule_and_eth_is_labelled_historical():
    nets = load_networks(DATA / "ethash_networks.json")
    assert set(nets) == {"etc", "eth_last_pow"}
    etc, eth = nets["etc"], nets["eth_last_pow"]
    assert any(math.isclose(etc.block_reward, 5 * 0.8**e) for e in range(10))
    assert not etc.historical and etc.coin == "ETC" and etc.algorithm == "Etchash"
    assert eth.historical and "historical" in eth.label and eth.as_of.startswith("2022-09")
    assert eth.block_reward == 2.0
    for n in nets.values():
        assert n.as_of and n.sources and set(n.sources) >= {"network_hashrate_hs", "block_time_s", "block_reward", "price_usd"}
        assert set(n.estimates or {}) <= set(n.sources)  # every estimate is named with its basis


def test_every_data_file_says_where_and_when():
    for name in ("ethash_gpus.json", "ethash_networks.json", "ntk.json"):
        doc = json.loads((DATA / name).read_text())
        assert doc["source"] and doc["retrieved"] and doc["notes"], name


def test_ntk_file_has_the_mainnet_address_and_warns_of_netkoin():
    doc = json.loads((DATA / "ntk.json").read_text())
    assert doc["address"] == NTK_MAINNET_ADDRESS == "0x69beab403438253f13b6e92db91f7fb849258263"
    assert doc["decimals"] == 18
    assert doc["not_this"]["address"] == "0x5d4d57cd06fa7fe99e26fdc481b468f77f05073c"
    assert any("Netkoin" in n for n in doc["notes"])


@pytest.mark.parametrize("nvml_name,table_name", [
    ("NVIDIA GeForce RTX 3070", "RTX 3070"), ("NVIDIA GeForce RTX 3090", "RTX 3090"),
    ("NVIDIA GeForce RTX 3060 Ti", "RTX 3060 Ti"), ("GeForce GTX 1080 Ti", "GTX 1080 Ti"),
    ("NVIDIA GeForce GTX 1070", "GTX 1070"), ("AMD Radeon RX 6800 XT", "RX 6800 XT"), ("Radeon RX 6800", "RX 6800"),
    ("rtx3080", "RTX 3080"),
])
def test_gpu_names_match_by_model(nvml_name, table_name):
    found = lookup_gpu(nvml_name, load_gpus(DATA / "ethash_gpus.json"))
    assert found.gpu is not None and found.gpu.name == table_name and found.reason is None


@pytest.mark.parametrize("name", ["NVIDIA GeForce RTX 3070 Ti", "NVIDIA GeForce RTX 4090", "NVIDIA H100 80GB HBM3",
                                  "GTX 1070 Ti Super", ""])
def test_an_unknown_gpu_gets_no_figures_and_a_reason(name):
    found = lookup_gpu(name, load_gpus(DATA / "ethash_gpus.json"))
    assert found.gpu is None and found.reason


def test_normalize_gpu_name():
    assert normalize_gpu_name("NVIDIA GeForce RTX 3070") == "rtx 3070"
    assert normalize_gpu_name("AMD Radeon(TM) RX 580 Series") == "rx 580"  # what AMD SMI calls an RX 580


def test_bad_network_documents_name_the_problem():
    with pytest.raises(DataFileError, match="networks"):
        parse_networks({"nets": {}})
    base = {"as_of": "2026", "block_time_s": 13, "block_reward": 2, "price_usd": 1, "network_hashrate_hs": 1e12}
    assert parse_networks({"networks": {"etc": base}})["etc"].hashrate_hs == 1e12
    for broken, why in [({k: v for k, v in base.items() if k != "as_of"}, "as_of"),
                        ({**base, "block_time_s": 0}, "block_time_s"), ({**base, "price_usd": "8"}, "price_usd"),
                        ({k: v for k, v in base.items() if k != "network_hashrate_hs"}, "difficulty")]:
        with pytest.raises(DataFileError, match=why):
            parse_networks({"networks": {"etc": broken}})


def test_ratio_refuses_to_divide_by_a_loss():
    assert ratio(3.0, 1.5) == (2.0, None)
    r, why = ratio(3.0, -0.31)
    assert r is None and "-0.31" in why
