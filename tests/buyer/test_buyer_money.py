"""Money-safety of BuyerService on a real EVM (py-evm, our contracts): one shard whose result
cannot be fetched neither blocks the other shards (their refunds, their verification) nor is
left to be released unverified: it is rejected, with the reason, before its window closes."""

from __future__ import annotations

from tests.buyer.conftest import NTK, TABLE
from wallet.market import JobStatus


def test_an_unfetchable_result_blocks_no_other_shard_and_is_rejected_before_its_window_closes(buyer, chain_env):
    from dataclasses import replace

    tester, m, acc = chain_env
    # a host the buyer trusts (Settings → Jobs → Trusted input hosts) that is down; an untrusted
    # loopback URI is refused at once (tests/buyer/test_poisoned_results.py)
    buyer.verifier.policy = replace(buyer.verifier.policy, allow_hosts=frozenset({"127.0.0.1"}))
    start = m.token.balance_of(acc[1].address)
    o = buyer.post_render(TABLE, count=2, shards=2, reward_each_wei=2 * NTK, deadline_s=300, review_window_s=600)
    s0, s1 = o.shards
    m.claim(acc[2], s0.job_id)
    # a hash with a URI nobody serves (a miner who never uploaded, or a dead host)
    m.submit(acc[2], s0.job_id, "0x" + "cd" * 32, "http://127.0.0.1:9/never-uploaded")
    m.claim(acc[2], s1.job_id)  # claimed, never delivered
    buyer.step()
    assert [s.state for s in buyer.order(o.id).shards] == ["submitted", "claimed"]
    tester.time_travel(m.chain.latest_timestamp() + 400)  # past the deadline, inside shard 0's review window
    lines = buyer.step()
    o = buyer.order(o.id)
    assert o.shards[1].state == "refunded", lines  # not held back by shard 0
    assert m.job(s1.job_id).status == JobStatus.REFUNDED
    assert o.shards[0].state == "submitted" and any("will retry" in line for line in lines)  # it may come up yet
    tester.time_travel(m.job(s0.job_id).submitted_at + 600 - 30)  # the window is about to close
    lines = buyer.step()
    o = buyer.order(o.id)
    s = o.shards[0]
    assert s.state == "rejected" and s.verified is False, lines
    assert "could not be fetched" in s.figures["check"] and "could not be fetched" in s.reason
    assert m.job(s0.job_id).status == JobStatus.REJECTED
    assert m.token.balance_of(acc[1].address) == start and m.token.balance_of(acc[2].address) == 0


def test_on_the_embedded_chain_an_overdue_job_is_refunded_though_no_block_came_since(tmp_path):
    """The embedded chain makes blocks only for transactions: its time stands still while the
    buyer waits. An overdue job is still refunded (the buyer makes the block that passes it)."""
    import time

    from eth_account import Account

    from app.buyer import BuyerService
    from tests.buyer.conftest import context
    from wallet.chain import Chain
    from wallet.deploy import deploy_all
    from wallet.embedded import EmbeddedChain
    from wallet.market import MarketClient

    user = Account.create()
    with EmbeddedChain(tmp_path / "chain", user.address) as ec:
        chain = Chain.over_embedded(ec, lock_dir=tmp_path)
        m = MarketClient(chain, deploy_all(chain, user))
        m.token.mint(user, user.address, 10 * NTK)
        svc = BuyerService(context(tmp_path / "buyer"), m, user)
        try:
            o = svc.post_render(TABLE, count=1, shards=1, reward_each_wei=4 * NTK, deadline_s=3, review_window_s=60)
            assert m.token.balance_of(user.address) == 6 * NTK
            time.sleep(o.deadline + 2.2 - time.time())  # nobody claims it; no transaction meanwhile
            svc.step()
            s = svc.order(o.id).shards[0]
            assert s.state == "refunded" and m.job(s.job_id).status == JobStatus.REFUNDED
            assert m.token.balance_of(user.address) == 10 * NTK
        finally:
            svc.close()


