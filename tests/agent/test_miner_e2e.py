"""The miner agent end to end on a real EVM (py-evm, our contracts) in one process: a buyer
posts a small render job, MinerService claims it, renders it in the real sandboxed worker,
uploads and submits the result, releases the payment after the review window; a restart
between submit and payment runs nothing twice."""

from __future__ import annotations

import hashlib
import time

from app.runtime import open_queue
from jobs.artifacts import ArtifactStore
from tests.agent.conftest import NTK, render_spec_bytes, step_until
from wallet.deploy import deploy_all
from wallet.market import JobStatus, MarketClient


def test_buyer_posts_miner_renders_submits_and_is_paid(world):
    m, miner, ctx, ledger, tmp_path = world.market, world.miner, world.ctx, world.ledger, world.tmp
    data = render_spec_bytes()
    # a job with a spec that does not match its hash is never claimed
    bad_id = world.post(data, spec_hash="0x" + "11" * 32, name="spec.json")
    job_id = world.post(data, reward_ntk=5, name="spec.json")
    before = m.token.balance_of(miner.address)
    svc = world.service()
    try:
        # a floor above what the job pays: nothing is claimed
        ctx.settings.device("cpu").price_floor_ntk_per_hour = 10**9
        svc.step()
        assert svc.row(job_id) is None and m.job(job_id).status == JobStatus.OPEN
        ctx.settings.device("cpu").price_floor_ntk_per_hour = 1.0

        assert step_until(svc, job_id, {"submitted", "failed"}) == "submitted", svc.row(job_id)
        assert svc.row(bad_id) is None and m.job(bad_id).status == JobStatus.OPEN
        j = m.job(job_id)
        assert j.status == JobStatus.SUBMITTED and j.miner == miner.address
        r = svc.row(job_id)
        # the buyer fetches the result by its URI and hash into its own store
        got = ArtifactStore(tmp_path / "buyer" / "store").fetch(j.result_hash.removeprefix("0x"), j.result_uri)
        assert got.stat().st_size > 0 and r.output_sha == j.result_hash.removeprefix("0x")
        svc.step()  # the review window is still open: no release
        assert m.job(job_id).status == JobStatus.SUBMITTED
        claim_to_progress = r.first_progress_at - r.claimed_at
    finally:
        svc.close()

    # restart (a new service on the same files), then the window closes: the miner releases
    world.tester.time_travel(world.chain.latest_timestamp() + 700)
    svc = world.service()
    try:
        assert step_until(svc, job_id, {"paid"}, timeout_s=20) == "paid"
        r = svc.row(job_id)
        assert len(svc.queue.attempts(svc.queue_id(job_id))) == 1  # rendered once
        assert m.job(job_id).status == JobStatus.RELEASED
        assert m.token.balance_of(miner.address) - before == 5 * NTK
        pays = ledger.payments()
        assert [(p.job_id, p.amount_wei, p.device_key) for p in pays] == [(job_id, 5 * NTK, "cpu")]
        assert ledger.total_wei("cpu") == 5 * NTK
        lines = svc.device_lines()
        assert lines[0]["device"] == "cpu" and lines[0]["earned_today_wei"] == 5 * NTK
        print(f"claim->first progress {claim_to_progress:.2f} s; result->payment {r.paid_at - r.uploaded_at:.2f} s")
    finally:
        svc.close()


