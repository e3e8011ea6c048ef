"""What a buyer may open of a result before paying (jobs.transport.sampling, enforced by the
miner's key service, asked for by the buyer's samplers): a fraction that leaves most of the
result sealed, never the whole. A 4-frame render shard and ones of 1 to 3 frames sealed and served by a
real key service on 127.0.0.1; an order with small shards end to end in one process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tests.orders.workload as workload
from jobs.transport.crypto import address_of, public_key
from jobs.transport.keys import KeyRefused, KeyRing, KeyServer, request_key
from jobs.transport.sampling import sample_budget
from jobs.transport.sealed import SealError, open_item, read_header, seal
from tests.orders.conftest import NTK

BUYER, STRANGER = os.urandom(32), os.urandom(32)
FILES = ("images/{:06d}.png", "masks/instance/{:06d}.png", "meta/{:06d}.json")


def test_the_budget_is_a_quarter_at_most_k_and_nothing_of_a_result_under_four_units():
    assert [sample_budget(n) for n in (0, 1, 2, 3, 4, 7, 8, 12, 100)] == [0, 0, 0, 0, 1, 1, 2, 3, 3]
    assert sample_budget(100, 1) == 1 and sample_budget(8, 5) == 2
    for n in range(0, 200):  # never more than a quarter (the docs' promise), whatever k
        for k in (1, 3, 5, 100):
            assert 4 * sample_budget(n, k) <= n


def _render_result(folder: Path, first: int, frames: int) -> Path:
    """A render shard's folder as a miner's job leaves it: the card, each frame's files, and a
    whole-shard file that is no frame's."""
    for i in range(first, first + frames):
        for pat in FILES:
            p = folder / pat.format(i)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(os.urandom(64) + str(i).encode())
    (folder / "dataset.json").write_text('{"format": "kminer-render-dataset"}')
    (folder / "annotations.json").write_text('{"all": "frames"}')
    return folder


@pytest.fixture
def served(tmp_path):
    """seal(frames) -> (key server, info hash, sealed path, doc): a render result of `frames`
    frames sealed, its key in a real key service with the sample plan the miner gives it."""
    from app.orders.sampling import sample_plan

    ring = KeyRing(tmp_path / "keys")
    ks = KeyServer(ring, "127.0.0.1:0")
    buyer = address_of(public_key(BUYER))

    def make(frames: int):
        doc = {"kind": "render", "shards": 1, "job": {"engine": "render", "count": frames}}
        src = _render_result(tmp_path / f"r{frames}", 0, frames)
        path = tmp_path / f"r{frames}.kmseal"
        key = os.urandom(32)
        header = seal(src, path, key)
        ih = f"{frames:064x}"
        ring.put(ih, key, header, reader=buyer)
        ring.limit_samples(ih, *sample_plan(doc, [it.name for it in header.items]))
        return f"127.0.0.1:{ks.port}", ih, path, doc, ring

    yield make
    ks.close()


def _frame(i: int) -> list[str]:
    return [pat.format(i) for pat in FILES]


