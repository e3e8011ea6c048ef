"""A buyer stopped in the middle of verifying a result resumes after a restart: the verify
job runs again to the end, the result is accepted once, nothing is paid twice."""

from __future__ import annotations

import json
import time

from app.buyer import BuyerService
from jobs.artifacts import ArtifactStore
from tests.buyer.conftest import NTK, TABLE
from wallet.market import JobStatus


def _deliver(m, miner, o, tmp_path) -> None:
    """What an honest miner does for shard 0: render exactly the posted spec, store, submit."""
    from jobs.render.dataset import render_dataset
    from jobs.render.spec import parse_scene

    s = o.shards[0]
    store = ArtifactStore(tmp_path / "miner-store")
    j = m.job(s.job_id)
    spec = json.loads(store.fetch(j.spec_hash.removeprefix("0x"), j.spec_uri).read_bytes())
    p = spec["params"]
    out = tmp_path / "shard"
    render_dataset(parse_scene(p["scene"]), out, start=p["start"], count=p["count"], seed=p["seed"])
    sha = store.put_dir(out)
    m.claim(miner, s.job_id)
    m.submit(miner, s.job_id, "0x" + sha, store.path(sha).as_uri())


def test_a_buyer_stopped_mid_verification_resumes_and_pays_once(buyer, chain_env, tmp_path):
    _, m, acc = chain_env
    o = buyer.post_render(TABLE, count=2, shards=1, reward_each_wei=2 * NTK, deadline_s=3600, review_window_s=3600,
                          size=(96, 72), verify_sample=2)
    _deliver(m, acc[2], o, tmp_path)
    end = time.monotonic() + 60
    while buyer.order(o.id).shards[0].state != "verifying" or not buyer.scheduler.running():
        buyer.step()
        assert time.monotonic() < end, buyer.order(o.id)
        time.sleep(0.1)
    qid = buyer.order(o.id).shards[0].verify_job
    buyer.close()  # the app stops: the verify job is stopped and requeued

    again = BuyerService(buyer.ctx, m, acc[1])
    try:
        end = time.monotonic() + 120
        while again.order(o.id).state != "done":
            again.step()
            assert time.monotonic() < end, again.order(o.id)
            time.sleep(0.2)
        s = again.order(o.id).shards[0]
        assert s.state == "accepted" and s.figures["mode"] == "exact" and s.figures["exact_matches"] == 2
        attempts = again.queue.attempts(qid)
        assert [a.state for a in attempts] == ["failed", "succeeded"] and attempts[0].reason == "app stopped"
        assert m.job(s.job_id).status == JobStatus.ACCEPTED and m.token.balance_of(acc[2].address) == 2 * NTK
        again.step()
        assert m.token.balance_of(acc[2].address) == 2 * NTK
    finally:
        again.close()