def test_stopped_mid_render_resumes_once_and_takes_the_buyers_acceptance(world):
    m, buyer, miner, ledger = world.market, world.buyer, world.miner, world.ledger
    job_id = world.post(render_spec_bytes(frames=3), reward_ntk=3)
    before = m.token.balance_of(miner.address)
    svc = world.service()
    try:
        assert step_until(svc, job_id, {"running"}) == "running"
        assert svc.scheduler.running()  # the render is under way
    finally:
        svc.close()  # the app stops mid-job: the attempt is stopped and the job requeued
    svc = world.service()
    try:
        assert step_until(svc, job_id, {"submitted"}) == "submitted"
        attempts = svc.queue.attempts(svc.queue_id(job_id))
        assert len(attempts) == 2 and attempts[0].reason == "app stopped"  # the stopped attempt, then one run
        assert [a.state for a in attempts][-1] == "succeeded" and sum(a.state == "succeeded" for a in attempts) == 1
        tx = m.accept(buyer, job_id).tx_hash
        assert step_until(svc, job_id, {"paid"}, timeout_s=20) == "paid"
        assert m.token.balance_of(miner.address) - before == 3 * NTK
        assert [(p.job_id, p.amount_wei, p.tx_hash) for p in ledger.payments()] == [(job_id, 3 * NTK, tx)]
    finally:
        svc.close()


def test_a_claim_interrupted_before_it_was_noted_is_settled_from_the_chain(world):
    """kill -9 between writing `claiming` and the claim's receipt: the chain decides."""
    m = world.market
    data = render_spec_bytes()
    sha = hashlib.sha256(data).hexdigest()
    ids = [world.post(data, name="spec.json") for _ in range(2)]
    spec_uri = m.job(ids[0]).spec_uri
    m.claim(world.miner, ids[0])  # our claim went through before the crash
    m.claim(world.other, ids[1])  # ours did not; someone else took the job
    world.devices.set_mode("cpu", "idle")  # nothing new is claimed
    svc = world.service()
    try:
        with svc.db._lock:
            for i in ids:
                svc.db._db.execute("INSERT INTO market_jobs (job_id, state, kind, reward_wei, spec_sha, spec_uri, updated_at) "
                                "VALUES (?, 'claiming', 'render', ?, ?, ?, 0)", (i, str(NTK), sha, spec_uri))
        svc.step()
        assert svc.row(ids[1]) is None
        assert svc.row(ids[0]).state == "running" and svc.queue.get(svc.queue_id(ids[0])).state == "queued"
    finally:
        svc.close()


def test_a_job_past_its_deadline_is_given_up(world):
    m = world.market
    job_id = world.post(render_spec_bytes(frames=3), deadline_s=3600)
    svc = world.service()
    try:
        assert step_until(svc, job_id, {"running"}) == "running"
        world.tester.time_travel(world.chain.latest_timestamp() + 3700)
        svc.step()
        r = svc.row(job_id)
        assert r.state == "failed" and "deadline" in r.reason
        assert svc.scheduler.wait_idle(30)
        assert svc.queue.get(svc.queue_id(job_id)).state == "cancelled"
        assert m.job(job_id).status == JobStatus.CLAIMED  # never submitted
    finally:
        svc.close()


def test_a_crash_after_the_run_or_after_the_upload_runs_nothing_twice(world):
    """The process dies (no clean close) once the render has finished but before the miner
    noted it, and once it noted the upload but before the submit: the next service submits
    the same result, rendered once."""
    m = world.market
    ids = [world.post(render_spec_bytes(frames=frames)) for frames in (2, 3)]
    world.ctx.settings.jobs.cpu_slots = 2
    crashed = world.service()
    for j in ids:
        assert step_until(crashed, j, {"running"}) == "running"
    while not crashed.scheduler.wait_idle(0.2):  # the renders end; the chain side never hears of it
        crashed.poll_devices()
        crashed.scheduler.tick()
    for j in ids:
        assert crashed.queue.get(crashed.queue_id(j)).state == "succeeded" and crashed.row(j).state == "running"
    crashed._advance(crashed.row(ids[1]))  # the second one's upload is noted, its submit never sent
    assert crashed.row(ids[1]).state == "uploaded" and m.job(ids[1]).status == JobStatus.CLAIMED
    outputs = {j: crashed.queue.get(crashed.queue_id(j)).output_sha for j in ids}
    # ... and the process is gone (no close): a new one on the same files
    svc = world.service()
    try:
        for j in ids:
            assert step_until(svc, j, {"submitted"}) == "submitted"
            assert len(svc.queue.attempts(svc.queue_id(j))) == 1
            assert m.job(j).result_hash == "0x" + outputs[j]
    finally:
        svc.close()


