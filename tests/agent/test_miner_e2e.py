"""The miner agent end to end on a real EVM (py-evm, our contracts) in one process: a buyer
posts a small render job, MinerService claims it, renders it in the real sandboxed worker,
uploads and submits the result, releases the payment after the review window; a restart
between submit and payment runs nothing twice."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from app.context import AppContext
from app.devices_service import DeviceService
from app.jobs_service import open_queue
from app.ledger import Ledger
from app.miner_service import MinerService
from jobs.artifacts import ArtifactStore
from tests.wallet.conftest import make_tester_chain
from wallet.deploy import deploy_all
from wallet.market import JobStatus, MarketClient

ROOT = Path(__file__).resolve().parents[2]
NTK = 10**18


def render_spec(frames: int = 2) -> bytes:
    scene = json.loads((ROOT / "resources" / "scenes" / "table_top.json").read_text())
    scene["outputs"].update({"width": 96, "height": 72, "count": frames})
    spec = {"id": "table", "kind": "render", "params": {"scene": scene},
            "resources": {"device": "cpu", "max_wall_s": 300}}
    return json.dumps(spec, sort_keys=True).encode()


def step_until(svc: MinerService, job_id: int, states: set[str], timeout_s: float = 90) -> str:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        svc.step()
        r = svc.row(job_id)
        if r is not None and r.state in states:
            return r.state
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stuck in {svc.row(job_id)}")


def test_buyer_posts_miner_renders_submits_and_is_paid(tmp_path):
    tester, chain, accounts = make_tester_chain(tmp_path)
    deployer, buyer, miner = accounts[:3]
    dep = deploy_all(chain, deployer)
    m = MarketClient(chain, dep)
    m.token.mint(deployer, buyer.address, 100 * NTK)

    data = render_spec()
    spec_file = tmp_path / "buyer" / "spec.json"
    spec_file.parent.mkdir()
    spec_file.write_bytes(data)
    spec_sha = hashlib.sha256(data).hexdigest()
    # a job with a spec that does not match its hash is never claimed
    bad_id, _ = m.post(buyer, kind="render", spec_hash="0x" + "11" * 32, spec_uri=spec_file.as_uri(),
                       reward_wei=NTK, deadline=chain.latest_timestamp() + 7200, review_window_s=600)
    job_id, _ = m.post(buyer, kind="render", spec_hash="0x" + spec_sha, spec_uri=spec_file.as_uri(),
                       reward_wei=5 * NTK, deadline=chain.latest_timestamp() + 7200, review_window_s=600)

    ctx = AppContext.open()
    devs = DeviceService(ctx, idle=lambda: None)
    devs.set_mode("cpu", "mining")
    ledger = Ledger(ctx.paths.ledger_db)
    before = m.token.balance_of(miner.address)
    svc = MinerService(ctx, m, miner, devs, ledger)
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
    tester.time_travel(chain.latest_timestamp() + 700)
    svc = MinerService(ctx, m, miner, devs, ledger)
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
        ledger.close()
        devs.close()


def test_stopped_mid_render_resumes_once_and_takes_the_buyers_acceptance(tmp_path):
    tester, chain, accounts = make_tester_chain(tmp_path)
    deployer, buyer, miner = accounts[:3]
    dep = deploy_all(chain, deployer)
    m = MarketClient(chain, dep)
    m.token.mint(deployer, buyer.address, 100 * NTK)
    data = render_spec(frames=3)
    spec_file = tmp_path / "spec.json"
    spec_file.write_bytes(data)
    job_id, _ = m.post(buyer, kind="render", spec_hash="0x" + hashlib.sha256(data).hexdigest(),
                       spec_uri=spec_file.as_uri(), reward_wei=3 * NTK, deadline=chain.latest_timestamp() + 7200,
                       review_window_s=600)
    ctx = AppContext.open()
    devs = DeviceService(ctx, idle=lambda: None)
    devs.set_mode("cpu", "mining")
    ledger = Ledger(ctx.paths.ledger_db)
    before = m.token.balance_of(miner.address)
    svc = MinerService(ctx, m, miner, devs, ledger)
    try:
        assert step_until(svc, job_id, {"running"}) == "running"
        assert svc.scheduler.running()  # the render is under way
    finally:
        svc.close()  # the app stops mid-job: the attempt is stopped and the job requeued
    svc = MinerService(ctx, m, miner, devs, ledger)
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
        ledger.close()
        devs.close()


def test_a_claim_interrupted_before_it_was_noted_is_settled_from_the_chain(tmp_path):
    """kill -9 between writing `claiming` and the claim's receipt: the chain decides."""
    tester, chain, accounts = make_tester_chain(tmp_path)
    deployer, buyer, miner, other = accounts[:4]
    dep = deploy_all(chain, deployer)
    m = MarketClient(chain, dep)
    m.token.mint(deployer, buyer.address, 100 * NTK)
    data = render_spec()
    spec_file = tmp_path / "spec.json"
    spec_file.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    ids = [m.post(buyer, kind="render", spec_hash="0x" + sha, spec_uri=spec_file.as_uri(), reward_wei=NTK,
                  deadline=chain.latest_timestamp() + 7200, review_window_s=600)[0] for _ in range(2)]
    m.claim(miner, ids[0])  # our claim went through before the crash
    m.claim(other, ids[1])  # ours did not; someone else took the job
    ctx = AppContext.open()
    devs = DeviceService(ctx, idle=lambda: None)  # cpu stays idle: nothing new is claimed
    ledger = Ledger(ctx.paths.ledger_db)
    svc = MinerService(ctx, m, miner, devs, ledger)
    try:
        with svc.db._lock:
            for i in ids:
                svc.db._db.execute("INSERT INTO market_jobs (job_id, state, kind, reward_wei, spec_sha, spec_uri, updated_at) "
                                "VALUES (?, 'claiming', 'render', ?, ?, ?, 0)", (i, str(NTK), sha, spec_file.as_uri()))
        svc.step()
        assert svc.row(ids[1]) is None
        assert svc.row(ids[0]).state == "running" and svc.queue.get(svc.queue_id(ids[0])).state == "queued"
    finally:
        svc.close()
        ledger.close()
        devs.close()