def test_a_four_frame_shard_opens_one_frame_before_payment_and_no_more(served, tmp_path):
    from app.orders.render import RenderSampler

    server, ih, path, doc, ring = served(4)
    header = read_header(path)
    names = [it.name for it in header.items]
    # the buyer's sampler asks for exactly what the key service gives: the card and one frame
    picks = RenderSampler()(doc, 0, names)
    assert picks[0] == "dataset.json" and len(picks) == 1 + len(FILES)
    # asking for two frames at once is refused, and nothing is released
    with pytest.raises(KeyRefused, match="at most 1 of this result's 4 units"):
        request_key(server, ih, BUYER, items=["dataset.json", *_frame(0), *_frame(1)])
    # a file no frame owns (the whole shard's annotations) stays sealed
    with pytest.raises(KeyRefused, match="stays sealed until payment"):
        request_key(server, ih, BUYER, items=["annotations.json"])
    keys = request_key(server, ih, BUYER, items=["dataset.json", *_frame(2)])
    for n, k in keys.items():  # the sample opens
        assert open_item(path, header, n, k, tmp_path / "out" / n).is_file()
    # the same frame again is fine (a retry); a second frame, in a later request, is not
    assert set(request_key(server, ih, BUYER, items=_frame(2)[:1])) == {_frame(2)[0]}
    with pytest.raises(KeyRefused, match="at most 1"):
        request_key(server, ih, BUYER, items=_frame(3)[:1])
    # the keys it holds open nothing else
    for other in (*_frame(0), *_frame(1), *_frame(3), "annotations.json"):
        for k in keys.values():
            with pytest.raises(SealError):
                open_item(path, header, other, k, tmp_path / "stolen" / other)
    # nobody else samples at all; after payment the buyer gets the whole key
    with pytest.raises(KeyRefused, match="not the party"):
        request_key(server, ih, STRANGER, items=_frame(0)[:1])
    ring.grant(ih, address_of(public_key(BUYER)))
    assert isinstance(request_key(server, ih, BUYER), bytes)


@pytest.mark.parametrize("frames", [1, 2, 3])
def test_a_shard_under_four_frames_opens_no_frame_before_payment(served, tmp_path, frames):
    from app.orders.render import RenderSampler

    server, ih, path, doc, ring = served(frames)
    header = read_header(path)
    assert RenderSampler()(doc, 0, [it.name for it in header.items]) == []  # nothing to check it by
    with pytest.raises(KeyRefused, match=f"{frames} unit\\(s\\) cannot be sampled"):
        request_key(server, ih, BUYER, items=_frame(0)[:1])
    card = request_key(server, ih, BUYER, items=["dataset.json"])  # no frame in it
    with pytest.raises(KeyRefused, match="not authorised for the whole key"):
        request_key(server, ih, BUYER)
    for other in (*_frame(0), "annotations.json"):
        with pytest.raises(SealError):
            open_item(path, header, other, card["dataset.json"], tmp_path / "stolen" / other)


def test_a_render_order_of_shards_under_four_frames_is_refused_before_any_cost(parties):
    from app.orders.buyer import OrderError

    p = parties()
    before = p.env.balance(p.env.buyer)
    for count, shards in ((3, 2), (3, 1), (6, 2), (7, 2)):  # shards of 1 to 3 frames: one frame is 33 % or more
        with pytest.raises(OrderError, match="at least 4 frames"):
            p.buyer.post({"engine": "render", "count": count, "scene": {}}, shards=shards, reward_each_wei=NTK,
                         deadline_s=3_600, review_window_s=600, redeem_window_s=600)
    assert p.env.balance(p.env.buyer) == before


def _post(p, frames: int, shards: int) -> int:
    return p.buyer.post({"frames": frames, "seed": 7}, shards=shards, reward_each_wei=5 * NTK, deadline_s=3_600,
                        review_window_s=600, redeem_window_s=600, inputs={"scene": p.scene})


def test_an_honest_order_with_four_frame_shards_is_sampled_within_budget_and_completes(parties):
    p = parties()
    oid = _post(p, 4, 2)
    p.run(lambda: p.buyer.done(oid))
    for shard in (0, 1):
        assert len(p.buyer.shard_state(oid, shard)["samples"]) == 1  # one of 4 opened before paying
        assert len(list(p.buyer.result(oid, shard).iterdir())) == 4  # all 4 after
    assert p.env.om.order(oid).paid_shards == [0, 1]


def test_a_buyer_who_asks_for_more_than_its_sample_gets_no_key_and_no_frame(parties):
    greedy = lambda doc, shard, names: sorted(names)[:3]  # noqa: E731  (3 of 4 frames)
    p = parties(buyer_kw={"pick": greedy})
    oid = _post(p, 4, 1)
    p.run(lambda: "at most 1" in p.buyer.shard_state(oid, 0).get("last_error", ""))
    st = p.buyer.shard_state(oid, 0)
    assert st["state"] == "fetching" and "samples" not in st
    ih = p.miner.shards()[f"{oid}:0"]["info_hash"]
    assert p.miner.peer.node.keys.get(ih)["sampled"] == {}  # nothing was released
    assert p.env.om.order(oid).paid_shards == []


