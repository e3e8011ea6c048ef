"""The fee estimator against real nodes: anvil in OP-stack mode charges the L1 data fee from
its L1Block predeploy's values (set here as a sequencer's L1-attributes deposit would), and
the estimate must cover what was charged; plain anvil charges none."""

from __future__ import annotations

import pytest
from eth_account import Account

from tests.wallet.order_flow import NTK
from wallet.chain import Chain
from wallet.deploy import deploy_all
from wallet.fees import (
    L1_BLOCK, ORDER_GAS, REFERENCE_L1, FeeEstimator, L1Params, fee_share, flz_compress_len, offline_cost,
    unsigned_tx,
)
from wallet.networks import Network, get_network
from wallet.order_market import OrderMarketClient, OrderTerms

OP_TEST = Network("op-test", 31337, l1_fee="op-stack", label="anvil in OP-stack mode")
PLAIN_TEST = Network("plain-test", 31337, label="anvil")
L1 = L1Params(l1_base_fee_wei=30 * 10**9, blob_base_fee_wei=5 * 10**9, base_fee_scalar=2269,
              blob_base_fee_scalar=1_055_000)


def set_l1_block(chain: Chain, p: L1Params) -> None:
    """Write the L1 fee parameters into the L1Block predeploy's storage (slots 1, 3 and 7)."""
    w3 = chain.w3
    for slot, value in ((1, p.l1_base_fee_wei), (3, (p.base_fee_scalar << 96) | (p.blob_base_fee_scalar << 64) | 1),
                        (7, p.blob_base_fee_wei)):
        w3.provider.make_request("anvil_setStorageAt", [L1_BLOCK, hex(slot), "0x" + value.to_bytes(32, "big").hex()])


def charged_l1_fee(chain: Chain, sender: str, fn_send) -> tuple[int, object]:
    """Run `fn_send()`; the L1 fee it was charged: the ETH it cost beyond gas x price."""
    before = chain.balance_wei(sender)
    res = fn_send()
    receipt = res.receipt
    return before - chain.balance_wei(sender) - receipt["gasUsed"] * receipt["effectiveGasPrice"], res


def _market(url: str, tmp_path):
    chain = Chain.rpc(url, lock_dir=tmp_path)
    deployer, buyer = Account.from_key(ANVIL0), Account.from_key(ANVIL1)
    dep = deploy_all(chain, deployer)
    om = OrderMarketClient(chain, dep.order_market)
    om.token.mint(deployer, buyer.address, 1_000 * NTK)
    om.token.approve(buyer, om.address, 1_000 * NTK)
    return chain, om, buyer


ANVIL0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def test_estimate_covers_the_l1_data_fee_an_op_stack_node_charges(anvil_factory, tmp_path):
    node = anvil_factory(extra=("--network", "optimism"))
    chain, om, buyer = _market(node.url, tmp_path)
    set_l1_block(chain, L1)
    est = FeeEstimator(chain, OP_TEST)
    assert est.l1_params() == L1
    terms = OrderTerms("render", "0x" + "ab" * 32, "p2p://spec", 10, NTK, chain.latest_timestamp() + 3600, 600, 600)
    fn = om.contract.functions.postOrder(terms.as_tuple())
    quote = est.quote(buyer.address, fn, action="post_order")
    l1_paid, res = charged_l1_fee(chain, buyer.address, lambda: om.post_order(buyer, terms)[1])
    assert l1_paid > 0
    assert abs(quote.l1_fee_wei - l1_paid) <= l1_paid // 20  # within 5% (the estimate compresses the unsigned tx)
    raw = bytes(chain.w3.eth.get_raw_transaction(res.tx_hash))  # what the node compressed: the signed tx
    assert L1.fee_for_compressed_wei(flz_compress_len(raw)) == l1_paid
    assert res.gas_used <= quote.gas <= res.gas_used * 13 // 10
    assert quote.total_wei == quote.execution_wei + quote.l1_fee_wei
    assert quote.native_symbol == "ETH"


def test_no_l1_fee_off_op_stack_chains(anvil, tmp_path):
    chain, om, buyer = _market(anvil.url, tmp_path)
    est = FeeEstimator(chain, PLAIN_TEST)
    terms = OrderTerms("render", "0x" + "ab" * 32, "u", 4, NTK, chain.latest_timestamp() + 3600, 600, 600)
    price = est.gas_price()
    quote = est.quote(buyer.address, om.contract.functions.postOrder(terms.as_tuple()), action="post_order")
    assert quote.l1_fee_wei == 0 and est.l1_params() is None
    assert quote.execution_wei == quote.gas * price.per_gas_wei
    l1_paid, res = charged_l1_fee(chain, buyer.address, lambda: om.post_order(buyer, terms)[1])
    assert l1_paid == 0


def test_upper_bound_formula_at_the_minimum_size():
    # below ~170 bytes the Fjord estimate is clamped to 100 bytes: fee = 100 x scaled prices
    scaled = 2269 * 16 * L1.l1_base_fee_wei + 1_055_000 * L1.blob_base_fee_wei
    assert L1.fee_upper_bound_wei(10) == 100 * 10**6 * scaled // 10**12
    assert L1.fee_upper_bound_wei(2_000) > L1.fee_upper_bound_wei(500) > L1.fee_upper_bound_wei(10)


