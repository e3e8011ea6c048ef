"""Attacks on the OrderMarket's signed paths, on a real EVM: forged, replayed, stale,
malleated and misdirected signatures, double redemption, redemption beyond the escrow,
claims on closed orders, and re-entrancy through a hostile token."""

from __future__ import annotations

import pytest
from eth_account import Account

from tests.wallet.order_flow import NTK, claim, confirm, grant, post, refused, result, stake, voucher
from wallet.order_messages import SECP256K1_N, Claim, Domain, MessageError, Signed, Voucher


def _malleate(sig: bytes) -> bytes:
    """The other valid signature of the same message: s -> n - s, v flipped."""
    s = int.from_bytes(sig[32:64], "big")
    return sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])


def test_a_voucher_signed_by_anyone_but_the_buyer_is_refused(order_env):
    env = order_env
    oid = post(env, shards=2)
    for signer in (env.miner, env.stranger, env.payout):
        with refused("BadSignature"):
            env.om.redeem(env.miner, [voucher(env, oid, [0, 1], signer=signer)])
    assert env.om.order(oid).paid_bits == 0


def test_altered_voucher_fields_break_the_signature(order_env):
    env = order_env
    a, b = post(env, shards=2), post(env, shards=2)
    good = voucher(env, a, [0])
    for forged in (Voucher(b, good.message.payee, 1), Voucher(a, env.stranger.address, 1), Voucher(a, good.message.payee, 3)):
        with refused("BadSignature"):  # another order, payee or shard set under the same signature
            env.om.redeem(env.stranger, [Signed(forged, good.signature)])


def test_vouchers_from_another_chain_or_deployment_are_refused(order_env):
    env = order_env
    oid = post(env, shards=1)
    v = Voucher.of(oid, env.payout.address, [0])
    for domain in (Domain(env.chain.chain_id + 1, env.om.address),  # same contract address, another chain
                   Domain(env.chain.chain_id, env.deployment.job_market)):  # same chain, another contract
        with refused("BadSignature"):
            env.om.redeem(env.miner, [v.sign(env.buyer, domain)])
    env.om.redeem(env.miner, [env.om.sign(v, env.buyer)])
    assert env.om.order(oid).paid_shards == [0]


def test_replayed_and_stale_vouchers_pay_nothing_more(order_env):
    env = order_env
    oid = post(env, shards=3, reward=2 * NTK)
    old, new = voucher(env, oid, [0]), voucher(env, oid, [0, 1])
    before = env.balance(env.payout)
    (r1,) = env.om.redeem(env.miner, [new])
    (r2,) = env.om.redeem(env.miner, [new, new, old])  # replayed, twice in one batch, and a stale one
    assert (r1.paid_wei, r2.paid_wei) == (4 * NTK, 0)
    assert env.balance(env.payout) == before + 4 * NTK


def test_malleable_and_malformed_signatures_are_refused_on_chain_and_here(order_env):
    env = order_env
    oid = post(env, shards=1)
    good = voucher(env, oid, [0])
    high_s = _malleate(good.signature)
    wrong_v = [good.signature[:64] + bytes([v]) for v in (0, 1, 29)]
    short = good.signature[:64]
    for sig in (high_s, *wrong_v, short, b"", good.signature + b"\x00"):
        bad = Signed(good.message, sig)
        with pytest.raises(MessageError):
            bad.signer(env.om.domain)
        with refused("BadSignature"):
            env.om.redeem(env.miner, [bad])
    env.om.redeem(env.miner, [good])


def test_a_voucher_beyond_the_order_shards_is_refused(order_env):
    env = order_env
    oid = post(env, shards=3, reward=NTK)
    with refused("BadShard"):  # shard 3 of a 3-shard order would draw a fourth reward from the escrow
        env.om.redeem(env.miner, [env.om.sign(Voucher(oid, env.payout.address, 0b1111), env.buyer)])


def test_no_shard_is_paid_twice_so_the_escrow_is_never_overdrawn(order_env):
    env = order_env
    a = post(env, shards=2, reward=5 * NTK)
    b = post(env, shards=2, reward=5 * NTK)  # another order's escrow sits in the same contract
    res = result()
    env.om.submit_result(env.miner, grant(env, a, 0), res[0], res[2])
    # a buyer who promises shard 0 to two payees and also leaves it to the fallback
    env.om.redeem(env.stranger, [voucher(env, a, [0, 1], payee=env.stranger), voucher(env, a, [0, 1])])
    env.travel(700)
    with refused("ShardPaid"):
        env.om.release(env.miner, claim(env, a, 0), res[0], res[1])
    assert env.om.order(a).escrow_wei == 0
    assert env.om.order(b).escrow_wei == 10 * NTK
    assert env.om.token.balance_of(env.om.address) == 10 * NTK


