"""A verify job that dies (killed, as the OOM killer would) is run again instead of
rejecting an honest miner for the buyer's own failure; the result is then accepted and paid."""

from __future__ import annotations

import json
import os
import signal
import time

from jobs.artifacts import ArtifactStore
from tests.buyer.conftest import NTK, TABLE
from wallet.market import JobStatus


def test_a_verify_run_that_dies_is_run_again_and_the_honest_result_accepted(buyer, chain_env, tmp_path):
    from app.buyer.verify import MAX_VERIFY_RUNS
    from jobs.render.dataset import render_dataset
    from jobs.render.spec import load_scene

    _, m, acc = chain_env
    scene = json.loads(TABLE.read_text())
    scene["outputs"].update({"width": 96, "height": 72, "count": 2})
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(scene))
    o = buyer.post_render(path, count=2, shards=1, reward_each_wei=2 * NTK, deadline_s=3600, review_window_s=3600)
    (s,) = o.shards
    m.claim(acc[2], s.job_id)
    render_dataset(load_scene(path), tmp_path / "honest")  # what an honest miner delivers
    store = ArtifactStore(tmp_path / "miner-store")
    sha = store.put_dir(tmp_path / "honest")
    m.submit(acc[2], s.job_id, "0x" + sha, store.path(sha).as_uri())

    qid = None
    end = time.monotonic() + 60
    while time.monotonic() < end:  # the verify job starts: kill its worker
        buyer.step()
        qid = buyer.order(o.id).shards[0].verify_job
        runs = buyer.queue.attempts(qid) if qid else []
        if runs and runs[-1].pid:
            os.kill(runs[-1].pid, signal.SIGKILL)  # our own worker child, by its pid
            break
        time.sleep(0.05)
    assert qid, "no verify job started"
    lines = []
    end = time.monotonic() + 120
    while time.monotonic() < end and buyer.order(o.id).shards[0].state not in ("accepted", "rejected"):
        lines += buyer.step()
        time.sleep(0.2)
    (s,) = buyer.order(o.id).shards
    assert s.state == "accepted" and s.verified and s.figures["mode"] == "exact", (s, lines)
    assert [a.state for a in buyer.queue.attempts(qid)] == ["failed", "succeeded"]
    assert any("running it again" in line for line in lines), lines
    assert m.job(s.job_id).status == JobStatus.ACCEPTED and m.token.balance_of(acc[2].address) == 2 * NTK
    assert len(buyer.queue.attempts(qid)) <= MAX_VERIFY_RUNS