def test_a_job_past_its_deadline_is_given_up(tmp_path):
    tester, chain, accounts = make_tester_chain(tmp_path)
    deployer, buyer, miner = accounts[:3]
    dep = deploy_all(chain, deployer)
    m = MarketClient(chain, dep)
    m.token.mint(deployer, buyer.address, 100 * NTK)
    data = render_spec(frames=3)
    spec_file = tmp_path / "spec.json"
    spec_file.write_bytes(data)
    job_id, _ = m.post(buyer, kind="render", spec_hash="0x" + hashlib.sha256(data).hexdigest(),
                       spec_uri=spec_file.as_uri(), reward_wei=NTK, deadline=chain.latest_timestamp() + 3600,
                       review_window_s=600)
    ctx = AppContext.open()
    devs = DeviceService(ctx, idle=lambda: None)
    devs.set_mode("cpu", "mining")
    ledger = Ledger(ctx.paths.ledger_db)
    svc = MinerService(ctx, m, miner, devs, ledger)
    try:
        assert step_until(svc, job_id, {"running"}) == "running"
        tester.time_travel(chain.latest_timestamp() + 3700)
        svc.step()
        r = svc.row(job_id)
        assert r.state == "failed" and "deadline" in r.reason
        assert svc.scheduler.wait_idle(30)
        assert svc.queue.get(svc.queue_id(job_id)).state == "cancelled"
        assert m.job(job_id).status == JobStatus.CLAIMED  # never submitted
    finally:
        svc.close()
        ledger.close()
        devs.close()


