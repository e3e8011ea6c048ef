"""What the order market paid a rig, read back from the chain's events (a real indexer over the
in-memory chain): a batched redemption that paid several shards in one event and one transfer
counts each shard once, at its reward; a second rig sharing the payout address counts none of
another rig's shards; the ledger keeps each shard once however often it is fed."""

from __future__ import annotations

import pytest

import tests.orders.workload as workload
from tests.orders.conftest import NTK

JOB = {"frames": workload.FRAMES, "seed": 3}
REWARD = 4 * NTK


def test_a_batched_redemption_is_booked_per_shard_once_and_only_for_the_rig_that_delivered(parties, tmp_path):
    from app.earnings import Ledger, LedgerConflict
    from app.orders.rig import PAID_EVENTS, shards_paid
    from wallet.indexer import for_deployment

    p = parties(redeem_after_s=3_600)  # vouchers wait: both shards are paid by one redemption
    env = p.env
    oid = p.buyer.post(JOB, shards=2, reward_each_wei=REWARD, deadline_s=3_600, review_window_s=600,
                       redeem_window_s=600, inputs={"scene": p.scene})
    p.run(lambda: {v["stage"] for v in p.miner.shards().values()} == {"vouched"} and len(p.miner.shards()) == 2)
    before = env.balance(env.payout)
    p.miner.redeem_after_s = 0
    p.run(lambda: {v["stage"] for v in p.miner.shards().values()} == {"paid"})
    assert env.balance(env.payout) - before == 2 * REWARD

    idx = for_deployment(env.chain, tmp_path / "index.sqlite", env.deployment)
    try:
        idx.sync()
        evs = idx.events_after(-1, -1, names=PAID_EVENTS)
    finally:
        idx.close()
    redeemed = [e for e in evs if e.name == "VoucherRedeemed"]
    assert len(redeemed) == 1 and int(redeemed[0].args["shards"]) == 0b11  # one event, one transfer, two shards
    assert int(redeemed[0].args["amount"]) == 2 * REWARD

    def delivered(order_id: int, shard: int) -> bool:
        return "commit" in p.miner.shards().get(f"{order_id}:{shard}", {})

    mine = shards_paid(evs, order_market=env.om.address, payout=env.payout.address, miner=env.miner.address,
                       delivered=delivered)
    assert [(s.order_id, s.shard, s.amount_wei, s.tx_hash) for s in mine] == \
        [(oid, 0, REWARD, redeemed[0].tx_hash), (oid, 1, REWARD, redeemed[0].tx_hash)]
    # another rig paid to the same address did none of these shards: nothing is its
    assert shards_paid(evs, order_market=env.om.address, payout=env.payout.address, miner=env.miner2.address,
                       delivered=lambda o, s: False) == []
    # another payout address: nothing either
    assert shards_paid(evs, order_market=env.om.address, payout=env.stranger.address, miner=env.miner.address,
                       delivered=delivered) == []

    led = Ledger(tmp_path / "ledger.sqlite")
    try:
        for _ in range(2):  # fed twice (a restart reads the events again): booked once
            new = [led.record_order_payment(env.om.address, s.order_id, s.shard, s.tx_hash, s.amount_wei,
                                            timestamp=s.timestamp, device_key="cpu") for s in mine]
        assert new == [False, False]
        assert led.wei_by_market() == {"job": 0, "order": 2 * REWARD} and led.total_wei("cpu") == 2 * REWARD
        assert [p.ref for p in led.payments()] == [f"p2p:{oid} shard 0", f"p2p:{oid} shard 1"]
        with pytest.raises(LedgerConflict):
            led.record_order_payment(env.om.address, oid, 0, "0x" + "ab" * 32, REWARD, timestamp=1.0, device_key="cpu")
    finally:
        led.close()
