"""A stake refusal belongs to one (mining key, payout, order): the real OrderBuyer and its desk
over HTTP on 127.0.0.1, the real OrderMiner, the in-memory chain. A refusal on an expensive
order does not refuse the same key on a cheap one, and a miner whose stake covers one claim at
a time is not made to give up the order's other shards ("try later": asked again)."""

from __future__ import annotations

import app.orders.miner as miner_mod
import tests.orders.workload as workload
from app.orders.claims import MAX_CLAIM_CHECKS
from app.orders.desk import DeskClient
from tests.orders.conftest import NTK
from tests.orders.test_claim_fairness import _claim, _granted
from tests.orders.test_desk_attacks import _post_raw

JOB = {"frames": workload.FRAMES, "seed": 7}


def _post(p, *, shards: int, reward: int) -> int:
    return p.buyer.post(JOB, shards=shards, reward_each_wei=reward, deadline_s=3_600, review_window_s=600,
                        redeem_window_s=600, inputs={"scene": p.scene}, stake_bps=10_000)


def test_a_refusal_on_one_order_does_not_refuse_the_key_on_another(parties):
    p = parties()
    env, d = p.env, p.buyer.desk
    cheap, dear = _post(p, shards=2, reward=NTK), _post(p, shards=2, reward=100 * NTK)
    env.om.deposit_stake(env.stranger, env.miner2.address, 2 * NTK)
    assert _post_raw(d, _claim(env, dear, 0, env.miner2, env.stranger.address), "127.0.3.1") == 202
    p.buyer.step()
    got = DeskClient(d.url).status(dear, 0, env.miner2.address)
    assert got["state"] == "refused" and "try later" in got["reason"], got
    assert _post_raw(d, _claim(env, cheap, 0, env.miner2, env.stranger.address), "127.0.3.1") == 202
    events = p.buyer.step()
    assert _granted(events, 0, env.miner2.address), events  # without the fix: "refused a moment ago"
    # the same order and payout again: remembered, no chain read
    assert _post_raw(d, _claim(env, dear, 1, env.miner2, env.stranger.address), "127.0.3.1") == 202
    p.buyer.step()
    assert "a moment ago" in DeskClient(d.url).status(dear, 1, env.miner2.address)["reason"]
    assert p.buyer._claim_checks == MAX_CLAIM_CHECKS  # no chain read spent on it


def test_a_stake_for_one_claim_at_a_time_still_completes_every_shard(parties, monkeypatch):
    """50 NTK of stake, 30 NTK a claim, two slots: the second shard is refused while the
    first is open, asked again later, granted once the first is done."""
    monkeypatch.setattr(miner_mod, "CLAIM_AGAIN_S", 0.2)
    p = parties(slots=2)
    oid = _post(p, shards=2, reward=30 * NTK)
    log = p.run(lambda: p.buyer.done(oid), steps=600)  # without the fix: shard 1 "lost" for good
    assert any("try later" in e for e in log), log
    assert p.miner.shards()[f"{oid}:1"]["stage"] in ("committed", "paid"), p.miner.shards()