def test_a_result_of_one_item_is_not_paid_for_unseen(parties):
    """A kind with no sample plan (each item a unit) and shards of one item: nothing may be opened
    before payment, so the buyer cannot check it and rejects it instead of paying blind."""
    p = parties()
    oid = _post(p, 1, 1)
    p.run(lambda: p.buyer.shard_state(oid, 0)["state"] == "rejected")
    assert "too few to open any before payment" in p.buyer.shard_state(oid, 0)["reason"]
    assert p.env.om.order(oid).paid_shards == []


def test_a_miner_skips_a_render_order_whose_shards_are_under_four_frames(parties):
    """A buyer that posts around its own check (the same escrow, spec and desk, without `post`'s
    refusal): the miner reads the spec and never claims a shard its buyer could only check by
    opening all of it."""
    import time

    p = parties()
    job = {"engine": "render", "count": 6, "scene": {}}  # 3 frames a shard: one is a third
    spec, _ = p.buyer.prepare(job, kind="render", shards=2)
    terms = p.buyer.terms(spec, kind="render", shards=2, reward_each_wei=NTK, deadline_s=3_600, review_window_s=600,
                          redeem_window_s=600, stake_bps=2_000)
    oid, _ = p.env.om.post_order(p.env.buyer, terms)
    doc = {"order_id": oid, "spec": spec.decode(), "inputs": [], "shards": {}, "posted_ts": time.time(), "refunded": False}
    p.buyer._orders[oid] = doc  # what `post` keeps, so its desk serves the spec
    p.buyer._save(doc)
    p.run(lambda: str(oid) in p.miner.state["skipped"])
    assert "at least 4 frames" in p.miner.state["skipped"][str(oid)]
    assert p.buyer.shard_state(oid, 0)["state"] == "open"


def _render_work(doc: dict, shard: int, inputs: dict, out: Path) -> None:
    from app.orders.render import shard_frames

    first, n = shard_frames(int(doc["job"]["count"]), int(doc["shards"]), shard)
    _render_result(out, first, n)


class _CrashOnCommit:
    """The miner's market client, stopping once right after the share (before the commitment
    is signed): what a miner killed between sharing and committing leaves."""

    def __init__(self, om):
        self._om, self.crashed = om, False

    def __getattr__(self, name):
        return getattr(self._om, name)

    def sign(self, message, account):
        from wallet.order_messages import ResultCommit

        if isinstance(message, ResultCommit) and not self.crashed:
            self.crashed = True
            raise RuntimeError("killed between share and commit")
        return self._om.sign(message, account)


def test_a_result_is_never_served_without_its_sample_plan_and_an_uncommitted_share_is_dropped(parties):
    """The plan is kept with the key in one step: at the moment `share` serves and pushes the
    result, a hostile buyer already cannot open 3 frames of a 4-frame shard (before, each file was
    a unit until the plan came). A share whose commitment never went out (the miner stopped in
    between) loses its key when the shard is shared again, so the buyer cannot sample both copies."""
    from app.orders.render import RenderSampler
    from jobs.transport.keys import KeyRequest

    p = parties(work=_render_work, buyer_kw={"pick": RenderSampler()})
    p.buyer.verify = lambda doc, shard, samples: None
    node, ring, buyer = p.miner.peer.node, p.miner.peer.node.keys, p.env.buyer.address.lower()
    real_share, shared = node.share, []

    def share(*a, **kw):
        s = real_share(*a, **kw)
        shared.append(s.ref.info_hash)
        doc = ring.get(s.ref.info_hash)  # what the key service holds as the result goes out
        assert len(set(doc.get("units", {}).values())) == 4 and doc["free"] == ["dataset.json"], doc
        three = tuple(n for n in doc["items"] if n.startswith("images/"))[:3]
        with pytest.raises(KeyRefused, match="at most 1 of this result's 4 units"):
            ring.answer(KeyRequest(buyer, s.ref.info_hash, three), None)
        return s

    node.share = share
    p.miner.om = flaky = _CrashOnCommit(p.miner.om)
    oid = p.buyer.post({"engine": "render", "count": 4, "scene": {}}, shards=1, reward_each_wei=5 * NTK,
                       deadline_s=3_600, review_window_s=600, redeem_window_s=600)
    p.run(lambda: p.buyer.done(oid))
    assert flaky.crashed and len(shared) == 2 and shared[0] != shared[1]
    assert ring.get(shared[0]) is None  # the uncommitted copy: no key any more
    assert p.miner.shards()[f"{oid}:0"]["info_hash"] == shared[1] and "shared" not in p.miner.shards()[f"{oid}:0"]
    assert len(list((p.buyer.result(oid, 0) / "images").iterdir())) == 4
    assert p.env.om.order(oid).paid_shards == [0]