def test_a_crash_after_the_run_or_after_the_upload_runs_nothing_twice(tmp_path):
    """The process dies (no clean close) once the render has finished but before the miner
    noted it, and once it noted the upload but before the submit: the next service submits
    the same result, rendered once."""
    tester, chain, accounts = make_tester_chain(tmp_path)
    deployer, buyer, miner = accounts[:3]
    dep = deploy_all(chain, deployer)
    m = MarketClient(chain, dep)
    m.token.mint(deployer, buyer.address, 100 * NTK)
    ids = []
    for frames in (2, 3):
        data = render_spec(frames=frames)
        spec_file = tmp_path / f"spec{frames}.json"
        spec_file.write_bytes(data)
        ids.append(m.post(buyer, kind="render", spec_hash="0x" + hashlib.sha256(data).hexdigest(),
                          spec_uri=spec_file.as_uri(), reward_wei=NTK, deadline=chain.latest_timestamp() + 7200,
                          review_window_s=600)[0])
    ctx = AppContext.open()
    ctx.settings.jobs.cpu_slots = 2
    devs = DeviceService(ctx, idle=lambda: None)
    devs.set_mode("cpu", "mining")
    ledger = Ledger(ctx.paths.ledger_db)
    crashed = MinerService(ctx, m, miner, devs, ledger)
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
    svc = MinerService(ctx, m, miner, devs, ledger)
    try:
        for j in ids:
            assert step_until(svc, j, {"submitted"}) == "submitted"
            assert len(svc.queue.attempts(svc.queue_id(j))) == 1
            assert m.job(j).result_hash == "0x" + outputs[j]
    finally:
        svc.close()
        ledger.close()
        devs.close()


def test_a_new_market_deployment_never_meets_the_old_jobs(tmp_path):
    """Job ids start again at 1 on a new deployment (a restarted dev node, another network):
    the miner keeps each deployment's DB and queue ids apart, and finds the old ones again."""
    tester, chain, accounts = make_tester_chain(tmp_path)
    deployer, buyer, miner = accounts[:3]
    ctx = AppContext.open()
    devs = DeviceService(ctx, idle=lambda: None)
    devs.set_mode("cpu", "mining")
    ledger = Ledger(ctx.paths.ledger_db)
    markets = []
    for frames in (1, 2):
        m = MarketClient(chain, deploy_all(chain, deployer))
        m.token.mint(deployer, buyer.address, 10 * NTK)
        data = render_spec(frames=frames)
        f = tmp_path / f"spec{frames}.json"
        f.write_bytes(data)
        job_id, _ = m.post(buyer, kind="render", spec_hash="0x" + hashlib.sha256(data).hexdigest(), spec_uri=f.as_uri(),
                           reward_wei=NTK, deadline=chain.latest_timestamp() + 7200, review_window_s=600)
        assert job_id == 1
        svc = MinerService(ctx, m, miner, devs, ledger)
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
    svc = MinerService(ctx, markets[0], miner, devs, ledger)  # back on the first one: its rows are there
    try:
        assert [(r.job_id, r.state) for r in svc.rows()] == [(1, "submitted")]
        assert svc.row(1).output_sha == markets[0].job(1).result_hash.removeprefix("0x")
    finally:
        svc.close()
        ledger.close()
        devs.close()


def test_a_run_that_dies_is_run_again_and_paid_once(tmp_path):
    """The worker of a claimed job is killed (as the OOM killer or a crash would): the miner
    runs the job again, submits one result and is paid once; a job that keeps failing is
    given up after MAX_RUN_ATTEMPTS runs."""
    import os
    import signal

    from app.miner_service import MAX_RUN_ATTEMPTS

    tester, chain, accounts = make_tester_chain(tmp_path)
    deployer, buyer, miner = accounts[:3]
    dep = deploy_all(chain, deployer)
    m = MarketClient(chain, dep)
    m.token.mint(deployer, buyer.address, 100 * NTK)
    data = render_spec(frames=12)
    spec_file = tmp_path / "spec.json"
    spec_file.write_bytes(data)
    job_id, _ = m.post(buyer, kind="render", spec_hash="0x" + hashlib.sha256(data).hexdigest(),
                       spec_uri=spec_file.as_uri(), reward_wei=2 * NTK, deadline=chain.latest_timestamp() + 7200,
                       review_window_s=600)
    ctx = AppContext.open()
    devs = DeviceService(ctx, idle=lambda: None)
    devs.set_mode("cpu", "mining")
    ledger = Ledger(ctx.paths.ledger_db)
    svc = MinerService(ctx, m, miner, devs, ledger)
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
        assert svc._retry_blocker(r, SimpleNamespace(attempts=MAX_RUN_ATTEMPTS)) == \
            f"gave up after {MAX_RUN_ATTEMPTS} attempts"
        assert svc._retry_blocker(r, SimpleNamespace(attempts=1)) is None
        tester.time_travel(r.deadline - 5)
        svc.step()
        assert "no time left" in svc._retry_blocker(r, SimpleNamespace(attempts=1))
    finally:
        svc.close()
        ledger.close()
        devs.close()
