"""BuyerService posting, status and bookkeeping on a real in-memory EVM (no rendering here:
the end-to-end runs in tests/e2e render, verify and pay)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from app.buyer import BuyerError, BuyerService
from jobs.artifacts import ArtifactStore
from tests.buyer.conftest import NTK, TABLE, context, scene_dict
from wallet.market import JobStatus


def test_render_order_posts_one_job_per_shard_with_fetchable_hashed_specs(buyer, chain_env, tmp_path):
    _, m, acc = chain_env
    before = m.token.balance_of(acc[1].address)
    o = buyer.post_render(TABLE, count=5, shards=2, reward_each_wei=2 * NTK, deadline_s=3600, review_window_s=600,
                          size=(96, 72), seed=7)
    assert o.state == "open" and o.kind == "render" and o.total_wei == 4 * NTK and o.progress == 0.0
    assert [(s.start, s.count, s.state) for s in o.shards] == [(0, 3, "open"), (3, 2, "open")]
    assert m.token.balance_of(acc[1].address) == before - 4 * NTK  # escrowed
    miner_store = ArtifactStore(tmp_path / "elsewhere")
    for s in o.shards:
        j = m.job(s.job_id)
        assert j.status == JobStatus.OPEN and j.kind == "render" and j.reward_wei == 2 * NTK
        assert j.review_window_s == 600 and j.deadline == o.deadline
        path = miner_store.fetch(j.spec_hash.removeprefix("0x"), j.spec_uri)  # as a miner does: hash checked
        spec = json.loads(path.read_bytes())
        assert hashlib.sha256(path.read_bytes()).hexdigest() == s.spec_sha
        assert spec["kind"] == "render" and spec["params"]["start"] == s.start and spec["params"]["count"] == s.count
        assert spec["params"]["seed"] == 7 and spec["params"]["scene"]["outputs"]["width"] == 96
    # the book survives a restart
    again = BuyerService(buyer.ctx, m, acc[1])
    try:
        assert again.order(o.id) == buyer.order(o.id)
    finally:
        again.close()


@pytest.mark.parametrize("kwargs, message", [
    ({"count": 2, "shards": 3}, "shards <= count"),
    ({"reward_each_wei": 0}, "reward must be a positive"),
    ({"review_window_s": 0}, "must be positive"),
    ({"reward_each_wei": 60 * NTK}, "not enough NTK: the order escrows 120 NTK, the account holds 100"),
    ({"scene": {"name": "x"}}, "scene:"),
    ({"scene": Path("/nonexistent/scene.json")}, "scene:"),
])
def test_bad_orders_are_one_line_errors_and_nothing_is_posted(buyer, chain_env, kwargs, message):
    _, m, _ = chain_env
    args = {"scene": TABLE, "count": 4, "shards": 2, "reward_each_wei": NTK, "deadline_s": 3600,
            "review_window_s": 600} | kwargs
    with pytest.raises(BuyerError, match=message) as e:
        buyer.post_render(args.pop("scene"), **args)
    assert "\n" not in str(e.value)
    assert buyer.orders() == [] and m.job_count() == 0


def test_a_scene_needing_files_wants_them_as_assets(buyer, chain_env, tmp_path):
    data = scene_dict()
    mesh = tmp_path / "thing.obj"
    mesh.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    sha = hashlib.sha256(mesh.read_bytes()).hexdigest()
    data["assets"].append({"name": "thing", "label": "thing", "kind": "mesh", "mesh": sha, "height": [0.1, 0.12]})
    with pytest.raises(BuyerError, match="not given as assets"):
        buyer.post_render(data, count=2, shards=1, reward_each_wei=NTK, deadline_s=3600, review_window_s=600)
    o = buyer.post_render(data, count=2, shards=1, reward_each_wei=NTK, deadline_s=3600, review_window_s=600,
                          assets=[mesh])
    spec = json.loads(buyer.store.path(o.shards[0].spec_sha).read_bytes())
    (ref,) = spec["inputs"].values()
    assert ref["sha256"] == sha and ArtifactStore(tmp_path / "m").fetch(sha, ref["uri"]).read_bytes() == mesh.read_bytes()


def test_a_post_interrupted_after_its_transaction_is_adopted_not_paid_twice(buyer, chain_env):
    """kill -9 between the post transaction and noting the job ids: the chain has the jobs."""
    _, m, acc = chain_env
    o = buyer.post_render(TABLE, count=2, shards=2, reward_each_wei=NTK, deadline_s=3600, review_window_s=600)
    ids = [s.job_id for s in o.shards]
    for s in o.shards:   # as if the ids were never written
        buyer.book.set_shard(o.id, s.index, state="posting", job_id=None)
    buyer.book.set_order(o.id, state="posting")
    paid = m.token.balance_of(acc[1].address)
    buyer.step()
    o2 = buyer.order(o.id)
    assert o2.state == "open" and [s.job_id for s in o2.shards] == ids
    assert m.job_count() == 2 and m.token.balance_of(acc[1].address) == paid


def test_overdue_shards_are_refunded_then_reposted(buyer, chain_env):
    tester, m, acc = chain_env
    start = m.token.balance_of(acc[1].address)
    o = buyer.post_render(TABLE, count=2, shards=2, reward_each_wei=3 * NTK, deadline_s=3600, review_window_s=600)
    m.claim(acc[2], o.shards[0].job_id)  # a miner claims one and never delivers
    buyer.step()
    assert [s.state for s in buyer.order(o.id).shards] == ["claimed", "open"]
    tester.time_travel(m.chain.latest_timestamp() + 3700)
    lines = buyer.step()
    o = buyer.order(o.id)
    assert [s.state for s in o.shards] == ["refunded", "refunded"] and o.state == "stalled"
    assert "repost" in o.reason and any("refunded" in line for line in lines)
    assert m.token.balance_of(acc[1].address) == start
    assert m.reputation(acc[2].address).expired == 1
    o = buyer.repost(o.id)
    assert o.state == "open" and [s.state for s in o.shards] == ["open", "open"]
    assert [s.job_id for s in o.shards] == [3, 4] and [h["state"] for h in o.shards[0].history] == ["refunded"]
    assert m.token.balance_of(acc[1].address) == start - 6 * NTK
    with pytest.raises(BuyerError, match="no rejected or refunded shard"):
        buyer.repost(o.id)


def test_train_order_waits_for_its_data_and_checks_its_holdout(buyer, chain_env):
    _, m, _ = chain_env
    one = buyer.post_render(TABLE, count=2, shards=1, reward_each_wei=NTK, deadline_s=3600, review_window_s=600)
    with pytest.raises(BuyerError, match="2\\+ shards"):
        buyer.post_train([one.id], train_params={"epochs": 1}, reward_wei=NTK, deadline_s=3600, review_window_s=600)
    with pytest.raises(BuyerError, match="not one a buyer sets"):
        buyer.post_train([one.id], train_params={"device": "cuda"}, reward_wei=NTK, deadline_s=3600,
                         review_window_s=600)
    with pytest.raises(BuyerError, match="no order 99"):
        buyer.post_train([99], train_params={}, reward_wei=NTK, deadline_s=3600, review_window_s=600)
    two = buyer.post_render(TABLE, count=4, shards=2, reward_each_wei=NTK, deadline_s=3600, review_window_s=600)
    t = buyer.post_train([two.id], train_params={"epochs": 2}, reward_wei=5 * NTK, deadline_s=3600,
                         review_window_s=600)
    assert t.state == "waiting" and t.depends_on == [two.id] and t.params["holdout"] == {"order": two.id, "shard": 1}
    jobs = m.job_count()
    buyer.step()
    assert buyer.order(t.id).state == "waiting" and m.job_count() == jobs  # nothing posted before the data is verified


def test_read_only_service_lists_but_cannot_post(chain_env, tmp_path):
    _, m, _ = chain_env
    svc = BuyerService(context(tmp_path / "ro"), m, None)
    try:
        assert svc.orders() == []
        with pytest.raises(BuyerError, match="no account"):
            svc.post_render(TABLE, count=1, shards=1, reward_each_wei=NTK, deadline_s=60, review_window_s=60)
    finally:
        svc.close()


def _fake_result(tmp_path: Path, o, frames: list[int], name: str) -> tuple[str, str]:
    """A stored 'dataset' folder whose card claims `frames` of the order's scene (no images)."""
    d = tmp_path / name
    d.mkdir()
    card = {"format": "kminer-render-dataset", "spec_hash": o.params["spec_hash"], "seed": o.params["seed"],
            "frame_ranges": [frames], "counts": {"images": frames[1] - frames[0]},
            "time": {"seconds": 1.0, "started_utc": "2024-01-01T00:00:00Z"}}
    (d / "dataset.json").write_text(json.dumps(card))
    store = ArtifactStore(tmp_path / "miner-store")
    sha = store.put_dir(d)
    return sha, store.path(sha).as_uri()