def test_offline_costs_use_the_measured_gas_and_reference_fees():
    base = get_network("base")
    c = offline_cost(base, "post_order")
    assert c.gas == ORDER_GAS["post_order"]
    assert c.execution_wei == c.gas * int((0.005 + 0.001) * 10**9)
    assert c.l1_fee_wei == REFERENCE_L1.fee_upper_bound_wei(450)
    assert 0 < c.in_currency(3000.0) < 0.01  # well under a cent on Base
    eth = offline_cost(get_network("mainnet"), "post_order")
    assert eth.l1_fee_wei == 0 and eth.in_currency(3000.0) > 100 * c.in_currency(3000.0)
    with pytest.raises(ValueError, match="reference base fee"):
        offline_cost(get_network("optimism"), "refund")
    per_shard = (offline_cost(base, "post_order") + offline_cost(base, "redeem_per_voucher")).scaled(1, 4)
    assert per_shard.gas == (ORDER_GAS["post_order"] + ORDER_GAS["redeem_per_voucher"]) // 4


def test_fee_share_compares_in_one_currency():
    assert fee_share(10**15, 3000.0, 10 * NTK, 0.01) == pytest.approx(30.0)  # $3 of gas on a $0.10 reward
    assert fee_share(1, 3000.0, 0, 0.01) == float("inf")


def test_unsigned_tx_carries_the_calldata():
    tx = {"chainId": 8453, "nonce": 0, "maxPriorityFeePerGas": 1, "maxFeePerGas": 2, "gas": 100_000,
          "to": "0x" + "11" * 20, "value": 0, "data": "0x" + "ab" * 300}
    raw = unsigned_tx(tx)
    assert raw[0] == 2 and raw.endswith(b"\xc0") and b"\xab" * 300 in raw


def test_fastlz_length_shrinks_repetition_only():
    import os

    assert flz_compress_len(b"") == 0 and flz_compress_len(b"abc") == 4  # one literal run: a header + 3 bytes
    noise = os.urandom(1000)
    assert flz_compress_len(noise) >= 1000
    assert flz_compress_len(bytes(1000)) < 50


def test_the_gas_table_matches_the_contract(order_env):
    """ORDER_GAS (the offline estimates) must stay what the contract really costs: re-measured
    here on py-evm, steady state (a first order warms every slot)."""
    from tests.wallet.order_flow import post, voucher

    env = order_env
    env.om.token.approve(env.buyer, env.om.address, 2**256 - 1)
    env.om.redeem(env.miner, [voucher(env, post(env, shards=2), [0])])  # warm-up; the market keeps some escrow
    terms = OrderTerms("render", "0x" + "cd" * 32, "p2p://spec/0123456789abcdef", 4, NTK, env.now() + 3600, 600, 600,
                       stake_bps=1_000)
    oid, posted = env.om.post_order(env.buyer, terms)
    (red,) = env.om.redeem(env.miner, [voucher(env, oid, [0, 1, 2, 3])])
    assert posted.gas_used == pytest.approx(ORDER_GAS["post_order"], rel=0.03)
    assert red.tx.gas_used == pytest.approx(ORDER_GAS["redeem_base"] + 4 * ORDER_GAS["redeem_per_shard"], rel=0.03)


def test_the_stake_gas_table_matches_the_contract(order_env):
    """The stake entries of ORDER_GAS (the Stake dialog's fee): a first stake of a (mining key,
    payout) pair, adding to it, starting to unbond and withdrawing, re-measured on py-evm."""
    env = order_env
    om, miner = env.om, env.miner2.address
    om.token.approve(env.payout, om.address, 2**256 - 1)
    first = om.deposit_stake(env.payout, miner, 10 * NTK)
    more = om.deposit_stake(env.payout, miner, 10 * NTK)
    unstake = om.request_unstake(env.payout, miner, 5 * NTK)
    env.travel(om.unbond_delay_s() + 1)
    withdraw = om.withdraw_stake(env.payout, miner)
    for res, key in ((first, "stake_first"), (more, "stake_more"), (unstake, "unstake"), (withdraw, "withdraw_stake")):
        assert res.gas_used == pytest.approx(ORDER_GAS[key], rel=0.03), key


def test_default_order_on_base_costs_under_one_percent_of_its_reward():
    from wallet.fees import happy_path_per_shard

    base = get_network("base")
    for payees in (1, 4):  # one miner took all four shards, or four miners one each
        c = happy_path_per_shard(base, 4, payees=payees)
        assert fee_share(c.total_wei, 3000.0, 10 * NTK, 0.01) < 0.01
    eth = happy_path_per_shard(get_network("mainnet"), 4)
    assert fee_share(eth.total_wei, 3000.0, 10 * NTK, 0.01) > 0.5  # on Ethereum it is not worth posting
