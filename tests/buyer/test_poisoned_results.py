"""A poisoned market at the buyer (issue 16), on a real EVM with the real buyer service that
`kminer order watch` runs: a result whose dataset.json is nested 200,000 deep, or past the card
size cap, is REJECTED on the chain with the reason (never left to be released unverified); a
poison scene (a billion objects, NaN, Infinity, a shard over its pixel budget) is refused before
anything is escrowed. web3 is loaded, as in the app: its recursion limit of 100,000 holds."""

from __future__ import annotations

import json
import sys
import time

import pytest

from app.buyer import BuyerError
from common.safejson import CARD_LIMITS
from jobs.artifacts import ArtifactStore
from tests.buyer.conftest import NTK, TABLE, scene_dict
from wallet.market import JobStatus


def _result(tmp_path, name: str, card: bytes) -> tuple[str, str]:
    d = tmp_path / name
    (d / "images").mkdir(parents=True)
    (d / "dataset.json").write_bytes(card)
    store = ArtifactStore(tmp_path / "miner-store")
    sha = store.put_dir(d)
    return sha, store.path(sha).as_uri()


def test_a_result_with_a_poisoned_card_is_rejected_with_the_reason(buyer, chain_env, tmp_path):
    assert sys.getrecursionlimit() >= 100_000  # web3 is loaded: a plain json.loads would overflow the C stack
    _, m, acc = chain_env
    start = m.token.balance_of(acc[1].address)
    o = buyer.post_render(TABLE, count=2, shards=2, reward_each_wei=NTK, deadline_s=3600, review_window_s=600,
                          size=(96, 72))
    deep, big = o.shards
    for s in o.shards:
        m.claim(acc[2], s.job_id)
    sha, uri = _result(tmp_path, "deep", b"[" * 200_000 + b"]" * 200_000)
    m.submit(acc[2], deep.job_id, "0x" + sha, uri)
    sha, uri = _result(tmp_path, "big", b'{"x": "' + b"a" * (CARD_LIMITS.max_bytes + 10) + b'"}')
    m.submit(acc[2], big.job_id, "0x" + sha, uri)
    t0 = time.perf_counter()
    lines = buyer.step() + buyer.step()
    took = time.perf_counter() - t0
    o = buyer.order(o.id)
    assert [s.state for s in o.shards] == ["rejected", "rejected"], lines
    assert "nested too deep" in o.shards[0].reason and o.shards[0].verified is False
    assert "at most 4,194,304 bytes" in o.shards[1].reason
    assert [m.job(s.job_id).status for s in o.shards] == [JobStatus.REJECTED] * 2
    assert m.token.balance_of(acc[1].address) == start and m.token.balance_of(acc[2].address) == 0
    assert any("REJECTED" in line and "nested too deep" in line for line in lines)
    print(f"\n[figure] buyer pass rejecting a 200,000-deep and a {CARD_LIMITS.max_bytes + 17:,}-byte card: {took:.2f} s")


def _poison(scene: dict, path: str, value) -> dict:
    out = json.loads(json.dumps(scene))
    node = out
    *parents, last = path.split(".")
    for k in parents:
        node = node[k]
    node[last] = value
    return out


@pytest.mark.parametrize("path, value, message", [
    ("layout.objects", [10**9, 10**9], "layout.objects: both ends must lie within"),
    ("camera.distance", [float("nan"), 1.5], "finite number"),
    ("camera.distance", [1.0, float("inf")], "finite number"),
    ("outputs.width", float("inf"), "outputs.width"),
])
def test_a_poison_scene_is_refused_before_escrow(buyer, chain_env, path, value, message):
    _, m, acc = chain_env
    start = m.token.balance_of(acc[1].address)
    with pytest.raises(BuyerError, match=message) as e:
        buyer.post_render(_poison(scene_dict(), path, value), count=2, shards=1, reward_each_wei=NTK,
                          deadline_s=3600, review_window_s=600)
    assert "\n" not in str(e.value)
    assert m.job_count() == 0 and buyer.orders() == [] and m.token.balance_of(acc[1].address) == start


def test_a_scene_file_with_nan_and_a_shard_over_its_pixel_budget_are_refused_before_escrow(buyer, chain_env, tmp_path):
    _, m, acc = chain_env
    start = m.token.balance_of(acc[1].address)
    f = tmp_path / "nan.json"
    f.write_text(TABLE.read_text().replace('"distance": [1.0, 1.5]', '"distance": [NaN, 1.5]'))
    assert "NaN" in f.read_text()
    with pytest.raises(BuyerError, match="NaN is not allowed"):
        buyer.post_render(f, count=2, shards=1, reward_each_wei=NTK, deadline_s=3600, review_window_s=600)
    with pytest.raises(BuyerError, match="split the order into more shards"):
        buyer.post_render(TABLE, count=200_000, shards=1, reward_each_wei=NTK, deadline_s=3600, review_window_s=600,
                          size=(640, 480))
    assert m.job_count() == 0 and buyer.orders() == [] and m.token.balance_of(acc[1].address) == start


def test_a_shards_time_limit_follows_from_its_work_not_the_deadline(buyer, chain_env):
    o = buyer.post_render(TABLE, count=4, shards=2, reward_each_wei=NTK, deadline_s=6 * 86400, review_window_s=600,
                          size=(96, 72))
    spec = json.loads(buyer.store.path(o.shards[0].spec_sha).read_bytes())
    assert 120 <= spec["resources"]["max_wall_s"] < 3600  # two small frames: minutes, not the six-day deadline


def test_a_result_uri_naming_a_service_of_this_machine_is_rejected_at_once(buyer, chain_env):
    """A miner's result URI is a stranger's: http://127.0.0.1:... (a service of the buyer's
    machine) is refused by the input policy without a request, and the result rejected now
    rather than retried until the window closes."""
    _, m, acc = chain_env
    o = buyer.post_render(TABLE, count=1, shards=1, reward_each_wei=NTK, deadline_s=3600, review_window_s=600,
                          size=(96, 72))
    (s,) = o.shards
    m.claim(acc[2], s.job_id)
    m.submit(acc[2], s.job_id, "0x" + "cd" * 32, "http://127.0.0.1:9/admin")
    lines = buyer.step() + buyer.step()
    (s,) = buyer.order(o.id).shards
    assert s.state == "rejected" and "loopback" in s.reason, lines
    assert m.job(s.job_id).status == JobStatus.REJECTED
