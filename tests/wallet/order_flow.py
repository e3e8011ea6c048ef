"""Helpers for the OrderMarket tests: post an order, and the signed messages each side sends."""

from __future__ import annotations

import os

import pytest

from wallet.errors import ContractRevert
from wallet.order_market import OrderTerms
from wallet.order_messages import Claim, ResultAck, ResultCommit, Voucher, key_hash

NTK = 10**18
DAY = 86_400
SPEC = "0x" + "ab" * 32
EVIDENCE = "0x" + "ee" * 32


def post(env, *, shards=4, reward=10 * NTK, stake=None, deadline_in=3_600, review=600, redeem=600,
         signed_shards=None, who=None) -> int:
    """Post an order; `stake` (wei per claim) defaults to a fifth of the reward."""
    bps = 2_000 if stake is None else stake * 10_000 // max(reward, 1)
    assert stake is None or bps * reward == stake * 10_000, "the stake must be whole basis points of the reward"
    terms = OrderTerms("render", SPEC, "p2p://spec", shards, reward, env.now() + deadline_in, review, redeem,
                       stake_bps=bps, signed_shards=signed_shards)
    order_id, _ = env.om.post_order(who or env.buyer, terms)
    return order_id


def claim(env, order_id, shard, *, miner=None, payout=None) -> Claim:
    return Claim(order_id, shard, (miner or env.miner).address, (payout or env.payout).address)


def grant(env, order_id, shard, **kw):
    """The buyer's grant: the claim signed by the buyer."""
    return env.om.sign(claim(env, order_id, shard, **kw), env.buyer)


def confirm(env, order_id, shard, *, miner=None, payout=None):
    """The miner's confirmation: the same claim signed by the mining key (binds its stake)."""
    m = miner or env.miner
    return env.om.sign(claim(env, order_id, shard, miner=m, payout=payout), m)


def result(seed: int = 1) -> tuple[bytes, bytes, bytes]:
    """(result hash, content key, key hash) of a made-up encrypted result."""
    key = os.urandom(32)
    return bytes([seed]) * 32, key, key_hash(key)


def commit(env, order_id, shard, res, *, miner=None, payout=None):
    m = miner or env.miner
    return env.om.sign(ResultCommit(order_id, shard, m.address, (payout or env.payout).address, res[0], res[2]), m)


def ack(env, order_id, shard, res, *, miner=None, payout=None):
    fields = (order_id, shard, (miner or env.miner).address, (payout or env.payout).address, res[0], res[2])
    return env.om.sign(ResultAck(*fields), env.buyer)


def voucher(env, order_id, shards, *, payee=None, signer=None):
    return env.om.sign(Voucher.of(order_id, (payee or env.payout).address, shards), signer or env.buyer)


def stake(env, amount=10 * NTK, *, miner=None, payout=None):
    env.om.deposit_stake(payout or env.payout, (miner or env.miner).address, amount)


def refused(name: str):
    return pytest.raises(ContractRevert, match=rf"\b{name}\(")