def test_a_miner_skips_an_order_of_an_older_spec_version_saying_so(parties):
    """An order posted by an older Knowledge Miner (spec v1: sampled and keyed the old way): the
    new miner reads its spec and skips it with a reason that says so, never claiming it."""
    import json
    import time

    from app.orders.buyer import SPEC_VERSION

    assert SPEC_VERSION == 2
    p = parties()
    spec, _ = p.buyer.prepare({"frames": 6, "seed": 7}, kind="render", shards=1)
    old = json.loads(spec)
    old["version"] = 1
    spec = json.dumps(old, sort_keys=True, separators=(",", ":")).encode()
    terms = p.buyer.terms(spec, kind="render", shards=1, reward_each_wei=NTK, deadline_s=3_600, review_window_s=600,
                          redeem_window_s=600, stake_bps=2_000)
    oid, _ = p.env.om.post_order(p.env.buyer, terms)
    doc = {"order_id": oid, "spec": spec.decode(), "inputs": [], "shards": {}, "posted_ts": time.time(), "refunded": False}
    p.buyer._orders[oid] = doc  # its desk serves the old spec
    p.buyer._save(doc)
    events = p.run(lambda: str(oid) in p.miner.state["skipped"])
    why = p.miner.state["skipped"][str(oid)]
    assert why.startswith("made by an older Knowledge Miner (spec v1); this one speaks spec v2"), why
    assert any(f"order {oid} skipped: made by an older Knowledge Miner (spec v1)" in e for e in events)
    assert p.buyer.shard_state(oid, 0)["state"] == "open"


def test_a_buyer_meeting_an_older_key_service_says_so_in_one_line(parties, monkeypatch):
    """The miner's key service answers the way an older Knowledge Miner did (key protocol v1: no
    version, no request nonce in the envelope): the buyer's shard says the miner runs an older
    version, not that the key is wrong or answers another request, and nothing is paid."""
    import json

    from jobs.transport.crypto import open_sealed, recover_signer, seal_to

    p = parties()
    ks = p.miner.peer.keys
    real = ks.answer

    def v1_answer(req):  # an older key service: the same rules, a sealed body of the key(s) alone
        reply = real(req)
        if not reply.get("ok"):
            return reply
        body = json.loads(open_sealed(bytes(p.env.buyer.key), bytes.fromhex(reply["envelope"])))
        _, pub = recover_signer(req)
        old = {k: v for k, v in body.items() if k in ("key", "items")}
        return {"ok": True, "envelope": seal_to(pub, json.dumps(old).encode()).hex()}

    monkeypatch.setattr(ks, "answer", v1_answer)
    oid = _post(p, 6, 1)
    p.run(lambda: "older Knowledge Miner" in p.buyer.shard_state(oid, 0).get("last_error", ""))
    err = p.buyer.shard_state(oid, 0)["last_error"]
    assert "runs an older Knowledge Miner (key protocol v1; this app speaks v2)" in err, err
    assert "\n" not in err and "another request" not in err and "does not open" not in err
    assert p.buyer.shard_state(oid, 0)["state"] == "fetching" and p.env.om.order(oid).paid_shards == []
