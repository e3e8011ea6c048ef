"""Network presets (data with sources), deploying the markets to a network, the deployment
files the app reads, and the indexer over OrderMarket events."""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from tests.wallet.order_flow import NTK, post, voucher
from wallet import artifacts
from wallet.chain import Chain
from wallet.deploy import (
    Deployment, deploy_market, find_deployment, known_deployments, load_deployment, save_deployment,
)
from wallet.errors import NotDeployed, WalletError, decode_revert
from wallet.networks import NETWORKS, NETWORKS_FILE, get_network, network_for_chain, parse_networks

EXPECTED_CHAIN_IDS = {"mainnet": 1, "sepolia": 11155111, "base": 8453, "base-sepolia": 84532, "arbitrum": 42161,
                      "arbitrum-sepolia": 421614, "optimism": 10, "op-sepolia": 11155420, "polygon": 137,
                      "polygon-amoy": 80002}


def test_presets_cover_ethereum_and_the_l2s_and_drop_holesky():
    assert {n: NETWORKS[n].chain_id for n in EXPECTED_CHAIN_IDS} == EXPECTED_CHAIN_IDS
    assert "holesky" not in NETWORKS and network_for_chain(17000) is None
    assert [n for n, net in NETWORKS.items() if net.op_stack] == ["base", "base-sepolia", "optimism", "op-sepolia"]
    assert get_network("arbitrum").l1_fee == "in-gas" and get_network("polygon").native_symbol == "POL"
    for name in EXPECTED_CHAIN_IDS:
        net = NETWORKS[name]
        assert net.explorer.startswith("https://") and net.public_rpc.startswith("https://")
        assert net.default_rpc_url is None  # a public network is never used without the user's choice
        assert net.test_tokens == ("sepolia" in name or "amoy" in name)
        assert net.ntk_address is None or name == "mainnet"  # no NTK off Ethereum is official
    assert network_for_chain(27501).embedded
    assert get_network("base").tx_url("0xab") == "https://basescan.org/tx/0xab"


def test_the_data_says_where_each_figure_comes_from():
    doc = json.loads(NETWORKS_FILE.read_text(encoding="utf-8"))
    assert doc["retrieved"] and any("No bridged or native NTK" in n for n in doc["notes"])
    for name, n in doc["networks"].items():
        assert n["sources"]["chain_id"], name


@pytest.mark.parametrize("doc, why", [
    ([], "kind 'networks'"),
    ({"kind": "networks", "networks": {"x": {"chain_id": "1"}}}, "'x' is malformed"),
    ({"kind": "networks", "networks": {"x": {"chain_id": 5, "testnet": True, "label": "x", "layer": "L1",
                                              "native_symbol": "ETH", "l1_fee": "magic"}}}, "'x' is malformed"),
])
def test_malformed_network_data_is_one_line(doc, why):
    with pytest.raises(ValueError, match=why) as e:
        parse_networks(doc)
    assert "\n" not in str(e.value)


def test_deploy_to_a_test_network_brings_our_ntk(anvil_factory, tmp_path):
    node = anvil_factory(extra=("--chain-id", "84532"))
    chain = Chain.rpc(node.url, expected_chain_id=84532, lock_dir=tmp_path)
    me = Account.from_key(node.keys[0])
    dep = deploy_market(chain, me, get_network("base-sepolia"), initial_supply_wei=5 * NTK)
    assert dep.network == "base-sepolia" and dep.order_market and dep.chain_id == 84532
    path = save_deployment(tmp_path, dep)
    assert load_deployment(tmp_path, 84532) == dep
    assert find_deployment(tmp_path, get_network("base-sepolia"), 84532) == dep
    with pytest.raises(WalletError, match="not base"):
        deploy_market(chain, me, get_network("base"), token=dep.ntk)
    assert json.loads(path.read_text())["order_market"] == dep.order_market


def test_a_main_network_needs_a_confirmed_token_and_never_gets_ours(anvil_factory, tmp_path):
    node = anvil_factory(extra=("--chain-id", "8453"))
    chain = Chain.rpc(node.url, expected_chain_id=8453, lock_dir=tmp_path)
    me = Account.from_key(node.keys[0])
    base = get_network("base")
    with pytest.raises(WalletError, match="confirm the address"):
        deploy_market(chain, me, base)
    with pytest.raises(WalletError, match="no contract at"):
        deploy_market(chain, me, base, token="0x" + "42" * 20)
    art = artifacts.load("NTK")  # stands for a bridged token the user confirmed
    token = chain.transact(me, chain.w3.eth.contract(abi=art.abi_list(), bytecode=art.bytecode).constructor(NTK)
                           ).receipt["contractAddress"]
    dep = deploy_market(chain, me, base, token=token)
    assert dep.ntk == token and dep.network == "base"
    from wallet.order_market import OrderMarketClient

    assert OrderMarketClient(chain, dep.order_market).token.address == token


def test_deployment_files_old_and_new_and_unknown(tmp_path):
    old = {"chain_id": 5, "ntk": "0x" + "11" * 20, "job_market": "0x" + "22" * 20, "model_market": "0x" + "33" * 20,
           "block": 1, "deployer": "0x" + "44" * 20}
    (tmp_path / "deployment-5.json").write_text(json.dumps(old))
    dep = load_deployment(tmp_path, 5)
    assert dep.order_market is None and dep.network is None  # a file from before OrderMarket still loads
    (tmp_path / "deployment-6.json").write_text(json.dumps({**old, "chain_id": 6, "evil": 1}))
    with pytest.raises(WalletError, match="unreadable"):
        load_deployment(tmp_path, 6)
    with pytest.raises(NotDeployed, match="no market is known on Base"):
        find_deployment(tmp_path, get_network("base"), 8453)
    assert known_deployments() == {}  # the project runs no market on a public network yet


def test_known_deployments_file_is_validated(tmp_path):
    p = tmp_path / "deployments.json"
    p.write_text(json.dumps({"kind": "market_deployments", "deployments": {"base": {"chain_id": 8453}}}))
    with pytest.raises(WalletError, match="unreadable"):
        known_deployments(p)
    good = Deployment(8453, "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20, 9, "0x" + "44" * 20,
                      order_market="0x" + "55" * 20, network="base")
    from dataclasses import asdict

    p.write_text(json.dumps({"kind": "market_deployments", "deployments": {"base": asdict(good)}}))
    assert known_deployments(p) == {"base": good}


def test_indexer_reads_order_events(order_env, tmp_path):
    from wallet.indexer import for_deployment

    env = order_env
    oid = post(env, shards=2, reward=NTK)
    env.om.redeem(env.miner, [voucher(env, oid, [0, 1])])
    idx = for_deployment(env.chain, tmp_path / "index.sqlite", env.deployment, start_block=0)
    idx.sync()
    names = [e.name for e in idx.order_events(oid)]
    assert names == ["OrderPosted", "VoucherRedeemed"]
    paid = idx.history(env.payout.address, names=["VoucherRedeemed"])
    assert paid[0].amount_wei == 2 * NTK and paid[0].to_addr == env.payout.address
    idx.close()


def test_wrong_record_reverts_name_the_status():
    from eth_abi import encode
    from eth_utils import keccak

    data = keccak(text="WrongRecord(uint8)")[:4] + encode(["uint8"], [2])
    assert str(decode_revert(data)) == "WrongRecord(rejected)"
