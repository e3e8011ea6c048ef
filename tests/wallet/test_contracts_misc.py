"""NTK faucet, ModelMarket purchases, re-entrancy through a hostile token, and proof that the
committed artifacts are what the sources compile to."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from wallet import artifacts
from wallet.deploy import Deployment
from wallet.errors import ContractRevert, decode_revert
from wallet.market import JobStatus, MarketClient

NTK = 10**18
ROOT = Path(__file__).resolve().parents[2]


def test_committed_artifacts_match_the_sources(tmp_path):
    """Recompile with the pinned solc-js (offline) and compare byte for byte."""
    if not (ROOT / "node_modules" / "solc").exists():
        pytest.fail("node_modules missing: run `make node` (npm ci) so solc-js can recompile the contracts")
    out = tmp_path / "artifacts"
    subprocess.run(["node", str(ROOT / "wallet" / "compile.js"), str(out)], check=True, capture_output=True, timeout=300)
    committed = sorted(p.name for p in artifacts.ARTIFACTS_DIR.glob("*.json"))
    assert sorted(p.name for p in out.glob("*.json")) == committed
    for name in committed:
        fresh = json.loads((out / name).read_text())
        assert fresh == json.loads((artifacts.ARTIFACTS_DIR / name).read_text()), f"{name} is stale: run `make contracts`"
        assert fresh["compiler"]["solc"].startswith("0.8.28+") and fresh["compiler"]["evmVersion"] == "cancun"


def test_ntk_metadata_and_faucet_is_deployer_only(market_env):
    env = market_env
    info = env.market.token.info()
    assert (info.symbol, info.decimals) == ("NTK", 18)
    with pytest.raises(ContractRevert, match="NotDeployer"):
        env.market.token.mint(env.buyer, env.buyer.address, NTK)
    before = env.market.token.balance_of(env.stranger.address)
    env.market.token.mint(env.deployer, env.stranger.address, 5 * NTK)
    assert env.market.token.balance_of(env.stranger.address) == before + 5 * NTK


def test_model_purchase_record_unlocks_only_for_the_buyer(market_env):
    env, m = market_env, market_env.market
    card = "0x" + "11" * 32
    lid, _ = m.list_model(env.miner, card_hash=card, uri="file:///card.json", price_wei=50 * NTK)
    listing = m.listing(lid)
    assert (listing.owner, listing.price_wei, listing.card_hash, listing.active) == (env.miner.address, 50 * NTK, card, True)
    assert not m.has_purchased(lid, env.buyer.address)
    owner0, buyer0 = m.token.balance_of(env.miner.address), m.token.balance_of(env.buyer.address)
    m.buy_model(env.buyer, lid)
    assert m.has_purchased(lid, env.buyer.address)
    assert not m.has_purchased(lid, env.stranger.address)
    assert m.token.balance_of(env.miner.address) == owner0 + 50 * NTK
    assert m.token.balance_of(env.buyer.address) == buyer0 - 50 * NTK
    with pytest.raises(ContractRevert, match="AlreadyPurchased"):
        m.buy_model(env.buyer, lid)
    with pytest.raises(ContractRevert, match="NotOwner"):
        env.chain.transact(env.buyer, m.models_contract.functions.delist(lid), gas=100_000)
    env.chain.transact(env.miner, m.models_contract.functions.delist(lid), gas=100_000)
    with pytest.raises(ContractRevert, match="ListingInactive"):
        m.buy_model(env.stranger, lid)
    with pytest.raises(ContractRevert, match="NoSuchListing"):
        m.listing(99)


def test_model_buy_guards_against_a_price_change(market_env):
    env, m = market_env, market_env.market
    lid, _ = m.list_model(env.miner, card_hash="0x" + "22" * 32, uri="u", price_wei=NTK)
    m.token.approve(env.buyer, m.models_contract.address, 10 * NTK)
    with pytest.raises(ContractRevert, match="PriceChanged"):
        env.chain.transact(env.buyer, m.models_contract.functions.buy(lid, NTK - 1), gas=150_000)


def _hostile_market(env):
    """A JobMarket whose token is HostileToken; returns (client, hostile contract)."""
    chain = env.chain
    host_art, jm_art = artifacts.load("HostileToken"), artifacts.load("JobMarket")
    host = chain.transact(env.deployer, chain.w3.eth.contract(abi=host_art.abi_list(), bytecode=host_art.bytecode).constructor(),
                          gas=3_000_000).receipt["contractAddress"]
    jm = chain.transact(env.deployer, chain.w3.eth.contract(abi=jm_art.abi_list(), bytecode=jm_art.bytecode).constructor(host),
                        gas=3_000_000).receipt["contractAddress"]
    dep = Deployment(chain_id=chain.chain_id, ntk=host, job_market=jm, model_market=env.deployment.model_market,
                     block=0, deployer=env.deployer.address)
    client = MarketClient(chain, dep)
    hostile = chain.w3.eth.contract(address=host, abi=host_art.abi_list())
    chain.transact(env.deployer, hostile.functions.mint(env.buyer.address, 100 * NTK), gas=100_000)
    return client, hostile


def test_reentrancy_through_hostile_token_is_refused_on_payout(market_env):
    env = market_env
    client, hostile = _hostile_market(env)
    jm = client.jobs_contract
    job_id, _ = client.post(env.buyer, kind="train", spec_hash="0x" + "33" * 32, spec_uri="s", reward_wei=10 * NTK,
                            deadline=env.now() + 3_600, review_window_s=600)
    # the hostile token contract itself is the miner
    for data in (jm.encode_abi("claim", args=[job_id]), jm.encode_abi("submitResult", args=[job_id, b"\x44" * 32, "r"])):
        env.chain.transact(env.deployer, hostile.functions.execute(jm.address, data), gas=500_000)
    # when paid, it tries to be paid again from inside the token transfer
    env.chain.transact(env.deployer, hostile.functions.arm(jm.address, jm.encode_abi("release", args=[job_id])), gas=200_000)
    env.chain.transact(env.buyer, jm.functions.accept(job_id), gas=1_000_000)  # the hostile transfer burns gas
    assert hostile.functions.attempts().call() == 1
    assert hostile.functions.lastReentrySucceeded().call() is False
    assert decode_revert(hostile.functions.lastReentryError().call()).name == "ReentrancyGuardReentrantCall"
    assert hostile.functions.balanceOf(hostile.address).call() == 10 * NTK  # paid once
    assert hostile.functions.balanceOf(jm.address).call() == 0
    assert client.job(job_id).status == JobStatus.ACCEPTED


def test_reentrancy_through_hostile_token_is_refused_on_refund(market_env):
    env = market_env
    client, hostile = _hostile_market(env)
    jm = client.jobs_contract
    chain = env.chain
    chain.transact(env.deployer, hostile.functions.mint(hostile.address, 20 * NTK), gas=100_000)
    # the hostile token contract is the buyer of two jobs, so escrow of another job is at stake
    chain.transact(env.deployer, hostile.functions.execute(hostile.address, hostile.encode_abi("approve", args=[jm.address, 20 * NTK])),
                   gas=200_000)
    deadline = env.now() + 100
    for _ in range(2):
        post_call = jm.encode_abi("post", args=[1, b"\x55" * 32, "s", 10 * NTK, deadline, 600, 0])
        chain.transact(env.deployer, hostile.functions.execute(jm.address, post_call), gas=500_000)
    env.travel(200)
    chain.transact(env.deployer, hostile.functions.arm(jm.address, jm.encode_abi("refund", args=[2])), gas=200_000)
    chain.transact(env.deployer, hostile.functions.execute(jm.address, jm.encode_abi("refund", args=[1])), gas=500_000)
    assert hostile.functions.lastReentrySucceeded().call() is False
    assert decode_revert(hostile.functions.lastReentryError().call()).name == "ReentrancyGuardReentrantCall"
    assert hostile.functions.balanceOf(jm.address).call() == 10 * NTK  # job 2's escrow is untouched
    assert client.job(2).status == JobStatus.OPEN