def test_claims_and_submissions_on_a_closed_order_are_refused(order_env):
    env = order_env
    oid = post(env, shards=2, signed_shards=1, deadline_in=100, review=60, redeem=60)
    stake(env)
    env.travel(300)
    env.om.refund(env.buyer, oid)
    res = result()
    with refused("OrderIsClosed"):
        env.om.claim_onchain(env.miner, oid, 1, env.payout.address)
    with refused("OrderIsClosed"):
        env.om.submit_result(env.miner, grant(env, oid, 0), res[0], res[2])


def test_grants_and_acks_must_come_from_the_buyer(order_env):
    env = order_env
    oid = post(env, shards=2, signed_shards=1)
    res = result()
    with refused("BadSignature"):  # the miner granting itself a shard
        env.om.submit_result(env.miner, confirm(env, oid, 0), res[0], res[2])
    with refused("BadShard"):  # a grant cannot take a shard reserved for on-chain claims
        env.om.submit_result(env.miner, grant(env, oid, 1), res[0], res[2])
    with refused("NotMiner"):  # a stranger cannot submit in the miner's name
        env.om.submit_result(env.stranger, grant(env, oid, 0), res[0], res[2])
    with refused("NoSuchOrder"):
        env.om.submit_result(env.miner, env.om.sign(Claim(99, 0, env.miner.address, env.payout.address), env.buyer),
                             res[0], res[2])


def test_a_grant_for_one_order_does_not_open_another(order_env):
    env = order_env
    a, b = post(env, shards=1), post(env, shards=1)
    g = grant(env, a, 0)
    res = result()
    forged = Signed(Claim(b, 0, g.message.miner, g.message.payout), g.signature)
    with refused("BadSignature"):
        env.om.submit_result(env.miner, forged, res[0], res[2])


def _hostile_market(env):
    """An OrderMarket paying in HostileToken, which calls back into the market from `transfer`."""
    from wallet import artifacts
    from wallet.order_market import OrderMarketClient

    chain, owner = env.chain, env.accounts[0]
    art = artifacts.load("HostileToken")
    tok = chain.transact(owner, chain.w3.eth.contract(abi=art.abi_list(), bytecode=art.bytecode).constructor(),
                         gas=3_000_000).receipt["contractAddress"]
    om_art = artifacts.load("OrderMarket")
    addr = chain.transact(owner, chain.w3.eth.contract(abi=om_art.abi_list(), bytecode=om_art.bytecode).constructor(tok),
                          gas=6_000_000).receipt["contractAddress"]
    token = chain.w3.eth.contract(address=tok, abi=art.abi_list())
    chain.transact(owner, token.functions.mint(env.buyer.address, 100 * NTK), gas=100_000)
    return OrderMarketClient(chain, addr), token


def test_reentrant_redeem_through_a_hostile_token_is_refused(order_env):
    env = order_env
    om, token = _hostile_market(env)
    env.om, saved = om, env.om
    try:
        oid = post(env, shards=2, reward=5 * NTK)
        v = voucher(env, oid, [0, 1], payee=env.stranger)
        again = om.contract.functions.redeem([(oid, v.message.payee, v.message.shards)], [v.signature])
        data = again.build_transaction({"from": env.stranger.address, "gas": 1, "nonce": 0, "maxFeePerGas": 1,
                                        "maxPriorityFeePerGas": 1})["data"]
        env.chain.transact(env.accounts[0], token.functions.arm(om.address, data), gas=1_000_000)
        env.chain.transact(env.stranger, again, gas=1_000_000)  # the re-entrant call needs gas to fail on its own
        assert env.chain.call(token.functions.attempts()) == 1
        assert env.chain.call(token.functions.lastReentrySucceeded()) is False
        err = bytes(env.chain.call(token.functions.lastReentryError()))
        from wallet.errors import decode_revert
        assert decode_revert(err).name == "ReentrancyGuardReentrantCall"
        assert env.chain.call(token.functions.balanceOf(env.stranger.address)) == 10 * NTK
        assert env.chain.call(token.functions.balanceOf(om.address)) == 0
    finally:
        env.om = saved


def test_python_recover_agrees_with_eth_account():
    acct = Account.create()
    d = Domain(1, "0x" + "22" * 20)
    s = Voucher.of(3, acct.address, [1]).sign(acct, d)
    assert s.signer(d) == acct.address
    assert Signed(s.message, _malleate(s.signature)).message == s.message
    with pytest.raises(MessageError, match="malleated"):
        Signed(s.message, _malleate(s.signature)).signer(d)