def test_on_the_embedded_chain_a_reject_too_late_for_the_chain_records_the_figures_and_stops(tmp_path):
    """The last block is older than the wall clock: the buyer's answer looks in time but the
    block it lands in is past the window. The refusal is recorded (figures kept, the miner may
    release), not retried on every pass."""
    import json
    import time

    from eth_account import Account

    from app.buyer import BuyerService
    from jobs.artifacts import ArtifactStore
    from tests.buyer.conftest import context
    from wallet.chain import Chain
    from wallet.deploy import deploy_all
    from wallet.embedded import EmbeddedChain
    from wallet.market import MarketClient

    user, miner = Account.create(), Account.create()
    with EmbeddedChain(tmp_path / "chain", user.address) as ec:
        chain = Chain.over_embedded(ec, lock_dir=tmp_path)
        m = MarketClient(chain, deploy_all(chain, user))
        m.token.mint(user, user.address, 10 * NTK)
        chain.transact(user, to=miner.address, value_wei=NTK, gas=21_000)
        svc = BuyerService(context(tmp_path / "buyer"), m, user)
        try:
            o = svc.post_render(TABLE, count=2, shards=1, reward_each_wei=4 * NTK, deadline_s=600, review_window_s=2)
            (s,) = o.shards
            m.claim(miner, s.job_id)
            d = tmp_path / "wrong"
            d.mkdir()
            (d / "dataset.json").write_text(json.dumps({"format": "kminer-render-dataset",
                                                        "spec_hash": o.params["spec_hash"], "seed": o.params["seed"],
                                                        "frame_ranges": [[0, 1]], "counts": {"images": 1},
                                                        "time": {"seconds": 1.0, "started_utc": "2024-01-01T00:00:00Z"}}))
            store = ArtifactStore(tmp_path / "miner-store")
            sha = store.put_dir(d)
            m.submit(miner, s.job_id, "0x" + sha, store.path(sha).as_uri())
            svc.step()
            assert svc.order(o.id).shards[0].state == "submitted"
            time.sleep(m.job(s.job_id).submitted_at + 3.2 - time.time())  # no block meanwhile
            eth = chain.balance_wei(user.address)
            svc.step()
            svc.step()
            assert chain.balance_wei(user.address) == eth  # no transaction doomed to revert was paid for
            s = svc.order(o.id).shards[0]
            assert s.state == "released" and s.verified is False, s
            assert "holds frames [[0, 1]]" in s.figures["check"]
            assert m.job(s.job_id).status == JobStatus.SUBMITTED  # the miner may release
            m.release(miner, s.job_id)
            assert m.token.balance_of(miner.address) == 4 * NTK
        finally:
            svc.close()


def test_an_order_whose_post_never_left_is_posted_by_the_next_pass(chain_env, tmp_path):
    """The node is down when the order is posted (or the app dies before the post): the order
    is recorded, nothing is escrowed; the next pass posts it once, never leaves it `open` with
    no market job behind it."""
    import pytest

    from app.buyer import BuyerService
    from tests.buyer.conftest import context
    from wallet.errors import RpcUnavailable
    from wallet.market import MarketClient

    _, m, acc = chain_env

    class NodeDown(MarketClient):
        def job_count(self):
            raise RpcUnavailable("the node is not answering")

    svc = BuyerService(context(tmp_path / "b"), NodeDown(m.chain, m.deployment), acc[1])
    try:
        start = m.token.balance_of(acc[1].address)
        with pytest.raises(RpcUnavailable):
            svc.post_render(TABLE, count=2, shards=2, reward_each_wei=NTK, deadline_s=3600, review_window_s=600)
        (o,) = svc.orders()
        assert m.job_count() == 0 and m.token.balance_of(acc[1].address) == start
        svc.market = m  # the node is back
        svc.step()
        o = svc.order(o.id)
        assert o.state == "open" and [s.state for s in o.shards] == ["open", "open"], o
        assert m.job_count() == 2 and sorted(s.job_id for s in o.shards) == [1, 2]
        assert m.token.balance_of(acc[1].address) == start - 2 * NTK
        svc.step()
        assert m.job_count() == 2
    finally:
        svc.close()