def test_results_that_fail_the_cheap_checks_are_rejected_with_the_reason(buyer, chain_env, tmp_path):
    _, m, acc = chain_env
    start = m.token.balance_of(acc[1].address)
    o = buyer.post_render(TABLE, count=4, shards=2, reward_each_wei=2 * NTK, deadline_s=3600, review_window_s=600)
    s0, s1 = o.shards
    for s in o.shards:
        m.claim(acc[2], s.job_id)
    # shard 0: the wrong frames (a miner delivering another shard's work)
    sha, uri = _fake_result(tmp_path, o, [2, 4], "wrong-frames")
    m.submit(acc[2], s0.job_id, "0x" + sha, uri)
    # shard 1: a URI whose bytes do not match the submitted hash
    _, uri1 = _fake_result(tmp_path, o, [2, 4], "right-frames")
    m.submit(acc[2], s1.job_id, "0x" + "ab" * 32, uri1)
    lines = buyer.step() + buyer.step()
    o = buyer.order(o.id)
    assert [s.state for s in o.shards] == ["rejected", "rejected"] and o.state == "stalled", lines
    assert o.shards[0].figures == {"check": "the dataset holds frames [[2, 4]], not [[0, 2]]"}
    assert o.shards[1].figures == {"check": "result does not match its hash"} and o.shards[1].verified is False
    assert [m.job(s.job_id).status for s in o.shards] == [JobStatus.REJECTED] * 2
    assert m.token.balance_of(acc[1].address) == start and m.token.balance_of(acc[2].address) == 0
    assert m.reputation(acc[2].address).rejected == 2 and any("REJECTED" in line for line in lines)


def test_an_answer_too_late_leaves_the_payment_to_the_miner_and_records_the_figures(buyer, chain_env, tmp_path):
    tester, m, acc = chain_env
    o = buyer.post_render(TABLE, count=2, shards=1, reward_each_wei=2 * NTK, deadline_s=3600, review_window_s=60)
    (s,) = o.shards
    m.claim(acc[2], s.job_id)
    sha, uri = _fake_result(tmp_path, o, [0, 1], "short")
    m.submit(acc[2], s.job_id, "0x" + sha, uri)
    tester.time_travel(m.chain.latest_timestamp() + 120)  # the buyer was away for the whole window
    buyer.step()
    buyer.step()
    o = buyer.order(o.id)
    (s,) = o.shards
    assert s.state == "released" and s.verified is False and "holds frames [[0, 1]]" in s.figures["check"]
    assert m.job(s.job_id).status == JobStatus.SUBMITTED and o.state == "stalled"  # the miner may release now
    m.release(acc[2], s.job_id)
    assert m.token.balance_of(acc[2].address) == 2 * NTK
