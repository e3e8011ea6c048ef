"""Money-safety of MinerService on a real EVM (py-evm, our contracts): a claim whose reply is
lost after it was sent is adopted from the chain (never dropped, never sent twice); one job
stuck on its upload does not hold back the payment of the others."""

from __future__ import annotations

import time

from tests.agent.conftest import NTK, render_spec_bytes, step_until
from wallet.errors import RpcUnavailable
from wallet.market import JobStatus, MarketClient


class ReplyLost(MarketClient):
    """The real market client; the node goes away after a claim was sent, before its receipt."""

    def claim(self, account, job_id):
        super().claim(account, job_id)
        raise RpcUnavailable(f"claiming job {job_id}: the node went away before the receipt came back")


def test_a_claim_sent_whose_reply_is_lost_is_adopted_from_the_chain(world):
    job_id = world.post(render_spec_bytes(frames=1), reward_ntk=2)
    lossy = ReplyLost(world.chain, world.market.deployment)
    svc = world.service(backoff_first_s=0.01, backoff_cap_s=0.01)
    svc.market = lossy
    svc.step(start=False)
    assert world.market.job(job_id).status == JobStatus.CLAIMED  # the claim is on the chain
    assert svc.status_text().startswith("waiting for RPC")
    r = svc.row(job_id)
    assert r is not None and r.state == "claiming", r  # not forgotten while the chain holds our stake
    svc.market = world.market  # the node is back
    time.sleep(0.05)
    svc.step(start=False)
    r = svc.row(job_id)
    assert r.state == "running" and svc.queue.get(svc.queue_id(job_id)).state == "queued"
    assert world.market.job(job_id).miner == world.miner.address
    svc.step(start=False)
    assert [q.id for q in svc.queue.list() if svc.market_id(q.id) == job_id] == [svc.queue_id(job_id)]


def test_a_job_stuck_on_its_upload_does_not_hold_back_the_others_payment(world, tmp_path):
    world.ctx.settings.jobs.cpu_slots = 2
    stuck = world.post(render_spec_bytes(frames=1, width=64, height=48), reward_ntk=1)
    paid = world.post(render_spec_bytes(frames=1, width=80, height=60), reward_ntk=3, review_s=60)
    svc = world.service(backoff_first_s=0.01, backoff_cap_s=0.01)
    for j in (stuck, paid):
        assert step_until(svc, j, {"running"}, claim=True) == "running"
    while not svc.scheduler.wait_idle(0.2):  # both renders end
        svc.poll_devices()
        svc.scheduler.tick()
    for _ in range(3):  # the second one is uploaded and submitted; the first waits in `running`
        svc._advance(svc.row(paid))
    assert svc.row(paid).state == "submitted" and world.market.job(paid).status == JobStatus.SUBMITTED
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the shared store's folder should be")
    svc.store.remote = (blocker / "store").as_uri()  # every upload now fails (the first job's result)
    world.tester.time_travel(world.chain.latest_timestamp() + 120)  # the buyer never answered
    before = world.market.token.balance_of(world.miner.address)
    time.sleep(0.05)
    svc.step(claim=False)
    assert svc.row(paid).state == "paid", svc.row(paid)
    assert world.market.token.balance_of(world.miner.address) - before == 3 * NTK
    assert svc.row(stuck).state == "running"  # kept, tried again after the backoff
    assert svc.status_text().startswith("waiting for the artifact store")


def test_a_result_ready_after_the_deadline_is_given_up_not_submitted_every_pass(world):
    job_id = world.post(render_spec_bytes(frames=1), reward_ntk=1, deadline_s=3600)
    svc = world.service()
    assert step_until(svc, job_id, {"running"}) == "running"
    assert svc.scheduler.wait_idle(60)
    svc._advance(svc.row(job_id))  # the result is noted; then the process stopped before the submit
    assert svc.row(job_id).state == "uploaded"
    world.tester.time_travel(world.chain.latest_timestamp() + 3700)  # back after the deadline
    svc.step(claim=False)
    r = svc.row(job_id)
    assert r.state == "failed" and "deadline" in r.reason, r
    assert world.market.job(job_id).status == JobStatus.CLAIMED  # the buyer takes the escrow back


def test_a_job_that_cannot_finish_before_the_deadline_in_chain_time_is_given_up(world):
    """The chain's clock runs ahead of the wall clock (evm_increaseTime, a node's skew): whether
    a running job can still make its deadline is judged from the chain's time."""
    job_id = world.post(render_spec_bytes(frames=400, width=160, height=120), reward_ntk=1, deadline_s=7200)
    svc = world.service()
    assert step_until(svc, job_id, {"running"}) == "running"
    end = time.monotonic() + 60
    while svc.expected_left_s(svc.queue_id(job_id)) is None and time.monotonic() < end:
        svc.step(claim=False)
        time.sleep(0.2)
    left = svc.expected_left_s(svc.queue_id(job_id))
    assert left is not None and left > 1, left
    deadline = world.market.job(job_id).deadline
    world.tester.time_travel(deadline - 10)  # 10 chain seconds left; the wall clock says two hours
    svc.step(claim=False)
    r = svc.row(job_id)
    assert r.state == "failed" and "expected to finish" in r.reason, r
    assert svc.scheduler.wait_idle(30) and svc.queue.get(svc.queue_id(job_id)).state == "cancelled"


def test_an_acceptance_whose_recording_failed_is_recorded_on_the_next_pass(world):
    """The buyer accepts; noting the payment fails once (the ledger file busy, or the process
    killed there): the next pass records it, not only after the review window."""
    from app.earnings import Ledger

    job_id = world.post(render_spec_bytes(frames=1), reward_ntk=2, review_s=3600)
    svc = world.service()
    assert step_until(svc, job_id, {"submitted"}) == "submitted"
    world.market.accept(world.buyer, job_id)
    broken = Ledger(world.tmp / "other-ledger.sqlite")
    broken.close()  # every write fails
    svc.ledger = broken
    svc.step(claim=False)
    assert svc.row(job_id).state == "submitted"
    svc.ledger = world.ledger
    svc.step(claim=False)
    r = svc.row(job_id)
    assert r.state == "paid", r
    assert [p.amount_wei for p in world.ledger.payments()] == [2 * NTK]