def test_a_new_market_deployment_never_meets_the_old_jobs(world):
    """Job ids start again at 1 on a new deployment (a restarted dev node, another network):
    the miner keeps each deployment's DB and queue ids apart, and finds the old ones again."""
    chain, deployer, buyer, ctx = world.chain, world.deployer, world.buyer, world.ctx
    markets = []
    for frames in (1, 2):
        m = world.market = MarketClient(chain, deploy_all(chain, deployer))   # a fresh deployment
        m.token.mint(deployer, buyer.address, 10 * NTK)
        job_id = world.post(render_spec_bytes(frames=frames))
        assert job_id == 1
        svc = world.service()
        try:
            assert step_until(svc, 1, {"submitted"}) == "submitted"
            assert len(svc.queue.attempts(svc.queue_id(1))) == 1
            assert m.job(1).result_hash == "0x" + svc.queue.get(svc.queue_id(1)).output_sha
        finally:
            svc.close()
        markets.append(m)
    q = open_queue(ctx)
    qids = {j.id for j in q.list()}
    q.close()
    assert len(qids) == 2 and all(q.startswith("market-") and q.endswith("-1") for q in qids)
    assert len(list((ctx.paths.data_dir).glob("miner-[0-9]*.sqlite"))) == 1  # the first deployment's, set aside
    world.market = markets[0]
    svc = world.service()  # back on the first one: its rows are there
    try:
        assert [(r.job_id, r.state) for r in svc.rows()] == [(1, "submitted")]
        assert svc.row(1).output_sha == markets[0].job(1).result_hash.removeprefix("0x")
    finally:
        svc.close()


def test_a_run_that_dies_is_run_again_and_paid_once(world):
    """The worker of a claimed job is killed (as the OOM killer or a crash would): the miner
    runs the job again, submits one result and is paid once; a job that keeps failing is
    given up after MAX_RUN_ATTEMPTS runs."""
    import os
    import signal

    from app.miner.service import MAX_RUN_ATTEMPTS

    m, miner, tester, chain = world.market, world.miner, world.tester, world.chain
    job_id = world.post(render_spec_bytes(frames=12), reward_ntk=2)
    svc = world.service()
    qid = svc.queue_id(job_id)
    try:
        assert step_until(svc, job_id, {"running"}) == "running"
        end = time.monotonic() + 60
        while time.monotonic() < end and job_id not in svc.last_progress:  # the worker is rendering
            svc.step()
            time.sleep(0.1)
        (attempt,) = svc.queue.attempts(qid)
        assert attempt.pid and attempt.state == "running"
        os.kill(attempt.pid, signal.SIGKILL)  # our own worker child, by its pid
        assert step_until(svc, job_id, {"submitted", "failed"}, timeout_s=120) == "submitted", svc.row(job_id)
        runs = svc.queue.attempts(qid)
        assert [a.state for a in runs] == ["failed", "succeeded"], runs
        assert "running it again" in (svc.row(job_id).reason or "")
        before = m.token.balance_of(miner.address)
        tester.time_travel(chain.latest_timestamp() + 700)
        assert step_until(svc, job_id, {"paid"}) == "paid"
        assert m.token.balance_of(miner.address) - before == 2 * NTK + m.job(job_id).stake_wei
        # when another run is not tried: too many runs, or too little time before the deadline
        from types import SimpleNamespace

        r = svc.row(job_id)
        assert svc.submission.retry_blocker(r, SimpleNamespace(attempts=MAX_RUN_ATTEMPTS)) == \
            f"gave up after {MAX_RUN_ATTEMPTS} attempts"
        assert svc.submission.retry_blocker(r, SimpleNamespace(attempts=1)) is None
        tester.time_travel(r.deadline - 5)
        svc.step()
        assert "no time left" in svc.submission.retry_blocker(r, SimpleNamespace(attempts=1))
    finally:
        svc.close()
